// @ts-check
// Getting the camera and microphone, with fallbacks and a clear word for the user on every
// failure. No UI code: app.js shows what this returns.

/**
 * @param {unknown} err
 * @returns {'denied' | 'missing' | 'busy' | 'other'}
 */
function classify(err) {
  const name = err instanceof Error ? err.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'denied';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'missing';
  if (name === 'NotReadableError' || name === 'AbortError') return 'busy';
  return 'other';
}

/** @param {unknown} err */
export function describe(err) {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * Camera and microphone, with fallbacks: both; else whichever works alone; else none
 * (the page then joins to receive only). Returns the stream and a notice for the user.
 * @returns {Promise<{stream: MediaStream | null, notice: string | null}>}
 */
export async function getLocalMedia() {
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    return {
      stream: null,
      notice: 'This page cannot use a camera or microphone (it must be served over https). ' +
        'You joined to watch and listen only.',
    };
  }
  let firstError;
  try {
    return { stream: await md.getUserMedia({ audio: true, video: true }), notice: null };
  } catch (err) {
    firstError = err;
  }

  // Try each device alone. After a refusal, only retry devices whose permission is granted,
  // so that the user is not asked again for what they just refused.
  /** @type {{audio: MediaStreamTrack | null, video: MediaStreamTrack | null}} */
  const got = { audio: null, video: null };
  /** @type {{audio: unknown, video: unknown}} */
  const errors = { audio: firstError, video: firstError };
  for (const kind of /** @type {const} */ (['video', 'audio'])) {
    if (classify(firstError) === 'denied' && !(await permissionGranted(kind))) continue;
    try {
      const s = await md.getUserMedia({ [kind]: true });
      got[kind] = s.getTracks()[0] ?? null;
    } catch (err) {
      errors[kind] = err;
    }
  }
  const tracks = [got.audio, got.video].filter((t) => t !== null);
  const stream = tracks.length ? new MediaStream(tracks) : null;

  const why = { audio: got.audio ? null : classify(errors.audio), video: got.video ? null : classify(errors.video) };
  const joinedWith = got.audio ? 'You joined with your microphone only.'
    : got.video ? 'You joined with your camera only.'
    : 'You joined to watch and listen only.';
  /** @type {Record<string, string>} */
  const both = {
    denied: 'Permission to use the camera and microphone was denied.',
    missing: 'No camera or microphone was found.',
    busy: 'The camera and microphone could not be started (in use by another application?).',
  };
  const one = {
    denied: (/** @type {string} */ d) => `Permission to use the ${d} was denied.`,
    missing: (/** @type {string} */ d) => `No ${d} was found.`,
    busy: (/** @type {string} */ d) => `The ${d} could not be started (in use by another application?).`,
    other: (/** @type {string} */ d, /** @type {unknown} */ e) => `The ${d} could not be started (${describe(e)}).`,
  };
  let text;
  if (why.audio && why.video && why.audio === why.video && why.audio !== 'other') {
    text = both[why.audio];
  } else {
    text = [
      why.video ? one[why.video]('camera', errors.video) : '',
      why.audio ? one[why.audio]('microphone', errors.audio) : '',
    ].filter(Boolean).join(' ');
  }
  const hint = why.audio === 'denied' || why.video === 'denied'
    ? ' Allow access in the browser\'s site settings and join again to be seen and heard.' : '';
  return { stream, notice: `${text} ${joinedWith}${hint}` };
}

/**
 * @param {'audio' | 'video'} kind
 * @returns {Promise<boolean>}
 */
async function permissionGranted(kind) {
  try {
    const name = /** @type {PermissionName} */ (kind === 'audio' ? 'microphone' : 'camera');
    return (await navigator.permissions.query({ name })).state === 'granted';
  } catch {
    return false;
  }
}

// @ts-check
// Local media: getting the camera, microphone and a screen to share, with fallbacks and a clear
// word for the user on every failure, and how each kind of track is encoded (simulcast layers).
// No UI code: app.js shows what this returns.

/** @typedef {import('./messages.js').TrackSource} TrackSource */

/**
 * An encoding of a sender, with the member browsers accept but TypeScript's DOM types lack.
 * @typedef {RTCRtpEncodingParameters & {rid: string, scalabilityMode?: string}} LayerEncoding
 */

/**
 * The simulcast layers of a camera, lowest first (rids are what the server's `layers` and
 * `stream_state` name). Sized for a 1280x720 camera; below 960x540 Chrome drops the top ones.
 * @type {readonly Readonly<LayerEncoding>[]}
 */
export const CAMERA_LAYERS = Object.freeze([
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
]);

/**
 * The simulcast layers of a screen share, lowest first.
 * @type {readonly Readonly<LayerEncoding>[]}
 */
export const SCREEN_LAYERS = Object.freeze([
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 400_000 },
  { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
]);

/** The camera's temporal layering (VP8: three temporal layers in each simulcast layer). */
const CAMERA_SCALABILITY = 'L1T3';

/**
 * The `sendEncodings` to publish a track with: simulcast layers for video from the camera or a
 * screen, none (undefined: one plain encoding) for audio and other sources, or when `simulcast`
 * is false. `scalabilityMode` is set only when the browser says it can encode it.
 * @param {'audio' | 'video'} kind
 * @param {TrackSource} source
 * @param {{simulcast?: boolean}} [options]
 * @returns {LayerEncoding[] | undefined}
 */
export function sendEncodings(kind, source, { simulcast = true } = {}) {
  if (kind !== 'video' || !simulcast) return undefined;
  if (source === 'screen') return SCREEN_LAYERS.map((e) => ({ ...e }));
  if (source !== 'camera') return undefined;
  const temporal = canEncode(CAMERA_SCALABILITY);
  return CAMERA_LAYERS.map((e) => (temporal ? { ...e, scalabilityMode: CAMERA_SCALABILITY } : { ...e }));
}

/**
 * Whether some video codec of this browser can encode `mode` (as RTCRtpSender.getCapabilities
 * reports it; browsers that report no modes at all are taken as unable).
 * @param {string} mode
 * @returns {boolean}
 */
export function canEncode(mode) {
  try {
    const codecs = /** @type {(RTCRtpCodec & {scalabilityModes?: string[]})[]} */ (
      globalThis.RTCRtpSender?.getCapabilities?.('video')?.codecs ?? []);
    return codecs.some((c) => c.scalabilityModes?.includes(mode));
  } catch {
    return false;
  }
}

/**
 * The camera sizes offered, by height (16:9).
 * @type {readonly number[]}
 */
export const CAMERA_HEIGHTS = Object.freeze([360, 540, 720]);

/**
 * Camera constraints: 1280x720 at 30 fps if the camera can (ideal, never required), or
 * 960x540 / 640x360 with `height: 540` / `height: 360`; from the camera `deviceId` if given
 * (`exact`: that one or fail; else preferred, another one if it is gone).
 * @param {{height?: number, deviceId?: string, exact?: boolean}} [options]
 * @returns {MediaTrackConstraints}
 */
export function cameraConstraints({ height = 720, deviceId, exact = false } = {}) {
  const h = CAMERA_HEIGHTS.includes(height) ? height : 720;
  /** @type {MediaTrackConstraints} */
  const c = { width: { ideal: Math.round((h * 16) / 9) }, height: { ideal: h }, frameRate: { ideal: 30 } };
  if (deviceId) c.deviceId = exact ? { exact: deviceId } : { ideal: deviceId };
  return c;
}

/**
 * Microphone constraints: the browser's default microphone, or `deviceId` (as in
 * cameraConstraints).
 * @param {{deviceId?: string, exact?: boolean}} [options]
 * @returns {MediaTrackConstraints | true}
 */
export function microphoneConstraints({ deviceId, exact = false } = {}) {
  if (!deviceId) return true;
  return { deviceId: exact ? { exact: deviceId } : { ideal: deviceId } };
}

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
 * `height` picks the camera's size (see cameraConstraints), `camera` and `microphone` the
 * devices to use (deviceIds; when they are gone, the browser's default ones).
 * @param {{height?: number, camera?: string, microphone?: string}} [options]
 * @returns {Promise<{stream: MediaStream | null, notice: string | null}>}
 */
export async function getLocalMedia(options = {}) {
  const video = cameraConstraints({ height: options.height, deviceId: options.camera });
  const audio = microphoneConstraints({ deviceId: options.microphone });
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    return {
      stream: null,
      notice: 'This page cannot use a camera or microphone (it must be served over https). ' +
        'You joined to watch and listen only.',
    };
  }
  let firstError;
  if (options.camera || options.microphone) {
    // Exact: Chromium takes its default microphone over an `ideal` deviceId.
    const chosen = {
      video: cameraConstraints({ height: options.height, deviceId: options.camera, exact: true }),
      audio: microphoneConstraints({ deviceId: options.microphone, exact: true }),
    };
    try {
      return { stream: await md.getUserMedia(chosen), notice: null };
    } catch (err) {
      // Gone (unplugged since it was chosen): the defaults below. Else, no second prompt.
      if (classify(err) !== 'missing') firstError = err;
    }
  }
  if (!firstError) {
    try {
      return { stream: await md.getUserMedia({ audio, video }), notice: null };
    } catch (err) {
      firstError = err;
    }
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
      const s = await md.getUserMedia(kind === 'video' ? { video } : { audio });
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

/**
 * Whether this browser can share a screen at all (no `getDisplayMedia` on phones, nor on a page
 * that is not a secure context).
 * @returns {boolean}
 */
export function canShareScreen() {
  return typeof navigator.mediaDevices?.getDisplayMedia === 'function';
}

/**
 * What to capture when sharing: a screen, window or tab at up to 30 fps, with its sound where
 * the browser offers it (Chromium: a tab's audio, or the system's on some platforms). The members
 * after `audio` are Chromium's hints for its picker; other browsers ignore them.
 */
const DISPLAY_OPTIONS = {
  video: { frameRate: { ideal: 15, max: 30 } },
  audio: true,
  systemAudio: 'include',
  surfaceSwitching: 'include',
  selfBrowserSurface: 'exclude',
};

/**
 * Ask the user for a screen, window or tab to share. Must run from a click (browsers refuse
 * `getDisplayMedia` without a user gesture). Resolves with the stream (a video track, plus an
 * audio track when the user chose to share sound), or with no stream and a notice for the user:
 * never rejects.
 * @returns {Promise<{stream: MediaStream | null, notice: {text: string, level: 'info' | 'error'} | null}>}
 */
export async function getScreen() {
  if (!canShareScreen()) {
    return { stream: null, notice: { text: 'This browser cannot share a screen.', level: 'error' } };
  }
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia(/** @type {DisplayMediaStreamOptions} */ (DISPLAY_OPTIONS));
    if (stream.getVideoTracks().length === 0) {
      stream.getTracks().forEach((t) => t.stop());
      return { stream: null, notice: { text: 'Nothing to share: the browser gave no picture.', level: 'error' } };
    }
    return { stream, notice: null };
  } catch (err) {
    return { stream: null, notice: screenErrorNotice(err) };
  }
}

/**
 * The notice for a failed `getDisplayMedia`: the user closing the picker (Chromium and Firefox
 * report that as `NotAllowedError`, the same as a refusal) is not an error.
 * @param {unknown} err
 * @returns {{text: string, level: 'info' | 'error'}}
 */
export function screenErrorNotice(err) {
  const name = err instanceof Error ? err.name : '';
  const message = err instanceof Error ? err.message : '';
  if (name === 'NotAllowedError' && /system/i.test(message)) {
    return {
      text: 'Your system does not let this browser capture the screen: allow screen recording for it in the system settings, then try again.',
      level: 'error',
    };
  }
  switch (name) {
    case 'NotAllowedError':
      return { text: 'Screen sharing was cancelled, or not allowed.', level: 'info' };
    case 'SecurityError':
      return { text: 'Screen sharing is not allowed on this page.', level: 'error' };
    case 'InvalidStateError':
      return { text: 'Screen sharing must be started with a click on Share.', level: 'error' };
    case 'NotFoundError':
      return { text: 'There is no screen, window or tab to share.', level: 'error' };
    case 'NotReadableError':
    case 'AbortError':
      return { text: 'The screen could not be captured (is another application using it?).', level: 'error' };
    default:
      return { text: `Screen sharing failed (${describe(err)}).`, level: 'error' };
  }
}

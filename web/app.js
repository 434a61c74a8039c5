// @ts-check
// confab meeting page: the UI over protocol.js. User data only ever goes into textContent
// and attributes, never into HTML.

import { playOn } from './devices.js';
import { arrange, markShared } from './layout.js';
import { LocalMedia } from './localmedia.js';
import { CAMERA_HEIGHTS, canShareScreen, describe } from './media.js';
import { ConfabClient, ConfabError } from './protocol.js';
import { DeviceSettings } from './settings.js';
import { ScreenShare } from './share.js';
import { Chat } from './chat.js';
import { StatsPoller } from './stats.js';
import { renderStats, showStatsNote } from './statsview.js';
import { Trends } from './trends.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').TrackInfo} TrackInfo */
/** @typedef {import('./protocol.js').ClosedDetail} ClosedDetail */
/** @typedef {import('./protocol.js').RemoteTrackDetail} RemoteTrackDetail */
/** @typedef {import('./protocol.js').StreamStateMessage} StreamStateMessage */
/** @typedef {'info' | 'warning' | 'error'} Level */

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{new (): T}} type
 * @returns {T}
 */
function byId(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`#${id} is missing from the page`);
  return el;
}

const ui = {
  notice: byId('notice', HTMLElement),
  lobby: byId('lobby', HTMLElement),
  form: byId('join-form', HTMLFormElement),
  room: byId('room', HTMLInputElement),
  name: byId('name', HTMLInputElement),
  joinButton: byId('join-button', HTMLButtonElement),
  joinStatus: byId('join-status', HTMLElement),
  call: byId('call', HTMLElement),
  roomLabel: byId('room-label', HTMLElement),
  peopleCount: byId('people-count', HTMLElement),
  connState: byId('connection-state', HTMLElement),
  path: byId('path', HTMLElement),
  layoutButton: byId('layout-button', HTMLButtonElement),
  tiles: byId('tiles', HTMLElement),
  spotlight: byId('spotlight', HTMLElement),
  grid: byId('grid', HTMLElement),
  micButton: byId('mic-button', HTMLButtonElement),
  cameraButton: byId('camera-button', HTMLButtonElement),
  shareButton: byId('share-button', HTMLButtonElement),
  leaveButton: byId('leave-button', HTMLButtonElement),
  statsButton: byId('stats-button', HTMLButtonElement),
  statsPanel: byId('stats-panel', HTMLElement),
  statsClose: byId('stats-close', HTMLButtonElement),
  statsBody: byId('stats-body', HTMLElement),
  chatButton: byId('chat-button', HTMLButtonElement),
  chatPanel: byId('chat-panel', HTMLElement),
  chatClose: byId('chat-close', HTMLButtonElement),
  chatLog: byId('chat-log', HTMLElement),
  chatForm: byId('chat-form', HTMLFormElement),
  chatInput: byId('chat-input', HTMLTextAreaElement),
  chatUnread: byId('chat-unread', HTMLElement),
  chatTo: byId('chat-to', HTMLSelectElement),
  chatFile: byId('chat-file', HTMLInputElement),
  previewButton: byId('preview-button', HTMLButtonElement),
  lobbySettingsSlot: byId('lobby-settings-slot', HTMLElement),
  settingsButton: byId('settings-button', HTMLButtonElement),
  settingsDialog: byId('settings-dialog', HTMLDialogElement),
  settingsClose: byId('settings-close', HTMLButtonElement),
  dialogSettingsSlot: byId('dialog-settings-slot', HTMLElement),
};

const selfTile = /** @type {HTMLElement} */ (ui.grid.querySelector('.tile.self'));
const selfVideo = /** @type {HTMLVideoElement} */ (selfTile.querySelector('video'));

/**
 * For tests and debugging: `window.confab.client` is the current ConfabClient (its `mesh`, in a
 * peer-to-peer room, holds the direct connections: `mesh.connections()` by participant id);
 * `window.confab.stats` the stats panel's poller (`calls`: getStats calls so far, `latest`: the
 * last summary shown, null while the panel is closed); `window.confab.files` the file transfers
 * of the chat (each finished incoming one holds its `blob`).
 * @type {{client: ConfabClient | null, stats: StatsPoller | null, files: import('./files.js').FileTransfers | null}}
 */
const debug = { client: null, stats: null, files: null };
Object.assign(window, { confab: debug });

/** @type {ConfabClient | null} */
let client = null;
let joining = false;

const deviceSettings = new DeviceSettings({
  fieldset: byId('device-settings', HTMLElement),
  camera: byId('camera-select', HTMLSelectElement),
  microphone: byId('microphone-select', HTMLSelectElement),
  speaker: byId('speaker-select', HTMLSelectElement),
  speakerRow: byId('speaker-row', HTMLElement),
  resolution: byId('resolution-select', HTMLSelectElement),
  meter: byId('mic-meter', HTMLMeterElement),
}, onDeviceSetting);

/** The camera and microphone: previewed in the lobby, published in the call. */
const localMedia = new LocalMedia(deviceSettings, {
  box: byId('preview', HTMLElement),
  video: byId('preview-video', HTMLVideoElement),
  status: byId('preview-status', HTMLElement),
  button: byId('preview-button', HTMLButtonElement),
}, () => {
  showPreview();
  if (client) showSelf();
});

const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Options from the page's URL besides room and name: `res=540` (or `res=360`) asks the camera for
 * 960x540 (640x360) instead of 1280x720; `simulcast=0` publishes the camera in one layer;
 * `relay=1` sends media only through the TURN relay the server names in `joined`; `mode=p2p`
 * (or `auto`, `sfu`) is the mode of a room this page opens (protocol.md, "Peer-to-peer rooms").
 */
const pageParams = new URLSearchParams(location.search);

// ------------------------------------------------------------------ notices

/**
 * @param {string} text
 * @param {Level} [level]
 */
function showNotice(text, level = 'info') {
  ui.notice.textContent = text;
  ui.notice.dataset.level = level;
  ui.notice.hidden = false;
}

function hideNotice() {
  ui.notice.hidden = true;
  ui.notice.textContent = '';
}

ui.notice.addEventListener('click', hideNotice);

// ------------------------------------------------------------------ local media

/**
 * Show the camera in the lobby's preview, the microphone on the meter (in the lobby, or while
 * the Settings dialog is open) and the devices in use in the settings.
 */
function showPreview() {
  localMedia.show({ inLobby: ui.call.hidden, meter: ui.call.hidden || ui.settingsDialog.open });
}

/**
 * A device setting changed: apply it to the running camera, microphone or sound, in the
 * lobby and in a call alike (in a call a new device replaces the old one on its sender).
 * @param {import('./settings.js').Setting} setting
 */
async function onDeviceSetting(setting) {
  try {
    if (setting === 'speaker') {
      for (const el of ui.tiles.querySelectorAll('audio')) await playOn(/** @type {HTMLMediaElement} */ (el), deviceSettings.choice.speaker);
    } else {
      await localMedia.apply(setting, client, { simulcast: pageParams.get('simulcast') !== '0' });
    }
  } catch (e) {
    const what = setting === 'resolution' ? 'camera size' : setting;
    showNotice(`Could not change the ${what} (${describe(e)}).`, 'warning');
  }
  showPreview();
  if (client) showSelf();
}

// ------------------------------------------------------------------ tiles

/** @param {string} name */
function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => Array.from(w)[0] ?? '').join('').toUpperCase() || '?';
}

/**
 * @param {string} cls
 * @returns {HTMLElement}
 */
function makeTile(cls) {
  // The self tile holds the markup of a tile; remote tiles are copies of it.
  const tile = /** @type {HTMLElement} */ (selfTile.cloneNode(true));
  tile.className = `tile ${cls}`.trim();
  const video = /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
  video.removeAttribute('style');
  video.muted = true; // sound plays through <audio> elements
  video.srcObject = null;
  tile.dataset.videoReady = 'false';
  video.addEventListener('loadeddata', () => { tile.dataset.videoReady = 'true'; });
  video.addEventListener('emptied', () => { tile.dataset.videoReady = 'false'; });
  watchVideo(video);
  return tile;
}

/**
 * The tile of a remote participant, created if missing.
 * @param {string} id
 * @returns {HTMLElement}
 */
function tileFor(id) {
  const found = ui.tiles.querySelector(`.tile[data-participant="${CSS.escape(id)}"]`);
  if (found instanceof HTMLElement) return found;
  const tile = makeTile('');
  tile.dataset.participant = id;
  ui.grid.append(tile);
  updateTile(id);
  layout();
  return tile;
}

/**
 * Refresh name and mute state of a participant's tile from the client's roster.
 * @param {string} id
 */
function updateTile(id) {
  const tile = tileFor(id);
  const p = client?.participants.get(id);
  const name = p?.name ?? '…';
  const nameEl = /** @type {HTMLElement} */ (tile.querySelector('.name'));
  nameEl.textContent = name;
  /** @type {HTMLElement} */ (tile.querySelector('.initials')).textContent = initials(name);
  const tracks = p?.tracks ?? [];
  // A shared screen's sound is not the microphone: it does not count for the muted icon.
  const audio = tracks.filter((t) => t.kind === 'audio' && t.source !== 'screen_audio');
  const video = tracks.filter((t) => t.kind === 'video' && t.source !== 'screen');
  // Muted when nothing audible / visible is published: no track, or every one muted.
  tile.dataset.audioMuted = String(!audio.some((t) => !t.muted));
  tile.dataset.videoMuted = String(!video.some((t) => !t.muted));
  tile.dataset.hasVideo = String(video.length > 0);
  tile.dataset.reconnecting = String(Boolean(p?.reconnecting));
  tile.title = p?.reconnecting ? `${name}: reconnecting…` : '';
  tile.setAttribute('aria-label', name);
  updateCount();
}

/** @param {string} id */
function removeTile(id) {
  for (const el of ui.tiles.querySelectorAll(`[data-participant="${CSS.escape(id)}"], [data-screen-of="${CSS.escape(id)}"]`)) {
    el.querySelectorAll('video, audio').forEach((m) => { /** @type {HTMLMediaElement} */ (m).srcObject = null; });
    el.remove();
  }
  for (const key of [...remoteMedia.keys()]) {
    if (key.startsWith(`${id}\u0000`)) remoteMedia.delete(key);
  }
  layout();
  updateCount();
}

function clearRemoteTiles() {
  for (const el of ui.tiles.querySelectorAll('.tile:not(.self)')) el.remove();
  remoteMedia.clear();
  layout();
}

function updateCount() {
  const n = 1 + (client?.participants.size ?? 0);
  ui.peopleCount.textContent = n === 1 ? 'just you' : `${n} people`;
}

/**
 * Remote tracks received, by "participant\0track".
 * @type {Map<string, RemoteTrackDetail>}
 */
const remoteMedia = new Map();

/**
 * @param {string} participant
 * @param {string} track
 * @returns {TrackInfo | undefined}
 */
function trackInfo(participant, track) {
  return client?.participants.get(participant)?.tracks.find((t) => t.id === track);
}

/**
 * @param {HTMLMediaElement} el
 * @param {MediaStreamTrack | null} track
 */
function attach(el, track) {
  const current = el.srcObject instanceof MediaStream ? el.srcObject.getTracks()[0] : null;
  if (current === track) return;
  el.srcObject = track ? new MediaStream([track]) : null;
  if (track) el.play().catch((e) => console.warn('confab: playback blocked:', e));
  else el.dispatchEvent(new Event('emptied'));
}

/**
 * Show a participant's remote tracks where they belong: each audio track in an <audio> of
 * their tile, the camera in the tile's <video>, each screen share in a tile of its own.
 * Idempotent: called whenever tracks or what is known of them change.
 * @param {string} participant
 */
function renderMedia(participant) {
  const mine = [...remoteMedia.values()].filter((m) => m.participant === participant);
  if (mine.length === 0 && !client?.participants.has(participant)) {
    // Gone (an m-line stopped after participant_left): do not bring the tile back.
    removeTile(participant);
    return;
  }
  const tile = tileFor(participant);
  const isScreen = (/** @type {{track: string}} */ m) => trackInfo(participant, m.track)?.source === 'screen';

  const chosen = oneBySource(participant, mine);
  const audios = chosen.filter((m) => m.kind === 'audio');
  for (const el of tile.querySelectorAll('audio')) {
    if (!audios.some((m) => m.track === el.dataset.track)) {
      el.srcObject = null;
      el.remove();
    }
  }
  for (const m of audios) {
    if (tile.querySelector(`audio[data-track="${CSS.escape(m.track)}"]`)) continue;
    const audio = document.createElement('audio');
    audio.autoplay = true;
    audio.dataset.track = m.track;
    tile.append(audio);
    playOn(audio, deviceSettings.choice.speaker).catch((e) => console.warn('confab: cannot play on the chosen speaker:', e));
    attach(audio, m.mediaTrack);
  }

  const videos = chosen.filter((m) => m.kind === 'video');
  const camera = videos.filter((m) => !isScreen(m)).at(-1);
  const video = /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
  attach(video, camera?.mediaTrack ?? null);
  setVideoTrack(video, camera?.track ?? '');
  showStreamState(tile, participant, camera?.track ?? '');

  const screens = videos.filter(isScreen);
  const escaped = CSS.escape(participant);
  for (const el of ui.tiles.querySelectorAll(`.tile.screen[data-screen-of="${escaped}"]`)) {
    if (!(el instanceof HTMLElement) || !screens.some((m) => m.track === el.dataset.track)) el.remove();
  }
  let after = tile;
  for (const m of screens) {
    const found = ui.tiles.querySelector(`.tile.screen[data-screen-of="${escaped}"][data-track="${CSS.escape(m.track)}"]`);
    let screenTile = found instanceof HTMLElement ? found : null;
    if (!screenTile) {
      screenTile = makeTile('screen');
      screenTile.dataset.screenOf = participant;
      screenTile.dataset.track = m.track;
      screenTile.dataset.hasVideo = 'true';
      screenTile.dataset.audioMuted = 'false';
      screenTile.dataset.videoMuted = 'false';
      markShared(screenTile);
      after.after(screenTile);
    }
    const name = client?.participants.get(participant)?.name ?? '…';
    /** @type {HTMLElement} */ (screenTile.querySelector('.name')).textContent = `${name} (screen)`;
    screenTile.dataset.videoMuted = String(trackInfo(participant, m.track)?.muted ?? false);
    const screenVideo = /** @type {HTMLVideoElement} */ (screenTile.querySelector('video'));
    attach(screenVideo, m.mediaTrack);
    setVideoTrack(screenVideo, m.track);
    showStreamState(screenTile, participant, m.track);
    if (screenTile.parentElement === ui.grid) after = screenTile;
  }
  layout();
}

/**
 * Of a participant's remote tracks, in the order they came, the one to play of each source.
 * While an `auto` room switches paths a source arrives twice, through the server and directly:
 * the newest copy whose media flows plays (`client.flowing`), else the one playing now, else the
 * newest; so no sound plays twice and no picture stops while another could go on.
 * @param {string} participant
 * @param {RemoteTrackDetail[]} tracks
 * @returns {RemoteTrackDetail[]}
 */
function oneBySource(participant, tracks) {
  /** The MediaStreamTracks the participant's tiles play now. @type {Set<MediaStreamTrack>} */
  const playing = new Set();
  const id = CSS.escape(participant);
  for (const el of ui.tiles.querySelectorAll(`[data-participant="${id}"] :is(video, audio), [data-screen-of="${id}"] video`)) {
    const src = /** @type {HTMLMediaElement} */ (el).srcObject;
    if (src instanceof MediaStream) src.getTracks().forEach((t) => playing.add(t));
  }
  /** @type {Map<string, RemoteTrackDetail[]>} */
  const bySource = new Map();
  for (const m of tracks) {
    const source = trackInfo(participant, m.track)?.source ?? (m.kind === 'audio' ? 'microphone' : 'camera');
    bySource.set(source, [...(bySource.get(source) ?? []), m]);
  }
  const chosen = new Set([...bySource.values()].map((copies) => [...copies].reverse().find((m) => flowing(m.mediaTrack))
    ?? copies.find((m) => playing.has(m.mediaTrack)) ?? /** @type {RemoteTrackDetail} */ (copies.at(-1))));
  return tracks.filter((m) => chosen.has(m));
}

/** @param {MediaStreamTrack} track whether its media flows */
const flowing = (track) => client?.flowing(track) ?? !track.muted;

// ------------------------------------------------------------------ media path

const PATH_TEXT = {
  p2p: ['Direct (peer-to-peer)', 'Media goes directly between the browsers'],
  sfu: ['Via server', 'Media goes through the server'],
  switching: ['Switching…', 'Media is moving between direct connections and the server'],
};

/** @param {import('./mesh.js').PathState} path how our media travels now */
function showPath(path) {
  const [text, title] = PATH_TEXT[path];
  ui.path.dataset.path = path;
  /** @type {HTMLElement} */ (ui.path.querySelector('.path-text')).textContent = text;
  ui.path.title = title;
  ui.path.setAttribute('aria-label', `Media path: ${text}`);
}

/** Speaker view: the active speaker's tile in the spotlight when nobody shares a screen. */
let speakerView = false;
/** The last other participant who was the active speaker (speaker view shows them). @type {string | null} */
let lastSpeaker = null;

/** Place and size the tiles: a grid, or a shared screen (or, in speaker view, the speaker) in the spotlight (layout.js). */
function layout() {
  /** @type {HTMLElement | null} */
  let focus = null;
  if (speakerView) {
    const id = lastSpeaker && client?.participants.has(lastSpeaker) ? lastSpeaker : client?.participants.keys().next().value;
    const el = id ? ui.tiles.querySelector(`.tile[data-participant="${CSS.escape(id)}"]`) : null;
    focus = el instanceof HTMLElement ? el : null;
  }
  arrange(ui, focus);
}

ui.layoutButton.addEventListener('click', () => {
  speakerView = !speakerView;
  ui.layoutButton.setAttribute('aria-pressed', String(speakerView));
  ui.layoutButton.textContent = speakerView ? 'Grid view' : 'Speaker view';
  layout();
});

new ResizeObserver(layout).observe(ui.tiles);

// ------------------------------------------------------------------ stream state

/**
 * The tiles showing a remote video track: the participant's tile if it shows it as its camera,
 * and the screen tile of it.
 * @param {string} participant
 * @param {string} track
 * @returns {HTMLElement[]}
 */
function tilesShowing(participant, track) {
  const p = CSS.escape(participant);
  const t = CSS.escape(track);
  return [...ui.tiles.querySelectorAll(`.tile[data-participant="${p}"], .tile.screen[data-screen-of="${p}"]`)]
    .filter((el) => el instanceof HTMLElement && el.querySelector(`video[data-track="${t}"]`) !== null)
    .map((el) => /** @type {HTMLElement} */ (el));
}

/**
 * What the user reads on a paused video, by the reason it paused; null: nothing (hidden: not
 * seen anyway; muted: the tile shows the muted avatar).
 * @param {StreamStateMessage} s
 * @returns {string | null}
 */
function pausedText(s) {
  switch (s.reason) {
    case 'bandwidth': return 'Video paused: low bandwidth';
    case 'publisher': return 'Video paused: the sender stopped sending';
    case 'hidden':
    case 'muted': return null;
    default: return 'Video paused';
  }
}

/**
 * Show on `tile` what the server sends of `track` (its last `stream_state`): the layer badge
 * (its tooltip says why the layer last changed and the downlink estimate), the paused notice, and the data attributes data-layer, data-stream-state, data-stream-reason
 * and data-estimate (absent while nothing is known).
 * @param {HTMLElement} tile
 * @param {string} participant
 * @param {string} track
 */
function showStreamState(tile, participant, track) {
  const s = track ? client?.streamState(participant, track) ?? null : null;
  const layerEl = /** @type {HTMLElement} */ (tile.querySelector('.layer'));
  const pausedEl = /** @type {HTMLElement} */ (tile.querySelector('.paused'));
  if (!s) {
    for (const a of ['layer', 'streamState', 'streamReason', 'estimate']) delete tile.dataset[a];
    layerEl.hidden = true;
    pausedEl.hidden = true;
    return;
  }
  const layer = s.state === 'active' ? s.layer ?? '' : '';
  tile.dataset.layer = layer;
  tile.dataset.streamState = s.state;
  tile.dataset.streamReason = s.reason;
  tile.dataset.estimate = s.estimate == null ? '' : String(s.estimate);
  layerEl.textContent = layer;
  layerEl.hidden = !layer;
  const estimate = s.estimate == null ? '' : `, your downlink estimate ${(s.estimate / 1e6).toFixed(2)} Mbit/s`;
  layerEl.title = `Receiving layer ${layer} (last change: ${s.reason}${estimate})`;
  const text = s.state === 'paused' ? pausedText(s) : null;
  pausedEl.textContent = text ?? '';
  pausedEl.hidden = text === null;
}

// ------------------------------------------------------------------ adaptive stream

/** How long a track's size must hold still before the server is told, in milliseconds. */
const SUBSCRIPTION_DEBOUNCE_MS = 200;

/** Whether each observed video element is in the viewport (missing: not known yet). */
/** @type {WeakMap<Element, boolean>} */
const inView = new WeakMap();
/** Pending `subscription` per "participant\0track". @type {Map<string, ReturnType<typeof setTimeout>>} */
const subscriptionTimers = new Map();

const resizeObserver = new ResizeObserver((entries) => {
  for (const e of entries) scheduleVideo(e.target);
});
const intersectionObserver = new IntersectionObserver((entries) => {
  for (const e of entries) {
    inView.set(e.target, e.isIntersecting);
    scheduleVideo(e.target);
  }
});
document.addEventListener('visibilitychange', () => {
  for (const m of remoteMedia.values()) {
    if (m.kind === 'video') scheduleSubscription(m.participant, m.track);
  }
});

/**
 * Follow the size and visibility of a remote video element.
 * @param {HTMLVideoElement} video
 */
function watchVideo(video) {
  resizeObserver.observe(video);
  intersectionObserver.observe(video);
}

/**
 * Set the remote track a video element shows (`data-track`); both the old and the new track's
 * sizes are then told to the server.
 * @param {HTMLVideoElement} video
 * @param {string} track
 */
function setVideoTrack(video, track) {
  const old = video.dataset.track ?? '';
  if (old === track) return;
  video.dataset.track = track;
  scheduleVideo(video, old);
  scheduleVideo(video);
}

/**
 * @param {Element} video
 * @param {string} [track] default: the one it shows now
 */
function scheduleVideo(video, track) {
  if (!(video instanceof HTMLVideoElement)) return;
  const tile = video.closest('.tile');
  const participant = tile instanceof HTMLElement ? tile.dataset.participant ?? tile.dataset.screenOf : undefined;
  const t = track ?? video.dataset.track;
  if (participant && t) scheduleSubscription(participant, t);
}

/**
 * Tell the server the size `track` is shown at, once it has held still for a moment.
 * @param {string} participant
 * @param {string} track
 */
function scheduleSubscription(participant, track) {
  const key = `${participant}\u0000${track}`;
  clearTimeout(subscriptionTimers.get(key));
  subscriptionTimers.set(key, setTimeout(() => {
    subscriptionTimers.delete(key);
    // A track no longer received needs nothing (its tile is gone, or it was unpublished).
    if (!client || !remoteMedia.has(key)) return;
    const { width, height } = shownSize(participant, track);
    client.setSubscription(participant, track, width, height);
  }, SUBSCRIPTION_DEBOUNCE_MS));
}

/**
 * The largest size, in device pixels, at which some video element shows `track`: 0 x 0 when
 * none does (page in the background, scrolled out, no element for it).
 * @param {string} participant
 * @param {string} track
 * @returns {{width: number, height: number}}
 */
function shownSize(participant, track) {
  let width = 0;
  let height = 0;
  if (document.visibilityState === 'hidden') return { width, height };
  const dpr = window.devicePixelRatio || 1;
  for (const tile of tilesShowing(participant, track)) {
    const video = tile.querySelector(`video[data-track="${CSS.escape(track)}"]`);
    if (!video || inView.get(video) === false) continue;
    width = Math.max(width, Math.round(video.clientWidth * dpr));
    height = Math.max(height, Math.round(video.clientHeight * dpr));
  }
  if (width > 0 && height > 0) return { width, height };
  // During a switch of paths (an `auto` room) a track may come twice, through the server and
  // directly, and one copy is shown: the other is wanted as large, to take over.
  const source = client?.mesh ? trackInfo(participant, track)?.source : undefined;
  if (!source) return { width: 0, height: 0 };
  const copy = [...remoteMedia.values()].find((m) => m.participant === participant && m.track !== track
    && m.kind === 'video' && trackInfo(participant, m.track)?.source === source && tilesShowing(participant, m.track).length > 0);
  return copy ? shownSize(participant, copy.track) : { width: 0, height: 0 };
}

// ------------------------------------------------------------------ controls

function syncButtons() {
  for (const [button, kind, what] of /** @type {const} */ ([
    [ui.micButton, 'audio', 'microphone'],
    [ui.cameraButton, 'video', 'camera'],
  ])) {
    const muted = client?.isMuted(what) ?? null;
    button.disabled = muted === null;
    button.setAttribute('aria-pressed', String(muted === true));
    const label = muted === null ? `No ${what}` : kind === 'audio'
      ? (muted ? 'Unmute microphone' : 'Mute microphone')
      : (muted ? 'Turn camera on' : 'Turn camera off');
    button.setAttribute('aria-label', label);
    button.title = label;
  }
  const audioMuted = client?.isMuted('microphone') ?? true;
  const videoMuted = client?.isMuted('camera') ?? true;
  selfTile.dataset.audioMuted = String(audioMuted);
  selfTile.dataset.videoMuted = String(videoMuted);
}

ui.micButton.addEventListener('click', () => {
  if (!client) return;
  client.setMuted('microphone', !client.isMuted('microphone'));
  syncButtons();
});

ui.cameraButton.addEventListener('click', () => {
  if (!client) return;
  client.setMuted('camera', !client.isMuted('camera'));
  syncButtons();
});

// ------------------------------------------------------------------ screen share

const screenShare = new ScreenShare(() => client, syncShareButton);

/** The Share button: pressed while sharing; busy while the browser's picker is open. */
function syncShareButton() {
  const { state } = screenShare;
  const supported = canShareScreen();
  ui.shareButton.disabled = !supported || !client || !client.grants.canPublish || state === 'starting';
  ui.shareButton.setAttribute('aria-pressed', String(state === 'sharing'));
  const label = !supported ? 'This browser cannot share a screen'
    : client && !client.grants.canPublish ? 'Your access token does not allow publishing'
    : state === 'sharing' ? 'Stop sharing your screen' : 'Share your screen';
  ui.shareButton.setAttribute('aria-label', state === 'sharing' ? 'Stop sharing' : 'Share screen');
  ui.shareButton.title = label;
}

ui.shareButton.addEventListener('click', async () => {
  if (!client) return;
  if (screenShare.state === 'sharing') {
    screenShare.stop();
    return;
  }
  const notice = await screenShare.start();
  if (notice) showNotice(notice.text, notice.level);
});

ui.leaveButton.addEventListener('click', () => {
  client?.leave();
  endCall();
  showNotice('You left the call.', 'info');
});

window.addEventListener('pagehide', () => client?.leave());

// ------------------------------------------------------------------ settings dialog

ui.settingsButton.addEventListener('click', () => {
  ui.settingsDialog.showModal();
  showPreview();
});
ui.settingsClose.addEventListener('click', () => ui.settingsDialog.close());
ui.settingsDialog.addEventListener('close', () => {
  showPreview();
  if (client) ui.settingsButton.focus();
});

// ------------------------------------------------------------------ stats panel

// The Stats button shows what stats.js makes of the connection's getStats, refreshed once a
// second while the panel is open; closed, nothing is polled.

// The graphs' points come from the same summaries, so they too cover only the time it is open.
const trends = new Trends();
const statsPoller = new StatsPoller(() => client, (summary) => {
  if (summary) trends.add(summary);
  renderStats(ui.statsBody, summary, trends);
});
debug.stats = statsPoller;

/**
 * A side panel opened and closed by its toggle button, its close button, and Escape (which
 * gives the focus back to the toggle). `onChange(open)` runs before the tiles are laid out again.
 * Returns the function that opens or closes it.
 * @param {HTMLButtonElement} button
 * @param {HTMLElement} panel
 * @param {HTMLButtonElement} close
 * @param {(open: boolean) => void} onChange
 * @returns {(open: boolean) => void}
 */
function sidePanel(button, panel, close, onChange) {
  /** @param {boolean} open */
  const set = (open) => {
    panel.hidden = !open;
    button.setAttribute('aria-pressed', String(open));
    onChange(open);
    layout();
  };
  const closeAndRefocus = () => {
    set(false);
    button.focus();
  };
  button.addEventListener('click', () => set(panel.hidden));
  close.addEventListener('click', closeAndRefocus);
  panel.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeAndRefocus();
  });
  return set;
}

const setStatsOpen = sidePanel(ui.statsButton, ui.statsPanel, ui.statsClose, (open) => {
  if (open) {
    showStatsNote(ui.statsBody, 'Gathering stats…');
    client?.ping(); // the signaling round trip, without waiting for the next 10 s ping
    statsPoller.start();
  } else {
    statsPoller.stop();
    trends.clear();
  }
});

// ------------------------------------------------------------------ chat panel

const chat = new Chat(
  { panel: ui.chatPanel, log: ui.chatLog, form: ui.chatForm, input: ui.chatInput, badge: ui.chatUnread, to: ui.chatTo, file: ui.chatFile },
  () => client,
);

debug.files = chat.files;

sidePanel(ui.chatButton, ui.chatPanel, ui.chatClose, (open) => {
  if (!open) return;
  chat.opened();
  ui.chatInput.focus();
});

// ------------------------------------------------------------------ join / leave

/**
 * The room an access token is for (read, not verified: the server verifies it), if any.
 * @param {string | null} token
 * @returns {string | null}
 */
function tokenRoom(token) {
  const payload = token?.split('.')[1];
  if (!payload) return null;
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const room = JSON.parse(json)?.video?.room;
    return typeof room === 'string' ? room : null;
  } catch {
    return null;
  }
}

function wsUrl() {
  const url = new URL('/ws', location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/** @param {boolean} busy */
function setJoining(busy) {
  joining = busy;
  ui.joinButton.disabled = busy;
  ui.room.disabled = busy;
  ui.name.disabled = busy;
  if (!busy) ui.joinStatus.textContent = '';
}

/**
 * @param {unknown} err
 * @returns {string}
 */
function joinErrorText(err) {
  if (!(err instanceof ConfabError)) return `Could not join: ${describe(err)}`;
  switch (err.code) {
    case 'unreachable':
      return `Server unreachable: could not connect to ${location.host}. Check that the server is running and try again.`;
    case 'timeout':
      return 'The server did not answer in time. Try again.';
    case 'invalid_room':
      return 'That room name is not valid: use 1–64 letters, digits, dots, dashes or underscores.';
    case 'invalid_name':
      return 'That name is not valid: use 1–64 characters, without control characters.';
    case 'server_full':
      return 'The server is full right now. Try again later.';
    case 'shutting_down':
      return 'The server is shutting down for maintenance and takes nobody new. Try again in a few minutes.';
    case 'room_full':
      return 'This room is full. Try again later, or join another room.';
    case 'rate_limited':
      return `Too many joins from your network: ${err.message.replace(/^too many joins from your address: /, '')}.`;
    case 'unauthorized':
      return `This server needs a valid access token: open the link with a token you were given (${err.message}).`;
    case 'forbidden':
      return `Your access token does not let you join this room (${err.message}).`;
    default:
      return `Could not join (${err.code}): ${err.message}`;
  }
}

/**
 * What to tell the user when the server ended the session.
 * @param {ClosedDetail} d
 */
function closedText(d) {
  switch (d.error) {
    case 'media_failed':
      return 'Your media connection failed, so you were removed from the call. Join again to retry.';
    case 'too_slow':
      return 'Your connection was too slow, so you were removed from the call.';
    case 'removed':
      return 'An administrator removed you from the call.';
    case 'server_full':
      return 'The server is full right now. Try again later.';
    case 'internal':
      return 'The server had an internal error and ended your session.';
    case 'reconnect_failed':
      return 'The connection to the server was lost for too long, so you left the call. Join again.';
    default:
      break;
  }
  if (d.code === 1001) return 'The server is shutting down. You have left the call.';
  if (d.code === 4001) return 'Connection lost: the server stopped hearing from this page.';
  const code = d.code === 1006 ? '' : ` (code ${d.code})`;
  return `Connection to the server was lost${code}. Join again when it is back.`;
}

/** @param {SubmitEvent} ev */
async function onJoin(ev) {
  ev.preventDefault();
  if (joining || client) return;
  const room = ui.room.value.trim();
  const name = ui.name.value.trim();
  if (!ROOM_RE.test(room)) {
    showNotice('Enter a room: 1–64 letters, digits, dots, dashes or underscores.', 'error');
    ui.room.focus();
    return;
  }
  if (!name || Array.from(name).length > 64) {
    showNotice('Enter your name (at most 64 characters).', 'error');
    ui.name.focus();
    return;
  }
  hideNotice();
  setJoining(true);
  const query = new URLSearchParams(location.search);
  query.set('room', room);
  query.set('name', name);
  history.replaceState(null, '', `?${query}`);
  try { localStorage.setItem('confab.name', name); } catch { /* private mode */ }

  // Camera and signaling start together: the others' media is negotiated while the camera
  // starts, and our own tracks are published as soon as it has.
  ui.joinStatus.textContent = 'Connecting…';
  // `?relay=1`: media only through the server's TURN relay (to try the path of a client whose
  // direct paths are blocked).
  const mode = pageParams.get('mode');
  const c = new ConfabClient(wsUrl(), {
    iceTransportPolicy: pageParams.get('relay') === '1' ? 'relay' : 'all',
    token: pageParams.get('token') ?? undefined,
    mode: mode === 'p2p' || mode === 'auto' || mode === 'sfu' ? mode : undefined,
  });
  client = c;
  debug.client = c;
  wire(c);
  // The lobby's camera and microphone, as chosen there; started now if they are not running.
  const mediaReady = localMedia.capture();
  /** @type {string} */
  let shownName;
  try {
    // The name shown is the server's: an access token may set it.
    shownName = (await c.join(room, name, null)).participant.name;
  } catch (err) {
    if (client === c) client = null;
    setJoining(false);
    showNotice(joinErrorText(err), 'error');
    return;
  }
  setJoining(false);
  enterCall(room, shownName);

  if (!c.grants.canPublish) {
    // A viewer's token: nothing of ours would be forwarded, so nothing is captured or sent.
    localMedia.stop();
    showSelf();
    syncShareButton();
    showNotice('You are here to watch and listen: your access token does not allow publishing your camera or microphone.', 'info');
    return;
  }
  await mediaReady;
  // Left (or lost the connection) while the camera was starting: endCall stopped it.
  if (client !== c) return;
  const { stream, notice } = localMedia;
  if (notice) showNotice(notice, 'warning');
  const simulcast = pageParams.get('simulcast') !== '0';
  for (const track of stream?.getTracks() ?? []) c.publish(track, /** @type {MediaStream} */ (stream), { simulcast });
  showSelf();
}

/**
 * @param {string} room
 * @param {string} name
 */
function enterCall(room, name) {
  ui.lobby.hidden = true;
  ui.call.hidden = false;
  deviceSettings.moveTo(ui.dialogSettingsSlot);
  showPreview();
  ui.roomLabel.textContent = room;
  document.title = `${room} · confab`;
  /** @type {HTMLElement} */ (selfTile.querySelector('.name')).textContent = `${name} (you)`;
  /** @type {HTMLElement} */ (selfTile.querySelector('.initials')).textContent = initials(name);
  showSelf();
  syncShareButton();
  updateCount();
  layout();
}

/** Show what we publish (if the camera has started) on the self tile and the buttons. */
function showSelf() {
  const camera = localMedia.track('video');
  attach(selfVideo, camera);
  selfTile.dataset.hasVideo = String(!!camera);
  selfTile.dataset.videoReady = String(!!camera);
  syncButtons();
}

function endCall() {
  client = null;
  screenShare.stop();
  syncShareButton();
  setStatsOpen(false);
  localMedia.stop();
  selfVideo.srcObject = null;
  lastSpeaker = null;
  clearRemoteTiles();
  if (ui.settingsDialog.open) ui.settingsDialog.close();
  ui.call.hidden = true;
  ui.lobby.hidden = false;
  deviceSettings.moveTo(ui.lobbySettingsSlot);
  showPreview();
  ui.connState.dataset.state = 'new';
  ui.connState.textContent = 'Connecting…';
  document.title = 'confab';
  setJoining(false);
  ui.joinButton.focus();
}

/**
 * Ring the tiles of those speaking, and mark the active speaker's.
 * @param {import('./messages.js').SpeakersMessage} msg
 */
function showSpeakers(msg) {
  if (msg.active && msg.active !== client?.participantId && msg.active !== lastSpeaker) {
    lastSpeaker = msg.active;
    if (speakerView) layout();
  }
  const speaking = new Set(msg.speaking.map((s) => s.participant));
  for (const el of ui.tiles.querySelectorAll('.tile:not(.screen)')) {
    const tile = /** @type {HTMLElement} */ (el);
    const id = tile.classList.contains('self') ? client?.participantId : tile.dataset.participant;
    tile.dataset.speaking = String(Boolean(id && speaking.has(id)));
    tile.classList.toggle('active-speaker', Boolean(id && id === msg.active));
  }
}

/** @param {ConfabClient} c */
function wire(c) {
  const mine = () => client === c;
  c.on('joined', (msg) => {
    chat.clear();
    chat.rosterChanged();
    for (const p of msg.participants) updateTile(p.id);
    showPath(c.mediaPath);
  });
  c.on('mediapath', ({ path }) => { if (mine()) showPath(path); });
  // A switch of paths: the copy of a track that plays follows which flows.
  c.on('remoteflow', ({ participant }) => { if (mine()) renderMedia(participant); });
  c.on('peertimeout', ({ participant }) => {
    if (!mine()) return;
    const name = c.participants.get(participant)?.name ?? 'Someone';
    showNotice(`${name}'s browser did not answer: no direct connection to them, so you cannot see or hear each other.`, 'warning');
  });
  c.on('data', (d) => { if (mine()) chat.onData(d); });
  c.on('participant_joined', () => { if (mine()) chat.rosterChanged(); });
  c.on('participant_left', () => { if (mine()) chat.rosterChanged(); });
  c.on('participant_joined', (msg) => { if (mine()) updateTile(msg.participant.id); });
  c.on('localmute', ({ source, muted }) => {
    if (!mine()) return;
    syncButtons();
    const what = source === 'microphone' ? 'microphone' : source === 'camera' ? 'camera' : 'screen share';
    showNotice(muted ? `An administrator turned off your ${what}.` : `An administrator turned your ${what} back on.`, 'warning');
  });
  c.on('draining', (msg) => {
    if (!mine()) return;
    const when = msg.seconds >= 120 ? `${Math.round(msg.seconds / 60)} minutes` : `${msg.seconds} seconds`;
    showNotice(`The server is shutting down for maintenance: this call ends within ${when}. Nobody new can join now.`, 'warning');
  });
  c.on('participant_left', (msg) => { if (mine()) removeTile(msg.participant); });
  /** @param {{participant: string}} msg */
  const refresh = (msg) => {
    if (!mine()) return;
    updateTile(msg.participant);
    renderMedia(msg.participant);
  };
  c.on('track_published', refresh);
  c.on('track_unpublished', (msg) => {
    remoteMedia.delete(`${msg.participant}\u0000${msg.track}`);
    refresh(msg);
  });
  c.on('speakers', (msg) => { if (mine()) showSpeakers(msg); });
  c.on('stream_state', (msg) => {
    if (!mine()) return;
    for (const tile of tilesShowing(msg.participant, msg.track)) showStreamState(tile, msg.participant, msg.track);
    // While a switch of paths shows a copy of the track, a paused one gives way to it.
    if (c.mesh) renderMedia(msg.participant);
  });
  c.on('track_muted', refresh);
  c.on('track_unmuted', refresh);
  c.on('remotetrack', (d) => {
    if (!mine()) return;
    remoteMedia.set(`${d.participant}\u0000${d.track}`, d);
    renderMedia(d.participant);
  });
  c.on('remotetrackended', (d) => {
    if (!mine()) return;
    const key = `${d.participant}\u0000${d.track}`;
    // Only if that m-line still is what carries this track.
    if (remoteMedia.get(key)?.mid === d.mid) remoteMedia.delete(key);
    renderMedia(d.participant);
  });
  c.on('connectionstatechange', ({ state }) => {
    // While the socket reconnects the page says so, whatever the media connection does.
    if (!mine() || c.state === 'reconnecting') return;
    const text = {
      new: 'Connecting…', connecting: 'Connecting media…', connected: 'Connected',
      disconnected: 'Reconnecting…', failed: 'Media connection failed', closed: 'Closed',
    };
    ui.connState.dataset.state = state;
    ui.connState.textContent = text[state] ?? state;
  });
  c.on('error', (msg) => console.warn(`confab: server error ${msg.code}: ${msg.message}`));
  c.on('participant_reconnecting', (msg) => { if (mine()) updateTile(msg.participant); });
  c.on('participant_reconnected', (msg) => { if (mine()) updateTile(msg.participant); });
  c.on('reconnecting', () => {
    if (!mine()) return;
    ui.connState.dataset.state = 'reconnecting';
    ui.connState.textContent = 'Reconnecting…';
  });
  c.on('reconnected', () => {
    if (!mine()) return;
    const state = c.pc?.connectionState ?? 'connected';
    ui.connState.dataset.state = state;
    ui.connState.textContent = state === 'connected' ? 'Connected' : 'Reconnecting…';
  });
  c.on('closed', (d) => {
    if (!mine() || d.local || !d.joined) return;
    endCall();
    showNotice(closedText(d), 'error');
  });
}

// ------------------------------------------------------------------ start

ui.form.addEventListener('submit', onJoin);
// The button is disabled in the HTML until now: a click before this page's script has taken over
// the form would submit it natively and reload the page.
ui.joinButton.disabled = false;
syncShareButton();
{
  // `?res=540` (or 360) sets the camera size for this page; the settings change it.
  const res = Number(pageParams.get('res'));
  if (CAMERA_HEIGHTS.includes(res)) deviceSettings.choice.resolution = res;
}
ui.previewButton.addEventListener('click', () => {
  localMedia.capture();
  showPreview();
});
localMedia.capture();
showPreview();

{
  let savedName = null;
  try { savedName = localStorage.getItem('confab.name'); } catch { /* private mode */ }
  ui.room.value = pageParams.get('room') || tokenRoom(pageParams.get('token')) || '';
  ui.name.value = pageParams.get('name') ?? savedName ?? '';
  (ui.room.value ? ui.name : ui.room).focus();
}

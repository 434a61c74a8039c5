// @ts-check
// The page's own camera and microphone: captured with the devices chosen in the settings,
// previewed in the lobby, published in the call, and changed in place when a setting changes
// (devices.js: a new device replaces the old one on its sender, a new size is applied to the
// track). The lobby's preview is the only DOM it touches; app.js decides when to show what.

import { deviceOf, openDevice, setResolution, switchDevice } from './devices.js';
import { getLocalMedia } from './media.js';

/** @typedef {import('./protocol.js').ConfabClient} ConfabClient */
/** @typedef {import('./settings.js').DeviceSettings} DeviceSettings */
/** @typedef {import('./settings.js').Setting} Setting */

/**
 * The lobby's preview.
 * @typedef {object} PreviewElements
 * @property {HTMLElement} box gets `data-video` (whether a picture shows)
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} status what shows instead of a picture
 * @property {HTMLButtonElement} button starts the camera again (after a call)
 */

export class LocalMedia {
  /** @type {MediaStream | null} the camera and microphone, as far as they started */
  stream = null;
  /** @type {string | null} what the user should know of how `stream` was got, or null */
  notice = null;
  /** @type {Promise<void> | null} the capture under way */
  #capturing = null;
  /** Bumped by stop(): work of an earlier run then discards the tracks it gets. */
  #run = 0;

  /**
   * @param {DeviceSettings} settings the devices chosen, and where they are shown
   * @param {PreviewElements} preview
   * @param {() => void} onChange called when a capture has ended (the stream is new)
   */
  constructor(settings, preview, onChange) {
    this.settings = settings;
    this.preview = preview;
    this.onChange = onChange;
  }

  /**
   * The camera or the microphone of `stream`.
   * @param {'audio' | 'video'} kind
   * @returns {MediaStreamTrack | null}
   */
  track(kind) {
    return (kind === 'video' ? this.stream?.getVideoTracks() : this.stream?.getAudioTracks())?.[0] ?? null;
  }

  /**
   * Start the camera and microphone with the chosen devices, unless they run or are starting;
   * resolves when they have started, or failed (then `stream` is null or lacks a device, and
   * `notice` says why). Never rejects.
   * @returns {Promise<void>}
   */
  capture() {
    if (this.#capturing) return this.#capturing;
    if (this.stream) return Promise.resolve();
    const run = this.#run;
    const { choice } = this.settings;
    const options = { height: choice.resolution ?? 720, camera: choice.camera, microphone: choice.microphone };
    const p = getLocalMedia(options).then((m) => {
      if (run !== this.#run) {
        m.stream?.getTracks().forEach((t) => t.stop());
        return;
      }
      this.#capturing = null;
      this.stream = m.stream;
      this.notice = m.notice;
      this.onChange();
    });
    this.#capturing = p;
    return p;
  }

  /** Stop the camera and microphone (and any capture under way). */
  stop() {
    this.#run++;
    this.#capturing = null;
    this.stream?.getTracks().forEach((t) => t.stop());
    this.stream = null;
    this.notice = null;
  }

  /**
   * Show the stream: in the lobby's preview when `inLobby`, the microphone on the settings'
   * meter when `meter`, and the devices in use as selected in the settings.
   * @param {{inLobby: boolean, meter: boolean}} where
   */
  show({ inLobby, meter }) {
    const { box, video, status, button } = this.preview;
    const camera = this.track('video');
    const shown = video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks()[0] : null;
    if (!inLobby || !camera) video.srcObject = null;
    else if (shown !== camera) video.srcObject = new MediaStream([camera]);
    box.dataset.video = String(inLobby && !!camera);
    button.hidden = !inLobby || !!this.stream || !!this.#capturing;
    if (!camera) {
      status.textContent = this.#capturing ? 'Starting your camera…'
        : this.stream ? 'No camera: you will join without video.'
        : this.notice ? 'Camera and microphone unavailable.' : 'Camera off.';
    }
    const mic = this.track('audio');
    this.settings.measure(meter ? mic : null);
    this.settings.refresh({ camera: deviceOf(camera), microphone: deviceOf(mic) });
  }

  /**
   * Apply a changed setting to the running camera or microphone: another device replaces the
   * old one (on its sender, in a call), another size is applied to the camera track. With
   * nothing running: in the lobby the capture starts with the new choice; in a call the device
   * is opened and published. Rejects if the device cannot be opened (the old one then runs on).
   * @param {Exclude<Setting, 'speaker'>} setting
   * @param {ConfabClient | null} client in a call, the client that publishes the stream
   * @param {{simulcast: boolean}} publish how to publish a device there was none of
   */
  async apply(setting, client, publish) {
    if (this.#capturing) await this.#capturing;
    const run = this.#run;
    const { choice } = this.settings;
    if (!this.stream && !client) {
      await this.capture();
      return;
    }
    if (setting === 'resolution') {
      const camera = this.track('video');
      if (camera) await setResolution(camera, choice.resolution ?? 720);
      return;
    }
    const kind = setting === 'camera' ? 'video' : 'audio';
    if (this.stream && this.track(kind)) {
      const next = await switchDevice(this.stream, kind, choice, client);
      if (run !== this.#run) next.stop();
      return;
    }
    const track = await openDevice(kind, choice);
    if (run !== this.#run) {
      track.stop();
      return;
    }
    this.stream ??= new MediaStream();
    this.stream.addTrack(track);
    this.notice = null;
    // Before `joined`, the page publishes the whole stream once it has joined.
    if (client?.state === 'joined') client.publish(track, this.stream, publish);
  }
}

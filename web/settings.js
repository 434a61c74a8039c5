// @ts-check
// The device settings of the meeting page: camera, microphone, speaker (where the browser can
// choose one) and camera size, as select elements in one fieldset with a microphone level meter.
// The fieldset is shown in the lobby before Join and moved into the Settings dialog during a
// call, so one choice is carried from one to the other. The choice is remembered (devices.js);
// what to do about a change is the caller's (`onChange`).

import { canChooseSpeaker, listDevices, loadChoice, saveChoice } from './devices.js';
import { LevelMeter } from './meter.js';

/** @typedef {import('./devices.js').DeviceChoice} DeviceChoice */
/** @typedef {'camera' | 'microphone' | 'speaker' | 'resolution'} Setting */

/**
 * @typedef {object} SettingsElements
 * @property {HTMLElement} fieldset everything below, moved as one
 * @property {HTMLSelectElement} camera
 * @property {HTMLSelectElement} microphone
 * @property {HTMLSelectElement} speaker
 * @property {HTMLElement} speakerRow hidden where the speaker cannot be chosen
 * @property {HTMLSelectElement} resolution
 * @property {HTMLMeterElement} meter
 */

/** What to call a device the browser gives no label (before any permission). */
const UNNAMED = { camera: 'Camera', microphone: 'Microphone', speaker: 'Speaker' };

export class DeviceSettings {
  /** @type {DeviceChoice} the current choice */
  choice = loadChoice();
  /** Devices in use now, by kind, shown as selected whatever the saved choice says. */
  /** @type {{camera?: string, microphone?: string}} */
  #inUse = {};
  /** The track on the meter. @type {MediaStreamTrack | null} */
  #measured = null;

  /**
   * @param {SettingsElements} els
   * @param {(setting: Setting) => void} onChange after the user changed a setting (already
   *   saved in `choice`)
   */
  constructor(els, onChange) {
    this.els = els;
    this.onChange = onChange;
    this.meter = new LevelMeter((level) => {
      els.meter.value = level;
      els.meter.dataset.level = level.toFixed(3);
    });
    els.speakerRow.hidden = !canChooseSpeaker();
    for (const [setting, select] of /** @type {const} */ ([
      ['camera', els.camera], ['microphone', els.microphone], ['speaker', els.speaker], ['resolution', els.resolution],
    ])) {
      select.addEventListener('change', () => {
        if (setting === 'resolution') this.choice.resolution = Number(select.value);
        else this.choice[setting] = select.value;
        if (setting === 'camera' || setting === 'microphone') this.#inUse[setting] = select.value;
        saveChoice(this.choice);
        onChange(setting);
      });
    }
    navigator.mediaDevices?.addEventListener?.('devicechange', () => { this.refresh(); });
  }

  /**
   * Fill the selects with the devices there are now, each showing the device in use, else the
   * one chosen, else the first.
   * @param {{camera?: string, microphone?: string}} [inUse] the devices of the tracks in use
   */
  async refresh(inUse) {
    if (inUse) this.#inUse = { ...inUse };
    const devices = await listDevices();
    fill(this.els.camera, devices.cameras, this.#inUse.camera ?? this.choice.camera, UNNAMED.camera);
    fill(this.els.microphone, devices.microphones, this.#inUse.microphone ?? this.choice.microphone, UNNAMED.microphone);
    fill(this.els.speaker, devices.speakers, this.choice.speaker, UNNAMED.speaker);
    this.els.resolution.value = String(this.choice.resolution ?? 720);
  }

  /**
   * Show the level of `track` on the meter (null: nothing to measure).
   * @param {MediaStreamTrack | null | undefined} track
   */
  measure(track) {
    const live = track && track.readyState === 'live' ? track : null;
    if (live === this.#measured) return;
    this.#measured = live;
    if (live) this.meter.start(live);
    else this.meter.stop();
    this.els.meter.dataset.active = String(!!live);
  }

  /**
   * Show the settings in `slot` (the lobby's, or the Settings dialog's).
   * @param {HTMLElement} slot
   */
  moveTo(slot) {
    if (this.els.fieldset.parentElement !== slot) slot.append(this.els.fieldset);
  }
}

/**
 * Make `select`'s options the `devices`, selecting `selected` (or the first).
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string | undefined} selected a deviceId
 * @param {string} unnamed
 */
function fill(select, devices, selected, unnamed) {
  const options = devices.map((d, i) => {
    const o = document.createElement('option');
    o.value = d.deviceId;
    o.textContent = d.label || `${unnamed} ${i + 1}`;
    return o;
  });
  if (options.length === 0) {
    const o = document.createElement('option');
    o.value = '';
    o.textContent = unnamed === UNNAMED.speaker ? 'System default' : `No ${unnamed.toLowerCase()} found`;
    options.push(o);
  }
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
  if (selected && devices.some((d) => d.deviceId === selected)) select.value = selected;
}

// @ts-check
// The devices a call uses: which camera, microphone and speaker, and the camera's size. The
// choice is remembered in localStorage; tracks are opened from it; in a call a new camera or
// microphone is sent on the same sender (ConfabClient.replaceTrack: no renegotiation, the
// simulcast encodings kept) and a new size is applied to the camera track as it is
// (applyConstraints). No DOM code: settings.js shows the choices.

import { CAMERA_HEIGHTS, cameraConstraints, microphoneConstraints } from './media.js';

/** @typedef {import('./protocol.js').ConfabClient} ConfabClient */

/**
 * What the user chose; a missing member means the browser's default.
 * @typedef {object} DeviceChoice
 * @property {string} [camera] deviceId
 * @property {string} [microphone] deviceId
 * @property {string} [speaker] deviceId of an audio output ('' : the default one)
 * @property {number} [resolution] camera height, one of CAMERA_HEIGHTS
 */

/**
 * The devices of each kind, as the browser lists them (labels are empty until the page has
 * been allowed to use a camera or microphone).
 * @typedef {object} DeviceList
 * @property {MediaDeviceInfo[]} cameras
 * @property {MediaDeviceInfo[]} microphones
 * @property {MediaDeviceInfo[]} speakers
 */

const STORAGE_KEY = 'confab.devices';

/**
 * The choice saved by an earlier visit (nothing saved, or storage refused: `{}`).
 * @returns {DeviceChoice}
 */
export function loadChoice() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? '{}');
    if (!saved || typeof saved !== 'object') return {};
    /** @type {DeviceChoice} */
    const choice = {};
    for (const k of /** @type {const} */ (['camera', 'microphone', 'speaker'])) {
      if (typeof saved[k] === 'string') choice[k] = saved[k];
    }
    if (CAMERA_HEIGHTS.includes(saved.resolution)) choice.resolution = saved.resolution;
    return choice;
  } catch {
    return {};
  }
}

/** @param {DeviceChoice} choice */
export function saveChoice(choice) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(choice));
  } catch {
    // private mode, or storage full: the choice lasts for this page only
  }
}

/** Whether this browser can play sound on a chosen output (HTMLMediaElement.setSinkId). */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/** @returns {Promise<DeviceList>} */
export async function listDevices() {
  /** @type {MediaDeviceInfo[]} */
  let all = [];
  try {
    all = (await navigator.mediaDevices?.enumerateDevices?.()) ?? [];
  } catch {
    // no devices to list
  }
  return {
    cameras: all.filter((d) => d.kind === 'videoinput' && d.deviceId),
    microphones: all.filter((d) => d.kind === 'audioinput' && d.deviceId),
    speakers: all.filter((d) => d.kind === 'audiooutput' && d.deviceId),
  };
}

/**
 * Open the camera or microphone `choice` names, that one or none (a new track).
 * @param {'audio' | 'video'} kind
 * @param {DeviceChoice} choice
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openDevice(kind, choice) {
  const constraints = kind === 'video'
    ? { video: cameraConstraints({ height: choice.resolution, deviceId: choice.camera, exact: true }) }
    : { audio: microphoneConstraints({ deviceId: choice.microphone, exact: true }) };
  const stream = await navigator.mediaDevices.getUserMedia(constraints);
  const [track] = kind === 'video' ? stream.getVideoTracks() : stream.getAudioTracks();
  if (!track) throw new DOMException(`no ${kind} track`, 'NotFoundError');
  return track;
}

/**
 * The camera or microphone a live track comes from (its deviceId), if the browser says.
 * @param {MediaStreamTrack | undefined | null} track
 * @returns {string | undefined}
 */
export function deviceOf(track) {
  return track && track.readyState === 'live' ? track.getSettings().deviceId || undefined : undefined;
}

/**
 * Switch `stream`'s camera or microphone to the one `choice` names: open it, send it in place
 * of the old one when `client` publishes that (no renegotiation), put it in `stream` and stop
 * the old one. Some cameras cannot be open twice at once: if opening the new one fails while
 * the old one runs, the old one is stopped first and the new one opened again. Resolves with
 * the new track; rejects (with `stream` as it was, where possible) if the device cannot be
 * opened.
 * @param {MediaStream} stream
 * @param {'audio' | 'video'} kind
 * @param {DeviceChoice} choice
 * @param {ConfabClient | null} client
 * @returns {Promise<MediaStreamTrack>}
 */
export async function switchDevice(stream, kind, choice, client) {
  const old = (kind === 'video' ? stream.getVideoTracks() : stream.getAudioTracks())[0] ?? null;
  let next;
  try {
    next = await openDevice(kind, choice);
  } catch (e) {
    if (!old || !(e instanceof Error) || e.name !== 'NotReadableError') throw e;
    old.stop();
    next = await openDevice(kind, choice);
  }
  if (old && client) {
    try {
      await client.replaceTrack(old, next);
    } catch (e) {
      next.stop();
      throw e;
    }
  } else if (old) {
    next.enabled = old.enabled;
  }
  if (old) {
    stream.removeTrack(old);
    old.stop();
  }
  stream.addTrack(next);
  return next;
}

/**
 * Give a camera track another size, in place (no new track, nothing renegotiated).
 * @param {MediaStreamTrack} track
 * @param {number} height one of CAMERA_HEIGHTS
 */
export async function setResolution(track, height) {
  await track.applyConstraints(cameraConstraints({ height }));
}

/**
 * Play `el` on the speaker `speaker` (a deviceId; nothing to do without one, or where the
 * browser cannot choose).
 * @param {HTMLMediaElement} el
 * @param {string | undefined} speaker
 */
export async function playOn(el, speaker) {
  if (!speaker || typeof el.setSinkId !== 'function' || el.sinkId === speaker) return;
  await el.setSinkId(speaker);
}

// Choosing devices on the meeting page: the lobby previews the camera and shows the
// microphone's level; the camera, microphone, speaker and camera size chosen there are carried
// into the call and remembered; in the call, switching any of them keeps the other person
// receiving, on the same senders, with no new offer (RTCRtpSender.replaceTrack and
// applyConstraints, not renegotiation). Chromium is started with three fake cameras
// (`device-count=3`); the test uses fake_device_0 and fake_device_2: fake_device_1 previews but
// WebRTC encodes no frame of it here (in Chromium's fake set it is a 16-bit depth camera). Its
// fake microphones are "Fake Audio Input 1" and "2" (and the default), its fake speakers "Fake
// Audio Output 1" and "2".

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, sleep, startServer, until, waitForVideoFrom, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-devices';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** Ada's browser, with three fake cameras. @type {import('playwright-core').Browser} */
let browser;
/**
 * Bea's, of its own: two pages of one browser share its fake camera, and a camera one page has
 * open at 640x480 cannot give the other 1280x720.
 * @type {import('playwright-core').Browser}
 */
let other;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];

before(async () => {
  watchStalls();
  server = await startServer('devices');
  browser = await launchBrowser({ fakeDevices: 'device-count=3' });
  other = await launchBrowser();
});

after(async () => {
  for (const p of people) {
    await p.screenshot(`devices-${p.name}`);
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
  }
  await browser?.close();
  await other?.close();
  await server?.stop();
});

/** Init script: count the offers the page sends (`window.__offers`). */
function countOffers() {
  const w = /** @type {any} */ (window);
  w.__offers = 0;
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    try {
      if (typeof data === 'string' && JSON.parse(data).type === 'offer') w.__offers++;
    } catch {
      // not JSON
    }
    return send.call(this, data);
  };
}

/** The lobby's preview: its camera's label and whether it plays; the meter (runs in the page). */
function lobbyState() {
  const video = /** @type {HTMLVideoElement} */ (document.getElementById('preview-video'));
  const track = video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks()[0] : undefined;
  const meter = /** @type {HTMLMeterElement} */ (document.getElementById('mic-meter'));
  return {
    camera: track?.label ?? null,
    playing: video.readyState >= 2 && video.videoWidth > 0,
    level: meter.value,
  };
}

/**
 * What the page publishes: each local track's source, device label, size, and its sender's
 * track and encodings (runs in the page).
 */
function published() {
  const c = window.confab.client;
  return (c?.localTracks ?? []).map((l) => ({
    source: l.source,
    label: l.track.label,
    height: l.track.getSettings().height ?? null,
    onSender: l.transceiver.sender.track === l.track,
    mid: l.transceiver.mid,
    rids: l.transceiver.sender.getParameters().encodings.map((e) => e.rid ?? null),
  }));
}

/**
 * What the page receives of `publisher`: frames decoded and height of its camera, packets of
 * its microphone (runs in the page).
 * @param {string} publisher
 */
function receivedFrom(publisher) {
  return (async () => {
    const c = window.confab.client;
    const out = { frames: 0, height: 0, packets: 0, videoMid: '', audioMid: '' };
    if (!c?.pc) return out;
    const tracks = c.participants.get(publisher)?.tracks ?? [];
    (await c.pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const ref = c.mids.get(s.mid);
      const info = ref?.participant === publisher ? tracks.find((t) => t.id === ref.track) : undefined;
      if (info?.source === 'camera' && (s.framesDecoded ?? 0) >= out.frames) {
        Object.assign(out, { frames: s.framesDecoded ?? 0, height: s.frameHeight ?? 0, videoMid: s.mid });
      }
      if (info?.source === 'microphone' && (s.packetsReceived ?? 0) >= out.packets) {
        Object.assign(out, { packets: s.packetsReceived ?? 0, audioMid: s.mid });
      }
    });
    return out;
  })();
}

/**
 * Wait until `p` receives more of `publisher`'s camera (and, with `audio`, its microphone) than
 * it had at `from`: what "keeps rising" means here, whatever the machine's stalls.
 * @param {Awaited<ReturnType<typeof openParticipant>>} p
 * @param {string} publisher
 * @param {string} what
 * @param {{audio?: boolean}} [opts]
 */
async function keepsReceiving(p, publisher, what, { audio = false } = {}) {
  const from = await p.page.evaluate(receivedFrom, publisher);
  return until(`${p.name} to keep receiving ${what}`, async () => {
    await sleep(500);
    const now = await p.page.evaluate(receivedFrom, publisher);
    const ok = now.frames > from.frames + 5 && now.videoMid === from.videoMid
      && (!audio || (now.packets > from.packets + 10 && now.audioMid === from.audioMid));
    return ok ? { from, now } : null;
  }, { timeout: 30_000, interval: 0 });
}

/**
 * Wait for the camera `page` publishes to be `height` high; on a timeout, say what it is and
 * what the page's notice says.
 * @param {import('playwright-core').Page} page
 * @param {number} height
 */
function cameraHeight(page, height) {
  return until(`Ada's camera to be ${height} high`, async () => {
    const cam = (await page.evaluate(published)).find((s) => s.source === 'camera');
    if (cam?.height === height) return cam;
    throw new Error(`camera ${JSON.stringify(cam)}, notice ${JSON.stringify(await page.locator('#notice').textContent())}`);
  }, { timeout: 10_000 });
}

test('the lobby previews the camera, shows the microphone level, and the choice goes into the call', { timeout: 120_000 }, async (t) => {
  const ada = await openParticipant(browser, server.url, { room: ROOM, name: 'Ada', initScript: countOffers });
  people.push(ada);
  const page = ada.page;

  const devices = await page.evaluate(async () => (await navigator.mediaDevices.enumerateDevices()).map((d) => `${d.kind}: ${d.label}`));
  t.diagnostic(`enumerateDevices: ${JSON.stringify(devices)}`);

  // The preview plays and the fake microphone's beeps move the meter.
  const preview = await until('the lobby preview to play and its meter to move', async () => {
    const s = await page.evaluate(lobbyState);
    return s.playing && s.level > 0 ? s : null;
  }, { timeout: 20_000, interval: 100 });
  t.diagnostic(`lobby: ${JSON.stringify(preview)}`);

  // Every camera, microphone and speaker is offered.
  const options = await page.evaluate(() => Object.fromEntries(['camera', 'microphone', 'speaker', 'resolution'].map((k) => {
    const select = /** @type {HTMLSelectElement} */ (document.getElementById(`${k}-select`));
    return [k, [...select.options].map((o) => o.textContent)];
  })));
  t.diagnostic(`options: ${JSON.stringify(options)}`);
  assert.deepEqual(options.camera, ['fake_device_0', 'fake_device_1', 'fake_device_2']);
  assert.ok(options.microphone.includes('Fake Audio Input 1'), 'the microphones are listed by name');
  assert.ok(options.speaker.includes('Fake Audio Output 1'), 'the speakers are listed (setSinkId exists)');
  assert.equal(await page.locator('#speaker-select').isVisible(), true);

  // Choose the second camera, another microphone and 540p in the lobby.
  await page.selectOption('#camera-select', { label: 'fake_device_2' });
  await until('the preview to show fake_device_2', async () => {
    const s = await page.evaluate(lobbyState);
    return s.camera === 'fake_device_2' && s.playing;
  }, { timeout: 10_000 });
  await page.selectOption('#microphone-select', { label: 'Fake Audio Input 1' });
  await page.selectOption('#resolution-select', '540');
  await until('the meter to move on the new microphone', async () => (await page.evaluate(lobbyState)).level > 0, { timeout: 10_000, interval: 100 });
  const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('confab.devices') ?? '{}'));
  t.diagnostic(`saved: ${JSON.stringify(saved)}`);
  assert.equal(saved.resolution, 540);
  assert.equal(typeof saved.camera, 'string');

  // Join: what was chosen is what is sent.
  const bea = await openParticipant(other, server.url, { room: ROOM, name: 'Bea', query: { res: '360' } });
  people.push(bea);
  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  const sent = await until('Ada to publish her camera and microphone', async () => {
    const s = await page.evaluate(published);
    return s.length === 2 ? s : null;
  }, { timeout: 15_000 });
  t.diagnostic(`Ada publishes ${JSON.stringify(sent)}`);
  const camera = sent.find((s) => s.source === 'camera');
  const mic = sent.find((s) => s.source === 'microphone');
  assert.equal(camera?.label, 'fake_device_2');
  assert.equal(camera?.height, 540);
  assert.equal(mic?.label, 'Fake Audio Input 1');
  await waitForVideoFrom(bea, [/** @type {string} */ (ada.id)], 30_000);
  // The lobby's preview and meter are off in the call.
  assert.equal(await page.evaluate(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview-video')).srcObject), null);
});

test('switching camera, size and microphone in the call keeps media flowing without renegotiating', { timeout: 150_000 }, async (t) => {
  const [ada, bea] = people;
  assert.ok(ada && bea, 'runs after the lobby test');
  const page = ada.page;
  const adaId = /** @type {string} */ (ada.id);

  // Settled: connected, every offer answered, Bea receiving both of Ada's tracks.
  await until('Ada to be connected and stable', () => page.evaluate(() =>
    window.confab.client?.pc?.connectionState === 'connected' && window.confab.client.pc.signalingState === 'stable'), { timeout: 20_000 });
  await keepsReceiving(bea, adaId, 'Ada\'s camera and microphone', { audio: true });
  const offers = await page.evaluate(() => /** @type {any} */ (window).__offers);
  const before = await page.evaluate(published);
  const transceivers = await page.evaluate(() => window.confab.client?.pc?.getTransceivers().length);
  t.diagnostic(`before: ${offers} offers sent, ${transceivers} transceivers, ${JSON.stringify(before)}`);

  // The Settings dialog holds the same settings, with the meter.
  await page.getByRole('button', { name: 'Settings', exact: true }).click();
  const dialog = page.locator('#settings-dialog');
  await dialog.waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await dialog.locator('#camera-select').inputValue(), await page.evaluate(() => window.confab.client?.localTracks.find((l) => l.source === 'camera')?.track.getSettings().deviceId));
  assert.equal(await dialog.locator('#resolution-select').inputValue(), '540');
  await until('the meter in the dialog to move', async () => (await page.evaluate(lobbyState)).level > 0, { timeout: 10_000, interval: 100 });

  // Another camera.
  await dialog.locator('#camera-select').selectOption({ label: 'fake_device_0' });
  await until('Ada to send fake_device_0', async () => {
    const cam = (await page.evaluate(published)).find((s) => s.source === 'camera');
    return cam?.label === 'fake_device_0' && cam.onSender;
  }, { timeout: 10_000 });
  const afterCamera = await keepsReceiving(bea, adaId, 'Ada\'s camera after the switch');
  t.diagnostic(`after the camera switch, Bea: ${JSON.stringify(afterCamera)}`);

  // Another size, down and up, on the same track.
  await dialog.locator('#resolution-select').selectOption('360');
  await cameraHeight(page, 360);
  const afterDown = await keepsReceiving(bea, adaId, 'Ada\'s camera at 360p');
  await dialog.locator('#resolution-select').selectOption('720');
  await cameraHeight(page, 720);
  const afterUp = await keepsReceiving(bea, adaId, 'Ada\'s camera at 720p');
  t.diagnostic(`after 360p, Bea: ${JSON.stringify(afterDown.now)}; after 720p: ${JSON.stringify(afterUp.now)}`);

  // Another microphone.
  await dialog.locator('#microphone-select').selectOption({ label: 'Fake Audio Input 2' });
  await until('Ada to send Fake Audio Input 2', async () => {
    const m = (await page.evaluate(published)).find((s) => s.source === 'microphone');
    return m?.label === 'Fake Audio Input 2' && m.onSender;
  }, { timeout: 10_000 });
  const afterMic = await keepsReceiving(bea, adaId, 'Ada\'s camera and new microphone', { audio: true });
  t.diagnostic(`after the microphone switch, Bea: ${JSON.stringify(afterMic)}`);

  // Another speaker, for every sound of the call.
  const speaker = await dialog.locator('#speaker-select').evaluate((/** @type {HTMLSelectElement} */ s) =>
    [...s.options].find((o) => o.textContent === 'Fake Audio Output 1')?.value);
  await dialog.locator('#speaker-select').selectOption({ label: 'Fake Audio Output 1' });
  const sinks = await until('Bea\'s sound to play on Fake Audio Output 1', async () => {
    const ids = await page.evaluate(() => [...document.querySelectorAll('#tiles audio')].map((a) => /** @type {HTMLAudioElement} */ (a).sinkId));
    return ids.length > 0 && ids.every((id) => id === speaker) ? ids : null;
  }, { timeout: 10_000 });
  t.diagnostic(`audio elements on ${JSON.stringify(sinks)}`);

  // Nothing was renegotiated: no offer sent, the same transceivers and simulcast encodings.
  const after = await page.evaluate(published);
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).__offers), offers, 'no offer was sent for any switch');
  assert.equal(await page.evaluate(() => window.confab.client?.pc?.getTransceivers().length), transceivers);
  for (const s of before) {
    const a = after.find((x) => x.source === s.source);
    assert.equal(a?.mid, s.mid, `the ${s.source} is on the same m-line`);
    assert.deepEqual(a?.rids, s.rids, `the ${s.source}'s encodings are unchanged`);
  }
  assert.deepEqual(after.find((x) => x.source === 'camera')?.rids, ['q', 'h', 'f']);

  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden', timeout: 5000 });
});

test('the choice is remembered', { timeout: 60_000 }, async () => {
  const [ada] = people;
  assert.ok(ada, 'runs after the call test');
  // A new page of the same browser profile: the lobby starts with what was chosen last.
  const page = await ada.context.newPage();
  try {
    await page.goto(`${server.url}?room=${ROOM}&name=Ada2`);
    await until('the new lobby to preview fake_device_0', async () => {
      const s = await page.evaluate(lobbyState);
      return s.camera === 'fake_device_0' && s.playing;
    }, { timeout: 20_000 });
    const shown = await page.evaluate(() => ({
      microphone: /** @type {HTMLSelectElement} */ (document.getElementById('microphone-select')).selectedOptions[0]?.textContent,
      speaker: /** @type {HTMLSelectElement} */ (document.getElementById('speaker-select')).selectedOptions[0]?.textContent,
      resolution: /** @type {HTMLSelectElement} */ (document.getElementById('resolution-select')).value,
      height: /** @type {HTMLVideoElement} */ (document.getElementById('preview-video')).videoHeight,
    }));
    assert.deepEqual(shown, { microphone: 'Fake Audio Input 2', speaker: 'Fake Audio Output 1', resolution: '720', height: 720 });
  } finally {
    await page.close();
  }
});

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name} had uncaught errors`);
});

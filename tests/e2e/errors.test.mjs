// What the page does when things go wrong: no permission, no camera, no server.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  launchBrowser, mediaFlowing, openParticipant, sleep, startServer, until, waitForVideoFrom,
} from './helpers.mjs';

const ROOM = 'e2e-errors';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** Someone with a camera and a microphone, in the room for the whole file. */
/** @type {Awaited<ReturnType<typeof openParticipant>>} */
let olga;

before(async () => {
  server = await startServer('errors');
  browser = await launchBrowser();
  olga = await openParticipant(browser, server.url, { room: ROOM, name: 'Olga' });
  await olga.clickJoin();
  await olga.waitJoined();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Init script: every getUserMedia call is refused, as when the user clicks "Block". */
function denyAll() {
  navigator.mediaDevices.getUserMedia = async () => {
    throw new DOMException('Permission denied', 'NotAllowedError');
  };
}

/** Init script: there is a microphone but no camera. */
function noCamera() {
  const md = navigator.mediaDevices;
  const real = md.getUserMedia.bind(md);
  md.getUserMedia = async (constraints) => {
    if (constraints && constraints.video) throw new DOMException('Requested device not found', 'NotFoundError');
    return real(constraints);
  };
}

test('permission denied: a clear notice, and the page still joins to watch', { timeout: 60_000 }, async (t) => {
  const p = await openParticipant(browser, server.url, { room: ROOM, name: 'Pat', initScript: denyAll });
  try {
    await p.clickJoin();
    await p.waitJoined();
    const notice = p.page.locator('#notice');
    await notice.waitFor({ state: 'visible', timeout: 5000 });
    const text = await notice.textContent();
    t.diagnostic(`notice: ${text}`);
    assert.match(text ?? '', /denied/i);
    assert.match(text ?? '', /watch and listen only/i);

    const { all } = await waitForVideoFrom(p, [/** @type {string} */ (olga.id)]);
    t.diagnostic(`receive-only page decodes Olga ${all} ms after Join`);
    const flow = await until('Pat to keep receiving Olga', async () => {
      const f = await mediaFlowing(p, [/** @type {string} */ (olga.id)], { ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 10_000, interval: 0 });
    t.diagnostic(`Pat over 1 s: ${JSON.stringify(flow.deltas)}`);

    assert.equal(await p.page.isDisabled('#mic-button'), true, 'no microphone to mute');
    assert.equal(await p.page.isDisabled('#camera-button'), true, 'no camera to turn off');
    assert.equal(await p.page.evaluate(() => window.confab.client?.localTracks.length), 0);

    // Olga sees Pat, with nothing published.
    const tile = olga.page.locator(`.tile[data-participant="${p.id}"]`);
    await tile.waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await tile.locator('.name').textContent(), 'Pat');
    assert.equal(await tile.getAttribute('data-video-muted'), 'true');
    assert.equal(await tile.getAttribute('data-audio-muted'), 'true');
  } finally {
    await p.close();
  }
  await olga.page.locator(`.tile[data-participant="${p.id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
});

test('no camera: joins with the microphone only', { timeout: 60_000 }, async (t) => {
  const p = await openParticipant(browser, server.url, { room: ROOM, name: 'Nico', initScript: noCamera });
  try {
    await p.clickJoin();
    await p.waitJoined();
    const notice = p.page.locator('#notice');
    await notice.waitFor({ state: 'visible', timeout: 5000 });
    const text = await notice.textContent();
    t.diagnostic(`notice: ${text}`);
    assert.match(text ?? '', /no camera/i);
    assert.match(text ?? '', /microphone only/i);

    // The notice comes as publishing starts; a track waits in the client's queue until its
    // connection is ready, and joins localTracks then.
    await p.page.waitForFunction(() => (window.confab.client?.localTracks.length ?? 0) > 0, null, { timeout: 10_000 });
    assert.deepEqual(await p.page.evaluate(() => window.confab.client?.localTracks.map((l) => l.track.kind)), ['audio']);
    assert.equal(await p.page.isDisabled('#camera-button'), true);
    assert.equal(await p.page.isDisabled('#mic-button'), false);

    // Olga hears Nico; Nico sees Olga.
    await waitForVideoFrom(p, [/** @type {string} */ (olga.id)]);
    const heard = await until('Olga to hear Nico', async () => {
      const f = await mediaFlowing(olga, [/** @type {string} */ (p.id)], { video: false, ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 15_000, interval: 0 });
    t.diagnostic(`Olga gets from Nico over 1 s: ${JSON.stringify(heard.deltas)}`);
    const tile = olga.page.locator(`.tile[data-participant="${p.id}"]`);
    await until('Nico\'s tile to show a live microphone and no camera', async () =>
      (await tile.getAttribute('data-audio-muted')) === 'false'
      && (await tile.getAttribute('data-video-muted')) === 'true', { timeout: 5000 });
  } finally {
    await p.close();
  }
});

test('server unreachable: a clear notice, no hang', { timeout: 60_000 }, async (t) => {
  // A server of its own, to be killed.
  const doomed = await startServer('errors-doomed');
  const p = await openParticipant(browser, doomed.url, { room: ROOM, name: 'Sam' });
  try {
    // In a call when the server dies: the page says at once that it is reconnecting (a broken
    // socket may be a network blip, docs/protocol.md "Reconnecting"), and when no server takes
    // it back within its reconnect window (25 s) it is back at the form, told why.
    await p.clickJoin();
    await p.waitJoined();
    await doomed.kill();
    const killedAt = Date.now();
    await sleep(1000);
    assert.equal(await p.page.locator('#connection-state').getAttribute('data-state'), 'reconnecting', 'the page says it is reconnecting');
    await p.page.locator('#join-form').waitFor({ state: 'visible', timeout: 35_000 });
    const lost = await p.page.locator('#notice').textContent();
    t.diagnostic(`${Date.now() - killedAt} ms after the kill: ${lost}`);
    assert.match(lost ?? '', /lost|unreachable/i);

    // Joining with no server: told within a few seconds, and the form works again.
    const clickedAt = await p.clickJoin();
    await until('the unreachable notice', async () =>
      /unreachable/i.test((await p.page.locator('#notice').textContent()) ?? ''), { timeout: 5000, interval: 100 });
    t.diagnostic(`Join with no server -> notice in ${Date.now() - clickedAt} ms: ${await p.page.locator('#notice').textContent()}`);
    await until('the Join button to be usable again', async () => !(await p.page.isDisabled('#join-form button')), { timeout: 2000 });
    assert.equal(await p.page.locator('#call').isVisible(), false);
    assert.deepEqual(p.pageErrors, []);
  } finally {
    await p.close();
    await doomed.stop();
  }
});

test('a module cut off while the page loads: a notice offers to load it again, and that works', { timeout: 60_000 }, async (t) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    // As when the network changes under a loading page: one of app.js's modules never arrives.
    let cut = true;
    await page.route('**/stats.js', (route) => (cut ? route.abort('internetdisconnected') : route.continue()));
    await page.goto(`${server.url}?room=${ROOM}&name=Cut`);
    const notice = page.locator('#notice');
    await notice.waitFor({ state: 'visible', timeout: 20_000 });
    const text = await notice.textContent();
    t.diagnostic(`notice: ${text}`);
    assert.match(text ?? '', /did not finish loading/);
    assert.equal(await page.isDisabled('#join-button'), true);
    cut = false;
    await page.getByRole('button', { name: 'Load it again' }).click();
    await page.waitForFunction(() => /** @type {any} */ (window).confab !== undefined, null, { timeout: 10_000 });
    assert.equal(await page.isDisabled('#join-button'), false);
  } finally {
    await context.close();
  }
});

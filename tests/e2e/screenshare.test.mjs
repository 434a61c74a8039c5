// Screen sharing from the meeting page: the Share button captures a screen (Chromium's fake
// capture: with the suite's flags, --use-fake-ui-for-media-stream picks a source with no picker
// and --use-fake-device-for-media-stream makes it a generated 1280x720 picture, plus a fake
// audio track), publishes it, and the other person decodes it in the spotlight. Stopping from
// the page, or the browser ending the capture, removes it everywhere; a refused capture is a
// notice, never an uncaught error.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, sleep, startServer, until, waitForVideoFrom, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-screenshare';
/** Cameras at 640x360: two browsers encode a camera and one a screen on two cores. */
const QUERY = { res: '360' };

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];

before(async () => {
  watchStalls();
  server = await startServer('screenshare');
  browser = await launchBrowser();
});

after(async () => {
  for (const p of people) {
    await p.screenshot(`screenshare-${p.name}`);
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
    await p.close();
  }
  await browser?.close();
  await server?.stop();
});

/**
 * What `page` receives of `publisher`'s screen share, by the mid the server put it on: frames
 * decoded of the video, packets of its sound (runs in the page).
 * @param {string} publisher
 */
function screenInbound(publisher) {
  return (async () => {
    const c = window.confab.client;
    if (!c?.pc) return null;
    const tracks = c.participants.get(publisher)?.tracks ?? [];
    /** @type {{mid: string, track: string, source: string, frames: number, packets: number}[]} */
    const out = [];
    (await c.pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const ref = c.mids.get(s.mid);
      const info = ref?.participant === publisher ? tracks.find((t) => t.id === ref.track) : undefined;
      if (info && (info.source === 'screen' || info.source === 'screen_audio')) {
        out.push({ mid: s.mid, track: info.id, source: info.source, frames: s.framesDecoded ?? 0, packets: s.packetsReceived ?? 0 });
      }
    });
    return out;
  })();
}

/**
 * Boxes (px) of the tiles on `p`'s page: the spotlight tile, and the tile of `who`'s camera.
 * @param {Awaited<ReturnType<typeof openParticipant>>} p
 * @param {string} who
 */
async function boxes(p, who) {
  return p.page.evaluate((id) => {
    const area = (/** @type {Element | null} */ el) => {
      const r = el?.getBoundingClientRect();
      return r ? Math.round(r.width * r.height) : 0;
    };
    return {
      layout: document.getElementById('tiles')?.dataset.layout,
      spotlight: area(document.querySelector('#spotlight > .tile.screen')),
      camera: area(document.querySelector(`#grid > .tile[data-participant="${id}"]`)),
      stage: area(document.getElementById('tiles')),
    };
  }, who);
}

test('a screen shared from the button is decoded by the other person, in the spotlight', { timeout: 120_000 }, async (t) => {
  for (const name of ['Ada', 'Bea']) people.push(await openParticipant(browser, server.url, { room: ROOM, name, query: QUERY }));
  const [ada, bea] = people;
  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  await waitForVideoFrom(bea, [/** @type {string} */ (ada.id)], 30_000);

  const share = ada.page.locator('#share-button');
  assert.equal(await share.getAttribute('aria-pressed'), 'false');
  assert.equal(await share.isDisabled(), false);

  // A capture the user cancels: a notice, the button usable again, nothing published.
  await ada.page.evaluate(() => {
    const md = navigator.mediaDevices;
    const real = md.getDisplayMedia;
    md.getDisplayMedia = async () => {
      md.getDisplayMedia = real;
      throw new DOMException('Permission denied', 'NotAllowedError');
    };
  });
  await ada.page.getByRole('button', { name: 'Share screen', exact: true }).click();
  const notice = ada.page.locator('#notice');
  await notice.waitFor({ state: 'visible', timeout: 5000 });
  const cancelled = await notice.textContent();
  t.diagnostic(`cancelled: ${cancelled}`);
  assert.match(cancelled ?? '', /cancelled/i);
  assert.equal(await share.getAttribute('aria-pressed'), 'false');
  assert.equal(await share.isDisabled(), false);
  await notice.click(); // dismissed

  // The real (fake) capture.
  await ada.page.getByRole('button', { name: 'Share screen', exact: true }).click();
  await until('the Share button to be pressed', async () => (await share.getAttribute('aria-pressed')) === 'true', { timeout: 10_000 });
  assert.equal(await share.getAttribute('aria-label'), 'Stop sharing');
  const published = await ada.page.evaluate(() => window.confab.client?.localTracks.map((l) => l.source));
  t.diagnostic(`Ada publishes ${JSON.stringify(published)}`);
  assert.ok(published?.includes('screen'), 'the screen is published');

  // Bea decodes it: frames decoded rising on the screen track's mid.
  const first = await until('Bea to decode Ada\'s screen', async () => {
    const s = await bea.page.evaluate(screenInbound, /** @type {string} */ (ada.id));
    const v = s?.find((x) => x.source === 'screen');
    return v && v.frames > 0 ? v : null;
  }, { timeout: 30_000, interval: 300 });
  const rising = await until('Bea\'s decoded frames of the screen to keep rising', async () => {
    await sleep(1000);
    const s = await bea.page.evaluate(screenInbound, /** @type {string} */ (ada.id));
    const v = s?.find((x) => x.source === 'screen' && x.mid === first.mid);
    return v && v.frames > first.frames ? v : null;
  }, { timeout: 20_000, interval: 0 });
  t.diagnostic(`Bea decodes the screen on mid ${first.mid}: ${first.frames} -> ${rising.frames} frames`);
  const sound = (await bea.page.evaluate(screenInbound, /** @type {string} */ (ada.id)))?.find((x) => x.source === 'screen_audio');
  t.diagnostic(`the screen's sound: ${sound ? `${sound.packets} packets on mid ${sound.mid}` : 'none (the capture gave no audio)'}`);

  // Shown in the spotlight, large; Ada's camera stays in her tile, in the strip.
  const tile = bea.page.locator(`#spotlight > .tile.screen[data-screen-of="${ada.id}"]`);
  await tile.waitFor({ state: 'visible', timeout: 10_000 });
  await until('the spotlight tile to show a picture', async () => (await tile.getAttribute('data-video-ready')) === 'true', { timeout: 10_000 });
  assert.equal(await tile.locator('video').getAttribute('data-track'), first.track);
  assert.equal(await tile.locator('.name').textContent(), 'Ada (screen)');
  const b = await until('the spotlight layout to settle', async () => {
    const x = await boxes(bea, /** @type {string} */ (ada.id));
    return x.layout === 'spotlight' && x.camera > 0 && x.spotlight > 3 * x.camera ? x : null;
  }, { timeout: 5000 });
  t.diagnostic(`Bea's tiles (px²): ${JSON.stringify(b)}`);
  assert.ok(b.spotlight > 0.4 * b.stage, 'the shared screen takes most of the tile area');
  await bea.screenshot('screenshare-spotlight');

  // Stopped from the page: gone for Bea, the capture ended.
  await ada.page.getByRole('button', { name: 'Stop sharing', exact: true }).click();
  assert.equal(await share.getAttribute('aria-pressed'), 'false');
  assert.equal(await ada.page.evaluate(() => window.confab.client?.localTracks.some((l) => l.source === 'screen')), false);
  await bea.page.locator(`.tile.screen[data-screen-of="${ada.id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal((await boxes(bea, /** @type {string} */ (ada.id))).layout, 'grid');
  assert.equal(await bea.page.locator(`.tile[data-participant="${ada.id}"]`).count(), 1, 'Ada\'s own tile stays');
});

test('the browser ending the capture stops the share', { timeout: 90_000 }, async () => {
  const [ada, bea] = people;
  assert.ok(ada && bea, 'runs after the first test');
  await ada.page.getByRole('button', { name: 'Share screen', exact: true }).click();
  await bea.page.locator(`#spotlight > .tile.screen[data-screen-of="${ada.id}"]`).waitFor({ state: 'visible', timeout: 30_000 });
  // What the browser's own "Stop sharing" control does: the capture ends, and the track fires
  // `ended` (track.stop() from script would not fire it, and headless Chromium draws no such
  // control, so the event is dispatched here).
  await ada.page.evaluate(() => {
    const lt = window.confab.client?.localTracks.find((l) => l.source === 'screen');
    lt?.track.dispatchEvent(new Event('ended'));
  });
  await until('the Share button to be released', async () =>
    (await ada.page.getAttribute('#share-button', 'aria-pressed')) === 'false', { timeout: 5000 });
  assert.equal(await ada.page.evaluate(() => window.confab.client?.localTracks.some((l) => l.source === 'screen' || l.source === 'screen_audio')), false);
  await bea.page.locator(`.tile.screen[data-screen-of="${ada.id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
});

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name} had uncaught errors`);
});

// A call through the meeting page: three people, a late joiner, leaving, muting.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  launchBrowser, mediaFlowing, openParticipant, stalledBetween, startServer, until,
  waitForVideoFrom, watchStalls,
} from './helpers.mjs';

/** Budget for a late joiner to decode everybody (ms from the Join click). */
const LATE_JOIN_LIMIT_MS = Number(process.env.CONFAB_LATE_JOIN_MS || 2000);

const ROOM = 'e2e-call';

/**
 * Four browsers share this machine's two cores here, where a real meeting has one computer each:
 * every page asks its camera for 640x360 (two simulcast layers) instead of 1280x720 (three), so
 * the timings below measure confab rather than four encoders fighting over two cores.
 */
const QUERY = { res: '360' };

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/**
 * The late joiners' browser. A person joining late has a computer of their own; here their page
 * would otherwise share one browser's compositor, network and audio processes with the three
 * pages already in the call, and wait behind their work on every step of the join.
 * @type {import('playwright-core').Browser}
 */
let lateBrowser;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];

before(async () => {
  watchStalls();
  server = await startServer('call');
  browser = await launchBrowser();
  lateBrowser = await launchBrowser();
});

after(async () => {
  for (const p of people) {
    await p.screenshot(`call-${p.name}`);
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
  }
  await browser?.close();
  await lateBrowser?.close();
  await server?.stop();
});

/** @param {Awaited<ReturnType<typeof openParticipant>>} p */
const othersOf = (p, group = people) => group.filter((q) => q !== p).map((q) => /** @type {string} */ (q.id));

test('three participants see and hear each other', { timeout: 90_000 }, async (t) => {
  for (const name of ['Ada', 'Grace', 'Linus']) {
    people.push(await openParticipant(browser, server.url, { room: ROOM, name, query: QUERY }));
  }
  // The form is pre-filled from the query.
  assert.equal(await people[0].page.inputValue('#room'), ROOM);
  assert.equal(await people[0].page.inputValue('#name'), 'Ada');

  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  assert.equal(new Set(people.map((p) => p.id)).size, 3, 'participant ids are distinct');

  const timings = await Promise.all(people.map((p) => waitForVideoFrom(p, othersOf(p))));
  people.forEach((p, i) => {
    t.diagnostic(`${p.name}: Join click -> first remote frame ${timings[i].first} ms, frames from both others ${timings[i].all} ms`);
  });

  for (const p of people) {
    const flow = await until(`${p.name} to keep decoding video and hearing audio of both others`, async () => {
      const f = await mediaFlowing(p, othersOf(p), { ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 15_000, interval: 0 });
    t.diagnostic(`${p.name} over 1 s: ${JSON.stringify(flow.deltas)}`);

    // A tile per other participant, named, with a video element.
    for (const q of people.filter((q) => q !== p)) {
      const tile = p.page.locator(`.tile[data-participant="${q.id}"]`);
      await tile.waitFor({ state: 'visible', timeout: 5000 });
      assert.equal(await tile.locator('.name').textContent(), q.name);
      assert.equal(await tile.locator('video').count(), 1);
      assert.equal(await tile.getAttribute('data-audio-muted'), 'false');
      assert.equal(await tile.getAttribute('data-video-muted'), 'false');
    }
    assert.equal(await p.page.locator('.tile.self video').count(), 1);
    assert.equal(await p.page.locator('#join-form').isVisible(), false);
  }
});

test('a late joiner decodes everybody quickly', { timeout: 90_000 }, async (t) => {
  assert.equal(people.length, 3, 'runs after the three-participant test');
  // Five late joins, the last of whom (Dennis) stays: the median is what is held to the limit,
  // because one join on this machine, where the browsers of four people share two cores, can lose
  // a second to the scheduler alone. The time the whole machine stood still during a join (see
  // watchStalls in helpers.mjs) is not counted.
  /** @type {{name: string, ms: number, stalled: number}[]} */
  const joins = [];
  let dennis;
  for (const name of ['Early', 'Eve', 'Fay', 'Gus', 'Dennis']) {
    const late = await openParticipant(lateBrowser, server.url, { room: ROOM, name, query: QUERY });
    const t0 = Date.now();
    await late.clickJoin();
    await late.waitJoined();
    const { first, all, each } = await waitForVideoFrom(late, othersOf(late, [...people, late]), 20_000);
    const stalled = stalledBetween(t0);
    // Whose video came when: a slow join is usually one track late.
    const perOther = Object.entries(each).map(([id, ms]) => `${people.find((p) => p.id === id)?.name ?? id} ${ms}`).join(', ');
    t.diagnostic(`late joiner ${name}: Join click -> first remote frame ${first} ms, frames from all 3 others ${all} ms (${perOther}); the machine stood still ${stalled} ms meanwhile`);
    joins.push({ name, ms: all, stalled });
    if (name === 'Dennis') {
      dennis = late;
    } else {
      await late.close();
      // Gone for the others before the next one joins.
      await people[0].page.locator(`.tile[data-participant="${late.id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
    }
  }
  assert.ok(dennis);
  people.push(dennis);
  // Each join's time less the time the machine stood still in it (a pause of the whole VM is
  // not confab's time); the median of the five is held to the limit.
  const times = joins.map((j) => j.ms);
  const net = joins.map((j) => Math.max(0, j.ms - j.stalled)).sort((a, b) => a - b);
  t.diagnostic(`late joiners decoded all 3 others after ${times.join(', ')} ms; less stalls, median ${net[2]} ms (limit ${LATE_JOIN_LIMIT_MS} ms)`);
  assert.ok(net[2] <= LATE_JOIN_LIMIT_MS, `late joiners decoded everybody after ${times.join(', ')} ms (${JSON.stringify(joins)}): the median less stalls, ${net[2]} ms, is over the ${LATE_JOIN_LIMIT_MS} ms limit`);

  // And the others decode the late joiner.
  for (const p of people.slice(0, 3)) {
    const { all: ms } = await waitForVideoFrom(p, [/** @type {string} */ (dennis.id)], 20_000, { from: 'now' });
    t.diagnostic(`${p.name} decodes Dennis ${ms} ms after checking`);
  }
  const flow = await until('Dennis to hear and see all three', async () => {
    const f = await mediaFlowing(dennis, othersOf(dennis), { ms: 1000 });
    return f.ok ? f : null;
  }, { timeout: 15_000, interval: 0 });
  t.diagnostic(`Dennis over 1 s: ${JSON.stringify(flow.deltas)}`);
});

test('leaving removes the tile everywhere', { timeout: 30_000 }, async () => {
  const dennis = people[3];
  assert.ok(dennis, 'runs after the late-joiner test');
  await dennis.page.getByRole('button', { name: 'Leave', exact: true }).click();

  // Back to the join form, tracks stopped.
  await dennis.page.locator('#join-form').waitFor({ state: 'visible', timeout: 5000 });
  assert.equal(await dennis.page.locator('#call').isVisible(), false);
  const live = await dennis.page.evaluate(() =>
    (window.confab.client?.localTracks ?? []).filter((t) => t.track.readyState !== 'ended').length);
  assert.equal(live, 0, 'local tracks are stopped after Leave');

  for (const p of people.slice(0, 3)) {
    await p.page.locator(`.tile[data-participant="${dennis.id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
  }
  await dennis.close();
  people.pop();
});

test('muting shows on the other tiles and unmuting resumes media', { timeout: 60_000 }, async (t) => {
  const [ada, ...rest] = people;
  assert.equal(rest.length, 2, 'runs with Ada, Grace and Linus in the call');
  const tileOfAda = (/** @type {typeof ada} */ p) => p.page.locator(`.tile[data-participant="${ada.id}"]`);

  await ada.page.click('#mic-button');
  await ada.page.click('#camera-button');
  assert.equal(await ada.page.getAttribute('#mic-button', 'aria-pressed'), 'true');
  assert.equal(await ada.page.getAttribute('#camera-button', 'aria-pressed'), 'true');
  assert.equal(await ada.page.evaluate(() =>
    window.confab.client?.localTracks.every((t) => !t.track.enabled)), true, 'muted tracks are disabled');

  for (const p of rest) {
    await until(`${p.name} to see Ada muted`, async () =>
      (await tileOfAda(p).getAttribute('data-audio-muted')) === 'true'
      && (await tileOfAda(p).getAttribute('data-video-muted')) === 'true', { timeout: 5000 });
    assert.ok(await tileOfAda(p).locator('.mic-off').isVisible(), 'a muted icon is shown');
  }
  // While muted the server forwards nothing (protocol.md, `mute`).
  const stalled = await until('Ada\'s media to stop reaching the others', async () => {
    const flows = await Promise.all(rest.map((p) => mediaFlowing(p, [/** @type {string} */ (ada.id)], { ms: 700 })));
    const still = flows.some((f) => Object.values(f.deltas).some((d) => d.frames > 0 || d.packets > 0));
    return still ? null : flows.map((f) => f.deltas);
  }, { timeout: 8000, interval: 0 });
  t.diagnostic(`while Ada is muted: ${JSON.stringify(stalled)}`);

  await ada.page.click('#mic-button');
  await ada.page.click('#camera-button');
  assert.equal(await ada.page.getAttribute('#mic-button', 'aria-pressed'), 'false');
  assert.equal(await ada.page.getAttribute('#camera-button', 'aria-pressed'), 'false');
  const unmutedAt = Date.now();
  for (const p of rest) {
    await until(`${p.name} to see Ada unmuted`, async () =>
      (await tileOfAda(p).getAttribute('data-audio-muted')) === 'false'
      && (await tileOfAda(p).getAttribute('data-video-muted')) === 'false', { timeout: 5000 });
    assert.equal(await tileOfAda(p).locator('.mic-off').isVisible(), false);
    const flow = await until(`${p.name} to decode and hear Ada again`, async () => {
      const f = await mediaFlowing(p, [/** @type {string} */ (ada.id)], { ms: 500 });
      return f.ok ? f : null;
    // (Resuming takes a keyframe; 20 s is for this VM's worst stalls, the time is reported.)
    }, { timeout: 20_000, interval: 0 });
    t.diagnostic(`${p.name} gets Ada's media again ${Date.now() - unmutedAt} ms after unmute: ${JSON.stringify(flow.deltas)}`);
  }
});

test('closing a tab without Leave removes its tile everywhere', { timeout: 30_000 }, async () => {
  // The WebSocket closes with the tab: the server must notice and tell the room, no ghost.
  const extra = await openParticipant(browser, server.url, { room: ROOM, name: 'Tab', query: QUERY });
  await extra.clickJoin();
  await extra.waitJoined();
  for (const p of people) {
    await p.page.locator(`.tile[data-participant="${extra.id}"]`).waitFor({ state: 'attached', timeout: 10_000 });
  }
  await extra.close();
  for (const p of people) {
    await p.page.locator(`.tile[data-participant="${extra.id}"]`).waitFor({ state: 'detached', timeout: 10_000 });
  }
  const stats = await (await fetch(new URL('/api/v1/stats', server.url))).json();
  assert.equal(stats.participants, people.length, 'the server holds no ghost participant');
});

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name} had uncaught errors`);
});

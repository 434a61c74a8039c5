// The stats panel of the meeting page: two people in a call; on one of them the Stats button
// opens a panel that shows, from live getStats, the connection, what it sends and what it
// receives from the other, by name, each video track with small graphs of its last minute.
// Everything is read from the panel's DOM as a user sees it.
// Nothing here is a speed limit: values are waited for with generous timeouts.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, sleep, startServer, until, waitForVideoFrom, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-stats';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];

before(async () => {
  watchStalls();
  server = await startServer('stats');
  browser = await launchBrowser();
});

after(async () => {
  for (const p of people) {
    await p.screenshot(`stats-${p.name}`);
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
  }
  await browser?.close();
  await server?.stop();
});

/**
 * The stats panel as text, read from the DOM in one go (runs in the page).
 * @returns {{open: boolean, connection: Record<string, string>, outbound: any[], inbound: any[], tiles: Record<string, string | null>}}
 */
function readPanel() {
  const panel = /** @type {HTMLElement} */ (document.getElementById('stats-panel'));
  const text = (/** @type {Element | null} */ el) => el?.textContent?.trim() ?? '';
  /** @param {Element} dl */
  const fieldsOf = (dl) => Object.fromEntries([...dl.querySelectorAll(':scope > dd[data-field]')]
    .map((dd) => [/** @type {HTMLElement} */ (dd).dataset.field, text(dd)]));
  const connection = panel.querySelector('[data-stats="connection"]');
  const outbound = [...panel.querySelectorAll('[data-stats="outbound"]')].map((s) => ({
    source: /** @type {HTMLElement} */ (s).dataset.source,
    title: text(s.querySelector('h4')),
    fields: fieldsOf(/** @type {Element} */ (s.querySelector('dl'))),
    layers: [...s.querySelectorAll('tbody tr')].map((tr) => ({
      rid: text(tr.querySelector('th')),
      ...Object.fromEntries([...tr.querySelectorAll('td[data-field]')]
        .map((td) => [/** @type {HTMLElement} */ (td).dataset.field, text(td)])),
    })),
  }));
  const inbound = [...panel.querySelectorAll('[data-stats="inbound"]')].map((s) => ({
    name: text(s.querySelector('h4')),
    participant: /** @type {HTMLElement} */ (s).dataset.participant,
    tracks: [...s.querySelectorAll('.stats-track')].map((t) => ({
      kind: /** @type {HTMLElement} */ (t).dataset.kind,
      track: /** @type {HTMLElement} */ (t).dataset.track,
      fields: fieldsOf(/** @type {Element} */ (t.querySelector('dl'))),
    })),
  }));
  // What the tiles show of each remote video track (data-layer), by "participant/track".
  /** @type {Record<string, string | null>} */
  const tiles = {};
  for (const tile of document.querySelectorAll('.tile[data-participant]')) {
    const video = tile.querySelector('video[data-track]');
    const p = /** @type {HTMLElement} */ (tile).dataset.participant;
    if (video) tiles[`${p}/${/** @type {HTMLElement} */ (video).dataset.track}`] = tile.getAttribute('data-layer');
  }
  return { open: !panel.hidden, connection: connection ? fieldsOf(connection) : {}, outbound, inbound, tiles };
}

/**
 * The graphs of the panel (runs in the page): per video track, its block (`outbound` or
 * `inbound`), source and participant, and per metric the points drawn (`data-points`) and the
 * coordinate pairs of its polylines.
 */
function readTrends() {
  const panel = /** @type {HTMLElement} */ (document.getElementById('stats-panel'));
  return [...panel.querySelectorAll('.stats-trends')].map((el) => {
    const block = /** @type {HTMLElement | null} */ (el.closest('[data-stats]'));
    const track = /** @type {HTMLElement | null} */ (el.closest('[data-source]'));
    /** @type {Record<string, {points: number, coords: number, label: string | null}>} */
    const metrics = {};
    for (const tr of el.querySelectorAll('.trend')) {
      const svg = tr.querySelector('svg');
      const coords = [...(svg?.querySelectorAll('polyline') ?? [])]
        .flatMap((pl) => (pl.getAttribute('points') ?? '').trim().split(/\s+/).filter(Boolean));
      metrics[/** @type {HTMLElement} */ (tr).dataset.metric ?? '?'] = {
        points: Number(svg?.dataset.points ?? 0),
        coords: coords.length,
        label: svg?.getAttribute('aria-label') ?? null,
      };
    }
    return {
      block: block?.dataset.stats,
      participant: block?.dataset.participant ?? null,
      source: track?.dataset.source,
      kind: /** @type {HTMLElement | null} */ (el.closest('[data-kind]'))?.dataset.kind,
      metrics,
    };
  });
}

/** Whether a graph drew a line of at least two points. @param {{points: number, coords: number} | undefined} m */
const drawn = (m) => !!m && m.points >= 2 && m.coords >= 2;

/** `640×360` -> {w, h}; null for anything else. @param {string | undefined} s */
const resolution = (s) => {
  const m = /^(\d+)×(\d+)$/.exec(s ?? '');
  return m ? { w: Number(m[1]), h: Number(m[2]) } : null;
};
/** `850 kbit/s`, `2.40 Mbit/s` -> bit/s; null for anything else. @param {string | undefined} s */
const bitrate = (s) => {
  const m = /^([\d.]+) (k|M)bit\/s(, \d+ (s|min) ago)?$/.exec(s ?? '');
  return m ? Number(m[1]) * (m[2] === 'M' ? 1e6 : 1e3) : null;
};
/** `20 fps` -> 20. @param {string | undefined} s */
const fps = (s) => {
  const m = /^([\d.]+) fps$/.exec(s ?? '');
  return m ? Number(m[1]) : null;
};
/** `0.4 ms` -> 0.4. @param {string | undefined} s */
const ms = (s) => {
  const m = /^([\d.]+) ms$/.exec(s ?? '');
  return m ? Number(m[1]) : null;
};

test('the stats panel shows the connection, the sent layers and the media received by name', { timeout: 150_000 }, async (t) => {
  for (const name of ['Ada', 'Bea']) {
    people.push(await openParticipant(browser, server.url, { room: ROOM, name }));
  }
  const [ada, bea] = people;
  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  await waitForVideoFrom(ada, [/** @type {string} */ (bea.id)], 30_000);
  const page = ada.page;

  // Closed: no polling, the button says so.
  const button = page.getByRole('button', { name: 'Stats', exact: true });
  assert.equal(await button.getAttribute('aria-pressed'), 'false');
  assert.equal(await page.locator('#stats-panel').isVisible(), false);
  assert.equal(await page.evaluate(() => window.confab.stats?.calls), 0, 'no getStats while the panel was never opened');

  await button.click();
  assert.equal(await button.getAttribute('aria-pressed'), 'true');
  await page.getByRole('heading', { name: 'Connection stats' }).waitFor({ state: 'visible', timeout: 5000 });
  const panel = () => page.evaluate(readPanel);

  // The connection: a candidate pair and a round-trip time. The pair is UDP: the server also
  // offers ICE-TCP on its media port, ranked lower, for clients whose UDP is blocked only.
  const conn = await until('the connection row to show a UDP candidate pair and an RTT', async () => {
    const { connection: c } = await panel();
    const pair = /^(host|srflx|prflx|relay)\sudp\s.*↔\s(host|srflx|prflx|relay)\sudp\s/.test(c.route ?? '');
    return pair && ms(c.rtt) !== null && bitrate(c.send) !== null && bitrate(c.receive) !== null ? c : null;
  }, { timeout: 30_000, interval: 500 });
  t.diagnostic(`connection: ${JSON.stringify(conn)}`);

  // The camera: its simulcast layers by rid; every layer the server has not stopped sends a
  // picture of some size once the encoder has settled.
  const camera = await until('the camera\'s layers, each sending with a size unless stopped by the server', async () => {
    const cam = (await panel()).outbound.find((o) => o.source === 'camera');
    if (!cam || cam.layers.length < 2) return null;
    const rids = cam.layers.map((/** @type {any} */ l) => l.rid);
    if (rids.join(',') !== 'q,h,f') return null;
    const live = cam.layers.filter((/** @type {any} */ l) => l.state !== 'stopped by server');
    const ok = live.length > 0 && live.every((/** @type {any} */ l) => l.state === 'sending'
      && (resolution(l.resolution)?.w ?? 0) > 0 && (resolution(l.resolution)?.h ?? 0) > 0);
    return ok ? cam : null;
  }, { timeout: 45_000, interval: 500 });
  t.diagnostic(`camera: ${JSON.stringify(camera)}`);
  const microphone = (await panel()).outbound.find((o) => o.source === 'microphone');
  assert.ok(microphone, 'the microphone is listed among what Ada sends');

  // What Ada receives from Bea, found by Bea's name.
  const fromBea = await until('Bea\'s video and audio in the panel, with the server\'s view matching the tile', async () => {
    const s = await panel();
    const entry = s.inbound.find((e) => e.name === 'Bea');
    const video = entry?.tracks.find((/** @type {any} */ x) => x.kind === 'video');
    const audio = entry?.tracks.find((/** @type {any} */ x) => x.kind === 'audio');
    if (!entry || !video || !audio) return null;
    const v = video.fields;
    const tileLayer = s.tiles[`${entry.participant}/${video.track}`];
    const ok = (resolution(v.resolution)?.h ?? 0) > 0
      && (fps(v.fps) ?? 0) > 0
      && (bitrate(v.bitrate) ?? 0) > 0
      && v['server-state'] === 'active'
      && !!tileLayer && v.layer === tileLayer
      && bitrate(v.estimate) !== null && / \d+ s ago$/.test(v.estimate)
      && (bitrate(audio.fields.bitrate) ?? 0) > 0;
    return ok ? { entry, tileLayer } : null;
  }, { timeout: 60_000, interval: 500 });
  t.diagnostic(`from Bea (tile layer ${fromBea.tileLayer}): ${JSON.stringify(fromBea.entry)}`);
  assert.equal(fromBea.entry.participant, bea.id);

  // The graphs: an SVG per metric for each video track sent and received, each with a line of
  // at least two points by now (one point a second while the panel is open); none for audio.
  const graphs = await until('graphs of bitrate, frame rate and loss for the camera sent and Bea\'s video received', async () => {
    const all = await page.evaluate(readTrends);
    const sent = all.find((g) => g.block === 'outbound' && g.source === 'camera');
    const received = all.find((g) => g.block === 'inbound' && g.participant === bea.id && g.kind === 'video');
    const ok = sent && received && drawn(sent.metrics.bitrate) && drawn(sent.metrics.fps)
      && drawn(received.metrics.bitrate) && drawn(received.metrics.fps) && drawn(received.metrics.loss);
    return ok ? { all, sent, received } : null;
  }, { timeout: 30_000, interval: 500 });
  t.diagnostic(`graphs: ${JSON.stringify(graphs.all)}`);
  assert.ok(graphs.all.every((g) => g.kind === 'video'), 'no graphs for audio');
  assert.deepEqual(Object.keys(graphs.received.metrics), ['bitrate', 'fps', 'loss']);
  assert.match(graphs.received.metrics.bitrate.label ?? '', /^Bea's camera: bitrate over the last minute/);
  if (!drawn(graphs.sent.metrics.loss)) t.diagnostic('the camera sent has no loss line yet (no receiver report from the server)');
  await ada.screenshot('stats-open');

  // Closed again: the poller stops calling getStats.
  assert.ok(await page.evaluate(() => (window.confab.stats?.calls ?? 0) > 1), 'getStats was polled while open');
  await page.getByRole('button', { name: 'Close stats' }).click();
  assert.equal(await button.getAttribute('aria-pressed'), 'false');
  assert.equal(await page.locator('#stats-panel').isVisible(), false);
  // Let a poll that was under way when it closed finish, then count.
  await sleep(500);
  const calls = await page.evaluate(() => window.confab.stats?.calls ?? 0);
  await sleep(2000);
  assert.equal(await page.evaluate(() => window.confab.stats?.calls ?? 0), calls, 'no getStats while the panel is closed');

  // The button opens it again, and Escape closes it.
  await button.click();
  await until('the panel to fill again', async () => (await panel()).inbound.length > 0, { timeout: 15_000, interval: 300 });
  await page.locator('#stats-close').focus();
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#stats-panel').isVisible(), false);
  assert.equal(await button.getAttribute('aria-pressed'), 'false');
});

test('the panel fits a narrow window', { timeout: 30_000 }, async () => {
  const [ada] = people;
  assert.ok(ada, 'runs after the first test');
  const page = ada.page;
  await page.setViewportSize({ width: 360, height: 640 });
  await page.getByRole('button', { name: 'Stats', exact: true }).click();
  await until('the panel to show what Ada receives', async () => (await page.evaluate(readPanel)).inbound.length > 0,
    { timeout: 15_000, interval: 300 });
  // Nothing wider than the window: the page does not scroll sideways (a layer table may scroll
  // inside its own box).
  const widths = await page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    window: window.innerWidth,
    panel: /** @type {HTMLElement} */ (document.getElementById('stats-panel')).getBoundingClientRect().right,
  }));
  assert.ok(widths.page <= widths.window, `the page is ${widths.page} px wide in a ${widths.window} px window`);
  assert.ok(widths.panel <= widths.window, `the panel ends at ${widths.panel} px in a ${widths.window} px window`);
  await ada.screenshot('stats-narrow');
  await page.getByRole('button', { name: 'Close stats' }).click();
});

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name} had uncaught errors`);
});

// Acceptance tests of simulcast, adaptive streams and dynacast (issue 9), in real browsers: one
// publisher (fake camera, simulcast q/h/f) on loopback and one subscriber whose Chromium runs in a
// network namespace behind a shaped veth (shaping.mjs): its downlink is limited by a tbf queue
// and/or random loss, nothing else is.
//
// Skipped unless CONFAB_SIMULCAST_TESTS=1: ./scripts/test runs it in a step of its own,
// tests/e2e/simulcast.sh (which measures a test that missed a limit once more). Each test appends
// its measured figures as one JSON line to the file named by CONFAB_BENCH_OUT (for
// docs/benchmarks.md), before asserting, so a failing run still reports its numbers.
//
// "Top layer" is the highest layer the publisher actually sends when nothing limits it, read from
// its outbound-rtp stats before each test (on a 2-core machine Chrome may drop or shrink layers
// for CPU; the figures carry qualityLimitationReason). Durations scale with CONFAB_SIM_SCALE
// (e.g. 0.2 for a quick local run), or one by one (CONFAB_SIM_*_MS below); the targets do not.
// The whole file takes about 7 minutes at scale 1: run it with tests/e2e/simulcast.sh, or with
// CONFAB_SIMULCAST_TESTS=1 CONFAB_TEST_TIMEOUT=900000 CONFAB_E2E_TIMEOUT=1000 tests/e2e/run.sh. The tests share one call and run in order, each from a reset (no limit,
// no loss, the camera tile at 1280x720, the subscriber back on the top layer); test 9 (the screen
// share, the one that adds and removes a track) runs last, so that what it leaves behind cannot
// hold up the others.

import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import {
  launchBrowser, lessStalls, openParticipant, qualityLimit, sleep, stalledBetween, until, watchStalls,
} from './helpers.mjs';
import {
  benchRecord, createShapedNetwork, haveIptables, launchBrowserInNamespace, publisherStats,
  receiveOnly, runSchedule, sampleInboundVideo, sampleLink, samplePublisher, sawtooth,
  startShapedServer,
} from './shaping.mjs';

const SKIP = process.env.CONFAB_SIMULCAST_TESTS === '1'
  ? false
  : 'the simulcast acceptance suite (about 7 minutes) runs in its own step of ./scripts/test: tests/e2e/simulcast.sh';

const SCALE = Number(process.env.CONFAB_SIM_SCALE || 1);
/** A duration from env `name` (ms), else `ms`, times CONFAB_SIM_SCALE. @param {string} name @param {number} ms */
const dur = (name, ms) => Math.round(Number(process.env[name] || ms) * SCALE);

const STEADY_MS = dur('CONFAB_SIM_STEADY_MS', 30_000); // 1: no switches over this
const HOLD_MS = dur('CONFAB_SIM_HOLD_MS', 10_000); // 3: no downgrade over this after reaching top
const SETTLE_MS = dur('CONFAB_SIM_SETTLE_MS', 90_000); // 4
const SAW_MS = dur('CONFAB_SIM_SAWTOOTH_MS', 60_000); // 5
const SAW_PERIOD_MS = Number(process.env.CONFAB_SIM_SAWTOOTH_PERIOD_MS || 4000); // 5 (not scaled)
const LOSS_MS = dur('CONFAB_SIM_LOSS_MS', 60_000); // 7
const SWITCHES = Number(process.env.CONFAB_SIM_SWITCHES || 24); // 8: forced size changes
const SWITCH_EVERY_MS = Number(process.env.CONFAB_SIM_SWITCH_EVERY_MS || 1500); // 8
const SCREEN_MS = dur('CONFAB_SIM_SCREEN_MS', 20_000); // 9
/** Which tests to run besides test 1 (which joins the call), e.g. CONFAB_SIM_ONLY=4,6,9; default all. */
const ONLY = (process.env.CONFAB_SIM_ONLY || '').split(',').filter(Boolean);
/** Options for test number `n`: skipped when CONFAB_SIM_ONLY leaves it out. @param {number} n @param {number} timeout */
const pick = (n, timeout) => ({ timeout, skip: n !== 1 && ONLY.length > 0 && !ONLY.includes(String(n)) ? 'not in CONFAB_SIM_ONLY' : false });
/** `res` page parameter of the publisher (540: a 960x540 camera); default 1280x720. */
const RES = process.env.CONFAB_SIM_RES || '';

const ROOM = 'e2e-simulcast';
const SMALL = { width: 320, height: 180 };
const LARGE = { width: 1280, height: 720 };
/** The subscriber's window: room for a 1280x720 tile and a second one under it. */
const SUB_VIEWPORT = { width: 1320, height: 1480 };

describe('simulcast acceptance', { skip: SKIP }, () => {
  /** @type {Awaited<ReturnType<typeof createShapedNetwork>>} */
  let net;
  /** @type {Awaited<ReturnType<typeof startShapedServer>>} */
  let server;
  /** @type {import('playwright-core').Browser} */
  let pubBrowser;
  /** @type {import('playwright-core').Browser} */
  let subBrowser;
  /** @type {Awaited<ReturnType<typeof openParticipant>>} */
  let pub;
  /** @type {Awaited<ReturnType<typeof openParticipant>>} */
  let sub;
  /** @type {ReturnType<typeof sampleInboundVideo>} */
  let subS;
  /** @type {ReturnType<typeof samplePublisher>} */
  let pubS;
  /** @type {ReturnType<typeof sampleLink>} */
  let link;
  /** The publisher's camera: its track id (mid), rids lowest first, and its audio track id. */
  const cam = { mid: '', key: '', rids: /** @type {string[]} */ ([]), audioKey: '' };
  /**
   * The top layer (highest rid the publisher sends unconstrained, as of the last reset) and the
   * frame height of each layer then.
   * @type {{rid: string, frameHeight: number, heights: Record<string, number>, qualityLimitationReason: string | null}}
   */
  let top = { rid: '', frameHeight: 0, heights: {}, qualityLimitationReason: null };

  before(async () => {
    watchStalls({ lateMs: 50 });
    net = await createShapedNetwork();
    server = await startShapedServer(net, 'simulcast');
    pubBrowser = await launchBrowser();
    subBrowser = await launchBrowserInNamespace(net.nsName, { secureOrigins: [server.subscriberUrl.replace(/\/$/, '')] });
    pub = await openParticipant(pubBrowser, server.publisherUrl, { room: ROOM, name: 'Pub', query: RES ? { res: RES } : {} });
    sub = await openParticipant(subBrowser, server.subscriberUrl, { room: ROOM, name: 'Sub', initScript: receiveOnly, viewport: SUB_VIEWPORT });
    // The subscriber publishes nothing: its own tile would only take room.
    // (A constructed style sheet: the page's CSP refuses a <style> tag, and an inline style on
    // the self tile would be copied into the remote tiles, which are clones of it.)
    await sub.page.evaluate(() => {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync('.tile.self { display: none !important; }');
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    });
    link = sampleLink(net, { hz: 4 });
  });

  after(async () => {
    await Promise.all([subS?.stop(), pubS?.stop(), link?.stop()]);
    for (const p of [pub, sub]) {
      if (!p) continue;
      await p.screenshot(`simulcast-${p.name}`);
      if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
    }
    await subBrowser?.close().catch(() => {});
    await pubBrowser?.close().catch(() => {});
    await server?.stop();
    await net?.close();
  });

  // ------------------------------------------------------------------------------ helpers

  const rank = (/** @type {string | null} */ rid) => (rid ? cam.rids.indexOf(rid) : -1);

  // The machine's stalls (helpers.mjs, watchStalls): the host pauses this whole VM for 100-300
  // ms now and then. A duration limit is held against the duration less the time the machine
  // stood still in it (lessStalls), a freeze limit against the freeze less the stall it
  // contains; a limit on switches is not held over a window that held more than
  // STALL_BUDGET_MS of stalls (qualityLimit), since a stall looks like congestion to every
  // estimator. Every report carries the stall time of its window.
  /** Stall time (ms) in [t0, t1] of the subscriber's sampler. @param {number} t0 @param {number} t1 */
  const stood = (t0, t1) => stalledBetween(subS.t0 + t0, subS.t0 + t1);
  /** A duration `ms` from `t` (subscriber's sampler time), less the stalls in it; null stays null. @param {number | null} ms @param {number} t */
  const net_ = (ms, t) => (ms === null ? null : lessStalls(ms, subS.t0 + t));
  /** The longest freeze in [t0, t1] less the stall inside it. @param {number} t0 @param {number} t1 */
  const maxFreezeLessStalls = (t0, t1) => Math.max(0, ...subS.freezes(t0, t1, { track: cam.key })
    .map((f) => f.ms - stood(f.t - f.ms - 250, f.t)));

  /** The layer the subscriber gets, by rank: the tile's data-layer, else by decoded height. */
  const rankOf = (/** @type {any} */ v) => {
    if (v.layer) return rank(v.layer);
    if (!(v.frameHeight > 0)) return -1;
    let best = -1;
    for (const rid of cam.rids) if (top.heights[rid] && v.frameHeight >= top.heights[rid] * 0.9) best = Math.max(best, rank(rid));
    return best;
  };
  /** Height of the layer just below the top at the last reset (0 if none). */
  const belowTopHeight = () => top.heights[cam.rids[rank(top.rid) - 1]] ?? 0;
  const isTop = (/** @type {any} */ v) => v.state !== 'paused' && rankOf(v) === rank(top.rid) && v.frameHeight > belowTopHeight();
  const isLower = (/** @type {any} */ v) => v.state !== 'paused' && v.frameHeight > 0
    && rankOf(v) >= 0 && rankOf(v) < rank(top.rid) && v.frameHeight <= belowTopHeight() * 1.1;

  /** The publisher's video encodings now, short. @param {string} [source] */
  async function pubLayers(source = 'camera') {
    return (await publisherStats(pub.page)).filter((o) => o.source === source).map((o) => ({
      rid: o.rid, frameHeight: o.frameHeight, fps: o.framesPerSecond, active: o.active,
      qualityLimitationReason: o.qualityLimitationReason,
    }));
  }

  /**
   * The highest encoding of `source` the publisher sends now: active, with frames and with
   * bytes flowing over the last second of samples.
   * @param {string} [source]
   */
  function pubTopNow(source = 'camera') {
    const now = pubS.now();
    /** @type {any[]} */
    const sending = [];
    for (const rid of new Set(pubS.series({ source, from: now - 1500 }).map((o) => o.rid))) {
      const xs = pubS.series({ rid, source, from: now - 1500 });
      const last = xs[xs.length - 1];
      if (xs.length >= 2 && last.frameHeight > 0 && last.active !== false && last.bytesSent > xs[0].bytesSent) sending.push(last);
    }
    sending.sort((a, b) => b.frameHeight - a.frameHeight);
    return sending[0] ?? null;
  }

  /**
   * Set (or with null, release) the size of the tile showing `track` of the publisher, in CSS
   * pixels (= device pixels here); returns the video element's size then.
   * @param {string} track
   * @param {{width: number, height: number} | null} size
   */
  async function setTileSize(track, size) {
    return until(`the subscriber's tile of track ${track}`, () => sub.page.evaluate(({ participant, track, size }) => {
      const tiles = /** @type {HTMLElement[]} */ ([...document.querySelectorAll('.tile[data-participant], .tile.screen[data-screen-of]')]);
      const tile = tiles.find((el) => (el.dataset.participant ?? el.dataset.screenOf) === participant
        && el.querySelector(`video[data-track="${CSS.escape(track)}"]`) !== null);
      if (!tile) return null;
      for (const [k, v] of Object.entries(size
        ? { flex: '0 0 auto', width: `${size.width}px`, height: `${size.height}px`, 'aspect-ratio': 'auto' }
        : { flex: '', width: '', height: '', 'aspect-ratio': '' })) {
        if (v) tile.style.setProperty(k, v);
        else tile.style.removeProperty(k);
      }
      const video = /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
      return { width: video.clientWidth, height: video.clientHeight };
    }, { participant: /** @type {string} */ (pub.id), track, size }), { timeout: 15_000 });
  }

  /**
   * Back to the start state: no limit, no loss, the camera tile at 1280x720, the subscriber on
   * the top layer; `top` re-read from the publisher.
   */
  async function reset() {
    if (!pubS || !subS || !cam.key) throw new Error('runs after test 1, which joins the publisher and the subscriber');
    await net.clearRate();
    if (haveIptables()) await net.clearLoss();
    await setTileSize(cam.mid, LARGE);
    const hit = await until('the subscriber on the top layer the publisher sends, unlimited', () => {
      const p = pubTopNow();
      const v = subS.last({ track: cam.key });
      const onIt = p && v && v.state !== 'paused' && v.frameHeight > 0
        && (v.layer ? v.layer === p.rid : v.frameHeight >= p.frameHeight * 0.9);
      if (onIt) return { p, v };
      throw new Error(`publisher's top ${p?.rid ?? 'none'} (${p?.frameHeight}p), subscriber ${v ? `layer ${v.layer} ${v.frameHeight}p ${v.state} (${v.tile?.reason}) tile ${v.tile?.width}x${v.tile?.height}` : 'no video'}; ` +
        `publisher [source, rid, height, active, kbit/s, qualityLimitationReason, targetBitrate] ` +
        `${JSON.stringify(pubS.samples.at(-1)?.outbound.map((o) => [o.source, o.rid, o.frameHeight, o.active, Math.round(o.bitrate / 1000), o.qualityLimitationReason, o.targetBitrate]))}, ` +
        `its uplink estimate ${pubS.samples.at(-1)?.availableOutgoingBitrate ?? null} bit/s`);
    }, { timeout: 30_000, interval: 250 });
    /** @type {Record<string, number>} */
    const heights = {};
    for (const o of pubS.samples[pubS.samples.length - 1]?.outbound ?? []) {
      if (o.source === 'camera' && o.rid && o.frameHeight > 0) heights[o.rid] = o.frameHeight;
    }
    top = { rid: hit.p.rid, frameHeight: hit.p.frameHeight, heights, qualityLimitationReason: hit.p.qualityLimitationReason };
    // A moment on it, so that each test starts steady.
    await sleep(1000);
  }

  /** The figures every test reports, plus its own. @param {string} name @param {Record<string, unknown>} f */
  async function report(t, name, f) {
    const line = benchRecord(name, {
      ...f,
      top: top.rid, topHeight: top.frameHeight, layerHeights: top.heights,
      publisher: await pubLayers().catch(() => null),
      publisherUplinkEstimate: pubS?.samples.at(-1)?.availableOutgoingBitrate ?? null,
      res: RES || '720', cores: os.cpus().length, scale: SCALE,
    });
    t.diagnostic(line);
  }

  /**
   * When the publisher's encoding `rid` stopped sending after `from` (pub sampler ms): the first
   * sample with active false, or from which bytesSent stays flat for `flatMs`; null if not yet.
   */
  function stoppedAt(/** @type {string} */ rid, /** @type {number} */ from, flatMs = 1000) {
    const xs = pubS.series({ rid, from });
    for (let i = 0; i < xs.length; i++) {
      if (xs[i].active === false) return xs[i].t;
      const later = xs.filter((x) => x.t > xs[i].t && x.t <= xs[i].t + flatMs);
      const end = xs.find((x) => x.t >= xs[i].t + flatMs);
      if (end && later.every((x) => x.bytesSent === xs[i].bytesSent)) return xs[i].t;
    }
    return null;
  }

  /** Unpublish and stop the canvas screen share of test 9, if there is one. */
  async function stopScreen() {
    await pub.page.evaluate(() => {
      const s = /** @type {any} */ (window).__screen;
      if (!s) return;
      clearInterval(s.timer);
      window.confab.client?.unpublish(s.track);
      s.track.stop();
      s.canvas.remove();
      delete /** @type {any} */ (window).__screen;
    });
  }

  // -------------------------------------------------------------------------------- tests

  test('1. unconstrained: top layer within 5 s of subscribing, no spatial switch for 30 s', pick(1, 60_000 + STEADY_MS), async (t) => {
    await pub.clickJoin();
    await pub.waitJoined();
    const camInfo = await until('the publisher\'s camera and microphone to be negotiated', () => pub.page.evaluate(() => {
      const lts = window.confab.client?.localTracks ?? [];
      const c = lts.find((x) => x.source === 'camera');
      const a = lts.find((x) => x.source === 'microphone');
      return c?.transceiver.mid && a?.transceiver.mid ? { mid: c.transceiver.mid, rids: /** @type {any} */ (c).rids ?? [], audio: a.transceiver.mid } : null;
    }), { timeout: 15_000 });
    cam.mid = camInfo.mid;
    cam.key = `${pub.id}/${camInfo.mid}`;
    cam.rids = camInfo.rids;
    cam.audioKey = `${pub.id}/${camInfo.audio}`;
    assert.ok(cam.rids.length >= 2, `the camera is published in simulcast layers (rids ${JSON.stringify(cam.rids)})`);
    pubS = samplePublisher(pub.page, { hz: 4 });
    // Let the publisher's encoder and estimate get going, as a camera that is on before anyone
    // watches would be.
    await sleep(5000);

    subS = sampleInboundVideo(sub.page, { hz: 4 });
    const joinAt = await sub.clickJoin();
    await sub.waitJoined();
    const joinT = subS.rel(joinAt);
    const reached = await until('the subscriber on the top layer the publisher sends', () => {
      const p = pubTopNow();
      const v = subS.last({ track: cam.key });
      if (!p || !v || v.state === 'paused' || !(v.frameHeight > 0)) return null;
      const onIt = v.layer ? v.layer === p.rid : v.frameHeight >= p.frameHeight * 0.9;
      return onIt ? { p, v } : null;
    }, { timeout: 20_000, interval: 100 });
    const topMs = reached.v.t - joinT;
    top = { rid: reached.p.rid, frameHeight: reached.p.frameHeight, heights: {}, qualityLimitationReason: reached.p.qualityLimitationReason };
    for (const o of pubS.samples[pubS.samples.length - 1]?.outbound ?? []) {
      if (o.source === 'camera' && o.rid && o.frameHeight > 0) top.heights[o.rid] = o.frameHeight;
    }

    const t0 = subS.now();
    await sleep(STEADY_MS);
    const t1 = subS.now();
    const switches = subS.countSwitches(t0, t1, { track: cam.key, by: 'layer' });
    const heightChanges = subS.countSwitches(t0, t1, { track: cam.key, by: 'height' });
    const seen = subS.seen(t0, t1, { track: cam.key });
    await report(t, 'simulcast-1-unconstrained', {
      topWithinMs: topMs, steadyMs: STEADY_MS, switches, heightChanges, seen,
      timelineFromJoin: subS.timeline(joinT, t0, { track: cam.key }),
      timeline: subS.timeline(t0, t1, { track: cam.key }),
      kbps: Math.round(subS.bitrateBetween(t0, t1, { track: cam.key }) / 1000),
      freezeMs: subS.freezeTimeBetween(t0, t1, { track: cam.key }),
      estimate: subS.last({ track: cam.key })?.tile?.estimate ?? null,
      stalledToTopMs: stood(joinT, joinT + topMs), stalledSteadyMs: stood(t0, t1),
    });
    assert.ok(top.rid === cam.rids[cam.rids.length - 1] || top.qualityLimitationReason !== 'none',
      `the publisher sends its highest layer (${cam.rids.at(-1)}) unless limited; it sends up to ${top.rid} (${top.qualityLimitationReason})`);
    const topNet = /** @type {number} */ (net_(topMs, joinT));
    assert.ok(topNet <= 5000, `top layer ${top.rid} after ${topMs} ms (${topNet} ms less stalls), over 5000`);
    qualityLimit(t, switches === 0, `${switches} spatial switches over ${STEADY_MS} ms unconstrained, want 0`, subS.t0 + t0, subS.t0 + t1);
  });

  test('2. capacity 3 Mbit/s -> 600 kbit/s: lower layer within 2.5 s, freeze <= 1 s, send rate <= capacity within 3 s', pick(2, 90_000), async (t) => {
    await reset();
    await net.setRate(3000);
    const b0 = subS.now();
    await sleep(5000);
    const base = subS.now();
    const onTopAt3M = isTop(subS.last({ track: cam.key }));
    const baseFreeze = subS.freezeTimeBetween(b0, base, { track: cam.key });

    const at = Date.now();
    await net.setRate(600);
    const T = subS.rel(at);
    await sleep(10_000);
    const lowerMs = subS.timeUntil(isLower, { track: cam.key, from: T });
    const layerDownMs = subS.timeUntil((v) => v.layer !== null && rank(v.layer) < rank(top.rid), { track: cam.key, from: T });
    const sendBelowMs = link.timeUntilBelow(600_000, { from: link.rel(at), windowMs: 1000 });
    const freeze = subS.freezeTimeBetween(T, T + 10_000, { track: cam.key });
    await report(t, 'simulcast-2-drop-to-600k', {
      onTopAt3M, lowerWithinMs: lowerMs, layerAttrDownWithinMs: layerDownMs, sendBelowCapacityWithinMs: sendBelowMs,
      freezeMs: freeze, baselineFreezeMs: baseFreeze, addedFreezeMs: freeze - baseFreeze,
      maxStallMs: subS.maxStall(T, T + 10_000, { track: cam.key }),
      sendKbpsBefore: Math.round(link.bitrateBetween(link.rel(at) - 4000, link.rel(at)) / 1000),
      sendKbpsAfter: Math.round(link.bitrateBetween(link.rel(at) + 3000, link.rel(at) + 10_000) / 1000),
      queueDrops: link.droppedBetween(link.rel(at), link.rel(at) + 10_000),
      seen: subS.seen(T, T + 10_000, { track: cam.key }),
      timeline: subS.timeline(T, T + 10_000, { track: cam.key }),
      estimate: subS.last({ track: cam.key })?.tile?.estimate ?? null,
      exactSendCounter: haveIptables(),
      stalledMs: stood(T, T + 10_000), stalledBaselineMs: stood(b0, base),
    });
    assert.ok(onTopAt3M, 'on the top layer at 3 Mbit/s before the drop');
    const lowerNet = net_(lowerMs, T);
    assert.ok(lowerNet !== null && lowerNet <= 2500, `on a lower layer after ${lowerMs} ms (${lowerNet} less stalls), limit 2500`);
    const addedNet = Math.max(0, freeze - stood(T, T + 10_000)) - baseFreeze;
    assert.ok(addedNet <= 1000, `added freeze ${freeze - baseFreeze} ms (${addedNet} less stalls), limit 1000`);
    const sendNet = net_(sendBelowMs, T);
    assert.ok(sendNet !== null && sendNet <= 3000, `send rate <= 600 kbit/s after ${sendBelowMs} ms (${sendNet} less stalls), limit 3000`);
  });

  test('3. back to 3 Mbit/s: top layer within 15 s, no downgrade after', pick(3, 60_000 + HOLD_MS), async (t) => {
    // From where test 2 left off; if it did not get there, get there now.
    if (!isLower(subS.last({ track: cam.key }))) {
      await net.setRate(600);
      await subS.waitFor('a lower layer at 600 kbit/s', isLower, { track: cam.key, timeout: 15_000 });
    }
    const at = Date.now();
    await net.setRate(3000);
    const T = subS.rel(at);
    const hit = await subS.waitFor('the top layer at 3 Mbit/s', isTop, { track: cam.key, from: T, timeout: 20_000 }).catch(() => null);
    const topMs = hit ? hit.t - T : null;
    const h0 = hit ? hit.t : subS.now();
    await sleep(HOLD_MS);
    const h1 = subS.now();
    const downgrades = subS.series({ track: cam.key, from: h0, to: h1 }).filter((v) => v.layer !== null && rank(v.layer) < rank(top.rid)).length;
    await report(t, 'simulcast-3-back-to-3M', {
      topWithinMs: topMs, holdMs: HOLD_MS, samplesBelowTopAfter: downgrades,
      switchesAfter: subS.countSwitches(h0, h1, { track: cam.key, by: 'layer' }),
      timeline: subS.timeline(T, h1, { track: cam.key }),
      estimate: subS.last({ track: cam.key })?.tile?.estimate ?? null,
      sendKbps: Math.round(link.bitrateBetween(link.rel(Date.now()) - HOLD_MS, link.rel(Date.now())) / 1000),
      stalledToTopMs: stood(T, h0), stalledHoldMs: stood(h0, h1),
    });
    const topNet = net_(topMs, T);
    assert.ok(topNet !== null && topNet <= 15_000, `top layer after ${topMs} ms (${topNet} less stalls), limit 15000`);
    qualityLimit(t, downgrades === 0, `${downgrades} samples below the top layer after reaching it, want 0`, subS.t0 + h0, subS.t0 + h1);
  });

  test('4. capacity at 0.95x what the top layer needs: settles on the middle layer, <= 2 switches a minute', pick(4, 90_000 + SETTLE_MS), async (t) => {
    await reset();
    // What the subscriber's link carries on the top layer (video, audio, RTX, RTCP, IP/UDP).
    const l0 = link.now();
    await sleep(6000);
    const needKbps = link.bitrateBetween(l0, link.now()) / 1000;
    const capacity = Math.round(needKbps * 0.95);
    const middle = cam.rids[rank(top.rid) - 1];
    assert.ok(middle, `a layer below the top (${top.rid})`);

    const at = Date.now();
    await net.setRate(capacity);
    const T = subS.rel(at);
    await sleep(SETTLE_MS);
    const T1 = subS.now();
    const switches = subS.countSwitches(T, T1, { track: cam.key, by: 'layer' });
    const perMinute = switches / (SETTLE_MS / 60_000);
    const lastHalf = subS.series({ track: cam.key, from: T + (T1 - T) / 2, to: T1 });
    const onMiddle = lastHalf.filter((v) => v.layer === middle).length / Math.max(1, lastHalf.length);
    const finalLayer = subS.last({ track: cam.key })?.layer ?? null;
    await report(t, 'simulcast-4-capacity-0.95x', {
      topNeedKbps: Math.round(needKbps), capacityKbps: capacity, settleMs: SETTLE_MS, middle,
      switches, switchesPerMinute: Number(perMinute.toFixed(2)),
      heightChanges: subS.countSwitches(T, T1, { track: cam.key, by: 'height' }),
      shareOnMiddleLastHalf: Number(onMiddle.toFixed(3)), finalLayer,
      timeline: subS.timeline(T, T1, { track: cam.key }),
      firstOnMiddleMs: subS.timeUntil((v) => v.layer === middle, { track: cam.key, from: T }),
      freezeMs: subS.freezeTimeBetween(T, T1, { track: cam.key }),
      queueDrops: link.droppedBetween(link.rel(at), link.rel(Date.now())),
      estimate: subS.last({ track: cam.key })?.tile?.estimate ?? null,
      stalledMs: stood(T, T1),
    });
    const w = [subS.t0 + T, subS.t0 + T1];
    qualityLimit(t, finalLayer === middle, `ends on ${finalLayer}, want the middle layer ${middle}`, w[0], w[1]);
    qualityLimit(t, onMiddle >= 0.9, `on the middle layer ${Math.round(onMiddle * 100)}% of the last half, want >= 90%`, w[0], w[1]);
    qualityLimit(t, perMinute <= 2, `${switches} switches in ${SETTLE_MS} ms = ${perMinute.toFixed(2)}/min, limit 2`, w[0], w[1]);
  });

  test('5. sawtooth 3 Mbit/s <-> 700 kbit/s every 4 s: <= 8 switches, no freeze > 1 s', pick(5, 60_000 + SAW_MS), async (t) => {
    await reset();
    const at = Date.now();
    const T = subS.rel(at);
    const { applied } = await runSchedule(net, sawtooth(3000, 700, SAW_PERIOD_MS, SAW_MS));
    await sleep(Math.max(0, at + SAW_MS - Date.now()));
    // A freeze is counted when it ends: a little more time to see one that is going on.
    await sleep(3000);
    const T1 = subS.now();
    const switches = subS.countSwitches(T, T1, { track: cam.key, by: 'layer' });
    const maxFreeze = subS.maxSingleFreeze(T, T1, { track: cam.key });
    await report(t, 'simulcast-5-sawtooth', {
      periodMs: SAW_PERIOD_MS, durationMs: SAW_MS, steps: applied.length,
      switches, heightChanges: subS.countSwitches(T, T1, { track: cam.key, by: 'height' }),
      maxSingleFreezeMs: maxFreeze, maxStallMs: subS.maxStall(T, T1, { track: cam.key }),
      freezeMs: subS.freezeTimeBetween(T, T1, { track: cam.key }),
      seen: subS.seen(T, T1, { track: cam.key }),
      timeline: subS.timeline(T, T1, { track: cam.key }),
      queueDrops: link.droppedBetween(link.rel(at), link.rel(Date.now())),
      stalledMs: stood(T, T1), maxSingleFreezeLessStallsMs: maxFreezeLessStalls(T, T1),
    });
    qualityLimit(t, switches <= 8, `${switches} spatial switches, limit 8`, subS.t0 + T, subS.t0 + T1);
    const maxNet = maxFreezeLessStalls(T, T1);
    assert.ok(maxNet <= 1000, `longest freeze ${maxFreeze} ms (${maxNet} less the stall in it), limit 1000`);
  });

  test('6. 60 kbit/s: video paused, audio unaffected; back to 3 Mbit/s: video resumes within 5 s', pick(6, 90_000), async (t) => {
    await reset();
    const b0 = subS.now();
    await sleep(3000);
    const b1 = subS.now();
    const audioBase = subS.audioDelta(b0, b1, cam.audioKey);
    const baseRate = (audioBase.packets * 1000) / (b1 - b0);

    const at = Date.now();
    await net.setRate(60);
    const T = subS.rel(at);
    const paused = await subS.waitFor('the video paused (data-stream-state=paused)', (v) => v.state === 'paused', { track: cam.key, from: T, timeout: 15_000 }).catch(() => null);
    const pausedMs = paused ? paused.t - T : null;
    const p0 = subS.now();
    await sleep(5000);
    const p1 = subS.now();
    const audio = subS.audioDelta(p0, p1, cam.audioKey);
    const audioRate = (audio.packets * 1000) / (p1 - p0);
    const reason = subS.last({ track: cam.key })?.tile?.reason ?? null;
    const videoKbpsPaused = subS.bitrateBetween(p0, p1, { track: cam.key }) / 1000;

    const at2 = Date.now();
    await net.setRate(3000);
    const T2 = subS.rel(at2);
    const fd = subS.last({ track: cam.key })?.framesDecoded ?? 0;
    const resumed = await subS.waitFor('video decoding again', (v) => v.state !== 'paused' && v.framesDecoded > fd, { track: cam.key, from: T2, timeout: 15_000 }).catch(() => null);
    const resumeMs = resumed ? resumed.t - T2 : null;
    await report(t, 'simulcast-6-60k-pause', {
      pausedWithinMs: pausedMs, pausedReason: reason, videoKbpsWhilePaused: Number(videoKbpsPaused.toFixed(1)),
      audioPacketsPerSecBefore: Number(baseRate.toFixed(1)), audioPacketsPerSecPaused: Number(audioRate.toFixed(1)),
      audioEnergyWhilePaused: Number(audio.energy.toFixed(4)), resumeWithinMs: resumeMs,
      timeline: subS.timeline(T, subS.now(), { track: cam.key }),
      stalledToResumeMs: resumeMs === null ? null : stood(T2, T2 + resumeMs),
    });
    assert.ok(paused, 'the video is paused at 60 kbit/s');
    assert.ok(audio.packets > 0 && audio.energy > 0, `audio keeps coming while paused: ${JSON.stringify(audio)}`);
    assert.ok(audioRate >= 0.8 * baseRate, `audio ${audioRate.toFixed(1)} packets/s while paused, ${baseRate.toFixed(1)} before`);
    const resumeNet = net_(resumeMs, T2);
    assert.ok(resumeNet !== null && resumeNet <= 5000, `video resumed after ${resumeMs} ms (${resumeNet} less stalls), limit 5000`);
  });

  test('7. 3% random loss, ample rate: stays on the top layer, retransmissions flow, freezes <= 0.5 s a minute', {
    ...pick(7, 60_000 + LOSS_MS),
    ...(haveIptables() ? {} : { skip: 'iptables is not installed (apt-get install -y iptables)' }),
  }, async (t) => {
    await reset();
    const pubRtx0 = (await publisherStats(pub.page)).filter((o) => o.source === 'camera').reduce((n, o) => n + o.retransmittedPacketsSent, 0);
    const at = Date.now();
    await net.setLoss(0.03);
    const T = subS.rel(at);
    await sleep(LOSS_MS);
    const T1 = subS.now();
    await net.clearLoss();
    const pubRtx1 = (await publisherStats(pub.page)).filter((o) => o.source === 'camera').reduce((n, o) => n + o.retransmittedPacketsSent, 0);
    const xs = subS.series({ track: cam.key, from: T, to: T1 });
    const belowTop = xs.filter((v) => v.layer !== null && rank(v.layer) < rank(top.rid)).length;
    const freeze = subS.freezeTimeBetween(T, T1, { track: cam.key });
    const perMinute = freeze / (LOSS_MS / 60_000);
    const nack = subS.delta('nackCount', T, T1, { track: cam.key });
    const rtx = subS.delta('retransmittedPacketsReceived', T, T1, { track: cam.key });
    await report(t, 'simulcast-7-loss-3pct', {
      durationMs: LOSS_MS, samplesBelowTop: belowTop, samples: xs.length,
      switches: subS.countSwitches(T, T1, { track: cam.key, by: 'layer' }),
      nackCount: nack, retransmittedPacketsReceived: rtx, publisherRetransmitted: pubRtx1 - pubRtx0,
      packetsReceived: subS.delta('packetsReceived', T, T1, { track: cam.key }),
      packetsLost: subS.delta('packetsLost', T, T1, { track: cam.key }),
      pliCount: subS.delta('pliCount', T, T1, { track: cam.key }),
      freezeMs: freeze, freezeMsPerMinute: Math.round(perMinute),
      estimate: subS.last({ track: cam.key })?.tile?.estimate ?? null,
      stalledMs: stood(T, T1),
    });
    assert.ok(nack > 0, 'the subscriber sends NACKs');
    assert.ok(rtx > 0, 'retransmissions arrive');
    const perMinuteNet = Math.max(0, freeze - stood(T, T1)) / (LOSS_MS / 60_000);
    assert.ok(perMinuteNet <= 500, `freezes ${Math.round(perMinute)} ms a minute (${Math.round(perMinuteNet)} less stalls), limit 500`);
    qualityLimit(t, belowTop === 0, `${belowTop} samples below the top layer under 3% loss, want 0`, subS.t0 + T, subS.t0 + T1);
  });

  test('8. >= 20 forced switches (tile 320x180 <-> 1280x720): decoding never stops, <= 3 PLIs a switch', pick(8, 60_000 + SWITCHES * SWITCH_EVERY_MS), async (t) => {
    await reset();
    const T = subS.now();
    /** @type {number[]} */
    const marks = [];
    for (let i = 0; i < SWITCHES; i++) {
      marks.push(subS.now());
      await setTileSize(cam.mid, i % 2 === 0 ? SMALL : LARGE);
      await sleep(SWITCH_EVERY_MS);
    }
    marks.push(subS.now());
    await sleep(1000);
    const T1 = subS.now();
    const switches = subS.countSwitches(T, T1, { track: cam.key, by: 'layer' });
    const plis = subS.delta('pliCount', T, T1, { track: cam.key }) + subS.delta('firCount', T, T1, { track: cam.key });
    const framesPerInterval = marks.slice(1).map((m, i) => subS.delta('framesDecoded', marks[i], m, { track: cam.key }));
    await report(t, 'simulcast-8-forced-switches', {
      sizeChanges: SWITCHES, everyMs: SWITCH_EVERY_MS, switches,
      heightChanges: subS.countSwitches(T, T1, { track: cam.key, by: 'height' }),
      plis, plisPerSwitch: Number((plis / Math.max(1, switches)).toFixed(2)),
      minFramesPerInterval: Math.min(...framesPerInterval),
      maxStallMs: subS.maxStall(T, T1, { track: cam.key }),
      freezeMs: subS.freezeTimeBetween(T, T1, { track: cam.key }),
      keyFramesDecoded: subS.delta('keyFramesDecoded', T, T1, { track: cam.key }),
    });
    assert.ok(switches >= 20, `${switches} layer switches seen for ${SWITCHES} size changes, want >= 20`);
    assert.ok(framesPerInterval.every((n) => n > 0), `frames decoded in every ${SWITCH_EVERY_MS} ms interval: ${framesPerInterval.join(',')}`);
    assert.ok(plis / Math.max(1, switches) <= 3, `${plis} PLIs for ${switches} switches, limit 3 a switch`);
  });

  test('10. a 320x180 tile gets the low layer despite ample bandwidth; at 1280x720 the top layer within 2 s', pick(10, 60_000), async (t) => {
    await reset();
    const low = cam.rids[0];
    const at = Date.now();
    await setTileSize(cam.mid, SMALL);
    const T = subS.rel(at);
    const gotLow = await subS.waitFor(`the low layer ${low}`, (v) => v.layer === low && v.frameHeight > 0 && v.frameHeight <= (top.heights[low] ?? 180) * 1.1, { track: cam.key, from: T, timeout: 10_000 }).catch(() => null);
    const lowMs = gotLow ? gotLow.t - T : null;
    await sleep(3000);
    const stayedLow = subS.series({ track: cam.key, from: subS.now() - 2500 }).every((v) => v.layer === low);

    const at2 = Date.now();
    await setTileSize(cam.mid, LARGE);
    const T2 = subS.rel(at2);
    const hit = await subS.waitFor('the top layer again', isTop, { track: cam.key, from: T2, timeout: 10_000 }).catch(() => null);
    const topMs = hit ? hit.t - T2 : null;
    await report(t, 'simulcast-10-tile-size', {
      lowWithinMs: lowMs, stayedLow, topWithinMs: topMs, low, timeline: subS.timeline(T, subS.now(), { track: cam.key }),
      stalledToTopMs: topMs === null ? null : stood(T2, T2 + topMs),
    });
    assert.ok(gotLow, `the ${SMALL.width}x${SMALL.height} tile gets the low layer ${low}`);
    assert.ok(stayedLow, 'and stays on it');
    const topNet = net_(topMs, T2);
    assert.ok(topNet !== null && topNet <= 2000, `top layer ${topMs} ms after enlarging (${topNet} less stalls), limit 2000`);
  });

  test('11. dynacast: a small tile stops the upper encodings within 6 s; enlarged, they resume within 1.5 s', pick(11, 60_000), async (t) => {
    await reset();
    const upper = cam.rids.slice(1);
    const at = Date.now();
    await setTileSize(cam.mid, SMALL);
    const P = pubS.rel(at);
    await until('the upper encodings to stop', () => upper.every((rid) => stoppedAt(rid, P) !== null), { timeout: 10_000, interval: 250 }).catch(() => null);
    /** @type {Record<string, number | null>} */
    const stoppedMs = {};
    for (const rid of upper) {
      const s = stoppedAt(rid, P);
      stoppedMs[rid] = s === null ? null : s - P;
    }
    const activeWhileSmall = Object.fromEntries(upper.map((rid) => [rid, pubS.series({ rid, from: pubS.now() - 500 }).at(-1)?.active ?? null]));

    const topRid = top.rid;
    const bytesAt = pubS.series({ rid: topRid }).at(-1)?.bytesSent ?? 0;
    const at2 = Date.now();
    await setTileSize(cam.mid, LARGE);
    const P2 = pubS.rel(at2);
    const resumed = await pubS.waitFor(`encoding ${topRid} sending again`, (o) => o.bytesSent > bytesAt, { rid: topRid, from: P2, timeout: 10_000 }).catch(() => null);
    const resumeMs = resumed ? resumed.t - P2 : null;
    await sleep(1000);
    /** @type {Record<string, boolean | null>} */
    const activeAfter = Object.fromEntries(upper.map((rid) => [rid, pubS.series({ rid }).at(-1)?.active ?? null]));
    await report(t, 'simulcast-11-dynacast', {
      stoppedWithinMs: stoppedMs, activeWhileSmall, topResumedWithinMs: resumeMs, activeAfter,
      stalledToResumeMs: resumeMs === null ? null : stalledBetween(at2, at2 + resumeMs),
    });
    for (const rid of upper) {
      const ms = stoppedMs[rid];
      const msNet = ms === null ? null : lessStalls(ms, at);
      assert.ok(msNet !== null && msNet <= 6000, `encoding ${rid} stopped after ${ms} ms (${msNet} less stalls), limit 6000`);
    }
    const resumeNet = resumeMs === null ? null : lessStalls(resumeMs, at2);
    assert.ok(resumeNet !== null && resumeNet <= 1500, `encoding ${topRid} resumed after ${resumeMs} ms (${resumeNet} less stalls), limit 1500`);
  });

  test('9. camera + screen share at 1 Mbit/s: the screen share keeps its top layer', pick(9, 120_000 + SCREEN_MS), async (t) => {
    await reset();
    // A 1280x720 "screen": text that changes a little, as a slide being pointed at.
    await pub.page.evaluate(() => {
      const canvas = document.createElement('canvas');
      canvas.width = 1280;
      canvas.height = 720;
      canvas.style.cssText = 'position:fixed;left:0;top:0;width:2px;height:2px;opacity:0.01;pointer-events:none';
      document.body.append(canvas);
      const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
      let n = 0;
      const draw = () => {
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, 1280, 720);
        ctx.fillStyle = '#111';
        ctx.font = '28px monospace';
        // Still text with one changing line (a clock) and a moving pointer: what a slide being
        // presented sends, not a video.
        for (let i = 0; i < 17; i++) ctx.fillText(`${i + 1}. confab screen share test, line ${i + 1} of a still slide`, 30, 40 + i * 37);
        ctx.fillText(`18. frame ${n}`, 30, 40 + 17 * 37);
        ctx.fillStyle = '#c00';
        ctx.fillRect(40 + ((n * 12) % 1160), 680, 80, 24);
        n++;
      };
      draw();
      const stream = canvas.captureStream(10);
      const track = stream.getVideoTracks()[0];
      /** @type {any} */ (window).__screen = { track, stream, timer: setInterval(draw, 100), canvas };
      window.confab.client?.publish(track, stream, { source: 'screen' });
    });
    try {
      const screenMid = await until('the screen share to be negotiated', () => pub.page.evaluate(() =>
        window.confab.client?.localTracks.find((x) => x.source === 'screen')?.transceiver.mid ?? null), { timeout: 15_000 });
      const screenKey = `${pub.id}/${screenMid}`;
      await subS.waitFor('the subscriber decoding the screen share', (v) => v.framesDecoded > 0, { track: screenKey, timeout: 20_000 });
      await setTileSize(screenMid, LARGE);
      await setTileSize(cam.mid, { width: 640, height: 360 });
      const screenTop = await until('the publisher sending its screen layers', () => pubTopNow('screen'), { timeout: 20_000 });
      await subS.waitFor(`the screen share on its top layer ${screenTop.rid}`, (v) => v.layer === screenTop.rid && v.frameHeight > 0, { track: screenKey, timeout: 20_000 });

      const at = Date.now();
      await net.setRate(1000);
      const T = subS.rel(at);
      await sleep(SCREEN_MS);
      const T1 = subS.now();
      const xs = subS.series({ track: screenKey, from: T, to: T1 });
      const offTop = xs.filter((v) => v.layer !== screenTop.rid).length;
      const screenFigures = {
        screenTimeline: subS.timeline(T, T1, { track: screenKey }), cameraTimeline: subS.timeline(T, T1, { track: cam.key }),
        screenPublisher: await pubLayers('screen'),
      };

      // The screen share ends and the link is free again: how soon is the camera back on top?
      await stopScreen();
      await net.clearRate();
      await setTileSize(cam.mid, LARGE);
      const E = subS.now();
      const back = await subS.waitFor('the camera on its top layer after the screen share', isTop, { track: cam.key, from: E, timeout: 20_000 }).catch(() => null);
      await report(t, 'simulcast-9-screen-at-1M', {
        ...screenFigures,
        cameraTopAfterScreenEndsMs: back ? back.t - E : null,
        cameraAfterScreenEnds: subS.timeline(E, subS.now(), { track: cam.key }),
        durationMs: SCREEN_MS, screenTop: screenTop.rid, screenTopHeight: screenTop.frameHeight,
        screenSamplesOffTop: offTop, screenSamples: xs.length,
        screenSeen: subS.seen(T, T1, { track: screenKey }), cameraSeen: subS.seen(T, T1, { track: cam.key }),
        cameraState: subS.series({ track: cam.key, to: T1 }).at(-1)?.state ?? null,
        screenKbps: Math.round(subS.bitrateBetween(T, T1, { track: screenKey }) / 1000),
        cameraKbps: Math.round(subS.bitrateBetween(T, T1, { track: cam.key }) / 1000),
        screenFreezeMs: subS.freezeTimeBetween(T, T1, { track: screenKey }),
      });
      assert.equal(offTop, 0, `the screen share left its top layer ${screenTop.rid} in ${offTop} of ${xs.length} samples`);
    } finally {
      await stopScreen().catch(() => {});
      await setTileSize(cam.mid, LARGE).catch(() => {});
    }
  });
});

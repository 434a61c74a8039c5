// Peer-to-peer rooms (docs/protocol.md, "Peer-to-peer rooms"): a `p2p` room of two, three and
// four pages whose media goes directly between the browsers while the server forwards no RTP,
// and whose chat, files and other data go directly too, the server relaying none;
// an `auto` room going 2 -> 3 -> 2 participants, switching between direct connections and the
// server without a visible freeze; a participant that never answers an offer; and `signal`
// refused across rooms.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import {
  launchBrowser, openParticipant, qualityLimit, receivedDigest, sleep, stalledBetween, startServer, until, watchStalls,
} from './helpers.mjs';

/** Four pages share two cores: each asks its camera for 640x360 (see call.test.mjs). */
const QUERY = { res: '360' };
/** The longest a remote tile may go without a new frame while an `auto` room switches paths. */
const SWITCH_GAP_LIMIT_MS = 1500;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @typedef {Awaited<ReturnType<typeof openParticipant>>} Person */
/** Every page opened, for the screenshots and the error checks at the end. @type {Person[]} */
const everyone = [];

before(async () => {
  watchStalls();
  server = await startServer('p2p');
  browser = await launchBrowser();
});

after(async () => {
  for (const p of everyone) {
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
  }
  await browser?.close();
  await server?.stop();
});

/**
 * Open a page and join `room` through it.
 * @param {string} room
 * @param {string} name
 * @param {Record<string, string>} [query]
 * @returns {Promise<Person>}
 */
async function join(room, name, query = {}) {
  const p = await openParticipant(browser, server.url, { room, name, query: { ...QUERY, ...query } });
  everyone.push(p);
  await p.clickJoin();
  await p.waitJoined();
  return p;
}

/**
 * Save a screenshot of each page (artifacts/p2p-<label>-<name>.png) and close it: a test's pages
 * go before the next test starts, to keep the load of this 2-core machine down.
 * @param {string} label
 * @param {Person[]} people
 */
async function closeAll(label, people) {
  for (const p of people) {
    await p.screenshot(`p2p-${label}-${p.name}`);
    await p.close();
  }
}

/** @param {Person} p @param {Person[]} group */
const othersOf = (p, group) => group.filter((q) => q !== p).map((q) => /** @type {string} */ (q.id));

/** The server's counters (GET /api/v1/stats). */
async function serverStats() {
  return (await fetch(new URL('/api/v1/stats', server.url))).json();
}

/**
 * @typedef {object} Received what one page receives from one other participant, summed over its
 *   direct connection (`direct`) and its connection to the server (`server`)
 * @property {number} frames video frames decoded
 * @property {number} packets audio packets received
 * @property {number} energy total audio energy
 */

/**
 * What `p` receives now, by participant, on its direct connections and through the server.
 * @param {Person} p
 * @returns {Promise<{direct: Record<string, Received & {state: string}>, server: Record<string, Received>}>}
 */
function received(p) {
  return p.page.evaluate(async () => {
    const c = window.confab.client;
    /** @type {Record<string, any>} */
    const direct = {};
    /** @type {Record<string, any>} */
    const server = {};
    /** @param {Record<string, any>} into @param {string} id @param {any} s */
    const add = (into, id, s) => {
      const o = (into[id] ??= { frames: 0, packets: 0, energy: 0 });
      if (s.kind === 'video') o.frames += s.framesDecoded ?? 0;
      if (s.kind === 'audio') {
        o.packets += s.packetsReceived ?? 0;
        o.energy += s.totalAudioEnergy ?? 0;
      }
    };
    for (const [id, pc] of c?.mesh?.connections() ?? []) {
      direct[id] = { frames: 0, packets: 0, energy: 0, state: pc.connectionState };
      (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') add(direct, id, s); });
    }
    if (c?.pc && c.pc.connectionState !== 'closed') {
      (await c.pc.getStats()).forEach((s) => {
        const ref = s.type === 'inbound-rtp' && s.mid !== undefined ? c.mids.get(s.mid) : undefined;
        if (ref) add(server, ref.participant, s);
      });
    }
    return { direct, server };
  });
}

/**
 * Wait until `p` decodes new video frames from each of `others` and receives their audio (with
 * energy: the fake microphone beeps), on `path` (`p2p`: direct connections only; `any`: the
 * sum of both paths). Returns the increase over the last second.
 * @param {Person} p
 * @param {string[]} others
 * @param {'p2p' | 'any'} path
 */
async function receivesFrom(p, others, path) {
  /** What the last try saw, for the report of a failure. */
  let last = {};
  return until(`${p.name} to decode video and hear audio of ${others.length} others (${path})`, async () => {
    const sum = (/** @type {Awaited<ReturnType<typeof received>>} */ r, /** @type {string} */ id) => {
      const d = r.direct[id] ?? { frames: 0, packets: 0, energy: 0 };
      const s = path === 'p2p' ? { frames: 0, packets: 0, energy: 0 } : (r.server[id] ?? { frames: 0, packets: 0, energy: 0 });
      return { frames: d.frames + s.frames, packets: d.packets + s.packets, energy: d.energy + s.energy };
    };
    const a = await received(p);
    await sleep(1000);
    const b = await received(p);
    /** @type {Record<string, {frames: number, packets: number}>} */
    const deltas = {};
    let ok = true;
    for (const id of others) {
      const x = sum(a, id);
      const y = sum(b, id);
      deltas[id] = { frames: y.frames - x.frames, packets: y.packets - x.packets };
      ok &&= deltas[id].frames > 0 && deltas[id].packets > 0 && y.energy > 0;
    }
    last = { deltas, direct: b.direct, server: b.server };
    if (!ok) throw new Error(`not yet: ${JSON.stringify(last)}`);
    return deltas;
  }, { timeout: 30_000, interval: 0 });
}

/**
 * Wait for the page's path badge to show `path`.
 * @param {Person} p
 * @param {string} path
 */
async function pathShown(p, path, timeout = 20_000) {
  await until(`${p.name}'s path badge to say ${path}`, async () => (await p.page.getAttribute('#path', 'data-path')) === path, { timeout });
}

// ------------------------------------------------------------------------------ p2p room

test('a p2p room of 2, 3 and 4: media goes directly, the server forwards none', { timeout: 170_000 }, async (t) => {
  const room = 'e2e-p2p';
  const before = await serverStats();
  /** @type {Person[]} */
  const people = [];
  t.after(() => closeAll('mesh', people));
  for (const name of ['Ada', 'Grace', 'Linus', 'Dennis']) {
    // The first join opens the room: its `?mode=` is the room's mode.
    people.push(await join(room, name, people.length === 0 ? { mode: 'p2p' } : {}));
    if (people.length === 1) continue;
    for (const p of people) {
      const deltas = await receivesFrom(p, othersOf(p, people), 'p2p');
      t.diagnostic(`${people.length} in the room: ${p.name} over 1 s, directly: ${JSON.stringify(deltas)}`);
      const r = await received(p);
      assert.deepEqual(Object.keys(r.direct).sort(), othersOf(p, people).sort(), `${p.name} has one direct connection per other participant`);
      for (const [id, d] of Object.entries(r.direct)) assert.equal(d.state, 'connected', `${p.name}'s connection to ${id}`);
      assert.deepEqual(r.server, {}, `${p.name} receives no media through the server`);
      await pathShown(p, 'p2p', 5000);
      assert.match(await p.page.getAttribute('#path', 'title') ?? '', /directly/);
      // Each other participant has a named tile showing their video.
      for (const q of people.filter((q) => q !== p)) {
        const tile = p.page.locator(`.tile[data-participant="${q.id}"]`);
        assert.equal(await tile.locator('.name').textContent(), q.name);
        await until(`${p.name}'s tile of ${q.name} to show video`, async () => (await tile.getAttribute('data-video-ready')) === 'true', { timeout: 5000 });
      }
    }
  }
  const afterStats = await serverStats();
  t.diagnostic(`server counters: rtp_in ${before.rtp_in} -> ${afterStats.rtp_in}, rtp_forwarded ${before.rtp_forwarded} -> ${afterStats.rtp_forwarded}, tracks ${afterStats.tracks}`);
  assert.equal(afterStats.rtp_in - before.rtp_in, 0, 'the server received no RTP');
  assert.equal(afterStats.rtp_forwarded - before.rtp_forwarded, 0, 'the server forwarded no RTP');
  assert.equal(afterStats.tracks, 0, 'nothing is published on the server');
});

/** Record the `data` events of a page (window.__data) and its file transfers (window.__files). */
function recordData() {
  const w = /** @type {any} */ (window);
  w.__data = [];
  w.confab.client.addEventListener('data', (/** @type {CustomEvent} */ ev) => {
    const d = ev.detail;
    w.__data.push({ from: d.from, text: typeof d.data === 'string' ? d.data : null, bytes: typeof d.data === 'string' ? d.data.length : d.data.length, direct: d.direct, private: d.private, reliable: d.reliable });
  });
  w.__files = [];
  w.confab.files.addEventListener('update', (/** @type {CustomEvent} */ ev) => {
    const t = ev.detail;
    w.__files.push({ name: t.name, direction: t.direction, state: t.state, done: t.done });
  });
}

test('in a p2p room, chat, a file and unreliable data ride the direct connections: the server relays no data', { timeout: 120_000 }, async (t) => {
  const room = 'e2e-p2p-data';
  /** @type {Person[]} */
  const people = [];
  t.after(() => closeAll('data', people));
  for (const name of ['Ada', 'Grace', 'Linus']) people.push(await join(room, name, people.length === 0 ? { mode: 'p2p' } : {}));
  const [ada, grace, linus] = people;
  for (const p of people) {
    const others = othersOf(p, people);
    await until(`${p.name}'s direct data channels to open`, () => p.page.evaluate((ids) => {
      const c = window.confab.client;
      return ids.every((id) => c?.mesh?.channel(id, true) && c.mesh.channel(id, false));
    }, others), { timeout: 20_000 });
    await p.page.evaluate(recordData);
  }
  const before = await serverStats();

  // Chat, through the page, from Ada to the room and from Grace back.
  await ada.page.click('#chat-button');
  await ada.page.fill('#chat-input', 'hello, directly');
  await ada.page.press('#chat-input', 'Enter');
  for (const p of [grace, linus]) {
    await p.page.click('#chat-button');
    await until(`${p.name} to show Ada's chat message`, async () => (await p.page.locator('#chat-log').textContent())?.includes('hello, directly'), { timeout: 10_000 });
  }
  await grace.page.fill('#chat-input', 'and back');
  await grace.page.press('#chat-input', 'Enter');
  await until('Ada to show Grace\'s answer', async () => (await ada.page.locator('#chat-log').textContent())?.includes('and back'), { timeout: 10_000 });

  // Bytes on the unreliable channel, to Linus alone.
  await grace.page.evaluate((to) => window.confab.client?.send(new Uint8Array([1, 2, 3, 4, 5]), { reliable: false, to }), linus.id);

  // A 5 MB file from Linus to the room.
  const content = randomBytes(5 * 1024 * 1024);
  const sha = createHash('sha256').update(content).digest('hex');
  const t0 = Date.now();
  await linus.page.setInputFiles('#chat-file', { name: 'direct.bin', mimeType: 'application/octet-stream', buffer: content });
  for (const p of [ada, grace]) {
    const got = await until(`${p.name} to receive direct.bin`, () => p.page.evaluate(receivedDigest, 'direct.bin'), { timeout: 60_000, interval: 300 });
    assert.deepEqual(got, { sha256: sha, size: content.length, verified: true }, `${p.name} has the file, byte for byte`);
  }
  t.diagnostic(`5 MB from Linus to two others directly in ${Date.now() - t0} ms from setInputFiles`);
  await until('Linus\'s transfer to finish', () => linus.page.evaluate(() => /** @type {any} */ (window).__files.some((/** @type {any} */ u) => u.name === 'direct.bin' && u.state === 'done')), { timeout: 20_000 });

  // Every message came directly, tagged with its sender; the unreliable one to Linus alone.
  /** @type {Record<string, any[]>} */
  const got = {};
  for (const p of people) got[/** @type {string} */ (p.name)] = await p.page.evaluate(() => /** @type {any} */ (window).__data);
  for (const [name, list] of Object.entries(got)) {
    assert.ok(list.length > 0, `${name} got data`);
    assert.deepEqual(list.filter((d) => !d.direct), [], `${name}: every data message came on a direct connection`);
  }
  assert.ok(got.Grace.some((d) => d.from === ada.id && d.text?.includes('hello, directly')), 'Grace got Ada\'s message from Ada');
  assert.ok(got.Ada.some((d) => d.from === grace.id && d.text?.includes('and back')), 'Ada got Grace\'s answer from Grace');
  assert.deepEqual(got.Linus.filter((d) => !d.reliable), [{ from: grace.id, text: null, bytes: 5, direct: true, private: true, reliable: false }]);
  assert.deepEqual([...got.Ada, ...got.Grace].filter((d) => !d.reliable), [], 'nobody else got the unreliable message');
  const after = await serverStats();
  t.diagnostic(`server data counters: in ${before.data_in} -> ${after.data_in}, out ${before.data_out} -> ${after.data_out}`);
  assert.equal(after.data_in - before.data_in, 0, 'the server received no data message');
  assert.equal(after.data_out - before.data_out, 0, 'the server delivered no data message');
});

test('in a p2p room, mute, a shared screen and a new camera reach the direct connection', { timeout: 90_000 }, async (t) => {
  const room = 'e2e-p2p-changes';
  /** @type {Person[]} */
  const pair = [];
  t.after(() => closeAll('changes', pair));
  const ada = await join(room, 'Ada', { mode: 'p2p' });
  pair.push(ada);
  const grace = await join(room, 'Grace');
  pair.push(grace);
  await receivesFrom(grace, [/** @type {string} */ (ada.id)], 'p2p');
  const tile = grace.page.locator(`.tile[data-participant="${ada.id}"]`);

  // Mute and unmute: the `tracks` of a signal.
  await ada.page.click('#camera-button');
  await until('Grace to see Ada\'s camera off', async () => (await tile.getAttribute('data-video-muted')) === 'true', { timeout: 5000 });
  await ada.page.click('#camera-button');
  await until('Grace to see Ada\'s camera on', async () => (await tile.getAttribute('data-video-muted')) === 'false', { timeout: 5000 });

  // A shared screen: a transceiver more on the direct connection, shown in a tile of its own.
  await ada.page.getByRole('button', { name: 'Share screen', exact: true }).click();
  const screen = grace.page.locator(`.tile.screen[data-screen-of="${ada.id}"]`);
  await screen.waitFor({ state: 'visible', timeout: 15_000 });
  await until('Grace to show Ada\'s screen', async () => (await screen.getAttribute('data-video-ready')) === 'true', { timeout: 15_000 });
  assert.equal(await screen.locator('.name').textContent(), 'Ada (screen)');
  assert.match(await screen.locator('video').getAttribute('data-track') ?? '', /^p2p-/);
  await ada.page.getByRole('button', { name: 'Stop sharing', exact: true }).click();
  await screen.waitFor({ state: 'detached', timeout: 10_000 });

  // Another camera (what the Settings dialog does): replaceTrack on the direct sender too.
  const swapped = await ada.page.evaluate(async () => {
    const c = /** @type {NonNullable<typeof window.confab.client>} */ (window.confab.client);
    const lt = /** @type {any} */ (c.localTracks.find((l) => l.source === 'camera'));
    const old = lt.track;
    const next = (await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 180 } })).getVideoTracks()[0];
    await c.replaceTrack(old, next);
    old.stop();
    const sent = [...(c.mesh?.connections().values() ?? [])].flatMap((pc) => pc.getSenders().map((s) => s.track));
    return { next: sent.includes(next), old: sent.includes(old) };
  });
  assert.deepEqual(swapped, { next: true, old: false }, 'the direct connection sends the new camera');
  const deltas = await receivesFrom(grace, [/** @type {string} */ (ada.id)], 'p2p');
  t.diagnostic(`Grace over 1 s after the new camera: ${JSON.stringify(deltas)}`);
});

// ------------------------------------------------------------------------------ auto room

/**
 * Watch, in the page, every remote tile's video for new frames (requestVideoFrameCallback),
 * checked every 50 ms: `window.__gaps.start()` opens a window, `window.__gaps.read()` gives per
 * participant tile the longest time without a new frame in it, when that gap began and ended
 * (Date.now()), the frames presented, and the most <audio> elements that played in it at once.
 */
function installGapWatch() {
  const w = /** @type {any} */ (window);
  /** @type {WeakSet<HTMLVideoElement>} */
  const watched = new WeakSet();
  /** participant -> {last frame (Date.now()), longest gap, frames} */
  /** @type {Map<string, {last: number, gap: number, from: number, to: number, frames: number, audios: number}>} */
  const tiles = new Map();
  let since = Date.now();
  /** @param {string} id */
  const entry = (id) => {
    let e = tiles.get(id);
    if (!e) {
      e = { last: since, gap: 0, from: since, to: since, frames: 0, audios: 0 };
      tiles.set(id, e);
    }
    return e;
  };
  /** @param {string} id @param {number} now */
  const close = (id, now) => {
    const e = entry(id);
    const gap = now - Math.max(e.last, since);
    if (gap > e.gap) Object.assign(e, { gap, from: Math.max(e.last, since), to: now });
    return e;
  };
  setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll('.tile[data-participant]:not(.self) video')) {
      const video = /** @type {HTMLVideoElement} */ (el);
      const id = /** @type {HTMLElement} */ (video.closest('.tile')).dataset.participant ?? '';
      if (!watched.has(video)) {
        watched.add(video);
        const onFrame = () => {
          const tile = /** @type {HTMLElement | null} */ (video.closest('.tile'));
          const who = tile?.dataset.participant;
          if (who) {
            const t = Date.now();
            close(who, t);
            const e = entry(who);
            e.last = t;
            e.frames++;
          }
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
      const e = close(id, now);
      const playing = [...video.closest('.tile')?.querySelectorAll('audio') ?? []]
        .filter((a) => a instanceof HTMLAudioElement && !a.paused && a.srcObject instanceof MediaStream && a.srcObject.getAudioTracks().some((t) => t.readyState === 'live'));
      e.audios = Math.max(e.audios, playing.length);
    }
  }, 50);
  w.__gaps = {
    start() {
      since = Date.now();
      for (const e of tiles.values()) Object.assign(e, { gap: 0, from: since, to: since, frames: 0, audios: 0 });
    },
    read() {
      const now = Date.now();
      return Object.fromEntries([...tiles.keys()].map((id) => {
        const e = close(id, now);
        return [id, { gap: e.gap, from: e.from, to: e.to, frames: e.frames, audios: e.audios, sinceLast: now - e.last }];
      }));
    },
  };
}

/**
 * The gaps each of the pair saw in the other's tile since `__gaps.start()`, by name.
 * @param {Person[]} pair
 * @returns {Promise<{at: number, gaps: Record<string, any>}>}
 */
async function readGaps(pair) {
  /** @type {Record<string, any>} */
  const gaps = {};
  for (const p of pair) gaps[p.name] = await p.page.evaluate(() => /** @type {any} */ (window).__gaps.read());
  return { at: Date.now(), gaps };
}

/**
 * Hold the longest frame gap of each pair's tiles over a switch to the limit, less the time the
 * machine stood still within that gap; returns a line for the report.
 * @param {import('node:test').TestContext} t
 * @param {string} what
 * @param {Person[]} pair
 * @param {number} t0 when the switch began (Date.now())
 * @param {Awaited<ReturnType<typeof readGaps>>} read what readGaps said when it was over
 */
function holdGaps(t, what, pair, t0, read) {
  const parts = [];
  for (const p of pair) {
    const q = /** @type {Person} */ (pair.find((x) => x !== p));
    const gaps = read.gaps[p.name];
    const g = gaps[/** @type {string} */ (q.id)];
    assert.ok(g && g.frames > 0, `${p.name} presented frames of ${q.name} during the switch: ${JSON.stringify(gaps)}`);
    // The microphone arrives twice during the overlap: it plays once.
    assert.equal(g.audios, 1, `${p.name} played ${g.audios} audio elements of ${q.name} at once during the switch`);
    const stalled = stalledBetween(g.from, g.to);
    const net = Math.max(0, g.gap - stalled);
    parts.push(`${p.name}'s tile of ${q.name} ${g.gap} ms (${stalled} ms of it stalled, ${g.frames} frames, at most ${g.audios} audio playing)`);
    console.log(`# gap ${what}: ${p.name}'s tile of ${q.name}: longest ${g.gap} ms without a new frame, the machine stood still ${stalled} ms of it; ${g.frames} frames presented`);
    qualityLimit(t, net < SWITCH_GAP_LIMIT_MS, `${what}: ${p.name}'s tile of ${q.name} showed no new frame for ${g.gap} ms (${net} ms less stalls; limit ${SWITCH_GAP_LIMIT_MS} ms)`, t0, read.at);
  }
  return parts.join('; ');
}

/**
 * How many direct connections the page holds.
 * @param {Person} p
 */
const directCount = (p) => p.page.evaluate(() => window.confab.client?.mesh?.connections().size ?? -1);

/**
 * Send `text` from `from` to `to` (by `send`) and tell how it arrived.
 * @param {Person} from
 * @param {Person} to with recordData installed
 * @param {string} text
 * @returns {Promise<'direct' | 'server'>}
 */
async function dataRoute(from, to, text) {
  assert.ok(await from.page.evaluate(([id, text]) => window.confab.client?.send(text, { to: id }), [/** @type {string} */ (to.id), text]), `${from.name} could send`);
  const got = await until(`${to.name} to receive '${text}'`, () => to.page.evaluate((text) => /** @type {any} */ (window).__data.find((/** @type {any} */ d) => d.text === text), text), { timeout: 10_000, interval: 100 });
  assert.equal(got.from, from.id);
  return got.direct ? 'direct' : 'server';
}

test('an auto room switches 2 -> 3 -> 2 between direct and server paths without freezing', { timeout: 170_000 }, async (t) => {
  const room = 'e2e-auto';
  /** @type {Person[]} */
  const three = [];
  t.after(() => closeAll('auto', three));
  const ada = await join(room, 'Ada', { mode: 'auto' });
  const grace = await join(room, 'Grace');
  const pair = [ada, grace];
  three.push(ada, grace);
  for (const p of pair) await p.page.evaluate(installGapWatch);

  // Two: directly.
  for (const p of pair) {
    t.diagnostic(`2, ${p.name} directly: ${JSON.stringify(await receivesFrom(p, othersOf(p, pair), 'p2p'))}`);
    await pathShown(p, 'p2p');
  }
  assert.equal((await serverStats()).tracks, 0, 'with two, nothing is published on the server');
  for (const p of pair) await p.page.evaluate(recordData);
  await until('the direct data channels to open', () => ada.page.evaluate((id) => !!window.confab.client?.mesh?.channel(id, true), grace.id), { timeout: 10_000 });
  assert.equal(await dataRoute(ada, grace, 'with two'), 'direct', 'with two, data goes directly');

  // Three: through the server.
  for (const p of pair) await p.page.evaluate(() => /** @type {any} */ (window).__gaps.start());
  const toSfu = Date.now();
  const linus = await join(room, 'Linus');
  three.push(linus);
  for (const p of three) await pathShown(p, 'sfu', 30_000);
  const sfuAt = Date.now();
  for (const p of pair) {
    await until(`${p.name}'s direct connections to close`, async () => (await directCount(p)) === 0, { timeout: 5000 });
  }
  // The switch is over: its window ends a second later.
  await sleep(1000);
  const gapsToSfu = await readGaps(pair);
  for (const p of three) {
    const deltas = await receivesFrom(p, othersOf(p, three), 'any');
    t.diagnostic(`3, ${p.name}: ${JSON.stringify(deltas)}`);
    const r = await received(p);
    assert.deepEqual(r.direct, {}, `${p.name} has no direct connection left`);
  }
  t.diagnostic(`2 -> 3: every page said "sfu" ${sfuAt - toSfu} ms after Linus's page opened; the machine stood still ${stalledBetween(toSfu, sfuAt)} ms`);
  t.diagnostic(`2 -> 3 gaps: ${holdGaps(t, '2 -> 3', pair, toSfu, gapsToSfu)}`);
  assert.equal(await ada.page.getAttribute('#path', 'title'), 'Media goes through the server');
  assert.equal(await dataRoute(ada, grace, 'with three'), 'server', 'with three, data goes through the server');

  // Two again: directly, and nothing left on the server.
  for (const p of pair) await p.page.evaluate(() => /** @type {any} */ (window).__gaps.start());
  const toP2p = Date.now();
  await linus.page.getByRole('button', { name: 'Leave', exact: true }).click();
  for (const p of pair) await pathShown(p, 'p2p', 30_000);
  const p2pAt = Date.now();
  await sleep(1000);
  const gapsToP2p = await readGaps(pair);
  for (const p of pair) {
    t.diagnostic(`2 again, ${p.name} directly: ${JSON.stringify(await receivesFrom(p, othersOf(p, pair), 'p2p'))}`);
  }
  await until('the server to hold no published track', async () => (await serverStats()).tracks === 0, { timeout: 5000 });
  for (const p of pair) {
    const toServer = await p.page.evaluate(() => window.confab.client?.localTracks.filter((l) => l.transceiver !== null).length);
    assert.equal(toServer, 0, `${p.name} sends nothing to the server`);
  }
  await until('the direct data channels to open again', () => ada.page.evaluate((id) => !!window.confab.client?.mesh?.channel(id, true), grace.id), { timeout: 10_000 });
  assert.equal(await dataRoute(ada, grace, 'two again'), 'direct', 'with two again, data goes directly');
  t.diagnostic(`3 -> 2: every page said "p2p" ${p2pAt - toP2p} ms after Leave; the machine stood still ${stalledBetween(toP2p, p2pAt)} ms`);
  t.diagnostic(`3 -> 2 gaps: ${holdGaps(t, '3 -> 2', pair, toP2p, gapsToP2p)}`);

  // One sound per source: never the same microphone twice.
  for (const p of pair) {
    const audios = await p.page.locator('.tile:not(.self) audio').count();
    assert.equal(audios, 1, `${p.name} plays one audio element`);
  }
});

// ------------------------------------------------------------------------------ raw sockets

/**
 * A signaling connection from node, keeping every message.
 * @param {string} room
 * @param {string} name
 * @param {string} [mode]
 */
async function rawJoin(room, name, mode) {
  const ws = new WebSocket(server.wsUrl);
  /** @type {any[]} */
  const messages = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'join', room, name, protocol: 1, ...(mode ? { mode } : {}) }));
  const joined = await until(`${name} to join ${room}`, () => messages.find((m) => m.type === 'joined'), { timeout: 5000, interval: 20 });
  // Keepalive, as a client does.
  const ping = setInterval(() => ws.send(JSON.stringify({ type: 'ping' })), 10_000);
  ws.on('close', () => clearInterval(ping));
  return {
    ws,
    messages,
    /** @type {string} */
    id: joined.participant.id,
    joined,
    /** @param {object} msg */
    send(msg) {
      ws.send(JSON.stringify(msg));
    },
    close() {
      clearInterval(ping);
      ws.close();
    },
  };
}

test('a peer that never answers is reported on the page', { timeout: 60_000 }, async (t) => {
  const room = 'e2e-p2p-silent';
  const ada = await join(room, 'Ada', { mode: 'p2p' });
  t.after(() => closeAll('silent', [ada]));
  // Ada's camera is on before the silent one comes: her offer goes out when it joins.
  await until('Ada to publish her camera', () => ada.page.evaluate(() => (window.confab.client?.localTracks.length ?? 0) >= 2), { timeout: 10_000 });
  const silent = await rawJoin(room, 'Grace');
  assert.equal(silent.joined.mode, 'p2p');
  assert.equal(silent.joined.path, 'p2p');
  const t0 = Date.now();
  const offer = await until('the silent peer to be sent an offer', () => silent.messages.find((m) => m.type === 'signal' && m.data?.description?.type === 'offer'), { timeout: 10_000, interval: 20 });
  assert.equal(offer.from, ada.id, 'the offer is from Ada, by her id');
  assert.match(offer.data.description.sdp, /^v=0/);
  assert.equal(typeof offer.data.tracks, 'object', 'the offer says what its m-lines carry');
  const sources = Object.values(offer.data.tracks).map((x) => /** @type {any} */ (x).source).sort();
  assert.deepEqual(sources, ['camera', 'microphone']);
  const notice = ada.page.locator('#notice');
  await until('Ada\'s page to say Grace did not answer', async () => (await notice.isVisible()) && /Grace's browser did not answer/.test(await notice.textContent() ?? ''), { timeout: 16_000 });
  const ms = Date.now() - t0;
  t.diagnostic(`the notice showed ${ms} ms after the offer was received: "${await notice.textContent()}"`);
  assert.ok(ms >= 8_000, `the answer was waited for (${ms} ms)`);
  assert.equal(await directCount(ada), 0, 'the unanswered connection is closed');
  await until('the silent peer to be told bye', () => silent.messages.some((m) => m.type === 'signal' && m.from === ada.id && m.data?.bye === true), { timeout: 5000, interval: 20 });
  silent.close();
});

test('signal reaches only a participant of the same room', { timeout: 30_000 }, async () => {
  const a = await rawJoin('e2e-signal-a', 'Ann', 'p2p');
  const a2 = await rawJoin('e2e-signal-a', 'Abe');
  const b = await rawJoin('e2e-signal-b', 'Bob', 'p2p');
  // To a participant of the same room: relayed as it is, with `from`.
  a.send({ type: 'signal', to: a2.id, data: { hello: 1 } });
  const got = await until('Abe to get the signal', () => a2.messages.find((m) => m.type === 'signal'), { timeout: 5000, interval: 20 });
  assert.deepEqual(got, { type: 'signal', from: a.id, data: { hello: 1 } });
  // To a participant of another room: refused.
  a.send({ type: 'signal', to: b.id, data: {} });
  const err = await until('Ann to get an error', () => a.messages.find((m) => m.type === 'error'), { timeout: 5000, interval: 20 });
  assert.equal(err.code, 'unknown_participant', JSON.stringify(err));
  // To herself: refused too.
  a.messages.length = 0;
  a.send({ type: 'signal', to: a.id, data: {} });
  const self = await until('Ann to get a second error', () => a.messages.find((m) => m.type === 'error'), { timeout: 5000, interval: 20 });
  assert.equal(self.code, 'unknown_participant', JSON.stringify(self));
  // Bob got nothing (a ping round trip orders what the server sent him before its pong).
  b.send({ type: 'ping', id: 7 });
  await until('Bob\'s pong', () => b.messages.find((m) => m.type === 'pong'), { timeout: 5000, interval: 20 });
  await sleep(300);
  assert.deepEqual(b.messages.filter((m) => m.type === 'signal'), [], 'the participant of the other room received nothing');
  for (const c of [a, a2, b]) c.close();
});

test('no console errors and no uncaught errors in the pages', () => {
  for (const p of everyone) {
    assert.deepEqual(p.pageErrors, [], `${p.name}: ${p.pageErrors.join(' | ')}`);
    assert.deepEqual(p.consoleErrors, [], `${p.name}: ${p.consoleErrors.join(' | ')}`);
  }
});

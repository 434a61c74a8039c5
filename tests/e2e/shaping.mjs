// An impaired downlink to ONE subscriber: the subscriber's Chromium runs in a network namespace of
// its own, joined to ours by a veth pair; a tbf qdisc on our end of the pair shapes what the
// server sends it (rate + drop-tail queue), iptables in its namespace drops a random share of
// what it receives (loss). Everything else (server, publisher) stays on loopback, unshaped.
//
// Needs root inside a network namespace of its own (tests/e2e/run.sh runs the suite in
// `unshare -n -m` with a tmpfs of its own on /run/netns): createShapedNetwork() refuses to touch
// the machine's real network. The private mount namespace keeps what `ip netns add` mounts inside
// the run, so a run that dies midway leaves nothing behind; without it everything still works, but
// a crashed run would leave its namespace mounted under /run/netns of the machine. Loss and the
// send counter need Debian's `iptables` (without it: no loss; the counter is estimated).
//
// Shaping is on the server -> subscriber direction only. There is no delay or reordering: no
// `tc netem` on this machine (see shared/WEBRTC-NOTES.md, "Network impairment").

import { execFile, execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, sleep, startServer } from './helpers.mjs';

const run = promisify(execFile);

/** Ethernet frame of a full-size packet on the veth (1500 MTU + 14 header). */
const FRAME_BYTES = 1514;

/**
 * Run a command; on failure, throw with its stderr.
 * @param {string} cmd
 * @param {string[]} args
 */
async function sh(cmd, args) {
  try {
    const { stdout } = await run(cmd, args, { timeout: 15_000 });
    return stdout;
  } catch (e) {
    const err = /** @type {any} */ (e);
    throw new Error(`${cmd} ${args.join(' ')}: ${String(err.stderr || err.message).trim()}`);
  }
}

/** Whether a command exists on PATH (or at that path). @param {string} cmd */
function have(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether iptables is installed (needed by setLoss). */
export const haveIptables = () => have('iptables');

/**
 * Whether we are in a network namespace of our own: one holding loopback and nothing but the
 * veths this module made (the machine's own namespace has its real interfaces). Read over
 * netlink (`ip`), not /sys, which shows the namespace that mounted it.
 */
async function inPrivateNetns() {
  const out = await sh('ip', ['-o', 'link', 'show']);
  const names = out.split('\n').filter(Boolean).map((l) => l.split(':')[1].trim().split('@')[0]);
  return names.every((n) => n === 'lo' || /^cf[hs][0-9a-f]{6}$/.test(n));
}

/** Whether our mount namespace is the one of pid 1 (null: cannot tell). */
function initialMountNs() {
  try {
    return fs.readlinkSync('/proc/self/ns/mnt') === fs.readlinkSync('/proc/1/ns/mnt');
  } catch {
    return null;
  }
}

/**
 * @typedef {object} RateOptions
 * @property {number} [burstBytes] token bucket size; default max(2 full frames, 10 ms at the rate)
 * @property {number} [queueMs] drop-tail queue, as time at the rate; default 150 ms (at least
 *   2 full frames, so that low rates still pass whole packets)
 */

/**
 * @typedef {object} ShapedNetwork
 * @property {string} hostAddr our end of the veth (bind the server here)
 * @property {string} subAddr the subscriber namespace's end
 * @property {string} nsName the subscriber's named network namespace
 * @property {string} hostDev our veth device (its egress qdisc shapes the subscriber's downlink)
 * @property {string} subDev the veth device inside the namespace
 * @property {(kbit: number, opts?: RateOptions) => Promise<{kbit: number, burstBytes: number, limitBytes: number}>} setRate
 * @property {() => Promise<void>} clearRate
 * @property {(probability: number) => Promise<void>} setLoss random loss of UDP packets arriving in the namespace
 * @property {() => Promise<void>} clearLoss
 * @property {() => {rate: number | null, loss: number | null}} current
 * @property {() => Promise<{sentBytes: number, sentPackets: number, dropped: number, overlimits: number} | null>} qdiscStats
 * @property {() => Promise<{bytes: number, packets: number, exact: boolean}>} txCounter what the
 *   server sent towards the subscriber so far (IP bytes, counted before the shaper: it includes
 *   what the queue then drops); `exact` false: estimated from the veth and qdisc counters
 *   (no iptables)
 * @property {() => Promise<void>} close removes the veth pair and the namespace (idempotent)
 */

/**
 * Make the subscriber's network namespace and the veth pair to it.
 * @returns {Promise<ShapedNetwork>}
 */
export async function createShapedNetwork() {
  if (process.getuid?.() !== 0) throw new Error('createShapedNetwork needs root');
  if (!(await inPrivateNetns())) {
    throw new Error('createShapedNetwork runs only inside a network namespace of its own ' +
      '(tests/e2e/run.sh: unshare -n -m); it will not touch the machine\'s real network');
  }
  if (initialMountNs()) {
    console.warn('# shaping: not in a private mount namespace (unshare -m): a crashed run leaves ' +
      'its netns mounted under /run/netns');
  }
  const id = crypto.randomBytes(3).toString('hex');
  const subnet = 1 + crypto.randomInt(250);
  const nsName = `confab-sub-${id}`;
  const hostDev = `cfh${id}`;
  const subDev = `cfs${id}`;
  const hostAddr = `10.77.${subnet}.1`;
  const subAddr = `10.77.${subnet}.2`;

  let closed = false;
  const syncCleanup = () => {
    if (closed) return;
    closed = true;
    for (const args of [['link', 'del', hostDev], ['netns', 'del', nsName]]) {
      try { execFileSync('ip', args, { stdio: 'ignore' }); } catch { /* gone */ }
    }
  };
  process.once('exit', syncCleanup);

  try {
    await sh('ip', ['netns', 'add', nsName]);
    await sh('ip', ['link', 'add', hostDev, 'type', 'veth', 'peer', 'name', subDev, 'netns', nsName]);
    await sh('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostDev]);
    await sh('ip', ['link', 'set', hostDev, 'up']);
    await sh('ip', ['-n', nsName, 'link', 'set', 'lo', 'up']);
    await sh('ip', ['-n', nsName, 'addr', 'add', `${subAddr}/30`, 'dev', subDev]);
    await sh('ip', ['-n', nsName, 'link', 'set', subDev, 'up']);
    // A default route, so that Chromium's "which local address reaches the world" probe picks
    // the veth address; nothing forwards beyond our namespace (ip_forward is off in it).
    await sh('ip', ['-n', nsName, 'route', 'add', 'default', 'via', hostAddr]);
  } catch (e) {
    syncCleanup();
    throw e;
  }

  /** @type {{rate: number | null, loss: number | null}} */
  const state = { rate: null, loss: null };
  let lossChain = false;
  // What the server sends towards the subscriber, counted before the qdisc (OUTPUT runs before
  // it): a rule in a chain of its own on our OUTPUT to the veth.
  const txChain = `CFTX${id}`;
  let txCounting = false;
  if (haveIptables()) {
    try {
      await sh('iptables', ['-w', '-N', txChain]);
      await sh('iptables', ['-w', '-A', txChain, '-j', 'RETURN']);
      await sh('iptables', ['-w', '-A', 'OUTPUT', '-o', hostDev, '-j', txChain]);
      txCounting = true;
    } catch (e) {
      console.warn(`# shaping: no iptables counter of what is sent to the subscriber: ${e}`);
    }
  }
  const inNs = (/** @type {string} */ cmd, /** @type {string[]} */ args) => sh('ip', ['netns', 'exec', nsName, cmd, ...args]);

  /** @type {ShapedNetwork} */
  const net = {
    hostAddr,
    subAddr,
    nsName,
    hostDev,
    subDev,
    async setRate(kbit, { burstBytes, queueMs = 150 } = {}) {
      if (!(kbit > 0)) throw new Error(`setRate: bad rate ${kbit} kbit/s`);
      const bytesPerSec = (kbit * 1000) / 8;
      const burst = Math.round(burstBytes ?? Math.max(2 * FRAME_BYTES, bytesPerSec * 0.010));
      const limit = Math.round(Math.max(2 * FRAME_BYTES, (bytesPerSec * queueMs) / 1000));
      await sh('tc', ['qdisc', 'replace', 'dev', hostDev, 'root', 'tbf',
        'rate', `${Math.round(kbit)}kbit`, 'burst', String(burst), 'limit', String(limit)]);
      state.rate = kbit;
      return { kbit, burstBytes: burst, limitBytes: limit };
    },
    async clearRate() {
      await sh('tc', ['qdisc', 'del', 'dev', hostDev, 'root']).catch(() => {});
      state.rate = null;
    },
    async setLoss(probability) {
      if (!(probability >= 0 && probability <= 1)) throw new Error(`setLoss: bad probability ${probability}`);
      if (!haveIptables()) throw new Error('setLoss needs iptables (apt-get install -y iptables)');
      if (!lossChain) {
        await inNs('iptables', ['-w', '-N', 'CONFAB_LOSS']);
        await inNs('iptables', ['-w', '-A', 'INPUT', '-i', subDev, '-p', 'udp', '-j', 'CONFAB_LOSS']);
        lossChain = true;
      }
      await inNs('iptables', ['-w', '-F', 'CONFAB_LOSS']);
      if (probability > 0) {
        await inNs('iptables', ['-w', '-A', 'CONFAB_LOSS', '-m', 'statistic', '--mode', 'random',
          '--probability', String(probability), '-j', 'DROP']);
      }
      state.loss = probability;
    },
    async clearLoss() {
      if (lossChain) await inNs('iptables', ['-w', '-F', 'CONFAB_LOSS']);
      state.loss = null;
    },
    current() {
      return { ...state };
    },
    async qdiscStats() {
      const out = await sh('tc', ['-s', 'qdisc', 'show', 'dev', hostDev]);
      const m = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(out);
      if (!m) return null;
      return { sentBytes: Number(m[1]), sentPackets: Number(m[2]), dropped: Number(m[3]), overlimits: Number(m[4]) };
    },
    async txCounter() {
      if (txCounting) {
        const out = await sh('iptables', ['-w', '-L', txChain, '-v', '-x', '-n']);
        const m = /^\s*(\d+)\s+(\d+)\s+RETURN/m.exec(out);
        if (m) return { packets: Number(m[1]), bytes: Number(m[2]), exact: true };
      }
      // Without iptables: what left the veth plus what the qdisc dropped (at the mean size).
      const link = await sh('ip', ['-s', '-j', 'link', 'show', 'dev', hostDev]);
      const tx = JSON.parse(link)[0]?.stats64?.tx ?? { bytes: 0, packets: 0 };
      const q = await net.qdiscStats().catch(() => null);
      const mean = tx.packets > 0 ? tx.bytes / tx.packets : 0;
      const dropped = q?.dropped ?? 0;
      return { packets: tx.packets + dropped, bytes: Math.round(tx.bytes + dropped * mean), exact: false };
    },
    async close() {
      if (closed) return;
      if (txCounting) {
        await sh('iptables', ['-w', '-D', 'OUTPUT', '-o', hostDev, '-j', txChain]).catch(() => {});
        await sh('iptables', ['-w', '-F', txChain]).catch(() => {});
        await sh('iptables', ['-w', '-X', txChain]).catch(() => {});
      }
      // Deleting one end of a veth deletes both; the namespace goes when its last process has.
      await sh('ip', ['link', 'del', hostDev]).catch(() => {});
      await sh('ip', ['netns', 'del', nsName]).catch(() => {});
      closed = true;
      process.removeListener('exit', syncCleanup);
    },
  };
  return net;
}

/**
 * Launch Debian's chromium inside the namespace `nsName` (through netns-chromium.sh, which runs
 * `ip netns exec`; playwright talks to it over a pipe, so no network is needed between them).
 * Same flags as helpers.launchBrowser. `secureOrigins`: origins (http://10.77.X.1:PORT) the page
 * treats as secure (a page from a non-loopback http origin is not a secure context).
 * @param {string} nsName
 * @param {{secureOrigins?: string[]}} [opts]
 */
export async function launchBrowserInNamespace(nsName, { secureOrigins = [] } = {}) {
  const args = [...CHROMIUM_ARGS];
  if (secureOrigins.length) args.push(`--unsafely-treat-insecure-origin-as-secure=${secureOrigins.join(',')}`);
  return chromium.launch({
    executablePath: path.join(path.dirname(fileURLToPath(import.meta.url)), 'netns-chromium.sh'),
    env: { ...process.env, CONFAB_NETNS: nsName, CONFAB_NETNS_CHROMIUM: process.env.CHROMIUM || '/usr/bin/chromium' },
    headless: true,
    args,
    timeout: 30_000,
  });
}

/**
 * Start the server so that both sides reach it: HTTP on every address of our namespace (the
 * publisher opens http://127.0.0.1:PORT/, a secure context for the camera; the subscriber
 * http://HOSTADDR:PORT/), media on the veth address only, which is then the one ICE candidate
 * advertised. The publisher's media to that address stays inside our namespace (loopback),
 * unshaped; the subscriber's crosses the veth.
 * @param {ShapedNetwork} net
 * @param {string} label log file name under artifacts/
 * @param {{args?: string[]}} [opts] extra server flags
 */
export async function startShapedServer(net, label, { args = [] } = {}) {
  const server = await startServer(label, { args: ['--http', '0.0.0.0:0', '--rtc', `${net.hostAddr}:0`, '--no-turn', ...args] });
  const port = new URL(server.url).port;
  return {
    ...server,
    publisherUrl: `http://127.0.0.1:${port}/`,
    subscriberUrl: `http://${net.hostAddr}:${port}/`,
  };
}

/** Init script for a receive-only participant: getUserMedia is refused (as "Block"). */
export function receiveOnly() {
  if (navigator.mediaDevices) {
    navigator.mediaDevices.getUserMedia = async () => {
      throw new DOMException('Permission denied', 'NotAllowedError');
    };
  }
}

/**
 * Check the impairment itself, without WebRTC: send UDP datagrams of `size` bytes from our veth
 * address at `kbit` kbit/s for `ms` to a node receiver inside the namespace, and count what
 * arrives. Returns the received rate (kbit/s, over the sending time) and the share lost.
 * @param {ShapedNetwork} net
 * @param {{kbit?: number, ms?: number, size?: number}} [opts]
 */
export async function probeUdp(net, { kbit = 1500, ms = 3000, size = 1200 } = {}) {
  const port = 20000 + crypto.randomInt(20000);
  const script = `
    const d = require('dgram').createSocket('udp4');
    let bytes = 0, packets = 0;
    d.on('message', (m) => { packets++; bytes += m.length; });
    d.bind(${port}, '${net.subAddr}', () => process.stdout.write('ready\\n'));
    process.stdin.on('end', () => { process.stdout.write(JSON.stringify({ bytes, packets }) + '\\n'); process.exit(0); });
    process.stdin.resume();`;
  const child = spawn('ip', ['netns', 'exec', net.nsName, process.execPath, '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const deadline = Date.now() + 10_000;
  while (!out.includes('ready')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`probeUdp: the receiver in ${net.nsName} did not start: ${out}`);
    }
    await sleep(20);
  }
  const sock = dgram.createSocket('udp4');
  await new Promise((resolve) => sock.bind(0, net.hostAddr, () => resolve(undefined)));
  const payload = Buffer.alloc(size, 0x5a);
  const perMs = (kbit * 1000) / 8 / size / 1000;
  const start = Date.now();
  let sent = 0;
  // Sends what is due by the clock, so that a pause of the machine is made up at once; the
  // rates are taken over the time up to the last send, not up to the loop's last wake-up,
  // which a pause can put hundreds of ms later.
  let lastSend = start;
  while (Date.now() - start < ms) {
    const now = Date.now();
    const due = Math.floor((now - start) * perMs);
    for (; sent < due; sent++) sock.send(payload, port, net.subAddr);
    lastSend = now;
    await sleep(5);
  }
  const sendMs = Math.max(1, lastSend - start);
  // Let the shaper's queue drain (150 ms at most at its rate), then stop the receiver.
  await sleep(500);
  sock.close();
  child.stdin.end();
  await exited;
  const got = JSON.parse(out.split('\n').find((l) => l.startsWith('{')) ?? '{"bytes":0,"packets":0}');
  return {
    sentPackets: sent,
    sentKbps: Math.round((sent * size * 8) / sendMs),
    receivedPackets: got.packets,
    receivedKbps: Math.round((got.bytes * 8) / sendMs),
    lost: sent > 0 ? 1 - got.packets / sent : 0,
    from: start,
    to: lastSend,
  };
}

// ---------------------------------------------------------------------------------------- stats

/**
 * One inbound video track at one sample.
 * @typedef {object} VideoSample
 * @property {string} key participant/track (or the stats id when the mid is unknown)
 * @property {string | null} participant
 * @property {string | null} track
 * @property {string | null} mid
 * @property {number} frameWidth
 * @property {number} frameHeight
 * @property {number} framesPerSecond
 * @property {number} framesDecoded
 * @property {number} framesReceived
 * @property {number} keyFramesDecoded
 * @property {number} freezeCount
 * @property {number} totalFreezesDuration seconds
 * @property {number} pliCount
 * @property {number} firCount
 * @property {number} nackCount
 * @property {number} bytesReceived
 * @property {number} packetsReceived
 * @property {number} packetsLost
 * @property {number} retransmittedPacketsReceived
 * @property {number} bitrate bit/s since the previous sample (0 on the first)
 * @property {{layer: string | null, state: string | null, reason: string | null, estimate: number | null, width: number, height: number} | null} tile
 */

/**
 * @typedef {object} Sample
 * @property {number} t ms since the sampler started (machine clock, read in the page)
 * @property {number} at Date.now() in the page
 * @property {VideoSample[]} videos
 * @property {{key: string, participant: string | null, track: string | null, packetsReceived: number, totalAudioEnergy: number, bytesReceived: number, audioLevel: number}[]} audios
 * @property {{availableIncomingBitrate: number | null, currentRoundTripTime: number | null, bytesReceived: number, bitrate: number, local: string | null, remote: string | null} | null} pair
 */

/** Runs in the page: one raw sample. */
async function collectInbound() {
  const w = /** @type {any} */ (window);
  const c = w.confab?.client;
  const at = Date.now();
  /** @type {any[]} */
  const videos = [];
  /** @type {any[]} */
  const audios = [];
  /** @type {any} */
  let pair = null;
  /** @type {any[]} */
  const tiles = [];
  for (const el of document.querySelectorAll('.tile[data-participant], .tile[data-screen-of]')) {
    const tile = /** @type {HTMLElement} */ (el);
    const video = tile.querySelector('video');
    const participant = tile.dataset.participant ?? tile.dataset.screenOf ?? null;
    const track = tile.dataset.screenOf ? (tile.dataset.track ?? null) : (video?.dataset.track || null);
    const est = tile.dataset.estimate;
    const r = (video ?? tile).getBoundingClientRect();
    tiles.push({
      participant,
      track,
      layer: tile.dataset.layer || null,
      state: tile.dataset.streamState ?? null,
      reason: tile.dataset.streamReason ?? null,
      estimate: est === undefined || est === '' || est === 'null' ? null : Number(est),
      width: Math.round(r.width * devicePixelRatio),
      height: Math.round(r.height * devicePixelRatio),
    });
  }
  if (!c?.pc || c.pc.connectionState === 'closed') return { at, videos, audios, pair, tiles };
  const transceivers = c.pc.getTransceivers();
  const report = await c.pc.getStats();
  /** @type {Map<string, any>} */
  const byId = new Map();
  report.forEach((/** @type {any} */ s) => byId.set(s.id, s));
  for (const s of byId.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      const p = byId.get(s.selectedCandidatePairId);
      if (p) {
        const l = byId.get(p.localCandidateId);
        const rc = byId.get(p.remoteCandidateId);
        pair = {
          availableIncomingBitrate: p.availableIncomingBitrate ?? null,
          currentRoundTripTime: p.currentRoundTripTime ?? null,
          bytesReceived: p.bytesReceived ?? 0,
          local: l ? `${l.address}:${l.port}` : null,
          remote: rc ? `${rc.address}:${rc.port}` : null,
        };
      }
    }
    if (s.type !== 'inbound-rtp') continue;
    let mid = s.mid;
    if (mid === undefined) mid = transceivers.find((/** @type {any} */ t) => t.receiver.track.id === s.trackIdentifier)?.mid ?? undefined;
    const ref = mid === undefined ? undefined : c.mids.get(mid);
    const participant = ref?.participant ?? null;
    const track = ref?.track ?? null;
    const key = ref ? `${ref.participant}/${ref.track}` : s.id;
    if (s.kind === 'video') {
      videos.push({
        key, participant, track, mid: mid ?? null,
        frameWidth: s.frameWidth ?? 0,
        frameHeight: s.frameHeight ?? 0,
        framesPerSecond: s.framesPerSecond ?? 0,
        framesDecoded: s.framesDecoded ?? 0,
        framesReceived: s.framesReceived ?? 0,
        keyFramesDecoded: s.keyFramesDecoded ?? 0,
        freezeCount: s.freezeCount ?? 0,
        totalFreezesDuration: s.totalFreezesDuration ?? 0,
        pliCount: s.pliCount ?? 0,
        firCount: s.firCount ?? 0,
        nackCount: s.nackCount ?? 0,
        bytesReceived: s.bytesReceived ?? 0,
        packetsReceived: s.packetsReceived ?? 0,
        packetsLost: s.packetsLost ?? 0,
        retransmittedPacketsReceived: s.retransmittedPacketsReceived ?? 0,
      });
    } else if (s.kind === 'audio') {
      audios.push({
        key, participant, track,
        packetsReceived: s.packetsReceived ?? 0,
        totalAudioEnergy: s.totalAudioEnergy ?? 0,
        bytesReceived: s.bytesReceived ?? 0,
        audioLevel: s.audioLevel ?? 0,
      });
    }
  }
  return { at, videos, audios, pair, tiles };
}

/**
 * Poll `collect` in `page` at `hz` from node (playwright's waitForFunction does not await async
 * predicates), keeping every sample.
 * @template R
 * @param {import('playwright-core').Page} page
 * @param {() => Promise<R>} collect runs in the page
 * @param {number} hz
 * @param {(raw: R & {at: number}, prev: any, t0: number) => any} shape
 */
function poller(page, collect, hz, shape) {
  const t0 = Date.now();
  /** @type {any[]} */
  const samples = [];
  /** @type {(() => void)[]} */
  let waiters = [];
  let stopped = false;
  /** @type {unknown} */
  let lastError = null;
  const period = 1000 / hz;
  const loop = (async () => {
    let next = Date.now();
    while (!stopped) {
      try {
        const raw = /** @type {R & {at: number}} */ (await page.evaluate(collect));
        samples.push(shape(raw, samples[samples.length - 1], t0));
        lastError = null;
      } catch (e) {
        lastError = e;
        if (page.isClosed()) break;
      }
      const w = waiters;
      waiters = [];
      w.forEach((f) => f());
      next += period;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      else next = Date.now();
    }
  })();
  return {
    t0,
    samples,
    /** ms since the sampler started */
    now: () => Date.now() - t0,
    /** the sampler's time of an epoch time (Date.now()) */
    rel: (/** @type {number} */ epochMs) => epochMs - t0,
    /** resolves after the next sample */
    next: () => new Promise((resolve) => { waiters.push(() => resolve(undefined)); }),
    lastError: () => lastError,
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

/**
 * Pick one track of a sample: `sel` is a key ("participant/track"), a predicate, or nothing (the
 * first video that has decoded a frame, else the first).
 * @param {Sample} s
 * @param {string | ((v: VideoSample) => boolean) | undefined} sel
 */
function pick(s, sel) {
  if (typeof sel === 'string') return s.videos.find((v) => v.key === sel) ?? null;
  if (typeof sel === 'function') return s.videos.find(sel) ?? null;
  return s.videos.find((v) => v.framesDecoded > 0) ?? s.videos[0] ?? null;
}

/**
 * Sample the subscriber page's inbound video (and audio, and the selected candidate pair, and the
 * tiles' stream attributes) at `hz`, from node. Times are ms since the sampler started.
 * Track selectors (`track` options): "participant/track", a predicate on a VideoSample, or
 * nothing (the first video that decodes).
 * @param {import('playwright-core').Page} page
 * @param {{hz?: number}} [opts]
 */
export function sampleInboundVideo(page, { hz = 4 } = {}) {
  const p = poller(page, collectInbound, hz, (raw, prev, t0) => {
    const dt = prev ? (raw.at - prev.at) / 1000 : 0;
    const videos = raw.videos.map((/** @type {any} */ v) => {
      const pv = prev?.videos.find((/** @type {any} */ x) => x.key === v.key);
      const tile = raw.tiles.find((/** @type {any} */ x) => x.participant === v.participant && x.track === v.track) ?? null;
      return {
        ...v,
        bitrate: pv && dt > 0 ? Math.max(0, ((v.bytesReceived - pv.bytesReceived) * 8) / dt) : 0,
        tile: tile && { layer: tile.layer, state: tile.state, reason: tile.reason, estimate: tile.estimate, width: tile.width, height: tile.height },
      };
    });
    const pair = raw.pair && {
      ...raw.pair,
      bitrate: prev?.pair && dt > 0 ? Math.max(0, ((raw.pair.bytesReceived - prev.pair.bytesReceived) * 8) / dt) : 0,
    };
    return { t: raw.at - t0, at: raw.at, videos, audios: raw.audios, pair, tiles: raw.tiles };
  });
  /** @type {Sample[]} */
  const samples = p.samples;

  /** @param {number} [t0] @param {number} [t1] */
  const between = (t0 = -Infinity, t1 = Infinity) => samples.filter((s) => s.t >= t0 && s.t <= t1);

  /**
   * The track's samples in [t0, t1], flattened: {t, ...VideoSample, layer, state, pair}.
   * @param {{track?: string | ((v: VideoSample) => boolean), from?: number, to?: number}} [o]
   */
  const series = ({ track, from, to } = {}) => between(from, to).flatMap((s) => {
    const v = pick(s, track);
    return v ? [{ t: s.t, at: s.at, ...v, layer: v.tile?.layer ?? null, state: v.tile?.state ?? null, pair: s.pair }] : [];
  });

  /** first and last sample of the track in [t0, t1] */
  const ends = (/** @type {any} */ o) => {
    const xs = series(o);
    return xs.length ? [xs[0], xs[xs.length - 1]] : [null, null];
  };

  const api = {
    ...p,
    samples,
    series,
    /** The latest sample of the track (flattened as in series), or null. */
    last(/** @type {{track?: any}} */ { track } = {}) {
      for (let i = samples.length - 1; i >= 0; i--) {
        const v = pick(samples[i], track);
        if (v) return { t: samples[i].t, at: samples[i].at, ...v, layer: v.tile?.layer ?? null, state: v.tile?.state ?? null, pair: samples[i].pair };
      }
      return null;
    },
    /**
     * ms from `from` (default 0) to the first sample at or after it where `pred` holds for the
     * track, or null if none yet.
     * @param {(v: any) => boolean} pred
     */
    timeUntil(pred, /** @type {{track?: any, from?: number}} */ { track, from = 0 } = {}) {
      const hit = series({ track, from }).find(pred);
      return hit ? hit.t - from : null;
    },
    /**
     * Wait (polling the samples as they come) until `pred` holds for the track at a sample taken
     * at or after `from`; resolves with that sample, rejects after `timeout` ms.
     * @param {string} what
     * @param {(v: any) => boolean} pred
     */
    async waitFor(what, pred, /** @type {{track?: any, from?: number, timeout?: number}} */ { track, from, timeout = 15_000 } = {}) {
      const start = from ?? p.now();
      const deadline = Date.now() + timeout;
      for (;;) {
        const hit = series({ track, from: start }).find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) {
          throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(api.last({ track }))}` +
            (p.lastError() ? `; sampler error: ${p.lastError()}` : ''));
        }
        await p.next();
      }
    },
    /**
     * Spatial switches in [t0, t1]: changes of the tile's data-layer (`by: 'layer'`), of the
     * decoded frameHeight (`by: 'height'`, default), or of either (`'both'`: counts samples
     * where one of them changed). Samples without a frame (height 0) or layer are skipped.
     */
    countSwitches(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any, by?: 'height'|'layer'|'both'}} */ { track, by = 'height' } = {}) {
      let n = 0;
      /** @type {any} */
      let prev = null;
      for (const v of series({ track, from: t0, to: t1 })) {
        const cur = { h: v.frameHeight || null, l: v.layer };
        if (prev) {
          const dh = cur.h !== null && prev.h !== null && cur.h !== prev.h;
          const dl = cur.l !== null && prev.l !== null && cur.l !== prev.l;
          if ((by === 'height' && dh) || (by === 'layer' && dl) || (by === 'both' && (dh || dl))) n++;
        }
        prev = { h: cur.h ?? prev?.h ?? null, l: cur.l ?? prev?.l ?? null };
      }
      return n;
    },
    /** Increase of a counter of the track between the samples nearest t0 and t1. */
    delta(/** @type {keyof VideoSample} */ field, /** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ { track } = {}) {
      const [a, b] = ends({ track, from: t0, to: t1 });
      return a && b ? Number(b[field]) - Number(a[field]) : 0;
    },
    /** Frames decoded per second over the last `windowMs` of samples. */
    recentFps(/** @type {{track?: any, windowMs?: number}} */ { track, windowMs = 1000 } = {}) {
      const now = p.now();
      const [a, b] = ends({ track, from: now - windowMs - 1000 / hz, to: now });
      return a && b && b.t > a.t ? ((b.framesDecoded - a.framesDecoded) * 1000) / (b.t - a.t) : 0;
    },
    /** Wait until the track decodes at least `fps` frames/s over a second. */
    async waitDecoding(/** @type {{track?: any, fps?: number, timeout?: number}} */ { track, fps = 5, timeout = 15_000 } = {}) {
      const start = Date.now();
      for (;;) {
        const got = api.recentFps({ track });
        if (got >= fps) return { ms: Date.now() - start, fps: got };
        if (Date.now() - start > timeout) throw new Error(`timed out after ${timeout} ms waiting for ${fps} fps decoded; now ${got.toFixed(1)}`);
        await p.next();
      }
    },
    /** Freeze time (ms) Chrome counted in [t0, t1] (totalFreezesDuration; a freeze counts when it ends). */
    freezeTimeBetween(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ o = {}) {
      return Math.round(api.delta('totalFreezesDuration', t0, t1, o) * 1000);
    },
    /**
     * The longest single freeze (ms) Chrome reported in [t0, t1]: per sample interval,
     * Δ totalFreezesDuration / Δ freezeCount.
     */
    /**
     * The freezes Chrome reported in [t0, t1]: per sample interval in which freezeCount rose,
     * when (the sample's time; the freeze ended in the interval before it) and how long (the
     * interval's Δ totalFreezesDuration / Δ freezeCount).
     */
    freezes(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ { track } = {}) {
      const xs = series({ track, from: t0, to: t1 });
      /** @type {{t: number, ms: number}[]} */
      const out = [];
      for (let i = 1; i < xs.length; i++) {
        const dn = xs[i].freezeCount - xs[i - 1].freezeCount;
        if (dn > 0) out.push({ t: xs[i].t, ms: Math.round(((xs[i].totalFreezesDuration - xs[i - 1].totalFreezesDuration) / dn) * 1000) });
      }
      return out;
    },
    maxSingleFreeze(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ { track } = {}) {
      const xs = series({ track, from: t0, to: t1 });
      let max = 0;
      for (let i = 1; i < xs.length; i++) {
        const dn = xs[i].freezeCount - xs[i - 1].freezeCount;
        if (dn > 0) max = Math.max(max, ((xs[i].totalFreezesDuration - xs[i - 1].totalFreezesDuration) / dn) * 1000);
      }
      return Math.round(max);
    },
    /**
     * The longest time (ms) in [t0, t1] over which framesDecoded did not rise, from the samples
     * (counts a freeze still going on, unlike Chrome's freeze stats; resolution 1/hz).
     */
    maxStall(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ { track } = {}) {
      const xs = series({ track, from: t0, to: t1 });
      let max = 0;
      let since = xs[0]?.t ?? t0;
      for (let i = 1; i < xs.length; i++) {
        if (xs[i].framesDecoded > xs[i - 1].framesDecoded) since = xs[i].t;
        else max = Math.max(max, xs[i].t - since);
      }
      return Math.round(max);
    },
    /** Average received bit/s of the track in [t0, t1] (from bytesReceived). */
    bitrateBetween(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ o = {}) {
      const [a, b] = ends({ ...o, from: t0, to: t1 });
      return a && b && b.t > a.t ? ((b.bytesReceived - a.bytesReceived) * 8 * 1000) / (b.t - a.t) : 0;
    },
    /** Average bit/s over the selected candidate pair (all media, RTX, RTCP) in [t0, t1]. */
    pairBitrateBetween(/** @type {number} */ t0, /** @type {number} */ t1) {
      const xs = between(t0, t1).filter((s) => s.pair);
      if (xs.length < 2) return 0;
      const a = /** @type {any} */ (xs[0]);
      const b = /** @type {any} */ (xs[xs.length - 1]);
      return ((b.pair.bytesReceived - a.pair.bytesReceived) * 8 * 1000) / (b.t - a.t);
    },
    /** The highest per-interval bit/s of the track in [t0, t1] (1/hz resolution). */
    maxBitrate(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ { track } = {}) {
      return Math.max(0, ...series({ track, from: t0, to: t1 }).map((v) => v.bitrate));
    },
    /**
     * ms from `from` until the received bitrate of the track, averaged over a sliding `windowMs`,
     * is at most `bps` (null if never).
     */
    timeUntilBitrateBelow(/** @type {number} */ bps, /** @type {{track?: any, from?: number, windowMs?: number}} */ { track, from = 0, windowMs = 1000 } = {}) {
      const xs = series({ track, from });
      for (let i = 0; i < xs.length; i++) {
        const j = xs.findIndex((x) => x.t >= xs[i].t + windowMs);
        if (j < 0) break;
        const rate = ((xs[j].bytesReceived - xs[i].bytesReceived) * 8 * 1000) / (xs[j].t - xs[i].t);
        if (rate <= bps) return xs[j].t - from;
      }
      return null;
    },
    /** Audio of `key` ("participant/track"; default: the first) between the samples nearest t0, t1. */
    audioDelta(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {string} */ key = '') {
      const xs = between(t0, t1).map((s) => (key ? s.audios.find((a) => a.key === key) : s.audios[0])).filter(Boolean);
      if (xs.length < 2) return { packets: 0, energy: 0 };
      const a = /** @type {any} */ (xs[0]);
      const b = /** @type {any} */ (xs[xs.length - 1]);
      return { packets: b.packetsReceived - a.packetsReceived, energy: b.totalAudioEnergy - a.totalAudioEnergy };
    },
    /**
     * What the track showed in [t0, t1], as the samples where something changed:
     * [t, layer, frameHeight, state, reason] (compact, for the figures of a test).
     */
    timeline(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ { track } = {}) {
      /** @type {[number, string | null, number, string | null, string | null][]} */
      const out = [];
      let prev = '';
      for (const v of series({ track, from: t0, to: t1 })) {
        const row = /** @type {[number, string | null, number, string | null, string | null]} */ ([Math.round(v.t - t0), v.layer, v.frameHeight, v.state, v.tile?.reason ?? null]);
        const key = JSON.stringify(row.slice(1));
        if (key !== prev) out.push(row);
        prev = key;
      }
      return out;
    },
    /** Set of layers (data-layer) and heights seen for the track in [t0, t1]. */
    seen(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{track?: any}} */ { track } = {}) {
      const xs = series({ track, from: t0, to: t1 });
      return { layers: [...new Set(xs.map((v) => v.layer).filter((l) => l !== null))], heights: [...new Set(xs.map((v) => v.frameHeight).filter((h) => h > 0))] };
    },
  };
  return api;
}

/**
 * @typedef {object} OutboundVideo
 * @property {string | null} rid
 * @property {string | null} mid
 * @property {string | null} source camera, screen... (from the client's localTracks)
 * @property {number} frameWidth
 * @property {number} frameHeight
 * @property {number} framesPerSecond
 * @property {number} framesEncoded
 * @property {string | null} qualityLimitationReason
 * @property {Record<string, number> | null} qualityLimitationDurations
 * @property {boolean | null} active the encoding's `active` (stats, else sender parameters)
 * @property {number} bytesSent
 * @property {number} packetsSent
 * @property {number} retransmittedPacketsSent
 * @property {number} nackCount
 * @property {number} pliCount
 * @property {number} firCount
 * @property {number | null} targetBitrate
 * @property {string | null} scalabilityMode
 * @property {string | null} encoderImplementation
 */

/** Runs in the page. */
async function collectOutbound() {
  const w = /** @type {any} */ (window);
  const c = w.confab?.client;
  const at = Date.now();
  /** @type {any[]} */
  const out = [];
  if (!c?.pc || c.pc.connectionState === 'closed') return { at, outbound: out, availableOutgoingBitrate: null };
  /** @type {Map<string, {source: string, params: any}>} */
  const byMid = new Map();
  for (const lt of c.localTracks ?? []) {
    const mid = lt.transceiver?.mid;
    if (mid != null) byMid.set(mid, { source: lt.source, params: lt.transceiver.sender.getParameters() });
  }
  const report = await c.pc.getStats();
  /** @type {number | null} */
  let availableOutgoingBitrate = null;
  report.forEach((/** @type {any} */ s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) {
      availableOutgoingBitrate = report.get(s.selectedCandidatePairId)?.availableOutgoingBitrate ?? null;
    }
    if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
    const local = s.mid != null ? byMid.get(s.mid) : undefined;
    const enc = local?.params?.encodings?.find((/** @type {any} */ e) => (e.rid ?? null) === (s.rid ?? null));
    out.push({
      rid: s.rid ?? null,
      mid: s.mid ?? null,
      source: local?.source ?? null,
      frameWidth: s.frameWidth ?? 0,
      frameHeight: s.frameHeight ?? 0,
      framesPerSecond: s.framesPerSecond ?? 0,
      framesEncoded: s.framesEncoded ?? 0,
      qualityLimitationReason: s.qualityLimitationReason ?? null,
      qualityLimitationDurations: s.qualityLimitationDurations ?? null,
      active: s.active ?? enc?.active ?? null,
      bytesSent: s.bytesSent ?? 0,
      packetsSent: s.packetsSent ?? 0,
      retransmittedPacketsSent: s.retransmittedPacketsSent ?? 0,
      nackCount: s.nackCount ?? 0,
      pliCount: s.pliCount ?? 0,
      firCount: s.firCount ?? 0,
      targetBitrate: s.targetBitrate ?? null,
      scalabilityMode: s.scalabilityMode ?? null,
      encoderImplementation: s.encoderImplementation ?? null,
    });
  });
  out.sort((a, b) => String(a.mid).localeCompare(String(b.mid)) || String(a.rid).localeCompare(String(b.rid)));
  return { at, outbound: out, availableOutgoingBitrate };
}

/**
 * The publisher page's outbound video, one entry per (mid, rid): what Chrome encodes now and why
 * it holds back (qualityLimitationReason `cpu` / `bandwidth`).
 * @param {import('playwright-core').Page} page
 * @returns {Promise<OutboundVideo[]>}
 */
export async function publisherStats(page) {
  return (await page.evaluate(collectOutbound)).outbound;
}

/**
 * Sample publisherStats at `hz`, with per-encoding send bit/s since the previous sample, and the
 * publisher's own estimate of its uplink (`availableOutgoingBitrate` of its candidate pair).
 * @param {import('playwright-core').Page} page
 * @param {{hz?: number}} [opts]
 */
export function samplePublisher(page, { hz = 2 } = {}) {
  const p = poller(page, collectOutbound, hz, (raw, prev, t0) => {
    const dt = prev ? (raw.at - prev.at) / 1000 : 0;
    const outbound = raw.outbound.map((/** @type {any} */ o) => {
      const po = prev?.outbound.find((/** @type {any} */ x) => x.mid === o.mid && x.rid === o.rid);
      return { ...o, bitrate: po && dt > 0 ? Math.max(0, ((o.bytesSent - po.bytesSent) * 8) / dt) : 0 };
    });
    return { t: raw.at - t0, at: raw.at, outbound, availableOutgoingBitrate: raw.availableOutgoingBitrate };
  });
  /** @param {{rid?: string | null, source?: string}} sel */
  const match = (sel) => (/** @type {any} */ o) => (sel.rid === undefined || o.rid === sel.rid) && (sel.source === undefined || o.source === sel.source);
  const api = {
    ...p,
    /** samples of one encoding in [from, to] */
    series(/** @type {{rid?: string | null, source?: string, from?: number, to?: number}} */ { rid, source = 'camera', from = -Infinity, to = Infinity } = {}) {
      return p.samples.filter((s) => s.t >= from && s.t <= to).flatMap((s) => {
        const o = s.outbound.find(match({ rid, source }));
        return o ? [{ t: s.t, ...o }] : [];
      });
    },
    /** Average send bit/s of one encoding in [t0, t1]. */
    bitrateBetween(/** @type {number} */ t0, /** @type {number} */ t1, /** @type {{rid?: string | null, source?: string}} */ sel = {}) {
      const xs = api.series({ ...sel, from: t0, to: t1 });
      if (xs.length < 2) return 0;
      const a = xs[0];
      const b = xs[xs.length - 1];
      return b.t > a.t ? ((b.bytesSent - a.bytesSent) * 8 * 1000) / (b.t - a.t) : 0;
    },
    /**
     * Wait until `pred` holds for the encoding at a sample at or after `from`.
     * @param {string} what
     * @param {(o: any) => boolean} pred
     */
    async waitFor(what, pred, /** @type {{rid?: string | null, source?: string, from?: number, timeout?: number}} */ { rid, source = 'camera', from, timeout = 15_000 } = {}) {
      const start = from ?? p.now();
      const deadline = Date.now() + timeout;
      for (;;) {
        const hit = api.series({ rid, source, from: start }).find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) {
          const last = p.samples[p.samples.length - 1];
          throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
        }
        await p.next();
      }
    },
  };
  return api;
}

/**
 * The rid of the highest layer the publisher actually sends now (largest frameHeight among
 * encodings that sent bytes recently), with what limits it.
 * @param {OutboundVideo[]} outbound from publisherStats
 * @param {string} [source]
 */
export function topLayer(outbound, source = 'camera') {
  const sending = outbound.filter((o) => o.source === source && o.active !== false && o.frameHeight > 0);
  sending.sort((a, b) => b.frameHeight - a.frameHeight);
  const top = sending[0];
  return top ? { rid: top.rid, frameHeight: top.frameHeight, frameWidth: top.frameWidth, qualityLimitationReason: top.qualityLimitationReason, layers: sending.map((o) => ({ rid: o.rid, frameHeight: o.frameHeight, fps: o.framesPerSecond, qualityLimitationReason: o.qualityLimitationReason })) } : null;
}

/**
 * Sample, from node, what the server sends towards the subscriber (net.txCounter) and the
 * shaper's counters, at `hz`. Times are ms since this sampler started; `at` is epoch ms.
 * @param {ShapedNetwork} net
 * @param {{hz?: number}} [opts]
 */
export function sampleLink(net, { hz = 4 } = {}) {
  const t0 = Date.now();
  /** @type {{t: number, at: number, bytes: number, packets: number, dropped: number | null, bitrate: number}[]} */
  const samples = [];
  let stopped = false;
  const loop = (async () => {
    let next = Date.now();
    while (!stopped) {
      try {
        const [tx, q] = await Promise.all([net.txCounter(), net.qdiscStats().catch(() => null)]);
        const at = Date.now();
        const prev = samples[samples.length - 1];
        const dt = prev ? (at - prev.at) / 1000 : 0;
        samples.push({ t: at - t0, at, bytes: tx.bytes, packets: tx.packets, dropped: q?.dropped ?? null,
          bitrate: prev && dt > 0 ? ((tx.bytes - prev.bytes) * 8) / dt : 0 });
      } catch {
        // the link is gone (closing)
      }
      next += 1000 / hz;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      else next = Date.now();
    }
  })();
  const between = (/** @type {number} */ a, /** @type {number} */ b) => samples.filter((s) => s.t >= a && s.t <= b);
  return {
    t0,
    samples,
    now: () => Date.now() - t0,
    rel: (/** @type {number} */ epochMs) => epochMs - t0,
    /** Average bit/s sent towards the subscriber in [t0, t1] (sampler time). */
    bitrateBetween(/** @type {number} */ a, /** @type {number} */ b) {
      const xs = between(a, b);
      if (xs.length < 2) return 0;
      const x = xs[0];
      const y = xs[xs.length - 1];
      return y.t > x.t ? ((y.bytes - x.bytes) * 8 * 1000) / (y.t - x.t) : 0;
    },
    /** Packets the shaper's queue dropped in [t0, t1]. */
    droppedBetween(/** @type {number} */ a, /** @type {number} */ b) {
      const xs = between(a, b).filter((s) => s.dropped !== null);
      return xs.length >= 2 ? /** @type {number} */ (xs[xs.length - 1].dropped) - /** @type {number} */ (xs[0].dropped) : 0;
    },
    /**
     * ms from `from` until the send rate, averaged over a sliding `windowMs`, is at most `bps`
     * (reported at the end of the first such window; null if never).
     */
    timeUntilBelow(/** @type {number} */ bps, /** @type {{from?: number, windowMs?: number}} */ { from = 0, windowMs = 1000 } = {}) {
      const xs = samples.filter((s) => s.t >= from);
      for (let i = 0; i < xs.length; i++) {
        const j = xs.findIndex((x) => x.t >= xs[i].t + windowMs);
        if (j < 0) break;
        if (((xs[j].bytes - xs[i].bytes) * 8 * 1000) / (xs[j].t - xs[i].t) <= bps) return xs[j].t - from;
      }
      return null;
    },
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

// ------------------------------------------------------------------------------- schedule

/**
 * @typedef {object} Step
 * @property {number} at ms after the schedule starts
 * @property {number | null} [rate] kbit/s; null removes the limit; absent leaves it
 * @property {number | null} [loss] probability; null or 0 removes loss; absent leaves it
 * @property {RateOptions} [rateOptions]
 */

/**
 * Apply a schedule of rate/loss changes to `net`. Resolves, after the last step, with what was
 * applied when (epoch ms, comparable to a sampler's `rel()`). Stops early when `signal` aborts.
 * @param {ShapedNetwork} net
 * @param {Step[]} steps
 * @param {{signal?: AbortSignal, onStep?: (step: Step & {appliedAt: number}) => void}} [opts]
 */
export async function runSchedule(net, steps, { signal, onStep } = {}) {
  const start = Date.now();
  /** @type {(Step & {appliedAt: number})[]} */
  const applied = [];
  for (const step of [...steps].sort((a, b) => a.at - b.at)) {
    const wait = start + step.at - Date.now();
    if (wait > 0) await sleep(wait, undefined, { signal }).catch(() => {});
    if (signal?.aborted) break;
    if (step.rate === null) await net.clearRate();
    else if (step.rate !== undefined) await net.setRate(step.rate, step.rateOptions);
    if (step.loss === null || step.loss === 0) await net.clearLoss();
    else if (step.loss !== undefined) await net.setLoss(step.loss);
    const done = { ...step, appliedAt: Date.now() };
    applied.push(done);
    onStep?.(done);
  }
  return { start, applied };
}

/**
 * Steps alternating between `hi` and `lo` kbit/s every `periodMs` for `durationMs`, starting hi.
 * @param {number} hi
 * @param {number} lo
 * @param {number} periodMs
 * @param {number} durationMs
 * @returns {Step[]}
 */
export function sawtooth(hi, lo, periodMs, durationMs) {
  /** @type {Step[]} */
  const steps = [];
  for (let at = 0, i = 0; at < durationMs; at += periodMs, i++) steps.push({ at, rate: i % 2 === 0 ? hi : lo });
  return steps;
}

/**
 * Append one JSON line of measured figures to the file named by env CONFAB_BENCH_OUT (if set).
 * @param {string} name
 * @param {Record<string, unknown>} figures
 */
export function benchRecord(name, figures) {
  const file = process.env.CONFAB_BENCH_OUT;
  const line = JSON.stringify({ test: name, at: new Date().toISOString(), ...figures });
  if (file) fs.appendFileSync(file, line + '\n');
  return line;
}

// Shared helpers of the end-to-end suite: start the confab binary, drive Debian's chromium
// with playwright-core, read WebRTC stats out of the page.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { chromium } from 'playwright-core';

export { sleep };

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const artifactsDir = path.join(repoRoot, 'tests', 'e2e', 'artifacts');

/** Flags from shared/WEBRTC-NOTES.md, plus no throttling of pages in the background. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

// ------------------------------------------------------------------------------ machine stalls

/**
 * A watcher, in a process of its own, of how long this machine stops running anything at all:
 * it sleeps 5 ms at a time and reports every wake-up that came more than STALL_MS late. On the
 * virtual machines this suite runs on, the host sometimes pauses the whole guest for 100 to 300
 * ms, several times a minute (CPU steal), while the suite's own processes use well under the two
 * cores. Browsers, server and test all stop together; media timing and WebRTC's estimators
 * suffer for seconds afterwards. Limits on how fast or smooth something is are held only over a
 * window in which the machine stalled less than STALL_BUDGET_MS (see `qualityLimit`); what must
 * happen at all is always held.
 */
// By default 20 ms: a sleeper woken that late on this 2-core machine means nothing could run,
// whether the host paused the guest or the suite's browsers starved it (confab's server uses a
// few percent of a core here); the time counted is the whole delay. A file whose browsers load
// the machine as part of what it measures passes a higher threshold (see `watchStalls`).
let STALL_MS = 20;
/** Stall time in a measured window over which a speed or smoothness limit is not held. */
const STALL_BUDGET_MS = 300;
/** @type {{t: number, ms: number}[]} each stall: when it ended (Date.now()) and how long it was */
const stalls = [];
/** @type {import('node:child_process').ChildProcess | null} */
let stallWatcher = null;

/**
 * Start the watcher (once per test file; it ends with the file's process). `lateMs`: how late a
 * wake-up must be to count. The simulcast file uses 50 ms, so that only the host's pauses count:
 * its publisher encodes three layers and saturates both cores, which is part of what it
 * measures (at 20 ms, 38 % of one of its windows counted as stalled).
 * @param {{lateMs?: number}} [opts]
 */
export function watchStalls({ lateMs = 20 } = {}) {
  if (stallWatcher) return;
  STALL_MS = lateMs;
  const script = `let t = Date.now();
    setInterval(() => { const n = Date.now(); const late = n - t - 5; t = n;
      if (late > ${STALL_MS}) process.stdout.write(n + ' ' + late + '\\n'); }, 5);
    process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`;
  stallWatcher = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'ignore'] });
  let buf = '';
  stallWatcher.stdout?.on('data', (c) => {
    buf += c;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const [t, ms] = buf.slice(0, i).split(' ').map(Number);
      buf = buf.slice(i + 1);
      stalls.push({ t, ms });
    }
  });
  stallWatcher.unref();
  /** @type {any} */ (stallWatcher.stdout)?.unref?.();
  /** @type {any} */ (stallWatcher.stdin)?.unref?.();
  process.once('exit', () => stallWatcher?.kill());
}

/**
 * Milliseconds the machine stood still within [t0, t1] (Date.now() times), by the watcher.
 * @param {number} t0
 * @param {number} [t1]
 */
export function stalledBetween(t0, t1 = Date.now()) {
  let sum = 0;
  for (const s of stalls) {
    const from = Math.max(s.t - s.ms, t0);
    const to = Math.min(s.t, t1);
    if (to > from) sum += to - from;
  }
  return Math.round(sum);
}

/**
 * A time measured from `from` (Date.now()), less what of it the machine stood still: what a
 * duration limit is held against. E.g. "on a lower layer 2.8 s after the drop" with a 400 ms
 * stall in those 2.8 s counts as 2.4 s.
 * @param {number} ms
 * @param {number} from
 */
export function lessStalls(ms, from) {
  return Math.max(0, ms - stalledBetween(from, from + ms));
}

/**
 * Hold a limit on speed or smoothness: met (`ok`), it passes; missed, it fails the test when
 * the machine ran in [t0, t1] without stalling more than STALL_BUDGET_MS in all, and otherwise
 * says in the report that the limit was not held on this run, and why. Returns whether it was
 * met.
 * @param {import('node:test').TestContext} t
 * @param {boolean} ok
 * @param {string} message what the limit is and what was measured
 * @param {number} t0
 * @param {number} [t1]
 */
export function qualityLimit(t, ok, message, t0, t1 = Date.now()) {
  if (ok) return true;
  const stalled = stalledBetween(t0, t1);
  if (stalled > STALL_BUDGET_MS) {
    t.diagnostic(`limit not held on this run: the machine stood still for ${stalled} ms of the ${Math.round(t1 - t0)} ms measured (budget ${STALL_BUDGET_MS} ms); it would have failed: ${message}`);
    return false;
  }
  throw new Error(`${message} (the machine stood still ${stalled} ms in that time)`);
}

/** The first URL the server prints is the page to open. */
const URL_RE = /https?:\/\/[^\s/]+:\d+\//;

/**
 * Start the server binary (env CONFAB_BIN, default target/debug/confab) on ephemeral ports and
 * without its STUN/TURN server (or with `args`) and wait for the line announcing its page URL. Its output goes to
 * artifacts/<label>.log.
 * @param {string} label
 * @param {{timeoutMs?: number, args?: string[]}} [opts]
 */
export async function startServer(label, { timeoutMs = 20_000, args = ['--http', '127.0.0.1:0', '--rtc', '127.0.0.1:0', '--no-turn'] } = {}) {
  const bin = process.env.CONFAB_BIN || path.join(repoRoot, 'target', 'debug', 'confab');
  if (!fs.existsSync(bin)) {
    throw new Error(`no confab binary at ${bin}: build it (cargo build) or set CONFAB_BIN`);
  }
  fs.mkdirSync(artifactsDir, { recursive: true });
  const logPath = path.join(artifactsDir, `${label}.log`);
  const log = fs.createWriteStream(logPath);
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { RUST_LOG: 'info', ...process.env },
    // Its own process group, so that killing it also kills anything it started.
    detached: true,
  });
  /** @param {NodeJS.Signals} signal */
  const signalGroup = (signal) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const kill = () => {
    signalGroup('SIGKILL');
    child.stdout.destroy();
    child.stderr.destroy();
  };
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let tail = '';
  const url = await new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`${bin} printed no http://HOST:PORT/ line in ${timeoutMs} ms; output:\n${tail}`));
    }, timeoutMs);
    /** @param {Buffer} chunk */
    const onData = (chunk) => {
      const text = chunk.toString();
      log.write(text);
      tail = (tail + text).slice(-4000);
      buffered += text;
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const m = URL_RE.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => {
      log.write(chunk);
      tail = (tail + chunk.toString()).slice(-4000);
    });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited (code ${code}, signal ${signal}) before printing its URL; output:\n${tail}`));
    });
  });
  process.once('exit', kill);
  return {
    /** the page URL, e.g. http://127.0.0.1:41234/ */
    url,
    /** the signaling WebSocket URL */
    wsUrl: url.replace(/^http/, 'ws') + 'ws',
    child,
    logPath,
    /** SIGTERM, then SIGKILL after 3 s. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        signalGroup('SIGTERM');
        const t = setTimeout(kill, 3000);
        await exited;
        clearTimeout(t);
      }
      signalGroup('SIGKILL');
      log.end();
    },
    /** Kill it at once, as a crash would. */
    async kill() {
      kill();
      await exited;
    },
  };
}

/**
 * Launch Debian's chromium (never a downloaded browser). With `allowLoopback: false` it behaves
 * like a user's browser, which ignores loopback ICE candidates. `fakeDevices` configures
 * Chromium's fake capture devices, e.g. `device-count=3` for three cameras (the default is one
 * camera, with three microphones and three speakers; `fake_device_1` gives frames WebRTC does
 * not encode: see README.md, "Fake devices").
 * @param {{allowLoopback?: boolean, fakeDevices?: string}} [opts]
 */
export function launchBrowser({ allowLoopback = true, fakeDevices } = {}) {
  let args = allowLoopback ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => a !== '--allow-loopback-in-peer-connection');
  if (fakeDevices) {
    args = args.map((a) => (a === '--use-fake-device-for-media-stream' ? `${a}=${fakeDevices}` : a));
  }
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args,
    timeout: 30_000,
  });
}

/**
 * Poll `fn` until it returns a truthy value; fail with `what` after `timeout` ms.
 * @template T
 * @param {string} what
 * @param {() => Promise<T> | T} fn
 * @param {{timeout?: number, interval?: number}} [opts]
 * @returns {Promise<T>}
 */
export async function until(what, fn, { timeout = 15_000, interval = 200 } = {}) {
  const t0 = Date.now();
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > timeout) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last value: ${inspect(last, { depth: 4 })}`);
    }
    await sleep(interval);
  }
}

/**
 * One person in a browser context of their own, with the meeting page loaded.
 * @param {import('playwright-core').Browser} browser
 * @param {string} baseUrl
 * @param {{room: string, name: string, initScript?: Function, query?: Record<string, string>, viewport?: {width: number, height: number}}} opts
 *   `query`: more URL parameters of the page (e.g. `{res: '540'}`)
 */
export async function openParticipant(browser, baseUrl, { room, name, initScript, query = {}, viewport = { width: 960, height: 600 } }) {
  // HTTPS tests run confab with a self-signed certificate, as a person on a LAN would.
  const context = await browser.newContext({ viewport, ignoreHTTPSErrors: true });
  // The page's own clock of the Join: when the form's submit event fires.
  await context.addInitScript(() => {
    document.addEventListener('submit', () => { /** @type {any} */ (window).__joinSubmitAt = performance.now(); }, true);
  });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  /** @type {string[]} */
  const consoleErrors = [];
  /** @type {string[]} */
  const pageErrors = [];
  /** Every console message (the last 40), for the report of a page that did not work. */
  /** @type {string[]} */
  const consoleLog = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
    consoleLog.push(`${m.type()}: ${m.text()}`);
    if (consoleLog.length > 40) consoleLog.shift();
  });
  page.on('requestfailed', (r) => consoleLog.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`${baseUrl}?${new URLSearchParams({ room, name, ...query })}`);
  // The tests that add network interfaces (a veth for the LAN address, a namespace per shaped
  // subscriber) make Chromium see a network change, and it aborts the requests in flight with
  // ERR_NETWORK_CHANGED: a page whose modules were cut off never runs app.js. Such a page is
  // loaded again, as its user would (two CI runs saw it; see clickJoin's report).
  for (let attempt = 1; ; attempt++) {
    const ready = await page.waitForFunction(() => /** @type {any} */ (window).confab !== undefined, null, { timeout: 10_000 }).then(() => true, () => false);
    if (ready) break;
    const cut = consoleLog.some((l) => l.includes('ERR_NETWORK_CHANGED'));
    if (!cut || attempt === 3) break;
    console.log(`# ${name}: the page's modules were cut off by a network change; loading it again`);
    consoleLog.length = 0;
    await page.reload();
  }
  const p = {
    name,
    room,
    page,
    context,
    consoleErrors,
    pageErrors,
    /** @type {string | null} */
    id: null,
    /** Date.now() of the last Join click. */
    clickedAt: 0,
    /**
     * Click the button whose text is exactly "Join"; returns the time of the click. Joining never
     * navigates (the page cancels the form's submission and only rewrites its query with
     * history.replaceState), so the click does not wait for navigations: a CI run of the shaped
     * subscriber once hung there for 30 s after "click action done". A join that does not happen
     * fails in waitJoined.
     */
    async clickJoin() {
      const button = page.getByRole('button', { name: 'Join', exact: true });
      // The button is enabled once app.js has taken over the form: if it never is, say what
      // the page loaded (a CI run once saw one of two tabs keep it disabled for 30 s).
      try {
        await page.waitForFunction(() => !(/** @type {HTMLButtonElement | null} */ (document.getElementById('join-button'))?.disabled), null, { timeout: 20_000 });
      } catch (e) {
        const state = await page.evaluate(() => ({
          readyState: document.readyState,
          app: typeof (/** @type {any} */ (window).confab),
          resources: performance.getEntriesByType('resource').map((r) => `${r.name.split('/').pop()} ${Math.round(r.startTime)}-${Math.round(/** @type {PerformanceResourceTiming} */ (r).responseEnd)}`),
        })).catch((err) => ({ error: String(err) }));
        throw new Error(`${name}: the Join button stayed disabled (app.js did not take over the form): ${JSON.stringify(state)}; page errors: ${pageErrors.join(' | ') || 'none'}; console: ${consoleLog.join(' | ') || 'nothing'}: ${e}`);
      }
      p.clickedAt = Date.now();
      await button.click({ noWaitAfter: true });
      return p.clickedAt;
    },
    /** Wait for the call view and learn our participant id. */
    async waitJoined(timeout = 10_000) {
      try {
        await page.locator('#call').waitFor({ state: 'visible', timeout });
      } catch (e) {
        throw new Error(`${name} did not join (page at ${page.url()}; page errors: ${pageErrors.join(' | ') || 'none'}; console errors: ${consoleErrors.join(' | ') || 'none'}): ${e}`);
      }
      p.id = await page.evaluate(() => window.confab.client?.participantId ?? null);
      if (!p.id) throw new Error(`${name}: joined without a participant id`);
      return p.id;
    },
    /** Inbound media by publishing participant id, from getStats and the client's mid map. */
    stats() {
      return inboundByParticipant(page);
    },
    /** Save a screenshot to artifacts/<label>.png (for looking at after a run). */
    async screenshot(label) {
      fs.mkdirSync(artifactsDir, { recursive: true });
      await page.screenshot({ path: path.join(artifactsDir, `${label}.png`) }).catch(() => {});
    },
    async close() {
      await context.close().catch(() => {});
    },
  };
  return p;
}

/**
 * @typedef {object} Inbound
 * @property {{framesDecoded: number, mid: string, frameWidth?: number} | null} video
 * @property {{packetsReceived: number, totalAudioEnergy: number, mid: string} | null} audio
 */

/**
 * getStats `inbound-rtp` entries of the page's ConfabClient, keyed by the id of the
 * participant whose track they carry (through the mid map of the last server offer).
 * @param {import('playwright-core').Page} page
 * @returns {Promise<Record<string, Inbound>>}
 */
export function inboundByParticipant(page) {
  return page.evaluate(async () => {
    const c = window.confab?.client;
    /** @type {Record<string, any>} */
    const out = {};
    if (!c || !c.pc || c.pc.connectionState === 'closed') return out;
    const transceivers = c.pc.getTransceivers();
    const report = await c.pc.getStats();
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      let mid = s.mid;
      if (mid === undefined) {
        mid = transceivers.find((t) => t.receiver.track.id === s.trackIdentifier)?.mid ?? undefined;
      }
      const ref = mid === undefined ? undefined : c.mids.get(mid);
      if (!ref) return;
      const o = (out[ref.participant] ??= { video: null, audio: null });
      if (s.kind === 'video') {
        const v = { framesDecoded: s.framesDecoded ?? 0, mid, frameWidth: s.frameWidth };
        if (!o.video || v.framesDecoded > o.video.framesDecoded) o.video = v;
      } else if (s.kind === 'audio') {
        const a = { packetsReceived: s.packetsReceived ?? 0, totalAudioEnergy: s.totalAudioEnergy ?? 0, mid };
        if (!o.audio || a.packetsReceived > o.audio.packetsReceived) o.audio = a;
      }
    });
    return out;
  });
}

/**
 * Wait until `p` decodes video from every one of `others` (participant ids); returns the ms to
 * the first remote frame and to frames from all of them. Measured inside the page, from its
 * Join (the form's submit event; `from: 'now'`: from this call), by polling getStats every
 * 20 ms there: the figure is the page's, not inflated by the test driver on a busy machine.
 * @param {Awaited<ReturnType<typeof openParticipant>>} p
 * @param {string[]} others
 * @param {number} [timeout]
 * @param {{from?: 'join' | 'now'}} [opts]
 */
export async function waitForVideoFrom(p, others, timeout = 20_000, { from = 'join' } = {}) {
  const r = await p.page.evaluate(async ({ others, timeout, from }) => {
    const w = /** @type {any} */ (window);
    const t0 = from === 'join' ? w.__joinSubmitAt : performance.now();
    const start = performance.now();
    /** @type {number | null} */
    let first = null;
    /** @type {string[]} */
    let decoding = [];
    /** When each other's video was first seen decoded, ms after t0. @type {Record<string, number>} */
    const each = {};
    while (performance.now() - start < timeout) {
      const c = w.confab?.client;
      if (c?.pc) {
        const report = await c.pc.getStats();
        decoding = [];
        report.forEach((/** @type {any} */ s) => {
          if (s.type !== 'inbound-rtp' || s.kind !== 'video' || !(s.framesDecoded > 0)) return;
          const ref = s.mid === undefined ? undefined : c.mids.get(s.mid);
          if (ref && others.includes(ref.participant)) decoding.push(ref.participant);
        });
        if (decoding.length > 0 && first === null) first = performance.now() - t0;
        for (const o of decoding) each[o] ??= Math.round(performance.now() - t0);
        if (others.every((o) => decoding.includes(o))) return { first, all: performance.now() - t0, each };
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { error: `decoding only ${JSON.stringify(decoding)} after ${timeout} ms` };
  }, { others, timeout, from });
  if ('error' in r) throw new Error(`${p.name} waiting for video from ${others.join(', ')}: ${r.error}`);
  return { first: Math.round(r.first ?? r.all), all: Math.round(r.all), each: r.each };
}

/**
 * Assert that, over `ms`, `p` keeps decoding video from each of `others` and, when `audio`,
 * keeps receiving their audio with energy in it (the fake microphone beeps).
 * Returns the deltas seen.
 * @param {Awaited<ReturnType<typeof openParticipant>>} p
 * @param {string[]} others
 * @param {{audio?: boolean, video?: boolean, ms?: number}} [opts]
 */
export async function mediaFlowing(p, others, { audio = true, video = true, ms = 1500 } = {}) {
  const a = await p.stats();
  await sleep(ms);
  const b = await p.stats();
  /** @type {Record<string, {frames: number, packets: number, energy: number}>} */
  const deltas = {};
  const problems = [];
  for (const o of others) {
    const frames = (b[o]?.video?.framesDecoded ?? 0) - (a[o]?.video?.framesDecoded ?? 0);
    const packets = (b[o]?.audio?.packetsReceived ?? 0) - (a[o]?.audio?.packetsReceived ?? 0);
    const energy = b[o]?.audio?.totalAudioEnergy ?? 0;
    deltas[o] = { frames, packets, energy };
    if (video && !(frames > 0)) problems.push(`no new video frames from ${o}`);
    if (audio && !(packets > 0)) problems.push(`no new audio packets from ${o}`);
    if (audio && !(energy > 0)) problems.push(`no audio energy from ${o}`);
  }
  return { ok: problems.length === 0, problems, deltas };
}

/**
 * In the page: the SHA-256 (hex), size and check of the finished incoming file transfer named
 * `name` (web/files.js), or null while it is not done. Pass it to `page.evaluate`.
 * @param {string} name
 */
export async function receivedDigest(name) {
  const w = /** @type {any} */ (window);
  const t = [...w.confab.files.transfers.values()].find((x) => x.direction === 'in' && x.name === name && x.state === 'done');
  if (!t) return null;
  const d = await crypto.subtle.digest('SHA-256', await t.blob.arrayBuffer());
  return { sha256: [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join(''), size: t.blob.size, verified: t.verified };
}

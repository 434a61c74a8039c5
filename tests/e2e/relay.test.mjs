// A call through confab's built-in TURN server alone: two pages that may use relayed candidates
// only (`?relay=1`: iceTransportPolicy "relay", as a browser whose direct paths are blocked) get
// the TURN server and their credentials from the `joined` message, allocate relays on it, and
// reach the SFU through them; each decodes the other's video and hears its audio, and the
// selected candidate pair on each side is a relay one.
//
// Then a call whose UDP is blocked (iptables drops every datagram to the SFU's media port, and
// there is no TURN): the pages reach the SFU over ICE-TCP (its passive TCP candidate on the same
// port number), and decode each other.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { launchBrowser, mediaFlowing, openParticipant, startServer, until, waitForVideoFrom, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-relay';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];

before(async () => {
  watchStalls();
  // TURN on loopback, its relays allowed to reach the SFU there (by default a relay refuses
  // loopback and private peers).
  server = await startServer('relay', {
    args: ['--http', '127.0.0.1:0', '--rtc', '127.0.0.1:0', '--turn', '127.0.0.1:0', '--turn-allow-peer', '127.0.0.0/8'],
  });
  browser = await launchBrowser();
});

after(async () => {
  for (const p of people) {
    await p.screenshot(`relay-${p.name}`);
    if (p.pageErrors.length) console.log(`# ${p.name}: page errors: ${p.pageErrors.join(' | ')}`);
  }
  await browser?.close();
  await server?.stop();
});

/**
 * The selected candidate pair of the page's connection (runs in the page).
 * @returns {Promise<{local: string, remote: string, protocol: string} | null>}
 */
async function selectedPair() {
  const pc = /** @type {RTCPeerConnection | null} */ (/** @type {any} */ (window).confab.client?.pc);
  if (!pc) return null;
  const stats = await pc.getStats();
  /** @type {any} */
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return { local: local?.candidateType, remote: remote?.candidateType, protocol: local?.protocol };
}

test('pages limited to relayed candidates are in a call through confab\'s TURN', { timeout: 90_000 }, async (t) => {
  for (const name of ['Ada', 'Grace']) {
    people.push(await openParticipant(browser, server.url, { room: ROOM, name, query: { relay: '1', res: '360' } }));
  }
  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  const [ada, grace] = people;
  const ids = (/** @type {typeof ada} */ p) => people.filter((q) => q !== p).map((q) => /** @type {string} */ (q.id));
  await Promise.all(people.map((p) => waitForVideoFrom(p, ids(p), 30_000)));
  for (const p of [ada, grace]) {
    const flow = await until(`${p.name} to decode video and hear audio through the relay`, async () => {
      const f = await mediaFlowing(p, ids(p), { ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 20_000, interval: 0 });
    t.diagnostic(`${p.name} over 1 s: ${JSON.stringify(flow.deltas)}`);
    const pair = await p.page.evaluate(selectedPair);
    t.diagnostic(`${p.name}: selected pair ${JSON.stringify(pair)}`);
    assert.equal(pair?.local, 'relay', `${p.name} reaches the SFU through a relay`);
  }
  // The iceServers the page was given: confab's own TURN, with credentials made for it.
  const iceServers = await ada.page.evaluate(() => /** @type {any} */ (window).confab.client.pc.getConfiguration().iceServers);
  assert.ok(iceServers.some((/** @type {any} */ s) => s.urls.some((/** @type {string} */ u) => u.startsWith('turn:127.0.0.1:')) && s.username?.endsWith(`:${ada.id}`)),
    JSON.stringify(iceServers));
});

/** Servers and pages of the ICE-TCP test, stopped at the end. */
/** @type {Awaited<ReturnType<typeof startServer>>[]} */
const moreServers = [];
/** @type {string[][]} iptables rules to delete */
const rules = [];
after(async () => {
  for (const rule of rules) await promisify(execFile)('iptables', ['-w', '-D', ...rule]).catch(() => {});
  for (const s of moreServers) await s.stop();
});

test('with UDP to the SFU blocked and no TURN, pages are in a call over ICE-TCP', { timeout: 90_000 }, async (t) => {
  const tcpServer = await startServer('relay-ice-tcp', { args: ['--http', '127.0.0.1:0', '--rtc', '127.0.0.1:0', '--no-turn'] });
  moreServers.push(tcpServer);
  // The media ports: one per worker, each taking UDP and TCP.
  const ports = await until('the media line of the banner', async () => {
    const m = /Media: UDP (.*) and TCP/.exec(fs.readFileSync(tcpServer.logPath, 'utf8'));
    return m ? [...m[1].matchAll(/:(\d+)/g)].map((p) => p[1]) : null;
  }, { timeout: 5000, interval: 50 });
  for (const port of ports) {
    const rule = ['INPUT', '-p', 'udp', '--dport', port, '-j', 'DROP'];
    await promisify(execFile)('iptables', ['-w', '-A', ...rule]);
    rules.push(rule);
  }
  /** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
  const pair = [];
  for (const name of ['Tess', 'Tom']) {
    const p = await openParticipant(browser, tcpServer.url, { room: 'e2e-ice-tcp', name, query: { res: '360' } });
    pair.push(p);
    people.push(p);
  }
  const t0 = Date.now();
  await Promise.all(pair.map((p) => p.clickJoin()));
  await Promise.all(pair.map((p) => p.waitJoined()));
  const ids = (/** @type {typeof pair[0]} */ p) => pair.filter((q) => q !== p).map((q) => /** @type {string} */ (q.id));
  await Promise.all(pair.map((p) => waitForVideoFrom(p, ids(p), 30_000)));
  t.diagnostic(`both decoding ${Date.now() - t0} ms after Join`);
  for (const p of pair) {
    const flow = await until(`${p.name} to decode video and hear audio over TCP`, async () => {
      const f = await mediaFlowing(p, ids(p), { ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 20_000, interval: 0 });
    t.diagnostic(`${p.name} over 1 s: ${JSON.stringify(flow.deltas)}`);
    const selected = await p.page.evaluate(selectedPair);
    t.diagnostic(`${p.name}: selected pair ${JSON.stringify(selected)}`);
    assert.equal(selected?.protocol, 'tcp', `${p.name} reaches the SFU over TCP`);
  }
  // Nothing came through UDP: the rule dropped every datagram sent to the media port.
  const { stdout } = await promisify(execFile)('iptables', ['-w', '-L', 'INPUT', '-v', '-n', '-x']);
  const dropped = stdout.split('\n').filter((l) => ports.some((p) => l.includes(`dpt:${p}`))).map((l) => Number(l.trim().split(/\s+/)[0]));
  t.diagnostic(`UDP datagrams dropped on the way to the SFU's ports ${ports.join(', ')}: ${dropped.join(', ')}`);
  assert.ok(dropped.some((n) => n > 0), 'the pages did try UDP first, and it was blocked');
});

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name}: ${p.pageErrors.join(' | ')}`);
});

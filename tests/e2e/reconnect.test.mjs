// Surviving a network blip without rejoining (issue 8; docs/protocol.md, "Reconnecting"), with
// the network impaired by iptables inside the suite's own namespace:
//
// 1. The media path breaks: every UDP datagram and TCP segment to the SFU's media port is
//    dropped for 8 s. The pages' ICE goes `disconnected`, they restart ICE (new credentials,
//    answered by the server with new ones of its own), and once the path is back both decode
//    each other again within 2 s.
// 2. The WebSocket breaks: connections to the HTTP port are reset for 2 s. The page takes its
//    place back on a new socket (the same participant, `reconnected`); the other never sees it
//    leave, and media flows throughout.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { launchBrowser, mediaFlowing, openParticipant, qualityLimit, sleep, startServer, until, waitForVideoFrom, watchStalls } from './helpers.mjs';

const ROOM = 'e2e-reconnect';
const run = promisify(execFile);

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** @type {Awaited<ReturnType<typeof openParticipant>>[]} */
const people = [];
/** @type {string[][]} iptables rules still in place */
const rules = [];

/** @param {string[]} rule */
async function block(rule) {
  await run('iptables', ['-w', '-I', ...rule]);
  rules.push(rule);
}

async function unblock() {
  for (const rule of rules.splice(0)) await run('iptables', ['-w', '-D', ...rule]).catch(() => {});
}

before(async () => {
  watchStalls();
  server = await startServer('reconnect');
  browser = await launchBrowser();
});

after(async () => {
  await unblock();
  for (const p of people) {
    await p.screenshot(`reconnect-${p.name}`);
    await p.context.close().catch(() => {});
  }
  await browser?.close();
  await server?.stop();
});

/**
 * Ms until `p` decodes a new frame of `other`'s video, polled in the page every 20 ms.
 * @param {typeof people[0]} p
 * @param {string} other
 * @param {number} timeout
 */
function nextFrame(p, other, timeout) {
  return p.page.evaluate(async ({ other, timeout }) => {
    const c = /** @type {any} */ (window).confab.client;
    const decoded = async () => {
      let n = 0;
      (await c.pc.getStats()).forEach((/** @type {any} */ s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video' && c.mids.get(s.mid)?.participant === other) n = Math.max(n, s.framesDecoded ?? 0);
      });
      return n;
    };
    const t0 = performance.now();
    const first = await decoded();
    while (performance.now() - t0 < timeout) {
      if ((await decoded()) > first) return Math.round(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
    return null;
  }, { other, timeout });
}

/** The ICE username fragment of `p`'s last local description. @param {typeof people[0]} p */
const localUfrag = (p) => p.page.evaluate(() => /** @type {any} */ (window).confab.client.pc.localDescription?.sdp.match(/a=ice-ufrag:(\S+)/)?.[1] ?? null);

test('two pages in a call', { timeout: 60_000 }, async () => {
  for (const name of ['Ada', 'Bob']) {
    const p = await openParticipant(browser, server.url, { room: ROOM, name, query: { res: '360' } });
    people.push(p);
  }
  await Promise.all(people.map((p) => p.clickJoin()));
  await Promise.all(people.map((p) => p.waitJoined()));
  const [ada, bob] = people;
  await waitForVideoFrom(ada, [/** @type {string} */ (bob.id)], 30_000);
  await waitForVideoFrom(bob, [/** @type {string} */ (ada.id)], 30_000);
});

test('media comes back within 2 s of the network, by an ICE restart', { timeout: 90_000 }, async (t) => {
  const [ada, bob] = people;
  const ports = [...(/Media: UDP (.*) and TCP/.exec(fs.readFileSync(server.logPath, 'utf8'))?.[1] ?? '').matchAll(/:(\d+)/g)].map((m) => m[1]);
  assert.ok(ports.length > 0, 'the banner names the media ports');
  const ufrags = await Promise.all(people.map(localUfrag));
  for (const port of ports) {
    for (const proto of ['udp', 'tcp']) await block(['INPUT', '-p', proto, '--dport', port, '-j', 'DROP']);
  }
  // Long enough for the pages to see the path down and restart ICE (disconnected, then 2 s).
  await until('both pages to see the media path down', async () => {
    const states = await Promise.all(people.map((p) => p.page.evaluate(() => /** @type {any} */ (window).confab.client.pc.iceConnectionState)));
    return states.every((s) => s === 'disconnected' || s === 'failed' || s === 'checking') ? states : null;
  }, { timeout: 20_000, interval: 100 });
  await sleep(4_000);
  const t0 = Date.now();
  await unblock();
  const [adaBack, bobBack] = await Promise.all([nextFrame(ada, /** @type {string} */ (bob.id), 15_000), nextFrame(bob, /** @type {string} */ (ada.id), 15_000)]);
  t.diagnostic(`after the network came back: Ada decodes Bob again in ${adaBack} ms, Bob decodes Ada in ${bobBack} ms`);
  assert.ok(adaBack !== null && bobBack !== null, 'media came back');
  const worst = Math.max(adaBack, bobBack);
  qualityLimit(t, worst <= 2_000, `media back within 2 s of the network (took ${worst} ms)`, t0, t0 + worst);
  const after = await Promise.all(people.map(localUfrag));
  t.diagnostic(`ICE username fragments before ${ufrags.join(', ')}, after ${after.join(', ')}`);
  assert.ok(after.some((u, i) => u !== ufrags[i]), 'a page restarted ICE');
  for (const p of people) {
    const flow = await mediaFlowing(p, people.filter((q) => q !== p).map((q) => /** @type {string} */ (q.id)), { ms: 1000 });
    assert.ok(flow.ok, `${p.name} decodes and hears the other: ${JSON.stringify(flow.deltas)}`);
  }
});

test('a dropped WebSocket takes its place back; the other never sees it leave', { timeout: 90_000 }, async (t) => {
  const [ada, bob] = people;
  const port = new URL(server.url).port;
  const events = () => ada.page.evaluate(() => /** @type {any} */ (window).__reconnectEvents ?? []);
  await ada.page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__reconnectEvents = [];
    w.confab.client.on('reconnecting', () => w.__reconnectEvents.push(['reconnecting', performance.now()]));
    w.confab.client.on('reconnected', (/** @type {any} */ m) => w.__reconnectEvents.push(['reconnected', performance.now(), m.participant.id]));
  });
  await bob.page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__left = [];
    w.confab.client.on('participant_left', (/** @type {any} */ m) => w.__left.push(m.participant));
  });
  await block(['INPUT', '-p', 'tcp', '--dport', port, '-j', 'REJECT', '--reject-with', 'tcp-reset']);
  // The page's next message on the socket meets a reset.
  await ada.page.evaluate(() => /** @type {any} */ (window).confab.client.ping());
  await until('Ada to notice her socket is gone', async () => ((await events()).some((/** @type {any} */ e) => e[0] === 'reconnecting') ? true : null), { timeout: 10_000, interval: 50 });
  assert.equal(await ada.page.getAttribute('#connection-state', 'data-state'), 'reconnecting', 'the page says it is reconnecting');
  await sleep(2_000);
  const t0 = Date.now();
  await unblock();
  const back = await until('Ada to take her place back', async () => {
    const e = (await events()).find((/** @type {any} */ x) => x[0] === 'reconnected');
    return e ?? null;
  }, { timeout: 20_000, interval: 50 });
  const ms = Date.now() - t0;
  t.diagnostic(`Ada reconnected ${ms} ms after the network came back`);
  assert.equal(back[2], ada.id, 'the same participant');
  qualityLimit(t, ms <= 2_500, `place taken back within 2.5 s of the network (took ${ms} ms)`, t0);
  assert.equal(await ada.page.evaluate(() => /** @type {any} */ (window).confab.client.state), 'joined');
  assert.deepEqual(await bob.page.evaluate(() => /** @type {any} */ (window).__left), [], 'Bob never saw Ada leave');
  for (const p of people) {
    const flow = await mediaFlowing(p, people.filter((q) => q !== p).map((q) => /** @type {string} */ (q.id)), { ms: 1000 });
    assert.ok(flow.ok, `${p.name} decodes and hears the other: ${JSON.stringify(flow.deltas)}`);
  }
  // The new socket serves: a ping is answered.
  const rtt = await ada.page.evaluate(async () => {
    const c = /** @type {any} */ (window).confab.client;
    c.rttMs = null;
    c.ping();
    for (let i = 0; i < 100 && c.rttMs === null; i++) await new Promise((r) => setTimeout(r, 20));
    return c.rttMs;
  });
  assert.ok(rtt !== null, 'the new socket answers pings');
});

test('no console errors and no uncaught errors in the pages', () => {
  // Chromium itself logs each socket the blocked port refused while the page retried: those
  // are the impairment, not the page's doing.
  const refused = /^WebSocket connection to '.*' failed: Error in connection establishment: net::ERR_CONNECTION_(REFUSED|RESET)$/;
  for (const p of people) {
    assert.deepEqual(p.pageErrors, [], `${p.name}: ${p.pageErrors.join(' | ')}`);
    const errors = p.consoleErrors.filter((e) => !refused.test(e));
    assert.deepEqual(errors, [], `${p.name}: ${errors.join(' | ')}`);
  }
});

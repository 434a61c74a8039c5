// The README's first command, as a new user meets it: confab with no flags at all, and two tabs
// of a browser that ignores loopback ICE candidates (as every user's browser does) on the URL it
// prints. The namespace gets a LAN-like interface (a veth pair with a private address), so the
// server must advertise that interface's address for the call to work.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { launchBrowser, mediaFlowing, openParticipant, startServer, until, waitForVideoFrom } from './helpers.mjs';

const LAN_IP = '10.200.0.1';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  // Inside run.sh's namespace (only loopback so far): add an interface with a private address.
  execFileSync('ip', ['link', 'add', 'confab-v0', 'type', 'veth', 'peer', 'name', 'confab-v1']);
  execFileSync('ip', ['addr', 'add', `${LAN_IP}/24`, 'dev', 'confab-v0']);
  execFileSync('ip', ['link', 'set', 'confab-v0', 'up']);
  execFileSync('ip', ['link', 'set', 'confab-v1', 'up']);
  server = await startServer('defaults', { args: [] });
  browser = await launchBrowser({ allowLoopback: false });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  try {
    execFileSync('ip', ['link', 'del', 'confab-v0']);
  } catch {
    // already gone
  }
});

test('no flags: two tabs on the printed URL are in a call', { timeout: 60_000 }, async (t) => {
  assert.equal(server.url, 'http://localhost:7880/', 'the URL a person is told to open');
  const a = await openParticipant(browser, server.url, { room: 'demo', name: 'Tab one' });
  const b = await openParticipant(browser, server.url, { room: 'demo', name: 'Tab two' });
  await Promise.all([a.clickJoin(), b.clickJoin()]);
  await Promise.all([a.waitJoined(), b.waitJoined()]);
  const [ta, tb] = await Promise.all([
    waitForVideoFrom(a, [/** @type {string} */ (b.id)]),
    waitForVideoFrom(b, [/** @type {string} */ (a.id)]),
  ]);
  t.diagnostic(`Join click -> first remote frame: ${ta.first} ms and ${tb.first} ms`);
  for (const [p, q] of [[a, b], [b, a]]) {
    const flow = await until(`${p.name} to keep decoding and hearing ${q.name}`, async () => {
      const f = await mediaFlowing(p, [/** @type {string} */ (q.id)], { ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 10_000, interval: 0 });
    t.diagnostic(`${p.name}: ${JSON.stringify(flow.deltas)}`);
  }

  // The media path is the LAN address, not loopback (the browser would not use loopback).
  const remote = await a.page.evaluate(async () => {
    const pc = /** @type {any} */ (window).confab.client.pc;
    const stats = await pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = stats.get(s.selectedCandidatePairId);
        const cand = stats.get(pair.remoteCandidateId);
        return `${cand.address}:${cand.port} ${cand.candidateType}`;
      }
    }
    return null;
  });
  t.diagnostic(`selected remote candidate: ${remote}`);
  assert.match(String(remote), new RegExp(`^${LAN_IP.replaceAll('.', '\\.')}:788\\d host$`));
});

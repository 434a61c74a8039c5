// A call through confab's built-in TURN server alone: two pages that may use relayed candidates
// only (`?relay=1`: iceTransportPolicy "relay", as a browser whose direct paths are blocked) get
// the TURN server and their credentials from the `joined` message, allocate relays on it, and
// reach the SFU through them; each decodes the other's video and hears its audio, and the
// selected candidate pair on each side is a relay one.

import assert from 'node:assert/strict';
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

test('no uncaught errors in the pages', () => {
  for (const p of people) assert.deepEqual(p.pageErrors, [], `${p.name}: ${p.pageErrors.join(' | ')}`);
});

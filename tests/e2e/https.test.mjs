// HTTPS and WSS with --tls-self-signed: two pages on the https:// URL the banner prints (their
// users having accepted the certificate) are in a call, in a secure context, over wss://.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, mediaFlowing, openParticipant, startServer, until, waitForVideoFrom } from './helpers.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  server = await startServer('https', { args: ['--http', '127.0.0.1:0', '--rtc', '127.0.0.1:0', '--no-turn', '--tls-self-signed'] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('two pages on the https URL are in a call over wss', { timeout: 60_000 }, async (t) => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  const a = await openParticipant(browser, server.url, { room: 'secure', name: 'Ana' });
  const b = await openParticipant(browser, server.url, { room: 'secure', name: 'Ben' });
  try {
    assert.equal(await a.page.evaluate(() => window.isSecureContext), true);
    await a.clickJoin();
    await a.waitJoined();
    await b.clickJoin();
    await b.waitJoined();
    const ws = await a.page.evaluate(() => /** @type {any} */ (window).confab.client.url);
    assert.match(ws, /^wss:\/\//);
    const { all } = await waitForVideoFrom(b, [/** @type {string} */ (a.id)]);
    t.diagnostic(`Ben decodes Ana ${all} ms after his Join, signaling over ${ws}`);
    const flow = await until('Ana to keep decoding and hearing Ben', async () => {
      const f = await mediaFlowing(a, [/** @type {string} */ (b.id)], { ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 10_000, interval: 0 });
    t.diagnostic(`Ana over 1 s: ${JSON.stringify(flow.deltas)}`);
  } finally {
    await a.close();
    await b.close();
  }
});

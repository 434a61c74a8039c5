// A server with API keys: the meeting page joins with the `?token=` of its link (minted by
// `confab token`), is refused with a clear notice without one, and a viewer's token (no
// canPublish) watches without sending anything.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  launchBrowser, mediaFlowing, openParticipant, repoRoot, startServer, until, waitForVideoFrom,
} from './helpers.mjs';

const ROOM = 'e2e-tokens';
const KEYS = 'e2ekey: an-e2e-secret-of-at-least-thirty-two-characters';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

/**
 * A token from `confab token`, as an operator mints one.
 * @param {string[]} args
 */
function mint(args) {
  const bin = process.env.CONFAB_BIN || path.join(repoRoot, 'target', 'debug', 'confab');
  return execFileSync(bin, ['token', ...args], { env: { ...process.env, CONFAB_KEYS: KEYS } }).toString().trim();
}

before(async () => {
  server = await startServer('tokens', { args: ['--http', '127.0.0.1:0', '--rtc', '127.0.0.1:0', '--no-turn', '--keys', KEYS] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('without a token the page says a token is needed; with one it joins, under the token\'s name', { timeout: 60_000 }, async (t) => {
  const stranger = await openParticipant(browser, server.url, { room: ROOM, name: 'Stranger' });
  const ada = await openParticipant(browser, server.url, {
    // No room in the link: it is the token's.
    room: '',
    name: 'typed name',
    query: { token: mint(['--room', ROOM, '--identity', 'ada', '--name', 'Ada']) },
  });
  const viewer = await openParticipant(browser, server.url, {
    room: ROOM,
    name: 'Vic',
    query: { token: mint(['--room', ROOM, '--identity', 'vic', '--grant', 'canPublish=false']) },
  });
  try {
    await stranger.clickJoin();
    const notice = stranger.page.locator('#notice');
    await notice.waitFor({ state: 'visible', timeout: 10_000 });
    const text = await notice.textContent();
    t.diagnostic(`without a token: ${text}`);
    assert.match(text ?? '', /needs a valid access token/);
    assert.equal(await stranger.page.locator('#call').isVisible(), false);

    assert.equal(await ada.page.inputValue('#room'), ROOM, 'the room field is filled from the token');
    await ada.clickJoin();
    await ada.waitJoined();
    assert.equal(await ada.page.locator('.tile.self .name').textContent(), 'Ada (you)');

    await viewer.clickJoin();
    await viewer.waitJoined();
    const viewerNotice = viewer.page.locator('#notice');
    await viewerNotice.waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await viewerNotice.textContent() ?? '', /watch and listen: your access token does not allow publishing/);
    const { all } = await waitForVideoFrom(viewer, [/** @type {string} */ (ada.id)]);
    t.diagnostic(`the viewer decodes Ada ${all} ms after its Join`);
    const flow = await until('the viewer to keep hearing and seeing Ada', async () => {
      const f = await mediaFlowing(viewer, [/** @type {string} */ (ada.id)], { ms: 1000 });
      return f.ok ? f : null;
    }, { timeout: 10_000, interval: 0 });
    t.diagnostic(`viewer over 1 s: ${JSON.stringify(flow.deltas)}`);
    // It sends nothing, and cannot share a screen; Ada sees its tile with nothing published.
    assert.equal(await viewer.page.evaluate(() => window.confab.client?.localTracks.length), 0);
    assert.equal(await viewer.page.isDisabled('#share-button'), true);
    const tile = ada.page.locator(`.tile[data-participant="${viewer.id}"]`);
    await tile.waitFor({ state: 'visible', timeout: 5000 });
    assert.equal(await tile.getAttribute('data-video-muted'), 'true');
    assert.equal(await tile.getAttribute('data-audio-muted'), 'true');
  } finally {
    for (const p of [stranger, ada, viewer]) await p.close();
  }
});

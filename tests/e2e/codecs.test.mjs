// Every video codec the SFU forwards, in a real browser: publishers restricted to VP8, VP9, AV1 or
// H264 (setCodecPreferences on their transceivers, so their offers hold that codec only) are
// decoded by a subscriber that accepts them all. The SFU maps each codec to the subscriber's own
// payload type and starts each stream on a keyframe of that codec.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, startServer, until } from './helpers.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  server = await startServer('codecs');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * An init script that makes the page's video transceivers offer `mime` only.
 * @param {string} mime e.g. 'video/VP9'
 */
function onlyCodec(mime) {
  const add = RTCPeerConnection.prototype.addTransceiver;
  RTCPeerConnection.prototype.addTransceiver = function (trackOrKind, init) {
    const t = add.call(this, trackOrKind, init);
    const kind = typeof trackOrKind === 'string' ? trackOrKind : trackOrKind.kind;
    const caps = RTCRtpSender.getCapabilities(kind);
    if (kind === 'video' && caps) {
      const wanted = caps.codecs.filter((c) => c.mimeType === mime);
      const repair = caps.codecs.filter((c) => ['video/rtx', 'video/red', 'video/ulpfec'].includes(c.mimeType));
      if (wanted.length) t.setCodecPreferences([...wanted, ...repair]);
    }
    return t;
  };
}

test('VP8, VP9, H264 and AV1 publishers are all decoded', { timeout: 90_000 }, async (t) => {
  const viewer = await openParticipant(browser, server.url, { room: 'codecs', name: 'Viewer' });
  await viewer.clickJoin();
  await viewer.waitJoined();

  const supported = await viewer.page.evaluate(() =>
    (RTCRtpSender.getCapabilities('video')?.codecs ?? []).map((c) => c.mimeType));
  const mimes = ['video/VP8', 'video/VP9', 'video/H264', 'video/AV1'].filter((m) => supported.includes(m));
  t.diagnostic(`this chromium sends: ${[...new Set(supported)].join(' ')}`);
  assert.ok(mimes.includes('video/VP8') && mimes.includes('video/VP9'), 'VP8 and VP9 are always there');

  const publishers = [];
  for (const mime of mimes) {
    const p = await openParticipant(browser, server.url, {
      room: 'codecs',
      name: mime.slice(6),
      initScript: /** @type {Function} */ (new Function(`(${onlyCodec.toString()})(${JSON.stringify(mime)})`)),
    });
    await p.clickJoin();
    await p.waitJoined();
    publishers.push({ p, mime });
  }

  for (const { p, mime } of publishers) {
    const got = await until(`the viewer to decode ${mime} from ${p.name}`, async () => {
      return viewer.page.evaluate(async ({ id }) => {
        const client = /** @type {any} */ (window).confab.client;
        const stats = await client.pc.getStats();
        for (const s of stats.values()) {
          if (s.type !== 'inbound-rtp' || s.kind !== 'video' || !s.mid) continue;
          if (client.mids.get(s.mid)?.participant !== id || !(s.framesDecoded > 5)) continue;
          return { codec: stats.get(s.codecId)?.mimeType, frames: s.framesDecoded, width: s.frameWidth };
        }
        return null;
      }, { id: p.id });
    }, { timeout: 20_000 });
    t.diagnostic(`${p.name}: ${JSON.stringify(got)}`);
    assert.equal(got.codec, mime, `${p.name} reached the viewer as ${got.codec}`);
  }
});

// Offer collision on purpose (protocol.md, "Negotiation rule"): the client publishes a track
// while a server offer is on its way; the client ignores the server offer, the server rolls its
// offer back, answers the client's and offers again. Nothing may be lost on either side.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, openParticipant, startServer, until, waitForVideoFrom } from './helpers.mjs';

const ROOM = 'e2e-glare';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  server = await startServer('negotiation');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Init script: when `window.__glare` is armed, the next server `offer` and every message after
 * it are held back for 600 ms (in order: a WebSocket never reorders) and `__glare()` runs at
 * once; it publishes a track, so the client's own offer goes out while the server's is
 * outstanding. Records what the client sends in `window.__sent`.
 */
function holdNextServerOffer() {
  const w = /** @type {any} */ (window);
  w.__sent = [];
  const Native = window.WebSocket;
  class HoldingWebSocket extends Native {
    /** @param {string | URL} url @param {string | string[]} [protocols] */
    constructor(url, protocols) {
      super(url, protocols);
      /** @type {((ev: MessageEvent) => void) | null} */
      let handler = null;
      /** @type {MessageEvent[] | null} */
      let held = null;
      Object.defineProperty(this, 'onmessage', {
        get: () => handler,
        set: (fn) => {
          handler = fn;
          super.onmessage = (/** @type {MessageEvent} */ ev) => {
            if (held) {
              held.push(ev);
              return;
            }
            if (w.__glare && typeof ev.data === 'string' && JSON.parse(ev.data).type === 'offer') {
              const glare = w.__glare;
              w.__glare = null;
              w.__heldOffer = JSON.parse(ev.data).id;
              held = [ev];
              glare();
              setTimeout(() => {
                const queue = held ?? [];
                held = null;
                for (const e of queue) handler?.call(this, e);
              }, 600);
              return;
            }
            handler?.call(this, ev);
          };
        },
      });
    }

    /** @param {string} data */
    send(data) {
      w.__sent.push(JSON.parse(data));
      super.send(data);
    }
  }
  window.WebSocket = HoldingWebSocket;
}

test('a client offer that collides with a server offer loses nothing', { timeout: 60_000 }, async (t) => {
  const ada = await openParticipant(browser, server.url, { room: ROOM, name: 'Ada', initScript: holdNextServerOffer });
  await ada.clickJoin();
  await ada.waitJoined();
  // Ada's first exchange (her camera and microphone) is done.
  await until('Ada to be connected', () => ada.page.evaluate(() => window.confab.client?.pc?.connectionState === 'connected'));

  // Arm: the server offer that brings Grace's tracks meets Ada publishing a screen share.
  await ada.page.evaluate(() => {
    /** @type {any} */ (window).__glare = () => {
      const canvas = document.createElement('canvas');
      canvas.width = 320;
      canvas.height = 180;
      const g = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
      let n = 0;
      setInterval(() => {
        g.fillStyle = `hsl(${(n += 7) % 360} 70% 50%)`;
        g.fillRect(0, 0, 320, 180);
      }, 50);
      const stream = canvas.captureStream(20);
      window.confab.client?.publish(stream.getVideoTracks()[0], stream, { source: 'screen' });
    };
  });

  const grace = await openParticipant(browser, server.url, { room: ROOM, name: 'Grace' });
  await grace.clickJoin();
  await grace.waitJoined();

  await until('the server offer to be held', () => ada.page.evaluate(() => /** @type {any} */ (window).__heldOffer !== undefined), { timeout: 10_000 });
  t.diagnostic(`held server offer ${await ada.page.evaluate(() => /** @type {any} */ (window).__heldOffer)} while Ada offered her screen`);

  // Ada gets Grace's media after all (the server offered again).
  await waitForVideoFrom(ada, [/** @type {string} */ (grace.id)], 20_000, { from: 'now' });

  // Grace gets both of Ada's videos: camera and screen.
  const videos = await until('Grace to decode Ada\'s camera and screen', async () => {
    const v = await grace.page.evaluate(async (adaId) => {
      const c = window.confab.client;
      if (!c?.pc) return [];
      /** @type {{track: string, frames: number}[]} */
      const out = [];
      (await c.pc.getStats()).forEach((s) => {
        const ref = s.type === 'inbound-rtp' && s.kind === 'video' ? c.mids.get(s.mid) : undefined;
        if (ref?.participant === adaId) out.push({ track: ref.track, frames: s.framesDecoded ?? 0 });
      });
      return out;
    }, ada.id);
    return v.length === 2 && v.every((x) => x.frames > 0) ? v : null;
  }, { timeout: 20_000 });
  t.diagnostic(`Grace decodes Ada's videos: ${JSON.stringify(videos)}`);

  // Ada ignored the held offer (she was making her own) and answered the later one.
  const { held, answered, offeredDuringHold } = await ada.page.evaluate(() => {
    const w = /** @type {any} */ (window);
    const sent = /** @type {any[]} */ (w.__sent);
    return {
      held: w.__heldOffer,
      answered: sent.filter((m) => m.type === 'answer').map((m) => m.id),
      offeredDuringHold: sent.filter((m) => m.type === 'offer' && m.tracks && Object.values(m.tracks).some((t) => /** @type {any} */ (t).source === 'screen')).length,
    };
  });
  t.diagnostic(`held offer ${held}; Ada answered offers ${JSON.stringify(answered)}; her offers with the screen: ${offeredDuringHold}`);
  assert.ok(!answered.includes(held), 'the colliding server offer is ignored, not answered');
  assert.ok(answered.some((id) => id > held), 'the server offered again and Ada answered');
  assert.equal(offeredDuringHold, 1);

  // The screen share has a tile of its own on Grace's page; Ada's camera stays in her tile.
  await grace.page.locator(`.tile.screen[data-screen-of="${ada.id}"] video`).waitFor({ timeout: 5000 });
  assert.equal(await grace.page.locator(`.tile[data-participant="${ada.id}"]`).count(), 1);
  await grace.screenshot('negotiation-grace');
  assert.deepEqual(ada.pageErrors, []);
  assert.deepEqual(grace.pageErrors, []);
  await ada.close();
  await grace.close();
});

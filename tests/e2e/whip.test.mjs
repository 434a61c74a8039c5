// WHIP (RFC 9725) and WHEP against other WebRTC stacks: GStreamer's webrtcbin publishes into a
// room the meeting page shows, and plays a browser's camera; then the HTTP error cases, from node.
//
// The GStreamer clients are tests/e2e/gst/*.py, run with Debian's /usr/bin/python3 (PyGObject);
// scripts/test installs what they need. Each prints its progress as JSON lines on stderr (kept
// in artifacts/whip-<label>.log) and its result as one JSON line on stdout.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import {
  artifactsDir, launchBrowser, mediaFlowing, openParticipant, repoRoot, sleep, startServer, until,
  waitForVideoFrom,
} from './helpers.mjs';

const PYTHON = process.env.CONFAB_GST_PYTHON || '/usr/bin/python3';
const GST_DIR = path.join(repoRoot, 'tests', 'e2e', 'gst');
const ROOM = 'e2e-whip';
/** The GStreamer publisher's frame size (whip_publish.py's default). */
const GST_WIDTH = 320;
const GST_HEIGHT = 240;

/**
 * Why the GStreamer tests cannot run here, or false.
 * @type {string | false}
 */
const gstMissing = (() => {
  const r = spawnSync(PYTHON, [path.join(GST_DIR, 'check.py')], { encoding: 'utf8' });
  if (r.status === 0) return false;
  const why = (r.stdout || r.stderr || String(r.error)).trim();
  return `GStreamer WebRTC from ${PYTHON} is not usable (${why}); scripts/test installs it`;
})();

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
/** In ROOM for the whole file, with camera and microphone: she watches what GStreamer sends. */
/** @type {Awaited<ReturnType<typeof openParticipant>>} */
let vera;
/** @type {ReturnType<typeof runGst>[]} */
const clients = [];

before(async () => {
  server = await startServer('whip');
  browser = await launchBrowser();
  vera = await openParticipant(browser, server.url, { room: ROOM, name: 'Vera', query: { res: '360' } });
  await vera.clickJoin();
  await vera.waitJoined();
});

after(async () => {
  for (const c of clients) c.kill();
  await vera?.screenshot('whip-Vera');
  await browser?.close();
  await server?.stop();
});

// ------------------------------------------------------------------------------ helpers

/**
 * Run one of the GStreamer clients. Its stderr goes to artifacts/whip-<label>.log.
 * @param {'whip_publish.py' | 'whep_play.py'} script
 * @param {string[]} args
 * @param {string} label
 */
function runGst(script, args, label) {
  fs.mkdirSync(artifactsDir, { recursive: true });
  const log = fs.createWriteStream(path.join(artifactsDir, `whip-${label}.log`));
  const child = spawn(PYTHON, [path.join(GST_DIR, script), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
  });
  /** @type {any[]} */
  const events = [];
  /** @type {(() => void)[]} */
  let wake = [];
  readline.createInterface({ input: child.stderr }).on('line', (line) => {
    log.write(`${line}\n`);
    try {
      events.push(JSON.parse(line));
      for (const w of wake) w();
      wake = [];
    } catch {
      // GStreamer's own warnings
    }
  });
  let stdout = '';
  child.stdout.on('data', (c) => { stdout += c; });
  /** @type {Promise<{code: number | null, result: any}>} */
  const done = new Promise((resolve) => {
    child.once('exit', (code) => {
      setTimeout(() => {
        log.end(`# exit ${code}; stdout: ${stdout}`);
        const last = stdout.trim().split('\n').pop() ?? '';
        let result = null;
        try { result = JSON.parse(last); } catch { /* none */ }
        resolve({ code, result });
      }, 50);
    });
  });
  const c = {
    child,
    events,
    done,
    /**
     * The first progress event named `name` (fails when the script ends first, or after `ms`).
     * @param {string} name
     */
    async event(name, ms = 30_000) {
      const t0 = Date.now();
      for (;;) {
        const e = events.find((x) => x.event === name);
        if (e) return e;
        if (child.exitCode !== null) {
          const { code, result } = await done;
          throw new Error(`${label} ended (exit ${code}) before '${name}': ${JSON.stringify(result)}`);
        }
        if (Date.now() - t0 > ms) throw new Error(`${label}: no '${name}' within ${ms} ms; events: ${JSON.stringify(events.map((x) => x.event))}`);
        await Promise.race([new Promise((r) => wake.push(() => r(undefined))), sleep(200)]);
      }
    },
    /** SIGTERM (the script DELETEs its session and prints its result), then its result. */
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => c.kill(), 15_000);
      const r = await done;
      clearTimeout(t);
      return r;
    },
    kill() {
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
  clients.push(c);
  return c;
}

/**
 * A GStreamer WHIP publisher in `room` named `name`.
 * @param {string} room
 * @param {string} name
 * @param {{seconds?: number, cert?: 'ecdsa' | 'default', label?: string}} [opts]
 */
function publishGst(room, name, { seconds = 90, cert = 'default', label = name } = {}) {
  const url = `${server.url}whip/${room}?${new URLSearchParams({ name })}`;
  return runGst('whip_publish.py', ['--url', url, '--seconds', String(seconds), '--dtls-cert', cert], label);
}

/**
 * The tile of the participant named `name` on `p`'s page, and their id.
 * @param {Awaited<ReturnType<typeof openParticipant>>} p
 * @param {string} name
 */
async function tileNamed(p, name, timeout = 15_000) {
  const tile = p.page.locator('.tile[data-participant]').filter({ has: p.page.locator('.name', { hasText: new RegExp(`^${name}$`) }) });
  await tile.waitFor({ state: 'visible', timeout });
  return { tile, id: /** @type {string} */ (await tile.getAttribute('data-participant')) };
}

/** What /api/v1/stats says. */
async function serverStats() {
  return (await fetch(new URL('/api/v1/stats', server.url))).json();
}

/**
 * An SDP offer made by chromium (in Vera's page, on a connection of its own) with an audio and a
 * video m-line in `direction`, every candidate in it.
 * @param {'sendonly' | 'recvonly'} direction
 * @returns {Promise<string>}
 */
function browserOffer(direction) {
  return vera.page.evaluate(async (direction) => {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('audio', { direction });
    pc.addTransceiver('video', { direction });
    await pc.setLocalDescription();
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve(undefined);
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(undefined); };
      setTimeout(resolve, 3000);
    });
    const sdp = /** @type {string} */ (pc.localDescription?.sdp);
    pc.close();
    return sdp;
  }, direction);
}

/**
 * One HTTP request to the server: status, headers and text.
 * @param {string} method
 * @param {string} urlPath
 * @param {{body?: string, type?: string, headers?: Record<string, string>}} [opts]
 */
async function http(method, urlPath, { body, type, headers = {} } = {}) {
  const res = await fetch(new URL(urlPath, server.url), {
    method,
    body,
    headers: { ...(type ? { 'content-type': type } : {}), ...headers },
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

// ------------------------------------------------------------------------------ GStreamer

test('a GStreamer WHIP publisher is seen and heard in the meeting page', { skip: gstMissing, timeout: 90_000 }, async (t) => {
  const name = 'GStreamer cam';
  const gst = publishGst(ROOM, name, { label: 'publisher' });
  const session = await gst.event('session');
  assert.match(session.location, /^\/sessions\/[a-z0-9]+$/);

  const { tile, id } = await tileNamed(vera, name);
  t.diagnostic(`the publisher is participant ${id}, session ${session.location}`);
  const { all } = await waitForVideoFrom(vera, [id], 20_000, { from: 'now' });
  t.diagnostic(`Vera decodes GStreamer's video ${all} ms after its tile showed`);
  const flow = await until('Vera to keep decoding and hearing GStreamer', async () => {
    const f = await mediaFlowing(vera, [id], { ms: 1000 });
    return f.ok ? f : null;
  }, { timeout: 15_000, interval: 0 });
  t.diagnostic(`Vera gets from GStreamer over 1 s: ${JSON.stringify(flow.deltas)}`);
  const inbound = (await vera.stats())[id];
  assert.equal(inbound?.video?.frameWidth, GST_WIDTH, `frames of ${GST_WIDTH} px: ${JSON.stringify(inbound)}`);
  assert.equal(await tile.getAttribute('data-video-muted'), 'false');
  assert.equal(await tile.getAttribute('data-audio-muted'), 'false');

  // Done: the script DELETEs its session, and the tile goes.
  const { code, result } = await gst.stop();
  t.diagnostic(`publisher: ${JSON.stringify(result)}`);
  assert.equal(code, 0, JSON.stringify(result));
  assert.equal(result.status, 201);
  assert.equal(result.connection_state, 'connected');
  assert.ok(result.etag, 'the 201 carries an ETag');
  assert.ok(result.packets_sent > 0);
  assert.equal(result.delete_status, 200);
  await tile.waitFor({ state: 'detached', timeout: 10_000 });
});

test('GStreamer WHEP players decode a browser\'s camera', { skip: gstMissing, timeout: 90_000 }, async (t) => {
  const room = 'e2e-whep';
  const wes = await openParticipant(browser, server.url, { room, name: 'Wes', query: { res: '360' } });
  try {
    await wes.clickJoin();
    const wesId = await wes.waitJoined();
    // Publishing, with frames on the wire, before anyone asks to watch.
    await until('Wes to send video', () => wes.page.evaluate(async () => {
      const pc = window.confab.client?.pc;
      if (!pc) return false;
      let frames = 0;
      (await pc.getStats()).forEach((/** @type {any} */ s) => {
        if (s.type === 'outbound-rtp' && s.kind === 'video') frames += s.framesEncoded ?? 0;
      });
      return frames > 30;
    }), { timeout: 20_000 });

    const seconds = 8;
    const args = ['--seconds', String(seconds), '--dtls-cert', 'default'];
    const earliest = runGst('whep_play.py', ['--url', `${server.url}whep/${room}`, ...args], 'player-room');
    const chosen = runGst('whep_play.py', ['--url', `${server.url}whep/${room}/${wesId}`, ...args], 'player-participant');
    for (const [label, player] of [['POST /whep/{room}', earliest], ['POST /whep/{room}/{participant}', chosen]]) {
      const { code, result } = await player.done;
      t.diagnostic(`${label}: ${JSON.stringify(result)}`);
      assert.ok(result, `${label}: no result (exit ${code})`);
      assert.equal(result.status, 201, `${label}: ${result.error}`);
      assert.equal(result.error, null, label);
      assert.equal(result.connection_state, 'connected', label);
      // At least ~4 fps over the run: what matters is that frames decode at all.
      assert.ok(result.frames >= 30, `${label}: ${result.frames} frames decoded in ${result.seconds} s`);
      assert.ok(result.width > 0 && result.height > 0, `${label}: frames of ${result.width}x${result.height}`);
      assert.ok(result.audio_buffers > 0, `${label}: no audio decoded`);
      assert.equal(result.delete_status, 200, label);
    }
    // Players are not participants anybody sees.
    assert.equal(await wes.page.locator('.tile[data-participant]').count(), 0, 'Wes sees no tile for the players');
  } finally {
    await wes.close();
  }
});

test('GStreamer with an ECDSA DTLS certificate (what browsers use) publishes', {
  skip: gstMissing,
  timeout: 60_000,
}, async (t) => {
  const name = 'GStreamer ECDSA';
  const gst = publishGst(ROOM, name, { cert: 'ecdsa', label: 'publisher-ecdsa' });
  let over = false;
  try {
    await gst.event('session');
    // The server ends a session whose DTLS handshake fails: no need to wait for frames then.
    const ended = (async () => {
      while (!over) {
        if ((await serverStats()).http_sessions === 0) throw new Error('the server ended the session (DTLS failed? see artifacts/whip.log)');
        await sleep(250);
      }
    })();
    const decoded = (async () => {
      const { id } = await tileNamed(vera, name, 10_000);
      await waitForVideoFrom(vera, [id], 15_000, { from: 'now' });
    })();
    // (The loser fails later, or not at all: nobody waits for it.)
    decoded.catch(() => {});
    ended.catch(() => {});
    await Promise.race([decoded, ended]);
  } finally {
    over = true;
    const { result } = await gst.stop();
    t.diagnostic(`publisher: ${JSON.stringify(result)}`);
  }
});

// ------------------------------------------------------------------------------ errors

test('WHIP and WHEP errors: status codes with a reason', { timeout: 60_000 }, async (t) => {
  const sendonly = await browserOffer('sendonly');
  const recvonly = await browserOffer('recvonly');
  /** @type {[string, Awaited<ReturnType<typeof http>>, number, RegExp?][]} */
  const cases = [
    ['WHIP with Content-Type text/plain', await http('POST', `/whip/${ROOM}`, { body: sendonly, type: 'text/plain' }), 415, /application\/sdp/],
    ['WHIP with no Content-Type', await http('POST', `/whip/${ROOM}`, { body: sendonly }), 415],
    ['WHIP with a body that is not SDP', await http('POST', `/whip/${ROOM}`, { body: 'hello, server', type: 'application/sdp' }), 400, /SDP/],
    ['WHIP with SDP that does not parse', await http('POST', '/whip/e2e-whip-ghost', { body: 'v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n', type: 'application/sdp' }), 400, /SDP/],
    ['WHIP offer without a fingerprint', await http('POST', '/whip/e2e-whip-ghost', { body: sendonly.replace(/^a=fingerprint:.*\r?\n/gm, ''), type: 'application/sdp' }), 400, /fingerprint/],
    ['WHIP offer that only receives', await http('POST', `/whip/${ROOM}`, { body: recvonly, type: 'application/sdp' }), 400, /sendonly/],
    ['WHIP into an invalid room name', await http('POST', '/whip/no%20spaces', { body: sendonly, type: 'application/sdp' }), 400],
    ['WHIP with a name of control characters', await http('POST', `/whip/${ROOM}?name=%07`, { body: sendonly, type: 'application/sdp' }), 400, /name/],
    ['WHEP offer that only sends', await http('POST', `/whep/${ROOM}`, { body: sendonly, type: 'application/sdp' }), 400, /recvonly/],
    ['WHEP of a room nobody is in', await http('POST', '/whep/e2e-whip-nobody', { body: recvonly, type: 'application/sdp' }), 404, /room/],
    ['WHEP of an unknown participant', await http('POST', `/whep/${ROOM}/Pnobody`, { body: recvonly, type: 'application/sdp' }), 404, /publisher/],
    ['WHEP of a room left by a refused WHIP offer', await http('POST', '/whep/e2e-whip-ghost', { body: recvonly, type: 'application/sdp' }), 404, /room/],
    ['DELETE of an unknown session', await http('DELETE', '/sessions/nosuchsession'), 404],
    ['PATCH of an unknown session', await http('PATCH', '/sessions/nosuchsession', { body: 'a=end-of-candidates\r\n', type: 'application/trickle-ice-sdpfrag' }), 404],
    ['an offer over 64 KiB', await http('POST', `/whip/${ROOM}`, { body: sendonly + 'a=x-padding:0123456789abcdef0123456789abcdef\r\n'.repeat(1700), type: 'application/sdp' }), 413],
    ['GET of an endpoint', await http('GET', `/whip/${ROOM}`), 405],
  ];
  for (const [what, res, status, reason] of cases) {
    t.diagnostic(`${what}: ${res.status} ${res.text.trim().split('\n')[0]}`);
    assert.equal(res.status, status, `${what}: ${res.status} ${res.text}`);
    if (reason) {
      assert.match(res.text, reason, `${what}: the reason says why`);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/, `${what}: a text reason`);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', `${what}: a browser may read the reason`);
    }
  }

  for (const urlPath of [`/whip/${ROOM}`, `/whep/${ROOM}`, `/whep/${ROOM}/Pnobody`, '/sessions/nosuchsession']) {
    const res = await http('OPTIONS', urlPath, { headers: { origin: 'https://example.com', 'access-control-request-method': 'POST' } });
    assert.equal(res.status, 204, `OPTIONS ${urlPath}`);
    assert.equal(res.headers.get('access-control-allow-origin'), '*', `OPTIONS ${urlPath}`);
    assert.match(res.headers.get('access-control-allow-methods') ?? '', urlPath.startsWith('/sessions') ? /DELETE/ : /POST/);
    assert.match(res.headers.get('access-control-expose-headers') ?? '', /Location/i);
    if (!urlPath.startsWith('/sessions')) assert.equal(res.headers.get('accept-post'), 'application/sdp');
  }

  // Nothing refused is left behind: only Vera is in the server.
  const stats = await until('the refused sessions to be gone', async () => {
    const s = await serverStats();
    return s.participants === 1 && s.http_sessions === 0 ? s : null;
  }, { timeout: 5000 });
  t.diagnostic(`server after the refusals: ${JSON.stringify(stats)}`);
  assert.equal(await vera.page.locator('.tile[data-participant]').count(), 0, 'Vera sees nobody');
});

test('a WHIP session: PATCH trickles, DELETE ends it once', { skip: gstMissing, timeout: 90_000 }, async (t) => {
  const name = 'GStreamer doomed';
  const gst = publishGst(ROOM, name, { label: 'publisher-doomed' });
  const session = await gst.event('session');
  const offer = (await gst.event('offer')).sdp;
  const ufrag = /a=ice-ufrag:(\S+)/.exec(offer)?.[1];
  assert.ok(ufrag, 'the offer has an ICE ufrag');
  assert.match(session.etag ?? '', /^".+"$/, 'the 201 carries an ETag');
  const { tile, id } = await tileNamed(vera, name);
  await waitForVideoFrom(vera, [id], 20_000, { from: 'now' });

  const frag = (/** @type {string} */ u) => `a=ice-ufrag:${u}\r\na=ice-pwd:0123456789abcdef012345\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:video0\r\n`
    + 'a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n';
  const TRICKLE = 'application/trickle-ice-sdpfrag';
  const patches = [
    ['a candidate of the same ICE session', await http('PATCH', session.location, { body: frag(ufrag), type: TRICKLE }), 204],
    ['If-Match: the ETag of the 201', await http('PATCH', session.location, { body: frag(ufrag), type: TRICKLE, headers: { 'if-match': session.etag } }), 204],
    ['If-Match: *', await http('PATCH', session.location, { body: frag(ufrag), type: TRICKLE, headers: { 'if-match': '*' } }), 204],
    ['If-Match of another entity', await http('PATCH', session.location, { body: frag(ufrag), type: TRICKLE, headers: { 'if-match': '"nope"' } }), 412],
    ['an ICE restart (another ufrag)', await http('PATCH', session.location, { body: frag('restart1'), type: TRICKLE }), 422],
    ['Content-Type application/sdp', await http('PATCH', session.location, { body: frag(ufrag), type: 'application/sdp' }), 415],
    ['a body that is no fragment', await http('PATCH', session.location, { body: 'rm -rf /\r\n', type: TRICKLE }), 400],
  ];
  for (const [what, res, status] of /** @type {[string, Awaited<ReturnType<typeof http>>, number][]} */ (patches)) {
    t.diagnostic(`PATCH, ${what}: ${res.status} ${res.text.trim()}`);
    assert.equal(res.status, status, `PATCH, ${what}: ${res.status} ${res.text}`);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
  }
  // None of that disturbed the media.
  const flow = await until('Vera to keep getting GStreamer after the PATCHes', async () => {
    const f = await mediaFlowing(vera, [id], { ms: 1000 });
    return f.ok ? f : null;
  }, { timeout: 10_000, interval: 0 });
  t.diagnostic(`after the PATCHes, over 1 s: ${JSON.stringify(flow.deltas)}`);

  // DELETE from here, not from the publisher: 200, the tile goes, and the session is no more.
  const first = await http('DELETE', session.location);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.headers.get('access-control-allow-origin'), '*');
  await tile.waitFor({ state: 'detached', timeout: 10_000 });
  const again = await http('DELETE', session.location);
  assert.equal(again.status, 404, `a second DELETE: ${again.status} ${again.text}`);
  const patch = await http('PATCH', session.location, { body: frag(ufrag), type: TRICKLE });
  assert.equal(patch.status, 404, `PATCH after DELETE: ${patch.status}`);
  await until('the server to hold only Vera', async () => {
    const s = await serverStats();
    return s.participants === 1 && s.http_sessions === 0 ? s : null;
  }, { timeout: 5000 });

  // The publisher's own DELETE at the end finds nothing either.
  const { result } = await gst.stop();
  t.diagnostic(`publisher: ${JSON.stringify(result)}`);
  assert.equal(result.status, 201);
  assert.equal(result.delete_status, 404);
});

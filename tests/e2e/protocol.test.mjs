// The signaling protocol of docs/protocol.md, spoken from node to the real binary (no browser).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startServer } from './helpers.mjs';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;

before(async () => {
  // A short grace period for broken sockets (docs/protocol.md, "Reconnecting"): the roster
  // test waits it out.
  server = await startServer('protocol', { args: ['--http', '127.0.0.1:0', '--rtc', '127.0.0.1:0', '--no-turn', '--reconnect-grace', '2s'] });
});

after(async () => {
  await server?.stop();
});

const MiB = 1024 * 1024;

/**
 * A signaling connection with a queue of received messages.
 * @param {string} url
 */
async function connect(url) {
  const ws = new WebSocket(url, { maxPayload: 16 * MiB });
  /** @type {any[]} */
  const queue = [];
  /** @type {((m: any) => void)[]} */
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const msg = isBinary ? { binary: true } : JSON.parse(data.toString());
    const w = waiters.shift();
    if (w) w(msg);
    else queue.push(msg);
  });
  /** @type {Promise<{code: number, reason: string}>} */
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  const c = {
    ws,
    closed,
    /** @param {object | string} msg */
    send(msg) {
      ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    },
    /** The next message from the server (fails after `ms`). */
    next(ms = 5000) {
      if (queue.length) return Promise.resolve(queue.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.indexOf(done);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no message within ${ms} ms`));
        }, ms);
        /** @param {any} m */
        const done = (m) => { clearTimeout(timer); resolve(m); };
        waiters.push(done);
      });
    },
    /** Expect the next message to be an `error` with `code`. */
    async expectError(code, request) {
      const m = await c.next();
      assert.equal(m.type, 'error', `expected error ${code}, got ${JSON.stringify(m)}`);
      assert.equal(m.code, code, `expected error ${code}, got ${JSON.stringify(m)}`);
      assert.equal(typeof m.message, 'string');
      if (request !== undefined) assert.equal(m.request, request);
      return m;
    },
    /** Ping and expect the matching pong: the connection is alive and in order. */
    async roundTrip(id) {
      c.send({ type: 'ping', id });
      const m = await c.next();
      assert.deepEqual(m, { type: 'pong', id }, `expected pong ${id}, got ${JSON.stringify(m)}`);
    },
    /** Join and expect `joined`. */
    async join(room, name) {
      c.send({ type: 'join', room, name, protocol: 1 });
      const m = await c.next();
      assert.equal(m.type, 'joined', `expected joined, got ${JSON.stringify(m)}`);
      return m;
    },
    close() {
      ws.close();
    },
  };
  return c;
}

test('malformed messages get an error and the socket stays open', { timeout: 20_000 }, async () => {
  const c = await connect(server.wsUrl);
  c.send('{"type": "join", "room": ');
  await c.expectError('bad_message');
  await c.roundTrip(1);
  c.send('[1, 2, 3]');
  await c.expectError('bad_message');
  c.send({ type: 'join', room: 5, name: 'x' });
  await c.expectError('bad_message');
  c.send({ type: 'dance', room: 'x' });
  await c.expectError('unknown_message');
  c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
  await c.expectError('bad_message');
  await c.roundTrip(2);
  c.send({ type: 'ping' });
  assert.deepEqual(await c.next(), { type: 'pong' });
  c.close();
});

test('a frame over 1 MiB closes with 1009; one of exactly 1 MiB is fine', { timeout: 20_000 }, async () => {
  const c = await connect(server.wsUrl);
  const head = '{"type":"ping","id":3,"pad":"';
  const exact = head + 'x'.repeat(MiB - head.length - 2) + '"}';
  assert.equal(Buffer.byteLength(exact), MiB);
  c.send(exact);
  assert.deepEqual(await c.next(), { type: 'pong', id: 3 });

  c.send(exact.replace('"pad":"', '"pad":"x'));
  const { code } = await c.closed;
  assert.equal(code, 1009);
});

test('invalid room and name are refused, then a valid join works on the same socket', { timeout: 20_000 }, async () => {
  const c = await connect(server.wsUrl);
  for (const room of ['', 'has space', 'x'.repeat(65), 'ü', '<script>']) {
    c.send({ type: 'join', room, name: 'Ada' });
    await c.expectError('invalid_room', 'join');
  }
  for (const name of ['', '   ', 'a\u0007b', 'n'.repeat(65)]) {
    c.send({ type: 'join', room: 'proto-names', name });
    await c.expectError('invalid_name', 'join');
  }
  c.send({ type: 'join', room: 'proto-names', name: 'Ada', protocol: 99 });
  await c.expectError('unsupported_version', 'join');
  const joined = await c.join('proto-names', '  Ada  ');
  assert.equal(joined.protocol, 1);
  assert.equal(joined.room, 'proto-names');
  assert.equal(joined.participant.name, 'Ada', 'the name is trimmed');
  assert.equal(typeof joined.participant.id, 'string');
  assert.deepEqual(joined.participants, []);
  assert.ok(Array.isArray(joined.iceServers));
  c.send({ type: 'join', room: 'proto-names', name: 'Ada' });
  await c.expectError('already_joined', 'join');
  await c.roundTrip(4);
  c.close();
});

test('messages before join get not_joined; ping works', { timeout: 20_000 }, async () => {
  const c = await connect(server.wsUrl);
  await c.roundTrip(5);
  c.send({ type: 'offer', sdp: 'v=0\r\n' });
  await c.expectError('not_joined', 'offer');
  c.send({ type: 'mute', track: '0', muted: true });
  await c.expectError('not_joined', 'mute');
  await c.roundTrip(6);
  c.close();
});

test('after join: bad SDP, stale answer, unknown track, bad candidate; the session lives on', { timeout: 20_000 }, async () => {
  const c = await connect(server.wsUrl);
  await c.join('proto-errors', 'Ada');
  c.send({ type: 'offer', sdp: 'this is not SDP' });
  await c.expectError('invalid_sdp', 'offer');
  await c.roundTrip(7);
  c.send({ type: 'answer', id: 999_999, sdp: 'v=0\r\n' });
  await c.expectError('stale_answer', 'answer');
  c.send({ type: 'mute', track: 'no-such-track', muted: true });
  await c.expectError('unknown_track', 'mute');
  c.send({ type: 'candidate', candidate: { candidate: 'candidate:garbage', sdpMid: '0', sdpMLineIndex: 0 } });
  await c.expectError('invalid_candidate', 'candidate');
  // End of candidates is accepted silently.
  c.send({ type: 'candidate', candidate: null });
  c.send({ type: 'candidate', candidate: { candidate: '', sdpMid: '0' } });
  await c.roundTrip(8);
  c.close();
});

test('roster: joined lists the others, joins and leaves are announced', { timeout: 20_000 }, async () => {
  const a = await connect(server.wsUrl);
  const ja = await a.join('proto-roster', 'Ada');
  const b = await connect(server.wsUrl);
  const jb = await b.join('proto-roster', 'Grace');
  assert.deepEqual(jb.participants.map((p) => [p.id, p.name]), [[ja.participant.id, 'Ada']]);
  assert.notEqual(jb.participant.id, ja.participant.id);

  const pj = await a.next();
  assert.equal(pj.type, 'participant_joined');
  assert.equal(pj.participant.id, jb.participant.id);
  assert.equal(pj.participant.name, 'Grace');

  // leave: closed with 1000, the others told with reason "left".
  b.send({ type: 'leave' });
  assert.equal((await b.closed).code, 1000);
  assert.deepEqual(await a.next(), { type: 'participant_left', participant: jb.participant.id, reason: 'left' });

  // A socket closed without `leave` (a tab closed: a close frame): reason "disconnected", at once.
  const c = await connect(server.wsUrl);
  const jc = await c.join('proto-roster', 'Linus');
  assert.equal((await a.next()).type, 'participant_joined');
  c.ws.close();
  assert.deepEqual(await a.next(), { type: 'participant_left', participant: jc.participant.id, reason: 'disconnected' });

  // A socket that breaks (no close frame): the place is kept while it may reconnect, and left
  // when the grace period (2 s here) has passed.
  const d = await connect(server.wsUrl);
  const jd = await d.join('proto-roster', 'Dennis');
  assert.equal((await a.next()).type, 'participant_joined');
  d.ws.terminate();
  assert.deepEqual(await a.next(), { type: 'participant_reconnecting', participant: jd.participant.id });
  assert.deepEqual(await a.next(5000), { type: 'participant_left', participant: jd.participant.id, reason: 'disconnected' });
  a.close();
});

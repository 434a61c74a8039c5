#!/usr/bin/env node
// A stand-in for the confab binary, for developing web/ and the e2e suite without the Rust
// server: the same command line (--http ADDR --rtc ADDR), the same page URL line, the
// signaling protocol of docs/protocol.md from node (package `ws`), and media relayed by
// RTCPeerConnections in a headless chromium page (the polite peer of perfect negotiation).
// It is slow and only as correct as needed to exercise the client; it is not the product.
//
//   CONFAB_BIN=tests/e2e/mock/confab-mock.mjs tests/e2e/run.sh

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { CHROMIUM_ARGS } from '../helpers.mjs';
import { chromium } from 'playwright-core';
import { installSfu } from './sfu-page.mjs';

const webDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'web');
const argv = process.argv.slice(2);
const httpAddr = argv[argv.indexOf('--http') + 1] || '127.0.0.1:0';
const [host, port] = httpAddr.split(':');

// ---------------------------------------------------------------- media, in chromium

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required'] });
const sfu = await (await browser.newContext()).newPage();
/** @type {Map<string, Session>} */
const sessions = new Map();
await sfu.exposeFunction('toNode', (pid, msg) => sessions.get(pid)?.fromSfu(msg));
await sfu.evaluate(installSfu);

// ---------------------------------------------------------------- http

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };
const server = http.createServer((req, res) => {
  const name = new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/$/, '/index.html');
  const file = path.join(webDir, path.normalize(name));
  if (!file.startsWith(webDir) || !['/index.html', '/app.js', '/protocol.js', '/style.css'].includes(name)) {
    res.writeHead(404).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
  res.end(fs.readFileSync(file));
});

// ---------------------------------------------------------------- signaling

const ROOM_RE = /^[A-Za-z0-9._-]{1,64}$/;
/** @type {Map<string, Set<Session>>} */
const rooms = new Map();
let nextId = 1;

class Session {
  /** @param {import('ws').WebSocket} ws */
  constructor(ws) {
    this.ws = ws;
    this.id = `P${(nextId++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    /** @type {string | null} */
    this.room = null;
    this.name = '';
    /** @type {{id: string, kind: string, source: string, muted: boolean}[]} */
    this.tracks = [];
    /** @type {Record<string, {source?: string, muted?: boolean}>} */
    this.meta = {};
  }

  info() {
    return { id: this.id, name: this.name, tracks: this.tracks };
  }

  send(msg) {
    if (this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
  }

  others() {
    return [...(rooms.get(this.room ?? '') ?? [])].filter((s) => s !== this);
  }

  broadcast(msg) {
    for (const s of this.others()) s.send(msg);
  }

  error(code, message, request) {
    this.send({ type: 'error', code, message, ...(request ? { request } : {}) });
  }

  /** A message from the SFU page for this participant. */
  fromSfu(msg) {
    if (msg.type === '_published') {
      const m = this.meta[msg.track.id] ?? {};
      const track = { ...msg.track, source: m.source ?? (msg.track.kind === 'audio' ? 'microphone' : 'camera'), muted: m.muted ?? false };
      this.tracks.push(track);
      this.broadcast({ type: 'track_published', participant: this.id, track });
      return { source: track.source, muted: track.muted };
    }
    this.send(msg);
    return null;
  }

  async onMessage(data, isBinary) {
    if (isBinary) return this.error('bad_message', 'binary frames are not accepted');
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch {
      return this.error('bad_message', 'not JSON');
    }
    if (!msg || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.type !== 'string') {
      return this.error('bad_message', 'not a message object');
    }
    const t = msg.type;
    if (!['join', 'offer', 'answer', 'candidate', 'mute', 'leave', 'ping'].includes(t)) {
      return this.error('unknown_message', `unknown type ${t}`, t);
    }
    if (t === 'ping') return this.send(msg.id === undefined ? { type: 'pong' } : { type: 'pong', id: msg.id });
    if (t === 'join') return this.join(msg);
    if (!this.room) return this.error('not_joined', 'join first', t);
    switch (t) {
      case 'offer':
        if (typeof msg.sdp !== 'string') return this.error('bad_message', 'sdp', t);
        Object.assign(this.meta, msg.tracks ?? {});
        try {
          await sfu.evaluate(([pid, sdp]) => window.sfu.clientOffer(pid, sdp), [this.id, msg.sdp]);
        } catch (e) {
          return this.error('invalid_sdp', String(e).slice(0, 200), t);
        }
        return;
      case 'answer': {
        const r = await sfu.evaluate(([pid, id, sdp]) => window.sfu.clientAnswer(pid, id, sdp), [this.id, msg.id, msg.sdp])
          .catch((e) => `invalid_sdp ${e}`);
        if (r === 'stale') return this.error('stale_answer', 'not the outstanding offer', t);
        if (r) return this.error('invalid_sdp', r, t);
        return;
      }
      case 'candidate': {
        if (!msg.candidate || !msg.candidate.candidate) return;
        const ok = await sfu.evaluate(([pid, c]) => window.sfu.clientCandidate(pid, c), [this.id, msg.candidate]);
        if (!ok) this.error('invalid_candidate', 'bad candidate', t);
        return;
      }
      case 'mute': {
        const track = this.tracks.find((x) => x.id === msg.track);
        if (!track) return this.error('unknown_track', `no track ${msg.track}`, t);
        if (track.muted === msg.muted) return;
        track.muted = msg.muted;
        await sfu.evaluate(([pid, id, m]) => window.sfu.mute(pid, id, m), [this.id, msg.track, msg.muted]);
        this.broadcast({ type: msg.muted ? 'track_muted' : 'track_unmuted', participant: this.id, track: msg.track });
        return;
      }
      case 'leave':
        await this.gone('left');
        this.ws.close(1000);
        return;
    }
  }

  async join(msg) {
    if (this.room) return this.error('already_joined', 'already joined', 'join');
    if (typeof msg.room !== 'string' || typeof msg.name !== 'string') return this.error('bad_message', 'room, name', 'join');
    if (msg.protocol !== undefined && msg.protocol !== 1) return this.error('unsupported_version', 'speaks 1', 'join');
    if (!ROOM_RE.test(msg.room)) return this.error('invalid_room', 'bad room', 'join');
    const name = msg.name.trim();
    // eslint-disable-next-line no-control-regex
    if (!name || [...name].length > 64 || /[\u0000-\u001f\u007f-\u009f]/.test(name)) return this.error('invalid_name', 'bad name', 'join');
    this.room = msg.room;
    this.name = name;
    const others = this.others();
    if (!rooms.has(this.room)) rooms.set(this.room, new Set());
    rooms.get(this.room)?.add(this);
    sessions.set(this.id, this);
    this.send({ type: 'joined', protocol: 1, room: this.room, participant: this.info(), participants: others.map((s) => s.info()), iceServers: [] });
    this.broadcast({ type: 'participant_joined', participant: this.info() });
    await sfu.evaluate(([pid, room]) => window.sfu.addPeer(pid, room), [this.id, this.room]);
  }

  async gone(reason) {
    if (!this.room) return;
    const room = this.room;
    for (const t of this.tracks) this.broadcast({ type: 'track_unpublished', participant: this.id, track: t.id });
    this.broadcast({ type: 'participant_left', participant: this.id, reason });
    rooms.get(room)?.delete(this);
    if (rooms.get(room)?.size === 0) rooms.delete(room);
    this.room = null;
    sessions.delete(this.id);
    await sfu.evaluate((pid) => window.sfu.removePeer(pid), this.id).catch(() => {});
  }
}

const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
server.on('upgrade', (req, socket, head) => {
  if (new URL(req.url ?? '/', 'http://x').pathname !== '/ws') {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const s = new Session(ws);
    let chain = Promise.resolve();
    ws.on('message', (data, isBinary) => {
      chain = chain.then(() => s.onMessage(data, isBinary)).catch((e) => console.error('mock:', e));
    });
    ws.on('close', () => { chain = chain.then(() => s.gone('disconnected')); });
    ws.on('error', () => {});
  });
});

server.listen(Number(port), host, () => {
  const addr = /** @type {import('node:net').AddressInfo} */ (server.address());
  console.log(`confab-mock listening on http://${host}:${addr.port}/`);
});

const stop = async () => {
  await browser.close().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

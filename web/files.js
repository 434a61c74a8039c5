// File transfer over the client's reliable data channel (protocol.js `send`), through the
// server or, in a peer-to-peer room, directly, to the room or to one participant
// (docs/protocol.md, "Files"). No DOM here: the chat panel (chat.js) draws the transfers.
//
// The sender reads the file a slice at a time, so memory stays bounded whatever its size, and
// sends it in chunks of CHUNK bytes, held back three ways: by the data channel's queue
// (bufferedAmount), by a pace under the server's per-sender rate, and by the receivers'
// acknowledgements (at most WINDOW bytes unacknowledged by the slowest), so a slow receiver
// slows the sender instead of losing data. Each chunk is hashed (SHA-256) on both sides; the
// digest of the chunk digests, sent at the end, checks the whole file on arrival, with its size.

/** @typedef {import('./protocol.js').ConfabClient} ConfabClient */
/** @typedef {import('./protocol.js').DataDetail} DataDetail */

/** File bytes per chunk message (the 8-byte id and the frame header fit in 64 KiB beside it). */
export const CHUNK = 60 * 1024;
/** Bytes a receiver may have unacknowledged; it acknowledges every ACK_EVERY. */
const WINDOW = 4 * 1024 * 1024;
const ACK_EVERY = 1024 * 1024;
/** The sender's pace, bytes a second: under the server's 8 MiB/s per sender. */
const RATE = 6 * 1024 * 1024;
/** The data channel's queue is refilled when under this. */
const QUEUE_HIGH = 1024 * 1024;
/** A receiver moves what it holds into a Blob every so many bytes (the browser may page it out). */
const BLOB_EVERY = 16 * 1024 * 1024;
const ID_BYTES = 8;
/** How long a sender waits for the first receiver to take its offer. */
const ACCEPT_WAIT_MS = 5000;

/**
 * One transfer, as the page shows it.
 * @typedef {object} Transfer
 * @property {string} id
 * @property {'out' | 'in'} direction
 * @property {string} name
 * @property {number} size
 * @property {string} mime
 * @property {string} peer for 'out': the recipient's id or '' (the room); for 'in': the sender's
 * @property {number} done bytes sent (out) or received (in)
 * @property {number} acked for 'out': bytes every receiver has acknowledged
 * @property {'sending' | 'receiving' | 'done' | 'failed' | 'cancelled'} state
 * @property {string} [error] why it failed
 * @property {boolean} verified for a finished 'in': the size and digest matched
 * @property {Blob | null} blob for a finished 'in': the file
 */

const toHex = (/** @type {ArrayBuffer | Uint8Array} */ b) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

/** @param {string} hex */
const fromHex = (hex) => new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));

/** SHA-256 of `data`, or null where the browser has no WebCrypto (an insecure context). */
async function sha256(/** @type {Uint8Array} */ data) {
  if (!globalThis.crypto?.subtle) return null;
  return new Uint8Array(await crypto.subtle.digest('SHA-256', /** @type {BufferSource} */ (data)));
}

/**
 * The digest of a list of chunk digests, as hex; '' without WebCrypto.
 * @param {Uint8Array[]} digests
 */
async function digestOf(digests) {
  const all = new Uint8Array(digests.length * 32);
  digests.forEach((d, i) => all.set(d, i * 32));
  const d = await sha256(all);
  return d ? toHex(d) : '';
}

/**
 * The transfers of one call. Events: `update` (detail: the Transfer that changed).
 */
export class FileTransfers extends EventTarget {
  /** @param {() => ConfabClient | null} getClient */
  constructor(getClient) {
    super();
    this.getClient = getClient;
    /** @type {Map<string, Transfer>} */
    this.transfers = new Map();
    /** Per outgoing transfer: receivers' acknowledged bytes. @type {Map<string, Map<string, number>>} */
    this.#acks = new Map();
    /** Per incoming transfer: what is being received. @type {Map<string, {parts: BlobPart[], held: number, digests: Uint8Array[], chain: Promise<void>, lastAck: number}>} */
    this.#incoming = new Map();
    /** Wakes a sender waiting for acknowledgements or a cancel. @type {Map<string, () => void>} */
    this.#wake = new Map();
    /** Per outgoing transfer: who it is offered to. @type {Map<string, Set<string>>} */
    this.#wanted = new Map();
  }

  /** @type {Map<string, Set<string>>} */
  #wanted;

  /** @type {Map<string, Map<string, number>>} */
  #acks;
  /** @type {Map<string, {parts: BlobPart[], held: number, digests: Uint8Array[], chain: Promise<void>, lastAck: number}>} */
  #incoming;
  /** @type {Map<string, () => void>} */
  #wake;

  /** @param {Transfer} t */
  #update(t) {
    this.dispatchEvent(new CustomEvent('update', { detail: t }));
  }

  /**
   * Send `file` to the room (`to` empty) or to one participant. Resolves when it is sent and
   * acknowledged, cancelled or failed (see the transfer's state).
   * @param {File} file
   * @param {string} [to]
   * @returns {Transfer}
   */
  send(file, to = '') {
    const id = toHex(crypto.getRandomValues(new Uint8Array(ID_BYTES)));
    /** @type {Transfer} */
    const t = { id, direction: 'out', name: file.name, size: file.size, mime: file.type, peer: to, done: 0, acked: 0, state: 'sending', verified: false, blob: null };
    this.transfers.set(id, t);
    this.#update(t);
    this.#run(t, file).catch((e) => this.#fail(t, String(e?.message ?? e)));
    return t;
  }

  /**
   * @param {Transfer} t
   * @param {File} file
   */
  async #run(t, file) {
    const client = this.getClient();
    if (!client) throw new Error('not in a call');
    const to = t.peer || undefined;
    // Who may take it: the named participant, or everyone in the room now.
    const receivers = new Set(to ? [to] : client.participants.keys());
    if (receivers.size === 0) throw new Error('nobody else is here');
    this.#wanted.set(t.id, receivers);
    this.#acks.set(t.id, new Map());
    if (!client.send(JSON.stringify({ kind: 'file', id: t.id, name: t.name, size: t.size, mime: t.mime }), { to })) {
      throw new Error('not connected');
    }
    const idBytes = fromHex(t.id);
    /** @type {Uint8Array[]} */
    const digests = [];
    const start = performance.now();
    // Receivers accept (an acknowledgement of 0 bytes) as the offer arrives; those that never do
    // (a WHIP publisher has no data channel) are not waited for.
    const accepted = await this.#waitFor(t, () => (this.#acks.get(t.id)?.size ?? 0) >= 1, ACCEPT_WAIT_MS);
    if (!accepted && t.state === 'sending') throw new Error('nobody took the file (no answer to the offer)');
    for (let offset = 0; offset < t.size; offset += CHUNK) {
      if (t.state !== 'sending') return;
      // The pace, the channel's queue, and the slowest receiver's window.
      const due = start + (offset / RATE) * 1000;
      if (due > performance.now()) await sleep(due - performance.now());
      while (client.dataBufferedAmount > QUEUE_HIGH && t.state === 'sending') await sleep(10);
      await this.#waitFor(t, () => offset - this.#slowest(t) <= WINDOW);
      if (t.state !== 'sending') return;
      const chunk = new Uint8Array(await file.slice(offset, offset + CHUNK).arrayBuffer());
      const d = await sha256(chunk);
      if (d) digests.push(d);
      const frame = new Uint8Array(ID_BYTES + chunk.length);
      frame.set(idBytes);
      frame.set(chunk, ID_BYTES);
      if (!client.send(frame, { to })) throw new Error('the connection closed');
      t.done = offset + chunk.length;
      this.#update(t);
    }
    client.send(JSON.stringify({ kind: 'file-end', id: t.id, digest: await digestOf(digests) }), { to });
    // Done once every receiver has everything (or has gone).
    await this.#waitFor(t, () => this.#slowest(t) >= t.size);
    if (t.state === 'sending') {
      t.state = 'done';
      this.#update(t);
    }
  }

  /**
   * Wait until `ready()`, the transfer stops, or `limit` ms pass; whether `ready()` came true.
   * Acknowledgements and cancels wake it; it also looks every second.
   * @param {Transfer} t
   * @param {() => boolean} ready
   * @param {number} [limit]
   */
  async #waitFor(t, ready, limit = Infinity) {
    const end = performance.now() + limit;
    while (t.state === 'sending' && !ready()) {
      const left = end - performance.now();
      if (left <= 0) return false;
      await new Promise((resolve) => {
        this.#wake.set(t.id, () => resolve(undefined));
        setTimeout(resolve, Math.min(1000, left));
      });
    }
    return ready();
  }

  /**
   * The bytes the slowest remaining receiver acknowledged (receivers that left no longer count).
   * @param {Transfer} t
   */
  #slowest(t) {
    const acks = this.#acks.get(t.id);
    const here = this.getClient()?.participants;
    if (!acks) return t.size;
    for (const p of acks.keys()) if (here && !here.has(p)) acks.delete(p);
    t.acked = acks.size ? Math.min(...acks.values()) : t.size;
    return t.acked;
  }

  /**
   * Stop a transfer: an outgoing one tells its receivers; an incoming one tells its sender.
   * @param {string} id
   */
  cancel(id) {
    const t = this.transfers.get(id);
    if (!t || (t.state !== 'sending' && t.state !== 'receiving')) return;
    const client = this.getClient();
    client?.send(JSON.stringify({ kind: 'file-cancel', id }), { to: t.direction === 'in' ? t.peer : (t.peer || undefined) });
    t.state = 'cancelled';
    this.#incoming.delete(id);
    this.#wake.get(id)?.();
    this.#update(t);
  }

  /** A new call: stop what runs (the old call's peers are gone; nothing is sent) and forget all. */
  reset() {
    for (const t of this.transfers.values()) {
      if (t.state === 'sending' || t.state === 'receiving') t.state = 'cancelled';
      this.#wake.get(t.id)?.();
    }
    this.transfers.clear();
    this.#incoming.clear();
    this.#acks.clear();
    this.#wanted.clear();
    this.#wake.clear();
  }

  /**
   * @param {Transfer} t
   * @param {string} error
   */
  #fail(t, error) {
    if (t.state !== 'sending' && t.state !== 'receiving') return;
    t.state = 'failed';
    t.error = error;
    this.#incoming.delete(t.id);
    this.#update(t);
  }

  /**
   * A data message: handle it if it is about files. Returns whether it was.
   * @param {DataDetail} d
   * @returns {boolean}
   */
  onData(d) {
    if (!d.reliable) return false;
    if (typeof d.data !== 'string') {
      this.#chunk(d.from, d.data);
      return true;
    }
    /** @type {any} */
    let msg;
    try {
      msg = JSON.parse(d.data);
    } catch {
      return false;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.id !== 'string') return false;
    switch (msg.kind) {
      case 'file':
        this.#offered(d.from, msg);
        return true;
      case 'file-end':
        this.#ended(d.from, msg);
        return true;
      case 'file-ack': {
        const acks = this.#acks.get(msg.id);
        if (acks && this.#wanted.get(msg.id)?.has(d.from) && typeof msg.bytes === 'number') {
          acks.set(d.from, msg.bytes);
          this.#wake.get(msg.id)?.();
        }
        return true;
      }
      case 'file-cancel': {
        const t = this.transfers.get(msg.id);
        if (!t) return true;
        if (t.direction === 'in' && t.peer === d.from) {
          t.state = 'cancelled';
          t.error = 'the sender cancelled';
          this.#incoming.delete(t.id);
          this.#update(t);
        } else if (t.direction === 'out' && (t.state === 'sending')) {
          // A receiver stopped: it no longer holds the others back; with nobody left, the
          // transfer ends.
          const acks = this.#acks.get(t.id);
          acks?.delete(d.from);
          if (!acks?.size) {
            const name = this.getClient()?.participants.get(d.from)?.name ?? 'the receiver';
            t.state = 'cancelled';
            t.error = t.peer ? `${name} cancelled` : 'every receiver cancelled';
            this.#update(t);
          }
          this.#wake.get(t.id)?.();
        }
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * @param {string} from
   * @param {any} msg
   */
  #offered(from, msg) {
    if (!/^[0-9a-f]{16}$/.test(msg.id) || typeof msg.size !== 'number' || msg.size < 0 || this.transfers.has(msg.id)) return;
    /** @type {Transfer} */
    const t = {
      id: msg.id,
      direction: 'in',
      name: typeof msg.name === 'string' && msg.name ? msg.name.slice(0, 255) : 'file',
      size: msg.size,
      mime: typeof msg.mime === 'string' ? msg.mime.slice(0, 255) : '',
      peer: from,
      done: 0,
      acked: 0,
      state: 'receiving',
      verified: false,
      blob: null,
    };
    this.transfers.set(t.id, t);
    this.#incoming.set(t.id, { parts: [], held: 0, digests: [], chain: Promise.resolve(), lastAck: 0 });
    // Taken: the sender waits for this receiver from now on.
    this.getClient()?.send(JSON.stringify({ kind: 'file-ack', id: t.id, bytes: 0 }), { to: from });
    this.#update(t);
  }

  /**
   * @param {string} from
   * @param {Uint8Array} data
   */
  #chunk(from, data) {
    if (data.length < ID_BYTES) return;
    const id = toHex(data.subarray(0, ID_BYTES));
    const t = this.transfers.get(id);
    const inc = this.#incoming.get(id);
    if (!t || !inc || t.peer !== from || t.state !== 'receiving') return;
    const chunk = data.subarray(ID_BYTES);
    t.done += chunk.length;
    if (t.done > t.size) {
      this.#fail(t, `more than the ${t.size} bytes announced`);
      return;
    }
    inc.parts.push(/** @type {Uint8Array<ArrayBuffer>} */ (chunk));
    inc.held += chunk.length;
    if (inc.held >= BLOB_EVERY) {
      inc.parts = [new Blob(inc.parts)];
      inc.held = 0;
    }
    inc.chain = inc.chain.then(async () => {
      const d = await sha256(chunk);
      if (d) inc.digests.push(d);
    });
    if (t.done - inc.lastAck >= ACK_EVERY) {
      inc.lastAck = t.done;
      this.getClient()?.send(JSON.stringify({ kind: 'file-ack', id, bytes: t.done }), { to: from });
    }
    this.#update(t);
  }

  /**
   * @param {string} from
   * @param {any} msg
   */
  #ended(from, msg) {
    const t = this.transfers.get(msg.id);
    const inc = this.#incoming.get(msg.id);
    if (!t || !inc || t.peer !== from || t.state !== 'receiving') return;
    inc.chain = inc.chain.then(async () => {
      if (t.state !== 'receiving') return;
      if (t.done !== t.size) {
        this.#fail(t, `${t.done} of ${t.size} bytes arrived`);
        return;
      }
      const digest = await digestOf(inc.digests);
      if (digest && msg.digest && digest !== msg.digest) {
        this.#fail(t, 'the file arrived damaged (its SHA-256 digests differ)');
        return;
      }
      t.verified = Boolean(digest && msg.digest);
      t.blob = new Blob(inc.parts, { type: t.mime });
      this.#incoming.delete(t.id);
      t.state = 'done';
      this.getClient()?.send(JSON.stringify({ kind: 'file-ack', id: t.id, bytes: t.size }), { to: from });
      this.#update(t);
    });
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// @ts-check
// Reconnection (docs/protocol.md, "Reconnecting"): what ConfabClient needs to take its place back
// after its socket broke, kept apart from the client's state. No DOM code.

/** @typedef {import('./messages.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./messages.js').TrackInfo} TrackInfo */

/** How long the client tries to take its place back: a little longer than the server keeps it. */
export const RECONNECT_WINDOW_MS = 25_000;
/** A `ping` not answered this long means the socket is dead (a network change may not close it). */
export const PONG_TIMEOUT_MS = 4_000;
/** How long the media connection may stay `disconnected` before the client restarts ICE. */
export const ICE_RESTART_AFTER_MS = 2_000;

/**
 * Wait before reconnect attempt `n` (0 first): 0.25 s, 0.5 s, then every second.
 * @param {number} n
 */
export function retryDelay(n) {
  return Math.min(1_000, 250 * 2 ** n);
}

/**
 * Close codes after which a lost socket is not worth a reconnect: the client left (1000), the
 * server shuts down (1001), refused a frame (1009) or failed (1011), removed us (4002), or
 * another socket took our place (4003).
 * @param {number} code
 */
export function final(code) {
  return [1000, 1001, 1009, 1011, 4002, 4003].includes(code);
}

/**
 * What changed in the room while we were away: `before` is our roster, `after` the one of the
 * fresh `joined`. Tracks whose id starts with `keep` (those received directly, not through the
 * server) stay with their participant. Returns the new roster and the changes, for the events
 * listeners expect.
 * @param {Map<string, ParticipantInfo>} before
 * @param {ParticipantInfo[]} after
 * @param {string} keep
 */
export function rosterChanges(before, after, keep) {
  /** @type {Map<string, ParticipantInfo>} */
  const roster = new Map();
  /** @type {ParticipantInfo[]} */
  const joined = [];
  /** @type {{participant: string, track: TrackInfo}[]} */
  const published = [];
  /** @type {{participant: string, track: string}[]} */
  const unpublished = [];
  for (const p of after) {
    const old = before.get(p.id);
    if (!old) {
      roster.set(p.id, p);
      joined.push(p);
      continue;
    }
    const direct = old.tracks.filter((t) => t.id.startsWith(keep));
    const server = old.tracks.filter((t) => !t.id.startsWith(keep));
    for (const t of server) {
      if (!p.tracks.some((n) => n.id === t.id)) unpublished.push({ participant: p.id, track: t.id });
    }
    for (const t of p.tracks) {
      const had = server.find((o) => o.id === t.id);
      if (!had || had.muted !== t.muted) published.push({ participant: p.id, track: t });
    }
    roster.set(p.id, { ...p, tracks: [...p.tracks, ...direct] });
  }
  const left = [...before.keys()].filter((id) => !roster.has(id));
  return { roster, joined, left, published, unpublished };
}

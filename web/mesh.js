// @ts-check
// The direct connections of a peer-to-peer room (docs/protocol.md, "Peer-to-peer rooms"): one
// RTCPeerConnection per other participant, negotiated over `signal` messages, and the move of
// media between them and the server in an `auto` room. No DOM code; used by protocol.js.
//
// Each pair negotiates by perfect negotiation, the participant with the smaller id polite. Each
// side sends its own tracks on `sendonly` transceivers and offers them itself, with their
// sources and mute states by mid (`tracks`). The remote tracks reach the app as those of the
// server do: `remotetrack`/`remotetrackended` and `track_*` events, and entries (ids `p2p-<mid>`)
// in the participant's `tracks`.
//
// Each connection also carries the two data channels of protocol.js's `send`, pre-negotiated
// (ids 0 and 1, made by both sides), so that data between two participants rides the direct
// connection while it is open (docs/protocol.md, "Data on direct connections").

import { FlowWatch } from './flow.js';
import { DATA_LOSSY, DATA_LOW_WATER, DATA_RELIABLE } from './messages.js';

/** @typedef {import('./messages.js').MediaPath} MediaPath */
/** @typedef {import('./messages.js').SignalData} SignalData */
/** @typedef {import('./messages.js').TrackInfo} TrackInfo */
/** @typedef {import('./messages.js').TrackSource} TrackSource */
/** @typedef {import('./messages.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./messages.js').PublishedTrackMeta} PublishedTrackMeta */
/** @typedef {import('./protocol.js').ConfabEventMap} ConfabEventMap */

/** How long an offer may wait for its answer before the direct connection is given up. */
const ANSWER_TIMEOUT_MS = 10_000;
/** How long a direct connection may stay `disconnected` before its ICE restarts. */
const DISCONNECTED_RESTART_MS = 3_000;
/**
 * How long a negotiated connection may stay `new` (no ICE at all) before its ICE restarts.
 * Chromium sometimes never gathers a candidate on a connection whose local offer was rolled
 * back right after it was made (a collision): the restart gathers afresh.
 */
const STUCK_RESTART_MS = 3_000;
/**
 * How long the polite side of a new pair waits for the other's offer before offering its own
 * tracks: the impolite side offers at once, so the two offers rarely cross.
 */
const POLITE_START_MS = 1_000;
/**
 * How long a peer's media must have come through the server, without the server holding it back,
 * before we tell the peer so (and the direct connection may close): the server's first estimate
 * of a new downlink sometimes pauses a video it has just started.
 */
const SERVER_SETTLE_MS = 1_000;
/**
 * A direct connection no longer needed for media closes only once its data channels have sent
 * what was queued (see `Peer.dataDrained`); it looks again this often.
 */
const DATA_DRAIN_CHECK_MS = 250;
/** The pre-negotiated stream ids of the data channels (docs/protocol.md). */
const DIRECT_RELIABLE_ID = 0;
const DIRECT_LOSSY_ID = 1;

/** The ids of remote tracks received directly: `p2p-<mid>`, never an id of the server's. */
export const DIRECT_TRACK_PREFIX = 'p2p-';

/**
 * How media travels for us now: `switching` while it moves from one path to the other.
 * @typedef {MediaPath | 'switching'} PathState
 */

/**
 * A local track as the mesh sees it (ConfabClient's LocalTrack).
 * @typedef {object} MeshLocal
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream
 * @property {TrackSource} source
 * @property {boolean} muted
 */

/**
 * What the mesh needs of its client.
 * @typedef {object} MeshHost
 * @property {string} self our participant id
 * @property {RTCConfiguration} config of every direct connection (the iceServers of `joined`)
 * @property {(to: string, data: SignalData) => void} send a `signal`
 * @property {<K extends keyof ConfabEventMap>(type: K, detail: ConfabEventMap[K]) => void} emit
 * @property {() => MeshLocal[]} locals the local tracks to send
 * @property {() => string[]} others the ids of the other participants
 * @property {(id: string) => ParticipantInfo | undefined} participant
 * @property {(id: string, source: TrackSource) => boolean} serverDelivers whether media of that
 *   source of that participant arrives through the server now
 * @property {() => boolean} publishing whether we publish our tracks to the server
 * @property {() => void} stopPublishing stop publishing our tracks to the server
 * @property {(state: PathState) => void} onState the path state changed
 * @property {(from: string, reliable: boolean, raw: unknown) => void} onData a message on a
 *   direct data channel
 * @property {() => void} onDataLow a direct reliable channel's queue fell under its threshold
 */

/**
 * A remote track received on a direct connection.
 * @typedef {object} DirectTrack
 * @property {TrackInfo} info as in the participant's `tracks`
 * @property {MediaStreamTrack} mediaTrack
 */

/** The direct connections of one client: created by ConfabClient in `p2p` and `auto` rooms. */
export class Mesh {
  /** @type {Map<string, Peer>} */
  peers = new Map();
  /** @type {PathState} */
  state;
  /** Which remote tracks carry media, direct ones and (the client's) the server's alike. */
  flow = new FlowWatch();
  /** A look again at connections waiting for their data channels to drain, if one is due. @type {ReturnType<typeof setTimeout> | undefined} */
  #drainTimer;
  /** Whether `check` runs now, and whether it must run again when done. */
  #checking = false;
  #again = false;

  /**
   * @param {MeshHost} host
   * @param {'p2p' | 'auto'} mode the room's mode
   * @param {MediaPath} path how media travels in the room now
   */
  constructor(host, mode, path) {
    this.host = host;
    this.mode = mode;
    this.path = path;
    this.state = path;
  }

  /**
   * The open direct data channel to `id`, reliable or not; null when there is none.
   * @param {string} id
   * @param {boolean} reliable
   * @returns {RTCDataChannel | null}
   */
  channel(id, reliable) {
    const ch = this.peers.get(id)?.channels?.[reliable ? 'reliable' : 'lossy'];
    return ch && ch.readyState === 'open' ? ch : null;
  }

  /** The most bytes queued on any direct reliable channel (for back-pressure). */
  bufferedAmount() {
    let most = 0;
    for (const p of this.peers.values()) most = Math.max(most, p.channels?.reliable.bufferedAmount ?? 0);
    return most;
  }

  /** The direct connections by participant id (for stats and tests). */
  connections() {
    return new Map([...this.peers].map(([id, p]) => [id, p.pc]));
  }

  /**
   * How media travels in the room now. On `p2p`, connect to everyone; on `sfu`, keep each
   * direct connection until both sides receive each other through the server.
   * @param {MediaPath} path
   */
  setPath(path) {
    this.path = path;
    if (path === 'p2p') {
      for (const id of this.host.others()) this.#connect(id).begin();
    }
    this.check();
  }

  /** @param {string} id a participant who joined */
  joined(id) {
    // In an `auto` room the newcomer connects to us (it learns of us in `joined`).
    if (this.mode === 'p2p' && this.path === 'p2p') this.#connect(id).begin();
    this.check();
  }

  /** @param {string} id a participant who left: its connection closes without a word */
  left(id) {
    this.peers.get(id)?.close(false);
    this.check();
  }

  /**
   * A `signal` from another participant.
   * @param {string} from
   * @param {SignalData} data
   */
  onSignal(from, data) {
    if (!data || typeof data !== 'object') return;
    let peer = this.peers.get(from);
    if (!peer) {
      if (data.bye || data.description?.type !== 'offer') return;
      if (this.path !== 'p2p' || !this.host.participant(from)) {
        // Not a connection we want: say so, so that the offerer stops waiting.
        this.host.send(from, { bye: true });
        return;
      }
      // Our own tracks follow in an offer of ours once the peer's is answered.
      peer = this.#connect(from);
    }
    peer.receive(data);
  }

  /** @param {MeshLocal} local a track published: sent on every direct connection */
  addLocal(local) {
    for (const p of this.peers.values()) p.addLocal(local);
  }

  /** @param {MeshLocal} local a track unpublished */
  removeLocal(local) {
    for (const p of this.peers.values()) p.removeLocal(local);
  }

  /**
   * Send `next` in place of the track of `local` on every direct connection.
   * @param {MeshLocal} local
   * @param {MediaStreamTrack} next
   */
  async replaceLocal(local, next) {
    await Promise.all([...this.peers.values()].map((p) => p.transceivers.get(local)?.sender.replaceTrack(next)));
  }

  /** A local track was muted or unmuted: tell every peer. */
  mutedChanged() {
    for (const p of this.peers.values()) p.sendTracks();
  }

  /**
   * Re-evaluate the switch between paths: tell each peer on which path we receive it, close
   * the direct connections no longer needed, stop publishing to the server when every peer
   * receives us directly, and update `state`. Called whenever any of that may have changed.
   */
  check() {
    // Closing a connection checks again: run once more after, rather than inside.
    if (this.#checking) {
      this.#again = true;
      return;
    }
    this.#checking = true;
    try {
      do {
        this.#again = false;
        this.#check();
      } while (this.#again);
    } finally {
      this.#checking = false;
    }
  }

  #check() {
    const host = this.host;
    for (const p of [...this.peers.values()]) {
      if (this.path === 'sfu') {
        if (p.told !== 'sfu' && this.#serverSettled(p)) p.tell('sfu');
        if (p.told === 'sfu' && p.heard === 'sfu') {
          if (p.dataDrained()) p.close(true);
          else this.#drainTimer ??= setTimeout(() => {
            this.#drainTimer = undefined;
            this.check();
          }, DATA_DRAIN_CHECK_MS);
        }
      } else if (p.told !== 'p2p' && this.#directDelivers(p)) {
        p.tell('p2p');
      }
    }
    const others = host.others();
    if (this.path === 'p2p' && host.publishing() && others.every((id) => this.peers.get(id)?.heard === 'p2p')) {
      host.stopPublishing();
    }
    /** @type {PathState} */
    let state = this.path;
    if (this.path === 'sfu' && this.peers.size > 0) state = 'switching';
    if (this.path === 'p2p' && (host.publishing() || others.some((id) => this.#serverTracks(id).length > 0))) state = 'switching';
    if (state !== this.state) {
      this.state = state;
      this.flow.setSwitching(state === 'switching');
      host.onState(state);
    }
  }

  /** Close every direct connection (the session ends). */
  close() {
    clearTimeout(this.#drainTimer);
    this.flow.close();
    for (const p of [...this.peers.values()]) p.close(false);
  }

  /**
   * The tracks of a participant published on the server (not muted: those send nothing).
   * @param {string} id
   */
  #serverTracks(id) {
    return (this.host.participant(id)?.tracks ?? []).filter((t) => !t.id.startsWith(DIRECT_TRACK_PREFIX) && !t.muted);
  }

  /**
   * Whether every track the peer sends us directly has come through the server too, for
   * SERVER_SETTLE_MS (at once when it sends us nothing directly).
   * @param {Peer} p
   */
  #serverSettled(p) {
    if (!p.liveTracks(false).every((t) => this.host.serverDelivers(p.id, t.info.source))) {
      p.serverSince = null;
      return false;
    }
    if (p.liveTracks(false).length === 0) return true;
    const now = performance.now();
    if (p.serverSince === null) {
      p.serverSince = now;
      setTimeout(() => this.check(), SERVER_SETTLE_MS);
    }
    return now - p.serverSince >= SERVER_SETTLE_MS;
  }

  /**
   * Whether every track the peer publishes on the server arrives directly too (at once when it
   * publishes nothing there).
   * @param {Peer} p
   */
  #directDelivers(p) {
    const live = p.liveTracks(true);
    return this.#serverTracks(p.id).every((t) => live.some((d) => d.info.source === t.source));
  }

  /**
   * The connection to `id`, made if missing.
   * @param {string} id
   * @returns {Peer}
   */
  #connect(id) {
    let peer = this.peers.get(id);
    if (!peer) {
      peer = new Peer(this, id);
      this.peers.set(id, peer);
    }
    return peer;
  }
}

/** One direct connection, to one other participant. */
class Peer {
  /** Whether this side is the polite one (the smaller id). */
  polite;
  makingOffer = false;
  ignoreOffer = false;
  settingAnswer = false;
  started = false;
  closed = false;
  /** Incoming signals, handled one at a time. @type {Promise<void>} */
  #chain = Promise.resolve();
  /** The data channels, made with the first of our tracks (see `start`). @type {{reliable: RTCDataChannel, lossy: RTCDataChannel} | null} */
  channels = null;
  /** Since when the data channels have had nothing queued (see `dataDrained`). @type {number | null} */
  #drainedSince = null;
  /** Our sending transceiver of each local track. @type {Map<MeshLocal, RTCRtpTransceiver>} */
  transceivers = new Map();
  /** What the peer last said of its sending m-lines, by mid. @type {Map<string, PublishedTrackMeta>} */
  #meta = new Map();
  /** The remote tracks announced, by mid. @type {Map<string, DirectTrack>} */
  remote = new Map();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #answerTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #restartTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #startTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #stuckTimer;
  /** ICE restarts made for a connection that never started (a few at most: see #watchStuck). */
  #stuckRestarts = 0;
  /** Our offer being made, if any. @type {Promise<void> | null} */
  #offering = null;
  /** The path on which we last told the peer we receive it. @type {MediaPath | null} */
  told = null;
  /** The path on which the peer last said it receives us. @type {MediaPath | null} */
  heard = null;
  /** Since when its media comes through the server (performance.now()). @type {number | null} */
  serverSince = null;

  /**
   * @param {Mesh} mesh
   * @param {string} id the other participant
   */
  constructor(mesh, id) {
    this.mesh = mesh;
    this.id = id;
    this.polite = mesh.host.self < id;
    const pc = new RTCPeerConnection(mesh.host.config);
    this.pc = pc;
    pc.onnegotiationneeded = () => {
      this.#offering = this.#offer();
    };
    pc.onsignalingstatechange = () => this.#watchStuck();
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return;
      const { sdpMid, sdpMLineIndex, usernameFragment } = candidate;
      this.#send({ candidate: { candidate: candidate.candidate, sdpMid, sdpMLineIndex, usernameFragment } });
    };
    pc.ontrack = (ev) => this.#announce(ev.transceiver);
    pc.onconnectionstatechange = () => this.#onConnectionState();
  }

  /**
   * A new pair: the impolite side sends its tracks at once, the polite one once it has answered
   * the other's first offer, or after POLITE_START_MS, whichever comes first.
   */
  begin() {
    if (!this.polite) this.start();
    else this.#startTimer = setTimeout(() => this.start(), POLITE_START_MS);
  }

  /** Send our local tracks on this connection, and open its data channels (once). */
  start() {
    clearTimeout(this.#startTimer);
    if (this.started || this.closed) return;
    this.started = true;
    this.#openData();
    for (const local of this.mesh.host.locals()) this.addLocal(local);
  }

  /**
   * The data channels, pre-negotiated: each side makes them with the same ids, so neither waits
   * for the other's to be announced. The first side's offer carries the SCTP m-line; the
   * other's, made after it answered, adds nothing to negotiate.
   */
  #openData() {
    const host = this.mesh.host;
    const reliable = this.pc.createDataChannel(DATA_RELIABLE, { negotiated: true, id: DIRECT_RELIABLE_ID });
    const lossy = this.pc.createDataChannel(DATA_LOSSY, { negotiated: true, id: DIRECT_LOSSY_ID, ordered: false, maxRetransmits: 0 });
    this.channels = { reliable, lossy };
    reliable.bufferedAmountLowThreshold = DATA_LOW_WATER;
    reliable.onbufferedamountlow = () => host.onDataLow();
    for (const ch of [reliable, lossy]) {
      ch.binaryType = 'arraybuffer';
      ch.onmessage = (ev) => {
        if (!this.closed) host.onData(this.id, ch === reliable, ev.data);
      };
    }
  }

  /**
   * Whether nothing has waited to be sent on the data channels for DATA_DRAIN_CHECK_MS (what
   * left the queue last has had that time to be acknowledged before the connection closes).
   */
  dataDrained() {
    const ch = this.channels;
    if (!ch || (ch.reliable.readyState !== 'open' && ch.lossy.readyState !== 'open')) return true;
    if (ch.reliable.bufferedAmount > 0 || ch.lossy.bufferedAmount > 0) {
      this.#drainedSince = null;
      return false;
    }
    const now = performance.now();
    this.#drainedSince ??= now;
    return now - this.#drainedSince >= DATA_DRAIN_CHECK_MS;
  }

  /** @param {MeshLocal} local */
  addLocal(local) {
    if (!this.started || this.closed || this.transceivers.has(local)) return;
    const t = this.pc.addTransceiver(local.track, { direction: 'sendonly', streams: [local.stream] });
    this.transceivers.set(local, t);
  }

  /** @param {MeshLocal} local */
  removeLocal(local) {
    const t = this.transceivers.get(local);
    if (!t) return;
    this.transceivers.delete(local);
    if (!this.closed) t.stop();
  }

  /** Our sending m-lines by mid, with their source and mute state. */
  #tracks() {
    /** @type {Record<string, PublishedTrackMeta>} */
    const tracks = {};
    for (const [local, t] of this.transceivers) {
      if (t.mid !== null && t.direction !== 'stopped') tracks[t.mid] = { source: local.source, muted: local.muted };
    }
    return tracks;
  }

  /** Tell the peer what our sending m-lines carry (a mute state changed). */
  sendTracks() {
    if (!this.closed) this.#send({ tracks: this.#tracks() });
  }

  /** @param {MediaPath} path tell the peer we receive it on `path` */
  tell(path) {
    this.told = path;
    this.#send({ receiving: path });
  }

  /**
   * The remote tracks of this connection that are not muted.
   * @param {boolean} arrived only those whose media flows already
   * @returns {DirectTrack[]}
   */
  liveTracks(arrived) {
    return [...this.remote.values()].filter((t) => !t.info.muted && (!arrived || this.mesh.flow.has(t.mediaTrack)));
  }

  /** @param {SignalData} data */
  #send(data) {
    if (!this.closed) this.mesh.host.send(this.id, data);
  }

  /** Perfect negotiation: offer our changes. */
  async #offer() {
    const pc = this.pc;
    try {
      this.makingOffer = true;
      await pc.setLocalDescription();
      const d = pc.localDescription;
      if (!d || this.closed) return;
      this.#send({ description: { type: d.type, sdp: d.sdp }, tracks: this.#tracks() });
      if (d.type === 'offer') this.#armAnswerTimer();
    } catch (e) {
      if (!this.closed) console.warn(`confab: offering to ${this.id} failed:`, e);
    } finally {
      this.makingOffer = false;
    }
  }

  #armAnswerTimer() {
    clearTimeout(this.#answerTimer);
    this.#answerTimer = setTimeout(() => {
      if (this.closed || this.pc.signalingState !== 'have-local-offer') return;
      // The other browser never answered: no direct connection to it.
      this.mesh.host.emit('peertimeout', { participant: this.id });
      this.close(true);
    }, ANSWER_TIMEOUT_MS);
  }

  /**
   * Handle a signal, after those before it.
   * @param {SignalData} data
   * @returns {Promise<void>}
   */
  receive(data) {
    this.#chain = this.#chain
      .then(() => this.#handle(data))
      .catch((e) => {
        if (!this.closed) console.warn(`confab: a signal from ${this.id} failed:`, e);
      });
    return this.#chain;
  }

  /** @param {SignalData} data */
  async #handle(data) {
    if (this.closed) return;
    if (data.bye) {
      this.close(false);
      return;
    }
    const pc = this.pc;
    if (data.tracks && typeof data.tracks === 'object') {
      this.#meta = new Map(Object.entries(data.tracks));
      if (!data.description) this.#syncRemote();
    }
    const d = data.description;
    if (d && (d.type === 'offer' || d.type === 'answer') && typeof d.sdp === 'string') {
      const readyForOffer = !this.makingOffer && (pc.signalingState === 'stable' || this.settingAnswer);
      const collision = d.type === 'offer' && !readyForOffer;
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      // Polite in a collision: let our offer be made before it is rolled back (a rollback
      // queued behind its making sometimes leaves Chromium's ICE without candidates).
      if (collision && this.#offering) await this.#offering;
      if (this.closed) return;
      if (d.type === 'answer' && pc.signalingState !== 'have-local-offer') return;
      this.settingAnswer = d.type === 'answer';
      try {
        // An offer in a collision rolls ours back (we are polite): it is answered instead.
        await pc.setRemoteDescription(d);
      } finally {
        this.settingAnswer = false;
      }
      clearTimeout(this.#answerTimer);
      if (d.type === 'offer') {
        await pc.setLocalDescription();
        const local = pc.localDescription;
        if (local && !this.closed) this.#send({ description: { type: local.type, sdp: local.sdp }, tracks: this.#tracks() });
        // The peer's first offer is answered: ours follows (see `begin`).
        this.start();
      }
      this.#syncRemote();
    }
    if (data.candidate && data.candidate.candidate) {
      try {
        await pc.addIceCandidate(data.candidate);
      } catch (e) {
        // A candidate of an offer we ignored: expected. Otherwise worth a warning.
        if (!this.ignoreOffer) console.warn(`confab: a candidate from ${this.id} was refused:`, e);
      }
    }
    if (data.receiving === 'p2p' || data.receiving === 'sfu') {
      this.heard = data.receiving;
    }
    this.mesh.check();
  }

  /** @param {RTCRtpTransceiver} t announce the remote track of `t`, if not yet */
  #announce(t) {
    const mid = t.mid;
    if (mid === null || this.closed || this.remote.has(mid)) return;
    const host = this.mesh.host;
    const mediaTrack = t.receiver.track;
    const kind = mediaTrack.kind === 'audio' ? 'audio' : 'video';
    const meta = this.#meta.get(mid);
    /** @type {TrackInfo} */
    const info = {
      id: DIRECT_TRACK_PREFIX + mid,
      kind,
      source: meta?.source ?? (kind === 'audio' ? 'microphone' : 'camera'),
      muted: meta?.muted ?? false,
    };
    this.remote.set(mid, { info, mediaTrack });
    this.mesh.flow.watch(t.receiver, (flowing) => {
      if (this.remote.get(mid)?.mediaTrack !== mediaTrack) return;
      host.emit('remoteflow', { participant: this.id, track: info.id, flowing });
      this.mesh.check();
    });
    const p = host.participant(this.id);
    if (p) p.tracks = [...p.tracks.filter((x) => x.id !== info.id), info];
    host.emit('track_published', { type: 'track_published', participant: this.id, track: { ...info } });
    host.emit('remotetrack', { participant: this.id, track: info.id, kind, mid, mediaTrack, path: 'p2p' });
  }

  /**
   * After a description: announce new remote tracks (ontrack does not fire for a re-used
   * m-line), end the ones whose m-line stopped, and apply mute changes.
   */
  #syncRemote() {
    if (this.closed) return;
    const host = this.mesh.host;
    const live = new Set();
    for (const t of this.pc.getTransceivers()) {
      if (t.mid === null || t.currentDirection === 'stopped' || t.direction === 'stopped') continue;
      if (t.currentDirection !== 'recvonly' && t.currentDirection !== 'sendrecv') continue;
      live.add(t.mid);
      const known = this.remote.get(t.mid);
      if (known && known.mediaTrack !== t.receiver.track) this.#end(t.mid);
      this.#announce(t);
    }
    for (const mid of [...this.remote.keys()]) {
      if (!live.has(mid)) this.#end(mid);
    }
    for (const [mid, r] of this.remote) {
      const muted = this.#meta.get(mid)?.muted ?? false;
      if (r.info.muted === muted) continue;
      r.info.muted = muted;
      const listed = host.participant(this.id)?.tracks.find((x) => x.id === r.info.id);
      if (listed) listed.muted = muted;
      const type = muted ? 'track_muted' : 'track_unmuted';
      host.emit(type, { type, participant: this.id, track: r.info.id });
    }
  }

  /**
   * The remote track on `mid` ends.
   * @param {string} mid
   * @param {boolean} [tell] emit the events (not for a participant who left)
   */
  #end(mid, tell = true) {
    const r = this.remote.get(mid);
    if (!r) return;
    this.remote.delete(mid);
    const host = this.mesh.host;
    const p = host.participant(this.id);
    if (p) p.tracks = p.tracks.filter((x) => x.id !== r.info.id);
    if (!tell || !p) return;
    host.emit('remotetrackended', { participant: this.id, track: r.info.id, mid });
    host.emit('track_unpublished', { type: 'track_unpublished', participant: this.id, track: r.info.id });
  }

  /**
   * A negotiated connection whose ICE never starts restarts it (see STUCK_RESTART_MS), twice at
   * most: one that has no candidate to try (say a relay-only policy without TURN) stays so.
   */
  #watchStuck() {
    const pc = this.pc;
    clearTimeout(this.#stuckTimer);
    if (this.closed || pc.signalingState !== 'stable' || pc.connectionState !== 'new' || this.#stuckRestarts >= 2) return;
    this.#stuckTimer = setTimeout(() => {
      if (this.closed || pc.signalingState !== 'stable' || pc.connectionState !== 'new') return;
      console.debug(`confab: the direct connection to ${this.id} has not started ICE: restarting it`);
      this.#stuckRestarts++;
      pc.restartIce();
    }, STUCK_RESTART_MS);
  }

  /** ICE restart when the connection fails, or stays disconnected for a while. */
  #onConnectionState() {
    const pc = this.pc;
    clearTimeout(this.#restartTimer);
    if (pc.connectionState !== 'new') clearTimeout(this.#stuckTimer);
    if (this.closed) return;
    if (pc.connectionState === 'failed') {
      pc.restartIce();
    } else if (pc.connectionState === 'disconnected') {
      this.#restartTimer = setTimeout(() => {
        if (!this.closed && pc.connectionState === 'disconnected') pc.restartIce();
      }, DISCONNECTED_RESTART_MS);
    }
  }

  /**
   * Close the connection and end its remote tracks.
   * @param {boolean} bye tell the peer (`{"bye": true}`); not when it left or said bye itself
   */
  close(bye) {
    if (this.closed) return;
    if (bye) this.#send({ bye: true });
    this.closed = true;
    for (const timer of [this.#answerTimer, this.#restartTimer, this.#startTimer, this.#stuckTimer]) clearTimeout(timer);
    const pc = this.pc;
    pc.onnegotiationneeded = null;
    pc.onsignalingstatechange = null;
    pc.onicecandidate = null;
    pc.ontrack = null;
    pc.onconnectionstatechange = null;
    if (this.channels) {
      for (const ch of [this.channels.reliable, this.channels.lossy]) ch.onmessage = ch.onbufferedamountlow = null;
    }
    pc.close();
    for (const mid of [...this.remote.keys()]) this.#end(mid);
    if (this.mesh.peers.get(this.id) === this) this.mesh.peers.delete(this.id);
    this.mesh.check();
  }
}

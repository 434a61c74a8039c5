// @ts-check
// confab client library: the signaling protocol of docs/protocol.md and the one
// RTCPeerConnection it negotiates. No DOM code here: the UI lives in app.js.

import { sendEncodings } from './media.js';
import { DIRECT_TRACK_PREFIX, Mesh } from './mesh.js';
import { DATA_LOSSY, DATA_LOW_WATER, DATA_RELIABLE } from './messages.js';
import { ICE_RESTART_AFTER_MS, PONG_TIMEOUT_MS, RECONNECT_WINDOW_MS, final, retryDelay, rosterChanges } from './reconnect.js';

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** How often a `ping` is sent, in milliseconds (protocol.md: every 10 s). */
const PING_INTERVAL_MS = 10_000;

/**
 * How long, after a `joined` whose roster has tracks, our own tracks wait for the server's first
 * offer (which follows `joined` at once) to be answered before we offer them anyway.
 */
const FIRST_OFFER_WAIT_MS = 2_000;

/** How long `join()` waits for the socket to open and `joined` to arrive. */
const JOIN_TIMEOUT_MS = 10_000;

/** How long `leave()` waits for the server to close the socket before closing it itself. */
const LEAVE_GRACE_MS = 1_000;

// The protocol's messages (types only): see messages.js.
/** @typedef {import('./messages.js').TrackKind} TrackKind */
/** @typedef {import('./messages.js').TrackSource} TrackSource */
/** @typedef {import('./messages.js').TrackInfo} TrackInfo */
/** @typedef {import('./messages.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./messages.js').IceCandidate} IceCandidate */
/** @typedef {import('./messages.js').PublishedTrackMeta} PublishedTrackMeta */
/** @typedef {import('./messages.js').TrackRef} TrackRef */
/** @typedef {import('./messages.js').LeaveReason} LeaveReason */
/** @typedef {import('./messages.js').ErrorCode} ErrorCode */
/** @typedef {import('./messages.js').JoinMessage} JoinMessage */
/** @typedef {import('./messages.js').ClientOfferMessage} ClientOfferMessage */
/** @typedef {import('./messages.js').ClientAnswerMessage} ClientAnswerMessage */
/** @typedef {import('./messages.js').CandidateMessage} CandidateMessage */
/** @typedef {import('./messages.js').MuteMessage} MuteMessage */
/** @typedef {import('./messages.js').LeaveMessage} LeaveMessage */
/** @typedef {import('./messages.js').PingMessage} PingMessage */
/** @typedef {import('./messages.js').SubscriptionMessage} SubscriptionMessage */
/** @typedef {import('./messages.js').ClientMessage} ClientMessage */
/** @typedef {import('./messages.js').JoinedMessage} JoinedMessage */
/** @typedef {import('./messages.js').ParticipantJoinedMessage} ParticipantJoinedMessage */
/** @typedef {import('./messages.js').ParticipantLeftMessage} ParticipantLeftMessage */
/** @typedef {import('./messages.js').TrackPublishedMessage} TrackPublishedMessage */
/** @typedef {import('./messages.js').TrackUnpublishedMessage} TrackUnpublishedMessage */
/** @typedef {import('./messages.js').TrackMutedMessage} TrackMutedMessage */
/** @typedef {import('./messages.js').TrackUnmutedMessage} TrackUnmutedMessage */
/** @typedef {import('./messages.js').ServerOfferMessage} ServerOfferMessage */
/** @typedef {import('./messages.js').ServerAnswerMessage} ServerAnswerMessage */
/** @typedef {import('./messages.js').PongMessage} PongMessage */
/** @typedef {import('./messages.js').ErrorMessage} ErrorMessage */
/** @typedef {import('./messages.js').StreamStateMessage} StreamStateMessage */
/** @typedef {import('./messages.js').LayersMessage} LayersMessage */
/** @typedef {import('./messages.js').ServerMessage} ServerMessage */
/** @typedef {import('./messages.js').RoomMode} RoomMode */
/** @typedef {import('./messages.js').MediaPath} MediaPath */
/** @typedef {import('./mesh.js').PathState} PathState */

// ---------------------------------------------------------------------------
// Events of ConfabClient (the `detail` of each CustomEvent, by event type)

/**
 * A remote track arrived (or an m-line was re-used for another remote track).
 * @typedef {object} RemoteTrackDetail
 * @property {string} participant the publisher's id
 * @property {string} track the publisher's track id
 * @property {TrackKind} kind
 * @property {string} mid the m-line carrying it in our connection (to the server, or to the
 *   publisher on `p2p`)
 * @property {MediaStreamTrack} mediaTrack the track to play
 * @property {MediaPath} [path] how it arrives: `p2p` on a direct connection, else through the server
 */

/**
 * A remote track stopped being carried by our connection.
 * @typedef {object} RemoteTrackEndedDetail
 * @property {string} participant
 * @property {string} track
 * @property {string} mid
 */

/**
 * @typedef {object} ConnectionStateDetail
 * @property {RTCPeerConnectionState} state
 * @property {RTCIceConnectionState} iceState
 */

/**
 * The socket closed; the session is over.
 * @typedef {object} ClosedDetail
 * @property {number} code WebSocket close code (1006 when the connection was lost)
 * @property {string} reason close reason, often empty
 * @property {ErrorCode | null} error code of the last `error` received just before the close
 *   (e.g. `media_failed` with close code 4002), or null
 * @property {boolean} joined whether the session had been joined
 * @property {boolean} local whether this client closed it (`leave()` or `close()`)
 */

/**
 * @typedef {object} ConfabEventMap
 * @property {JoinedMessage} joined
 * @property {ParticipantJoinedMessage} participant_joined
 * @property {ParticipantLeftMessage} participant_left
 * @property {TrackPublishedMessage} track_published
 * @property {TrackUnpublishedMessage} track_unpublished
 * @property {TrackMutedMessage} track_muted
 * @property {TrackUnmutedMessage} track_unmuted
 * @property {ErrorMessage} error
 * @property {StreamStateMessage} stream_state what the server sends us of a remote video track
 * @property {LayersMessage} layers dynacast: emitted once the layers it names are the active ones
 * @property {import('./messages.js').DrainingMessage} draining the server is shutting down
 * @property {{source: TrackSource, muted: boolean}} localmute an administrator muted or unmuted one of our tracks
 * @property {RemoteTrackDetail} remotetrack
 * @property {RemoteTrackEndedDetail} remotetrackended
 * @property {ConnectionStateDetail} connectionstatechange
 * @property {ClosedDetail} closed
 * @property {ServerMessage} message every message from the server, before it is handled
 * @property {DataDetail} data a data message from another participant (see `send`)
 * @property {import('./messages.js').SpeakersMessage} speakers who speaks, and the active speaker, changed
 * @property {{}} dataopen both data channels to the server are open: `send` works
 * @property {import('./messages.js').ReconnectingMessage} participant_reconnecting someone's connection to the server was lost; its place is kept
 * @property {import('./messages.js').ReconnectingMessage} participant_reconnected someone who was reconnecting is back
 * @property {{code: number, reason: string}} reconnecting our socket broke: the client is taking our place back (media goes on)
 * @property {JoinedMessage} reconnected our place is ours again
 * @property {{}} databufferedamountlow what waited to be sent on the reliable channel fell under 256 KiB
 * @property {{path: PathState}} mediapath how our media travels changed (see `mediaPath`)
 * @property {{participant: string, track: string, flowing: boolean}} remoteflow media of a remote
 *   track started or stopped flowing (see `flowing`); only in `p2p` and `auto` rooms
 * @property {{participant: string}} peertimeout a participant's browser did not answer our offer
 *   of a direct connection within 10 s: that connection is closed
 */

/**
 * A data message from another participant.
 * @typedef {object} DataDetail
 * @property {string} from the sender's participant id
 * @property {string | Uint8Array} data as sent: text stays text, binary comes as bytes
 * @property {boolean} reliable whether it came on the reliable, ordered channel
 * @property {boolean} private whether it was sent to named participants rather than the room
 * @property {boolean} direct whether it came on a direct connection (a `p2p` or `auto` room)
 *   rather than through the server
 */

/** Data frame flags (docs/protocol.md, "Data channels"). */
const DATA_TEXT = 1;
const DATA_PRIVATE = 2;
/** The largest data frame the server relays, header included. */
export const MAX_DATA_MESSAGE = 64 * 1024;

/**
 * Why `join()` failed. `code` is a protocol error code, or `unreachable` (the socket did not
 * open or closed before `joined`), `timeout` (no `joined` in time) or `closed` (closed locally).
 */
export class ConfabError extends Error {
  /**
   * @param {ErrorCode | 'unreachable' | 'timeout' | 'closed'} code
   * @param {string} message
   * @param {number} [closeCode] the WebSocket close code, when the socket closed
   */
  constructor(code, message, closeCode) {
    super(message);
    this.name = 'ConfabError';
    this.code = code;
    this.closeCode = closeCode;
  }
}

/**
 * A local track this client publishes.
 * @typedef {object} LocalTrack
 * @property {MediaStreamTrack} track
 * @property {MediaStream} stream
 * @property {RTCRtpTransceiver | null} transceiver its transceiver on the connection to the
 *   server; null while it is sent on direct connections only (`p2p`)
 * @property {TrackSource} source
 * @property {boolean} muted
 * @property {string[]} rids its simulcast layers, lowest first; empty without simulcast
 * @property {boolean} simulcast whether to send it in simulcast layers to the server
 */

/**
 * How to publish a track.
 * @typedef {object} PublishOptions
 * @property {TrackSource} [source] default: `microphone` for audio, `camera` for video
 * @property {boolean} [muted] initial state; default: muted if the track is disabled
 * @property {boolean} [simulcast] send a camera or screen in simulcast layers (default true)
 */

/**
 * The source a waiting track will be published as.
 * @param {{track: MediaStreamTrack} & PublishOptions} p
 * @returns {TrackSource}
 */
const pendingSource = (p) => p.source ?? (p.track.kind === 'audio' ? 'microphone' : 'camera');

/** @param {string} participant @param {string} track */
const trackKey = (participant, track) => `${participant}\u0000${track}`;

/**
 * One confab session: a WebSocket to the server and one RTCPeerConnection.
 *
 * Usage: `const c = new ConfabClient(url); c.on('remotetrack', d => ...);
 * await c.join(room, name, stream);` ... `c.setMuted('audio', true)` ... `c.leave()`.
 *
 * Negotiation follows protocol.md: perfect negotiation with this client impolite. Local
 * track changes make an offer; a server offer that collides with ours is ignored (the
 * server, polite, rolls back and offers again after answering ours). On joining a room where
 * tracks are published, our own tracks wait until the server's first offer (those tracks) is
 * answered: a late joiner's first exchange then starts the media it is there to see, where a
 * collision would cost it a round trip and an offer-answer of its own first.
 *
 * In a `p2p` or `auto` room (protocol.md, "Peer-to-peer rooms") the audio and video go on
 * direct connections to the other participants (`mesh`, mesh.js) while the path is `p2p`; the
 * connection to the server then carries the data channels only. Our tracks are published to the
 * server while the path is `sfu`, and for as long as a switch to `p2p` needs.
 */
export class ConfabClient extends EventTarget {
  /** @type {WebSocket | null} */
  #ws = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #pingTimer;
  /** The secret that takes our place back after the socket broke (`joined`). @type {string | null} */
  #reconnectToken = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #pongTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #iceTimer;
  /** Until when (performance.now()) reconnecting is tried, and attempts so far. */
  #reconnectUntil = 0;
  #attempts = 0;
  #pingId = 0;
  /** ping id -> time sent (performance.now()). @type {Map<number, number>} */
  #pingSent = new Map();
  /** Serializes handling of server messages, so each sees the state the previous left. */
  #queue = Promise.resolve();
  #makingOffer = false;
  /** @type {ErrorCode | null} */
  #lastError = null;
  #closed = false;
  #localClose = false;
  /** mid -> "participant\u0000track" of the remote track last announced on that mid. */
  /** @type {Map<string, string>} */
  #delivered = new Map();
  /** Publishing waits for the server's first offer (see the class comment). */
  #holdPublish = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #holdTimer;
  /** Local tracks waiting for the peer connection to exist, or for the hold to end. @type {({track: MediaStreamTrack, stream: MediaStream} & PublishOptions)[]} */
  #pendingPublish = [];
  /** "participant\u0000track" -> "WxH" last sent in a `subscription`. @type {Map<string, string>} */
  #subscriptions = new Map();
  /** "participant\u0000track" -> last `stream_state` of that remote track, and when it arrived (Date.now()). @type {Map<string, {message: StreamStateMessage, at: number}>} */
  #streamStates = new Map();
  /** The data channels to the server, once made. @type {{reliable: RTCDataChannel, lossy: RTCDataChannel} | null} */
  #channels = null;
  /** Per sender, the last of its `setParameters` calls, so that they never interleave. */
  /** @type {WeakMap<RTCRtpSender, Promise<void>>} */
  #senderChains = new WeakMap();
  /** Whether our audio and video go to the server (always in an `sfu` room). */
  #toServer = true;
  /** The remote track of the server each MediaStreamTrack carries ("participant\u0000track"). */
  /** @type {WeakMap<MediaStreamTrack, string>} */
  #carries = new WeakMap();

  /**
   * @param {string | URL} url the WebSocket URL, e.g. `ws://host:7880/ws`
   * @param {{iceTransportPolicy?: RTCIceTransportPolicy, token?: string, mode?: RoomMode}} [options]
   *   `iceTransportPolicy` `relay`: reach the server (and the others, on direct connections) only
   *   through the TURN servers of the `joined` message (as a client whose UDP and direct paths
   *   are blocked would); default `all`.
   *   `token`: the access token to join with, for a server with API keys.
   *   `mode`: the mode of the room, should this join open it (default: the server's).
   */
  constructor(url, options = {}) {
    super();
    this.url = String(url);
    /** @type {RTCIceTransportPolicy} */
    this.iceTransportPolicy = options.iceTransportPolicy ?? 'all';
    /** @type {string | undefined} */
    this.token = options.token || undefined;
    /** @type {RoomMode | undefined} the mode asked for in `join` */
    this.requestedMode = options.mode;
    /** @type {RoomMode} the room's mode, from `joined` */
    this.mode = 'sfu';
    /** @type {MediaPath} how media travels in the room, from `joined` and `path` */
    this.path = 'sfu';
    /** @type {Mesh | null} the direct connections, in a `p2p` or `auto` room */
    this.mesh = null;
    /** @type {import('./messages.js').Grants} what we may do, from `joined` */
    this.grants = { canPublish: true, canSubscribe: true, canPublishData: true };
    /** @type {RTCPeerConnection | null} the media connection, once joined */
    this.pc = null;
    /** @type {Map<string, TrackRef>} mid -> remote track, from the last applied server offer */
    this.mids = new Map();
    /** @type {string | null} our participant id, once joined */
    this.participantId = null;
    /** @type {string | null} */
    this.room = null;
    /** @type {Map<string, ParticipantInfo>} the other participants, kept up to date */
    this.participants = new Map();
    /** @type {LocalTrack[]} */
    this.localTracks = [];
    /** `reconnecting`: the socket broke and the client is taking its place back (the media
     * connection goes on meanwhile). @type {'new' | 'connecting' | 'joined' | 'reconnecting' | 'closed'} */
    this.state = 'new';
    /** Our display name, as joined. @type {string} */
    this.name = '';
    /** Round-trip time of the last ping, in milliseconds, or null. @type {number | null} */
    this.rttMs = null;
    /** The room's active speaker (the one speaking, or the last who did), from `speakers`. @type {string | null} */
    this.activeSpeaker = null;
  }

  /**
   * Listen to one event, with its detail typed. Returns a function that removes the listener.
   * @template {keyof ConfabEventMap} K
   * @param {K} type
   * @param {(detail: ConfabEventMap[K]) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    /** @param {Event} ev */
    const listener = (ev) => handler(/** @type {CustomEvent<ConfabEventMap[K]>} */ (ev).detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  /**
   * @template {keyof ConfabEventMap} K
   * @param {K} type
   * @param {ConfabEventMap[K]} detail
   */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /**
   * Open the socket, join `room` as `name` and publish the tracks of `stream` (if any).
   * Resolves with the `joined` message; rejects with a ConfabError.
   * @param {string} room
   * @param {string} name
   * @param {MediaStream | null} [stream] local camera/microphone; null or empty: receive only
   * @returns {Promise<JoinedMessage>}
   */
  join(room, name, stream = null) {
    if (this.state !== 'new') {
      return Promise.reject(new ConfabError('already_joined', 'this client has already joined'));
    }
    this.state = 'connecting';
    this.name = name;
    if (stream) {
      for (const track of stream.getTracks()) this.#pendingPublish.push({ track, stream });
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      /** @param {ConfabError} err */
      const fail = (err) => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(err);
        this.#shutdown(err.closeCode ?? 1000, err.message, false);
      };
      const timer = setTimeout(() => {
        fail(new ConfabError('timeout', 'the server did not answer in time'));
      }, JOIN_TIMEOUT_MS);
      const offJoined = this.on('joined', (msg) => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve(msg);
      });
      const offError = this.on('error', (msg) => {
        if (msg.request === 'join' || this.state === 'connecting') {
          fail(new ConfabError(msg.code, msg.message));
        }
      });
      const offClosed = this.on('closed', (d) => {
        if (d.local) fail(new ConfabError('closed', 'closed before joining', d.code));
        else fail(new ConfabError('unreachable', 'the server is unreachable', d.code));
      });
      const cleanup = () => {
        clearTimeout(timer);
        offJoined();
        offError();
        offClosed();
      };

      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (e) {
        fail(new ConfabError('unreachable', `cannot open ${this.url}: ${e}`));
        return;
      }
      this.#ws = ws;
      ws.onopen = () => {
        /** @type {import('./messages.js').JoinMessage} */
        const join = { type: 'join', room, name, protocol: PROTOCOL_VERSION };
        if (this.token) join.token = this.token;
        if (this.requestedMode) join.mode = this.requestedMode;
        this.#send(join);
        this.#pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
      };
      ws.onmessage = (ev) => this.#onMessage(ev.data);
      ws.onclose = (ev) => this.#onSocketClose(ev.code, ev.reason);
      // onerror is always followed by onclose, which does the work.
      ws.onerror = () => {};
    });
  }

  /**
   * Publish one more local track (e.g. a screen share) on its own sendonly transceiver. A camera
   * is sent in three simulcast layers (rids `q`, `h`, `f`), a screen in two (`h`, `f`, with
   * `contentHint` `detail`), unless `simulcast` is false; see media.js `sendEncodings`.
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @param {PublishOptions} [options]
   */
  publish(track, stream, options = {}) {
    if (!this.pc || this.#holdPublish) {
      this.#pendingPublish.push({ track, stream, ...options });
      return;
    }
    const source = options.source ?? (track.kind === 'audio' ? 'microphone' : 'camera');
    if (source === 'screen' && track.kind === 'video' && !track.contentHint) track.contentHint = 'detail';
    const muted = options.muted ?? !track.enabled;
    track.enabled = !muted;
    /** @type {LocalTrack} */
    const lt = { track, stream, transceiver: null, source, muted, rids: [], simulcast: options.simulcast ?? true };
    if (this.#toServer) this.#sendToServer(this.pc, lt);
    this.localTracks.push(lt);
    this.mesh?.addLocal(lt);
    // negotiationneeded fires and makes the offer.
  }

  /**
   * Send a local track to the server on a transceiver of its own.
   * @param {RTCPeerConnection} pc
   * @param {LocalTrack} lt
   */
  #sendToServer(pc, lt) {
    const kind = lt.track.kind === 'audio' ? 'audio' : 'video';
    const transceiver = this.#addSender(pc, lt.track, lt.stream, sendEncodings(kind, lt.source, { simulcast: lt.simulcast }));
    lt.transceiver = transceiver;
    lt.rids = transceiver.sender.getParameters().encodings.flatMap((e) => (e.rid ? [e.rid] : []));
  }

  /**
   * Add a sendonly transceiver for `track` with `encodings`; if the browser refuses them, with
   * them less their scalabilityMode, and then with no encodings (no simulcast).
   * @param {RTCPeerConnection} pc
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   * @param {import('./media.js').LayerEncoding[] | undefined} encodings
   * @returns {RTCRtpTransceiver}
   */
  #addSender(pc, track, stream, encodings) {
    const tries = [encodings];
    if (encodings?.some((e) => e.scalabilityMode)) {
      tries.push(encodings.map(({ scalabilityMode: _, ...e }) => e));
    }
    if (encodings) tries.push(undefined);
    for (const [i, sendEncodings] of tries.entries()) {
      const init = { direction: /** @type {const} */ ('sendonly'), streams: [stream], sendEncodings };
      try {
        return pc.addTransceiver(track, init);
      } catch (e) {
        if (i === tries.length - 1) throw e;
        console.warn('confab: the browser refused these encodings, trying simpler ones:', e);
      }
    }
    throw new Error('unreachable');
  }

  /**
   * Stop publishing a local track: its transceiver is stopped and the next offer tells the
   * server (which then sends `track_unpublished` to the others). The track itself is not
   * stopped. Returns whether the track was published.
   * @param {MediaStreamTrack} track
   * @returns {boolean}
   */
  unpublish(track) {
    const pending = this.#pendingPublish.findIndex((p) => p.track === track);
    if (pending >= 0) {
      this.#pendingPublish.splice(pending, 1);
      return true;
    }
    const i = this.localTracks.findIndex((t) => t.track === track);
    if (i < 0) return false;
    const [lt] = this.localTracks.splice(i, 1);
    lt.transceiver?.stop();
    this.mesh?.removeLocal(lt);
    return true;
  }

  /**
   * Send `next` instead of the published track `current` (another camera or microphone), on
   * the same transceiver: `RTCRtpSender.replaceTrack`, so nothing is renegotiated, the server
   * sees the same track and the simulcast encodings stay as they are. `next` takes the mute
   * state of `current`; `current` is not stopped. Resolves with whether `current` was
   * published; rejects if the browser refuses the swap (then `current` is still sent).
   * @param {MediaStreamTrack} current
   * @param {MediaStreamTrack} next
   * @returns {Promise<boolean>}
   */
  async replaceTrack(current, next) {
    if (next.kind !== current.kind) throw new TypeError(`cannot send a ${next.kind} track in place of ${current.kind}`);
    const pending = this.#pendingPublish.find((p) => p.track === current);
    if (pending) {
      next.enabled = pending.muted === undefined ? current.enabled : !pending.muted;
      pending.track = next;
      return true;
    }
    const lt = this.localTracks.find((t) => t.track === current);
    if (!lt) return false;
    next.enabled = !lt.muted;
    if (lt.source === 'screen' && next.kind === 'video' && !next.contentHint) next.contentHint = 'detail';
    await Promise.all([lt.transceiver?.sender.replaceTrack(next), this.mesh?.replaceLocal(lt, next)]);
    lt.track = next;
    return true;
  }

  /**
   * Mute or unmute local tracks: `what` is a kind (`audio`/`video`), a track source
   * (`camera`...), a track id (mid) or a MediaStreamTrack id. Sets `track.enabled` and tells
   * the server. Returns the number of tracks changed.
   * @param {string} what
   * @param {boolean} muted
   * @returns {number}
   */
  setMuted(what, muted) {
    let n = 0;
    let changed = false;
    for (const lt of this.localTracks) {
      const mid = lt.transceiver?.mid ?? null;
      if (lt.track.kind !== what && lt.source !== what && mid !== what && lt.track.id !== what) {
        continue;
      }
      n++;
      lt.track.enabled = !muted;
      if (lt.muted === muted) continue;
      lt.muted = muted;
      changed = true;
      // Before its first offer a track has no mid: the offer's `tracks` carries the state.
      if (mid !== null) this.#send({ type: 'mute', track: mid, muted });
    }
    if (changed) this.mesh?.mutedChanged();
    for (const p of this.#pendingPublish) {
      if (p.track.kind !== what && pendingSource(p) !== what && p.track.id !== what) continue;
      n++;
      p.track.enabled = !muted;
      p.muted = muted;
    }
    return n;
  }

  /**
   * Whether local tracks matching `what` (as in setMuted) are muted; null if there are none.
   * @param {string} what
   * @returns {boolean | null}
   */
  isMuted(what) {
    const lt = this.localTracks.find(
      (t) => t.track.kind === what || t.source === what || (t.transceiver?.mid ?? null) === what,
    );
    if (lt) return lt.muted;
    const p = this.#pendingPublish.find((p) => p.track.kind === what || pendingSource(p) === what);
    return p ? (p.muted ?? !p.track.enabled) : null;
  }

  /**
   * Tell the server how large a remote video track is shown, in device pixels (0 x 0: not
   * shown). Sends a `subscription` only when the size differs from the last one sent for that
   * track, and never for a track received directly (`p2p-...`). Returns whether it sent one.
   * @param {string} participant
   * @param {string} track
   * @param {number} width
   * @param {number} height
   * @returns {boolean}
   */
  setSubscription(participant, track, width, height) {
    // A track received directly (`p2p`) is none of the server's business.
    if (this.state !== 'joined' || track.startsWith(DIRECT_TRACK_PREFIX)) return false;
    const w = Math.max(0, Math.round(width) || 0);
    const h = Math.max(0, Math.round(height) || 0);
    const key = trackKey(participant, track);
    const size = `${w}x${h}`;
    if (this.#subscriptions.get(key) === size) return false;
    this.#subscriptions.set(key, size);
    this.#send({ type: 'subscription', participant, track, width: w, height: h });
    return true;
  }

  /**
   * The last `stream_state` the server sent for a remote track, or null.
   * @param {string} participant
   * @param {string} track
   * @returns {StreamStateMessage | null}
   */
  streamState(participant, track) {
    return this.#streamStates.get(trackKey(participant, track))?.message ?? null;
  }

  /**
   * When (Date.now()) the last `stream_state` for a remote track arrived, or null.
   * @param {string} participant
   * @param {string} track
   * @returns {number | null}
   */
  streamStateTime(participant, track) {
    return this.#streamStates.get(trackKey(participant, track))?.at ?? null;
  }

  /** Send a `ping` now (one is sent every 10 s anyway). */
  ping() {
    const id = ++this.#pingId;
    if (this.#pingSent.size > 16) this.#pingSent.clear();
    this.#pingSent.set(id, performance.now());
    this.#send({ type: 'ping', id });
    if (this.state === 'joined' && this.#reconnectToken && this.#pongTimer === undefined) {
      this.#pongTimer = setTimeout(() => this.#socketDead(), PONG_TIMEOUT_MS);
    }
  }

  /**
   * Leave the room: sends `leave`, closes the media connection at once and the socket when
   * the server has closed it (or after a short grace period).
   */
  leave() {
    if (this.#closed) return;
    this.#localClose = true;
    this.#send({ type: 'leave' });
    this.#closePeer();
    const ws = this.#ws;
    setTimeout(() => {
      if (!this.#closed) this.#shutdown(1000, 'left', true);
      ws?.close(1000);
    }, LEAVE_GRACE_MS);
  }

  /** Close everything now, without saying `leave` (the server sees a closed socket). */
  close() {
    this.#localClose = true;
    this.#shutdown(1000, 'closed', true);
  }

  // -------------------------------------------------------------------------

  /** @param {ClientMessage} msg */
  #send(msg) {
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  /** @param {unknown} data */
  #onMessage(data) {
    if (typeof data !== 'string') return;
    /** @type {ServerMessage} */
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string') return;
    // Known at once, so that a close right behind an error reports it.
    if (msg.type === 'error') this.#lastError = msg.code;
    this.#queue = this.#queue
      .then(() => this.#handle(msg))
      .catch((e) => {
        console.warn('confab: handling', msg.type, 'failed:', e);
      });
  }

  /**
   * The socket closed: finish handling the messages that came before, then shut down (at
   * once if that takes too long).
   * @param {number} code
   * @param {string} reason
   */
  #onSocketClose(code, reason) {
    const timer = setTimeout(() => this.#lost(code, reason), 1_000);
    this.#queue = this.#queue.then(() => {
      clearTimeout(timer);
      this.#lost(code, reason);
    });
  }

  // ----------------------------------------------------------------- reconnecting

  /**
   * The socket closed: take our place back if the server keeps it (protocol.md,
   * "Reconnecting"), else shut down.
   * @param {number} code
   * @param {string} reason
   */
  #lost(code, reason) {
    if (this.#closed) return;
    if (this.state === 'reconnecting') {
      this.#retry(code, reason);
    } else if (this.state === 'joined' && !this.#localClose && this.#reconnectToken && !final(code)) {
      this.#beginReconnect(code, reason);
    } else {
      this.#shutdown(code, reason, false);
    }
  }

  /** A ping went unanswered: the socket is dead even if the browser has not noticed. */
  #socketDead() {
    this.#pongTimer = undefined;
    const ws = this.#ws;
    if (this.state !== 'joined' || !ws) return;
    // Left to itself, not closed: a close frame that did get through would make the server
    // end our place instead of keeping it.
    ws.onopen = ws.onmessage = ws.onclose = null;
    this.#ws = null;
    this.#beginReconnect(1006, 'no answer to ping');
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  #beginReconnect(code, reason) {
    this.state = 'reconnecting';
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    this.#reconnectUntil = performance.now() + RECONNECT_WINDOW_MS;
    this.#attempts = 0;
    this.#emit('reconnecting', { code, reason });
    this.#retry(code, reason);
  }

  /**
   * Try again after a pause, or give up when the server no longer keeps our place.
   * @param {number} code
   * @param {string} reason
   */
  #retry(code, reason) {
    if (performance.now() > this.#reconnectUntil) {
      this.#shutdown(code, reason, false);
      return;
    }
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#reconnect(), retryDelay(this.#attempts++));
  }

  /** Open a new socket and ask for our place. */
  #reconnect() {
    if (this.#closed || this.state !== 'reconnecting' || !this.participantId || !this.#reconnectToken) return;
    /** @type {JoinMessage} */
    const join = {
      type: 'join', room: this.room ?? '', name: this.name, protocol: PROTOCOL_VERSION,
      reconnect: { participant: this.participantId, token: this.#reconnectToken },
    };
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.#retry(1006, 'cannot open a socket');
      return;
    }
    this.#ws = ws;
    ws.onopen = () => this.#send(join);
    ws.onmessage = (ev) => this.#onMessage(ev.data);
    ws.onclose = (ev) => this.#onSocketClose(ev.code, ev.reason);
    ws.onerror = () => {};
  }

  /**
   * Our place is ours again (`joined` with `reconnected`): catch up with the room, and mend
   * what a lost exchange or a new network broke.
   * @param {JoinedMessage} msg
   */
  #onRejoined(msg) {
    clearTimeout(this.#retryTimer);
    this.state = 'joined';
    if (msg.reconnectToken) this.#reconnectToken = msg.reconnectToken;
    if (msg.grants) this.grants = msg.grants;
    const changes = rosterChanges(this.participants, msg.participants, DIRECT_TRACK_PREFIX);
    this.participants = changes.roster;
    for (const id of changes.left) {
      this.#forgetRemote(id, null);
      this.mesh?.left(id);
      this.#emit('participant_left', { type: 'participant_left', participant: id, reason: 'disconnected' });
    }
    for (const p of changes.joined) {
      this.#emit('participant_joined', { type: 'participant_joined', participant: p });
      this.mesh?.joined(p.id);
    }
    for (const u of changes.unpublished) {
      this.#forgetRemote(u.participant, u.track);
      this.#emit('track_unpublished', { type: 'track_unpublished', ...u });
    }
    for (const p of changes.published) this.#emit('track_published', { type: 'track_published', ...p });
    const pc = this.pc;
    if (pc && Array.isArray(msg.iceServers)) {
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers: msg.iceServers });
      } catch (e) {
        console.warn('confab: keeping the ICE servers of the first join:', e);
      }
    }
    this.#pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
    if (msg.path && msg.path !== this.path) this.#onPath(msg.path);
    // An offer of ours sent on the broken socket never arrived: send it again.
    if (pc?.signalingState === 'have-local-offer') this.#sendOffer();
    if (pc && (pc.iceConnectionState === 'failed' || pc.iceConnectionState === 'disconnected')) this.#restartIce(pc);
    this.#emit('reconnected', msg);
  }

  /**
   * The media connection to the server broke (a new network): restart ICE at once when it
   * failed, and after ICE_RESTART_AFTER_MS when it stays `disconnected`.
   * @param {RTCPeerConnection} pc
   */
  #watchIce(pc) {
    clearTimeout(this.#iceTimer);
    const state = pc.iceConnectionState;
    if (state === 'failed') {
      this.#restartIce(pc);
    } else if (state === 'disconnected') {
      this.#iceTimer = setTimeout(() => {
        if (pc.iceConnectionState === 'disconnected' || pc.iceConnectionState === 'failed') this.#restartIce(pc);
      }, ICE_RESTART_AFTER_MS);
    }
  }

  /** @param {RTCPeerConnection} pc */
  #restartIce(pc) {
    if (this.#closed || pc !== this.pc || pc.signalingState === 'closed') return;
    // negotiationneeded follows, and the offer carries new ICE credentials. Again and again,
    // while the connection stays down.
    pc.restartIce();
    clearTimeout(this.#iceTimer);
    this.#iceTimer = setTimeout(() => {
      if (pc.iceConnectionState !== 'connected' && pc.iceConnectionState !== 'completed') this.#restartIce(pc);
    }, ICE_RESTART_AFTER_MS * 2);
  }

  /** @param {ServerMessage} msg */
  async #handle(msg) {
    if (this.#closed) return;
    this.#emit('message', msg);
    switch (msg.type) {
      case 'joined':
        if (msg.reconnected && this.pc) this.#onRejoined(msg);
        else this.#onJoined(msg);
        break;
      case 'participant_joined':
        this.participants.set(msg.participant.id, msg.participant);
        this.#emit('participant_joined', msg);
        this.mesh?.joined(msg.participant.id);
        break;
      case 'participant_left':
        this.participants.delete(msg.participant);
        this.#forgetRemote(msg.participant, null);
        this.mesh?.left(msg.participant);
        this.#emit('participant_left', msg);
        break;
      case 'track_published': {
        const p = this.participants.get(msg.participant);
        if (p) {
          p.tracks = p.tracks.filter((t) => t.id !== msg.track.id);
          p.tracks.push(msg.track);
        }
        this.#emit('track_published', msg);
        this.mesh?.check();
        break;
      }
      case 'track_unpublished': {
        const p = this.participants.get(msg.participant);
        if (p) p.tracks = p.tracks.filter((t) => t.id !== msg.track);
        this.#forgetRemote(msg.participant, msg.track);
        this.#emit('track_unpublished', msg);
        this.mesh?.check();
        break;
      }
      case 'track_muted':
      case 'track_unmuted': {
        if (msg.participant === this.participantId) {
          // An administrator muted (or unmuted) one of our tracks: the server already acts so.
          const muted = msg.type === 'track_muted';
          const lt = this.localTracks.find((l) => l.transceiver !== null && l.transceiver.mid === msg.track);
          if (lt) {
            lt.muted = muted;
            lt.track.enabled = !muted;
            this.mesh?.mutedChanged();
            this.#emit('localmute', { source: lt.source, muted });
          }
          break;
        }
        const t = this.participants.get(msg.participant)?.tracks.find((t) => t.id === msg.track);
        if (t) t.muted = msg.type === 'track_muted';
        if (msg.type === 'track_muted') this.#emit('track_muted', msg);
        else this.#emit('track_unmuted', msg);
        this.mesh?.check();
        break;
      }
      case 'path':
        this.#onPath(msg.path);
        break;
      case 'signal':
        this.mesh?.onSignal(msg.from, msg.data);
        break;
      case 'offer':
        await this.#onServerOffer(msg);
        break;
      case 'answer':
        await this.#onServerAnswer(msg);
        break;
      case 'candidate':
        await this.#onServerCandidate(msg);
        break;
      case 'pong': {
        clearTimeout(this.#pongTimer);
        this.#pongTimer = undefined;
        const sent = msg.id === undefined ? undefined : this.#pingSent.get(msg.id);
        if (sent !== undefined && msg.id !== undefined) {
          this.rttMs = performance.now() - sent;
          this.#pingSent.delete(msg.id);
        }
        break;
      }
      case 'error':
        this.#lastError = msg.code;
        this.#emit('error', msg);
        if (msg.code === 'reconnect_failed' && this.state === 'reconnecting') {
          // The server no longer keeps our place.
          this.#shutdown(4002, 'reconnect failed', true);
        }
        break;
      case 'participant_reconnecting':
      case 'participant_reconnected': {
        const p = this.participants.get(msg.participant);
        if (p) p.reconnecting = msg.type === 'participant_reconnecting';
        this.#emit(msg.type, msg);
        break;
      }
      case 'stream_state':
        this.#streamStates.set(trackKey(msg.participant, msg.track), { message: msg, at: Date.now() });
        if (this.mesh && msg.state === 'paused') this.#pausedByServer(trackKey(msg.participant, msg.track));
        this.#emit('stream_state', msg);
        this.mesh?.check();
        break;
      case 'layers':
        this.#onLayers(msg);
        break;
      case 'draining':
        this.#emit('draining', msg);
        break;
      case 'speakers':
        this.activeSpeaker = msg.active;
        this.#emit('speakers', msg);
        break;
      default:
        // A message type of a later protocol version: ignore it.
        break;
    }
  }

  /** @param {JoinedMessage} msg */
  #onJoined(msg) {
    this.state = 'joined';
    this.#reconnectToken = msg.reconnectToken ?? null;
    this.participantId = msg.participant.id;
    this.room = msg.room;
    this.participants = new Map(msg.participants.map((p) => [p.id, p]));
    if (msg.grants) this.grants = msg.grants;
    this.mode = msg.mode === 'p2p' || msg.mode === 'auto' ? msg.mode : 'sfu';
    this.path = this.mode === 'sfu' || msg.path !== 'p2p' ? 'sfu' : 'p2p';
    this.#toServer = this.path === 'sfu';
    /** @type {RTCConfiguration} */
    const config = {
      iceServers: Array.isArray(msg.iceServers) ? msg.iceServers : [],
      iceTransportPolicy: this.iceTransportPolicy,
      bundlePolicy: 'max-bundle',
      rtcpMuxPolicy: 'require',
    };
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    if (this.mode !== 'sfu') this.mesh = this.#makeMesh(msg.participant.id, config);
    pc.onnegotiationneeded = () => this.#makeOffer();
    pc.onicecandidate = ({ candidate }) => {
      this.#send({
        type: 'candidate',
        candidate: candidate
          ? {
              candidate: candidate.candidate,
              sdpMid: candidate.sdpMid,
              sdpMLineIndex: candidate.sdpMLineIndex,
              usernameFragment: candidate.usernameFragment,
            }
          : null,
      });
    };
    pc.ontrack = (ev) => this.#announceRemote(ev.transceiver, ev.track);
    pc.oniceconnectionstatechange = () => this.#watchIce(pc);
    pc.onconnectionstatechange = () => {
      this.#emit('connectionstatechange', {
        state: pc.connectionState,
        iceState: pc.iceConnectionState,
      });
    };
    // Emitted before publishing so that listeners see the roster before any media event.
    this.#emit('joined', msg);
    // On `p2p`, connect to everyone present (who wait for our offer).
    this.mesh?.setPath(this.path);
    // The server offers the roster's tracks right after `joined`: answer that first.
    if (msg.participants.some((p) => Array.isArray(p.tracks) && p.tracks.length > 0)) {
      this.#holdPublish = true;
      this.#holdTimer = setTimeout(() => this.#releasePublish(), FIRST_OFFER_WAIT_MS);
    } else {
      this.#releasePublish();
    }
  }

  /**
   * The direct connections of a `p2p` or `auto` room.
   * @param {string} self our participant id
   * @param {RTCConfiguration} config
   * @returns {Mesh}
   */
  #makeMesh(self, config) {
    return new Mesh({
      self,
      config,
      send: (to, data) => this.#send({ type: 'signal', to, data }),
      emit: (type, detail) => this.#emit(type, detail),
      locals: () => this.localTracks,
      others: () => [...this.participants.keys()],
      participant: (id) => this.participants.get(id),
      serverDelivers: (id, source) => this.#serverDelivers(id, source),
      publishing: () => this.#toServer,
      stopPublishing: () => this.#stopServerMedia(),
      onState: (path) => this.#emit('mediapath', { path }),
      onData: (from, reliable, raw) => this.#onData(reliable, raw, from),
      onDataLow: () => this.#emit('databufferedamountlow', {}),
    }, this.mode === 'p2p' ? 'p2p' : 'auto', this.path);
  }

  /**
   * Whether media of a remote track flows: in a `p2p` or `auto` room, once a video frame was
   * decoded or audio packets came, while the server does not say (`stream_state`) that it holds
   * the track back, and during a switch of paths while video decodes steadily (`remoteflow`
   * says when this changes; flow.js); elsewhere, once it is unmuted.
   * @param {MediaStreamTrack} track
   */
  flowing(track) {
    if (!this.mesh) return !track.muted;
    const key = this.#carries.get(track);
    return this.mesh.flow.has(track) && (key === undefined || this.#streamStates.get(key)?.message.state !== 'paused');
  }

  /**
   * The server paused a remote video: it flows again once a new frame is decoded.
   * @param {string} key "participant\u0000track"
   */
  #pausedByServer(key) {
    for (const t of this.pc?.getTransceivers() ?? []) {
      if (t.mid !== null && this.#delivered.get(t.mid) === key) this.mesh?.flow.reset(t.receiver.track);
    }
  }

  /**
   * How our media travels now: `p2p`, `sfu`, or `switching` while an `auto` room moves it from
   * one path to the other.
   * @returns {PathState}
   */
  get mediaPath() {
    return this.mesh?.state ?? this.path;
  }

  /**
   * The path of an `auto` room changed. On `sfu` our tracks go to the server at once (the
   * direct connections stay until each peer receives us through it); on `p2p` they go to the
   * remaining peer directly, and stop going to the server once that peer receives them.
   * @param {MediaPath} path
   */
  #onPath(path) {
    if (!this.mesh || (path !== 'sfu' && path !== 'p2p')) return;
    this.path = path;
    const pc = this.pc;
    if (path === 'sfu' && !this.#toServer && pc) {
      this.#toServer = true;
      for (const lt of this.localTracks) {
        if (!lt.transceiver) this.#sendToServer(pc, lt);
      }
    }
    this.mesh.setPath(path);
  }

  /** Stop sending our tracks to the server: every peer receives them directly. */
  #stopServerMedia() {
    if (!this.#toServer) return;
    this.#toServer = false;
    for (const lt of this.localTracks) {
      lt.transceiver?.stop();
      lt.transceiver = null;
      lt.rids = [];
    }
  }

  /**
   * Whether media of `source` from participant `id` arrives through the server (its remote
   * track has had packets).
   * @param {string} id
   * @param {TrackSource} source
   */
  #serverDelivers(id, source) {
    for (const t of this.pc?.getTransceivers() ?? []) {
      if (t.mid === null || t.currentDirection === 'stopped' || !this.#delivered.has(t.mid)) continue;
      const ref = this.mids.get(t.mid);
      if (ref?.participant !== id) continue;
      const info = this.participants.get(id)?.tracks.find((x) => x.id === ref.track);
      if (info?.source === source && this.flowing(t.receiver.track)) return true;
    }
    return false;
  }

  /** Publish the tracks that waited for the peer connection or for the server's first offer. */
  #releasePublish() {
    clearTimeout(this.#holdTimer);
    this.#holdPublish = false;
    if (this.#closed) return;
    // The data channels ride the same offer as the first tracks.
    if (this.pc && !this.#channels) this.#openData(this.pc);
    const pending = this.#pendingPublish;
    this.#pendingPublish = [];
    for (const p of pending) this.publish(p.track, p.stream, p);
  }

  /**
   * Make the two data channels to the server: `confab` (reliable, ordered) and `confab-lossy`
   * (unordered, no retransmissions).
   * @param {RTCPeerConnection} pc
   */
  #openData(pc) {
    const reliable = pc.createDataChannel(DATA_RELIABLE);
    const lossy = pc.createDataChannel(DATA_LOSSY, { ordered: false, maxRetransmits: 0 });
    this.#channels = { reliable, lossy };
    reliable.bufferedAmountLowThreshold = DATA_LOW_WATER;
    reliable.onbufferedamountlow = () => this.#emit('databufferedamountlow', {});
    for (const ch of [reliable, lossy]) {
      ch.binaryType = 'arraybuffer';
      ch.onmessage = (ev) => this.#onData(ch === reliable, ev.data);
      ch.onopen = () => {
        if (reliable.readyState === 'open' && lossy.readyState === 'open') this.#emit('dataopen', {});
      };
    }
  }

  /** Whether `send` can send now (both data channels to the server are open). */
  get dataOpen() {
    return this.#channels?.reliable.readyState === 'open' && this.#channels.lossy.readyState === 'open';
  }

  /**
   * Bytes queued on the reliable data channels, not yet sent (for back-pressure): the most on
   * any of them, the server's and the direct ones alike.
   */
  get dataBufferedAmount() {
    return Math.max(this.#channels?.reliable.bufferedAmount ?? 0, this.mesh?.bufferedAmount() ?? 0);
  }

  /**
   * The direct data channels to every recipient, when each of them has one open; else null (the
   * message goes through the server).
   * @param {string[]} ids the recipients (everyone else in the room when empty)
   * @param {boolean} reliable
   * @returns {RTCDataChannel[] | null}
   */
  #directChannels(ids, reliable) {
    const mesh = this.mesh;
    if (!mesh) return null;
    const to = ids.length ? ids : [...this.participants.keys()];
    if (to.length === 0) return null;
    const channels = [];
    for (const id of to) {
      const ch = mesh.channel(id, reliable);
      if (!ch) return null;
      channels.push(ch);
    }
    return channels;
  }

  /**
   * Send a data message to everyone else in the room, or to the participants named in `to`.
   * Text arrives as text, bytes as bytes, tagged with our id (the `data` event). `reliable`
   * (default true): ordered and retransmitted; false: unordered and possibly lost, for state that
   * is sent often (cursors, levels). A message is at most MAX_DATA_MESSAGE bytes, header
   * included; the server also limits each sender's rate (see docs/protocol.md). In a `p2p` or
   * `auto` room a message rides the direct connections when every recipient has one open, and
   * goes through the server otherwise. Returns false when no channel is open yet (see
   * `dataopen`).
   * @param {string | ArrayBuffer | ArrayBufferView} data
   * @param {{reliable?: boolean, to?: string | string[]}} [options]
   * @returns {boolean}
   */
  send(data, { reliable = true, to } = {}) {
    const names = to === undefined ? [] : Array.isArray(to) ? to : [to];
    const direct = this.#directChannels(names, reliable);
    const channel = reliable ? this.#channels?.reliable : this.#channels?.lossy;
    if (!direct && (!channel || channel.readyState !== 'open')) return false;
    const text = typeof data === 'string';
    const payload = text
      ? new TextEncoder().encode(data)
      : data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const ids = names.map((id) => new TextEncoder().encode(id));
    if (ids.length > 64 || ids.some((id) => id.length > 255)) throw new RangeError('send: at most 64 recipients, with ids of at most 255 bytes');
    const size = 2 + ids.reduce((n, id) => n + 1 + id.length, 0) + payload.length;
    if (size > MAX_DATA_MESSAGE) throw new RangeError(`send: a data message of ${size} bytes is over the ${MAX_DATA_MESSAGE}-byte limit`);
    if (direct) {
      // To a peer directly: flags, no sender id (the connection says who), the payload.
      const frame = new Uint8Array(2 + payload.length);
      frame[0] = (text ? DATA_TEXT : 0) | (names.length ? DATA_PRIVATE : 0);
      frame.set(payload, 2);
      for (const ch of direct) ch.send(frame);
      return true;
    }
    const frame = new Uint8Array(size);
    frame[0] = text ? DATA_TEXT : 0;
    frame[1] = ids.length;
    let at = 2;
    for (const id of ids) {
      frame[at++] = id.length;
      frame.set(id, at);
      at += id.length;
    }
    frame.set(payload, at);
    /** @type {RTCDataChannel} */ (channel).send(frame);
    return true;
  }

  /**
   * A data frame: flags, sender id, payload. From the server the sender id is set; on a direct
   * connection it is empty, and `peer` (the other end) is the sender.
   * @param {boolean} reliable
   * @param {unknown} raw
   * @param {string} [peer] the participant at the other end of a direct connection
   */
  #onData(reliable, raw, peer) {
    if (!(raw instanceof ArrayBuffer) || raw.byteLength < 2) return;
    const bytes = new Uint8Array(raw);
    const len = bytes[1];
    if (bytes.length < 2 + len || (peer !== undefined && len !== 0)) return;
    const from = peer ?? new TextDecoder().decode(bytes.subarray(2, 2 + len));
    const payload = bytes.subarray(2 + len);
    const data = bytes[0] & DATA_TEXT ? new TextDecoder().decode(payload) : payload.slice();
    this.#emit('data', { from, data, reliable, private: (bytes[0] & DATA_PRIVATE) !== 0, direct: peer !== undefined });
  }

  /** Send our local description, an offer, with what its sending m-lines carry. */
  #sendOffer() {
    const sdp = this.pc?.localDescription?.sdp;
    if (!sdp || this.pc?.localDescription?.type !== 'offer') return;
    /** @type {Record<string, PublishedTrackMeta>} */
    const tracks = {};
    for (const lt of this.localTracks) {
      const mid = lt.transceiver?.mid ?? null;
      if (mid !== null && lt.transceiver?.direction !== 'stopped') {
        tracks[mid] = { source: lt.source, muted: lt.muted };
      }
    }
    this.#send({ type: 'offer', sdp, tracks });
  }

  /** Perfect negotiation, impolite side: make an offer for our local changes. */
  async #makeOffer() {
    const pc = this.pc;
    if (!pc || this.#closed) return;
    try {
      this.#makingOffer = true;
      await pc.setLocalDescription();
      this.#sendOffer();
    } catch (e) {
      console.warn('confab: making an offer failed:', e);
    } finally {
      this.#makingOffer = false;
    }
  }

  /**
   * Dynacast: encode only the layers the server asks for. Applied in the background, in order
   * per sender (not awaited here: a slow encoder must not hold up signaling); `layers` is
   * emitted once applied (or failed).
   * @param {LayersMessage} msg
   */
  #onLayers(msg) {
    const active = Array.isArray(msg.active) ? msg.active : [];
    const transceiver = this.localTracks
      .map((t) => t.transceiver)
      .find((t) => t !== null && t.mid === msg.track && t.direction !== 'stopped');
    if (!transceiver) {
      this.#emit('layers', msg);
      return;
    }
    const sender = transceiver.sender;
    const next = (this.#senderChains.get(sender) ?? Promise.resolve())
      .then(() => setActiveLayers(sender, active))
      .catch((e) => console.warn('confab: applying layers', active, 'to track', msg.track, 'failed:', e))
      .then(() => {
        if (!this.#closed) this.#emit('layers', msg);
      });
    this.#senderChains.set(sender, next);
  }

  /**
   * Forget what was sent and received about a remote track (`track` null: every track of the
   * participant), so that a track id used again starts afresh.
   * @param {string} participant
   * @param {string | null} track
   */
  #forgetRemote(participant, track) {
    for (const map of [this.#subscriptions, this.#streamStates]) {
      if (track !== null) {
        map.delete(trackKey(participant, track));
        continue;
      }
      for (const key of [...map.keys()]) {
        if (key.startsWith(trackKey(participant, ''))) map.delete(key);
      }
    }
  }

  /** @param {ServerOfferMessage} msg */
  async #onServerOffer(msg) {
    const pc = this.pc;
    if (!pc) return;
    // We are impolite: on a collision our offer wins and the server offers again later.
    if (this.#makingOffer || pc.signalingState !== 'stable') return;
    // Set before applying it: ontrack fires during setRemoteDescription and looks mids up.
    const previous = this.mids;
    this.mids = new Map(Object.entries(msg.tracks ?? {}));
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    } catch (e) {
      this.mids = previous;
      if (this.#holdPublish) this.#releasePublish();
      throw e;
    }
    try {
      await pc.setLocalDescription();
      const local = pc.localDescription;
      if (local && local.type === 'answer') this.#send({ type: 'answer', id: msg.id, sdp: local.sdp });
    } finally {
      if (this.#holdPublish) this.#releasePublish();
    }
    this.#syncRemoteTracks();
  }

  /** @param {ServerAnswerMessage} msg */
  async #onServerAnswer(msg) {
    const pc = this.pc;
    if (!pc || pc.signalingState !== 'have-local-offer') return;
    await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
  }

  /** @param {CandidateMessage} msg */
  async #onServerCandidate(msg) {
    const pc = this.pc;
    if (!pc) return;
    try {
      if (msg.candidate && msg.candidate.candidate) await pc.addIceCandidate(msg.candidate);
    } catch (e) {
      // A candidate of an offer we ignored, or of a stopped m-line: harmless.
      console.debug('confab: ignoring server candidate:', e);
    }
  }

  /**
   * Announce the remote track on `transceiver` if the mid map says what it is and it has not
   * been announced for that yet.
   * @param {RTCRtpTransceiver} transceiver
   * @param {MediaStreamTrack} mediaTrack
   */
  #announceRemote(transceiver, mediaTrack) {
    const mid = transceiver.mid;
    if (mid === null) return;
    const ref = this.mids.get(mid);
    if (!ref) return;
    const key = `${ref.participant}\u0000${ref.track}`;
    if (this.#delivered.get(mid) === key) return;
    const previous = this.#delivered.get(mid);
    if (previous !== undefined) this.#endRemote(mid, previous);
    this.#delivered.set(mid, key);
    this.#carries.set(mediaTrack, key);
    // Media of a peer arriving through the server moves a switch of paths on.
    this.mesh?.flow.watch(transceiver.receiver, (flowing) => {
      if (this.#delivered.get(mid) !== key) return;
      this.#emit('remoteflow', { participant: ref.participant, track: ref.track, flowing });
      this.mesh?.check();
    });
    this.#emit('remotetrack', {
      participant: ref.participant,
      track: ref.track,
      kind: mediaTrack.kind === 'audio' ? 'audio' : 'video',
      mid,
      mediaTrack,
    });
  }

  /**
   * @param {string} mid
   * @param {string} key
   */
  #endRemote(mid, key) {
    this.#delivered.delete(mid);
    const [participant, track] = key.split('\u0000');
    this.#emit('remotetrackended', { participant, track, mid });
  }

  /**
   * After applying a server offer: announce m-lines re-used for another track (ontrack does
   * not fire again for those) and end the ones that no longer carry remote media.
   */
  #syncRemoteTracks() {
    const pc = this.pc;
    if (!pc) return;
    for (const [mid, key] of [...this.#delivered]) {
      if (!this.mids.has(mid)) this.#endRemote(mid, key);
    }
    for (const t of pc.getTransceivers()) {
      if (t.mid === null || t.direction === 'stopped' || !this.mids.has(t.mid)) continue;
      if (t.currentDirection !== 'recvonly' && t.currentDirection !== 'sendrecv') continue;
      this.#announceRemote(t, t.receiver.track);
    }
    this.mesh?.check();
  }

  #closePeer() {
    this.#channels = null;
    this.mesh?.close();
    if (this.pc) {
      this.pc.onnegotiationneeded = null;
      this.pc.onicecandidate = null;
      this.pc.ontrack = null;
      this.pc.onconnectionstatechange = null;
      this.pc.oniceconnectionstatechange = null;
      this.pc.close();
    }
  }

  /**
   * @param {number} code
   * @param {string} reason
   * @param {boolean} closeSocket
   */
  #shutdown(code, reason, closeSocket) {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#holdTimer);
    const joined = this.state === 'joined' || this.state === 'reconnecting';
    this.state = 'closed';
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#iceTimer);
    this.#closePeer();
    const ws = this.#ws;
    if (ws) {
      ws.onopen = null;
      ws.onmessage = null;
      ws.onclose = null;
      if (closeSocket || ws.readyState === WebSocket.CONNECTING) {
        try {
          ws.close(1000);
        } catch {
          // already closing
        }
      }
    }
    this.#emit('closed', { code, reason, error: this.#lastError, joined, local: this.#localClose });
  }
}

/**
 * Mark each simulcast encoding of `sender` active if its rid is in `active`, inactive if not;
 * encodings without a rid are left alone. Calls setParameters only when something changes.
 * @param {RTCRtpSender} sender
 * @param {string[]} active
 */
async function setActiveLayers(sender, active) {
  const params = sender.getParameters();
  let changed = false;
  for (const e of params.encodings) {
    if (!e.rid) continue;
    const on = active.includes(e.rid);
    if (e.active !== on) {
      e.active = on;
      changed = true;
    }
  }
  if (changed) await sender.setParameters(params);
}

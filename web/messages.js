// @ts-check
// The messages of confab's signaling protocol (docs/protocol.md) as JSDoc types, for protocol.js
// and app.js. Types only: nothing here runs, and the browser never loads this file.

// ---------------------------------------------------------------------------
// Value types

/** @typedef {'audio' | 'video'} TrackKind */
/** @typedef {'camera' | 'microphone' | 'screen' | 'screen_audio'} TrackSource */

/**
 * A published track as the other participants see it.
 * @typedef {object} TrackInfo
 * @property {string} id unique within its participant (the mid of the publisher's m-line)
 * @property {TrackKind} kind
 * @property {TrackSource} source
 * @property {boolean} muted
 */

/**
 * A participant of a room, with the tracks it publishes.
 * @typedef {object} ParticipantInfo
 * @property {string} id server-assigned, opaque
 * @property {string} name display name
 * @property {TrackInfo[]} tracks
 * @property {boolean} [reconnecting] its connection to the server was lost; its place is kept
 */

/**
 * An ICE candidate, shaped like `RTCIceCandidateInit`.
 * @typedef {object} IceCandidate
 * @property {string} candidate the `candidate:...` value; empty marks the end of candidates
 * @property {string | null} [sdpMid]
 * @property {number | null} [sdpMLineIndex]
 * @property {string | null} [usernameFragment]
 */

/**
 * What a publisher says about one of its sending m-lines.
 * @typedef {object} PublishedTrackMeta
 * @property {TrackSource} [source]
 * @property {boolean} [muted]
 */

/**
 * Which remote track an m-line of a server offer carries.
 * @typedef {object} TrackRef
 * @property {string} participant the publisher's id
 * @property {string} track the publisher's track id
 */

/** @typedef {'left' | 'disconnected' | 'media_failed' | 'removed'} LeaveReason */

/**
 * A room's mode: media through the server (`sfu`), directly between the participants (`p2p`),
 * or directly while two are present and through the server from the third on (`auto`).
 * @typedef {'sfu' | 'p2p' | 'auto'} RoomMode
 */

/** @typedef {'sfu' | 'p2p'} MediaPath how media travels in a room now */

/**
 * A simulcast layer: the publisher's `rid`, lowest to highest (`q` quarter, `h` half, `f` full).
 * Typed as any string, since a publisher other than this client may name its layers otherwise.
 * @typedef {string} LayerRid
 */

/** @typedef {'active' | 'paused'} StreamState */

/**
 * Why a `stream_state` changed.
 * @typedef {'start' | 'bandwidth' | 'size' | 'hidden' | 'publisher' | 'muted'} StreamStateReason
 */

/**
 * @typedef {'bad_message' | 'unknown_message' | 'unsupported_version' | 'invalid_room'
 *   | 'invalid_name' | 'not_joined' | 'already_joined' | 'invalid_sdp' | 'stale_answer'
 *   | 'invalid_candidate' | 'unknown_track' | 'unauthorized' | 'forbidden' | 'shutting_down'
 *   | 'rate_limited' | 'server_full' | 'room_full' | 'unknown_participant' | 'reconnect_failed'
 *   | 'media_failed' | 'too_slow' | 'removed' | 'internal'} ErrorCode
 */

// ---------------------------------------------------------------------------
// Messages from client to server

/** @typedef {{type: 'join', room: string, name: string, protocol?: number, token?: string, mode?: RoomMode, reconnect?: {participant: string, token: string}}} JoinMessage */
/** @typedef {{type: 'offer', sdp: string, tracks?: Record<string, PublishedTrackMeta>}} ClientOfferMessage */
/** @typedef {{type: 'answer', id: number, sdp: string}} ClientAnswerMessage */
/** @typedef {{type: 'candidate', candidate: IceCandidate | null}} CandidateMessage */
/** @typedef {{type: 'mute', track: string, muted: boolean}} MuteMessage */
/** @typedef {{type: 'leave'}} LeaveMessage */
/** @typedef {{type: 'ping', id?: number}} PingMessage */
/** A message for another participant of the room, relayed by the server. @typedef {{type: 'signal', to: string, data: SignalData}} SignalToMessage */

/**
 * How large a remote video track is shown, in device pixels; 0 x 0: not shown.
 * @typedef {object} SubscriptionMessage
 * @property {'subscription'} type
 * @property {string} participant the publisher's id
 * @property {string} track the publisher's track id
 * @property {number} width
 * @property {number} height
 */

/**
 * @typedef {JoinMessage | ClientOfferMessage | ClientAnswerMessage | CandidateMessage
 *   | MuteMessage | LeaveMessage | PingMessage | SubscriptionMessage | SignalToMessage} ClientMessage
 */

// ---------------------------------------------------------------------------
// Messages from server to client

/**
 * @typedef {object} JoinedMessage
 * @property {'joined'} type
 * @property {number} protocol
 * @property {string} room
 * @property {RoomMode} [mode] the room's mode (`sfu` when absent: a server before peer-to-peer rooms)
 * @property {MediaPath} [path] how media travels in the room now
 * @property {ParticipantInfo} participant you
 * @property {ParticipantInfo[]} participants the others present
 * @property {RTCIceServer[]} iceServers
 * @property {Grants} [grants] what you may do (from your access token); all of it when absent
 * @property {string} [reconnectToken] takes this place back after the socket broke
 * @property {boolean} [reconnected] this answers a `join` with `reconnect`: the same place
 */

/**
 * @typedef {object} Grants
 * @property {boolean} canPublish without it, the server forwards none of your media
 * @property {boolean} canSubscribe
 * @property {boolean} canPublishData
 */
/** @typedef {{type: 'participant_joined', participant: ParticipantInfo}} ParticipantJoinedMessage */
/** @typedef {{type: 'participant_left', participant: string, reason: LeaveReason}} ParticipantLeftMessage */
/** Someone's connection to the server was lost (its place is kept), or it is back. @typedef {{type: 'participant_reconnecting' | 'participant_reconnected', participant: string}} ReconnectingMessage */
/** @typedef {{type: 'track_published', participant: string, track: TrackInfo}} TrackPublishedMessage */
/** @typedef {{type: 'track_unpublished', participant: string, track: string}} TrackUnpublishedMessage */
/** @typedef {{type: 'track_muted', participant: string, track: string}} TrackMutedMessage */
/** @typedef {{type: 'track_unmuted', participant: string, track: string}} TrackUnmutedMessage */
/** @typedef {{type: 'offer', id: number, sdp: string, tracks: Record<string, TrackRef>}} ServerOfferMessage */
/** @typedef {{type: 'answer', sdp: string}} ServerAnswerMessage */
/** @typedef {{type: 'pong', id?: number}} PongMessage */
/**
 * The server is shutting down: it closes this session when everyone has left or after `seconds`.
 * @typedef {{type: 'draining', seconds: number}} DrainingMessage
 */
/** @typedef {{type: 'error', code: ErrorCode, message: string, request?: string}} ErrorMessage */
/** In an `auto` room, how media travels changed. @typedef {{type: 'path', path: MediaPath}} PathMessage */
/** A `signal` another participant sent us. @typedef {{type: 'signal', from: string, data: SignalData}} SignalFromMessage */

/**
 * What the server sends us of one remote video track, whenever that changes.
 * @typedef {object} StreamStateMessage
 * @property {'stream_state'} type
 * @property {string} participant the publisher's id
 * @property {string} track the publisher's track id
 * @property {StreamState} state `active`: media flows; `paused`: nothing is sent
 * @property {LayerRid | null} layer the simulcast layer forwarded now; null if not simulcast or paused
 * @property {StreamStateReason} reason why it changed
 * @property {number | null} estimate the server's estimate of our downlink in bit/s, if it has one
 */

/**
 * Dynacast, to a publisher: the layers of its simulcast track `track` (its mid) that some
 * subscriber needs now; the others should stop being encoded.
 * @typedef {{type: 'layers', track: string, active: LayerRid[]}} LayersMessage
 */

/**
 * Who speaks in the room (loudest first, `level` 0 to 100) and the active speaker (the one
 * speaking, or the last who did), sent when either changes.
 * @typedef {{type: 'speakers', active: string | null, speaking: {participant: string, level: number}[]}} SpeakersMessage
 */

/**
 * @typedef {JoinedMessage | ParticipantJoinedMessage | ParticipantLeftMessage
 *   | TrackPublishedMessage | TrackUnpublishedMessage | TrackMutedMessage | TrackUnmutedMessage
 *   | ServerOfferMessage | ServerAnswerMessage | CandidateMessage | PongMessage
 *   | ErrorMessage | StreamStateMessage | LayersMessage | DrainingMessage
 *   | SpeakersMessage | PathMessage | SignalFromMessage | ReconnectingMessage} ServerMessage
 */

// ---------------------------------------------------------------------------
// The `data` of `signal` between two confab web clients (web/mesh.js; protocol.md, "Peer-to-peer
// rooms"). The server relays it unread; each field is optional and one message may carry several.

/**
 * @typedef {object} SignalData
 * @property {{type: RTCSdpType, sdp: string}} [description] an offer or answer of the direct connection
 * @property {Record<string, PublishedTrackMeta>} [tracks] the sender's own sending m-lines by mid
 *   (with a description, or alone when one is muted or unmuted)
 * @property {IceCandidate | null} [candidate] a trickled candidate; null: end of candidates
 * @property {MediaPath} [receiving] the sender now receives the recipient's media on that path
 * @property {boolean} [bye] the sender closed the direct connection
 */

/** Data channel labels (docs/protocol.md, "Data channels"), on the connection to the server and
 * on direct ones alike. */
export const DATA_RELIABLE = 'confab';
export const DATA_LOSSY = 'confab-lossy';
/** `databufferedamountlow` fires when a reliable channel's queue falls under this. */
export const DATA_LOW_WATER = 256 * 1024;

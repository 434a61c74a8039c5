//! The values that go in and out of the SFU core: commands from signaling, events back to it,
//! datagrams to transmit, counters.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// A participant's id, chosen by the caller (the signaling edge) and unique within the core.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(Arc<str>);

impl ParticipantId {
    /// Wrap an id string.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        ParticipantId(id.into())
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Sound.
    Audio,
    /// Pictures.
    Video,
}

/// Where a published track comes from, as its publisher declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A camera.
    Camera,
    /// A microphone.
    Microphone,
    /// A shared screen.
    Screen,
    /// The sound of a shared screen.
    ScreenAudio,
}

/// What a publisher declares about one of its sending m-lines (by mid) along with its offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackMeta {
    /// Where it comes from; by kind when `None`.
    pub source: Option<Source>,
    /// Initial mute state.
    pub muted: bool,
}

/// A published track as the room sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    /// Unique within its participant (the mid of the publisher's m-line).
    pub id: String,
    /// Audio or video.
    pub kind: Kind,
    /// Camera, microphone...
    pub source: Source,
    /// Muted by its publisher.
    pub muted: bool,
}

/// A participant as the room sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantInfo {
    /// Its id.
    pub id: ParticipantId,
    /// Its display name.
    pub name: String,
    /// Its published tracks.
    pub tracks: Vec<TrackInfo>,
    /// Its signaling connection was lost and its place is kept ([`Command::Suspend`]).
    pub reconnecting: bool,
}

/// Why a participant left its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// It asked to.
    Left,
    /// Its signaling connection closed or went quiet.
    Disconnected,
    /// Its media connection failed (ICE never connected, or stopped).
    MediaFailed,
    /// An administrator removed it ([`Command::Remove`]).
    Removed,
    /// The SFU hit a fault handling it (a bug); it was removed to protect the others.
    Internal,
}

/// How a participant takes part in its room.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Role {
    /// Publishes and receives everything published in the room, negotiating both ways (the
    /// WebSocket protocol).
    #[default]
    Member,
    /// Publishes only; the SFU never offers it anything (a WHIP publisher).
    Publisher,
    /// Receives one publisher on the m-lines of its own offer and nothing else, and is not shown
    /// to the room (a WHEP player). `None`: the room's earliest publisher still present, and the
    /// next one when it leaves.
    Viewer(Option<ParticipantId>),
}

/// What a participant is allowed to do in its room, from its access token (all of it when the
/// server runs without tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants {
    /// May publish audio and video. Without it, the answer to its offer goes out but what it
    /// sends is never forwarded, and the offer gets [`crate::Error::NotAllowed`].
    pub publish: bool,
    /// May receive what the others publish. Without it, it is offered nothing.
    pub subscribe: bool,
    /// May send data messages (docs/protocol.md, "Data channels"). Without it, what it sends on
    /// its data channels is dropped (it still receives the room's).
    pub publish_data: bool,
}

impl Default for Grants {
    fn default() -> Grants {
        Grants { publish: true, subscribe: true, publish_data: true }
    }
}

/// How media travels in a room, chosen when it opens (docs/protocol.md, "Peer-to-peer rooms").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RoomMode {
    /// Through the SFU.
    #[default]
    Sfu,
    /// Directly between each pair of participants; the core relays their signaling
    /// ([`Command::Relay`]) and forwards no media.
    P2p,
    /// [`Path::P2p`] while the room holds two participants, [`Path::Sfu`] from the third on.
    Auto,
}

/// The path media takes in a room now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Through the SFU.
    Sfu,
    /// Directly between the participants.
    P2p,
}

/// Input from signaling, for one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Enter `room` (created if absent) as `name`.
    Join {
        /// The new participant's id; must be unused.
        participant: ParticipantId,
        /// Room id (validated by the caller).
        room: String,
        /// Display name (validated by the caller).
        name: String,
        /// How it takes part.
        role: Role,
        /// What it may do.
        grants: Grants,
        /// The room's mode, if this join opens the room (ignored otherwise).
        mode: RoomMode,
    },
    /// A message for another participant of the same room (peer-to-peer signaling), which the
    /// core hands on as [`Signal::Relayed`] without reading it.
    Relay {
        /// The sender.
        participant: ParticipantId,
        /// The recipient.
        to: ParticipantId,
        /// The message.
        payload: String,
    },
    /// An SDP offer from the participant, with metadata of its sending m-lines by mid.
    Offer {
        /// Who.
        participant: ParticipantId,
        /// The SDP.
        sdp: String,
        /// Metadata by mid.
        tracks: Vec<(String, TrackMeta)>,
    },
    /// The participant's answer to the SFU's offer `id`.
    Answer {
        /// Who.
        participant: ParticipantId,
        /// The offer answered.
        id: u64,
        /// The SDP.
        sdp: String,
    },
    /// A trickled remote ICE candidate (`candidate:...` attribute value).
    Candidate {
        /// Who.
        participant: ParticipantId,
        /// The candidate line.
        candidate: String,
    },
    /// Mute or unmute one of the participant's published tracks.
    Mute {
        /// Who.
        participant: ParticipantId,
        /// Its track id.
        track: String,
        /// New state.
        muted: bool,
    },
    /// How large a subscriber shows a remote track (device pixels; 0 x 0: not shown).
    Subscription {
        /// The subscriber.
        participant: ParticipantId,
        /// The publisher.
        publisher: ParticipantId,
        /// The publisher's track id.
        track: String,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// The participant's signaling connection was lost: its place (and media) is kept while it
    /// reconnects, and the room is told ([`Signal::Reconnecting`]). Removing it when it does not
    /// come back is the caller's (a [`Command::Leave`]).
    Suspend {
        /// Who.
        participant: ParticipantId,
    },
    /// The participant is back on a new signaling connection: it gets a fresh
    /// [`Signal::Joined`], an offer of whatever a lost exchange left out, and the room is told.
    Resume {
        /// Who.
        participant: ParticipantId,
    },
    /// Remove the participant.
    Leave {
        /// Who.
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// An administrator removes the participant: it leaves with [`LeaveReason::Removed`] and an
    /// [`Event::Removed`] follows, for its signaling to tell it and close.
    Remove {
        /// Who.
        participant: ParticipantId,
    },
    /// An administrator mutes (or unmutes) a participant's published track: as its own `Mute`,
    /// and the participant is told with a `TrackMuted` about its own track.
    ForceMute {
        /// Whose track.
        participant: ParticipantId,
        /// The track id.
        track: String,
        /// Muted or not.
        muted: bool,
    },
}

/// A room as an operator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// Its id.
    pub name: String,
    /// Its mode.
    pub mode: RoomMode,
    /// The participants shown in it, with their tracks.
    pub participants: Vec<ParticipantInfo>,
    /// WHEP players watching it (not shown to the room).
    pub viewers: usize,
}

/// Output of the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message for one participant's signaling connection.
    Signal {
        /// The recipient.
        to: ParticipantId,
        /// The message.
        signal: Signal,
    },
    /// The core removed a participant by itself (its media failed, or a fault); its room has
    /// been told. The signaling edge should tell the participant why and close its connection.
    Removed {
        /// Who.
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// The last participant left a room, which no longer exists.
    RoomClosed {
        /// The room id.
        room: String,
    },
    /// Something an operator may want to hear of (webhooks).
    Activity(Activity),
}

/// What happens in the rooms, for operators ([`Event::Activity`]); a room's end is
/// [`Event::RoomClosed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// A join opened a room.
    RoomStarted {
        /// The room id.
        room: String,
    },
    /// A participant is shown in its room (a WHIP publisher once its offer is accepted; WHEP
    /// players never are).
    ParticipantJoined {
        /// The room id.
        room: String,
        /// Who.
        participant: ParticipantInfo,
    },
    /// A participant shown in its room left it.
    ParticipantLeft {
        /// The room id.
        room: String,
        /// Who.
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// A track was published.
    TrackPublished {
        /// The room id.
        room: String,
        /// The publisher.
        participant: ParticipantId,
        /// The track.
        track: TrackInfo,
    },
    /// A track went away (unpublished, or its publisher left).
    TrackUnpublished {
        /// The room id.
        room: String,
        /// The publisher.
        participant: ParticipantId,
        /// The track id.
        track: String,
    },
}

/// A message for one participant, which the signaling edge puts on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// The recipient is in `room`.
    Joined {
        /// The room.
        room: String,
        /// The room's mode.
        mode: RoomMode,
        /// How media travels in it now.
        path: Path,
        /// The recipient.
        you: ParticipantInfo,
        /// The others present.
        others: Vec<ParticipantInfo>,
    },
    /// Someone entered the room.
    ParticipantJoined(ParticipantInfo),
    /// Someone's signaling connection was lost (`true`), or it is back (`false`).
    Reconnecting {
        /// Who.
        participant: ParticipantId,
        /// Lost or back.
        reconnecting: bool,
    },
    /// In an [`RoomMode::Auto`] room, how media travels changed.
    Path(Path),
    /// A [`Command::Relay`] from another participant of the room.
    Relayed {
        /// The sender.
        from: ParticipantId,
        /// Its message.
        payload: String,
    },
    /// Someone left the room.
    ParticipantLeft {
        /// Who.
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// Someone published a track.
    TrackPublished {
        /// The publisher.
        participant: ParticipantId,
        /// The track.
        track: TrackInfo,
    },
    /// Someone stopped publishing a track.
    TrackUnpublished {
        /// The publisher.
        participant: ParticipantId,
        /// The track id.
        track: String,
    },
    /// Someone muted or unmuted a track.
    TrackMuted {
        /// The publisher.
        participant: ParticipantId,
        /// The track id.
        track: String,
        /// New state.
        muted: bool,
    },
    /// An offer from the SFU.
    Offer {
        /// Increases per offer; the answer must echo it.
        id: u64,
        /// The SDP.
        sdp: String,
        /// Each m-line carrying remote media: (mid, publisher, publisher's track id).
        tracks: Vec<(String, ParticipantId, String)>,
    },
    /// The SFU's answer to the recipient's offer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// What the subscriber receives of a remote video track changed (started, switched layer,
    /// paused or resumed).
    StreamState {
        /// The publisher.
        participant: ParticipantId,
        /// The publisher's track id.
        track: String,
        /// Whether media flows.
        active: bool,
        /// The simulcast layer (rid) forwarded, if any.
        layer: Option<String>,
        /// Why it changed: start, bandwidth, size, hidden, publisher.
        reason: &'static str,
        /// The subscriber's downlink estimate, bit/s.
        estimate: Option<u64>,
    },
    /// Who speaks in the room, and the active speaker, when either changed.
    Speakers {
        /// The active speaker: the one speaking now, or the last one who did.
        active: Option<ParticipantId>,
        /// Those speaking now, loudest first, with their loudness (0 to 100).
        speaking: Vec<(ParticipantId, u8)>,
    },
    /// Dynacast, to a publisher: the layers (rids) of its track some subscriber needs.
    Layers {
        /// The publisher's own track id.
        track: String,
        /// The rids to keep sending.
        active: Vec<String>,
    },
}

/// How a packet travels between a peer and the SFU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// A UDP datagram.
    Udp,
    /// One RFC 4571 frame on an ICE-TCP connection (RFC 6544): a packet whose 16-bit length
    /// prefix the driver adds and strips.
    Tcp,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Over UDP, or as a frame on the TCP connection from `destination`.
    pub transport: Transport,
    /// The local address to send from (one of the configured candidate addresses).
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// Counters of what the core has done since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams handed to the core.
    pub datagrams_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams dropped because they belong to no participant.
    pub datagrams_unrouted: u64,
    /// Datagrams dropped because they are neither STUN, DTLS, RTP nor RTCP.
    pub datagrams_malformed: u64,
    /// RTP packets received from publishers (after decryption and de-duplication).
    pub rtp_in: u64,
    /// RTP packets written to subscribers.
    pub rtp_forwarded: u64,
    /// Payload bytes of those.
    pub rtp_forwarded_bytes: u64,
    /// Datagrams handed out to transmit.
    pub datagrams_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Keyframe requests sent to publishers.
    pub keyframe_requests: u64,
    /// Keyframe requests (PLI and FIR) received from subscribers.
    pub keyframe_requests_received: u64,
    /// NACKs received from subscribers (answered from str0m's send buffers, by RTX).
    pub nacks_received: u64,
    /// NACKs sent to publishers for packets lost on their way in.
    pub nacks_sent: u64,
    /// Simulcast layer switches, resumes and starts on subscribers' outgoing video.
    pub layer_switches: u64,
    /// Data messages received from participants (on their data channels).
    pub data_in: u64,
    /// Data messages delivered to participants (one per recipient).
    pub data_out: u64,
    /// Data messages dropped: malformed, over a size or rate limit, not granted, or for a
    /// recipient that is not reading (counted once per message and recipient).
    pub data_dropped: u64,
    /// Participants present now.
    pub participants: u64,
    /// Rooms open now.
    pub rooms: u64,
}

/// What one subscriber receives of the video tracks it is subscribed to: layer selection as the
/// operator sees it ([`crate::Sfu::downlinks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownlinkStats {
    /// The subscriber.
    pub participant: ParticipantId,
    /// Its downlink estimate, bit/s.
    pub estimate: Option<u64>,
    /// One entry per remote video track.
    pub tracks: Vec<OutStreamStats>,
}

/// One remote video track as a subscriber receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutStreamStats {
    /// The publisher.
    pub publisher: ParticipantId,
    /// The publisher's track id.
    pub track: String,
    /// The layer (rid) forwarded now, if any.
    pub layer: Option<String>,
    /// The layer (rid) the allocator chose (forwarded from its next keyframe); `None`: paused.
    pub target: Option<String>,
    /// Why the target last changed.
    pub reason: &'static str,
    /// Layer switches, starts and resumes so far.
    pub switches: u64,
    /// The tile size the subscriber reported.
    pub size: Option<(u32, u32)>,
}


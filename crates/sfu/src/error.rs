//! The SFU core's error enum.

/// Why a [`Command`](crate::Command) was refused. The core's state is unchanged by a refused
/// command unless the variant says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The command names a participant the core does not have.
    #[error("no such participant")]
    UnknownParticipant,
    /// `Join` with an id already in use.
    #[error("participant id already in use")]
    DuplicateParticipant,
    /// The SDP did not parse, or could not be applied; the session is as it was.
    #[error("invalid SDP: {0}")]
    InvalidSdp(String),
    /// An answer to an offer that is not the outstanding one.
    #[error("answer to offer {got}, but the outstanding offer is {expected:?}")]
    StaleAnswer {
        /// The outstanding offer, if any.
        expected: Option<u64>,
        /// The offer the answer names.
        got: u64,
    },
    /// The participant's grants do not allow this (what, and why).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// A candidate line that did not parse.
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
    /// A viewer's `Join` when the publisher it asks for is not in the room (or, for the room's
    /// earliest publisher, nobody publishes there).
    #[error("no publisher to watch")]
    NoPublisher,
    /// `Relay` to a participant that is not in the sender's room (or to the sender itself).
    #[error("no participant {0:?} in your room")]
    NotInRoom(String),
    /// A WHIP publisher or WHEP player for a peer-to-peer room, where the SFU carries no media.
    #[error("the room is peer-to-peer: its media does not go through the server")]
    PeerToPeerRoom,
    /// `Mute` for a track the participant does not publish.
    #[error("no published track {0:?}")]
    UnknownTrack(String),
    /// The core has no usable local candidate address.
    #[error("invalid local candidate {0}: {1}")]
    InvalidLocalCandidate(std::net::SocketAddr, String),
    /// The participant's media engine failed (it has been removed; a [`crate::Event::Removed`]
    /// follows).
    #[error("media engine fault: {0}")]
    Engine(String),
}

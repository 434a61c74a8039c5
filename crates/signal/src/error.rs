//! The crate's error enum and the protocol's stable error codes.

use serde::{Deserialize, Serialize};

/// A stable, machine-readable error code, as carried by the `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not JSON, not an object, a missing or mistyped field, or a binary frame.
    BadMessage,
    /// A `type` this server does not know.
    UnknownMessage,
    /// `join` asked for a protocol version the server does not speak.
    UnsupportedVersion,
    /// The room id breaks the naming rule.
    InvalidRoom,
    /// The display name breaks the naming rule.
    InvalidName,
    /// A message other than `join`/`ping` before `joined`.
    NotJoined,
    /// A second `join` on the same socket.
    AlreadyJoined,
    /// The SDP could not be parsed or used.
    InvalidSdp,
    /// An `answer` whose `id` is not the outstanding server offer.
    StaleAnswer,
    /// A candidate line that does not parse.
    InvalidCandidate,
    /// `mute` names a track the client has not published.
    UnknownTrack,
    /// `signal` to someone who is not in the sender's room.
    UnknownParticipant,
    /// `join` with `reconnect` for a place the server no longer keeps (or a wrong token).
    ReconnectFailed,
    /// The access token is missing, malformed, forged, expired or of an unknown key.
    Unauthorized,
    /// The access token is valid but does not grant what was asked.
    Forbidden,
    /// The server is shutting down and takes no new participants.
    ShuttingDown,
    /// Too many joins from the client's address: wait and try again.
    RateLimited,
    /// The server cannot take another participant now.
    ServerFull,
    /// The room cannot take another participant.
    RoomFull,
    /// The participant's media connection failed; it has been removed.
    MediaFailed,
    /// The client did not read its messages fast enough; it has been removed.
    TooSlow,
    /// An administrator removed the participant from its room.
    Removed,
    /// A server fault.
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire, e.g. `"invalid_room"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::InvalidSdp => "invalid_sdp",
            ErrorCode::StaleAnswer => "stale_answer",
            ErrorCode::InvalidCandidate => "invalid_candidate",
            ErrorCode::UnknownTrack => "unknown_track",
            ErrorCode::UnknownParticipant => "unknown_participant",
            ErrorCode::ReconnectFailed => "reconnect_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::MediaFailed => "media_failed",
            ErrorCode::TooSlow => "too_slow",
            ErrorCode::Removed => "removed",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What can be wrong with a message a client sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The frame is not a well-formed message (JSON syntax, shape or field types).
    #[error("malformed message: {0}")]
    BadMessage(String),
    /// The message's `type` is not one this version knows.
    #[error("unknown message type {0:?}")]
    UnknownMessage(String),
    /// `join` asked for a protocol version other than the one spoken here.
    #[error("protocol version {0} is not supported (this server speaks {v})", v = crate::PROTOCOL_VERSION)]
    UnsupportedVersion(u32),
    /// A room id breaks the naming rule; the text says how.
    #[error("invalid room: {0}")]
    InvalidRoom(&'static str),
    /// A display name breaks the naming rule; the text says how.
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
}

impl Error {
    /// The stable code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadMessage(_) => ErrorCode::BadMessage,
            Error::UnknownMessage(_) => ErrorCode::UnknownMessage,
            Error::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            Error::InvalidRoom(_) => ErrorCode::InvalidRoom,
            Error::InvalidName(_) => ErrorCode::InvalidName,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::BadMessage,
            ErrorCode::UnknownMessage,
            ErrorCode::UnsupportedVersion,
            ErrorCode::InvalidRoom,
            ErrorCode::InvalidName,
            ErrorCode::NotJoined,
            ErrorCode::AlreadyJoined,
            ErrorCode::InvalidSdp,
            ErrorCode::StaleAnswer,
            ErrorCode::InvalidCandidate,
            ErrorCode::UnknownTrack,
            ErrorCode::UnknownParticipant,
            ErrorCode::ReconnectFailed,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::ShuttingDown,
            ErrorCode::RateLimited,
            ErrorCode::ServerFull,
            ErrorCode::RoomFull,
            ErrorCode::MediaFailed,
            ErrorCode::TooSlow,
            ErrorCode::Removed,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}

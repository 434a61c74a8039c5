//! Messages from server to client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::types::{IceCandidate, MediaPath, ParticipantInfo, RoomMode, TrackInfo};

/// A message the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// You are in the room.
    #[serde(rename_all = "camelCase")]
    Joined {
        /// Protocol version the server speaks.
        protocol: u32,
        /// The room joined.
        room: String,
        /// The room's mode.
        mode: RoomMode,
        /// How media travels in the room now.
        path: MediaPath,
        /// You.
        participant: ParticipantInfo,
        /// The others present, with their tracks.
        participants: Vec<ParticipantInfo>,
        /// ICE servers for the client's `RTCPeerConnection`.
        ice_servers: Vec<IceServer>,
        /// What this participant may do (from its access token; everything without tokens).
        grants: Grants,
        /// The secret that takes this place back after the socket is lost (`join`'s
        /// `reconnect`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reconnect_token: Option<String>,
        /// This answers a `join` with `reconnect`: the same place as before.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reconnected: bool,
    },
    /// Someone entered the room.
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone's connection to the server was lost; its place is kept while it reconnects.
    ParticipantReconnecting {
        /// Who.
        participant: String,
    },
    /// Someone who was reconnecting is back.
    ParticipantReconnected {
        /// Who.
        participant: String,
    },
    /// Someone left the room.
    ParticipantLeft {
        /// Their id.
        participant: String,
        /// Why.
        reason: LeaveReason,
    },
    /// A participant published a track; its media follows in a server offer.
    TrackPublished {
        /// The publisher's id.
        participant: String,
        /// The track.
        track: TrackInfo,
    },
    /// A participant stopped publishing a track.
    TrackUnpublished {
        /// The publisher's id.
        participant: String,
        /// The track id.
        track: String,
    },
    /// A participant muted a track.
    TrackMuted {
        /// The publisher's id.
        participant: String,
        /// The track id.
        track: String,
    },
    /// A participant unmuted a track.
    TrackUnmuted {
        /// The publisher's id.
        participant: String,
        /// The track id.
        track: String,
    },
    /// An SDP offer from the server.
    Offer {
        /// Increases with every server offer on the connection; the answer echoes it.
        id: u64,
        /// The SDP.
        sdp: String,
        /// Every m-line of the offer carrying remote media, by mid in the client's connection.
        tracks: BTreeMap<String, TrackRef>,
    },
    /// The server's answer to the client's last offer.
    Answer {
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate of the server (`None`: end of candidates).
    Candidate {
        /// The candidate.
        candidate: Option<IceCandidate>,
    },
    /// What the server sends you of one remote video track changed.
    StreamState {
        /// The publisher.
        participant: String,
        /// Its track id.
        track: String,
        /// `active` or `paused`.
        state: StreamActivity,
        /// The simulcast layer (rid) forwarded now, if any.
        layer: Option<String>,
        /// Why it changed: start, bandwidth, size, hidden, publisher.
        reason: String,
        /// Your downlink estimate, bit/s.
        estimate: Option<u64>,
    },
    /// Who speaks in your room, and the active speaker, when either changed.
    Speakers {
        /// The active speaker: the one speaking now, or the last one who did (`null` until
        /// someone has spoken).
        active: Option<String>,
        /// Those speaking now, loudest first.
        speaking: Vec<Speaking>,
    },
    /// Dynacast: the layers (rids) of your track `track` somebody needs now.
    Layers {
        /// Your track id (its mid).
        track: String,
        /// The rids to keep encoding.
        active: Vec<String>,
    },
    /// In an `auto` room, how media travels changed.
    Path {
        /// The new path.
        path: MediaPath,
    },
    /// A `signal` from another participant of the room, forwarded as it sent it.
    Signal {
        /// The sender's participant id.
        from: String,
        /// What it sent.
        data: serde_json::Map<String, serde_json::Value>,
    },
    /// The server is shutting down: it takes no new participants, and closes this session
    /// when everyone has left or `seconds` have passed, whichever comes first.
    Draining {
        /// The most seconds left.
        seconds: u64,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Something went wrong.
    Error {
        /// Stable, machine-readable.
        code: ErrorCode,
        /// For humans.
        message: String,
        /// The `type` of the message that caused it, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

impl ServerMessage {
    /// The message as one JSON text frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse a server frame (for clients written in Rust, such as tests and the load tester).
    pub fn from_json(text: &str) -> Result<ServerMessage, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// An `error` message.
    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
            request: request.map(str::to_owned),
        }
    }
}

/// Whether media of a remote track flows to you.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamActivity {
    /// Media flows.
    Active,
    /// Nothing is sent (see the reason).
    Paused,
}

/// One participant speaking, in a `speakers` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speaking {
    /// Its id.
    pub participant: String,
    /// How loud, 0 (silence) to 100 (0 dBov), from its audio-level header extension.
    pub level: u8,
}

/// Which remote track an m-line of a server offer carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackRef {
    /// The publisher's id.
    pub participant: String,
    /// The publisher's track id.
    pub track: String,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its socket closed or went quiet.
    Disconnected,
    /// Its media connection failed.
    MediaFailed,
    /// An administrator removed it.
    Removed,
}

/// What a participant may do in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grants {
    /// May publish audio and video; without it the server forwards none of its media.
    pub can_publish: bool,
    /// May receive the others' media.
    pub can_subscribe: bool,
    /// May send data messages.
    pub can_publish_data: bool,
}

impl Default for Grants {
    fn default() -> Grants {
        Grants { can_publish: true, can_subscribe: true, can_publish_data: true }
    }
}

/// An ICE server for the client's `RTCPeerConnection` (`RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:`/`turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{TrackKind, TrackSource};

    fn track() -> TrackInfo {
        TrackInfo {
            id: "1".into(),
            kind: TrackKind::Video,
            source: TrackSource::Camera,
            muted: false,
        }
    }

    #[test]
    fn messages_serialize_as_documented() {
        let joined = ServerMessage::Joined {
            protocol: 1,
            room: "standup".into(),
            mode: RoomMode::Sfu,
            path: MediaPath::Sfu,
            participant: ParticipantInfo { id: "PkX3".into(), name: "Ada".into(), tracks: vec![], reconnecting: false },
            participants: vec![],
            ice_servers: vec![],
            grants: Grants::default(),
            reconnect_token: None,
            reconnected: false,
        };
        assert_eq!(
            joined.to_json(),
            r#"{"type":"joined","protocol":1,"room":"standup","mode":"sfu","path":"sfu","participant":{"id":"PkX3","name":"Ada","tracks":[]},"participants":[],"iceServers":[],"grants":{"canPublish":true,"canSubscribe":true,"canPublishData":true}}"#
        );

        let published = ServerMessage::TrackPublished { participant: "P".into(), track: track() };
        assert_eq!(
            published.to_json(),
            r#"{"type":"track_published","participant":"P","track":{"id":"1","kind":"video","source":"camera","muted":false}}"#
        );

        let left = ServerMessage::ParticipantLeft {
            participant: "P".into(),
            reason: LeaveReason::MediaFailed,
        };
        assert_eq!(
            left.to_json(),
            r#"{"type":"participant_left","participant":"P","reason":"media_failed"}"#
        );

        let mut tracks = BTreeMap::new();
        tracks.insert("2".into(), TrackRef { participant: "P".into(), track: "0".into() });
        let offer = ServerMessage::Offer { id: 3, sdp: "v=0".into(), tracks };
        assert_eq!(
            offer.to_json(),
            r#"{"type":"offer","id":3,"sdp":"v=0","tracks":{"2":{"participant":"P","track":"0"}}}"#
        );

        let err = ServerMessage::error(ErrorCode::InvalidRoom, "bad", Some("join"));
        assert_eq!(
            err.to_json(),
            r#"{"type":"error","code":"invalid_room","message":"bad","request":"join"}"#
        );
        assert_eq!(ServerMessage::Pong { id: None }.to_json(), r#"{"type":"pong"}"#);
        assert_eq!(ServerMessage::Draining { seconds: 60 }.to_json(), r#"{"type":"draining","seconds":60}"#);
        assert_eq!(ServerMessage::Path { path: MediaPath::P2p }.to_json(), r#"{"type":"path","path":"p2p"}"#);
        let mut data = serde_json::Map::new();
        data.insert("bye".into(), serde_json::Value::Bool(true));
        assert_eq!(ServerMessage::Signal { from: "P".into(), data }.to_json(), r#"{"type":"signal","from":"P","data":{"bye":true}}"#);
    }

    #[test]
    fn round_trips() {
        let msgs = [
            ServerMessage::TrackMuted { participant: "P".into(), track: "1".into() },
            ServerMessage::TrackUnmuted { participant: "P".into(), track: "1".into() },
            ServerMessage::TrackUnpublished { participant: "P".into(), track: "1".into() },
            ServerMessage::Answer { sdp: "v=0".into() },
            ServerMessage::StreamState {
                participant: "P".into(),
                track: "1".into(),
                state: StreamActivity::Paused,
                layer: None,
                reason: "bandwidth".into(),
                estimate: Some(90_000),
            },
            ServerMessage::Layers { track: "1".into(), active: vec!["q".into()] },
            ServerMessage::Speakers { active: Some("P".into()), speaking: vec![Speaking { participant: "P".into(), level: 71 }] },
            ServerMessage::Speakers { active: None, speaking: vec![] },
            ServerMessage::Candidate { candidate: None },
            ServerMessage::ParticipantJoined {
                participant: ParticipantInfo { id: "P".into(), name: "N".into(), tracks: vec![track()], reconnecting: false },
            },
            ServerMessage::ParticipantReconnecting { participant: "P".into() },
            ServerMessage::ParticipantReconnected { participant: "P".into() },
        ];
        for msg in msgs {
            assert_eq!(ServerMessage::from_json(&msg.to_json()).unwrap(), msg);
        }
    }
}

//! Value types shared by client and server messages.

use serde::{Deserialize, Serialize};

/// Whether a track carries sound or pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// An audio track.
    Audio,
    /// A video track.
    Video,
}

/// What a published track comes from, as its publisher declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// A camera.
    Camera,
    /// A microphone.
    Microphone,
    /// A shared screen, window or tab.
    Screen,
    /// The sound of a shared screen or tab.
    ScreenAudio,
}

impl TrackSource {
    /// The source a track of `kind` has when its publisher does not say.
    pub fn default_for(kind: TrackKind) -> TrackSource {
        match kind {
            TrackKind::Audio => TrackSource::Microphone,
            TrackKind::Video => TrackSource::Camera,
        }
    }
}

/// A published track as the other participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Unique within its participant.
    pub id: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// Camera, microphone, screen...
    pub source: TrackSource,
    /// Whether the publisher has muted it (nothing is forwarded while muted).
    pub muted: bool,
}

/// A participant of a room, with the tracks it publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Server-assigned, opaque.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Its published tracks.
    pub tracks: Vec<TrackInfo>,
    /// Its connection to the server was lost, and the server keeps its place while it
    /// reconnects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconnecting: bool,
}

/// An ICE candidate, shaped like the browser's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    /// The `candidate:...` attribute value; empty marks the end of candidates.
    pub candidate: String,
    /// The m-line the candidate belongs to, by mid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    /// The m-line the candidate belongs to, by index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
    /// The ICE username fragment of the generation it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_fragment: Option<String>,
}

/// How media travels in a room (docs/protocol.md, "Peer-to-peer rooms").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomMode {
    /// Through the server (an SFU).
    #[default]
    Sfu,
    /// Directly between each pair of participants (a mesh); the server relays signaling only.
    P2p,
    /// `p2p` while the room holds two participants, `sfu` from the third on.
    Auto,
}

/// The path media takes in a room now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaPath {
    /// Through the server.
    Sfu,
    /// Directly between the participants.
    P2p,
}

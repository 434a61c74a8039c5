//! Messages from client to server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::types::{IceCandidate, RoomMode, TrackSource};

/// A message a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// Enter a room; the first message on a socket.
    Join(Join),
    /// An SDP offer from the client.
    Offer(Offer),
    /// The client's answer to a server offer.
    Answer(Answer),
    /// A trickled ICE candidate.
    Candidate(Candidate),
    /// Mute or unmute one of the client's published tracks.
    Mute(Mute),
    /// How large a remote video track is shown.
    Subscription(Subscription),
    /// Leave the room.
    Leave,
    /// Keepalive.
    Ping(Ping),
    /// A message for another participant of the room (peer-to-peer signaling).
    Signal(SignalTo),
}

/// The `type` values of [`ClientMessage`].
const CLIENT_TYPES: &[&str] = &["join", "offer", "answer", "candidate", "mute", "subscription", "leave", "ping", "signal"];

/// Whether `ty` is the `type` of a message clients may send.
pub fn is_known_client_type(ty: &str) -> bool {
    CLIENT_TYPES.contains(&ty)
}

impl ClientMessage {
    /// The message's `type` on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMessage::Join(_) => "join",
            ClientMessage::Offer(_) => "offer",
            ClientMessage::Answer(_) => "answer",
            ClientMessage::Candidate(_) => "candidate",
            ClientMessage::Mute(_) => "mute",
            ClientMessage::Subscription(_) => "subscription",
            ClientMessage::Leave => "leave",
            ClientMessage::Ping(_) => "ping",
            ClientMessage::Signal(_) => "signal",
        }
    }

    /// The message as one JSON text frame.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `join`: enter a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    /// Room id (see [`crate::validate_room`]).
    pub room: String,
    /// Display name (see [`crate::validate_name`]).
    pub name: String,
    /// Protocol version the client speaks; 1 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    /// An access token (a JWT), needed when the server has API keys configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The room's mode, if this join opens it; ignored for a room already open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RoomMode>,
    /// Take back a place this client had, whose socket was lost (`joined`'s `reconnectToken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<Reconnect>,
}

/// Which place a reconnecting client takes back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconnect {
    /// Its participant id.
    pub participant: String,
    /// The `reconnectToken` of its `joined`.
    pub token: String,
}

/// Largest `data` of a `signal` message, serialized, in bytes.
pub const MAX_SIGNAL_DATA: usize = 64 * 1024;

/// `signal`: a message for another participant of the room, forwarded as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalTo {
    /// The recipient's participant id.
    pub to: String,
    /// Anything, as a JSON object (at most [`MAX_SIGNAL_DATA`] bytes).
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// `offer`: an SDP offer from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The SDP.
    pub sdp: String,
    /// Metadata of the client's sending m-lines, by mid.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tracks: BTreeMap<String, PublishedTrackMeta>,
}

/// What a publisher says about one of its sending m-lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedTrackMeta {
    /// Where the track comes from; by kind when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<TrackSource>,
    /// Initial mute state; unmuted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
}

/// `answer`: the client's answer to the server offer `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The server offer this answers.
    pub id: u64,
    /// The SDP.
    pub sdp: String,
}

/// `candidate`: a trickled ICE candidate; `None` marks the end of candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The candidate, or `null` for end-of-candidates.
    pub candidate: Option<IceCandidate>,
}

/// `mute`: mute or unmute one of the client's own tracks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mute {
    /// The track id (the mid of the client's sending m-line).
    pub track: String,
    /// The new state.
    pub muted: bool,
}

/// `subscription`: how large the client shows a remote video track, in device pixels
/// (`0 x 0`: not shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    /// The publisher.
    pub participant: String,
    /// Its track id.
    pub track: String,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// `ping`: keepalive, answered by `pong` with the same `id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed in the `pong`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// Parse one text frame from a client.
///
/// Distinguishes a message of an unknown `type` ([`Error::UnknownMessage`]) from one that is
/// malformed ([`Error::BadMessage`], with serde's description of what is wrong).
pub fn parse_client_message(text: &str) -> Result<ClientMessage, Error> {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(msg) => Ok(msg),
        Err(err) => {
            #[derive(Deserialize)]
            struct Tagged {
                #[serde(rename = "type")]
                ty: String,
            }
            match serde_json::from_str::<Tagged>(text) {
                Ok(t) if !is_known_client_type(&t.ty) => Err(Error::UnknownMessage(t.ty)),
                _ => Err(Error::BadMessage(err.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn parses_every_message_of_the_protocol_doc() {
        let cases = [
            r#"{"type":"join","room":"standup","name":"Ada","protocol":1}"#,
            r#"{"type":"offer","sdp":"v=0","tracks":{"0":{"source":"microphone","muted":false},"1":{"source":"camera","muted":true}}}"#,
            r#"{"type":"answer","id":3,"sdp":"v=0"}"#,
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 2122260223 192.0.2.4 50000 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"a1b2"}}"#,
            r#"{"type":"candidate","candidate":null}"#,
            r#"{"type":"mute","track":"1","muted":true}"#,
            r#"{"type":"subscription","participant":"p-3f2a","track":"1","width":640,"height":360}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"ping","id":17}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"join","room":"r","name":"n","mode":"p2p"}"#,
            r#"{"type":"join","room":"r","name":"n","mode":"auto"}"#,
            r#"{"type":"join","room":"r","name":"n","reconnect":{"participant":"PkX3","token":"f00d"}}"#,
            r#"{"type":"signal","to":"Pq9Z","data":{"description":{"type":"offer","sdp":"v=0"}}}"#,
            r#"{"type":"signal","to":"Pq9Z","data":{}}"#,
        ];
        for text in cases {
            let msg = parse_client_message(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            // Round trip: what we serialize parses back to the same value.
            assert_eq!(parse_client_message(&msg.to_json()).unwrap(), msg);
        }
    }

    #[test]
    fn candidate_fields_use_browser_names() {
        let msg = parse_client_message(
            r#"{"type":"candidate","candidate":{"candidate":"c","sdpMid":"0","sdpMLineIndex":2}}"#,
        )
        .unwrap();
        let ClientMessage::Candidate(Candidate { candidate: Some(c) }) = msg else {
            panic!("not a candidate: {msg:?}");
        };
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
        assert_eq!(c.sdp_m_line_index, Some(2));
        assert_eq!(c.username_fragment, None);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let msg = parse_client_message(r#"{"type":"leave","reason":"bye","x":[1,2]}"#).unwrap();
        assert_eq!(msg, ClientMessage::Leave);
    }

    #[test]
    fn unknown_type_is_told_apart_from_malformed() {
        let err = parse_client_message(r#"{"type":"dance","room":"x"}"#).unwrap_err();
        assert_eq!(err, Error::UnknownMessage("dance".into()));
        assert_eq!(err.code(), ErrorCode::UnknownMessage);

        for bad in [
            "",
            "not json",
            "[1,2,3]",
            "{}",
            r#"{"type":7}"#,
            r#"{"type":"join","room":"r"}"#,
            r#"{"type":"join","room":5,"name":"n"}"#,
            r#"{"type":"answer","id":"three","sdp":"v=0"}"#,
            r#"{"type":"mute","track":"1"}"#,
            r#"{"type":"offer","sdp":"v=0","tracks":{"0":{"source":"hologram"}}}"#,
            r#"{"type":"join","room":"r","name":"n","mode":"mesh"}"#,
            r#"{"type":"signal","to":"P","data":"text"}"#,
            r#"{"type":"signal","to":"P","data":[1]}"#,
            r#"{"type":"signal","data":{}}"#,
            "{\"type\":\"join\",\"room\":\"r\",\"name\":\"n\"",
        ] {
            let err = parse_client_message(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadMessage, "{bad:?} gave {err:?}");
        }
    }

    #[test]
    fn every_variant_has_a_known_type_name() {
        let all = [
            ClientMessage::Join(Join { room: "r".into(), name: "n".into(), protocol: None, token: None, mode: None, reconnect: None }),
            ClientMessage::Signal(SignalTo { to: "P".into(), data: Default::default() }),
            ClientMessage::Offer(Offer { sdp: "v=0".into(), tracks: BTreeMap::new() }),
            ClientMessage::Answer(Answer { id: 1, sdp: "v=0".into() }),
            ClientMessage::Candidate(Candidate { candidate: None }),
            ClientMessage::Mute(Mute { track: "0".into(), muted: true }),
            ClientMessage::Leave,
            ClientMessage::Ping(Ping::default()),
        ];
        for msg in all {
            assert!(is_known_client_type(msg.type_name()));
            assert!(msg.to_json().contains(&format!("\"type\":\"{}\"", msg.type_name())));
        }
    }
}

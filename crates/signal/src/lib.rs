//! The wire messages of confab's WebSocket signaling protocol.
//!
//! This crate is the protocol of `docs/protocol.md` as Rust types: what a client may send
//! ([`ClientMessage`]), what the server sends ([`ServerMessage`]), the stable error codes
//! ([`ErrorCode`]) and the validation rules for room ids and display names. It does no I/O and
//! knows nothing of the SFU: the server's WebSocket edge turns these messages into SFU commands and
//! SFU events back into messages.
//!
//! ```
//! use signal::{ClientMessage, ServerMessage, parse_client_message};
//!
//! let msg = parse_client_message(r#"{"type":"join","room":"standup","name":"Ada"}"#).unwrap();
//! assert!(matches!(msg, ClientMessage::Join(ref j) if j.room == "standup"));
//!
//! let pong = ServerMessage::Pong { id: Some(7) };
//! assert_eq!(pong.to_json(), r#"{"type":"pong","id":7}"#);
//! ```

mod client;
mod error;
mod server;
mod types;
mod validate;

pub use client::{Answer, Candidate, ClientMessage, Join, MAX_SIGNAL_DATA, Mute, Offer, Ping, PublishedTrackMeta, Reconnect, SignalTo, Subscription};
pub use client::{is_known_client_type, parse_client_message};
pub use error::{Error, ErrorCode};
pub use server::{Grants, IceServer, LeaveReason, ServerMessage, Speaking, StreamActivity, TrackRef};
pub use types::{IceCandidate, MediaPath, ParticipantInfo, RoomMode, TrackInfo, TrackKind, TrackSource};
pub use validate::{MAX_NAME_CHARS, MAX_ROOM_CHARS, validate_name, validate_room};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest client frame the server accepts, in bytes; a larger one closes the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

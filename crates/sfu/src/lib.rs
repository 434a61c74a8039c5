//! confab's selective forwarding unit: rooms, participants, tracks and the forwarding of media
//! between them, on top of str0m, without any I/O.
//!
//! The core is [`Sfu`]: one per media worker. Signaling hands it [`Command`]s, the worker's
//! socket hands it datagrams, the worker's clock hands it timeouts; out come [`Transmit`]s to
//! send, [`Event`]s for signaling (messages to participants, removals) and the next timeout. The
//! driving contract is documented on [`Sfu`].
//!
//! Inside, the layers point one way: a room is a list of participants
//! ([`room`](crate::room)); a participant owns one str0m `Rtc` and the tracks it publishes and
//! receives; a track's packets go through a forwarder per subscriber, which decides what is sent
//! with which numbers and knows nothing of rooms ([`forward`]).
//!
//! Every participant's peer connection is in str0m's RTP mode: the SFU forwards RTP packets,
//! never reassembles frames, and rewrites sequence numbers and timestamps itself so that pauses
//! (mute, waiting for a keyframe) and, later, simulcast layer switches stay invisible to the
//! receiving decoder. NACK and RTX are terminated on both sides: str0m asks publishers for what
//! was lost on the way in, and answers subscribers' NACKs from its own send buffer.

mod adapt;
pub mod allocate;
mod api;
mod codec;
mod config;
pub mod data;
mod datarelay;
mod engine;
mod error;
pub mod forward;
mod media;
mod mesh;
mod negotiation;
mod participant;
mod reconnect;
mod room;
mod router;
mod slots;
mod speaker;
mod track;

pub use api::{Activity, Command, Event, Grants, Kind, LeaveReason, ParticipantId, ParticipantInfo, Path, Role, RoomInfo, RoomMode, Signal, Source};
pub use api::{DownlinkStats, OutStreamStats, Stats, TrackInfo, TrackMeta, Transmit, Transport};
pub use codec::{VideoCodec, Vp8Descriptor, vp8_descriptor};
pub use config::SfuConfig;
pub use engine::Sfu;
pub use error::Error;
pub use router::stun_local_ufrag;

pub(crate) use slots::Pix;

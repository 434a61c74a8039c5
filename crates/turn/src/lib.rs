//! confab's STUN/TURN core, sans-IO: the message codec of STUN (RFC 8489) and TURN (RFC 8656),
//! and the server's state machine. It opens no sockets and reads no clock (DESIGN.md rule 1):
//! the server binary feeds it packets with the time and sends what it returns.
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::Instant;
//! use turn::{Class, Credentials, Message, MessageBuilder, Method, Packet, Server, ServerConfig, Transport, attr};
//!
//! let credentials = Credentials {
//!     realm: "example.org".into(), users: HashMap::new(), secret: Some(b"shared".to_vec()),
//!     nonce_key: [7; 16], nonce_lifetime: 600,
//! };
//! let mut server = Server::new(ServerConfig {
//!     credentials, relay_ip: "192.0.2.10".parse().unwrap(), relay_public_ip: None, max_relay_bps: None,
//!     allow_peers: Vec::new(),
//!     max_allocations: 1000, max_allocations_per_user: 10, epoch: (Instant::now(), 1_700_000_000),
//! });
//! let request = MessageBuilder::new(Class::Request, Method::BINDING, *b"0123456789ab").build_with_fingerprint();
//! let source = "203.0.113.7:50000".parse().unwrap();
//! server.handle_packet(Instant::now(), Packet {
//!     transport: Transport::Udp, source, destination: "192.0.2.10:3478".parse().unwrap(), data: &request,
//! });
//! let answer = server.poll_transmit().unwrap();
//! let m = Message::parse(&answer.data).unwrap();
//! assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(source)));
//! ```
//!
//! What is here: the codec (parse without copying, build, FINGERPRINT, MESSAGE-INTEGRITY, XOR
//! addresses, error codes, unknown comprehension-required attributes); credentials (long-term
//! keys, stateless nonces, TURN REST usernames); and the server: STUN Binding, and TURN UDP
//! allocations with permissions, channels, their timeouts, quotas and a peer-address policy
//! ([`Server`]). Not yet: TCP allocations (RFC 6062) and per-allocation bandwidth limits.

mod auth;
mod error;
mod message;
mod policy;
mod server;

pub use auth::{Credentials, Refusal, ephemeral_credentials, long_term_key, rest_password, verify_integrity};
pub use error::Error;
pub use message::{Attr, Class, HEADER_LEN, Header, MAGIC_COOKIE, Message, MessageBuilder, Method, attr, decode_xor_address, stream_frame_len};
pub use policy::{Cidr, is_restricted};
pub use server::{Event, Packet, Server, ServerConfig, Stats, Transmit, Transport};

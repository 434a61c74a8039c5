//! confab's STUN/TURN core, sans-IO: the message codec of STUN (RFC 8489) and TURN (RFC 8656),
//! and the server's state machine. It opens no sockets and reads no clock (DESIGN.md rule 1):
//! the server binary feeds it packets with the time and sends what it returns.
//!
//! ```
//! use std::time::Instant;
//! use turn::{Class, Message, MessageBuilder, Method, Packet, Server, Transport, attr};
//!
//! let mut server = Server::new();
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
//! What is here so far: the codec (parse without copying, build, FINGERPRINT, XOR addresses,
//! error codes, unknown comprehension-required attributes), STUN Binding, and the credentials
//! TURN needs (MESSAGE-INTEGRITY, long-term keys, stateless nonces, TURN REST usernames).
//! Allocations and relaying come next (issue 4).

mod auth;
mod error;
mod message;
mod server;

pub use auth::{Credentials, Refusal, ephemeral_credentials, long_term_key, rest_password, verify_integrity};
pub use error::Error;
pub use message::{Attr, Class, HEADER_LEN, Header, MAGIC_COOKIE, Message, MessageBuilder, Method, attr, decode_xor_address};
pub use server::{Packet, Server, Stats, Transmit, Transport};

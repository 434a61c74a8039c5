//! The server's state machine: messages in, responses out. No sockets and no clock: the caller
//! passes in each packet with the time, and sends what [`Server::poll_transmit`] returns.
//!
//! Today it answers STUN Binding (RFC 8489 §6.3) over any transport: XOR-MAPPED-ADDRESS with
//! the source address, FINGERPRINT when the request had one, 420 with UNKNOWN-ATTRIBUTES for a
//! comprehension-required attribute it does not know, 400 for a request it cannot parse. TURN
//! requests are answered 400 until allocations land.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::message::{Class, Header, Message, MessageBuilder, Method, attr};
use crate::Error;

/// The transport a packet came over (and its answer goes back over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (one STUN message or ChannelData frame at a time, cut out of the stream by the caller).
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// A packet the server received.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// How it came.
    pub transport: Transport,
    /// The sender (the client's reflexive address).
    pub source: SocketAddr,
    /// The server's address it was sent to.
    pub destination: SocketAddr,
    /// The bytes.
    pub data: &'a [u8],
}

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Over which transport (for TCP and TLS: the connection of `destination`).
    pub transport: Transport,
    /// The server's address to send from.
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// What the server did, for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Binding requests answered with success.
    pub bindings: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Packets dropped: not STUN, malformed non-requests, responses, unknown indications.
    pub dropped: u64,
}

/// The name the server gives in SOFTWARE.
const SOFTWARE: &str = concat!("confab ", env!("CARGO_PKG_VERSION"));

/// A STUN/TURN server. Drive it with [`Server::handle_packet`]; drain [`Server::poll_transmit`]
/// after each call.
#[derive(Debug, Default)]
pub struct Server {
    transmits: VecDeque<Transmit>,
    stats: Stats,
}

impl Server {
    /// A server with nothing to send.
    pub fn new() -> Server {
        Server::default()
    }

    /// Take in one packet received at `now`. Never panics, whatever the bytes.
    pub fn handle_packet(&mut self, _now: Instant, packet: Packet<'_>) {
        let message = match Message::parse(packet.data) {
            Ok(m) => m,
            Err(e) => return self.malformed(&packet, e),
        };
        if message.class != Class::Request {
            // Indications need no answer (a Binding indication is a keepalive); responses are
            // not for a server.
            self.stats.dropped += 1;
            return;
        }
        let unknown = message.unknown_required();
        if !unknown.is_empty() {
            let mut b = MessageBuilder::new(Class::Error, message.method, message.transaction_id);
            b.error_code(420, "Unknown Attribute").unknown_attributes(&unknown);
            return self.reply_error(&packet, &message, b);
        }
        match message.method {
            Method::BINDING => {
                let mut b = MessageBuilder::new(Class::Success, Method::BINDING, message.transaction_id);
                b.xor_address(attr::XOR_MAPPED_ADDRESS, packet.source).attr(attr::SOFTWARE, SOFTWARE.as_bytes());
                self.stats.bindings += 1;
                self.reply(&packet, &message, b);
            }
            method => {
                let mut b = MessageBuilder::new(Class::Error, method, message.transaction_id);
                b.error_code(400, "Bad Request: method not supported");
                self.reply_error(&packet, &message, b);
            }
        }
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`Server::handle_timeout`] should be called next (nothing expires yet).
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Time moved on to `now`.
    pub fn handle_timeout(&mut self, _now: Instant) {}

    /// What the server did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A datagram that is not a whole, valid message: a request whose header is STUN gets a
    /// 400; anything else is dropped (RFC 8489 §6.3.1: what is not STUN is not answered).
    fn malformed(&mut self, packet: &Packet<'_>, error: Error) {
        match Header::parse(packet.data) {
            Ok(h) if h.class == Class::Request => {
                let mut b = MessageBuilder::new(Class::Error, h.method, h.transaction_id);
                b.error_code(400, &format!("Bad Request: {error}"));
                self.stats.errors += 1;
                self.send(packet, b.build_with_fingerprint());
            }
            _ => self.stats.dropped += 1,
        }
    }

    fn reply_error(&mut self, packet: &Packet<'_>, request: &Message<'_>, b: MessageBuilder) {
        self.stats.errors += 1;
        self.reply(packet, request, b);
    }

    /// Send `b` back to the sender of `request`, with a FINGERPRINT if the request had one.
    fn reply(&mut self, packet: &Packet<'_>, request: &Message<'_>, b: MessageBuilder) {
        let data = if request.fingerprint { b.build_with_fingerprint() } else { b.build() };
        self.send(packet, data);
    }

    fn send(&mut self, packet: &Packet<'_>, data: Vec<u8>) {
        self.transmits.push_back(Transmit {
            transport: packet.transport,
            source: packet.destination,
            destination: packet.source,
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TID: [u8; 12] = *b"confab-test1";

    fn exchange(server: &mut Server, transport: Transport, data: &[u8]) -> Option<Transmit> {
        let packet = Packet {
            transport,
            source: "203.0.113.7:50000".parse().unwrap(),
            destination: "192.0.2.10:3478".parse().unwrap(),
            data,
        };
        server.handle_packet(Instant::now(), packet);
        let out = server.poll_transmit();
        assert_eq!(server.poll_transmit(), None, "one answer at most");
        out
    }

    #[test]
    fn a_binding_request_gets_the_reflexive_address() {
        let mut server = Server::new();
        for (transport, with_fingerprint) in [(Transport::Udp, true), (Transport::Tcp, false), (Transport::Tls, true)] {
            let b = MessageBuilder::new(Class::Request, Method::BINDING, TID);
            let request = if with_fingerprint { b.build_with_fingerprint() } else { b.build() };
            let out = exchange(&mut server, transport, &request).unwrap();
            assert_eq!(out.transport, transport);
            assert_eq!(out.destination, "203.0.113.7:50000".parse().unwrap());
            assert_eq!(out.source, "192.0.2.10:3478".parse().unwrap());
            let m = Message::parse(&out.data).unwrap();
            assert_eq!((m.class, m.method, m.transaction_id), (Class::Success, Method::BINDING, TID));
            assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok("203.0.113.7:50000".parse().unwrap())));
            assert_eq!(m.fingerprint, with_fingerprint, "FINGERPRINT when the request had one");
        }
        assert_eq!(server.stats().bindings, 3);
    }

    #[test]
    fn an_unknown_required_attribute_is_answered_420() {
        let mut server = Server::new();
        let mut b = MessageBuilder::new(Class::Request, Method::BINDING, TID);
        b.attr(0x0031, b"?").attr(0xc0de, b"optional: ignored").attr(0x0042, b"!");
        let out = exchange(&mut server, Transport::Udp, &b.build_with_fingerprint()).unwrap();
        let m = Message::parse(&out.data).unwrap();
        assert_eq!(m.class, Class::Error);
        assert_eq!(m.get(attr::ERROR_CODE).map(|v| (v[2], v[3])), Some((4, 20)));
        assert_eq!(m.get(attr::UNKNOWN_ATTRIBUTES), Some(&[0x00, 0x31, 0x00, 0x42][..]));
        assert!(m.fingerprint);
    }

    #[test]
    fn garbage_is_dropped_and_a_malformed_request_gets_400() {
        let mut server = Server::new();
        // Not STUN: RTP, random bytes, nothing.
        for data in [&[0x80u8, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0][..], &[0xffu8; 40][..], &[][..]] {
            assert_eq!(exchange(&mut server, Transport::Udp, data), None);
        }
        // A STUN request header with a body that is not whole.
        let mut request = MessageBuilder::new(Class::Request, Method::BINDING, TID);
        request.attr(attr::SOFTWARE, b"abcdefgh");
        let request = request.build();
        let out = exchange(&mut server, Transport::Udp, &request[..request.len() - 4]).unwrap();
        let m = Message::parse(&out.data).unwrap();
        assert_eq!((m.class, m.transaction_id), (Class::Error, TID));
        assert_eq!(m.get(attr::ERROR_CODE).map(|v| (v[2], v[3])), Some((4, 0)));
        // Responses and indications get nothing.
        for class in [Class::Success, Class::Indication] {
            assert_eq!(exchange(&mut server, Transport::Udp, &MessageBuilder::new(class, Method::BINDING, TID).build()), None);
        }
        assert_eq!(server.stats().dropped, 5);
    }
}

//! The server on virtual time: a client and a peer exchange packets with it; nothing is sent on
//! a network.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::auth::{Credentials, ephemeral_credentials, long_term_key};
use crate::message::{Class, Message, MessageBuilder, Method, attr};

const CLIENT: &str = "198.51.100.7:50000";
const SERVER: &str = "192.0.2.10:3478";
const RELAY: &str = "192.0.2.10:49160";
const PEER: &str = "203.0.113.9:6000";
const SECRET: &[u8] = b"north";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Harness {
    server: Server,
    t0: Instant,
    now: Instant,
    next_tid: u8,
    user: String,
    password: String,
    nonce: Vec<u8>,
}

impl Harness {
    fn new() -> Harness {
        Harness::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut ServerConfig)) -> Harness {
        let t0 = Instant::now();
        let mut config = ServerConfig {
            credentials: Credentials {
                realm: "confab".into(),
                users: HashMap::from([("ada".to_string(), "lovelace".to_string())]),
                secret: Some(SECRET.to_vec()),
                nonce_key: [9; 16],
                nonce_lifetime: 3600,
            },
            relay_ip: "192.0.2.10".parse().unwrap(),
            relay_public_ip: None,
            max_relay_bps: None,
            allow_peers: Vec::new(),
            max_allocations: 10,
            max_allocations_per_user: 2,
            epoch: (t0, 1_000_000),
        };
        adjust(&mut config);
        Harness {
            server: Server::new(config),
            t0,
            now: t0,
            next_tid: 0,
            user: "ada".into(),
            password: "lovelace".into(),
            nonce: Vec::new(),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
            self.server.handle_timeout(self.now);
        }
    }

    fn tid(&mut self) -> [u8; 12] {
        self.next_tid += 1;
        [self.next_tid; 12]
    }

    /// Send `data` from the client; what comes back to it.
    fn from_client(&mut self, data: &[u8]) -> Vec<Transmit> {
        self.packet(CLIENT, SERVER, data)
    }

    fn packet(&mut self, source: &str, destination: &str, data: &[u8]) -> Vec<Transmit> {
        self.server.handle_packet(self.now, Packet { transport: Transport::Udp, source: addr(source), destination: addr(destination), data });
        std::iter::from_fn(|| self.server.poll_transmit()).collect()
    }

    /// A request: `method` with `attrs`, signed with the user's key once a nonce is known.
    fn request(&mut self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
        let mut b = MessageBuilder::new(Class::Request, method, self.tid());
        attrs(&mut b);
        if self.nonce.is_empty() {
            // A client's first request carries no credentials: it learns the realm and a nonce.
            return b.build_with_fingerprint();
        }
        b.attr(attr::USERNAME, self.user.as_bytes()).attr(attr::REALM, b"confab").attr(attr::NONCE, &self.nonce);
        b.build_with_integrity(&long_term_key(&self.user, "confab", &self.password), true)
    }

    /// Send an authenticated request and return the one answer, parsed into (class, error code).
    fn ask(&mut self, method: Method, attrs: impl FnOnce(&mut MessageBuilder)) -> (Class, Option<u16>, Vec<u8>) {
        let request = self.request(method, attrs);
        let mut out = self.from_client(&request);
        assert_eq!(out.len(), 1, "one answer");
        let t = out.remove(0);
        let m = Message::parse(&t.data).unwrap();
        if m.class == Class::Success || m.get(attr::ERROR_CODE).is_some_and(|v| v[2] != 4 || (v[3] != 1 && v[3] != 38)) {
            // Answers to an authenticated request are signed with the user's key.
            assert!(crate::auth::verify_integrity(&m, &long_term_key(&self.user, "confab", &self.password)), "signed");
        }
        (m.class, code(&m), t.data.clone())
    }

    /// The 401 dance, then an Allocate for UDP, the relay opened at RELAY.
    fn allocate(&mut self) -> Message<'static> {
        let (class, code, data) = self.ask(Method::ALLOCATE, |b| {
            b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        assert_eq!((class, code), (Class::Error, Some(401)), "first without a nonce");
        let m = Message::parse(&data).unwrap();
        assert_eq!(m.get(attr::REALM), Some(&b"confab"[..]));
        self.nonce = m.get(attr::NONCE).unwrap().to_vec();
        let request = self.request(Method::ALLOCATE, |b| {
            b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
        });
        assert!(self.from_client(&request).is_empty(), "waits for the relay");
        let Some(Event::OpenRelay { id, ip, even: false }) = self.server.poll_event() else { panic!("opens a relay") };
        assert_eq!(ip.to_string(), "192.0.2.10");
        self.server.relay_opened(self.now, id, Some(addr(RELAY)));
        let t = self.server.poll_transmit().expect("the Allocate answer");
        assert_eq!((t.source, t.destination), (addr(SERVER), addr(CLIENT)));
        let data: &'static [u8] = Box::leak(t.data.into_boxed_slice());
        let m = Message::parse(data).unwrap();
        assert_eq!(m.class, Class::Success);
        m
    }
}

fn code(m: &Message<'_>) -> Option<u16> {
    m.get(attr::ERROR_CODE).map(|v| u16::from(v[2] & 7) * 100 + u16::from(v[3]))
}

fn peer_attr(peer: &str) -> impl FnOnce(&mut MessageBuilder) {
    let peer = addr(peer);
    move |b| {
        b.xor_address(attr::XOR_PEER_ADDRESS, peer);
    }
}

#[test]
fn a_binding_request_gets_the_reflexive_address() {
    let mut h = Harness::new();
    for with_fingerprint in [true, false] {
        let b = MessageBuilder::new(Class::Request, Method::BINDING, *b"confab-test1");
        let request = if with_fingerprint { b.build_with_fingerprint() } else { b.build() };
        let out = h.from_client(&request);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].source, out[0].destination), (addr(SERVER), addr(CLIENT)));
        let m = Message::parse(&out[0].data).unwrap();
        assert_eq!((m.class, m.method), (Class::Success, Method::BINDING));
        assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(addr(CLIENT))));
        assert_eq!(m.fingerprint, with_fingerprint, "FINGERPRINT when the request had one");
    }
}

#[test]
fn unknown_attributes_garbage_and_malformed_requests() {
    let mut h = Harness::new();
    let mut b = MessageBuilder::new(Class::Request, Method::BINDING, *b"confab-test2");
    b.attr(0x0031, b"?").attr(0xc0de, b"optional: ignored").attr(0x0042, b"!");
    let out = h.from_client(&b.build_with_fingerprint());
    let m = Message::parse(&out[0].data).unwrap();
    assert_eq!(code(&m), Some(420));
    assert_eq!(m.get(attr::UNKNOWN_ATTRIBUTES), Some(&[0x00, 0x31, 0x00, 0x42][..]));
    for data in [&[0x80u8, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0][..], &[0xffu8; 40][..], &[][..], &[0x40, 0, 0, 9][..]] {
        assert!(h.from_client(data).is_empty(), "not STUN, not answered");
    }
    let mut request = MessageBuilder::new(Class::Request, Method::BINDING, *b"confab-test3");
    request.attr(attr::SOFTWARE, b"abcdefgh");
    let request = request.build();
    let out = h.from_client(&request[..request.len() - 4]);
    assert_eq!(code(&Message::parse(&out[0].data).unwrap()), Some(400));
    // An unknown method.
    let out = h.from_client(&MessageBuilder::new(Class::Request, Method(0x0ff), *b"confab-test4").build());
    assert_eq!(code(&Message::parse(&out[0].data).unwrap()), Some(400));
}

#[test]
fn allocates_with_long_term_and_rest_credentials() {
    let mut h = Harness::new();
    let m = h.allocate();
    assert_eq!(m.xor_address(attr::XOR_RELAYED_ADDRESS), Some(Ok(addr(RELAY))));
    assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(addr(CLIENT))));
    assert_eq!(m.get(attr::LIFETIME), Some(&600u32.to_be_bytes()[..]));
    assert!(m.fingerprint);
    assert_eq!(h.server.stats().allocations, 1);
    // A second Allocate on the same 5-tuple: 437.
    let (_, code, _) = h.ask(Method::ALLOCATE, |b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code, Some(437));

    // TURN REST credentials, as confab hands them out; expired ones are refused.
    let mut h = Harness::new();
    let (user, password) = ephemeral_credentials(SECRET, "bob", 1_000_000 + 60);
    (h.user, h.password) = (user, password);
    h.allocate();
    let mut h = Harness::new();
    let (user, password) = ephemeral_credentials(SECRET, "bob", 1_000_000 - 1);
    (h.user, h.password) = (user, password);
    h.nonce = h.server.config.credentials.nonce(1_000_000).into_bytes();
    let (_, code, _) = h.ask(Method::ALLOCATE, |b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code, Some(401));
    // A wrong password.
    h.user = "ada".into();
    h.password = "babbage".into();
    let (_, code, _) = h.ask(Method::ALLOCATE, |b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert_eq!(code, Some(401));
}

#[test]
fn refusals_use_their_error_codes() {
    let mut h = Harness::new();
    h.nonce = h.server.config.credentials.nonce(1_000_000).into_bytes();
    let allocate = |transport: Option<u8>| {
        move |b: &mut MessageBuilder| {
            if let Some(t) = transport {
                b.attr(attr::REQUESTED_TRANSPORT, &[t, 0, 0, 0]);
            }
        }
    };
    assert_eq!(h.ask(Method::ALLOCATE, allocate(None)).1, Some(400), "no REQUESTED-TRANSPORT");
    assert_eq!(h.ask(Method::ALLOCATE, allocate(Some(6))).1, Some(442), "TCP relays are not offered");
    assert_eq!(h.ask(Method::REFRESH, |_| {}).1, Some(437), "no allocation to refresh");
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr(PEER)).1, Some(437));
    // A stale nonce: 438 with a fresh one.
    h.now += Duration::from_secs(3601);
    let (_, code, data) = h.ask(Method::ALLOCATE, allocate(Some(17)));
    assert_eq!(code, Some(438));
    assert_ne!(Message::parse(&data).unwrap().get(attr::NONCE), Some(&h.nonce[..]));
}

#[test]
fn quotas_per_user_and_in_all() {
    let mut h = Harness::with(|c| c.max_allocations = 3);
    h.nonce = h.server.config.credentials.nonce(1_000_000).into_bytes();
    let request = h.request(Method::ALLOCATE, |b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    // Two from ada (other ports), then 486 for her third.
    for (i, port) in [50001, 50002, 50003].into_iter().enumerate() {
        let out = h.packet(&format!("198.51.100.7:{port}"), SERVER, &request);
        if i < 2 {
            assert!(out.is_empty(), "waits for its relay");
        } else {
            assert_eq!(code(&Message::parse(&out[0].data).unwrap()), Some(486));
        }
    }
    // Another user takes the last place; then the server is full: 508.
    let (user, password) = ephemeral_credentials(SECRET, "bob", 2_000_000);
    (h.user, h.password) = (user, password);
    let request = h.request(Method::ALLOCATE, |b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    });
    assert!(h.packet("198.51.100.8:50001", SERVER, &request).is_empty());
    let out = h.packet("198.51.100.8:50002", SERVER, &request);
    assert_eq!(code(&Message::parse(&out[0].data).unwrap()), Some(508));
    assert_eq!(h.server.allocation_count(), 3);
    // A relay that cannot be opened: 508, and the allocation is gone.
    let Some(Event::OpenRelay { id, .. }) = h.server.poll_event() else { panic!() };
    h.server.relay_opened(h.now, id, None);
    let t = h.server.poll_transmit().unwrap();
    assert_eq!(code(&Message::parse(&t.data).unwrap()), Some(508));
    assert_eq!(h.server.allocation_count(), 2);
}

#[test]
fn relays_through_permissions_and_channels() {
    let mut h = Harness::new();
    h.allocate();
    // Without a permission, nothing passes either way.
    let mut send = MessageBuilder::new(Class::Indication, Method::SEND, *b"send-indic-1");
    send.xor_address(attr::XOR_PEER_ADDRESS, addr(PEER)).attr(attr::DATA, b"hello peer");
    let send = send.build();
    assert!(h.from_client(&send).is_empty());
    assert!(h.packet(PEER, RELAY, b"hello client").is_empty());
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr(PEER)).0, Class::Success);
    // Client -> peer, from the relay address.
    let out = h.from_client(&send);
    assert_eq!(out, vec![Transmit { transport: Transport::Udp, source: addr(RELAY), destination: addr(PEER), data: b"hello peer".to_vec() }]);
    // Peer -> client, in a Data indication.
    let out = h.packet(PEER, RELAY, b"hello client");
    assert_eq!((out[0].source, out[0].destination), (addr(SERVER), addr(CLIENT)));
    let m = Message::parse(&out[0].data).unwrap();
    assert_eq!((m.class, m.method), (Class::Indication, Method::DATA));
    assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(addr(PEER))));
    assert_eq!(m.get(attr::DATA), Some(&b"hello client"[..]));
    // Another address of another host has no permission.
    assert!(h.packet("203.0.113.10:6000", RELAY, b"x").is_empty());

    // A channel: ChannelData both ways.
    let bind = |b: &mut MessageBuilder| {
        b.attr(attr::CHANNEL_NUMBER, &[0x40, 0x01, 0, 0]).xor_address(attr::XOR_PEER_ADDRESS, addr(PEER));
    };
    assert_eq!(h.ask(Method::CHANNEL_BIND, bind).0, Class::Success);
    let out = h.from_client(&[0x40, 0x01, 0x00, 0x03, b'a', b'b', b'c', 0]);
    assert_eq!((out[0].source, out[0].destination, &out[0].data[..]), (addr(RELAY), addr(PEER), &b"abc"[..]));
    let out = h.packet(PEER, RELAY, b"xyz");
    assert_eq!(out[0].data, [0x40, 0x01, 0x00, 0x03, b'x', b'y', b'z']);
    // The same number for another peer, or another number for this peer: 400.
    assert_eq!(h.ask(Method::CHANNEL_BIND, |b| {
        b.attr(attr::CHANNEL_NUMBER, &[0x40, 0x01, 0, 0]).xor_address(attr::XOR_PEER_ADDRESS, addr("203.0.113.10:1"));
    }).1, Some(400));
    assert_eq!(h.ask(Method::CHANNEL_BIND, |b| {
        b.attr(attr::CHANNEL_NUMBER, &[0x40, 0x02, 0, 0]).xor_address(attr::XOR_PEER_ADDRESS, addr(PEER));
    }).1, Some(400));
    assert_eq!(h.ask(Method::CHANNEL_BIND, |b| {
        b.attr(attr::CHANNEL_NUMBER, &[0x30, 0x00, 0, 0]).xor_address(attr::XOR_PEER_ADDRESS, addr(PEER));
    }).1, Some(400), "out of range");
    // A ChannelData on an unbound number, or cut short, is dropped.
    assert!(h.from_client(&[0x40, 0x02, 0x00, 0x01, b'a', 0, 0, 0]).is_empty());
    assert!(h.from_client(&[0x40, 0x01, 0x00, 0x09, b'a']).is_empty());
    assert_eq!(h.server.stats().relayed, 4);
}

#[test]
fn permissions_channels_and_allocations_expire() {
    let mut h = Harness::new();
    h.allocate();
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr(PEER)).0, Class::Success);
    h.advance(Duration::from_secs(299));
    assert_eq!(h.packet(PEER, RELAY, b"still").len(), 1);
    h.advance(Duration::from_secs(2));
    assert!(h.packet(PEER, RELAY, b"expired").is_empty(), "permissions last 300 s");
    // A channel lasts 600 s (and refreshes the permission while bound).
    let bind = |b: &mut MessageBuilder| {
        b.attr(attr::CHANNEL_NUMBER, &[0x40, 0x07, 0, 0]).xor_address(attr::XOR_PEER_ADDRESS, addr(PEER));
    };
    assert_eq!(h.ask(Method::REFRESH, |_| {}).0, Class::Success, "refresh the allocation (600 s)");
    assert_eq!(h.ask(Method::CHANNEL_BIND, bind).0, Class::Success);
    h.advance(Duration::from_secs(299));
    assert_eq!(h.from_client(&[0x40, 0x07, 0x00, 0x01, b'a', 0, 0, 0]).len(), 1);
    // The allocation expires at 600 s after its refresh unless refreshed again.
    h.advance(Duration::from_secs(302));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.poll_event(), Some(Event::CloseRelay { relay: addr(RELAY) }));
    assert!(h.from_client(&[0x40, 0x07, 0x00, 0x01, b'a', 0, 0, 0]).is_empty());
    let _ = h.t0;
}

#[test]
fn a_refresh_with_lifetime_zero_ends_the_allocation() {
    let mut h = Harness::new();
    h.allocate();
    let (class, _, data) = h.ask(Method::REFRESH, |b| {
        b.attr(attr::LIFETIME, &0u32.to_be_bytes());
    });
    assert_eq!(class, Class::Success);
    assert_eq!(Message::parse(&data).unwrap().get(attr::LIFETIME), Some(&[0, 0, 0, 0][..]));
    assert_eq!(h.server.poll_event(), Some(Event::CloseRelay { relay: addr(RELAY) }));
    assert_eq!(h.server.allocation_count(), 0);
    // A lifetime above the maximum is cut to it.
    h.nonce.clear();
    h.allocate();
    let (_, _, data) = h.ask(Method::REFRESH, |b| {
        b.attr(attr::LIFETIME, &90_000u32.to_be_bytes());
    });
    assert_eq!(Message::parse(&data).unwrap().get(attr::LIFETIME), Some(&3600u32.to_be_bytes()[..]));
}

#[test]
fn internal_peers_are_refused_unless_allowed() {
    let mut h = Harness::new();
    h.allocate();
    for peer in ["127.0.0.1:9", "10.0.0.1:9", "192.0.2.10:3478", "[::1]:9"] {
        assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr(peer)).1, Some(403), "{peer}");
    }
    assert_eq!(h.ask(Method::CREATE_PERMISSION, |_| {}).1, Some(400), "no peer");
    let mut h = Harness::with(|c| c.allow_peers = vec!["127.0.0.0/8".parse().unwrap()]);
    h.allocate();
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr("127.0.0.1:9")).0, Class::Success);
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr("10.0.0.1:9")).1, Some(403));
}

#[test]
fn a_closed_connection_ends_its_allocation() {
    let mut h = Harness::new();
    h.allocate();
    // Another connection's close changes nothing; the client's ends the allocation.
    h.server.connection_closed(Transport::Tcp, addr(CLIENT), addr(SERVER));
    assert_eq!(h.server.allocation_count(), 1, "the allocation is over UDP");
    h.server.connection_closed(Transport::Udp, addr(CLIENT), addr(SERVER));
    assert_eq!(h.server.allocation_count(), 0);
    assert_eq!(h.server.poll_event(), Some(Event::CloseRelay { relay: addr(RELAY) }));
}

#[test]
fn even_port_is_passed_on_and_reservations_are_refused() {
    let mut h = Harness::new();
    h.nonce = h.server.config.credentials.nonce(1_000_000).into_bytes();
    let request = h.request(Method::ALLOCATE, |b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(attr::EVEN_PORT, &[0x80, 0, 0, 0]);
    });
    assert!(h.from_client(&request).is_empty());
    assert!(matches!(h.server.poll_event(), Some(Event::OpenRelay { even: true, .. })));
    let (_, code, _) = h.ask(Method::ALLOCATE, |b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(attr::RESERVATION_TOKEN, &[1; 8]);
    });
    assert_eq!(code, Some(437), "the 5-tuple already has an allocation");
}

#[test]
fn a_public_relay_address_is_advertised_and_refused_as_a_peer() {
    let mut h = Harness::with(|c| c.relay_public_ip = Some("198.51.100.99".parse().unwrap()));
    let m = h.allocate();
    assert_eq!(m.xor_address(attr::XOR_RELAYED_ADDRESS), Some(Ok(addr("198.51.100.99:49160"))));
    // Peers still reach the relay at its local address (the NAT maps the public one to it).
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr(PEER)).0, Class::Success);
    assert_eq!(h.packet(PEER, RELAY, b"x").len(), 1);
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr("198.51.100.99:1")).1, Some(403), "its own public address");
}

#[test]
fn the_bandwidth_limit_drops_what_is_over_it() {
    // 80 kbit/s: 10,000 bytes a second, the bucket holding one second.
    let mut h = Harness::with(|c| c.max_relay_bps = Some(80_000));
    h.allocate();
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr(PEER)).0, Class::Success);
    h.advance(Duration::from_secs(1));
    let chunk = [0u8; 1000];
    let passed = (0..20).filter(|_| !h.packet(PEER, RELAY, &chunk).is_empty()).count();
    assert_eq!(passed, 10, "one second's worth passes at once, the rest is dropped");
    h.advance(Duration::from_millis(500));
    let passed = (0..20).filter(|_| !h.packet(PEER, RELAY, &chunk).is_empty()).count();
    assert_eq!(passed, 5, "half a second later, half a second's worth");
}

#[test]
fn another_users_credentials_on_an_allocation_get_441() {
    let mut h = Harness::new();
    h.allocate();
    let (user, password) = ephemeral_credentials(SECRET, "mallory", 2_000_000);
    (h.user, h.password) = (user, password);
    assert_eq!(h.ask(Method::REFRESH, |_| {}).1, Some(441));
    assert_eq!(h.ask(Method::CREATE_PERMISSION, peer_attr(PEER)).1, Some(441));
    assert_eq!(h.server.allocation_count(), 1, "the allocation stays");
}

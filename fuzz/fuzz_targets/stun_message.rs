//! The STUN/TURN server reads every datagram and TCP frame sent to its ports: whatever the
//! bytes, parsing returns a message or an error, a parsed message re-encodes to one that parses
//! the same, checking its credentials is an answer, and the server answers at most once per
//! packet, with a message that parses, and relays nothing without a permission.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use turn::{Credentials, Event, Message, MessageBuilder, Packet, Server, ServerConfig, Transport};

fn credentials() -> Credentials {
    Credentials {
        realm: "confab".into(),
        users: [("ada".to_string(), "lovelace".to_string())].into(),
        secret: Some(b"north".to_vec()),
        nonce_key: [7; 16],
        nonce_lifetime: 600,
    }
}

fuzz_target!(|data: &[u8]| {
    // A TCP stream's framing: a length that covers at least the 4 bytes read.
    if let Some(Ok(len)) = turn::stream_frame_len(data) {
        assert!(len >= 4);
    }
    if let Ok(m) = Message::parse(data) {
        for a in &m.attrs {
            let _ = turn::decode_xor_address(a.kind, a.value, &m.transaction_id);
        }
        let _ = credentials().check(&m, 1_000_000);
        // Without MESSAGE-INTEGRITY (whose HMAC would no longer match), rebuilt from its
        // attributes it parses to the same.
        if m.integrity_at.is_none() {
            let mut b = MessageBuilder::new(m.class, m.method, m.transaction_id);
            for a in &m.attrs {
                b.attr(a.kind, a.value);
            }
            let again = b.build_with_fingerprint();
            let m2 = Message::parse(&again).expect("a rebuilt message parses");
            assert_eq!((m2.class, m2.method, m2.transaction_id), (m.class, m.method, m.transaction_id));
            assert_eq!(m2.attrs.len(), m.attrs.len());
        }
    }

    let now = Instant::now();
    let mut server = Server::new(ServerConfig {
        credentials: credentials(),
        relay_ip: "192.0.2.10".parse().unwrap(),
        relay_public_ip: Some("198.51.100.99".parse().unwrap()),
        max_relay_bps: Some(1_000_000),
        allow_peers: Vec::new(),
        max_allocations: 4,
        max_allocations_per_user: 2,
        epoch: (now, 1_000_000),
    });
    server.handle_packet(now, Packet {
        transport: Transport::Udp,
        source: "203.0.113.7:50000".parse().unwrap(),
        destination: "192.0.2.10:3478".parse().unwrap(),
        data,
    });
    if let Some(t) = server.poll_transmit() {
        Message::parse(&t.data).expect("the server's answer parses");
    }
    assert!(server.poll_transmit().is_none(), "one answer at most");
    let mut opened = false;
    while let Some(Event::OpenRelay { id, .. }) = server.poll_event() {
        server.relay_opened(now, id, Some("192.0.2.10:49152".parse().unwrap()));
        opened = true;
    }
    while server.poll_transmit().is_some() {}
    if opened {
        // The same bytes from a peer to the relay: no permission, so nothing goes anywhere.
        server.handle_packet(now, Packet {
            transport: Transport::Udp,
            source: "198.51.100.1:4000".parse().unwrap(),
            destination: "192.0.2.10:49152".parse().unwrap(),
            data,
        });
        assert!(server.poll_transmit().is_none(), "no permission: nothing relayed");
    }
    server.handle_timeout(now + Duration::from_secs(4000));
    assert_eq!(server.allocation_count(), 0, "everything expires");
});

//! The STUN/TURN server reads every datagram and TCP frame sent to its port: whatever the bytes,
//! parsing returns a message or an error, a parsed message re-encodes to one that parses the
//! same, checking its credentials is an answer, and the server answers at most once, with a
//! message that parses.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use turn::{Message, MessageBuilder, Packet, Server, Transport};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        for a in &m.attrs {
            let _ = turn::decode_xor_address(a.kind, a.value, &m.transaction_id);
        }
        // Credentials are checked on whatever a request carries.
        let credentials = turn::Credentials {
            realm: "confab".into(),
            users: [("ada".to_string(), "lovelace".to_string())].into(),
            secret: Some(b"north".to_vec()),
            nonce_key: [7; 16],
            nonce_lifetime: 600,
        };
        let _ = credentials.check(&m, 1_000_000);
        // Without MESSAGE-INTEGRITY (whose HMAC would no longer match), rebuilt from its
        // attributes it parses to the same.
        let mut b = MessageBuilder::new(m.class, m.method, m.transaction_id);
        let kept: Vec<_> = m.attrs.iter().collect();
        if m.integrity_at.is_none() {
            for a in &kept {
                b.attr(a.kind, a.value);
            }
            let again = b.build_with_fingerprint();
            let m2 = Message::parse(&again).expect("a rebuilt message parses");
            assert_eq!((m2.class, m2.method, m2.transaction_id), (m.class, m.method, m.transaction_id));
            assert_eq!(m2.attrs.len(), kept.len());
        }
    }
    let mut server = Server::new();
    server.handle_packet(Instant::now(), Packet {
        transport: Transport::Udp,
        source: "203.0.113.7:50000".parse().unwrap(),
        destination: "192.0.2.10:3478".parse().unwrap(),
        data,
    });
    if let Some(t) = server.poll_transmit() {
        Message::parse(&t.data).expect("the server's answer parses");
    }
    assert!(server.poll_transmit().is_none());
});

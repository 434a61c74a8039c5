//! The SFU core under hostile input: a participant that sends arbitrary SDP offers and answers,
//! candidates, mutes, and datagrams and ICE-TCP frames (some dressed as STUN with its ICE
//! username, so they reach its str0m engine), interleaved with the passing of time. Nothing may panic, and the core must
//! stay consistent (its counters match its participants).
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sfu::{Command, Event, LeaveReason, ParticipantId, Role, Sfu, SfuConfig, Signal};

fuzz_target!(|data: &[u8]| {
    let server: SocketAddr = "10.99.0.1:7881".parse().unwrap();
    let peer: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let mut now = Instant::now();
    let mut sfu = Sfu::new(SfuConfig { tcp_candidates: vec![server], ..SfuConfig::new(vec![server]) }).unwrap();
    let ada = ParticipantId::new("ada");
    let bob = ParticipantId::new("bob");
    for p in [&ada, &bob] {
        let join = Command::Join { participant: p.clone(), room: "r".into(), name: p.to_string(), role: Role::Member, grants: Default::default(), mode: Default::default() };
        sfu.handle_command(now, join).unwrap();
    }
    // The SFU's ICE username fragment for ada, to route STUN-shaped datagrams to her.
    let mut ufrag = String::new();
    let mut offer_id = 0;
    while let Some(e) = sfu.poll_event() {
        if let Event::Signal { to, signal: Signal::Offer { id, sdp, .. } } = e {
            if to == ada {
                offer_id = id;
                ufrag = sdp.lines().find_map(|l| l.strip_prefix("a=ice-ufrag:")).unwrap_or("").to_string();
            }
        }
    }

    for chunk in data.split(|b| *b == 0xff).take(64) {
        let Some((&op, body)) = chunk.split_first() else { continue };
        let text = String::from_utf8_lossy(body).into_owned();
        let result = match op % 8 {
            0 => sfu.handle_command(now, Command::Offer { participant: ada.clone(), sdp: text, tracks: vec![] }),
            1 => sfu.handle_command(now, Command::Answer { participant: ada.clone(), id: offer_id, sdp: text }),
            2 => sfu.handle_command(now, Command::Candidate { participant: ada.clone(), candidate: text }),
            3 => sfu.handle_command(now, Command::Mute { participant: ada.clone(), track: text, muted: body.len() % 2 == 0 }),
            // An odd length goes over ICE-TCP, as one frame.
            4 if body.len() % 2 == 1 => {
                sfu.handle_tcp_frame(now, peer, server, body);
                Ok(())
            }
            4 => {
                sfu.handle_datagram(now, peer, server, body);
                Ok(())
            }
            5 if body.len() % 2 == 1 => {
                sfu.handle_tcp_frame(now, peer, server, &stun_with(&ufrag, body));
                Ok(())
            }
            5 => {
                sfu.handle_datagram(now, peer, server, &stun_with(&ufrag, body));
                Ok(())
            }
            6 => {
                now += Duration::from_millis(u64::from(body.first().copied().unwrap_or(0)) * 40);
                sfu.handle_timeout(now);
                Ok(())
            }
            _ => sfu.handle_command(now, Command::Leave { participant: bob.clone(), reason: LeaveReason::Left }),
        };
        let _ = result;
        while sfu.poll_transmit().is_some() {}
        while let Some(e) = sfu.poll_event() {
            if let Event::Signal { signal: Signal::Offer { id, .. }, to } = e {
                if to == ada {
                    offer_id = id;
                }
            }
        }
    }
    assert!(sfu.stats().participants <= 2);
});

/// A STUN binding request carrying USERNAME `ufrag:x`, then `tail` as further attributes.
fn stun_with(ufrag: &str, tail: &[u8]) -> Vec<u8> {
    let username = format!("{ufrag}:x");
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
    attrs.extend_from_slice(username.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    attrs.extend_from_slice(tail);
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attrs.len().min(u16::MAX as usize) as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&attrs);
    m
}

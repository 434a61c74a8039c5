//! ICE over TCP to the SFU (RFC 6544, RFC 4571 framing) against a real `confab` on loopback:
//! str0m peers whose only candidate is an active TCP one publish over WHIP and play over WHEP,
//! so every packet between them and the SFU (STUN, DTLS, SRTP) crosses a TCP connection.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use testkit::ToSfu;

mod common;

use common::peer::{Client, run};
use common::{http, media_of, server_banner, url_of};

/// The candidate lines of an SDP.
fn candidates(sdp: &str) -> Vec<&str> {
    sdp.lines().filter(|l| l.starts_with("a=candidate:")).collect()
}

#[test]
fn peers_with_tcp_candidates_only_publish_and_play_through_the_sfu() {
    let (_server, _out, banner) = server_banner(&[]);
    let base = url_of(&banner);
    let media = media_of(&banner);
    assert!(banner.iter().any(|l| l.contains("and TCP (ICE-TCP)")), "the banner says media takes TCP: {banner:?}");

    let mut publisher = Client::tcp("tcp-publisher", media);
    let offer = publisher.peer.publish(true, true);
    if let Some(ToSfu::Offer(sdp)) = &offer {
        assert!(candidates(sdp).iter().all(|c| c.contains(" tcp ") && c.contains("tcptype active")), "{sdp}");
    }
    let reply = publisher.start(&base, "/whip/tcp?name=tcp-publisher", offer);
    assert_eq!(reply.status, 201, "{}", reply.body);
    // The answer offers UDP first and a passive TCP candidate on the same port, ranked lower.
    let offered = candidates(&reply.body);
    let udp = offered.iter().find(|c| c.contains(" udp ")).expect("a UDP candidate");
    let tcp = offered.iter().find(|c| c.contains(" tcp ")).expect("a TCP candidate");
    assert!(tcp.contains(&format!(" {} {} typ host tcptype passive", media.ip(), media.port())), "{tcp}");
    let prio = |c: &str| c.split_whitespace().nth(3).unwrap().parse::<u32>().unwrap();
    assert!(prio(udp) > prio(tcp), "UDP is preferred: {udp} / {tcp}");

    let mut player = Client::tcp("tcp-player", media);
    let offer = player.peer.watch();
    let reply = player.start(&base, "/whep/tcp", offer);
    assert_eq!(reply.status, 201, "{}", reply.body);

    let got = run(&mut [&mut publisher, &mut player], Duration::from_secs(20), |c| {
        let frames = c[1].peer.frames_of("tcp-publisher");
        c[0].peer.is_connected() && frames.iter().filter(|f| f.keyframe).count() >= 1 && frames.len() >= 60
    });
    let frames = player.peer.frames_of("tcp-publisher");
    assert!(got, "the TCP player got {} frames of the TCP publisher", frames.len());
    assert!(publisher.frames_in > 0 && player.frames_in >= 60, "{} / {} frames over TCP", publisher.frames_in, player.frames_in);

    // A UDP player of the same publisher gets the same media: TCP and UDP peers share a room.
    let mut udp_player = Client::udp("udp-player");
    let offer = udp_player.peer.watch();
    let reply = udp_player.start(&base, "/whep/tcp", offer);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let got = run(&mut [&mut publisher, &mut player, &mut udp_player], Duration::from_secs(20), |c| {
        c[2].peer.frames_of("tcp-publisher").len() >= 30
    });
    assert!(got, "the UDP player got {} frames", udp_player.peer.frames_of("tcp-publisher").len());
}

#[test]
fn garbage_and_broken_frames_on_the_tcp_port_do_not_hurt_the_server() {
    let (_server, _out, banner) = server_banner(&[]);
    let base = url_of(&banner);
    let media = media_of(&banner);
    // Not STUN, not framed sensibly, then a length promising more than ever comes, then a close.
    let mut junk = TcpStream::connect(media).unwrap();
    junk.write_all(b"\x00\x05hello\x00\x00GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut truncated = TcpStream::connect(media).unwrap();
    truncated.write_all(&[0xff, 0xff, 1, 2, 3]).unwrap();
    drop(truncated);
    // Many connections at once are taken and dropped.
    let many: Vec<TcpStream> = (0..50).filter_map(|_| TcpStream::connect(media).ok()).collect();
    assert_eq!(many.len(), 50);
    drop(many);

    // The server still serves a TCP peer.
    let mut publisher = Client::tcp("after-junk", media);
    let offer = publisher.peer.publish(true, true);
    let reply = publisher.start(&base, "/whip/junk?name=after-junk", offer);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(run(&mut [&mut publisher], Duration::from_secs(20), |c| c[0].peer.is_connected()), "connected over TCP after the junk");
    // The junk frame was counted as traffic of nobody's.
    let stats = http(&base, "GET", "/api/v1/stats", &[], b"");
    let stats: serde_json::Value = serde_json::from_str(&stats.body).unwrap();
    assert!(stats["datagrams_unrouted"].as_u64().is_some_and(|n| n >= 1), "{stats}");
}

#[test]
fn without_ice_tcp_no_tcp_candidate_is_offered_and_the_port_is_closed() {
    let (_server, _out, banner) = server_banner(&["--no-ice-tcp"]);
    let base = url_of(&banner);
    let media = media_of(&banner);
    assert!(!banner.iter().any(|l| l.contains("TCP (ICE-TCP)")), "{banner:?}");
    let mut publisher = Client::udp("udp-only");
    let offer = publisher.peer.publish(true, false);
    let reply = publisher.start(&base, "/whip/udp?name=udp-only", offer);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert!(candidates(&reply.body).iter().all(|c| c.contains(" udp ")), "{}", reply.body);
    assert!(TcpStream::connect_timeout(&media, Duration::from_secs(2)).is_err(), "nothing listens on TCP {media}");
}

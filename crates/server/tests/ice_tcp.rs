//! ICE over TCP to the SFU (RFC 6544, RFC 4571 framing) against a real `confab` on loopback:
//! str0m peers whose only candidate is an active TCP one publish over WHIP and play over WHEP,
//! so every packet between them and the SFU (STUN, DTLS, SRTP) crosses a TCP connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sfu::{ParticipantId, Signal};
use testkit::{Peer, ToSfu};

mod common;

use common::{Reply, http, media_of, server_banner, url_of};

const SDP: (&str, &str) = ("Content-Type", "application/sdp");

/// How a test peer reaches the SFU.
enum Link {
    Udp(UdpSocket),
    /// A TCP connection, with the bytes read so far that do not yet make a whole frame.
    Tcp(TcpStream, Vec<u8>),
}

struct Client {
    peer: Peer,
    link: Link,
    /// Frames received over TCP, and their bytes.
    frames_in: usize,
}

impl Client {
    /// A peer whose only candidate is the local end of a TCP connection to `media`.
    fn tcp(name: &str, media: SocketAddr) -> Client {
        let stream = TcpStream::connect(media).expect("the media port takes TCP connections");
        stream.set_nonblocking(true).unwrap();
        stream.set_nodelay(true).unwrap();
        let addr = stream.local_addr().unwrap();
        let peer = Peer::new_tcp(Instant::now(), name, ParticipantId::new(name), addr);
        Client { peer, link: Link::Tcp(stream, Vec::new()), frames_in: 0 }
    }

    fn udp(name: &str) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();
        let peer = Peer::new(Instant::now(), name, ParticipantId::new(name), addr);
        Client { peer, link: Link::Udp(socket), frames_in: 0 }
    }

    /// Post `offer` to `path`; on 201, give the peer the answer.
    fn start(&mut self, base: &str, path: &str, offer: Option<ToSfu>) -> Reply {
        let Some(ToSfu::Offer(sdp)) = offer else { panic!("no offer") };
        let reply = http(base, "POST", path, &[SDP], sdp.as_bytes());
        if reply.status == 201 {
            self.peer.on_signal(Signal::Answer { sdp: reply.body.clone() }).unwrap();
        }
        reply
    }

    /// Exchange packets and advance time.
    fn step(&mut self) {
        let now = Instant::now();
        match &mut self.link {
            Link::Udp(socket) => {
                let mut buf = [0u8; 2000];
                while let Ok((n, from)) = socket.recv_from(&mut buf) {
                    self.peer.receive(now, from, &buf[..n]);
                }
            }
            Link::Tcp(stream, pending) => {
                let from = stream.peer_addr().unwrap();
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => panic!("the server closed the ICE-TCP connection"),
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => panic!("ICE-TCP read: {e}"),
                    }
                }
                // RFC 4571: a 16-bit length, then the packet.
                while pending.len() >= 2 {
                    let len = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
                    if pending.len() < 2 + len {
                        break;
                    }
                    let frame: Vec<u8> = pending.drain(..2 + len).skip(2).collect();
                    self.frames_in += 1;
                    self.peer.receive(now, from, &frame);
                }
            }
        }
        self.peer.tick(now);
        let mut out: Vec<(SocketAddr, SocketAddr, Vec<u8>)> = Vec::new();
        self.peer.poll(now, &mut out);
        for (_, to, data) in out {
            match &mut self.link {
                Link::Udp(socket) => {
                    let _ = socket.send_to(&data, to);
                }
                Link::Tcp(stream, _) => {
                    assert_eq!(to, stream.peer_addr().unwrap(), "a TCP-only peer sends to the SFU's TCP candidate only");
                    let mut frame = (data.len() as u16).to_be_bytes().to_vec();
                    frame.extend_from_slice(&data);
                    write_all(stream, &frame);
                }
            }
        }
    }
}

/// Write all of `data` to a non-blocking stream.
fn write_all(stream: &mut TcpStream, mut data: &[u8]) {
    let end = Instant::now() + Duration::from_secs(5);
    while !data.is_empty() {
        match stream.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => std::thread::sleep(Duration::from_millis(1)),
            Err(e) => panic!("ICE-TCP write: {e}"),
        }
    }
}

/// Run `clients` until `done` or `limit`.
fn run(clients: &mut [&mut Client], limit: Duration, mut done: impl FnMut(&[&mut Client]) -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        for c in clients.iter_mut() {
            c.step();
        }
        if done(clients) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

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

//! A str0m test peer (testkit) on a real socket, talking to a `confab` over WHIP/WHEP: over UDP,
//! or over ICE-TCP only (RFC 4571 frames on one TCP connection).
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use sfu::{ParticipantId, Signal};
use testkit::{Peer, ToSfu};

use super::{Reply, http};

/// The Content-Type of an offer.
pub(crate) const SDP: (&str, &str) = ("Content-Type", "application/sdp");

/// How a test peer reaches the SFU.
pub(crate) enum Link {
    Udp(UdpSocket),
    /// A TCP connection, with the bytes read so far that do not yet make a whole frame.
    Tcp(TcpStream, Vec<u8>),
}

pub(crate) struct Client {
    pub(crate) peer: Peer,
    pub(crate) link: Link,
    /// Frames received over TCP, and their bytes.
    pub(crate) frames_in: usize,
}

impl Client {
    /// A peer whose only candidate is the local end of a TCP connection to `media`.
    pub(crate) fn tcp(name: &str, media: SocketAddr) -> Client {
        let stream = TcpStream::connect(media).expect("the media port takes TCP connections");
        stream.set_nonblocking(true).unwrap();
        stream.set_nodelay(true).unwrap();
        let addr = stream.local_addr().unwrap();
        let peer = Peer::new_tcp(Instant::now(), name, ParticipantId::new(name), addr);
        Client { peer, link: Link::Tcp(stream, Vec::new()), frames_in: 0 }
    }

    pub(crate) fn udp(name: &str) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let addr = socket.local_addr().unwrap();
        let peer = Peer::new(Instant::now(), name, ParticipantId::new(name), addr);
        Client { peer, link: Link::Udp(socket), frames_in: 0 }
    }

    /// Post `offer` to `path`; on 201, give the peer the answer.
    pub(crate) fn start(&mut self, base: &str, path: &str, offer: Option<ToSfu>) -> Reply {
        let Some(ToSfu::Offer(sdp)) = offer else { panic!("no offer") };
        let reply = http(base, "POST", path, &[SDP], sdp.as_bytes());
        if reply.status == 201 {
            self.peer.on_signal(Signal::Answer { sdp: reply.body.clone() }).unwrap();
        }
        reply
    }

    /// Exchange packets and advance time.
    pub(crate) fn step(&mut self) {
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
pub(crate) fn run(clients: &mut [&mut Client], limit: Duration, mut done: impl FnMut(&[&mut Client]) -> bool) -> bool {
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


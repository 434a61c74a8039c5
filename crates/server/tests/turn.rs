//! The built-in STUN/TURN server over real UDP sockets on loopback: a client (this test, with
//! the `turn` crate's codec) gets its reflexive address, allocates a relay with long-term
//! credentials, and exchanges data with a peer through it, by indications and by a channel.

mod common;

use std::io::BufReader;
use std::net::{SocketAddr, UdpSocket};
use std::process::ChildStdout;
use std::time::Duration;

use common::{Running, confab, server_banner};
use turn::{Class, Message, MessageBuilder, Method, attr, long_term_key, verify_integrity};

/// A server with TURN on loopback, relays allowed to reach loopback peers (with its stdout, kept
/// open while it runs); its TURN address.
fn turn_server(args: &[&str]) -> ((Running, BufReader<ChildStdout>), SocketAddr) {
    let args: Vec<&str> = ["--turn", "127.0.0.1:0", "--turn-allow-peer", "127.0.0.0/8"].iter().chain(args).copied().collect();
    let (running, stdout, banner) = server_banner(&args);
    let addr = banner
        .iter()
        .find_map(|line| line.split_once("STUN/TURN: UDP ").map(|(_, rest)| rest.split_whitespace().next().unwrap().parse().unwrap()))
        .expect("the banner names the TURN address");
    ((running, stdout), addr)
}

struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    next: std::cell::Cell<u8>,
}

impl Client {
    fn new(server: SocketAddr) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client { socket, server, next: std::cell::Cell::new(0) }
    }

    fn tid(&self) -> [u8; 12] {
        self.next.set(self.next.get() + 1);
        [self.next.get(); 12]
    }

    fn recv(&self) -> Vec<u8> {
        let mut buf = [0u8; 2048];
        let (n, from) = self.socket.recv_from(&mut buf).expect("an answer within 5 s");
        assert_eq!(from, self.server);
        buf[..n].to_vec()
    }

    fn exchange(&self, request: &[u8]) -> Vec<u8> {
        self.socket.send_to(request, self.server).unwrap();
        self.recv()
    }
}

fn code(m: &Message<'_>) -> Option<u16> {
    m.get(attr::ERROR_CODE).map(|v| u16::from(v[2] & 7) * 100 + u16::from(v[3]))
}

#[test]
fn stun_binding_and_a_relayed_exchange_through_turn() {
    let (_server, addr) = turn_server(&["--turn-user", "ada:lovelace"]);
    let client = Client::new(addr);

    // STUN Binding: the reflexive address is the client's own on loopback.
    let tid = client.tid();
    let answer = client.exchange(&MessageBuilder::new(Class::Request, Method::BINDING, tid).build_with_fingerprint());
    let m = Message::parse(&answer).unwrap();
    assert_eq!((m.class, m.transaction_id), (Class::Success, tid));
    assert_eq!(m.xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(client.socket.local_addr().unwrap())));
    assert!(m.fingerprint);

    // Allocate: 401 with the realm and a nonce, then success with the relay address.
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, client.tid());
    b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    let answer = client.exchange(&b.build_with_fingerprint());
    let m = Message::parse(&answer).unwrap();
    assert_eq!(code(&m), Some(401));
    let realm = String::from_utf8(m.get(attr::REALM).unwrap().to_vec()).unwrap();
    let nonce = m.get(attr::NONCE).unwrap().to_vec();
    let key = long_term_key("ada", &realm, "lovelace");
    let signed = |method: Method, tid: [u8; 12], attrs: &dyn Fn(&mut MessageBuilder)| {
        let mut b = MessageBuilder::new(Class::Request, method, tid);
        attrs(&mut b);
        b.attr(attr::USERNAME, b"ada").attr(attr::REALM, realm.as_bytes()).attr(attr::NONCE, &nonce);
        b.build_with_integrity(&key, true)
    };
    let answer = client.exchange(&signed(Method::ALLOCATE, client.tid(), &|b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    }));
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.class, Class::Success, "{:?}", code(&m));
    assert!(verify_integrity(&m, &key), "the answer is signed");
    let relay = m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    assert_eq!(relay.ip().to_string(), "127.0.0.1");

    // A peer; a permission for it; data both ways in indications.
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let answer = client.exchange(&signed(Method::CREATE_PERMISSION, client.tid(), &|b| {
        b.xor_address(attr::XOR_PEER_ADDRESS, peer_addr);
    }));
    assert_eq!(Message::parse(&answer).unwrap().class, Class::Success);
    let mut send = MessageBuilder::new(Class::Indication, Method::SEND, client.tid());
    send.xor_address(attr::XOR_PEER_ADDRESS, peer_addr).attr(attr::DATA, b"hello peer");
    client.socket.send_to(&send.build(), addr).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = peer.recv_from(&mut buf).expect("the peer receives through the relay");
    assert_eq!((&buf[..n], from), (&b"hello peer"[..], relay));
    peer.send_to(b"hello client", relay).unwrap();
    let data = client.recv();
    let m = Message::parse(&data).unwrap();
    assert_eq!((m.class, m.method), (Class::Indication, Method::DATA));
    assert_eq!(m.xor_address(attr::XOR_PEER_ADDRESS), Some(Ok(peer_addr)));
    assert_eq!(m.get(attr::DATA), Some(&b"hello client"[..]));

    // A channel: ChannelData both ways.
    let answer = client.exchange(&signed(Method::CHANNEL_BIND, client.tid(), &|b| {
        b.attr(attr::CHANNEL_NUMBER, &[0x40, 0x00, 0, 0]).xor_address(attr::XOR_PEER_ADDRESS, peer_addr);
    }));
    assert_eq!(Message::parse(&answer).unwrap().class, Class::Success);
    client.socket.send_to(&[0x40, 0x00, 0x00, 0x04, b'p', b'i', b'n', b'g'], addr).unwrap();
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    peer.send_to(b"pong", relay).unwrap();
    assert_eq!(client.recv(), [0x40, 0x00, 0x00, 0x04, b'p', b'o', b'n', b'g']);

    // A permission for a peer outside the allowed networks is refused; Refresh 0 ends it all.
    let answer = client.exchange(&signed(Method::CREATE_PERMISSION, client.tid(), &|b| {
        b.xor_address(attr::XOR_PEER_ADDRESS, "10.1.2.3:9".parse().unwrap());
    }));
    assert_eq!(code(&Message::parse(&answer).unwrap()), Some(403));
    let answer = client.exchange(&signed(Method::REFRESH, client.tid(), &|b| {
        b.attr(attr::LIFETIME, &0u32.to_be_bytes());
    }));
    assert_eq!(Message::parse(&answer).unwrap().class, Class::Success);
    peer.send_to(b"late", relay).unwrap();
    client.socket.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    assert!(client.socket.recv_from(&mut buf).is_err(), "the relay is closed");
}

#[test]
fn wrong_credentials_and_garbage_are_refused_without_harm() {
    let (_server, addr) = turn_server(&["--turn-user", "ada:lovelace"]);
    let client = Client::new(addr);
    // Garbage gets nothing, and the server still answers afterwards.
    client.socket.send_to(&[0xff; 64], addr).unwrap();
    client.socket.send_to(&[], addr).unwrap();
    let tid = client.tid();
    let m = client.exchange(&MessageBuilder::new(Class::Request, Method::BINDING, tid).build());
    assert_eq!(Message::parse(&m).unwrap().transaction_id, tid);
    // A wrong password: 401.
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, client.tid());
    b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    let first = client.exchange(&b.build());
    let first = Message::parse(&first).unwrap();
    let nonce = first.get(attr::NONCE).unwrap().to_vec();
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, client.tid());
    b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(attr::USERNAME, b"ada").attr(attr::REALM, b"confab").attr(attr::NONCE, &nonce);
    let answer = client.exchange(&b.build_with_integrity(&long_term_key("ada", "confab", "babbage"), true));
    assert_eq!(code(&Message::parse(&answer).unwrap()), Some(401));
}

/// Read one STUN message or ChannelData frame from a TCP stream.
fn read_frame(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).expect("a frame within 5 s");
    let len = turn::stream_frame_len(&head).unwrap().unwrap();
    let mut frame = head.to_vec();
    frame.resize(len, 0);
    stream.read_exact(&mut frame[4..]).unwrap();
    frame
}

#[test]
fn turn_over_tcp_relays_to_a_udp_peer() {
    use std::io::Write;
    let (_server, addr) = turn_server(&["--turn-user", "ada:lovelace"]);
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let local = stream.local_addr().unwrap();
    // Binding over TCP, in two writes: the server cuts frames out of the stream.
    let binding = MessageBuilder::new(Class::Request, Method::BINDING, [1; 12]).build_with_fingerprint();
    stream.write_all(&binding[..7]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    stream.write_all(&binding[7..]).unwrap();
    let m = read_frame(&mut stream);
    assert_eq!(Message::parse(&m).unwrap().xor_address(attr::XOR_MAPPED_ADDRESS), Some(Ok(local)));
    // Allocate over TCP (the relay is UDP), the 401 dance first.
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, [2; 12]);
    b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    stream.write_all(&b.build()).unwrap();
    let first = read_frame(&mut stream);
    let nonce = Message::parse(&first).unwrap().get(attr::NONCE).unwrap().to_vec();
    let key = long_term_key("ada", "confab", "lovelace");
    let signed = |method: Method, tid: u8, attrs: &dyn Fn(&mut MessageBuilder)| {
        let mut b = MessageBuilder::new(Class::Request, method, [tid; 12]);
        attrs(&mut b);
        b.attr(attr::USERNAME, b"ada").attr(attr::REALM, b"confab").attr(attr::NONCE, &nonce);
        b.build_with_integrity(&key, false)
    };
    stream.write_all(&signed(Method::ALLOCATE, 3, &|b| {
        b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    })).unwrap();
    let answer = read_frame(&mut stream);
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.class, Class::Success, "{:?}", code(&m));
    let relay = m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    stream.write_all(&signed(Method::CHANNEL_BIND, 4, &|b| {
        b.attr(attr::CHANNEL_NUMBER, &[0x40, 0x09, 0, 0]).xor_address(attr::XOR_PEER_ADDRESS, peer_addr);
    })).unwrap();
    assert_eq!(Message::parse(&read_frame(&mut stream)).unwrap().class, Class::Success);
    // ChannelData over TCP is padded to 4 bytes both ways.
    stream.write_all(&[0x40, 0x09, 0x00, 0x03, b'a', b'b', b'c', 0]).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).expect("the peer receives through the relay");
    assert_eq!((&buf[..n], from), (&b"abc"[..], relay));
    peer.send_to(b"xyz12", relay).unwrap();
    assert_eq!(read_frame(&mut stream), [0x40, 0x09, 0x00, 0x05, b'x', b'y', b'z', b'1', b'2', 0, 0, 0]);
    // Closing the connection ends the allocation: the relay no longer answers.
    drop(stream);
    std::thread::sleep(Duration::from_millis(200));
    peer.send_to(b"after", relay).unwrap();
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The relay's port is closed: a datagram to it is refused (ICMP), seen on a connected socket.
    probe.connect(relay).unwrap();
    probe.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    probe.send(b"anyone?").unwrap();
    let refused = probe.recv(&mut buf).map_err(|e| e.kind());
    assert_eq!(refused, Err(std::io::ErrorKind::ConnectionRefused), "the relay socket is closed");
}

/// Run one of coturn's client tools; `None` (and a note) when coturn is not installed
/// (`./scripts/test` installs it).
fn coturn_tool(tool: &str, args: &[&str]) -> Option<String> {
    let out = match std::process::Command::new(tool).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: {tool} not installed (Debian package coturn; ./scripts/test installs it)");
            return None;
        }
        Err(e) => panic!("{tool}: {e}"),
    };
    Some(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn coturn_client_tools_pass_against_confab() {
    let (_server, addr) = turn_server(&["--turn-user", "ada:lovelace", "--turn-secret", "north"]);
    let port = addr.port().to_string();
    // STUN: turnutils_stunclient reads its reflexive address.
    let Some(out) = coturn_tool("turnutils_stunclient", &["-p", &port, "127.0.0.1"]) else { return };
    assert!(out.contains("UDP reflexive addr: 127.0.0.1:"), "{out}");
    // TURN: four client pairs relay 100 messages each to each other through confab, over UDP and
    // over TCP, with a static user and with TURN REST credentials. (`-c`: no RTCP allocations,
    // which would need port reservations, not offered.)
    for (transport, credentials) in [
        ("udp", ["-u", "ada", "-w", "lovelace"]),
        ("tcp", ["-u", "ada", "-w", "lovelace"]),
        ("udp", ["-W", "north", "-u", "bob"]),
    ] {
        let mut args = vec!["-c", "-y", "-n", "100", "-m", "4", "-l", "120", "-z", "5", "-p", &port, "-e", "127.0.0.1"];
        if transport == "tcp" {
            args.push("-t");
        }
        args.extend(credentials);
        args.push("127.0.0.1");
        let out = coturn_tool("turnutils_uclient", &args).unwrap();
        assert!(out.contains("tot_send_msgs=400, tot_recv_msgs=400"), "{transport} {credentials:?}: every message relayed:\n{out}");
        assert!(out.contains("Total lost packets 0 (0.000000%)"), "{transport}: {out}");
    }
}

#[test]
fn relays_take_ports_of_the_range_and_show_the_public_address() {
    let (_server, addr) = turn_server(&["--turn-user", "ada:lovelace", "--turn-relay-ports", "50200-50209", "--turn-public-ip", "198.51.100.99"]);
    let client = Client::new(addr);
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, client.tid());
    b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]);
    let first = client.exchange(&b.build());
    let nonce = Message::parse(&first).unwrap().get(attr::NONCE).unwrap().to_vec();
    let mut b = MessageBuilder::new(Class::Request, Method::ALLOCATE, client.tid());
    b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]).attr(attr::USERNAME, b"ada").attr(attr::REALM, b"confab").attr(attr::NONCE, &nonce);
    let answer = client.exchange(&b.build_with_integrity(&long_term_key("ada", "confab", "lovelace"), true));
    let m = Message::parse(&answer).unwrap();
    let relayed = m.xor_address(attr::XOR_RELAYED_ADDRESS).unwrap().unwrap();
    assert_eq!(relayed.ip().to_string(), "198.51.100.99", "the public address");
    assert!((50200..=50209).contains(&relayed.port()), "a port of the range: {relayed}");
}

#[test]
fn turn_over_tls_relays_with_coturns_client() {
    // A self-signed certificate for the test, made by openssl (./scripts/test installs it).
    let dir = std::env::temp_dir().join(format!("confab-turn-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let Ok(made) = made else {
        eprintln!("SKIPPED: openssl not installed (./scripts/test installs it)");
        return;
    };
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let tls_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tls_addr = format!("127.0.0.1:{tls_port}");
    let (_server, _) = turn_server(&[
        "--turn-user", "ada:lovelace", "--turn-tls", &tls_addr,
        "--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(),
    ]);
    let port = tls_port.to_string();
    let Some(out) = coturn_tool("turnutils_uclient", &[
        "-S", "-t", "-c", "-y", "-n", "100", "-m", "2", "-l", "120", "-z", "5", "-u", "ada", "-w", "lovelace", "-p", &port, "-e", "127.0.0.1", "127.0.0.1",
    ]) else { return };
    assert!(out.contains("tot_send_msgs=200, tot_recv_msgs=200"), "every message relayed over TLS:\n{out}");
    assert!(out.contains("Total lost packets 0 (0.000000%)"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn turn_tls_needs_a_certificate_and_a_key() {
    let out = confab().args(["--turn-tls", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-key"), "{err}");
    let out = confab()
        .args(["--http", "127.0.0.1:0", "--rtc", "127.0.0.1:0", "--turn", "127.0.0.1:0", "--turn-tls", "127.0.0.1:0"])
        .args(["--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert /nonexistent.pem"), "a clear error: {err}");
}

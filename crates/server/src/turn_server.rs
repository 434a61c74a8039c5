//! The built-in STUN/TURN server's I/O: a UDP socket and a TCP listener (same port) for
//! clients, one UDP socket per relay, and a task that drives the sans-IO `turn::Server` with
//! what they receive, the clock, and the sockets to open and close.
//!
//! The UDP side (the client socket, the relays and the driving task) runs on a thread of its own
//! with a single-threaded runtime, as a media worker does: a relayed packet is read, handed over
//! and sent on one thread, never waking another. TCP and TLS clients are accepted on the main
//! runtime and their frames cross over by channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{PortRange, TurnSettings};
use crate::error::Error;

/// The realm clients are told.
pub(crate) const REALM: &str = "confab";
/// Allocations at most, in all, and per username.
const MAX_ALLOCATIONS: usize = 10_000;
const MAX_ALLOCATIONS_PER_USER: usize = 32;
/// How long a nonce is good for.
const NONCE_LIFETIME: u64 = 3600;
/// The largest datagram taken in.
const MAX_DATAGRAM: usize = 65_536;
/// Kernel receive buffers of the client socket and of each relay (capped by the kernel at
/// net.core.rmem_max): a burst, or the thread descheduled for a moment, must not overflow them.
const CLIENT_SOCKET_BUFFER: usize = 4 * 1024 * 1024;
const RELAY_SOCKET_BUFFER: usize = 512 * 1024;

/// A running TURN server, as the rest of the binary sees it: where it is, and how to make
/// credentials for it.
#[derive(Debug, Clone)]
pub(crate) struct TurnHandle {
    /// Its UDP address.
    pub(crate) addr: SocketAddr,
    /// The address clients are told to reach it at.
    pub(crate) advertised: SocketAddr,
    /// Its TURN-over-TLS address, if it has one.
    pub(crate) tls: Option<SocketAddr>,
    secret: Arc<Vec<u8>>,
    /// What it has done, for the metrics.
    pub(crate) counters: Arc<TurnCounters>,
}

/// The TURN server's counters, written by its task after each step and read by the metrics.
#[derive(Debug, Default)]
pub(crate) struct TurnCounters {
    /// Allocations alive now.
    pub(crate) allocations: AtomicU64,
    /// Allocations made since the start.
    pub(crate) allocations_total: AtomicU64,
    /// Packets relayed, both directions.
    pub(crate) relayed: AtomicU64,
    /// Binding requests answered.
    pub(crate) bindings: AtomicU64,
    /// Requests answered with an error.
    pub(crate) errors: AtomicU64,
    /// Packets dropped.
    pub(crate) dropped: AtomicU64,
}

impl TurnCounters {
    fn update(&self, stats: &turn::Stats, allocations: usize) {
        self.allocations.store(allocations as u64, Ordering::Relaxed);
        self.allocations_total.store(stats.allocations, Ordering::Relaxed);
        self.relayed.store(stats.relayed, Ordering::Relaxed);
        self.bindings.store(stats.bindings, Ordering::Relaxed);
        self.errors.store(stats.errors, Ordering::Relaxed);
        self.dropped.store(stats.dropped, Ordering::Relaxed);
    }
}

impl TurnHandle {
    /// Ephemeral credentials good for `ttl`, for the `iceServers` of a joining client.
    pub(crate) fn credentials(&self, user: &str, ttl: Duration) -> (String, String) {
        let expiry = unix_now() + ttl.as_secs();
        turn::ephemeral_credentials(&self.secret, user, expiry)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS generator does not fail on the systems confab runs on; if it did, a fixed key
    // would make nonces and the default secret guessable, so refuse to go on.
    getrandom::fill(&mut bytes).expect("the OS random generator");
    bytes
}

/// Bind the TURN socket and start serving. `None` when the default address is taken (logged):
/// confab then runs without TURN.
pub(crate) async fn start(settings: &TurnSettings, public_ips: &[IpAddr]) -> Result<Option<TurnHandle>, Error> {
    let socket = match std::net::UdpSocket::bind(settings.addr) {
        Ok(s) => s,
        Err(e) if settings.default_addr => {
            tracing::warn!("TURN is off: cannot listen on UDP {}: {e} (set --turn ADDR, or --no-turn)", settings.addr);
            return Ok(None);
        }
        Err(source) => return Err(Error::Bind { what: "TURN", addr: settings.addr, source }),
    };
    let addr = socket.local_addr()?;
    let relay_ip = settings
        .relay_ip
        .or_else(|| (!addr.ip().is_unspecified()).then_some(addr.ip()))
        .or_else(|| public_ips.first().copied())
        .or_else(|| crate::net::local_ips(addr.is_ipv6()).into_iter().find(|ip| !ip.is_loopback()))
        // A machine with loopback only: relays there, for local use.
        .unwrap_or(if addr.is_ipv6() { IpAddr::from(std::net::Ipv6Addr::LOCALHOST) } else { IpAddr::from(std::net::Ipv4Addr::LOCALHOST) });
    let secret = Arc::new(settings.secret.clone().unwrap_or_else(|| random::<32>().to_vec()));
    let config = turn::ServerConfig {
        credentials: turn::Credentials {
            realm: REALM.into(),
            users: settings.users.iter().cloned().collect(),
            secret: Some(secret.to_vec()),
            nonce_key: random(),
            nonce_lifetime: NONCE_LIFETIME,
        },
        relay_ip,
        relay_public_ip: settings.public_ip,
        max_relay_bps: settings.max_bitrate,
        allow_peers: settings.allow_peers.clone(),
        max_allocations: MAX_ALLOCATIONS,
        max_allocations_per_user: MAX_ALLOCATIONS_PER_USER,
        epoch: (Instant::now(), unix_now()),
    };
    // Clients reach the TURN port where they reach the relays.
    let advertised = SocketAddr::new(settings.public_ip.unwrap_or(relay_ip), addr.port());
    let relay_ports = settings.relay_ports;
    // TCP on the same port as UDP.
    let tcp = match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!("TURN over TCP is off: cannot listen on TCP {addr}: {e}");
            None
        }
    };
    let (inputs, rx) = mpsc::channel(1024);
    if let Some(listener) = tcp {
        tokio::spawn(accept(listener, None, inputs.clone()));
    }
    let mut tls_addr = None;
    if let Some((tls, cert, key)) = &settings.tls {
        let acceptor = crate::tls::acceptor_from_pem(cert, key, &[])?;
        let listener = TcpListener::bind(tls).await.map_err(|source| Error::Bind { what: "TURN over TLS", addr: *tls, source })?;
        tls_addr = Some(listener.local_addr()?);
        tokio::spawn(accept(listener, Some(acceptor), inputs.clone()));
    }
    let counters = Arc::new(TurnCounters::default());
    socket.set_nonblocking(true)?;
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(CLIENT_SOCKET_BUFFER);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let task_counters = counters.clone();
    std::thread::Builder::new().name("turn".into()).spawn(move || {
        runtime.block_on(async move {
            match UdpSocket::from_std(socket) {
                Ok(socket) => serve(Arc::new(socket), addr, turn::Server::new(config), relay_ports, inputs, rx, task_counters).await,
                Err(e) => tracing::error!("TURN is off: {e}"),
            }
        })
    })?;
    Ok(Some(TurnHandle { addr, advertised, tls: tls_addr, secret, counters }))
}

/// What the TURN task hears from relay readers and TCP connections.
enum Input {
    /// A datagram from a peer to a relay, or a frame from a TCP client.
    Packet { transport: turn::Transport, source: SocketAddr, destination: SocketAddr, data: Vec<u8> },
    /// A TCP client connected: frames for it go to `tx`.
    Connected { client: SocketAddr, tx: mpsc::Sender<Vec<u8>> },
    /// A TCP or TLS client's connection closed.
    Closed { transport: turn::Transport, client: SocketAddr, server: SocketAddr },
}

/// A TCP connection writes at most this much queued data before the server drops what it
/// sends it (a client that does not read).
const TCP_QUEUE: usize = 256;

/// How long a TLS client has to finish its handshake.
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

async fn accept(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, inputs: mpsc::Sender<Input>) {
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("TURN accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(server) = stream.local_addr() else { continue };
        let _ = stream.set_nodelay(true);
        let inputs = inputs.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let (tx, rx) = mpsc::channel(TCP_QUEUE);
            match tls {
                None => {
                    if inputs.send(Input::Connected { client, tx }).await.is_ok() {
                        connection(stream, turn::Transport::Tcp, client, server, rx, inputs).await;
                    }
                }
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        if inputs.send(Input::Connected { client, tx }).await.is_ok() {
                            connection(stream, turn::Transport::Tls, client, server, rx, inputs).await;
                        }
                    }
                    Ok(Err(e)) => tracing::debug!("TURN TLS handshake with {client}: {e}"),
                    Err(_) => tracing::debug!("TURN TLS handshake with {client}: timed out"),
                },
            }
        });
    }
}

/// One TCP client: frames (STUN messages, ChannelData) cut out of the stream go to the TURN
/// task; what it sends back is written in order.
async fn connection<S>(stream: S, transport: turn::Transport, client: SocketAddr, server: SocketAddr, mut rx: mpsc::Receiver<Vec<u8>>, inputs: mpsc::Sender<Input>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let writing = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    'read: loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        loop {
            let len = match turn::stream_frame_len(&buf) {
                None => break,
                Some(Ok(len)) => len,
                // Not STUN: nothing on this stream can be trusted to line up again.
                Some(Err(_)) => break 'read,
            };
            if buf.len() < len {
                break;
            }
            let data: Vec<u8> = buf.drain(..len).collect();
            let packet = Input::Packet { transport, source: client, destination: server, data };
            if inputs.send(packet).await.is_err() {
                break 'read;
            }
        }
    }
    writing.abort();
    let _ = inputs.send(Input::Closed { transport, client, server }).await;
}

/// A relay socket and the task that reads it.
struct Relay {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

async fn serve(
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    mut server: turn::Server,
    relay_ports: Option<PortRange>,
    inputs: mpsc::Sender<Input>,
    mut rx: mpsc::Receiver<Input>,
    counters: Arc<TurnCounters>,
) {
    let mut relays: HashMap<SocketAddr, Relay> = HashMap::new();
    let mut connections: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let deadline = server.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, source)) => server.handle_packet(Instant::now(), turn::Packet {
                    transport: turn::Transport::Udp, source, destination: local, data: &buf[..n],
                }),
                // ICMP errors from earlier sends (port unreachable) surface here: not fatal.
                Err(e) => tracing::debug!("TURN receive: {e}"),
            },
            Some(input) = rx.recv() => match input {
                Input::Packet { transport, source, destination, data } => server.handle_packet(Instant::now(), turn::Packet {
                    transport, source, destination, data: &data,
                }),
                Input::Connected { client, tx } => {
                    connections.insert(client, tx);
                }
                Input::Closed { transport, client, server: at } => {
                    connections.remove(&client);
                    server.connection_closed(transport, client, at);
                }
            },
            () = sleep_until(deadline) => server.handle_timeout(Instant::now()),
        }
        while let Some(event) = server.poll_event() {
            match event {
                turn::Event::OpenRelay { id, ip, even } => {
                    let opened = open_relay(ip, even, relay_ports, &inputs).await;
                    let addr = opened.as_ref().map(|(a, _)| *a);
                    if let Some((addr, relay)) = opened {
                        relays.insert(addr, relay);
                    }
                    server.relay_opened(Instant::now(), id, addr);
                }
                turn::Event::CloseRelay { relay } => {
                    if let Some(r) = relays.remove(&relay) {
                        r.reader.abort();
                    }
                }
            }
        }
        counters.update(server.stats(), relays.len());
        while let Some(t) = server.poll_transmit() {
            // Tried, then awaited: a new relay socket's writability is unknown to tokio until
            // its reactor has seen it, and a UDP send waits only while the kernel's buffer is full.
            let sent = match t.transport {
                turn::Transport::Tcp | turn::Transport::Tls => {
                    if let Some(tx) = connections.get(&t.destination) {
                        // A client that does not read loses what does not fit its queue.
                        let _ = tx.try_send(t.data);
                    }
                    continue;
                }
                turn::Transport::Udp if t.source == local => send_to(&socket, &t.data, t.destination).await,
                turn::Transport::Udp => match relays.get(&t.source) {
                    Some(r) => send_to(&r.socket, &t.data, t.destination).await,
                    None => continue,
                },
            };
            if let Err(e) = sent {
                tracing::debug!("TURN send to {}: {e}", t.destination);
            }
        }
    }
}

/// Send a datagram: at once when the kernel takes it (nearly always), else when it has room.
async fn send_to(socket: &UdpSocket, data: &[u8], to: SocketAddr) -> std::io::Result<usize> {
    match socket.try_send_to(data, to) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => socket.send_to(data, to).await,
        sent => sent,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Open a relay socket on `ip` (a port of `ports`, or one the OS picks; an even one if `even`)
/// and start reading it into `to_server`. `None` when no port could be had.
async fn open_relay(ip: IpAddr, even: bool, ports: Option<PortRange>, to_server: &mpsc::Sender<Input>) -> Option<(SocketAddr, Relay)> {
    let mut socket = None;
    for _ in 0..64 {
        let port = match ports {
            Some(r) => {
                let p = fastrand::u16(r.lo..=r.hi);
                if even { p & !1 } else { p }
            }
            None => 0,
        };
        if port != 0 && ports.is_some_and(|r| port < r.lo) {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(ip, port)).await {
            Ok(s) if !even || s.local_addr().is_ok_and(|a| a.port() % 2 == 0) => {
                socket = Some(Arc::new(s));
                break;
            }
            // Taken (in the range), or odd: another try.
            Ok(_) => continue,
            Err(e) if port != 0 && e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(e) => {
                tracing::warn!("TURN relay on {ip}: {e}");
                return None;
            }
        }
    }
    let Some(socket) = socket else {
        tracing::warn!("TURN relay on {ip}: no free port{}", ports.map_or(String::new(), |r| format!(" in {}-{}", r.lo, r.hi)));
        return None;
    };
    let addr = socket.local_addr().ok()?;
    let _ = socket2::SockRef::from(&*socket).set_recv_buffer_size(RELAY_SOCKET_BUFFER);
    let reader_socket = socket.clone();
    let to_server = to_server.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match reader_socket.recv_from(&mut buf).await {
                Ok((n, source)) => {
                    let packet = Input::Packet { transport: turn::Transport::Udp, source, destination: addr, data: buf[..n].to_vec() };
                    if to_server.send(packet).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!("TURN relay {addr} receive: {e}"),
            }
        }
    });
    Some((addr, Relay { socket, reader }))
}

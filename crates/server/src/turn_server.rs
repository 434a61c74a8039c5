//! The built-in STUN/TURN server's I/O: one UDP socket for clients, one UDP socket per relay,
//! and a task that drives the sans-IO `turn::Server` with what they receive, the clock, and
//! the sockets to open and close.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::TurnSettings;
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

/// A running TURN server, as the rest of the binary sees it: where it is, and how to make
/// credentials for it.
#[derive(Debug, Clone)]
pub(crate) struct TurnHandle {
    /// Its UDP address.
    pub(crate) addr: SocketAddr,
    /// The address clients are told to reach it at.
    pub(crate) advertised: SocketAddr,
    secret: Arc<Vec<u8>>,
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
    let socket = match UdpSocket::bind(settings.addr).await {
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
        allow_peers: settings.allow_peers.clone(),
        max_allocations: MAX_ALLOCATIONS,
        max_allocations_per_user: MAX_ALLOCATIONS_PER_USER,
        epoch: (Instant::now(), unix_now()),
    };
    let advertised = SocketAddr::new(relay_ip, addr.port());
    tokio::spawn(serve(Arc::new(socket), addr, turn::Server::new(config)));
    Ok(Some(TurnHandle { addr, advertised, secret }))
}

/// A relay socket and the task that reads it.
struct Relay {
    socket: Arc<UdpSocket>,
    reader: JoinHandle<()>,
}

async fn serve(socket: Arc<UdpSocket>, local: SocketAddr, mut server: turn::Server) {
    let (from_peers, mut peer_rx) = mpsc::channel::<(SocketAddr, SocketAddr, Vec<u8>)>(1024);
    let mut relays: HashMap<SocketAddr, Relay> = HashMap::new();
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
            Some((relay, source, data)) = peer_rx.recv() => server.handle_packet(Instant::now(), turn::Packet {
                transport: turn::Transport::Udp, source, destination: relay, data: &data,
            }),
            () = sleep_until(deadline) => server.handle_timeout(Instant::now()),
        }
        while let Some(event) = server.poll_event() {
            match event {
                turn::Event::OpenRelay { id, ip } => {
                    let opened = open_relay(ip, &from_peers).await;
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
        while let Some(t) = server.poll_transmit() {
            // Awaited, not tried: a relay socket's writability is unknown to tokio until its
            // first send, and a UDP send waits only while the kernel's buffer is full.
            let sent = if t.source == local {
                socket.send_to(&t.data, t.destination).await
            } else if let Some(r) = relays.get(&t.source) {
                r.socket.send_to(&t.data, t.destination).await
            } else {
                continue;
            };
            if let Err(e) = sent {
                tracing::debug!("TURN send to {}: {e}", t.destination);
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Open a relay socket on `ip` (a port the OS picks) and start reading it into `to_server`.
async fn open_relay(ip: IpAddr, to_server: &mpsc::Sender<(SocketAddr, SocketAddr, Vec<u8>)>) -> Option<(SocketAddr, Relay)> {
    let socket = match UdpSocket::bind(SocketAddr::new(ip, 0)).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::warn!("TURN relay on {ip}: {e}");
            return None;
        }
    };
    let addr = socket.local_addr().ok()?;
    let reader_socket = socket.clone();
    let to_server = to_server.clone();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match reader_socket.recv_from(&mut buf).await {
                Ok((n, source)) => {
                    if to_server.send((addr, source, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::debug!("TURN relay {addr} receive: {e}"),
            }
        }
    });
    Some((addr, Relay { socket, reader }))
}

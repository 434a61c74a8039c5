//! ICE over TCP to the SFU: a media worker's TCP listener (a passive candidate, RFC 6544) and its
//! connections, each carrying RFC 4571 frames (a 16-bit length, then one STUN, DTLS or SRTP
//! packet). It is the TCP twin of `udp::MediaSocket`: the core sees frames as it sees datagrams,
//! with [`sfu::Transport::Tcp`].
//!
//! Each connection is two tasks on the worker's own thread: a reader that hands whole frames to
//! the worker (waiting when the worker is behind, so TCP's flow control pushes back on the
//! client), and a writer that sends what the core transmits to that connection's address. A
//! connection that sends nothing for [`IDLE`] is closed; nothing but frames is ever read.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::error::Error;
use crate::net::Advertised;

/// A connection that sends nothing this long is closed (ICE consent checks come every few
/// seconds on a connection in use).
const IDLE: Duration = Duration::from_secs(30);
/// Connections per worker; more are closed at once.
const MAX_CONNECTIONS: usize = 1024;
/// Frames from all connections waiting for the worker.
const INBOUND_QUEUE: usize = 1024;
/// Packets waiting to be written to one connection; beyond this they are dropped, as a full UDP
/// buffer drops datagrams (the subscriber's congestion control sees the loss).
const OUTBOUND_QUEUE: usize = 512;

/// What the connections tell the worker.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A frame from `source`, received on the local candidate `destination`.
    Frame { source: SocketAddr, destination: SocketAddr, data: Vec<u8> },
    /// The connection from this address is gone.
    Closed(SocketAddr),
}

/// A worker's ICE-TCP listener and its open connections.
pub(crate) struct IceTcp {
    listener: TcpListener,
    advertised: Advertised,
    connections: FxHashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    inbound: mpsc::Sender<Inbound>,
    /// Frames not written because the connection was gone or behind.
    pub(crate) send_dropped: u64,
}

impl IceTcp {
    /// Listen on `addr` (inside a tokio runtime); the frames of every connection come out of the
    /// returned receiver.
    pub(crate) fn bind(addr: SocketAddr, advertised: Advertised) -> Result<(IceTcp, mpsc::Receiver<Inbound>), Error> {
        let bind_err = |source| Error::Bind { what: "TCP (ICE-TCP media)", addr, source };
        let domain = socket2::Domain::for_address(addr);
        let sock = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP)).map_err(bind_err)?;
        if addr.is_ipv6() {
            let _ = sock.set_only_v6(false);
        }
        // A restarted server must not wait for the old connections' TIME_WAIT.
        sock.set_reuse_address(true).map_err(bind_err)?;
        sock.bind(&addr.into()).map_err(bind_err)?;
        sock.listen(1024).map_err(bind_err)?;
        sock.set_nonblocking(true).map_err(bind_err)?;
        let listener = TcpListener::from_std(sock.into())?;
        let (inbound, rx) = mpsc::channel(INBOUND_QUEUE);
        Ok((IceTcp { listener, advertised, connections: FxHashMap::default(), inbound, send_dropped: 0 }, rx))
    }

    /// The next connection.
    pub(crate) async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.listener.accept().await
    }

    /// Take a new connection: start its reader and writer.
    pub(crate) fn add(&mut self, stream: TcpStream, peer: SocketAddr) {
        let source = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        if self.connections.len() >= MAX_CONNECTIONS {
            tracing::debug!(%source, "ICE-TCP: too many connections, closing this one");
            return;
        }
        let local = stream.local_addr().ok().map(|a| a.ip());
        let destination = self.advertised.destination(source, local);
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        // A new connection from the same address (after a close we have not seen yet) wins.
        self.connections.insert(source, tx);
        tokio::spawn(read_frames(read, source, destination, self.inbound.clone()));
        tokio::spawn(write_frames(write, rx));
    }

    /// Forget a closed connection (its writer stops).
    pub(crate) fn closed(&mut self, source: SocketAddr) {
        self.connections.remove(&source);
    }

    /// Send one packet as a frame on the connection from `t.destination` (the packet moves to
    /// the writer as it is; the writer adds the length prefix).
    pub(crate) fn send(&mut self, t: sfu::Transmit) {
        let sent = match self.connections.get(&t.destination) {
            Some(connection) if u16::try_from(t.contents.len()).is_ok() => connection.try_send(t.contents).is_ok(),
            _ => false,
        };
        if !sent {
            self.send_dropped += 1;
        }
    }
}

/// Read frames until the connection ends, fails, sends garbage it cannot frame, or idles.
async fn read_frames(read: OwnedReadHalf, source: SocketAddr, destination: SocketAddr, inbound: mpsc::Sender<Inbound>) {
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    loop {
        let len = match tokio::time::timeout(IDLE, reader.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => break,
        };
        let mut data = vec![0; len];
        if !matches!(tokio::time::timeout(IDLE, reader.read_exact(&mut data)).await, Ok(Ok(_))) {
            break;
        }
        if len == 0 {
            continue;
        }
        if inbound.send(Inbound::Frame { source, destination, data }).await.is_err() {
            return;
        }
    }
    tracing::trace!(%source, "ICE-TCP connection closed");
    let _ = inbound.send(Inbound::Closed(source)).await;
}

/// Write packets as they come, each behind its 16-bit length (checked by `IceTcp::send`),
/// flushing when none is waiting; stop when the connection fails or is forgotten.
async fn write_frames(write: OwnedWriteHalf, mut packets: mpsc::Receiver<Vec<u8>>) {
    let mut writer = BufWriter::with_capacity(64 * 1024, write);
    while let Some(mut packet) = packets.recv().await {
        loop {
            let len = (packet.len() as u16).to_be_bytes();
            if writer.write_all(&len).await.is_err() || writer.write_all(&packet).await.is_err() {
                return;
            }
            match packets.try_recv() {
                Ok(next) => packet = next,
                Err(_) => break,
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

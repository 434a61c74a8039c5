//! A media worker's UDP socket: batched receive (recvmmsg, GRO) with the destination address of
//! every datagram (IP_PKTINFO), via quinn-udp, which is made for exactly this.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::error::Error;
use crate::net::Advertised;

/// Datagrams read per receive call.
const BATCH: usize = 32;
/// Room for a GRO batch of coalesced datagrams.
const BUF: usize = 64 * 1024;
/// Kernel socket buffers: a burst of video for many subscribers must not overflow them.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// Counters of the socket.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SocketStats {
    /// Datagrams not sent because the kernel's buffer was full or the send failed.
    pub(crate) send_dropped: u64,
}

pub(crate) struct MediaSocket {
    socket: UdpSocket,
    state: UdpSocketState,
    bufs: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
    pub(crate) advertised: Advertised,
    pub(crate) stats: SocketStats,
}

impl MediaSocket {
    /// Bind `addr` (inside a tokio runtime).
    pub(crate) fn bind(addr: SocketAddr, public: &[std::net::IpAddr]) -> Result<MediaSocket, Error> {
        let bind_err = |source| Error::Bind { what: "UDP (media)", addr, source };
        let domain = socket2::Domain::for_address(addr);
        let sock = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP)).map_err(bind_err)?;
        if addr.is_ipv6() {
            // Dual-stack when bound to [::].
            let _ = sock.set_only_v6(false);
        }
        sock.bind(&addr.into()).map_err(bind_err)?;
        sock.set_nonblocking(true).map_err(bind_err)?;
        let std_sock: std::net::UdpSocket = sock.into();
        let state = UdpSocketState::new((&std_sock).into())?;
        // Best effort: the kernel caps these at net.core.[rw]mem_max.
        let _ = state.set_recv_buffer_size((&std_sock).into(), SOCKET_BUFFER);
        let _ = state.set_send_buffer_size((&std_sock).into(), SOCKET_BUFFER);
        let socket = UdpSocket::from_std(std_sock)?;
        let port = socket.local_addr()?.port();
        Ok(MediaSocket {
            socket,
            state,
            bufs: (0..BATCH).map(|_| vec![0; BUF]).collect(),
            meta: vec![RecvMeta::default(); BATCH],
            advertised: Advertised::new(addr.ip(), port, public),
            stats: SocketStats::default(),
        })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Read what is waiting (one batch), calling `f(source, destination, datagram)` for each
    /// datagram; returns how many were read (0 when nothing was waiting).
    pub(crate) fn recv(&mut self, mut f: impl FnMut(SocketAddr, SocketAddr, &[u8])) -> io::Result<usize> {
        let MediaSocket { socket, state, bufs, meta, advertised, .. } = self;
        // An array on the stack: no allocation per batch.
        let mut free = bufs.iter_mut();
        let mut slices: [IoSliceMut<'_>; BATCH] =
            std::array::from_fn(|_| IoSliceMut::new(free.next().map_or(&mut [][..], |b| &mut b[..])));
        let n = match socket.try_io(Interest::READABLE, || state.recv((&*socket).into(), &mut slices, meta)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut count = 0;
        for (m, buf) in meta.iter().zip(slices.iter()).take(n) {
            let source = SocketAddr::new(m.addr.ip().to_canonical(), m.addr.port());
            let destination = advertised.destination(source, m.dst_ip);
            let stride = m.stride.max(1);
            for datagram in buf[..m.len].chunks(stride) {
                f(source, destination, datagram);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Send one datagram; a full kernel buffer drops it (and counts it), as a router would.
    pub(crate) fn send(&mut self, t: &sfu::Transmit) {
        let transmit = Transmit {
            destination: t.destination,
            ecn: None,
            contents: &t.contents,
            segment_size: None,
            src_ip: self.advertised.send_from(t.source),
        };
        let MediaSocket { socket, state, stats, .. } = self;
        if socket.try_io(Interest::WRITABLE, || state.try_send((&*socket).into(), &transmit)).is_err() {
            stats.send_dropped += 1;
        }
    }
}

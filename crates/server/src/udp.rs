//! A media worker's UDP socket: batched receive (recvmmsg, GRO) with the destination address of
//! every datagram (IP_PKTINFO), via quinn-udp, which is made for exactly this; batched send
//! (sendmmsg, each datagram with its source address) on Linux, where quinn-udp sends one
//! datagram per call (its GSO batches only same-size datagrams to one destination, and an SFU's
//! go to many).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
use quinn_udp::Transmit;
use quinn_udp::{RecvMeta, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::error::Error;
use crate::net::Advertised;

/// Datagrams read per receive call, and sent per send call.
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
    /// Datagrams waiting for [`MediaSocket::flush`].
    out: Vec<sfu::Transmit>,
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
            out: Vec::with_capacity(BATCH),
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

    /// Send a datagram: queued, and sent with the others at the next [`MediaSocket::flush`] (or
    /// when a batch is full). A full kernel buffer drops it (and counts it), as a router would.
    pub(crate) fn send(&mut self, t: sfu::Transmit) {
        self.out.push(t);
        if self.out.len() >= BATCH {
            self.flush();
        }
    }

    /// Send what [`MediaSocket::send`] queued.
    pub(crate) fn flush(&mut self) {
        let mut out = std::mem::take(&mut self.out);
        let mut sent = 0;
        while sent < out.len() {
            match self.send_batch(&out[sent..out.len().min(sent + BATCH)]) {
                Ok(n) => sent += n.max(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The kernel's buffer is full: the rest is dropped.
                    self.stats.send_dropped += (out.len() - sent) as u64;
                    break;
                }
                Err(_) => {
                    // The first datagram of the batch could not be sent (e.g. no route to its
                    // destination): drop it, go on with the rest.
                    self.stats.send_dropped += 1;
                    sent += 1;
                }
            }
        }
        out.clear();
        self.out = out;
    }

    /// Send the datagrams of `batch` in one sendmmsg call: returns how many the kernel took.
    /// The one place of the project with unsafe code: libc's sendmmsg, and the control message
    /// of each datagram's source address (as quinn-udp writes it for one datagram).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[allow(unsafe_code)]
    fn send_batch(&mut self, batch: &[sfu::Transmit]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        let MediaSocket { socket, advertised, .. } = self;
        let n = batch.len().min(BATCH);
        let mut names: [std::mem::MaybeUninit<socket2::SockAddr>; BATCH] = [const { std::mem::MaybeUninit::uninit() }; BATCH];
        let mut iovs: [libc::iovec; BATCH] = [libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 }; BATCH];
        let mut controls = [Control([0; CONTROL_WORDS]); BATCH];
        // SAFETY: all-zero is a valid mmsghdr (null pointers, zero lengths).
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, t) in batch.iter().take(n).enumerate() {
            let name = names[i].write(socket2::SockAddr::from(t.destination));
            iovs[i] = libc::iovec { iov_base: t.contents.as_ptr() as *mut libc::c_void, iov_len: t.contents.len() };
            let hdr = &mut msgs[i].msg_hdr;
            // sendmmsg only reads through these pointers.
            hdr.msg_name = name.as_ptr() as *mut libc::c_void;
            hdr.msg_namelen = name.len();
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            if let Some(src) = advertised.send_from(t.source) {
                controls[i].source(hdr, src);
            }
        }
        let fd = socket.as_raw_fd();
        let result = socket.try_io(Interest::WRITABLE, || {
            // SAFETY: `msgs[..n]` point into `names`, `iovs`, `controls` and the datagrams of
            // `batch`, all alive and unmoved until this call returns.
            let sent = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), n as libc::c_uint, 0) };
            if sent < 0 { Err(io::Error::last_os_error()) } else { Ok(sent as usize) }
        });
        for name in names.iter_mut().take(n) {
            // SAFETY: the first `n` were written above.
            unsafe { name.assume_init_drop() };
        }
        result
    }

    /// One datagram per call where sendmmsg is not available.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn send_batch(&mut self, batch: &[sfu::Transmit]) -> io::Result<usize> {
        let Some(t) = batch.first() else { return Ok(0) };
        let transmit = Transmit {
            destination: t.destination,
            ecn: None,
            contents: &t.contents,
            segment_size: None,
            src_ip: self.advertised.send_from(t.source),
        };
        let MediaSocket { socket, state, .. } = self;
        socket.try_io(Interest::WRITABLE, || state.try_send((&*socket).into(), &transmit)).map(|()| 1)
    }
}

/// Room for one control message of a datagram's source address (`in6_pktinfo`, the larger).
#[cfg(any(target_os = "linux", target_os = "android"))]
const CONTROL_WORDS: usize = 8;

/// A datagram's control buffer, aligned as `cmsghdr` needs.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[derive(Clone, Copy)]
struct Control([u64; CONTROL_WORDS]);

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Control {
    /// Make `hdr` send from `src` (IP_PKTINFO / IPV6_PKTINFO), with this buffer as its control.
    #[allow(unsafe_code)]
    fn source(&mut self, hdr: &mut libc::msghdr, src: std::net::IpAddr) {
        fn put<T>(buf: &mut Control, hdr: &mut libc::msghdr, level: libc::c_int, kind: libc::c_int, value: T) {
            let size = std::mem::size_of::<T>() as libc::c_uint;
            // SAFETY: CMSG_SPACE of either pktinfo fits in the buffer (checked below), which is
            // aligned for cmsghdr; CMSG_FIRSTHDR is then non-null and CMSG_DATA points inside it.
            unsafe {
                debug_assert!(libc::CMSG_SPACE(size) as usize <= std::mem::size_of::<Control>());
                hdr.msg_control = buf.0.as_mut_ptr() as *mut libc::c_void;
                hdr.msg_controllen = libc::CMSG_SPACE(size) as _;
                let cmsg = libc::CMSG_FIRSTHDR(hdr);
                (*cmsg).cmsg_level = level;
                (*cmsg).cmsg_type = kind;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut T, value);
            }
        }
        match src {
            std::net::IpAddr::V4(v4) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr { s_addr: u32::from_ne_bytes(v4.octets()) },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                put(self, hdr, libc::IPPROTO_IP, libc::IP_PKTINFO, info);
            }
            std::net::IpAddr::V6(v6) => {
                let info = libc::in6_pktinfo { ipi6_addr: libc::in6_addr { s6_addr: v6.octets() }, ipi6_ifindex: 0 };
                put(self, hdr, libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, info);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A media socket on loopback, its address, and a plain socket to send to.
    async fn pair() -> (MediaSocket, SocketAddr, std::net::UdpSocket) {
        let socket = MediaSocket::bind("127.0.0.1:0".parse().unwrap(), &[]).unwrap();
        let local = socket.local_addr().unwrap();
        // Sends need the reactor to have seen the socket writable (as it has, in a worker).
        socket.socket.writable().await.unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        (socket, local, peer)
    }

    /// More datagrams than a batch, of different sizes, from the socket's own address: all
    /// arrive, in order, whole, and from that address.
    #[tokio::test]
    async fn a_flush_sends_every_queued_datagram_in_order() {
        let (mut socket, local, peer) = pair().await;
        let count = BATCH * 2 + 5;
        for i in 0..count {
            let contents = vec![i as u8; 20 + i * 13];
            socket.send(sfu::Transmit { transport: sfu::Transport::Udp, source: local, destination: peer.local_addr().unwrap(), contents });
        }
        socket.flush();
        assert_eq!(socket.stats.send_dropped, 0);
        let mut buf = [0u8; 2048];
        for i in 0..count {
            let (len, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(from, local);
            assert_eq!(&buf[..len], &vec![i as u8; 20 + i * 13][..], "datagram {i}");
        }
    }

    /// A datagram that cannot be sent is dropped and counted; the rest of its batch still goes.
    #[tokio::test]
    async fn an_unsendable_datagram_is_counted_and_the_rest_go() {
        let (mut socket, local, peer) = pair().await;
        let to = |destination| sfu::Transmit { transport: sfu::Transport::Udp, source: local, destination, contents: vec![7; 100] };
        socket.send(to(peer.local_addr().unwrap()));
        // An IPv6 destination from an IPv4 socket: refused by the kernel.
        socket.send(to("[::1]:9".parse().unwrap()));
        socket.send(to(peer.local_addr().unwrap()));
        socket.flush();
        assert_eq!(socket.stats.send_dropped, 1);
        let mut buf = [0u8; 2048];
        for _ in 0..2 {
            assert_eq!(peer.recv_from(&mut buf).unwrap().0, 100);
        }
    }
}

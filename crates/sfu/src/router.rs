//! Which participant an incoming datagram belongs to, in O(1).
//!
//! STUN binding requests are routed by the ICE username: its first half is the local username
//! fragment the SFU gave that participant. Everything else (DTLS, SRTP, SRTCP) is routed by source
//! address, learned from the participant's own ICE agent: an address joins the map when the
//! participant's `Rtc` transmits to it, which str0m does only after a STUN request from that
//! address passed its integrity check. A forged packet can therefore never claim an address.
//! Addresses of ICE-TCP connections have a map of their own: a TCP peer's address says nothing of
//! the UDP peer that may have the same one.

use std::net::SocketAddr;

use rustc_hash::FxHashMap;

use crate::Pix;
use crate::api::Transport;

/// Address and username-fragment maps to participant slots.
#[derive(Debug, Default)]
pub(crate) struct Router {
    by_addr: FxHashMap<SocketAddr, Pix>,
    by_tcp_addr: FxHashMap<SocketAddr, Pix>,
    by_ufrag: FxHashMap<String, Pix>,
}

impl Router {
    /// The participant a datagram from `source` with `contents` belongs to.
    pub(crate) fn route(&self, transport: Transport, source: SocketAddr, contents: &[u8]) -> Option<Pix> {
        if let Some(ufrag) = stun_local_ufrag(contents) {
            return self.by_ufrag.get(ufrag).copied();
        }
        self.addrs(transport).get(&source).copied()
    }

    fn addrs(&self, transport: Transport) -> &FxHashMap<SocketAddr, Pix> {
        match transport {
            Transport::Udp => &self.by_addr,
            Transport::Tcp => &self.by_tcp_addr,
        }
    }

    fn addrs_mut(&mut self, transport: Transport) -> &mut FxHashMap<SocketAddr, Pix> {
        match transport {
            Transport::Udp => &mut self.by_addr,
            Transport::Tcp => &mut self.by_tcp_addr,
        }
    }

    pub(crate) fn add_ufrag(&mut self, ufrag: String, pix: Pix) {
        self.by_ufrag.insert(ufrag, pix);
    }

    pub(crate) fn remove_ufrag(&mut self, ufrag: &str, pix: Pix) {
        if self.by_ufrag.get(ufrag) == Some(&pix) {
            self.by_ufrag.remove(ufrag);
        }
    }

    /// Route `addr` to `pix`; true if that is new.
    pub(crate) fn learn_addr(&mut self, transport: Transport, addr: SocketAddr, pix: Pix) -> bool {
        self.addrs_mut(transport).insert(addr, pix) != Some(pix)
    }

    pub(crate) fn remove_addr(&mut self, transport: Transport, addr: SocketAddr, pix: Pix) {
        let addrs = self.addrs_mut(transport);
        if addrs.get(&addr) == Some(&pix) {
            addrs.remove(&addr);
        }
    }
}

const STUN_HEADER: usize = 20;
const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// The local username fragment of a STUN message (the part of USERNAME before the colon), if
/// `contents` is a STUN message that carries one.
pub fn stun_local_ufrag(contents: &[u8]) -> Option<&str> {
    // RFC 7983 demultiplexing: STUN starts with 0 or 1; RFC 8489: the magic cookie.
    if contents.len() < STUN_HEADER || contents[0] > 1 || contents[4..8] != STUN_MAGIC {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([contents[2], contents[3]]));
    let end = STUN_HEADER.checked_add(declared)?.min(contents.len());
    let mut i = STUN_HEADER;
    while i + 4 <= end {
        let typ = u16::from_be_bytes([contents[i], contents[i + 1]]);
        let len = usize::from(u16::from_be_bytes([contents[i + 2], contents[i + 3]]));
        let value = contents.get(i + 4..i + 4 + len)?;
        if typ == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        i += 4 + len.next_multiple_of(4);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use Transport::{Tcp, Udp};

    fn stun_with_username(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, to check we skip attributes.
        attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attrs.extend_from_slice(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&STUN_MAGIC);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn extracts_the_local_ufrag() {
        assert_eq!(stun_local_ufrag(&stun_with_username("srv1:cli2")), Some("srv1"));
        assert_eq!(stun_local_ufrag(&stun_with_username("abc")), Some("abc"));
    }

    #[test]
    fn rejects_what_is_not_stun_with_a_username() {
        let good = stun_with_username("srv1:cli2");
        assert_eq!(stun_local_ufrag(&good[..20]), None);
        assert_eq!(stun_local_ufrag(&good[..30]), None, "truncated attribute");
        let mut no_magic = good.clone();
        no_magic[4] = 0;
        assert_eq!(stun_local_ufrag(&no_magic), None);
        let mut rtp = good.clone();
        rtp[0] = 0x80;
        assert_eq!(stun_local_ufrag(&rtp), None);
        assert_eq!(stun_local_ufrag(&[]), None);
        // Declared length beyond the datagram, and a zero-length username.
        let mut long = stun_with_username("a:b");
        long[2] = 0xff;
        assert_eq!(stun_local_ufrag(&long), Some("a"));
        assert_eq!(stun_local_ufrag(&stun_with_username("")), Some(""));
    }

    #[test]
    fn routes_stun_by_ufrag_and_the_rest_by_address() {
        let mut r = Router::default();
        let a: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:5000".parse().unwrap();
        r.add_ufrag("srv1".into(), Pix(1));
        assert_eq!(r.route(Udp, b, &stun_with_username("srv1:x")), Some(Pix(1)));
        assert_eq!(r.route(Udp, b, &stun_with_username("other:x")), None);
        assert_eq!(r.route(Udp, a, &[0x80, 0x60, 0, 1]), None);
        assert!(r.learn_addr(Udp, a, Pix(1)));
        assert!(!r.learn_addr(Udp, a, Pix(1)));
        assert_eq!(r.route(Udp, a, &[0x80, 0x60, 0, 1]), Some(Pix(1)));
        // Removal only applies to the current owner.
        r.remove_addr(Udp, a, Pix(2));
        assert_eq!(r.route(Udp, a, &[0x80]), Some(Pix(1)));
        r.remove_addr(Udp, a, Pix(1));
        r.remove_ufrag("srv1", Pix(1));
        assert_eq!(r.route(Udp, a, &[0x80]), None);
        assert_eq!(r.route(Udp, b, &stun_with_username("srv1:x")), None);
    }

    #[test]
    fn tcp_and_udp_addresses_are_routed_apart() {
        let mut r = Router::default();
        let a: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        assert!(r.learn_addr(Tcp, a, Pix(1)));
        assert_eq!(r.route(Tcp, a, &[0x80]), Some(Pix(1)));
        // The same address over UDP is somebody else (or nobody).
        assert_eq!(r.route(Udp, a, &[0x80]), None);
        assert!(r.learn_addr(Udp, a, Pix(2)));
        assert_eq!(r.route(Udp, a, &[0x80]), Some(Pix(2)));
        assert_eq!(r.route(Tcp, a, &[0x80]), Some(Pix(1)));
        // STUN goes by its username whatever the transport.
        r.add_ufrag("srv3".into(), Pix(3));
        assert_eq!(r.route(Tcp, a, &stun_with_username("srv3:x")), Some(Pix(3)));
        r.remove_addr(Tcp, a, Pix(1));
        assert_eq!(r.route(Tcp, a, &[0x80]), None);
        assert_eq!(r.route(Udp, a, &[0x80]), Some(Pix(2)));
    }
}

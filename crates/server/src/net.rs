//! Which addresses confab advertises to peers, and how a received datagram's destination maps to
//! one of them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The addresses of a media socket as peers see them.
#[derive(Debug, Clone)]
pub(crate) struct Advertised {
    /// The IPs in ICE candidates, best first.
    pub(crate) ips: Vec<IpAddr>,
    /// The port (the socket's own).
    pub(crate) port: u16,
    /// Whether the IPs were configured (`--public-ip`): then they are not local addresses, and a
    /// datagram's real destination is translated to them.
    pub(crate) translated: bool,
}

impl Advertised {
    /// What a socket bound to `bind` (with actual port `port`) advertises.
    pub(crate) fn new(bind: IpAddr, port: u16, public: &[IpAddr]) -> Advertised {
        if !public.is_empty() {
            return Advertised { ips: public.to_vec(), port, translated: true };
        }
        let ips = if bind.is_unspecified() { local_ips(bind.is_ipv6()) } else { vec![bind] };
        Advertised { ips, port, translated: false }
    }

    /// The candidate addresses.
    pub(crate) fn candidates(&self) -> Vec<SocketAddr> {
        self.ips.iter().map(|ip| SocketAddr::new(*ip, self.port)).collect()
    }

    /// The candidate address a datagram from `source`, received on local IP `dst_ip` (when the
    /// kernel told it), was sent to.
    pub(crate) fn destination(&self, source: SocketAddr, dst_ip: Option<IpAddr>) -> SocketAddr {
        let ip = match dst_ip.map(|ip| ip.to_canonical()) {
            Some(ip) if !self.translated => ip,
            _ => self
                .ips
                .iter()
                .copied()
                .find(|ip| ip.is_ipv4() == source.ip().to_canonical().is_ipv4())
                .or_else(|| self.ips.first().copied())
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        };
        SocketAddr::new(ip, self.port)
    }

    /// The local IP to send from for a datagram the SFU sends from candidate `source`; `None`
    /// when the kernel should choose (translated addresses are not local).
    pub(crate) fn send_from(&self, source: SocketAddr) -> Option<IpAddr> {
        (!self.translated).then_some(source.ip())
    }
}

/// The IP addresses of the machine's interfaces that peers can use: no link-local, no
/// multicast; IPv6 only for an IPv6 socket. Loopback comes last, and is kept so that a browser
/// on this machine can connect.
pub(crate) fn local_ips(ipv6: bool) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| usable(*ip) && (ip.is_ipv4() || ipv6))
        .collect();
    ips.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    ips.dedup();
    if ips.is_empty() {
        ips.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    ips
}

fn usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_link_local() && !v4.is_multicast() && !v4.is_unspecified() && !v4.is_broadcast(),
        IpAddr::V6(v6) => !is_v6_link_local(v6) && !v6.is_multicast() && !v6.is_unspecified(),
    }
}

fn is_v6_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_bind_address_is_advertised_as_is() {
        let a = Advertised::new("127.0.0.1".parse().unwrap(), 7881, &[]);
        assert_eq!(a.candidates(), vec!["127.0.0.1:7881".parse::<SocketAddr>().unwrap()]);
        let src = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(a.destination(src, Some("127.0.0.1".parse().unwrap())), "127.0.0.1:7881".parse().unwrap());
        assert_eq!(a.send_from("127.0.0.1:7881".parse().unwrap()), Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn public_ips_translate_the_destination() {
        let public: Vec<IpAddr> = vec!["203.0.113.7".parse().unwrap(), "2001:db8::7".parse().unwrap()];
        let a = Advertised::new("0.0.0.0".parse().unwrap(), 7881, &public);
        assert!(a.translated);
        let v4src = "198.51.100.2:5000".parse().unwrap();
        let v6src = "[2001:db8::9]:5000".parse().unwrap();
        let private = Some("10.0.0.5".parse().unwrap());
        assert_eq!(a.destination(v4src, private), "203.0.113.7:7881".parse().unwrap());
        assert_eq!(a.destination(v6src, None), "[2001:db8::7]:7881".parse().unwrap());
        assert_eq!(a.send_from("203.0.113.7:7881".parse().unwrap()), None);
    }

    #[test]
    fn an_unspecified_bind_advertises_local_interfaces_with_loopback_last() {
        let a = Advertised::new("0.0.0.0".parse().unwrap(), 7881, &[]);
        assert!(!a.ips.is_empty());
        assert!(a.ips.iter().all(|ip| ip.is_ipv4() && usable(*ip)));
        assert!(a.ips.iter().any(|ip| ip.is_loopback()), "loopback is kept for one-machine demos");
        let first_loopback = a.ips.iter().position(|ip| ip.is_loopback()).unwrap();
        assert!(a.ips[first_loopback..].iter().all(|ip| ip.is_loopback()));
        // IPv4-mapped destinations (dual-stack sockets) come out as IPv4.
        let src = "127.0.0.1:5000".parse().unwrap();
        let mapped = Some("::ffff:127.0.0.1".parse().unwrap());
        assert_eq!(a.destination(src, mapped), "127.0.0.1:7881".parse().unwrap());
    }
}

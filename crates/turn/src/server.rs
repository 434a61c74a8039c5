//! The server's state machine: packets in, packets and events out. No sockets and no clock: the
//! caller passes in each packet with the time, sends what [`Server::poll_transmit`] returns,
//! opens and closes relay sockets when [`Server::poll_event`] says so, and calls
//! [`Server::handle_timeout`] when [`Server::poll_timeout`] says.
//!
//! - STUN Binding (RFC 8489 §6.3) over any transport: XOR-MAPPED-ADDRESS, FINGERPRINT when the
//!   request had one, 420 with UNKNOWN-ATTRIBUTES for a comprehension-required attribute it does
//!   not know, 400 for a request it cannot parse; what is not STUN is not answered.
//! - TURN (RFC 8656) with long-term credentials: Allocate (UDP relays), Refresh,
//!   CreatePermission, ChannelBind, Send and Data indications, ChannelData; lifetimes,
//!   permission (300 s) and channel (600 s) timeouts; quotas (allocations in all and per user,
//!   bandwidth per allocation); peers on internal networks refused unless allowed.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::auth::{Credentials, Refusal};
use crate::message::{Class, Header, Message, MessageBuilder, Method, attr};
use crate::policy::{Cidr, is_restricted};
use crate::Error;

/// The transport a packet came over (and its answer goes back over).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (one STUN message or ChannelData frame at a time, cut out of the stream by the caller).
    Tcp,
    /// TLS over TCP.
    Tls,
}

/// A packet the server received: from a client on a listening address, or from a peer on a
/// relay address.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// How it came.
    pub transport: Transport,
    /// The sender.
    pub source: SocketAddr,
    /// The server's address it was sent to (a listening or a relay address).
    pub destination: SocketAddr,
    /// The bytes.
    pub data: &'a [u8],
}

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Over which transport (for TCP and TLS: the connection of `destination`).
    pub transport: Transport,
    /// The server's address to send from: a listening address, or a relay address (to a peer).
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes.
    pub data: Vec<u8>,
}

/// What the caller must do for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Open a UDP relay socket on `ip` (a port of the relay range) and report it with
    /// [`Server::relay_opened`].
    OpenRelay {
        /// The allocation it is for.
        id: u64,
        /// The address to bind.
        ip: IpAddr,
        /// The client asked for an even port (EVEN-PORT, for RTP); the next port is not
        /// reserved (RFC 8656 §7.2 makes that a SHOULD).
        even: bool,
    },
    /// Close the relay socket at `relay`: its allocation ended.
    CloseRelay {
        /// The relay address.
        relay: SocketAddr,
    },
}

/// What the server did, for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Binding requests answered with success.
    pub bindings: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Packets dropped: not STUN, malformed non-requests, responses, data with no permission.
    pub dropped: u64,
    /// Allocations made.
    pub allocations: u64,
    /// Packets relayed, in both directions.
    pub relayed: u64,
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Who may allocate.
    pub credentials: Credentials,
    /// The address relays are opened on.
    pub relay_ip: IpAddr,
    /// The address clients are told their relays are at, when it differs from `relay_ip`
    /// (a server behind a 1:1 NAT): XOR-RELAYED-ADDRESS carries it with the relay's port.
    pub relay_public_ip: Option<IpAddr>,
    /// The most an allocation relays, in bits per second, both directions together; what is
    /// over is dropped. `None`: no limit.
    pub max_relay_bps: Option<u64>,
    /// Networks a relay may reach although they are internal (loopback, private...).
    pub allow_peers: Vec<Cidr>,
    /// Allocations at most, in all.
    pub max_allocations: usize,
    /// Allocations at most per username.
    pub max_allocations_per_user: usize,
    /// An instant and the Unix time (seconds) at it: REST usernames and nonces carry Unix times.
    pub epoch: (Instant, u64),
}

/// The name the server gives in SOFTWARE.
const SOFTWARE: &str = concat!("confab ", env!("CARGO_PKG_VERSION"));
/// An allocation's lifetime when the client asks for none (RFC 8656 §3.2).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// The longest lifetime granted.
const MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// A permission's lifetime (RFC 8656 §9).
const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// A channel binding's lifetime (RFC 8656 §12).
const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// REQUESTED-TRANSPORT's protocol number for UDP.
const UDP: u8 = 17;

/// A client's 5-tuple: transport, its address, the server's.
type FiveTuple = (Transport, SocketAddr, SocketAddr);

#[derive(Debug)]
struct Allocation {
    client: FiveTuple,
    user: String,
    key: [u8; 16],
    relay: Option<SocketAddr>,
    /// The Allocate request waiting for its relay: transaction id, lifetime, whether it had a
    /// FINGERPRINT.
    pending: Option<([u8; 12], Duration, bool)>,
    expires: Instant,
    permissions: HashMap<IpAddr, Instant>,
    /// (number, peer, expiry)
    channels: Vec<(u16, SocketAddr, Instant)>,
    /// The bandwidth limit's bucket: bytes that may still pass, and when it was filled.
    budget: (f64, Instant),
}

/// A STUN/TURN server. Drive it with [`Server::handle_packet`] and [`Server::handle_timeout`];
/// drain [`Server::poll_transmit`] and [`Server::poll_event`] after each call.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    allocations: HashMap<u64, Allocation>,
    by_client: HashMap<FiveTuple, u64>,
    by_relay: HashMap<SocketAddr, u64>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Server {
    /// A server with no allocations.
    pub fn new(config: ServerConfig) -> Server {
        Server {
            config,
            allocations: HashMap::new(),
            by_client: HashMap::new(),
            by_relay: HashMap::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Take in one packet received at `now`. Never panics, whatever the bytes.
    pub fn handle_packet(&mut self, now: Instant, packet: Packet<'_>) {
        if let Some(&id) = self.by_relay.get(&packet.destination) {
            return self.from_peer(now, id, &packet);
        }
        if packet.data.first().is_some_and(|b| (0x40..=0x7f).contains(b)) {
            return self.channel_data(now, &packet);
        }
        let message = match Message::parse(packet.data) {
            Ok(m) => m,
            Err(e) => return self.malformed(&packet, e),
        };
        match message.class {
            Class::Request => self.request(now, &packet, &message),
            Class::Indication if message.method == Method::SEND => self.send_indication(now, &packet, &message),
            // A Binding indication is a keepalive; responses are not for a server.
            _ => self.stats.dropped += 1,
        }
    }

    /// The relay socket for allocation `id` is open at `relay` (or could not be opened): the
    /// waiting Allocate request is answered.
    pub fn relay_opened(&mut self, now: Instant, id: u64, relay: Option<SocketAddr>) {
        let Some(a) = self.allocations.get_mut(&id) else {
            // Gone meanwhile: give the socket back.
            if let Some(relay) = relay {
                self.events.push_back(Event::CloseRelay { relay });
            }
            return;
        };
        let Some((tid, lifetime, fingerprint)) = a.pending.take() else { return };
        let (transport, client, server) = a.client;
        let key = a.key;
        let Some(relay) = relay else {
            self.remove(id);
            let mut b = MessageBuilder::new(Class::Error, Method::ALLOCATE, tid);
            b.error_code(508, "Insufficient Capacity");
            self.stats.errors += 1;
            return self.push(transport, server, client, b.build_with_integrity(&key, fingerprint));
        };
        a.relay = Some(relay);
        a.expires = now + lifetime;
        self.by_relay.insert(relay, id);
        self.stats.allocations += 1;
        let advertised = SocketAddr::new(self.config.relay_public_ip.unwrap_or(relay.ip()), relay.port());
        let mut b = MessageBuilder::new(Class::Success, Method::ALLOCATE, tid);
        b.xor_address(attr::XOR_RELAYED_ADDRESS, advertised)
            .attr(attr::LIFETIME, &(lifetime.as_secs() as u32).to_be_bytes())
            .xor_address(attr::XOR_MAPPED_ADDRESS, client)
            .attr(attr::SOFTWARE, SOFTWARE.as_bytes());
        self.push(transport, server, client, b.build_with_integrity(&key, fingerprint));
    }

    /// The client's TCP or TLS connection from `client` to `server` closed: its allocation ends
    /// with it (RFC 8656 §3.1).
    pub fn connection_closed(&mut self, transport: Transport, client: SocketAddr, server: SocketAddr) {
        if let Some(id) = self.by_client.get(&(transport, client, server)).copied() {
            self.remove(id);
        }
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing the caller must do.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Server::handle_timeout`] should be called next: the first allocation to expire.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.allocations.values().map(|a| a.expires).min()
    }

    /// Time moved on to `now`: expired allocations end (their relays close), expired
    /// permissions and channels go.
    pub fn handle_timeout(&mut self, now: Instant) {
        let expired: Vec<u64> = self.allocations.iter().filter(|(_, a)| a.expires <= now).map(|(id, _)| *id).collect();
        for id in expired {
            self.remove(id);
        }
        for a in self.allocations.values_mut() {
            a.permissions.retain(|_, t| *t > now);
            a.channels.retain(|(_, _, t)| *t > now);
        }
    }

    /// What the server did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Allocations now (including those waiting for their relay).
    pub fn allocation_count(&self) -> usize {
        self.allocations.len()
    }

    fn unix(&self, now: Instant) -> u64 {
        let (at, unix) = self.config.epoch;
        unix + now.saturating_duration_since(at).as_secs()
    }

    fn request(&mut self, now: Instant, packet: &Packet<'_>, m: &Message<'_>) {
        let unknown = m.unknown_required();
        if !unknown.is_empty() {
            let mut b = MessageBuilder::new(Class::Error, m.method, m.transaction_id);
            b.error_code(420, "Unknown Attribute").unknown_attributes(&unknown);
            return self.error(packet, m, b, None);
        }
        if m.method == Method::BINDING {
            let mut b = MessageBuilder::new(Class::Success, Method::BINDING, m.transaction_id);
            b.xor_address(attr::XOR_MAPPED_ADDRESS, packet.source).attr(attr::SOFTWARE, SOFTWARE.as_bytes());
            self.stats.bindings += 1;
            let data = if m.fingerprint { b.build_with_fingerprint() } else { b.build() };
            return self.push(packet.transport, packet.destination, packet.source, data);
        }
        if ![Method::ALLOCATE, Method::REFRESH, Method::CREATE_PERMISSION, Method::CHANNEL_BIND].contains(&m.method) {
            let mut b = MessageBuilder::new(Class::Error, m.method, m.transaction_id);
            b.error_code(400, "Bad Request: unknown method");
            return self.error(packet, m, b, None);
        }
        let unix = self.unix(now);
        let (user, key) = match self.config.credentials.check(m, unix) {
            Ok(ok) => ok,
            Err(refusal) => {
                let (code, reason) = match refusal {
                    Refusal::StaleNonce => (438, "Stale Nonce"),
                    Refusal::Missing | Refusal::Unauthorized => (401, "Unauthorized"),
                };
                let mut b = MessageBuilder::new(Class::Error, m.method, m.transaction_id);
                b.error_code(code, reason)
                    .attr(attr::REALM, self.config.credentials.realm.as_bytes())
                    .attr(attr::NONCE, self.config.credentials.nonce(unix).as_bytes());
                return self.error(packet, m, b, None);
            }
        };
        let tuple = (packet.transport, packet.source, packet.destination);
        let existing = self.by_client.get(&tuple).copied();
        if m.method == Method::ALLOCATE {
            return self.allocate(now, packet, m, existing, user, key);
        }
        if existing.is_some_and(|id| self.allocations.get(&id).is_some_and(|a| a.user != user)) {
            // Someone else's credentials on this 5-tuple (RFC 8656 §5).
            let mut b = MessageBuilder::new(Class::Error, m.method, m.transaction_id);
            b.error_code(441, "Wrong Credentials");
            return self.error(packet, m, b, Some(&key));
        }
        let Some(id) = existing.filter(|id| self.allocations.get(id).is_some_and(|a| a.relay.is_some())) else {
            let mut b = MessageBuilder::new(Class::Error, m.method, m.transaction_id);
            b.error_code(437, "Allocation Mismatch");
            return self.error(packet, m, b, Some(&key));
        };
        match m.method {
            Method::REFRESH => self.refresh(now, packet, m, id, key),
            Method::CREATE_PERMISSION => self.create_permission(now, packet, m, id, key),
            _ => self.channel_bind(now, packet, m, id, key),
        }
    }

    fn allocate(&mut self, now: Instant, packet: &Packet<'_>, m: &Message<'_>, existing: Option<u64>, user: String, key: [u8; 16]) {
        let refuse = |code: u16, reason: &str| {
            let mut b = MessageBuilder::new(Class::Error, Method::ALLOCATE, m.transaction_id);
            b.error_code(code, reason);
            b
        };
        if existing.is_some() {
            return self.error(packet, m, refuse(437, "Allocation Mismatch"), Some(&key));
        }
        match m.get(attr::REQUESTED_TRANSPORT) {
            None => return self.error(packet, m, refuse(400, "Bad Request: no REQUESTED-TRANSPORT"), Some(&key)),
            Some(v) if v.first() != Some(&UDP) => {
                return self.error(packet, m, refuse(442, "Unsupported Transport Protocol"), Some(&key));
            }
            Some(_) => {}
        }
        if m.get(attr::RESERVATION_TOKEN).is_some() {
            return self.error(packet, m, refuse(508, "Insufficient Capacity: no port reservations"), Some(&key));
        }
        let even = m.get(attr::EVEN_PORT).is_some();
        if self.allocations.values().filter(|a| a.user == user).count() >= self.config.max_allocations_per_user {
            return self.error(packet, m, refuse(486, "Allocation Quota Reached"), Some(&key));
        }
        if self.allocations.len() >= self.config.max_allocations {
            return self.error(packet, m, refuse(508, "Insufficient Capacity"), Some(&key));
        }
        let lifetime = requested_lifetime(m).unwrap_or(DEFAULT_LIFETIME).clamp(DEFAULT_LIFETIME, MAX_LIFETIME);
        let id = self.next_id;
        self.next_id += 1;
        let tuple = (packet.transport, packet.source, packet.destination);
        self.allocations.insert(id, Allocation {
            client: tuple,
            user,
            key,
            relay: None,
            pending: Some((m.transaction_id, lifetime, m.fingerprint)),
            // Until the relay opens; a relay that never does ends it.
            expires: now + Duration::from_secs(30),
            permissions: HashMap::new(),
            channels: Vec::new(),
            // Full: the first second's worth passes at once.
            budget: (f64::INFINITY, now),
        });
        self.by_client.insert(tuple, id);
        self.events.push_back(Event::OpenRelay { id, ip: self.config.relay_ip, even });
    }

    fn refresh(&mut self, now: Instant, packet: &Packet<'_>, m: &Message<'_>, id: u64, key: [u8; 16]) {
        let lifetime = requested_lifetime(m).unwrap_or(DEFAULT_LIFETIME).min(MAX_LIFETIME);
        if lifetime.is_zero() {
            self.remove(id);
        } else if let Some(a) = self.allocations.get_mut(&id) {
            a.expires = now + lifetime;
        }
        let mut b = MessageBuilder::new(Class::Success, Method::REFRESH, m.transaction_id);
        b.attr(attr::LIFETIME, &(lifetime.as_secs() as u32).to_be_bytes());
        self.success(packet, m, b, &key);
    }

    /// The peer addresses of a request (every XOR-PEER-ADDRESS), or the error to answer.
    fn peers(&self, m: &Message<'_>) -> Result<Vec<SocketAddr>, (u16, &'static str)> {
        let mut peers = Vec::new();
        for a in m.attrs.iter().filter(|a| a.kind == attr::XOR_PEER_ADDRESS) {
            let peer = crate::message::decode_xor_address(a.kind, a.value, &m.transaction_id)
                .map_err(|_| (400, "Bad Request: bad XOR-PEER-ADDRESS"))?;
            if !self.peer_allowed(peer.ip()) {
                return Err((403, "Forbidden: peer address not allowed"));
            }
            peers.push(peer);
        }
        if peers.is_empty() {
            return Err((400, "Bad Request: no XOR-PEER-ADDRESS"));
        }
        Ok(peers)
    }

    fn peer_allowed(&self, ip: IpAddr) -> bool {
        let own = ip == self.config.relay_ip || Some(ip) == self.config.relay_public_ip;
        self.config.allow_peers.iter().any(|c| c.contains(ip)) || (!is_restricted(ip) && !own)
    }

    fn create_permission(&mut self, now: Instant, packet: &Packet<'_>, m: &Message<'_>, id: u64, key: [u8; 16]) {
        let peers = match self.peers(m) {
            Ok(p) => p,
            Err((code, reason)) => {
                let mut b = MessageBuilder::new(Class::Error, m.method, m.transaction_id);
                b.error_code(code, reason);
                return self.error(packet, m, b, Some(&key));
            }
        };
        if let Some(a) = self.allocations.get_mut(&id) {
            for peer in peers {
                a.permissions.insert(peer.ip(), now + PERMISSION_LIFETIME);
            }
        }
        self.success(packet, m, MessageBuilder::new(Class::Success, m.method, m.transaction_id), &key);
    }

    fn channel_bind(&mut self, now: Instant, packet: &Packet<'_>, m: &Message<'_>, id: u64, key: [u8; 16]) {
        let refuse = |code: u16, reason: &str| {
            let mut b = MessageBuilder::new(Class::Error, Method::CHANNEL_BIND, m.transaction_id);
            b.error_code(code, reason);
            b
        };
        let number = match m.get(attr::CHANNEL_NUMBER) {
            Some(v) if v.len() == 4 => u16::from_be_bytes([v[0], v[1]]),
            _ => return self.error(packet, m, refuse(400, "Bad Request: no CHANNEL-NUMBER"), Some(&key)),
        };
        // RFC 8656 narrowed the range to 0x4000-0x4fff; clients written for RFC 5766 (coturn's
        // own) use up to 0x7ffe, and the two do not collide with anything else.
        if !(0x4000..=0x7ffe).contains(&number) {
            return self.error(packet, m, refuse(400, "Bad Request: channel number out of range"), Some(&key));
        }
        let peer = match self.peers(m) {
            Ok(p) if p.len() == 1 => p[0],
            Ok(_) => return self.error(packet, m, refuse(400, "Bad Request: one XOR-PEER-ADDRESS"), Some(&key)),
            Err((code, reason)) => return self.error(packet, m, refuse(code, reason), Some(&key)),
        };
        let Some(a) = self.allocations.get_mut(&id) else { return };
        // A number is bound to one peer, a peer to one number, for the binding's life.
        if a.channels.iter().any(|(n, p, _)| (*n == number) != (*p == peer)) {
            return self.error(packet, m, refuse(400, "Bad Request: channel or peer bound otherwise"), Some(&key));
        }
        a.channels.retain(|(n, _, _)| *n != number);
        a.channels.push((number, peer, now + CHANNEL_LIFETIME));
        a.permissions.insert(peer.ip(), now + PERMISSION_LIFETIME);
        self.success(packet, m, MessageBuilder::new(Class::Success, m.method, m.transaction_id), &key);
    }

    /// A Send indication from a client: its DATA goes to the peer, if permitted.
    fn send_indication(&mut self, now: Instant, packet: &Packet<'_>, m: &Message<'_>) {
        let tuple = (packet.transport, packet.source, packet.destination);
        let id = self.by_client.get(&tuple).copied();
        let target = id.and_then(|id| self.allocations.get(&id)).and_then(|a| {
            let peer = m.xor_address(attr::XOR_PEER_ADDRESS)?.ok()?;
            let data = m.get(attr::DATA)?;
            let permitted = a.permissions.get(&peer.ip()).is_some_and(|t| *t > now);
            permitted.then_some((id?, a.relay?, peer, data))
        });
        self.to_peer(now, target);
    }

    /// A ChannelData message from a client: to the channel's peer.
    fn channel_data(&mut self, now: Instant, packet: &Packet<'_>) {
        let tuple = (packet.transport, packet.source, packet.destination);
        let d = packet.data;
        let target = (d.len() >= 4).then(|| (u16::from_be_bytes([d[0], d[1]]), usize::from(u16::from_be_bytes([d[2], d[3]]))));
        let id = self.by_client.get(&tuple).copied();
        let target = target.filter(|(_, len)| 4 + len <= d.len()).and_then(|(number, len)| {
            let a = self.allocations.get(&id?)?;
            let (_, peer, _) = a.channels.iter().find(|(n, _, t)| *n == number && *t > now)?;
            Some((id?, a.relay?, *peer, &d[4..4 + len]))
        });
        self.to_peer(now, target);
    }

    /// Relay `data` of allocation `id` from its relay address to `peer`, within the allocation's
    /// bandwidth limit; `None` (no allocation, permission or channel) and data over the limit
    /// are dropped.
    fn to_peer(&mut self, now: Instant, target: Option<(u64, SocketAddr, SocketAddr, &[u8])>) {
        match target.filter(|(id, _, _, data)| self.within_limit(*id, now, data.len())) {
            Some((_, relay, peer, data)) => {
                self.stats.relayed += 1;
                self.push(Transport::Udp, relay, peer, data.to_vec());
            }
            None => self.stats.dropped += 1,
        }
    }

    /// A datagram from a peer to a relay: to the client, over its channel if it has one, else
    /// in a Data indication; dropped without a permission.
    fn from_peer(&mut self, now: Instant, id: u64, packet: &Packet<'_>) {
        let permitted = self.allocations.get(&id).is_some_and(|a| a.permissions.get(&packet.source.ip()).is_some_and(|t| *t > now));
        if !permitted || !self.within_limit(id, now, packet.data.len()) {
            self.stats.dropped += 1;
            return;
        }
        let Some(a) = self.allocations.get(&id) else { return };
        let (transport, client, server) = a.client;
        let data = if let Some((number, _, _)) = a.channels.iter().find(|(_, p, t)| *p == packet.source && *t > now) {
            let mut out = Vec::with_capacity(4 + packet.data.len() + 3);
            out.extend_from_slice(&number.to_be_bytes());
            out.extend_from_slice(&(packet.data.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
            out.extend_from_slice(packet.data);
            if transport != Transport::Udp {
                // Over a stream, ChannelData is padded to 4 bytes (RFC 8656 §12.5).
                out.resize(out.len().next_multiple_of(4), 0);
            }
            out
        } else {
            let mut b = MessageBuilder::new(Class::Indication, Method::DATA, indication_id(self.stats.relayed));
            b.xor_address(attr::XOR_PEER_ADDRESS, packet.source).attr(attr::DATA, packet.data);
            b.build()
        };
        self.stats.relayed += 1;
        self.push(transport, server, client, data);
    }

    /// Whether allocation `id` may relay `bytes` more at `now` under the bandwidth limit (a
    /// token bucket holding one second of the limit); if so they are taken from it.
    fn within_limit(&mut self, id: u64, now: Instant, bytes: usize) -> bool {
        let Some(limit) = self.config.max_relay_bps else { return true };
        let Some(a) = self.allocations.get_mut(&id) else { return false };
        let per_second = limit as f64 / 8.0;
        let (left, at) = a.budget;
        let left = (left + now.saturating_duration_since(at).as_secs_f64() * per_second).min(per_second);
        if left < bytes as f64 {
            a.budget = (left, now);
            return false;
        }
        a.budget = (left - bytes as f64, now);
        true
    }

    fn remove(&mut self, id: u64) {
        if let Some(a) = self.allocations.remove(&id) {
            self.by_client.remove(&a.client);
            if let Some(relay) = a.relay {
                self.by_relay.remove(&relay);
                self.events.push_back(Event::CloseRelay { relay });
            }
        }
    }

    /// A datagram that is not a whole, valid message: a request whose header is STUN gets a
    /// 400; anything else is dropped (RFC 8489 §6.3.1: what is not STUN is not answered).
    fn malformed(&mut self, packet: &Packet<'_>, error: Error) {
        match Header::parse(packet.data) {
            Ok(h) if h.class == Class::Request => {
                let mut b = MessageBuilder::new(Class::Error, h.method, h.transaction_id);
                b.error_code(400, &format!("Bad Request: {error}"));
                self.stats.errors += 1;
                self.push(packet.transport, packet.destination, packet.source, b.build_with_fingerprint());
            }
            _ => self.stats.dropped += 1,
        }
    }

    /// Answer `request` with the error in `b`, signed with `key` once the client is
    /// authenticated.
    fn error(&mut self, packet: &Packet<'_>, request: &Message<'_>, b: MessageBuilder, key: Option<&[u8; 16]>) {
        self.stats.errors += 1;
        let data = match key {
            Some(key) => b.build_with_integrity(key, request.fingerprint),
            None if request.fingerprint => b.build_with_fingerprint(),
            None => b.build(),
        };
        self.push(packet.transport, packet.destination, packet.source, data);
    }

    fn success(&mut self, packet: &Packet<'_>, request: &Message<'_>, b: MessageBuilder, key: &[u8; 16]) {
        let data = b.build_with_integrity(key, request.fingerprint);
        self.push(packet.transport, packet.destination, packet.source, data);
    }

    fn push(&mut self, transport: Transport, source: SocketAddr, destination: SocketAddr, data: Vec<u8>) {
        self.transmits.push_back(Transmit { transport, source, destination, data });
    }
}

/// A request's LIFETIME.
fn requested_lifetime(m: &Message<'_>) -> Option<Duration> {
    let v: [u8; 4] = m.get(attr::LIFETIME)?.try_into().ok()?;
    Some(Duration::from_secs(u64::from(u32::from_be_bytes(v))))
}

/// A transaction id for an indication the server sends (unique enough: indications get no
/// answer to match).
fn indication_id(counter: u64) -> [u8; 12] {
    let mut id = *b"confab-data-";
    id[4..12].copy_from_slice(&counter.to_be_bytes());
    id
}

#[cfg(test)]
mod tests;

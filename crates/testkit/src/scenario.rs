//! Several [`Peer`]s and one [`Sfu`] on a virtual clock, connected through an emulated network.
//!
//! Nothing here opens a socket or sleeps: datagrams go from one sans-IO object to another through
//! a `str0m-netem` link per peer and direction (latency, jitter, loss, reordering), and time jumps
//! straight to the next deadline of anything in the scenario. A minute of a call runs in well
//! under a second.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sfu::{Command, Event, LeaveReason, ParticipantId, Role, Sfu, SfuConfig, Signal};
use str0m_netem::{Input as NetInput, Netem, NetemConfig, Output as NetOutput};

use crate::peer::{Peer, ToSfu};

/// The SFU's address in every scenario.
pub const SFU_ADDR: &str = "10.99.0.1:7881";

#[derive(Clone)]
struct Datagram {
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

impl AsRef<[u8]> for Datagram {
    fn as_ref(&self) -> &[u8] {
        &self.contents
    }
}

struct Link {
    up: Netem<Datagram>,
    down: Netem<Datagram>,
}

/// A call under test.
pub struct Scenario {
    /// The virtual now.
    pub now: Instant,
    /// The SFU core.
    pub sfu: Sfu,
    /// The participants, by index in order of creation (those who left stay, disconnected).
    pub peers: Vec<Peer>,
    /// Events from the SFU other than signaling (removals, closed rooms).
    pub events: Vec<Event>,
    /// Errors the SFU returned to commands: (peer index, error).
    pub errors: Vec<(usize, sfu::Error)>,
    /// Wall-clock time spent inside the SFU core's calls (commands, datagrams, timeouts, polls)
    /// so far: what a benchmark measures of a scenario, without the peers' own work.
    pub sfu_time: Duration,
    links: Vec<Link>,
    left: Vec<bool>,
    /// The grants of the next join.
    grants: sfu::Grants,
    sfu_addr: SocketAddr,
    network: NetemConfig,
    queue: VecDeque<(usize, Command)>,
    /// Signaling messages on their way to peers: (due, recipient, message).
    inbox: VecDeque<(Instant, ParticipantId, Signal)>,
    signal_delay: Duration,
}

impl Scenario {
    /// A scenario whose every link behaves as `network` (use `NetemConfig::new()` for a perfect
    /// network).
    pub fn new(network: NetemConfig) -> Self {
        Self::with_config(network, |c| c)
    }

    /// A call whose SFU has the configuration `config` makes of the default one.
    pub fn with_config(network: NetemConfig, config: impl FnOnce(SfuConfig) -> SfuConfig) -> Self {
        let sfu_addr: SocketAddr = SFU_ADDR.parse().unwrap_or_else(|_| unreachable!());
        let sfu = Sfu::new(config(SfuConfig::new(vec![sfu_addr]))).unwrap_or_else(|e| panic!("sfu: {e}"));
        Scenario {
            now: Instant::now(),
            sfu,
            peers: Vec::new(),
            events: Vec::new(),
            errors: Vec::new(),
            sfu_time: Duration::ZERO,
            links: Vec::new(),
            left: Vec::new(),
            grants: sfu::Grants::default(),
            sfu_addr,
            network,
            queue: VecDeque::new(),
            inbox: VecDeque::new(),
            signal_delay: Duration::ZERO,
        }
    }

    /// Delay every signaling message from the SFU to a peer by `delay` (default: none), so that
    /// messages can cross on the way.
    pub fn set_signal_delay(&mut self, delay: Duration) {
        self.signal_delay = delay;
    }

    /// A new participant named `name` joins `room`; returns its index.
    pub fn join(&mut self, name: &str, room: &str) -> usize {
        self.join_with(name, room, Peer::new, Role::Member)
    }

    /// A new member that may do only what `grants` allow (an access token's grants).
    pub fn join_granted(&mut self, name: &str, room: &str, grants: sfu::Grants) -> usize {
        self.grants = grants;
        let i = self.join_with(name, room, Peer::new, Role::Member);
        self.grants = sfu::Grants::default();
        i
    }

    /// A new participant that takes part as `role` (a WHIP publisher, a WHEP viewer).
    pub fn join_as(&mut self, name: &str, room: &str, role: Role) -> usize {
        self.join_with(name, room, Peer::new, role)
    }

    /// Peer `i` opens its two data channels to the SFU.
    pub fn open_data(&mut self, i: usize) {
        if let Some(msg) = self.peers[i].open_data() {
            self.send(i, msg);
            self.settle();
        }
    }

    /// Peer `i` offers to receive video and audio (in that order, as a WHEP player may), on
    /// m-lines of its own offer.
    pub fn watch(&mut self, i: usize) {
        if let Some(msg) = self.peers[i].watch() {
            self.send(i, msg);
            self.settle();
        }
    }

    /// A new participant that records what it receives packet by packet ([`Peer::rtp`]).
    pub fn join_rtp(&mut self, name: &str, room: &str) -> usize {
        self.join_with(name, room, Peer::new_rtp, Role::Member)
    }

    fn join_with(
        &mut self,
        name: &str,
        room: &str,
        make: fn(Instant, &str, ParticipantId, SocketAddr) -> Peer,
        role: Role,
    ) -> usize {
        let i = self.peers.len();
        let addr: SocketAddr = format!("10.0.{}.{}:5000", i / 200, i % 200 + 2)
            .parse()
            .unwrap_or_else(|_| unreachable!());
        let id = ParticipantId::new(format!("P{i}-{name}"));
        self.peers.push(make(self.now, name, id.clone(), addr));
        let seed = i as u64 * 2;
        self.links.push(Link {
            up: Netem::new(self.network.seed(seed + 1)),
            down: Netem::new(self.network.seed(seed + 2)),
        });
        self.left.push(false);
        let grants = self.grants;
        self.command(i, Command::Join { participant: id, room: room.into(), name: name.into(), role, grants, mode: Default::default() });
        i
    }

    /// One publisher of video (one layer, peer 0) and `subscribers` receivers in one room,
    /// connected and forwarding: the call the forwarding benchmarks measure.
    pub fn broadcast(subscribers: usize) -> Self {
        Self::broadcast_with(subscribers, true)
    }

    /// [`Scenario::broadcast`], with the SFU's congestion control on or off.
    pub fn broadcast_with(subscribers: usize, congestion_control: bool) -> Self {
        Scenario::broadcast_video(subscribers, congestion_control, crate::peer::VIDEO_FRAME_BYTES)
    }

    /// [`Scenario::broadcast_with`], the publisher's video delta frames `frame_bytes` long (at
    /// 20 fps: 9,375 bytes is 1.5 Mbit/s, about eight packets a frame).
    pub fn broadcast_video(subscribers: usize, congestion_control: bool, frame_bytes: usize) -> Self {
        let mut call = Scenario::with_config(NetemConfig::new(), |c| SfuConfig { congestion_control, ..c });
        let publisher = call.join("pub", "broadcast");
        for i in 0..subscribers {
            call.join(&format!("sub{i}"), "broadcast");
        }
        call.peers[publisher].video_frame_bytes = frame_bytes;
        call.publish(publisher, false, true);
        call.run_for(Duration::from_secs(4));
        for s in 1..=subscribers {
            assert!(call.video_frames(s, publisher) > 0, "subscriber {s} receives video");
        }
        call
    }

    /// Peer `i` starts publishing.
    pub fn publish(&mut self, i: usize, audio: bool, video: bool) {
        if let Some(msg) = self.peers[i].publish(audio, video) {
            self.send(i, msg);
        }
    }

    /// Peer `i` stops publishing video.
    pub fn unpublish_video(&mut self, i: usize) {
        if let Some(msg) = self.peers[i].unpublish_video() {
            self.send(i, msg);
        }
    }

    /// Peer `i` leaves.
    pub fn leave(&mut self, i: usize) {
        self.left[i] = true;
        let participant = self.peers[i].id.clone();
        self.command(i, Command::Leave { participant, reason: LeaveReason::Left });
    }

    /// Peer `i` moves to another address (its port plus one) and restarts ICE, as after a
    /// network change: what it sends from its old address is lost from now on.
    pub fn move_peer(&mut self, i: usize) {
        let mut addr = self.peers[i].addr;
        addr.set_port(addr.port() + 1);
        if let Some(msg) = self.peers[i].move_to(addr) {
            self.send(i, msg);
            self.settle();
        }
    }

    /// Peer `i` goes silent without leaving (its network link is cut).
    pub fn cut(&mut self, i: usize) {
        self.left[i] = true;
    }

    /// Send a command for peer `i` to the SFU (after whatever is queued).
    pub fn command(&mut self, i: usize, command: Command) {
        self.queue.push_back((i, command));
        self.settle();
    }

    fn send(&mut self, i: usize, msg: ToSfu) {
        let participant = self.peers[i].id.clone();
        let command = match msg {
            ToSfu::Offer(sdp) => Command::Offer { participant, sdp, tracks: Vec::new() },
            ToSfu::Answer(id, sdp) => Command::Answer { participant, id, sdp },
        };
        self.queue.push_back((i, command));
    }

    /// Run the call for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now + duration;
        self.run_until(end, |_| false);
    }

    /// Run until `done` holds (checked after every step) or `deadline`; true if `done` held.
    pub fn run_until(&mut self, deadline: Instant, mut done: impl FnMut(&Scenario) -> bool) -> bool {
        self.settle();
        while self.now < deadline {
            if done(self) {
                return true;
            }
            let next = self.next_deadline().min(deadline).max(self.now);
            self.now = if next == self.now { self.now + Duration::from_micros(100) } else { next };
            self.step();
        }
        done(self)
    }

    fn next_deadline(&self) -> Instant {
        let mut t = self.sfu.poll_timeout().unwrap_or(self.now + Duration::from_secs(1));
        if let Some((due, _, _)) = self.inbox.front() {
            t = t.min(*due);
        }
        for (i, p) in self.peers.iter().enumerate() {
            if !self.left[i] {
                t = t.min(p.next_deadline());
            }
            t = t.min(self.links[i].up.poll_timeout()).min(self.links[i].down.poll_timeout());
        }
        t
    }

    fn step(&mut self) {
        let now = self.now;
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            timed(&mut self.sfu_time, || self.sfu.handle_timeout(now));
        }
        for i in 0..self.peers.len() {
            if !self.left[i] && self.peers[i].next_deadline() <= now {
                self.peers[i].tick(now);
            }
        }
        self.settle();
    }

    /// Move everything that can move at `now`: commands, SFU output, peer output, due packets.
    fn settle(&mut self) {
        let now = self.now;
        loop {
            let mut moved = false;
            while let Some((i, command)) = self.queue.pop_front() {
                if let Err(e) = timed(&mut self.sfu_time, || self.sfu.handle_command(now, command)) {
                    self.errors.push((i, e));
                }
                moved = true;
            }
            while let Some(t) = timed(&mut self.sfu_time, || self.sfu.poll_transmit()) {
                if let Some(i) = self.peer_at(t.destination) {
                    let d = Datagram { source: t.source, destination: t.destination, contents: t.contents };
                    self.links[i].down.handle_input(NetInput::Packet(now, d));
                }
                moved = true;
            }
            while let Some(event) = self.sfu.poll_event() {
                moved = true;
                match event {
                    Event::Signal { to, signal } => self.inbox.push_back((now + self.signal_delay, to, signal)),
                    other => self.events.push(other),
                }
            }
            while self.inbox.front().is_some_and(|(due, _, _)| *due <= now) {
                if let Some((_, to, signal)) = self.inbox.pop_front() {
                    self.deliver(&to, signal);
                    moved = true;
                }
            }
            let mut out = Vec::new();
            for i in 0..self.peers.len() {
                if self.left[i] {
                    continue;
                }
                self.peers[i].poll(now, &mut out);
                let addr = self.peers[i].addr;
                // What a moved peer sends from its old address is lost.
                for (source, destination, contents) in out.drain(..).filter(|(source, _, _)| *source == addr) {
                    self.links[i].up.handle_input(NetInput::Packet(now, Datagram { source, destination, contents }));
                    moved = true;
                }
            }
            for i in 0..self.links.len() {
                self.links[i].up.handle_input(NetInput::Timeout(now));
                while let Some(o) = self.links[i].up.poll_output() {
                    if let NetOutput::Packet(d) = o {
                        if !self.left[i] && d.destination == self.sfu_addr {
                            timed(&mut self.sfu_time, || self.sfu.handle_datagram(now, d.source, d.destination, &d.contents));
                        }
                        moved = true;
                    }
                }
            }
            for i in 0..self.links.len() {
                self.links[i].down.handle_input(NetInput::Timeout(now));
                while let Some(o) = self.links[i].down.poll_output() {
                    if let NetOutput::Packet(d) = o {
                        if !self.left[i] {
                            self.peers[i].receive(now, d.source, &d.contents);
                        }
                        moved = true;
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn deliver(&mut self, to: &ParticipantId, signal: Signal) {
        let Some(i) = self.peers.iter().position(|p| &p.id == to) else { return };
        match self.peers[i].on_signal(signal) {
            Ok(Some(reply)) => self.send(i, reply),
            Ok(None) => {}
            Err(e) => panic!("peer {} could not handle a signal: {e}", self.peers[i].name),
        }
    }

    /// Index of the peer at `addr`: peer `i` is at 10.0.(i / 200).(i % 200 + 2):5000 (see
    /// [`Scenario::join`]), so a scenario of many peers finds one in O(1).
    fn peer_at(&self, addr: SocketAddr) -> Option<usize> {
        let SocketAddr::V4(v4) = addr else { return None };
        let [a, b, c, d] = v4.ip().octets();
        if a != 10 || b != 0 || d < 2 {
            return None;
        }
        let i = usize::from(c) * 200 + usize::from(d) - 2;
        (i < self.peers.len() && self.peers[i].addr == addr).then_some(i)
    }

    /// Index of the peer with participant id `id`.
    pub fn index_of(&self, id: &ParticipantId) -> Option<usize> {
        self.peers.iter().position(|p| &p.id == id)
    }

    /// Whether `receiver` has received video frames from `publisher` (by index).
    pub fn video_frames(&self, receiver: usize, publisher: usize) -> usize {
        let (_, video) = self.peers[publisher].track_ids();
        video.map_or(0, |t| self.peers[receiver].frames_from(&self.peers[publisher].id, &t).len())
    }

    /// Whether `receiver` has received audio frames from `publisher` (by index).
    pub fn audio_frames(&self, receiver: usize, publisher: usize) -> usize {
        let (audio, _) = self.peers[publisher].track_ids();
        audio.map_or(0, |t| self.peers[receiver].frames_from(&self.peers[publisher].id, &t).len())
    }
}

/// Run `f`, adding the wall-clock time it took to `spent`.
fn timed<T>(spent: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = std::time::Instant::now();
    let out = f();
    *spent += start.elapsed();
    out
}

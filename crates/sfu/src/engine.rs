//! [`Sfu`]: the sans-IO core and its driving contract.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use rustc_hash::FxHashMap;
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Input, RtcConfig};

use crate::adapt::ADAPT_INTERVAL;
use crate::api::{Command, Event, LeaveReason, ParticipantId, Role, RoomInfo, Signal, Stats, Transmit, Transport};
use crate::config::SfuConfig;
use crate::error::Error;
use crate::participant::{Effect, Participant, Sinks};
use crate::router::Router;
use crate::slots::{Pix, Slots, Timers};

/// The selective forwarding unit of one media worker: rooms, participants and the media between
/// them, without any I/O.
///
/// # Driving contract
///
/// The caller owns the socket and the clock, and drives the core with three inputs:
///
/// - [`Sfu::handle_command`] for every signaling request ([`Command`]),
/// - [`Sfu::handle_datagram`] for every datagram received on the media socket,
/// - [`Sfu::handle_timeout`] when the instant last returned by [`Sfu::poll_timeout`] is reached,
///
/// each with the current time. After **every** input it drains the three outputs:
///
/// - [`Sfu::poll_transmit`] until `None`, sending each datagram,
/// - [`Sfu::poll_event`] until `None`, delivering each [`Event`] (mostly signaling messages),
/// - [`Sfu::poll_timeout`], the next instant to call `handle_timeout` at.
///
/// Time must not go backwards between inputs. The core never reads the clock, opens a socket or
/// spawns anything, so it runs the same under a test's virtual clock as in the server.
///
/// ```
/// use std::time::Instant;
/// use sfu::{Command, ParticipantId, Role, Sfu, SfuConfig};
///
/// let mut sfu = Sfu::new(SfuConfig::new(vec!["127.0.0.1:7881".parse().unwrap()])).unwrap();
/// let ada = ParticipantId::new("ada");
/// sfu.handle_command(Instant::now(), Command::Join {
///     participant: ada.clone(),
///     room: "standup".into(),
///     name: "Ada".into(),
///     role: Role::Member,
///     grants: Default::default(),
///     mode: Default::default(),
/// }).unwrap();
/// while let Some(event) = sfu.poll_event() {
///     println!("{event:?}"); // Joined, for ada
/// }
/// assert_eq!(sfu.stats().participants, 1);
/// ```
pub struct Sfu {
    pub(crate) config: SfuConfig,
    /// The host candidates of every participant, from `config`.
    pub(crate) local_candidates: Vec<str0m::Candidate>,
    rtc_config: RtcConfig,
    pub(crate) participants: Slots<Participant>,
    pub(crate) by_id: FxHashMap<ParticipantId, Pix>,
    pub(crate) rooms: FxHashMap<String, Vec<Pix>>,
    pub(crate) router: Router,
    timers: Timers,
    pub(crate) effects: VecDeque<Effect>,
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) stats: Stats,
    next_generation: u32,
    /// Participants to drain before the current input is done, and a spare buffer for it.
    pending: Vec<Pix>,
    spare: Vec<Pix>,
    /// When layer targets are next recomputed (while anyone is present).
    next_adapt: Option<Instant>,
    /// Each room's speakers.
    pub(crate) speakers: FxHashMap<String, crate::speaker::RoomSpeakers>,
    /// Each room's mode and path.
    pub(crate) paths: FxHashMap<String, crate::mesh::RoomPath>,
}

impl Sfu {
    /// A core advertising the candidates of `config`.
    pub fn new(config: SfuConfig) -> Result<Self, Error> {
        let local_candidates = config.local_candidates()?;
        let rtc_config = config.rtc_config()?;
        Ok(Sfu {
            config,
            local_candidates,
            rtc_config,
            participants: Slots::default(),
            by_id: FxHashMap::default(),
            rooms: FxHashMap::default(),
            router: Router::default(),
            timers: Timers::default(),
            effects: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            next_generation: 0,
            pending: Vec::new(),
            spare: Vec::new(),
            next_adapt: None,
            speakers: FxHashMap::default(),
            paths: FxHashMap::default(),
        })
    }

    /// Carry out a signaling command. On `Err` the command had no effect, except for
    /// [`Error::Engine`], after which the participant has been removed.
    pub fn handle_command(&mut self, now: Instant, command: Command) -> Result<(), Error> {
        let result = match command {
            Command::Join { participant, room, name, role, grants, mode } => self.join(now, participant, room, name, role, grants, mode),
            Command::Suspend { participant } => {
                let pix = self.pix(&participant)?;
                self.suspend(pix, true);
                Ok(())
            }
            Command::Resume { participant } => {
                let pix = self.pix(&participant)?;
                self.resume(pix);
                Ok(())
            }
            Command::Relay { participant, to, payload } => {
                let pix = self.pix(&participant)?;
                self.relay(pix, &to, payload)
            }
            Command::Offer { participant, sdp, tracks } => {
                let pix = self.pix(&participant)?;
                self.client_offer(now, pix, &sdp, tracks)
            }
            Command::Answer { participant, id, sdp } => {
                let pix = self.pix(&participant)?;
                self.client_answer(now, pix, id, &sdp)
            }
            Command::Candidate { participant, candidate } => {
                let pix = self.pix(&participant)?;
                self.remote_candidate(pix, &candidate)
            }
            Command::Mute { participant, track, muted } => {
                let pix = self.pix(&participant)?;
                self.mute(now, pix, &track, muted)
            }
            Command::Subscription { participant, publisher, track, width, height } => {
                let pix = self.pix(&participant)?;
                self.subscription(now, pix, &publisher, &track, (width, height))
            }
            Command::Leave { participant, reason } => {
                let pix = self.pix(&participant)?;
                self.remove(now, pix, reason);
                Ok(())
            }
            Command::Remove { participant } => {
                let pix = self.pix(&participant)?;
                self.effects.push_back(Effect::Fail(pix, LeaveReason::Removed));
                Ok(())
            }
            Command::ForceMute { participant, track, muted } => {
                let pix = self.pix(&participant)?;
                self.mute(now, pix, &track, muted)?;
                self.signal(pix, Signal::TrackMuted { participant, track, muted });
                Ok(())
            }
        };
        self.flush(now);
        result
    }

    /// Handle a datagram received at `destination` (one of the configured candidate addresses)
    /// from `source`. Datagrams that belong to no participant, or are not WebRTC traffic, are
    /// dropped and counted.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        self.receive(now, Transport::Udp, source, destination, contents);
    }

    /// Handle one frame (RFC 4571, its length prefix stripped) received on an ICE-TCP connection
    /// from `source` to `destination` (one of the configured TCP candidate addresses). The
    /// answers for that connection come out of [`Sfu::poll_transmit`] as [`Transport::Tcp`]
    /// transmits to `source`. Frames that belong to no participant are dropped and counted.
    pub fn handle_tcp_frame(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, contents: &[u8]) {
        self.receive(now, Transport::Tcp, source, destination, contents);
    }

    fn receive(&mut self, now: Instant, transport: Transport, source: SocketAddr, destination: SocketAddr, contents: &[u8]) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += contents.len() as u64;
        let Some(pix) = self.router.route(transport, source, contents) else {
            self.stats.datagrams_unrouted += 1;
            return;
        };
        let Ok(contents) = DatagramRecv::try_from(contents) else {
            self.stats.datagrams_malformed += 1;
            return;
        };
        let Some(p) = self.participants.get_mut(pix) else {
            return;
        };
        let proto = match transport {
            Transport::Udp => Protocol::Udp,
            Transport::Tcp => Protocol::Tcp,
        };
        let receive = Receive { proto, source, destination, contents };
        if let Err(e) = p.input(Input::Receive(now, receive)) {
            tracing::debug!(participant = %p.id, "dropping participant: {e}");
            self.effects.push_back(Effect::Fail(pix, LeaveReason::Internal));
        } else {
            self.mark_dirty(pix);
        }
        self.flush(now);
    }

    /// Handle the passing of time; call at (or after) the instant of [`Sfu::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let grace = self.config.ice_disconnect_grace;
        if self.next_adapt.is_some_and(|t| t <= now) {
            self.update_speakers(now);
            self.adapt(now);
            self.next_adapt = (!self.by_id.is_empty()).then(|| now + ADAPT_INTERVAL);
        }
        while let Some((at, pix, generation)) = self.timers.pop_due(now) {
            let Some(p) = self.participants.get_mut(pix) else { continue };
            if p.generation != generation || p.scheduled != Some(at) {
                continue;
            }
            p.scheduled = None;
            if p.ice_failed(now, grace) {
                tracing::info!(participant = %p.id, "media connection failed");
                self.effects.push_back(Effect::Fail(pix, LeaveReason::MediaFailed));
            } else if p.deadline(grace) <= now {
                p.needs_tick = true;
                self.mark_dirty(pix);
            } else {
                // Woken early (the deadline moved later): wait again.
                self.schedule(pix);
            }
        }
        self.flush(now);
    }

    /// The participant a datagram from `source` with `contents` would be handed to, if any: the
    /// router's O(1) lookup that [`Sfu::handle_datagram`] starts with (a STUN request by its ICE
    /// username, everything else by the source address its participant's ICE agent verified).
    pub fn route(&self, source: SocketAddr, contents: &[u8]) -> Option<&ParticipantId> {
        let pix = self.router.route(Transport::Udp, source, contents)?;
        self.participants.get(pix).map(|p| &p.id)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the signaling edge.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Sfu::handle_timeout`] next; `None` while there are no participants.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timers.peek(), self.next_adapt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What the core has done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Every room, with the participants shown in it and their tracks.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .iter()
            .map(|(name, members)| {
                let members: Vec<&crate::participant::Participant> = members.iter().filter_map(|&m| self.participants.get(m)).collect();
                RoomInfo {
                    name: name.clone(),
                    mode: self.room_mode(name),
                    participants: members.iter().filter(|p| p.announced).map(|p| p.info()).collect(),
                    viewers: members.iter().filter(|p| matches!(p.role, Role::Viewer(_))).count(),
                }
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        rooms
    }

    /// Tracks published now, in every room.
    pub fn tracks(&self) -> u64 {
        self.participants.iter().map(|(_, p)| p.published.len() as u64).sum()
    }

    pub(crate) fn pix(&self, id: &ParticipantId) -> Result<Pix, Error> {
        self.by_id.get(id).copied().ok_or(Error::UnknownParticipant)
    }

    pub(crate) fn new_rtc(&self, now: Instant) -> str0m::Rtc {
        self.rtc_config.clone().build(now)
    }

    pub(crate) fn next_generation(&mut self) -> u32 {
        self.next_generation = self.next_generation.wrapping_add(1);
        self.next_generation
    }

    /// Remember that `pix` must be drained before the current input is done.
    pub(crate) fn mark_dirty(&mut self, pix: Pix) {
        if let Some(p) = self.participants.get_mut(pix) {
            if !p.dirty {
                p.dirty = true;
                self.pending.push(pix);
            }
        }
    }

    /// Queue the participant's deadline if it is earlier than what is queued.
    pub(crate) fn schedule(&mut self, pix: Pix) {
        let grace = self.config.ice_disconnect_grace;
        let Some(p) = self.participants.get_mut(pix) else { return };
        let deadline = p.deadline(grace);
        if p.scheduled.is_none_or(|s| deadline < s) {
            p.scheduled = Some(deadline);
            self.timers.push(deadline, pix, p.generation);
        }
    }

    /// Drain every dirty participant and carry out the effects, until nothing is left to do.
    fn flush(&mut self, now: Instant) {
        if self.next_adapt.is_none() && !self.by_id.is_empty() {
            self.next_adapt = Some(now + ADAPT_INTERVAL);
        }
        loop {
            let mut batch = std::mem::replace(&mut self.pending, std::mem::take(&mut self.spare));
            for &pix in &batch {
                let Some(p) = self.participants.get_mut(pix) else { continue };
                let mut sinks = Sinks {
                    transmits: &mut self.transmits,
                    effects: &mut self.effects,
                    router: &mut self.router,
                    stats: &mut self.stats,
                };
                p.drain(now, pix, &mut sinks);
                self.schedule(pix);
            }
            let drained_any = !batch.is_empty();
            batch.clear();
            self.spare = batch;
            while let Some(effect) = self.effects.pop_front() {
                self.apply(now, effect);
            }
            if !drained_any && self.pending.is_empty() {
                return;
            }
        }
    }

    fn apply(&mut self, now: Instant, effect: Effect) {
        match effect {
            Effect::Media(pix, packet) => self.forward(now, pix, packet),
            Effect::Publish(pix, mid, kind) => self.publish(now, pix, mid, kind),
            Effect::Unpublish(pix, mid) => self.unpublish(now, pix, mid),
            Effect::KeyframeRequest(pix, mid, _kind) => self.subscriber_wants_keyframe(now, pix, mid),
            Effect::Connected(pix) => self.media_connected(now, pix),
            Effect::Attach(pix, mid, kind) => self.attach_viewer(now, pix, mid, kind),
            Effect::Data(pix, channel, data) => self.relay_data(now, pix, channel, &data),
            Effect::Fail(pix, reason) => {
                if let Some(p) = self.participants.get(pix) {
                    let participant = p.id.clone();
                    self.remove(now, pix, reason);
                    self.events.push_back(Event::Removed { participant, reason });
                }
            }
        }
    }
}

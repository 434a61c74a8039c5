//! One participant: its str0m `Rtc`, the tracks it publishes and receives, and the state of its
//! offer/answer exchanges and of its ICE connection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use str0m::change::SdpPendingOffer;
use str0m::media::{KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::rtp::{RtpPacket, Ssrc};
use str0m::bwe::BweKind;
use str0m::net::Protocol;
use str0m::{Event as RtcEvent, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, trace};

use crate::allocate::Downlink;
use crate::api::{LeaveReason, ParticipantId, ParticipantInfo, Role, Stats, TrackMeta, Transmit, Transport};
use crate::router::Router;
use crate::slots::Pix;
use crate::track::{OutState, OutTrack, Published};

/// Something a participant's `Rtc` produced that concerns more than the participant itself; the
/// core carries these out after draining.
// Media is by far the most frequent effect: moving it through the (reused) queue by value is
// cheaper than a box, which would be an allocation per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Effect {
    /// An RTP packet from this publisher, to forward.
    Media(Pix, RtpPacket),
    /// The participant started sending on m-line `mid`.
    Publish(Pix, Mid, MediaKind),
    /// The participant stopped sending on m-line `mid`.
    Unpublish(Pix, Mid),
    /// The subscriber asked for a keyframe on its outgoing m-line `mid`.
    KeyframeRequest(Pix, Mid, KeyframeRequestKind),
    /// The participant's media connection (ICE and DTLS) is up: its video can start.
    Connected(Pix),
    /// A viewer's offer added m-line `mid`, on which the SFU sends: bind it to a track.
    Attach(Pix, Mid, MediaKind),
    /// A message on one of the participant's data channels, to relay.
    Data(Pix, str0m::channel::ChannelId, Vec<u8>),
    /// The participant must go.
    Fail(Pix, LeaveReason),
}

/// Where a participant's drain puts what it produces.
pub(crate) struct Sinks<'a> {
    pub(crate) transmits: &'a mut VecDeque<Transmit>,
    pub(crate) effects: &'a mut VecDeque<Effect>,
    pub(crate) router: &'a mut Router,
    pub(crate) stats: &'a mut Stats,
}

#[derive(Debug)]
pub(crate) struct Participant {
    pub(crate) id: ParticipantId,
    pub(crate) name: String,
    pub(crate) room: String,
    pub(crate) generation: u32,
    pub(crate) rtc: Rtc,
    pub(crate) ufrag: String,
    /// How it takes part in its room.
    pub(crate) role: Role,
    /// What it may do there.
    pub(crate) grants: crate::api::Grants,
    /// str0m's running RTCP counts per stream, to count what is new in each stats event.
    pub(crate) rtcp_counts: RtcpCounts,
    /// A viewer's m-lines the SFU sends on, from its offer, in order.
    pub(crate) viewer_mids: Vec<(Mid, MediaKind)>,
    /// The room has been told it is there: a member at once, a WHIP publisher once its offer
    /// was accepted (one that str0m refuses never shows), a viewer never.
    pub(crate) announced: bool,
    /// Its data channels to the SFU, and how much it may send on them.
    pub(crate) channels: crate::data::Channels,
    pub(crate) data_allowance: crate::data::Allowance,
    /// Remote addresses routed to this participant.
    pub(crate) addrs: Vec<(Transport, SocketAddr)>,
    pub(crate) published: Vec<Published>,
    /// Outgoing tracks at stable slots (publishers keep the slot index).
    pub(crate) outs: Vec<Option<OutTrack>>,
    /// Incoming streams seen: SSRC -> (mid, rid).
    pub(crate) ssrcs: Vec<(Ssrc, Mid, Option<Rid>)>,
    /// Metadata the participant declared for its sending m-lines.
    pub(crate) meta: Vec<(String, TrackMeta)>,
    pub(crate) offers: Offers,
    pub(crate) ice: IceWatch,
    /// ICE and DTLS are up: media written now reaches the participant.
    pub(crate) media_connected: bool,
    /// Its signaling connection was lost; its place is kept ([`crate::Command::Suspend`]).
    pub(crate) suspended: bool,
    /// When the `Rtc` wants its next timeout.
    pub(crate) rtc_deadline: Instant,
    /// The earliest deadline queued in the core's timers for this participant.
    pub(crate) scheduled: Option<Instant>,
    /// Needs a drain.
    pub(crate) dirty: bool,
    /// Got writes that need a `Timeout(now)` input to be sent.
    pub(crate) needs_tick: bool,
    /// Layer selection for what this participant receives.
    pub(crate) downlink: Downlink,
    /// The padding and desired rates last given to str0m's estimator.
    pub(crate) bwe_rates: (u64, u64),
}

/// The SFU's own offers to this participant.
#[derive(Default)]
pub(crate) struct Offers {
    pub(crate) next_id: u64,
    pub(crate) outstanding: Option<(u64, SdpPendingOffer)>,
}

impl std::fmt::Debug for Offers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offers")
            .field("next_id", &self.next_id)
            .field("outstanding", &self.outstanding.as_ref().map(|(id, _)| id))
            .finish()
    }
}

/// ICE liveness: a participant whose media never connects, or disconnects for good, is removed.
#[derive(Debug, Default)]
pub(crate) struct IceWatch {
    connected: bool,
    /// Must connect by then (set by the first completed offer/answer exchange).
    connect_by: Option<Instant>,
    /// Disconnected since then.
    disconnected_at: Option<Instant>,
}

impl IceWatch {
    pub(crate) fn exchanged(&mut self, now: Instant, timeout: Duration) {
        if !self.connected && self.connect_by.is_none() {
            self.connect_by = Some(now + timeout);
        }
    }

    fn on_state(&mut self, now: Instant, state: IceConnectionState) {
        match state {
            IceConnectionState::Connected | IceConnectionState::Completed => {
                self.connected = true;
                self.connect_by = None;
                self.disconnected_at = None;
            }
            IceConnectionState::Disconnected => {
                if self.disconnected_at.is_none() {
                    self.disconnected_at = Some(now);
                }
            }
            IceConnectionState::New | IceConnectionState::Checking => {}
        }
    }

    /// When the participant should be removed unless something changes.
    pub(crate) fn deadline(&self, grace: Duration) -> Option<Instant> {
        let lost = self.disconnected_at.map(|t| t + grace);
        match (self.connect_by, lost) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Run a call into str0m, turning a panic into an error: str0m treats a panic as a bug of its
/// own, and a bug triggered by one participant's input must not take the others down.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        format!("media engine panicked: {msg}")
    })
}

impl Participant {
    pub(crate) fn info(&self) -> ParticipantInfo {
        ParticipantInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            tracks: self.published.iter().map(Published::info).collect(),
            reconnecting: self.suspended,
        }
    }

    pub(crate) fn published(&self, mid: Mid) -> Option<&Published> {
        self.published.iter().find(|t| t.mid == mid)
    }

    pub(crate) fn published_mut(&mut self, mid: Mid) -> Option<&mut Published> {
        self.published.iter_mut().find(|t| t.mid == mid)
    }

    /// The m-line and simulcast layer of an incoming stream.
    pub(crate) fn stream_of(&mut self, ssrc: Ssrc) -> Option<(Mid, Option<Rid>)> {
        if let Some((_, mid, rid)) = self.ssrcs.iter().find(|(s, _, _)| *s == ssrc) {
            return Some((*mid, *rid));
        }
        let (mid, rid) = self.rtc.direct_api().stream_rx(&ssrc).map(|s| (s.mid(), s.rid()))?;
        self.ssrcs.push((ssrc, mid, rid));
        Some((mid, rid))
    }

    /// A WHEP player: receives one publisher, is not shown to the room.
    pub(crate) fn is_viewer(&self) -> bool {
        matches!(self.role, Role::Viewer(_))
    }

    pub(crate) fn is_out_mid(&self, mid: Mid) -> bool {
        self.outs.iter().flatten().any(|o| o.mid() == Some(mid))
    }

    pub(crate) fn out_by_active_mid(&mut self, mid: Mid) -> Option<&mut OutTrack> {
        self.outs.iter_mut().flatten().find(|o| o.active_mid() == Some(mid))
    }

    /// Forget the outstanding offer (rolled back or refused): what it offered is wanted again.
    /// (`Offered` only exists while an offer is outstanding.)
    pub(crate) fn void_offer(&mut self) {
        self.offers.outstanding = None;
        for out in self.outs.iter_mut().flatten() {
            if let OutState::Offered(_) = out.state {
                out.state = OutState::New;
            }
        }
    }

    pub(crate) fn insert_out(&mut self, out: OutTrack) -> usize {
        if let Some(i) = self.outs.iter().position(Option::is_none) {
            self.outs[i] = Some(out);
            i
        } else {
            self.outs.push(Some(out));
            self.outs.len() - 1
        }
    }

    /// The participant's own deadline: the `Rtc`'s, or an ICE timeout.
    pub(crate) fn deadline(&self, grace: Duration) -> Instant {
        match self.ice.deadline(grace) {
            Some(t) => t.min(self.rtc_deadline),
            None => self.rtc_deadline,
        }
    }

    /// Whether ICE has given up on this participant at `now`.
    pub(crate) fn ice_failed(&self, now: Instant, grace: Duration) -> bool {
        self.ice.deadline(grace).is_some_and(|t| t <= now)
    }

    /// Feed `input` to the `Rtc`.
    pub(crate) fn input(&mut self, input: Input<'_>) -> Result<(), String> {
        match guarded(|| self.rtc.handle_input(input)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e),
        }
    }

    /// Poll the `Rtc` until it has nothing more to say, turning its output into transmits and
    /// effects. On failure the participant is reported with [`Effect::Fail`].
    pub(crate) fn drain(&mut self, now: Instant, pix: Pix, out: &mut Sinks<'_>) {
        self.dirty = false;
        if std::mem::take(&mut self.needs_tick) {
            if let Err(e) = self.input(Input::Timeout(now)) {
                debug!(participant = %self.id, "media engine failed: {e}");
                out.effects.push_back(Effect::Fail(pix, LeaveReason::Internal));
                return;
            }
        }
        loop {
            let output = match guarded(|| self.rtc.poll_output()) {
                Ok(Ok(output)) => output,
                Ok(Err(e)) => {
                    debug!(participant = %self.id, "media engine failed: {e}");
                    out.effects.push_back(Effect::Fail(pix, LeaveReason::MediaFailed));
                    return;
                }
                Err(e) => {
                    debug!(participant = %self.id, "{e}");
                    out.effects.push_back(Effect::Fail(pix, LeaveReason::Internal));
                    return;
                }
            };
            match output {
                Output::Timeout(t) => {
                    self.rtc_deadline = t;
                    if !self.rtc.is_alive() {
                        out.effects.push_back(Effect::Fail(pix, LeaveReason::MediaFailed));
                    }
                    return;
                }
                Output::Transmit(t) => {
                    let transport = match t.proto {
                        Protocol::Udp => Transport::Udp,
                        Protocol::Tcp => Transport::Tcp,
                        // Only UDP and TCP candidates are offered.
                        _ => continue,
                    };
                    // str0m only sends to addresses its ICE agent validated: route them here.
                    if out.router.learn_addr(transport, t.destination, pix) {
                        self.addrs.push((transport, t.destination));
                    }
                    out.stats.datagrams_out += 1;
                    out.stats.bytes_out += t.contents.len() as u64;
                    out.transmits.push_back(Transmit {
                        transport,
                        source: t.source,
                        destination: t.destination,
                        contents: t.contents.into(),
                    });
                }
                Output::Event(event) => self.on_event(now, pix, event, out),
            }
        }
    }

    fn on_event(&mut self, now: Instant, pix: Pix, event: RtcEvent, out: &mut Sinks<'_>) {
        match event {
            RtcEvent::RtpPacket(packet) => {
                out.stats.rtp_in += 1;
                out.effects.push_back(Effect::Media(pix, packet));
            }
            RtcEvent::MediaAdded(m) if m.direction.is_receiving() => {
                out.effects.push_back(Effect::Publish(pix, m.mid, m.kind));
            }
            RtcEvent::MediaAdded(m) if matches!(self.role, Role::Viewer(_)) && m.direction.is_sending() => {
                out.effects.push_back(Effect::Attach(pix, m.mid, m.kind));
            }
            RtcEvent::MediaChanged(m) => {
                let publishing = self.published(m.mid).is_some();
                if publishing && !m.direction.is_receiving() {
                    out.effects.push_back(Effect::Unpublish(pix, m.mid));
                } else if !publishing && m.direction.is_receiving() && !self.is_out_mid(m.mid) {
                    if let Some(media) = self.rtc.media(m.mid) {
                        out.effects.push_back(Effect::Publish(pix, m.mid, media.kind()));
                    }
                }
            }
            RtcEvent::KeyframeRequest(req) => {
                out.effects.push_back(Effect::KeyframeRequest(pix, req.mid, req.kind));
            }
            RtcEvent::IceConnectionStateChange(state) => {
                debug!(participant = %self.id, ?state, "ICE");
                self.ice.on_state(now, state);
                match state {
                    IceConnectionState::Connected | IceConnectionState::Completed => self.downlink.path_up(now),
                    IceConnectionState::Disconnected => self.downlink.path_down(),
                    IceConnectionState::Checking if self.media_connected => self.downlink.path_down(),
                    IceConnectionState::New | IceConnectionState::Checking => {}
                }
            }
            RtcEvent::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                trace!(participant = %self.id, %estimate, "estimate");
                self.downlink.estimated(estimate.as_u64());
            }
            RtcEvent::PeerStats(stats) => {
                trace!(participant = %self.id, loss = ?stats.egress_loss_fraction, rtt = ?stats.rtt, "downlink stats");
                self.downlink.observe(now, stats.egress_loss_fraction, stats.rtt);
            }
            RtcEvent::MediaEgressStats(s) => {
                let [nacks, keyframes] = self.rtcp_counts.delta((s.mid, s.rid, true), [s.nacks, s.plis + s.firs]);
                out.stats.nacks_received += nacks;
                out.stats.keyframe_requests_received += keyframes;
            }
            RtcEvent::MediaIngressStats(s) => {
                let [nacks, _] = self.rtcp_counts.delta((s.mid, s.rid, false), [s.nacks, 0]);
                out.stats.nacks_sent += nacks;
            }
            RtcEvent::ChannelOpen(id, label) => {
                debug!(participant = %self.id, %label, "data channel open");
                self.channels.opened(&label, id);
            }
            RtcEvent::ChannelData(d) => out.effects.push_back(Effect::Data(pix, d.id, d.data)),
            RtcEvent::ChannelClose(id) => self.channels.closed(id),
            RtcEvent::Connected => {
                debug!(participant = %self.id, "media connected");
                self.media_connected = true;
                out.effects.push_back(Effect::Connected(pix));
            }
            other => trace!(participant = %self.id, ?other, "rtc event"),
        }
    }
}

/// The last cumulative NACK and keyframe-request counts str0m reported per stream (mid, rid,
/// egress), so that each stats event adds only what is new to the SFU's counters.
#[derive(Debug, Default)]
pub(crate) struct RtcpCounts(Vec<((Mid, Option<Rid>, bool), [u64; 2])>);

impl RtcpCounts {
    /// Record `now` for `stream`; returns the increase since the last report (a stream whose
    /// counts went down started over: nothing is added).
    pub(crate) fn delta(&mut self, stream: (Mid, Option<Rid>, bool), now: [u64; 2]) -> [u64; 2] {
        match self.0.iter_mut().find(|(k, _)| *k == stream) {
            Some((_, last)) => {
                let d = [now[0].saturating_sub(last[0]), now[1].saturating_sub(last[1])];
                *last = now;
                d
            }
            None => {
                self.0.push((stream, now));
                now
            }
        }
    }
}

//! Offers, answers, candidates and mutes from participants.
//!
//! The negotiation rule (docs/protocol.md): either side may offer; the SFU is the polite peer. A
//! participant's offer that crosses an outstanding SFU offer wins: str0m's `accept_offer` rolls
//! the SFU's offer back, the participant gets its answer, and [`Sfu::negotiate`] offers whatever
//! is still missing. Nothing is lost, because what a participant should receive is kept as state
//! ([`OutState`]) and reconciled after every exchange, not as a queue of changes.

use std::time::Instant;

use str0m::Candidate;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{KeyframeRequestKind, Mid, Rid};

use crate::api::{Signal, TrackMeta};
use crate::error::Error;
use crate::participant::{Effect, guarded};
use crate::slots::Pix;
use crate::track::OutState;
use crate::{LeaveReason, Sfu};

/// Whether an SDP offer sends audio or video: an open audio or video m-section that is
/// `sendrecv` (the default) or `sendonly`.
fn sends_media(sdp: &str) -> bool {
    let mut open_media = false;
    let mut direction = "sendrecv";
    let mut sends = false;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(m) = line.strip_prefix("m=") {
            sends |= open_media && matches!(direction, "sendrecv" | "sendonly");
            let mut fields = m.split(' ');
            let kind = fields.next().unwrap_or("");
            open_media = matches!(kind, "audio" | "video") && fields.next().is_some_and(|port| port != "0");
            direction = "sendrecv";
        } else if let Some(d) = line.strip_prefix("a=").filter(|d| matches!(*d, "sendrecv" | "sendonly" | "recvonly" | "inactive")) {
            direction = d;
        }
    }
    sends || (open_media && matches!(direction, "sendrecv" | "sendonly"))
}

impl Sfu {
    pub(crate) fn client_offer(
        &mut self,
        now: Instant,
        pix: Pix,
        sdp: &str,
        tracks: Vec<(String, TrackMeta)>,
    ) -> Result<(), Error> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| Error::InvalidSdp(e.to_string()))?;
        let connect_timeout = self.config.ice_connect_timeout;
        let p = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
        for (mid, meta) in tracks {
            match p.meta.iter_mut().find(|(m, _)| *m == mid) {
                Some(entry) => entry.1 = meta,
                None => p.meta.push((mid, meta)),
            }
        }
        // Our outstanding offer, if any, is rolled back by accept_offer.
        p.void_offer();
        let rtc = &mut p.rtc;
        let result = guarded(|| rtc.sdp_api().accept_offer(offer));
        self.mark_dirty(pix);
        match result {
            Ok(Ok(answer)) => {
                let p = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
                p.ice.exchanged(now, connect_timeout);
                // An offer with new ICE credentials restarts ICE (a client whose network
                // changed): str0m answers with a local ufrag of its own, which must route.
                let ufrag = p.rtc.direct_api().local_ice_credentials().ufrag;
                if ufrag != p.ufrag {
                    let old = std::mem::replace(&mut p.ufrag, ufrag.clone());
                    tracing::debug!(participant = %p.id, "ICE restart");
                    self.router.remove_ufrag(&old, pix);
                    self.router.add_ufrag(ufrag, pix);
                }
                let p = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
                let refused = !p.grants.publish && sends_media(sdp);
                let room = p.room.clone();
                let p2p = self.room_mode(&room) == crate::api::RoomMode::P2p;
                self.signal(pix, Signal::Answer { sdp: answer.to_sdp_string() });
                self.announce(pix);
                self.negotiate(pix);
                if refused && p2p {
                    return Err(Error::NotAllowed("publishing: this room is peer-to-peer, so the server forwards none of your audio and video (send it on your direct connections)"));
                }
                if refused {
                    return Err(Error::NotAllowed("publishing: your access token does not grant canPublish, so your audio and video are not forwarded"));
                }
                Ok(())
            }
            Ok(Err(e)) => {
                self.negotiate(pix);
                Err(Error::InvalidSdp(e.to_string()))
            }
            Err(e) => {
                self.effects.push_back(Effect::Fail(pix, LeaveReason::Internal));
                Err(Error::Engine(e))
            }
        }
    }

    pub(crate) fn client_answer(&mut self, now: Instant, pix: Pix, id: u64, sdp: &str) -> Result<(), Error> {
        let connect_timeout = self.config.ice_connect_timeout;
        let p = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
        let expected = p.offers.outstanding.as_ref().map(|(i, _)| *i);
        if expected != Some(id) {
            return Err(Error::StaleAnswer { expected, got: id });
        }
        // A garbled answer leaves the offer outstanding, so a corrected answer can follow.
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| Error::InvalidSdp(e.to_string()))?;
        let Some((_, pending)) = p.offers.outstanding.take() else {
            return Err(Error::StaleAnswer { expected, got: id });
        };
        let rtc = &mut p.rtc;
        let result = guarded(|| rtc.sdp_api().accept_answer(pending, answer));
        self.mark_dirty(pix);
        match result {
            Ok(Ok(())) => {
                let p = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
                p.ice.exchanged(now, connect_timeout);
                let connected = p.media_connected;
                let mut started = Vec::new();
                for out in p.outs.iter_mut().flatten() {
                    if let OutState::Offered(mid) = out.state {
                        out.state = OutState::Active(mid);
                        if let Some((publisher, mid)) = out.source {
                            started.push((publisher, mid, out.forwarder.target()));
                        }
                    }
                }
                // New subscribers of video start from a keyframe: ask for one now, or when the
                // subscriber's media connection is up (a keyframe before that would be lost).
                if connected {
                    for (publisher, mid, layer) in started {
                        self.request_keyframe(now, publisher, mid, layer);
                    }
                }
                self.negotiate(pix);
                Ok(())
            }
            Ok(Err(e)) => {
                // The offer is void (its pending token is spent).
                if let Some(p) = self.participants.get_mut(pix) {
                    p.void_offer();
                }
                self.negotiate(pix);
                Err(Error::InvalidSdp(e.to_string()))
            }
            Err(e) => {
                self.effects.push_back(Effect::Fail(pix, LeaveReason::Internal));
                Err(Error::Engine(e))
            }
        }
    }

    pub(crate) fn remote_candidate(&mut self, pix: Pix, line: &str) -> Result<(), Error> {
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        let candidate = Candidate::from_sdp_string(line).map_err(|e| Error::InvalidCandidate(e.to_string()))?;
        let p = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
        let rtc = &mut p.rtc;
        if let Err(e) = guarded(|| rtc.add_remote_candidate(candidate)) {
            self.effects.push_back(Effect::Fail(pix, LeaveReason::Internal));
            return Err(Error::Engine(e));
        }
        self.mark_dirty(pix);
        Ok(())
    }

    pub(crate) fn mute(&mut self, now: Instant, pix: Pix, track: &str, muted: bool) -> Result<(), Error> {
        let p = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
        let Some(t) = p.published.iter_mut().find(|t| t.id == track) else {
            // A track declared in the participant's offer but not yet flowing: remember it.
            if let Some(entry) = p.meta.iter_mut().find(|(m, _)| m == track) {
                entry.1.muted = muted;
                return Ok(());
            }
            return Err(Error::UnknownTrack(track.to_string()));
        };
        if t.muted == muted {
            return Ok(());
        }
        t.muted = muted;
        let (mid, video) = (t.mid, t.is_video());
        let (participant, room) = (p.id.clone(), p.room.clone());
        if let Some(entry) = p.meta.iter_mut().find(|(m, _)| *m == track) {
            entry.1.muted = muted;
        }
        for other in self.members(&room, Some(pix)) {
            let signal = Signal::TrackMuted { participant: participant.clone(), track: track.to_string(), muted };
            self.signal(other, signal);
        }
        if !muted && video {
            self.request_keyframe(now, pix, mid, None);
        }
        Ok(())
    }

    /// The participant's media connection came up: ask the publishers of everything it receives
    /// for a keyframe of the layer it gets, so its video starts at once.
    pub(crate) fn media_connected(&mut self, now: Instant, pix: Pix) {
        let sources: Vec<_> = self
            .participants
            .get(pix)
            .map(|p| {
                p.outs
                    .iter()
                    .flatten()
                    .filter(|o| o.active_mid().is_some())
                    .filter_map(|o| o.source.map(|(publisher, mid)| (publisher, mid, o.forwarder.target())))
                    .collect()
            })
            .unwrap_or_default();
        for (publisher, mid, layer) in sources {
            self.request_keyframe(now, publisher, mid, layer);
        }
    }

    /// A subscriber's decoder asked for a keyframe on its m-line `mid`: pass it to the publisher,
    /// for the layer the subscriber receives.
    pub(crate) fn subscriber_wants_keyframe(&mut self, now: Instant, pix: Pix, mid: Mid) {
        let source = self
            .participants
            .get_mut(pix)
            .and_then(|s| s.out_by_active_mid(mid))
            .and_then(|o| o.source.map(|source| (source, o.forwarder.current().or(o.forwarder.target()))));
        if let Some(((publisher, track), layer)) = source {
            self.request_keyframe(now, publisher, track, layer);
        }
    }

    /// Ask `publisher` for a keyframe of layer `layer` (`None`: every layer) of its track `mid`,
    /// at most once per interval per layer.
    pub(crate) fn request_keyframe(&mut self, now: Instant, publisher: Pix, mid: Mid, layer: Option<u8>) {
        let interval = self.config.keyframe_request_interval;
        let Some(p) = self.participants.get_mut(publisher) else { return };
        let Some(track) = p.published.iter_mut().find(|t| t.mid == mid) else { return };
        if !track.is_video() {
            return;
        }
        let mut rids = Vec::new();
        for l in track.layers.iter_mut().filter(|l| layer.is_none_or(|x| x == l.index)) {
            if l.keyframes.request(now, interval) {
                rids.push(l.rid);
            }
        }
        // Nothing received yet: ask the stream str0m knows for the m-line.
        if track.layers.is_empty() {
            rids.push(None);
        }
        for rid in rids {
            self.send_keyframe_request(publisher, mid, rid);
        }
    }

    pub(crate) fn send_keyframe_request(&mut self, publisher: Pix, mid: Mid, rid: Option<Rid>) {
        let Some(p) = self.participants.get_mut(publisher) else { return };
        let rtc = &mut p.rtc;
        let sent = guarded(|| {
            let mut api = rtc.direct_api();
            match api.stream_rx_by_mid(mid, rid) {
                Some(rx) => {
                    rx.request_keyframe(KeyframeRequestKind::Pli);
                    true
                }
                None => false,
            }
        });
        match sent {
            Ok(true) => {
                tracing::debug!(participant = %p.id, %mid, ?rid, "keyframe requested");
                self.stats.keyframe_requests += 1;
                p.needs_tick = true;
                self.mark_dirty(publisher);
            }
            Ok(false) => {}
            Err(_) => self.effects.push_back(Effect::Fail(publisher, LeaveReason::Internal)),
        }
    }
}

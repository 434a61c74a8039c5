//! Rooms and membership: joining, leaving, publishing and unpublishing, and who subscribes to
//! what. A room is the list of its members; it exists from its first join to its last leave.

use std::time::Instant;

use str0m::media::{MediaKind, Mid};

use crate::api::{Event, LeaveReason, ParticipantId, Signal, Source};
use crate::error::Error;
use crate::participant::{IceWatch, Offers, Participant};
use crate::slots::Pix;
use crate::track::{OutState, OutTrack, Published};
use crate::Sfu;

impl Sfu {
    pub(crate) fn join(
        &mut self,
        now: Instant,
        id: ParticipantId,
        room: String,
        name: String,
    ) -> Result<(), Error> {
        if self.by_id.contains_key(&id) {
            return Err(Error::DuplicateParticipant);
        }
        let mut rtc = self.new_rtc(now);
        for addr in &self.config.candidates {
            // Checked in `Sfu::new`.
            if let Ok(c) = str0m::Candidate::host(*addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let generation = self.next_generation();
        let participant = Participant {
            id: id.clone(),
            name,
            room: room.clone(),
            generation,
            rtc,
            ufrag: ufrag.clone(),
            addrs: Vec::new(),
            published: Vec::new(),
            outs: Vec::new(),
            ssrcs: Vec::new(),
            meta: Vec::new(),
            offers: Offers::default(),
            ice: IceWatch::default(),
            media_connected: false,
            rtc_deadline: now,
            scheduled: None,
            dirty: false,
            needs_tick: false,
            downlink: Default::default(),
            bwe_rates: (0, 0),
        };
        let you = participant.info();
        let pix = self.participants.insert(participant);
        self.by_id.insert(id.clone(), pix);
        self.router.add_ufrag(ufrag, pix);
        let members = self.rooms.entry(room.clone()).or_default();
        let others: Vec<Pix> = members.clone();
        members.push(pix);
        self.stats.participants += 1;
        self.stats.rooms = self.rooms.len() as u64;

        let others_info = others
            .iter()
            .filter_map(|&o| self.participants.get(o).map(Participant::info))
            .collect();
        self.signal(pix, Signal::Joined { room, you: you.clone(), others: others_info });
        for &o in &others {
            self.signal(o, Signal::ParticipantJoined(you.clone()));
        }
        // Receive everything already published in the room.
        for &o in &others {
            let mids: Vec<Mid> = self
                .participants
                .get(o)
                .map(|p| p.published.iter().map(|t| t.mid).collect())
                .unwrap_or_default();
            for mid in mids {
                self.subscribe(pix, o, mid);
            }
        }
        self.negotiate(pix);
        self.mark_dirty(pix);
        Ok(())
    }

    /// `pix` started sending on `mid`: a new track for the room.
    pub(crate) fn publish(&mut self, pix: Pix, mid: Mid, kind: MediaKind) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        if p.published(mid).is_some() || p.is_out_mid(mid) {
            return;
        }
        let meta = p
            .meta
            .iter()
            .find(|(m, _)| *m == *mid)
            .map(|(_, meta)| meta.clone())
            .unwrap_or_default();
        let source = meta.source.unwrap_or(match kind {
            MediaKind::Audio => Source::Microphone,
            MediaKind::Video => Source::Camera,
        });
        let track = Published::new(mid, kind, source, meta.muted);
        let info = track.info();
        p.published.push(track);
        let publisher = p.id.clone();
        let room = p.room.clone();
        tracing::info!(participant = %publisher, track = %info.id, ?kind, "published");

        for other in self.members(&room, Some(pix)) {
            self.signal(other, Signal::TrackPublished { participant: publisher.clone(), track: info.clone() });
            self.subscribe(other, pix, mid);
            self.negotiate(other);
        }
    }

    /// `pix` stopped sending on `mid`.
    pub(crate) fn unpublish(&mut self, pix: Pix, mid: Mid) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        let Some(i) = p.published.iter().position(|t| t.mid == mid) else { return };
        let track = p.published.remove(i);
        let publisher = p.id.clone();
        let room = p.room.clone();
        tracing::info!(participant = %publisher, track = %track.id, "unpublished");
        self.drop_subscribers(&track);
        for other in self.members(&room, Some(pix)) {
            self.signal(other, Signal::TrackUnpublished { participant: publisher.clone(), track: track.id.clone() });
        }
    }

    /// Make `sub` receive the track `mid` of `publisher`.
    fn subscribe(&mut self, sub: Pix, publisher: Pix, mid: Mid) {
        let Some(p) = self.participants.get(publisher) else { return };
        let Some(track) = p.published(mid) else { return };
        let out = OutTrack::new((publisher, mid), p.id.clone(), track.id.clone(), track.kind);
        let Some(s) = self.participants.get_mut(sub) else { return };
        let slot = s.insert_out(out);
        if let Some(track) = self.participants.get_mut(publisher).and_then(|p| p.published_mut(mid)) {
            track.subscribers.push((sub, slot));
        }
    }

    /// Detach every subscriber of a track that is going away; their m-lines stop at their next
    /// negotiation.
    fn drop_subscribers(&mut self, track: &Published) {
        for &(sub, slot) in &track.subscribers {
            if let Some(out) = self
                .participants
                .get_mut(sub)
                .and_then(|s| s.outs.get_mut(slot))
                .and_then(Option::as_mut)
            {
                out.source = None;
            }
            self.negotiate(sub);
        }
    }

    /// Remove a participant and everything that refers to it, and tell its room.
    pub(crate) fn remove(&mut self, pix: Pix, reason: LeaveReason) {
        let Some(mut p) = self.participants.remove(pix) else { return };
        tracing::info!(participant = %p.id, room = %p.room, ?reason, "left");
        p.rtc.disconnect();
        self.by_id.remove(&p.id);
        self.router.remove_ufrag(&p.ufrag, pix);
        for addr in &p.addrs {
            self.router.remove_addr(*addr, pix);
        }
        // Stop receiving: leave the subscriber lists of the tracks it received.
        for (slot, out) in p.outs.iter().enumerate() {
            let Some((publisher, mid)) = out.as_ref().and_then(|o| o.source) else { continue };
            if let Some(track) = self.participants.get_mut(publisher).and_then(|q| q.published_mut(mid)) {
                track.subscribers.retain(|&s| s != (pix, slot));
            }
        }
        let members = self.members(&p.room, Some(pix));
        for track in &p.published {
            self.drop_subscribers(track);
            for &other in &members {
                self.signal(other, Signal::TrackUnpublished { participant: p.id.clone(), track: track.id.clone() });
            }
        }
        for &other in &members {
            self.signal(other, Signal::ParticipantLeft { participant: p.id.clone(), reason });
        }
        self.stats.participants = self.stats.participants.saturating_sub(1);
        if let Some(list) = self.rooms.get_mut(&p.room) {
            list.retain(|&m| m != pix);
            if list.is_empty() {
                self.rooms.remove(&p.room);
                tracing::info!(room = %p.room, "room closed");
                self.events.push_back(Event::RoomClosed { room: p.room.clone() });
            }
        }
        self.stats.rooms = self.rooms.len() as u64;
    }

    /// Offer the participant what it should receive and does not yet, and stop what it should no
    /// longer receive; unless an offer is already outstanding (then this runs again when it
    /// completes).
    pub(crate) fn negotiate(&mut self, pix: Pix) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        if p.offers.outstanding.is_some() {
            return;
        }
        // Tracks that went away before they were ever offered need no negotiation.
        for out in &mut p.outs {
            if out.as_ref().is_some_and(|o| o.source.is_none() && o.state == OutState::New) {
                *out = None;
            }
        }
        let outs = &mut p.outs;
        let rtc = &mut p.rtc;
        let built = crate::participant::guarded(|| {
            let mut api = rtc.sdp_api();
            for slot in outs.iter_mut() {
                let Some(out) = slot else { continue };
                match (out.state, out.source.is_some()) {
                    (OutState::New, true) => {
                        let stream = out.publisher.to_string();
                        let track = format!("{}-{}", out.publisher, out.track);
                        let mid = api.add_media(out.kind, str0m::media::Direction::SendOnly, Some(stream), Some(track), None);
                        out.state = OutState::Offered(mid);
                    }
                    (OutState::Active(mid), false) => {
                        // Stopping is immediate locally: every SDP from here on has port 0.
                        api.stop_media(mid);
                        *slot = None;
                    }
                    _ => {}
                }
            }
            api.apply()
        });
        let applied = match built {
            Ok(applied) => applied,
            Err(e) => {
                tracing::warn!(participant = %p.id, "building an offer failed: {e}");
                self.effects.push_back(crate::participant::Effect::Fail(pix, LeaveReason::Internal));
                return;
            }
        };
        self.mark_dirty(pix);
        let Some((offer, pending)) = applied else { return };
        let Some(p) = self.participants.get_mut(pix) else { return };
        p.offers.next_id += 1;
        let id = p.offers.next_id;
        p.offers.outstanding = Some((id, pending));
        let tracks = p
            .outs
            .iter()
            .flatten()
            .filter(|o| o.source.is_some())
            .filter_map(|o| o.mid().map(|mid| (mid.to_string(), o.publisher.clone(), o.track.clone())))
            .collect();
        self.signal(pix, Signal::Offer { id, sdp: offer.to_sdp_string(), tracks });
    }

    /// The other members of `room`.
    pub(crate) fn members(&self, room: &str, except: Option<Pix>) -> Vec<Pix> {
        self.rooms
            .get(room)
            .map(|m| m.iter().copied().filter(|&p| Some(p) != except).collect())
            .unwrap_or_default()
    }

    pub(crate) fn signal(&mut self, to: Pix, signal: Signal) {
        if let Some(p) = self.participants.get(to) {
            self.events.push_back(Event::Signal { to: p.id.clone(), signal });
        }
    }
}

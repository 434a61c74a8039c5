//! Rooms and membership: joining, leaving, publishing and unpublishing, and who subscribes to
//! what. A room is the list of its members; it exists from its first join to its last leave.

use std::time::Instant;

use str0m::media::{MediaKind, Mid};

use crate::api::{Activity, Event, LeaveReason, ParticipantId, Role, RoomMode, Signal, Source};
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
        role: Role,
        mut grants: crate::api::Grants,
        mode: RoomMode,
    ) -> Result<(), Error> {
        if self.by_id.contains_key(&id) {
            return Err(Error::DuplicateParticipant);
        }
        let room_mode = if self.rooms.contains_key(&room) { self.room_mode(&room) } else { mode };
        if room_mode == RoomMode::P2p {
            if role != Role::Member {
                return Err(Error::PeerToPeerRoom);
            }
            // Its media goes directly to the others: the SFU neither forwards nor offers any.
            grants.publish = false;
            grants.subscribe = false;
        }
        if let Role::Viewer(wanted) = &role {
            if self.watched(&room, wanted.as_ref()).is_none() {
                return Err(Error::NoPublisher);
            }
        }
        let mut rtc = self.new_rtc(now);
        for c in &self.local_candidates {
            rtc.add_local_candidate(c.clone());
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
            role: role.clone(),
            grants,
            rtcp_counts: Default::default(),
            viewer_mids: Vec::new(),
            announced: role == Role::Member,
            channels: Default::default(),
            data_allowance: Default::default(),
            addrs: Vec::new(),
            published: Vec::new(),
            outs: Vec::new(),
            ssrcs: Vec::new(),
            meta: Vec::new(),
            offers: Offers::default(),
            ice: IceWatch::default(),
            media_connected: false,
            suspended: false,
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
        if members.is_empty() {
            self.events.push_back(Event::Activity(Activity::RoomStarted { room: room.clone() }));
        }
        let others: Vec<Pix> = members.clone();
        members.push(pix);
        self.stats.participants += 1;
        self.stats.rooms = self.rooms.len() as u64;
        let path = self.update_path(&room, room_mode, Some(pix));

        let others_info = self.roster(&room, pix);
        self.signal(pix, Signal::Joined { room: room.clone(), mode: room_mode, path, you: you.clone(), others: others_info });
        if role != Role::Member {
            // A viewer is not shown to the room, and what it receives is bound when its offer
            // comes; a WHIP publisher is shown when its offer is accepted (`announce`).
            return Ok(());
        }
        for &o in &others {
            self.signal(o, Signal::ParticipantJoined(you.clone()));
        }
        self.events.push_back(Event::Activity(Activity::ParticipantJoined { room: room.clone(), participant: you.clone() }));
        // Receive everything already published in the room.
        for &o in others.iter().filter(|_| grants.subscribe) {
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
    pub(crate) fn publish(&mut self, now: Instant, pix: Pix, mid: Mid, kind: MediaKind) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        // Without the grant its media is refused: the m-line stays, nothing is forwarded.
        if p.published(mid).is_some() || p.is_out_mid(mid) || !p.grants.publish {
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
        self.events.push_back(Event::Activity(Activity::TrackPublished { room: room.clone(), participant: publisher.clone(), track: info.clone() }));

        for other in self.members(&room, Some(pix)) {
            match self.participants.get(other).map(|o| &o.role) {
                Some(Role::Member) => {
                    self.signal(other, Signal::TrackPublished { participant: publisher.clone(), track: info.clone() });
                    if self.participants.get(other).is_some_and(|o| o.grants.subscribe) {
                        self.subscribe(other, pix, mid);
                        self.negotiate(other);
                    }
                }
                Some(Role::Publisher) => {
                    self.signal(other, Signal::TrackPublished { participant: publisher.clone(), track: info.clone() });
                }
                // A viewer's empty m-line may be waiting for this track.
                Some(Role::Viewer(_)) => self.bind_viewer(now, other),
                None => {}
            }
        }
    }

    /// `pix` stopped sending on `mid`.
    pub(crate) fn unpublish(&mut self, now: Instant, pix: Pix, mid: Mid) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        let Some(i) = p.published.iter().position(|t| t.mid == mid) else { return };
        let track = p.published.remove(i);
        let publisher = p.id.clone();
        let room = p.room.clone();
        tracing::info!(participant = %publisher, track = %track.id, "unpublished");
        self.events.push_back(Event::Activity(Activity::TrackUnpublished { room: room.clone(), participant: publisher.clone(), track: track.id.clone() }));
        self.drop_subscribers(now, &track);
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
    fn drop_subscribers(&mut self, now: Instant, track: &Published) {
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
            // A viewer moves on to the next publisher (or the same one's other track).
            self.bind_viewer(now, sub);
        }
    }

    /// Tell the room about a participant that was not announced at its join (a WHIP publisher,
    /// once its offer was accepted).
    pub(crate) fn announce(&mut self, pix: Pix) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        if p.announced || p.is_viewer() {
            return;
        }
        p.announced = true;
        let info = p.info();
        let room = p.room.clone();
        for other in self.members(&room, Some(pix)) {
            self.signal(other, Signal::ParticipantJoined(info.clone()));
        }
        self.events.push_back(Event::Activity(Activity::ParticipantJoined { room, participant: info }));
    }

    /// The publisher a viewer of `room` asking for `wanted` watches: that participant if it is
    /// in the room, else (`None`) the earliest member still present that publishes something or
    /// came to publish only (a WHIP publisher whose media is still connecting).
    pub(crate) fn watched(&self, room: &str, wanted: Option<&ParticipantId>) -> Option<Pix> {
        let members = self.rooms.get(room)?;
        match wanted {
            Some(id) => self.by_id.get(id).copied().filter(|pix| members.contains(pix)),
            None => members.iter().copied().find(|&m| {
                self.participants
                    .get(m)
                    .is_some_and(|p| !p.is_viewer() && (!p.published.is_empty() || p.role == Role::Publisher))
            }),
        }
    }

    /// A viewer's offer added `mid`: remember it and bind what can be bound.
    pub(crate) fn attach_viewer(&mut self, now: Instant, pix: Pix, mid: Mid, kind: MediaKind) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        if !p.viewer_mids.iter().any(|(m, _)| *m == mid) {
            p.viewer_mids.push((mid, kind));
        }
        self.bind_viewer(now, pix);
    }

    /// Bind each of a viewer's m-lines that has no live track to a track of its publisher of the
    /// same kind (camera before screen share, microphone before screen audio), keeping the
    /// outgoing stream (a new publisher continues it, from a keyframe).
    pub(crate) fn bind_viewer(&mut self, now: Instant, pix: Pix) {
        let Some(v) = self.participants.get(pix) else { return };
        let Role::Viewer(wanted) = &v.role else { return };
        let Some(publisher) = self.watched(&v.room, wanted.as_ref()) else { return };
        let Some(p) = self.participants.get(publisher) else { return };
        let mut picks = Vec::new();
        for &(mid, kind) in &v.viewer_mids {
            let bound = v.outs.iter().flatten().any(|o| o.active_mid() == Some(mid) && o.source.is_some());
            if bound {
                continue;
            }
            let taken = |t: &Published| {
                v.outs.iter().flatten().any(|o| o.source == Some((publisher, t.mid)))
                    || picks.iter().any(|(_, m, _, _)| *m == t.mid)
            };
            let mut candidates: Vec<&Published> = p.published.iter().filter(|t| t.kind == kind && !taken(t)).collect();
            candidates.sort_by_key(|t| matches!(t.source, Source::Screen | Source::ScreenAudio));
            if let Some(t) = candidates.first() {
                picks.push((mid, t.mid, t.id.clone(), kind));
            }
        }
        let publisher_id = p.id.clone();
        for (mid, track_mid, track_id, kind) in picks {
            let Some(v) = self.participants.get_mut(pix) else { return };
            let slot = match v.outs.iter().position(|o| o.as_ref().is_some_and(|o| o.active_mid() == Some(mid))) {
                Some(slot) => {
                    // Continue the stream the viewer already decodes: same forwarder, paused
                    // until the new track's first keyframe.
                    let Some(out) = v.outs[slot].as_mut() else { continue };
                    out.source = Some((publisher, track_mid));
                    out.publisher = publisher_id.clone();
                    out.track = track_id;
                    out.pt_map.clear();
                    out.forwarder.pause();
                    slot
                }
                None => {
                    let mut out = OutTrack::new((publisher, track_mid), publisher_id.clone(), track_id, kind);
                    out.state = OutState::Active(mid);
                    v.insert_out(out)
                }
            };
            let connected = v.media_connected;
            if let Some(track) = self.participants.get_mut(publisher).and_then(|p| p.published_mut(track_mid)) {
                track.subscribers.push((pix, slot));
            }
            if connected {
                let layer = self.participants.get(pix).and_then(|v| v.outs[slot].as_ref()).and_then(|o| o.forwarder.target());
                self.request_keyframe(now, publisher, track_mid, layer);
            }
        }
        self.mark_dirty(pix);
    }

    /// Remove a participant and everything that refers to it, and tell its room.
    pub(crate) fn remove(&mut self, now: Instant, pix: Pix, reason: LeaveReason) {
        let Some(mut p) = self.participants.remove(pix) else { return };
        tracing::info!(participant = %p.id, room = %p.room, ?reason, "left");
        p.rtc.disconnect();
        self.by_id.remove(&p.id);
        self.router.remove_ufrag(&p.ufrag, pix);
        for &(transport, addr) in &p.addrs {
            self.router.remove_addr(transport, addr, pix);
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
            self.events.push_back(Event::Activity(Activity::TrackUnpublished { room: p.room.clone(), participant: p.id.clone(), track: track.id.clone() }));
            self.drop_subscribers(now, track);
            for &other in &members {
                self.signal(other, Signal::TrackUnpublished { participant: p.id.clone(), track: track.id.clone() });
            }
        }
        if p.announced {
            for &other in &members {
                self.signal(other, Signal::ParticipantLeft { participant: p.id.clone(), reason });
            }
            self.events.push_back(Event::Activity(Activity::ParticipantLeft { room: p.room.clone(), participant: p.id.clone(), reason }));
        }
        self.stats.participants = self.stats.participants.saturating_sub(1);
        if let Some(list) = self.rooms.get_mut(&p.room) {
            list.retain(|&m| m != pix);
            if list.is_empty() {
                self.rooms.remove(&p.room);
                self.paths.remove(&p.room);
                tracing::info!(room = %p.room, "room closed");
                self.events.push_back(Event::RoomClosed { room: p.room.clone() });
            }
        }
        self.stats.rooms = self.rooms.len() as u64;
        if self.rooms.contains_key(&p.room) {
            self.update_path(&p.room, RoomMode::Sfu, None);
        }
    }

    /// Offer the participant what it should receive and does not yet, and stop what it should no
    /// longer receive; unless an offer is already outstanding (then this runs again when it
    /// completes).
    pub(crate) fn negotiate(&mut self, pix: Pix) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        if p.offers.outstanding.is_some() || p.role != Role::Member {
            // WHIP and WHEP sessions cannot renegotiate.
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

    /// The participants of `room` shown to `pix` in a `Joined`: the others that are announced.
    pub(crate) fn roster(&self, room: &str, pix: Pix) -> Vec<crate::api::ParticipantInfo> {
        self.members(room, Some(pix))
            .into_iter()
            .filter_map(|o| self.participants.get(o))
            .filter(|o| o.announced)
            .map(Participant::info)
            .collect()
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

//! Forwarding decisions for one outgoing stream: which incoming packets go out, and with which
//! sequence number, timestamp and VP8 picture ids.
//!
//! A [`Forwarder`] sits between one published track (one or several simulcast layers) and one
//! subscriber's outgoing stream. It knows nothing of rooms or peers: it is handed a packet's
//! numbers and returns a [`Decision`] value that the caller carries out. The outgoing stream
//! must look like one continuous stream to the subscriber's decoder, even when forwarding pauses
//! (mute, bandwidth, waiting for a keyframe), resumes, or switches between simulcast layers. So:
//!
//! - a *run* of forwarded packets comes from one layer and keeps the source's spacing
//!   (out = in + delta), so a packet lost upstream leaves a gap the subscriber NACKs, and the
//!   repaired packet fills it when it arrives;
//! - at every *resume or switch* the deltas are recomputed so the new run continues right after
//!   the last packet sent: no sequence gap for what was dropped on purpose; timestamps that move
//!   forward by the media time that passed (taken from the layers' Sender Reports when the
//!   caller could map the layer onto the track's reference clock, else from the wall clock);
//!   VP8 PictureID, TL0PICIDX and KEYIDX that continue from the last ones sent;
//! - video starts a run only on the first packet of a keyframe *of the target layer*; until
//!   then the current layer (if any) goes on, so a switch never shows a frozen frame;
//! - packets older than the run's start, or of another layer, are dropped.
//!
//! Within a run, VP8 temporal layers above the *temporal cap* are dropped (a lower frame rate
//! for less bandwidth). Going down takes effect at the next frame; going up only at a frame of
//! the next temporal layer with its layer-sync bit (it references the base layer only), or at a
//! keyframe. What is dropped on purpose leaves no gap: each dropped packet takes one off the
//! sequence delta, each dropped frame one off the PictureID delta. The ranges dropped are
//! remembered (the last [`DROP_MEMORY`]), so a late packet (a retransmission, a reordering)
//! still gets the numbers of its place, and a late packet of a dropped range is dropped again.
//!
//! Sequence numbers are extended (64-bit, no wrap); RTP timestamps wrap at 32 bits.

use std::collections::VecDeque;
use std::time::Instant;

/// How many ranges of packets dropped for their temporal layer a forwarder remembers, to number
/// late packets: at 30 frames a second with every other frame dropped, about four seconds.
pub const DROP_MEMORY: usize = 64;
/// A temporal cap that forwards every temporal layer.
pub const ALL_TEMPORAL: u8 = u8::MAX;

/// What to do with one incoming packet for one outgoing stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it with these numbers.
    Forward {
        /// Extended sequence number of the outgoing packet.
        seq: u64,
        /// RTP timestamp of the outgoing packet.
        timestamp: u32,
        /// Rewritten VP8 ids, when they differ from the packet's own.
        vp8: Option<Vp8Ids>,
        /// This packet starts a new run (a resume or a layer switch).
        started: bool,
    },
    /// Don't send it.
    Drop(DropReason),
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source is muted.
    Muted,
    /// The subscriber gets nothing of this track now (bandwidth, hidden tile).
    Paused,
    /// The target layer waits for the first packet of a keyframe; the caller should ask the
    /// publisher for one of the target layer.
    AwaitingKeyframe,
    /// The packet belongs to a layer that is not forwarded.
    OtherLayer,
    /// The packet predates the current run (it was sent before a pause or switch), or is too
    /// late to be numbered.
    Stale,
    /// The packet's VP8 temporal layer is above the temporal cap.
    TemporalLayer,
}

/// The VP8 payload descriptor ids that must continue across runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vp8Ids {
    /// PictureID (15 bits).
    pub picture_id: u16,
    /// TL0PICIDX, when present.
    pub tl0_pic_idx: Option<u8>,
    /// KEYIDX (5 bits), when present.
    pub key_idx: Option<u8>,
}

/// The numbers of one incoming packet that decisions depend on.
#[derive(Debug, Clone, Copy)]
pub struct PacketIn {
    /// Extended sequence number, as the publisher's receive stream of this layer counted it.
    pub seq: u64,
    /// RTP timestamp, mapped onto the track's reference clock when `synced`.
    pub timestamp: u32,
    /// Whether `timestamp` is on the track's reference clock (a layer whose Sender Reports tie
    /// it to the reference layer, or the reference layer itself).
    pub synced: bool,
    /// Whether this is the first packet of a keyframe (always true for audio's purposes).
    pub keyframe_start: bool,
    /// Simulcast layer (0 when the track has one).
    pub layer: u8,
    /// VP8 ids, for VP8 packets that carry a 15-bit PictureID.
    pub vp8: Option<Vp8Ids>,
    /// The VP8 temporal layer of its frame (TID) and its layer-sync bit (Y), when it has them.
    pub temporal: Option<(u8, bool)>,
    /// Whether this is the first packet of a frame.
    pub frame_start: bool,
    /// When it arrived.
    pub arrival: Instant,
}

/// A range of incoming sequence numbers dropped for their temporal layer, and the deltas that
/// apply after it.
#[derive(Debug, Clone, Copy)]
struct Dropped {
    from: u64,
    to: u64,
    seq_delta: u64,
    picture_delta: u16,
}

/// Decision state for one outgoing stream. See the module docs.
#[derive(Debug)]
pub struct Forwarder {
    video: bool,
    clock_rate: u32,
    /// The layer to forward; `None`: forward nothing.
    target: Option<u8>,
    /// The layer of the current run; `None`: not forwarding (the next run starts on a keyframe
    /// of the target layer).
    current: Option<u8>,
    /// out_seq = in_seq + seq_delta (wrapping in u64).
    seq_delta: u64,
    /// out_ts = in_ts + ts_delta (wrapping in u32).
    ts_delta: u32,
    /// Whether `ts_delta` applies to timestamps on the reference clock.
    ts_synced: bool,
    /// Deltas of the VP8 ids (wrapping in their widths).
    vp8_delta: Vp8Ids,
    /// Packets of the current run have in_seq >= this.
    run_start: u64,
    /// Highest outgoing sequence number sent, its timestamp and when it was sent.
    last: Option<LastSent>,
    /// The VP8 ids of the newest packet sent.
    last_vp8: Option<Vp8Ids>,
    /// The highest temporal layer wanted, and the one forwarded now (see the module docs).
    temporal_target: u8,
    temporal_cap: u8,
    /// The highest incoming sequence number of the run, forwarded or dropped.
    highest_in: Option<u64>,
    /// Ranges dropped for their temporal layer, oldest first (at most [`DROP_MEMORY`]).
    dropped: VecDeque<Dropped>,
    /// Late packets below this cannot be numbered any more; from it to the first range of
    /// `dropped`, these deltas apply.
    floor: u64,
    floor_deltas: (u64, u16),
    /// The PictureID of the last frame dropped for its temporal layer.
    last_dropped_picture: Option<u16>,
    /// The temporal target is 0 only until the next run (see [`Forwarder::thin_until_switch`]).
    thin: bool,
}

#[derive(Debug, Clone, Copy)]
struct LastSent {
    seq: u64,
    timestamp: u32,
    at: Instant,
}

impl Forwarder {
    /// A forwarder for a stream of `clock_rate` Hz; `video` streams start on keyframes only. It
    /// forwards layer 0 until told otherwise.
    pub fn new(video: bool, clock_rate: u32) -> Self {
        Forwarder {
            video,
            clock_rate: clock_rate.max(1),
            target: Some(0),
            current: None,
            seq_delta: 0,
            ts_delta: 0,
            ts_synced: false,
            vp8_delta: Vp8Ids::default(),
            run_start: 0,
            last: None,
            last_vp8: None,
            temporal_target: ALL_TEMPORAL,
            temporal_cap: ALL_TEMPORAL,
            highest_in: None,
            dropped: VecDeque::new(),
            floor: 0,
            floor_deltas: (0, 0),
            last_dropped_picture: None,
            thin: false,
        }
    }

    /// Forward VP8 temporal layers up to `tid` ([`ALL_TEMPORAL`]: all of them). Lower takes
    /// effect at the next frame, higher at the next layer-sync frame or keyframe.
    pub fn set_temporal(&mut self, tid: u8) {
        self.temporal_target = tid;
    }

    /// Forward only the base temporal layer until the next run starts (a layer switch or a
    /// resume), then every layer again: a spatial down-switch waits for the lower layer's
    /// keyframe, and meanwhile the layer it leaves costs a fraction of its rate.
    pub fn thin_until_switch(&mut self) {
        self.temporal_target = 0;
        self.thin = true;
    }

    /// The highest temporal layer wanted.
    pub fn temporal_target(&self) -> u8 {
        self.temporal_target
    }

    /// The highest temporal layer forwarded now.
    pub fn temporal(&self) -> u8 {
        self.temporal_cap
    }

    /// Whether the forwarder waits for a keyframe of its target layer.
    pub fn awaiting_keyframe(&self) -> bool {
        self.video && self.target.is_some() && self.current != self.target
    }

    /// The layer the current run comes from (`None` when nothing is forwarded).
    pub fn current(&self) -> Option<u8> {
        self.current
    }

    /// The layer to forward (`None`: forward nothing).
    pub fn target(&self) -> Option<u8> {
        self.target
    }

    /// Forward `layer` from now on (`None`: nothing). Video switches at the target layer's next
    /// keyframe; until then the current layer goes on. Pausing takes effect at once.
    pub fn set_target(&mut self, layer: Option<u8>) {
        if self.thin && layer.is_some() && layer == self.current {
            // The down-switch is called off: every temporal layer again (from the next
            // layer-sync frame or keyframe).
            self.thin = false;
            self.temporal_target = ALL_TEMPORAL;
        }
        self.target = layer;
        if layer.is_none() {
            self.current = None;
        }
    }

    /// Stop the current run; the next eligible packet starts a new one (on a keyframe for video).
    pub fn pause(&mut self) {
        self.current = None;
    }

    /// Decide what to do with `packet`; `muted` says whether its source is muted now.
    pub fn decide(&mut self, packet: &PacketIn, muted: bool) -> Decision {
        if muted {
            self.current = None;
            return Decision::Drop(DropReason::Muted);
        }
        let Some(target) = self.target else {
            return Decision::Drop(DropReason::Paused);
        };
        let mut started = false;
        if packet.layer == target && self.current != Some(target) {
            // Until the switch, the current layer (if any) goes on.
            if self.video && !packet.keyframe_start {
                return Decision::Drop(DropReason::AwaitingKeyframe);
            }
            self.start_run(packet);
            started = true;
        }
        if self.current != Some(packet.layer) {
            return Decision::Drop(DropReason::OtherLayer);
        }
        if packet.seq < self.run_start {
            return Decision::Drop(DropReason::Stale);
        }
        let (seq_delta, picture_delta) = if self.highest_in.is_some_and(|h| packet.seq <= h) {
            // Late: the numbers of its place, unless its place was dropped.
            if packet.temporal.is_some_and(|(tid, _)| tid > self.temporal_cap) {
                return Decision::Drop(DropReason::TemporalLayer);
            }
            match self.deltas_at(packet.seq) {
                Ok(d) => d,
                Err(reason) => return Decision::Drop(reason),
            }
        } else {
            self.highest_in = Some(packet.seq);
            if let Some((tid, sync)) = packet.temporal {
                if packet.frame_start {
                    self.move_temporal_cap(tid, sync, packet.keyframe_start);
                }
                if tid > self.temporal_cap {
                    self.drop_temporal(packet);
                    return Decision::Drop(DropReason::TemporalLayer);
                }
            }
            (self.seq_delta, self.vp8_delta.picture_id)
        };

        let seq = packet.seq.wrapping_add(seq_delta);
        let timestamp = packet.timestamp.wrapping_add(self.ts_delta);
        let vp8 = packet.vp8.map(|ids| Vp8Ids {
            picture_id: ids.picture_id.wrapping_add(picture_delta) & 0x7fff,
            tl0_pic_idx: ids.tl0_pic_idx.map(|t| t.wrapping_add(self.vp8_delta.tl0_pic_idx.unwrap_or(0))),
            key_idx: ids.key_idx.map(|k| k.wrapping_add(self.vp8_delta.key_idx.unwrap_or(0)) & 0x1f),
        });
        let newest = self.last.is_none_or(|last| seq > last.seq);
        if newest {
            self.last = Some(LastSent { seq, timestamp, at: packet.arrival });
            if vp8.is_some() {
                self.last_vp8 = vp8;
            }
        }
        let vp8 = vp8.filter(|v| Some(*v) != packet.vp8);
        Decision::Forward { seq, timestamp, vp8, started }
    }

    /// At the start of a frame of temporal layer `tid`: go down to the target at once, up one
    /// layer at a layer-sync frame of it, or all the way at a keyframe.
    fn move_temporal_cap(&mut self, tid: u8, sync: bool, keyframe: bool) {
        if self.temporal_target < self.temporal_cap || keyframe {
            self.temporal_cap = self.temporal_target;
        } else if self.temporal_cap < self.temporal_target && tid > self.temporal_cap && tid <= self.temporal_target && sync {
            self.temporal_cap = tid;
        }
    }

    /// Drop an in-order packet for its temporal layer: what follows moves down to close the gap.
    fn drop_temporal(&mut self, packet: &PacketIn) {
        self.seq_delta = self.seq_delta.wrapping_sub(1);
        if let Some(ids) = packet.vp8 {
            if self.last_dropped_picture != Some(ids.picture_id) {
                self.last_dropped_picture = Some(ids.picture_id);
                self.vp8_delta.picture_id = self.vp8_delta.picture_id.wrapping_sub(1) & 0x7fff;
            }
        }
        let (seq_delta, picture_delta) = (self.seq_delta, self.vp8_delta.picture_id);
        match self.dropped.back_mut() {
            Some(r) if r.to == packet.seq => {
                r.to = packet.seq + 1;
                r.seq_delta = seq_delta;
                r.picture_delta = picture_delta;
            }
            _ => {
                self.dropped.push_back(Dropped { from: packet.seq, to: packet.seq + 1, seq_delta, picture_delta });
                if self.dropped.len() > DROP_MEMORY {
                    if let Some(old) = self.dropped.pop_front() {
                        self.floor = old.to;
                        self.floor_deltas = (old.seq_delta, old.picture_delta);
                    }
                }
            }
        }
    }

    /// The sequence and PictureID deltas of a late packet's place; an error when its place was
    /// dropped or is no longer remembered.
    fn deltas_at(&self, seq: u64) -> Result<(u64, u16), DropReason> {
        if seq < self.floor {
            return Err(DropReason::Stale);
        }
        for r in self.dropped.iter().rev() {
            if seq >= r.to {
                return Ok((r.seq_delta, r.picture_delta));
            }
            if seq >= r.from {
                return Err(DropReason::TemporalLayer);
            }
        }
        Ok(self.floor_deltas)
    }

    fn start_run(&mut self, packet: &PacketIn) {
        let (seq, timestamp) = match self.last {
            // The first run keeps the source's numbers, folded below 2^16 so the subscriber's
            // SRTP rollover counter starts at zero.
            None => (packet.seq & 0xffff, packet.timestamp),
            Some(last) => {
                let continued = packet.timestamp.wrapping_add(self.ts_delta);
                let ahead = continued.wrapping_sub(last.timestamp) as i32;
                let timestamp = if packet.synced && self.ts_synced && ahead > 0 {
                    // Both runs are on the reference clock: the media time carries on as is.
                    continued
                } else {
                    // Advance by the wall-clock time that passed (at least one tick, so the
                    // timestamp never repeats or goes back).
                    let elapsed = packet.arrival.saturating_duration_since(last.at);
                    let ticks = (elapsed.as_secs_f64() * f64::from(self.clock_rate)) as u64;
                    let ticks = ticks.clamp(1, u64::from(u32::MAX / 2)) as u32;
                    last.timestamp.wrapping_add(ticks)
                };
                (last.seq + 1, timestamp)
            }
        };
        self.seq_delta = seq.wrapping_sub(packet.seq);
        self.ts_delta = timestamp.wrapping_sub(packet.timestamp);
        self.ts_synced = packet.synced;
        if let Some(ids) = packet.vp8 {
            self.vp8_delta = match self.last_vp8 {
                None => Vp8Ids { picture_id: 0, tl0_pic_idx: Some(0), key_idx: Some(0) },
                Some(last) => Vp8Ids {
                    picture_id: last.picture_id.wrapping_add(1).wrapping_sub(ids.picture_id) & 0x7fff,
                    tl0_pic_idx: match (last.tl0_pic_idx, ids.tl0_pic_idx) {
                        (Some(l), Some(i)) => Some(l.wrapping_add(1).wrapping_sub(i)),
                        _ => Some(0),
                    },
                    key_idx: match (last.key_idx, ids.key_idx) {
                        (Some(l), Some(i)) => Some(l.wrapping_add(1).wrapping_sub(i) & 0x1f),
                        _ => Some(0),
                    },
                },
            };
        }
        self.run_start = packet.seq;
        self.current = Some(packet.layer);
        // A keyframe: every temporal layer up to the target can follow.
        if self.thin {
            self.thin = false;
            self.temporal_target = ALL_TEMPORAL;
        }
        self.temporal_cap = self.temporal_target;
        self.highest_in = None;
        self.dropped.clear();
        self.floor = packet.seq;
        self.floor_deltas = (self.seq_delta, self.vp8_delta.picture_id);
        self.last_dropped_picture = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    struct Source {
        start: Instant,
        seq: u64,
        ts: u32,
        at: Duration,
    }

    impl Source {
        fn new(seq: u64, ts: u32) -> Self {
            Source { start: Instant::now(), seq, ts, at: Duration::ZERO }
        }
        /// The next packet, 20 ms after the previous one (audio at 48 kHz).
        fn next(&mut self, keyframe_start: bool) -> PacketIn {
            let p = PacketIn {
                seq: self.seq,
                timestamp: self.ts,
                synced: true,
                keyframe_start,
                layer: 0,
                vp8: None,
                temporal: None,
                frame_start: true,
                arrival: self.start + self.at,
            };
            self.seq += 1;
            self.ts = self.ts.wrapping_add(960);
            self.at += Duration::from_millis(20);
            p
        }
    }

    fn fwd(d: Decision) -> (u64, u32) {
        match d {
            Decision::Forward { seq, timestamp, .. } => (seq, timestamp),
            Decision::Drop(r) => panic!("dropped: {r:?}"),
        }
    }

    #[test]
    fn first_run_keeps_source_numbers_below_2_16() {
        let mut f = Forwarder::new(false, 48_000);
        let mut src = Source::new(3 * 65_536 + 100, 5000);
        assert_eq!(fwd(f.decide(&src.next(false), false)), (100, 5000));
        assert_eq!(fwd(f.decide(&src.next(false), false)), (101, 5960));
    }

    #[test]
    fn upstream_loss_keeps_its_gap_and_the_repair_fills_it() {
        let mut f = Forwarder::new(false, 48_000);
        let mut src = Source::new(10, 0);
        let a = src.next(false);
        let lost = src.next(false);
        let c = src.next(false);
        assert_eq!(fwd(f.decide(&a, false)).0, 10);
        assert_eq!(fwd(f.decide(&c, false)).0, 12);
        // The retransmission arrives late and takes its own place.
        assert_eq!(fwd(f.decide(&lost, false)), (11, 960));
    }

    #[test]
    fn mute_then_unmute_continues_without_a_gap() {
        let mut f = Forwarder::new(false, 48_000);
        let mut src = Source::new(500, 1000);
        let (s1, t1) = fwd(f.decide(&src.next(false), false));
        for _ in 0..50 {
            assert_eq!(f.decide(&src.next(false), true), Decision::Drop(DropReason::Muted));
        }
        // 51 packets * 20 ms = 1.02 s later, 48_960 ticks.
        let (s2, t2) = fwd(f.decide(&src.next(false), false));
        assert_eq!(s2, s1 + 1);
        assert_eq!(t2.wrapping_sub(t1), 48_960);
        let (s3, t3) = fwd(f.decide(&src.next(false), false));
        assert_eq!((s3, t3.wrapping_sub(t2)), (s2 + 1, 960));
    }

    #[test]
    fn video_starts_on_a_keyframe_and_drops_what_came_before() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Source::new(1, 0);
        assert!(f.awaiting_keyframe());
        let early = src.next(false);
        assert_eq!(f.decide(&early, false), Decision::Drop(DropReason::AwaitingKeyframe));
        let key = src.next(true);
        let (s, _) = fwd(f.decide(&key, false));
        assert!(!f.awaiting_keyframe());
        assert_eq!(fwd(f.decide(&src.next(false), false)).0, s + 1);
        // A late packet from before the run started is stale.
        assert_eq!(f.decide(&early, false), Decision::Drop(DropReason::Stale));
    }

    #[test]
    fn video_unmute_waits_for_the_next_keyframe() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Source::new(1, 0);
        let (s1, _) = fwd(f.decide(&src.next(true), false));
        assert_eq!(f.decide(&src.next(false), true), Decision::Drop(DropReason::Muted));
        assert_eq!(f.decide(&src.next(false), false), Decision::Drop(DropReason::AwaitingKeyframe));
        let (s2, _) = fwd(f.decide(&src.next(true), false));
        assert_eq!(s2, s1 + 1);
    }

    #[test]
    fn timestamps_wrap_at_32_bits() {
        let mut f = Forwarder::new(false, 48_000);
        let mut src = Source::new(7, u32::MAX - 500);
        let (_, t1) = fwd(f.decide(&src.next(false), false));
        let (_, t2) = fwd(f.decide(&src.next(false), false));
        assert_eq!(t1, u32::MAX - 500);
        assert_eq!(t2, 459);
    }

    #[test]
    fn pause_restarts_on_the_next_eligible_packet() {
        let mut f = Forwarder::new(false, 48_000);
        let mut src = Source::new(40, 0);
        let (s1, _) = fwd(f.decide(&src.next(false), false));
        f.pause();
        src.next(false);
        src.next(false);
        let (s2, _) = fwd(f.decide(&src.next(false), false));
        assert_eq!(s2, s1 + 1);
    }

    /// Three simulcast layers of one camera, as a publisher sends them: one frame every 33 ms
    /// on each layer, `per_frame[layer]` packets a frame, each layer with its own sequence
    /// numbers, its own random RTP timestamp base (mapped onto layer 0's clock when `synced`)
    /// and its own VP8 PictureIDs.
    struct Simulcast {
        start: Instant,
        frame: u64,
        seq: [u64; 3],
        ts_base: [u32; 3],
        pic_base: [u16; 3],
        per_frame: [u64; 3],
        synced: bool,
    }

    impl Simulcast {
        fn new(synced: bool) -> Self {
            Simulcast {
                start: Instant::now(),
                frame: 0,
                seq: [1000, 40_000, 65_000],
                ts_base: [10, 3_000_000_000, u32::MAX - 1000],
                pic_base: [5, 20_000, 32_760],
                per_frame: [1, 2, 4],
                synced,
            }
        }

        /// The packets of the next frame on every layer; a keyframe on the layers in `keys`.
        fn frame(&mut self, keys: &[u8]) -> Vec<PacketIn> {
            let mut out = Vec::new();
            let at = self.start + Duration::from_millis(33 * self.frame);
            let media_ts = (self.frame * 3000) as u32;
            for layer in 0..3u8 {
                let l = usize::from(layer);
                let ts = if self.synced { media_ts } else { media_ts.wrapping_add(self.ts_base[l]) };
                let pic = (self.pic_base[l].wrapping_add(self.frame as u16)) & 0x7fff;
                for i in 0..self.per_frame[l] {
                    out.push(PacketIn {
                        seq: self.seq[l],
                        timestamp: ts,
                        synced: self.synced,
                        keyframe_start: i == 0 && keys.contains(&layer),
                        layer,
                        vp8: Some(Vp8Ids {
                            picture_id: pic,
                            tl0_pic_idx: Some((self.frame as u8).wrapping_add(layer * 50)),
                            key_idx: Some(((self.frame / 10) as u8 + layer) & 0x1f),
                        }),
                        temporal: None,
                        frame_start: i == 0,
                        arrival: at + Duration::from_micros(100 * i),
                    });
                    self.seq[l] += 1;
                }
            }
            self.frame += 1;
            out
        }
    }

    /// What the subscriber receives: (seq, timestamp, picture id, tl0, layer) per packet.
    fn run(f: &mut Forwarder, packets: &[PacketIn], sent: &mut Vec<(u64, u32, u16, Option<u8>, u8)>) -> bool {
        let mut wants_keyframe = false;
        for p in packets {
            match f.decide(p, false) {
                Decision::Forward { seq, timestamp, vp8, .. } => {
                    let ids = vp8.or(p.vp8).unwrap();
                    sent.push((seq, timestamp, ids.picture_id, ids.tl0_pic_idx, p.layer));
                }
                Decision::Drop(DropReason::AwaitingKeyframe) => wants_keyframe = true,
                Decision::Drop(_) => {}
            }
        }
        wants_keyframe
    }

    /// Sequence numbers contiguous, timestamps forward only (never back, same within a frame),
    /// picture ids +1 per frame, TL0PICIDX never jumping back.
    fn assert_continuous(sent: &[(u64, u32, u16, Option<u8>, u8)]) {
        assert_continuous_within(sent, 90_000);
    }

    fn assert_continuous_within(sent: &[(u64, u32, u16, Option<u8>, u8)], max_step: i32) {
        for w in sent.windows(2) {
            let (a, b) = (w[0], w[1]);
            assert_eq!(b.0, a.0 + 1, "sequence gap: {a:?} -> {b:?}");
            let dt = b.1.wrapping_sub(a.1) as i32;
            assert!(dt >= 0, "timestamp went back: {a:?} -> {b:?}");
            let dp = b.2.wrapping_sub(a.2) & 0x7fff;
            if dt == 0 {
                assert_eq!(dp, 0, "picture id changed within a frame: {a:?} -> {b:?}");
            } else {
                assert_eq!(dp, 1, "picture id not continuous: {a:?} -> {b:?}");
                assert!(dt < max_step, "timestamp jumped: {a:?} -> {b:?}");
            }
        }
    }

    #[test]
    fn forwards_only_the_target_layer() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Simulcast::new(true);
        let mut sent = Vec::new();
        f.set_target(Some(1));
        assert!(run(&mut f, &src.frame(&[]), &mut sent), "asks for a keyframe of layer 1");
        assert!(sent.is_empty());
        run(&mut f, &src.frame(&[0, 1, 2]), &mut sent);
        for _ in 0..10 {
            run(&mut f, &src.frame(&[]), &mut sent);
        }
        assert_eq!(sent.len(), 11 * 2);
        assert!(sent.iter().all(|p| p.4 == 1));
        assert_continuous(&sent);
    }

    #[test]
    fn switches_up_and_down_only_on_target_keyframes_and_stays_continuous() {
        for synced in [true, false] {
            let mut f = Forwarder::new(true, 90_000);
            let mut src = Simulcast::new(synced);
            let mut sent = Vec::new();
            f.set_target(Some(0));
            run(&mut f, &src.frame(&[0]), &mut sent);
            let mut switches = 0;
            for round in 0..24u8 {
                let target = [2, 1, 0, 1][usize::from(round % 4)];
                f.set_target(Some(target));
                // The current layer goes on while the target's keyframe is awaited.
                for _ in 0..3 {
                    let before = sent.len();
                    let asks = run(&mut f, &src.frame(&[]), &mut sent);
                    assert_eq!(asks, f.current() != Some(target), "round {round}");
                    assert!(sent.len() > before, "frozen while switching, round {round}");
                }
                run(&mut f, &src.frame(&[target]), &mut sent);
                assert_eq!(f.current(), Some(target));
                switches += 1;
                for _ in 0..3 {
                    run(&mut f, &src.frame(&[]), &mut sent);
                }
            }
            assert!(switches >= 20);
            assert_continuous(&sent);
        }
    }

    #[test]
    fn late_packets_of_the_old_layer_are_dropped_after_a_switch() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Simulcast::new(true);
        let mut sent = Vec::new();
        f.set_target(Some(2));
        run(&mut f, &src.frame(&[2]), &mut sent);
        let old = src.frame(&[]);
        f.set_target(Some(0));
        run(&mut f, &src.frame(&[0]), &mut sent);
        let n = sent.len();
        // A retransmission of layer 2 arrives after the switch to layer 0.
        for p in old.iter().filter(|p| p.layer == 2) {
            assert_eq!(f.decide(p, false), Decision::Drop(DropReason::OtherLayer));
        }
        assert_eq!(sent.len(), n);
        assert_continuous(&sent);
    }

    #[test]
    fn pause_drops_everything_and_resume_continues() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Simulcast::new(true);
        let mut sent = Vec::new();
        f.set_target(Some(1));
        run(&mut f, &src.frame(&[1]), &mut sent);
        f.set_target(None);
        for _ in 0..30 {
            for p in src.frame(&[0, 1, 2]) {
                assert_eq!(f.decide(&p, false), Decision::Drop(DropReason::Paused));
            }
        }
        f.set_target(Some(0));
        run(&mut f, &src.frame(&[0]), &mut sent);
        assert_continuous_within(&sent, 100_000);
        // A second passed in media time while paused: the timestamp says so.
        let gap = sent[2].1.wrapping_sub(sent[1].1);
        assert_eq!(gap, 31 * 3000);
    }

    #[test]
    fn vp8_ids_are_rewritten_only_when_they_differ() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Simulcast::new(true);
        f.set_target(Some(0));
        let p = src.frame(&[0]).remove(0);
        assert!(matches!(f.decide(&p, false), Decision::Forward { vp8: None, started: true, .. }));
        f.set_target(Some(2));
        let frame = src.frame(&[2]);
        let top = frame.iter().find(|p| p.layer == 2).unwrap();
        match f.decide(top, false) {
            Decision::Forward { vp8: Some(ids), started: true, .. } => {
                assert_eq!(ids.picture_id, (5 + 1) & 0x7fff);
                assert_eq!(ids.tl0_pic_idx, Some(1));
            }
            other => panic!("{other:?}"),
        }
    }

    /// One VP8 layer with three temporal layers in the L1T3 pattern (TID 0, 2, 1, 2, ...), two
    /// packets a frame, a frame every 33 ms; `sync` says which frames carry the layer-sync bit.
    struct Temporal {
        start: Instant,
        frame: u64,
        seq: u64,
        sync: fn(u64) -> bool,
    }

    impl Temporal {
        fn new(sync: fn(u64) -> bool) -> Self {
            Temporal { start: Instant::now(), frame: 0, seq: 500, sync }
        }

        fn tid(frame: u64) -> u8 {
            [0, 2, 1, 2][(frame % 4) as usize]
        }

        /// The packets of the next frame (a keyframe if `key`).
        fn frame(&mut self, key: bool) -> Vec<PacketIn> {
            let n = self.frame;
            let tid = Self::tid(n);
            let out = (0..2u64)
                .map(|i| PacketIn {
                    seq: self.seq + i,
                    timestamp: (n * 3000) as u32,
                    synced: true,
                    keyframe_start: key && i == 0,
                    layer: 0,
                    vp8: Some(Vp8Ids { picture_id: (100 + n as u16) & 0x7fff, tl0_pic_idx: Some((n / 4) as u8), key_idx: Some(0) }),
                    temporal: Some((tid, tid > 0 && (self.sync)(n))),
                    frame_start: i == 0,
                    arrival: self.start + Duration::from_millis(33 * n) + Duration::from_micros(100 * i),
                })
                .collect();
            self.seq += 2;
            self.frame += 1;
            out
        }
    }

    /// The TIDs of the frames sent (one entry per frame).
    fn tids(sent: &[(u64, u32, u16, Option<u8>, u8)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut last_ts = None;
        for p in sent {
            if last_ts != Some(p.1) {
                last_ts = Some(p.1);
                out.push(Temporal::tid(u64::from(p.1) / 3000));
            }
        }
        out
    }

    #[test]
    fn a_temporal_cap_drops_the_upper_layers_without_gaps() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Temporal::new(|_| true);
        let mut sent = Vec::new();
        f.set_temporal(0);
        run(&mut f, &src.frame(true), &mut sent);
        for _ in 0..40 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(f.temporal(), 0);
        assert!(tids(&sent).iter().all(|&t| t == 0), "{:?}", tids(&sent));
        assert_eq!(sent.len(), 11 * 2, "a frame in four");
        assert_continuous(&sent);
        // TID 0 and 1: every other frame.
        f.set_temporal(1);
        let n = sent.len();
        for _ in 0..40 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(f.temporal(), 1);
        assert!(tids(&sent[n..]).iter().all(|&t| t <= 1));
        assert_continuous(&sent);
    }

    #[test]
    fn going_up_waits_for_a_layer_sync_frame_going_down_is_at_once() {
        let mut f = Forwarder::new(true, 90_000);
        // Only every fourth TID 1 frame (frames 2, 18, 34...) and TID 2 frame 19 carry the sync bit.
        let mut src = Temporal::new(|n| n % 16 == 2 || n == 19);
        let mut sent = Vec::new();
        f.set_temporal(0);
        run(&mut f, &src.frame(true), &mut sent);
        for _ in 0..4 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        f.set_temporal(2);
        // Frames 5..18: the TID 1 frames 6, 10, 14 are not sync frames; 18 is.
        let mut caps = Vec::new();
        for _ in 5..24 {
            run(&mut f, &src.frame(false), &mut sent);
            caps.push(f.temporal());
        }
        // After frame 17 the cap is still 0; frame 18 (TID 1, sync) raises it to 1, frame 19
        // (TID 2, sync) to 2.
        assert_eq!(&caps[..13], &[0; 13]);
        assert_eq!(caps[13], 1);
        assert_eq!(&caps[14..], &[2; 5]);
        assert_continuous(&sent);
        // Down: at the next frame.
        f.set_temporal(0);
        let n = sent.len();
        for _ in 0..8 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(f.temporal(), 0);
        assert!(tids(&sent[n..]).iter().all(|&t| t == 0));
        assert_continuous(&sent);
    }

    #[test]
    fn late_packets_keep_their_place_and_dropped_ones_stay_dropped() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Temporal::new(|_| true);
        f.set_temporal(1);
        let key = src.frame(true);
        let mut out = Vec::new();
        for p in &key {
            out.push(fwd(f.decide(p, false)).0);
        }
        let tid2 = src.frame(false); // frame 1, TID 2: dropped
        let tid1 = src.frame(false); // frame 2, TID 1
        for p in &tid2 {
            assert_eq!(f.decide(p, false), Decision::Drop(DropReason::TemporalLayer));
        }
        // The first packet of frame 2 is lost upstream; the second comes.
        let second = fwd(f.decide(&tid1[1], false)).0;
        assert_eq!(second, out[1] + 2, "the upstream loss leaves its gap");
        // Retransmissions: the lost packet fills its gap; the dropped frame's stay dropped,
        // even now that TID 2 is wanted.
        assert_eq!(fwd(f.decide(&tid1[0], false)).0, out[1] + 1);
        f.set_temporal(2);
        for p in &tid2 {
            assert_eq!(f.decide(p, false), Decision::Drop(DropReason::TemporalLayer));
        }
        // A retransmission of the keyframe gets its own numbers again.
        assert_eq!(fwd(f.decide(&key[1], false)).0, out[1]);
        match f.decide(&tid1[0], false) {
            Decision::Forward { vp8: Some(ids), .. } => assert_eq!(ids.picture_id, 101, "frame 2 is the second frame sent"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn packets_too_late_to_be_numbered_are_dropped() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Temporal::new(|_| true);
        f.set_temporal(0);
        run(&mut f, &src.frame(true), &mut Vec::new());
        let early = src.frame(false); // TID 2, dropped
        let mut tid0 = None;
        run(&mut f, &early, &mut Vec::new());
        // The frames dropped in a row (TID 2, 1, 2) make one range: one range every four frames.
        for i in 0..(8 * DROP_MEMORY as u64) {
            let frame = src.frame(false);
            if i == 2 {
                tid0 = Some(frame[0]);
            }
            run(&mut f, &frame, &mut Vec::new());
        }
        // A packet of a frame forwarded long ago: its place is no longer known.
        assert_eq!(f.decide(&tid0.unwrap(), false), Decision::Drop(DropReason::Stale));
        assert!(matches!(f.decide(&early[0], false), Decision::Drop(_)));
    }

    #[test]
    fn a_keyframe_run_starts_at_the_temporal_target() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Temporal::new(|_| false);
        let mut sent = Vec::new();
        f.set_temporal(0);
        run(&mut f, &src.frame(true), &mut sent);
        run(&mut f, &src.frame(false), &mut sent);
        f.set_temporal(ALL_TEMPORAL);
        // No sync frame ever: the cap stays until a keyframe.
        for _ in 0..7 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(f.temporal(), 0);
        f.pause();
        let n = sent.len();
        run(&mut f, &src.frame(true), &mut sent);
        assert_eq!(f.temporal(), ALL_TEMPORAL);
        for _ in 0..3 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(sent.len() - n, 4 * 2, "every frame from the keyframe on");
        assert_continuous_within(&sent, 100_000);
    }

    #[test]
    fn a_down_switch_thins_the_old_layer_until_the_new_one_starts() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Simulcast::new(true);
        let mut sent = Vec::new();
        f.set_target(Some(2));
        run(&mut f, &src.frame(&[2]), &mut sent);
        f.set_target(Some(0));
        f.thin_until_switch();
        // Layer 2 goes on, base layer only, while layer 0's keyframe is awaited.
        let mut thinned = 0;
        for n in 1..9u64 {
            let mut frame = src.frame(&[]);
            let tid = Temporal::tid(n);
            for p in &mut frame {
                p.temporal = Some((tid, false));
            }
            let before = sent.len();
            run(&mut f, &frame, &mut sent);
            if tid > 0 {
                assert_eq!(sent.len(), before, "frame {n}, TID {tid}, is dropped");
                thinned += 1;
            } else {
                assert_eq!(sent.len(), before + 4, "frame {n}, TID 0, goes on");
            }
        }
        assert_eq!(thinned, 6);
        // The new layer starts with every temporal layer.
        run(&mut f, &src.frame(&[0]), &mut sent);
        assert_eq!((f.current(), f.temporal(), f.temporal_target()), (Some(0), ALL_TEMPORAL, ALL_TEMPORAL));
        assert_continuous_within(&sent, 100_000);
    }

    #[test]
    fn a_down_switch_called_off_gets_every_temporal_layer_back_at_a_keyframe() {
        let mut f = Forwarder::new(true, 90_000);
        let mut src = Temporal::new(|_| false);
        let mut sent = Vec::new();
        run(&mut f, &src.frame(true), &mut sent);
        f.set_target(Some(1));
        f.thin_until_switch();
        for _ in 0..4 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(f.temporal(), 0);
        // Back to the layer it never left; no layer-sync frame comes, a keyframe does.
        f.set_target(Some(0));
        assert_eq!(f.temporal_target(), ALL_TEMPORAL);
        for _ in 0..4 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(f.temporal(), 0);
        run(&mut f, &src.frame(true), &mut sent);
        assert_eq!(f.temporal(), ALL_TEMPORAL);
        let n = sent.len();
        for _ in 0..4 {
            run(&mut f, &src.frame(false), &mut sent);
        }
        assert_eq!(sent.len() - n, 8);
        assert_continuous_within(&sent, 100_000);
    }
}

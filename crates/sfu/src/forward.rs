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
//! Sequence numbers are extended (64-bit, no wrap); RTP timestamps wrap at 32 bits.

use std::time::Instant;

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
    /// The packet predates the current run (it was sent before a pause or switch).
    Stale,
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
    /// When it arrived.
    pub arrival: Instant,
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
        }
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

        let seq = packet.seq.wrapping_add(self.seq_delta);
        let timestamp = packet.timestamp.wrapping_add(self.ts_delta);
        let vp8 = packet.vp8.map(|ids| Vp8Ids {
            picture_id: ids.picture_id.wrapping_add(self.vp8_delta.picture_id) & 0x7fff,
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
}

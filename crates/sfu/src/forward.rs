//! Forwarding decisions for one outgoing stream: which incoming packets go out, and with which
//! sequence number and timestamp.
//!
//! A [`Forwarder`] sits between one incoming stream and one subscriber's outgoing stream. It knows
//! nothing of rooms or peers: it is handed a packet's numbers and returns a [`Decision`] value
//! that the caller carries out. The outgoing stream must look like one continuous stream to the
//! subscriber's decoder, even when forwarding pauses (mute, waiting for a keyframe) and resumes
//! (or, later, switches between simulcast layers). So:
//!
//! - a *run* of forwarded packets keeps the source's spacing (out = in + delta), so a packet lost
//!   upstream leaves a gap the subscriber NACKs, and the repaired packet fills it when it arrives;
//! - at every *resume* the deltas are recomputed so the new run continues right after the last
//!   packet sent: no sequence gap for what was dropped on purpose, and timestamps that advance by
//!   the wall-clock time that passed;
//! - video resumes only on the first packet of a keyframe; packets older than the resume point are
//!   dropped, so nothing from before the pause leaks into the new run.
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
    },
    /// Don't send it.
    Drop(DropReason),
}

/// Why a packet was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The source is muted.
    Muted,
    /// Video waits for the first packet of a keyframe; the caller should ask the publisher for
    /// one.
    AwaitingKeyframe,
    /// The packet predates the current run (it was sent before a pause or switch).
    Stale,
}

/// The numbers of one incoming packet that decisions depend on.
#[derive(Debug, Clone, Copy)]
pub struct PacketIn {
    /// Extended sequence number, as the publisher's receive stream counted it.
    pub seq: u64,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Whether this is the first packet of a keyframe (always true for audio's purposes).
    pub keyframe_start: bool,
    /// When it arrived.
    pub arrival: Instant,
}

/// Decision state for one outgoing stream. See the module docs.
#[derive(Debug)]
pub struct Forwarder {
    video: bool,
    clock_rate: u32,
    state: State,
    /// out_seq = in_seq + seq_delta (wrapping in u64).
    seq_delta: u64,
    /// out_ts = in_ts + ts_delta (wrapping in u32).
    ts_delta: u32,
    /// Packets of the current run have in_seq >= this.
    run_start: u64,
    /// Highest outgoing sequence number sent, its timestamp and when it was sent.
    last: Option<LastSent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not forwarding; the next eligible packet starts a run.
    Paused,
    /// Forwarding a run.
    Running,
}

#[derive(Debug, Clone, Copy)]
struct LastSent {
    seq: u64,
    timestamp: u32,
    at: Instant,
}

impl Forwarder {
    /// A forwarder for a stream of `clock_rate` Hz; `video` streams start on keyframes only.
    pub fn new(video: bool, clock_rate: u32) -> Self {
        Forwarder {
            video,
            clock_rate: clock_rate.max(1),
            state: State::Paused,
            seq_delta: 0,
            ts_delta: 0,
            run_start: 0,
            last: None,
        }
    }

    /// Whether the forwarder waits for a keyframe before it can send anything.
    pub fn awaiting_keyframe(&self) -> bool {
        self.video && self.state == State::Paused
    }

    /// Stop the current run; the next eligible packet starts a new one (on a keyframe for video).
    pub fn pause(&mut self) {
        self.state = State::Paused;
    }

    /// Decide what to do with `packet`; `muted` says whether its source is muted now.
    pub fn decide(&mut self, packet: &PacketIn, muted: bool) -> Decision {
        if muted {
            self.state = State::Paused;
            return Decision::Drop(DropReason::Muted);
        }
        if self.state == State::Paused {
            if self.video && !packet.keyframe_start {
                return Decision::Drop(DropReason::AwaitingKeyframe);
            }
            self.start_run(packet);
        } else if packet.seq < self.run_start {
            return Decision::Drop(DropReason::Stale);
        }

        let seq = packet.seq.wrapping_add(self.seq_delta);
        let timestamp = packet.timestamp.wrapping_add(self.ts_delta);
        match self.last {
            Some(last) if seq <= last.seq => {}
            _ => self.last = Some(LastSent { seq, timestamp, at: packet.arrival }),
        }
        Decision::Forward { seq, timestamp }
    }

    fn start_run(&mut self, packet: &PacketIn) {
        let (seq, timestamp) = match self.last {
            // The first run keeps the source's numbers, folded below 2^16 so the subscriber's
            // SRTP rollover counter starts at zero.
            None => (packet.seq & 0xffff, packet.timestamp),
            // Later runs continue right after the last packet sent, and advance the timestamp by
            // the wall-clock time that passed (at least one tick, so it never repeats).
            Some(last) => {
                let elapsed = packet.arrival.saturating_duration_since(last.at);
                let ticks = (elapsed.as_secs_f64() * f64::from(self.clock_rate)) as u64;
                let ticks = ticks.clamp(1, u64::from(u32::MAX / 2)) as u32;
                (last.seq + 1, last.timestamp.wrapping_add(ticks))
            }
        };
        self.seq_delta = seq.wrapping_sub(packet.seq);
        self.ts_delta = timestamp.wrapping_sub(packet.timestamp);
        self.run_start = packet.seq;
        self.state = State::Running;
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
                keyframe_start,
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
            Decision::Forward { seq, timestamp } => (seq, timestamp),
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
}

//! What the load tester's synthetic media carries, and what its receivers measure from it.
//!
//! Every RTP payload a load-test publisher sends carries a [`Tag`]: which publisher and stream it
//! is from, its number within that stream, and when it was sent (microseconds of the Unix clock,
//! which sender and receiver share on one machine). Video payloads start with a VP8 payload
//! descriptor and, on a frame's first packet, a VP8 frame header, so the SFU switches and detects
//! keyframes as it would for a camera; the tag follows. A receiver finds the tag by its magic
//! number and keeps, per stream, what [`StreamStats`] needs for delivery, loss, one-way latency
//! and jitter.

use std::collections::HashMap;

/// Starts every tag: "CFLT".
const MAGIC: [u8; 4] = *b"CFLT";
/// Bytes of a tag.
pub(crate) const TAG_LEN: usize = 4 + 4 + 1 + 4 + 8;
/// How far into a payload a tag may start (after the VP8 descriptor and frame header).
const TAG_SEARCH: usize = 32;

/// The kind of a synthetic stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Audio = 0,
    Video = 1,
}

/// What one packet says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tag {
    /// The publisher's index in the load test.
    pub(crate) publisher: u32,
    pub(crate) kind: Kind,
    /// Counts up from 0 per publisher and kind.
    pub(crate) number: u32,
    /// Microseconds since the Unix epoch when it was sent.
    pub(crate) sent_us: u64,
}

impl Tag {
    /// Append the tag to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.publisher.to_be_bytes());
        out.push(self.kind as u8);
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.sent_us.to_be_bytes());
    }

    /// Find and read the tag in a payload.
    pub(crate) fn find(payload: &[u8]) -> Option<Tag> {
        let head = &payload[..payload.len().min(TAG_SEARCH + MAGIC.len())];
        let at = head.windows(MAGIC.len()).position(|w| w == MAGIC)?;
        let t = payload.get(at + MAGIC.len()..at + TAG_LEN)?;
        let kind = match t[4] {
            0 => Kind::Audio,
            1 => Kind::Video,
            _ => return None,
        };
        Some(Tag {
            publisher: u32::from_be_bytes(t[0..4].try_into().ok()?),
            kind,
            number: u32::from_be_bytes(t[5..9].try_into().ok()?),
            sent_us: u64::from_be_bytes(t[9..17].try_into().ok()?),
        })
    }
}

/// One VP8 RTP payload of `size` bytes (at least the headers and the tag): descriptor with a
/// 15-bit picture id and TL0PICIDX; on a frame's first packet the frame header (a keyframe's
/// with its start code and a 1280x720 size).
pub(crate) fn vp8_payload(tag: &Tag, picture_id: u16, first: bool, keyframe: bool, size: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(size.max(32));
    p.push(0x80 | if first { 0x10 } else { 0 });
    p.push(0xc0);
    p.extend_from_slice(&(0x8000 | (picture_id & 0x7fff)).to_be_bytes());
    p.push(picture_id as u8);
    if first {
        if keyframe {
            p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x00, 0x05, 0xd0, 0x02]);
        } else {
            p.extend_from_slice(&[0x11, 0x02, 0x00]);
        }
    }
    tag.write(&mut p);
    p.resize(size.max(p.len()), 0xab);
    p
}

/// An Opus-sized audio payload.
pub(crate) fn audio_payload(tag: &Tag, size: usize) -> Vec<u8> {
    let mut p = Vec::with_capacity(size.max(TAG_LEN + 1));
    p.push(0xf8);
    tag.write(&mut p);
    p.resize(size.max(p.len()), 0x55);
    p
}

/// A histogram of one-way latencies: 50 µs buckets up to 2 s, and one beyond.
#[derive(Debug, Clone)]
pub(crate) struct Latencies {
    buckets: Vec<u64>,
    count: u64,
}

/// How far past a stream's first number a tag's may be: 2^24 packets, over 90 hours of a
/// 50 packets/s stream (a bitmap of 2 MiB at most).
const MAX_SPAN: usize = 1 << 24;

const BUCKET_US: u64 = 50;
const BUCKETS: usize = 40_000;

impl Default for Latencies {
    fn default() -> Self {
        Latencies { buckets: vec![0; BUCKETS + 1], count: 0 }
    }
}

impl Latencies {
    pub(crate) fn add(&mut self, us: u64) {
        let i = ((us / BUCKET_US) as usize).min(BUCKETS);
        self.buckets[i] += 1;
        self.count += 1;
    }

    pub(crate) fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
    }

    /// The `q` quantile (0..=1) in milliseconds (the upper edge of its bucket).
    pub(crate) fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64 * q).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(((i as u64 + 1) * BUCKET_US) as f64 / 1000.0);
            }
        }
        None
    }
}

/// Per received stream (publisher and kind): numbers seen and timing.
#[derive(Debug, Default, Clone)]
struct Stream {
    first: Option<u32>,
    highest: u32,
    received: u64,
    duplicates: u64,
    /// RFC 3550 interarrival jitter, µs (scaled by 16 as the RFC's integer form).
    jitter16: u64,
    last_transit: Option<i64>,
    /// Numbers seen, as a bitmap relative to `first`, to count duplicates (RTX may repeat).
    seen: Vec<u64>,
    /// Packets whose number is too far past the first one to be real.
    out_of_range: u64,
}

/// What one receiver measured over its streams.
#[derive(Debug, Default, Clone)]
pub(crate) struct StreamStats {
    streams: HashMap<(u32, Kind), Stream>,
    pub(crate) latencies: Latencies,
}

/// Totals over streams.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Totals {
    pub(crate) streams: u64,
    /// Distinct packets received.
    pub(crate) received: u64,
    /// Packets the received numbers span (first to highest, per stream).
    pub(crate) expected: u64,
    pub(crate) duplicates: u64,
    /// Packets whose tag cannot be right (a number far past its stream's first).
    pub(crate) corrupt: u64,
    /// Sum over streams of their interarrival jitter, ms.
    pub(crate) jitter_sum_ms: f64,
}

impl Totals {
    /// Add another receiver's totals.
    pub(crate) fn add(&mut self, other: Totals) {
        self.streams += other.streams;
        self.received += other.received;
        self.expected += other.expected;
        self.duplicates += other.duplicates;
        self.corrupt += other.corrupt;
        self.jitter_sum_ms += other.jitter_sum_ms;
    }

    /// Mean interarrival jitter over streams, ms.
    pub(crate) fn jitter_ms(&self) -> Option<f64> {
        (self.streams > 0).then(|| self.jitter_sum_ms / self.streams as f64)
    }

    /// Share of the expected packets that did not arrive.
    pub(crate) fn loss(&self) -> Option<f64> {
        (self.expected > 0).then(|| 1.0 - self.received as f64 / self.expected as f64)
    }
}

impl StreamStats {
    /// Record a packet carrying `tag` received at `now_us` (same clock as the tag's).
    pub(crate) fn record(&mut self, tag: Tag, now_us: u64) {
        let s = self.streams.entry((tag.publisher, tag.kind)).or_default();
        let first = *s.first.get_or_insert(tag.number);
        if tag.number < first {
            // Late arrival from before the first one seen: not counted (the span starts later).
            return;
        }
        let offset = (tag.number - first) as usize;
        if offset >= MAX_SPAN {
            // Not a number this test can have reached: a corrupt tag. Counting it would stretch
            // the span (and the bitmap) to it.
            s.out_of_range += 1;
            return;
        }
        let (word, bit) = (offset / 64, offset % 64);
        if s.seen.len() <= word {
            s.seen.resize(word + 1, 0);
        }
        if s.seen[word] & (1 << bit) != 0 {
            s.duplicates += 1;
            return;
        }
        s.seen[word] |= 1 << bit;
        s.received += 1;
        s.highest = s.highest.max(tag.number);
        // Saturating: a corrupt send time must not overflow (the clocks are one machine's).
        let transit = (i128::from(now_us) - i128::from(tag.sent_us)).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        self.latencies.add(transit.max(0) as u64);
        if let Some(last) = s.last_transit {
            // Packets of one video frame leave together: their spread is the sender's, but it is
            // what a receiver sees, as with any camera.
            let d = transit.abs_diff(last);
            s.jitter16 = s.jitter16.saturating_add(d).saturating_sub(s.jitter16.saturating_add(8) / 16);
        }
        s.last_transit = Some(transit);
    }

    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.streams.values() {
            t.corrupt += s.out_of_range;
            let Some(first) = s.first else { continue };
            t.streams += 1;
            t.received += s.received;
            t.expected += u64::from(s.highest.max(first) - first) + 1;
            t.duplicates += s.duplicates;
            t.jitter_sum_ms += (s.jitter16 / 16) as f64 / 1000.0;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(publisher: u32, kind: Kind, number: u32, sent_us: u64) -> Tag {
        Tag { publisher, kind, number, sent_us }
    }

    #[test]
    fn tags_survive_the_vp8_and_audio_framing() {
        let t = tag(7, Kind::Video, 123_456, 1_700_000_000_000_000);
        for (first, key) in [(true, true), (true, false), (false, false)] {
            let p = vp8_payload(&t, 300, first, key, 1100);
            assert_eq!(p.len(), 1100);
            assert_eq!(Tag::find(&p), Some(t));
            assert_eq!(sfu::VideoCodec::Vp8.is_keyframe_start(&p), first && key);
        }
        let a = tag(2, Kind::Audio, 9, 5);
        assert_eq!(Tag::find(&audio_payload(&a, 80)), Some(a));
        assert_eq!(Tag::find(b"no tag here"), None);
        assert_eq!(Tag::find(&[]), None);
        // A truncated tag is not read.
        let p = audio_payload(&a, 0);
        assert_eq!(Tag::find(&p[..p.len() - 1]), None);
    }

    #[test]
    fn loss_duplicates_latency_and_jitter() {
        let mut s = StreamStats::default();
        // Numbers 10..20 of a stream, 13 and 17 lost, 15 twice; 2 ms latency, then 4 ms.
        for n in 10..20u32 {
            if n == 13 || n == 17 {
                continue;
            }
            let lat = if n < 15 { 2_000 } else { 4_000 };
            s.record(tag(1, Kind::Video, n, u64::from(n) * 1000), u64::from(n) * 1000 + lat);
        }
        s.record(tag(1, Kind::Video, 15, 15_000), 15_000 + 9_000);
        // Another stream, no loss.
        for n in 0..5u32 {
            s.record(tag(2, Kind::Audio, n, 0), 1_000);
        }
        let t = s.totals();
        assert_eq!((t.streams, t.received, t.expected, t.duplicates), (2, 13, 15, 1));
        assert!(t.jitter_ms().is_some_and(|j| j > 0.0));
        assert!(t.loss().is_some_and(|l| (l - 2.0 / 15.0).abs() < 1e-9));
        let mut sum = t;
        sum.add(t);
        assert_eq!((sum.received, sum.expected, sum.jitter_ms()), (26, 30, t.jitter_ms()));
        assert_eq!(s.latencies.quantile_ms(0.5), Some(2.05));
        assert_eq!(s.latencies.quantile_ms(1.0), Some(4.05));
    }

    #[test]
    fn corrupt_tags_are_counted_not_believed() {
        let mut s = StreamStats::default();
        s.record(tag(1, Kind::Video, 10, 1_000), 2_000);
        // A number four billion ahead would stretch the span (and the bitmap) to it.
        s.record(tag(1, Kind::Video, u32::MAX, 1_000), 2_000);
        // Send times from the far future or past saturate instead of overflowing.
        s.record(tag(1, Kind::Video, 11, u64::MAX), 2_000);
        s.record(tag(1, Kind::Video, 12, 0), u64::MAX);
        let t = s.totals();
        assert_eq!((t.received, t.expected, t.corrupt), (3, 3, 1));
        assert!(s.latencies.quantile_ms(1.0).is_some());
    }

    #[test]
    fn quantiles_of_merged_histograms() {
        let mut a = Latencies::default();
        let mut b = Latencies::default();
        assert_eq!(a.quantile_ms(0.5), None);
        for us in 0..100 {
            a.add(us * 100);
        }
        b.add(5_000_000);
        a.merge(&b);
        assert_eq!(a.quantile_ms(0.5), Some(5.05));
        assert_eq!(a.quantile_ms(1.0), Some(2000.05));
    }
}

//! The two ends of a forwarded track: what a publisher sends in ([`Published`]) and what each
//! subscriber gets out ([`OutTrack`]).

use std::time::{Duration, Instant, SystemTime};

use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid, Pt, Rid};

use crate::api::{Kind, ParticipantId, Source, TrackInfo};
use crate::codec::VideoCodec;
use crate::forward::Forwarder;
use crate::slots::Pix;

/// A track a participant publishes: one receiving m-line of its connection.
#[derive(Debug)]
pub(crate) struct Published {
    pub(crate) mid: Mid,
    pub(crate) id: String,
    pub(crate) kind: MediaKind,
    pub(crate) source: Source,
    pub(crate) muted: bool,
    /// Who receives it: (subscriber, slot of its [`OutTrack`]).
    pub(crate) subscribers: Vec<(Pix, usize)>,
    /// The layers seen, lowest first (one, with no rid, when the track is not simulcast).
    pub(crate) layers: Vec<Layer>,
    /// The layer whose clock the others' timestamps are mapped onto (the first with a Sender
    /// Report).
    pub(crate) reference: Option<u8>,
    /// Payload types seen on this track and their codecs.
    pub(crate) codecs: Vec<(Pt, PayloadParams)>,
    /// Dynacast: the highest layer the publisher was told to send (`None`: all, untold).
    pub(crate) dynacast: Option<u8>,
    /// Since when fewer layers than told are needed.
    pub(crate) dynacast_lower_since: Option<Instant>,
    /// An audio track's loudness, from its audio-level header extension.
    pub(crate) loudness: crate::speaker::Loudness,
}

/// One simulcast layer of a published track.
#[derive(Debug)]
pub(crate) struct Layer {
    pub(crate) rid: Option<Rid>,
    /// Quality rank: q 0, h 1, f 2 (others after).
    pub(crate) index: u8,
    pub(crate) rate: RateMeter,
    /// When its first and last packets arrived.
    pub(crate) first_packet: Instant,
    pub(crate) last_packet: Instant,
    /// Frame size, from its latest keyframe (VP8).
    pub(crate) size: Option<(u16, u16)>,
    /// Its latest Sender Report: (RTP time, NTP time).
    pub(crate) report: Option<(u32, SystemTime)>,
    /// Added to its timestamps to put them on the reference layer's clock.
    pub(crate) ts_offset: Option<u32>,
    pub(crate) keyframes: KeyframeThrottle,
}

/// A layer is live while its packets keep coming.
pub(crate) const LAYER_TIMEOUT: Duration = Duration::from_millis(1500);

impl Layer {
    pub(crate) fn new(rid: Option<Rid>, index: u8, now: Instant) -> Self {
        Layer {
            rid,
            index,
            rate: RateMeter::default(),
            first_packet: now,
            last_packet: now,
            size: None,
            report: None,
            ts_offset: None,
            keyframes: KeyframeThrottle::default(),
        }
    }

    pub(crate) fn live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_packet) < LAYER_TIMEOUT
    }
}

/// The rank of a simulcast rid by the names publishers use: q/h/f (LiveKit's and confab's
/// client), l/m, low/mid/high, 0/1/2. Other rids rank above these, in the order first seen.
pub(crate) fn rid_rank(rid: &str) -> Option<u8> {
    match rid {
        "q" | "l" | "low" | "0" => Some(0),
        "h" | "m" | "mid" | "1" => Some(1),
        "f" | "hi" | "high" | "2" => Some(2),
        _ => None,
    }
}

/// The rid a publisher uses for a rank (q/h/f).
pub(crate) fn rank_rid(rank: u8) -> Option<&'static str> {
    ["q", "h", "f"].get(usize::from(rank)).copied()
}

/// Bit rate: the median of the last three one-second windows, so one window holding a
/// keyframe does not make a layer look more expensive than it is.
#[derive(Debug, Default)]
pub(crate) struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    windows: [u64; 3],
    filled: usize,
}

impl RateMeter {
    pub(crate) fn add(&mut self, now: Instant, bytes: usize) {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= Duration::from_secs(1) {
            let rate = ((self.bytes * 8) as f64 / elapsed.as_secs_f64()) as u64;
            self.windows.rotate_right(1);
            self.windows[0] = rate;
            self.filled = (self.filled + 1).min(3);
            self.window_start = Some(now);
            self.bytes = 0;
        }
        self.bytes += bytes as u64;
    }

    /// The rate, bit/s (0 before the first full window).
    pub(crate) fn bps(&self) -> u64 {
        let mut w = self.windows;
        let w = &mut w[..self.filled];
        w.sort_unstable();
        match w.len() {
            0 => 0,
            1 => w[0],
            2 => w[0],
            _ => w[1],
        }
    }
}

impl Published {
    pub(crate) fn new(mid: Mid, kind: MediaKind, source: Source, muted: bool) -> Self {
        Published {
            mid,
            id: mid.to_string(),
            kind,
            source,
            muted,
            subscribers: Vec::new(),
            layers: Vec::new(),
            reference: None,
            codecs: Vec::new(),
            dynacast: None,
            dynacast_lower_since: None,
            loudness: Default::default(),
        }
    }

    pub(crate) fn info(&self) -> TrackInfo {
        TrackInfo {
            id: self.id.clone(),
            kind: kind_of(self.kind),
            source: self.source,
            muted: self.muted,
        }
    }

    pub(crate) fn is_video(&self) -> bool {
        self.kind == MediaKind::Video
    }

    pub(crate) fn is_simulcast(&self) -> bool {
        self.layers.iter().any(|l| l.rid.is_some())
    }

    /// The position in `layers` of the layer `rid`, added when first seen.
    pub(crate) fn layer_pos(&mut self, rid: Option<Rid>, now: Instant) -> usize {
        if let Some(i) = self.layers.iter().position(|l| l.rid == rid) {
            return i;
        }
        let index = match rid {
            None => 0,
            Some(rid) => rid_rank(&rid).unwrap_or_else(|| {
                self.layers.iter().map(|l| l.index + 1).max().unwrap_or(0).max(3)
            }),
        };
        let at = self.layers.partition_point(|l| l.index < index);
        self.layers.insert(at, Layer::new(rid, index, now));
        at
    }

    pub(crate) fn layer(&self, index: u8) -> Option<&Layer> {
        self.layers.iter().find(|l| l.index == index)
    }

    /// Note the Sender Report a packet of layer `pos` carried, and map the layer's clock onto
    /// the reference layer's once both have reports.
    pub(crate) fn sender_report(&mut self, pos: usize, rtp: u32, ntp: SystemTime) {
        let index = self.layers[pos].index;
        self.layers[pos].report = Some((rtp, ntp));
        let reference = *self.reference.get_or_insert(index);
        if reference == index {
            self.layers[pos].ts_offset = Some(0);
            return;
        }
        if self.layers[pos].ts_offset.is_some() {
            return;
        }
        let Some((ref_rtp, ref_ntp)) = self.layer(reference).and_then(|l| l.report) else { return };
        // At NTP time t, the reference reads ref_rtp + (t - ref_ntp) * 90k; this layer
        // rtp + (t - ntp) * 90k. Their difference is the offset.
        let ntp_diff = match ntp.duration_since(ref_ntp) {
            Ok(d) => (d.as_secs_f64() * 90_000.0) as i64,
            Err(e) => -((e.duration().as_secs_f64() * 90_000.0) as i64),
        };
        let offset = i64::from(ref_rtp) + ntp_diff - i64::from(rtp);
        self.layers[pos].ts_offset = Some(offset as u32);
    }
}

/// Rate limit for keyframe requests to one publisher's track: at most one per interval; a request
/// inside the interval is remembered and sent when it ends.
#[derive(Debug, Default)]
pub(crate) struct KeyframeThrottle {
    last: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    /// Note a request; true if one should be sent now.
    pub(crate) fn request(&mut self, now: Instant, interval: Duration) -> bool {
        self.pending = true;
        self.due(now, interval)
    }

    /// Whether a remembered request should be sent now.
    pub(crate) fn due(&mut self, now: Instant, interval: Duration) -> bool {
        if !self.pending || self.last.is_some_and(|t| now.saturating_duration_since(t) < interval) {
            return false;
        }
        self.pending = false;
        self.last = Some(now);
        true
    }
}

/// Where a subscriber's outgoing m-line is in negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutState {
    /// Wanted, not yet offered.
    New,
    /// In the outstanding offer under this mid.
    Offered(Mid),
    /// Negotiated: media flows on this mid.
    Active(Mid),
}

/// One remote track as a subscriber receives it.
#[derive(Debug)]
pub(crate) struct OutTrack {
    /// The publisher and its track's mid; `None` once the track is gone (the m-line is then
    /// stopped at the next negotiation).
    pub(crate) source: Option<(Pix, Mid)>,
    pub(crate) publisher: ParticipantId,
    pub(crate) track: String,
    pub(crate) kind: MediaKind,
    pub(crate) state: OutState,
    pub(crate) forwarder: Forwarder,
    /// Incoming payload type -> the subscriber's payload type for the same codec.
    pub(crate) pt_map: Vec<(Pt, Option<Pt>)>,
    /// The subscriber's tile for it, in device pixels (`None`: never told; (0, 0): hidden).
    pub(crate) size: Option<(u32, u32)>,
    /// When the size last changed, until the target reached the tile's layer.
    pub(crate) resized: Option<Instant>,
    /// Why the target last changed.
    pub(crate) reason: crate::allocate::Reason,
    /// What the subscriber was last told: (active, layer).
    pub(crate) told: Option<(bool, Option<u8>)>,
    /// Layer switches done.
    pub(crate) switches: u64,
    /// No keyframe is asked for on this stream's behalf before then (see `adapt`: after a
    /// downgrade for a full queue, the queue drains first).
    pub(crate) keyframe_hold: Option<Instant>,
}

impl OutTrack {
    pub(crate) fn new(source: (Pix, Mid), publisher: ParticipantId, track: String, kind: MediaKind) -> Self {
        let video = kind == MediaKind::Video;
        OutTrack {
            source: Some(source),
            publisher,
            track,
            kind,
            state: OutState::New,
            forwarder: Forwarder::new(video, if video { 90_000 } else { 48_000 }),
            pt_map: Vec::new(),
            size: None,
            resized: None,
            reason: crate::allocate::Reason::Bandwidth,
            told: None,
            switches: 0,
            keyframe_hold: None,
        }
    }

    pub(crate) fn active_mid(&self) -> Option<Mid> {
        match self.state {
            OutState::Active(mid) => Some(mid),
            _ => None,
        }
    }

    /// The mid this track has in the subscriber's session (offered or negotiated).
    pub(crate) fn mid(&self) -> Option<Mid> {
        match self.state {
            OutState::Offered(mid) | OutState::Active(mid) => Some(mid),
            OutState::New => None,
        }
    }
}

pub(crate) fn kind_of(kind: MediaKind) -> Kind {
    match kind {
        MediaKind::Audio => Kind::Audio,
        MediaKind::Video => Kind::Video,
    }
}

/// The video payload format of a codec, if the SFU can find keyframes in it.
pub(crate) fn video_codec(codec: Codec) -> Option<VideoCodec> {
    match codec {
        Codec::Vp8 => Some(VideoCodec::Vp8),
        Codec::Vp9 => Some(VideoCodec::Vp9),
        Codec::H264 => Some(VideoCodec::H264),
        Codec::Av1 => Some(VideoCodec::Av1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_ignores_one_keyframe_window() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        assert_eq!(m.bps(), 0);
        // 100 kB in the first second (a keyframe), then 50 kB a second.
        for ms in 0..5000u64 {
            let bytes = if ms < 1000 { 100 } else { 50 };
            m.add(t0 + Duration::from_millis(ms), bytes);
        }
        assert!((390_000..=410_000).contains(&m.bps()), "{}", m.bps());
    }

    #[test]
    fn keyframe_requests_are_throttled_and_remembered() {
        let t0 = Instant::now();
        let iv = Duration::from_millis(250);
        let mut k = KeyframeThrottle::default();
        assert!(!k.due(t0, iv), "nothing requested");
        assert!(k.request(t0, iv));
        assert!(!k.request(t0 + Duration::from_millis(100), iv), "inside the interval");
        assert!(!k.due(t0 + Duration::from_millis(200), iv));
        assert!(k.due(t0 + Duration::from_millis(250), iv), "remembered request is sent");
        assert!(!k.due(t0 + Duration::from_millis(900), iv), "and only once");
    }
}

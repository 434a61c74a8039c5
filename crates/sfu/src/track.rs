//! The two ends of a forwarded track: what a publisher sends in ([`Published`]) and what each
//! subscriber gets out ([`OutTrack`]).

use std::time::{Duration, Instant};

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
    /// The simulcast layer forwarded when the publisher sends several (the first one seen).
    pub(crate) rid: Option<Rid>,
    /// Payload types seen on this track and their codecs.
    pub(crate) codecs: Vec<(Pt, PayloadParams)>,
    pub(crate) keyframes: KeyframeThrottle,
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
            rid: None,
            codecs: Vec::new(),
            keyframes: KeyframeThrottle::default(),
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

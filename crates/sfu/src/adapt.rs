//! Adapting what each subscriber receives to its link and its screen, and what each publisher
//! sends to what anyone needs.
//!
//! Every [`ADAPT_INTERVAL`] the core runs [`Sfu::adapt`]: for each subscriber it describes the
//! video tracks it receives to the allocator ([`crate::allocate`]): the layers their publishers
//! send now with their measured rates, the largest layer worth sending to the tile the
//! subscriber reported; then it applies the plan: forwarder targets (switches happen at the
//! target layer's next keyframe), `stream_state` for pauses, padding and desired rates for
//! str0m's estimator. Then dynacast: each simulcast publisher is told which layers somebody
//! could use, so it stops encoding the others.

use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::media::{MediaKind, Mid};

use crate::allocate::{Downlink, Priority, TrackNeed};
use crate::api::{DownlinkStats, OutStreamStats, Signal, Source};
use crate::error::Error;
use crate::media::stream_state;
use crate::participant::guarded;
use crate::slots::Pix;
use crate::track::{Published, rank_rid};
use crate::{ParticipantId, Sfu};

/// How often targets are recomputed.
pub(crate) const ADAPT_INTERVAL: Duration = Duration::from_millis(250);
/// Dynacast waits this long before telling a publisher to stop a layer nobody needs.
const DYNACAST_OFF_DELAY: Duration = Duration::from_secs(3);
/// Reserved per audio track a subscriber receives, bit/s on the wire: Opus at about 32 kbit/s
/// in 50 packets a second, each with [`crate::media::WIRE_OVERHEAD`] bytes of headers.
const AUDIO_RATE: u64 = 64_000;
/// Rates assumed for layers not measured yet, by rank.
const NOMINAL_RATES: [u64; 3] = [150_000, 500_000, 1_500_000];
/// The same for a screen share, whose rate follows its content (mostly still) far more than its
/// encoder's maximum: planning with the camera's rates would drop a screen's top layer at
/// 1 Mbit/s for a rate it never reaches.
const NOMINAL_SCREEN_RATES: [u64; 3] = [100_000, 250_000, 500_000];
/// How long a tile's resize keeps asking for its layer at once (the layer may need its
/// publisher to resume it first, which takes a moment).
const RESIZE_MEMORY: Duration = Duration::from_secs(5);
/// After a downgrade for a full queue, the new layer's keyframe is asked for this much later:
/// the old layer's packets still queued (str0m's pacer holds up to 250 ms) drain first.
const CONGESTION_DRAIN: Duration = Duration::from_millis(400);
/// How long a new layer's encoder is assumed to ramp up.
const RAMP_UP: Duration = Duration::from_secs(3);
/// A layer is worth sending to a tile if it is at least this share of the tile's size.
const SIZE_SLACK: f64 = 0.85;

impl Sfu {
    /// A subscriber reported how large it shows a remote track.
    pub(crate) fn subscription(
        &mut self,
        now: Instant,
        pix: Pix,
        publisher: &ParticipantId,
        track: &str,
        size: (u32, u32),
    ) -> Result<(), Error> {
        let s = self.participants.get_mut(pix).ok_or(Error::UnknownParticipant)?;
        let out = s
            .outs
            .iter_mut()
            .flatten()
            .find(|o| o.publisher == *publisher && o.track == track && o.source.is_some())
            .ok_or_else(|| Error::UnknownTrack(track.to_string()))?;
        if out.size != Some(size) {
            // A tile that was shown before and changed size; its first size (or coming back
            // from hidden) climbs like any other up-switch, on the current estimate.
            let shown = out.size.is_some_and(|(w, h)| w > 0 && h > 0);
            out.size = Some(size);
            out.resized = shown.then_some(now);
        }
        Ok(())
    }

    /// Layer selection of every subscriber, for operators.
    pub fn downlinks(&self) -> Vec<DownlinkStats> {
        let rid = |source: Option<(Pix, Mid)>, layer: Option<u8>| -> Option<String> {
            let (publisher, mid) = source?;
            let track = self.participants.get(publisher)?.published(mid)?;
            let layer = track.layer(layer?)?;
            Some(layer.rid.map_or_else(|| "-".to_string(), |r| r.to_string()))
        };
        self.participants
            .iter()
            .map(|(_, p)| DownlinkStats {
                participant: p.id.clone(),
                estimate: p.downlink.estimate,
                tracks: p
                    .outs
                    .iter()
                    .flatten()
                    .filter(|o| o.kind == MediaKind::Video && o.source.is_some())
                    .map(|o| OutStreamStats {
                        publisher: o.publisher.clone(),
                        track: o.track.clone(),
                        layer: rid(o.source, o.forwarder.current()),
                        target: rid(o.source, o.forwarder.target()),
                        reason: o.reason.as_str(),
                        switches: o.switches,
                        size: o.size,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Recompute every subscriber's targets and every publisher's needed layers.
    pub(crate) fn adapt(&mut self, now: Instant) {
        let subscribers: Vec<Pix> = self.participants.iter().map(|(pix, _)| pix).collect();
        // (publisher, mid) -> highest layer any subscriber could use.
        let mut needed: Vec<((Pix, Mid), Option<u8>)> = Vec::new();
        for sub in subscribers {
            self.adapt_subscriber(now, sub, &mut needed);
        }
        self.dynacast(now, &needed);
    }

    fn adapt_subscriber(&mut self, now: Instant, sub: Pix, needed: &mut Vec<((Pix, Mid), Option<u8>)>) {
        let Some(s) = self.participants.get(sub) else { return };
        let mut audio = 0;
        let mut slots = Vec::new();
        let mut tracks = Vec::new();
        let mut current = Vec::new();
        for (slot, out) in s.outs.iter().enumerate() {
            let Some(out) = out else { continue };
            let (Some((publisher, mid)), Some(_)) = (out.source, out.active_mid()) else { continue };
            if out.kind == MediaKind::Audio {
                audio += AUDIO_RATE;
                continue;
            }
            let Some(track) = self.participants.get(publisher).and_then(|p| p.published(mid)) else { continue };
            let max_layer = max_layer_for(out.size, track);
            match needed.iter_mut().find(|(k, _)| *k == (publisher, mid)) {
                Some((_, n)) => *n = (*n).max(max_layer),
                None => needed.push(((publisher, mid), max_layer)),
            }
            if track.muted {
                continue;
            }
            let layers: Vec<(u8, u64)> = track
                .layers
                .iter()
                .filter(|l| l.live(now))
                .map(|l| (l.index, layer_rate(l.rate.bps(), l.index, now.saturating_duration_since(l.first_packet), track.source)))
                .collect();
            if layers.is_empty() {
                continue;
            }
            let speaker = self.speakers.get(&s.room).and_then(|r| r.active());
            let priority = match track.source {
                Source::Screen => Priority::Screen,
                _ if self.participants.get(publisher).is_some_and(|p| Some(&p.id) == speaker) => Priority::Speaker,
                _ => Priority::Camera,
            };
            let resized = out.resized.is_some_and(|t| now.saturating_duration_since(t) < RESIZE_MEMORY);
            let potential = track
                .layers
                .iter()
                .filter(|l| max_layer.is_some_and(|m| l.index <= m))
                .map(|l| {
                    // What the layer may grow to: its measured rate is still climbing while the
                    // publisher's encoder ramps up (longer than RAMP_UP when its own uplink
                    // estimate grows slowly), and the estimator must look ahead of it.
                    let measured = if l.live(now) { l.rate.bps() } else { 0 };
                    layer_rate(measured, l.index, now.saturating_duration_since(l.first_packet), track.source)
                        .max(nominal_rate(l.index, track.source))
                })
                .max()
                .unwrap_or(0);
            tracks.push(TrackNeed { priority, layers, max_layer, resized, potential });
            current.push(out.forwarder.target());
            slots.push(slot);
        }

        let congestion_control = self.config.congestion_control;
        let Some(s) = self.participants.get_mut(sub) else { return };
        if tracks.is_empty() {
            self.set_bwe(sub, 0, audio);
            return;
        }
        let plan = if congestion_control {
            s.downlink.plan(now, &tracks, &current, audio)
        } else {
            Downlink::plan_unlimited(&tracks, &current)
        };
        if plan.changes.iter().any(Option::is_some) {
            tracing::trace!(participant = %s.id, ?tracks, ?current, quiet = s.downlink.quiet(now), "allocation inputs");
        }
        let estimate = s.downlink.estimate;
        let mut signals = Vec::new();
        let mut wanted = Vec::new();
        for (i, change) in plan.changes.iter().enumerate() {
            let Some((target, reason)) = *change else { continue };
            let Some(out) = s.outs.get_mut(slots[i]).and_then(Option::as_mut) else { continue };
            tracing::debug!(participant = %s.id, publisher = %out.publisher, track = %out.track,
                from = ?out.forwarder.target(), to = ?target, reason = reason.as_str(), estimate, congested = plan.congested, "layer target");
            let down = match (out.forwarder.current(), target) {
                (Some(cur), Some(to)) => to < cur,
                (Some(_), None) => true,
                (None, _) => false,
            };
            out.forwarder.set_target(target);
            if down && target.is_some() {
                // Until the lower layer's keyframe, the layer left sends its base temporal layer
                // only (VP8 with temporal layers: about 40 % of its rate).
                out.forwarder.thin_until_switch();
            }
            let mut hold = false;
            if plan.congested && down {
                // The old layer only adds to a full queue, and the new layer's keyframe would
                // wait behind it (and be dropped with it): stop it now. The picture holds
                // until that keyframe, which comes sooner through a queue that drains: it is
                // asked for once what was queued (the pacer's and the link's) has gone.
                out.forwarder.pause();
                out.keyframe_hold = Some(now + CONGESTION_DRAIN);
                hold = true;
            }
            out.reason = reason;
            match target {
                // A pause takes effect now: say so now.
                None => signals.extend(stream_state(out, estimate, None)),
                Some(layer) => {
                    if s.media_connected && !hold {
                        if let Some(source) = out.source {
                            wanted.push((source, layer));
                        }
                    }
                }
            }
        }
        for signal in signals {
            self.signal(sub, signal);
        }
        for ((publisher, mid), layer) in wanted {
            self.request_keyframe(now, publisher, mid, Some(layer));
        }
        if let Some(rate) = plan.reset_to {
            if let Some(s) = self.participants.get_mut(sub) {
                tracing::debug!(participant = %s.id, estimate, rate, "estimator restarted");
                let rtc = &mut s.rtc;
                if guarded(|| rtc.bwe().reset(Bitrate::bps(rate))).is_ok() {
                    s.downlink.estimate = Some(rate);
                    s.needs_tick = true;
                    self.mark_dirty(sub);
                }
            }
        }
        self.set_bwe(sub, plan.pad_to, plan.desired);
    }

    /// Give str0m's estimator for `pix` its padding and desired rates, when they changed.
    fn set_bwe(&mut self, pix: Pix, pad_to: u64, desired: u64) {
        if !self.config.congestion_control {
            // No estimator to tell.
            return;
        }
        let Some(p) = self.participants.get_mut(pix) else { return };
        let desired = desired.max(pad_to).max(100_000);
        if p.bwe_rates == (pad_to, desired) {
            return;
        }
        p.bwe_rates = (pad_to, desired);
        tracing::trace!(participant = %p.id, pad_to, desired, "bwe rates");
        let rtc = &mut p.rtc;
        if guarded(|| rtc.bwe().set_bitrate(Bitrate::bps(pad_to), Bitrate::bps(desired))).is_ok() {
            p.needs_tick = true;
            self.mark_dirty(pix);
        }
    }

    /// Tell publishers which layers of their simulcast tracks somebody could use: at once when
    /// more are needed, after [`DYNACAST_OFF_DELAY`] when fewer.
    fn dynacast(&mut self, now: Instant, needed: &[((Pix, Mid), Option<u8>)]) {
        let publishers: Vec<Pix> = self.participants.iter().map(|(pix, _)| pix).collect();
        for publisher in publishers {
            let Some(p) = self.participants.get_mut(publisher) else { continue };
            let mut signals = Vec::new();
            for track in p.published.iter_mut().filter(|t| t.is_simulcast()) {
                let top = track.layers.iter().map(|l| l.index).max().unwrap_or(0).max(2);
                let need = needed
                    .iter()
                    .find(|(k, _)| *k == (publisher, track.mid))
                    .and_then(|(_, n)| *n)
                    .unwrap_or(0);
                // `None`: every layer.
                let want = (need < top).then_some(need);
                // Compare as levels, `None` (every layer) above any layer.
                let level = |l: Option<u8>| l.unwrap_or(u8::MAX);
                let more = level(want) > level(track.dynacast);
                let fewer = level(want) < level(track.dynacast);
                let send = if more {
                    true
                } else if fewer {
                    let since = *track.dynacast_lower_since.get_or_insert(now);
                    now.saturating_duration_since(since) >= DYNACAST_OFF_DELAY
                } else {
                    false
                };
                if !fewer {
                    track.dynacast_lower_since = None;
                }
                if send {
                    track.dynacast = want;
                    track.dynacast_lower_since = None;
                    signals.push(Signal::Layers { track: track.id.clone(), active: active_rids(track, want) });
                }
            }
            if !signals.is_empty() {
                tracing::debug!(participant = %p.id, ?signals, "dynacast");
            }
            for signal in signals {
                self.signal(publisher, signal);
            }
        }
    }
}

/// The rids a publisher should send when layers up to `want` are needed (`None`: all).
fn active_rids(track: &Published, want: Option<u8>) -> Vec<String> {
    let max = want.unwrap_or(u8::MAX);
    let mut rids: Vec<String> =
        track.layers.iter().filter(|l| l.index <= max).filter_map(|l| l.rid.map(|r| r.to_string())).collect();
    // The usual names too, for layers the publisher has not sent yet.
    for rank in 0..=max.min(2) {
        if let Some(rid) = rank_rid(rank) {
            if !rids.iter().any(|r| r == rid) {
                rids.push(rid.to_string());
            }
        }
    }
    rids
}

/// The rate to plan with for a layer: measured, but nominal (confab's client's maximum for the
/// rank) while the publisher's encoder is still ramping up (its first [`RAMP_UP`]), so a layer
/// is not picked for a rate it will soon exceed, nor shunned for its first keyframe.
fn layer_rate(measured: u64, index: u8, age: Duration, source: Source) -> u64 {
    match nominal_rate(index, source) {
        nominal if nominal > 0 && (measured == 0 || age < RAMP_UP) => nominal,
        _ => measured.max(30_000),
    }
}

/// confab's client's maximum rate for a layer rank (0 for ranks above its three).
fn nominal_rate(index: u8, source: Source) -> u64 {
    let nominal = if source == Source::Screen { &NOMINAL_SCREEN_RATES } else { &NOMINAL_RATES };
    nominal.get(usize::from(index)).copied().unwrap_or(0)
}

/// The highest layer worth sending to a tile of `size` device pixels: the smallest layer at
/// least about as large; `None` when the tile is hidden; no limit before any size is known.
pub(crate) fn max_layer_for(size: Option<(u32, u32)>, track: &Published) -> Option<u8> {
    let Some((w, h)) = size else { return Some(u8::MAX) };
    if w == 0 || h == 0 {
        return None;
    }
    let top = track.layers.iter().filter_map(|l| l.size.map(|s| (l.index, s))).max_by_key(|(i, _)| *i);
    for layer in &track.layers {
        // A layer's size: seen in its keyframes, or guessed from a known layer's (each rank
        // doubles the width), or from 320 px for rank 0.
        let (lw, lh) = match (layer.size, top) {
            (Some((lw, lh)), _) => (f64::from(lw), f64::from(lh)),
            (None, Some((ti, (tw, th)))) => {
                let scale = 2f64.powi(i32::from(layer.index) - i32::from(ti));
                (f64::from(tw) * scale, f64::from(th) * scale)
            }
            (None, None) => {
                let scale = 2f64.powi(i32::from(layer.index));
                (320.0 * scale, 180.0 * scale)
            }
        };
        if lw >= f64::from(w) * SIZE_SLACK || lh >= f64::from(h) * SIZE_SLACK {
            return Some(layer.index);
        }
    }
    Some(u8::MAX)
}

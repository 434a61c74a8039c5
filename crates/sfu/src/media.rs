//! The forwarding path: one RTP packet from a publisher to every subscriber of its track.
//!
//! Per packet and subscriber the [`Forwarder`](crate::forward::Forwarder) decides; this code
//! carries the decision out: map the payload type to the subscriber's, write the packet to the
//! subscriber's send stream (the payload buffer is shared, not copied), and ask the publisher for
//! a keyframe when a subscriber waits for one. No allocation and no lock per packet: every
//! lookup is an index or a scan of a few entries.

use std::time::Instant;

use str0m::format::PayloadParams;
use str0m::media::Rid;
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor, Vp8Patch};

use crate::codec::{VideoCodec, vp8_descriptor};
use crate::forward::{Decision, DropReason, PacketIn, Vp8Ids};
use crate::participant::{Effect, guarded};
use crate::slots::Pix;
use crate::track::{OutTrack, video_codec};
use crate::{LeaveReason, Sfu, Signal};

/// Bytes a forwarded packet takes on the wire beside its payload: RTP header (12) and
/// extensions (about 20), SRTP tag (10), UDP (8) and IPv4 (20). Layer rates count them, so that
/// they compare with the bandwidth estimate, which measures the wire.
pub(crate) const WIRE_OVERHEAD: usize = 70;

impl Sfu {
    pub(crate) fn forward(&mut self, now: Instant, pix: Pix, packet: RtpPacket) {
        let interval = self.config.keyframe_request_interval;
        let Some(p) = self.participants.get_mut(pix) else { return };
        let Some((mid, rid)) = p.stream_of(packet.header.ssrc) else { return };
        let Some(track) = p.published.iter_mut().find(|t| t.mid == mid) else { return };
        let pt = packet.header.payload_type;
        let params = match track.codecs.iter().find(|(p, _)| *p == pt) {
            Some((_, params)) => *params,
            None => {
                let Some(params) = p.rtc.codec_config().params().iter().find(|c| c.pt() == pt).copied() else {
                    return;
                };
                track.codecs.push((pt, params));
                params
            }
        };
        let codec = video_codec(params.spec().codec).filter(|_| track.is_video());
        let keyframe_start = match codec {
            Some(codec) => codec.is_keyframe_start(&packet.payload),
            // Audio, or a video format whose keyframes we cannot see: every packet is a start.
            None => true,
        };
        let vp8 = match codec {
            Some(VideoCodec::Vp8) => vp8_descriptor(&packet.payload),
            _ => None,
        };

        // The layer: its rate, liveness, size and clock.
        if let Some(level) = packet.header.ext_vals.audio_level.filter(|_| !track.is_video()) {
            track.loudness.packet(now, level);
        }
        let pos = track.layer_pos(rid, now);
        let simulcast = track.is_simulcast();
        if let Some(info) = packet.last_sender_info {
            let known = track.layers[pos].report.map(|(rtp, _)| rtp);
            let rtp = info.rtp_time.numer() as u32;
            if known != Some(rtp) {
                track.sender_report(pos, rtp, info.ntp_time);
            }
        }
        let layer = &mut track.layers[pos];
        layer.rate.add(now, packet.payload.len() + WIRE_OVERHEAD);
        if !layer.live(now) {
            // The layer comes back (dynacast resumed it, or the publisher's encoder did): its
            // encoder ramps up again, so it is planned at its nominal rate for a while, as a new
            // one (see `adapt::layer_rate`), not at the low rate it starts with.
            layer.first_packet = now;
        }
        layer.last_packet = now;
        if let Some(size) = vp8.and_then(|d| d.keyframe_size) {
            layer.size = Some(size);
        }
        let index = layer.index;
        let (timestamp, synced) = match (simulcast, layer.ts_offset) {
            (false, _) => (packet.header.timestamp, true),
            (true, Some(offset)) => (packet.header.timestamp.wrapping_add(offset), true),
            (true, None) => (packet.header.timestamp, false),
        };

        let muted = track.muted;
        let input = PacketIn {
            seq: *packet.seq_no,
            timestamp,
            synced,
            keyframe_start,
            layer: index,
            vp8: vp8.and_then(|d| match d.picture_id {
                Some((picture_id, true)) => Some(Vp8Ids { picture_id, tl0_pic_idx: d.tl0_pic_idx, key_idx: d.key_idx }),
                _ => None,
            }),
            temporal: vp8.and_then(|d| d.temporal),
            frame_start: vp8.map_or(true, |d| d.frame_start),
            arrival: packet.timestamp,
        };
        let ext = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let subscribers = track.subscribers.len();

        // Layers some subscriber waits for a keyframe of (bit per layer index).
        let mut wants_keyframe = 0u32;
        let mut str0m_vp8: Option<Option<Vp8Descriptor>> = None;
        for i in 0..subscribers {
            let Some(&(sub, slot)) = self
                .participants
                .get(pix)
                .and_then(|p| p.published(mid))
                .and_then(|t| t.subscribers.get(i))
            else {
                break;
            };
            let Some(s) = self.participants.get_mut(sub) else { continue };
            if !s.media_connected {
                // Nothing written now would arrive: the run starts once connected.
                continue;
            }
            let estimate = s.downlink.estimate;
            let Some(out) = s.outs.get_mut(slot).and_then(Option::as_mut) else { continue };
            let Some(out_mid) = out.active_mid() else { continue };
            let (seq, timestamp, vp8_ids, started) = match out.forwarder.decide(&input, muted) {
                Decision::Forward { seq, timestamp, vp8, started } => (seq, timestamp, vp8, started),
                Decision::Drop(DropReason::AwaitingKeyframe) => {
                    if out.keyframe_hold.is_none_or(|t| now >= t) {
                        wants_keyframe |= 1 << index.min(31);
                    }
                    continue;
                }
                Decision::Drop(_) => continue,
            };
            let Some(out_pt) = out_pt(out, params, &s.rtc) else { continue };
            let mut write = RtpWrite::new(out_pt, seq.into(), timestamp, packet.timestamp, packet.payload.clone())
                .marker(packet.header.marker)
                .ext_vals(ext.clone())
                .nackable(out.kind.is_video());
            if let Some(ids) = vp8_ids {
                // Parsed once per packet, and only when some subscriber's ids differ.
                let parsed = *str0m_vp8.get_or_insert_with(|| Vp8Descriptor::parse(&packet.payload).ok());
                if let Some(patch) = parsed.and_then(|d| vp8_patch(d, ids)) {
                    write = write.vp8_patch(patch);
                }
            }
            if started {
                tracing::debug!(participant = %s.id, layer = index, seq, keyframe = input.keyframe_start, "run started");
            }
            let state = started.then(|| {
                out.switches += 1;
                stream_state(out, estimate, rid)
            });
            let rtc = &mut s.rtc;
            let written = guarded(|| match rtc.direct_api().stream_tx_by_mid(out_mid, None) {
                Some(tx) => {
                    tx.write_rtp(write);
                    true
                }
                None => false,
            });
            match written {
                Ok(true) => {
                    self.stats.rtp_forwarded += 1;
                    self.stats.rtp_forwarded_bytes += packet.payload.len() as u64;
                    s.needs_tick = true;
                    self.mark_dirty(sub);
                }
                Ok(false) => {}
                Err(_) => self.effects.push_back(Effect::Fail(sub, LeaveReason::Internal)),
            }
            if let Some(signal) = state.flatten() {
                self.stats.layer_switches += 1;
                self.signal(sub, signal);
            }
        }
        // Ask for a keyframe of each layer a subscriber waits for, or of this layer if an
        // earlier request was held back by the rate limit and may go now.
        let mut send = Vec::new();
        if let Some(track) = self.participants.get_mut(pix).and_then(|p| p.published_mut(mid)) {
            if track.is_video() {
                for layer in track.layers.iter_mut() {
                    let wanted = wants_keyframe & (1 << layer.index.min(31)) != 0;
                    let go = match wanted {
                        true => layer.keyframes.request(now, interval),
                        false => layer.index == index && layer.keyframes.due(now, interval),
                    };
                    if go {
                        send.push(layer.rid);
                    }
                }
            }
        }
        for rid in send {
            self.send_keyframe_request(pix, mid, rid);
        }
    }
}

/// What to tell a subscriber about its outgoing video track when it starts, switches layer or
/// pauses, if that is news. `rid` names the layer forwarded now.
pub(crate) fn stream_state(out: &mut OutTrack, estimate: Option<u64>, rid: Option<Rid>) -> Option<Signal> {
    if !out.kind.is_video() {
        return None;
    }
    let active = out.forwarder.target().is_some();
    let layer = if active { out.forwarder.current() } else { None };
    if out.told == Some((active, layer)) {
        return None;
    }
    let reason = if out.told.is_none() { "start" } else { out.reason.as_str() };
    out.told = Some((active, layer));
    Some(Signal::StreamState {
        participant: out.publisher.clone(),
        track: out.track.clone(),
        active,
        layer: rid.filter(|_| layer.is_some()).map(|r| r.to_string()),
        reason,
        estimate,
    })
}

/// The str0m patch that rewrites a VP8 payload's descriptor ids.
fn vp8_patch(descriptor: Vp8Descriptor, ids: Vp8Ids) -> Option<Vp8Patch> {
    let mut builder = descriptor.patch().picture_id(ids.picture_id);
    if let Some(tl0) = ids.tl0_pic_idx {
        builder = builder.tl0_pic_idx(tl0);
    }
    if let Some(key) = ids.key_idx {
        builder = builder.key_idx(key);
    }
    builder.build().ok()
}

/// The subscriber's payload type for the codec of `params`, remembered per incoming payload type.
fn out_pt(out: &mut OutTrack, params: PayloadParams, rtc: &str0m::Rtc) -> Option<str0m::media::Pt> {
    if let Some((_, pt)) = out.pt_map.iter().find(|(p, _)| *p == params.pt()) {
        return *pt;
    }
    let mapped = rtc.codec_config().match_params(params).map(|p| p.pt());
    let mapped = mapped.filter(|pt| {
        out.active_mid()
            .and_then(|mid| rtc.media(mid))
            .is_none_or(|m| m.remote_pts().is_empty() || m.remote_pts().contains(pt))
    });
    if mapped.is_none() {
        tracing::warn!(codec = ?params.spec().codec, "a subscriber cannot receive this codec");
    }
    out.pt_map.push((params.pt(), mapped));
    mapped
}

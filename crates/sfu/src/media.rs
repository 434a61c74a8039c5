//! The forwarding path: one RTP packet from a publisher to every subscriber of its track.
//!
//! Per packet and subscriber the [`Forwarder`](crate::forward::Forwarder) decides; this code
//! carries the decision out: map the payload type to the subscriber's, write the packet to the
//! subscriber's send stream (the payload buffer is shared, not copied), and ask the publisher for
//! a keyframe when a subscriber waits for one. No allocation and no lock per packet: every
//! lookup is an index or a scan of a few entries.

use std::time::Instant;

use str0m::format::PayloadParams;
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};

use crate::forward::{Decision, DropReason, PacketIn};
use crate::participant::{Effect, guarded};
use crate::slots::Pix;
use crate::track::{OutTrack, video_codec};
use crate::{LeaveReason, Sfu};

impl Sfu {
    pub(crate) fn forward(&mut self, now: Instant, pix: Pix, packet: RtpPacket) {
        let interval = self.config.keyframe_request_interval;
        let Some(p) = self.participants.get_mut(pix) else { return };
        let Some((mid, rid)) = p.stream_of(packet.header.ssrc) else { return };
        let Some(track) = p.published.iter_mut().find(|t| t.mid == mid) else { return };
        // Without simulcast support yet, forward one layer: the first one seen.
        if rid.is_some() {
            match track.rid {
                None => track.rid = rid,
                Some(chosen) if Some(chosen) != rid => return,
                _ => {}
            }
        }
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
        let keyframe_start = match video_codec(params.spec().codec) {
            Some(codec) if track.is_video() => codec.is_keyframe_start(&packet.payload),
            // Audio, or a video format whose keyframes we cannot see: every packet is a start.
            _ => true,
        };
        let muted = track.muted;
        let input = PacketIn {
            seq: *packet.seq_no,
            timestamp: packet.header.timestamp,
            keyframe_start,
            arrival: packet.timestamp,
        };
        let ext = ExtensionValues {
            audio_level: packet.header.ext_vals.audio_level,
            voice_activity: packet.header.ext_vals.voice_activity,
            video_orientation: packet.header.ext_vals.video_orientation,
            ..ExtensionValues::default()
        };
        let subscribers = track.subscribers.len();

        let mut wants_keyframe = false;
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
            let Some(out) = s.outs.get_mut(slot).and_then(Option::as_mut) else { continue };
            let Some(out_mid) = out.active_mid() else { continue };
            let (seq, timestamp) = match out.forwarder.decide(&input, muted) {
                Decision::Forward { seq, timestamp } => (seq, timestamp),
                Decision::Drop(DropReason::AwaitingKeyframe) => {
                    wants_keyframe = true;
                    continue;
                }
                Decision::Drop(_) => continue,
            };
            let Some(out_pt) = out_pt(out, params, &s.rtc) else { continue };
            let write = RtpWrite::new(out_pt, seq.into(), timestamp, packet.timestamp, packet.payload.clone())
                .marker(packet.header.marker)
                .ext_vals(ext.clone())
                .nackable(out.kind.is_video());
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
        }
        // Ask for a keyframe if a subscriber waits for one, or if an earlier request was held
        // back by the rate limit and may go now.
        let send = self
            .participants
            .get_mut(pix)
            .and_then(|p| p.published_mut(mid))
            .filter(|t| t.is_video())
            .is_some_and(|t| match wants_keyframe {
                true => t.keyframes.request(now, interval),
                false => t.keyframes.due(now, interval),
            });
        if send {
            self.send_keyframe_request(pix, mid);
        }
    }
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

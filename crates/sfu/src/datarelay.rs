//! Relaying data messages: what a participant sends on its data channels goes, tagged with its
//! id, to the room or to the participants it names (see [`crate::data`] for the frames).

use std::time::Instant;

use str0m::channel::ChannelId;
use tracing::debug;

use crate::data::{self, Kind, MAX_BUFFERED_LOSSY, PRIVATE};
use crate::engine::Sfu;
use crate::slots::Pix;

impl Sfu {
    /// A message arrived on `channel` of participant `from`: check it, then write it to each
    /// recipient's channel of the same kind. A recipient that is not reading (its lossy channel
    /// backed up, or its reliable one over str0m's buffer) loses the message; nothing waits.
    pub(crate) fn relay_data(&mut self, now: Instant, from: Pix, channel: ChannelId, bytes: &[u8]) {
        self.stats.data_in += 1;
        let Some(p) = self.participants.get_mut(from) else { return };
        let Some(kind) = p.channels.kind_of(channel) else {
            // A channel of its own making: the SFU relays only its two.
            self.stats.data_dropped += 1;
            return;
        };
        if !p.grants.publish_data {
            debug!(participant = %p.id, "data message dropped: no canPublishData grant");
            self.stats.data_dropped += 1;
            return;
        }
        if !p.data_allowance.take(now, bytes.len()) {
            debug!(participant = %p.id, "data message dropped: over the rate limit");
            self.stats.data_dropped += 1;
            return;
        }
        let frame = match data::parse_frame(bytes) {
            Ok(f) => f,
            Err(e) => {
                debug!(participant = %p.id, "data message dropped: {e}");
                self.stats.data_dropped += 1;
                return;
            }
        };
        let private = !frame.to.is_empty();
        let flags = frame.flags | if private { PRIVATE } else { 0 };
        let Some(out) = data::relayed_frame(flags, p.id.as_str(), frame.payload) else {
            self.stats.data_dropped += 1;
            return;
        };
        let recipients: Vec<Pix> = match self.rooms.get(&p.room) {
            None => Vec::new(),
            Some(members) if private => members
                .iter()
                .copied()
                .filter(|&q| q != from && self.participants.get(q).is_some_and(|qp| frame.to.contains(&qp.id.as_str())))
                .collect(),
            Some(members) => members.iter().copied().filter(|&q| q != from).collect(),
        };
        // Named participants that are not in the room are not told anything: dropped.
        self.stats.data_dropped += frame.to.len().saturating_sub(recipients.len()) as u64;
        for q in recipients {
            let Some(qp) = self.participants.get_mut(q) else { continue };
            let Some(id) = qp.channels.get(kind) else {
                // Viewers and WHIP publishers have no data channels; a named one is a drop.
                self.stats.data_dropped += u64::from(private);
                continue;
            };
            let Some(mut ch) = qp.rtc.channel(id) else { continue };
            let backed_up = kind == Kind::Lossy && ch.buffered_amount() + out.len() > MAX_BUFFERED_LOSSY;
            if !backed_up && matches!(ch.write(true, &out), Ok(true)) {
                self.stats.data_out += 1;
            } else {
                self.stats.data_dropped += 1;
            }
            self.mark_dirty(q);
        }
    }
}

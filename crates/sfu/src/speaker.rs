//! Who is speaking: from the audio-level header extension (RFC 6464) of each published audio
//! track, the core keeps a loudness per track and, every [`crate::adapt::ADAPT_INTERVAL`], the
//! speaking participants and the active speaker of each room. A change is sent to the room as
//! [`crate::Signal::Speakers`]; the allocator puts the active speaker's camera before the others.
//!
//! Loudness is 0 (silence, -127 dBov) to 127 (0 dBov). It follows a louder packet at once and
//! falls by [`DECAY_PER_SECOND`] otherwise, so the gaps between words do not end a turn. A
//! participant starts speaking above [`SPEAKING_ON`] and stops below [`SPEAKING_OFF`]. The
//! active speaker changes to the loudest speaker only when the current one has stopped, or is
//! [`TAKEOVER_MARGIN`] quieter, and never within [`MIN_TURN`] of the last change.

use std::time::{Duration, Instant};

use crate::api::{ParticipantId, Signal};
use crate::engine::Sfu;
use crate::slots::Pix;

/// Loudness to start speaking (-57 dBov) and to stop (-67 dBov).
pub(crate) const SPEAKING_ON: f32 = 70.0;
pub(crate) const SPEAKING_OFF: f32 = 60.0;
/// How fast loudness falls between packets, per second.
const DECAY_PER_SECOND: f32 = 30.0;
/// How much louder another speaker must be to take over from one still speaking.
const TAKEOVER_MARGIN: f32 = 10.0;
/// The shortest turn of an active speaker.
const MIN_TURN: Duration = Duration::from_millis(1500);

/// The loudness of one audio track.
#[derive(Debug, Default, Clone)]
pub(crate) struct Loudness {
    value: f32,
    at: Option<Instant>,
}

impl Loudness {
    /// A packet at `now` with `level` (str0m's value: -127 dBov .. 0 dBov).
    pub(crate) fn packet(&mut self, now: Instant, level: i8) {
        let loud = 127.0 + f32::from(level.clamp(-127, 0));
        self.value = self.at(now).max(loud);
        self.at = Some(now);
    }

    /// The loudness at `now`, decayed since the last packet.
    pub(crate) fn at(&self, now: Instant) -> f32 {
        match self.at {
            None => 0.0,
            Some(t) => (self.value - DECAY_PER_SECOND * now.saturating_duration_since(t).as_secs_f32()).max(0.0),
        }
    }
}

/// The speakers of one room.
#[derive(Debug, Default)]
pub(crate) struct RoomSpeakers {
    /// Those speaking now, loudest first.
    speaking: Vec<ParticipantId>,
    active: Option<ParticipantId>,
    changed: Option<Instant>,
}

impl RoomSpeakers {
    /// The active speaker (the last one, while nobody speaks).
    pub(crate) fn active(&self) -> Option<&ParticipantId> {
        self.active.as_ref()
    }

    /// Decide from each participant's loudness (with whether they were speaking); returns whether
    /// anything changed.
    fn update(&mut self, now: Instant, levels: &[(ParticipantId, f32)]) -> bool {
        let mut speaking: Vec<(ParticipantId, f32)> = levels
            .iter()
            .filter(|(p, l)| *l >= SPEAKING_ON || (*l >= SPEAKING_OFF && self.speaking.contains(p)))
            .cloned()
            .collect();
        speaking.sort_by(|a, b| b.1.total_cmp(&a.1));
        let names: Vec<ParticipantId> = speaking.iter().map(|(p, _)| p.clone()).collect();
        let mut changed = names != self.speaking;
        self.speaking = names;
        let current = self.active.as_ref().and_then(|a| speaking.iter().find(|(p, _)| p == a)).map(|(_, l)| *l);
        let may_switch = self.changed.is_none_or(|t| now.saturating_duration_since(t) >= MIN_TURN);
        if let Some((loudest, level)) = speaking.first() {
            let takes_over = match current {
                None => true,
                Some(c) => *level > c + TAKEOVER_MARGIN,
            };
            if Some(loudest) != self.active.as_ref() && takes_over && may_switch {
                self.active = Some(loudest.clone());
                self.changed = Some(now);
                changed = true;
            }
        }
        changed
    }
}

impl Sfu {
    /// Recompute every room's speakers; tell a room when they changed.
    pub(crate) fn update_speakers(&mut self, now: Instant) {
        let rooms: Vec<(String, Vec<Pix>)> = self.rooms.iter().map(|(r, m)| (r.clone(), m.clone())).collect();
        for (room, members) in rooms {
            let levels: Vec<(ParticipantId, f32)> = members
                .iter()
                .filter_map(|&pix| self.participants.get(pix))
                .map(|p| {
                    let loudest = p.published.iter().filter(|t| !t.is_video() && !t.muted).map(|t| t.loudness.at(now)).fold(0.0, f32::max);
                    (p.id.clone(), loudest)
                })
                .collect();
            let speakers = self.speakers.entry(room).or_default();
            if !speakers.update(now, &levels) {
                continue;
            }
            let signal = Signal::Speakers {
                active: speakers.active.clone(),
                speaking: speakers
                    .speaking
                    .iter()
                    .filter_map(|p| levels.iter().find(|(q, _)| q == p))
                    .map(|(p, l)| (p.clone(), (l * 100.0 / 127.0).round().clamp(0.0, 100.0) as u8))
                    .collect(),
            };
            for pix in members {
                if self.participants.get(pix).is_some_and(|p| p.announced) {
                    self.signal(pix, signal.clone());
                }
            }
        }
        self.speakers.retain(|room, _| self.rooms.contains_key(room));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ParticipantId {
        ParticipantId::new(s)
    }

    #[test]
    fn loudness_follows_up_at_once_and_decays() {
        let t0 = Instant::now();
        let mut l = Loudness::default();
        assert_eq!(l.at(t0), 0.0);
        l.packet(t0, -27);
        assert_eq!(l.at(t0), 100.0);
        // A quieter packet does not pull it down; time does.
        l.packet(t0 + Duration::from_millis(20), -100);
        assert!((l.at(t0 + Duration::from_millis(20)) - 99.4).abs() < 0.01);
        assert!((l.at(t0 + Duration::from_secs(1)) - 70.0).abs() < 0.1);
        assert_eq!(l.at(t0 + Duration::from_secs(10)), 0.0);
    }

    #[test]
    fn the_active_speaker_holds_its_turn_and_yields_to_a_clearly_louder_one() {
        let t0 = Instant::now();
        let mut r = RoomSpeakers::default();
        assert!(!r.update(t0, &[(id("a"), 10.0), (id("b"), 5.0)]), "silence: nothing changes");
        assert_eq!(r.active(), None);
        assert!(r.update(t0, &[(id("a"), 90.0), (id("b"), 5.0)]));
        assert_eq!(r.active(), Some(&id("a")));
        // b speaks a little louder: not enough to take over.
        let t1 = t0 + Duration::from_secs(2);
        assert!(r.update(t1, &[(id("a"), 90.0), (id("b"), 95.0)]), "b starts speaking");
        assert_eq!(r.active(), Some(&id("a")));
        // Much louder, but within a's minimum turn? No: 2 s passed. It takes over.
        assert!(r.update(t1, &[(id("a"), 75.0), (id("b"), 95.0)]));
        assert_eq!(r.active(), Some(&id("b")));
        // a stops; b's turn is young, yet nothing else is speaking: b stays.
        assert!(r.update(t1 + Duration::from_millis(250), &[(id("a"), 20.0), (id("b"), 95.0)]));
        assert_eq!(r.active(), Some(&id("b")));
        // Everyone silent: the last speaker stays active, the speaking list empties.
        assert!(r.update(t1 + Duration::from_secs(3), &[(id("a"), 0.0), (id("b"), 0.0)]));
        assert_eq!(r.active(), Some(&id("b")));
        assert!(r.speaking.is_empty());
        // a speaks alone, within b's turn? The turn is long over: a becomes active.
        assert!(r.update(t1 + Duration::from_secs(4), &[(id("a"), 80.0), (id("b"), 0.0)]));
        assert_eq!(r.active(), Some(&id("a")));
    }

    #[test]
    fn a_speaker_between_the_thresholds_keeps_speaking_but_does_not_start() {
        let t0 = Instant::now();
        let mut r = RoomSpeakers::default();
        r.update(t0, &[(id("a"), 65.0)]);
        assert!(r.speaking.is_empty(), "65 is under the start threshold");
        r.update(t0, &[(id("a"), 80.0)]);
        r.update(t0, &[(id("a"), 65.0)]);
        assert_eq!(r.speaking, vec![id("a")], "and over the stop threshold");
        r.update(t0, &[(id("a"), 55.0)]);
        assert!(r.speaking.is_empty());
    }
}

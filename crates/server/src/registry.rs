//! Which media worker each room lives on, and how many participants the server takes. A room goes
//! to the least loaded worker at its first join and stays there until its last participant
//! leaves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sfu::RoomMode;

/// The worker with the fewest participants.
fn least_loaded(load: &[usize]) -> usize {
    (0..load.len()).min_by_key(|&w| load[w]).unwrap_or(0)
}

#[derive(Debug)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

/// What the registry takes at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Participants in all (`--max-participants`).
    pub(crate) participants: usize,
    /// Participants in one room (`--max-room-participants`).
    pub(crate) per_room: usize,
    /// Rooms open at once (`--max-rooms`).
    pub(crate) rooms: usize,
    /// Participants in one peer-to-peer room (`--mesh-max`).
    pub(crate) mesh: usize,
}

impl Limits {
    /// No limit at all.
    #[cfg(test)]
    pub(crate) const NONE: Limits = Limits { participants: usize::MAX, per_room: usize::MAX, rooms: usize::MAX, mesh: usize::MAX };
}

/// Why a participant was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server has its most participants.
    ServerFull,
    /// The room has its most participants.
    RoomFull,
    /// A peer-to-peer room has `--mesh-max` participants (the number).
    MeshFull(usize),
    /// A WHIP publisher or WHEP player for a peer-to-peer room.
    PeerToPeer,
    /// A new room, and the server has its most rooms.
    TooManyRooms,
    /// `join_existing` of a room nobody is in.
    NoRoom,
    /// `create` of a room that is open already.
    Exists,
}

impl Refusal {
    /// What to tell the client.
    pub(crate) fn message(self) -> String {
        match self {
            Refusal::ServerFull => "the server is full: it takes no more participants now".into(),
            Refusal::RoomFull => "the room is full: it takes no more participants now".into(),
            Refusal::MeshFull(n) => format!("the room is peer-to-peer, and such a room holds at most {n} participants (each connects to every other)"),
            Refusal::PeerToPeer => "the room is peer-to-peer: its media does not go through the server".into(),
            Refusal::TooManyRooms => "the server has as many rooms open as it takes: join an existing room, or try later".into(),
            Refusal::NoRoom => "no such room".into(),
            Refusal::Exists => "the room is open already".into(),
        }
    }
}

/// Options of a room created ahead of its first join (the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RoomOptions {
    /// Its own participant limit, instead of `--max-room-participants`.
    pub(crate) max_participants: Option<usize>,
    /// How long it stays open while nobody is in it (before the first join, and after the last
    /// leaves); zero: it closes when its last participant leaves, like a room opened by a join.
    pub(crate) empty_timeout: Duration,
    /// Its mode, instead of `--room-mode`.
    pub(crate) mode: Option<RoomMode>,
}

#[derive(Debug)]
struct Room {
    worker: usize,
    mode: RoomMode,
    participants: usize,
    options: RoomOptions,
    /// Since when nobody is in it, for a created room.
    empty_since: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    rooms: HashMap<String, Room>,
    /// participants per worker
    load: Vec<usize>,
    limits: Limits,
    /// The mode of a room opened without one (`--room-mode`).
    default_mode: RoomMode,
}

impl Registry {
    /// A registry of `workers` workers taking at most what `limits` allow, whose rooms are of
    /// `default_mode` unless their opener says otherwise.
    pub(crate) fn new(workers: usize, limits: Limits, default_mode: RoomMode) -> Registry {
        Registry { inner: Mutex::new(Inner { rooms: HashMap::new(), load: vec![0; workers.max(1)], limits, default_mode }) }
    }

    /// Participants present now, in all rooms.
    pub(crate) fn participants(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).load.iter().sum()
    }

    /// A participant enters `room` (opened, of mode `mode` or else the default, if nobody is
    /// in it): the worker it lives on, and the room's mode.
    pub(crate) fn join(&self, room: &str, mode: Option<RoomMode>) -> Result<(usize, RoomMode), Refusal> {
        self.enter(room, true, mode, false)
    }

    /// A WHIP publisher (`open`) or WHEP player (not: the room must be open) enters `room`,
    /// unless it is peer-to-peer.
    pub(crate) fn join_media(&self, room: &str, open: bool) -> Result<(usize, RoomMode), Refusal> {
        self.enter(room, open, None, true)
    }

    fn enter(&self, room: &str, open: bool, mode: Option<RoomMode>, media: bool) -> Result<(usize, RoomMode), Refusal> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, limits, default_mode } = &mut *inner;
        let exists = rooms.contains_key(room);
        if !exists && !open {
            return Err(Refusal::NoRoom);
        }
        if load.iter().sum::<usize>() >= limits.participants {
            return Err(Refusal::ServerFull);
        }
        if !exists && rooms.len() >= limits.rooms {
            return Err(Refusal::TooManyRooms);
        }
        let mode = rooms.get(room).map_or(mode.unwrap_or(*default_mode), |r| r.mode);
        if media && mode == RoomMode::P2p {
            return Err(Refusal::PeerToPeer);
        }
        let entry = rooms.entry(room.to_string()).or_insert_with(|| Room { worker: least_loaded(load), mode, participants: 0, options: RoomOptions::default(), empty_since: None });
        if entry.participants >= entry.options.max_participants.unwrap_or(limits.per_room) {
            return Err(Refusal::RoomFull);
        }
        if mode == RoomMode::P2p && entry.participants >= limits.mesh {
            return Err(Refusal::MeshFull(limits.mesh));
        }
        entry.participants += 1;
        entry.empty_since = None;
        load[entry.worker] += 1;
        Ok((entry.worker, mode))
    }

    /// Open `room` ahead of its first join, with `options` (the admin API): its mode.
    pub(crate) fn create(&self, room: &str, options: RoomOptions, now: Instant) -> Result<RoomMode, Refusal> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, limits, default_mode } = &mut *inner;
        if rooms.contains_key(room) {
            return Err(Refusal::Exists);
        }
        if rooms.len() >= limits.rooms {
            return Err(Refusal::TooManyRooms);
        }
        let mode = options.mode.unwrap_or(*default_mode);
        rooms.insert(room.to_string(), Room { worker: least_loaded(load), mode, participants: 0, options, empty_since: Some(now) });
        Ok(mode)
    }

    /// Close the created rooms that have been empty longer than their timeout; their names.
    pub(crate) fn expire(&self, now: Instant) -> Vec<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let expired: Vec<String> = inner
            .rooms
            .iter()
            .filter(|(_, r)| r.participants == 0 && r.empty_since.is_some_and(|t| now.saturating_duration_since(t) >= r.options.empty_timeout))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            inner.rooms.remove(name);
        }
        expired
    }

    /// An administrator closes `room`: it no longer waits while empty (it closes now if nobody
    /// is in it, else with its last participant). Whether it was open.
    pub(crate) fn close(&self, room: &str) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = inner.rooms.get_mut(room) else { return false };
        entry.options.empty_timeout = Duration::ZERO;
        if entry.participants == 0 {
            inner.rooms.remove(room);
        }
        true
    }

    /// Every open room: name, participants, options (with the mode it has).
    pub(crate) fn list(&self) -> Vec<(String, usize, RoomOptions)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut rooms: Vec<_> = inner
            .rooms
            .iter()
            .map(|(name, r)| (name.clone(), r.participants, RoomOptions { mode: Some(r.mode), ..r.options }))
            .collect();
        rooms.sort_by(|a, b| a.0.cmp(&b.0));
        rooms
    }

    /// A participant of `room` is gone.
    pub(crate) fn leave(&self, room: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, .. } = &mut *inner;
        if let Some(entry) = rooms.get_mut(room) {
            entry.participants = entry.participants.saturating_sub(1);
            load[entry.worker] = load[entry.worker].saturating_sub(1);
            if entry.participants == 0 {
                if entry.options.empty_timeout.is_zero() {
                    rooms.remove(room);
                } else {
                    entry.empty_since = Some(Instant::now());
                }
            }
        }
    }

    /// Rooms open now.
    #[cfg(test)]
    pub(crate) fn rooms(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).rooms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_stay_on_their_worker_and_spread_by_load() {
        let r = Registry::new(2, Limits::NONE, RoomMode::Sfu);
        let a = r.join("a", None).map(|(w, _)| w);
        assert_eq!(r.join("a", None).map(|(w, _)| w), a);
        let b = r.join("b", None).map(|(w, _)| w);
        assert_ne!(a, b, "the second room goes to the idle worker");
        r.leave("a");
        r.leave("a");
        assert_eq!(r.rooms(), 1);
        // "a" is gone; it may come back anywhere.
        assert!(r.join("a", None).map(|(w, _)| w).is_ok());
        assert_eq!(r.rooms(), 2);
        r.leave("nope");
        assert_eq!(r.join_media("nope", false), Err(Refusal::NoRoom));
        assert_eq!(r.join_media("a", false), r.join("a", None));
    }

    #[test]
    fn a_full_server_takes_nobody_until_someone_leaves() {
        let r = Registry::new(2, Limits { participants: 2, ..Limits::NONE }, RoomMode::Sfu);
        assert!(r.join("a", None).map(|(w, _)| w).is_ok() && r.join("b", None).map(|(w, _)| w).is_ok());
        assert_eq!(r.join("a", None).map(|(w, _)| w), Err(Refusal::ServerFull));
        assert_eq!(r.join_media("a", false), Err(Refusal::ServerFull));
        assert_eq!(r.join_media("c", false), Err(Refusal::NoRoom));
        r.leave("b");
        assert!(r.join("c", None).map(|(w, _)| w).is_ok());
    }

    #[test]
    fn a_created_room_has_its_own_limit_and_closes_after_its_empty_timeout() {
        let r = Registry::new(1, Limits::NONE, RoomMode::Sfu);
        let t0 = Instant::now();
        let options = RoomOptions { max_participants: Some(1), empty_timeout: Duration::from_secs(60), mode: None };
        r.create("board", options, t0).unwrap();
        assert_eq!(r.create("board", options, t0), Err(Refusal::Exists));
        assert_eq!(r.list(), vec![("board".to_string(), 0, RoomOptions { mode: Some(RoomMode::Sfu), ..options })]);
        assert!(r.expire(t0 + Duration::from_secs(59)).is_empty());
        assert!(r.join("board", None).map(|(w, _)| w).is_ok());
        assert_eq!(r.join("board", None).map(|(w, _)| w), Err(Refusal::RoomFull));
        // Occupied: never expires; empty again: it waits its timeout.
        assert!(r.expire(t0 + Duration::from_secs(600)).is_empty());
        r.leave("board");
        assert_eq!(r.rooms(), 1);
        assert!(r.expire(Instant::now() + Duration::from_secs(59)).is_empty());
        assert_eq!(r.expire(Instant::now() + Duration::from_secs(61)), vec!["board".to_string()]);
        assert_eq!(r.rooms(), 0);
    }

    #[test]
    fn a_full_room_and_too_many_rooms_are_refused_and_a_refusal_leaves_no_room_behind() {
        let r = Registry::new(1, Limits { per_room: 2, rooms: 2, ..Limits::NONE }, RoomMode::Sfu);
        assert!(r.join("a", None).map(|(w, _)| w).is_ok() && r.join("a", None).map(|(w, _)| w).is_ok());
        assert_eq!(r.join("a", None).map(|(w, _)| w), Err(Refusal::RoomFull));
        assert_eq!(r.join_media("a", false), Err(Refusal::RoomFull));
        assert!(r.join("b", None).map(|(w, _)| w).is_ok());
        assert_eq!(r.join("c", None).map(|(w, _)| w), Err(Refusal::TooManyRooms));
        assert_eq!(r.rooms(), 2);
        r.leave("b");
        assert!(r.join("c", None).map(|(w, _)| w).is_ok(), "a room closed makes room for another");
        assert_eq!(r.participants(), 3);
    }

    #[test]
    fn a_room_keeps_the_mode_it_was_opened_with_and_a_mesh_has_its_cap() {
        let r = Registry::new(1, Limits { mesh: 2, ..Limits::NONE }, RoomMode::Auto);
        assert_eq!(r.join("mesh", Some(RoomMode::P2p)).map(|(_, m)| m), Ok(RoomMode::P2p));
        // Later joins get the room's mode, whatever they ask.
        assert_eq!(r.join("mesh", Some(RoomMode::Sfu)).map(|(_, m)| m), Ok(RoomMode::P2p));
        assert_eq!(r.join("mesh", None), Err(Refusal::MeshFull(2)));
        assert!(Refusal::MeshFull(2).message().contains("at most 2"));
        // WHIP and WHEP are refused in a peer-to-peer room.
        assert_eq!(r.join_media("mesh", true), Err(Refusal::PeerToPeer));
        assert_eq!(r.join_media("mesh", false), Err(Refusal::PeerToPeer));
        // Without a mode, the server's default; the cap is a mesh's only.
        for _ in 0..3 {
            assert_eq!(r.join("other", None).map(|(_, m)| m), Ok(RoomMode::Auto));
        }
        assert!(r.join_media("other", false).is_ok());
        // A created room has the mode it was created with.
        let options = RoomOptions { mode: Some(RoomMode::P2p), ..RoomOptions::default() };
        assert_eq!(r.create("made", options, Instant::now()), Ok(RoomMode::P2p));
        assert_eq!(r.join("made", Some(RoomMode::Sfu)).map(|(_, m)| m), Ok(RoomMode::P2p));
    }
}

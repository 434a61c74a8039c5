//! Which media worker each room lives on, and how many participants the server takes. A room goes
//! to the least loaded worker at its first join and stays there until its last participant
//! leaves.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}

impl Limits {
    /// No limit at all.
    #[cfg(test)]
    pub(crate) const NONE: Limits = Limits { participants: usize::MAX, per_room: usize::MAX, rooms: usize::MAX };
}

/// Why a participant was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server has its most participants.
    ServerFull,
    /// The room has its most participants.
    RoomFull,
    /// A new room, and the server has its most rooms.
    TooManyRooms,
    /// `join_existing` of a room nobody is in.
    NoRoom,
    /// `create` of a room that is open already.
    Exists,
}

impl Refusal {
    /// What to tell the client.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::ServerFull => "the server is full: it takes no more participants now",
            Refusal::RoomFull => "the room is full: it takes no more participants now",
            Refusal::TooManyRooms => "the server has as many rooms open as it takes: join an existing room, or try later",
            Refusal::NoRoom => "no such room",
            Refusal::Exists => "the room is open already",
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
}

#[derive(Debug)]
struct Room {
    worker: usize,
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
}

impl Registry {
    /// A registry of `workers` workers taking at most what `limits` allow.
    pub(crate) fn new(workers: usize, limits: Limits) -> Registry {
        Registry { inner: Mutex::new(Inner { rooms: HashMap::new(), load: vec![0; workers.max(1)], limits }) }
    }

    /// Participants present now, in all rooms.
    pub(crate) fn participants(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).load.iter().sum()
    }

    /// A participant enters `room` (opened if nobody is in it): the worker it lives on.
    pub(crate) fn join(&self, room: &str) -> Result<usize, Refusal> {
        self.enter(room, true)
    }

    /// A participant enters `room` if somebody is in it already (a WHEP player).
    pub(crate) fn join_existing(&self, room: &str) -> Result<usize, Refusal> {
        self.enter(room, false)
    }

    fn enter(&self, room: &str, open: bool) -> Result<usize, Refusal> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, limits } = &mut *inner;
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
        let entry = rooms.entry(room.to_string()).or_insert_with(|| Room { worker: least_loaded(load), participants: 0, options: RoomOptions::default(), empty_since: None });
        if entry.participants >= entry.options.max_participants.unwrap_or(limits.per_room) {
            return Err(Refusal::RoomFull);
        }
        entry.participants += 1;
        entry.empty_since = None;
        load[entry.worker] += 1;
        Ok(entry.worker)
    }

    /// Open `room` ahead of its first join, with `options` (the admin API).
    pub(crate) fn create(&self, room: &str, options: RoomOptions, now: Instant) -> Result<(), Refusal> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, limits } = &mut *inner;
        if rooms.contains_key(room) {
            return Err(Refusal::Exists);
        }
        if rooms.len() >= limits.rooms {
            return Err(Refusal::TooManyRooms);
        }
        rooms.insert(room.to_string(), Room { worker: least_loaded(load), participants: 0, options, empty_since: Some(now) });
        Ok(())
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

    /// Every open room: name, participants, options.
    pub(crate) fn list(&self) -> Vec<(String, usize, RoomOptions)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut rooms: Vec<_> = inner.rooms.iter().map(|(name, r)| (name.clone(), r.participants, r.options)).collect();
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
        let r = Registry::new(2, Limits::NONE);
        let a = r.join("a");
        assert_eq!(r.join("a"), a);
        let b = r.join("b");
        assert_ne!(a, b, "the second room goes to the idle worker");
        r.leave("a");
        r.leave("a");
        assert_eq!(r.rooms(), 1);
        // "a" is gone; it may come back anywhere.
        assert!(r.join("a").is_ok());
        assert_eq!(r.rooms(), 2);
        r.leave("nope");
        assert_eq!(r.join_existing("nope"), Err(Refusal::NoRoom));
        assert_eq!(r.join_existing("a"), r.join("a"));
    }

    #[test]
    fn a_full_server_takes_nobody_until_someone_leaves() {
        let r = Registry::new(2, Limits { participants: 2, ..Limits::NONE });
        assert!(r.join("a").is_ok() && r.join("b").is_ok());
        assert_eq!(r.join("a"), Err(Refusal::ServerFull));
        assert_eq!(r.join_existing("a"), Err(Refusal::ServerFull));
        assert_eq!(r.join_existing("c"), Err(Refusal::NoRoom));
        r.leave("b");
        assert!(r.join("c").is_ok());
    }

    #[test]
    fn a_created_room_has_its_own_limit_and_closes_after_its_empty_timeout() {
        let r = Registry::new(1, Limits::NONE);
        let t0 = Instant::now();
        let options = RoomOptions { max_participants: Some(1), empty_timeout: Duration::from_secs(60) };
        r.create("board", options, t0).unwrap();
        assert_eq!(r.create("board", options, t0), Err(Refusal::Exists));
        assert_eq!(r.list(), vec![("board".to_string(), 0, options)]);
        assert!(r.expire(t0 + Duration::from_secs(59)).is_empty());
        assert!(r.join("board").is_ok());
        assert_eq!(r.join("board"), Err(Refusal::RoomFull));
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
        let r = Registry::new(1, Limits { per_room: 2, rooms: 2, ..Limits::NONE });
        assert!(r.join("a").is_ok() && r.join("a").is_ok());
        assert_eq!(r.join("a"), Err(Refusal::RoomFull));
        assert_eq!(r.join_existing("a"), Err(Refusal::RoomFull));
        assert!(r.join("b").is_ok());
        assert_eq!(r.join("c"), Err(Refusal::TooManyRooms));
        assert_eq!(r.rooms(), 2);
        r.leave("b");
        assert!(r.join("c").is_ok(), "a room closed makes room for another");
        assert_eq!(r.participants(), 3);
    }
}

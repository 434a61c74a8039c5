//! Which media worker each room lives on, and how many participants the server takes. A room goes
//! to the least loaded worker at its first join and stays there until its last participant
//! leaves.

use std::collections::HashMap;
use std::sync::Mutex;

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
}

impl Refusal {
    /// What to tell the client.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Refusal::ServerFull => "the server is full: it takes no more participants now",
            Refusal::RoomFull => "the room is full: it takes no more participants now",
            Refusal::TooManyRooms => "the server has as many rooms open as it takes: join an existing room, or try later",
            Refusal::NoRoom => "no such room",
        }
    }
}

#[derive(Debug)]
struct Inner {
    /// room -> (worker, participants)
    rooms: HashMap<String, (usize, usize)>,
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
        let entry = rooms.entry(room.to_string()).or_insert_with(|| {
            let least = (0..load.len()).min_by_key(|&w| load[w]).unwrap_or(0);
            (least, 0)
        });
        if entry.1 >= limits.per_room {
            return Err(Refusal::RoomFull);
        }
        entry.1 += 1;
        load[entry.0] += 1;
        Ok(entry.0)
    }

    /// A participant of `room` is gone.
    pub(crate) fn leave(&self, room: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, .. } = &mut *inner;
        if let Some(entry) = rooms.get_mut(room) {
            entry.1 = entry.1.saturating_sub(1);
            load[entry.0] = load[entry.0].saturating_sub(1);
            if entry.1 == 0 {
                rooms.remove(room);
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
        r.join("a");
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

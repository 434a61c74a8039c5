//! Which media worker each room lives on, and how many participants the server takes. A room goes
//! to the least loaded worker at its first join and stays there until its last participant
//! leaves.

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug)]
pub(crate) struct Registry {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// room -> (worker, participants)
    rooms: HashMap<String, (usize, usize)>,
    /// participants per worker
    load: Vec<usize>,
    /// The most participants the server takes (`--max-participants`).
    max: usize,
}

impl Registry {
    /// A registry of `workers` workers taking at most `max` participants in all.
    pub(crate) fn new(workers: usize, max: usize) -> Registry {
        Registry { inner: Mutex::new(Inner { rooms: HashMap::new(), load: vec![0; workers.max(1)], max }) }
    }

    /// Participants present now, in all rooms.
    pub(crate) fn participants(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).load.iter().sum()
    }

    /// A participant enters `room`: the worker it lives on; `None` when the server is full.
    pub(crate) fn join(&self, room: &str) -> Option<usize> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, max } = &mut *inner;
        if load.iter().sum::<usize>() >= *max {
            return None;
        }
        let entry = rooms.entry(room.to_string()).or_insert_with(|| {
            let least = (0..load.len()).min_by_key(|&w| load[w]).unwrap_or(0);
            (least, 0)
        });
        entry.1 += 1;
        load[entry.0] += 1;
        Some(entry.0)
    }

    /// A participant enters `room` if it exists (has someone in it): `Ok(worker)`; `Err(true)`
    /// when the server is full, `Err(false)` when there is no such room.
    pub(crate) fn join_existing(&self, room: &str) -> Result<usize, bool> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Inner { rooms, load, max } = &mut *inner;
        let full = load.iter().sum::<usize>() >= *max;
        let entry = rooms.get_mut(room).ok_or(false)?;
        if full {
            return Err(true);
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
        let r = Registry::new(2, usize::MAX);
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
        assert_eq!(r.join_existing("nope"), Err(false));
        assert_eq!(r.join_existing("a").ok(), r.join("a"));
    }

    #[test]
    fn a_full_server_takes_nobody_until_someone_leaves() {
        let r = Registry::new(2, 2);
        assert!(r.join("a").is_some() && r.join("b").is_some());
        assert_eq!(r.join("a"), None);
        assert_eq!(r.join_existing("a"), Err(true));
        assert_eq!(r.join_existing("c"), Err(false));
        r.leave("b");
        assert!(r.join("c").is_some());
    }
}

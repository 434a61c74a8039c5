//! Participant storage by stable index, and the timer queue over it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Index of a participant's slot. Only valid while that participant exists; every reference to
/// a participant (subscriber lists, routes) is removed with it. Timers, which are removed lazily,
/// also carry the participant's generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Pix(pub(crate) u32);

/// A slab: values at stable indices, free slots reused.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    items: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { items: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slots<T> {
    pub(crate) fn insert(&mut self, value: T) -> Pix {
        if let Some(i) = self.free.pop() {
            self.items[i as usize] = Some(value);
            Pix(i)
        } else {
            self.items.push(Some(value));
            Pix((self.items.len() - 1) as u32)
        }
    }

    pub(crate) fn remove(&mut self, pix: Pix) -> Option<T> {
        let value = self.items.get_mut(pix.0 as usize)?.take()?;
        self.free.push(pix.0);
        Some(value)
    }

    pub(crate) fn get(&self, pix: Pix) -> Option<&T> {
        self.items.get(pix.0 as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, pix: Pix) -> Option<&mut T> {
        self.items.get_mut(pix.0 as usize)?.as_mut()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Pix, &T)> {
        self.items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (Pix(i as u32), v)))
    }
}

/// Deadlines of participants, earliest first. Each participant has at most a couple of entries:
/// a new deadline is pushed only when it is earlier than the one already queued; a popped entry
/// whose participant has a later deadline is pushed again. Entries of removed participants are
/// skipped by generation.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, u32)>>,
}

impl Timers {
    pub(crate) fn push(&mut self, at: Instant, pix: Pix, generation: u32) {
        self.heap.push(Reverse((at, pix.0, generation)));
    }

    pub(crate) fn peek(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next entry due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Pix, u32)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((at, pix, generation)) = self.heap.pop()?;
                Some((at, Pix(pix), generation))
            }
            _ => None,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn slots_reuse_freed_indices() {
        let mut s = Slots::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        let c = s.insert("c");
        assert_eq!(c, a);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.iter().count(), 2);
        assert_eq!(s.get(Pix(99)), None);
    }

    #[test]
    fn timers_pop_in_order_only_when_due() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.push(t0 + Duration::from_millis(30), Pix(1), 0);
        t.push(t0 + Duration::from_millis(10), Pix(2), 0);
        assert_eq!(t.peek(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(t.pop_due(t0), None);
        assert_eq!(t.pop_due(t0 + Duration::from_millis(40)).map(|e| e.1), Some(Pix(2)));
        assert_eq!(t.pop_due(t0 + Duration::from_millis(40)).map(|e| e.1), Some(Pix(1)));
        assert_eq!(t.len(), 0);
    }
}

//! Which key runs next: a pure priority queue of deadlines, one per key.
//!
//! Invariants: a key is queued at most once; scheduling a queued key keeps the earlier of its two
//! deadlines (docs/design.md, runtime invariant 3); keys come out in deadline order. No clock, no I/O: callers
//! pass `now`.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Scheduler<K> {
    deadlines: HashMap<K, Instant>,
    queue: BTreeSet<(Instant, K)>,
}

impl<K: Clone + Ord + Hash> Default for Scheduler<K> {
    fn default() -> Self {
        Scheduler {
            deadlines: HashMap::new(),
            queue: BTreeSet::new(),
        }
    }
}

impl<K: Clone + Ord + Hash> Scheduler<K> {
    /// Queue `key` at `at`, or move it earlier if it is queued later. Returns whether the
    /// deadline changed.
    pub fn schedule(&mut self, key: K, at: Instant) -> bool {
        match self.deadlines.get(&key) {
            Some(existing) if *existing <= at => false,
            Some(existing) => {
                self.queue.remove(&(*existing, key.clone()));
                self.queue.insert((at, key.clone()));
                self.deadlines.insert(key, at);
                true
            }
            None => {
                self.queue.insert((at, key.clone()));
                self.deadlines.insert(key, at);
                true
            }
        }
    }

    /// The earliest deadline, if any key is queued.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Take the key with the earliest deadline if that deadline has passed.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (at, _) = self.queue.first()?;
        if *at > now {
            return None;
        }
        let (_, key) = self.queue.pop_first()?;
        self.deadlines.remove(&key);
        Some(key)
    }

    /// Forget `key`. Returns whether it was queued.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.deadlines.remove(key) {
            Some(at) => self.queue.remove(&(at, key.clone())),
            None => false,
        }
    }

    pub fn deadline(&self, key: &K) -> Option<Instant> {
        self.deadlines.get(key).copied()
    }

    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_key_scheduled_twice_keeps_the_earliest_deadline() {
        let t0 = Instant::now();
        let mut s = Scheduler::default();
        assert!(s.schedule("a", t0 + Duration::from_secs(10)));
        assert!(s.schedule("a", t0 + Duration::from_secs(5)));
        assert!(!s.schedule("a", t0 + Duration::from_secs(20)));
        assert_eq!(s.len(), 1);
        assert_eq!(s.deadline(&"a"), Some(t0 + Duration::from_secs(5)));
        assert_eq!(s.pop_due(t0 + Duration::from_secs(4)), None);
        assert_eq!(s.pop_due(t0 + Duration::from_secs(5)), Some("a"));
        assert!(s.is_empty());
    }

    #[test]
    fn keys_come_out_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let mut s = Scheduler::default();
        s.schedule("late", t0 + Duration::from_secs(3));
        s.schedule("early", t0 + Duration::from_secs(1));
        s.schedule("middle", t0 + Duration::from_secs(2));
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(s.pop_due(now), Some("early"));
        assert_eq!(s.pop_due(now), Some("middle"));
        assert_eq!(s.pop_due(now), None);
        assert!(s.remove(&"late"));
        assert!(!s.remove(&"late"));
        assert_eq!(s.next_deadline(), None);
    }
}

//! Which key runs next: a pure priority queue of deadlines, one per key, in two classes.
//!
//! Invariants: a key is queued at most once; scheduling a queued key keeps the earlier of its two
//! deadlines and the more urgent of its two classes (docs/design.md, runtime invariant 3); among
//! the keys that are due, every [`Class::Foreground`] key comes out before any
//! [`Class::Background`] key, and within a class keys come out in deadline order. No clock, no
//! I/O: callers pass `now`.
//!
//! Why two classes: a resync wave (or the start-up wave) queues every key at once. In deadline
//! order a key that asked to be looked at again in 15 s (a rollout it follows), a changed spec
//! or a retry would wait behind the whole wave: at 1000 specs, many minutes, during which the
//! cheap follow-up turns into a full reconcile and a user's change waits for the drift check
//! of every other spec. Wave runs are background work; everything else is foreground. A
//! background key waits only while foreground keys are due, and foreground work is bounded
//! (a follow-up per followed rollout, retries behind their backoff, changes), so the wave
//! always drains.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

use tokio::time::Instant;

/// How urgent a queued key is. `Foreground` < `Background`: the smaller wins when a key is
/// scheduled twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// A change, an event, a retry, a requeue: run before any due background key.
    Foreground,
    /// A resync wave's drift check.
    Background,
}

#[derive(Debug)]
pub struct Scheduler<K> {
    deadlines: HashMap<K, (Instant, Class)>,
    foreground: BTreeSet<(Instant, K)>,
    background: BTreeSet<(Instant, K)>,
}

impl<K: Clone + Ord + Hash> Default for Scheduler<K> {
    fn default() -> Self {
        Scheduler {
            deadlines: HashMap::new(),
            foreground: BTreeSet::new(),
            background: BTreeSet::new(),
        }
    }
}

impl<K: Clone + Ord + Hash> Scheduler<K> {
    fn queue(&mut self, class: Class) -> &mut BTreeSet<(Instant, K)> {
        match class {
            Class::Foreground => &mut self.foreground,
            Class::Background => &mut self.background,
        }
    }

    /// Queue `key` at `at` in `class`, or move it earlier / to the more urgent class if it is
    /// queued later or less urgently. Returns whether its place changed.
    pub fn schedule(&mut self, key: K, at: Instant, class: Class) -> bool {
        let (at, class) = match self.deadlines.get(&key) {
            Some((existing, c)) if *existing <= at && *c <= class => return false,
            Some((existing, c)) => {
                let (existing, c) = (*existing, *c);
                self.queue(c).remove(&(existing, key.clone()));
                (existing.min(at), c.min(class))
            }
            None => (at, class),
        };
        self.queue(class).insert((at, key.clone()));
        self.deadlines.insert(key, (at, class));
        true
    }

    /// The earliest deadline, if any key is queued.
    pub fn next_deadline(&self) -> Option<Instant> {
        let f = self.foreground.first().map(|(at, _)| *at);
        let b = self.background.first().map(|(at, _)| *at);
        match (f, b) {
            (Some(f), Some(b)) => Some(f.min(b)),
            (f, b) => f.or(b),
        }
    }

    /// The earliest foreground deadline, if a foreground key is queued.
    pub fn next_foreground_deadline(&self) -> Option<Instant> {
        self.foreground.first().map(|(at, _)| *at)
    }

    /// Take the due foreground key with the earliest deadline; background keys stay queued.
    pub fn pop_due_foreground(&mut self, now: Instant) -> Option<K> {
        if self.foreground.first().is_some_and(|(at, _)| *at <= now) {
            let (_, key) = self.foreground.pop_first()?;
            self.deadlines.remove(&key);
            return Some(key);
        }
        None
    }

    /// Take the due foreground key with the earliest deadline, else the due background key
    /// with the earliest deadline.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        for class in [Class::Foreground, Class::Background] {
            let queue = self.queue(class);
            if queue.first().is_some_and(|(at, _)| *at <= now) {
                let (_, key) = queue.pop_first()?;
                self.deadlines.remove(&key);
                return Some(key);
            }
        }
        None
    }

    /// Forget `key`. Returns whether it was queued.
    pub fn remove(&mut self, key: &K) -> bool {
        match self.deadlines.remove(key) {
            Some((at, class)) => self.queue(class).remove(&(at, key.clone())),
            None => false,
        }
    }

    pub fn deadline(&self, key: &K) -> Option<Instant> {
        self.deadlines.get(key).map(|(at, _)| *at)
    }

    pub fn class(&self, key: &K) -> Option<Class> {
        self.deadlines.get(key).map(|(_, c)| *c)
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
        assert!(s.schedule("a", t0 + Duration::from_secs(10), Class::Foreground));
        assert!(s.schedule("a", t0 + Duration::from_secs(5), Class::Foreground));
        assert!(!s.schedule("a", t0 + Duration::from_secs(20), Class::Foreground));
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
        s.schedule("late", t0 + Duration::from_secs(3), Class::Foreground);
        s.schedule("early", t0 + Duration::from_secs(1), Class::Foreground);
        s.schedule("middle", t0 + Duration::from_secs(2), Class::Foreground);
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let now = t0 + Duration::from_secs(2);
        assert_eq!(s.pop_due(now), Some("early"));
        assert_eq!(s.pop_due(now), Some("middle"));
        assert_eq!(s.pop_due(now), None);
        assert!(s.remove(&"late"));
        assert!(!s.remove(&"late"));
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn due_foreground_keys_come_out_before_due_background_keys_whatever_their_deadlines() {
        let t0 = Instant::now();
        let mut s = Scheduler::default();
        for k in ["w1", "w2", "w3"] {
            s.schedule(k, t0, Class::Background);
        }
        s.schedule("follow-up", t0 + Duration::from_secs(15), Class::Foreground);
        s.schedule("not yet", t0 + Duration::from_secs(30), Class::Foreground);
        assert_eq!(s.next_deadline(), Some(t0));
        let now = t0 + Duration::from_secs(20);
        assert_eq!(s.pop_due(now), Some("follow-up"));
        // A foreground key that is not due does not hold the background back.
        assert_eq!(s.pop_due(now), Some("w1"));
        assert_eq!(s.pop_due(now), Some("w2"));
        assert_eq!(s.pop_due(now), Some("w3"));
        assert_eq!(s.pop_due(now), None);
        assert_eq!(s.next_deadline(), Some(t0 + Duration::from_secs(30)));
    }

    #[test]
    fn a_key_scheduled_in_both_classes_keeps_the_urgent_class_and_the_earlier_deadline() {
        let t0 = Instant::now();
        let mut s = Scheduler::default();
        assert!(s.schedule("a", t0 + Duration::from_secs(10), Class::Foreground));
        // A wave asks for it earlier: earlier deadline, still foreground.
        assert!(s.schedule("a", t0, Class::Background));
        assert_eq!(s.deadline(&"a"), Some(t0));
        assert_eq!(s.class(&"a"), Some(Class::Foreground));
        assert!(!s.schedule("a", t0 + Duration::from_secs(5), Class::Background));
        // A background key a change asks for later becomes foreground at its earlier deadline.
        s.schedule("b", t0, Class::Background);
        assert!(s.schedule("b", t0 + Duration::from_secs(5), Class::Foreground));
        assert_eq!(s.deadline(&"b"), Some(t0));
        assert_eq!(s.class(&"b"), Some(Class::Foreground));
        assert_eq!(s.len(), 2);
        assert!(s.remove(&"b"));
        assert_eq!(s.pop_due(t0), Some("a"));
        assert!(s.is_empty());
    }
    #[test]
    fn taking_only_foreground_keys_leaves_due_background_keys_queued() {
        let t0 = Instant::now();
        let mut s = Scheduler::default();
        s.schedule("wave", t0, Class::Background);
        s.schedule("retry", t0 + Duration::from_secs(10), Class::Foreground);
        assert_eq!(
            s.next_foreground_deadline(),
            Some(t0 + Duration::from_secs(10))
        );
        assert_eq!(s.pop_due_foreground(t0), None);
        assert_eq!(
            s.pop_due_foreground(t0 + Duration::from_secs(10)),
            Some("retry")
        );
        assert_eq!(s.next_foreground_deadline(), None);
        assert_eq!(s.deadline(&"wave"), Some(t0));
        assert_eq!(s.pop_due(t0), Some("wave"));
    }
}

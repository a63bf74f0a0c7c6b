//! The identities of the events seen lately (pure), so a duplicate delivery triggers nothing.
//!
//! SQS delivers at least once and EventBridge may put the same event twice; CloudTrail's
//! `eventID` (or the envelope's `id`) names one occurrence. Invariant: an identity is
//! reported as new once while it is among the last `capacity` identities seen; the oldest is
//! forgotten first, so memory stays bounded.

use std::collections::{HashSet, VecDeque};

#[derive(Debug)]
pub struct Recent {
    capacity: usize,
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Recent {
    pub fn new(capacity: usize) -> Self {
        Recent {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Whether `identity` is new; remembers it.
    pub fn first_time(&mut self, identity: &str) -> bool {
        if self.seen.contains(identity) {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.order.push_back(identity.to_string());
        self.seen.insert(identity.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_is_new_once_and_the_oldest_is_forgotten_first() {
        let mut r = Recent::new(2);
        assert!(r.first_time("a"));
        assert!(!r.first_time("a"));
        assert!(r.first_time("b"));
        assert!(r.first_time("c"));
        assert!(!r.first_time("b"));
        assert!(r.first_time("a"), "a was the oldest and is forgotten");
    }
}

//! Reacting to AWS events (README "Events"): EventBridge rules put ECS events and CloudTrail's
//! write calls into an SQS queue ([`setup`], `init --events`); the leader reads the queue
//! ([`listen`], `run --events-queue URL`) and triggers a fresh reconcile of every spec that
//! owns what an event names. Polling and the resync waves stay the backstop: an event only
//! makes a reconcile come sooner.
//!
//! Layout: [`parse`] (a message body -> an [`parse::Event`], pure), [`index`] (ledgers ->
//! owners, and the operator's own identity, pure), [`dedup`] (duplicate deliveries, pure),
//! [`listen`] (the loop), [`setup`] (the queue and the rules).

pub mod dedup;
pub mod index;
pub mod listen;
pub mod parse;
pub mod setup;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::spec::SpecKey;

/// The earliest event time (seconds since the epoch) of each spec an event triggered whose
/// reconcile has not started yet: what `ecs_operator_event_reconcile_latency_seconds`
/// measures from. One entry per spec at most.
#[derive(Debug, Default)]
pub struct Pending {
    times: Mutex<HashMap<SpecKey, i64>>,
}

impl Pending {
    /// An event of `time` triggered `key`.
    pub fn event(&self, key: &SpecKey, time: i64) {
        let mut times = self.times.lock().expect("pending lock");
        let t = times.entry(key.clone()).or_insert(time);
        *t = (*t).min(time);
    }

    /// A reconcile of `key` starts: seconds since the earliest event that waited for it.
    pub fn started(&self, key: &SpecKey) -> Option<f64> {
        let t = self.times.lock().expect("pending lock").remove(key)?;
        let now = time::OffsetDateTime::now_utc();
        let since = now - time::OffsetDateTime::from_unix_timestamp(t).ok()?;
        Some(since.as_seconds_f64().max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    #[test]
    fn the_latency_runs_from_the_earliest_waiting_event_and_is_taken_once() {
        let p = Pending::default();
        let key = SpecKey::new(Kind::ClusterSpec, "prod");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        p.event(&key, now - 10);
        p.event(&key, now - 100);
        p.event(&key, now - 5);
        let took = p.started(&key).unwrap();
        assert!((100.0..200.0).contains(&took), "{took}");
        assert_eq!(p.started(&key), None);
        // An event time from a clock ahead of ours counts as no wait, never negative.
        p.event(&key, now + 3600);
        assert_eq!(p.started(&key), Some(0.0));
    }
}

//! The leader's loop over the events queue (`run --events-queue URL`).
//!
//! Long-polls the queue (20 s, up to 10 messages), reads each message ([`super::parse`]),
//! decides what it means ([`decide`], pure), triggers a fresh reconcile of every spec that
//! owns what the event names ([`Reason::Event`]: coalesced by the runner, after any backoff),
//! counts it (`ecs_operator_events_total{source,outcome}`), and deletes every message it
//! handled, malformed and unmatched ones included (they would only come back). An S3 object
//! event of the store's bucket and prefix (an S3 store, `init --events`) names a store key
//! instead: the store's watcher re-reads that one key ([`Nudges`], no listing) and a change
//! takes the normal path (the desired cache, then a reconcile).
//!
//! While the queue answers, followed rollouts are looked at every minute instead of every 15 s
//! ([`RolloutPoll`]): the deployment and stopped-task events say when to look.
//!
//! Invariants:
//! - a CloudTrail event whose caller is the operator itself ([`super::index::is_own_caller`],
//!   the identity from STS GetCallerIdentity before the first receive) triggers nothing;
//! - a duplicate delivery ([`super::dedup::Recent`]) triggers nothing;
//! - a message is deleted only after it was handled; one whose deletion fails comes back
//!   after the visibility timeout and is then a duplicate;
//! - a queue that cannot be read stops nothing else: the store's watcher and the resync
//!   waves go on; the failure is in `/readyz` (`eventsQueue`) and
//!   `ecs_operator_events_queue_up`, and the loop retries with backoff (1 s doubling to 60 s);
//! - followed rollouts wait [`RolloutPoll`]'s long poll only while the last receive succeeded.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

use super::dedup::Recent;
use super::index::{is_own_caller, OwnerIndex};
use super::parse::{parse, Event, Malformed};
use super::Pending;
use crate::controller::Controller;
use crate::metrics::Metrics;
use crate::resources::rollout_poll::RolloutPoll;
use crate::runtime::{Handle, Reason};
use crate::spec::SpecKey;
use crate::store::watch::Nudges;

/// Long-poll wait, the most SQS allows.
pub const WAIT_SECONDS: i32 = 20;
/// Messages per receive, the most SQS allows.
pub const MAX_MESSAGES: i32 = 10;
/// Event identities remembered for duplicate detection.
pub const RECENT_EVENTS: usize = 10_000;

/// The event sources the rules of `init --events` deliver; any other is counted as `other`
/// (the metric's label values stay bounded whatever lands in the queue).
pub const SOURCES: &[&str] = &[
    "aws.ecs",
    "aws.elasticloadbalancing",
    "aws.route53",
    "aws.acm",
    "aws.ecr",
    "aws.application-autoscaling",
    "aws.s3",
];

/// What one message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Reconcile these specs.
    Matched(BTreeSet<SpecKey>),
    /// Re-read this key of the store (an S3 object event under the store's prefix).
    StoreKey(String),
    /// Nothing to do, and why (the operator's own write, a duplicate, a failed call).
    Ignored(&'static str),
    /// No spec's ledger lists what the event names.
    Unmatched,
    Malformed(String),
}

impl Decision {
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Matched(_) | Decision::StoreKey(_) => "matched",
            Decision::Ignored(_) => "ignored",
            Decision::Unmatched => "unmatched",
            Decision::Malformed(_) => "malformed",
        }
    }
}

/// An S3 store's bucket and prefix (`prefix` empty or ending in `/`), whose object events
/// name store keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreBucket {
    pub bucket: String,
    pub prefix: String,
}

/// Decide what a parsed message means (pure but for remembering its identity in `recent`).
/// `own`: the operator's caller identity; `store`: the S3 store's bucket, if the store is one.
pub fn decide(
    event: &Result<Event, Malformed>,
    index: &OwnerIndex,
    own: &str,
    store: Option<&StoreBucket>,
    recent: &mut Recent,
) -> Decision {
    let e = match event {
        Err(m) => return Decision::Malformed(m.0.clone()),
        Ok(e) => e,
    };
    if e.caller.as_deref().is_some_and(|c| is_own_caller(c, own)) {
        return Decision::Ignored("the operator's own call");
    }
    if e.failed {
        return Decision::Ignored("a call that failed changed nothing");
    }
    // An object event is not deduplicated: a second delivery costs one GetObject of a key
    // whose ETag did not change, which changes nothing (and S3 events of different writes
    // need no identity to be told apart).
    if let Some(o) = &e.object {
        return store
            .filter(|s| s.bucket == o.bucket)
            .and_then(|s| crate::store::s3::spec_key(&s.prefix, &o.key))
            .map_or(Decision::Unmatched, Decision::StoreKey);
    }
    if !recent.first_time(&e.identity) {
        return Decision::Ignored("a duplicate delivery");
    }
    let owners = index.owners(&e.lookups);
    if owners.is_empty() {
        Decision::Unmatched
    } else {
        Decision::Matched(owners)
    }
}

/// The metric label of an event's source.
pub fn source_label(event: &Result<Event, Malformed>) -> &'static str {
    match event {
        Ok(e) => SOURCES
            .iter()
            .find(|s| **s == e.source)
            .copied()
            .unwrap_or("other"),
        Err(_) => "unknown",
    }
}

/// Everything the loop needs.
pub struct Listener {
    pub sqs: aws_sdk_sqs::Client,
    pub sts: aws_sdk_sts::Client,
    pub queue_url: String,
    pub controller: Arc<Controller>,
    pub handle: Handle<SpecKey>,
    pub metrics: Arc<Metrics>,
    pub pending: Arc<Pending>,
    /// Lengthened while the queue answers, shortened when it cannot be read.
    pub rollout_poll: RolloutPoll,
    /// An S3 store: its bucket and prefix, and its watcher's nudges.
    pub store: Option<(StoreBucket, Arc<Nudges>)>,
    /// Told once the queue answered or failed for the first time, so `run` can start its
    /// first wave with the rollout poll that applies ([`RolloutPoll`]).
    pub first_read: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Retry delays after a failure: 1 s doubling to 60 s.
fn retry_delay(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

impl Listener {
    fn unavailable(&self, why: String, failures: &mut u32) -> Duration {
        tracing::warn!(queue = %self.queue_url, error = %why, "events queue unavailable; polling and resync go on");
        self.rollout_poll.set_events_flowing(false);
        self.metrics
            .health
            .set_events_queue(&self.queue_url, Some(why));
        let d = retry_delay(*failures);
        *failures += 1;
        d
    }

    /// Run until aborted.
    pub async fn run(mut self) {
        let mut recent = Recent::new(RECENT_EVENTS);
        let mut own: Option<String> = None;
        let mut failures = 0u32;
        let mut up = false;
        self.metrics
            .health
            .set_events_queue(&self.queue_url, Some("not read yet".to_string()));
        loop {
            let me = match &own {
                Some(me) => me.clone(),
                None => match self.sts.get_caller_identity().send().await {
                    Ok(out) => {
                        let arn = out.arn().unwrap_or_default().to_string();
                        tracing::info!(identity = %arn, "events: the operator's own calls are recognised by this caller");
                        own = Some(arn.clone());
                        arn
                    }
                    Err(e) => {
                        let why = format!(
                            "cannot learn the operator's own identity (sts GetCallerIdentity): {}",
                            DisplayErrorContext(&e)
                        );
                        let delay = self.unavailable(why, &mut failures);
                        if let Some(tx) = self.first_read.take() {
                            let _ = tx.send(());
                        }
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                },
            };
            // Until the queue has answered (at the start, after a failure), receive without
            // waiting, so that it is known at once whether events flow.
            let wait = if up { WAIT_SECONDS } else { 0 };
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .wait_time_seconds(wait)
                .max_number_of_messages(MAX_MESSAGES)
                .send()
                .await;
            let out = match received {
                Ok(out) => out,
                Err(e) => {
                    let why = format!("ReceiveMessage: {}", DisplayErrorContext(&e));
                    up = false;
                    let delay = self.unavailable(why, &mut failures);
                    if let Some(tx) = self.first_read.take() {
                        let _ = tx.send(());
                    }
                    tokio::time::sleep(delay).await;
                    continue;
                }
            };
            up = true;
            if failures > 0 {
                tracing::info!(queue = %self.queue_url, "events queue answers again");
            }
            failures = 0;
            self.metrics.health.set_events_queue(&self.queue_url, None);
            self.rollout_poll.set_events_flowing(true);
            if let Some(tx) = self.first_read.take() {
                let _ = tx.send(());
            }
            if out.messages().is_empty() {
                continue;
            }
            let index = OwnerIndex::build(
                self.controller
                    .ledgers()
                    .iter()
                    .map(|(k, r)| (k, r.as_slice())),
            );
            let mut done = Vec::new();
            for (i, m) in out.messages().iter().enumerate() {
                let event = parse(m.body().unwrap_or_default());
                let store = self.store.as_ref().map(|s| &s.0);
                let decision = decide(&event, &index, &me, store, &mut recent);
                self.handled(&event, &decision);
                if let Some(receipt) = m.receipt_handle() {
                    let entry = DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build();
                    match entry {
                        Ok(entry) => done.push(entry),
                        Err(e) => tracing::warn!(error = %e, "cannot delete a message"),
                    }
                }
            }
            self.delete(done).await;
        }
    }

    /// Act on one decision: trigger, count, log.
    fn handled(&self, event: &Result<Event, Malformed>, decision: &Decision) {
        let source = source_label(event);
        let (name, identity) = match event {
            Ok(e) => (
                e.name.clone().unwrap_or_else(|| e.detail_type.clone()),
                e.identity.clone(),
            ),
            Err(_) => (String::new(), String::new()),
        };
        match decision {
            Decision::Matched(keys) => {
                let time = event.as_ref().ok().and_then(|e| e.time);
                for key in keys {
                    if let Some(t) = time {
                        self.pending.event(key, t);
                    }
                    self.handle.trigger(key.clone(), Reason::Event);
                }
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                tracing::info!(source, event = %name, id = %identity, specs = ?keys, "event: reconciling the specs that own what it names");
            }
            Decision::StoreKey(key) => {
                if let Some((_, nudges)) = &self.store {
                    nudges.key(key.clone());
                }
                tracing::info!(source, event = %name, id = %identity, key = %key, "event: re-reading the store key it names");
            }
            Decision::Ignored(why) => {
                tracing::info!(source, event = %name, id = %identity, reason = *why, "event ignored")
            }
            Decision::Unmatched => {
                tracing::info!(source, event = %name, id = %identity, "event names nothing a spec owns")
            }
            Decision::Malformed(why) => {
                tracing::warn!(reason = %why, "malformed message in the events queue; deleted")
            }
        }
        self.metrics.event(source, decision.outcome());
    }

    async fn delete(&self, entries: Vec<DeleteMessageBatchRequestEntry>) {
        if entries.is_empty() {
            return;
        }
        match self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                for f in out.failed() {
                    tracing::warn!(id = %f.id(), code = %f.code(), "cannot delete a handled message; it will come back as a duplicate");
                }
            }
            Err(e) => {
                tracing::warn!(error = %DisplayErrorContext(&e), "cannot delete handled messages; they will come back as duplicates")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;
    use crate::store::status::ResourceRef;

    const LISTENER: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/prod-public/50dc6c495c0c9188/f2f7dc8efc522ab2";
    const OWN: &str = "arn:aws:sts::1:assumed-role/ecs-operator-task/replica-a";

    fn index() -> OwnerIndex {
        let prod = SpecKey::new(Kind::ClusterSpec, "prod");
        let ledger = [ResourceRef {
            resource_type: "elbv2:listener".into(),
            id: LISTENER.into(),
        }];
        OwnerIndex::build([(&prod, &ledger[..])])
    }

    fn call(event_id: &str, caller: &str, listener: &str) -> Result<Event, Malformed> {
        parse(
            &serde_json::json!({
                "version": "0", "id": format!("envelope-{event_id}"),
                "detail-type": "AWS API Call via CloudTrail", "source": "aws.elasticloadbalancing",
                "account": "1", "time": "2026-12-01T21:04:05Z", "region": "eu-west-1", "resources": [],
                "detail": {"eventName": "ModifyListener", "eventID": event_id,
                           "userIdentity": {"arn": caller},
                           "requestParameters": {"listenerArn": listener}}
            })
            .to_string(),
        )
    }

    #[test]
    fn a_persons_call_on_an_owned_resource_matches_its_spec_once() {
        let mut recent = Recent::new(100);
        let alice = "arn:aws:sts::1:assumed-role/Admin/alice";
        let d = decide(
            &call("e1", alice, LISTENER),
            &index(),
            OWN,
            None,
            &mut recent,
        );
        assert_eq!(
            d,
            Decision::Matched([SpecKey::new(Kind::ClusterSpec, "prod")].into())
        );
        // The same CloudTrail event put on the bus again (a new envelope id): a duplicate.
        for _ in 0..99 {
            assert_eq!(
                decide(
                    &call("e1", alice, LISTENER),
                    &index(),
                    OWN,
                    None,
                    &mut recent
                ),
                Decision::Ignored("a duplicate delivery")
            );
        }
    }

    #[test]
    fn own_calls_failed_calls_unowned_resources_and_junk_trigger_nothing() {
        let mut recent = Recent::new(100);
        let other_replica = "arn:aws:sts::1:assumed-role/ecs-operator-task/replica-b";
        assert_eq!(
            decide(
                &call("e1", other_replica, LISTENER),
                &index(),
                OWN,
                None,
                &mut recent
            ),
            Decision::Ignored("the operator's own call")
        );
        let bob = "arn:aws:iam::1:user/bob";
        assert_eq!(
            decide(
                &call(
                    "e2",
                    bob,
                    "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/x/1/2"
                ),
                &index(),
                OWN,
                None,
                &mut recent
            ),
            Decision::Unmatched
        );
        let mut failed = call("e3", bob, LISTENER).unwrap();
        failed.failed = true;
        assert_eq!(
            decide(&Ok(failed), &index(), OWN, None, &mut recent).outcome(),
            "ignored"
        );
        let junk = parse("{}");
        assert_eq!(
            decide(&junk, &index(), OWN, None, &mut recent).outcome(),
            "malformed"
        );
        assert_eq!(source_label(&junk), "unknown");
    }

    #[test]
    fn an_object_event_under_the_store_prefix_names_a_store_key_and_others_nothing() {
        let store = StoreBucket {
            bucket: "specs-bucket".into(),
            prefix: "team/specs/".into(),
        };
        let object = |id: &str, bucket: &str, key: &str| {
            parse(
                &serde_json::json!({
                    "version": "0", "id": id, "detail-type": "Object Created", "source": "aws.s3",
                    "account": "1", "time": "2026-12-01T21:04:05Z", "region": "eu-west-1",
                    "resources": [format!("arn:aws:s3:::{bucket}")],
                    "detail": {"version": "0", "bucket": {"name": bucket},
                               "object": {"key": key, "size": 10}, "reason": "PutObject"}
                })
                .to_string(),
            )
        };
        let mut recent = Recent::new(100);
        let d = |e, recent: &mut Recent| decide(&e, &index(), OWN, Some(&store), recent);
        assert_eq!(
            d(
                object("1", "specs-bucket", "team/specs/service-web.yaml"),
                &mut recent
            ),
            Decision::StoreKey("service-web.yaml".into())
        );
        // Delivered again: read again (a GetObject of an unchanged key changes nothing).
        assert_eq!(
            d(
                object("1", "specs-bucket", "team/specs/service-web.yaml"),
                &mut recent
            ),
            Decision::StoreKey("service-web.yaml".into())
        );
        for (id, bucket, key) in [
            ("2", "specs-bucket", "team/specs/README.md"),
            ("3", "specs-bucket", "other/service-web.yaml"),
            ("4", "other-bucket", "team/specs/service-web.yaml"),
            (
                "5",
                "specs-bucket",
                ".ecs-operator/team/specs/status/ServiceSpec/web.json",
            ),
        ] {
            assert_eq!(
                d(object(id, bucket, key), &mut recent),
                Decision::Unmatched,
                "{bucket}/{key}"
            );
        }
        // Without an S3 store, an object event names nothing.
        assert_eq!(
            decide(
                &object("6", "specs-bucket", "team/specs/service-web.yaml"),
                &index(),
                OWN,
                None,
                &mut recent
            ),
            Decision::Unmatched
        );
        assert_eq!(
            source_label(&object("7", "specs-bucket", "x.yaml")),
            "aws.s3"
        );
    }

    #[test]
    fn sources_outside_the_rules_are_counted_as_other() {
        let mut e = call("e1", "x", LISTENER).unwrap();
        assert_eq!(source_label(&Ok(e.clone())), "aws.elasticloadbalancing");
        e.source = "com.example.anything".into();
        assert_eq!(source_label(&Ok(e)), "other");
    }

    #[test]
    fn retries_back_off_from_one_second_to_a_minute() {
        assert_eq!(retry_delay(0), Duration::from_secs(1));
        assert_eq!(retry_delay(3), Duration::from_secs(8));
        assert_eq!(retry_delay(30), Duration::from_secs(60));
    }
}

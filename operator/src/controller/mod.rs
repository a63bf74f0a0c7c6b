//! Wiring: store listing -> desired cache -> runtime -> reconciler -> status.
//!
//! The controller owns the desired cache (the latest complete listing, parsed and validated) and
//! the last status it wrote per spec. The runtime calls [`Controller::reconcile`] with a key; the
//! controller looks the spec up, hands valid ones to the [`Reconciler`] (the AWS side), and
//! writes the resulting status to the store when it differs from the last one written.
//!
//! Invariants:
//! - an invalid spec is never handed to the reconciler; it reports `Invalid` with every
//!   diagnostic and waits for a change (a terminal error for the runtime);
//! - a paused spec is neither read nor written; it reports `Paused`;
//! - a condition's `lastTransitionTime` changes only when its status changes;
//! - status is written only when something other than `updatedAt` changed, so a converged
//!   fleet does not rewrite its status every resync;
//! - a ServiceSpec that has not converged yet waits for its ClusterSpec without reading AWS
//!   and is woken when the cluster stops blocking it ([`dependency`]).
mod deletion;
mod dependency;
mod desired;
mod gc;
mod status;
mod waves;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::reconcile::{ConditionReport, Failure, ReconcileInput, Reconciler, Report, ValidSpecs};
use crate::runtime::{Action, Handle, Reason, Run};
use crate::spec::{Spec, SpecKey};
use crate::store::status::{Phase, ResourceRef, SpecStatus};
use crate::store::{now_rfc3339, Store};

pub use deletion::{DeletionGuard, DELETION_CONFIRMED, DELETION_HELD};
pub use dependency::{blocked_by, cluster_of};
pub use desired::{Desired, DesiredEntry};
pub use gc::leaked;
pub use status::{deletion_policy_of, next_status};
pub use waves::WaveSnapshots;

use status::{is_paused, phase_label, same_status};

/// How `--once` sees the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Some spec is still on its way.
    No,
    /// Every spec reached a final phase; `failed` lists the ones that are not Ready.
    Yes { failed: Vec<String> },
}

/// The controller shared by the runtime's reconcile tasks.
pub struct Controller {
    store: Arc<dyn Store>,
    reconciler: Arc<dyn Reconciler>,
    metrics: Arc<Metrics>,
    desired: RwLock<(Arc<Desired>, ValidSpecs)>,
    /// The last status written (or read at start) per spec.
    statuses: Mutex<HashMap<SpecKey, SpecStatus>>,
    /// Bumped after every reconcile, for `--once`.
    progress: watch::Sender<u64>,
    /// Specs that left the store, as last seen (for their deletion).
    departed: Mutex<HashMap<SpecKey, Arc<Spec>>>,
    /// Deletions held by the mass-deletion guard until confirmed.
    held: Mutex<std::collections::HashSet<SpecKey>>,
    /// The deletion policy of specs whose deletion finished in this process, so resources
    /// their ledger missed, found later by garbage collection, go the same way.
    finished: Mutex<HashMap<SpecKey, Option<String>>>,
    /// The snapshot of the current resync wave.
    waves: WaveSnapshots,
    /// Keys reconciled at least once by this process: `--once` waits for every spec to have
    /// been reconciled, not only for the status records it read at start to say Ready.
    reconciled: Mutex<std::collections::HashSet<SpecKey>>,
    /// ServiceSpecs parked until their ClusterSpec stops blocking them. Lock order:
    /// `statuses`, then `waiting`.
    waiting: Mutex<dependency::Waiting>,
    /// How parked services are woken: the runner of the current leadership term.
    waker: Mutex<Option<Handle<SpecKey>>>,
}

impl Controller {
    pub fn new(
        store: Arc<dyn Store>,
        reconciler: Arc<dyn Reconciler>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Controller {
            store,
            reconciler,
            metrics,
            desired: RwLock::new(Default::default()),
            statuses: Mutex::new(HashMap::new()),
            progress: watch::channel(0).0,
            departed: Mutex::new(HashMap::new()),
            held: Mutex::new(std::collections::HashSet::new()),
            finished: Mutex::new(HashMap::new()),
            waves: WaveSnapshots::default(),
            reconciled: Mutex::new(std::collections::HashSet::new()),
            waiting: Mutex::new(dependency::Waiting::default()),
            waker: Mutex::new(None),
        }
    }

    /// Wake parked services through `handle` (the runner of this leadership term). Services
    /// parked under an earlier runner are woken at once: that runner is gone.
    pub fn set_waker(&self, handle: Handle<SpecKey>) {
        let parked: Vec<SpecKey> = {
            let mut w = self.waiting.lock().expect("waiting lock");
            std::mem::take(&mut *w).into_keys()
        };
        for key in parked {
            handle.trigger(key, Reason::Change);
        }
        *self.waker.lock().expect("waker lock") = Some(handle);
    }

    /// After a ClusterSpec's reconcile: wake the services parked behind it if it no longer
    /// blocks them.
    fn wake_dependents(&self, cluster: &SpecKey) {
        let desired = self.desired();
        let woken = {
            let statuses = self.statuses.lock().expect("status lock");
            let mut waiting = self.waiting.lock().expect("waiting lock");
            waiting.release(cluster, &desired, statuses.get(cluster))
        };
        if woken.is_empty() {
            return;
        }
        tracing::debug!(%cluster, services = woken.len(), "cluster ready: waking its services");
        if let Some(h) = self.waker.lock().expect("waker lock").as_ref() {
            for (key, in_wave) in woken {
                // Parked by a wave: join the current wave (its snapshot is safe to read: the
                // parked reconcile read nothing, and the cluster's writes dropped what it read).
                h.trigger(
                    key,
                    if in_wave {
                        Reason::Resync
                    } else {
                        Reason::Change
                    },
                );
            }
        }
    }

    /// Park `key` behind its ClusterSpec when the spec has not converged yet and the cluster
    /// blocks it; returns why. Checked and parked under the status lock (see [`dependency`]).
    fn park_behind_cluster(&self, key: &SpecKey, spec: &Spec, in_wave: bool) -> Option<String> {
        let cluster = cluster_of(spec)?;
        let desired = self.desired();
        let statuses = self.statuses.lock().expect("status lock");
        let own = statuses.get(key).map(|s| s.phase);
        if !matches!(own, None | Some(Phase::Pending)) {
            return None;
        }
        let why = blocked_by(
            &cluster,
            desired.entries.get(&cluster),
            statuses.get(&cluster),
        )?;
        self.waiting
            .lock()
            .expect("waiting lock")
            .park(cluster, key.clone(), in_wave);
        Some(why)
    }

    /// Keys with a status record (they, or what they own, exist) that are not in the store:
    /// what deletion has to take care of, e.g. after a restart.
    pub fn orphaned_statuses(&self) -> Vec<SpecKey> {
        let desired = self.desired();
        let statuses = self.statuses.lock().expect("status lock");
        let mut v: Vec<_> = statuses
            .keys()
            .filter(|k| !desired.entries.contains_key(*k))
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Load the status records already in the store, so conditions keep their transition times
    /// across restarts and unchanged records are not rewritten.
    pub async fn load_statuses(&self) -> Result<(), crate::store::StoreError> {
        let records = self.store.list_status().await?;
        let mut statuses = self.statuses.lock().expect("status lock");
        for s in records {
            statuses.entry(s.key()).or_insert(s);
        }
        Ok(())
    }

    /// Replace the desired cache.
    pub fn set_desired(&self, desired: Desired) {
        for p in &desired.unattributed {
            tracing::warn!(problem = %p, "a store document names no spec");
        }
        let valid = Arc::new(desired.valid());
        let mut d = self.desired.write().expect("desired lock");
        let mut departed = self.departed.lock().expect("departed lock");
        for (key, spec) in d.1.iter() {
            if !desired.entries.contains_key(key) {
                departed.insert(key.clone(), spec.clone());
            }
        }
        departed.retain(|k, _| !desired.entries.contains_key(k));
        *d = (Arc::new(desired), valid);
    }

    pub fn desired(&self) -> Arc<Desired> {
        self.desired.read().expect("desired lock").0.clone()
    }

    /// A receiver that changes after every reconcile.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// Every status record's ledger (the resources each spec lists, for specs in the store
    /// and specs being deleted): what the events index is built from.
    pub fn ledgers(&self) -> Vec<(SpecKey, Vec<ResourceRef>)> {
        self.statuses
            .lock()
            .expect("status lock")
            .iter()
            .map(|(k, s)| (k.clone(), s.resources.clone()))
            .collect()
    }

    /// The last status of `key`.
    pub fn status(&self, key: &SpecKey) -> Option<SpecStatus> {
        self.statuses.lock().expect("status lock").get(key).cloned()
    }

    /// The resources the spec's last status recorded (its ledger), without copying the rest.
    fn ledger(&self, key: &SpecKey) -> Option<Vec<ResourceRef>> {
        let statuses = self.statuses.lock().expect("status lock");
        statuses.get(key).map(|s| s.resources.clone())
    }

    /// The phase of the spec's last status.
    fn last_phase(&self, key: &SpecKey) -> Option<Phase> {
        let statuses = self.statuses.lock().expect("status lock");
        statuses.get(key).map(|s| s.phase)
    }

    /// Whether every spec of the desired cache was reconciled by this process and reached a
    /// final phase for its current generation (Ready, Failed, Invalid, Degraded; Paused counts
    /// as final and not failed). A status record read at start does not count until its spec
    /// has been reconciled: `run --once` on a converged store still checks every spec for drift.
    pub fn settled(&self) -> Settled {
        let desired = self.desired();
        // Lock order: `reconciled`, then `statuses` (nothing takes them the other way round).
        let reconciled = self.reconciled.lock().expect("reconciled lock");
        let statuses = self.statuses.lock().expect("status lock");
        let mut failed = Vec::new();
        for (key, entry) in &desired.entries {
            if !reconciled.contains(key) {
                return Settled::No;
            }
            let Some(s) = statuses.get(key) else {
                return Settled::No;
            };
            if s.observed_generation.as_deref() != Some(entry.generation.as_str()) {
                return Settled::No;
            }
            match s.phase {
                Phase::Ready | Phase::Paused => {}
                Phase::Failed | Phase::Invalid | Phase::Degraded => {
                    failed.push(format!("{key}: {} {}", s.phase, s.summary()));
                }
                Phase::Pending | Phase::Progressing | Phase::Deleting => return Settled::No,
            }
        }
        // Specs that left the store are settled once deleted (their record is gone), or when
        // the mass-deletion guard holds them (a person has to act).
        let held = self.held.lock().expect("held lock");
        for key in statuses
            .keys()
            .filter(|k| !desired.entries.contains_key(*k))
        {
            if held.contains(key) {
                failed.push(format!("{key}: deletion held by the mass-deletion guard (run `ecs-operator confirm-deletions`)"));
            } else if !desired.unattributed.is_empty() {
                failed.push(format!(
                    "{key}: not deleted while the store has documents that name no spec (fix them first)"
                ));
            } else {
                return Settled::No;
            }
        }
        Settled::Yes { failed }
    }

    /// Reconcile one key: the runtime's reconcile function. `run.wave`: the resync wave the
    /// runtime started this reconcile for (its reads come from the wave's snapshot), `None`
    /// to read fresh; `run.follow_up`: passed on as [`ReconcileInput::follow_up`].
    pub async fn reconcile(&self, key: SpecKey, run: Run) -> Result<Action, Failure> {
        let started = Instant::now();
        let (entry, specs) = {
            let d = self.desired.read().expect("desired lock");
            (d.0.entries.get(&key).cloned(), d.1.clone())
        };
        let (result, label) = match entry {
            None => self.reconcile_deletion(&key, specs).await,
            Some(entry) => self.reconcile_entry(&key, entry, specs, run).await,
        };
        self.metrics
            .reconciled(key.kind.as_str(), label, started.elapsed());
        let is_cluster = key.kind == crate::spec::Kind::ClusterSpec;
        self.reconciled
            .lock()
            .expect("reconciled lock")
            .insert(key.clone());
        if is_cluster {
            self.wake_dependents(&key);
        }
        self.progress.send_modify(|n| *n += 1);
        result
    }

    async fn reconcile_entry(
        &self,
        key: &SpecKey,
        entry: DesiredEntry,
        specs: ValidSpecs,
        run: Run,
    ) -> (Result<Action, Failure>, &'static str) {
        let spec = match &entry.spec {
            Err(diagnostics) => {
                let report = Report {
                    phase: Phase::Invalid,
                    conditions: vec![ConditionReport::new(
                        "Valid",
                        false,
                        "InvalidSpec",
                        diagnostics.clone(),
                    )],
                    resources: Vec::new(),
                    requeue_after: None,
                };
                self.record(key, &entry, &report, Some(diagnostics.clone()))
                    .await;
                return (
                    Err(Failure::Terminal(
                        format!("invalid spec ({})", entry.origin).into(),
                    )),
                    "invalid",
                );
            }
            Ok(spec) => spec.clone(),
        };
        if is_paused(&spec) {
            let report = Report {
                phase: Phase::Paused,
                conditions: vec![ConditionReport::new(
                    "Paused",
                    true,
                    "SpecPaused",
                    "spec.paused is true: its resources are neither read nor written",
                )],
                resources: self.ledger(key).unwrap_or_default(),
                requeue_after: None,
            };
            self.record(key, &entry, &report, None).await;
            return (Ok(Action::AwaitChange), "paused");
        }
        if let Some(why) = self.park_behind_cluster(key, &spec, run.wave.is_some()) {
            let report = Report {
                phase: Phase::Pending,
                conditions: vec![ConditionReport::new(
                    "ClusterReady",
                    false,
                    "WaitingForCluster",
                    why,
                )],
                resources: self.ledger(key).unwrap_or_default(),
                requeue_after: None,
            };
            self.record(key, &entry, &report, None).await;
            return (Ok(Action::AwaitChange), "waiting");
        }
        let input = ReconcileInput {
            specs,
            wave: self.waves.snapshot(run.wave),
            ledger: self.ledger(key),
            follow_up: run.follow_up,
            placement: self
                .status(key)
                .filter(|s| !s.resources.is_empty())
                .and_then(|s| s.placement),
            placements: Vec::new(),
        };
        match self.reconciler.reconcile(spec, &input).await {
            Ok(report) => {
                self.record(key, &entry, &report, None).await;
                let label = phase_label(report.phase);
                let action = match report.requeue_after {
                    Some(d) => Action::RequeueAfter(d),
                    None => Action::AwaitChange,
                };
                (Ok(action), label)
            }
            Err(failure) => {
                let message = failure.to_string();
                let phase = match &failure {
                    Failure::Terminal(_) => Phase::Failed,
                    // A transient error does not undo what was reached: keep the phase (a
                    // Ready spec becomes Degraded), report the error, retry with backoff.
                    Failure::Retryable(_) => match self.last_phase(key) {
                        Some(Phase::Ready) | Some(Phase::Degraded) => Phase::Degraded,
                        Some(Phase::Progressing) => Phase::Progressing,
                        _ => Phase::Pending,
                    },
                };
                let report = Report {
                    phase,
                    conditions: vec![ConditionReport::new(
                        "Reconciled",
                        false,
                        match &failure {
                            Failure::Terminal(_) => "ReconcileFailed",
                            Failure::Retryable(_) => "ReconcileError",
                        },
                        message.clone(),
                    )],
                    // Only this key's reconcile writes its status: the ledger read before
                    // the reconcile is still the last one recorded.
                    resources: input.ledger.unwrap_or_default(),
                    requeue_after: None,
                };
                self.record(key, &entry, &report, Some(message)).await;
                (Err(failure), "error")
            }
        }
    }

    /// Turn a report into a status record and write it when it changed.
    async fn record(
        &self,
        key: &SpecKey,
        entry: &DesiredEntry,
        report: &Report,
        last_error: Option<String>,
    ) {
        self.metrics
            .health
            .set_phase(&key.to_string(), Some(report.phase));
        let previous = self.status(key);
        let mut next = next_status(
            key,
            previous.as_ref(),
            entry,
            report,
            last_error,
            &now_rfc3339(),
        );
        // Where the resources live: kept while the record lists resources (a spec cannot move
        // them), else where the spec says.
        let placed = previous
            .as_ref()
            .is_some_and(|p| p.placement.is_some() && !p.resources.is_empty());
        if !placed {
            if let Ok(spec) = &entry.spec {
                let specs = self.desired.read().expect("desired lock").1.clone();
                if let Some(p) = self.reconciler.placement(spec, &specs) {
                    next.placement = Some(p);
                }
            }
        }
        if previous.as_ref().is_some_and(|p| same_status(p, &next)) {
            return;
        }
        match self.store.write_status(&next).await {
            Ok(()) => {
                self.statuses
                    .lock()
                    .expect("status lock")
                    .insert(key.clone(), next);
            }
            // The next reconcile tries again; the reconcile itself is not failed by this.
            Err(e) => tracing::warn!(spec = %key, error = %e, "cannot write status"),
        }
    }
}

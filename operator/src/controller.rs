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
//!   fleet does not rewrite its status every resync.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::resources::Snapshot;
use crate::runtime::{Action, ReconcileError, WaveId};
use crate::spec::{Spec, SpecKey};
use crate::store::status::{Condition, Phase, ResourceRef, SpecStatus};
use crate::store::{now_rfc3339, Listing, Store};

/// One spec of the desired cache, valid or not.
#[derive(Debug, Clone)]
pub struct DesiredEntry {
    pub key: SpecKey,
    /// The digest of the spec as it is in the store now.
    pub generation: String,
    /// Where it came from (`file document N`).
    pub origin: String,
    /// The valid spec, or every diagnostic (one per line).
    pub spec: Result<Arc<Spec>, String>,
}

/// The desired state: every spec of the latest complete listing.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub entries: BTreeMap<SpecKey, DesiredEntry>,
    /// Problems that belong to no spec (a file that does not parse, a document without a name).
    pub unattributed: Vec<String>,
}

impl Desired {
    /// Parse and validate a listing (cross-document checks included).
    pub fn from_listing(listing: &Listing) -> Desired {
        let mut desired = Desired::default();
        for file in listing.validated_files() {
            desired
                .unattributed
                .extend(file.errors.iter().map(|e| e.to_string()));
            for doc in &file.documents {
                let Some(key) = doc.key() else {
                    desired
                        .unattributed
                        .extend(doc.diagnostics().iter().map(|d| d.to_string()));
                    continue;
                };
                let spec = match &doc.result {
                    Ok(spec) => Ok(Arc::new(spec.clone())),
                    Err(diags) => Err(diags
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")),
                };
                let entry = DesiredEntry {
                    key: key.clone(),
                    generation: doc.generation(),
                    origin: doc.origin.to_string(),
                    spec,
                };
                // A name defined twice is already invalid in both documents (validate_set);
                // keep the first invalid one so the key reports it.
                match desired.entries.get(&key) {
                    Some(existing) if existing.spec.is_err() => {}
                    _ => {
                        desired.entries.insert(key, entry);
                    }
                }
            }
        }
        desired
    }

    /// The valid specs, by key.
    pub fn valid(&self) -> BTreeMap<SpecKey, Arc<Spec>> {
        self.entries
            .iter()
            .filter_map(|(k, e)| e.spec.as_ref().ok().map(|s| (k.clone(), s.clone())))
            .collect()
    }
}

/// A condition as a reconciler reports it; the controller fills in `lastTransitionTime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionReport {
    pub condition_type: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl ConditionReport {
    pub fn new(
        condition_type: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        ConditionReport {
            condition_type: condition_type.to_string(),
            status: if status { "True" } else { "False" }.to_string(),
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// What one successful reconcile found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub phase: Phase,
    pub conditions: Vec<ConditionReport>,
    pub resources: Vec<ResourceRef>,
    /// Come back after this long (a rollout or a certificate to follow); `None`: converged.
    pub requeue_after: Option<Duration>,
}

/// Why a reconcile failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth retrying with backoff (AWS unavailable, throttled past the SDK's retries, a
    /// dependency not ready yet).
    #[error("{0}")]
    Retryable(String),
    /// Retrying cannot help until the spec changes (a resource the spec does not own, a field
    /// AWS cannot change in place).
    #[error("{0}")]
    Terminal(String),
}

/// The valid specs of the store, by key.
pub type ValidSpecs = Arc<BTreeMap<SpecKey, Arc<Spec>>>;

/// Everything a reconcile may look at besides its own spec.
#[derive(Debug, Clone, Default)]
pub struct ReconcileInput {
    /// Every valid spec of the store (a ServiceSpec needs its ClusterSpec).
    pub specs: ValidSpecs,
    /// The shared reads of the resync wave this reconcile is part of
    /// (`crate::resources::snapshot`); `None`: read AWS fresh (a change, a requeue, a retry, a
    /// deletion, `diff`).
    pub wave: Option<Arc<Snapshot>>,
}

impl ReconcileInput {
    /// An input that reads fresh.
    pub fn fresh(specs: ValidSpecs) -> Self {
        ReconcileInput { specs, wave: None }
    }
}

/// The AWS side: drives AWS toward one spec. Implementations never block waiting on AWS; they
/// report `Progressing` with `requeue_after`.
#[async_trait]
pub trait Reconciler: Send + Sync + 'static {
    async fn reconcile(&self, spec: Arc<Spec>, input: &ReconcileInput) -> Result<Report, Failure>;

    /// Tear down what a spec that left the store owns. `last`: the spec as last seen (absent
    /// after a restart); `previous`: its last status record (the resources it lists, the
    /// deletion policy it recorded). Returns `Deleted` once nothing is left, or a report with
    /// phase `Deleting` and a requeue while work remains.
    async fn delete(
        &self,
        key: &SpecKey,
        last: Option<Arc<Spec>>,
        previous: &SpecStatus,
        input: &ReconcileInput,
    ) -> Result<Deletion, Failure>;

    /// Garbage collection: every resource this instance owns in AWS, by the owner its tags
    /// name. `ledgers`: every resource the status records list (where to look beyond what the
    /// specs name). The default finds nothing.
    async fn owned(&self, input: &ReconcileInput, ledgers: &[ResourceRef]) -> OwnedScan {
        let _ = (input, ledgers);
        OwnedScan::default()
    }
}

/// What a garbage-collection scan found: `(resource type, id)` by owner, and the kinds it
/// could not list.
pub type OwnedScan = crate::resources::gc::Scan;

/// Leaked resources to add to ledgers: for every owner that is not in the store, what the scan
/// found that its status record does not list yet (pure).
///
/// Invariants: an owner with a document in the store (valid or not) is never collected; while
/// the store holds documents that name no spec, nothing is collected (such a document may be
/// the owner, made unreadable by a typo).
pub fn leaked(
    desired: &Desired,
    statuses: &HashMap<SpecKey, SpecStatus>,
    scan: &OwnedScan,
) -> Result<Vec<(SpecKey, Vec<ResourceRef>)>, String> {
    if !desired.unattributed.is_empty() {
        return Err(format!(
            "the store has {} problem(s) that name no spec (first: {}); garbage collection waits \
             until they are fixed, since an unreadable document may be the owner",
            desired.unattributed.len(),
            desired.unattributed[0]
        ));
    }
    let mut out = Vec::new();
    for owner in scan.owned.keys() {
        if desired.entries.contains_key(owner) {
            continue;
        }
        let known: &[ResourceRef] = statuses
            .get(owner)
            .map(|s| s.resources.as_slice())
            .unwrap_or_default();
        let new: Vec<ResourceRef> = scan
            .resources_of(owner)
            .into_iter()
            .filter(|r| !known.contains(r))
            .collect();
        if !new.is_empty() {
            out.push((owner.clone(), new));
        }
    }
    Ok(out)
}

/// Where a deletion stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    /// Everything the spec owned is deleted (or released, with `deletionPolicy: Retain`).
    Deleted,
    /// Work remains (a service draining, a spec still referenced); the report says why.
    InProgress(Report),
}

/// The mass-deletion guard: a listing that removes more than `fraction` of the known specs and
/// more than `min_count` of them deletes nothing until a person confirms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeletionGuard {
    pub fraction: f64,
    pub min_count: usize,
    /// `--allow-mass-deletion`: the guard is off.
    pub disabled: bool,
}

impl Default for DeletionGuard {
    fn default() -> Self {
        DeletionGuard {
            fraction: 0.2,
            min_count: 2,
            disabled: false,
        }
    }
}

impl DeletionGuard {
    /// Whether removing `removed` of `known` specs at once needs a person's confirmation.
    pub fn trips(&self, removed: usize, known: usize) -> bool {
        !self.disabled
            && removed > self.min_count
            && (removed as f64) > self.fraction * known as f64
    }
}

/// The condition `confirm-deletions` sets on a held spec's status record.
pub const DELETION_CONFIRMED: &str = "DeletionConfirmed";
/// The condition of a spec whose deletion waits for confirmation.
pub const DELETION_HELD: &str = "DeletionHeld";

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
}

/// The snapshot of the current resync wave (`crate::resources::snapshot`): made by the wave's
/// first reconcile, replaced when the next wave's first reconcile starts (the old one is freed
/// once its last reconcile ends).
#[derive(Debug, Default)]
pub struct WaveSnapshots {
    current: Mutex<Option<Arc<Snapshot>>>,
}

impl WaveSnapshots {
    /// The snapshot of `wave`: the current one, or a new one when `wave` is newer. A reconcile
    /// of no wave, or of a wave that is over already, reads fresh (`None`).
    pub fn snapshot(&self, wave: Option<WaveId>) -> Option<Arc<Snapshot>> {
        let wave = wave?;
        let mut current = self.current.lock().expect("wave lock");
        match current.as_ref() {
            Some(s) if s.wave() == wave => Some(s.clone()),
            Some(s) if s.wave() > wave => None,
            _ => {
                let s = Snapshot::new(wave);
                *current = Some(s.clone());
                Some(s)
            }
        }
    }
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
        }
    }

    /// Hold the deletion of these keys until a person confirms (the mass-deletion guard).
    pub fn hold_deletions(&self, keys: impl IntoIterator<Item = SpecKey>) {
        let mut held = self.held.lock().expect("held lock");
        held.extend(keys);
        self.metrics.health.set_deletions_held(held.len());
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

    /// The last status of `key`.
    pub fn status(&self, key: &SpecKey) -> Option<SpecStatus> {
        self.statuses.lock().expect("status lock").get(key).cloned()
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

    /// Garbage collection: scan AWS for what this instance owns, and add what belongs to
    /// owners that are not in the store (and is in no ledger yet) to their status records,
    /// creating a `Deleting` record where none exists. Returns the keys whose deletion now has
    /// work to do; the caller triggers them, and the ordinary deletion runs with its policy
    /// (a leak without a record has none: Retain, so it is released, never deleted on a guess)
    /// and the mass-deletion guard, which holds the new owners when too many turn up at once.
    pub async fn collect_garbage(&self, guard: &DeletionGuard) -> Result<Vec<SpecKey>, String> {
        let ledgers: Vec<ResourceRef> = {
            let statuses = self.statuses.lock().expect("status lock");
            statuses
                .values()
                .flat_map(|s| s.resources.iter().cloned())
                .collect()
        };
        let before = self.desired();
        let input = ReconcileInput::fresh(Arc::new(before.valid()));
        let scan = self.reconciler.owned(&input, &ledgers).await;
        for e in &scan.errors {
            tracing::warn!(error = %e, "garbage collection: cannot list");
        }
        // Owners must be absent from the listing both before and after the scan: a spec added
        // meanwhile may own what the scan found.
        let after = self.desired();
        let statuses = self.statuses.lock().expect("status lock").clone();
        let mut found = leaked(&after, &statuses, &scan)?;
        found.retain(|(k, _)| !before.entries.contains_key(k));
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let new_owners: Vec<SpecKey> = found
            .iter()
            .filter(|(k, _)| !statuses.contains_key(k))
            .map(|(k, _)| k.clone())
            .collect();
        if guard.trips(new_owners.len(), new_owners.len() + after.entries.len()) {
            tracing::error!(
                count = new_owners.len(),
                "mass deletion held: garbage collection found resources of {} specs that are not in the store; run `ecs-operator confirm-deletions` to let them go",
                new_owners.len()
            );
            self.hold_deletions(new_owners.iter().cloned());
        }
        let mut keys = Vec::new();
        for (key, resources) in found {
            let mut next = statuses.get(&key).cloned().unwrap_or_else(|| {
                // No record: the policy of a deletion that finished here before, else none
                // (Retain: released, never deleted on a guess).
                let mut s = SpecStatus::pending(&key);
                s.deletion_policy = self
                    .finished
                    .lock()
                    .expect("finished lock")
                    .get(&key)
                    .cloned()
                    .flatten();
                s
            });
            let message = format!(
                "garbage collection found {} resource(s) tagged as owned by {key}, which is not in the store: {}",
                resources.len(),
                resources
                    .iter()
                    .map(|r| format!("{} {}", r.resource_type, r.id))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            tracing::info!(spec = %key, found = resources.len(), "garbage collection: {message}");
            next.resources.extend(resources);
            next.resources.sort();
            next.resources.dedup();
            next.phase = Phase::Deleting;
            let now = now_rfc3339();
            next.conditions.retain(|c| c.condition_type != "Collected");
            next.conditions.push(Condition {
                condition_type: "Collected".into(),
                status: "True".into(),
                reason: "Leaked".into(),
                message,
                last_transition_time: now.clone(),
            });
            next.updated_at = Some(now);
            match self.store.write_status(&next).await {
                Ok(()) => {
                    self.statuses
                        .lock()
                        .expect("status lock")
                        .insert(key.clone(), next);
                    self.metrics
                        .health
                        .set_phase(&key.to_string(), Some(Phase::Deleting));
                    keys.push(key);
                }
                Err(e) => {
                    tracing::warn!(spec = %key, error = %e, "garbage collection: cannot write status")
                }
            }
        }
        Ok(keys)
    }

    /// Reconcile one key: the runtime's reconcile function. `wave`: the resync wave the
    /// runtime started this reconcile for (its reads come from the wave's snapshot), `None`
    /// to read fresh.
    pub async fn reconcile(
        &self,
        key: SpecKey,
        wave: Option<WaveId>,
    ) -> Result<Action, ReconcileError> {
        let started = Instant::now();
        let (entry, specs) = {
            let d = self.desired.read().expect("desired lock");
            (d.0.entries.get(&key).cloned(), d.1.clone())
        };
        let (result, label) = match entry {
            None => self.reconcile_deletion(&key, specs).await,
            Some(entry) => self.reconcile_entry(&key, entry, specs, wave).await,
        };
        self.metrics
            .reconciled(key.kind.as_str(), label, started.elapsed());
        self.reconciled.lock().expect("reconciled lock").insert(key);
        self.progress.send_modify(|n| *n += 1);
        result
    }

    /// A spec that is not in the store: tear down what it owns, unless the mass-deletion guard
    /// holds it and nobody confirmed yet.
    async fn reconcile_deletion(
        &self,
        key: &SpecKey,
        specs: ValidSpecs,
    ) -> (Result<Action, ReconcileError>, &'static str) {
        let Some(previous) = self.status(key) else {
            // Never reconciled by this operator and gone: nothing it could own.
            self.metrics.health.set_phase(&key.to_string(), None);
            self.departed.lock().expect("departed lock").remove(key);
            return (Ok(Action::AwaitChange), "absent");
        };
        let entry = DesiredEntry {
            key: key.clone(),
            generation: previous.observed_generation.clone().unwrap_or_default(),
            origin: "(removed from the store)".into(),
            spec: Err(String::new()),
        };
        let unattributed = self.desired().unattributed.clone();
        if let Some(first) = unattributed.first() {
            // A document that does not parse may be this very spec, made unreadable by a typo:
            // never delete on that. The deletion waits until the store reads cleanly.
            let report = Report {
                phase: Phase::Deleting,
                conditions: vec![ConditionReport::new(
                    "Deleted",
                    false,
                    "StoreUnreadable",
                    format!(
                        "not deleted while the store has {} problem(s) that name no spec (first: \
                         {first}); an unreadable document may be this spec",
                        unattributed.len()
                    ),
                )],
                resources: previous.resources.clone(),
                requeue_after: Some(Duration::from_secs(30)),
            };
            self.record(key, &entry, &report, None).await;
            return (Ok(Action::RequeueAfter(Duration::from_secs(30))), "held");
        }
        if self.held.lock().expect("held lock").contains(key) {
            // Confirmation arrives as a condition on the status record, written by
            // `confirm-deletions`: read the record fresh from the store.
            let confirmed = match self.store.read_status(key).await {
                Ok(Some(s)) => s
                    .conditions
                    .iter()
                    .any(|c| c.condition_type == DELETION_CONFIRMED && c.status == "True"),
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(spec = %key, error = %e, "cannot read status; deletion stays held");
                    false
                }
            };
            if !confirmed {
                let mut conditions: Vec<ConditionReport> = previous
                    .conditions
                    .iter()
                    .filter(|c| c.condition_type != "Ready" && c.condition_type != DELETION_HELD)
                    .map(|c| ConditionReport {
                        condition_type: c.condition_type.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                    })
                    .collect();
                conditions.push(ConditionReport::new(
                    DELETION_HELD,
                    true,
                    "MassDeletion",
                    "this spec left the store together with many others; nothing is deleted until \
                     `ecs-operator confirm-deletions --store URL` (or a run with --allow-mass-deletion)",
                ));
                let report = Report {
                    phase: Phase::Degraded,
                    conditions,
                    resources: previous.resources.clone(),
                    requeue_after: Some(Duration::from_secs(30)),
                };
                self.record(key, &entry, &report, None).await;
                return (Ok(Action::RequeueAfter(Duration::from_secs(30))), "held");
            }
            let mut held = self.held.lock().expect("held lock");
            held.remove(key);
            self.metrics.health.set_deletions_held(held.len());
        }
        let last = self
            .departed
            .lock()
            .expect("departed lock")
            .get(key)
            .cloned();
        let input = ReconcileInput::fresh(specs);
        match self
            .reconciler
            .delete(key, last.clone(), &previous, &input)
            .await
        {
            Ok(Deletion::Deleted) => {
                if let Err(e) = self.store.delete_status(key).await {
                    tracing::warn!(spec = %key, error = %e, "cannot delete the status record");
                    return (Err(ReconcileError::Retryable(e.to_string())), "error");
                }
                tracing::info!(spec = %key, "deleted");
                let policy = match &last {
                    Some(spec) => Some(deletion_policy_of(spec).to_string()),
                    None => previous.deletion_policy.clone(),
                };
                self.finished
                    .lock()
                    .expect("finished lock")
                    .insert(key.clone(), policy);
                self.statuses.lock().expect("status lock").remove(key);
                self.departed.lock().expect("departed lock").remove(key);
                self.metrics.health.set_phase(&key.to_string(), None);
                (Ok(Action::AwaitChange), "deleted")
            }
            Ok(Deletion::InProgress(report)) => {
                let after = report.requeue_after.unwrap_or(Duration::from_secs(15));
                self.record(key, &entry, &report, None).await;
                (Ok(Action::RequeueAfter(after)), "deleting")
            }
            Err(failure) => {
                let message = failure.to_string();
                let report = Report {
                    phase: Phase::Deleting,
                    conditions: vec![ConditionReport::new(
                        "Deleted",
                        false,
                        "DeleteError",
                        message.clone(),
                    )],
                    resources: previous.resources.clone(),
                    requeue_after: None,
                };
                self.record(key, &entry, &report, Some(message.clone()))
                    .await;
                // Deletion is always retried (with backoff): a terminal error here would leak.
                (Err(ReconcileError::Retryable(message)), "error")
            }
        }
    }

    async fn reconcile_entry(
        &self,
        key: &SpecKey,
        entry: DesiredEntry,
        specs: ValidSpecs,
        wave: Option<WaveId>,
    ) -> (Result<Action, ReconcileError>, &'static str) {
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
                    Err(ReconcileError::Terminal(format!(
                        "invalid spec ({})",
                        entry.origin
                    ))),
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
                resources: self.status(key).map(|s| s.resources).unwrap_or_default(),
                requeue_after: None,
            };
            self.record(key, &entry, &report, None).await;
            return (Ok(Action::AwaitChange), "paused");
        }
        let input = ReconcileInput {
            specs,
            wave: self.waves.snapshot(wave),
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
                let previous = self.status(key);
                let (phase, runtime_error) = match &failure {
                    Failure::Terminal(m) => (Phase::Failed, ReconcileError::Terminal(m.clone())),
                    Failure::Retryable(m) => (
                        // A transient error does not undo what was reached: keep the phase
                        // (a Ready spec becomes Degraded), report the error, retry with backoff.
                        match previous.as_ref().map(|s| s.phase) {
                            Some(Phase::Ready) | Some(Phase::Degraded) => Phase::Degraded,
                            Some(Phase::Progressing) => Phase::Progressing,
                            _ => Phase::Pending,
                        },
                        ReconcileError::Retryable(m.clone()),
                    ),
                };
                let report = Report {
                    phase,
                    conditions: vec![ConditionReport::new(
                        "Reconciled",
                        false,
                        match failure {
                            Failure::Terminal(_) => "ReconcileFailed",
                            Failure::Retryable(_) => "ReconcileError",
                        },
                        message.clone(),
                    )],
                    resources: previous.map(|s| s.resources).unwrap_or_default(),
                    requeue_after: None,
                };
                self.record(key, &entry, &report, Some(message)).await;
                (Err(runtime_error), "error")
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
        let next = next_status(
            key,
            previous.as_ref(),
            entry,
            report,
            last_error,
            &now_rfc3339(),
        );
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

/// `Retain` or `Delete`, as the spec says (defaults filled in).
pub fn deletion_policy_of(spec: &Spec) -> &'static str {
    let p = match spec {
        Spec::Cluster(c) => c.spec.deletion_policy,
        Spec::Service(s) => s.spec.deletion_policy,
    };
    match p {
        crate::spec::types::DeletionPolicy::Retain => "Retain",
        crate::spec::types::DeletionPolicy::Delete => "Delete",
    }
}

fn is_paused(spec: &Spec) -> bool {
    match spec {
        Spec::Cluster(c) => c.spec.paused,
        Spec::Service(s) => s.spec.paused,
    }
}

fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "pending",
        Phase::Progressing => "progressing",
        Phase::Ready => "ready",
        Phase::Degraded => "degraded",
        Phase::Failed => "failed",
        Phase::Deleting => "deleting",
        Phase::Paused => "paused",
        Phase::Invalid => "invalid",
    }
}

/// Two records say the same thing when they differ at most in `updatedAt`.
fn same_status(a: &SpecStatus, b: &SpecStatus) -> bool {
    let mut a = a.clone();
    a.updated_at = b.updated_at.clone();
    a.generation = b.generation.clone();
    &a == b
}

/// The status record after a reconcile (pure: `now` is given). Conditions keep their
/// `lastTransitionTime` unless their status changed; a `Ready` condition is always present.
pub fn next_status(
    key: &SpecKey,
    previous: Option<&SpecStatus>,
    entry: &DesiredEntry,
    report: &Report,
    last_error: Option<String>,
    now: &str,
) -> SpecStatus {
    let mut reported = report.conditions.clone();
    if !reported.iter().any(|c| c.condition_type == "Ready") {
        let ready = report.phase == Phase::Ready;
        let message = if ready {
            "every resource matches the spec".to_string()
        } else {
            reported
                .iter()
                .find(|c| c.status != "True")
                .map(|c| c.message.clone())
                .unwrap_or_else(|| format!("phase {}", report.phase))
        };
        reported.insert(
            0,
            ConditionReport::new("Ready", ready, &report.phase.to_string(), message),
        );
    }
    let conditions = reported
        .into_iter()
        .map(|c| {
            let since = previous
                .and_then(|p| {
                    p.conditions
                        .iter()
                        .find(|o| o.condition_type == c.condition_type && o.status == c.status)
                })
                .map(|o| o.last_transition_time.clone())
                .unwrap_or_else(|| now.to_string());
            Condition {
                condition_type: c.condition_type,
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_transition_time: since,
            }
        })
        .collect();
    let mut resources = report.resources.clone();
    resources.sort();
    resources.dedup();
    SpecStatus {
        kind: key.kind,
        name: key.name.clone(),
        phase: report.phase,
        observed_generation: Some(entry.generation.clone()),
        generation: Some(entry.generation.clone()),
        conditions,
        resources,
        last_error,
        deletion_policy: match &entry.spec {
            Ok(spec) => Some(deletion_policy_of(spec).to_string()),
            Err(_) => previous.and_then(|p| p.deletion_policy.clone()),
        },
        updated_at: Some(now.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    fn entry(generation: &str) -> DesiredEntry {
        DesiredEntry {
            key: SpecKey::new(Kind::ServiceSpec, "web"),
            generation: generation.into(),
            origin: "web.yaml document 1".into(),
            spec: Err("x".into()),
        }
    }

    fn report(phase: Phase, conds: Vec<ConditionReport>) -> Report {
        Report {
            phase,
            conditions: conds,
            resources: vec![],
            requeue_after: None,
        }
    }

    fn found(pairs: &[(&str, &str, &str)]) -> OwnedScan {
        let mut scan = OwnedScan::default();
        for (owner, t, id) in pairs {
            scan.owned
                .entry(SpecKey::parse(owner).unwrap())
                .or_default()
                .insert((t.to_string(), id.to_string()));
        }
        scan
    }

    #[test]
    fn garbage_collection_takes_only_unlisted_resources_of_owners_not_in_the_store() {
        let web = SpecKey::new(Kind::ServiceSpec, "web");
        let old = SpecKey::new(Kind::ServiceSpec, "old");
        let broken = SpecKey::new(Kind::ServiceSpec, "broken");
        let mut desired = Desired::default();
        desired.entries.insert(web.clone(), entry("g1"));
        // An invalid document still names its spec: never collected.
        desired.entries.insert(
            broken.clone(),
            DesiredEntry {
                key: broken.clone(),
                ..entry("g2")
            },
        );
        let mut statuses = HashMap::new();
        let mut old_status = SpecStatus::pending(&old);
        old_status.resources = vec![ResourceRef {
            resource_type: "elbv2:targetgroup".into(),
            id: "tg-listed".into(),
        }];
        statuses.insert(old.clone(), old_status);
        let scan = found(&[
            ("ServiceSpec/web", "elbv2:targetgroup", "tg-web"),
            ("ServiceSpec/broken", "elbv2:targetgroup", "tg-broken"),
            ("ServiceSpec/old", "elbv2:targetgroup", "tg-listed"),
            ("ServiceSpec/old", "ecs:service", "svc-old"),
            ("ServiceSpec/gone", "acm:certificate", "cert-gone"),
        ]);
        let out = leaked(&desired, &statuses, &scan).unwrap();
        let got: Vec<(String, Vec<String>)> = out
            .iter()
            .map(|(k, r)| (k.to_string(), r.iter().map(|r| r.id.clone()).collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "ServiceSpec/gone".to_string(),
                    vec!["cert-gone".to_string()]
                ),
                ("ServiceSpec/old".to_string(), vec!["svc-old".to_string()]),
            ]
        );
        // Everything listed already: nothing to add.
        let scan = found(&[("ServiceSpec/old", "elbv2:targetgroup", "tg-listed")]);
        assert!(leaked(&desired, &statuses, &scan).unwrap().is_empty());
    }

    #[test]
    fn garbage_collection_waits_while_a_store_document_names_no_spec() {
        let mut desired = Desired::default();
        desired
            .unattributed
            .push("specs.yaml: invalid YAML at line 3".into());
        let scan = found(&[("ServiceSpec/gone", "acm:certificate", "cert-gone")]);
        let err = leaked(&desired, &HashMap::new(), &scan).unwrap_err();
        assert!(err.contains("specs.yaml: invalid YAML"), "{err}");
    }

    #[test]
    fn a_condition_keeps_its_transition_time_while_its_status_holds() {
        let key = SpecKey::new(Kind::ServiceSpec, "web");
        let c = |s| vec![ConditionReport::new("Rollout", s, "R", "m")];
        let first = next_status(
            &key,
            None,
            &entry("g1"),
            &report(Phase::Progressing, c(false)),
            None,
            "T1",
        );
        let second = next_status(
            &key,
            Some(&first),
            &entry("g1"),
            &report(Phase::Progressing, c(false)),
            None,
            "T2",
        );
        let rollout = |s: &SpecStatus| {
            s.conditions
                .iter()
                .find(|c| c.condition_type == "Rollout")
                .unwrap()
                .clone()
        };
        assert_eq!(rollout(&second).last_transition_time, "T1");
        let third = next_status(
            &key,
            Some(&second),
            &entry("g1"),
            &report(Phase::Ready, c(true)),
            None,
            "T3",
        );
        assert_eq!(rollout(&third).last_transition_time, "T3");
        let ready = third
            .conditions
            .iter()
            .find(|c| c.condition_type == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.as_str()),
            ("True", "T3")
        );
        assert_eq!(third.observed_generation.as_deref(), Some("g1"));
    }

    #[test]
    fn the_reconciles_of_one_wave_share_its_snapshot_and_others_read_fresh() {
        let waves = WaveSnapshots::default();
        assert!(waves.snapshot(None).is_none());
        let one = waves.snapshot(Some(1)).unwrap();
        assert!(Arc::ptr_eq(&one, &waves.snapshot(Some(1)).unwrap()));
        let two = waves.snapshot(Some(2)).unwrap();
        assert_eq!(two.wave(), 2);
        assert!(!Arc::ptr_eq(&one, &two));
        // A straggler of a wave that is over reads fresh.
        assert!(waves.snapshot(Some(1)).is_none());
        assert!(Arc::ptr_eq(&two, &waves.snapshot(Some(2)).unwrap()));
    }

    #[test]
    fn the_guard_trips_on_more_than_a_fifth_and_more_than_two_specs() {
        let g = DeletionGuard::default();
        assert!(!g.trips(2, 4), "two specs are never a mass deletion");
        assert!(!g.trips(3, 20), "3 of 20 is 15%");
        assert!(g.trips(3, 10));
        assert!(g.trips(5, 5));
        assert!(!DeletionGuard {
            disabled: true,
            ..g
        }
        .trips(5, 5));
    }

    #[test]
    fn records_that_differ_only_in_update_time_are_the_same() {
        let key = SpecKey::new(Kind::ServiceSpec, "web");
        let a = next_status(
            &key,
            None,
            &entry("g1"),
            &report(Phase::Ready, vec![]),
            None,
            "T1",
        );
        let b = next_status(
            &key,
            Some(&a),
            &entry("g1"),
            &report(Phase::Ready, vec![]),
            None,
            "T2",
        );
        assert!(same_status(&a, &b));
        let c = next_status(
            &key,
            Some(&a),
            &entry("g2"),
            &report(Phase::Ready, vec![]),
            None,
            "T2",
        );
        assert!(!same_status(&a, &c), "a new generation must be written");
    }
}

//! Deletion, the controller's side: a spec that left the store has what it owns torn down by
//! the reconciler, unless the mass-deletion guard holds it until a person confirms, or the
//! store has documents that name no spec (one of them may be this spec, made unreadable).

use std::time::Duration;

use crate::reconcile::{ConditionReport, Deletion, Failure, ReconcileInput, Report, ValidSpecs};
use crate::runtime::Action;
use crate::spec::SpecKey;
use crate::store::status::Phase;

use super::desired::DesiredEntry;
use super::status::deletion_policy_of;
use super::Controller;

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

    /// The guard per account and region: the `removed` keys of `old` whose scope (the
    /// account and region of their spec in `old`; an invalid document's is unknown, counted
    /// on its own) trips the guard.
    pub fn held_per_scope(
        &self,
        old: &super::Desired,
        removed: &std::collections::BTreeSet<SpecKey>,
    ) -> Vec<SpecKey> {
        use std::collections::BTreeMap;
        let valid = old.valid();
        let scope = |key: &SpecKey| -> String {
            valid
                .get(key)
                .and_then(|s| crate::spec::placement_of(s, &valid))
                .map_or_else(|| "unknown".to_string(), |p| p.scope_key())
        };
        let mut known: BTreeMap<String, usize> = BTreeMap::new();
        for key in old.entries.keys() {
            *known.entry(scope(key)).or_default() += 1;
        }
        let mut gone: BTreeMap<String, Vec<SpecKey>> = BTreeMap::new();
        for key in removed {
            gone.entry(scope(key)).or_default().push(key.clone());
        }
        gone.into_iter()
            .filter(|(s, keys)| self.trips(keys.len(), known.get(s).copied().unwrap_or(0)))
            .flat_map(|(_, keys)| keys)
            .collect()
    }
}

/// The condition `confirm-deletions` sets on a held spec's status record.
pub const DELETION_CONFIRMED: &str = "DeletionConfirmed";
/// The condition of a spec whose deletion waits for confirmation.
pub const DELETION_HELD: &str = "DeletionHeld";

impl Controller {
    /// Hold the deletion of these keys until a person confirms (the mass-deletion guard).
    pub fn hold_deletions(&self, keys: impl IntoIterator<Item = SpecKey>) {
        let mut held = self.held.lock().expect("held lock");
        held.extend(keys);
        self.metrics.health.set_deletions_held(held.len());
    }

    /// A spec that is not in the store: tear down what it owns, unless the mass-deletion guard
    /// holds it and nobody confirmed yet.
    pub(super) async fn reconcile_deletion(
        &self,
        key: &SpecKey,
        specs: ValidSpecs,
    ) -> (Result<Action, Failure>, &'static str) {
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
                    return (Err(Failure::Retryable(e.to_string().into())), "error");
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
                (Err(Failure::Retryable(message.into())), "error")
            }
        }
    }
}

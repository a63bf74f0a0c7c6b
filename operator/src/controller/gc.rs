//! Garbage collection, the controller's side: what a scan of AWS found that belongs to owners
//! which are not in the store is added to their ledgers (status records), and their ordinary
//! deletion takes it from there (deletion policy, mass-deletion guard, confirmation).

use std::collections::HashMap;
use std::sync::Arc;

use crate::reconcile::{OwnedScan, ReconcileInput};
use crate::spec::SpecKey;
use crate::store::now_rfc3339;
use crate::store::status::{Condition, Phase, ResourceRef, SpecStatus};

use super::deletion::DeletionGuard;
use super::desired::Desired;
use super::Controller;

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

impl Controller {
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
        let placements: Vec<crate::spec::Placement> = {
            let statuses = self.statuses.lock().expect("status lock");
            let mut v: Vec<_> = statuses
                .values()
                .filter_map(|s| s.placement.clone())
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let before = self.desired();
        let input = ReconcileInput {
            placements,
            ..ReconcileInput::fresh(Arc::new(before.valid()))
        };
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
}

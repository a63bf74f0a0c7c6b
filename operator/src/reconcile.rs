//! The reconcile contract between the controller (which knows the store, the specs and their
//! status) and a [`Reconciler`] (which knows AWS): what a reconcile is given
//! ([`ReconcileInput`]), what it answers ([`Report`], [`Deletion`], [`OwnedScan`]) and how it
//! fails ([`Failure`]).
//!
//! Invariants:
//! - this module depends on no reconciler and no controller: both depend on it;
//! - a reconciler never blocks waiting on AWS: it reports `Progressing` with `requeue_after`;
//! - a [`Failure`] keeps the structured error it was made from ([`Cause::error`]) all the way
//!   to the runner, which only needs its variant.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use crate::resources::snapshot::Snapshot;
pub use crate::runtime::failure::{Cause, Failure};
pub use crate::spec::ValidSpecs;
use crate::spec::{Placement, Spec, SpecKey};
use crate::store::status::{Phase, ResourceRef, SpecStatus};

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

/// Everything a reconcile may look at besides its own spec.
#[derive(Debug, Clone, Default)]
pub struct ReconcileInput {
    /// Every valid spec of the store (a ServiceSpec needs its ClusterSpec).
    pub specs: ValidSpecs,
    /// The shared reads of the resync wave this reconcile is part of
    /// (`crate::resources::snapshot`); `None`: read AWS fresh (a change, a requeue, a retry, a
    /// deletion, `diff`).
    pub wave: Option<Arc<Snapshot>>,
    /// What the spec's last status record lists as its resources, when the controller knows
    /// it; `None` when unknown (`diff`, a first reconcile). Reads that must find what the spec
    /// owned before (a host it no longer lists) read by these names instead of listing
    /// everything; with `None` they list everything.
    pub ledger: Option<Vec<ResourceRef>>,
    /// Where the spec's last status record says its resources live (while it lists any);
    /// `None` when unknown or nothing was created yet.
    pub placement: Option<Placement>,
    /// Garbage collection only: where every status record's resources live (the scopes to
    /// scan besides the specs').
    pub placements: Vec<Placement>,
    /// The runner scheduled this reconcile only because the spec's previous one asked to be
    /// requeued ([`crate::runtime::Run::follow_up`]): the reconciler may look again at only what
    /// that reconcile waited for, when it knows nothing else can have changed.
    pub follow_up: bool,
}

impl ReconcileInput {
    /// An input that reads fresh.
    pub fn fresh(specs: ValidSpecs) -> Self {
        ReconcileInput {
            specs,
            wave: None,
            ledger: None,
            placement: None,
            placements: Vec::new(),
            follow_up: false,
        }
    }
}

/// Where a deletion stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    /// Everything the spec owned is deleted (or released, with `deletionPolicy: Retain`).
    Deleted,
    /// Work remains (a service draining, a spec still referenced); the report says why.
    InProgress(Report),
}

/// What a garbage-collection scan found: `(resource type, id)` pairs as the ledger records
/// them, by the owner their tags name, and the kinds it could not list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OwnedScan {
    pub owned: BTreeMap<SpecKey, BTreeSet<(String, String)>>,
    /// Kinds that could not be listed, with the reason.
    pub errors: Vec<String>,
}

impl OwnedScan {
    /// Record that `owner` owns `(resource_type, id)`.
    pub fn add(&mut self, owner: SpecKey, resource_type: &str, id: impl Into<String>) {
        self.owned
            .entry(owner)
            .or_default()
            .insert((resource_type.to_string(), id.into()));
    }

    /// The resources found for `owner`, as ledger entries.
    pub fn resources_of(&self, owner: &SpecKey) -> Vec<ResourceRef> {
        self.owned
            .get(owner)
            .into_iter()
            .flatten()
            .map(|(t, id)| ResourceRef {
                resource_type: t.clone(),
                id: id.clone(),
            })
            .collect()
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

    /// Where `spec`'s resources go (its region filled in), for the status record; `None`
    /// (the default) records nothing.
    fn placement(&self, spec: &Spec, specs: &ValidSpecs) -> Option<Placement> {
        let _ = (spec, specs);
        None
    }
}

//! Releasing a resource instead of deleting it (`deletionPolicy: Retain`, or a kind's own rule
//! to keep what cannot be rebuilt): its two ownership tags give way to
//! `ecs-operator.io/released-from=<Kind/name>`.
//!
//! Invariant: a kind writes the released tag first and removes [`OWNERSHIP_KEYS`] second, so
//! a release that fails half-way leaves the resource still ours (the next teardown releases it
//! again), never a resource that carries neither mark.

use std::collections::BTreeMap;

use super::tags::RELEASED_TAG;
use crate::resources::run::{Change, SpecRun};
use crate::{MANAGED_BY_TAG, OWNER_TAG};

/// What the plan says of a release.
pub const RELEASED: &str = "released (deletionPolicy Retain)";

/// The tag keys a release removes.
pub const OWNERSHIP_KEYS: [&str; 2] = [MANAGED_BY_TAG, OWNER_TAG];

/// Record the release of `resource` in the plan (`why`: [`RELEASED`], or the kind's reason).
/// Returns the released tag to write when the release is carried out, `None` when the run
/// only plans.
pub fn planned(
    run: &mut SpecRun<'_>,
    resource: &str,
    why: &str,
) -> Option<BTreeMap<String, String>> {
    run.plan(Change::update(resource, why))
        .then(|| BTreeMap::from([(RELEASED_TAG.to_string(), run.key.to_string())]))
}

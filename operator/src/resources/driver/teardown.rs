//! Deletion of what a spec that left the store owns, in reverse dependency order (each kind's
//! [`Kind::RANK`](crate::resources::kind::Kind::RANK)), each resource deleted by its kind
//! through [`kinds::find`]. The status record's resource list is the ledger, so deletion works
//! after a restart too; every kind checks our ownership tags before it touches a resource.
//!
//! Invariants:
//! - nothing without both ownership tags naming this spec is changed or deleted;
//! - `deletionPolicy: Retain` deletes nothing: ownership tags are replaced by
//!   `ecs-operator.io/released-from=<Kind/name>`, so the resources become unowned;
//! - the deletion policy is the spec's as last seen, else the one its status record kept
//!   (a restart after it left the store), else Retain: never delete on a guess;
//! - a ClusterSpec is not torn down while a ServiceSpec in the store names it;
//! - a resource type this build does not know stops the deletion with a condition (it is
//!   never forgotten, which would leak it).

use std::time::Duration;

use crate::reconcile::{ConditionReport, ReconcileInput};
use crate::resources::kind::Gone;
use crate::resources::kinds;
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;
use crate::spec::types::DeletionPolicy;
use crate::spec::{Kind, Spec, SpecKey};
use crate::store::status::ResourceRef;

/// The rank of a kind this build does not know: last.
const UNKNOWN_RANK: u8 = u8::MAX;

/// The order resources are torn down in: dependents first.
fn rank(resource_type: &str) -> u8 {
    kinds::find(resource_type).map_or(UNKNOWN_RANK, |k| k.rank)
}

/// The deletion policy of a departed spec: as last seen, else as its status record says, else
/// Retain (never delete on a guess).
pub fn policy(last: Option<&Spec>, recorded: Option<&str>) -> DeletionPolicy {
    match (last, recorded) {
        (Some(Spec::Cluster(c)), _) => c.spec.deletion_policy,
        (Some(Spec::Service(s)), _) => s.spec.deletion_policy,
        (None, Some("Delete")) => DeletionPolicy::Delete,
        _ => DeletionPolicy::Retain,
    }
}

/// ServiceSpecs in the store that name this cluster.
pub fn referencing_services(cluster: &str, input: &ReconcileInput) -> Vec<String> {
    input
        .specs
        .values()
        .filter_map(|s| match s.as_ref() {
            Spec::Service(svc) if svc.spec.cluster == cluster => Some(svc.metadata.name.clone()),
            _ => None,
        })
        .collect()
}

/// Tear down (or release) `resources`. Leaves reasons in `run.waiting` while work remains.
pub async fn teardown(
    run: &mut SpecRun<'_>,
    key: &SpecKey,
    policy: DeletionPolicy,
    resources: &[ResourceRef],
    input: &ReconcileInput,
) -> Result<(), ResourceError> {
    if key.kind == Kind::ClusterSpec {
        let users = referencing_services(&key.name, input);
        if !users.is_empty() {
            let why = format!(
                "not torn down: ServiceSpec(s) {} still name this cluster",
                users.join(", ")
            );
            run.condition(ConditionReport::new(
                "Deleted",
                false,
                "StillReferenced",
                why.clone(),
            ));
            run.wait(why, Duration::from_secs(30));
            return Ok(());
        }
    }
    let retain = policy == DeletionPolicy::Retain;
    let mut ordered: Vec<&ResourceRef> = resources.iter().collect();
    ordered.sort_by_key(|r| (rank(&r.resource_type), r.id.clone()));
    for r in ordered {
        let deletion = match kinds::find(&r.resource_type) {
            Some(kind) => (kind.delete)(run, &r.id, retain).await?,
            None => unknown(run, &r.resource_type, &r.id),
        };
        // Stop at the first resource still on its way out: later ones depend on it.
        if !deletion.follow(run) {
            break;
        }
    }
    Ok(())
}

/// A kind this build does not know (a newer operator recorded it): stop with a clear condition
/// rather than forget (and so leak) the resource.
fn unknown(run: &mut SpecRun<'_>, resource_type: &str, id: &str) -> Gone {
    let why = format!(
        "{resource_type} {id} cannot be deleted by this build; it is left in place and the deletion waits"
    );
    run.condition(ConditionReport::new(
        "Deleted",
        false,
        "NoTeardown",
        why.clone(),
    ));
    Gone::not_yet(why, Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_go_before_target_groups_and_clusters_last_but_providers() {
        let mut types = vec![
            "ecs:cluster",
            "elbv2:targetgroup",
            "ecs:service",
            "route53:record",
            "ecs:capacity-provider",
            "application-autoscaling:scalable-target",
        ];
        types.sort_by_key(|t| rank(t));
        assert_eq!(
            types,
            [
                "route53:record",
                "application-autoscaling:scalable-target",
                "ecs:service",
                "elbv2:targetgroup",
                "ecs:cluster",
                "ecs:capacity-provider"
            ]
        );
    }

    #[test]
    fn an_unknown_policy_is_retain() {
        assert_eq!(policy(None, None), DeletionPolicy::Retain);
        assert_eq!(policy(None, Some("Delete")), DeletionPolicy::Delete);
        assert_eq!(policy(None, Some("bogus")), DeletionPolicy::Retain);
    }
}

//! The AWS side of the operator: one module per resource kind, each split into
//! - **observe**: read what exists (through [`Aws::call`], which spends the call budget and
//!   classifies errors),
//! - **plan**: a pure function of (desired, observed) returning the steps to take, each of which
//!   describes itself as a [`Change`] (what `ecs-operator diff` prints),
//! - **apply**: execute the steps; every create is idempotent (deterministic names or client
//!   tokens, plus ownership tags), so a crash between two calls is harmless.
//!
//! A [`SpecRun`] carries one reconcile of one spec through its resources in dependency order,
//! collecting changes, resource references, conditions and the requeue time. With
//! `apply == false` (diff, `mode: observe`) it plans and records, and never writes.
//!
//! Observe reads fresh, except in a reconcile the runtime started as part of a resync wave:
//! there, what AWS can read in batches (every ECS service of a cluster, every target group,
//! the rules of a listener, the records of a zone...) comes from the wave's shared
//! [`Snapshot`] ([`SpecRun::cached`]), read once for the whole wave (see [`snapshot`]).
//!
//! Invariants: nothing here knows how reconciles are scheduled; a resource without both
//! ownership tags (or, for Route53, its ownership TXT record) is never changed or deleted unless
//! the spec carries the adopt annotation.

pub mod capacity_provider;
pub mod certificate;
pub mod cluster;
pub mod context;
pub mod dns;
pub mod ecr;
pub mod ecs_cluster;
pub mod ecs_service;
pub mod edge;
pub mod error;
pub mod gc;
pub mod listener;
pub mod listener_rule;
pub mod load_balancer;
pub mod reconciler;
pub mod run;
pub mod scaling;
pub mod service;
pub mod shared;
pub mod snapshot;
pub mod target_group;
pub mod task_definition;
pub mod teardown;

pub use context::Aws;
pub use error::ResourceError;
pub use reconciler::AwsReconciler;
pub use run::{Change, Op, RunAws, SpecRun};
pub use snapshot::Snapshot;

/// Teardown of the edge resource kinds (ECR, ACM, ELBv2, Route53), each in its own module.
/// Returns whether the resource is gone or released; `false` leaves a reason in `run.waiting`.
/// Every function checks our ownership (tags, or the TXT record for Route53) first and leaves
/// anything else alone.
pub async fn edge_teardown(
    run: &mut SpecRun<'_>,
    resource_type: &str,
    id: &str,
    retain: bool,
) -> Result<bool, ResourceError> {
    match resource_type {
        "route53:record" => dns::delete(run, id, retain).await,
        "elbv2:listener-rule" => listener_rule::delete(run, id, retain).await,
        "elbv2:listener-certificate" => listener::delete_certificate(run, id, retain).await,
        "elbv2:targetgroup" => target_group::delete(run, id, retain).await,
        "ecr:repository" => ecr::delete(run, id, retain).await,
        "elbv2:listener" => listener::delete(run, id, retain).await,
        "elbv2:loadbalancer" => load_balancer::delete(run, id, retain).await,
        "acm:certificate" => certificate::delete(run, id, retain).await,
        other => {
            // A kind this build does not know (a newer operator recorded it): stop with a clear
            // condition rather than forget (and so leak) the resource.
            let why = format!(
                "{other} {id} cannot be deleted by this build; it is left in place and the deletion waits"
            );
            run.condition(crate::reconcile::ConditionReport::new(
                "Deleted",
                false,
                "NoTeardown",
                why.clone(),
            ));
            run.wait(why, std::time::Duration::from_secs(300));
            Ok(false)
        }
    }
}

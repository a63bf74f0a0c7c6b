//! Following a rollout without re-reading the rest of the service.
//!
//! A ServiceSpec's full reconcile whose only reason to be requeued is its ECS service (a
//! rollout starting or in progress) leaves a [`Follow`]: what that reconcile decided for the
//! service, and everything else it reported. The requeued reconcile that follows
//! ([`crate::reconcile::ReconcileInput::follow_up`]) then makes one DescribeServices and runs
//! the service step again with the same decision ([`follow_up`]), instead of reading the
//! certificate, the load balancer, its listeners and rules, the target group, the log group,
//! the autoscaling target, the alarms and the records again: about ten calls instead of thirty
//! per poll, most of them on ELBv2's account-wide rate limit.
//!
//! Invariants:
//! - a follow-up is only ever taken for a reconcile the runner scheduled by the spec's own
//!   requeue: any change, event, resync wave or failure in between makes the next reconcile
//!   a full one (the runner's `Run::follow_up`);
//! - the spec and its ClusterSpec are the ones the full reconcile saw (compared by value), so
//!   the service's desired settings are still what the spec says;
//! - the full reconcile that left the `Follow` had nothing but the service waiting or degraded,
//!   so every other resource matched the spec when it ended; drift made since is found by the
//!   next full reconcile (the resync wave, an event, the end of the rollout's following);
//! - a service found gone makes it a full reconcile (which creates it again).

use crate::reconcile::{ConditionReport, ReconcileInput};
use crate::resources::kinds::ecs_service;
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;
use crate::spec::types::{ClusterSpec, ServiceSpec};
use crate::store::status::ResourceRef;

use super::service::cluster_of;

/// How far a run had got: the lengths of what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    resources: usize,
    conditions: usize,
    waiting: usize,
    degraded: usize,
    requeued: bool,
}

impl Mark {
    pub fn of(run: &SpecRun<'_>) -> Self {
        Mark {
            resources: run.resources.len(),
            conditions: run.conditions.len(),
            waiting: run.waiting.len(),
            degraded: run.degraded.len(),
            requeued: run.requeue_after.is_some(),
        }
    }
}

/// What a run reported outside the service step, on one side of it.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    resources: Vec<ResourceRef>,
    conditions: Vec<ConditionReport>,
}

/// The service step of a full reconcile that is followed up (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Follow {
    spec: ServiceSpec,
    cluster: ClusterSpec,
    cluster_name: String,
    name: String,
    autoscaled: bool,
    want: ecs_service::Settings,
    initial: u32,
    before: Part,
    after: Part,
}

/// The service step's inputs, as the full reconcile decided them.
pub struct Step<'s> {
    pub spec: &'s ServiceSpec,
    pub cluster: &'s ClusterSpec,
    pub cluster_name: &'s str,
    pub name: &'s str,
    pub autoscaled: bool,
    pub want: &'s ecs_service::Settings,
    pub initial: u32,
}

impl Follow {
    /// The follow a full run leaves, or `None` when its next reconcile must be a full one:
    /// it only planned, it is not requeued, or something besides the service step (between
    /// `start` and `end`) waited, degraded or asked to be requeued.
    pub fn of(run: &SpecRun<'_>, step: Step<'_>, start: Mark, end: Mark) -> Option<Follow> {
        let now = Mark::of(run);
        if !run.apply || !service_only(start, end, now) {
            return None;
        }
        let part = |from: Mark, to: Mark| Part {
            resources: run.resources[from.resources..to.resources].to_vec(),
            conditions: run.conditions[from.conditions..to.conditions].to_vec(),
        };
        let zero = Mark {
            resources: 0,
            conditions: 0,
            ..start
        };
        Some(Follow {
            spec: step.spec.clone(),
            cluster: step.cluster.clone(),
            cluster_name: step.cluster_name.to_string(),
            name: step.name.to_string(),
            autoscaled: step.autoscaled,
            want: step.want.clone(),
            initial: step.initial,
            before: part(zero, start),
            after: part(end, now),
        })
    }
}

/// Whether the service step (from `start` to `end`) alone asked for the requeue of a run that
/// ended at `now`: nothing before it or after it waited, degraded or asked to be requeued.
fn service_only(start: Mark, end: Mark, now: Mark) -> bool {
    start.waiting == 0
        && start.degraded == 0
        && !start.requeued
        && end.requeued
        && now.waiting == end.waiting
        && now.degraded == end.degraded
}

/// Run the follow-up of `follow` into `run` (a fresh, applying run of `spec`): `Ok(false)`,
/// with nothing read or reported, when a full reconcile must run instead.
pub async fn follow_up(
    run: &mut SpecRun<'_>,
    follow: &Follow,
    spec: &ServiceSpec,
    input: &ReconcileInput,
) -> Result<bool, ResourceError> {
    let same_cluster = cluster_of(spec, input).is_ok_and(|c| *c == follow.cluster);
    if *spec != follow.spec || !same_cluster {
        return Ok(false);
    }
    let f = follow;
    let Some(observed) = ecs_service::observe(run, &f.cluster_name, &f.name, f.autoscaled).await?
    else {
        return Ok(false);
    };
    run.resources.extend(f.before.resources.iter().cloned());
    run.conditions.extend(f.before.conditions.iter().cloned());
    let target = ecs_service::Target {
        cluster: f.cluster_name.clone(),
        name: f.name.clone(),
        want: f.want.clone(),
        initial_count: f.initial,
    };
    super::service::service(run, &target, Some(observed)).await?;
    run.resources.extend(f.after.resources.iter().cloned());
    run.conditions.extend(f.after.conditions.iter().cloned());
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(waiting: usize, degraded: usize, requeued: bool) -> Mark {
        Mark {
            resources: 0,
            conditions: 0,
            waiting,
            degraded,
            requeued,
        }
    }

    #[test]
    fn only_a_run_that_waits_on_its_service_alone_is_followed_up() {
        // The service waits on its rollout, nothing else waits: followed up.
        assert!(service_only(
            mark(0, 0, false),
            mark(1, 0, true),
            mark(1, 0, true)
        ));
        // The rollout's tasks fail (degraded and requeued by the service): followed up.
        assert!(service_only(
            mark(0, 0, false),
            mark(0, 1, true),
            mark(0, 1, true)
        ));
        // The certificate waited before the service: a full reconcile.
        assert!(!service_only(
            mark(1, 0, true),
            mark(2, 0, true),
            mark(2, 0, true)
        ));
        // The records waited after it: a full reconcile.
        assert!(!service_only(
            mark(0, 0, false),
            mark(1, 0, true),
            mark(2, 0, true)
        ));
        // Something after the service degraded: a full reconcile.
        assert!(!service_only(
            mark(0, 0, false),
            mark(1, 0, true),
            mark(1, 1, true)
        ));
        // Not requeued at all: nothing to follow.
        assert!(!service_only(
            mark(0, 0, false),
            mark(0, 0, false),
            mark(0, 0, false)
        ));
    }
}

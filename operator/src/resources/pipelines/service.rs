//! A ServiceSpec's resources in dependency order: ECR repository -> certificate -> target group
//! -> listener rule -> log group + metric filter -> task definition -> ECS service ->
//! autoscaling -> SNS topic + subscriptions -> alarms -> Route53 records.

use std::sync::Arc;

use super::edge;
use super::follow::{Follow, Mark, Step};
use crate::reconcile::ReconcileInput;
use crate::resources::driver::reconcile::{drive, drive_from};
use crate::resources::kinds::ecs_service::EcsServiceKind;
use crate::resources::kinds::scaling::{self, ScalableTargetKind};
use crate::resources::kinds::task_definition::{RevisionCache, TaskDefinitionKind};
use crate::resources::kinds::{ecs_cluster, ecs_service, task_definition};
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;
use crate::spec::cluster_spec_of;
use crate::spec::types::{ClusterSpec, ServiceSpec};

/// The ClusterSpec a ServiceSpec names, from the store's valid specs.
pub fn cluster_of<'i>(
    spec: &ServiceSpec,
    input: &'i ReconcileInput,
) -> Result<&'i ClusterSpec, ResourceError> {
    cluster_spec_of(spec, &input.specs).ok_or_else(|| {
        ResourceError::Dependency(format!(
            "ClusterSpec/{} is not in the store (or is invalid): spec.cluster must name one",
            spec.spec.cluster
        ))
    })
}

/// The `app/<lb>/<id>/targetgroup/<tg>/<id>` label of ALB request-count metrics.
pub fn alb_resource_label(lb_arn: &str, tg_arn: &str) -> Option<String> {
    let lb = lb_arn.split_once(":loadbalancer/")?.1;
    let tg = tg_arn.rsplit_once(':')?.1;
    tg.starts_with("targetgroup/").then(|| format!("{lb}/{tg}"))
}

/// Reconcile every resource of `spec`. Returns the [`Follow`] its next reconcile may use when
/// only the ECS service asked for the requeue (see [`super::follow`]).
pub async fn reconcile(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    input: &ReconcileInput,
    revisions: &Arc<RevisionCache>,
) -> Result<Option<Follow>, ResourceError> {
    let cluster = cluster_of(spec, input)?;
    let cluster_name = ecs_cluster::cluster_name(cluster);
    let name = ecs_service::service_name(spec);

    // ECR -> certificate -> target group -> listener rule (+ SNI certificate).
    // Boxed: the edge future is large, and debug builds copy futures once per layer.
    let edge = Box::pin(edge::service(run, spec, cluster)).await?;
    if spec.spec.repository.is_some() && edge.repository_uri.is_none() && run.apply {
        return Err(ResourceError::Dependency(
            "the ECR repository does not exist yet".to_string(),
        ));
    }

    // The log group (+ metric filter) before the task definition whose awslogs driver uses it.
    super::observability::logs(run, spec, &cluster_name).await?;

    // Task definition (only when it differs) -> service -> autoscaling.
    let rendered = task_definition::render(spec, &run.aws.region, edge.repository_uri.as_deref());
    let autoscaled = spec.spec.autoscaling.is_some();
    let current = ecs_service::observe(run, &cluster_name, &name, autoscaled).await?;
    let td = task_definition::Desired {
        want: rendered,
        current: current.as_ref().map(|o| o.settings.task_definition.clone()),
        cache: revisions.clone(),
    };
    let td_arn = drive::<TaskDefinitionKind>(run, &td).await?.arn;
    let target_group = edge.target_group_arn.as_deref().filter(|a| !a.is_empty());
    let mut want = ecs_service::desired(spec, &cluster_name, &td_arn, target_group);
    if let (true, Some(alt), Some(rule)) = (
        spec.spec.deployment.strategy.shifts_traffic(),
        &edge.alternate_target_group_arn,
        &edge.production_rule_arn,
    ) {
        want.strategy.advanced = Some(ecs_service::Advanced {
            alternate_target_group: alt.clone(),
            production_rule: rule.clone(),
            test_rule: edge.test_rule_arn.clone().filter(|a| !a.is_empty()),
            role: spec
                .spec
                .deployment
                .infrastructure_role_arn
                .clone()
                .unwrap_or_default(),
        });
    }
    let initial = spec
        .spec
        .autoscaling
        .as_ref()
        .map_or(spec.spec.desired_count, |a| {
            a.min_capacity
                .max(spec.spec.desired_count.min(a.max_capacity))
        });
    let start = Mark::of(run);
    let target = ecs_service::Target {
        cluster: cluster_name.clone(),
        name: name.clone(),
        want: want.clone(),
        initial_count: initial,
    };
    let had_service = current.is_some();
    service(run, &target, current).await?;
    let end = Mark::of(run);
    // A test rule and an alternate target group the deployment strategy no longer uses, once
    // the service has let go of them.
    Box::pin(edge::drop_unused_deployment_resources(run, spec, &edge)).await?;
    let label = match (&edge.load_balancer, target_group) {
        (Some(lb), Some(tg)) => alb_resource_label(&lb.arn, tg),
        _ => None,
    };
    let autoscaling = scaling::Target {
        cluster: cluster_name.clone(),
        service: name.clone(),
        want: scaling::desired(&name, spec.spec.autoscaling.as_ref(), label.as_deref()),
    };
    if had_service || run.apply {
        drive::<ScalableTargetKind>(run, &autoscaling).await?;
    }

    // SNS topic (+ email subscriptions) -> CloudWatch alarms.
    super::observability::service_alarms(run, spec, &cluster_name, label.as_deref()).await?;

    // Route53 alias records (+ ownership TXT) for every host.
    edge::service_dns(run, spec, &edge).await?;
    let step = Step {
        spec,
        cluster,
        cluster_name: &cluster_name,
        name: &name,
        autoscaled,
        want: &want,
        initial,
    };
    Ok(Follow::of(run, step, start, end))
}

/// Drive the ECS service `target` from `current` (what this reconcile read of it), then follow
/// what its rollout is doing into the spec's conditions, waits and requeue.
pub async fn service(
    run: &mut SpecRun<'_>,
    target: &ecs_service::Target,
    current: Option<ecs_service::Observed>,
) -> Result<(), ResourceError> {
    let found = Box::pin(ecs_service::look(run, target, current)).await?;
    let deployed = Box::pin(drive_from::<EcsServiceKind>(run, target, found)).await?;
    ecs_service::report(run, target, &deployed).follow(run);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_count_label_joins_the_alb_and_target_group_suffixes() {
        assert_eq!(
            alb_resource_label(
                "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/prod-public/50dc6c495c0c9188",
                "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/943f017f100becff"
            )
            .as_deref(),
            Some("app/prod-public/50dc6c495c0c9188/targetgroup/web/943f017f100becff")
        );
    }
}

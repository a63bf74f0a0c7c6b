//! A ClusterSpec's resources in dependency order: capacity providers -> ECS cluster (with its
//! provider list and default strategy) -> for each load balancer, what the edge modules manage,
//! then its alarms (`loadBalancers[].alarms`).

use super::edge;
use crate::reconcile::ReconcileInput;
use crate::resources::kinds::{capacity_provider, ecs_cluster};
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;
use crate::spec::types::ClusterSpec;

pub async fn reconcile(
    run: &mut SpecRun<'_>,
    spec: &ClusterSpec,
    _input: &ReconcileInput,
) -> Result<(), ResourceError> {
    let providers: Vec<_> = spec
        .spec
        .capacity_providers
        .iter()
        .map(capacity_provider::desired)
        .collect();
    capacity_provider::reconcile(run, &providers).await?;
    ecs_cluster::reconcile(run, &ecs_cluster::desired(spec)).await?;
    let cluster = ecs_cluster::cluster_name(spec);
    for lb in &spec.spec.load_balancers {
        let info = edge::load_balancer(run, lb).await?;
        super::observability::load_balancer_alarms(run, &cluster, lb, &info.arn).await?;
    }
    Ok(())
}

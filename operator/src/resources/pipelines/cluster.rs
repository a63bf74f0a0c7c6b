//! A ClusterSpec's resources in dependency order: owned Auto Scaling groups -> capacity
//! providers -> ECS cluster (with its
//! provider list and default strategy) -> for each load balancer, what the edge modules manage,
//! then its alarms (`loadBalancers[].alarms`).

use super::edge;
use crate::reconcile::ReconcileInput;
use crate::resources::driver::reconcile::{drive, drive_set};
use crate::resources::kinds::auto_scaling_group::{self, AutoScalingGroupKind};
use crate::resources::kinds::capacity_provider::{self, CapacityProviderKind};
use crate::resources::kinds::ecs_cluster::{self, EcsClusterKind};
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;
use crate::spec::types::ClusterSpec;

pub async fn reconcile(
    run: &mut SpecRun<'_>,
    spec: &ClusterSpec,
    _input: &ReconcileInput,
) -> Result<(), ResourceError> {
    let mut providers = Vec::new();
    for p in &spec.spec.capacity_providers {
        let mut d = capacity_provider::desired(p);
        if let Some(g) = p.auto_scaling_group.owned() {
            let group = auto_scaling_group::desired(g);
            if let Some(arn) = drive::<AutoScalingGroupKind>(run, &group).await? {
                d.auto_scaling_group = arn;
            }
        }
        providers.push(d);
    }
    drive_set::<CapacityProviderKind>(run, &providers).await?;
    drive::<EcsClusterKind>(run, &ecs_cluster::desired(spec)).await?;
    let cluster = ecs_cluster::cluster_name(spec);
    for lb in &spec.spec.load_balancers {
        let info = edge::load_balancer(run, lb).await?;
        super::observability::load_balancer_alarms(run, &cluster, lb, &info.arn).await?;
    }
    Ok(())
}

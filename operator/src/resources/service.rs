//! A ServiceSpec's resources in dependency order: ECR repository -> certificate -> target group
//! -> listener rule -> task definition -> ECS service -> autoscaling -> Route53 records.

use super::run::SpecRun;
use super::{edge, ResourceError};
use crate::controller::ReconcileInput;
use crate::spec::types::{ClusterSpec, ServiceSpec};
use crate::spec::{Kind, Spec, SpecKey};

/// The ClusterSpec a ServiceSpec names, from the store's valid specs.
pub fn cluster_of<'i>(
    spec: &ServiceSpec,
    input: &'i ReconcileInput,
) -> Result<&'i ClusterSpec, ResourceError> {
    match input
        .specs
        .get(&SpecKey::new(Kind::ClusterSpec, spec.spec.cluster.clone()))
        .map(|s| s.as_ref())
    {
        Some(Spec::Cluster(c)) => Ok(c),
        _ => Err(ResourceError::Dependency(format!(
            "ClusterSpec/{} is not in the store (or is invalid): spec.cluster must name one",
            spec.spec.cluster
        ))),
    }
}

pub async fn reconcile(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    input: &ReconcileInput,
) -> Result<(), ResourceError> {
    let cluster = cluster_of(spec, input)?;
    // ECR -> certificate -> target group -> listener rule (+ SNI certificate).
    let edge = edge::service(run, spec, cluster).await?;
    // ECS: task definition -> service (registered in `edge.target_group_arn`) -> autoscaling.
    edge::service_dns(run, spec, &edge).await?;
    Ok(())
}

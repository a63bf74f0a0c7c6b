//! Garbage collection: the services of every active cluster whose tags name an owner of this
//! instance (ListServices per cluster, all pages, then DescribeServices 10 per call). Each
//! owned service is left under [`SEEN`] as `<cluster name>/<service name>` with its owner,
//! for its scalable target.

use aws_sdk_ecs::types::ServiceField;

use super::TYPE;
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kinds::ecs_cluster;
use crate::resources::run::SpecRun;
use crate::resources::shared::ecs_tags;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

/// Where owned services are left, as `<cluster name>/<service name>` with their owner.
pub const SEEN: &str = "ecs:service (owned, by cluster and name)";

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let ecs = &run.aws.ecs;
    for cluster_arn in &scan.seen_ids(ecs_cluster::SEEN) {
        // A cluster ARN ends in `cluster/<name>`.
        let cluster_name = cluster_arn.rsplit('/').next().unwrap_or(cluster_arn);
        let list = ecs
            .list_services()
            .cluster(cluster_arn)
            .into_paginator()
            .items();
        let list = list.send().try_collect();
        let arns = run
            .aws
            .read(Service::Ecs, "ListServices", cluster_name, list)
            .await?;
        let describe = |batch| {
            let req = ecs
                .describe_services()
                .cluster(cluster_arn)
                .set_services(Some(batch));
            req.include(ServiceField::Tags).send()
        };
        let answers = run
            .aws
            .read_batches(Service::Ecs, "DescribeServices", &arns, 10, describe);
        let answers = answers.await?;
        for out in &answers {
            for s in out.services() {
                if s.status() == Some("INACTIVE") {
                    continue;
                }
                let (Some(arn), Some(name)) = (s.service_arn(), s.service_name()) else {
                    continue;
                };
                if let Some(owner) = owner_of(&run.aws.instance, &ecs_tags::to_map(s.tags())) {
                    scan.add(owner.clone(), TYPE, arn);
                    scan.saw(SEEN, format!("{cluster_name}/{name}"), Some(owner));
                }
            }
        }
    }
    Ok(())
}

//! Garbage collection: every active cluster of the account whose tags name an owner of this
//! instance (ListClusters, all pages, then DescribeClusters 100 per call). Every active
//! cluster is left under [`SEEN`] for its services, and the capacity providers the clusters
//! use under [`SEEN_PROVIDERS`].

use aws_sdk_ecs::types::ClusterField;

use super::TYPE;
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::run::SpecRun;
use crate::resources::shared::ecs_tags;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

/// Where every active cluster's ARN is left, owned or not.
pub const SEEN: &str = "ecs:cluster (active)";
/// Where the names of the capacity providers the active clusters use are left.
pub const SEEN_PROVIDERS: &str = "ecs:capacity-provider (attached)";

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let ecs = &run.aws.ecs;
    let list = ecs
        .list_clusters()
        .into_paginator()
        .items()
        .send()
        .try_collect();
    let clusters = run
        .aws
        .read(Service::Ecs, "ListClusters", "*", list)
        .await?;
    let describe = |batch| {
        let req = ecs.describe_clusters().set_clusters(Some(batch));
        req.include(ClusterField::Tags).send()
    };
    let answers = run
        .aws
        .read_batches(Service::Ecs, "DescribeClusters", &clusters, 100, describe);
    let answers = answers.await?;
    for out in &answers {
        for c in out.clusters() {
            if c.status() != Some("ACTIVE") {
                continue;
            }
            let Some(arn) = c.cluster_arn() else {
                continue;
            };
            scan.saw(SEEN, arn, None);
            for p in c.capacity_providers() {
                scan.saw(SEEN_PROVIDERS, p.clone(), None);
            }
            if let Some(owner) = owner_of(&run.aws.instance, &ecs_tags::to_map(c.tags())) {
                scan.add(owner, TYPE, arn);
            }
        }
    }
    Ok(())
}

//! Garbage collection: scalable targets have no tags; one belongs to the owner of the service
//! it scales (one DescribeScalableTargets listing, all pages, when any service is owned).

use std::collections::BTreeMap;

use super::TYPE;
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kinds::ecs_service;
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let services: BTreeMap<String, crate::spec::SpecKey> = scan
        .seen(ecs_service::SEEN)
        .iter()
        .filter_map(|(id, owner)| Some((format!("service/{id}"), owner.clone()?)))
        .collect();
    if services.is_empty() {
        return Ok(());
    }
    let page = run
        .aws
        .read(
            Service::ApplicationAutoScaling,
            "DescribeScalableTargets",
            "ecs",
            run.aws
                .scaling
                .describe_scalable_targets()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    for t in &page {
        let id = t.resource_id();
        if let Some(owner) = services.get(id) {
            scan.add(owner.clone(), TYPE, id);
        }
    }
    Ok(())
}

//! Garbage collection: the latest active revision of every active family; its tags say whose
//! the family is (the teardown deregisters every revision of the family that is ours). Two
//! reads per family: ListTaskDefinitions and DescribeTaskDefinition.

use aws_sdk_ecs::types::{
    SortOrder, TaskDefinitionFamilyStatus, TaskDefinitionField, TaskDefinitionStatus,
};

use super::TYPE;
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::run::SpecRun;
use crate::resources::shared::ecs_tags;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let ecs = &run.aws.ecs;
    let families = run
        .aws
        .read(
            Service::Ecs,
            "ListTaskDefinitionFamilies",
            "*",
            ecs.list_task_definition_families()
                .status(TaskDefinitionFamilyStatus::Active)
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    for family in families {
        let out = run
            .aws
            .read(
                Service::Ecs,
                "ListTaskDefinitions",
                &family,
                ecs.list_task_definitions()
                    .family_prefix(&family)
                    .status(TaskDefinitionStatus::Active)
                    .sort(SortOrder::Desc)
                    .send(),
            )
            .await?;
        // `family_prefix` matches prefixes: the newest revision of exactly this family.
        let Some(latest) = out.task_definition_arns().iter().find(|arn| {
            arn.rsplit_once("task-definition/")
                .and_then(|(_, f)| f.split(':').next())
                == Some(family.as_str())
        }) else {
            continue;
        };
        let d = run
            .aws
            .read(
                Service::Ecs,
                "DescribeTaskDefinition",
                latest,
                ecs.describe_task_definition()
                    .task_definition(latest)
                    .include(TaskDefinitionField::Tags)
                    .send(),
            )
            .await?;
        if let Some(owner) = owner_of(&run.aws.instance, &ecs_tags::to_map(d.tags())) {
            scan.add(owner, TYPE, latest.clone());
        }
    }
    Ok(())
}

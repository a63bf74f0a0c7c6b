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
    let list = ecs.list_task_definition_families();
    let list = list
        .status(TaskDefinitionFamilyStatus::Active)
        .into_paginator()
        .items();
    let list = list.send().try_collect();
    let families = run
        .aws
        .read(Service::Ecs, "ListTaskDefinitionFamilies", "*", list);
    let families = families.await?;
    for family in families {
        let req = ecs.list_task_definitions().family_prefix(&family);
        let req = req
            .status(TaskDefinitionStatus::Active)
            .sort(SortOrder::Desc)
            .send();
        let out = run
            .aws
            .read(Service::Ecs, "ListTaskDefinitions", &family, req);
        let out = out.await?;
        // `family_prefix` matches prefixes: the newest revision of exactly this family.
        let Some(latest) = out.task_definition_arns().iter().find(|arn| {
            arn.rsplit_once("task-definition/")
                .and_then(|(_, f)| f.split(':').next())
                == Some(family.as_str())
        }) else {
            continue;
        };
        let req = ecs.describe_task_definition().task_definition(latest);
        let req = req.include(TaskDefinitionField::Tags).send();
        let d = run
            .aws
            .read(Service::Ecs, "DescribeTaskDefinition", latest, req);
        let d = d.await?;
        if let Some(owner) = owner_of(&run.aws.instance, &ecs_tags::to_map(d.tags())) {
            scan.add(owner, TYPE, latest.clone());
        }
    }
    Ok(())
}

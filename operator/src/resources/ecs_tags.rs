//! Tagging ECS resources (ownership tags added on adoption or repair).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::Tag;

use super::run::{Change, SpecRun};
use super::ResourceError;
use crate::aws::{CallClass, Service};

/// Add the ownership tags an existing ECS resource lacks (a no-op when none are missing).
/// `resource` names it in the plan (`ecs service web`).
pub async fn add_missing(
    run: &mut SpecRun<'_>,
    resource: &str,
    arn: &str,
    missing: BTreeMap<String, String>,
) -> Result<(), ResourceError> {
    if missing.is_empty() || !run.plan(Change::update(resource, "tags: + ownership")) {
        return Ok(());
    }
    let mut req = run.aws.ecs.tag_resource().resource_arn(arn);
    for (k, v) in missing {
        req = req.tags(Tag::builder().key(k).value(v).build());
    }
    run.aws
        .call(
            Service::Ecs,
            CallClass::Write,
            "TagResource",
            resource,
            req.send(),
        )
        .await?;
    Ok(())
}

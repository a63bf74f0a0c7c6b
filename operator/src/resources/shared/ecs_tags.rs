//! ECS resource tags: reading them as a map, checking ownership, adding the ownership tags an
//! adopted or repaired resource lacks, and releasing a resource (`deletionPolicy: Retain`).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::Tag;

use super::tags::{ownership, Ownership};
use crate::aws::Service;
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;

/// ECS tags as a map (tags without a key or value are skipped).
pub fn to_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// A map as ECS tags (the request form).
pub fn of_map(tags: BTreeMap<String, String>) -> Vec<Tag> {
    tags.into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Whether ECS tags name this instance and this spec as owner.
pub fn is_ours(run: &SpecRun<'_>, tags: &[Tag]) -> bool {
    ownership(&run.aws.instance, &run.key, &to_map(tags)) == Ownership::Ours
}

/// TagResource (no planning: the caller planned the change). `resource` names it in errors.
pub async fn put(
    run: &SpecRun<'_>,
    resource: &str,
    arn: &str,
    tags: BTreeMap<String, String>,
) -> Result<(), ResourceError> {
    let req = run
        .aws
        .ecs
        .tag_resource()
        .resource_arn(arn)
        .set_tags(Some(of_map(tags)));
    run.aws
        .write(Service::Ecs, "TagResource", resource, req.send())
        .await?;
    Ok(())
}

/// `deletionPolicy: Retain`: replace the ownership tags of `arn` by the released tag
/// (TagResource, then UntagResource, as [`super::release`] says why).
pub async fn release(run: &mut SpecRun<'_>, arn: &str, what: &str) -> Result<(), ResourceError> {
    let resource = format!("{what} {arn}");
    let Some(released) = super::release::planned(run, &resource, super::release::RELEASED) else {
        return Ok(());
    };
    put(run, arn, arn, released).await?;
    let keys = super::release::OWNERSHIP_KEYS.map(String::from).to_vec();
    let req = run.aws.ecs.untag_resource().resource_arn(arn);
    let req = req.set_tag_keys(Some(keys)).send();
    run.aws
        .write(Service::Ecs, "UntagResource", arn, req)
        .await?;
    Ok(())
}

/// The tags of an ECS resource; `None` when ECS does not know it (deleted already).
pub async fn lookup(run: &SpecRun<'_>, arn: &str) -> Result<Option<Vec<Tag>>, ResourceError> {
    match run
        .aws
        .read(
            Service::Ecs,
            "ListTagsForResource",
            arn,
            run.aws
                .ecs
                .list_tags_for_resource()
                .resource_arn(arn)
                .send(),
        )
        .await
    {
        Ok(o) => Ok(Some(o.tags().to_vec())),
        Err(e)
            if e.code()
                .is_some_and(|c| c.contains("NotFound") || c == "InvalidParameterException") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The start of an ECS teardown: `None` when `arn` is gone, is not ours, or (with `retain`)
/// has just been released, so nothing more is to be done; otherwise its name (the last part of
/// the ARN), to delete. `what` names it in the plan (`ecs cluster`).
pub async fn to_delete(
    run: &mut SpecRun<'_>,
    arn: &str,
    what: &str,
    retain: bool,
) -> Result<Option<String>, ResourceError> {
    let Some(tags) = lookup(run, arn).await? else {
        return Ok(None);
    };
    if !is_ours(run, &tags) {
        return Ok(None);
    }
    if retain {
        release(run, arn, what).await?;
        return Ok(None);
    }
    Ok(Some(arn.rsplit('/').next().unwrap_or(arn).to_string()))
}

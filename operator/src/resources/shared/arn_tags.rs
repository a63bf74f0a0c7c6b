//! The tag calls of the services whose ListTagsForResource, TagResource and UntagResource name
//! a resource by its ARN (ECR, CloudWatch, CloudWatch Logs, SNS): reading the ownership tags,
//! adding an adopted resource's missing ones, and a release (the released tag written, then
//! the ownership keys removed). One place for the four services, so a kind of one of them says
//! only which service and which resource.
//!
//! Invariant: each function makes exactly the one call it names, through the run's writes (so
//! a resync wave's snapshot hears of it); a release writes nothing while the run only plans.

use std::collections::BTreeMap;

use super::release;
use super::tags::{map_of, request_tags};
use crate::aws::Service;
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;

/// The services whose tagging this module writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Ecr,
    CloudWatch,
    Logs,
    Sns,
}

impl Api {
    fn service(self) -> Service {
        match self {
            Api::Ecr => Service::Ecr,
            Api::CloudWatch => Service::CloudWatch,
            Api::Logs => Service::Logs,
            Api::Sns => Service::Sns,
        }
    }
}

/// One resource whose tags are written: its service, its ARN, and how the call record names
/// it (`label`: a repository's or log group's name, an alarm's name, a topic's ARN).
#[derive(Debug, Clone, Copy)]
pub struct Tagged<'a> {
    pub api: Api,
    pub label: &'a str,
    pub arn: &'a str,
}

impl<'a> Tagged<'a> {
    pub fn new(api: Api, label: &'a str, arn: &'a str) -> Self {
        Tagged { api, label, arn }
    }
}

/// `tags` as ECR's request tags (CreateRepository, TagResource).
pub fn ecr(tags: &BTreeMap<String, String>) -> Result<Vec<aws_sdk_ecr::types::Tag>, ResourceError> {
    request_tags(tags, |k, v| {
        aws_sdk_ecr::types::Tag::builder().key(k).value(v).build()
    })
}

/// `tags` as SNS's request tags (CreateTopic, TagResource).
pub fn sns(tags: &BTreeMap<String, String>) -> Result<Vec<aws_sdk_sns::types::Tag>, ResourceError> {
    request_tags(tags, |k, v| {
        aws_sdk_sns::types::Tag::builder().key(k).value(v).build()
    })
}

/// `tags` as CloudWatch's request tags (PutMetricAlarm, TagResource).
pub fn cloudwatch(tags: &BTreeMap<String, String>) -> Vec<aws_sdk_cloudwatch::types::Tag> {
    use aws_sdk_cloudwatch::types::Tag;
    let tag = |(k, v): (&String, &String)| Tag::builder().key(k).value(v).build();
    tags.iter().map(tag).collect()
}

/// The tags of the resource `r` (ListTagsForResource).
pub async fn list(
    run: &SpecRun<'_>,
    r: Tagged<'_>,
) -> Result<BTreeMap<String, String>, ResourceError> {
    const OP: &str = "ListTagsForResource";
    let (aws, s, arn) = (&run.aws, r.api.service(), r.arn);
    Ok(match r.api {
        Api::Ecr => {
            let req = aws.ecr.list_tags_for_resource().resource_arn(arn).send();
            let out = aws.read(s, OP, r.label, req).await?;
            map_of(out.tags().iter().map(|t| (t.key(), t.value())))
        }
        Api::CloudWatch => {
            let req = aws.cloudwatch.list_tags_for_resource().resource_arn(arn);
            let out = aws.read(s, OP, r.label, req.send()).await?;
            map_of(out.tags().iter().map(|t| (t.key(), t.value())))
        }
        Api::Logs => {
            let req = aws.logs.list_tags_for_resource().resource_arn(arn).send();
            let out = aws.read(s, OP, r.label, req).await?;
            let tags = out.tags().into_iter().flatten();
            tags.map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        Api::Sns => {
            let req = aws.sns.list_tags_for_resource().resource_arn(arn).send();
            let out = aws.read(s, OP, r.label, req).await?;
            map_of(out.tags().iter().map(|t| (t.key(), t.value())))
        }
    })
}

/// Add `tags` to the resource `r` (TagResource).
pub async fn tag(
    run: &SpecRun<'_>,
    r: Tagged<'_>,
    tags: &BTreeMap<String, String>,
) -> Result<(), ResourceError> {
    const OP: &str = "TagResource";
    let (aws, s, arn) = (&run.aws, r.api.service(), r.arn);
    match r.api {
        Api::Ecr => {
            let req = aws
                .ecr
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(ecr(tags)?));
            aws.write(s, OP, r.label, req.send()).await?;
        }
        Api::CloudWatch => {
            let req = aws.cloudwatch.tag_resource().resource_arn(arn);
            let req = req.set_tags(Some(cloudwatch(tags)));
            aws.write(s, OP, r.label, req.send()).await?;
        }
        Api::Logs => {
            let tags = tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let req = aws
                .logs
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags));
            aws.write(s, OP, r.label, req.send()).await?;
        }
        Api::Sns => {
            let req = aws
                .sns
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(sns(tags)?));
            aws.write(s, OP, r.label, req.send()).await?;
        }
    }
    Ok(())
}

/// Remove the tag `keys` from the resource `r` (UntagResource).
pub async fn untag(run: &SpecRun<'_>, r: Tagged<'_>, keys: &[&str]) -> Result<(), ResourceError> {
    const OP: &str = "UntagResource";
    let (aws, s, arn) = (&run.aws, r.api.service(), r.arn);
    let keys = Some(keys.iter().map(|k| k.to_string()).collect());
    match r.api {
        Api::Ecr => {
            let req = aws
                .ecr
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(keys);
            aws.write(s, OP, r.label, req.send()).await?;
        }
        Api::CloudWatch => {
            let req = aws.cloudwatch.untag_resource().resource_arn(arn);
            aws.write(s, OP, r.label, req.set_tag_keys(keys).send())
                .await?;
        }
        Api::Logs => {
            let req = aws
                .logs
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(keys);
            aws.write(s, OP, r.label, req.send()).await?;
        }
        Api::Sns => {
            let req = aws
                .sns
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(keys);
            aws.write(s, OP, r.label, req.send()).await?;
        }
    }
    Ok(())
}

/// Release the resource `r`, recorded in the plan as `resource` (`why`: [`release::RELEASED`]
/// or the kind's reason): the released tag written first, then [`release::OWNERSHIP_KEYS`]
/// and `also` (a kind's own marks) removed. Nothing is written while the run only plans.
pub async fn release(
    run: &mut SpecRun<'_>,
    r: Tagged<'_>,
    resource: &str,
    why: &str,
    also: &[&str],
) -> Result<(), ResourceError> {
    if let Some(released) = release::planned(run, resource, why) {
        tag(run, r, &released).await?;
        let keys: Vec<&str> = release::OWNERSHIP_KEYS
            .iter()
            .chain(also)
            .copied()
            .collect();
        untag(run, r, &keys).await?;
    }
    Ok(())
}

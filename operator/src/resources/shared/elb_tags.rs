//! ELBv2 tags: batched reads (DescribeTags takes at most 20 ARNs per call) and writes.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::Tag;

use crate::aws::Service;
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;

/// DescribeTags' limit of ARNs per call.
pub const DESCRIBE_TAGS_BATCH: usize = 20;

pub type Tags = BTreeMap<String, String>;

/// The tags of every ARN, 20 per call. ARNs that AWS does not know are absent from the map.
pub async fn describe(
    run: &SpecRun<'_>,
    arns: &[String],
) -> Result<BTreeMap<String, Tags>, ResourceError> {
    let mut out = BTreeMap::new();
    let mut unique: Vec<String> = arns.iter().filter(|a| !a.is_empty()).cloned().collect();
    unique.sort();
    unique.dedup();
    let answers = run
        .aws
        .read_batches(
            Service::Elbv2,
            "DescribeTags",
            &unique,
            DESCRIBE_TAGS_BATCH,
            |batch| {
                run.aws
                    .elbv2
                    .describe_tags()
                    .set_resource_arns(Some(batch))
                    .send()
            },
        )
        .await?;
    for resp in &answers {
        for d in resp.tag_descriptions() {
            let tags = d
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect();
            out.insert(d.resource_arn().unwrap_or_default().to_string(), tags);
        }
    }
    Ok(out)
}

/// A load balancer's or target group's attributes (DescribeLoadBalancerAttributes,
/// DescribeTargetGroupAttributes: key/value pairs like its tags) as a map; `pair` reads one
/// attribute's key and value, and one without either is left out.
pub fn attributes<A>(
    attrs: &[A],
    pair: impl Fn(&A) -> (Option<&str>, Option<&str>),
) -> BTreeMap<String, String> {
    let entry = |a: &A| match pair(a) {
        (Some(k), Some(v)) => Some((k.to_string(), v.to_string())),
        _ => None,
    };
    attrs.iter().filter_map(entry).collect()
}

/// Tags in the SDK's shape.
pub fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Add `tags` to one resource.
pub async fn add(run: &SpecRun<'_>, arn: &str, tags: &Tags) -> Result<(), ResourceError> {
    run.aws
        .write(
            Service::Elbv2,
            "AddTags",
            arn,
            run.aws
                .elbv2
                .add_tags()
                .resource_arns(arn)
                .set_tags(Some(sdk_tags(tags)))
                .send(),
        )
        .await?;
    Ok(())
}

/// `a, b, c` of tag keys, for change details.
pub fn keys(tags: &Tags) -> String {
    tags.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// The tags of one resource; `None` when AWS does not know it (deleted already). moto answers
/// an unknown ARN with no tags, which reads as "not ours": either way it is left alone.
pub async fn lookup(run: &SpecRun<'_>, arn: &str) -> Result<Option<Tags>, ResourceError> {
    match describe(run, &[arn.to_string()]).await {
        Ok(mut m) => Ok(m.remove(arn)),
        Err(e) if e.code().is_some_and(|c| c.ends_with("NotFound")) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `arn` exists and its tags name this spec as owner: what a teardown checks before it
/// touches anything.
pub async fn owned(run: &SpecRun<'_>, arn: &str) -> Result<bool, ResourceError> {
    Ok(lookup(run, arn)
        .await?
        .is_some_and(|tags| is_ours(run, &tags)))
}

/// Whether `tags` name this instance and this spec as owner.
pub fn is_ours(run: &SpecRun<'_>, tags: &Tags) -> bool {
    super::tags::ownership(&run.aws.instance, &run.key, tags) == super::tags::Ownership::Ours
}

/// `deletionPolicy: Retain`: replace the ownership tags of `arn` by the released tag
/// (AddTags, then RemoveTags, as [`super::release`] says why).
pub async fn release(run: &mut SpecRun<'_>, arn: &str, what: &str) -> Result<(), ResourceError> {
    let Some(released) = super::release::planned(run, what, super::release::RELEASED) else {
        return Ok(());
    };
    add(run, arn, &released).await?;
    let keys = super::release::OWNERSHIP_KEYS.map(String::from).to_vec();
    let req = run.aws.elbv2.remove_tags().resource_arns(arn);
    let req = req.set_tag_keys(Some(keys)).send();
    run.aws
        .write(Service::Elbv2, "RemoveTags", arn, req)
        .await?;
    Ok(())
}

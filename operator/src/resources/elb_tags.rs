//! ELBv2 tags: batched reads (DescribeTags takes at most 20 ARNs per call) and writes.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types::Tag;

use super::run::SpecRun;
use super::ResourceError;
use crate::aws::{CallClass, Service};

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
    for chunk in unique.chunks(DESCRIBE_TAGS_BATCH) {
        let resp = run
            .aws
            .call(
                Service::Elbv2,
                CallClass::Read,
                "DescribeTags",
                &chunk.join(","),
                run.aws
                    .elbv2
                    .describe_tags()
                    .set_resource_arns(Some(chunk.to_vec()))
                    .send(),
            )
            .await?;
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

/// Tags in the SDK's shape.
pub fn sdk_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Add `tags` to one resource.
pub async fn add(run: &SpecRun<'_>, arn: &str, tags: &Tags) -> Result<(), ResourceError> {
    run.aws
        .call(
            Service::Elbv2,
            CallClass::Write,
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

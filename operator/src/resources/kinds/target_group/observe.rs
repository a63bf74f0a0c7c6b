//! Reading the target group: DescribeTargetGroups (in a resync wave, the wave's one listing of
//! every target group and the tags of those the store's specs name), then its attributes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_elasticloadbalancingv2::types::TargetGroup as AwsTargetGroup;

use super::plan::{
    normalise_matcher, Health, Observed, ATTR_DEREGISTRATION_DELAY, DEFAULT_DEREGISTRATION_DELAY,
};
use super::TYPE;
use crate::aws::Service;
use crate::resources::error::Absent;
use crate::resources::kind::GcScan;
use crate::resources::kinds::load_balancer::PAGE_SIZE;
use crate::resources::run::SpecRun;
use crate::resources::shared::elb_tags::{self, Tags};
use crate::resources::shared::pages::{self, read_pages};
use crate::resources::shared::tags::owner_of;
use crate::resources::snapshot::{service_specs, Entry, Record};
use crate::resources::ResourceError;
use crate::spec::ValidSpecs;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_groups::DescribeTargetGroupsOutput;

/// The target group names of the ServiceSpecs with ingress, with the alternate group of those
/// whose deployments shift traffic (what the wave's DescribeTags covers).
pub fn target_group_names(specs: &ValidSpecs) -> BTreeSet<String> {
    use crate::resources::shared::names;
    let mut out = BTreeSet::new();
    for svc in service_specs(specs).filter(|svc| svc.spec.ingress.is_some()) {
        out.insert(names::target_group_name(&svc.metadata.name));
        if svc.spec.deployment.strategy.shifts_traffic() {
            out.insert(names::alternate_target_group_name(&svc.metadata.name));
        }
    }
    out
}

/// Every target group by name, and the tags of those the store's ServiceSpecs name (a resync
/// wave's read, shared by every ServiceSpec), kept true by this operator's own writes
/// ([`recorded`]).
///
/// Invariant: a target group's `LoadBalancerArns` are not kept (a rule created elsewhere
/// changes them, and nothing reads them): every group is listed without them.
#[derive(Clone)]
struct Listing {
    by_name: HashMap<String, AwsTargetGroup>,
    tags: BTreeMap<String, Tags>,
}

/// `tg` as the listing keeps it (without `LoadBalancerArns`).
fn listed(tg: &AwsTargetGroup) -> AwsTargetGroup {
    let mut tg = tg.clone();
    tg.load_balancer_arns = None;
    tg
}

/// What a CreateTargetGroup (with `tags`) or ModifyTargetGroup that AWS answered with `answer`
/// did to the wave's listing: the group as AWS returned it replaces (or adds) the group of its
/// name; a created group's tags are the ones it was created with. An answer without the group
/// cannot be described: the listing is dropped.
pub(super) fn recorded(answer: &[AwsTargetGroup], created_with: Option<&Tags>) -> Vec<Record> {
    let Some((tg, name, arn)) = answer.first().and_then(|tg| {
        Some((
            listed(tg),
            tg.target_group_name()?.to_string(),
            tg.target_group_arn()?.to_string(),
        ))
    }) else {
        return vec![Record::forget(Entry::TargetGroups)];
    };
    let tags = created_with.cloned();
    vec![Record::update(Entry::TargetGroups, move |l: &Listing| {
        let mut l = l.clone();
        l.by_name.insert(name, tg);
        if let Some(tags) = tags {
            l.tags.insert(arn, tags);
        }
        l
    })]
}

/// DescribeTargetGroups, [`PAGE_SIZE`] per page, then DescribeTags of the target groups named
/// `names`, 20 ARNs per call.
async fn list_all(run: &SpecRun<'_>, names: BTreeSet<String>) -> Result<Listing, ResourceError> {
    let elb = &run.aws.elbv2;
    let pages = read_pages(
        &run.aws,
        Service::Elbv2,
        "DescribeTargetGroups",
        |m| {
            elb.describe_target_groups()
                .page_size(PAGE_SIZE)
                .set_marker(m)
                .send()
        },
        DescribeTargetGroupsOutput::next_marker,
    )
    .await?;
    let by_name = pages::by_name(
        &pages,
        DescribeTargetGroupsOutput::target_groups,
        AwsTargetGroup::target_group_name,
        listed,
    );
    let arns: Vec<String> = names
        .iter()
        .filter_map(|n| by_name.get(n))
        .filter_map(|tg: &AwsTargetGroup| tg.target_group_arn().map(str::to_string))
        .collect();
    let mut tags = elb_tags::describe(run, &arns).await?;
    for arn in arns {
        tags.entry(arn).or_default();
    }
    Ok(Listing { by_name, tags })
}

/// The target group `name` as DescribeTargetGroups has it, with its tags; `None` when it does
/// not exist. In a resync wave, from the wave's listing.
async fn describe(
    run: &SpecRun<'_>,
    name: &str,
) -> Result<Option<(AwsTargetGroup, Tags)>, ResourceError> {
    let listing = run
        .cached(Entry::TargetGroups, |specs| {
            list_all(run, target_group_names(&specs))
        })
        .await;
    let (tg, tags) = match listing {
        Some(listing) => {
            let listing = listing?;
            let Some(tg) = listing.by_name.get(name) else {
                return Ok(None);
            };
            let arn = tg.target_group_arn().unwrap_or_default();
            (tg.clone(), listing.tags.get(arn).cloned())
        }
        None => {
            let resp = run
                .aws
                .read(
                    Service::Elbv2,
                    "DescribeTargetGroups",
                    name,
                    run.aws.elbv2.describe_target_groups().names(name).send(),
                )
                .await;
            let Some(resp) = resp.absent_if("TargetGroupNotFound")? else {
                return Ok(None);
            };
            let Some(tg) = resp.target_groups().first() else {
                return Ok(None);
            };
            (tg.clone(), None)
        }
    };
    let tags = match tags {
        Some(t) => t,
        // Not read with the listing (a spec newer than the wave), or not in a wave.
        None => {
            let arn = tg.target_group_arn().unwrap_or_default().to_string();
            elb_tags::describe(run, std::slice::from_ref(&arn))
                .await?
                .remove(&arn)
                .unwrap_or_default()
        }
    };
    Ok(Some((tg, tags)))
}

/// Read the target group by name (with tags and attributes); `None` when it does not exist.
/// Attributes are read per target group (AWS has no batch form).
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    let Some((tg, tags)) = describe(run, name).await? else {
        return Ok(None);
    };
    let tg = &tg;
    let arn = tg.target_group_arn().unwrap_or_default().to_string();
    let req = run.aws.elbv2.describe_target_group_attributes();
    let req = req.target_group_arn(&arn).send();
    let out = run
        .aws
        .read(Service::Elbv2, "DescribeTargetGroupAttributes", name, req);
    let out = out.await?;
    let attrs = elb_tags::attributes(out.attributes(), |a| (a.key(), a.value()));
    let n = |v: Option<i32>| v.unwrap_or_default().max(0) as u32;
    Ok(Some(Observed {
        port: tg.port().unwrap_or_default(),
        protocol: tg
            .protocol()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        vpc_id: tg.vpc_id().unwrap_or_default().to_string(),
        target_type: tg
            .target_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        health: Health {
            enabled: tg.health_check_enabled().unwrap_or(true),
            protocol: tg
                .health_check_protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_else(|| "HTTP".into()),
            port: tg.health_check_port().unwrap_or("traffic-port").to_string(),
            path: tg.health_check_path().unwrap_or_default().to_string(),
            interval: n(tg.health_check_interval_seconds()),
            timeout: n(tg.health_check_timeout_seconds()),
            healthy: n(tg.healthy_threshold_count()),
            unhealthy: n(tg.unhealthy_threshold_count()),
            matcher: normalise_matcher(
                tg.matcher().and_then(|m| m.http_code()).unwrap_or_default(),
            ),
        },
        deregistration_delay: attrs
            .get(ATTR_DEREGISTRATION_DELAY)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_DEREGISTRATION_DELAY),
        tags,
        arn,
    }))
}

/// Garbage collection: every target group of the account whose tags name an owner of this
/// instance (DescribeTargetGroups, all pages, then DescribeTags 20 ARNs per call).
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let mut tgs = Vec::new();
    let page = run
        .aws
        .read(
            Service::Elbv2,
            "DescribeTargetGroups",
            "*",
            run.aws
                .elbv2
                .describe_target_groups()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    tgs.extend(
        page.iter()
            .filter_map(|t| t.target_group_arn().map(str::to_string)),
    );
    for (arn, tags) in elb_tags::describe(run, &tgs).await? {
        if let Some(owner) = owner_of(&run.aws.instance, &tags) {
            scan.add(owner, TYPE, arn);
        }
    }
    Ok(())
}

//! EC2 Auto Scaling groups a ClusterSpec owns (the object form of
//! `capacityProviders[].autoScalingGroup`): created from an existing launch template across the
//! given subnets, and kept at the spec's size limits, launch template, subnets and scale-in
//! protection.
//!
//! Invariants:
//! - the desired capacity belongs to whoever scales the group (ECS managed scaling, a person):
//!   it is never set, so the operator never launches or terminates an instance itself, except
//!   when the spec is deleted under `deletionPolicy: Delete`: then min, max and desired go to 0
//!   and the group is deleted only once no instance remains (instances protected from scale-in
//!   stay, and so does the group, until someone removes their protection);
//! - tags the operator did not write (ECS adds `AmazonECSManaged`) are left alone; the ownership
//!   tags are never propagated to instances (the instances are not the operator's);
//! - a group without our tags is never changed unless adopted; one DescribeAutoScalingGroups by
//!   name per reconcile (tags come with it), writes only on a difference.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_autoscaling::operation::describe_auto_scaling_groups::DescribeAutoScalingGroupsOutput;
use aws_sdk_autoscaling::types::{AutoScalingGroup, Filter, LaunchTemplateSpecification, Tag};

use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::tag_step;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::pages::read_pages;
use crate::resources::shared::release;
use crate::resources::shared::tags::{owner_of, ownership, Ownership};
use crate::resources::ResourceError;
use crate::spec::types::OwnedAutoScalingGroup;

/// The id of this kind in status ledgers and garbage-collection scans (the ledger id is the
/// group's name).
pub const TYPE: &str = "autoscaling:auto-scaling-group";

/// How long a deletion waits for the group's instances to go before looking again.
const DRAIN_POLL: std::time::Duration = std::time::Duration::from_secs(30);

/// The group as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    /// (launch template name, version).
    pub template: (String, String),
    pub subnets: BTreeSet<String>,
    pub min: u32,
    pub max: u32,
    pub protect: bool,
}

/// The group as AWS has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    /// (launch template name, version); `None` when the group launches from something else (a
    /// launch configuration, a mixed-instances policy).
    pub template: Option<(String, String)>,
    pub subnets: BTreeSet<String>,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub protect: bool,
    /// Instances in the group, in any state.
    pub instances: u32,
    pub tags: BTreeMap<String, String>,
}

pub fn desired(g: &OwnedAutoScalingGroup) -> Desired {
    Desired {
        name: g.name.clone(),
        template: (
            g.launch_template.name.clone(),
            g.launch_template.version.clone(),
        ),
        subnets: g.subnets.iter().cloned().collect(),
        min: g.min_size,
        max: g.max_size,
        protect: g.protect_from_scale_in,
    }
}

/// The steps from `observed` to `desired` (pure). Every `Update` step is one field of the same
/// UpdateAutoScalingGroup call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Tag(BTreeMap<String, String>),
    Update,
}

fn template_text(t: Option<&(String, String)>) -> String {
    t.map_or_else(|| "none".to_string(), |(n, v)| format!("{n} {v}"))
}

fn subnets_text(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(",")
}

/// `owner_missing`: the ownership tags an adopted group still needs (from `SpecRun::claim`).
pub fn plan(
    d: &Desired,
    o: Option<&Observed>,
    owner_missing: BTreeMap<String, String>,
) -> Vec<(Step, Change)> {
    let resource = format!("auto scaling group {}", d.name);
    let Some(o) = o else {
        return vec![(
            Step::Create,
            Change::create(
                &resource,
                format!(
                    "launch template {}, subnets {}, size {}..{}{}",
                    template_text(Some(&d.template)),
                    subnets_text(&d.subnets),
                    d.min,
                    d.max,
                    if d.protect {
                        ", protected from scale-in"
                    } else {
                        ""
                    }
                ),
            ),
        )];
    };
    let mut steps = Vec::new();
    steps.extend(tag_step(&resource, &owner_missing, Step::Tag));
    let mut field = |name: &str, have: String, want: String| {
        if have != want {
            steps.push((Step::Update, Change::field(&resource, name, have, want)));
        }
    };
    field(
        "launchTemplate",
        template_text(o.template.as_ref()),
        template_text(Some(&d.template)),
    );
    field(
        "subnets",
        subnets_text(&o.subnets),
        subnets_text(&d.subnets),
    );
    field("minSize", o.min.to_string(), d.min.to_string());
    field("maxSize", o.max.to_string(), d.max.to_string());
    field(
        "protectFromScaleIn",
        o.protect.to_string(),
        d.protect.to_string(),
    );
    steps
}

fn observed(g: &AutoScalingGroup) -> Observed {
    let template = g.launch_template().and_then(|t| {
        Some((
            t.launch_template_name()?.to_string(),
            t.version()?.to_string(),
        ))
    });
    Observed {
        arn: g.auto_scaling_group_arn().unwrap_or_default().to_string(),
        template,
        subnets: g
            .vpc_zone_identifier()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        min: g.min_size().unwrap_or_default().max(0) as u32,
        max: g.max_size().unwrap_or_default().max(0) as u32,
        desired: g.desired_capacity().unwrap_or_default().max(0) as u32,
        protect: g.new_instances_protected_from_scale_in().unwrap_or(false),
        instances: g.instances().len() as u32,
        tags: g
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    }
}

/// Read the group `name` (with its tags and instances); `None` when it does not exist.
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    let out = run
        .aws
        .read(
            Service::AutoScaling,
            "DescribeAutoScalingGroups",
            name,
            run.aws
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(name)
                .send(),
        )
        .await?;
    Ok(out
        .auto_scaling_groups()
        .iter()
        .find(|g| g.auto_scaling_group_name() == Some(name))
        .map(observed))
}

fn template_spec(d: &Desired) -> LaunchTemplateSpecification {
    LaunchTemplateSpecification::builder()
        .launch_template_name(&d.template.0)
        .version(&d.template.1)
        .build()
}

fn tag(group: &str, key: &str, value: &str) -> Tag {
    Tag::builder()
        .resource_id(group)
        .resource_type("auto-scaling-group")
        .key(key)
        .value(value)
        .propagate_at_launch(false)
        .build()
}

/// CreateOrUpdateTags of `tags` on the group `name`.
async fn put_tags(
    run: &SpecRun<'_>,
    name: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), ResourceError> {
    let mut req = run.aws.autoscaling.create_or_update_tags();
    for (k, v) in tags {
        req = req.tags(tag(name, k, v));
    }
    let req = req.send();
    run.aws
        .write(Service::AutoScaling, "CreateOrUpdateTags", name, req)
        .await?;
    Ok(())
}

/// `req` (a Create- or UpdateAutoScalingGroup request: two builder types with the same
/// setters) with the shape `d` wants.
macro_rules! with_shape {
    ($req:expr, $d:expr) => {
        $req.launch_template(template_spec($d))
            .min_size($d.min as i32)
            .max_size($d.max as i32)
            .vpc_zone_identifier(subnets_text(&$d.subnets))
            .new_instances_protected_from_scale_in($d.protect)
    };
}

/// CreateAutoScalingGroup with the wanted shape and the ownership tags; it answers nothing, so
/// the ARN (with its generated id) is read back.
async fn create(run: &SpecRun<'_>, d: &Desired) -> Result<String, ResourceError> {
    let asg = &run.aws.autoscaling;
    let req = asg.create_auto_scaling_group();
    let mut req = with_shape!(req.auto_scaling_group_name(&d.name), d);
    for (k, v) in run.tags() {
        req = req.tags(tag(&d.name, &k, &v));
    }
    run.aws
        .write(
            Service::AutoScaling,
            "CreateAutoScalingGroup",
            &d.name,
            req.send(),
        )
        .await?;
    observe(run, &d.name).await?.map(|o| o.arn).ok_or_else(|| {
        ResourceError::Unsatisfiable(format!(
            "auto scaling group {} was created but DescribeAutoScalingGroups does not list it",
            d.name
        ))
    })
}

/// The whole wanted shape in one UpdateAutoScalingGroup; the desired capacity is left out (AWS
/// moves it into the new min..max itself).
async fn update(run: &SpecRun<'_>, d: &Desired) -> Result<(), ResourceError> {
    let asg = &run.aws.autoscaling;
    let req = asg.update_auto_scaling_group();
    let req = with_shape!(req.auto_scaling_group_name(&d.name), d);
    run.aws
        .write(
            Service::AutoScaling,
            "UpdateAutoScalingGroup",
            &d.name,
            req.send(),
        )
        .await?;
    Ok(())
}

/// What a deletion under `Delete` does next with the group as observed (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drain {
    /// Set min, max and desired to 0 (the group's own scale-in terminates what is unprotected).
    Shrink,
    /// Wait: instances remain though the group is at 0 (terminating, or protected).
    Wait(u32),
    /// No instance is left: delete the group.
    Delete,
}

pub fn drain(o: &Observed) -> Drain {
    if o.instances == 0 {
        Drain::Delete
    } else if o.min != 0 || o.max != 0 || o.desired != 0 {
        Drain::Shrink
    } else {
        Drain::Wait(o.instances)
    }
}

fn waiting_reason(name: &str, instances: u32) -> String {
    format!(
        "auto scaling group {name}: {instances} instance(s) remain; the group is deleted once none is left (the operator never terminates instances: one protected from scale-in stays until its protection is removed)"
    )
}

/// Teardown of the group (`autoscaling:auto-scaling-group`, its name): released with `retain`;
/// otherwise drained to 0 and deleted once empty ([`drain`]). A group without our tags is left
/// alone.
pub async fn delete(
    run: &mut SpecRun<'_>,
    name: &str,
    retain: bool,
) -> Result<Gone, ResourceError> {
    let Some(o) = observe(run, name).await? else {
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &o.tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    let resource = format!("auto scaling group {name}");
    let asg = run.aws.autoscaling.clone();
    if retain {
        if let Some(released) = release::planned(run, &resource, release::RELEASED) {
            put_tags(run, name, &released).await?;
            let mut req = asg.delete_tags();
            for k in release::OWNERSHIP_KEYS {
                req = req.tags(
                    Tag::builder()
                        .resource_id(name)
                        .resource_type("auto-scaling-group")
                        .key(k)
                        .build(),
                );
            }
            run.aws
                .write(Service::AutoScaling, "DeleteTags", name, req.send())
                .await?;
        }
        return Ok(Gone::Yes);
    }
    match drain(&o) {
        Drain::Shrink => {
            if run.plan(Change::update(
                &resource,
                format!(
                    "min, max and desired 0 (from {}..{}, desired {}) before deletion",
                    o.min, o.max, o.desired
                ),
            )) {
                run.aws
                    .write(
                        Service::AutoScaling,
                        "UpdateAutoScalingGroup",
                        name,
                        asg.update_auto_scaling_group()
                            .auto_scaling_group_name(name)
                            .min_size(0)
                            .max_size(0)
                            .desired_capacity(0)
                            .send(),
                    )
                    .await?;
            }
            Ok(Gone::not_yet(waiting_reason(name, o.instances), DRAIN_POLL))
        }
        Drain::Wait(n) => Ok(Gone::not_yet(waiting_reason(name, n), DRAIN_POLL)),
        Drain::Delete => {
            if run.plan(Change::delete(&resource, "")) {
                let out = run
                    .aws
                    .write(
                        Service::AutoScaling,
                        "DeleteAutoScalingGroup",
                        name,
                        asg.delete_auto_scaling_group()
                            .auto_scaling_group_name(name)
                            .send(),
                    )
                    .await;
                match out {
                    Ok(_) => {}
                    // An activity still running (the last scale-in): look again later.
                    Err(e)
                        if matches!(
                            e.code(),
                            Some("ScalingActivityInProgress" | "ResourceInUse")
                        ) =>
                    {
                        return Ok(Gone::not_yet(format!("{resource}: {e}"), DRAIN_POLL));
                    }
                    Err(e) => return Err(e),
                }
            }
            Ok(Gone::Yes)
        }
    }
}

/// Garbage collection: the groups tagged as managed by this instance (DescribeAutoScalingGroups
/// filtered by that tag, 100 per page); each is added to `scan` under its owner.
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let filter = Filter::builder()
        .name(format!("tag:{}", crate::MANAGED_BY_TAG))
        .values(run.aws.instance.clone())
        .build();
    let pages = read_pages(
        &run.aws,
        Service::AutoScaling,
        "DescribeAutoScalingGroups",
        |token| {
            run.aws
                .autoscaling
                .describe_auto_scaling_groups()
                .filters(filter.clone())
                .max_records(100)
                .set_next_token(token)
                .send()
        },
        DescribeAutoScalingGroupsOutput::next_token,
    )
    .await?;
    for g in pages.iter().flat_map(|p| p.auto_scaling_groups()) {
        let o = observed(g);
        if let (Some(owner), Some(name)) = (
            owner_of(&run.aws.instance, &o.tags),
            g.auto_scaling_group_name(),
        ) {
            scan.add(owner, TYPE, name);
        }
    }
    Ok(())
}

/// The generic driver's view of an owned Auto Scaling group: its output is the group's ARN
/// (`None` only while planning its create). Every field difference is its own change in the
/// plan, all of them the one `Update` step: one UpdateAutoScalingGroup sets the whole shape.
impl Managed for AutoScalingGroupKind {
    crate::resources::kind::by_name!("auto scaling group");
    type Output = Option<String>;

    fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
        Plan::steps(plan(d, o, missing))
    }

    fn output(_: &Desired, o: Option<&Observed>) -> Option<String> {
        o.map(|o| o.arn.clone())
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out: arn, .. } = at;
        match step {
            Step::Create => *arn = Some(create(run, d).await?),
            Step::Tag(tags) => put_tags(run, &d.name, &tags).await?,
            Step::Update => update(run, d).await?,
        }
        Ok(())
    }

    fn id(d: &Desired, arn: &Option<String>) -> Option<String> {
        arn.is_some().then(|| d.name.clone())
    }
}

crate::resources::kind::kind!(
    /// An Auto Scaling group a ClusterSpec owns, as the generic driver sees it.
    AutoScalingGroupKind, TYPE, 18, delete, "Auto Scaling groups", list_owned
);

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Desired {
        Desired {
            name: "prod-ecs".into(),
            template: ("ecs-hosts".into(), "$Latest".into()),
            subnets: ["subnet-a".to_string(), "subnet-b".to_string()].into(),
            min: 2,
            max: 4,
            protect: true,
        }
    }

    fn matching() -> Observed {
        Observed {
            arn: "arn:aws:autoscaling:eu-west-1:1:autoScalingGroup:u:autoScalingGroupName/prod-ecs"
                .into(),
            template: Some(("ecs-hosts".into(), "$Latest".into())),
            subnets: ["subnet-b".to_string(), "subnet-a".to_string()].into(),
            min: 2,
            max: 4,
            desired: 3,
            protect: true,
            instances: 3,
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn a_matching_group_needs_nothing_whatever_its_desired_capacity() {
        let mut o = matching();
        o.desired = 4;
        assert!(plan(&d(), Some(&o), BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_missing_group_is_one_create() {
        let steps = plan(&d(), None, BTreeMap::new());
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].0, Step::Create);
        assert_eq!(
            steps[0].1.to_string(),
            "+ auto scaling group prod-ecs (launch template ecs-hosts $Latest, subnets subnet-a,subnet-b, size 2..4, protected from scale-in)"
        );
    }

    #[test]
    fn each_drifted_field_is_named_and_all_go_in_one_update() {
        let mut o = matching();
        o.max = 10;
        o.protect = false;
        o.template = None;
        let steps = plan(&d(), Some(&o), BTreeMap::new());
        let texts: Vec<String> = steps.iter().map(|s| s.1.to_string()).collect();
        assert_eq!(
            texts,
            [
                "~ auto scaling group prod-ecs launchTemplate: none -> ecs-hosts $Latest",
                "~ auto scaling group prod-ecs maxSize: 10 -> 4",
                "~ auto scaling group prod-ecs protectFromScaleIn: false -> true",
            ]
        );
        assert!(steps.iter().all(|s| s.0 == Step::Update));
    }

    #[test]
    fn an_adopted_group_gets_the_ownership_tags_first() {
        let tags = BTreeMap::from([("ecs-operator.io/owner".to_string(), "x".to_string())]);
        let steps = plan(&d(), Some(&matching()), tags.clone());
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].0, Step::Tag(tags));
    }

    #[test]
    fn a_deletion_shrinks_the_group_then_waits_for_its_instances_then_deletes_it() {
        let mut o = matching();
        assert_eq!(drain(&o), Drain::Shrink);
        (o.min, o.max, o.desired) = (0, 0, 0);
        assert_eq!(drain(&o), Drain::Wait(3));
        o.instances = 0;
        assert_eq!(drain(&o), Drain::Delete);
        // Empty already: deleted at once, whatever its limits.
        let mut empty = matching();
        empty.instances = 0;
        assert_eq!(drain(&empty), Drain::Delete);
    }
}

//! The target group of a ServiceSpec with ingress: target type `ip` (awsvpc tasks), HTTP on the
//! container port, in the load balancer's VPC, the health check exactly as specified, and the
//! `deregistration_delay.timeout_seconds` attribute.
//!
//! Invariants: the name is derived from the spec name (at most 32 characters); port, protocol,
//! VPC and target type cannot change in place and are reported, never recreated; the health
//! check is compared field by field with AWS's spelling normalised (matcher codes without
//! spaces); every difference is one ModifyTargetGroup call.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, TargetGroup as AwsTargetGroup, TargetGroupAttribute, TargetTypeEnum,
};

use super::load_balancer::PAGE_SIZE;
use super::run::{Change, SpecRun};
use super::shared::elb_tags::{self, Tags};
use super::snapshot::{service_specs, Entry};
use super::ResourceError;
use crate::aws::{CallClass, Service};
use crate::reconcile::ConditionReport;
use crate::spec::types::{Ingress, TargetHealthCheck};
use crate::spec::ValidSpecs;

pub const ATTR_DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// AWS's deregistration delay when the attribute was never set.
pub const DEFAULT_DEREGISTRATION_DELAY: u32 = 300;

/// The health check as compared (AWS spelling normalised).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub enabled: bool,
    pub protocol: String,
    pub port: String,
    pub path: String,
    pub interval: u32,
    pub timeout: u32,
    pub healthy: u32,
    pub unhealthy: u32,
    pub matcher: String,
}

impl Health {
    pub fn from_spec(h: &TargetHealthCheck) -> Self {
        Health {
            enabled: true,
            protocol: "HTTP".into(),
            port: "traffic-port".into(),
            path: h.path.clone(),
            interval: h.interval_seconds,
            timeout: h.timeout_seconds,
            healthy: h.healthy_threshold,
            unhealthy: h.unhealthy_threshold,
            matcher: normalise_matcher(&h.matcher),
        }
    }
}

/// `200, 204` and `200,204` are the same matcher.
pub fn normalise_matcher(m: &str) -> String {
    m.chars().filter(|c| !c.is_whitespace()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub port: i32,
    /// The load balancer's VPC (empty when only planning a new load balancer).
    pub vpc_id: String,
    pub health: Health,
    pub deregistration_delay: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    pub port: i32,
    pub protocol: String,
    pub vpc_id: String,
    pub target_type: String,
    pub health: Health,
    pub deregistration_delay: u32,
    pub tags: Tags,
}

pub fn desired(service: &str, ingress: &Ingress, port: u32, vpc_id: &str) -> Desired {
    Desired {
        name: super::shared::names::target_group_name(service),
        port: port as i32,
        vpc_id: vpc_id.to_string(),
        health: Health::from_spec(&ingress.health_check),
        deregistration_delay: ingress.deregistration_delay_seconds,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Tag(Tags),
    /// ModifyTargetGroup with the whole desired health check.
    Health,
    Deregistration,
}

fn health_diff(o: &Health, d: &Health) -> Vec<String> {
    let mut out = Vec::new();
    let mut f = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("health check {name}: {a} -> {b}"));
        }
    };
    f("enabled", o.enabled.to_string(), d.enabled.to_string());
    f("protocol", o.protocol.clone(), d.protocol.clone());
    f("port", o.port.clone(), d.port.clone());
    f("path", o.path.clone(), d.path.clone());
    f(
        "interval",
        format!("{}s", o.interval),
        format!("{}s", d.interval),
    );
    f(
        "timeout",
        format!("{}s", o.timeout),
        format!("{}s", d.timeout),
    );
    f(
        "healthy threshold",
        o.healthy.to_string(),
        d.healthy.to_string(),
    );
    f(
        "unhealthy threshold",
        o.unhealthy.to_string(),
        d.unhealthy.to_string(),
    );
    f("matcher", o.matcher.clone(), d.matcher.clone());
    out
}

/// The steps from `o` to `d` (pure), and the fields that cannot change in place.
pub fn plan(
    d: &Desired,
    o: Option<&Observed>,
    tags_missing: Tags,
) -> (Vec<(Step, Change)>, Vec<ResourceError>) {
    let resource = format!("target group {}", d.name);
    let Some(o) = o else {
        let mut steps = vec![(
            Step::Create,
            Change::create(
                &resource,
                format!("ip, HTTP :{}, health check {}", d.port, d.health.path),
            ),
        )];
        if d.deregistration_delay != DEFAULT_DEREGISTRATION_DELAY {
            steps.push((
                Step::Deregistration,
                Change::field(
                    &resource,
                    "deregistration delay",
                    format!("{DEFAULT_DEREGISTRATION_DELAY}s"),
                    format!("{}s", d.deregistration_delay),
                ),
            ));
        }
        return (steps, Vec::new());
    };
    let mut immutable = Vec::new();
    let mut fixed = |field: &str, observed: String, desired: String| {
        if observed != desired && !desired.is_empty() {
            immutable.push(ResourceError::Immutable {
                resource: resource.clone(),
                field: field.into(),
                observed,
                desired,
            });
        }
    };
    fixed("port", o.port.to_string(), d.port.to_string());
    fixed("protocol", o.protocol.clone(), "HTTP".into());
    fixed("vpc", o.vpc_id.clone(), d.vpc_id.clone());
    fixed("target type", o.target_type.clone(), "ip".into());
    let mut steps = Vec::new();
    if !tags_missing.is_empty() {
        steps.push((
            Step::Tag(tags_missing.clone()),
            Change::update(
                &resource,
                format!("tags: + {}", elb_tags::keys(&tags_missing)),
            ),
        ));
    }
    let diff = health_diff(&o.health, &d.health);
    if !diff.is_empty() {
        steps.push((Step::Health, Change::update(&resource, diff.join(", "))));
    }
    if o.deregistration_delay != d.deregistration_delay {
        steps.push((
            Step::Deregistration,
            Change::field(
                &resource,
                "deregistration delay",
                format!("{}s", o.deregistration_delay),
                format!("{}s", d.deregistration_delay),
            ),
        ));
    }
    (steps, immutable)
}

/// The target group names of the ServiceSpecs with ingress (what the wave's DescribeTags
/// covers).
pub fn target_group_names(specs: &ValidSpecs) -> BTreeSet<String> {
    service_specs(specs)
        .filter(|svc| svc.spec.ingress.is_some())
        .map(|svc| super::shared::names::target_group_name(&svc.metadata.name))
        .collect()
}

/// Every target group by name, and the tags of those the store's ServiceSpecs name (a resync
/// wave's read, shared by every ServiceSpec).
struct Listing {
    by_name: HashMap<String, AwsTargetGroup>,
    tags: BTreeMap<String, Tags>,
}

/// DescribeTargetGroups, [`PAGE_SIZE`] per page, then DescribeTags of the target groups named
/// `names`, 20 ARNs per call.
async fn list_all(run: &SpecRun<'_>, names: BTreeSet<String>) -> Result<Listing, ResourceError> {
    let mut by_name = HashMap::new();
    let mut marker: Option<String> = None;
    loop {
        let page = run
            .aws
            .call(
                Service::Elbv2,
                CallClass::Read,
                "DescribeTargetGroups",
                "*",
                run.aws
                    .elbv2
                    .describe_target_groups()
                    .page_size(PAGE_SIZE)
                    .set_marker(marker.take())
                    .send(),
            )
            .await?;
        for tg in page.target_groups() {
            if let Some(name) = tg.target_group_name() {
                by_name.insert(name.to_string(), tg.clone());
            }
        }
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
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
                .call(
                    Service::Elbv2,
                    CallClass::Read,
                    "DescribeTargetGroups",
                    name,
                    run.aws.elbv2.describe_target_groups().names(name).send(),
                )
                .await;
            let resp = match resp {
                Err(e) if e.code() == Some("TargetGroupNotFound") => return Ok(None),
                other => other?,
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
    let attrs: BTreeMap<String, String> = run
        .aws
        .call(
            Service::Elbv2,
            CallClass::Read,
            "DescribeTargetGroupAttributes",
            name,
            run.aws
                .elbv2
                .describe_target_group_attributes()
                .target_group_arn(&arn)
                .send(),
        )
        .await?
        .attributes()
        .iter()
        .filter_map(|a| Some((a.key()?.to_string(), a.value()?.to_string())))
        .collect();
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

/// Reconcile the target group. Returns its ARN (empty when only planning a create).
pub async fn reconcile(run: &mut SpecRun<'_>, d: &Desired) -> Result<String, ResourceError> {
    let resource = format!("target group {}", d.name);
    let observed = observe(run, &d.name).await?;
    let missing = match &observed {
        Some(o) => run.claim(&resource, &o.tags)?,
        None => Tags::new(),
    };
    let mut arn = observed.as_ref().map(|o| o.arn.clone()).unwrap_or_default();
    let (steps, immutable) = plan(d, observed.as_ref(), missing);
    for e in immutable {
        run.condition(ConditionReport::new(
            "TargetGroupImmutable",
            false,
            "ImmutableField",
            e.to_string(),
        ));
        run.degrade(e.to_string());
    }
    let h = &d.health;
    for (step, change) in steps {
        if !run.plan(change) {
            continue;
        }
        let elb = &run.aws.elbv2;
        match step {
            Step::Create => {
                let out = run
                    .aws
                    .call(
                        Service::Elbv2,
                        CallClass::Write,
                        "CreateTargetGroup",
                        &d.name,
                        elb.create_target_group()
                            .name(&d.name)
                            .protocol(ProtocolEnum::Http)
                            .port(d.port)
                            .vpc_id(&d.vpc_id)
                            .target_type(TargetTypeEnum::Ip)
                            .health_check_enabled(true)
                            .health_check_protocol(ProtocolEnum::Http)
                            .health_check_port(&h.port)
                            .health_check_path(&h.path)
                            .health_check_interval_seconds(h.interval as i32)
                            .health_check_timeout_seconds(h.timeout as i32)
                            .healthy_threshold_count(h.healthy as i32)
                            .unhealthy_threshold_count(h.unhealthy as i32)
                            .matcher(Matcher::builder().http_code(&h.matcher).build())
                            .set_tags(Some(elb_tags::sdk_tags(&run.tags())))
                            .send(),
                    )
                    .await?;
                arn = out
                    .target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                    .unwrap_or_default()
                    .to_string();
            }
            Step::Tag(tags) => elb_tags::add(run, &arn, &tags).await?,
            Step::Health => {
                run.aws
                    .call(
                        Service::Elbv2,
                        CallClass::Write,
                        "ModifyTargetGroup",
                        &d.name,
                        elb.modify_target_group()
                            .target_group_arn(&arn)
                            .health_check_enabled(true)
                            .health_check_protocol(ProtocolEnum::Http)
                            .health_check_port(&h.port)
                            .health_check_path(&h.path)
                            .health_check_interval_seconds(h.interval as i32)
                            .health_check_timeout_seconds(h.timeout as i32)
                            .healthy_threshold_count(h.healthy as i32)
                            .unhealthy_threshold_count(h.unhealthy as i32)
                            .matcher(Matcher::builder().http_code(&h.matcher).build())
                            .send(),
                    )
                    .await?;
            }
            Step::Deregistration => {
                run.aws
                    .call(
                        Service::Elbv2,
                        CallClass::Write,
                        "ModifyTargetGroupAttributes",
                        &d.name,
                        elb.modify_target_group_attributes()
                            .target_group_arn(&arn)
                            .attributes(
                                TargetGroupAttribute::builder()
                                    .key(ATTR_DEREGISTRATION_DELAY)
                                    .value(d.deregistration_delay.to_string())
                                    .build(),
                            )
                            .send(),
                    )
                    .await?;
            }
        }
    }
    if !arn.is_empty() {
        run.resource("elbv2:targetgroup", arn.clone());
    }
    Ok(arn)
}

/// Teardown of the target group (`elbv2:targetgroup`, its ARN), after the ECS service and the
/// listener rule that used it: deleted, or released with `retain`. One still in use (AWS
/// answers `ResourceInUse` while a rule or a draining service holds it) makes the deletion wait
/// and returns `false`. A target group without our tags is left alone.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<bool, ResourceError> {
    // Gone already, or not ours: left alone.
    if !elb_tags::owned(run, arn).await? {
        return Ok(true);
    }
    let name = arn
        .split_once(":targetgroup/")
        .map(|(_, r)| r.split('/').next().unwrap_or(r))
        .unwrap_or(arn)
        .to_string();
    let resource = format!("target group {name}");
    if retain {
        elb_tags::release(run, arn, &resource).await?;
        return Ok(true);
    }
    if !run.plan(Change::delete(&resource, "")) {
        return Ok(true);
    }
    match run
        .aws
        .call(
            Service::Elbv2,
            CallClass::Write,
            "DeleteTargetGroup",
            arn,
            run.aws
                .elbv2
                .delete_target_group()
                .target_group_arn(arn)
                .send(),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("TargetGroupNotFound") => Ok(true),
        Err(e) if e.code() == Some("ResourceInUse") => {
            run.wait(
                format!("{resource} is still in use ({e})"),
                super::shared::DRAIN_POLL,
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Desired {
        Desired {
            name: "web".into(),
            port: 3000,
            vpc_id: "vpc-1".into(),
            health: Health::from_spec(&TargetHealthCheck {
                path: "/health".into(),
                interval_seconds: 30,
                timeout_seconds: 5,
                healthy_threshold: 2,
                unhealthy_threshold: 2,
                matcher: "200".into(),
            }),
            deregistration_delay: 30,
        }
    }

    fn o() -> Observed {
        Observed {
            arn: "tg".into(),
            port: 3000,
            protocol: "HTTP".into(),
            vpc_id: "vpc-1".into(),
            target_type: "ip".into(),
            health: d().health,
            deregistration_delay: 30,
            tags: Tags::new(),
        }
    }

    #[test]
    fn a_matching_target_group_needs_nothing() {
        let (steps, imm) = plan(&d(), Some(&o()), Tags::new());
        assert!(steps.is_empty() && imm.is_empty());
    }

    #[test]
    fn a_changed_health_check_path_is_one_modify() {
        let mut obs = o();
        obs.health.path = "/".into();
        let (steps, _) = plan(&d(), Some(&obs), Tags::new());
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].1.to_string(),
            "~ target group web health check path: / -> /health"
        );
    }

    #[test]
    fn a_changed_port_is_reported_not_recreated() {
        let mut obs = o();
        obs.port = 8080;
        let (steps, imm) = plan(&d(), Some(&obs), Tags::new());
        assert!(steps.is_empty());
        assert_eq!(imm.len(), 1);
    }

    #[test]
    fn matchers_compare_without_spaces() {
        assert_eq!(normalise_matcher("200, 204"), "200,204");
    }
}

//! The Application Load Balancer of a ClusterSpec's `loadBalancers[]` entry: scheme, subnets,
//! security groups, and the attributes `deletion_protection.enabled` and
//! `idle_timeout.timeout_seconds`.
//!
//! Invariants: an existing load balancer is never recreated (its DNS name would change); a field
//! that cannot change in place (scheme, type) is reported as [`ResourceError::Immutable`] in a
//! condition and the spec is Degraded, while everything else is still reconciled. Attributes AWS
//! omits are read as their AWS defaults (deletion protection off, idle timeout 60 s).

mod gc;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_elasticloadbalancingv2::types::{
    LoadBalancer as AwsLoadBalancer, LoadBalancerAttribute, LoadBalancerSchemeEnum,
    LoadBalancerTypeEnum,
};

use crate::aws::Service;
use crate::reconcile::ConditionReport;
use crate::resources::error::Absent;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::tag_step;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::elb_tags::{self, Tags};
use crate::resources::shared::pages::{by_name, one_by_name, read_pages};
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use crate::spec::types::LoadBalancer;
use aws_sdk_elasticloadbalancingv2::operation::describe_load_balancers::DescribeLoadBalancersOutput;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "elbv2:loadbalancer";

pub const ATTR_DELETION_PROTECTION: &str = "deletion_protection.enabled";
pub const ATTR_IDLE_TIMEOUT: &str = "idle_timeout.timeout_seconds";
/// AWS's idle timeout when the attribute was never set.
pub const DEFAULT_IDLE_TIMEOUT: u32 = 60;
/// The largest page ELBv2's Describe* calls return (DescribeLoadBalancers, DescribeTargetGroups,
/// DescribeRules).
pub const PAGE_SIZE: i32 = 400;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub scheme: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub deletion_protection: bool,
    pub idle_timeout: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    pub dns_name: String,
    pub canonical_zone_id: String,
    pub vpc_id: String,
    pub lb_type: String,
    pub scheme: String,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub deletion_protection: bool,
    pub idle_timeout: u32,
    pub tags: Tags,
}

/// What the later stages need of the load balancer (empty strings when only planning a create).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub arn: String,
    pub dns_name: String,
    pub canonical_zone_id: String,
    pub vpc_id: String,
}

impl From<&Observed> for Info {
    fn from(o: &Observed) -> Self {
        Info {
            name: String::new(),
            arn: o.arn.clone(),
            dns_name: o.dns_name.clone(),
            canonical_zone_id: o.canonical_zone_id.clone(),
            vpc_id: o.vpc_id.clone(),
        }
    }
}

pub fn desired(lb: &LoadBalancer) -> Desired {
    Desired {
        name: crate::resources::shared::names::load_balancer_name(&lb.name),
        scheme: lb.scheme.as_aws().to_string(),
        subnets: lb.subnets.iter().cloned().collect(),
        security_groups: lb.security_groups.iter().cloned().collect(),
        deletion_protection: lb.deletion_protection,
        idle_timeout: lb.idle_timeout_seconds,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Tag(Tags),
    Subnets,
    SecurityGroups,
    /// ModifyLoadBalancerAttributes with these keys and values.
    Attributes(Vec<(String, String)>),
}

fn set_text(s: &BTreeSet<String>) -> String {
    format!("[{}]", s.iter().cloned().collect::<Vec<_>>().join(", "))
}

/// The attribute changes from `(deletion protection, idle timeout)` `from` to `d`.
fn attribute_steps(resource: &str, d: &Desired, from: (bool, u32)) -> Vec<(Step, Change)> {
    let mut attrs = Vec::new();
    let mut details = Vec::new();
    if from.0 != d.deletion_protection {
        attrs.push((
            ATTR_DELETION_PROTECTION.to_string(),
            d.deletion_protection.to_string(),
        ));
        details.push(format!(
            "deletion protection: {} -> {}",
            from.0, d.deletion_protection
        ));
    }
    if from.1 != d.idle_timeout {
        attrs.push((ATTR_IDLE_TIMEOUT.to_string(), d.idle_timeout.to_string()));
        details.push(format!("idle timeout: {}s -> {}s", from.1, d.idle_timeout));
    }
    if attrs.is_empty() {
        return Vec::new();
    }
    vec![(
        Step::Attributes(attrs),
        Change::update(resource, details.join(", ")),
    )]
}

/// The steps from `o` to `d` (pure), and the fields that cannot change in place.
pub fn plan(
    d: &Desired,
    o: Option<&Observed>,
    tags_missing: Tags,
) -> (Vec<(Step, Change)>, Vec<ResourceError>) {
    let resource = format!("load balancer {}", d.name);
    let Some(o) = o else {
        let mut steps = vec![(
            Step::Create,
            Change::create(
                &resource,
                format!("{}, subnets {}", d.scheme, set_text(&d.subnets)),
            ),
        )];
        steps.extend(attribute_steps(&resource, d, (false, DEFAULT_IDLE_TIMEOUT)));
        return (steps, Vec::new());
    };
    let mut immutable = Vec::new();
    if o.scheme != d.scheme {
        immutable.push(ResourceError::Immutable {
            resource: resource.clone(),
            field: "scheme".into(),
            observed: o.scheme.clone(),
            desired: d.scheme.clone(),
        });
    }
    if o.lb_type != "application" {
        immutable.push(ResourceError::Immutable {
            resource: resource.clone(),
            field: "type".into(),
            observed: o.lb_type.clone(),
            desired: "application".into(),
        });
        return (Vec::new(), immutable);
    }
    let mut steps = Vec::new();
    steps.extend(tag_step(&resource, &tags_missing, Step::Tag));
    if o.subnets != d.subnets {
        steps.push((
            Step::Subnets,
            Change::field(
                &resource,
                "subnets",
                set_text(&o.subnets),
                set_text(&d.subnets),
            ),
        ));
    }
    if o.security_groups != d.security_groups {
        steps.push((
            Step::SecurityGroups,
            Change::field(
                &resource,
                "security groups",
                set_text(&o.security_groups),
                set_text(&d.security_groups),
            ),
        ));
    }
    steps.extend(attribute_steps(
        &resource,
        d,
        (o.deletion_protection, o.idle_timeout),
    ));
    (steps, immutable)
}

/// Every load balancer by name, DescribeLoadBalancers [`PAGE_SIZE`] per page (a resync
/// wave's read, shared by every spec).
async fn list_all(run: &SpecRun<'_>) -> Result<HashMap<String, AwsLoadBalancer>, ResourceError> {
    let elb = &run.aws.elbv2;
    let pages = read_pages(
        &run.aws,
        Service::Elbv2,
        "DescribeLoadBalancers",
        |m| {
            elb.describe_load_balancers()
                .page_size(PAGE_SIZE)
                .set_marker(m)
                .send()
        },
        DescribeLoadBalancersOutput::next_marker,
    )
    .await?;
    Ok(by_name(
        &pages,
        DescribeLoadBalancersOutput::load_balancers,
        AwsLoadBalancer::load_balancer_name,
        Clone::clone,
    ))
}

/// The load balancer `name` as DescribeLoadBalancers has it; `None` when it does not exist.
/// In a resync wave, from the wave's listing of every load balancer.
async fn describe(run: &SpecRun<'_>, name: &str) -> Result<Option<AwsLoadBalancer>, ResourceError> {
    let elb = &run.aws.elbv2;
    let one = || async {
        let read = elb.describe_load_balancers().names(name).send();
        let resp = run
            .aws
            .read(Service::Elbv2, "DescribeLoadBalancers", name, read);
        let resp = resp.await.absent_if("LoadBalancerNotFound")?;
        Ok(resp.and_then(|r| r.load_balancers().first().cloned()))
    };
    one_by_name(run, Entry::LoadBalancers, name, || list_all(run), one).await
}

/// What a ServiceSpec needs of its load balancer `name` (no tags, no attributes); `None` when
/// it does not exist.
pub async fn find(run: &SpecRun<'_>, name: &str) -> Result<Option<Info>, ResourceError> {
    Ok(describe(run, name).await?.map(|lb| Info {
        name: name.to_string(),
        arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        canonical_zone_id: lb
            .canonical_hosted_zone_id()
            .unwrap_or_default()
            .to_string(),
        vpc_id: lb.vpc_id().unwrap_or_default().to_string(),
    }))
}

/// Read the load balancer by name (with tags and attributes); `None` when it does not exist.
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    let Some(lb) = describe(run, name).await? else {
        return Ok(None);
    };
    let lb = &lb;
    let arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let tags = elb_tags::describe(run, std::slice::from_ref(&arn))
        .await?
        .remove(&arn)
        .unwrap_or_default();
    let req = run.aws.elbv2.describe_load_balancer_attributes();
    let req = req.load_balancer_arn(&arn).send();
    let out = run
        .aws
        .read(Service::Elbv2, "DescribeLoadBalancerAttributes", name, req);
    let out = out.await?;
    let attrs = elb_tags::attributes(out.attributes(), |a| (a.key(), a.value()));
    Ok(Some(Observed {
        dns_name: lb.dns_name().unwrap_or_default().to_string(),
        canonical_zone_id: lb
            .canonical_hosted_zone_id()
            .unwrap_or_default()
            .to_string(),
        vpc_id: lb.vpc_id().unwrap_or_default().to_string(),
        lb_type: lb
            .r#type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_default(),
        scheme: lb
            .scheme()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        subnets: lb
            .availability_zones()
            .iter()
            .filter_map(|z| z.subnet_id().map(str::to_string))
            .collect(),
        security_groups: lb.security_groups().iter().cloned().collect(),
        deletion_protection: attrs
            .get(ATTR_DELETION_PROTECTION)
            .is_some_and(|v| v == "true"),
        idle_timeout: attrs
            .get(ATTR_IDLE_TIMEOUT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_IDLE_TIMEOUT),
        tags,
        arn,
    }))
}

/// The name of the load balancer a listener or load balancer ARN belongs to
/// (`...:loadbalancer/app/NAME/ID`, `...:listener/app/NAME/ID/LID`).
pub fn name_from_arn(arn: &str) -> Option<String> {
    let (_, rest) = arn
        .split_once(":loadbalancer/")
        .or_else(|| arn.split_once(":listener/"))?;
    rest.split('/').nth(1).map(str::to_string)
}

/// The condition and wait of a deletion stopped by deletion protection.
pub fn wait_for_protection(run: &mut SpecRun<'_>, name: &str) -> Gone {
    let why = format!(
        "load balancer {name} has deletion protection on; the operator never turns it off: turn it off by hand (aws elbv2 modify-load-balancer-attributes --attributes Key={ATTR_DELETION_PROTECTION},Value=false) and the deletion goes on"
    );
    run.condition(ConditionReport::new(
        "Deleted",
        false,
        "DeletionProtected",
        why.clone(),
    ));
    Gone::not_yet(why, std::time::Duration::from_secs(60))
}

/// Teardown of a ClusterSpec's load balancer (`elbv2:loadbalancer`, its ARN), after its
/// listeners: deleted, or released with `retain`. Deletion protection is never turned off by
/// the operator: a protected load balancer gets the condition `DeletionProtected` and the
/// deletion waits until a person turns protection off (or the spec comes back). A load balancer
/// without our tags is left alone.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some(name) = name_from_arn(arn) else {
        return Ok(Gone::Yes);
    };
    let Some(o) = observe(run, &name).await? else {
        return Ok(Gone::Yes);
    };
    if o.arn != arn || !elb_tags::is_ours(run, &o.tags) {
        // Gone and replaced by another one of that name, or not ours: leave it alone.
        return Ok(Gone::Yes);
    }
    let resource = format!("load balancer {name}");
    if retain {
        elb_tags::release(run, arn, &resource).await?;
        return Ok(Gone::Yes);
    }
    if o.deletion_protection {
        return Ok(wait_for_protection(run, &name));
    }
    if run.plan(Change::delete(&resource, "")) {
        match run
            .aws
            .write(
                Service::Elbv2,
                "DeleteLoadBalancer",
                &name,
                run.aws
                    .elbv2
                    .delete_load_balancer()
                    .load_balancer_arn(arn)
                    .send(),
            )
            .await
        {
            Err(e) if e.code() == Some("LoadBalancerNotFound") => {}
            Err(e) if e.code() == Some("OperationNotPermitted") => {
                // Protection turned on between our read and the call.
                return Ok(Gone::not_yet(
                    format!("{resource} cannot be deleted yet: {e}"),
                    std::time::Duration::from_secs(60),
                ));
            }
            other => {
                other?;
            }
        }
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// An ALB, as the generic driver sees it.
    LoadBalancerKind, TYPE, 9, delete, "ELBv2 load balancers", gc::list_owned
);

/// The generic driver's view of a load balancer: its output is the [`Info`] later stages
/// use (ARN, DNS name, zone, VPC; empty while only planning a create).
impl Managed for LoadBalancerKind {
    crate::resources::kind::by_name!("load balancer");
    type Output = Info;
    const IMMUTABLE: &'static str = "LoadBalancerImmutable";

    fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
        plan(d, o, missing).into()
    }

    fn output(d: &Desired, o: Option<&Observed>) -> Info {
        let mut info = o.map(Info::from).unwrap_or_default();
        info.name = d.name.clone();
        info
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out, .. } = at;
        let elb = &run.aws.elbv2;
        match step {
            Step::Create => {
                let created = run
                    .aws
                    .write(
                        Service::Elbv2,
                        "CreateLoadBalancer",
                        &d.name,
                        elb.create_load_balancer()
                            .name(&d.name)
                            .r#type(LoadBalancerTypeEnum::Application)
                            .scheme(LoadBalancerSchemeEnum::from(d.scheme.as_str()))
                            .set_subnets(Some(d.subnets.iter().cloned().collect()))
                            .set_security_groups(
                                (!d.security_groups.is_empty())
                                    .then(|| d.security_groups.iter().cloned().collect()),
                            )
                            .set_tags(Some(elb_tags::sdk_tags(&run.tags())))
                            .send(),
                    )
                    .await?;
                let lb = created.load_balancers().first();
                *out = Info {
                    name: d.name.clone(),
                    arn: lb
                        .and_then(|l| l.load_balancer_arn())
                        .unwrap_or_default()
                        .into(),
                    dns_name: lb.and_then(|l| l.dns_name()).unwrap_or_default().into(),
                    canonical_zone_id: lb
                        .and_then(|l| l.canonical_hosted_zone_id())
                        .unwrap_or_default()
                        .into(),
                    vpc_id: lb.and_then(|l| l.vpc_id()).unwrap_or_default().into(),
                };
            }
            Step::Tag(tags) => elb_tags::add(run, &out.arn, &tags).await?,
            Step::Subnets => {
                run.aws
                    .write(
                        Service::Elbv2,
                        "SetSubnets",
                        &d.name,
                        elb.set_subnets()
                            .load_balancer_arn(&out.arn)
                            .set_subnets(Some(d.subnets.iter().cloned().collect()))
                            .send(),
                    )
                    .await?;
            }
            Step::SecurityGroups => {
                run.aws
                    .write(
                        Service::Elbv2,
                        "SetSecurityGroups",
                        &d.name,
                        elb.set_security_groups()
                            .load_balancer_arn(&out.arn)
                            .set_security_groups(Some(d.security_groups.iter().cloned().collect()))
                            .send(),
                    )
                    .await?;
            }
            Step::Attributes(attrs) => {
                let mut req = elb
                    .modify_load_balancer_attributes()
                    .load_balancer_arn(&out.arn);
                for (k, v) in attrs {
                    req = req.attributes(LoadBalancerAttribute::builder().key(k).value(v).build());
                }
                run.aws
                    .write(
                        Service::Elbv2,
                        "ModifyLoadBalancerAttributes",
                        &d.name,
                        req.send(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    fn id(_: &Desired, out: &Info) -> Option<String> {
        crate::resources::kind::arn_id(&out.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Desired {
        Desired {
            name: "prod-public".into(),
            scheme: "internet-facing".into(),
            subnets: ["subnet-a", "subnet-b"].map(String::from).into(),
            security_groups: ["sg-1"].map(String::from).into(),
            deletion_protection: true,
            idle_timeout: 60,
        }
    }

    fn o() -> Observed {
        Observed {
            arn: "arn".into(),
            lb_type: "application".into(),
            scheme: "internet-facing".into(),
            subnets: d().subnets,
            security_groups: d().security_groups,
            deletion_protection: true,
            idle_timeout: 60,
            ..Default::default()
        }
    }

    #[test]
    fn a_matching_load_balancer_needs_nothing() {
        let (steps, imm) = plan(&d(), Some(&o()), Tags::new());
        assert!(steps.is_empty() && imm.is_empty());
    }

    #[test]
    fn a_new_load_balancer_gets_only_the_attributes_that_differ_from_aws_defaults() {
        let (steps, _) = plan(&d(), None, Tags::new());
        assert_eq!(steps[0].0, Step::Create);
        assert_eq!(
            steps[1].0,
            Step::Attributes(vec![(ATTR_DELETION_PROTECTION.into(), "true".into())])
        );
        assert_eq!(steps.len(), 2);
    }

    #[test]
    fn a_changed_scheme_is_reported_and_never_recreates() {
        let mut obs = o();
        obs.scheme = "internal".into();
        obs.idle_timeout = 120;
        let (steps, imm) = plan(&d(), Some(&obs), Tags::new());
        assert_eq!(imm.len(), 1);
        assert!(imm[0]
            .to_string()
            .contains("scheme cannot be changed in place"));
        assert!(steps.iter().all(|(s, _)| *s != Step::Create));
        assert_eq!(
            steps[0].1.to_string(),
            "~ load balancer prod-public idle timeout: 120s -> 60s"
        );
    }

    #[test]
    fn listener_and_load_balancer_arns_name_their_load_balancer() {
        let lb = "arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/prod-public/50dc6c495c0c9188";
        let l = "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/prod-public/50dc6c495c0c9188/f2f7dc8efc522ab2";
        assert_eq!(name_from_arn(lb).as_deref(), Some("prod-public"));
        assert_eq!(name_from_arn(l).as_deref(), Some("prod-public"));
        assert_eq!(name_from_arn("arn:aws:acm:eu-west-1:1:certificate/x"), None);
    }
}

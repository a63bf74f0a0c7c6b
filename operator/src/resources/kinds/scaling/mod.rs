//! Service autoscaling with Application Auto Scaling: a scalable target (min/max) on the
//! service's desired count and one target-tracking policy per metric the spec names (CPU,
//! memory, ALB requests per target); policies the spec no longer names are deleted, and the
//! target is deregistered when the spec drops `autoscaling`. A scalable target on a service
//! this spec owns belongs to the spec.

mod gc;

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ScalingPolicy,
    ServiceNamespace, TargetTrackingScalingPolicyConfiguration,
};

use crate::aws::Service;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::{Change, SpecRun};
use crate::resources::snapshot::{service_specs, Entry};
use crate::resources::ResourceError;
use crate::spec::types::Autoscaling;
use crate::spec::{cluster_spec_of, ValidSpecs};

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "application-autoscaling:scalable-target";

/// One target-tracking policy: metric, target value, scale-in and scale-out cooldowns, and the
/// ALB resource label for request counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub metric: String,
    pub target: f64,
    pub scale_in_cooldown: i32,
    pub scale_out_cooldown: i32,
    pub resource_label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    /// `None`: no autoscaling.
    pub range: Option<(i32, i32)>,
    /// By policy name.
    pub policies: BTreeMap<String, Policy>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    pub range: Option<(i32, i32)>,
    pub policies: BTreeMap<String, Policy>,
}

/// `service/<cluster>/<service>`.
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{cluster}/{service}")
}

/// The policies and range the spec asks for (pure). `alb_label`: the
/// `app/<lb>/<id>/targetgroup/<tg>/<id>` label, needed for request-count tracking.
pub fn desired(service: &str, a: Option<&Autoscaling>, alb_label: Option<&str>) -> Desired {
    let Some(a) = a else {
        return Desired::default();
    };
    let mut policies = BTreeMap::new();
    let mut add = |suffix: &str, metric: MetricType, target: Option<u32>, label: Option<&str>| {
        if let Some(t) = target {
            policies.insert(
                format!("{service}-{suffix}"),
                Policy {
                    metric: metric.as_str().to_string(),
                    target: f64::from(t),
                    scale_in_cooldown: a.scale_in_cooldown_seconds as i32,
                    scale_out_cooldown: a.scale_out_cooldown_seconds as i32,
                    resource_label: label.map(str::to_string),
                },
            );
        }
    };
    add(
        "cpu",
        MetricType::EcsServiceAverageCpuUtilization,
        a.target_cpu_utilization,
        None,
    );
    add(
        "memory",
        MetricType::EcsServiceAverageMemoryUtilization,
        a.target_memory_utilization,
        None,
    );
    if alb_label.is_some() {
        add(
            "requests",
            MetricType::AlbRequestCountPerTarget,
            a.target_requests_per_target,
            alb_label,
        );
    }
    Desired {
        range: Some((a.min_capacity as i32, a.max_capacity as i32)),
        policies,
    }
}

/// A target-tracking policy as compared, by name; `None` for other kinds of policy.
fn policy_from(p: &ScalingPolicy) -> Option<(String, Policy)> {
    let c = p.target_tracking_scaling_policy_configuration()?;
    let m = c.predefined_metric_specification()?;
    Some((
        p.policy_name().to_string(),
        Policy {
            metric: m.predefined_metric_type().as_str().to_string(),
            target: c.target_value(),
            scale_in_cooldown: c.scale_in_cooldown().unwrap_or(0),
            scale_out_cooldown: c.scale_out_cooldown().unwrap_or(0),
            resource_label: m.resource_label().map(str::to_string),
        },
    ))
}

/// The scalable targets of the store's ServiceSpecs and every scaling policy on ECS
/// services' desired counts, by resource id: a resync wave's read, shared by every
/// ServiceSpec.
///
/// `targets` has an entry for every resource id it asked for: `None` when that service has no
/// scalable target. A spec it did not ask for (one newer than the wave) reads its own. Each half
/// is `None` when its listing is incomplete (an emulator whose paging loops); the specs then
/// read that half fresh, one call each, and still use the other half.
#[derive(Debug)]
struct Listing {
    targets: Option<HashMap<String, Option<(i32, i32)>>>,
    policies: Option<HashMap<String, BTreeMap<String, Policy>>>,
}

/// The largest page DescribeScalableTargets returns (AWS: MaxResults 1..50), and the most
/// resource ids one call may name (AWS: ResourceIds at most 50).
const TARGETS_PAGE_SIZE: i32 = 50;
/// The largest page DescribeScalingPolicies returns (AWS: MaxResults 1..10; AWS refuses more,
/// moto does not).
const POLICIES_PAGE_SIZE: i32 = 10;

/// The scalable targets of the resource ids `ids` and every scaling policy of the ECS
/// namespace. The reads name no scalable dimension: AWS wants a resource ID with one, and ECS
/// services have only `ecs:service:DesiredCount` anyway (checked here all the same).
async fn list_all(run: &SpecRun<'_>, ids: &[String]) -> Result<Listing, ResourceError> {
    Ok(Listing {
        targets: list_targets(run, ids).await?,
        policies: list_policies(run).await?,
    })
}

/// What a listing does after a page.
enum Next {
    Page(String),
    Done,
    /// The page handed out a token already used: the paging loops.
    Looped,
}

/// The step after a page whose next token is `token`, given the tokens used so far.
fn next_page(token: Option<&str>, seen: &mut HashSet<String>) -> Next {
    match token {
        Some(t) if !t.is_empty() && seen.insert(t.to_string()) => Next::Page(t.to_string()),
        Some(t) if !t.is_empty() => Next::Looped,
        _ => Next::Done,
    }
}

/// The scalable-target resource ids of the store's ServiceSpecs, sorted: every one, as a spec
/// without `autoscaling` is checked for a target to deregister.
fn store_ids(specs: &ValidSpecs) -> Vec<String> {
    let ids: std::collections::BTreeSet<String> = service_specs(specs)
        .filter_map(|svc| {
            let c = cluster_spec_of(svc, specs)?;
            Some(resource_id(
                &super::ecs_cluster::cluster_name(c),
                &super::ecs_service::service_name(svc),
            ))
        })
        .collect();
    ids.into_iter().collect()
}

/// The (min, max) of the scalable target of each of `ids` (`None`: it has none), by
/// DescribeScalableTargets naming 50 resource ids a call: the calls are the same however many
/// targets other tools have in the account, and no listing of the whole namespace is paged
/// (moto hands out the same token again past 100 targets). `None` when a call's paging loops.
async fn list_targets(
    run: &SpecRun<'_>,
    ids: &[String],
) -> Result<Option<HashMap<String, Option<(i32, i32)>>>, ResourceError> {
    let mut targets: HashMap<String, Option<(i32, i32)>> =
        ids.iter().map(|id| (id.clone(), None)).collect();
    for chunk in ids.chunks(TARGETS_PAGE_SIZE as usize) {
        if !read_targets(run, chunk, &mut targets).await? {
            return Ok(None);
        }
    }
    Ok(Some(targets))
}

/// One DescribeScalableTargets of `ids` (every page of it) into `targets`; false when its
/// paging loops.
async fn read_targets(
    run: &SpecRun<'_>,
    ids: &[String],
    targets: &mut HashMap<String, Option<(i32, i32)>>,
) -> Result<bool, ResourceError> {
    let mut seen = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = run
            .aws
            .read(
                Service::ApplicationAutoScaling,
                "DescribeScalableTargets",
                "ecs",
                run.aws
                    .scaling
                    .describe_scalable_targets()
                    .service_namespace(ServiceNamespace::Ecs)
                    .set_resource_ids(Some(ids.to_vec()))
                    .max_results(TARGETS_PAGE_SIZE)
                    .set_next_token(token.take())
                    .send(),
            )
            .await?;
        for t in page.scalable_targets() {
            if t.scalable_dimension() != &ScalableDimension::EcsServiceDesiredCount
                || !targets.contains_key(t.resource_id())
            {
                continue;
            }
            targets.insert(
                t.resource_id().to_string(),
                Some((t.min_capacity(), t.max_capacity())),
            );
        }
        match next_page(page.next_token(), &mut seen) {
            Next::Page(t) => token = Some(t),
            Next::Done => return Ok(true),
            Next::Looped => return Ok(false),
        }
    }
}

/// Every ECS scaling policy by resource id, then name; `None` when the paging loops.
async fn list_policies(
    run: &SpecRun<'_>,
) -> Result<Option<HashMap<String, BTreeMap<String, Policy>>>, ResourceError> {
    let mut policies: HashMap<String, BTreeMap<String, Policy>> = HashMap::new();
    let mut seen = HashSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = run
            .aws
            .read(
                Service::ApplicationAutoScaling,
                "DescribeScalingPolicies",
                "ecs",
                run.aws
                    .scaling
                    .describe_scaling_policies()
                    .service_namespace(ServiceNamespace::Ecs)
                    .max_results(POLICIES_PAGE_SIZE)
                    .set_next_token(token.take())
                    .send(),
            )
            .await?;
        for p in page.scaling_policies() {
            if p.scalable_dimension() != &ScalableDimension::EcsServiceDesiredCount {
                continue;
            }
            if let Some((name, policy)) = policy_from(p) {
                policies
                    .entry(p.resource_id().to_string())
                    .or_default()
                    .insert(name, policy);
            }
        }
        match next_page(page.next_token(), &mut seen) {
            Next::Page(t) => token = Some(t),
            Next::Done => return Ok(Some(policies)),
            Next::Looped => return Ok(None),
        }
    }
}

/// The scalable target of `id` and its policies. In a resync wave, from one read of the
/// scalable targets of every ServiceSpec of the store (50 a call) and one listing of every ECS
/// scaling policy, for the whole wave.
pub async fn observe(run: &SpecRun<'_>, id: &str) -> Result<Observed, ResourceError> {
    let listing = match run
        .cached(Entry::Scaling, |specs| async move {
            list_all(run, &store_ids(&specs)).await
        })
        .await
    {
        Some(listing) => Some(listing?),
        None => None,
    };
    let range = match listing
        .as_ref()
        .and_then(|l| l.targets.as_ref())
        .and_then(|t| t.get(id))
    {
        Some(range) => *range,
        None => read_range(run, id).await?,
    };
    if range.is_none() {
        return Ok(Observed::default());
    }
    let policies = match listing.as_ref().and_then(|l| l.policies.as_ref()) {
        Some(policies) => policies.get(id).cloned().unwrap_or_default(),
        None => read_policies(run, id).await?,
    };
    Ok(Observed { range, policies })
}

/// The scalable target of `id` (min, max), read fresh; `None` when there is none.
async fn read_range(run: &SpecRun<'_>, id: &str) -> Result<Option<(i32, i32)>, ResourceError> {
    let targets = run
        .aws
        .read(
            Service::ApplicationAutoScaling,
            "DescribeScalableTargets",
            id,
            run.aws
                .scaling
                .describe_scalable_targets()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_ids(id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .send(),
        )
        .await?;
    // Filter again by resource id: moto (at least) ignores the filter.
    Ok(targets
        .scalable_targets()
        .iter()
        .find(|t| t.resource_id() == id)
        .map(|t| (t.min_capacity(), t.max_capacity())))
}

/// The scaling policies of `id` by name, read fresh.
async fn read_policies(
    run: &SpecRun<'_>,
    id: &str,
) -> Result<BTreeMap<String, Policy>, ResourceError> {
    let out = run
        .aws
        .read(
            Service::ApplicationAutoScaling,
            "DescribeScalingPolicies",
            id,
            run.aws
                .scaling
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .resource_id(id)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .send(),
        )
        .await?;
    Ok(out
        .scaling_policies()
        .iter()
        .filter(|p| p.resource_id() == id)
        .filter_map(policy_from)
        .collect())
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Register(i32, i32),
    Deregister,
    PutPolicy(String, Policy),
    DeletePolicy(String),
}

/// The steps from observed to desired (pure).
pub fn plan(service: &str, d: &Desired, o: &Observed) -> Vec<(Step, Change)> {
    let resource = format!("autoscaling of {service}");
    let mut steps = Vec::new();
    match (d.range, o.range) {
        (None, None) => return steps,
        (None, Some(_)) => {
            steps.push((
                Step::Deregister,
                Change::delete(&resource, "scalable target and its policies"),
            ));
            return steps;
        }
        (Some((min, max)), None) => {
            steps.push((
                Step::Register(min, max),
                Change::create(&resource, format!("{min}..{max} tasks")),
            ));
        }
        (Some((min, max)), Some((omin, omax))) if (min, max) != (omin, omax) => {
            steps.push((
                Step::Register(min, max),
                Change::field(
                    &resource,
                    "capacity",
                    format!("{omin}..{omax}"),
                    format!("{min}..{max}"),
                ),
            ));
        }
        _ => {}
    }
    for (name, p) in &d.policies {
        match o.policies.get(name) {
            Some(have) if have == p => {}
            Some(have) => steps.push((
                Step::PutPolicy(name.clone(), p.clone()),
                Change::field(
                    format!("scaling policy {name}"),
                    "target",
                    format!("{} {}", have.metric, have.target),
                    format!("{} {}", p.metric, p.target),
                ),
            )),
            None => steps.push((
                Step::PutPolicy(name.clone(), p.clone()),
                Change::create(
                    format!("scaling policy {name}"),
                    format!("{} at {}", p.metric, p.target),
                ),
            )),
        }
    }
    for name in o.policies.keys() {
        if !d.policies.contains_key(name) {
            steps.push((
                Step::DeletePolicy(name.clone()),
                Change::delete(format!("scaling policy {name}"), ""),
            ));
        }
    }
    steps
}

/// The autoscaling of one ECS service as the generic driver takes it: the service it scales
/// and what the spec asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub cluster: String,
    pub service: String,
    pub want: Desired,
}

impl Target {
    /// `service/<cluster>/<service>`.
    fn id(&self) -> String {
        resource_id(&self.cluster, &self.service)
    }
}

/// Carry out one step on the scalable target of `t`.
async fn apply_step(run: &SpecRun<'_>, t: &Target, step: Step) -> Result<(), ResourceError> {
    let id = t.id();
    let s = &run.aws.scaling;
    match step {
        Step::Register(min, max) => {
            run.aws
                .write(
                    Service::ApplicationAutoScaling,
                    "RegisterScalableTarget",
                    &id,
                    s.register_scalable_target()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .min_capacity(min)
                        .max_capacity(max)
                        .send(),
                )
                .await?;
        }
        Step::Deregister => {
            run.aws
                .write(
                    Service::ApplicationAutoScaling,
                    "DeregisterScalableTarget",
                    &id,
                    s.deregister_scalable_target()
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send(),
                )
                .await?;
        }
        Step::PutPolicy(name, p) => {
            let metric = PredefinedMetricSpecification::builder()
                .predefined_metric_type(MetricType::from(p.metric.as_str()))
                .set_resource_label(p.resource_label.clone())
                .build()
                .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?;
            let config = TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(p.target)
                .predefined_metric_specification(metric)
                .scale_in_cooldown(p.scale_in_cooldown)
                .scale_out_cooldown(p.scale_out_cooldown)
                .build()
                .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?;
            run.aws
                .write(
                    Service::ApplicationAutoScaling,
                    "PutScalingPolicy",
                    &name,
                    s.put_scaling_policy()
                        .policy_name(&name)
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .policy_type(PolicyType::TargetTrackingScaling)
                        .target_tracking_scaling_policy_configuration(config)
                        .send(),
                )
                .await?;
        }
        Step::DeletePolicy(name) => {
            run.aws
                .write(
                    Service::ApplicationAutoScaling,
                    "DeleteScalingPolicy",
                    &name,
                    s.delete_scaling_policy()
                        .policy_name(&name)
                        .service_namespace(ServiceNamespace::Ecs)
                        .resource_id(&id)
                        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                        .send(),
                )
                .await?;
        }
    }
    Ok(())
}

/// Teardown of the scalable target (`application-autoscaling:scalable-target`,
/// `service/<cluster>/<service>`): its policies and registration go; with `retain` it is left
/// as it is (scalable targets carry no tags to release).
pub async fn delete(run: &mut SpecRun<'_>, id: &str, retain: bool) -> Result<Gone, ResourceError> {
    if retain {
        return Ok(Gone::Yes);
    }
    let Some(service) = id.rsplit('/').next().map(str::to_string) else {
        return Ok(Gone::Yes);
    };
    let t = Target {
        cluster: id.split('/').nth(1).unwrap_or_default().to_string(),
        service,
        want: Desired::default(),
    };
    let o = observe(run, &t.id()).await?;
    for step in run.planned(plan(&t.service, &t.want, &o)) {
        apply_step(run, &t, step).await?;
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// An ECS service's scalable target and its policies, as the generic driver sees it.
    ScalableTargetKind, TYPE, 1, delete, "Application Auto Scaling", gc::list_owned
);

/// The generic driver's view of a service's autoscaling. A scalable target always reads as
/// observed (its `range` is `None` when it is not registered), takes no tags and is ours
/// through the ECS service it scales, which the spec claimed before it. It is in the ledger
/// whenever the spec asks for autoscaling.
impl Managed for ScalableTargetKind {
    crate::resources::kind::managed_types!(Target, Observed, Step, ());

    fn label(t: &Target) -> String {
        format!("autoscaling of {}", t.service)
    }

    async fn observe(run: &SpecRun<'_>, t: &Target) -> Result<Option<Observed>, ResourceError> {
        Ok(Some(observe(run, &t.id()).await?))
    }

    crate::resources::kind::owned_through_parent!();

    fn plan(t: &Target, o: Option<&Observed>, _: BTreeMap<String, String>) -> Plan<Step> {
        let none = Observed::default();
        Plan::steps(plan(&t.service, &t.want, o.unwrap_or(&none)))
    }

    fn output(_: &Target, _: Option<&Observed>) {}

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d: t, .. } = at;
        apply_step(run, t, step).await
    }

    fn id(t: &Target, _: &()) -> Option<String> {
        t.want.range.is_some().then(|| t.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_registers_an_unregistered_target_and_ledgers_it_only_when_autoscaled() {
        let t = Target {
            cluster: "prod".into(),
            service: "web".into(),
            want: Desired {
                range: Some((2, 6)),
                policies: BTreeMap::new(),
            },
        };
        let steps: Vec<Step> = <ScalableTargetKind as Managed>::plan(&t, None, BTreeMap::new())
            .steps
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(steps, vec![Step::Register(2, 6)]);
        assert_eq!(
            <ScalableTargetKind as Managed>::id(&t, &()),
            Some("service/prod/web".to_string())
        );
        let off = Target {
            want: Desired::default(),
            ..t
        };
        assert_eq!(<ScalableTargetKind as Managed>::id(&off, &()), None);
        let registered = Observed {
            range: Some((2, 6)),
            policies: BTreeMap::new(),
        };
        let p = <ScalableTargetKind as Managed>::plan(&off, Some(&registered), BTreeMap::new());
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].0, Step::Deregister);
    }

    #[test]
    fn a_listing_follows_new_tokens_and_stops_at_a_repeated_one() {
        let mut seen = HashSet::new();
        assert!(matches!(next_page(Some("49"), &mut seen), Next::Page(t) if t == "49"));
        assert!(matches!(next_page(Some("99"), &mut seen), Next::Page(t) if t == "99"));
        // moto past 100 targets: the same token again.
        assert!(matches!(next_page(Some("49"), &mut seen), Next::Looped));
        assert!(matches!(next_page(Some(""), &mut seen), Next::Done));
        assert!(matches!(next_page(None, &mut seen), Next::Done));
    }

    fn spec() -> Autoscaling {
        Autoscaling {
            min_capacity: 2,
            max_capacity: 4,
            target_cpu_utilization: Some(75),
            target_memory_utilization: None,
            target_requests_per_target: None,
            scale_in_cooldown_seconds: 300,
            scale_out_cooldown_seconds: 60,
        }
    }

    #[test]
    fn a_converged_target_and_policy_need_nothing() {
        let d = desired("web", Some(&spec()), None);
        let o = Observed {
            range: d.range,
            policies: d.policies.clone(),
        };
        assert!(plan("web", &d, &o).is_empty());
        assert_eq!(
            d.policies["web-cpu"].metric,
            "ECSServiceAverageCPUUtilization"
        );
    }

    #[test]
    fn dropping_autoscaling_deregisters_the_target() {
        let d = desired("web", Some(&spec()), None);
        let o = Observed {
            range: d.range,
            policies: d.policies,
        };
        let steps = plan("web", &Desired::default(), &o);
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].0, Step::Deregister);
    }
}

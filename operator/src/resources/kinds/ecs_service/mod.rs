//! The ECS service: created and updated in place (desired count unless autoscaling owns it, task
//! definition, deployment configuration with the circuit breaker, placement, capacity provider
//! strategy, network configuration, load balancer attachment, tag propagation), and its rollout
//! followed by requeue, never by blocking: first [`FIRST_LOOK`] after the call that starts it,
//! then every [`ROLLOUT_POLL`] without an events queue, every
//! [`ROLLOUT_POLL_WITH_EVENTS`] while one is read ([`RolloutPoll`]).

mod gc;
pub use gc::SEEN;

use std::collections::BTreeSet;

pub mod deployments;

use aws_sdk_ecs::types::{
    AdvancedConfiguration, AssignPublicIp, AwsVpcConfiguration, CanaryConfiguration,
    CapacityProviderStrategyItem as AwsStrategyItem, DeploymentAlarms, DeploymentCircuitBreaker,
    DeploymentConfiguration, DeploymentLifecycleHook, DeploymentLifecycleHookStage,
    DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration,
    DeploymentRolloutState, DeploymentStrategy as AwsStrategy, LinearConfiguration, LoadBalancer,
    NetworkConfiguration, PlacementConstraint, PlacementConstraintType, PlacementStrategy,
    PlacementStrategyType, PropagateTags, Service as AwsService, ServiceField,
};

use crate::aws::Service;
use crate::reconcile::ConditionReport;
use crate::resources::error::Absent;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Pending, Plan};
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::ecs_tags;
use crate::resources::shared::DRAIN_POLL;
use crate::resources::snapshot::{service_specs, Entry};
use crate::resources::ResourceError;
use crate::spec::types::{
    PlacementConstraintType as SpecConstraint, PlacementStrategyType as SpecStrategy, ServiceSpec,
};
use crate::spec::{cluster_spec_of, ValidSpecs};

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "ecs:service";

pub use crate::resources::rollout_poll::{
    RolloutPoll, FIRST_LOOK, ROLLOUT_POLL, ROLLOUT_POLL_WITH_EVENTS,
};

/// The service settings the spec decides, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `None` while autoscaling owns the count.
    pub desired_count: Option<u32>,
    pub task_definition: String,
    pub min_healthy: u32,
    pub max_percent: u32,
    pub circuit_breaker: (bool, bool),
    /// Order matters (ECS applies strategies in order).
    pub placement_strategy: Vec<(String, Option<String>)>,
    pub placement_constraints: BTreeSet<(String, Option<String>)>,
    /// Sorted; empty: the cluster's default strategy (not compared).
    pub capacity_strategy: Vec<(String, u32, u32)>,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    pub assign_public_ip: bool,
    /// Target group ARN, container name, container port.
    pub load_balancer: Option<(String, String, u32)>,
    /// The deployment strategy and what goes with it.
    pub strategy: Strategy,
}

/// `deploymentConfiguration.strategy` and its companions, in comparable form. Only what the
/// strategy uses is compared (a Rolling service's bake time is not), so what AWS echoes for an
/// unused field is never a difference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strategy {
    /// `ROLLING`, `BLUE_GREEN`, `CANARY` or `LINEAR`.
    pub name: String,
    pub bake_time: Option<u32>,
    /// Percent in tenths, bake minutes.
    pub canary: Option<(i64, u32)>,
    /// Step percent in tenths, step bake minutes.
    pub linear: Option<(i64, u32)>,
    pub hooks: Vec<Hook>,
    /// The alarms that roll a deployment back (enabled, with rollback); `None`: none.
    pub alarms: Option<BTreeSet<String>>,
    /// `loadBalancers[0].advancedConfiguration`.
    pub advanced: Option<Advanced>,
}

/// A lifecycle hook as compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hook {
    /// `AWS_LAMBDA` or `PAUSE`.
    pub target_type: String,
    pub target: Option<String>,
    pub role: Option<String>,
    pub stages: Vec<String>,
    pub timeout_minutes: u32,
    /// `ROLLBACK` or `CONTINUE`.
    pub on_timeout: String,
}

/// ECS's default hook timeout, minutes.
pub const DEFAULT_HOOK_TIMEOUT: u32 = 1440;

/// The alternate target group and listener rules ECS shifts traffic with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advanced {
    pub alternate_target_group: String,
    pub production_rule: String,
    pub test_rule: Option<String>,
    pub role: String,
}

impl Strategy {
    fn shifts_traffic(&self) -> bool {
        !self.name.is_empty() && self.name != "ROLLING"
    }

    /// Only the fields `self.name` uses (what is compared).
    fn used(&self) -> Strategy {
        let mut s = self.clone();
        if s.name.is_empty() {
            s.name = "ROLLING".into();
        }
        if !s.shifts_traffic() {
            s.bake_time = None;
            s.hooks.clear();
        }
        if s.name != "CANARY" {
            s.canary = None;
        }
        if s.name != "LINEAR" {
            s.linear = None;
        }
        s
    }
}

fn tenths(v: f64) -> i64 {
    (v * 10.0).round() as i64
}

/// The strategy settings the spec asks for (pure); `advanced` is filled in by the pipeline,
/// which knows the alternate target group and the rules.
pub fn desired_strategy(spec: &ServiceSpec, cluster: &str) -> Strategy {
    use crate::spec::types::DeploymentStrategy as S;
    let d = &spec.spec.deployment;
    let mut alarms: BTreeSet<String> = d
        .rollback_on_alarms
        .iter()
        .map(|a| super::alarm::name(cluster, &spec.metadata.name, a.field()))
        .collect();
    alarms.extend(d.alarm_names.iter().cloned());
    let shifting = d.strategy.shifts_traffic();
    Strategy {
        name: d.strategy.as_aws().to_string(),
        bake_time: shifting.then(|| d.bake_time()),
        canary: (d.strategy == S::Canary).then(|| {
            let c = d.canary.clone().unwrap_or_default();
            (tenths(c.percent), c.bake_time_minutes)
        }),
        linear: (d.strategy == S::Linear).then(|| {
            let l = d.linear.clone().unwrap_or_default();
            (tenths(l.step_percent), l.step_bake_time_minutes)
        }),
        hooks: if shifting {
            d.hooks
                .iter()
                .map(|h| Hook {
                    target_type: if h.pause { "PAUSE" } else { "AWS_LAMBDA" }.into(),
                    target: h.lambda_arn.clone(),
                    role: h.role_arn.clone(),
                    stages: h.stages.iter().map(|s| s.as_aws().to_string()).collect(),
                    timeout_minutes: h.timeout_minutes.unwrap_or(DEFAULT_HOOK_TIMEOUT),
                    on_timeout: h.on_timeout.unwrap_or_default().as_aws().to_string(),
                })
                .collect()
        } else {
            Vec::new()
        },
        alarms: (!alarms.is_empty()).then_some(alarms),
        advanced: None,
    }
}

fn observed_strategy(svc: &AwsService) -> Strategy {
    let dc = svc.deployment_configuration();
    let name = dc
        .and_then(|d| d.strategy())
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "ROLLING".into());
    let alarms = dc
        .and_then(|d| d.alarms())
        .filter(|a| a.enable() && a.rollback())
        .map(|a| a.alarm_names().iter().cloned().collect::<BTreeSet<_>>())
        .filter(|a| !a.is_empty());
    let advanced = svc
        .load_balancers()
        .first()
        .and_then(|l| l.advanced_configuration())
        .map(|a| Advanced {
            alternate_target_group: a.alternate_target_group_arn().unwrap_or_default().into(),
            production_rule: a.production_listener_rule().unwrap_or_default().into(),
            test_rule: a.test_listener_rule().map(str::to_string),
            role: a.role_arn().unwrap_or_default().into(),
        });
    Strategy {
        name,
        bake_time: dc
            .and_then(|d| d.bake_time_in_minutes())
            .map(|b| b.max(0) as u32),
        canary: dc.and_then(|d| d.canary_configuration()).map(|c| {
            (
                tenths(c.canary_percent().unwrap_or(5.0)),
                c.canary_bake_time_in_minutes().unwrap_or(10).max(0) as u32,
            )
        }),
        linear: dc.and_then(|d| d.linear_configuration()).map(|l| {
            (
                tenths(l.step_percent().unwrap_or(10.0)),
                l.step_bake_time_in_minutes().unwrap_or(6).max(0) as u32,
            )
        }),
        hooks: dc
            .map(|d| {
                d.lifecycle_hooks()
                    .iter()
                    .map(|h| Hook {
                        target_type: h
                            .target_type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_else(|| "AWS_LAMBDA".into()),
                        target: h.hook_target_arn().map(str::to_string),
                        role: h.role_arn().map(str::to_string),
                        stages: h
                            .lifecycle_stages()
                            .iter()
                            .map(|s| s.as_str().to_string())
                            .collect(),
                        timeout_minutes: h
                            .timeout_configuration()
                            .and_then(|t| t.timeout_in_minutes())
                            .map_or(DEFAULT_HOOK_TIMEOUT, |m| m.max(0) as u32),
                        on_timeout: h
                            .timeout_configuration()
                            .and_then(|t| t.action())
                            .map_or("ROLLBACK".to_string(), |a| a.as_str().to_string()),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        alarms,
        advanced,
    }
}

/// What differs between two strategies, in plain words (pure). With traffic shifting, the
/// primary and alternate target groups are compared as a pair in either order: ECS swaps them
/// after each blue/green deployment, and that is not a difference.
fn strategy_differences(have: &Strategy, want: &Strategy, out: &mut Vec<String>) {
    let (h, w) = (have.used(), want.used());
    if h.name != w.name {
        out.push(format!("strategy: {} -> {}", h.name, w.name));
    }
    if h.bake_time != w.bake_time {
        out.push(format!(
            "bakeTimeInMinutes: {} -> {}",
            opt(h.bake_time),
            opt(w.bake_time)
        ));
    }
    if h.canary != w.canary {
        out.push(format!("canary: {:?} -> {:?}", h.canary, w.canary));
    }
    if h.linear != w.linear {
        out.push(format!("linear: {:?} -> {:?}", h.linear, w.linear));
    }
    if h.hooks != w.hooks {
        out.push(format!(
            "lifecycle hooks: {} -> {}",
            h.hooks.len(),
            w.hooks.len()
        ));
    }
    if h.alarms != w.alarms {
        let text = |a: &Option<BTreeSet<String>>| match a {
            None => "none".to_string(),
            Some(a) => a.iter().cloned().collect::<Vec<_>>().join(","),
        };
        out.push(format!(
            "rollback alarms: {} -> {}",
            text(&h.alarms),
            text(&w.alarms)
        ));
    }
}

fn opt(v: Option<u32>) -> String {
    v.map_or("none".to_string(), |v| v.to_string())
}

/// The load balancer attachment as compared: (the target group pair as a set, container,
/// port, rules and role), or the single target group of a Rolling service.
type LbKey = (
    BTreeSet<String>,
    String,
    u32,
    Option<(String, Option<String>, String)>,
);

fn lb_key(s: &Settings) -> Option<LbKey> {
    let (tg, c, p) = s.load_balancer.clone()?;
    let mut tgs = BTreeSet::from([tg]);
    let rules = s.strategy.advanced.as_ref().map(|a| {
        tgs.insert(a.alternate_target_group.clone());
        (
            a.production_rule.clone(),
            a.test_rule.clone(),
            a.role.clone(),
        )
    });
    Some((tgs, c, p, rules))
}

/// `want`'s load balancer, in `have`'s order of the target group pair when that is the same
/// pair swapped (so an update for something else does not swap them back).
fn load_balancers_for(have: Option<&Settings>, want: &Settings) -> Vec<LoadBalancer> {
    let mut want = want.clone();
    if let Some(h) = have {
        if let (Some((htg, ..)), Some(ha), Some((wtg, ..)), Some(wa)) = (
            &h.load_balancer,
            &h.strategy.advanced,
            want.load_balancer.clone(),
            want.strategy.advanced.clone(),
        ) {
            if *htg == wa.alternate_target_group && ha.alternate_target_group == wtg {
                if let Some(lb) = want.load_balancer.as_mut() {
                    lb.0 = wa.alternate_target_group.clone();
                }
                if let Some(a) = want.strategy.advanced.as_mut() {
                    a.alternate_target_group = wtg;
                }
            }
        }
    }
    load_balancers(&want)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub settings: Settings,
    /// The count ECS has now (even when autoscaling owns it).
    pub desired_count: u32,
    pub running_count: u32,
    pub tags: std::collections::BTreeMap<String, String>,
    pub rollout: Rollout,
    /// The task definitions of the deployments ECS lists as failed (`rolloutState: FAILED`,
    /// PRIMARY or not), with ECS's reason: while ECS rolls a failed deployment back, the
    /// failed one stays listed beside the rollback.
    pub failed: Vec<(String, String)>,
}

/// Where the primary deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Completed,
    InProgress { failed_tasks: u32 },
    Failed(String),
    Unknown,
}

pub fn service_name(spec: &ServiceSpec) -> String {
    spec.metadata.name.clone()
}

/// The ECS service names of the ServiceSpecs whose ClusterSpec names the ECS cluster
/// `cluster`, sorted (what the wave's batched DescribeServices covers).
pub fn services_of_cluster(specs: &ValidSpecs, cluster: &str) -> Vec<String> {
    let names: std::collections::BTreeSet<String> = service_specs(specs)
        .filter(|svc| {
            cluster_spec_of(svc, specs)
                .is_some_and(|c| super::ecs_cluster::cluster_name(c) == cluster)
        })
        .map(service_name)
        .collect();
    names.into_iter().collect()
}

fn strategy_type(t: &SpecStrategy) -> &'static str {
    match t {
        SpecStrategy::Spread => "spread",
        SpecStrategy::Binpack => "binpack",
        SpecStrategy::Random => "random",
    }
}

fn constraint_type(t: &SpecConstraint) -> &'static str {
    match t {
        SpecConstraint::DistinctInstance => "distinctInstance",
        SpecConstraint::MemberOf => "memberOf",
    }
}

/// The settings the spec asks for (pure).
pub fn desired(
    spec: &ServiceSpec,
    cluster: &str,
    task_definition: &str,
    target_group: Option<&str>,
) -> Settings {
    let s = &spec.spec;
    let mut capacity: Vec<_> = s
        .capacity_provider_strategy
        .iter()
        .map(|i| (i.capacity_provider.clone(), i.weight, i.base))
        .collect();
    capacity.sort();
    Settings {
        desired_count: if s.autoscaling.is_some() {
            None
        } else {
            Some(s.desired_count)
        },
        task_definition: task_definition.to_string(),
        min_healthy: s.deployment.minimum_healthy_percent,
        max_percent: s.deployment.maximum_percent,
        circuit_breaker: {
            let cb = s.deployment.circuit_breaker();
            (cb.enable, cb.rollback)
        },
        placement_strategy: s
            .placement
            .strategy
            .iter()
            .map(|p| (strategy_type(&p.strategy_type).to_string(), p.field.clone()))
            .collect(),
        placement_constraints: s
            .placement
            .constraints
            .iter()
            .map(|c| {
                (
                    constraint_type(&c.constraint_type).to_string(),
                    c.expression.clone(),
                )
            })
            .collect(),
        capacity_strategy: capacity,
        subnets: s.network.subnets.iter().cloned().collect(),
        security_groups: s.network.security_groups.iter().cloned().collect(),
        assign_public_ip: s.network.assign_public_ip,
        load_balancer: match (target_group, s.container.port) {
            (Some(tg), Some(port)) => Some((tg.to_string(), s.container.name.clone(), port)),
            _ => None,
        },
        strategy: desired_strategy(spec, cluster),
    }
}

fn observed_from(svc: &AwsService, autoscaled: bool) -> Observed {
    let dc = svc.deployment_configuration();
    let cb = dc.and_then(|d| d.deployment_circuit_breaker());
    let vpc = svc
        .network_configuration()
        .and_then(|n| n.awsvpc_configuration());
    let mut capacity: Vec<_> = svc
        .capacity_provider_strategy()
        .iter()
        .map(|i| {
            (
                i.capacity_provider().to_string(),
                i.weight() as u32,
                i.base() as u32,
            )
        })
        .collect();
    capacity.sort();
    let primary = svc
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"));
    let rollout = match primary {
        None => Rollout::Unknown,
        Some(d) => match d.rollout_state() {
            Some(DeploymentRolloutState::Completed) => Rollout::Completed,
            Some(DeploymentRolloutState::Failed) => Rollout::Failed(
                d.rollout_state_reason()
                    .unwrap_or("the deployment failed")
                    .to_string(),
            ),
            Some(DeploymentRolloutState::InProgress) => Rollout::InProgress {
                failed_tasks: d.failed_tasks().max(0) as u32,
            },
            _ => Rollout::Unknown,
        },
    };
    Observed {
        arn: svc.service_arn().unwrap_or_default().to_string(),
        desired_count: svc.desired_count().max(0) as u32,
        running_count: svc.running_count().max(0) as u32,
        settings: Settings {
            desired_count: (!autoscaled).then_some(svc.desired_count().max(0) as u32),
            task_definition: svc.task_definition().unwrap_or_default().to_string(),
            min_healthy: dc.and_then(|d| d.minimum_healthy_percent()).unwrap_or(100) as u32,
            max_percent: dc.and_then(|d| d.maximum_percent()).unwrap_or(200) as u32,
            circuit_breaker: cb.map_or((false, false), |c| (c.enable(), c.rollback())),
            placement_strategy: svc
                .placement_strategy()
                .iter()
                .map(|p| {
                    (
                        p.r#type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        p.field().map(str::to_string),
                    )
                })
                .collect(),
            placement_constraints: svc
                .placement_constraints()
                .iter()
                .map(|c| {
                    (
                        c.r#type()
                            .map(|t| t.as_str().to_string())
                            .unwrap_or_default(),
                        c.expression().map(str::to_string),
                    )
                })
                .collect(),
            capacity_strategy: capacity,
            subnets: vpc
                .map(|v| v.subnets().iter().cloned().collect())
                .unwrap_or_default(),
            security_groups: vpc
                .map(|v| v.security_groups().iter().cloned().collect())
                .unwrap_or_default(),
            assign_public_ip: vpc.and_then(|v| v.assign_public_ip())
                == Some(&AssignPublicIp::Enabled),
            load_balancer: svc.load_balancers().first().map(|l| {
                (
                    l.target_group_arn().unwrap_or_default().to_string(),
                    l.container_name().unwrap_or_default().to_string(),
                    l.container_port().unwrap_or_default().max(0) as u32,
                )
            }),
            strategy: observed_strategy(svc),
        },
        tags: crate::resources::shared::ecs_tags::to_map(svc.tags()),
        rollout,
        failed: svc
            .deployments()
            .iter()
            .filter(|d| d.rollout_state() == Some(&DeploymentRolloutState::Failed))
            .filter_map(|d| {
                Some((
                    d.task_definition()?.to_string(),
                    d.rollout_state_reason()
                        .unwrap_or("the deployment failed")
                        .to_string(),
                ))
            })
            .collect(),
    }
}

/// What differs, field by field, in plain words (pure).
pub fn differences(have: &Settings, want: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(h), Some(w)) = (have.desired_count, want.desired_count) {
        if h != w {
            out.push(format!("desiredCount: {h} -> {w}"));
        }
    }
    if have.task_definition != want.task_definition && !want.task_definition.is_empty() {
        out.push(format!(
            "taskDefinition: {} -> {}",
            short_arn(&have.task_definition),
            short_arn(&want.task_definition)
        ));
    }
    if (have.min_healthy, have.max_percent) != (want.min_healthy, want.max_percent) {
        out.push(format!(
            "deployment: {}%/{}% -> {}%/{}%",
            have.min_healthy, have.max_percent, want.min_healthy, want.max_percent
        ));
    }
    if have.circuit_breaker != want.circuit_breaker {
        out.push(format!(
            "circuitBreaker: enable {} rollback {} -> enable {} rollback {}",
            have.circuit_breaker.0,
            have.circuit_breaker.1,
            want.circuit_breaker.0,
            want.circuit_breaker.1
        ));
    }
    if have.placement_strategy != want.placement_strategy {
        out.push(format!(
            "placement strategy: {:?} -> {:?}",
            have.placement_strategy, want.placement_strategy
        ));
    }
    if have.placement_constraints != want.placement_constraints {
        out.push("placement constraints changed".to_string());
    }
    if !want.capacity_strategy.is_empty() && have.capacity_strategy != want.capacity_strategy {
        out.push(format!(
            "capacityProviderStrategy: {:?} -> {:?}",
            have.capacity_strategy, want.capacity_strategy
        ));
    }
    if (&have.subnets, &have.security_groups, have.assign_public_ip)
        != (&want.subnets, &want.security_groups, want.assign_public_ip)
    {
        out.push("network configuration changed".to_string());
    }
    strategy_differences(&have.strategy, &want.strategy, &mut out);
    if want.load_balancer.is_some() && lb_key(have) != lb_key(want) {
        out.push(format!(
            "load balancer: {} -> {}",
            have.load_balancer
                .as_ref()
                .map_or("none".to_string(), |l| short_arn(&l.0)),
            want.load_balancer
                .as_ref()
                .map_or("none".to_string(), |l| short_arn(&l.0))
        ));
    }
    out
}

fn short_arn(arn: &str) -> String {
    arn.rsplit(['/', ':'])
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(":")
}

/// DescribeServices' limit of services per call.
pub const DESCRIBE_SERVICES_BATCH: usize = 10;

/// DescribeServices of `names` in `cluster` (with tags); a missing cluster is a dependency
/// not ready yet.
async fn describe(
    run: &SpecRun<'_>,
    cluster: &str,
    names: &[String],
) -> Result<aws_sdk_ecs::operation::describe_services::DescribeServicesOutput, ResourceError> {
    let out = run
        .aws
        .read(
            Service::Ecs,
            "DescribeServices",
            &names.join(","),
            run.aws
                .ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(names.to_vec()))
                .include(ServiceField::Tags)
                .send(),
        )
        .await;
    match out {
        Err(e) if e.code() == Some("ClusterNotFoundException") => Err(ResourceError::Dependency(
            format!("ecs cluster {cluster} does not exist yet (its ClusterSpec has not converged)"),
        )),
        other => other,
    }
}

/// The services asked of one cluster, by name: `None` when absent or INACTIVE.
type Batch = std::collections::HashMap<String, Option<AwsService>>;

/// The services `names` of `cluster`, [`DESCRIBE_SERVICES_BATCH`] per call (a resync wave's
/// read, shared by the ServiceSpecs of the cluster).
async fn describe_batch(
    run: &SpecRun<'_>,
    cluster: &str,
    names: Vec<String>,
) -> Result<Batch, ResourceError> {
    let mut out: Batch = names.iter().map(|n| (n.clone(), None)).collect();
    for chunk in names.chunks(DESCRIBE_SERVICES_BATCH) {
        for s in describe(run, cluster, chunk).await?.services() {
            if s.status() == Some("INACTIVE") {
                continue;
            }
            if let Some(slot @ None) = s.service_name().and_then(|n| out.get_mut(n)) {
                *slot = Some(s.clone());
            }
        }
    }
    Ok(out)
}

/// Read the service; `None` when absent or INACTIVE. In a resync wave, from one batched read
/// of every service the cluster's ServiceSpecs name.
pub async fn observe(
    run: &SpecRun<'_>,
    cluster: &str,
    name: &str,
    autoscaled: bool,
) -> Result<Option<Observed>, ResourceError> {
    let entry = Entry::EcsServices(cluster.to_string());
    let batch = run
        .cached(entry, |specs| {
            describe_batch(run, cluster, services_of_cluster(&specs, cluster))
        })
        .await;
    if let Some(batch) = batch {
        // A service the batch did not ask for (a spec newer than the wave) is read alone.
        if let Some(found) = batch?.get(name) {
            return Ok(found.as_ref().map(|s| observed_from(s, autoscaled)));
        }
    }
    let out = describe(run, cluster, &[name.to_string()]).await?;
    Ok(out
        .services()
        .iter()
        .find(|s| s.status() != Some("INACTIVE"))
        .map(|s| observed_from(s, autoscaled)))
}

/// The deployment configuration `s` asks for. `had_alarms`: the service has rollback alarms
/// now, so a configuration without them says so (alarms off) rather than leaving them out.
fn deployment_config(
    s: &Settings,
    had_alarms: bool,
) -> Result<DeploymentConfiguration, ResourceError> {
    let st = s.strategy.used();
    let alarms = match &st.alarms {
        Some(names) => Some(
            DeploymentAlarms::builder()
                .set_alarm_names(Some(names.iter().cloned().collect()))
                .enable(true)
                .rollback(true),
        ),
        None if had_alarms => Some(
            DeploymentAlarms::builder()
                .set_alarm_names(Some(Vec::new()))
                .enable(false)
                .rollback(false),
        ),
        None => None,
    }
    .map(|b| b.build())
    .transpose()
    .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?;
    let mut b = DeploymentConfiguration::builder()
        .minimum_healthy_percent(s.min_healthy as i32)
        .maximum_percent(s.max_percent as i32)
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(s.circuit_breaker.0)
                .rollback(s.circuit_breaker.1)
                .build(),
        )
        .strategy(AwsStrategy::from(st.name.as_str()))
        .set_alarms(alarms)
        .set_bake_time_in_minutes(st.bake_time.map(|b| b as i32));
    if let Some((p, bake)) = st.canary {
        b = b.canary_configuration(
            CanaryConfiguration::builder()
                .canary_percent(p as f64 / 10.0)
                .canary_bake_time_in_minutes(bake as i32)
                .build(),
        );
    }
    if let Some((p, bake)) = st.linear {
        b = b.linear_configuration(
            LinearConfiguration::builder()
                .step_percent(p as f64 / 10.0)
                .step_bake_time_in_minutes(bake as i32)
                .build(),
        );
    }
    for h in &st.hooks {
        b = b.lifecycle_hooks(
            DeploymentLifecycleHook::builder()
                .target_type(DeploymentLifecycleHookTargetType::from(
                    h.target_type.as_str(),
                ))
                .set_hook_target_arn(h.target.clone())
                .set_role_arn(h.role.clone())
                .set_lifecycle_stages(Some(
                    h.stages
                        .iter()
                        .map(|s| DeploymentLifecycleHookStage::from(s.as_str()))
                        .collect(),
                ))
                .timeout_configuration(
                    DeploymentLifecycleHookTimeoutConfiguration::builder()
                        .timeout_in_minutes(h.timeout_minutes as i32)
                        .action(h.on_timeout.as_str().into())
                        .build(),
                )
                .build(),
        );
    }
    Ok(b.build())
}

fn network(s: &Settings) -> Result<NetworkConfiguration, ResourceError> {
    Ok(NetworkConfiguration::builder()
        .awsvpc_configuration(
            AwsVpcConfiguration::builder()
                .set_subnets(Some(s.subnets.iter().cloned().collect()))
                .set_security_groups(Some(s.security_groups.iter().cloned().collect()))
                .assign_public_ip(if s.assign_public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?,
        )
        .build())
}

fn placement(s: &Settings) -> (Vec<PlacementStrategy>, Vec<PlacementConstraint>) {
    let strategy = s
        .placement_strategy
        .iter()
        .map(|(t, f)| {
            PlacementStrategy::builder()
                .r#type(PlacementStrategyType::from(t.as_str()))
                .set_field(f.clone())
                .build()
        })
        .collect();
    let constraints = s
        .placement_constraints
        .iter()
        .map(|(t, e)| {
            PlacementConstraint::builder()
                .r#type(PlacementConstraintType::from(t.as_str()))
                .set_expression(e.clone())
                .build()
        })
        .collect();
    (strategy, constraints)
}

fn capacity(s: &Settings) -> Result<Vec<AwsStrategyItem>, ResourceError> {
    s.capacity_strategy
        .iter()
        .map(|(p, w, b)| {
            AwsStrategyItem::builder()
                .capacity_provider(p)
                .weight(*w as i32)
                .base(*b as i32)
                .build()
                .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))
        })
        .collect()
}

fn load_balancers(s: &Settings) -> Vec<LoadBalancer> {
    s.load_balancer
        .iter()
        .map(|(tg, c, p)| {
            LoadBalancer::builder()
                .target_group_arn(tg)
                .container_name(c)
                .container_port(*p as i32)
                .set_advanced_configuration(s.strategy.advanced.as_ref().map(|a| {
                    AdvancedConfiguration::builder()
                        .alternate_target_group_arn(&a.alternate_target_group)
                        .production_listener_rule(&a.production_rule)
                        .set_test_listener_rule(a.test_rule.clone())
                        .role_arn(&a.role)
                        .build()
                }))
                .build()
        })
        .collect()
}

/// Degraded, `RolloutComplete=False` with reason `RolledBack`, saying `why`.
fn rolled_back_report(run: &mut SpecRun<'_>, why: String) {
    run.condition(ConditionReport::new(
        "RolloutComplete",
        false,
        "RolledBack",
        why.clone(),
    ));
    run.degrade(why);
}

/// Report the rollout: Progressing (a wait, at the rollout poll) while in progress, Degraded
/// when it failed or ECS rolled it back (reason `RolledBack`, naming the alarm or the circuit
/// breaker; looked at again while ECS is still at it). `view`: the newest service deployment,
/// where the endpoint reports them.
fn follow_rollout(
    run: &mut SpecRun<'_>,
    o: &Observed,
    desired_count: u32,
    view: Option<&deployments::View>,
) -> Pending {
    let poll = run.aws.rollout_poll.interval();
    if let Some(v) = view {
        if let Some(why) = &v.rollback {
            rolled_back_report(run, format!("ECS rolled the deployment back: {why}"));
            if v.in_progress() || v.status == "ROLLBACK_IN_PROGRESS" {
                return Pending::requeue(poll);
            }
            return Pending::settled();
        }
        if v.in_progress() {
            let why = format!("rollout in progress: {}", v.progress());
            run.condition(ConditionReport::new(
                "RolloutComplete",
                false,
                if v.paused() { "Paused" } else { "InProgress" },
                why.clone(),
            ));
            return Pending::wait(why, poll);
        }
    }
    match &o.rollout {
        Rollout::Failed(reason) => {
            run.condition(ConditionReport::new(
                "RolloutComplete",
                false,
                "RolloutFailed",
                reason.clone(),
            ));
            run.degrade(format!("deployment failed: {reason}"));
            Pending::settled()
        }
        Rollout::InProgress { failed_tasks } if *failed_tasks > 0 => {
            let why = format!(
                "{failed_tasks} task(s) of the new deployment failed to start; {} of {} running",
                o.running_count, desired_count
            );
            run.condition(ConditionReport::new(
                "RolloutComplete",
                false,
                "TasksFailing",
                why.clone(),
            ));
            run.degrade(why);
            Pending::requeue(poll)
        }
        Rollout::Completed if o.running_count >= desired_count => {
            run.condition(ConditionReport::new(
                "RolloutComplete",
                true,
                "Completed",
                format!("{} of {} tasks running", o.running_count, desired_count),
            ));
            Pending::settled()
        }
        _ => {
            let why = format!(
                "rollout in progress: {} of {} tasks running",
                o.running_count, desired_count
            );
            run.condition(ConditionReport::new(
                "RolloutComplete",
                false,
                "InProgress",
                why.clone(),
            ));
            Pending::wait(why, poll)
        }
    }
}

/// Why ECS rolled back the revision `task_definition` of service `name`, if it did: a
/// deployment of it that DescribeServices lists as failed (while ECS rolls it back), or the
/// newest service deployment rolled back with that revision as its target (where AWS reports
/// service deployments: one DescribeServiceRevisions names the target's task definition).
async fn rolled_back(
    run: &SpecRun<'_>,
    name: &str,
    o: &Observed,
    task_definition: &str,
    view: Option<&deployments::View>,
) -> Result<Option<String>, ResourceError> {
    let revision = view
        .filter(|v| v.rolled_back() && rollback_reason(o, task_definition, None, None).is_none())
        .and_then(|v| v.target_revision.as_deref());
    let target = match revision {
        Some(r) => deployments::revision_task_definition(run, name, r).await?,
        None => None,
    };
    Ok(rollback_reason(o, task_definition, view, target.as_deref()))
}

/// Why ECS rolled back `task_definition` (pure): DescribeServices lists a failed deployment of
/// it, or `view` (the newest service deployment) rolled back away from `target`, its target
/// revision's task definition, and that is `task_definition`.
fn rollback_reason(
    o: &Observed,
    task_definition: &str,
    view: Option<&deployments::View>,
    target: Option<&str>,
) -> Option<String> {
    if let Some((_, reason)) = o.failed.iter().find(|(td, _)| td == task_definition) {
        return Some(reason.clone());
    }
    let v = view.filter(|v| v.rolled_back())?;
    (target == Some(task_definition)).then(|| v.rollback.clone().unwrap_or_default())
}

/// A spec's ECS service, as the generic driver takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub cluster: String,
    pub name: String,
    pub want: Settings,
    /// The count to create with (the spec's, or the autoscaling minimum).
    pub initial_count: u32,
}

impl Target {
    fn resource(&self) -> String {
        format!("ecs service {}", self.name)
    }
}

/// What the driver observes of a [`Target`] ([`look`]): the service, the newest service
/// deployment (read while a rollout may be under way or before a change of revision, where
/// AWS reports service deployments), and why ECS rolled back the revision the spec asks for,
/// if it did.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub service: Observed,
    pub view: Option<deployments::View>,
    pub rolled_back: Option<String>,
}

/// The steps (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Adopted: the ownership tags it lacks.
    Tag(std::collections::BTreeMap<String, String>),
    Create,
    /// UpdateService with [`effective`] settings.
    Update,
}

/// What the reconcile hands on: the service's ARN (empty while only planning its create),
/// what was found, and what the steps did.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployed {
    pub arn: String,
    pub found: Option<Found>,
    pub created: bool,
    pub updated: bool,
}

/// The settings to apply (pure): the spec's, except that a revision ECS rolled back is not
/// deployed again: the service keeps the revision ECS restored, the rest of the spec is still
/// applied, and the spec is Degraded `RolledBack` until it asks for another revision.
pub fn effective(t: &Target, o: &Found) -> Settings {
    match &o.rolled_back {
        Some(_) => Settings {
            task_definition: o.service.settings.task_definition.clone(),
            ..t.want.clone()
        },
        None => t.want.clone(),
    }
}

/// What differs between the service and the [`effective`] settings (pure).
fn changes_to_apply(t: &Target, o: &Found) -> Vec<String> {
    differences(&o.service.settings, &effective(t, o))
}

/// The deployment a hook has paused, when the spec differs from the service (`diffs`, pure):
/// such a change is left to `rollout continue`, since it would start another deployment over
/// it.
fn paused_over<'a>(o: &'a Found, diffs: &[String]) -> Option<&'a deployments::View> {
    o.view.as_ref().filter(|v| !diffs.is_empty() && v.paused())
}

/// Read what the driver needs of `t` beyond the service itself (`service`, read once by the
/// pipeline, since the task definition step needs it too). The claim comes first, so a
/// service of another owner costs no deployment read.
pub async fn look(
    run: &SpecRun<'_>,
    t: &Target,
    service: Option<Observed>,
) -> Result<Option<Found>, ResourceError> {
    let Some(o) = service else {
        return Ok(None);
    };
    run.claim(&t.resource(), &o.tags)?;
    let want = &t.want.task_definition;
    let changes_revision = !want.is_empty() && o.settings.task_definition != *want;
    let view = if o.rollout != Rollout::Completed || changes_revision {
        Box::pin(deployments::latest(run, &t.cluster, &t.name)).await?
    } else {
        None
    };
    let rolled_back = if changes_revision {
        Box::pin(rolled_back(run, &t.name, &o, want, view.as_ref())).await?
    } else {
        None
    };
    Ok(Some(Found {
        service: o,
        view,
        rolled_back,
    }))
}

async fn create(run: &SpecRun<'_>, t: &Target) -> Result<String, ResourceError> {
    let want = &t.want;
    let (strategy, constraints) = placement(want);
    let mut req = run
        .aws
        .ecs
        .create_service()
        .cluster(&t.cluster)
        .service_name(&t.name)
        .task_definition(&want.task_definition)
        .desired_count(t.initial_count as i32)
        .deployment_configuration(deployment_config(want, false)?)
        .set_placement_strategy(Some(strategy))
        .set_placement_constraints(Some(constraints))
        .network_configuration(network(want)?)
        .set_load_balancers(Some(load_balancers(want)))
        .propagate_tags(PropagateTags::Service)
        .enable_ecs_managed_tags(true);
    if !want.capacity_strategy.is_empty() {
        req = req.set_capacity_provider_strategy(Some(capacity(want)?));
    }
    req = req.set_tags(Some(ecs_tags::of_map(run.tags())));
    let out = run
        .aws
        .write(Service::Ecs, "CreateService", &t.name, req.send())
        .await?;
    let arn = out.service().and_then(|s| s.service_arn());
    Ok(arn.unwrap_or_default().to_string())
}

async fn update(run: &SpecRun<'_>, t: &Target, o: &Found) -> Result<(), ResourceError> {
    let want = &effective(t, o);
    let have = &o.service.settings;
    let (strategy, constraints) = placement(want);
    let mut req = run
        .aws
        .ecs
        .update_service()
        .cluster(&t.cluster)
        .service(&t.name)
        .deployment_configuration(deployment_config(want, have.strategy.alarms.is_some())?)
        .set_placement_strategy(Some(strategy))
        .set_placement_constraints(Some(constraints))
        .network_configuration(network(want)?);
    if let Some(n) = want.desired_count {
        req = req.desired_count(n as i32);
    }
    if !want.task_definition.is_empty() {
        req = req.task_definition(&want.task_definition);
    }
    if !want.capacity_strategy.is_empty() {
        req = req.set_capacity_provider_strategy(Some(capacity(want)?));
    }
    if want.load_balancer.is_some() {
        req = req.set_load_balancers(Some(load_balancers_for(Some(have), want)));
    }
    run.aws
        .write(Service::Ecs, "UpdateService", &t.name, req.send())
        .await?;
    Ok(())
}

crate::resources::kind::kind!(
    /// An ECS service, as the generic driver sees it.
    EcsServiceKind, TYPE, 2, delete, "ECS services", gc::list_owned
);

/// The generic driver's view of a spec's ECS service: created, or updated in place with one
/// UpdateService (never while a hook has paused a deployment), its ownership tags added when
/// adopted. What the rollout is doing is reported after the driver by [`report`].
impl Managed for EcsServiceKind {
    crate::resources::kind::managed_types!(Target, Found, Step, Deployed);

    fn label(t: &Target) -> String {
        t.resource()
    }

    async fn observe(run: &SpecRun<'_>, t: &Target) -> Result<Option<Found>, ResourceError> {
        let autoscaled = t.want.desired_count.is_none();
        let service = observe(run, &t.cluster, &t.name, autoscaled).await?;
        look(run, t, service).await
    }

    fn tags(o: &Found) -> &std::collections::BTreeMap<String, String> {
        &o.service.tags
    }

    fn plan(
        t: &Target,
        o: Option<&Found>,
        missing: std::collections::BTreeMap<String, String>,
    ) -> Plan<Step> {
        let resource = t.resource();
        let Some(o) = o else {
            let change = Change::create(&resource, format!("{} task(s)", t.initial_count));
            return Plan::steps(vec![(Step::Create, change)]);
        };
        let mut steps = Vec::new();
        if !missing.is_empty() {
            let change = Change::update(&resource, "tags: + ownership");
            steps.push((Step::Tag(missing), change));
        }
        let diffs = changes_to_apply(t, o);
        if !diffs.is_empty() && paused_over(o, &diffs).is_none() {
            steps.push((Step::Update, Change::update(&resource, diffs.join("; "))));
        }
        Plan::steps(steps)
    }

    fn output(_: &Target, o: Option<&Found>) -> Deployed {
        Deployed {
            arn: o.map(|o| o.service.arn.clone()).unwrap_or_default(),
            found: o.cloned(),
            created: false,
            updated: false,
        }
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d: t, o, out } = at;
        match (step, o) {
            (Step::Tag(missing), _) => ecs_tags::put(run, &t.resource(), &out.arn, missing).await?,
            (Step::Create, _) => {
                out.arn = create(run, t).await?;
                out.created = true;
            }
            (Step::Update, Some(o)) => {
                update(run, t, o).await?;
                out.updated = true;
            }
            (Step::Update, None) => {}
        }
        Ok(())
    }

    fn id(_: &Target, out: &Deployed) -> Option<String> {
        crate::resources::kind::arn_id(&out.arn)
    }
}

/// After the driver: report what the service's rollout is doing, and hand back when to look
/// again (never waits). Progressing while a rollout is under way (first [`FIRST_LOOK`] after
/// a create or update), Degraded `RolledBack` when ECS rolled the revision back (looked at
/// again while ECS is still at it), Paused while a hook holds a deployment the spec would
/// change.
pub fn report(run: &mut SpecRun<'_>, t: &Target, out: &Deployed) -> Pending {
    let first_look = run.aws.rollout_poll.first_look();
    let Some(o) = &out.found else {
        return match out.created {
            true => Pending::wait("service created; rollout starting", first_look),
            false => Pending::settled(),
        };
    };
    if let Some(why) = &o.rolled_back {
        rolled_back_report(
            run,
            format!(
                "ECS rolled back {} ({why}); not deploying it again: change the spec to deploy a new revision",
                short_arn(&t.want.task_definition)
            ),
        );
    }
    let poll = run.aws.rollout_poll.interval();
    let diffs = changes_to_apply(t, o);
    if let Some(v) = paused_over(o, &diffs) {
        let why = format!(
            "not applying ({}) while the deployment is paused by a hook at {}: run `ecs-operator rollout continue` or `rollout stop`",
            diffs.join("; "),
            v.stage.as_deref().unwrap_or("its stage")
        );
        run.condition(ConditionReport::new(
            "RolloutComplete",
            false,
            "Paused",
            why.clone(),
        ));
        return Pending::wait(why, poll);
    }
    if o.rolled_back.is_some() {
        // Reported above; a rollback still under way is looked at again.
        let rolling_back = o
            .view
            .as_ref()
            .is_some_and(|v| v.status != "ROLLBACK_SUCCESSFUL")
            || o.service.rollout != Rollout::Completed;
        if out.updated || rolling_back {
            Pending::requeue(poll)
        } else {
            Pending::settled()
        }
    } else if out.updated {
        Pending::wait("service updated; rollout starting", first_look)
    } else {
        let count = t.want.desired_count.unwrap_or(o.service.desired_count);
        follow_rollout(run, &o.service, count, o.view.as_ref())
    }
}

/// `arn:aws:ecs:region:acct:service/cluster/name` -> (cluster, name).
fn service_parts(arn: &str) -> Option<(String, String)> {
    let rest = arn.split_once(":service/")?.1;
    let (cluster, name) = rest.split_once('/')?;
    Some((cluster.to_string(), name.to_string()))
}

/// Teardown of the ECS service (`ecs:service`, its ARN): scale to 0, delete, and follow until
/// INACTIVE. Returns whether it is gone (or released).
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some((cluster, name)) = service_parts(arn) else {
        return Ok(Gone::Yes);
    };
    let out = run
        .aws
        .read(
            Service::Ecs,
            "DescribeServices",
            &name,
            run.aws
                .ecs
                .describe_services()
                .cluster(&cluster)
                .services(&name)
                .include(ServiceField::Tags)
                .send(),
        )
        .await;
    let Some(out) = out.absent_if("ClusterNotFoundException")? else {
        return Ok(Gone::Yes);
    };
    let Some(svc) = out.services().first() else {
        return Ok(Gone::Yes);
    };
    match svc.status() {
        Some("INACTIVE") | None => return Ok(Gone::Yes),
        Some("DRAINING") => {
            return Ok(Gone::not_yet(
                format!("ecs service {name} is draining"),
                DRAIN_POLL,
            ));
        }
        _ => {}
    }
    if !ecs_tags::is_ours(run, svc.tags()) {
        // Not ours (any more): leave it alone.
        return Ok(Gone::Yes);
    }
    if retain {
        ecs_tags::release(run, arn, "ecs service").await?;
        return Ok(Gone::Yes);
    }
    if svc.desired_count() > 0
        && run.plan(Change::update(
            format!("ecs service {name}"),
            format!(
                "desiredCount: {} -> 0 (before deletion)",
                svc.desired_count()
            ),
        ))
    {
        run.aws
            .write(
                Service::Ecs,
                "UpdateService",
                &name,
                run.aws
                    .ecs
                    .update_service()
                    .cluster(&cluster)
                    .service(&name)
                    .desired_count(0)
                    .send(),
            )
            .await?;
    }
    if run.plan(Change::delete(format!("ecs service {name}"), "")) {
        run.aws
            .write(
                Service::Ecs,
                "DeleteService",
                &name,
                run.aws
                    .ecs
                    .delete_service()
                    .cluster(&cluster)
                    .service(&name)
                    .force(true)
                    .send(),
            )
            .await?;
    }
    Ok(Gone::not_yet(
        format!("ecs service {name} is draining"),
        DRAIN_POLL,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            desired_count: Some(2),
            task_definition: "arn:aws:ecs:r:1:task-definition/web:3".into(),
            min_healthy: 100,
            max_percent: 200,
            circuit_breaker: (true, true),
            placement_strategy: vec![("spread".into(), Some("instanceId".into()))],
            placement_constraints: BTreeSet::new(),
            capacity_strategy: vec![],
            subnets: BTreeSet::from(["subnet-a".to_string()]),
            security_groups: BTreeSet::from(["sg-1".to_string()]),
            assign_public_ip: false,
            load_balancer: None,
            strategy: Strategy::default(),
        }
    }

    #[test]
    fn the_driver_creates_updates_in_one_call_and_never_redeploys_a_rolled_back_revision() {
        type K = EcsServiceKind;
        let t = Target {
            cluster: "prod".into(),
            name: "web".into(),
            want: settings(),
            initial_count: 2,
        };
        let steps = |o: Option<&Found>, missing: std::collections::BTreeMap<String, String>| {
            let plan = <K as Managed>::plan(&t, o, missing);
            plan.steps.into_iter().map(|s| s.0).collect::<Vec<_>>()
        };
        let none = <K as Managed>::plan(&t, None, Default::default());
        assert_eq!(none.steps[0].1.to_string(), "+ ecs service web (2 task(s))");
        let found = |settings: Settings| Found {
            service: Observed {
                arn: "arn:aws:ecs:r:1:service/prod/web".into(),
                settings,
                desired_count: 2,
                running_count: 2,
                tags: Default::default(),
                rollout: Rollout::Completed,
                failed: Vec::new(),
            },
            view: None,
            rolled_back: None,
        };
        assert!(steps(Some(&found(settings())), Default::default()).is_empty());
        let missing = std::collections::BTreeMap::from([("k".to_string(), "v".to_string())]);
        assert_eq!(
            steps(Some(&found(settings())), missing.clone()),
            vec![Step::Tag(missing)]
        );
        // The count and the revision differ: one UpdateService.
        let mut old = settings();
        old.desired_count = Some(1);
        old.task_definition = "arn:aws:ecs:r:1:task-definition/web:2".into();
        assert_eq!(
            steps(Some(&found(old.clone())), Default::default()),
            vec![Step::Update]
        );
        // ECS rolled web:3 back: the service keeps web:2, the count is still applied.
        let rolled = Found {
            rolled_back: Some("alarm web-5xx".into()),
            ..found(old.clone())
        };
        assert_eq!(effective(&t, &rolled).task_definition, old.task_definition);
        assert_eq!(effective(&t, &rolled).desired_count, Some(2));
        assert_eq!(steps(Some(&rolled), Default::default()), vec![Step::Update]);
        // Only the revision differed: nothing to do while it is the rolled-back one.
        let mut only_revision = settings();
        only_revision.task_definition = old.task_definition.clone();
        let rolled = Found {
            rolled_back: Some("alarm web-5xx".into()),
            ..found(only_revision)
        };
        assert!(steps(Some(&rolled), Default::default()).is_empty());
        // A deployment paused by a hook is not changed over.
        let paused = Found {
            view: Some(deployments::View {
                status: "IN_PROGRESS".into(),
                paused_hooks: vec!["hook-1".into()],
                ..Default::default()
            }),
            ..found(old)
        };
        assert!(paused_over(&paused, &changes_to_apply(&t, &paused)).is_some());
        assert!(steps(Some(&paused), Default::default()).is_empty());
    }

    #[test]
    fn a_count_owned_by_autoscaling_is_never_a_difference() {
        let mut have = settings();
        have.desired_count = None;
        let mut want = settings();
        want.desired_count = None;
        assert!(differences(&have, &want).is_empty());
    }

    #[test]
    fn a_disabled_circuit_breaker_is_reported_in_plain_words() {
        let mut have = settings();
        have.circuit_breaker = (false, false);
        assert_eq!(
            differences(&have, &settings()),
            vec!["circuitBreaker: enable false rollback false -> enable true rollback true"]
        );
    }

    #[test]
    fn an_empty_strategy_leaves_the_cluster_default_alone() {
        let mut have = settings();
        have.capacity_strategy = vec![("prod-ec2".into(), 1, 0)];
        assert!(differences(&have, &settings()).is_empty());
    }

    #[test]
    fn a_failed_deployment_ecs_is_rolling_back_is_remembered_with_its_reason() {
        use aws_sdk_ecs::types::Deployment;
        // DescribeServices while the circuit breaker rolls `web:4` back to `web:3`: the
        // rollback is PRIMARY, the failed deployment stays listed as ACTIVE.
        let svc = AwsService::builder()
            .service_arn("arn:aws:ecs:eu-west-1:123456789012:service/prod/web")
            .task_definition("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3")
            .desired_count(2)
            .running_count(1)
            .deployments(
                Deployment::builder()
                    .id("ecs-svc/2")
                    .status("PRIMARY")
                    .task_definition("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3")
                    .rollout_state(DeploymentRolloutState::InProgress)
                    .build(),
            )
            .deployments(
                Deployment::builder()
                    .id("ecs-svc/1")
                    .status("ACTIVE")
                    .task_definition("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:4")
                    .rollout_state(DeploymentRolloutState::Failed)
                    .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
                    .failed_tasks(3)
                    .build(),
            )
            .build();
        let o = observed_from(&svc, false);
        assert_eq!(
            o.failed,
            vec![(
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:4".to_string(),
                "ECS deployment circuit breaker: tasks failed to start.".to_string()
            )]
        );
        assert_eq!(o.rollout, Rollout::InProgress { failed_tasks: 0 });
        assert_eq!(
            rollback_reason(
                &o,
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:4",
                None,
                None
            )
            .as_deref(),
            Some("ECS deployment circuit breaker: tasks failed to start.")
        );
        assert_eq!(
            rollback_reason(
                &o,
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:5",
                None,
                None
            ),
            None,
            "a revision that never failed is deployed"
        );
    }

    #[test]
    fn a_revision_is_held_back_only_when_the_newest_deployment_rolled_back_away_from_it() {
        let o = Observed {
            arn: "arn:aws:ecs:eu-west-1:123456789012:service/prod/web".into(),
            settings: settings(),
            desired_count: 2,
            running_count: 2,
            tags: Default::default(),
            rollout: Rollout::Completed,
            failed: vec![],
        };
        let rolled = deployments::View {
            status: "ROLLBACK_SUCCESSFUL".into(),
            rollback: Some("alarm prod-web-http5xxPercent fired".into()),
            target_revision: Some(
                "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/7".into(),
            ),
            ..Default::default()
        };
        let td4 = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:4";
        assert_eq!(
            rollback_reason(&o, td4, Some(&rolled), Some(td4)).as_deref(),
            Some("alarm prod-web-http5xxPercent fired")
        );
        // The spec moved on to another revision: deploy it.
        assert_eq!(
            rollback_reason(
                &o,
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:5",
                Some(&rolled),
                Some(td4)
            ),
            None
        );
        // A deployment that succeeded holds nothing back.
        let ok = deployments::View {
            status: "SUCCESSFUL".into(),
            ..rolled.clone()
        };
        let ok = deployments::View {
            rollback: None,
            ..ok
        };
        assert_eq!(rollback_reason(&o, td4, Some(&ok), Some(td4)), None);
        // Where the revision cannot be named (no DescribeServiceRevisions), nothing is held back.
        assert_eq!(rollback_reason(&o, td4, Some(&rolled), None), None);
    }

    #[test]
    fn service_arns_name_their_cluster() {
        assert_eq!(
            service_parts("arn:aws:ecs:eu-west-1:1:service/prod/web"),
            Some(("prod".into(), "web".into()))
        );
    }
}

//! The ECS service: created and updated in place (desired count unless autoscaling owns it, task
//! definition, deployment configuration with the circuit breaker, placement, capacity provider
//! strategy, network configuration, load balancer attachment, tag propagation), and its rollout
//! followed by requeue, never by blocking: every [`ROLLOUT_POLL`] without an events queue, every
//! [`ROLLOUT_POLL_WITH_EVENTS`] while one is read ([`RolloutPoll`]).

use std::collections::BTreeSet;

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, CapacityProviderStrategyItem as AwsStrategyItem,
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRolloutState, LoadBalancer,
    NetworkConfiguration, PlacementConstraint, PlacementConstraintType, PlacementStrategy,
    PlacementStrategyType, PropagateTags, Service as AwsService, ServiceField, Tag,
};

use crate::aws::{CallClass, Service};
use crate::reconcile::ConditionReport;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::ecs_tags;
use crate::resources::shared::tags::RELEASED_TAG;
use crate::resources::shared::DRAIN_POLL;
use crate::resources::snapshot::{service_specs, Entry};
use crate::resources::ResourceError;
use crate::spec::types::{
    PlacementConstraintType as SpecConstraint, PlacementStrategyType as SpecStrategy, ServiceSpec,
};
use crate::spec::{Kind, Spec, SpecKey, ValidSpecs};

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "ecs:service";

pub use crate::resources::rollout_poll::{RolloutPoll, ROLLOUT_POLL, ROLLOUT_POLL_WITH_EVENTS};

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
            match specs
                .get(&SpecKey::new(Kind::ClusterSpec, svc.spec.cluster.clone()))
                .map(|c| c.as_ref())
            {
                Some(Spec::Cluster(c)) => super::ecs_cluster::cluster_name(c) == cluster,
                _ => false,
            }
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
pub fn desired(spec: &ServiceSpec, task_definition: &str, target_group: Option<&str>) -> Settings {
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
        circuit_breaker: (
            s.deployment.circuit_breaker.enable,
            s.deployment.circuit_breaker.rollback,
        ),
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
        },
        tags: crate::resources::shared::ecs_tags::to_map(svc.tags()),
        rollout,
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
    if want.load_balancer.is_some() && have.load_balancer != want.load_balancer {
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
        .call(
            Service::Ecs,
            CallClass::Read,
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

fn deployment_config(s: &Settings) -> DeploymentConfiguration {
    DeploymentConfiguration::builder()
        .minimum_healthy_percent(s.min_healthy as i32)
        .maximum_percent(s.max_percent as i32)
        .deployment_circuit_breaker(
            DeploymentCircuitBreaker::builder()
                .enable(s.circuit_breaker.0)
                .rollback(s.circuit_breaker.1)
                .build(),
        )
        .build()
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
                .build()
        })
        .collect()
}

/// Report the rollout: Progressing (requeue) while in progress, Degraded when it failed.
fn follow_rollout(run: &mut SpecRun<'_>, o: &Observed, desired_count: u32) {
    let poll = run.aws.rollout_poll.interval();
    match &o.rollout {
        Rollout::Failed(reason) => {
            run.condition(ConditionReport::new(
                "RolloutComplete",
                false,
                "RolloutFailed",
                reason.clone(),
            ));
            run.degrade(format!("deployment failed: {reason}"));
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
            run.requeue_after = Some(run.requeue_after.map_or(poll, |d| d.min(poll)));
        }
        Rollout::Completed if o.running_count >= desired_count => {
            run.condition(ConditionReport::new(
                "RolloutComplete",
                true,
                "Completed",
                format!("{} of {} tasks running", o.running_count, desired_count),
            ));
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
            run.wait(why, poll);
        }
    }
}

/// Create or update the service. `observed`: what [`observe`] read in this reconcile (read once,
/// since the task definition step needs it too); `initial_count`: the count to create with
/// (the spec's, or the autoscaling minimum).
pub async fn reconcile(
    run: &mut SpecRun<'_>,
    cluster: &str,
    name: &str,
    observed: Option<&Observed>,
    want: &Settings,
    initial_count: u32,
) -> Result<(), ResourceError> {
    let resource = format!("ecs service {name}");
    let Some(o) = observed else {
        if !run.plan(Change::create(
            &resource,
            format!("{initial_count} task(s)"),
        )) {
            return Ok(());
        }
        let (strategy, constraints) = placement(want);
        let mut req = run
            .aws
            .ecs
            .create_service()
            .cluster(cluster)
            .service_name(name)
            .task_definition(&want.task_definition)
            .desired_count(initial_count as i32)
            .deployment_configuration(deployment_config(want))
            .set_placement_strategy(Some(strategy))
            .set_placement_constraints(Some(constraints))
            .network_configuration(network(want)?)
            .set_load_balancers(Some(load_balancers(want)))
            .propagate_tags(PropagateTags::Service)
            .enable_ecs_managed_tags(true);
        if !want.capacity_strategy.is_empty() {
            req = req.set_capacity_provider_strategy(Some(capacity(want)?));
        }
        for (k, v) in run.tags() {
            req = req.tags(Tag::builder().key(k).value(v).build());
        }
        let out = run
            .aws
            .call(
                Service::Ecs,
                CallClass::Write,
                "CreateService",
                name,
                req.send(),
            )
            .await?;
        if let Some(arn) = out.service().and_then(|s| s.service_arn()) {
            run.resource(TYPE, arn);
        }
        let poll = run.aws.rollout_poll.interval();
        run.wait("service created; rollout starting", poll);
        return Ok(());
    };
    let missing = run.claim(&resource, &o.tags)?;
    run.resource(TYPE, o.arn.clone());
    crate::resources::shared::ecs_tags::add_missing(run, &resource, &o.arn, missing).await?;
    let diffs = differences(&o.settings, want);
    let mut updated = false;
    if !diffs.is_empty() && run.plan(Change::update(&resource, diffs.join("; "))) {
        let (strategy, constraints) = placement(want);
        let mut req = run
            .aws
            .ecs
            .update_service()
            .cluster(cluster)
            .service(name)
            .deployment_configuration(deployment_config(want))
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
            req = req.set_load_balancers(Some(load_balancers(want)));
        }
        run.aws
            .call(
                Service::Ecs,
                CallClass::Write,
                "UpdateService",
                name,
                req.send(),
            )
            .await?;
        updated = true;
    }
    if updated {
        let poll = run.aws.rollout_poll.interval();
        run.wait("service updated; rollout starting", poll);
    } else {
        let count = want.desired_count.unwrap_or(o.desired_count);
        follow_rollout(run, o, count);
    }
    Ok(())
}

/// `arn:aws:ecs:region:acct:service/cluster/name` -> (cluster, name).
fn service_parts(arn: &str) -> Option<(String, String)> {
    let rest = arn.split_once(":service/")?.1;
    let (cluster, name) = rest.split_once('/')?;
    Some((cluster.to_string(), name.to_string()))
}

/// Teardown of the ECS service (`ecs:service`, its ARN): scale to 0, delete, and follow until
/// INACTIVE. Returns whether it is gone (or released).
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<bool, ResourceError> {
    let Some((cluster, name)) = service_parts(arn) else {
        return Ok(true);
    };
    let out = run
        .aws
        .call(
            Service::Ecs,
            CallClass::Read,
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
    let out = match out {
        Ok(o) => o,
        Err(e) if e.code() == Some("ClusterNotFoundException") => return Ok(true),
        Err(e) => return Err(e),
    };
    let Some(svc) = out.services().first() else {
        return Ok(true);
    };
    match svc.status() {
        Some("INACTIVE") | None => return Ok(true),
        Some("DRAINING") => {
            run.wait(format!("ecs service {name} is draining"), DRAIN_POLL);
            return Ok(false);
        }
        _ => {}
    }
    if !ecs_tags::is_ours(run, svc.tags()) {
        // Not ours (any more): leave it alone.
        return Ok(true);
    }
    if retain {
        ecs_tags::release(run, arn, "ecs service", RELEASED_TAG).await?;
        return Ok(true);
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
            .call(
                Service::Ecs,
                CallClass::Write,
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
            .call(
                Service::Ecs,
                CallClass::Write,
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
    run.wait(format!("ecs service {name} is draining"), DRAIN_POLL);
    Ok(false)
}

crate::resources::kind::kind!(
    /// An ECS service, as the generic driver sees it.
    EcsServiceKind,
    TYPE,
    2,
    delete
);

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
        }
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
    fn service_arns_name_their_cluster() {
        assert_eq!(
            service_parts("arn:aws:ecs:eu-west-1:1:service/prod/web"),
            Some(("prod".into(), "web".into()))
        );
    }
}

//! Task definitions: the spec rendered to one comparable [`Rendered`] value; a new revision is
//! registered only when it differs from the service's current definition, compared after
//! normalising what AWS adds (host ports equal to container ports, `tcp`, `essential`, order of
//! environment entries...). Revisions are immutable, so they are cached by ARN forever.

mod gc;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, HealthCheck, KeyValuePair, LogConfiguration, LogDriver,
    NetworkMode, PortMapping, Secret, TaskDefinition, TaskDefinitionField, TaskDefinitionStatus,
    TransportProtocol,
};

use crate::aws::{CallClass, Service};
use crate::resources::error::Absent;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::ecs_tags;
use crate::resources::shared::tags::{ownership, Ownership};
use crate::resources::ResourceError;
use crate::spec::types::ServiceSpec;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "ecs:task-definition";

/// Everything of a task definition the spec decides, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub family: String,
    pub cpu: String,
    pub memory: String,
    pub fargate: bool,
    pub execution_role_arn: Option<String>,
    pub task_role_arn: Option<String>,
    pub container: Container,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    pub image: String,
    pub port: Option<u32>,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    /// command, interval, timeout, retries, start period.
    pub health_check: Option<(Vec<String>, u32, u32, u32, u32)>,
    /// awslogs group, region, stream prefix.
    pub logs: Option<(String, String, String)>,
}

/// The task family of a ServiceSpec: its name (unique per kind in a store).
pub fn family(spec: &ServiceSpec) -> String {
    spec.metadata.name.clone()
}

/// Whether the service runs on Fargate (its strategy names FARGATE or FARGATE_SPOT).
pub fn uses_fargate(spec: &ServiceSpec) -> bool {
    spec.spec
        .capacity_provider_strategy
        .iter()
        .any(|i| i.capacity_provider.starts_with("FARGATE"))
}

/// The image to run: `repository:tag` of the spec's own repository resolves to its URI;
/// anything else is used as written.
pub fn resolve_image(spec: &ServiceSpec, repository_uri: Option<&str>) -> String {
    let image = &spec.spec.container.image;
    if let (Some(repo), Some(uri)) = (&spec.spec.repository, repository_uri) {
        if let Some(rest) = image.strip_prefix(repo.name.as_str()) {
            if rest.is_empty() || rest.starts_with(':') || rest.starts_with('@') {
                return format!("{uri}{rest}");
            }
        }
    }
    image.clone()
}

/// Render the spec (pure). `repository_uri`: the URI of the spec's ECR repository, if any.
pub fn render(spec: &ServiceSpec, region: &str, repository_uri: Option<&str>) -> Rendered {
    let s = &spec.spec;
    let c = &s.container;
    Rendered {
        family: family(spec),
        cpu: c.cpu.to_string(),
        memory: c.memory.to_string(),
        fargate: uses_fargate(spec),
        execution_role_arn: s.execution_role_arn.clone(),
        task_role_arn: s.task_role_arn.clone(),
        container: Container {
            name: c.name.clone(),
            image: resolve_image(spec, repository_uri),
            port: c.port,
            environment: c.environment.clone(),
            secrets: c.secrets.clone(),
            health_check: c.health_check.as_ref().map(|h| {
                (
                    h.command.clone(),
                    h.interval_seconds,
                    h.timeout_seconds,
                    h.retries,
                    h.start_period_seconds,
                )
            }),
            logs: c
                .log_group
                .as_ref()
                .map(|g| (g.clone(), region.to_string(), spec.metadata.name.clone())),
        },
    }
}

/// Read an AWS task definition back into comparable form; `None` when it has no container the
/// spec could have produced (not one of ours).
pub fn from_aws(td: &TaskDefinition) -> Option<Rendered> {
    let c = td.container_definitions().first()?;
    let logs = c.log_configuration().and_then(|l| {
        if l.log_driver() != &LogDriver::Awslogs {
            return None;
        }
        let o = l.options()?;
        Some((
            o.get("awslogs-group")?.clone(),
            o.get("awslogs-region").cloned().unwrap_or_default(),
            o.get("awslogs-stream-prefix").cloned().unwrap_or_default(),
        ))
    });
    Some(Rendered {
        family: td.family().unwrap_or_default().to_string(),
        cpu: td.cpu().unwrap_or_default().to_string(),
        memory: td.memory().unwrap_or_default().to_string(),
        fargate: td
            .requires_compatibilities()
            .contains(&Compatibility::Fargate),
        execution_role_arn: td.execution_role_arn().map(str::to_string),
        task_role_arn: td.task_role_arn().map(str::to_string),
        container: Container {
            name: c.name().unwrap_or_default().to_string(),
            image: c.image().unwrap_or_default().to_string(),
            port: c
                .port_mappings()
                .first()
                .and_then(|p| p.container_port())
                .map(|p| p as u32),
            environment: c
                .environment()
                .iter()
                .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
                .collect(),
            secrets: c
                .secrets()
                .iter()
                .map(|s| (s.name().to_string(), s.value_from().to_string()))
                .collect(),
            health_check: c.health_check().map(|h| {
                (
                    h.command().to_vec(),
                    h.interval().unwrap_or(30) as u32,
                    h.timeout().unwrap_or(5) as u32,
                    h.retries().unwrap_or(3) as u32,
                    h.start_period().unwrap_or(0) as u32,
                )
            }),
            logs,
        },
    })
}

/// What differs, in plain words (pure; empty when equal).
pub fn differences(old: &Rendered, new: &Rendered) -> Vec<String> {
    let mut out = Vec::new();
    let field = |out: &mut Vec<String>, name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{name}: {a} -> {b}"));
        }
    };
    field(&mut out, "cpu", old.cpu.clone(), new.cpu.clone());
    field(&mut out, "memory", old.memory.clone(), new.memory.clone());
    field(
        &mut out,
        "fargate",
        old.fargate.to_string(),
        new.fargate.to_string(),
    );
    field(
        &mut out,
        "executionRoleArn",
        format!("{:?}", old.execution_role_arn),
        format!("{:?}", new.execution_role_arn),
    );
    field(
        &mut out,
        "taskRoleArn",
        format!("{:?}", old.task_role_arn),
        format!("{:?}", new.task_role_arn),
    );
    let (a, b) = (&old.container, &new.container);
    field(&mut out, "container name", a.name.clone(), b.name.clone());
    field(&mut out, "image", a.image.clone(), b.image.clone());
    field(
        &mut out,
        "port",
        format!("{:?}", a.port),
        format!("{:?}", b.port),
    );
    if a.environment != b.environment {
        let keys: Vec<_> = a
            .environment
            .keys()
            .chain(b.environment.keys())
            .filter(|k| a.environment.get(*k) != b.environment.get(*k))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        out.push(format!("environment: {} changed", keys.join(", ")));
    }
    if a.secrets != b.secrets {
        out.push("secrets changed".to_string());
    }
    field(
        &mut out,
        "healthCheck",
        format!("{:?}", a.health_check),
        format!("{:?}", b.health_check),
    );
    field(
        &mut out,
        "logs",
        format!("{:?}", a.logs),
        format!("{:?}", b.logs),
    );
    out
}

/// Task definitions by ARN: revisions never change, so one read each is enough.
#[derive(Debug, Default)]
pub struct RevisionCache {
    by_arn: Mutex<HashMap<String, Option<Rendered>>>,
}

impl RevisionCache {
    pub async fn get(
        &self,
        run: &SpecRun<'_>,
        arn: &str,
    ) -> Result<Option<Rendered>, ResourceError> {
        if let Some(hit) = self.by_arn.lock().expect("revision cache").get(arn) {
            return Ok(hit.clone());
        }
        let out = run
            .aws
            .read(
                Service::Ecs,
                "DescribeTaskDefinition",
                arn,
                run.aws
                    .ecs
                    .describe_task_definition()
                    .task_definition(arn)
                    .send(),
            )
            .await?;
        let rendered = out.task_definition().and_then(from_aws);
        self.by_arn
            .lock()
            .expect("revision cache")
            .insert(arn.to_string(), rendered.clone());
        Ok(rendered)
    }

    fn put(&self, arn: &str, rendered: &Rendered) {
        self.by_arn
            .lock()
            .expect("revision cache")
            .insert(arn.to_string(), Some(rendered.clone()));
    }
}

/// Register a revision of `want`; returns its ARN.
async fn register(run: &SpecRun<'_>, want: &Rendered) -> Result<String, ResourceError> {
    let c = &want.container;
    let mut container = ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .essential(true);
    if let Some(port) = c.port {
        container = container.port_mappings(
            PortMapping::builder()
                .container_port(port as i32)
                .protocol(TransportProtocol::Tcp)
                .build(),
        );
    }
    for (k, v) in &c.environment {
        container = container.environment(KeyValuePair::builder().name(k).value(v).build());
    }
    for (k, v) in &c.secrets {
        container = container.secrets(
            Secret::builder()
                .name(k)
                .value_from(v)
                .build()
                .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?,
        );
    }
    if let Some((cmd, interval, timeout, retries, start)) = &c.health_check {
        container = container.health_check(
            HealthCheck::builder()
                .set_command(Some(cmd.clone()))
                .interval(*interval as i32)
                .timeout(*timeout as i32)
                .retries(*retries as i32)
                .start_period(*start as i32)
                .build()
                .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?,
        );
    }
    if let Some((group, region, prefix)) = &c.logs {
        container = container.log_configuration(
            LogConfiguration::builder()
                .log_driver(LogDriver::Awslogs)
                .options("awslogs-group", group)
                .options("awslogs-region", region)
                .options("awslogs-stream-prefix", prefix)
                .build()
                .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?,
        );
    }
    let mut req = run
        .aws
        .ecs
        .register_task_definition()
        .family(&want.family)
        .network_mode(NetworkMode::Awsvpc)
        .requires_compatibilities(if want.fargate {
            Compatibility::Fargate
        } else {
            Compatibility::Ec2
        })
        .cpu(&want.cpu)
        .memory(&want.memory)
        .set_execution_role_arn(want.execution_role_arn.clone())
        .set_task_role_arn(want.task_role_arn.clone())
        .container_definitions(container.build());
    req = req.set_tags(Some(ecs_tags::of_map(run.tags())));
    let out = run
        .aws
        .call(
            Service::Ecs,
            CallClass::RegisterTaskDefinition,
            "RegisterTaskDefinition",
            &want.family,
            req.send(),
        )
        .await?;
    out.task_definition()
        .and_then(|t| t.task_definition_arn())
        .map(str::to_string)
        .ok_or_else(|| {
            ResourceError::Unsatisfiable("RegisterTaskDefinition returned no ARN".into())
        })
}

/// The family's latest ACTIVE revision when this spec owns it and it already matches `want`.
async fn latest_matching_revision(
    run: &SpecRun<'_>,
    want: &Rendered,
) -> Result<Option<String>, ResourceError> {
    let out = run
        .aws
        .read(
            Service::Ecs,
            "DescribeTaskDefinition",
            &want.family,
            run.aws
                .ecs
                .describe_task_definition()
                .task_definition(&want.family)
                .include(TaskDefinitionField::Tags)
                .send(),
        )
        .await;
    // No revision of the family yet.
    let Some(out) = out.absent_if("ClientException")? else {
        return Ok(None);
    };
    let Some(td) = out.task_definition() else {
        return Ok(None);
    };
    let tags: BTreeMap<String, String> = crate::resources::shared::ecs_tags::to_map(out.tags());
    let ours = ownership(&run.aws.instance, &run.key, &tags) == Ownership::Ours;
    let active = td.status() == Some(&TaskDefinitionStatus::Active);
    let matches = from_aws(td).is_some_and(|have| differences(&have, want).is_empty());
    Ok((ours && active && matches)
        .then(|| td.task_definition_arn().map(str::to_string))
        .flatten())
}

/// The task definition a service should run, as the generic driver takes it: the spec
/// rendered, the revision the service runs now, and the process's cache of revisions.
#[derive(Debug, Clone)]
pub struct Desired {
    pub want: Rendered,
    /// The service's current task definition ARN (`None`: no service yet).
    pub current: Option<String>,
    pub cache: Arc<RevisionCache>,
}

/// What is there for [`Desired`]: the service's current revision as rendered, and, when it
/// differs from the spec, the family's latest revision if that one is ours, ACTIVE and
/// already matches (left behind by a run killed between RegisterTaskDefinition and the
/// service update).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub current: Option<(String, Rendered)>,
    pub reusable: Option<String>,
}

/// The one step: register a new revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Register,
}

/// The revision the reconcile hands on: `arn` is the one to run (while only planning a new
/// revision, the current one, or empty), `settled` whether it is what the spec asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub arn: String,
    pub settled: bool,
}

/// The revision to run without a step: the current one when it matches the spec, else a
/// reusable one (pure).
fn settled(d: &Desired, o: Option<&Observed>) -> Option<String> {
    let o = o?;
    match &o.current {
        Some((arn, have)) if differences(have, &d.want).is_empty() => Some(arn.clone()),
        _ => o.reusable.clone(),
    }
}

/// What to do (pure): nothing when the current revision matches or a matching one can be
/// reused, else register a new revision (the change names what differs).
pub fn plan(d: &Desired, o: Option<&Observed>) -> Vec<(Step, Change)> {
    if settled(d, o).is_some() {
        return Vec::new();
    }
    let resource = format!("task definition {}", d.want.family);
    let change = match o.and_then(|o| o.current.as_ref()) {
        Some((_, have)) => Change::update(
            &resource,
            format!("new revision: {}", differences(have, &d.want).join("; ")),
        ),
        None => Change::create(&resource, format!("image {}", d.want.container.image)),
    };
    vec![(Step::Register, change)]
}

crate::resources::kind::kind!(
    /// A task definition family, as the generic driver sees it.
    TaskDefinitionKind, TYPE, 6, delete, "ECS task definitions", gc::list_owned
);

/// The generic driver's view of a service's task definition: observed through the revision
/// cache (one DescribeTaskDefinition per revision for the process's life), and the family's
/// latest revision only when the current one differs. A revision is ours through the service
/// that runs it, or (one to reuse) by the tags `observe` checked, so the claim takes nothing.
impl Managed for TaskDefinitionKind {
    crate::resources::kind::managed_types!(Desired, Observed, Step, Revision);

    fn label(d: &Desired) -> String {
        format!("task definition {}", d.want.family)
    }

    async fn observe(run: &SpecRun<'_>, d: &Desired) -> Result<Option<Observed>, ResourceError> {
        let current = match &d.current {
            Some(arn) => d.cache.get(run, arn).await?.map(|r| (arn.clone(), r)),
            None => None,
        };
        let mut o = Observed {
            current,
            reusable: None,
        };
        if settled(d, Some(&o)).is_none() {
            o.reusable = latest_matching_revision(run, &d.want).await?;
            if let Some(arn) = &o.reusable {
                d.cache.put(arn, &d.want);
            }
        }
        Ok(Some(o))
    }

    crate::resources::kind::owned_through_parent!();

    fn plan(d: &Desired, o: Option<&Observed>, _: BTreeMap<String, String>) -> Plan<Step> {
        Plan::steps(plan(d, o))
    }

    fn output(d: &Desired, o: Option<&Observed>) -> Revision {
        match settled(d, o) {
            Some(arn) => Revision { arn, settled: true },
            None => Revision {
                arn: d.current.clone().unwrap_or_default(),
                settled: false,
            },
        }
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, Step::Register: Step) -> Applied {
        let At { d, out, .. } = at;
        let arn = register(run, &d.want).await?;
        d.cache.put(&arn, &d.want);
        *out = Revision { arn, settled: true };
        Ok(())
    }

    fn id(_: &Desired, out: &Revision) -> Option<String> {
        out.settled.then(|| out.arn.clone())
    }
}

/// Teardown of the task definition family (`ecs:task-definition`, a revision's ARN): deregister
/// every active revision of the family that is ours (released with `retain`).
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let family = arn
        .rsplit_once("task-definition/")
        .map(|(_, f)| f.split(':').next().unwrap_or(f).to_string())
        .unwrap_or_default();
    if family.is_empty() {
        return Ok(Gone::Yes);
    }
    let out = run
        .aws
        .read(
            Service::Ecs,
            "ListTaskDefinitions",
            &family,
            run.aws
                .ecs
                .list_task_definitions()
                .family_prefix(&family)
                .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
                .send(),
        )
        .await?;
    for td in out.task_definition_arns() {
        // `family_prefix` matches prefixes: keep only this family's revisions.
        if td
            .rsplit_once("task-definition/")
            .map(|(_, f)| f.split(':').next() == Some(family.as_str()))
            != Some(true)
        {
            continue;
        }
        let d = run
            .aws
            .read(
                Service::Ecs,
                "DescribeTaskDefinition",
                td,
                run.aws
                    .ecs
                    .describe_task_definition()
                    .task_definition(td)
                    .include(TaskDefinitionField::Tags)
                    .send(),
            )
            .await?;
        if !ecs_tags::is_ours(run, d.tags()) {
            continue;
        }
        if retain {
            ecs_tags::release(run, td, "task definition").await?;
        } else if run.plan(Change::delete(
            format!("task definition {td}"),
            "deregister",
        )) {
            run.aws
                .write(
                    Service::Ecs,
                    "DeregisterTaskDefinition",
                    td,
                    run.aws
                        .ecs
                        .deregister_task_definition()
                        .task_definition(td)
                        .send(),
                )
                .await?;
        }
    }
    Ok(Gone::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Rendered {
        Rendered {
            family: "web".into(),
            cpu: "256".into(),
            memory: "512".into(),
            fargate: false,
            execution_role_arn: None,
            task_role_arn: None,
            container: Container {
                name: "app".into(),
                image: "1.dkr.ecr.r.amazonaws.com/web:1".into(),
                port: Some(3000),
                environment: BTreeMap::from([("A".into(), "1".into())]),
                secrets: BTreeMap::new(),
                health_check: None,
                logs: Some(("/ecs/web".into(), "eu-west-1".into(), "web".into())),
            },
        }
    }

    #[test]
    fn the_driver_keeps_a_matching_revision_reuses_a_left_over_one_and_else_registers_one() {
        let d = |current: Option<&str>| Desired {
            want: rendered(),
            current: current.map(str::to_string),
            cache: Arc::default(),
        };
        let running = |r: Rendered| Observed {
            current: Some(("arn:td/web:3".into(), r)),
            reusable: None,
        };
        type K = TaskDefinitionKind;
        let steps = |d: &Desired, o: Option<&Observed>| {
            let plan = <K as Managed>::plan(d, o, BTreeMap::new());
            (
                plan.steps.into_iter().map(|s| s.0).collect::<Vec<_>>(),
                K::output(d, o),
            )
        };
        // The service runs what the spec renders: nothing to do, that revision is ledgered.
        let same = running(rendered());
        let (planned, out) = steps(&d(Some("arn:td/web:3")), Some(&same));
        assert!(planned.is_empty());
        assert_eq!(K::id(&d(None), &out).as_deref(), Some("arn:td/web:3"));
        // It differs: one new revision; while only planning the service keeps its current one,
        // which is not ledgered as the spec's.
        let mut old = rendered();
        old.container.image = "1.dkr.ecr.r.amazonaws.com/web:0".into();
        let (planned, out) = steps(&d(Some("arn:td/web:3")), Some(&running(old.clone())));
        assert_eq!(planned, vec![Step::Register]);
        assert_eq!(
            (out.arn.as_str(), K::id(&d(None), &out)),
            ("arn:td/web:3", None)
        );
        let plan = plan(&d(Some("arn:td/web:3")), Some(&running(old.clone())));
        assert!(
            plan[0].1.to_string().contains("new revision: image"),
            "{}",
            plan[0].1
        );
        // A matching revision a killed run registered is reused without a step.
        let left_over = Observed {
            reusable: Some("arn:td/web:4".into()),
            ..running(old)
        };
        let (planned, out) = steps(&d(Some("arn:td/web:3")), Some(&left_over));
        assert!(planned.is_empty());
        assert_eq!(out.arn, "arn:td/web:4");
        // No service yet and nothing to reuse: one create.
        let none = Observed {
            current: None,
            reusable: None,
        };
        let (planned, out) = steps(&d(None), Some(&none));
        assert_eq!((planned, out.arn.as_str()), (vec![Step::Register], ""));
    }

    #[test]
    fn an_image_tag_change_is_the_only_difference_reported() {
        let mut b = rendered();
        b.container.image = "1.dkr.ecr.r.amazonaws.com/web:2".into();
        assert_eq!(
            differences(&rendered(), &b),
            vec!["image: 1.dkr.ecr.r.amazonaws.com/web:1 -> 1.dkr.ecr.r.amazonaws.com/web:2"]
        );
        assert!(differences(&rendered(), &rendered()).is_empty());
    }

    #[test]
    fn a_round_trip_through_the_aws_shape_is_equal() {
        let want = rendered();
        let c = &want.container;
        let td = TaskDefinition::builder()
            .family("web")
            .cpu("256")
            .memory("512")
            .requires_compatibilities(Compatibility::Ec2)
            .compatibilities(Compatibility::Ec2)
            .container_definitions(
                ContainerDefinition::builder()
                    .name(&c.name)
                    .image(&c.image)
                    .essential(true)
                    .port_mappings(
                        PortMapping::builder()
                            .container_port(3000)
                            .host_port(3000)
                            .protocol(TransportProtocol::Tcp)
                            .build(),
                    )
                    .environment(KeyValuePair::builder().name("A").value("1").build())
                    .log_configuration(
                        LogConfiguration::builder()
                            .log_driver(LogDriver::Awslogs)
                            .options("awslogs-group", "/ecs/web")
                            .options("awslogs-region", "eu-west-1")
                            .options("awslogs-stream-prefix", "web")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(from_aws(&td), Some(want));
    }
}

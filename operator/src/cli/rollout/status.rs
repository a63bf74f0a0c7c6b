//! `ecs-operator rollout status NAME --store URL [-o table|json|yaml]`: the service's
//! deployments now.
//!
//! ```text
//! ServiceSpec/web: ecs service web in cluster prod (the operator's account, region eu-west-1), strategy CANARY
//! DEPLOYMENT     STATUS   TASK DEFINITION  ROLLOUT      DESIRED  PENDING  RUNNING  FAILED  REASON
//! ecs-svc/9183   PRIMARY  web:4            IN_PROGRESS  2        1        1        0       ECS deployment ecs-svc/9183 in progress.
//! service deployment NCWGC2ZR: IN_PROGRESS, stage PRODUCTION_TRAFFIC_SHIFT
//! REVISION             ROLE    PRODUCTION  TEST  TASKS (running/requested)
//! 4980306466373577095  target  5%          100%  1/2
//! 1                    source  95%         0%    2/2
//! TARGET GROUP  ROLE       TARGETS
//! web           primary    2 healthy
//! web-alt       alternate  1 initial
//! ALARM                    STATE
//! prod-web-http5xxPercent  OK
//! ```
//!
//! Reads only: DescribeServices; ListServiceDeployments + DescribeServiceDeployments (the
//! newest service deployment, where the endpoint offers them; one line saying so otherwise);
//! DescribeTargetGroups + DescribeTargetHealth of the target groups the operator names for the
//! spec; DescribeAlarms of the alarms its deployment rolls back on.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::types::MetricAlarm;
use aws_sdk_ecs::types::Deployment;
use aws_sdk_elasticloadbalancingv2::types::TargetHealthDescription;
use serde::Serialize;

use super::{aws_failure, not_reported, short, Common, Target};
use crate::aws::Service;
use crate::cli::output::{table, OutputFormat};
use crate::cli::{CliError, Context};
use crate::resources::kinds::ecs_service::deployments::{newest, RevisionView, View};
use crate::resources::kinds::ecs_service::desired_strategy;
use crate::resources::shared::names::{alternate_target_group_name, target_group_name};
use crate::spec::ServiceSpec;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Everything `status` shows (also its JSON and YAML).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub spec: String,
    pub cluster: String,
    pub service: String,
    pub placement: String,
    /// The strategy ECS has now (`ROLLING` when it reports none).
    pub strategy: String,
    /// DescribeServices' deployments, PRIMARY first.
    pub deployments: Vec<DeploymentRow>,
    /// Whether the endpoint reports service deployments at all.
    pub service_deployments_reported: bool,
    /// The newest service deployment, where reported.
    pub service_deployment: Option<ServiceDeploymentRow>,
    pub target_groups: Vec<TargetGroupRow>,
    pub alarms: Vec<AlarmRow>,
}

/// One deployment of DescribeServices.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRow {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub task_definition: String,
    /// `COMPLETED`, `IN_PROGRESS`, `FAILED` (`-` when ECS gives none).
    pub rollout_state: String,
    pub rollout_state_reason: Option<String>,
    pub desired: i32,
    pub pending: i32,
    pub running: i32,
    pub failed: i32,
}

impl DeploymentRow {
    /// From DescribeServices' `services[].deployments[]` (pure).
    pub fn from_sdk(d: &Deployment) -> DeploymentRow {
        DeploymentRow {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().unwrap_or("-").to_string(),
            task_definition: d.task_definition().unwrap_or_default().to_string(),
            rollout_state: d
                .rollout_state()
                .map_or_else(|| "-".to_string(), |s| s.as_str().to_string()),
            rollout_state_reason: d.rollout_state_reason().map(str::to_string),
            desired: d.desired_count(),
            pending: d.pending_count(),
            running: d.running_count(),
            failed: d.failed_tasks(),
        }
    }
}

/// DescribeServices' deployments, PRIMARY first, then the newest (pure).
pub fn deployment_rows(deployments: &[Deployment]) -> Vec<DeploymentRow> {
    let mut v: Vec<(bool, i64, DeploymentRow)> = deployments
        .iter()
        .map(|d| {
            (
                d.status() != Some("PRIMARY"),
                -d.created_at().map_or(0, |t| t.secs()),
                DeploymentRow::from_sdk(d),
            )
        })
        .collect();
    v.sort_by_key(|a| (a.0, a.1));
    v.into_iter().map(|(_, _, r)| r).collect()
}

/// The newest service deployment as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDeploymentRow {
    pub arn: String,
    pub status: String,
    pub lifecycle_stage: Option<String>,
    /// `stage BAKE_TIME, 100% of production traffic on the new revision, ...`.
    pub progress: String,
    pub target: Option<RevisionView>,
    pub sources: Vec<RevisionView>,
    /// The hooks awaiting action (`ecs-operator rollout continue`).
    pub hooks_awaiting_action: Vec<String>,
    pub rollback: Option<String>,
    pub status_reason: Option<String>,
    pub alarms_triggered: Vec<String>,
}

impl ServiceDeploymentRow {
    pub fn from_view(v: &View, now: i64) -> ServiceDeploymentRow {
        ServiceDeploymentRow {
            arn: v.arn.clone(),
            status: v.status.clone(),
            lifecycle_stage: v.stage.clone(),
            progress: v.progress_at(now),
            target: v.target.clone(),
            sources: v.sources.clone(),
            hooks_awaiting_action: v.paused_hooks.clone(),
            rollback: v.rollback.clone(),
            status_reason: v.status_reason.clone(),
            alarms_triggered: v.alarms_fired.clone(),
        }
    }
}

/// One target group of the service and its targets by health state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupRow {
    pub name: String,
    /// `primary` or `alternate`.
    pub role: String,
    /// `None`: no target group of that name exists.
    pub arn: Option<String>,
    /// Targets by state (`healthy`, `unhealthy`, `initial`, `draining`, ...).
    pub targets: BTreeMap<String, usize>,
}

impl TargetGroupRow {
    /// `2 healthy, 1 initial`; `no targets`; `not found`.
    pub fn summary(&self) -> String {
        if self.arn.is_none() {
            return "not found".into();
        }
        if self.targets.is_empty() {
            return "no targets".into();
        }
        self.targets
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One rollback alarm and its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmRow {
    pub name: String,
    /// `OK`, `ALARM`, `INSUFFICIENT_DATA`, or `not found`.
    pub state: String,
    pub reason: Option<String>,
}

/// The target groups the operator gives `spec` (pure): none without ingress; the primary, and
/// the alternate when the strategy shifts traffic (BlueGreen, Canary, Linear).
pub fn target_group_names(spec: &ServiceSpec) -> Vec<(String, &'static str)> {
    if spec.spec.ingress.is_none() {
        return Vec::new();
    }
    let name = &spec.metadata.name;
    let mut v = vec![(target_group_name(name), "primary")];
    if spec.spec.deployment.strategy.shifts_traffic() {
        v.push((alternate_target_group_name(name), "alternate"));
    }
    v
}

/// Targets counted by health state (pure).
pub fn health_counts(targets: &[TargetHealthDescription]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in targets {
        let state = t
            .target_health()
            .and_then(|h| h.state())
            .map_or("unknown", |s| s.as_str());
        *out.entry(state.to_string()).or_default() += 1;
    }
    out
}

/// The state of each alarm of `names` among `found` (pure); one not found says so.
pub fn alarm_rows(names: &BTreeSet<String>, found: &[MetricAlarm]) -> Vec<AlarmRow> {
    names
        .iter()
        .map(|n| match found.iter().find(|a| a.alarm_name() == Some(n)) {
            Some(a) => AlarmRow {
                name: n.clone(),
                state: a
                    .state_value()
                    .map_or_else(|| "-".to_string(), |s| s.as_str().to_string()),
                reason: a.state_reason().map(str::to_string),
            },
            None => AlarmRow {
                name: n.clone(),
                state: "not found".into(),
                reason: None,
            },
        })
        .collect()
}

/// The newest service deployment; `Ok(None)` when the endpoint does not report them (the
/// caller says so), `Ok(Some(None))` when there is none.
async fn newest_deployment(t: &Target) -> Result<Option<Option<View>>, CliError> {
    let Some(listed) = t.list_deployments(&[], 1).await? else {
        return Ok(None);
    };
    let Some(arn) = newest(&listed) else {
        return Ok(Some(None));
    };
    let Some(described) = t.describe_deployments(&[arn.to_string()]).await? else {
        return Ok(None);
    };
    Ok(Some(described.first().map(View::from_sdk)))
}

async fn target_groups(t: &Target) -> Result<Vec<TargetGroupRow>, CliError> {
    let mut rows = Vec::new();
    for (name, role) in target_group_names(&t.spec) {
        let found = t
            .aws
            .read(
                Service::Elbv2,
                "DescribeTargetGroups",
                &name,
                t.aws.elbv2.describe_target_groups().names(&name).send(),
            )
            .await;
        let arn = match found {
            Ok(o) => o
                .target_groups()
                .first()
                .and_then(|g| g.target_group_arn())
                .map(str::to_string),
            Err(e) if e.code() == Some("TargetGroupNotFound") => None,
            Err(e) => return Err(aws_failure(e)),
        };
        let mut targets = BTreeMap::new();
        if let Some(arn) = &arn {
            let health = t
                .aws
                .read(
                    Service::Elbv2,
                    "DescribeTargetHealth",
                    &name,
                    t.aws
                        .elbv2
                        .describe_target_health()
                        .target_group_arn(arn)
                        .send(),
                )
                .await
                .map_err(aws_failure)?;
            targets = health_counts(health.target_health_descriptions());
        }
        rows.push(TargetGroupRow {
            name,
            role: role.to_string(),
            arn,
            targets,
        });
    }
    Ok(rows)
}

async fn alarms(t: &Target) -> Result<Vec<AlarmRow>, CliError> {
    let names = desired_strategy(&t.spec, &t.cluster)
        .alarms
        .unwrap_or_default();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let all: Vec<String> = names.iter().cloned().collect();
    for chunk in all.chunks(100) {
        let out = t
            .aws
            .read(
                Service::CloudWatch,
                "DescribeAlarms",
                &chunk.join(","),
                t.aws
                    .cloudwatch
                    .describe_alarms()
                    .set_alarm_names(Some(chunk.to_vec()))
                    .send(),
            )
            .await
            .map_err(aws_failure)?;
        found.extend(out.metric_alarms().iter().cloned());
    }
    Ok(alarm_rows(&names, &found))
}

/// Read everything `status` shows.
pub async fn collect(t: &Target) -> Result<Report, CliError> {
    let svc = t.service().await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let newest = newest_deployment(t).await?;
    Ok(Report {
        spec: t.key.to_string(),
        cluster: t.cluster.clone(),
        service: t.service.clone(),
        placement: t.placement.to_string(),
        strategy: svc
            .deployment_configuration()
            .and_then(|c| c.strategy())
            .map_or("ROLLING", |s| s.as_str())
            .to_string(),
        deployments: deployment_rows(svc.deployments()),
        service_deployments_reported: newest.is_some(),
        service_deployment: newest
            .flatten()
            .map(|v| ServiceDeploymentRow::from_view(&v, now)),
        target_groups: target_groups(t).await?,
        alarms: alarms(t).await?,
    })
}

fn percent(w: Option<f64>) -> String {
    w.map_or_else(|| "-".to_string(), |w| format!("{w}%"))
}

/// The table form of `r` (pure).
pub fn render(r: &Report) -> String {
    let mut out = format!(
        "{}: ecs service {} in cluster {} ({}), strategy {}\n",
        r.spec, r.service, r.cluster, r.placement, r.strategy
    );
    if r.deployments.is_empty() {
        out.push_str("no deployments\n");
    } else {
        let rows: Vec<Vec<String>> = r
            .deployments
            .iter()
            .map(|d| {
                vec![
                    d.id.clone(),
                    d.status.clone(),
                    short(&d.task_definition).to_string(),
                    d.rollout_state.clone(),
                    d.desired.to_string(),
                    d.pending.to_string(),
                    d.running.to_string(),
                    d.failed.to_string(),
                    d.rollout_state_reason.clone().unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "DEPLOYMENT",
                "STATUS",
                "TASK DEFINITION",
                "ROLLOUT",
                "DESIRED",
                "PENDING",
                "RUNNING",
                "FAILED",
                "REASON",
            ],
            &rows,
        ));
    }
    match (&r.service_deployment, r.service_deployments_reported) {
        (_, false) => {
            out.push_str(&not_reported("ListServiceDeployments"));
            out.push('\n');
        }
        (None, true) => out.push_str("service deployments: none\n"),
        (Some(sd), true) => {
            out.push_str(&format!(
                "service deployment {}: {}, {}\n",
                short(&sd.arn),
                sd.status,
                sd.progress
            ));
            let revision = |role: &str, rv: &RevisionView| {
                vec![
                    short(&rv.arn).to_string(),
                    role.to_string(),
                    percent(rv.production_traffic),
                    percent(rv.test_traffic),
                    format!("{}/{}", rv.running_tasks, rv.requested_tasks),
                ]
            };
            let mut rows: Vec<Vec<String>> = Vec::new();
            if let Some(t) = &sd.target {
                rows.push(revision("target", t));
            }
            rows.extend(sd.sources.iter().map(|s| revision("source", s)));
            if !rows.is_empty() {
                out.push_str(&table(
                    &[
                        "REVISION",
                        "ROLE",
                        "PRODUCTION",
                        "TEST",
                        "TASKS (running/requested)",
                    ],
                    &rows,
                ));
            }
            if !sd.hooks_awaiting_action.is_empty() {
                out.push_str(&format!(
                    "hooks awaiting action: {} (`ecs-operator rollout continue {}`)\n",
                    sd.hooks_awaiting_action.join(", "),
                    r.spec.trim_start_matches("ServiceSpec/")
                ));
            }
            if !sd.alarms_triggered.is_empty() {
                out.push_str(&format!(
                    "alarms triggered: {}\n",
                    sd.alarms_triggered.join(", ")
                ));
            }
            if let Some(why) = &sd.rollback {
                out.push_str(&format!("rolled back: {why}\n"));
            } else if let Some(why) = &sd.status_reason {
                out.push_str(&format!("reason: {why}\n"));
            }
        }
    }
    if !r.target_groups.is_empty() {
        let rows: Vec<Vec<String>> = r
            .target_groups
            .iter()
            .map(|g| vec![g.name.clone(), g.role.clone(), g.summary()])
            .collect();
        out.push_str(&table(&["TARGET GROUP", "ROLE", "TARGETS"], &rows));
    }
    if !r.alarms.is_empty() {
        let rows: Vec<Vec<String>> = r
            .alarms
            .iter()
            .map(|a| vec![a.name.clone(), a.state.clone()])
            .collect();
        out.push_str(&table(&["ALARM", "STATE"], &rows));
    }
    out
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let t = super::target(&args.common, ctx).await?;
    let report = collect(&t).await?;
    match args.output {
        OutputFormat::Table => write!(ctx.out, "{}", render(&report))?,
        f => super::print_structured(
            ctx,
            f,
            &serde_json::to_value(&report).expect("the report serialises"),
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::types::StateValue;
    use aws_sdk_ecs::primitives::DateTime;
    use aws_sdk_ecs::types::DeploymentRolloutState;
    use aws_sdk_elasticloadbalancingv2::types::{TargetHealth, TargetHealthStateEnum};

    use super::*;

    // DescribeServices' `deployments[]` as the API reference's example shows them mid-rollout:
    // the new PRIMARY deployment starting tasks, the old ACTIVE one still running.
    fn deployments() -> Vec<Deployment> {
        vec![
            Deployment::builder()
                .id("ecs-svc/1111111111111111111")
                .status("ACTIVE")
                .task_definition("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3")
                .desired_count(2)
                .running_count(2)
                .rollout_state(DeploymentRolloutState::Completed)
                .created_at(DateTime::from_secs(1_700_000_000))
                .build(),
            Deployment::builder()
                .id("ecs-svc/2222222222222222222")
                .status("PRIMARY")
                .task_definition("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:4")
                .desired_count(2)
                .pending_count(1)
                .running_count(1)
                .failed_tasks(1)
                .rollout_state(DeploymentRolloutState::InProgress)
                .rollout_state_reason("ECS deployment ecs-svc/2222222222222222222 in progress.")
                .created_at(DateTime::from_secs(1_700_000_600))
                .build(),
        ]
    }

    fn report() -> Report {
        Report {
            spec: "ServiceSpec/web".into(),
            cluster: "prod".into(),
            service: "web".into(),
            placement: "the operator's account, region eu-west-1".into(),
            strategy: "CANARY".into(),
            deployments: deployment_rows(&deployments()),
            service_deployments_reported: false,
            service_deployment: None,
            target_groups: vec![TargetGroupRow {
                name: "web".into(),
                role: "primary".into(),
                arn: Some("arn:tg".into()),
                targets: BTreeMap::from([("healthy".to_string(), 2), ("initial".to_string(), 1)]),
            }],
            alarms: vec![AlarmRow {
                name: "prod-web-http5xxPercent".into(),
                state: "OK".into(),
                reason: None,
            }],
        }
    }

    #[test]
    fn the_primary_deployment_comes_first_with_its_revision_tasks_and_rollout_state() {
        let rows = deployment_rows(&deployments());
        assert_eq!(rows[0].status, "PRIMARY");
        assert_eq!(
            (
                rows[0].desired,
                rows[0].pending,
                rows[0].running,
                rows[0].failed
            ),
            (2, 1, 1, 1)
        );
        assert_eq!(rows[0].rollout_state, "IN_PROGRESS");
        assert_eq!(rows[1].status, "ACTIVE");
        assert!(rows[1].task_definition.ends_with("web:3"));
    }

    #[test]
    fn targets_are_counted_by_health_state() {
        let t = |s: TargetHealthStateEnum| {
            TargetHealthDescription::builder()
                .target_health(TargetHealth::builder().state(s).build())
                .build()
        };
        let counts = health_counts(&[
            t(TargetHealthStateEnum::Healthy),
            t(TargetHealthStateEnum::Healthy),
            t(TargetHealthStateEnum::Draining),
        ]);
        assert_eq!(
            counts,
            BTreeMap::from([("draining".to_string(), 1), ("healthy".to_string(), 2)])
        );
        let row = TargetGroupRow {
            name: "web".into(),
            role: "primary".into(),
            arn: Some("arn".into()),
            targets: counts,
        };
        assert_eq!(row.summary(), "1 draining, 2 healthy");
        let empty = TargetGroupRow {
            targets: BTreeMap::new(),
            ..row.clone()
        };
        assert_eq!(empty.summary(), "no targets");
        assert_eq!(TargetGroupRow { arn: None, ..row }.summary(), "not found");
    }

    #[test]
    fn each_rollback_alarm_shows_its_state_and_one_that_does_not_exist_says_so() {
        let names = BTreeSet::from(["a".to_string(), "b".to_string()]);
        let found = [MetricAlarm::builder()
            .alarm_name("a")
            .state_value(StateValue::Alarm)
            .state_reason("Threshold Crossed")
            .build()];
        let rows = alarm_rows(&names, &found);
        assert_eq!(
            rows.iter()
                .map(|r| (r.name.as_str(), r.state.as_str()))
                .collect::<Vec<_>>(),
            [("a", "ALARM"), ("b", "not found")]
        );
        assert_eq!(rows[0].reason.as_deref(), Some("Threshold Crossed"));
    }

    #[test]
    fn the_table_says_when_the_endpoint_does_not_report_service_deployments() {
        let text = render(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ServiceSpec/web: ecs service web in cluster prod"));
        assert!(lines[1].starts_with("DEPLOYMENT"));
        assert!(lines[2].contains("PRIMARY") && lines[2].contains("web:4"));
        assert!(
            text.contains("service deployments: not reported by this endpoint (ListServiceDeployments is not offered)"),
            "{text}"
        );
        assert!(text.contains("2 healthy, 1 initial"), "{text}");
        assert!(text.contains("prod-web-http5xxPercent  OK"), "{text}");
    }

    #[test]
    fn a_paused_canary_shows_both_revisions_traffic_and_the_hook_to_continue() {
        let view = View {
            arn: "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/NCWGC2ZR".into(),
            status: "IN_PROGRESS".into(),
            stage: Some("POST_TEST_TRAFFIC_SHIFT".into()),
            paused_hooks: vec!["hook-1".into()],
            new_traffic: Some(0.0),
            target: Some(RevisionView {
                arn: "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/2".into(),
                production_traffic: Some(0.0),
                test_traffic: Some(100.0),
                requested_tasks: 2,
                running_tasks: 2,
                pending_tasks: 0,
            }),
            sources: vec![RevisionView {
                arn: "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/1".into(),
                production_traffic: Some(100.0),
                test_traffic: Some(0.0),
                requested_tasks: 2,
                running_tasks: 2,
                pending_tasks: 0,
            }],
            ..Default::default()
        };
        let r = Report {
            service_deployments_reported: true,
            service_deployment: Some(ServiceDeploymentRow::from_view(&view, 0)),
            ..report()
        };
        let text = render(&r);
        assert!(
            text.contains(
                "service deployment NCWGC2ZR: IN_PROGRESS, stage POST_TEST_TRAFFIC_SHIFT"
            ),
            "{text}"
        );
        assert!(
            text.contains("2         target  0%          100%  2/2"),
            "{text}"
        );
        assert!(
            text.contains("1         source  100%        0%    2/2"),
            "{text}"
        );
        assert!(
            text.contains("hooks awaiting action: hook-1 (`ecs-operator rollout continue web`)"),
            "{text}"
        );
        assert!(!text.contains("not reported"), "{text}");
    }
}

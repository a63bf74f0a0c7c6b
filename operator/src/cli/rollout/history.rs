//! `ecs-operator rollout history NAME --store URL [--limit N] [-o table|json|yaml]`: the
//! task-definition revisions of the service's family, newest first, with their images, when
//! each was registered, and how its deployment ended.
//!
//! ```text
//! REVISION  REGISTERED            IMAGES                                   DEPLOYMENT
//! web:4     2026-12-02T19:40:11Z  trust-estate-server:prod-4e5f6a7          rolled back: alarm prod-web-http5xxPercent fired
//! web:3     2026-12-01T10:02:54Z  trust-estate-server:prod-3f2a1c9          succeeded (current)
//! ```
//!
//! How a deployment ended comes from ListServiceDeployments (every status) and
//! DescribeServiceRevisions (which task definition each deployment's target revision ran),
//! where the endpoint offers them; otherwise from the deployments DescribeServices lists now,
//! and `unknown` for older revisions, with one line saying the endpoint does not report
//! service deployments. Reads only.

use std::collections::HashMap;

use aws_sdk_ecs::types::{Deployment, ServiceDeploymentBrief, ServiceDeploymentStatus, SortOrder};
use serde::Serialize;

use super::{aws_failure, not_reported, short, time, Common, Target};
use crate::aws::Service;
use crate::cli::output::{table, OutputFormat};
use crate::cli::{CliError, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// How many revisions to show, newest first.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Everything `history` shows (also its JSON and YAML).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub spec: String,
    pub family: String,
    /// Whether "how it ended" comes from the service deployments ECS reports.
    pub service_deployments_reported: bool,
    /// Newest first.
    pub revisions: Vec<RevisionRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRow {
    /// `web:4`.
    pub revision: String,
    pub task_definition: String,
    /// The images of its containers, in order.
    pub images: Vec<String>,
    /// RFC 3339 UTC.
    pub registered_at: Option<String>,
    /// How its (newest) deployment ended: `succeeded`, `rolled back: ...`, `unknown`...
    pub deployment: String,
    /// The service runs it now (DescribeServices' `taskDefinition`).
    pub current: bool,
}

/// The ARNs of `family`'s own revisions among `listed` (pure): ListTaskDefinitions'
/// `familyPrefix` also matches longer families (`web` lists `web-admin:1`).
pub fn of_family(listed: &[String], family: &str) -> Vec<String> {
    listed
        .iter()
        .filter(|arn| {
            arn.rsplit_once(":task-definition/")
                .and_then(|(_, rest)| rest.rsplit_once(':'))
                .is_some_and(|(f, _)| f == family)
        })
        .cloned()
        .collect()
}

/// The revision number of a task-definition ARN (`...:task-definition/web:4` -> 4).
fn revision_number(arn: &str) -> u64 {
    arn.rsplit_once(':')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// `arns` newest first, by revision number (pure): ListTaskDefinitions' `sort DESC` already
/// orders them so on AWS; moto 5.2.5 ignores `sort` and lists them oldest first.
pub fn newest_first(mut arns: Vec<String>) -> Vec<String> {
    arns.sort_by_key(|a| std::cmp::Reverse(revision_number(a)));
    arns
}

/// One row from DescribeTaskDefinition's answer (pure).
pub fn row(
    arn: &str,
    td: Option<&aws_sdk_ecs::types::TaskDefinition>,
    deployment: String,
    current: bool,
) -> RevisionRow {
    RevisionRow {
        revision: short(arn).to_string(),
        task_definition: arn.to_string(),
        images: td
            .map(|d| {
                d.container_definitions()
                    .iter()
                    .filter_map(|c| c.image().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        registered_at: td.and_then(|d| d.registered_at()).map(|t| time(t.secs())),
        deployment,
        current,
    }
}

/// How a service deployment of this status ended, in words (pure).
pub fn outcome(status: Option<&ServiceDeploymentStatus>, reason: Option<&str>) -> String {
    use ServiceDeploymentStatus as S;
    let word = match status {
        Some(S::Successful) => "succeeded",
        Some(S::Pending) => "pending",
        Some(S::InProgress) => "in progress",
        Some(S::StopRequested) => "stopping",
        Some(S::Stopped) => "stopped",
        Some(S::RollbackRequested | S::RollbackInProgress) => "rolling back",
        Some(S::RollbackSuccessful) => "rolled back",
        Some(S::RollbackFailed) => "rollback failed",
        Some(other) => other.as_str(),
        None => "unknown",
    };
    match reason.filter(|r| !r.is_empty() && !matches!(status, Some(S::Successful))) {
        Some(r) => format!("{word}: {r}"),
        None => word.to_string(),
    }
}

/// Task definition -> how its newest service deployment ended (pure). `revisions`: service
/// revision ARN -> its task definition (DescribeServiceRevisions).
pub fn ended_from_service_deployments(
    listed: &[ServiceDeploymentBrief],
    revisions: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut newest: HashMap<&str, (i64, &ServiceDeploymentBrief)> = HashMap::new();
    for d in listed {
        let Some(td) = d
            .target_service_revision_arn()
            .and_then(|r| revisions.get(r))
        else {
            continue;
        };
        let at = d.created_at().or(d.started_at()).map_or(0, |t| t.secs());
        match newest.get(td.as_str()) {
            Some((was, _)) if *was >= at => {}
            _ => {
                newest.insert(td, (at, d));
            }
        }
    }
    newest
        .into_iter()
        .map(|(td, (_, d))| (td.to_string(), outcome(d.status(), d.status_reason())))
        .collect()
}

/// Task definition -> what DescribeServices' current deployments say of it (pure).
pub fn ended_from_services(deployments: &[Deployment]) -> HashMap<String, String> {
    deployments
        .iter()
        .filter_map(|d| {
            let td = d.task_definition()?.to_string();
            let state = d.rollout_state().map(|s| s.as_str());
            let text = match (d.status(), state) {
                (_, Some("FAILED")) => format!(
                    "failed: {}",
                    d.rollout_state_reason()
                        .unwrap_or("ECS reports the rollout failed")
                ),
                (Some("PRIMARY"), Some("IN_PROGRESS")) => "in progress".to_string(),
                (Some("PRIMARY"), _) => "deployed".to_string(),
                (Some("ACTIVE"), _) => "being replaced".to_string(),
                (Some(s), _) => s.to_lowercase(),
                (None, _) => return None,
            };
            Some((td, text))
        })
        .collect()
}

/// Without service deployments, a revision DescribeServices does not list now.
pub const UNKNOWN: &str = "unknown";
/// With service deployments, a revision no reported deployment targeted.
pub const NOT_DEPLOYED: &str =
    "no service deployment (not deployed, or before the 90 days ECS keeps)";

/// The family's newest `limit` revisions (ListTaskDefinitions, newest first).
async fn revisions(t: &Target, limit: usize) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let listed = t
            .aws
            .read(
                Service::Ecs,
                "ListTaskDefinitions",
                &t.family,
                t.aws
                    .ecs
                    .list_task_definitions()
                    .family_prefix(&t.family)
                    .sort(SortOrder::Desc)
                    .max_results(100)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await
            .map_err(aws_failure)?;
        out.extend(of_family(listed.task_definition_arns(), &t.family));
        token = listed.next_token().map(str::to_string);
        if out.len() >= limit || token.is_none() {
            break;
        }
    }
    let mut out = newest_first(out);
    out.truncate(limit);
    Ok(out)
}

/// How each task definition's deployment ended from the service deployments; `None` when the
/// endpoint does not report them.
async fn from_service_deployments(t: &Target) -> Result<Option<HashMap<String, String>>, CliError> {
    let Some(listed) = t.list_deployments(&[], 3).await? else {
        return Ok(None);
    };
    let mut targets: Vec<String> = listed
        .iter()
        .filter_map(|d| d.target_service_revision_arn().map(str::to_string))
        .collect();
    targets.sort();
    targets.dedup();
    let Some(described) = t.describe_revisions(&targets).await? else {
        return Ok(None);
    };
    let revisions: HashMap<String, String> = described
        .iter()
        .filter_map(|r| {
            Some((
                r.service_revision_arn()?.to_string(),
                r.task_definition()?.to_string(),
            ))
        })
        .collect();
    Ok(Some(ended_from_service_deployments(&listed, &revisions)))
}

pub async fn collect(t: &Target, limit: usize) -> Result<(History, Option<String>), CliError> {
    let svc = t.service().await?;
    let arns = revisions(t, limit).await?;
    // The revision the service runs: the service's own task definition (its PRIMARY
    // deployment's on AWS; moto leaves a deployment's as it was at CreateService).
    let primary = svc.task_definition().map(str::to_string);
    let reported = from_service_deployments(t).await?;
    let note = reported.is_none().then(|| {
        format!(
            "{}; older revisions show `{UNKNOWN}`",
            not_reported("ListServiceDeployments or DescribeServiceRevisions")
        )
    });
    let from_services = ended_from_services(svc.deployments());
    let mut rows = Vec::new();
    for arn in &arns {
        let described = t
            .aws
            .read(
                Service::Ecs,
                "DescribeTaskDefinition",
                arn,
                t.aws
                    .ecs
                    .describe_task_definition()
                    .task_definition(arn)
                    .send(),
            )
            .await
            .map_err(aws_failure)?;
        let deployment = match &reported {
            Some(ended) => ended
                .get(arn)
                .cloned()
                .unwrap_or_else(|| NOT_DEPLOYED.to_string()),
            None => from_services
                .get(arn)
                .cloned()
                .unwrap_or_else(|| UNKNOWN.to_string()),
        };
        rows.push(row(
            arn,
            described.task_definition(),
            deployment,
            primary.as_deref() == Some(arn.as_str()),
        ));
    }
    Ok((
        History {
            spec: t.key.to_string(),
            family: t.family.clone(),
            service_deployments_reported: reported.is_some(),
            revisions: rows,
        },
        note,
    ))
}

/// The table form (pure).
pub fn render(h: &History, note: Option<&str>) -> String {
    let mut out = String::new();
    if h.revisions.is_empty() {
        out.push_str(&format!(
            "{}: no task-definition revisions of family {}\n",
            h.spec, h.family
        ));
    } else {
        let rows: Vec<Vec<String>> = h
            .revisions
            .iter()
            .map(|r| {
                vec![
                    r.revision.clone(),
                    r.registered_at.clone().unwrap_or_else(|| "-".into()),
                    r.images.join(", "),
                    if r.current {
                        format!("{} (current)", r.deployment)
                    } else {
                        r.deployment.clone()
                    },
                ]
            })
            .collect();
        out.push_str(&table(
            &["REVISION", "REGISTERED", "IMAGES", "DEPLOYMENT"],
            &rows,
        ));
    }
    if let Some(n) = note {
        out.push_str(n);
        out.push('\n');
    }
    out
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let t = super::target(&args.common, ctx).await?;
    let (history, note) = collect(&t, args.limit as usize).await?;
    match args.output {
        OutputFormat::Table => write!(ctx.out, "{}", render(&history, note.as_deref()))?,
        f => super::print_structured(
            ctx,
            f,
            &serde_json::to_value(&history).expect("the history serialises"),
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::primitives::DateTime;
    use aws_sdk_ecs::types::DeploymentRolloutState;

    use super::*;

    const TD: &str = "arn:aws:ecs:eu-west-1:123456789012:task-definition/";
    const REV: &str = "arn:aws:ecs:eu-west-1:123456789012:service-revision/prod/web/";

    #[test]
    fn a_family_prefix_listing_keeps_only_the_familys_own_revisions() {
        let listed = [
            format!("{TD}web:4"),
            format!("{TD}web-admin:9"),
            format!("{TD}web:3"),
        ];
        assert_eq!(
            of_family(&listed, "web"),
            [format!("{TD}web:4"), format!("{TD}web:3")]
        );
    }

    #[test]
    fn revisions_are_ordered_newest_first_by_number_whatever_order_they_were_listed_in() {
        let listed = vec![
            format!("{TD}web:9"),
            format!("{TD}web:10"),
            format!("{TD}web:2"),
        ];
        assert_eq!(
            newest_first(listed),
            [
                format!("{TD}web:10"),
                format!("{TD}web:9"),
                format!("{TD}web:2")
            ]
        );
    }

    #[test]
    fn a_row_carries_every_containers_image_and_the_registration_time_in_utc() {
        use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition};
        // DescribeTaskDefinition's `taskDefinition`, as the API reference documents it.
        let td = TaskDefinition::builder()
            .task_definition_arn(format!("{TD}web:4"))
            .family("web")
            .revision(4)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("app:v4")
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("proxy")
                    .image("envoy:1.31")
                    .build(),
            )
            .registered_at(DateTime::from_secs(1_729_857_600))
            .build();
        let r = row(&format!("{TD}web:4"), Some(&td), "succeeded".into(), true);
        assert_eq!(r.revision, "web:4");
        assert_eq!(r.images, ["app:v4", "envoy:1.31"]);
        assert_eq!(r.registered_at.as_deref(), Some("2024-10-25T12:00:00Z"));
        assert!(r.current);
        let bare = row(&format!("{TD}web:3"), None, UNKNOWN.into(), false);
        assert!(bare.images.is_empty() && bare.registered_at.is_none());
    }

    #[test]
    fn each_service_deployment_status_reads_as_how_it_ended() {
        use ServiceDeploymentStatus as S;
        assert_eq!(outcome(Some(&S::Successful), Some("done")), "succeeded");
        assert_eq!(
            outcome(
                Some(&S::RollbackSuccessful),
                Some("Service deployment rolled back because alarms were triggered.")
            ),
            "rolled back: Service deployment rolled back because alarms were triggered."
        );
        assert_eq!(outcome(Some(&S::Stopped), None), "stopped");
        assert_eq!(outcome(Some(&S::InProgress), None), "in progress");
        assert_eq!(outcome(Some(&S::RollbackFailed), None), "rollback failed");
        assert_eq!(outcome(None, None), "unknown");
    }

    #[test]
    fn the_newest_service_deployment_of_each_task_definition_says_how_it_ended() {
        // ListServiceDeployments' briefs (newest last here: the order is not promised) and
        // DescribeServiceRevisions' revision -> task definition.
        let brief = |rev: &str, at: i64, status: ServiceDeploymentStatus, reason: Option<&str>| {
            ServiceDeploymentBrief::builder()
                .service_deployment_arn(format!("sd-{rev}-{at}"))
                .target_service_revision_arn(format!("{REV}{rev}"))
                .created_at(DateTime::from_secs(at))
                .status(status)
                .set_status_reason(reason.map(str::to_string))
                .build()
        };
        let listed = [
            brief(
                "7",
                1_700_000_000,
                ServiceDeploymentStatus::Successful,
                None,
            ),
            brief(
                "8",
                1_700_000_600,
                ServiceDeploymentStatus::RollbackSuccessful,
                Some("alarm prod-web-http5xxPercent"),
            ),
            // The same task definition deployed again later (a new revision of the service).
            brief(
                "9",
                1_700_001_200,
                ServiceDeploymentStatus::Successful,
                None,
            ),
            // A revision DescribeServiceRevisions did not name: skipped.
            brief(
                "10",
                1_700_001_800,
                ServiceDeploymentStatus::InProgress,
                None,
            ),
        ];
        let revisions = HashMap::from([
            (format!("{REV}7"), format!("{TD}web:3")),
            (format!("{REV}8"), format!("{TD}web:4")),
            (format!("{REV}9"), format!("{TD}web:3")),
        ]);
        let ended = ended_from_service_deployments(&listed, &revisions);
        assert_eq!(ended.len(), 2);
        assert_eq!(ended[&format!("{TD}web:3")], "succeeded");
        assert_eq!(
            ended[&format!("{TD}web:4")],
            "rolled back: alarm prod-web-http5xxPercent"
        );
    }

    #[test]
    fn without_service_deployments_the_current_deployments_say_what_they_can() {
        let d = |id: &str, status: &str, td: &str, state: DeploymentRolloutState| {
            Deployment::builder()
                .id(id)
                .status(status)
                .task_definition(format!("{TD}{td}"))
                .rollout_state(state)
                .rollout_state_reason("ECS deployment circuit breaker: tasks failed to start.")
                .build()
        };
        let ended = ended_from_services(&[
            d("a", "PRIMARY", "web:5", DeploymentRolloutState::InProgress),
            d("b", "ACTIVE", "web:4", DeploymentRolloutState::Completed),
        ]);
        assert_eq!(ended[&format!("{TD}web:5")], "in progress");
        assert_eq!(ended[&format!("{TD}web:4")], "being replaced");
        let ended = ended_from_services(&[
            d("c", "PRIMARY", "web:4", DeploymentRolloutState::Completed),
            d("d", "ACTIVE", "web:5", DeploymentRolloutState::Failed),
        ]);
        assert_eq!(ended[&format!("{TD}web:4")], "deployed");
        assert_eq!(
            ended[&format!("{TD}web:5")],
            "failed: ECS deployment circuit breaker: tasks failed to start."
        );
    }

    #[test]
    fn the_table_lists_revisions_newest_first_and_marks_the_current_one() {
        let row = |rev: &str, image: &str, deployment: &str, current: bool| RevisionRow {
            revision: rev.into(),
            task_definition: format!("{TD}{rev}"),
            images: vec![image.into()],
            registered_at: Some("2026-12-02T19:40:11Z".into()),
            deployment: deployment.into(),
            current,
        };
        let h = History {
            spec: "ServiceSpec/web".into(),
            family: "web".into(),
            service_deployments_reported: false,
            revisions: vec![
                row("web:2", "app:v2", "deployed", true),
                row("web:1", "app:v1", UNKNOWN, false),
            ],
        };
        let text = render(&h, Some("a note"));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("REVISION"), "{text}");
        assert!(
            lines[1].starts_with("web:2") && lines[1].ends_with("app:v2  deployed (current)"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("web:1") && lines[2].ends_with("unknown"),
            "{text}"
        );
        assert_eq!(lines[3], "a note");
    }
}

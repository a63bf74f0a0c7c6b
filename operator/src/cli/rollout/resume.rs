//! `ecs-operator rollout continue NAME --store URL [--rollback]`: let a service deployment
//! paused by a `PAUSE` hook go on (ContinueServiceDeployment action CONTINUE), or roll it back
//! from there (`--rollback`: action ROLLBACK). (`continue` is a Rust keyword, hence the
//! module's name.)
//!
//! Finds the in-progress deployments (ListServiceDeployments, status PENDING or IN_PROGRESS),
//! reads them (DescribeServiceDeployments) and acts on the newest one with hooks
//! `AWAITING_ACTION` in `lifecycleHookDetails`: CONTINUE goes to every hook awaiting action
//! (two pause hooks of one stage both hold it), ROLLBACK to the first (one rollback is enough).
//! Exit 1 when nothing is paused, or when the endpoint does not offer one of the operations
//! (named; nothing is changed, nothing retried).

use aws_sdk_ecs::types::{DeploymentLifecycleHookAction, ServiceDeploymentStatus};

use super::{aws_failure, short, Common};
use crate::aws::Service;
use crate::cli::{CliError, Context};
use crate::resources::kinds::ecs_service::deployments::{means_not_offered, View};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Roll the paused deployment back to the previous service revision instead
    /// (ContinueServiceDeployment action ROLLBACK).
    #[arg(long)]
    pub rollback: bool,
}

/// What to act on: the newest paused deployment of `views` and its hooks awaiting action
/// (pure); `rollback`: the first hook only.
pub fn choose(views: &[View], rollback: bool) -> Option<(&View, Vec<String>)> {
    let v = views
        .iter()
        .filter(|v| v.paused())
        .max_by_key(|v| v.created_at.or(v.updated_at).unwrap_or(0))?;
    let mut hooks = v.paused_hooks.clone();
    if rollback {
        hooks.truncate(1);
    }
    Some((v, hooks))
}

/// Why nothing can be continued (pure): no deployment in progress, or one in progress that no
/// hook holds.
pub fn nothing_paused(views: &[View], service: &str) -> String {
    match views.iter().find(|v| v.in_progress()) {
        Some(v) => format!(
            "service deployment {} of the {service} is in progress ({}) and no hook awaits action: nothing to continue",
            short(&v.arn),
            v.progress()
        ),
        None => format!("no service deployment of the {service} is in progress: nothing to continue"),
    }
}

fn missing(operation: &str, service: &str) -> CliError {
    CliError::Failed(format!(
        "this endpoint does not offer {operation}, which finds the paused deployment: nothing was continued (ContinueServiceDeployment was not called) for the {service}"
    ))
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let t = super::target(&args.common, ctx).await?;
    t.service().await?;
    let statuses = [
        ServiceDeploymentStatus::Pending,
        ServiceDeploymentStatus::InProgress,
    ];
    let Some(listed) = t.list_deployments(&statuses, 1).await? else {
        return Err(missing("ListServiceDeployments", &t.describe()));
    };
    let arns: Vec<String> = listed
        .iter()
        .filter_map(|d| d.service_deployment_arn().map(str::to_string))
        .collect();
    let views: Vec<View> = if arns.is_empty() {
        Vec::new()
    } else {
        let Some(described) = t.describe_deployments(&arns).await? else {
            return Err(missing("DescribeServiceDeployments", &t.describe()));
        };
        described.iter().map(View::from_sdk).collect()
    };
    let Some((view, hooks)) = choose(&views, args.rollback) else {
        return Err(CliError::Failed(nothing_paused(&views, &t.describe())));
    };
    let action = if args.rollback {
        DeploymentLifecycleHookAction::Rollback
    } else {
        DeploymentLifecycleHookAction::Continue
    };
    for hook in &hooks {
        let done = t
            .aws
            .write(
                Service::Ecs,
                "ContinueServiceDeployment",
                &view.arn,
                t.aws
                    .ecs
                    .continue_service_deployment()
                    .service_deployment_arn(&view.arn)
                    .hook_id(hook)
                    .action(action.clone())
                    .send(),
            )
            .await;
        match done {
            Ok(_) => writeln!(
                ctx.out,
                "service deployment {} of the {}: hook {hook} answered {} ({})",
                view.arn,
                t.describe(),
                action.as_str(),
                if args.rollback {
                    "ECS rolls it back to the previous service revision"
                } else {
                    "the deployment goes on to its next stage"
                }
            )?,
            Err(e) if means_not_offered(e.code()) => {
                return Err(CliError::Failed(format!(
                    "this endpoint does not offer ContinueServiceDeployment: hook {hook} of service deployment {} was not answered",
                    view.arn
                )))
            }
            Err(e) => return Err(aws_failure(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{
        DeploymentLifecycleHookDetail, DeploymentLifecycleHookStatus, ServiceDeployment,
        ServiceDeploymentLifecycleStage,
    };

    use super::*;

    /// A DescribeServiceDeployments entry shaped as the API reference documents it.
    fn deployment(
        arn: &str,
        created: i64,
        hooks: &[(&str, DeploymentLifecycleHookStatus)],
    ) -> View {
        let mut d = ServiceDeployment::builder()
            .service_deployment_arn(arn)
            .status(ServiceDeploymentStatus::InProgress)
            .created_at(aws_sdk_ecs::primitives::DateTime::from_secs(created))
            .lifecycle_stage(ServiceDeploymentLifecycleStage::PostTestTrafficShift);
        for (id, status) in hooks {
            d = d.lifecycle_hook_details(
                DeploymentLifecycleHookDetail::builder()
                    .hook_id(*id)
                    .status(status.clone())
                    .build(),
            );
        }
        View::from_sdk(&d.build())
    }

    #[test]
    fn continue_answers_every_hook_awaiting_action_of_the_newest_paused_deployment() {
        use DeploymentLifecycleHookStatus as H;
        let views = [
            deployment("old", 1, &[("h0", H::AwaitingAction)]),
            deployment(
                "new",
                2,
                &[
                    ("h1", H::AwaitingAction),
                    ("h2", H::AwaitingAction),
                    ("h3", H::Succeeded),
                ],
            ),
            deployment("running", 3, &[("h4", H::InProgress)]),
        ];
        let (v, hooks) = choose(&views, false).unwrap();
        assert_eq!(
            (v.arn.as_str(), hooks),
            ("new", vec!["h1".to_string(), "h2".to_string()])
        );
        let (_, hooks) = choose(&views, true).unwrap();
        assert_eq!(hooks, ["h1"], "one rollback is enough");
    }

    #[test]
    fn nothing_paused_says_whether_a_deployment_is_in_progress() {
        use DeploymentLifecycleHookStatus as H;
        let views = [deployment("arn:sd/prod/web/abc", 1, &[("h", H::Succeeded)])];
        assert!(choose(&views, false).is_none());
        let why = nothing_paused(&views, "ecs service web in cluster prod");
        assert!(why.starts_with("service deployment abc of the ecs service web in cluster prod is in progress (stage POST_TEST_TRAFFIC_SHIFT)"), "{why}");
        assert!(
            why.ends_with("no hook awaits action: nothing to continue"),
            "{why}"
        );
        assert_eq!(
            nothing_paused(&[], "ecs service web in cluster prod"),
            "no service deployment of the ecs service web in cluster prod is in progress: nothing to continue"
        );
    }
}

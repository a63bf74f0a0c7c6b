//! `ecs-operator rollout stop NAME --store URL --rollback`: stop the service deployment in
//! progress by rolling it back to the previous service revision.
//!
//! The stop type: StopServiceDeployment's API model lists `ABORT` and `ROLLBACK`, but its
//! reference and the developer guide ("Stopping Amazon ECS service deployments") document
//! `ROLLBACK` alone ("The valid values are ROLLBACK"), with no behaviour for `ABORT`. So the
//! command sends `ROLLBACK` only, and asks for `--rollback` to say so: `stop` without it is a
//! usage error that reads and writes nothing, rather than an undocumented write to a service
//! serving traffic.
//!
//! Finds the deployment with ListServiceDeployments (status PENDING or IN_PROGRESS, the newest
//! by creation time). Exit 1 when none is in progress, or when the endpoint does not offer
//! ListServiceDeployments or StopServiceDeployment (named; nothing is stopped, nothing retried).
//! After a rollback the operator reports the spec `Degraded` (`RolloutComplete` `RolledBack`)
//! and does not deploy that revision again until the spec changes.

use aws_sdk_ecs::types::{
    ServiceDeploymentBrief, ServiceDeploymentStatus, StopServiceDeploymentStopType,
};

use super::{aws_failure, Common};
use crate::aws::Service;
use crate::cli::{CliError, Context};
use crate::resources::kinds::ecs_service::deployments::{means_not_offered, newest};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Roll the deployment back to the previous service revision (StopServiceDeployment stopType
    /// ROLLBACK). Required: it is the one stop AWS documents.
    #[arg(long)]
    pub rollback: bool,
}

/// The message of `stop` without `--rollback`.
pub const NEEDS_ROLLBACK: &str = "`rollout stop` needs --rollback: AWS documents one way to stop a service deployment, rolling it back to the previous service revision (StopServiceDeployment stopType ROLLBACK); the API's other stop type, ABORT, is undocumented, so it is never sent. Nothing was read or changed";

/// The deployment in progress among `listed` (pure): the newest PENDING or IN_PROGRESS one.
pub fn in_progress(listed: &[ServiceDeploymentBrief]) -> Option<&str> {
    let going: Vec<ServiceDeploymentBrief> = listed
        .iter()
        .filter(|d| {
            matches!(
                d.status(),
                Some(ServiceDeploymentStatus::Pending | ServiceDeploymentStatus::InProgress)
            )
        })
        .cloned()
        .collect();
    let arn = newest(&going)?;
    listed
        .iter()
        .find_map(|d| d.service_deployment_arn().filter(|a| *a == arn))
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    if !args.rollback {
        return Err(CliError::Environment(NEEDS_ROLLBACK.to_string()));
    }
    let t = super::target(&args.common, ctx).await?;
    t.service().await?;
    let statuses = [
        ServiceDeploymentStatus::Pending,
        ServiceDeploymentStatus::InProgress,
    ];
    let Some(listed) = t.list_deployments(&statuses, 1).await? else {
        return Err(CliError::Failed(format!(
            "this endpoint does not offer ListServiceDeployments, which finds the deployment to stop: nothing was stopped (StopServiceDeployment was not called) for the {}",
            t.describe()
        )));
    };
    let Some(arn) = in_progress(&listed).map(str::to_string) else {
        return Err(CliError::Failed(format!(
            "no service deployment of the {} is in progress: nothing to stop",
            t.describe()
        )));
    };
    let stopped = t
        .aws
        .write(
            Service::Ecs,
            "StopServiceDeployment",
            &arn,
            t.aws
                .ecs
                .stop_service_deployment()
                .service_deployment_arn(&arn)
                .stop_type(StopServiceDeploymentStopType::Rollback)
                .send(),
        )
        .await;
    match stopped {
        Ok(o) => {
            writeln!(
                ctx.out,
                "stopped service deployment {} of the {} (stop type ROLLBACK): ECS rolls it back to the previous service revision; `ecs-operator rollout status {}` follows it",
                o.service_deployment_arn().unwrap_or(&arn),
                t.describe(),
                args.common.name
            )?;
            Ok(())
        }
        Err(e) if means_not_offered(e.code()) => Err(CliError::Failed(format!(
            "this endpoint does not offer StopServiceDeployment: service deployment {arn} was not stopped"
        ))),
        Err(e) => Err(aws_failure(e)),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::primitives::DateTime;

    use super::*;

    fn brief(arn: &str, at: i64, status: ServiceDeploymentStatus) -> ServiceDeploymentBrief {
        ServiceDeploymentBrief::builder()
            .service_deployment_arn(arn)
            .created_at(DateTime::from_secs(at))
            .status(status)
            .build()
    }

    #[test]
    fn the_deployment_to_stop_is_the_newest_pending_or_in_progress_one() {
        let listed = [
            brief("done", 1_700_000_900, ServiceDeploymentStatus::Successful),
            brief("going", 1_700_000_600, ServiceDeploymentStatus::InProgress),
            brief("older", 1_700_000_000, ServiceDeploymentStatus::InProgress),
        ];
        assert_eq!(in_progress(&listed), Some("going"));
        let pending = [brief("p", 1, ServiceDeploymentStatus::Pending)];
        assert_eq!(in_progress(&pending), Some("p"));
    }

    #[test]
    fn nothing_in_progress_means_nothing_to_stop() {
        let listed = [
            brief("a", 1, ServiceDeploymentStatus::Successful),
            brief("b", 2, ServiceDeploymentStatus::RollbackSuccessful),
            brief("c", 3, ServiceDeploymentStatus::StopRequested),
        ];
        assert_eq!(in_progress(&listed), None);
        assert_eq!(in_progress(&[]), None);
    }

    #[test]
    fn stop_without_rollback_is_a_usage_error_that_names_the_flag() {
        let e = CliError::Environment(NEEDS_ROLLBACK.to_string());
        assert_eq!(e.exit_code(), crate::cli::EXIT_USAGE);
        assert!(NEEDS_ROLLBACK.contains("--rollback") && NEEDS_ROLLBACK.contains("ABORT"));
    }
}

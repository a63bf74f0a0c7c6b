//! The service deployments ECS reports (ListServiceDeployments + DescribeServiceDeployments):
//! the stage, the traffic split, the hooks waiting, and why a deployment rolled back. They add
//! to what DescribeServices says; where an endpoint does not offer them (moto 5.2.5 answers
//! both with an HTML 500), the answer is recognised, remembered for [`REPROBE`] so no reconcile
//! asks again meanwhile (no retry storm), and the rollout is followed from DescribeServices
//! alone.

use aws_sdk_ecs::types::{
    DeploymentLifecycleHookStatus, ServiceDeployment, ServiceDeploymentBrief,
    ServiceDeploymentRollbackMonitorsStatus, ServiceDeploymentStatus, ServiceRevisionSummary,
};

use crate::aws::Service;
pub use crate::resources::rollout_poll::{ServiceDeploymentsSupport as Support, REPROBE};
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;

/// An error that says the operation is not there at all (rather than a passing failure):
/// AWS's unknown-operation codes, or an answer that is not an AWS error (moto's HTML 500).
pub fn means_not_offered(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "UnknownOperationException"
                | "UnknownOperation"
                | "InvalidAction"
                | "NotImplemented"
                | "Unknown"
                | "Response"
        )
    )
}

/// One service deployment as the status tells it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct View {
    pub arn: String,
    /// `IN_PROGRESS`, `SUCCESSFUL`, `ROLLBACK_SUCCESSFUL`...
    pub status: String,
    /// `TEST_TRAFFIC_SHIFT`, `BAKE_TIME`...
    pub stage: Option<String>,
    /// The new revision's requested share of production traffic, percent.
    pub new_traffic: Option<f64>,
    /// The hooks waiting for `rollout continue` (their ids).
    pub paused_hooks: Vec<String>,
    /// Why ECS rolled back: the alarms that fired, or the circuit breaker.
    pub rollback: Option<String>,
    pub status_reason: Option<String>,
    /// The service revision the deployment deploys (`targetServiceRevision.arn`): the one a
    /// rollback rolled away from.
    pub target_revision: Option<String>,
    /// The bake time of the deployment's configuration, minutes.
    pub bake_minutes: Option<u32>,
    /// When ECS last changed the deployment (epoch seconds): the start of its current stage.
    pub updated_at: Option<i64>,
    /// When the deployment was created (epoch seconds).
    pub created_at: Option<i64>,
    /// The revision being deployed, with its traffic and tasks (`targetServiceRevision`).
    pub target: Option<RevisionView>,
    /// The revisions it replaces (`sourceServiceRevisions`), in ECS's order.
    pub sources: Vec<RevisionView>,
    /// The rollback alarms in alarm (`alarms.triggeredAlarmNames` while `TRIGGERED`).
    pub alarms_fired: Vec<String>,
}

/// One service revision of a deployment: its share of traffic and its tasks.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionView {
    pub arn: String,
    /// Requested share of production traffic, percent (`None`: ECS did not say).
    pub production_traffic: Option<f64>,
    /// Requested share of test traffic, percent.
    pub test_traffic: Option<f64>,
    pub requested_tasks: i32,
    pub running_tasks: i32,
    pub pending_tasks: i32,
}

impl RevisionView {
    /// From a `ServiceRevisionSummary` (pure).
    pub fn from_sdk(r: &ServiceRevisionSummary) -> RevisionView {
        RevisionView {
            arn: r.arn().unwrap_or_default().to_string(),
            production_traffic: r.requested_production_traffic_weight(),
            test_traffic: r.requested_test_traffic_weight(),
            requested_tasks: r.requested_task_count(),
            running_tasks: r.running_task_count(),
            pending_tasks: r.pending_task_count(),
        }
    }
}

impl View {
    /// From DescribeServiceDeployments' `serviceDeployments[]` (pure).
    pub fn from_sdk(d: &ServiceDeployment) -> View {
        let status = d
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        let fired: Vec<String> = d
            .alarms()
            .filter(|a| a.status() == Some(&ServiceDeploymentRollbackMonitorsStatus::Triggered))
            .map(|a| a.triggered_alarm_names().to_vec())
            .unwrap_or_default();
        let breaker = d.deployment_circuit_breaker().is_some_and(|c| {
            c.status() == Some(&ServiceDeploymentRollbackMonitorsStatus::Triggered)
        });
        let rolled_back = matches!(
            d.status(),
            Some(
                ServiceDeploymentStatus::RollbackRequested
                    | ServiceDeploymentStatus::RollbackInProgress
                    | ServiceDeploymentStatus::RollbackSuccessful
                    | ServiceDeploymentStatus::RollbackFailed
            )
        ) || d.rollback().is_some();
        let rollback = rolled_back.then(|| {
            if !fired.is_empty() {
                format!("alarm {} fired", fired.join(", "))
            } else if breaker {
                let n = d
                    .deployment_circuit_breaker()
                    .map(|c| c.failure_count())
                    .unwrap_or_default();
                format!("the circuit breaker tripped ({n} failed tasks)")
            } else {
                d.rollback()
                    .and_then(|r| r.reason())
                    .or(d.status_reason())
                    .unwrap_or("ECS rolled the deployment back")
                    .to_string()
            }
        });
        View {
            arn: d.service_deployment_arn().unwrap_or_default().to_string(),
            status,
            stage: d.lifecycle_stage().map(|s| s.as_str().to_string()),
            new_traffic: d
                .target_service_revision()
                .and_then(|r| r.requested_production_traffic_weight()),
            paused_hooks: d
                .lifecycle_hook_details()
                .iter()
                .filter(|h| h.status() == Some(&DeploymentLifecycleHookStatus::AwaitingAction))
                .filter_map(|h| h.hook_id().map(str::to_string))
                .collect(),
            rollback,
            status_reason: d.status_reason().map(str::to_string),
            target_revision: d
                .target_service_revision()
                .and_then(|r| r.arn())
                .map(str::to_string),
            bake_minutes: d
                .deployment_configuration()
                .and_then(|c| c.bake_time_in_minutes())
                .map(|m| m.max(0) as u32),
            updated_at: d.updated_at().map(|t| t.secs()),
            created_at: d.created_at().map(|t| t.secs()),
            target: d.target_service_revision().map(RevisionView::from_sdk),
            sources: d
                .source_service_revisions()
                .iter()
                .map(RevisionView::from_sdk)
                .collect(),
            alarms_fired: fired.clone(),
        }
    }

    /// Whether ECS rolled this deployment back (or is rolling it back).
    pub fn rolled_back(&self) -> bool {
        self.rollback.is_some()
    }

    /// In the bake stage: about how many minutes of bake time are left at `now` (epoch
    /// seconds), counted from the deployment's last change, which is when the stage began.
    /// An estimate: ECS reports no end time for the bake.
    pub fn bake_left_minutes(&self, now: i64) -> Option<u32> {
        if self.stage.as_deref() != Some("BAKE_TIME") {
            return None;
        }
        let (bake, since) = (self.bake_minutes?, self.updated_at?);
        let elapsed = ((now - since).max(0) / 60) as u32;
        Some(bake.saturating_sub(elapsed))
    }

    pub fn in_progress(&self) -> bool {
        matches!(self.status.as_str(), "PENDING" | "IN_PROGRESS")
    }

    pub fn paused(&self) -> bool {
        self.in_progress() && !self.paused_hooks.is_empty()
    }

    /// `stage TEST_TRAFFIC_SHIFT, 5% of production traffic on the new revision`.
    pub fn progress(&self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.progress_at(now)
    }

    /// [`View::progress`] at `now` (epoch seconds; pure).
    pub fn progress_at(&self, now: i64) -> String {
        let mut s = match &self.stage {
            Some(stage) => format!("stage {stage}"),
            None => format!("deployment {}", self.status),
        };
        if let Some(w) = self.new_traffic {
            s.push_str(&format!(", {w}% of production traffic on the new revision"));
        }
        if let Some(left) = self.bake_left_minutes(now) {
            s.push_str(&format!(", about {left} min of bake time left"));
        }
        if self.paused() {
            s.push_str(": paused by a hook (ecs-operator rollout continue)");
        }
        s
    }
}

/// The newest service deployment of `service` in `cluster`; `None` when the endpoint does not
/// offer the operations (remembered, see [`Support`]) or when there is none. A passing failure
/// is `None` too: this only adds to the status, it never fails a reconcile.
pub async fn latest(
    run: &SpecRun<'_>,
    cluster: &str,
    service: &str,
) -> Result<Option<View>, ResourceError> {
    if !run.aws.service_deployments.offered() {
        return Ok(None);
    }
    let listed = run
        .aws
        .read(
            Service::Ecs,
            "ListServiceDeployments",
            service,
            run.aws
                .ecs
                .list_service_deployments()
                .cluster(cluster)
                .service(service)
                .max_results(LISTED)
                .send(),
        )
        .await;
    let listed = match listed {
        Ok(l) => l,
        Err(e) => return Ok(not_offered(run, e)),
    };
    let Some(arn) = newest(listed.service_deployments()) else {
        return Ok(None);
    };
    let described = run
        .aws
        .read(
            Service::Ecs,
            "DescribeServiceDeployments",
            service,
            run.aws
                .ecs
                .describe_service_deployments()
                .service_deployment_arns(arn)
                .send(),
        )
        .await;
    match described {
        Ok(d) => Ok(d.service_deployments().first().map(View::from_sdk)),
        Err(e) => Ok(not_offered(run, e)),
    }
}

/// How many service deployments [`latest`] lists to find the newest (the API reference does
/// not promise an order).
const LISTED: i32 = 10;

/// The ARN of the newest of `listed` by creation time (pure).
pub fn newest(listed: &[ServiceDeploymentBrief]) -> Option<&str> {
    listed
        .iter()
        .max_by_key(|d| {
            d.created_at()
                .or(d.started_at())
                .map(|t| (t.secs(), t.subsec_nanos()))
        })
        .and_then(|d| d.service_deployment_arn())
}

/// The task definition of the service revision `revision` (DescribeServiceRevisions); `None`
/// where the endpoint does not offer it or does not know the revision.
pub async fn revision_task_definition(
    run: &SpecRun<'_>,
    service: &str,
    revision: &str,
) -> Result<Option<String>, ResourceError> {
    let described = run
        .aws
        .read(
            Service::Ecs,
            "DescribeServiceRevisions",
            service,
            run.aws
                .ecs
                .describe_service_revisions()
                .service_revision_arns(revision)
                .send(),
        )
        .await;
    match described {
        Ok(d) => Ok(d
            .service_revisions()
            .iter()
            .find(|r| r.service_revision_arn() == Some(revision))
            .and_then(|r| r.task_definition())
            .map(str::to_string)),
        Err(e) => {
            not_offered(run, e);
            Ok(None)
        }
    }
}

fn not_offered(run: &SpecRun<'_>, e: ResourceError) -> Option<View> {
    if means_not_offered(e.code()) {
        run.aws.service_deployments.set_missing();
        tracing::info!(error = %e, "the endpoint does not offer service deployments; following rollouts from DescribeServices alone");
    } else {
        tracing::warn!(error = %e, "reading the service deployment failed; following the rollout from DescribeServices alone");
    }
    None
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecs::types::{
        DeploymentLifecycleHookDetail, Rollback, ServiceDeploymentAlarms,
        ServiceDeploymentCircuitBreaker, ServiceDeploymentLifecycleStage, ServiceRevisionSummary,
    };

    use super::*;

    // The shapes below follow DescribeServiceDeployments' response as botocore's ecs
    // service-2.json (ServiceDeployment, ServiceRevisionSummary, ServiceDeploymentAlarms,
    // ServiceDeploymentCircuitBreaker, Rollback, DeploymentLifecycleHookDetail) and the API
    // reference's example document them.
    const ARN: &str = "arn:aws:ecs:us-west-2:123456789012:service-deployment/example/sd-example/NCWGC2ZR-taawPAYrIaU5";

    #[test]
    fn a_canary_in_its_bake_reports_the_stage_and_the_traffic_on_the_new_revision() {
        let d = ServiceDeployment::builder()
            .service_deployment_arn(ARN)
            .status(ServiceDeploymentStatus::InProgress)
            .lifecycle_stage(ServiceDeploymentLifecycleStage::BakeTime)
            .target_service_revision(
                ServiceRevisionSummary::builder()
                    .arn("arn:aws:ecs:us-west-2:123456789012:service-revision/example/sd-example/4980306466373577095")
                    .requested_task_count(2)
                    .running_task_count(2)
                    .pending_task_count(0)
                    .requested_production_traffic_weight(5.0)
                    .requested_test_traffic_weight(100.0)
                    .build(),
            )
            .build();
        let v = View::from_sdk(&d);
        assert!(v.in_progress() && !v.paused());
        assert_eq!(v.rollback, None);
        assert_eq!(
            v.progress(),
            "stage BAKE_TIME, 5% of production traffic on the new revision"
        );
    }

    #[test]
    fn a_canary_reports_the_traffic_and_tasks_of_both_revisions_and_the_alarms_in_alarm() {
        use aws_sdk_ecs::primitives::DateTime;
        // DescribeServiceDeployments mid-canary: 5% of production and all test traffic on the
        // target revision, the source revision holding the rest, one rollback alarm in alarm.
        let d = ServiceDeployment::builder()
            .service_deployment_arn(ARN)
            .status(ServiceDeploymentStatus::InProgress)
            .created_at(DateTime::from_secs(1_700_000_000))
            .lifecycle_stage(ServiceDeploymentLifecycleStage::ProductionTrafficShift)
            .source_service_revisions(
                ServiceRevisionSummary::builder()
                    .arn("arn:aws:ecs:us-west-2:123456789012:service-revision/example/sd-example/1")
                    .requested_task_count(2)
                    .running_task_count(2)
                    .pending_task_count(0)
                    .requested_production_traffic_weight(95.0)
                    .requested_test_traffic_weight(0.0)
                    .build(),
            )
            .target_service_revision(
                ServiceRevisionSummary::builder()
                    .arn("arn:aws:ecs:us-west-2:123456789012:service-revision/example/sd-example/2")
                    .requested_task_count(2)
                    .running_task_count(1)
                    .pending_task_count(1)
                    .requested_production_traffic_weight(5.0)
                    .requested_test_traffic_weight(100.0)
                    .build(),
            )
            .alarms(
                ServiceDeploymentAlarms::builder()
                    .status(ServiceDeploymentRollbackMonitorsStatus::Triggered)
                    .alarm_names("prod-web-http5xxPercent")
                    .triggered_alarm_names("prod-web-http5xxPercent")
                    .build(),
            )
            .build();
        let v = View::from_sdk(&d);
        assert_eq!(v.created_at, Some(1_700_000_000));
        let target = v.target.as_ref().expect("the target revision");
        assert_eq!(
            (
                target.production_traffic,
                target.test_traffic,
                target.running_tasks,
                target.pending_tasks,
                target.requested_tasks
            ),
            (Some(5.0), Some(100.0), 1, 1, 2)
        );
        assert_eq!(v.sources.len(), 1);
        assert_eq!(v.sources[0].production_traffic, Some(95.0));
        assert!(v.sources[0].arn.ends_with("/1"));
        assert_eq!(v.alarms_fired, ["prod-web-http5xxPercent"]);
        // Still in progress: the alarm is in alarm, ECS has not rolled back (yet).
        assert!(v.in_progress() && !v.rolled_back());
    }

    #[test]
    fn a_rollback_names_the_alarm_that_fired() {
        let d = ServiceDeployment::builder()
            .service_deployment_arn(ARN)
            .status(ServiceDeploymentStatus::RollbackSuccessful)
            .status_reason("Service deployment rolled back because alarms were triggered.")
            .alarms(
                ServiceDeploymentAlarms::builder()
                    .status(ServiceDeploymentRollbackMonitorsStatus::Triggered)
                    .alarm_names("prod-web-http5xxPercent")
                    .alarm_names("existing-alarm")
                    .triggered_alarm_names("prod-web-http5xxPercent")
                    .build(),
            )
            .rollback(
                Rollback::builder()
                    .reason(
                        "Service deployment rolled back because of alarm prod-web-http5xxPercent",
                    )
                    .service_revision_arn(
                        "arn:aws:ecs:us-west-2:123456789012:service-revision/example/sd-example/1",
                    )
                    .build(),
            )
            .build();
        let v = View::from_sdk(&d);
        assert!(!v.in_progress());
        assert_eq!(
            v.rollback.as_deref(),
            Some("alarm prod-web-http5xxPercent fired")
        );
    }

    #[test]
    fn a_rollback_by_the_circuit_breaker_says_so() {
        let d = ServiceDeployment::builder()
            .status(ServiceDeploymentStatus::RollbackInProgress)
            .deployment_circuit_breaker(
                ServiceDeploymentCircuitBreaker::builder()
                    .status(ServiceDeploymentRollbackMonitorsStatus::Triggered)
                    .failure_count(10)
                    .threshold(10)
                    .build(),
            )
            .alarms(
                ServiceDeploymentAlarms::builder()
                    .status(ServiceDeploymentRollbackMonitorsStatus::Monitoring)
                    .build(),
            )
            .build();
        assert_eq!(
            View::from_sdk(&d).rollback.as_deref(),
            Some("the circuit breaker tripped (10 failed tasks)")
        );
    }

    #[test]
    fn a_pause_hook_awaiting_action_holds_the_deployment() {
        let d = ServiceDeployment::builder()
            .status(ServiceDeploymentStatus::InProgress)
            .lifecycle_stage(ServiceDeploymentLifecycleStage::PostTestTrafficShift)
            .lifecycle_hook_details(
                DeploymentLifecycleHookDetail::builder()
                    .hook_id("hook-1")
                    .status(DeploymentLifecycleHookStatus::AwaitingAction)
                    .build(),
            )
            .lifecycle_hook_details(
                DeploymentLifecycleHookDetail::builder()
                    .hook_id("hook-0")
                    .status(DeploymentLifecycleHookStatus::Succeeded)
                    .build(),
            )
            .build();
        let v = View::from_sdk(&d);
        assert!(v.paused());
        assert_eq!(v.paused_hooks, ["hook-1"]);
        assert!(v
            .progress()
            .ends_with("paused by a hook (ecs-operator rollout continue)"));
    }

    #[test]
    fn the_newest_listed_deployment_is_chosen_by_creation_time_not_by_position() {
        use aws_sdk_ecs::primitives::DateTime;
        let brief = |arn: &str, at: i64| {
            ServiceDeploymentBrief::builder()
                .service_deployment_arn(arn)
                .created_at(DateTime::from_secs(at))
                .status(ServiceDeploymentStatus::Successful)
                .build()
        };
        let listed = [
            brief("old", 1_700_000_000),
            brief("new", 1_700_000_600),
            brief("older", 1_600_000_000),
        ];
        assert_eq!(newest(&listed), Some("new"));
        assert_eq!(newest(&[]), None);
    }

    #[test]
    fn the_bake_stage_reports_about_how_much_bake_time_is_left() {
        use aws_sdk_ecs::primitives::DateTime;
        use aws_sdk_ecs::types::ServiceDeploymentLifecycleStage;
        let d = ServiceDeployment::builder()
            .status(ServiceDeploymentStatus::InProgress)
            .lifecycle_stage(ServiceDeploymentLifecycleStage::BakeTime)
            .updated_at(DateTime::from_secs(1_700_000_000))
            .deployment_configuration(
                aws_sdk_ecs::types::DeploymentConfiguration::builder()
                    .bake_time_in_minutes(10)
                    .build(),
            )
            .target_service_revision(
                ServiceRevisionSummary::builder()
                    .arn("arn:aws:ecs:us-west-2:123456789012:service-revision/example/sd-example/2")
                    .requested_production_traffic_weight(100.0)
                    .build(),
            )
            .build();
        let v = View::from_sdk(&d);
        assert_eq!(v.bake_left_minutes(1_700_000_000 + 4 * 60 + 30), Some(6));
        assert_eq!(v.bake_left_minutes(1_700_000_000 + 3600), Some(0));
        assert_eq!(
            v.progress_at(1_700_000_000 + 4 * 60),
            "stage BAKE_TIME, 100% of production traffic on the new revision, about 6 min of bake time left"
        );
        assert_eq!(
            v.target_revision.as_deref(),
            Some("arn:aws:ecs:us-west-2:123456789012:service-revision/example/sd-example/2")
        );
        let traffic = View {
            stage: Some("PRODUCTION_TRAFFIC_SHIFT".into()),
            ..v
        };
        assert_eq!(traffic.bake_left_minutes(1_700_000_000), None);
    }

    #[test]
    fn only_answers_that_say_the_operation_is_missing_disable_it() {
        assert!(means_not_offered(Some("UnknownOperationException")));
        assert!(means_not_offered(Some("Unknown")));
        assert!(!means_not_offered(Some("ThrottlingException")));
        assert!(!means_not_offered(Some("AccessDeniedException")));
        assert!(!means_not_offered(None));
        let s = Support::default();
        assert!(s.offered());
        s.set_missing();
        assert!(!s.offered());
    }
}

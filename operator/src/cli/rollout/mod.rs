//! `ecs-operator rollout status|history|stop|continue NAME --store URL`: a ServiceSpec's ECS
//! deployments, for the person watching one (README "Commands", `rollout`).
//!
//! `NAME` is a ServiceSpec's `metadata.name`. Each verb reads the store's validated specs to find
//! it and its ClusterSpec, names the ECS cluster, service and task family the way the reconciler
//! does (`ecs_cluster::cluster_name`, `ecs_service::service_name`, `task_definition::family`),
//! and reaches the spec's account and region through the reconciler's own clients
//! ([`Scopes`]: another account through its role, checked by GetCallerIdentity).
//!
//! Invariants: `status` and `history` only read; `stop` and `continue` make at most the one
//! write they name (StopServiceDeployment; ContinueServiceDeployment per paused hook) and nothing
//! else, never to the store; every AWS call goes through [`Aws::call`] (the call budget, the
//! call counters, the error mapping). An endpoint without the service-deployment operations
//! (moto 5.2.5 answers them with an HTML 500, [`means_not_offered`]) is said so in one line by
//! the reads and is a failure naming the operation for the writes, never retried by a loop here.
//!
//! Exit codes: 0 done; 1 an unknown NAME, an invalid spec or ClusterSpec, a service that does not
//! exist in AWS yet, nothing to stop or continue, an operation the endpoint does not offer, or an
//! AWS call that failed; 2 usage (bad flags, `stop` without `--rollback`) or environment (the
//! store, no region, an account that cannot be reached, no connection to AWS).

pub mod history;
pub mod resume;
pub mod status;
pub mod stop;

use std::sync::Arc;

use aws_sdk_ecs::types::{
    ServiceDeployment, ServiceDeploymentBrief, ServiceDeploymentStatus, ServiceRevision,
};

use super::{open_store, CliError, Context};
use crate::aws::{Budget, Sdk, Service};
use crate::controller::Desired;
use crate::resources::kinds::ecs_service::deployments::means_not_offered;
use crate::resources::kinds::{ecs_cluster, ecs_service, task_definition};
use crate::resources::scopes::Scopes;
use crate::resources::{Aws, ResourceError};
use crate::spec::{placement_of, ClusterSpec, Kind, Placement, ServiceSpec, Spec, SpecKey};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Debug, clap::Subcommand)]
pub enum Verb {
    /// The service's deployments now: revisions, stage, traffic split, tasks, target health, alarms.
    Status(status::Args),
    /// Task-definition revisions, newest first, with image, time, and how each deployment ended.
    History(history::Args),
    /// Stop the service deployment in progress by rolling it back (`--rollback`, required).
    Stop(stop::Args),
    /// Let a service deployment paused by a PAUSE hook go on (or roll it back with `--rollback`).
    Continue(resume::Args),
}

/// What every verb takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The ServiceSpec's name (metadata.name).
    pub name: String,
    /// file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// The value of the managed-by tag (as given to `run`); names the session of an assumed role.
    #[arg(long, default_value = "ecs-operator", env = "ECS_OPERATOR_INSTANCE")]
    pub instance: String,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    match args.verb {
        Verb::Status(a) => status::run(a, ctx).await,
        Verb::History(a) => history::run(a, ctx).await,
        Verb::Stop(a) => stop::run(a, ctx).await,
        Verb::Continue(a) => resume::run(a, ctx).await,
    }
}

/// The ServiceSpec a verb acts on, what the operator names its resources, and the clients of
/// its account and region.
pub struct Target {
    pub key: SpecKey,
    pub spec: ServiceSpec,
    pub cluster_spec: ClusterSpec,
    /// The ECS cluster's name.
    pub cluster: String,
    /// The ECS service's name.
    pub service: String,
    /// The task-definition family.
    pub family: String,
    /// Where the spec lives (resolved: the region is always set).
    pub placement: Placement,
    pub aws: Arc<Aws>,
}

/// Find `NAME` among the store's specs, with its ClusterSpec and the clients of its placement.
pub async fn target(common: &Common, ctx: &mut Context<'_>) -> Result<Target, CliError> {
    let store = open_store(&common.store, ctx).await?;
    let desired = Desired::from_listing(&store.list().await?);
    let (spec, cluster_spec) = find(&desired, &common.name)?;
    let placement =
        placement_of(&Spec::Service(Box::new(spec.clone())), &desired.valid()).unwrap_or_default();
    let sdk = Sdk::with_calls(ctx.sdk().await?, ctx.calls.clone().unwrap_or_default());
    let own = Aws::new(&sdk, &common.instance, Budget::default());
    let scopes = Scopes::new(own, None);
    let placement = scopes.resolve(&placement);
    let aws = scopes.aws(&placement).await.map_err(|u| {
        CliError::Environment(format!(
            "cannot reach {placement} for ServiceSpec/{}: {}",
            common.name,
            u.message()
        ))
    })?;
    Ok(Target {
        key: SpecKey::new(Kind::ServiceSpec, spec.metadata.name.clone()),
        cluster: ecs_cluster::cluster_name(&cluster_spec),
        service: ecs_service::service_name(&spec),
        family: task_definition::family(&spec),
        spec,
        cluster_spec,
        placement,
        aws,
    })
}

/// The valid ServiceSpec `name` and its valid ClusterSpec (pure); a failure names what is
/// missing or invalid.
pub fn find(desired: &Desired, name: &str) -> Result<(ServiceSpec, ClusterSpec), CliError> {
    let key = SpecKey::new(Kind::ServiceSpec, name);
    let Some(entry) = desired.entries.get(&key) else {
        return Err(CliError::Failed(format!(
            "no ServiceSpec named `{name}` in the store (`ecs-operator status` lists the specs)"
        )));
    };
    let spec = match (&entry.spec, entry.spec.as_deref()) {
        (_, Ok(Spec::Service(s))) => s.as_ref().clone(),
        (Err(diags), _) => {
            return Err(CliError::Failed(format!(
                "{key} is invalid, so the operator does not deploy it (`ecs-operator validate` lists every error):\n{diags}"
            )))
        }
        (Ok(_), _) => unreachable!("a ServiceSpec key holds a ServiceSpec"),
    };
    let cluster_key = SpecKey::new(Kind::ClusterSpec, spec.spec.cluster.clone());
    match desired.entries.get(&cluster_key).map(|e| e.spec.as_deref()) {
        Some(Ok(Spec::Cluster(c))) => Ok((spec, c.as_ref().clone())),
        Some(Err(_)) => Err(CliError::Failed(format!(
            "{cluster_key}, which {key} names in spec.cluster, is invalid (`ecs-operator validate` lists its errors)"
        ))),
        _ => Err(CliError::Failed(format!(
            "{cluster_key}, which {key} names in spec.cluster, is not in the store"
        ))),
    }
}

impl Target {
    /// `ecs service web in cluster prod (the operator's account, region eu-west-1)`.
    pub fn describe(&self) -> String {
        format!(
            "ecs service {} in cluster {} ({})",
            self.service, self.cluster, self.placement
        )
    }

    /// The ECS service as DescribeServices gives it. A cluster or service that does not exist
    /// (or is INACTIVE) is a failure naming it.
    pub async fn service(&self) -> Result<aws_sdk_ecs::types::Service, CliError> {
        let out = self
            .aws
            .read(
                Service::Ecs,
                "DescribeServices",
                &self.service,
                self.aws
                    .ecs
                    .describe_services()
                    .cluster(&self.cluster)
                    .services(&self.service)
                    .send(),
            )
            .await;
        let missing = || {
            CliError::Failed(format!(
                "{}: the {} does not exist in AWS yet (the operator has not created it; `ecs-operator status` shows why)",
                self.key,
                self.describe()
            ))
        };
        match out {
            Err(e) if e.code() == Some("ClusterNotFoundException") => Err(missing()),
            Err(e) => Err(aws_failure(e)),
            Ok(o) => o
                .services()
                .iter()
                .find(|s| s.status() != Some("INACTIVE"))
                .cloned()
                .ok_or_else(missing),
        }
    }

    /// ListServiceDeployments of the service (`statuses`: all when empty), at most `pages`
    /// pages of 100; `None` when the endpoint does not offer it.
    pub async fn list_deployments(
        &self,
        statuses: &[ServiceDeploymentStatus],
        pages: usize,
    ) -> Result<Option<Vec<ServiceDeploymentBrief>>, CliError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..pages.max(1) {
            let listed = self
                .aws
                .read(
                    Service::Ecs,
                    "ListServiceDeployments",
                    &self.service,
                    self.aws
                        .ecs
                        .list_service_deployments()
                        .cluster(&self.cluster)
                        .service(&self.service)
                        .set_status((!statuses.is_empty()).then(|| statuses.to_vec()))
                        .max_results(100)
                        .set_next_token(token.clone())
                        .send(),
                )
                .await;
            match listed {
                Ok(l) => {
                    out.extend(l.service_deployments().iter().cloned());
                    token = l.next_token().map(str::to_string);
                    if token.is_none() {
                        break;
                    }
                }
                Err(e) => return not_offered(e).map(|()| None),
            }
        }
        Ok(Some(out))
    }

    /// DescribeServiceDeployments of `arns` (20 per call); `None` when not offered.
    pub async fn describe_deployments(
        &self,
        arns: &[String],
    ) -> Result<Option<Vec<ServiceDeployment>>, CliError> {
        in_twenties(
            arns,
            |chunk| {
                self.aws.read(
                    Service::Ecs,
                    "DescribeServiceDeployments",
                    &self.service,
                    self.aws
                        .ecs
                        .describe_service_deployments()
                        .set_service_deployment_arns(Some(chunk))
                        .send(),
                )
            },
            |d| d.service_deployments(),
        )
        .await
    }

    /// DescribeServiceRevisions of `arns` (20 per call); `None` when not offered.
    pub async fn describe_revisions(
        &self,
        arns: &[String],
    ) -> Result<Option<Vec<ServiceRevision>>, CliError> {
        in_twenties(
            arns,
            |chunk| {
                self.aws.read(
                    Service::Ecs,
                    "DescribeServiceRevisions",
                    &self.service,
                    self.aws
                        .ecs
                        .describe_service_revisions()
                        .set_service_revision_arns(Some(chunk))
                        .send(),
                )
            },
            |d| d.service_revisions(),
        )
        .await
    }
}

/// `describe` of `arns` 20 at a time (the most ECS's Describe-by-ARN calls take), and the
/// `items` of every answer; `None` when the operation is not offered.
async fn in_twenties<O, T, F, Fut>(
    arns: &[String],
    describe: F,
    items: impl Fn(&O) -> &[T],
) -> Result<Option<Vec<T>>, CliError>
where
    T: Clone,
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<O, ResourceError>>,
{
    let mut out = Vec::new();
    for chunk in arns.chunks(20) {
        match describe(chunk.to_vec()).await {
            Ok(d) => out.extend(items(&d).iter().cloned()),
            Err(e) => return not_offered(e).map(|()| None),
        }
    }
    Ok(Some(out))
}

/// `Ok(())` when `e` says the operation is not there (the caller answers `None`), else the
/// failure.
fn not_offered(e: ResourceError) -> Result<(), CliError> {
    if means_not_offered(e.code()) {
        tracing::info!(error = %e, "the endpoint does not offer the operation");
        Ok(())
    } else {
        Err(aws_failure(e))
    }
}

/// A failed AWS call as the command's failure: no connection at all is an environment error
/// (exit 2), any answer AWS gave is a failure of the command (exit 1).
pub fn aws_failure(e: ResourceError) -> CliError {
    match e.code() {
        Some("Transport" | "Timeout") => CliError::Environment(format!(
            "cannot reach AWS (check AWS_ENDPOINT_URL, AWS_REGION and the network): {e}"
        )),
        _ => CliError::Failed(e.to_string()),
    }
}

/// The line the reads print where the endpoint lacks `operation`.
pub fn not_reported(operation: &str) -> String {
    format!(
        "service deployments: not reported by this endpoint ({operation} is not offered); the rest is from DescribeServices"
    )
}

/// The last part of an ARN (`.../web:3` -> `web:3`, `.../sd-example/NCWGC2ZR` -> `NCWGC2ZR`).
pub fn short(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Epoch seconds as RFC 3339 UTC (`2024-10-25T12:00:00Z`).
pub fn time(secs: i64) -> String {
    aws_sdk_ecs::primitives::DateTime::from_secs(secs)
        .fmt(aws_sdk_ecs::primitives::DateTimeFormat::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

/// Print `value` as JSON or YAML.
pub fn print_structured(
    ctx: &mut Context<'_>,
    format: super::OutputFormat,
    value: &serde_json::Value,
) -> Result<(), CliError> {
    match format {
        super::OutputFormat::Yaml => write!(ctx.out, "{}", super::output::to_yaml(value))?,
        _ => writeln!(
            ctx.out,
            "{}",
            serde_json::to_string_pretty(value).expect("JSON")
        )?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Listing;

    fn desired(files: &[(&str, &str)]) -> Desired {
        let dir = tempfile::tempdir().unwrap();
        for (n, t) in files {
            std::fs::write(dir.path().join(n), t).unwrap();
        }
        let store = crate::store::file::FileStore::new(dir.path().to_path_buf());
        let listing: Listing = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(crate::store::Store::list(&store))
            .expect("the folder lists");
        Desired::from_listing(&listing)
    }

    const CLUSTER: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec: {clusterName: prod-ecs}\n";
    const WEB: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  cluster: prod\n  container: {name: app, image: nginx, cpu: 256, memory: 512}\n  network: {subnets: [subnet-1]}\n";

    #[test]
    fn a_name_finds_its_service_spec_and_the_cluster_spec_it_names() {
        let d = desired(&[("c.yaml", CLUSTER), ("w.yaml", WEB)]);
        let (s, c) = find(&d, "web").unwrap();
        assert_eq!(s.metadata.name, "web");
        assert_eq!(ecs_cluster::cluster_name(&c), "prod-ecs");
    }

    #[test]
    fn an_unknown_name_an_invalid_spec_and_a_missing_cluster_fail_naming_them() {
        let d = desired(&[("c.yaml", CLUSTER), ("w.yaml", WEB)]);
        let e = find(&d, "nope").err().unwrap();
        assert_eq!(e.exit_code(), super::super::EXIT_FAILED);
        assert!(e.to_string().contains("no ServiceSpec named `nope`"), "{e}");
        // A ClusterSpec's name is not a ServiceSpec's.
        assert!(find(&d, "prod").is_err());

        let invalid = WEB.replace("cpu: 256", "cpu: 3");
        let d = desired(&[("c.yaml", CLUSTER), ("w.yaml", &invalid)]);
        let e = find(&d, "web").err().unwrap();
        assert_eq!(e.exit_code(), super::super::EXIT_FAILED);
        assert!(e.to_string().contains("ServiceSpec/web is invalid"), "{e}");

        let d = desired(&[("w.yaml", WEB)]);
        let e = find(&d, "web").err().unwrap();
        assert!(
            e.to_string()
                .contains("ClusterSpec/prod, which ServiceSpec/web names in spec.cluster, is not in the store"),
            "{e}"
        );
    }

    #[test]
    fn only_a_missing_connection_is_an_environment_error() {
        let e = |code: &str| ResourceError::Aws {
            operation: "DescribeServices",
            resource: "web".into(),
            code: code.into(),
            message: "m".into(),
            retryable: false,
        };
        assert_eq!(
            aws_failure(e("Transport")).exit_code(),
            super::super::EXIT_USAGE
        );
        assert_eq!(
            aws_failure(e("AccessDeniedException")).exit_code(),
            super::super::EXIT_FAILED
        );
        assert!(not_offered(e("Unknown")).is_ok());
        assert!(not_offered(e("AccessDeniedException")).is_err());
    }

    #[test]
    fn arns_are_shown_by_their_last_part_and_times_in_utc() {
        assert_eq!(
            short("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:3"),
            "web:3"
        );
        assert_eq!(time(1_729_857_600), "2024-10-25T12:00:00Z");
    }
}

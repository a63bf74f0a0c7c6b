//! A ServiceSpec's resources in dependency order: ECR repository -> certificate -> target group
//! -> listener rule -> task definition -> ECS service -> autoscaling -> Route53 records.

use super::run::SpecRun;
use super::task_definition::RevisionCache;
use super::{ecs_cluster, ecs_service, scaling, task_definition, ResourceError};
use crate::aws::{CallClass, Service};
use crate::controller::ReconcileInput;
use crate::spec::types::{ClusterSpec, ServiceSpec};
use crate::spec::{Kind, Spec, SpecKey};

/// The ClusterSpec a ServiceSpec names, from the store's valid specs.
pub fn cluster_of<'i>(
    spec: &ServiceSpec,
    input: &'i ReconcileInput,
) -> Result<&'i ClusterSpec, ResourceError> {
    match input
        .specs
        .get(&SpecKey::new(Kind::ClusterSpec, spec.spec.cluster.clone()))
        .map(|s| s.as_ref())
    {
        Some(Spec::Cluster(c)) => Ok(c),
        _ => Err(ResourceError::Dependency(format!(
            "ClusterSpec/{} is not in the store (or is invalid): spec.cluster must name one",
            spec.spec.cluster
        ))),
    }
}

/// The URI of an ECR repository, `None` when it does not exist (yet).
pub async fn repository_uri(
    run: &SpecRun<'_>,
    name: &str,
) -> Result<Option<String>, ResourceError> {
    let out = run
        .aws
        .call(
            Service::Ecr,
            CallClass::Read,
            "DescribeRepositories",
            name,
            run.aws
                .ecr
                .describe_repositories()
                .repository_names(name)
                .send(),
        )
        .await;
    match out {
        Ok(o) => Ok(o
            .repositories()
            .first()
            .and_then(|r| r.repository_uri())
            .map(str::to_string)),
        Err(e) if e.code() == Some("RepositoryNotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn reconcile(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    input: &ReconcileInput,
    revisions: &RevisionCache,
) -> Result<(), ResourceError> {
    let cluster = cluster_of(spec, input)?;
    let cluster_name = ecs_cluster::cluster_name(cluster);
    let name = ecs_service::service_name(spec);

    // Edge: ECR, certificate, target group, listener rule (the edge modules).
    let target_group: Option<String> = None;

    // The image: `repository:tag` of the spec's own repository resolves to its URI.
    let repo_uri = match &spec.spec.repository {
        Some(repo) => {
            let uri = repository_uri(run, &repo.name).await?;
            if uri.is_none() && run.apply {
                return Err(ResourceError::Dependency(format!(
                    "ECR repository {} does not exist yet",
                    repo.name
                )));
            }
            uri
        }
        None => None,
    };
    let rendered = task_definition::render(spec, &run.aws.region, repo_uri.as_deref());
    let autoscaled = spec.spec.autoscaling.is_some();
    let current = ecs_service::observe(run, &cluster_name, &name, autoscaled).await?;
    let td_arn = task_definition::reconcile(
        run,
        revisions,
        &rendered,
        current
            .as_ref()
            .map(|o| o.settings.task_definition.as_str()),
    )
    .await?;
    let want = ecs_service::desired(spec, &td_arn, target_group.as_deref());
    let initial = spec
        .spec
        .autoscaling
        .as_ref()
        .map_or(spec.spec.desired_count, |a| {
            a.min_capacity
                .max(spec.spec.desired_count.min(a.max_capacity))
        });
    if td_arn.is_empty() && current.is_none() {
        // Only planning, and nothing exists yet: the service would be created.
        run.plan(super::Change::create(
            format!("ecs service {name}"),
            format!("{initial} task(s)"),
        ));
    } else {
        ecs_service::reconcile(run, &cluster_name, &name, &want, initial).await?;
    }
    let scaling_desired = scaling::desired(&name, spec.spec.autoscaling.as_ref(), None);
    if current.is_some() || run.apply {
        scaling::reconcile(run, &cluster_name, &name, &scaling_desired).await?;
    }

    // Edge: Route53 alias records (the edge modules).
    Ok(())
}

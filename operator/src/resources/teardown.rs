//! Deletion of what a spec that left the store owns, in reverse dependency order (DESIGN.md
//! "Resources per spec"). The status record's resource list is the ledger, so deletion works
//! after a restart too; every resource is checked for our ownership tags before it is touched.
//!
//! Invariants:
//! - nothing without both ownership tags naming this spec is changed or deleted;
//! - `deletionPolicy: Retain` deletes nothing: ownership tags are replaced by
//!   `ecs-operator.io/released-from=<Kind/name>`, so the resources become unowned;
//! - the deletion policy is the spec's as last seen, else the one its status record kept
//!   (a restart after it left the store), else Retain: never delete on a guess;
//! - a ClusterSpec is not torn down while a ServiceSpec in the store names it;
//! - a service is scaled to 0 before it is deleted, and followed by requeue until it is INACTIVE.

use std::time::Duration;

use aws_sdk_ecs::types::{ServiceField, Tag, TaskDefinitionField};

use super::run::SpecRun;
use super::shared::tags::RELEASED_TAG;
use super::shared::DRAIN_POLL;
use super::ResourceError;
use crate::aws::{CallClass, Service};
use crate::reconcile::{ConditionReport, ReconcileInput};
use crate::spec::types::DeletionPolicy;
use crate::spec::{Kind, Spec, SpecKey};
use crate::store::status::ResourceRef;

/// The order resources are torn down in: dependents first.
fn rank(resource_type: &str) -> u8 {
    match resource_type {
        "route53:record" => 0,
        "application-autoscaling:scalable-target" => 1,
        "ecs:service" => 2,
        "elbv2:listener-rule" => 3,
        "elbv2:listener-certificate" => 4,
        "elbv2:targetgroup" => 5,
        "ecs:task-definition" => 6,
        "ecr:repository" => 7,
        "elbv2:listener" => 8,
        "elbv2:loadbalancer" => 9,
        "acm:certificate" => 10,
        "ecs:cluster" => 11,
        "ecs:capacity-provider" => 12,
        _ => 13,
    }
}

/// The deletion policy of a departed spec: as last seen, else as its status record says, else
/// Retain (never delete on a guess).
pub fn policy(last: Option<&Spec>, recorded: Option<&str>) -> DeletionPolicy {
    match (last, recorded) {
        (Some(Spec::Cluster(c)), _) => c.spec.deletion_policy,
        (Some(Spec::Service(s)), _) => s.spec.deletion_policy,
        (None, Some("Delete")) => DeletionPolicy::Delete,
        _ => DeletionPolicy::Retain,
    }
}

/// ServiceSpecs in the store that name this cluster.
pub fn referencing_services(cluster: &str, input: &ReconcileInput) -> Vec<String> {
    input
        .specs
        .values()
        .filter_map(|s| match s.as_ref() {
            Spec::Service(svc) if svc.spec.cluster == cluster => Some(svc.metadata.name.clone()),
            _ => None,
        })
        .collect()
}

/// Tear down (or release) `resources`. Leaves reasons in `run.waiting` while work remains.
pub async fn teardown(
    run: &mut SpecRun<'_>,
    key: &SpecKey,
    policy: DeletionPolicy,
    resources: &[ResourceRef],
    input: &ReconcileInput,
) -> Result<(), ResourceError> {
    if key.kind == Kind::ClusterSpec {
        let users = referencing_services(&key.name, input);
        if !users.is_empty() {
            let why = format!(
                "not torn down: ServiceSpec(s) {} still name this cluster",
                users.join(", ")
            );
            run.condition(ConditionReport::new(
                "Deleted",
                false,
                "StillReferenced",
                why.clone(),
            ));
            run.wait(why, Duration::from_secs(30));
            return Ok(());
        }
    }
    let retain = policy == DeletionPolicy::Retain;
    let mut ordered: Vec<&ResourceRef> = resources.iter().collect();
    ordered.sort_by_key(|r| (rank(&r.resource_type), r.id.clone()));
    for r in ordered {
        // Stop at the first resource still on its way out: later ones depend on it.
        if !run.waiting.is_empty() {
            break;
        }
        let done = match r.resource_type.as_str() {
            "ecs:service" => service(run, &r.id, retain).await?,
            "application-autoscaling:scalable-target" => {
                if !retain {
                    scalable_target(run, &r.id).await?;
                }
                true
            }
            "ecs:task-definition" => task_definitions(run, &r.id, retain).await?,
            "ecs:cluster" => cluster(run, &r.id, retain).await?,
            "ecs:capacity-provider" => capacity_provider(run, &r.id, retain).await?,
            other => super::edge_teardown(run, other, &r.id, retain).await?,
        };
        if !done && run.waiting.is_empty() {
            run.wait(
                format!("{} {} is being deleted", r.resource_type, r.id),
                DRAIN_POLL,
            );
        }
    }
    Ok(())
}

async fn ecs_tags(run: &SpecRun<'_>, arn: &str) -> Result<Option<Vec<Tag>>, ResourceError> {
    match run
        .aws
        .call(
            Service::Ecs,
            CallClass::Read,
            "ListTagsForResource",
            arn,
            run.aws
                .ecs
                .list_tags_for_resource()
                .resource_arn(arn)
                .send(),
        )
        .await
    {
        Ok(o) => Ok(Some(o.tags().to_vec())),
        Err(e)
            if e.code()
                .is_some_and(|c| c.contains("NotFound") || c == "InvalidParameterException") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `arn:aws:ecs:region:acct:service/cluster/name` -> (cluster, name).
fn service_parts(arn: &str) -> Option<(String, String)> {
    let rest = arn.split_once(":service/")?.1;
    let (cluster, name) = rest.split_once('/')?;
    Some((cluster.to_string(), name.to_string()))
}

/// Scale to 0, delete, and follow until INACTIVE. Returns whether it is gone (or released).
async fn service(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<bool, ResourceError> {
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
    if !super::shared::ecs_tags::is_ours(run, svc.tags()) {
        // Not ours (any more): leave it alone.
        return Ok(true);
    }
    if retain {
        super::shared::ecs_tags::release(run, arn, "ecs service", RELEASED_TAG).await?;
        return Ok(true);
    }
    if svc.desired_count() > 0
        && run.plan(super::Change::update(
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
    if run.plan(super::Change::delete(format!("ecs service {name}"), "")) {
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

async fn scalable_target(run: &mut SpecRun<'_>, id: &str) -> Result<(), ResourceError> {
    let Some(service) = id.rsplit('/').next().map(str::to_string) else {
        return Ok(());
    };
    let cluster = id.split('/').nth(1).unwrap_or_default().to_string();
    let none = super::scaling::Desired::default();
    super::scaling::reconcile(run, &cluster, &service, &none).await
}

/// Deregister every active revision of the family that is ours.
async fn task_definitions(
    run: &mut SpecRun<'_>,
    arn: &str,
    retain: bool,
) -> Result<bool, ResourceError> {
    let family = arn
        .rsplit_once("task-definition/")
        .map(|(_, f)| f.split(':').next().unwrap_or(f).to_string())
        .unwrap_or_default();
    if family.is_empty() {
        return Ok(true);
    }
    let out = run
        .aws
        .call(
            Service::Ecs,
            CallClass::Read,
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
            .call(
                Service::Ecs,
                CallClass::Read,
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
        if !super::shared::ecs_tags::is_ours(run, d.tags()) {
            continue;
        }
        if retain {
            super::shared::ecs_tags::release(run, td, "task definition", RELEASED_TAG).await?;
        } else if run.plan(super::Change::delete(
            format!("task definition {td}"),
            "deregister",
        )) {
            run.aws
                .call(
                    Service::Ecs,
                    CallClass::Write,
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
    Ok(true)
}

async fn cluster(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<bool, ResourceError> {
    let Some(tags) = ecs_tags(run, arn).await? else {
        return Ok(true);
    };
    if !super::shared::ecs_tags::is_ours(run, &tags) {
        return Ok(true);
    }
    if retain {
        super::shared::ecs_tags::release(run, arn, "ecs cluster", RELEASED_TAG).await?;
        return Ok(true);
    }
    let name = arn.rsplit('/').next().unwrap_or(arn).to_string();
    if run.plan(super::Change::delete(format!("ecs cluster {name}"), "")) {
        // Detach providers first, so they can be deleted after the cluster.
        run.aws
            .call(
                Service::Ecs,
                CallClass::Write,
                "PutClusterCapacityProviders",
                &name,
                run.aws
                    .ecs
                    .put_cluster_capacity_providers()
                    .cluster(&name)
                    .set_capacity_providers(Some(Vec::new()))
                    .set_default_capacity_provider_strategy(Some(Vec::new()))
                    .send(),
            )
            .await?;
        match run
            .aws
            .call(
                Service::Ecs,
                CallClass::Write,
                "DeleteCluster",
                &name,
                run.aws.ecs.delete_cluster().cluster(&name).send(),
            )
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.code() == Some("ClusterContainsServicesException")
                    || e.code() == Some("ClusterContainsTasksException") =>
            {
                run.wait(
                    format!("ecs cluster {name} still has services or tasks"),
                    Duration::from_secs(30),
                );
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

async fn capacity_provider(
    run: &mut SpecRun<'_>,
    arn: &str,
    retain: bool,
) -> Result<bool, ResourceError> {
    let Some(tags) = ecs_tags(run, arn).await? else {
        return Ok(true);
    };
    if !super::shared::ecs_tags::is_ours(run, &tags) {
        return Ok(true);
    }
    if retain {
        super::shared::ecs_tags::release(run, arn, "capacity provider", RELEASED_TAG).await?;
        return Ok(true);
    }
    let name = arn.rsplit('/').next().unwrap_or(arn).to_string();
    if run.plan(super::Change::delete(
        format!("capacity provider {name}"),
        "",
    )) {
        run.aws
            .call(
                Service::Ecs,
                CallClass::Write,
                "DeleteCapacityProvider",
                &name,
                run.aws
                    .ecs
                    .delete_capacity_provider()
                    .capacity_provider(&name)
                    .send(),
            )
            .await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_go_before_target_groups_and_clusters_last_but_providers() {
        let mut types = vec![
            "ecs:cluster",
            "elbv2:targetgroup",
            "ecs:service",
            "route53:record",
            "ecs:capacity-provider",
            "application-autoscaling:scalable-target",
        ];
        types.sort_by_key(|t| rank(t));
        assert_eq!(
            types,
            [
                "route53:record",
                "application-autoscaling:scalable-target",
                "ecs:service",
                "elbv2:targetgroup",
                "ecs:cluster",
                "ecs:capacity-provider"
            ]
        );
    }

    #[test]
    fn an_unknown_policy_is_retain() {
        assert_eq!(policy(None, None), DeletionPolicy::Retain);
        assert_eq!(policy(None, Some("Delete")), DeletionPolicy::Delete);
        assert_eq!(policy(None, Some("bogus")), DeletionPolicy::Retain);
    }

    #[test]
    fn service_arns_name_their_cluster() {
        assert_eq!(
            service_parts("arn:aws:ecs:eu-west-1:1:service/prod/web"),
            Some(("prod".into(), "web".into()))
        );
    }
}

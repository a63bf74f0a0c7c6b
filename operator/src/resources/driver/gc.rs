//! Garbage collection, the AWS side: everything this instance owns, grouped by owner.
//!
//! A spec's deletion works from its status record's resource list (the ledger). A resource
//! created in a pass that crashed before its status was written is in no ledger, and if the
//! spec then leaves the store it would leak. [`scan`] lists every resource kind the operator
//! creates, reads the ownership tags (for Route53, the ownership TXT records in the zones the
//! specs name and the ledgers list) and returns what it found by the owner the tags name. The
//! controller adds what belongs to owners that are not in the store to their ledgers, and the
//! ordinary deletion takes it from there (deletion policy, mass-deletion guard, confirmation).
//!
//! Invariants:
//! - the scan only reads;
//! - only resources carrying both ownership tags with this instance's `managed-by` value are
//!   returned (Route53: TXT values naming this instance); released resources, other instances'
//!   and untagged ones never are;
//! - a kind that cannot be listed is reported in [`OwnedScan::errors`] and skipped; the rest still
//!   count (finding less is safe: the scan only ever adds to a ledger).
//!
//! Listings page with the SDK's paginators and spend one budget token per listing (most
//! accounts fit in one page). Cost: one listing per kind, ELBv2 tags 20 ARNs per call, ECS clusters 100 and
//! services 10 per DescribeClusters/DescribeServices, plus one tag read per ACM certificate
//! and per ECR repository, two reads per active task-definition family, and one tag read per
//! CloudWatch alarm, log group and SNS topic (plus one DescribeMetricFilters per owned log group
//! and one ListSubscriptionsByTopic per owned topic). That is why it runs
//! on its own interval (`run --gc-interval`), not on every resync.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types::{
    CapacityProviderField, ClusterField, ServiceField, SortOrder, TaskDefinitionFamilyStatus,
    TaskDefinitionField, TaskDefinitionStatus,
};

use crate::aws::{CallClass, Service};
use crate::reconcile::{OwnedScan, ValidSpecs};
use crate::resources::context::Aws;
use crate::resources::kinds::{
    alarm, auto_scaling_group, capacity_provider, certificate, dns, ecr, ecs_cluster, ecs_service,
    listener, listener_rule, load_balancer, log_group, metric_filter, scaling, sns_subscription,
    sns_topic, target_group, task_definition,
};
use crate::resources::run::SpecRun;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;
use crate::spec::{Kind, Spec, SpecKey};
use crate::store::status::ResourceRef;

/// The hosted zones whose ownership TXT records are read: those the specs name and those the
/// ledgers' `route53:record` entries (`<zone id>/<host>/A`) name.
pub fn zones(specs: &ValidSpecs, ledgers: &[ResourceRef]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for spec in specs.values() {
        match spec.as_ref() {
            Spec::Cluster(c) => {
                for lb in &c.spec.load_balancers {
                    out.insert(lb.certificate.hosted_zone.clone());
                }
            }
            Spec::Service(s) => {
                if let Some(d) = s.spec.ingress.as_ref().and_then(|i| i.dns.as_ref()) {
                    out.insert(d.hosted_zone.clone());
                }
            }
        }
    }
    for r in ledgers {
        if r.resource_type == dns::TYPE {
            if let Some(z) = r.id.split('/').next().filter(|z| !z.is_empty()) {
                out.insert(format!("/hostedzone/{z}"));
            }
        }
    }
    out
}

/// List everything this instance owns (see the module doc).
pub async fn scan(aws: &Aws, zones: &BTreeSet<String>) -> OwnedScan {
    // The tag helpers take a run; this one never writes (apply == false) and its key is only
    // a label in errors.
    let run = SpecRun::new(
        aws,
        SpecKey::new(Kind::ClusterSpec, "(garbage-collection)"),
        false,
        false,
    );
    let mut scan = OwnedScan::default();
    let mut cert_owners = BTreeMap::new();
    if let Err(e) = certificates(&run, &mut scan, &mut cert_owners).await {
        scan.errors.push(format!("ACM certificates: {e}"));
    }
    if let Err(e) = elbv2(&run, &mut scan, &cert_owners).await {
        scan.errors.push(format!("ELBv2: {e}"));
    }
    if let Err(e) = repositories(&run, &mut scan).await {
        scan.errors.push(format!("ECR repositories: {e}"));
    }
    let mut services = BTreeMap::new();
    let mut attached = BTreeSet::new();
    if let Err(e) = ecs(&run, &mut scan, &mut services, &mut attached).await {
        scan.errors.push(format!("ECS clusters and services: {e}"));
    }
    if let Err(e) = scalable_targets(&run, &mut scan, &services).await {
        scan.errors.push(format!("Application Auto Scaling: {e}"));
    }
    if let Err(e) = capacity_providers(&run, &mut scan, &attached).await {
        scan.errors.push(format!("ECS capacity providers: {e}"));
    }
    if let Err(e) = auto_scaling_group::list_owned(&run, &mut scan).await {
        scan.errors.push(format!("Auto Scaling groups: {e}"));
    }
    if let Err(e) = task_definitions(&run, &mut scan).await {
        scan.errors.push(format!("ECS task definitions: {e}"));
    }
    if let Err(e) = alarm::list_owned(&run, &mut scan).await {
        scan.errors.push(format!("CloudWatch alarms: {e}"));
    }
    match log_group::list_owned(&run, &mut scan).await {
        Ok(()) => {
            if let Err(e) = metric_filter::list_owned(&run, &mut scan).await {
                scan.errors
                    .push(format!("CloudWatch Logs metric filters: {e}"));
            }
        }
        Err(e) => scan.errors.push(format!("CloudWatch Logs groups: {e}")),
    }
    match sns_topic::list_owned(&run, &mut scan).await {
        Ok(()) => {
            if let Err(e) = sns_subscription::list_owned(&run, &mut scan).await {
                scan.errors.push(format!("SNS subscriptions: {e}"));
            }
        }
        Err(e) => scan.errors.push(format!("SNS topics: {e}")),
    }
    for z in zones {
        if let Err(e) = records(&run, &mut scan, z).await {
            scan.errors.push(format!("Route53 zone {z}: {e}"));
        }
    }
    scan
}

async fn certificates(
    run: &SpecRun<'_>,
    scan: &mut OwnedScan,
    owners: &mut BTreeMap<String, SpecKey>,
) -> Result<(), ResourceError> {
    let page = run
        .aws
        .call(
            Service::Acm,
            CallClass::Read,
            "ListCertificates",
            "*",
            run.aws
                .acm
                .list_certificates()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    for c in &page {
        let Some(arn) = c.certificate_arn() else {
            continue;
        };
        let Some(tags) = certificate::tags_of(run, arn).await? else {
            continue;
        };
        if let Some(owner) = owner_of(&run.aws.instance, &tags) {
            scan.add(owner.clone(), certificate::TYPE, arn);
            owners.insert(arn.to_string(), owner);
        }
    }
    Ok(())
}

/// Load balancers, target groups, and on our load balancers their listeners, rules and SNI
/// certificates (an attachment belongs to the certificate's owner).
async fn elbv2(
    run: &SpecRun<'_>,
    scan: &mut OwnedScan,
    cert_owners: &BTreeMap<String, SpecKey>,
) -> Result<(), ResourceError> {
    let elb = &run.aws.elbv2;
    let mut lbs = Vec::new();
    let page = run
        .aws
        .call(
            Service::Elbv2,
            CallClass::Read,
            "DescribeLoadBalancers",
            "*",
            elb.describe_load_balancers()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    lbs.extend(
        page.iter()
            .filter_map(|l| l.load_balancer_arn().map(str::to_string)),
    );
    let mut ours = Vec::new();
    for (arn, tags) in crate::resources::shared::elb_tags::describe(run, &lbs).await? {
        if let Some(owner) = owner_of(&run.aws.instance, &tags) {
            scan.add(owner, load_balancer::TYPE, arn.clone());
            ours.push(arn);
        }
    }

    target_group::list_owned(run, scan).await?;

    for lb in &ours {
        let listeners = run
            .aws
            .call(
                Service::Elbv2,
                CallClass::Read,
                "DescribeListeners",
                lb,
                elb.describe_listeners().load_balancer_arn(lb).send(),
            )
            .await?;
        let arns: Vec<String> = listeners
            .listeners()
            .iter()
            .filter_map(|l| l.listener_arn().map(str::to_string))
            .collect();
        for (arn, tags) in crate::resources::shared::elb_tags::describe(run, &arns).await? {
            if let Some(owner) = owner_of(&run.aws.instance, &tags) {
                scan.add(owner, listener::TYPE, arn);
            }
        }
        for listener in &arns {
            let rules = run
                .aws
                .call(
                    Service::Elbv2,
                    CallClass::Read,
                    "DescribeRules",
                    listener,
                    elb.describe_rules().listener_arn(listener).send(),
                )
                .await?;
            let rule_arns: Vec<String> = rules
                .rules()
                .iter()
                .filter(|r| r.is_default() != Some(true))
                .filter_map(|r| r.rule_arn().map(str::to_string))
                .collect();
            for (arn, tags) in crate::resources::shared::elb_tags::describe(run, &rule_arns).await?
            {
                if let Some(owner) = owner_of(&run.aws.instance, &tags) {
                    scan.add(owner, listener_rule::TYPE, arn);
                }
            }
            let certs = run
                .aws
                .call(
                    Service::Elbv2,
                    CallClass::Read,
                    "DescribeListenerCertificates",
                    listener,
                    elb.describe_listener_certificates()
                        .listener_arn(listener)
                        .send(),
                )
                .await?;
            for c in certs.certificates() {
                if c.is_default() == Some(true) {
                    continue;
                }
                let Some(cert) = c.certificate_arn() else {
                    continue;
                };
                if let Some(owner) = cert_owners.get(cert) {
                    scan.add(
                        owner.clone(),
                        listener::CERTIFICATE_TYPE,
                        listener::listener_certificate_id(listener, cert),
                    );
                }
            }
        }
    }
    Ok(())
}

async fn repositories(run: &SpecRun<'_>, scan: &mut OwnedScan) -> Result<(), ResourceError> {
    let page = run
        .aws
        .call(
            Service::Ecr,
            CallClass::Read,
            "DescribeRepositories",
            "*",
            run.aws
                .ecr
                .describe_repositories()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    for r in &page {
        let Some(arn) = r.repository_arn() else {
            continue;
        };
        let tags: BTreeMap<String, String> = run
            .aws
            .call(
                Service::Ecr,
                CallClass::Read,
                "ListTagsForResource",
                arn,
                run.aws
                    .ecr
                    .list_tags_for_resource()
                    .resource_arn(arn)
                    .send(),
            )
            .await?
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        if let Some(owner) = owner_of(&run.aws.instance, &tags) {
            scan.add(owner, ecr::TYPE, arn);
        }
    }
    Ok(())
}

/// Clusters, and the services of every cluster. `services` gets `(cluster name, service
/// name) -> owner` of the services found, for their scalable targets; `attached` the capacity
/// providers the clusters use.
async fn ecs(
    run: &SpecRun<'_>,
    scan: &mut OwnedScan,
    services: &mut BTreeMap<(String, String), SpecKey>,
    attached: &mut BTreeSet<String>,
) -> Result<(), ResourceError> {
    let ecs = &run.aws.ecs;
    let mut clusters = Vec::new();
    let page = run
        .aws
        .call(
            Service::Ecs,
            CallClass::Read,
            "ListClusters",
            "*",
            ecs.list_clusters()
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    clusters.extend(page);
    let mut active = Vec::new();
    for chunk in clusters.chunks(100) {
        let out = run
            .aws
            .call(
                Service::Ecs,
                CallClass::Read,
                "DescribeClusters",
                &chunk.join(","),
                ecs.describe_clusters()
                    .set_clusters(Some(chunk.to_vec()))
                    .include(ClusterField::Tags)
                    .send(),
            )
            .await?;
        for c in out.clusters() {
            if c.status() != Some("ACTIVE") {
                continue;
            }
            let (Some(arn), Some(name)) = (c.cluster_arn(), c.cluster_name()) else {
                continue;
            };
            active.push((arn.to_string(), name.to_string()));
            attached.extend(c.capacity_providers().iter().cloned());
            if let Some(owner) = owner_of(
                &run.aws.instance,
                &crate::resources::shared::ecs_tags::to_map(c.tags()),
            ) {
                scan.add(owner, ecs_cluster::TYPE, arn);
            }
        }
    }
    for (cluster_arn, cluster_name) in &active {
        let mut arns = Vec::new();
        let page = run
            .aws
            .call(
                Service::Ecs,
                CallClass::Read,
                "ListServices",
                cluster_name,
                ecs.list_services()
                    .cluster(cluster_arn)
                    .into_paginator()
                    .items()
                    .send()
                    .try_collect(),
            )
            .await?;
        arns.extend(page);
        for chunk in arns.chunks(10) {
            let out = run
                .aws
                .call(
                    Service::Ecs,
                    CallClass::Read,
                    "DescribeServices",
                    &chunk.join(","),
                    ecs.describe_services()
                        .cluster(cluster_arn)
                        .set_services(Some(chunk.to_vec()))
                        .include(ServiceField::Tags)
                        .send(),
                )
                .await?;
            for s in out.services() {
                if s.status() == Some("INACTIVE") {
                    continue;
                }
                let (Some(arn), Some(name)) = (s.service_arn(), s.service_name()) else {
                    continue;
                };
                if let Some(owner) = owner_of(
                    &run.aws.instance,
                    &crate::resources::shared::ecs_tags::to_map(s.tags()),
                ) {
                    scan.add(owner.clone(), ecs_service::TYPE, arn);
                    services.insert((cluster_name.clone(), name.to_string()), owner);
                }
            }
        }
    }
    Ok(())
}

/// Scalable targets have no tags: one belongs to the owner of the service it scales.
async fn scalable_targets(
    run: &SpecRun<'_>,
    scan: &mut OwnedScan,
    services: &BTreeMap<(String, String), SpecKey>,
) -> Result<(), ResourceError> {
    if services.is_empty() {
        return Ok(());
    }
    let page = run
        .aws
        .call(
            Service::ApplicationAutoScaling,
            CallClass::Read,
            "DescribeScalableTargets",
            "ecs",
            run.aws
                .scaling
                .describe_scalable_targets()
                .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    for t in &page {
        let id = t.resource_id();
        let mut parts = id.split('/');
        if let (Some("service"), Some(cluster), Some(service), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let Some(owner) = services.get(&(cluster.to_string(), service.to_string())) {
                scan.add(owner.clone(), scaling::TYPE, id);
            }
        }
    }
    Ok(())
}

/// Every capacity provider of the account (DescribeCapacityProviders without names). moto
/// answers that with a 500; then the providers the clusters use are described by name (a
/// leaked provider attached to no cluster is then not found).
async fn capacity_providers(
    run: &SpecRun<'_>,
    scan: &mut OwnedScan,
    attached: &BTreeSet<String>,
) -> Result<(), ResourceError> {
    let mut token: Option<String> = None;
    let mut names: Option<Vec<String>> = None;
    loop {
        let result = run
            .aws
            .call(
                Service::Ecs,
                CallClass::Read,
                "DescribeCapacityProviders",
                "*",
                run.aws
                    .ecs
                    .describe_capacity_providers()
                    .set_capacity_providers(names.clone())
                    .include(CapacityProviderField::Tags)
                    .set_next_token(token.take())
                    .send(),
            )
            .await;
        let page = match result {
            Ok(p) => p,
            Err(e) if names.is_none() && matches!(e.code(), Some("Response" | "Unknown")) => {
                tracing::debug!(error = %e, "listing every capacity provider failed; describing the attached ones");
                let by_name: Vec<String> = attached
                    .iter()
                    .filter(|n| !n.starts_with("FARGATE"))
                    .cloned()
                    .collect();
                if by_name.is_empty() {
                    return Ok(());
                }
                names = Some(by_name);
                continue;
            }
            Err(e) => return Err(e),
        };
        for cp in page.capacity_providers() {
            let Some(arn) = cp.capacity_provider_arn() else {
                continue;
            };
            if let Some(owner) = owner_of(
                &run.aws.instance,
                &crate::resources::shared::ecs_tags::to_map(cp.tags()),
            ) {
                scan.add(owner, capacity_provider::TYPE, arn);
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(()),
        }
    }
}

/// The latest active revision of every active family; its tags say whose the family is (the
/// teardown deregisters every revision of the family that is ours).
async fn task_definitions(run: &SpecRun<'_>, scan: &mut OwnedScan) -> Result<(), ResourceError> {
    let ecs = &run.aws.ecs;
    let mut families = Vec::new();
    let page = run
        .aws
        .call(
            Service::Ecs,
            CallClass::Read,
            "ListTaskDefinitionFamilies",
            "*",
            ecs.list_task_definition_families()
                .status(TaskDefinitionFamilyStatus::Active)
                .into_paginator()
                .items()
                .send()
                .try_collect(),
        )
        .await?;
    families.extend(page);
    for family in families {
        let out = run
            .aws
            .call(
                Service::Ecs,
                CallClass::Read,
                "ListTaskDefinitions",
                &family,
                ecs.list_task_definitions()
                    .family_prefix(&family)
                    .status(TaskDefinitionStatus::Active)
                    .sort(SortOrder::Desc)
                    .send(),
            )
            .await?;
        // `family_prefix` matches prefixes: the newest revision of exactly this family.
        let Some(latest) = out.task_definition_arns().iter().find(|arn| {
            arn.rsplit_once("task-definition/")
                .and_then(|(_, f)| f.split(':').next())
                == Some(family.as_str())
        }) else {
            continue;
        };
        let d = run
            .aws
            .call(
                Service::Ecs,
                CallClass::Read,
                "DescribeTaskDefinition",
                latest,
                ecs.describe_task_definition()
                    .task_definition(latest)
                    .include(TaskDefinitionField::Tags)
                    .send(),
            )
            .await?;
        if let Some(owner) = owner_of(
            &run.aws.instance,
            &crate::resources::shared::ecs_tags::to_map(d.tags()),
        ) {
            scan.add(owner, task_definition::TYPE, latest.clone());
        }
    }
    Ok(())
}

/// Ownership TXT records naming this instance: each stands for the records at its name.
async fn records(run: &SpecRun<'_>, scan: &mut OwnedScan, zone: &str) -> Result<(), ResourceError> {
    let z = match crate::resources::shared::zone::resolve(run, zone).await {
        Ok(z) => z,
        // A zone that no longer exists holds nothing to collect.
        Err(ResourceError::Unsatisfiable(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let all = match crate::resources::shared::zone::records(run, &z).await {
        Ok(all) => all,
        Err(ResourceError::Unsatisfiable(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for r in all.iter() {
        if r.rtype != "TXT" || r.set_identifier.is_some() {
            continue;
        }
        for v in &r.values {
            let Some((owner, instance)) = dns::parse_owner(v) else {
                continue;
            };
            if instance != run.aws.instance {
                continue;
            }
            if let Some(key) = SpecKey::parse(&owner) {
                scan.add(key, dns::TYPE, format!("{}/{}/A", z.id, r.name));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MANAGED_BY_TAG, OWNER_TAG};

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_both_tags_with_this_instance_name_an_owner() {
        let both = tags(&[(MANAGED_BY_TAG, "ops"), (OWNER_TAG, "ServiceSpec/web")]);
        assert_eq!(
            owner_of("ops", &both),
            Some(SpecKey::new(Kind::ServiceSpec, "web"))
        );
        assert_eq!(owner_of("other", &both), None);
        assert_eq!(
            owner_of("ops", &tags(&[(OWNER_TAG, "ServiceSpec/web")])),
            None
        );
        assert_eq!(owner_of("ops", &tags(&[(MANAGED_BY_TAG, "ops")])), None);
        let released = tags(&[(
            crate::resources::shared::tags::RELEASED_TAG,
            "ServiceSpec/web",
        )]);
        assert_eq!(owner_of("ops", &released), None);
        let garbled = tags(&[(MANAGED_BY_TAG, "ops"), (OWNER_TAG, "Widget/web")]);
        assert_eq!(owner_of("ops", &garbled), None);
    }

    #[test]
    fn zones_come_from_specs_and_from_recorded_records() {
        let ledger = vec![
            ResourceRef {
                resource_type: "route53:record".into(),
                id: "Z123/web.example.com/A".into(),
            },
            ResourceRef {
                resource_type: "elbv2:targetgroup".into(),
                id: "arn:aws:elasticloadbalancing:x".into(),
            },
        ];
        let z = zones(&Default::default(), &ledger);
        assert_eq!(z, BTreeSet::from(["/hostedzone/Z123".to_string()]));
    }
}

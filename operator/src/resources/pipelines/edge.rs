//! The edge pipelines: what a ClusterSpec's load balancers and a ServiceSpec's ingress need, in
//! dependency order. Each step is its own module; this one only sequences them.
//!
//! - [`load_balancer`]: default certificate (+ validation records) -> ALB (+ attributes) ->
//!   HTTP :80 redirect and HTTPS :443 listeners.
//! - [`service`]: ECR repository -> certificate for hosts the default one does not cover ->
//!   target group -> listener rule + SNI certificate. Returns what the ECS service needs.
//! - [`service_dns`]: the alias records, last, once the service is in place.

use crate::resources::driver::reconcile::{drive, drive_set};
use crate::resources::kinds::certificate::{self, CertificateKind};
use crate::resources::kinds::dns::{self, RecordKind};
use crate::resources::kinds::ecr::{self, RepositoryKind};
use crate::resources::kinds::listener::{self, ListenerKind};
use crate::resources::kinds::listener_rule::{self, ListenerRuleKind};
use crate::resources::kinds::load_balancer::{self, Info, LoadBalancerKind};
use crate::resources::kinds::target_group::{self, TargetGroupKind};
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;
use crate::spec::types::{ClusterSpec, LoadBalancer, ServiceSpec};

/// Reconcile one `loadBalancers[]` entry of a ClusterSpec. A certificate still pending leaves the
/// HTTPS listener for a later reconcile (the run is Progressing meanwhile).
pub async fn load_balancer(
    run: &mut SpecRun<'_>,
    lb: &LoadBalancer,
) -> Result<Info, ResourceError> {
    let cert = &lb.certificate;
    let cert = certified(
        run,
        certificate::Desired::new(&cert.domains, &cert.hosted_zone),
    )
    .await?;
    let info = drive::<LoadBalancerKind>(run, &load_balancer::desired(lb)).await?;
    let issued = (cert.issued && !cert.arn.is_empty()).then(|| cert.arn.clone());
    drive_set::<ListenerKind>(run, &listener::desired(lb, &info, issued)).await?;
    Ok(info)
}

/// Drive the certificate `d`, write its validation records, and follow what is still pending
/// (validation, issuance) into the spec's waits.
async fn certified(
    run: &mut SpecRun<'_>,
    d: certificate::Desired,
) -> Result<certificate::Outcome, ResourceError> {
    let cert = drive::<CertificateKind>(run, &d).await?;
    let mut cert = certificate::validate(run, &d, cert).await?;
    std::mem::take(&mut cert.pending).follow(run);
    Ok(cert)
}

/// What the edge stage of a ServiceSpec hands to the ECS stage and to [`service_dns`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceEdge {
    /// The ECR repository URI, when the spec has a repository.
    pub repository_uri: Option<String>,
    /// The target group the ECS service registers its tasks in (`None` without ingress, or
    /// empty while only planning its creation).
    pub target_group_arn: Option<String>,
    /// The container port the target group forwards to.
    pub container_port: Option<u32>,
    /// The load balancer in front of the service.
    pub load_balancer: Option<Info>,
    /// BlueGreen/Canary/Linear: the alternate target group and the production and test rules
    /// (ARNs; empty while only planning their creation).
    pub alternate_target_group_arn: Option<String>,
    pub production_rule_arn: Option<String>,
    pub test_rule_arn: Option<String>,
    /// The HTTPS listener the rules sit on (for taking down a test rule no longer wanted).
    pub https_listener_arn: Option<String>,
}

/// The hosts of `spec` that `lb`'s default certificate does not cover.
pub fn uncovered_hosts(spec: &ServiceSpec, lb: &LoadBalancer) -> Vec<String> {
    spec.spec
        .ingress
        .as_ref()
        .map(|i| {
            i.hosts
                .iter()
                .filter(|h| !certificate::covers(&lb.certificate.domains, h))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The edge resources of a ServiceSpec, before its ECS service.
pub async fn service(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    cluster: &ClusterSpec,
) -> Result<ServiceEdge, ResourceError> {
    let mut out = ServiceEdge::default();
    if let Some(repo) = &spec.spec.repository {
        out.repository_uri = Some(drive::<RepositoryKind>(run, &ecr::desired(repo)).await?.uri);
    }
    let Some(ingress) = &spec.spec.ingress else {
        return Ok(out);
    };
    let lb_spec = cluster
        .spec
        .load_balancers
        .iter()
        .find(|l| l.name == ingress.load_balancer)
        .ok_or_else(|| {
            ResourceError::Dependency(format!(
                "load balancer {} is not declared by ClusterSpec/{}",
                ingress.load_balancer, cluster.metadata.name
            ))
        })?;
    let lb_name = crate::resources::shared::names::load_balancer_name(&lb_spec.name);
    let info = load_balancer::find(run, &lb_name).await?.ok_or_else(|| {
        ResourceError::Dependency(format!(
            "load balancer {lb_name} does not exist yet (ClusterSpec/{} creates it)",
            cluster.metadata.name
        ))
    })?;
    let https = listener::listeners(run, &info.arn)
        .await?
        .into_iter()
        .find(|l| l.port == 443)
        .ok_or_else(|| {
            ResourceError::Dependency(format!(
                "load balancer {lb_name} has no HTTPS :443 listener yet (ClusterSpec/{} creates it once its certificate is issued)",
                cluster.metadata.name
            ))
        })?;

    let uncovered = uncovered_hosts(spec, lb_spec);
    let mut sni = None;
    if !uncovered.is_empty() {
        let zone = ingress
            .dns
            .as_ref()
            .map(|d| d.hosted_zone.clone())
            .unwrap_or_else(|| lb_spec.certificate.hosted_zone.clone());
        let cert = certified(run, certificate::Desired::new(&uncovered, &zone)).await?;
        if cert.issued {
            sni = Some(cert.arn);
        }
    }

    let port = spec.spec.container.port.ok_or_else(|| {
        ResourceError::Unsatisfiable("spec.container.port is required with ingress".into())
    })?;
    let primary = target_group::desired(&spec.metadata.name, ingress, port, &info.vpc_id);
    let tg = drive::<TargetGroupKind>(run, &primary).await?;
    let deployment = &spec.spec.deployment;
    let shifting = deployment.strategy.shifts_traffic();
    let mut rule =
        listener_rule::Desired::new(&ingress.hosts, &ingress.paths, &tg, ingress.priority);
    if shifting {
        // The alternate group: the primary's twin under its own name.
        let alternate = target_group::Desired {
            name: crate::resources::shared::names::alternate_target_group_name(&spec.metadata.name),
            ..primary.clone()
        };
        let alt = Box::pin(drive::<TargetGroupKind>(run, &alternate)).await?;
        // All production traffic on the primary until ECS shifts it; from then on the weights
        // are ECS's (the rule's plan compares the set of target groups only).
        rule = rule.weighted(vec![(tg.clone(), 100), (alt.clone(), 0)]);
        out.alternate_target_group_arn = Some(alt);
    }
    let production = Box::pin(rule_on(run, &lb_name, &https.arn, rule.clone())).await?;
    let (production, production_priority) = (production.arn, production.priority);
    out.production_rule_arn = Some(production);
    if let (true, Some(t), Some(alt)) = (
        shifting,
        &deployment.test_traffic,
        out.alternate_target_group_arn.clone(),
    ) {
        // The test rule: before the production rule, matching the header too; its traffic goes
        // to the alternate group (the new revision during a deployment; weights ECS's too).
        let hosts = rule.hosts.clone();
        let priority = match production_priority {
            Some(p) => {
                Some(Box::pin(listener_rule::test_priority(run, &https.arn, &hosts, p)).await?)
            }
            None => None,
        };
        let test = listener_rule::Desired::new(&ingress.hosts, &ingress.paths, &tg, priority)
            .weighted(vec![(tg.clone(), 0), (alt, 100)])
            .test(&t.header, &t.value);
        if priority.is_some() {
            let placed = Box::pin(rule_on(run, &lb_name, &https.arn, test)).await?;
            out.test_rule_arn = Some(placed.arn);
        } else {
            out.test_rule_arn = Some(String::new());
        }
    }
    out.https_listener_arn = Some(https.arn.clone());
    // While a new certificate is pending, the one attached before stays.
    if uncovered.is_empty() || sni.is_some() {
        listener::reconcile_sni(run, &lb_name, &https, sni.as_deref()).await?;
    }
    out.target_group_arn = Some(tg);
    out.container_port = Some(port);
    out.load_balancer = Some(info);
    Ok(out)
}

/// Drive this spec's listener `rule` on the HTTPS listener `listener` of load balancer `lb`,
/// and report its condition once it has a priority.
async fn rule_on(
    run: &mut SpecRun<'_>,
    lb: &str,
    listener: &str,
    rule: listener_rule::Desired,
) -> Result<listener_rule::Placed, ResourceError> {
    let (lb, listener) = (lb.to_string(), listener.to_string());
    let target = listener_rule::Target { lb, listener, rule };
    let placed = drive::<ListenerRuleKind>(run, &target).await?;
    if let Some(c) = listener_rule::condition(&target, &placed) {
        run.condition(c);
    }
    Ok(placed)
}

/// After the ECS service: take down the test rule when the spec has no test traffic (or no
/// traffic-shifting strategy) any more, and the alternate target group when its strategy is
/// Rolling again. Each delete checks the ownership tags first; a group still in use (a
/// draining service) stays recorded and is tried again.
pub async fn drop_unused_deployment_resources(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    edge: &ServiceEdge,
) -> Result<(), ResourceError> {
    let (Some(ingress), Some(listener)) = (&spec.spec.ingress, &edge.https_listener_arn) else {
        return Ok(());
    };
    let d = &spec.spec.deployment;
    if !(d.strategy.shifts_traffic() && d.test_traffic.is_some()) {
        let hosts = ingress
            .hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        if let Some((arn, _)) =
            listener_rule::find_owned(run, listener, &hosts, listener_rule::Role::Test).await?
        {
            listener_rule::delete(run, &arn, false).await?.follow(run);
        }
    }
    if !d.strategy.shifts_traffic() {
        let name =
            crate::resources::shared::names::alternate_target_group_name(&spec.metadata.name);
        // Only a group the last status lists can be one this spec made (one created just
        // before a crash, unlisted, is garbage collection's): no read for the many specs that
        // never had one. Without a ledger (`diff`, a first reconcile) look.
        let listed = run.ledger.as_deref().is_none_or(|l| {
            let part = format!(":targetgroup/{name}/");
            l.iter()
                .any(|r| r.resource_type == target_group::TYPE && r.id.contains(&part))
        });
        if !listed {
            return Ok(());
        }
        if let Some(o) = target_group::observe(run, &name).await? {
            let ours =
                crate::resources::shared::tags::ownership(&run.aws.instance, &run.key, &o.tags)
                    == crate::resources::shared::tags::Ownership::Ours;
            if ours && !target_group::delete(run, &o.arn, false).await?.follow(run) {
                run.resource(target_group::TYPE, o.arn.clone());
            }
        }
    }
    Ok(())
}

/// The Route53 records of a ServiceSpec, after its ECS service.
pub async fn service_dns(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    edge: &ServiceEdge,
) -> Result<(), ResourceError> {
    let (Some(ingress), Some(lb)) = (&spec.spec.ingress, &edge.load_balancer) else {
        return Ok(());
    };
    let Some(d) = &ingress.dns else {
        return Ok(());
    };
    let records = dns::desired(&ingress.hosts, lb, &run.aws.instance, &run.key);
    let zone = d.hosted_zone.clone();
    let target = dns::Target {
        zone,
        records,
        adopt: run.adopt,
    };
    drive::<RecordKind>(run, &target)
        .await?
        .pending()
        .follow(run);
    Ok(())
}

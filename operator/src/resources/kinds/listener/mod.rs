//! ALB listeners: HTTP :80 whose default action redirects (301) to HTTPS :443 keeping host,
//! path and query; HTTPS :443 with the default certificate, the SSL policy and a fixed 404; and
//! the SNI certificates services attach to the HTTPS listener.
//!
//! Invariants: actions are compared in a normalised form ([`Act`]: AWS's redirect defaults
//! filled in, status codes without `HTTP_`, forward targets as a set), so a listener AWS echoes
//! back differently spelt is not a change; every difference is fixed by one ModifyListener call;
//! a listener without our tags is never modified unless adopted; the HTTPS listener is created
//! only once its certificate is issued, and keeps its current certificate while a new one is
//! pending; an SNI certificate is removed only when this spec owns it (tags).

mod gc;
pub use gc::SEEN;

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::operation::describe_listener_certificates::DescribeListenerCertificatesOutput;
use aws_sdk_elasticloadbalancingv2::operation::describe_listeners::DescribeListenersOutput;
use aws_sdk_elasticloadbalancingv2::types::{Certificate, ProtocolEnum};

use super::load_balancer::Info;
use crate::aws::Service;
use crate::resources::error::Absent;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, ManagedSet, Plan};
use crate::resources::run::tag_step;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::elb_actions::{short_arn, Act};
use crate::resources::shared::elb_tags::{self, Tags};
use crate::resources::shared::pages::all_pages;
use crate::resources::shared::tags::{ownership, Ownership};
use crate::resources::snapshot::{Entry, Record};
use crate::resources::ResourceError;
use crate::spec::types::LoadBalancer;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "elbv2:listener";
/// The id of an SNI certificate attached to a listener (`<listener ARN>|<certificate ARN>`).
pub const CERTIFICATE_TYPE: &str = "elbv2:listener-certificate";

/// `old -> new` for default actions; two redirects that differ only in status read as
/// `redirect 302 -> 301`.
fn actions_detail(old: &[Act], new: &[Act]) -> (String, String) {
    if let ([Act::Redirect { status: a, .. }], [Act::Redirect { status: b, .. }]) = (old, new) {
        let mut same = old[0].clone();
        if let Act::Redirect { status, .. } = &mut same {
            *status = b.clone();
        }
        if same == new[0] {
            return (format!("redirect {a}"), b.clone());
        }
    }
    let text = |acts: &[Act]| {
        if acts.is_empty() {
            "none".to_string()
        } else {
            acts.iter().map(Act::text).collect::<Vec<_>>().join(", ")
        }
    };
    (text(old), text(new))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The load balancer's name (how changes name the listener) and ARN (empty while only
    /// planning its create).
    pub lb_name: String,
    pub lb_arn: String,
    pub port: i32,
    pub protocol: String,
    /// HTTPS only.
    pub ssl_policy: Option<String>,
    /// HTTPS only: the default certificate. `None` while it is not issued.
    pub certificate: Option<String>,
    pub actions: Vec<Act>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    pub port: i32,
    pub protocol: String,
    pub ssl_policy: Option<String>,
    pub certificate: Option<String>,
    pub actions: Vec<Act>,
    pub tags: Tags,
}

/// The listeners a `loadBalancers[]` entry wants on its load balancer `info`; the HTTPS one
/// uses `certificate` (the ARN of the issued default certificate, `None` while pending).
pub fn desired(lb: &LoadBalancer, info: &Info, certificate: Option<String>) -> Vec<Desired> {
    let mut out = Vec::new();
    if lb.https_redirect {
        out.push(Desired {
            lb_name: info.name.clone(),
            lb_arn: info.arn.clone(),
            port: 80,
            protocol: "HTTP".into(),
            ssl_policy: None,
            certificate: None,
            actions: vec![Act::https_redirect()],
        });
    }
    out.push(Desired {
        lb_name: info.name.clone(),
        lb_arn: info.arn.clone(),
        port: 443,
        protocol: "HTTPS".into(),
        ssl_policy: Some(lb.ssl_policy.clone()),
        certificate,
        actions: vec![Act::not_found()],
    });
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Tag(Tags),
    /// One ModifyListener call setting every desired field.
    Modify,
}

pub fn resource_name(lb: &str, port: i32) -> String {
    format!("load balancer {lb} listener :{port}")
}

/// The steps from `o` to `d` (pure). An HTTPS listener whose certificate is not issued yet is
/// not created, and an existing one keeps its certificate meanwhile.
pub fn plan(
    lb: &str,
    d: &Desired,
    o: Option<&Observed>,
    tags_missing: Tags,
) -> Vec<(Step, Change)> {
    let resource = resource_name(lb, d.port);
    let Some(o) = o else {
        if d.protocol == "HTTPS" && d.certificate.is_none() {
            return Vec::new();
        }
        let detail = d
            .actions
            .iter()
            .map(Act::text)
            .collect::<Vec<_>>()
            .join(", ");
        return vec![(
            Step::Create,
            Change::create(&resource, format!("{} {}", d.protocol, detail)),
        )];
    };
    let mut steps = Vec::new();
    steps.extend(tag_step(&resource, &tags_missing, Step::Tag));
    let mut details = Vec::new();
    if o.protocol != d.protocol {
        details.push(format!("protocol: {} -> {}", o.protocol, d.protocol));
    }
    if o.actions != d.actions {
        let (old, new) = actions_detail(&o.actions, &d.actions);
        details.push(format!("default action: {old} -> {new}"));
    }
    if d.protocol == "HTTPS" {
        if d.ssl_policy.is_some() && o.ssl_policy != d.ssl_policy {
            details.push(format!(
                "ssl policy: {} -> {}",
                o.ssl_policy.as_deref().unwrap_or("none"),
                d.ssl_policy.as_deref().unwrap_or("none")
            ));
        }
        if d.certificate.is_some() && o.certificate != d.certificate {
            details.push(format!(
                "certificate: {} -> {}",
                o.certificate.as_deref().unwrap_or("none"),
                d.certificate.as_deref().unwrap_or("none")
            ));
        }
    }
    if !details.is_empty() {
        steps.push((Step::Modify, Change::update(&resource, details.join(", "))));
    }
    steps
}

/// Every listener of the load balancer, without tags (DescribeListeners).
async fn describe_listeners(
    run: &SpecRun<'_>,
    lb_arn: &str,
) -> Result<Vec<Observed>, ResourceError> {
    if lb_arn.is_empty() {
        return Ok(Vec::new());
    }
    let pages = all_pages(
        |marker| {
            let req = run.aws.elbv2.describe_listeners().load_balancer_arn(lb_arn);
            let req = req.set_marker(marker).send();
            run.aws
                .read(Service::Elbv2, "DescribeListeners", lb_arn, req)
        },
        DescribeListenersOutput::next_marker,
    )
    .await?;
    let mut out = Vec::new();
    for l in pages.iter().flat_map(|p| p.listeners()) {
        out.push(Observed {
            arn: l.listener_arn().unwrap_or_default().to_string(),
            port: l.port().unwrap_or_default(),
            protocol: l
                .protocol()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
            ssl_policy: l.ssl_policy().map(str::to_string),
            // AWS lists only the default certificate here; moto also lists the SNI ones,
            // after the default one and without `IsDefault`.
            certificate: l
                .certificates()
                .iter()
                .find(|c| c.is_default() != Some(false))
                .and_then(|c| c.certificate_arn())
                .map(str::to_string),
            actions: l.default_actions().iter().map(Act::from_sdk).collect(),
            tags: Tags::new(),
        });
    }
    Ok(out)
}

/// Every listener of the load balancer, without tags (what a ServiceSpec needs to find the
/// HTTPS listener). In a resync wave, read once per load balancer for the whole wave.
pub async fn listeners(run: &SpecRun<'_>, lb_arn: &str) -> Result<Vec<Observed>, ResourceError> {
    let entry = Entry::Listeners(lb_arn.to_string());
    match run.cached(entry, |_| describe_listeners(run, lb_arn)).await {
        Some(all) => Ok(all?.as_ref().clone()),
        None => describe_listeners(run, lb_arn).await,
    }
}

/// Every listener of the load balancer, with tags ([`listeners`], then DescribeTags in
/// batches of 20).
pub async fn observe_all(run: &SpecRun<'_>, lb_arn: &str) -> Result<Vec<Observed>, ResourceError> {
    let mut out = listeners(run, lb_arn).await?;
    let arns: Vec<String> = out.iter().map(|l| l.arn.clone()).collect();
    let mut tags = elb_tags::describe(run, &arns).await?;
    for l in &mut out {
        l.tags = tags.remove(&l.arn).unwrap_or_default();
    }
    Ok(out)
}

fn certificates(d: &Desired) -> Option<Vec<Certificate>> {
    d.certificate
        .as_ref()
        .map(|arn| vec![Certificate::builder().certificate_arn(arn).build()])
}

fn default_actions(d: &Desired) -> Option<Vec<aws_sdk_elasticloadbalancingv2::types::Action>> {
    Some(d.actions.iter().map(Act::to_sdk).collect())
}

/// CreateListener with every desired field and the ownership tags. Returns its ARN.
async fn create(run: &SpecRun<'_>, d: &Desired) -> Result<String, ResourceError> {
    let req = run.aws.elbv2.create_listener().load_balancer_arn(&d.lb_arn);
    let req = req
        .port(d.port)
        .protocol(ProtocolEnum::from(d.protocol.as_str()))
        .set_ssl_policy(d.ssl_policy.clone())
        .set_certificates(certificates(d))
        .set_default_actions(default_actions(d))
        .set_tags(Some(elb_tags::sdk_tags(&run.tags())));
    let resource = resource_name(&d.lb_name, d.port);
    let out = run
        .aws
        .write(Service::Elbv2, "CreateListener", &resource, req.send())
        .await?;
    let arn = out.listeners().first().and_then(|l| l.listener_arn());
    Ok(arn.unwrap_or_default().to_string())
}

/// ModifyListener setting every desired field of the listener `arn`.
async fn modify(run: &SpecRun<'_>, d: &Desired, arn: &str) -> Result<(), ResourceError> {
    let req = run.aws.elbv2.modify_listener().listener_arn(arn);
    let req = req
        .port(d.port)
        .protocol(ProtocolEnum::from(d.protocol.as_str()))
        .set_ssl_policy(d.ssl_policy.clone())
        .set_certificates(certificates(d))
        .set_default_actions(default_actions(d));
    let resource = resource_name(&d.lb_name, d.port);
    run.aws
        .write(Service::Elbv2, "ModifyListener", &resource, req.send())
        .await?;
    Ok(())
}

/// The generic driver's view of a listener: the listeners of a load balancer are read together
/// ([`observe_all`]: DescribeListeners, then their tags), then each is driven by its port. Its
/// output is its ARN (empty while only planning its create, or while an HTTPS listener waits
/// for its certificate).
impl Managed for ListenerKind {
    type Desired = Desired;
    type Observed = Observed;
    type Step = Step;
    crate::resources::kind::arn_output!();

    fn label(d: &Desired) -> String {
        resource_name(&d.lb_name, d.port)
    }

    async fn observe(run: &SpecRun<'_>, d: &Desired) -> Result<Option<Observed>, ResourceError> {
        let all = observe_all(run, &d.lb_arn).await?;
        Ok(all.into_iter().find(|o| o.port == d.port))
    }

    fn tags(o: &Observed) -> &Tags {
        &o.tags
    }

    fn plan(d: &Desired, o: Option<&Observed>, missing: Tags) -> Plan<Step> {
        Plan::steps(plan(&d.lb_name, d, o, missing))
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out: arn, .. } = at;
        match step {
            Step::Create => *arn = create(run, d).await?,
            Step::Tag(tags) => elb_tags::add(run, arn, &tags).await?,
            Step::Modify => modify(run, d, arn).await?,
        }
        Ok(())
    }
}

impl ManagedSet for ListenerKind {
    /// One [`observe_all`] per load balancer the list names (a ClusterSpec entry's listeners
    /// are all on one).
    async fn observe_set(
        run: &SpecRun<'_>,
        wanted: &[Desired],
    ) -> Result<Vec<Option<Observed>>, ResourceError> {
        let mut by_lb: BTreeMap<&str, Vec<Observed>> = BTreeMap::new();
        let mut out = Vec::with_capacity(wanted.len());
        for d in wanted {
            if !by_lb.contains_key(d.lb_arn.as_str()) {
                by_lb.insert(&d.lb_arn, observe_all(run, &d.lb_arn).await?);
            }
            let all = &by_lb[d.lb_arn.as_str()];
            out.push(all.iter().find(|o| o.port == d.port).cloned());
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// SNI certificates
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniStep {
    Add(String),
    Remove(String),
}

/// What to add and remove so the listener holds `want` and no other certificate this spec owns
/// (pure). `attached` lists the listener's non-default certificates and whether we own each.
pub fn plan_sni(want: Option<&str>, attached: &[(String, bool)]) -> Vec<SniStep> {
    let mut out = Vec::new();
    if let Some(w) = want {
        if !attached.iter().any(|(a, _)| a == w) {
            out.push(SniStep::Add(w.to_string()));
        }
    }
    for (arn, ours) in attached {
        if *ours && Some(arn.as_str()) != want {
            out.push(SniStep::Remove(arn.clone()));
        }
    }
    out
}

/// Every certificate of a listener as DescribeListenerCertificates lists it: ARN and
/// `IsDefault`.
pub(super) async fn describe_certificates(
    run: &SpecRun<'_>,
    listener: &str,
) -> Result<Vec<(String, Option<bool>)>, ResourceError> {
    let elb = &run.aws.elbv2;
    let pages = all_pages(
        |m| {
            run.aws.read(
                Service::Elbv2,
                "DescribeListenerCertificates",
                listener,
                elb.describe_listener_certificates()
                    .listener_arn(listener)
                    .set_marker(m)
                    .send(),
            )
        },
        DescribeListenerCertificatesOutput::next_marker,
    )
    .await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.certificates())
        .map(|c| {
            let arn = c.certificate_arn().unwrap_or_default().to_string();
            (arn, c.is_default())
        })
        .collect())
}

/// The listener's non-default certificates (the default one is left out even when AWS lists it
/// twice, as moto does after adding it as SNI). In a resync wave, read once per listener for
/// the whole wave.
async fn sni_certificates(run: &SpecRun<'_>, l: &Observed) -> Result<Vec<String>, ResourceError> {
    let entry = Entry::ListenerCertificates(l.arn.clone());
    let all = match run
        .cached(entry, |_| describe_certificates(run, &l.arn))
        .await
    {
        Some(all) => all?,
        None => std::sync::Arc::new(describe_certificates(run, &l.arn).await?),
    };
    let mut out: Vec<String> = Vec::new();
    for (arn, is_default) in all.iter() {
        if *is_default == Some(true) || Some(arn.as_str()) == l.certificate.as_deref() {
            continue;
        }
        if !out.iter().any(|a| a == arn) {
            out.push(arn.clone());
        }
    }
    Ok(out)
}

/// What attaching (`add`) or detaching the SNI certificate `certificate` did to the wave's
/// snapshot (see `snapshot` "Own writes"): the listener's certificates gain or lose it; ACM's
/// description and listing of certificates name their users (`InUseBy`), so those entries are
/// dropped.
fn recorded_sni(listener: &str, certificate: &str, add: bool) -> Vec<Record> {
    let cert = certificate.to_string();
    vec![
        Record::update(
            Entry::ListenerCertificates(listener.to_string()),
            move |all: &Vec<(String, Option<bool>)>| {
                let mut all = all.clone();
                if add {
                    if !all.iter().any(|(a, _)| *a == cert) {
                        all.push((cert, Some(false)));
                    }
                } else {
                    all.retain(|(a, d)| *a != cert || *d == Some(true));
                }
                all
            },
        ),
        Record::forget(Entry::Certificate(certificate.to_string())),
        Record::forget(Entry::Certificates),
    ]
}

/// Attach `want` (a certificate of this spec) to the HTTPS listener as an SNI certificate and
/// detach the others this spec owns.
pub async fn reconcile_sni(
    run: &mut SpecRun<'_>,
    lb: &str,
    listener: &Observed,
    want: Option<&str>,
) -> Result<(), ResourceError> {
    let attached = sni_certificates(run, listener).await?;
    let mut marked = Vec::new();
    for arn in attached {
        let ours = if Some(arn.as_str()) == want {
            true
        } else {
            let tags: Tags = super::certificate::tags(run, &arn).await?;
            ownership(&run.aws.instance, &run.key, &tags) == Ownership::Ours
        };
        marked.push((arn, ours));
    }
    let resource = resource_name(lb, listener.port);
    for step in plan_sni(want, &marked) {
        let (change, op, add) = match &step {
            SniStep::Add(a) => (
                Change::update(&resource, format!("sni certificates: + {a}")),
                "AddListenerCertificates",
                true,
            ),
            SniStep::Remove(a) => (
                Change::update(&resource, format!("sni certificates: - {a}")),
                "RemoveListenerCertificates",
                false,
            ),
        };
        if !run.plan(change) {
            continue;
        }
        let (SniStep::Add(arn) | SniStep::Remove(arn)) = &step;
        let cert = Certificate::builder().certificate_arn(arn).build();
        let elb = &run.aws.elbv2;
        let listener_arn = listener.arn.clone();
        let record = || recorded_sni(&listener_arn, arn, add);
        if add {
            run.aws
                .write_recorded(
                    Service::Elbv2,
                    op,
                    &resource,
                    elb.add_listener_certificates()
                        .listener_arn(&listener.arn)
                        .certificates(cert)
                        .send(),
                    |_| record(),
                )
                .await?;
        } else {
            run.aws
                .write_recorded(
                    Service::Elbv2,
                    op,
                    &resource,
                    elb.remove_listener_certificates()
                        .listener_arn(&listener.arn)
                        .certificates(cert)
                        .send(),
                    |_| record(),
                )
                .await?;
        }
    }
    if let Some(w) = want {
        // Recorded so a deletion detaches it before deleting the certificate.
        run.resource(CERTIFICATE_TYPE, listener_certificate_id(&listener.arn, w));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Teardown
// ---------------------------------------------------------------------------------------------

/// The id of an `elbv2:listener-certificate` resource: the listener and the certificate.
pub fn listener_certificate_id(listener: &str, certificate: &str) -> String {
    format!("{listener}|{certificate}")
}

/// Teardown of a ClusterSpec's listener (`elbv2:listener`, its ARN): deleted, or released with
/// `retain`. While its load balancer has deletion protection on, the listener is kept and the
/// deletion waits (see [`super::load_balancer::delete`]). A listener that still holds rules (a ServiceSpec's rule released by a `Retain`
/// deletion, or rules made by hand) is not deleted, since that would delete those rules with
/// it: the condition `ListenerInUse` names them and the deletion waits. A listener without our
/// tags is left alone.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    // Gone already, or not ours: left alone.
    if !elb_tags::owned(run, arn).await? {
        return Ok(Gone::Yes);
    }
    let resource = format!("listener {}", short_arn(arn));
    if retain {
        elb_tags::release(run, arn, &resource).await?;
        return Ok(Gone::Yes);
    }
    // A protected load balancer keeps its listeners too: a deletion that cannot finish should
    // not leave it half torn down.
    if let Some(lb) = super::load_balancer::name_from_arn(arn) {
        if super::load_balancer::observe(run, &lb)
            .await?
            .is_some_and(|o| o.deletion_protection)
        {
            return Ok(super::load_balancer::wait_for_protection(run, &lb));
        }
    }
    let Some(rules) = super::listener_rule::observe(run, arn)
        .await
        .absent_if("ListenerNotFound")?
    else {
        return Ok(Gone::Yes);
    };
    if !rules.is_empty() {
        let why = format!(
            "{resource} still has {} rule(s) not owned by this spec ({}); it is kept until they are gone",
            rules.len(),
            rules
                .iter()
                .map(|r| r.priority.map_or("?".to_string(), |p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        run.condition(crate::reconcile::ConditionReport::new(
            "Deleted",
            false,
            "ListenerInUse",
            why.clone(),
        ));
        return Ok(Gone::not_yet(why, std::time::Duration::from_secs(60)));
    }
    if run.plan(Change::delete(&resource, "")) {
        let req = run.aws.elbv2.delete_listener().listener_arn(arn).send();
        let deleted = run.aws.write(Service::Elbv2, "DeleteListener", arn, req);
        deleted.await.absent_if("ListenerNotFound")?;
    }
    Ok(Gone::Yes)
}

/// Teardown of a ServiceSpec's SNI certificate on the HTTPS listener
/// (`elbv2:listener-certificate`, id from [`listener_certificate_id`]): detached, when the
/// certificate is ours. With `retain` it stays attached (the certificate itself is released).
pub async fn delete_certificate(
    run: &mut SpecRun<'_>,
    id: &str,
    retain: bool,
) -> Result<Gone, ResourceError> {
    if retain {
        return Ok(Gone::Yes);
    }
    let Some((listener, cert)) = id.split_once('|') else {
        return Ok(Gone::Yes);
    };
    let Some(tags) = super::certificate::tags_of(run, cert).await? else {
        // The certificate is gone: AWS detached it with it.
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    let observed = Observed {
        arn: listener.to_string(),
        ..Default::default()
    };
    let Some(attached) = sni_certificates(run, &observed)
        .await
        .absent_if("ListenerNotFound")?
    else {
        return Ok(Gone::Yes);
    };
    if !attached.iter().any(|a| a == cert) {
        return Ok(Gone::Yes);
    }
    if run.plan(Change::update(
        format!("listener {}", short_arn(listener)),
        format!("sni certificates: - {cert}"),
    )) {
        run.aws
            .write(
                Service::Elbv2,
                "RemoveListenerCertificates",
                listener,
                run.aws
                    .elbv2
                    .remove_listener_certificates()
                    .listener_arn(listener)
                    .certificates(Certificate::builder().certificate_arn(cert).build())
                    .send(),
            )
            .await?;
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// An ALB listener, as the generic driver sees it.
    ListenerKind, TYPE, 8, delete, "ELBv2 listeners", gc::list_owned
);

crate::resources::kind::kind!(
    /// An SNI certificate attached to a listener, as the generic driver sees it.
    ListenerCertificateKind, CERTIFICATE_TYPE, 4, delete_certificate, "ELBv2 listener certificates", gc::list_owned_certificates
);

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, RedirectActionConfig, RedirectActionStatusCodeEnum,
    };

    fn http(actions: Vec<Act>) -> Observed {
        Observed {
            arn: "l80".into(),
            port: 80,
            protocol: "HTTP".into(),
            // AWS (and moto) report an SSL policy even on HTTP listeners: ignored.
            ssl_policy: Some("ELBSecurityPolicy-2016-08".into()),
            actions,
            ..Default::default()
        }
    }

    fn want80() -> Desired {
        Desired {
            lb_name: "prod".into(),
            lb_arn: "lb".into(),
            port: 80,
            protocol: "HTTP".into(),
            ssl_policy: None,
            certificate: None,
            actions: vec![Act::https_redirect()],
        }
    }

    #[test]
    fn a_matching_redirect_listener_needs_nothing() {
        assert!(plan(
            "prod",
            &want80(),
            Some(&http(vec![Act::https_redirect()])),
            Tags::new()
        )
        .is_empty());
    }

    #[test]
    fn a_302_redirect_reads_as_in_the_contract() {
        let mut a = Act::https_redirect();
        if let Act::Redirect { status, .. } = &mut a {
            *status = "302".into();
        }
        let steps = plan("prod", &want80(), Some(&http(vec![a])), Tags::new());
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].0, Step::Modify);
        assert_eq!(
            steps[0].1.to_string(),
            "~ load balancer prod listener :80 default action: redirect 302 -> 301"
        );
    }

    #[test]
    fn redirect_defaults_aws_fills_in_are_not_a_change() {
        let sdk = Action::builder()
            .r#type(ActionTypeEnum::Redirect)
            .redirect_config(
                RedirectActionConfig::builder()
                    .protocol("https")
                    .port("443")
                    .status_code(RedirectActionStatusCodeEnum::Http301)
                    .build(),
            )
            .build();
        assert_eq!(Act::from_sdk(&sdk), Act::https_redirect());
        assert_eq!(Act::from_sdk(&Act::not_found().to_sdk()), Act::not_found());
    }

    #[test]
    fn https_waits_for_its_certificate_and_keeps_the_old_one_meanwhile() {
        let d = Desired {
            lb_name: "prod".into(),
            lb_arn: "lb".into(),
            port: 443,
            protocol: "HTTPS".into(),
            ssl_policy: Some("P".into()),
            certificate: None,
            actions: vec![Act::not_found()],
        };
        assert!(plan("prod", &d, None, Tags::new()).is_empty());
        let o = Observed {
            arn: "l443".into(),
            port: 443,
            protocol: "HTTPS".into(),
            ssl_policy: Some("P".into()),
            certificate: Some("old".into()),
            actions: vec![Act::not_found()],
            ..Default::default()
        };
        assert!(plan("prod", &d, Some(&o), Tags::new()).is_empty());
        let d2 = Desired {
            certificate: Some("new".into()),
            ..d
        };
        assert_eq!(
            plan("prod", &d2, Some(&o), Tags::new())[0].1.to_string(),
            "~ load balancer prod listener :443 certificate: old -> new"
        );
    }

    #[test]
    fn sni_adds_what_is_missing_and_removes_only_our_leftovers() {
        let attached = vec![
            ("theirs".to_string(), false),
            ("old-ours".to_string(), true),
        ];
        assert_eq!(
            plan_sni(Some("new"), &attached),
            vec![
                SniStep::Add("new".into()),
                SniStep::Remove("old-ours".into())
            ]
        );
        assert!(plan_sni(Some("new"), &[("new".into(), true)]).is_empty());
        assert!(plan_sni(None, &[("theirs".into(), false)]).is_empty());
    }
}

//! DNS-validated ACM certificates: the load balancer's default certificate (ClusterSpec) and
//! the certificate for a service's hosts that the default one does not cover (ServiceSpec).
//!
//! A certificate has no name, so it is found by its ownership tags and its exact domain set.
//! Requests carry an idempotency token derived from the owner and the domains, so a retried
//! request returns the same certificate. Validation CNAMEs go into the named hosted zone in one
//! batch. A pending certificate makes the spec Progressing with a requeue; nothing ever waits.
//!
//! Invariants: a certificate without our tags is never used or changed; an issued certificate
//! the spec owns is reused (never re-requested); a validation record that exists with another
//! value is left alone unless the spec adopts.

mod gc;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_acm::types::{CertificateStatus, Tag, ValidationMethod};

use crate::aws::{CallClass, Service};
use crate::resources::error::Absent;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Pending, Plan};
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::pages::read_pages;
use crate::resources::shared::release;
use crate::resources::shared::tags::{ownership, request_tags, Ownership};
use crate::resources::shared::zone::{self, Action, Record, RecordChange, Zone};
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use aws_sdk_acm::operation::list_certificates::ListCertificatesOutput;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "acm:certificate";

/// How long to wait before looking at a pending certificate again.
pub const PENDING_REQUEUE: Duration = Duration::from_secs(30);

/// TTL of the validation CNAMEs.
const VALIDATION_TTL: i64 = 300;

/// The certificate as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Normalised (lower case); the first is the certificate's domain name.
    pub domains: Vec<String>,
    /// The hosted zone (name or id) of the validation records.
    pub hosted_zone: String,
}

impl Desired {
    pub fn new(domains: &[String], hosted_zone: &str) -> Self {
        let mut seen = BTreeSet::new();
        Desired {
            domains: domains
                .iter()
                .map(|d| zone::norm_name(d))
                .filter(|d| seen.insert(d.clone()))
                .collect(),
            hosted_zone: hosted_zone.to_string(),
        }
    }

    fn domain_set(&self) -> BTreeSet<String> {
        self.domains.iter().cloned().collect()
    }

    fn label(&self) -> String {
        format!("certificate {}", self.domains.join(","))
    }
}

/// A certificate of ours as ACM has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    pub status: String,
    pub domains: BTreeSet<String>,
    /// The validation CNAMEs ACM asks for (deduplicated; empty until ACM has made them).
    pub validation: Vec<Record>,
}

/// What the certificate stage found or made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Empty when only planning a request.
    pub arn: String,
    pub issued: bool,
    /// What is not settled yet (validation records, issuance), for the driver to follow.
    pub pending: Pending,
}

/// Whether a certificate for `domains` covers `host` (exactly, or through a `*.` wildcard one
/// level up).
pub fn covers(domains: &[String], host: &str) -> bool {
    let host = zone::norm_name(host);
    domains.iter().any(|d| {
        let d = zone::norm_name(d);
        if let Some(parent) = d.strip_prefix("*.") {
            host.split_once('.').is_some_and(|(_, rest)| rest == parent)
        } else {
            d == host
        }
    })
}

/// The idempotency token of a request: stable for one owner and domain list, at most 32 word
/// characters as ACM requires.
pub fn idempotency_token(instance: &str, owner: &str, domains: &[String]) -> String {
    crate::resources::shared::names::short_hash(
        &format!("{instance}|{owner}|{}", domains.join(",")),
        32,
    )
}

/// The validation changes a zone needs (pure). `Err` names a record outside the zone or one
/// that exists with another value (unless `adopt`).
pub fn plan_validation(
    wanted: &[Record],
    zone: &Zone,
    existing: &[Record],
    adopt: bool,
) -> Result<Vec<RecordChange>, ResourceError> {
    let mut out = Vec::new();
    for w in wanted {
        if !zone::in_zone(&w.name, zone) {
            return Err(ResourceError::Unsatisfiable(format!(
                "certificate validation record {} is outside the hosted zone {}",
                w.name, zone.name
            )));
        }
        match existing
            .iter()
            .find(|e| e.name == w.name && e.rtype == w.rtype && e.set_identifier.is_none())
        {
            None => out.push(RecordChange {
                action: Action::Create,
                record: w.clone(),
            }),
            Some(e) if e.values.iter().map(|v| zone::norm_name(v)).eq(w
                .values
                .iter()
                .map(|v| zone::norm_name(v))) => {}
            Some(_) if adopt => out.push(RecordChange {
                action: Action::Upsert,
                record: w.clone(),
            }),
            Some(e) => {
                return Err(ResourceError::Unsatisfiable(format!(
                    "certificate validation record {} exists with another value ({}); the operator does not change it (annotate the spec with ecs-operator.io/adopt: \"true\" to take it over)",
                    w.name,
                    e.values.join(" ")
                )))
            }
        }
    }
    Ok(out)
}

/// The ACM status as a string (`ISSUED`, `PENDING_VALIDATION`...).
fn status_text(s: Option<&CertificateStatus>) -> String {
    s.map(|s| s.as_str().to_string()).unwrap_or_default()
}

/// Every ISSUED or PENDING_VALIDATION certificate: ARN and normalised domain name
/// (ListCertificates, paginated).
async fn list(run: &SpecRun<'_>) -> Result<Vec<(String, String)>, ResourceError> {
    let mut out = Vec::new();
    let pages = read_pages(
        &run.aws,
        Service::Acm,
        "ListCertificates",
        |token| {
            run.aws
                .acm
                .list_certificates()
                .certificate_statuses(CertificateStatus::Issued)
                .certificate_statuses(CertificateStatus::PendingValidation)
                .set_next_token(token)
                .send()
        },
        ListCertificatesOutput::next_token,
    )
    .await?;
    for s in pages.iter().flat_map(|p| p.certificate_summary_list()) {
        out.push((
            s.certificate_arn().unwrap_or_default().to_string(),
            s.domain_name().map(zone::norm_name).unwrap_or_default(),
        ));
    }
    Ok(out)
}

/// Find our certificate for exactly `d.domains`: ISSUED first, then PENDING_VALIDATION. In a
/// resync wave the listing, and each certificate's tags and description, are read once for the
/// whole wave.
pub async fn observe(run: &SpecRun<'_>, d: &Desired) -> Result<Option<Observed>, ResourceError> {
    let first = d.domains.first().cloned().unwrap_or_default();
    let all = match run.cached(Entry::Certificates, |_| list(run)).await {
        Some(all) => all?,
        None => Arc::new(list(run).await?),
    };
    let candidates: Vec<String> = all
        .iter()
        .filter(|(_, domain)| *domain == first)
        .map(|(arn, _)| arn.clone())
        .collect();
    let mut found = Vec::new();
    for arn in candidates {
        let tags = tags(run, &arn).await?;
        if ownership(&run.aws.instance, &run.key, &tags) != Ownership::Ours {
            continue;
        }
        let o = describe_cached(run, &arn).await?;
        if o.domains == d.domain_set() {
            found.push(o);
        }
    }
    found.sort_by_key(|o| (o.status != "ISSUED", o.arn.clone()));
    Ok(found.into_iter().next())
}

/// [`describe`], once per certificate for a whole resync wave.
async fn describe_cached(run: &SpecRun<'_>, arn: &str) -> Result<Observed, ResourceError> {
    match run
        .cached(Entry::Certificate(arn.to_string()), |_| describe(run, arn))
        .await
    {
        Some(o) => Ok(o?.as_ref().clone()),
        None => describe(run, arn).await,
    }
}

/// DescribeCertificate of `arn`, as AWS answers it.
async fn describe_certificate(
    run: &SpecRun<'_>,
    arn: &str,
) -> Result<aws_sdk_acm::operation::describe_certificate::DescribeCertificateOutput, ResourceError>
{
    let req = run
        .aws
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send();
    run.aws
        .read(Service::Acm, "DescribeCertificate", arn, req)
        .await
}

/// DescribeCertificate, normalised.
async fn describe(run: &SpecRun<'_>, arn: &str) -> Result<Observed, ResourceError> {
    let out = describe_certificate(run, arn).await?;
    let c = out.certificate();
    let mut domains: BTreeSet<String> = c
        .map(|c| {
            c.subject_alternative_names()
                .iter()
                .map(|d| zone::norm_name(d))
                .collect()
        })
        .unwrap_or_default();
    if let Some(dn) = c.and_then(|c| c.domain_name()) {
        domains.insert(zone::norm_name(dn));
    }
    let mut validation: Vec<Record> = Vec::new();
    for v in c.map(|c| c.domain_validation_options()).unwrap_or_default() {
        let Some(rr) = v.resource_record() else {
            continue;
        };
        let name = zone::norm_name(rr.name());
        if validation.iter().any(|r| r.name == name) {
            continue;
        }
        validation.push(Record {
            name,
            rtype: "CNAME".into(),
            ttl: Some(VALIDATION_TTL),
            values: vec![rr.value().to_string()],
            alias: None,
            set_identifier: None,
        });
    }
    validation.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Observed {
        arn: arn.to_string(),
        status: status_text(c.and_then(|c| c.status())),
        domains,
        validation,
    })
}

/// Request the certificate (idempotent: the token is derived from owner and domains).
async fn request(run: &SpecRun<'_>, d: &Desired) -> Result<String, ResourceError> {
    let mut req = run
        .aws
        .acm
        .request_certificate()
        .domain_name(&d.domains[0])
        .validation_method(ValidationMethod::Dns)
        .idempotency_token(idempotency_token(
            &run.aws.instance,
            &run.key.to_string(),
            &d.domains,
        ));
    for san in &d.domains[1..] {
        req = req.subject_alternative_names(san);
    }
    for (k, v) in run.tags() {
        req = req.tags(
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(ResourceError::request)?,
        );
    }
    let out = run
        .aws
        .call(
            Service::Acm,
            CallClass::RequestCertificate,
            "RequestCertificate",
            &d.label(),
            req.send(),
        )
        .await?;
    Ok(out.certificate_arn().unwrap_or_default().to_string())
}

/// The one step a certificate can need: request it (DNS validation), then read what ACM
/// made of the request (its validation records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Request,
}

/// The generic driver's view of a certificate: observed by its domains among the
/// certificates whose ownership tags name this spec (so the claim takes nothing: observe
/// finds only ours), requested when there is none, never changed. Its output is the
/// certificate as found or as the request made it (`None` while only planning a request);
/// [`validate`] then writes its validation records and says what is still pending.
impl Managed for CertificateKind {
    crate::resources::kind::managed_types!(Desired, Observed, Step, Option<Observed>);

    fn label(d: &Desired) -> String {
        d.label()
    }

    async fn observe(run: &SpecRun<'_>, d: &Desired) -> Result<Option<Observed>, ResourceError> {
        if d.domains.is_empty() {
            return Err(ResourceError::Unsatisfiable(
                "a certificate needs at least one domain".into(),
            ));
        }
        observe(run, d).await
    }

    fn tags(_: &Observed) -> &BTreeMap<String, String> {
        &crate::resources::kind::NO_TAGS
    }

    /// Nothing to claim: `observe` answers only a certificate whose ownership tags name this
    /// spec.
    fn claim(
        _: &SpecRun<'_>,
        _: &Desired,
        _: &Observed,
    ) -> Result<BTreeMap<String, String>, ResourceError> {
        Ok(BTreeMap::new())
    }

    fn plan(d: &Desired, o: Option<&Observed>, _: BTreeMap<String, String>) -> Plan<Step> {
        let detail = format!("DNS validation in {}", d.hosted_zone);
        let request = (Step::Request, Change::create(d.label(), detail));
        Plan::steps(o.is_none().then_some(request).into_iter().collect())
    }

    fn output(_: &Desired, o: Option<&Observed>) -> Option<Observed> {
        o.cloned()
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, Step::Request: Step) -> Applied {
        let At { d, out, .. } = at;
        let arn = request(run, d).await?;
        *out = Some(describe(run, &arn).await?);
        Ok(())
    }

    fn id(_: &Desired, out: &Option<Observed>) -> Option<String> {
        out.as_ref().map(|o| o.arn.clone())
    }
}

/// After the driver: write the validation records `cert` needs into the spec's hosted zone
/// (one ChangeResourceRecordSets batch) and say what is not settled yet. Never waits: a
/// certificate that is not issued comes back with its requeue hints in
/// [`Outcome::pending`]. `None` (a request only planned): nothing to validate.
pub async fn validate(
    run: &mut SpecRun<'_>,
    d: &Desired,
    cert: Option<Observed>,
) -> Result<Outcome, ResourceError> {
    let Some(o) = cert else {
        return Ok(Outcome::default());
    };
    let mut pending = Pending::settled();
    if o.validation.is_empty() && o.status != "ISSUED" {
        pending = Pending::wait(
            format!(
                "{}: ACM has not published its validation records yet",
                d.label()
            ),
            PENDING_REQUEUE,
        );
    } else {
        let z = zone::resolve(run, &d.hosted_zone).await?;
        let names = o.validation.iter().map(|r| r.name.clone()).collect();
        let existing = zone::records_at(run, &z, &names).await?;
        let changes = plan_validation(&o.validation, &z, &existing, run.adopt)?;
        let mut apply = false;
        for c in &changes {
            apply |= run.plan(Change::create(
                format!("dns record {} CNAME", c.record.name),
                format!("validation of {}", d.label()),
            ));
        }
        if apply {
            let insync =
                zone::submit(run, &z, &changes, "ecs-operator: certificate validation").await?;
            if !insync {
                pending = Pending::wait(
                    "certificate validation records are not INSYNC yet",
                    PENDING_REQUEUE,
                );
            }
        }
    }
    let issued = o.status == "ISSUED";
    if !issued {
        pending = pending.and(Pending::wait(
            format!(
                "{} is {}",
                d.label(),
                o.status.to_lowercase().replace('_', " ")
            ),
            PENDING_REQUEUE,
        ));
    }
    Ok(Outcome {
        arn: o.arn,
        issued,
        pending,
    })
}

/// The tags of a certificate (an unknown certificate is an error). In a resync wave, once per
/// certificate for the whole wave.
pub async fn tags(
    run: &SpecRun<'_>,
    arn: &str,
) -> Result<std::collections::BTreeMap<String, String>, ResourceError> {
    match run
        .cached(Entry::CertificateTags(arn.to_string()), |_| {
            list_tags(run, arn)
        })
        .await
    {
        Some(t) => Ok(t?.as_ref().clone()),
        None => list_tags(run, arn).await,
    }
}

async fn list_tags(
    run: &SpecRun<'_>,
    arn: &str,
) -> Result<std::collections::BTreeMap<String, String>, ResourceError> {
    let out = run
        .aws
        .read(
            Service::Acm,
            "ListTagsForCertificate",
            arn,
            run.aws
                .acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send(),
        )
        .await?;
    Ok(crate::resources::shared::tags::map_of(
        out.tags().iter().map(|t| (t.key(), t.value())),
    ))
}

/// The tags of a certificate; `None` when ACM does not know it.
pub async fn tags_of(
    run: &SpecRun<'_>,
    arn: &str,
) -> Result<Option<std::collections::BTreeMap<String, String>>, ResourceError> {
    tags(run, arn).await.absent_if("ResourceNotFoundException")
}

/// Whether a user ACM lists in `InUseBy` still exists. ACM clears the list some time after a
/// load balancer or listener is gone (moto never does), so an ELBv2 user AWS no longer knows is
/// stale; any other user (CloudFront, API Gateway...) counts as a use. DeleteCertificate itself
/// still refuses a certificate in use, so a wrong "stale" only costs a retry.
async fn still_exists(run: &SpecRun<'_>, user: &str) -> Result<bool, ResourceError> {
    let elb = &run.aws.elbv2;
    let r = if user.contains(":elasticloadbalancing:") && user.contains(":listener/") {
        run.aws
            .read(
                Service::Elbv2,
                "DescribeListeners",
                user,
                elb.describe_listeners().listener_arns(user).send(),
            )
            .await
            .map(|o| !o.listeners().is_empty())
    } else if user.contains(":elasticloadbalancing:") && user.contains(":loadbalancer/") {
        run.aws
            .read(
                Service::Elbv2,
                "DescribeLoadBalancers",
                user,
                elb.describe_load_balancers()
                    .load_balancer_arns(user)
                    .send(),
            )
            .await
            .map(|o| !o.load_balancers().is_empty())
    } else {
        return Ok(true);
    };
    match r {
        Ok(b) => Ok(b),
        Err(e) if e.code().is_some_and(|c| c.ends_with("NotFound")) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Teardown of a certificate (`acm:certificate`, its ARN), after the listener (ClusterSpec) or
/// the SNI attachment (ServiceSpec) that used it: deleted once nothing uses it (ACM's `InUseBy`
/// is empty and DeleteCertificate does not answer `ResourceInUseException`), else the deletion
/// waits. With `retain` its ownership tags are replaced by the released tag. A certificate
/// without our tags is left alone.
///
/// Its DNS validation CNAMEs stay in the hosted zone: they carry no ownership marker, ACM gives
/// every certificate of a domain in an account the same one (another certificate may rely on
/// it), and a left-over validation record is harmless.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some(tags) = tags_of(run, arn).await? else {
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    let resource = format!("certificate {arn}");
    if retain {
        if let Some(released) = release::planned(run, &resource, release::RELEASED) {
            let released = request_tags(&released, |k, v| Tag::builder().key(k).value(v).build())?;
            run.aws
                .write(
                    Service::Acm,
                    "AddTagsToCertificate",
                    arn,
                    run.aws
                        .acm
                        .add_tags_to_certificate()
                        .certificate_arn(arn)
                        .set_tags(Some(released))
                        .send(),
                )
                .await?;
            let mut req = run
                .aws
                .acm
                .remove_tags_from_certificate()
                .certificate_arn(arn);
            for k in release::OWNERSHIP_KEYS {
                req = req.tags(
                    Tag::builder()
                        .key(k)
                        .set_value(tags.get(k).cloned())
                        .build()
                        .map_err(ResourceError::request)?,
                );
            }
            run.aws
                .write(Service::Acm, "RemoveTagsFromCertificate", arn, req.send())
                .await?;
        }
        return Ok(Gone::Yes);
    }
    let described = describe_certificate(run, arn).await;
    let Some(described) = described.absent_if("ResourceNotFoundException")? else {
        return Ok(Gone::Yes);
    };
    let in_use: Vec<String> = described
        .certificate()
        .map(|c| c.in_use_by().to_vec())
        .unwrap_or_default();
    let mut still = Vec::new();
    for user in in_use {
        if still_exists(run, &user).await? {
            still.push(user);
        }
    }
    let in_use = still;
    if !in_use.is_empty() {
        return Ok(Gone::not_yet(
            format!("{resource} is still in use by {}", in_use.join(", ")),
            Duration::from_secs(30),
        ));
    }
    if run.plan(Change::delete(&resource, "")) {
        match run
            .aws
            .write(
                Service::Acm,
                "DeleteCertificate",
                arn,
                run.aws.acm.delete_certificate().certificate_arn(arn).send(),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceNotFoundException") => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {
                return Ok(Gone::not_yet(
                    format!("{resource} is still in use ({e})"),
                    Duration::from_secs(30),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// An ACM certificate, as the generic driver sees it.
    CertificateKind, TYPE, 10, delete, "ACM certificates", gc::list_owned
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_driver_requests_a_certificate_only_when_none_of_ours_has_the_domains() {
        let d = Desired::new(&["App.example.com".into()], "example.com");
        type K = CertificateKind;
        let plan = <K as Managed>::plan(&d, None, BTreeMap::new());
        let steps: Vec<&Step> = plan.steps.iter().map(|s| &s.0).collect();
        assert_eq!(steps, vec![&Step::Request]);
        assert_eq!(
            plan.steps[0].1.to_string(),
            "+ certificate app.example.com (DNS validation in example.com)"
        );
        assert_eq!(K::id(&d, &K::output(&d, None)), None);
        let ours = Observed {
            arn: "arn:aws:acm:r:1:certificate/c".into(),
            status: "PENDING_VALIDATION".into(),
            domains: BTreeSet::from(["app.example.com".to_string()]),
            validation: Vec::new(),
        };
        assert!(<K as Managed>::plan(&d, Some(&ours), BTreeMap::new())
            .steps
            .is_empty());
        let out = K::output(&d, Some(&ours));
        assert_eq!(
            K::id(&d, &out).as_deref(),
            Some("arn:aws:acm:r:1:certificate/c")
        );
    }

    fn cname(name: &str, value: &str) -> Record {
        Record {
            name: name.into(),
            rtype: "CNAME".into(),
            ttl: Some(300),
            values: vec![value.into()],
            alias: None,
            set_identifier: None,
        }
    }

    fn zone() -> Zone {
        Zone {
            id: "Z1".into(),
            name: "example.com".into(),
        }
    }

    #[test]
    fn wildcards_cover_one_level_only() {
        let d = vec!["example.com".to_string(), "*.example.com".to_string()];
        assert!(covers(&d, "example.com"));
        assert!(covers(&d, "WWW.example.com."));
        assert!(!covers(&d, "a.b.example.com"));
        assert!(!covers(&d, "example.org"));
    }

    #[test]
    fn the_token_is_stable_and_fits_acm() {
        let t = idempotency_token("ops", "ClusterSpec/prod", &["example.com".into()]);
        assert_eq!(t.len(), 32);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            t,
            idempotency_token("ops", "ClusterSpec/prod", &["example.com".into()])
        );
        assert_ne!(
            t,
            idempotency_token("ops", "ClusterSpec/prod", &["www.example.com".into()])
        );
    }

    #[test]
    fn validation_records_are_created_once_and_never_overwritten() {
        let want = vec![cname("_a.example.com", "_b.acm-validations.aws.")];
        let changes = plan_validation(&want, &zone(), &[], false).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].action, Action::Create);
        // Present with the value spelled differently (no trailing dot): nothing to do.
        let present = vec![cname("_a.example.com", "_B.acm-validations.aws")];
        assert!(plan_validation(&want, &zone(), &present, false)
            .unwrap()
            .is_empty());
        let other = vec![cname("_a.example.com", "_c.acm-validations.aws.")];
        assert!(plan_validation(&want, &zone(), &other, false).is_err());
        assert_eq!(
            plan_validation(&want, &zone(), &other, true).unwrap()[0].action,
            Action::Upsert
        );
    }

    #[test]
    fn records_outside_the_zone_are_refused() {
        let want = vec![cname("_a.example.org", "_b.acm-validations.aws.")];
        assert!(plan_validation(&want, &zone(), &[], false).is_err());
    }
}

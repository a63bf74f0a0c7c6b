//! Route53 hosted zones as the edge modules see them: finding a zone by name or id, reading
//! all of its records in one paginated listing, and sending a batch of changes.
//!
//! Invariants: every name and DNS target is compared normalised ([`norm_name`]: lower case, no
//! trailing dot, `\052` read as `*`); zone ids never carry the `/hostedzone/` prefix.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_route53::types::{
    AliasTarget, Change as R53Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
    RrType,
};

use crate::aws::Service;
use crate::resources::run::SpecRun;
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;

/// A hosted zone: its id (without `/hostedzone/`) and normalised name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: String,
    pub name: String,
}

/// An alias target, as AWS reports it (compare with [`norm_name`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub zone_id: String,
    pub dns_name: String,
    pub evaluate_target_health: bool,
}

/// One record set. `name` is normalised; `values` are as AWS has them (TXT values keep their
/// quotes), so a DELETE can name the record exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub rtype: String,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    pub alias: Option<Alias>,
    /// Weighted, latency... records carry one; the edge modules leave those alone.
    pub set_identifier: Option<String>,
}

impl Record {
    /// Whether `self` and `other` say the same thing (names, values and targets normalised;
    /// value order ignored).
    pub fn same_as(&self, other: &Record) -> bool {
        let values = |r: &Record| {
            let mut v: Vec<String> = r.values.iter().map(|s| norm_name(s)).collect();
            v.sort();
            v
        };
        let alias = |r: &Record| {
            r.alias.as_ref().map(|a| {
                (
                    strip_zone_prefix(&a.zone_id).to_string(),
                    norm_name(&a.dns_name),
                    a.evaluate_target_health,
                )
            })
        };
        norm_name(&self.name) == norm_name(&other.name)
            && self.rtype == other.rtype
            && (self.alias.is_some() || self.ttl == other.ttl)
            && values(self) == values(other)
            && alias(self) == alias(other)
    }
}

/// What to do with a record in a change batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Upsert,
    Delete,
}

/// One entry of a change batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordChange {
    pub action: Action,
    pub record: Record,
}

/// A DNS name as compared: lower case, no trailing dot, `\052` (Route53's escape) read as `*`.
pub fn norm_name(s: &str) -> String {
    s.trim()
        .trim_end_matches('.')
        .replace("\\052", "*")
        .to_ascii_lowercase()
}

/// A zone id without the `/hostedzone/` prefix.
pub fn strip_zone_prefix(id: &str) -> &str {
    id.strip_prefix("/hostedzone/").unwrap_or(id)
}

/// Whether a spec value names a zone by id (`Z...` or `/hostedzone/Z...`) rather than by name.
pub fn is_zone_id(s: &str) -> bool {
    s.starts_with("/hostedzone/")
        || (!s.contains('.')
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

/// Whether `host` lies in `zone` (the zone apex or below it).
pub fn in_zone(host: &str, zone: &Zone) -> bool {
    let h = norm_name(host);
    h == zone.name || h.ends_with(&format!(".{}", zone.name))
}

/// Find the hosted zone a spec names (by name or id). With several zones of one name, the
/// public one wins. In a resync wave, once per zone for the whole wave; outside a wave, from
/// the process's `ZoneIds` (`resources::context`) when the zone was found before.
pub async fn resolve(run: &SpecRun<'_>, name_or_id: &str) -> Result<Zone, ResourceError> {
    let entry = Entry::Zone(name_or_id.to_string());
    let zone = match run.cached(entry, |_| lookup(run, name_or_id)).await {
        Some(z) => z?.as_ref().clone(),
        None => match run.aws.zone_ids.get(name_or_id) {
            Some((id, name)) => return Ok(Zone { id, name }),
            None => lookup(run, name_or_id).await?,
        },
    };
    run.aws.zone_ids.put(name_or_id, &zone.id, &zone.name);
    Ok(zone)
}

async fn lookup(run: &SpecRun<'_>, name_or_id: &str) -> Result<Zone, ResourceError> {
    if is_zone_id(name_or_id) {
        let id = strip_zone_prefix(name_or_id).to_string();
        let out = run
            .aws
            .read(
                Service::Route53,
                "GetHostedZone",
                &id,
                run.aws.route53.get_hosted_zone().id(&id).send(),
            )
            .await
            .map_err(|e| match e.code() {
                Some("NoSuchHostedZone") => {
                    ResourceError::Unsatisfiable(format!("hosted zone {id} does not exist"))
                }
                _ => e,
            })?;
        let z = out
            .hosted_zone()
            .ok_or_else(|| ResourceError::Unsatisfiable(format!("hosted zone {id} not found")))?;
        return Ok(Zone {
            id,
            name: norm_name(z.name()),
        });
    }
    let want = norm_name(name_or_id);
    let out = run
        .aws
        .read(
            Service::Route53,
            "ListHostedZonesByName",
            &want,
            run.aws
                .route53
                .list_hosted_zones_by_name()
                .dns_name(&want)
                .send(),
        )
        .await?;
    let mut zones: Vec<(bool, Zone)> = out
        .hosted_zones()
        .iter()
        .filter(|z| norm_name(z.name()) == want)
        .map(|z| {
            (
                z.config().is_some_and(|c| c.private_zone()),
                Zone {
                    id: strip_zone_prefix(z.id()).to_string(),
                    name: want.clone(),
                },
            )
        })
        .collect();
    zones.sort_by_key(|(private, z)| (*private, z.id.clone()));
    zones.into_iter().next().map(|(_, z)| z).ok_or_else(|| {
        ResourceError::Unsatisfiable(format!("no Route53 hosted zone is named {want}"))
    })
}

/// Every record of the zone (ListResourceRecordSets, paginated). In a resync wave, once per
/// zone for the whole wave (a write to the zone makes the next reader list it again).
pub async fn records(run: &SpecRun<'_>, zone: &Zone) -> Result<Arc<Vec<Record>>, ResourceError> {
    let entry = Entry::Records(zone.id.clone());
    match run.cached(entry, |_| list(run, zone)).await {
        Some(r) => r,
        None => Ok(Arc::new(list(run, zone).await?)),
    }
}

/// The records at exactly `names` (and possibly more): in a resync wave the wave's listing of
/// the whole zone ([`records`]); otherwise one ListResourceRecordSets per name starting at
/// it (`StartRecordName`), paging on only while the next record still has that name. A
/// reconcile outside a wave (a change, a requeue) so reads what it plans over, instead of
/// the whole zone: the cost stays per spec, not per spec times the zone's size.
///
/// Names outside the zone are skipped here (AWS would refuse a `StartRecordName` outside it),
/// so callers pass every name they plan over.
///
/// Invariant: every record whose name is in `names` and in the zone is in the result; callers
/// plan only over those names.
pub async fn records_at(
    run: &SpecRun<'_>,
    zone: &Zone,
    names: &BTreeSet<String>,
) -> Result<Arc<Vec<Record>>, ResourceError> {
    let entry = Entry::Records(zone.id.clone());
    if let Some(all) = run.cached(entry, |_| list(run, zone)).await {
        return all;
    }
    let mut out = Vec::new();
    for name in names.iter().filter(|n| in_zone(n, zone)) {
        out.extend(list_at(run, zone, name).await?);
    }
    Ok(Arc::new(out))
}

/// A zone that no longer exists: forgotten by `ZoneIds` and reported as `Unsatisfiable`
/// (what `resolve` says of a zone it cannot find); any other error unchanged.
fn gone(run: &SpecRun<'_>, zone: &Zone, e: ResourceError) -> ResourceError {
    if e.code() != Some("NoSuchHostedZone") {
        return e;
    }
    run.aws.zone_ids.forget(&zone.id);
    ResourceError::Unsatisfiable(format!(
        "hosted zone {} ({}) does not exist",
        zone.name, zone.id
    ))
}

/// How many records one by-name page asks for: a name rarely holds more types than this
/// (A, AAAA, TXT, CNAME, CAA...); more pages follow when it does.
const AT_NAME_PAGE: i32 = 10;

/// The records named exactly `name` (normalised), read from `StartRecordName = name`.
async fn list_at(run: &SpecRun<'_>, zone: &Zone, name: &str) -> Result<Vec<Record>, ResourceError> {
    read(run, zone, Some(name)).await
}

/// Every record of the zone.
async fn list(run: &SpecRun<'_>, zone: &Zone) -> Result<Vec<Record>, ResourceError> {
    read(run, zone, None).await
}

/// ListResourceRecordSets, every page: of the whole zone (`at = None`, pages of AWS's default
/// 300), or of the records named exactly `at` (from `StartRecordName = at`, pages of
/// [`AT_NAME_PAGE`], paging on only while the next record still has that name).
async fn read(
    run: &SpecRun<'_>,
    zone: &Zone,
    at: Option<&str>,
) -> Result<Vec<Record>, ResourceError> {
    let mut out = Vec::new();
    let mut start: Option<(String, Option<RrType>, Option<String>)> =
        at.map(|n| (format!("{n}."), None, None));
    loop {
        let mut req = run
            .aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(&zone.id);
        if let Some((name, t, ident)) = start.take() {
            req = req
                .start_record_name(name)
                .set_start_record_type(t)
                .set_start_record_identifier(ident);
        }
        if at.is_some() {
            req = req.max_items(AT_NAME_PAGE);
        }
        let page = run
            .aws
            .read(
                Service::Route53,
                "ListResourceRecordSets",
                at.unwrap_or(&zone.name),
                req.send(),
            )
            .await
            .map_err(|e| gone(run, zone, e))?;
        out.extend(
            page.resource_record_sets()
                .iter()
                .map(from_sdk)
                .filter(|r| at.is_none_or(|n| r.name == n)),
        );
        match (
            page.is_truncated(),
            page.next_record_name(),
            page.next_record_type(),
        ) {
            (true, Some(n), Some(t)) if at.is_none_or(|a| norm_name(n) == a) => {
                start = Some((
                    n.to_string(),
                    Some(t.clone()),
                    page.next_record_identifier().map(str::to_string),
                ))
            }
            _ => break,
        }
    }
    Ok(out)
}

fn from_sdk(r: &ResourceRecordSet) -> Record {
    Record {
        name: norm_name(r.name()),
        rtype: r.r#type().as_str().to_string(),
        ttl: r.ttl(),
        values: r
            .resource_records()
            .iter()
            .map(|v| v.value().to_string())
            .collect(),
        alias: r.alias_target().map(|a| Alias {
            zone_id: strip_zone_prefix(a.hosted_zone_id()).to_string(),
            dns_name: a.dns_name().to_string(),
            evaluate_target_health: a.evaluate_target_health(),
        }),
        set_identifier: r.set_identifier().map(str::to_string),
    }
}

fn to_sdk(r: &Record) -> Result<ResourceRecordSet, ResourceError> {
    let mut b = ResourceRecordSet::builder()
        .name(format!("{}.", r.name))
        .r#type(RrType::from(r.rtype.as_str()))
        .set_set_identifier(r.set_identifier.clone());
    if let Some(a) = &r.alias {
        b = b.alias_target(
            AliasTarget::builder()
                .hosted_zone_id(&a.zone_id)
                .dns_name(&a.dns_name)
                .evaluate_target_health(a.evaluate_target_health)
                .build()
                .map_err(ResourceError::request)?,
        );
    } else {
        b = b.set_ttl(r.ttl);
        for v in &r.values {
            b = b.resource_records(
                ResourceRecord::builder()
                    .value(v)
                    .build()
                    .map_err(ResourceError::request)?,
            );
        }
    }
    b.build().map_err(ResourceError::request)
}

/// Send `changes` to the zone in one ChangeResourceRecordSets call. Returns whether Route53
/// reports them INSYNC already (else the caller requeues to look again; it never waits).
pub async fn submit(
    run: &SpecRun<'_>,
    zone: &Zone,
    changes: &[RecordChange],
    comment: &str,
) -> Result<bool, ResourceError> {
    if changes.is_empty() {
        return Ok(true);
    }
    let mut batch = ChangeBatch::builder().comment(comment);
    for c in changes {
        batch = batch.changes(
            R53Change::builder()
                .action(match c.action {
                    Action::Create => ChangeAction::Create,
                    Action::Upsert => ChangeAction::Upsert,
                    Action::Delete => ChangeAction::Delete,
                })
                .resource_record_set(to_sdk(&c.record)?)
                .build()
                .map_err(ResourceError::request)?,
        );
    }
    let out = run
        .aws
        .write(
            Service::Route53,
            "ChangeResourceRecordSets",
            &zone.name,
            run.aws
                .route53
                .change_resource_record_sets()
                .hosted_zone_id(&zone.id)
                .change_batch(batch.build().map_err(ResourceError::request)?)
                .send(),
        )
        .await
        .map_err(|e| gone(run, zone, e))?;
    Ok(out
        .change_info()
        .is_some_and(|i| i.status().as_str() == "INSYNC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_without_case_trailing_dots_or_escapes() {
        assert_eq!(norm_name("WWW.Example.com."), "www.example.com");
        assert_eq!(norm_name("\\052.example.com."), "*.example.com");
        assert_eq!(strip_zone_prefix("/hostedzone/Z123"), "Z123");
        assert!(is_zone_id("Z0123ABC") && is_zone_id("/hostedzone/Z1"));
        assert!(!is_zone_id("example.com"));
    }

    #[test]
    fn records_that_differ_only_in_spelling_are_the_same() {
        let a = Record {
            name: "www.example.com".into(),
            rtype: "A".into(),
            ttl: None,
            values: vec![],
            alias: Some(Alias {
                zone_id: "Z2P70J7EXAMPLE".into(),
                dns_name: "prod-1.eu-west-1.elb.amazonaws.com".into(),
                evaluate_target_health: true,
            }),
            set_identifier: None,
        };
        let mut b = a.clone();
        b.name = "WWW.example.com.".into();
        b.alias.as_mut().unwrap().dns_name = "Prod-1.eu-west-1.elb.amazonaws.com.".into();
        b.alias.as_mut().unwrap().zone_id = "/hostedzone/Z2P70J7EXAMPLE".into();
        assert!(a.same_as(&b));
        b.alias.as_mut().unwrap().evaluate_target_health = false;
        assert!(!a.same_as(&b));
    }

    #[test]
    fn hosts_belong_to_the_zone_they_end_in() {
        let z = Zone {
            id: "Z".into(),
            name: "example.com".into(),
        };
        assert!(in_zone("example.com", &z) && in_zone("www.example.com.", &z));
        assert!(!in_zone("badexample.com", &z));
    }
}

//! Route53 alias A records for a ServiceSpec's hosts, pointing at its load balancer, each with
//! an ownership TXT record beside it (the external-dns way):
//! `"heritage=ecs-operator,ecs-operator/owner=ServiceSpec/web,instance=<instance>"`.
//!
//! Invariants: a record is changed only when the TXT value at its name says this spec owns it
//! (or the spec adopts); other values of a TXT record set (SPF, site verification) are kept;
//! records this spec owns for hosts it no longer lists are deleted; every change to one zone is
//! one ChangeResourceRecordSets call; a change not yet INSYNC requeues, never waits.

mod gc;

use std::time::Duration;

use super::load_balancer::Info;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Pending, Plan};
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::zone::{self, Action, Alias, Record, RecordChange, Zone};
use crate::resources::ResourceError;
use crate::spec::SpecKey;
use crate::store::status::ResourceRef;

type Tags = std::collections::BTreeMap<String, String>;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "route53:record";

/// TTL of the ownership TXT records.
pub const TXT_TTL: i64 = 300;
/// How soon to look again after a change that is not INSYNC yet.
pub const PENDING_REQUEUE: Duration = Duration::from_secs(10);

/// The ownership TXT value (with its quotes, as Route53 stores it).
pub fn owner_value(instance: &str, key: &SpecKey) -> String {
    format!("\"heritage=ecs-operator,ecs-operator/owner={key},instance={instance}\"")
}

/// Who a TXT value says owns its name: `(owner, instance)`, or `None` when it is not ours.
pub fn parse_owner(value: &str) -> Option<(String, String)> {
    let v = value.trim().trim_matches('"');
    let rest = v.strip_prefix("heritage=ecs-operator,")?;
    let mut owner = None;
    let mut instance = None;
    for part in rest.split(',') {
        match part.split_once('=') {
            Some(("ecs-operator/owner", o)) => owner = Some(o.to_string()),
            Some(("instance", i)) => instance = Some(i.to_string()),
            _ => {}
        }
    }
    Some((owner?, instance?))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Normalised host names.
    pub hosts: Vec<String>,
    pub target: Alias,
    /// [`owner_value`] of this spec.
    pub owner: String,
    pub instance: String,
    pub key: String,
}

pub fn desired(hosts: &[String], lb: &Info, instance: &str, key: &SpecKey) -> Desired {
    Desired {
        hosts: hosts.iter().map(|h| zone::norm_name(h)).collect(),
        target: Alias {
            zone_id: lb.canonical_zone_id.clone(),
            dns_name: lb.dns_name.clone(),
            evaluate_target_health: true,
        },
        owner: owner_value(instance, key),
        instance: instance.to_string(),
        key: key.to_string(),
    }
}

fn alias_record(name: &str, target: &Alias) -> Record {
    Record {
        name: name.to_string(),
        rtype: "A".into(),
        ttl: None,
        values: Vec::new(),
        alias: Some(target.clone()),
        set_identifier: None,
    }
}

fn txt_record(name: &str, values: Vec<String>) -> Record {
    Record {
        name: name.to_string(),
        rtype: "TXT".into(),
        ttl: Some(TXT_TTL),
        values,
        alias: None,
        set_identifier: None,
    }
}

fn find<'a>(records: &'a [Record], name: &str, rtype: &str) -> Option<&'a Record> {
    records
        .iter()
        .find(|r| r.name == name && r.rtype == rtype && r.set_identifier.is_none())
}

fn target_text(r: &Record) -> String {
    match &r.alias {
        Some(a) => format!("alias {}", zone::norm_name(&a.dns_name)),
        None => r.values.join(" "),
    }
}

/// The changes that make the zone hold this spec's records (pure). `Err` when a host is outside
/// the zone or its record belongs to someone else ([`refusal`]); else [`changes`].
pub fn plan(
    d: &Desired,
    z: &Zone,
    existing: &[Record],
    adopt: bool,
) -> Result<Vec<(RecordChange, Change)>, ResourceError> {
    match refusal(d, z, existing, adopt) {
        Some(e) => Err(e),
        None => Ok(changes(d, existing)),
    }
}

/// Why this spec may not have its records in `z` as `existing` stands (pure): a host outside
/// the zone, a record whose ownership TXT names another spec of this instance, or a record
/// without one (unless the spec adopts).
pub fn refusal(d: &Desired, z: &Zone, existing: &[Record], adopt: bool) -> Option<ResourceError> {
    for host in &d.hosts {
        if !zone::in_zone(host, z) {
            return Some(ResourceError::Unsatisfiable(format!(
                "host {host} is not in the hosted zone {}",
                z.name
            )));
        }
        let resource = format!("dns record {host} A");
        let txt_values = find(existing, host, "TXT").map_or(&[][..], |t| &t.values[..]);
        if txt_values.iter().any(|v| v == &d.owner) {
            continue;
        }
        let other = txt_values
            .iter()
            .filter_map(|v| parse_owner(v))
            .find(|(o, i)| i == &d.instance && o != &d.key);
        if let Some((o, _)) = other {
            return Some(ResourceError::Unsatisfiable(format!(
                "{resource} is owned by {o} (TXT record)"
            )));
        }
        let taken = find(existing, host, "A").is_some() || find(existing, host, "CNAME").is_some();
        if taken && !adopt {
            return Some(ResourceError::NotOwned {
                resource: format!("{resource} (no ownership TXT record beside it)"),
                managed_by: crate::MANAGED_BY_TAG,
                owner: crate::OWNER_TAG,
            });
        }
    }
    None
}

/// The changes of [`plan`] once [`refusal`] found nothing in the way (pure): the ownership
/// TXT value and the alias of every host, and the records of hosts no longer listed removed.
pub fn changes(d: &Desired, existing: &[Record]) -> Vec<(RecordChange, Change)> {
    let mut out = Vec::new();
    for host in &d.hosts {
        let resource = format!("dns record {host} A");
        let want = alias_record(host, &d.target);
        let a = find(existing, host, "A");
        let txt = find(existing, host, "TXT");
        let txt_values = txt.map(|t| t.values.clone()).unwrap_or_default();
        let ours = txt_values.iter().any(|v| v == &d.owner);
        if !ours {
            let mut values = txt_values.clone();
            values.push(d.owner.clone());
            out.push((
                RecordChange {
                    action: if txt.is_some() {
                        Action::Upsert
                    } else {
                        Action::Create
                    },
                    record: txt_record(host, values),
                },
                Change::create(format!("dns record {host} TXT"), "ownership"),
            ));
        }
        match a {
            None => out.push((
                RecordChange {
                    action: Action::Create,
                    record: want.clone(),
                },
                Change::create(&resource, target_text(&want)),
            )),
            Some(a) if !a.same_as(&want) => out.push((
                RecordChange {
                    action: Action::Upsert,
                    record: want.clone(),
                },
                Change::field(&resource, "target", target_text(a), target_text(&want)),
            )),
            Some(_) => {}
        }
    }
    // Records this spec owns for hosts it no longer lists.
    for txt in existing
        .iter()
        .filter(|r| r.rtype == "TXT" && r.set_identifier.is_none() && r.values.contains(&d.owner))
    {
        if d.hosts.contains(&txt.name) {
            continue;
        }
        if let Some(a) = find(existing, &txt.name, "A") {
            out.push(delete_alias(a, "host no longer listed"));
        }
        out.push(without_owner(txt, &d.owner));
    }
    out
}

/// The change that deletes the alias record `a` (pure); `why` is the plan's detail.
fn delete_alias(a: &Record, why: impl Into<String>) -> (RecordChange, Change) {
    let what = Change::delete(format!("dns record {} A", a.name), why);
    let change = RecordChange {
        action: Action::Delete,
        record: a.clone(),
    };
    (change, what)
}

/// The change that takes the ownership value `owner` out of the TXT record `txt` (pure): the
/// record deleted when that was its only value, else upserted with the others (SPF, site
/// verification) kept.
fn without_owner(txt: &Record, owner: &str) -> (RecordChange, Change) {
    let rest: Vec<String> = txt.values.iter().filter(|v| *v != owner).cloned().collect();
    let change = if rest.is_empty() {
        RecordChange {
            action: Action::Delete,
            record: txt.clone(),
        }
    } else {
        let record = Record {
            values: rest,
            ..txt.clone()
        };
        RecordChange {
            action: Action::Upsert,
            record,
        }
    };
    let what = Change::delete(format!("dns record {} TXT", txt.name), "ownership");
    (change, what)
}

/// The names whose records [`plan`] needs: the hosts the spec lists now and the hosts in
/// `zone_id` its ledger says it owned (so a host it no longer lists is found and deleted).
/// `None` when the ledger is unknown: then only the whole zone says what the spec owns.
pub fn names_to_read(
    hosts: &[String],
    ledger: Option<&[ResourceRef]>,
    zone_id: &str,
) -> Option<std::collections::BTreeSet<String>> {
    let ledger = ledger?;
    let mut names: std::collections::BTreeSet<String> = hosts.iter().cloned().collect();
    for r in ledger.iter().filter(|r| r.resource_type == TYPE) {
        let mut parts = r.id.splitn(3, '/');
        if let (Some(z), Some(host)) = (parts.next(), parts.next()) {
            if z == zone_id {
                names.insert(zone::norm_name(host));
            }
        }
    }
    Some(names)
}

/// A spec's alias records in one hosted zone, as the generic driver takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The hosted zone (name or id).
    pub zone: String,
    pub records: Desired,
    /// The spec carries the adopt annotation: a record without an ownership TXT record beside
    /// it is taken over.
    pub adopt: bool,
}

/// What the zone holds: the zone, and its records at the names the plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub zone: Zone,
    pub existing: std::sync::Arc<Vec<Record>>,
}

/// The one step: every record change of the plan in one ChangeResourceRecordSets, deletes
/// first (so a batch that moves a record never collides with itself). Every change of the
/// plan names this same step, so the driver submits the batch once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Submit(Vec<RecordChange>),
}

/// What the reconcile hands on: the zone (`None` while the load balancer is only planned)
/// and whether Route53 has made the changes INSYNC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub zone: Option<Zone>,
    pub insync: bool,
}

impl Written {
    /// A wait while Route53 has not made the changes INSYNC: requeue, never wait.
    pub fn pending(&self) -> Pending {
        match &self.zone {
            Some(z) if !self.insync => Pending::wait(
                format!("Route53 changes in {} are not INSYNC yet", z.name),
                PENDING_REQUEUE,
            ),
            _ => Pending::settled(),
        }
    }
}

/// The generic driver's view of a spec's records: observed in one read of the zone (the names
/// the plan needs, or the whole zone when the ledger is unknown), owned through the ownership
/// TXT record at each name (the claim refuses a record of another owner), planned as one
/// batch, ledgered one entry per host.
impl Managed for RecordKind {
    crate::resources::kind::managed_types!(Target, Found, Step, Written);

    fn label(t: &Target) -> String {
        format!("dns records {} in {}", t.records.hosts.join(","), t.zone)
    }

    async fn observe(run: &SpecRun<'_>, t: &Target) -> Result<Option<Found>, ResourceError> {
        if t.records.target.dns_name.is_empty() {
            // Only planning, and the load balancer does not exist yet.
            return Ok(None);
        }
        let zone = zone::resolve(run, &t.zone).await?;
        let existing = match names_to_read(&t.records.hosts, run.ledger.as_deref(), &zone.id) {
            Some(names) => zone::records_at(run, &zone, &names).await?,
            None => zone::records(run, &zone).await?,
        };
        Ok(Some(Found { zone, existing }))
    }

    fn tags(_: &Found) -> &std::collections::BTreeMap<String, String> {
        &crate::resources::kind::NO_TAGS
    }

    fn claim(_: &SpecRun<'_>, t: &Target, o: &Found) -> Result<Tags, ResourceError> {
        match refusal(&t.records, &o.zone, &o.existing, t.adopt) {
            Some(e) => Err(e),
            None => Ok(Tags::new()),
        }
    }

    fn plan(t: &Target, o: Option<&Found>, _: Tags) -> Plan<Step> {
        let Some(o) = o else {
            let planned = t.records.hosts.iter().map(|h| {
                let change =
                    Change::create(format!("dns record {h} A"), "alias to the load balancer");
                (Step::Submit(Vec::new()), change)
            });
            return Plan::steps(planned.collect());
        };
        let planned = changes(&t.records, &o.existing);
        let mut batch: Vec<RecordChange> = planned.iter().map(|(rc, _)| rc.clone()).collect();
        batch.sort_by_key(|c| c.action != Action::Delete);
        let steps = planned
            .into_iter()
            .map(|(_, c)| (Step::Submit(batch.clone()), c));
        Plan::steps(steps.collect())
    }

    fn output(_: &Target, o: Option<&Found>) -> Written {
        Written {
            zone: o.map(|o| o.zone.clone()),
            insync: true,
        }
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, Step::Submit(batch): Step) -> Applied {
        let At { o, out, .. } = at;
        let Some(o) = o else {
            return Ok(());
        };
        let comment = format!("ecs-operator: {}", run.key);
        out.insync = zone::submit(run, &o.zone, &batch, &comment).await?;
        Ok(())
    }

    /// None: the records are ledgered one entry per host, by [`Managed::ids`].
    fn id(_: &Target, _: &Written) -> Option<String> {
        None
    }

    /// `<zone id>/<host>/A` for every host (none while the load balancer is only planned).
    fn ids(t: &Target, out: &Written) -> Vec<String> {
        let Some(z) = &out.zone else {
            return Vec::new();
        };
        t.records
            .hosts
            .iter()
            .map(|h| format!("{}/{h}/A", z.id))
            .collect()
    }
}

/// The TXT value that replaces [`owner_value`] when a `Retain` deletion releases a record: it
/// names no owner, so no spec treats the record as its own any more.
pub fn released_value(instance: &str, key: &SpecKey) -> String {
    format!("\"heritage=ecs-operator,ecs-operator/released-from={key},instance={instance}\"")
}

/// The changes that remove (or, with `retain`, release) every record of the zone whose TXT
/// names `owner` (pure): the A record at that name is deleted, and our value leaves the TXT
/// record (deleted when it was the only one, else the others are kept). Records without our
/// TXT value are never in the result.
pub fn plan_delete(
    existing: &[Record],
    owner: &str,
    released: &str,
    retain: bool,
) -> Vec<(RecordChange, Change)> {
    let mut out = Vec::new();
    for txt in existing.iter().filter(|r| {
        r.rtype == "TXT" && r.set_identifier.is_none() && r.values.iter().any(|v| v == owner)
    }) {
        if retain {
            let values = txt
                .values
                .iter()
                .map(|v| {
                    if v == owner {
                        released.to_string()
                    } else {
                        v.clone()
                    }
                })
                .collect();
            out.push((
                RecordChange {
                    action: Action::Upsert,
                    record: Record {
                        values,
                        ..txt.clone()
                    },
                },
                Change::update(
                    format!("dns record {} TXT", txt.name),
                    "released (deletionPolicy Retain)",
                ),
            ));
            continue;
        }
        if let Some(a) = find(existing, &txt.name, "A") {
            out.push(delete_alias(a, target_text(a)));
        }
        out.push(without_owner(txt, owner));
    }
    out
}

/// Teardown of a `route53:record` (`ZONE_ID/host/A`): every record of that zone whose TXT
/// names this spec goes in one ChangeResourceRecordSets call (the other records of the spec in
/// that zone are found gone when their turn comes). With `retain` the records stay and their
/// TXT value is rewritten to [`released_value`]. A zone that no longer exists has nothing left
/// to delete.
pub async fn delete(run: &mut SpecRun<'_>, id: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some(zone_id) = id.split('/').next().filter(|z| !z.is_empty()) else {
        return Ok(Gone::Yes);
    };
    let z = match zone::resolve(run, &format!("/hostedzone/{zone_id}")).await {
        Ok(z) => z,
        Err(ResourceError::Unsatisfiable(_)) => return Ok(Gone::Yes),
        Err(e) => return Err(e),
    };
    let existing = match zone::records(run, &z).await {
        Ok(r) => r,
        Err(ResourceError::Unsatisfiable(_)) => return Ok(Gone::Yes),
        Err(e) => return Err(e),
    };
    let owner = owner_value(&run.aws.instance, &run.key);
    let released = released_value(&run.aws.instance, &run.key);
    let mut apply = Vec::new();
    for (rc, change) in plan_delete(&existing, &owner, &released, retain) {
        if run.plan(change) {
            apply.push(rc);
        }
    }
    if !apply.is_empty() {
        // Deletes of A records before the TXT that owns them.
        apply.sort_by_key(|c| c.record.rtype == "TXT");
        zone::submit(
            run,
            &z,
            &apply,
            &format!("ecs-operator: deletion of {}", run.key),
        )
        .await?;
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// A Route53 record and its ownership TXT record, as the generic driver sees it.
    RecordKind, TYPE, 0, delete, "Route53 zones", gc::list_owned
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    fn key() -> SpecKey {
        SpecKey::new(Kind::ServiceSpec, "web")
    }

    fn ledger(ids: &[&str]) -> Vec<ResourceRef> {
        ids.iter()
            .map(|id| ResourceRef {
                resource_type: TYPE.into(),
                id: id.to_string(),
            })
            .collect()
    }

    #[test]
    fn names_to_read_are_the_listed_hosts_and_the_ledger_hosts_of_that_zone() {
        let mut l = ledger(&["Z1/old.example.com/A", "Z2/other.example.org/A"]);
        l.push(ResourceRef {
            resource_type: "elbv2:target-group".into(),
            id: "Z1/not-a-record/A".into(),
        });
        let names = names_to_read(&["www.example.com".into()], Some(&l), "Z1").unwrap();
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            vec!["old.example.com".to_string(), "www.example.com".to_string()]
        );
    }

    #[test]
    fn without_a_ledger_the_whole_zone_must_be_read() {
        assert_eq!(names_to_read(&["www.example.com".into()], None, "Z1"), None);
    }

    fn z() -> Zone {
        Zone {
            id: "Z1".into(),
            name: "example.com".into(),
        }
    }

    fn d() -> Desired {
        let lb = Info {
            name: "prod".into(),
            arn: "arn".into(),
            dns_name: "prod-1.eu-west-1.elb.amazonaws.com".into(),
            canonical_zone_id: "ZLB".into(),
            vpc_id: "vpc".into(),
        };
        desired(
            &["example.com".into(), "www.example.com".into()],
            &lb,
            "ops",
            &key(),
        )
    }

    fn converged() -> Vec<Record> {
        let d = d();
        let mut out = Vec::new();
        for h in &d.hosts {
            let mut a = alias_record(h, &d.target);
            // As Route53 reports it: trailing dot.
            a.alias.as_mut().unwrap().dns_name.push('.');
            out.push(a);
            out.push(txt_record(h, vec![d.owner.clone()]));
        }
        out
    }

    #[test]
    fn the_owner_value_reads_back() {
        let v = owner_value("ops", &key());
        assert_eq!(
            v,
            "\"heritage=ecs-operator,ecs-operator/owner=ServiceSpec/web,instance=ops\""
        );
        assert_eq!(
            parse_owner(&v),
            Some(("ServiceSpec/web".into(), "ops".into()))
        );
        assert_eq!(parse_owner("\"v=spf1 -all\""), None);
    }

    #[test]
    fn an_empty_zone_gets_an_alias_and_a_txt_per_host() {
        let changes = plan(&d(), &z(), &[], false).unwrap();
        assert_eq!(changes.len(), 4);
        assert!(changes.iter().all(|(c, _)| c.action == Action::Create));
    }

    #[test]
    fn the_driver_submits_every_change_of_a_spec_in_one_batch_deletes_first_and_ledgers_each_host()
    {
        // www.example.com is ours and listed no more than old.example.com: dropped first.
        let mut recs = converged();
        recs.retain(|r| r.name != "www.example.com");
        recs.push(alias_record("old.example.com", &d().target));
        recs.push(txt_record("old.example.com", vec![d().owner]));
        let found = Found {
            zone: z(),
            existing: std::sync::Arc::new(recs),
        };
        let t = Target {
            zone: "example.com".into(),
            records: d(),
            adopt: false,
        };
        type K = RecordKind;
        let plan = <K as Managed>::plan(&t, Some(&found), Tags::new());
        assert_eq!(plan.steps.len(), 4, "{:?}", plan.steps);
        let Step::Submit(batch) = &plan.steps[0].0;
        assert!(plan.steps.iter().all(|(s, _)| s == &plan.steps[0].0));
        let actions: Vec<Action> = batch.iter().map(|c| c.action).collect();
        use Action::{Create, Delete};
        assert_eq!(actions, vec![Delete, Delete, Create, Create]);
        let out = K::output(&t, Some(&found));
        assert_eq!(
            K::ids(&t, &out),
            vec!["Z1/example.com/A", "Z1/www.example.com/A"]
        );
        assert_eq!(out.pending(), Pending::settled());
        let late = Written {
            insync: false,
            ..out
        };
        assert_eq!(late.pending().hints().len(), 1);
        // The load balancer only planned: its records only planned too, nothing ledgered.
        let mut planned = t.clone();
        planned.records.target.dns_name.clear();
        let plan = <K as Managed>::plan(&planned, None, Tags::new());
        assert_eq!(plan.steps.len(), 2);
        assert!(K::ids(&planned, &K::output(&planned, None)).is_empty());
    }

    #[test]
    fn a_converged_zone_needs_nothing() {
        assert!(plan(&d(), &z(), &converged(), false).unwrap().is_empty());
    }

    #[test]
    fn a_record_pointing_elsewhere_is_upserted_back() {
        let mut recs = converged();
        recs[0].alias.as_mut().unwrap().dns_name = "evil.example.net.".into();
        let changes = plan(&d(), &z(), &recs, false).unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].0.action, Action::Upsert);
        assert_eq!(
            changes[0].1.to_string(),
            "~ dns record example.com A target: alias evil.example.net -> alias prod-1.eu-west-1.elb.amazonaws.com"
        );
    }

    #[test]
    fn a_record_without_our_txt_is_never_touched_unless_adopted() {
        let mut recs = converged();
        recs.retain(|r| !(r.name == "www.example.com" && r.rtype == "TXT"));
        let err = plan(&d(), &z(), &recs, false).unwrap_err();
        assert!(err.to_string().contains("www.example.com"), "{err}");
        let adopted = plan(&d(), &z(), &recs, true).unwrap();
        assert_eq!(adopted.len(), 1);
        assert_eq!(adopted[0].0.record.rtype, "TXT");
    }

    #[test]
    fn other_txt_values_are_kept_beside_ours() {
        let mut recs = converged();
        recs.retain(|r| r.name != "example.com");
        recs.push(txt_record("example.com", vec!["\"v=spf1 -all\"".into()]));
        let changes = plan(&d(), &z(), &recs, false).unwrap();
        let txt = changes
            .iter()
            .find(|(c, _)| c.record.rtype == "TXT")
            .unwrap();
        assert_eq!(txt.0.action, Action::Upsert);
        assert_eq!(txt.0.record.values.len(), 2);
    }

    #[test]
    fn records_of_hosts_no_longer_listed_are_removed() {
        let mut recs = converged();
        recs.push(alias_record("old.example.com", &d().target));
        recs.push(txt_record("old.example.com", vec![d().owner]));
        let changes = plan(&d(), &z(), &recs, false).unwrap();
        assert_eq!(changes.len(), 2);
        assert!(changes.iter().all(|(c, _)| c.action == Action::Delete));
    }

    #[test]
    fn deletion_takes_only_what_our_txt_names_and_keeps_other_txt_values() {
        let mut recs = converged();
        // Someone else's record, and an SPF value beside ours at the apex.
        recs.push(Record {
            values: vec!["192.0.2.1".into()],
            ttl: Some(60),
            ..alias_record("foreign.example.com", &d().target)
        });
        recs.iter_mut()
            .find(|r| r.name == "example.com" && r.rtype == "TXT")
            .unwrap()
            .values
            .push("\"v=spf1 -all\"".into());
        let released = released_value("ops", &key());
        let changes = plan_delete(&recs, &d().owner, &released, false);
        let summary: Vec<(String, String, Action)> = changes
            .iter()
            .map(|(c, _)| (c.record.name.clone(), c.record.rtype.clone(), c.action))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("example.com".into(), "A".into(), Action::Delete),
                ("example.com".into(), "TXT".into(), Action::Upsert),
                ("www.example.com".into(), "A".into(), Action::Delete),
                ("www.example.com".into(), "TXT".into(), Action::Delete),
            ]
        );
        assert_eq!(
            changes[1].0.record.values,
            vec!["\"v=spf1 -all\"".to_string()]
        );
        // Retain: the A records stay, our TXT value becomes the released one.
        let kept = plan_delete(&recs, &d().owner, &released, true);
        assert_eq!(kept.len(), 2);
        assert!(kept
            .iter()
            .all(|(c, _)| c.action == Action::Upsert && c.record.values.contains(&released)));
        assert_eq!(parse_owner(&released), None);
    }
}

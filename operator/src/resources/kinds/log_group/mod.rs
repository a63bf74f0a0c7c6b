//! The CloudWatch Logs group of a ServiceSpec's `container.logGroup` (when the spec has `logs`):
//! created with the ownership tags and the retention of `logs.retentionDays`, kept there.
//!
//! Invariants: logs are data, so the group is deleted only when both `logs.deletionPolicy` and
//! the spec's `deletionPolicy` are `Delete`; the group records its own policy in the tag
//! [`POLICY_TAG`], because the spec is gone by the time its deletion runs. A group without our
//! tags is never changed unless adopted. One DescribeLogGroups by name prefix and one
//! ListTagsForResource per reconcile; writes only on a difference.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput;

use crate::aws::Service;
use crate::resources::error::Absent;
use crate::resources::kind::GcScan;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::tag_step;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::arn_tags::{self, Api, Tagged};
use crate::resources::shared::pages::all_pages;
use crate::resources::shared::tags::{owner_of, ownership, Ownership};
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use crate::spec::types::{DeletionPolicy, ServiceSpec};
use crate::spec::ValidSpecs;

/// The id of this kind in status ledgers and garbage-collection scans (the ledger id is the
/// group's name).
pub const TYPE: &str = "logs:log-group";

/// The tag that carries the group's own deletion policy (`Retain` or `Delete`).
pub const POLICY_TAG: &str = "ecs-operator.io/deletion-policy";

/// The log group as the spec wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    /// Days; `None`: events never expire.
    pub retention_days: Option<i32>,
    /// `logs.deletionPolicy`.
    pub policy: DeletionPolicy,
}

/// The log group as AWS has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The ARN without the `:*` suffix (what the tag calls take).
    pub arn: String,
    pub retention_days: Option<i32>,
    pub tags: BTreeMap<String, String>,
}

/// The log group of `spec`, when it has `logs` and `container.logGroup`.
pub fn desired(spec: &ServiceSpec) -> Option<Desired> {
    let logs = spec.spec.logs.as_ref()?;
    Some(Desired {
        name: spec.spec.container.log_group.clone()?,
        retention_days: logs.retention_days.map(|d| d as i32),
        policy: logs.deletion_policy,
    })
}

fn policy_name(p: DeletionPolicy) -> &'static str {
    match p {
        DeletionPolicy::Retain => "Retain",
        DeletionPolicy::Delete => "Delete",
    }
}

/// The steps from `observed` to `desired` (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Tag(BTreeMap<String, String>),
    PutRetention(i32),
    DeleteRetention,
}

fn days(d: Option<i32>) -> String {
    d.map_or_else(|| "never expire".to_string(), |d| format!("{d} days"))
}

/// `owner_missing`: the ownership tags an adopted group still needs (from `SpecRun::claim`).
pub fn plan(
    d: &Desired,
    o: Option<&Observed>,
    owner_missing: BTreeMap<String, String>,
) -> Vec<(Step, Change)> {
    let resource = format!("log group {}", d.name);
    let Some(o) = o else {
        let mut steps = vec![(
            Step::Create,
            Change::create(&resource, format!("retention {}", days(d.retention_days))),
        )];
        if let Some(r) = d.retention_days {
            steps.push((
                Step::PutRetention(r),
                Change::field(&resource, "retention", "never expire", days(Some(r))),
            ));
        }
        return steps;
    };
    let mut steps = Vec::new();
    let mut missing = owner_missing;
    let policy = policy_name(d.policy);
    if o.tags.get(POLICY_TAG).map(String::as_str) != Some(policy) {
        missing.insert(POLICY_TAG.to_string(), policy.to_string());
    }
    steps.extend(tag_step(&resource, &missing, Step::Tag));
    if o.retention_days != d.retention_days {
        let change = Change::field(
            &resource,
            "retention",
            days(o.retention_days),
            days(d.retention_days),
        );
        steps.push(match d.retention_days {
            Some(r) => (Step::PutRetention(r), change),
            None => (Step::DeleteRetention, change),
        });
    }
    steps
}

/// The group's ARN without the `:*` that DescribeLogGroups' `arn` ends with.
fn bare_arn(g: &aws_sdk_cloudwatchlogs::types::LogGroup) -> String {
    g.log_group_arn()
        .map(str::to_string)
        .or_else(|| g.arn().map(|a| a.trim_end_matches(":*").to_string()))
        .unwrap_or_default()
}

async fn tags(run: &SpecRun<'_>, arn: &str) -> Result<BTreeMap<String, String>, ResourceError> {
    arn_tags::list(run, Tagged::new(Api::Logs, arn, arn)).await
}

/// Every log group whose name starts with `prefix` (empty: every group), DescribeLogGroups 50
/// per page.
async fn list(
    run: &SpecRun<'_>,
    prefix: &str,
) -> Result<Vec<DescribeLogGroupsOutput>, ResourceError> {
    all_pages(
        |token| {
            run.aws.read(
                Service::Logs,
                "DescribeLogGroups",
                if prefix.is_empty() { "*" } else { prefix },
                run.aws
                    .logs
                    .describe_log_groups()
                    .set_log_group_name_prefix((!prefix.is_empty()).then(|| prefix.to_string()))
                    .limit(50)
                    .set_next_token(token)
                    .send(),
            )
        },
        DescribeLogGroupsOutput::next_token,
    )
    .await
}

/// The log groups the store's ServiceSpecs would own (those with `logs` and
/// `container.logGroup`), sorted.
fn store_groups(specs: &ValidSpecs) -> Vec<String> {
    let mut names: Vec<String> = crate::resources::snapshot::service_specs(specs)
        .filter_map(|s| desired(s).map(|d| d.name))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The longest prefix every name shares.
fn common_prefix(names: &[String]) -> String {
    let Some(first) = names.first() else {
        return String::new();
    };
    let mut len = first.len();
    for n in &names[1..] {
        len = len.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    first[..len].to_string()
}

/// The groups of [`store_groups`] that exist, with their tags: one DescribeLogGroups listing
/// under the names' common prefix (50 per page), then one ListTagsForResource per group found.
async fn read_store(
    run: &SpecRun<'_>,
    specs: &ValidSpecs,
) -> Result<BTreeMap<String, Observed>, ResourceError> {
    let wanted = store_groups(specs);
    let prefix = common_prefix(&wanted);
    let pages = list(run, &prefix).await?;
    let mut out = BTreeMap::new();
    for g in pages.iter().flat_map(|p| p.log_groups()) {
        let Some(name) = g
            .log_group_name()
            .filter(|n| wanted.binary_search(&n.to_string()).is_ok())
        else {
            continue;
        };
        let arn = bare_arn(g);
        out.insert(
            name.to_string(),
            Observed {
                tags: tags(run, &arn).await?,
                retention_days: g.retention_in_days(),
                arn,
            },
        );
    }
    Ok(out)
}

/// Read the group `name` and its tags; `None` when it does not exist. In a resync wave, from
/// the wave's one listing of the groups the store's specs name ([`read_store`]).
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    if let Some(all) = run
        .cached(Entry::LogGroups, |specs| async move {
            read_store(run, &specs).await
        })
        .await
    {
        return Ok(all?.get(name).cloned());
    }
    read(run, name).await
}

/// The group `name` and its tags as AWS has them now. DescribeLogGroups by prefix lists names
/// in order, so the exact name, the smallest with that prefix, is on the first page.
async fn read(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    let out = run
        .aws
        .read(
            Service::Logs,
            "DescribeLogGroups",
            name,
            run.aws
                .logs
                .describe_log_groups()
                .log_group_name_prefix(name)
                .limit(50)
                .send(),
        )
        .await?;
    let Some(g) = out
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name))
    else {
        return Ok(None);
    };
    let arn = bare_arn(g);
    Ok(Some(Observed {
        tags: tags(run, &arn).await?,
        retention_days: g.retention_in_days(),
        arn,
    }))
}

/// Whether the group `name` carries our ownership tags for the run's spec (a metric filter on
/// it is then ours too).
pub async fn is_ours(run: &SpecRun<'_>, name: &str) -> Result<bool, ResourceError> {
    Ok(read(run, name)
        .await?
        .is_some_and(|o| ownership(&run.aws.instance, &run.key, &o.tags) == Ownership::Ours))
}

/// Teardown of the log group (`logs:log-group`, its name): released (ownership tags replaced by
/// `released-from`) unless both the spec's policy and the group's own ([`POLICY_TAG`]) say
/// Delete; a group without our tags is left alone.
pub async fn delete(
    run: &mut SpecRun<'_>,
    name: &str,
    retain: bool,
) -> Result<Gone, ResourceError> {
    let Some(o) = read(run, name).await? else {
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &o.tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    let resource = format!("log group {name}");
    let own_policy_delete = o.tags.get(POLICY_TAG).map(String::as_str) == Some("Delete");
    if retain || !own_policy_delete {
        let why = "released (logs are kept: deletionPolicy Retain)";
        let tagged = Tagged::new(Api::Logs, name, &o.arn);
        arn_tags::release(run, tagged, &resource, why, &[POLICY_TAG]).await?;
        return Ok(Gone::Yes);
    }
    if run.plan(Change::delete(&resource, "")) {
        run.aws
            .write(
                Service::Logs,
                "DeleteLogGroup",
                name,
                run.aws.logs.delete_log_group().log_group_name(name).send(),
            )
            .await
            .absent_if("ResourceNotFoundException")?;
    }
    Ok(Gone::Yes)
}

/// Garbage collection: every log group (DescribeLogGroups, 50 per page) and, per group, its
/// tags; those owned by this instance are added to `scan`.
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let pages = list(run, "").await?;
    for g in pages.iter().flat_map(|p| p.log_groups()) {
        let Some(name) = g.log_group_name() else {
            continue;
        };
        let tags = tags(run, &bare_arn(g)).await?;
        if let Some(owner) = owner_of(&run.aws.instance, &tags) {
            scan.add(owner, TYPE, name);
        }
    }
    Ok(())
}

crate::resources::kind::kind!(
    /// A CloudWatch Logs group, as the generic driver sees it.
    LogGroupKind, TYPE, 17, delete, "CloudWatch Logs groups", list_owned
);

/// The generic driver's view of a log group: its output is whether it exists (false only
/// while planning its create).
impl Managed for LogGroupKind {
    crate::resources::kind::by_name!("log group");
    type Output = bool;

    fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
        Plan::steps(plan(d, o, missing))
    }

    fn output(_: &Desired, o: Option<&Observed>) -> bool {
        o.is_some()
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, o, out } = at;
        let arn = o.map(|o| o.arn.as_str());
        let logs = &run.aws.logs;
        match step {
            Step::Create => {
                let mut tags: HashMap<String, String> = run.tags().into_iter().collect();
                tags.insert(POLICY_TAG.to_string(), policy_name(d.policy).to_string());
                run.aws
                    .write(
                        Service::Logs,
                        "CreateLogGroup",
                        &d.name,
                        logs.create_log_group()
                            .log_group_name(&d.name)
                            .set_tags(Some(tags))
                            .send(),
                    )
                    .await?;
                *out = true;
            }
            Step::Tag(tags) => {
                let tagged = Tagged::new(Api::Logs, &d.name, arn.unwrap_or_default());
                arn_tags::tag(run, tagged, &tags).await?
            }
            Step::PutRetention(days) => {
                run.aws
                    .write(
                        Service::Logs,
                        "PutRetentionPolicy",
                        &d.name,
                        logs.put_retention_policy()
                            .log_group_name(&d.name)
                            .retention_in_days(days)
                            .send(),
                    )
                    .await?;
            }
            Step::DeleteRetention => {
                run.aws
                    .write(
                        Service::Logs,
                        "DeleteRetentionPolicy",
                        &d.name,
                        logs.delete_retention_policy()
                            .log_group_name(&d.name)
                            .send(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    fn id(d: &Desired, exists: &bool) -> Option<String> {
        exists.then(|| d.name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Desired {
        Desired {
            name: "/ecs/web".into(),
            retention_days: Some(30),
            policy: DeletionPolicy::Retain,
        }
    }

    fn matching() -> Observed {
        Observed {
            arn: "arn:aws:logs:eu-west-1:1:log-group:/ecs/web".into(),
            retention_days: Some(30),
            tags: BTreeMap::from([(POLICY_TAG.to_string(), "Retain".to_string())]),
        }
    }

    #[test]
    fn a_matching_group_needs_nothing() {
        assert!(plan(&d(), Some(&matching()), BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_new_group_is_created_then_given_its_retention() {
        let steps: Vec<Step> = plan(&d(), None, BTreeMap::new())
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(steps, vec![Step::Create, Step::PutRetention(30)]);
    }

    #[test]
    fn removed_or_changed_retention_is_put_back_and_none_wanted_is_deleted() {
        let mut o = matching();
        o.retention_days = None;
        let steps = plan(&d(), Some(&o), BTreeMap::new());
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].0, Step::PutRetention(30));
        assert_eq!(
            steps[0].1.to_string(),
            "~ log group /ecs/web retention: never expire -> 30 days"
        );
        let mut forever = d();
        forever.retention_days = None;
        let steps = plan(&forever, Some(&matching()), BTreeMap::new());
        assert_eq!(steps[0].0, Step::DeleteRetention);
    }

    #[test]
    fn the_group_carries_its_own_deletion_policy_tag() {
        let mut want = d();
        want.policy = DeletionPolicy::Delete;
        let steps = plan(&want, Some(&matching()), BTreeMap::new());
        assert_eq!(
            steps[0].0,
            Step::Tag(BTreeMap::from([(POLICY_TAG.into(), "Delete".into())]))
        );
    }
}

//! The ECR repository a ServiceSpec owns: tag mutability, scan on push, ownership tags, and the
//! lifecycle policy rendered from the spec (untagged-expiry rule first, then one rule per
//! `keepTagged` entry).
//!
//! Invariants: policy documents are compared as parsed JSON (key order and whitespace never
//! cause an update); a repository without our tags is never changed unless adopted.

mod gc;

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ecr::types::{
    ImageScanningConfiguration, ImageTagMutability, Repository as AwsRepository,
};
use serde_json::{json, Value};

use crate::aws::Service;
use crate::resources::error::Absent;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::tag_step;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::arn_tags::{self, Api, Tagged};
use crate::resources::shared::pages::{by_name, one_by_name, read_pages};
use crate::resources::shared::release;
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use crate::spec::types::{Lifecycle, Repository, TagMutability};
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesOutput;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "ecr:repository";

/// The repository as the spec wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub immutable: bool,
    pub scan_on_push: bool,
    /// The rendered lifecycle policy; `None`: the repository has no policy.
    pub policy: Option<Value>,
}

/// The repository as AWS has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub uri: String,
    pub immutable: bool,
    pub scan_on_push: bool,
    pub tags: BTreeMap<String, String>,
    /// The policy, parsed and normalised.
    pub policy: Option<Value>,
}

pub fn desired(r: &Repository) -> Desired {
    Desired {
        name: r.name.clone(),
        immutable: r.image_tag_mutability == TagMutability::Immutable,
        scan_on_push: r.scan_on_push,
        policy: r.lifecycle.as_ref().and_then(render_policy),
    }
}

/// The lifecycle policy of `l`: rule 1 expires untagged images after N days (when set), then
/// one rule per `keepTagged` entry expiring all but the newest `count` images with those
/// prefixes. `None` when that makes no rule.
pub fn render_policy(l: &Lifecycle) -> Option<Value> {
    let mut rules = Vec::new();
    if let Some(days) = l.expire_untagged_after_days {
        rules.push(json!({
            "rulePriority": rules.len() + 1,
            "description": format!("expire untagged images after {days} days"),
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": days
            },
            "action": {"type": "expire"}
        }));
    }
    for k in &l.keep_tagged {
        rules.push(json!({
            "rulePriority": rules.len() + 1,
            "description": format!("keep the newest {} images tagged {}*", k.count, k.tag_prefixes.join("*, ")),
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": k.tag_prefixes,
                "countType": "imageCountMoreThan",
                "countNumber": k.count
            },
            "action": {"type": "expire"}
        }));
    }
    (!rules.is_empty()).then(|| json!({ "rules": rules }))
}

/// A policy document as compared: parsed, rules sorted by priority, numbers as numbers.
/// (Object key order never matters: `serde_json` maps compare as maps.)
pub fn normalise_policy(text: &str) -> Option<Value> {
    let mut v: Value = serde_json::from_str(text).ok()?;
    if let Some(rules) = v.get_mut("rules").and_then(Value::as_array_mut) {
        rules.sort_by_key(|r| r.get("rulePriority").and_then(Value::as_u64).unwrap_or(0));
    }
    Some(v)
}

/// One short line per rule, for change details.
fn policy_text(p: &Option<Value>) -> String {
    let Some(p) = p else {
        return "none".into();
    };
    let rules = p["rules"].as_array().cloned().unwrap_or_default();
    let parts: Vec<String> = rules
        .iter()
        .map(|r| {
            let s = &r["selection"];
            match s["tagStatus"].as_str() {
                Some("untagged") => format!("untagged after {} days", s["countNumber"]),
                _ => format!(
                    "keep {} of {}",
                    s["countNumber"],
                    s["tagPrefixList"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|p| format!("{p}*"))
                            .collect::<Vec<_>>()
                            .join("|"))
                        .unwrap_or_else(|| "any".into())
                ),
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The steps from `observed` to `desired` (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Create,
    Tag(BTreeMap<String, String>),
    Mutability,
    Scanning,
    PutPolicy,
    DeletePolicy,
}

pub fn plan(
    d: &Desired,
    o: Option<&Observed>,
    tags_missing: BTreeMap<String, String>,
) -> Vec<(Step, Change)> {
    let resource = format!("ecr repository {}", d.name);
    let mutability = |immutable: bool| if immutable { "IMMUTABLE" } else { "MUTABLE" };
    let Some(o) = o else {
        let mut steps = vec![(
            Step::Create,
            Change::create(
                &resource,
                format!(
                    "{}, scan on push {}",
                    mutability(d.immutable),
                    d.scan_on_push
                ),
            ),
        )];
        if d.policy.is_some() {
            steps.push((
                Step::PutPolicy,
                Change::field(&resource, "lifecycle", "none", policy_text(&d.policy)),
            ));
        }
        return steps;
    };
    let mut steps = Vec::new();
    steps.extend(tag_step(&resource, &tags_missing, Step::Tag));
    if o.immutable != d.immutable {
        steps.push((
            Step::Mutability,
            Change::field(
                &resource,
                "imageTagMutability",
                mutability(o.immutable),
                mutability(d.immutable),
            ),
        ));
    }
    if o.scan_on_push != d.scan_on_push {
        steps.push((
            Step::Scanning,
            Change::field(&resource, "scanOnPush", o.scan_on_push, d.scan_on_push),
        ));
    }
    match (&o.policy, &d.policy) {
        (_, Some(want)) if o.policy.as_ref() != Some(want) => steps.push((
            Step::PutPolicy,
            Change::field(
                &resource,
                "lifecycle",
                policy_text(&o.policy),
                policy_text(&d.policy),
            ),
        )),
        (Some(_), None) => steps.push((
            Step::DeletePolicy,
            Change::field(&resource, "lifecycle", policy_text(&o.policy), "none"),
        )),
        _ => {}
    }
    steps
}

/// Every repository of the registry by name (DescribeRepositories, 1000 per page): a resync
/// wave's read, shared by every ServiceSpec.
async fn list_all(run: &SpecRun<'_>) -> Result<HashMap<String, AwsRepository>, ResourceError> {
    let ecr = &run.aws.ecr;
    let pages = read_pages(
        &run.aws,
        Service::Ecr,
        "DescribeRepositories",
        |t| {
            ecr.describe_repositories()
                .max_results(1000)
                .set_next_token(t)
                .send()
        },
        DescribeRepositoriesOutput::next_token,
    )
    .await?;
    Ok(by_name(
        &pages,
        DescribeRepositoriesOutput::repositories,
        AwsRepository::repository_name,
        Clone::clone,
    ))
}

/// The repository `name` as DescribeRepositories has it; `None` when it does not exist. In a
/// resync wave, from the wave's listing.
async fn describe(run: &SpecRun<'_>, name: &str) -> Result<Option<AwsRepository>, ResourceError> {
    let ecr = &run.aws.ecr;
    let one = || async {
        let read = ecr.describe_repositories().repository_names(name).send();
        let resp = run
            .aws
            .read(Service::Ecr, "DescribeRepositories", name, read);
        let resp = resp.await.absent_if("RepositoryNotFoundException")?;
        Ok(resp.and_then(|r| r.repositories().first().cloned()))
    };
    one_by_name(run, Entry::Repositories, name, || list_all(run), one).await
}

/// The tags of the repository `arn` (`label` names it in the call record).
async fn tags_of(
    run: &SpecRun<'_>,
    label: &str,
    arn: &str,
) -> Result<BTreeMap<String, String>, ResourceError> {
    arn_tags::list(run, Tagged::new(Api::Ecr, label, arn)).await
}

/// Read the repository, its tags and its lifecycle policy; `None` when it does not exist. Tags
/// and policy are read per repository (ECR has no batch form).
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    let Some(r) = describe(run, name).await? else {
        return Ok(None);
    };
    let r = &r;
    let arn = r.repository_arn().unwrap_or_default().to_string();
    let tags = tags_of(run, name, &arn).await?;
    let policy = run
        .aws
        .read(
            Service::Ecr,
            "GetLifecyclePolicy",
            name,
            run.aws
                .ecr
                .get_lifecycle_policy()
                .repository_name(name)
                .send(),
        )
        .await
        .absent_if("LifecyclePolicyNotFoundException")?
        .and_then(|p| p.lifecycle_policy_text().and_then(normalise_policy));
    Ok(Some(Observed {
        arn,
        uri: r.repository_uri().unwrap_or_default().to_string(),
        immutable: matches!(
            r.image_tag_mutability(),
            Some(ImageTagMutability::Immutable) | Some(ImageTagMutability::ImmutableWithExclusion)
        ),
        scan_on_push: r
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        tags,
        policy,
    }))
}

/// Teardown of the repository (`ecr:repository`, its ARN).
///
/// Images are what a team cannot rebuild on demand, and the ServiceSpec has no field to say
/// "delete my images too", so a repository that holds any image is **kept**: its ownership tags
/// are replaced by `ecs-operator.io/released-from=ServiceSpec/<name>` (a spec that wants it back
/// adopts it with the adopt annotation), and the plan says why it was kept. An empty repository
/// is deleted. With `retain` the repository is released whatever it holds. A repository without
/// our tags is left alone.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some(name) = arn.split_once(":repository/").map(|(_, n)| n.to_string()) else {
        return Ok(Gone::Yes);
    };
    let Some(o) = observe(run, &name).await? else {
        return Ok(Gone::Yes);
    };
    if o.arn != arn
        || crate::resources::shared::tags::ownership(&run.aws.instance, &run.key, &o.tags)
            != crate::resources::shared::tags::Ownership::Ours
    {
        return Ok(Gone::Yes);
    }
    let resource = format!("ecr repository {name}");
    let tagged = Tagged::new(Api::Ecr, &name, arn);
    if retain {
        arn_tags::release(run, tagged, &resource, release::RELEASED, &[]).await?;
        return Ok(Gone::Yes);
    }
    let images = run
        .aws
        .read(
            Service::Ecr,
            "ListImages",
            &name,
            run.aws
                .ecr
                .list_images()
                .repository_name(&name)
                .max_results(1)
                .send(),
        )
        .await?;
    if !images.image_ids().is_empty() {
        let why = "kept: it holds images; released (ownership tags replaced by released-from)";
        arn_tags::release(run, tagged, &resource, why, &[]).await?;
        return Ok(Gone::Yes);
    }
    if run.plan(Change::delete(&resource, "empty")) {
        match run
            .aws
            .write(
                Service::Ecr,
                "DeleteRepository",
                &name,
                run.aws
                    .ecr
                    .delete_repository()
                    .repository_name(&name)
                    .send(),
            )
            .await
        {
            Err(e) if e.code() == Some("RepositoryNotFoundException") => {}
            // An image pushed between our look and the delete: keep it, next time it is released.
            Err(e) if e.code() == Some("RepositoryNotEmptyException") => {
                return Ok(Gone::not_yet(
                    format!("{resource} received an image while being deleted"),
                    crate::resources::shared::DRAIN_POLL,
                ));
            }
            other => {
                other?;
            }
        }
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// An ECR repository, as the generic driver sees it.
    RepositoryKind, TYPE, 7, delete, "ECR repositories", gc::list_owned
);

/// What reconciling a repository hands on: its ARN (the ledger id) and URI (the image's
/// address); empty while only planning a create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Made {
    pub arn: String,
    pub uri: String,
}

/// The generic driver's view of an ECR repository.
impl Managed for RepositoryKind {
    crate::resources::kind::by_name!("ecr repository");
    type Output = Made;

    fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
        Plan::steps(plan(d, o, missing))
    }

    fn output(_: &Desired, o: Option<&Observed>) -> Made {
        Made {
            arn: o.map(|o| o.arn.clone()).unwrap_or_default(),
            uri: o.map(|o| o.uri.clone()).unwrap_or_default(),
        }
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out, .. } = at;
        let mutability = if d.immutable {
            ImageTagMutability::Immutable
        } else {
            ImageTagMutability::Mutable
        };
        let ecr = &run.aws.ecr;
        match step {
            Step::Create => {
                let created = run
                    .aws
                    .write(
                        Service::Ecr,
                        "CreateRepository",
                        &d.name,
                        ecr.create_repository()
                            .repository_name(&d.name)
                            .image_tag_mutability(mutability.clone())
                            .image_scanning_configuration(
                                ImageScanningConfiguration::builder()
                                    .scan_on_push(d.scan_on_push)
                                    .build(),
                            )
                            .set_tags(Some(arn_tags::ecr(&run.tags())?))
                            .send(),
                    )
                    .await?;
                let r = created.repository();
                out.arn = r
                    .and_then(|r| r.repository_arn())
                    .unwrap_or_default()
                    .to_string();
                out.uri = r
                    .and_then(|r| r.repository_uri())
                    .unwrap_or_default()
                    .to_string();
            }
            Step::Tag(tags) => {
                let tagged = Tagged::new(Api::Ecr, &d.name, &out.arn);
                arn_tags::tag(run, tagged, &tags).await?
            }
            Step::Mutability => {
                run.aws
                    .write(
                        Service::Ecr,
                        "PutImageTagMutability",
                        &d.name,
                        ecr.put_image_tag_mutability()
                            .repository_name(&d.name)
                            .image_tag_mutability(mutability.clone())
                            .send(),
                    )
                    .await?;
            }
            Step::Scanning => {
                run.aws
                    .write(
                        Service::Ecr,
                        "PutImageScanningConfiguration",
                        &d.name,
                        ecr.put_image_scanning_configuration()
                            .repository_name(&d.name)
                            .image_scanning_configuration(
                                ImageScanningConfiguration::builder()
                                    .scan_on_push(d.scan_on_push)
                                    .build(),
                            )
                            .send(),
                    )
                    .await?;
            }
            Step::PutPolicy => {
                let text = d.policy.as_ref().map(Value::to_string).unwrap_or_default();
                run.aws
                    .write(
                        Service::Ecr,
                        "PutLifecyclePolicy",
                        &d.name,
                        ecr.put_lifecycle_policy()
                            .repository_name(&d.name)
                            .lifecycle_policy_text(text)
                            .send(),
                    )
                    .await?;
            }
            Step::DeletePolicy => {
                run.aws
                    .write(
                        Service::Ecr,
                        "DeleteLifecyclePolicy",
                        &d.name,
                        ecr.delete_lifecycle_policy()
                            .repository_name(&d.name)
                            .send(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    fn id(_: &Desired, out: &Made) -> Option<String> {
        crate::resources::kind::arn_id(&out.arn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::types::KeepTagged;

    fn lifecycle() -> Lifecycle {
        Lifecycle {
            expire_untagged_after_days: Some(1),
            keep_tagged: vec![KeepTagged {
                tag_prefixes: vec!["prod-".into()],
                count: 10,
            }],
        }
    }

    fn d() -> Desired {
        Desired {
            name: "app".into(),
            immutable: true,
            scan_on_push: true,
            policy: render_policy(&lifecycle()),
        }
    }

    #[test]
    fn the_untagged_rule_comes_first_then_one_rule_per_keep_tagged_entry() {
        let p = render_policy(&lifecycle()).unwrap();
        let rules = p["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["rulePriority"], 1);
        assert_eq!(rules[0]["selection"]["tagStatus"], "untagged");
        assert_eq!(rules[0]["selection"]["countNumber"], 1);
        assert_eq!(rules[1]["rulePriority"], 2);
        assert_eq!(rules[1]["selection"]["tagPrefixList"], json!(["prod-"]));
        assert_eq!(rules[1]["selection"]["countType"], "imageCountMoreThan");
        assert_eq!(rules[1]["selection"]["countNumber"], 10);
        let empty = Lifecycle {
            expire_untagged_after_days: None,
            keep_tagged: vec![],
        };
        assert_eq!(render_policy(&empty), None);
    }

    #[test]
    fn a_policy_reformatted_by_aws_is_not_a_change() {
        // Keys reordered, whitespace added, rules listed in another order.
        let rendered = d().policy.unwrap();
        let mut rules = rendered["rules"].as_array().unwrap().clone();
        rules.reverse();
        let text = serde_json::to_string_pretty(&json!({ "rules": rules })).unwrap();
        let o = Observed {
            immutable: true,
            scan_on_push: true,
            policy: normalise_policy(&text),
            ..Default::default()
        };
        assert!(plan(&d(), Some(&o), BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_changed_rule_is_one_put_in_plain_words() {
        let mut l = lifecycle();
        l.keep_tagged[0].count = 5;
        let o = Observed {
            immutable: true,
            scan_on_push: true,
            policy: render_policy(&l),
            ..Default::default()
        };
        let steps = plan(&d(), Some(&o), BTreeMap::new());
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].0, Step::PutPolicy);
        assert_eq!(
            steps[0].1.to_string(),
            "~ ecr repository app lifecycle: [untagged after 1 days, keep 5 of prod-*] -> [untagged after 1 days, keep 10 of prod-*]"
        );
    }

    #[test]
    fn a_new_repository_is_created_then_given_its_policy() {
        let steps: Vec<Step> = plan(&d(), None, BTreeMap::new())
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(steps, vec![Step::Create, Step::PutPolicy]);
    }
}

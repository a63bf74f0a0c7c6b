//! The SNS topic alarms notify: an owned topic (named after the spec, with the ownership tags)
//! whose email subscriptions the spec lists, or an existing topic the spec names by ARN, which
//! is only checked to exist and never modified.
//!
//! Invariants: a topic without our tags is never changed unless adopted; the owned topic is
//! found by name in one ListTopics listing (100 per page; in a resync wave one listing for the
//! whole wave), or outside a wave by the ARN it was last found under, read again; its tags are
//! read once per reconcile;
//! CreateTopic only when it is absent.

use std::collections::BTreeMap;

use aws_sdk_sns::operation::list_topics::ListTopicsOutput;

use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::{tag_step, Change, SpecRun};
use crate::resources::shared::arn_tags::{self, Api, Tagged};
use crate::resources::shared::pages::read_pages;
use crate::resources::shared::release;
use crate::resources::shared::tags::{owner_of, ownership, Ownership};
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use crate::spec::types::Notify;

/// The id of this kind in status ledgers and garbage-collection scans (the topic's ARN).
pub const TYPE: &str = "sns:topic";

/// Where the alarms of one spec (or one load balancer) notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A topic this spec owns, with these email subscriptions.
    Owned { topic: Desired, emails: Vec<String> },
    /// An existing topic, never modified.
    Existing { arn: String },
}

/// The owned topic as the spec wants it: only its name (and the ownership tags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// `<cluster>-<service>-alarms` or `<cluster>-<lb>-lb-alarms`.
    pub name: String,
}

/// The owned topic as AWS has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    pub tags: BTreeMap<String, String>,
}

/// The one change an owned topic can need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    /// Add the ownership tags an adopted topic lacks.
    Tag(BTreeMap<String, String>),
}

/// The topic of `notify`; `name` is the owned topic's name (`<cluster>-<service>-alarms`).
pub fn desired(name: &str, notify: Option<&Notify>) -> Target {
    match notify.and_then(|n| n.topic_arn.clone()) {
        Some(arn) => Target::Existing { arn },
        None => Target::Owned {
            topic: Desired {
                name: name.to_string(),
            },
            emails: notify.map(|n| n.emails.clone()).unwrap_or_default(),
        },
    }
}

/// The steps from `o` to `d` (pure): create it when absent, else add the ownership tags an
/// adopted topic lacks (`missing`).
pub fn plan(
    d: &Desired,
    o: Option<&Observed>,
    missing: BTreeMap<String, String>,
) -> Vec<(Step, Change)> {
    let resource = format!("sns topic {}", d.name);
    match o {
        None => vec![(Step::Create, Change::create(&resource, ""))],
        Some(_) => tag_step(&resource, &missing, Step::Tag)
            .into_iter()
            .collect(),
    }
}

/// Check that the existing topic `arn` (`alarms.notify.topicArn`) is there; it is never
/// modified.
pub async fn check_existing(run: &SpecRun<'_>, arn: &str) -> Result<(), ResourceError> {
    match tags_of(run, arn).await? {
        Some(_) => Ok(()),
        None => Err(ResourceError::Unsatisfiable(format!(
            "the SNS topic {arn} (alarms.notify.topicArn) does not exist"
        ))),
    }
}

/// The tags of the topic `arn`; `None` when it does not exist.
pub async fn tags_of(
    run: &SpecRun<'_>,
    arn: &str,
) -> Result<Option<BTreeMap<String, String>>, ResourceError> {
    match arn_tags::list(run, Tagged::new(Api::Sns, arn, arn)).await {
        Err(e) if matches!(e.code(), Some("NotFound" | "ResourceNotFound")) => Ok(None),
        other => other.map(Some),
    }
}

/// Every topic ARN of the account and region (ListTopics, 100 per page).
async fn list_all(run: &SpecRun<'_>) -> Result<Vec<String>, ResourceError> {
    let pages = read_pages(
        &run.aws,
        Service::Sns,
        "ListTopics",
        |token| run.aws.sns.list_topics().set_next_token(token).send(),
        ListTopicsOutput::next_token,
    )
    .await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.topics())
        .filter_map(|t| t.topic_arn().map(str::to_string))
        .collect())
}

/// The topic named `name` and its tags, if there is one. In a resync wave, from the wave's one
/// listing; outside a wave, by the ARN this process found or created it under before
/// (`Aws::topic_arns`), read by its tags (one call instead of a listing of every topic of the
/// account, 10 pages at 1000 topics), and from a fresh listing when none is known or the known
/// one is gone.
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    let suffix = format!(":{name}");
    let listed = match run.cached(Entry::Topics, |_| list_all(run)).await {
        Some(all) => all?.iter().find(|arn| arn.ends_with(&suffix)).cloned(),
        None => {
            if let Some(arn) = run.aws.topic_arns.get(name) {
                if let Some(tags) = tags_of(run, &arn).await? {
                    return Ok(Some(Observed { arn, tags }));
                }
                run.aws.topic_arns.forget(&arn);
            }
            list_all(run)
                .await?
                .into_iter()
                .find(|arn| arn.ends_with(&suffix))
        }
    };
    let Some(arn) = listed else {
        return Ok(None);
    };
    // Gone between the listing and this read: absent.
    let Some(tags) = tags_of(run, &arn).await? else {
        return Ok(None);
    };
    run.aws.topic_arns.put(name, &arn);
    Ok(Some(Observed { arn, tags }))
}

/// Teardown of an owned topic (its ARN): deleted (SNS deletes its subscriptions with it), or
/// released with `retain`; a topic without our tags is left alone.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some(tags) = tags_of(run, arn).await? else {
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    let resource = format!("sns topic {}", arn.rsplit(':').next().unwrap_or(arn));
    if retain {
        let tagged = Tagged::new(Api::Sns, arn, arn);
        arn_tags::release(run, tagged, &resource, release::RELEASED, &[]).await?;
        return Ok(Gone::Yes);
    }
    if run.plan(Change::delete(&resource, "with its subscriptions")) {
        run.aws
            .write(
                Service::Sns,
                "DeleteTopic",
                arn,
                run.aws.sns.delete_topic().topic_arn(arn).send(),
            )
            .await?;
        run.aws.topic_arns.forget(arn);
    }
    Ok(Gone::Yes)
}

/// Garbage collection: every topic and its tags; those owned by this instance go into `scan`.
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    for arn in list_all(run).await? {
        if let Some(owner) = tags_of(run, &arn)
            .await?
            .and_then(|t| owner_of(&run.aws.instance, &t))
        {
            scan.add(owner, TYPE, arn);
        }
    }
    Ok(())
}

crate::resources::kind::kind!(
    /// An SNS topic, as the generic driver sees it.
    TopicKind, TYPE, 15, delete, "SNS topics", list_owned
);

/// The generic driver's view of an owned topic: its output is the topic's ARN (empty while
/// only planning its create).
impl Managed for TopicKind {
    crate::resources::kind::by_name!("sns topic");
    crate::resources::kind::arn_output!();

    fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
        Plan::steps(plan(d, o, missing))
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out: arn, .. } = at;
        match step {
            Step::Create => {
                let req = run.aws.sns.create_topic().name(&d.name);
                let req = req.set_tags(Some(arn_tags::sns(&run.tags())?)).send();
                let out = run
                    .aws
                    .write(Service::Sns, "CreateTopic", &d.name, req)
                    .await?;
                *arn = out.topic_arn().unwrap_or_default().to_string();
                run.aws.topic_arns.put(&d.name, arn);
            }
            Step::Tag(tags) => arn_tags::tag(run, Tagged::new(Api::Sns, arn, arn), &tags).await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_topic_arn_is_used_as_it_is_and_otherwise_the_spec_owns_one() {
        let existing = Notify {
            emails: vec![],
            topic_arn: Some("arn:aws:sns:eu-west-1:1:ops".into()),
        };
        assert_eq!(
            desired("prod-web-alarms", Some(&existing)),
            Target::Existing {
                arn: "arn:aws:sns:eu-west-1:1:ops".into()
            }
        );
        let mail = Notify {
            emails: vec!["ops@example.com".into()],
            topic_arn: None,
        };
        assert_eq!(
            desired("prod-web-alarms", Some(&mail)),
            Target::Owned {
                topic: Desired {
                    name: "prod-web-alarms".into()
                },
                emails: vec!["ops@example.com".into()]
            }
        );
        assert_eq!(
            desired("prod-web-alarms", None),
            Target::Owned {
                topic: Desired {
                    name: "prod-web-alarms".into()
                },
                emails: vec![]
            }
        );
    }

    #[test]
    fn an_absent_topic_is_created_and_an_adopted_one_only_gains_the_ownership_tags() {
        let d = Desired {
            name: "prod-web-alarms".into(),
        };
        let steps: Vec<Step> = plan(&d, None, BTreeMap::new())
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(steps, vec![Step::Create]);
        let o = Observed {
            arn: "arn:aws:sns:eu-west-1:1:prod-web-alarms".into(),
            tags: BTreeMap::new(),
        };
        assert!(plan(&d, Some(&o), BTreeMap::new()).is_empty());
        let missing = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let steps = plan(&d, Some(&o), missing.clone());
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].0, Step::Tag(missing));
    }
}

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
use aws_sdk_sns::types::Tag;

use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kind::Gone;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::pages::read_pages;
use crate::resources::shared::tags::{owner_of, ownership, request_tags, Ownership, RELEASED_TAG};
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use crate::spec::types::Notify;

/// The id of this kind in status ledgers and garbage-collection scans (the topic's ARN).
pub const TYPE: &str = "sns:topic";

/// Where the alarms of one spec (or one load balancer) notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desired {
    /// A topic this spec owns, named `name`, with these email subscriptions.
    Owned { name: String, emails: Vec<String> },
    /// An existing topic, never modified.
    Existing { arn: String },
}

/// The topic of `notify`; `name` is the owned topic's name (`<cluster>-<service>-alarms`).
pub fn desired(name: &str, notify: Option<&Notify>) -> Desired {
    match notify.and_then(|n| n.topic_arn.clone()) {
        Some(arn) => Desired::Existing { arn },
        None => Desired::Owned {
            name: name.to_string(),
            emails: notify.map(|n| n.emails.clone()).unwrap_or_default(),
        },
    }
}

fn sns_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ResourceError> {
    request_tags(tags, |k, v| Tag::builder().key(k).value(v).build())
}

/// The tags of the topic `arn`; `None` when it does not exist.
pub async fn tags_of(
    run: &SpecRun<'_>,
    arn: &str,
) -> Result<Option<BTreeMap<String, String>>, ResourceError> {
    match run
        .aws
        .read(
            Service::Sns,
            "ListTagsForResource",
            arn,
            run.aws
                .sns
                .list_tags_for_resource()
                .resource_arn(arn)
                .send(),
        )
        .await
    {
        Err(e) if matches!(e.code(), Some("NotFound" | "ResourceNotFound")) => Ok(None),
        other => Ok(Some(
            other?
                .tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
        )),
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
pub async fn find(
    run: &SpecRun<'_>,
    name: &str,
) -> Result<Option<(String, BTreeMap<String, String>)>, ResourceError> {
    let suffix = format!(":{name}");
    let listed = match run.cached(Entry::Topics, |_| list_all(run)).await {
        Some(all) => all?.iter().find(|arn| arn.ends_with(&suffix)).cloned(),
        None => {
            if let Some(arn) = run.aws.topic_arns.get(name) {
                if let Some(tags) = tags_of(run, &arn).await? {
                    return Ok(Some((arn, tags)));
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
    Ok(Some((arn, tags)))
}

/// Reconcile the topic. Returns its ARN (empty while only planning its create) and whether the
/// spec owns it.
pub async fn reconcile(
    run: &mut SpecRun<'_>,
    d: &Desired,
) -> Result<(String, bool), ResourceError> {
    let name = match d {
        Desired::Existing { arn } => {
            if tags_of(run, arn).await?.is_none() {
                return Err(ResourceError::Unsatisfiable(format!(
                    "the SNS topic {arn} (alarms.notify.topicArn) does not exist"
                )));
            }
            return Ok((arn.clone(), false));
        }
        Desired::Owned { name, .. } => name,
    };
    let resource = format!("sns topic {name}");
    let Some((arn, tags)) = find(run, name).await? else {
        if !run.plan(Change::create(&resource, "")) {
            return Ok((String::new(), true));
        }
        let out = run
            .aws
            .write(
                Service::Sns,
                "CreateTopic",
                name,
                run.aws
                    .sns
                    .create_topic()
                    .name(name)
                    .set_tags(Some(sns_tags(&run.tags())?))
                    .send(),
            )
            .await?;
        let arn = out.topic_arn().unwrap_or_default().to_string();
        run.aws.topic_arns.put(name, &arn);
        run.resource(TYPE, arn.clone());
        return Ok((arn, true));
    };
    let missing = run.claim(&resource, &tags)?;
    if !missing.is_empty() && run.plan(Change::tags_added(&resource, &missing)) {
        run.aws
            .write(
                Service::Sns,
                "TagResource",
                name,
                run.aws
                    .sns
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(sns_tags(&missing)?))
                    .send(),
            )
            .await?;
    }
    run.resource(TYPE, arn.clone());
    Ok((arn, true))
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
        if run.plan(Change::update(
            &resource,
            "released (deletionPolicy Retain)",
        )) {
            let released = BTreeMap::from([(RELEASED_TAG.to_string(), run.key.to_string())]);
            run.aws
                .write(
                    Service::Sns,
                    "TagResource",
                    arn,
                    run.aws
                        .sns
                        .tag_resource()
                        .resource_arn(arn)
                        .set_tags(Some(sns_tags(&released)?))
                        .send(),
                )
                .await?;
            run.aws
                .write(
                    Service::Sns,
                    "UntagResource",
                    arn,
                    run.aws
                        .sns
                        .untag_resource()
                        .resource_arn(arn)
                        .tag_keys(crate::MANAGED_BY_TAG)
                        .tag_keys(crate::OWNER_TAG)
                        .send(),
                )
                .await?;
        }
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
            Desired::Existing {
                arn: "arn:aws:sns:eu-west-1:1:ops".into()
            }
        );
        let mail = Notify {
            emails: vec!["ops@example.com".into()],
            topic_arn: None,
        };
        assert_eq!(
            desired("prod-web-alarms", Some(&mail)),
            Desired::Owned {
                name: "prod-web-alarms".into(),
                emails: vec!["ops@example.com".into()]
            }
        );
        assert_eq!(
            desired("prod-web-alarms", None),
            Desired::Owned {
                name: "prod-web-alarms".into(),
                emails: vec![]
            }
        );
    }
}

//! The email subscriptions of an owned SNS topic: one per `notify.emails` entry.
//!
//! A new subscription waits for its address to confirm the mail AWS sends: that is a normal
//! state, reported in the `Notifications` condition (the spec stays Ready) and never re-sent
//! while AWS lists it as pending. Email subscriptions the spec no longer lists are removed once
//! confirmed (a pending one has no ARN to unsubscribe; AWS drops it unconfirmed). Subscriptions of
//! other protocols on the topic are left alone.
//!
//! Invariants: one ListSubscriptionsByTopic per reconcile (100 per page; in a resync wave one
//! ListSubscriptions listing for the whole wave); Subscribe only for an address the topic does
//! not list at all.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_sns::operation::list_subscriptions::ListSubscriptionsOutput;
use aws_sdk_sns::operation::list_subscriptions_by_topic::ListSubscriptionsByTopicOutput;

use crate::aws::Service;
use crate::reconcile::ConditionReport;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{GcScan, Gone, Managed, Plan};
use crate::resources::kinds::sns_topic;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::pages::{all_pages, read_pages};
use crate::resources::shared::tags::{ownership, Ownership};
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;

/// The id of this kind in status ledgers and garbage-collection scans: `<topic ARN>|<email>`
/// (a pending subscription has no ARN of its own yet).
pub const TYPE: &str = "sns:subscription";

/// AWS's SubscriptionArn of a subscription not confirmed yet.
pub const PENDING: &str = "PendingConfirmation";

/// One email subscription as the topic lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub email: String,
    /// `None` while pending confirmation.
    pub arn: Option<String>,
}

/// The steps (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Subscribe(String),
    Unsubscribe(String),
}

/// Subscribe every wanted address the topic does not list (pending or not); unsubscribe the
/// confirmed subscriptions of addresses no longer wanted. Addresses compare case-insensitively.
pub fn plan(topic: &str, wanted: &[String], observed: &[Observed]) -> Vec<(Step, Change)> {
    let key = |e: &str| e.to_ascii_lowercase();
    let have: BTreeSet<String> = observed.iter().map(|o| key(&o.email)).collect();
    let want: BTreeSet<String> = wanted.iter().map(|e| key(e)).collect();
    let resource = |e: &str| format!("sns subscription {e} to {topic}");
    let mut steps = Vec::new();
    for e in wanted {
        if !have.contains(&key(e)) {
            steps.push((
                Step::Subscribe(e.clone()),
                Change::create(resource(e), "email; AWS mails a confirmation"),
            ));
        }
    }
    for o in observed {
        if let (false, Some(arn)) = (want.contains(&key(&o.email)), &o.arn) {
            steps.push((
                Step::Unsubscribe(arn.clone()),
                Change::delete(resource(&o.email), "no longer in notify.emails"),
            ));
        }
    }
    steps
}

/// The `Notifications` condition: False (reason `PendingConfirmation`) while any address has
/// not confirmed; it does not hold the spec back from Ready.
pub fn condition(wanted: &[String], observed: &[Observed]) -> ConditionReport {
    let pending: Vec<&str> = observed
        .iter()
        .filter(|o| o.arn.is_none())
        .filter(|o| wanted.iter().any(|w| w.eq_ignore_ascii_case(&o.email)))
        .map(|o| o.email.as_str())
        .collect();
    if pending.is_empty() {
        ConditionReport::new(
            "Notifications",
            true,
            "Subscribed",
            format!("{} email subscription(s) confirmed", wanted.len()),
        )
    } else {
        ConditionReport::new(
            "Notifications",
            false,
            "PendingConfirmation",
            format!(
                "waiting for {} to confirm the subscription mail AWS sent (not sent again)",
                pending.join(", ")
            ),
        )
    }
}

/// The email subscriptions of `topic`. In a resync wave, from the wave's one listing of every
/// subscription (ListSubscriptions, 100 per page).
pub async fn observe(run: &SpecRun<'_>, topic: &str) -> Result<Vec<Observed>, ResourceError> {
    if let Some(all) = run.cached(Entry::Subscriptions, |_| by_topic(run)).await {
        return Ok(all?.get(topic).cloned().unwrap_or_default());
    }
    read(run, topic).await
}

fn email(s: &aws_sdk_sns::types::Subscription) -> Option<Observed> {
    (s.protocol() == Some("email")).then(|| Observed {
        email: s.endpoint().unwrap_or_default().to_string(),
        arn: s
            .subscription_arn()
            .filter(|a| *a != PENDING && a.starts_with("arn:"))
            .map(str::to_string),
    })
}

/// Every email subscription of the account and region, by topic ARN.
async fn by_topic(
    run: &SpecRun<'_>,
) -> Result<std::collections::HashMap<String, Vec<Observed>>, ResourceError> {
    let pages = read_pages(
        &run.aws,
        Service::Sns,
        "ListSubscriptions",
        |token| {
            run.aws
                .sns
                .list_subscriptions()
                .set_next_token(token)
                .send()
        },
        ListSubscriptionsOutput::next_token,
    )
    .await?;
    let mut out: std::collections::HashMap<String, Vec<Observed>> = Default::default();
    for s in pages.iter().flat_map(|p| p.subscriptions()) {
        if let (Some(topic), Some(o)) = (s.topic_arn(), email(s)) {
            out.entry(topic.to_string()).or_default().push(o);
        }
    }
    Ok(out)
}

/// The email subscriptions of `topic` as AWS lists them now.
async fn read(run: &SpecRun<'_>, topic: &str) -> Result<Vec<Observed>, ResourceError> {
    let pages = all_pages(
        |token| {
            run.aws.read(
                Service::Sns,
                "ListSubscriptionsByTopic",
                topic,
                run.aws
                    .sns
                    .list_subscriptions_by_topic()
                    .topic_arn(topic)
                    .set_next_token(token)
                    .send(),
            )
        },
        ListSubscriptionsByTopicOutput::next_token,
    )
    .await?;
    Ok(pages
        .iter()
        .flat_map(|p| p.subscriptions())
        .filter_map(email)
        .collect())
}

async fn subscribe(run: &SpecRun<'_>, topic: &str, email: &str) -> Result<(), ResourceError> {
    let req = run.aws.sns.subscribe().topic_arn(topic).protocol("email");
    let req = req.endpoint(email).return_subscription_arn(true).send();
    run.aws.write(Service::Sns, "Subscribe", email, req).await?;
    Ok(())
}

async fn unsubscribe(run: &SpecRun<'_>, arn: &str) -> Result<(), ResourceError> {
    let req = run.aws.sns.unsubscribe().subscription_arn(arn).send();
    run.aws.write(Service::Sns, "Unsubscribe", arn, req).await?;
    Ok(())
}

/// The email subscriptions of one owned topic, as the generic driver takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The topic's ARN; empty while its create is only planned (there is nothing to read).
    pub topic: String,
    /// `notify.emails`.
    pub emails: Vec<String>,
}

/// The generic driver's view: one desired value is every email subscription of a topic, read
/// by one listing; its output is the subscriptions as they stand after the steps (a new one
/// pending), for [`condition`]. Subscriptions take no tags: they are ours through the topic,
/// which the pipeline claimed just before.
impl Managed for SubscriptionKind {
    crate::resources::kind::managed_types!(Desired, Vec<Observed>, Step, Vec<Observed>);

    fn label(d: &Desired) -> String {
        format!("sns email subscriptions of {}", d.topic)
    }

    async fn observe(
        run: &SpecRun<'_>,
        d: &Desired,
    ) -> Result<Option<Vec<Observed>>, ResourceError> {
        if d.topic.is_empty() {
            return Ok(None);
        }
        observe(run, &d.topic).await.map(Some)
    }

    crate::resources::kind::owned_through_parent!();

    fn plan(d: &Desired, o: Option<&Vec<Observed>>, _: BTreeMap<String, String>) -> Plan<Step> {
        let name = d.topic.rsplit(':').next().unwrap_or(&d.topic);
        Plan::steps(plan(name, &d.emails, o.map_or(&[], Vec::as_slice)))
    }

    fn output(_: &Desired, o: Option<&Vec<Observed>>) -> Vec<Observed> {
        o.cloned().unwrap_or_default()
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out: now, .. } = at;
        match step {
            Step::Subscribe(email) => {
                subscribe(run, &d.topic, &email).await?;
                // An email subscription is pending until its address confirms (AWS returns an
                // ARN with ReturnSubscriptionArn either way): the next reconcile reads its state.
                now.push(Observed { email, arn: None });
            }
            Step::Unsubscribe(arn) => {
                unsubscribe(run, &arn).await?;
                now.retain(|o| o.arn.as_deref() != Some(arn.as_str()));
            }
        }
        Ok(())
    }

    /// None: the subscriptions are ledgered one per address, by [`Managed::ids`].
    fn id(_: &Desired, _: &Vec<Observed>) -> Option<String> {
        None
    }

    /// `<topic ARN>|<email>` for every wanted address (none while the topic is only planned).
    fn ids(d: &Desired, _: &Vec<Observed>) -> Vec<String> {
        if d.topic.is_empty() {
            return Vec::new();
        }
        d.emails
            .iter()
            .map(|e| format!("{}|{e}", d.topic))
            .collect()
    }
}

/// Teardown of one subscription (`<topic ARN>|<email>`): unsubscribed when the topic is ours and
/// the subscription confirmed; nothing with `retain` (it stays with the released topic), and
/// nothing for a pending one (the topic's own deletion, ranked after, removes it).
pub async fn delete(run: &mut SpecRun<'_>, id: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some((topic, email)) = id.split_once('|') else {
        return Ok(Gone::Yes);
    };
    if retain {
        return Ok(Gone::Yes);
    }
    let Some(tags) = sns_topic::tags_of(run, topic).await? else {
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    for o in read(run, topic).await? {
        if let (true, Some(arn)) = (o.email.eq_ignore_ascii_case(email), &o.arn) {
            if run.plan(Change::delete(format!("sns subscription {email}"), "")) {
                unsubscribe(run, arn).await?;
            }
        }
    }
    Ok(Gone::Yes)
}

/// Garbage collection: the email subscriptions of the topics the scan found owned.
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    for (owner, topic) in scan.owned(sns_topic::TYPE) {
        for o in observe(run, &topic).await? {
            scan.add(owner.clone(), TYPE, format!("{topic}|{}", o.email));
        }
    }
    Ok(())
}

crate::resources::kind::kind!(
    /// An SNS email subscription, as the generic driver sees it.
    SubscriptionKind, TYPE, 14, delete, "SNS subscriptions", list_owned
);

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(email: &str, arn: Option<&str>) -> Observed {
        Observed {
            email: email.into(),
            arn: arn.map(str::to_string),
        }
    }

    #[test]
    fn a_pending_subscription_is_not_sent_again_and_is_reported() {
        let wanted = vec!["ops@example.com".to_string()];
        let observed = vec![sub("OPS@example.com", None)];
        assert!(plan("t", &wanted, &observed).is_empty());
        let c = condition(&wanted, &observed);
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "PendingConfirmation")
        );
        assert!(c.message.contains("OPS@example.com"), "{}", c.message);
        let confirmed = vec![sub("ops@example.com", Some("arn:aws:sns:r:1:t:abc"))];
        assert_eq!(condition(&wanted, &confirmed).status, "True");
    }

    #[test]
    fn new_addresses_are_subscribed_and_dropped_confirmed_ones_removed() {
        let wanted = vec!["new@example.com".to_string()];
        let observed = vec![
            sub("old@example.com", Some("arn:aws:sns:r:1:t:old")),
            sub("gone@example.com", None),
        ];
        let steps: Vec<Step> = plan("t", &wanted, &observed)
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(
            steps,
            vec![
                Step::Subscribe("new@example.com".into()),
                Step::Unsubscribe("arn:aws:sns:r:1:t:old".into())
            ]
        );
    }
}

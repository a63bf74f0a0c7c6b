//! Logs, alarms and notifications, in dependency order.
//!
//! - [`logs`] (a ServiceSpec, before its task definition, so the awslogs driver finds its group):
//!   log group -> metric filter of `logs.errorPattern`.
//! - [`service_alarms`] (after the ECS service and its target group exist): SNS topic -> email
//!   subscriptions -> CloudWatch alarms.
//! - [`load_balancer_alarms`] (a ClusterSpec, after each load balancer): the same for
//!   `loadBalancers[].alarms`.
//!
//! A spec without `logs` or `alarms` costs no call here, unless its last status lists what such
//! a block made: a block the spec dropped is taken down like a spec's deletion of those kinds
//! ([`drop_recorded`]: alarms, topic and subscriptions deleted, the metric filter deleted, the
//! log group released: logs are data).

use crate::resources::driver::reconcile::{drive, drive_set};
use crate::resources::kinds;
use crate::resources::kinds::alarm::{self, AlarmKind};
use crate::resources::kinds::log_group::{self, LogGroupKind};
use crate::resources::kinds::metric_filter::{self, MetricFilterKind};
use crate::resources::kinds::sns_subscription::{self, SubscriptionKind};
use crate::resources::kinds::sns_topic::{self, Target, TopicKind};
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;
use crate::spec::types::{LoadBalancer, Notify, ServiceSpec};

/// The log group and its metric filter.
pub async fn logs(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    cluster: &str,
) -> Result<(), ResourceError> {
    let Some(group) = log_group::desired(spec) else {
        drop_recorded(run, &[metric_filter::TYPE], |_| true, false).await?;
        return drop_recorded(run, &[log_group::TYPE], |_| true, true).await;
    };
    let exists = drive::<LogGroupKind>(run, &group).await?;
    match metric_filter::desired(spec, cluster) {
        Some(filter) => {
            let d = metric_filter::Desired {
                filter,
                group_exists: exists,
            };
            drive::<MetricFilterKind>(run, &d).await.map(drop)
        }
        None if exists => {
            let name = format!("{}-errors", spec.metadata.name);
            metric_filter::remove(run, &group.name, &name).await
        }
        None => Ok(()),
    }
}

/// The topic (owned: with its email subscriptions) the alarms of `notify` go to; empty while
/// only planning its create.
async fn topic(
    run: &mut SpecRun<'_>,
    name: &str,
    notify: Option<&Notify>,
) -> Result<String, ResourceError> {
    match sns_topic::desired(name, notify) {
        Target::Existing { arn } => {
            sns_topic::check_existing(run, &arn).await?;
            Ok(arn)
        }
        Target::Owned { topic, emails } => {
            let arn = drive::<TopicKind>(run, &topic).await?;
            let d = sns_subscription::Desired {
                topic: arn.clone(),
                emails,
            };
            let now = drive::<SubscriptionKind>(run, &d).await?;
            if !d.emails.is_empty() {
                run.condition(sns_subscription::condition(&d.emails, &now));
            }
            Ok(arn)
        }
    }
}

/// A ServiceSpec's topic and alarms. `label`: its target group's ALB metric label.
pub async fn service_alarms(
    run: &mut SpecRun<'_>,
    spec: &ServiceSpec,
    cluster: &str,
    label: Option<&str>,
) -> Result<(), ResourceError> {
    let Some(alarms) = &spec.spec.alarms else {
        return drop_recorded(run, NOTIFY_KINDS, |_| true, false).await;
    };
    let service = &spec.metadata.name;
    let arn = topic(
        run,
        &format!("{cluster}-{service}-alarms"),
        alarms.notify.as_ref(),
    )
    .await?;
    let wanted = alarm::service(
        cluster,
        service,
        Some(alarms),
        &arn,
        label,
        &metric_filter::metric_name(cluster, service),
    );
    let wanted = alarm::desired(wanted);
    drive_set::<AlarmKind>(run, &wanted).await.map(drop)
}

/// A ClusterSpec load balancer's topic and alarms (`lb_arn`: empty while only planned).
pub async fn load_balancer_alarms(
    run: &mut SpecRun<'_>,
    cluster: &str,
    lb: &LoadBalancer,
    lb_arn: &str,
) -> Result<(), ResourceError> {
    let Some(alarms) = &lb.alarms else {
        // This load balancer's alarms are named `<cluster>-<lb>-<alarm>`; its topic
        // `<cluster>-<lb>-lb-alarms` (ledger id: the ARN; a subscription's: `<topic ARN>|<email>`).
        let alarm_prefix = format!("{cluster}-{}-", lb.name);
        let topic = format!(":{cluster}-{}-lb-alarms", lb.name);
        return drop_recorded(
            run,
            NOTIFY_KINDS,
            |id| {
                id.starts_with(&alarm_prefix)
                    || id.ends_with(&topic)
                    || id.split_once('|').is_some_and(|(t, _)| t.ends_with(&topic))
            },
            false,
        )
        .await;
    };
    let arn = topic(
        run,
        &format!("{cluster}-{}-lb-alarms", lb.name),
        alarms.notify.as_ref(),
    )
    .await?;
    let label = alarm::lb_label(lb_arn);
    let wanted = alarm::load_balancer(cluster, &lb.name, Some(alarms), &arn, label.as_deref());
    let wanted = alarm::desired(wanted);
    drive_set::<AlarmKind>(run, &wanted).await.map(drop)
}

/// The kinds of an `alarms` block.
const NOTIFY_KINDS: &[&str] = &[alarm::TYPE, sns_subscription::TYPE, sns_topic::TYPE];

/// Take down what the spec's last status lists of `types` (ids for which `ours` holds), in
/// teardown order: the resources of a block the spec no longer has. Each kind's delete checks
/// the ownership tags first, so nothing unowned is touched; `retain`: release instead of
/// delete. One still on its way out stays in the ledger. Without a last status (`ledger`
/// unknown) nothing is looked for.
async fn drop_recorded(
    run: &mut SpecRun<'_>,
    types: &[&str],
    ours: impl Fn(&str) -> bool,
    retain: bool,
) -> Result<(), ResourceError> {
    let Some(ledger) = &run.ledger else {
        return Ok(());
    };
    let mut found: Vec<(kinds::Registered, String)> = ledger
        .iter()
        .filter(|r| types.contains(&r.resource_type.as_str()) && ours(&r.id))
        .filter_map(|r| kinds::find(&r.resource_type).map(|k| (k, r.id.clone())))
        .collect();
    found.sort_by_key(|(k, id)| (k.rank, id.clone()));
    for (kind, id) in found {
        if !(kind.delete)(run, &id, retain).await?.follow(run) {
            run.resource(kind.resource_type, id);
        }
    }
    Ok(())
}

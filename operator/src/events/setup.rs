//! `init --events`: the SQS queue and the EventBridge rules the operator listens to, created
//! when absent and put right when they differ; safe to rerun (a rerun on a correct setup
//! makes no write).
//!
//! What is made, for instance `I` (names from [`names`]):
//! - the queue `I-events`: messages kept 1 day (an older event is worth nothing: the resync
//!   has run since), long polling by default, SQS-managed encryption, and a policy letting
//!   `events.amazonaws.com` send to it only from the rules below (`aws:SourceArn`);
//! - the rules on the default bus, each targeting the queue ([`rules`]): ECS deployment state
//!   changes, ECS service actions, ECS tasks of services that stopped, and CloudTrail's write
//!   calls (`AWS API Call via CloudTrail`) to Elastic Load Balancing, ECS, Route53, ACM, ECR
//!   and Application Auto Scaling;
//! - with an S3 store: the bucket's EventBridge notifications turned on (merged into its
//!   notification configuration: every topic, queue and Lambda configuration it has is kept), and
//!   a fifth rule, `I-s3-store`, for S3's `Object Created` / `Object Deleted` events of that
//!   bucket under the store's prefix ([`s3_rule`]), so a CI sync is seen at once. A bucket whose
//!   notification configuration the caller may not read or write is left as it is (reported;
//!   the store's listings then stay the only change detection).
//!
//! Ownership: the queue and the rules carry `ecs-operator.io/managed-by=I` and
//! `ecs-operator.io/component=events`. A queue or rule of that name without
//! `managed-by=I` is not ours: init stops with an error and changes nothing of it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::MANAGED_BY_TAG;

/// The tag naming what part of the operator a resource belongs to.
pub const COMPONENT_TAG: &str = "ecs-operator.io/component";
/// Its value on the queue and the rules.
pub const COMPONENT: &str = "events";
/// The rules' target id.
pub const TARGET_ID: &str = "ecs-operator-events-queue";

/// The CloudTrail event sources (and EventBridge `source`s) of the services the operator manages.
pub const MANAGED_SERVICES: &[(&str, &str)] = &[
    (
        "aws.elasticloadbalancing",
        "elasticloadbalancing.amazonaws.com",
    ),
    ("aws.ecs", "ecs.amazonaws.com"),
    ("aws.route53", "route53.amazonaws.com"),
    ("aws.acm", "acm.amazonaws.com"),
    ("aws.ecr", "ecr.amazonaws.com"),
    (
        "aws.application-autoscaling",
        "application-autoscaling.amazonaws.com",
    ),
];

/// The queue's and the rules' names for an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub queue: String,
    /// The rules' names, in [`rules`] order.
    pub rules: Vec<String>,
    /// The rule of an S3 store's object events ([`s3_rule`]).
    pub s3_rule: String,
}

/// Why a name cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadInstance(pub String);

/// The rule suffixes, in [`rules`] order.
const RULE_SUFFIXES: [&str; 4] = [
    "ecs-deployments",
    "ecs-service-actions",
    "ecs-tasks-stopped",
    "api-calls",
];
/// The suffix of the S3 store's rule.
const S3_RULE_SUFFIX: &str = "s3-store";

/// The names for `instance`: SQS queue names are 1..80 of `[A-Za-z0-9_-]`, rule names
/// 1..64 of `[.\-_A-Za-z0-9]`; an instance that cannot make them is refused.
pub fn names(instance: &str) -> Result<Names, BadInstance> {
    if instance.is_empty()
        || !instance
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(BadInstance(format!(
            "instance `{instance}` cannot name an SQS queue (letters, digits, `-` and `_` only)"
        )));
    }
    let longest = RULE_SUFFIXES.iter().map(|s| s.len() + 1).max().unwrap_or(0);
    if instance.len() + longest > 64 {
        return Err(BadInstance(format!(
            "instance `{instance}` is too long for EventBridge rule names (at most {} characters)",
            64 - longest
        )));
    }
    Ok(Names {
        queue: format!("{instance}-events"),
        rules: RULE_SUFFIXES
            .iter()
            .map(|s| format!("{instance}-{s}"))
            .collect(),
        s3_rule: format!("{instance}-{S3_RULE_SUFFIX}"),
    })
}

/// The rule of an S3 store's changes: S3's object events (EventBridge notifications) of
/// `bucket` under `prefix` (`team/specs/`), which is where the specs are and the status records
/// are not (they live under `.ecs-operator/`), so the operator's own status writes match nothing.
pub fn s3_rule(bucket: &str, prefix: &str) -> (Value, &'static str) {
    (
        json!({
            "source": ["aws.s3"],
            "detail-type": crate::events::parse::S3_OBJECT_EVENTS,
            "detail": {"bucket": {"name": [bucket]}, "object": {"key": [{"prefix": prefix}]}}
        }),
        "S3 store objects created or deleted, to ecs-operator",
    )
}

/// An S3 store, for [`ensure`].
pub struct S3Store<'a> {
    pub client: &'a aws_sdk_s3::Client,
    pub bucket: &'a str,
    /// Empty or ending in `/`.
    pub prefix: &'a str,
}

/// The event patterns of the rules, in [`RULE_SUFFIXES`] order, with a description each.
pub fn rules() -> Vec<(Value, &'static str)> {
    let sources: Vec<&str> = MANAGED_SERVICES.iter().map(|s| s.0).collect();
    let event_sources: Vec<&str> = MANAGED_SERVICES.iter().map(|s| s.1).collect();
    vec![
        (
            json!({"source": ["aws.ecs"], "detail-type": ["ECS Deployment State Change"]}),
            "ECS deployment state changes, to ecs-operator",
        ),
        (
            json!({"source": ["aws.ecs"], "detail-type": ["ECS Service Action"]}),
            "ECS service actions, to ecs-operator",
        ),
        (
            json!({
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {"lastStatus": ["STOPPED"], "group": [{"prefix": "service:"}]}
            }),
            "ECS tasks of services that stopped, to ecs-operator",
        ),
        (
            json!({
                "source": sources,
                "detail-type": ["AWS API Call via CloudTrail"],
                "detail": {"eventSource": event_sources}
            }),
            "CloudTrail write calls to the services ecs-operator manages, to ecs-operator",
        ),
    ]
}

/// The queue policy: EventBridge may send, from these rules only.
pub fn queue_policy(queue_arn: &str, rule_arns: &[String]) -> Value {
    let mut arns = rule_arns.to_vec();
    arns.sort();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EcsOperatorEventRules",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": arns}}
        }]
    })
}

/// The tags of the queue and the rules.
pub fn tags(instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_TAG.to_string(), instance.to_string()),
        (COMPONENT_TAG.to_string(), COMPONENT.to_string()),
    ])
}

/// The queue attributes `init` sets at creation (besides the policy).
pub const QUEUE_ATTRIBUTES: &[(&str, &str)] = &[
    ("MessageRetentionPeriod", "86400"),
    ("ReceiveMessageWaitTimeSeconds", "20"),
    ("SqsManagedSseEnabled", "true"),
];

/// What init did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub queue_url: String,
    /// One line per resource: `created ...`, `updated ...` or `exists  ...`.
    pub lines: Vec<String>,
}

/// Why init could not finish.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Instance(#[from] BadInstance),
    #[error("{0} exists and is not managed by this instance (tag {MANAGED_BY_TAG}={1} missing): left alone")]
    NotOurs(String, String),
    #[error("{operation}: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
}

fn aws_error<E>(operation: &'static str) -> impl FnOnce(E) -> SetupError
where
    E: std::error::Error,
{
    move |e| SetupError::Aws {
        operation,
        message: aws_sdk_sqs::error::DisplayErrorContext(&e).to_string(),
    }
}

/// Create or put right the queue and the rules of `instance`, and with an S3 store `s3`, the
/// bucket's EventBridge notifications and the store's rule.
pub async fn ensure(
    sqs: &aws_sdk_sqs::Client,
    eb: &aws_sdk_eventbridge::Client,
    s3: Option<S3Store<'_>>,
    instance: &str,
) -> Result<Report, SetupError> {
    let names = names(instance)?;
    let mut report = Report::default();
    let (url, queue_arn, current_policy) =
        ensure_queue(sqs, &names.queue, instance, &mut report).await?;
    report.queue_url = url.clone();
    let mut wanted: Vec<(String, (Value, &'static str))> =
        names.rules.iter().cloned().zip(rules()).collect();
    if let Some(store) = &s3 {
        ensure_bucket_events(store, &mut report).await?;
        wanted.push((names.s3_rule.clone(), s3_rule(store.bucket, store.prefix)));
    }
    let mut rule_arns = Vec::new();
    for (name, (pattern, description)) in &wanted {
        rule_arns.push(ensure_rule(eb, name, pattern, description, instance, &mut report).await?);
    }
    let policy = queue_policy(&queue_arn, &rule_arns);
    let same = current_policy
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .is_some_and(|p| p == policy);
    if !same {
        sqs.set_queue_attributes()
            .queue_url(&url)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::Policy,
                policy.to_string(),
            )
            .send()
            .await
            .map_err(aws_error("SetQueueAttributes"))?;
        report.lines.push(format!(
            "updated sqs queue {} policy: events.amazonaws.com may send from the {} rules",
            names.queue,
            rule_arns.len()
        ));
    }
    for (name, _) in &wanted {
        ensure_target(eb, name, &queue_arn, &mut report).await?;
    }
    Ok(report)
}

/// Turn on the bucket's EventBridge notifications, keeping every other notification it has
/// (PutBucketNotificationConfiguration replaces the whole configuration, so what GetBucket-
/// NotificationConfiguration answered is written back with EventBridge added). Nothing is
/// written when they are on already. A caller without the permission to read or write the
/// configuration leaves it alone, with a line in the report.
async fn ensure_bucket_events(store: &S3Store<'_>, report: &mut Report) -> Result<(), SetupError> {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use aws_sdk_s3::types::{EventBridgeConfiguration, NotificationConfiguration};
    let label = format!("s3 bucket {} EventBridge notifications", store.bucket);
    let denied = |code: Option<&str>| code == Some("AccessDenied");
    let current = match store
        .client
        .get_bucket_notification_configuration()
        .bucket(store.bucket)
        .send()
        .await
    {
        Ok(c) => c,
        Err(e) if denied(e.code()) => {
            report.lines.push(format!("skipped {label}: not allowed to read the bucket's notification configuration (s3:GetBucketNotification); store changes are seen by listing only"));
            return Ok(());
        }
        // A successful answer that cannot be read: what is there is unknown, so nothing is
        // written over it.
        Err(e) if e.raw_response().is_some_and(|r| r.status().is_success()) => {
            report.lines.push(format!(
                "skipped {label}: the bucket's notification configuration could not be read ({}), so none is written over it; store changes are seen by listing only",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ));
            return Ok(());
        }
        Err(e) => return Err(aws_error("GetBucketNotificationConfiguration")(e)),
    };
    if current.event_bridge_configuration().is_some() {
        report.lines.push(format!("exists  {label}"));
        return Ok(());
    }
    let merged = NotificationConfiguration::builder()
        .set_topic_configurations(non_empty(current.topic_configurations()))
        .set_queue_configurations(non_empty(current.queue_configurations()))
        .set_lambda_function_configurations(non_empty(current.lambda_function_configurations()))
        .event_bridge_configuration(EventBridgeConfiguration::builder().build())
        .build();
    match store
        .client
        .put_bucket_notification_configuration()
        .bucket(store.bucket)
        .notification_configuration(merged)
        .send()
        .await
    {
        Ok(_) => {
            let kept = current.topic_configurations().len()
                + current.queue_configurations().len()
                + current.lambda_function_configurations().len();
            report.lines.push(format!(
                "updated {label}: on ({kept} other notification configuration(s) kept)"
            ));
            Ok(())
        }
        Err(e) if denied(e.code()) => {
            report.lines.push(format!("skipped {label}: not allowed to change the bucket's notification configuration (s3:PutBucketNotification); store changes are seen by listing only"));
            Ok(())
        }
        Err(e) => Err(aws_error("PutBucketNotificationConfiguration")(e)),
    }
}

/// The queue's URL, ARN and current policy, creating the queue when absent.
async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    instance: &str,
    report: &mut Report,
) -> Result<(String, String, Option<String>), SetupError> {
    let url = match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => {
            let url = out.queue_url().unwrap_or_default().to_string();
            let tags = sqs
                .list_queue_tags()
                .queue_url(&url)
                .send()
                .await
                .map_err(aws_error("ListQueueTags"))?;
            let owned = tags
                .tags()
                .and_then(|t| t.get(MANAGED_BY_TAG))
                .is_some_and(|v| v == instance);
            if !owned {
                return Err(SetupError::NotOurs(
                    format!("sqs queue {name}"),
                    instance.into(),
                ));
            }
            report.lines.push(format!("exists  sqs queue {name}"));
            url
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist()) =>
        {
            let mut req = sqs.create_queue().queue_name(name);
            for (k, v) in QUEUE_ATTRIBUTES {
                req = req.attributes(aws_sdk_sqs::types::QueueAttributeName::from(*k), *v);
            }
            for (k, v) in tags(instance) {
                req = req.tags(k, v);
            }
            let out = req.send().await.map_err(aws_error("CreateQueue"))?;
            report.lines.push(format!("created sqs queue {name}"));
            out.queue_url().unwrap_or_default().to_string()
        }
        Err(e) => return Err(aws_error("GetQueueUrl")(e)),
    };
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .map_err(aws_error("GetQueueAttributes"))?;
    let get = |n: aws_sdk_sqs::types::QueueAttributeName| {
        attrs.attributes().and_then(|a| a.get(&n)).cloned()
    };
    let arn =
        get(aws_sdk_sqs::types::QueueAttributeName::QueueArn).ok_or_else(|| SetupError::Aws {
            operation: "GetQueueAttributes",
            message: format!("no QueueArn for {url}"),
        })?;
    Ok((
        url,
        arn,
        get(aws_sdk_sqs::types::QueueAttributeName::Policy),
    ))
}

/// The rule's ARN, creating or updating the rule when needed.
async fn ensure_rule(
    eb: &aws_sdk_eventbridge::Client,
    name: &str,
    pattern: &Value,
    description: &str,
    instance: &str,
    report: &mut Report,
) -> Result<String, SetupError> {
    use aws_sdk_eventbridge::types::{RuleState, Tag};
    match eb.describe_rule().name(name).send().await {
        Ok(rule) => {
            let arn = rule.arn().unwrap_or_default().to_string();
            let tags = eb
                .list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(aws_error("ListTagsForResource"))?;
            let owned = tags
                .tags()
                .iter()
                .any(|t| t.key() == MANAGED_BY_TAG && t.value() == instance);
            if !owned {
                return Err(SetupError::NotOurs(
                    format!("eventbridge rule {name}"),
                    instance.into(),
                ));
            }
            let same_pattern = rule
                .event_pattern()
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
                .is_some_and(|p| p == *pattern);
            let enabled = rule.state() == Some(&RuleState::Enabled);
            if same_pattern && enabled && rule.description() == Some(description) {
                report
                    .lines
                    .push(format!("exists  eventbridge rule {name}"));
            } else {
                eb.put_rule()
                    .name(name)
                    .event_pattern(pattern.to_string())
                    .state(RuleState::Enabled)
                    .description(description)
                    .send()
                    .await
                    .map_err(aws_error("PutRule"))?;
                report.lines.push(format!("updated eventbridge rule {name}: pattern, state and description as init sets them"));
            }
            Ok(arn)
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            let mut req = eb
                .put_rule()
                .name(name)
                .event_pattern(pattern.to_string())
                .state(RuleState::Enabled)
                .description(description);
            for (k, v) in tags(instance) {
                let tag = Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| SetupError::Aws {
                        operation: "PutRule",
                        message: e.to_string(),
                    })?;
                req = req.tags(tag);
            }
            let out = req.send().await.map_err(aws_error("PutRule"))?;
            report
                .lines
                .push(format!("created eventbridge rule {name}"));
            Ok(out.rule_arn().unwrap_or_default().to_string())
        }
        Err(e) => Err(aws_error("DescribeRule")(e)),
    }
}

/// `Some` list for a builder when there is something in it.
fn non_empty<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// The queue as the rule's target.
async fn ensure_target(
    eb: &aws_sdk_eventbridge::Client,
    rule: &str,
    queue_arn: &str,
    report: &mut Report,
) -> Result<(), SetupError> {
    let targets = eb
        .list_targets_by_rule()
        .rule(rule)
        .send()
        .await
        .map_err(aws_error("ListTargetsByRule"))?;
    let present = targets.targets().iter().any(|t| {
        t.id() == TARGET_ID
            && t.arn() == queue_arn
            && t.input().is_none()
            && t.input_path().is_none()
            && t.input_transformer().is_none()
    });
    if present {
        return Ok(());
    }
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id(TARGET_ID)
        .arn(queue_arn)
        .build()
        .map_err(|e| SetupError::Aws {
            operation: "PutTargets",
            message: e.to_string(),
        })?;
    let out = eb
        .put_targets()
        .rule(rule)
        .targets(target)
        .send()
        .await
        .map_err(aws_error("PutTargets"))?;
    if let Some(f) = out.failed_entries().first() {
        return Err(SetupError::Aws {
            operation: "PutTargets",
            message: format!(
                "{}: {}",
                f.error_code().unwrap_or_default(),
                f.error_message().unwrap_or_default()
            ),
        });
    }
    report
        .lines
        .push(format!("updated eventbridge rule {rule} target: the queue"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_instance_and_bad_instances_are_refused() {
        let n = names("ecs-operator").unwrap();
        assert_eq!(n.queue, "ecs-operator-events");
        assert_eq!(
            n.rules,
            [
                "ecs-operator-ecs-deployments",
                "ecs-operator-ecs-service-actions",
                "ecs-operator-ecs-tasks-stopped",
                "ecs-operator-api-calls"
            ]
        );
        assert_eq!(n.s3_rule, "ecs-operator-s3-store");
        assert!(names("prod.eu").unwrap_err().0.contains("letters, digits"));
        assert!(names("").is_err());
        assert!(names(&"a".repeat(45)).unwrap_err().0.contains("too long"));
        assert!(names(&"a".repeat(44)).is_ok());
    }

    #[test]
    fn the_rules_cover_the_three_ecs_events_and_the_write_calls_of_six_services() {
        let r = rules();
        assert_eq!(r.len(), RULE_SUFFIXES.len());
        assert_eq!(r[0].0["detail-type"][0], "ECS Deployment State Change");
        assert_eq!(r[1].0["detail-type"][0], "ECS Service Action");
        assert_eq!(r[2].0["detail"]["lastStatus"][0], "STOPPED");
        let calls = &r[3].0;
        assert_eq!(calls["detail-type"][0], "AWS API Call via CloudTrail");
        assert_eq!(calls["source"].as_array().unwrap().len(), 6);
        assert!(calls["detail"]["eventSource"]
            .as_array()
            .unwrap()
            .contains(&json!("route53.amazonaws.com")));
    }

    #[test]
    fn the_s3_rule_matches_object_events_of_the_bucket_under_the_prefix_only() {
        let (p, _) = s3_rule("specs-bucket", "team/specs/");
        assert_eq!(p["source"], json!(["aws.s3"]));
        assert_eq!(
            p["detail-type"],
            json!(["Object Created", "Object Deleted"])
        );
        assert_eq!(p["detail"]["bucket"]["name"], json!(["specs-bucket"]));
        assert_eq!(
            p["detail"]["object"]["key"],
            json!([{"prefix": "team/specs/"}])
        );
    }

    #[test]
    fn the_queue_policy_lets_eventbridge_send_from_the_rules_only() {
        let p = queue_policy(
            "arn:aws:sqs:eu-west-1:1:ecs-operator-events",
            &[
                "arn:aws:events:eu-west-1:1:rule/b".into(),
                "arn:aws:events:eu-west-1:1:rule/a".into(),
            ],
        );
        let s = &p["Statement"][0];
        assert_eq!(s["Principal"]["Service"], "events.amazonaws.com");
        assert_eq!(s["Action"], "sqs:SendMessage");
        assert_eq!(
            s["Condition"]["ArnEquals"]["aws:SourceArn"],
            json!([
                "arn:aws:events:eu-west-1:1:rule/a",
                "arn:aws:events:eu-west-1:1:rule/b"
            ])
        );
    }
}

//! One SQS message body, as EventBridge delivers it, read into an [`Event`] (pure).
//!
//! The body is the EventBridge envelope: `version`, `id`, `detail-type`, `source`, `account`,
//! `time`, `region`, `resources` (ARNs) and `detail`. What the operator reads from it:
//!
//! - ECS events (`source: aws.ecs`, `ECS Deployment State Change`, `ECS Service Action`,
//!   `ECS Task State Change`): the service ARN in `resources`; for a task, `detail.clusterArn`
//!   and `detail.group` (`service:NAME`).
//! - CloudTrail events (`detail-type: AWS API Call via CloudTrail`): `detail.eventName`,
//!   `detail.eventID`, `detail.userIdentity.arn` (who called), `detail.errorCode` (a call that
//!   failed changed nothing), and the resources named in `detail.requestParameters` and
//!   `detail.responseElements`: every ARN in them, plus the names some APIs take instead of
//!   ARNs (ECS `cluster`/`service`, ECR `repositoryName`, Application Auto Scaling `resourceId`,
//!   Route53 `hostedZoneId` with the record names of `changeBatch`).
//! - S3 object events of an S3 store's bucket (`source: aws.s3`, `Object Created`, `Object
//!   Deleted`, S3's EventBridge notifications): `detail.bucket.name` and `detail.object.key`,
//!   as [`Event::object`]; what they mean is decided against the store, not the index.
//!
//! Invariant: every resource an event names comes out as [`lookups`](Event::lookups) in the
//! vocabulary of [`super::index::aliases`], so an event matches a ledger entry whether it
//! names the resource by ARN or by name. A body that is not such an envelope is
//! [`Malformed`], with the reason; nothing here panics on any input.

use serde_json::Value;

/// `detail-type` of CloudTrail's management events.
pub const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";

/// The `detail-type`s of S3's object events the operator reads (an S3 store's changes).
pub const S3_OBJECT_EVENTS: [&str; 2] = ["Object Created", "Object Deleted"];

/// The object an S3 object event names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    /// The object key as S3's EventBridge notifications give it (not URL-encoded).
    pub key: String,
}

/// An event the operator can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What identifies this occurrence across duplicate deliveries: CloudTrail's `eventID` for
    /// API calls (the same call put on the bus twice keeps it), else the envelope's `id`.
    pub identity: String,
    pub source: String,
    pub detail_type: String,
    /// `detail.eventName` (CloudTrail, and ECS's deployment and service events), when present.
    pub name: Option<String>,
    /// The envelope's `time`, seconds since the Unix epoch.
    pub time: Option<i64>,
    /// CloudTrail only: `detail.userIdentity.arn`.
    pub caller: Option<String>,
    /// CloudTrail only: the call failed (`detail.errorCode`), so it changed nothing.
    pub failed: bool,
    /// The keys to look up in the owner index (see the module docs).
    pub lookups: Vec<String>,
    /// S3 object events only: the object created or deleted.
    pub object: Option<ObjectRef>,
}

/// Why a body is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// At most this many strings are read from one event's parameters (a bound on the work a
/// hostile or huge message can cause).
const MAX_STRINGS: usize = 1000;

/// Read one message body.
pub fn parse(body: &str) -> Result<Event, Malformed> {
    let v: Value = serde_json::from_str(body).map_err(|e| Malformed(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| Malformed("not a JSON object".into()))?;
    let text = |field: &str| -> Result<String, Malformed> {
        match obj.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(_) => Err(Malformed(format!("`{field}` is not a non-empty string"))),
            None => Err(Malformed(format!("no `{field}`: not an EventBridge event"))),
        }
    };
    let id = text("id")?;
    let source = text("source")?;
    let detail_type = text("detail-type")?;
    let detail = match obj.get("detail") {
        Some(Value::Object(d)) => d,
        Some(_) => return Err(Malformed("`detail` is not an object".into())),
        None => return Err(Malformed("no `detail`: not an EventBridge event".into())),
    };
    let time = match obj.get("time") {
        Some(Value::String(t)) => Some(
            parse_time(t)
                .ok_or_else(|| Malformed(format!("`time` {t:?} is not an RFC 3339 timestamp")))?,
        ),
        Some(_) => return Err(Malformed("`time` is not a string".into())),
        None => None,
    };
    let mut lookups = Vec::new();
    match obj.get("resources") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for r in items {
                match r {
                    Value::String(arn) => add_arn(&mut lookups, arn),
                    _ => return Err(Malformed("`resources` holds a non-string".into())),
                }
            }
        }
        Some(_) => return Err(Malformed("`resources` is not a list".into())),
    }
    let str_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let name = str_of(detail.get("eventName"));
    let cloudtrail = detail_type == CLOUDTRAIL;
    let (identity, caller, failed) = if cloudtrail {
        let caller = str_of(detail.get("userIdentity").and_then(|u| u.get("arn")));
        let failed = detail.get("errorCode").is_some_and(|e| !e.is_null());
        let identity = str_of(detail.get("eventID")).unwrap_or_else(|| id.clone());
        let mut budget = MAX_STRINGS;
        for part in ["requestParameters", "responseElements"] {
            if let Some(p) = detail.get(part) {
                for s in strings(p, &mut budget) {
                    if s.starts_with("arn:") {
                        add_arn(&mut lookups, s);
                    }
                }
            }
        }
        if let Some(p) = detail.get("requestParameters").and_then(Value::as_object) {
            named_by_api(&source, p, &mut lookups);
        }
        (identity, caller, failed)
    } else {
        if source == "aws.ecs" {
            // A task of a service: `group` is `service:NAME`, in the cluster of `clusterArn`.
            let group = str_of(detail.get("group"));
            let cluster = str_of(detail.get("clusterArn"));
            if let (Some(g), Some(c)) = (group, cluster) {
                if let Some(service) = g.strip_prefix("service:") {
                    lookups.push(ecs_service_alias(last_segment(&c), service));
                }
            }
        }
        (id, None, false)
    };
    let object = if source == "aws.s3" && S3_OBJECT_EVENTS.contains(&detail_type.as_str()) {
        let bucket = detail
            .get("bucket")
            .and_then(|b| b.get("name"))
            .and_then(Value::as_str);
        let key = detail
            .get("object")
            .and_then(|o| o.get("key"))
            .and_then(Value::as_str);
        match (bucket, key) {
            (Some(b), Some(k)) if !b.is_empty() && !k.is_empty() => Some(ObjectRef {
                bucket: b.to_string(),
                key: k.to_string(),
            }),
            _ => {
                return Err(Malformed(format!(
                "an S3 `{detail_type}` event without `detail.bucket.name` and `detail.object.key`"
            )))
            }
        }
    } else {
        None
    };
    lookups.sort();
    lookups.dedup();
    Ok(Event {
        object,
        identity,
        source,
        detail_type,
        name,
        time,
        caller,
        failed,
        lookups,
    })
}

/// Seconds since the epoch of an RFC 3339 time (`2026-12-01T21:04:05Z`).
fn parse_time(t: &str) -> Option<i64> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Every string in `v`, depth first, at most `budget` of them.
fn strings<'a>(v: &'a Value, budget: &mut usize) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        if *budget == 0 {
            break;
        }
        match v {
            Value::String(s) => {
                *budget -= 1;
                out.push(s.as_str());
            }
            Value::Array(items) => stack.extend(items.iter().rev()),
            Value::Object(m) => stack.extend(m.values().rev()),
            _ => {}
        }
    }
    out
}

/// An ARN, and the name-based key of the same resource when it has one.
fn add_arn(lookups: &mut Vec<String>, arn: &str) {
    lookups.push(arn.to_string());
    if let Some(alias) = super::index::alias_of_arn(arn) {
        lookups.push(alias);
    }
}

fn last_segment(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// `ecs service CLUSTER/NAME`: how an ECS service is looked up by name.
pub fn ecs_service_alias(cluster: &str, service: &str) -> String {
    format!("ecs service {cluster}/{service}")
}

/// The resources some APIs name without an ARN, as index keys.
fn named_by_api(source: &str, p: &serde_json::Map<String, Value>, lookups: &mut Vec<String>) {
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    match source {
        "aws.ecs" => {
            // `cluster` and `service` are names or ARNs; no cluster means `default`.
            let cluster = s("cluster").map_or("default", last_segment);
            if let Some(service) = s("service") {
                lookups.push(ecs_service_alias(cluster, last_segment(service)));
            }
            if s("cluster").is_some() {
                lookups.push(format!("ecs cluster {cluster}"));
            }
            if let Some(cp) = s("capacityProvider").or(s("name")) {
                lookups.push(format!("ecs capacity-provider {}", last_segment(cp)));
            }
            if let Some(td) = s("taskDefinition") {
                lookups.push(format!("ecs task-definition {}", last_segment(td)));
            }
        }
        "aws.ecr" => {
            if let Some(r) = s("repositoryName") {
                lookups.push(format!("ecr repository {r}"));
            }
        }
        "aws.application-autoscaling" => {
            // `service/CLUSTER/NAME` for the ECS namespace.
            if let Some(rest) = s("resourceId").and_then(|r| r.strip_prefix("service/")) {
                if let Some((cluster, service)) = rest.split_once('/') {
                    lookups.push(ecs_service_alias(cluster, service));
                }
            }
        }
        "aws.route53" => {
            let Some(zone) = s("hostedZoneId") else {
                return;
            };
            let changes = p
                .get("changeBatch")
                .and_then(|b| b.get("changes"))
                .and_then(Value::as_array);
            for c in changes.into_iter().flatten() {
                let name = c
                    .get("resourceRecordSet")
                    .and_then(|r| r.get("name"))
                    .and_then(Value::as_str);
                if let Some(name) = name {
                    lookups.push(super::index::record_alias(zone, name));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's documented example of `ECS Deployment State Change` (EventBridge user guide,
    /// "Amazon ECS service deployment state change events"), with our service's ARN.
    fn deployment_completed() -> String {
        serde_json::json!({
            "version": "0",
            "id": "ddca6449-b258-46c0-8653-e0e3aEXAMPLE",
            "detail-type": "ECS Deployment State Change",
            "source": "aws.ecs",
            "account": "111122223333",
            "time": "2020-05-23T12:31:14Z",
            "region": "us-west-2",
            "resources": ["arn:aws:ecs:us-west-2:111122223333:service/prod/web"],
            "detail": {
                "eventType": "INFO",
                "eventName": "SERVICE_DEPLOYMENT_COMPLETED",
                "deploymentId": "ecs-svc/123",
                "updatedAt": "2020-05-23T11:11:11Z",
                "reason": "ECS deployment deploymentId completed."
            }
        })
        .to_string()
    }

    fn modify_listener(caller: &str) -> String {
        serde_json::json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.elasticloadbalancing",
            "account": "111122223333",
            "time": "2026-12-01T21:04:05Z",
            "region": "eu-west-1",
            "resources": [],
            "detail": {
                "eventVersion": "1.08",
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": "AROAEXAMPLE:alice",
                    "arn": caller,
                    "accountId": "111122223333",
                    "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/Admin"}}
                },
                "eventTime": "2026-12-01T21:04:05Z",
                "eventSource": "elasticloadbalancing.amazonaws.com",
                "eventName": "ModifyListener",
                "awsRegion": "eu-west-1",
                "sourceIPAddress": "203.0.113.7",
                "userAgent": "console.amazonaws.com",
                "requestParameters": {
                    "listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/app/prod-public/50dc6c495c0c9188/f2f7dc8efc522ab2",
                    "defaultActions": [{"type": "redirect", "redirectConfig": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_302"}}]
                },
                "responseElements": {"listeners": [{"listenerArn": "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/app/prod-public/50dc6c495c0c9188/f2f7dc8efc522ab2", "port": 80}]},
                "requestID": "8a3c7b4e-1111-2222-3333-444455556666",
                "eventID": "0d1d0a5b-aaaa-bbbb-cccc-ddddeeeeffff",
                "readOnly": false,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": "111122223333"
            }
        })
        .to_string()
    }

    #[test]
    fn a_deployment_event_names_the_service_by_arn_and_by_cluster_and_name() {
        let e = parse(&deployment_completed()).unwrap();
        assert_eq!(e.identity, "ddca6449-b258-46c0-8653-e0e3aEXAMPLE");
        assert_eq!(e.source, "aws.ecs");
        assert_eq!(e.name.as_deref(), Some("SERVICE_DEPLOYMENT_COMPLETED"));
        assert_eq!(e.time, Some(1_590_237_074));
        assert_eq!(e.caller, None);
        assert_eq!(
            e.lookups,
            [
                "arn:aws:ecs:us-west-2:111122223333:service/prod/web",
                "ecs service prod/web"
            ]
        );
    }

    #[test]
    fn a_cloudtrail_call_names_its_caller_its_event_id_and_every_arn_once() {
        let e = parse(&modify_listener(
            "arn:aws:sts::111122223333:assumed-role/Admin/alice",
        ))
        .unwrap();
        assert_eq!(e.identity, "0d1d0a5b-aaaa-bbbb-cccc-ddddeeeeffff");
        assert_eq!(e.name.as_deref(), Some("ModifyListener"));
        assert_eq!(
            e.caller.as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/Admin/alice")
        );
        assert!(!e.failed);
        assert_eq!(
            e.lookups,
            ["arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/app/prod-public/50dc6c495c0c9188/f2f7dc8efc522ab2"]
        );
    }

    #[test]
    fn a_failed_cloudtrail_call_is_marked_failed() {
        let mut v: Value = serde_json::from_str(&modify_listener("arn:x")).unwrap();
        v["detail"]["errorCode"] = "AccessDenied".into();
        assert!(parse(&v.to_string()).unwrap().failed);
    }

    #[test]
    fn a_stopped_task_names_its_service_through_group_and_cluster() {
        let body = serde_json::json!({
            "version": "0", "id": "9bcdac79-b31f-4d3d-9410-fbd727c29fab",
            "detail-type": "ECS Task State Change", "source": "aws.ecs",
            "account": "111122223333", "time": "2016-12-06T16:41:06Z", "region": "us-east-1",
            "resources": ["arn:aws:ecs:us-east-1:111122223333:task/prod/b99d40b3-5176-4f71-9a52-9dbd6f1cebef"],
            "detail": {
                "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/prod",
                "group": "service:web", "lastStatus": "STOPPED", "desiredStatus": "STOPPED",
                "stoppedReason": "Essential container in task exited",
                "taskArn": "arn:aws:ecs:us-east-1:111122223333:task/prod/b99d40b3-5176-4f71-9a52-9dbd6f1cebef"
            }
        });
        let e = parse(&body.to_string()).unwrap();
        assert!(
            e.lookups.contains(&"ecs service prod/web".to_string()),
            "{e:?}"
        );
    }

    #[test]
    fn apis_that_take_names_are_looked_up_by_name() {
        let call = |source: &str, params: Value| {
            let body = serde_json::json!({
                "id": "1", "source": source, "detail-type": CLOUDTRAIL,
                "time": "2026-12-01T21:04:05Z",
                "detail": {"eventID": "e1", "eventName": "X", "requestParameters": params,
                           "userIdentity": {"arn": "arn:aws:iam::1:user/bob"}}
            });
            parse(&body.to_string()).unwrap().lookups
        };
        assert_eq!(
            call(
                "aws.ecs",
                serde_json::json!({"cluster": "prod", "service": "web", "desiredCount": 3})
            ),
            ["ecs cluster prod", "ecs service prod/web"]
        );
        assert_eq!(
            call(
                "aws.ecs",
                serde_json::json!({"cluster": "arn:aws:ecs:eu-west-1:1:cluster/prod", "service": "web"})
            ),
            [
                "arn:aws:ecs:eu-west-1:1:cluster/prod",
                "ecs cluster prod",
                "ecs service prod/web"
            ]
        );
        assert_eq!(
            call("aws.ecs", serde_json::json!({"service": "web"})),
            ["ecs service default/web"]
        );
        assert_eq!(
            call(
                "aws.ecr",
                serde_json::json!({"repositoryName": "web", "lifecyclePolicyText": "{}"})
            ),
            ["ecr repository web"]
        );
        assert_eq!(
            call(
                "aws.application-autoscaling",
                serde_json::json!({"serviceNamespace": "ecs", "resourceId": "service/prod/web", "scalableDimension": "ecs:service:DesiredCount"})
            ),
            ["ecs service prod/web"]
        );
        assert_eq!(
            call(
                "aws.route53",
                serde_json::json!({"hostedZoneId": "Z0123", "changeBatch": {"changes": [
                {"action": "UPSERT", "resourceRecordSet": {"name": "WWW.example.com.", "type": "A"}}]}})
            ),
            ["route53 record Z0123 www.example.com"]
        );
    }

    /// AWS's documented example of an S3 `Object Created` event (S3 user guide, "EventBridge
    /// event message structure"), with our bucket and key.
    fn object_created(key: &str) -> Value {
        serde_json::json!({
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2021-11-12T00:00:00Z",
            "region": "ca-central-1",
            "resources": ["arn:aws:s3:::specs-bucket"],
            "detail": {
                "version": "0",
                "bucket": {"name": "specs-bucket"},
                "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                           "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "617f08299329d189"},
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "123456789012",
                "source-ip-address": "1.2.3.4",
                "reason": "PutObject"
            }
        })
    }

    #[test]
    fn an_s3_object_event_names_its_bucket_and_key() {
        let e = parse(&object_created("team/specs/service-web.yaml").to_string()).unwrap();
        assert_eq!(e.source, "aws.s3");
        assert_eq!(
            e.object,
            Some(ObjectRef {
                bucket: "specs-bucket".into(),
                key: "team/specs/service-web.yaml".into()
            })
        );
        let mut deleted = object_created("team/specs/service-web.yaml");
        deleted["detail-type"] = "Object Deleted".into();
        deleted["detail"]["reason"] = "DeleteObject".into();
        deleted["detail"]["deletion-type"] = "Permanently Deleted".into();
        assert!(parse(&deleted.to_string()).unwrap().object.is_some());
        // Another S3 event type names no object to re-read.
        let mut tags = object_created("team/specs/service-web.yaml");
        tags["detail-type"] = "Object Tags Added".into();
        assert_eq!(parse(&tags.to_string()).unwrap().object, None);
        let mut keyless = object_created("x");
        keyless["detail"]["object"] = serde_json::json!({});
        assert!(parse(&keyless.to_string())
            .unwrap_err()
            .0
            .contains("detail.object.key"));
    }

    #[test]
    fn bodies_that_are_not_eventbridge_events_are_malformed_with_the_reason() {
        for (body, why) in [
            ("not json", "not JSON"),
            ("[1]", "not a JSON object"),
            (
                r#"{"source":"aws.ecs","detail-type":"x","detail":{}}"#,
                "no `id`",
            ),
            (
                r#"{"id":"1","source":"aws.ecs","detail-type":"x"}"#,
                "no `detail`",
            ),
            (
                r#"{"id":"1","source":"aws.ecs","detail-type":"x","detail":3}"#,
                "`detail` is not an object",
            ),
            (
                r#"{"id":"1","source":"aws.ecs","detail-type":"x","detail":{},"time":"yesterday"}"#,
                "RFC 3339",
            ),
            (
                r#"{"id":"1","source":"aws.ecs","detail-type":"x","detail":{},"resources":"arn"}"#,
                "not a list",
            ),
            (
                r#"{"id":"","source":"aws.ecs","detail-type":"x","detail":{}}"#,
                "non-empty",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.0.contains(why), "{body}: {e}");
        }
    }

    #[test]
    fn the_strings_read_from_one_event_are_bounded() {
        let many: Vec<String> = (0..5000)
            .map(|i| format!("arn:aws:acm:eu-west-1:1:certificate/{i}"))
            .collect();
        let body = serde_json::json!({
            "id": "1", "source": "aws.acm", "detail-type": CLOUDTRAIL,
            "detail": {"requestParameters": {"certificateArns": many}}
        });
        assert_eq!(parse(&body.to_string()).unwrap().lookups.len(), MAX_STRINGS);
    }
}

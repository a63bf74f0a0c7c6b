//! `init --events` and `run --events-queue` against moto: the queue and rules are created and a
//! rerun writes nothing; events put on the default bus with PutEvents, in AWS's documented
//! shapes, reach the queue through moto's EventBridge (checked in the first test) and trigger
//! targeted reconciles; the operator's own writes, duplicates, unowned resources, junk and
//! events of deleted specs trigger nothing and are deleted; an unreadable queue stops nothing.
//!
//! Every run uses `--resync-interval 1h`, so nothing but an event (or a store change) can make
//! a reconcile happen after the start-up wave.
//!
//! Rollouts: with the queue read, a followed rollout is looked at every minute instead of every
//! 15 s, and an `ECS Deployment State Change` event makes the look at once. moto cannot take
//! a rollout from IN_PROGRESS to COMPLETED (a service's deployment is fixed when CreateService
//! makes it: IN_PROGRESS for good when `desiredCount` exceeds `MOTO_ECS_SERVICE_RUNNING`,
//! COMPLETED otherwise; UpdateService never changes it), so the two halves are shown apart: a
//! service held in progress is looked at less often with the queue, and an update the operator
//! is following (Progressing until its next look) becomes Ready on the deployment event.
//!
//! S3 store: the bucket's object events re-read one key, with no listing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ecs_operator::aws::CallMetrics;
use ecs_operator_tests::ecs_fixtures::service;
use ecs_operator_tests::fixtures::{
    attempts, listeners, redirect_with_302, reference_files, Env, EDGE_MOTO_ENV,
};
use ecs_operator_tests::prom::metric_sum;
use ecs_operator_tests::{cli, cli_counted, free_addr, http_get};

const RECONCILES: &str = "ecs_operator_reconciles_total";
const EVENTS: &str = "ecs_operator_events_total";

/// Wait (up to 3 minutes, else panic naming `what`) until `f` answers `Some`.
async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The reference architecture converged, with the events queue of `init --events`.
struct Setup {
    env: Env,
    /// The store the operator runs on (the env's folder, or an S3 store synced from it).
    store: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    eb: aws_sdk_eventbridge::Client,
    /// The test's own caller identity: moto gives the operator the same one.
    own_arn: String,
}

async fn setup() -> Setup {
    let (env, _) = Env::converged(EDGE_MOTO_ENV, reference_files, 4).await;
    let store = env.store();
    setup_events(env, store).await
}

/// `init --events` for `store` in `env`.
async fn setup_events(env: Env, store: String) -> Setup {
    let out = cli(
        &["init", "--store", &store, "--events"],
        Some(env.moto.sdk_config().await),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let queue_url = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("events queue: "))
        .unwrap_or_else(|| panic!("init --events prints the queue URL: {out:?}"))
        .to_string();
    let sdk = env.moto.sdk_config().await;
    let own_arn = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .arn()
        .expect("an ARN")
        .to_string();
    Setup {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        eb: aws_sdk_eventbridge::Client::new(&sdk),
        env,
        store,
        queue_url,
        own_arn,
    }
}

/// `run` in-process, on a task; aborted when dropped.
struct Running {
    task: tokio::task::JoinHandle<ecs_operator_tests::Output>,
    addr: String,
    /// Every AWS call the operator makes.
    calls: CallMetrics,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Running {
    async fn start(s: &Setup, queue_url: &str) -> Running {
        Running::start_with(s, queue_url, &[]).await
    }

    /// [`Running::start`] with more arguments for `run`.
    async fn start_with(s: &Setup, queue_url: &str, extra: &[&str]) -> Running {
        let addr = free_addr();
        let mut args: Vec<String> = [
            "run",
            "--store",
            &s.store,
            "--events-queue",
            queue_url,
            "--resync-interval",
            "1h",
            "--gc-interval",
            "0s",
            "--metrics-addr",
            &addr,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.extend(extra.iter().map(|a| a.to_string()));
        let sdk = s.env.moto.sdk_config().await;
        let calls = CallMetrics::new();
        let counted = calls.clone();
        let task = tokio::spawn(async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli_counted(&args, Some(sdk), Some(counted)).await
        });
        let r = Running { task, addr, calls };
        // The start-up wave: every spec reconciled once, nothing left to run.
        r.wait_idle_with("the start-up wave", |m| {
            metric_sum(m, RECONCILES, &[r#"kind="ClusterSpec""#]) >= 1.0
                && metric_sum(m, RECONCILES, &[r#"kind="ServiceSpec""#]) >= 2.0
        })
        .await;
        r
    }

    fn metrics(&self) -> Option<String> {
        assert!(!self.task.is_finished(), "the operator stopped");
        http_get(&self.addr, "/metrics").map(|(_, body)| body)
    }

    /// Wait until `cond` holds on /metrics and no reconcile runs or waits.
    async fn wait_idle_with(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        wait_for(what, || {
            let m = self.metrics()?;
            let idle = metric_sum(&m, "ecs_operator_running_reconciles", &[]) == 0.0
                && metric_sum(&m, "ecs_operator_queue_depth", &[]) == 0.0;
            (idle && cond(&m)).then_some(m)
        })
        .await
    }

    fn readyz(&self) -> Option<serde_json::Value> {
        let (_, body) = http_get(&self.addr, "/readyz")?;
        serde_json::from_str(&body).ok()
    }
}

fn reconciles(m: &str, kind: &str) -> f64 {
    metric_sum(m, RECONCILES, &[&format!(r#"kind="{kind}""#)])
}

fn events(m: &str, outcome: &str) -> f64 {
    metric_sum(m, EVENTS, &[&format!(r#"outcome="{outcome}""#)])
}

/// A CloudTrail record of an Elastic Load Balancing call, as EventBridge's `detail`
/// ("AWS API Call via CloudTrail"; CloudTrail's record contents for a ModifyListener).
fn cloudtrail_detail(
    event_id: &str,
    event_name: &str,
    caller: &str,
    request: serde_json::Value,
) -> String {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": if caller.contains(":assumed-role/") { "AssumedRole" } else { "IAMUser" },
            "principalId": "AIDAEXAMPLE",
            "arn": caller,
            "accountId": "123456789012",
        },
        "eventTime": ecs_operator::store::now_rfc3339(),
        "eventSource": "elasticloadbalancing.amazonaws.com",
        "eventName": event_name,
        "awsRegion": ecs_operator_tests::REGION,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "console.amazonaws.com",
        "requestParameters": request,
        "responseElements": null,
        "requestID": format!("req-{event_id}"),
        "eventID": event_id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "123456789012",
        "eventCategory": "Management"
    })
    .to_string()
}

/// Put one event of `source` and `detail_type` naming `resources` on the default bus
/// (PutEvents, as the AWS service would through EventBridge); every entry must be accepted.
async fn put_event(s: &Setup, source: &str, detail_type: &str, resources: &[&str], detail: String) {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source(source)
        .detail_type(detail_type)
        .set_resources(Some(resources.iter().map(|r| r.to_string()).collect()))
        .detail(detail)
        .time(aws_sdk_eventbridge::primitives::DateTime::from(
            std::time::SystemTime::now(),
        ))
        .build();
    let out =
        s.eb.put_events()
            .entries(entry)
            .send()
            .await
            .expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0, "{out:?}");
}

/// Put one CloudTrail-shaped ELB event on the default bus.
async fn put_elb_call(s: &Setup, detail: String) {
    put_event(
        s,
        "aws.elasticloadbalancing",
        "AWS API Call via CloudTrail",
        &[],
        detail,
    )
    .await;
}

/// The ARN of the HTTP :80 listener of `prod-public`.
async fn http_listener(env: &Env) -> String {
    listeners(&env.elb, "prod-public")
        .await
        .get(&80)
        .and_then(|l| l.listener_arn())
        .expect("the :80 listener")
        .to_string()
}

/// The redirect status code of a listener's default action (`HTTP_301`...).
async fn redirect_code(env: &Env, listener: &str) -> String {
    let out = env
        .elb
        .describe_listeners()
        .listener_arns(listener)
        .send()
        .await
        .expect("DescribeListeners");
    out.listeners()[0].default_actions()[0]
        .redirect_config()
        .and_then(|r| r.status_code())
        .map(|c| c.as_str().to_string())
        .unwrap_or_default()
}

/// A person's hand edit: the :80 redirect becomes a 302.
async fn drift_listener(env: &Env, listener: &str) {
    redirect_with_302(&env.elb, listener).await;
}

fn modify_listener_request(listener: &str) -> serde_json::Value {
    serde_json::json!({
        "listenerArn": listener,
        "defaultActions": [{"type": "redirect", "redirectConfig": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_302"}}]
    })
}

/// Wait until the queue holds no message (visible or in flight): the listener counts a message
/// when it has handled it and deletes its batch right after, so the count can lead the delete.
async fn drained(s: &Setup, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = queued(s).await;
        if n == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {n} message(s) left in the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Messages still in the queue (visible or in flight).
async fn queued(s: &Setup) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = s
        .sqs
        .get_queue_attributes()
        .queue_url(&s.queue_url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes");
    let attrs = out.attributes().cloned().unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .map(|a| {
        attrs
            .get(a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    })
    .sum()
}

/// A message every run handles as malformed: sent after the events under test, its count
/// shows that they were read (one loop reads the queue in order of arrival batches).
async fn send_sentinel(s: &Setup) {
    s.sqs
        .send_message()
        .queue_url(&s.queue_url)
        .message_body("sentinel: not an EventBridge event")
        .send()
        .await
        .expect("SendMessage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn init_events_creates_an_owned_queue_and_rules_moto_delivers_put_events_and_a_rerun_writes_nothing(
) {
    let s = setup().await;
    // The queue: tagged, with a policy letting EventBridge send from the four rules.
    let tags = s
        .sqs
        .list_queue_tags()
        .queue_url(&s.queue_url)
        .send()
        .await
        .unwrap();
    let tags: BTreeMap<String, String> = tags
        .tags()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    assert_eq!(
        tags.get(ecs_operator::MANAGED_BY_TAG).map(String::as_str),
        Some("ecs-operator")
    );
    assert_eq!(
        tags.get("ecs-operator.io/component").map(String::as_str),
        Some("events")
    );
    let attrs = s
        .sqs
        .get_queue_attributes()
        .queue_url(&s.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::Policy)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::Policy].as_str(),
    )
    .unwrap();
    let statement = &policy["Statement"][0];
    assert_eq!(statement["Principal"]["Service"], "events.amazonaws.com");
    let sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        .as_array()
        .unwrap();
    assert_eq!(sources.len(), 4, "{policy}");
    // The rules: tagged, enabled, targeting the queue.
    let names = ecs_operator::events::setup::names("ecs-operator").unwrap();
    for name in &names.rules {
        let rule = s.eb.describe_rule().name(name).send().await.unwrap();
        assert_eq!(rule.state().map(|s| s.as_str()), Some("ENABLED"), "{name}");
        assert!(
            sources.contains(&serde_json::json!(rule.arn().unwrap())),
            "{name}"
        );
        let tags =
            s.eb.list_tags_for_resource()
                .resource_arn(rule.arn().unwrap())
                .send()
                .await
                .unwrap();
        assert!(
            tags.tags()
                .iter()
                .any(|t| t.key() == ecs_operator::MANAGED_BY_TAG && t.value() == "ecs-operator"),
            "{name}: {tags:?}"
        );
        let targets = s.eb.list_targets_by_rule().rule(name).send().await.unwrap();
        assert_eq!(targets.targets().len(), 1, "{name}");
        assert!(
            targets.targets()[0].arn().ends_with(":ecs-operator-events"),
            "{name}"
        );
    }

    // moto's EventBridge delivers what PutEvents puts on the default bus to the queue, as the
    // EventBridge envelope.
    let listener = http_listener(&s.env).await;
    put_elb_call(
        &s,
        cloudtrail_detail(
            "delivery-check",
            "ModifyListener",
            "arn:aws:iam::123456789012:user/alice",
            modify_listener_request(&listener),
        ),
    )
    .await;
    let got = s
        .sqs
        .receive_message()
        .queue_url(&s.queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 1, "{got:?}");
    let body: serde_json::Value = serde_json::from_str(got.messages()[0].body().unwrap()).unwrap();
    assert_eq!(body["detail-type"], "AWS API Call via CloudTrail");
    assert_eq!(body["source"], "aws.elasticloadbalancing");
    assert_eq!(
        body["detail"]["requestParameters"]["listenerArn"],
        listener.as_str()
    );
    let event = ecs_operator::events::parse::parse(got.messages()[0].body().unwrap()).unwrap();
    assert_eq!(event.identity, "delivery-check");
    assert!(
        event.time.is_some(),
        "moto's envelope carries an RFC 3339 time: {body}"
    );
    // An ECS task that is not a service's is filtered out by the rule (moto matches the
    // pattern's `prefix`), one of a service is delivered.
    for group in ["family:batch", "service:web"] {
        let detail = serde_json::json!({"clusterArn": "arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "group": group, "lastStatus": "STOPPED", "desiredStatus": "STOPPED"});
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.ecs")
            .detail_type("ECS Task State Change")
            .detail(detail.to_string())
            .build();
        s.eb.put_events().entries(entry).send().await.unwrap();
    }
    let got = s
        .sqs
        .receive_message()
        .queue_url(&s.queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let groups: Vec<String> = got
        .messages()
        .iter()
        .filter_map(|m| serde_json::from_str::<serde_json::Value>(m.body()?).ok())
        .filter_map(|b| b["detail"]["group"].as_str().map(str::to_string))
        .collect();
    assert!(groups.contains(&"service:web".to_string()), "{groups:?}");
    assert!(!groups.contains(&"family:batch".to_string()), "{groups:?}");

    // A rerun finds everything as it should be and writes nothing.
    let calls = CallMetrics::new();
    let out = cli_counted(
        &["init", "--store", &s.env.store(), "--events"],
        Some(s.env.moto.sdk_config().await),
        Some(calls.clone()),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("events queue: {}", s.queue_url)),
        "{out:?}"
    );
    let writes: Vec<String> = calls
        .snapshot()
        .into_iter()
        .filter(|(l, _)| ecs_operator::aws::calls::is_mutating(&l.operation))
        .map(|(l, n)| format!("{}/{} x{n}", l.service, l.operation))
        .collect();
    assert!(
        writes.is_empty(),
        "a rerun wrote: {writes:?}\n{}",
        out.stdout
    );

    // A queue of that name that is not this instance's is left alone.
    s.sqs
        .untag_queue()
        .queue_url(&s.queue_url)
        .tag_keys(ecs_operator::MANAGED_BY_TAG)
        .send()
        .await
        .unwrap();
    let out = cli(
        &["init", "--store", &s.env.store(), "--events"],
        Some(s.env.moto.sdk_config().await),
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("not managed by this instance"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_persons_modify_listener_event_reverts_the_drift_with_exactly_one_reconcile_of_its_cluster_spec(
) {
    let s = setup().await;
    let run = Running::start(&s, &s.queue_url).await;
    let before = run.metrics().unwrap();
    let listener = http_listener(&s.env).await;
    drift_listener(&s.env, &listener).await;
    assert_eq!(redirect_code(&s.env, &listener).await, "HTTP_302");
    put_elb_call(
        &s,
        cloudtrail_detail(
            "alice-1",
            "ModifyListener",
            "arn:aws:sts::123456789012:assumed-role/Admin/alice",
            modify_listener_request(&listener),
        ),
    )
    .await;
    let after = run
        .wait_idle_with("the event's reconcile", |m| {
            reconciles(m, "ClusterSpec") > reconciles(&before, "ClusterSpec")
        })
        .await;
    assert_eq!(
        redirect_code(&s.env, &listener).await,
        "HTTP_301",
        "the drift is reverted"
    );
    assert_eq!(events(&after, "matched"), 1.0, "{after}");
    assert!(
        metric_sum(
            &after,
            "ecs_operator_event_reconcile_latency_seconds_count",
            &[]
        ) >= 1.0,
        "{after}"
    );
    // Nothing else follows: after a later message is handled, still one more reconcile of the
    // ClusterSpec and none of the ServiceSpecs.
    send_sentinel(&s).await;
    let settled = run
        .wait_idle_with("the sentinel", |m| events(m, "malformed") == 1.0)
        .await;
    assert_eq!(
        reconciles(&settled, "ClusterSpec"),
        reconciles(&before, "ClusterSpec") + 1.0
    );
    assert_eq!(
        reconciles(&settled, "ServiceSpec"),
        reconciles(&before, "ServiceSpec")
    );
    drained(&s, "handled messages are deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operators_own_write_echoed_back_and_a_hundred_duplicates_trigger_nothing_more() {
    let s = setup().await;
    let run = Running::start(&s, &s.queue_url).await;
    let before = run.metrics().unwrap();
    let listener = http_listener(&s.env).await;
    // The operator's own ModifyListener, as CloudTrail reports it: its caller is the operator.
    put_elb_call(
        &s,
        cloudtrail_detail(
            "own-1",
            "ModifyListener",
            &s.own_arn,
            modify_listener_request(&listener),
        ),
    )
    .await;
    // One person's call, delivered 100 times (EventBridge and SQS deliver at least once).
    for _ in 0..100 {
        put_elb_call(
            &s,
            cloudtrail_detail(
                "bob-1",
                "ModifyListener",
                "arn:aws:iam::123456789012:user/bob",
                modify_listener_request(&listener),
            ),
        )
        .await;
    }
    send_sentinel(&s).await;
    let after = run
        .wait_idle_with("102 messages", |m| {
            events(m, "matched") + events(m, "ignored") + events(m, "malformed") >= 102.0
        })
        .await;
    assert_eq!(events(&after, "matched"), 1.0, "{after}");
    assert_eq!(
        events(&after, "ignored"),
        100.0,
        "the own write and 99 duplicates: {after}"
    );
    assert_eq!(events(&after, "malformed"), 1.0);
    assert_eq!(
        reconciles(&after, "ClusterSpec"),
        reconciles(&before, "ClusterSpec") + 1.0,
        "one reconcile for 100 duplicates, none for the own write"
    );
    assert_eq!(
        reconciles(&after, "ServiceSpec"),
        reconciles(&before, "ServiceSpec")
    );
    drained(&s, "handled messages are deleted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unowned_malformed_and_deleted_spec_events_are_counted_deleted_and_harm_nothing() {
    let s = setup().await;
    let run = Running::start(&s, &s.queue_url).await;
    // The target group of ServiceSpec/admin, from its status record, before the spec leaves.
    let status =
        ecs_operator_tests::status_json(&s.env.store(), &s.env.moto.sdk_config().await).await;
    let admin_tg = status
        .iter()
        .find(|r| r["name"] == "admin")
        .and_then(|r| r["resources"].as_array())
        .and_then(|rs| rs.iter().find(|r| r["type"] == "elbv2:targetgroup"))
        .and_then(|r| r["id"].as_str())
        .expect("admin's target group in its status")
        .to_string();
    std::fs::remove_file(s.env.dir.path().join("service-admin.yaml")).unwrap();
    let record = s
        .env
        .dir
        .path()
        .join(".ecs-operator/status/ServiceSpec/admin.json");
    wait_for("admin's deletion", || (!record.exists()).then_some(())).await;
    let before = run
        .wait_idle_with("idle after the deletion", |_| true)
        .await;

    // A resource no spec owns (a target group made by hand), a deleted spec's target group,
    // and a message that is no event.
    let unowned = s
        .env
        .elb
        .create_target_group()
        .name("by-hand")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&s.env.net.vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
        .send()
        .await
        .unwrap()
        .target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_string();
    for (id, tg) in [("carol-1", &unowned), ("carol-2", &admin_tg)] {
        put_elb_call(
            &s,
            cloudtrail_detail(
                id,
                "ModifyTargetGroup",
                "arn:aws:iam::123456789012:user/carol",
                serde_json::json!({"targetGroupArn": tg, "healthCheckPath": "/x"}),
            ),
        )
        .await;
    }
    send_sentinel(&s).await;
    let after = run
        .wait_idle_with("three messages", |m| {
            events(m, "unmatched") + events(m, "malformed") >= 3.0
        })
        .await;
    assert_eq!(events(&after, "unmatched"), 2.0, "{after}");
    assert_eq!(events(&after, "malformed"), 1.0, "{after}");
    assert_eq!(events(&after, "matched"), 0.0, "{after}");
    assert_eq!(
        reconciles(&after, "ClusterSpec"),
        reconciles(&before, "ClusterSpec")
    );
    assert_eq!(
        reconciles(&after, "ServiceSpec"),
        reconciles(&before, "ServiceSpec")
    );
    drained(&s, "all three are deleted").await;
    let ready = run.readyz().unwrap();
    assert_eq!(ready["eventsQueue"]["up"], true, "{ready}");
    // The unowned target group is untouched.
    let tg = s
        .env
        .elb
        .describe_target_groups()
        .target_group_arns(&unowned)
        .send()
        .await
        .unwrap();
    assert_eq!(tg.target_groups().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unavailable_queue_keeps_the_operator_on_polling_and_shows_in_readyz_and_metrics() {
    let s = setup().await;
    let missing = s.queue_url.replace("ecs-operator-events", "no-such-queue");
    let run = Running::start(&s, &missing).await;
    let ready = wait_for("readyz to report the queue", || {
        let r = run.readyz()?;
        (r["eventsQueue"]["up"] == false
            && r["eventsQueue"]["error"]
                .as_str()?
                .contains("ReceiveMessage"))
        .then_some(r)
    })
    .await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["eventsQueue"]["url"], missing.as_str());
    let m = run.metrics().unwrap();
    assert_eq!(
        metric_sum(&m, "ecs_operator_events_queue_up", &[]),
        0.0,
        "{m}"
    );
    // The store is still watched: a spec change is reconciled.
    let before = reconciles(&m, "ServiceSpec");
    let path = s.env.dir.path().join("service-web.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("desiredCount: 2", "desiredCount: 3")).unwrap();
    // (The rollout to 3 tasks is then followed by requeues, so the runtime is not idle.)
    wait_for("the change's reconcile", || {
        let m = run.metrics()?;
        (reconciles(&m, "ServiceSpec") > before).then_some(())
    })
    .await;
    let svc = service(&s.env.ecs, "web").await;
    assert_eq!(svc.desired_count(), 3);
}

/// The status record of `ServiceSpec/NAME` in the env's folder, once it is written.
fn service_status(s: &Setup, name: &str) -> Option<serde_json::Value> {
    let path = s
        .env
        .dir
        .path()
        .join(format!(".ecs-operator/status/ServiceSpec/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The ARN of the ECS service `prod/NAME`.
async fn service_arn(env: &Env, name: &str) -> String {
    service(&env.ecs, name)
        .await
        .service_arn()
        .expect("a service ARN")
        .to_string()
}

/// Put ECS's `ECS Deployment State Change` event for `service_arn` on the default bus, in the
/// documented shape (EventBridge user guide, "Amazon ECS service deployment state change
/// events": the service in `resources`, `eventName` in `detail`).
async fn put_deployment_event(s: &Setup, service_arn: &str, event_name: &str) {
    let detail = serde_json::json!({
        "eventType": if event_name == "SERVICE_DEPLOYMENT_FAILED" { "ERROR" } else { "INFO" },
        "eventName": event_name,
        "deploymentId": "ecs-svc/0123456789",
        "updatedAt": ecs_operator::store::now_rfc3339(),
        "reason": "ECS deployment ecs-svc/0123456789 completed."
    });
    put_event(
        s,
        "aws.ecs",
        "ECS Deployment State Change",
        &[service_arn],
        detail.to_string(),
    )
    .await;
}

/// The rollout of an update the operator made is followed (Progressing, the next look a minute
/// away while the queue is read); ECS's SERVICE_DEPLOYMENT_COMPLETED event makes that look at
/// once: one reconcile, Ready. What it proves with moto, which completes an update at once (see
/// the module docs): the Ready comes from the event's reconcile, not from the follow-up poll,
/// which was not due yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_completed_event_moves_a_progressing_service_to_ready_in_one_look_without_waiting_for_the_poll(
) {
    let s = setup().await;
    let run = Running::start(&s, &s.queue_url).await;
    let before = run.metrics().unwrap();
    let path = s.env.dir.path().join("service-web.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("desiredCount: 2", "desiredCount: 3")).unwrap();
    let progressing = wait_for("web Progressing after its update", || {
        let m = run.metrics()?;
        let status = service_status(&s, "web")?;
        (reconciles(&m, "ServiceSpec") > reconciles(&before, "ServiceSpec")
            && status["phase"] == "Progressing")
            .then_some(m)
    })
    .await;
    let followed_at = Instant::now();
    let looks_before = attempts(&run.calls, "DescribeServices");
    let arn = service_arn(&s.env, "web").await;
    put_deployment_event(&s, &arn, "SERVICE_DEPLOYMENT_COMPLETED").await;
    let after = run
        .wait_idle_with("web Ready after the event", |m| {
            reconciles(m, "ServiceSpec") > reconciles(&progressing, "ServiceSpec")
        })
        .await;
    let waited = followed_at.elapsed();
    let status = service_status(&s, "web").unwrap();
    assert_eq!(status["phase"], "Ready", "{status}");
    assert_eq!(events(&after, "matched"), 1.0, "{after}");
    assert_eq!(
        reconciles(&after, "ServiceSpec"),
        reconciles(&progressing, "ServiceSpec") + 1.0,
        "one look, the event's"
    );
    // Causality, not a timing goal: the follow-up the update asked for is a minute away, so
    // the reconcile that made web Ready can only be the event's.
    assert!(
        waited < ecs_operator::resources::kinds::ecs_service::ROLLOUT_POLL_WITH_EVENTS,
        "{waited:?}"
    );
    let looks = attempts(&run.calls, "DescribeServices") - looks_before;
    assert!(looks >= 1, "the event's reconcile read the service");
    eprintln!(
        "deployment event: Progressing -> Ready in {:.1} s with {looks} DescribeServices \
         (the follow-up poll was {} s away)",
        waited.as_secs_f64(),
        ecs_operator::resources::kinds::ecs_service::ROLLOUT_POLL_WITH_EVENTS.as_secs()
    );
}

/// One `run` of `window` on `s.store` (with the events queue when `queue` is set), to the end:
/// (DescribeServices attempts, ServiceSpec reconciles).
async fn run_for(s: &Setup, queue: Option<&str>, window: &str) -> (u64, f64) {
    let file = s.env.dir.path().join(format!(
        "metrics-{}.txt",
        if queue.is_some() { "queue" } else { "poll" }
    ));
    let file_arg = file.to_str().unwrap().to_string();
    let mut args = vec![
        "run",
        "--store",
        &s.store,
        "--resync-interval",
        "1h",
        "--gc-interval",
        "0s",
        "--timeout",
        window,
        "--metrics-file",
        &file_arg,
    ];
    if let Some(q) = queue {
        args.extend(["--events-queue", q]);
    }
    let calls = CallMetrics::new();
    let out = cli_counted(
        &args,
        Some(s.env.moto.sdk_config().await),
        Some(calls.clone()),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let m = std::fs::read_to_string(&file).unwrap();
    (
        attempts(&calls, "DescribeServices"),
        reconciles(&m, "ServiceSpec"),
    )
}

/// A service whose rollout stays in progress (moto: `desiredCount` 3 above
/// `MOTO_ECS_SERVICE_RUNNING` 2 at CreateService, so its deployment is IN_PROGRESS for good)
/// is looked at again 15 s after each look without the events queue, a minute after with it:
/// over the same 25 s window, polling makes a follow-up reconcile and its DescribeServices, the
/// queue-backed run none (the event would say when to look; the next test shows it does).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollout_held_in_progress_costs_fewer_describe_services_with_the_events_queue_than_by_polling(
) {
    let env = Env::new(EDGE_MOTO_ENV, |net| {
        reference_files(net)
            .into_iter()
            .map(|(name, text)| {
                if name == "service-admin.yaml" {
                    (name, text.replace("desiredCount: 2", "desiredCount: 3"))
                } else {
                    (name, text)
                }
            })
            .collect()
    })
    .await;
    // Created, updated once (moto drops the deployment configuration at creation), then held;
    // everything else converges.
    let mut last = Default::default();
    for _ in 0..4 {
        last = env.fleet.reconcile_all().await;
    }
    for (key, result) in &last {
        let phase = result.as_ref().map(|r| r.phase);
        let want = if key.name == "admin" {
            ecs_operator::store::Phase::Progressing
        } else {
            ecs_operator::store::Phase::Ready
        };
        assert_eq!(phase.ok(), Some(want), "{key}: {result:?}");
    }
    let held = service(&env.ecs, "admin").await;
    let deployment = &held.deployments()[0];
    assert_eq!(
        deployment.rollout_state().map(|r| r.as_str()),
        Some("IN_PROGRESS"),
        "{deployment:?}"
    );
    let store = env.store();
    let s = setup_events(env, store).await;

    let (polled_looks, polled_reconciles) = run_for(&s, None, "25s").await;
    let status = service_status(&s, "admin").unwrap();
    assert_eq!(status["phase"], "Progressing", "{status}");
    let (evented_looks, evented_reconciles) = run_for(&s, Some(&s.queue_url), "25s").await;
    // The start-up wave reconciles both ServiceSpecs once in either run.
    assert_eq!(
        evented_reconciles, 2.0,
        "no follow-up within 25 s with the queue"
    );
    assert!(
        polled_reconciles >= 3.0,
        "polling looks again after 15 s: {polled_reconciles}"
    );
    assert!(
        evented_looks < polled_looks,
        "DescribeServices: {evented_looks} with the queue, {polled_looks} by polling"
    );
    eprintln!(
        "held rollout, 25 s: {polled_looks} DescribeServices by polling ({polled_reconciles} \
         ServiceSpec reconciles, the first run's parked start included), {evented_looks} with \
         the events queue ({evented_reconciles})"
    );
}

const S3_BUCKET: &str = "events-specs";
const S3_PREFIX: &str = "team/specs";

/// With an S3 store, `init --events` turns on the bucket's EventBridge notifications (keeping
/// the queue notification already there) and adds the store's rule; with `--poll-interval
/// 10m`, a CI sync of a changed spec is reconciled on its object event (moto's own S3 ->
/// EventBridge -> SQS delivery of the sync's PutObject): the one key is re-read with GetObject
/// and no ListObjectsV2 happens between the start-up listing and the reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_store_change_synced_by_ci_is_reconciled_on_its_object_event_without_a_listing() {
    let (env, _) = Env::converged(EDGE_MOTO_ENV, reference_files, 4).await;
    let url = format!("s3://{S3_BUCKET}/{S3_PREFIX}");
    let sdk = env.moto.sdk_config().await;
    let out = cli(&["init", "--store", &url], Some(sdk.clone())).await;
    assert_eq!(out.code, 0, "{out:?}");
    // Someone else's notification on the bucket: a queue told of every object created.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let audit = sqs
        .create_queue()
        .queue_name("ci-audit")
        .send()
        .await
        .unwrap();
    let audit_arn = sqs
        .get_queue_attributes()
        .queue_url(audit.queue_url().unwrap())
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let s3 = env.moto.s3().await;
    s3.put_bucket_notification_configuration()
        .bucket(S3_BUCKET)
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .queue_configurations(
                    aws_sdk_s3::types::QueueConfiguration::builder()
                        .id("ci-audit")
                        .queue_arn(&audit_arn)
                        .events(aws_sdk_s3::types::Event::S3ObjectCreated)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let s = setup_events(env, url.clone()).await;
    let kept = |n: &aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput| {
        n.queue_configurations().len() == 1 && n.queue_configurations()[0].queue_arn() == audit_arn
    };
    let notifications = s3
        .get_bucket_notification_configuration()
        .bucket(S3_BUCKET)
        .send()
        .await
        .unwrap();
    assert!(
        kept(&notifications),
        "the other notification is kept: {notifications:?}"
    );
    let names = ecs_operator::events::setup::names("ecs-operator").unwrap();
    let rule =
        s.eb.describe_rule()
            .name(&names.s3_rule)
            .send()
            .await
            .unwrap();
    let pattern: serde_json::Value = serde_json::from_str(rule.event_pattern().unwrap()).unwrap();
    assert_eq!(
        pattern,
        ecs_operator::events::setup::s3_rule(S3_BUCKET, &format!("{S3_PREFIX}/")).0
    );
    let targets =
        s.eb.list_targets_by_rule()
            .rule(&names.s3_rule)
            .send()
            .await
            .unwrap();
    assert!(targets.targets()[0].arn().ends_with(":ecs-operator-events"));
    // moto's GetBucketNotificationConfiguration leaves EventBridgeConfiguration out, so a rerun
    // writes the configuration again (merged: the other notification is still kept).
    let again = cli(&["init", "--store", &url, "--events"], Some(sdk.clone())).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again
            .stdout
            .contains(&format!("s3 bucket {S3_BUCKET} EventBridge notifications")),
        "{again:?}"
    );
    let notifications = s3
        .get_bucket_notification_configuration()
        .bucket(S3_BUCKET)
        .send()
        .await
        .unwrap();
    assert!(kept(&notifications), "{notifications:?}");

    // CI's first sync: moto delivers the bucket's EventBridge notifications of the three
    // objects to the queue through the store's rule (so they are on), in S3's documented shape.
    let dir = s.env.dir.path().to_str().unwrap().to_string();
    let out = cli(&["sync", &dir, "--store", &url], Some(sdk.clone())).await;
    assert_eq!(out.code, 0, "{out:?}");
    let got = s
        .sqs
        .receive_message()
        .queue_url(&s.queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .unwrap();
    let mut keys: Vec<String> = Vec::new();
    for m in got.messages() {
        let event = ecs_operator::events::parse::parse(m.body().unwrap()).unwrap();
        assert_eq!(event.source, "aws.s3");
        assert_eq!(event.detail_type, "Object Created");
        let object = event.object.expect("an object event names its object");
        assert_eq!(object.bucket, S3_BUCKET);
        keys.push(object.key);
        s.sqs
            .delete_message()
            .queue_url(&s.queue_url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .unwrap();
    }
    keys.sort();
    assert_eq!(
        keys,
        [
            "cluster-prod.yaml",
            "service-admin.yaml",
            "service-web.yaml"
        ]
        .map(|k| format!("{S3_PREFIX}/{k}")),
        "one notification per synced object, none for the sync record beside the prefix"
    );

    let run = Running::start_with(&s, &s.queue_url, &["--poll-interval", "10m"]).await;
    let before = run.metrics().unwrap();
    let lists = attempts(&run.calls, "ListObjectsV2");

    // CI syncs a change to web.
    let path = s.env.dir.path().join("service-web.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("desiredCount: 2", "desiredCount: 3")).unwrap();
    let synced_at = Instant::now();
    let out = cli(&["sync", &dir, "--store", &url], Some(sdk.clone())).await;
    assert_eq!(out.code, 0, "{out:?}");
    let after = wait_for("web's reconcile", || {
        let m = run.metrics()?;
        (reconciles(&m, "ServiceSpec") > reconciles(&before, "ServiceSpec")).then_some(m)
    })
    .await;
    let took = synced_at.elapsed();
    assert_eq!(
        attempts(&run.calls, "ListObjectsV2"),
        lists,
        "no listing between the start and the change's reconcile"
    );
    assert_eq!(
        metric_sum(
            &after,
            EVENTS,
            &[r#"source="aws.s3""#, r#"outcome="matched""#]
        ),
        1.0,
        "{after}"
    );
    let svc = service(&s.env.ecs, "web").await;
    // The new content was read (it asks for 3 tasks), and not by a listing: by the key's GetObject.
    assert_eq!(svc.desired_count(), 3);
    eprintln!(
        "S3 store, --poll-interval 10m: sync -> reconcile done in {:.1} s, {} ListObjectsV2 \
         between",
        took.as_secs_f64(),
        attempts(&run.calls, "ListObjectsV2") - lists,
    );
}

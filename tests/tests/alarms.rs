//! Logs, alarms and notifications against moto (issue 14): the reference architecture with a
//! log group, an error metric filter, an owned SNS topic with an email subscription and every
//! service and load-balancer alarm converges from empty with every field as the spec says
//! (read back with the SDK clients), then makes no write; a threshold and a retention changed
//! by hand are put back by the next reconcile; an unowned log group or alarm with the spec's
//! name fails only that spec until it adopts; removing the spec deletes its alarms, filter,
//! topic and subscriptions, keeps (releases) its log group unless `logs.deletionPolicy` is
//! `Delete`, and leaves everything unowned alone. A ClusterSpec's own Auto Scaling group is
//! created with every field as the spec says, kept at its size limits (the desired capacity is
//! not the operator's), adopted only by annotation, and on deletion drained to zero and deleted
//! once empty, never terminating a protected instance.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_cloudwatch::types::{ComparisonOperator, MetricAlarm, Statistic};
use ecs_operator::reconcile::{Deletion, ReconcileInput, Reconciler, Report};
use ecs_operator::spec::SpecKey;
use ecs_operator::store::status::SpecStatus;
use ecs_operator::store::Phase;
use ecs_operator_tests::ecs_fixtures::asg_provider;
use ecs_operator_tests::fixtures::{
    load_balancer_arn, load_specs, reference_files, target_group, write_specs, Env as Base,
    SpecFile, EDGE_MOTO_ENV, MANAGED_BY_TAG as MANAGED_BY, OWNER_TAG as OWNER,
    RELEASED_TAG as RELEASED,
};

const WEB: &str = "ServiceSpec/web";
const ADMIN: &str = "ServiceSpec/admin";
const PROD: &str = "ClusterSpec/prod";
const POLICY_TAG: &str = "ecs-operator.io/deletion-policy";

const WEB_ALARMS: [&str; 5] = [
    "prod-web-http5xxPercent",
    "prod-web-latencyP99Seconds",
    "prod-web-cpuPercent",
    "prod-web-memoryPercent",
    "prod-web-logErrors",
];
const LB_ALARMS: [&str; 2] = [
    "prod-prod-public-elb5xxCount",
    "prod-prod-public-rejectedConnections",
];

/// The reference architecture with logs and alarms: `web` gets a log group with retention and
/// an error pattern (`logs.deletionPolicy: log_policy`) and all five alarms notifying an email;
/// `admin` a CPU alarm notifying `admin_notify` (a `notify` value; empty: an owned topic without
/// subscriptions); the load balancer its two alarms.
fn files(
    log_policy: &str,
    admin_notify: &str,
) -> impl Fn(&ecs_operator_tests::fixtures::Network) -> Vec<SpecFile> {
    let (log_policy, admin_notify) = (log_policy.to_string(), admin_notify.to_string());
    move |net| {
        reference_files(net)
            .into_iter()
            .map(|(f, t)| {
                let t = match f.as_str() {
                    "cluster-prod.yaml" => t.replace(
                        "  deletionPolicy: Retain\n",
                        "      alarms:\n        elb5xxCount: {threshold: 10, periods: 1}\n        rejectedConnections: {threshold: 1, periods: 2}\n  deletionPolicy: Retain\n",
                    ),
                    "service-web.yaml" => format!(
                        "{}  logs: {{retentionDays: 30, errorPattern: \"?ERROR ?Error\", deletionPolicy: {log_policy}}}\n  alarms:\n    notify: {{emails: [ops@example.com]}}\n    http5xxPercent: {{threshold: 1, periods: 3}}\n    latencyP99Seconds: {{threshold: 2, periods: 3}}\n    cpuPercent: {{threshold: 85, periods: 5}}\n    memoryPercent: {{threshold: 90, periods: 5}}\n    logErrors: {{threshold: 1, periods: 1}}\n",
                        t.replace(
                            "    image: trust-estate-server:prod-3f2a1c9\n",
                            "    image: trust-estate-server:prod-3f2a1c9\n    logGroup: /ecs/web\n",
                        )
                    ),
                    "service-admin.yaml" if admin_notify.is_empty() => {
                        format!("{t}  alarms:\n    cpuPercent: {{threshold: 80, periods: 2}}\n")
                    }
                    "service-admin.yaml" => format!(
                        "{t}  alarms:\n    notify: {admin_notify}\n    cpuPercent: {{threshold: 80, periods: 2}}\n"
                    ),
                    _ => t,
                };
                (f, t)
            })
            .collect()
    }
}

/// The shared setup with the SDK clients of the new services.
struct Env {
    base: Base,
    cw: aws_sdk_cloudwatch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    sns: aws_sdk_sns::Client,
    asg: aws_sdk_autoscaling::Client,
}

impl std::ops::Deref for Env {
    type Target = Base;
    fn deref(&self) -> &Base {
        &self.base
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Base {
        &mut self.base
    }
}

impl Env {
    async fn new(
        files: impl FnOnce(&ecs_operator_tests::fixtures::Network) -> Vec<SpecFile>,
    ) -> Env {
        let base = Base::new(EDGE_MOTO_ENV, files).await;
        let sdk = base.moto.sdk_config().await;
        Env {
            cw: aws_sdk_cloudwatch::Client::new(&sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            asg: aws_sdk_autoscaling::Client::new(&sdk),
            base,
        }
    }

    async fn converged(
        files: impl FnOnce(&ecs_operator_tests::fixtures::Network) -> Vec<SpecFile>,
    ) -> (Env, BTreeMap<String, Report>) {
        let env = Env::new(files).await;
        let reports = env
            .fleet
            .converge(12)
            .await
            .into_iter()
            .map(|(k, r)| (k.to_string(), r))
            .collect();
        (env, reports)
    }

    async fn alarms(&self, names: &[&str]) -> BTreeMap<String, MetricAlarm> {
        self.cw
            .describe_alarms()
            .set_alarm_names(Some(names.iter().map(|n| n.to_string()).collect()))
            .send()
            .await
            .expect("DescribeAlarms answers")
            .metric_alarms()
            .iter()
            .map(|a| (a.alarm_name().unwrap().to_string(), a.clone()))
            .collect()
    }

    async fn alarm_tags(&self, arn: &str) -> BTreeMap<String, String> {
        self.cw
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource answers")
            .tags()
            .iter()
            .map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string()))
            .collect()
    }

    /// The log group `name`: its ARN (without `:*`) and retention; `None` when absent.
    async fn log_group(&self, name: &str) -> Option<(String, Option<i32>)> {
        self.logs
            .describe_log_groups()
            .log_group_name_prefix(name)
            .send()
            .await
            .expect("DescribeLogGroups answers")
            .log_groups()
            .iter()
            .find(|g| g.log_group_name() == Some(name))
            .map(|g| {
                (
                    g.arn().unwrap().trim_end_matches(":*").to_string(),
                    g.retention_in_days(),
                )
            })
    }

    async fn log_tags(&self, arn: &str) -> BTreeMap<String, String> {
        self.logs
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource answers")
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    async fn topics(&self) -> BTreeSet<String> {
        self.sns
            .list_topics()
            .send()
            .await
            .expect("ListTopics answers")
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn().map(str::to_string))
            .collect()
    }

    async fn topic_tags(&self, arn: &str) -> BTreeMap<String, String> {
        self.sns
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .expect("ListTagsForResource answers")
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }

    async fn topic(&self, name: &str) -> Option<String> {
        self.topics()
            .await
            .into_iter()
            .find(|a| a.ends_with(&format!(":{name}")))
    }

    /// Put a CloudWatch alarm `name` by hand, as someone other than the operator would: ECS
    /// `CPUUtilization`, averaged over `period` seconds, one evaluation period, compared with
    /// `threshold` by `op`.
    async fn put_cpu_alarm(&self, name: &str, period: i32, threshold: f64, op: ComparisonOperator) {
        self.cw
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("AWS/ECS")
            .metric_name("CPUUtilization")
            .statistic(Statistic::Average)
            .period(period)
            .evaluation_periods(1)
            .threshold(threshold)
            .comparison_operator(op)
            .send()
            .await
            .expect("PutMetricAlarm answers");
    }

    /// `key` reconciled until Ready (at most 3 times).
    async fn ready(&self, key: &str) {
        let mut last = None;
        for _ in 0..3 {
            match self.fleet.reconcile(key).await {
                Ok(r) if r.phase == Phase::Ready => return,
                other => last = Some(format!("{other:?}")),
            }
        }
        panic!("{key} is not Ready: {last:?}");
    }

    /// Reload the specs after rewriting `file`.
    fn rewrite(&mut self, file: &str, edit: impl Fn(String) -> String) {
        let path = self.dir.path().join(file);
        let text = edit(std::fs::read_to_string(&path).unwrap());
        write_specs(self.dir.path(), &[(file, text)]);
        self.fleet.specs = load_specs(self.dir.path());
    }

    /// The error of reconciling `key` (at most 4 times, until it says "is not owned"); panics
    /// when a reconcile succeeds.
    async fn failure_until_not_owned(&self, key: &str) -> String {
        let mut last = String::new();
        for _ in 0..4 {
            match self.fleet.reconcile(key).await {
                Err(e) => last = e.to_string(),
                Ok(r) => panic!("{key} should fail, got {r:?}"),
            }
            if last.contains("is not owned") {
                break;
            }
        }
        last
    }

    /// Rewrite `file` (a spec with `labels: {env: prod}`) with the adopt annotation.
    fn annotate_adopt(&mut self, file: &str) {
        self.rewrite(file, |t| {
            t.replace(
                "labels: {env: prod}}",
                "labels: {env: prod}, annotations: {ecs-operator.io/adopt: \"true\"}}",
            )
        });
    }

    /// Remove `key` from the store and run its deletion (ledger: `resources`) until Deleted.
    async fn delete(&mut self, key: &str, resources: &[ecs_operator::store::status::ResourceRef]) {
        let k = SpecKey::parse(key).unwrap();
        let last = self.fleet.specs.remove(&k);
        self.fleet.delete_until_deleted(&k, last, resources).await;
    }
}

fn ours(tags: &BTreeMap<String, String>, owner: &str) -> bool {
    tags.get(MANAGED_BY).map(String::as_str) == Some("ecs-operator")
        && tags.get(OWNER).map(String::as_str) == Some(owner)
}

fn dims(a: &MetricAlarm) -> BTreeMap<String, String> {
    a.dimensions()
        .iter()
        .map(|d| {
            (
                d.name().unwrap().to_string(),
                d.value().unwrap().to_string(),
            )
        })
        .collect()
}

/// The fields every alarm shares: threshold, periods (= datapoints), comparison, actions,
/// missing data.
fn check_common(a: &MetricAlarm, threshold: f64, periods: i32, topic: &str) {
    let name = a.alarm_name().unwrap();
    assert_eq!(a.threshold(), Some(threshold), "{name}");
    assert_eq!(a.evaluation_periods(), Some(periods), "{name}");
    assert_eq!(a.datapoints_to_alarm(), Some(periods), "{name}");
    assert_eq!(
        a.comparison_operator(),
        Some(&ComparisonOperator::GreaterThanThreshold),
        "{name}"
    );
    assert_eq!(a.alarm_actions(), [topic.to_string()], "{name}");
    assert_eq!(a.ok_actions(), [topic.to_string()], "{name}");
    assert_eq!(a.treat_missing_data(), Some("notBreaching"), "{name}");
    assert_eq!(a.actions_enabled(), Some(true), "{name}");
}

/// `Sum|Average|p99 namespace/name per period` of a single-metric alarm.
fn single(a: &MetricAlarm) -> (String, String, String, i32) {
    let stat = a
        .extended_statistic()
        .map(str::to_string)
        .or_else(|| a.statistic().map(|s| s.as_str().to_string()))
        .unwrap_or_default();
    (
        stat,
        a.namespace().unwrap_or_default().to_string(),
        a.metric_name().unwrap_or_default().to_string(),
        a.period().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_alarms_and_notifications_converge_from_empty_as_the_spec_says_then_make_no_write() {
    let (env, reports) = Env::converged(files("Retain", "")).await;

    // Log group: retention, ownership and its own deletion policy.
    let (group_arn, retention) = env
        .log_group("/ecs/web")
        .await
        .expect("the log group exists");
    assert_eq!(retention, Some(30));
    let tags = env.log_tags(&group_arn).await;
    assert!(ours(&tags, WEB), "{tags:?}");
    assert_eq!(tags.get(POLICY_TAG).map(String::as_str), Some("Retain"));

    // Metric filter: the pattern and the metric it counts.
    let filters = env
        .logs
        .describe_metric_filters()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    let f = &filters.metric_filters()[0];
    assert_eq!(filters.metric_filters().len(), 1);
    assert_eq!(f.filter_name(), Some("web-errors"));
    assert_eq!(f.filter_pattern(), Some("?ERROR ?Error"));
    let t = &f.metric_transformations()[0];
    assert_eq!(
        (t.metric_namespace(), t.metric_name(), t.metric_value()),
        ("ecs-operator/logs", "prod-web-errors", "1")
    );
    assert_eq!(t.default_value(), Some(0.0));

    // Topic (owned) and the email subscription.
    let topic = env.topic("prod-web-alarms").await.expect("web's topic");
    let tags = env.topic_tags(&topic).await;
    assert!(ours(&tags, WEB), "{tags:?}");
    let subs = env
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&topic)
        .send()
        .await
        .unwrap();
    let emails: Vec<(&str, &str)> = subs
        .subscriptions()
        .iter()
        .map(|s| (s.protocol().unwrap(), s.endpoint().unwrap()))
        .collect();
    assert_eq!(emails, [("email", "ops@example.com")]);
    let web = &reports[WEB];

    // The service's alarms, field by field.
    let lb_arn = load_balancer_arn(&env.elb, "prod-public").await;
    let lb_dim = lb_arn.split_once(":loadbalancer/").unwrap().1.to_string();
    let tg = target_group(&env.elb, "web").await;
    let tg_arn = tg.target_group_arn().unwrap().to_string();
    let tg_dim = tg_arn.rsplit_once(':').unwrap().1.to_string();
    let alarms = env.alarms(&WEB_ALARMS).await;
    assert_eq!(alarms.len(), 5, "{:?}", alarms.keys());
    for a in alarms.values() {
        let tags = env.alarm_tags(a.alarm_arn().unwrap()).await;
        assert!(ours(&tags, WEB), "{} {tags:?}", a.alarm_name().unwrap());
    }
    let http = &alarms["prod-web-http5xxPercent"];
    check_common(http, 1.0, 3, &topic);
    let queries = http.metrics();
    assert_eq!(queries.len(), 3);
    let by_id: BTreeMap<&str, _> = queries.iter().map(|q| (q.id().unwrap(), q)).collect();
    assert_eq!(by_id["e1"].expression(), Some("100 * FILL(m1, 0) / m2"));
    assert_eq!(by_id["e1"].return_data(), Some(true));
    for (id, metric) in [("m1", "HTTPCode_Target_5XX_Count"), ("m2", "RequestCount")] {
        let stat = by_id[id].metric_stat().unwrap();
        let m = stat.metric().unwrap();
        assert_eq!(
            (m.namespace(), m.metric_name()),
            (Some("AWS/ApplicationELB"), Some(metric))
        );
        assert_eq!((stat.stat(), stat.period()), (Some("Sum"), Some(60)));
        let d: BTreeMap<&str, &str> = m
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap(), d.value().unwrap()))
            .collect();
        assert_eq!(
            d,
            BTreeMap::from([
                ("LoadBalancer", lb_dim.as_str()),
                ("TargetGroup", tg_dim.as_str())
            ])
        );
        assert_eq!(by_id[id].return_data(), Some(false));
    }
    let latency = &alarms["prod-web-latencyP99Seconds"];
    check_common(latency, 2.0, 3, &topic);
    assert_eq!(
        single(latency),
        (
            "p99".into(),
            "AWS/ApplicationELB".into(),
            "TargetResponseTime".into(),
            60
        )
    );
    assert_eq!(
        dims(latency),
        BTreeMap::from([
            ("LoadBalancer".into(), lb_dim.clone()),
            ("TargetGroup".into(), tg_dim)
        ])
    );
    let ecs_dims = BTreeMap::from([
        ("ClusterName".to_string(), "prod".to_string()),
        ("ServiceName".to_string(), "web".to_string()),
    ]);
    for (name, metric, threshold) in [
        ("prod-web-cpuPercent", "CPUUtilization", 85.0),
        ("prod-web-memoryPercent", "MemoryUtilization", 90.0),
    ] {
        let a = &alarms[name];
        check_common(a, threshold, 5, &topic);
        assert_eq!(
            single(a),
            ("Average".into(), "AWS/ECS".into(), metric.into(), 60)
        );
        assert_eq!(a.statistic(), Some(&Statistic::Average));
        assert_eq!(dims(a), ecs_dims);
    }
    let errors = &alarms["prod-web-logErrors"];
    check_common(errors, 1.0, 1, &topic);
    assert_eq!(
        single(errors),
        (
            "Sum".into(),
            "ecs-operator/logs".into(),
            "prod-web-errors".into(),
            60
        )
    );

    // admin: an owned topic without subscriptions, one alarm.
    let admin_topic = env.topic("prod-admin-alarms").await.expect("admin's topic");
    let admin = env
        .alarms(&["prod-admin-cpuPercent", "prod-admin-memoryPercent"])
        .await;
    assert_eq!(admin.len(), 1);
    check_common(&admin["prod-admin-cpuPercent"], 80.0, 2, &admin_topic);

    // The load balancer's alarms.
    let lb_topic = env
        .topic("prod-prod-public-lb-alarms")
        .await
        .expect("the LB's topic");
    let lb_alarms = env.alarms(&LB_ALARMS).await;
    for (name, metric, threshold, periods) in [
        (
            "prod-prod-public-elb5xxCount",
            "HTTPCode_ELB_5XX_Count",
            10.0,
            1,
        ),
        (
            "prod-prod-public-rejectedConnections",
            "RejectedConnectionCount",
            1.0,
            2,
        ),
    ] {
        let a = &lb_alarms[name];
        check_common(a, threshold, periods, &lb_topic);
        assert_eq!(
            single(a),
            ("Sum".into(), "AWS/ApplicationELB".into(), metric.into(), 60)
        );
        assert_eq!(
            dims(a),
            BTreeMap::from([("LoadBalancer".into(), lb_dim.clone())])
        );
        assert!(ours(&env.alarm_tags(a.alarm_arn().unwrap()).await, PROD));
    }

    // Status ledgers list every new resource.
    let ledger: BTreeSet<(&str, &str)> = web
        .resources
        .iter()
        .map(|r| (r.resource_type.as_str(), r.id.as_str()))
        .collect();
    assert!(
        ledger.contains(&("logs:log-group", "/ecs/web")),
        "{ledger:?}"
    );
    assert!(
        ledger.contains(&("logs:metric-filter", "/ecs/web:web-errors")),
        "{ledger:?}"
    );
    assert!(
        ledger.contains(&("sns:topic", topic.as_str())),
        "{ledger:?}"
    );
    let sub_id = format!("{topic}|ops@example.com");
    assert!(
        ledger.contains(&("sns:subscription", sub_id.as_str())),
        "{ledger:?}"
    );
    for a in WEB_ALARMS {
        assert!(ledger.contains(&("cloudwatch:alarm", a)), "{ledger:?}");
    }

    // Converged: a second reconcile of every spec makes no mutating call.
    let before = env.fleet.calls.snapshot();
    let mut again = BTreeMap::new();
    for (k, r) in env.fleet.reconcile_all().await {
        let r = r.expect("a report");
        assert_eq!(r.phase, Phase::Ready, "{k}");
        again.insert(k.to_string(), r);
    }
    let writes = env.fleet.mutations_since(&before);
    assert!(writes.is_empty(), "writes after convergence: {writes:?}");
    let notifications = again[WEB]
        .conditions
        .iter()
        .find(|c| c.condition_type == "Notifications")
        .expect("a Notifications condition");
    // moto confirms email subscriptions at once (README, the moto quirks of this suite).
    assert_eq!(
        (notifications.status.as_str(), notifications.reason.as_str()),
        ("True", "Subscribed"),
        "{notifications:?}"
    );
    // The reads are batched: one DescribeAlarms per spec (or load balancer), one
    // DescribeLogGroups per log group.
    let reads: BTreeMap<String, u64> = env
        .fleet
        .calls
        .snapshot()
        .into_iter()
        .filter(|(l, _)| l.operation == "DescribeAlarms" || l.operation == "DescribeLogGroups")
        .map(|(l, n)| {
            let was = before.get(&l).copied().unwrap_or(0);
            (l.operation.clone(), n - was)
        })
        .fold(BTreeMap::new(), |mut m, (op, n)| {
            *m.entry(op).or_default() += n;
            m
        });
    assert_eq!(reads.get("DescribeAlarms"), Some(&3), "{reads:?}");
    assert_eq!(reads.get("DescribeLogGroups"), Some(&1), "{reads:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_threshold_and_a_retention_changed_by_hand_are_put_back_by_the_next_reconcile() {
    let (env, _) = Env::converged(files("Retain", "")).await;
    env.put_cpu_alarm(
        "prod-web-cpuPercent",
        60,
        50.0,
        ComparisonOperator::GreaterThanOrEqualToThreshold,
    )
    .await;
    env.logs
        .delete_retention_policy()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    assert_eq!(env.log_group("/ecs/web").await.unwrap().1, None);

    let diff: Vec<String> = env
        .fleet
        .diff(WEB)
        .await
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(
        diff.contains(&"~ log group /ecs/web retention: never expire -> 30 days".to_string()),
        "{diff:?}"
    );
    assert!(
        diff.iter()
            .any(|c| c.starts_with("~ cloudwatch alarm prod-web-cpuPercent")
                && c.contains("threshold: 50 -> 85")
                && c.contains("periods: 1 -> 5")),
        "{diff:?}"
    );

    env.ready(WEB).await;
    assert_eq!(env.log_group("/ecs/web").await.unwrap().1, Some(30));
    let topic = env.topic("prod-web-alarms").await.unwrap();
    let cpu = &env.alarms(&["prod-web-cpuPercent"]).await["prod-web-cpuPercent"];
    check_common(cpu, 85.0, 5, &topic);
    let before = env.fleet.calls.snapshot();
    env.ready(WEB).await;
    let writes = env.fleet.mutations_since(&before);
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unowned_log_group_or_alarm_with_the_spec_s_name_fails_only_that_spec_until_it_adopts() {
    let mut env = Env::new(files("Retain", "")).await;
    env.logs
        .create_log_group()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    env.put_cpu_alarm(
        "prod-admin-cpuPercent",
        300,
        99.0,
        ComparisonOperator::GreaterThanThreshold,
    )
    .await;
    env.ready(PROD).await;
    for (key, resource) in [
        (WEB, "log group /ecs/web"),
        (ADMIN, "cloudwatch alarm prod-admin-cpuPercent"),
    ] {
        let last = env.failure_until_not_owned(key).await;
        assert!(
            last.contains(&format!(
                "{resource} exists and is not owned by this operator"
            )) && last.contains("ecs-operator.io/adopt"),
            "{key}: {last}"
        );
    }
    // Nothing was changed on them, and the cluster is unaffected.
    let (group_arn, retention) = env.log_group("/ecs/web").await.unwrap();
    assert_eq!(retention, None);
    assert!(env.log_tags(&group_arn).await.is_empty());
    let cpu = &env.alarms(&["prod-admin-cpuPercent"]).await["prod-admin-cpuPercent"];
    assert_eq!(cpu.threshold(), Some(99.0));
    env.ready(PROD).await;

    // With the adopt annotation, both are tagged and managed.
    env.annotate_adopt("service-web.yaml");
    env.annotate_adopt("service-admin.yaml");
    env.fleet.converge(12).await;
    let tags = env.log_tags(&group_arn).await;
    assert!(ours(&tags, WEB), "{tags:?}");
    assert_eq!(env.log_group("/ecs/web").await.unwrap().1, Some(30));
    let cpu = &env.alarms(&["prod-admin-cpuPercent"]).await["prod-admin-cpuPercent"];
    assert!(ours(&env.alarm_tags(cpu.alarm_arn().unwrap()).await, ADMIN));
    let topic = env.topic("prod-admin-alarms").await.unwrap();
    check_common(cpu, 80.0, 2, &topic);
    assert_eq!(cpu.period(), Some(60));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unowned_topic_with_the_alarm_topic_s_name_fails_only_that_spec_until_it_adopts() {
    let mut env = Env::new(files("Retain", "")).await;
    let theirs = env
        .sns
        .create_topic()
        .name("prod-admin-alarms")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    env.ready(PROD).await;
    let last = env.failure_until_not_owned(ADMIN).await;
    assert!(
        last.contains("sns topic prod-admin-alarms exists and is not owned by this operator")
            && last.contains("ecs-operator.io/adopt"),
        "{last}"
    );
    assert!(
        env.topic_tags(&theirs).await.is_empty(),
        "nothing was written on it"
    );
    assert!(
        env.alarms(&["prod-admin-cpuPercent"]).await.is_empty(),
        "no alarm points at a topic the spec does not own"
    );

    env.annotate_adopt("service-admin.yaml");
    env.fleet.converge(12).await;
    let tags = env.topic_tags(&theirs).await;
    assert!(ours(&tags, ADMIN), "{tags:?}");
    let cpu = &env.alarms(&["prod-admin-cpuPercent"]).await["prod-admin-cpuPercent"];
    check_common(cpu, 80.0, 2, &theirs);
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_the_spec_deletes_alarms_filter_topic_and_subscriptions_and_keeps_the_log_group() {
    let (mut env, reports) = Env::converged(files("Retain", "")).await;
    // Unowned neighbours that must survive: an alarm and a log group of someone else.
    env.put_cpu_alarm(
        "someone-elses-alarm",
        60,
        1.0,
        ComparisonOperator::GreaterThanThreshold,
    )
    .await;
    env.logs
        .create_log_group()
        .log_group_name("/ecs/web-other")
        .send()
        .await
        .unwrap();
    let topic = env.topic("prod-web-alarms").await.unwrap();

    env.delete(WEB, &reports[WEB].resources).await;

    assert!(env.alarms(&WEB_ALARMS).await.is_empty());
    assert!(
        env.topic("prod-web-alarms").await.is_none(),
        "{topic} is deleted"
    );
    let filters = env
        .logs
        .describe_metric_filters()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    assert!(filters.metric_filters().is_empty());
    // The log group is kept, released.
    let (arn, retention) = env
        .log_group("/ecs/web")
        .await
        .expect("the log group is kept");
    assert_eq!(retention, Some(30));
    let tags = env.log_tags(&arn).await;
    assert_eq!(
        tags.get(RELEASED).map(String::as_str),
        Some(WEB),
        "{tags:?}"
    );
    assert!(
        !tags.contains_key(MANAGED_BY)
            && !tags.contains_key(OWNER)
            && !tags.contains_key(POLICY_TAG)
    );
    // Nothing unowned, nor any other spec's, was touched.
    assert_eq!(env.alarms(&["someone-elses-alarm"]).await.len(), 1);
    assert!(env.log_group("/ecs/web-other").await.is_some());
    assert_eq!(env.alarms(&["prod-admin-cpuPercent"]).await.len(), 1);
    assert_eq!(env.alarms(&LB_ALARMS).await.len(), 2);
    assert!(env.topic("prod-admin-alarms").await.is_some());
    env.ready(ADMIN).await;
}

/// Calls per `service/operation` since `before`, reads and writes.
fn calls_since(
    fleet: &ecs_operator_tests::fixtures::Fleet,
    before: &BTreeMap<ecs_operator::aws::calls::CallLabels, u64>,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (labels, n) in fleet.calls.snapshot() {
        let was = before.get(&labels).copied().unwrap_or(0);
        if n > was {
            *out.entry(format!("{}/{}", labels.service, labels.operation))
                .or_default() += n - was;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resync_wave_lists_alarms_log_groups_filters_topics_and_subscriptions_once_for_every_spec(
) {
    let (env, _) = Env::converged(files("Retain", "")).await;
    let wave = ecs_operator::resources::Snapshot::new(1);
    let before = env.fleet.calls.snapshot();
    for key in [PROD, WEB, ADMIN] {
        let r = env
            .fleet
            .reconcile_in_wave(key, &wave)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(r.phase, Phase::Ready, "{key}: {r:?}");
    }
    let calls = calls_since(&env.fleet, &before);
    let of = |op: &str| calls.get(op).copied().unwrap_or(0);
    // One listing each for the whole wave (the cluster's 2 load-balancer alarms, web's 5 and
    // admin's 5 possible names fit one DescribeAlarms) ...
    assert_eq!(of("cloudwatch/DescribeAlarms"), 1, "{calls:?}");
    assert_eq!(of("cloudwatchlogs/DescribeLogGroups"), 1, "{calls:?}");
    assert_eq!(of("cloudwatchlogs/DescribeMetricFilters"), 1, "{calls:?}");
    assert_eq!(of("sns/ListTopics"), 1, "{calls:?}");
    assert_eq!(of("sns/ListSubscriptions"), 1, "{calls:?}");
    assert_eq!(of("sns/ListSubscriptionsByTopic"), 0, "{calls:?}");
    // ... and a tag read per resource: 2 + 5 + 1 alarms, one log group, three topics.
    assert_eq!(of("cloudwatch/ListTagsForResource"), 8, "{calls:?}");
    assert_eq!(of("cloudwatchlogs/ListTagsForResource"), 1, "{calls:?}");
    assert_eq!(of("sns/ListTagsForResource"), 3, "{calls:?}");
    let writes = env.fleet.mutations_since(&before);
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_alarms_and_logs_blocks_deletes_what_they_made_and_releases_the_log_group() {
    let (mut env, reports) = Env::converged(files("Retain", "")).await;
    let web_topic = env.topic("prod-web-alarms").await.unwrap();
    env.rewrite("service-web.yaml", |t| {
        t.split("  logs: ").next().unwrap().to_string()
    });
    env.rewrite("cluster-prod.yaml", |t| {
        t.replace(
            "      alarms:\n        elb5xxCount: {threshold: 10, periods: 1}\n        rejectedConnections: {threshold: 1, periods: 2}\n",
            "",
        )
    });
    // The controller passes each spec's last status ledger: that is where the dropped blocks'
    // resources are found, without a read for specs that never had them.
    let mut ledgers = BTreeMap::new();
    for key in [WEB, PROD] {
        let report = env
            .fleet
            .reconcile_with_ledger(env.fleet.spec(key), reports[key].resources.clone())
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(report.phase, Phase::Ready, "{key}: {report:?}");
        assert!(
            !report
                .resources
                .iter()
                .any(|r| r.resource_type.starts_with("cloudwatch:")
                    || r.resource_type.starts_with("sns:")
                    || r.resource_type.starts_with("logs:")),
            "{key}: {:?}",
            report.resources
        );
        ledgers.insert(key, report.resources);
    }
    assert!(env.alarms(&WEB_ALARMS).await.is_empty());
    assert!(env.alarms(&LB_ALARMS).await.is_empty());
    assert!(env.topic("prod-web-alarms").await.is_none(), "{web_topic}");
    assert!(env.topic("prod-prod-public-lb-alarms").await.is_none());
    let filters = env
        .logs
        .describe_metric_filters()
        .log_group_name("/ecs/web")
        .send()
        .await
        .unwrap();
    assert!(filters.metric_filters().is_empty());
    let (arn, _) = env.log_group("/ecs/web").await.expect("logs are kept");
    let tags = env.log_tags(&arn).await;
    assert_eq!(
        tags.get(RELEASED).map(String::as_str),
        Some(WEB),
        "{tags:?}"
    );
    assert!(!tags.contains_key(MANAGED_BY));
    // Another spec's alarms and topic are untouched.
    assert_eq!(env.alarms(&["prod-admin-cpuPercent"]).await.len(), 1);
    assert!(env.topic("prod-admin-alarms").await.is_some());
    // And the next reconciles write nothing.
    let before = env.fleet.calls.snapshot();
    for key in [WEB, PROD] {
        env.fleet
            .reconcile_with_ledger(env.fleet.spec(key), ledgers[key].clone())
            .await
            .unwrap();
    }
    let writes = env.fleet.mutations_since(&before);
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_group_whose_own_deletion_policy_is_delete_goes_with_the_spec() {
    let (mut env, reports) = Env::converged(files("Delete", "")).await;
    let (arn, _) = env.log_group("/ecs/web").await.unwrap();
    assert_eq!(
        env.log_tags(&arn).await.get(POLICY_TAG).map(String::as_str),
        Some("Delete")
    );
    env.delete(WEB, &reports[WEB].resources).await;
    assert!(env.log_group("/ecs/web").await.is_none());
    assert!(env.alarms(&WEB_ALARMS).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn alarms_notifying_an_existing_topic_use_it_as_it_is_and_never_change_it() {
    let pager = format!(
        "arn:aws:sns:{}:123456789012:ops-pager",
        ecs_operator_tests::REGION
    );
    let env = Env::new(files("Retain", &format!("{{topicArn: \"{pager}\"}}"))).await;
    let made = env
        .sns
        .create_topic()
        .name("ops-pager")
        .send()
        .await
        .unwrap();
    assert_eq!(made.topic_arn(), Some(pager.as_str()));
    let reports = env.fleet.converge(12).await;
    let cpu = &env.alarms(&["prod-admin-cpuPercent"]).await["prod-admin-cpuPercent"];
    check_common(cpu, 80.0, 2, &pager);
    assert!(
        env.topic("prod-admin-alarms").await.is_none(),
        "no owned topic"
    );
    assert!(
        env.topic_tags(&pager).await.is_empty(),
        "the existing topic is not tagged"
    );
    let subs = env
        .sns
        .list_subscriptions_by_topic()
        .topic_arn(&pager)
        .send()
        .await
        .unwrap();
    assert!(subs.subscriptions().is_empty());
    let admin = &reports[&SpecKey::parse(ADMIN).unwrap()];
    assert!(
        !admin
            .resources
            .iter()
            .any(|r| r.resource_type.starts_with("sns:")),
        "the existing topic is not in the ledger: {:?}",
        admin.resources
    );
}

// ---- Auto Scaling groups the ClusterSpec owns ----

const HOSTS: &str = "ClusterSpec/hosts";
const KEEP: &str = "ClusterSpec/keep";

/// The object form of `autoScalingGroup` (YAML lines at the capacity provider's indent + 2).
fn owned_group(name: &str, subnets: &[String; 2], min: u32, max: u32, protect: bool) -> String {
    format!(
        "      autoScalingGroup:\n        name: {name}\n        launchTemplate: {{name: ecs-hosts, version: $Latest}}\n        subnets: [{}, {}]\n        minSize: {min}\n        maxSize: {max}\n        protectFromScaleIn: {protect}\n",
        subnets[0], subnets[1]
    )
}

/// The reference architecture whose cluster also has an EC2 capacity provider on an Auto
/// Scaling group it owns (`prod-ecs`, 2..4, protected from scale-in, managed termination
/// protection), beside the logs and alarms of [`files`].
fn with_owned_group(net: &ecs_operator_tests::fixtures::Network) -> Vec<SpecFile> {
    files("Retain", "")(net)
        .into_iter()
        .map(|(f, t)| {
            let t = if f == "cluster-prod.yaml" {
                t.replace(
                    "  loadBalancers:\n",
                    &format!(
                        "  capacityProviders:\n    - name: prod-ec2\n{}      managedScaling: {{targetCapacity: 75}}\n      managedTerminationProtection: true\n  loadBalancers:\n",
                        owned_group("prod-ecs", &net.subnets, 2, 4, true)
                    ),
                )
            } else {
                t
            };
            (f, t)
        })
        .collect()
}

/// Two clusters without services or load balancers, each with an owned group of 1..2 under
/// `deletionPolicy: Delete`: `hosts` (unprotected) and `keep` (instances protected from
/// scale-in).
fn two_host_clusters(net: &ecs_operator_tests::fixtures::Network) -> Vec<SpecFile> {
    let cluster = |name: &str, protect: bool| {
        format!(
            "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {{name: {name}}}\nspec:\n  capacityProviders:\n    - name: {name}-ec2\n{}      managedScaling: {{targetCapacity: 100}}\n  deletionPolicy: Delete\n",
            owned_group(&format!("{name}-ecs"), &net.subnets, 1, 2, protect)
        )
    };
    vec![
        ("cluster-hosts.yaml".to_string(), cluster("hosts", false)),
        ("cluster-keep.yaml".to_string(), cluster("keep", true)),
    ]
}

/// The launch template the owned groups launch from (it exists before the operator runs).
fn launch_template(env: &Env) {
    ecs_operator_tests::fixtures::awscli(
        &env.moto,
        &[
            "ec2",
            "create-launch-template",
            "--launch-template-name",
            "ecs-hosts",
            "--launch-template-data",
            r#"{"ImageId":"ami-12c6146b","InstanceType":"t3.micro"}"#,
        ],
    );
}

impl Env {
    async fn group(&self, name: &str) -> Option<aws_sdk_autoscaling::types::AutoScalingGroup> {
        self.asg
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .expect("DescribeAutoScalingGroups answers")
            .auto_scaling_groups()
            .first()
            .cloned()
    }
}

fn group_tags(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> BTreeMap<String, String> {
    g.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn sizes(g: &aws_sdk_autoscaling::types::AutoScalingGroup) -> (i32, i32) {
    (g.min_size().unwrap(), g.max_size().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owned_auto_scaling_group_converges_with_every_field_makes_no_write_and_has_its_max_put_back(
) {
    let env = Env::new(with_owned_group).await;
    launch_template(&env);
    env.fleet.converge(12).await;

    let g = env.group("prod-ecs").await.expect("the group exists");
    assert_eq!(sizes(&g), (2, 4));
    assert_eq!(g.new_instances_protected_from_scale_in(), Some(true));
    let lt = g.launch_template().expect("a launch template");
    assert_eq!(
        (lt.launch_template_name(), lt.version()),
        (Some("ecs-hosts"), Some("$Latest"))
    );
    let subnets: BTreeSet<&str> = g.vpc_zone_identifier().unwrap().split(',').collect();
    assert_eq!(
        subnets,
        env.net
            .subnets
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
    );
    assert!(ours(&group_tags(&g), PROD), "{:?}", g.tags());
    assert!(
        g.tags()
            .iter()
            .all(|t| t.propagate_at_launch() == Some(false)),
        "ownership tags never reach the instances: {:?}",
        g.tags()
    );
    // The capacity provider sits on that group.
    let provider = asg_provider(&env.ecs, "prod-ec2").await;
    assert_eq!(
        Some(provider.auto_scaling_group_arn()),
        g.auto_scaling_group_arn()
    );

    let before = env.fleet.calls.snapshot();
    env.ready(PROD).await;
    let writes = env.fleet.mutations_since(&before);
    assert!(writes.is_empty(), "{writes:?}");

    // A person raises the maximum (and the desired capacity): the maximum is put back, the
    // desired capacity is not the operator's.
    env.asg
        .update_auto_scaling_group()
        .auto_scaling_group_name("prod-ecs")
        .max_size(10)
        .desired_capacity(3)
        .send()
        .await
        .unwrap();
    let diff: Vec<String> = env
        .fleet
        .diff(PROD)
        .await
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        diff,
        ["~ auto scaling group prod-ecs maxSize: 10 -> 4"],
        "{diff:?}"
    );
    env.ready(PROD).await;
    let g = env.group("prod-ecs").await.unwrap();
    assert_eq!(sizes(&g), (2, 4));
    assert_eq!(g.desired_capacity(), Some(3));
    let before = env.fleet.calls.snapshot();
    env.ready(PROD).await;
    let writes = env.fleet.mutations_since(&before);
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unowned_auto_scaling_group_with_the_spec_s_name_fails_its_cluster_until_it_adopts() {
    let mut env = Env::new(two_host_clusters).await;
    launch_template(&env);
    env.asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("hosts-ecs")
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name("ecs-hosts")
                .build(),
        )
        .min_size(0)
        .max_size(3)
        .vpc_zone_identifier(env.net.subnets.join(","))
        .send()
        .await
        .unwrap();
    let err = env
        .fleet
        .reconcile(HOSTS)
        .await
        .expect_err("the group is not the spec's");
    let err = err.to_string();
    assert!(
        err.contains("auto scaling group hosts-ecs exists and is not owned by this operator")
            && err.contains("ecs-operator.io/adopt"),
        "{err}"
    );
    let g = env.group("hosts-ecs").await.unwrap();
    assert_eq!(sizes(&g), (0, 3), "nothing was changed on it");
    assert!(g.tags().is_empty());
    env.ready(KEEP).await;

    env.rewrite("cluster-hosts.yaml", |t| {
        t.replace(
            "metadata: {name: hosts}",
            "metadata: {name: hosts, annotations: {ecs-operator.io/adopt: \"true\"}}",
        )
    });
    env.ready(HOSTS).await;
    let g = env.group("hosts-ecs").await.unwrap();
    assert_eq!(sizes(&g), (1, 2));
    assert!(ours(&group_tags(&g), HOSTS), "{:?}", g.tags());
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_spec_drains_its_group_to_zero_deletes_it_once_empty_and_never_terminates_a_protected_instance(
) {
    let mut env = Env::new(two_host_clusters).await;
    launch_template(&env);
    let reports = env.fleet.converge(6).await;
    for name in ["hosts-ecs", "keep-ecs"] {
        let g = env.group(name).await.unwrap();
        assert_eq!(g.instances().len(), 1, "{name} launched its minimum");
    }

    // Unprotected: min/max/desired to 0, the instance goes, then the group.
    let ledger = reports[&SpecKey::parse(HOSTS).unwrap()].resources.clone();
    env.delete(HOSTS, &ledger).await;
    assert!(
        env.group("hosts-ecs").await.is_none(),
        "the group is deleted"
    );

    // Protected: the group goes to 0 but its instance stays, and so does the group; the
    // deletion waits and says why.
    let k = SpecKey::parse(KEEP).unwrap();
    let last = env.fleet.specs.remove(&k);
    let mut previous = SpecStatus::pending(&k);
    previous.resources = reports[&k].resources.clone();
    let input = ReconcileInput::fresh(Arc::new(env.fleet.specs.clone()));
    let mut message = String::new();
    for _ in 0..3 {
        match env
            .fleet
            .reconciler
            .delete(&k, last.clone(), &previous, &input)
            .await
            .unwrap()
        {
            Deletion::Deleted => panic!("a group with a protected instance must not be deleted"),
            Deletion::InProgress(r) => {
                assert_eq!(r.phase, Phase::Deleting);
                message = format!("{:?}", r.conditions);
            }
        }
    }
    assert!(
        message.contains("auto scaling group keep-ecs: 1 instance(s) remain"),
        "{message}"
    );
    let g = env.group("keep-ecs").await.expect("the group is kept");
    assert_eq!(sizes(&g), (0, 0));
    assert_eq!(
        g.instances().len(),
        1,
        "the protected instance is not terminated"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fresh_reconcile_reads_its_topic_by_the_arn_it_knows_and_lists_topics_again_only_once_it_is_gone(
) {
    let (env, _) = Env::converged(files("Retain", "")).await;
    let arn = env.topic("prod-web-alarms").await.expect("web's topic");
    // A fresh reconcile (outside any wave) of a converged spec: its topic by ARN, no listing.
    let before = env.fleet.calls.snapshot();
    env.ready(WEB).await;
    let calls = calls_since(&env.fleet, &before);
    let of = |op: &str| calls.get(op).copied().unwrap_or(0);
    assert_eq!(of("sns/ListTopics"), 0, "{calls:?}");
    assert_eq!(of("sns/ListTagsForResource"), 1, "{calls:?}");
    assert!(env.fleet.mutations_since(&before).is_empty());
    // Deleted by hand: the known ARN answers ResourceNotFound, the topic is looked for in a
    // listing, created once again and its subscription made again.
    env.sns
        .delete_topic()
        .topic_arn(&arn)
        .send()
        .await
        .expect("DeleteTopic answers");
    let before = env.fleet.calls.snapshot();
    env.ready(WEB).await;
    let calls = calls_since(&env.fleet, &before);
    let of = |op: &str| calls.get(op).copied().unwrap_or(0);
    assert_eq!(of("sns/ListTopics"), 1, "{calls:?}");
    assert_eq!(of("sns/CreateTopic"), 1, "{calls:?}");
    assert_eq!(of("sns/Subscribe"), 1, "{calls:?}");
    assert_eq!(env.topic("prod-web-alarms").await, Some(arn));
    // And the next fresh reconcile is back to one read by ARN.
    let before = env.fleet.calls.snapshot();
    env.ready(WEB).await;
    let calls = calls_since(&env.fleet, &before);
    assert_eq!(
        calls.get("sns/ListTopics").copied().unwrap_or(0),
        0,
        "{calls:?}"
    );
    assert!(env.fleet.mutations_since(&before).is_empty());
}

use super::*;
use aws_sdk_cloudwatch::types::Metric;

const LABEL: &str = "app/prod-public/50dc6c495c0c9188/targetgroup/web/943f017f100becff";
const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:prod-web-alarms";

fn rule(threshold: f64, periods: u32) -> AlarmRule {
    AlarmRule { threshold, periods }
}

fn alarms() -> ServiceAlarms {
    ServiceAlarms {
        notify: None,
        http5xx_percent: Some(rule(1.0, 3)),
        latency_p99_seconds: Some(rule(2.0, 3)),
        cpu_percent: Some(rule(85.0, 5)),
        memory_percent: None,
        log_errors: Some(rule(1.0, 1)),
    }
}

fn wanted() -> Vec<(String, Want)> {
    service(
        "prod",
        "web",
        Some(&alarms()),
        TOPIC,
        Some(LABEL),
        "prod-web-errors",
    )
}

fn present(w: &Want) -> &Shape {
    match w {
        Want::Present(s) => s,
        other => panic!("not present: {other:?}"),
    }
}

/// The alarm as AWS would return it after PutMetricAlarm with `s`.
fn as_aws(s: &Shape) -> MetricAlarm {
    let dims = |d: &BTreeMap<String, String>| -> Vec<Dimension> {
        d.iter()
            .map(|(k, v)| Dimension::builder().name(k).value(v).build())
            .collect()
    };
    let mut b = MetricAlarm::builder()
        .alarm_name("x")
        .alarm_arn("arn:aws:cloudwatch:eu-west-1:1:alarm:x")
        .alarm_description(&s.description)
        .actions_enabled(true)
        .set_alarm_actions(Some(s.alarm_actions.iter().cloned().collect()))
        .set_ok_actions(Some(s.ok_actions.iter().cloned().collect()))
        .evaluation_periods(s.evaluation_periods)
        .datapoints_to_alarm(s.datapoints_to_alarm)
        .threshold(s.threshold)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .treat_missing_data("notBreaching");
    match &s.watch {
        Watch::Metric(m) => {
            b = b
                .namespace(&m.namespace)
                .metric_name(&m.name)
                .set_dimensions(Some(dims(&m.dimensions)))
                .period(m.period);
            b = if m.stat.starts_with('p') {
                b.extended_statistic(&m.stat)
            } else {
                b.statistic(Statistic::from(m.stat.as_str()))
            };
        }
        Watch::Math {
            expression,
            queries,
        } => {
            // AWS lists the expression first here: order must not matter.
            b = b.metrics(
                MetricDataQuery::builder()
                    .id("e1")
                    .expression(expression)
                    .return_data(true)
                    .build(),
            );
            for (id, m) in queries.iter().rev() {
                b = b.metrics(
                    MetricDataQuery::builder()
                        .id(id)
                        .metric_stat(
                            MetricStat::builder()
                                .metric(
                                    Metric::builder()
                                        .namespace(&m.namespace)
                                        .metric_name(&m.name)
                                        .set_dimensions(Some(dims(&m.dimensions)))
                                        .build(),
                                )
                                .period(m.period)
                                .stat(&m.stat)
                                .build(),
                        )
                        .return_data(false)
                        .build(),
                );
            }
        }
    }
    b.build()
}

fn observed(s: &Shape) -> Observed {
    Observed {
        arn: "arn:aws:cloudwatch:eu-west-1:1:alarm:x".into(),
        shape: read_shape(&as_aws(s)),
        tags: BTreeMap::new(),
    }
}

#[test]
fn every_alarm_a_service_can_have_is_named_cluster_service_alarm() {
    let names: Vec<String> = wanted().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "prod-web-http5xxPercent",
            "prod-web-latencyP99Seconds",
            "prod-web-cpuPercent",
            "prod-web-memoryPercent",
            "prod-web-logErrors"
        ]
    );
    assert_eq!(wanted()[3].1, Want::Absent);
}

#[test]
fn the_5xx_alarm_divides_target_5xx_by_requests_of_the_target_group() {
    let w = wanted();
    let s = present(&w[0].1);
    let Watch::Math {
        expression,
        queries,
    } = &s.watch
    else {
        panic!("metric math expected");
    };
    assert_eq!(expression, "100 * FILL(m1, 0) / m2");
    assert_eq!(queries[0].1.name, "HTTPCode_Target_5XX_Count");
    assert_eq!(queries[1].1.name, "RequestCount");
    for (_, m) in queries {
        assert_eq!(m.stat, "Sum");
        assert_eq!(m.period, 60);
        assert_eq!(
            m.dimensions,
            BTreeMap::from([
                (
                    "LoadBalancer".to_string(),
                    "app/prod-public/50dc6c495c0c9188".to_string()
                ),
                (
                    "TargetGroup".to_string(),
                    "targetgroup/web/943f017f100becff".to_string()
                ),
            ])
        );
    }
    assert_eq!((s.threshold, s.evaluation_periods), (1.0, 3));
    assert_eq!(s.alarm_actions, BTreeSet::from([TOPIC.to_string()]));
    assert_eq!(s.ok_actions, s.alarm_actions);
    assert_eq!(s.treat_missing_data, "notBreaching");
    let latency = present(&w[1].1);
    assert!(
        matches!(&latency.watch, Watch::Metric(m) if m.stat == "p99" && m.name == "TargetResponseTime")
    );
    let cpu = present(&w[2].1);
    assert!(
        matches!(&cpu.watch, Watch::Metric(m) if m.namespace == "AWS/ECS"
        && m.dimensions["ClusterName"] == "prod" && m.dimensions["ServiceName"] == "web")
    );
}

#[test]
fn an_alarm_read_back_from_aws_matches_what_was_put() {
    for (name, want) in wanted() {
        if let Want::Present(s) = &want {
            let o = observed(s);
            assert!(
                plan(&name, &want, Some(&o), BTreeMap::new(), true).is_empty(),
                "{name}: {:?}",
                differences(s, &o.shape)
            );
        }
    }
}

#[test]
fn a_changed_threshold_is_one_put_in_plain_words() {
    let w = wanted();
    let mut drifted = present(&w[2].1).clone();
    drifted.threshold = 99.0;
    let steps = plan(
        &w[2].0,
        &w[2].1,
        Some(&observed(&drifted)),
        BTreeMap::new(),
        true,
    );
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].0, Step::Put);
    assert_eq!(
        steps[0].1.to_string(),
        "~ cloudwatch alarm prod-web-cpuPercent threshold: 99 -> 85"
    );
}

#[test]
fn a_dropped_alarm_is_deleted_only_when_ours_and_an_unknown_one_left_alone() {
    let w = wanted();
    let s = present(&w[2].1).clone();
    let o = observed(&s);
    assert_eq!(
        plan("a", &Want::Absent, Some(&o), BTreeMap::new(), true)[0].0,
        Step::Delete
    );
    assert!(plan("a", &Want::Absent, Some(&o), BTreeMap::new(), false).is_empty());
    assert!(plan("a", &Want::Unknown, Some(&o), BTreeMap::new(), true).is_empty());
    assert!(plan("a", &Want::Unknown, None, BTreeMap::new(), true).is_empty());
}

#[test]
fn the_drivers_plan_deletes_a_dropped_alarm_only_when_the_run_found_it_ours() {
    let w = wanted();
    let o = observed(present(&w[2].1));
    let dropped = Desired {
        name: "a".into(),
        want: Want::Absent,
    };
    let ours = Found {
        alarm: o.clone(),
        ours: true,
    };
    let theirs = Found {
        alarm: o,
        ours: false,
    };
    let steps = |f: &Found| {
        <AlarmKind as Managed>::plan(&dropped, Some(f), BTreeMap::new())
            .steps
            .into_iter()
            .map(|s| s.0)
            .collect::<Vec<_>>()
    };
    assert_eq!(steps(&ours), vec![Step::Delete]);
    assert!(steps(&theirs).is_empty());
    let kept = desired(vec![w[2].clone()]);
    assert_eq!(
        <AlarmKind as Managed>::id(&kept[0], &true),
        Some(w[2].0.clone())
    );
    assert_eq!(<AlarmKind as Managed>::id(&dropped, &true), None);
}

#[test]
fn without_a_target_group_yet_the_alb_alarms_are_unknown() {
    let w = service("prod", "web", Some(&alarms()), TOPIC, None, "m");
    assert_eq!(w[0].1, Want::Unknown);
    assert_eq!(w[1].1, Want::Unknown);
    assert!(matches!(w[2].1, Want::Present(_)));
}

#[test]
fn load_balancer_alarms_count_elb_5xx_and_rejected_connections() {
    let a = LoadBalancerAlarms {
        notify: None,
        elb5xx_count: Some(rule(10.0, 1)),
        rejected_connections: None,
    };
    let w = load_balancer(
        "prod",
        "prod-public",
        Some(&a),
        TOPIC,
        lb_label("arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/app/prod-public/50dc")
            .as_deref(),
    );
    assert_eq!(w[0].0, "prod-prod-public-elb5xxCount");
    let s = present(&w[0].1);
    assert!(
        matches!(&s.watch, Watch::Metric(m) if m.name == "HTTPCode_ELB_5XX_Count"
        && m.dimensions["LoadBalancer"] == "app/prod-public/50dc")
    );
    assert_eq!(
        w[1],
        ("prod-prod-public-rejectedConnections".into(), Want::Absent)
    );
}

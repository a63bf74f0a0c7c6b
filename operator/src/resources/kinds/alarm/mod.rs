//! CloudWatch metric alarms: a ServiceSpec's (`http5xxPercent`, `latencyP99Seconds`,
//! `cpuPercent`, `memoryPercent`, `logErrors`) and a ClusterSpec load balancer's (`elb5xxCount`,
//! `rejectedConnections`), each named `<cluster>-<service or load balancer>-<alarm>`, firing when
//! the metric is above the threshold for `periods` one-minute periods in a row, notifying the
//! topic on ALARM and OK, missing data not breaching.
//!
//! Invariants: an alarm is compared as a normalised [`Shape`] (AWS's defaults filled in, action
//! lists as sets), so a converged alarm is never put again; one PutMetricAlarm replaces the
//! whole alarm; every alarm a spec can have is read in one DescribeAlarms by name (so an alarm
//! the spec dropped is found and deleted), plus one tag read per existing alarm (CloudWatch has
//! no batch form); an alarm without our tags is never changed unless adopted.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{
    AlarmType, ComparisonOperator, Dimension, MetricAlarm, MetricDataQuery, MetricStat, Statistic,
};

use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, ManagedSet, Plan};
use crate::resources::run::tag_step;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::arn_tags::{self, Api, Tagged};
use crate::resources::shared::pages::read_pages;
use crate::resources::shared::release;
use crate::resources::shared::tags::{owner_of, ownership, Ownership};
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use crate::spec::types::{AlarmRule, LoadBalancerAlarms, ServiceAlarms};
use crate::spec::{cluster_spec_of, Spec, ValidSpecs};

/// The id of this kind in status ledgers and garbage-collection scans (the alarm's name).
pub const TYPE: &str = "cloudwatch:alarm";

/// Every alarm runs on one-minute periods.
pub const PERIOD: i32 = 60;

/// One metric of an alarm: namespace, name, dimensions, statistic (`Sum`, `Average`, `p99`).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSpec {
    pub namespace: String,
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    pub stat: String,
    pub period: i32,
}

/// What an alarm watches: one metric, or a metric-math expression over named metrics.
#[derive(Debug, Clone, PartialEq)]
pub enum Watch {
    Metric(MetricSpec),
    Math {
        expression: String,
        /// `(id, metric)`, in id order.
        queries: Vec<(String, MetricSpec)>,
    },
}

/// An alarm as compared: every field the operator sets, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub description: String,
    pub watch: Watch,
    pub threshold: f64,
    pub evaluation_periods: i32,
    pub datapoints_to_alarm: i32,
    pub comparison: String,
    pub treat_missing_data: String,
    pub actions_enabled: bool,
    pub alarm_actions: BTreeSet<String>,
    pub ok_actions: BTreeSet<String>,
}

/// What the spec says about one alarm name.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Present(Box<Shape>),
    /// The spec does not have this alarm: ours is deleted if it exists.
    Absent,
    /// Not knowable yet (the target group is only planned): left as it is.
    Unknown,
}

fn dims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn metric(namespace: &str, name: &str, d: BTreeMap<String, String>, stat: &str) -> MetricSpec {
    MetricSpec {
        namespace: namespace.into(),
        name: name.into(),
        dimensions: d,
        stat: stat.into(),
        period: PERIOD,
    }
}

fn shape(description: String, watch: Watch, rule: &AlarmRule, topic: &str) -> Shape {
    let actions: BTreeSet<String> = [topic.to_string()].into();
    Shape {
        description,
        watch,
        threshold: rule.threshold,
        evaluation_periods: rule.periods as i32,
        datapoints_to_alarm: rule.periods as i32,
        comparison: ComparisonOperator::GreaterThanThreshold
            .as_str()
            .to_string(),
        treat_missing_data: "notBreaching".into(),
        actions_enabled: true,
        alarm_actions: actions.clone(),
        ok_actions: actions,
    }
}

/// The load balancer and target group dimensions of an ALB metric, from the
/// `app/<lb>/<id>/targetgroup/<tg>/<id>` label.
pub fn split_label(label: &str) -> Option<(String, String)> {
    let (lb, tg) = label.split_once("/targetgroup/")?;
    Some((lb.to_string(), format!("targetgroup/{tg}")))
}

/// The alarm name `<cluster>-<owner>-<alarm>`.
pub fn name(cluster: &str, owner: &str, alarm: &str) -> String {
    format!("{cluster}-{owner}-{alarm}")
}

/// Every alarm name a ServiceSpec can have, with what the spec wants for it. `label`: the
/// target group's ALB label (`None` without ingress or while its creation is only planned);
/// `log_metric`: the metric filter's metric name.
pub fn service(
    cluster: &str,
    service: &str,
    alarms: Option<&ServiceAlarms>,
    topic: &str,
    label: Option<&str>,
    log_metric: &str,
) -> Vec<(String, Want)> {
    let owner = format!("ServiceSpec/{service}");
    let ecs = dims(&[("ClusterName", cluster), ("ServiceName", service)]);
    let target = label.and_then(split_label);
    let alb = |rule: Option<&AlarmRule>, what: &str, watch: &dyn Fn(&str, &str) -> Watch| match (
        rule, &target,
    ) {
        (None, _) => Want::Absent,
        (Some(_), None) => Want::Unknown,
        (Some(r), Some((lb, tg))) => Want::Present(Box::new(shape(
            format!("{what} ({owner}; managed by ecs-operator)"),
            watch(lb, tg),
            r,
            topic,
        ))),
    };
    let plain = |rule: Option<&AlarmRule>, what: &str, m: MetricSpec| match rule {
        None => Want::Absent,
        Some(r) => Want::Present(Box::new(shape(
            format!("{what} ({owner}; managed by ecs-operator)"),
            Watch::Metric(m),
            r,
            topic,
        ))),
    };
    let a = |f: fn(&ServiceAlarms) -> Option<&AlarmRule>| alarms.and_then(f);
    vec![
        (
            name(cluster, service, "http5xxPercent"),
            alb(
                a(|x| x.http5xx_percent.as_ref()),
                "target 5XX responses, percent of requests",
                &|lb, tg| {
                    let d = dims(&[("LoadBalancer", lb), ("TargetGroup", tg)]);
                    Watch::Math {
                        expression: "100 * FILL(m1, 0) / m2".into(),
                        queries: vec![
                            (
                                "m1".into(),
                                metric(
                                    "AWS/ApplicationELB",
                                    "HTTPCode_Target_5XX_Count",
                                    d.clone(),
                                    "Sum",
                                ),
                            ),
                            (
                                "m2".into(),
                                metric("AWS/ApplicationELB", "RequestCount", d, "Sum"),
                            ),
                        ],
                    }
                },
            ),
        ),
        (
            name(cluster, service, "latencyP99Seconds"),
            alb(
                a(|x| x.latency_p99_seconds.as_ref()),
                "target response time p99, seconds",
                &|lb, tg| {
                    Watch::Metric(metric(
                        "AWS/ApplicationELB",
                        "TargetResponseTime",
                        dims(&[("LoadBalancer", lb), ("TargetGroup", tg)]),
                        "p99",
                    ))
                },
            ),
        ),
        (
            name(cluster, service, "cpuPercent"),
            plain(
                a(|x| x.cpu_percent.as_ref()),
                "ECS service CPU utilisation, percent",
                metric("AWS/ECS", "CPUUtilization", ecs.clone(), "Average"),
            ),
        ),
        (
            name(cluster, service, "memoryPercent"),
            plain(
                a(|x| x.memory_percent.as_ref()),
                "ECS service memory utilisation, percent",
                metric("AWS/ECS", "MemoryUtilization", ecs, "Average"),
            ),
        ),
        (
            name(cluster, service, "logErrors"),
            plain(
                a(|x| x.log_errors.as_ref()),
                "log events matching logs.errorPattern per minute",
                metric(
                    crate::resources::kinds::metric_filter::NAMESPACE,
                    log_metric,
                    BTreeMap::new(),
                    "Sum",
                ),
            ),
        ),
    ]
}

/// Every alarm name a ClusterSpec load balancer can have. `lb_label`: `app/<name>/<id>`
/// (`None` while the load balancer is only planned).
pub fn load_balancer(
    cluster: &str,
    lb: &str,
    alarms: Option<&LoadBalancerAlarms>,
    topic: &str,
    lb_label: Option<&str>,
) -> Vec<(String, Want)> {
    let owner = format!("load balancer {lb} of ClusterSpec/{cluster}");
    let want = |rule: Option<&AlarmRule>, what: &str, metric_name: &str| match (rule, lb_label) {
        (None, _) => Want::Absent,
        (Some(_), None) => Want::Unknown,
        (Some(r), Some(l)) => Want::Present(Box::new(shape(
            format!("{what} ({owner}; managed by ecs-operator)"),
            Watch::Metric(metric(
                "AWS/ApplicationELB",
                metric_name,
                dims(&[("LoadBalancer", l)]),
                "Sum",
            )),
            r,
            topic,
        ))),
    };
    let a = |f: fn(&LoadBalancerAlarms) -> Option<&AlarmRule>| alarms.and_then(f);
    vec![
        (
            name(cluster, lb, "elb5xxCount"),
            want(
                a(|x| x.elb5xx_count.as_ref()),
                "5XX responses of the load balancer itself per minute",
                "HTTPCode_ELB_5XX_Count",
            ),
        ),
        (
            name(cluster, lb, "rejectedConnections"),
            want(
                a(|x| x.rejected_connections.as_ref()),
                "connections rejected by the load balancer per minute",
                "RejectedConnectionCount",
            ),
        ),
    ]
}

/// The `app/<name>/<id>` dimension of a load balancer ARN.
pub fn lb_label(arn: &str) -> Option<String> {
    arn.split_once(":loadbalancer/").map(|(_, l)| l.to_string())
}

fn watch_text(w: &Watch) -> String {
    let m = |m: &MetricSpec| {
        let d: Vec<String> = m
            .dimensions
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "{} {}/{} [{}] per {}s",
            m.stat,
            m.namespace,
            m.name,
            d.join(","),
            m.period
        )
    };
    match w {
        Watch::Metric(x) => m(x),
        Watch::Math {
            expression,
            queries,
        } => {
            let q: Vec<String> = queries
                .iter()
                .map(|(id, x)| format!("{id}={}", m(x)))
                .collect();
            format!("{expression} where {}", q.join("; "))
        }
    }
}

fn set_text(s: &BTreeSet<String>) -> String {
    format!("[{}]", s.iter().cloned().collect::<Vec<_>>().join(", "))
}

/// What differs between `o` and `d`, one `field: old -> new` per field (pure; empty: none).
pub fn differences(d: &Shape, o: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, text: &dyn Fn(&Shape) -> String| {
        let (old, new) = (text(o), text(d));
        if old != new {
            out.push(format!("{name}: {old} -> {new}"));
        }
    };
    field("metric", &|s| watch_text(&s.watch));
    field("threshold", &|s| s.threshold.to_string());
    field("periods", &|s| s.evaluation_periods.to_string());
    field("datapoints to alarm", &|s| {
        s.datapoints_to_alarm.to_string()
    });
    field("comparison", &|s| s.comparison.clone());
    field("treat missing data", &|s| s.treat_missing_data.clone());
    field("actions enabled", &|s| s.actions_enabled.to_string());
    field("alarm actions", &|s| set_text(&s.alarm_actions));
    field("OK actions", &|s| set_text(&s.ok_actions));
    field("description", &|s| s.description.clone());
    out
}

/// An existing alarm as DescribeAlarms has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub shape: Shape,
    pub tags: BTreeMap<String, String>,
}

fn read_dims(d: &[Dimension]) -> BTreeMap<String, String> {
    d.iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The normalised [`Shape`] of an alarm AWS returned (absent fields read as AWS's defaults:
/// datapoints to alarm = evaluation periods, missing data `missing`, actions enabled).
pub fn read_shape(a: &MetricAlarm) -> Shape {
    let returned: Vec<&MetricDataQuery> = a.metrics().iter().collect();
    let watch = if returned.is_empty() {
        Watch::Metric(MetricSpec {
            namespace: a.namespace().unwrap_or_default().into(),
            name: a.metric_name().unwrap_or_default().into(),
            dimensions: read_dims(a.dimensions()),
            stat: a
                .extended_statistic()
                .map(str::to_string)
                .or_else(|| a.statistic().map(|s| s.as_str().to_string()))
                .unwrap_or_default(),
            period: a.period().unwrap_or_default(),
        })
    } else {
        let expression = returned
            .iter()
            .find(|q| q.expression().is_some())
            .and_then(|q| q.expression())
            .unwrap_or_default()
            .to_string();
        let mut queries: Vec<(String, MetricSpec)> = returned
            .iter()
            .filter_map(|q| {
                let s = q.metric_stat()?;
                let m = s.metric()?;
                Some((
                    q.id().unwrap_or_default().to_string(),
                    MetricSpec {
                        namespace: m.namespace().unwrap_or_default().into(),
                        name: m.metric_name().unwrap_or_default().into(),
                        dimensions: read_dims(m.dimensions()),
                        stat: s.stat().unwrap_or_default().into(),
                        period: s.period().unwrap_or_default(),
                    },
                ))
            })
            .collect();
        queries.sort_by(|a, b| a.0.cmp(&b.0));
        Watch::Math {
            expression,
            queries,
        }
    };
    let periods = a.evaluation_periods().unwrap_or_default();
    Shape {
        description: a.alarm_description().unwrap_or_default().into(),
        watch,
        threshold: a.threshold().unwrap_or_default(),
        evaluation_periods: periods,
        datapoints_to_alarm: a.datapoints_to_alarm().unwrap_or(periods),
        comparison: a
            .comparison_operator()
            .map(|c| c.as_str().to_string())
            .unwrap_or_default(),
        treat_missing_data: a.treat_missing_data().unwrap_or("missing").into(),
        actions_enabled: a.actions_enabled().unwrap_or(true),
        alarm_actions: a.alarm_actions().iter().cloned().collect(),
        ok_actions: a.ok_actions().iter().cloned().collect(),
    }
}

/// The steps for one alarm name (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// PutMetricAlarm: create, or replace the whole alarm.
    Put,
    Tag(BTreeMap<String, String>),
    Delete,
}

/// `owner_missing`: the ownership tags an adopted alarm still needs; `ours`: the existing alarm
/// carries our tags (an unowned one is never deleted).
pub fn plan(
    alarm: &str,
    want: &Want,
    o: Option<&Observed>,
    owner_missing: BTreeMap<String, String>,
    ours: bool,
) -> Vec<(Step, Change)> {
    let resource = format!("cloudwatch alarm {alarm}");
    match (want, o) {
        (Want::Unknown, _) | (Want::Absent, None) => Vec::new(),
        (Want::Absent, Some(_)) if ours => vec![(
            Step::Delete,
            Change::delete(resource, "no longer in the spec"),
        )],
        (Want::Absent, Some(_)) => Vec::new(),
        (Want::Present(d), None) => vec![(
            Step::Put,
            Change::create(
                resource,
                format!(
                    "{} > {} for {} period(s)",
                    watch_text(&d.watch),
                    d.threshold,
                    d.evaluation_periods
                ),
            ),
        )],
        (Want::Present(d), Some(o)) => {
            let mut steps = Vec::new();
            steps.extend(tag_step(&resource, &owner_missing, Step::Tag));
            let diff = differences(d, &o.shape);
            if !diff.is_empty() {
                steps.push((Step::Put, Change::update(&resource, diff.join("; "))));
            }
            steps
        }
    }
}

async fn tags_of(run: &SpecRun<'_>, arn: &str) -> Result<BTreeMap<String, String>, ResourceError> {
    arn_tags::list(run, Tagged::new(Api::CloudWatch, arn, arn)).await
}

/// Every alarm name the store's specs can have (what a resync wave reads in one go): those of
/// each ServiceSpec with `alarms` (named after its cluster's ECS name) and of each load
/// balancer with `alarms`.
pub fn store_names(specs: &ValidSpecs) -> Vec<String> {
    let mut out = BTreeSet::new();
    for s in specs.values() {
        match s.as_ref() {
            Spec::Service(svc) if !svc.spec.paused && svc.spec.alarms.is_some() => {
                let Some(c) = cluster_spec_of(svc, specs) else {
                    continue;
                };
                let cluster = super::ecs_cluster::cluster_name(c);
                let all = service(
                    &cluster,
                    &svc.metadata.name,
                    svc.spec.alarms.as_ref(),
                    "",
                    None,
                    "",
                );
                out.extend(all.into_iter().map(|(n, _)| n));
            }
            Spec::Cluster(c) if !c.spec.paused => {
                let cluster = super::ecs_cluster::cluster_name(c);
                for lb in c
                    .spec
                    .load_balancers
                    .iter()
                    .filter(|lb| lb.alarms.is_some())
                {
                    let all = load_balancer(&cluster, &lb.name, lb.alarms.as_ref(), "", None);
                    out.extend(all.into_iter().map(|(n, _)| n));
                }
            }
            _ => {}
        }
    }
    out.into_iter().collect()
}

/// The alarms among `names`, with their tags. In a resync wave, from the wave's one read of
/// every name the store's specs can have ([`store_names`]); otherwise fresh ([`read`]).
pub async fn observe(
    run: &SpecRun<'_>,
    names: &[String],
) -> Result<BTreeMap<String, Observed>, ResourceError> {
    if let Some(all) = run
        .cached(Entry::Alarms, |specs| async move {
            read(run, &store_names(&specs)).await
        })
        .await
    {
        let all = all?;
        return Ok(names
            .iter()
            .filter_map(|n| all.get(n).map(|o| (n.clone(), o.clone())))
            .collect());
    }
    read(run, names).await
}

/// The alarms among `names` as AWS has them now: DescribeAlarms 100 names per call, and the
/// tags of each alarm found (CloudWatch has no batch tag read).
pub async fn read(
    run: &SpecRun<'_>,
    names: &[String],
) -> Result<BTreeMap<String, Observed>, ResourceError> {
    let mut found = BTreeMap::new();
    for chunk in names.chunks(100) {
        read_chunk(run, chunk, &mut found).await?;
    }
    Ok(found)
}

async fn read_chunk(
    run: &SpecRun<'_>,
    names: &[String],
    found: &mut BTreeMap<String, Observed>,
) -> Result<(), ResourceError> {
    let out = run
        .aws
        .read(
            Service::CloudWatch,
            "DescribeAlarms",
            names.first().map(String::as_str).unwrap_or("*"),
            run.aws
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .max_records(100)
                .send(),
        )
        .await?;
    for a in out.metric_alarms() {
        let (Some(name), Some(arn)) = (a.alarm_name(), a.alarm_arn()) else {
            continue;
        };
        found.insert(
            name.to_string(),
            Observed {
                arn: arn.to_string(),
                shape: read_shape(a),
                tags: tags_of(run, arn).await?,
            },
        );
    }
    Ok(())
}

fn query(id: &str, m: &MetricSpec) -> MetricDataQuery {
    let metric = aws_sdk_cloudwatch::types::Metric::builder()
        .namespace(&m.namespace)
        .metric_name(&m.name)
        .set_dimensions(Some(dimensions(&m.dimensions)))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(m.period)
                .stat(&m.stat)
                .build(),
        )
        .return_data(false)
        .build()
}

fn dimensions(d: &BTreeMap<String, String>) -> Vec<Dimension> {
    d.iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect()
}

async fn put(run: &SpecRun<'_>, alarm: &str, d: &Shape) -> Result<(), ResourceError> {
    let mut req = run
        .aws
        .cloudwatch
        .put_metric_alarm()
        .alarm_name(alarm)
        .alarm_description(&d.description)
        .actions_enabled(d.actions_enabled)
        .set_alarm_actions(Some(d.alarm_actions.iter().cloned().collect()))
        .set_ok_actions(Some(d.ok_actions.iter().cloned().collect()))
        .evaluation_periods(d.evaluation_periods)
        .datapoints_to_alarm(d.datapoints_to_alarm)
        .threshold(d.threshold)
        .comparison_operator(ComparisonOperator::from(d.comparison.as_str()))
        .treat_missing_data(&d.treat_missing_data)
        .set_tags(Some(arn_tags::cloudwatch(&run.tags())));
    match &d.watch {
        Watch::Metric(m) => {
            req = req
                .namespace(&m.namespace)
                .metric_name(&m.name)
                .set_dimensions(Some(dimensions(&m.dimensions)))
                .period(m.period);
            req = if m.stat.starts_with('p') {
                req.extended_statistic(&m.stat)
            } else {
                req.statistic(Statistic::from(m.stat.as_str()))
            };
        }
        Watch::Math {
            expression,
            queries,
        } => {
            for (id, m) in queries {
                req = req.metrics(query(id, m));
            }
            req = req.metrics(
                MetricDataQuery::builder()
                    .id("e1")
                    .expression(expression)
                    .label(d.description.chars().take(100).collect::<String>())
                    .return_data(true)
                    .build(),
            );
        }
    }
    run.aws
        .write(Service::CloudWatch, "PutMetricAlarm", alarm, req.send())
        .await?;
    Ok(())
}

async fn delete_alarm(run: &SpecRun<'_>, alarm: &str) -> Result<(), ResourceError> {
    run.aws
        .write(
            Service::CloudWatch,
            "DeleteAlarms",
            alarm,
            run.aws.cloudwatch.delete_alarms().alarm_names(alarm).send(),
        )
        .await?;
    Ok(())
}

/// One alarm name the spec can have, and what it wants there (the driver's unit).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    pub want: Want,
}

/// The alarms of `wanted` (every name the spec can have, as [`service`] and [`load_balancer`]
/// list them) as the driver takes them.
pub fn desired(wanted: Vec<(String, Want)>) -> Vec<Desired> {
    wanted
        .into_iter()
        .map(|(name, want)| Desired { name, want })
        .collect()
}

/// An alarm as the driver sees it: what AWS has, and whether its tags name the run's spec
/// (judged per run, since one listing of a resync wave serves every spec).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub alarm: Observed,
    pub ours: bool,
}

fn found(run: &SpecRun<'_>, alarm: Observed) -> Found {
    let ours = ownership(&run.aws.instance, &run.key, &alarm.tags) == Ownership::Ours;
    Found { alarm, ours }
}

crate::resources::kind::kind!(
    /// A CloudWatch metric alarm, as the generic driver sees it.
    AlarmKind, TYPE, 13, delete, "CloudWatch alarms", list_owned
);

/// The generic driver's view of the alarms of one spec (or one load balancer): read together
/// ([`observe`]: DescribeAlarms 100 names a call, or the wave's listing), then each name
/// driven. Its output is whether the alarm exists. Only a wanted alarm is claimed (an alarm
/// of another owner fails the spec); one the spec does not have is deleted if ours and
/// otherwise left alone, and one not knowable yet is left as it is.
impl Managed for AlarmKind {
    crate::resources::kind::managed_types!(Desired, Found, Step, bool);

    fn label(d: &Desired) -> String {
        format!("cloudwatch alarm {}", d.name)
    }

    async fn observe(run: &SpecRun<'_>, d: &Desired) -> Result<Option<Found>, ResourceError> {
        let mut all = observe(run, std::slice::from_ref(&d.name)).await?;
        Ok(all.remove(&d.name).map(|o| found(run, o)))
    }

    fn tags(f: &Found) -> &BTreeMap<String, String> {
        &f.alarm.tags
    }

    fn claim(
        run: &SpecRun<'_>,
        d: &Desired,
        f: &Found,
    ) -> Result<BTreeMap<String, String>, ResourceError> {
        match d.want {
            Want::Present(_) => run.claim(&Self::label(d), &f.alarm.tags),
            Want::Absent | Want::Unknown => Ok(BTreeMap::new()),
        }
    }

    fn plan(d: &Desired, f: Option<&Found>, missing: BTreeMap<String, String>) -> Plan<Step> {
        let ours = f.is_some_and(|f| f.ours);
        Plan::steps(plan(&d.name, &d.want, f.map(|f| &f.alarm), missing, ours))
    }

    fn output(_: &Desired, f: Option<&Found>) -> bool {
        f.is_some()
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At {
            d,
            o: f,
            out: exists,
        } = at;
        match (step, &d.want) {
            (Step::Put, Want::Present(shape)) => {
                put(run, &d.name, shape).await?;
                *exists = true;
            }
            (Step::Tag(tags), _) => {
                let arn = f.map(|f| f.alarm.arn.as_str()).unwrap_or_default();
                arn_tags::tag(run, Tagged::new(Api::CloudWatch, &d.name, arn), &tags).await?;
            }
            (Step::Delete, _) => {
                delete_alarm(run, &d.name).await?;
                *exists = false;
            }
            // The plan puts only a wanted alarm.
            (Step::Put, Want::Absent | Want::Unknown) => {}
        }
        Ok(())
    }

    fn id(d: &Desired, exists: &bool) -> Option<String> {
        (*exists && matches!(d.want, Want::Present(_))).then(|| d.name.clone())
    }
}

impl ManagedSet for AlarmKind {
    async fn observe_set(
        run: &SpecRun<'_>,
        wanted: &[Desired],
    ) -> Result<Vec<Option<Found>>, ResourceError> {
        let names: Vec<String> = wanted.iter().map(|d| d.name.clone()).collect();
        let mut all = observe(run, &names).await?;
        Ok(names
            .iter()
            .map(|n| all.remove(n).map(|o| found(run, o)))
            .collect())
    }
}

/// Teardown of one alarm (its name): deleted, or released with `retain`; an alarm without our
/// tags is left alone.
pub async fn delete(
    run: &mut SpecRun<'_>,
    alarm: &str,
    retain: bool,
) -> Result<Gone, ResourceError> {
    // Fresh, never from a wave: the alarm of a dropped block is not among the store's names.
    let observed = read(run, &[alarm.to_string()]).await?;
    let Some(o) = observed.get(alarm) else {
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &o.tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    let resource = format!("cloudwatch alarm {alarm}");
    if retain {
        let tagged = Tagged::new(Api::CloudWatch, alarm, &o.arn);
        arn_tags::release(run, tagged, &resource, release::RELEASED, &[]).await?;
        return Ok(Gone::Yes);
    }
    if run.plan(Change::delete(&resource, "")) {
        delete_alarm(run, alarm).await?;
    }
    Ok(Gone::Yes)
}

/// Garbage collection: every metric alarm (DescribeAlarms, 100 per page) and its tags.
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let pages = read_pages(
        &run.aws,
        Service::CloudWatch,
        "DescribeAlarms",
        |token| {
            run.aws
                .cloudwatch
                .describe_alarms()
                .alarm_types(AlarmType::MetricAlarm)
                .max_records(100)
                .set_next_token(token)
                .send()
        },
        DescribeAlarmsOutput::next_token,
    )
    .await?;
    for a in pages.iter().flat_map(|p| p.metric_alarms()) {
        let (Some(name), Some(arn)) = (a.alarm_name(), a.alarm_arn()) else {
            continue;
        };
        if let Some(owner) = owner_of(&run.aws.instance, &tags_of(run, arn).await?) {
            scan.add(owner, TYPE, name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

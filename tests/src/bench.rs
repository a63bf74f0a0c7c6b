//! The benchmark's pure parts (the driver is `tests/src/bin/bench.rs`; results and how to run
//! it are in `docs/benchmarks.md`): the fleet it builds, the batched minimum of a steady-state
//! resync of that fleet, and the tables it prints.
//!
//! **The fleet** for `N` services: one ClusterSpec `bench` on Fargate with `ceil(N/100)`
//! internet-facing ALBs `bench-0`, `bench-1`, ... (AWS allows 100 target groups per ALB; the
//! listener rule priorities are `1..=100` on each), each with the same default certificate for
//! `ZONE` and `*.ZONE`, so one certificate serves them all and no service needs its own; and `N`
//! ServiceSpecs `svc-000`, ... each with one host `svc-NNN.ZONE` on its ALB (`/*`), a target
//! group, an alias record (+ ownership TXT) in `ZONE`, two Fargate tasks and CPU target
//! tracking (2..4 tasks), its log group `/ecs/bench/svc-NNN` (30 days, an error pattern
//! counted by a metric filter) and two alarms (`http5xxPercent`, `cpuPercent`) notifying its
//! own topic with one email subscription. No ECR repository (the image is public):
//! repositories are per service and would add three ECR reads each.

use std::collections::BTreeMap;

use crate::bucket_proxy::{buckets_for, lower_bound, Bucket, Limit};
use crate::fixtures::Network;
use crate::prom::{label, labelled};
use crate::proxy::{AwsService, Call};

/// Services per ALB (AWS: at most 100 target groups per load balancer).
pub const SERVICES_PER_ALB: usize = 100;

/// CloudWatch alarms per benchmark service (`http5xxPercent`, `cpuPercent`).
pub const ALARMS: usize = 2;

/// The benchmark's fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fleet {
    pub services: usize,
}

impl Fleet {
    pub fn new(services: usize) -> Fleet {
        Fleet { services }
    }

    /// `ceil(N / 100)` load balancers (at least one).
    pub fn albs(&self) -> usize {
        self.services.div_ceil(SERVICES_PER_ALB).max(1)
    }

    /// Service `i`'s ALB index and its rule priority there.
    pub fn placement(&self, i: usize) -> (usize, usize) {
        (i / SERVICES_PER_ALB, i % SERVICES_PER_ALB + 1)
    }

    pub fn service_name(i: usize) -> String {
        format!("svc-{i:03}")
    }

    /// Services on ALB `lb`.
    pub fn services_on(&self, lb: usize) -> usize {
        (0..self.services)
            .filter(|i| self.placement(*i).0 == lb)
            .count()
    }

    /// The spec files (name, YAML) on `net`.
    pub fn specs(&self, net: &Network) -> Vec<(String, String)> {
        let z = &net.zone_name;
        let (s0, s1, sg) = (&net.subnets[0], &net.subnets[1], &net.security_group);
        let mut lbs = String::new();
        for lb in 0..self.albs() {
            lbs.push_str(&format!(
                r#"    - name: bench-{lb}
      scheme: internet-facing
      subnets: [{s0}, {s1}]
      securityGroups: [{sg}]
      deletionProtection: false
      httpsRedirect: true
      certificate:
        domains: [{z}, "*.{z}"]
        hostedZone: {z}
"#
            ));
        }
        let cluster = format!(
            r#"apiVersion: ecs-operator.io/v1alpha1
kind: ClusterSpec
metadata: {{name: bench}}
spec:
  clusterName: bench
  defaultCapacityProviderStrategy:
    - {{capacityProvider: FARGATE, weight: 1}}
  loadBalancers:
{lbs}  deletionPolicy: Delete
"#
        );
        let mut out = vec![("cluster-bench.yaml".to_string(), cluster)];
        for i in 0..self.services {
            let name = Fleet::service_name(i);
            let (lb, priority) = self.placement(i);
            out.push((
                format!("service-{name}.yaml"),
                format!(
                    r#"apiVersion: ecs-operator.io/v1alpha1
kind: ServiceSpec
metadata: {{name: {name}}}
spec:
  cluster: bench
  desiredCount: 2
  container:
    name: app
    image: public.ecr.aws/nginx/nginx:1.27
    port: 80
    cpu: 256
    memory: 512
    logGroup: /ecs/bench/{name}
  logs: {{retentionDays: 30, errorPattern: "?ERROR"}}
  alarms:
    notify: {{emails: [oncall@{z}]}}
    http5xxPercent: {{threshold: 1, periods: 3}}
    cpuPercent: {{threshold: 85, periods: 5}}
  network: {{subnets: [{s0}, {s1}], securityGroups: [{sg}]}}
  autoscaling: {{minCapacity: 2, maxCapacity: 4, targetCpuUtilization: 75}}
  ingress:
    loadBalancer: bench-{lb}
    hosts: [{name}.{z}]
    paths: ["/*"]
    priority: {priority}
    healthCheck: {{path: /health, healthyThreshold: 2, unhealthyThreshold: 2}}
    deregistrationDelaySeconds: 30
    dns: {{hostedZone: {z}}}
"#
                ),
            ));
        }
        out
    }
}

/// One term of the batched minimum: the fewest calls of `op` (`service/Operation`, as the
/// proxy and the operator's metrics name them) a resync of the fleet needs, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub op: &'static str,
    pub calls: u64,
    pub why: String,
}

fn term(op: &'static str, calls: usize, why: impl Into<String>) -> Term {
    Term {
        op,
        calls: calls as u64,
        why: why.into(),
    }
}

/// Page sizes and batch limits of the AWS APIs involved (from each API's reference).
pub mod limits {
    /// DescribeServices: services per call.
    pub const DESCRIBE_SERVICES: usize = 10;
    /// DescribeClusters: clusters per call.
    pub const DESCRIBE_CLUSTERS: usize = 100;
    /// ELBv2 DescribeTags: ARNs per call.
    pub const DESCRIBE_TAGS: usize = 20;
    /// ELBv2 DescribeLoadBalancers: names per call.
    pub const DESCRIBE_LOAD_BALANCERS: usize = 20;
    /// ELBv2 DescribeTargetGroups / DescribeRules: PageSize at most 400.
    pub const ELB_PAGE: usize = 400;
    /// Route53 ListResourceRecordSets: at most 300 records per page.
    pub const RECORD_PAGE: usize = 300;
    /// ACM ListCertificates: MaxItems up to 1000.
    pub const CERTIFICATE_PAGE: usize = 1000;
    /// Application Auto Scaling DescribeScalableTargets: 50 per page.
    pub const SCALABLE_TARGETS: usize = 50;
    /// Application Auto Scaling DescribeScalingPolicies: 10 per page.
    pub const SCALING_POLICIES: usize = 10;
    /// CloudWatch DescribeAlarms: alarm names per call (and MaxRecords).
    pub const DESCRIBE_ALARMS: usize = 100;
    /// CloudWatch Logs DescribeLogGroups and DescribeMetricFilters: 50 per page.
    pub const LOGS_PAGE: usize = 50;
    /// SNS ListTopics and ListSubscriptions: 100 per page.
    pub const SNS_PAGE: usize = 100;
}

/// The fewest read calls one resync of every spec of `fleet` needs if each read is batched as
/// far as AWS allows and shared by the specs that need it (docs/design.md "Shared reads"): the
/// state to compare is the same, only the number of calls differs. `fresh_process`: task
/// definitions are read once per process (revisions are immutable and cached by ARN), so a
/// resync in a process that has not seen them yet reads each one, and a warm one reads none.
pub fn batched_minimum(fleet: Fleet, fresh_process: bool) -> Vec<Term> {
    use limits::*;
    let n = fleet.services;
    let l = fleet.albs();
    // One certificate (same domains, same owner) for every ALB of the cluster.
    let certs: usize = 1;
    // SOA + NS + the certificate's validation CNAME (shared by ZONE and *.ZONE) + A and TXT per
    // host.
    let records = 3 + 2 * n;
    // Per ALB: the load balancer, its :80 and :443 listeners; per service: target group + rule.
    let tagged = 3 * l + 2 * n;
    let mut out = vec![
        term(
            "ecs/DescribeClusters",
            1usize.div_ceil(DESCRIBE_CLUSTERS),
            "1 cluster, 100 per call, tags and settings included",
        ),
        term(
            "ecs/DescribeServices",
            n.div_ceil(DESCRIBE_SERVICES),
            format!("{n} services, 10 per call, tags included"),
        ),
        term(
            "ecs/DescribeTaskDefinition",
            if fresh_process { n } else { 0 },
            if fresh_process {
                format!("{n} revisions, 1 per call, once per process (immutable)")
            } else {
                "revisions are immutable: cached by ARN".to_string()
            },
        ),
        term(
            "elasticloadbalancingv2/DescribeLoadBalancers",
            l.div_ceil(DESCRIBE_LOAD_BALANCERS),
            format!("{l} ALB(s), 20 names per call"),
        ),
        term(
            "elasticloadbalancingv2/DescribeLoadBalancerAttributes",
            l,
            "1 per ALB",
        ),
        term(
            "elasticloadbalancingv2/DescribeListeners",
            l,
            "1 per ALB (both listeners)",
        ),
        term(
            "elasticloadbalancingv2/DescribeListenerCertificates",
            l,
            "1 per HTTPS listener (SNI certificates)",
        ),
        term(
            "elasticloadbalancingv2/DescribeRules",
            (0..l)
                .map(|lb| (fleet.services_on(lb) + 1).div_ceil(ELB_PAGE))
                .sum(),
            "1 per HTTPS listener (<= 101 rules, 400 per page)",
        ),
        term(
            "elasticloadbalancingv2/DescribeTargetGroups",
            n.div_ceil(ELB_PAGE),
            format!("{n} target groups, 400 per page"),
        ),
        term(
            "elasticloadbalancingv2/DescribeTargetGroupAttributes",
            n,
            "1 per target group",
        ),
        term(
            "elasticloadbalancingv2/DescribeTags",
            tagged.div_ceil(DESCRIBE_TAGS),
            format!("{tagged} ARNs (ALBs, listeners, target groups, rules), 20 per call"),
        ),
        term(
            "acm/ListCertificates",
            certs.div_ceil(CERTIFICATE_PAGE),
            "1 page (finds the certificate by domains)",
        ),
        term("acm/DescribeCertificate", certs, "1 per certificate"),
        term(
            "acm/ListTagsForCertificate",
            certs,
            "1 per certificate (ownership)",
        ),
        term(
            "route53/ListHostedZonesByName",
            1,
            "1 per zone (name to id)",
        ),
        term(
            "route53/ListResourceRecordSets",
            records.div_ceil(RECORD_PAGE),
            format!("{records} records, 300 per page"),
        ),
        term(
            "applicationautoscaling/DescribeScalableTargets",
            n.div_ceil(SCALABLE_TARGETS),
            format!("{n} targets, 50 per page"),
        ),
        term(
            "applicationautoscaling/DescribeScalingPolicies",
            n.div_ceil(SCALING_POLICIES),
            format!("{n} policies, 10 per page"),
        ),
        term(
            "monitoring/DescribeAlarms",
            (ALARMS * n).div_ceil(DESCRIBE_ALARMS),
            format!("{} alarm names, 100 per call", ALARMS * n),
        ),
        term(
            "monitoring/ListTagsForResource",
            ALARMS * n,
            "1 per alarm (ownership; CloudWatch has no batch tag read)",
        ),
        term(
            "logs/DescribeLogGroups",
            n.div_ceil(LOGS_PAGE),
            format!("{n} log groups under one prefix, 50 per page"),
        ),
        term(
            "logs/ListTagsForResource",
            n,
            "1 per log group (ownership; no batch tag read)",
        ),
        term(
            "logs/DescribeMetricFilters",
            n.div_ceil(LOGS_PAGE),
            format!("{n} metric filters, 50 per page"),
        ),
        term(
            "sns/ListTopics",
            n.div_ceil(SNS_PAGE),
            format!("{n} topics, 100 per page"),
        ),
        term(
            "sns/ListTagsForResource",
            n,
            "1 per topic (ownership; no batch tag read)",
        ),
        term(
            "sns/ListSubscriptions",
            n.div_ceil(SNS_PAGE),
            format!("{n} subscriptions, 100 per page"),
        ),
    ];
    out.retain(|t| t.calls > 0 || t.op == "ecs/DescribeTaskDefinition");
    out
}

/// The calls a perfect operator must make to converge `fleet` from an empty account: every
/// create (ownership tags ride in the create call wherever AWS accepts them there), every write
/// AWS has no batch form for, and one listing per page to learn that nothing exists yet and,
/// once, that the services are stable. Independent of the code: this is what the
/// `physical bound` column divides by AWS's rates, so an operator that makes needless calls
/// (re-reads, failed reconciles, polls) shows up as a ratio above 1.
///
/// What a perfect operator cannot avoid for the benchmark fleet:
/// - ECS: CreateCluster (capacity providers and default strategy in the same call), one
///   RegisterTaskDefinition and one CreateService per service (no batch forms), DescribeClusters
///   once, DescribeServices twice per 10 services (absent, then stable).
/// - ELBv2: per ALB CreateLoadBalancer and two CreateListener (attributes are AWS's defaults,
///   so no ModifyLoadBalancerAttributes); per service CreateTargetGroup,
///   ModifyTargetGroupAttributes (a 30 s deregistration delay is not the 300 s default and
///   cannot be set at create) and CreateRule; one DescribeLoadBalancers per 20 names and one
///   DescribeTargetGroups page.
/// - ACM: one ListCertificates page, RequestCertificate, DescribeCertificate twice (the
///   validation record, then ISSUED).
/// - Route53: ListHostedZonesByName, one ListResourceRecordSets page, and the changes batched
///   as far as AWS allows (1000 records per ChangeResourceRecordSets): the validation CNAME,
///   then an alias A and an ownership TXT per host.
/// - Application Auto Scaling: one listing page of targets and of policies, then
///   RegisterScalableTarget and PutScalingPolicy per service.
pub fn physical_minimum(fleet: Fleet) -> Vec<Term> {
    let n = fleet.services;
    let l = fleet.albs();
    let changes = 1 + 2 * n;
    vec![
        term("ecs/DescribeClusters", 1, "1 (absent)"),
        term("ecs/CreateCluster", 1, "1 cluster, strategy included"),
        term(
            "ecs/RegisterTaskDefinition",
            n,
            format!("{n} revisions, no batch form"),
        ),
        term(
            "ecs/DescribeServices",
            2 * n.div_ceil(limits::DESCRIBE_SERVICES),
            format!("{n} services, 10 per call, twice (absent, stable)"),
        ),
        term(
            "ecs/CreateService",
            n,
            format!("{n} services, no batch form"),
        ),
        term(
            "elasticloadbalancingv2/DescribeLoadBalancers",
            l.div_ceil(limits::DESCRIBE_LOAD_BALANCERS),
            format!("{l} ALB name(s), 20 per call"),
        ),
        term("elasticloadbalancingv2/CreateLoadBalancer", l, "1 per ALB"),
        term(
            "elasticloadbalancingv2/CreateListener",
            2 * l,
            ":80 and :443 per ALB",
        ),
        term(
            "elasticloadbalancingv2/DescribeTargetGroups",
            1,
            "1 page (none exist)",
        ),
        term(
            "elasticloadbalancingv2/CreateTargetGroup",
            n,
            "1 per service",
        ),
        term(
            "elasticloadbalancingv2/ModifyTargetGroupAttributes",
            n,
            "1 per service (deregistration delay)",
        ),
        term("elasticloadbalancingv2/CreateRule", n, "1 per service"),
        term("acm/ListCertificates", 1, "1 page (none exist)"),
        term("acm/RequestCertificate", 1, "1 certificate for every ALB"),
        term(
            "acm/DescribeCertificate",
            2,
            "validation record, then ISSUED",
        ),
        term("route53/ListHostedZonesByName", 1, "zone name to id"),
        term("route53/ListResourceRecordSets", 1, "1 page (none of ours)"),
        term(
            "route53/ChangeResourceRecordSets",
            1 + (changes - 1).div_ceil(1000),
            format!("{changes} records, 1000 per batch, validation first"),
        ),
        term(
            "applicationautoscaling/DescribeScalableTargets",
            1,
            "1 page (none exist)",
        ),
        term(
            "applicationautoscaling/DescribeScalingPolicies",
            1,
            "1 page (none exist)",
        ),
        term(
            "applicationautoscaling/RegisterScalableTarget",
            n,
            "1 per service",
        ),
        term(
            "applicationautoscaling/PutScalingPolicy",
            n,
            "1 per service",
        ),
        term("logs/DescribeLogGroups", 1, "1 page (none exist)"),
        term("logs/CreateLogGroup", n, "1 per service, tags included"),
        term("logs/PutRetentionPolicy", n, "1 per service"),
        term("logs/PutMetricFilter", n, "1 per service"),
        term("sns/ListTopics", 1, "1 page (none exist)"),
        term("sns/CreateTopic", n, "1 per service, tags included"),
        term("sns/Subscribe", n, "1 email per service"),
        term(
            "monitoring/DescribeAlarms",
            (ALARMS * n).div_ceil(limits::DESCRIBE_ALARMS),
            "alarm names, 100 per call (none exist)",
        ),
        term(
            "monitoring/PutMetricAlarm",
            ALARMS * n,
            format!("{ALARMS} per service, tags included"),
        ),
    ]
}

/// The proxy's view of a term's operation (`service/Operation`, as the operator's metrics name
/// the service).
fn call_of(op: &str) -> Call {
    let (service, operation) = op.split_once('/').expect("service/Operation");
    let service = match service {
        "ecs" => AwsService::Ecs,
        "ecr" => AwsService::Ecr,
        "elasticloadbalancingv2" => AwsService::Elbv2,
        "route53" => AwsService::Route53,
        "acm" => AwsService::Acm,
        "applicationautoscaling" => AwsService::ApplicationAutoScaling,
        other => AwsService::Other(other.to_string()),
    };
    Call {
        service,
        operation: operation.to_string(),
    }
}

/// Tokens the terms take from each bucket (a call may take from two: ELBv2 writes take an
/// account token too).
pub fn bucket_calls(terms: &[Term]) -> BTreeMap<Bucket, u64> {
    let mut out = BTreeMap::new();
    for t in terms {
        for b in buckets_for(&call_of(t.op)) {
            *out.entry(b).or_default() += t.calls;
        }
    }
    out
}

/// The physical bound of converging `fleet`: the longest any bucket must refill to admit the
/// [`physical_minimum`] at `limits` (AWS's, not the operator's lower budget: its safety margin
/// counts against the operator). `None` when every call fits in the bursts.
pub fn physical_bound(fleet: Fleet, limits: &BTreeMap<Bucket, Limit>) -> Option<(Bucket, f64)> {
    lower_bound(&bucket_calls(&physical_minimum(fleet)), limits)
}

/// `converge / bound` as the table prints it (`1.21x`), `-` without a bound.
pub fn ratio(converge_secs: f64, bound_secs: f64) -> String {
    if bound_secs > 0.0 {
        format!("{:.2}x", converge_secs / bound_secs)
    } else {
        "-".to_string()
    }
}

/// The sum of the terms.
pub fn total(terms: &[Term]) -> u64 {
    terms.iter().map(|t| t.calls).sum()
}

/// `ecs_operator_aws_calls_total` by `service/operation`, all outcomes, from Prometheus text.
pub fn operator_calls(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (labels, v) in labelled(text, "ecs_operator_aws_calls_total") {
        if let (Some(s), Some(op)) = (label(labels, "service"), label(labels, "operation")) {
            *out.entry(format!("{s}/{op}")).or_default() += v as u64;
        }
    }
    out
}

/// One line of the results table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub services: usize,
    pub albs: usize,
    pub converge_secs: f64,
    /// The AWS-bucket lower bound for the calls made, and its bucket.
    pub lower_bound_secs: f64,
    pub lower_bound_bucket: String,
    /// The physical bound ([`physical_bound`]) and its bucket.
    pub physical_bound_secs: f64,
    pub physical_bound_bucket: String,
    /// Requests of the convergence the proxy forwarded.
    pub converge_calls: u64,
    /// Throttling answers received: from the proxy, and as the operator counted them.
    pub throttles_proxy: u64,
    pub throttles_operator: u64,
    pub steady_reads: u64,
    pub batched_min: u64,
    pub steady_writes: u64,
    /// Peak RSS of the convergence.
    pub peak_rss_mib: f64,
    /// Peak RSS of the steady-state resync (one wave over the converged fleet: what a
    /// long-running operator needs every resync interval).
    pub steady_rss_mib: f64,
    pub cpu_secs: f64,
}

impl Row {
    pub const HEADER: &'static str = "| N | ALBs | converge wall s | physical bound s | physical ratio | lower bound s (bucket) | calls | throttles (proxy / operator) | steady reads | batched min | steady writes | peak RSS MiB | steady RSS MiB | CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    pub fn markdown(&self) -> String {
        format!(
            "| {} | {} | {:.1} | {:.1} ({}) | {} | {:.1} ({}) | {} | {} / {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            self.services,
            self.albs,
            self.converge_secs,
            self.physical_bound_secs,
            if self.physical_bound_bucket.is_empty() {
                "none"
            } else {
                &self.physical_bound_bucket
            },
            ratio(self.converge_secs, self.physical_bound_secs),
            self.lower_bound_secs,
            if self.lower_bound_bucket.is_empty() {
                "none"
            } else {
                &self.lower_bound_bucket
            },
            self.converge_calls,
            self.throttles_proxy,
            self.throttles_operator,
            self.steady_reads,
            self.batched_min,
            self.steady_writes,
            self.peak_rss_mib,
            self.steady_rss_mib,
            self.cpu_secs,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::metric_sum;

    fn calls(terms: &[Term], op: &str) -> u64 {
        terms
            .iter()
            .find(|t| t.op == op)
            .unwrap_or_else(|| panic!("no term {op}: {terms:?}"))
            .calls
    }

    #[test]
    fn services_fill_albs_of_a_hundred_with_unique_priorities() {
        let f = Fleet::new(300);
        assert_eq!(f.albs(), 3);
        assert_eq!(f.placement(0), (0, 1));
        assert_eq!(f.placement(99), (0, 100));
        assert_eq!(f.placement(100), (1, 1));
        assert_eq!(f.placement(299), (2, 100));
        assert_eq!(Fleet::new(10).albs(), 1);
        assert_eq!(Fleet::new(101).albs(), 2);
        assert_eq!(Fleet::new(101).services_on(1), 1);
    }

    #[test]
    fn the_batched_minimum_of_ten_services_on_one_alb() {
        let m = batched_minimum(Fleet::new(10), false);
        assert_eq!(calls(&m, "ecs/DescribeServices"), 1);
        assert_eq!(calls(&m, "ecs/DescribeTaskDefinition"), 0);
        assert_eq!(calls(&m, "elasticloadbalancingv2/DescribeRules"), 1);
        assert_eq!(
            calls(&m, "elasticloadbalancingv2/DescribeTargetGroupAttributes"),
            10
        );
        // 3 + 20 tagged ARNs: 2 calls.
        assert_eq!(calls(&m, "elasticloadbalancingv2/DescribeTags"), 2);
        // 23 records: one page.
        assert_eq!(calls(&m, "route53/ListResourceRecordSets"), 1);
        assert_eq!(
            calls(&m, "applicationautoscaling/DescribeScalingPolicies"),
            1
        );
        // 20 alarm names: one DescribeAlarms, then a tag read per alarm, log group and topic;
        // one page of log groups, filters, topics and subscriptions.
        assert_eq!(calls(&m, "monitoring/DescribeAlarms"), 1);
        assert_eq!(calls(&m, "monitoring/ListTagsForResource"), 20);
        assert_eq!(calls(&m, "sns/ListTopics"), 1);
        // 1 + 1 + 0 + ELBv2 (1 + 1 + 1 + 1 + 1 + 1 + 10 + 2) + ACM 3 + Route53 2 + AAS 2
        // + CloudWatch (1 + 20) + Logs (1 + 10 + 1) + SNS (1 + 10 + 1).
        assert_eq!(total(&m), 1 + 1 + 18 + 3 + 2 + 2 + 21 + 12 + 12);
    }

    #[test]
    fn the_batched_minimum_of_three_hundred_services_on_three_albs() {
        let m = batched_minimum(Fleet::new(300), true);
        assert_eq!(calls(&m, "ecs/DescribeServices"), 30);
        assert_eq!(calls(&m, "ecs/DescribeTaskDefinition"), 300);
        assert_eq!(calls(&m, "elasticloadbalancingv2/DescribeLoadBalancers"), 1);
        assert_eq!(calls(&m, "elasticloadbalancingv2/DescribeListeners"), 3);
        assert_eq!(calls(&m, "elasticloadbalancingv2/DescribeRules"), 3);
        assert_eq!(calls(&m, "elasticloadbalancingv2/DescribeTargetGroups"), 1);
        // 9 + 600 ARNs, 20 per call.
        assert_eq!(calls(&m, "elasticloadbalancingv2/DescribeTags"), 31);
        // 603 records, 300 per page.
        assert_eq!(calls(&m, "route53/ListResourceRecordSets"), 3);
        assert_eq!(
            calls(&m, "applicationautoscaling/DescribeScalableTargets"),
            6
        );
        assert_eq!(
            calls(&m, "applicationautoscaling/DescribeScalingPolicies"),
            30
        );
    }

    #[test]
    fn the_physical_bound_of_three_hundred_services_is_the_elbv2_write_bucket() {
        let limits = crate::bucket_proxy::aws_limits();
        let calls = bucket_calls(&physical_minimum(Fleet::new(300)));
        // 3 ALBs x (1 + 2) + 300 x 3 ELBv2 writes.
        assert_eq!(calls[&Bucket::Elbv2Write], 909);
        assert_eq!(calls[&Bucket::EcsRegisterTaskDefinition], 300);
        let (bucket, secs) = physical_bound(Fleet::new(300), &limits).expect("a bound");
        assert_eq!(bucket, Bucket::Elbv2Write);
        // (909 - burst 3) / 3 per second.
        assert!((secs - 302.0).abs() < 1e-9, "{secs}");
    }

    #[test]
    fn the_physical_bound_of_a_thousand_services_on_ten_albs() {
        let limits = crate::bucket_proxy::aws_limits();
        let (bucket, secs) = physical_bound(Fleet::new(1000), &limits).expect("a bound");
        assert_eq!(Fleet::new(1000).albs(), 10);
        assert_eq!(bucket, Bucket::Elbv2Write);
        // (10 x 3 + 1000 x 3 - 3) / 3.
        assert!((secs - 1009.0).abs() < 1e-9, "{secs}");
        // 2001 records need 3 change batches: the validation CNAME, then 1000 + 1000.
        let m = physical_minimum(Fleet::new(1000));
        assert_eq!(calls(&m, "route53/ChangeResourceRecordSets"), 3);
    }

    #[test]
    fn the_physical_ratio_reads_as_a_factor() {
        assert_eq!(ratio(363.0, 302.0), "1.20x");
        assert_eq!(ratio(10.0, 0.0), "-");
    }

    #[test]
    fn operator_calls_are_summed_over_outcomes() {
        let text = "# HELP x\n\
            ecs_operator_aws_calls_total{service=\"ecs\",operation=\"DescribeServices\",outcome=\"ok\"} 7\n\
            ecs_operator_aws_calls_total{service=\"ecs\",operation=\"DescribeServices\",outcome=\"throttled\"} 2\n\
            ecs_operator_aws_calls_total{service=\"route53\",operation=\"GetChange\",outcome=\"ok\"} 1\n\
            ecs_operator_aws_throttles_total{service=\"ecs\"} 2\n";
        let c = operator_calls(text);
        assert_eq!(c.get("ecs/DescribeServices"), Some(&9));
        assert_eq!(c.get("route53/GetChange"), Some(&1));
        assert_eq!(
            metric_sum(text, "ecs_operator_aws_throttles_total", &[]),
            2.0
        );
    }
}

//! The shared observe cache against moto: a steady-state resync wave of a converged fleet reads
//! AWS in batches (DescribeServices 10 services per call, DescribeTags 20 ARNs per call, one
//! listing per kind...) and writes nothing; drift made before a wave is restored in that wave;
//! a reconcile that creates something never creates it twice because of a stale snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use ecs_operator::aws::calls::is_mutating;
use ecs_operator::aws::CallMetrics;
use ecs_operator::resources::Snapshot;
use ecs_operator::spec::Kind;
use ecs_operator::store::Phase;
use ecs_operator_tests::fixtures::{
    change_records, listeners, load_balancer_arn, redirect_with_302, sni_certificates,
    target_group, Env, Fleet, Network,
};
use ecs_operator_tests::{cli_counted, Moto};
use futures::future::join_all;

const ZONE: &str = "example.com";
/// ServiceSpecs in the test fleet.
const SERVICES: usize = 12;

fn svc(i: usize) -> String {
    format!("svc-{i:02}")
}

/// One ClusterSpec (`prod`, one ALB whose default certificate covers the apex and
/// `*.example.com`) and [`SERVICES`] ServiceSpecs behind it, each with a host rule, a target
/// group and DNS records. Services 1-4 own an ECR repository, 5-8 autoscale, and 11-12 serve a
/// host the default certificate does not cover (`svc-NN.internal.example.com`), so each has its
/// own certificate attached to the HTTPS listener by SNI.
fn fleet_specs(net: &Network) -> Vec<(String, String)> {
    let (s0, s1, sg) = (&net.subnets[0], &net.subnets[1], &net.security_group);
    let mut files = vec![(
        "cluster.yaml".to_string(),
        format!(
            r#"apiVersion: ecs-operator.io/v1alpha1
kind: ClusterSpec
metadata: {{name: prod}}
spec:
  defaultCapacityProviderStrategy: [{{capacityProvider: FARGATE, weight: 1}}]
  loadBalancers:
    - name: prod-public
      scheme: internet-facing
      subnets: [{s0}, {s1}]
      securityGroups: [{sg}]
      certificate: {{domains: [{ZONE}, "*.{ZONE}"], hostedZone: {ZONE}}}
"#
        ),
    )];
    for i in 1..=SERVICES {
        let name = svc(i);
        let host = if i > 10 {
            format!("{name}.internal.{ZONE}")
        } else {
            format!("{name}.{ZONE}")
        };
        let repository = if i <= 4 {
            format!(
                "  repository: {{name: {name}, lifecycle: {{expireUntaggedAfterDays: 1, keepTagged: [{{tagPrefixes: [prod-], count: 10}}]}}}}\n"
            )
        } else {
            String::new()
        };
        let image = if i <= 4 {
            format!("{name}:prod-1")
        } else {
            "public.ecr.aws/nginx/nginx:1.27".to_string()
        };
        // Every service but svc-09 (whose desired count is edited by hand) scales: 11
        // policies, more than one page of DescribeScalingPolicies (AWS: 10 at most).
        let autoscaling = if i != 9 {
            "  autoscaling: {minCapacity: 1, maxCapacity: 3, targetCpuUtilization: 70}\n"
        } else {
            ""
        };
        files.push((
            format!("{name}.yaml"),
            format!(
                r#"apiVersion: ecs-operator.io/v1alpha1
kind: ServiceSpec
metadata: {{name: {name}}}
spec:
  cluster: prod
{repository}  container: {{name: app, image: "{image}", port: 8080, cpu: 256, memory: 512}}
  network: {{subnets: [{s0}, {s1}], securityGroups: [{sg}]}}
{autoscaling}  ingress:
    loadBalancer: prod-public
    hosts: [{host}]
    healthCheck: {{path: /health, healthyThreshold: 2, unhealthyThreshold: 2}}
    deregistrationDelaySeconds: 30
    dns: {{hostedZone: {ZONE}}}
"#
            ),
        ));
    }
    files
}

/// moto with issued certificates and rollouts that complete, the network, the fleet's specs in
/// a folder, converged by direct reconciles.
async fn converged() -> Env {
    let moto_env = [
        ("MOTO_ACM_VALIDATION_WAIT", "0"),
        ("MOTO_ECS_SERVICE_RUNNING", "1"),
    ];
    Env::converged(&moto_env, fleet_specs, 8).await.0
}

/// Attempts per `service/operation` since `before`.
fn since(
    calls: &CallMetrics,
    before: &BTreeMap<ecs_operator::aws::calls::CallLabels, u64>,
) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (labels, n) in calls.snapshot() {
        let d = n - before.get(&labels).copied().unwrap_or(0);
        if d > 0 {
            *out.entry(format!("{}/{}", labels.service, labels.operation))
                .or_default() += d;
        }
    }
    out
}

/// `run --once` in-process on the store; its AWS calls per `service/operation`.
async fn run_once(env: &Env) -> BTreeMap<String, u64> {
    let calls = CallMetrics::new();
    let sdk = env.moto.sdk_config().await;
    let out = cli_counted(
        &[
            "run",
            "--store",
            &env.store(),
            "--once",
            "--timeout",
            "120s",
        ],
        Some(sdk),
        Some(calls.clone()),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    since(&calls, &BTreeMap::new())
}

fn table(calls: &BTreeMap<String, u64>) -> String {
    calls
        .iter()
        .map(|(k, v)| format!("  {k:55} {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reconcile every spec of the fleet as one wave sharing `wave`: the ClusterSpec first, then
/// every ServiceSpec at once (as the runtime would, up to its concurrency). Every result must
/// be a report.
async fn wave(fleet: &Fleet, wave: &Arc<Snapshot>) -> BTreeMap<String, Phase> {
    let cluster = fleet
        .reconcile_in_wave("ClusterSpec/prod", wave)
        .await
        .unwrap_or_else(|e| panic!("ClusterSpec/prod: {e}"));
    let mut out = BTreeMap::from([("ClusterSpec/prod".to_string(), cluster.phase)]);
    let keys: Vec<String> = fleet
        .specs
        .keys()
        .filter(|k| k.kind == Kind::ServiceSpec)
        .map(|k| k.to_string())
        .collect();
    let results = join_all(keys.iter().map(|k| fleet.reconcile_in_wave(k, wave))).await;
    for (k, r) in keys.into_iter().zip(results) {
        let r = r.unwrap_or_else(|e| panic!("{k}: {e}"));
        out.insert(k, r.phase);
    }
    out
}

/// Every read and write of one steady-state wave of the test fleet: what AWS can batch is read
/// once per wave (per cluster, listener, zone...), the rest once per resource.
fn steady_state_wave() -> BTreeMap<String, u64> {
    let services = SERVICES as u64;
    BTreeMap::from(
        [
            // ceil(12 / 10) for the one cluster; the ClusterSpec's own cluster.
            ("ecs/DescribeServices", services.div_ceil(10)),
            ("ecs/DescribeClusters", 1),
            // A new process has no revision cached yet: one per service, then none.
            ("ecs/DescribeTaskDefinition", services),
            ("elasticloadbalancingv2/DescribeLoadBalancers", 1),
            ("elasticloadbalancingv2/DescribeListeners", 1),
            ("elasticloadbalancingv2/DescribeTargetGroups", 1),
            ("elasticloadbalancingv2/DescribeRules", 1),
            ("elasticloadbalancingv2/DescribeListenerCertificates", 1),
            // Target groups (20 per call), rules (20 per call), and the ClusterSpec's load
            // balancer and listeners.
            (
                "elasticloadbalancingv2/DescribeTags",
                services.div_ceil(20) + services.div_ceil(20) + 2,
            ),
            // No batch form: one per load balancer and per target group.
            ("elasticloadbalancingv2/DescribeLoadBalancerAttributes", 1),
            (
                "elasticloadbalancingv2/DescribeTargetGroupAttributes",
                services,
            ),
            ("route53/ListHostedZonesByName", 1),
            ("route53/ListResourceRecordSets", 1),
            // One listing; tags and description once per certificate (the default one and
            // the two SNI ones).
            ("acm/ListCertificates", 1),
            ("acm/ListTagsForCertificate", 3),
            ("acm/DescribeCertificate", 3),
            // One listing; tags and lifecycle policy once per repository (no batch form).
            ("ecr/DescribeRepositories", 1),
            ("ecr/ListTagsForResource", 4),
            ("ecr/GetLifecyclePolicy", 4),
            ("applicationautoscaling/DescribeScalableTargets", 1),
            // 11 policies, 10 per page (AWS refuses larger pages; moto would not).
            ("applicationautoscaling/DescribeScalingPolicies", 2),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    )
}

#[tokio::test]
async fn a_steady_state_wave_reads_in_batches_and_writes_nothing() {
    let env = converged().await;
    // `run --once` on a converged fleet: every spec reconciled once, in one wave.
    let calls = run_once(&env).await;
    let reads: u64 = calls.values().sum();
    println!(
        "one steady-state wave of 1 ClusterSpec + {SERVICES} ServiceSpecs: {reads} calls\n{}",
        table(&calls)
    );
    let mutating: BTreeMap<_, _> = calls
        .iter()
        .filter(|(k, _)| is_mutating(k.split('/').nth(1).unwrap_or_default()))
        .collect();
    assert!(mutating.is_empty(), "mutating calls: {mutating:?}");
    assert_eq!(
        calls,
        steady_state_wave(),
        "reads of one wave:\n{}",
        table(&calls)
    );

    // The same wave through the library, with the revisions cached: no task definition read.
    let before = env.fleet.calls.snapshot();
    let phases = wave(&env.fleet, &Snapshot::new(1)).await;
    assert!(phases.values().all(|p| *p == Phase::Ready), "{phases:?}");
    let mut expected = steady_state_wave();
    let revisions = expected.remove("ecs/DescribeTaskDefinition").unwrap();
    let mut again = since(&env.fleet.calls, &before);
    let cached = again.remove("ecs/DescribeTaskDefinition").unwrap_or(0);
    assert!(cached <= revisions, "{again:?}");
    assert_eq!(again, expected, "{}", table(&again));
}

/// SDK clients for hand edits.
struct Hands {
    elb: aws_sdk_elasticloadbalancingv2::Client,
    ecs: aws_sdk_ecs::Client,
    r53: aws_sdk_route53::Client,
    ecr: aws_sdk_ecr::Client,
    scaling: aws_sdk_applicationautoscaling::Client,
}

impl Hands {
    async fn new(moto: &Moto) -> Hands {
        let sdk = moto.sdk_config().await;
        Hands {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            r53: aws_sdk_route53::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            scaling: aws_sdk_applicationautoscaling::Client::new(&sdk),
        }
    }

    /// The ARN of the load balancer `prod-public`.
    async fn lb_arn(&self) -> String {
        load_balancer_arn(&self.elb, "prod-public").await
    }

    /// The listener of `prod-public` on `port`.
    async fn listener(&self, port: i32) -> aws_sdk_elasticloadbalancingv2::types::Listener {
        listeners(&self.elb, "prod-public")
            .await
            .remove(&port)
            .unwrap()
    }

    /// The target group `name`.
    async fn target_group(&self, name: &str) -> aws_sdk_elasticloadbalancingv2::types::TargetGroup {
        target_group(&self.elb, name).await
    }

    /// The rules of the HTTPS listener that forward to the target group of `service`.
    async fn rules_to(&self, service: &str) -> Vec<aws_sdk_elasticloadbalancingv2::types::Rule> {
        let tg = self
            .target_group(service)
            .await
            .target_group_arn()
            .unwrap()
            .to_string();
        self.elb
            .describe_rules()
            .listener_arn(self.listener(443).await.listener_arn().unwrap())
            .page_size(400)
            .send()
            .await
            .unwrap()
            .rules()
            .iter()
            .filter(|r| {
                r.actions()
                    .iter()
                    .any(|a| a.target_group_arn() == Some(tg.as_str()))
            })
            .cloned()
            .collect()
    }

    async fn zone_id(&self) -> String {
        self.r53
            .list_hosted_zones_by_name()
            .dns_name(ZONE)
            .send()
            .await
            .unwrap()
            .hosted_zones()[0]
            .id()
            .trim_start_matches("/hostedzone/")
            .to_string()
    }

    async fn record(
        &self,
        name: &str,
        rtype: &str,
    ) -> Option<aws_sdk_route53::types::ResourceRecordSet> {
        let out = self
            .r53
            .list_resource_record_sets()
            .hosted_zone_id(self.zone_id().await)
            .send()
            .await
            .unwrap();
        out.resource_record_sets()
            .iter()
            .find(|r| r.name().trim_end_matches('.') == name && r.r#type().as_str() == rtype)
            .cloned()
    }
}

/// Hand edits of something every kind of snapshot entry covers (the ones AWS cannot batch
/// too): target group health check and attributes, rules, ECS desired count, scaling range,
/// ECR tag mutability, DNS record, load balancer attribute, listener default action, SNI certificate.
async fn edit_by_hand(h: &Hands) {
    use aws_sdk_elasticloadbalancingv2::types::{
        Certificate, HostHeaderConditionConfig, LoadBalancerAttribute, RuleCondition,
        TargetGroupAttribute,
    };
    use aws_sdk_route53::types::{AliasTarget, ChangeAction};
    let tg = |n: usize| async move {
        h.target_group(&svc(n))
            .await
            .target_group_arn()
            .unwrap()
            .to_string()
    };
    // Target group health check path (svc-01) and deregistration delay (svc-02).
    h.elb
        .modify_target_group()
        .target_group_arn(tg(1).await)
        .health_check_path("/changed")
        .send()
        .await
        .unwrap();
    h.elb
        .modify_target_group_attributes()
        .target_group_arn(tg(2).await)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("120")
                .build(),
        )
        .send()
        .await
        .unwrap();
    // The host of svc-03's rule, and svc-04's rule deleted.
    let rule3 = h.rules_to(&svc(3)).await[0].rule_arn().unwrap().to_string();
    h.elb
        .modify_rule()
        .rule_arn(&rule3)
        .conditions(
            RuleCondition::builder()
                .field("host-header")
                .host_header_config(
                    HostHeaderConditionConfig::builder()
                        .values(format!("{}.{ZONE}", svc(3)))
                        .values(format!("extra.{ZONE}"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rule4 = h.rules_to(&svc(4)).await[0].rule_arn().unwrap().to_string();
    h.elb.delete_rule().rule_arn(&rule4).send().await.unwrap();
    // svc-09's desired count, svc-05's scaling range, svc-01's tag mutability.
    h.ecs
        .update_service()
        .cluster("prod")
        .service(svc(9))
        .desired_count(3)
        .send()
        .await
        .unwrap();
    h.scaling
        .register_scalable_target()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_id(format!("service/prod/{}", svc(5)))
        .scalable_dimension(
            aws_sdk_applicationautoscaling::types::ScalableDimension::EcsServiceDesiredCount,
        )
        .min_capacity(1)
        .max_capacity(6)
        .send()
        .await
        .unwrap();
    h.ecr
        .put_image_tag_mutability()
        .repository_name(svc(1))
        .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Immutable)
        .send()
        .await
        .unwrap();
    // svc-10's A record no longer evaluates target health. (Not deleted: moto refuses to
    // create a record again with the very change that created it first.)
    let mut a10 = h.record(&format!("{}.{ZONE}", svc(10)), "A").await.unwrap();
    let alias = a10.alias_target().unwrap().clone();
    a10.alias_target = Some(
        AliasTarget::builder()
            .hosted_zone_id(alias.hosted_zone_id())
            .dns_name(alias.dns_name())
            .evaluate_target_health(false)
            .build()
            .unwrap(),
    );
    change_records(&h.r53, &h.zone_id().await, ChangeAction::Upsert, [a10]).await;
    // The cluster's load balancer idle timeout and :80 redirect; svc-11's SNI certificate.
    h.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(h.lb_arn().await)
        .attributes(
            LoadBalancerAttribute::builder()
                .key("idle_timeout.timeout_seconds")
                .value("120")
                .build(),
        )
        .send()
        .await
        .unwrap();
    redirect_with_302(&h.elb, h.listener(80).await.listener_arn().unwrap()).await;
    let https = h.listener(443).await;
    let sni: Vec<String> = sni_certificates(&h.elb, https.listener_arn().unwrap())
        .await
        .into_iter()
        .filter(|a| Some(a.as_str()) != https.certificates()[0].certificate_arn())
        .collect();
    assert_eq!(sni.len(), 2, "two SNI certificates: {sni:?}");
    h.elb
        .remove_listener_certificates()
        .listener_arn(https.listener_arn().unwrap())
        .certificates(Certificate::builder().certificate_arn(&sni[0]).build())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn drift_made_before_a_wave_starts_is_restored_by_that_wave() {
    let env = converged().await;
    let fleet = &env.fleet;
    // A wave reads everything; then people edit by hand, before the next wave starts.
    wave(fleet, &Snapshot::new(1)).await;
    let h = Hands::new(&env.moto).await;
    Box::pin(edit_by_hand(&h)).await;
    for key in [
        "ServiceSpec/svc-01",
        "ServiceSpec/svc-04",
        "ClusterSpec/prod",
    ] {
        assert!(!fleet.diff(key).await.is_empty(), "{key} shows no drift");
    }

    // One wave, one reconcile of each spec: everything is restored, each with one call.
    let before = fleet.calls.snapshot();
    wave(fleet, &Snapshot::new(2)).await;
    let fixes = fleet.mutations_since(&before);
    let expected: BTreeMap<String, u64> = [
        "elasticloadbalancingv2/ModifyTargetGroup",
        "elasticloadbalancingv2/ModifyTargetGroupAttributes",
        "elasticloadbalancingv2/ModifyRule",
        "elasticloadbalancingv2/CreateRule",
        "elasticloadbalancingv2/ModifyLoadBalancerAttributes",
        "elasticloadbalancingv2/ModifyListener",
        "elasticloadbalancingv2/AddListenerCertificates",
        "ecs/UpdateService",
        "applicationautoscaling/RegisterScalableTarget",
        "ecr/PutImageTagMutability",
        "route53/ChangeResourceRecordSets",
    ]
    .into_iter()
    .map(|k| (k.to_string(), 1))
    .collect();
    assert_eq!(fixes, expected);
    for key in fleet.specs.keys() {
        let key = key.to_string();
        let left = fleet.diff(&key).await;
        assert!(
            left.is_empty(),
            "{key} still drifts after the wave: {left:?}"
        );
    }
    assert_eq!(h.rules_to(&svc(4)).await.len(), 1);
    let a10 = h.record(&format!("{}.{ZONE}", svc(10)), "A").await.unwrap();
    assert!(a10.alias_target().unwrap().evaluate_target_health());

    // The next wave has nothing left to do.
    let before = fleet.calls.snapshot();
    wave(fleet, &Snapshot::new(3)).await;
    assert_eq!(fleet.mutations_since(&before), BTreeMap::new());
}

#[tokio::test]
async fn a_service_created_during_a_wave_is_created_once() {
    let mut env = converged().await;
    // The wave has read everything before svc-13 appears.
    let snapshot = Snapshot::new(1);
    wave(&env.fleet, &snapshot).await;
    let net_yaml = std::fs::read_to_string(env.dir.path().join("svc-12.yaml"))
        .unwrap()
        .replace("svc-12.internal", "svc-13")
        .replace("svc-12", "svc-13");
    std::fs::write(env.dir.path().join("svc-13.yaml"), net_yaml).unwrap();
    env.fleet.specs = ecs_operator_tests::fixtures::load_specs(env.dir.path());
    assert_eq!(env.fleet.specs.len(), SERVICES + 2);
    let fleet = &env.fleet;

    // svc-13 is reconciled in that wave (worst case: everything the wave read predates it),
    // at the same time as others, and then again in the same wave.
    let before = fleet.calls.snapshot();
    for _ in 0..2 {
        let keys = [
            "ServiceSpec/svc-13",
            "ServiceSpec/svc-01",
            "ServiceSpec/svc-12",
        ];
        for (k, r) in keys
            .iter()
            .zip(join_all(keys.iter().map(|k| fleet.reconcile_in_wave(k, &snapshot))).await)
        {
            r.unwrap_or_else(|e| panic!("{k}: {e}"));
        }
    }
    let writes = fleet.mutations_since(&before);
    for op in [
        "elasticloadbalancingv2/CreateTargetGroup",
        "elasticloadbalancingv2/CreateRule",
        "ecs/RegisterTaskDefinition",
        "ecs/CreateService",
        "route53/ChangeResourceRecordSets",
    ] {
        assert_eq!(writes.get(op), Some(&1), "{op}: {writes:?}");
    }
    let h = Hands::new(&env.moto).await;
    assert_eq!(h.rules_to("svc-13").await.len(), 1);
    let services = h
        .ecs
        .describe_services()
        .cluster("prod")
        .services("svc-13")
        .send()
        .await
        .unwrap();
    assert_eq!(services.services().len(), 1);
    let revisions = h
        .ecs
        .list_task_definitions()
        .family_prefix("svc-13")
        .send()
        .await
        .unwrap();
    assert_eq!(revisions.task_definition_arns().len(), 1);

    // It converges from there without creating anything again.
    let before = fleet.calls.snapshot();
    for _ in 0..3 {
        fleet.reconcile("ServiceSpec/svc-13").await.unwrap();
    }
    let writes = fleet.mutations_since(&before);
    assert!(
        writes
            .keys()
            .all(|op| !op.contains("/Create") && !op.contains("/Register")),
        "{writes:?}"
    );
}

/// The reads (not writes) in `calls`.
fn reads(calls: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    calls
        .iter()
        .filter(|(op, _)| !is_mutating(op.split_once('/').map_or(op.as_str(), |(_, o)| o)))
        .map(|(op, n)| (op.clone(), *n))
        .collect()
}

#[tokio::test]
async fn a_requeue_that_follows_a_rollout_reads_only_the_service_and_reports_what_a_full_reconcile_does(
) {
    let mut env = converged().await;
    // A new image for svc-05 (behind the ALB, autoscaled): the full reconcile starts a rollout.
    let path = env.dir.path().join("svc-05.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    assert!(yaml.contains("nginx:1.27"), "{yaml}");
    std::fs::write(&path, yaml.replace("nginx:1.27", "nginx:1.28")).unwrap();
    env.fleet.specs = ecs_operator_tests::fixtures::load_specs(env.dir.path());
    let fleet = &env.fleet;
    let key = "ServiceSpec/svc-05";
    let full = fleet.reconcile(key).await.unwrap();
    assert_eq!(full.phase, Phase::Progressing, "{full:?}");
    assert!(full.requeue_after.is_some(), "{full:?}");

    // Its follow-up: one DescribeServices (K = 1: the rollout is the only thing the full
    // reconcile waited for, and everything else matched the spec when it ended), no ELBv2,
    // Route53, ACM, autoscaling, CloudWatch or ECR call, and no write.
    let before = fleet.calls.snapshot();
    let follow = fleet.reconcile_follow_up(key).await.unwrap();
    let calls = since(&fleet.calls, &before);
    assert_eq!(
        calls,
        BTreeMap::from([("ecs/DescribeServices".to_string(), 1)]),
        "{}",
        table(&calls)
    );
    // It reports the same resources and conditions as a full reconcile would now.
    let before = fleet.calls.snapshot();
    let again = fleet.reconcile(key).await.unwrap();
    let full_reads = reads(&since(&fleet.calls, &before));
    assert_eq!(fleet.mutations_since(&before), BTreeMap::new());
    assert_eq!(follow.resources, again.resources);
    assert_eq!(follow.conditions, again.conditions);
    assert_eq!(follow.phase, again.phase);
    assert!(
        full_reads
            .keys()
            .any(|op| op.starts_with("elasticloadbalancingv2/")),
        "a full reconcile reads the edge: {}",
        table(&full_reads)
    );

    // A spec changed since the full reconcile: its "follow-up" is a full reconcile.
    let yaml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, yaml.replace("nginx:1.28", "nginx:1.29")).unwrap();
    env.fleet.specs = ecs_operator_tests::fixtures::load_specs(env.dir.path());
    let fleet = &env.fleet;
    let before = fleet.calls.snapshot();
    fleet.reconcile_follow_up(key).await.unwrap();
    let calls = since(&fleet.calls, &before);
    assert_eq!(
        calls.get("ecs/RegisterTaskDefinition"),
        Some(&1),
        "{}",
        table(&calls)
    );
    assert!(
        calls
            .keys()
            .any(|op| op.starts_with("elasticloadbalancingv2/")),
        "{}",
        table(&calls)
    );
}

#[tokio::test]
async fn run_resyncs_in_waves_and_a_hand_edit_between_waves_is_restored_by_the_next() {
    let env = converged().await;
    let calls = CallMetrics::new();
    let sdk = env.moto.sdk_config().await;
    let store = env.store();
    let (c, s) = (calls.clone(), sdk.clone());
    let run = tokio::spawn(async move {
        cli_counted(
            &[
                "run",
                "--store",
                &store,
                "--resync-interval",
                "4s",
                "--timeout",
                "18s",
            ],
            Some(s),
            Some(c),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let h = Hands::new(&env.moto).await;
    let tg = h.target_group(&svc(1)).await;
    h.elb
        .modify_target_group()
        .target_group_arn(tg.target_group_arn().unwrap())
        .health_check_path("/changed")
        .send()
        .await
        .unwrap();
    let out = run.await.unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        h.target_group(&svc(1)).await.health_check_path(),
        Some("/health")
    );
    let calls = since(&calls, &BTreeMap::new());
    let writes: BTreeMap<_, _> = calls
        .iter()
        .filter(|(k, _)| is_mutating(k.split('/').nth(1).unwrap_or_default()))
        .collect();
    assert_eq!(
        writes,
        BTreeMap::from([(&"elasticloadbalancingv2/ModifyTargetGroup".to_string(), &1)])
    );
    // Waves at start-up and every 4 s ± 10% for 18 s: between 4 and 6 of them (the ClusterSpec
    // reads its cluster once per wave). Each reads the cluster's 12 services in 2 calls and
    // every target group in 1, plus, in the wave that restores the edit, svc-01's fresh reads
    // after its write (one DescribeServices of its own). Its ModifyTargetGroup is recorded
    // into the wave's listing of target groups, so no reconcile lists them again, unless the
    // listing was being read when the write was recorded (then it is read once more).
    let waves = calls["ecs/DescribeClusters"];
    let services = calls["ecs/DescribeServices"];
    let groups = calls["elasticloadbalancingv2/DescribeTargetGroups"];
    assert!((4..=6).contains(&waves), "{}", table(&calls));
    assert_eq!(services, 2 * waves + 1, "{}", table(&calls));
    assert!(groups == waves || groups == waves + 1, "{}", table(&calls));
}

/// The ClusterSpec of [`fleet_specs`] and `k` new ServiceSpecs `svc-01`.. behind it, each like
/// svc-05 there: a host rule at the lowest free priority, a target group, DNS records,
/// autoscaling.
fn first_convergence_specs(net: &Network, k: usize) -> Vec<(String, String)> {
    let files = fleet_specs(net);
    let template = files
        .iter()
        .find(|(n, _)| n == "svc-05.yaml")
        .expect("svc-05 in the fleet")
        .1
        .clone();
    let mut out = vec![files[0].clone()];
    out.extend((1..=k).map(|i| {
        (
            format!("{}.yaml", svc(i)),
            template.replace("svc-05", &svc(i)),
        )
    }));
    out
}

/// What one wave of `k` ServiceSpecs reconciled for the first time at once behind a converged
/// ClusterSpec read of ELBv2.
struct FirstWave {
    elbv2_reads: BTreeMap<String, u64>,
    writes: BTreeMap<String, u64>,
    snapshot: Arc<Snapshot>,
    env: Env,
}

/// [`FirstWave`] of `k` services.
async fn first_wave(k: usize) -> FirstWave {
    let moto_env = [
        ("MOTO_ACM_VALIDATION_WAIT", "0"),
        ("MOTO_ECS_SERVICE_RUNNING", "1"),
    ];
    let env = Env::new(&moto_env, |net| first_convergence_specs(net, k)).await;
    let mut ready = false;
    for _ in 0..5 {
        let r = env.fleet.reconcile("ClusterSpec/prod").await.unwrap();
        if r.phase == Phase::Ready {
            ready = true;
            break;
        }
    }
    assert!(ready, "the ClusterSpec converges first");
    let before = env.fleet.calls.snapshot();
    let snapshot = Snapshot::new(1);
    let phases = wave(&env.fleet, &snapshot).await;
    assert_eq!(phases.len(), k + 1, "{phases:?}");
    let calls = since(&env.fleet.calls, &before);
    let elbv2_reads = reads(&calls)
        .into_iter()
        .filter(|(op, _)| op.starts_with("elasticloadbalancingv2/"))
        .collect();
    FirstWave {
        elbv2_reads,
        writes: env.fleet.mutations_since(&before),
        snapshot,
        env,
    }
}

#[tokio::test]
async fn a_first_wave_reads_each_elbv2_listing_once_however_many_services_create_their_target_group_and_rule(
) {
    let four = first_wave(4).await;
    let (reads4, writes4) = (four.elbv2_reads, four.writes);
    drop(four.env);
    let FirstWave {
        elbv2_reads: reads8,
        writes: writes8,
        snapshot,
        env,
    } = first_wave(8).await;
    println!("ELBv2 reads, 4 services:\n{}", table(&reads4));
    println!("ELBv2 reads, 8 services:\n{}", table(&reads8));
    for (k, writes) in [(4, &writes4), (8, &writes8)] {
        for op in [
            "elasticloadbalancingv2/CreateTargetGroup",
            "elasticloadbalancingv2/CreateRule",
        ] {
            assert_eq!(
                writes.get(op),
                Some(&k),
                "{op} with {k} services: {writes:?}"
            );
        }
    }
    // Every created target group and rule is recorded into the wave's listings, so twice the
    // services read them no more often: each listing once, and the tags of what existed when
    // it was read (the ClusterSpec's load balancer and listeners; no group or rule yet).
    assert_eq!(reads8, reads4, "ELBv2 reads grow with the services");
    for op in [
        "elasticloadbalancingv2/DescribeLoadBalancers",
        "elasticloadbalancingv2/DescribeListeners",
        "elasticloadbalancingv2/DescribeTargetGroups",
        "elasticloadbalancingv2/DescribeRules",
        "elasticloadbalancingv2/DescribeListenerCertificates",
    ] {
        assert_eq!(reads8.get(op), Some(&1), "{op}: {}", table(&reads8));
    }
    assert_eq!(
        reads8.get("elasticloadbalancingv2/DescribeTags"),
        Some(&2),
        "{}",
        table(&reads8)
    );

    // The wave's pictures are true: each service reconciled again in the same wave finds its
    // target group and rule as it made them (distinct priorities, reserved by the wave) and
    // changes nothing on ELBv2, creates nothing anywhere.
    let fleet = &env.fleet;
    let before = fleet.calls.snapshot();
    wave(fleet, &snapshot).await;
    let again = fleet.mutations_since(&before);
    assert!(
        again
            .keys()
            .all(|op| !op.starts_with("elasticloadbalancingv2/")
                && !op.contains("/Create")
                && !op.contains("/Register")),
        "{again:?}"
    );

    // Converged from there, without creating anything twice; a wave after that writes nothing.
    let start = BTreeMap::new();
    fleet.converge(8).await;
    let all = fleet.mutations_since(&start);
    for op in [
        "elasticloadbalancingv2/CreateTargetGroup",
        "elasticloadbalancingv2/CreateRule",
        "ecs/CreateService",
    ] {
        assert_eq!(all.get(op), Some(&8), "{op}: {all:?}");
    }
    let h = Hands::new(&env.moto).await;
    for i in 1..=8 {
        assert_eq!(h.rules_to(&svc(i)).await.len(), 1, "{}", svc(i));
    }
    let before = fleet.calls.snapshot();
    wave(fleet, &Snapshot::new(3)).await;
    assert_eq!(fleet.mutations_since(&before), BTreeMap::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_spec_whose_cluster_is_not_ready_waits_without_a_single_aws_call() {
    use ecs_operator::runtime::Run;
    use ecs_operator::spec::SpecKey;
    use ecs_operator_tests::fixtures::{
        controller_over, reference_specs, write_specs, EDGE_MOTO_ENV,
    };
    let moto = Moto::start_with_env(EDGE_MOTO_ENV);
    let net = Network::create(&moto, ZONE).await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &reference_specs(&net));
    let (controller, store, calls) = controller_over(moto.sdk_config().await, dir.path()).await;
    let web = SpecKey::parse("ServiceSpec/web").unwrap();
    let prod = SpecKey::parse("ClusterSpec/prod").unwrap();

    // Before its ClusterSpec has been reconciled: parked, Pending, and not one AWS call.
    let before = calls.snapshot();
    controller
        .reconcile(web.clone(), Run::default())
        .await
        .expect("waiting is no failure");
    assert_eq!(since(&calls, &before), BTreeMap::new());
    let status = store.read_status(&web).await.unwrap().expect("a status");
    assert_eq!(status.phase, Phase::Pending, "{status:?}");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.condition_type == "ClusterReady")
        .expect("a ClusterReady condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "WaitingForCluster")
    );

    // Once the cluster is Ready, the same reconcile reads and builds the service's edge.
    for _ in 0..5 {
        controller
            .reconcile(prod.clone(), Run::default())
            .await
            .ok();
        let p = store.read_status(&prod).await.unwrap().expect("a status");
        if p.phase == Phase::Ready {
            break;
        }
    }
    let before = calls.snapshot();
    controller
        .reconcile(web.clone(), Run::default())
        .await
        .expect("reconciled");
    let made = since(&calls, &before);
    assert!(
        made.keys()
            .any(|op| op.starts_with("elasticloadbalancingv2/Create")),
        "{made:?}"
    );
}

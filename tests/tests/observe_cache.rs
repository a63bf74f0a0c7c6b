//! The shared observe cache against moto: a steady-state resync wave of a converged fleet reads
//! AWS in batches (DescribeServices 10 services per call, DescribeTags 20 ARNs per call, one
//! listing per kind...) and writes nothing; drift made before a wave is restored in that wave;
//! a reconcile that creates something never creates it twice because of a stale snapshot.

use std::collections::BTreeMap;

use ecs_operator::aws::calls::is_mutating;
use ecs_operator::aws::CallMetrics;
use ecs_operator::store::Phase;
use ecs_operator_tests::fixtures::{write_specs, Fleet, Network};
use ecs_operator_tests::{cli_counted, Moto};

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
        let autoscaling = if (5..=8).contains(&i) {
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

struct Env {
    moto: Moto,
    dir: tempfile::TempDir,
    fleet: Fleet,
}

impl Env {
    fn store(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

/// moto with issued certificates and rollouts that complete, the network, the fleet's specs in
/// a folder, converged by direct reconciles.
async fn converged() -> Env {
    let moto = Moto::start_with_env(&[
        ("MOTO_ACM_VALIDATION_WAIT", "0"),
        ("MOTO_ECS_SERVICE_RUNNING", "1"),
    ]);
    let net = Network::create(&moto, ZONE).await;
    let dir = tempfile::tempdir().unwrap();
    let files = fleet_specs(&net);
    let files: Vec<(&str, String)> = files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    write_specs(dir.path(), &files);
    let fleet = Fleet::new(&moto, dir.path()).await;
    let mut last = String::new();
    for _ in 0..8 {
        let pending: Vec<String> = fleet
            .reconcile_all()
            .await
            .into_iter()
            .filter(|(_, r)| !matches!(r, Ok(rep) if rep.phase == Phase::Ready))
            .map(|(k, r)| format!("{k}: {r:?}"))
            .collect();
        if pending.is_empty() {
            return Env { moto, dir, fleet };
        }
        last = pending.join("\n");
    }
    panic!("the fleet did not converge:\n{last}");
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

#[tokio::test]
async fn a_steady_state_wave_reads_in_batches_and_writes_nothing() {
    let env = converged().await;
    let wave = run_once(&env).await;
    let reads: u64 = wave
        .iter()
        .filter(|(k, _)| !is_mutating(k.split('/').nth(1).unwrap_or_default()))
        .map(|(_, v)| v)
        .sum();
    println!(
        "one steady-state wave of 1 ClusterSpec + {SERVICES} ServiceSpecs: {reads} reads\n{}",
        table(&wave)
    );
    let mutating: BTreeMap<_, _> = wave
        .iter()
        .filter(|(k, _)| is_mutating(k.split('/').nth(1).unwrap_or_default()))
        .collect();
    assert!(mutating.is_empty(), "mutating calls: {mutating:?}");
}

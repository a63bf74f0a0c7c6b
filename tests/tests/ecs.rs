//! ECS reconcilers against moto: cluster, ASG capacity provider, task definitions, services,
//! autoscaling and rollout status; convergence, no update loops, drift, failed rollouts.

use std::collections::BTreeMap;
use std::sync::Arc;

use ecs_operator::aws::calls::is_mutating;
use ecs_operator::aws::{Budget, Sdk};
use ecs_operator::reconcile::{ReconcileInput, Reconciler, Report};
use ecs_operator::resources::{Aws, AwsReconciler};
use ecs_operator::spec::SpecKey;
use ecs_operator::store::status::Phase;
use ecs_operator_tests::ecs_fixtures::{
    asg_provider, cluster, fixture, service, services, spec_folder, CLUSTER,
};
use ecs_operator_tests::{Moto, REGION};

/// Parse documents (all must be valid) into the reconcile input.
fn input(yaml: &[&str]) -> ReconcileInput {
    let mut specs = BTreeMap::new();
    for (i, text) in yaml.iter().enumerate() {
        let parsed = ecs_operator::spec::load::parse_file(&format!("doc{i}.yaml"), text.as_bytes());
        assert!(
            parsed.all_diagnostics().is_empty(),
            "{:?}",
            parsed.all_diagnostics()
        );
        for d in parsed.documents {
            let spec = d.result.expect("valid");
            specs.insert(spec.key(), Arc::new(spec));
        }
    }
    ReconcileInput::fresh(Arc::new(specs))
}

struct Harness {
    aws: Arc<Aws>,
    rec: AwsReconciler,
    ecs: aws_sdk_ecs::Client,
    scaling: aws_sdk_applicationautoscaling::Client,
}

async fn harness(moto: &Moto) -> Harness {
    let sdk = Sdk::new(moto.sdk_config().await);
    let aws = Aws::new(&sdk, "ecs-operator", Budget::default());
    Harness {
        rec: AwsReconciler::new(aws.clone()),
        aws,
        ecs: aws_sdk_ecs::Client::new(&moto.sdk_config().await),
        scaling: aws_sdk_applicationautoscaling::Client::new(&moto.sdk_config().await),
    }
}

impl Harness {
    async fn reconcile(&self, input: &ReconcileInput, key: &str) -> Report {
        let spec = input.specs[&SpecKey::parse(key).unwrap()].clone();
        self.rec
            .reconcile(spec, input)
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    /// Reconcile every spec, clusters first, until each reports `phase` (at most 4 rounds).
    async fn converge(&self, input: &ReconcileInput) -> BTreeMap<String, Report> {
        let mut reports = BTreeMap::new();
        for _ in 0..4 {
            reports.clear();
            for key in input.specs.keys() {
                let r = self.reconcile(input, &key.to_string()).await;
                reports.insert(key.to_string(), r);
            }
            if reports.values().all(|r| r.phase == Phase::Ready) {
                break;
            }
        }
        reports
    }

    fn mutating_calls(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (l, n) in self.aws.calls.snapshot() {
            if is_mutating(&l.operation) {
                *out.entry(format!("{}:{}", l.service, l.operation))
                    .or_default() += n;
            }
        }
        out
    }

    fn calls_of(&self, op: &str) -> u64 {
        self.aws.calls.attempts("ecs", op)
    }
}

fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

fn running_env() -> [(&'static str, &'static str); 1] {
    [("MOTO_ECS_SERVICE_RUNNING", "2")]
}

#[tokio::test]
async fn cluster_provider_and_services_converge_from_empty_with_every_field_as_specified() {
    let moto = Moto::start_with_env(&running_env());
    let f = fixture(&moto);
    let h = harness(&moto).await;
    let svc = services(&f, "nginx:1.25", 2);
    let input = input(&[CLUSTER, &svc]);
    let reports = h.converge(&input).await;
    for (k, r) in &reports {
        assert_eq!(r.phase, Phase::Ready, "{k}: {r:?}");
    }

    // Cluster: insights, providers, default strategy, ownership tags.
    let c = cluster(&h.ecs, "prod").await;
    assert_eq!(c.status(), Some("ACTIVE"));
    assert_eq!(c.settings()[0].value(), Some("enabled"));
    assert_eq!(c.capacity_providers(), ["prod-ec2"]);
    let s = &c.default_capacity_provider_strategy()[0];
    assert_eq!(
        (s.capacity_provider(), s.weight(), s.base()),
        ("prod-ec2", 1, 1)
    );
    let tags: BTreeMap<_, _> = c
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags["ecs-operator.io/managed-by"], "ecs-operator");
    assert_eq!(tags["ecs-operator.io/owner"], "ClusterSpec/prod");

    // Capacity provider: managed scaling 75 and termination protection.
    let asg = asg_provider(&h.ecs, "prod-ec2").await;
    assert!(asg
        .auto_scaling_group_arn()
        .ends_with("autoScalingGroupName/prod-ecs-asg"));
    let ms = asg.managed_scaling().unwrap();
    assert_eq!(ms.target_capacity(), Some(75));
    assert_eq!(ms.minimum_scaling_step_size(), Some(1));
    assert_eq!(ms.maximum_scaling_step_size(), Some(10));
    assert_eq!(
        asg.managed_termination_protection(),
        Some(&aws_sdk_ecs::types::ManagedTerminationProtection::Enabled)
    );

    // Service.
    let out = h
        .ecs
        .describe_services()
        .cluster("prod")
        .services("web")
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap();
    let svc = &out.services()[0];
    assert_eq!(svc.desired_count(), 2);
    let dc = svc.deployment_configuration().unwrap();
    assert_eq!(
        (dc.minimum_healthy_percent(), dc.maximum_percent()),
        (Some(100), Some(200))
    );
    let cb = dc.deployment_circuit_breaker().unwrap();
    assert!(cb.enable() && cb.rollback());
    let placement: Vec<_> = svc
        .placement_strategy()
        .iter()
        .map(|p| (p.r#type().unwrap().as_str(), p.field().unwrap()))
        .collect();
    assert_eq!(
        placement,
        [
            ("spread", "attribute:ecs.availability-zone"),
            ("spread", "instanceId")
        ]
    );
    let vpc = svc
        .network_configuration()
        .unwrap()
        .awsvpc_configuration()
        .unwrap();
    let mut subnets = vpc.subnets().to_vec();
    subnets.sort();
    let mut want = f.subnets.to_vec();
    want.sort();
    assert_eq!(subnets, want);
    assert_eq!(vpc.security_groups(), std::slice::from_ref(&f.sg));
    assert_eq!(
        svc.capacity_provider_strategy()[0].capacity_provider(),
        "prod-ec2"
    );
    assert!(svc
        .tags()
        .iter()
        .any(|t| t.key() == Some("ecs-operator.io/owner") && t.value() == Some("ServiceSpec/web")));

    // Task definition.
    let td = h
        .ecs
        .describe_task_definition()
        .task_definition(svc.task_definition().unwrap())
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!(td.family(), Some("web"));
    assert_eq!(
        td.network_mode(),
        Some(&aws_sdk_ecs::types::NetworkMode::Awsvpc)
    );
    assert_eq!((td.cpu(), td.memory()), (Some("256"), Some("512")));
    assert_eq!(
        td.execution_role_arn(),
        Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole")
    );
    let c = &td.container_definitions()[0];
    assert_eq!((c.name(), c.image()), (Some("app"), Some("nginx:1.25")));
    assert_eq!(c.port_mappings()[0].container_port(), Some(8080));
    let env: BTreeMap<_, _> = c
        .environment()
        .iter()
        .map(|e| (e.name().unwrap(), e.value().unwrap()))
        .collect();
    assert_eq!(
        env,
        BTreeMap::from([("LOG_LEVEL", "info"), ("NODE_ENV", "production")])
    );
    assert_eq!(c.secrets()[0].name(), "DATABASE_URL");
    let hc = c.health_check().unwrap();
    assert_eq!(
        (hc.interval(), hc.timeout(), hc.retries(), hc.start_period()),
        (Some(30), Some(10), Some(3), Some(30))
    );
    let logs = c.log_configuration().unwrap().options().unwrap();
    assert_eq!(logs["awslogs-group"], "/ecs/web");
    assert_eq!(logs["awslogs-region"], REGION);

    // Autoscaling of the worker: target 2..4, CPU at 60.
    let t = h
        .scaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_ids("service/prod/worker")
        .send()
        .await
        .unwrap();
    let t = &t.scalable_targets()[0];
    assert_eq!((t.min_capacity(), t.max_capacity()), (2, 4));
    let p = h
        .scaling
        .describe_scaling_policies()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .resource_id("service/prod/worker")
        .send()
        .await
        .unwrap();
    let cfg = p.scaling_policies()[0]
        .target_tracking_scaling_policy_configuration()
        .unwrap();
    assert_eq!(cfg.target_value(), 60.0);
    assert_eq!(
        cfg.predefined_metric_specification()
            .unwrap()
            .predefined_metric_type()
            .as_str(),
        "ECSServiceAverageCPUUtilization"
    );
    // The worker's count was created at the autoscaling minimum.
    let w = service(&h.ecs, "worker").await;
    assert_eq!(w.desired_count(), 2);

    // No update loops: one more full reconcile makes zero mutating calls.
    let before = h.mutating_calls();
    let reports = h.converge(&input).await;
    assert!(reports.values().all(|r| r.phase == Phase::Ready));
    assert_eq!(
        delta(&before, &h.mutating_calls()),
        BTreeMap::new(),
        "a converged fleet changed something"
    );
}

#[tokio::test]
async fn an_image_change_registers_one_revision_and_a_count_change_registers_none() {
    let moto = Moto::start_with_env(&running_env());
    let f = fixture(&moto);
    let h = harness(&moto).await;
    h.converge(&input(&[CLUSTER, &services(&f, "nginx:1.25", 2)]))
        .await;

    let (reg, upd) = (
        h.calls_of("RegisterTaskDefinition"),
        h.calls_of("UpdateService"),
    );
    let changed = input(&[CLUSTER, &services(&f, "nginx:1.27", 2)]);
    h.converge(&changed).await;
    assert_eq!(
        h.calls_of("RegisterTaskDefinition") - reg,
        1,
        "exactly one new revision"
    );
    assert_eq!(
        h.calls_of("UpdateService") - upd,
        1,
        "exactly one service update"
    );
    let svc = service(&h.ecs, "web").await;
    assert!(svc
        .task_definition()
        .unwrap()
        .ends_with("task-definition/web:2"));

    let (reg, upd) = (
        h.calls_of("RegisterTaskDefinition"),
        h.calls_of("UpdateService"),
    );
    h.converge(&input(&[CLUSTER, &services(&f, "nginx:1.27", 3)]))
        .await;
    assert_eq!(
        h.calls_of("RegisterTaskDefinition") - reg,
        0,
        "a count change needs no revision"
    );
    assert_eq!(h.calls_of("UpdateService") - upd, 1);
    let svc = service(&h.ecs, "web").await;
    assert_eq!(svc.desired_count(), 3);
}

#[tokio::test]
async fn drift_in_count_circuit_breaker_and_target_capacity_is_reverted_by_one_reconcile() {
    let moto = Moto::start_with_env(&running_env());
    let f = fixture(&moto);
    let h = harness(&moto).await;
    let input = input(&[CLUSTER, &services(&f, "nginx:1.25", 2)]);
    h.converge(&input).await;

    // By hand, in the console.
    h.ecs
        .update_service()
        .cluster("prod")
        .service("web")
        .desired_count(5)
        .deployment_configuration(
            aws_sdk_ecs::types::DeploymentConfiguration::builder()
                .minimum_healthy_percent(100)
                .maximum_percent(200)
                .deployment_circuit_breaker(
                    aws_sdk_ecs::types::DeploymentCircuitBreaker::builder()
                        .enable(false)
                        .rollback(false)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    h.ecs
        .update_capacity_provider()
        .name("prod-ec2")
        .auto_scaling_group_provider(
            aws_sdk_ecs::types::AutoScalingGroupProviderUpdate::builder()
                .managed_scaling(
                    aws_sdk_ecs::types::ManagedScaling::builder()
                        .status(aws_sdk_ecs::types::ManagedScalingStatus::Enabled)
                        .target_capacity(100)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    // The drift is visible as a plan first.
    let web = input.specs[&SpecKey::parse("ServiceSpec/web").unwrap()].clone();
    let plan: Vec<String> = h
        .rec
        .diff(&web, &input)
        .await
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(
        plan.iter()
            .any(|c| c.contains("desiredCount: 5 -> 2") && c.contains("circuitBreaker")),
        "{plan:?}"
    );
    let prod = input.specs[&SpecKey::parse("ClusterSpec/prod").unwrap()].clone();
    let plan: Vec<String> = h
        .rec
        .diff(&prod, &input)
        .await
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert!(
        plan.iter().any(|c| c.contains("targetCapacity 100")),
        "{plan:?}"
    );

    h.reconcile(&input, "ClusterSpec/prod").await;
    h.reconcile(&input, "ServiceSpec/web").await;
    let svc = service(&h.ecs, "web").await;
    assert_eq!(svc.desired_count(), 2);
    let cb = svc
        .deployment_configuration()
        .unwrap()
        .deployment_circuit_breaker()
        .unwrap();
    assert!(cb.enable() && cb.rollback());
    let asg = asg_provider(&h.ecs, "prod-ec2").await;
    let ms = asg.managed_scaling().unwrap();
    assert_eq!(ms.target_capacity(), Some(75));
}

#[tokio::test]
async fn a_rollout_whose_tasks_fail_turns_the_service_degraded_with_the_reason() {
    let moto = Moto::start_with_env(&[
        ("MOTO_ECS_SERVICE_RUNNING", "0"),
        ("MOTO_ECS_SERVICE_FAILED_TASKS", "3"),
    ]);
    let f = fixture(&moto);
    let h = harness(&moto).await;
    let input = input(&[CLUSTER, &services(&f, "nginx:1.25", 2)]);
    h.reconcile(&input, "ClusterSpec/prod").await;
    let first = h.reconcile(&input, "ServiceSpec/web").await;
    assert_eq!(first.phase, Phase::Progressing, "{first:?}");
    assert!(
        first.requeue_after.is_some(),
        "a rollout is followed by requeue"
    );
    // moto's CreateService drops the deployment configuration, placement and capacity provider
    // strategy (AWS keeps them), so the next pass puts them back with one UpdateService; the
    // rollout is judged on the pass after that.
    let mut second = h.reconcile(&input, "ServiceSpec/web").await;
    for _ in 0..2 {
        if second.phase != Phase::Progressing {
            break;
        }
        second = h.reconcile(&input, "ServiceSpec/web").await;
    }
    assert_eq!(second.phase, Phase::Degraded, "{second:?}");
    let ready = &second.conditions[0];
    assert_eq!(
        (ready.condition_type.as_str(), ready.status.as_str()),
        ("Ready", "False")
    );
    assert!(
        ready
            .message
            .contains("3 task(s) of the new deployment failed to start"),
        "{ready:?}"
    );
    assert!(
        second.requeue_after.is_some(),
        "a failing rollout is still followed"
    );
}

#[test]
fn run_once_exits_0_when_every_spec_is_ready_and_status_says_so() {
    let moto = Moto::start_with_env(&running_env());
    let f = fixture(&moto);
    let dir = spec_folder(&f);
    let store = format!("file://{}", dir.path().display());
    let out = ecs_operator_tests::run_once(dir.path(), &moto.env(), "150s");
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("all 3 specs are Ready"),
        "{}",
        out.stdout
    );
    let status = ecs_operator_tests::bin(
        &["status", "--store", &store, "-o", "json"],
        dir.path(),
        &moto.env(),
    );
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    for s in v.as_array().unwrap() {
        assert_eq!(s["phase"], "Ready", "{s}");
        assert_eq!(s["observedGeneration"], s["generation"], "{s}");
        assert!(!s["resources"].as_array().unwrap().is_empty(), "{s}");
    }

    // Run again on the converged store, one reconcile at a time: the Ready records read at
    // start do not end the run; every spec is reconciled (checked for drift) once, and nothing
    // is written.
    let metrics = dir.path().join(".again.prom");
    let again = ecs_operator_tests::bin(
        &[
            "run",
            "--store",
            &store,
            "--once",
            "--timeout",
            "60s",
            "--concurrency",
            "1",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        dir.path(),
        &moto.env(),
    );
    assert_eq!(again.code, 0, "{again:?}");
    let text = std::fs::read_to_string(&metrics).expect("--metrics-file was written");
    let reconciles =
        ecs_operator_tests::prom::metric_sum(&text, "ecs_operator_reconciles_total", &[]);
    assert_eq!(reconciles, 3.0, "one reconcile per spec:\n{text}");
    let writes: Vec<_> = ecs_operator_tests::bench::operator_calls(&text)
        .into_iter()
        .filter(|(op, _)| ecs_operator::aws::calls::is_mutating(op.rsplit('/').next().unwrap()))
        .collect();
    assert!(writes.is_empty(), "no mutating call: {writes:?}");
}

#[test]
fn run_once_exits_1_naming_an_invalid_spec_and_still_converges_the_others() {
    let moto = Moto::start_with_env(&running_env());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ops.yaml"),
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: ops}\nspec: {containerInsights: false}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: broken}\nspec: {containerInsight: true}\n",
    )
    .unwrap();
    let store = format!("file://{}", dir.path().display());
    let out = ecs_operator_tests::run_once(dir.path(), &moto.env(), "60s");
    assert_eq!(
        out.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    assert!(
        out.stderr.contains("ClusterSpec/broken: Invalid"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("containerInsight"),
        "the field is named: {}",
        out.stderr
    );
    let status = ecs_operator_tests::bin(
        &["status", "--store", &store, "-o", "json"],
        dir.path(),
        &moto.env(),
    );
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let ops = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ops")
        .unwrap();
    assert_eq!(ops["phase"], "Ready", "{ops}");
}

#[tokio::test]
async fn an_existing_unowned_cluster_is_left_alone_unless_the_spec_adopts_it() {
    let moto = Moto::start();
    let h = harness(&moto).await;
    h.ecs
        .create_cluster()
        .cluster_name("legacy")
        .send()
        .await
        .unwrap();
    // (No containerInsights: moto's UpdateClusterSettings fails with a 500 on such clusters.)
    let plain = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: legacy}\nspec: {deletionPolicy: Retain}\n";
    let input_plain = input(&[plain]);
    let spec = input_plain.specs[&SpecKey::parse("ClusterSpec/legacy").unwrap()].clone();
    let before = h.mutating_calls();
    let err = h.rec.reconcile(spec, &input_plain).await.unwrap_err();
    assert!(
        matches!(&err, ecs_operator::reconcile::Failure::Terminal(m) if m.contains("not owned") && m.contains("ecs-operator.io/adopt")),
        "{err:?}"
    );
    assert_eq!(
        delta(&before, &h.mutating_calls()),
        BTreeMap::new(),
        "nothing may change"
    );

    let adopting = plain.replace(
        "metadata: {name: legacy}",
        "metadata: {name: legacy, annotations: {ecs-operator.io/adopt: \"true\"}}",
    );
    let input_adopt = input(&[&adopting]);
    let r = h.reconcile(&input_adopt, "ClusterSpec/legacy").await;
    assert_eq!(r.phase, Phase::Ready, "{r:?}");
    let c = cluster(&h.ecs, "legacy").await;
    assert!(c.tags().iter().any(
        |t| t.key() == Some("ecs-operator.io/owner") && t.value() == Some("ClusterSpec/legacy")
    ));
    // Once adopted, it is ours even without the annotation.
    let spec = input_plain.specs[&SpecKey::parse("ClusterSpec/legacy").unwrap()].clone();
    assert!(h.rec.reconcile(spec, &input_plain).await.is_ok());
}

//! `render` as users run it: the charts under charts/ render to valid specs with their dev and prod
//! values, values merge in order, and a broken chart or an invalid rendered document is reported
//! with the template's name and the documented exit code (2: cannot render; 1: invalid spec).

use std::path::Path;

use ecs_operator::spec::{
    load::validate_files, parse_file, ClusterSpec, KeepTagged, ServiceSpec, Spec,
};
use ecs_operator_tests::{cli, workspace_root, Output};

/// The path of a chart under charts/.
fn chart(name: &str) -> String {
    workspace_root()
        .join("charts")
        .join(name)
        .display()
        .to_string()
}

/// The path of a file of a chart under charts/.
fn chart_file(name: &str, file: &str) -> String {
    workspace_root()
        .join("charts")
        .join(name)
        .join(file)
        .display()
        .to_string()
}

async fn render(args: &[&str]) -> Output {
    let mut argv = vec!["render"];
    argv.extend_from_slice(args);
    cli(&argv, None).await
}

/// The documents of a successful render, parsed and validated with the project's loader.
fn specs(out: &Output) -> (Vec<ClusterSpec>, Vec<ServiceSpec>) {
    assert_eq!(out.code, 0, "{out:?}");
    let mut files = vec![parse_file("rendered.yaml", out.stdout.as_bytes())];
    validate_files(&mut files);
    let diagnostics = files[0].all_diagnostics();
    assert!(diagnostics.is_empty(), "{diagnostics:?}\n{}", out.stdout);
    let (mut clusters, mut services) = (Vec::new(), Vec::new());
    for d in &files[0].documents {
        match d.spec().expect("a valid spec") {
            Spec::Cluster(c) => clusters.push((**c).clone()),
            Spec::Service(s) => services.push((**s).clone()),
        }
    }
    (clusters, services)
}

/// The first `keepTagged` rule of the lifecycle of `s`'s repository; panics when it has none.
fn first_keep_tagged(s: &ServiceSpec) -> &KeepTagged {
    s.spec
        .repository
        .as_ref()
        .and_then(|r| r.lifecycle.as_ref())
        .and_then(|l| l.keep_tagged.first())
        .expect("a repository lifecycle with a keepTagged rule")
}

/// Render the web-service chart for `env` (`dev` or `prod`): its one cluster and one service.
async fn web_service(env: &str) -> (ClusterSpec, ServiceSpec) {
    let values = chart_file("web-service", &format!("values-{env}.yaml"));
    let out = render(&[&chart("web-service"), "-f", &values]).await;
    let (mut clusters, mut services) = specs(&out);
    assert_eq!((clusters.len(), services.len()), (1, 1), "{}", out.stdout);
    (clusters.remove(0), services.remove(0))
}

/// A copy of a chart under charts/ in a fresh temporary folder, for tests that break it.
fn copy_chart(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = workspace_root().join("charts").join(name);
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    for sub in ["", "templates"] {
        for entry in std::fs::read_dir(src.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[tokio::test]
async fn both_charts_render_valid_specs_with_dev_and_prod_values_that_validate_accepts() {
    for (name, kinds) in [("web-service", (1, 1)), ("ecs-operator", (0, 1))] {
        for env in ["dev", "prod"] {
            let values = chart_file(name, &format!("values-{env}.yaml"));
            let out = render(&[&chart(name), "-f", &values]).await;
            let (clusters, services) = specs(&out);
            assert_eq!((clusters.len(), services.len()), kinds, "{name} {env}");
            assert!(out.stderr.contains("are valid"), "{out:?}");
            // What render prints is what `validate` accepts.
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join(format!("{name}-{env}.yaml"));
            std::fs::write(&file, &out.stdout).unwrap();
            let check = cli(&["validate", file.to_str().unwrap()], None).await;
            assert_eq!(check.code, 0, "{name} {env}: {check:?}");
        }
    }
}

#[tokio::test]
async fn each_environment_of_the_operator_runs_on_the_cluster_of_the_same_environment() {
    for env in ["dev", "prod"] {
        let dir = tempfile::tempdir().unwrap();
        for name in ["web-service", "ecs-operator"] {
            let values = chart_file(name, &format!("values-{env}.yaml"));
            let out = render(&[&chart(name), "-f", &values]).await;
            assert_eq!(out.code, 0, "{out:?}");
            std::fs::write(dir.path().join(format!("{name}.yaml")), &out.stdout).unwrap();
        }
        let check = cli(&["validate", dir.path().to_str().unwrap()], None).await;
        assert_eq!(check.code, 0, "{env}: {check:?}");
        assert!(
            check.stderr.contains("3 documents in 2 files are valid"),
            "{check:?}"
        );
    }
}

#[tokio::test]
async fn dev_and_prod_differ_field_by_field_as_the_reference_architecture_says() {
    let (dev_cluster, dev_service) = web_service("dev").await;
    let (prod_cluster, prod_service) = web_service("prod").await;
    let keep = |s: &ServiceSpec| {
        let rule = first_keep_tagged(s);
        (rule.tag_prefixes.clone(), rule.count)
    };
    assert_eq!(keep(&dev_service), (vec!["dev-".to_string()], 3));
    assert_eq!(keep(&prod_service), (vec!["prod-".to_string()], 10));
    let capacity = |c: &ClusterSpec| {
        let cp = &c.spec.capacity_providers[0];
        (
            cp.managed_scaling.as_ref().unwrap().target_capacity,
            cp.managed_termination_protection,
        )
    };
    assert_eq!(capacity(&dev_cluster), (100, false));
    assert_eq!(capacity(&prod_cluster), (75, true));
    // The Auto Scaling group the cluster owns: sized per environment, protected in prod.
    let group = |c: &ClusterSpec| {
        let g = c.spec.capacity_providers[0]
            .auto_scaling_group
            .owned()
            .expect("the chart's cluster owns its group")
            .clone();
        (g.name, g.min_size, g.max_size, g.protect_from_scale_in)
    };
    assert_eq!(group(&dev_cluster), ("dev-ecs-asg".into(), 1, 2, false));
    assert_eq!(group(&prod_cluster), ("prod-ecs-asg".into(), 2, 4, true));
    // Prod's alarms mail the on-call list, dev's mail nobody (the topic has no subscriber).
    let emails = |s: &ServiceSpec, c: &ClusterSpec| {
        let service = s
            .spec
            .alarms
            .as_ref()
            .unwrap()
            .notify
            .clone()
            .unwrap()
            .emails;
        let lb = c.spec.load_balancers[0]
            .alarms
            .as_ref()
            .unwrap()
            .notify
            .clone()
            .unwrap()
            .emails;
        assert_eq!(service, lb);
        service
    };
    assert!(emails(&dev_service, &dev_cluster).is_empty());
    assert_eq!(
        emails(&prod_service, &prod_cluster),
        ["ops@example.com".to_string()]
    );
    let placement = |s: &ServiceSpec| {
        serde_json::to_value(&s.spec.placement.strategy)
            .unwrap()
            .to_string()
    };
    assert_eq!(
        placement(&dev_service),
        r#"[{"type":"binpack","field":"cpu"}]"#
    );
    assert_eq!(
        placement(&prod_service),
        r#"[{"type":"spread","field":"attribute:ecs.availability-zone"},{"type":"spread","field":"instanceId"}]"#
    );
    assert!(!dev_cluster.spec.load_balancers[0].deletion_protection);
    assert!(prod_cluster.spec.load_balancers[0].deletion_protection);

    // Everything else is the same once the environment's name is taken out: make dev's
    // differences prod's and rename dev to prod, and the specs are equal.
    let mut cluster = dev_cluster.clone();
    cluster.spec.capacity_providers[0] = prod_cluster.spec.capacity_providers[0].clone();
    cluster.spec.load_balancers[0].deletion_protection = true;
    cluster.spec.load_balancers[0].alarms = prod_cluster.spec.load_balancers[0].alarms.clone();
    let mut service = dev_service.clone();
    service.spec.repository = prod_service.spec.repository.clone();
    service.spec.placement = prod_service.spec.placement.clone();
    service.spec.alarms = prod_service.spec.alarms.clone();
    service.spec.deployment = prod_service.spec.deployment.clone();
    let renamed = |json: String| {
        json.replace("dev.example.com", "example.com")
            .replace("dev", "prod")
    };
    assert_eq!(
        renamed(Spec::Cluster(Box::new(cluster)).canonical_json()),
        Spec::Cluster(Box::new(prod_cluster.clone())).canonical_json()
    );
    assert_eq!(
        renamed(Spec::Service(Box::new(service)).canonical_json()),
        Spec::Service(Box::new(prod_service.clone())).canonical_json()
    );

    // Dev rolls with the circuit breaker; prod deploys a 5% canary for 10 minutes, rolled
    // back by its 5XX and latency alarms.
    use ecs_operator::spec::types::{DeploymentStrategy, ManagedAlarm};
    let dev = &dev_service.spec.deployment;
    assert_eq!(dev.strategy, DeploymentStrategy::Rolling);
    assert!(dev.circuit_breaker().enable && dev.circuit_breaker().rollback);
    let prod = &prod_service.spec.deployment;
    assert_eq!(prod.strategy, DeploymentStrategy::Canary);
    let canary = prod.canary.as_ref().expect("a canary step");
    assert_eq!((canary.percent, canary.bake_time_minutes), (5.0, 10));
    assert_eq!(
        prod.rollback_on_alarms,
        [
            ManagedAlarm::Http5xxPercent,
            ManagedAlarm::LatencyP99Seconds
        ]
    );
    assert!(prod.circuit_breaker.is_none());

    // And both are the reference architecture.
    for (c, s) in [(&dev_cluster, &dev_service), (&prod_cluster, &prod_service)] {
        let lb = &c.spec.load_balancers[0];
        let apex = &s.spec.ingress.as_ref().unwrap().hosts[0];
        assert!(lb.https_redirect);
        assert_eq!(
            lb.certificate.domains,
            [apex.clone(), format!("www.{apex}")]
        );
        assert_eq!(c.spec.capacity_providers.len(), 1);
        let ing = s.spec.ingress.as_ref().unwrap();
        assert_eq!(ing.hosts, lb.certificate.domains);
        assert_eq!(ing.load_balancer, lb.name);
        let hc = &ing.health_check;
        assert_eq!(
            (
                hc.path.as_str(),
                hc.healthy_threshold,
                hc.unhealthy_threshold,
                hc.timeout_seconds,
                hc.interval_seconds,
                hc.matcher.as_str()
            ),
            ("/health", 2, 2, 5, 30, "200")
        );
        let d = &s.spec.deployment;
        assert_eq!((d.minimum_healthy_percent, d.maximum_percent), (100, 200));
        let a = s.spec.autoscaling.as_ref().unwrap();
        assert!(a.target_cpu_utilization.is_some() && a.min_capacity >= 2);
        let lc = s
            .spec
            .repository
            .as_ref()
            .unwrap()
            .lifecycle
            .as_ref()
            .unwrap();
        assert_eq!(lc.expire_untagged_after_days, Some(1));
        assert!(ing.dns.is_some());
    }
}

#[tokio::test]
async fn the_environment_files_set_only_the_environment_differences() {
    fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        match v.as_object() {
            Some(m) => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&p, v, out);
                }
            }
            None => out.push(prefix.to_string()),
        }
    }
    for env in ["dev", "prod"] {
        let path = chart_file("web-service", &format!("values-{env}.yaml"));
        let values = ecs_operator::chart::read_values(Path::new(&path)).unwrap();
        let mut keys = Vec::new();
        leaves("", &values, &mut keys);
        keys.sort();
        assert_eq!(
            keys,
            [
                "alarms.notifyEmails",
                "cluster.asg.maxSize",
                "cluster.asg.minSize",
                "cluster.managedTerminationProtection",
                "cluster.targetCapacity",
                "deployment.strategy",
                "domain",
                "env",
                "loadBalancer.deletionProtection",
                "placement.strategy",
                "repository.keepTagged",
            ],
            "{env}"
        );
    }
}

#[tokio::test]
async fn the_operator_chart_runs_two_replicas_across_zones_told_its_store_through_the_environment()
{
    let values = chart_file("ecs-operator", "values-prod.yaml");
    let out = render(&[&chart("ecs-operator"), "-f", &values]).await;
    let (_, services) = specs(&out);
    let s = &services[0].spec;
    assert_eq!(s.cluster, "prod");
    assert_eq!(s.desired_count, 2);
    let env = &s.container.environment;
    assert_eq!(
        env["ECS_OPERATOR_STORE"],
        "s3://example-ecs-operator-specs/prod"
    );
    assert_eq!(env["ECS_OPERATOR_LEASE_TABLE"], "ecs-operator-leases-prod");
    assert_eq!(env["ECS_OPERATOR_METRICS_ADDR"], "0.0.0.0:9090");
    assert_eq!(env["ECS_OPERATOR_INSTANCE"], "ecs-operator-prod");
    let first = &s.placement.strategy[0];
    assert_eq!(
        first.field.as_deref(),
        Some("attribute:ecs.availability-zone")
    );
    // The image is distroless (no shell, no wget): the binary checks /healthz itself.
    let hc = s.container.health_check.as_ref().unwrap();
    assert_eq!(
        hc.command,
        [
            "CMD",
            "/usr/local/bin/ecs-operator",
            "healthcheck",
            "--addr",
            "127.0.0.1:9090"
        ],
        "{hc:?}"
    );
    assert_eq!(s.container.log_group.as_deref(), Some("/ecs/ecs-operator"));
    assert!(s.task_role_arn.is_some() && s.execution_role_arn.is_some());
    assert!(
        s.container
            .image
            .starts_with("public.ecr.aws/example/ecs-operator:"),
        "{}",
        s.container.image
    );
}

#[tokio::test]
async fn values_files_merge_in_the_order_given_and_set_comes_last() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    std::fs::write(
        &a,
        "repository: {keepTagged: 5}\ncontainer: {environment: {A: one, B: one}}\n\
         placement: {strategy: [{type: spread, field: instanceId}, {type: binpack, field: memory}]}\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "repository: {keepTagged: 7}\ncontainer: {environment: {B: two}}\n\
         placement: {strategy: [{type: random}]}\n",
    )
    .unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let web = chart("web-service");

    let out = render(&[&web, "-f", a, "-f", b]).await;
    let (_, services) = specs(&out);
    let s = &services[0].spec;
    assert_eq!(first_keep_tagged(&services[0]).count, 7);
    // Mappings merge key by key; lists are replaced whole.
    assert_eq!(s.container.environment["A"], "one");
    assert_eq!(s.container.environment["B"], "two");
    assert_eq!(s.placement.strategy.len(), 1);

    let out = render(&[&web, "-f", b, "-f", a]).await;
    let (_, services) = specs(&out);
    let s = &services[0].spec;
    assert_eq!(first_keep_tagged(&services[0]).count, 5);
    assert_eq!(s.placement.strategy.len(), 2);

    let out = render(&[
        &web,
        "--set",
        "repository.keepTagged=9",
        "-f",
        a,
        "--set",
        "network.subnets=[subnet-x, subnet-y, subnet-z]",
        "--set-string",
        "container.environment.C=true",
        "--set-string",
        "image.tag=0123",
    ])
    .await;
    let (_, services) = specs(&out);
    let s = &services[0].spec;
    assert_eq!(first_keep_tagged(&services[0]).count, 9);
    assert_eq!(s.network.subnets, ["subnet-x", "subnet-y", "subnet-z"]);
    assert_eq!(s.container.environment["C"], "true");
    assert_eq!(s.container.environment["A"], "one");
    assert_eq!(s.container.image, "web:dev-0123");
    // Without --set-string, 0123 is the YAML integer 123, and true a boolean.
    let out = render(&[&web, "--set", "image.tag=0123"]).await;
    assert_eq!(specs(&out).1[0].spec.container.image, "web:dev-123");
    let out = render(&[&web, "--set", "container.environment.C=true"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("spec.container.environment.C: true is not of type \"string\""),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_missing_value_exits_2_naming_the_template_line_and_value_and_prints_nothing() {
    let dir = copy_chart("web-service");
    edit(
        &dir.path().join("values.yaml"),
        "hostedZone: example.com\n",
        "",
    );
    let out = render(&[dir.path().to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("10-cluster.yaml"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(line.contains("templates/10-cluster.yaml:47:"), "{line}");
    assert!(line.contains("`values.hostedZone` is undefined"), "{line}");
    // Every template's errors, not only the first.
    assert!(out.stderr.contains("templates/20-service.yaml:"), "{out:?}");
}

#[tokio::test]
async fn a_template_syntax_error_exits_2_naming_the_file_and_line() {
    let dir = copy_chart("ecs-operator");
    edit(
        &dir.path().join("templates/service.yaml"),
        "{% if values.region %}",
        "{% if values.region %",
    );
    let out = render(&[dir.path().to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    // The tag opens on line 22; the parser notices it is unclosed at the `:` on line 23.
    assert!(
        out.stderr
            .contains("templates/service.yaml:23:17: syntax error"),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_missing_chart_or_values_file_or_a_bad_set_exits_2_naming_it() {
    let out = render(&["no-such-chart"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("no-such-chart: not a chart: no such folder"),
        "{out:?}"
    );
    let out = render(&[&chart("web-service"), "-f", "no-such-values.yaml"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("cannot read no-such-values.yaml"),
        "{out:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = render(&[dir.path().to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("Chart.yaml is missing"), "{out:?}");
    let out = render(&[&chart("web-service"), "--set", "image.tag"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("--set image.tag: expected PATH=VALUE"),
        "{out:?}"
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "env: dev\nenv: prod\n").unwrap();
    let out = render(&[&chart("web-service"), "-f", bad.to_str().unwrap()]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("bad.yaml:2:1: duplicate key `env`"),
        "{out:?}"
    );
}

#[tokio::test]
async fn an_invalid_rendered_document_exits_1_naming_the_template_and_prints_nothing() {
    let out = render(&[&chart("web-service"), "--set", "container.port=70000"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("spec.container.port"))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        line.contains("charts/web-service/templates/20-service.yaml:")
            && line.contains(
                "document 0: spec.container.port: 70000 is greater than the maximum of 65535"
            ),
        "{line}"
    );
    assert!(
        out.stderr
            .contains("1 errors in the rendered output of 1 of 2 templates"),
        "{out:?}"
    );
}

#[tokio::test]
async fn cross_document_checks_run_over_everything_the_chart_renders() {
    let dir = tempfile::tempdir().unwrap();
    let examples = workspace_root().join("manifests/examples");
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("Chart.yaml"),
        "name: pair\nversion: 0.0.1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("values.yaml"), "lb: elsewhere\n").unwrap();
    std::fs::copy(
        examples.join("cluster-prod.yaml"),
        dir.path().join("templates/a-cluster.yaml"),
    )
    .unwrap();
    let service = std::fs::read_to_string(examples.join("service-web.yaml"))
        .unwrap()
        .replace("loadBalancer: prod-public", "loadBalancer: {{ values.lb }}");
    std::fs::write(dir.path().join("templates/b-service.yaml"), service).unwrap();

    let out = render(&[dir.path().to_str().unwrap()]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        out.stderr.contains("templates/b-service.yaml:")
            && out.stderr.contains(
                "spec.ingress.loadBalancer: `elsewhere` is not a load balancer of cluster `prod`"
            ),
        "{out:?}"
    );
    let out = render(&[dir.path().to_str().unwrap(), "--set", "lb=prod-public"]).await;
    let (clusters, services) = specs(&out);
    assert_eq!((clusters.len(), services.len()), (1, 1));
    assert!(
        out.stdout
            .starts_with("# Source: pair/templates/a-cluster.yaml\n"),
        "{out:?}"
    );
}

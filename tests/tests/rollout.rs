//! `ecs-operator rollout status|history|stop|continue` against moto, run in-process through the
//! command line with its AWS calls counted: a Canary service converged through the reconciler,
//! then each verb's output and exit code. moto 5.2.5 does not implement the service-deployment
//! operations (ListServiceDeployments answers with an HTML 500): `status` and `history` say so
//! in one line and show the rest, `stop` and `continue` fail naming the operation and write
//! nothing. The parsing of the shapes moto does not produce (stages, traffic split, hooks,
//! rollbacks) is unit-tested in `operator/src/cli/rollout/` and `deployments.rs`.

use std::collections::BTreeMap;

use ecs_operator::aws::calls::is_mutating;
use ecs_operator::aws::CallMetrics;
use ecs_operator_tests::ecs_fixtures::service;
use ecs_operator_tests::fixtures::{
    load_specs, reference_files, write_specs, Env, Network, SpecFile, EDGE_MOTO_ENV,
};
use ecs_operator_tests::{cli, cli_counted, Output};

const ROLE: &str = "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers";

/// The reference cluster and `web` under Canary (5% for 10 minutes, test traffic, rollback on
/// its 5XX alarm and on `existing-alarm`, which does not exist, and a pause hook).
fn canary_files(net: &Network) -> Vec<SpecFile> {
    reference_files(net)
        .into_iter()
        .filter(|(f, _)| f != "service-admin.yaml")
        .map(|(f, t)| {
            let t = if f == "service-web.yaml" {
                format!(
                    "{t}  alarms:\n    http5xxPercent: {{threshold: 1, periods: 3}}\n  deployment:\n    strategy: Canary\n    canary: {{percent: 5, bakeTimeMinutes: 10}}\n    testTraffic: {{header: x-test-traffic, value: \"1\"}}\n    infrastructureRoleArn: {ROLE}\n    rollbackOnAlarms: [http5xxPercent]\n    alarmNames: [existing-alarm]\n    hooks:\n      - {{stages: [PRE_PRODUCTION_TRAFFIC_SHIFT], pause: true}}\n"
                )
            } else {
                t
            };
            (f, t)
        })
        .collect()
}

/// Run `ecs-operator ARGS...` against `env`'s moto with fresh call counters: its output and
/// the calls it made (`service/operation` -> attempts).
async fn rollout(env: &Env, args: &[&str]) -> (Output, BTreeMap<String, u64>) {
    let calls = CallMetrics::new();
    let out = cli_counted(args, Some(env.moto.sdk_config().await), Some(calls.clone())).await;
    let mut made = BTreeMap::new();
    for (l, n) in calls.snapshot() {
        *made
            .entry(format!("{}/{}", l.service, l.operation))
            .or_default() += n;
    }
    (out, made)
}

fn writes(calls: &BTreeMap<String, u64>) -> Vec<&String> {
    calls
        .keys()
        .filter(|k| is_mutating(k.split('/').nth(1).unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_status_of_a_converged_canary_shows_its_primary_deployment_tasks_target_health_and_alarm_states_and_that_moto_reports_no_service_deployments(
) {
    let (env, _) = Env::converged(EDGE_MOTO_ENV, canary_files, 12).await;
    let store = env.store();

    let (out, calls) = rollout(&env, &["rollout", "status", "web", "--store", &store]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let text = &out.stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("ServiceSpec/web: ecs service web in cluster prod (")
            && lines[0].ends_with("strategy CANARY"),
        "{text}"
    );
    assert!(lines[1].starts_with("DEPLOYMENT"), "{text}");
    // The one deployment moto keeps: PRIMARY, the family's first revision, 2 of 2 running.
    let primary: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        primary[1..8],
        ["PRIMARY", "web:1", "COMPLETED", "2", "0", "2", "0"],
        "{text}"
    );
    assert!(
        text.contains(
            "service deployments: not reported by this endpoint (ListServiceDeployments is not offered)"
        ),
        "{text}"
    );
    // Both target groups (Canary), without targets: moto's ECS registers none.
    assert!(text.contains("TARGET GROUP  ROLE       TARGETS"), "{text}");
    assert!(
        text.contains("\nweb           primary    no targets\n"),
        "{text}"
    );
    assert!(
        text.contains("\nweb-alt       alternate  no targets\n"),
        "{text}"
    );
    // The rollback alarms: the managed one with its state, the named one that does not exist.
    let alarms: BTreeMap<&str, &str> = lines
        .iter()
        .skip_while(|l| !l.starts_with("ALARM"))
        .skip(1)
        .filter_map(|l| l.split_once("  ").map(|(n, s)| (n.trim(), s.trim())))
        .collect();
    assert_eq!(alarms.len(), 2, "{text}");
    assert_eq!(alarms["existing-alarm"], "not found", "{text}");
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&env.moto.sdk_config().await);
    let described = cloudwatch
        .describe_alarms()
        .alarm_names("prod-web-http5xxPercent")
        .send()
        .await
        .unwrap();
    let state = described.metric_alarms()[0].state_value().unwrap().as_str();
    assert_eq!(alarms["prod-web-http5xxPercent"], state, "{text}");
    assert!(writes(&calls).is_empty(), "status wrote: {calls:?}");
    for read in [
        "ecs/DescribeServices",
        "ecs/ListServiceDeployments",
        "elasticloadbalancingv2/DescribeTargetHealth",
        "cloudwatch/DescribeAlarms",
    ] {
        assert!(calls.contains_key(read), "{read} not made: {calls:?}");
    }
    assert!(
        !calls.contains_key("ecs/DescribeServiceDeployments"),
        "described after the listing was not offered: {calls:?}"
    );

    // `-o json` parses, with the same facts.
    let (out, _) = rollout(
        &env,
        &["rollout", "status", "web", "--store", &store, "-o", "json"],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout));
    assert_eq!(v["spec"], "ServiceSpec/web");
    assert_eq!(v["cluster"], "prod");
    assert_eq!(v["strategy"], "CANARY");
    assert_eq!(v["serviceDeploymentsReported"], false);
    assert!(v["serviceDeployment"].is_null());
    assert_eq!(v["deployments"][0]["status"], "PRIMARY");
    assert_eq!(v["deployments"][0]["running"], 2);
    assert!(v["deployments"][0]["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with(":task-definition/web:1"));
    assert_eq!(v["targetGroups"][1]["name"], "web-alt");
    assert_eq!(v["targetGroups"][1]["role"], "alternate");
    assert!(v["targetGroups"][1]["arn"].as_str().is_some());
    assert_eq!(v["alarms"][0]["name"], "existing-alarm");
    assert_eq!(v["alarms"][0]["state"], "not found");
    let (out, _) = rollout(
        &env,
        &["rollout", "status", "web", "--store", &store, "-o", "yaml"],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.starts_with("---\n") && out.stdout.contains("strategy: CANARY"),
        "{out:?}"
    );

    // A spec whose service the operator has not created yet: exit 1, naming it.
    let late = std::fs::read_to_string(env.dir.path().join("service-web.yaml"))
        .unwrap()
        .replace("metadata: {name: web,", "metadata: {name: late,")
        .replace("priority: 100", "priority: 110")
        .replace(
            &format!("hosts: [{z}, www.{z}]", z = env.net.zone_name),
            &format!("hosts: [late.{}]", env.net.zone_name),
        )
        .replace("name: trust-estate-server", "name: late-server")
        .replace("image: trust-estate-server:", "image: late-server:");
    write_specs(env.dir.path(), &[("service-late.yaml", late)]);
    assert!(
        load_specs(env.dir.path()).len() == 3,
        "the new spec is valid"
    );
    let (out, calls) = rollout(&env, &["rollout", "status", "late", "--store", &store]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "ServiceSpec/late: the ecs service late in cluster prod (the operator's account, region eu-west-1) does not exist in AWS yet"
        ),
        "{out:?}"
    );
    assert!(writes(&calls).is_empty(), "{calls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_history_after_an_image_change_lists_both_revisions_newest_first_with_their_images_and_says_moto_reports_no_service_deployments(
) {
    let (mut env, _) = Env::converged(EDGE_MOTO_ENV, canary_files, 12).await;
    let path = env.dir.path().join("service-web.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "trust-estate-server:prod-3f2a1c9",
        "trust-estate-server:prod-4e5f6a7",
    );
    write_specs(env.dir.path(), &[("service-web.yaml", text)]);
    env.fleet.specs = load_specs(env.dir.path());
    env.fleet.converge(4).await;
    let store = env.store();

    let (out, calls) = rollout(&env, &["rollout", "history", "web", "--store", &store]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].starts_with("REVISION  REGISTERED"), "{out:?}");
    let rows: Vec<&str> = lines[1..]
        .iter()
        .copied()
        .take_while(|l| l.starts_with("web:"))
        .collect();
    assert_eq!(rows.len(), 2, "{out:?}");
    assert!(rows[0].starts_with("web:2 "), "newest first: {out:?}");
    assert!(
        rows[0].contains("trust-estate-server:prod-4e5f6a7"),
        "{out:?}"
    );
    assert!(rows[0].ends_with("(current)"), "{out:?}");
    assert!(rows[1].starts_with("web:1 "), "{out:?}");
    assert!(
        rows[1].contains("trust-estate-server:prod-3f2a1c9"),
        "{out:?}"
    );
    assert!(!rows[1].ends_with("(current)"), "{out:?}");
    assert!(
        out.stdout.contains("service deployments: not reported by this endpoint (ListServiceDeployments or DescribeServiceRevisions is not offered)"),
        "{out:?}"
    );
    assert!(writes(&calls).is_empty(), "history wrote: {calls:?}");
    assert_eq!(
        calls.get("ecs/DescribeTaskDefinition"),
        Some(&2),
        "{calls:?}"
    );

    // `--limit 1`: the newest only; `-o json` parses.
    let (out, _) = rollout(
        &env,
        &[
            "rollout", "history", "web", "--store", &store, "--limit", "1", "-o", "json",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout));
    assert_eq!(v["family"], "web");
    assert_eq!(v["serviceDeploymentsReported"], false);
    let revisions = v["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1, "{v}");
    assert_eq!(revisions[0]["revision"], "web:2");
    assert_eq!(revisions[0]["current"], true);
    assert_eq!(
        revisions[0]["images"],
        serde_json::json!([format!(
            "{}.dkr.ecr.eu-west-1.amazonaws.com/trust-estate-server:prod-4e5f6a7",
            "123456789012"
        )])
    );
    // moto 5.2.5's task definitions carry no `registeredAt` (README "moto and rollouts"); the
    // column's RFC 3339 form is unit-tested in `cli/rollout/history.rs`.
    assert!(revisions[0]["registeredAt"].is_null(), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rollout_stop_and_continue_on_moto_fail_naming_the_missing_operation_and_write_nothing() {
    let (env, _) = Env::converged(EDGE_MOTO_ENV, canary_files, 12).await;
    let store = env.store();

    let (out, calls) = rollout(
        &env,
        &["rollout", "stop", "web", "--store", &store, "--rollback"],
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("this endpoint does not offer ListServiceDeployments, which finds the deployment to stop: nothing was stopped (StopServiceDeployment was not called)"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(writes(&calls).is_empty(), "stop wrote: {calls:?}");
    assert!(
        calls.contains_key("ecs/ListServiceDeployments"),
        "{calls:?}"
    );

    let (out, calls) = rollout(&env, &["rollout", "continue", "web", "--store", &store]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("this endpoint does not offer ListServiceDeployments, which finds the paused deployment: nothing was continued (ContinueServiceDeployment was not called)"),
        "{out:?}"
    );
    assert!(writes(&calls).is_empty(), "continue wrote: {calls:?}");

    // `stop` without --rollback: a usage error before anything is read.
    let (out, calls) = rollout(&env, &["rollout", "stop", "web", "--store", &store]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("`rollout stop` needs --rollback"),
        "{out:?}"
    );
    assert!(calls.is_empty(), "{calls:?}");

    // The service is as the operator left it: one deployment, still PRIMARY.
    let svc = service(&env.ecs, "web").await;
    let deployments = svc.deployments();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0].status(), Some("PRIMARY"));
}

/// A store folder with the reference specs (never reconciled: these checks fail before AWS).
fn offline_store() -> (tempfile::TempDir, String) {
    let net = Network {
        vpc: "vpc-1".into(),
        subnets: ["subnet-1".into(), "subnet-2".into()],
        security_group: "sg-1".into(),
        zone_id: "Z1".into(),
        zone_name: "example.com".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let files = canary_files(&net);
    let files: Vec<(&str, String)> = files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
    write_specs(dir.path(), &files);
    let url = format!("file://{}", dir.path().display());
    (dir, url)
}

#[tokio::test]
async fn an_unknown_name_or_an_invalid_spec_exits_1_naming_it_before_any_aws_call() {
    let (dir, url) = offline_store();
    for verb in ["status", "history", "continue"] {
        let out = cli(&["rollout", verb, "nope", "--store", &url], None).await;
        assert_eq!(out.code, 1, "{verb}: {out:?}");
        assert!(
            out.stderr
                .contains("no ServiceSpec named `nope` in the store"),
            "{verb}: {out:?}"
        );
    }
    let out = cli(
        &["rollout", "stop", "nope", "--store", &url, "--rollback"],
        None,
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    // A ClusterSpec's name is not a ServiceSpec's.
    let out = cli(&["rollout", "status", "prod", "--store", &url], None).await;
    assert_eq!(out.code, 1, "{out:?}");

    let path = dir.path().join("service-web.yaml");
    let broken = std::fs::read_to_string(&path)
        .unwrap()
        .replace("cpu: 256", "cpu: 3");
    std::fs::write(&path, broken).unwrap();
    let out = cli(&["rollout", "status", "web", "--store", &url], None).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("ServiceSpec/web is invalid, so the operator does not deploy it"),
        "{out:?}"
    );
}

#[tokio::test]
async fn each_verbs_help_exits_0_and_lists_its_flags() {
    for (verb, flags) in [
        ("status", &["--store", "--output", "--instance"][..]),
        ("history", &["--store", "--limit", "--output"][..]),
        ("stop", &["--store", "--rollback"][..]),
        ("continue", &["--store", "--rollback"][..]),
    ] {
        let out = cli(&["rollout", verb, "--help"], None).await;
        assert_eq!(out.code, 0, "{verb}: {out:?}");
        assert!(out.stdout.contains("<NAME>"), "{verb}: {out:?}");
        for f in flags {
            assert!(out.stdout.contains(f), "{verb} --help lacks {f}: {out:?}");
        }
    }
    let out = cli(&["rollout", "--help"], None).await;
    assert_eq!(out.code, 0, "{out:?}");
    for verb in ["status", "history", "stop", "continue"] {
        assert!(out.stdout.contains(verb), "{out:?}");
    }
    // A missing NAME is a usage error, as clap makes it.
    let out = cli(&["rollout", "status", "--store", "file:///tmp"], None).await;
    assert_eq!(out.code, 2, "{out:?}");
}

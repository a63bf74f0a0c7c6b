//! Garbage collection against moto (issue 6, item 2): resources tagged as owned by this
//! instance whose spec is gone and that no status record lists are found by the scan and handed
//! to deletion, so nothing leaks after a crash.
//!
//! - the scan of a converged reference architecture finds exactly what the ledgers list, by
//!   owner, and nothing of another instance or untagged;
//! - end to end (`run --gc-interval 1s`): a spec removed after a crash lost its whole status
//!   record has its resources released (no record: no known policy, so Retain); a spec whose
//!   ledger missed resources has them deleted with its recorded `Delete` policy.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecs_operator::reconcile::{ReconcileInput, Reconciler};
use ecs_operator::spec::SpecKey;
use ecs_operator_tests::fixtures::{
    reference_files, tags_of, Env, EDGE_MOTO_ENV, MANAGED_BY_TAG as MANAGED_BY, OWNER_TAG as OWNER,
    RELEASED_TAG as RELEASED,
};
use ecs_operator_tests::{bin, free_addr, run_once, OperatorProcess};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_finds_exactly_what_the_ledgers_list_and_nothing_foreign() {
    let (env, reports) = Env::converged(EDGE_MOTO_ENV, reference_files, 12).await;
    let Env {
        moto,
        net,
        dir: _dir,
        fleet,
        ..
    } = env;

    // Foreign look-alikes: another instance's target group, an untagged one, a released one.
    let sdk = moto.sdk_config().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let tag = |k: &str, v: &str| {
        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
    };
    for (name, tags) in [
        (
            "other-instance",
            vec![
                tag(MANAGED_BY, "someone-else"),
                tag(OWNER, "ServiceSpec/web"),
            ],
        ),
        ("untagged", vec![]),
        ("released", vec![tag(RELEASED, "ServiceSpec/old")]),
    ] {
        elb.create_target_group()
            .name(name)
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(80)
            .vpc_id(&net.vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
            .set_tags(Some(tags).filter(|t| !t.is_empty()))
            .send()
            .await
            .unwrap();
    }

    let ledgers: Vec<_> = reports
        .values()
        .flat_map(|r| r.resources.iter().cloned())
        .collect();
    let input = ReconcileInput::fresh(Arc::new(fleet.specs.clone()));
    let before = fleet.calls.snapshot();
    let scan = fleet.reconciler.owned(&input, &ledgers).await;
    assert!(scan.errors.is_empty(), "{:?}", scan.errors);
    let mutations = fleet.mutations_since(&before);
    assert!(mutations.is_empty(), "the scan wrote: {mutations:?}");

    let owners: BTreeSet<&SpecKey> = scan.owned.keys().collect();
    let specs: BTreeSet<&SpecKey> = reports.keys().collect();
    assert_eq!(owners, specs, "owners found: {owners:?}");
    for (key, report) in &reports {
        let mut ledger: Vec<_> = report.resources.clone();
        ledger.sort();
        ledger.dedup();
        let found = scan.resources_of(key);
        println!("{key}: {} resources found", found.len());
        assert_eq!(
            found, ledger,
            "{key}: what the scan found differs from the ledger"
        );
    }
    let all_ids: Vec<String> = scan
        .owned
        .values()
        .flatten()
        .map(|(_, id)| id.clone())
        .collect();
    for name in ["other-instance", "untagged", "released"] {
        assert!(
            !all_ids
                .iter()
                .any(|id| id.contains(&format!(":targetgroup/{name}/"))),
            "{name} was taken for ours: {all_ids:?}"
        );
    }
}

fn status_path(dir: &Path, key: &str) -> std::path::PathBuf {
    let (kind, name) = key.split_once('/').unwrap();
    dir.join(".ecs-operator/status")
        .join(kind)
        .join(format!("{name}.json"))
}

/// Target groups by name, with their tags.
async fn target_groups(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let tgs = elb.describe_target_groups().send().await.unwrap();
    let mut out = BTreeMap::new();
    for tg in tgs.target_groups() {
        let arn = tg.target_group_arn().unwrap();
        let tags = elb.describe_tags().resource_arns(arn).send().await.unwrap();
        out.insert(
            tg.target_group_name().unwrap().to_string(),
            tags_of(tags.tag_descriptions()[0].tags()),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_no_record_lists_are_collected_after_their_spec_is_gone() {
    let Env { moto, dir, .. } = Env::new(EDGE_MOTO_ENV, reference_files).await;
    let env = moto.env();
    let store = format!("file://{}", dir.path().display());
    let out = run_once(dir.path(), &env, "120s");
    assert_eq!(out.code, 0, "{}", out.stderr);

    let sdk = moto.sdk_config().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    let tgs = target_groups(&elb).await;
    let tg_of = |owner: &str| -> String {
        tgs.iter()
            .find(|(_, t)| t.get(OWNER).map(String::as_str) == Some(owner))
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| panic!("no target group of {owner}: {tgs:?}"))
    };
    let (web_tg, admin_tg) = (tg_of("ServiceSpec/web"), tg_of("ServiceSpec/admin"));

    // As after crashes: web's record is lost entirely; admin's record (policy Delete) lost its
    // target group, rule, service and task definition entries. Then both specs leave the store.
    std::fs::remove_file(status_path(dir.path(), "ServiceSpec/web")).unwrap();
    let admin_path = status_path(dir.path(), "ServiceSpec/admin");
    let mut admin: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&admin_path).unwrap()).unwrap();
    assert_eq!(admin["deletionPolicy"], "Delete", "{admin}");
    let dropped = [
        "elbv2:targetgroup",
        "elbv2:listener-rule",
        "ecs:service",
        "ecs:task-definition",
    ];
    let kept: Vec<serde_json::Value> = admin["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !dropped.contains(&r["type"].as_str().unwrap()))
        .cloned()
        .collect();
    admin["resources"] = serde_json::Value::Array(kept);
    std::fs::write(&admin_path, serde_json::to_vec(&admin).unwrap()).unwrap();
    std::fs::remove_file(dir.path().join("service-web.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("service-admin.yaml")).unwrap();

    let logs = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut op = OperatorProcess::spawn(
        &[
            "run",
            "--store",
            &store,
            "--gc-interval",
            "1s",
            "--metrics-addr",
            &addr,
        ],
        dir.path(),
        &env,
        logs.path().join("op.log"),
    );
    let start = Instant::now();
    loop {
        let tgs = target_groups(&elb).await;
        let web_released = tgs.get(&web_tg).is_some_and(|t| {
            t.get(RELEASED).map(String::as_str) == Some("ServiceSpec/web")
                && !t.contains_key(OWNER)
                && !t.contains_key(MANAGED_BY)
        });
        let admin_gone = !tgs.contains_key(&admin_tg);
        let records_gone = !status_path(dir.path(), "ServiceSpec/web").exists()
            && !status_path(dir.path(), "ServiceSpec/admin").exists();
        if web_released && admin_gone && records_gone {
            println!("collected after {:?}", start.elapsed());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "not collected: web released {web_released}, admin's target group gone {admin_gone}, \
             records gone {records_gone}\n{tgs:?}\n{}",
            op.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    op.kill();
    let logs = op.logs();
    assert!(
        logs.contains("garbage collection found"),
        "the collection is not logged:\n{logs}"
    );

    // admin's service was deleted with its policy; web's was released and keeps running.
    let services = ecs
        .describe_services()
        .cluster("prod")
        .services("admin")
        .services("web")
        .include(aws_sdk_ecs::types::ServiceField::Tags)
        .send()
        .await
        .unwrap();
    for s in services.services() {
        let tags: BTreeMap<String, String> = s
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect();
        match s.service_name().unwrap() {
            "admin" => assert_ne!(s.status(), Some("ACTIVE"), "admin's service is still up"),
            "web" => {
                assert_eq!(s.status(), Some("ACTIVE"));
                assert_eq!(
                    tags.get(RELEASED).map(String::as_str),
                    Some("ServiceSpec/web")
                );
                assert!(!tags.contains_key(OWNER), "{tags:?}");
            }
            other => panic!("unexpected service {other}"),
        }
    }
    // The cluster's own spec is untouched and Ready.
    let out = bin(
        &["status", "--store", &store, "-o", "json"],
        dir.path(),
        &env,
    );
    let st: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let st = st.as_array().unwrap();
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0]["name"], "prod");
    assert_eq!(st[0]["phase"], "Ready", "{st:?}");
}

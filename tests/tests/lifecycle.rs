//! Lifecycle against moto, through `run --once` as a process: deletion when a spec leaves the
//! store, Retain, a cluster kept while services name it, and the mass-deletion guard.

use std::path::Path;

use ecs_operator_tests::ecs_fixtures::{cluster, find_service, fixture, services, spec_folder};
use ecs_operator_tests::{bin, run_once, run_once_with, Moto};

fn status(dir: &Path, moto: &Moto) -> Vec<serde_json::Value> {
    let store = format!("file://{}", dir.display());
    let out = bin(
        &["status", "--store", &store, "-o", "json"],
        dir,
        &moto.env(),
    );
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

async fn ecs(moto: &Moto) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&moto.sdk_config().await)
}

async fn service_status(ecs: &aws_sdk_ecs::Client, name: &str) -> Option<String> {
    find_service(ecs, name)
        .await
        .and_then(|s| s.status().map(str::to_string))
}

async fn converge(moto: &Moto) -> (tempfile::TempDir, ecs_operator_tests::ecs_fixtures::Fixture) {
    let f = fixture(moto);
    let dir = spec_folder(&f);
    let out = run_once(dir.path(), &moto.env(), "120s");
    assert_eq!(out.code, 0, "{}", out.stderr);
    (dir, f)
}

#[tokio::test]
async fn a_removed_service_spec_is_scaled_down_deleted_and_its_revisions_and_scaling_removed() {
    let moto = Moto::start_with_env(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let (dir, _f) = converge(&moto).await;
    let ecs = ecs(&moto).await;
    assert_eq!(service_status(&ecs, "web").await.as_deref(), Some("ACTIVE"));

    // Two of three specs leave: within the guard (2 is never a mass deletion).
    std::fs::remove_file(dir.path().join("services.yaml")).unwrap();
    let out = run_once(dir.path(), &moto.env(), "120s");
    assert_eq!(out.code, 0, "{}", out.stderr);

    for name in ["web", "worker"] {
        assert_eq!(
            service_status(&ecs, name).await.as_deref(),
            Some("INACTIVE"),
            "{name}"
        );
    }
    let active = ecs
        .list_task_definitions()
        .family_prefix("web")
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    assert!(
        active.task_definition_arns().is_empty(),
        "{:?}",
        active.task_definition_arns()
    );
    let scaling = aws_sdk_applicationautoscaling::Client::new(&moto.sdk_config().await);
    let t = scaling
        .describe_scalable_targets()
        .service_namespace(aws_sdk_applicationautoscaling::types::ServiceNamespace::Ecs)
        .send()
        .await
        .unwrap();
    assert!(
        t.scalable_targets().is_empty(),
        "the worker's scalable target is gone"
    );
    // Their status records are gone; the cluster is untouched.
    let st = status(dir.path(), &moto);
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0]["name"], "prod");
    let c = cluster(&ecs, "prod").await;
    assert_eq!(c.status(), Some("ACTIVE"));
}

#[tokio::test]
async fn a_retained_cluster_is_released_not_deleted_and_a_referenced_one_is_kept() {
    let moto = Moto::start_with_env(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let (dir, _f) = converge(&moto).await;
    let ecs = ecs(&moto).await;

    // The cluster leaves while services still name it: it is kept, with a clear condition.
    std::fs::remove_file(dir.path().join("cluster.yaml")).unwrap();
    let out = run_once(dir.path(), &moto.env(), "20s");
    assert_eq!(out.code, 1, "{}", out.stderr);
    let st = status(dir.path(), &moto);
    let prod = st.iter().find(|s| s["name"] == "prod").unwrap();
    assert_eq!(prod["phase"], "Deleting", "{prod}");
    assert!(
        prod.to_string().contains("still name this cluster"),
        "{prod}"
    );

    // With the services gone too (all three specs: past the guard, hence the flag), the
    // cluster (deletionPolicy Retain by default) is released.
    std::fs::remove_file(dir.path().join("services.yaml")).unwrap();
    let out = run_once_with(dir.path(), &moto.env(), "120s", &["--allow-mass-deletion"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c = cluster(&ecs, "prod").await;
    assert_eq!(
        c.status(),
        Some("ACTIVE"),
        "a retained cluster is not deleted"
    );
    let tags: Vec<_> = c
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert!(
        tags.contains(&("ecs-operator.io/released-from", "ClusterSpec/prod")),
        "{tags:?}"
    );
    assert!(
        !tags.iter().any(|(k, _)| *k == "ecs-operator.io/owner"),
        "{tags:?}"
    );
    assert!(status(dir.path(), &moto).is_empty());
}

#[tokio::test]
async fn a_listing_that_removes_most_specs_deletes_nothing_until_confirmed() {
    let moto = Moto::start_with_env(&[("MOTO_ECS_SERVICE_RUNNING", "2")]);
    let (dir, f) = converge(&moto).await;
    let ecs = ecs(&moto).await;
    // Add a third service so three specs leave at once (more than 2 and more than 20%).
    let extra = services(&f, "nginx:1.25", 1)
        .replace("name: web}", "name: web2}")
        .replace("name: worker}", "name: worker2}");
    std::fs::write(dir.path().join("more.yaml"), extra).unwrap();
    let out = run_once(dir.path(), &moto.env(), "120s");
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Every spec leaves (an emptied bucket, a bad sync): nothing may be deleted.
    for f in ["cluster.yaml", "services.yaml", "more.yaml"] {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let out = run_once(dir.path(), &moto.env(), "30s");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("deletion held"), "{}", out.stderr);
    for name in ["web", "worker", "web2", "worker2"] {
        assert_eq!(
            service_status(&ecs, name).await.as_deref(),
            Some("ACTIVE"),
            "{name}"
        );
    }
    let st = status(dir.path(), &moto);
    assert!(st.iter().all(|s| s["phase"] == "Degraded"), "{st:?}");
    assert!(
        st.iter().all(|s| s.to_string().contains("DeletionHeld")),
        "{st:?}"
    );

    // A person confirms; the next run deletes.
    let store = format!("file://{}", dir.path().display());
    let c = bin(
        &["confirm-deletions", "--store", &store],
        dir.path(),
        &moto.env(),
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(c.stdout.contains("5 deletion(s) confirmed"), "{}", c.stdout);
    let out = run_once(dir.path(), &moto.env(), "120s");
    assert_eq!(out.code, 0, "{}", out.stderr);
    for name in ["web", "worker", "web2", "worker2"] {
        assert_eq!(
            service_status(&ecs, name).await.as_deref(),
            Some("INACTIVE"),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_deleted_while_a_store_document_cannot_be_read() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let ops = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: ops}\n\
               spec: {clusterName: ops, deletionPolicy: Delete}\n";
    std::fs::write(dir.path().join("ops.yaml"), ops).unwrap();
    let out = run_once(dir.path(), &moto.env(), "60s");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ecs = aws_sdk_ecs::Client::new(&moto.sdk_config().await);
    let cluster_status = || async {
        ecs.describe_clusters()
            .clusters("ops")
            .send()
            .await
            .unwrap()
            .clusters()
            .first()
            .and_then(|c| c.status().map(str::to_string))
    };
    assert_eq!(cluster_status().await.as_deref(), Some("ACTIVE"));

    // A typo makes the file unreadable: its spec vanishes from the listing, but it may well
    // still be meant. Nothing is deleted, and the status says why.
    std::fs::write(dir.path().join("ops.yaml"), "apiVersion: [unclosed\n").unwrap();
    let out = run_once(dir.path(), &moto.env(), "60s");
    assert_eq!(out.code, 1, "a person has to act: {}", out.stderr);
    assert!(
        out.stderr
            .contains("not deleted while the store has documents that name no spec"),
        "{}",
        out.stderr
    );
    assert_eq!(cluster_status().await.as_deref(), Some("ACTIVE"));
    let st = status(dir.path(), &moto);
    assert_eq!(st.len(), 1, "{st:?}");
    assert_eq!(st[0]["phase"], "Deleting", "{st:?}");
    let cond = st[0]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Deleted")
        .cloned()
        .unwrap_or_else(|| panic!("no Deleted condition: {st:?}"));
    assert_eq!(cond["reason"], "StoreUnreadable", "{cond}");
    assert!(
        cond["message"].as_str().unwrap().contains("ops.yaml"),
        "the message names the unreadable file: {cond}"
    );

    // Once the store reads cleanly (the file is really gone), the deletion goes ahead.
    std::fs::remove_file(dir.path().join("ops.yaml")).unwrap();
    let out = run_once(dir.path(), &moto.env(), "60s");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(cluster_status().await.as_deref(), Some("INACTIVE"));
    assert!(status(dir.path(), &moto).is_empty());
}

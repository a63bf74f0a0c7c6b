//! The S3 store against moto: init, sync, status, idempotent sync, prune, and a plain
//! `aws s3 sync` read exactly like `ecs-operator sync`.

use std::collections::BTreeMap;

use ecs_operator::spec::SpecKey;
use ecs_operator::store::{self, SpecStatus, StoreUrl};
use ecs_operator_tests::{
    cli, copy_examples, status_json, workspace_root, write_ready_status, Moto,
};

const BUCKET: &str = "specs-bucket";

/// Every object in the bucket: key -> (ETag, LastModified).
async fn objects(s3: &aws_sdk_s3::Client) -> BTreeMap<String, (String, String)> {
    let out = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    out.contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap().to_string(),
                (
                    o.e_tag().unwrap_or_default().to_string(),
                    format!("{:?}", o.last_modified()),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn sync_then_status_lists_every_spec_and_a_second_sync_writes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let url = format!("s3://{BUCKET}/team/specs");
    let dir = copy_examples();
    let d = dir.path().to_str().unwrap();

    let init = cli(&["init", "--store", &url], Some(sdk.clone())).await;
    assert_eq!(init.code, 0, "{init:?}");
    assert!(
        init.stdout.contains(&format!("created s3://{BUCKET}")),
        "{init:?}"
    );
    let again = cli(&["init", "--store", &url], Some(sdk.clone())).await;
    assert!(
        again.stdout.contains(&format!("exists  s3://{BUCKET}")),
        "{again:?}"
    );

    let first = cli(&["sync", d, "--store", &url], Some(sdk.clone())).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(first.stdout.contains("+ cluster-prod.yaml"), "{first:?}");
    assert!(
        first
            .stdout
            .contains("sync: wrote 3, deleted 0, 0 unchanged"),
        "{first:?}"
    );

    let list = status_json(&url, &sdk).await;
    let keys: Vec<String> = list
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            "ClusterSpec/prod",
            "ServiceSpec/admin",
            "ServiceSpec/trust-estate-api"
        ]
    );
    for s in &list {
        assert_eq!(s["phase"], "Pending");
        assert_eq!(s["generation"].as_str().unwrap().len(), 64);
        for field in ["observedGeneration", "conditions", "resources", "lastError"] {
            assert!(s.get(field).is_some(), "status element lacks {field}: {s}");
        }
    }

    let s3 = moto.s3().await;
    let before = objects(&s3).await;
    let second = cli(&["sync", d, "--store", &url], Some(sdk.clone())).await;
    assert_eq!(second.code, 0, "{second:?}");
    assert!(
        second
            .stdout
            .contains("sync: wrote 0, deleted 0, 3 unchanged"),
        "{second:?}"
    );
    assert_eq!(
        objects(&s3).await,
        before,
        "a sync with no change rewrote objects"
    );
}

#[tokio::test]
async fn prune_removes_only_specs_absent_from_the_folder() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let url = format!("s3://{BUCKET}/team");
    let dir = copy_examples();
    let d = dir.path().to_str().unwrap();
    assert_eq!(
        cli(&["init", "--store", &url], Some(sdk.clone()))
            .await
            .code,
        0
    );
    assert_eq!(
        cli(&["sync", d, "--store", &url], Some(sdk.clone()))
            .await
            .code,
        0
    );

    let s3 = moto.s3().await;
    for key in ["team/README.md", "other/service.yaml"] {
        s3.put_object()
            .bucket(BUCKET)
            .key(key)
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap();
    }
    let st = store::open(&StoreUrl::parse(&url).unwrap(), &sdk);
    write_ready_status(st.as_ref(), "ServiceSpec/admin").await;
    let key = SpecKey::parse("ServiceSpec/admin").unwrap();

    std::fs::remove_file(dir.path().join("service-admin.yaml")).unwrap();
    let dry = cli(
        &["sync", d, "--store", &url, "--prune", "--dry-run"],
        Some(sdk.clone()),
    )
    .await;
    assert!(dry.stdout.contains("- service-admin.yaml"), "{dry:?}");
    assert!(dry.stdout.contains("would delete 1"), "{dry:?}");
    assert!(
        objects(&s3).await.contains_key("team/service-admin.yaml"),
        "--dry-run deleted"
    );

    let pruned = cli(&["sync", d, "--store", &url, "--prune"], Some(sdk.clone())).await;
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(
        pruned.stdout.contains("wrote 0, deleted 1, 2 unchanged"),
        "{pruned:?}"
    );
    let keys: Vec<String> = objects(&s3).await.into_keys().collect();
    assert!(!keys.contains(&"team/service-admin.yaml".to_string()));
    for kept in [
        "team/cluster-prod.yaml",
        "team/service-web.yaml",
        "team/README.md",
        "other/service.yaml",
    ] {
        assert!(
            keys.contains(&kept.to_string()),
            "{kept} was removed: {keys:?}"
        );
    }
    assert!(
        st.read_status(&key).await.unwrap().is_some(),
        "prune removed a status record"
    );

    // Pruning from an empty folder would empty the store: refused.
    let empty = tempfile::tempdir().unwrap();
    let refused = cli(
        &[
            "sync",
            empty.path().to_str().unwrap(),
            "--store",
            &url,
            "--prune",
        ],
        Some(sdk),
    )
    .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(objects(&s3).await.contains_key("team/cluster-prod.yaml"));
}

#[tokio::test]
async fn an_invalid_folder_writes_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let url = format!("s3://{BUCKET}/team");
    assert_eq!(
        cli(&["init", "--store", &url], Some(sdk.clone()))
            .await
            .code,
        0
    );
    let dir = copy_examples();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "kind: ServiceSpec\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = cli(
        &["sync", dir.path().to_str().unwrap(), "--store", &url],
        Some(sdk),
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("broken.yaml"), "{out:?}");
    assert!(
        objects(&moto.s3().await).await.is_empty(),
        "something was written"
    );
}

#[tokio::test]
async fn a_plain_aws_s3_sync_is_read_exactly_like_ecs_operator_sync_and_never_touches_status() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let examples = workspace_root().join("manifests/examples");
    assert_eq!(
        cli(
            &["init", "--store", &format!("s3://{BUCKET}/op")],
            Some(sdk.clone())
        )
        .await
        .code,
        0
    );
    let ours = cli(
        &[
            "sync",
            examples.to_str().unwrap(),
            "--store",
            &format!("s3://{BUCKET}/op"),
        ],
        Some(sdk.clone()),
    )
    .await;
    assert_eq!(ours.code, 0, "{ours:?}");

    let ci_url = format!("s3://{BUCKET}/ci");
    let ci = store::open(&StoreUrl::parse(&ci_url).unwrap(), &sdk);
    let key = SpecKey::parse("ClusterSpec/prod").unwrap();
    ci.write_status(&SpecStatus::pending(&key)).await.unwrap();

    let aws = workspace_root().join(".venv/bin/aws");
    assert!(
        aws.exists(),
        "{} missing: run scripts/test (installs the pinned AWS CLI)",
        aws.display()
    );
    let out = std::process::Command::new(aws)
        .args([
            "s3",
            "sync",
            examples.to_str().unwrap(),
            &format!("{ci_url}/"),
            "--delete",
            "--endpoint-url",
            &moto.endpoint(),
        ])
        .envs(moto.env())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws s3 sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let read = |url: String| {
        let sdk = sdk.clone();
        async move {
            let listing = store::open(&StoreUrl::parse(&url).unwrap(), &sdk)
                .list()
                .await
                .unwrap();
            listing
                .validated_files()
                .iter()
                .flat_map(|f| {
                    f.documents.iter().map(|d| {
                        (
                            d.key().unwrap().to_string(),
                            d.generation(),
                            d.spec().is_some(),
                        )
                    })
                })
                .collect::<Vec<_>>()
        }
    };
    let a = read(format!("s3://{BUCKET}/op")).await;
    let b = read(ci_url.clone()).await;
    assert_eq!(a.len(), 3);
    assert!(a.iter().all(|(_, _, valid)| *valid));
    assert_eq!(
        a, b,
        "aws s3 sync and ecs-operator sync are read differently"
    );
    assert!(
        ci.read_status(&key).await.unwrap().is_some(),
        "aws s3 sync --delete removed status"
    );
}

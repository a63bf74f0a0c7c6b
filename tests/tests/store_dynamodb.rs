//! The DynamoDB store against moto: init (table with stream, lease table), sync, status,
//! idempotent sync, prune.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use ecs_operator::store::{self, StoreUrl};
use ecs_operator_tests::{cli, copy_examples, status_json, write_ready_status, Moto};

const URL: &str = "dynamodb://ecs-specs";

/// Every item: pk -> whole item, as debug text (to compare before/after).
async fn items(db: &aws_sdk_dynamodb::Client) -> BTreeMap<String, String> {
    let out = db.scan().table_name("ecs-specs").send().await.unwrap();
    out.items()
        .iter()
        .map(|i| {
            let pk = i["pk"].as_s().unwrap().clone();
            let mut attrs: Vec<(String, String)> = i
                .iter()
                .map(|(k, v)| (k.clone(), format!("{v:?}")))
                .collect();
            attrs.sort();
            (pk, format!("{attrs:?}"))
        })
        .collect()
}

#[tokio::test]
async fn init_creates_the_table_with_its_stream_and_the_lease_table_and_is_safe_to_rerun() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let out = cli(
        &["init", "--store", URL, "--lease-table", "ecs-leases"],
        Some(sdk.clone()),
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("created dynamodb://ecs-specs"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("created dynamodb://ecs-leases (lease table)"),
        "{out:?}"
    );
    let db = moto.dynamodb().await;
    let t = db
        .describe_table()
        .table_name("ecs-specs")
        .send()
        .await
        .unwrap();
    let stream = t.table().unwrap().stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert!(t.table().unwrap().latest_stream_arn().is_some());
    db.describe_table()
        .table_name("ecs-leases")
        .send()
        .await
        .unwrap();
    let again = cli(
        &["init", "--store", URL, "--lease-table", "ecs-leases"],
        Some(sdk),
    )
    .await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stdout.contains("exists  dynamodb://ecs-specs"),
        "{again:?}"
    );
}

#[tokio::test]
async fn sync_status_second_sync_and_prune() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let dir = copy_examples();
    let d = dir.path().to_str().unwrap();
    assert_eq!(
        cli(&["init", "--store", URL], Some(sdk.clone())).await.code,
        0
    );

    let first = cli(&["sync", d, "--store", URL], Some(sdk.clone())).await;
    assert_eq!(first.code, 0, "{first:?}");
    assert!(
        first.stdout.contains("+ ServiceSpec/trust-estate-api"),
        "{first:?}"
    );
    assert!(
        first
            .stdout
            .contains("sync: wrote 3, deleted 0, 0 unchanged"),
        "{first:?}"
    );

    let list = status_json(URL, &sdk).await;
    let names: Vec<&str> = list.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["prod", "admin", "trust-estate-api"]);

    let db = moto.dynamodb().await;
    let before = items(&db).await;
    let second = cli(&["sync", d, "--store", URL], Some(sdk.clone())).await;
    assert!(
        second
            .stdout
            .contains("sync: wrote 0, deleted 0, 3 unchanged"),
        "{second:?}"
    );
    assert_eq!(
        items(&db).await,
        before,
        "a sync with no change wrote items"
    );

    // A status record and an unrelated item survive a prune; only the absent spec goes.
    let st = store::open(&StoreUrl::parse(URL).unwrap(), &sdk);
    write_ready_status(st.as_ref(), "ServiceSpec/admin").await;
    std::fs::remove_file(dir.path().join("service-admin.yaml")).unwrap();
    let pruned = cli(&["sync", d, "--store", URL, "--prune"], Some(sdk.clone())).await;
    assert_eq!(pruned.code, 0, "{pruned:?}");
    assert!(pruned.stdout.contains("- ServiceSpec/admin"), "{pruned:?}");
    assert!(
        pruned.stdout.contains("wrote 0, deleted 1, 2 unchanged"),
        "{pruned:?}"
    );
    let after = items(&db).await;
    assert!(!after.contains_key("spec#ServiceSpec/admin"));
    assert!(after.contains_key("spec#ClusterSpec/prod"));
    assert!(after.contains_key("spec#ServiceSpec/trust-estate-api"));
    assert!(
        after.contains_key("status#ServiceSpec/admin"),
        "prune removed status"
    );

    // The status command still shows the record of the removed spec, without a generation.
    let list = status_json(URL, &sdk).await;
    let admin = list
        .iter()
        .find(|s| s["name"] == "admin")
        .expect("admin's record");
    assert_eq!(admin["phase"], "Ready");
    assert!(admin["generation"].is_null());
}

#[tokio::test]
async fn an_item_written_by_hand_that_is_invalid_shows_as_invalid_with_its_error() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    assert_eq!(
        cli(&["init", "--store", URL], Some(sdk.clone())).await.code,
        0
    );
    let db = moto.dynamodb().await;
    db.put_item()
        .table_name("ecs-specs")
        .item("pk", AttributeValue::S("spec#ServiceSpec/hand".into()))
        .item(
            "body",
            AttributeValue::S(
                r#"{"apiVersion":"ecs-operator.io/v1alpha1","kind":"ServiceSpec","metadata":{"name":"hand"},"spec":{"cluster":"prod"}}"#.into(),
            ),
        )
        .send()
        .await
        .unwrap();
    let list = status_json(URL, &sdk).await;
    assert_eq!(list[0]["name"], "hand");
    assert_eq!(list[0]["phase"], "Invalid");
    let err = list[0]["lastError"].as_str().unwrap();
    assert!(
        err.contains("spec.container: missing required field `container`"),
        "{err}"
    );
}

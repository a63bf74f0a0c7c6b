//! Watchers deliver a changed spec within two polls, and a status write produces no event.

use std::sync::Arc;
use std::time::Duration;

use ecs_operator::store::watch::{WatchEvent, WatchOptions, Watcher};
use ecs_operator::store::{self, Store, StoreUrl};
use ecs_operator_tests::fixtures::attempts;
use ecs_operator_tests::{copy_examples, seeded_store, write_ready_status, Moto};

const POLL: Duration = Duration::from_millis(300);

fn opts() -> WatchOptions {
    WatchOptions {
        poll_interval: POLL,
        full_scan_interval: Duration::from_secs(3600),
    }
}

/// The changed keys of the next event; panics on a failure event.
async fn next_change(w: &mut Watcher) -> Vec<String> {
    match tokio::time::timeout(Duration::from_secs(60), w.next())
        .await
        .expect("an event")
    {
        WatchEvent::Changed {
            changed, removed, ..
        } => changed.into_iter().chain(removed).collect(),
        WatchEvent::Failed(e) => panic!("watch failed: {e}"),
    }
}

/// Drive the watcher for at least `polls` polls and assert it reports nothing.
async fn assert_quiet(w: &mut Watcher, polls: u64) {
    let start = w.polls();
    while w.polls() < start + polls {
        match tokio::time::timeout(POLL * 2, w.next()).await {
            Err(_) => {}
            Ok(WatchEvent::Changed {
                changed, removed, ..
            }) => panic!("unexpected change: {changed:?} {removed:?}"),
            Ok(WatchEvent::Failed(e)) => panic!("watch failed: {e}"),
        }
    }
}

async fn check(store: Arc<dyn Store>, changed_key: &str, new_bytes: Vec<u8>) {
    let mut w = Watcher::new(store.clone(), opts());
    let first = match w.next().await {
        WatchEvent::Changed {
            listing, initial, ..
        } => {
            assert!(initial);
            listing
        }
        WatchEvent::Failed(e) => panic!("initial listing failed: {e}"),
    };
    assert_eq!(first.sources.len(), 3);

    // A status write is not a spec change.
    write_ready_status(store.as_ref(), "ServiceSpec/admin").await;
    assert_quiet(&mut w, 3).await;

    // A changed spec arrives within two polls.
    let before = w.polls();
    store
        .put_source(changed_key, &new_bytes, "test")
        .await
        .unwrap();
    let changed = next_change(&mut w).await;
    assert_eq!(changed, vec![changed_key.to_string()]);
    let polls = w.polls() - before;
    assert!(polls <= 2, "the change took {polls} polls");
    let doc = &w.current().unwrap().sources[changed_key].parsed.documents[0];
    assert!(
        doc.spec()
            .unwrap()
            .canonical_json()
            .contains("\"desiredCount\":5"),
        "the new content was not read"
    );

    // Removal is a change too.
    store.delete_source(changed_key).await.unwrap();
    assert_eq!(next_change(&mut w).await, vec![changed_key.to_string()]);
    assert!(!w.current().unwrap().sources.contains_key(changed_key));
}

fn admin_with_five(dir: &std::path::Path) -> Vec<u8> {
    std::fs::read_to_string(dir.join("service-admin.yaml"))
        .unwrap()
        .replace("desiredCount: 2", "desiredCount: 5")
        .into_bytes()
}

#[tokio::test]
async fn s3_watcher_delivers_a_change_within_two_polls_and_ignores_status_writes() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let url = "s3://watch-bucket/specs";
    let dir = copy_examples();
    let store = seeded_store(&sdk, url, dir.path()).await;
    check(store, "service-admin.yaml", admin_with_five(dir.path())).await;
}

#[tokio::test]
async fn dynamodb_watcher_follows_the_stream_and_ignores_status_writes() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let url = "dynamodb://watch-specs";
    let dir = copy_examples();
    let store = seeded_store(&sdk, url, dir.path()).await;
    // A DynamoDB item holds one document as JSON.
    let yaml = String::from_utf8(admin_with_five(dir.path())).unwrap();
    let parsed = ecs_operator::spec::parse_file("admin.yaml", yaml.as_bytes());
    let body = ecs_operator::spec::canonical_json(&parsed.documents[0].raw).into_bytes();
    check(store, "ServiceSpec/admin", body).await;
}

#[tokio::test]
async fn file_watcher_delivers_a_change_within_two_polls_and_ignores_status_writes() {
    let dir = copy_examples();
    let store = store::open(
        &StoreUrl::File(dir.path().to_path_buf()),
        &aws_config::SdkConfig::builder().build(),
    );
    check(store, "service-admin.yaml", admin_with_five(dir.path())).await;
}

#[tokio::test]
async fn a_store_that_cannot_be_read_reports_failure_not_an_empty_listing() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("missing");
    let store = store::open(
        &StoreUrl::File(gone),
        &aws_config::SdkConfig::builder().build(),
    );
    assert!(store.list().await.is_err());
    let mut w = Watcher::new(
        store,
        WatchOptions {
            poll_interval: Duration::from_millis(10),
            ..opts()
        },
    );
    assert!(matches!(w.next().await, WatchEvent::Failed(_)));
    assert!(w.current().is_none());
}

/// What the events listener does for an S3 object event: a nudged key is re-read on its own,
/// with GetObject and no listing, however far away the poll is; a deleted key is removed; a
/// key that is no spec file changes nothing.
#[tokio::test]
async fn s3_watcher_re_reads_a_nudged_key_at_once_without_listing() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let url = "s3://nudge-bucket/specs";
    let dir = copy_examples();
    seeded_store(&sdk, url, dir.path()).await;
    let calls = ecs_operator::aws::CallMetrics::new();
    let store = store::open_with(
        &StoreUrl::parse(url).unwrap(),
        &ecs_operator::aws::Sdk::with_calls(sdk.clone(), calls.clone()),
    );
    let nudges = Arc::new(ecs_operator::store::watch::Nudges::default());
    let mut w = Watcher::new(
        store.clone(),
        WatchOptions {
            poll_interval: Duration::from_secs(3600),
            full_scan_interval: Duration::from_secs(3600),
        },
    )
    .with_nudges(nudges.clone());
    assert!(matches!(
        w.next().await,
        WatchEvent::Changed { initial: true, .. }
    ));
    let lists = attempts(&calls, "ListObjectsV2");
    assert!(lists >= 1);

    let key = "service-admin.yaml";
    store
        .put_source(key, &admin_with_five(dir.path()), "test")
        .await
        .unwrap();
    nudges.key(key.to_string());
    assert_eq!(next_change(&mut w).await, vec![key.to_string()]);
    let doc = &w.current().unwrap().sources[key].parsed.documents[0];
    assert!(doc
        .spec()
        .unwrap()
        .canonical_json()
        .contains("\"desiredCount\":5"));

    // Nudged again with nothing changed, then a key that is no spec: no event.
    nudges.key(key.to_string());
    nudges.key("README.md".to_string());
    assert!(
        tokio::time::timeout(Duration::from_secs(3), w.next())
            .await
            .is_err(),
        "nothing changed"
    );

    store.delete_source(key).await.unwrap();
    nudges.key(key.to_string());
    assert_eq!(next_change(&mut w).await, vec![key.to_string()]);
    assert!(!w.current().unwrap().sources.contains_key(key));
    assert_eq!(attempts(&calls, "ListObjectsV2"), lists, "no listing");
}

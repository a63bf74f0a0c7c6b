//! Leader election on a DynamoDB lease table against moto: the record's conditional writes, and
//! electors that hand the lease over on real time.

use std::sync::Arc;
use std::time::Duration;

use ecs_operator::runtime::{Elector, LeaderState, LeaseBackend, LeaseConfig, LeaseRecord};
use ecs_operator::store::dynamodb::ensure_lease_table;
use ecs_operator::store::lease::{lease_name, DynamoLease, LeaseError};
use ecs_operator_tests::Moto;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

const TABLE: &str = "ecs-leases";
const D: Duration = Duration::from_secs(15);

fn rec(holder: Option<&str>, version: u64) -> LeaseRecord {
    LeaseRecord {
        holder: holder.map(str::to_string),
        version,
    }
}

#[tokio::test]
async fn dynamodb_lease_writes_win_only_at_the_version_and_holder_they_expect() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    assert!(ensure_lease_table(&sdk, TABLE).await.unwrap());
    let name = lease_name("prod");
    let a = DynamoLease::new(&sdk, TABLE, &name);
    let b = DynamoLease::new(&sdk, TABLE, &name);

    assert_eq!(a.read().await.unwrap(), rec(None, 0));
    assert!(a.acquire("a", 0, D).await.unwrap());
    // b acquires at a version that is no longer current: it lost the race.
    assert!(!b.acquire("b", 0, D).await.unwrap());
    assert_eq!(b.read().await.unwrap(), rec(Some("a"), 1));
    // Renewing needs both the holder and the current version.
    assert!(!b.renew("b", 1, D).await.unwrap());
    assert!(!a.renew("a", 0, D).await.unwrap());
    assert!(a.renew("a", 1, D).await.unwrap());
    assert!(!b.acquire("b", 1, D).await.unwrap());
    // So does releasing.
    assert!(!b.release("b", 2).await.unwrap());
    assert!(!a.release("a", 1).await.unwrap());
    assert_eq!(b.read().await.unwrap(), rec(Some("a"), 2));
    assert!(a.release("a", 2).await.unwrap());
    assert_eq!(b.read().await.unwrap(), rec(None, 3));
    assert!(!a.renew("a", 3, D).await.unwrap());
    // The released record is b's to take at its current version.
    assert!(b.acquire("b", 3, D).await.unwrap());
    assert_eq!(a.read().await.unwrap(), rec(Some("b"), 4));

    let db = moto.dynamodb().await;
    let item = db
        .get_item()
        .table_name(TABLE)
        .key(
            "lease",
            aws_sdk_dynamodb::types::AttributeValue::S(name.clone()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the lease item");
    assert_eq!(item["lease"].as_s().unwrap(), "ecs-operator/prod");
    assert_eq!(item["holder"].as_s().unwrap(), "b");
    assert_eq!(item["rv"].as_n().unwrap(), "4");
    assert_eq!(item["leaseDurationMs"].as_n().unwrap(), "15000");
    let renewed = item["renewedAt"].as_s().unwrap();
    assert!(
        renewed.len() == 20 && renewed.ends_with('Z') && &renewed[10..11] == "T",
        "{renewed}"
    );

    // Another instance's lease in the same table is a record of its own.
    let dev = DynamoLease::new(&sdk, TABLE, &lease_name("dev"));
    assert_eq!(dev.read().await.unwrap(), rec(None, 0));
    assert!(dev.acquire("a", 0, D).await.unwrap());
    assert_eq!(b.read().await.unwrap(), rec(Some("b"), 4));
}

#[tokio::test]
async fn a_missing_lease_table_is_an_error_not_a_lost_race() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let lease = DynamoLease::new(&sdk, "no-such-table", &lease_name("prod"));
    for err in [
        lease.read().await.err(),
        lease.acquire("a", 0, D).await.err(),
        lease.renew("a", 1, D).await.err(),
        lease.release("a", 1).await.err(),
    ] {
        let err = err.expect("an error");
        let typed = err.downcast_ref::<LeaseError>().expect("a LeaseError");
        assert!(matches!(typed, LeaseError::Call { .. }), "{typed:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("dynamodb://no-such-table") && msg.contains("ecs-operator/prod"),
            "{msg}"
        );
    }
}

/// An elector on the shared table, in its own task.
struct Replica {
    id: &'static str,
    rx: watch::Receiver<LeaderState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

fn replica(sdk: &aws_config::SdkConfig, id: &'static str) -> Replica {
    let cfg = LeaseConfig {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
    };
    let backend = Arc::new(DynamoLease::new(sdk, TABLE, &lease_name("prod")));
    let elector = Elector::new(backend, id, cfg).unwrap();
    let rx = elector.subscribe();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(elector.run(async move {
        let _ = stopped.await;
    }));
    Replica {
        id,
        rx,
        stop: Some(stop),
        task,
    }
}

impl Replica {
    fn is_leader(&self) -> bool {
        self.rx.borrow().is_leader()
    }
}

/// Sample every 50 ms until `done` or `limit`: never two leaders. Returns the time it took.
async fn until(replicas: &[&Replica], limit: Duration, done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        let leaders: Vec<_> = replicas
            .iter()
            .filter(|r| r.is_leader())
            .map(|r| r.id)
            .collect();
        assert!(leaders.len() <= 1, "two leaders: {leaders:?}");
        assert!(start.elapsed() < limit, "not done within {limit:?}");
        sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn electors_on_dynamodb_lead_one_at_a_time_and_hand_over() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    ensure_lease_table(&sdk, TABLE).await.unwrap();
    // b starts once a leads: moto's conditional writes are not atomic under concurrent requests
    // (two simultaneous acquires of an absent record both succeed now and then), unlike
    // DynamoDB's. Racing acquires are covered by the unit tests; from here on, no two writes race.
    let a = replica(&sdk, "a");
    until(&[&a], Duration::from_secs(5), || a.is_leader()).await;
    let mut b = replica(&sdk, "b");
    let follows = |f: &Replica, l: &Replica| {
        *f.rx.borrow()
            == LeaderState::Follower {
                holder: Some(l.id.into()),
            }
    };
    until(&[&a, &b], Duration::from_secs(5), || follows(&b, &a)).await;

    // Three seconds of renewals: a leads at every sample, and b follows it.
    for _ in 0..60 {
        assert!(a.is_leader() && follows(&b, &a));
        sleep(Duration::from_millis(50)).await;
    }

    // The leader dies without releasing: the follower waits out the lease, and no longer than
    // lease_duration + retry_period (+ slack).
    a.task.abort();
    let took = until(&[&a, &b], Duration::from_millis(4500), || b.is_leader()).await;
    assert!(took >= Duration::from_secs(2), "took over after {took:?}");
    assert_eq!(*a.rx.borrow(), LeaderState::Stopped);

    // A new replica follows; the leader shuts down and releases: it takes over at its next poll.
    let c = replica(&sdk, "c");
    until(&[&b, &c], Duration::from_secs(3), || follows(&c, &b)).await;
    let t = Instant::now();
    b.stop.take().unwrap().send(()).unwrap();
    b.task.await.unwrap();
    assert_eq!(*b.rx.borrow(), LeaderState::Stopped);
    until(&[&c], Duration::from_secs(3), || c.is_leader()).await;
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "took over after {took:?}"
    );
    let record = DynamoLease::new(&sdk, TABLE, &lease_name("prod"))
        .read()
        .await
        .unwrap();
    assert_eq!(record.holder.as_deref(), Some("c"));
}

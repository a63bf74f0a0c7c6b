//! `ecs-operator run` as a process against moto: leader election across two replicas, the
//! HTTP endpoints, and metrics with real values.

use std::time::{Duration, Instant};

use ecs_operator_tests::{copy_examples, free_addr, http_get, Moto, OperatorProcess};

fn readyz(addr: &str) -> Option<serde_json::Value> {
    let (_, body) = http_get(addr, "/readyz")?;
    serde_json::from_str(&body).ok()
}

/// `Some(true)` leader, `Some(false)` follower, `None` not answering or still starting.
fn is_leader(addr: &str) -> Option<bool> {
    match readyz(addr)?["leaderState"].as_str()? {
        "leader" => Some(true),
        "follower" => Some(false),
        _ => None,
    }
}

fn replica(
    moto: &Moto,
    dir: &std::path::Path,
    name: &str,
    addr: &str,
    tmp: &std::path::Path,
) -> OperatorProcess {
    let store = format!("file://{}", dir.display());
    OperatorProcess::spawn(
        &[
            "run",
            "--store",
            &store,
            "--lease-table",
            "ecs-operator-leases",
            "--identity",
            name,
            "--lease-duration",
            "10s",
            "--renew-deadline",
            "7s",
            "--lease-retry-period",
            "1s",
            "--metrics-addr",
            addr,
        ],
        dir,
        &moto.env(),
        tmp.join(format!("{name}.log")),
    )
}

/// [`replica`] `replica-a`, once its `/readyz` says it leads; panics with its log when that
/// takes more than 30 s from `start`.
fn leading_replica_a(
    moto: &Moto,
    dir: &std::path::Path,
    addr: &str,
    tmp: &std::path::Path,
    start: Instant,
) -> OperatorProcess {
    let a = replica(moto, dir, "replica-a", addr, tmp);
    while is_leader(addr) != Some(true) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a never led:\n{}",
            a.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    a
}

#[test]
fn two_replicas_have_one_leader_at_a_time_and_the_other_takes_over_after_sigkill() {
    let moto = Moto::start();
    let specs = copy_examples();
    let tmp = tempfile::tempdir().unwrap();
    let (addr_a, addr_b) = (free_addr(), free_addr());
    // Timings as in `replica` (roomy enough for a loaded CI machine).
    let lease = Duration::from_secs(10);
    let retry = Duration::from_secs(1);
    // moto's conditional writes are not atomic: two acquires of an absent lease at the same
    // instant can both succeed there (never on DynamoDB). So the second replica starts once
    // the first has taken the lease; racing acquires are covered by the paused-time unit tests.
    let start = Instant::now();
    let mut a = leading_replica_a(&moto, specs.path(), &addr_a, tmp.path(), start);
    let mut b = replica(&moto, specs.path(), "replica-b", &addr_b, tmp.path());

    // Until both answer.
    let first = loop {
        match (is_leader(&addr_a), is_leader(&addr_b)) {
            (Some(true), Some(false)) => break "a",
            (Some(false), Some(true)) => break "b",
            (Some(true), Some(true)) => panic!("both replicas lead at once"),
            _ => {}
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no leader within 30 s:\n{}\n{}",
            a.logs(),
            b.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // 25 s of samples: exactly one leader each time, always the same one.
    let mut samples = 0;
    let phase1 = Instant::now();
    while phase1.elapsed() < Duration::from_secs(25) {
        let (la, lb) = (is_leader(&addr_a), is_leader(&addr_b));
        let expected = if first == "a" {
            (Some(true), Some(false))
        } else {
            (Some(false), Some(true))
        };
        assert_eq!(
            (la, lb),
            expected,
            "sample {samples}: leadership moved or doubled"
        );
        // The follower says who holds the lease.
        let follower = if first == "a" { &addr_b } else { &addr_a };
        let r = readyz(follower).unwrap();
        assert_eq!(r["leaseHolder"], format!("replica-{first}"), "{r}");
        samples += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(samples > 50);

    // SIGKILL the leader: no release, the other must wait the lease out, then lead.
    let (killed, survivor) = if first == "a" {
        a.kill();
        (&addr_a, &addr_b)
    } else {
        b.kill();
        (&addr_b, &addr_a)
    };
    assert!(
        http_get(killed, "/healthz").is_none(),
        "the killed replica still answers"
    );
    let killed_at = Instant::now();
    loop {
        if is_leader(survivor) == Some(true) {
            break;
        }
        assert!(
            killed_at.elapsed() < lease + retry + Duration::from_millis(1500),
            "the survivor did not lead within lease duration + retry period ({:?})",
            killed_at.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let takeover = killed_at.elapsed();
    println!("takeover after SIGKILL: {takeover:?} (lease {lease:?} + retry {retry:?})");
    // The last renew happened up to one retry period before the kill, and the follower's
    // lease clock started when it saw that renew: the earliest legal takeover is a lease
    // duration after that renew.
    assert!(
        takeover >= lease - retry - Duration::from_millis(500),
        "took over before the lease could have expired ({takeover:?})"
    );

    // The rest of the minute: the survivor keeps leading.
    while start.elapsed() < Duration::from_secs(60) {
        assert_eq!(is_leader(survivor), Some(true));
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn metrics_during_a_run_show_reconciles_aws_calls_queue_and_leadership() {
    let moto = Moto::start();
    // A cluster that converges with nothing else in the account.
    let specs = tempfile::tempdir().unwrap();
    std::fs::write(
        specs.path().join("ops.yaml"),
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: ops}\nspec: {containerInsights: true}\n",
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let store = format!("file://{}", specs.path().display());
    let op = OperatorProcess::spawn(
        &["run", "--store", &store, "--metrics-addr", &addr],
        specs.path(),
        &moto.env(),
        tmp.path().join("op.log"),
    );
    // Wait for the first reconciles to have happened.
    let start = Instant::now();
    let text = loop {
        if let Some((200, text)) = http_get(&addr, "/metrics") {
            if text
                .contains(r#"ecs_operator_reconciles_total{kind="ClusterSpec",result="ready"} 1"#)
            {
                break text;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no reconciles within 30 s:\n{}",
            op.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for needle in [
        r#"ecs_operator_aws_calls_total{service="ecs",operation="DescribeClusters",outcome="ok"}"#,
        r#"ecs_operator_aws_calls_total{service="ecs",operation="CreateCluster",outcome="ok"} 1"#,
        "ecs_operator_reconcile_duration_seconds_count",
        "ecs_operator_queue_depth",
        "ecs_operator_backoffs_total",
        r#"ecs_operator_aws_throttles_total{service="ecs"} 0"#,
        "ecs_operator_leader 1",
        r#"ecs_operator_specs{phase="Ready"} 1"#,
        "ecs_operator_store_ready 1",
    ] {
        assert!(
            text.contains(needle),
            "missing `{needle}` in /metrics:\n{text}"
        );
    }
    let (code, body) = http_get(&addr, "/healthz").unwrap();
    assert_eq!((code, body.trim()), (200, "ok"));
    let r = readyz(&addr).unwrap();
    assert_eq!(r["ready"], true, "{r}");
    assert_eq!(r["leaderState"], "standalone", "{r}");
    // Logs are JSON lines, and reconcile spans carry the spec key.
    let logs = op.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("\"change\""))
        .unwrap_or_else(|| panic!("no change logged:\n{logs}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert!(
        v["span"]["key"].as_str().is_some_and(|k| k.contains('/')),
        "{v}"
    );
}

#[test]
fn a_leader_stopped_by_sigterm_exits_0_and_releases_the_lease_for_an_immediate_takeover() {
    let moto = Moto::start();
    let specs = copy_examples();
    let tmp = tempfile::tempdir().unwrap();
    let (addr_a, addr_b) = (free_addr(), free_addr());
    let start = Instant::now();
    let mut a = leading_replica_a(&moto, specs.path(), &addr_a, tmp.path(), start);
    let b = replica(&moto, specs.path(), "replica-b", &addr_b, tmp.path());
    while is_leader(&addr_b) != Some(false) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "b never followed:\n{}",
            b.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &a.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped = Instant::now();
    let code = loop {
        if let Some(s) = a.child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(30),
            "a did not stop:\n{}",
            a.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0), "{}", a.logs());
    while is_leader(&addr_b) != Some(true) {
        // Released: b needs one look at the lease (retry period 1 s), not the 10 s lease.
        assert!(
            stopped.elapsed() < Duration::from_millis(5000),
            "b did not take over a released lease quickly:\n{}",
            b.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("takeover after SIGTERM: {:?}", stopped.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_first_convergence_services_wait_for_their_cluster_without_a_failed_reconcile() {
    use ecs_operator_tests::fixtures::{reference_specs, write_specs, Network, EDGE_MOTO_ENV};
    use ecs_operator_tests::prom::metric_sum;
    let moto = Moto::start_with_env(EDGE_MOTO_ENV);
    let net = Network::create(&moto, "example.com").await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &reference_specs(&net));
    let store = format!("file://{}", dir.path().display());
    let metrics = dir.path().join(".first.prom");
    let out = ecs_operator_tests::bin(
        &[
            "run",
            "--store",
            &store,
            "--once",
            "--timeout",
            "120s",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        dir.path(),
        &moto.env(),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&metrics).expect("--metrics-file was written");
    let service = |result: &str| {
        metric_sum(
            &text,
            "ecs_operator_reconciles_total",
            &[r#"kind="ServiceSpec""#, &format!(r#"result="{result}""#)],
        )
    };
    // Both services started with the cluster (one start-up wave), found it not reconciled
    // yet, waited without reading AWS, and were woken when it became Ready.
    assert!(service("waiting") >= 2.0, "{text}");
    assert_eq!(
        service("error"),
        0.0,
        "no failed service reconcile:\n{text}"
    );
    assert_eq!(
        metric_sum(&text, "ecs_operator_backoffs_total", &[]),
        0.0,
        "{text}"
    );
    assert!(service("ready") >= 2.0, "{text}");
}

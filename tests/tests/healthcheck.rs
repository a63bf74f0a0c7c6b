//! `ecs-operator healthcheck`, the container health check of the distroless image: exit 0 while
//! `run` serves `/healthz`, non-zero when nothing (or something else) answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use ecs_operator_tests::{bin, free_addr, http_get, Moto, OperatorProcess};

#[test]
fn healthcheck_exits_0_while_run_serves_healthz_and_1_once_it_is_gone() {
    let moto = Moto::start();
    let specs = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    // As in the container: every interface, the address in the environment.
    let mut env = moto.env();
    env.push((
        "ECS_OPERATOR_METRICS_ADDR".into(),
        format!("0.0.0.0:{port}"),
    ));
    let store = format!("file://{}", specs.path().display());
    let mut operator = OperatorProcess::spawn(
        &["run", "--store", &store],
        specs.path(),
        &env,
        tmp.path().join("run.log"),
    );
    let start = Instant::now();
    while http_get(&addr, "/healthz").map(|r| r.0) != Some(200) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "run did not serve /healthz within 30 s:\n{}",
            operator.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = bin(&["healthcheck", "--addr", &addr], tmp.path(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("answered 200"), "{out:?}");
    // No flag: the same variable `run` serves on; 0.0.0.0 is checked on loopback.
    let out = bin(&["healthcheck"], tmp.path(), &env);
    assert_eq!(out.code, 0, "{out:?}");

    operator.kill();
    let out = bin(&["healthcheck", "--addr", &addr], tmp.path(), &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("unhealthy"), "{out:?}");
}

#[test]
fn healthcheck_exits_non_zero_when_nothing_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let start = Instant::now();
    let out = bin(&["healthcheck", "--addr", &addr], tmp.path(), &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("cannot connect"), "{out:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// A one-shot server answering every connection with `answer` (or with nothing, held open).
fn server(answer: Option<&'static [u8]>) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            match answer {
                Some(a) => {
                    let _ = s.write_all(a);
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        }
    });
    (addr, handle)
}

#[test]
fn healthcheck_exits_non_zero_on_any_answer_but_200_and_on_silence() {
    let tmp = tempfile::tempdir().unwrap();
    for (answer, expect) in [
        (
            Some(&b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"[..]),
            "answered 503",
        ),
        (Some(&b"SSH-2.0-OpenSSH_9.6\r\n"[..]), "not an HTTP answer"),
        (None, "timed out"),
    ] {
        let (addr, handle) = server(answer);
        let start = Instant::now();
        let out = bin(
            &["healthcheck", "--addr", &addr, "--timeout", "1s"],
            tmp.path(),
            &[],
        );
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains(expect) || (answer.is_none() && out.stderr.contains("os error")),
            "{expect}: {out:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{expect}: too slow"
        );
        handle.join().unwrap();
    }
}

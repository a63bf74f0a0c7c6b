//! Test support: one moto server per test on a free loopback port, SDK configurations pointed at
//! it, and ways to run the operator's command line in-process or as a process.
//!
//! Every moto server sits behind the API-model check ([`api_model`]): [`Moto::endpoint`] and
//! [`Moto::port`] are the checking proxy's, so everything a test sends (the operator, the SDK
//! clients, the AWS CLI, and the fault and bucket proxies chained in front) is checked against
//! the published AWS API models, and dropping the [`Moto`] fails the test when any request
//! broke one.
//!
//! moto comes from the project's virtualenv (`.venv`, created by `scripts/test` with the pinned
//! version in `scripts/requirements-test.txt`), or from `$MOTO_SERVER`. A missing moto is a test
//! failure with instructions, never a skip.

pub mod api_model;
pub mod aws_actions;
pub mod bench;
pub mod bucket_proxy;
pub mod chromium;
pub mod ecs_fixtures;
pub mod fault_proxy;
pub mod fixtures;
pub mod prom;
pub mod promql;
pub mod proxy;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The workspace root (holds `.venv`, `manifests/`, `crds/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The moto server executable: `$MOTO_SERVER`, else `.venv/bin/moto_server`. Panics with
/// instructions when absent.
pub fn moto_server_path() -> PathBuf {
    if let Ok(p) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let p = workspace_root().join(".venv/bin/moto_server");
    assert!(
        p.exists(),
        "moto is not installed: {} is missing. Run `scripts/test` (it creates .venv with the pinned moto[server]) \
         or set MOTO_SERVER to a moto_server executable.",
        p.display()
    );
    p
}

/// A moto server on 127.0.0.1 behind the API-model check, both living as long as this value.
///
/// Invariant: every request reaching this moto through [`Moto::endpoint`] is checked; when the
/// value is dropped with violations recorded, it panics listing them all (unless the thread is
/// already panicking, when it prints them).
pub struct Moto {
    /// Declared first: stops before moto does.
    checker: proxy::Server,
    check: Arc<api_model::ApiCheck>,
    child: Child,
}

/// The region every test uses.
pub const REGION: &str = "eu-west-1";

impl Moto {
    /// Start a server with default settings.
    pub fn start() -> Moto {
        Moto::start_with_env(&[])
    }

    /// Start a server with extra environment (e.g. `MOTO_ECS_SERVICE_RUNNING=2`).
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let exe = moto_server_path();
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&exe);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            for (k, v) in env {
                cmd.env(k, v);
            }
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let check = Arc::new(api_model::ApiCheck::default());
                    let checker = proxy::Server::start(port, check.clone(), "api-model-check");
                    return Moto {
                        checker,
                        check,
                        child,
                    };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last_err = format!("moto_server exited with {status} (port {port} taken?)");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("moto_server did not listen on port {port} within 60 s");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("could not start moto: {last_err}");
    }

    /// The port requests go to: the API-model check's, in front of moto.
    pub fn port(&self) -> u16 {
        self.checker.port()
    }

    /// Requests on their way to moto and not answered yet (a killed client's last request
    /// still reaches moto and is counted until moto answers it).
    pub fn in_flight(&self) -> usize {
        self.checker.in_flight()
    }

    /// Wait until no request is on its way to moto (at most `limit`; panics after it).
    pub fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.in_flight() > 0 {
            assert!(
                Instant::now() < deadline,
                "{} requests still in flight to moto after {limit:?}",
                self.in_flight()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many requests the API-model check has read.
    pub fn api_requests_checked(&self) -> u64 {
        self.check.checked()
    }

    /// The API-model violations recorded so far, forgotten (so dropping this value passes):
    /// for the check's own tests.
    pub fn take_api_violations(&self) -> Vec<api_model::Violation> {
        self.check.take()
    }

    /// The server's process id (the benchmark reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT` of the API-model check in front of moto.
    pub fn endpoint(&self) -> String {
        self.checker.endpoint()
    }

    /// An SDK configuration pointed at this server, with fixed test credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(self.endpoint())
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "tests",
            ))
            .load()
            .await
    }

    /// Environment for a child process so the standard SDK settings reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        self.env_via(&self.endpoint())
    }

    /// [`Moto::env`] with every AWS endpoint at `endpoint` (a proxy in front of this moto).
    pub fn env_via(&self, endpoint: &str) -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT_URL".into(), endpoint.to_string()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
            ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ]
    }

    /// An S3 client for checking what the operator did.
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        ecs_operator::store::s3::client(&self.sdk_config().await)
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let found = self.check.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if found.is_empty() {
            return;
        }
        let report = api_model::report(&found);
        if std::thread::panicking() {
            eprintln!(
                "{} requests broke the AWS API models:\n{report}",
                found.len()
            );
        } else {
            panic!(
                "{} requests broke the AWS API models (botocore service-2.json; AWS would refuse them):\n{report}",
                found.len()
            );
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// What a command printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `ecs-operator ARGS...` in-process with `sdk` as its AWS configuration.
pub async fn cli(args: &[&str], sdk: Option<SdkConfig>) -> Output {
    cli_counted(args, sdk, None).await
}

/// [`cli`], counting the AWS calls of `run` and `diff` in `calls`.
pub async fn cli_counted(
    args: &[&str],
    sdk: Option<SdkConfig>,
    calls: Option<ecs_operator::aws::CallMetrics>,
) -> Output {
    let mut out: Vec<u8> = Vec::new();
    let mut err: Vec<u8> = Vec::new();
    let mut argv = vec!["ecs-operator"];
    argv.extend_from_slice(args);
    let code = ecs_operator::cli::run(
        argv,
        ecs_operator::cli::Context {
            out: &mut out,
            err: &mut err,
            sdk,
            calls,
        },
    )
    .await;
    Output {
        code,
        stdout: String::from_utf8_lossy(&out).into(),
        stderr: String::from_utf8_lossy(&err).into(),
    }
}

/// The operator binary built from this package (cargo builds it before the integration tests,
/// beside the `deps/` folder that holds the test executables).
pub fn bin_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join(format!(
        "ecs-operator-under-test{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        bin.exists(),
        "{} missing: build with `cargo nextest run --workspace`",
        bin.display()
    );
    bin
}

/// Run the operator binary as a process, in `cwd`, with extra environment.
pub fn bin(args: &[&str], cwd: &Path, env: &[(String, String)]) -> Output {
    let out = Command::new(bin_path())
        .args(args)
        .current_dir(cwd)
        .env_remove("AWS_PROFILE")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("the operator binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// `run --store file://DIR --once --timeout TIMEOUT` of the operator binary, in `dir` (the
/// folder is both the store and the working directory), with extra environment.
pub fn run_once(dir: &Path, env: &[(String, String)], timeout: &str) -> Output {
    run_once_with(dir, env, timeout, &[])
}

/// [`run_once`] with `extra` arguments after the others.
pub fn run_once_with(
    dir: &Path,
    env: &[(String, String)],
    timeout: &str,
    extra: &[&str],
) -> Output {
    let store = format!("file://{}", dir.display());
    let mut args = vec!["run", "--store", &store, "--once", "--timeout", timeout];
    args.extend_from_slice(extra);
    bin(&args, dir, env)
}

/// A copy of `manifests/examples` in a fresh temporary folder.
pub fn copy_examples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let src = workspace_root().join("manifests/examples");
    for entry in std::fs::read_dir(&src).expect("manifests/examples exists") {
        let entry = entry.expect("a folder entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy an example");
    }
    dir
}

/// `init` then `sync` the folder `dir` into the store at `url` (both must succeed), and open that
/// store for the test to use.
pub async fn seeded_store(
    sdk: &SdkConfig,
    url: &str,
    dir: &Path,
) -> std::sync::Arc<dyn ecs_operator::store::Store> {
    let init = cli(&["init", "--store", url], Some(sdk.clone())).await;
    assert_eq!(init.code, 0, "{init:?}");
    let sync = cli(
        &["sync", dir.to_str().expect("a UTF-8 path"), "--store", url],
        Some(sdk.clone()),
    )
    .await;
    assert_eq!(sync.code, 0, "{sync:?}");
    let parsed = ecs_operator::store::StoreUrl::parse(url).expect("a valid store URL");
    ecs_operator::store::open(&parsed, sdk)
}

/// Record `Ready` as the status of `key` (`Kind/name`), as the operator would.
pub async fn write_ready_status(store: &dyn ecs_operator::store::Store, key: &str) {
    use ecs_operator::store::{Phase, SpecStatus};
    let key = ecs_operator::spec::SpecKey::parse(key).expect("a Kind/name key");
    store
        .write_status(&SpecStatus {
            phase: Phase::Ready,
            ..SpecStatus::pending(&key)
        })
        .await
        .expect("the status write succeeds");
}

/// `ecs-operator status --store URL -o json` (must succeed), parsed.
pub async fn status_json(url: &str, sdk: &SdkConfig) -> Vec<serde_json::Value> {
    let out = cli(&["status", "--store", url, "-o", "json"], Some(sdk.clone())).await;
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("status -o json is not a JSON array ({e}): {out:?}"))
}

/// `GET path` from a local HTTP server: the status code and body, or `None` when nothing
/// answers (the process is not up yet, or is gone).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

/// A free loopback address for an operator's `--metrics-addr`.
pub fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// An operator process started with `args`; killed when dropped. Its stderr (JSON logs) goes
/// to `log`.
pub struct OperatorProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl OperatorProcess {
    pub fn spawn(args: &[&str], cwd: &Path, env: &[(String, String)], log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(bin_path())
            .args(args)
            .current_dir(cwd)
            .env_remove("AWS_PROFILE")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the operator binary starts");
        OperatorProcess { child, log }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

//! The benchmark (issue 7): for N ServiceSpecs on shared ALBs, converge from empty against moto
//! behind a proxy that enforces AWS's token buckets, then resync once more, and report the wall
//! time against the lower bound the buckets imply, the calls made, the reads of a steady-state
//! resync against the batched minimum, its writes (must be 0), throttles (target 0), and the
//! operator's peak RSS and CPU time. Not a test: run it by hand (`docs/benchmarks.md`).
//!
//! ```sh
//! cargo build --release -p ecs-operator
//! cargo run -p ecs-operator-tests --bin bench -- --sizes 10,100,300 --out /tmp/bench.md
//! ```
//!
//! For each N: a fresh moto (`MOTO_ACM_VALIDATION_WAIT=0`, `MOTO_ECS_SERVICE_RUNNING=2`), the
//! pre-existing network (`fixtures::Network`), the fleet's specs (`bench::Fleet`) in a file store,
//! a [`BucketProxy`] in front of moto, and the operator binary run twice with every AWS endpoint
//! pointed at the proxy: `run --once` from empty (the convergence), then `run --once` again in
//! a new process with a fresh proxy (full buckets, as after an idle resync interval: the
//! steady-state resync). Each run writes its final /metrics (`--metrics-file`); its peak RSS
//! and CPU time come from wait4(2).
//!
//! The markdown report (tables, then per-N details) goes to stdout and `--out`; progress to
//! stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ecs_operator::aws::budget::{default_rates, CallClass, Service};
use ecs_operator_tests::bench::{
    batched_minimum, operator_calls, physical_bound, total, Fleet, Row,
};
use ecs_operator_tests::bucket_proxy::{aws_limits, lower_bound, Bucket, BucketProxy, Counts};
use ecs_operator_tests::fixtures::Network;
use ecs_operator_tests::prom::{label, labelled, metric_sum};
use ecs_operator_tests::proxy::{AwsService, Call};
use ecs_operator_tests::{workspace_root, Moto};

const ZONE: &str = "example.com";

const USAGE: &str = "usage: bench [--sizes 10,100,300] [--operator PATH] [--timeout 90m] \
[--concurrency N] [--keep DIR] [--out FILE]";

struct Args {
    sizes: Vec<usize>,
    operator: Option<PathBuf>,
    timeout: String,
    concurrency: Option<usize>,
    keep: Option<PathBuf>,
    out: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args {
        sizes: vec![10, 100, 300],
        operator: None,
        timeout: "90m".into(),
        concurrency: None,
        keep: None,
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next().unwrap_or_else(|| {
                eprintln!("{flag} needs a value\n{USAGE}");
                std::process::exit(2)
            })
        };
        match flag.as_str() {
            "--sizes" => {
                a.sizes = value()
                    .split(',')
                    .map(|s| {
                        s.trim().parse().unwrap_or_else(|_| {
                            eprintln!("--sizes: `{s}` is not a number\n{USAGE}");
                            std::process::exit(2)
                        })
                    })
                    .collect()
            }
            "--operator" => a.operator = Some(value().into()),
            "--timeout" => a.timeout = value(),
            "--concurrency" => a.concurrency = Some(value().parse().expect("a number")),
            "--keep" => a.keep = Some(value().into()),
            "--out" => a.out = Some(value().into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => {
                eprintln!("unknown argument {other}\n{USAGE}");
                std::process::exit(2)
            }
        }
    }
    a
}

/// The operator binary: `--operator`, else the release build, else the debug one (loudly).
fn operator_binary(args: &Args) -> (PathBuf, &'static str) {
    if let Some(p) = &args.operator {
        // Absolute, since each pass runs the operator in its own working directory.
        let abs = std::fs::canonicalize(p).unwrap_or_else(|e| {
            eprintln!("--operator {}: {e}\n{USAGE}", p.display());
            std::process::exit(2)
        });
        return (abs, "given");
    }
    let root = workspace_root();
    let release = root.join("target/release/ecs-operator");
    if release.exists() {
        return (release, "release");
    }
    let debug = root.join("target/debug/ecs-operator");
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !!! WARNING: {} is missing: measuring the DEBUG build ({}).\n\
         !!! CPU time and RSS are not representative. Run `cargo build --release -p ecs-operator`.\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
        release.display(),
        debug.display()
    );
    assert!(
        debug.exists(),
        "no operator binary: run `cargo build --release -p ecs-operator`"
    );
    (debug, "DEBUG")
}

/// One `run --once` of the operator, measured.
struct Pass {
    wall: f64,
    code: i32,
    peak_rss_kib: i64,
    cpu: f64,
    /// moto's CPU seconds during the pass.
    moto_cpu: f64,
    counts: Counts,
    metrics: String,
    log: PathBuf,
    stdout: String,
}

/// moto's CPU seconds so far (utime + stime from /proc/PID/stat).
fn process_cpu(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start at field 3.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15, i.e. indexes 11 and 12 after the `)`.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz.max(1.0)
}

/// Wait for `pid` with wait4(2): its exit code (-1 after a signal) and resource usage.
fn wait_rusage(pid: i32) -> (i32, libc::rusage) {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; pid is our own child, not yet reaped.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(
            err.raw_os_error(),
            Some(libc::EINTR),
            "wait4({pid}) failed: {err}"
        );
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, ru)
}

fn secs(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

#[allow(clippy::too_many_arguments)]
fn run_pass(
    operator: &Path,
    dir: &Path,
    work: &Path,
    name: &str,
    env: &[(String, String)],
    args: &Args,
    proxy: &BucketProxy,
    moto: &Moto,
    resync_interval: Option<&str>,
) -> Pass {
    let store = format!("file://{}", dir.display());
    let metrics_file = work.join(format!("{name}.prom"));
    let log = work.join(format!("{name}.log"));
    let stdout_file = work.join(format!("{name}.out"));
    let mut cmd = Command::new(operator);
    cmd.args([
        "run",
        "--store",
        &store,
        "--once",
        "--timeout",
        &args.timeout,
    ])
    .arg("--metrics-file")
    .arg(&metrics_file);
    if let Some(c) = args.concurrency {
        cmd.args(["--concurrency", &c.to_string()]);
    }
    if let Some(r) = resync_interval {
        cmd.args(["--resync-interval", r]);
    }
    let moto_before = process_cpu(moto.pid());
    let start = Instant::now();
    // Reaped by wait4 below, which std's `Child::wait` cannot replace (it gives no rusage).
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .current_dir(dir)
        .env_remove("AWS_PROFILE")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_file).expect("a stdout file"))
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", operator.display()));
    let (code, ru) = wait_rusage(child.id() as i32);
    let wall = start.elapsed().as_secs_f64();
    Pass {
        wall,
        code,
        // Linux reports ru_maxrss in KiB.
        peak_rss_kib: ru.ru_maxrss,
        cpu: secs(ru.ru_utime) + secs(ru.ru_stime),
        moto_cpu: process_cpu(moto.pid()) - moto_before,
        counts: proxy.counts(),
        metrics: std::fs::read_to_string(&metrics_file).unwrap_or_default(),
        log,
        stdout: std::fs::read_to_string(&stdout_file).unwrap_or_default(),
    }
}

/// The operator's own buckets a call waits on (mirrors `Budget::buckets_for`), by name.
fn operator_buckets_for(call: &Call) -> Vec<(Service, CallClass)> {
    let service = match call.service {
        AwsService::Ecs => Service::Ecs,
        AwsService::Elbv2 => Service::Elbv2,
        AwsService::Route53 => Service::Route53,
        AwsService::Acm => Service::Acm,
        AwsService::Ecr => Service::Ecr,
        AwsService::ApplicationAutoScaling => Service::ApplicationAutoScaling,
        _ => return Vec::new(),
    };
    let class = match call.operation.as_str() {
        "RegisterTaskDefinition" => CallClass::RegisterTaskDefinition,
        "RequestCertificate" => CallClass::RequestCertificate,
        _ if call.is_mutating() => CallClass::Write,
        _ => CallClass::Read,
    };
    let mut out = vec![(service, class)];
    if matches!(service, Service::Elbv2 | Service::Route53 | Service::Acm)
        && class != CallClass::Read
    {
        out.push((service, CallClass::Read));
    }
    out
}

/// The lower bound under the operator's own (lower) buckets: `max(0, calls - burst) / rate`
/// per bucket, the largest, with its bucket.
fn operator_lower_bound(counts: &Counts) -> Option<(String, f64)> {
    let rates: BTreeMap<_, _> = default_rates().into_iter().collect();
    let mut per: BTreeMap<(Service, CallClass), u64> = BTreeMap::new();
    for (call, n) in &counts.by_call {
        for b in operator_buckets_for(call) {
            *per.entry(b).or_default() += n.forwarded;
        }
    }
    per.iter()
        .filter_map(|(k, n)| {
            let r = rates.get(k)?;
            let wait = (*n as f64 - f64::from(r.burst)).max(0.0) / r.per_second;
            (wait > 0.0).then(|| (format!("{:?} {:?}", k.0, k.1), wait))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// Per-operation calls of a pass, as a markdown table (proxy's forwarded and throttled, and the
/// operator's own count of attempts).
fn calls_table(p: &Pass) -> String {
    let ours = operator_calls(&p.metrics);
    let mut out = String::from(
        "| operation | kind | forwarded | throttled | operator's count | first s | last s |\n|---|---|---|---|---|---|---|\n",
    );
    let at = |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.1}", d.as_secs_f64()));
    for (call, n) in &p.counts.by_call {
        let key = format!("{}/{}", call.service.label(), call.operation);
        let _ = writeln!(
            out,
            "| {key} | {} | {} | {} | {} | {} | {} |",
            if call.is_mutating() { "write" } else { "read" },
            n.forwarded,
            n.throttled,
            ours.get(&key).map_or("-".to_string(), |v| v.to_string()),
            at(n.first),
            at(n.last),
        );
    }
    out
}

/// Per-bucket requests and the wait each implies.
fn buckets_table(c: &Counts) -> String {
    let limits = aws_limits();
    let mut out =
        String::from("| bucket | requests admitted | throttled | rate/s | burst | (n - burst) / rate s |\n|---|---|---|---|---|---|\n");
    for b in Bucket::ALL {
        let n = c.admitted.get(&b).copied().unwrap_or(0);
        let t = c.throttled.get(&b).copied().unwrap_or(0);
        if n == 0 && t == 0 {
            continue;
        }
        let l = limits[&b];
        let _ = writeln!(
            out,
            "| {b} | {n} | {t} | {} | {} | {:.1} |",
            l.rate,
            l.burst,
            (n as f64 - l.burst).max(0.0) / l.rate
        );
    }
    out
}

/// Steady-state reads per operation against the batched minimum.
fn steady_table(p: &Pass, fleet: Fleet) -> String {
    let reads = p.counts.reads();
    let min = batched_minimum(fleet, true);
    let mut ops: Vec<String> = reads.keys().cloned().collect();
    for t in &min {
        if !ops.iter().any(|o| o == t.op) {
            ops.push(t.op.to_string());
        }
    }
    ops.sort();
    let mut out = String::from(
        "| read | made | batched min | ratio | the minimum |\n|---|---|---|---|---|\n",
    );
    for op in ops {
        let made = reads.get(&op).copied().unwrap_or(0);
        let t = min.iter().find(|t| t.op == op);
        let m = t.map_or(0, |t| t.calls);
        let ratio = if m > 0 {
            format!("{:.1}x", made as f64 / m as f64)
        } else if made > 0 {
            "not needed".to_string()
        } else {
            "-".to_string()
        };
        let _ = writeln!(
            out,
            "| {op} | {made} | {m} | {ratio} | {} |",
            t.map_or("", |t| t.why.as_str())
        );
    }
    let _ = writeln!(
        out,
        "| **total** | **{}** | **{}** | **{:.1}x** | |",
        reads.values().sum::<u64>(),
        total(&min),
        reads.values().sum::<u64>() as f64 / total(&min).max(1) as f64
    );
    out
}

fn reconciles(metrics: &str) -> String {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for (labels, v) in labelled(metrics, "ecs_operator_reconciles_total") {
        if let (Some(kind), Some(result)) = (label(labels, "kind"), label(labels, "result")) {
            *by.entry(format!("{kind} {result}")).or_default() += v;
        }
    }
    let all: f64 = by.values().sum();
    let backoffs = metric_sum(metrics, "ecs_operator_backoffs_total", &[]);
    let parts: Vec<String> = by.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!(
        "{all} reconciles ({}), {backoffs} backoffs",
        parts.join(", ")
    )
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

struct SizeResult {
    row: Row,
    details: String,
}

async fn run_size(n: usize, operator: &Path, args: &Args) -> SizeResult {
    let fleet = Fleet::new(n);
    eprintln!("== N = {n}: {} ALB(s); starting moto", fleet.albs());
    let moto = Moto::start_with_env(&[
        ("MOTO_ACM_VALIDATION_WAIT", "0"),
        ("MOTO_ECS_SERVICE_RUNNING", "2"),
    ]);
    let net = Network::create(&moto, ZONE).await;
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let work = match &args.keep {
        Some(k) => {
            let d = k.join(format!("n{n}"));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).expect("the --keep folder");
            d
        }
        None => tmp.path().to_path_buf(),
    };
    let dir = work.join("specs");
    std::fs::create_dir_all(&dir).expect("a specs folder");
    for (file, text) in fleet.specs(&net) {
        std::fs::write(dir.join(file), text).expect("write a spec");
    }
    eprintln!("   converging from empty ...");
    let proxy = BucketProxy::start(moto.port());
    let converge = run_pass(
        operator,
        &dir,
        &work,
        "converge",
        &moto.env_via(&proxy.endpoint()),
        args,
        &proxy,
        &moto,
        // The default resync interval (5 min): specs Ready early are resynced while the rest
        // converge, as in production.
        None,
    );
    drop(proxy);
    eprintln!(
        "   converged: exit {} in {:.1} s, {} calls, {} throttled",
        converge.code,
        converge.wall,
        converge.counts.forwarded(),
        converge.counts.throttled_total()
    );
    if converge.code != 0 {
        eprintln!(
            "   !!! the convergence did not end with every spec Ready (exit {}); log tail:\n{}\n{}",
            converge.code,
            converge.stdout,
            tail(&converge.log, 20)
        );
    }

    eprintln!("   steady-state resync ...");
    // A fresh proxy: AWS's buckets are full again after an idle resync interval.
    let proxy = BucketProxy::start(moto.port());
    let steady = run_pass(
        operator,
        &dir,
        &work,
        "resync",
        &moto.env_via(&proxy.endpoint()),
        args,
        &proxy,
        &moto,
        // Exactly one reconcile of every spec: no periodic resync may start within the pass,
        // which at N=300 lasts longer than the default 5 minutes.
        Some("24h"),
    );
    drop(proxy);
    eprintln!(
        "   resync: exit {} in {:.1} s, {} reads, {} writes, {} throttled",
        steady.code,
        steady.wall,
        steady.counts.reads().values().sum::<u64>(),
        steady.counts.mutating().values().sum::<u64>(),
        steady.counts.throttled_total()
    );
    if steady.code != 0 {
        eprintln!(
            "   !!! the resync did not end with every spec Ready (exit {}); log tail:\n{}\n{}",
            steady.code,
            steady.stdout,
            tail(&steady.log, 20)
        );
    }

    let limits = aws_limits();
    let (lb_bucket, lb_secs) = lower_bound(&converge.counts.admitted, &limits)
        .map(|(b, s)| (b.name().to_string(), s))
        .unwrap_or_default();
    let ours = operator_lower_bound(&converge.counts);
    let (physical_bucket, physical_secs) = physical_bound(fleet, &limits)
        .map(|(b, s)| (b.name().to_string(), s))
        .unwrap_or_default();
    let throttles_operator = metric_sum(&converge.metrics, "ecs_operator_aws_throttles_total", &[])
        + metric_sum(&steady.metrics, "ecs_operator_aws_throttles_total", &[]);
    let row = Row {
        services: n,
        albs: fleet.albs(),
        converge_secs: converge.wall,
        physical_bound_secs: physical_secs,
        physical_bound_bucket: physical_bucket,
        lower_bound_secs: lb_secs,
        lower_bound_bucket: lb_bucket,
        converge_calls: converge.counts.forwarded(),
        throttles_proxy: converge.counts.throttled_total() + steady.counts.throttled_total(),
        throttles_operator: throttles_operator as u64,
        steady_reads: steady.counts.reads().values().sum(),
        batched_min: total(&batched_minimum(fleet, true)),
        steady_writes: steady.counts.mutating().values().sum(),
        peak_rss_mib: converge.peak_rss_kib as f64 / 1024.0,
        steady_rss_mib: steady.peak_rss_kib as f64 / 1024.0,
        cpu_secs: converge.cpu,
    };

    let mut d = String::new();
    let _ = writeln!(d, "### N = {n} ({} ALB(s))\n", fleet.albs());
    let _ = writeln!(
        d,
        "- convergence: exit {}, {:.1} s wall, {} calls forwarded, {} throttled; operator {:.1} CPU s, peak RSS {:.1} MiB; moto {:.1} CPU s; {}",
        converge.code,
        converge.wall,
        converge.counts.forwarded(),
        converge.counts.throttled_total(),
        converge.cpu,
        converge.peak_rss_kib as f64 / 1024.0,
        converge.moto_cpu,
        reconciles(&converge.metrics)
    );
    let _ = writeln!(
        d,
        "- lower bound under AWS's buckets: {:.1} s ({}); under the operator's own buckets: {}",
        row.lower_bound_secs,
        if row.lower_bound_bucket.is_empty() {
            "no bucket had to wait"
        } else {
            &row.lower_bound_bucket
        },
        ours.map_or("0 s".to_string(), |(b, s)| format!("{s:.1} s ({b})"))
    );
    let _ = writeln!(
        d,
        "- steady-state resync: exit {}, {:.1} s wall, {} reads (batched minimum {}), {} writes, {} throttled; operator {:.1} CPU s, peak RSS {:.1} MiB; moto {:.1} CPU s; {}",
        steady.code,
        steady.wall,
        row.steady_reads,
        row.batched_min,
        row.steady_writes,
        steady.counts.throttled_total(),
        steady.cpu,
        steady.peak_rss_kib as f64 / 1024.0,
        steady.moto_cpu,
        reconciles(&steady.metrics)
    );
    let lb_resync = lower_bound(&steady.counts.admitted, &limits);
    let _ = writeln!(
        d,
        "- steady-state resync lower bound under AWS's buckets: {}",
        lb_resync.map_or("0 s".to_string(), |(b, s)| format!("{s:.1} s ({b})"))
    );
    let muts = steady.counts.mutating();
    if !muts.is_empty() {
        let _ = writeln!(
            d,
            "- **mutating calls in the steady-state resync** (must be none): {muts:?}"
        );
    }
    let _ = writeln!(
        d,
        "\nConvergence, by bucket:\n\n{}",
        buckets_table(&converge.counts)
    );
    let _ = writeln!(
        d,
        "Convergence, by operation:\n\n{}",
        calls_table(&converge)
    );
    let _ = writeln!(
        d,
        "Steady-state resync, reads against the batched minimum:\n\n{}",
        steady_table(&steady, fleet)
    );
    eprint!("{d}");
    eprintln!("{}\n{}", Row::HEADER, row.markdown());
    SizeResult { row, details: d }
}

/// The checked-out commit, `+dirty` when the tree has changes.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(workspace_root())
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    format!(
        "{}{}",
        if head.is_empty() { "unknown" } else { &head },
        if dirty { "+dirty" } else { "" }
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = parse_args();
    let (operator, build) = operator_binary(&args);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let started = Instant::now();
    let mut results = Vec::new();
    for &n in &args.sizes {
        results.push(run_size(n, &operator, &args).await);
    }
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Operator: `{}` ({build} build) at commit {}; {cores} cores; sizes {:?}; total {:.0} s.\n",
        operator.display(),
        git_commit(),
        args.sizes,
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(report, "{}", Row::HEADER);
    for r in &results {
        let _ = writeln!(report, "{}", r.row.markdown());
    }
    let _ = writeln!(report);
    for r in &results {
        let _ = writeln!(report, "{}", r.details);
    }
    print!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
    }
    // Let the proxies' threads and moto go (drops ran already); make sure nothing lingers.
    std::thread::sleep(Duration::from_millis(10));
}

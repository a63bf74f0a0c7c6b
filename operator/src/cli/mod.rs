//! The `ecs-operator` command line (README "Commands"): one file per subcommand.
//!
//! Exit codes: 0 ok, 1 validation or convergence failure, 2 usage or environment error.
//! [`run`] takes its output streams and, optionally, an AWS configuration, so tests can drive
//! every command in-process; the binary calls [`main`].

pub mod confirm;
pub mod diff;
pub mod healthcheck;
pub mod init;
pub mod output;
pub mod render;
pub mod rollout;
pub mod run;
pub mod schema;
pub mod status;
pub mod sync;
pub mod validate;
pub mod verify;

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};

pub use output::OutputFormat;

/// Threads for blocking work (file-store reads and writes, `tokio::fs`, the HTTP clients' name
/// lookups). Each is short, so a few threads keep up; tokio's default of 512 let a first
/// convergence of 1000 specs start 83 of them, and each thread's stack and malloc arena stayed
/// in the process's memory (the benchmark's RSS at N = 1000, docs/benchmarks.md).
pub const MAX_BLOCKING_THREADS: usize = 8;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: validation or convergence failure.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: usage or environment error (bad flags, unreachable store, missing region...).
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(name = "ecs-operator", version, about = "A reconciling operator for Amazon ECS", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of `run`'s many flags costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store (folder, bucket, or table with its stream) and the lease table when absent.
    Init(init::Args),
    /// The long-running controller: drive AWS toward the store's specs and keep it there.
    Run(run::Args),
    /// Let the operator delete what specs that left the store owned, after the mass-deletion guard held them.
    ConfirmDeletions(confirm::Args),
    /// Validate spec files and folders offline; print every error; exit 1 on any.
    Validate(validate::Args),
    /// Validate every spec under DIR, then write the changed ones to the store.
    Sync(sync::Args),
    /// Read-only plan: for each spec, the AWS changes a reconcile would make now.
    Diff(diff::Args),
    /// Show each spec's phase, conditions, resources and last error.
    Status(status::Args),
    /// Read-only pre-flight: what in AWS would make each spec fail to deploy; exit 1 on any error.
    Verify(verify::Args),
    /// A ServiceSpec's ECS deployments: status, history, stop (roll back), continue a paused hook.
    Rollout(rollout::Args),
    /// Print the JSON Schemas of the spec kinds (checked in under crds/).
    Schema(schema::Args),
    /// Render a chart's templates with its values to spec documents on stdout, validated.
    Render(render::Args),
    /// Container health check: GET /healthz from a running `run` on loopback; exit 0 on 200.
    Healthcheck(healthcheck::Args),
}

/// Where a command writes, and the AWS configuration to use instead of the standard one.
pub struct Context<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    /// `None`: load the standard SDK settings (environment, profile, ECS task role).
    pub sdk: Option<aws_config::SdkConfig>,
    /// Where `run`, `diff` and `verify` count their AWS calls (`None`: counters of their own).
    /// Tests and benchmarks pass one to read the counts after an in-process run.
    pub calls: Option<crate::aws::CallMetrics>,
}

impl Context<'_> {
    /// The AWS configuration: the injected one, else the standard chain. A missing region is an
    /// environment error.
    pub async fn sdk(&mut self) -> Result<aws_config::SdkConfig, CliError> {
        if let Some(sdk) = &self.sdk {
            return Ok(sdk.clone());
        }
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        if sdk.region().is_none() {
            return Err(CliError::Environment(
                "no AWS region: set AWS_REGION (or a profile's region)".to_string(),
            ));
        }
        self.sdk = Some(sdk.clone());
        Ok(sdk)
    }
}

/// Errors that end a command; each maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input found by validation: exit 1. The details were already printed.
    #[error("{0}")]
    Failed(String),
    /// Usage or environment problem: exit 2.
    #[error("{0}")]
    Environment(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A chart that cannot be rendered: exit 2.
    #[error(transparent)]
    Chart(#[from] crate::chart::ChartError),
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Failed(_) => EXIT_FAILED,
            _ => EXIT_USAGE,
        }
    }
}

/// Parse `args` (program name first) and run the command. Returns the exit code.
pub async fn run<I, T>(args: I, mut ctx: Context<'_>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
            let text = e.render().to_string();
            let _ = if e.use_stderr() {
                ctx.err.write_all(text.as_bytes())
            } else {
                ctx.out.write_all(text.as_bytes())
            };
            return code;
        }
    };
    let result = match cli.command {
        Command::Init(a) => init::run(a, &mut ctx).await,
        Command::Run(a) => run::run(a, &mut ctx).await,
        Command::ConfirmDeletions(a) => confirm::run(a, &mut ctx).await,
        Command::Validate(a) => validate::run(a, &mut ctx).await,
        Command::Sync(a) => sync::run(a, &mut ctx).await,
        Command::Diff(a) => diff::run(a, &mut ctx).await,
        Command::Status(a) => status::run(a, &mut ctx).await,
        Command::Verify(a) => verify::run(a, &mut ctx).await,
        Command::Rollout(a) => rollout::run(a, &mut ctx).await,
        Command::Schema(a) => schema::run(a, &mut ctx).await,
        Command::Render(a) => render::run(a, &mut ctx).await,
        Command::Healthcheck(a) => healthcheck::run(a, &mut ctx).await,
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(e) => {
            let _ = writeln!(ctx.err, "error: {e}");
            e.exit_code()
        }
    }
}

/// The binary's entry point: logs to stderr, runs the command, exits.
///
/// `run` logs JSON lines at `info` (one span per reconcile carries the spec key); the other
/// commands log plain text at `warn`. `RUST_LOG` overrides the level, `ECS_OPERATOR_LOG_FORMAT`
/// (`json` or `text`) the format.
pub fn main() -> ! {
    let is_run = std::env::args_os().nth(1).is_some_and(|a| a == "run");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if is_run {
            "info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_s3=warn"
        } else {
            "warn"
        })
    });
    let json = match std::env::var("ECS_OPERATOR_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => is_run,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(EXIT_USAGE);
        }
    };
    let code = runtime.block_on(async {
        let mut out = std::io::stdout();
        let mut err = std::io::stderr();
        run(
            std::env::args_os(),
            Context {
                out: &mut out,
                err: &mut err,
                sdk: None,
                calls: None,
            },
        )
        .await
    });
    std::process::exit(code)
}

/// Parse a store URL, mapping a bad one to a usage error.
pub(crate) fn parse_store(url: &str) -> Result<crate::store::StoreUrl, CliError> {
    crate::store::StoreUrl::parse(url).map_err(|e| CliError::Environment(e.to_string()))
}

/// Open a parsed store URL with AWS clients that count their calls.
pub(crate) fn open_store_with(
    url: &crate::store::StoreUrl,
    sdk: &crate::aws::Sdk,
) -> std::sync::Arc<dyn crate::store::Store> {
    crate::store::open_with(url, sdk)
}

/// Open the store a URL names, loading AWS settings only when it needs them.
pub(crate) async fn open_store(
    url: &str,
    ctx: &mut Context<'_>,
) -> Result<std::sync::Arc<dyn crate::store::Store>, CliError> {
    let parsed = parse_store(url)?;
    let sdk = if crate::store::needs_aws(&parsed) {
        ctx.sdk().await?
    } else {
        aws_config::SdkConfig::builder().build()
    };
    Ok(crate::store::open(&parsed, &sdk))
}

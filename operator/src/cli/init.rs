//! `ecs-operator init --store URL [--lease-table NAME] [--events [--instance I]]`: create what
//! is missing; safe to rerun.

use super::{open_store, CliError, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// DynamoDB table for leader election, created when absent.
    #[arg(long)]
    pub lease_table: Option<String>,
    /// Also create the SQS queue `<instance>-events` and the EventBridge rules that fill it
    /// (ECS deployment, service and stopped-task events; CloudTrail write calls to the managed
    /// services; with an S3 store, the bucket's object events under the prefix, after turning
    /// on its EventBridge notifications); prints the queue URL for `run --events-queue`.
    #[arg(long)]
    pub events: bool,
    /// The operator instance the queue and rules belong to (their managed-by tag and names).
    #[arg(long, default_value = "ecs-operator", env = "ECS_OPERATOR_INSTANCE")]
    pub instance: String,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    // Refuse a bad instance before creating anything.
    if args.events {
        crate::events::setup::names(&args.instance)
            .map_err(|e| CliError::Environment(e.to_string()))?;
    }
    let store = open_store(&args.store, ctx).await?;
    let report = store.init().await?;
    for c in &report.created {
        writeln!(ctx.out, "created {c}")?;
    }
    for e in &report.existing {
        writeln!(ctx.out, "exists  {e}")?;
    }
    if let Some(table) = &args.lease_table {
        let sdk = ctx.sdk().await?;
        let created = crate::store::dynamodb::ensure_lease_table(&sdk, table).await?;
        writeln!(
            ctx.out,
            "{} dynamodb://{table} (lease table)",
            if created { "created" } else { "exists " }
        )?;
    }
    if args.events {
        let calls = ctx.calls.clone().unwrap_or_default();
        let sdk = crate::aws::Sdk::with_calls(ctx.sdk().await?, calls);
        let s3 = sdk.s3();
        let store = match super::parse_store(&args.store)? {
            crate::store::StoreUrl::S3 { bucket, prefix } => Some((bucket, prefix)),
            _ => None,
        };
        let s3_store = store
            .as_ref()
            .map(|(bucket, prefix)| crate::events::setup::S3Store {
                client: &s3,
                bucket,
                prefix,
            });
        let report =
            crate::events::setup::ensure(&sdk.sqs(), &sdk.eventbridge(), s3_store, &args.instance)
                .await
                .map_err(|e| CliError::Environment(format!("init --events: {e}")))?;
        for line in &report.lines {
            writeln!(ctx.out, "{line}")?;
        }
        writeln!(ctx.out, "events queue: {}", report.queue_url)?;
    }
    Ok(())
}

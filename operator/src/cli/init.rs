//! `ecs-operator init --store URL [--lease-table NAME]`: create what is missing; safe to rerun.

use super::{open_store, CliError, Context};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// DynamoDB table for leader election, created when absent.
    #[arg(long)]
    pub lease_table: Option<String>,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
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
    Ok(())
}

//! `ecs-operator confirm-deletions --store URL`: let the operator delete what the specs that left
//! the store owned, after the mass-deletion guard held them. It marks each held status record
//! with the `DeletionConfirmed` condition; the running operator sees it at its next look.

use clap::Args as ClapArgs;

use super::{open_store, CliError, Context};
use crate::controller::{DELETION_CONFIRMED, DELETION_HELD};
use crate::store::status::Condition;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Where the specs live: file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE.
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// Only list what is held.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let store = open_store(&args.store, ctx).await?;
    let listing = store.list().await?;
    let present: std::collections::BTreeSet<_> = crate::controller::Desired::from_listing(&listing)
        .entries
        .into_keys()
        .collect();
    let mut confirmed = 0;
    for mut status in store.list_status().await? {
        let key = status.key();
        let held = status
            .conditions
            .iter()
            .any(|c| c.condition_type == DELETION_HELD && c.status == "True");
        if !held || present.contains(&key) {
            continue;
        }
        if args.dry_run {
            writeln!(ctx.out, "held: {key}")?;
            continue;
        }
        status
            .conditions
            .retain(|c| c.condition_type != DELETION_CONFIRMED);
        status.conditions.push(Condition {
            condition_type: DELETION_CONFIRMED.to_string(),
            status: "True".to_string(),
            reason: "Confirmed".to_string(),
            message: "a person ran `ecs-operator confirm-deletions`".to_string(),
            last_transition_time: crate::store::now_rfc3339(),
        });
        store.write_status(&status).await?;
        writeln!(ctx.out, "confirmed: {key}")?;
        confirmed += 1;
    }
    if !args.dry_run {
        writeln!(ctx.out, "{confirmed} deletion(s) confirmed")?;
    }
    Ok(())
}

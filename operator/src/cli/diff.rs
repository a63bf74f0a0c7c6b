//! `ecs-operator diff --store URL`: the read-only plan. For each spec of the store, the AWS
//! changes a reconcile would make now, in plain words:
//!
//! ```text
//! ClusterSpec/prod: 1 change
//!   ~ load balancer prod-public listener :80 default action: redirect 302 -> 301
//! ServiceSpec/web: in sync
//! ```
//!
//! Never writes to AWS or to the store. Exits 0 whatever the drift (a spec that cannot be
//! planned is reported on its line); 2 when the store cannot be read.

use std::sync::Arc;

use super::{open_store, CliError, Context};
use crate::controller::Desired;
use crate::reconcile::ReconcileInput;
use crate::resources::{Aws, AwsReconciler};
use crate::spec::Spec;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// The value of the managed-by tag (as given to `run`).
    #[arg(long, default_value = "ecs-operator", env = "ECS_OPERATOR_INSTANCE")]
    pub instance: String,
}

fn paused(spec: &Spec) -> bool {
    match spec {
        Spec::Cluster(c) => c.spec.paused,
        Spec::Service(s) => s.spec.paused,
    }
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let store = open_store(&args.store, ctx).await?;
    let desired = Desired::from_listing(&store.list().await?);
    let calls = ctx.calls.clone().unwrap_or_default();
    let sdk = crate::aws::Sdk::with_calls(ctx.sdk().await?, calls);
    let aws = Aws::new(&sdk, &args.instance, crate::aws::Budget::default());
    let reconciler = AwsReconciler::new(aws);
    let input = ReconcileInput::fresh(Arc::new(desired.valid()));
    for (key, entry) in &desired.entries {
        let spec = match &entry.spec {
            Err(_) => {
                writeln!(
                    ctx.out,
                    "{key}: invalid (not planned; see `ecs-operator status`)"
                )?;
                continue;
            }
            Ok(spec) => spec,
        };
        if paused(spec) {
            writeln!(ctx.out, "{key}: paused (not read)")?;
            continue;
        }
        // Specs in another account or region say where.
        let place = reconciler.placement_shown(spec, &input.specs);
        let label =
            if place.account.is_none() && place.region == Some(reconciler.aws.region.clone()) {
                key.to_string()
            } else {
                format!("{key} ({place})")
            };
        let key = label;
        match reconciler.diff(spec, &input).await {
            Ok(changes) if changes.is_empty() => writeln!(ctx.out, "{key}: in sync")?,
            Ok(changes) => {
                let n = changes.len();
                writeln!(
                    ctx.out,
                    "{key}: {n} change{}",
                    if n == 1 { "" } else { "s" }
                )?;
                for c in changes {
                    writeln!(ctx.out, "  {c}")?;
                }
            }
            Err(e) => writeln!(ctx.out, "{key}: cannot plan: {e}")?,
        }
    }
    Ok(())
}

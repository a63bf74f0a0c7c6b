//! `ecs-operator status --store URL [-o table|json|yaml]`.
//!
//! Joins the store's specs with their status records: `generation` is computed from the spec as
//! it is now; a spec that is invalid now shows `Invalid` whatever its record says; a spec with no
//! record yet shows `Pending`; records of specs that left the store are shown as they are.

use std::collections::BTreeMap;

use super::output::{table, to_yaml, OutputFormat};
use super::{open_store, CliError, Context};
use crate::spec::SpecKey;
use crate::store::{Phase, SpecStatus};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// Every spec's status as `status` shows it, sorted by kind and name.
pub async fn collect(
    store: &dyn crate::store::Store,
) -> Result<(Vec<SpecStatus>, Vec<String>), CliError> {
    let listing = store.list().await?;
    let files = listing.validated_files();
    let mut records: BTreeMap<SpecKey, SpecStatus> = store
        .list_status()
        .await?
        .into_iter()
        .map(|s| (s.key(), s))
        .collect();
    let mut out: BTreeMap<SpecKey, SpecStatus> = BTreeMap::new();
    let mut unnamed = Vec::new();
    for f in &files {
        for e in &f.errors {
            unnamed.push(e.to_string());
        }
        for d in &f.documents {
            let Some(key) = d.key() else {
                unnamed.extend(d.diagnostics().iter().map(|x| x.to_string()));
                continue;
            };
            let mut status = records
                .remove(&key)
                .unwrap_or_else(|| SpecStatus::pending(&key));
            status.generation = Some(d.generation());
            if let Err(diags) = &d.result {
                status.phase = Phase::Invalid;
                status.last_error = Some(
                    diags
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            out.insert(key, status);
        }
    }
    for (key, mut status) in records {
        status.generation = None;
        out.insert(key, status);
    }
    Ok((out.into_values().collect(), unnamed))
}

fn short(digest: &Option<String>) -> String {
    digest
        .as_deref()
        .map(|d| d.chars().take(12).collect())
        .unwrap_or_else(|| "-".into())
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let store = open_store(&args.store, ctx).await?;
    let (statuses, unnamed) = collect(store.as_ref()).await?;
    for u in &unnamed {
        writeln!(ctx.err, "warning: {u}")?;
    }
    let value = serde_json::to_value(&statuses).expect("status serialises");
    match args.output {
        OutputFormat::Json => writeln!(
            ctx.out,
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON")
        )?,
        OutputFormat::Yaml => write!(ctx.out, "{}", to_yaml(&value))?,
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = statuses
                .iter()
                .map(|s| {
                    let observed = match (&s.observed_generation, &s.generation) {
                        (None, _) => "-".to_string(),
                        (Some(o), Some(g)) if o == g => "current".to_string(),
                        (Some(_), Some(_)) => "stale".to_string(),
                        (Some(_), None) => "removed".to_string(),
                    };
                    vec![
                        s.kind.to_string(),
                        s.name.clone(),
                        s.phase.to_string(),
                        s.placement
                            .as_ref()
                            .map_or_else(|| "-".to_string(), |p| p.scope_key()),
                        short(&s.generation),
                        observed,
                        s.summary(),
                    ]
                })
                .collect();
            write!(
                ctx.out,
                "{}",
                table(
                    &[
                        "KIND",
                        "NAME",
                        "PHASE",
                        "ACCOUNT/REGION",
                        "GENERATION",
                        "OBSERVED",
                        "MESSAGE"
                    ],
                    &rows
                )
            )?;
        }
    }
    Ok(())
}

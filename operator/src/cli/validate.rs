//! `ecs-operator validate PATH...`: offline validation, every error of every file at once.

use std::path::PathBuf;

use super::{CliError, Context};
use crate::spec::{load_paths, Diagnostic};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Spec files, or folders whose `*.yaml|*.yml|*.json` files are read recursively.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print the errors as a JSON array instead of lines.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let files = tokio::task::spawn_blocking(move || load_paths(&args.paths))
        .await
        .map_err(|e| CliError::Environment(format!("validation task failed: {e}")))?;
    let diagnostics: Vec<Diagnostic> = files.iter().flat_map(|f| f.all_diagnostics()).collect();
    let documents: usize = files.iter().map(|f| f.documents.len()).sum();
    if args.json {
        writeln!(
            ctx.out,
            "{}",
            serde_json::to_string_pretty(&diagnostics).expect("diagnostics serialise")
        )?;
    } else {
        for d in &diagnostics {
            writeln!(ctx.err, "{d}")?;
        }
    }
    if files.is_empty() {
        return Err(CliError::Failed(
            "no spec files found (looked for *.yaml, *.yml, *.json)".into(),
        ));
    }
    if diagnostics.is_empty() {
        writeln!(
            ctx.err,
            "validate: {documents} documents in {} files are valid",
            files.len()
        )?;
        Ok(())
    } else {
        let bad_files = files
            .iter()
            .filter(|f| !f.all_diagnostics().is_empty())
            .count();
        Err(CliError::Failed(format!(
            "{} errors in {bad_files} of {} files",
            diagnostics.len(),
            files.len()
        )))
    }
}

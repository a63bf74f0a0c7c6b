//! `ecs-operator sync DIR --store URL [--prune] [--dry-run]`: the CI step.
//!
//! Invariants: nothing is written unless every spec under DIR is valid; only sources whose
//! content differs are written (a second sync with no change writes nothing); `--prune` deletes
//! only store specs absent from DIR, and refuses to empty the store from an empty folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{open_store, CliError, Context};
use crate::spec::{canonical_json, load, load_paths};
use crate::store::{now_rfc3339, Layout, Store, SyncRecord};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder of spec files (read recursively; hidden folders skipped).
    pub dir: PathBuf,
    /// file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// Delete store specs that are not in DIR.
    #[arg(long)]
    pub prune: bool,
    /// Print what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --prune, allow a DIR without any spec to empty the store.
    #[arg(long)]
    pub allow_empty: bool,
}

/// One planned write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
}

/// What a sync did (or, with --dry-run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub actions: Vec<(Action, String)>,
    pub unchanged: usize,
}

impl Report {
    pub fn written(&self) -> usize {
        self.actions
            .iter()
            .filter(|(a, _)| *a != Action::Delete)
            .count()
    }
    pub fn deleted(&self) -> usize {
        self.actions
            .iter()
            .filter(|(a, _)| *a == Action::Delete)
            .count()
    }
}

/// The sources DIR maps to in a store of `layout`: key -> (bytes, origin path).
fn desired_sources(
    dir: &Path,
    layout: Layout,
    files: &[crate::spec::ParsedFile],
) -> Result<BTreeMap<String, (Vec<u8>, String)>, CliError> {
    let mut out = BTreeMap::new();
    match layout {
        Layout::Files => {
            let paths = load::spec_files_under(dir)
                .map_err(|e| CliError::Environment(format!("{}: {e}", dir.display())))?;
            for path in paths {
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                let bytes = std::fs::read(&path)
                    .map_err(|e| CliError::Environment(format!("{}: {e}", path.display())))?;
                out.insert(key, (bytes, path.display().to_string()));
            }
        }
        Layout::Documents => {
            for f in files {
                for d in &f.documents {
                    if let Some(key) = d.key() {
                        let mut body = canonical_json(&d.raw).into_bytes();
                        body.push(b'\n');
                        out.insert(key.to_string(), (body, d.origin.to_string()));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The commit of the git checkout holding `dir`, and whether it has uncommitted changes there.
fn git_commit(dir: &Path) -> (Option<String>, bool) {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "HEAD"]) {
        Some(commit) if !commit.is_empty() => {
            let dirty = run(&["status", "--porcelain", "--", "."])
                .map(|s| !s.is_empty())
                .unwrap_or(false);
            (Some(commit), dirty)
        }
        _ => (
            std::env::var("GITHUB_SHA").ok().filter(|s| !s.is_empty()),
            false,
        ),
    }
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    if !args.dir.is_dir() {
        return Err(CliError::Environment(format!(
            "{} is not a folder",
            args.dir.display()
        )));
    }
    let dir = args.dir.clone();
    let files = tokio::task::spawn_blocking(move || load_paths(&[dir]))
        .await
        .map_err(|e| CliError::Environment(format!("validation task failed: {e}")))?;
    let diagnostics: Vec<_> = files.iter().flat_map(|f| f.all_diagnostics()).collect();
    if !diagnostics.is_empty() {
        for d in &diagnostics {
            writeln!(ctx.err, "{d}")?;
        }
        return Err(CliError::Failed(format!(
            "{} errors; nothing written",
            diagnostics.len()
        )));
    }
    let store = open_store(&args.store, ctx).await?;
    let report = sync(store.as_ref(), &args, &files, ctx).await?;
    let verb = if args.dry_run { "would write" } else { "wrote" };
    writeln!(
        ctx.out,
        "sync: {verb} {}, {} {}, {} unchanged ({})",
        report.written(),
        if args.dry_run {
            "would delete"
        } else {
            "deleted"
        },
        report.deleted(),
        report.unchanged,
        store.url()
    )?;
    Ok(())
}

async fn sync(
    store: &dyn Store,
    args: &Args,
    files: &[crate::spec::ParsedFile],
    ctx: &mut Context<'_>,
) -> Result<Report, CliError> {
    let desired = desired_sources(&args.dir, store.layout(), files)?;
    if args.prune && desired.is_empty() && !args.allow_empty {
        return Err(CliError::Failed(format!(
            "{} holds no spec; refusing to prune every spec from {} (pass --allow-empty to empty it)",
            args.dir.display(),
            store.url()
        )));
    }
    let current = store.source_fingerprints().await?;
    let mut report = Report::default();
    for (key, (bytes, _)) in &desired {
        match current.get(key) {
            None => report.actions.push((Action::Create, key.clone())),
            Some(fp) if !fp.matches(bytes) => report.actions.push((Action::Update, key.clone())),
            Some(_) => report.unchanged += 1,
        }
    }
    if args.prune {
        for key in current.keys().filter(|k| !desired.contains_key(*k)) {
            report.actions.push((Action::Delete, key.clone()));
        }
    }
    for (action, key) in &report.actions {
        let sign = match action {
            Action::Create => '+',
            Action::Update => '~',
            Action::Delete => '-',
        };
        writeln!(ctx.out, "{sign} {key}")?;
        if args.dry_run {
            continue;
        }
        match action {
            Action::Delete => store.delete_source(key).await?,
            _ => {
                let (bytes, origin) = &desired[key];
                store.put_source(key, bytes, origin).await?;
            }
        }
    }
    if !args.dry_run && !report.actions.is_empty() {
        let (commit, dirty) = git_commit(&args.dir);
        store
            .write_sync_record(&SyncRecord {
                commit,
                dirty,
                synced_at: now_rfc3339(),
                written: report.written(),
                deleted: report.deleted(),
                unchanged: report.unchanged,
            })
            .await?;
    }
    Ok(report)
}

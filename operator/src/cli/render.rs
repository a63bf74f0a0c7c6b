//! `ecs-operator render CHART [-f values.yaml]... [--set path=value]... [--set-string path=value]...`:
//! a chart's templates rendered to spec documents on stdout, checked as `ecs-operator validate`
//! checks files.
//!
//! Exit codes:
//! - 0: every template rendered and every document is a valid spec; the documents are on stdout;
//! - 1: a rendered document is invalid (or the chart rendered none); diagnostics on stderr name
//!   the template (line:column count in that template's rendered text) and stdout stays empty;
//! - 2: the chart cannot be rendered: a missing chart, `Chart.yaml` or values file, bad YAML in
//!   one, a bad `--set`, a template syntax error, or a value a template uses that is not set
//!   (undefined is strict, and a template that cannot evaluate is a broken template, not an
//!   invalid spec). The message names the file and, for templates, the line.

use std::path::PathBuf;

use super::{CliError, Context};
use crate::chart;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The chart folder: Chart.yaml, values.yaml, templates/*.yaml.
    pub chart: PathBuf,
    /// A values file merged over the chart's values.yaml; repeat it, later files win.
    #[arg(short = 'f', long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// One value, `path.to.key=value`, merged after every values file; repeat it, later ones win.
    /// The value is read as a YAML scalar (`3`, `true`, `null`, text) or, when it starts with
    /// `[`, `{` or a quote, as YAML flow (`[subnet-a, subnet-b]`, `"0123"`).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// Like --set, but the value is always text (image tags such as `0123` or `1e10`); merged
    /// after every --set.
    #[arg(long = "set-string", value_name = "PATH=VALUE")]
    pub set_string: Vec<String>,
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let mut overlays = Vec::new();
    for s in &args.set {
        overlays.push(chart::parse_set(s)?);
    }
    for s in &args.set_string {
        overlays.push(chart::parse_set_string(s)?);
    }
    let rendered = tokio::task::spawn_blocking(move || {
        chart::render_chart(&args.chart, &args.values, overlays)
    })
    .await
    .map_err(|e| CliError::Environment(format!("render task failed: {e}")))??;
    let name = format!("{} {}", rendered.chart.name, rendered.chart.version);
    let diagnostics = rendered.diagnostics();
    if !diagnostics.is_empty() {
        for d in &diagnostics {
            writeln!(ctx.err, "{d}")?;
        }
        let bad = rendered
            .files
            .iter()
            .filter(|f| !f.all_diagnostics().is_empty())
            .count();
        return Err(CliError::Failed(format!(
            "chart {name}: {} errors in the rendered output of {bad} of {} templates \
             (line:column count in each template's rendered text)",
            diagnostics.len(),
            rendered.templates.len()
        )));
    }
    let documents = rendered.documents().count();
    if documents == 0 {
        return Err(CliError::Failed(format!(
            "chart {name} rendered no spec documents"
        )));
    }
    ctx.out.write_all(rendered.to_yaml().as_bytes())?;
    writeln!(
        ctx.err,
        "render: chart {name}: {documents} documents from {} templates are valid",
        rendered.templates.len()
    )?;
    Ok(())
}

//! `ecs-operator verify --store URL [NAME...] [-o table|json|yaml]`: the read-only pre-flight.
//!
//! For each spec of the store (or each one named, by `NAME` or `Kind/NAME`), the findings of
//! [`crate::verify`]: roles, images, secrets, hosted zones, subnets and security groups,
//! capacity providers' Auto Scaling groups. Each finding names the spec, the field, what is
//! wrong and the fix:
//!
//! ```text
//! SEVERITY  SPEC             FIELD                    PROBLEM                                  FIX
//! error     ServiceSpec/web  spec.network.subnets[1]  the subnet `subnet-9` does not exist     name an existing subnet id ...
//! verified 3 specs: 1 error, 0 warnings, 1 note
//! ```
//!
//! Never writes to AWS or to the store. Exits 1 when any finding is an error (an invalid spec
//! is one), 0 otherwise (warnings say what could not be checked, notes what is worth knowing);
//! 2 when the store cannot be read, a NAME matches no spec, or AWS cannot be reached at all.

use std::collections::BTreeMap;

use serde_json::json;

use super::output::{table, to_yaml, OutputFormat};
use super::{open_store, CliError, Context};
use crate::aws::{Budget, Sdk};
use crate::spec::{Spec, SpecKey};
use crate::verify::{self, Finding, Needs, Severity};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE
    #[arg(long, env = "ECS_OPERATOR_STORE")]
    pub store: String,
    /// The specs to verify, as NAME or Kind/NAME (default: every spec of the store).
    pub names: Vec<String>,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
}

/// A spec of the store as read: valid, or the reasons it is not.
type Entry = Result<Spec, Vec<String>>;

/// The entries `names` select (all when empty); a name that matches nothing is a usage error.
fn select(
    entries: BTreeMap<SpecKey, Entry>,
    names: &[String],
) -> Result<BTreeMap<SpecKey, Entry>, CliError> {
    if names.is_empty() {
        return Ok(entries);
    }
    let matches = |key: &SpecKey, name: &str| key.name == name || key.to_string() == name;
    if let Some(unknown) = names
        .iter()
        .find(|n| !entries.keys().any(|k| matches(k, n)))
    {
        return Err(CliError::Environment(format!(
            "no spec named `{unknown}` in the store (give NAME or Kind/NAME; `ecs-operator status` lists them)"
        )));
    }
    Ok(entries
        .into_iter()
        .filter(|(k, _)| names.iter().any(|n| matches(k, n)))
        .collect())
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

pub async fn run(args: Args, ctx: &mut Context<'_>) -> Result<(), CliError> {
    let store = open_store(&args.store, ctx).await?;
    let listing = store.list().await?;
    let mut entries: BTreeMap<SpecKey, Entry> = BTreeMap::new();
    for f in listing.validated_files() {
        for e in &f.errors {
            writeln!(ctx.err, "warning: {e}")?;
        }
        for d in f.documents {
            let Some(key) = d.key() else {
                for x in d.diagnostics() {
                    writeln!(ctx.err, "warning: {x}")?;
                }
                continue;
            };
            let entry = d
                .result
                .map_err(|diags| diags.iter().map(|x| x.to_string()).collect());
            entries.insert(key, entry);
        }
    }
    let selected = select(entries, &args.names)?;

    let valid: Vec<&Spec> = selected.values().filter_map(|e| e.as_ref().ok()).collect();
    let needs = Needs::of(valid.iter().copied());
    let sdk = Sdk::with_calls(ctx.sdk().await?, ctx.calls.clone().unwrap_or_default());
    let facts = verify::read::Reader::new(&sdk, Budget::default())
        .read(&needs)
        .await;

    let mut findings: Vec<Finding> = Vec::new();
    for (key, entry) in &selected {
        match entry {
            Ok(spec) => findings.extend(verify::check(spec, &facts)),
            Err(diags) => findings.extend(diags.iter().map(|d| {
                Finding::error(
                    key,
                    "",
                    format!("the spec is invalid: {d}"),
                    "fix it (`ecs-operator validate` lists every error); an invalid spec is not deployed",
                )
            })),
        }
    }

    let errors = verify::count(&findings, Severity::Error);
    let warnings = verify::count(&findings, Severity::Warning);
    let notes = verify::count(&findings, Severity::Note);
    let specs: Vec<String> = selected.keys().map(|k| k.to_string()).collect();
    match args.output {
        OutputFormat::Json | OutputFormat::Yaml => {
            let value = json!({
                "specs": specs,
                "findings": findings,
                "errors": errors,
                "warnings": warnings,
                "notes": notes,
            });
            if args.output == OutputFormat::Json {
                writeln!(
                    ctx.out,
                    "{}",
                    serde_json::to_string_pretty(&value).expect("JSON")
                )?;
            } else {
                write!(ctx.out, "{}", to_yaml(&value))?;
            }
        }
        OutputFormat::Table => {
            if !findings.is_empty() {
                let rows: Vec<Vec<String>> = findings
                    .iter()
                    .map(|f| {
                        vec![
                            f.severity.to_string(),
                            f.spec.to_string(),
                            if f.field.is_empty() {
                                "-".into()
                            } else {
                                f.field.clone()
                            },
                            f.problem.clone(),
                            f.fix.clone(),
                        ]
                    })
                    .collect();
                write!(
                    ctx.out,
                    "{}",
                    table(&["SEVERITY", "SPEC", "FIELD", "PROBLEM", "FIX"], &rows)
                )?;
            }
            writeln!(
                ctx.out,
                "verified {}: {}, {}, {}",
                plural(specs.len(), "spec"),
                plural(errors, "error"),
                plural(warnings, "warning"),
                plural(notes, "note"),
            )?;
        }
    }
    if let Some(why) = &facts.unreachable {
        return Err(CliError::Environment(format!(
            "cannot reach AWS (check AWS_ENDPOINT_URL, AWS_REGION and the network): {why}"
        )));
    }
    if errors > 0 {
        let failing = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| &f.spec)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        return Err(CliError::Failed(format!(
            "{} in {failing} of {}",
            plural(errors, "error"),
            plural(specs.len(), "spec")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    fn entries() -> BTreeMap<SpecKey, Entry> {
        let mut m = BTreeMap::new();
        m.insert(SpecKey::new(Kind::ClusterSpec, "prod"), Err(vec![]));
        m.insert(SpecKey::new(Kind::ServiceSpec, "prod"), Err(vec![]));
        m.insert(SpecKey::new(Kind::ServiceSpec, "web"), Err(vec![]));
        m
    }

    #[test]
    fn names_select_every_kind_of_that_name_and_kind_slash_name_one() {
        let all = select(entries(), &[]).unwrap();
        assert_eq!(all.len(), 3);
        let prod = select(entries(), &["prod".into()]).unwrap();
        assert_eq!(prod.len(), 2);
        let one = select(entries(), &["ServiceSpec/prod".into()]).unwrap();
        assert_eq!(
            one.keys().collect::<Vec<_>>(),
            vec![&SpecKey::new(Kind::ServiceSpec, "prod")]
        );
    }

    #[test]
    fn a_name_that_matches_no_spec_is_a_usage_error() {
        let e = select(entries(), &["web".into(), "nope".into()]).unwrap_err();
        assert_eq!(e.exit_code(), super::super::EXIT_USAGE);
        assert!(e.to_string().contains("`nope`"), "{e}");
    }
}

//! Charts: templated bundles of spec documents with per-environment values (README "Commands",
//! `ecs-operator render`).
//!
//! A chart is a folder:
//! - `Chart.yaml`: `name`, `version` and an optional `description`, nothing else;
//! - `values.yaml`: the default values, one mapping (optional: no file means no defaults);
//! - `templates/*.yaml` (and `*.yml`): [minijinja] templates, rendered in file-name order.
//!
//! The values a template sees are the chart's defaults, then every `-f` file in the order given,
//! then every `--set path=value` and then every `--set-string path=value` in the order given (see
//! [`parse_set`]), each merged over the result so far with
//! [`deep_merge`]: mappings merge key by key, anything else (a list, a scalar, null) replaces what
//! was there. Templates see two variables: `values` (the merged values) and `chart` (`name`,
//! `version`, `description` of `Chart.yaml`).
//!
//! Template syntax: Jinja as minijinja implements it, with `trim_blocks` and `lstrip_blocks` on
//! (a line holding only a `{% ... %}` tag leaves nothing behind) and no auto-escaping: a value is
//! printed as it is, so use the `tojson` filter where a value must stay one YAML scalar (JSON is
//! YAML) or to print a list or mapping (`subnets: {{ values.network.subnets | tojson }}`).
//!
//! Invariants:
//! - undefined is strict: printing, testing, iterating or looking into a value that is not in the
//!   values is an error naming the template file, its line and the expression
//!   (`` `values.image.tag` is undefined ``); only `is defined` and the `default` filter may look
//!   at a missing value. A template never renders a silent empty string for a typo;
//! - template errors (syntax or evaluation) are collected over every template, not only the first;
//! - every rendered document goes through the parse and validation of `ecs-operator validate`,
//!   cross-document checks included, under the template's path, so [`Rendered::diagnostics`] is
//!   empty exactly when [`Rendered::to_yaml`] would pass `validate`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::spec::load::{parse_file, validate_files, Document, ParsedFile, MAX_FILE_BYTES};
use crate::spec::yaml::{self, Limits, Pos, Positions};
use crate::spec::Diagnostic;

/// The chart's metadata file.
pub const CHART_FILE: &str = "Chart.yaml";
/// The chart's default values.
pub const VALUES_FILE: &str = "values.yaml";
/// The folder of templates inside a chart.
pub const TEMPLATES_DIR: &str = "templates";

/// Errors that stop a chart from rendering at all: a missing or unreadable file, a YAML or
/// template error, a bad `--set`. (A rendered document that is not a valid spec is not an error
/// here: it is a [`Diagnostic`] of [`Rendered`].)
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The folder is missing, or lacks `Chart.yaml` or templates.
    #[error("{}: not a chart: {reason}", .dir.display())]
    NotAChart { dir: PathBuf, reason: String },
    /// A chart or values file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `Chart.yaml` or a values file is not what it must be (bad YAML, not a mapping, a missing or
    /// unknown field). `at` is `file[:line:column]`.
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
    /// A `--set` or `--set-string` argument that is not `path=value`; `arg` includes the flag.
    #[error("{arg}: {message}")]
    Set { arg: String, message: String },
    /// Template syntax or evaluation errors (a missing value included), all of them.
    #[error("{}", join_lines(.0))]
    Template(Vec<TemplateError>),
}

fn join_lines(errors: &[TemplateError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A template that does not compile or does not evaluate: `file:line[:column]: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The template's path (`CHART/templates/NAME.yaml`).
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// `Chart.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartMeta {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
}

/// One template file of a chart.
#[derive(Debug, Clone)]
pub struct Template {
    /// The file name inside `templates/`.
    pub name: String,
    /// Its path as diagnostics show it (`CHART/templates/NAME`).
    pub file: String,
    pub source: String,
}

/// A chart read from its folder, not rendered yet.
#[derive(Debug, Clone)]
pub struct Chart {
    pub dir: PathBuf,
    pub meta: ChartMeta,
    /// `values.yaml`: always a mapping (empty without the file).
    pub defaults: Value,
    /// In file-name order.
    pub templates: Vec<Template>,
}

/// The text one template rendered to.
#[derive(Debug, Clone)]
pub struct RenderedTemplate {
    /// The file name inside `templates/`.
    pub name: String,
    /// Its path as diagnostics show it (`CHART/templates/NAME`).
    pub file: String,
    /// The rendered text, without surrounding blank lines or `---` lines.
    pub text: String,
}

/// A rendered chart: the text of every template and, parallel to it, that text parsed and
/// validated as spec documents (one [`ParsedFile`] per template, labelled with its path).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub chart: ChartMeta,
    pub templates: Vec<RenderedTemplate>,
    pub files: Vec<ParsedFile>,
}

impl Rendered {
    /// Every problem of every rendered document, in template order; empty when all are valid.
    /// Lines and columns count in the template's rendered text.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.files
            .iter()
            .flat_map(|f| f.all_diagnostics())
            .collect()
    }

    /// Every rendered document, in template order.
    pub fn documents(&self) -> impl Iterator<Item = &Document> + '_ {
        self.files.iter().flat_map(|f| f.documents.iter())
    }

    /// The output of `render`: the text of every template that rendered at least one document,
    /// each headed by a `# Source: CHART-NAME/templates/NAME` comment, joined with `---` lines.
    pub fn to_yaml(&self) -> String {
        self.templates
            .iter()
            .zip(&self.files)
            .filter(|(_, f)| !f.documents.is_empty())
            .map(|(t, _)| {
                format!(
                    "# Source: {}/{TEMPLATES_DIR}/{}\n{}\n",
                    self.chart.name, t.name, t.text
                )
            })
            .collect::<Vec<_>>()
            .join("---\n")
    }
}

impl Chart {
    /// Read `Chart.yaml`, `values.yaml` and every template of the chart in `dir`. Templates are
    /// read, not compiled: syntax errors surface in [`Chart::render`].
    pub fn load(dir: &Path) -> Result<Chart, ChartError> {
        let not_a_chart = |reason: String| ChartError::NotAChart {
            dir: dir.to_path_buf(),
            reason,
        };
        if !dir.is_dir() {
            return Err(not_a_chart("no such folder".into()));
        }
        let chart_file = dir.join(CHART_FILE);
        if !chart_file.is_file() {
            return Err(not_a_chart(format!("{CHART_FILE} is missing")));
        }
        let (meta_map, positions) = read_mapping(&chart_file)?;
        let meta = chart_meta(&chart_file.display().to_string(), meta_map, &positions)?;
        let values_file = dir.join(VALUES_FILE);
        let defaults = if values_file.exists() {
            Value::Object(read_mapping(&values_file)?.0)
        } else {
            Value::Object(Map::new())
        };
        let templates_dir = dir.join(TEMPLATES_DIR);
        if !templates_dir.is_dir() {
            return Err(not_a_chart(format!("no {TEMPLATES_DIR}/ folder")));
        }
        let entries = std::fs::read_dir(&templates_dir).map_err(|source| ChartError::Read {
            path: templates_dir.clone(),
            source,
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| ChartError::Read {
                path: templates_dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().to_string();
            let lower = name.to_ascii_lowercase();
            if !name.starts_with('.')
                && (lower.ends_with(".yaml") || lower.ends_with(".yml"))
                && entry.path().is_file()
            {
                names.push(name);
            }
        }
        names.sort();
        if names.is_empty() {
            return Err(not_a_chart(format!(
                "{TEMPLATES_DIR}/ holds no *.yaml or *.yml templates"
            )));
        }
        let mut templates = Vec::new();
        for name in names {
            let path = templates_dir.join(&name);
            templates.push(Template {
                source: read_text(&path)?,
                file: path.display().to_string(),
                name,
            });
        }
        Ok(Chart {
            dir: dir.to_path_buf(),
            meta,
            defaults,
            templates,
        })
    }

    /// Render every template with `values` (already merged), then parse and validate every
    /// rendered document, cross-document checks included. Template errors of every template are
    /// returned together; invalid documents are not an error but [`Rendered::diagnostics`].
    pub fn render(&self, values: &Value) -> Result<Rendered, ChartError> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_debug(true);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters are valid"),
        );
        let mut errors = Vec::new();
        for t in &self.templates {
            if let Err(e) = env.add_template_owned(t.file.clone(), t.source.clone()) {
                errors.push(template_error(&e, t));
            }
        }
        if !errors.is_empty() {
            return Err(ChartError::Template(errors));
        }
        let context = minijinja::Value::from(BTreeMap::from([
            ("values".to_string(), to_template_value(values)),
            ("chart".to_string(), self.meta_value()),
        ]));
        let mut rendered = Vec::new();
        for t in &self.templates {
            let result = env
                .get_template(&t.file)
                .and_then(|tmpl| tmpl.render(context.clone()));
            match result {
                Ok(text) => rendered.push(RenderedTemplate {
                    name: t.name.clone(),
                    file: t.file.clone(),
                    text: trim_document_text(&text),
                }),
                Err(e) => errors.push(template_error(&e, t)),
            }
        }
        if !errors.is_empty() {
            return Err(ChartError::Template(errors));
        }
        let mut files: Vec<ParsedFile> = rendered
            .iter()
            .map(|r| parse_file(&r.file, r.text.as_bytes()))
            .collect();
        validate_files(&mut files);
        Ok(Rendered {
            chart: self.meta.clone(),
            templates: rendered,
            files,
        })
    }

    fn meta_value(&self) -> minijinja::Value {
        let m = &self.meta;
        minijinja::Value::from(BTreeMap::from([
            ("name".to_string(), minijinja::Value::from(m.name.as_str())),
            (
                "version".to_string(),
                minijinja::Value::from(m.version.as_str()),
            ),
            (
                "description".to_string(),
                minijinja::Value::from(m.description.clone()),
            ),
        ]))
    }
}

/// Load the chart in `dir` and render it with its defaults, then every file of `values_files`
/// in order, then every overlay (from [`parse_set`] / [`parse_set_string`]) in order, merged
/// over one another with [`deep_merge`].
pub fn render_chart(
    dir: &Path,
    values_files: &[PathBuf],
    overlays: Vec<Value>,
) -> Result<Rendered, ChartError> {
    let chart = Chart::load(dir)?;
    let mut values = chart.defaults.clone();
    for f in values_files {
        deep_merge(&mut values, read_values(f)?);
    }
    for o in overlays {
        deep_merge(&mut values, o);
    }
    chart.render(&values)
}

/// Merge `overlay` into `base`: where both are mappings, keys merge recursively (keys only in
/// `base` stay, keys only in `overlay` are added); anywhere else, including lists and null,
/// `overlay` replaces `base`.
pub fn deep_merge(base: &mut Value, overlay: Value) {
    match overlay {
        Value::Object(over) if base.is_object() => {
            let map = base.as_object_mut().expect("checked to be a mapping");
            for (key, value) in over {
                match map.get_mut(&key) {
                    Some(slot) => deep_merge(slot, value),
                    None => {
                        map.insert(key, value);
                    }
                }
            }
        }
        other => *base = other,
    }
}

/// A values file (`-f`): one YAML mapping; an empty file is an empty mapping.
pub fn read_values(path: &Path) -> Result<Value, ChartError> {
    Ok(Value::Object(read_mapping(path)?.0))
}

/// `--set a.b.c=value` as the overlay `{a: {b: {c: value}}}`. The value is read as YAML reads a
/// plain scalar (`3` a number, `true` a boolean, `null` null, anything else a string); a value
/// starting with `[`, `{`, `"` or `'` is read as YAML flow (`[subnet-a, subnet-b]`, `"0123"`).
/// An empty value is the empty string. Keys cannot contain `.`.
pub fn parse_set(arg: &str) -> Result<Value, ChartError> {
    parse_assignment(arg, false)
}

/// `--set-string a.b.c=value`: like [`parse_set`], but the value is always the string as given
/// (for image tags and other text that YAML would read as a number: `0123`, `1e10`).
pub fn parse_set_string(arg: &str) -> Result<Value, ChartError> {
    parse_assignment(arg, true)
}

fn parse_assignment(arg: &str, literal: bool) -> Result<Value, ChartError> {
    let flag = if literal { "--set-string" } else { "--set" };
    let bad = |message: String| ChartError::Set {
        arg: format!("{flag} {arg}"),
        message,
    };
    let Some((path, text)) = arg.split_once('=') else {
        return Err(bad(
            "expected PATH=VALUE (for example image.tag=1.2.3)".into()
        ));
    };
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.trim().is_empty()) {
        return Err(bad(format!(
            "`{path}` is not a dotted path of keys (for example image.tag)"
        )));
    }
    let value = if literal || text.is_empty() {
        Value::String(text.to_string())
    } else if text.starts_with(['[', '{', '"', '\'']) {
        let loaded = yaml::load(text, Limits::default());
        if let Some(e) = loaded.errors.first() {
            return Err(bad(e.message.clone()));
        }
        loaded
            .documents
            .into_iter()
            .next()
            .map(|(_, d)| d.value)
            .unwrap_or(Value::Null)
    } else {
        yaml::resolve_scalar(text)
    };
    Ok(keys.iter().rev().fold(value, |inner, key| {
        let mut m = Map::new();
        m.insert(key.trim().to_string(), inner);
        Value::Object(m)
    }))
}

/// A values or Chart.yaml value as a template value.
fn to_template_value(v: &Value) -> minijinja::Value {
    match v {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(b) => minijinja::Value::from(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                minijinja::Value::from(u)
            } else if let Some(i) = n.as_i64() {
                minijinja::Value::from(i)
            } else {
                minijinja::Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => minijinja::Value::from(s.as_str()),
        Value::Array(a) => {
            minijinja::Value::from(a.iter().map(to_template_value).collect::<Vec<_>>())
        }
        Value::Object(m) => minijinja::Value::from(
            m.iter()
                .map(|(k, v)| (k.clone(), to_template_value(v)))
                .collect::<BTreeMap<String, minijinja::Value>>(),
        ),
    }
}

/// A minijinja error as `file:line[:column]: kind: detail: cause...`.
fn template_error(e: &minijinja::Error, t: &Template) -> TemplateError {
    let mut message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message.push_str(&format!(": {c}"));
        cause = c.source();
    }
    // Errors of this template carry its name; an error raised elsewhere keeps this one's.
    let file = e.name().unwrap_or(&t.file).to_string();
    let column = match (e.range(), file == t.file) {
        (Some(r), true) => t.source.get(..r.start).map(|before| {
            before
                .rsplit_once('\n')
                .map_or(before, |(_, line)| line)
                .chars()
                .count()
                + 1
        }),
        _ => None,
    };
    TemplateError {
        file,
        line: e.line(),
        column,
        message,
    }
}

/// The rendered text of one template without blank lines or `---` separator lines at either
/// end, so that joining templates with `---` never makes an empty document.
fn trim_document_text(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let blank_or_separator = |l: &str| l.trim().is_empty() || l.trim_end() == "---";
    while lines.first().is_some_and(|l| blank_or_separator(l)) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| blank_or_separator(l)) {
        lines.pop();
    }
    lines.join("\n")
}

fn read_text(path: &Path) -> Result<String, ChartError> {
    let bytes = std::fs::read(path).map_err(|source| ChartError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |message: String| ChartError::Invalid {
        at: path.display().to_string(),
        message,
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "file too large: {} bytes, the limit is {MAX_FILE_BYTES} bytes",
            bytes.len()
        )));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "not UTF-8 text: invalid byte at offset {}",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// `file:line:column`, or `file` when the position is unknown.
fn at(file: &str, pos: Option<Pos>) -> String {
    match pos {
        Some(p) => format!("{file}:{p}"),
        None => file.to_string(),
    }
}

/// A YAML file that holds one mapping (or nothing: an empty mapping), with its field positions.
fn read_mapping(path: &Path) -> Result<(Map<String, Value>, Positions), ChartError> {
    let text = read_text(path)?;
    let file = path.display().to_string();
    let loaded = yaml::load(&text, Limits::default());
    if let Some(e) = loaded.errors.into_iter().next() {
        return Err(ChartError::Invalid {
            at: at(&file, e.pos),
            message: e.message,
        });
    }
    let mut docs = loaded.documents.into_iter();
    let Some((_, doc)) = docs.next() else {
        return Ok((Map::new(), Positions::default()));
    };
    if let Some((index, extra)) = docs.next() {
        return Err(ChartError::Invalid {
            at: at(&file, Some(extra.start)),
            message: format!("document {index}: expected one YAML document, found more"),
        });
    }
    match doc.value {
        Value::Object(m) => Ok((m, doc.positions)),
        other => Err(ChartError::Invalid {
            at: at(&file, Some(doc.start)),
            message: format!("must be a mapping of keys to values, not {other}"),
        }),
    }
}

/// `Chart.yaml`: `name` and `version` required, `description` optional, nothing else.
fn chart_meta(
    file: &str,
    mut map: Map<String, Value>,
    positions: &Positions,
) -> Result<ChartMeta, ChartError> {
    let invalid = |pointer: &str, message: String| ChartError::Invalid {
        at: at(file, positions.lookup(pointer)),
        message,
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !["name", "version", "description"].contains(&k.as_str()))
    {
        return Err(invalid(
            &format!("/{}", yaml::escape_pointer(unknown)),
            format!("unknown field `{unknown}`; expected name, version, description"),
        ));
    }
    let mut text = |key: &str, required: bool| -> Result<Option<String>, ChartError> {
        match map.remove(key) {
            None | Some(Value::Null) if required => {
                Err(invalid("", format!("missing required field `{key}`")))
            }
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if required && s.trim().is_empty() => Err(invalid(
                &format!("/{key}"),
                format!("`{key}` must not be empty"),
            )),
            Some(Value::String(s)) => Ok(Some(s)),
            // `version: 1` or `version: 1.0` is meant as text.
            Some(Value::Number(n)) if key == "version" => Ok(Some(n.to_string())),
            Some(other) => Err(invalid(
                &format!("/{key}"),
                format!("`{key}` must be a string, not {other}"),
            )),
        }
    };
    Ok(ChartMeta {
        name: text("name", true)?.unwrap_or_default(),
        version: text("version", true)?.unwrap_or_default(),
        description: text("description", false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deep_merge_merges_mappings_key_by_key_at_every_level() {
        let mut base = json!({"a": {"b": 1, "c": {"d": 2, "e": 3}}, "keep": true});
        deep_merge(
            &mut base,
            json!({"a": {"c": {"e": 30, "f": 40}}, "new": "x"}),
        );
        assert_eq!(
            base,
            json!({"a": {"b": 1, "c": {"d": 2, "e": 30, "f": 40}}, "keep": true, "new": "x"})
        );
    }

    #[test]
    fn deep_merge_replaces_lists_scalars_and_null_whole() {
        let mut base = json!({"list": [1, 2, 3], "n": 1, "s": "a", "m": {"x": 1}});
        deep_merge(
            &mut base,
            json!({"list": [9], "n": "one", "s": null, "m": [1]}),
        );
        assert_eq!(base, json!({"list": [9], "n": "one", "s": null, "m": [1]}));
    }

    #[test]
    fn deep_merge_puts_a_mapping_in_place_of_a_scalar_and_a_scalar_in_place_of_a_mapping() {
        let mut base = json!({"image": "nginx", "net": {"subnets": ["a"]}});
        deep_merge(&mut base, json!({"image": {"tag": "1"}, "net": "none"}));
        assert_eq!(base, json!({"image": {"tag": "1"}, "net": "none"}));
    }

    #[test]
    fn later_overlays_win_over_earlier_ones() {
        let mut v = json!({"a": {"b": 1}});
        for overlay in [json!({"a": {"b": 2}}), json!({"a": {"b": 3, "c": 1}})] {
            deep_merge(&mut v, overlay);
        }
        assert_eq!(v, json!({"a": {"b": 3, "c": 1}}));
    }

    #[test]
    fn set_values_are_core_schema_scalars_or_yaml_flow() {
        assert_eq!(parse_set("a.b=3").unwrap(), json!({"a": {"b": 3}}));
        assert_eq!(parse_set("on=true").unwrap(), json!({"on": true}));
        assert_eq!(parse_set("x=null").unwrap(), json!({"x": null}));
        assert_eq!(
            parse_set("d=*.example.com").unwrap(),
            json!({"d": "*.example.com"})
        );
        assert_eq!(
            parse_set("img=repo:tag").unwrap(),
            json!({"img": "repo:tag"})
        );
        assert_eq!(parse_set("t=\"0123\"").unwrap(), json!({"t": "0123"}));
        assert_eq!(parse_set("l=[a, 2]").unwrap(), json!({"l": ["a", 2]}));
        assert_eq!(parse_set("e=").unwrap(), json!({"e": ""}));
        assert_eq!(parse_set("a=b=c").unwrap(), json!({"a": "b=c"}));
        assert_eq!(parse_set("tag=0123").unwrap(), json!({"tag": 123}));
    }

    #[test]
    fn set_string_values_stay_text() {
        assert_eq!(
            parse_set_string("image.tag=0123").unwrap(),
            json!({"image": {"tag": "0123"}})
        );
        assert_eq!(parse_set_string("t=1e10").unwrap(), json!({"t": "1e10"}));
        assert_eq!(parse_set_string("t=[a]").unwrap(), json!({"t": "[a]"}));
        let e = parse_set_string("t").unwrap_err().to_string();
        assert!(e.starts_with("--set-string t: expected PATH=VALUE"), "{e}");
    }

    #[test]
    fn set_without_equals_or_with_an_empty_key_is_an_error() {
        for bad in ["novalue", "a..b=1", "=1", "a.=1"] {
            let e = parse_set(bad).unwrap_err();
            assert!(e.to_string().starts_with(&format!("--set {bad}: ")), "{e}");
        }
        let e = parse_set("l=[a, b").unwrap_err();
        assert!(e.to_string().contains("invalid YAML"), "{e}");
    }

    fn chart(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn templates_render_in_file_name_order_with_values_and_chart() {
        let dir = chart(&[
            ("Chart.yaml", "name: demo\nversion: 1.0\n"),
            ("values.yaml", "who: {name: b}\n"),
            ("templates/b.yaml", "second: {{ values.who.name }}\n"),
            (
                "templates/a.yaml",
                "---\n{% if true %}\nfirst: {{ chart.name }}-{{ chart.version }}\n{% endif %}\n---\n",
            ),
            ("templates/notes.txt", "ignored"),
        ]);
        let c = Chart::load(dir.path()).unwrap();
        assert_eq!(c.meta.version, "1.0");
        let r = c.render(&c.defaults).unwrap();
        let texts: Vec<&str> = r.templates.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts, ["first: demo-1.0", "second: b"]);
        assert_eq!(
            r.to_yaml(),
            "# Source: demo/templates/a.yaml\nfirst: demo-1.0\n---\n# Source: demo/templates/b.yaml\nsecond: b\n"
        );
    }

    #[test]
    fn a_missing_value_names_the_template_line_and_expression() {
        let dir = chart(&[
            ("Chart.yaml", "name: demo\nversion: '1'\n"),
            ("templates/a.yaml", "a: 1\nb: {{ values.nope.deeper }}\n"),
            ("templates/b.yaml", "c: {{ values.missing }}\n"),
        ]);
        let c = Chart::load(dir.path()).unwrap();
        let Err(ChartError::Template(errors)) = c.render(&c.defaults) else {
            panic!("expected template errors")
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].file.ends_with("templates/a.yaml"), "{errors:?}");
        assert_eq!(errors[0].line, Some(2));
        assert!(
            errors[1].message.contains("`values.missing` is undefined"),
            "{errors:?}"
        );
    }

    #[test]
    fn syntax_errors_of_every_template_are_reported_with_line_and_column() {
        let dir = chart(&[
            ("Chart.yaml", "name: demo\nversion: '1'\n"),
            ("templates/a.yaml", "a: 1\nb: {{ values.x \n"),
            ("templates/b.yaml", "{% if %}\n"),
        ]);
        let c = Chart::load(dir.path()).unwrap();
        let Err(ChartError::Template(errors)) = c.render(&json!({})) else {
            panic!("expected template errors")
        };
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].line, Some(2), "{errors:?}");
        assert!(errors[0].column.is_some(), "{errors:?}");
        assert!(errors[0].message.starts_with("syntax error"), "{errors:?}");
    }

    #[test]
    fn chart_yaml_needs_name_and_version_and_refuses_unknown_fields() {
        let dir = chart(&[
            ("Chart.yaml", "name: demo\n"),
            ("templates/a.yaml", "a: 1\n"),
        ]);
        let e = Chart::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("missing required field `version`"), "{e}");
        std::fs::write(
            dir.path().join("Chart.yaml"),
            "name: demo\nversion: '1'\nappVersion: 2\n",
        )
        .unwrap();
        let e = Chart::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("Chart.yaml:3:1: unknown field `appVersion`"),
            "{e}"
        );
    }

    #[test]
    fn a_values_file_must_be_one_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("v.yaml");
        std::fs::write(&f, "- a\n").unwrap();
        let e = read_values(&f).unwrap_err().to_string();
        assert!(e.contains("v.yaml:1:1: must be a mapping"), "{e}");
        std::fs::write(&f, "a: 1\n---\nb: 2\n").unwrap();
        let e = read_values(&f).unwrap_err().to_string();
        assert!(e.contains("expected one YAML document"), "{e}");
        std::fs::write(&f, "# nothing\n").unwrap();
        assert_eq!(read_values(&f).unwrap(), json!({}));
    }
}

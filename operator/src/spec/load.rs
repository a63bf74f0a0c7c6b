//! Files -> located, validated spec documents.
//!
//! Invariants: a broken document never hides another (each document carries its own result, and
//! a broken file never hides other files); a broken field never hides a semantic problem of the
//! document's other fields (the document is repaired for the semantic checks, see
//! [`super::repair`]); every error is a [`Diagnostic`] naming file, document index, field path
//! and, where the text allows, line:column; a document's errors are in line order.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::yaml::{self, Limits, Positions};
use super::{repair, schema, validate, Diagnostic, Kind, Spec, SpecKey};

/// How many fields a typed decode may still find broken after the schema's errors are repaired
/// (the schema catches nearly everything; this bounds the loop).
const MAX_DECODE_REPAIRS: usize = 16;

/// Files larger than this are refused whole: no spec needs more, and it bounds what a bad input
/// can cost.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// Where a document came from: a file (or store object/item) label and the document's index in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub file: String,
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} document {}", self.file, self.document)
    }
}

/// One document of a file, valid or not. `kind` and `name` are filled in whenever the document
/// says them, even when it is invalid, so an invalid spec can still be reported under its key.
#[derive(Debug, Clone)]
pub struct Document {
    pub origin: Origin,
    pub kind: Option<Kind>,
    pub name: Option<String>,
    pub result: Result<Spec, Vec<Diagnostic>>,
    /// The document as written (before defaults), for stores that keep one item per document.
    pub raw: Value,
    positions: Positions,
    /// The typed spec even when the document is invalid (decoded after repairs), and the
    /// pointers that were repaired; `None` when it could not be decoded at all.
    decoded: Option<(Spec, Vec<String>)>,
}

impl Document {
    /// `Kind/name`, when the document names both.
    pub fn key(&self) -> Option<SpecKey> {
        Some(SpecKey::new(self.kind?, self.name.clone()?))
    }

    pub fn spec(&self) -> Option<&Spec> {
        self.result.as_ref().ok()
    }

    /// The digest of the document as it is now: the spec's digest when valid, else the sha256 of
    /// the canonical JSON of what was written.
    pub fn generation(&self) -> String {
        match &self.result {
            Ok(spec) => spec.digest(),
            Err(_) => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                super::canonical_json(&self.raw).as_bytes(),
            )),
        }
    }

    /// The typed spec as far as it could be read: the valid spec, or the invalid document
    /// decoded with its broken fields replaced by placeholders, with their pointers. Checks on it
    /// must drop what they find at or around those pointers.
    pub fn decoded(&self) -> Option<(&Spec, &[String])> {
        match &self.result {
            Ok(spec) => Some((spec, &[])),
            Err(_) => self
                .decoded
                .as_ref()
                .map(|(spec, replaced)| (spec, replaced.as_slice())),
        }
    }

    pub fn diagnostics(&self) -> &[Diagnostic] {
        match &self.result {
            Ok(_) => &[],
            Err(d) => d,
        }
    }

    /// Mark the document invalid with one more problem at `pointer`, kept in line order.
    pub fn add_problem(&mut self, pointer: String, message: String) {
        let diag = Diagnostic::at(
            &self.origin.file,
            self.origin.document,
            &pointer,
            self.positions.lookup(&pointer),
            message,
        );
        match &mut self.result {
            Ok(_) => self.result = Err(vec![diag]),
            Err(list) => {
                // Line order; problems without a line last; equal positions in arrival order.
                let key = |d: &Diagnostic| (d.line.is_none(), d.line, d.column);
                let at = list.partition_point(|d| key(d) <= key(&diag));
                list.insert(at, diag);
            }
        }
    }
}

/// Everything read from one file: its documents, and errors that belong to no document (the file
/// is unreadable, too large, not UTF-8, or a document could not even be parsed).
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub file: String,
    pub documents: Vec<Document>,
    pub errors: Vec<Diagnostic>,
}

impl ParsedFile {
    /// Every diagnostic of the file, file-level ones first, then per document in order.
    pub fn all_diagnostics(&self) -> Vec<Diagnostic> {
        let mut all = self.errors.clone();
        for d in &self.documents {
            all.extend(d.diagnostics().iter().cloned());
        }
        all
    }
}

fn is_json_name(file: &str) -> bool {
    file.to_ascii_lowercase().ends_with(".json")
}

/// Parse one file's bytes. `file` is the label used in diagnostics (a path, an S3 key...).
pub fn parse_file(file: &str, bytes: &[u8]) -> ParsedFile {
    let mut out = ParsedFile {
        file: file.to_string(),
        documents: Vec::new(),
        errors: Vec::new(),
    };
    if bytes.len() > MAX_FILE_BYTES {
        out.errors.push(Diagnostic::file_level(
            file,
            format!(
                "file too large: {} bytes, the limit is {} bytes",
                bytes.len(),
                MAX_FILE_BYTES
            ),
        ));
        return out;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(Diagnostic::file_level(
                file,
                format!("not UTF-8 text: invalid byte at offset {}", e.valid_up_to()),
            ));
            return out;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let raw: Vec<(usize, Value, Positions)> = if is_json_name(file) {
        match serde_json::from_str::<Value>(text) {
            Err(e) => {
                out.errors.push(Diagnostic {
                    file: file.to_string(),
                    document: Some(0),
                    path: String::new(),
                    line: Some(e.line()),
                    column: Some(e.column()),
                    message: format!("invalid JSON: {e}"),
                });
                return out;
            }
            Ok(value) => {
                // JSON is YAML: parse again for positions, best effort.
                let positions = yaml::load(text, Limits::default())
                    .documents
                    .into_iter()
                    .next()
                    .map(|(_, d)| d.positions)
                    .unwrap_or_default();
                match value {
                    // A JSON array holds several documents.
                    Value::Array(items) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (i, v, sub_positions(&positions, &format!("/{i}"))))
                        .collect(),
                    v => vec![(0, v, positions)],
                }
            }
        }
    } else {
        let loaded = yaml::load(text, Limits::default());
        for e in loaded.errors {
            out.errors.push(Diagnostic {
                file: file.to_string(),
                document: Some(e.document),
                path: String::new(),
                line: e.pos.map(|p| p.line),
                column: e.pos.map(|p| p.column),
                message: e.message,
            });
        }
        loaded
            .documents
            .into_iter()
            .map(|(i, d)| (i, d.value, d.positions))
            .collect()
    };
    for (index, value, positions) in raw {
        out.documents.push(parse_document(
            Origin {
                file: file.to_string(),
                document: index,
            },
            value,
            positions,
        ));
    }
    out
}

/// Positions re-rooted below `prefix` (for documents that are items of a JSON array).
fn sub_positions(all: &Positions, prefix: &str) -> Positions {
    let mut p = Positions::default();
    for (pointer, pos) in all.iter() {
        if let Some(rest) = pointer.strip_prefix(prefix) {
            if rest.is_empty() || rest.starts_with('/') {
                p.insert(rest.to_string(), pos);
            }
        }
    }
    p
}

/// Validate one document value: kind, schema, typed decode, semantic checks.
pub fn parse_document(origin: Origin, value: Value, positions: Positions) -> Document {
    let mut doc = Document {
        origin,
        kind: None,
        name: None,
        result: Err(Vec::new()),
        raw: value.clone(),
        positions,
        decoded: None,
    };
    let Some(obj) = value.as_object() else {
        doc.add_problem(
            String::new(),
            "a spec document must be a mapping with apiVersion, kind, metadata and spec".into(),
        );
        return doc;
    };
    doc.name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let kind = match obj.get("kind") {
        None => {
            doc.add_problem(
                "/kind".into(),
                "missing required field `kind` (ClusterSpec or ServiceSpec)".into(),
            );
            return doc;
        }
        Some(Value::String(k)) => match Kind::parse(k) {
            Some(kind) => kind,
            None => {
                doc.add_problem(
                    "/kind".into(),
                    format!("unknown kind `{k}`; expected ClusterSpec or ServiceSpec"),
                );
                return doc;
            }
        },
        Some(other) => {
            doc.add_problem(
                "/kind".into(),
                format!("must be a string (ClusterSpec or ServiceSpec), not {other}"),
            );
            return doc;
        }
    };
    doc.kind = Some(kind);
    let structural = schema::check(kind, &value);
    for e in &structural {
        doc.add_problem(e.pointer.clone(), e.message.clone());
    }
    let root_schema = schema::cached_schema(kind);
    let repair::Repaired {
        value: mut fixed,
        mut replaced,
    } = repair::repair(root_schema, &value, &structural);
    let mut spec = None;
    for _ in 0..=MAX_DECODE_REPAIRS {
        match decode_kind(kind, &fixed) {
            Ok(s) => {
                spec = Some(s);
                break;
            }
            Err((pointer, message)) => {
                // Reported unless it is about a placeholder or inside a field already reported.
                if !replaced.iter().any(|r| repair::on_one_line(r, &pointer)) {
                    doc.add_problem(pointer.clone(), message);
                }
                if replaced.contains(&pointer)
                    || !repair::replace(root_schema, &mut fixed, &pointer)
                {
                    break;
                }
                replaced.push(pointer);
            }
        }
    }
    if let Some(spec) = spec {
        let problems = match &spec {
            Spec::Cluster(c) => validate::cluster(c),
            Spec::Service(s) => validate::service(s),
        };
        for p in problems {
            if !p.read_any_of(&replaced) {
                doc.add_problem(p.pointer, p.message);
            }
        }
        if doc.diagnostics().is_empty() {
            doc.result = Ok(spec);
        } else {
            doc.decoded = Some((spec, replaced));
        }
    }
    doc
}

fn decode_kind(kind: Kind, value: &Value) -> Result<Spec, (String, String)> {
    match kind {
        Kind::ClusterSpec => decode(value).map(|c| Spec::Cluster(Box::new(c))),
        Kind::ServiceSpec => decode(value).map(|s| Spec::Service(Box::new(s))),
    }
}

fn decode<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut pointer = String::new();
        for seg in e.path().iter() {
            use serde_path_to_error::Segment;
            match seg {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } | Segment::Enum { variant: key } => {
                    pointer.push('/');
                    pointer.push_str(&yaml::escape_pointer(key));
                }
                Segment::Unknown => {}
            }
        }
        (pointer, e.inner().to_string())
    })
}

/// Whether a path is a spec file by name: `.yaml`, `.yml` or `.json`.
pub fn is_spec_file_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Every spec file under `dir`, recursively, in sorted order; hidden files and folders skipped.
pub fn spec_files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with('.') {
                continue;
            }
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() && is_spec_file_name(&name) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Load files and folders as `validate` and `sync` see them: a folder contributes every spec file
/// under it, a file is read whatever its name. Cross-document checks run over the whole set.
pub fn load_paths(paths: &[PathBuf]) -> Vec<ParsedFile> {
    let mut files = Vec::new();
    for p in paths {
        let label = p.display().to_string();
        match std::fs::metadata(p) {
            Err(e) => files.push(unreadable(&label, &e)),
            Ok(m) if m.is_dir() => match spec_files_under(p) {
                Ok(list) => files.extend(list.iter().map(|f| read_one(f))),
                Err(e) => files.push(unreadable(&label, &e)),
            },
            Ok(_) => files.push(read_one(p)),
        }
    }
    validate_files(&mut files);
    files
}

/// Run the cross-document checks over every document of `files`.
pub fn validate_files(files: &mut [ParsedFile]) {
    let mut docs: Vec<Document> = files
        .iter_mut()
        .flat_map(|f| std::mem::take(&mut f.documents))
        .collect();
    validate::validate_set(&mut docs);
    let mut it = docs.into_iter().peekable();
    for f in files.iter_mut() {
        while let Some(d) = it.next_if(|d| d.origin.file == f.file) {
            f.documents.push(d);
        }
    }
}

fn read_one(path: &Path) -> ParsedFile {
    let label = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => parse_file(&label, &bytes),
        Err(e) => unreadable(&label, &e),
    }
}

fn unreadable(label: &str, e: &std::io::Error) -> ParsedFile {
    ParsedFile {
        file: label.to_string(),
        documents: Vec::new(),
        errors: vec![Diagnostic::file_level(label, format!("cannot read: {e}"))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: api}\nspec:\n  cluster: prod\n  container: {name: app, image: 'nginx:1', cpu: 256, memory: 512}\n  network: {subnets: [subnet-a]}\n";

    #[test]
    fn a_valid_document_gets_defaults_and_a_stable_digest() {
        let f = parse_file("a.yaml", SERVICE.as_bytes());
        assert!(f.all_diagnostics().is_empty(), "{:?}", f.all_diagnostics());
        let Some(Spec::Service(s)) = f.documents[0].spec() else {
            panic!("not a service")
        };
        assert_eq!(s.spec.desired_count, 1);
        assert_eq!(s.spec.deployment.maximum_percent, 200);
        assert!(s.spec.deployment.circuit_breaker().rollback);
        // Formatting, comments and explicit defaults do not change the digest.
        let reformatted = format!(
            "# comment\n{}  desiredCount: 1\n",
            SERVICE.replace("{name: api}", "\n  name: api")
        );
        let g = parse_file("b.yaml", reformatted.as_bytes());
        assert_eq!(f.documents[0].generation(), g.documents[0].generation());
        let changed = parse_file("c.yaml", format!("{SERVICE}  desiredCount: 3\n").as_bytes());
        assert_ne!(
            f.documents[0].generation(),
            changed.documents[0].generation()
        );
    }

    #[test]
    fn non_utf8_and_oversized_files_are_refused_whole_with_a_reason() {
        let f = parse_file("bin.yaml", &[b'a', b':', b' ', 0xff, 0xfe]);
        assert!(f.errors[0].message.contains("not UTF-8"), "{:?}", f.errors);
        let big = vec![b'#'; MAX_FILE_BYTES + 1];
        let f = parse_file("big.yaml", &big);
        assert!(
            f.errors[0].message.contains("file too large"),
            "{:?}",
            f.errors
        );
    }

    #[test]
    fn json_errors_carry_line_and_column_and_json_fields_are_located() {
        let f = parse_file("a.json", b"{\n  \"kind\": \"ServiceSpec\",\n  oops\n}");
        assert_eq!(f.errors[0].line, Some(3), "{:?}", f.errors);
        let f = parse_file("b.json", b"{\n  \"apiVersion\": \"ecs-operator.io/v1alpha1\",\n  \"kind\": \"ClusterSpec\",\n  \"metadata\": {\"name\": \"x\"},\n  \"spec\": {\"colour\": 1}\n}\n");
        let d = &f.documents[0].diagnostics()[0];
        assert_eq!((d.path.as_str(), d.line), ("spec.colour", Some(5)), "{d:?}");
    }

    #[test]
    fn documents_without_kind_or_with_an_unknown_kind_are_errors_at_kind() {
        let f = parse_file(
            "a.yaml",
            b"metadata: {name: a}\n---\nkind: Deployment\nmetadata: {name: b}\n---\n- a list\n",
        );
        let msgs: Vec<String> = f.all_diagnostics().iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].contains("document 0: kind: missing required field `kind`"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].contains("a.yaml:3:1: document 1: kind: unknown kind `Deployment`"),
            "{msgs:?}"
        );
        assert!(
            msgs[2].contains("document 2: a spec document must be a mapping"),
            "{msgs:?}"
        );
        assert_eq!(f.documents[1].name.as_deref(), Some("b"));
    }

    fn messages(f: &ParsedFile) -> Vec<String> {
        f.all_diagnostics().iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn a_bad_name_a_wrong_type_and_an_unknown_field_are_all_reported_with_their_places() {
        let text = "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: Bad_Name}\nspec:\n  cluster: prod\n  desiredCount: two\n  container: {name: app, image: 'nginx:1', cpu: 256, memory: 512}\n  network: {subnets: [subnet-a]}\n  colour: blue\n";
        let f = parse_file("a.yaml", text.as_bytes());
        let msgs = messages(&f);
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].starts_with(
                "a.yaml:3:12: document 0: metadata.name: `Bad_Name` is not a DNS label"
            ),
            "{msgs:?}"
        );
        assert!(
            msgs[1].starts_with("a.yaml:6:3: document 0: spec.desiredCount: \"two\""),
            "{msgs:?}"
        );
        assert_eq!(
            msgs[2],
            "a.yaml:9:3: document 0: spec.colour: unknown field `colour`"
        );
        // Invalid, yet still known by kind and name.
        assert_eq!(
            f.documents[0].key(),
            Some(SpecKey::new(Kind::ServiceSpec, "Bad_Name"))
        );
    }

    #[test]
    fn cross_field_checks_run_beside_schema_errors_in_line_order() {
        let text = format!(
            "{SERVICE}  desiredCount: -1\n  autoscaling: {{minCapacity: 5, maxCapacity: 3, targetCpuUtilization: 50}}\n  deployment: {{minimumHealthyPercent: 100, maximumPercent: 100, circuitBreaker: {{enable: false}}}}\n"
        );
        let f = parse_file("a.yaml", text.as_bytes());
        let msgs = messages(&f);
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].starts_with("a.yaml:8:3: document 0: spec.desiredCount: -1"),
            "{msgs:?}"
        );
        assert!(
            msgs[1].contains("a.yaml:9:17: document 0: spec.autoscaling.minCapacity: must not exceed maxCapacity (5 > 3)"),
            "{msgs:?}"
        );
        assert!(
            msgs[2].contains(
                "spec.deployment.circuitBreaker.rollback: needs the circuit breaker enabled"
            ),
            "{msgs:?}"
        );
    }

    #[test]
    fn deployment_strategies_are_checked_with_file_line_and_field() {
        // Canary without ingress or infrastructure role, a circuit breaker with it, a canary
        // percent ECS refuses, a managed alarm the spec does not define, a Lambda hook without
        // a role and a pause where ECS cannot pause.
        let text = format!(
            "{SERVICE}  deployment:\n    strategy: Canary\n    circuitBreaker: {{enable: true, rollback: true}}\n    canary: {{percent: 0.05, bakeTimeMinutes: 10}}\n    rollbackOnAlarms: [http5xxPercent]\n    hooks:\n      - {{stages: [POST_TEST_TRAFFIC_SHIFT], lambdaArn: 'arn:aws:lambda:eu-west-1:1:function:check'}}\n      - {{stages: [PRODUCTION_TRAFFIC_SHIFT], pause: true}}\n"
        );
        let f = parse_file("a.yaml", text.as_bytes());
        let msgs = messages(&f);
        let expect = [
            "a.yaml:9:5: document 0: spec.deployment.strategy: Canary needs ingress",
            "a.yaml:10:5: document 0: spec.deployment.circuitBreaker: applies to the Rolling strategy only, not Canary",
            "a.yaml:11:14: document 0: spec.deployment.canary.percent: 0.05 is out of range: ECS takes a multiple of 0.1 from 0.1 to 100",
            "a.yaml:8:3: document 0: spec.deployment.infrastructureRoleArn: is required with Canary",
            "a.yaml:12:24: document 0: spec.deployment.rollbackOnAlarms[0]: names the alarm `http5xxPercent`, which spec.alarms does not define",
            "a.yaml:14:9: document 0: spec.deployment.hooks[0].roleArn: is required with lambdaArn",
            "a.yaml:15:19: document 0: spec.deployment.hooks[1].stages[0]: ECS cannot pause at PRODUCTION_TRAFFIC_SHIFT",
        ];
        for e in expect {
            assert!(msgs.iter().any(|m| m.contains(e)), "{e} not in {msgs:#?}");
        }
        assert_eq!(msgs.len(), expect.len(), "{msgs:#?}");
        // Linear steps below 3%, and Rolling with a field only the others take.
        let text = format!(
            "{SERVICE}  deployment: {{strategy: Linear, linear: {{stepPercent: 2.5}}, infrastructureRoleArn: 'arn:aws:iam::1:role/ecs-infra'}}\n  ingress: {{loadBalancer: lb, hosts: [a.example.com]}}\n"
        );
        let msgs = messages(&parse_file("b.yaml", text.as_bytes()));
        assert!(
            msgs.iter().any(|m| m.contains("spec.deployment.linear.stepPercent: 2.5 is out of range: ECS takes a multiple of 0.1 from 3 to 100")),
            "{msgs:#?}"
        );
        let text =
            format!("{SERVICE}  deployment: {{bakeTimeMinutes: 5, canary: {{percent: 10}}}}\n");
        let msgs = messages(&parse_file("c.yaml", text.as_bytes()));
        assert!(
            msgs.iter().any(|m| m.contains("spec.deployment.bakeTimeMinutes: applies to the BlueGreen, Canary and Linear strategies only")),
            "{msgs:#?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains(
                "spec.deployment.canary: applies to the Canary strategy only (strategy is Rolling)"
            )),
            "{msgs:#?}"
        );
    }

    #[test]
    fn a_complete_canary_deployment_is_valid() {
        let text = format!(
            "{SERVICE}  container: {{name: app, image: 'nginx:1', port: 80, cpu: 256, memory: 512}}\n  ingress: {{loadBalancer: lb, hosts: [a.example.com]}}\n  alarms: {{http5xxPercent: {{threshold: 1}}}}\n  deployment:\n    strategy: Canary\n    canary: {{percent: 5, bakeTimeMinutes: 10}}\n    testTraffic: {{header: x-test-traffic, value: '1'}}\n    infrastructureRoleArn: arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers\n    rollbackOnAlarms: [http5xxPercent]\n    alarmNames: [existing-alarm]\n    hooks:\n      - {{stages: [POST_TEST_TRAFFIC_SHIFT], lambdaArn: 'arn:aws:lambda:eu-west-1:123456789012:function:smoke', roleArn: 'arn:aws:iam::123456789012:role/hooks', timeoutMinutes: 60, onTimeout: Rollback}}\n      - {{stages: [PRE_PRODUCTION_TRAFFIC_SHIFT], pause: true}}\n"
        )
        .replace("  container: {name: app, image: 'nginx:1', cpu: 256, memory: 512}\n", "");
        let f = parse_file("a.yaml", text.as_bytes());
        assert!(f.all_diagnostics().is_empty(), "{:?}", messages(&f));
    }

    #[test]
    fn no_problem_is_reported_about_a_placeholder_that_replaced_a_broken_field() {
        // Each broken field here would, replaced by its default or by nothing, make a check fire:
        // a timeout not below the default interval, secrets without a role, a port missing for
        // ingress, requests per target without ingress. Only the schema errors may be reported.
        let text = "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: api}\nspec:\n  cluster: prod\n  executionRoleArn: 5\n  container:\n    name: app\n    image: 'nginx:1'\n    port: eighty\n    cpu: 256\n    memory: 512\n    secrets: {DB: 'arn:aws:ssm:eu-west-1:1:parameter/db'}\n    healthCheck: {command: [CMD, check], intervalSeconds: often, timeoutSeconds: 40}\n  network: {subnets: [subnet-a]}\n  ingress: {loadBalancer: lb, hosts: [a.example.com]}\n";
        let f = parse_file("a.yaml", text.as_bytes());
        let msgs = messages(&f);
        let paths: Vec<&str> = f.documents[0]
            .diagnostics()
            .iter()
            .map(|d| d.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "spec.executionRoleArn",
                "spec.container.port",
                "spec.container.healthCheck.intervalSeconds",
            ],
            "{msgs:?}"
        );
        let text = format!("{SERVICE}  ingress: yes\n  autoscaling: {{minCapacity: 1, maxCapacity: 2, targetRequestsPerTarget: 100}}\n");
        let f = parse_file("b.yaml", text.as_bytes());
        let msgs = messages(&f);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].contains("spec.ingress"), "{msgs:?}");
    }

    #[test]
    fn bad_logs_and_alarms_are_each_reported_with_file_line_and_field() {
        let text = "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: api}\nspec:\n  cluster: prod\n  container: {name: app, image: 'nginx:1', cpu: 256, memory: 512, logGroup: /ecs/api}\n  network: {subnets: [subnet-a]}\n  logs:\n    retentionDays: 45\n  alarms:\n    notify:\n      emails: [ops@example.com, not-an-email]\n    cpuPercent: {threshold: 150, periods: 5}\n    logErrors: {threshold: 1}\n";
        let f = parse_file("a.yaml", text.as_bytes());
        let msgs = messages(&f);
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert!(
            msgs[0].starts_with("a.yaml:9:5: document 0: spec.logs.retentionDays: 45 is not a retention CloudWatch Logs accepts (one of 1, 3, 5, 7, 14, 30,"),
            "{msgs:?}"
        );
        assert_eq!(
            msgs[1],
            "a.yaml:12:33: document 0: spec.alarms.notify.emails[1]: `not-an-email` is not an email address"
        );
        assert_eq!(
            msgs[2],
            "a.yaml:13:18: document 0: spec.alarms.cpuPercent.threshold: 150 is out of range: a percentage, from 0 to 100"
        );
        assert_eq!(
            msgs[3],
            "a.yaml:14:5: document 0: spec.alarms.logErrors: needs logs.errorPattern (the metric filter whose matches it counts)"
        );
    }

    #[test]
    fn load_balancer_alarms_and_notify_targets_are_checked_too() {
        let text = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec:\n  loadBalancers:\n    - name: pub\n      subnets: [subnet-a, subnet-b]\n      certificate: {domains: [example.com], hostedZone: example.com}\n      alarms:\n        notify: {emails: [ops@example.com], topicArn: 'arn:aws:s3:::bucket'}\n        elb5xxCount: {threshold: -1}\n";
        let f = parse_file("a.yaml", text.as_bytes());
        let msgs = messages(&f);
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(
            msgs[0].contains("spec.loadBalancers[0].alarms.notify.emails: give either emails"),
            "{msgs:?}"
        );
        assert!(msgs[1].contains("spec.loadBalancers[0].alarms.notify.topicArn: `arn:aws:s3:::bucket` is not an SNS topic ARN"), "{msgs:?}");
        assert!(msgs[2].starts_with("a.yaml:11:"), "{msgs:?}");
        assert!(
            msgs[2]
                .contains("spec.loadBalancers[0].alarms.elb5xxCount.threshold: -1 is out of range"),
            "{msgs:?}"
        );
    }

    #[test]
    fn a_bad_owned_auto_scaling_group_is_reported_field_by_field_with_file_and_line() {
        let text = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec:\n  capacityProviders:\n    - name: prod-ec2\n      autoScalingGroup:\n        name: prod-ecs\n        launchTemplate: {name: ecs-hosts, version: newest}\n        subnets: [subnet-a, sub-b]\n        minSize: 5\n        maxSize: 4\n        protectFromScaleIn: false\n      managedScaling: {targetCapacity: 75}\n      managedTerminationProtection: true\n    - name: other-ec2\n      autoScalingGroup: {name: other, launchTemplate: {name: t1}, subnets: [subnet-c], minSize: 0, maxSize: 1, desired: 3}\n    - name: third-ec2\n      autoScalingGroup: 7\n";
        let f = parse_file("a.yaml", text.as_bytes());
        let msgs = messages(&f);
        assert_eq!(
            msgs,
            [
                "a.yaml:9:43: document 0: spec.capacityProviders[0].autoScalingGroup.launchTemplate.version: `newest` is not a launch template version: `$Default`, `$Latest` or a number",
                "a.yaml:10:29: document 0: spec.capacityProviders[0].autoScalingGroup.subnets[1]: `sub-b` is not a subnet id (subnet-...)",
                "a.yaml:11:9: document 0: spec.capacityProviders[0].autoScalingGroup.minSize: must not exceed maxSize (5 > 4)",
                "a.yaml:13:9: document 0: spec.capacityProviders[0].autoScalingGroup.protectFromScaleIn: must be true when managedTerminationProtection is on: ECS can only protect instances that are protected from scale-in",
                "a.yaml:17:56: document 0: spec.capacityProviders[1].autoScalingGroup.launchTemplate.name: `t1` is not a launch template name (3-128 letters, digits and `().-/_`)",
                "a.yaml:17:112: document 0: spec.capacityProviders[1].autoScalingGroup.desired: unknown field `desired`",
                "a.yaml:19:7: document 0: spec.capacityProviders[2].autoScalingGroup: 7 is not of type \"string\", and 7 is not of type \"object\"",
            ],
            "{msgs:#?}"
        );
    }

    #[test]
    fn an_invalid_service_is_still_checked_against_its_cluster() {
        let cluster = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec: {}\n";
        let service = format!(
            "{SERVICE}  desiredCount: many\n  capacityProviderStrategy: [{{capacityProvider: spot-ec2}}]\n"
        );
        let mut files = vec![
            parse_file("c.yaml", cluster.as_bytes()),
            parse_file("s.yaml", service.as_bytes()),
        ];
        validate_files(&mut files);
        assert!(files[0].all_diagnostics().is_empty());
        let msgs = messages(&files[1]);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("spec.desiredCount"), "{msgs:?}");
        assert!(
            msgs[1].contains(
                "`spot-ec2` is not a capacity provider of cluster `prod` (declared: none)"
            ),
            "{msgs:?}"
        );
    }

    #[test]
    fn a_name_defined_twice_invalidates_both_documents() {
        let mut files = vec![
            parse_file("a.yaml", SERVICE.as_bytes()),
            parse_file("b.yaml", SERVICE.as_bytes()),
        ];
        validate_files(&mut files);
        for f in &files {
            let d = &f.documents[0].diagnostics()[0];
            assert!(
                d.message
                    .contains("defined more than once: a.yaml document 0, b.yaml document 0"),
                "{d}"
            );
        }
    }
}

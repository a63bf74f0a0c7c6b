//! The docs held to what they describe: `docs/spec-reference.md` against the JSON Schemas the
//! operator validates with (every field, its type, whether it is required, its default, range and
//! accepted values), and `README.md` and `docs/` linking only to files of the repository.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ecs_operator::spec::schema::json_schema;
use ecs_operator::spec::Kind;
use ecs_operator_tests::workspace_root;
use serde_json::Value;

const REFERENCE: &str = "docs/spec-reference.md";
/// The reference's sections with field tables, and the kinds whose fields each describes.
const SECTIONS: [(&str, &[Kind]); 3] = [
    ("Every document", &[Kind::ClusterSpec, Kind::ServiceSpec]),
    ("ClusterSpec", &[Kind::ClusterSpec]),
    ("ServiceSpec", &[Kind::ServiceSpec]),
];

/// One field of a schema, at its documented path (`spec.loadBalancers[].name`).
#[derive(Debug)]
struct Field {
    path: String,
    /// `string`, `integer`, `boolean`, `object`, `map`, `list of strings`, `list of objects`.
    ty: String,
    required: bool,
    default: Option<Value>,
    /// Bounds of the value (numbers) or of the item count (lists).
    bounds: Vec<u64>,
    values: Vec<String>,
}

fn deref<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        s = root
            .pointer(r.strip_prefix('#').expect("local $ref"))
            .expect("$ref resolves");
    }
    s
}

/// The schema of a field without its `null` alternative (`Option<T>` is `anyOf [T, null]` or
/// `type: [T, "null"]`), with `$ref`s followed.
fn non_null<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
    let s = deref(root, s);
    match s.get("anyOf").and_then(Value::as_array) {
        Some(alts) => deref(
            root,
            alts.iter()
                .find(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .expect("a non-null alternative"),
        ),
        None => s,
    }
}

fn type_name(s: &Value) -> String {
    match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("")
            .to_string(),
        // Enums with documented variants are `oneOf` string constants.
        _ if s.get("oneOf").is_some() => "string".into(),
        _ => String::new(),
    }
}

fn walk(root: &Value, schema: &Value, path: &str, required: bool, out: &mut Vec<Field>) {
    let s = non_null(root, schema);
    let base = type_name(s);
    let items = s.get("items").map(|i| deref(root, i));
    let ty = match (base.as_str(), items) {
        ("object", _) if s.get("properties").is_none() => "map".to_string(),
        ("array", Some(i)) => format!("list of {}s", type_name(i)),
        (t, _) => t.to_string(),
    };
    let mut bounds = Vec::new();
    for key in ["minimum", "maximum", "minItems", "maxItems"] {
        // A lower bound of 0 says nothing (it is every unsigned field's).
        if let Some(n) = s.get(key).and_then(Value::as_u64).filter(|n| *n > 0) {
            bounds.push(n);
        }
    }
    let mut values: Vec<String> = s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    for alt in s
        .get("oneOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = alt.get("const").and_then(Value::as_str) {
            values.push(c.to_string());
        }
    }
    if !path.is_empty() {
        out.push(Field {
            path: path.to_string(),
            ty,
            required,
            // The default is on the referring schema, beside its `$ref`.
            default: schema.get("default").or_else(|| s.get("default")).cloned(),
            bounds,
            values,
        });
    }
    // A field of two forms (`anyOf [string, object]`, such as a name or an object): its
    // fields are those of the object form.
    let object_form = deref(root, schema)
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|a| deref(root, a))
        .find(|a| type_name(a) == "object" && a.get("properties").is_some());
    let (object, prefix) = match (base.as_str(), items, object_form) {
        ("object", _, _) => (s, path.to_string()),
        ("array", Some(i), _) if type_name(i) == "object" => (i, format!("{path}[]")),
        (_, _, Some(o)) => (o, path.to_string()),
        _ => return,
    };
    let required_names: BTreeSet<&str> = object
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, sub) in object
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let child = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        walk(
            root,
            sub,
            &child,
            required_names.contains(name.as_str()),
            out,
        );
    }
}

/// Every field of a kind's schema, recursively (into objects, list items and optional fields).
fn schema_fields(kind: Kind) -> Vec<Field> {
    let root = json_schema(kind);
    let mut out = Vec::new();
    walk(&root, &root, "", true, &mut out);
    out
}

/// One row of a field table: `| `path` | type | required / default | range / values | what |`.
#[derive(Debug)]
struct Row {
    line: usize,
    path: String,
    ty: String,
    required: String,
    range: String,
    what: String,
}

/// The field tables of the reference, per section title.
fn reference_rows(text: &str) -> BTreeMap<String, Vec<Row>> {
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut section = String::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_string();
            continue;
        }
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').collect();
        assert_eq!(
            cells.len(),
            5,
            "{REFERENCE}:{}: a field row has 5 cells: {line}",
            i + 1
        );
        let path = cells[0].trim().trim_matches('`').to_string();
        out.entry(section.clone()).or_default().push(Row {
            line: i + 1,
            path,
            ty: cells[1].trim().to_string(),
            required: cells[2].trim().to_string(),
            range: cells[3].trim().to_string(),
            what: cells[4].trim().to_string(),
        });
    }
    out
}

fn numbers_in(cell: &str) -> BTreeSet<u64> {
    cell.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// What is wrong with `row` as the description of `field`; empty when nothing is.
fn row_problems(field: &Field, row: &Row) -> Vec<String> {
    let at = format!("{REFERENCE}:{}: `{}`", row.line, row.path);
    let mut out = Vec::new();
    if !row.ty.starts_with(&field.ty) {
        out.push(format!(
            "{at}: type says `{}`, the schema `{}`",
            row.ty, field.ty
        ));
    }
    if row.required.starts_with("required") != field.required {
        out.push(format!(
            "{at}: says `{}`, but the field is {}",
            row.required,
            if field.required {
                "required"
            } else {
                "optional"
            }
        ));
    }
    let default = match &field.default {
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        Some(v @ Value::Array(a)) if !a.is_empty() => Some(v.to_string()),
        _ => None,
    };
    if let Some(d) = default {
        if !row.required.contains(&format!("`{d}`")) {
            out.push(format!(
                "{at}: the default `{d}` is not in `{}`",
                row.required
            ));
        }
    }
    let numbers = numbers_in(&row.range);
    for b in &field.bounds {
        if !numbers.contains(b) {
            out.push(format!("{at}: the bound {b} is not in `{}`", row.range));
        }
    }
    for v in &field.values {
        if !row.range.contains(&format!("`{v}`")) {
            out.push(format!(
                "{at}: the accepted value `{v}` is not in `{}`",
                row.range
            ));
        }
    }
    if row.what.is_empty() {
        out.push(format!("{at}: says nothing about what the field does"));
    }
    out
}

#[test]
fn the_spec_reference_describes_every_field_of_both_schemas_and_no_other() {
    let text = std::fs::read_to_string(workspace_root().join(REFERENCE)).expect(REFERENCE);
    let rows = reference_rows(&text);
    let mut problems = Vec::new();
    for (section, _) in SECTIONS {
        if !rows.contains_key(section) {
            problems.push(format!("{REFERENCE}: no field table under `## {section}`"));
        }
    }
    for (section, list) in &rows {
        let mut seen = BTreeSet::new();
        for r in list {
            if !seen.insert(&r.path) {
                problems.push(format!(
                    "{REFERENCE}:{}: `{}` is described twice in `{section}`",
                    r.line, r.path
                ));
            }
        }
        if !SECTIONS.iter().any(|(s, _)| s == section) {
            problems.push(format!(
                "{REFERENCE}: field rows under `## {section}`, which describes no kind"
            ));
        }
    }
    for kind in Kind::ALL {
        let fields = schema_fields(kind);
        let documented: Vec<&Row> = SECTIONS
            .iter()
            .filter(|(_, kinds)| kinds.contains(&kind))
            .flat_map(|(s, _)| rows.get(*s).into_iter().flatten())
            .collect();
        for f in &fields {
            match documented.iter().find(|r| r.path == f.path) {
                None => problems.push(format!(
                    "{REFERENCE} does not describe `{}` of {kind}",
                    f.path
                )),
                Some(row) => problems.extend(row_problems(f, row)),
            }
        }
        for r in &documented {
            if !fields.iter().any(|f| f.path == r.path) {
                problems.push(format!(
                    "{REFERENCE}:{}: `{}` is not a field of {kind}",
                    r.line, r.path
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_reference_check_sees_every_nested_field_and_its_schema_facts() {
    // The walk reaches into list items, optional objects and defaults beside `$ref`s: if it
    // did not, the reference test above could pass while missing fields.
    let service = schema_fields(Kind::ServiceSpec);
    let get = |p: &str| {
        service
            .iter()
            .find(|f| f.path == p)
            .unwrap_or_else(|| panic!("no {p}"))
    };
    let f = get("spec.repository.lifecycle.keepTagged[].tagPrefixes");
    assert_eq!((f.ty.as_str(), f.required), ("list of strings", true));
    let f = get("spec.ingress.healthCheck.matcher");
    assert_eq!(f.default, Some(Value::String("200".into())));
    let f = get("spec.deletionPolicy");
    assert_eq!(f.values, ["Retain", "Delete"]);
    assert_eq!(f.default, Some(Value::String("Delete".into())));
    let f = get("spec.container.port");
    assert_eq!((f.required, f.bounds.as_slice()), (false, &[1, 65535][..]));
    assert_eq!(get("spec.container.environment").ty, "map");
    let cluster = schema_fields(Kind::ClusterSpec);
    assert!(cluster
        .iter()
        .any(|f| f.path == "spec.capacityProviders[].managedScaling.targetCapacity" && f.required));
    // And a row that contradicts its field is reported.
    let row = Row {
        line: 1,
        path: "spec.container.port".into(),
        ty: "string".into(),
        required: "required".into(),
        range: "1-100".into(),
        what: String::new(),
    };
    assert_eq!(row_problems(get("spec.container.port"), &row).len(), 4);
}

/// The targets of the Markdown links (`[text](target)`) in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
            rest = &rest[end..];
        }
    }
    out
}

/// The anchors GitHub gives a Markdown file's headings: lowercase, punctuation dropped, spaces
/// as `-`.
fn heading_anchors(text: &str) -> BTreeSet<String> {
    let mut in_code = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                in_code = !in_code;
            }
            !in_code && l.starts_with('#')
        })
        .filter_map(|l| l.trim_start_matches('#').strip_prefix(' '))
        .map(|title| {
            title
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn headings_get_githubs_anchors() {
    let anchors = heading_anchors(
        "# Title\n## Checks beyond the schema\n```sh\n# a comment\n```\n### `run`\ntext # not\n",
    );
    assert_eq!(
        anchors,
        ["title", "checks-beyond-the-schema", "run"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

#[test]
fn the_readme_and_docs_link_only_to_files_of_the_repository() {
    let root = workspace_root();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let canonical_root = root.canonicalize().expect("root");
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        let name = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .display()
            .to_string();
        for outside in ["../shared", "DESIGN.md", "CONTRACT.md"] {
            if text.contains(outside) {
                problems.push(format!(
                    "{name} mentions `{outside}`, which is not in the repository"
                ));
            }
        }
        for target in link_targets(&text) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (path, fragment) = match target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap_or(Path::new(".")).join(path)
            };
            match resolved.canonicalize() {
                Ok(p) if p.starts_with(&canonical_root) => {
                    if let Some(f) = fragment.filter(|_| p.extension().is_some_and(|e| e == "md")) {
                        let linked = std::fs::read_to_string(&p).unwrap_or_default();
                        if !heading_anchors(&linked).contains(f) {
                            problems.push(format!("{name}: `{target}`: no heading `#{f}` there"));
                        }
                    }
                }
                Ok(_) => problems.push(format!("{name}: `{target}` is outside the repository")),
                Err(_) => problems.push(format!("{name}: `{target}` does not exist")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

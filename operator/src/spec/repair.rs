//! Broken fields -> placeholders, so that the semantic checks also run on a document with schema
//! errors.
//!
//! A document with a wrong type, a missing field or an unknown field cannot be decoded into its
//! typed spec, yet the checks of `validate.rs` (DNS-label names, cross-field rules) still have
//! something to say about its other fields. [`repair`] makes a copy of the document in which every
//! unknown field is removed and every broken or missing field holds a placeholder that its schema
//! types (the field's default, else `null` when the field is optional, else the smallest value of
//! its type), and lists the pointers it replaced.
//!
//! Invariants:
//! - the copy differs from the document only at the listed pointers and at removed unknown fields;
//! - a placeholder is never reported: the loader keeps a semantic problem of a repaired document
//!   only when none of the fields its check read was replaced (see
//!   [`Problem::read_any_of`](super::validate::Problem::read_any_of) and [`on_one_line`]).
//!
//! Pure functions over `serde_json` values and the generated JSON Schema.

use serde_json::{Map, Number, Value};

use super::schema::{SchemaError, SchemaErrorKind};

/// Nesting beyond which placeholders stop descending (the spec types are far shallower).
const MAX_DEPTH: usize = 32;

/// A document with its broken fields replaced, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Repaired {
    pub value: Value,
    /// JSON Pointers of the fields that now hold a placeholder, ancestors before descendants.
    pub replaced: Vec<String>,
}

/// Whether `a` and `b` lie on one line of descent: one is the other, or inside it.
pub fn on_one_line(a: &str, b: &str) -> bool {
    is_ancestor_or_self(a, b) || is_ancestor_or_self(b, a)
}

/// Whether pointer `ancestor` is `pointer` or one of its ancestors (`/spec` of `/spec/cluster`,
/// but not of `/specs`).
fn is_ancestor_or_self(ancestor: &str, pointer: &str) -> bool {
    match pointer.strip_prefix(ancestor) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The document with every field named by `errors` repaired: unknown fields removed, every other
/// error's field replaced by a placeholder from `schema` (the document's root schema). An error
/// inside a field already replaced is skipped; an error at the document root is not repairable
/// and is skipped too (the typed decode will then fail and no semantic check runs).
pub fn repair(schema: &Value, document: &Value, errors: &[SchemaError]) -> Repaired {
    let mut sorted: Vec<&SchemaError> = errors.iter().collect();
    // Shorter pointers first, so that an ancestor is replaced before anything inside it.
    sorted.sort_by(|a, b| {
        depth(&a.pointer)
            .cmp(&depth(&b.pointer))
            .then(a.pointer.cmp(&b.pointer))
    });
    let mut out = Repaired {
        value: document.clone(),
        replaced: Vec::new(),
    };
    for e in sorted {
        if out
            .replaced
            .iter()
            .any(|r| is_ancestor_or_self(r, &e.pointer))
        {
            continue;
        }
        match e.kind {
            SchemaErrorKind::UnknownField => {
                remove(&mut out.value, &e.pointer);
            }
            SchemaErrorKind::MissingField | SchemaErrorKind::BadValue => {
                if replace(schema, &mut out.value, &e.pointer) {
                    out.replaced.push(e.pointer.clone());
                }
            }
        }
    }
    out
}

fn depth(pointer: &str) -> usize {
    pointer.matches('/').count()
}

/// Put the placeholder of `pointer`'s schema at `pointer` (adding the field to its object when
/// absent). False when the pointer is the root, its parent does not exist, or the schema does not
/// describe it.
pub fn replace(schema: &Value, value: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    let Some(field_schema) = subschema(schema, pointer) else {
        return false;
    };
    let placeholder = placeholder(schema, field_schema, 0);
    let key = unescape(last);
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, placeholder);
            true
        }
        Some(Value::Array(items)) => match key.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items[i] = placeholder;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn remove(value: &mut Value, pointer: &str) {
    if let Some((parent, last)) = pointer.rsplit_once('/') {
        if let Some(Value::Object(map)) = value.pointer_mut(parent) {
            map.remove(&unescape(last));
        }
    }
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Follow `$ref`s (local ones, `#/...`) to the schema they name.
fn deref<'a>(root: &'a Value, mut schema: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => schema = target,
                None => break,
            },
            None => break,
        }
    }
    schema
}

/// The schema of the value at `pointer` in a document described by `root`.
pub fn subschema<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut schema = root;
    for seg in pointer.split('/').skip(1) {
        schema = step(root, schema, &unescape(seg), 0)?;
    }
    Some(schema)
}

fn step<'a>(root: &'a Value, schema: &'a Value, segment: &str, depth: usize) -> Option<&'a Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let s = deref(root, schema);
    if let Some(p) = s.get("properties").and_then(|p| p.get(segment)) {
        return Some(p);
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            return Some(items);
        }
    }
    if let Some(extra) = s.get("additionalProperties").filter(|a| a.is_object()) {
        return Some(extra);
    }
    ["anyOf", "oneOf", "allOf"]
        .iter()
        .filter_map(|k| s.get(*k).and_then(Value::as_array))
        .flatten()
        .find_map(|alt| step(root, alt, segment, depth + 1))
}

/// A value `schema` types: its default, its constant or first enum value, `null` when it admits
/// null, else the smallest value of its type (an object with placeholders for its required
/// properties).
pub fn placeholder(root: &Value, schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    if let Some(v) = schema.get("default").or_else(|| schema.get("const")) {
        return v.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if schema.get("$ref").is_some() {
        let target = deref(root, schema);
        if !std::ptr::eq(target, schema) {
            return placeholder(root, target, depth + 1);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            if alts.iter().any(admits_null) {
                return Value::Null;
            }
            if let Some(first) = alts.first() {
                return placeholder(root, first, depth + 1);
            }
        }
    }
    if admits_null(schema) {
        return Value::Null;
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(types)) => types.iter().find_map(Value::as_str).unwrap_or(""),
        _ => "",
    };
    match ty {
        "string" => Value::String(String::new()),
        "integer" | "number" => Value::Number(
            schema
                .get("minimum")
                .and_then(Value::as_u64)
                .map(Number::from)
                .unwrap_or_else(|| Number::from(0)),
        ),
        "boolean" => Value::Bool(false),
        "array" => Value::Array(Vec::new()),
        "object" => {
            let mut map = Map::new();
            let required = schema.get("required").and_then(Value::as_array);
            for name in required.into_iter().flatten().filter_map(Value::as_str) {
                if let Some(p) = schema.get("properties").and_then(|p| p.get(name)) {
                    map.insert(name.to_string(), placeholder(root, p, depth + 1));
                }
            }
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

fn admits_null(schema: &Value) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::schema::{check, json_schema};
    use crate::spec::{ClusterSpec, Kind, ServiceSpec};
    use serde_json::json;

    fn service() -> Value {
        json!({
            "apiVersion": "ecs-operator.io/v1alpha1",
            "kind": "ServiceSpec",
            "metadata": {"name": "api"},
            "spec": {
                "cluster": "prod",
                "container": {"name": "app", "image": "nginx:1", "cpu": 256, "memory": 512},
                "network": {"subnets": ["subnet-a"]}
            }
        })
    }

    fn repaired(kind: Kind, doc: &Value) -> Repaired {
        let schema = json_schema(kind);
        repair(&schema, doc, &check(kind, doc))
    }

    #[test]
    fn pointers_are_on_one_line_only_along_descent() {
        assert!(on_one_line("/spec", "/spec/cluster"));
        assert!(on_one_line("/spec/cluster", "/spec"));
        assert!(on_one_line("/spec/cluster", "/spec/cluster"));
        assert!(!on_one_line("/spec/cluster", "/spec/clusterName"));
        assert!(!on_one_line(
            "/spec/container/cpu",
            "/spec/container/memory"
        ));
        assert!(on_one_line("", "/metadata"));
    }

    #[test]
    fn wrong_types_missing_fields_and_unknown_fields_are_repaired_into_a_decodable_spec() {
        let mut doc = service();
        doc["spec"]["desiredCount"] = json!("two");
        doc["spec"]["container"]["cpu"] = json!("lots");
        doc["spec"]["container"]
            .as_object_mut()
            .unwrap()
            .remove("image");
        doc["spec"]["ingres"] = json!({"hosts": ["a.example.com"]});
        doc["spec"]["deployment"] = json!({"maximumPercent": 50});
        let r = repaired(Kind::ServiceSpec, &doc);
        assert_eq!(
            r.replaced,
            [
                "/spec/desiredCount",
                "/spec/container/cpu",
                "/spec/container/image",
                "/spec/deployment/maximumPercent",
            ]
        );
        let spec: ServiceSpec = serde_json::from_value(r.value.clone()).expect("decodes");
        assert_eq!(spec.spec.desired_count, 1, "the default");
        assert_eq!(spec.spec.container.cpu, 128, "the schema's minimum");
        assert_eq!(spec.spec.container.image, "");
        assert_eq!(spec.spec.deployment.maximum_percent, 200);
        assert!(r.value["spec"].get("ingres").is_none());
        // Everything else is as written.
        assert_eq!(spec.spec.container.memory, 512);
        assert_eq!(spec.spec.network.subnets, ["subnet-a"]);
    }

    #[test]
    fn a_broken_object_becomes_its_placeholder_and_errors_inside_it_are_skipped() {
        let mut doc = json!({
            "apiVersion": "ecs-operator.io/v1alpha1",
            "kind": "ClusterSpec",
            "metadata": {"name": "prod"},
            "spec": {
                "loadBalancers": [{"name": "a", "subnets": "subnet-a", "certificate": 7}],
                "capacityProviders": [{"name": "cp", "autoScalingGroup": "asg",
                                       "managedScaling": {"targetCapacity": "high"}}],
                "deletionPolicy": "Sometimes"
            }
        });
        let r = repaired(Kind::ClusterSpec, &doc);
        assert!(
            r.replaced
                .contains(&"/spec/loadBalancers/0/certificate".to_string()),
            "{:?}",
            r.replaced
        );
        let spec: ClusterSpec = serde_json::from_value(r.value.clone()).expect("decodes");
        assert_eq!(
            spec.spec.load_balancers[0].certificate.domains,
            Vec::<String>::new()
        );
        assert_eq!(
            spec.spec.deletion_policy,
            crate::spec::DeletionPolicy::Retain
        );
        // A whole spec of the wrong type is replaced once, with its required fields.
        doc["spec"] = json!(5);
        let r = repaired(Kind::ClusterSpec, &doc);
        assert_eq!(r.replaced, ["/spec"]);
        serde_json::from_value::<ClusterSpec>(r.value).expect("decodes");
    }

    #[test]
    fn optional_fields_become_null_and_enums_their_first_value() {
        let schema = json_schema(Kind::ServiceSpec);
        let at = |p: &str| placeholder(&schema, subschema(&schema, p).expect(p), 0);
        assert_eq!(at("/spec/ingress"), Value::Null);
        assert_eq!(at("/spec/container/port"), Value::Null);
        assert_eq!(at("/spec/placement/strategy/0/type"), json!("spread"));
        assert_eq!(at("/metadata/labels/team"), json!(""));
        assert_eq!(at("/spec/network"), json!({"subnets": []}));
        assert!(subschema(&schema, "/spec/nothing").is_none());
    }
}

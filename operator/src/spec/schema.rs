//! JSON Schemas generated from the spec types, and the structural check that uses them.
//!
//! The schemas are the single description of the document shape: `ecs-operator schema` prints
//! them, `crds/` holds them checked in (a test fails when stale), editors use them through the
//! `# yaml-language-server: $schema=` line, and [`check`] validates every document against them
//! before decoding, which yields all structural errors of a document at once (unknown fields,
//! wrong types, missing fields, out-of-range values), each with its JSON Pointer.

use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use super::types::{ClusterSpec, ServiceSpec, API_VERSION};
use super::Kind;

/// The JSON Schema (draft 2020-12) of one kind's documents.
pub fn json_schema(kind: Kind) -> Value {
    let mut schema = match kind {
        Kind::ClusterSpec => schemars::schema_for!(ClusterSpec),
        Kind::ServiceSpec => schemars::schema_for!(ServiceSpec),
    };
    schema.insert("$id".into(), json!(schema_id(kind)));
    schema.to_value()
}

/// The `$id` of a kind's schema, also its file name under `crds/`.
pub fn schema_id(kind: Kind) -> String {
    format!("{}.schema.json", kind.as_str().to_lowercase())
}

/// A Kubernetes CustomResourceDefinition wrapping the kind's schema (OpenAPI v3, all references
/// inlined), for tools that understand CRDs.
pub fn crd(kind: Kind) -> Value {
    let mut settings = SchemaSettings::openapi3();
    settings.inline_subschemas = true;
    settings.meta_schema = None;
    let generator = settings.into_generator();
    let schema = match kind {
        Kind::ClusterSpec => generator.into_root_schema_for::<ClusterSpec>(),
        Kind::ServiceSpec => generator.into_root_schema_for::<ServiceSpec>(),
    };
    let mut open_api = schema.to_value();
    if let Some(o) = open_api.as_object_mut() {
        o.remove("title");
        o.remove("$schema");
        o.remove("components");
    }
    let (group, version) = API_VERSION
        .split_once('/')
        .expect("API_VERSION is group/version");
    let plural = format!("{}s", kind.as_str().to_lowercase());
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {
            "group": group,
            "names": {"kind": kind.as_str(), "plural": plural, "singular": kind.as_str().to_lowercase()},
            "scope": "Namespaced",
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": open_api}
            }]
        }
    })
}

/// A structural error: where (JSON Pointer), what, and which sort of error it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub pointer: String,
    pub message: String,
    pub kind: SchemaErrorKind,
}

/// What a structural error says about the field at its pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaErrorKind {
    /// The field is not in the schema.
    UnknownField,
    /// A required field is absent.
    MissingField,
    /// The field is present with a value its schema refuses (type, range, enum, length...).
    BadValue,
}

/// The kind's schema as a value, built once (for [`super::repair`]).
pub fn cached_schema(kind: Kind) -> &'static Value {
    static CLUSTER: OnceLock<Value> = OnceLock::new();
    static SERVICE: OnceLock<Value> = OnceLock::new();
    let cell = match kind {
        Kind::ClusterSpec => &CLUSTER,
        Kind::ServiceSpec => &SERVICE,
    };
    cell.get_or_init(|| json_schema(kind))
}

fn validator(kind: Kind) -> &'static jsonschema::Validator {
    static CLUSTER: OnceLock<jsonschema::Validator> = OnceLock::new();
    static SERVICE: OnceLock<jsonschema::Validator> = OnceLock::new();
    let cell = match kind {
        Kind::ClusterSpec => &CLUSTER,
        Kind::ServiceSpec => &SERVICE,
    };
    cell.get_or_init(|| {
        jsonschema::validator_for(cached_schema(kind))
            .expect("generated schemas are valid JSON Schema")
    })
}

/// Every structural error of `document` against its kind's schema.
pub fn check(kind: Kind, document: &Value) -> Vec<SchemaError> {
    let mut out = Vec::new();
    for err in validator(kind).iter_errors(document) {
        collect(&err, &mut out);
    }
    out
}

fn collect(err: &jsonschema::ValidationError<'_>, out: &mut Vec<SchemaError>) {
    use jsonschema::error::ValidationErrorKind as K;
    let pointer = err.instance_path().as_str().to_string();
    match err.kind() {
        K::AdditionalProperties { unexpected } => {
            for field in unexpected {
                out.push(SchemaError {
                    pointer: format!("{pointer}/{}", super::yaml::escape_pointer(field)),
                    message: format!("unknown field `{field}`"),
                    kind: SchemaErrorKind::UnknownField,
                });
            }
        }
        K::Required { property } => {
            let name = property
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| property.to_string());
            out.push(SchemaError {
                pointer: format!("{pointer}/{}", super::yaml::escape_pointer(&name)),
                message: format!("missing required field `{name}`"),
                kind: SchemaErrorKind::MissingField,
            });
        }
        // An optional field is `anyOf [T, null]`, and a field of two forms (a name or an
        // object) `anyOf [string, object]`. A value that is there was meant as the alternative
        // of its own type: report what is wrong inside it, where it is, rather than "not valid
        // under any of the schemas".
        K::AnyOf { context } if !err.instance().is_null() => {
            let present: Vec<&Vec<jsonschema::ValidationError<'static>>> =
                context.iter().filter(|alt| !only_not_null(alt)).collect();
            let meant: Vec<_> = match present.as_slice() {
                [_] => present.clone(),
                _ => present
                    .iter()
                    .copied()
                    .filter(|alt| !only_wrong_type(alt, &pointer))
                    .collect(),
            };
            match meant.as_slice() {
                [errors] => errors.iter().for_each(|e| collect(e, out)),
                // Of none of the forms: say each form's complaint.
                [] => out.push(SchemaError {
                    pointer,
                    message: present
                        .iter()
                        .flat_map(|alt| alt.iter().map(|e| e.to_string()))
                        .collect::<Vec<_>>()
                        .join(", and "),
                    kind: SchemaErrorKind::BadValue,
                }),
                _ => out.push(SchemaError {
                    pointer,
                    message: err.to_string(),
                    kind: SchemaErrorKind::BadValue,
                }),
            }
        }
        _ => out.push(SchemaError {
            pointer,
            message: err.to_string(),
            kind: SchemaErrorKind::BadValue,
        }),
    }
}

/// Whether an alternative's errors say only that the value has another type (the arm of a
/// two-form field that the value was not meant as).
/// (`at`: the pointer of the value itself; a type error deeper inside is a real finding.)
fn only_wrong_type(errors: &[jsonschema::ValidationError<'_>], at: &str) -> bool {
    use jsonschema::error::ValidationErrorKind as K;
    matches!(errors, [e] if matches!(e.kind(), K::Type { .. }) && e.instance_path().as_str() == at)
}

/// Whether an alternative's errors say only "not null" (the `null` arm of an optional field).
fn only_not_null(errors: &[jsonschema::ValidationError<'_>]) -> bool {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    matches!(errors, [e] if matches!(e.kind(), K::Type { kind: TypeKind::Single(jsonschema::JsonType::Null) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_forbid_unknown_fields_and_carry_ranges() {
        let s = json_schema(Kind::ServiceSpec).to_string();
        assert!(s.contains("\"additionalProperties\":false"));
        assert!(s.contains("\"maximum\":65535"));
        assert!(s.contains("\"maximum\":50000"));
    }

    #[test]
    fn an_optional_object_with_a_bad_field_is_reported_at_that_field() {
        let doc = json!({
            "apiVersion": "ecs-operator.io/v1alpha1",
            "kind": "ServiceSpec",
            "metadata": {"name": "a"},
            "spec": {
                "cluster": "prod",
                "container": {"name": "app", "image": "x:1", "cpu": 256, "memory": 512,
                              "healthCheck": {"command": ["CMD", "true"], "retries": "many"}},
                "network": {"subnets": ["subnet-a"]},
                "ingress": "yes",
            }
        });
        let errs = check(Kind::ServiceSpec, &doc);
        let found: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.pointer.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/spec/container/healthCheck/retries",
                    "\"many\" is not of type \"integer\""
                ),
                ("/spec/ingress", "\"yes\" is not of type \"object\""),
            ],
            "{errs:?}"
        );
    }

    #[test]
    fn check_reports_every_structural_error_with_its_pointer() {
        let doc = json!({
            "apiVersion": "ecs-operator.io/v1alpha1",
            "kind": "ServiceSpec",
            "metadata": {"name": "a", "colour": "red"},
            "spec": {
                "cluster": "prod",
                "container": {"name": "app", "image": "x:1", "port": 70000, "cpu": "lots", "memory": 512},
            }
        });
        let errs = check(Kind::ServiceSpec, &doc);
        let pointers: Vec<&str> = errs.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/metadata/colour"), "{errs:?}");
        assert!(pointers.contains(&"/spec/container/port"), "{errs:?}");
        assert!(pointers.contains(&"/spec/container/cpu"), "{errs:?}");
        assert!(pointers.contains(&"/spec/network"), "{errs:?}");
        assert_eq!(errs.len(), 4, "{errs:?}");
    }
}

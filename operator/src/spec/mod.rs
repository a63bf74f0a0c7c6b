//! Spec documents: the types (described field by field in docs/spec-reference.md), how files
//! become typed specs, validation, digests and the JSON Schemas.
//!
//! The pipeline for one file is `bytes -> documents (yaml.rs) -> schema check (schema.rs) ->
//! typed decode -> semantic checks (validate.rs)`, and for a set of files `-> cross-document
//! checks (validate::validate_set)`. Every step collects all of its errors instead of stopping at
//! the first, and every error names the file, document index, field path and (YAML) line:column.
//! A document with schema errors still gets its semantic checks: its broken fields are replaced
//! by placeholders (repair.rs) and only the problems that read none of them are reported.

pub mod diagnostic;
pub mod load;
pub mod placement;
pub mod repair;
pub mod schema;
pub mod types;
pub mod validate;
pub mod yaml;

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use diagnostic::Diagnostic;
pub use load::{load_paths, parse_file, Document, Origin, ParsedFile};
pub use placement::{placement_of, Placement};
pub use types::*;

/// The two kinds of spec document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    ClusterSpec,
    ServiceSpec,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::ClusterSpec, Kind::ServiceSpec];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ClusterSpec => "ClusterSpec",
            Kind::ServiceSpec => "ServiceSpec",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The valid specs of a store, by key (what a reconcile may look at besides its own spec).
pub type ValidSpecs = std::sync::Arc<std::collections::BTreeMap<SpecKey, std::sync::Arc<Spec>>>;

/// The identity of a spec in a store: `Kind/name`. Names are unique per kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpecKey {
    pub kind: Kind,
    pub name: String,
}

impl SpecKey {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        SpecKey {
            kind,
            name: name.into(),
        }
    }

    /// Parse `Kind/name`.
    pub fn parse(s: &str) -> Option<SpecKey> {
        let (k, n) = s.split_once('/')?;
        Some(SpecKey::new(Kind::parse(k)?, n))
    }
}

impl fmt::Display for SpecKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// A valid spec document of either kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Spec {
    Cluster(Box<ClusterSpec>),
    Service(Box<ServiceSpec>),
}

impl Spec {
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Cluster(_) => Kind::ClusterSpec,
            Spec::Service(_) => Kind::ServiceSpec,
        }
    }

    pub fn metadata(&self) -> &Metadata {
        match self {
            Spec::Cluster(c) => &c.metadata,
            Spec::Service(s) => &s.metadata,
        }
    }

    pub fn name(&self) -> &str {
        &self.metadata().name
    }

    pub fn key(&self) -> SpecKey {
        SpecKey::new(self.kind(), self.name())
    }

    /// The canonical JSON of the spec: defaults filled in, object keys sorted, no whitespace.
    /// Two documents that mean the same thing have the same canonical JSON.
    pub fn canonical_json(&self) -> String {
        let value = serde_json::to_value(self).expect("spec types always serialise");
        canonical_json(&value)
    }

    /// The spec's `generation`: the hex sha256 of its canonical JSON.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }
}

/// The ClusterSpec the ServiceSpec `svc` names (`spec.cluster`), among `specs`; `None` when it
/// is not there (an invalid spec is not among the valid ones).
pub fn cluster_spec_of<'s>(
    svc: &ServiceSpec,
    specs: &'s std::collections::BTreeMap<SpecKey, std::sync::Arc<Spec>>,
) -> Option<&'s ClusterSpec> {
    match specs
        .get(&SpecKey::new(Kind::ClusterSpec, svc.spec.cluster.clone()))?
        .as_ref()
    {
        Spec::Cluster(c) => Some(c.as_ref()),
        Spec::Service(_) => None,
    }
}

/// Serialise a JSON value with object keys sorted at every level and no insignificant whitespace.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(value)).expect("JSON values always serialise")
}

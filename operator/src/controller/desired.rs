//! The desired cache: the latest complete listing of the store, parsed and validated.
//!
//! Invariant: a key maps to its valid spec, or to every diagnostic of its document; a name
//! defined twice keeps the first invalid document, so the key reports it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::spec::{Spec, SpecKey};
use crate::store::Listing;

/// One spec of the desired cache, valid or not.
#[derive(Debug, Clone)]
pub struct DesiredEntry {
    pub key: SpecKey,
    /// The digest of the spec as it is in the store now.
    pub generation: String,
    /// Where it came from (`file document N`).
    pub origin: String,
    /// The valid spec, or every diagnostic (one per line).
    pub spec: Result<Arc<Spec>, String>,
}

/// The desired state: every spec of the latest complete listing.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub entries: BTreeMap<SpecKey, DesiredEntry>,
    /// Problems that belong to no spec (a file that does not parse, a document without a name).
    pub unattributed: Vec<String>,
}

impl Desired {
    /// Parse and validate a listing (cross-document checks included).
    pub fn from_listing(listing: &Listing) -> Desired {
        let mut desired = Desired::default();
        for file in listing.validated_files() {
            desired
                .unattributed
                .extend(file.errors.iter().map(|e| e.to_string()));
            for doc in &file.documents {
                let Some(key) = doc.key() else {
                    desired
                        .unattributed
                        .extend(doc.diagnostics().iter().map(|d| d.to_string()));
                    continue;
                };
                let spec = match &doc.result {
                    Ok(spec) => Ok(Arc::new(spec.clone())),
                    Err(diags) => Err(diags
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")),
                };
                let entry = DesiredEntry {
                    key: key.clone(),
                    generation: doc.generation(),
                    origin: doc.origin.to_string(),
                    spec,
                };
                // A name defined twice is already invalid in both documents (validate_set);
                // keep the first invalid one so the key reports it.
                match desired.entries.get(&key) {
                    Some(existing) if existing.spec.is_err() => {}
                    _ => {
                        desired.entries.insert(key, entry);
                    }
                }
            }
        }
        desired
    }

    /// The valid specs, by key.
    pub fn valid(&self) -> BTreeMap<SpecKey, Arc<Spec>> {
        self.entries
            .iter()
            .filter_map(|(k, e)| e.spec.as_ref().ok().map(|s| (k.clone(), s.clone())))
            .collect()
    }
}

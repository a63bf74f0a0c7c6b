//! Ownership (README "Safety"): every resource the operator creates carries
//! `ecs-operator.io/managed-by=<instance>` and `ecs-operator.io/owner=<Kind>/<name>`.

use std::collections::BTreeMap;

use crate::spec::SpecKey;
use crate::{MANAGED_BY_TAG, OWNER_TAG};

/// A map as the request tags of an SDK whose tag builder checks its key and value (ECR,
/// SNS): `build(key, value)` makes one.
pub fn request_tags<T, E: std::fmt::Display>(
    tags: &BTreeMap<String, String>,
    build: impl Fn(&str, &str) -> Result<T, E>,
) -> Result<Vec<T>, crate::resources::ResourceError> {
    tags.iter()
        .map(|(k, v)| build(k, v).map_err(crate::resources::ResourceError::request))
        .collect()
}

/// Tags as an SDK answer lists them, as a map (an absent key or value reads as empty).
pub fn map_of<'a, K, V>(tags: impl IntoIterator<Item = (K, V)>) -> BTreeMap<String, String>
where
    K: Into<Option<&'a str>>,
    V: Into<Option<&'a str>>,
{
    tags.into_iter()
        .map(|(k, v)| {
            let k = k.into().unwrap_or_default().to_string();
            (k, v.into().unwrap_or_default().to_string())
        })
        .collect()
}

/// The tag a released resource carries instead of the ownership tags
/// (`deletionPolicy: Retain`): `ecs-operator.io/released-from=<Kind/name>`.
pub const RELEASED_TAG: &str = "ecs-operator.io/released-from";

/// Who owns a resource, read from its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// Both tags name this instance and this spec.
    Ours,
    /// Tagged by this instance for another spec (a name clash between specs).
    OtherSpec(String),
    /// Not ours (no tags, or another operator instance).
    Foreign,
}

/// The two ownership tags for `key`.
pub fn owner_tags(instance: &str, key: &SpecKey) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_TAG.to_string(), instance.to_string()),
        (OWNER_TAG.to_string(), key.to_string()),
    ])
}

/// Classify a resource by its tags.
pub fn ownership(instance: &str, key: &SpecKey, tags: &BTreeMap<String, String>) -> Ownership {
    match (tags.get(MANAGED_BY_TAG), tags.get(OWNER_TAG)) {
        (Some(m), Some(o)) if m == instance && *o == key.to_string() => Ownership::Ours,
        (Some(m), Some(o)) if m == instance => Ownership::OtherSpec(o.clone()),
        _ => Ownership::Foreign,
    }
}

/// Ownership tags missing from `tags` (what an adoption or a repair must add).
pub fn missing_owner_tags(
    instance: &str,
    key: &SpecKey,
    tags: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    owner_tags(instance, key)
        .into_iter()
        .filter(|(k, v)| tags.get(k) != Some(v))
        .collect()
}

/// The owner that `tags` name, if they carry both ownership tags with `instance`'s value.
pub fn owner_of(instance: &str, tags: &BTreeMap<String, String>) -> Option<SpecKey> {
    if tags.get(MANAGED_BY_TAG).map(String::as_str) != Some(instance) {
        return None;
    }
    SpecKey::parse(tags.get(OWNER_TAG)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    #[test]
    fn only_both_tags_naming_this_instance_and_spec_mean_ours() {
        let key = SpecKey::new(Kind::ServiceSpec, "web");
        let ours = owner_tags("ops", &key);
        assert_eq!(ownership("ops", &key, &ours), Ownership::Ours);
        assert_eq!(ownership("other", &key, &ours), Ownership::Foreign);
        let other = SpecKey::new(Kind::ServiceSpec, "api");
        assert_eq!(
            ownership("ops", &other, &ours),
            Ownership::OtherSpec("ServiceSpec/web".into())
        );
        let mut half = ours.clone();
        half.remove(OWNER_TAG);
        assert_eq!(ownership("ops", &key, &half), Ownership::Foreign);
        assert_eq!(missing_owner_tags("ops", &key, &half).len(), 1);
    }

    #[test]
    fn listed_tags_read_as_a_map_with_absent_parts_empty() {
        let listed = [(Some("a"), Some("1")), (Some("b"), None)];
        let map = map_of(listed);
        assert_eq!(map["a"], "1");
        assert_eq!(map["b"], "");
        assert_eq!(map_of([("k", "v")])["k"], "v");
    }
}

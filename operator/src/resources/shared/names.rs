//! Deterministic AWS names derived from spec names.
//!
//! Invariant: the same input always gives the same name, every name fits the limit it is given,
//! and two different inputs that would collide after truncation differ by a hash suffix.

use sha2::{Digest, Sha256};

/// ALB and target group names: at most 32 characters.
pub const ELB_NAME_MAX: usize = 32;

/// The first `n` hex digits of the sha256 of `s`.
pub fn short_hash(s: &str, n: usize) -> String {
    let mut h = hex::encode(Sha256::digest(s.as_bytes()));
    h.truncate(n);
    h
}

/// `base` when it fits in `max` characters of letters, digits and `-` (not at either end);
/// otherwise the longest fitting prefix of its cleaned form, `-`, and a 6-digit hash of `base`.
pub fn bounded_name(base: &str, max: usize) -> String {
    let clean: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-').to_string();
    if clean == base && !base.is_empty() && base.len() <= max {
        return base.to_string();
    }
    let hash = short_hash(base, 6);
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix: String = clean.chars().take(keep).collect();
    let prefix = prefix.trim_end_matches('-');
    if prefix.is_empty() {
        hash
    } else {
        format!("{prefix}-{hash}")
    }
}

/// The target group of a ServiceSpec: the spec name, shortened with a hash when needed.
pub fn target_group_name(service: &str) -> String {
    bounded_name(service, ELB_NAME_MAX)
}

/// The alternate target group of a ServiceSpec whose deployments shift traffic (BlueGreen,
/// Canary, Linear): `<spec name>-alt`, shortened with a hash when needed. A ServiceSpec named
/// `<name>-alt` would want the same name for its primary group; the ownership tags keep each
/// spec off the other's group (the second one fails with the owner named).
pub fn alternate_target_group_name(service: &str) -> String {
    bounded_name(&format!("{service}-alt"), ELB_NAME_MAX)
}

/// The ALB of a `loadBalancers[]` entry (validation already keeps it within 32 characters).
pub fn load_balancer_name(name: &str) -> String {
    bounded_name(name, ELB_NAME_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(target_group_name("trust-estate-api"), "trust-estate-api");
        assert_eq!(alternate_target_group_name("web"), "web-alt");
        let long = alternate_target_group_name("a-very-long-service-name-that-fits");
        assert!(
            long.len() <= 32 && long != target_group_name("a-very-long-service-name-that-fits")
        );
    }

    #[test]
    fn long_names_are_cut_with_a_stable_hash_suffix() {
        let a = target_group_name("a-very-long-service-name-that-does-not-fit-at-all");
        let b = target_group_name("a-very-long-service-name-that-does-not-fit-at-all-2");
        assert!(a.len() <= 32 && b.len() <= 32, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(
            a,
            target_group_name("a-very-long-service-name-that-does-not-fit-at-all")
        );
        assert!(!a.contains("--") && !a.starts_with('-') && !a.ends_with('-'));
    }
}

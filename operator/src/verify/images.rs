//! Images: the container's image must be pullable when the service starts.
//!
//! - `NAME:TAG` of the spec's own repository (`spec.repository.name`): the repository may not
//!   exist yet (the operator creates it), which is a note; once it exists the tag must be in it.
//! - An image of an ECR registry (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG`): the
//!   repository must exist and hold the tag (or digest).
//! - Anything else (Docker Hub, `public.ecr.aws`, another registry): the name must parse as an
//!   image reference; it is not fetched (no network beyond AWS).
//!
//! The reference grammar is the one of the distribution project (`reference/reference.go`):
//! `[DOMAIN/]PATH[:TAG][@DIGEST]`, path components lower case.

use super::{EcrImage, Facts, Finding, Lookup, Needs, Severity};
use crate::spec::{ServiceSpec, Spec};

const FIELD: &str = "spec.container.image";

/// A tag or a digest; an image with neither means the tag `latest`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag(t) => write!(f, "tag {t}"),
            Reference::Digest(d) => write!(f, "digest {d}"),
        }
    }
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// The registry host (and port), when the name has one.
    pub domain: Option<String>,
    /// The repository path (`library/nginx`, `team/app`).
    pub path: String,
    /// The digest when there is one (it is what gets pulled), else the tag, else `latest`.
    pub reference: Reference,
}

fn alnum_lower(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `alpha-numeric (separator alpha-numeric)*`, separator `.`, `_`, `__` or `-`+.
fn path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !alnum_lower(&c[..1]) || !alnum_lower(&c[c.len() - 1..]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn domain_ok(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host.len() > 2;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !c.starts_with('-')
                && !c.ends_with('-')
        })
}

fn tag_ok(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn digest_ok(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let algo_ok = algo.split(['+', '.', '_', '-']).all(|c| {
        c.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && c.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    algo_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ImageName {
    /// Parse an image reference; the error says which part is wrong.
    pub fn parse(image: &str) -> Result<ImageName, String> {
        if image.is_empty() {
            return Err("is empty".into());
        }
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => {
                if !digest_ok(d) {
                    return Err(format!(
                        "has the digest `{d}`, which is not ALGORITHM:HEX (sha256:<64 hex digits>)"
                    ));
                }
                (r, Some(d.to_string()))
            }
            None => (image, None),
        };
        // A tag is after the last `:` that follows the last `/` (a `:` before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !tag_ok(t) {
                return Err(format!(
                    "has the tag `{t}`; a tag is 1-128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"
                ));
            }
        }
        if name.len() > 255 {
            return Err("has a name longer than 255 characters".into());
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                if !domain_ok(first) {
                    return Err(format!(
                        "has the registry `{first}`, which is not a host name"
                    ));
                }
                (Some(first.to_string()), rest)
            }
            _ => (None, name),
        };
        if let Some(bad) = path.split('/').find(|c| !path_component(c)) {
            return Err(format!(
                "has the path component `{bad}`; components are lower-case letters and digits, \
                 separated by `.`, `_`, `__` or dashes"
            ));
        }
        let reference = match (digest, tag) {
            (Some(d), _) => Reference::Digest(d),
            (None, Some(t)) => Reference::Tag(t.to_string()),
            (None, None) => Reference::Tag("latest".into()),
        };
        Ok(ImageName {
            domain,
            path: path.to_string(),
            reference,
        })
    }
}

/// An ECR registry host: `ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]` -> (account, region).
pub fn ecr_registry(domain: &str) -> Option<(String, String)> {
    let (account, rest) = domain.split_once('.')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))?;
    let region = rest
        .strip_suffix(".amazonaws.com")
        .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    (!region.is_empty() && !region.contains('.')).then(|| (account.to_string(), region.to_string()))
}

/// Where a spec's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The spec's own repository (`spec.repository`), which the operator creates.
    Own(EcrImage),
    /// A repository of an ECR registry, which must exist.
    Ecr(EcrImage),
    /// Any other registry: only parsed.
    Public,
}

/// Classify the spec's image (pure). `Err`: it does not parse.
pub fn source(spec: &ServiceSpec) -> Result<Source, String> {
    let image = &spec.spec.container.image;
    if let Some(repo) = &spec.spec.repository {
        if let Some(rest) = image.strip_prefix(repo.name.as_str()) {
            if rest.is_empty() || rest.starts_with(':') || rest.starts_with('@') {
                let parsed = ImageName::parse(image)?;
                return Ok(Source::Own(EcrImage {
                    registry: None,
                    region: None,
                    repository: repo.name.clone(),
                    reference: parsed.reference,
                }));
            }
        }
    }
    let parsed = ImageName::parse(image)?;
    match parsed.domain.as_deref().and_then(ecr_registry) {
        Some((account, region)) => Ok(Source::Ecr(EcrImage {
            registry: Some(account),
            region: Some(region),
            repository: parsed.path,
            reference: parsed.reference,
        })),
        None => Ok(Source::Public),
    }
}

pub fn needs(spec: &Spec, n: &mut Needs) {
    if let Spec::Service(s) = spec {
        if let Ok(Source::Own(i) | Source::Ecr(i)) = source(s) {
            n.images.insert(i);
        }
    }
}

/// What DescribeImages said about an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageState {
    Present,
    NoRepository,
    NoImage,
}

pub fn check(spec: &Spec, facts: &Facts, out: &mut Vec<Finding>) {
    let Spec::Service(s) = spec else {
        return;
    };
    let key = spec.key();
    let image = &s.spec.container.image;
    let (own, i) = match source(s) {
        Err(why) => {
            out.push(Finding::error(
                &key,
                FIELD,
                format!("`{image}` is not an image reference: it {why}"),
                "write REPOSITORY:TAG, REGISTRY/REPOSITORY:TAG or ...@sha256:DIGEST",
            ));
            return;
        }
        Ok(Source::Public) => return,
        Ok(Source::Own(i)) => (true, i),
        Ok(Source::Ecr(i)) => (false, i),
    };
    let registry = i
        .registry
        .as_deref()
        .map(|r| format!(" of registry {r}"))
        .unwrap_or_default();
    match Facts::get(&facts.images, &i) {
        Lookup::Found(ImageState::Present) => {}
        Lookup::Found(ImageState::NoRepository) if own => out.push(Finding::new(
            Severity::Note,
            &key,
            FIELD,
            format!(
                "the ECR repository `{}` does not exist yet; the operator creates it (spec.repository)",
                i.repository
            ),
            format!(
                "push {} to it once it exists, before the service can start",
                i.reference
            ),
        )),
        Lookup::Found(ImageState::NoRepository) => out.push(Finding::error(
            &key,
            FIELD,
            format!(
                "`{image}`: the ECR repository `{}`{registry} does not exist",
                i.repository
            ),
            "create the repository and push the image, or fix the image name",
        )),
        Lookup::Found(ImageState::NoImage) | Lookup::Missing => out.push(Finding::error(
            &key,
            FIELD,
            format!(
                "`{image}`: the ECR repository `{}`{registry} has no image with {}",
                i.repository, i.reference
            ),
            format!(
                "push the image with {} to `{}`, or name one that is there",
                i.reference, i.repository
            ),
        )),
        Lookup::Unknown(why) => out.push(Finding::unchecked(
            &key,
            FIELD,
            &format!("`{image}` in ECR repository `{}`", i.repository),
            &why,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_support::service;

    fn parse(s: &str) -> ImageName {
        ImageName::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn names_with_registry_port_tag_and_digest_parse() {
        let n = parse("localhost:5000/team/app:v1.2");
        assert_eq!(n.domain.as_deref(), Some("localhost:5000"));
        assert_eq!(n.path, "team/app");
        assert_eq!(n.reference, Reference::Tag("v1.2".into()));
        let d = format!("sha256:{}", "a".repeat(64));
        let n = parse(&format!("public.ecr.aws/nginx/nginx:1.27@{d}"));
        assert_eq!(n.domain.as_deref(), Some("public.ecr.aws"));
        assert_eq!(n.reference, Reference::Digest(d));
        assert_eq!(parse("nginx").reference, Reference::Tag("latest".into()));
        assert_eq!(parse("nginx").domain, None);
    }

    #[test]
    fn upper_case_paths_bad_tags_and_short_digests_are_refused_with_the_part_named() {
        assert!(ImageName::parse("Team/App:1")
            .unwrap_err()
            .contains("`Team`"));
        assert!(ImageName::parse("app:-x").unwrap_err().contains("tag `-x`"));
        assert!(ImageName::parse("app@sha256:abc")
            .unwrap_err()
            .contains("digest"));
        assert!(ImageName::parse("app::1").is_err());
        assert!(ImageName::parse("a//b").is_err());
        assert!(ImageName::parse("").is_err());
    }

    #[test]
    fn ecr_hosts_give_their_account_and_region() {
        assert_eq!(
            ecr_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012".into(), "eu-west-1".into()))
        );
        assert_eq!(ecr_registry("public.ecr.aws"), None);
        assert_eq!(ecr_registry("12345.dkr.ecr.eu-west-1.amazonaws.com"), None);
    }

    #[test]
    fn the_own_repository_ecr_images_and_public_images_are_told_apart() {
        let own = service(
            "  repository: {name: app}\n  container: {name: c, image: \"app:v1\", cpu: 256, memory: 512}\n",
        );
        let Spec::Service(s) = &own else { panic!() };
        assert!(
            matches!(source(s), Ok(Source::Own(i)) if i.repository == "app"
            && i.reference == Reference::Tag("v1".into()))
        );
        let ecr = service(
            "  container: {name: c, image: \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/base/img:3\", cpu: 256, memory: 512}\n",
        );
        let Spec::Service(s) = &ecr else { panic!() };
        assert!(
            matches!(source(s), Ok(Source::Ecr(i)) if i.repository == "base/img"
            && i.registry.as_deref() == Some("123456789012"))
        );
        let public = service(
            "  container: {name: c, image: \"public.ecr.aws/nginx/nginx:1.27\", cpu: 256, memory: 512}\n",
        );
        let Spec::Service(s) = &public else { panic!() };
        assert_eq!(source(s), Ok(Source::Public));
    }

    fn findings(spec: &Spec, state: Option<ImageState>) -> Vec<Finding> {
        let mut facts = Facts::default();
        let mut n = Needs::default();
        needs(spec, &mut n);
        for i in n.images {
            let answer = match state {
                Some(s) => Lookup::Found(s),
                None => Lookup::Unknown("AccessDenied".into()),
            };
            facts.images.insert(i, answer);
        }
        let mut out = Vec::new();
        check(spec, &facts, &mut out);
        out
    }

    #[test]
    fn a_missing_own_repository_is_a_note_and_a_missing_other_repository_an_error() {
        let own = service(
            "  repository: {name: app}\n  container: {name: c, image: \"app:v1\", cpu: 256, memory: 512}\n",
        );
        let f = findings(&own, Some(ImageState::NoRepository));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Note);
        let other = service(
            "  container: {name: c, image: \"123456789012.dkr.ecr.eu-west-1.amazonaws.com/base:3\", cpu: 256, memory: 512}\n",
        );
        let f = findings(&other, Some(ImageState::NoRepository));
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].problem.contains("`base`"), "{f:?}");
        let f = findings(&other, Some(ImageState::NoImage));
        assert!(f[0].problem.contains("no image with tag 3"), "{f:?}");
        assert!(findings(&other, Some(ImageState::Present)).is_empty());
        assert_eq!(findings(&other, None)[0].severity, Severity::Warning);
    }

    #[test]
    fn an_unparseable_public_image_is_an_error_naming_the_field() {
        let bad = service("  container: {name: c, image: \"Nginx:1\", cpu: 256, memory: 512}\n");
        let f = findings(&bad, None);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "spec.container.image");
        assert_eq!(f[0].severity, Severity::Error);
    }
}

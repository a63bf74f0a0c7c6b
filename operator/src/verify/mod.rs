//! `ecs-operator verify`: a read-only pre-flight of specs against the AWS account they will be
//! deployed to. Everything a first deploy would otherwise find out late (a role ECS cannot
//! assume, an image tag that is not in ECR, a secret the execution role cannot read, a hosted
//! zone, subnet, security group or Auto Scaling group that does not exist) is reported at once,
//! each finding naming the spec, the field, what is wrong and the fix.
//!
//! Shape: [`Needs::of`] says what to read for a set of specs (pure), [`read::Reader`] reads it
//! (the only module that calls AWS, and only Describe/Get/List/Simulate operations), and
//! [`check`] turns specs plus [`Facts`] into findings (pure, one module per check family).
//!
//! Invariants:
//! - nothing here writes to AWS or to the store;
//! - a read that fails (access denied, an operation the endpoint does not implement) becomes a
//!   [`Lookup::Unknown`] and then a `warning` finding saying what could not be checked; it never
//!   passes silently and never counts as "missing";
//! - the order of findings is deterministic: specs by key, then check family (roles, images,
//!   secrets, zones, networks, capacity), then field order within a family.

pub mod capacity;
pub mod images;
pub mod network;
pub mod read;
pub mod roles;
pub mod secrets;
pub mod zones;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::spec::{Spec, SpecKey};

/// How bad a finding is. Only `Error` makes `verify` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The deploy would fail (or the spec is invalid).
    Error,
    /// Something could not be checked; look at it by hand.
    Warning,
    /// Worth knowing, not a problem (a repository the operator will create).
    Note,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        })
    }
}

/// One thing `verify` has to say about one field of one spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// `Kind/name`.
    #[serde(serialize_with = "key_string")]
    pub spec: SpecKey,
    /// The dotted field path (`spec.network.subnets[1]`), as `validate` prints them.
    pub field: String,
    /// What is wrong, naming the value.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

fn key_string<S: serde::Serializer>(key: &SpecKey, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(key)
}

impl Finding {
    pub fn new(
        severity: Severity,
        spec: &SpecKey,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            severity,
            spec: spec.clone(),
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub fn error(
        spec: &SpecKey,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding::new(Severity::Error, spec, field, problem, fix)
    }

    /// A read that did not answer: `what` could not be checked because of `reason`.
    pub fn unchecked(
        spec: &SpecKey,
        field: impl Into<String>,
        what: &str,
        reason: &str,
    ) -> Finding {
        Finding::new(
            Severity::Warning,
            spec,
            field,
            format!("{what} could not be checked: {reason}"),
            "check it by hand, or run verify with credentials allowed to read it",
        )
    }
}

/// The answer to one read: the thing, its absence, or no answer (with the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    Found(T),
    Missing,
    /// The read failed: access denied, not implemented by the endpoint, a transport error...
    Unknown(String),
}

/// An image in an ECR repository: registry (account id) and region (`None` for the caller's
/// own), repository name, and tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EcrImage {
    pub registry: Option<String>,
    pub region: Option<String>,
    pub repository: String,
    pub reference: images::Reference,
}

/// A role whose trust policy was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The ARN IAM gives it.
    pub arn: String,
    /// The trust policy as IAM returned it (GetRole URL-encodes it).
    pub trust_policy: String,
}

/// A subnet: its VPC and availability zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub vpc: String,
    pub zone: String,
}

/// Whether a principal may make one call on one resource, as IAM's policy simulator says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: String,
}

impl Access {
    pub fn allowed(&self) -> bool {
        self.decision == "allowed"
    }
}

/// What to read for a set of specs: every name, id and ARN they refer to, once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Role ARNs as written in the specs.
    pub roles: BTreeSet<String>,
    pub images: BTreeSet<EcrImage>,
    /// (execution role ARN, IAM action, secret ARN).
    pub access: BTreeSet<(String, String, String)>,
    /// Hosted zones by name or id, as written.
    pub zones: BTreeSet<String>,
    pub subnets: BTreeSet<String>,
    pub security_groups: BTreeSet<String>,
    /// Auto Scaling groups by name or ARN, as written.
    pub groups: BTreeSet<String>,
}

impl Needs {
    /// Everything `specs` refer to (pure).
    pub fn of<'a>(specs: impl IntoIterator<Item = &'a Spec>) -> Needs {
        let mut n = Needs::default();
        for spec in specs {
            roles::needs(spec, &mut n);
            images::needs(spec, &mut n);
            secrets::needs(spec, &mut n);
            zones::needs(spec, &mut n);
            network::needs(spec, &mut n);
            capacity::needs(spec, &mut n);
        }
        n
    }
}

/// What was read, keyed as in [`Needs`].
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub roles: BTreeMap<String, Lookup<Role>>,
    pub images: BTreeMap<EcrImage, Lookup<images::ImageState>>,
    pub access: BTreeMap<(String, String, String), Lookup<Access>>,
    pub zones: BTreeMap<String, Lookup<()>>,
    pub subnets: BTreeMap<String, Lookup<Subnet>>,
    /// Security group id -> its VPC.
    pub security_groups: BTreeMap<String, Lookup<String>>,
    pub groups: BTreeMap<String, Lookup<()>>,
    /// Set when a call reached nothing (no connection, a timeout): the findings are then about
    /// the connection, not the specs, and `verify` exits 2.
    pub unreachable: Option<String>,
}

impl Facts {
    /// The answer for `key` in `map`; a key that was never read is `Unknown` (a bug in
    /// [`Needs::of`] shows up as a warning, never as a pass).
    pub fn get<'a, K, Q, T>(map: &'a BTreeMap<K, Lookup<T>>, key: &Q) -> Lookup<&'a T>
    where
        K: std::borrow::Borrow<Q> + Ord,
        Q: Ord + ?Sized,
    {
        match map.get(key) {
            Some(Lookup::Found(t)) => Lookup::Found(t),
            Some(Lookup::Missing) => Lookup::Missing,
            Some(Lookup::Unknown(r)) => Lookup::Unknown(r.clone()),
            None => Lookup::Unknown("it was not read (a bug in verify)".into()),
        }
    }
}

/// Every finding for one spec (pure), in field order.
pub fn check(spec: &Spec, facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    roles::check(spec, facts, &mut out);
    images::check(spec, facts, &mut out);
    secrets::check(spec, facts, &mut out);
    zones::check(spec, facts, &mut out);
    network::check(spec, facts, &mut out);
    capacity::check(spec, facts, &mut out);
    out
}

/// The number of findings of each severity.
pub fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Specs for the check modules' unit tests.

    use crate::spec::{load::parse_file, Spec};

    /// The one valid spec in `yaml`; panics on a broken fixture.
    pub fn spec(yaml: &str) -> Spec {
        let f = parse_file("t.yaml", yaml.as_bytes());
        let d = f.documents.into_iter().next().expect("one document");
        match d.result {
            Ok(s) => s,
            Err(e) => panic!("invalid test spec: {e:?}"),
        }
    }

    /// A ServiceSpec with the given extra lines under `spec:` (indented by two spaces).
    pub fn service(extra: &str) -> Spec {
        spec(&format!(
            "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {{name: web}}\n\
             spec:\n  cluster: prod\n  network: {{subnets: [subnet-1], securityGroups: [sg-1]}}\n{extra}"
        ))
    }

    /// A ClusterSpec with the given extra lines under `spec:`.
    pub fn cluster(extra: &str) -> Spec {
        spec(&format!(
            "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {{name: prod}}\n\
             spec:\n{extra}"
        ))
    }
}

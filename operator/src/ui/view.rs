//! What the web page shows, as plain data built from the controller's state (pure).
//!
//! Sources: the desired cache (what the store holds now: generation, origin, diagnostics), the
//! status records the controller keeps (phase, observed generation, conditions, resources,
//! last error), the ring of recent outcomes, and when this process first listed each spec.
//! A spec gone from the store but with a status record is still shown (it is being deleted).

use std::time::Duration;

use time::OffsetDateTime;

use super::console::console_url;
use super::recent::Outcome;
use crate::controller::DesiredEntry;
use crate::spec::{Kind, SpecKey};
use crate::store::{Condition, Phase, SpecStatus};

/// The facts at the top of every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// When the page was made (RFC 3339, UTC).
    pub generated_at: String,
    pub store: String,
    pub instance: String,
    /// `standalone`, `starting`, `leader` or `follower`.
    pub leader: String,
    pub lease_holder: Option<String>,
    pub store_listed: bool,
    pub last_store_error: Option<String>,
    /// Seconds between automatic reloads.
    pub refresh_seconds: u32,
}

/// One line of the spec list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRow {
    pub kind: Kind,
    pub name: String,
    /// `None` while this process has no status record for it (not reconciled yet).
    pub phase: Option<Phase>,
    /// The digest of the spec in the store now; `None` once it left the store.
    pub generation: Option<String>,
    /// The digest of the spec the status describes.
    pub observed: Option<String>,
    /// Since this process first listed the spec.
    pub age: Option<Duration>,
    /// The last error's first line, else the Ready condition's message.
    pub message: String,
    /// Whether `message` is an error.
    pub is_error: bool,
}

impl SpecRow {
    pub fn key(&self) -> SpecKey {
        SpecKey::new(self.kind, self.name.clone())
    }

    /// Whether the status describes the spec in the store now.
    pub fn in_sync(&self) -> bool {
        self.generation.is_some() && self.generation == self.observed
    }
}

/// The list page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overview {
    pub header: Header,
    pub rows: Vec<SpecRow>,
    /// Store documents that name no spec (they hold deletions back).
    pub unattributed: Vec<String>,
}

/// A resource of a spec, with its console page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceView {
    pub kind: String,
    pub id: String,
    pub console: Option<String>,
}

/// One spec's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecDetail {
    pub header: Header,
    pub row: SpecRow,
    /// Where the spec came from in the store (`file document N`), when it is there.
    pub origin: Option<String>,
    /// The validation errors of an invalid spec, one per line.
    pub diagnostics: Option<String>,
    pub last_error: Option<String>,
    pub conditions: Vec<Condition>,
    /// The conditions about the ECS deployment (`Rollout...`), when the status has any.
    pub rollout: Vec<Condition>,
    pub resources: Vec<ResourceView>,
    /// Newest first.
    pub recent: Vec<Outcome>,
    pub updated_at: Option<String>,
    pub deletion_policy: Option<String>,
}

/// The row of one spec. `first_seen`: when this process first listed it.
pub fn row(
    key: &SpecKey,
    entry: Option<&DesiredEntry>,
    status: Option<&SpecStatus>,
    first_seen: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> SpecRow {
    let (message, is_error) = match status {
        Some(s) => match &s.last_error {
            Some(e) => (e.lines().next().unwrap_or_default().to_string(), true),
            None => (s.summary(), false),
        },
        None => (String::new(), false),
    };
    let age = first_seen.map(|t| {
        let d = now - t;
        Duration::from_secs(d.whole_seconds().max(0) as u64)
    });
    SpecRow {
        kind: key.kind,
        name: key.name.clone(),
        phase: status.map(|s| s.phase),
        generation: entry.map(|e| e.generation.clone()),
        observed: status.and_then(|s| s.observed_generation.clone()),
        age,
        message,
        is_error,
    }
}

/// The detail page of one spec; `region`: where the operator runs (for resources whose id
/// carries none).
pub fn detail(
    header: Header,
    row: SpecRow,
    entry: Option<&DesiredEntry>,
    status: Option<&SpecStatus>,
    recent: Vec<Outcome>,
    region: &str,
) -> SpecDetail {
    let conditions = status.map(|s| s.conditions.clone()).unwrap_or_default();
    let rollout = conditions
        .iter()
        .filter(|c| c.condition_type.starts_with("Rollout"))
        .cloned()
        .collect();
    let resources = status
        .map(|s| {
            s.resources
                .iter()
                .map(|r| ResourceView {
                    kind: r.resource_type.clone(),
                    id: r.id.clone(),
                    console: console_url(&r.resource_type, &r.id, region),
                })
                .collect()
        })
        .unwrap_or_default();
    SpecDetail {
        header,
        row,
        origin: entry.map(|e| e.origin.clone()),
        diagnostics: entry.and_then(|e| e.spec.as_ref().err().cloned()),
        last_error: status.and_then(|s| s.last_error.clone()),
        conditions,
        rollout,
        resources,
        recent,
        updated_at: status.and_then(|s| s.updated_at.clone()),
        deletion_policy: status.and_then(|s| s.deletion_policy.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ResourceRef;

    fn status(phase: Phase) -> SpecStatus {
        let mut s = SpecStatus::pending(&SpecKey::new(Kind::ServiceSpec, "web"));
        s.phase = phase;
        s.observed_generation = Some("g1".into());
        s
    }

    fn entry(generation: &str) -> DesiredEntry {
        DesiredEntry {
            key: SpecKey::new(Kind::ServiceSpec, "web"),
            generation: generation.into(),
            origin: "web.yaml document 0".into(),
            spec: Err("web.yaml:3:1: document 0: spec.x: bad".into()),
        }
    }

    #[test]
    fn a_row_shows_the_last_error_first_and_whether_the_status_is_current() {
        let key = SpecKey::new(Kind::ServiceSpec, "web");
        let now = OffsetDateTime::now_utc();
        let mut s = status(Phase::Degraded);
        s.last_error = Some("AccessDenied\nmore".into());
        let r = row(
            &key,
            Some(&entry("g2")),
            Some(&s),
            Some(now - Duration::from_secs(90)),
            now,
        );
        assert_eq!(r.phase, Some(Phase::Degraded));
        assert_eq!((r.message.as_str(), r.is_error), ("AccessDenied", true));
        assert_eq!(r.age, Some(Duration::from_secs(90)));
        assert!(!r.in_sync(), "store g2, observed g1");
        let r = row(&key, Some(&entry("g1")), Some(&s), None, now);
        assert!(r.in_sync());
        let gone = row(&key, None, Some(&s), None, now);
        assert!(!gone.in_sync() && gone.generation.is_none());
        let unseen = row(&key, Some(&entry("g1")), None, None, now);
        assert_eq!((unseen.phase, unseen.message.as_str()), (None, ""));
    }

    #[test]
    fn a_detail_carries_diagnostics_rollout_conditions_and_console_links() {
        let key = SpecKey::new(Kind::ServiceSpec, "web");
        let now = OffsetDateTime::now_utc();
        let mut s = status(Phase::Progressing);
        let cond = |t: &str| Condition {
            condition_type: t.into(),
            status: "False".into(),
            reason: "InProgress".into(),
            message: "1 of 2 running".into(),
            last_transition_time: "2026-01-01T00:00:00Z".into(),
        };
        s.conditions = vec![cond("Ready"), cond("RolloutComplete")];
        s.resources = vec![
            ResourceRef {
                resource_type: "ecs:service".into(),
                id: "arn:aws:ecs:eu-west-1:123456789012:service/prod/web".into(),
            },
            ResourceRef {
                resource_type: "mystery:thing".into(),
                id: "x".into(),
            },
        ];
        let e = entry("g1");
        let header = Header {
            generated_at: "now".into(),
            store: "file://x".into(),
            instance: "ecs-operator".into(),
            leader: "standalone".into(),
            lease_holder: None,
            store_listed: true,
            last_store_error: None,
            refresh_seconds: 5,
        };
        let r = row(&key, Some(&e), Some(&s), None, now);
        let d = detail(header, r, Some(&e), Some(&s), Vec::new(), "eu-west-1");
        assert_eq!(d.rollout, vec![cond("RolloutComplete")]);
        assert_eq!(d.conditions.len(), 2);
        assert!(d.resources[0]
            .console
            .as_deref()
            .is_some_and(|u| u.contains("/clusters/prod/services/web/")));
        assert_eq!(d.resources[1].console, None);
        assert_eq!(
            d.diagnostics.as_deref(),
            Some("web.yaml:3:1: document 0: spec.x: bad")
        );
        assert_eq!(d.origin.as_deref(), Some("web.yaml document 0"));
    }
}

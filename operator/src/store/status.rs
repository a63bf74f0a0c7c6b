//! The status record of one spec (README "Commands", `status`), as stored and as `status` prints it.

use serde::{Deserialize, Serialize};

use crate::spec::{Kind, SpecKey};

/// Where a spec stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Pending,
    Progressing,
    Ready,
    Degraded,
    Failed,
    Deleting,
    Paused,
    Invalid,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

/// A Kubernetes-style condition. `last_transition_time` changes only when `status` changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub condition_type: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: String,
}

/// Something the spec manages: its kind (`ecs:service`, `elbv2:targetgroup`...: a registered kind's `TYPE`) and its ARN,
/// URI or name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub id: String,
}

/// The status of one spec. `generation` is the digest of the spec in the store now (filled in
/// when read alongside the spec, never trusted from storage); `observed_generation` is the digest
/// of the spec this status describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecStatus {
    pub kind: Kind,
    pub name: String,
    pub phase: Phase,
    pub observed_generation: Option<String>,
    #[serde(default)]
    pub generation: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub resources: Vec<ResourceRef>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// The spec's `deletionPolicy` (`Retain` or `Delete`) when it was last reconciled, so a
    /// deletion after a restart (the spec is gone) knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<String>,
    /// When the operator last wrote this record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The account and region the spec's resources live in (the region always filled in),
    /// kept while the record lists resources: a spec cannot move them in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<crate::spec::Placement>,
}

impl SpecStatus {
    /// The status of a spec the operator has not reported on yet.
    pub fn pending(key: &SpecKey) -> Self {
        SpecStatus {
            kind: key.kind,
            name: key.name.clone(),
            phase: Phase::Pending,
            observed_generation: None,
            generation: None,
            conditions: Vec::new(),
            resources: Vec::new(),
            last_error: None,
            deletion_policy: None,
            updated_at: None,
            placement: None,
        }
    }

    pub fn key(&self) -> SpecKey {
        SpecKey::new(self.kind, self.name.clone())
    }

    /// The message to show in one line: the last error, else the Ready condition's message.
    pub fn summary(&self) -> String {
        if let Some(e) = &self.last_error {
            return e.lines().next().unwrap_or_default().to_string();
        }
        self.conditions
            .iter()
            .find(|c| c.condition_type == "Ready")
            .map(|c| c.message.clone())
            .unwrap_or_default()
    }
}

//! Status records from reports (pure): conditions keep their transition times, a `Ready`
//! condition is always present, and records that differ only in `updatedAt` are the same.

use crate::reconcile::{ConditionReport, Report};
use crate::spec::{Spec, SpecKey};
use crate::store::status::{Condition, Phase, SpecStatus};

use super::desired::DesiredEntry;

/// `Retain` or `Delete`, as the spec says (defaults filled in).
pub fn deletion_policy_of(spec: &Spec) -> &'static str {
    let p = match spec {
        Spec::Cluster(c) => c.spec.deletion_policy,
        Spec::Service(s) => s.spec.deletion_policy,
    };
    match p {
        crate::spec::types::DeletionPolicy::Retain => "Retain",
        crate::spec::types::DeletionPolicy::Delete => "Delete",
    }
}

pub(super) fn is_paused(spec: &Spec) -> bool {
    match spec {
        Spec::Cluster(c) => c.spec.paused,
        Spec::Service(s) => s.spec.paused,
    }
}

pub(super) fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "pending",
        Phase::Progressing => "progressing",
        Phase::Ready => "ready",
        Phase::Degraded => "degraded",
        Phase::Failed => "failed",
        Phase::Deleting => "deleting",
        Phase::Paused => "paused",
        Phase::Invalid => "invalid",
    }
}

/// Two records say the same thing when they differ at most in `updatedAt`.
pub(super) fn same_status(a: &SpecStatus, b: &SpecStatus) -> bool {
    let mut a = a.clone();
    a.updated_at = b.updated_at.clone();
    a.generation = b.generation.clone();
    &a == b
}

/// The status record after a reconcile (pure: `now` is given). Conditions keep their
/// `lastTransitionTime` unless their status changed; a `Ready` condition is always present.
pub fn next_status(
    key: &SpecKey,
    previous: Option<&SpecStatus>,
    entry: &DesiredEntry,
    report: &Report,
    last_error: Option<String>,
    now: &str,
) -> SpecStatus {
    let mut reported = report.conditions.clone();
    if !reported.iter().any(|c| c.condition_type == "Ready") {
        let ready = report.phase == Phase::Ready;
        let message = if ready {
            "every resource matches the spec".to_string()
        } else {
            reported
                .iter()
                .find(|c| c.status != "True")
                .map(|c| c.message.clone())
                .unwrap_or_else(|| format!("phase {}", report.phase))
        };
        reported.insert(
            0,
            ConditionReport::new("Ready", ready, &report.phase.to_string(), message),
        );
    }
    let conditions = reported
        .into_iter()
        .map(|c| {
            let since = previous
                .and_then(|p| {
                    p.conditions
                        .iter()
                        .find(|o| o.condition_type == c.condition_type && o.status == c.status)
                })
                .map(|o| o.last_transition_time.clone())
                .unwrap_or_else(|| now.to_string());
            Condition {
                condition_type: c.condition_type,
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_transition_time: since,
            }
        })
        .collect();
    let mut resources = report.resources.clone();
    resources.sort();
    resources.dedup();
    SpecStatus {
        kind: key.kind,
        name: key.name.clone(),
        phase: report.phase,
        observed_generation: Some(entry.generation.clone()),
        generation: Some(entry.generation.clone()),
        conditions,
        resources,
        last_error,
        deletion_policy: match &entry.spec {
            Ok(spec) => Some(deletion_policy_of(spec).to_string()),
            Err(_) => previous.and_then(|p| p.deletion_policy.clone()),
        },
        updated_at: Some(now.to_string()),
        placement: previous.and_then(|p| p.placement.clone()),
    }
}

//! One reconcile of one spec: the record of what was planned and done, and what it adds up to.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::FutureExt;

use super::context::Aws;
use super::shared::tags::{missing_owner_tags, owner_tags, ownership, Ownership};
use super::snapshot::{Entry, Record, WaveRun};
use super::ResourceError;
use crate::aws::{CallClass, Service};
use crate::reconcile::{ConditionReport, ReconcileInput, Report, ValidSpecs};
use crate::spec::SpecKey;
use crate::store::status::{Phase, ResourceRef};

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Delete,
}

/// One planned change, in plain words: `~ listener :80 default action: redirect 302 -> 301`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    /// The resource, as a person would name it (`target group web`, `listener :80`).
    pub resource: String,
    /// What changes (`health check path: / -> /health`); may be empty for creates and deletes.
    pub detail: String,
}

impl Change {
    pub fn create(resource: impl Into<String>, detail: impl Into<String>) -> Self {
        Change {
            op: Op::Create,
            resource: resource.into(),
            detail: detail.into(),
        }
    }

    pub fn update(resource: impl Into<String>, detail: impl Into<String>) -> Self {
        Change {
            op: Op::Update,
            resource: resource.into(),
            detail: detail.into(),
        }
    }

    /// Adding the tags `added` (the ownership tags an adopted or repaired resource lacks).
    pub fn tags_added(resource: impl Into<String>, added: &BTreeMap<String, String>) -> Self {
        let keys: Vec<&str> = added.keys().map(String::as_str).collect();
        Change::update(resource, format!("tags: + {}", keys.join(", ")))
    }

    pub fn delete(resource: impl Into<String>, detail: impl Into<String>) -> Self {
        Change {
            op: Op::Delete,
            resource: resource.into(),
            detail: detail.into(),
        }
    }

    /// `field: old -> new`, the usual update detail.
    pub fn field(
        resource: impl Into<String>,
        field: &str,
        old: impl fmt::Display,
        new: impl fmt::Display,
    ) -> Self {
        Change::update(resource, format!("{field}: {old} -> {new}"))
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.op {
            Op::Create => '+',
            Op::Update => '~',
            Op::Delete => '-',
        };
        if self.detail.is_empty() {
            write!(f, "{sign} {}", self.resource)
        } else if self.op == Op::Update {
            write!(f, "{sign} {} {}", self.resource, self.detail)
        } else {
            write!(f, "{sign} {} ({})", self.resource, self.detail)
        }
    }
}

/// The plan step that adds the ownership tags `missing`, as the kind's `step` makes it; `None`
/// when none is missing.
pub fn tag_step<S>(
    resource: &str,
    missing: &BTreeMap<String, String>,
    step: impl FnOnce(BTreeMap<String, String>) -> S,
) -> Option<(S, Change)> {
    (!missing.is_empty()).then(|| (step(missing.clone()), Change::tags_added(resource, missing)))
}

/// [`Aws`] as one reconcile sees it (it derefs to [`Aws`]): [`RunAws::call`] is [`Aws::call`],
/// and when the reconcile is part of a resync wave, a write first and last tells the wave's
/// snapshot (see [`super::snapshot`]), so no write of any resource module can leave it stale;
/// [`RunAws::write_recorded`] is a write that records its effect into the snapshot instead.
#[derive(Clone)]
pub struct RunAws<'a> {
    aws: &'a Aws,
    wave: Option<Arc<WaveRun>>,
}

impl Deref for RunAws<'_> {
    type Target = Aws;
    fn deref(&self) -> &Aws {
        self.aws
    }
}

impl RunAws<'_> {
    /// [`Aws::call`]; a call of any class but `Read` is a write. (A combinator rather than an
    /// `async fn`: the SDK's futures are big, and debug builds copy them once per layer.)
    pub fn call<'f, T, E, R, F>(
        &'f self,
        service: Service,
        class: CallClass,
        operation: &'static str,
        resource: &'f str,
        call: F,
    ) -> impl Future<Output = Result<T, ResourceError>> + 'f
    where
        F: Future<Output = Result<T, SdkError<E, R>>> + 'f,
        T: 'f,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'f,
    {
        let wave = self.wave.clone().filter(|_| class != CallClass::Read);
        if let Some(w) = &wave {
            w.writing_to(service);
        }
        self.aws
            .call(service, class, operation, resource, call)
            .map(move |out| {
                if let Some(w) = wave {
                    w.writing_to(service);
                }
                out
            })
    }

    super::context::class_calls! {
        /// [`RunAws::call`] of class [`CallClass::Write`].
        write => Write;
    }

    /// A write whose effect on the wave's snapshot `record` describes exactly, from the call's
    /// answer (write-through, see [`super::snapshot`] "Own writes"): once it succeeded, the
    /// records go into the snapshot and nothing else is dropped. A failed call (its outcome
    /// unknown) counts as a write that was not recorded ([`RunAws::call`]). Outside a wave it
    /// is [`RunAws::call`], and `record` is not called.
    pub fn write_recorded<'f, T, E, R, F, G>(
        &'f self,
        service: Service,
        operation: &'static str,
        resource: &'f str,
        call: F,
        record: G,
    ) -> impl Future<Output = Result<T, ResourceError>> + 'f
    where
        F: Future<Output = Result<T, SdkError<E, R>>> + 'f,
        T: 'f,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'f,
        G: FnOnce(&T) -> Vec<Record> + 'f,
    {
        let mut pending = Unrecorded(self.wave.clone(), service);
        self.aws
            .call(service, CallClass::Write, operation, resource, call)
            .map(move |out| {
                if let Some(w) = pending.0.take() {
                    match &out {
                        Ok(answer) => w.recorded(record(answer)),
                        Err(_) => w.writing_to(service),
                    }
                }
                out
            })
    }
}

/// A recorded write under way: dropped before its answer was recorded (the reconcile was
/// cancelled mid-call, so the write may or may not have happened), it counts as a write that
/// was not recorded.
struct Unrecorded(Option<Arc<WaveRun>>, Service);

impl Drop for Unrecorded {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            w.writing_to(self.1);
        }
    }
}

/// The state of one reconcile of one spec as it moves through its resources.
pub struct SpecRun<'a> {
    pub aws: RunAws<'a>,
    pub key: SpecKey,
    /// False for `diff` and `mode: observe`: plan and record, never write.
    pub apply: bool,
    /// The spec carries the adopt annotation.
    pub adopt: bool,
    pub changes: Vec<Change>,
    pub resources: Vec<ResourceRef>,
    pub conditions: Vec<ConditionReport>,
    /// Why the spec is not Ready yet (a certificate pending validation, a rollout in progress).
    pub waiting: Vec<String>,
    /// Why the spec is Degraded (a rollout rolled back, a field that cannot change in place).
    pub degraded: Vec<String>,
    pub requeue_after: Option<Duration>,
    /// The spec's resources as its last status listed them (`ReconcileInput::ledger`);
    /// `None` when unknown.
    pub ledger: Option<Vec<ResourceRef>>,
}

impl<'a> SpecRun<'a> {
    /// A run that reads fresh (see [`SpecRun::with_input`]).
    pub fn new(aws: &'a Aws, key: SpecKey, apply: bool, adopt: bool) -> Self {
        SpecRun {
            aws: RunAws { aws, wave: None },
            key,
            apply,
            adopt,
            changes: Vec::new(),
            resources: Vec::new(),
            conditions: Vec::new(),
            waiting: Vec::new(),
            degraded: Vec::new(),
            requeue_after: None,
            ledger: None,
        }
    }

    /// Make this run part of the resync wave of `input`, if it has one: batched reads come
    /// from the wave's snapshot (see [`super::snapshot`]). The run also takes the input's
    /// ledger.
    pub fn with_input(self, input: &ReconcileInput) -> Self {
        self.with_input_in(input, String::new())
    }

    /// [`SpecRun::with_input`] for a run in one account and region (`scope`,
    /// `Placement::scope_key`): its shared reads are that scope's (`input.specs` are the specs
    /// there).
    pub fn with_input_in(mut self, input: &ReconcileInput, scope: String) -> Self {
        self.ledger = input.ledger.clone();
        self.aws.wave = input
            .wave
            .as_ref()
            .map(|snapshot| WaveRun::in_scope(snapshot.clone(), input.specs.clone(), scope));
        self
    }

    /// `entry` from the wave's snapshot (read by `fetch(specs)`, once per wave, when no other
    /// reconcile of the wave has read it yet); `None` when this run is not part of a wave or
    /// has written already: the caller then reads fresh, its own way. `specs` are the store's
    /// valid specs, for reads that cover every spec.
    pub async fn cached<T, F, Fut>(
        &self,
        entry: Entry,
        fetch: F,
    ) -> Option<Result<Arc<T>, ResourceError>>
    where
        T: Send + Sync + 'static,
        F: FnOnce(ValidSpecs) -> Fut,
        Fut: Future<Output = Result<T, ResourceError>>,
    {
        match &self.aws.wave {
            Some(w) => w.cached(entry, fetch).await,
            None => None,
        }
    }

    /// Record a planned change. Returns whether to carry it out (false when only planning).
    pub fn plan(&mut self, change: Change) -> bool {
        tracing::info!(spec = %self.key, change = %change, apply = self.apply, "change");
        self.changes.push(change);
        self.apply
    }

    /// The driver's half of a plan: every change of `steps` goes into the run's plan (in
    /// order), and the steps come back for the kind to apply; none when the run only plans
    /// (`diff`, `mode: observe`). Plan-only is this answering nothing, not a flag each kind
    /// checks.
    pub fn planned<S>(&mut self, steps: impl IntoIterator<Item = (S, Change)>) -> Vec<S> {
        steps
            .into_iter()
            .filter_map(|(step, change)| self.plan(change).then_some(step))
            .collect()
    }

    /// Record something the spec manages.
    pub fn resource(&mut self, resource_type: &str, id: impl Into<String>) {
        self.resources.push(ResourceRef {
            resource_type: resource_type.to_string(),
            id: id.into(),
        });
    }

    pub fn condition(&mut self, c: ConditionReport) {
        self.conditions
            .retain(|x| x.condition_type != c.condition_type);
        self.conditions.push(c);
    }

    /// Not Ready yet; come back after `after` (the earliest such request wins).
    pub fn wait(&mut self, why: impl Into<String>, after: Duration) {
        self.waiting.push(why.into());
        self.requeue(after);
    }

    /// Come back after `after` (the earliest such request wins), whatever the phase: a
    /// Degraded resource that ECS is still changing is looked at again.
    pub fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
    }

    pub fn degrade(&mut self, why: impl Into<String>) {
        self.degraded.push(why.into());
    }

    /// The fields a plan found that AWS cannot change in place: each is the condition
    /// `condition` (False, `ImmutableField`) and degrades the spec; the resource is left as it is.
    pub fn immutable(&mut self, condition: &str, findings: Vec<ResourceError>) {
        for e in findings {
            self.condition(ConditionReport::new(
                condition,
                false,
                "ImmutableField",
                e.to_string(),
            ));
            self.degrade(e.to_string());
        }
    }

    /// Check that an existing resource may be managed by this spec. Returns the ownership tags
    /// it still needs (non-empty only when adopting an unowned resource).
    pub fn claim(
        &self,
        resource: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, ResourceError> {
        match ownership(&self.aws.instance, &self.key, tags) {
            Ownership::Ours => Ok(BTreeMap::new()),
            Ownership::OtherSpec(owner) => Err(ResourceError::Unsatisfiable(format!(
                "{resource} is owned by {owner}"
            ))),
            Ownership::Foreign if self.adopt => {
                Ok(missing_owner_tags(&self.aws.instance, &self.key, tags))
            }
            Ownership::Foreign => Err(ResourceError::NotOwned {
                resource: resource.to_string(),
                managed_by: crate::MANAGED_BY_TAG,
                owner: crate::OWNER_TAG,
            }),
        }
    }

    /// The ownership tags for resources of this spec.
    pub fn tags(&self) -> BTreeMap<String, String> {
        owner_tags(&self.aws.instance, &self.key)
    }

    /// What the reconcile adds up to.
    pub fn into_report(mut self) -> Report {
        if !self.apply {
            let in_sync = self.changes.is_empty();
            let message = if in_sync {
                "AWS matches the spec".to_string()
            } else {
                self.changes
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            self.conditions.push(ConditionReport::new(
                "InSync",
                in_sync,
                if in_sync { "NoDrift" } else { "Drift" },
                message.clone(),
            ));
            if !in_sync {
                self.degraded
                    .push(format!("drift (observe mode): {message}"));
            }
        }
        let phase = if !self.degraded.is_empty() {
            Phase::Degraded
        } else if !self.waiting.is_empty() {
            Phase::Progressing
        } else {
            Phase::Ready
        };
        let (ready, reason, message) = match phase {
            Phase::Ready => (true, "Ready", "every resource matches the spec".to_string()),
            Phase::Degraded => (false, "Degraded", self.degraded.join("; ")),
            _ => (false, "Progressing", self.waiting.join("; ")),
        };
        self.conditions
            .insert(0, ConditionReport::new("Ready", ready, reason, message));
        Report {
            phase,
            conditions: self.conditions,
            resources: self.resources,
            requeue_after: self.requeue_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_step_is_there_only_when_a_tag_is_missing() {
        let key = SpecKey::new(crate::spec::Kind::ServiceSpec, "web");
        let missing = missing_owner_tags("ops", &key, &BTreeMap::new());
        let (step, change) = tag_step("target group web", &missing, |t| t.len()).unwrap();
        assert_eq!(step, 2);
        assert_eq!(
            change.to_string(),
            format!(
                "~ target group web tags: + {}, {}",
                crate::MANAGED_BY_TAG,
                crate::OWNER_TAG
            )
        );
        assert!(tag_step("target group web", &BTreeMap::new(), |t| t.len()).is_none());
    }

    #[test]
    fn changes_read_in_plain_words() {
        assert_eq!(
            Change::field(
                "listener :80",
                "default action",
                "redirect 302",
                "redirect 301"
            )
            .to_string(),
            "~ listener :80 default action: redirect 302 -> redirect 301"
        );
        assert_eq!(
            Change::create("target group web", "").to_string(),
            "+ target group web"
        );
        assert_eq!(
            Change::delete("listener rule 100", "host web.example.com").to_string(),
            "- listener rule 100 (host web.example.com)"
        );
    }
}

//! The AWS reconciler: one spec's resources in dependency order (docs/design.md "Resources per spec").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::context::Aws;
use super::kinds::task_definition::RevisionCache;
use super::pipelines::follow::Follow;
use super::run::{Change, SpecRun};
use super::ResourceError;
use crate::reconcile::{Deletion, Failure, OwnedScan, ReconcileInput, Reconciler, Report};
use crate::spec::types::Mode;
use crate::spec::Spec;
use crate::spec::SpecKey;
use crate::store::status::{Phase, ResourceRef, SpecStatus};

pub struct AwsReconciler {
    pub aws: Arc<Aws>,
    /// Task definition revisions by ARN (immutable, so cached for the process's life).
    pub revisions: RevisionCache,
    /// ServiceSpecs whose last reconcile was requeued by their ECS service alone: what their
    /// follow-up needs (`pipelines::follow`).
    follows: Mutex<HashMap<SpecKey, Follow>>,
}

impl AwsReconciler {
    pub fn new(aws: Arc<Aws>) -> Self {
        AwsReconciler {
            aws,
            revisions: RevisionCache::default(),
            follows: Mutex::new(HashMap::new()),
        }
    }

    /// Walk the spec's resources; with `apply == false`, plan only. Also returns what a
    /// follow-up of this run may use (`pipelines::follow`).
    pub async fn walk<'a>(
        &'a self,
        spec: &Spec,
        input: &ReconcileInput,
        apply: bool,
    ) -> Result<(SpecRun<'a>, Option<Follow>), ResourceError> {
        if let Some(why) = region_refusal(spec, input, &self.aws.region) {
            return Err(ResourceError::Unsatisfiable(why));
        }
        let mut run = self.run(spec, input, apply);
        let follow = match spec {
            Spec::Cluster(c) => {
                super::pipelines::cluster::reconcile(&mut run, c, input).await?;
                None
            }
            Spec::Service(s) => {
                super::pipelines::service::reconcile(&mut run, s, input, &self.revisions).await?
            }
        };
        Ok((run, follow))
    }

    /// A fresh run of `spec` over `input`.
    fn run<'a>(&'a self, spec: &Spec, input: &ReconcileInput, apply: bool) -> SpecRun<'a> {
        let adopt = spec
            .metadata()
            .annotations
            .get(crate::ADOPT_ANNOTATION)
            .is_some_and(|v| v == "true");
        SpecRun::new(&self.aws, spec.key(), apply, adopt).with_input(input)
    }

    /// The follow-up of a ServiceSpec requeued by its service alone (`pipelines::follow`):
    /// `None` when a full reconcile must run instead.
    async fn follow_up(
        &self,
        spec: &Spec,
        input: &ReconcileInput,
    ) -> Result<Option<Report>, ResourceError> {
        let Spec::Service(service) = spec else {
            return Ok(None);
        };
        let key = spec.key();
        // Taken out: a follow-up that fails leaves none, so the retry is a full reconcile.
        let Some(follow) = self.follows.lock().expect("follows lock").remove(&key) else {
            return Ok(None);
        };
        let mut run = self.run(spec, input, true);
        if !super::pipelines::follow::follow_up(&mut run, &follow, service, input).await? {
            return Ok(None);
        }
        if run.requeue_after.is_some() {
            self.follows
                .lock()
                .expect("follows lock")
                .insert(key, follow);
        }
        Ok(Some(run.into_report()))
    }

    /// The changes a reconcile would make now (`ecs-operator diff`).
    pub async fn diff(
        &self,
        spec: &Spec,
        input: &ReconcileInput,
    ) -> Result<Vec<Change>, ResourceError> {
        Ok(self.walk(spec, input, false).await?.0.changes)
    }
}

/// Why `spec` must not be reconciled here: its ClusterSpec (itself, or the one a ServiceSpec
/// names) sets `region` to another region than the operator's own. Resources are created only
/// in the operator's region, so a spec for another region fails (terminally, with this reason)
/// instead of landing its resources in the wrong region. (Reconciling in the spec's region is
/// issue 18's work.)
pub fn region_refusal(spec: &Spec, input: &ReconcileInput, own: &str) -> Option<String> {
    let cluster = match spec {
        Spec::Cluster(c) => Some(c.as_ref()),
        Spec::Service(s) => input
            .specs
            .get(&SpecKey::new(
                crate::spec::Kind::ClusterSpec,
                s.spec.cluster.clone(),
            ))
            .and_then(|c| match c.as_ref() {
                Spec::Cluster(c) => Some(c.as_ref()),
                Spec::Service(_) => None,
            }),
    }?;
    let wanted = cluster.spec.region.as_deref()?;
    (wanted != own).then(|| {
        format!(
            "spec.region of ClusterSpec/{} is {wanted}, but this operator reconciles in {own} only (AWS_REGION); set spec.region to {own} or leave it out, or run an operator in {wanted}",
            cluster.metadata.name
        )
    })
}

fn mode(spec: &Spec) -> Mode {
    match spec {
        Spec::Cluster(c) => c.spec.mode,
        Spec::Service(s) => s.spec.mode,
    }
}

#[async_trait]
impl Reconciler for AwsReconciler {
    async fn reconcile(&self, spec: Arc<Spec>, input: &ReconcileInput) -> Result<Report, Failure> {
        let apply = mode(&spec) == Mode::Enforce;
        if apply && input.follow_up {
            if let Some(report) = self.follow_up(&spec, input).await? {
                return Ok(report);
            }
        }
        let (run, follow) = self.walk(&spec, input, apply).await?;
        let mut follows = self.follows.lock().expect("follows lock");
        match follow {
            Some(f) => follows.insert(spec.key(), f),
            None => follows.remove(&spec.key()),
        };
        drop(follows);
        Ok(run.into_report())
    }

    async fn delete(
        &self,
        key: &SpecKey,
        last: Option<Arc<Spec>>,
        previous: &SpecStatus,
        input: &ReconcileInput,
    ) -> Result<Deletion, Failure> {
        self.follows.lock().expect("follows lock").remove(key);
        let resources = &previous.resources;
        let hands_off = last.as_deref().is_some_and(|s| {
            mode(s) == Mode::Observe
                || match s {
                    Spec::Cluster(c) => c.spec.paused,
                    Spec::Service(x) => x.spec.paused,
                }
        });
        if hands_off {
            // A paused or observe-only spec never writes, not even to delete.
            return Ok(Deletion::Deleted);
        }
        let mut run = SpecRun::new(&self.aws, key.clone(), true, false);
        let policy =
            super::driver::teardown::policy(last.as_deref(), previous.deletion_policy.as_deref());
        super::driver::teardown::teardown(&mut run, key, policy, resources, input).await?;
        if run.waiting.is_empty() {
            return Ok(Deletion::Deleted);
        }
        let mut report = run.into_report();
        report.phase = Phase::Deleting;
        report.resources = resources.to_vec();
        if let Some(ready) = report.conditions.first_mut() {
            ready.reason = "Deleting".into();
        }
        Ok(Deletion::InProgress(report))
    }

    async fn owned(&self, input: &ReconcileInput, ledgers: &[ResourceRef]) -> OwnedScan {
        let zones = super::driver::gc::zones(&input.specs, ledgers);
        super::driver::gc::scan(&self.aws, &zones).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn specs(docs: &[&str]) -> ReconcileInput {
        let mut m = BTreeMap::new();
        for (i, d) in docs.iter().enumerate() {
            let mut f = crate::spec::parse_file(&format!("d{i}.yaml"), d.as_bytes());
            let spec = f.documents.remove(0).result.expect("a valid spec");
            m.insert(spec.key(), Arc::new(spec));
        }
        ReconcileInput::fresh(Arc::new(m))
    }

    const CLUSTER: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec: {region: eu-west-1}\n";
    const PLAIN: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec: {}\n";
    const SERVICE: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  cluster: prod\n  container: {name: app, image: 'nginx:1', cpu: 256, memory: 512}\n  network: {subnets: [subnet-a]}\n";

    #[test]
    fn a_cluster_and_its_services_for_another_region_are_refused_naming_both_regions() {
        let input = specs(&[CLUSTER, SERVICE]);
        for spec in input.specs.values() {
            let why = region_refusal(spec, &input, "us-east-1").expect("refused");
            assert!(
                why.contains("eu-west-1") && why.contains("us-east-1"),
                "{why}"
            );
            assert!(why.contains("ClusterSpec/prod"), "{why}");
        }
    }

    #[test]
    fn the_operators_own_region_or_none_is_reconciled() {
        let input = specs(&[CLUSTER, SERVICE]);
        for spec in input.specs.values() {
            assert_eq!(region_refusal(spec, &input, "eu-west-1"), None);
        }
        let input = specs(&[PLAIN, SERVICE]);
        for spec in input.specs.values() {
            assert_eq!(region_refusal(spec, &input, "us-east-1"), None);
        }
    }
}

//! The AWS reconciler: one spec's resources in dependency order (docs/design.md "Resources per spec").

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::context::Aws;
use super::kinds::task_definition::RevisionCache;
use super::pipelines::follow::Follow;
use super::run::{Change, SpecRun};
use super::scopes::Scopes;
use super::ResourceError;
use crate::reconcile::{
    ConditionReport, Deletion, Failure, OwnedScan, ReconcileInput, Reconciler, Report, ValidSpecs,
};
use crate::spec::placement::moved;
use crate::spec::types::Mode;
use crate::spec::{placement_of, Placement, Spec, SpecKey};
use crate::store::status::{Phase, ResourceRef, SpecStatus};

pub struct AwsReconciler {
    /// The operator's own clients (its credentials and region).
    pub aws: Arc<Aws>,
    /// The clients of every account and region the specs name.
    pub scopes: Scopes,
    /// Task definition revisions by ARN (immutable, so cached for the process's life).
    pub revisions: Arc<RevisionCache>,
    /// ServiceSpecs whose last reconcile was requeued by their ECS service alone: what their
    /// follow-up needs (`pipelines::follow`).
    follows: Mutex<HashMap<SpecKey, Follow>>,
}

/// Why a spec is not reconciled where it is: it names an account or region it cannot reach or
/// move to. The spec's report (phase Degraded) or, for `diff`, its error.
struct Refusal {
    reason: &'static str,
    message: String,
}

impl AwsReconciler {
    pub fn new(aws: Arc<Aws>) -> Self {
        AwsReconciler::with_allowed_accounts(aws, None)
    }

    /// `allowed`: `--allowed-accounts` (`None`: any account a spec names).
    pub fn with_allowed_accounts(aws: Arc<Aws>, allowed: Option<BTreeSet<String>>) -> Self {
        AwsReconciler {
            scopes: Scopes::new(aws.clone(), allowed),
            aws,
            revisions: Arc::default(),
            follows: Mutex::new(HashMap::new()),
        }
    }

    /// The clients of `spec`'s account and region, and the specs of the store that live there
    /// (a reconcile's shared reads and references cover those only).
    async fn scope_of(
        &self,
        spec: &Spec,
        input: &ReconcileInput,
    ) -> Result<(Arc<Aws>, Placement, ReconcileInput), Refusal> {
        let now = match placement_of(spec, &input.specs) {
            Some(p) => self.scopes.resolve(&p),
            // A service whose cluster is missing: its pipeline says so.
            None => self.scopes.resolve(&Placement::default()),
        };
        if let Some(recorded) = &input.placement {
            if let Some(why) = moved(recorded, &now) {
                return Err(Refusal {
                    reason: "ImmutableField",
                    message: why,
                });
            }
        }
        let aws = self.scopes.aws(&now).await.map_err(|u| Refusal {
            reason: u.reason(),
            message: u.message().to_string(),
        })?;
        let key = now.scope_key();
        let specs: std::collections::BTreeMap<_, _> = input
            .specs
            .iter()
            .filter(|(_, s)| {
                placement_of(s, &input.specs).map(|p| self.scopes.resolve(&p).scope_key())
                    == Some(key.clone())
            })
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        let scoped = ReconcileInput {
            specs: Arc::new(specs),
            ..input.clone()
        };
        Ok((aws, now, scoped))
    }

    /// Walk the spec's resources with `aws` (its account and region); with `apply == false`,
    /// plan only. Also returns what a follow-up of this run may use (`pipelines::follow`).
    async fn walk_in<'a>(
        &'a self,
        aws: &'a Aws,
        placement: &Placement,
        spec: &Spec,
        input: &ReconcileInput,
        apply: bool,
    ) -> Result<(SpecRun<'a>, Option<Follow>), ResourceError> {
        let mut run = run_in(aws, placement, spec, input, apply);
        let follow = match spec {
            // Boxed: the pipelines' futures are large, and debug builds copy a future once per
            // layer that awaits it (a test thread's 2 MiB stack overflowed).
            Spec::Cluster(c) => {
                Box::pin(super::pipelines::cluster::reconcile(&mut run, c, input)).await?;
                None
            }
            Spec::Service(s) => {
                Box::pin(super::pipelines::service::reconcile(
                    &mut run,
                    s,
                    input,
                    &self.revisions,
                ))
                .await?
            }
        };
        Ok((run, follow))
    }

    /// The follow-up of a ServiceSpec requeued by its service alone (`pipelines::follow`), in
    /// the spec's account and region: `None` when a full reconcile must run instead.
    async fn follow_up(
        &self,
        aws: &Aws,
        placement: &Placement,
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
        let mut run = run_in(aws, placement, spec, input, true);
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
        let (aws, placement, input) = self
            .scope_of(spec, input)
            .await
            .map_err(|r| ResourceError::Unsatisfiable(format!("{}: {}", r.reason, r.message)))?;
        Ok(self
            .walk_in(&aws, &placement, spec, &input, false)
            .await?
            .0
            .changes)
    }

    /// Where `spec` lives, as `status` and `diff` show it.
    pub fn placement_shown(&self, spec: &Spec, specs: &ValidSpecs) -> Placement {
        self.scopes
            .resolve(&placement_of(spec, specs).unwrap_or_default())
    }
}

/// A fresh run of `spec` over `input` with `aws`, the clients of `placement`.
fn run_in<'a>(
    aws: &'a Aws,
    placement: &Placement,
    spec: &Spec,
    input: &ReconcileInput,
    apply: bool,
) -> SpecRun<'a> {
    let adopt = spec
        .metadata()
        .annotations
        .get(crate::ADOPT_ANNOTATION)
        .is_some_and(|v| v == "true");
    SpecRun::new(aws, spec.key(), apply, adopt).with_input_in(input, placement.scope_key())
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
        let (aws, placement, input) = match self.scope_of(&spec, input).await {
            Ok(x) => x,
            Err(r) => {
                // Nothing was read: what the spec owns stays as its ledger lists it (an
                // unreachable account is never "resources gone"). Try again later: a role
                // restored, or an allowed list changed by a restart, is picked up then.
                self.follows
                    .lock()
                    .expect("follows lock")
                    .remove(&spec.key());
                let message = format!("{}: {}", r.reason, r.message);
                return Ok(Report {
                    phase: Phase::Degraded,
                    conditions: vec![
                        ConditionReport::new("Ready", false, r.reason, message),
                        ConditionReport::new("Reachable", false, r.reason, r.message),
                    ],
                    resources: input.ledger.clone().unwrap_or_default(),
                    requeue_after: Some(UNREACHABLE_RETRY),
                });
            }
        };
        if apply && input.follow_up {
            if let Some(report) = self.follow_up(&aws, &placement, &spec, &input).await? {
                return Ok(report);
            }
        }
        let (run, follow) = self.walk_in(&aws, &placement, &spec, &input, apply).await?;
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
        // Where the resources are: as the record says, else where the spec said.
        let placement = previous
            .placement
            .clone()
            .or_else(|| last.as_deref().and_then(|s| placement_of(s, &input.specs)))
            .unwrap_or_default();
        let aws =
            self.scopes.aws(&placement).await.map_err(|u| {
                Failure::Retryable(format!("{}: {}", u.reason(), u.message()).into())
            })?;
        let mut run = SpecRun::new(&aws, key.clone(), true, false);
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
        // Every account and region the specs or the status records name, each scanned with
        // its own clients; one that cannot be reached is reported and skipped (finding less
        // only ever adds less to a ledger).
        let mut places: BTreeSet<Placement> = input
            .specs
            .values()
            .filter_map(|s| placement_of(s, &input.specs))
            .chain(input.placements.iter().cloned())
            .map(|p| self.scopes.resolve(&p))
            .collect();
        places.insert(self.scopes.resolve(&Placement::default()));
        let mut all = OwnedScan::default();
        for p in places {
            let aws = match self.scopes.aws(&p).await {
                Ok(aws) => aws,
                Err(u) => {
                    all.errors.push(format!("{p}: {}", u.message()));
                    continue;
                }
            };
            let key = p.scope_key();
            let specs: std::collections::BTreeMap<_, _> = input
                .specs
                .iter()
                .filter(|(_, s)| {
                    placement_of(s, &input.specs).map(|q| self.scopes.resolve(&q).scope_key())
                        == Some(key.clone())
                })
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect();
            let zones = super::driver::gc::zones(&Arc::new(specs), ledgers);
            let scan = super::driver::gc::scan(&aws, &zones).await;
            for (owner, found) in scan.owned {
                all.owned.entry(owner).or_default().extend(found);
            }
            all.errors
                .extend(scan.errors.into_iter().map(|e| format!("{p}: {e}")));
        }
        all
    }

    fn placement(&self, spec: &Spec, specs: &ValidSpecs) -> Option<Placement> {
        placement_of(spec, specs).map(|p| self.scopes.resolve(&p))
    }
}

/// How soon a spec whose account cannot be reached is tried again.
pub const UNREACHABLE_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn specs(docs: &[&str]) -> ValidSpecs {
        let mut m = BTreeMap::new();
        for (i, d) in docs.iter().enumerate() {
            let mut f = crate::spec::parse_file(&format!("d{i}.yaml"), d.as_bytes());
            let spec = f.documents.remove(0).result.expect("a valid spec");
            m.insert(spec.key(), Arc::new(spec));
        }
        Arc::new(m)
    }

    const CLUSTER: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec:\n  region: eu-west-1\n  account: {id: '210987654321', roleArn: 'arn:aws:iam::210987654321:role/t'}\n";
    const SERVICE: &str = "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  cluster: prod\n  container: {name: app, image: 'nginx:1', cpu: 256, memory: 512}\n  network: {subnets: [subnet-a]}\n";

    #[test]
    fn a_service_lives_in_its_clusters_account_and_region() {
        let specs = specs(&[CLUSTER, SERVICE]);
        let places: Vec<Placement> = specs
            .values()
            .map(|s| placement_of(s, &specs).expect("placed"))
            .collect();
        assert_eq!(places[0], places[1]);
        assert_eq!(places[0].region.as_deref(), Some("eu-west-1"));
        assert_eq!(places[0].account_label(), "210987654321");
    }
}

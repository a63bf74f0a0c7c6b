//! A ServiceSpec waits for its ClusterSpec (pure decision plus the set of waiting keys).
//!
//! A service needs what its cluster creates (the ECS cluster, the load balancer and its HTTPS
//! listener). Reconciling it earlier reads AWS, fails with a dependency error and backs off,
//! which on a first convergence of a fleet costs one failed reconcile and several reads per
//! service and delays it by its backoff after the cluster is ready. Instead the controller
//! parks the service (no AWS read, no error, phase `Pending` with condition
//! `ClusterReady=False`) and wakes it the moment the cluster's reconcile no longer blocks it.
//!
//! Invariants:
//! - a service waits only while its ClusterSpec is in the store, valid, and either not yet
//!   reconciled for its current generation or `Pending`/`Progressing`; any other state
//!   (Ready, Degraded, Failed, Paused, absent, invalid) lets the service reconcile, so the
//!   service reports the real problem itself and never waits forever on a final state;
//! - a key is parked and woken under the controller's status lock, so a cluster that becomes
//!   Ready between the service's check and its parking still wakes it.

use std::collections::BTreeMap;

use crate::spec::{Kind, Spec, SpecKey};
use crate::store::status::{Phase, SpecStatus};

use super::desired::{Desired, DesiredEntry};

/// The ClusterSpec a spec depends on: a ServiceSpec's `spec.cluster`; a ClusterSpec has none.
pub fn cluster_of(spec: &Spec) -> Option<SpecKey> {
    match spec {
        Spec::Cluster(_) => None,
        Spec::Service(s) => Some(SpecKey::new(Kind::ClusterSpec, s.spec.cluster.clone())),
    }
}

/// Why a service must wait for `cluster`, or `None` when it can reconcile (see the module
/// invariants). `entry`: the cluster's desired entry; `status`: its last status.
pub fn blocked_by(
    cluster: &SpecKey,
    entry: Option<&DesiredEntry>,
    status: Option<&SpecStatus>,
) -> Option<String> {
    let entry = entry?;
    entry.spec.as_ref().ok()?;
    let Some(status) = status else {
        return Some(format!("waiting for {cluster}: not reconciled yet"));
    };
    if status.observed_generation.as_deref() != Some(entry.generation.as_str()) {
        return Some(format!(
            "waiting for {cluster}: its current generation is not reconciled yet"
        ));
    }
    match status.phase {
        Phase::Pending | Phase::Progressing => {
            let why = status.summary();
            Some(if why.is_empty() {
                format!("waiting for {cluster} ({})", status.phase)
            } else {
                format!("waiting for {cluster} ({}: {why})", status.phase)
            })
        }
        _ => None,
    }
}

/// Services parked until their cluster stops blocking them, by cluster; for each, whether it
/// was parked by a reconcile of a resync wave (it is woken into the current wave then, so a
/// fleet whose statuses are unknown still reads in batches; otherwise it is woken fresh).
#[derive(Debug, Default)]
pub struct Waiting {
    by_cluster: BTreeMap<SpecKey, BTreeMap<SpecKey, bool>>,
}

impl Waiting {
    /// Park `service` behind `cluster`; `in_wave`: the parked reconcile was part of a wave.
    /// Parked twice, it is woken fresh if either reconcile was.
    pub fn park(&mut self, cluster: SpecKey, service: SpecKey, in_wave: bool) {
        let w = self
            .by_cluster
            .entry(cluster)
            .or_default()
            .entry(service)
            .or_insert(in_wave);
        *w &= in_wave;
    }

    /// Take every service parked behind `cluster` (with its `in_wave`) if the cluster no
    /// longer blocks them.
    pub fn release(
        &mut self,
        cluster: &SpecKey,
        desired: &Desired,
        status: Option<&SpecStatus>,
    ) -> Vec<(SpecKey, bool)> {
        if blocked_by(cluster, desired.entries.get(cluster), status).is_some() {
            return Vec::new();
        }
        self.by_cluster
            .remove(cluster)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }

    /// Every parked service, emptying the set.
    pub fn into_keys(self) -> Vec<SpecKey> {
        self.by_cluster
            .into_values()
            .flat_map(BTreeMap::into_keys)
            .collect()
    }

    /// Every parked service.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_cluster.values().map(BTreeMap::len).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entry(generation: &str, valid: bool) -> DesiredEntry {
        let key = SpecKey::new(Kind::ClusterSpec, "prod");
        let spec = if valid {
            let doc = "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec: {}\n";
            Ok(Arc::new(
                crate::spec::parse_file("c.yaml", doc.as_bytes())
                    .documents
                    .remove(0)
                    .result
                    .unwrap(),
            ))
        } else {
            Err("bad".to_string())
        };
        DesiredEntry {
            key,
            generation: generation.into(),
            origin: "c.yaml document 1".into(),
            spec,
        }
    }

    fn status(phase: Phase, generation: &str) -> SpecStatus {
        let mut s = SpecStatus::pending(&SpecKey::new(Kind::ClusterSpec, "prod"));
        s.phase = phase;
        s.observed_generation = Some(generation.into());
        s
    }

    fn key() -> SpecKey {
        SpecKey::new(Kind::ClusterSpec, "prod")
    }

    #[test]
    fn a_cluster_not_yet_reconciled_blocks() {
        let e = entry("g1", true);
        assert!(blocked_by(&key(), Some(&e), None)
            .unwrap()
            .contains("not reconciled yet"));
    }

    #[test]
    fn a_cluster_reconciled_for_an_older_generation_blocks() {
        let e = entry("g2", true);
        let s = status(Phase::Ready, "g1");
        assert!(blocked_by(&key(), Some(&e), Some(&s)).is_some());
    }

    #[test]
    fn pending_and_progressing_clusters_block_and_every_other_phase_releases() {
        let e = entry("g1", true);
        for p in [Phase::Pending, Phase::Progressing] {
            assert!(blocked_by(&key(), Some(&e), Some(&status(p, "g1"))).is_some());
        }
        for p in [
            Phase::Ready,
            Phase::Degraded,
            Phase::Failed,
            Phase::Paused,
            Phase::Deleting,
            Phase::Invalid,
        ] {
            assert_eq!(
                blocked_by(&key(), Some(&e), Some(&status(p, "g1"))),
                None,
                "{p:?}"
            );
        }
    }

    #[test]
    fn an_absent_or_invalid_cluster_never_blocks() {
        assert_eq!(blocked_by(&key(), None, None), None);
        let e = entry("g1", false);
        assert_eq!(blocked_by(&key(), Some(&e), None), None);
    }

    #[test]
    fn release_takes_the_parked_services_only_once_the_cluster_stops_blocking() {
        let mut desired = Desired::default();
        desired.entries.insert(key(), entry("g1", true));
        let mut w = Waiting::default();
        let web = SpecKey::new(Kind::ServiceSpec, "web");
        let admin = SpecKey::new(Kind::ServiceSpec, "admin");
        w.park(key(), web.clone(), true);
        w.park(key(), admin.clone(), true);
        w.park(key(), web.clone(), false);
        assert_eq!(w.len(), 2);
        let progressing = status(Phase::Progressing, "g1");
        assert!(w.release(&key(), &desired, Some(&progressing)).is_empty());
        assert_eq!(w.len(), 2);
        let ready = status(Phase::Ready, "g1");
        // web was parked once outside a wave: it is woken fresh; admin joins the wave.
        assert_eq!(
            w.release(&key(), &desired, Some(&ready)),
            vec![(admin, true), (web, false)]
        );
        assert!(w.is_empty());
        assert!(w.release(&key(), &desired, Some(&ready)).is_empty());
    }
}

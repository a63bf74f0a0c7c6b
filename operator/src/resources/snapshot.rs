//! The shared observe cache of a resync wave (docs/design.md "Shared reads").
//!
//! **Why.** Observing one spec reads AWS per spec: its ECS service, its target group and tags,
//! the rules of its listener, its zone's records... For N ServiceSpecs one resync is roughly N
//! times every read, and ELBv2 allows 10 reads per second for the whole account. AWS's own
//! batch reads (DescribeServices takes 10 services, DescribeTags 20 ARNs, one DescribeRules
//! lists every rule of a listener, one ListResourceRecordSets every record of a zone...) serve
//! every spec at once, if the specs of one resync share them.
//!
//! **Scope: a wave, not a clock.** A TTL cache misses edits made just after a refresh, so a
//! drift that one reconcile must restore could go unseen for a whole TTL. Here a [`Snapshot`]
//! belongs to one resync *wave* (the runtime resyncs every spec together, see
//! `runtime::runner`): it is created empty when the wave's first reconcile starts and dropped
//! when the next wave starts. Each entry (an [`Entry`]: "the ECS services of cluster X", "every
//! target group and its tags", "the rules of listener L", "the records of zone Z"...) is read
//! by the first reconcile of the wave that needs it, once (single flight: reconciles asking
//! while it is read wait for that read, a `tokio::sync::OnceCell` per entry), and shared by the
//! others. So whatever was true when the wave's reads ran is what the wave sees: a hand edit
//! made before a wave starts is seen, and restored, by that wave.
//!
//! **Who uses it.** Only reconciles that the runtime started as part of a wave
//! (`ReconcileInput::wave`). A spec change, a requeue while a rollout or a certificate is
//! followed, a retry after a failure, a deletion, `ecs-operator diff` and direct calls of
//! `AwsReconciler::reconcile` read fresh, exactly as without the cache. Reads that AWS cannot
//! batch (target group and load balancer attributes, ECR tags and lifecycle policies, listener
//! and load balancer tags for a ClusterSpec) are made per reconcile as before.
//!
//! **Own writes.** A reconcile that writes anything, before and after each write:
//! - drops from the snapshot every entry it has read in this run (a reconcile only writes what
//!   it observed, so these are the entries its write can make stale): later readers in the
//!   wave read them again, after the write;
//! - reads fresh, bypassing the snapshot, for the rest of its run ([`SpecRun::cached`] answers
//!   `None`).
//!
//! A reconcile that writes is followed by a fresh one (a requeue) or by the next wave (a new
//! snapshot), never by the same wave: the runtime never puts a key into a wave while it runs
//! and gives every follow-up a fresh run. So nothing this operator creates can be missing from
//! what its creator reads next, and a stale snapshot cannot cause a duplicate create.
//!
//! [`SpecRun::cached`]: super::run::SpecRun::cached

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::ResourceError;
use crate::spec::types::ServiceSpec;
use crate::spec::Spec;
use crate::spec::ValidSpecs;

/// One batched read of the snapshot. The value each holds is produced and read by one
/// function only (named on each variant).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    /// The ECS services of a cluster (by cluster name) that the store's ServiceSpecs name,
    /// DescribeServices 10 at a time (`ecs_service::observe`).
    EcsServices(String),
    /// Every load balancer, DescribeLoadBalancers 400 per page (`load_balancer::describe`).
    LoadBalancers,
    /// The listeners of a load balancer (by ARN), without tags (`listener::listeners`).
    Listeners(String),
    /// The certificates of a listener (by ARN), DescribeListenerCertificates
    /// (`listener::sni_certificates`).
    ListenerCertificates(String),
    /// Every target group, 400 per page, and the tags of those the store's ServiceSpecs name,
    /// 20 per DescribeTags (`target_group::describe`).
    TargetGroups,
    /// Every rule of a listener (by ARN) and their tags, 20 per DescribeTags
    /// (`listener_rule::rules_and_tags`).
    Rules(String),
    /// Every ISSUED or PENDING_VALIDATION certificate, ListCertificates
    /// (`certificate::observe`).
    Certificates,
    /// The tags of one certificate (by ARN), ListTagsForCertificate (`certificate::tags`).
    CertificateTags(String),
    /// One certificate (by ARN), DescribeCertificate (`certificate::describe_cached`).
    Certificate(String),
    /// A hosted zone by the name or id a spec gives (`zone::resolve`).
    Zone(String),
    /// Every record of a hosted zone (by id), ListResourceRecordSets (`zone::records`).
    Records(String),
    /// Every ECR repository, DescribeRepositories 1000 per page (`ecr::describe`).
    Repositories,
    /// Every ECS scalable target and scaling policy, DescribeScalableTargets and
    /// DescribeScalingPolicies (`scaling::observe`).
    Scaling,
    /// The alarms every alarm name the store's specs can have, DescribeAlarms 100 names per
    /// call, and their tags (`alarm::observe`).
    Alarms,
    /// Every SNS topic ARN, ListTopics 100 per page (`sns_topic::find`).
    Topics,
    /// Every email subscription by topic, ListSubscriptions 100 per page
    /// (`sns_subscription::observe`).
    Subscriptions,
    /// The log groups the store's ServiceSpecs name (DescribeLogGroups under their common
    /// prefix, 50 per page) and their tags (`log_group::observe`).
    LogGroups,
    /// Every metric filter, DescribeMetricFilters 50 per page (`metric_filter::observe`).
    MetricFilters,
}

type Value = Arc<dyn Any + Send + Sync>;

/// An entry of one scope (`Placement::scope_key`), read once.
type Cells = HashMap<(String, Entry), Arc<OnceCell<Value>>>;

/// The shared reads of one resync wave.
pub struct Snapshot {
    wave: u64,
    /// By scope (`Placement::scope_key`: one account and region) and entry.
    entries: Mutex<Cells>,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("wave", &self.wave)
            .field("entries", &self.entries().len())
            .finish()
    }
}

impl Snapshot {
    /// An empty snapshot for wave `wave`.
    pub fn new(wave: u64) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            wave,
            entries: Mutex::new(HashMap::new()),
        })
    }

    pub fn wave(&self) -> u64 {
        self.wave
    }

    /// The entries read (or being read) now, sorted.
    pub fn entries(&self) -> Vec<Entry> {
        let mut v: Vec<Entry> = self
            .entries
            .lock()
            .expect("snapshot lock")
            .keys()
            .map(|(_, e)| e.clone())
            .collect();
        v.sort();
        v
    }

    /// The value of `entry`: read by `fetch` if no reconcile of the wave has read it yet, else
    /// the value that read produced (waiting for it if it is under way). A failed read is not
    /// kept: the next reconcile asking tries again.
    #[cfg(test)]
    async fn get<T, F, Fut>(&self, entry: &Entry, fetch: F) -> Result<Arc<T>, ResourceError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ResourceError>>,
    {
        self.get_in("", entry, fetch).await
    }

    /// [`Snapshot::get`] in one scope (account and region): scopes never share an entry.
    async fn get_in<T, F, Fut>(
        &self,
        scope: &str,
        entry: &Entry,
        fetch: F,
    ) -> Result<Arc<T>, ResourceError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, ResourceError>>,
    {
        let cell = self
            .entries
            .lock()
            .expect("snapshot lock")
            .entry((scope.to_string(), entry.clone()))
            .or_default()
            .clone();
        let value = cell
            .get_or_try_init(|| async { fetch().await.map(|v| Arc::new(v) as Value) })
            .await?
            .clone();
        Ok(value.downcast::<T>().unwrap_or_else(|_| {
            panic!("snapshot entry {entry:?} read as two types: a bug in its accessor")
        }))
    }

    /// Drop `entries`: the next reconcile asking reads them again. A read under way finishes
    /// for those waiting on it and is then forgotten.
    fn forget<'e>(&self, scope: &str, entries: impl IntoIterator<Item = &'e Entry>) {
        let mut map = self.entries.lock().expect("snapshot lock");
        for e in entries {
            map.remove(&(scope.to_string(), e.clone()));
        }
    }
}

/// One reconcile's part in a wave: the snapshot, the specs it was started with (what batched
/// reads cover), what it has read, and whether it has written.
pub struct WaveRun {
    snapshot: Arc<Snapshot>,
    /// The account and region this reconcile reads (`Placement::scope_key`).
    scope: String,
    specs: ValidSpecs,
    touched: Mutex<HashSet<Entry>>,
    wrote: AtomicBool,
}

impl fmt::Debug for WaveRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaveRun")
            .field("wave", &self.snapshot.wave)
            .field("wrote", &self.wrote.load(Ordering::Relaxed))
            .finish()
    }
}

impl WaveRun {
    pub fn new(snapshot: Arc<Snapshot>, specs: ValidSpecs) -> Arc<WaveRun> {
        WaveRun::in_scope(snapshot, specs, String::new())
    }

    /// A reconcile of the wave reading one account and region: `specs` are the specs there.
    pub fn in_scope(snapshot: Arc<Snapshot>, specs: ValidSpecs, scope: String) -> Arc<WaveRun> {
        Arc::new(WaveRun {
            snapshot,
            scope,
            specs,
            touched: Mutex::new(HashSet::new()),
            wrote: AtomicBool::new(false),
        })
    }

    /// `entry` from the snapshot, read by `fetch(specs)` if needed; `None` once this reconcile
    /// has written (it reads fresh from then on). Either way `entry` counts as read by it.
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
        self.touched
            .lock()
            .expect("touched lock")
            .insert(entry.clone());
        if self.wrote.load(Ordering::Acquire) {
            return None;
        }
        let specs = self.specs.clone();
        // Boxed: a batched read is a big future, and every observe holds one beside its
        // fresh read (debug builds poll deep futures on the stack).
        Some(
            Box::pin(
                self.snapshot
                    .get_in(&self.scope, &entry, || Box::pin(fetch(specs))),
            )
            .await,
        )
    }

    /// Called before and after every write of this reconcile: forget what it has read, and
    /// read fresh from now on.
    pub fn writing(&self) {
        self.wrote.store(true, Ordering::Release);
        let touched = self.touched.lock().expect("touched lock");
        self.snapshot.forget(&self.scope, touched.iter());
    }

    pub fn has_written(&self) -> bool {
        self.wrote.load(Ordering::Acquire)
    }
}

/// The ServiceSpecs of the store that a batched read covers: not paused (a paused spec's
/// resources are not read).
pub fn service_specs(specs: &ValidSpecs) -> impl Iterator<Item = &ServiceSpec> {
    specs.values().filter_map(|s| match s.as_ref() {
        Spec::Service(svc) if !svc.spec.paused => Some(svc.as_ref()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn concurrent_readers_of_an_entry_share_one_read() {
        let snap = Snapshot::new(1);
        let reads = Arc::new(AtomicUsize::new(0));
        let read = |snap: Arc<Snapshot>, reads: Arc<AtomicUsize>| async move {
            snap.get(&Entry::TargetGroups, || async {
                reads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok::<_, ResourceError>(vec![1, 2, 3])
            })
            .await
            .unwrap()
        };
        let all = futures::future::join_all(
            (0..10).map(|_| tokio::spawn(read(snap.clone(), reads.clone()))),
        )
        .await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        for v in all {
            assert_eq!(*v.unwrap(), vec![1, 2, 3]);
        }
    }

    #[tokio::test]
    async fn two_scopes_of_one_wave_never_share_a_read() {
        let snap = Snapshot::new(1);
        let specs = ValidSpecs::default();
        let a = WaveRun::in_scope(snap.clone(), specs.clone(), "111111111111/eu-west-1".into());
        let b = WaveRun::in_scope(snap.clone(), specs, "222222222222/us-west-2".into());
        let one = || async { Ok::<u32, ResourceError>(1) };
        let two = || async { Ok::<u32, ResourceError>(2) };
        let va = a
            .cached(Entry::TargetGroups, |_| one())
            .await
            .unwrap()
            .unwrap();
        let vb = b
            .cached(Entry::TargetGroups, |_| two())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((*va, *vb), (1, 2));
        // A write in one scope drops only that scope's entry.
        a.writing();
        let again = b
            .cached(Entry::TargetGroups, |_| one())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*again, 2);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let snap = Snapshot::new(1);
        let e = snap
            .get::<u32, _, _>(&Entry::LoadBalancers, || async {
                Err(ResourceError::Dependency("down".into()))
            })
            .await;
        assert!(e.is_err());
        let v = snap
            .get(&Entry::LoadBalancers, || async {
                Ok::<u32, ResourceError>(7)
            })
            .await
            .unwrap();
        assert_eq!(*v, 7);
    }

    #[tokio::test]
    async fn a_reconcile_that_writes_drops_what_it_read_and_reads_fresh_after() {
        let snap = Snapshot::new(1);
        let specs = ValidSpecs::default();
        let writer = WaveRun::new(snap.clone(), specs.clone());
        let other = WaveRun::new(snap.clone(), specs);
        let one = || async { Ok::<u32, ResourceError>(1) };
        let two = || async { Ok::<u32, ResourceError>(2) };
        writer
            .cached(Entry::Rules("l1".into()), |_| one())
            .await
            .unwrap()
            .unwrap();
        other
            .cached(Entry::TargetGroups, |_| one())
            .await
            .unwrap()
            .unwrap();
        writer.writing();
        assert_eq!(snap.entries(), vec![Entry::TargetGroups]);
        assert!(writer
            .cached(Entry::TargetGroups, |_| two())
            .await
            .is_none());
        // The other reconcile reads the dropped entry again.
        let v = other
            .cached(Entry::Rules("l1".into()), |_| two())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*v, 2);
        // What the writer read, before or after its first write, is dropped by its next one.
        writer.writing();
        assert!(snap.entries().is_empty());
    }
}

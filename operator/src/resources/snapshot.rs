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
//! **Own writes.** A reconcile's write changes what some entries would answer now. Each write
//! is one of three sorts, and the snapshot is kept a true picture (what a read made after the
//! write would answer, but for what people and other tools change meanwhile, which a wave never
//! sees before the next one anyway) or the stale entries are dropped:
//! - **Recorded** (write-through, [`Record`]): a write whose effect on the entries is known
//!   exactly from what it sent and what AWS answered records that effect into them: a
//!   CreateTargetGroup adds the target group as AWS returned it, with the tags it sent, to
//!   `TargetGroups`; a CreateRule, ModifyRule or SetRulePriorities puts the rule as AWS
//!   returned it (and a created rule's tags) into `Rules(listener)`, a DeleteRule there takes
//!   it out; ModifyTargetGroup replaces the target group; ModifyTargetGroupAttributes changes
//!   no entry; Add/RemoveListenerCertificates add or remove the certificate in
//!   `ListenerCertificates(listener)` and drop ACM's `Certificate` and `Certificates` (their
//!   `InUseBy` changes). Every record is an upsert or a removal by ARN or name, so applying it to a
//!   listing that already saw the write changes nothing. An entry whose read is under way when
//!   the write is recorded may or may not have seen it: it is dropped instead (those already
//!   waiting on it get that read, as if they had read before the write; the next reconcile
//!   asking reads again). An entry nobody has read is left unread: its first read comes after
//!   the write. A recorded write drops nothing else and the reconcile keeps reading the
//!   ELBv2 entries of the snapshot (the others it reads fresh, as after any write: see "A
//!   writer reads by name"). A recorded call that fails (its outcome unknown), or is cancelled
//!   before its answer, counts as an ELBv2 write of the next sort.
//! - **ELBv2, not recorded** (a load balancer, listener or tag write, a target group
//!   deletion): as every write was before write-through, before and after the
//!   write the reconcile drops from the snapshot every entry it has read in this run (a
//!   reconcile only writes what it observed, so these are the entries its write can make
//!   stale; later readers in the wave read them again, after the write), and reads fresh,
//!   bypassing the snapshot, for the rest of its run ([`SpecRun::cached`] answers `None`).
//! - **Any other service's** (ECS, Route53, ACM, ECR, scaling, CloudWatch, Logs, SNS...): the
//!   writer drops only the entries *of the service it wrote to* that it has read
//!   ([`Entry::service`]), and reads every non-ELBv2 entry fresh for the rest of its run. No
//!   such write changes what another service's entries hold: an UpdateService changes no log
//!   group, a PutMetricAlarm no topic, a CreateLogGroup no alarm; in particular none changes
//!   the ELBv2 entries (load balancers, listeners and their certificates, target groups and
//!   their tags, rules and their tags): ECS registers targets (not read here) and, in a
//!   traffic-shifting deployment, rewrites rule weights (not kept: a forward action is
//!   compared as its set of target groups). The converse does not hold for ELBv2 (a listener
//!   certificate write changes ACM's `InUseBy`), which is why an unrecorded ELBv2 write drops
//!   every entry it read. Dropping every non-ELBv2 entry on any such write, as before, made
//!   each UpdateService of a wave drop the log-group listing, whose next reader read the tags
//!   of every log group again: 2309 tag reads instead of 300 in a wave at N = 300, holding
//!   every reconcile slot on CloudWatch Logs' rate for five minutes.
//!
//! A reconcile that writes is followed by a fresh one (a requeue) or by the next wave (a new
//! snapshot), never by the same wave: the runtime never puts a key into a wave while it runs
//! and gives every follow-up a fresh run. Within a run, whatever it created is either in the
//! entries it reads next (recorded) or read fresh (dropped). So nothing this operator creates
//! can be missing from what its creator reads next, and a stale snapshot cannot cause a
//! duplicate create, nor a deletion of something kept (a deletion acts on what a listing
//! shows; a listing shows only what was read or recorded).
//!
//! **A writer reads by name.** Once a reconcile has written anything, it reads the entries of
//! services other than ELBv2 fresh, by name, for the rest of its run, dropped or not. This is
//! about cost as much as safety: those listings are dropped by each new spec's own writes (its
//! log group, topic, alarms, ECS service...), so a creating reconcile that went on reading
//! them would make every next one list them again, with a tag read per listed resource, and
//! a first convergence would cost reads quadratic in the number of specs. The ELBv2 listings
//! stay shared because their writes are recorded, not dropped.
//!
//! **A dropped listing stays dropped** when it reads per resource ([`Entry::lists_per_resource`]:
//! the log groups and the alarms, a tag read for each, as CloudWatch has no batch tag read).
//! Once a write has dropped such an entry, the wave does not list it again: its later readers
//! read by name, fresh. Those listings are dropped by each new spec's own writes, so listing
//! them again after each drop made a wave that met services still being created read them over
//! and over: at N = 300 a timed wave during the first convergence kept up to 16 listings of
//! every log group's tags going at once on CloudWatch Logs' 8 reads per second, for more than
//! five minutes. By name, a reader costs its own reads (one lookup and one tag read for a log
//! group), so such an entry costs a wave at most one listing plus the by-name reads of its
//! readers, however many writes it meets. The paged listings (ECS services 10 per call,
//! records, target groups 400 per page with tags 20 per call...) are listed again after a drop:
//! by name, every later reader would make at least one call (a Route53 read each, at 5/s for
//! the account) where a listing again costs a few pages.
//!
//! **Why write-through.** In a first convergence every ServiceSpec creates its target group and
//! rule. Dropping the listings on each create made the next service read them again (about 7
//! ELBv2 reads per service, sharing AWS's account-wide ELBv2 rate with the writes); recorded,
//! they are read about once per wave.
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
use crate::aws::Service;
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

impl Entry {
    /// Whether its listing makes a call per resource listed (a tag read each): such an entry
    /// is not listed again in a wave that dropped it (see "A dropped listing stays dropped").
    pub fn lists_per_resource(&self) -> bool {
        matches!(self, Entry::LogGroups | Entry::Alarms)
    }

    /// Whether the entry reads ELBv2 (only ELBv2 writes can change it: see "Own writes").
    pub fn is_elbv2(&self) -> bool {
        self.service() == Service::Elbv2
    }

    /// The service the entry reads: a write to another service, but for ELBv2's listener
    /// certificates (which change ACM's `InUseBy`, and drop every entry they read), does not
    /// change what it holds (see "Own writes").
    pub fn service(&self) -> Service {
        match self {
            Entry::LoadBalancers
            | Entry::Listeners(_)
            | Entry::ListenerCertificates(_)
            | Entry::TargetGroups
            | Entry::Rules(_) => Service::Elbv2,
            Entry::EcsServices(_) => Service::Ecs,
            Entry::Certificates | Entry::CertificateTags(_) | Entry::Certificate(_) => Service::Acm,
            Entry::Zone(_) | Entry::Records(_) => Service::Route53,
            Entry::Repositories => Service::Ecr,
            Entry::Scaling => Service::ApplicationAutoScaling,
            Entry::Alarms => Service::CloudWatch,
            Entry::Topics | Entry::Subscriptions => Service::Sns,
            Entry::LogGroups | Entry::MetricFilters => Service::Logs,
        }
    }
}

/// What one recorded write did to one entry (see "Own writes"): built by the kind that wrote,
/// from what it sent and what AWS answered, and applied by [`WaveRun::recorded`].
pub struct Record {
    entry: Entry,
    /// `None`: the write changed the entry in a way the record cannot describe (drop it).
    apply: Option<Update>,
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("entry", &self.entry)
            .field("update", &self.apply.is_some())
            .finish()
    }
}

impl Record {
    /// The entry `entry` (whose value is a `T`) becomes `update(value)`. `update` must be an
    /// upsert or removal by key, so that applying it to a value that already saw the write
    /// changes nothing.
    pub fn update<T, F>(entry: Entry, update: F) -> Record
    where
        T: Send + Sync + 'static,
        F: FnOnce(&T) -> T + Send + 'static,
    {
        let name = entry.clone();
        Record {
            entry,
            apply: Some(Box::new(move |v| {
                let old = v.downcast_ref::<T>().unwrap_or_else(|| {
                    panic!("snapshot entry {name:?} recorded as another type: a bug in its writer")
                });
                Arc::new(update(old)) as Value
            })),
        }
    }

    /// The write changed `entry` in a way no record describes: drop it.
    pub fn forget(entry: Entry) -> Record {
        Record { entry, apply: None }
    }

    /// What the entry holding `value` becomes (`None`: it is dropped). For the writers' unit
    /// tests.
    #[cfg(test)]
    pub(crate) fn applied<T: Send + Sync + 'static>(self, value: T) -> Option<Arc<T>> {
        let apply = self.apply?;
        Some(
            apply(&value)
                .downcast::<T>()
                .unwrap_or_else(|_| panic!("a record changed its entry's type")),
        )
    }
}

type Value = Arc<dyn Any + Send + Sync>;

/// A [`Record`]'s new value of its entry, from the old one.
type Update = Box<dyn FnOnce(&(dyn Any + Send + Sync)) -> Value + Send>;

/// An entry of one scope (`Placement::scope_key`), read once.
type Cells = HashMap<(String, Entry), Arc<OnceCell<Value>>>;

/// The shared reads of one resync wave.
pub struct Snapshot {
    wave: u64,
    /// By scope (`Placement::scope_key`: one account and region) and entry.
    entries: Mutex<Cells>,
    /// The entries whose listing reads per resource dropped in this wave, by scope: they are
    /// not listed again by it (see "A dropped listing stays dropped").
    dropped: Mutex<HashSet<(String, Entry)>>,
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
            dropped: Mutex::new(HashSet::new()),
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

    /// Apply `record` in `scope`: an entry read already gets its new value (a fresh cell, so
    /// reconciles holding the old value keep it); an entry being read is dropped (that read may
    /// predate the write); an entry nobody read stays unread.
    fn record_in(&self, scope: &str, record: Record) {
        let mut map = self.entries.lock().expect("snapshot lock");
        let key = (scope.to_string(), record.entry);
        let Some(cell) = map.get(&key) else {
            return;
        };
        match (cell.get(), record.apply) {
            (Some(value), Some(apply)) => {
                let new = apply(value.as_ref());
                map.insert(key, Arc::new(OnceCell::from(new)));
            }
            _ => {
                map.remove(&key);
                self.dropped_in(&key);
            }
        }
    }

    /// Remember that `key` was dropped, when its listing reads per resource.
    fn dropped_in(&self, key: &(String, Entry)) {
        if key.1.lists_per_resource() {
            self.dropped
                .lock()
                .expect("dropped lock")
                .insert(key.clone());
        }
    }

    /// Whether `entry` of `scope` was dropped in this wave (only ever true for an entry whose
    /// listing reads per resource).
    fn was_dropped(&self, scope: &str, entry: &Entry) -> bool {
        entry.lists_per_resource()
            && self
                .dropped
                .lock()
                .expect("dropped lock")
                .contains(&(scope.to_string(), entry.clone()))
    }

    /// Drop `entries`: the next reconcile asking reads them again. A read under way finishes
    /// for those waiting on it and is then forgotten.
    fn forget<'e>(&self, scope: &str, entries: impl IntoIterator<Item = &'e Entry>) {
        let mut map = self.entries.lock().expect("snapshot lock");
        for e in entries {
            let key = (scope.to_string(), e.clone());
            map.remove(&key);
            self.dropped_in(&key);
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
    /// It made a write of any service that was not recorded: every entry is read fresh.
    wrote: AtomicBool,
    /// It has written (recorded or not): entries of services other than ELBv2 are read fresh.
    wrote_other: AtomicBool,
}

impl fmt::Debug for WaveRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaveRun")
            .field("wave", &self.snapshot.wave)
            .field("wrote", &self.wrote.load(Ordering::Relaxed))
            .field("wrote_other", &self.wrote_other.load(Ordering::Relaxed))
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
            wrote_other: AtomicBool::new(false),
        })
    }

    /// `entry` from the snapshot, read by `fetch(specs)` if needed; `None` once this reconcile
    /// has made a write that can change it without recording what it did (it reads fresh from
    /// then on), and for an entry whose listing reads per resource once the wave has dropped it
    /// (see "A dropped listing stays dropped"). Either way `entry` counts as read by it.
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
        if self.wrote.load(Ordering::Acquire)
            || (!entry.is_elbv2() && self.wrote_other.load(Ordering::Acquire))
            || self.snapshot.was_dropped(&self.scope, &entry)
        {
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

    /// Called before and after every write of this reconcile that is not recorded: forget
    /// what it has read, and read fresh from now on.
    pub fn writing(&self) {
        self.wrote.store(true, Ordering::Release);
        let touched = self.touched.lock().expect("touched lock");
        self.snapshot.forget(&self.scope, touched.iter());
    }

    /// [`WaveRun::writing`] for a write to `service`, not recorded: a write to ELBv2 is any
    /// write; one to another service forgets the entries of that service it has read, and
    /// reads the entries of services other than ELBv2 fresh from now on (no such write
    /// changes an entry of another service: see "Own writes").
    pub fn writing_to(&self, service: Service) {
        if service == Service::Elbv2 {
            return self.writing();
        }
        self.wrote_other.store(true, Ordering::Release);
        let touched = self.touched.lock().expect("touched lock");
        self.snapshot.forget(
            &self.scope,
            touched.iter().filter(|e| e.service() == service),
        );
    }

    /// After a recorded write succeeded: its records go into the snapshot (see "Own writes").
    /// The entries they name count as read by this reconcile (a later write of it that is
    /// not recorded drops them). From now on it reads the entries of services other than
    /// ELBv2 fresh, as after any write (see "A writer reads by name").
    pub fn recorded(&self, records: Vec<Record>) {
        self.wrote_other.store(true, Ordering::Release);
        let mut touched = self.touched.lock().expect("touched lock");
        for r in records {
            touched.insert(r.entry.clone());
            self.snapshot.record_in(&self.scope, r);
        }
    }

    /// Whether it has written anything.
    pub fn has_written(&self) -> bool {
        self.wrote.load(Ordering::Acquire) || self.wrote_other.load(Ordering::Acquire)
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

    fn push(n: u32) -> Record {
        Record::update(Entry::TargetGroups, move |v: &Vec<u32>| {
            let mut v = v.clone();
            if !v.contains(&n) {
                v.push(n);
            }
            v
        })
    }

    #[tokio::test]
    async fn a_recorded_write_updates_what_was_read_drops_nothing_and_keeps_the_writer_on_the_snapshot(
    ) {
        let snap = Snapshot::new(1);
        let specs = ValidSpecs::default();
        let writer = WaveRun::new(snap.clone(), specs.clone());
        let other = WaveRun::new(snap.clone(), specs);
        let one = || async { Ok::<_, ResourceError>(vec![1u32]) };
        let never = || async { Ok::<_, ResourceError>(vec![99u32]) };
        writer
            .cached(Entry::TargetGroups, |_| one())
            .await
            .unwrap()
            .unwrap();
        writer
            .cached(Entry::Rules("l1".into()), |_| one())
            .await
            .unwrap()
            .unwrap();
        writer.recorded(vec![push(2)]);
        assert_eq!(
            snap.entries(),
            vec![Entry::TargetGroups, Entry::Rules("l1".into())]
        );
        // It has written: the entries of other services it reads fresh, the ELBv2 ones not.
        assert!(writer.has_written());
        assert!(writer
            .cached(Entry::EcsServices("c".into()), |_| never())
            .await
            .is_none());
        for run in [&writer, &other] {
            let v = run
                .cached(Entry::TargetGroups, |_| never())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(*v, vec![1, 2]);
        }
        // A record applied to a value that already holds the write changes nothing.
        writer.recorded(vec![push(2)]);
        let v = other
            .cached(Entry::TargetGroups, |_| never())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*v, vec![1, 2]);
    }

    #[tokio::test]
    async fn a_record_leaves_an_unread_entry_unread_and_a_forget_record_drops_one() {
        let snap = Snapshot::new(1);
        let run = WaveRun::new(snap.clone(), ValidSpecs::default());
        run.recorded(vec![push(2)]);
        assert!(snap.entries().is_empty());
        let v = run
            .cached(Entry::TargetGroups, |_| async {
                Ok::<_, ResourceError>(vec![1u32, 2])
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*v, vec![1, 2]);
        run.recorded(vec![Record::forget(Entry::TargetGroups)]);
        assert!(snap.entries().is_empty());
    }

    #[tokio::test]
    async fn a_record_of_an_entry_being_read_drops_it_after_that_read() {
        let snap = Snapshot::new(1);
        let specs = ValidSpecs::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let reader = WaveRun::new(snap.clone(), specs.clone());
        let writer = WaveRun::new(snap.clone(), specs);
        let slow = {
            let reads = reads.clone();
            tokio::spawn(async move {
                reader
                    .cached(Entry::TargetGroups, |_| async move {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok::<_, ResourceError>(vec![1u32])
                    })
                    .await
                    .unwrap()
                    .unwrap()
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        assert_eq!(snap.entries(), vec![Entry::TargetGroups]);
        // The read under way may predate the write: dropped, not updated.
        writer.recorded(vec![push(2)]);
        assert!(snap.entries().is_empty());
        assert_eq!(*slow.await.unwrap(), vec![1]);
        let v = writer
            .cached(Entry::TargetGroups, |_| async {
                reads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ResourceError>(vec![1u32, 2])
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!((*v).clone(), vec![1, 2]);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_write_to_another_service_keeps_the_elbv2_entries_and_an_elbv2_write_drops_all() {
        let snap = Snapshot::new(1);
        let run = WaveRun::new(snap.clone(), ValidSpecs::default());
        let one = || async { Ok::<u32, ResourceError>(1) };
        run.cached(Entry::TargetGroups, |_| one())
            .await
            .unwrap()
            .unwrap();
        run.cached(Entry::EcsServices("c".into()), |_| one())
            .await
            .unwrap()
            .unwrap();
        run.writing_to(Service::Ecs);
        assert_eq!(snap.entries(), vec![Entry::TargetGroups]);
        assert!(run.has_written());
        assert!(run.cached(Entry::TargetGroups, |_| one()).await.is_some());
        assert!(run
            .cached(Entry::EcsServices("c".into()), |_| one())
            .await
            .is_none());
        run.writing_to(Service::Elbv2);
        assert!(snap.entries().is_empty());
        assert!(run.cached(Entry::TargetGroups, |_| one()).await.is_none());
    }

    #[tokio::test]
    async fn a_write_to_one_service_drops_only_that_services_entries_for_the_other_readers() {
        let snap = Snapshot::new(1);
        let writer = WaveRun::new(snap.clone(), ValidSpecs::default());
        let one = || async { Ok::<u32, ResourceError>(1) };
        for e in [
            Entry::EcsServices("c".into()),
            Entry::LogGroups,
            Entry::Alarms,
            Entry::Topics,
        ] {
            writer.cached(e, |_| one()).await.unwrap().unwrap();
        }
        // An UpdateService: the ECS listing goes, the log groups, alarms and topics stay.
        writer.writing_to(Service::Ecs);
        assert_eq!(
            snap.entries(),
            vec![Entry::Alarms, Entry::Topics, Entry::LogGroups]
        );
        // The writer itself reads them fresh from now on; another reconcile shares them.
        assert!(writer.cached(Entry::LogGroups, |_| one()).await.is_none());
        let other = WaveRun::new(snap.clone(), ValidSpecs::default());
        let never = || async {
            Err::<u32, ResourceError>(ResourceError::Unsatisfiable("read again".into()))
        };
        assert_eq!(
            *other
                .cached(Entry::LogGroups, |_| never())
                .await
                .unwrap()
                .unwrap(),
            1
        );
        // A CreateLogGroup (not recorded) drops the log groups it read, and only them.
        other.writing_to(Service::Logs);
        assert_eq!(snap.entries(), vec![Entry::Alarms, Entry::Topics]);
    }
    #[tokio::test]
    async fn a_listing_that_reads_per_resource_dropped_in_a_wave_is_read_by_name_for_the_rest_of_it(
    ) {
        let snap = Snapshot::new(1);
        let writer = WaveRun::new(snap.clone(), ValidSpecs::default());
        let one = || async { Ok::<u32, ResourceError>(1) };
        let two = || async { Ok::<u32, ResourceError>(2) };
        let ecs = Entry::EcsServices("c".into());
        for e in [Entry::LogGroups, Entry::TargetGroups, ecs.clone()] {
            writer.cached(e, |_| one()).await.unwrap().unwrap();
        }
        // An unrecorded ELBv2 write drops all three.
        writer.writing();
        assert!(snap.entries().is_empty());
        let later = WaveRun::new(snap.clone(), ValidSpecs::default());
        // The log groups are read by name, not listed again; the paged listings are.
        assert!(later.cached(Entry::LogGroups, |_| two()).await.is_none());
        for e in [Entry::TargetGroups, ecs] {
            assert_eq!(*later.cached(e, |_| two()).await.unwrap().unwrap(), 2);
        }
        // A listing nobody dropped is shared as before; so is one of another scope.
        assert!(later.cached(Entry::Alarms, |_| one()).await.is_some());
        let elsewhere = WaveRun::in_scope(snap.clone(), ValidSpecs::default(), "b".into());
        assert!(elsewhere
            .cached(Entry::LogGroups, |_| one())
            .await
            .is_some());
        // A record that drops an entry counts as a drop too.
        let recorder = WaveRun::new(snap.clone(), ValidSpecs::default());
        recorder
            .cached(Entry::Alarms, |_| one())
            .await
            .unwrap()
            .unwrap();
        recorder.recorded(vec![Record::forget(Entry::Alarms)]);
        assert!(later.cached(Entry::Alarms, |_| one()).await.is_none());
        // The next wave lists everything again.
        let next = WaveRun::new(Snapshot::new(2), ValidSpecs::default());
        assert!(next.cached(Entry::LogGroups, |_| one()).await.is_some());
    }
}

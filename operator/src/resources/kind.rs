//! The contract of one resource kind with the generic driver.
//!
//! A kind lives in its own folder under `kinds/` and says here what the driver needs to handle
//! it without knowing it: its id ([`Kind::TYPE`], the `resource_type` of status ledgers and
//! garbage-collection scans), where it goes in a teardown ([`Kind::RANK`]), how one of its
//! resources is deleted ([`Kind::delete`]) and how garbage collection finds the ones this
//! instance owns ([`Kind::list_owned`]). [`super::kinds::all`] lists every kind once. A kind
//! driven by the generic driver also implements [`Managed`] (observe, ownership claim, pure
//! plan, apply one step), and `driver::reconcile::drive` reconciles one of its resources; a
//! kind a spec asks for as a list read in one batched call implements [`ManagedSet`] too, and
//! `driver::reconcile::drive_set` reads the list once and drives each item. A reconcile
//! that must look again later hands back its [`Pending`] requeue hints instead of writing a
//! wait into the run.
//!
//! Invariants every implementation keeps:
//! - `delete` touches nothing that does not carry both ownership tags naming the run's spec
//!   (for Route53, its ownership TXT record): anything else counts as gone and is left alone;
//! - with `retain` (`deletionPolicy: Retain`) `delete` deletes nothing: the ownership tags are
//!   replaced by `ecs-operator.io/released-from=<Kind/name>`;
//! - `delete` does not wait itself: a resource still on its way out is [`Gone::NotYet`], the
//!   reason and the requeue hint the driver turns into the spec's wait, and the deletion is
//!   followed by requeue until it comes to [`Gone::Yes`];
//! - with `run.apply == false` nothing is written: the changes are only recorded;
//! - `list_owned` only reads, and adds only resources whose ownership tags (Route53: TXT
//!   record) name this instance; a kind it depends on that could not be listed leaves it
//!   finding less, never more.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use futures::future::BoxFuture;

use super::error::ResourceError;
use super::run::{Change, SpecRun};
use crate::reconcile::OwnedScan;
use crate::spec::SpecKey;

/// Whether one [`Kind::delete`] is done with its resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Gone {
    /// Deleted, released, already gone, or not ours to touch: the teardown goes on.
    Yes,
    /// Still on its way out (draining, in use, protected): `why` is what the spec waits on,
    /// `after` when to look again. The teardown stops here; later resources depend on it.
    NotYet { why: String, after: Duration },
}

impl Gone {
    pub fn not_yet(why: impl Into<String>, after: Duration) -> Self {
        Gone::NotYet {
            why: why.into(),
            after,
        }
    }

    /// Hand the outcome to the run: a wait becomes the spec's wait (its reason in the status,
    /// its hint the requeue). Whether the resource is done with.
    pub fn follow(self, run: &mut SpecRun<'_>) -> bool {
        match self {
            Gone::Yes => true,
            Gone::NotYet { why, after } => {
                run.wait(why, after);
                false
            }
        }
    }
}

/// One requeue hint of a reconcile: something the kind changed or found is not settled yet (a
/// certificate not issued, records not INSYNC, a rollout under way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requeue {
    /// What the spec waits on, which keeps it from Ready; `None`: only look again (a Degraded
    /// service that ECS is still rolling back).
    pub why: Option<String>,
    /// When to look again.
    pub after: Duration,
}

/// The requeue hints a kind's reconcile hands back to the driver, which makes them the spec's
/// waits and its requeue (the earliest `after` wins). A kind does not write them into the run.
#[must_use = "the driver follows a kind's requeue hints"]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending(Vec<Requeue>);

impl Pending {
    /// Nothing to wait for.
    pub fn settled() -> Self {
        Pending::default()
    }

    /// Not Ready until `why` is over; look again after `after`.
    pub fn wait(why: impl Into<String>, after: Duration) -> Self {
        Pending(vec![Requeue {
            why: Some(why.into()),
            after,
        }])
    }

    /// Look again after `after`, whatever the phase.
    pub fn requeue(after: Duration) -> Self {
        Pending(vec![Requeue { why: None, after }])
    }

    /// These hints and `other`'s.
    pub fn and(mut self, other: Pending) -> Self {
        self.0.extend(other.0);
        self
    }

    /// The hints, in the order the kind gave them.
    pub fn hints(&self) -> &[Requeue] {
        &self.0
    }

    /// Hand the hints to the run: each reason becomes a wait of the spec, and the spec is
    /// requeued after the earliest `after`.
    pub fn follow(self, run: &mut SpecRun<'_>) {
        for r in self.0 {
            match r.why {
                Some(why) => run.wait(why, r.after),
                None => run.requeue(r.after),
            }
        }
    }
}

/// What a kind's pure plan found: the steps to take, each with the change it makes, and the
/// fields AWS cannot change in place (reported, never recreated).
#[derive(Debug)]
pub struct Plan<S> {
    pub steps: Vec<(S, Change)>,
    pub immutable: Vec<ResourceError>,
}

impl<S> Plan<S> {
    /// A plan with no immutable-field finding.
    pub fn steps(steps: Vec<(S, Change)>) -> Self {
        Plan {
            steps,
            immutable: Vec::new(),
        }
    }
}

impl<S> From<(Vec<(S, Change)>, Vec<ResourceError>)> for Plan<S> {
    fn from((steps, immutable): (Vec<(S, Change)>, Vec<ResourceError>)) -> Self {
        Plan { steps, immutable }
    }
}

/// A kind with one desired resource per call that the generic driver
/// ([`super::driver::reconcile::drive`]) reconciles: observe, claim, pure plan, apply.
///
/// Invariants every implementation keeps:
/// - `observe` and `plan` never write to AWS; `plan` is pure (unit-tested on its own). The one
///   thing an `observe` may change is the resync wave's memory: a listener rule that will take
///   a free priority reserves it there, so the reconciles of one wave do not all choose it;
/// - `apply` carries out exactly the one step it is given and nothing else; the driver calls it
///   only for steps the run hands back (none when only planning);
/// - `apply` updates `out` from what a create answers, so later steps and the ledger see the
///   new resource.
pub trait Managed: Kind + Sized {
    /// What the spec asks for.
    type Desired: Sync;
    /// What AWS has.
    type Observed: Send + Sync;
    /// One change the plan makes. Steps that compare equal are one AWS call: the driver applies
    /// each distinct step once, so a call that sets several fields is one step value planned
    /// once per field that differs (each with its own change).
    type Step: Send + PartialEq;
    /// What the reconcile hands on to later kinds (an ARN, a URI, the load balancer's
    /// endpoint); starts from what was observed, `apply` fills it in as creates answer.
    type Output: Send;
    /// The condition (False, `ImmutableField`) an immutable-field finding sets.
    const IMMUTABLE: &'static str = "ImmutableField";

    /// How errors and ownership claims name the resource (`target group web`).
    fn label(d: &Self::Desired) -> String;
    /// Read the resource, if it exists.
    fn observe<'a>(
        run: &'a SpecRun<'_>,
        d: &'a Self::Desired,
    ) -> impl Future<Output = Result<Option<Self::Observed>, ResourceError>> + Send + 'a;
    /// The tags the resource carries (for the ownership claim).
    fn tags(o: &Self::Observed) -> &BTreeMap<String, String>;
    /// Check that the existing resource `o` may be managed by this spec; the ownership tags it
    /// still lacks (non-empty only when adopting). By default the claim of its own
    /// [`Managed::tags`]. Overridden by a kind whose resources take no tags
    /// ([`owned_through_parent!`]) and by one that claims only some of its list (an alarm the
    /// spec dropped is deleted if ours, never claimed).
    fn claim(
        run: &SpecRun<'_>,
        d: &Self::Desired,
        o: &Self::Observed,
    ) -> Result<BTreeMap<String, String>, ResourceError> {
        run.claim(&Self::label(d), Self::tags(o))
    }
    /// The pure plan; `missing`: the ownership tags an adopted resource lacks.
    fn plan(
        d: &Self::Desired,
        o: Option<&Self::Observed>,
        missing: BTreeMap<String, String>,
    ) -> Plan<Self::Step>;
    /// The output before any step.
    fn output(d: &Self::Desired, o: Option<&Self::Observed>) -> Self::Output;
    /// Carry out one step on `at` (the desired resource, what was observed, the output).
    fn apply<'a>(
        run: &'a mut SpecRun<'_>,
        at: At<'a, Self>,
        step: Self::Step,
    ) -> impl Future<Output = Applied> + Send + 'a;
    /// The ledger id of the resource, once it exists (`None` while only planning its create).
    fn id(d: &Self::Desired, out: &Self::Output) -> Option<String>;
    /// The ledger ids the reconcile records: by default [`Managed::id`]'s one. Overridden by a
    /// kind whose one desired value stands for several resources that are deleted one by one
    /// (the email subscriptions of a topic, one per address; a spec's alias records, one per
    /// host).
    fn ids(d: &Self::Desired, out: &Self::Output) -> Vec<String> {
        Self::id(d, out).into_iter().collect()
    }
}

/// What one [`Managed::apply`] works on: the resource the spec asks for, what was observed of
/// it (`None`: absent), and the output the steps fill in as AWS answers.
pub struct At<'a, K: Managed> {
    pub d: &'a K::Desired,
    pub o: Option<&'a K::Observed>,
    pub out: &'a mut K::Output,
}

/// What one [`Managed::apply`] answers.
pub type Applied = Result<(), ResourceError>;

/// A [`Managed`] kind whose resources a spec asks for as a list that one batched read observes
/// (the capacity providers of a cluster: DescribeCapacityProviders takes 100 names a call).
/// The generic driver (`driver::reconcile::drive_set`) reads the list once, then drives each
/// item as [`Managed`] says, from what that read found.
///
/// Invariants: `observe_set` only reads, and answers one entry per item of `wanted`, in its
/// order (`None`: absent); [`Managed::observe`] of one item reads what `observe_set` of that
/// item alone would.
pub trait ManagedSet: Managed {
    /// Read every resource of `wanted` together.
    fn observe_set<'a>(
        run: &'a SpecRun<'_>,
        wanted: &'a [Self::Desired],
    ) -> impl Future<Output = Result<Vec<Option<Self::Observed>>, ResourceError>> + Send + 'a;
}

/// The future of one [`Kind::delete`].
pub type DeleteFuture<'a> = BoxFuture<'a, Result<Gone, ResourceError>>;

/// The future of one [`Kind::list_owned`].
pub type ListFuture<'a> = BoxFuture<'a, Result<(), ResourceError>>;

/// A garbage-collection scan in progress, handed to every kind's [`Kind::list_owned`] in
/// registry order.
///
/// Invariant: a kind reads only what kinds before it in the registry wrote: the owned
/// resources found so far ([`OwnedScan`]) and the [`GcScan::seen`] notes (a listener walked
/// for its rules, a cluster walked for its services).
#[derive(Default)]
pub struct GcScan {
    pub found: OwnedScan,
    /// The hosted zones whose ownership TXT records are read.
    pub zones: BTreeSet<String>,
    /// What one kind's listing saw for a later kind to walk, under a key the writing kind
    /// names (`listener::SEEN`): an id, and its owner where the writer knows it.
    seen: BTreeMap<&'static str, Vec<(String, Option<SpecKey>)>>,
}

impl GcScan {
    /// A scan that reads the ownership records of `zones`.
    pub fn new(zones: BTreeSet<String>) -> Self {
        GcScan {
            zones,
            ..GcScan::default()
        }
    }

    /// Record that `owner` owns `(resource_type, id)`.
    pub fn add(&mut self, owner: SpecKey, resource_type: &str, id: impl Into<String>) {
        self.found.add(owner, resource_type, id);
    }

    /// The owners and ids found so far of `resource_type`.
    pub fn owned(&self, resource_type: &str) -> Vec<(SpecKey, String)> {
        self.found
            .owned
            .iter()
            .flat_map(|(owner, set)| {
                set.iter()
                    .filter(move |(t, _)| t == resource_type)
                    .map(move |(_, id)| (owner.clone(), id.clone()))
            })
            .collect()
    }

    /// Leave `id` (owned by `owner`, where known) under `key` for a later kind.
    pub fn saw(&mut self, key: &'static str, id: impl Into<String>, owner: Option<SpecKey>) {
        self.seen.entry(key).or_default().push((id.into(), owner));
    }

    /// What earlier kinds left under `key`.
    pub fn seen(&self, key: &str) -> &[(String, Option<SpecKey>)] {
        self.seen.get(key).map_or(&[], Vec::as_slice)
    }

    /// The ids earlier kinds left under `key`.
    pub fn seen_ids(&self, key: &str) -> Vec<String> {
        self.seen(key).iter().map(|(id, _)| id.clone()).collect()
    }
}

/// One resource kind, as the driver sees it.
pub trait Kind {
    /// The kind's id: `<service>:<resource>` (`elbv2:targetgroup`).
    const TYPE: &'static str;
    /// Teardown order, lower first: a resource goes before what it depends on (a service
    /// before its target group, a cluster before its capacity providers).
    const RANK: u8;
    /// Delete the resource `id` (as its ledger entry names it), or release it with `retain`.
    fn delete<'a>(run: &'a mut SpecRun<'_>, id: &'a str, retain: bool) -> DeleteFuture<'a>;
    /// What garbage collection calls the listing in its errors (`ACM certificates`).
    const LISTING: &'static str;
    /// Add to `scan` every resource of this kind whose ownership tags name this instance.
    fn list_owned<'a>(run: &'a SpecRun<'_>, scan: &'a mut GcScan) -> ListFuture<'a>;
}

/// Declare a kind's unit struct and its [`Kind`] impl:
/// `kind!(/// doc, Name, TYPE, rank, delete, "listing", list_owned)` where `delete` is the
/// kind's `async fn(&mut SpecRun, &str, bool) -> Result<bool, _>` and `list_owned` its
/// `async fn(&SpecRun, &mut GcScan) -> Result<(), _>`.
macro_rules! kind {
    ($(#[$doc:meta])* $name:ident, $type:expr, $rank:expr, $delete:path, $listing:expr, $list:path) => {
        $(#[$doc])*
        pub struct $name;

        impl $crate::resources::kind::Kind for $name {
            const TYPE: &'static str = $type;
            const RANK: u8 = $rank;
            fn delete<'a>(
                run: &'a mut $crate::resources::run::SpecRun<'_>,
                id: &'a str,
                retain: bool,
            ) -> $crate::resources::kind::DeleteFuture<'a> {
                Box::pin($delete(run, id, retain))
            }
            const LISTING: &'static str = $listing;
            fn list_owned<'a>(
                run: &'a $crate::resources::run::SpecRun<'_>,
                scan: &'a mut $crate::resources::kind::GcScan,
            ) -> $crate::resources::kind::ListFuture<'a> {
                Box::pin($list(run, scan))
            }
        }
    };
}
pub(crate) use kind;

/// The part of a [`Managed`] impl shared by every kind whose `Desired` has a `name` that it is
/// observed by (with the folder's `observe(run, name)`) and whose `Observed` carries its
/// `tags`: the three types, `label` (`<noun> <name>`), `observe` and `tags`. Used inside the
/// impl block: `by_name!("target group");`.
macro_rules! by_name {
    ($noun:expr) => {
        type Desired = Desired;
        type Observed = Observed;
        type Step = Step;

        fn label(d: &Desired) -> String {
            format!("{} {}", $noun, d.name)
        }

        fn observe<'a>(
            run: &'a SpecRun<'_>,
            d: &'a Desired,
        ) -> impl std::future::Future<Output = Result<Option<Observed>, ResourceError>> + Send + 'a
        {
            observe(run, &d.name)
        }

        fn tags(o: &Observed) -> &std::collections::BTreeMap<String, String> {
            &o.tags
        }
    };
}
pub(crate) use by_name;

/// The four associated types of a [`Managed`] impl, in one line inside the impl block:
/// `managed_types!(Desired, Observed, Step, Output);`.
macro_rules! managed_types {
    ($desired:ty, $observed:ty, $step:ty, $output:ty) => {
        type Desired = $desired;
        type Observed = $observed;
        type Step = $step;
        type Output = $output;
    };
}
pub(crate) use managed_types;

/// The part of a [`Managed`] impl whose output is the resource's ARN (the `arn` of its
/// `Observed`, then what its create answers; empty while only planning the create): `type
/// Output = String`, `output` and `id` (the ARN, once there is one). Used inside the impl
/// block: `arn_output!();`.
macro_rules! arn_output {
    () => {
        type Output = String;

        fn output(_: &Self::Desired, o: Option<&Self::Observed>) -> String {
            o.map(|o| o.arn.clone()).unwrap_or_default()
        }

        fn id(_: &Self::Desired, arn: &String) -> Option<String> {
            $crate::resources::kind::arn_id(arn)
        }
    };
}
pub(crate) use arn_output;

/// The tags of a resource that takes none.
pub static NO_TAGS: BTreeMap<String, String> = BTreeMap::new();

/// The part of a [`Managed`] impl for a kind whose resources take no tags (a metric filter, a
/// scalable target): `tags` is [`NO_TAGS`] and `claim` takes nothing, because such a
/// resource is ours through the parent it lives on, which the same pipeline claimed before
/// it. Used inside the impl block: `owned_through_parent!();`.
macro_rules! owned_through_parent {
    () => {
        fn tags(_: &Self::Observed) -> &std::collections::BTreeMap<String, String> {
            &$crate::resources::kind::NO_TAGS
        }

        fn claim(
            _: &SpecRun<'_>,
            _: &Self::Desired,
            _: &Self::Observed,
        ) -> Result<std::collections::BTreeMap<String, String>, ResourceError> {
            Ok(std::collections::BTreeMap::new())
        }
    };
}
pub(crate) use owned_through_parent;

/// The ledger id of a resource known by `arn`: none while only planning its create.
pub fn arn_id(arn: &str) -> Option<String> {
    (!arn.is_empty()).then(|| arn.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind as SpecKind;

    #[test]
    fn a_scan_gives_later_kinds_the_owned_resources_of_one_type_and_what_earlier_kinds_saw() {
        let web = SpecKey::new(SpecKind::ServiceSpec, "web");
        let mut scan = GcScan::new(BTreeSet::from(["/hostedzone/Z1".to_string()]));
        scan.add(web.clone(), "logs:loggroup", "/ecs/web");
        scan.add(web.clone(), "sns:topic", "arn:topic");
        scan.saw("listeners", "arn:l1", None);
        scan.saw("listeners", "arn:l2", Some(web.clone()));
        assert_eq!(
            scan.owned("logs:loggroup"),
            vec![(web.clone(), "/ecs/web".to_string())]
        );
        assert!(scan.owned("elbv2:listener").is_empty());
        assert_eq!(scan.seen_ids("listeners"), vec!["arn:l1", "arn:l2"]);
        assert_eq!(scan.seen("listeners")[1].1, Some(web));
        assert!(scan.seen("clusters").is_empty());
        assert_eq!(scan.zones.len(), 1);
    }

    #[test]
    fn requeue_hints_add_up_in_the_order_the_kind_gave_them_and_settled_has_none() {
        assert!(Pending::settled().hints().is_empty());
        let p = Pending::wait("records are not INSYNC yet", Duration::from_secs(10))
            .and(Pending::settled())
            .and(Pending::requeue(Duration::from_secs(5)));
        assert_eq!(
            p.hints(),
            [
                Requeue {
                    why: Some("records are not INSYNC yet".into()),
                    after: Duration::from_secs(10)
                },
                Requeue {
                    why: None,
                    after: Duration::from_secs(5)
                }
            ]
        );
    }
}

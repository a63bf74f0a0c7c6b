//! The contract of one resource kind with the generic driver.
//!
//! A kind lives in its own folder under `kinds/` and says here what the driver needs to handle
//! it without knowing it: its id ([`Kind::TYPE`], the `resource_type` of status ledgers and
//! garbage-collection scans), where it goes in a teardown ([`Kind::RANK`]), how one of its
//! resources is deleted ([`Kind::delete`]) and how garbage collection finds the ones this
//! instance owns ([`Kind::list_owned`]). [`super::kinds::all`] lists every kind once.
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
use std::time::Duration;

use futures::future::BoxFuture;

use super::error::ResourceError;
use super::run::SpecRun;
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
}

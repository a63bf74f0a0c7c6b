//! The contract of one resource kind with the generic driver.
//!
//! A kind lives in its own folder under `kinds/` and says here what the driver needs to handle
//! it without knowing it: its id ([`Kind::TYPE`], the `resource_type` of status ledgers and
//! garbage-collection scans), where it goes in a teardown ([`Kind::RANK`]), and how one of its
//! resources is deleted ([`Kind::delete`]). [`super::registry`] lists every kind once.
//!
//! Invariants every implementation keeps:
//! - `delete` touches nothing that does not carry both ownership tags naming the run's spec
//!   (for Route53, its ownership TXT record): anything else counts as gone and is left alone;
//! - with `retain` (`deletionPolicy: Retain`) `delete` deletes nothing: the ownership tags are
//!   replaced by `ecs-operator.io/released-from=<Kind/name>`;
//! - `delete` returns `Ok(false)` only after leaving a reason in `run.waiting` (or letting the
//!   driver add one): the deletion is followed by requeue until it returns `Ok(true)`;
//! - with `run.apply == false` nothing is written: the changes are only recorded.

use futures::future::BoxFuture;

use super::error::ResourceError;
use super::run::SpecRun;

/// The future of one [`Kind::delete`]: whether the resource is gone (or released).
pub type DeleteFuture<'a> = BoxFuture<'a, Result<bool, ResourceError>>;

/// One resource kind, as the driver sees it.
pub trait Kind {
    /// The kind's id: `<service>:<resource>` (`elbv2:targetgroup`).
    const TYPE: &'static str;
    /// Teardown order, lower first: a resource goes before what it depends on (a service
    /// before its target group, a cluster before its capacity providers).
    const RANK: u8;
    /// Delete the resource `id` (as its ledger entry names it), or release it with `retain`.
    fn delete<'a>(run: &'a mut SpecRun<'_>, id: &'a str, retain: bool) -> DeleteFuture<'a>;
}

/// Declare a kind's unit struct and its [`Kind`] impl: `kind!(/// doc, Name, TYPE, rank, delete)`
/// where `delete` is the kind's `async fn(&mut SpecRun, &str, bool) -> Result<bool, _>`.
macro_rules! kind {
    ($(#[$doc:meta])* $name:ident, $type:expr, $rank:expr, $delete:path) => {
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
        }
    };
}
pub(crate) use kind;

//! The generic side of the resource kinds: the reconcile of a [`super::kind::Managed`]
//! resource, teardown in rank order with delete dispatched through the registry, and the
//! garbage-collection scan.

pub mod gc;
pub mod reconcile;
pub mod teardown;

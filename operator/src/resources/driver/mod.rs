//! The generic side of the resource kinds: teardown in rank order with delete dispatched
//! through the registry, and the garbage-collection scan.

pub mod gc;
pub mod teardown;

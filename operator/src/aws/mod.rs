//! AWS client plumbing shared by every resource module: the call budget (token buckets per
//! service and call class).

pub mod budget;

pub use budget::{Budget, CallClass, Service};

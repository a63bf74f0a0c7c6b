//! AWS client plumbing shared by every resource module: client construction with retries
//! ([`Sdk`]), the call budget (token buckets per service and call class) and call counting.

pub mod arn;
pub mod budget;
pub mod calls;
pub mod sdk;

pub use budget::{Budget, CallClass, Service};
pub use calls::{CallMetrics, Outcome};
pub use sdk::Sdk;

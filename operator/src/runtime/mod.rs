//! The reconcile runtime, free of AWS: a scheduler of per-key deadlines, a runner that executes
//! reconciles with bounded concurrency and per-key backoff, periodic resync, and leader election.
//! `src/resources/*` never see how they are scheduled; this module never sees AWS.

pub mod backoff;
pub mod failure;
pub mod leader;
pub mod runner;
pub mod scheduler;

pub use backoff::BackoffPolicy;
pub use failure::{Cause, Failure};
pub use leader::{
    default_identity, BackendError, Elector, LeaderError, LeaderState, LeaseBackend, LeaseConfig,
    LeaseRecord, MemoryLease,
};
pub use runner::{runner, Action, Handle, Reason, Run, RunnerConfig, RunnerMetrics, WaveId};

#[cfg(test)]
mod leader_tests;
#[cfg(test)]
mod tests;

//! The AWS side of the operator: one module per resource kind, each split into
//! - **observe**: read what exists (through [`Aws::call`], which spends the call budget and
//!   classifies errors),
//! - **plan**: a pure function of (desired, observed) returning the steps to take, each of which
//!   describes itself as a [`Change`] (what `ecs-operator diff` prints),
//! - **apply**: execute the steps; every create is idempotent (deterministic names or client
//!   tokens, plus ownership tags), so a crash between two calls is harmless.
//!
//! A [`SpecRun`] carries one reconcile of one spec through its resources in dependency order,
//! collecting changes, resource references, conditions and the requeue time. With
//! `apply == false` (diff, `mode: observe`) it plans and records, and never writes.
//!
//! Observe reads fresh, except in a reconcile the runtime started as part of a resync wave:
//! there, what AWS can read in batches (every ECS service of a cluster, every target group,
//! the rules of a listener, the records of a zone...) comes from the wave's shared
//! [`Snapshot`] ([`SpecRun::cached`]), read once for the whole wave (see [`snapshot`]).
//!
//! Invariants: nothing here knows how reconciles are scheduled; a resource without both
//! ownership tags (or, for Route53, its ownership TXT record) is never changed or deleted unless
//! the spec carries the adopt annotation.

pub mod context;
pub mod driver;
pub mod error;
pub mod kind;
pub mod kinds;
pub mod pipelines;
pub mod reconciler;
pub mod rollout_poll;
pub mod run;
pub mod scopes;
pub mod shared;
pub mod snapshot;

pub use context::Aws;
pub use error::ResourceError;
pub use reconciler::AwsReconciler;
pub use run::{Change, Op, RunAws, SpecRun};
pub use snapshot::Snapshot;

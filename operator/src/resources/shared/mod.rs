//! What several resource kinds share: ownership tags and their per-service spellings, the
//! deterministic names, the hosted-zone reads, and the drain poll.
//!
//! Invariant: nothing here depends on a resource kind; kinds depend on it.

pub mod arn_tags;
pub mod ecs_tags;
pub mod elb_actions;
pub mod elb_tags;
pub mod names;
pub mod pages;
pub mod release;
pub mod tags;
pub mod zone;

use std::time::Duration;

/// How long to wait before looking again at something on its way out (a draining service, a
/// target group still in use).
pub const DRAIN_POLL: Duration = Duration::from_secs(10);

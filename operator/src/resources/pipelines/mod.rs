//! The pipelines: for each spec kind, its resources in dependency order. A pipeline builds
//! each resource's desired state from the spec and calls that kind's reconcile; it holds no
//! AWS logic of its own.

pub mod cluster;
pub mod edge;
pub mod follow;
pub mod observability;
pub mod service;

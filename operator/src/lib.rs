//! ecs-operator: engineers commit desired-state documents (ClusterSpec, ServiceSpec) to a store;
//! this crate validates them, keeps them in the store, and drives AWS toward them.
//!
//! Module map (docs/design.md "Layout"): `spec` (documents, validation, schemas), `store` (where specs and
//! status live), `chart` (templated spec bundles for `render`), `cli` (one file per subcommand),
//! `verify` (the read-only pre-flight of `ecs-operator verify`), `ui` (the read-only web page),
//! `events` (EventBridge -> SQS -> targeted reconciles).

pub mod aws;
pub mod chart;
pub mod cli;
pub mod controller;
pub mod events;
pub mod http;
#[cfg(test)]
mod import_graph;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod resources;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod ui;
pub mod verify;

/// Annotation that lets a spec take over existing resources that carry no ownership tags.
pub const ADOPT_ANNOTATION: &str = "ecs-operator.io/adopt";
/// Tag naming the operator instance that manages a resource.
pub const MANAGED_BY_TAG: &str = "ecs-operator.io/managed-by";
/// Tag naming the spec (`Kind/name`) that owns a resource.
pub const OWNER_TAG: &str = "ecs-operator.io/owner";

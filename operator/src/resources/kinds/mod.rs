//! One folder per resource kind, each holding that kind's whole life: desired state, observe,
//! the pure plan (with its unit tests), apply, and delete (honouring `deletionPolicy: Retain`).
//! A kind is registered in [`super::registry`] and called by a pipeline.

pub mod alarm;
pub mod auto_scaling_group;
pub mod capacity_provider;
pub mod certificate;
pub mod dns;
pub mod ecr;
pub mod ecs_cluster;
pub mod ecs_service;
pub mod listener;
pub mod listener_rule;
pub mod load_balancer;
pub mod log_group;
pub mod metric_filter;
pub mod scaling;
pub mod sns_subscription;
pub mod sns_topic;
pub mod target_group;
pub mod task_definition;

//! One folder per resource kind, each holding that kind's whole life: desired state, observe,
//! the pure plan (with its unit tests), apply, delete (honouring `deletionPolicy: Retain`) and
//! the garbage-collection listing; and the registry, the one list of every kind ([`all`]).
//!
//! Adding a kind is its folder, one `mod` line and one line in [`all`] here, and a call in a
//! pipeline.
//!
//! Invariants: every `resource_type` a pipeline records (`SpecRun::resource`) or the
//! garbage-collection scan reports is registered here, with a distinct rank; [`all`] is in
//! garbage-collection order (a kind comes after the kinds whose findings it walks: listeners
//! after load balancers, scalable targets after services, metric filters after log groups);
//! the tests check the first two.

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

use super::kind::{DeleteFuture, GcScan, Kind, ListFuture};
use super::run::SpecRun;

/// A registered kind: its id, teardown rank, delete and garbage-collection listing.
#[derive(Clone, Copy)]
pub struct Registered {
    pub resource_type: &'static str,
    pub rank: u8,
    pub delete: for<'a, 'r> fn(&'a mut SpecRun<'r>, &'a str, bool) -> DeleteFuture<'a>,
    /// What garbage collection calls the listing in its errors.
    pub listing: &'static str,
    pub list_owned: for<'a, 'r> fn(&'a SpecRun<'r>, &'a mut GcScan) -> ListFuture<'a>,
}

impl Registered {
    fn of<K: Kind>() -> Self {
        Registered {
            resource_type: K::TYPE,
            rank: K::RANK,
            delete: K::delete,
            listing: K::LISTING,
            list_owned: K::list_owned,
        }
    }
}

/// Every kind this build manages, in garbage-collection order.
pub fn all() -> [Registered; 19] {
    [
        Registered::of::<certificate::CertificateKind>(),
        Registered::of::<load_balancer::LoadBalancerKind>(),
        Registered::of::<target_group::TargetGroupKind>(),
        Registered::of::<listener::ListenerKind>(),
        Registered::of::<listener_rule::ListenerRuleKind>(),
        Registered::of::<listener::ListenerCertificateKind>(),
        Registered::of::<ecr::RepositoryKind>(),
        Registered::of::<ecs_cluster::EcsClusterKind>(),
        Registered::of::<ecs_service::EcsServiceKind>(),
        Registered::of::<scaling::ScalableTargetKind>(),
        Registered::of::<capacity_provider::CapacityProviderKind>(),
        Registered::of::<auto_scaling_group::AutoScalingGroupKind>(),
        Registered::of::<task_definition::TaskDefinitionKind>(),
        Registered::of::<alarm::AlarmKind>(),
        Registered::of::<log_group::LogGroupKind>(),
        Registered::of::<metric_filter::MetricFilterKind>(),
        Registered::of::<sns_topic::TopicKind>(),
        Registered::of::<sns_subscription::SubscriptionKind>(),
        Registered::of::<dns::RecordKind>(),
    ]
}

/// The registered kind with id `resource_type`.
pub fn find(resource_type: &str) -> Option<Registered> {
    all().into_iter().find(|k| k.resource_type == resource_type)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_kind_has_its_own_id_and_its_own_rank() {
        let all = all();
        let ids: BTreeSet<&str> = all.iter().map(|k| k.resource_type).collect();
        let ranks: BTreeSet<u8> = all.iter().map(|k| k.rank).collect();
        assert_eq!(ids.len(), all.len());
        assert_eq!(ranks.len(), all.len());
        assert_eq!(
            find(target_group::TYPE).map(|k| k.rank),
            Some(target_group::TargetGroupKind::RANK)
        );
        assert!(find("elbv2:target-group").is_none());
    }

    #[test]
    fn a_kind_is_listed_after_the_kinds_whose_findings_it_walks() {
        let at = |t: &str| all().iter().position(|k| k.resource_type == t).unwrap();
        for (walker, walked) in [
            (listener::TYPE, load_balancer::TYPE),
            (listener_rule::TYPE, listener::TYPE),
            (listener::CERTIFICATE_TYPE, listener::TYPE),
            (listener::CERTIFICATE_TYPE, certificate::TYPE),
            (ecs_service::TYPE, ecs_cluster::TYPE),
            (scaling::TYPE, ecs_service::TYPE),
            (capacity_provider::TYPE, ecs_cluster::TYPE),
            (metric_filter::TYPE, log_group::TYPE),
            (sns_subscription::TYPE, sns_topic::TYPE),
        ] {
            assert!(at(walker) > at(walked), "{walker} walks {walked}");
        }
    }
}

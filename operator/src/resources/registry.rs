//! The one list of resource kinds: adding a kind is one line here (and its folder under
//! `kinds/`, and a call in a pipeline).
//!
//! Invariant: every `resource_type` a pipeline records (`SpecRun::resource`) or the
//! garbage-collection scan reports is registered here, with a distinct rank; the tests check
//! both.

use super::kind::{DeleteFuture, Kind};
use super::kinds::{
    alarm, auto_scaling_group, capacity_provider, certificate, dns, ecr, ecs_cluster, ecs_service,
    listener, listener_rule, load_balancer, log_group, metric_filter, scaling, sns_subscription,
    sns_topic, target_group, task_definition,
};
use super::run::SpecRun;

/// A registered kind: its id, teardown rank and delete.
#[derive(Clone, Copy)]
pub struct Registered {
    pub resource_type: &'static str,
    pub rank: u8,
    pub delete: for<'a, 'r> fn(&'a mut SpecRun<'r>, &'a str, bool) -> DeleteFuture<'a>,
}

impl Registered {
    fn of<K: Kind>() -> Self {
        Registered {
            resource_type: K::TYPE,
            rank: K::RANK,
            delete: K::delete,
        }
    }
}

/// Every kind this build manages.
pub fn kinds() -> [Registered; 19] {
    [
        Registered::of::<dns::RecordKind>(),
        Registered::of::<scaling::ScalableTargetKind>(),
        Registered::of::<ecs_service::EcsServiceKind>(),
        Registered::of::<listener_rule::ListenerRuleKind>(),
        Registered::of::<listener::ListenerCertificateKind>(),
        Registered::of::<target_group::TargetGroupKind>(),
        Registered::of::<task_definition::TaskDefinitionKind>(),
        Registered::of::<ecr::RepositoryKind>(),
        Registered::of::<listener::ListenerKind>(),
        Registered::of::<load_balancer::LoadBalancerKind>(),
        Registered::of::<certificate::CertificateKind>(),
        Registered::of::<ecs_cluster::EcsClusterKind>(),
        Registered::of::<capacity_provider::CapacityProviderKind>(),
        Registered::of::<alarm::AlarmKind>(),
        Registered::of::<sns_subscription::SubscriptionKind>(),
        Registered::of::<sns_topic::TopicKind>(),
        Registered::of::<metric_filter::MetricFilterKind>(),
        Registered::of::<log_group::LogGroupKind>(),
        Registered::of::<auto_scaling_group::AutoScalingGroupKind>(),
    ]
}

/// The registered kind with id `resource_type`.
pub fn find(resource_type: &str) -> Option<Registered> {
    kinds()
        .into_iter()
        .find(|k| k.resource_type == resource_type)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_kind_has_its_own_id_and_its_own_rank() {
        let all = kinds();
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
}

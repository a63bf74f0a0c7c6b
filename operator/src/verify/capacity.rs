//! Capacity providers: the Auto Scaling group behind each of a cluster's capacity providers
//! (`spec.capacityProviders[i].autoScalingGroup`, a name or an ARN) must exist; ECS refuses to
//! create a capacity provider on a group that does not. A group the ClusterSpec owns (the object
//! form) is created by the operator and is not looked up.

use super::{Facts, Finding, Lookup, Needs};
use crate::spec::types::AutoScalingGroupRef;
use crate::spec::Spec;

/// The group name of a spec value: the name itself, or the `autoScalingGroupName/NAME` part of
/// an ARN.
pub fn group_name(value: &str) -> &str {
    match value.rsplit_once("autoScalingGroupName/") {
        Some((_, name)) if value.starts_with("arn:") => name,
        _ => value,
    }
}

/// (field, group as written) of each capacity provider on an existing group.
fn of(spec: &Spec) -> Vec<(String, &str)> {
    let Spec::Cluster(c) = spec else {
        return Vec::new();
    };
    c.spec
        .capacity_providers
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match &p.auto_scaling_group {
            AutoScalingGroupRef::Existing(g) => Some((
                format!("spec.capacityProviders[{i}].autoScalingGroup"),
                g.as_str(),
            )),
            AutoScalingGroupRef::Owned(_) => None,
        })
        .collect()
}

pub fn needs(spec: &Spec, n: &mut Needs) {
    for (_, g) in of(spec) {
        n.groups.insert(g.to_string());
    }
}

pub fn check(spec: &Spec, facts: &Facts, out: &mut Vec<Finding>) {
    let key = spec.key();
    for (field, group) in of(spec) {
        match Facts::get(&facts.groups, group) {
            Lookup::Found(()) => {}
            Lookup::Missing => out.push(Finding::error(
                &key,
                &field,
                format!("the Auto Scaling group `{}` does not exist", group_name(group)),
                "create the Auto Scaling group first (it is not made by the operator), or fix the name",
            )),
            Lookup::Unknown(why) => out.push(Finding::unchecked(
                &key,
                &field,
                &format!("the Auto Scaling group `{}`", group_name(group)),
                &why,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_support::cluster;

    #[test]
    fn group_names_come_from_names_or_arns() {
        assert_eq!(group_name("prod-asg"), "prod-asg");
        assert_eq!(
            group_name(
                "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:uuid:autoScalingGroupName/prod-asg"
            ),
            "prod-asg"
        );
    }

    #[test]
    fn a_missing_group_is_an_error_on_its_capacity_provider() {
        let spec = cluster(
            "  capacityProviders:\n    - {name: a, autoScalingGroup: asg-a}\n    - {name: b, autoScalingGroup: asg-b}\n",
        );
        let mut facts = Facts::default();
        facts.groups.insert("asg-a".into(), Lookup::Found(()));
        facts.groups.insert("asg-b".into(), Lookup::Missing);
        let mut out = Vec::new();
        check(&spec, &facts, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].field, "spec.capacityProviders[1].autoScalingGroup");
        assert!(out[0].problem.contains("`asg-b`"));
    }
}

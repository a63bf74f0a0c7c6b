//! Networks: the subnets and security groups of a service's `network`, and of each load
//! balancer of a cluster, must exist and all be in one VPC (ECS and ELB refuse a mix).

use std::collections::BTreeMap;

use super::{Facts, Finding, Lookup, Needs};
use crate::spec::Spec;

/// One group of subnets and security groups that must share a VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group<'a> {
    /// The field holding both lists (`spec.network`, `spec.loadBalancers[0]`).
    pub field: String,
    pub subnets: &'a [String],
    pub security_groups: &'a [String],
}

/// The network groups of a spec.
pub fn groups(spec: &Spec) -> Vec<Group<'_>> {
    match spec {
        Spec::Service(s) => vec![Group {
            field: "spec.network".into(),
            subnets: &s.spec.network.subnets,
            security_groups: &s.spec.network.security_groups,
        }],
        Spec::Cluster(c) => c
            .spec
            .load_balancers
            .iter()
            .enumerate()
            .map(|(i, lb)| Group {
                field: format!("spec.loadBalancers[{i}]"),
                subnets: &lb.subnets,
                security_groups: &lb.security_groups,
            })
            .collect(),
    }
}

pub fn needs(spec: &Spec, n: &mut Needs) {
    for g in groups(spec) {
        n.subnets.extend(g.subnets.iter().cloned());
        n.security_groups.extend(g.security_groups.iter().cloned());
    }
}

pub fn check(spec: &Spec, facts: &Facts, out: &mut Vec<Finding>) {
    let key = spec.key();
    for g in groups(spec) {
        // VPC -> the ids in it, to name them when there is more than one VPC.
        let mut vpcs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (i, id) in g.subnets.iter().enumerate() {
            let field = format!("{}.subnets[{i}]", g.field);
            match Facts::get(&facts.subnets, id.as_str()) {
                Lookup::Found(s) => vpcs.entry(s.vpc.as_str()).or_default().push(id),
                Lookup::Missing => out.push(Finding::error(
                    &key,
                    field,
                    format!("the subnet `{id}` does not exist"),
                    "name an existing subnet id (subnet-...) of the VPC",
                )),
                Lookup::Unknown(why) => out.push(Finding::unchecked(
                    &key,
                    field,
                    &format!("the subnet `{id}`"),
                    &why,
                )),
            }
        }
        for (i, id) in g.security_groups.iter().enumerate() {
            let field = format!("{}.securityGroups[{i}]", g.field);
            match Facts::get(&facts.security_groups, id.as_str()) {
                Lookup::Found(vpc) => vpcs.entry(vpc.as_str()).or_default().push(id),
                Lookup::Missing => out.push(Finding::error(
                    &key,
                    field,
                    format!("the security group `{id}` does not exist"),
                    "name an existing security group id (sg-...) of the subnets' VPC",
                )),
                Lookup::Unknown(why) => out.push(Finding::unchecked(
                    &key,
                    field,
                    &format!("the security group `{id}`"),
                    &why,
                )),
            }
        }
        if vpcs.len() > 1 {
            let list: Vec<String> = vpcs
                .iter()
                .map(|(vpc, ids)| format!("{vpc}: {}", ids.join(", ")))
                .collect();
            out.push(Finding::error(
                &key,
                g.field.clone(),
                format!(
                    "the subnets and security groups are in {} VPCs ({})",
                    vpcs.len(),
                    list.join("; ")
                ),
                "use subnets and security groups of one VPC",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{Severity, Subnet};

    fn spec() -> Spec {
        crate::verify::test_support::spec(
            "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {name: web}\nspec:\n  \
             cluster: prod\n  container: {name: c, image: nginx, cpu: 256, memory: 512}\n  \
             network: {subnets: [subnet-1, subnet-2], securityGroups: [sg-1]}\n",
        )
    }

    fn subnet(vpc: &str) -> Lookup<Subnet> {
        Lookup::Found(Subnet {
            vpc: vpc.into(),
            zone: "eu-west-1a".into(),
        })
    }

    fn run(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        check(&spec(), facts, &mut out);
        out
    }

    #[test]
    fn subnets_and_groups_of_one_vpc_pass_and_a_missing_one_is_named_by_index() {
        let mut facts = Facts::default();
        facts.subnets.insert("subnet-1".into(), subnet("vpc-a"));
        facts.subnets.insert("subnet-2".into(), subnet("vpc-a"));
        facts
            .security_groups
            .insert("sg-1".into(), Lookup::Found("vpc-a".into()));
        assert!(run(&facts).is_empty());
        facts.subnets.insert("subnet-2".into(), Lookup::Missing);
        let f = run(&facts);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].field, "spec.network.subnets[1]");
        assert_eq!(f[0].severity, Severity::Error);
    }

    #[test]
    fn a_security_group_of_another_vpc_is_an_error_naming_both_vpcs() {
        let mut facts = Facts::default();
        facts.subnets.insert("subnet-1".into(), subnet("vpc-a"));
        facts.subnets.insert("subnet-2".into(), subnet("vpc-a"));
        facts
            .security_groups
            .insert("sg-1".into(), Lookup::Found("vpc-b".into()));
        let f = run(&facts);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].field, "spec.network");
        assert!(
            f[0].problem
                .contains("vpc-a: subnet-1, subnet-2; vpc-b: sg-1"),
            "{f:?}"
        );
    }
}

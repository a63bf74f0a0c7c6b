//! Hosted zones: every Route53 zone a spec names (a load balancer's certificate validation
//! zone, a service's DNS zone) must exist, by name (`example.com`) or id (`Z123...`).

use super::{Facts, Finding, Lookup, Needs};
use crate::spec::Spec;

/// The zones a spec names: (field, name or id as written).
pub fn of(spec: &Spec) -> Vec<(String, &str)> {
    match spec {
        Spec::Cluster(c) => c
            .spec
            .load_balancers
            .iter()
            .enumerate()
            .map(|(i, lb)| {
                (
                    format!("spec.loadBalancers[{i}].certificate.hostedZone"),
                    lb.certificate.hosted_zone.as_str(),
                )
            })
            .collect(),
        Spec::Service(s) => s
            .spec
            .ingress
            .iter()
            .filter_map(|i| i.dns.as_ref())
            .map(|d| {
                (
                    "spec.ingress.dns.hostedZone".to_string(),
                    d.hosted_zone.as_str(),
                )
            })
            .collect(),
    }
}

/// Whether a spec value names a zone by id (`Z...` or `/hostedzone/Z...`) rather than by name.
pub fn is_zone_id(s: &str) -> bool {
    s.starts_with("/hostedzone/")
        || (!s.is_empty()
            && !s.contains('.')
            && s.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

/// A zone name as Route53 compares it: lower case, no trailing dot.
pub fn norm_name(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

pub fn needs(spec: &Spec, n: &mut Needs) {
    for (_, z) in of(spec) {
        n.zones.insert(z.to_string());
    }
}

pub fn check(spec: &Spec, facts: &Facts, out: &mut Vec<Finding>) {
    let key = spec.key();
    for (field, zone) in of(spec) {
        match Facts::get(&facts.zones, zone) {
            Lookup::Found(()) => {}
            Lookup::Missing => out.push(Finding::error(
                &key,
                &field,
                if is_zone_id(zone) {
                    format!("no Route53 hosted zone has the id `{zone}`")
                } else {
                    format!("no Route53 hosted zone is named `{}`", norm_name(zone))
                },
                "create the hosted zone (and delegate it), or name one that exists",
            )),
            Lookup::Unknown(why) => out.push(Finding::unchecked(
                &key,
                &field,
                &format!("the hosted zone `{zone}`"),
                &why,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_support::cluster;
    use crate::verify::Severity;

    fn lb_cluster() -> Spec {
        cluster(
            "  loadBalancers:\n    - name: pub\n      subnets: [subnet-1, subnet-2]\n      \
             certificate: {domains: [example.com], hostedZone: example.com}\n",
        )
    }

    #[test]
    fn ids_and_names_are_told_apart() {
        assert!(is_zone_id("Z0123ABC"));
        assert!(is_zone_id("/hostedzone/Z0123ABC"));
        assert!(!is_zone_id("example.com"));
        assert_eq!(norm_name("Example.COM."), "example.com");
    }

    #[test]
    fn a_missing_zone_is_an_error_on_the_load_balancers_certificate_field() {
        let spec = lb_cluster();
        let mut n = Needs::default();
        needs(&spec, &mut n);
        assert_eq!(n.zones.len(), 1);
        let mut facts = Facts::default();
        facts.zones.insert("example.com".into(), Lookup::Missing);
        let mut out = Vec::new();
        check(&spec, &facts, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field, "spec.loadBalancers[0].certificate.hostedZone");
        assert_eq!(out[0].severity, Severity::Error);
        facts.zones.insert("example.com".into(), Lookup::Found(()));
        let mut out = Vec::new();
        check(&spec, &facts, &mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}

//! Which spec owns the resource an event names (pure): an index built from the status
//! ledgers (every resource a spec's status record lists), and who the operator itself is.
//!
//! Keys are the ledger ids themselves (ARNs, mostly) plus a name-based alias for the kinds
//! that AWS APIs and events also name without an ARN ([`aliases`]): `ecs service C/S`,
//! `ecs cluster C`, `ecs capacity-provider N`, `ecs task-definition F:R`, `ecr repository N`,
//! `route53 record ZONE host`. [`super::parse`] produces lookups in the same vocabulary.
//!
//! Invariant: a lookup only ever finds specs whose ledger lists the resource; a resource no
//! ledger lists (unowned, or of a spec that is gone and cleaned up) finds nothing.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::arn::Arn;
use crate::spec::SpecKey;
use crate::store::status::ResourceRef;

/// Ledger keys -> the specs that list them (a listener certificate names the listener of a
/// ClusterSpec and the certificate of a ServiceSpec, so one key can have several owners).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerIndex {
    owners: BTreeMap<String, BTreeSet<SpecKey>>,
}

impl OwnerIndex {
    /// The index of every ledger given.
    pub fn build<'a>(ledgers: impl IntoIterator<Item = (&'a SpecKey, &'a [ResourceRef])>) -> Self {
        let mut owners: BTreeMap<String, BTreeSet<SpecKey>> = BTreeMap::new();
        for (key, resources) in ledgers {
            for r in resources {
                for k in aliases(&r.resource_type, &r.id) {
                    owners.entry(k).or_default().insert(key.clone());
                }
            }
        }
        OwnerIndex { owners }
    }

    /// The specs owning any of `lookups`.
    pub fn owners(&self, lookups: &[String]) -> BTreeSet<SpecKey> {
        lookups
            .iter()
            .filter_map(|l| self.owners.get(l))
            .flatten()
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

/// The index keys of one ledger entry: its id, and its name-based alias when it has one.
pub fn aliases(resource_type: &str, id: &str) -> Vec<String> {
    match resource_type {
        // `LISTENER_ARN|CERTIFICATE_ARN`: the certificate is what the ServiceSpec attached.
        "elbv2:listener-certificate" => match id.split_once('|') {
            Some((_, cert)) => vec![cert.to_string()],
            None => vec![id.to_string()],
        },
        // `ZONE_ID/host/TYPE`.
        "route53:record" => {
            let mut out = vec![id.to_string()];
            let parts: Vec<&str> = id.split('/').collect();
            if parts.len() >= 3 {
                let zone = parts[..parts.len() - 2].join("/");
                out.push(record_alias(&zone, parts[parts.len() - 2]));
            }
            out
        }
        // `service/CLUSTER/NAME`: the service's own key, for the same spec.
        "application-autoscaling:scalable-target" => {
            let mut out = vec![id.to_string()];
            if let Some((c, s)) = id.strip_prefix("service/").and_then(|r| r.split_once('/')) {
                out.push(super::parse::ecs_service_alias(c, s));
            }
            out
        }
        _ => {
            let mut out = vec![id.to_string()];
            out.extend(alias_of_arn(id));
            out
        }
    }
}

/// The name-based key of an ARN AWS also names by name, else `None`.
pub fn alias_of_arn(arn: &str) -> Option<String> {
    let Arn {
        service, resource, ..
    } = Arn::parse(arn)?;
    let (kind, rest) = resource.split_once('/')?;
    match (service, kind) {
        ("ecs", "service") => {
            let (cluster, name) = rest.split_once('/')?;
            Some(super::parse::ecs_service_alias(cluster, name))
        }
        ("ecs", "cluster") => Some(format!("ecs cluster {rest}")),
        ("ecs", "capacity-provider") => Some(format!("ecs capacity-provider {rest}")),
        ("ecs", "task-definition") => Some(format!("ecs task-definition {rest}")),
        ("ecr", "repository") => Some(format!("ecr repository {rest}")),
        _ => None,
    }
}

/// `route53 record ZONE host`: the zone id without `/hostedzone/`, the host in lower case
/// without its trailing dot.
pub fn record_alias(zone: &str, name: &str) -> String {
    let zone = zone.trim_start_matches("/hostedzone/");
    let host = name.trim_end_matches('.').to_ascii_lowercase();
    format!("route53 record {zone} {host}")
}

/// Whether a CloudTrail caller (`userIdentity.arn`) is the operator (`own`, from STS
/// GetCallerIdentity at start). The same ARN is; so is any session of the same assumed role
/// in the same account (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`): every replica of
/// the operator runs as the task role, each with a session of its own, and a write one
/// replica made must not make its successor reconcile.
pub fn is_own_caller(caller: &str, own: &str) -> bool {
    if caller == own {
        return true;
    }
    match (assumed_role(caller), assumed_role(own)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// `(partition, account, role)` of an assumed-role session ARN.
fn assumed_role(arn: &str) -> Option<(&str, &str, &str)> {
    let Arn {
        partition,
        service: "sts",
        account,
        resource,
        ..
    } = Arn::parse(arn)?
    else {
        return None;
    };
    let rest = resource.strip_prefix("assumed-role/")?;
    let (role, _session) = rest.split_once('/')?;
    Some((partition, account, role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    fn r(t: &str, id: &str) -> ResourceRef {
        ResourceRef {
            resource_type: t.into(),
            id: id.into(),
        }
    }

    #[test]
    fn a_ledger_entry_is_found_by_arn_and_by_the_name_aws_also_uses() {
        let web = SpecKey::new(Kind::ServiceSpec, "web");
        let prod = SpecKey::new(Kind::ClusterSpec, "prod");
        let web_ledger = [
            r("ecs:service", "arn:aws:ecs:eu-west-1:1:service/prod/web"),
            r("ecr:repository", "arn:aws:ecr:eu-west-1:1:repository/web"),
            r("route53:record", "Z0123/www.example.com/A"),
            r("application-autoscaling:scalable-target", "service/prod/web"),
            r(
                "elbv2:listener-certificate",
                "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/p/1/2|arn:aws:acm:eu-west-1:1:certificate/c",
            ),
        ];
        let prod_ledger = [
            r(
                "elbv2:listener",
                "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/p/1/2",
            ),
            r("ecs:cluster", "arn:aws:ecs:eu-west-1:1:cluster/prod"),
        ];
        let index = OwnerIndex::build([(&web, &web_ledger[..]), (&prod, &prod_ledger[..])]);
        let find = |l: &[&str]| {
            index
                .owners(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .into_iter()
                .map(|k| k.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            find(&["arn:aws:ecs:eu-west-1:1:service/prod/web"]),
            ["ServiceSpec/web"]
        );
        assert_eq!(find(&["ecs service prod/web"]), ["ServiceSpec/web"]);
        assert_eq!(find(&["ecr repository web"]), ["ServiceSpec/web"]);
        assert_eq!(
            find(&["route53 record Z0123 www.example.com"]),
            ["ServiceSpec/web"]
        );
        assert_eq!(find(&["ecs cluster prod"]), ["ClusterSpec/prod"]);
        assert_eq!(
            find(&["arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/p/1/2"]),
            ["ClusterSpec/prod"]
        );
        assert_eq!(
            find(&[
                "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/p/1/2",
                "arn:aws:acm:eu-west-1:1:certificate/c"
            ]),
            ["ClusterSpec/prod", "ServiceSpec/web"]
        );
        assert!(find(&[
            "ecs service prod/api",
            "arn:aws:ecs:eu-west-1:1:service/other/web"
        ])
        .is_empty());
    }

    #[test]
    fn the_operator_is_its_own_arn_or_any_session_of_its_assumed_role() {
        let own = "arn:aws:sts::111122223333:assumed-role/ecs-operator-task/3f2a1c9e";
        assert!(is_own_caller(own, own));
        assert!(is_own_caller(
            "arn:aws:sts::111122223333:assumed-role/ecs-operator-task/other-replica",
            own
        ));
        assert!(!is_own_caller(
            "arn:aws:sts::111122223333:assumed-role/Admin/alice",
            own
        ));
        assert!(!is_own_caller(
            "arn:aws:sts::999999999999:assumed-role/ecs-operator-task/3f2a1c9e",
            own
        ));
        assert!(!is_own_caller("arn:aws:iam::111122223333:user/alice", own));
        let user = "arn:aws:iam::123456789012:user/moto";
        assert!(is_own_caller(user, user));
        assert!(!is_own_caller("arn:aws:iam::123456789012:user/bob", user));
    }
}

//! Garbage collection, the AWS side: everything this instance owns, grouped by owner.
//!
//! A spec's deletion works from its status record's resource list (the ledger). A resource
//! created in a pass that crashed before its status was written is in no ledger, and if the
//! spec then leaves the store it would leak. [`scan`] lists every resource kind the operator
//! creates, reads the ownership tags (for Route53, the ownership TXT records in the zones the
//! specs name and the ledgers list) and returns what it found by the owner the tags name. The
//! controller adds what belongs to owners that are not in the store to their ledgers, and the
//! ordinary deletion takes it from there (deletion policy, mass-deletion guard, confirmation).
//!
//! Invariants:
//! - the scan only reads;
//! - only resources carrying both ownership tags with this instance's `managed-by` value are
//!   returned (Route53: TXT values naming this instance); released resources, other instances'
//!   and untagged ones never are;
//! - a kind that cannot be listed is reported in [`OwnedScan::errors`] and skipped; the rest still
//!   count (finding less is safe: the scan only ever adds to a ledger).
//!
//! [`scan`] is the driver side: it runs every registered kind's `list_owned` in registry
//! order (see [`crate::resources::kinds::all`]); each kind's folder holds its listing.
//! Listings page and spend one budget token per page (most accounts fit in one page). Cost: one listing per kind, ELBv2 tags 20 ARNs per call, ECS clusters 100 and
//! services 10 per DescribeClusters/DescribeServices, plus one tag read per ACM certificate
//! and per ECR repository, two reads per active task-definition family, and one tag read per
//! CloudWatch alarm, log group and SNS topic (plus one DescribeMetricFilters per owned log group
//! and one ListSubscriptionsByTopic per owned topic). That is why it runs
//! on its own interval (`run --gc-interval`), not on every resync.

use std::collections::BTreeSet;

use crate::reconcile::{OwnedScan, ValidSpecs};
use crate::resources::context::Aws;
use crate::resources::kind::GcScan;
use crate::resources::kinds::{self, dns};
use crate::resources::run::SpecRun;
use crate::spec::{Kind, Spec, SpecKey};
use crate::store::status::ResourceRef;

/// The hosted zones whose ownership TXT records are read: those the specs name and those the
/// ledgers' `route53:record` entries (`<zone id>/<host>/A`) name.
pub fn zones(specs: &ValidSpecs, ledgers: &[ResourceRef]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for spec in specs.values() {
        match spec.as_ref() {
            Spec::Cluster(c) => {
                for lb in &c.spec.load_balancers {
                    out.insert(lb.certificate.hosted_zone.clone());
                }
            }
            Spec::Service(s) => {
                if let Some(d) = s.spec.ingress.as_ref().and_then(|i| i.dns.as_ref()) {
                    out.insert(d.hosted_zone.clone());
                }
            }
        }
    }
    for r in ledgers {
        if r.resource_type == dns::TYPE {
            if let Some(z) = r.id.split('/').next().filter(|z| !z.is_empty()) {
                out.insert(format!("/hostedzone/{z}"));
            }
        }
    }
    out
}

/// List everything this instance owns (see the module doc).
pub async fn scan(aws: &Aws, zones: &BTreeSet<String>) -> OwnedScan {
    // The listings take a run; this one never writes (apply == false) and its key is only a
    // label in errors.
    let run = SpecRun::new(
        aws,
        SpecKey::new(Kind::ClusterSpec, "(garbage-collection)"),
        false,
        false,
    );
    let mut scan = GcScan::new(zones.clone());
    for kind in kinds::all() {
        if let Err(e) = (kind.list_owned)(&run, &mut scan).await {
            scan.found.errors.push(format!("{}: {e}", kind.listing));
        }
    }
    scan.found
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::resources::shared::tags::owner_of;
    use crate::{MANAGED_BY_TAG, OWNER_TAG};

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_both_tags_with_this_instance_name_an_owner() {
        let both = tags(&[(MANAGED_BY_TAG, "ops"), (OWNER_TAG, "ServiceSpec/web")]);
        assert_eq!(
            owner_of("ops", &both),
            Some(SpecKey::new(Kind::ServiceSpec, "web"))
        );
        assert_eq!(owner_of("other", &both), None);
        assert_eq!(
            owner_of("ops", &tags(&[(OWNER_TAG, "ServiceSpec/web")])),
            None
        );
        assert_eq!(owner_of("ops", &tags(&[(MANAGED_BY_TAG, "ops")])), None);
        let released = tags(&[(
            crate::resources::shared::tags::RELEASED_TAG,
            "ServiceSpec/web",
        )]);
        assert_eq!(owner_of("ops", &released), None);
        let garbled = tags(&[(MANAGED_BY_TAG, "ops"), (OWNER_TAG, "Widget/web")]);
        assert_eq!(owner_of("ops", &garbled), None);
    }

    #[test]
    fn zones_come_from_specs_and_from_recorded_records() {
        let ledger = vec![
            ResourceRef {
                resource_type: "route53:record".into(),
                id: "Z123/web.example.com/A".into(),
            },
            ResourceRef {
                resource_type: "elbv2:targetgroup".into(),
                id: "arn:aws:elasticloadbalancing:x".into(),
            },
        ];
        let z = zones(&Default::default(), &ledger);
        assert_eq!(z, BTreeSet::from(["/hostedzone/Z123".to_string()]));
    }
}

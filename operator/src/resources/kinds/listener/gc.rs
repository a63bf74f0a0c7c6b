//! Garbage collection: the listeners of the load balancers the scan found owned, and the SNI
//! certificates attached to them. Every listener walked is left under [`SEEN`] for the
//! listener rules.

use super::{listener_certificate_id, CERTIFICATE_TYPE, TYPE};
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kinds::{certificate, load_balancer};
use crate::resources::run::SpecRun;
use crate::resources::shared::elb_tags;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

/// Where the listeners of owned load balancers are left, owned or not.
pub const SEEN: &str = "elbv2:listener (on owned load balancers)";

/// The listeners of owned load balancers whose tags name an owner of this instance (one
/// DescribeListeners per load balancer, then DescribeTags 20 ARNs per call).
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    for (_, lb) in scan.owned(load_balancer::TYPE) {
        let listeners = run
            .aws
            .read(
                Service::Elbv2,
                "DescribeListeners",
                &lb,
                run.aws
                    .elbv2
                    .describe_listeners()
                    .load_balancer_arn(&lb)
                    .send(),
            )
            .await?;
        let arns: Vec<String> = listeners
            .listeners()
            .iter()
            .filter_map(|l| l.listener_arn().map(str::to_string))
            .collect();
        for arn in &arns {
            scan.saw(SEEN, arn.clone(), None);
        }
        for (arn, tags) in elb_tags::describe(run, &arns).await? {
            if let Some(owner) = owner_of(&run.aws.instance, &tags) {
                scan.add(owner, TYPE, arn);
            }
        }
    }
    Ok(())
}

/// The SNI certificates attached to the listeners walked: an attachment belongs to the owner
/// of its certificate (DescribeListenerCertificates, every page, per listener).
pub async fn list_owned_certificates(
    run: &SpecRun<'_>,
    scan: &mut GcScan,
) -> Result<(), ResourceError> {
    let owners: std::collections::BTreeMap<String, crate::spec::SpecKey> = scan
        .owned(certificate::TYPE)
        .into_iter()
        .map(|(owner, arn)| (arn, owner))
        .collect();
    for listener in &scan.seen_ids(SEEN) {
        for (cert, is_default) in super::describe_certificates(run, listener).await? {
            if is_default == Some(true) {
                continue;
            }
            if let Some(owner) = owners.get(&cert) {
                scan.add(
                    owner.clone(),
                    CERTIFICATE_TYPE,
                    listener_certificate_id(listener, &cert),
                );
            }
        }
    }
    Ok(())
}

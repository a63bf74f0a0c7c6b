//! Garbage collection: every load balancer of the account whose tags name an owner of this
//! instance (DescribeLoadBalancers, all pages, then DescribeTags 20 ARNs per call).

use super::{list_all, TYPE};
use crate::resources::kind::GcScan;
use crate::resources::run::SpecRun;
use crate::resources::shared::elb_tags;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let arns: Vec<String> = list_all(run)
        .await?
        .values()
        .filter_map(|l| l.load_balancer_arn().map(str::to_string))
        .collect();
    for (arn, tags) in elb_tags::describe(run, &arns).await? {
        if let Some(owner) = owner_of(&run.aws.instance, &tags) {
            scan.add(owner, TYPE, arn);
        }
    }
    Ok(())
}

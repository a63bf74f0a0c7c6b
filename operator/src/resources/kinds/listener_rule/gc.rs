//! Garbage collection: the rules (not the defaults) of the listeners the listener kind walked
//! whose tags name an owner of this instance (one DescribeRules per listener, then
//! DescribeTags 20 ARNs per call).

use super::TYPE;
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kinds::listener;
use crate::resources::run::SpecRun;
use crate::resources::shared::elb_tags;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    for listener in &scan.seen_ids(listener::SEEN) {
        let rules = run
            .aws
            .read(
                Service::Elbv2,
                "DescribeRules",
                listener,
                run.aws.elbv2.describe_rules().listener_arn(listener).send(),
            )
            .await?;
        let arns: Vec<String> = rules
            .rules()
            .iter()
            .filter(|r| r.is_default() != Some(true))
            .filter_map(|r| r.rule_arn().map(str::to_string))
            .collect();
        for (arn, tags) in elb_tags::describe(run, &arns).await? {
            if let Some(owner) = owner_of(&run.aws.instance, &tags) {
                scan.add(owner, TYPE, arn);
            }
        }
    }
    Ok(())
}

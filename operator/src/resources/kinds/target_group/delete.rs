//! Deleting (or releasing) the target group.

use crate::aws::Service;
use crate::resources::kind::Gone;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::elb_tags;
use crate::resources::ResourceError;

/// Teardown of the target group (`elbv2:targetgroup`, its ARN), after the ECS service and the
/// listener rule that used it: deleted, or released with `retain`. One still in use (AWS
/// answers `ResourceInUse` while a rule or a draining service holds it) makes the deletion wait
/// and returns `false`. A target group without our tags is left alone.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    // Gone already, or not ours: left alone.
    if !elb_tags::owned(run, arn).await? {
        return Ok(Gone::Yes);
    }
    let name = arn
        .split_once(":targetgroup/")
        .map(|(_, r)| r.split('/').next().unwrap_or(r))
        .unwrap_or(arn)
        .to_string();
    let resource = format!("target group {name}");
    if retain {
        elb_tags::release(run, arn, &resource).await?;
        return Ok(Gone::Yes);
    }
    if !run.plan(Change::delete(&resource, "")) {
        return Ok(Gone::Yes);
    }
    match run
        .aws
        .write(
            Service::Elbv2,
            "DeleteTargetGroup",
            arn,
            run.aws
                .elbv2
                .delete_target_group()
                .target_group_arn(arn)
                .send(),
        )
        .await
    {
        Ok(_) => Ok(Gone::Yes),
        Err(e) if e.code() == Some("TargetGroupNotFound") => Ok(Gone::Yes),
        Err(e) if e.code() == Some("ResourceInUse") => Ok(Gone::not_yet(
            format!("{resource} is still in use ({e})"),
            crate::resources::shared::DRAIN_POLL,
        )),
        Err(e) => Err(e),
    }
}

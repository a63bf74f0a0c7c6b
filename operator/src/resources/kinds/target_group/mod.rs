//! The target group of a ServiceSpec with ingress: target type `ip` (awsvpc tasks), HTTP on the
//! container port, in the load balancer's VPC, the health check exactly as specified, and the
//! `deregistration_delay.timeout_seconds` attribute.
//!
//! Invariants: the name is derived from the spec name (at most 32 characters); port, protocol,
//! VPC and target type cannot change in place and are reported, never recreated; the health
//! check is compared field by field with AWS's spelling normalised (matcher codes without
//! spaces); every difference is one ModifyTargetGroup call.

mod delete;
mod observe;
mod plan;

use aws_sdk_elasticloadbalancingv2::types::{
    Matcher, ProtocolEnum, TargetGroupAttribute, TargetTypeEnum,
};

use crate::aws::Service;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Managed, Plan};
use crate::resources::run::SpecRun;
use crate::resources::shared::elb_tags::{self, Tags};
use crate::resources::ResourceError;

pub use delete::delete;
pub use observe::{list_owned, observe, target_group_names};
pub use plan::{
    desired, normalise_matcher, plan, Desired, Health, Observed, Step, ATTR_DEREGISTRATION_DELAY,
    DEFAULT_DEREGISTRATION_DELAY,
};

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "elbv2:targetgroup";

crate::resources::kind::kind!(
    /// A target group, as the generic driver sees it.
    TargetGroupKind, TYPE, 5, delete, "ELBv2 target groups", list_owned
);

/// The generic driver's view of a target group: its output is the ARN (empty while only
/// planning a create).
impl Managed for TargetGroupKind {
    crate::resources::kind::by_name!("target group");
    crate::resources::kind::arn_output!();
    const IMMUTABLE: &'static str = "TargetGroupImmutable";

    fn plan(d: &Desired, o: Option<&Observed>, missing: Tags) -> Plan<Step> {
        plan(d, o, missing).into()
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out: arn, .. } = at;
        let elb = &run.aws.elbv2;
        let h = &d.health;
        match step {
            Step::Create => {
                let tags = run.tags();
                let out = run
                    .aws
                    .write_recorded(
                        Service::Elbv2,
                        "CreateTargetGroup",
                        &d.name,
                        elb.create_target_group()
                            .name(&d.name)
                            .protocol(ProtocolEnum::Http)
                            .port(d.port)
                            .vpc_id(&d.vpc_id)
                            .target_type(TargetTypeEnum::Ip)
                            .health_check_enabled(true)
                            .health_check_protocol(ProtocolEnum::Http)
                            .health_check_port(&h.port)
                            .health_check_path(&h.path)
                            .health_check_interval_seconds(h.interval as i32)
                            .health_check_timeout_seconds(h.timeout as i32)
                            .healthy_threshold_count(h.healthy as i32)
                            .unhealthy_threshold_count(h.unhealthy as i32)
                            .matcher(Matcher::builder().http_code(&h.matcher).build())
                            .set_tags(Some(elb_tags::sdk_tags(&tags)))
                            .send(),
                        |out| observe::recorded(out.target_groups(), Some(&tags)),
                    )
                    .await?;
                *arn = out
                    .target_groups()
                    .first()
                    .and_then(|t| t.target_group_arn())
                    .unwrap_or_default()
                    .to_string();
            }
            Step::Tag(tags) => elb_tags::add(run, arn, &tags).await?,
            Step::Health => {
                run.aws
                    .write_recorded(
                        Service::Elbv2,
                        "ModifyTargetGroup",
                        &d.name,
                        elb.modify_target_group()
                            .target_group_arn(arn.as_str())
                            .health_check_enabled(true)
                            .health_check_protocol(ProtocolEnum::Http)
                            .health_check_port(&h.port)
                            .health_check_path(&h.path)
                            .health_check_interval_seconds(h.interval as i32)
                            .health_check_timeout_seconds(h.timeout as i32)
                            .healthy_threshold_count(h.healthy as i32)
                            .unhealthy_threshold_count(h.unhealthy as i32)
                            .matcher(Matcher::builder().http_code(&h.matcher).build())
                            .send(),
                        |out| observe::recorded(out.target_groups(), None),
                    )
                    .await?;
            }
            Step::Deregistration => {
                // Attributes are in no snapshot entry (read per target group).
                run.aws
                    .write_recorded(
                        Service::Elbv2,
                        "ModifyTargetGroupAttributes",
                        &d.name,
                        elb.modify_target_group_attributes()
                            .target_group_arn(arn.as_str())
                            .attributes(
                                TargetGroupAttribute::builder()
                                    .key(ATTR_DEREGISTRATION_DELAY)
                                    .value(d.deregistration_delay.to_string())
                                    .build(),
                            )
                            .send(),
                        |_| Vec::new(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

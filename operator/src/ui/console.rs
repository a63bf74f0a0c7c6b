//! Links from a status record's resources to the AWS console (pure).
//!
//! The region comes from the resource's ARN when it has one, else from the region the operator
//! runs in (scalable targets are named, not ARNs; Route53 is global). Only the `aws` partition
//! has a console at these addresses: ARNs of other partitions get no link rather than a wrong one.

use crate::aws::arn::Arn;

/// The console page of a resource the operator records (`resource_type`, `id` as in
/// [`crate::store::ResourceRef`]), or `None` when the kind has no page of its own or the id
/// does not have the expected shape.
pub fn console_url(resource_type: &str, id: &str, default_region: &str) -> Option<String> {
    match resource_type {
        "route53:record" => {
            // `<zone id>/<host>/<type>`
            let zone = id.split('/').next().filter(|z| !z.is_empty())?;
            return Some(format!(
                "https://console.aws.amazon.com/route53/v2/hostedzones#ListRecordSets/{zone}"
            ));
        }
        "application-autoscaling:scalable-target" => {
            // `service/<cluster>/<service>`: the service's page, where its scaling is shown.
            let mut parts = id.split('/');
            let (Some("service"), Some(cluster), Some(service), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            let r = region_or(default_region)?;
            return Some(format!(
                "https://{r}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{service}/health?region={r}"
            ));
        }
        "elbv2:listener-certificate" => {
            // `<listener arn>|<certificate arn>`: the listener's page lists its certificates.
            let listener = id.split('|').next()?;
            return console_url("elbv2:listener", listener, default_region);
        }
        _ => {}
    }
    let arn = console_arn(id)?;
    let r = arn.region;
    let ec2 = |fragment: String| {
        Some(format!(
            "https://{r}.console.aws.amazon.com/ec2/home?region={r}#{fragment}"
        ))
    };
    match resource_type {
        "ecs:cluster" => {
            let name = arn.resource.strip_prefix("cluster/")?;
            Some(format!(
                "https://{r}.console.aws.amazon.com/ecs/v2/clusters/{name}/services?region={r}"
            ))
        }
        "ecs:service" => {
            // `service/<cluster>/<service>` (the long ARN format).
            let rest = arn.resource.strip_prefix("service/")?;
            let (cluster, service) = rest.split_once('/')?;
            Some(format!(
                "https://{r}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{service}/health?region={r}"
            ))
        }
        "ecs:task-definition" => {
            let rest = arn.resource.strip_prefix("task-definition/")?;
            let (family, revision) = rest.split_once(':')?;
            Some(format!(
                "https://{r}.console.aws.amazon.com/ecs/v2/task-definitions/{family}/{revision}/containers?region={r}"
            ))
        }
        "ecs:capacity-provider" => Some(format!(
            "https://{r}.console.aws.amazon.com/ecs/v2/clusters?region={r}"
        )),
        "elbv2:loadbalancer" => ec2(format!("LoadBalancer:loadBalancerArn={id}")),
        "elbv2:targetgroup" => ec2(format!("TargetGroup:targetGroupArn={id}")),
        "elbv2:listener" => ec2(format!("ListenerDetails:listenerArn={id}")),
        "elbv2:listener-rule" => {
            // `listener-rule/app/<lb>/<id>/<listener id>/<rule id>`: its listener's page.
            let rest = arn.resource.strip_prefix("listener-rule/")?;
            let (listener, _rule) = rest.rsplit_once('/')?;
            let listener_arn = format!(
                "arn:aws:elasticloadbalancing:{r}:{}:listener/{listener}",
                arn.account
            );
            ec2(format!("ListenerDetails:listenerArn={listener_arn}"))
        }
        "acm:certificate" => {
            let cert = arn.resource.strip_prefix("certificate/")?;
            Some(format!(
                "https://{r}.console.aws.amazon.com/acm/home?region={r}#/certificates/{cert}"
            ))
        }
        "ecr:repository" => {
            let name = arn.resource.strip_prefix("repository/")?;
            Some(format!(
                "https://{r}.console.aws.amazon.com/ecr/repositories/private/{}/{name}?region={r}",
                arn.account
            ))
        }
        _ => None,
    }
}

/// A region name as it may appear in a host name (letters, digits, `-`), or `None`.
fn region_or(region: &str) -> Option<&str> {
    let ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(region)
}

/// `s` as an ARN the links can use: the `aws` partition (the links go to its console) and a
/// region fit for a host name.
fn console_arn(s: &str) -> Option<Arn<'_>> {
    Arn::parse(s).filter(|a| a.partition == "aws" && region_or(a.region).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "eu-west-1";

    fn url(t: &str, id: &str) -> Option<String> {
        console_url(t, id, R)
    }

    #[test]
    fn ecs_resources_link_to_their_pages_in_the_arns_region() {
        assert_eq!(
            url("ecs:service", "arn:aws:ecs:us-east-2:123456789012:service/prod/web").as_deref(),
            Some("https://us-east-2.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/health?region=us-east-2")
        );
        assert_eq!(
            url("ecs:cluster", "arn:aws:ecs:eu-west-1:123456789012:cluster/prod").as_deref(),
            Some("https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/services?region=eu-west-1")
        );
        assert_eq!(
            url(
                "ecs:task-definition",
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/prod-web:7"
            )
            .as_deref(),
            Some("https://eu-west-1.console.aws.amazon.com/ecs/v2/task-definitions/prod-web/7/containers?region=eu-west-1")
        );
    }

    #[test]
    fn load_balancer_pieces_link_to_the_ec2_console_and_a_rule_to_its_listener() {
        let lb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/prod-public/50dc6c495c0c9188";
        assert_eq!(
            url("elbv2:loadbalancer", lb).as_deref(),
            Some(format!("https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#LoadBalancer:loadBalancerArn={lb}").as_str())
        );
        let rule = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/prod-public/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
        assert_eq!(
            url("elbv2:listener-rule", rule).as_deref(),
            Some("https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ListenerDetails:listenerArn=arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/prod-public/50dc6c495c0c9188/f2f7dc8efc522ab2")
        );
    }

    #[test]
    fn ids_without_arns_use_the_operators_region_or_none() {
        assert_eq!(
            url("route53:record", "Z123/www.example.com/A").as_deref(),
            Some("https://console.aws.amazon.com/route53/v2/hostedzones#ListRecordSets/Z123")
        );
        assert_eq!(
            url("application-autoscaling:scalable-target", "service/prod/web").as_deref(),
            Some("https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/health?region=eu-west-1")
        );
        assert_eq!(
            url("acm:certificate", "arn:aws:acm:eu-west-1:123456789012:certificate/abc-123").as_deref(),
            Some("https://eu-west-1.console.aws.amazon.com/acm/home?region=eu-west-1#/certificates/abc-123")
        );
        assert_eq!(
            url("ecr:repository", "arn:aws:ecr:eu-west-1:123456789012:repository/team/web").as_deref(),
            Some("https://eu-west-1.console.aws.amazon.com/ecr/repositories/private/123456789012/team/web?region=eu-west-1")
        );
    }

    #[test]
    fn malformed_ids_other_partitions_and_unknown_kinds_get_no_link() {
        assert_eq!(url("ecs:service", "not-an-arn"), None);
        assert_eq!(
            url(
                "ecs:service",
                "arn:aws-cn:ecs:cn-north-1:123456789012:service/prod/web"
            ),
            None
        );
        assert_eq!(
            url(
                "ecs:cluster",
                "arn:aws:ecs:evil.example.com/x:1:cluster/prod"
            ),
            None
        );
        assert_eq!(url("s3:bucket", "arn:aws:s3:::b"), None);
        assert_eq!(
            console_url(
                "application-autoscaling:scalable-target",
                "service/prod/web",
                ""
            ),
            None
        );
    }
}

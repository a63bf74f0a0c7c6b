//! The target group's pure plan: from (desired, observed) to the steps to take, each described
//! as a [`Change`], and the fields that cannot change in place (reported, never recreated).

use crate::resources::run::tag_step;
use crate::resources::run::Change;
use crate::resources::shared::elb_tags::Tags;
use crate::resources::ResourceError;
use crate::spec::types::{Ingress, TargetHealthCheck};

pub const ATTR_DEREGISTRATION_DELAY: &str = "deregistration_delay.timeout_seconds";
/// AWS's deregistration delay when the attribute was never set.
pub const DEFAULT_DEREGISTRATION_DELAY: u32 = 300;

/// The health check as compared (AWS spelling normalised).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    pub enabled: bool,
    pub protocol: String,
    pub port: String,
    pub path: String,
    pub interval: u32,
    pub timeout: u32,
    pub healthy: u32,
    pub unhealthy: u32,
    pub matcher: String,
}

impl Health {
    pub fn from_spec(h: &TargetHealthCheck) -> Self {
        Health {
            enabled: true,
            protocol: "HTTP".into(),
            port: "traffic-port".into(),
            path: h.path.clone(),
            interval: h.interval_seconds,
            timeout: h.timeout_seconds,
            healthy: h.healthy_threshold,
            unhealthy: h.unhealthy_threshold,
            matcher: normalise_matcher(&h.matcher),
        }
    }
}

/// `200, 204` and `200,204` are the same matcher.
pub fn normalise_matcher(m: &str) -> String {
    m.chars().filter(|c| !c.is_whitespace()).collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub port: i32,
    /// The load balancer's VPC (empty when only planning a new load balancer).
    pub vpc_id: String,
    pub health: Health,
    pub deregistration_delay: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    pub port: i32,
    pub protocol: String,
    pub vpc_id: String,
    pub target_type: String,
    pub health: Health,
    pub deregistration_delay: u32,
    pub tags: Tags,
}

pub fn desired(service: &str, ingress: &Ingress, port: u32, vpc_id: &str) -> Desired {
    Desired {
        name: crate::resources::shared::names::target_group_name(service),
        port: port as i32,
        vpc_id: vpc_id.to_string(),
        health: Health::from_spec(&ingress.health_check),
        deregistration_delay: ingress.deregistration_delay_seconds,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    Tag(Tags),
    /// ModifyTargetGroup with the whole desired health check.
    Health,
    Deregistration,
}

fn health_diff(o: &Health, d: &Health) -> Vec<String> {
    let mut out = Vec::new();
    let mut f = |name: &str, a: String, b: String| {
        if a != b {
            out.push(format!("health check {name}: {a} -> {b}"));
        }
    };
    f("enabled", o.enabled.to_string(), d.enabled.to_string());
    f("protocol", o.protocol.clone(), d.protocol.clone());
    f("port", o.port.clone(), d.port.clone());
    f("path", o.path.clone(), d.path.clone());
    f(
        "interval",
        format!("{}s", o.interval),
        format!("{}s", d.interval),
    );
    f(
        "timeout",
        format!("{}s", o.timeout),
        format!("{}s", d.timeout),
    );
    f(
        "healthy threshold",
        o.healthy.to_string(),
        d.healthy.to_string(),
    );
    f(
        "unhealthy threshold",
        o.unhealthy.to_string(),
        d.unhealthy.to_string(),
    );
    f("matcher", o.matcher.clone(), d.matcher.clone());
    out
}

/// The steps from `o` to `d` (pure), and the fields that cannot change in place.
pub fn plan(
    d: &Desired,
    o: Option<&Observed>,
    tags_missing: Tags,
) -> (Vec<(Step, Change)>, Vec<ResourceError>) {
    let resource = format!("target group {}", d.name);
    let Some(o) = o else {
        let mut steps = vec![(
            Step::Create,
            Change::create(
                &resource,
                format!("ip, HTTP :{}, health check {}", d.port, d.health.path),
            ),
        )];
        if d.deregistration_delay != DEFAULT_DEREGISTRATION_DELAY {
            steps.push((
                Step::Deregistration,
                Change::field(
                    &resource,
                    "deregistration delay",
                    format!("{DEFAULT_DEREGISTRATION_DELAY}s"),
                    format!("{}s", d.deregistration_delay),
                ),
            ));
        }
        return (steps, Vec::new());
    };
    let mut immutable = Vec::new();
    let mut fixed = |field: &str, observed: String, desired: String| {
        if observed != desired && !desired.is_empty() {
            immutable.push(ResourceError::Immutable {
                resource: resource.clone(),
                field: field.into(),
                observed,
                desired,
            });
        }
    };
    fixed("port", o.port.to_string(), d.port.to_string());
    fixed("protocol", o.protocol.clone(), "HTTP".into());
    fixed("vpc", o.vpc_id.clone(), d.vpc_id.clone());
    fixed("target type", o.target_type.clone(), "ip".into());
    let mut steps = Vec::new();
    steps.extend(tag_step(&resource, &tags_missing, Step::Tag));
    let diff = health_diff(&o.health, &d.health);
    if !diff.is_empty() {
        steps.push((Step::Health, Change::update(&resource, diff.join(", "))));
    }
    if o.deregistration_delay != d.deregistration_delay {
        steps.push((
            Step::Deregistration,
            Change::field(
                &resource,
                "deregistration delay",
                format!("{}s", o.deregistration_delay),
                format!("{}s", d.deregistration_delay),
            ),
        ));
    }
    (steps, immutable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Desired {
        Desired {
            name: "web".into(),
            port: 3000,
            vpc_id: "vpc-1".into(),
            health: Health::from_spec(&TargetHealthCheck {
                path: "/health".into(),
                interval_seconds: 30,
                timeout_seconds: 5,
                healthy_threshold: 2,
                unhealthy_threshold: 2,
                matcher: "200".into(),
            }),
            deregistration_delay: 30,
        }
    }

    fn o() -> Observed {
        Observed {
            arn: "tg".into(),
            port: 3000,
            protocol: "HTTP".into(),
            vpc_id: "vpc-1".into(),
            target_type: "ip".into(),
            health: d().health,
            deregistration_delay: 30,
            tags: Tags::new(),
        }
    }

    #[test]
    fn a_matching_target_group_needs_nothing() {
        let (steps, imm) = plan(&d(), Some(&o()), Tags::new());
        assert!(steps.is_empty() && imm.is_empty());
    }

    #[test]
    fn a_changed_health_check_path_is_one_modify() {
        let mut obs = o();
        obs.health.path = "/".into();
        let (steps, _) = plan(&d(), Some(&obs), Tags::new());
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].1.to_string(),
            "~ target group web health check path: / -> /health"
        );
    }

    #[test]
    fn a_changed_port_is_reported_not_recreated() {
        let mut obs = o();
        obs.port = 8080;
        let (steps, imm) = plan(&d(), Some(&obs), Tags::new());
        assert!(steps.is_empty());
        assert_eq!(imm.len(), 1);
    }

    #[test]
    fn matchers_compare_without_spaces() {
        assert_eq!(normalise_matcher("200, 204"), "200,204");
    }
}

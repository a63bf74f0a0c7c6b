//! Checks beyond the schema: what AWS will refuse, and references between documents.
//!
//! Pure functions. Each returns every problem it finds as `(JSON Pointer, message)`; the loader
//! turns them into located [`Diagnostic`](super::Diagnostic)s.

use std::collections::{BTreeMap, BTreeSet};

use super::types::*;
use super::{Document, Kind, Spec};

/// A problem at a JSON Pointer inside one document, with the other fields its check read.
///
/// Invariant: `reads` names every field outside `pointer` (and what lies under it) whose value
/// the check looked at, so that a problem found on a document whose broken fields were replaced
/// by placeholders ([`super::repair`]) can be dropped when it may be about a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
    pub reads: Vec<String>,
}

impl Problem {
    pub fn new(pointer: String, message: String) -> Self {
        Problem {
            pointer,
            message,
            reads: Vec::new(),
        }
    }

    /// The same problem, noting more fields (JSON Pointers) its check read.
    pub fn reading<S: AsRef<str>>(mut self, pointers: &[S]) -> Self {
        self.reads
            .extend(pointers.iter().map(|p| p.as_ref().to_string()));
        self
    }

    /// Whether the check read any of the `repaired` fields (or a field inside or around one):
    /// then the problem may describe a placeholder, not what was written.
    pub fn read_any_of(&self, repaired: &[String]) -> bool {
        std::iter::once(&self.pointer)
            .chain(&self.reads)
            .any(|read| repaired.iter().any(|r| super::repair::on_one_line(read, r)))
    }
}

const FARGATE_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// A DNS label: 1-63 lowercase letters, digits and `-`, starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A host name: dot-separated labels (letters, digits, `-`; case-insensitive), at most 253
/// characters; `*.` is allowed as the first label when `wildcard` is true. A trailing dot is not.
pub fn is_dns_name(s: &str, wildcard: bool) -> bool {
    let rest = match s.strip_prefix("*.") {
        Some(r) if wildcard => r,
        Some(_) => return false,
        None => s,
    };
    if rest.is_empty() || s.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = rest.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// Task-level cpu/memory pairs that Fargate accepts.
pub fn fargate_accepts(cpu: u32, memory: u32) -> bool {
    let (lo, hi, step) = match cpu {
        256 => return [512, 1024, 2048].contains(&memory),
        512 => (1024, 4096, 1024),
        1024 => (2048, 8192, 1024),
        2048 => (4096, 16384, 1024),
        4096 => (8192, 30720, 1024),
        8192 => (16384, 61440, 4096),
        16384 => (32768, 122880, 8192),
        _ => return false,
    };
    memory >= lo && memory <= hi && (memory - lo) % step == 0
}

fn check_name(out: &mut Vec<Problem>, metadata: &Metadata) {
    if !is_dns_label(&metadata.name) {
        out.push(Problem::new(
            "/metadata/name".into(),
            format!(
                "`{}` is not a DNS label (1-63 lowercase letters, digits and `-`, starting and ending with a letter or digit)",
                metadata.name
            ),
        ));
    }
    if let Some(v) = metadata.annotations.get(crate::ADOPT_ANNOTATION) {
        if v != "true" && v != "false" {
            out.push(Problem::new(
                format!(
                    "/metadata/annotations/{}",
                    super::yaml::escape_pointer(crate::ADOPT_ANNOTATION)
                ),
                format!("must be \"true\" or \"false\", not `{v}`"),
            ));
        }
    }
}

/// The object form of `autoScalingGroup` (`p`: its pointer): the names, version and subnets AWS
/// accepts, and `minSize <= maxSize`.
fn check_owned_group(out: &mut Vec<Problem>, p: &str, g: &OwnedAutoScalingGroup) {
    if g.name.is_empty() || g.name.len() > 255 || g.name.contains(':') {
        out.push(Problem::new(
            format!("{p}/name"),
            format!(
                "`{}` is not an Auto Scaling group name (1-255 characters, no `:`)",
                g.name
            ),
        ));
    }
    let t = &g.launch_template.name;
    let template_chars = |c: char| c.is_ascii_alphanumeric() || "().-/_".contains(c);
    if !(3..=128).contains(&t.len()) || !t.chars().all(template_chars) {
        out.push(Problem::new(
            format!("{p}/launchTemplate/name"),
            format!("`{t}` is not a launch template name (3-128 letters, digits and `().-/_`)"),
        ));
    }
    let v = &g.launch_template.version;
    let numbered = !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit());
    if v != "$Default" && v != "$Latest" && !numbered {
        out.push(Problem::new(
            format!("{p}/launchTemplate/version"),
            format!("`{v}` is not a launch template version: `$Default`, `$Latest` or a number"),
        ));
    }
    let mut seen = BTreeSet::new();
    for (j, s) in g.subnets.iter().enumerate() {
        let id = s.strip_prefix("subnet-").unwrap_or_default();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            out.push(Problem::new(
                format!("{p}/subnets/{j}"),
                format!("`{s}` is not a subnet id (subnet-...)"),
            ));
        } else if !seen.insert(s.as_str()) {
            out.push(Problem::new(
                format!("{p}/subnets/{j}"),
                format!("lists the subnet `{s}` twice"),
            ));
        }
    }
    if g.min_size > g.max_size {
        out.push(
            Problem::new(
                format!("{p}/minSize"),
                format!("must not exceed maxSize ({} > {})", g.min_size, g.max_size),
            )
            .reading(&[format!("{p}/maxSize")]),
        );
    }
}

fn check_strategy(out: &mut Vec<Problem>, base: &str, strategy: &[CapacityProviderStrategyItem]) {
    if strategy.iter().filter(|i| i.base > 0).count() > 1 {
        out.push(Problem::new(
            base.into(),
            "only one capacity provider in a strategy may have a base".into(),
        ));
    }
    let fargate = strategy
        .iter()
        .any(|i| FARGATE_PROVIDERS.contains(&i.capacity_provider.as_str()));
    let other = strategy
        .iter()
        .any(|i| !FARGATE_PROVIDERS.contains(&i.capacity_provider.as_str()));
    if fargate && other {
        out.push(Problem::new(
            base.into(),
            "a strategy cannot mix FARGATE/FARGATE_SPOT with Auto Scaling group providers".into(),
        ));
    }
    if !strategy.is_empty() && strategy.iter().all(|i| i.weight == 0) {
        out.push(Problem::new(
            base.into(),
            "at least one capacity provider in a strategy needs a weight above 0".into(),
        ));
    }
    let mut seen = BTreeMap::new();
    for (i, item) in strategy.iter().enumerate() {
        if let Some(first) = seen.get(item.capacity_provider.as_str()) {
            out.push(
                Problem::new(
                    format!("{base}/{i}/capacityProvider"),
                    format!("`{}` appears twice in the strategy", item.capacity_provider),
                )
                .reading(&[format!("{base}/{first}/capacityProvider")]),
            );
        } else {
            seen.insert(item.capacity_provider.as_str(), i);
        }
    }
}

fn is_alb_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !s.starts_with("internal-")
}

fn is_capacity_provider_name(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        && !lower.starts_with("aws")
        && !lower.starts_with("ecs")
        && !lower.starts_with("fargate")
}

/// An AWS region name: `<partition prefix>-<direction>-<digit>` such as `eu-west-1`,
/// `us-gov-west-1`, `ap-southeast-5` (lowercase letters, dashes, ending in a number).
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 12 && p.bytes().all(|c| c.is_ascii_lowercase()))
        && parts[0].len() == 2
        && parts
            .last()
            .is_some_and(|n| !n.is_empty() && n.len() <= 2 && n.bytes().all(|c| c.is_ascii_digit()))
}

/// The account id of an IAM role ARN (`arn:aws:iam::123456789012:role/name`, any partition),
/// or `None` when `arn` is not a role ARN.
pub fn role_arn_account(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    let name = resource.strip_prefix("role/")?;
    (partition.starts_with("aws")
        && service == "iam"
        && region.is_empty()
        && is_account_id(account)
        && !name.is_empty())
    .then_some(account)
}

/// Twelve digits.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit())
}

fn check_where(out: &mut Vec<Problem>, s: &ClusterSpecFields) {
    if let Some(region) = &s.region {
        if !is_region_name(region) {
            out.push(Problem::new(
                "/spec/region".into(),
                format!("`{region}` is not an AWS region name (examples: eu-west-1, us-east-1)"),
            ));
        }
    }
    if let Some(a) = &s.account {
        if !is_account_id(&a.id) {
            out.push(Problem::new(
                "/spec/account/id".into(),
                format!("`{}` is not an AWS account id (12 digits, quoted)", a.id),
            ));
        }
        match role_arn_account(&a.role_arn) {
            None => out.push(Problem::new(
                "/spec/account/roleArn".into(),
                format!(
                    "`{}` is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)",
                    a.role_arn
                ),
            )),
            Some(acct) if is_account_id(&a.id) && acct != a.id => out.push(
                Problem::new(
                    "/spec/account/roleArn".into(),
                    format!(
                        "the role is in account {acct}, but account.id is {}: the role must be in the account it reaches",
                        a.id
                    ),
                )
                .reading(&["/spec/account/id"]),
            ),
            Some(_) => {}
        }
        if let Some(x) = &a.external_id {
            if x.len() < 2
                || x.len() > 1224
                || !x
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"+=,.@:/-_".contains(&c))
            {
                out.push(Problem::new(
                    "/spec/account/externalId".into(),
                    "must be 2-1224 letters, digits and `+=,.@:/-_` (STS's external id)".into(),
                ));
            }
        }
    }
}

/// Problems of one ClusterSpec on its own.
pub fn cluster(spec: &ClusterSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    check_name(&mut out, &spec.metadata);
    let s = &spec.spec;
    check_where(&mut out, s);
    if let Some(name) = &s.cluster_name {
        if name.is_empty()
            || name.len() > 255
            || !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            out.push(Problem::new(
                "/spec/clusterName".into(),
                "must be 1-255 letters, digits, `-` and `_`".into(),
            ));
        }
    }
    let mut names = BTreeMap::new();
    for (i, cp) in s.capacity_providers.iter().enumerate() {
        let p = format!("/spec/capacityProviders/{i}");
        if !is_capacity_provider_name(&cp.name) {
            out.push(Problem::new(
                format!("{p}/name"),
                "must be 1-255 letters, digits, `-` and `_`, and not start with `aws`, `ecs` or `fargate`".into(),
            ));
        }
        if let Some(&first) = names.get(cp.name.as_str()) {
            out.push(
                Problem::new(
                    format!("{p}/name"),
                    format!("capacity provider `{}` is declared twice", cp.name),
                )
                .reading(&[format!("/spec/capacityProviders/{first}/name")]),
            );
        } else {
            names.insert(cp.name.as_str(), i);
        }
        match &cp.auto_scaling_group {
            AutoScalingGroupRef::Existing(g) if g.is_empty() => out.push(Problem::new(
                format!("{p}/autoScalingGroup"),
                "must name an Auto Scaling group or give its ARN".into(),
            )),
            AutoScalingGroupRef::Existing(_) => {}
            AutoScalingGroupRef::Owned(g) => {
                check_owned_group(&mut out, &format!("{p}/autoScalingGroup"), g);
                if cp.managed_termination_protection && !g.protect_from_scale_in {
                    out.push(
                        Problem::new(
                            format!("{p}/autoScalingGroup/protectFromScaleIn"),
                            "must be true when managedTerminationProtection is on: ECS can only protect instances that are protected from scale-in".into(),
                        )
                        .reading(&[format!("{p}/managedTerminationProtection")]),
                    );
                }
            }
        }
        if let Some(ms) = &cp.managed_scaling {
            if ms.minimum_scaling_step_size > ms.maximum_scaling_step_size {
                out.push(
                    Problem::new(
                        format!("{p}/managedScaling/minimumScalingStepSize"),
                        format!(
                            "must not exceed maximumScalingStepSize ({} > {})",
                            ms.minimum_scaling_step_size, ms.maximum_scaling_step_size
                        ),
                    )
                    .reading(&[format!("{p}/managedScaling/maximumScalingStepSize")]),
                );
            }
        } else if cp.managed_termination_protection {
            out.push(
                Problem::new(
                    format!("{p}/managedTerminationProtection"),
                    "needs managedScaling: ECS only protects instances of a managed-scaling provider"
                        .into(),
                )
                .reading(&[format!("{p}/managedScaling")]),
            );
        }
    }
    check_strategy(
        &mut out,
        "/spec/defaultCapacityProviderStrategy",
        &s.default_capacity_provider_strategy,
    );
    for (i, item) in s.default_capacity_provider_strategy.iter().enumerate() {
        let cp = item.capacity_provider.as_str();
        if !FARGATE_PROVIDERS.contains(&cp) && !names.contains_key(cp) {
            let declared: BTreeSet<&str> = names.keys().copied().collect();
            out.push(
                Problem::new(
                    format!("/spec/defaultCapacityProviderStrategy/{i}/capacityProvider"),
                    format!(
                        "`{cp}` is not a capacity provider of this cluster (declared: {})",
                        list(&declared)
                    ),
                )
                .reading(&["/spec/capacityProviders"]),
            );
        }
    }
    let mut lbs = BTreeMap::new();
    for (i, lb) in s.load_balancers.iter().enumerate() {
        let p = format!("/spec/loadBalancers/{i}");
        if !is_alb_name(&lb.name) {
            out.push(Problem::new(
                format!("{p}/name"),
                "must be 1-32 letters, digits and `-`, not starting or ending with `-` nor starting with `internal-`".into(),
            ));
        }
        if let Some(&first) = lbs.get(lb.name.as_str()) {
            out.push(
                Problem::new(
                    format!("{p}/name"),
                    format!("load balancer `{}` is declared twice", lb.name),
                )
                .reading(&[format!("/spec/loadBalancers/{first}/name")]),
            );
        } else {
            lbs.insert(lb.name.as_str(), i);
        }
        let distinct: BTreeSet<&String> = lb.subnets.iter().collect();
        if distinct.len() != lb.subnets.len() {
            out.push(Problem::new(
                format!("{p}/subnets"),
                "lists a subnet twice".into(),
            ));
        }
        if lb.https_redirect && lb.certificate.domains.is_empty() {
            out.push(
                Problem::new(
                    format!("{p}/certificate/domains"),
                    "httpsRedirect needs a certificate domain".into(),
                )
                .reading(&[format!("{p}/httpsRedirect")]),
            );
        }
        for (j, d) in lb.certificate.domains.iter().enumerate() {
            if !is_dns_name(d, true) {
                out.push(Problem::new(
                    format!("{p}/certificate/domains/{j}"),
                    format!("`{d}` is not a valid DNS name"),
                ));
            }
        }
        if lb.certificate.hosted_zone.is_empty() {
            out.push(Problem::new(
                format!("{p}/certificate/hostedZone"),
                "must name a Route53 hosted zone".into(),
            ));
        }
        if let Some(a) = &lb.alarms {
            let base = format!("{p}/alarms");
            check_notify(&mut out, &base, a.notify.as_ref());
            for (field, rule) in [
                ("elb5xxCount", &a.elb5xx_count),
                ("rejectedConnections", &a.rejected_connections),
            ] {
                check_threshold(&mut out, &format!("{base}/{field}"), rule.as_ref(), COUNT);
            }
        }
    }
    out
}

/// The range an alarm's threshold must lie in: (lowest, highest, what it measures).
type ThresholdRange = (f64, f64, &'static str);
const PERCENT: ThresholdRange = (0.0, 100.0, "a percentage");
const SECONDS: ThresholdRange = (0.0, 4000.0, "seconds (an ALB waits at most 4000)");
const COUNT: ThresholdRange = (0.0, 1e9, "a count per minute");

fn check_threshold(out: &mut Vec<Problem>, p: &str, rule: Option<&AlarmRule>, r: ThresholdRange) {
    let Some(rule) = rule else { return };
    let (lo, hi, what) = r;
    if !rule.threshold.is_finite() || rule.threshold < lo || rule.threshold > hi {
        out.push(Problem::new(
            format!("{p}/threshold"),
            format!(
                "{} is out of range: {what}, from {lo} to {hi}",
                rule.threshold
            ),
        ));
    }
}

/// An email address as SNS takes it: one `@`, a non-empty local part without spaces, and a
/// domain that is a DNS name.
pub fn is_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && local.len() <= 64
                && !local.contains(char::is_whitespace)
                && !domain.contains('@')
                && is_dns_name(domain, false)
        }
        None => false,
    }
}

fn check_notify(out: &mut Vec<Problem>, base: &str, notify: Option<&Notify>) {
    let Some(n) = notify else { return };
    let p = format!("{base}/notify");
    if let Some(arn) = &n.topic_arn {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" || parts[5].is_empty() {
            out.push(Problem::new(
                format!("{p}/topicArn"),
                format!("`{arn}` is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
            ));
        }
        if !n.emails.is_empty() {
            out.push(
                Problem::new(
                    format!("{p}/emails"),
                    "give either emails (an owned topic) or topicArn (an existing topic), not both"
                        .into(),
                )
                .reading(&[format!("{p}/topicArn")]),
            );
        }
    }
    let mut seen = BTreeMap::new();
    for (i, e) in n.emails.iter().enumerate() {
        if !is_email(e) {
            out.push(Problem::new(
                format!("{p}/emails/{i}"),
                format!("`{e}` is not an email address"),
            ));
        }
        if let Some(first) = seen.get(&e.to_ascii_lowercase()) {
            out.push(
                Problem::new(format!("{p}/emails/{i}"), format!("`{e}` is listed twice"))
                    .reading(&[format!("{p}/emails/{first}")]),
            );
        } else {
            seen.insert(e.to_ascii_lowercase(), i);
        }
    }
}

/// A CloudWatch Logs group name: 1-512 letters, digits, `_`, `-`, `/`, `.` and `#`.
pub fn is_log_group_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 512
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-/.#".contains(&c))
}

fn check_logs_and_alarms(out: &mut Vec<Problem>, s: &ServiceSpecFields) {
    if let Some(group) = &s.container.log_group {
        if !is_log_group_name(group) {
            out.push(Problem::new(
                "/spec/container/logGroup".into(),
                format!("`{group}` is not a log group name (1-512 letters, digits, `_`, `-`, `/`, `.`, `#`)"),
            ));
        }
    }
    if let Some(logs) = &s.logs {
        if s.container.log_group.is_none() {
            out.push(
                Problem::new(
                    "/spec/logs".into(),
                    "needs container.logGroup (the log group it describes)".into(),
                )
                .reading(&["/spec/container/logGroup"]),
            );
        }
        if let Some(days) = logs.retention_days {
            if !LOG_RETENTION_DAYS.contains(&days) {
                out.push(Problem::new(
                    "/spec/logs/retentionDays".into(),
                    format!(
                        "{days} is not a retention CloudWatch Logs accepts (one of {})",
                        LOG_RETENTION_DAYS
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    let Some(a) = &s.alarms else { return };
    check_notify(out, "/spec/alarms", a.notify.as_ref());
    for (field, rule, range) in [
        ("http5xxPercent", &a.http5xx_percent, PERCENT),
        ("latencyP99Seconds", &a.latency_p99_seconds, SECONDS),
        ("cpuPercent", &a.cpu_percent, PERCENT),
        ("memoryPercent", &a.memory_percent, PERCENT),
        ("logErrors", &a.log_errors, COUNT),
    ] {
        check_threshold(out, &format!("/spec/alarms/{field}"), rule.as_ref(), range);
    }
    for (field, rule) in [
        ("http5xxPercent", &a.http5xx_percent),
        ("latencyP99Seconds", &a.latency_p99_seconds),
    ] {
        if rule.is_some() && s.ingress.is_none() {
            out.push(
                Problem::new(
                    format!("/spec/alarms/{field}"),
                    "needs ingress (it measures the service's target group)".into(),
                )
                .reading(&["/spec/ingress"]),
            );
        }
    }
    let pattern = s.logs.as_ref().and_then(|l| l.error_pattern.as_ref());
    if a.log_errors.is_some() && pattern.is_none() {
        out.push(
            Problem::new(
                "/spec/alarms/logErrors".into(),
                "needs logs.errorPattern (the metric filter whose matches it counts)".into(),
            )
            .reading(&["/spec/logs"]),
        );
    }
}

/// Problems of one ServiceSpec on its own (without knowing its cluster).
pub fn service(spec: &ServiceSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    check_name(&mut out, &spec.metadata);
    let s = &spec.spec;
    if !is_dns_label(&s.cluster) {
        out.push(Problem::new(
            "/spec/cluster".into(),
            format!("`{}` is not a ClusterSpec name (a DNS label)", s.cluster),
        ));
    }
    if let Some(repo) = &s.repository {
        let ok = repo.name.len() >= 2
            && repo.name.len() <= 256
            && repo
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-/".contains(&c))
            && repo.name.as_bytes()[0].is_ascii_alphanumeric();
        if !ok {
            out.push(Problem::new(
                "/spec/repository/name".into(),
                "must be 2-256 lowercase letters, digits, `.`, `_`, `-` and `/`, starting with a letter or digit".into(),
            ));
        }
        if let Some(lc) = &repo.lifecycle {
            for (i, k) in lc.keep_tagged.iter().enumerate() {
                for (j, prefix) in k.tag_prefixes.iter().enumerate() {
                    if prefix.is_empty() {
                        out.push(Problem::new(
                            format!("/spec/repository/lifecycle/keepTagged/{i}/tagPrefixes/{j}"),
                            "must not be empty".into(),
                        ));
                    }
                }
            }
        }
    }
    let c = &s.container;
    if c.name.is_empty()
        || c.name.len() > 255
        || !c
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        out.push(Problem::new(
            "/spec/container/name".into(),
            "must be 1-255 letters, digits, `-` and `_`".into(),
        ));
    }
    check_image(&mut out, s);
    check_logs_and_alarms(&mut out, s);
    if c.memory < 6 {
        out.push(Problem::new(
            "/spec/container/memory".into(),
            "must be at least 6 MiB".into(),
        ));
    }
    for (field, map) in [("environment", &c.environment), ("secrets", &c.secrets)] {
        for key in map.keys() {
            if key.is_empty() || key.contains('=') {
                out.push(Problem::new(
                    format!(
                        "/spec/container/{field}/{}",
                        super::yaml::escape_pointer(key)
                    ),
                    format!("`{key}` is not a valid variable name"),
                ));
            }
        }
    }
    for dup in c.environment.keys().filter(|k| c.secrets.contains_key(*k)) {
        out.push(
            Problem::new(
                format!(
                    "/spec/container/secrets/{}",
                    super::yaml::escape_pointer(dup)
                ),
                format!("`{dup}` is set both in environment and in secrets"),
            )
            .reading(&[format!(
                "/spec/container/environment/{}",
                super::yaml::escape_pointer(dup)
            )]),
        );
    }
    for (k, v) in &c.secrets {
        if v.is_empty() {
            out.push(Problem::new(
                format!("/spec/container/secrets/{}", super::yaml::escape_pointer(k)),
                "must be a parameter or secret ARN".into(),
            ));
        }
    }
    if let Some(hc) = &c.health_check {
        if hc.timeout_seconds >= hc.interval_seconds {
            out.push(
                Problem::new(
                    "/spec/container/healthCheck/timeoutSeconds".into(),
                    format!(
                        "must be less than intervalSeconds ({} >= {})",
                        hc.timeout_seconds, hc.interval_seconds
                    ),
                )
                .reading(&["/spec/container/healthCheck/intervalSeconds"]),
            );
        }
    }
    for (role, p) in [
        (&s.execution_role_arn, "executionRoleArn"),
        (&s.task_role_arn, "taskRoleArn"),
    ] {
        if let Some(arn) = role {
            if !arn.starts_with("arn:") || !arn.contains(":iam::") || !arn.contains(":role/") {
                out.push(Problem::new(
                    format!("/spec/{p}"),
                    format!("`{arn}` is not an IAM role ARN"),
                ));
            }
        }
    }
    if !c.secrets.is_empty() && s.execution_role_arn.is_none() {
        out.push(
            Problem::new(
                "/spec/executionRoleArn".into(),
                "is required when the container has secrets".into(),
            )
            .reading(&["/spec/container/secrets"]),
        );
    }
    check_strategy(
        &mut out,
        "/spec/capacityProviderStrategy",
        &s.capacity_provider_strategy,
    );
    if uses_fargate(&s.capacity_provider_strategy) && !fargate_accepts(c.cpu, c.memory) {
        out.push(
            Problem::new(
                "/spec/container/memory".into(),
                format!(
                    "Fargate does not accept cpu {} with memory {} (see the Fargate task size table)",
                    c.cpu, c.memory
                ),
            )
            .reading(&["/spec/capacityProviderStrategy", "/spec/container/cpu"]),
        );
    }
    for (i, st) in s.placement.strategy.iter().enumerate() {
        let p = format!("/spec/placement/strategy/{i}/field");
        let read = [format!("/spec/placement/strategy/{i}/type")];
        match (st.strategy_type, st.field.as_deref()) {
            (PlacementStrategyType::Random, Some(_)) => {
                out.push(Problem::new(p, "random placement takes no field".into()).reading(&read))
            }
            (PlacementStrategyType::Binpack, f) if !matches!(f, Some("cpu" | "memory")) => out
                .push(
                    Problem::new(p, "binpack needs field `cpu` or `memory`".into()).reading(&read),
                ),
            (PlacementStrategyType::Spread, None) => out.push(
                Problem::new(
                    p,
                    "spread needs a field (`instanceId` or `attribute:...`)".into(),
                )
                .reading(&read),
            ),
            _ => {}
        }
    }
    if (!s.placement.strategy.is_empty() || !s.placement.constraints.is_empty())
        && uses_fargate(&s.capacity_provider_strategy)
    {
        out.push(
            Problem::new(
                "/spec/placement".into(),
                "Fargate tasks take no placement strategy or constraints".into(),
            )
            .reading(&["/spec/capacityProviderStrategy"]),
        );
    }
    for (i, pc) in s.placement.constraints.iter().enumerate() {
        if pc.constraint_type == PlacementConstraintType::MemberOf
            && pc.expression.as_deref().unwrap_or("").is_empty()
        {
            out.push(
                Problem::new(
                    format!("/spec/placement/constraints/{i}/expression"),
                    "memberOf needs an expression".into(),
                )
                .reading(&[format!("/spec/placement/constraints/{i}/type")]),
            );
        }
    }
    let d = &s.deployment;
    if d.minimum_healthy_percent > d.maximum_percent {
        out.push(
            Problem::new(
                "/spec/deployment/minimumHealthyPercent".into(),
                format!(
                    "must not exceed maximumPercent ({} > {})",
                    d.minimum_healthy_percent, d.maximum_percent
                ),
            )
            .reading(&["/spec/deployment/maximumPercent"]),
        );
    }
    if let Some(cb) = &d.circuit_breaker {
        if cb.rollback && !cb.enable {
            out.push(
                Problem::new(
                    "/spec/deployment/circuitBreaker/rollback".into(),
                    "needs the circuit breaker enabled".into(),
                )
                .reading(&["/spec/deployment/circuitBreaker/enable"]),
            );
        }
    }
    check_deployment(&mut out, s);
    if let Some(a) = &s.autoscaling {
        if a.min_capacity > a.max_capacity {
            out.push(
                Problem::new(
                    "/spec/autoscaling/minCapacity".into(),
                    format!(
                        "must not exceed maxCapacity ({} > {})",
                        a.min_capacity, a.max_capacity
                    ),
                )
                .reading(&["/spec/autoscaling/maxCapacity"]),
            );
        }
        if a.target_cpu_utilization.is_none()
            && a.target_memory_utilization.is_none()
            && a.target_requests_per_target.is_none()
        {
            out.push(Problem::new(
                "/spec/autoscaling".into(),
                "needs at least one of targetCpuUtilization, targetMemoryUtilization, targetRequestsPerTarget".into(),
            ));
        }
        if a.target_requests_per_target.is_some() && s.ingress.is_none() {
            out.push(
                Problem::new(
                    "/spec/autoscaling/targetRequestsPerTarget".into(),
                    "needs ingress (a target group to count requests on)".into(),
                )
                .reading(&["/spec/ingress"]),
            );
        }
    }
    if let Some(ing) = &s.ingress {
        if c.port.is_none() {
            out.push(
                Problem::new(
                    "/spec/container/port".into(),
                    "is required when the service has ingress".into(),
                )
                .reading(&["/spec/ingress"]),
            );
        }
        let mut seen = BTreeMap::new();
        for (i, h) in ing.hosts.iter().enumerate() {
            if !is_dns_name(h, true) {
                out.push(Problem::new(
                    format!("/spec/ingress/hosts/{i}"),
                    format!("`{h}` is not a valid host name"),
                ));
            }
            if let Some(first) = seen.get(&h.to_ascii_lowercase()) {
                out.push(
                    Problem::new(
                        format!("/spec/ingress/hosts/{i}"),
                        format!("`{h}` is listed twice"),
                    )
                    .reading(&[format!("/spec/ingress/hosts/{first}")]),
                );
            } else {
                seen.insert(h.to_ascii_lowercase(), i);
            }
        }
        for (i, p) in ing.paths.iter().enumerate() {
            if !p.starts_with('/') || p.len() > 128 {
                out.push(Problem::new(
                    format!("/spec/ingress/paths/{i}"),
                    format!("`{p}` must start with `/` and be at most 128 characters"),
                ));
            }
        }
        if ing.hosts.len() + ing.paths.len() > 5 {
            out.push(Problem::new(
                "/spec/ingress".into(),
                format!(
                    "a listener rule takes at most 5 condition values: {} hosts + {} paths",
                    ing.hosts.len(),
                    ing.paths.len()
                ),
            ));
        }
        let hc = &ing.health_check;
        if !hc.path.starts_with('/') || hc.path.len() > 1024 {
            out.push(Problem::new(
                "/spec/ingress/healthCheck/path".into(),
                "must start with `/` and be at most 1024 characters".into(),
            ));
        }
        if hc.timeout_seconds >= hc.interval_seconds {
            out.push(
                Problem::new(
                    "/spec/ingress/healthCheck/timeoutSeconds".into(),
                    format!(
                        "must be less than intervalSeconds ({} >= {})",
                        hc.timeout_seconds, hc.interval_seconds
                    ),
                )
                .reading(&["/spec/ingress/healthCheck/intervalSeconds"]),
            );
        }
        if !is_matcher(&hc.matcher) {
            out.push(Problem::new(
                "/spec/ingress/healthCheck/matcher".into(),
                format!(
                    "`{}` is not an HTTP code list (`200`, `200,204` or `200-299`, codes 200-499)",
                    hc.matcher
                ),
            ));
        }
        if let Some(dns) = &ing.dns {
            if dns.hosted_zone.is_empty() {
                out.push(Problem::new(
                    "/spec/ingress/dns/hostedZone".into(),
                    "must name a Route53 hosted zone".into(),
                ));
            }
        }
    }
    out
}

/// `p` holds a percent ECS takes: a multiple of 0.1 from `lo` to 100.
fn check_percent(out: &mut Vec<Problem>, p: &str, v: f64, lo: f64) {
    let tenths = v * 10.0;
    if !v.is_finite() || v < lo || v > 100.0 || (tenths - tenths.round()).abs() > 1e-6 {
        out.push(Problem::new(
            p.into(),
            format!("{v} is out of range: ECS takes a multiple of 0.1 from {lo} to 100"),
        ));
    }
}

/// An IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/NAME`).
pub fn is_role_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "iam"
        && parts[3].is_empty()
        && parts[5]
            .strip_prefix("role/")
            .is_some_and(|n| !n.is_empty())
}

/// A Lambda function ARN (`arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`).
pub fn is_lambda_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    (7..=8).contains(&parts.len())
        && parts[0] == "arn"
        && parts[2] == "lambda"
        && parts[5] == "function"
        && !parts[6].is_empty()
}

/// An HTTP header name as an ALB http-header condition takes it: 1-40 letters, digits and `-`.
pub fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// `spec.deployment`: what each strategy takes and needs, and the ranges ECS enforces.
fn check_deployment(out: &mut Vec<Problem>, s: &ServiceSpecFields) {
    let d = &s.deployment;
    let b = "/spec/deployment";
    let strategy = d.strategy;
    let named = match strategy {
        DeploymentStrategy::Rolling => "Rolling",
        DeploymentStrategy::BlueGreen => "BlueGreen",
        DeploymentStrategy::Canary => "Canary",
        DeploymentStrategy::Linear => "Linear",
    };
    let strat = [format!("{b}/strategy")];
    if strategy.shifts_traffic() {
        if s.ingress.is_none() {
            out.push(
                Problem::new(
                    format!("{b}/strategy"),
                    format!("{named} needs ingress: ECS shifts traffic between two target groups behind a listener rule of the load balancer"),
                )
                .reading(&["/spec/ingress"]),
            );
        }
        if d.circuit_breaker.is_some() {
            out.push(
                Problem::new(
                    format!("{b}/circuitBreaker"),
                    format!("applies to the Rolling strategy only, not {named} (use rollbackOnAlarms, alarmNames or hooks)"),
                )
                .reading(&strat),
            );
        }
        match &d.infrastructure_role_arn {
            None => out.push(
                Problem::new(
                    format!("{b}/infrastructureRoleArn"),
                    format!("is required with {named}: the IAM role ECS uses to change the listener rules"),
                )
                .reading(&strat),
            ),
            Some(arn) if !is_role_arn(arn) => out.push(Problem::new(
                format!("{b}/infrastructureRoleArn"),
                format!("`{arn}` is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"),
            )),
            Some(_) => {}
        }
    } else {
        for (field, set) in [
            ("bakeTimeMinutes", d.bake_time_minutes.is_some()),
            ("testTraffic", d.test_traffic.is_some()),
            ("infrastructureRoleArn", d.infrastructure_role_arn.is_some()),
            ("hooks", !d.hooks.is_empty()),
        ] {
            if set {
                out.push(
                    Problem::new(
                        format!("{b}/{field}"),
                        "applies to the BlueGreen, Canary and Linear strategies only (strategy is Rolling)".into(),
                    )
                    .reading(&strat),
                );
            }
        }
    }
    if let Some(c) = &d.canary {
        if strategy != DeploymentStrategy::Canary {
            out.push(
                Problem::new(
                    format!("{b}/canary"),
                    format!("applies to the Canary strategy only (strategy is {named})"),
                )
                .reading(&strat),
            );
        }
        check_percent(out, &format!("{b}/canary/percent"), c.percent, 0.1);
    }
    if let Some(l) = &d.linear {
        if strategy != DeploymentStrategy::Linear {
            out.push(
                Problem::new(
                    format!("{b}/linear"),
                    format!("applies to the Linear strategy only (strategy is {named})"),
                )
                .reading(&strat),
            );
        }
        check_percent(out, &format!("{b}/linear/stepPercent"), l.step_percent, 3.0);
    }
    if let Some(t) = &d.test_traffic {
        if !is_header_name(&t.header) {
            out.push(Problem::new(
                format!("{b}/testTraffic/header"),
                format!(
                    "`{}` is not an HTTP header name (1-40 letters, digits and `-`)",
                    t.header
                ),
            ));
        }
        if t.value.is_empty() || t.value.len() > 128 {
            out.push(Problem::new(
                format!("{b}/testTraffic/value"),
                "must be 1-128 characters".into(),
            ));
        }
    }
    let mut seen = BTreeMap::new();
    for (i, a) in d.rollback_on_alarms.iter().enumerate() {
        let p = format!("{b}/rollbackOnAlarms/{i}");
        if let Some(first) = seen.insert(*a, i) {
            out.push(
                Problem::new(p.clone(), format!("`{}` is listed twice", a.field()))
                    .reading(&[format!("{b}/rollbackOnAlarms/{first}")]),
            );
        }
        if !a.defined_in(s.alarms.as_ref()) {
            out.push(
                Problem::new(
                    p,
                    format!(
                        "names the alarm `{}`, which spec.alarms does not define (add alarms.{} or remove it here)",
                        a.field(),
                        a.field()
                    ),
                )
                .reading(&[format!("/spec/alarms/{}", a.field())]),
            );
        }
    }
    for (i, n) in d.alarm_names.iter().enumerate() {
        if n.is_empty() || n.len() > 255 {
            out.push(Problem::new(
                format!("{b}/alarmNames/{i}"),
                "must be a CloudWatch alarm name (1-255 characters)".into(),
            ));
        }
    }
    for (i, h) in d.hooks.iter().enumerate() {
        let p = format!("{b}/hooks/{i}");
        match (&h.lambda_arn, h.pause) {
            (Some(_), true) => out.push(Problem::new(
                format!("{p}/pause"),
                "a hook is either a Lambda function (lambdaArn) or a pause, not both".into(),
            )),
            (None, false) => out.push(Problem::new(
                p.clone(),
                "needs lambdaArn (with roleArn) or `pause: true`".into(),
            )),
            (Some(arn), false) => {
                if !is_lambda_arn(arn) {
                    out.push(Problem::new(
                        format!("{p}/lambdaArn"),
                        format!("`{arn}` is not a Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"),
                    ));
                }
                match &h.role_arn {
                    None => out.push(
                        Problem::new(
                            format!("{p}/roleArn"),
                            "is required with lambdaArn: the IAM role ECS invokes the function with"
                                .into(),
                        )
                        .reading(&[format!("{p}/lambdaArn")]),
                    ),
                    Some(r) if !is_role_arn(r) => out.push(Problem::new(
                        format!("{p}/roleArn"),
                        format!("`{r}` is not an IAM role ARN"),
                    )),
                    Some(_) => {}
                }
            }
            (None, true) => {
                for (j, st) in h.stages.iter().enumerate() {
                    if matches!(
                        st,
                        HookStage::TestTrafficShift | HookStage::ProductionTrafficShift
                    ) {
                        out.push(
                            Problem::new(
                                format!("{p}/stages/{j}"),
                                format!(
                                    "ECS cannot pause at {}: a pause hook takes any other stage",
                                    st.as_aws()
                                ),
                            )
                            .reading(&[format!("{p}/pause")]),
                        );
                    }
                }
                if let Some(r) = &h.role_arn {
                    if !is_role_arn(r) {
                        out.push(Problem::new(
                            format!("{p}/roleArn"),
                            format!("`{r}` is not an IAM role ARN"),
                        ));
                    }
                }
            }
        }
        let mut stages = BTreeSet::new();
        for (j, st) in h.stages.iter().enumerate() {
            if !stages.insert(*st) {
                out.push(Problem::new(
                    format!("{p}/stages/{j}"),
                    format!("{} is listed twice", st.as_aws()),
                ));
            }
        }
    }
}

fn check_image(out: &mut Vec<Problem>, s: &ServiceSpecFields) {
    let image = &s.container.image;
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        out.push(Problem::new(
            "/spec/container/image".into(),
            "must be `repository:tag` or a full image URI".into(),
        ));
        return;
    }
    // A bare `name:tag` names the spec's own repository when it has one.
    if let Some(repo) = &s.repository {
        if !image.contains('/') || !image.contains('.') {
            let name = image.split(['@', ':']).next().unwrap_or_default();
            if name != repo.name {
                out.push(
                    Problem::new(
                        "/spec/container/image".into(),
                        format!("`{image}` is neither `{}:TAG` (the spec's repository) nor a full image URI", repo.name),
                    )
                    .reading(&["/spec/repository/name"]),
                );
            }
        }
    }
}

fn is_matcher(m: &str) -> bool {
    let code = |s: &str| {
        s.parse::<u16>()
            .map(|c| (200..=499).contains(&c))
            .unwrap_or(false)
    };
    !m.is_empty()
        && m.split(',').all(|part| match part.split_once('-') {
            Some((a, b)) => code(a) && code(b) && a.parse::<u16>().ok() <= b.parse::<u16>().ok(),
            None => code(part),
        })
}

fn uses_fargate(strategy: &[CapacityProviderStrategyItem]) -> bool {
    strategy
        .iter()
        .any(|i| FARGATE_PROVIDERS.contains(&i.capacity_provider.as_str()))
}

fn list(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Problems of a service given the cluster it names (when that cluster is a valid spec).
pub fn service_against_cluster(service: &ServiceSpec, cluster: &ClusterSpec) -> Vec<Problem> {
    let mut out = Vec::new();
    let declared: BTreeSet<&str> = cluster
        .spec
        .capacity_providers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for (i, item) in service.spec.capacity_provider_strategy.iter().enumerate() {
        let cp = item.capacity_provider.as_str();
        if !FARGATE_PROVIDERS.contains(&cp) && !declared.contains(cp) {
            out.push(Problem::new(
                format!("/spec/capacityProviderStrategy/{i}/capacityProvider"),
                format!(
                    "`{cp}` is not a capacity provider of cluster `{}` (declared: {})",
                    cluster.metadata.name,
                    list(&declared)
                ),
            ));
        }
    }
    let effective = if service.spec.capacity_provider_strategy.is_empty() {
        &cluster.spec.default_capacity_provider_strategy
    } else {
        &service.spec.capacity_provider_strategy
    };
    let c = &service.spec.container;
    if service.spec.capacity_provider_strategy.is_empty()
        && uses_fargate(effective)
        && !fargate_accepts(c.cpu, c.memory)
    {
        out.push(
            Problem::new(
                "/spec/container/memory".into(),
                format!(
                    "cluster `{}` runs this service on Fargate, which does not accept cpu {} with memory {}",
                    cluster.metadata.name, c.cpu, c.memory
                ),
            )
            .reading(&["/spec/capacityProviderStrategy", "/spec/container/cpu"]),
        );
    }
    if let Some(ing) = &service.spec.ingress {
        if !cluster
            .spec
            .load_balancers
            .iter()
            .any(|lb| lb.name == ing.load_balancer)
        {
            let names: BTreeSet<&str> = cluster
                .spec
                .load_balancers
                .iter()
                .map(|l| l.name.as_str())
                .collect();
            out.push(Problem::new(
                "/spec/ingress/loadBalancer".into(),
                format!(
                    "`{}` is not a load balancer of cluster `{}` (declared: {})",
                    ing.load_balancer,
                    cluster.metadata.name,
                    list(&names)
                ),
            ));
        }
    }
    out
}

/// Checks across documents: a name defined twice for one kind makes every such document invalid
/// (the operator cannot know which one is meant); a service is checked against its cluster when
/// that cluster is among the valid documents. Problems are added to the documents they concern.
pub fn validate_set(documents: &mut [Document]) {
    let mut by_key: BTreeMap<(Kind, String), Vec<usize>> = BTreeMap::new();
    for (i, d) in documents.iter().enumerate() {
        if let (Some(kind), Some(name)) = (d.kind, d.name.clone()) {
            by_key.entry((kind, name)).or_default().push(i);
        }
    }
    for ((kind, name), idx) in &by_key {
        if idx.len() < 2 {
            continue;
        }
        let places: Vec<String> = idx
            .iter()
            .map(|&i| documents[i].origin.to_string())
            .collect();
        for &i in idx {
            documents[i].add_problem(
                "/metadata/name".into(),
                format!(
                    "{kind} `{name}` is defined more than once: {}",
                    places.join(", ")
                ),
            );
        }
    }
    let clusters: BTreeMap<String, ClusterSpec> = documents
        .iter()
        .filter_map(|d| match &d.result {
            Ok(Spec::Cluster(c)) => Some((c.metadata.name.clone(), (**c).clone())),
            _ => None,
        })
        .collect();
    for d in documents.iter_mut() {
        // Invalid services are checked too, as far as they could be decoded.
        let problems: Vec<Problem> = match d.decoded() {
            Some((Spec::Service(s), replaced)) => match clusters.get(&s.spec.cluster) {
                Some(c) => service_against_cluster(s, c)
                    .into_iter()
                    .filter(|p| !p.read_any_of(replaced))
                    .collect(),
                None => Vec::new(),
            },
            _ => Vec::new(),
        };
        for p in problems {
            d.add_problem(p.pointer, p.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_are_recognised_and_other_words_are_not() {
        for r in [
            "eu-west-1",
            "us-east-1",
            "ap-southeast-5",
            "us-gov-west-1",
            "cn-north-1",
        ] {
            assert!(is_region_name(r), "{r}");
        }
        for r in [
            "europe",
            "eu-west",
            "EU-WEST-1",
            "eu-west-1a",
            "eu_west_1",
            "",
            "e-west-1",
        ] {
            assert!(!is_region_name(r), "{r}");
        }
    }

    #[test]
    fn a_role_arn_names_its_account() {
        assert_eq!(
            role_arn_account("arn:aws:iam::210987654321:role/ecs-operator-target"),
            Some("210987654321")
        );
        assert_eq!(
            role_arn_account("arn:aws-cn:iam::210987654321:role/path/r"),
            Some("210987654321")
        );
        assert_eq!(role_arn_account("arn:aws:iam::210987654321:user/bob"), None);
        assert_eq!(role_arn_account("arn:aws:iam::2109:role/r"), None);
        assert_eq!(role_arn_account("ecs-operator-target"), None);
    }

    #[test]
    fn dns_labels_and_names() {
        assert!(is_dns_label("trust-estate-api"));
        assert!(!is_dns_label("Trust"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_name("www.example.com", false));
        assert!(is_dns_name("*.example.com", true));
        assert!(!is_dns_name("*.example.com", false));
        assert!(!is_dns_name("example", false));
        assert!(!is_dns_name("exa_mple.com", false));
        assert!(!is_dns_name("example.com.", false));
    }

    #[test]
    fn fargate_task_sizes_follow_the_aws_table() {
        assert!(fargate_accepts(256, 512));
        assert!(!fargate_accepts(256, 4096));
        assert!(fargate_accepts(1024, 3072));
        assert!(!fargate_accepts(1024, 1024));
        assert!(fargate_accepts(8192, 20480));
        assert!(!fargate_accepts(8192, 18432));
        assert!(!fargate_accepts(300, 512));
    }

    #[test]
    fn emails_need_one_at_and_a_domain() {
        assert!(is_email("ops@example.com"));
        assert!(is_email("first.last+tag@mail.example.co.uk"));
        assert!(!is_email("ops"));
        assert!(!is_email("ops@"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("ops@example"));
        assert!(!is_email("o ps@example.com"));
        assert!(!is_email("a@b@example.com"));
    }

    #[test]
    fn log_group_names_follow_cloudwatch() {
        assert!(is_log_group_name("/ecs/trust-estate-api"));
        assert!(is_log_group_name("app.logs#1"));
        assert!(!is_log_group_name(""));
        assert!(!is_log_group_name("a b"));
        assert!(!is_log_group_name(&"a".repeat(513)));
    }

    #[test]
    fn matchers_accept_codes_lists_and_ranges() {
        assert!(is_matcher("200"));
        assert!(is_matcher("200,204"));
        assert!(is_matcher("200-299"));
        assert!(!is_matcher("ok"));
        assert!(!is_matcher("600"));
        assert!(!is_matcher("299-200"));
    }
}

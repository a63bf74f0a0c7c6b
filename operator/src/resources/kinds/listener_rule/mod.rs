//! The HTTPS listener rule of a ServiceSpec: host-header and path-pattern conditions forwarding
//! to its target group, at the spec's priority or the lowest free one.
//!
//! One load balancer serves many services: each service reconciles only the rules it owns
//! (tags), so one service's bad spec (a priority taken by another) fails that service alone.
//!
//! Invariants: condition values are compared as sets (lower-case hosts); a rule is found by its
//! ownership tags among the rules that forward to our target group, sit at our priority or share
//! a host with us (one
//! DescribeRules per listener, one DescribeTags per 20 candidates); a rule is changed with one
//! ModifyRule and moved with SetRulePriorities, never recreated; duplicates we own are deleted.

mod gc;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_sdk_elasticloadbalancingv2::operation::describe_rules::DescribeRulesOutput;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, HostHeaderConditionConfig,
    HttpHeaderConditionConfig, PathPatternConditionConfig, RuleCondition, RulePriorityPair,
    TargetGroupTuple,
};

use crate::aws::Service;
use crate::reconcile::ConditionReport;
use crate::resources::error::Absent;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed};
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::elb_actions::Act;
use crate::resources::shared::elb_tags::{self, Tags};
use crate::resources::shared::pages::all_pages;
use crate::resources::shared::tags::{ownership, Ownership};
use crate::resources::snapshot::{Entry, Record};
use crate::resources::ResourceError;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "elbv2:listener-rule";

/// The highest priority ALB rules may have.
pub const MAX_PRIORITY: u32 = 50000;

/// The tag that marks a ServiceSpec's test listener rule (`deployment.testTraffic`), beside the
/// ownership tags: its value is [`TEST_ROLE`]. The production rule has no such tag.
pub const ROLE_TAG: &str = "ecs-operator.io/listener-rule";
pub const TEST_ROLE: &str = "test";

/// Which of a spec's rules: the production rule, or the test rule of a traffic-shifting
/// deployment (matched by its header condition, tagged [`ROLE_TAG`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Production,
    Test,
}

impl Role {
    fn of(tags: &elb_tags::Tags) -> Role {
        match tags.get(ROLE_TAG).map(String::as_str) {
            Some(TEST_ROLE) => Role::Test,
            _ => Role::Production,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Role::Production => "production",
            Role::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Lower-case hosts.
    pub hosts: BTreeSet<String>,
    pub paths: BTreeSet<String>,
    /// The first target group (empty when only planning a new target group).
    pub target_group: String,
    /// Every target group the rule forwards to, with the weight a new rule starts with. With
    /// more than one, the weights belong to ECS (it shifts traffic by rewriting them): only
    /// the set of target groups is compared, never the weights.
    pub forward: Vec<(String, i32)>,
    pub priority: Option<u32>,
    /// The http-header condition (name, value) of a test rule.
    pub header: Option<(String, String)>,
    pub role: Role,
}

impl Desired {
    pub fn new(
        hosts: &[String],
        paths: &[String],
        target_group: &str,
        priority: Option<u32>,
    ) -> Self {
        Desired {
            hosts: hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
            paths: paths.iter().cloned().collect(),
            target_group: target_group.to_string(),
            forward: vec![(target_group.to_string(), 1)],
            priority,
            header: None,
            role: Role::Production,
        }
    }

    /// The same rule forwarding to `forward` (target group, starting weight) instead.
    pub fn weighted(mut self, forward: Vec<(String, i32)>) -> Self {
        self.target_group = forward.first().map(|f| f.0.clone()).unwrap_or_default();
        self.forward = forward;
        self
    }

    /// The test rule: the same conditions plus `header: value`.
    pub fn test(mut self, header: &str, value: &str) -> Self {
        self.header = Some((header.to_ascii_lowercase(), value.to_string()));
        self.role = Role::Test;
        self
    }

    /// The target groups compared (weights never are); empty while one is only planned.
    fn target_set(&self) -> BTreeSet<String> {
        self.forward
            .iter()
            .filter(|(t, _)| !t.is_empty())
            .map(|(t, _)| t.clone())
            .collect()
    }

    fn complete(&self) -> bool {
        !self.forward.is_empty() && self.forward.iter().all(|(t, _)| !t.is_empty())
    }
}

/// A listener rule as compared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub arn: String,
    /// `None` for the default rule.
    pub priority: Option<u32>,
    pub hosts: BTreeSet<String>,
    pub paths: BTreeSet<String>,
    /// http-header conditions: lower-case name -> values.
    pub headers: BTreeMap<String, BTreeSet<String>>,
    /// Conditions other than host-header, path-pattern and http-header.
    pub other_conditions: usize,
    pub actions: Vec<Act>,
}

impl Observed {
    fn forwards_to(&self, tg: &str) -> bool {
        !tg.is_empty()
            && self.actions.iter().any(|a| match a {
                Act::Forward { target_groups } => target_groups.contains(tg),
                _ => false,
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An unowned rule already forwarding to our target group, adopted: its missing
    /// ownership tags.
    Tag {
        arn: String,
        tags: elb_tags::Tags,
    },
    Create {
        priority: u32,
    },
    /// ModifyRule: conditions, and the actions only when the set of target groups differs
    /// (so the weights ECS set stay as they are).
    Modify {
        arn: String,
        actions: bool,
    },
    Move {
        arn: String,
        priority: u32,
    },
    Delete {
        arn: String,
    },
}

/// The steps, and the priority the rule ends up at.
pub type Plan = (Vec<(Step, Change)>, Option<u32>);

/// The lowest priority no rule uses.
pub fn lowest_free(rules: &[Observed]) -> Option<u32> {
    let used: BTreeSet<u32> = rules.iter().filter_map(|r| r.priority).collect();
    (1..=MAX_PRIORITY).find(|p| !used.contains(p))
}

fn set_text(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(",")
}

/// The steps that give this spec exactly one rule as desired (pure). `owners` maps the ARN of
/// every candidate rule to its ownership. `Err` when the wanted priority is taken by a rule that
/// is not ours, or a new rule finds no free priority ([`refusal`]); else [`steps`].
pub fn plan(
    lb: &str,
    d: &Desired,
    rules: &[Observed],
    owners: &BTreeMap<String, Ownership>,
) -> Result<Plan, ResourceError> {
    match refusal(lb, d, rules, owners) {
        Some(e) => Err(e),
        None => Ok(steps(lb, d, rules, owners)),
    }
}

/// Our rules among `rules`.
fn ours<'a>(rules: &'a [Observed], owners: &BTreeMap<String, Ownership>) -> Vec<&'a Observed> {
    rules
        .iter()
        .filter(|r| owners.get(&r.arn) == Some(&Ownership::Ours))
        .collect()
}

/// Why this spec cannot have its rule on the listener as `rules` stand (pure): the wanted
/// priority is held by a rule that is not ours, or there is no rule of ours and no free
/// priority for a new one.
pub fn refusal(
    lb: &str,
    d: &Desired,
    rules: &[Observed],
    owners: &BTreeMap<String, Ownership>,
) -> Option<ResourceError> {
    if let Some(p) = d.priority {
        if let Some(r) = rules.iter().find(|r| r.priority == Some(p)) {
            match owners.get(&r.arn) {
                Some(Ownership::Ours) => {}
                Some(Ownership::OtherSpec(o)) => {
                    return Some(ResourceError::Unsatisfiable(format!(
                        "priority {p} on {lb} :443 is taken by a rule of {o}; choose another spec.ingress.priority or leave it out"
                    )))
                }
                _ => {
                    return Some(ResourceError::Unsatisfiable(format!(
                        "priority {p} on {lb} :443 is taken by a rule this operator does not own ({}); choose another spec.ingress.priority or leave it out",
                        r.arn
                    )))
                }
            }
        }
    }
    let creates = ours(rules, owners).is_empty();
    (creates && d.priority.is_none() && lowest_free(rules).is_none())
        .then(|| ResourceError::Unsatisfiable(format!("{lb} :443 has no free rule priority")))
}

/// The steps of [`plan`] once [`refusal`] found nothing in the way (pure), and the priority
/// the rule ends up at.
pub fn steps(
    lb: &str,
    d: &Desired,
    rules: &[Observed],
    owners: &BTreeMap<String, Ownership>,
) -> Plan {
    let ours = ours(rules, owners);
    // Keep the rule at the wanted priority if we own one there, else our lowest.
    let keep = ours
        .iter()
        .find(|r| d.priority.is_some() && r.priority == d.priority)
        .or_else(|| ours.iter().min_by_key(|r| r.priority))
        .copied();
    let resource = |p: Option<u32>| match p {
        Some(p) => format!("listener rule {lb} :443 priority {p}"),
        None => format!("listener rule {lb} :443"),
    };
    let mut steps = Vec::new();
    for r in &ours {
        if Some(r.arn.as_str()) != keep.map(|k| k.arn.as_str()) {
            steps.push((
                Step::Delete { arn: r.arn.clone() },
                Change::delete(resource(r.priority), "duplicate"),
            ));
        }
    }
    let want_actions = vec![Act::Forward {
        target_groups: d.target_set(),
    }];
    let Some(k) = keep else {
        // `refusal` found a priority for the new rule.
        let Some(priority) = d.priority.or_else(|| lowest_free(rules)) else {
            return (steps, None);
        };
        steps.push((
            Step::Create { priority },
            Change::create(
                resource(Some(priority)),
                format!("host {} path {}", set_text(&d.hosts), set_text(&d.paths)),
            ),
        ));
        return (steps, Some(priority));
    };
    let mut details = Vec::new();
    if k.hosts != d.hosts {
        details.push(format!(
            "hosts: {} -> {}",
            set_text(&k.hosts),
            set_text(&d.hosts)
        ));
    }
    if k.paths != d.paths {
        details.push(format!(
            "paths: {} -> {}",
            set_text(&k.paths),
            set_text(&d.paths)
        ));
    }
    let want_headers: BTreeMap<String, BTreeSet<String>> = d
        .header
        .iter()
        .map(|(n, v)| (n.clone(), BTreeSet::from([v.clone()])))
        .collect();
    if k.headers != want_headers {
        let text = |h: &BTreeMap<String, BTreeSet<String>>| {
            if h.is_empty() {
                "none".to_string()
            } else {
                h.iter()
                    .map(|(n, v)| format!("{n}={}", set_text(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        details.push(format!(
            "header: {} -> {}",
            text(&k.headers),
            text(&want_headers)
        ));
    }
    if k.other_conditions > 0 {
        details.push(format!("other conditions: {} -> 0", k.other_conditions));
    }
    let mut actions = false;
    if d.complete() && k.actions != want_actions {
        actions = true;
        let text = |a: &[Act]| a.iter().map(Act::text).collect::<Vec<_>>().join(", ");
        details.push(format!(
            "action: {} -> {}",
            text(&k.actions),
            text(&want_actions)
        ));
    }
    if !details.is_empty() {
        steps.push((
            Step::Modify {
                arn: k.arn.clone(),
                actions,
            },
            Change::update(resource(k.priority), details.join(", ")),
        ));
    }
    let mut priority = k.priority;
    if let Some(p) = d.priority {
        if k.priority != Some(p) {
            steps.push((
                Step::Move {
                    arn: k.arn.clone(),
                    priority: p,
                },
                Change::field(
                    resource(k.priority),
                    "priority",
                    k.priority.map(|p| p.to_string()).unwrap_or_default(),
                    p,
                ),
            ));
            priority = Some(p);
        }
    }
    (steps, priority)
}

fn from_sdk(r: &aws_sdk_elasticloadbalancingv2::types::Rule) -> Observed {
    let mut o = Observed {
        arn: r.rule_arn().unwrap_or_default().to_string(),
        priority: r.priority().and_then(|p| p.parse().ok()),
        actions: r.actions().iter().map(Act::from_sdk).collect(),
        ..Default::default()
    };
    for c in r.conditions() {
        match c.field() {
            Some("host-header") => {
                let v = c
                    .host_header_config()
                    .map(|h| h.values().to_vec())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| c.values().to_vec());
                o.hosts
                    .extend(v.into_iter().map(|h| h.to_ascii_lowercase()));
            }
            Some("path-pattern") => {
                let v = c
                    .path_pattern_config()
                    .map(|p| p.values().to_vec())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| c.values().to_vec());
                o.paths.extend(v);
            }
            Some("http-header") => {
                let h = c.http_header_config();
                let name = h
                    .and_then(|h| h.http_header_name())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let values = h.map(|h| h.values().to_vec()).unwrap_or_default();
                o.headers.entry(name).or_default().extend(values);
            }
            _ => o.other_conditions += 1,
        }
    }
    o
}

/// Every rule of the listener but the default one (DescribeRules, paginated).
pub async fn observe(run: &SpecRun<'_>, listener: &str) -> Result<Vec<Observed>, ResourceError> {
    let pages = all_pages(
        |marker| {
            let req = run.aws.elbv2.describe_rules().listener_arn(listener);
            let req = req
                .page_size(super::load_balancer::PAGE_SIZE)
                .set_marker(marker);
            run.aws
                .read(Service::Elbv2, "DescribeRules", listener, req.send())
        },
        DescribeRulesOutput::next_marker,
    )
    .await?;
    let rules = pages.iter().flat_map(|p| p.rules());
    let listed = rules.filter(|r| r.is_default() != Some(true) && r.priority() != Some("default"));
    Ok(listed.map(from_sdk).collect())
}

fn conditions(d: &Desired) -> Vec<RuleCondition> {
    let mut out = vec![
        RuleCondition::builder()
            .field("host-header")
            .host_header_config(
                HostHeaderConditionConfig::builder()
                    .set_values(Some(d.hosts.iter().cloned().collect()))
                    .build(),
            )
            .build(),
        RuleCondition::builder()
            .field("path-pattern")
            .path_pattern_config(
                PathPatternConditionConfig::builder()
                    .set_values(Some(d.paths.iter().cloned().collect()))
                    .build(),
            )
            .build(),
    ];
    if let Some((name, value)) = &d.header {
        out.push(
            RuleCondition::builder()
                .field("http-header")
                .http_header_config(
                    HttpHeaderConditionConfig::builder()
                        .http_header_name(name)
                        .values(value)
                        .build(),
                )
                .build(),
        );
    }
    out
}

/// The forward action: one target group as a plain forward, several as a weighted forward
/// with their starting weights.
pub fn forward_action(d: &Desired) -> Action {
    if d.forward.len() == 1 {
        return Act::forward(&d.forward[0].0).to_sdk();
    }
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .set_target_groups(Some(
                    d.forward
                        .iter()
                        .map(|(t, w)| {
                            TargetGroupTuple::builder()
                                .target_group_arn(t)
                                .weight(*w)
                                .build()
                        })
                        .collect(),
                ))
                .build(),
        )
        .build()
}

/// A priority taken between our read and our write (another service allocating at the same
/// time) is worth a retry: the next reconcile picks another free one.
fn retry_on_priority_race(e: ResourceError) -> ResourceError {
    match e.code() {
        Some("PriorityInUse") => ResourceError::Dependency(e.to_string()),
        _ => e,
    }
}

/// Every rule of a listener and the tags of every one of them (a resync wave's read, shared by
/// the ServiceSpecs on the listener), kept true by this operator's own rule writes
/// ([`recorded`], [`recorded_deletion`]).
///
/// Invariant: `reserved` holds every priority a reconcile of the wave chose for a rule it was
/// about to create without a priority of its spec (the lowest free one, or a test rule's),
/// shared by every version of the listing; a choice skips them. Without it, the reconciles
/// of one wave, all seeing the same listing, would all choose the same free priority and all
/// but one would fail with `PriorityInUse`. A reservation whose create failed leaves a gap
/// until the next wave reads the listener again.
#[derive(Clone)]
struct Listing {
    rules: Vec<Observed>,
    tags: BTreeMap<String, elb_tags::Tags>,
    reserved: Reserved,
}

/// Priorities chosen by the reconciles of one wave (see [`Listing`]).
type Reserved = Arc<Mutex<BTreeSet<u32>>>;

/// `rules` and a priority-only stand-in for each of `reserved` (for choosing a free one).
fn with_reserved(rules: &[Observed], reserved: &BTreeSet<u32>) -> Vec<Observed> {
    let mut out = rules.to_vec();
    out.extend(reserved.iter().map(|p| Observed {
        priority: Some(*p),
        ..Default::default()
    }));
    out
}

/// What a CreateRule (with `tags`), ModifyRule or SetRulePriorities that AWS answered with
/// `answer` did to the wave's listing of `listener`: each rule as AWS returned it replaces the
/// rule of its ARN (or is added); a created rule's tags are the ones it was created with. An
/// answer without the rule cannot be described: the listing is dropped.
fn recorded(
    listener: &str,
    answer: &[aws_sdk_elasticloadbalancingv2::types::Rule],
    created_with: Option<&elb_tags::Tags>,
) -> Vec<Record> {
    let entry = Entry::Rules(listener.to_string());
    let rules: Vec<Observed> = answer
        .iter()
        .filter(|r| r.is_default() != Some(true) && r.priority() != Some("default"))
        .map(from_sdk)
        .filter(|r| !r.arn.is_empty())
        .collect();
    if rules.is_empty() {
        return vec![Record::forget(entry)];
    }
    let tags = created_with.cloned();
    vec![Record::update(entry, move |l: &Listing| {
        let mut l = l.clone();
        for r in rules {
            if let Some(t) = &tags {
                l.tags.insert(r.arn.clone(), t.clone());
            }
            match l.rules.iter_mut().find(|o| o.arn == r.arn) {
                Some(o) => *o = r,
                None => l.rules.push(r),
            }
        }
        l
    })]
}

/// What a DeleteRule of `arn` did to the wave's listing of `listener`: the rule is gone.
fn recorded_deletion(listener: &str, arn: &str) -> Vec<Record> {
    let arn = arn.to_string();
    vec![Record::update(
        Entry::Rules(listener.to_string()),
        move |l: &Listing| {
            let mut l = l.clone();
            l.rules.retain(|r| r.arn != arn);
            l.tags.remove(&arn);
            l
        },
    )]
}

async fn rules_and_tags(run: &SpecRun<'_>, listener: &str) -> Result<Listing, ResourceError> {
    let rules = observe(run, listener).await?;
    let arns: Vec<String> = rules.iter().map(|r| r.arn.clone()).collect();
    let tags = elb_tags::describe(run, &arns).await?;
    Ok(Listing {
        rules,
        tags,
        reserved: Reserved::default(),
    })
}

/// A listener's rules, the ARNs a filter picked, their tags, and the wave's reserved
/// priorities (`None` when read fresh).
type RulesAndTags = (
    Vec<Observed>,
    Vec<String>,
    BTreeMap<String, elb_tags::Tags>,
    Option<Reserved>,
);

/// Every rule of the listener (the wave's listing when there is one) and the tags of those
/// `wanted` picks.
async fn rules_with_tags(
    run: &SpecRun<'_>,
    listener: &str,
    wanted: impl Fn(&Observed) -> bool,
) -> Result<RulesAndTags, ResourceError> {
    let entry = Entry::Rules(listener.to_string());
    let listing = match run.cached(entry, |_| rules_and_tags(run, listener)).await {
        Some(l) => Some(l?),
        None => None,
    };
    let rules = match &listing {
        Some(l) => l.rules.clone(),
        None => observe(run, listener).await?,
    };
    let candidates: Vec<String> = rules
        .iter()
        .filter(|r| wanted(r))
        .map(|r| r.arn.clone())
        .collect();
    let tags = match &listing {
        Some(l) => candidates
            .iter()
            .filter_map(|a| Some((a.clone(), l.tags.get(a)?.clone())))
            .collect(),
        None => elb_tags::describe(run, &candidates).await?,
    };
    let reserved = listing.as_ref().map(|l| l.reserved.clone());
    Ok((rules, candidates, tags, reserved))
}

/// This spec's rule of `role` on the listener, if it has one: (ARN, priority). `hosts`: the
/// spec's hosts (lower-case), which its rules match.
pub async fn find_owned(
    run: &SpecRun<'_>,
    listener: &str,
    hosts: &BTreeSet<String>,
    role: Role,
) -> Result<Option<(String, Option<u32>)>, ResourceError> {
    let (rules, _, tags, _) =
        rules_with_tags(run, listener, |r| !r.hosts.is_disjoint(hosts)).await?;
    Ok(rules
        .iter()
        .filter(|r| {
            let t = tags.get(&r.arn).cloned().unwrap_or_default();
            ownership(&run.aws.instance, &run.key, &t) == Ownership::Ours && Role::of(&t) == role
        })
        .min_by_key(|r| r.priority)
        .map(|r| (r.arn.clone(), r.priority)))
}

/// The priority for the test rule: where it is when that is below (evaluated before) the
/// production rule's `production`, else the highest free one below it.
pub async fn test_priority(
    run: &SpecRun<'_>,
    listener: &str,
    hosts: &BTreeSet<String>,
    production: u32,
) -> Result<u32, ResourceError> {
    if let Some((_, Some(p))) = find_owned(run, listener, hosts, Role::Test).await? {
        if p < production {
            return Ok(p);
        }
    }
    let (rules, _, _, reserved) = rules_with_tags(run, listener, |_| false).await?;
    let mut used: BTreeSet<u32> = rules.iter().filter_map(|r| r.priority).collect();
    let mut reserved = reserved.as_ref().map(|r| r.lock().expect("reserved lock"));
    if let Some(r) = &reserved {
        used.extend(r.iter());
    }
    let chosen = (1..production).rev().find(|p| !used.contains(p));
    if let (Some(r), Some(p)) = (reserved.as_mut(), chosen) {
        r.insert(p);
    }
    chosen.ok_or_else(|| {
            ResourceError::Unsatisfiable(format!(
                "the test listener rule must come before the production rule (priority {production}), and no priority below it is free; set spec.ingress.priority higher"
            ))
        })
}

/// A spec's rule of one role on the HTTPS listener `listener` of load balancer `lb`, as the
/// generic driver takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub lb: String,
    pub listener: String,
    pub rule: Desired,
}

/// What the driver observes of a [`Target`]: every rule of the listener (with a stand-in for
/// each priority the wave reserved, when the rule would take a free one), the ownership of
/// each candidate rule as this spec sees it, and the unowned candidates it adopts.
///
/// Ownership as seen here: an unowned rule that already forwards to our target group is ours
/// when the spec adopts (its tags are the plan's first steps); our rule of the other role
/// (production vs test) is not this one, so it counts as another owner's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub rules: Vec<Observed>,
    pub owners: BTreeMap<String, Ownership>,
    pub adopt: Vec<(String, elb_tags::Tags)>,
}

/// What the reconcile hands on: the rule's ARN (empty while only planning its creation) and
/// the priority it ends up at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub arn: String,
    pub priority: Option<u32>,
}

/// The rule's condition (`ListenerRule`, or `TestListenerRule` for the test rule), once it
/// has a priority.
pub fn condition(t: &Target, placed: &Placed) -> Option<ConditionReport> {
    let condition = match t.rule.role {
        Role::Production => "ListenerRule",
        Role::Test => "TestListenerRule",
    };
    let p = placed.priority?;
    Some(ConditionReport::new(
        condition,
        true,
        "PriorityAllocated",
        format!("priority {p} on {} :443", t.lb),
    ))
}

crate::resources::kind::kind!(
    /// A listener rule, as the generic driver sees it.
    ListenerRuleKind, TYPE, 3, delete, "ELBv2 listener rules", gc::list_owned
);

/// The generic driver's view of a spec's listener rule. Observe reads the listener's rules
/// (one DescribeRules, or the wave's listing) and the tags of the candidates (one DescribeTags
/// per 20), and in a wave reserves the free priority a new rule without one will take. The
/// claim refuses a priority another owner holds, or a listener without a free one; the plan
/// keeps one rule of ours, changed in place (ModifyRule, SetRulePriorities) and never
/// recreated, and deletes our duplicates.
impl Managed for ListenerRuleKind {
    crate::resources::kind::managed_types!(Target, Found, Step, Placed);

    fn label(t: &Target) -> String {
        format!("listener rule {} :443", t.lb)
    }

    async fn observe(run: &SpecRun<'_>, t: &Target) -> Result<Option<Found>, ResourceError> {
        observe_target(run, t).await.map(Some)
    }

    fn tags(_: &Found) -> &BTreeMap<String, String> {
        &crate::resources::kind::NO_TAGS
    }

    fn claim(_: &SpecRun<'_>, t: &Target, o: &Found) -> Result<Tags, ResourceError> {
        match refusal(&t.lb, &t.rule, &o.rules, &o.owners) {
            Some(e) => Err(e),
            None => Ok(Tags::new()),
        }
    }

    fn plan(t: &Target, o: Option<&Found>, _: Tags) -> crate::resources::kind::Plan<Step> {
        let Some(o) = o else {
            return crate::resources::kind::Plan::steps(Vec::new());
        };
        let adopt = o.adopt.iter().map(|(arn, tags)| {
            let change = Change::tags_added(Self::label(t), tags);
            let (arn, tags) = (arn.clone(), tags.clone());
            (Step::Tag { arn, tags }, change)
        });
        let mut planned: Vec<(Step, Change)> = adopt.collect();
        planned.extend(steps(&t.lb, &t.rule, &o.rules, &o.owners).0);
        crate::resources::kind::Plan::steps(planned)
    }

    fn output(t: &Target, o: Option<&Found>) -> Placed {
        let Some(o) = o else {
            return Placed {
                arn: String::new(),
                priority: None,
            };
        };
        let priority = steps(&t.lb, &t.rule, &o.rules, &o.owners).1;
        let arn = ours(&o.rules, &o.owners)
            .into_iter()
            .find(|r| r.priority == priority)
            .map(|r| r.arn.clone())
            .unwrap_or_default();
        Placed { arn, priority }
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d: t, out, .. } = at;
        if let Some(arn) = apply(run, t, step).await? {
            out.arn = arn;
        }
        Ok(())
    }

    fn id(_: &Target, out: &Placed) -> Option<String> {
        (out.priority.is_some() && !out.arn.is_empty()).then(|| out.arn.clone())
    }
}

/// The [`Found`] of `t`.
async fn observe_target(run: &SpecRun<'_>, t: &Target) -> Result<Found, ResourceError> {
    let d = &t.rule;
    let targets = d.target_set();
    let (rules, candidates, tags, reserved) = rules_with_tags(run, &t.listener, |r| {
        targets.iter().any(|t| r.forwards_to(t))
            || (d.priority.is_some() && r.priority == d.priority)
            // Our rule whose action was changed by hand still matches our hosts.
            || !r.hosts.is_disjoint(&d.hosts)
    })
    .await?;
    let mut found = Found {
        rules,
        owners: BTreeMap::new(),
        adopt: Vec::new(),
    };
    for arn in &candidates {
        let t = tags.get(arn).cloned().unwrap_or_default();
        let mut who = ownership(&run.aws.instance, &run.key, &t);
        if who == Ownership::Foreign
            && run.adopt
            && found
                .rules
                .iter()
                .any(|r| &r.arn == arn && targets.iter().any(|t| r.forwards_to(t)))
        {
            let missing =
                crate::resources::shared::tags::missing_owner_tags(&run.aws.instance, &run.key, &t);
            found.adopt.push((arn.clone(), missing));
            who = Ownership::Ours;
        }
        let role = Role::of(&t);
        if who == Ownership::Ours && role != d.role {
            who = Ownership::OtherSpec(format!("{} (its {} rule)", run.key, role.word()));
        }
        found.owners.insert(arn.clone(), who);
    }
    // Choosing a free priority in a wave: skip the wave's reservations, and add the one this
    // rule's create will take.
    if let (Some(reserved), None) = (&reserved, d.priority) {
        let mut reserved = reserved.lock().expect("reserved lock");
        found.rules = with_reserved(&found.rules, &reserved);
        if ours(&found.rules, &found.owners).is_empty() {
            if let Some(p) = lowest_free(&found.rules) {
                reserved.insert(p);
            }
        }
    }
    Ok(found)
}

/// Carry out one step on `t`'s listener; the ARN the rule now has when the step gives it one
/// (a create, a move).
async fn apply(
    run: &mut SpecRun<'_>,
    t: &Target,
    step: Step,
) -> Result<Option<String>, ResourceError> {
    let (lb, listener, d) = (t.lb.as_str(), t.listener.as_str(), &t.rule);
    let elb = &run.aws.elbv2;
    match step {
        Step::Tag { arn, tags } => {
            elb_tags::add(run, &arn, &tags).await?;
            Ok(None)
        }
        Step::Create { priority } => {
            let tags = tags_for(run, d.role);
            let out = run
                .aws
                .write_recorded(
                    Service::Elbv2,
                    "CreateRule",
                    lb,
                    elb.create_rule()
                        .listener_arn(listener)
                        .priority(priority as i32)
                        .set_conditions(Some(conditions(d)))
                        .actions(forward_action(d))
                        .set_tags(Some(elb_tags::sdk_tags(&tags)))
                        .send(),
                    |out| recorded(listener, out.rules(), Some(&tags)),
                )
                .await
                .map_err(retry_on_priority_race)?;
            let created = out.rules().first().and_then(|r| r.rule_arn());
            Ok(Some(created.unwrap_or_default().to_string()))
        }
        Step::Modify { arn, actions } => {
            let mut req = elb
                .modify_rule()
                .rule_arn(&arn)
                .set_conditions(Some(conditions(d)));
            if actions {
                req = req.actions(forward_action(d));
            }
            run.aws
                .write_recorded(Service::Elbv2, "ModifyRule", lb, req.send(), |out| {
                    recorded(listener, out.rules(), None)
                })
                .await?;
            Ok(None)
        }
        Step::Move { arn, priority } => {
            let pair = RulePriorityPair::builder().rule_arn(&arn);
            let req = elb
                .set_rule_priorities()
                .rule_priorities(pair.priority(priority as i32).build());
            run.aws
                .write_recorded(Service::Elbv2, "SetRulePriorities", lb, req.send(), |out| {
                    recorded(listener, out.rules(), None)
                })
                .await
                .map_err(retry_on_priority_race)?;
            Ok(Some(arn))
        }
        Step::Delete { arn } => {
            let req = elb.delete_rule().rule_arn(&arn).send();
            run.aws
                .write_recorded(Service::Elbv2, "DeleteRule", lb, req, |_| {
                    recorded_deletion(listener, &arn)
                })
                .await?;
            Ok(None)
        }
    }
}

/// The tags a new rule of `role` gets: the ownership tags, and [`ROLE_TAG`] on a test rule.
fn tags_for(run: &SpecRun<'_>, role: Role) -> elb_tags::Tags {
    let mut t = run.tags();
    if role == Role::Test {
        t.insert(ROLE_TAG.to_string(), TEST_ROLE.to_string());
    }
    t
}

/// Teardown of a rule this spec recorded (`elbv2:listener-rule`, its ARN): deleted, or released
/// with `retain`. A rule without our ownership tags, or gone already, is left alone. Returns
/// whether the rule is gone or released (always, once this returns `Ok`).
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    // Gone already, or not ours: left alone.
    if !elb_tags::owned(run, arn).await? {
        return Ok(Gone::Yes);
    }
    let resource = format!(
        "listener rule {}",
        crate::resources::shared::elb_actions::short_arn(arn)
    );
    if retain {
        elb_tags::release(run, arn, &resource).await?;
        return Ok(Gone::Yes);
    }
    if run.plan(Change::delete(&resource, "")) {
        let req = run.aws.elbv2.delete_rule().rule_arn(arn).send();
        let deleted = run.aws.write(Service::Elbv2, "DeleteRule", arn, req);
        deleted.await.absent_if("RuleNotFound")?;
    }
    Ok(Gone::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(arn: &str, p: u32, tg: &str) -> Observed {
        Observed {
            arn: arn.into(),
            priority: Some(p),
            hosts: ["example.com", "www.example.com"].map(String::from).into(),
            paths: ["/*"].map(String::from).into(),
            headers: BTreeMap::new(),
            other_conditions: 0,
            actions: vec![Act::forward(tg)],
        }
    }

    fn d(p: Option<u32>) -> Desired {
        Desired::new(
            &["www.example.com".into(), "Example.com".into()],
            &["/*".into()],
            "tg",
            p,
        )
    }

    #[test]
    fn the_drivers_plan_tags_an_adopted_rule_first_and_hands_on_the_rule_at_its_priority() {
        let target = |p| Target {
            lb: "prod".into(),
            listener: "arn:listener".into(),
            rule: d(p),
        };
        let missing = elb_tags::Tags::from([("ecs-operator.io/owner".into(), "x".into())]);
        let adopted = Found {
            rules: vec![rule("r1", 100, "tg")],
            owners: BTreeMap::from([("r1".to_string(), Ownership::Ours)]),
            adopt: vec![("r1".into(), missing.clone())],
        };
        type K = ListenerRuleKind;
        let plan = <K as Managed>::plan(&target(Some(100)), Some(&adopted), Tags::new());
        let steps: Vec<Step> = plan.steps.into_iter().map(|s| s.0).collect();
        let tag = Step::Tag {
            arn: "r1".into(),
            tags: missing,
        };
        assert_eq!(steps, vec![tag]);
        let placed = K::output(&target(Some(100)), Some(&adopted));
        assert_eq!((placed.arn.as_str(), placed.priority), ("r1", Some(100)));
        assert_eq!(K::id(&target(None), &placed).as_deref(), Some("r1"));
        let c = condition(&target(Some(100)), &placed).expect("a condition");
        assert_eq!(
            (c.condition_type.as_str(), c.reason.as_str()),
            ("ListenerRule", "PriorityAllocated")
        );
        // Nothing there: one create at the lowest free priority, and no ARN to ledger yet.
        let empty = Found {
            rules: Vec::new(),
            owners: BTreeMap::new(),
            adopt: Vec::new(),
        };
        let plan = <K as Managed>::plan(&target(None), Some(&empty), Tags::new());
        let steps: Vec<Step> = plan.steps.into_iter().map(|s| s.0).collect();
        assert_eq!(steps, vec![Step::Create { priority: 1 }]);
        let placed = K::output(&target(None), Some(&empty));
        assert_eq!(
            (placed.priority, K::id(&target(None), &placed)),
            (Some(1), None)
        );
    }

    #[test]
    fn the_claim_refuses_a_priority_another_owner_holds_and_a_listener_with_no_free_one() {
        let rules = vec![rule("x", 100, "other")];
        let owners = BTreeMap::from([(
            "x".to_string(),
            Ownership::OtherSpec("ServiceSpec/api".into()),
        )]);
        let e = refusal("prod", &d(Some(100)), &rules, &owners).expect("refused");
        assert!(
            e.to_string().contains("taken by a rule of ServiceSpec/api"),
            "{e}"
        );
        assert!(refusal("prod", &d(Some(101)), &rules, &owners).is_none());
        let full: Vec<Observed> = (1..=MAX_PRIORITY)
            .map(|p| rule(&format!("f{p}"), p, "o"))
            .collect();
        let e = refusal("prod", &d(None), &full, &BTreeMap::new()).expect("refused");
        assert!(e.to_string().contains("no free rule priority"), "{e}");
    }

    #[test]
    fn our_matching_rule_needs_nothing_whatever_the_value_order() {
        let rules = vec![rule("r1", 100, "tg")];
        let owners = BTreeMap::from([("r1".to_string(), Ownership::Ours)]);
        let (steps, p) = plan("prod", &d(Some(100)), &rules, &owners).unwrap();
        assert!(steps.is_empty());
        assert_eq!(p, Some(100));
    }

    #[test]
    fn without_a_priority_the_lowest_free_one_is_taken() {
        let rules = vec![rule("a", 1, "x"), rule("b", 2, "y"), rule("c", 4, "z")];
        let (steps, p) = plan("prod", &d(None), &rules, &BTreeMap::new()).unwrap();
        assert_eq!(p, Some(3));
        assert_eq!(steps[0].0, Step::Create { priority: 3 });
    }

    #[test]
    fn a_priority_held_by_another_spec_fails_this_spec_only() {
        let rules = vec![rule("theirs", 100, "other")];
        let owners = BTreeMap::from([(
            "theirs".to_string(),
            Ownership::OtherSpec("ServiceSpec/admin".into()),
        )]);
        let err = plan("prod", &d(Some(100)), &rules, &owners).unwrap_err();
        assert!(err.to_string().contains("ServiceSpec/admin"), "{err}");
    }

    #[test]
    fn a_changed_path_is_one_modify_and_a_new_priority_one_move() {
        let mut r = rule("r1", 7, "tg");
        r.paths = ["/api/*"].map(String::from).into();
        let owners = BTreeMap::from([("r1".to_string(), Ownership::Ours)]);
        let (steps, p) = plan("prod", &d(Some(100)), &[r], &owners).unwrap();
        assert_eq!(p, Some(100));
        assert_eq!(steps.len(), 2);
        assert_eq!(
            steps[0].1.to_string(),
            "~ listener rule prod :443 priority 7 paths: /api/* -> /*"
        );
        assert_eq!(
            steps[1].0,
            Step::Move {
                arn: "r1".into(),
                priority: 100
            }
        );
    }

    #[test]
    fn a_free_priority_skips_those_the_wave_reserved() {
        let rules = vec![rule("a", 2, "x")];
        let reserved = BTreeSet::from([1, 3]);
        let (steps, p) = plan(
            "prod",
            &d(None),
            &with_reserved(&rules, &reserved),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(p, Some(4));
        assert_eq!(steps[0].0, Step::Create { priority: 4 });
    }

    fn sdk_rule(arn: &str, priority: &str) -> aws_sdk_elasticloadbalancingv2::types::Rule {
        aws_sdk_elasticloadbalancingv2::types::Rule::builder()
            .rule_arn(arn)
            .priority(priority)
            .conditions(
                RuleCondition::builder()
                    .field("host-header")
                    .host_header_config(
                        HostHeaderConditionConfig::builder()
                            .values("Web.example.com")
                            .build(),
                    )
                    .build(),
            )
            .actions(Act::forward("tg").to_sdk())
            .build()
    }

    fn listing() -> Listing {
        Listing {
            rules: vec![rule("old", 1, "x")],
            tags: BTreeMap::from([("old".to_string(), elb_tags::Tags::new())]),
            reserved: Reserved::default(),
        }
    }

    #[test]
    fn a_created_rule_is_recorded_as_aws_returned_it_with_its_tags_once() {
        let tags = elb_tags::Tags::from([("k".to_string(), "v".to_string())]);
        let record = || recorded("l1", &[sdk_rule("new", "7")], Some(&tags));
        let once = record().remove(0).applied(listing()).unwrap();
        assert_eq!(once.rules.len(), 2);
        let new = once.rules.iter().find(|r| r.arn == "new").unwrap();
        assert_eq!(new.priority, Some(7));
        assert_eq!(new.hosts, BTreeSet::from(["web.example.com".to_string()]));
        assert_eq!(new.actions, vec![Act::forward("tg")]);
        assert_eq!(once.tags.get("new"), Some(&tags));
        // Applied to a listing that already saw the create: the same listing.
        let twice = record().remove(0).applied((*once).clone()).unwrap();
        assert_eq!(twice.rules, once.rules);
        assert_eq!(twice.tags, once.tags);
    }

    #[test]
    fn a_moved_rule_replaces_itself_and_a_deleted_one_leaves_the_listing() {
        let moved = recorded("l1", &[sdk_rule("old", "9")], None)
            .remove(0)
            .applied(listing())
            .unwrap();
        assert_eq!(moved.rules.len(), 1);
        assert_eq!(moved.rules[0].priority, Some(9));
        assert!(moved.tags.contains_key("old"));
        let gone = recorded_deletion("l1", "old")
            .remove(0)
            .applied((*moved).clone())
            .unwrap();
        assert!(gone.rules.is_empty() && gone.tags.is_empty());
        // An answer without the rule cannot be described: the listing is dropped.
        assert!(recorded("l1", &[], None)
            .remove(0)
            .applied(listing())
            .is_none());
    }

    #[test]
    fn duplicates_we_own_are_deleted() {
        let rules = vec![rule("r1", 5, "tg"), rule("r2", 6, "tg")];
        let owners = BTreeMap::from([
            ("r1".to_string(), Ownership::Ours),
            ("r2".to_string(), Ownership::Ours),
        ]);
        let (steps, p) = plan("prod", &d(None), &rules, &owners).unwrap();
        assert_eq!(p, Some(5));
        assert_eq!(
            steps,
            vec![(
                Step::Delete { arn: "r2".into() },
                Change::delete("listener rule prod :443 priority 6", "duplicate")
            )]
        );
    }
}

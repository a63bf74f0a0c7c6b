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

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, HostHeaderConditionConfig,
    HttpHeaderConditionConfig, PathPatternConditionConfig, RuleCondition, RulePriorityPair,
    TargetGroupTuple,
};

use crate::aws::Service;
use crate::reconcile::ConditionReport;
use crate::resources::error::Absent;
use crate::resources::kind::Gone;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::elb_actions::Act;
use crate::resources::shared::elb_tags;
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
/// is not ours.
pub fn plan(
    lb: &str,
    d: &Desired,
    rules: &[Observed],
    owners: &BTreeMap<String, Ownership>,
) -> Result<Plan, ResourceError> {
    let ours: Vec<&Observed> = rules
        .iter()
        .filter(|r| owners.get(&r.arn) == Some(&Ownership::Ours))
        .collect();
    if let Some(p) = d.priority {
        if let Some(r) = rules.iter().find(|r| r.priority == Some(p)) {
            match owners.get(&r.arn) {
                Some(Ownership::Ours) => {}
                Some(Ownership::OtherSpec(o)) => {
                    return Err(ResourceError::Unsatisfiable(format!(
                        "priority {p} on {lb} :443 is taken by a rule of {o}; choose another spec.ingress.priority or leave it out"
                    )))
                }
                _ => {
                    return Err(ResourceError::Unsatisfiable(format!(
                        "priority {p} on {lb} :443 is taken by a rule this operator does not own ({}); choose another spec.ingress.priority or leave it out",
                        r.arn
                    )))
                }
            }
        }
    }
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
        let priority = d.priority.or_else(|| lowest_free(rules)).ok_or_else(|| {
            ResourceError::Unsatisfiable(format!("{lb} :443 has no free rule priority"))
        })?;
        steps.push((
            Step::Create { priority },
            Change::create(
                resource(Some(priority)),
                format!("host {} path {}", set_text(&d.hosts), set_text(&d.paths)),
            ),
        ));
        return Ok((steps, Some(priority)));
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
    Ok((steps, priority))
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
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = run
            .aws
            .read(
                Service::Elbv2,
                "DescribeRules",
                listener,
                run.aws
                    .elbv2
                    .describe_rules()
                    .listener_arn(listener)
                    .page_size(super::load_balancer::PAGE_SIZE)
                    .set_marker(marker.take())
                    .send(),
            )
            .await?;
        out.extend(
            page.rules()
                .iter()
                .filter(|r| r.is_default() != Some(true) && r.priority() != Some("default"))
                .map(from_sdk),
        );
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(out)
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

/// Reconcile this spec's rule of `d.role` on the HTTPS listener `listener` of load balancer
/// `lb`. Reports the rule and its priority in the status; returns the rule's ARN (empty while
/// only planning its creation) and priority.
pub async fn reconcile(
    run: &mut SpecRun<'_>,
    lb: &str,
    listener: &str,
    d: &Desired,
) -> Result<(String, Option<u32>), ResourceError> {
    let targets = d.target_set();
    let (rules, candidates, tags, reserved) = rules_with_tags(run, listener, |r| {
        targets.iter().any(|t| r.forwards_to(t))
            || (d.priority.is_some() && r.priority == d.priority)
            // Our rule whose action was changed by hand still matches our hosts.
            || !r.hosts.is_disjoint(&d.hosts)
    })
    .await?;
    let mut owners: BTreeMap<String, Ownership> = BTreeMap::new();
    for arn in &candidates {
        let t = tags.get(arn).cloned().unwrap_or_default();
        let mut who = ownership(&run.aws.instance, &run.key, &t);
        // An unowned rule that already forwards to our target group is ours to adopt.
        if who == Ownership::Foreign
            && run.adopt
            && rules
                .iter()
                .any(|r| &r.arn == arn && targets.iter().any(|t| r.forwards_to(t)))
        {
            let missing =
                crate::resources::shared::tags::missing_owner_tags(&run.aws.instance, &run.key, &t);
            if run.plan(Change::tags_added(
                format!("listener rule {lb} :443"),
                &missing,
            )) {
                elb_tags::add(run, arn, &missing).await?;
            }
            who = Ownership::Ours;
        }
        // Our rule of the other role (production vs test) is not this one.
        let role = Role::of(&t);
        if who == Ownership::Ours && role != d.role {
            who = Ownership::OtherSpec(format!("{} (its {} rule)", run.key, role.word()));
        }
        owners.insert(arn.clone(), who);
    }
    let (steps, priority) = match (&reserved, d.priority) {
        // Choosing a free priority in a wave: skip (and add to) the wave's reservations.
        (Some(reserved), None) => {
            let mut reserved = reserved.lock().expect("reserved lock");
            let planned = plan(lb, d, &with_reserved(&rules, &reserved), &owners)?;
            for (step, _) in &planned.0 {
                if let Step::Create { priority } = step {
                    reserved.insert(*priority);
                }
            }
            planned
        }
        _ => plan(lb, d, &rules, &owners)?,
    };
    let mut arn = rules
        .iter()
        .find(|r| owners.get(&r.arn) == Some(&Ownership::Ours) && r.priority == priority)
        .map(|r| r.arn.clone())
        .unwrap_or_default();
    for step in run.planned(steps) {
        let elb = &run.aws.elbv2;
        match step {
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
                arn = out
                    .rules()
                    .first()
                    .and_then(|r| r.rule_arn())
                    .unwrap_or_default()
                    .to_string();
            }
            Step::Modify { arn: a, actions } => {
                let mut req = elb
                    .modify_rule()
                    .rule_arn(&a)
                    .set_conditions(Some(conditions(d)));
                if actions {
                    req = req.actions(forward_action(d));
                }
                run.aws
                    .write_recorded(Service::Elbv2, "ModifyRule", lb, req.send(), |out| {
                        recorded(listener, out.rules(), None)
                    })
                    .await?;
            }
            Step::Move { arn: a, priority } => {
                run.aws
                    .write_recorded(
                        Service::Elbv2,
                        "SetRulePriorities",
                        lb,
                        elb.set_rule_priorities()
                            .rule_priorities(
                                RulePriorityPair::builder()
                                    .rule_arn(&a)
                                    .priority(priority as i32)
                                    .build(),
                            )
                            .send(),
                        |out| recorded(listener, out.rules(), None),
                    )
                    .await
                    .map_err(retry_on_priority_race)?;
                arn = a;
            }
            Step::Delete { arn: a } => {
                run.aws
                    .write_recorded(
                        Service::Elbv2,
                        "DeleteRule",
                        lb,
                        elb.delete_rule().rule_arn(&a).send(),
                        |_| recorded_deletion(listener, &a),
                    )
                    .await?;
            }
        }
    }
    if let Some(p) = priority {
        if !arn.is_empty() {
            run.resource(TYPE, arn.clone());
        }
        let condition = match d.role {
            Role::Production => "ListenerRule",
            Role::Test => "TestListenerRule",
        };
        run.condition(ConditionReport::new(
            condition,
            true,
            "PriorityAllocated",
            format!("priority {p} on {lb} :443"),
        ));
    }
    Ok((arn, priority))
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
        run.aws
            .write(
                Service::Elbv2,
                "DeleteRule",
                arn,
                run.aws.elbv2.delete_rule().rule_arn(arn).send(),
            )
            .await
            .absent_if("RuleNotFound")?;
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// A listener rule, as the generic driver sees it.
    ListenerRuleKind, TYPE, 3, delete, "ELBv2 listener rules", gc::list_owned
);

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

//! The pure check of a decoded input against its shape: required members, unknown members,
//! types, string length, number ranges, enums, patterns, list and map sizes, one member of a
//! union, and the list limits that the API reference documents but the models leave out
//! ([`DOCUMENTED_LIMITS`]).
//!
//! Invariant: every rule that fails is reported, each once, with the member's path; a value
//! that has the wrong type is not checked further.

use std::fmt;

use serde_json::Value;

use super::model::{Model, Shape};

/// A rule an input broke.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// The request could not be read against any model (no such operation, unreadable body).
    Unreadable,
    Required,
    UnknownMember,
    Type,
    MinLength,
    MaxLength,
    Minimum,
    Maximum,
    Enum,
    Pattern,
    MinItems,
    MaxItems,
    /// A union with other than exactly one member set.
    Union,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Rule::Unreadable => "unreadable request",
            Rule::Required => "required member missing",
            Rule::UnknownMember => "unknown member",
            Rule::Type => "wrong type",
            Rule::MinLength => "shorter than the minimum length",
            Rule::MaxLength => "longer than the maximum length",
            Rule::Minimum => "below the minimum",
            Rule::Maximum => "above the maximum",
            Rule::Enum => "not one of the enum values",
            Rule::Pattern => "does not match the pattern",
            Rule::MinItems => "fewer items than the minimum",
            Rule::MaxItems => "more items than the maximum",
            Rule::Union => "not exactly one member of a union",
        };
        f.write_str(s)
    }
}

/// One broken rule: where, which rule, and what was found (with the limit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// botocore's folder name (`ecs`, `elbv2`).
    pub service: String,
    pub operation: String,
    /// The member path (`loadBalancers[0].targetGroupArn`); empty for the input itself.
    pub path: String,
    pub rule: Rule,
    /// The offending value (cut at 80 characters) and the limit it broke.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(input)"
        } else {
            &self.path
        };
        write!(
            f,
            "{} {} {}: {} ({})",
            self.service, self.operation, path, self.rule, self.detail
        )
    }
}

/// A limit the API reference states in a member's documentation (the same text is in the
/// model's `documentation`) but the model's shape does not carry: the shapes are shared
/// (`StringList`, `MaxResults`), the limit is per operation.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// At most this many items in the list.
    Items(usize),
    /// A number within this range.
    Range(i64, i64),
    /// A string matching this regular expression (whole value).
    Matches(&'static str),
    /// A string not starting with this.
    NotPrefix(&'static str),
}

/// ELBv2 names: "a maximum of 32 characters, must contain only alphanumeric characters or
/// hyphens, and must not begin or end with a hyphen".
const ELB_NAME: &str = "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$";

/// `(service, operation, top-level member, limit, the documentation's words)`.
pub const DOCUMENTED_LIMITS: &[(&str, &str, &str, Limit, &str)] = &[
    (
        "ecs",
        "DescribeServices",
        "services",
        Limit::Items(10),
        "You may specify up to 10 services to describe in a single operation.",
    ),
    (
        "ecs",
        "DescribeClusters",
        "clusters",
        Limit::Items(100),
        "A list of up to 100 cluster names or full cluster Amazon Resource Name (ARN) entries.",
    ),
    (
        "ecs",
        "DescribeCapacityProviders",
        "capacityProviders",
        Limit::Items(100),
        "Up to 100 capacity providers can be described in an action.",
    ),
    (
        "ecs",
        "DescribeCapacityProviders",
        "maxResults",
        Limit::Range(1, 10),
        "This value can be between 1 and 10.",
    ),
    (
        "ecs",
        "DescribeTasks",
        "tasks",
        Limit::Items(100),
        "A list of up to 100 task IDs or full ARN entries.",
    ),
    (
        "ecs",
        "DeleteTaskDefinitions",
        "taskDefinitions",
        Limit::Items(10),
        "You can specify up to 10 task definitions as a comma separated list.",
    ),
    (
        "ecs",
        "ListClusters",
        "maxResults",
        Limit::Range(1, 100),
        "This value can be between 1 and 100.",
    ),
    (
        "ecs",
        "ListServices",
        "maxResults",
        Limit::Range(1, 100),
        "This value can be between 1 and 100.",
    ),
    (
        "ecs",
        "ListTasks",
        "maxResults",
        Limit::Range(1, 100),
        "This value can be between 1 and 100.",
    ),
    (
        "ecs",
        "ListTaskDefinitions",
        "maxResults",
        Limit::Range(1, 100),
        "This value can be between 1 and 100.",
    ),
    (
        "ecs",
        "ListTaskDefinitionFamilies",
        "maxResults",
        Limit::Range(1, 100),
        "This value can be between 1 and 100.",
    ),
    (
        "elbv2",
        "CreateTargetGroup",
        "Name",
        Limit::Matches(ELB_NAME),
        "This name must be unique per region per account, can have a maximum of 32 characters, must contain only alphanumeric characters or hyphens, and must not begin or end with a hyphen.",
    ),
    (
        "elbv2",
        "CreateLoadBalancer",
        "Name",
        Limit::Matches(ELB_NAME),
        "This name must be unique per region per account, can have a maximum of 32 characters, must contain only alphanumeric characters or hyphens, must not begin or end with a hyphen, and must not begin with \"internal-\".",
    ),
    (
        "elbv2",
        "CreateLoadBalancer",
        "Name",
        Limit::NotPrefix("internal-"),
        "must not begin with \"internal-\".",
    ),
    (
        "elbv2",
        "DescribeLoadBalancers",
        "LoadBalancerArns",
        Limit::Items(20),
        "You can specify up to 20 load balancers in a single call.",
    ),
    (
        "elbv2",
        "DescribeTags",
        "ResourceArns",
        Limit::Items(20),
        "You can specify up to 20 resources in a single call.",
    ),
    (
        "application-autoscaling",
        "DescribeScalableTargets",
        "MaxResults",
        Limit::Range(1, 50),
        "This value can be between 1 and 50.",
    ),
    (
        "application-autoscaling",
        "DescribeScalingPolicies",
        "MaxResults",
        Limit::Range(1, 10),
        "This value can be between 1 and 10.",
    ),
];

fn cut(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// Check `input` against the shape `shape_name` of `model`.
pub fn check(
    model: &Model,
    operation: &str,
    shape_name: &str,
    input: &Value,
    textual: bool,
) -> Vec<Violation> {
    let mut c = Checker {
        model,
        operation,
        textual,
        out: Vec::new(),
    };
    c.value(shape_name, input, "");
    c.documented_limits(input);
    c.out
}

struct Checker<'a> {
    model: &'a Model,
    operation: &'a str,
    textual: bool,
    out: Vec<Violation>,
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() {
        member.to_string()
    } else {
        format!("{path}.{member}")
    }
}

impl Checker<'_> {
    fn report(&mut self, path: &str, rule: Rule, detail: String) {
        self.out.push(Violation {
            service: self.model.name.to_string(),
            operation: self.operation.to_string(),
            path: path.to_string(),
            rule,
            detail,
        });
    }

    fn documented_limits(&mut self, input: &Value) {
        for (service, op, member, limit, words) in DOCUMENTED_LIMITS {
            if *service != self.model.name || *op != self.operation {
                continue;
            }
            let Some(v) = input.get(member) else { continue };
            match limit {
                Limit::Items(max) => {
                    if let Value::Array(items) = v {
                        if items.len() > *max {
                            let d = format!("{} items, maximum {max}: \"{words}\"", items.len());
                            self.report(member, Rule::MaxItems, d);
                        }
                    }
                }
                Limit::Matches(re) => {
                    let re = regex::Regex::new(re).expect("a documented-limit pattern compiles");
                    if let Value::String(text) = v {
                        if !re.is_match(text) {
                            let d = format!("{}: \"{words}\"", cut(v));
                            self.report(member, Rule::Pattern, d);
                        }
                    }
                }
                Limit::NotPrefix(prefix) => {
                    if let Value::String(text) = v {
                        if text.starts_with(prefix) {
                            let d = format!("{}: \"{words}\"", cut(v));
                            self.report(member, Rule::Pattern, d);
                        }
                    }
                }
                Limit::Range(min, max) => {
                    let n = match v {
                        Value::Number(n) => n.as_i64(),
                        Value::String(s) => s.parse().ok(),
                        _ => None,
                    };
                    if let Some(n) = n {
                        let d = format!("{n}, range {min}..={max}: \"{words}\"");
                        if n < *min {
                            self.report(member, Rule::Minimum, d);
                        } else if n > *max {
                            self.report(member, Rule::Maximum, d);
                        }
                    }
                }
            }
        }
    }

    fn value(&mut self, shape_name: &str, v: &Value, path: &str) {
        let model = self.model;
        let shape = model.shape(shape_name);
        match shape.kind.as_str() {
            "structure" => self.structure(shape, v, path),
            "list" => self.list(shape, v, path),
            "map" => self.map(shape, v, path),
            "string" => self.string(shape_name, shape, v, path),
            "integer" | "long" | "double" | "float" => self.number(shape, v, path),
            "boolean" => {
                let ok = match v {
                    Value::Bool(_) => !self.textual,
                    Value::String(s) => self.textual && (s == "true" || s == "false"),
                    _ => false,
                };
                if !ok {
                    self.report(path, Rule::Type, format!("{}, expected a boolean", cut(v)));
                }
            }
            "timestamp" => {
                let ok = match v {
                    Value::Number(_) => true,
                    Value::String(s) => !s.is_empty(),
                    _ => false,
                };
                if !ok {
                    self.report(
                        path,
                        Rule::Type,
                        format!("{}, expected a timestamp", cut(v)),
                    );
                }
            }
            "blob" if !v.is_string() => {
                self.report(path, Rule::Type, format!("{}, expected a blob", cut(v)));
            }
            // Documents (free JSON) take anything.
            _ => {}
        }
    }

    fn structure(&mut self, shape: &Shape, v: &Value, path: &str) {
        let Value::Object(map) = v else {
            self.report(
                path,
                Rule::Type,
                format!("{}, expected a structure", cut(v)),
            );
            return;
        };
        for r in &shape.required {
            if !map.contains_key(r) {
                self.report(&join(path, r), Rule::Required, "absent".into());
            }
        }
        for (k, value) in map {
            match shape.members.get(k) {
                Some(m) => self.value(&m.shape, value, &join(path, k)),
                None => self.report(&join(path, k), Rule::UnknownMember, cut(value)),
            }
        }
        if shape.union {
            let set = map.values().filter(|v| !v.is_null()).count();
            if set != 1 {
                self.report(path, Rule::Union, format!("{set} members set"));
            }
        }
    }

    fn sizes(&mut self, shape: &Shape, n: usize, path: &str) {
        if let Some(min) = shape.min {
            if (n as f64) < min {
                self.report(path, Rule::MinItems, format!("{n} items, minimum {min}"));
            }
        }
        if let Some(max) = shape.max {
            if (n as f64) > max {
                self.report(path, Rule::MaxItems, format!("{n} items, maximum {max}"));
            }
        }
    }

    fn list(&mut self, shape: &Shape, v: &Value, path: &str) {
        let Value::Array(items) = v else {
            self.report(path, Rule::Type, format!("{}, expected a list", cut(v)));
            return;
        };
        self.sizes(shape, items.len(), path);
        let member = shape.member.as_ref().expect("a list shape has a member");
        for (i, item) in items.iter().enumerate() {
            self.value(&member.shape, item, &format!("{path}[{i}]"));
        }
    }

    fn map(&mut self, shape: &Shape, v: &Value, path: &str) {
        let Value::Object(entries) = v else {
            self.report(path, Rule::Type, format!("{}, expected a map", cut(v)));
            return;
        };
        self.sizes(shape, entries.len(), path);
        let (Some(key), Some(value)) = (&shape.key, &shape.value) else {
            return;
        };
        for (k, item) in entries {
            let at = format!("{path}[{k:?}]");
            self.value(&key.shape, &Value::String(k.clone()), &format!("{at}(key)"));
            self.value(&value.shape, item, &at);
        }
    }

    fn string(&mut self, shape_name: &str, shape: &Shape, v: &Value, path: &str) {
        let Value::String(s) = v else {
            self.report(path, Rule::Type, format!("{}, expected a string", cut(v)));
            return;
        };
        let len = s.chars().count();
        if let Some(min) = shape.min {
            if (len as f64) < min {
                self.report(
                    path,
                    Rule::MinLength,
                    format!("{} has {len}, minimum {min}", cut(v)),
                );
            }
        }
        if let Some(max) = shape.max {
            if (len as f64) > max {
                self.report(
                    path,
                    Rule::MaxLength,
                    format!("{} has {len}, maximum {max}", cut(v)),
                );
            }
        }
        if let Some(values) = &shape.enum_values {
            if !values.iter().any(|e| e == s) {
                self.report(
                    path,
                    Rule::Enum,
                    format!("{}, expected one of {values:?}", cut(v)),
                );
            }
        }
        if let Some(re) = self.model.patterns.get(shape_name) {
            let p = shape.pattern.as_deref().unwrap_or_default();
            match re.matches(s) {
                Ok(true) => {}
                Ok(false) => self.report(path, Rule::Pattern, format!("{} against {p}", cut(v))),
                Err(e) => self.report(path, Rule::Pattern, format!("{} against {p}: {e}", cut(v))),
            }
        }
    }

    fn number(&mut self, shape: &Shape, v: &Value, path: &str) {
        let integral = matches!(shape.kind.as_str(), "integer" | "long");
        let n = match v {
            Value::Number(n) if !self.textual => {
                if integral && !(n.is_i64() || n.is_u64()) {
                    None
                } else {
                    n.as_f64()
                }
            }
            Value::String(s) if self.textual => {
                if integral {
                    s.parse::<i64>().ok().map(|i| i as f64)
                } else {
                    s.parse::<f64>().ok()
                }
            }
            _ => None,
        };
        let Some(n) = n else {
            let want = if integral { "an integer" } else { "a number" };
            self.report(path, Rule::Type, format!("{}, expected {want}", cut(v)));
            return;
        };
        if let Some(min) = shape.min {
            if n < min {
                self.report(path, Rule::Minimum, format!("{n}, minimum {min}"));
            }
        }
        if let Some(max) = shape.max {
            if n > max {
                self.report(path, Rule::Maximum, format!("{n}, maximum {max}"));
            }
        }
    }
}

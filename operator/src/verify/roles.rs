//! Roles: a ServiceSpec's `executionRoleArn` and `taskRoleArn` must name roles that exist, with
//! that ARN, and whose trust policy lets `ecs-tasks.amazonaws.com` assume them (else ECS cannot
//! start the task, or the task gets no credentials).
//!
//! IAM's GetRole returns the trust policy URL-encoded (RFC 3986); it is decoded, parsed as JSON
//! and searched for an `Allow` statement with the principal `Service: ecs-tasks.amazonaws.com`
//! (or `*`) and the action `sts:AssumeRole` (or `sts:*`, `*`).

use serde_json::Value;

use super::{Facts, Finding, Lookup, Needs};
use crate::spec::Spec;

/// The principal ECS tasks assume roles as.
pub const ECS_TASKS: &str = "ecs-tasks.amazonaws.com";

/// The roles of a spec: (field, ARN).
pub fn of(spec: &Spec) -> Vec<(&'static str, &str)> {
    let Spec::Service(s) = spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(a) = &s.spec.execution_role_arn {
        out.push(("spec.executionRoleArn", a.as_str()));
    }
    if let Some(a) = &s.spec.task_role_arn {
        out.push(("spec.taskRoleArn", a.as_str()));
    }
    out
}

/// The role name of an IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME`).
pub fn role_name(arn: &str) -> Result<&str, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [arn_, partition, service, region, account, resource] = parts[..] else {
        return Err("is not an ARN (arn:aws:iam::ACCOUNT:role/NAME)".into());
    };
    if arn_ != "arn" || partition.is_empty() || service != "iam" || !region.is_empty() {
        return Err("is not an IAM ARN (arn:aws:iam::ACCOUNT:role/NAME)".into());
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("has the account `{account}`, not 12 digits"));
    }
    let Some(path_name) = resource.strip_prefix("role/") else {
        return Err(format!("names `{resource}`, not a role (role/NAME)"));
    };
    let name = path_name.rsplit('/').next().unwrap_or_default();
    let ok = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty() || name.len() > 64 || !name.chars().all(ok) {
        return Err(format!(
            "has the role name `{name}`; names are 1-64 letters, digits and +=,.@_-"
        ));
    }
    Ok(name)
}

/// Percent-decoding (`%7B` -> `{`); `+` stays `+` (RFC 3986, as IAM encodes).
pub fn url_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 once decoded".to_string())
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Whether a trust policy (URL-encoded or plain JSON) lets ECS tasks assume the role.
/// `Err`: the document is not a policy.
pub fn trusts_ecs_tasks(document: &str) -> Result<bool, String> {
    let text = url_decode(document)?;
    let policy: Value =
        serde_json::from_str(&text).map_err(|e| format!("the trust policy is not JSON: {e}"))?;
    let statements = match &policy["Statement"] {
        Value::Array(a) => a.iter().collect::<Vec<_>>(),
        s @ Value::Object(_) => vec![s],
        _ => return Err("the trust policy has no Statement".into()),
    };
    Ok(statements.iter().any(|s| {
        let allow = s["Effect"] == "Allow";
        let action = strings(&s["Action"]).iter().any(|a| {
            matches!(
                a.to_ascii_lowercase().as_str(),
                "sts:assumerole" | "sts:*" | "*"
            )
        });
        let principal = match &s["Principal"] {
            Value::String(p) => p == "*",
            p => strings(&p["Service"]).contains(&ECS_TASKS) || strings(&p["AWS"]).contains(&"*"),
        };
        allow && action && principal
    }))
}

pub fn needs(spec: &Spec, n: &mut Needs) {
    for (_, arn) in of(spec) {
        if role_name(arn).is_ok() {
            n.roles.insert(arn.to_string());
        }
    }
}

pub fn check(spec: &Spec, facts: &Facts, out: &mut Vec<Finding>) {
    let key = spec.key();
    for (field, arn) in of(spec) {
        let name = match role_name(arn) {
            Ok(n) => n,
            Err(why) => {
                out.push(Finding::error(
                    &key,
                    field,
                    format!("`{arn}` {why}"),
                    "write the role's full ARN, as IAM shows it",
                ));
                continue;
            }
        };
        match Facts::get(&facts.roles, arn) {
            Lookup::Missing => out.push(Finding::error(
                &key,
                field,
                format!("the IAM role `{name}` ({arn}) does not exist"),
                format!("create the role with a trust policy for {ECS_TASKS}, or fix the ARN"),
            )),
            Lookup::Unknown(why) => out.push(Finding::unchecked(
                &key,
                field,
                &format!("the IAM role `{name}`"),
                &why,
            )),
            Lookup::Found(role) if role.arn != arn => out.push(Finding::error(
                &key,
                field,
                format!(
                    "the IAM role `{name}` exists as {}, not {arn} (another path or account)",
                    role.arn
                ),
                format!("write {}", role.arn),
            )),
            Lookup::Found(role) => match trusts_ecs_tasks(&role.trust_policy) {
                Ok(true) => {}
                Ok(false) => out.push(Finding::error(
                    &key,
                    field,
                    format!(
                        "the IAM role `{name}` does not trust {ECS_TASKS}: ECS cannot assume it"
                    ),
                    format!(
                        "add to its trust policy: {{\"Effect\": \"Allow\", \"Principal\": \
                         {{\"Service\": \"{ECS_TASKS}\"}}, \"Action\": \"sts:AssumeRole\"}}"
                    ),
                )),
                Err(why) => out.push(Finding::error(
                    &key,
                    field,
                    format!("the IAM role `{name}`: {why}"),
                    format!("give it a trust policy that allows {ECS_TASKS} sts:AssumeRole"),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_support::service;
    use crate::verify::{Role, Severity};

    const ARN: &str = "arn:aws:iam::123456789012:role/ecs/exec";

    #[test]
    fn role_names_come_from_the_last_path_segment_of_well_formed_arns() {
        assert_eq!(role_name(ARN), Ok("exec"));
        assert_eq!(role_name("arn:aws:iam::123456789012:role/r"), Ok("r"));
        assert!(role_name("arn:aws:iam::1234:role/r")
            .unwrap_err()
            .contains("12 digits"));
        assert!(role_name("arn:aws:iam::123456789012:user/u")
            .unwrap_err()
            .contains("not a role"));
        assert!(role_name("arn:aws:s3:::bucket").is_err());
        assert!(role_name("exec").is_err());
    }

    #[test]
    fn url_encoded_trust_policies_are_decoded_before_reading() {
        // As GetRole returns it (AWS API reference, GetRole example response).
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%5B%22ecs-tasks.amazonaws.com%22%5D%7D%2C%22Action%22%3A%5B%22sts%3AAssumeRole%22%5D%7D%5D%7D";
        assert_eq!(trusts_ecs_tasks(encoded), Ok(true));
        assert!(url_decode("%7").is_err());
        assert_eq!(url_decode("a+b%20c").as_deref(), Ok("a+b c"));
    }

    #[test]
    fn only_an_allow_of_sts_assume_role_to_ecs_tasks_counts_as_trust() {
        let p = |effect: &str, principal: &str, action: &str| {
            format!(
                r#"{{"Statement": {{"Effect": "{effect}", "Principal": {principal}, "Action": "{action}"}}}}"#
            )
        };
        let ecs = r#"{"Service": "ecs-tasks.amazonaws.com"}"#;
        assert_eq!(
            trusts_ecs_tasks(&p("Allow", ecs, "sts:AssumeRole")),
            Ok(true)
        );
        assert_eq!(
            trusts_ecs_tasks(&p("Deny", ecs, "sts:AssumeRole")),
            Ok(false)
        );
        assert_eq!(
            trusts_ecs_tasks(&p(
                "Allow",
                r#"{"Service": "ec2.amazonaws.com"}"#,
                "sts:AssumeRole"
            )),
            Ok(false)
        );
        assert_eq!(
            trusts_ecs_tasks(&p("Allow", ecs, "sts:TagSession")),
            Ok(false)
        );
        assert!(trusts_ecs_tasks("not json").is_err());
    }

    fn with_role(role: Lookup<Role>) -> Vec<Finding> {
        let spec = service(&format!(
            "  container: {{name: c, image: nginx, cpu: 256, memory: 512}}\n  executionRoleArn: {ARN}\n"
        ));
        let mut facts = Facts::default();
        facts.roles.insert(ARN.to_string(), role);
        let mut out = Vec::new();
        check(&spec, &facts, &mut out);
        out
    }

    #[test]
    fn a_missing_role_an_untrusting_role_and_another_arn_are_errors_on_the_field() {
        let f = with_role(Lookup::Missing);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].field, "spec.executionRoleArn");
        assert!(f[0].problem.contains("does not exist"), "{f:?}");
        let untrusting = Role {
            arn: ARN.into(),
            trust_policy: r#"{"Statement": []}"#.into(),
        };
        let f = with_role(Lookup::Found(untrusting));
        assert!(f[0].problem.contains("does not trust ecs-tasks"), "{f:?}");
        let elsewhere = Role {
            arn: "arn:aws:iam::123456789012:role/exec".into(),
            trust_policy: String::new(),
        };
        assert!(with_role(Lookup::Found(elsewhere))[0]
            .problem
            .contains("exists as"));
        let good = Role {
            arn: ARN.into(),
            trust_policy: r#"{"Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#.into(),
        };
        assert!(with_role(Lookup::Found(good)).is_empty());
        assert_eq!(
            with_role(Lookup::Unknown("AccessDenied".into()))[0].severity,
            Severity::Warning
        );
    }
}

//! Secrets: every value of `spec.container.secrets` must be a well-formed SSM parameter ARN
//! (`arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`) or Secrets Manager secret ARN
//! (`arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME[:JSON_KEY:VERSION_STAGE:VERSION_ID]`),
//! and the execution role must be allowed to read it: `ssm:GetParameters` or
//! `secretsmanager:GetSecretValue` on it, as IAM's policy simulator (SimulatePrincipalPolicy)
//! answers for the role's own policies. When the simulator gives no answer (access denied, an
//! endpoint that does not implement it) the finding says it could not be checked.
//!
//! Not checked: KMS permissions for customer-managed keys, resource policies on the secret.

use super::{Access, Facts, Finding, Lookup, Needs};
use crate::spec::yaml::escape_pointer;
use crate::spec::Spec;

/// Where a secret lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Ssm,
    SecretsManager,
}

impl Store {
    /// The IAM action ECS's agent needs to read it with the execution role.
    pub fn action(self) -> &'static str {
        match self {
            Store::Ssm => "ssm:GetParameters",
            Store::SecretsManager => "secretsmanager:GetSecretValue",
        }
    }
}

/// A parsed secret ARN: its store and the ARN of the resource IAM authorises (a Secrets
/// Manager ARN without its JSON key and version suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretArn {
    pub store: Store,
    pub resource: String,
}

fn region_ok(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts.iter().all(|p| !p.is_empty())
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// Parse a secret's value; the error says what is wrong with it.
pub fn parse(value: &str) -> Result<SecretArn, String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return Err(
            "is not an ARN; ECS reads secrets from SSM parameter or Secrets Manager ARNs".into(),
        );
    };
    if arn != "arn" || !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
        return Err("is not an ARN (arn:aws:...)".into());
    }
    let store = match service {
        "ssm" => Store::Ssm,
        "secretsmanager" => Store::SecretsManager,
        other => {
            return Err(format!(
                "is an ARN of `{other}`; secrets come from `ssm` parameters or `secretsmanager` secrets"
            ))
        }
    };
    if !region_ok(region) {
        return Err(format!(
            "has the region `{region}`, not a region name like eu-west-1"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("has the account `{account}`, not 12 digits"));
    }
    let prefix = format!("arn:{partition}:{service}:{region}:{account}:");
    match store {
        Store::Ssm => {
            let Some(name) = resource.strip_prefix("parameter/") else {
                return Err(format!("names `{resource}`, not parameter/NAME"));
            };
            let ok = |c: char| c.is_ascii_alphanumeric() || "_.-/".contains(c);
            if name.is_empty()
                || name.starts_with('/')
                || !name.chars().all(ok)
                || name.contains("//")
            {
                return Err(format!(
                    "has the parameter name `{name}`; names are letters, digits and _.-/ (without a leading / in an ARN)"
                ));
            }
            Ok(SecretArn {
                store,
                resource: format!("{prefix}{resource}"),
            })
        }
        Store::SecretsManager => {
            let Some(rest) = resource.strip_prefix("secret:") else {
                return Err(format!("names `{resource}`, not secret:NAME"));
            };
            let fields: Vec<&str> = rest.split(':').collect();
            if fields.len() != 1 && fields.len() != 4 {
                return Err(format!(
                    "has `{rest}` after secret:; write NAME or NAME:JSON_KEY:VERSION_STAGE:VERSION_ID"
                ));
            }
            let name = fields[0];
            let ok = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
            if name.is_empty() || !name.chars().all(ok) {
                return Err(format!(
                    "has the secret name `{name}`; names are letters, digits and /_+=.@-"
                ));
            }
            Ok(SecretArn {
                store,
                resource: format!("{prefix}secret:{name}"),
            })
        }
    }
}

/// The container's secrets: (field, value).
fn of(spec: &Spec) -> Vec<(String, &str)> {
    let Spec::Service(s) = spec else {
        return Vec::new();
    };
    s.spec
        .container
        .secrets
        .iter()
        .map(|(k, v)| {
            let field = crate::spec::diagnostic::pointer_to_path(&format!(
                "/spec/container/secrets/{}",
                escape_pointer(k)
            ));
            (field, v.as_str())
        })
        .collect()
}

fn execution_role(spec: &Spec) -> Option<&str> {
    match spec {
        Spec::Service(s) => s.spec.execution_role_arn.as_deref(),
        Spec::Cluster(_) => None,
    }
}

pub fn needs(spec: &Spec, n: &mut Needs) {
    let Some(role) = execution_role(spec) else {
        return;
    };
    for (_, value) in of(spec) {
        if let Ok(s) = parse(value) {
            n.access
                .insert((role.to_string(), s.store.action().to_string(), s.resource));
        }
    }
}

/// One evaluation result of SimulatePrincipalPolicy, as the API returns it: the action, the
/// resource it was evaluated for (absent when results are per resource), its decision, and the
/// per-resource decisions (`ResourceSpecificResults`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evaluation {
    pub action: String,
    pub resource: Option<String>,
    pub decision: String,
    pub per_resource: Vec<(String, String)>,
}

/// The decision for (`action`, `resource`) in a simulation's results (pure): the resource's own
/// decision when the results are per resource, else the action's decision when it was
/// evaluated for that resource or for `*`. `None`: the answer does not say.
pub fn decision(results: &[Evaluation], action: &str, resource: &str) -> Option<Access> {
    let r = results
        .iter()
        .find(|e| e.action.eq_ignore_ascii_case(action))?;
    if let Some((_, d)) = r.per_resource.iter().find(|(name, _)| name == resource) {
        return Some(Access {
            decision: d.clone(),
        });
    }
    match r.resource.as_deref() {
        Some(x) if x == resource || x == "*" => Some(Access {
            decision: r.decision.clone(),
        }),
        None if r.per_resource.is_empty() => Some(Access {
            decision: r.decision.clone(),
        }),
        _ => None,
    }
}

pub fn check(spec: &Spec, facts: &Facts, out: &mut Vec<Finding>) {
    let key = spec.key();
    let role = execution_role(spec);
    for (field, value) in of(spec) {
        let secret = match parse(value) {
            Ok(s) => s,
            Err(why) => {
                out.push(Finding::error(
                    &key,
                    &field,
                    format!("`{value}` {why}"),
                    "write arn:aws:ssm:REGION:ACCOUNT:parameter/NAME or \
                     arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME",
                ));
                continue;
            }
        };
        let Some(role) = role else {
            out.push(Finding::error(
                &key,
                &field,
                "the container has secrets but the spec has no executionRoleArn: ECS reads secrets with it",
                "set spec.executionRoleArn to a role allowed to read the secret",
            ));
            continue;
        };
        // A role that is missing or unreadable has its own finding; no simulation was made.
        if !matches!(Facts::get(&facts.roles, role), Lookup::Found(_)) {
            continue;
        }
        let action = secret.store.action();
        let k = (
            role.to_string(),
            action.to_string(),
            secret.resource.clone(),
        );
        match Facts::get(&facts.access, &k) {
            Lookup::Found(a) if a.allowed() => {}
            Lookup::Found(a) => out.push(Finding::error(
                &key,
                &field,
                format!(
                    "the execution role {role} may not read {} ({action}: {})",
                    secret.resource, a.decision
                ),
                format!(
                    "allow {action} on {} in a policy of the execution role",
                    secret.resource
                ),
            )),
            Lookup::Missing => out.push(Finding::unchecked(
                &key,
                &field,
                &format!("whether {role} may read it"),
                "IAM's simulation gave no decision for it",
            )),
            Lookup::Unknown(why) => out.push(Finding::unchecked(
                &key,
                &field,
                &format!("whether the execution role may read it ({action})"),
                &why,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_support::service;
    use crate::verify::{Role, Severity};

    #[test]
    fn ssm_and_secrets_manager_arns_parse_to_the_resource_iam_authorises() {
        let s = parse("arn:aws:ssm:eu-west-1:123456789012:parameter/db/url").unwrap();
        assert_eq!(s.store, Store::Ssm);
        assert_eq!(
            s.resource,
            "arn:aws:ssm:eu-west-1:123456789012:parameter/db/url"
        );
        let m = parse("arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:password::")
            .unwrap();
        assert_eq!(m.store, Store::SecretsManager);
        assert_eq!(
            m.resource,
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf"
        );
        assert_eq!(m.store.action(), "secretsmanager:GetSecretValue");
    }

    #[test]
    fn malformed_secret_arns_say_which_part_is_wrong() {
        let e = |v: &str| parse(v).unwrap_err();
        assert!(e("db-url").contains("not an ARN"));
        assert!(e("arn:aws:s3:eu-west-1:123456789012:bucket").contains("`s3`"));
        assert!(e("arn:aws:ssm:europe:123456789012:parameter/x").contains("region `europe`"));
        assert!(e("arn:aws:ssm:eu-west-1:1234:parameter/x").contains("12 digits"));
        assert!(e("arn:aws:ssm:eu-west-1:123456789012:param/x").contains("parameter/NAME"));
        assert!(e("arn:aws:ssm:eu-west-1:123456789012:parameter//x").contains("parameter name"));
        assert!(e("arn:aws:secretsmanager:eu-west-1:123456789012:secret:a:b").contains("JSON_KEY"));
    }

    #[test]
    fn simulation_decisions_are_read_per_resource_when_the_answer_has_them() {
        // Shapes of SimulatePrincipalPolicy's EvaluationResults (AWS IAM API reference).
        let a = "arn:aws:ssm:eu-west-1:123456789012:parameter/a";
        let b = "arn:aws:ssm:eu-west-1:123456789012:parameter/b";
        let per_resource = vec![Evaluation {
            action: "ssm:GetParameters".into(),
            resource: None,
            decision: "implicitDeny".into(),
            per_resource: vec![
                (a.into(), "allowed".into()),
                (b.into(), "implicitDeny".into()),
            ],
        }];
        assert!(decision(&per_resource, "ssm:GetParameters", a)
            .unwrap()
            .allowed());
        assert!(!decision(&per_resource, "ssm:GetParameters", b)
            .unwrap()
            .allowed());
        assert_eq!(decision(&per_resource, "ssm:GetParameter", a), None);
        let single = vec![Evaluation {
            action: "ssm:GetParameters".into(),
            resource: Some(a.into()),
            decision: "explicitDeny".into(),
            per_resource: vec![],
        }];
        assert_eq!(
            decision(&single, "ssm:GetParameters", a).unwrap().decision,
            "explicitDeny"
        );
        assert_eq!(decision(&single, "ssm:GetParameters", b), None);
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/exec";
    const PARAM: &str = "arn:aws:ssm:eu-west-1:123456789012:parameter/db";

    fn findings(value: &str, access: Option<Lookup<Access>>) -> Vec<Finding> {
        let spec = service(&format!(
            "  container: {{name: c, image: nginx, cpu: 256, memory: 512, secrets: {{DB: \"{value}\"}}}}\n  executionRoleArn: {ROLE}\n"
        ));
        let mut facts = Facts::default();
        facts.roles.insert(
            ROLE.into(),
            Lookup::Found(Role {
                arn: ROLE.into(),
                trust_policy: String::new(),
            }),
        );
        let mut n = Needs::default();
        needs(&spec, &mut n);
        if let Some(a) = access {
            for k in n.access {
                facts.access.insert(k, a.clone());
            }
        }
        let mut out = Vec::new();
        check(&spec, &facts, &mut out);
        out
    }

    #[test]
    fn a_denied_secret_is_an_error_and_an_unanswered_simulation_a_warning() {
        let denied = Lookup::Found(Access {
            decision: "implicitDeny".into(),
        });
        let f = findings(PARAM, Some(denied));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].field, "spec.container.secrets.DB");
        assert!(f[0].fix.contains("ssm:GetParameters"), "{f:?}");
        let allowed = Lookup::Found(Access {
            decision: "allowed".into(),
        });
        assert!(findings(PARAM, Some(allowed)).is_empty());
        let f = findings(PARAM, Some(Lookup::Unknown("not implemented".into())));
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            f[0].problem
                .contains("could not be checked: not implemented"),
            "{f:?}"
        );
        let f = findings("arn:aws:ssm:eu-west-1:123456789012:db", None);
        assert_eq!(f[0].severity, Severity::Error);
    }
}

//! The files that deploy the operator, held to the code: the task role's IAM policy against every
//! AWS call in `operator/src` (found statically, `ecs_operator_tests::aws_actions`), the
//! Dockerfile, the ECS task definition, service and lease table of `manifests/operator/`, and
//! the CI workflow of `manifests/ci/` against the command line as it is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use ecs_operator::cli::{Cli, Command};
use ecs_operator_tests::aws_actions::{self, Scan};
use ecs_operator_tests::{bin, ecs_fixtures, free_addr, http_get, Moto, OperatorProcess};
use serde_json::Value;

fn root() -> PathBuf {
    ecs_operator_tests::workspace_root()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not JSON: {e}"))
}

fn scan() -> Scan {
    aws_actions::scan(&root())
}

const TASK_POLICY: &str = "manifests/operator/iam-policy.json";
const CI_POLICY: &str = "manifests/ci/iam-policy-ci.json";
const TASK_DEFINITION: &str = "manifests/operator/task-definition.json";
const SERVICE: &str = "manifests/operator/service.json";
const LEASE_TABLE: &str = "manifests/operator/lease-table.json";
const WORKFLOW: &str = "manifests/ci/github-actions.yml";

/// Actions the policy grants although no code calls them: AWS checks them on the caller when the
/// operator's own calls make AWS act on its behalf. (action, why)
const IMPLICIT: &[(&str, &str)] = &[
    (
        "sts:AssumeRole",
        "the SDK's assume-role credentials provider (aws_config::sts::AssumeRoleProvider, built \
         in operator/src/resources/scopes.rs) calls it for ClusterSpecs with spec.account; \
         granted only on roles named ecs-operator-target",
    ),
    (
        "iam:PassRole",
        "RegisterTaskDefinition passes the spec's taskRoleArn and executionRoleArn to ECS, and \
         CreateAutoScalingGroup/UpdateAutoScalingGroup pass the instance profile role of the \
         launch template to EC2; granted only with iam:PassedToService = \
         ecs-tasks.amazonaws.com or ec2.amazonaws.com",
    ),
    (
        "ec2:RunInstances",
        "CreateAutoScalingGroup/UpdateAutoScalingGroup with a launch template check that the \
         caller may launch instances from it",
    ),
    (
        "iam:CreateServiceLinkedRole",
        "the first CreateCluster/CreateCapacityProvider (ECS), CreateLoadBalancer (ELB), \
         RegisterScalableTarget (Application Auto Scaling) and CreateAutoScalingGroup (EC2 Auto \
         Scaling) of an account create the service's \
         linked role as the caller; granted only for those iam:AWSServiceName values",
    ),
    (
        "cloudwatch:PutMetricAlarm",
        "PutScalingPolicy with target tracking creates the policy's CloudWatch alarms with the \
         caller's permissions",
    ),
    (
        "cloudwatch:DescribeAlarms",
        "PutScalingPolicy/DeleteScalingPolicy read the target-tracking alarms as the caller",
    ),
    (
        "cloudwatch:DeleteAlarms",
        "DeleteScalingPolicy and policy updates delete the target-tracking alarms as the caller",
    ),
];

/// Actions the code calls that the task role does not get: only the bootstrap (`ecs-operator
/// init`, run by whoever sets the operator up, or `lease-table.json`) needs them.
/// (action, functions allowed to call it, why)
const BOOTSTRAP_ONLY: &[(&str, &[&str], &str)] = &[
    (
        "s3:CreateBucket",
        &["init"],
        "`init` creates the S3 store's bucket; `run` never does",
    ),
    (
        "dynamodb:CreateTable",
        &["ensure_table"],
        "`init` creates the DynamoDB store and lease tables; `run --lease-table` creates the \
         lease table only when it is missing, and on ECS it exists (lease-table.json), so the \
         running operator gets no table creation (a missing table fails its start with AccessDenied)",
    ),
    (
        "dynamodb:UpdateTable",
        &["ensure_table"],
        "`init` enables the stream of an existing DynamoDB store table; the lease table never \
         needs it",
    ),    (
        "sqs:GetQueueUrl",
        &["ensure_queue"],
        "`init --events` finds the events queue",
    ),
    (
        "sqs:CreateQueue",
        &["ensure_queue"],
        "`init --events` creates the events queue; `run` only reads it",
    ),
    (
        "sqs:ListQueueTags",
        &["ensure_queue"],
        "`init --events` checks that an existing queue is this instance's",
    ),
    (
        "sqs:GetQueueAttributes",
        &["ensure_queue"],
        "`init --events` reads the queue's ARN and policy",
    ),
    (
        "sqs:SetQueueAttributes",
        &["ensure"],
        "`init --events` sets the queue policy for the rules",
    ),
    (
        "events:DescribeRule",
        &["ensure_rule"],
        "`init --events` reads its rules",
    ),
    (
        "events:ListTagsForResource",
        &["ensure_rule"],
        "`init --events` checks that an existing rule is this instance's",
    ),
    (
        "events:PutRule",
        &["ensure_rule"],
        "`init --events` creates and corrects its rules",
    ),
    (
        "events:ListTargetsByRule",
        &["ensure_target"],
        "`init --events` reads the rules' targets",
    ),
    (
        "events:PutTargets",
        &["ensure_target"],
        "`init --events` points its rules at the queue",
    ),
    (
        "s3:GetBucketNotification",
        &["ensure_bucket_events"],
        "`init --events` with an S3 store reads the bucket's notification configuration",
    ),
    (
        "s3:PutBucketNotification",
        &["ensure_bucket_events"],
        "`init --events` with an S3 store turns on the bucket's EventBridge notifications",
    ),
];

/// Actions only `ecs-operator verify` calls (`operator/src/verify/`): the pre-flight runs with
/// the credentials of whoever deploys specs (a person, CI), never as the operator's task role,
/// which does not get them. (action, why verify needs it)
const VERIFY_ONLY: &[(&str, &str)] = &[
    (
        "iam:GetRole",
        "reads the execution and task roles and their trust policies",
    ),
    (
        "iam:SimulatePrincipalPolicy",
        "asks IAM whether the execution role may read each secret",
    ),
    (
        "ec2:DescribeSubnets",
        "checks that subnets exist and finds their VPC",
    ),
    (
        "ec2:DescribeSecurityGroups",
        "checks that security groups exist and finds their VPC",
    ),
    (
        "ecr:DescribeImages",
        "checks that an image tag or digest is in its ECR repository",
    ),
];

/// Actions only `ecs-operator rollout` calls (`operator/src/cli/rollout/`): a person runs it
/// with their own credentials to watch, stop or continue a deployment, never as the operator's
/// task role, which does not get them (the controller never stops or continues a deployment).
/// (action, why rollout needs it)
const ROLLOUT_ONLY: &[(&str, &str)] = &[
    (
        "ecs:StopServiceDeployment",
        "`rollout stop --rollback` rolls the deployment in progress back",
    ),
    (
        "ecs:ContinueServiceDeployment",
        "`rollout continue` answers the hooks a paused deployment waits on",
    ),
    (
        "elasticloadbalancing:DescribeTargetHealth",
        "`rollout status` counts the targets of the service's target groups by health",
    ),
];

fn policy_actions(policy: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in policy["Statement"]
        .as_array()
        .expect("Statement is an array")
    {
        let sid = s["Sid"].as_str().unwrap_or("?").to_string();
        let actions: Vec<&Value> = match &s["Action"] {
            Value::String(_) => vec![&s["Action"]],
            Value::Array(a) => a.iter().collect(),
            other => panic!("statement {sid}: Action is {other}"),
        };
        for a in actions {
            out.entry(a.as_str().expect("an action is a string").to_string())
                .or_default()
                .push(sid.clone());
        }
    }
    out
}

// ---- the action scanner -----------------------------------------------------------------------

#[test]
fn the_scanner_finds_every_aws_call_the_operator_makes() {
    let scan = scan();
    assert!(
        scan.problems.is_empty(),
        "the scan cannot be trusted:\n  {}",
        scan.problems.join("\n  ")
    );
    let actions = scan.actions();
    for expected in [
        "ecs:DescribeServices",
        "ecs:RegisterTaskDefinition",
        "ecs:ListTagsForResource",
        "ecr:ListTagsForResource",
        "ecr:PutLifecyclePolicy",
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:DescribeTags",
        "route53:ChangeResourceRecordSets",
        "acm:RequestCertificate",
        "application-autoscaling:PutScalingPolicy",
        "autoscaling:DescribeAutoScalingGroups",
        "s3:GetObject",
        "s3:ListBucket",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:GetRecords",
    ] {
        assert!(
            actions.contains_key(expected),
            "{expected} not found; found: {:?}",
            actions.keys()
        );
    }
    assert!(
        actions.len() >= 80,
        "only {} actions found: {:?}",
        actions.len(),
        actions.keys()
    );
    // Every SDK the operator depends on is used, through a call the scanner resolved.
    for sdk in &scan.sdks {
        assert!(
            scan.calls.iter().any(|c| c.sdk == *sdk),
            "no call through {} found: a dependency without calls, or calls the scanner missed",
            sdk.krate
        );
    }
    // The same operation name on two clients counts for each (ECS and ECR both list tags).
    let ecs_tags = &actions["ecs:ListTagsForResource"];
    let ecr_tags = &actions["ecr:ListTagsForResource"];
    assert!(ecs_tags.iter().all(|c| c.sdk.krate == "aws_sdk_ecs"));
    assert!(ecr_tags.iter().all(|c| c.sdk.krate == "aws_sdk_ecr"));
}

// ---- the task role's policy -------------------------------------------------------------------

#[test]
fn the_iam_policy_grants_every_action_the_code_calls() {
    let scan = scan();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let granted = policy_actions(&json(TASK_POLICY));
    let bootstrap: BTreeSet<&str> = BOOTSTRAP_ONLY.iter().map(|b| b.0).collect();
    let verify_only: BTreeSet<&str> = VERIFY_ONLY.iter().map(|v| v.0).collect();
    let rollout_only: BTreeSet<&str> = ROLLOUT_ONLY.iter().map(|v| v.0).collect();
    let missing: Vec<String> = scan
        .actions()
        .into_iter()
        .filter(|(a, _)| {
            !granted.contains_key(a)
                && !bootstrap.contains(a.as_str())
                && !verify_only.contains(a.as_str())
                && !rollout_only.contains(a.as_str())
        })
        .map(|(a, calls)| {
            let at: Vec<String> = calls.iter().map(|c| c.location()).collect();
            format!("{a}, called at {}", at.join(", "))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{TASK_POLICY} lacks actions the operator calls:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_iam_policy_grants_no_action_the_code_does_not_call() {
    let scan = scan();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let called = scan.actions();
    let implicit: BTreeSet<&str> = IMPLICIT.iter().map(|i| i.0).collect();
    let extra: Vec<String> = policy_actions(&json(TASK_POLICY))
        .into_iter()
        .filter(|(a, _)| !called.contains_key(a) && !implicit.contains(a.as_str()))
        .map(|(a, sids)| format!("{a} (statement {})", sids.join(", ")))
        .collect();
    assert!(
        extra.is_empty(),
        "{TASK_POLICY} grants actions no code calls (remove them, or add them to IMPLICIT with \
         the reason AWS needs them):\n  {}",
        extra.join("\n  ")
    );
    // Each implicit action is granted, with the condition that keeps it narrow.
    let policy = json(TASK_POLICY);
    let statements = policy["Statement"].as_array().unwrap();
    let with = |action: &str| {
        statements
            .iter()
            .find(|s| s["Action"].as_array().unwrap().iter().any(|a| a == action))
            .unwrap_or_else(|| panic!("{action} ({}) is not granted", reason(action)))
    };
    assert_eq!(
        with("iam:PassRole")["Condition"]["StringEquals"]["iam:PassedToService"],
        serde_json::json!([
            "ecs-tasks.amazonaws.com",
            "ec2.amazonaws.com",
            "ecs.amazonaws.com"
        ])
    );
    let names =
        &with("iam:CreateServiceLinkedRole")["Condition"]["StringEquals"]["iam:AWSServiceName"];
    for service in [
        "ecs.amazonaws.com",
        "elasticloadbalancing.amazonaws.com",
        "ecs.application-autoscaling.amazonaws.com",
        "autoscaling.amazonaws.com",
    ] {
        assert!(
            names.as_array().unwrap().iter().any(|n| n == service),
            "{names}"
        );
    }
    assert_eq!(
        with("sts:AssumeRole")["Resource"],
        "arn:aws:iam::*:role/ecs-operator-target"
    );
    for alarm in ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"] {
        let r = with(alarm)["Resource"].as_str().unwrap();
        assert!(r.contains(":alarm:TargetTracking-"), "{alarm}: {r}");
    }
}

fn reason(action: &str) -> &'static str {
    IMPLICIT
        .iter()
        .find(|i| i.0 == action)
        .map(|i| i.1)
        .unwrap_or("")
}

#[test]
fn bootstrap_only_actions_are_called_only_by_init_and_stay_out_of_the_task_role() {
    let scan = scan();
    let called = scan.actions();
    let granted = policy_actions(&json(TASK_POLICY));
    for (action, functions, why) in BOOTSTRAP_ONLY {
        let calls = called
            .get(*action)
            .unwrap_or_else(|| panic!("{action} is no longer called: drop it from BOOTSTRAP_ONLY"));
        for c in calls {
            assert!(
                functions.contains(&c.function.as_str()),
                "{action} is bootstrap-only ({why}) but is called at {}: grant it in {TASK_POLICY} \
                 or move the call",
                c.location()
            );
        }
        assert!(
            !granted.contains_key(*action),
            "{action} is bootstrap-only ({why}); the task role must not have it"
        );
    }
    // The README says who needs them.
    let readme = read("manifests/operator/README.md");
    for (action, _, _) in BOOTSTRAP_ONLY {
        assert!(
            readme.contains(action),
            "README.md does not mention {action}"
        );
    }
}

#[test]
fn verify_only_actions_are_called_only_by_verify_and_stay_out_of_the_task_role() {
    let scan = scan();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let called = scan.actions();
    let granted = policy_actions(&json(TASK_POLICY));
    let in_verify = |c: &&aws_actions::Call| c.file.starts_with("operator/src/verify/");
    for (action, why) in VERIFY_ONLY {
        let calls = called
            .get(*action)
            .unwrap_or_else(|| panic!("{action} is no longer called: drop it from VERIFY_ONLY"));
        for c in calls {
            assert!(
                in_verify(c),
                "{action} is verify-only ({why}) but is called at {}: grant it in {TASK_POLICY} \
                 and drop it from VERIFY_ONLY",
                c.location()
            );
        }
        assert!(
            !granted.contains_key(*action),
            "{action} is verify-only ({why}); the task role must not have it"
        );
    }
    // Every action verify calls is either granted to the operator anyway or listed above.
    let listed: BTreeSet<&str> = VERIFY_ONLY.iter().map(|v| v.0).collect();
    for (action, calls) in &called {
        if calls.iter().all(in_verify) && !granted.contains_key(action) {
            assert!(
                listed.contains(action.as_str()),
                "{action} is called by verify only ({}): add it to VERIFY_ONLY with the reason",
                calls[0].location()
            );
        }
    }
    // The README says what verify needs.
    let readme = read("README.md");
    for (action, _) in VERIFY_ONLY {
        assert!(
            readme.contains(action),
            "README.md does not mention {action}"
        );
    }
}

#[test]
fn rollout_only_actions_are_called_only_by_the_rollout_commands_and_stay_out_of_the_task_role() {
    let scan = scan();
    assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    let called = scan.actions();
    let granted = policy_actions(&json(TASK_POLICY));
    let in_rollout = |c: &&aws_actions::Call| c.file.starts_with("operator/src/cli/rollout/");
    for (action, why) in ROLLOUT_ONLY {
        let calls = called
            .get(*action)
            .unwrap_or_else(|| panic!("{action} is no longer called: drop it from ROLLOUT_ONLY"));
        for c in calls {
            assert!(
                in_rollout(c),
                "{action} is rollout-only ({why}) but is called at {}: grant it in {TASK_POLICY} \
                 and drop it from ROLLOUT_ONLY",
                c.location()
            );
        }
        assert!(
            !granted.contains_key(*action),
            "{action} is rollout-only ({why}); the task role must not have it"
        );
    }
    // Every action rollout calls is either granted to the operator anyway or listed above.
    let listed: BTreeSet<&str> = ROLLOUT_ONLY.iter().map(|v| v.0).collect();
    for (action, calls) in &called {
        if calls.iter().all(in_rollout) && !granted.contains_key(action) {
            assert!(
                listed.contains(action.as_str()),
                "{action} is called by rollout only ({}): add it to ROLLOUT_ONLY with the reason",
                calls[0].location()
            );
        }
    }
    // The README says what rollout needs.
    let readme = read("README.md");
    for (action, _) in ROLLOUT_ONLY {
        assert!(
            readme.contains(action),
            "README.md does not mention {action}"
        );
    }
}

/// The task policy's statements a target account's role does not need: the store, the lease,
/// the events queue and the assuming itself.
const OPERATOR_ACCOUNT_ONLY: &[&str] = &[
    "StoreS3List",
    "StoreS3ReadSpecs",
    "StoreS3Status",
    "StoreDynamoDbRead",
    "StoreDynamoDbStatus",
    "StoreDynamoDbStream",
    "LeaderElection",
    "EventsQueue",
    "AssumeTargetAccountRoles",
];

#[test]
fn the_target_account_role_trusts_only_the_task_role_with_the_external_id_and_grants_the_reconcile_statements_in_any_region(
) {
    let role = json("manifests/operator/target-account-role.json");
    let task = json(TASK_DEFINITION);
    let trust = &role["AssumeRolePolicyDocument"]["Statement"];
    assert_eq!(trust.as_array().unwrap().len(), 1, "{trust}");
    let t = &trust[0];
    assert_eq!(t["Effect"], "Allow");
    assert_eq!(t["Action"], "sts:AssumeRole");
    assert_eq!(t["Principal"]["AWS"], task["taskRoleArn"]);
    assert_eq!(
        t["Condition"]["StringEquals"]["sts:ExternalId"],
        "EXTERNAL_ID"
    );
    // The role's name is the one the task policy may assume.
    let policy = json(TASK_POLICY);
    let assume = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "AssumeTargetAccountRoles")
        .expect("the task role may assume target roles");
    assert_eq!(
        assume["Resource"],
        format!("arn:aws:iam::*:role/{}", role["RoleName"].as_str().unwrap())
    );
    // Permissions: the task policy's reconcile statements, in the target account, any region.
    let expected: Vec<Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !OPERATOR_ACCOUNT_ONLY.contains(&s["Sid"].as_str().unwrap()))
        .map(|s| {
            let text = s
                .to_string()
                .replace(":REGION:", ":*:")
                .replace("ACCOUNT_ID", "TARGET_ACCOUNT_ID");
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    assert_eq!(
        role["PolicyDocument"]["Statement"].as_array().unwrap(),
        &expected,
        "target-account-role.json drifted from iam-policy.json"
    );
    let readme = read("manifests/operator/README.md");
    assert!(readme.contains("target-account-role.json"));
}

#[test]
fn the_iam_policy_is_well_formed_and_scoped_to_the_store_lease_table_and_instance_of_the_task() {
    let policy = json(TASK_POLICY);
    assert_eq!(policy["Version"], "2012-10-17");
    let statements = policy["Statement"].as_array().unwrap();
    let mut sids = BTreeSet::new();
    for s in statements {
        let sid = s["Sid"].as_str().expect("every statement has a Sid");
        assert!(sids.insert(sid), "Sid {sid} twice");
        assert!(
            sid.chars().all(|c| c.is_ascii_alphanumeric()),
            "Sid {sid}: IAM allows [A-Za-z0-9] only"
        );
        assert_eq!(s["Effect"], "Allow", "{sid}");
        for a in s["Action"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            assert!(!a.contains('*'), "{sid}: wildcard action {a}");
        }
        assert!(!s["Resource"].is_null(), "{sid}: no Resource");
    }
    // Inline role policies may hold 10,240 characters, whitespace not counted.
    let size = read(TASK_POLICY)
        .chars()
        .filter(|c| !c.is_whitespace())
        .count();
    assert!(
        size <= 10_240,
        "{size} characters: too big for an inline role policy"
    );
    // README explains every statement.
    let readme = read("manifests/operator/README.md");
    for sid in &sids {
        assert!(
            readme.contains(&format!("`{sid}`")),
            "README.md does not explain statement {sid}"
        );
    }

    // The store, the lease table and the instance are those of the task definition.
    let env = task_env();
    let store = &env["ECS_OPERATOR_STORE"];
    let (bucket, prefix) = store
        .strip_prefix("s3://")
        .and_then(|s| s.split_once('/'))
        .expect("the task definition's store is s3://BUCKET/PREFIX");
    let resources = |sid: &str| -> Vec<String> {
        let s = statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}"));
        match &s["Resource"] {
            Value::String(r) => vec![r.clone()],
            Value::Array(a) => a.iter().map(|r| r.as_str().unwrap().to_string()).collect(),
            other => panic!("{sid}: Resource {other}"),
        }
    };
    assert_eq!(resources("StoreS3List"), [format!("arn:aws:s3:::{bucket}")]);
    assert_eq!(
        resources("StoreS3ReadSpecs"),
        [format!("arn:aws:s3:::{bucket}/{prefix}/*")]
    );
    // Status lives beside the prefix (`.ecs-operator/PREFIX/`), never under it.
    assert_eq!(
        resources("StoreS3Status"),
        [format!("arn:aws:s3:::{bucket}/.ecs-operator/{prefix}/*")]
    );
    // The two listings the store makes (specs, status) match the `s3:prefix` condition, with
    // the prefixes as the store code builds them.
    let ecs_operator::store::StoreUrl::S3 { prefix: listed, .. } =
        ecs_operator::store::StoreUrl::parse(store).unwrap()
    else {
        unreachable!()
    };
    let status_listing = format!("{}{listed}status/", ecs_operator::store::STATUS_ROOT);
    let list = statements
        .iter()
        .find(|s| s["Sid"] == "StoreS3List")
        .unwrap();
    let patterns: Vec<&str> = list["Condition"]["StringLike"]["s3:prefix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for request in [listed.as_str(), status_listing.as_str()] {
        assert!(
            patterns.iter().any(|p| p
                .strip_suffix('*')
                .is_some_and(|head| request.starts_with(head))),
            "a ListObjectsV2 with prefix `{request}` is not allowed by {patterns:?}"
        );
    }
    let lease = &env["ECS_OPERATOR_LEASE_TABLE"];
    assert!(
        resources("LeaderElection")[0].ends_with(&format!(":table/{lease}")),
        "{:?}",
        resources("LeaderElection")
    );
    // Deletions only of what carries this instance's managed-by tag.
    let instance = &env["ECS_OPERATOR_INSTANCE"];
    let mut deletes = 0;
    for s in statements {
        let sid = s["Sid"].as_str().unwrap();
        let deleting = s["Action"].as_array().unwrap().iter().any(|a| {
            let a = a.as_str().unwrap();
            let op = a.split(':').nth(1).unwrap();
            op.starts_with("Delete")
                && !a.starts_with("dynamodb:")
                && !a.starts_with("s3:")
                && !a.starts_with("cloudwatch:")
                && !a.starts_with("application-autoscaling:")
                && !a.starts_with("ecr:DeleteLifecyclePolicy")
        });
        if deleting {
            deletes += 1;
            assert_eq!(
                s["Condition"]["StringEquals"]["aws:ResourceTag/ecs-operator.io/managed-by"],
                instance.as_str(),
                "{sid} deletes without the managed-by condition"
            );
        }
    }
    assert!(deletes >= 4, "{deletes} deleting statements");
}

#[test]
fn the_ci_policy_grants_sync_only_store_actions_the_code_calls() {
    let policy = json(CI_POLICY);
    assert_eq!(policy["Version"], "2012-10-17");
    let scan = scan();
    let called = scan.actions();
    let actions = policy_actions(&policy);
    for a in actions.keys() {
        assert!(called.contains_key(a), "{CI_POLICY}: {a} is not called");
        assert!(
            a.starts_with("s3:"),
            "{CI_POLICY}: {a}: CI needs the store only"
        );
    }
    for needed in [
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
    ] {
        assert!(actions.contains_key(needed), "{CI_POLICY} lacks {needed}");
    }
}

// ---- the image --------------------------------------------------------------------------------

struct Stage {
    from: String,
    name: Option<String>,
    /// (INSTRUCTION, arguments), continuation lines joined.
    steps: Vec<(String, String)>,
}

fn dockerfile() -> Vec<Stage> {
    let text = read("Dockerfile");
    let mut logical: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(t);
            if !current.trim().is_empty() {
                logical.push(current.trim().to_string());
            }
            current.clear();
        }
    }
    let mut stages: Vec<Stage> = Vec::new();
    for l in logical {
        let (instr, args) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let instr = instr.to_ascii_uppercase();
        let args = args.trim().to_string();
        if instr == "FROM" {
            let words: Vec<&str> = args.split_whitespace().collect();
            let name = (words.len() >= 3 && words[1].eq_ignore_ascii_case("as"))
                .then(|| words[2].to_string());
            stages.push(Stage {
                from: words[0].to_string(),
                name,
                steps: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.steps.push((instr, args));
        }
    }
    stages
}

impl Stage {
    fn last(&self, instr: &str) -> Option<&str> {
        self.steps
            .iter()
            .rev()
            .find(|(i, _)| i == instr)
            .map(|(_, a)| a.as_str())
    }
}

/// The numeric `uid[:gid]` of the final stage's USER.
fn image_user() -> String {
    let stages = dockerfile();
    stages.last().unwrap().last("USER").unwrap().to_string()
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_only_the_binary_as_a_non_root_user() {
    let stages = dockerfile();
    assert!(
        stages.len() >= 2,
        "a multi-stage build: {} stage(s)",
        stages.len()
    );
    let builder = &stages[0];
    let builder_name = builder.name.as_deref().expect("the builder stage is named");
    let build = builder
        .steps
        .iter()
        .find(|(i, a)| i == "RUN" && a.contains("cargo build"))
        .expect("the builder runs cargo build");
    for flag in ["--release", "--locked", "-p ecs-operator"] {
        assert!(
            build.1.contains(flag),
            "cargo build without {flag}: {}",
            build.1
        );
    }

    let runtime = stages.last().unwrap();
    assert!(
        runtime.from.contains("distroless") || runtime.from.contains("slim"),
        "a slim runtime base: {}",
        runtime.from
    );
    // Only the binary comes in, from the builder.
    let copies: Vec<&str> = runtime
        .steps
        .iter()
        .filter(|(i, _)| i == "COPY" || i == "ADD")
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(
        copies[0].starts_with(&format!("--from={builder_name} ")),
        "{}",
        copies[0]
    );
    assert!(
        copies[0].ends_with(" /usr/local/bin/ecs-operator"),
        "{}",
        copies[0]
    );
    assert!(
        !runtime.steps.iter().any(|(i, _)| i == "RUN"),
        "no RUN in the runtime stage"
    );

    let user = image_user();
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric"));
    assert_ne!(uid, 0, "USER is root");

    let exec = |instr: &str| -> Vec<String> {
        let a = runtime.last(instr).unwrap_or_else(|| panic!("no {instr}"));
        serde_json::from_str(a)
            .unwrap_or_else(|_| panic!("{instr} is not in exec (JSON) form: {a}"))
    };
    assert_eq!(exec("ENTRYPOINT"), ["/usr/local/bin/ecs-operator"]);
    assert_eq!(exec("CMD"), ["run"]);
    // The exposed port is the one `run` serves on and the health check reads.
    let expose = runtime.last("EXPOSE").expect("EXPOSE");
    let env = runtime.last("ENV").expect("ENV");
    let addr = env
        .strip_prefix("ECS_OPERATOR_METRICS_ADDR=")
        .expect("ENV ECS_OPERATOR_METRICS_ADDR=...");
    assert_eq!(port_of(addr), expose.parse::<u16>().unwrap());
    let hc = runtime.last("HEALTHCHECK").expect("HEALTHCHECK");
    assert!(
        hc.contains(r#"CMD ["/usr/local/bin/ecs-operator", "healthcheck"]"#),
        "{hc}"
    );

    let ignore = read(".dockerignore");
    for entry in ["target", ".venv", ".git"] {
        assert!(
            ignore.lines().any(|l| l.trim() == entry),
            ".dockerignore lacks {entry}"
        );
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("{addr} has no port"))
}

// ---- the task definition, service and lease table ---------------------------------------------

fn container() -> Value {
    let td = json(TASK_DEFINITION);
    let cs = td["containerDefinitions"].as_array().unwrap();
    assert_eq!(cs.len(), 1, "one container");
    cs[0].clone()
}

fn task_env() -> BTreeMap<String, String> {
    container()["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["value"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The environment variables `run` takes its flags from (its clap `env = ...`), plus those the
/// binary's entry point reads directly.
fn variables_run_reads() -> BTreeSet<String> {
    let cli = Cli::command();
    let run = cli
        .get_subcommands()
        .find(|c| c.get_name() == "run")
        .expect("a run subcommand");
    let mut out: BTreeSet<String> = run
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    let main = read("operator/src/cli/mod.rs");
    for part in main.split("env::var(\"").skip(1) {
        if let Some(name) = part.split('"').next() {
            out.insert(name.to_string());
        }
    }
    out
}

#[tokio::test]
async fn the_task_definition_runs_the_image_as_the_chart_does_with_health_logs_and_a_read_only_root(
) {
    let td = json(TASK_DEFINITION);
    assert_eq!(td["family"], "ecs-operator");
    assert_eq!(td["networkMode"], "awsvpc");
    assert!(td["requiresCompatibilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == "FARGATE"));
    for role in ["taskRoleArn", "executionRoleArn"] {
        let arn = td[role].as_str().unwrap_or_else(|| panic!("no {role}"));
        assert!(
            arn.starts_with("arn:aws:iam::") && arn.contains(":role/"),
            "{arn}"
        );
    }
    let (cpu, memory): (u32, u32) = (
        td["cpu"].as_str().unwrap().parse().unwrap(),
        td["memory"].as_str().unwrap().parse().unwrap(),
    );
    assert!(cpu >= 256 && memory >= 512, "{cpu}/{memory}");

    let c = container();
    assert_eq!(c["essential"], true);
    assert_eq!(c["readonlyRootFilesystem"], true);
    assert_eq!(c["user"], image_user(), "the task runs as the image's user");
    assert_eq!(c["command"], serde_json::json!(["run"]));

    // Only variables `run` reads, the four the chart sets among them.
    let env = task_env();
    let reads = variables_run_reads();
    for name in env.keys() {
        if name.starts_with("ECS_OPERATOR_") {
            assert!(
                reads.contains(name),
                "{name} is not read by `run` ({reads:?})"
            );
        } else {
            assert!(
                name == "RUST_LOG" || name.starts_with("AWS_"),
                "{name}: not a variable the operator or the AWS SDK reads"
            );
        }
    }
    let chart = ecs_operator_tests::cli(
        &[
            "render",
            root().join("charts/ecs-operator").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(chart.code, 0, "{chart:?}");
    for name in [
        "ECS_OPERATOR_STORE",
        "ECS_OPERATOR_LEASE_TABLE",
        "ECS_OPERATOR_METRICS_ADDR",
        "ECS_OPERATOR_INSTANCE",
    ] {
        assert!(
            env.contains_key(name),
            "the task definition does not set {name}"
        );
        assert!(chart.stdout.contains(name), "the chart does not set {name}");
    }

    // The metrics port: served, mapped, and health-checked.
    let port = port_of(&env["ECS_OPERATOR_METRICS_ADDR"]);
    let mappings = c["portMappings"].as_array().unwrap();
    assert_eq!(mappings.len(), 1);
    assert_eq!(mappings[0]["containerPort"], port);
    assert_eq!(mappings[0]["protocol"], "tcp");
    let hc = &c["healthCheck"];
    let command: Vec<&str> = hc["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(command[0], "CMD", "exec form: the image has no shell");
    assert_eq!(
        command[1], "/usr/local/bin/ecs-operator",
        "the image's binary"
    );
    let parsed = Cli::try_parse_from(&command[1..])
        .unwrap_or_else(|e| panic!("the health check is not a valid command: {e}"));
    match parsed.command {
        Command::Healthcheck(a) => {
            assert_eq!(port_of(&a.addr), port, "the health check's port");
            assert_eq!(a.path, "/healthz");
            assert!(a.timeout.as_secs() < hc["timeout"].as_u64().unwrap());
        }
        other => panic!("the health check runs {other:?}"),
    }
    assert!(hc["startPeriod"].as_u64().unwrap() >= 10);

    let logs = &c["logConfiguration"];
    assert_eq!(logs["logDriver"], "awslogs");
    for option in ["awslogs-group", "awslogs-region", "awslogs-stream-prefix"] {
        assert!(
            logs["options"][option]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "awslogs option {option}"
        );
    }

    // SIGTERM leaves `run` its whole shutdown grace (and the lease release) before SIGKILL.
    let defaults =
        Cli::try_parse_from(["ecs-operator", "run", "--store", "file:///specs"]).unwrap();
    let Command::Run(run) = defaults.command else {
        unreachable!()
    };
    let stop = c["stopTimeout"].as_u64().expect("stopTimeout");
    assert!(
        stop >= run.shutdown_grace.as_secs() + 5 && stop <= 120,
        "stopTimeout {stop} s against a shutdown grace of {:?}",
        run.shutdown_grace
    );
}

#[test]
fn the_service_keeps_two_replicas_in_two_zones_and_never_fewer_than_one_running() {
    let s = json(SERVICE);
    assert_eq!(s["taskDefinition"], json(TASK_DEFINITION)["family"]);
    let desired = s["desiredCount"].as_u64().unwrap();
    assert_eq!(desired, 2);
    let subnets: BTreeSet<&str> = s["networkConfiguration"]["awsvpcConfiguration"]["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        subnets.len() >= 2,
        "two subnets (in two zones): {subnets:?}"
    );
    assert_eq!(
        s["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"],
        "DISABLED"
    );
    let d = &s["deploymentConfiguration"];
    let min = d["minimumHealthyPercent"].as_u64().unwrap();
    let max = d["maximumPercent"].as_u64().unwrap();
    // ECS keeps ceil(desired * min / 100) running during a deployment.
    assert!(
        (desired * min).div_ceil(100) >= 1,
        "min {min}% of {desired}"
    );
    assert!(
        max >= 100 + min.min(100) / 2,
        "max {max}% leaves no room to roll"
    );
    assert_eq!(d["deploymentCircuitBreaker"]["enable"], true);
    assert_eq!(d["deploymentCircuitBreaker"]["rollback"], true);
    // On Fargate the zones come from the subnets; a placement strategy is an EC2 thing.
    if s["launchType"] == "FARGATE" {
        assert!(s.get("placementStrategy").is_none());
    } else {
        let spread = s["placementStrategy"][0].clone();
        assert_eq!(spread["field"], "attribute:ecs.availability-zone");
    }
}

#[test]
fn the_lease_table_has_the_key_the_lease_code_uses() {
    let t = json(LEASE_TABLE);
    let key = ecs_operator::store::dynamodb::LEASE_KEY;
    assert_eq!(
        t["KeySchema"],
        serde_json::json!([{"AttributeName": key, "KeyType": "HASH"}])
    );
    assert_eq!(
        t["AttributeDefinitions"],
        serde_json::json!([{"AttributeName": key, "AttributeType": "S"}])
    );
    assert_eq!(t["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        t["TableName"],
        task_env()["ECS_OPERATOR_LEASE_TABLE"].as_str()
    );
}

// ---- the CI workflow --------------------------------------------------------------------------

fn yaml_to_json(y: &yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(Value::String(s.clone())),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Null | Yaml::BadValue => Value::Null,
        Yaml::Alias(_) => panic!("aliases are not used in workflows"),
    }
}

fn yaml_file(rel: &str) -> Value {
    let docs = yaml_rust2::YamlLoader::load_from_str(&read(rel))
        .unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"));
    assert_eq!(docs.len(), 1, "{rel}: one document");
    yaml_to_json(&docs[0])
}

/// Each combination of a job's matrix (one empty combination without a matrix).
fn matrix(job: &Value) -> Vec<BTreeMap<String, String>> {
    let m = &job["strategy"]["matrix"];
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string())
    };
    if let Some(include) = m["include"].as_array() {
        return include
            .iter()
            .map(|c| {
                c.as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v)))
                    .collect()
            })
            .collect();
    }
    let mut out = vec![BTreeMap::new()];
    if let Some(axes) = m.as_object() {
        for (k, values) in axes {
            let values = values.as_array().expect("a matrix axis is a list");
            out = out
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(k.clone(), text(v));
                        c
                    })
                })
                .collect();
        }
    }
    out
}

/// `${{ matrix.x }}` and `${{ runner.temp }}` filled in; other expressions become `EXPR`.
fn expand(text: &str, combo: &BTreeMap<String, String>, temp: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("a closed expression") + start;
        let expr = rest[start + 3..end].trim();
        let value = if let Some(k) = expr.strip_prefix("matrix.") {
            combo
                .get(k)
                .unwrap_or_else(|| panic!("matrix.{k} is not in the matrix {combo:?}"))
                .clone()
        } else if expr == "runner.temp" {
            temp.to_string()
        } else {
            "EXPR".to_string()
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Shell words of one command line (quotes removed), and the file of a `>` redirection.
fn words(line: &str) -> (Vec<String>, Option<String>) {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut has = false;
    for ch in line.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                has = true;
            }
            (None, c) if c.is_whitespace() => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    let mut redirect = None;
    if let Some(i) = out.iter().position(|w| w == ">") {
        redirect = out.get(i + 1).cloned();
        out.truncate(i);
    }
    (out, redirect)
}

/// Command lines of a step's `run` script.
fn lines(script: &str) -> Vec<String> {
    script
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Every `ecs-operator` invocation of the workflow: (job, matrix combination, words, redirect).
type Invocation = (
    String,
    BTreeMap<String, String>,
    Vec<String>,
    Option<String>,
);

fn invocations(wf: &Value, temp: &str) -> Vec<Invocation> {
    let mut out = Vec::new();
    for (name, job) in wf["jobs"].as_object().unwrap() {
        for combo in matrix(job) {
            for step in job["steps"].as_array().unwrap() {
                let Some(script) = step["run"].as_str() else {
                    continue;
                };
                for line in lines(&expand(script, &combo, temp)) {
                    let (w, redirect) = words(&line);
                    if w.first().is_some_and(|c| c == "ecs-operator") {
                        out.push((name.clone(), combo.clone(), w, redirect));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_ci_workflow_uses_only_commands_and_flags_the_cli_has() {
    let wf = yaml_file(WORKFLOW);
    let all = invocations(&wf, "/tmp/runner");
    assert!(all.len() >= 6, "{all:?}");
    let mut commands = BTreeSet::new();
    for (job, combo, w, _) in &all {
        let parsed = Cli::try_parse_from(w).unwrap_or_else(|e| {
            panic!(
                "job {job} {combo:?}: `{}` is not a valid command line:\n{e}",
                w.join(" ")
            )
        });
        commands.insert(
            format!("{:?}", parsed.command)
                .split('(')
                .next()
                .unwrap()
                .to_string(),
        );
    }
    for needed in ["Render", "Validate", "Sync"] {
        assert!(commands.contains(needed), "no {needed}: {commands:?}");
    }
    // The install step builds the binary this repository defines.
    let installs: Vec<String> = wf["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|j| j["steps"].as_array().unwrap().clone())
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .filter(|r| r.starts_with("cargo install"))
        .collect();
    assert!(!installs.is_empty());
    for i in installs {
        let (w, _) = words(&i);
        let path = &w[w.iter().position(|x| x == "--path").unwrap() + 1];
        let manifest = read(&format!("{path}/Cargo.toml"));
        assert!(manifest.contains("name = \"ecs-operator\""), "{path}");
        assert!(w.iter().any(|x| x == "--locked"));
    }
}

#[test]
fn the_ci_workflow_renders_and_validates_every_environment_as_written() {
    let wf = yaml_file(WORKFLOW);
    let on = &wf["on"];
    assert!(on.get("pull_request").is_some(), "runs on pull requests");
    let validate = &wf["jobs"]["validate"];
    assert!(
        validate.get("if").is_none(),
        "the validate job runs on every event"
    );
    // No AWS access in the pull-request job.
    assert!(validate["permissions"]["id-token"].is_null());
    assert!(!validate["steps"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["uses"]
            .as_str()
            .is_some_and(|u| u.contains("configure-aws-credentials"))));

    let combos = matrix(validate);
    assert!(combos.len() >= 2, "{combos:?}");
    for combo in combos {
        // Run the job's script lines as written: mkdir, and every ecs-operator command (the
        // binary under test) with its output redirection; anything else is the install step.
        let temp = tempfile::tempdir().unwrap();
        let t = temp.path().to_str().unwrap();
        let mut validated = Vec::new();
        for step in validate["steps"].as_array().unwrap() {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            for line in lines(&expand(script, &combo, t)) {
                let (w, redirect) = words(&line);
                match w[0].as_str() {
                    "mkdir" => {
                        for d in w[1..].iter().filter(|a| !a.starts_with('-')) {
                            std::fs::create_dir_all(d).unwrap();
                        }
                    }
                    "ecs-operator" => {
                        let args: Vec<&str> = w[1..].iter().map(String::as_str).collect();
                        let out = bin(&args, &root(), &[]);
                        assert_eq!(out.code, 0, "{combo:?}: `{line}`: {out:?}");
                        if let Some(file) = redirect {
                            std::fs::write(&file, &out.stdout).unwrap();
                        }
                        if args[0] == "validate" {
                            validated.extend(args[1..].iter().map(|a| a.to_string()));
                        }
                    }
                    "cargo" => {}
                    other => panic!("the emulation does not know `{other}` ({line})"),
                }
            }
        }
        let env = &combo["env"];
        let rendered = Path::new(t).join("rendered").join(env);
        assert!(
            validated.iter().any(|v| Path::new(v) == rendered),
            "{combo:?}: the rendered specs are not validated: {validated:?}"
        );
        assert!(validated.iter().any(|v| v == "manifests/examples"));
        let files = std::fs::read_dir(&rendered).unwrap().count();
        assert!(files >= 2, "{combo:?}: {files} rendered files");
    }
}

#[test]
fn the_ci_workflow_syncs_with_prune_on_main_only_with_oidc_credentials_into_the_operators_store() {
    let wf = yaml_file(WORKFLOW);
    assert!(wf["on"]["push"]["branches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|b| b == "main"));
    let sync = &wf["jobs"]["sync"];
    let cond = sync["if"].as_str().expect("the sync job has a condition");
    assert!(
        cond.contains("github.event_name == 'push'") && cond.contains("refs/heads/main"),
        "{cond}"
    );
    assert_eq!(sync["needs"], "validate");
    assert_eq!(sync["permissions"]["id-token"], "write");
    let steps = sync["steps"].as_array().unwrap();
    let creds = steps
        .iter()
        .position(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("aws-actions/configure-aws-credentials@"))
        })
        .expect("aws-actions/configure-aws-credentials");
    assert!(steps[creds]["with"]["role-to-assume"].is_string());
    assert!(steps[creds]["with"]["aws-region"].is_string());
    assert!(steps[creds]["with"].get("aws-access-key-id").is_none());
    let sync_step = steps
        .iter()
        .position(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("ecs-operator sync"))
        })
        .expect("a sync step");
    assert!(creds < sync_step, "credentials come before the sync");

    let all = invocations(&wf, "/tmp/runner");
    let syncs: Vec<&Invocation> = all
        .iter()
        .filter(|i| i.0 == "sync" && i.2[1] == "sync")
        .collect();
    assert!(syncs.len() >= 2, "{syncs:?}");
    for (_, combo, w, _) in syncs {
        let Command::Sync(a) = Cli::try_parse_from(w).unwrap().command else {
            unreachable!()
        };
        assert!(a.prune, "{w:?}");
        assert!(!a.dry_run);
        assert_eq!(a.dir, Path::new("/tmp/runner/rendered").join(&combo["env"]));
        // The store the operator of that environment reads (the chart's value).
        let values = yaml_file(&format!("charts/ecs-operator/values-{}.yaml", combo["env"]));
        assert_eq!(a.store, values["store"].as_str().unwrap(), "{combo:?}");
        assert!(a.store.starts_with("s3://"));
    }
    assert!(root().join("manifests/ci/README.md").is_file());
}

// ---- the whole bootstrap against the AWS APIs -------------------------------------------------

/// Every placeholder of the operator's manifests (README.md lists them).
const PLACEHOLDERS: &[&str] = &[
    "ACCOUNT_ID",
    "REGION",
    "SPEC_BUCKET",
    "SPEC_PREFIX",
    "SPEC_TABLE",
    "LEASE_TABLE",
    "INSTANCE",
    "HOSTED_ZONE_ID",
    "IMAGE_TAG",
    "CLUSTER",
    "SUBNET_A",
    "SUBNET_B",
    "SECURITY_GROUP",
];

/// `text` with each placeholder replaced where it stands as a word of its own (as `sed
/// 's/\bINSTANCE\b/.../g'` does): `ECS_OPERATOR_INSTANCE` keeps its name.
fn fill(text: &str, values: &BTreeMap<&str, String>) -> String {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::new();
    let mut rest = text;
    'outer: while let Some(c) = rest.chars().next() {
        let at_boundary = !out.chars().next_back().is_some_and(word);
        if at_boundary {
            for (k, v) in values {
                if let Some(after) = rest.strip_prefix(k) {
                    if !after.chars().next().is_some_and(word) {
                        out.push_str(v);
                        rest = after;
                        continue 'outer;
                    }
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn has_placeholder(text: &str, p: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(p).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(word)
            && !text[i + p.len()..].chars().next().is_some_and(word)
    })
}

#[test]
fn the_bootstrap_files_are_accepted_by_aws_and_the_operator_leads_on_that_lease_table() {
    let readme = read("manifests/operator/README.md");
    for p in PLACEHOLDERS {
        assert!(
            readme.contains(&format!("`{p}`")),
            "README.md does not explain {p}"
        );
    }
    let moto = Moto::start();
    let net = ecs_fixtures::fixture(&moto);
    let values: BTreeMap<&str, String> = [
        ("ACCOUNT_ID", "123456789012".to_string()),
        ("REGION", ecs_operator_tests::REGION.to_string()),
        ("SPEC_BUCKET", "specs".to_string()),
        ("SPEC_PREFIX", "prod".to_string()),
        ("SPEC_TABLE", "specs".to_string()),
        ("LEASE_TABLE", "ecs-operator-leases".to_string()),
        ("INSTANCE", "ecs-operator-prod".to_string()),
        ("HOSTED_ZONE_ID", "Z0123456789ABCDEFGHIJ".to_string()),
        ("IMAGE_TAG", "0.1.0".to_string()),
        ("CLUSTER", "ops".to_string()),
        ("SUBNET_A", net.subnets[0].clone()),
        ("SUBNET_B", net.subnets[1].clone()),
        ("SECURITY_GROUP", net.sg.clone()),
    ]
    .into_iter()
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let filled = |rel: &str| -> String {
        let text = fill(&read(rel), &values);
        for p in PLACEHOLDERS {
            assert!(
                !has_placeholder(&text, p),
                "{rel}: {p} left after filling in"
            );
        }
        assert!(text.contains("ECS_OPERATOR_INSTANCE") || !rel.contains("task-definition"));
        let path = dir.path().join(Path::new(rel).file_name().unwrap());
        std::fs::write(&path, text).unwrap();
        format!("file://{}", path.display())
    };
    let aws = |args: &[&str]| ecs_fixtures::awscli(&moto, args);

    // The AWS CLI checks each file against the API's input shape (unknown or mistyped fields
    // fail), then moto creates what it describes.
    aws(&[
        "dynamodb",
        "create-table",
        "--cli-input-json",
        &filled(LEASE_TABLE),
    ]);
    aws(&["ecs", "create-cluster", "--cluster-name", "ops"]);
    let td = aws(&[
        "ecs",
        "register-task-definition",
        "--cli-input-json",
        &filled(TASK_DEFINITION),
    ]);
    assert_eq!(td["taskDefinition"]["family"], "ecs-operator");
    let svc = aws(&[
        "ecs",
        "create-service",
        "--cli-input-json",
        &filled(SERVICE),
    ]);
    assert_eq!(svc["service"]["desiredCount"], 2);
    // moto checks the policies' grammar (actions, ARNs, condition operators).
    aws(&[
        "iam",
        "create-role",
        "--role-name",
        "ecs-operator",
        "--assume-role-policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    ]);
    for (name, rel) in [("ecs-operator", TASK_POLICY), ("ci-sync", CI_POLICY)] {
        aws(&[
            "iam",
            "put-role-policy",
            "--role-name",
            "ecs-operator",
            "--policy-name",
            name,
            "--policy-document",
            &filled(rel),
        ]);
    }

    // The container as the task definition runs it: `run` (the image's CMD) told everything
    // through the environment, on the lease table just created.
    let store = format!("s3://{}/{}", values["SPEC_BUCKET"], values["SPEC_PREFIX"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sdk = rt.block_on(moto.sdk_config());
    let init = rt.block_on(ecs_operator_tests::cli(
        &[
            "init",
            "--store",
            &store,
            "--events",
            "--instance",
            &values["INSTANCE"],
        ],
        Some(sdk),
    ));
    assert_eq!(init.code, 0, "{init:?}");
    let c: Value = serde_json::from_str(
        &std::fs::read_to_string(filled(TASK_DEFINITION).trim_start_matches("file://")).unwrap(),
    )
    .unwrap();
    let c = &c["containerDefinitions"][0];
    let addr = free_addr();
    let port = port_of(&addr);
    let mut env = moto.env();
    for e in c["environment"].as_array().unwrap() {
        let (k, v) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
        // Every interface, as in the container; a free port instead of 9090.
        let v = if k == "ECS_OPERATOR_METRICS_ADDR" {
            format!("0.0.0.0:{port}")
        } else {
            v.to_string()
        };
        env.push((k.to_string(), v));
    }
    let command: Vec<&str> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let logs = dir.path().join("operator.log");
    let operator = OperatorProcess::spawn(&command, dir.path(), &env, logs);
    let start = std::time::Instant::now();
    loop {
        let state = http_get(&addr, "/readyz")
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .map(|r| r["leaderState"].clone());
        if state == Some(Value::from("leader")) {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "the operator did not lead within 60 s:\n{}",
            operator.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // The events queue of the task definition is the one `init --events` made, and it answers.
    loop {
        let queue = http_get(&addr, "/readyz")
            .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
            .map(|r| r["eventsQueue"].clone())
            .unwrap_or_default();
        if queue["up"] == true {
            let url = queue["url"].as_str().unwrap();
            assert!(
                url.ends_with(&format!(
                    "/{}/{}-events",
                    values["ACCOUNT_ID"], values["INSTANCE"]
                )),
                "{queue}"
            );
            assert!(init.stdout.contains("created sqs queue"), "{init:?}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(120),
            "the events queue did not answer within 120 s: {queue}\n{}",
            operator.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // The container health check, as written, with the port moved.
    let hc: Vec<String> = c["healthCheck"]["command"].as_array().unwrap()[2..]
        .iter()
        .map(|v| v.as_str().unwrap().replace(":9090", &format!(":{port}")))
        .collect();
    let hc: Vec<&str> = hc.iter().map(String::as_str).collect();
    let out = bin(&hc, dir.path(), &[]);
    assert_eq!(out.code, 0, "{out:?}");

    // The lease record is the one the lease code writes, keyed as the table says.
    let item = aws(&[
        "dynamodb",
        "get-item",
        "--table-name",
        &values["LEASE_TABLE"],
        "--consistent-read",
        "--key",
        &serde_json::json!({"lease": {"S": ecs_operator::store::lease::lease_name(&values["INSTANCE"])}})
            .to_string(),
    ]);
    assert!(item["Item"]["holder"]["S"].is_string(), "{item}");
    drop(operator);
}

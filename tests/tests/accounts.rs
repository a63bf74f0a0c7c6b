//! Many accounts and regions from one operator: ClusterSpecs with `region` and `account`
//! reconciled by one `AwsReconciler` against moto, which keys resources by the account of the
//! assumed role (moto's AssumeRole answers credentials it maps back to the role's account).
//!
//! A gate proxy in front of moto counts requests per region (the SigV4 credential scope),
//! records mutating calls, and can refuse AssumeRole of one role with STS's AccessDenied
//! (moto's AssumeRole never refuses: it does not even check that the role exists) or throttle
//! one region's ECS calls, in the protocol's own shape.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::sts::AssumeRoleProvider;
use aws_config::{Region, SdkConfig};
use ecs_operator::aws::{Budget, Sdk};
use ecs_operator::reconcile::{ReconcileInput, Reconciler};
use ecs_operator::resources::{Aws, AwsReconciler};
use ecs_operator::runtime::Run;
use ecs_operator::spec::{Placement, Spec, SpecKey};
use ecs_operator::store::Phase;
use ecs_operator_tests::fixtures::{load_specs, write_specs, Fleet};
use ecs_operator_tests::proxy::{throttle_answer, Action, AwsService, Policy, Request, Server};
use ecs_operator_tests::Moto;

const OWN: &str = "123456789012";
const A: &str = "111111111111";
const B: &str = "222222222222";
const A_REGION: &str = "us-west-2";
const B_REGION: &str = "ap-southeast-2";
const OWN_REGION: &str = ecs_operator_tests::REGION;

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/ecs-operator-target")
}

fn cluster(name: &str, account: &str, region: &str) -> String {
    format!(
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {{name: {name}}}\nspec:\n  region: {region}\n  account: {{id: \"{account}\", roleArn: \"{}\", externalId: {name}-ext}}\n",
        role(account)
    )
}

fn service(name: &str, cluster: &str, subnet: &str) -> String {
    format!(
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {{name: {name}}}\nspec:\n  cluster: {cluster}\n  desiredCount: 2\n  container: {{name: app, image: 'nginx:1', cpu: 256, memory: 512}}\n  network: {{subnets: [{subnet}]}}\n"
    )
}

/// The specs of both accounts: `alpha` (account A, us-west-2) and `beta` (account B,
/// ap-southeast-2), each a ClusterSpec and one ServiceSpec on a subnet of its own account
/// and region.
fn files(subnets: &[String; 2]) -> Vec<(&'static str, String)> {
    vec![
        ("alpha.yaml", cluster("alpha", A, A_REGION)),
        ("alpha-web.yaml", service("alpha-web", "alpha", &subnets[0])),
        ("beta.yaml", cluster("beta", B, B_REGION)),
        ("beta-web.yaml", service("beta-web", "beta", &subnets[1])),
    ]
}

/// The venv's AWS CLI against moto as `account` (an assumed role) in `region`.
fn awscli_in(moto: &Moto, account: &str, region: &str, args: &[&str]) -> serde_json::Value {
    let exe = ecs_operator_tests::workspace_root().join(".venv/bin/aws");
    let run = |env: &[(String, String)], args: &[&str]| {
        let out = std::process::Command::new(&exe)
            .args([
                "--endpoint-url",
                &moto.endpoint(),
                "--region",
                region,
                "--output",
                "json",
            ])
            .args(args)
            .env_remove("AWS_PROFILE")
            .envs(env.iter().cloned())
            .output()
            .expect("the venv's aws CLI");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    let creds = run(
        &moto.env(),
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &role(account),
            "--role-session-name",
            "fixture",
        ],
    );
    let c = &creds["Credentials"];
    let mut env = moto.env();
    env.retain(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"));
    env.push((
        "AWS_ACCESS_KEY_ID".into(),
        c["AccessKeyId"].as_str().unwrap().into(),
    ));
    env.push((
        "AWS_SECRET_ACCESS_KEY".into(),
        c["SecretAccessKey"].as_str().unwrap().into(),
    ));
    env.push((
        "AWS_SESSION_TOKEN".into(),
        c["SessionToken"].as_str().unwrap().into(),
    ));
    run(&env, args)
}

/// A subnet of `account` in `region`.
fn subnet_in(moto: &Moto, account: &str, region: &str) -> String {
    let vpc = awscli_in(
        moto,
        account,
        region,
        &["ec2", "create-vpc", "--cidr-block", "10.0.0.0/16"],
    );
    let vpc = vpc["Vpc"]["VpcId"].as_str().expect("a VPC id").to_string();
    let az = format!("{region}a");
    let subnet = awscli_in(
        moto,
        account,
        region,
        &[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc,
            "--cidr-block",
            "10.0.1.0/24",
            "--availability-zone",
            &az,
        ],
    );
    subnet["Subnet"]["SubnetId"]
        .as_str()
        .expect("a subnet id")
        .to_string()
}

/// The proxy between the operator and moto.
#[derive(Default)]
struct Gate {
    /// AssumeRole of this role ARN is refused with AccessDenied.
    denied_role: Mutex<Option<String>>,
    /// Every other ECS request signed for this region is throttled.
    throttle_region: Mutex<Option<String>>,
    flip: AtomicU64,
    /// Throttles answered, by region.
    throttled: Mutex<BTreeMap<String, u64>>,
    /// Mutating calls forwarded: (region, service/operation).
    mutations: Mutex<Vec<(String, String)>>,
}

fn signed_region(req: &Request) -> String {
    req.header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(2))
        .unwrap_or("unsigned")
        .to_string()
}

/// STS's AccessDenied for AssumeRole, as AWS answers it (awsQuery error shape).
fn access_denied(role: &str) -> Vec<u8> {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::{OWN}:user/operator is not authorized to perform: sts:AssumeRole on resource: {role}</Message></Error><RequestId>denied</RequestId></ErrorResponse>"
    );
    format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nx-amzn-RequestId: denied\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Policy for Gate {
    fn decide(&self, req: &Request) -> Action {
        let region = signed_region(req);
        let call = req.call();
        if call.operation == "AssumeRole" {
            if let Some(role) = self.denied_role.lock().unwrap().as_deref() {
                let body = String::from_utf8_lossy(&req.body);
                let asked: String = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "RoleArn")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                if asked == role {
                    return Action::Answer(access_denied(role));
                }
            }
        }
        if call.service == AwsService::Ecs
            && self.throttle_region.lock().unwrap().as_deref() == Some(region.as_str())
            && self.flip.fetch_add(1, Ordering::SeqCst) % 2 == 0
        {
            *self.throttled.lock().unwrap().entry(region).or_default() += 1;
            return Action::Answer(throttle_answer(req.protocol()));
        }
        if call.is_mutating() {
            self.mutations.lock().unwrap().push((
                region,
                format!("{}/{}", call.service.label(), call.operation),
            ));
        }
        Action::Forward
    }
}

/// moto, the gate in front of it, and a fleet of the specs reconciled through the gate.
struct World {
    moto: Moto,
    /// The operator's SDK settings (through the gate).
    config: SdkConfig,
    gate: Arc<Gate>,
    _server: Server,
    _dir: tempfile::TempDir,
    fleet: Fleet,
}

impl World {
    async fn new(allowed: Option<&[&str]>) -> World {
        let moto = Moto::start_with_env(ecs_operator_tests::fixtures::EDGE_MOTO_ENV);
        let gate = Arc::new(Gate::default());
        let server = Server::start(moto.port(), gate.clone(), "accounts-gate");
        let config = moto
            .sdk_config()
            .await
            .into_builder()
            .endpoint_url(server.endpoint())
            .build();
        let dir = tempfile::tempdir().unwrap();
        let subnets = [subnet_in(&moto, A, A_REGION), subnet_in(&moto, B, B_REGION)];
        write_specs(dir.path(), &files(&subnets));
        let sdk = Sdk::new(config.clone());
        let calls = sdk.calls.clone();
        let aws = Aws::new(&sdk, "ecs-operator", Budget::default());
        let allowed = allowed.map(|a| a.iter().map(|s| s.to_string()).collect());
        let fleet = Fleet {
            reconciler: AwsReconciler::with_allowed_accounts(aws, allowed),
            calls,
            specs: load_specs(dir.path()),
        };
        World {
            moto,
            config,
            gate,
            _server: server,
            _dir: dir,
            fleet,
        }
    }

    /// An ECS client of `account` in `region`, straight to moto (the test's own view): the
    /// operator's credentials for its own account, else an assumed role.
    async fn ecs(&self, account: &str, region: &str) -> aws_sdk_ecs::Client {
        let base = self.moto.sdk_config().await;
        let mut config: SdkConfig = base
            .to_builder()
            .region(Region::new(region.to_string()))
            .build();
        if account != OWN {
            let provider = AssumeRoleProvider::builder(role(account))
                .session_name("test")
                .region(Region::new(region.to_string()))
                .configure(&base)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(aws_sdk_sts::config::SharedCredentialsProvider::new(
                    provider,
                ))
                .build();
        }
        aws_sdk_ecs::Client::new(&config)
    }

    /// The ECS clusters and services in `account`/`region`: `cluster` and `cluster/service`.
    async fn ecs_resources(&self, account: &str, region: &str) -> BTreeSet<String> {
        let ecs = self.ecs(account, region).await;
        let mut out = BTreeSet::new();
        let clusters = ecs.list_clusters().send().await.expect("ListClusters");
        for arn in clusters.cluster_arns() {
            let name = arn.rsplit('/').next().unwrap().to_string();
            let services = ecs
                .list_services()
                .cluster(arn)
                .send()
                .await
                .expect("ListServices");
            for s in services.service_arns() {
                out.insert(format!("{name}/{}", s.rsplit('/').next().unwrap()));
            }
            out.insert(name);
        }
        let families = ecs
            .list_task_definition_families()
            .send()
            .await
            .expect("ListTaskDefinitionFamilies");
        for f in families.families() {
            out.insert(format!("task definition {f}"));
        }
        out
    }

    /// What every account finds in every region, where anything is.
    async fn everywhere(&self) -> BTreeMap<(String, String), BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for account in [OWN, A, B] {
            for region in [OWN_REGION, A_REGION, B_REGION] {
                let found = self.ecs_resources(account, region).await;
                if !found.is_empty() {
                    out.insert((account.to_string(), region.to_string()), found);
                }
            }
        }
        out
    }

    fn deletions(&self) -> Vec<(String, String)> {
        self.gate
            .mutations
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, op)| op.contains("/Delete") || op.contains("/Deregister"))
            .cloned()
            .collect()
    }

    /// The budget of the clients of `account`'s placement.
    fn budget_of(&self, account: &str) -> Budget {
        self.fleet
            .reconciler
            .scopes
            .known()
            .into_iter()
            .find(|(p, _)| p.account.as_ref().map(|a| a.id.as_str()) == Some(account))
            .map(|(_, aws)| aws.budget.clone())
            .unwrap_or_else(|| panic!("no clients for account {account}"))
    }
}

fn key(s: &str) -> SpecKey {
    SpecKey::parse(s).unwrap()
}

fn expected() -> BTreeMap<(String, String), BTreeSet<String>> {
    let set = |c: &str, s: &str| {
        BTreeSet::from([
            c.to_string(),
            format!("{c}/{s}"),
            format!("task definition {s}"),
        ])
    };
    BTreeMap::from([
        (
            (A.to_string(), A_REGION.to_string()),
            set("alpha", "alpha-web"),
        ),
        (
            (B.to_string(), B_REGION.to_string()),
            set("beta", "beta-web"),
        ),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clusters_in_two_accounts_and_regions_converge_each_only_where_its_spec_says_and_a_second_reconcile_writes_nothing(
) {
    let w = World::new(None).await;
    w.fleet.converge(6).await;
    assert_eq!(w.everywhere().await, expected());
    // Every write went to the spec's region; none to the operator's own.
    let regions: BTreeSet<String> = w
        .gate
        .mutations
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, op)| op.starts_with("ecs/"))
        .map(|(r, _)| r.clone())
        .collect();
    assert_eq!(
        regions,
        BTreeSet::from([A_REGION.to_string(), B_REGION.to_string()])
    );
    let before = w.fleet.calls.snapshot();
    let writes_before = w.gate.mutations.lock().unwrap().len();
    for (k, r) in w.fleet.reconcile_all().await {
        assert_eq!(r.expect("reconciled").phase, Phase::Ready, "{k}");
    }
    assert_eq!(w.fleet.mutations_since(&before), BTreeMap::new());
    assert_eq!(w.gate.mutations.lock().unwrap().len(), writes_before);
    // The call counters (the `aws_calls` metric) carry each call's account and region.
    let creates: BTreeSet<Option<(String, String)>> = w
        .fleet
        .calls
        .snapshot()
        .into_keys()
        .filter(|l| l.operation == "CreateCluster")
        .map(|l| l.scope)
        .collect();
    assert_eq!(
        creates,
        BTreeSet::from([
            Some((A.to_string(), A_REGION.to_string())),
            Some((B.to_string(), B_REGION.to_string())),
        ])
    );
    // Status records keep where each spec lives, its region filled in.
    let alpha = w.fleet.spec("ClusterSpec/alpha");
    let specs = Arc::new(w.fleet.specs.clone());
    let placed = w
        .fleet
        .reconciler
        .placement(&alpha, &specs)
        .expect("a placement");
    assert_eq!(placed.region.as_deref(), Some(A_REGION));
    assert_eq!(placed.account_label(), A);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_converged_cluster_to_another_region_or_account_is_refused_as_immutable_and_nothing_is_created_there(
) {
    let w = World::new(None).await;
    w.fleet.converge(6).await;
    let recorded = Placement {
        account: match w.fleet.spec("ClusterSpec/alpha").as_ref() {
            Spec::Cluster(c) => c.spec.account.clone(),
            _ => unreachable!(),
        },
        region: Some(A_REGION.into()),
    };
    let ledger = w
        .fleet
        .reconcile("ClusterSpec/alpha")
        .await
        .expect("reconciled")
        .resources;
    let before = w.fleet.calls.snapshot();
    for (region, account, moved) in [
        ("eu-central-1", A, "region us-west-2 -> eu-central-1"),
        (A_REGION, B, "account 111111111111 -> 222222222222"),
    ] {
        let mut specs = w.fleet.specs.clone();
        let text = cluster("alpha", account, region);
        let parsed = ecs_operator::spec::parse_file("alpha.yaml", text.as_bytes())
            .documents
            .remove(0)
            .result
            .expect("a valid spec");
        let spec = Arc::new(parsed);
        specs.insert(key("ClusterSpec/alpha"), spec.clone());
        let input = ReconcileInput {
            ledger: Some(ledger.clone()),
            placement: Some(recorded.clone()),
            ..ReconcileInput::fresh(Arc::new(specs))
        };
        let report = w
            .fleet
            .reconciler
            .reconcile(spec, &input)
            .await
            .expect("a report");
        assert_eq!(report.phase, Phase::Degraded);
        let ready = &report.conditions[0];
        assert_eq!(ready.reason, "ImmutableField");
        assert!(ready.message.contains(moved), "{}", ready.message);
        assert!(
            ready.message.contains("nothing is moved"),
            "{}",
            ready.message
        );
        // The ledger is kept as it was: nothing counts as gone.
        assert_eq!(report.resources, ledger);
    }
    assert_eq!(w.fleet.mutations_since(&before), BTreeMap::new());
    assert_eq!(w.everywhere().await, expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_record_keeps_where_a_cluster_lives_and_a_region_move_through_the_controller_is_refused_there(
) {
    use ecs_operator::controller::Desired;
    let w = World::new(None).await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &[("alpha.yaml", cluster("alpha", A, A_REGION))]);
    let (controller, store, _) =
        ecs_operator_tests::fixtures::controller_over(w.config.clone(), dir.path()).await;
    let alpha = key("ClusterSpec/alpha");
    controller
        .reconcile(alpha.clone(), Run::default())
        .await
        .expect("reconciled");
    let status = store
        .read_status(&alpha)
        .await
        .unwrap()
        .expect("a status record");
    assert_eq!(status.phase, Phase::Ready, "{status:?}");
    let placement = status.placement.clone().expect("the record says where");
    assert_eq!(placement.scope_key(), format!("{A}/{A_REGION}"));
    assert!(!status.resources.is_empty());
    let url = format!("file://{}", dir.path().display());
    let shown = ecs_operator_tests::cli(&["status", "--store", &url], None).await;
    assert!(
        shown.stdout.contains("ACCOUNT/REGION")
            && shown.stdout.contains(&format!("{A}/{A_REGION}")),
        "{shown:?}"
    );
    // The spec moves to another region: refused, the record still says where things are.
    write_specs(
        dir.path(),
        &[("alpha.yaml", cluster("alpha", A, "eu-central-1"))],
    );
    controller.set_desired(Desired::from_listing(&store.list().await.unwrap()));
    controller
        .reconcile(alpha.clone(), Run::default())
        .await
        .expect("an answer");
    let moved = store
        .read_status(&alpha)
        .await
        .unwrap()
        .expect("a status record");
    assert_eq!(moved.phase, Phase::Degraded);
    let ready = moved
        .conditions
        .iter()
        .find(|c| c.condition_type == "Ready")
        .unwrap();
    assert_eq!(ready.reason, "ImmutableField");
    assert!(
        ready.message.contains("region us-west-2 -> eu-central-1"),
        "{}",
        ready.message
    );
    assert_eq!(moved.placement, Some(placement));
    assert_eq!(moved.resources, status.resources);
    assert!(w.ecs_resources(A, "eu-central-1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_assume_role_degrades_only_that_accounts_specs_deletes_nothing_and_recovers_without_a_restart(
) {
    let w = World::new(None).await;
    *w.gate.denied_role.lock().unwrap() = Some(role(A));
    let mut last = BTreeMap::new();
    for _ in 0..6 {
        last = w.fleet.reconcile_all().await;
        let beta_ready = ["ClusterSpec/beta", "ServiceSpec/beta-web"]
            .iter()
            .all(|k| matches!(&last[&key(k)], Ok(r) if r.phase == Phase::Ready));
        if beta_ready {
            break;
        }
    }
    for k in ["ClusterSpec/beta", "ServiceSpec/beta-web"] {
        assert_eq!(last[&key(k)].as_ref().unwrap().phase, Phase::Ready, "{k}");
    }
    for k in ["ClusterSpec/alpha", "ServiceSpec/alpha-web"] {
        let r = last[&key(k)].as_ref().expect("a report, not a failure");
        assert_eq!(r.phase, Phase::Degraded, "{k}");
        assert_eq!(r.conditions[0].reason, "AccountUnreachable", "{k}");
        let m = &r.conditions[0].message;
        assert!(
            m.contains(&role(A)) && m.contains("AccessDenied"),
            "{k}: {m}"
        );
        assert!(r.requeue_after.is_some(), "{k} is tried again");
    }
    // Garbage collection cannot scan account A: it says so and finds beta's resources only.
    let input = ReconcileInput::fresh(Arc::new(w.fleet.specs.clone()));
    let scan = w.fleet.reconciler.owned(&input, &[]).await;
    assert!(
        scan.errors
            .iter()
            .any(|e| e.contains(A) && e.contains("AccessDenied")),
        "{:?}",
        scan.errors
    );
    let owners: BTreeSet<String> = scan.owned.keys().map(|k| k.to_string()).collect();
    assert!(owners.contains("ClusterSpec/beta"), "{owners:?}");
    assert!(!owners.iter().any(|o| o.contains("alpha")), "{owners:?}");
    // A deletion in the unreachable account fails (and is retried): nothing is "gone".
    let placement_a = w
        .fleet
        .reconciler
        .placement(
            &w.fleet.spec("ServiceSpec/alpha-web"),
            &Arc::new(w.fleet.specs.clone()),
        )
        .expect("a placement");
    let mut record =
        ecs_operator::store::status::SpecStatus::pending(&key("ServiceSpec/alpha-web"));
    record.placement = Some(placement_a);
    record.deletion_policy = Some("Delete".into());
    let denied_delete = w
        .fleet
        .reconciler
        .delete(&key("ServiceSpec/alpha-web"), None, &record, &input)
        .await;
    assert!(
        matches!(
            &denied_delete,
            Err(ecs_operator::reconcile::Failure::Retryable(_))
        ),
        "{denied_delete:?}"
    );
    assert_eq!(w.deletions(), Vec::<(String, String)>::new());
    // The role is back: the same reconciler reaches account A.
    *w.gate.denied_role.lock().unwrap() = None;
    let reports = w.fleet.converge(6).await;
    assert_eq!(w.everywhere().await, expected());
    assert_eq!(w.deletions(), Vec::<(String, String)>::new());
    // Deleting alpha-web by its record tears it down in account A's region only.
    record.resources = reports[&key("ServiceSpec/alpha-web")].resources.clone();
    let spec = w.fleet.spec("ServiceSpec/alpha-web");
    w.fleet
        .reconciler
        .delete(&key("ServiceSpec/alpha-web"), Some(spec), &record, &input)
        .await
        .expect("the deletion runs");
    let deleted_in: BTreeSet<String> = w.deletions().into_iter().map(|(r, _)| r).collect();
    assert_eq!(deleted_in, BTreeSet::from([A_REGION.to_string()]));
    assert!(w.ecs_resources(B, B_REGION).await.contains("beta/beta-web"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_as_throttling_is_charged_to_account_as_budget_and_never_makes_account_b_wait() {
    let w = World::new(None).await;
    *w.gate.throttle_region.lock().unwrap() = Some(A_REGION.into());
    w.fleet.converge(6).await;
    let throttled = w.gate.throttled.lock().unwrap().clone();
    let a_throttles = throttled.get(A_REGION).copied().unwrap_or(0);
    assert!(
        a_throttles > 0,
        "the gate throttled account A: {throttled:?}"
    );
    assert_eq!(throttled.get(B_REGION), None);
    let (a, b) = (w.budget_of(A), w.budget_of(B));
    println!(
        "account A: {a_throttles} throttles, {} retries charged, {} waits; account B: {} charged, {} waits",
        a.charges(),
        a.waits(),
        b.charges(),
        b.waits()
    );
    // Every throttled call was retried once, on A's budget.
    assert_eq!(a.charges(), a_throttles);
    assert_eq!((b.charges(), b.waits()), (0, 0));
    assert_eq!(w.everywhere().await, expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_outside_allowed_accounts_is_refused_with_a_condition_and_never_called() {
    let w = World::new(Some(&[B])).await;
    let results = w.fleet.reconcile_all().await;
    for k in ["ClusterSpec/alpha", "ServiceSpec/alpha-web"] {
        let r = results[&key(k)].as_ref().expect("a report, not a failure");
        assert_eq!(r.phase, Phase::Degraded, "{k}");
        assert_eq!(r.conditions[0].reason, "AccountNotAllowed", "{k}");
        assert!(
            r.conditions[0].message.contains(A) && r.conditions[0].message.contains(B),
            "{k}: {}",
            r.conditions[0].message
        );
    }
    assert!(
        !w.gate
            .mutations
            .lock()
            .unwrap()
            .iter()
            .any(|(r, _)| r == A_REGION),
        "nothing written in account A's region"
    );
}

#[test]
fn bad_account_ids_role_arns_of_another_account_and_unknown_regions_are_refused_naming_the_field() {
    let cases = [
        (
            cluster("x", "12345", "eu-west-1"),
            "spec.account.id",
            "12 digits",
        ),
        (
            format!(
                "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {{name: x}}\nspec:\n  account: {{id: \"{A}\", roleArn: \"{}\"}}\n",
                role(B)
            ),
            "spec.account.roleArn",
            "the role is in account 222222222222, but account.id is 111111111111",
        ),
        (
            cluster("x", A, "europe-1"),
            "spec.region",
            "not an AWS region name",
        ),
    ];
    for (text, path, reason) in cases {
        let doc = ecs_operator::spec::parse_file("bad.yaml", text.as_bytes())
            .documents
            .remove(0);
        let diags = doc.result.expect_err("refused");
        assert!(
            diags.iter().any(|d| d.file == "bad.yaml"
                && d.path == path
                && d.line.is_some()
                && d.message.contains(reason)),
            "{path}: {diags:?}"
        );
    }
}

//! Fixtures for tests that reconcile against moto: the network that exists before the operator
//! runs (a VPC, two subnets in two zones, a security group, a Route53 hosted zone), the
//! reference architecture's specs with those ids, and a [`Fleet`] that reconciles specs
//! directly through `AwsReconciler` (no `run` loop) and counts every AWS call.
//!
//! EC2 objects are made with the virtualenv's `aws` command ([`awscli`]: only `verify` reads
//! EC2, and the tests do not build an EC2 client of their own); the hosted zone with the Route53 SDK.
//!
//! Also the one setup the end-to-end suites share: [`Env`] (moto, the network, spec files in
//! a folder, a [`Fleet`] over them and SDK clients), [`Fleet::converge`] (the one converge
//! loop), [`tags_of`], and the ownership tags as the crate spells them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ecs_operator::aws::{Budget, CallMetrics, Sdk};
use ecs_operator::reconcile::{Failure, ReconcileInput, Reconciler, Report};
use ecs_operator::resources::{Aws, AwsReconciler, Change};
use ecs_operator::spec::{Kind, Spec, SpecKey};

use crate::{workspace_root, Moto, REGION};

pub use ecs_operator::resources::shared::tags::RELEASED_TAG;
pub use ecs_operator::{MANAGED_BY_TAG, OWNER_TAG};

/// moto for suites that converge the edge: certificates are issued at once and a service's
/// rollout completes with 2 running tasks.
pub const EDGE_MOTO_ENV: &[(&str, &str)] = &[
    ("MOTO_ACM_VALIDATION_WAIT", "0"),
    ("MOTO_ECS_SERVICE_RUNNING", "2"),
];

/// What exists before the operator runs.
#[derive(Debug, Clone)]
pub struct Network {
    pub vpc: String,
    /// Two subnets in two availability zones.
    pub subnets: [String; 2],
    pub security_group: String,
    /// The hosted zone's id (without `/hostedzone/`) and name (no trailing dot).
    pub zone_id: String,
    pub zone_name: String,
}

/// Run the virtualenv's AWS CLI (`aws ARGS... --output json`) against moto; its JSON answer
/// (`Null` when it prints nothing). Panics with its stderr when it fails.
pub fn awscli(moto: &Moto, args: &[&str]) -> serde_json::Value {
    let exe = workspace_root().join(".venv/bin/aws");
    let out = Command::new(&exe)
        .args([
            "--endpoint-url",
            &moto.endpoint(),
            "--region",
            REGION,
            "--output",
            "json",
        ])
        .args(args)
        .env_remove("AWS_PROFILE")
        .envs(moto.env())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): scripts/setup-moto installs it",
                exe.display()
            )
        });
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// The string at `pointer` (`/Vpc/VpcId`) of an AWS CLI answer; panics naming it when absent.
pub fn field(answer: &serde_json::Value, pointer: &str) -> String {
    answer
        .pointer(pointer)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("no {pointer} in {answer}"))
        .to_string()
}

/// The tags of an ELBv2 resource as a map.
pub fn tags_of(t: &[aws_sdk_elasticloadbalancingv2::types::Tag]) -> BTreeMap<String, String> {
    t.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The load balancer `name` as DescribeLoadBalancers answers; panics when the call fails or
/// there is none.
pub async fn load_balancer(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
) -> aws_sdk_elasticloadbalancingv2::types::LoadBalancer {
    elb.describe_load_balancers()
        .names(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeLoadBalancers {name}: {e:?}"))
        .load_balancers()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no load balancer {name}"))
}

/// The ARN of the load balancer `name` ([`load_balancer`]).
pub async fn load_balancer_arn(elb: &aws_sdk_elasticloadbalancingv2::Client, name: &str) -> String {
    load_balancer(elb, name)
        .await
        .load_balancer_arn()
        .expect("a load balancer has an ARN")
        .to_string()
}

/// The listeners of the load balancer `name`, by port; panics when a call fails.
pub async fn listeners(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
) -> BTreeMap<i32, aws_sdk_elasticloadbalancingv2::types::Listener> {
    elb.describe_listeners()
        .load_balancer_arn(load_balancer_arn(elb, name).await)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeListeners of {name}: {e:?}"))
        .listeners()
        .iter()
        .map(|l| (l.port().expect("a listener has a port"), l.clone()))
        .collect()
}

/// The ARNs of the listener's certificates that DescribeListenerCertificates does not mark as
/// its default (the SNI certificates), in its order; panics when the call fails.
pub async fn sni_certificates(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener_arn: &str,
) -> Vec<String> {
    elb.describe_listener_certificates()
        .listener_arn(listener_arn)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeListenerCertificates {listener_arn}: {e:?}"))
        .certificates()
        .iter()
        .filter(|c| c.is_default() != Some(true))
        .map(|c| c.certificate_arn().expect("a certificate ARN").to_string())
        .collect()
}

/// The target group `name` as DescribeTargetGroups answers; panics when the call fails or there
/// is none.
pub async fn target_group(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    name: &str,
) -> aws_sdk_elasticloadbalancingv2::types::TargetGroup {
    elb.describe_target_groups()
        .names(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeTargetGroups {name}: {e:?}"))
        .target_groups()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no target group {name}"))
}

/// A record set `name` (fully qualified, trailing dot) of type `kind` with the one value `value`
/// and a TTL of `ttl` seconds.
pub fn simple_record(
    name: impl Into<String>,
    kind: aws_sdk_route53::types::RrType,
    ttl: i64,
    value: &str,
) -> aws_sdk_route53::types::ResourceRecordSet {
    use aws_sdk_route53::types::{ResourceRecord, ResourceRecordSet};
    ResourceRecordSet::builder()
        .name(name)
        .r#type(kind)
        .ttl(ttl)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .expect("a record value"),
        )
        .build()
        .expect("a record set")
}

/// Apply `action` to every record set of `records` in one ChangeResourceRecordSets batch in the
/// hosted zone `zone_id`, by hand (not through the operator); panics when Route53 refuses it.
pub async fn change_records(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    action: aws_sdk_route53::types::ChangeAction,
    records: impl IntoIterator<Item = aws_sdk_route53::types::ResourceRecordSet>,
) {
    use aws_sdk_route53::types::{Change, ChangeBatch};
    let changes = records
        .into_iter()
        .map(|r| {
            Change::builder()
                .action(action.clone())
                .resource_record_set(r)
                .build()
                .expect("a change")
        })
        .collect();
    r53.change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(
            ChangeBatch::builder()
                .set_changes(Some(changes))
                .build()
                .expect("a change batch"),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("ChangeResourceRecordSets in {zone_id}: {e:?}"));
}

/// [`change_records`] with `CREATE`: the record sets must not exist yet.
pub async fn create_records(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    records: impl IntoIterator<Item = aws_sdk_route53::types::ResourceRecordSet>,
) {
    change_records(
        r53,
        zone_id,
        aws_sdk_route53::types::ChangeAction::Create,
        records,
    )
    .await
}

/// A person's hand edit of the listener `listener_arn`: its one default action becomes the
/// redirect `redirect`. Panics when ModifyListener fails.
pub async fn set_redirect(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    listener_arn: &str,
    redirect: aws_sdk_elasticloadbalancingv2::types::RedirectActionConfig,
) {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum};
    elb.modify_listener()
        .listener_arn(listener_arn)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(redirect)
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("ModifyListener {listener_arn}: {e:?}"));
}

/// [`set_redirect`] to HTTPS on 443 with a 302 (the operator's redirect is a 301).
pub async fn redirect_with_302(elb: &aws_sdk_elasticloadbalancingv2::Client, listener_arn: &str) {
    use aws_sdk_elasticloadbalancingv2::types::{
        RedirectActionConfig, RedirectActionStatusCodeEnum,
    };
    let redirect = RedirectActionConfig::builder()
        .protocol("HTTPS")
        .port("443")
        .status_code(RedirectActionStatusCodeEnum::Http302)
        .build();
    set_redirect(elb, listener_arn, redirect).await
}

/// Attempts of one operation (`DescribeServices`, `ListObjectsV2`: every attempt the SDK made)
/// recorded in `calls`, over all services.
pub fn attempts(calls: &CallMetrics, operation: &str) -> u64 {
    calls
        .snapshot()
        .into_iter()
        .filter(|(l, _)| l.operation == operation)
        .map(|(_, n)| n)
        .sum()
}

/// The ownership tags the operator (instance `ecs-operator`) puts on what `owner` owns.
pub fn owner_tags(owner: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_TAG.to_string(), "ecs-operator".to_string()),
        (OWNER_TAG.to_string(), owner.to_string()),
    ])
}

/// A VPC (10.0.0.0/16) with two subnets, in eu-west-1a and eu-west-1b: its id and theirs.
pub fn vpc_with_subnets(moto: &Moto) -> (String, [String; 2]) {
    let vpc = field(
        &awscli(moto, &["ec2", "create-vpc", "--cidr-block", "10.0.0.0/16"]),
        "/Vpc/VpcId",
    );
    let subnet = |cidr: &str, az: &str| {
        let answer = awscli(
            moto,
            &[
                "ec2",
                "create-subnet",
                "--vpc-id",
                &vpc,
                "--cidr-block",
                cidr,
                "--availability-zone",
                az,
            ],
        );
        field(&answer, "/Subnet/SubnetId")
    };
    let subnets = [
        subnet("10.0.1.0/24", "eu-west-1a"),
        subnet("10.0.2.0/24", "eu-west-1b"),
    ];
    (vpc, subnets)
}

/// A security group in `vpc`: its id.
pub fn security_group(moto: &Moto, vpc: &str, name: &str, description: &str) -> String {
    let answer = awscli(
        moto,
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            name,
            "--description",
            description,
            "--vpc-id",
            vpc,
        ],
    );
    field(&answer, "/GroupId")
}

impl Network {
    /// A VPC with two subnets (eu-west-1a, eu-west-1b), a security group and a public hosted
    /// zone named `zone_name`.
    pub async fn create(moto: &Moto, zone_name: &str) -> Network {
        let (vpc, subnets) = vpc_with_subnets(moto);
        let security_group = security_group(moto, &vpc, "alb", "load balancer");
        let r53 = aws_sdk_route53::Client::new(&moto.sdk_config().await);
        let zone = r53
            .create_hosted_zone()
            .name(zone_name)
            .caller_reference(format!("fixture-{zone_name}"))
            .send()
            .await
            .expect("the hosted zone is created");
        let zone_id = zone
            .hosted_zone()
            .expect("a hosted zone")
            .id()
            .trim_start_matches("/hostedzone/")
            .to_string();
        Network {
            vpc,
            subnets,
            security_group,
            zone_id,
            zone_name: zone_name.trim_end_matches('.').to_string(),
        }
    }
}

/// The reference architecture on `net` (file name, YAML): one ClusterSpec `prod` with one ALB
/// `prod-public` whose default certificate covers the apex and `www`, and two ServiceSpecs on
/// different hosts: `web` (apex + www, priority 100, its own ECR repository) and `admin`
/// (`admin.<zone>`, not covered by the default certificate, priority left to the operator).
/// Capacity comes from Fargate so the specs need no Auto Scaling group.
pub fn reference_specs(net: &Network) -> Vec<(&'static str, String)> {
    let z = &net.zone_name;
    let cluster = format!(
        r#"apiVersion: ecs-operator.io/v1alpha1
kind: ClusterSpec
metadata: {{name: prod, labels: {{env: prod}}}}
spec:
  clusterName: prod
  containerInsights: true
  defaultCapacityProviderStrategy:
    - {{capacityProvider: FARGATE, weight: 1, base: 2}}
  loadBalancers:
    - name: prod-public
      scheme: internet-facing
      subnets: [{s0}, {s1}]
      securityGroups: [{sg}]
      deletionProtection: true
      idleTimeoutSeconds: 60
      sslPolicy: ELBSecurityPolicy-TLS13-1-2-2021-06
      httpsRedirect: true
      certificate:
        domains: [{z}, www.{z}]
        hostedZone: {z}
  deletionPolicy: Retain
"#,
        s0 = net.subnets[0],
        s1 = net.subnets[1],
        sg = net.security_group,
    );
    let web = format!(
        r#"apiVersion: ecs-operator.io/v1alpha1
kind: ServiceSpec
metadata: {{name: web, labels: {{env: prod}}}}
spec:
  cluster: prod
  desiredCount: 2
  repository:
    name: trust-estate-server
    imageTagMutability: IMMUTABLE
    scanOnPush: true
    lifecycle:
      expireUntaggedAfterDays: 1
      keepTagged: [{{tagPrefixes: [prod-], count: 10}}]
  container:
    name: app
    image: trust-estate-server:prod-3f2a1c9
    port: 3000
    cpu: 256
    memory: 512
  network: {{subnets: [{s0}, {s1}], securityGroups: [{sg}], assignPublicIp: false}}
  ingress:
    loadBalancer: prod-public
    hosts: [{z}, www.{z}]
    paths: ["/*"]
    priority: 100
    healthCheck: {{path: /health, intervalSeconds: 30, timeoutSeconds: 5, healthyThreshold: 2, unhealthyThreshold: 2, matcher: "200"}}
    deregistrationDelaySeconds: 30
    dns: {{hostedZone: {z}}}
"#,
        s0 = net.subnets[0],
        s1 = net.subnets[1],
        sg = net.security_group,
    );
    let admin = format!(
        r#"apiVersion: ecs-operator.io/v1alpha1
kind: ServiceSpec
metadata: {{name: admin, labels: {{env: prod}}}}
spec:
  cluster: prod
  desiredCount: 2
  container:
    name: admin
    image: public.ecr.aws/nginx/nginx:1.27
    port: 80
    cpu: 256
    memory: 512
  network: {{subnets: [{s0}, {s1}], securityGroups: [{sg}]}}
  ingress:
    loadBalancer: prod-public
    hosts: [admin.{z}]
    healthCheck: {{path: /, healthyThreshold: 2, unhealthyThreshold: 2}}
    dns: {{hostedZone: {z}}}
"#,
        s0 = net.subnets[0],
        s1 = net.subnets[1],
        sg = net.security_group,
    );
    vec![
        ("cluster-prod.yaml", cluster),
        ("service-web.yaml", web),
        ("service-admin.yaml", admin),
    ]
}

/// Write spec files into `dir`.
pub fn write_specs(dir: &Path, files: &[(&str, String)]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).expect("write a spec file");
    }
}

/// Every valid spec under `dir`; panics on any invalid document (a broken fixture).
pub fn load_specs(dir: &Path) -> BTreeMap<SpecKey, Arc<Spec>> {
    let files = ecs_operator::spec::load_paths(&[dir.to_path_buf()]);
    let mut out = BTreeMap::new();
    for f in files {
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        for d in f.documents {
            match d.result {
                Ok(spec) => {
                    out.insert(spec.key(), Arc::new(spec));
                }
                Err(diags) => panic!("invalid fixture spec: {diags:?}"),
            }
        }
    }
    out
}

/// Specs reconciled directly through [`AwsReconciler`], with every AWS call counted.
pub struct Fleet {
    pub reconciler: AwsReconciler,
    pub calls: CallMetrics,
    pub specs: BTreeMap<SpecKey, Arc<Spec>>,
}

impl Fleet {
    /// A reconciler with the instance `ecs-operator` over the specs under `dir`.
    pub async fn new(moto: &Moto, dir: &Path) -> Fleet {
        let sdk = Sdk::new(moto.sdk_config().await);
        let calls = sdk.calls.clone();
        let aws = Aws::new(&sdk, "ecs-operator", Budget::default());
        Fleet {
            reconciler: AwsReconciler::new(aws),
            calls,
            specs: load_specs(dir),
        }
    }

    fn input(&self) -> ReconcileInput {
        ReconcileInput::fresh(Arc::new(self.specs.clone()))
    }

    pub fn spec(&self, key: &str) -> Arc<Spec> {
        let key = SpecKey::parse(key).expect("a Kind/name key");
        self.specs.get(&key).cloned().expect("a spec of the fleet")
    }

    /// One reconcile of one spec (`Kind/name`).
    pub async fn reconcile(&self, key: &str) -> Result<Report, Failure> {
        self.reconciler
            .reconcile(self.spec(key), &self.input())
            .await
    }

    /// One reconcile of one spec as part of the resync wave whose shared reads are `wave`.
    pub async fn reconcile_in_wave(
        &self,
        key: &str,
        wave: &Arc<ecs_operator::resources::Snapshot>,
    ) -> Result<Report, Failure> {
        let input = ReconcileInput {
            wave: Some(wave.clone()),
            ..self.input()
        };
        self.reconciler.reconcile(self.spec(key), &input).await
    }

    /// One reconcile of one spec as the runner's follow-up of the spec's previous reconcile
    /// (scheduled by that reconcile's requeue alone: `ReconcileInput::follow_up`).
    pub async fn reconcile_follow_up(&self, key: &str) -> Result<Report, Failure> {
        let input = ReconcileInput {
            follow_up: true,
            ..self.input()
        };
        self.reconciler.reconcile(self.spec(key), &input).await
    }

    /// One reconcile of `spec` (which may differ from the fleet's version of it) as the
    /// controller runs it outside a wave: fresh reads, with the spec's last status ledger.
    pub async fn reconcile_with_ledger(
        &self,
        spec: Arc<Spec>,
        ledger: Vec<ecs_operator::store::status::ResourceRef>,
    ) -> Result<Report, Failure> {
        let input = ReconcileInput {
            ledger: Some(ledger),
            ..self.input()
        };
        self.reconciler.reconcile(spec, &input).await
    }

    /// One reconcile of every spec, ClusterSpecs first.
    pub async fn reconcile_all(&self) -> BTreeMap<SpecKey, Result<Report, Failure>> {
        let mut out = BTreeMap::new();
        for kind in [Kind::ClusterSpec, Kind::ServiceSpec] {
            for (key, spec) in self.specs.iter().filter(|(k, _)| k.kind == kind) {
                out.insert(
                    key.clone(),
                    self.reconciler.reconcile(spec.clone(), &self.input()).await,
                );
            }
        }
        out
    }

    /// Reconcile every spec ([`Fleet::reconcile_all`]) until all are Ready, at most `rounds`
    /// rounds; the last report of every spec. Panics naming what is not Ready. From empty an
    /// ECS service takes three rounds on moto (create; moto's CreateService drops the
    /// deployment configuration, so one update; the rollout completes).
    pub async fn converge(&self, rounds: usize) -> BTreeMap<SpecKey, Report> {
        let mut last = String::new();
        for _ in 0..rounds {
            let results = self.reconcile_all().await;
            let pending: Vec<String> = results
                .iter()
                .filter(|(_, r)| !matches!(r, Ok(rep) if rep.phase == ecs_operator::store::Phase::Ready))
                .map(|(k, r)| format!("{k}: {r:?}"))
                .collect();
            if pending.is_empty() {
                return results
                    .into_iter()
                    .map(|(k, r)| (k, r.expect("a Ready report")))
                    .collect();
            }
            last = pending.join("\n");
        }
        panic!("not converged after {rounds} rounds:\n{last}");
    }

    /// Run the deletion of `key` (its last spec `last`, its ledger `resources`; the fleet's
    /// specs are the store) until it says Deleted: at most 10 tries 300 ms apart. Panics when a
    /// try fails, when an unfinished try's phase is not Deleting, or after the tenth.
    pub async fn delete_until_deleted(
        &self,
        key: &SpecKey,
        last: Option<Arc<Spec>>,
        resources: &[ecs_operator::store::status::ResourceRef],
    ) {
        let mut previous = ecs_operator::store::status::SpecStatus::pending(key);
        previous.resources = resources.to_vec();
        let input = self.input();
        for _ in 0..10 {
            match self
                .reconciler
                .delete(key, last.clone(), &previous, &input)
                .await
                .unwrap_or_else(|e| panic!("deletion of {key} failed: {e}"))
            {
                ecs_operator::reconcile::Deletion::Deleted => return,
                ecs_operator::reconcile::Deletion::InProgress(r) => {
                    assert_eq!(r.phase, ecs_operator::store::Phase::Deleting)
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        panic!("{key} was not deleted");
    }

    /// The changes a reconcile of `key` would make now.
    pub async fn diff(&self, key: &str) -> Vec<Change> {
        self.reconciler
            .diff(&self.spec(key), &self.input())
            .await
            .unwrap_or_else(|e| panic!("diff of {key} failed: {e}"))
    }

    /// Mutating attempts per `service/operation` since `before` (a [`CallMetrics::snapshot`]).
    pub fn mutations_since(
        &self,
        before: &BTreeMap<ecs_operator::aws::calls::CallLabels, u64>,
    ) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (labels, n) in self.calls.snapshot() {
            let was = before.get(&labels).copied().unwrap_or(0);
            if n > was && ecs_operator::aws::calls::is_mutating(&labels.operation) {
                *out.entry(format!("{}/{}", labels.service, labels.operation))
                    .or_default() += n - was;
            }
        }
        out
    }
}

/// The setup the end-to-end suites share: moto, the network, spec files in a folder, a
/// [`Fleet`] over them, and SDK clients for checking what the operator did.
pub struct Env {
    pub moto: Moto,
    pub net: Network,
    pub dir: tempfile::TempDir,
    pub fleet: Fleet,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub acm: aws_sdk_acm::Client,
    pub r53: aws_sdk_route53::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub ecs: aws_sdk_ecs::Client,
}

/// A spec file: its name and text.
pub type SpecFile = (String, String);

/// [`reference_specs`] as owned files, for [`Env::new`].
pub fn reference_files(net: &Network) -> Vec<SpecFile> {
    reference_specs(net)
        .into_iter()
        .map(|(n, t)| (n.to_string(), t))
        .collect()
}

impl Env {
    /// moto started with `moto_env`, the network with the zone `example.com`, the files
    /// `specs` makes for it written to a fresh folder, and a fleet over them (nothing
    /// reconciled yet).
    pub async fn new(
        moto_env: &[(&str, &str)],
        specs: impl FnOnce(&Network) -> Vec<SpecFile>,
    ) -> Env {
        let moto = Moto::start_with_env(moto_env);
        let net = Network::create(&moto, "example.com").await;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let files = specs(&net);
        let files: Vec<(&str, String)> =
            files.iter().map(|(n, t)| (n.as_str(), t.clone())).collect();
        write_specs(dir.path(), &files);
        let fleet = Fleet::new(&moto, dir.path()).await;
        let sdk = moto.sdk_config().await;
        Env {
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&sdk),
            acm: aws_sdk_acm::Client::new(&sdk),
            r53: aws_sdk_route53::Client::new(&sdk),
            ecr: aws_sdk_ecr::Client::new(&sdk),
            ecs: aws_sdk_ecs::Client::new(&sdk),
            moto,
            net,
            dir,
            fleet,
        }
    }

    /// [`Env::new`], converged in at most `rounds` rounds; with the last report of every spec.
    pub async fn converged(
        moto_env: &[(&str, &str)],
        specs: impl FnOnce(&Network) -> Vec<SpecFile>,
        rounds: usize,
    ) -> (Env, BTreeMap<SpecKey, Report>) {
        let env = Env::new(moto_env, specs).await;
        let reports = env.fleet.converge(rounds).await;
        (env, reports)
    }

    /// The tags of one ELBv2 resource (empty when it has none, or is gone).
    pub async fn elb_tags(&self, arn: &str) -> BTreeMap<String, String> {
        let out = self
            .elb
            .describe_tags()
            .resource_arns(arn)
            .send()
            .await
            .expect("DescribeTags answers");
        out.tag_descriptions()
            .first()
            .map(|d| tags_of(d.tags()))
            .unwrap_or_default()
    }

    /// Every target group's ARN by its name (one DescribeTargetGroups page); panics when the
    /// call fails.
    pub async fn target_group_arns(&self) -> BTreeMap<String, String> {
        self.elb
            .describe_target_groups()
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeTargetGroups: {e:?}"))
            .target_groups()
            .iter()
            .map(|t| {
                (
                    t.target_group_name().expect("a name").to_string(),
                    t.target_group_arn().expect("an ARN").to_string(),
                )
            })
            .collect()
    }

    /// The tags of one ECR repository, by its ARN; panics when the call fails.
    pub async fn ecr_tags(&self, arn: &str) -> BTreeMap<String, String> {
        self.ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ECR ListTagsForResource {arn}: {e:?}"))
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }

    /// The folder as a store URL (`file://DIR`).
    pub fn store(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }
}

/// A [`Controller`](ecs_operator::controller::Controller) over a file store of the specs in
/// `dir`, reconciling with the operator's clients on `config`, its desired state set from the
/// store's listing; and the counter of every AWS call those clients make.
pub async fn controller_over(
    config: aws_config::SdkConfig,
    dir: &Path,
) -> (
    ecs_operator::controller::Controller,
    Arc<dyn ecs_operator::store::Store>,
    CallMetrics,
) {
    use ecs_operator::controller::{Controller, Desired};
    let store: Arc<dyn ecs_operator::store::Store> =
        Arc::new(ecs_operator::store::file::FileStore::new(dir.to_path_buf()));
    let sdk = Sdk::new(config);
    let calls = sdk.calls.clone();
    let aws = Aws::new(&sdk, "ecs-operator", Budget::default());
    let metrics = Arc::new(ecs_operator::metrics::Metrics::new(
        Arc::new(ecs_operator::runtime::RunnerMetrics::default()),
        Default::default(),
        Default::default(),
    ));
    let controller = Controller::new(store.clone(), Arc::new(AwsReconciler::new(aws)), metrics);
    let listing = store.list().await.expect("the store lists");
    controller.set_desired(Desired::from_listing(&listing));
    (controller, store, calls)
}

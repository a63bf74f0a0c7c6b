//! `ecs-operator verify` against moto: each family of findings caught on a purposely broken
//! spec set, the reference architecture passing with exit 0, and never a mutating call.

use std::collections::BTreeMap;

use ecs_operator::aws::CallMetrics;
use ecs_operator_tests::fixtures::{awscli, reference_specs, write_specs, Network};
use ecs_operator_tests::{cli_counted, Moto, Output};
use serde_json::Value;

const TRUST_ECS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const TRUST_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A moto with the reference network (VPC, two subnets, a security group, `example.com`).
async fn setup() -> (Moto, Network) {
    let moto = Moto::start();
    let net = Network::create(&moto, "example.com").await;
    (moto, net)
}

/// Run the AWS CLI against moto and read the dotted `path` of its JSON answer as text (`@`: the
/// whole answer, which may be empty).
fn aws_cli(moto: &Moto, args: &[&str], path: &str) -> String {
    let answer = awscli(moto, args);
    if path == "@" {
        return answer.to_string();
    }
    let mut v = &answer;
    for part in path.split('.') {
        v = v
            .get(part)
            .unwrap_or_else(|| panic!("aws {args:?}: no {path} in {answer}"));
    }
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}
/// Create an IAM role with `trust` as its trust policy; its ARN.
fn role(moto: &Moto, name: &str, trust: &str) -> String {
    aws_cli(
        moto,
        &[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            trust,
        ],
        "Role.Arn",
    )
}

/// What `verify` printed as JSON, plus its exit code; asserts it made no mutating AWS call.
struct Verified {
    out: Output,
    json: Value,
}

impl Verified {
    /// Findings as (severity, spec, field).
    fn findings(&self) -> Vec<(String, String, String)> {
        self.json["findings"]
            .as_array()
            .expect("findings is an array")
            .iter()
            .map(|f| {
                (
                    f["severity"].as_str().unwrap().to_string(),
                    f["spec"].as_str().unwrap().to_string(),
                    f["field"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The one finding on (spec, field); panics when there is none or several.
    fn at(&self, spec: &str, field: &str) -> &Value {
        let all: Vec<&Value> = self.json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["spec"] == spec && f["field"] == field)
            .collect();
        assert_eq!(all.len(), 1, "findings on {spec} {field}: {:#}", self.json);
        all[0]
    }
}

/// Run `verify --store file://DIR -o json [NAME...]` on `files`.
async fn verify(moto: &Moto, files: &[(&str, String)], names: &[&str]) -> Verified {
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), files);
    let url = format!("file://{}", dir.path().display());
    let mut args = vec!["verify", "--store", &url, "-o", "json"];
    args.extend_from_slice(names);
    let calls = CallMetrics::new();
    let out = cli_counted(&args, Some(moto.sdk_config().await), Some(calls.clone())).await;
    let writes: BTreeMap<String, u64> = calls
        .snapshot()
        .into_iter()
        .filter(|(l, n)| *n > 0 && ecs_operator::aws::calls::is_mutating(&l.operation))
        .map(|(l, n)| (format!("{}/{}", l.service, l.operation), n))
        .collect();
    assert!(writes.is_empty(), "verify made mutating calls: {writes:?}");
    assert!(
        calls.snapshot().values().sum::<u64>() > 0,
        "verify read nothing from AWS: {out:?}"
    );
    let json = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("verify -o json printed no JSON ({e}): {out:?}"));
    Verified { out, json }
}

fn service(name: &str, net: &Network, extra: &str) -> String {
    format!(
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {{name: {name}}}\nspec:\n  \
         cluster: prod\n  network: {{subnets: [{s0}, {s1}], securityGroups: [{sg}]}}\n{extra}",
        s0 = net.subnets[0],
        s1 = net.subnets[1],
        sg = net.security_group,
    )
}

const NGINX: &str =
    "  container: {name: c, image: public.ecr.aws/nginx/nginx:1.27, cpu: 256, memory: 512}\n";

#[tokio::test]
async fn the_reference_architecture_passes_with_exit_0_and_notes_the_repository_the_operator_will_create(
) {
    let (moto, net) = setup().await;
    let v = verify(&moto, &reference_specs(&net), &[]).await;
    assert_eq!(v.out.code, 0, "{:?}", v.out);
    assert_eq!(v.json["errors"], 0, "{:#}", v.json);
    assert_eq!(v.json["warnings"], 0, "{:#}", v.json);
    assert_eq!(
        v.findings(),
        vec![(
            "note".to_string(),
            "ServiceSpec/web".to_string(),
            "spec.container.image".to_string()
        )]
    );
    assert!(v.at("ServiceSpec/web", "spec.container.image")["problem"]
        .as_str()
        .unwrap()
        .contains("`trust-estate-server` does not exist yet"));
    assert_eq!(
        v.json["specs"],
        serde_json::json!(["ClusterSpec/prod", "ServiceSpec/admin", "ServiceSpec/web"])
    );

    // The table says the same, and exit 0.
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &reference_specs(&net));
    let url = format!("file://{}", dir.path().display());
    let table = cli_counted(
        &["verify", "--store", &url],
        Some(moto.sdk_config().await),
        None,
    )
    .await;
    assert_eq!(table.code, 0, "{table:?}");
    assert!(
        table.stdout.starts_with("SEVERITY  SPEC"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .contains("verified 3 specs: 0 errors, 0 warnings, 1 note"),
        "{}",
        table.stdout
    );
}

#[tokio::test]
async fn roles_that_are_missing_or_do_not_trust_ecs_tasks_are_errors_and_trusting_ones_pass() {
    let (moto, net) = setup().await;
    let good = role(&moto, "exec", TRUST_ECS);
    let ec2_only = role(&moto, "ec2-only", TRUST_EC2);
    let files = vec![
        (
            "bad.yaml",
            service(
                "bad",
                &net,
                &format!(
                    "{NGINX}  executionRoleArn: arn:aws:iam::123456789012:role/no-such-role\n  taskRoleArn: {ec2_only}\n"
                ),
            ),
        ),
        (
            "good.yaml",
            service(
                "good",
                &net,
                &format!("{NGINX}  executionRoleArn: {good}\n  taskRoleArn: {good}\n"),
            ),
        ),
    ];
    let v = verify(&moto, &files, &[]).await;
    assert_eq!(v.out.code, 1, "{:?}", v.out);
    assert!(
        v.out.stderr.contains("2 errors in 1 of 2 specs"),
        "{:?}",
        v.out
    );
    let missing = v.at("ServiceSpec/bad", "spec.executionRoleArn");
    assert_eq!(missing["severity"], "error");
    assert!(missing["problem"]
        .as_str()
        .unwrap()
        .contains("`no-such-role`"));
    assert!(missing["fix"]
        .as_str()
        .unwrap()
        .contains("ecs-tasks.amazonaws.com"));
    let untrusting = v.at("ServiceSpec/bad", "spec.taskRoleArn");
    assert!(
        untrusting["problem"]
            .as_str()
            .unwrap()
            .contains("does not trust ecs-tasks.amazonaws.com"),
        "{untrusting}"
    );
    assert!(
        v.findings().iter().all(|f| f.1 != "ServiceSpec/good"),
        "{:#}",
        v.json
    );
}

#[tokio::test]
async fn images_missing_from_ecr_or_not_parseable_are_errors() {
    let (moto, net) = setup().await;
    let uri = aws_cli(
        &moto,
        &["ecr", "create-repository", "--repository-name", "base"],
        "repository.repositoryUri",
    );
    aws_cli(
        &moto,
        &[
            "ecr",
            "put-image",
            "--repository-name",
            "base",
            "--image-tag",
            "v1",
            "--image-manifest",
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#,
        ],
        "image.imageId.imageTag",
    );
    let image = |name: &str, image: &str| {
        service(
            name,
            &net,
            &format!("  container: {{name: c, image: \"{image}\", cpu: 256, memory: 512}}\n"),
        )
    };
    let files = vec![
        ("present.yaml", image("present", &format!("{uri}:v1"))),
        ("no-tag.yaml", image("no-tag", &format!("{uri}:v2"))),
        (
            "no-repo.yaml",
            image(
                "no-repo",
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/nothing-here:v1",
            ),
        ),
        (
            "unparseable.yaml",
            image("unparseable", "Docker.io/Library/NGINX:1"),
        ),
    ];
    let v = verify(&moto, &files, &[]).await;
    assert_eq!(v.out.code, 1, "{:?}", v.out);
    assert!(v
        .findings()
        .iter()
        .all(|f| f.0 == "error" && f.2 == "spec.container.image"));
    assert!(
        v.findings().iter().all(|f| f.1 != "ServiceSpec/present"),
        "{:#}",
        v.json
    );
    let no_tag = v.at("ServiceSpec/no-tag", "spec.container.image");
    assert!(
        no_tag["problem"]
            .as_str()
            .unwrap()
            .contains("no image with tag v2"),
        "{no_tag}"
    );
    let no_repo = v.at("ServiceSpec/no-repo", "spec.container.image");
    assert!(
        no_repo["problem"]
            .as_str()
            .unwrap()
            .contains("repository `nothing-here` of registry 123456789012 does not exist"),
        "{no_repo}"
    );
    let bad = v.at("ServiceSpec/unparseable", "spec.container.image");
    assert!(
        bad["problem"]
            .as_str()
            .unwrap()
            .contains("not an image reference"),
        "{bad}"
    );
}

#[tokio::test]
async fn malformed_secret_arns_are_errors_and_readability_moto_cannot_simulate_is_a_warning() {
    let (moto, net) = setup().await;
    let exec = role(&moto, "exec", TRUST_ECS);
    let files = vec![(
        "secrets.yaml",
        service(
            "app",
            &net,
            &format!(
                "  container:\n    name: c\n    image: public.ecr.aws/nginx/nginx:1.27\n    cpu: 256\n    memory: 512\n    \
                 secrets:\n      BUCKET: \"arn:aws:s3:::my-bucket\"\n      DB_URL: \"arn:aws:ssm:eu-west-1:123456789012:parameter/db-url\"\n      \
                 TOKEN: \"arn:aws:secretsmanager:eu-west-1:123456789012:secret:token-AbCdEf\"\n  executionRoleArn: {exec}\n"
            ),
        ),
    )];
    let v = verify(&moto, &files, &[]).await;
    assert_eq!(v.out.code, 1, "{:?}", v.out);
    let bucket = v.at("ServiceSpec/app", "spec.container.secrets.BUCKET");
    assert_eq!(bucket["severity"], "error");
    assert!(
        bucket["problem"].as_str().unwrap().contains("`s3`"),
        "{bucket}"
    );
    // moto answers SimulatePrincipalPolicy with a 500: said, never passed.
    for (field, action) in [
        ("spec.container.secrets.DB_URL", "ssm:GetParameters"),
        (
            "spec.container.secrets.TOKEN",
            "secretsmanager:GetSecretValue",
        ),
    ] {
        let f = v.at("ServiceSpec/app", field);
        assert_eq!(f["severity"], "warning", "{f}");
        let problem = f["problem"].as_str().unwrap();
        assert!(problem.contains("could not be checked"), "{f}");
        assert!(problem.contains(action), "{f}");
        assert!(problem.contains("SimulatePrincipalPolicy"), "{f}");
    }
    assert_eq!(v.json["errors"], 1, "{:#}", v.json);
}

#[tokio::test]
async fn hosted_zones_that_do_not_exist_are_errors_by_name_and_by_id() {
    let (moto, net) = setup().await;
    let mut files = reference_specs(&net);
    files.retain(|(name, _)| *name != "service-web.yaml");
    files[0].1 = files[0]
        .1
        .replace("hostedZone: example.com", "hostedZone: example.org");
    files[1].1 = files[1].1.replace(
        "dns: {hostedZone: example.com}",
        "dns: {hostedZone: Z0000NOSUCHZONE}",
    );
    let v = verify(&moto, &files, &[]).await;
    assert_eq!(v.out.code, 1, "{:?}", v.out);
    let by_name = v.at(
        "ClusterSpec/prod",
        "spec.loadBalancers[0].certificate.hostedZone",
    );
    assert!(
        by_name["problem"]
            .as_str()
            .unwrap()
            .contains("named `example.org`"),
        "{by_name}"
    );
    let by_id = v.at("ServiceSpec/admin", "spec.ingress.dns.hostedZone");
    assert!(
        by_id["problem"]
            .as_str()
            .unwrap()
            .contains("id `Z0000NOSUCHZONE`"),
        "{by_id}"
    );
    assert_eq!(v.json["errors"], 2, "{:#}", v.json);
}

#[tokio::test]
async fn subnets_and_security_groups_must_exist_and_share_one_vpc() {
    let (moto, net) = setup().await;
    let other_vpc = aws_cli(
        &moto,
        &["ec2", "create-vpc", "--cidr-block", "10.9.0.0/16"],
        "Vpc.VpcId",
    );
    let other_sg = aws_cli(
        &moto,
        &[
            "ec2",
            "create-security-group",
            "--group-name",
            "elsewhere",
            "--description",
            "another VPC",
            "--vpc-id",
            &other_vpc,
        ],
        "GroupId",
    );
    let files = vec![(
        "net.yaml",
        format!(
            "apiVersion: ecs-operator.io/v1alpha1\nkind: ServiceSpec\nmetadata: {{name: app}}\nspec:\n  cluster: prod\n{NGINX}  \
             network: {{subnets: [{s0}, subnet-0000dead], securityGroups: [{other_sg}, sg-0000dead]}}\n",
            s0 = net.subnets[0],
        ),
    )];
    let v = verify(&moto, &files, &[]).await;
    assert_eq!(v.out.code, 1, "{:?}", v.out);
    let subnet = v.at("ServiceSpec/app", "spec.network.subnets[1]");
    assert!(subnet["problem"]
        .as_str()
        .unwrap()
        .contains("`subnet-0000dead` does not exist"));
    let sg = v.at("ServiceSpec/app", "spec.network.securityGroups[1]");
    assert!(sg["problem"]
        .as_str()
        .unwrap()
        .contains("`sg-0000dead` does not exist"));
    let mixed = v.at("ServiceSpec/app", "spec.network");
    let problem = mixed["problem"].as_str().unwrap();
    assert!(
        problem.contains(&net.vpc) && problem.contains(&other_vpc),
        "{mixed}"
    );
    assert_eq!(v.json["errors"], 3, "{:#}", v.json);
}

#[tokio::test]
async fn capacity_providers_need_auto_scaling_groups_that_exist() {
    let (moto, net) = setup().await;
    aws_cli(
        &moto,
        &[
            "autoscaling",
            "create-launch-configuration",
            "--launch-configuration-name",
            "lc",
            "--image-id",
            "ami-12c6146b",
            "--instance-type",
            "t3.micro",
        ],
        "@",
    );
    aws_cli(
        &moto,
        &[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            "prod-ecs-asg",
            "--launch-configuration-name",
            "lc",
            "--min-size",
            "0",
            "--max-size",
            "2",
            "--vpc-zone-identifier",
            &net.subnets.join(","),
        ],
        "@",
    );
    let files = vec![(
        "cluster.yaml",
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {name: prod}\nspec:\n  \
         capacityProviders:\n    - {name: there, autoScalingGroup: prod-ecs-asg}\n    \
         - {name: gone, autoScalingGroup: no-such-asg}\n"
            .to_string(),
    )];
    let v = verify(&moto, &files, &[]).await;
    assert_eq!(v.out.code, 1, "{:?}", v.out);
    assert_eq!(
        v.findings(),
        vec![(
            "error".to_string(),
            "ClusterSpec/prod".to_string(),
            "spec.capacityProviders[1].autoScalingGroup".to_string()
        )]
    );
    assert!(v.at(
        "ClusterSpec/prod",
        "spec.capacityProviders[1].autoScalingGroup"
    )["problem"]
        .as_str()
        .unwrap()
        .contains("`no-such-asg` does not exist"));
}

#[tokio::test]
async fn only_the_named_specs_are_verified_and_an_invalid_one_is_an_error() {
    let (moto, net) = setup().await;
    let mut files = reference_specs(&net);
    files.push((
        "broken.yaml",
        service(
            "broken",
            &net,
            "  container: {name: c, image: nginx, cpu: 256, memory: two}\n",
        ),
    ));
    let v = verify(&moto, &files, &["admin", "ClusterSpec/prod"]).await;
    assert_eq!(v.out.code, 0, "{:?}", v.out);
    assert_eq!(
        v.json["specs"],
        serde_json::json!(["ClusterSpec/prod", "ServiceSpec/admin"])
    );
    let v = verify(&moto, &files, &["broken", "admin"]).await;
    assert_eq!(v.out.code, 1, "{:?}", v.out);
    let f = v.at("ServiceSpec/broken", "");
    assert!(
        f["problem"]
            .as_str()
            .unwrap()
            .contains("spec.container.memory"),
        "{f}"
    );

    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &files);
    let url = format!("file://{}", dir.path().display());
    let unknown = cli_counted(
        &["verify", "--store", &url, "nope"],
        Some(moto.sdk_config().await),
        None,
    )
    .await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(
        unknown.stderr.contains("no spec named `nope`"),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn an_aws_endpoint_that_cannot_be_reached_is_an_environment_error_not_a_pass() {
    let (moto, net) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &reference_specs(&net));
    let url = format!("file://{}", dir.path().display());
    // Nothing listens there once the listener is dropped.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(closed)
        .region(aws_config::Region::new(ecs_operator_tests::REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let out = cli_counted(&["verify", "--store", &url], Some(sdk), None).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("cannot reach AWS"), "{out:?}");
    drop(moto);
}

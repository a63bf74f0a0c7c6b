//! The pre-existing network and Auto Scaling group the ECS tests build on (created with the
//! venv's awscli, so the tests need no EC2 SDK crate), and the specs they reconcile.

pub use crate::fixtures::awscli;
use crate::fixtures::{security_group, vpc_with_subnets};
use crate::Moto;
use aws_sdk_ecs::types::{AutoScalingGroupProvider, Cluster, ClusterField, Service};

/// The pre-existing network and Auto Scaling group the specs refer to.
pub struct Fixture {
    pub subnets: [String; 2],
    pub sg: String,
}

/// The network (two subnets, a security group `tasks`) and the Auto Scaling group
/// `prod-ecs-asg` (launch configuration `ecs-lc`, 0 to 4 instances) made in `moto`.
pub fn fixture(moto: &Moto) -> Fixture {
    let (vpc, subnets) = vpc_with_subnets(moto);
    let sg = security_group(moto, &vpc, "tasks", "tasks");
    awscli(
        moto,
        &[
            "autoscaling",
            "create-launch-configuration",
            "--launch-configuration-name",
            "ecs-lc",
            "--image-id",
            "ami-12c6146b",
            "--instance-type",
            "t3.micro",
        ],
    );
    awscli(
        moto,
        &[
            "autoscaling",
            "create-auto-scaling-group",
            "--auto-scaling-group-name",
            "prod-ecs-asg",
            "--launch-configuration-name",
            "ecs-lc",
            "--min-size",
            "0",
            "--max-size",
            "4",
            "--vpc-zone-identifier",
            &subnets.join(","),
        ],
    );
    Fixture { subnets, sg }
}

pub const CLUSTER: &str = r#"
apiVersion: ecs-operator.io/v1alpha1
kind: ClusterSpec
metadata: {name: prod}
spec:
  containerInsights: true
  capacityProviders:
    - name: prod-ec2
      autoScalingGroup: prod-ecs-asg
      managedScaling: {targetCapacity: 75, minimumScalingStepSize: 1, maximumScalingStepSize: 10}
      managedTerminationProtection: true
  defaultCapacityProviderStrategy:
    - {capacityProvider: prod-ec2, weight: 1, base: 1}
"#;

/// Two ServiceSpecs in `prod` on `f`'s network: `web` (`desired` tasks of `image`, on the
/// capacity provider, with health check, placement and circuit breaker) and `worker`
/// (autoscaled 2 to 4).
pub fn services(f: &Fixture, image: &str, desired: u32) -> String {
    format!(
        r#"
apiVersion: ecs-operator.io/v1alpha1
kind: ServiceSpec
metadata: {{name: web}}
spec:
  cluster: prod
  desiredCount: {desired}
  container:
    name: app
    image: {image}
    port: 8080
    cpu: 256
    memory: 512
    environment: {{NODE_ENV: production, LOG_LEVEL: info}}
    secrets: {{DATABASE_URL: "arn:aws:ssm:eu-west-1:123456789012:parameter/db-url"}}
    healthCheck: {{command: [CMD-SHELL, "wget -q --spider http://localhost:8080/health || exit 1"], intervalSeconds: 30, timeoutSeconds: 10, retries: 3, startPeriodSeconds: 30}}
    logGroup: /ecs/web
  executionRoleArn: arn:aws:iam::123456789012:role/ecsTaskExecutionRole
  network: {{subnets: [{s0}, {s1}], securityGroups: [{sg}], assignPublicIp: false}}
  capacityProviderStrategy: [{{capacityProvider: prod-ec2, weight: 1}}]
  placement:
    strategy: [{{type: spread, field: "attribute:ecs.availability-zone"}}, {{type: spread, field: instanceId}}]
  deployment: {{minimumHealthyPercent: 100, maximumPercent: 200, circuitBreaker: {{enable: true, rollback: true}}}}
---
apiVersion: ecs-operator.io/v1alpha1
kind: ServiceSpec
metadata: {{name: worker}}
spec:
  cluster: prod
  container: {{name: worker, image: "busybox:1.36", cpu: 256, memory: 512}}
  network: {{subnets: [{s0}, {s1}], securityGroups: [{sg}]}}
  autoscaling: {{minCapacity: 2, maxCapacity: 4, targetCpuUtilization: 60}}
"#,
        s0 = f.subnets[0],
        s1 = f.subnets[1],
        sg = f.sg,
    )
}

/// A fresh folder holding `cluster.yaml` ([`CLUSTER`]) and `services.yaml` ([`services`] on
/// `f`: two `nginx:1.25` tasks of `web`).
pub fn spec_folder(f: &Fixture) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join("cluster.yaml"), CLUSTER).expect("write cluster.yaml");
    std::fs::write(
        dir.path().join("services.yaml"),
        services(f, "nginx:1.25", 2),
    )
    .expect("write services.yaml");
    dir
}

/// The ECS service `name` of the cluster `prod`, as DescribeServices answers it (`None` when
/// it answers none); panics when the call fails.
pub async fn find_service(ecs: &aws_sdk_ecs::Client, name: &str) -> Option<Service> {
    ecs.describe_services()
        .cluster("prod")
        .services(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeServices prod/{name}: {e:?}"))
        .services()
        .first()
        .cloned()
}

/// The ECS cluster `name` with its tags and settings, as DescribeClusters answers it; panics
/// when the call fails or answers none.
pub async fn cluster(ecs: &aws_sdk_ecs::Client, name: &str) -> Cluster {
    ecs.describe_clusters()
        .clusters(name)
        .include(ClusterField::Tags)
        .include(ClusterField::Settings)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeClusters {name}: {e:?}"))
        .clusters()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no ECS cluster {name}"))
}

/// The Auto Scaling group provider of the ECS capacity provider `name`; panics when the call
/// fails, answers none, or the capacity provider has no Auto Scaling group.
pub async fn asg_provider(ecs: &aws_sdk_ecs::Client, name: &str) -> AutoScalingGroupProvider {
    ecs.describe_capacity_providers()
        .capacity_providers(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DescribeCapacityProviders {name}: {e:?}"))
        .capacity_providers()
        .first()
        .and_then(|c| c.auto_scaling_group_provider())
        .cloned()
        .unwrap_or_else(|| panic!("no capacity provider {name} with an Auto Scaling group"))
}

/// [`find_service`], panicking when there is none.
pub async fn service(ecs: &aws_sdk_ecs::Client, name: &str) -> Service {
    find_service(ecs, name)
        .await
        .unwrap_or_else(|| panic!("no ECS service prod/{name}"))
}

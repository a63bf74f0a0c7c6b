//! The spec documents (`ClusterSpec`, `ServiceSpec`) as serde types; docs/spec-reference.md
//! describes every field (a test keeps it complete).
//!
//! Invariants:
//! - every struct denies unknown fields, so a typo is an error with its path, never silently ignored;
//! - every default lives here (a `default = ...` function per field), so the JSON Schema, the
//!   validator and the reconcilers all see one set of defaults;
//! - ranges that AWS enforces are declared on the field (`#[schemars(range(...))]`), so the schema
//!   checks them and the error names the field.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The only API version this operator understands.
pub const API_VERSION: &str = "ecs-operator.io/v1alpha1";

/// The API version; always `ecs-operator.io/v1alpha1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    #[serde(rename = "ecs-operator.io/v1alpha1")]
    V1alpha1,
}

/// Always `ClusterSpec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClusterSpecKind {
    ClusterSpec,
}

/// Always `ServiceSpec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServiceSpecKind {
    ServiceSpec,
}

/// `metadata` of every spec document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// DNS label (lowercase letters, digits and `-`, at most 63), unique per kind in a store.
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `ecs-operator.io/adopt: "true"` lets the spec take over existing unowned resources.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What happens to AWS resources when their spec leaves the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the resources; mark their ownership tags released.
    Retain,
    /// Delete what the spec owns.
    Delete,
}

/// Whether the operator writes to AWS for this spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read, plan and apply (the default).
    #[default]
    Enforce,
    /// Read and report drift, never write.
    Observe,
}

// ---------------------------------------------------------------------------------------------
// ClusterSpec
// ---------------------------------------------------------------------------------------------

/// Shared infrastructure of one ECS cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ClusterSpec")]
pub struct ClusterSpec {
    pub api_version: ApiVersion,
    pub kind: ClusterSpecKind,
    pub metadata: Metadata,
    pub spec: ClusterSpecFields,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterSpecFields {
    /// AWS region of the cluster and its services; default: the operator's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Another AWS account, reached by assuming a role; default: the operator's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    /// ECS cluster name; default: `metadata.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// CloudWatch Container Insights; absent means the account default is left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_insights: Option<bool>,
    /// ASG-backed capacity providers; the Auto Scaling groups exist already.
    #[serde(default)]
    pub capacity_providers: Vec<CapacityProvider>,
    /// The cluster's default strategy; may also name FARGATE / FARGATE_SPOT.
    #[serde(default)]
    pub default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// Application Load Balancers shared by the cluster's services.
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default = "default_cluster_deletion_policy")]
    pub deletion_policy: DeletionPolicy,
    /// Neither read nor write this spec's resources.
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub mode: Mode,
}

/// The account a cluster lives in: the operator's credentials assume `roleArn`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Account {
    /// The 12-digit account id; checked against the assumed identity.
    pub id: String,
    /// The IAM role in that account the operator assumes.
    pub role_arn: String,
    /// The external id the role's trust policy requires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

fn default_cluster_deletion_policy() -> DeletionPolicy {
    DeletionPolicy::Retain
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityProvider {
    /// Capacity provider name (1-255 letters, digits, `-`, `_`; not prefixed `aws`, `ecs` or `fargate`).
    pub name: String,
    /// The Auto Scaling group behind the provider: the name or ARN of an existing group, or a
    /// group the ClusterSpec creates and owns.
    pub auto_scaling_group: AutoScalingGroupRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_scaling: Option<ManagedScaling>,
    /// Requires managedScaling (and scale-in protection on the ASG).
    #[serde(default)]
    pub managed_termination_protection: bool,
}

/// `capacityProviders[].autoScalingGroup`: a string names an existing group (never changed by
/// the operator); an object is a group the ClusterSpec creates, keeps and owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum AutoScalingGroupRef {
    /// Name or ARN of an existing Auto Scaling group.
    Existing(String),
    /// A group the operator creates from an existing launch template.
    Owned(OwnedAutoScalingGroup),
}

impl AutoScalingGroupRef {
    /// The group's name, or the ARN an existing group was given by.
    pub fn name(&self) -> &str {
        match self {
            AutoScalingGroupRef::Existing(s) => s,
            AutoScalingGroupRef::Owned(g) => &g.name,
        }
    }

    /// The group the spec owns, if it owns one.
    pub fn owned(&self) -> Option<&OwnedAutoScalingGroup> {
        match self {
            AutoScalingGroupRef::Existing(_) => None,
            AutoScalingGroupRef::Owned(g) => Some(g),
        }
    }
}

impl From<&str> for AutoScalingGroupRef {
    fn from(s: &str) -> Self {
        AutoScalingGroupRef::Existing(s.to_string())
    }
}

/// An Auto Scaling group the ClusterSpec owns. The operator keeps its size limits, launch
/// template, subnets and scale-in protection; the desired capacity belongs to ECS managed
/// scaling (or whoever scales the group) and is never set, except to 0 when the spec is deleted
/// under `deletionPolicy: Delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnedAutoScalingGroup {
    /// The group's name (1-255 characters, no `:`).
    pub name: String,
    /// The existing EC2 launch template instances are launched from.
    pub launch_template: LaunchTemplateRef,
    /// Subnet ids the group launches into (one or more, in the cluster's VPC).
    #[schemars(length(min = 1, max = 16))]
    pub subnets: Vec<String>,
    #[schemars(range(max = 10000))]
    pub min_size: u32,
    #[schemars(range(max = 10000))]
    pub max_size: u32,
    /// New instances are protected from scale-in; required when the provider has
    /// `managedTerminationProtection`.
    #[serde(default)]
    pub protect_from_scale_in: bool,
}

/// A launch template by name and version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LaunchTemplateRef {
    /// The launch template's name (3-128 letters, digits, `(`, `)`, `.`, `-`, `/`, `_`).
    pub name: String,
    /// `$Default`, `$Latest` or a version number.
    #[serde(default = "default_launch_template_version")]
    pub version: String,
}

fn default_launch_template_version() -> String {
    "$Default".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedScaling {
    /// Target utilisation of the ASG's instances, in percent.
    #[schemars(range(min = 1, max = 100))]
    pub target_capacity: u32,
    #[serde(default = "default_min_step")]
    #[schemars(range(min = 1, max = 10000))]
    pub minimum_scaling_step_size: u32,
    #[serde(default = "default_max_step")]
    #[schemars(range(min = 1, max = 10000))]
    pub maximum_scaling_step_size: u32,
    /// Seconds a new instance needs before it counts; AWS default 300.
    #[serde(default = "default_instance_warmup")]
    #[schemars(range(max = 10000))]
    pub instance_warmup_period: u32,
}

fn default_min_step() -> u32 {
    1
}
fn default_max_step() -> u32 {
    10000
}
fn default_instance_warmup() -> u32 {
    300
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityProviderStrategyItem {
    /// A capacity provider the cluster declares, or FARGATE / FARGATE_SPOT.
    pub capacity_provider: String,
    #[serde(default = "default_weight")]
    #[schemars(range(max = 1000))]
    pub weight: u32,
    #[serde(default)]
    #[schemars(range(max = 100000))]
    pub base: u32,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    #[default]
    InternetFacing,
    Internal,
}

impl Scheme {
    /// The ELBv2 API's spelling.
    pub fn as_aws(self) -> &'static str {
        match self {
            Scheme::InternetFacing => "internet-facing",
            Scheme::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    /// ALB name: 1-32 letters, digits and `-`, not starting or ending with `-`.
    pub name: String,
    #[serde(default)]
    pub scheme: Scheme,
    /// At least two subnets in different availability zones.
    #[schemars(length(min = 2))]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub deletion_protection: bool,
    #[serde(default = "default_idle_timeout")]
    #[schemars(range(min = 1, max = 4000))]
    pub idle_timeout_seconds: u32,
    #[serde(default = "default_ssl_policy")]
    pub ssl_policy: String,
    /// HTTP :80 answers 301 to https :443, keeping host, path and query.
    #[serde(default = "default_true")]
    pub https_redirect: bool,
    /// The HTTPS listener's default certificate, requested from ACM and validated through DNS.
    pub certificate: CertificateSpec,
    /// CloudWatch alarms on the load balancer, notifying an SNS topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<LoadBalancerAlarms>,
}

fn default_idle_timeout() -> u32 {
    60
}
/// The SSL policy used when a load balancer does not name one.
pub const DEFAULT_SSL_POLICY: &str = "ELBSecurityPolicy-TLS13-1-2-2021-06";
fn default_ssl_policy() -> String {
    DEFAULT_SSL_POLICY.to_string()
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSpec {
    /// The first is the certificate's domain name, the rest its alternative names.
    #[schemars(length(min = 1, max = 10))]
    pub domains: Vec<String>,
    /// Route53 hosted zone (name or id) that holds the DNS validation records.
    pub hosted_zone: String,
}

// ---------------------------------------------------------------------------------------------
// ServiceSpec
// ---------------------------------------------------------------------------------------------

/// One ECS service and everything in front of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "ServiceSpec")]
pub struct ServiceSpec {
    pub api_version: ApiVersion,
    pub kind: ServiceSpecKind,
    pub metadata: Metadata,
    pub spec: ServiceSpecFields,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSpecFields {
    /// `metadata.name` of a ClusterSpec.
    pub cluster: String,
    /// Ignored while autoscaling owns the count.
    #[serde(default = "default_desired_count")]
    #[schemars(range(max = 5000))]
    pub desired_count: u32,
    /// An ECR repository this spec owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<Repository>,
    pub container: Container,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    pub network: Network,
    /// Empty: the cluster's default strategy.
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(default)]
    pub placement: Placement,
    #[serde(default)]
    pub deployment: Deployment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
    /// The log group of `container.logGroup`, created and owned; `errorPattern` counts matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Logs>,
    /// CloudWatch alarms on the service, notifying an SNS topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<ServiceAlarms>,
    #[serde(default = "default_service_deletion_policy")]
    pub deletion_policy: DeletionPolicy,
    /// Neither read nor write this spec's resources.
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub mode: Mode,
}

fn default_desired_count() -> u32 {
    1
}
fn default_service_deletion_policy() -> DeletionPolicy {
    DeletionPolicy::Delete
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum TagMutability {
    #[default]
    Mutable,
    Immutable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Repository {
    /// ECR repository name: 2-256 of lowercase letters, digits, `.`, `_`, `-` and `/`.
    pub name: String,
    #[serde(default)]
    pub image_tag_mutability: TagMutability,
    #[serde(default)]
    pub scan_on_push: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
}

/// Rendered to ECR lifecycle rules, the untagged rule first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lifecycle {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub expire_untagged_after_days: Option<u32>,
    #[serde(default)]
    pub keep_tagged: Vec<KeepTagged>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeepTagged {
    #[schemars(length(min = 1))]
    pub tag_prefixes: Vec<String>,
    /// The newest `count` images with these prefixes are kept.
    #[schemars(range(min = 1))]
    pub count: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    pub name: String,
    /// `repository-name:tag` of `repository`, or a full image URI.
    pub image: String,
    /// Container port; required with `ingress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u32>,
    /// CPU units (1024 = one vCPU).
    #[schemars(range(min = 128, max = 196608))]
    pub cpu: u32,
    /// Memory in MiB.
    #[schemars(range(min = 128, max = 983040))]
    pub memory: u32,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// Name -> ARN of an SSM parameter or Secrets Manager secret.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<ContainerHealthCheck>,
    /// CloudWatch Logs group for the awslogs driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerHealthCheck {
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    #[serde(default = "default_container_hc_interval")]
    #[schemars(range(min = 5, max = 300))]
    pub interval_seconds: u32,
    #[serde(default = "default_container_hc_timeout")]
    #[schemars(range(min = 2, max = 60))]
    pub timeout_seconds: u32,
    #[serde(default = "default_container_hc_retries")]
    #[schemars(range(min = 1, max = 10))]
    pub retries: u32,
    #[serde(default)]
    #[schemars(range(max = 300))]
    pub start_period_seconds: u32,
}

fn default_container_hc_interval() -> u32 {
    30
}
fn default_container_hc_timeout() -> u32 {
    5
}
fn default_container_hc_retries() -> u32 {
    3
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    #[schemars(length(min = 1, max = 16))]
    pub subnets: Vec<String>,
    #[serde(default)]
    #[schemars(length(max = 5))]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    #[schemars(length(max = 5))]
    pub strategy: Vec<PlacementStrategy>,
    #[serde(default)]
    #[schemars(length(max = 10))]
    pub constraints: Vec<PlacementConstraint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlacementStrategyType {
    Spread,
    Binpack,
    Random,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementStrategy {
    #[serde(rename = "type")]
    pub strategy_type: PlacementStrategyType,
    /// spread: `instanceId` or `attribute:...`; binpack: `cpu` or `memory`; random: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PlacementConstraintType {
    #[serde(rename = "distinctInstance")]
    DistinctInstance,
    #[serde(rename = "memberOf")]
    MemberOf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementConstraint {
    #[serde(rename = "type")]
    pub constraint_type: PlacementConstraintType,
    /// Cluster query language expression; required for memberOf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// How ECS replaces the tasks of a service (`deploymentConfiguration.strategy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeploymentStrategy {
    /// Replace tasks in place, within minimumHealthyPercent / maximumPercent (the default).
    #[default]
    Rolling,
    /// Start the new revision beside the old one, shift all production traffic at once.
    BlueGreen,
    /// Shift `canary.percent` of the traffic first, the rest after the canary bake time.
    Canary,
    /// Shift `linear.stepPercent` of the traffic per step, baking between steps.
    Linear,
}

impl DeploymentStrategy {
    /// The ECS API's spelling.
    pub fn as_aws(self) -> &'static str {
        match self {
            DeploymentStrategy::Rolling => "ROLLING",
            DeploymentStrategy::BlueGreen => "BLUE_GREEN",
            DeploymentStrategy::Canary => "CANARY",
            DeploymentStrategy::Linear => "LINEAR",
        }
    }

    /// BlueGreen, Canary and Linear: ECS shifts traffic between two target groups.
    pub fn shifts_traffic(self) -> bool {
        self != DeploymentStrategy::Rolling
    }
}

/// A managed alarm of `spec.alarms`, by its field name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ManagedAlarm {
    Http5xxPercent,
    LatencyP99Seconds,
    CpuPercent,
    MemoryPercent,
    LogErrors,
}

impl ManagedAlarm {
    /// The field name, which is also the last part of the alarm's name.
    pub fn field(self) -> &'static str {
        match self {
            ManagedAlarm::Http5xxPercent => "http5xxPercent",
            ManagedAlarm::LatencyP99Seconds => "latencyP99Seconds",
            ManagedAlarm::CpuPercent => "cpuPercent",
            ManagedAlarm::MemoryPercent => "memoryPercent",
            ManagedAlarm::LogErrors => "logErrors",
        }
    }

    /// Whether `alarms` defines this alarm.
    pub fn defined_in(self, alarms: Option<&ServiceAlarms>) -> bool {
        let Some(a) = alarms else { return false };
        match self {
            ManagedAlarm::Http5xxPercent => a.http5xx_percent.is_some(),
            ManagedAlarm::LatencyP99Seconds => a.latency_p99_seconds.is_some(),
            ManagedAlarm::CpuPercent => a.cpu_percent.is_some(),
            ManagedAlarm::MemoryPercent => a.memory_percent.is_some(),
            ManagedAlarm::LogErrors => a.log_errors.is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    #[serde(default)]
    pub strategy: DeploymentStrategy,
    /// Rolling only.
    #[serde(default = "default_min_healthy")]
    #[schemars(range(max = 100))]
    pub minimum_healthy_percent: u32,
    /// Rolling only.
    #[serde(default = "default_max_percent")]
    #[schemars(range(min = 100, max = 400))]
    pub maximum_percent: u32,
    /// Rolling only; absent: on with rollback (Rolling), off (the other strategies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// BlueGreen/Canary/Linear: minutes both revisions run after all traffic shifted (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1440))]
    pub bake_time_minutes: Option<u32>,
    /// Canary only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryConfig>,
    /// Linear only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearConfig>,
    /// BlueGreen/Canary/Linear: a test listener rule matching this header, to the new revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_traffic: Option<TestTraffic>,
    /// BlueGreen/Canary/Linear (required): the role ECS uses to change the listener rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure_role_arn: Option<String>,
    /// Managed alarms of `spec.alarms`, by field name; a deployment rolls back when one fires.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback_on_alarms: Vec<ManagedAlarm>,
    /// Existing CloudWatch alarms (names) that roll a deployment back too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarm_names: Vec<String>,
    /// BlueGreen/Canary/Linear: lifecycle hooks (a Lambda function, or a pause).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<DeploymentHook>,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            strategy: DeploymentStrategy::Rolling,
            minimum_healthy_percent: default_min_healthy(),
            maximum_percent: default_max_percent(),
            circuit_breaker: None,
            bake_time_minutes: None,
            canary: None,
            linear: None,
            test_traffic: None,
            infrastructure_role_arn: None,
            rollback_on_alarms: Vec::new(),
            alarm_names: Vec::new(),
            hooks: Vec::new(),
        }
    }
}

impl Deployment {
    /// The circuit breaker in effect: the spec's, else on with rollback for Rolling and off for
    /// the other strategies.
    pub fn circuit_breaker(&self) -> CircuitBreaker {
        match &self.circuit_breaker {
            Some(c) => c.clone(),
            None if self.strategy.shifts_traffic() => CircuitBreaker {
                enable: false,
                rollback: false,
            },
            None => CircuitBreaker::default(),
        }
    }

    /// The bake time in effect for BlueGreen/Canary/Linear.
    pub fn bake_time(&self) -> u32 {
        self.bake_time_minutes.unwrap_or(DEFAULT_BAKE_TIME_MINUTES)
    }
}

/// The bake time when BlueGreen/Canary/Linear do not give one.
pub const DEFAULT_BAKE_TIME_MINUTES: u32 = 10;

fn default_min_healthy() -> u32 {
    100
}
fn default_max_percent() -> u32 {
    200
}

/// `deployment.canary`: the share of production traffic shifted first, and how long it bakes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryConfig {
    /// Percent, a multiple of 0.1 from 0.1 to 100.
    #[serde(default = "default_canary_percent")]
    pub percent: f64,
    #[serde(default = "default_canary_bake")]
    #[schemars(range(max = 1440))]
    pub bake_time_minutes: u32,
}

impl Default for CanaryConfig {
    fn default() -> Self {
        CanaryConfig {
            percent: default_canary_percent(),
            bake_time_minutes: default_canary_bake(),
        }
    }
}

fn default_canary_percent() -> f64 {
    5.0
}
fn default_canary_bake() -> u32 {
    10
}

/// `deployment.linear`: the share of production traffic shifted per step, and the bake between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinearConfig {
    /// Percent, a multiple of 0.1 from 3 to 100.
    #[serde(default = "default_linear_step")]
    pub step_percent: f64,
    #[serde(default = "default_linear_bake")]
    #[schemars(range(max = 1440))]
    pub step_bake_time_minutes: u32,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            step_percent: default_linear_step(),
            step_bake_time_minutes: default_linear_bake(),
        }
    }
}

fn default_linear_step() -> f64 {
    10.0
}
fn default_linear_bake() -> u32 {
    6
}

/// `deployment.testTraffic`: requests carrying `header: value` reach the new revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestTraffic {
    /// An HTTP header name (1-40 letters, digits and `-`).
    pub header: String,
    /// The value it must have (1-128 characters; `*` and `?` are wildcards, as ALB has them).
    pub value: String,
}

/// A deployment lifecycle stage a hook runs at.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HookStage {
    ReconcileService,
    PreScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
}

impl HookStage {
    /// The ECS API's spelling.
    pub fn as_aws(self) -> &'static str {
        match self {
            HookStage::ReconcileService => "RECONCILE_SERVICE",
            HookStage::PreScaleUp => "PRE_SCALE_UP",
            HookStage::PostScaleUp => "POST_SCALE_UP",
            HookStage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            HookStage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            HookStage::PreProductionTrafficShift => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            HookStage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            HookStage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
        }
    }
}

/// What ECS does when a hook does not answer in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HookTimeoutAction {
    #[default]
    Rollback,
    Continue,
}

impl HookTimeoutAction {
    pub fn as_aws(self) -> &'static str {
        match self {
            HookTimeoutAction::Rollback => "ROLLBACK",
            HookTimeoutAction::Continue => "CONTINUE",
        }
    }
}

/// One lifecycle hook: a Lambda function (`lambdaArn` + `roleArn`), or `pause: true` (the
/// deployment waits for `ecs-operator rollout continue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentHook {
    #[schemars(length(min = 1))]
    pub stages: Vec<HookStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_arn: Option<String>,
    /// The role ECS invokes the Lambda function with (required with `lambdaArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Minutes ECS waits for the hook (1-20160; ECS's default 1440).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20160))]
    pub timeout_minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_timeout: Option<HookTimeoutAction>,
    #[serde(default)]
    pub pause: bool,
}

/// The deployment circuit breaker; on with rollback unless the spec says otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreaker {
    #[serde(default = "default_true")]
    pub enable: bool,
    #[serde(default = "default_true")]
    pub rollback: bool,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            enable: true,
            rollback: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Autoscaling {
    #[schemars(range(max = 5000))]
    pub min_capacity: u32,
    #[schemars(range(max = 5000))]
    pub max_capacity: u32,
    /// Target average CPU utilisation, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization: Option<u32>,
    /// Target average memory utilisation, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_memory_utilization: Option<u32>,
    /// Target ALB requests per target per minute (needs `ingress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub target_requests_per_target: Option<u32>,
    #[serde(default = "default_scale_in_cooldown")]
    #[schemars(range(max = 3600))]
    pub scale_in_cooldown_seconds: u32,
    #[serde(default = "default_scale_out_cooldown")]
    #[schemars(range(max = 3600))]
    pub scale_out_cooldown_seconds: u32,
}

fn default_scale_in_cooldown() -> u32 {
    300
}
fn default_scale_out_cooldown() -> u32 {
    60
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ingress {
    /// A `loadBalancers[].name` of the cluster.
    pub load_balancer: String,
    #[schemars(length(min = 1))]
    pub hosts: Vec<String>,
    #[serde(default = "default_paths")]
    #[schemars(length(min = 1))]
    pub paths: Vec<String>,
    /// Listener rule priority; absent: the lowest free one, reported in status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50000))]
    pub priority: Option<u32>,
    #[serde(default)]
    pub health_check: TargetHealthCheck,
    #[serde(default = "default_deregistration_delay")]
    #[schemars(range(max = 3600))]
    pub deregistration_delay_seconds: u32,
    /// Route53 alias A records for every host, pointing at the ALB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
}

fn default_paths() -> Vec<String> {
    vec!["/*".to_string()]
}
fn default_deregistration_delay() -> u32 {
    300
}

/// The target group's health check; defaults are the ELBv2 defaults for HTTP target groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetHealthCheck {
    #[serde(default = "default_hc_path")]
    pub path: String,
    #[serde(default = "default_hc_interval")]
    #[schemars(range(min = 5, max = 300))]
    pub interval_seconds: u32,
    #[serde(default = "default_hc_timeout")]
    #[schemars(range(min = 2, max = 120))]
    pub timeout_seconds: u32,
    #[serde(default = "default_hc_healthy")]
    #[schemars(range(min = 2, max = 10))]
    pub healthy_threshold: u32,
    #[serde(default = "default_hc_unhealthy")]
    #[schemars(range(min = 2, max = 10))]
    pub unhealthy_threshold: u32,
    /// HTTP codes, e.g. `200`, `200,204` or `200-299`.
    #[serde(default = "default_hc_matcher")]
    pub matcher: String,
}

impl Default for TargetHealthCheck {
    fn default() -> Self {
        TargetHealthCheck {
            path: default_hc_path(),
            interval_seconds: default_hc_interval(),
            timeout_seconds: default_hc_timeout(),
            healthy_threshold: default_hc_healthy(),
            unhealthy_threshold: default_hc_unhealthy(),
            matcher: default_hc_matcher(),
        }
    }
}

fn default_hc_path() -> String {
    "/".to_string()
}
fn default_hc_interval() -> u32 {
    30
}
fn default_hc_timeout() -> u32 {
    5
}
fn default_hc_healthy() -> u32 {
    5
}
fn default_hc_unhealthy() -> u32 {
    2
}
fn default_hc_matcher() -> String {
    "200".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    /// Route53 hosted zone (name or id).
    pub hosted_zone: String,
}

// ---------------------------------------------------------------------------------------------
// Logs, alarms and notifications
// ---------------------------------------------------------------------------------------------

/// Retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days.
pub const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The log group of `container.logGroup`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Logs {
    /// Days CloudWatch keeps the events (one of CloudWatch's values); absent: never expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// A CloudWatch Logs filter pattern; adds a metric filter counting the matching events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub error_pattern: Option<String>,
    /// What happens to the log group when the spec leaves the store: Retain (default: logs are
    /// data) or Delete (only together with the spec's own `deletionPolicy: Delete`).
    #[serde(default = "default_logs_deletion_policy")]
    pub deletion_policy: DeletionPolicy,
}

fn default_logs_deletion_policy() -> DeletionPolicy {
    DeletionPolicy::Retain
}

/// Where alarms notify: email addresses (subscribed to an owned SNS topic) or an existing topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notify {
    /// Subscribed to the owned topic; each must confirm the subscription AWS mails it.
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub emails: Vec<String>,
    /// An existing SNS topic (never modified); excludes `emails`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_arn: Option<String>,
}

/// One alarm: it fires when the metric is above `threshold` for `periods` minutes in a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlarmRule {
    pub threshold: f64,
    /// Consecutive one-minute periods above the threshold.
    #[serde(default = "default_alarm_periods")]
    #[schemars(range(min = 1, max = 1440))]
    pub periods: u32,
}

fn default_alarm_periods() -> u32 {
    1
}

/// A ServiceSpec's alarms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAlarms {
    /// Absent: an owned SNS topic without subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// Target 5XX responses / requests of the service's target group, percent (needs ingress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http5xx_percent: Option<AlarmRule>,
    /// p99 of the target group's TargetResponseTime, seconds (needs ingress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_seconds: Option<AlarmRule>,
    /// Average CPUUtilization of the ECS service, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<AlarmRule>,
    /// Average MemoryUtilization of the ECS service, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<AlarmRule>,
    /// Log events matching `logs.errorPattern` per minute (needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_errors: Option<AlarmRule>,
}

/// A load balancer's alarms (ClusterSpec `loadBalancers[].alarms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerAlarms {
    /// Absent: an owned SNS topic without subscriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    /// HTTPCode_ELB_5XX_Count per minute (errors the load balancer itself answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elb5xx_count: Option<AlarmRule>,
    /// RejectedConnectionCount per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_connections: Option<AlarmRule>,
}

//! The ECS cluster: existence, the container insights setting, ownership tags, and the cluster's
//! capacity providers with its default strategy.

mod gc;
pub use gc::{SEEN, SEEN_PROVIDERS};

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ecs::types::{
    CapacityProviderStrategyItem as AwsStrategyItem, Cluster, ClusterField, ClusterSetting,
    ClusterSettingName,
};

use crate::aws::Service;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::run::tag_step;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::ecs_tags;
use crate::resources::ResourceError;
use crate::spec::types::{CapacityProviderStrategyItem, ClusterSpec};
use std::time::Duration;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "ecs:cluster";

/// Providers AWS offers without creating them.
pub const BUILTIN_PROVIDERS: [&str; 2] = ["FARGATE", "FARGATE_SPOT"];

/// The cluster as the spec wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    /// `None`: leave the account default alone.
    pub container_insights: Option<bool>,
    /// Capacity providers attached to the cluster (sorted).
    pub providers: BTreeSet<String>,
    /// Default strategy, normalised (sorted by provider; base 0 and weight as AWS reports).
    pub strategy: Vec<(String, u32, u32)>,
}

/// The cluster as AWS has it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub container_insights: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub providers: BTreeSet<String>,
    pub strategy: Vec<(String, u32, u32)>,
}

pub fn cluster_name(spec: &ClusterSpec) -> String {
    spec.spec
        .cluster_name
        .clone()
        .unwrap_or_else(|| spec.metadata.name.clone())
}

fn normalise_strategy(
    items: impl IntoIterator<Item = (String, u32, u32)>,
) -> Vec<(String, u32, u32)> {
    let mut v: Vec<_> = items.into_iter().collect();
    v.sort();
    v
}

pub fn desired(spec: &ClusterSpec) -> Desired {
    let s = &spec.spec;
    let mut providers: BTreeSet<String> = s
        .capacity_providers
        .iter()
        .map(|p| p.name.clone())
        .collect();
    for item in &s.default_capacity_provider_strategy {
        if BUILTIN_PROVIDERS.contains(&item.capacity_provider.as_str()) {
            providers.insert(item.capacity_provider.clone());
        }
    }
    Desired {
        name: cluster_name(spec),
        container_insights: s.container_insights,
        providers,
        strategy: normalise_strategy(s.default_capacity_provider_strategy.iter().map(
            |i: &CapacityProviderStrategyItem| (i.capacity_provider.clone(), i.weight, i.base),
        )),
    }
}

fn observed_from(c: &Cluster) -> Observed {
    Observed {
        arn: c.cluster_arn().unwrap_or_default().to_string(),
        container_insights: c
            .settings()
            .iter()
            .find(|s| s.name() == Some(&ClusterSettingName::ContainerInsights))
            .and_then(|s| s.value())
            .map(str::to_string),
        tags: crate::resources::shared::ecs_tags::to_map(c.tags()),
        providers: c.capacity_providers().iter().cloned().collect(),
        strategy: normalise_strategy(c.default_capacity_provider_strategy().iter().map(|i| {
            (
                i.capacity_provider().to_string(),
                i.weight() as u32,
                i.base() as u32,
            )
        })),
    }
}

/// Read the cluster; `None` when it does not exist (or is INACTIVE, i.e. deleted).
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    let out = run
        .aws
        .read(
            Service::Ecs,
            "DescribeClusters",
            name,
            run.aws
                .ecs
                .describe_clusters()
                .clusters(name)
                .include(ClusterField::Tags)
                .include(ClusterField::Settings)
                .send(),
        )
        .await?;
    Ok(out
        .clusters()
        .iter()
        .find(|c| c.status() == Some("ACTIVE"))
        .map(observed_from))
}

fn insights_value(on: bool) -> &'static str {
    if on {
        "enabled"
    } else {
        "disabled"
    }
}

/// The steps from `observed` to `desired` (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Create,
    Tag(BTreeMap<String, String>),
    Insights(bool),
    Providers,
}

pub fn plan(
    desired: &Desired,
    observed: Option<&Observed>,
    tags_missing: BTreeMap<String, String>,
) -> Vec<(Step, Change)> {
    let resource = format!("ecs cluster {}", desired.name);
    let Some(o) = observed else {
        let mut steps = vec![(Step::Create, Change::create(&resource, ""))];
        if !desired.providers.is_empty() || !desired.strategy.is_empty() {
            steps.push((
                Step::Providers,
                Change::update(
                    &resource,
                    format!("capacity providers: [] -> [{}]", join(&desired.providers)),
                ),
            ));
        }
        return steps;
    };
    let mut steps = Vec::new();
    steps.extend(tag_step(&resource, &tags_missing, Step::Tag));
    if let Some(on) = desired.container_insights {
        // AWS may report "enhanced", which is also on.
        let observed_on = matches!(
            o.container_insights.as_deref(),
            Some("enabled") | Some("enhanced")
        );
        if observed_on != on {
            steps.push((
                Step::Insights(on),
                Change::field(
                    &resource,
                    "containerInsights",
                    o.container_insights.as_deref().unwrap_or("unset"),
                    insights_value(on),
                ),
            ));
        }
    }
    if o.providers != desired.providers || o.strategy != desired.strategy {
        let detail = if o.providers != desired.providers {
            format!(
                "capacity providers: [{}] -> [{}]",
                join(&o.providers),
                join(&desired.providers)
            )
        } else {
            format!(
                "default strategy: [{}] -> [{}]",
                strategy_text(&o.strategy),
                strategy_text(&desired.strategy)
            )
        };
        steps.push((Step::Providers, Change::update(&resource, detail)));
    }
    steps
}

fn join<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|s| s.as_ref().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn strategy_text(s: &[(String, u32, u32)]) -> String {
    s.iter()
        .map(|(p, w, b)| format!("{p} weight {w} base {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Teardown of the ECS cluster (`ecs:cluster`, its ARN): providers detached, then deleted;
/// waits while it still has services or tasks. Released with `retain`.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some(name) = ecs_tags::to_delete(run, arn, "ecs cluster", retain).await? else {
        return Ok(Gone::Yes);
    };
    if run.plan(Change::delete(format!("ecs cluster {name}"), "")) {
        // Detach providers first, so they can be deleted after the cluster.
        run.aws
            .write(
                Service::Ecs,
                "PutClusterCapacityProviders",
                &name,
                run.aws
                    .ecs
                    .put_cluster_capacity_providers()
                    .cluster(&name)
                    .set_capacity_providers(Some(Vec::new()))
                    .set_default_capacity_provider_strategy(Some(Vec::new()))
                    .send(),
            )
            .await?;
        match run
            .aws
            .write(
                Service::Ecs,
                "DeleteCluster",
                &name,
                run.aws.ecs.delete_cluster().cluster(&name).send(),
            )
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.code() == Some("ClusterContainsServicesException")
                    || e.code() == Some("ClusterContainsTasksException") =>
            {
                return Ok(Gone::not_yet(
                    format!("ecs cluster {name} still has services or tasks"),
                    Duration::from_secs(30),
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// An ECS cluster, as the generic driver sees it.
    EcsClusterKind, TYPE, 11, delete, "ECS clusters", gc::list_owned
);

/// The generic driver's view of an ECS cluster: its output is the ARN (empty while only
/// planning a create).
impl Managed for EcsClusterKind {
    crate::resources::kind::by_name!("ecs cluster");
    crate::resources::kind::arn_output!();

    fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
        Plan::steps(plan(d, o, missing))
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out, .. } = at;
        match step {
            Step::Create => {
                let mut req = run.aws.ecs.create_cluster().cluster_name(&d.name);
                req = req.set_tags(Some(ecs_tags::of_map(run.tags())));
                if let Some(on) = d.container_insights {
                    req = req.settings(
                        ClusterSetting::builder()
                            .name(ClusterSettingName::ContainerInsights)
                            .value(insights_value(on))
                            .build(),
                    );
                }
                let created = run
                    .aws
                    .write(Service::Ecs, "CreateCluster", &d.name, req.send())
                    .await?;
                *out = created
                    .cluster()
                    .and_then(|c| c.cluster_arn())
                    .unwrap_or_default()
                    .to_string();
            }
            Step::Tag(tags) => {
                crate::resources::shared::ecs_tags::put(run, &d.name, out, tags).await?;
            }
            Step::Insights(on) => {
                run.aws
                    .write(
                        Service::Ecs,
                        "UpdateClusterSettings",
                        &d.name,
                        run.aws
                            .ecs
                            .update_cluster_settings()
                            .cluster(&d.name)
                            .settings(
                                ClusterSetting::builder()
                                    .name(ClusterSettingName::ContainerInsights)
                                    .value(insights_value(on))
                                    .build(),
                            )
                            .send(),
                    )
                    .await?;
            }
            Step::Providers => {
                let mut req = run
                    .aws
                    .ecs
                    .put_cluster_capacity_providers()
                    .cluster(&d.name)
                    .set_capacity_providers(Some(d.providers.iter().cloned().collect()))
                    .set_default_capacity_provider_strategy(Some(Vec::new()));
                for (p, w, b) in &d.strategy {
                    req = req.default_capacity_provider_strategy(
                        AwsStrategyItem::builder()
                            .capacity_provider(p)
                            .weight(*w as i32)
                            .base(*b as i32)
                            .build()
                            .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?,
                    );
                }
                run.aws
                    .write(
                        Service::Ecs,
                        "PutClusterCapacityProviders",
                        &d.name,
                        req.send(),
                    )
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Desired {
        Desired {
            name: "prod".into(),
            container_insights: Some(true),
            providers: BTreeSet::from(["prod-ec2".to_string()]),
            strategy: vec![("prod-ec2".into(), 1, 2)],
        }
    }

    #[test]
    fn a_matching_cluster_needs_no_steps() {
        let o = Observed {
            arn: "arn".into(),
            container_insights: Some("enabled".into()),
            tags: BTreeMap::new(),
            providers: d().providers,
            strategy: d().strategy,
        };
        assert!(plan(&d(), Some(&o), BTreeMap::new()).is_empty());
    }

    #[test]
    fn insights_left_unset_are_never_changed() {
        let mut want = d();
        want.container_insights = None;
        let o = Observed {
            container_insights: Some("disabled".into()),
            providers: want.providers.clone(),
            strategy: want.strategy.clone(),
            ..Default::default()
        };
        assert!(plan(&want, Some(&o), BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_changed_strategy_is_one_put_with_plain_words() {
        let o = Observed {
            container_insights: Some("enabled".into()),
            providers: d().providers,
            strategy: vec![("prod-ec2".into(), 1, 0)],
            ..Default::default()
        };
        let steps = plan(&d(), Some(&o), BTreeMap::new());
        assert_eq!(steps.len(), 1);
        assert_eq!(
            steps[0].1.to_string(),
            "~ ecs cluster prod default strategy: [prod-ec2 weight 1 base 0] -> [prod-ec2 weight 1 base 2]"
        );
    }
}

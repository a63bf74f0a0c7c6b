//! ASG-backed ECS capacity providers: managed scaling (target capacity, step sizes, warm-up) and
//! managed termination protection, created and updated in place. The Auto Scaling group exists
//! already or is the ClusterSpec's own (`super::auto_scaling_group`, reconciled first); it
//! cannot be changed on an existing provider.

mod gc;

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{
    AutoScalingGroupProvider, AutoScalingGroupProviderUpdate, CapacityProviderField,
    ManagedScaling, ManagedScalingStatus, ManagedTerminationProtection,
};

use crate::aws::Service;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, ManagedSet, Plan};
use crate::resources::run::{tag_step, Change, SpecRun};
use crate::resources::shared::ecs_tags;
use crate::resources::shared::tags::{ownership, Ownership};
use crate::resources::ResourceError;
use crate::spec::types::CapacityProvider;

/// The id of this kind in status ledgers and garbage-collection scans.
pub const TYPE: &str = "ecs:capacity-provider";

/// Managed scaling as compared: (target capacity, min step, max step, warm-up), or `None` when
/// disabled.
type Scaling = Option<(u32, u32, u32, u32)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub name: String,
    /// Name or ARN, as the spec says (an owned group's ARN once it exists).
    pub auto_scaling_group: String,
    pub scaling: Scaling,
    pub termination_protection: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub asg_arn: String,
    pub scaling: Scaling,
    pub termination_protection: bool,
    pub tags: BTreeMap<String, String>,
}

pub fn desired(p: &CapacityProvider) -> Desired {
    Desired {
        name: p.name.clone(),
        auto_scaling_group: p.auto_scaling_group.name().to_string(),
        scaling: p.managed_scaling.as_ref().map(|m| {
            (
                m.target_capacity,
                m.minimum_scaling_step_size,
                m.maximum_scaling_step_size,
                m.instance_warmup_period,
            )
        }),
        termination_protection: p.managed_termination_protection,
    }
}

/// Whether an ASG ARN names the group the spec gave (by name or ARN).
pub fn same_group(spec_value: &str, arn: &str) -> bool {
    if spec_value.starts_with("arn:") {
        return spec_value == arn;
    }
    arn.rsplit_once("autoScalingGroupName/")
        .is_some_and(|(_, name)| name == spec_value)
}

fn scaling_text(s: &Scaling) -> String {
    match s {
        None => "disabled".to_string(),
        Some((t, min, max, w)) => {
            format!("targetCapacity {t}, steps {min}..{max}, warm-up {w}s")
        }
    }
}

/// The steps from `o` to `d` (pure): create it when absent; else the ownership tags an adopted
/// provider lacks (`missing`), and one `Update` step per field that differs. The group cannot
/// change on an existing provider: a different one is an immutable-field finding.
pub fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
    let resource = format!("capacity provider {}", d.name);
    let Some(o) = o else {
        let change = Change::create(&resource, format!("group {}", d.auto_scaling_group));
        return Plan::steps(vec![(Step::Create, change)]);
    };
    let mut steps: Vec<(Step, Change)> = tag_step(&resource, &missing, Step::Tag)
        .into_iter()
        .collect();
    let mut immutable = Vec::new();
    if !same_group(&d.auto_scaling_group, &o.asg_arn) {
        immutable.push(ResourceError::Immutable {
            resource: resource.clone(),
            field: "autoScalingGroup".into(),
            observed: o.asg_arn.clone(),
            desired: d.auto_scaling_group.clone(),
        });
    }
    if d.scaling != o.scaling {
        let (was, want) = (scaling_text(&o.scaling), scaling_text(&d.scaling));
        let change = Change::field(&resource, "managedScaling", was, want);
        steps.push((Step::Update, change));
    }
    if d.termination_protection != o.termination_protection {
        let (was, want) = (o.termination_protection, d.termination_protection);
        let change = Change::field(&resource, "managedTerminationProtection", was, want);
        steps.push((Step::Update, change));
    }
    (steps, immutable).into()
}

/// One change a provider can need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create,
    /// Add the ownership tags an adopted provider lacks.
    Tag(BTreeMap<String, String>),
    /// One UpdateCapacityProvider sets managed scaling and termination protection together.
    Update,
}

/// Read the providers by name, 100 per call (DescribeCapacityProviders' limit; absent ones are
/// missing from the map).
pub async fn observe_names(
    run: &SpecRun<'_>,
    names: &[String],
) -> Result<BTreeMap<String, Observed>, ResourceError> {
    let answers = run
        .aws
        .read_batches(
            Service::Ecs,
            "DescribeCapacityProviders",
            names,
            100,
            |batch| {
                run.aws
                    .ecs
                    .describe_capacity_providers()
                    .set_capacity_providers(Some(batch))
                    .include(CapacityProviderField::Tags)
                    .send()
            },
        )
        .await?;
    let mut found = BTreeMap::new();
    for cp in answers.iter().flat_map(|out| out.capacity_providers()) {
        if cp.status().map(|s| s.as_str()) != Some("ACTIVE") {
            continue;
        }
        let asg = cp.auto_scaling_group_provider();
        let scaling = asg.and_then(|a| a.managed_scaling()).and_then(|m| {
            (m.status() == Some(&ManagedScalingStatus::Enabled)).then(|| {
                (
                    m.target_capacity().unwrap_or(100) as u32,
                    m.minimum_scaling_step_size().unwrap_or(1) as u32,
                    m.maximum_scaling_step_size().unwrap_or(10000) as u32,
                    m.instance_warmup_period().unwrap_or(300) as u32,
                )
            })
        });
        found.insert(
            cp.name().unwrap_or_default().to_string(),
            Observed {
                arn: cp.capacity_provider_arn().unwrap_or_default().to_string(),
                asg_arn: asg
                    .map(|a| a.auto_scaling_group_arn().to_string())
                    .unwrap_or_default(),
                scaling,
                termination_protection: asg.and_then(|a| a.managed_termination_protection())
                    == Some(&ManagedTerminationProtection::Enabled),
                tags: crate::resources::shared::ecs_tags::to_map(cp.tags()),
            },
        );
    }
    Ok(found)
}

fn managed_scaling(s: &Scaling) -> ManagedScaling {
    match s {
        None => ManagedScaling::builder()
            .status(ManagedScalingStatus::Disabled)
            .build(),
        Some((t, min, max, w)) => ManagedScaling::builder()
            .status(ManagedScalingStatus::Enabled)
            .target_capacity(*t as i32)
            .minimum_scaling_step_size(*min as i32)
            .maximum_scaling_step_size(*max as i32)
            .instance_warmup_period(*w as i32)
            .build(),
    }
}

fn protection(on: bool) -> ManagedTerminationProtection {
    if on {
        ManagedTerminationProtection::Enabled
    } else {
        ManagedTerminationProtection::Disabled
    }
}

/// The ARN of the Auto Scaling group a spec names (by name or ARN).
async fn group_arn(run: &SpecRun<'_>, group: &str) -> Result<String, ResourceError> {
    if group.starts_with("arn:") {
        return Ok(group.to_string());
    }
    super::auto_scaling_group::observe(run, group)
        .await?
        .map(|g| g.arn)
        .ok_or_else(|| {
            ResourceError::Dependency(format!("auto scaling group `{group}` does not exist"))
        })
}

/// The provider `name`, if it exists (one DescribeCapacityProviders).
pub async fn observe(run: &SpecRun<'_>, name: &str) -> Result<Option<Observed>, ResourceError> {
    Ok(observe_names(run, &[name.to_string()]).await?.remove(name))
}

/// CreateCapacityProvider on the group the spec names, with the ownership tags. Returns its
/// ARN.
async fn create(run: &SpecRun<'_>, d: &Desired) -> Result<String, ResourceError> {
    let asg_arn = group_arn(run, &d.auto_scaling_group).await?;
    let provider = AutoScalingGroupProvider::builder()
        .auto_scaling_group_arn(asg_arn)
        .managed_scaling(managed_scaling(&d.scaling))
        .managed_termination_protection(protection(d.termination_protection))
        .build()
        .map_err(|e| ResourceError::Unsatisfiable(e.to_string()))?;
    let req = run.aws.ecs.create_capacity_provider().name(&d.name);
    let req = req.auto_scaling_group_provider(provider);
    let req = req.set_tags(Some(ecs_tags::of_map(run.tags()))).send();
    let out = run
        .aws
        .write(Service::Ecs, "CreateCapacityProvider", &d.name, req)
        .await?;
    let arn = out
        .capacity_provider()
        .and_then(|c| c.capacity_provider_arn());
    Ok(arn.unwrap_or_default().to_string())
}

/// UpdateCapacityProvider with the managed scaling and termination protection `d` wants.
async fn update(run: &SpecRun<'_>, d: &Desired) -> Result<(), ResourceError> {
    let update = AutoScalingGroupProviderUpdate::builder()
        .managed_scaling(managed_scaling(&d.scaling))
        .managed_termination_protection(protection(d.termination_protection))
        .build();
    let req = run.aws.ecs.update_capacity_provider().name(&d.name);
    let req = req.auto_scaling_group_provider(update).send();
    run.aws
        .write(Service::Ecs, "UpdateCapacityProvider", &d.name, req)
        .await?;
    Ok(())
}

/// Teardown of the capacity provider (`ecs:capacity-provider`, its ARN), after its cluster.
/// Released with `retain`. Read with DescribeCapacityProviders (tags included), which lists a
/// deleted provider as INACTIVE: a deletion that spans passes finds it gone rather than asking
/// for the tags of a provider that no longer exists.
pub async fn delete(run: &mut SpecRun<'_>, arn: &str, retain: bool) -> Result<Gone, ResourceError> {
    let name = arn.rsplit('/').next().unwrap_or(arn).to_string();
    let observed = observe_names(run, std::slice::from_ref(&name)).await?;
    let Some(o) = observed.get(&name) else {
        return Ok(Gone::Yes);
    };
    if ownership(&run.aws.instance, &run.key, &o.tags) != Ownership::Ours {
        return Ok(Gone::Yes);
    }
    if retain {
        ecs_tags::release(run, arn, "capacity provider").await?;
        return Ok(Gone::Yes);
    }
    if run.plan(Change::delete(format!("capacity provider {name}"), "")) {
        run.aws
            .write(
                Service::Ecs,
                "DeleteCapacityProvider",
                &name,
                run.aws
                    .ecs
                    .delete_capacity_provider()
                    .capacity_provider(&name)
                    .send(),
            )
            .await?;
    }
    Ok(Gone::Yes)
}

crate::resources::kind::kind!(
    /// A capacity provider, as the generic driver sees it.
    CapacityProviderKind, TYPE, 12, delete, "ECS capacity providers", gc::list_owned
);

/// The generic driver's view of a capacity provider: the providers of a ClusterSpec are read
/// together (DescribeCapacityProviders, 100 names a call), then each is driven; its output is
/// its ARN. Every field difference is its own change in the plan, all of them the one `Update`
/// step: one UpdateCapacityProvider sets them all.
impl Managed for CapacityProviderKind {
    crate::resources::kind::by_name!("capacity provider");
    crate::resources::kind::arn_output!();

    fn plan(d: &Desired, o: Option<&Observed>, missing: BTreeMap<String, String>) -> Plan<Step> {
        plan(d, o, missing)
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, step: Step) -> Applied {
        let At { d, out: arn, .. } = at;
        match step {
            Step::Create => *arn = create(run, d).await?,
            Step::Tag(tags) => {
                let label = format!("capacity provider {}", d.name);
                ecs_tags::put(run, &label, arn, tags).await?;
            }
            Step::Update => update(run, d).await?,
        }
        Ok(())
    }
}

impl ManagedSet for CapacityProviderKind {
    async fn observe_set(
        run: &SpecRun<'_>,
        wanted: &[Desired],
    ) -> Result<Vec<Option<Observed>>, ResourceError> {
        let names: Vec<String> = wanted.iter().map(|d| d.name.clone()).collect();
        let mut found = observe_names(run, &names).await?;
        Ok(names.iter().map(|n| found.remove(n)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Desired {
        Desired {
            name: "prod-ec2".into(),
            auto_scaling_group: "prod-ecs-asg".into(),
            scaling: Some((75, 1, 10, 300)),
            termination_protection: true,
        }
    }

    #[test]
    fn a_group_named_by_name_matches_its_arn() {
        let arn = "arn:aws:autoscaling:eu-west-1:123456789012:autoScalingGroup:uuid:autoScalingGroupName/prod-ecs-asg";
        assert!(same_group("prod-ecs-asg", arn));
        assert!(!same_group("other", arn));
        assert!(same_group(arn, arn));
    }

    #[test]
    fn target_capacity_drift_is_one_update_and_a_new_group_is_refused() {
        let o = Observed {
            asg_arn: "arn:aws:autoscaling:r:1:autoScalingGroup:u:autoScalingGroupName/prod-ecs-asg"
                .into(),
            scaling: Some((100, 1, 10, 300)),
            termination_protection: true,
            ..Default::default()
        };
        let p = plan(&d(), Some(&o), BTreeMap::new());
        assert!(p.immutable.is_empty());
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].0, Step::Update);
        let change = p.steps[0].1.to_string();
        assert!(change.contains("targetCapacity 100"), "{change}");
        let mut other = d();
        other.auto_scaling_group = "another-asg".into();
        let p = plan(&other, Some(&o), BTreeMap::new());
        assert!(matches!(
            p.immutable.as_slice(),
            [ResourceError::Immutable { field, .. }] if field == "autoScalingGroup"
        ));
        // The other fields still converge.
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].0, Step::Update);
    }

    #[test]
    fn an_absent_provider_is_one_create_and_each_differing_field_is_its_own_update_step() {
        let p = plan(&d(), None, BTreeMap::new());
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].0, Step::Create);
        let o = Observed {
            asg_arn: "arn:aws:autoscaling:r:1:autoScalingGroup:u:autoScalingGroupName/prod-ecs-asg"
                .into(),
            scaling: None,
            termination_protection: false,
            ..Default::default()
        };
        let missing = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let steps: Vec<Step> = plan(&d(), Some(&o), missing.clone())
            .steps
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(steps, vec![Step::Tag(missing), Step::Update, Step::Update]);
    }
}

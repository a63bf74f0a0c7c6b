//! The generic reconcile of one [`Managed`] resource: observe, claim, plan, record the
//! changes, apply the steps the run hands back, record the resource in the ledger.
//!
//! Invariants: a resource carrying another spec's ownership tags fails the claim before any
//! step; immutable-field findings become the kind's condition and degrade the spec; when the
//! run only plans (`diff`, `mode: observe`) no step is applied, so nothing is written; each
//! distinct step is applied once, however many changes planned it.

use crate::resources::kind::{At, Managed, ManagedSet};
use crate::resources::run::SpecRun;
use crate::resources::ResourceError;

/// Drive the resource `d` of kind `K` toward what it asks for. Returns the kind's output (its
/// ARN or endpoint; empty parts while only planning a create).
pub async fn drive<K: Managed>(
    run: &mut SpecRun<'_>,
    d: &K::Desired,
) -> Result<K::Output, ResourceError> {
    let observed = K::observe(run, d).await?;
    drive_from::<K>(run, d, observed).await
}

/// Drive every resource of `wanted`, read together by one [`ManagedSet::observe_set`], each
/// as [`drive`] does, in order; the first error stops the rest. Returns their outputs in the
/// order of `wanted`. An empty list costs no call.
pub async fn drive_set<K: ManagedSet>(
    run: &mut SpecRun<'_>,
    wanted: &[K::Desired],
) -> Result<Vec<K::Output>, ResourceError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let observed = K::observe_set(run, wanted).await?;
    let mut outputs = Vec::with_capacity(wanted.len());
    for (d, o) in wanted.iter().zip(observed) {
        outputs.push(drive_from::<K>(run, d, o).await?);
    }
    Ok(outputs)
}

/// `steps` in order, each distinct one once: several changes that one AWS call carries out
/// (every field of one UpdateAutoScalingGroup) are planned as equal steps, one per change, so
/// that the plan names each difference, and the call is made once (pure).
fn distinct<S: PartialEq>(steps: Vec<S>) -> Vec<S> {
    let mut out: Vec<S> = Vec::with_capacity(steps.len());
    for step in steps {
        if !out.contains(&step) {
            out.push(step);
        }
    }
    out
}

/// [`drive`] from `observed`, what was read of `d` (by [`drive_set`]'s one batched read, or
/// by a pipeline that needed the read for an earlier stage too: the ECS service, whose task
/// definition is compared with the one it runs). `observed` must be what
/// [`Managed::observe`] of `d` would read.
pub async fn drive_from<K: Managed>(
    run: &mut SpecRun<'_>,
    d: &K::Desired,
    observed: Option<K::Observed>,
) -> Result<K::Output, ResourceError> {
    let missing = match &observed {
        Some(o) => K::claim(run, d, o)?,
        None => Default::default(),
    };
    let mut out = K::output(d, observed.as_ref());
    let plan = K::plan(d, observed.as_ref(), missing);
    run.immutable(K::IMMUTABLE, plan.immutable);
    for step in distinct(run.planned(plan.steps)) {
        let at = At {
            d,
            o: observed.as_ref(),
            out: &mut out,
        };
        K::apply(run, at, step).await?;
    }
    for id in K::ids(d, &out) {
        run.resource(K::TYPE, id);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::distinct;

    #[test]
    fn equal_steps_are_applied_once_in_the_order_first_planned() {
        let planned = vec!["tag", "update", "create", "update", "update"];
        assert_eq!(distinct(planned), vec!["tag", "update", "create"]);
        assert_eq!(distinct(Vec::<u8>::new()), Vec::<u8>::new());
    }
}

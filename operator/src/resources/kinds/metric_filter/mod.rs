//! The metric filter that counts the events of a ServiceSpec's log group matching
//! `logs.errorPattern`: each match adds 1 to the metric [`metric_name`] in [`NAMESPACE`]
//! (0 is published for minutes without a match), which the `logErrors` alarm watches.
//!
//! Invariants: a filter takes no tags; it is ours when it has our name on a log group we own
//! (the log group's reconcile has already claimed the group, and its teardown checks the tags);
//! one DescribeMetricFilters per reconcile; PutMetricFilter only on a difference.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::types::MetricTransformation;

use crate::aws::Service;
use crate::resources::error::Absent;
use crate::resources::kind::GcScan;
use crate::resources::kind::{Applied, At};
use crate::resources::kind::{Gone, Managed, Plan};
use crate::resources::kinds::log_group;
use crate::resources::run::{Change, SpecRun};
use crate::resources::shared::pages::read_pages;
use crate::resources::snapshot::Entry;
use crate::resources::ResourceError;
use crate::spec::types::ServiceSpec;

/// The id of this kind in status ledgers and garbage-collection scans; the ledger id is
/// `<log group>:<filter name>` (neither may contain `:`).
pub const TYPE: &str = "logs:metric-filter";

/// The namespace of the error-count metrics.
pub const NAMESPACE: &str = "ecs-operator/logs";

/// The error-count metric of one service: `<cluster>-<service>-errors`.
pub fn metric_name(cluster: &str, service: &str) -> String {
    format!("{cluster}-{service}-errors")
}

/// The filter as the spec wants it (and as AWS has it: the same fields are compared).
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub log_group: String,
    pub name: String,
    pub pattern: String,
    pub namespace: String,
    pub metric: String,
    pub value: String,
    pub default_value: Option<f64>,
}

/// The filter of `spec`, when it has `logs.errorPattern` and a log group.
pub fn desired(spec: &ServiceSpec, cluster: &str) -> Option<Filter> {
    let pattern = spec.spec.logs.as_ref()?.error_pattern.clone()?;
    Some(Filter {
        log_group: spec.spec.container.log_group.clone()?,
        name: format!("{}-errors", spec.metadata.name),
        pattern,
        namespace: NAMESPACE.to_string(),
        metric: metric_name(cluster, &spec.metadata.name),
        value: "1".to_string(),
        default_value: Some(0.0),
    })
}

/// What to do (pure): `None` when AWS matches; else the change (PutMetricFilter creates and
/// replaces alike).
pub fn plan(d: &Filter, o: Option<&Filter>) -> Option<Change> {
    let resource = format!("metric filter {} on {}", d.name, d.log_group);
    match o {
        None => Some(Change::create(resource, format!("pattern {:?}", d.pattern))),
        Some(o) if o == d => None,
        Some(o) if o.pattern != d.pattern => Some(Change::field(
            resource,
            "pattern",
            format!("{:?}", o.pattern),
            format!("{:?}", d.pattern),
        )),
        Some(o) => Some(Change::field(
            resource,
            "metric",
            format!("{}/{} = {}", o.namespace, o.metric, o.value),
            format!("{}/{} = {}", d.namespace, d.metric, d.value),
        )),
    }
}

fn filter_of(log_group: &str, f: &aws_sdk_cloudwatchlogs::types::MetricFilter) -> Filter {
    let t = f.metric_transformations().first();
    Filter {
        log_group: log_group.to_string(),
        name: f.filter_name().unwrap_or_default().to_string(),
        pattern: f.filter_pattern().unwrap_or_default().to_string(),
        namespace: t
            .map(|t| t.metric_namespace().to_string())
            .unwrap_or_default(),
        metric: t.map(|t| t.metric_name().to_string()).unwrap_or_default(),
        value: t.map(|t| t.metric_value().to_string()).unwrap_or_default(),
        default_value: t.and_then(|t| t.default_value()),
    }
}

/// Every metric filter of the account and region, by (log group, filter name):
/// DescribeMetricFilters without a group, 50 per page.
async fn read_all(
    run: &SpecRun<'_>,
) -> Result<std::collections::HashMap<(String, String), Filter>, ResourceError> {
    let pages = read_pages(&run.aws, Service::Logs, "DescribeMetricFilters", |token| run.aws
                    .logs
                    .describe_metric_filters()
                    .limit(50)
                    .set_next_token(token)
                    .send(), aws_sdk_cloudwatchlogs::operation::describe_metric_filters::DescribeMetricFiltersOutput::next_token)
    .await?;
    let mut out = std::collections::HashMap::new();
    for f in pages.iter().flat_map(|p| p.metric_filters()) {
        if let (Some(group), Some(name)) = (f.log_group_name(), f.filter_name()) {
            out.insert((group.to_string(), name.to_string()), filter_of(group, f));
        }
    }
    Ok(out)
}

/// The filter `name` on `log_group`; `None` when absent. In a resync wave, from the wave's one
/// listing of every filter.
pub async fn observe(
    run: &SpecRun<'_>,
    log_group: &str,
    name: &str,
) -> Result<Option<Filter>, ResourceError> {
    if let Some(all) = run.cached(Entry::MetricFilters, |_| read_all(run)).await {
        return Ok(all?
            .get(&(log_group.to_string(), name.to_string()))
            .cloned());
    }
    read(run, log_group, name).await
}

/// The filter `name` on `log_group` as AWS has it now.
async fn read(
    run: &SpecRun<'_>,
    log_group: &str,
    name: &str,
) -> Result<Option<Filter>, ResourceError> {
    let out = run
        .aws
        .read(
            Service::Logs,
            "DescribeMetricFilters",
            log_group,
            run.aws
                .logs
                .describe_metric_filters()
                .log_group_name(log_group)
                .filter_name_prefix(name)
                .send(),
        )
        .await;
    let Some(out) = out.absent_if("ResourceNotFoundException")? else {
        return Ok(None);
    };
    Ok(out
        .metric_filters()
        .iter()
        .find(|f| f.filter_name() == Some(name))
        .map(|f| filter_of(log_group, f)))
}

/// The filter as the generic driver takes it: the filter the spec wants, and whether its log
/// group exists (false only while the group's create is planned: there is nothing to read).
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub filter: Filter,
    pub group_exists: bool,
}

/// The one step a filter can need: PutMetricFilter creates and replaces alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Put,
}

async fn put(run: &SpecRun<'_>, d: &Filter) -> Result<(), ResourceError> {
    let t = MetricTransformation::builder()
        .metric_namespace(&d.namespace)
        .metric_name(&d.metric)
        .metric_value(&d.value)
        .set_default_value(d.default_value)
        .build()
        .map_err(ResourceError::request)?;
    let logs = &run.aws.logs;
    let req = logs.put_metric_filter().log_group_name(&d.log_group);
    let req = req.filter_name(&d.name).filter_pattern(&d.pattern);
    let req = req.metric_transformations(t).send();
    run.aws
        .write(Service::Logs, "PutMetricFilter", &d.name, req)
        .await?;
    Ok(())
}

/// Remove the filter `name` from `log_group` if it is there (a spec that dropped its
/// errorPattern).
pub async fn remove(
    run: &mut SpecRun<'_>,
    log_group: &str,
    name: &str,
) -> Result<(), ResourceError> {
    if observe(run, log_group, name).await?.is_none() {
        return Ok(());
    }
    if run.plan(Change::delete(
        format!("metric filter {name} on {log_group}"),
        "no errorPattern",
    )) {
        delete_filter(run, log_group, name).await?;
    }
    Ok(())
}

async fn delete_filter(
    run: &SpecRun<'_>,
    log_group: &str,
    name: &str,
) -> Result<(), ResourceError> {
    run.aws
        .write(
            Service::Logs,
            "DeleteMetricFilter",
            name,
            run.aws
                .logs
                .delete_metric_filter()
                .log_group_name(log_group)
                .filter_name(name)
                .send(),
        )
        .await
        .absent_if("ResourceNotFoundException")?;
    Ok(())
}

/// Teardown of the filter (`<log group>:<name>`): deleted when its log group is ours; nothing is
/// deleted with `retain` (a filter takes no tags to release; it stays with its group).
pub async fn delete(run: &mut SpecRun<'_>, id: &str, retain: bool) -> Result<Gone, ResourceError> {
    let Some((group, name)) = id.split_once(':') else {
        return Ok(Gone::Yes);
    };
    if retain || !log_group::is_ours(run, group).await? {
        return Ok(Gone::Yes);
    }
    if read(run, group, name).await?.is_none() {
        return Ok(Gone::Yes);
    }
    if run.plan(Change::delete(
        format!("metric filter {name} on {group}"),
        "",
    )) {
        delete_filter(run, group, name).await?;
    }
    Ok(Gone::Yes)
}

/// Garbage collection: the filters named `<spec>-errors` on the log groups the scan found owned
/// (one DescribeMetricFilters per such group).
pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    for (owner, group) in scan.owned(log_group::TYPE) {
        let name = format!("{}-errors", owner.name);
        if observe(run, &group, &name).await?.is_some() {
            scan.add(owner, TYPE, format!("{group}:{name}"));
        }
    }
    Ok(())
}

crate::resources::kind::kind!(
    /// A CloudWatch Logs metric filter, as the generic driver sees it.
    MetricFilterKind, TYPE, 16, delete, "CloudWatch Logs metric filters", list_owned
);

/// The generic driver's view of a metric filter: its output is whether the filter exists
/// (false only while planning its create). A filter takes no tags: it is ours through the log
/// group it lives on, which the spec claimed before it.
impl Managed for MetricFilterKind {
    crate::resources::kind::managed_types!(Desired, Filter, Step, bool);

    fn label(d: &Desired) -> String {
        format!("metric filter {} on {}", d.filter.name, d.filter.log_group)
    }

    async fn observe(run: &SpecRun<'_>, d: &Desired) -> Result<Option<Filter>, ResourceError> {
        if !d.group_exists {
            return Ok(None);
        }
        observe(run, &d.filter.log_group, &d.filter.name).await
    }

    crate::resources::kind::owned_through_parent!();

    fn plan(d: &Desired, o: Option<&Filter>, _: BTreeMap<String, String>) -> Plan<Step> {
        Plan::steps(
            plan(&d.filter, o)
                .map(|c| (Step::Put, c))
                .into_iter()
                .collect(),
        )
    }

    fn output(_: &Desired, o: Option<&Filter>) -> bool {
        o.is_some()
    }

    async fn apply(run: &mut SpecRun<'_>, at: At<'_, Self>, Step::Put: Step) -> Applied {
        let At { d, out: exists, .. } = at;
        put(run, &d.filter).await?;
        *exists = true;
        Ok(())
    }

    fn id(d: &Desired, exists: &bool) -> Option<String> {
        exists.then(|| format!("{}:{}", d.filter.log_group, d.filter.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f() -> Filter {
        Filter {
            log_group: "/ecs/web".into(),
            name: "web-errors".into(),
            pattern: "?ERROR ?Error".into(),
            namespace: NAMESPACE.into(),
            metric: metric_name("prod", "web"),
            value: "1".into(),
            default_value: Some(0.0),
        }
    }

    #[test]
    fn a_matching_filter_needs_nothing_and_a_missing_one_is_created() {
        assert_eq!(plan(&f(), Some(&f())), None);
        assert_eq!(
            plan(&f(), None).unwrap().to_string(),
            "+ metric filter web-errors on /ecs/web (pattern \"?ERROR ?Error\")"
        );
    }

    #[test]
    fn a_changed_pattern_is_one_put_in_plain_words() {
        let mut o = f();
        o.pattern = "ERROR".into();
        assert_eq!(
            plan(&f(), Some(&o)).unwrap().to_string(),
            "~ metric filter web-errors on /ecs/web pattern: \"ERROR\" -> \"?ERROR ?Error\""
        );
        assert_eq!(f().metric, "prod-web-errors");
    }
}

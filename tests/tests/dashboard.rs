//! `dashboards/ecs-operator.json`: every metric its panels and variables query is one the
//! operator exports (as its metrics registry renders `/metrics`, suffix rules included), every
//! family the operator exports is on it, and it is a Grafana dashboard over a Prometheus data
//! source variable.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ecs_operator::aws::calls::Outcome;
use ecs_operator::aws::CallMetrics;
use ecs_operator::metrics::{Health, Metrics};
use ecs_operator::runtime::RunnerMetrics;
use ecs_operator::store::Phase;
use ecs_operator_tests::promql::{
    dashboard_expressions, exposed_series, metric_names, unknown_metrics,
};
use ecs_operator_tests::workspace_root;

fn dashboard() -> serde_json::Value {
    let path = workspace_root().join("dashboards/ecs-operator.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the operator's `/metrics` serves, with a sample in every labelled family.
fn exposition() -> String {
    let calls = CallMetrics::new();
    calls.record("ECS", "DescribeServices", Outcome::Ok);
    calls.record("ECS", "DescribeServices", Outcome::Throttled);
    let health = Arc::new(Health::default());
    health.set_phase("ServiceSpec/web", Some(Phase::Ready));
    // With an events queue (`run --events-queue`): its gauge, counter and histogram.
    health.set_events_queue(
        "https://sqs.eu-west-1.amazonaws.com/123456789012/ecs-operator-events",
        None,
    );
    let m = Metrics::new(Arc::new(RunnerMetrics::default()), calls, health);
    m.reconciled("ServiceSpec", "ready", Duration::from_millis(20));
    m.event("aws.ecs", "matched");
    m.event_latency(2.5);
    m.render()
}

/// The family names of the `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

#[test]
fn every_metric_the_dashboard_queries_is_exported_by_the_operator() {
    let d = dashboard();
    let exposed = exposed_series(&exposition());
    assert!(
        exposed.contains("ecs_operator_reconciles_total")
            && exposed.contains("ecs_operator_reconcile_duration_seconds_bucket"),
        "{exposed:?}"
    );
    let exprs = dashboard_expressions(&d);
    assert!(exprs.len() >= 15, "{exprs:?}");
    let unknown = unknown_metrics(&d, &exposed);
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics the operator does not export (exported: {exposed:?}):\n{}",
        unknown
            .iter()
            .map(|(place, name)| format!("  {place}: {name}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_family_the_operator_exports_is_on_the_dashboard() {
    let text = exposition();
    let used: BTreeSet<String> = dashboard_expressions(&dashboard())
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .collect();
    let missing: Vec<String> = families(&text)
        .into_iter()
        .filter(|f| !used.iter().any(|u| u.starts_with(f.as_str())))
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

#[test]
fn the_dashboard_is_grafana_json_over_a_prometheus_datasource_variable() {
    let d = dashboard();
    let schema = d["schemaVersion"].as_i64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert_eq!(d["uid"], "ecs-operator");
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable");
    assert_eq!(ds["query"], "prometheus");
    let var = format!("${{{}}}", ds["name"].as_str().unwrap());
    let mut ids = BTreeSet::new();
    let mut queried = 0;
    for p in d["panels"].as_array().expect("panels") {
        assert!(
            ids.insert(p["id"].as_i64().expect("a panel id")),
            "duplicate id: {p}"
        );
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_i64().unwrap(), g["w"].as_i64().unwrap());
        assert!(
            x >= 0 && w > 0 && x + w <= 24,
            "{} is off the grid",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], var.as_str(), "{}", p["title"]);
        for t in p["targets"].as_array().expect("targets") {
            assert_eq!(t["datasource"]["uid"], var.as_str(), "{}", p["title"]);
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()));
            queried += 1;
        }
    }
    assert!(queried >= 15, "{queried} queries");
}

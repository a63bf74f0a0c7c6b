//! Metric names in PromQL expressions and Grafana dashboards, and the names a Prometheus text
//! exposition makes available (for `tests/tests/dashboard.rs`).
//!
//! The extractor is a small lexer, not a full PromQL parser: it drops string literals, label
//! matchers (`{...}`), range and subquery selectors (`[...]`) and the label lists of `by`,
//! `without`, `on`, `ignoring`, `group_left` and `group_right`; what is left that is an
//! identifier, is not a function call, a keyword or an aggregation operator, is a metric name.

use std::collections::BTreeSet;

/// Keywords and aggregation operators other than [`LABEL_LISTS`]: never metric names.
const KEYWORDS: &[&str] = &[
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised label list.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names `expr` selects.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_to(&chars, i, '}'),
            '[' => i = skip_to(&chars, i, ']'),
            '#' => {
                // A comment runs to the end of the line.
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '$' => {
                // A Grafana variable ($__rate_interval, ${job}).
                i += 1;
                while i < chars.len() && (is_part(chars[i]) || "{}".contains(chars[i])) {
                    i += 1;
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                // A number (1, 0.99, 1e3, 0x1f) or a duration (5m, 1h30m).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if is_start(c) => {
                let start = i;
                while i < chars.len() && is_part(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let next = chars.get(j).copied();
                let lower = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    if next == Some('(') {
                        i = skip_to(&chars, j, ')');
                    }
                } else if next == Some('(') || KEYWORDS.contains(&lower.as_str()) {
                    // A function call or an operator.
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The index after the string literal that starts at `i`.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote != '`' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            return j + 1;
        }
        j += 1;
    }
    j
}

/// The index after the `close` that ends what opens at `i` (strings inside are skipped).
fn skip_to(chars: &[char], i: usize, close: char) -> usize {
    let mut j = i + 1;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => j = skip_string(chars, j),
            c if c == close => return j + 1,
            _ => j += 1,
        }
    }
    j
}

/// Every PromQL expression of a Grafana dashboard, with where it is (`panel "Title" target A`,
/// `variable job`): the panels' targets (rows' nested panels included) and the query
/// variables. A `label_values(METRIC, label)` variable query is reduced to its METRIC part.
pub fn dashboard_expressions(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    fn panels(list: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("(untitled)");
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    let r = t["refId"].as_str().unwrap_or("?");
                    out.push((format!("panel \"{title}\" target {r}"), e.to_string()));
                }
            }
            panels(&p["panels"], out);
        }
    }
    panels(&dashboard["panels"], &mut out);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or("");
        let name = v["name"].as_str().unwrap_or("?");
        out.push((format!("variable {name}"), variable_selector(q).to_string()));
    }
    out
}

/// The series selector of a Grafana variable query: `label_values(SEL, label)` -> `SEL`,
/// `label_values(label)` -> ``, `query_result(EXPR)` -> `EXPR`; anything else as it is.
pub fn variable_selector(q: &str) -> &str {
    let q = q.trim();
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return match inner.rsplit_once(',') {
            Some((sel, _label)) => sel.trim(),
            None => "",
        };
    }
    if let Some(inner) = q
        .strip_prefix("query_result(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return inner;
    }
    q
}

/// The series names a Prometheus or OpenMetrics text exposition offers: the names of its
/// samples, plus what each `# TYPE` line implies (`counter`: `NAME_total`; `histogram`:
/// `NAME_bucket`, `NAME_count`, `NAME_sum`; `summary`: `NAME`, `NAME_count`, `NAME_sum`;
/// `gauge`, `unknown`: `NAME`). A bare counter or histogram family name is not a series.
pub fn exposed_series(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" | "gaugehistogram" => &["_bucket", "_count", "_sum"],
                "summary" => &["", "_count", "_sum"],
                _ => &[""],
            };
            for s in suffixes {
                if kind == "counter" && name.ends_with("_total") {
                    out.insert(name.to_string());
                } else {
                    out.insert(format!("{name}{s}"));
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            out.insert(line[..end].to_string());
        }
    }
    out
}

/// Every `(where, metric)` of `dashboard` that `exposed` does not offer.
pub fn unknown_metrics(
    dashboard: &serde_json::Value,
    exposed: &BTreeSet<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (place, expr) in dashboard_expressions(dashboard) {
        for name in metric_names(&expr) {
            if !exposed.contains(&name) {
                out.push((place.clone(), name));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(e: &str) -> Vec<String> {
        metric_names(e).into_iter().collect()
    }

    #[test]
    fn names_are_found_past_functions_labels_ranges_and_groupings() {
        assert_eq!(
            names(
                r#"histogram_quantile(0.99, sum by (le, kind) (rate(ecs_operator_reconcile_duration_seconds_bucket{job=~"$job", kind!="a{b}"}[$__rate_interval])))"#
            ),
            ["ecs_operator_reconcile_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                r#"max by (phase) (ecs_operator_specs{phase!~"Ready|Paused"} * on (job, instance) group_left () (ecs_operator_leader == 1)) or vector(0)"#
            ),
            ["ecs_operator_leader", "ecs_operator_specs"]
        );
        assert_eq!(
            names("topk(10, sum without (operation) (increase(a:b_total[1h] offset 5m))) / ignoring(x) c"),
            ["a:b_total", "c"]
        );
        assert!(names(r#"sum(rate(x_total[5m])) > bool 0.5e3 and on() "y""#) == ["x_total"]);
    }

    #[test]
    fn a_family_name_without_its_suffix_is_not_an_exposed_series() {
        let text = "# TYPE ecs_operator_reconciles counter\n\
                    ecs_operator_reconciles_total{kind=\"ServiceSpec\"} 1\n\
                    # TYPE ecs_operator_reconcile_duration_seconds histogram\n\
                    # TYPE ecs_operator_leader gauge\n\
                    ecs_operator_leader 1\n# EOF\n";
        let exposed = exposed_series(text);
        let want: BTreeSet<String> = [
            "ecs_operator_reconciles_total",
            "ecs_operator_reconcile_duration_seconds_bucket",
            "ecs_operator_reconcile_duration_seconds_count",
            "ecs_operator_reconcile_duration_seconds_sum",
            "ecs_operator_leader",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(exposed, want);
    }

    #[test]
    fn a_bad_expression_in_a_panel_or_variable_is_reported_with_its_place() {
        let exposed = exposed_series(
            "# TYPE ecs_operator_reconciles counter\n# TYPE ecs_operator_leader gauge\n",
        );
        let dashboard = serde_json::json!({
            "panels": [
                {"title": "ok", "targets": [{"refId": "A", "expr": "sum(rate(ecs_operator_reconciles_total[5m]))"}]},
                {"type": "row", "title": "r", "panels": [
                    {"title": "Reconciles", "targets": [
                        {"refId": "A", "expr": "sum(rate(ecs_operator_reconciles[5m]))"},
                        {"refId": "B", "expr": "ecs_operator_queue_lenght"}
                    ]}
                ]}
            ],
            "templating": {"list": [
                {"type": "query", "name": "job", "query": {"query": "label_values(ecs_operator_leaders, job)"}},
                {"type": "datasource", "name": "datasource", "query": "prometheus"}
            ]}
        });
        assert_eq!(
            unknown_metrics(&dashboard, &exposed),
            vec![
                (
                    "panel \"Reconciles\" target A".to_string(),
                    "ecs_operator_reconciles".to_string()
                ),
                (
                    "panel \"Reconciles\" target B".to_string(),
                    "ecs_operator_queue_lenght".to_string()
                ),
                (
                    "variable job".to_string(),
                    "ecs_operator_leaders".to_string()
                ),
            ]
        );
    }

    #[test]
    fn variable_queries_are_reduced_to_their_selector() {
        assert_eq!(
            variable_selector(r#"label_values(ecs_operator_leader{job=~"$job"}, instance)"#),
            r#"ecs_operator_leader{job=~"$job"}"#
        );
        assert_eq!(variable_selector("label_values(job)"), "");
        assert_eq!(variable_selector("query_result(up == 1)"), "up == 1");
    }
}

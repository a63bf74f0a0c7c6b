//! Reading Prometheus text: what the operator serves on `/metrics` and writes with
//! `--metrics-file`.

/// The sum of every sample of `name` whose labels contain all of `labels` (`k="v"` strings).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .fold(0.0, |a, b| a + b)
}

/// Every labelled sample of `name`: its labels (the text after `{`) and its value.
pub fn labelled<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |l| {
            let labels = l.strip_prefix(name)?.strip_prefix('{')?;
            let value = l.rsplit(' ').next()?.parse::<f64>().ok()?;
            Some((labels, value))
        })
}

/// The value of label `key` in a sample's labels.
pub fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\n\
        ecs_operator_aws_calls_total{service=\"ecs\",operation=\"DescribeServices\",outcome=\"ok\"} 3\n\
        ecs_operator_aws_calls_total{service=\"ecs\",operation=\"DescribeServices\",outcome=\"throttled\"} 1\n\
        ecs_operator_aws_calls_total_other{service=\"ecs\"} 100\n\
        ecs_operator_backoffs_total 2\n";

    #[test]
    fn sums_filter_by_name_and_labels() {
        assert_eq!(metric_sum(TEXT, "ecs_operator_aws_calls_total", &[]), 4.0);
        assert_eq!(
            metric_sum(TEXT, "ecs_operator_aws_calls_total", &["outcome=\"ok\""]),
            3.0
        );
        assert_eq!(metric_sum(TEXT, "ecs_operator_backoffs_total", &[]), 2.0);
    }

    #[test]
    fn labelled_samples_give_their_labels_and_values() {
        let got: Vec<_> = labelled(TEXT, "ecs_operator_aws_calls_total")
            .map(|(l, v)| (label(l, "outcome").unwrap(), v))
            .collect();
        assert_eq!(got, vec![("ok", 3.0), ("throttled", 1.0)]);
        assert_eq!(labelled(TEXT, "ecs_operator_backoffs_total").count(), 0);
    }
}

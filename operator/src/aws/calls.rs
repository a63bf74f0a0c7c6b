//! Counting every AWS call: an SDK interceptor that records each attempt by service, operation
//! and outcome into [`CallMetrics`].
//!
//! Counted per *attempt*, so a call the SDK retried twice after throttling shows as two
//! `throttled` attempts and one `ok`. Outcomes are classified from the raw HTTP answer, which
//! works the same for every protocol (JSON `x-amzn-ErrorType`/`__type`, query/XML `<Code>`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// A 2xx/3xx answer.
    Ok,
    /// AWS asked us to slow down (`Throttling`, `ThrottlingException`, `TooManyRequests`,
    /// `RequestLimitExceeded`, `PriorRequestNotComplete`, HTTP 429...).
    Throttled,
    /// A 5xx answer.
    ServerError,
    /// Any other 4xx answer (not found, validation, conflict...).
    ClientError,
    /// No answer: connection refused or dropped, timeout.
    TransportError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Throttled => "throttled",
            Outcome::ServerError => "server_error",
            Outcome::ClientError => "client_error",
            Outcome::TransportError => "transport_error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One counter's labels: service (lower case, e.g. `ecs`), operation (e.g. `DescribeServices`)
/// and outcome.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallLabels {
    pub service: String,
    pub operation: String,
    pub outcome: Outcome,
    /// `(account, region)` of a call in another account or region than the operator's own
    /// (`account` is `own` for another region of the operator's account); `None` for the
    /// operator's own.
    pub scope: Option<(String, String)>,
}

/// Attempt counts, shared by every client of the process (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct CallMetrics {
    counts: Arc<Mutex<BTreeMap<CallLabels, u64>>>,
    /// The labels of the clients counting here: see [`CallLabels::scope`].
    scope: Option<(String, String)>,
}

/// Error codes that mean "slow down", whatever the protocol.
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "BandwidthLimitExceeded",
    "TransactionInProgressException",
];

impl CallMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// The same counters, for clients of `account` (`own`: the operator's) in `region`: their
    /// calls carry both as labels.
    pub fn scoped(&self, account: &str, region: &str) -> CallMetrics {
        CallMetrics {
            counts: self.counts.clone(),
            scope: Some((account.to_string(), region.to_string())),
        }
    }

    pub fn record(&self, service: &str, operation: &str, outcome: Outcome) {
        let labels = CallLabels {
            service: service_label(service),
            operation: operation.to_string(),
            outcome,
            scope: self.scope.clone(),
        };
        *self
            .counts
            .lock()
            .expect("call metrics lock")
            .entry(labels)
            .or_default() += 1;
    }

    /// Every counter, sorted by labels.
    pub fn snapshot(&self) -> BTreeMap<CallLabels, u64> {
        self.counts.lock().expect("call metrics lock").clone()
    }

    /// Attempts of one operation (any outcome).
    pub fn attempts(&self, service: &str, operation: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(l, _)| l.service == service && l.operation == operation)
            .map(|(_, n)| n)
            .sum()
    }

    /// Attempts with one outcome, over all operations.
    pub fn total(&self, outcome: Outcome) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(l, _)| l.outcome == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// The interceptor to add to a client's configuration.
    pub fn interceptor(&self) -> CallCounter {
        CallCounter {
            metrics: self.clone(),
        }
    }
}

/// The SDK's service name as a label: lower case, no spaces (`Auto Scaling` -> `autoscaling`,
/// `Elastic Load Balancing v2` -> `elasticloadbalancingv2`).
pub fn service_label(service: &str) -> String {
    service
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Whether an operation name changes AWS state (the "mutating calls" of the no-update-loop
/// checks): anything that is not a Describe/List/Get/Head read (IAM's policy simulator,
/// `SimulatePrincipalPolicy`, is a read too).
pub fn is_mutating(operation: &str) -> bool {
    const READS: &[&str] = &[
        "Describe", "List", "Get", "Head", "Query", "Scan", "Simulate",
    ];
    !READS.iter().any(|p| operation.starts_with(p))
}

/// Classify one attempt from the HTTP answer (`None`: no answer arrived).
pub fn classify(status: Option<u16>, error_type_header: Option<&str>, body: &[u8]) -> Outcome {
    let Some(status) = status else {
        return Outcome::TransportError;
    };
    if status < 400 {
        return Outcome::Ok;
    }
    if status == 429 || is_throttle_answer(error_type_header, body) {
        return Outcome::Throttled;
    }
    if status >= 500 {
        Outcome::ServerError
    } else {
        Outcome::ClientError
    }
}

fn is_throttle_answer(error_type_header: Option<&str>, body: &[u8]) -> bool {
    // JSON protocols: `x-amzn-ErrorType: ThrottlingException:http://...`, or `__type` in the body.
    if let Some(h) = error_type_header {
        let code = h.split(':').next().unwrap_or(h);
        let code = code.rsplit('#').next().unwrap_or(code);
        if THROTTLE_CODES.contains(&code) {
            return true;
        }
    }
    // Query/XML `<Code>Throttling</Code>` and JSON `"__type":"...#ThrottlingException"`: look at
    // the start of the body only (error bodies are small).
    let head = &body[..body.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    THROTTLE_CODES.iter().any(|code| {
        text.contains(&format!("<Code>{code}</Code>"))
            || text.contains(&format!("#{code}\""))
            || text.contains(&format!("\"{code}\""))
    })
}

/// The SDK interceptor; see [`CallMetrics::interceptor`].
#[derive(Debug, Clone)]
pub struct CallCounter {
    metrics: CallMetrics,
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "ecs-operator call counter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|m| (m.service().to_string(), m.name().to_string()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let outcome = match context.response() {
            Some(resp) => classify(
                Some(resp.status().as_u16()),
                resp.headers().get("x-amzn-errortype"),
                resp.body().bytes().unwrap_or_default(),
            ),
            None => classify(None, None, &[]),
        };
        self.metrics.record(&service, &operation, outcome);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_throttling_is_recognised_from_the_error_type_header() {
        let o = classify(
            Some(400),
            Some("ThrottlingException:http://internal.amazon.com/coral/com.amazon.coral.availability/"),
            b"{}",
        );
        assert_eq!(o, Outcome::Throttled);
    }

    #[test]
    fn json_throttling_is_recognised_from_the_body_type() {
        let body =
            br#"{"__type":"com.amazonaws.ecs#ThrottlingException","message":"Rate exceeded"}"#;
        assert_eq!(classify(Some(400), None, body), Outcome::Throttled);
    }

    #[test]
    fn query_xml_throttling_is_recognised_from_the_code_element() {
        let body = b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert_eq!(classify(Some(400), None, body), Outcome::Throttled);
    }

    #[test]
    fn other_answers_are_classified_by_status() {
        assert_eq!(classify(Some(200), None, b""), Outcome::Ok);
        assert_eq!(classify(Some(429), None, b""), Outcome::Throttled);
        assert_eq!(
            classify(Some(503), None, b"<Code>ServiceUnavailable</Code>"),
            Outcome::ServerError
        );
        assert_eq!(
            classify(Some(400), Some("ClusterNotFoundException"), b"{}"),
            Outcome::ClientError
        );
        assert_eq!(classify(None, None, b""), Outcome::TransportError);
    }

    #[test]
    fn reads_are_not_mutating_and_writes_are() {
        for op in [
            "DescribeServices",
            "ListTagsForResource",
            "GetItem",
            "HeadObject",
            "SimulatePrincipalPolicy",
        ] {
            assert!(!is_mutating(op), "{op}");
        }
        for op in [
            "CreateService",
            "UpdateService",
            "ChangeResourceRecordSets",
            "PutItem",
            "TagResource",
        ] {
            assert!(is_mutating(op), "{op}");
        }
    }

    #[test]
    fn counts_accumulate_per_labels() {
        let m = CallMetrics::new();
        m.record("ECS", "DescribeServices", Outcome::Ok);
        m.record("ecs", "DescribeServices", Outcome::Ok);
        m.record("ecs", "DescribeServices", Outcome::Throttled);
        assert_eq!(m.attempts("ecs", "DescribeServices"), 3);
        assert_eq!(m.total(Outcome::Throttled), 1);
    }
}

//! Client construction: every AWS client the operator uses is built here, with the SDK's standard
//! retry mode and the call-counting interceptor, from one shared [`Sdk`]; the reconcilers' clients
//! also charge the SDK's retries to the call budget ([`Sdk::with_retry_charge`]).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;

use super::budget::{Budget, RetryCharge};
use super::calls::CallMetrics;

/// Attempts per call (the first one included) unless `AWS_MAX_ATTEMPTS` says otherwise.
/// Throttling and 5xx answers are retried with exponential backoff inside the SDK; only when
/// all attempts fail does a reconcile see the error (and then back off per key).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The SDK settings plus the process's call counters; cheap to clone.
#[derive(Debug, Clone)]
pub struct Sdk {
    pub config: SdkConfig,
    pub calls: CallMetrics,
    /// When set, every client built also charges its retries to this budget.
    retry_charge: Option<RetryCharge>,
}

impl Sdk {
    /// Wrap standard SDK settings with fresh call counters.
    pub fn new(config: SdkConfig) -> Self {
        Sdk::with_calls(config, CallMetrics::new())
    }

    pub fn with_calls(config: SdkConfig, calls: CallMetrics) -> Self {
        Sdk {
            config,
            calls,
            retry_charge: None,
        }
    }

    /// The same settings, for clients whose SDK retries are charged to `budget` (the first
    /// attempt of each call waits for the budget's tokens in `Aws::call`).
    pub fn with_retry_charge(&self, budget: &Budget) -> Self {
        Sdk {
            retry_charge: Some(budget.retry_charge()),
            ..self.clone()
        }
    }

    /// The retry settings: `AWS_RETRY_MODE`/`AWS_MAX_ATTEMPTS` when set (the SDK's own
    /// configuration already read them), else standard mode with [`DEFAULT_MAX_ATTEMPTS`].
    pub fn retry_config(&self) -> RetryConfig {
        let user_set = std::env::var_os("AWS_MAX_ATTEMPTS").is_some()
            || std::env::var_os("AWS_RETRY_MODE").is_some();
        match self.config.retry_config() {
            Some(rc) if user_set => rc.clone(),
            _ => RetryConfig::standard()
                .with_max_attempts(DEFAULT_MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        }
    }

    /// S3, with path-style addressing whenever the endpoint is not AWS's own (moto, MinIO...).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let mut b = aws_sdk_s3::config::Builder::from(&self.config)
            .retry_config(self.retry_config())
            .interceptor(self.calls.interceptor());
        if let Some(charge) = &self.retry_charge {
            b = b.interceptor(charge.clone());
        }
        if self.config.endpoint_url().is_some() {
            b = b.force_path_style(true);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}

/// `Sdk::$name()`: a client of `$krate` with the retry settings and the call counter.
macro_rules! client {
    ($name:ident, $krate:ident) => {
        impl Sdk {
            pub fn $name(&self) -> $krate::Client {
                let mut b = $krate::config::Builder::from(&self.config)
                    .retry_config(self.retry_config())
                    .interceptor(self.calls.interceptor());
                if let Some(charge) = &self.retry_charge {
                    b = b.interceptor(charge.clone());
                }
                $krate::Client::from_conf(b.build())
            }
        }
    };
}

client!(dynamodb, aws_sdk_dynamodb);
client!(dynamodb_streams, aws_sdk_dynamodbstreams);
client!(ecs, aws_sdk_ecs);
client!(ecr, aws_sdk_ecr);
client!(elbv2, aws_sdk_elasticloadbalancingv2);
client!(route53, aws_sdk_route53);
client!(acm, aws_sdk_acm);
client!(application_autoscaling, aws_sdk_applicationautoscaling);
client!(autoscaling, aws_sdk_autoscaling);
client!(ec2, aws_sdk_ec2);
client!(iam, aws_sdk_iam);
client!(sqs, aws_sdk_sqs);
client!(eventbridge, aws_sdk_eventbridge);
client!(sts, aws_sdk_sts);
client!(cloudwatch, aws_sdk_cloudwatch);
client!(logs, aws_sdk_cloudwatchlogs);
client!(sns, aws_sdk_sns);

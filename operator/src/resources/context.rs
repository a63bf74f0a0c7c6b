//! The AWS clients, call budget and identity shared by every reconcile.

use std::future::Future;
use std::sync::Arc;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::error::ResourceError;
use crate::aws::{Budget, CallClass, CallMetrics, Sdk, Service};

/// Everything a resource module needs to talk to AWS. Cheap to share (`Arc<Aws>`).
pub struct Aws {
    /// The value of the managed-by tag.
    pub instance: String,
    pub region: String,
    /// The account these clients reach by an assumed role; `None`: the operator's own.
    pub account: Option<String>,
    /// The settings these clients were built from (the operator's own credentials for the
    /// default scope), without the retry charge: other scopes are built from them.
    pub base: Sdk,
    pub budget: Budget,
    pub calls: CallMetrics,
    pub ecs: aws_sdk_ecs::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub route53: aws_sdk_route53::Client,
    pub acm: aws_sdk_acm::Client,
    pub scaling: aws_sdk_applicationautoscaling::Client,
    pub autoscaling: aws_sdk_autoscaling::Client,
    /// Hosted zones already found (`shared::zone::resolve`).
    pub zone_ids: ZoneIds,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sns: aws_sdk_sns::Client,
    /// SNS topics already found or created, by name (`kinds::sns_topic::find`).
    pub topic_arns: KnownArns,
    /// How often followed rollouts are looked at (shorter without a readable events queue).
    pub rollout_poll: super::rollout_poll::RolloutPoll,
    /// Whether the endpoint offers the service-deployment operations (remembered once it
    /// says it does not).
    pub service_deployments: super::rollout_poll::ServiceDeploymentsSupport,
}

impl Aws {
    /// The clients charge the SDK's retries to `budget` too (see `aws::budget`).
    pub fn new(sdk: &Sdk, instance: &str, budget: Budget) -> Arc<Aws> {
        Aws::in_account(sdk, instance, budget, None)
    }

    /// The clients of `sdk` (its region and credentials) for `account` (`None`: own).
    pub fn in_account(
        sdk: &Sdk,
        instance: &str,
        budget: Budget,
        account: Option<String>,
    ) -> Arc<Aws> {
        let base = sdk.clone();
        let sdk = sdk.with_retry_charge(&budget);
        Arc::new(Aws {
            instance: instance.to_string(),
            account,
            base,
            region: sdk
                .config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            budget,
            calls: sdk.calls.clone(),
            ecs: sdk.ecs(),
            ecr: sdk.ecr(),
            elbv2: sdk.elbv2(),
            route53: sdk.route53(),
            acm: sdk.acm(),
            scaling: sdk.application_autoscaling(),
            autoscaling: sdk.autoscaling(),
            zone_ids: Default::default(),
            cloudwatch: sdk.cloudwatch(),
            logs: sdk.logs(),
            sns: sdk.sns(),
            topic_arns: Default::default(),
            rollout_poll: Default::default(),
            service_deployments: Default::default(),
        })
    }

    /// Make one AWS call: wait for the budget's tokens, send, and turn a failure (after the
    /// SDK's retries) into a [`ResourceError`] naming the operation and resource.
    pub async fn call<T, E, R, F>(
        &self,
        service: Service,
        class: CallClass,
        operation: &'static str,
        resource: &str,
        call: F,
    ) -> Result<T, ResourceError>
    where
        F: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        self.budget.acquire(service, class).await;
        call.await
            .map_err(|e| ResourceError::aws(operation, resource, e))
    }
}

/// The class-named forms of a type's `call(service, class, operation, resource, call)`: each
/// `name => Class` line makes `name(service, operation, resource, call)`, that `call` of class
/// [`CallClass`]`::Class`. Combinators rather than `async fn`s, as
/// [`RunAws::call`](super::run::RunAws::call) says why.
macro_rules! class_calls {
    ($($(#[$doc:meta])* $name:ident => $class:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name<'f, T, E, R, F>(
            &'f self,
            service: Service,
            operation: &'static str,
            resource: &'f str,
            call: F,
        ) -> impl Future<Output = Result<T, ResourceError>> + 'f
        where
            F: Future<Output = Result<T, SdkError<E, R>>> + 'f,
            T: 'f,
            E: ProvideErrorMetadata + std::error::Error + 'static,
            R: std::fmt::Debug + 'f,
        {
            self.call(service, CallClass::$class, operation, resource, call)
        }
    )*};
}
pub(crate) use class_calls;

impl Aws {
    class_calls! {
        /// [`Aws::call`] of class [`CallClass::Read`].
        read => Read;
        /// [`Aws::call`] of class [`CallClass::Write`] (a reconcile's writes go through
        /// [`RunAws::write`](super::run::RunAws::write) instead, which tells the wave's snapshot).
        write => Write;
    }

    /// [`Aws::read`] of `ids` in batches of at most `size` (the operation's limit per call):
    /// `send(batch)` sends the request for one batch, and the call record names the batch
    /// (`a,b,c`). The answers, batch by batch, in order; none when `ids` is empty.
    pub async fn read_batches<T, E, R, S, F>(
        &self,
        service: Service,
        operation: &'static str,
        ids: &[String],
        size: usize,
        mut send: S,
    ) -> Result<Vec<T>, ResourceError>
    where
        S: FnMut(Vec<String>) -> F,
        F: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let mut answers = Vec::new();
        for batch in ids.chunks(size.max(1)) {
            let named = batch.join(",");
            answers.push(
                self.call(
                    service,
                    CallClass::Read,
                    operation,
                    &named,
                    send(batch.to_vec()),
                )
                .await?,
            );
        }
        Ok(answers)
    }
}

/// The hosted zones found by name or id (`shared::zone::resolve`), kept for the life of the
/// process: `name or id as the spec gives it -> (zone id, zone name)`.
///
/// Invariant: a reconcile outside a resync wave takes a zone from here when one is known; every
/// wave looks each zone up afresh and replaces the entry, so a zone deleted and created again
/// under the same name (a new id) is followed within one resync interval, and an answer that
/// the zone does not exist forgets it at once.
#[derive(Debug, Default)]
pub struct ZoneIds(std::sync::Mutex<std::collections::HashMap<String, (String, String)>>);

impl ZoneIds {
    pub fn get(&self, name_or_id: &str) -> Option<(String, String)> {
        self.0
            .lock()
            .expect("zone ids lock")
            .get(name_or_id)
            .cloned()
    }

    pub fn put(&self, name_or_id: &str, id: &str, name: &str) {
        self.0
            .lock()
            .expect("zone ids lock")
            .insert(name_or_id.to_string(), (id.to_string(), name.to_string()));
    }

    /// Forget every entry that resolved to the zone `id`.
    pub fn forget(&self, id: &str) {
        self.0
            .lock()
            .expect("zone ids lock")
            .retain(|_, (z, _)| z != id);
    }
}

/// Resource ARNs already found or created, by name, kept for the life of the process (SNS
/// topics: `kinds::sns_topic::find`).
///
/// Invariant: an entry is only a hint of where to look. A reconcile that takes one reads the
/// resource by that ARN before it relies on it, and forgets the entry when AWS says it does not
/// exist, so a stale entry costs one read and never creates, skips or changes anything.
#[derive(Debug, Default)]
pub struct KnownArns(std::sync::Mutex<std::collections::HashMap<String, String>>);

impl KnownArns {
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.lock().expect("known arns lock").get(name).cloned()
    }

    pub fn put(&self, name: &str, arn: &str) {
        self.0
            .lock()
            .expect("known arns lock")
            .insert(name.to_string(), arn.to_string());
    }

    /// Forget the entry of ARN `arn`, whatever its name.
    pub fn forget(&self, arn: &str) {
        self.0
            .lock()
            .expect("known arns lock")
            .retain(|_, a| a != arn);
    }
}

//! The benchmark's token-bucket proxy against moto: once a bucket is empty, the next request
//! gets throttling in its protocol's own shape (JSON for ECS, query XML for ELBv2, REST XML for
//! Route53) without reaching moto, the SDK reads it as throttling, and the operator's call
//! counter classifies it as `throttled`.

use std::collections::BTreeMap;

use aws_config::retry::RetryConfig;
use aws_sdk_s3::error::ProvideErrorMetadata;
use ecs_operator::aws::{CallMetrics, Outcome};
use ecs_operator_tests::bucket_proxy::{Bucket, BucketProxy, Limit};
use ecs_operator_tests::proxy::{AwsService, Call};
use ecs_operator_tests::{Moto, REGION};

/// Buckets that refill about never: ECS reads burst 2, ELBv2 and Route53 burst 1.
fn tiny() -> BTreeMap<Bucket, Limit> {
    let l = |burst| Limit { rate: 0.001, burst };
    BTreeMap::from([
        (Bucket::EcsRead, l(2.0)),
        (Bucket::Elbv2Account, l(1.0)),
        (Bucket::Route53, l(1.0)),
    ])
}

/// SDK settings with every endpoint at the proxy.
async fn sdk_config(proxy: &BucketProxy) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.endpoint())
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_bucket_answers_throttling_in_each_protocols_shape_without_forwarding() {
    let moto = Moto::start();
    let proxy = BucketProxy::start_with(moto.port(), &tiny());
    let config = sdk_config(&proxy).await;
    let calls = CallMetrics::new();
    // No retries: the throttle must surface as the call's error.
    let ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .interceptor(calls.interceptor())
            .build(),
    );
    let elb = aws_sdk_elasticloadbalancingv2::Client::from_conf(
        aws_sdk_elasticloadbalancingv2::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .interceptor(calls.interceptor())
            .build(),
    );
    let r53 = aws_sdk_route53::Client::from_conf(
        aws_sdk_route53::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .interceptor(calls.interceptor())
            .build(),
    );

    // ECS (awsJson1_1): two from the burst, then ThrottlingException.
    for _ in 0..2 {
        ecs.list_clusters().send().await.expect("within the burst");
    }
    let err = ecs
        .list_clusters()
        .send()
        .await
        .expect_err("the bucket is empty");
    assert_eq!(err.code(), Some("ThrottlingException"), "{err:?}");

    // ELBv2 (awsQuery): one, then <Code>Throttling</Code>.
    elb.describe_load_balancers()
        .send()
        .await
        .expect("within the burst");
    let err = elb
        .describe_load_balancers()
        .send()
        .await
        .expect_err("the bucket is empty");
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");

    // Route53 (REST-XML): one, then Throttling.
    r53.list_hosted_zones()
        .send()
        .await
        .expect("within the burst");
    let err = r53
        .list_hosted_zones()
        .send()
        .await
        .expect_err("the bucket is empty");
    assert_eq!(err.code(), Some("Throttling"), "{err:?}");

    // The proxy counted what it forwarded and what it refused, per operation and bucket.
    let counts = proxy.counts();
    let op = |service: AwsService, operation: &str| {
        counts
            .by_call
            .get(&Call {
                service,
                operation: operation.into(),
            })
            .copied()
            .unwrap_or_default()
    };
    let ecs_list = op(AwsService::Ecs, "ListClusters");
    assert_eq!((ecs_list.forwarded, ecs_list.throttled), (2, 1));
    let elb_describe = op(AwsService::Elbv2, "DescribeLoadBalancers");
    assert_eq!((elb_describe.forwarded, elb_describe.throttled), (1, 1));
    let zones = op(AwsService::Route53, "ListHostedZones");
    assert_eq!((zones.forwarded, zones.throttled), (1, 1));
    assert_eq!(counts.throttled_total(), 3);
    assert_eq!(counts.throttled.get(&Bucket::Elbv2Account), Some(&1));
    assert_eq!(counts.admitted.get(&Bucket::EcsRead), Some(&2));

    // And the operator's own counter sees three throttles, one per protocol.
    assert_eq!(calls.total(Outcome::Throttled), 3, "{:?}", calls.snapshot());
    assert_eq!(calls.total(Outcome::Ok), 4, "{:?}", calls.snapshot());
}

/// The operator's clients (`resources::Aws`) charge each SDK retry to the call budget: a call
/// throttled on every attempt leaves its bucket four tokens poorer than the one token its
/// first attempt took (standard retry mode, 5 attempts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdks_retries_are_charged_to_the_operators_budget() {
    use ecs_operator::aws::budget::Rate;
    use ecs_operator::aws::{Budget, CallClass, Sdk, Service};
    use ecs_operator::resources::context::Aws;

    let moto = Moto::start();
    // AWS's side: ECS reads burst 2, refilling about never.
    let proxy = BucketProxy::start_with(moto.port(), &tiny());
    let config = sdk_config(&proxy).await;
    // The operator's side: ECS reads burst 10, refilling about never.
    let budget = Budget::with_rates(&[(
        (Service::Ecs, CallClass::Read),
        Rate {
            per_second: 0.001,
            burst: 10,
        },
    )]);
    let aws = Aws::new(&Sdk::new(config), "tests", budget.clone());
    let list = || {
        aws.call(
            Service::Ecs,
            CallClass::Read,
            "ListClusters",
            "*",
            aws.ecs.list_clusters().send(),
        )
    };
    list().await.expect("within AWS's burst");
    list().await.expect("within AWS's burst");
    list()
        .await
        .expect_err("AWS's bucket is empty: every attempt is throttled");
    let throttled = proxy
        .counts()
        .by_call
        .get(&Call {
            service: AwsService::Ecs,
            operation: "ListClusters".into(),
        })
        .copied()
        .unwrap_or_default()
        .throttled;
    assert_eq!(throttled, 5, "the SDK made 5 attempts of the third call");
    // 10 - 3 calls - 4 charged retries = 3 tokens left.
    let mut left = 0;
    while budget.try_acquire(Service::Ecs, CallClass::Read) {
        left += 1;
        assert!(left <= 10, "the bucket never empties");
    }
    assert_eq!(left, 3, "3 calls and 4 retries spent 7 of the 10 tokens");
}

//! The API-model check in front of every moto server: requests AWS would refuse, sent by the
//! real SDK clients to `Moto::endpoint`, are recorded with their rule and member (moto itself
//! accepts them), valid ones are not, and a test that leaves one behind fails.

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use std::time::Duration;

use ecs_operator_tests::api_model::Rule;
use ecs_operator_tests::fault_proxy::{FaultConfig, FaultProxy};
use ecs_operator_tests::Moto;

#[tokio::test(flavor = "multi_thread")]
async fn requests_aws_would_refuse_are_recorded_in_each_protocol_and_valid_ones_are_not() {
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;

    let ecs = aws_sdk_ecs::Client::new(&sdk);
    ecs.create_cluster()
        .cluster_name("prod")
        .send()
        .await
        .unwrap();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    elb.describe_target_groups()
        .page_size(400)
        .send()
        .await
        .unwrap();
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let zone = r53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("api-model-test")
        .send()
        .await
        .unwrap();
    let zone_id = zone.hosted_zone().unwrap().id().to_string();
    assert_eq!(moto.take_api_violations(), vec![], "valid requests");
    assert_eq!(
        moto.api_requests_checked(),
        3,
        "every request went through the check"
    );

    // awsJson: more services than DescribeServices takes (its documented limit is 10).
    let services: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let _ = ecs
        .describe_services()
        .cluster("prod")
        .set_services(Some(services))
        .send()
        .await;
    // awsQuery: a page size above the model's maximum of 400.
    let _ = elb.describe_target_groups().page_size(401).send().await;
    // REST-XML: a negative TTL.
    let record = ResourceRecordSet::builder()
        .name("www.example.com")
        .r#type(RrType::Txt)
        .ttl(-1)
        .resource_records(ResourceRecord::builder().value("\"x\"").build().unwrap())
        .build()
        .unwrap();
    let _ = r53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(record)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await;

    let found: Vec<(String, String, String, Rule)> = moto
        .take_api_violations()
        .into_iter()
        .map(|v| (v.service, v.operation, v.path, v.rule))
        .collect();
    let expected = [
        ("ecs", "DescribeServices", "services", Rule::MaxItems),
        ("elbv2", "DescribeTargetGroups", "PageSize", Rule::Maximum),
        (
            "route53",
            "ChangeResourceRecordSets",
            "ChangeBatch.Changes[0].ResourceRecordSet.TTL",
            Rule::Minimum,
        ),
    ];
    for &(service, op, path, ref rule) in &expected {
        assert!(
            found
                .iter()
                .any(|f| f.0 == service && f.1 == op && f.2 == path && f.3 == *rule),
            "{service} {op} {path} {rule:?} not recorded; recorded: {found:?}"
        );
    }
    // The SDK retries nothing here (moto answers them all), so each is recorded once.
    assert_eq!(found.len(), expected.len(), "{found:?}");
}

#[tokio::test(flavor = "multi_thread")]
#[should_panic(expected = "requests broke the AWS API models")]
async fn a_test_that_sent_a_refused_request_fails_when_its_moto_is_dropped() {
    let moto = Moto::start();
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&moto.sdk_config().await);
    let _ = elb.describe_target_groups().page_size(0).send().await;
    drop(moto);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_chained_in_front_of_the_check_gets_every_answer() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(moto.port(), FaultConfig::default());
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy.endpoint())
        .region(aws_config::Region::new(ecs_operator_tests::REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await;
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    for name in ["a", "b", "c"] {
        // A chained proxy reads its upstream to the end: the check must close after answering.
        tokio::time::timeout(
            Duration::from_secs(30),
            ecs.create_cluster().cluster_name(name).send(),
        )
        .await
        .expect("an answer through both proxies")
        .expect("the cluster is created");
    }
    assert_eq!(moto.api_requests_checked(), 3);
}

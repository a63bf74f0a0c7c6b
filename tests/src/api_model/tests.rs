//! The check's self-test: for each protocol (awsJson, awsQuery, REST-XML) a known-good
//! request passes, and each planted violation is caught with its rule and member path.

use super::*;
use crate::proxy::Request;

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
    Request::new(method, path, headers, body)
}

fn auth(service: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=testing/20250101/eu-west-1/{service}/aws4_request, SignedHeaders=host, Signature=0")
}

fn json(target: &str, body: &str) -> Request {
    request(
        "POST",
        "/",
        &[
            ("X-Amz-Target", target),
            ("Content-Type", "application/x-amz-json-1.1"),
        ],
        body,
    )
}

fn query(service: &str, body: &str) -> Request {
    let a = auth(service);
    request(
        "POST",
        "/",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &a),
        ],
        body,
    )
}

fn route53(method: &str, path: &str, body: &str) -> Request {
    let a = auth("route53");
    request(method, path, &[("Authorization", &a)], body)
}

/// `check` finds exactly one violation, of `rule` at `path`.
#[track_caller]
fn caught(req: Request, rule: Rule, path: &str) {
    let found = check(&req);
    assert!(
        found.iter().any(|v| v.rule == rule && v.path == path),
        "expected {rule:?} at {path:?}, found:\n{}",
        report(&found)
    );
    assert_eq!(
        found.len(),
        1,
        "exactly one violation expected:\n{}",
        report(&found)
    );
}

#[track_caller]
fn passes(req: Request) {
    let found = check(&req);
    assert!(
        found.is_empty(),
        "expected no violation:\n{}",
        report(&found)
    );
}

const ECS: &str = "AmazonEC2ContainerServiceV20141113";
const ECR: &str = "AmazonEC2ContainerRegistry_V20150921";

#[test]
fn every_pattern_of_every_loaded_model_compiles() {
    for m in model::all() {
        assert!(
            m.bad_patterns.is_empty(),
            "{}: {:?}",
            m.name,
            m.bad_patterns
        );
        assert!(!m.operations.is_empty(), "{} has no operations", m.name);
    }
}

#[test]
fn a_valid_json_request_passes() {
    passes(json(
        &format!("{ECS}.DescribeServices"),
        r#"{"cluster":"prod","services":["web","api"],"include":["TAGS"]}"#,
    ));
    passes(json(
        &format!("{ECR}.CreateRepository"),
        r#"{"repositoryName":"team/web-app","tags":[{"Key":"a","Value":"b"}]}"#,
    ));
}

#[test]
fn json_planted_violations_are_each_caught() {
    caught(
        json(&format!("{ECS}.CreateService"), r#"{"cluster":"c"}"#),
        Rule::Required,
        "serviceName",
    );
    caught(
        json(
            &format!("{ECS}.DescribeServices"),
            r#"{"services":["a"],"bogus":1}"#,
        ),
        Rule::UnknownMember,
        "bogus",
    );
    caught(
        json(
            &format!("{ECR}.DescribeRepositories"),
            r#"{"maxResults":5000}"#,
        ),
        Rule::Maximum,
        "maxResults",
    );
    let long = "a".repeat(257);
    caught(
        json(
            &format!("{ECR}.CreateRepository"),
            &format!(r#"{{"repositoryName":"{long}"}}"#),
        ),
        Rule::MaxLength,
        "repositoryName",
    );
    caught(
        json(
            &format!("{ECS}.CreateService"),
            r#"{"serviceName":"web","launchType":"SPACESHIP"}"#,
        ),
        Rule::Enum,
        "launchType",
    );
    caught(
        json(
            &format!("{ECR}.CreateRepository"),
            r#"{"repositoryName":"Not_Lower!"}"#,
        ),
        Rule::Pattern,
        "repositoryName",
    );
    let tags: Vec<String> = (0..51)
        .map(|i| format!(r#"{{"key":"k{i}","value":"v"}}"#))
        .collect();
    caught(
        json(
            &format!("{ECS}.TagResource"),
            &format!(r#"{{"resourceArn":"arn","tags":[{}]}}"#, tags.join(",")),
        ),
        Rule::MaxItems,
        "tags",
    );
    caught(
        json(&format!("{ECS}.DescribeServices"), r#"{"services":"web"}"#),
        Rule::Type,
        "services",
    );
}

#[test]
fn limits_only_the_api_reference_states_are_caught() {
    let services: Vec<String> = (0..11).map(|i| format!("\"s{i}\"")).collect();
    caught(
        json(
            &format!("{ECS}.DescribeServices"),
            &format!(r#"{{"services":[{}]}}"#, services.join(",")),
        ),
        Rule::MaxItems,
        "services",
    );
    let name = "n".repeat(33);
    caught(
        query(
            "elasticloadbalancing",
            &format!("Action=CreateTargetGroup&Version=2015-12-01&Name={name}"),
        ),
        Rule::Pattern,
        "Name",
    );
    caught(
        query(
            "elasticloadbalancing",
            "Action=CreateLoadBalancer&Version=2015-12-01&Name=-web",
        ),
        Rule::Pattern,
        "Name",
    );
    caught(
        json(
            "AnyScaleFrontendService.DescribeScalingPolicies",
            r#"{"ServiceNamespace":"ecs","MaxResults":50}"#,
        ),
        Rule::Maximum,
        "MaxResults",
    );
}

#[test]
fn a_valid_query_request_passes() {
    passes(query(
        "elasticloadbalancing",
        "Action=DescribeTags&Version=2015-12-01&ResourceArns.member.1=arn%3Aa&ResourceArns.member.2=arn%3Ab",
    ));
    passes(query(
        "elasticloadbalancing",
        "Action=CreateTargetGroup&Version=2015-12-01&Name=web&Protocol=HTTP&Port=80&VpcId=vpc-1\
         &HealthCheckIntervalSeconds=30&Matcher.HttpCode=200&Tags.member.1.Key=ecs-operator.io%2Fowner\
         &Tags.member.1.Value=ServiceSpec%2Fweb",
    ));
    // `Name=` alone is an empty list.
    passes(query(
        "autoscaling",
        "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames=",
    ));
}

#[test]
fn query_planted_violations_are_each_caught() {
    let elb = "elasticloadbalancing";
    caught(
        query(
            elb,
            "Action=CreateTargetGroup&Version=2015-12-01&Protocol=HTTP",
        ),
        Rule::Required,
        "Name",
    );
    caught(
        query(
            elb,
            "Action=DescribeLoadBalancers&Version=2015-12-01&Bogus=1",
        ),
        Rule::UnknownMember,
        "Bogus",
    );
    caught(
        query(
            elb,
            "Action=DescribeTargetGroups&Version=2015-12-01&PageSize=401",
        ),
        Rule::Maximum,
        "PageSize",
    );
    let long = "k".repeat(129);
    caught(
        query(
            elb,
            &format!("Action=AddTags&Version=2015-12-01&ResourceArns.member.1=a&Tags.member.1.Key={long}"),
        ),
        Rule::MaxLength,
        "Tags[0].Key",
    );
    caught(
        query(
            elb,
            "Action=CreateTargetGroup&Version=2015-12-01&Name=web&Protocol=SPDY",
        ),
        Rule::Enum,
        "Protocol",
    );
    caught(
        query(
            elb,
            "Action=AddTags&Version=2015-12-01&ResourceArns.member.1=a&Tags.member.1.Key=bad%01key",
        ),
        Rule::Pattern,
        "Tags[0].Key",
    );
    let attrs: Vec<String> = (1..=21)
        .map(|i| format!("Attributes.member.{i}.Key=k{i}&Attributes.member.{i}.Value=v"))
        .collect();
    caught(
        query(
            elb,
            &format!(
                "Action=ModifyLoadBalancerAttributes&Version=2015-12-01&LoadBalancerArn=a&{}",
                attrs.join("&")
            ),
        ),
        Rule::MaxItems,
        "Attributes",
    );
    caught(
        query(
            elb,
            "Action=DescribeTargetGroups&Version=2015-12-01&PageSize=ten",
        ),
        Rule::Type,
        "PageSize",
    );
    // botocore spells "any supplementary character" with UTF-16 surrogates; the translated
    // pattern still refuses a control character.
    caught(
        query(
            "autoscaling",
            "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=a%01b",
        ),
        Rule::Pattern,
        "AutoScalingGroupNames[0]",
    );
}

const CHANGE: &str = "<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
<ChangeBatch><Changes><Change><Action>ACTION</Action><ResourceRecordSet><Name>www.example.com</Name>\
<Type>TXT</Type><TTL>TTLVALUE</TTL><ResourceRecords><ResourceRecord><Value>\"x\"</Value></ResourceRecord>\
</ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>";

fn change(action: &str, ttl: &str) -> String {
    CHANGE.replace("ACTION", action).replace("TTLVALUE", ttl)
}

#[test]
fn a_valid_rest_xml_request_passes() {
    passes(route53(
        "POST",
        "/2013-04-01/hostedzone/Z123/rrset/",
        &change("UPSERT", "300"),
    ));
    passes(route53(
        "GET",
        "/2013-04-01/hostedzonesbyname?dnsname=example.com&maxitems=1",
        "",
    ));
    passes(route53(
        "GET",
        "/2013-04-01/hostedzone/Z123/rrset?maxitems=300",
        "",
    ));
}

#[test]
fn rest_xml_planted_violations_are_each_caught() {
    caught(
        route53(
            "POST",
            "/2013-04-01/hostedzone/Z123/rrset/",
            "<ChangeResourceRecordSetsRequest></ChangeResourceRecordSetsRequest>",
        ),
        Rule::Required,
        "ChangeBatch",
    );
    caught(
        route53("GET", "/2013-04-01/hostedzone/Z123/rrset?bogus=1", ""),
        Rule::UnknownMember,
        "?bogus",
    );
    caught(
        route53(
            "POST",
            "/2013-04-01/hostedzone/Z123/rrset/",
            &change("UPSERT", "-1"),
        ),
        Rule::Minimum,
        "ChangeBatch.Changes[0].ResourceRecordSet.TTL",
    );
    let long = "a".repeat(1025);
    caught(
        route53(
            "GET",
            &format!("/2013-04-01/hostedzonesbyname?dnsname={long}"),
            "",
        ),
        Rule::MaxLength,
        "DNSName",
    );
    caught(
        route53(
            "POST",
            "/2013-04-01/hostedzone/Z123/rrset/",
            &change("FLIP", "300"),
        ),
        Rule::Enum,
        "ChangeBatch.Changes[0].Action",
    );
    caught(
        route53(
            "POST",
            "/2013-04-01/cidrcollection",
            "<CreateCidrCollectionRequest><Name>not a name!</Name><CallerReference>ref-1</CallerReference></CreateCidrCollectionRequest>",
        ),
        Rule::Pattern,
        "Name",
    );
    let tags: String = (0..11)
        .map(|i| format!("<Tag><Key>k{i}</Key><Value>v</Value></Tag>"))
        .collect();
    caught(
        route53(
            "POST",
            "/2013-04-01/tags/hostedzone/Z123",
            &format!("<ChangeTagsForResourceRequest><AddTags>{tags}</AddTags></ChangeTagsForResourceRequest>"),
        ),
        Rule::MaxItems,
        "AddTags",
    );
    caught(
        route53(
            "POST",
            "/2013-04-01/hostedzone/Z123/rrset/",
            &change("UPSERT", "soon"),
        ),
        Rule::Type,
        "ChangeBatch.Changes[0].ResourceRecordSet.TTL",
    );
}

#[test]
fn an_unknown_operation_or_an_unmatched_path_is_reported_not_passed() {
    caught(
        json(&format!("{ECS}.LaunchRockets"), "{}"),
        Rule::Unreadable,
        "",
    );
    caught(
        route53("GET", "/2013-04-01/nothing/here", ""),
        Rule::Unreadable,
        "",
    );
    caught(
        query("elasticloadbalancing", "Action=Describe&Version=1999-01-01"),
        Rule::Unreadable,
        "",
    );
}

#[test]
fn moto_s_own_api_is_not_an_aws_call() {
    passes(request("POST", "/moto-api/reset", &[], ""));
}

#[test]
fn s3_store_calls_are_read_against_their_operations() {
    let a = auth("s3");
    let h = [("Authorization", a.as_str())];
    passes(request(
        "GET",
        "/bucket?list-type=2&prefix=specs%2F&x-id=ListObjectsV2",
        &h,
        "",
    ));
    passes(request(
        "PUT",
        "/bucket/specs/a.yaml?x-id=PutObject",
        &h,
        "kind: ClusterSpec",
    ));
    passes(request("HEAD", "/bucket/specs/a.yaml", &h, ""));
    caught(
        request("GET", "/bucket?list-type=2&max-keys=many", &h, ""),
        Rule::Type,
        "MaxKeys",
    );
}

#[test]
fn an_s3_path_shared_with_a_deprecated_operation_is_read_as_the_current_one() {
    let a = auth("s3");
    let h = [("Authorization", a.as_str())];
    // PUT /{Bucket}?notification is PutBucketNotificationConfiguration (EventBridge included),
    // not the deprecated PutBucketNotification, whose shape has no EventBridgeConfiguration.
    passes(request(
        "PUT",
        "/bucket?notification",
        &h,
        r#"<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><QueueConfiguration><Id>audit</Id><Queue>arn:aws:sqs:eu-west-1:1:audit</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration><EventBridgeConfiguration></EventBridgeConfiguration></NotificationConfiguration>"#,
    ));
}

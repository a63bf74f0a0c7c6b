//! The edge reconcilers against moto (issue 4): the reference architecture converges from
//! empty and every resource is checked field by field with the SDK; a second reconcile of a
//! converged fleet makes no mutating call; drift made by hand shows in `diff` and one reconcile
//! restores it; a record the operator does not own is left alone and only its spec fails.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{
    ActionTypeEnum, RedirectActionConfig, RedirectActionStatusCodeEnum,
};
use aws_sdk_route53::types::{AliasTarget, ChangeAction, ResourceRecordSet, RrType};
use ecs_operator::reconcile::Failure;
use ecs_operator::store::Phase;
use ecs_operator_tests::fixtures::{
    change_records, create_records, listeners, load_balancer, owner_tags, reference_files,
    reference_specs, set_redirect, simple_record, sni_certificates, target_group, write_specs,
    Env as Base, Fleet, Network, EDGE_MOTO_ENV,
};
use ecs_operator_tests::{cli, Moto};
use serde_json::Value;

const ZONE: &str = "example.com";
const OWNER_TXT_WEB: &str =
    "\"heritage=ecs-operator,ecs-operator/owner=ServiceSpec/web,instance=ecs-operator\"";

/// The shared setup ([`Base`]) with this suite's readers of what the operator built.
struct Env(Base);

impl std::ops::Deref for Env {
    type Target = Base;
    fn deref(&self) -> &Base {
        &self.0
    }
}

/// The reference architecture on moto, not reconciled yet.
async fn setup() -> Env {
    Env(Base::new(EDGE_MOTO_ENV, reference_files).await)
}

impl Env {
    /// The load balancer `prod-public`.
    async fn lb(&self) -> aws_sdk_elasticloadbalancingv2::types::LoadBalancer {
        load_balancer(&self.elb, "prod-public").await
    }

    /// The listeners of `prod-public` by port.
    async fn listeners(&self) -> BTreeMap<i32, aws_sdk_elasticloadbalancingv2::types::Listener> {
        listeners(&self.elb, "prod-public").await
    }

    /// The target group `name`.
    async fn target_group(&self, name: &str) -> aws_sdk_elasticloadbalancingv2::types::TargetGroup {
        target_group(&self.elb, name).await
    }

    /// Non-default rules of the HTTPS listener by priority: (hosts, paths, forward target).
    async fn rules(&self) -> BTreeMap<u32, (BTreeSet<String>, BTreeSet<String>, String, String)> {
        let l443 = self.listeners().await[&443]
            .listener_arn()
            .unwrap()
            .to_string();
        let out = self
            .elb
            .describe_rules()
            .listener_arn(l443)
            .send()
            .await
            .unwrap();
        let mut m = BTreeMap::new();
        for r in out.rules() {
            if r.is_default() == Some(true) {
                continue;
            }
            let mut hosts = BTreeSet::new();
            let mut paths = BTreeSet::new();
            for c in r.conditions() {
                match c.field().unwrap() {
                    "host-header" => {
                        hosts.extend(c.host_header_config().unwrap().values().iter().cloned())
                    }
                    "path-pattern" => {
                        paths.extend(c.path_pattern_config().unwrap().values().iter().cloned())
                    }
                    other => panic!("unexpected condition {other}"),
                }
            }
            assert_eq!(r.actions().len(), 1);
            assert_eq!(r.actions()[0].r#type(), Some(&ActionTypeEnum::Forward));
            m.insert(
                r.priority().unwrap().parse().unwrap(),
                (
                    hosts,
                    paths,
                    r.actions()[0].target_group_arn().unwrap().to_string(),
                    r.rule_arn().unwrap().to_string(),
                ),
            );
        }
        m
    }

    /// Every record of the zone: (name, type) -> record set.
    async fn records(&self) -> BTreeMap<(String, String), ResourceRecordSet> {
        let out = self
            .r53
            .list_resource_record_sets()
            .hosted_zone_id(&self.net.zone_id)
            .send()
            .await
            .unwrap();
        assert!(!out.is_truncated());
        out.resource_record_sets()
            .iter()
            .map(|r| {
                (
                    (r.name().to_string(), r.r#type().as_str().to_string()),
                    r.clone(),
                )
            })
            .collect()
    }

    /// Issued certificates whose owner tag is `owner`: domain set -> ARN.
    async fn certificates(&self, owner: &str) -> BTreeMap<BTreeSet<String>, String> {
        let mut out = BTreeMap::new();
        let list = self.acm.list_certificates().send().await.unwrap();
        for s in list.certificate_summary_list() {
            let arn = s.certificate_arn().unwrap();
            let tags = self
                .acm
                .list_tags_for_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .unwrap();
            let t: BTreeMap<String, String> = tags
                .tags()
                .iter()
                .map(|t| {
                    (
                        t.key().to_string(),
                        t.value().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            if t != owner_tags(owner) {
                continue;
            }
            let d = self
                .acm
                .describe_certificate()
                .certificate_arn(arn)
                .send()
                .await
                .unwrap();
            let c = d.certificate().unwrap();
            assert_eq!(c.status().unwrap().as_str(), "ISSUED");
            let domains: BTreeSet<String> = c.subject_alternative_names().iter().cloned().collect();
            // Every validation CNAME is in the zone with ACM's value.
            let records = self.records().await;
            for v in c.domain_validation_options() {
                let rr = v.resource_record().unwrap();
                let rec = records
                    .get(&(rr.name().to_string(), "CNAME".to_string()))
                    .unwrap_or_else(|| panic!("validation record {} missing", rr.name()));
                assert_eq!(rec.resource_records()[0].value(), rr.value());
            }
            out.insert(domains, arn.to_string());
        }
        out
    }

    async fn lifecycle(&self) -> Value {
        let p = self
            .ecr
            .get_lifecycle_policy()
            .repository_name("trust-estate-server")
            .send()
            .await
            .unwrap();
        serde_json::from_str(p.lifecycle_policy_text().unwrap()).unwrap()
    }

    async fn diff_cli(&self) -> String {
        let url = format!("file://{}", self.dir.path().display());
        let out = cli(
            &["diff", "--store", &url],
            Some(self.moto.sdk_config().await),
        )
        .await;
        assert_eq!(out.code, 0, "{out:?}");
        out.stdout
    }
}

/// Every field of every edge resource of the reference architecture, as the specs say.
async fn assert_reference_architecture(env: &Env) {
    let z = ZONE;
    // ECR.
    let repo = env
        .ecr
        .describe_repositories()
        .repository_names("trust-estate-server")
        .send()
        .await
        .unwrap()
        .repositories()[0]
        .clone();
    assert_eq!(repo.image_tag_mutability().unwrap().as_str(), "IMMUTABLE");
    assert!(repo.image_scanning_configuration().unwrap().scan_on_push());
    let repo_tags = env.ecr_tags(repo.repository_arn().unwrap()).await;
    assert_eq!(repo_tags, owner_tags("ServiceSpec/web"));
    let policy = env.lifecycle().await;
    let rules = policy["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "{policy}");
    assert_eq!(rules[0]["rulePriority"], 1);
    assert_eq!(rules[0]["selection"]["tagStatus"], "untagged");
    assert_eq!(rules[0]["selection"]["countType"], "sinceImagePushed");
    assert_eq!(rules[0]["selection"]["countUnit"], "days");
    assert_eq!(rules[0]["selection"]["countNumber"], 1);
    assert_eq!(rules[0]["action"]["type"], "expire");
    assert_eq!(rules[1]["rulePriority"], 2);
    assert_eq!(rules[1]["selection"]["tagStatus"], "tagged");
    assert_eq!(
        rules[1]["selection"]["tagPrefixList"],
        serde_json::json!(["prod-"])
    );
    assert_eq!(rules[1]["selection"]["countType"], "imageCountMoreThan");
    assert_eq!(rules[1]["selection"]["countNumber"], 10);

    // Certificates: the default one (apex + www) and admin's own.
    let cluster_certs = env.certificates("ClusterSpec/prod").await;
    let default_domains: BTreeSet<String> = [z.to_string(), format!("www.{z}")].into();
    assert_eq!(cluster_certs.len(), 1, "{cluster_certs:?}");
    let default_cert = cluster_certs[&default_domains].clone();
    let admin_certs = env.certificates("ServiceSpec/admin").await;
    let admin_cert = admin_certs[&BTreeSet::from([format!("admin.{z}")])].clone();
    assert!(
        env.certificates("ServiceSpec/web").await.is_empty(),
        "web's hosts are covered"
    );

    // Load balancer.
    let lb = env.lb().await;
    let lb_arn = lb.load_balancer_arn().unwrap().to_string();
    assert_eq!(lb.scheme().unwrap().as_str(), "internet-facing");
    assert_eq!(lb.r#type().unwrap().as_str(), "application");
    assert_eq!(lb.vpc_id(), Some(env.net.vpc.as_str()));
    let subnets: BTreeSet<String> = lb
        .availability_zones()
        .iter()
        .map(|a| a.subnet_id().unwrap().to_string())
        .collect();
    assert_eq!(subnets, env.net.subnets.iter().cloned().collect());
    assert_eq!(
        lb.security_groups(),
        std::slice::from_ref(&env.net.security_group)
    );
    let attrs: BTreeMap<String, String> = env
        .elb
        .describe_load_balancer_attributes()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .unwrap()
        .attributes()
        .iter()
        .map(|a| (a.key().unwrap().to_string(), a.value().unwrap().to_string()))
        .collect();
    assert_eq!(attrs["deletion_protection.enabled"], "true");
    assert_eq!(
        attrs
            .get("idle_timeout.timeout_seconds")
            .map(String::as_str)
            .unwrap_or("60"),
        "60"
    );
    assert_eq!(env.elb_tags(&lb_arn).await, owner_tags("ClusterSpec/prod"));

    // Listeners.
    let listeners = env.listeners().await;
    assert_eq!(listeners.keys().copied().collect::<Vec<_>>(), [80, 443]);
    let l80 = &listeners[&80];
    assert_eq!(l80.protocol().unwrap().as_str(), "HTTP");
    let a = &l80.default_actions()[0];
    assert_eq!(l80.default_actions().len(), 1);
    assert_eq!(a.r#type(), Some(&ActionTypeEnum::Redirect));
    let r = a.redirect_config().unwrap();
    assert_eq!(
        (r.protocol(), r.port(), r.host(), r.path(), r.query()),
        (
            Some("HTTPS"),
            Some("443"),
            Some("#{host}"),
            Some("/#{path}"),
            Some("#{query}")
        )
    );
    assert_eq!(
        r.status_code(),
        Some(&RedirectActionStatusCodeEnum::Http301)
    );
    assert_eq!(
        env.elb_tags(l80.listener_arn().unwrap()).await,
        owner_tags("ClusterSpec/prod")
    );
    let l443 = &listeners[&443];
    assert_eq!(l443.protocol().unwrap().as_str(), "HTTPS");
    assert_eq!(
        l443.ssl_policy(),
        Some("ELBSecurityPolicy-TLS13-1-2-2021-06")
    );
    // moto lists the SNI certificates here too (AWS lists only the default one): the first is
    // the default.
    assert_eq!(
        l443.certificates()[0].certificate_arn(),
        Some(default_cert.as_str())
    );
    let f = l443.default_actions()[0].fixed_response_config().unwrap();
    assert_eq!(
        (f.status_code(), f.content_type()),
        (Some("404"), Some("text/plain"))
    );
    let sni = sni_certificates(&env.elb, l443.listener_arn().unwrap()).await;
    assert_eq!(
        sni,
        std::slice::from_ref(&admin_cert),
        "admin's certificate is attached by SNI"
    );

    // Target groups.
    let web = env.target_group("web").await;
    let admin = env.target_group("admin").await;
    for (tg, port, path, healthy, dereg, owner) in [
        (&web, 3000, "/health", 2, "30", "ServiceSpec/web"),
        (&admin, 80, "/", 2, "300", "ServiceSpec/admin"),
    ] {
        assert_eq!(tg.target_type().unwrap().as_str(), "ip");
        assert_eq!(tg.protocol().unwrap().as_str(), "HTTP");
        assert_eq!(tg.port(), Some(port));
        assert_eq!(tg.vpc_id(), Some(env.net.vpc.as_str()));
        assert_eq!(tg.health_check_enabled(), Some(true));
        assert_eq!(tg.health_check_protocol().unwrap().as_str(), "HTTP");
        assert_eq!(tg.health_check_port(), Some("traffic-port"));
        assert_eq!(tg.health_check_path(), Some(path));
        assert_eq!(tg.health_check_interval_seconds(), Some(30));
        assert_eq!(tg.health_check_timeout_seconds(), Some(5));
        assert_eq!(tg.healthy_threshold_count(), Some(healthy));
        assert_eq!(tg.unhealthy_threshold_count(), Some(2));
        assert_eq!(tg.matcher().unwrap().http_code(), Some("200"));
        let attrs: BTreeMap<String, String> = env
            .elb
            .describe_target_group_attributes()
            .target_group_arn(tg.target_group_arn().unwrap())
            .send()
            .await
            .unwrap()
            .attributes()
            .iter()
            .map(|a| (a.key().unwrap().to_string(), a.value().unwrap().to_string()))
            .collect();
        assert_eq!(attrs["deregistration_delay.timeout_seconds"], dereg);
        assert_eq!(
            env.elb_tags(tg.target_group_arn().unwrap()).await,
            owner_tags(owner)
        );
    }

    // Listener rules: web at its priority, admin at the lowest free one.
    let rules = env.rules().await;
    assert_eq!(
        rules.keys().copied().collect::<Vec<_>>(),
        [1, 100],
        "{rules:?}"
    );
    let (hosts, paths, tg, arn) = &rules[&100];
    assert_eq!(hosts, &BTreeSet::from([z.to_string(), format!("www.{z}")]));
    assert_eq!(paths, &BTreeSet::from(["/*".to_string()]));
    assert_eq!(tg, web.target_group_arn().unwrap());
    assert_eq!(env.elb_tags(arn).await, owner_tags("ServiceSpec/web"));
    let (hosts, paths, tg, arn) = &rules[&1];
    assert_eq!(hosts, &BTreeSet::from([format!("admin.{z}")]));
    assert_eq!(paths, &BTreeSet::from(["/*".to_string()]));
    assert_eq!(tg, admin.target_group_arn().unwrap());
    assert_eq!(env.elb_tags(arn).await, owner_tags("ServiceSpec/admin"));

    // Route53: an alias A to the ALB and an ownership TXT for every host.
    let records = env.records().await;
    for (host, owner) in [
        (format!("{z}."), "ServiceSpec/web"),
        (format!("www.{z}."), "ServiceSpec/web"),
        (format!("admin.{z}."), "ServiceSpec/admin"),
    ] {
        let a = records
            .get(&(host.clone(), "A".into()))
            .unwrap_or_else(|| panic!("no A record for {host}"));
        let t = a.alias_target().unwrap();
        assert_eq!(
            t.dns_name().trim_end_matches('.').to_lowercase(),
            lb.dns_name().unwrap().to_lowercase()
        );
        assert_eq!(t.hosted_zone_id(), lb.canonical_hosted_zone_id().unwrap());
        assert!(t.evaluate_target_health());
        let txt = &records[&(host.clone(), "TXT".into())];
        let values: Vec<&str> = txt.resource_records().iter().map(|r| r.value()).collect();
        assert_eq!(
            values,
            [format!(
                "\"heritage=ecs-operator,ecs-operator/owner={owner},instance=ecs-operator\""
            )]
        );
    }
}

#[tokio::test]
async fn the_reference_architecture_converges_from_empty_with_every_field_as_specified() {
    let env = setup().await;
    env.fleet.converge(4).await;
    assert_reference_architecture(&env).await;
}

#[tokio::test]
async fn a_second_reconcile_of_a_converged_fleet_makes_no_mutating_call() {
    let env = setup().await;
    env.fleet.converge(4).await;
    let before = env.fleet.calls.snapshot();
    env.fleet.converge(1).await;
    let mutations = env.fleet.mutations_since(&before);
    assert!(
        mutations.is_empty(),
        "mutating calls after convergence: {mutations:?}"
    );
    // Every kind of this issue was read in that round.
    for (service, op) in [
        ("ecr", "DescribeRepositories"),
        ("ecr", "GetLifecyclePolicy"),
        ("acm", "ListCertificates"),
        ("acm", "DescribeCertificate"),
        ("elasticloadbalancingv2", "DescribeLoadBalancers"),
        ("elasticloadbalancingv2", "DescribeListeners"),
        ("elasticloadbalancingv2", "DescribeRules"),
        ("elasticloadbalancingv2", "DescribeTargetGroups"),
        ("elasticloadbalancingv2", "DescribeListenerCertificates"),
        ("route53", "ListResourceRecordSets"),
    ] {
        let was = before
            .iter()
            .filter(|(l, _)| l.service == service && l.operation == op)
            .map(|(_, n)| n)
            .sum::<u64>();
        assert!(
            env.fleet.calls.attempts(service, op) > was,
            "{service}/{op} was not called in the second round: {:?}",
            env.fleet
                .calls
                .snapshot()
                .keys()
                .map(|l| format!("{}/{}", l.service, l.operation))
                .collect::<BTreeSet<_>>()
        );
    }
    assert!(env
        .diff_cli()
        .await
        .lines()
        .all(|l| l.ends_with(": in sync")));
}

#[tokio::test]
async fn drift_made_by_hand_shows_in_diff_and_one_reconcile_restores_it() {
    let env = setup().await;
    env.fleet.converge(4).await;
    let z = ZONE;
    let lb = env.lb().await;
    let listeners = env.listeners().await;

    // 1. The :80 redirect answers 302.
    let redirect = RedirectActionConfig::builder()
        .protocol("HTTPS")
        .port("443")
        .host("#{host}")
        .path("/#{path}")
        .query("#{query}")
        .status_code(RedirectActionStatusCodeEnum::Http302)
        .build();
    set_redirect(&env.elb, listeners[&80].listener_arn().unwrap(), redirect).await;
    // 2. A health-check path.
    let web_tg = env.target_group("web").await;
    env.elb
        .modify_target_group()
        .target_group_arn(web_tg.target_group_arn().unwrap())
        .health_check_path("/")
        .send()
        .await
        .unwrap();
    // 3. A lifecycle rule.
    let mut policy = env.lifecycle().await;
    policy["rules"][1]["selection"]["countNumber"] = 5.into();
    env.ecr
        .put_lifecycle_policy()
        .repository_name("trust-estate-server")
        .lifecycle_policy_text(policy.to_string())
        .send()
        .await
        .unwrap();
    // 4. A record's target.
    let elsewhere = ResourceRecordSet::builder()
        .name(format!("www.{z}."))
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .hosted_zone_id(lb.canonical_hosted_zone_id().unwrap())
                .dns_name("elsewhere-1.eu-west-1.elb.amazonaws.com")
                .evaluate_target_health(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    change_records(
        &env.r53,
        &env.net.zone_id,
        ChangeAction::Upsert,
        [elsewhere],
    )
    .await;
    // 5. A listener rule deleted.
    let admin_rule = env.rules().await[&1].3.clone();
    env.elb
        .delete_rule()
        .rule_arn(admin_rule)
        .send()
        .await
        .unwrap();

    let diff = env.diff_cli().await;
    for expected in [
        "ClusterSpec/prod: 1 change",
        "  ~ load balancer prod-public listener :80 default action: redirect 302 -> 301",
        "  ~ target group web health check path: / -> /health",
        "  ~ ecr repository trust-estate-server lifecycle: [untagged after 1 days, keep 5 of prod-*] -> [untagged after 1 days, keep 10 of prod-*]",
        &format!(
            "  ~ dns record www.{z} A target: alias elsewhere-1.eu-west-1.elb.amazonaws.com -> alias {}",
            lb.dns_name().unwrap()
        ),
        "ServiceSpec/admin: 1 change",
        &format!("  + listener rule prod-public :443 priority 1 (host admin.{z} path /*)"),
        "ServiceSpec/web: 3 changes",
    ] {
        assert!(
            diff.lines().any(|l| l == expected),
            "diff lacks `{expected}`:\n{diff}"
        );
    }
    // diff is read-only: the drift is still there.
    assert_eq!(
        env.target_group("web").await.health_check_path(),
        Some("/"),
        "diff must not write"
    );

    env.fleet.converge(1).await;
    assert_reference_architecture(&env).await;
    let before = env.fleet.calls.snapshot();
    env.fleet.converge(1).await;
    assert!(env.fleet.mutations_since(&before).is_empty());
}

#[tokio::test]
async fn a_record_without_our_txt_is_left_alone_and_only_its_service_fails() {
    let env = setup().await;
    let z = ZONE;
    // Someone else's A record where admin wants its alias.
    let theirs = simple_record(format!("admin.{z}."), RrType::A, 60, "192.0.2.10");
    create_records(&env.r53, &env.net.zone_id, [theirs]).await;
    // Four rounds: the ECS service takes three on moto (create; moto drops the deployment
    // configuration at create, so an update; the rollout completes).
    let mut results = BTreeMap::new();
    for _ in 0..4 {
        results = env.fleet.reconcile_all().await;
    }
    let phase = |k: &str| {
        results
            .iter()
            .find(|(key, _)| key.to_string() == k)
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    assert!(matches!(phase("ClusterSpec/prod"), Ok(r) if r.phase == Phase::Ready));
    assert!(matches!(phase("ServiceSpec/web"), Ok(r) if r.phase == Phase::Ready));
    match phase("ServiceSpec/admin") {
        Err(Failure::Terminal(m)) => {
            assert!(m.contains(&format!("dns record admin.{z} A")), "{m}");
            assert!(m.contains("not owned"), "{m}");
            assert!(m.contains("ecs-operator.io/adopt"), "{m}");
        }
        other => panic!("admin should fail on the unowned record: {other:?}"),
    }
    let records = env.records().await;
    let a = &records[&(format!("admin.{z}."), "A".into())];
    assert!(a.alias_target().is_none());
    assert_eq!(a.resource_records()[0].value(), "192.0.2.10");
    assert!(!records.contains_key(&(format!("admin.{z}."), "TXT".into())));
    // web's records were written beside it.
    assert!(records[&(format!("www.{z}."), "TXT".into())]
        .resource_records()
        .iter()
        .any(|r| r.value() == OWNER_TXT_WEB));

    // With the adopt annotation, admin takes the record over.
    let admin = env.dir.path().join("service-admin.yaml");
    let text = std::fs::read_to_string(&admin).unwrap().replace(
        "metadata: {name: admin, labels: {env: prod}}",
        "metadata: {name: admin, labels: {env: prod}, annotations: {ecs-operator.io/adopt: \"true\"}}",
    );
    std::fs::write(&admin, text).unwrap();
    let fleet = Fleet::new(&env.moto, env.dir.path()).await;
    let report = fleet.reconcile("ServiceSpec/admin").await.unwrap();
    assert_eq!(report.phase, Phase::Ready, "{report:?}");
    let records = env.records().await;
    assert!(records[&(format!("admin.{z}."), "A".into())]
        .alias_target()
        .is_some());
    assert!(records[&(format!("admin.{z}."), "TXT".into())]
        .resource_records()
        .iter()
        .any(|r| r.value().contains("owner=ServiceSpec/admin")));
}

#[tokio::test]
async fn a_pending_certificate_makes_the_cluster_progressing_without_waiting() {
    // moto's default: certificates stay PENDING_VALIDATION for 60 s.
    let moto = Moto::start();
    let net = Network::create(&moto, ZONE).await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &reference_specs(&net));
    let fleet = Fleet::new(&moto, dir.path()).await;
    let started = std::time::Instant::now();
    let report = fleet.reconcile("ClusterSpec/prod").await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(report.phase, Phase::Progressing, "{report:?}");
    assert_eq!(
        report.requeue_after,
        Some(std::time::Duration::from_secs(30))
    );
    let ready = &report.conditions[0];
    assert!(ready.message.contains("pending validation"), "{ready:?}");

    let sdk = moto.sdk_config().await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let ports: Vec<i32> = listeners(&elb, "prod-public").await.into_keys().collect();
    assert_eq!(ports, [80], "HTTPS waits for its certificate");
    // The validation records are already in the zone.
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let cnames = r53
        .list_resource_record_sets()
        .hosted_zone_id(&net.zone_id)
        .send()
        .await
        .unwrap()
        .resource_record_sets()
        .iter()
        .filter(|r| r.r#type() == &RrType::Cname)
        .count();
    assert_eq!(cnames, 2, "one validation CNAME per domain");
    // A second look makes no new request and no new record.
    let before = fleet.calls.snapshot();
    let again = fleet.reconcile("ClusterSpec/prod").await.unwrap();
    assert_eq!(again.phase, Phase::Progressing);
    assert!(fleet.mutations_since(&before).is_empty());
    // Services wait for the HTTPS listener, as a retryable dependency.
    match fleet.reconcile("ServiceSpec/web").await {
        Err(Failure::Retryable(m)) => assert!(m.contains("HTTPS :443 listener"), "{m}"),
        other => panic!("web should wait for the listener: {other:?}"),
    }
}

/// `n` TXT records that belong to nobody, so a listing of the whole zone takes more than one
/// page (Route53 pages at 300 records).
async fn fill_zone(env: &Env, n: usize) {
    let fillers = (0..n).map(|i| {
        simple_record(
            format!("filler-{i:04}.{ZONE}."),
            RrType::Txt,
            300,
            "\"someone else\"",
        )
    });
    create_records(&env.r53, &env.net.zone_id, fillers).await;
}

/// The record sets named exactly `name` (read from `StartRecordName`).
async fn records_named(env: &Env, name: &str) -> BTreeSet<String> {
    let out = env
        .r53
        .list_resource_record_sets()
        .hosted_zone_id(&env.net.zone_id)
        .start_record_name(format!("{name}."))
        .max_items(20)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .filter(|r| r.name().trim_end_matches('.') == name)
        .map(|r| r.r#type().as_str().to_string())
        .collect()
}

#[tokio::test]
async fn outside_a_wave_a_service_reads_route53_by_its_host_names_and_still_removes_a_host_it_no_longer_lists(
) {
    let env = setup().await;
    let reports = env.fleet.converge(4).await;
    fill_zone(&env, 400).await;
    let web = env.fleet.spec("ServiceSpec/web");
    let ledger = reports[&web.key()].resources.clone();
    let lists = || {
        env.fleet
            .calls
            .attempts("route53", "ListResourceRecordSets")
    };

    // Without a ledger the reconcile lists the whole zone: two pages of 300.
    let before = lists();
    let r = env.fleet.reconcile("ServiceSpec/web").await.unwrap();
    assert_eq!(r.phase, Phase::Ready, "{r:?}");
    assert!(lists() - before >= 2, "{} listings", lists() - before);

    // With its ledger: one by-name read per host (example.com, www.example.com), no write.
    let before = lists();
    let snapshot = env.fleet.calls.snapshot();
    let r = env
        .fleet
        .reconcile_with_ledger(web.clone(), ledger.clone())
        .await
        .unwrap();
    assert_eq!(r.phase, Phase::Ready, "{r:?}");
    assert_eq!(lists() - before, 2);
    assert!(env.fleet.mutations_since(&snapshot).is_empty());

    // The apex host leaves the spec: the ledger still names it, so its A and TXT go.
    let text = std::fs::read_to_string(env.dir.path().join("service-web.yaml"))
        .unwrap()
        .replace(
            &format!("hosts: [{ZONE}, www.{ZONE}]"),
            &format!("hosts: [www.{ZONE}]"),
        );
    let mut parsed = ecs_operator::spec::parse_file("service-web.yaml", text.as_bytes());
    let edited = std::sync::Arc::new(parsed.documents.remove(0).result.unwrap());
    assert_eq!(
        records_named(&env, ZONE).await,
        ["A", "NS", "SOA", "TXT"].map(String::from).into()
    );
    let r = env
        .fleet
        .reconcile_with_ledger(edited, ledger)
        .await
        .unwrap();
    assert_eq!(
        records_named(&env, ZONE).await,
        ["NS", "SOA"].map(String::from).into(),
        "the apex A and its ownership TXT are deleted, the zone's own records stay"
    );
    assert_eq!(
        records_named(&env, &format!("www.{ZONE}")).await,
        ["A", "TXT"].map(String::from).into()
    );
    assert!(!r
        .resources
        .iter()
        .any(|x| x.id.ends_with(&format!("/{ZONE}/A"))));
}

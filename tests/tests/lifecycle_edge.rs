//! Deletion of the edge resources against moto (issue 6, item 1), on the reference architecture
//! of `fixtures.rs`, driven through `AwsReconciler::delete` the way the controller calls it
//! (the status record's resource list is the ledger): a removed ServiceSpec takes its records,
//! TXT, rule, SNI attachment, target group, service, revisions and own certificate with it and
//! leaves the other service and the ALB Ready and untouched; `Retain` releases everything in
//! place; a ClusterSpec with `deletionPolicy: Delete` goes away entirely once its services are
//! gone (deletion protection is reported, never turned off); foreign resources survive all of it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use aws_sdk_route53::types::{ResourceRecordSet, RrType};
use ecs_operator::reconcile::{Deletion, ReconcileInput, Reconciler, Report};
use ecs_operator::store::status::SpecStatus;
use ecs_operator::store::Phase;
use ecs_operator_tests::fixtures::{
    create_records, reference_files, simple_record, Env as Base, EDGE_MOTO_ENV,
    MANAGED_BY_TAG as MANAGED_BY, OWNER_TAG as OWNER, RELEASED_TAG as RELEASED,
};

const ZONE: &str = "example.com";

/// The shared setup ([`Base`]) and the last report of every spec: its resources are the ledger
/// a deletion works from.
struct Env {
    base: Base,
    reports: BTreeMap<String, Report>,
}

impl std::ops::Deref for Env {
    type Target = Base;
    fn deref(&self) -> &Base {
        &self.base
    }
}

impl std::ops::DerefMut for Env {
    fn deref_mut(&mut self) -> &mut Base {
        &mut self.base
    }
}

/// The reference architecture with `edit` applied to its files, converged.
async fn setup(edit: impl Fn(&str, String) -> String) -> Env {
    let files = |net: &_| {
        reference_files(net)
            .into_iter()
            .map(|(f, t)| {
                let t = edit(&f, t);
                (f, t)
            })
            .collect()
    };
    let (base, reports) = Base::converged(EDGE_MOTO_ENV, files, 12).await;
    Env {
        base,
        reports: reports
            .into_iter()
            .map(|(k, r)| (k.to_string(), r))
            .collect(),
    }
}

fn released_only(tags: &BTreeMap<String, String>, owner: &str) -> bool {
    tags.get(RELEASED).map(String::as_str) == Some(owner)
        && !tags.contains_key(MANAGED_BY)
        && !tags.contains_key(OWNER)
}

impl Env {
    fn ledger(&self, key: &str, kind: &str) -> Vec<String> {
        self.reports[key]
            .resources
            .iter()
            .filter(|r| r.resource_type == kind)
            .map(|r| r.id.clone())
            .collect()
    }

    /// Remove `key` from the store and run its deletion until it reports Deleted (or `rounds`
    /// attempts); returns the last in-progress report, if any.
    async fn delete(&mut self, key: &str, rounds: usize) -> Option<Report> {
        let k = ecs_operator::spec::SpecKey::parse(key).unwrap();
        let last = self.fleet.specs.remove(&k);
        let mut previous = SpecStatus::pending(&k);
        previous.resources = self.reports[key].resources.clone();
        let input = ReconcileInput::fresh(Arc::new(self.fleet.specs.clone()));
        let mut report = None;
        for _ in 0..rounds {
            match self
                .fleet
                .reconciler
                .delete(&k, last.clone(), &previous, &input)
                .await
                .unwrap_or_else(|e| panic!("deletion of {key} failed: {e}"))
            {
                Deletion::Deleted => return None,
                Deletion::InProgress(r) => {
                    assert_eq!(r.phase, Phase::Deleting);
                    report = Some(r);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        report
    }

    async fn records(&self) -> Vec<ResourceRecordSet> {
        self.r53
            .list_resource_record_sets()
            .hosted_zone_id(&self.net.zone_id)
            .send()
            .await
            .unwrap()
            .resource_record_sets()
            .to_vec()
    }

    /// `name TYPE` of every record of the zone (names without the trailing dot).
    async fn record_names(&self) -> BTreeSet<String> {
        self.records()
            .await
            .iter()
            .map(|r| format!("{} {}", r.name().trim_end_matches('.'), r.r#type().as_str()))
            .collect()
    }

    async fn txt(&self, name: &str) -> Vec<String> {
        self.records()
            .await
            .iter()
            .filter(|r| r.name().trim_end_matches('.') == name && r.r#type() == &RrType::Txt)
            .flat_map(|r| r.resource_records().iter().map(|v| v.value().to_string()))
            .collect()
    }

    /// The names of every target group.
    async fn target_group_names(&self) -> BTreeSet<String> {
        self.target_group_arns().await.into_keys().collect()
    }

    async fn lb_arn(&self) -> Option<String> {
        match self
            .elb
            .describe_load_balancers()
            .names("prod-public")
            .send()
            .await
        {
            Ok(o) => o
                .load_balancers()
                .first()
                .and_then(|l| l.load_balancer_arn())
                .map(str::to_string),
            Err(_) => None,
        }
    }

    async fn rule_arns(&self) -> BTreeSet<String> {
        let lb = self.lb_arn().await.expect("the load balancer");
        let mut out = BTreeSet::new();
        for l in self
            .elb
            .describe_listeners()
            .load_balancer_arn(&lb)
            .send()
            .await
            .unwrap()
            .listeners()
        {
            for r in self
                .elb
                .describe_rules()
                .listener_arn(l.listener_arn().unwrap())
                .send()
                .await
                .unwrap()
                .rules()
            {
                if r.is_default() != Some(true) {
                    out.insert(r.rule_arn().unwrap().to_string());
                }
            }
        }
        out
    }

    async fn certificate_exists(&self, arn: &str) -> bool {
        self.acm
            .describe_certificate()
            .certificate_arn(arn)
            .send()
            .await
            .is_ok()
    }

    async fn service_status(&self, name: &str) -> Option<String> {
        self.ecs
            .describe_services()
            .cluster("prod")
            .services(name)
            .send()
            .await
            .ok()?
            .services()
            .first()
            .and_then(|s| s.status())
            .map(str::to_string)
    }

    /// Things the operator never owned: an A record and a TXT record at their own names, and
    /// a target group in the VPC.
    async fn foreign(&self) {
        let name = format!("foreign.{ZONE}.");
        create_records(
            &self.r53,
            &self.net.zone_id,
            [
                simple_record(&name, RrType::A, 60, "192.0.2.10"),
                simple_record(&name, RrType::Txt, 60, "\"v=spf1 -all\""),
            ],
        )
        .await;
        self.elb
            .create_target_group()
            .name("foreign-tg")
            .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
            .port(8080)
            .vpc_id(&self.net.vpc)
            .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Ip)
            .send()
            .await
            .unwrap();
    }

    async fn assert_foreign_intact(&self) {
        let names = self.record_names().await;
        assert!(names.contains("foreign.example.com A"), "{names:?}");
        assert_eq!(
            self.txt("foreign.example.com").await,
            vec!["\"v=spf1 -all\"".to_string()]
        );
        assert!(self.target_group_names().await.contains("foreign-tg"));
    }
}

#[tokio::test]
async fn a_removed_service_spec_takes_its_edge_with_it_and_leaves_the_rest_ready() {
    let mut env = setup(|_, t| t).await;
    env.foreign().await;
    let admin = "ServiceSpec/admin";
    let rule = env.ledger(admin, "elbv2:listener-rule");
    let tg = env.ledger(admin, "elbv2:targetgroup");
    let cert = env.ledger(admin, "acm:certificate");
    let sni = env.ledger(admin, "elbv2:listener-certificate");
    assert_eq!(
        (rule.len(), tg.len(), cert.len(), sni.len()),
        (1, 1, 1, 1),
        "{:?}",
        env.reports[admin]
    );
    let cluster_cert = env.ledger("ClusterSpec/prod", "acm:certificate")[0].clone();
    let web_rules: BTreeSet<String> = env
        .rule_arns()
        .await
        .into_iter()
        .filter(|r| *r != rule[0])
        .collect();
    assert_eq!(web_rules.len(), 1);

    assert!(env.delete(admin, 30).await.is_none(), "admin is deleted");

    let names = env.record_names().await;
    assert!(!names.contains("admin.example.com A"), "{names:?}");
    assert!(!names.contains("admin.example.com TXT"), "{names:?}");
    for n in [
        "example.com A",
        "example.com TXT",
        "www.example.com A",
        "www.example.com TXT",
    ] {
        assert!(names.contains(n), "web's {n} stays: {names:?}");
    }
    assert_eq!(
        env.rule_arns().await,
        web_rules,
        "only admin's rule is gone"
    );
    let tgs = env.target_group_names().await;
    assert!(!tgs.iter().any(|t| t.contains("admin")), "{tgs:?}");
    assert!(
        !env.certificate_exists(&cert[0]).await,
        "admin's certificate"
    );
    assert!(env.certificate_exists(&cluster_cert).await);
    let (listener, sni_cert) = sni[0].split_once('|').unwrap();
    let attached = env
        .elb
        .describe_listener_certificates()
        .listener_arn(listener)
        .send()
        .await
        .unwrap();
    assert!(!attached
        .certificates()
        .iter()
        .any(|c| c.certificate_arn() == Some(sni_cert)));
    assert_eq!(
        env.service_status("admin").await.as_deref(),
        Some("INACTIVE")
    );
    let active = env
        .ecs
        .list_task_definitions()
        .family_prefix("admin")
        .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
        .send()
        .await
        .unwrap();
    assert!(active.task_definition_arns().is_empty());
    env.assert_foreign_intact().await;

    // The other service and the cluster: Ready, and nothing to change.
    let before = env.fleet.calls.snapshot();
    for key in ["ClusterSpec/prod", "ServiceSpec/web"] {
        let r = env.fleet.reconcile(key).await.unwrap();
        assert_eq!(r.phase, Phase::Ready, "{key}: {r:?}");
    }
    assert!(
        env.fleet.mutations_since(&before).is_empty(),
        "{:?}",
        env.fleet.mutations_since(&before)
    );

    // web's repository holds an image: it is kept (and released); the rest of web goes.
    let repo = env.ledger("ServiceSpec/web", "ecr:repository")[0].clone();
    env.ecr
        .put_image()
        .repository_name("trust-estate-server")
        .image_tag("prod-1")
        .image_manifest(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},"layers":[]}"#)
        .send()
        .await
        .unwrap();
    assert!(env.delete("ServiceSpec/web", 30).await.is_none());
    let tags = env.ecr_tags(&repo).await;
    assert!(released_only(&tags, "ServiceSpec/web"), "{tags:?}");
    let names = env.record_names().await;
    assert!(
        !names.iter().any(|n| [
            "example.com A",
            "example.com TXT",
            "www.example.com A",
            "www.example.com TXT"
        ]
        .contains(&n.as_str())),
        "{names:?}"
    );
    assert!(env.rule_arns().await.is_empty());
    assert_eq!(env.service_status("web").await.as_deref(), Some("INACTIVE"));
    env.assert_foreign_intact().await;
    let r = env.fleet.reconcile("ClusterSpec/prod").await.unwrap();
    assert_eq!(r.phase, Phase::Ready, "{r:?}");
}

#[tokio::test]
async fn a_retained_service_spec_leaves_everything_in_place_released() {
    let mut env = setup(|f, t| {
        if f == "service-web.yaml" {
            t + "  deletionPolicy: Retain\n"
        } else {
            t
        }
    })
    .await;
    env.foreign().await;
    let web = "ServiceSpec/web";
    let rule = env.ledger(web, "elbv2:listener-rule")[0].clone();
    let tg = env.ledger(web, "elbv2:targetgroup")[0].clone();
    let repo = env.ledger(web, "ecr:repository")[0].clone();
    let rules_before = env.rule_arns().await;

    assert!(env.delete(web, 10).await.is_none());

    assert_eq!(env.rule_arns().await, rules_before, "no rule deleted");
    assert!(released_only(&env.elb_tags(&rule).await, web));
    assert!(released_only(&env.elb_tags(&tg).await, web));
    let tags = env.ecr_tags(&repo).await;
    assert!(released_only(&tags, web), "{tags:?}");
    assert_eq!(env.service_status("web").await.as_deref(), Some("ACTIVE"));
    let names = env.record_names().await;
    for n in ["example.com A", "www.example.com A"] {
        assert!(names.contains(n), "{names:?}");
    }
    for host in ["example.com", "www.example.com"] {
        assert_eq!(
            env.txt(host).await,
            vec![
                "\"heritage=ecs-operator,ecs-operator/released-from=ServiceSpec/web,instance=ecs-operator\""
                    .to_string()
            ]
        );
    }
    env.assert_foreign_intact().await;
    // admin and the cluster are untouched.
    for key in ["ClusterSpec/prod", "ServiceSpec/admin"] {
        let r = env.fleet.reconcile(key).await.unwrap();
        assert_eq!(r.phase, Phase::Ready, "{key}: {r:?}");
    }
}

#[tokio::test]
async fn a_deleted_cluster_spec_goes_away_entirely_once_protection_is_off() {
    let mut env = setup(|f, t| {
        if f == "cluster-prod.yaml" {
            t.replace("deletionPolicy: Retain", "deletionPolicy: Delete")
        } else {
            t
        }
    })
    .await;
    env.foreign().await;
    let prod = "ClusterSpec/prod";
    let cert = env.ledger(prod, "acm:certificate")[0].clone();
    let listeners = env.ledger(prod, "elbv2:listener");
    assert_eq!(listeners.len(), 2, "{:?}", env.reports[prod].resources);

    // Still named by services: kept.
    let r = env.delete(prod, 1).await.expect("kept while referenced");
    assert!(
        format!("{r:?}").contains("still name this cluster"),
        "{r:?}"
    );
    // Put it back in the fleet's store for the next attempt.
    let k = ecs_operator::spec::SpecKey::parse(prod).unwrap();
    let specs = ecs_operator_tests::fixtures::load_specs(env.dir.path());
    env.fleet.specs.insert(k.clone(), specs[&k].clone());

    assert!(env.delete("ServiceSpec/admin", 30).await.is_none());
    assert!(env.delete("ServiceSpec/web", 30).await.is_none());

    // Deletion protection is on (prod): reported, never turned off; the listeners stay too.
    let r = env.delete(prod, 2).await.expect("stopped by protection");
    assert!(
        r.conditions.iter().any(|c| c.reason == "DeletionProtected"),
        "{r:?}"
    );
    let lb = env.lb_arn().await.expect("the load balancer stays");
    let left = env
        .elb
        .describe_listeners()
        .load_balancer_arn(&lb)
        .send()
        .await
        .unwrap();
    assert_eq!(left.listeners().len(), 2);

    // A person turns protection off: the deletion goes through.
    env.elb
        .modify_load_balancer_attributes()
        .load_balancer_arn(&lb)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
                .key("deletion_protection.enabled")
                .value("false")
                .build(),
        )
        .send()
        .await
        .unwrap();
    env.fleet.specs.insert(k.clone(), specs[&k].clone());
    let left = env.delete(prod, 30).await;
    assert!(left.is_none(), "prod is deleted: {left:?}");
    assert!(env.lb_arn().await.is_none(), "the load balancer is gone");
    for l in &listeners {
        assert!(env
            .elb
            .describe_listeners()
            .listener_arns(l)
            .send()
            .await
            .map(|o| o.listeners().is_empty())
            .unwrap_or(true));
    }
    assert!(
        !env.certificate_exists(&cert).await,
        "the certificate is gone"
    );
    let c = env
        .ecs
        .describe_clusters()
        .clusters("prod")
        .send()
        .await
        .unwrap();
    assert!(
        c.clusters().iter().all(|c| c.status() == Some("INACTIVE")),
        "{c:?}"
    );
    env.assert_foreign_intact().await;
    // What stays: the ACM validation CNAMEs (no ownership marker; shared by every certificate
    // of a domain), and nothing else of ours.
    let names = env.record_names().await;
    let ours: Vec<&String> = names
        .iter()
        .filter(|n| {
            !n.ends_with(" CNAME")
                && !n.starts_with("foreign.")
                && !n.ends_with(" NS")
                && !n.ends_with(" SOA")
        })
        .collect();
    assert!(ours.is_empty(), "{names:?}");
}

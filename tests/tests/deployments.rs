//! Safe deployments against moto (issue 15): ECS-native Canary and Linear services (and
//! BlueGreen, switched to on a live service) converge with the deployment configuration, the
//! alternate target group and `loadBalancers[].advancedConfiguration`, the production rule
//! forwarding to both groups and the test rule matching the header; a second reconcile makes no
//! write; listener-rule weights moved by hand (as ECS moves them mid-deployment) make no write
//! either; a new image under Canary is exactly one UpdateService; Rolling <-> BlueGreen on the
//! live service keeps one service and leaves no orphaned target group or rule; removing the
//! spec removes both target groups and both rules.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ForwardActionConfig, Rule, TargetGroupTuple,
};
use ecs_operator::spec::SpecKey;
use ecs_operator::store::Phase;
use ecs_operator_tests::fixtures::{
    listeners, load_specs, reference_files, write_specs, Env, Network, SpecFile, EDGE_MOTO_ENV,
    MANAGED_BY_TAG, OWNER_TAG,
};

const WEB: &str = "ServiceSpec/web";
const ADMIN: &str = "ServiceSpec/admin";
const ROLE: &str = "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers";

/// `web` under `web_deployment` (a `deployment:` block, indented by 2) with a 5XX alarm, and
/// `admin` under Linear (10% steps every 6 minutes, no test traffic).
fn files(web_deployment: &str) -> impl Fn(&Network) -> Vec<SpecFile> {
    let web_deployment = web_deployment.to_string();
    move |net| {
        reference_files(net)
            .into_iter()
            .map(|(f, t)| {
                let t = match f.as_str() {
                    "service-web.yaml" => format!(
                        "{t}  alarms:\n    http5xxPercent: {{threshold: 1, periods: 3}}\n{web_deployment}"
                    ),
                    "service-admin.yaml" => format!(
                        "{t}  deployment:\n    strategy: Linear\n    linear: {{stepPercent: 10, stepBakeTimeMinutes: 6}}\n    infrastructureRoleArn: {ROLE}\n"
                    ),
                    _ => t,
                };
                (f, t)
            })
            .collect()
    }
}

fn canary() -> String {
    format!(
        "  deployment:\n    strategy: Canary\n    canary: {{percent: 5, bakeTimeMinutes: 10}}\n    bakeTimeMinutes: 15\n    testTraffic: {{header: x-test-traffic, value: \"1\"}}\n    infrastructureRoleArn: {ROLE}\n    rollbackOnAlarms: [http5xxPercent]\n    alarmNames: [existing-alarm]\n    hooks:\n      - {{stages: [PRE_PRODUCTION_TRAFFIC_SHIFT], pause: true}}\n"
    )
}

fn blue_green() -> String {
    format!(
        "  deployment:\n    strategy: BlueGreen\n    bakeTimeMinutes: 5\n    testTraffic: {{header: x-test-traffic, value: \"1\"}}\n    infrastructureRoleArn: {ROLE}\n"
    )
}

/// Reload the specs after rewriting `file`.
fn rewrite(env: &mut Env, file: &str, edit: impl Fn(String) -> String) {
    let path = env.dir.path().join(file);
    let text = edit(std::fs::read_to_string(&path).unwrap());
    write_specs(env.dir.path(), &[(file, text)]);
    env.fleet.specs = load_specs(env.dir.path());
}

/// The deployment block of `service-web.yaml` (its last block) replaced by `block`.
fn with_deployment(text: String, block: &str) -> String {
    let start = text.find("  deployment:").expect("a deployment block");
    format!("{}{block}", &text[..start])
}

/// Every rule of the HTTPS listener of `prod-public` but the default one, and its ARN.
async fn rules(env: &Env) -> (String, Vec<Rule>) {
    let https = listeners(&env.elb, "prod-public").await[&443]
        .listener_arn()
        .unwrap()
        .to_string();
    let rules = env
        .elb
        .describe_rules()
        .listener_arn(&https)
        .send()
        .await
        .unwrap()
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .cloned()
        .collect();
    (https, rules)
}

/// The rules of [`rules`] that forward to the target group `tg_arn` (with any weight).
async fn rules_forwarding_to(env: &Env, tg_arn: &str) -> Vec<Rule> {
    let (_, all) = rules(env).await;
    all.into_iter()
        .filter(|r| forwards(r).contains_key(tg_arn))
        .collect()
}

/// The target groups a rule forwards to, with their weights.
fn forwards(r: &Rule) -> BTreeMap<String, Option<i32>> {
    let mut out = BTreeMap::new();
    for a in r.actions() {
        if let Some(t) = a.target_group_arn() {
            out.insert(t.to_string(), None);
        }
        if let Some(f) = a.forward_config() {
            for t in f.target_groups() {
                out.insert(t.target_group_arn().unwrap().to_string(), t.weight());
            }
        }
    }
    out
}

fn header(r: &Rule) -> Option<(String, Vec<String>)> {
    r.conditions()
        .iter()
        .find(|c| c.field() == Some("http-header"))
        .and_then(|c| c.http_header_config())
        .map(|h| {
            (
                h.http_header_name().unwrap_or_default().to_string(),
                h.values().to_vec(),
            )
        })
}

/// Set the weights of `rule`'s forward by hand, as ECS does while it shifts traffic.
async fn set_weights(env: &Env, rule: &str, weights: &[(&str, i32)]) {
    env.elb
        .modify_rule()
        .rule_arn(rule)
        .actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .forward_config(
                    ForwardActionConfig::builder()
                        .set_target_groups(Some(
                            weights
                                .iter()
                                .map(|(t, w)| {
                                    TargetGroupTuple::builder()
                                        .target_group_arn(*t)
                                        .weight(*w)
                                        .build()
                                })
                                .collect(),
                        ))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("ModifyRule answers");
}

/// `key` reconciled until Ready (at most 4 times).
async fn ready(env: &Env, key: &str) -> ecs_operator::reconcile::Report {
    let mut last = None;
    for _ in 0..4 {
        match env.fleet.reconcile(key).await {
            Ok(r) if r.phase == Phase::Ready => return r,
            other => last = Some(format!("{other:?}")),
        }
    }
    panic!("{key} is not Ready: {last:?}");
}

async fn service(env: &Env, name: &str) -> aws_sdk_ecs::types::Service {
    let out = env
        .ecs
        .describe_services()
        .cluster("prod")
        .services(name)
        .send()
        .await
        .unwrap();
    let active: Vec<_> = out
        .services()
        .iter()
        .filter(|s| s.status() != Some("INACTIVE"))
        .cloned()
        .collect();
    assert_eq!(active.len(), 1, "exactly one service {name}: {active:?}");
    active[0].clone()
}

fn ours(tags: &BTreeMap<String, String>, owner: &str) -> bool {
    tags.get(MANAGED_BY_TAG).map(String::as_str) == Some("ecs-operator")
        && tags.get(OWNER_TAG).map(String::as_str) == Some(owner)
}

/// Zero mutating calls across two reconciles of every spec.
async fn two_quiet_resyncs(env: &Env, after: &str) {
    let before = env.fleet.calls.snapshot();
    for _ in 0..2 {
        for (k, r) in env.fleet.reconcile_all().await {
            let r = r.unwrap_or_else(|e| panic!("{k} failed {after}: {e:?}"));
            assert_eq!(r.phase, Phase::Ready, "{k} {after}: {r:?}");
        }
    }
    let writes = env.fleet.mutations_since(&before);
    assert!(writes.is_empty(), "writes {after}: {writes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_and_linear_converge_never_fight_ecs_over_weights_and_switch_to_rolling_and_blue_green_and_back_out(
) {
    let (mut env, reports) = Env::converged(EDGE_MOTO_ENV, files(&canary()), 12).await;

    // Two target groups per service, both owned by it.
    let tgs = env.target_group_arns().await;
    for (name, owner) in [
        ("web", WEB),
        ("web-alt", WEB),
        ("admin", ADMIN),
        ("admin-alt", ADMIN),
    ] {
        let arn = tgs.get(name).unwrap_or_else(|| panic!("{name} in {tgs:?}"));
        assert!(ours(&env.elb_tags(arn).await, owner), "{name}");
    }
    let (web_tg, web_alt) = (tgs["web"].clone(), tgs["web-alt"].clone());

    // Rules: web's production rule forwards to both groups (all traffic on the primary), its
    // test rule comes before it, matches the header and sends its traffic to the alternate.
    let web_rules = rules_forwarding_to(&env, &web_tg).await;
    assert_eq!(web_rules.len(), 2, "{web_rules:?}");
    let production = web_rules.iter().find(|r| header(r).is_none()).unwrap();
    let test = web_rules.iter().find(|r| header(r).is_some()).unwrap();
    assert_eq!(production.priority(), Some("100"));
    assert_eq!(test.priority(), Some("99"));
    assert_eq!(
        forwards(production),
        BTreeMap::from([(web_tg.clone(), Some(100)), (web_alt.clone(), Some(0))])
    );
    assert_eq!(
        forwards(test),
        BTreeMap::from([(web_tg.clone(), Some(0)), (web_alt.clone(), Some(100))])
    );
    assert_eq!(
        header(test),
        Some(("x-test-traffic".to_string(), vec!["1".to_string()]))
    );
    for r in [production, test] {
        assert!(ours(&env.elb_tags(r.rule_arn().unwrap()).await, WEB));
    }
    let (production_arn, test_arn) = (
        production.rule_arn().unwrap().to_string(),
        test.rule_arn().unwrap().to_string(),
    );

    // The service: Canary with its bake times, the alarms with rollback, the pause hook, and
    // the load balancer's advanced configuration naming the alternate group and both rules.
    let web = service(&env, "web").await;
    let dc = web
        .deployment_configuration()
        .expect("a deployment configuration");
    assert_eq!(dc.strategy().map(|s| s.as_str()), Some("CANARY"));
    assert_eq!(dc.bake_time_in_minutes(), Some(15));
    let c = dc.canary_configuration().expect("canary configuration");
    assert_eq!(
        (c.canary_percent(), c.canary_bake_time_in_minutes()),
        (Some(5.0), Some(10))
    );
    let alarms = dc.alarms().expect("deployment alarms");
    assert!(alarms.enable() && alarms.rollback());
    assert_eq!(
        alarms.alarm_names().iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            &"existing-alarm".to_string(),
            &"prod-web-http5xxPercent".to_string()
        ])
    );
    let cb = dc.deployment_circuit_breaker().unwrap();
    assert!(
        !cb.enable() && !cb.rollback(),
        "no circuit breaker with Canary"
    );
    let hooks = dc.lifecycle_hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].target_type().map(|t| t.as_str()), Some("PAUSE"));
    assert_eq!(
        hooks[0]
            .lifecycle_stages()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["PRE_PRODUCTION_TRAFFIC_SHIFT"]
    );
    let lb = &web.load_balancers()[0];
    assert_eq!(lb.target_group_arn(), Some(web_tg.as_str()));
    let adv = lb.advanced_configuration().expect("advanced configuration");
    assert_eq!(adv.alternate_target_group_arn(), Some(web_alt.as_str()));
    assert_eq!(
        adv.production_listener_rule(),
        Some(production_arn.as_str())
    );
    assert_eq!(adv.test_listener_rule(), Some(test_arn.as_str()));
    assert_eq!(adv.role_arn(), Some(ROLE));

    // admin: Linear, no test rule.
    let admin = service(&env, "admin").await;
    let dc = admin.deployment_configuration().unwrap();
    assert_eq!(dc.strategy().map(|s| s.as_str()), Some("LINEAR"));
    let l = dc.linear_configuration().expect("linear configuration");
    assert_eq!(
        (l.step_percent(), l.step_bake_time_in_minutes()),
        (Some(10.0), Some(6))
    );
    assert_eq!(dc.bake_time_in_minutes(), Some(10), "the default bake time");
    let adv = admin.load_balancers()[0].advanced_configuration().unwrap();
    assert_eq!(
        adv.alternate_target_group_arn(),
        Some(tgs["admin-alt"].as_str())
    );
    assert!(adv.test_listener_rule().is_none());
    assert!(reports[&SpecKey::parse(ADMIN).unwrap()].phase == Phase::Ready);

    two_quiet_resyncs(&env, "after convergence").await;

    // ECS moves the weights mid-deployment; they are ECS's, so nothing is written back.
    set_weights(&env, &production_arn, &[(&web_tg, 10), (&web_alt, 90)]).await;
    set_weights(&env, &test_arn, &[(&web_tg, 100), (&web_alt, 0)]).await;
    two_quiet_resyncs(&env, "after the weights moved to 10/90").await;
    set_weights(&env, &production_arn, &[(&web_tg, 100), (&web_alt, 0)]).await;
    two_quiet_resyncs(&env, "after the weights moved to 100/0").await;
    let (_, all) = rules(&env).await;
    let p = all
        .iter()
        .find(|r| r.rule_arn() == Some(&production_arn))
        .unwrap();
    assert_eq!(
        forwards(p),
        BTreeMap::from([(web_tg.clone(), Some(100)), (web_alt.clone(), Some(0))]),
        "the weights ECS (here: the test) set are kept"
    );

    // A new image under Canary starts one deployment: one UpdateService.
    rewrite(&mut env, "service-web.yaml", |t| {
        t.replace(
            "trust-estate-server:prod-3f2a1c9",
            "trust-estate-server:prod-4e5f6a7",
        )
    });
    let before = env.fleet.calls.snapshot();
    let _ = env.fleet.reconcile(WEB).await.expect("the reconcile runs");
    let writes = env.fleet.mutations_since(&before);
    assert_eq!(writes.get("ecs/UpdateService"), Some(&1), "{writes:?}");
    assert_eq!(
        writes
            .keys()
            .filter(|k| k.starts_with("elasticloadbalancing"))
            .count(),
        0,
        "{writes:?}"
    );
    ready(&env, WEB).await;

    // Canary -> Rolling on the live service: the same service, the alternate group and the
    // test rule gone, the production rule back to one group.
    rewrite(&mut env, "service-web.yaml", |t| {
        with_deployment(t, "  deployment: {strategy: Rolling}\n")
    });
    ready(&env, WEB).await;
    let web = service(&env, "web").await;
    let dc = web.deployment_configuration().unwrap();
    assert_eq!(dc.strategy().map(|s| s.as_str()), Some("ROLLING"));
    assert!(dc.deployment_circuit_breaker().unwrap().enable());
    assert!(web.load_balancers()[0].advanced_configuration().is_none());
    let tgs = env.target_group_arns().await;
    assert!(!tgs.contains_key("web-alt"), "{tgs:?}");
    let web_rules = rules_forwarding_to(&env, &web_tg).await;
    assert_eq!(web_rules.len(), 1, "{web_rules:?}");
    assert_eq!(
        forwards(&web_rules[0]).keys().collect::<Vec<_>>(),
        [&web_tg]
    );
    assert_eq!(web_rules[0].rule_arn(), Some(production_arn.as_str()));
    two_quiet_resyncs(&env, "after the switch to Rolling").await;

    // Rolling -> BlueGreen: the alternate group and the test rule come back.
    rewrite(&mut env, "service-web.yaml", |t| {
        with_deployment(t, &blue_green())
    });
    ready(&env, WEB).await;
    let web = service(&env, "web").await;
    let dc = web.deployment_configuration().unwrap();
    assert_eq!(dc.strategy().map(|s| s.as_str()), Some("BLUE_GREEN"));
    assert_eq!(dc.bake_time_in_minutes(), Some(5));
    assert!(dc.alarms().is_none_or(|a| !a.enable()), "{dc:?}");
    let tgs = env.target_group_arns().await;
    let web_alt = tgs
        .get("web-alt")
        .expect("the alternate group again")
        .clone();
    let adv = web.load_balancers()[0].advanced_configuration().unwrap();
    assert_eq!(adv.alternate_target_group_arn(), Some(web_alt.as_str()));
    let web_rules = rules_forwarding_to(&env, &web_tg).await;
    assert_eq!(web_rules.len(), 2, "{web_rules:?}");
    let report = ready(&env, WEB).await;
    two_quiet_resyncs(&env, "after the switch to BlueGreen").await;

    // Removing the spec removes both groups and both rules, and leaves admin's alone.
    let key = SpecKey::parse(WEB).unwrap();
    let last = env.fleet.specs.remove(&key);
    env.fleet
        .delete_until_deleted(&key, last, &report.resources)
        .await;
    let tgs = env.target_group_arns().await;
    assert!(
        !tgs.contains_key("web") && !tgs.contains_key("web-alt"),
        "{tgs:?}"
    );
    assert!(
        tgs.contains_key("admin") && tgs.contains_key("admin-alt"),
        "{tgs:?}"
    );
    let (_, all) = rules(&env).await;
    assert!(
        all.iter()
            .all(|r| !forwards(r).contains_key(&web_tg) && !forwards(r).contains_key(&web_alt)),
        "{all:?}"
    );
    assert_eq!(all.len(), 1, "admin's production rule only: {all:?}");
}

/// Calls of `operation` so far (every attempt the SDK made).
fn calls_of(env: &Env, operation: &str) -> u64 {
    env.fleet
        .calls
        .snapshot()
        .iter()
        .filter(|(l, _)| l.operation == operation)
        .map(|(_, n)| *n)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_canary_rollout_is_progressing_and_an_endpoint_without_service_deployments_is_asked_once(
) {
    // moto holds a service created above MOTO_ECS_SERVICE_RUNNING in progress for good, and
    // answers ListServiceDeployments with an HTML 500 (it does not implement it).
    let env = Env::new(
        &[
            ("MOTO_ACM_VALIDATION_WAIT", "0"),
            ("MOTO_ECS_SERVICE_RUNNING", "1"),
        ],
        |net| {
            files(&canary())(net)
                .into_iter()
                .filter(|(f, _)| f != "service-admin.yaml")
                .collect()
        },
    )
    .await;
    for _ in 0..4 {
        if matches!(env.fleet.reconcile("ClusterSpec/prod").await, Ok(r) if r.phase == Phase::Ready)
        {
            break;
        }
    }
    let mut reports = Vec::new();
    for _ in 0..5 {
        reports.push(env.fleet.reconcile(WEB).await.expect("the reconcile runs"));
    }
    let asked = calls_of(&env, "ListServiceDeployments");
    assert!(
        asked > 0,
        "the rollout was looked at through ListServiceDeployments"
    );
    for _ in 0..3 {
        let r = env.fleet.reconcile(WEB).await.expect("the reconcile runs");
        assert_eq!(r.phase, Phase::Progressing, "{r:?}");
        let c = r
            .conditions
            .iter()
            .find(|c| c.condition_type == "RolloutComplete")
            .unwrap_or_else(|| panic!("{r:?}"));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "InProgress"),
            "{c:?}"
        );
        assert!(c.message.starts_with("rollout in progress"), "{c:?}");
    }
    assert_eq!(
        calls_of(&env, "ListServiceDeployments"),
        asked,
        "asked again after the endpoint said it does not offer it"
    );
    assert_eq!(calls_of(&env, "DescribeServiceDeployments"), 0);
    let last = reports.last().unwrap();
    assert_eq!(last.phase, Phase::Progressing, "{last:?}");
}

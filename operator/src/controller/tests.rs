//! The controller's pure parts: garbage-collection selection, status records, wave snapshots,
//! the mass-deletion guard.

use super::*;
use crate::reconcile::OwnedScan;
use crate::spec::Kind;
use crate::store::status::ResourceRef;

fn entry(generation: &str) -> DesiredEntry {
    DesiredEntry {
        key: SpecKey::new(Kind::ServiceSpec, "web"),
        generation: generation.into(),
        origin: "web.yaml document 1".into(),
        spec: Err("x".into()),
    }
}

fn report(phase: Phase, conds: Vec<ConditionReport>) -> Report {
    Report {
        phase,
        conditions: conds,
        resources: vec![],
        requeue_after: None,
    }
}

fn found(pairs: &[(&str, &str, &str)]) -> OwnedScan {
    let mut scan = OwnedScan::default();
    for (owner, t, id) in pairs {
        scan.owned
            .entry(SpecKey::parse(owner).unwrap())
            .or_default()
            .insert((t.to_string(), id.to_string()));
    }
    scan
}

#[test]
fn garbage_collection_takes_only_unlisted_resources_of_owners_not_in_the_store() {
    let web = SpecKey::new(Kind::ServiceSpec, "web");
    let old = SpecKey::new(Kind::ServiceSpec, "old");
    let broken = SpecKey::new(Kind::ServiceSpec, "broken");
    let mut desired = Desired::default();
    desired.entries.insert(web.clone(), entry("g1"));
    // An invalid document still names its spec: never collected.
    desired.entries.insert(
        broken.clone(),
        DesiredEntry {
            key: broken.clone(),
            ..entry("g2")
        },
    );
    let mut statuses = HashMap::new();
    let mut old_status = SpecStatus::pending(&old);
    old_status.resources = vec![ResourceRef {
        resource_type: "elbv2:targetgroup".into(),
        id: "tg-listed".into(),
    }];
    statuses.insert(old.clone(), old_status);
    let scan = found(&[
        ("ServiceSpec/web", "elbv2:targetgroup", "tg-web"),
        ("ServiceSpec/broken", "elbv2:targetgroup", "tg-broken"),
        ("ServiceSpec/old", "elbv2:targetgroup", "tg-listed"),
        ("ServiceSpec/old", "ecs:service", "svc-old"),
        ("ServiceSpec/gone", "acm:certificate", "cert-gone"),
    ]);
    let out = leaked(&desired, &statuses, &scan).unwrap();
    let got: Vec<(String, Vec<String>)> = out
        .iter()
        .map(|(k, r)| (k.to_string(), r.iter().map(|r| r.id.clone()).collect()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "ServiceSpec/gone".to_string(),
                vec!["cert-gone".to_string()]
            ),
            ("ServiceSpec/old".to_string(), vec!["svc-old".to_string()]),
        ]
    );
    // Everything listed already: nothing to add.
    let scan = found(&[("ServiceSpec/old", "elbv2:targetgroup", "tg-listed")]);
    assert!(leaked(&desired, &statuses, &scan).unwrap().is_empty());
}

#[test]
fn garbage_collection_waits_while_a_store_document_names_no_spec() {
    let mut desired = Desired::default();
    desired
        .unattributed
        .push("specs.yaml: invalid YAML at line 3".into());
    let scan = found(&[("ServiceSpec/gone", "acm:certificate", "cert-gone")]);
    let err = leaked(&desired, &HashMap::new(), &scan).unwrap_err();
    assert!(err.contains("specs.yaml: invalid YAML"), "{err}");
}

#[test]
fn a_condition_keeps_its_transition_time_while_its_status_holds() {
    let key = SpecKey::new(Kind::ServiceSpec, "web");
    let c = |s| vec![ConditionReport::new("Rollout", s, "R", "m")];
    let first = next_status(
        &key,
        None,
        &entry("g1"),
        &report(Phase::Progressing, c(false)),
        None,
        "T1",
    );
    let second = next_status(
        &key,
        Some(&first),
        &entry("g1"),
        &report(Phase::Progressing, c(false)),
        None,
        "T2",
    );
    let rollout = |s: &SpecStatus| {
        s.conditions
            .iter()
            .find(|c| c.condition_type == "Rollout")
            .unwrap()
            .clone()
    };
    assert_eq!(rollout(&second).last_transition_time, "T1");
    let third = next_status(
        &key,
        Some(&second),
        &entry("g1"),
        &report(Phase::Ready, c(true)),
        None,
        "T3",
    );
    assert_eq!(rollout(&third).last_transition_time, "T3");
    let ready = third
        .conditions
        .iter()
        .find(|c| c.condition_type == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.last_transition_time.as_str()),
        ("True", "T3")
    );
    assert_eq!(third.observed_generation.as_deref(), Some("g1"));
}

#[test]
fn the_reconciles_of_one_wave_share_its_snapshot_and_others_read_fresh() {
    let waves = WaveSnapshots::default();
    assert!(waves.snapshot(None).is_none());
    let one = waves.snapshot(Some(1)).unwrap();
    assert!(Arc::ptr_eq(&one, &waves.snapshot(Some(1)).unwrap()));
    let two = waves.snapshot(Some(2)).unwrap();
    assert_eq!(two.wave(), 2);
    assert!(!Arc::ptr_eq(&one, &two));
    // A straggler of a wave that is over reads fresh.
    assert!(waves.snapshot(Some(1)).is_none());
    assert!(Arc::ptr_eq(&two, &waves.snapshot(Some(2)).unwrap()));
}

#[test]
fn the_guard_trips_on_more_than_a_fifth_and_more_than_two_specs() {
    let g = DeletionGuard::default();
    assert!(!g.trips(2, 4), "two specs are never a mass deletion");
    assert!(!g.trips(3, 20), "3 of 20 is 15%");
    assert!(g.trips(3, 10));
    assert!(g.trips(5, 5));
    assert!(!DeletionGuard {
        disabled: true,
        ..g
    }
    .trips(5, 5));
}

#[test]
fn records_that_differ_only_in_update_time_are_the_same() {
    let key = SpecKey::new(Kind::ServiceSpec, "web");
    let a = next_status(
        &key,
        None,
        &entry("g1"),
        &report(Phase::Ready, vec![]),
        None,
        "T1",
    );
    let b = next_status(
        &key,
        Some(&a),
        &entry("g1"),
        &report(Phase::Ready, vec![]),
        None,
        "T2",
    );
    assert!(same_status(&a, &b));
    let c = next_status(
        &key,
        Some(&a),
        &entry("g2"),
        &report(Phase::Ready, vec![]),
        None,
        "T2",
    );
    assert!(!same_status(&a, &c), "a new generation must be written");
}

fn cluster_entry(name: &str, account: Option<&str>) -> DesiredEntry {
    let account = account.map_or(String::new(), |id| {
        format!("\n  account: {{id: '{id}', roleArn: 'arn:aws:iam::{id}:role/t'}}")
    });
    let text = format!(
        "apiVersion: ecs-operator.io/v1alpha1\nkind: ClusterSpec\nmetadata: {{name: {name}}}\nspec:\n  region: eu-west-1{account}\n"
    );
    let spec = crate::spec::parse_file("c.yaml", text.as_bytes())
        .documents
        .remove(0)
        .result
        .expect("a valid spec");
    DesiredEntry {
        key: spec.key(),
        generation: "g".into(),
        origin: "c.yaml".into(),
        spec: Ok(Arc::new(spec)),
    }
}

#[test]
fn the_mass_deletion_guard_counts_per_account_and_region() {
    let mut old = Desired::default();
    let mut small = std::collections::BTreeSet::new();
    let mut big = std::collections::BTreeSet::new();
    for i in 0..3 {
        let e = cluster_entry(&format!("a{i}"), Some("210987654321"));
        small.insert(e.key.clone());
        old.entries.insert(e.key.clone(), e);
    }
    for i in 0..20 {
        let e = cluster_entry(&format!("own{i}"), None);
        if i < 3 {
            big.insert(e.key.clone());
        }
        old.entries.insert(e.key.clone(), e);
    }
    let g = DeletionGuard::default();
    // 3 of 23 specs is 13%, below the fraction; but it is every spec of that account.
    assert!(!g.trips(3, 23));
    let mut held = g.held_per_scope(&old, &small);
    held.sort();
    assert_eq!(held, small.iter().cloned().collect::<Vec<_>>());
    // 3 of the 20 specs of the operator's own account and region: 15%, not held.
    assert!(g.held_per_scope(&old, &big).is_empty());
}

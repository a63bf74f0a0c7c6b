//! `validate` and `schema` as users run them: the binary, its output and its exit codes.

use ecs_operator_tests::{bin, workspace_root};

#[test]
fn validate_accepts_every_example_manifest() {
    let out = bin(&["validate", "manifests/examples/"], &workspace_root(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("3 documents in 3 files are valid"),
        "{out:?}"
    );
}

#[test]
fn the_canary_example_validates_beside_the_prod_cluster_it_deploys_to() {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root();
    std::fs::copy(
        root.join("manifests/examples/cluster-prod.yaml"),
        dir.path().join("cluster-prod.yaml"),
    )
    .unwrap();
    std::fs::copy(
        root.join("manifests/examples-canary/service-checkout.yaml"),
        dir.path().join("service-checkout.yaml"),
    )
    .unwrap();
    let out = bin(&["validate", "."], dir.path(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("2 documents in 2 files are valid"),
        "{out:?}"
    );
    let text =
        std::fs::read_to_string(root.join("manifests/examples-canary/service-checkout.yaml"))
            .unwrap();
    for field in [
        "strategy: Canary",
        "testTraffic:",
        "rollbackOnAlarms:",
        "pause: true",
    ] {
        assert!(text.contains(field), "the example shows {field}");
    }
}

#[test]
fn validate_reports_all_three_mistakes_of_a_file_with_file_path_and_line_column_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: ecs-operator.io/v1alpha1\n\
         kind: ServiceSpec\n\
         metadata: {name: api}\n\
         spec:\n\
         \x20 cluster: prod\n\
         \x20 desiredCount: two\n\
         \x20 container:\n\
         \x20   name: app\n\
         \x20   image: nginx:1\n\
         \x20   port: 70000\n\
         \x20   cpu: 256\n\
         \x20   memory: 512\n\
         \x20 network: {subnets: [subnet-a]}\n\
         \x20 ingres:\n\
         \x20   hosts: [a.example.com]\n",
    )
    .unwrap();
    let out = bin(&["validate", "bad.yaml"], dir.path(), &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("bad.yaml:"))
        .collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[0].starts_with("bad.yaml:6:3: document 0: spec.desiredCount: "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("bad.yaml:10:5: document 0: spec.container.port: "),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("65535"), "{}", lines[1]);
    assert_eq!(
        lines[2],
        "bad.yaml:14:3: document 0: spec.ingres: unknown field `ingres`"
    );
}

#[test]
fn a_bad_name_a_wrong_type_and_an_unknown_field_are_all_reported_in_one_run() {
    // The name check is semantic (a DNS label), the other two structural: the name must not
    // wait for the type to be fixed. `--json` carries the same places as the lines.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: ecs-operator.io/v1alpha1\n\
         kind: ServiceSpec\n\
         metadata: {name: Bad_Name}\n\
         spec:\n\
         \x20 cluster: prod\n\
         \x20 desiredCount: two\n\
         \x20 container: {name: app, image: nginx:1, cpu: 256, memory: 512}\n\
         \x20 network: {subnets: [subnet-a]}\n\
         \x20 colour: blue\n",
    )
    .unwrap();
    let out = bin(&["validate", "bad.yaml"], dir.path(), &[]);
    assert_eq!(out.code, 1, "{out:?}");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("bad.yaml:"))
        .collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert!(
        lines[0]
            .starts_with("bad.yaml:3:12: document 0: metadata.name: `Bad_Name` is not a DNS label"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "bad.yaml:6:3: document 0: spec.desiredCount: \"two\" is not of type \"integer\""
    );
    assert_eq!(
        lines[2],
        "bad.yaml:9:3: document 0: spec.colour: unknown field `colour`"
    );
    assert!(out.stderr.contains("3 errors in 1 of 1 files"), "{out:?}");
    let json = bin(&["validate", "--json", "bad.yaml"], dir.path(), &[]);
    assert_eq!(json.code, 1, "{json:?}");
    let errors: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let places: Vec<(String, u64, String, u64, u64)> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_string(),
                e["document"].as_u64().unwrap(),
                e["path"].as_str().unwrap().to_string(),
                e["line"].as_u64().unwrap(),
                e["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        places,
        [
            ("bad.yaml".into(), 0, "metadata.name".into(), 3, 12),
            ("bad.yaml".into(), 0, "spec.desiredCount".into(), 6, 3),
            ("bad.yaml".into(), 0, "spec.colour".into(), 9, 3),
        ]
    );
}

#[test]
fn validate_reports_errors_of_every_file_and_document_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let base =
        std::fs::read_to_string(workspace_root().join("manifests/examples/service-admin.yaml"))
            .unwrap();
    // Two broken documents in one file, one broken file beside a good one.
    std::fs::write(
        dir.path().join("a.yaml"),
        format!(
            "{}\n---\n{}",
            base.replace("name: admin\n", "name: Admin\n"),
            base.replace("port: 80", "port: 0")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.json"),
        "{\"apiVersion\": \"ecs-operator.io/v1alpha1\", \"kind\": \"Nope\"}",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        base.replace("name: admin\n", "name: admin2\n"),
    )
    .unwrap();
    let out = bin(&["validate", "."], dir.path(), &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("a.yaml:") && out.stderr.contains("document 0: metadata.name"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("document 1: spec.container.port"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("b.json:1:") && out.stderr.contains("unknown kind `Nope`"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("good.yaml"), "{out:?}");
}

#[test]
fn validate_cross_checks_services_against_their_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let root = workspace_root().join("manifests/examples");
    std::fs::copy(
        root.join("cluster-prod.yaml"),
        dir.path().join("cluster.yaml"),
    )
    .unwrap();
    let svc = std::fs::read_to_string(root.join("service-web.yaml"))
        .unwrap()
        .replace("loadBalancer: prod-public", "loadBalancer: elsewhere")
        .replace(
            "capacityProvider: prod-ec2, weight: 1}]",
            "capacityProvider: other-ec2, weight: 1}]",
        );
    std::fs::write(dir.path().join("svc.yaml"), svc).unwrap();
    let out = bin(&["validate", "."], dir.path(), &[]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(
            "spec.ingress.loadBalancer: `elsewhere` is not a load balancer of cluster `prod`"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("`other-ec2` is not a capacity provider of cluster `prod`"),
        "{out:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let out = bin(&["sync"], &workspace_root(), &[]);
    assert_eq!(out.code, 2, "{out:?}");
    let out = bin(&["status", "--store", "ftp://x"], &workspace_root(), &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("expected file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE"),
        "{out:?}"
    );
}

#[test]
fn checked_in_schemas_match_the_rust_types() {
    let crds = workspace_root().join("crds");
    for (name, content) in ecs_operator::cli::schema::files() {
        let on_disk = std::fs::read_to_string(crds.join(&name)).unwrap_or_default();
        assert!(
            on_disk == content,
            "crds/{name} is stale: run `cargo run -p ecs-operator -- schema --write crds/` and commit"
        );
    }
}

#[test]
fn schema_prints_both_kinds_and_one_kind_on_request() {
    let out = bin(&["schema"], &workspace_root(), &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let all: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let titles: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["ClusterSpec", "ServiceSpec"]);
    let one = bin(&["schema", "--kind", "ServiceSpec"], &workspace_root(), &[]);
    let v: serde_json::Value = serde_json::from_str(&one.stdout).unwrap();
    assert_eq!(v["title"], "ServiceSpec");
}

#[test]
fn every_example_names_its_schema_for_editors() {
    for entry in std::fs::read_dir(workspace_root().join("manifests/examples")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let line = text.lines().next().unwrap_or_default();
        let schema = line
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{}: no $schema line", path.display()));
        assert!(
            path.parent().unwrap().join(schema).exists(),
            "{}: {schema} does not exist",
            path.display()
        );
        let kind = if text.contains("kind: ClusterSpec") {
            "clusterspec"
        } else {
            "servicespec"
        };
        assert!(
            schema.ends_with(&format!("{kind}.schema.json")),
            "{}: wrong schema {schema}",
            path.display()
        );
    }
}

//! The end-to-end suites, one module per file, built as one test binary (`tests/Cargo.toml`
//! says why). Select one suite with `scripts/test -E 'test(/^edge::/)'`.

mod accounts;
mod alarms;
mod api_model;
mod bucket_proxy;
mod cli_validate;
mod dashboard;
mod deployments;
mod docs;
mod ecs;
mod edge;
mod events;
mod gc;
mod healthcheck;
mod leader;
mod lifecycle;
mod lifecycle_edge;
mod manifests;
mod observe_cache;
mod reliability;
mod render;
mod rollout;
mod run;
mod store_dynamodb;
mod store_s3;
mod ui;
mod verify;
mod watch;

/// `autotests = false` means a suite file without a `mod` line above would never be built and its
/// tests would be skipped in silence: every `tests/tests/*.rs` file must be listed here.
#[test]
fn every_suite_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let listed = include_str!("main.rs");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests/tests is readable") {
        let name = entry
            .expect("a directory entry")
            .file_name()
            .into_string()
            .expect("utf-8");
        if let Some(suite) = name.strip_suffix(".rs").filter(|s| *s != "main") {
            if !listed.lines().any(|l| l == format!("mod {suite};")) {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "suite files with no `mod` line in tests/tests/main.rs: {missing:?}"
    );
}

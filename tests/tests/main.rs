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

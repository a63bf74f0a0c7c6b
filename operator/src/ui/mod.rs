//! `run --ui`: a read-only web page of every spec, served beside `/metrics`.
//!
//! - `/`: every spec with kind, name, phase, generation vs observed generation, age and last
//!   error;
//! - `/specs/<Kind>/<name>`: its resources (with links to the AWS console), conditions with
//!   their transition times, the rollout the status reports, and its recent reconciles.
//!
//! Layout: [`view`] builds plain data from the controller's state, [`render`] turns it into
//! HTML (both pure); [`recent`] keeps the bounded ring of reconcile outcomes; [`console`] maps
//! resources to console URLs; [`html`] has the one escaping function. This module only gathers
//! the inputs and answers HTTP. Every route is a GET: nothing here writes to AWS or the store.

pub mod console;
pub mod html;
pub mod recent;
pub mod render;
pub mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use time::OffsetDateTime;

use crate::controller::Controller;
use crate::metrics::Health;
use crate::runtime::{Action, Failure};
use crate::spec::{Kind, SpecKey};
use recent::{Outcome, Recent};

/// Seconds between the page's automatic reloads.
pub const REFRESH_SECONDS: u32 = 5;

/// What the page reads: the controller (desired cache and status records), the process's
/// health, the recent outcomes, and when each spec was first listed.
pub struct Ui {
    controller: Arc<Controller>,
    health: Arc<Health>,
    recent: Recent,
    first_seen: Mutex<HashMap<SpecKey, OffsetDateTime>>,
    store: String,
    instance: String,
    /// The operator's AWS region, for console links of resources whose id names none.
    region: String,
}

impl Ui {
    pub fn new(
        controller: Arc<Controller>,
        health: Arc<Health>,
        store: String,
        instance: String,
        region: String,
    ) -> Arc<Ui> {
        Arc::new(Ui {
            controller,
            health,
            recent: Recent::default(),
            first_seen: Mutex::new(HashMap::new()),
            store,
            instance,
            region,
        })
    }

    /// After every listing the controller took in: note new specs, forget those that are gone
    /// from the store and from the status records.
    pub fn listed(&self) {
        let known = self.known_keys();
        let now = OffsetDateTime::now_utc();
        let mut seen = self.first_seen.lock().expect("first-seen lock");
        seen.retain(|k, _| known.contains(k));
        for k in &known {
            seen.entry(k.clone()).or_insert(now);
        }
        drop(seen);
        self.recent.retain(&known);
    }

    /// Record how one reconcile of `key` ended (called by the runtime's reconcile function).
    pub fn reconciled(&self, key: &SpecKey, result: &Result<Action, Failure>, took: Duration) {
        let phase = self.controller.status(key).map(|s| s.phase);
        let at = crate::store::now_rfc3339();
        self.recent
            .record(key, Outcome::of(result, at, took, phase));
    }

    /// The specs in the store, plus those gone from it that still have a status record.
    fn known_keys(&self) -> BTreeSet<SpecKey> {
        let desired = self.controller.desired();
        let mut keys: BTreeSet<SpecKey> = desired.entries.keys().cloned().collect();
        keys.extend(self.controller.orphaned_statuses());
        keys
    }

    fn header(&self) -> view::Header {
        view::Header {
            generated_at: crate::store::now_rfc3339(),
            store: self.store.clone(),
            instance: self.instance.clone(),
            leader: self.health.leader().as_str().to_string(),
            lease_holder: self.health.leader_holder(),
            store_listed: self.health.is_store_listed(),
            last_store_error: self.health.last_store_error(),
            refresh_seconds: REFRESH_SECONDS,
        }
    }

    fn row(&self, key: &SpecKey, now: OffsetDateTime) -> view::SpecRow {
        let desired = self.controller.desired();
        let status = self.controller.status(key);
        let seen = self
            .first_seen
            .lock()
            .expect("first-seen lock")
            .get(key)
            .copied();
        view::row(key, desired.entries.get(key), status.as_ref(), seen, now)
    }

    /// The list page's data.
    pub fn overview(&self) -> view::Overview {
        let now = OffsetDateTime::now_utc();
        view::Overview {
            header: self.header(),
            rows: self.known_keys().iter().map(|k| self.row(k, now)).collect(),
            unattributed: self.controller.desired().unattributed.clone(),
        }
    }

    /// A spec page's data, or `None` for a spec neither in the store nor in a status record.
    pub fn detail(&self, key: &SpecKey) -> Option<view::SpecDetail> {
        let desired = self.controller.desired();
        let entry = desired.entries.get(key);
        let status = self.controller.status(key);
        if entry.is_none() && status.is_none() {
            return None;
        }
        let row = self.row(key, OffsetDateTime::now_utc());
        Some(view::detail(
            self.header(),
            row,
            entry,
            status.as_ref(),
            self.recent.of(key),
            &self.region,
        ))
    }
}

/// The page's routes, all GET.
pub fn router(ui: Arc<Ui>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/specs/{kind}/{name}", get(spec))
        .with_state(ui)
}

/// HTML with headers that keep the page self-contained: the content security policy lets no
/// script run and nothing load from anywhere (inline CSS only), and the page is never cached.
fn html(status: StatusCode, body: String) -> impl IntoResponse {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}

async fn index(State(ui): State<Arc<Ui>>) -> impl IntoResponse {
    html(StatusCode::OK, render::overview(&ui.overview()))
}

async fn spec(
    State(ui): State<Arc<Ui>>,
    Path((kind, name)): Path<(String, String)>,
) -> impl IntoResponse {
    let detail = Kind::parse(&kind).and_then(|k| ui.detail(&SpecKey::new(k, name.clone())));
    match detail {
        Some(d) => html(StatusCode::OK, render::spec_page(&d)),
        None => html(
            StatusCode::NOT_FOUND,
            render::not_found(&ui.header(), &format!("{kind}/{name}")),
        ),
    }
}

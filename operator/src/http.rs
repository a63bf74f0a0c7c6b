//! The operator's HTTP endpoints (`--metrics-addr`):
//! - `/healthz`: 200 while the process serves requests (the ECS container health check);
//! - `/readyz`: 200 once the store has been read in full, else 503; the JSON body tells the
//!   details (leader or follower, who holds the lease, the last store error);
//! - `/metrics`: Prometheus text format.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// A bound server: its address (useful with port 0) and the future that serves it until
/// `shutdown` resolves.
pub struct Server {
    pub addr: SocketAddr,
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
}

impl Server {
    pub async fn bind(addr: &str, metrics: Arc<Metrics>) -> Result<Server, HttpError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        Ok(Server {
            addr,
            listener,
            metrics,
        })
    }

    /// Serve until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.metrics);
        if let Err(e) = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics server stopped");
        }
    }
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    let h = &m.health;
    let ready = h.is_store_listed();
    let body = serde_json::json!({
        "ready": ready,
        "storeListed": ready,
        "leader": h.leader().writes(),
        "leaderState": h.leader().as_str(),
        "leaseHolder": h.leader_holder(),
        "lastStoreError": h.last_store_error(),
        "specs": h.phases().len(),
        "deletionsHeld": h.deletions_held(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}

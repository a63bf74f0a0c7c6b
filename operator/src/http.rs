//! The operator's HTTP endpoints (`--metrics-addr`):
//! - `/healthz`: 200 while the process serves requests (the ECS container health check);
//! - `/readyz`: 200 once the store has been read in full, else 503; the JSON body tells the
//!   details (leader or follower, who holds the lease, the last store error);
//! - `/metrics`: Prometheus text format;
//! - with `run --ui`, `/` and `/specs/<Kind>/<name>`: the read-only web page ([`crate::ui`]);
//!   without it, `/` is 404.

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
    ui: Option<Arc<crate::ui::Ui>>,
}

impl Server {
    /// Bind `addr`; `ui`: also serve the web page.
    pub async fn bind(
        addr: &str,
        metrics: Arc<Metrics>,
        ui: Option<Arc<crate::ui::Ui>>,
    ) -> Result<Server, HttpError> {
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
            ui,
        })
    }

    /// Serve until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.metrics);
        if let Some(ui) = self.ui {
            app = app.merge(crate::ui::router(ui));
        }
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
        "eventsQueue": h.events_queue().map(|q| serde_json::json!({
            "url": q.url,
            "up": q.up,
            "error": q.error,
        })),
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn without_the_ui_the_root_and_spec_pages_are_404_and_metrics_still_served() {
        let metrics = Arc::new(Metrics::new(
            Default::default(),
            Default::default(),
            Default::default(),
        ));
        let server = Server::bind("127.0.0.1:0", metrics, None).await.unwrap();
        let addr = server.addr;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.await;
        }));
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, "/specs/ServiceSpec/web")
            .await
            .starts_with("HTTP/1.1 404"));
        let m = get(addr, "/metrics").await;
        assert!(
            m.starts_with("HTTP/1.1 200") && m.contains("ecs_operator_leader"),
            "{m}"
        );
        tx.send(()).unwrap();
        task.await.unwrap();
    }
}

//! Leadership for `run`: with a lease table, a [`runtime::leader::Elector`] on a DynamoDB lease;
//! without one, this replica is alone and always writes.

use std::sync::Arc;

use tokio::sync::watch;

use crate::aws::Sdk;
use crate::metrics::{Health, LeaderState};

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election on lease table `{table}`: {message}")]
    Setup { table: String, message: String },
}

/// This replica's view of leadership.
pub struct Leadership {
    rx: watch::Receiver<LeaderState>,
    stop: Option<Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>>,
}

impl Leadership {
    /// The current state.
    pub fn state(&self) -> LeaderState {
        *self.rx.borrow()
    }

    /// Resolves when the state changes (never, for a replica without a lease table).
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Stop taking part and release the lease if held.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop().await;
        }
    }
}

/// Start leader election (or not, without a table).
pub async fn start(
    _sdk: &Sdk,
    table: Option<&str>,
    _instance: &str,
    _identity: &str,
    health: Arc<Health>,
) -> Result<Leadership, LeaderError> {
    match table {
        None => {
            health.set_leader(LeaderState::Standalone, None);
            let (_tx, rx) = watch::channel(LeaderState::Standalone);
            Ok(Leadership { rx, stop: None })
        }
        Some(table) => Err(LeaderError::Setup {
            table: table.to_string(),
            message: "not wired yet".to_string(),
        }),
    }
}

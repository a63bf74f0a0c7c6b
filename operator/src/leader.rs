//! Leadership for `run`: with a lease table, a [`runtime::Elector`](crate::runtime::Elector) on
//! a DynamoDB lease named after the instance; without one, this replica is alone and writes.
//!
//! The published [`LeaderState`] is what `run` obeys: the runtime starts only while it
//! `writes()`, and a leader that stops being one abandons its work at once.

use std::sync::Arc;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::aws::Sdk;
use crate::metrics::{Health, LeaderState};
use crate::runtime::{self, Elector, LeaseConfig};
use crate::store::lease::{lease_name, DynamoLease};

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election on lease table `{table}`: {message}")]
    Setup { table: String, message: String },
}

/// This replica's view of leadership.
pub struct Leadership {
    rx: watch::Receiver<LeaderState>,
    stop: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
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

    /// Stop campaigning and release the lease if held. Call only after the runtime stopped
    /// writing: a follower may take over at once.
    pub async fn stop(&mut self) {
        if let Some((tx, task)) = self.stop.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
    }
}

fn map_state(s: &runtime::LeaderState) -> (LeaderState, Option<String>) {
    match s {
        runtime::LeaderState::Starting => (LeaderState::Starting, None),
        runtime::LeaderState::Leader => (LeaderState::Leader, None),
        runtime::LeaderState::Follower { holder } => (LeaderState::Follower, holder.clone()),
        runtime::LeaderState::Stopped => (LeaderState::Follower, None),
    }
}

/// Start leader election (or not, without a table). The lease table is created when absent.
pub async fn start(
    sdk: &Sdk,
    table: Option<&str>,
    instance: &str,
    identity: &str,
    config: LeaseConfig,
    health: Arc<Health>,
) -> Result<Leadership, LeaderError> {
    let Some(table) = table else {
        health.set_leader(LeaderState::Standalone, None);
        let (_tx, rx) = watch::channel(LeaderState::Standalone);
        return Ok(Leadership { rx, stop: None });
    };
    let setup = |message: String| LeaderError::Setup {
        table: table.to_string(),
        message,
    };
    crate::store::dynamodb::ensure_lease_table(&sdk.config, table)
        .await
        .map_err(|e| setup(e.to_string()))?;
    let backend = Arc::new(DynamoLease::with_client(
        sdk.dynamodb(),
        table,
        &lease_name(instance),
    ));
    let elector =
        Elector::new(backend, identity.to_string(), config).map_err(|e| setup(e.to_string()))?;
    let mut erx = elector.subscribe();
    let (tx, rx) = watch::channel(LeaderState::Starting);
    health.set_leader(LeaderState::Starting, None);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let elector_task = tokio::spawn(elector.run(async move {
        let _ = stop_rx.await;
    }));
    // Relay the elector's state to `run` and to /readyz, /metrics.
    let relay = tokio::spawn(async move {
        loop {
            let (state, holder) = map_state(&erx.borrow_and_update());
            health.set_leader(state, holder);
            tx.send_if_modified(|s| {
                let changed = *s != state;
                *s = state;
                changed
            });
            if erx.changed().await.is_err() {
                break;
            }
        }
    });
    let task = tokio::spawn(async move {
        let _ = elector_task.await;
        let _ = relay.await;
    });
    Ok(Leadership {
        rx,
        stop: Some((stop_tx, task)),
    })
}

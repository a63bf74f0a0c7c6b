//! The snapshot of the current resync wave, as the controller hands it to reconciles.

use std::sync::{Arc, Mutex};

use crate::reconcile::Snapshot;
use crate::runtime::WaveId;

/// The snapshot of the current resync wave (`crate::resources::snapshot`): made by the wave's
/// first reconcile, replaced when the next wave's first reconcile starts (the old one is freed
/// once its last reconcile ends).
#[derive(Debug, Default)]
pub struct WaveSnapshots {
    current: Mutex<Option<Arc<Snapshot>>>,
}

impl WaveSnapshots {
    /// The snapshot of `wave`: the current one, or a new one when `wave` is newer. A reconcile
    /// of no wave, or of a wave that is over already, reads fresh (`None`).
    pub fn snapshot(&self, wave: Option<WaveId>) -> Option<Arc<Snapshot>> {
        let wave = wave?;
        let mut current = self.current.lock().expect("wave lock");
        match current.as_ref() {
            Some(s) if s.wave() == wave => Some(s.clone()),
            Some(s) if s.wave() > wave => None,
            _ => {
                let s = Snapshot::new(wave);
                *current = Some(s.clone());
                Some(s)
            }
        }
    }
}

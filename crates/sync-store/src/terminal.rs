use std::sync::{Arc, Mutex, MutexGuard};

use pos_audit::{Checkpoint, Event};
use pos_core::{DeviceId, Hlc};
use pos_store::Store;
use pos_sync::{OriginState, VerifiedBatch};
use pos_sync_net::{StorageError, TerminalStorage};

use crate::storage_err;

/// A terminal's [`Store`] behind a mutex, for a sync task that may lock it itself.
#[derive(Debug, Clone)]
pub struct OwnedTerminalStore {
    store: Arc<Mutex<Store>>,
    hub: DeviceId,
}

impl OwnedTerminalStore {
    /// `hub`: the hub this terminal enrolled with (whose acks and master data it keeps).
    pub fn new(store: Arc<Mutex<Store>>, hub: DeviceId) -> Self {
        OwnedTerminalStore { store, hub }
    }

    /// The store, for the caller's own work (selling, checking).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store as its last commit left it: SQLite
        // transactions roll back, so the store itself is still consistent.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call<T>(
        &self,
        f: impl FnOnce(&mut Store) -> pos_store::Result<T>,
    ) -> Result<T, StorageError> {
        f(&mut self.lock()).map_err(storage_err)
    }
}

impl TerminalStorage for OwnedTerminalStore {
    fn own_head(&self) -> Result<u64, StorageError> {
        Ok(self.lock().head().0)
    }

    fn acked_seq(&self) -> Result<u64, StorageError> {
        let hub = self.hub;
        self.call(|s| Ok(s.head().0.saturating_sub(s.unacked_by(hub)?)))
    }

    fn acked(&self, seq: u64) -> Result<(), StorageError> {
        let hub = self.hub;
        self.call(|s| s.acked_by(hub, seq))
    }

    fn hub_state(&self) -> Result<OriginState, StorageError> {
        let hub = self.hub;
        self.call(|s| s.origin_state(hub))
    }

    fn events_for_sync(
        &self,
        first_seq: u64,
        max: u32,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError> {
        self.call(|s| {
            let own = s.identity().id;
            s.events_for_sync(own, first_seq, max)
        })
    }

    fn store_master(&self, batch: &VerifiedBatch) -> Result<(), StorageError> {
        self.call(|s| s.ingest(batch).map(drop))
    }

    fn security_violation(
        &self,
        origin: DeviceId,
        seq: u64,
        why: &str,
    ) -> Result<(), StorageError> {
        tracing::warn!(%origin, seq, why, "the hub sent a broken chain: held");
        self.call(|s| s.hold_origin(origin, seq, why).map(drop))
    }

    fn hlc_now(&self, wall_ms: u64) -> Hlc {
        self.lock().hlc_now().max(Hlc::from_parts(wall_ms, 0))
    }

    fn observe_hlc(&self, remote: Hlc, _wall_ms: u64) {
        self.lock().merge_hlc(remote);
    }
}

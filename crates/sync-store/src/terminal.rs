use std::sync::{Arc, Mutex, MutexGuard};

use pos_audit::{Checkpoint, Event};
use pos_core::{DeviceId, Hlc};
use pos_store::Store;
use pos_sync::{OriginState, VerifiedBatch};
use pos_sync_net::{StorageError, TerminalStorage};

use crate::storage_err;

/// How a terminal's sync task reaches the store, which someone else may own (the engine on
/// the UI thread, a benchmark's seller). The calls are short transactions.
pub trait StoreAccess: Send + Sync + 'static {
    /// Run `f` on the store (blocking until its owner gets to it).
    fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> pos_store::Result<T> + Send + 'static,
    ) -> Result<T, StorageError>;
    /// The store's HLC now, or as last seen; must not wait for a call in progress.
    fn hlc(&self) -> Hlc;
    /// Merge the hub's HLC (may happen later, in the owner's turn).
    fn merge_hlc(&self, remote: Hlc);
}

/// [`TerminalStorage`] over any [`StoreAccess`]: the terminal's own chain (the outbox), the
/// hub's acks, and the hub's master data.
#[derive(Debug, Clone)]
pub struct TerminalStore<A> {
    access: A,
    hub: DeviceId,
}

impl<A: StoreAccess> TerminalStore<A> {
    /// `hub`: the hub this terminal enrolled with (whose acks and master data it keeps).
    pub fn new(access: A, hub: DeviceId) -> Self {
        TerminalStore { access, hub }
    }

    pub fn access(&self) -> &A {
        &self.access
    }
}

impl<A: StoreAccess> TerminalStorage for TerminalStore<A> {
    fn own_head(&self) -> Result<u64, StorageError> {
        self.access.with_store(|s| Ok(s.head().0))
    }

    fn acked_seq(&self) -> Result<u64, StorageError> {
        let hub = self.hub;
        self.access
            .with_store(move |s| Ok(s.head().0.saturating_sub(s.unacked_by(hub)?)))
    }

    fn acked(&self, seq: u64) -> Result<(), StorageError> {
        let hub = self.hub;
        self.access.with_store(move |s| s.acked_by(hub, seq))
    }

    fn hub_state(&self) -> Result<OriginState, StorageError> {
        let hub = self.hub;
        self.access.with_store(move |s| s.origin_state(hub))
    }

    fn events_for_sync(
        &self,
        first_seq: u64,
        max: u32,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError> {
        self.access.with_store(move |s| {
            let own = s.identity().id;
            s.events_for_sync(own, first_seq, max)
        })
    }

    fn store_master(&self, batch: &VerifiedBatch) -> Result<(), StorageError> {
        let batch = batch.clone();
        self.access.with_store(move |s| s.ingest(&batch).map(drop))
    }

    fn security_violation(
        &self,
        origin: DeviceId,
        seq: u64,
        why: &str,
    ) -> Result<(), StorageError> {
        tracing::warn!(%origin, seq, why, "the hub sent a broken chain: held");
        let why = why.to_owned();
        self.access
            .with_store(move |s| s.hold_origin(origin, seq, &why).map(drop))
    }

    fn hlc_now(&self, wall_ms: u64) -> Hlc {
        self.access.hlc().max(Hlc::from_parts(wall_ms, 0))
    }

    fn observe_hlc(&self, remote: Hlc, _wall_ms: u64) {
        self.access.merge_hlc(remote);
    }
}

/// A store behind a mutex that the sync task may lock itself (benchmarks, tests, tools).
#[derive(Debug, Clone)]
pub struct SharedStore(pub Arc<Mutex<Store>>);

impl SharedStore {
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store as its last commit left it: SQLite
        // transactions roll back, so the store itself is still consistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StoreAccess for SharedStore {
    fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> pos_store::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        f(&mut self.lock()).map_err(storage_err)
    }

    fn hlc(&self) -> Hlc {
        self.lock().hlc_now()
    }

    fn merge_hlc(&self, remote: Hlc) {
        self.lock().merge_hlc(remote);
    }
}

/// A terminal's [`Store`] behind a mutex, for a sync task that may lock it itself.
pub type OwnedTerminalStore = TerminalStore<SharedStore>;

impl OwnedTerminalStore {
    /// The terminal store of `store`, enrolled with `hub`.
    pub fn owned(store: Arc<Mutex<Store>>, hub: DeviceId) -> Self {
        TerminalStore::new(SharedStore(store), hub)
    }

    /// The store, for the caller's own work (selling, checking).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        self.access.lock()
    }
}

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pos_audit::{Checkpoint, DeviceKey, Event};
use pos_core::{DeviceId, Hlc};
use pos_store::{EnrollRefusal, Store};
use pos_sync::{BatchRequest, OriginState, VerifiedBatch};
use pos_sync_net::enroll::{CodeKey, EnrollRefused};
use pos_sync_net::{
    CertStatus, DeviceDirectory, EnrolledDevice, EnrollmentBook, Fingerprint, HubEnrollment,
    HubHandle, HubPki, HubServer, HubServerConfig, HubServices, HubStorage, Notice, StorageError,
};
use tokio::sync::watch;

use crate::storage_err;

/// How often the device directory is re-read from the registry (a revocation made through the
/// store takes effect at the next handshake after this).
const DIRECTORY_REFRESH: Duration = Duration::from_secs(2);
/// How often the hub's own head is looked at (master data to publish).
const HEAD_POLL: Duration = Duration::from_millis(20);
/// Validity of device certificates issued at enrollment (about 27 months).
const DEVICE_VALIDITY_DAYS: u32 = 825;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the device registry: {0}")]
    Registry(#[from] pos_store::StoreError),
}

/// The hub's Store shared by the server's blocking tasks (Store is Send, not Sync).
#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    /// Remote HLCs seen while the store was busy; merged at the next lock.
    pending_hlc: AtomicU64,
    /// The store's HLC at the last lock (for the quick clock calls).
    last_hlc: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves the store at its last commit (SQLite rolls
        // back the open transaction), so carrying on with it is safe.
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let pending = self.pending_hlc.swap(0, Ordering::AcqRel);
        if pending != 0 {
            store.merge_hlc(Hlc::from_raw(pending));
        }
        store
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.lock();
        let out = f(&mut store);
        self.last_hlc
            .fetch_max(store.hlc_now().raw(), Ordering::AcqRel);
        out
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct StoreAdapter(Arc<Shared>);

impl HubStorage for StoreAdapter {
    fn own_head_seq(&self) -> Result<u64, StorageError> {
        Ok(self.0.with(|s| s.head().0))
    }

    fn origin_state(&self, origin: DeviceId) -> Result<OriginState, StorageError> {
        self.0.with(|s| s.origin_state(origin)).map_err(storage_err)
    }

    fn store(&self, batch: &VerifiedBatch) -> Result<(), StorageError> {
        self.0
            .with(|s| s.ingest(batch))
            .map(drop)
            .map_err(storage_err)
    }

    fn events_for(
        &self,
        req: &BatchRequest,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError> {
        self.0
            .with(|s| s.events_for_sync(req.origin, req.first_seq, req.max_events))
            .map_err(storage_err)
    }

    fn security_violation(
        &self,
        device: DeviceId,
        origin: DeviceId,
        seq: u64,
        why: &str,
    ) -> Result<(), StorageError> {
        tracing::warn!(%device, %origin, seq, why, "sync security violation: origin held");
        self.0
            .with(|s| s.hold_origin_sent_by(device, origin, seq, why))
            .map(drop)
            .map_err(storage_err)
    }

    fn note(&self, device: DeviceId, notice: &Notice) {
        let now = wall_ms();
        let result = self.0.with(|s| match notice {
            Notice::Connected {
                addr, their_head, ..
            } => {
                tracing::info!(%device, %addr, ?their_head, "terminal connected");
                s.note_seen(device, now, *their_head)
            }
            Notice::MasterDataAcked { seq } => s
                .note_seen(device, now, None)
                .and_then(|()| s.acked_by(device, *seq)),
            Notice::ClockSkew { skew_ms } => {
                tracing::warn!(%device, skew_ms, "terminal clock skew");
                s.note_clock_skew(device, Some(*skew_ms))
            }
            Notice::Closed { reason, detail, .. } => {
                tracing::info!(%device, ?reason, detail, "terminal disconnected");
                s.note_disconnected(device, now)
            }
            other => {
                tracing::warn!(%device, notice = ?other, "sync notice");
                Ok(())
            }
        });
        if let Err(e) = result {
            tracing::warn!(%device, error = %e, "cannot record the terminal's sync state");
        }
    }

    fn hlc_now(&self, wall_ms: u64) -> Hlc {
        // Quick: never wait for a store call in progress.
        match self.0.store.try_lock() {
            Ok(store) => store.hlc_now(),
            Err(_) => Hlc::from_raw(self.0.last_hlc.load(Ordering::Acquire))
                .max(Hlc::from_parts(wall_ms, 0)),
        }
    }

    fn observe_hlc(&self, remote: Hlc, _wall_ms: u64) {
        match self.0.store.try_lock() {
            Ok(mut store) => {
                store.merge_hlc(remote);
            }
            Err(_) => {
                self.0.pending_hlc.fetch_max(remote.raw(), Ordering::AcqRel);
            }
        }
    }
}

/// Certificate statuses from the device registry, cached in memory for the handshake path.
#[derive(Debug, Default)]
struct Directory {
    /// device → (certificate fingerprint hex, revoked)
    devices: RwLock<HashMap<DeviceId, (Option<String>, bool)>>,
}

impl Directory {
    fn refresh(&self, store: &Store) -> pos_store::Result<()> {
        let map = store
            .devices()?
            .into_iter()
            .map(|d| {
                let fp = d.cert_fingerprint.map(|f| f.to_ascii_lowercase());
                (d.device, (fp, d.revoked.is_some()))
            })
            .collect();
        *self.devices.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    fn refresh_logged(&self, store: &Store) {
        if let Err(e) = self.refresh(store) {
            tracing::warn!(error = %e, "cannot refresh the device directory");
        }
    }
}

impl DeviceDirectory for Directory {
    fn certificate_status(&self, device: DeviceId, fingerprint: &Fingerprint) -> CertStatus {
        let devices = self.devices.read().unwrap_or_else(|p| p.into_inner());
        match devices.get(&device) {
            None => CertStatus::Unknown,
            Some((_, true)) => CertStatus::Revoked,
            Some((Some(fp), false)) if *fp == fingerprint.to_hex() => CertStatus::Active,
            Some(_) => CertStatus::Unknown,
        }
    }
}

struct Book {
    shared: Arc<Shared>,
    directory: Arc<Directory>,
}

impl EnrollmentBook for Book {
    fn enroll(
        &self,
        device: &EnrolledDevice,
        matches: &mut dyn FnMut(&CodeKey) -> bool,
        now: SystemTime,
    ) -> Result<(), EnrollRefused> {
        let request = pos_store::EnrollRequest {
            device: device.device,
            name: device.name.clone(),
            public_key: device.audit_key,
            cert_fingerprint: device.cert_fingerprint.to_hex(),
        };
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let outcome = self.shared.with(|s| {
            let out = s.enroll_device(&request, now_ms, &mut |k: &[u8; 32]| matches(&CodeKey(*k)));
            self.directory.refresh_logged(s);
            out
        });
        match outcome {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(refusal)) => Err(match refusal {
                EnrollRefusal::UnknownCode => EnrollRefused::NoMatch,
                EnrollRefusal::Expired => EnrollRefused::Expired,
                EnrollRefusal::AlreadyUsed => EnrollRefused::Used,
                EnrollRefusal::TooManyAttempts => EnrollRefused::TooManyAttempts,
                EnrollRefusal::Revoked(d) => EnrollRefused::Revoked(d),
                EnrollRefusal::DeviceExists(d) => EnrollRefused::IdTaken(d),
                EnrollRefusal::BadRequest(why) => EnrollRefused::Storage(why),
            }),
            Err(e) => Err(EnrollRefused::Storage(e.to_string())),
        }
    }
}

/// The hub's sync service, running on the current tokio runtime.
#[derive(Debug)]
pub struct RunningHub {
    shared: Arc<Shared>,
    directory: Arc<Directory>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    upkeep: tokio::task::JoinHandle<()>,
    /// Shared with the upkeep task until shutdown.
    server: Arc<HubHandle>,
}

impl RunningHub {
    /// Listen on `listen` with the hub's `store`, its audit `key` (signs master data) and its
    /// branch `pki`; enrollments are recorded in the store.
    pub async fn start(
        store: Store,
        key: DeviceKey,
        pki: HubPki,
        listen: SocketAddr,
        config: HubServerConfig,
    ) -> Result<RunningHub, HubError> {
        let identity = store.identity().clone();
        let directory = Arc::new(Directory::default());
        directory.refresh(&store)?;
        let head_watch = store.head_watch();
        let hlc = store.hlc_now().raw();
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            pending_hlc: AtomicU64::new(0),
            last_hlc: AtomicU64::new(hlc),
        });
        let services = HubServices {
            hub: identity.id,
            key: Arc::new(key),
            pki: Arc::new(pki),
            directory: directory.clone(),
            storage: Arc::new(StoreAdapter(shared.clone())),
            enrollment: Some(HubEnrollment {
                book: Arc::new(Book {
                    shared: shared.clone(),
                    directory: directory.clone(),
                }),
                hub_name: identity.name.clone(),
                device_validity_days: DEVICE_VALIDITY_DAYS,
            }),
        };
        let server = HubServer::bind(listen, config, services)
            .await
            .map_err(|source| HubError::Listen {
                addr: listen,
                source,
            })?;
        let server = server.spawn().map_err(|source| HubError::Listen {
            addr: listen,
            source,
        })?;
        let server = Arc::new(server);
        let addr = server.local_addr();
        tracing::info!(%addr, hub = %identity.id, name = %identity.name, "hub running");
        let (stop, mut stopped) = watch::channel(false);
        let upkeep = {
            let shared = shared.clone();
            let directory = directory.clone();
            let server = server.clone();
            tokio::spawn(async move {
                let mut refresh = tokio::time::interval(DIRECTORY_REFRESH);
                let mut poll = tokio::time::interval(HEAD_POLL);
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = poll.tick() => server.own_head_changed(head_watch.load(Ordering::Acquire)),
                        _ = refresh.tick() => {
                            let shared = shared.clone();
                            let directory = directory.clone();
                            let _ = tokio::task::spawn_blocking(move || {
                                shared.with(|s| directory.refresh_logged(s));
                            })
                            .await;
                        }
                    }
                }
            })
        };
        Ok(RunningHub {
            shared,
            directory,
            addr,
            stop,
            upkeep,
            server,
        })
    }

    /// The address the hub listens on (the port, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Work on the hub's store between two sync calls (blocking: call it from a blocking
    /// context). The device directory is re-read afterwards, so a revocation made here
    /// refuses the device's next handshake at once.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        self.shared.with(|s| {
            let out = f(s);
            self.directory.refresh_logged(s);
            out
        })
    }

    /// Close `device`'s sync connection, if it has one (after revoking it, say).
    pub fn disconnect(&self, device: DeviceId, reason: &str) -> bool {
        self.server.disconnect(device, reason)
    }

    /// Devices with a sync connection now.
    pub fn connected(&self) -> Vec<DeviceId> {
        self.server.connected()
    }

    /// Close every connection (with a Close frame where possible) and stop listening.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.upkeep.await;
        match Arc::try_unwrap(self.server) {
            Ok(server) => server.shutdown().await,
            // Unreachable: the upkeep task held the only other clone and has ended.
            Err(_) => tracing::warn!("the hub server is still shared at shutdown"),
        }
        tracing::info!("hub stopped");
    }
}

//! The hub's listener: one TLS port for enrolled terminals (sync) and anonymous clients
//! (enrollment only). Each connection runs in its own task; a bad frame, a failed verification
//! or a storage error ends that connection only, with its reason in the log.
//!
//! Limits: at most [`HubServerConfig::max_connections`] connections at once (more are closed at
//! accept), the TLS handshake within `handshake_timeout`, at most `max_enrollments` anonymous
//! sessions at once, each within `enrollment_timeout`; one sync connection per device (a new
//! one replaces the old, which is closed and finished before the new one reads storage).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pos_audit::{Checkpoint, DeviceKey, Event};
use pos_core::{DeviceId, Hlc};
use pos_sync::{
    AppEvent, BatchRequest, CloseReason, HubConnection, HubSetup, OriginState, RejectReason,
    VerifiedBatch,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::driver::{self, Clock, Side, Signals, StorageError};
use crate::enroll::{self, HubEnrollment, Issuer};
use crate::pki::HubPki;
use crate::tls::{peer_of, DeviceDirectory, Peer};

/// Limits and timers of the hub's listener.
#[derive(Debug, Clone)]
pub struct HubServerConfig {
    pub sync: pos_sync::Config,
    pub max_connections: usize,
    pub max_enrollments: usize,
    pub handshake_timeout: Duration,
    pub enrollment_timeout: Duration,
    /// How long shutdown waits for connections to send their Close.
    pub shutdown_grace: Duration,
}

impl Default for HubServerConfig {
    fn default() -> Self {
        HubServerConfig {
            sync: pos_sync::Config::default(),
            max_connections: 64,
            max_enrollments: 4,
            handshake_timeout: Duration::from_secs(10),
            enrollment_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Things worth recording about a terminal's connection (for `pos hub devices list` and the
/// manager's alerts); none of them needs an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Connected {
        addr: SocketAddr,
        subscriptions: Vec<String>,
        /// The terminal's own head as it announced it: what it has to send is the rest.
        their_head: Option<u64>,
    },
    /// The terminal stored the hub's master data up to `seq`.
    MasterDataAcked {
        seq: u64,
    },
    ClockSkew {
        skew_ms: i64,
    },
    LostHistory {
        origin: DeviceId,
        author_has: u64,
        copy_has: u64,
    },
    /// The terminal refused our master data.
    Rejected {
        seq: u64,
        reason: RejectReason,
        detail: String,
    },
    Closed {
        reason: CloseReason,
        detail: String,
        by_peer: bool,
    },
}

/// The hub's database as the server needs it. Every method except the two clock methods may
/// block (they run on tokio's blocking pool); the clock methods must be quick.
pub trait HubStorage: Send + Sync + 'static {
    /// The last seq of the hub's own chain.
    fn own_head_seq(&self) -> Result<u64, StorageError>;
    /// What the hub holds of `origin`'s chain: stored head, its trusted keys (from enrollment),
    /// and whether it is held after a violation.
    fn origin_state(&self, origin: DeviceId) -> Result<OriginState, StorageError>;
    /// Commit a verified batch of a terminal's records, its checkpoints and seal, with their
    /// projections, in one transaction.
    fn store(&self, batch: &VerifiedBatch) -> Result<(), StorageError>;
    /// The hub's own records from `req.first_seq` (at most `req.max_events`) and the stored
    /// checkpoints in their range.
    fn events_for(&self, req: &BatchRequest)
        -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError>;
    /// `device` sent a forged or broken chain of `origin`: record a security event and hold
    /// the origin (`OriginState::held`) until someone resolves it.
    fn security_violation(
        &self,
        device: DeviceId,
        origin: DeviceId,
        seq: u64,
        why: &str,
    ) -> Result<(), StorageError>;
    /// Something to record about `device`'s connection.
    fn note(&self, device: DeviceId, notice: &Notice) {
        let _ = (device, notice);
    }
    /// The hub's HLC now (`HlcClock::tick` or its last value).
    fn hlc_now(&self, wall_ms: u64) -> Hlc;
    /// Merge a terminal's HLC (`HlcClock::observe`).
    fn observe_hlc(&self, remote: Hlc, wall_ms: u64);
}

/// What the hub's server runs on. The TLS configuration is built from `pki` and `directory`
/// here, so enrollment proofs always name the certificate the server shows.
pub struct HubServices {
    pub hub: DeviceId,
    /// The hub's audit key: signs its master data batches; terminals learn its public half at
    /// enrollment.
    pub key: Arc<DeviceKey>,
    /// The branch CA and this run's server certificate (must be this hub's).
    pub pki: Arc<HubPki>,
    /// Consulted in every client handshake (revoked and unknown certificates are refused).
    pub directory: Arc<dyn DeviceDirectory>,
    pub storage: Arc<dyn HubStorage>,
    /// `None`: anonymous clients are refused (no enrollment).
    pub enrollment: Option<HubEnrollment>,
}

impl std::fmt::Debug for HubServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubServices")
            .field("hub", &self.hub)
            .field("pki", &self.pki)
            .field("enrollment", &self.enrollment.is_some())
            .finish_non_exhaustive()
    }
}

struct Live {
    id: u64,
    stop: watch::Sender<Option<String>>,
    /// Held by the device's connection task while it runs.
    lease: Arc<tokio::sync::Mutex<()>>,
}

struct Shared {
    config: HubServerConfig,
    services: HubServices,
    acceptor: TlsAcceptor,
    connections: Arc<Semaphore>,
    enrollments: Arc<Semaphore>,
    head: watch::Sender<u64>,
    live: Mutex<HashMap<DeviceId, Live>>,
    next_id: AtomicU64,
    /// Server-wide stop (shutdown): every connection watches it too.
    stop: watch::Sender<Option<String>>,
}

impl Shared {
    fn live(&self) -> MutexGuard<'_, HashMap<DeviceId, Live>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bound, not yet running hub listener.
#[derive(Debug)]
pub struct HubServer {
    listener: TcpListener,
    config: HubServerConfig,
    services: HubServices,
    tls: Arc<rustls::ServerConfig>,
}

impl HubServer {
    /// Build the TLS configuration and bind the listener (e.g. `0.0.0.0:7443`; port 0 picks
    /// one).
    pub async fn bind(
        addr: SocketAddr,
        config: HubServerConfig,
        services: HubServices,
    ) -> std::io::Result<Self> {
        if services.pki.hub() != services.hub {
            return Err(std::io::Error::other(format!(
                "the TLS certificates are hub {}'s, this is hub {}",
                services.pki.hub(),
                services.hub
            )));
        }
        let tls = crate::tls::hub_server_config(&services.pki, services.directory.clone())
            .map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(addr).await?;
        Ok(HubServer {
            listener,
            config,
            services,
            tls,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Start accepting on the current tokio runtime.
    pub fn spawn(self) -> std::io::Result<HubHandle> {
        let addr = self.listener.local_addr()?;
        let (head, _) = watch::channel(0);
        let (stop, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            acceptor: TlsAcceptor::from(self.tls),
            connections: Arc::new(Semaphore::new(self.config.max_connections.max(1))),
            enrollments: Arc::new(Semaphore::new(self.config.max_enrollments.max(1))),
            config: self.config,
            services: self.services,
            head,
            live: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            stop,
        });
        tracing::info!(%addr, "hub listening (TLS 1.3, mutual authentication)");
        let task = tokio::spawn(accept_loop(self.listener, shared.clone()));
        Ok(HubHandle { shared, addr, task })
    }
}

/// The running hub listener.
#[derive(Debug)]
pub struct HubHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl HubHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub's own chain grew to `seq` (master data): connected terminals are offered it.
    pub fn own_head_changed(&self, seq: u64) {
        self.shared.head.send_if_modified(|h| {
            let grew = seq > *h;
            *h = (*h).max(seq);
            grew
        });
    }

    /// Close `device`'s connection, if any (after revoking it, for instance). Its next
    /// handshake meets the directory again.
    pub fn disconnect(&self, device: DeviceId, reason: &str) -> bool {
        match self.shared.live().get(&device) {
            Some(live) => {
                let _ = live.stop.send(Some(reason.to_owned()));
                true
            }
            None => false,
        }
    }

    /// Devices with a sync connection now.
    pub fn connected(&self) -> Vec<DeviceId> {
        self.shared.live().keys().copied().collect()
    }

    /// Stop accepting, close every connection with a Close frame, and wait for them (at most
    /// the shutdown grace, then they are dropped).
    pub async fn shutdown(self) {
        let _ = self
            .shared
            .stop
            .send(Some("the hub is shutting down".to_owned()));
        let _ = self.task.await;
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut tasks = JoinSet::new();
    let mut stop = shared.stop.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    let Ok(permit) = shared.connections.clone().try_acquire_owned() else {
                        tracing::warn!(%addr, "refused a connection: {} connections are open", shared.config.max_connections);
                        drop(tcp);
                        continue;
                    };
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        connection(tcp, addr, &shared).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    let grace = shared.config.shutdown_grace;
    let drained =
        tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            "{} connections did not end within {} s; dropped",
            tasks.len(),
            grace.as_secs()
        );
        tasks.abort_all();
    }
    tracing::info!("hub listener stopped");
}

async fn connection(tcp: TcpStream, addr: SocketAddr, shared: &Arc<Shared>) {
    let _ = tcp.set_nodelay(true);
    let handshake =
        tokio::time::timeout(shared.config.handshake_timeout, shared.acceptor.accept(tcp)).await;
    let mut tls = match handshake {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!(%addr, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!(
                %addr,
                "TLS handshake did not complete within {} s",
                shared.config.handshake_timeout.as_secs()
            );
            return;
        }
    };
    match peer_of(tls.get_ref().1) {
        Peer::Device(peer) => sync_session(tls, addr, peer.device, shared).await,
        Peer::Anonymous => {
            let Some(ctx) = &shared.services.enrollment else {
                tracing::warn!(%addr, "closed an anonymous client: enrollment is off");
                let _ = tls.shutdown().await;
                return;
            };
            let Ok(_permit) = shared.enrollments.clone().try_acquire_owned() else {
                tracing::warn!(%addr, "closed an anonymous client: too many enrollments at once");
                let _ = tls.shutdown().await;
                return;
            };
            let limit = shared.config.enrollment_timeout;
            let issuer = Issuer {
                pki: &shared.services.pki,
                hub: shared.services.hub,
                audit_key: shared.services.key.public(),
                ctx,
            };
            match tokio::time::timeout(limit, enroll::serve(&mut tls, &issuer, addr)).await {
                Ok(Ok(device)) => tracing::info!(%addr, %device, "enrollment complete"),
                Ok(Err(why)) => tracing::warn!(%addr, "enrollment refused: {why}"),
                Err(_) => tracing::warn!(
                    %addr,
                    "enrollment did not complete within {} s",
                    limit.as_secs()
                ),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
        }
        Peer::Unnamed => {
            tracing::warn!(%addr, "closed a client whose certificate names no device");
        }
    }
}

/// Register `device`'s connection, closing an older one; wait until the older one finished.
async fn take_lease(
    shared: &Arc<Shared>,
    device: DeviceId,
) -> Option<(
    u64,
    watch::Receiver<Option<String>>,
    tokio::sync::OwnedMutexGuard<()>,
)> {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(None);
    let lease = {
        let mut live = shared.live();
        let lease = match live.get(&device) {
            Some(old) => {
                let _ = old.stop.send(Some(
                    "replaced by a newer connection from the same device".into(),
                ));
                old.lease.clone()
            }
            None => Arc::new(tokio::sync::Mutex::new(())),
        };
        live.insert(
            device,
            Live {
                id,
                stop: stop_tx,
                lease: lease.clone(),
            },
        );
        lease
    };
    match tokio::time::timeout(shared.config.shutdown_grace * 2, lease.lock_owned()).await {
        Ok(guard) => Some((id, stop_rx, guard)),
        Err(_) => {
            tracing::warn!(%device, "the device's previous connection did not end; refusing the new one");
            release(shared, device, id);
            None
        }
    }
}

fn release(shared: &Shared, device: DeviceId, id: u64) {
    let mut live = shared.live();
    if live.get(&device).is_some_and(|l| l.id == id) {
        live.remove(&device);
    }
}

async fn sync_session(
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    addr: SocketAddr,
    device: DeviceId,
    shared: &Arc<Shared>,
) {
    let Some((id, conn_stop, _lease)) = take_lease(shared, device).await else {
        return;
    };
    // Subscribe before reading the head, so no growth in between is missed.
    let head = shared.head.subscribe();
    let side = Arc::new(HubSide {
        storage: shared.services.storage.clone(),
        device,
        addr,
    });
    let storage = shared.services.storage.clone();
    let start = tokio::task::spawn_blocking(move || {
        Ok::<_, StorageError>((storage.own_head_seq()?, storage.origin_state(device)?))
    })
    .await;
    let (own_head_seq, terminal) = match start {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::error!(%device, %addr, "closed: the hub's storage failed: {e}");
            release(shared, device, id);
            return;
        }
        Err(e) => {
            tracing::error!(%device, %addr, "closed: the hub's storage failed: {e}");
            release(shared, device, id);
            return;
        }
    };
    let clock = Clock::new();
    let setup = HubSetup {
        device: shared.services.hub,
        own_head_seq: own_head_seq.max(*head.borrow()),
        terminal,
    };
    let conn = match HubConnection::new(shared.config.sync.clone(), setup, clock.now(side.as_ref()))
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(%device, "closed: {e}");
            release(shared, device, id);
            return;
        }
    };
    // Either stop (this connection's or the server's) closes the connection.
    let stop = merge_stops(conn_stop, shared.stop.subscribe());
    tracing::debug!(%device, %addr, "sync connection authenticated");
    let ended = driver::drive(
        tls,
        conn,
        side,
        shared.services.key.clone(),
        clock,
        Signals { head, stop },
    )
    .await;
    if let Some(e) = ended.transport_error {
        tracing::debug!(%device, %addr, "transport: {e}");
    }
    release(shared, device, id);
}

/// One receiver that turns `Some` when either input does.
fn merge_stops(
    mut a: watch::Receiver<Option<String>>,
    mut b: watch::Receiver<Option<String>>,
) -> watch::Receiver<Option<String>> {
    let initial = a
        .borrow_and_update()
        .clone()
        .or(b.borrow_and_update().clone());
    let (tx, rx) = watch::channel(initial);
    tokio::spawn(async move {
        loop {
            let reason = tokio::select! {
                r = a.changed() => match r {
                    Ok(()) => a.borrow_and_update().clone(),
                    Err(_) => { let _ = b.changed().await; b.borrow_and_update().clone() }
                },
                r = b.changed() => match r {
                    Ok(()) => b.borrow_and_update().clone(),
                    Err(_) => { let _ = a.changed().await; a.borrow_and_update().clone() }
                },
                () = tx.closed() => return,
            };
            if let Some(reason) = reason {
                let _ = tx.send(Some(reason));
                return;
            }
        }
    });
    rx
}

struct HubSide {
    storage: Arc<dyn HubStorage>,
    device: DeviceId,
    addr: SocketAddr,
}

impl Side for HubSide {
    fn read_events(
        &self,
        req: &BatchRequest,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError> {
        self.storage.events_for(req)
    }

    fn store(&self, batch: &VerifiedBatch) -> Result<(), StorageError> {
        self.storage.store(batch)
    }

    fn event(&self, event: &AppEvent) {
        let (device, addr) = (self.device, self.addr);
        let notice = match event {
            AppEvent::Connected {
                subscriptions,
                peer_head,
                ..
            } => {
                tracing::info!(%device, %addr, ?subscriptions, "terminal connected");
                Notice::Connected {
                    addr,
                    subscriptions: subscriptions.clone(),
                    their_head: *peer_head,
                }
            }
            AppEvent::Acked { seq, .. } => Notice::MasterDataAcked { seq: *seq },
            AppEvent::SecurityViolation { origin, seq, why } => {
                tracing::error!(%device, %addr, %origin, seq, "security violation: {why}; origin held");
                if let Err(e) = self.storage.security_violation(device, *origin, *seq, why) {
                    tracing::error!(%device, "could not record the security violation: {e}");
                }
                return;
            }
            AppEvent::ClockSkew { skew_ms, .. } => {
                tracing::warn!(%device, skew_ms, "terminal clock differs from the hub's");
                Notice::ClockSkew { skew_ms: *skew_ms }
            }
            AppEvent::LostHistory {
                origin,
                author_has,
                copy_has,
            } => {
                tracing::error!(%device, %origin, author_has, copy_has, "a device has fewer of its own records than a copy holds (restored from an old backup?)");
                Notice::LostHistory {
                    origin: *origin,
                    author_has: *author_has,
                    copy_has: *copy_has,
                }
            }
            AppEvent::Rejected {
                seq,
                reason,
                detail,
                ..
            } => {
                tracing::error!(%device, seq, %reason, "the terminal refused the hub's master data: {detail}");
                Notice::Rejected {
                    seq: *seq,
                    reason: *reason,
                    detail: detail.clone(),
                }
            }
            AppEvent::Closed {
                reason,
                detail,
                by_peer,
            } => {
                let who = if *by_peer { "terminal" } else { "hub" };
                match reason {
                    CloseReason::Normal | CloseReason::ConnectionLost => {
                        tracing::info!(%device, %addr, "connection closed by the {who}: {reason}: {detail}");
                    }
                    _ => {
                        tracing::warn!(%device, %addr, "connection closed by the {who}: {reason}: {detail}");
                    }
                }
                Notice::Closed {
                    reason: *reason,
                    detail: detail.clone(),
                    by_peer: *by_peer,
                }
            }
            AppEvent::NeedEvents(_) | AppEvent::Store(_) => return,
        };
        self.storage.note(device, &notice);
    }

    fn hlc_now(&self, wall_ms: u64) -> Hlc {
        self.storage.hlc_now(wall_ms)
    }

    fn observe_hlc(&self, remote: Hlc, wall_ms: u64) {
        self.storage.observe_hlc(remote, wall_ms)
    }
}

//! The terminal's background sync: connects to the enrolled hub, drives a
//! `pos_sync::TerminalConnection`, and reconnects with capped exponential backoff and jitter.
//! Selling never waits for it: the till commits to its own log and calls
//! [`TerminalClient::appended`]; this task reads the outbox through [`TerminalStorage`] on the
//! blocking pool and reports through a [`SyncStatus`] channel for the status bar.

use std::sync::Arc;
use std::time::Duration;

use pos_audit::{Checkpoint, DeviceKey, Event};
use pos_core::{DeviceId, Hlc};
use pos_sync::{
    AppEvent, BatchRequest, CloseReason, OriginState, TerminalConnection, TerminalSetup,
    VerifiedBatch,
};
use ring::rand::SecureRandom;
use rustls::pki_types::ServerName;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::driver::{self, wall_ms, Clock, Side, Signals, StorageError};

/// The terminal's database as the sync task needs it. Every method except the two clock
/// methods may block (they run on tokio's blocking pool); the clock methods must be quick.
pub trait TerminalStorage: Send + Sync + 'static {
    /// The last seq of the terminal's own chain.
    fn own_head(&self) -> Result<u64, StorageError>;
    /// The highest own seq the hub acknowledged (the outbox cursor), as last recorded.
    fn acked_seq(&self) -> Result<u64, StorageError>;
    /// Record the hub's acknowledgement (for the status bar and the next start).
    fn acked(&self, seq: u64) -> Result<(), StorageError>;
    /// What the terminal holds of the hub's chain and the hub's trusted keys (from enrollment).
    fn hub_state(&self) -> Result<OriginState, StorageError>;
    /// Own records from `first_seq` (at most `max`) and the stored checkpoints in their range.
    fn events_for_sync(
        &self,
        first_seq: u64,
        max: u32,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError>;
    /// Commit a verified batch of the hub's master data (full records, the new hub head,
    /// checkpoints and seal) in one transaction.
    fn store_master(&self, batch: &VerifiedBatch) -> Result<(), StorageError>;
    /// The hub sent a forged or broken chain: record a security event and hold it.
    fn security_violation(&self, origin: DeviceId, seq: u64, why: &str)
        -> Result<(), StorageError>;
    /// The device's HLC now.
    fn hlc_now(&self, wall_ms: u64) -> Hlc;
    /// Merge the hub's HLC.
    fn observe_hlc(&self, remote: Hlc, wall_ms: u64);
}

/// Reconnection delays: `initial` doubling up to `max`, each drawn uniformly from
/// [delay/2, delay] so terminals restarted together do not reconnect in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// A connection that stayed up this long resets the delay to `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(60),
            reset_after: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (0-based), given a random `unit` in [0, 1).
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        ceiling.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// How to reach the hub.
#[derive(Debug, Clone)]
pub struct TerminalClientConfig {
    /// `host:port`.
    pub hub_addr: String,
    /// The name the hub's certificate is verified against (`HubRecord::server_name`).
    pub server_name: String,
    pub sync: pos_sync::Config,
    /// Hub modules wanted in full (e.g. `catalogue`, `user`, `setting`).
    pub subscriptions: Vec<String>,
    pub backoff: Backoff,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
}

/// Who the terminal is.
#[derive(Debug, Clone)]
pub struct TerminalIdentity {
    pub device: DeviceId,
    /// Signs the terminal's batches (its audit key).
    pub key: Arc<DeviceKey>,
    pub tls: Arc<rustls::ClientConfig>,
}

/// For the status bar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// A sync connection is established now.
    pub online: bool,
    pub own_head: u64,
    /// The hub has stored our records up to here.
    pub acked: u64,
    /// Records not yet stored at the hub.
    pub waiting: u64,
    /// Why the last attempt or connection failed.
    pub last_error: Option<String>,
    /// The hub refused our chain (verification): it holds it until someone resolves it.
    pub refused: Option<String>,
    /// Wall clock (Unix ms) of the last moment we were connected.
    pub last_online_ms: Option<u64>,
    /// Connection attempts since the last good connection.
    pub failed_attempts: u32,
}

/// The running sync task.
#[derive(Debug)]
pub struct TerminalClient {
    status: watch::Receiver<SyncStatus>,
    status_tx: Arc<watch::Sender<SyncStatus>>,
    head: watch::Sender<u64>,
    stop: watch::Sender<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl TerminalClient {
    /// Start syncing on the current tokio runtime.
    pub fn spawn(
        config: TerminalClientConfig,
        identity: TerminalIdentity,
        storage: Arc<dyn TerminalStorage>,
    ) -> Self {
        let (status_tx, status) = watch::channel(SyncStatus::default());
        let status_tx = Arc::new(status_tx);
        let (head, _) = watch::channel(0);
        let (stop, _) = watch::channel(None);
        let task = tokio::spawn(run(
            config,
            identity,
            storage,
            status_tx.clone(),
            head.clone(),
            stop.subscribe(),
        ));
        TerminalClient {
            status,
            status_tx,
            head,
            stop,
            task,
        }
    }

    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }

    /// The terminal's log now ends at `seq` (call after each commit; never blocks).
    pub fn appended(&self, seq: u64) {
        self.head.send_if_modified(|h| {
            let grew = seq > *h;
            *h = (*h).max(seq);
            grew
        });
        self.status_tx.send_if_modified(|s| {
            let grew = seq > s.own_head;
            s.own_head = s.own_head.max(seq);
            s.waiting = s.own_head.saturating_sub(s.acked);
            grew
        });
    }

    /// Close the connection with a Close frame and end the task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(Some("the terminal is shutting down".into()));
        let _ = self.task.await;
    }
}

async fn run(
    config: TerminalClientConfig,
    identity: TerminalIdentity,
    storage: Arc<dyn TerminalStorage>,
    status: Arc<watch::Sender<SyncStatus>>,
    head: watch::Sender<u64>,
    mut stop: watch::Receiver<Option<String>>,
) {
    let mut attempt: u32 = 0;
    // The status starts from what storage says.
    refresh_counts(&storage, &status).await;
    loop {
        if stop.borrow().is_some() {
            break;
        }
        let started = Instant::now();
        let result = session(&config, &identity, &storage, &status, &head, &stop).await;
        let lasted = started.elapsed();
        let failure = match result {
            Ok(ended) if ended.established && lasted >= config.backoff.reset_after => {
                attempt = 0;
                None
            }
            Ok(ended) => Some(ended.transport_error.unwrap_or_else(|| {
                if ended.established {
                    "the connection ended".to_owned()
                } else {
                    "the hub closed the connection during the handshake".to_owned()
                }
            })),
            Err(e) => Some(e),
        };
        status.send_modify(|s| {
            if s.online {
                s.last_online_ms = Some(wall_ms());
            }
            s.online = false;
            if let Some(e) = &failure {
                s.last_error = Some(e.clone());
                s.failed_attempts = s.failed_attempts.saturating_add(1);
            }
        });
        if stop.borrow().is_some() {
            break;
        }
        let delay = config.backoff.delay(attempt, random_unit());
        attempt = attempt.saturating_add(1);
        if let Some(e) = failure {
            tracing::info!(
                hub = %config.hub_addr,
                "sync offline ({e}); next attempt in {} ms",
                delay.as_millis()
            );
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => break,
        }
    }
}

async fn refresh_counts(storage: &Arc<dyn TerminalStorage>, status: &watch::Sender<SyncStatus>) {
    let s = storage.clone();
    let counts =
        tokio::task::spawn_blocking(move || Ok::<_, StorageError>((s.own_head()?, s.acked_seq()?)))
            .await;
    if let Ok(Ok((own_head, acked))) = counts {
        status.send_modify(|s| {
            s.own_head = own_head;
            s.acked = acked;
            s.waiting = own_head.saturating_sub(acked);
        });
    }
}

async fn session(
    config: &TerminalClientConfig,
    identity: &TerminalIdentity,
    storage: &Arc<dyn TerminalStorage>,
    status: &Arc<watch::Sender<SyncStatus>>,
    head: &watch::Sender<u64>,
    stop: &watch::Receiver<Option<String>>,
) -> Result<driver::Ended, String> {
    let server_name = ServerName::try_from(config.server_name.clone())
        .map_err(|e| format!("hub server name `{}`: {e}", config.server_name))?;
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(&config.hub_addr)
            .await
            .map_err(|e| format!("cannot reach the hub at {}: {e}", config.hub_addr))?;
        let _ = tcp.set_nodelay(true);
        tokio_rustls::TlsConnector::from(identity.tls.clone())
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("TLS with the hub failed: {e}"))
    };
    let tls = tokio::time::timeout(config.connect_timeout, connect)
        .await
        .map_err(|_| {
            format!(
                "the hub at {} did not answer within {} s",
                config.hub_addr,
                config.connect_timeout.as_secs()
            )
        })??;
    // Subscribe before reading the head, so no commit in between is missed.
    let mut head_rx = head.subscribe();
    let s = storage.clone();
    let start = tokio::task::spawn_blocking(move || {
        Ok::<_, StorageError>((s.own_head()?, s.acked_seq()?, s.hub_state()?))
    })
    .await
    .map_err(|e| format!("storage: {e}"))?
    .map_err(|e| format!("storage: {e}"))?;
    let (own_head, acked, hub) = start;
    let own_head = own_head.max(*head_rx.borrow_and_update());
    status.send_modify(|s| {
        s.own_head = own_head;
        s.acked = acked;
        s.waiting = own_head.saturating_sub(acked);
    });
    let side = Arc::new(TerminalSide {
        storage: storage.clone(),
        status: status.clone(),
    });
    let clock = Clock::new();
    let setup = TerminalSetup {
        device: identity.device,
        own_head_seq: own_head,
        hub,
        subscriptions: config.subscriptions.clone(),
    };
    let conn = TerminalConnection::new(config.sync.clone(), setup, clock.now(side.as_ref()))
        .map_err(|e| e.to_string())?;
    let ended = driver::drive(
        tls,
        conn,
        side,
        identity.key.clone(),
        clock,
        Signals {
            head: head_rx,
            stop: stop.clone(),
        },
    )
    .await;
    Ok(ended)
}

struct TerminalSide {
    storage: Arc<dyn TerminalStorage>,
    status: Arc<watch::Sender<SyncStatus>>,
}

impl Side for TerminalSide {
    fn read_events(
        &self,
        req: &BatchRequest,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>), StorageError> {
        self.storage.events_for_sync(req.first_seq, req.max_events)
    }

    fn store(&self, batch: &VerifiedBatch) -> Result<(), StorageError> {
        self.storage.store_master(batch)
    }

    fn event(&self, event: &AppEvent) {
        match event {
            AppEvent::Connected { peer, .. } => {
                tracing::info!(hub = %peer, "sync online");
                self.status.send_modify(|s| {
                    s.online = true;
                    s.last_error = None;
                    s.failed_attempts = 0;
                    s.last_online_ms = Some(wall_ms());
                });
            }
            AppEvent::Acked { seq, .. } => {
                if let Err(e) = self.storage.acked(*seq) {
                    tracing::warn!("could not record the hub's ack of seq {seq}: {e}");
                }
                self.status.send_modify(|s| {
                    // The hub accepts our chain again (someone resolved a hold).
                    s.refused = None;
                    s.acked = s.acked.max(*seq);
                    s.own_head = s.own_head.max(s.acked);
                    s.waiting = s.own_head.saturating_sub(s.acked);
                    s.last_online_ms = Some(wall_ms());
                });
            }
            AppEvent::Rejected {
                seq,
                reason,
                detail,
                ..
            } => {
                tracing::error!(seq, %reason, "the hub refused our records: {detail}");
                self.status
                    .send_modify(|s| s.refused = Some(format!("seq {seq}: {reason}: {detail}")));
            }
            AppEvent::SecurityViolation { origin, seq, why } => {
                tracing::error!(%origin, seq, "the hub's master data failed verification: {why}");
                if let Err(e) = self.storage.security_violation(*origin, *seq, why) {
                    tracing::error!("could not record the security violation: {e}");
                }
            }
            AppEvent::ClockSkew { .. } => {}
            AppEvent::LostHistory {
                origin,
                author_has,
                copy_has,
            } => {
                tracing::error!(%origin, author_has, copy_has, "the hub has more of a chain than its author (a restored backup?)");
            }
            AppEvent::Closed {
                reason,
                detail,
                by_peer,
            } => {
                let who = if *by_peer { "hub" } else { "terminal" };
                match reason {
                    CloseReason::Normal | CloseReason::ConnectionLost => {
                        tracing::info!("sync connection closed by the {who}: {reason}: {detail}");
                    }
                    _ => tracing::warn!("sync connection closed by the {who}: {reason}: {detail}"),
                }
            }
            AppEvent::NeedEvents(_) | AppEvent::Store(_) => {}
        }
    }

    fn hlc_now(&self, wall_ms: u64) -> Hlc {
        self.storage.hlc_now(wall_ms)
    }

    fn observe_hlc(&self, remote: Hlc, wall_ms: u64) {
        self.storage.observe_hlc(remote, wall_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(5),
            reset_after: Duration::from_secs(1),
        };
        assert_eq!(
            b.delay(0, 0.999_999),
            Duration::from_millis(100).mul_f64(0.9999995)
        );
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(400));
        assert_eq!(b.delay(10, 0.0), Duration::from_millis(2500));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(5));
        for attempt in 0..40 {
            let d = b.delay(attempt, random_unit());
            assert!(d <= b.max && d >= b.initial / 2, "{d:?}");
        }
    }
}

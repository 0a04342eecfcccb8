//! The terminal's link to its hub: a [`TerminalClient`] on a tokio runtime in its own thread,
//! its status shown in the UI's status bar.
//!
//! One store, one owner: the terminal's Store is owned by the engine on the UI thread and holds
//! the data dir's exclusive lock, so no second process or connection may write it (and the
//! sync task must write: the hub's acks, its master data, holds). Every storage call of the
//! sync task is therefore sent to the UI thread through the [`Remote`] and answered over a
//! channel; the calls run on tokio's blocking pool, so waiting there never stalls the network
//! side, and each one is a short transaction that the UI thread runs between two events.
//! The sync task learns about new sales from the store's head watch (an atomic the store
//! updates after each commit), looked at every 20 ms without bothering the UI thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use pos_core::{DeviceId, Hlc};
use pos_store::Store;
use pos_sync_net::{
    Backoff, StorageError, TerminalClient, TerminalClientConfig, TerminalIdentity, TerminalTls,
};
use pos_sync_store::{StoreAccess, TerminalStore};
use pos_ui::backend::Remote;
use tokio::sync::watch;

/// How long a storage call may wait for the UI thread.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the store's head watch is looked at (new sales to send).
const HEAD_POLL: Duration = Duration::from_millis(20);

/// The store, reached through the UI thread.
struct ViaUi {
    remote: Remote,
    /// The store's HLC after the last call (the clock calls must not wait).
    last_hlc: Arc<AtomicU64>,
    /// The UI has stopped: calls fail at once instead of waiting for it.
    closed: Arc<AtomicBool>,
}

impl StoreAccess for ViaUi {
    fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> pos_store::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError("the terminal is closing".into()));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let last_hlc = self.last_hlc.clone();
        self.remote
            .with_terminal(move |t| {
                let out = t.with_engine(|e| {
                    let store = e.store_mut();
                    let out = f(store);
                    last_hlc.fetch_max(store.hlc_now().raw(), Ordering::AcqRel);
                    out
                });
                let _ = tx.send(out);
            })
            .map_err(|e| StorageError(format!("the terminal is closing: {e}")))?;
        let deadline = std::time::Instant::now() + CALL_TIMEOUT;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(Ok(v))) => return Ok(v),
                Ok(Some(Err(e))) => return Err(StorageError(e.to_string())),
                Ok(None) => return Err(StorageError("the terminal's store is busy".into())),
                Err(mpsc::RecvTimeoutError::Timeout)
                    if !self.closed.load(Ordering::Acquire)
                        && std::time::Instant::now() < deadline => {}
                Err(_) => {
                    return Err(StorageError(
                        "the terminal's UI did not answer (closing?)".into(),
                    ))
                }
            }
        }
    }

    fn hlc(&self) -> Hlc {
        Hlc::from_raw(self.last_hlc.load(Ordering::Acquire))
    }

    fn merge_hlc(&self, remote: Hlc) {
        // Merged on the UI thread in its turn; nothing waits for it.
        let _ = self.remote.with_terminal(move |t| {
            t.with_engine(|e| e.store_mut().merge_hlc(remote));
        });
    }
}

/// The running link; [`SyncLink::stop`] closes it.
#[derive(Debug)]
pub struct SyncLink {
    closed: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

impl SyncLink {
    /// Close the connection (with a Close frame when it can) and end the thread.
    pub fn stop(self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.stop.send(true);
        let _ = self.thread.join();
    }
}

/// Start syncing with the hub this terminal enrolled with (`tls`), at `hub_addr`.
pub fn start(
    tls: TerminalTls,
    hub_addr: String,
    own: DeviceId,
    key: pos_audit::DeviceKey,
    remote: Remote,
    head: Arc<AtomicU64>,
    retry_max: Duration,
) -> anyhow::Result<SyncLink> {
    let client_tls = tls
        .client_config()
        .context("cannot build the TLS configuration from the enrollment files")?;
    let config = TerminalClientConfig {
        hub_addr: hub_addr.clone(),
        server_name: tls.hub.server_name.clone(),
        sync: pos_sync::Config::default(),
        subscriptions: pos_store::HUB_AUTHORITATIVE
            .iter()
            .map(|m| (*m).to_owned())
            .collect(),
        backoff: Backoff {
            max: retry_max,
            ..Backoff::default()
        },
        connect_timeout: Duration::from_secs(10),
    };
    let identity = TerminalIdentity {
        device: own,
        key: Arc::new(key),
        tls: client_tls,
    };
    let closed = Arc::new(AtomicBool::new(false));
    let storage = Arc::new(TerminalStore::new(
        ViaUi {
            remote,
            last_hlc: Arc::new(AtomicU64::new(0)),
            closed: closed.clone(),
        },
        tls.hub.hub,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("sync")
        .build()
        .context("cannot start the sync runtime")?;
    let (stop, mut stopped) = watch::channel(false);
    tracing::info!(hub = %tls.hub.name, addr = %hub_addr, "syncing with the hub");
    let thread = std::thread::Builder::new()
        .name("sync".into())
        .spawn(move || {
            runtime.block_on(async move {
                let client = TerminalClient::spawn(config, identity, storage.clone());
                let mut status = client.status();
                let mut poll = tokio::time::interval(HEAD_POLL);
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        changed = status.changed() => {
                            if changed.is_err() {
                                break;
                            }
                            let s = status.borrow_and_update().clone();
                            let _ = remote.with_terminal(move |t| {
                                t.set_link_status(s.online, s.waiting);
                            });
                        }
                        _ = poll.tick() => client.appended(head.load(Ordering::Acquire)),
                    }
                }
                client.shutdown().await;
            });
        })
        .context("cannot start the sync thread")?;
    Ok(SyncLink {
        closed,
        stop,
        thread,
    })
}

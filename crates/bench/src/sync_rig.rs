//! The hub and terminal of P5 and P6, set up as the product sets them up: a hub data dir with
//! its branch CA and the real hub service (`pos_sync_store::RunningHub`, as `pos hub` runs it);
//! a terminal data dir enrolled the way `pos enroll` does it (a one-time code from the hub's
//! admin, a device certificate issued by the hub over TLS, the hub recorded in the terminal's
//! log); and the terminal's sync link as the firmware runs it (`TerminalClient` on a
//! one-worker runtime, told about new records by polling the store's head watch every 20 ms).
//! Everything talks TLS 1.3 with mutual authentication over loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pos_core::payloads::DeviceRegistered;
use pos_core::{DeviceId, DeviceRole};
use pos_store::{DataDirLock, Store};
use pos_sync::OriginState;
use pos_sync_net::{
    Backoff, EnrollRequest, EnrollmentCode, HubNames, HubPki, HubServerConfig, SyncStatus,
    TerminalClient, TerminalClientConfig, TerminalIdentity, TerminalStorage, TerminalTls,
};
use pos_sync_store::RunningHub;
use tokio::runtime::Runtime;
use tokio::sync::watch;

/// How often the terminal's sync link looks at the store's head watch
/// (firmware/src/cmd/sync_link.rs HEAD_POLL).
pub const HEAD_POLL: Duration = Duration::from_millis(20);

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The hub's runtime: multi-threaded, one worker per core (as `pos hub` starts it).
pub fn hub_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-hub")
        .build()
        .context("cannot start the hub's runtime")
}

/// The terminal's sync runtime: one worker (as the firmware's sync link starts it).
pub fn terminal_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("bench-sync")
        .build()
        .context("cannot start the terminal's sync runtime")
}

/// A new hub data dir in `dir` with its bootstrap admin, and a one-time enrollment code the
/// admin created for one terminal.
pub fn init_hub(dir: &Path) -> Result<(Store, EnrollmentCode)> {
    let (mut store, _) = Store::init(dir, DeviceRole::Hub, "bench", "hub", false)
        .with_context(|| format!("initialising a hub data dir in {}", dir.display()))?;
    let policy = pos_store::AccountPolicy::default();
    let (_, one_time) = store.bootstrap_admin("admin")?;
    let totp = store
        .change_secret("admin", &one_time, "Tangerine-Harbor-2026", None, &policy)?
        .context("the admin enrols a second factor")?;
    let code = pos_auth::totp_code(&totp, pos_store::now_ms() / 1000);
    let admin = store.authenticate("admin", "Tangerine-Harbor-2026", Some(&code), &policy)?;
    let code = store
        .create_enroll_code(&admin, Duration::from_secs(600))
        .context("creating an enrollment code")?;
    let code = EnrollmentCode::parse(&code.code)
        .map_err(|e| anyhow::anyhow!("the hub made an unusable enrollment code: {e:?}"))?;
    Ok((store, code))
}

/// Start the hub's sync service on `store` (its data dir's key and branch CA) on a free
/// loopback port.
pub fn start_hub(rt: &Runtime, store: Store) -> Result<RunningHub> {
    let dir = store.dir().to_owned();
    let id = store.identity().id;
    let (_, key) = DataDirLock::shared(&dir)
        .and_then(|lock| lock.load_identity())
        .context("loading the hub's signing key")?;
    let names = HubNames {
        dns: Vec::new(),
        ips: vec![LOOPBACK],
    };
    let pki = HubPki::load_or_create(&pos_sync_net::tls_dir(&dir), id, &names)
        .context("loading or creating the hub's branch CA")?;
    let listen = SocketAddr::new(LOOPBACK, 0);
    Ok(rt.block_on(RunningHub::start(
        store,
        key,
        pki,
        listen,
        HubServerConfig::default(),
    ))?)
}

/// What the terminal's sync link needs after enrollment.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub hub: DeviceId,
    pub config: TerminalClientConfig,
    pub identity: TerminalIdentity,
}

/// Enroll the terminal of `store` with the hub at `hub_addr` using `code`, as `pos enroll`
/// does: TLS files saved in the terminal's data dir, the hub recorded in its log.
pub fn enroll(
    rt: &Runtime,
    store: &mut Store,
    hub_addr: SocketAddr,
    code: EnrollmentCode,
) -> Result<Enrolled> {
    let dir = store.dir().to_owned();
    let identity = store.identity().clone();
    let (_, key) = DataDirLock::shared(&dir)
        .and_then(|lock| lock.load_identity())
        .context("loading the terminal's signing key")?;
    let key = Arc::new(key);
    let request = EnrollRequest {
        hub_addr: hub_addr.to_string(),
        code,
        device: identity.id,
        name: identity.name.clone(),
        audit_key: key.clone(),
        timeout: Duration::from_secs(30),
    };
    let enrollment = rt
        .block_on(pos_sync_net::enroll(&request))
        .context("enrolling the terminal with the hub")?;
    let tls_dir = pos_sync_net::tls_dir(&dir);
    enrollment.save(&tls_dir)?;
    let tls = TerminalTls::load(&tls_dir)?.context("the enrollment files were not saved")?;
    let audit_key = tls
        .hub
        .audit_key()
        .map_err(|e| anyhow::anyhow!("the hub sent an unusable audit key: {e}"))?;
    store.register_hub(&DeviceRegistered {
        device: tls.hub.hub,
        role: DeviceRole::Hub,
        branch: identity.branch.clone(),
        name: tls.hub.name.clone(),
        public_key: audit_key.0.iter().map(|b| format!("{b:02x}")).collect(),
        cert_fingerprint: Some(tls.hub.ca_fingerprint.clone()),
    })?;
    let config = TerminalClientConfig {
        hub_addr: hub_addr.to_string(),
        server_name: tls.hub.server_name.clone(),
        sync: pos_sync::Config::default(),
        subscriptions: pos_store::HUB_AUTHORITATIVE
            .iter()
            .map(|m| (*m).to_owned())
            .collect(),
        backoff: Backoff::default(),
        connect_timeout: Duration::from_secs(10),
    };
    let identity = TerminalIdentity {
        device: identity.id,
        key,
        tls: tls.client_config()?,
    };
    Ok(Enrolled {
        hub: tls.hub.hub,
        config,
        identity,
    })
}

/// The terminal's sync link, as firmware/src/cmd/sync_link.rs runs it: the client, and the
/// store's head watch looked at every [`HEAD_POLL`].
pub struct Link {
    status: watch::Receiver<SyncStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Start syncing with the hub at `hub_addr` (the enrollment's address by default).
    pub fn start(
        rt: &Runtime,
        enrolled: &Enrolled,
        hub_addr: SocketAddr,
        storage: Arc<dyn TerminalStorage>,
        head: Arc<AtomicU64>,
    ) -> Link {
        let mut config = enrolled.config.clone();
        config.hub_addr = hub_addr.to_string();
        let identity = enrolled.identity.clone();
        let (stop, mut stopped) = watch::channel(false);
        let client = {
            let _runtime = rt.enter();
            TerminalClient::spawn(config, identity, storage)
        };
        let status = client.status();
        let task = rt.spawn(async move {
            let mut poll = tokio::time::interval(HEAD_POLL);
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = poll.tick() => client.appended(head.load(Ordering::Acquire)),
                }
            }
            client.shutdown().await;
        });
        Link { status, stop, task }
    }

    /// Why syncing cannot succeed (the hub refused the terminal's chain), if so.
    fn refused(&self) -> Option<String> {
        self.status.borrow().refused.clone()
    }

    /// The last connection failure, for a message.
    fn last_error(&self) -> String {
        self.status
            .borrow()
            .last_error
            .clone()
            .map_or_else(String::new, |e| format!(" (last sync error: {e})"))
    }

    /// Close the connection and end the client.
    pub fn stop(self, rt: &Runtime) {
        let _ = self.stop.send(true);
        let _ = rt.block_on(self.task);
    }
}

/// Poll `read` (a read-only connection to the hub's store, beside the running hub) every
/// `every` until it holds `origin` up to `seq`; fail when `link` reports that the hub refused
/// the chain, or after `patience`.
pub fn wait_stored(
    link: &Link,
    read: &Store,
    origin: DeviceId,
    seq: u64,
    every: Duration,
    patience: Duration,
) -> Result<OriginState> {
    let deadline = Instant::now() + patience;
    loop {
        let state = read.origin_state(origin)?;
        if state.last_seq >= seq {
            return Ok(state);
        }
        if let Some(why) = link.refused() {
            bail!("the hub refused the terminal's records: {why}");
        }
        if Instant::now() > deadline {
            bail!(
                "the hub stored the terminal's records only up to seq {} of {seq} within {} s{}",
                state.last_seq,
                patience.as_secs(),
                link.last_error()
            );
        }
        std::thread::sleep(every);
    }
}

/// Copy a closed data dir (files and the tls/ directory), keeping the owner-only permissions.
pub fn copy_data_dir(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(to)
        .with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_data_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

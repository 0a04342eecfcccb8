//! `pos hub ...`: run the branch hub's sync server, create enrollment codes, list and revoke
//! devices.
//!
//! The data dir is owned (flock) by the running hub, and a second process cannot write it:
//! `pos hub enroll-code` and `pos hub devices revoke` therefore work only while the hub is
//! stopped (they say so). `pos hub devices list` only reads, and works beside a running hub.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pos_audit::{Checkpoint, Event};
use pos_core::{DeviceId, DeviceRole, Hlc};
use pos_store::{DataDirLock, EnrollRefusal, PeerStatus, Store, StoreError};
use pos_sync::{BatchRequest, OriginState, VerifiedBatch};
use pos_sync_net::enroll::{CodeKey, EnrollRefused};
use pos_sync_net::{
    CertStatus, DeviceDirectory, EnrolledDevice, EnrollmentBook, Fingerprint, HubEnrollment,
    HubNames, HubPki, HubServer, HubServerConfig, HubServices, HubStorage, Notice, StorageError,
};

use crate::cmd::user::{authenticate, refused};
use crate::context::Context;
use crate::secrets::SecretInput;
use crate::timefmt;

const HUB_HELP: &str = "\
The hub listens on one TLS 1.3 port for enrolled terminals (mutual authentication) and for \
enrollments. Stop it with Ctrl-C or SIGTERM.

While the hub runs it owns the data dir: create enrollment codes (`pos hub enroll-code`) and \
revoke devices (`pos hub devices revoke`) with the hub stopped, then start it again. \
`pos hub devices list` works beside a running hub.

Examples:
  pos init --role hub --data-dir /var/lib/pos-hub --name hub
  echo 'admin-pass' | pos hub enroll-code --as admin --data-dir /var/lib/pos-hub
  pos hub --headless --listen 0.0.0.0:7443 --data-dir /var/lib/pos-hub
  pos hub devices list --data-dir /var/lib/pos-hub";

const ACTOR_HELP: &str = "\
Standard input: the actor's secret, then their TOTP code (an empty line if they have none). \
Needs the hub stopped: the running hub owns the data dir.";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = HUB_HELP)]
pub struct HubArgs {
    #[command(subcommand)]
    pub command: Option<HubCommand>,
    /// Address to listen on (port 0 picks a free one; the address is logged).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7443")]
    pub listen: SocketAddr,
    /// Run without the manager display (the only mode for now).
    #[arg(long)]
    pub headless: bool,
}

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Create a one-time enrollment code for a new terminal (hub stopped; actor's secret on
    /// stdin).
    #[command(after_help = ACTOR_HELP)]
    EnrollCode(EnrollCodeArgs),
    /// The terminals this hub knows: list, revoke.
    #[command(subcommand)]
    Devices(DevicesCommand),
}

#[derive(Debug, Args)]
pub struct EnrollCodeArgs {
    /// The user doing this (needs the device-enroll permission); their secret comes from stdin.
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
    /// Minutes until the code expires.
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub ttl_min: u64,
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Devices with their sync status: id, name, role, status, last seen, waiting, skew.
    List {
        /// One JSON object per device, as an array.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device (hub stopped; actor's secret on stdin): it may no longer sync.
    #[command(after_help = ACTOR_HELP)]
    Revoke {
        /// The device id (from `pos hub devices list`).
        id: DeviceId,
        /// The user doing this (needs the device-enroll permission).
        #[arg(long = "as", value_name = "ACTOR")]
        actor: String,
        /// Why (recorded in the audit log).
        #[arg(long, value_name = "TEXT", default_value = "revoked by the manager")]
        reason: String,
    },
}

pub fn run(ctx: &Context, args: HubArgs) -> anyhow::Result<()> {
    require_hub(ctx)?;
    match args.command {
        None => serve(ctx, args.listen, args.headless),
        Some(HubCommand::EnrollCode(a)) => enroll_code(ctx, a),
        Some(HubCommand::Devices(DevicesCommand::List { json })) => list(ctx, json),
        Some(HubCommand::Devices(DevicesCommand::Revoke { id, actor, reason })) => {
            revoke(ctx, id, &actor, &reason)
        }
    }
}

fn require_hub(ctx: &Context) -> anyhow::Result<()> {
    let identity = Store::read_identity(&ctx.data_dir)
        .with_context(|| format!("cannot read the data dir {}", ctx.data_dir.display()))?;
    if identity.role != DeviceRole::Hub {
        anyhow::bail!(
            "{} is a {} data dir, not a hub's (create one with `pos init --role hub`)",
            ctx.data_dir.display(),
            identity.role
        );
    }
    Ok(())
}

/// Open the hub's store for a small write; a running hub holds the data dir.
fn open_for_write(ctx: &Context) -> anyhow::Result<Store> {
    match Store::open(&ctx.data_dir, ctx.store_options()) {
        Ok(store) => Ok(store),
        Err(StoreError::Locked { holder, .. }) => anyhow::bail!(
            "the hub is running{holder} and owns {}: stop it (Ctrl-C or SIGTERM), run this \
             command, then start the hub again",
            ctx.data_dir.display()
        ),
        Err(e) => {
            Err(e).with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))
        }
    }
}

fn enroll_code(ctx: &Context, args: EnrollCodeArgs) -> anyhow::Result<()> {
    let mut store = open_for_write(ctx)?;
    let mut input = SecretInput::from_stdin()?;
    let actor = authenticate(&mut store, &args.actor, &mut input, ctx)?;
    let code = store
        .create_enroll_code(&actor, Duration::from_secs(args.ttl_min.saturating_mul(60)))
        .map_err(refused)?;
    println!("Enrollment code: {}", code.code);
    println!(
        "Expires: {} (single use)",
        timefmt::local(Hlc::from_parts(code.expires_ms, 0))
    );
    println!(
        "On the terminal: pos enroll --hub HUB_ADDRESS:PORT --code {}",
        code.code
    );
    Ok(())
}

fn revoke(ctx: &Context, id: DeviceId, actor: &str, reason: &str) -> anyhow::Result<()> {
    let mut store = open_for_write(ctx)?;
    let mut input = SecretInput::from_stdin()?;
    let actor = authenticate(&mut store, actor, &mut input, ctx)?;
    store.revoke_device(&actor, id, reason).map_err(refused)?;
    println!("Revoked device {id}: it can no longer sync with this hub.");
    Ok(())
}

fn status_str(status: PeerStatus) -> &'static str {
    match status {
        PeerStatus::Online => "online",
        PeerStatus::Offline => "offline",
        PeerStatus::Revoked => "revoked",
        PeerStatus::Held => "held",
    }
}

fn list(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let store = Store::open_read_only(&ctx.data_dir)
        .with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))?;
    let rows = store.sync_status().context("cannot read the sync status")?;
    if json {
        let out: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.device.to_string(),
                    "name": r.name,
                    "role": r.role.to_string(),
                    "status": status_str(r.status),
                    "last_seen_ms": r.last_seen_ms,
                    "waiting": r.waiting,
                    "stored_seq": r.stored_seq,
                    "acked_seq": r.acked_seq,
                    "clock_skew_ms": r.clock_skew_ms,
                    "cert_fingerprint": r.cert_fingerprint,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No devices enrolled yet (create a code with `pos hub enroll-code`).");
        return Ok(());
    }
    println!(
        "{:<36}  {:<16}  {:<8}  {:<8}  {:<19}  {:>7}  {:>8}",
        "ID", "NAME", "ROLE", "STATUS", "LAST SEEN", "WAITING", "SKEW"
    );
    for r in rows {
        let seen = r
            .last_seen_ms
            .map(|ms| timefmt::local(Hlc::from_parts(ms, 0)))
            .unwrap_or_else(|| "never".into());
        let waiting = r
            .waiting
            .map(|w| w.to_string())
            .unwrap_or_else(|| "-".into());
        let skew = r
            .clock_skew_ms
            .map(|s| format!("{s}ms"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<36}  {:<16}  {:<8}  {:<8}  {:<19}  {:>7}  {:>8}",
            r.device.to_string(),
            r.name,
            r.role.to_string(),
            status_str(r.status),
            seen,
            waiting,
            skew
        );
    }
    Ok(())
}

// ----- the running hub -----

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The hub's Store shared by the server's blocking tasks (Store is Send, not Sync).
struct Shared {
    store: Mutex<Store>,
    /// Remote HLCs seen while the store was busy; merged at the next lock.
    pending_hlc: AtomicU64,
    /// The store's HLC at the last lock (for the quick clock calls).
    last_hlc: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let pending = self.pending_hlc.swap(0, Ordering::AcqRel);
        if pending != 0 {
            store.merge_hlc(Hlc::from_raw(pending));
        }
        store
    }

    fn unlock(&self, store: MutexGuard<'_, Store>) {
        self.last_hlc
            .fetch_max(store.hlc_now().raw(), Ordering::AcqRel);
        drop(store);
    }

    fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = self.lock();
        let out = f(&mut store);
        self.unlock(store);
        out
    }
}

fn storage_err(e: impl std::fmt::Display) -> StorageError {
    StorageError(e.to_string())
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
            Notice::Connected { addr, .. } => {
                tracing::info!(%device, %addr, "terminal connected");
                s.note_seen(device, now, None)
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
#[derive(Default)]
struct Directory {
    /// device → (certificate fingerprint hex, revoked)
    devices: RwLock<HashMap<DeviceId, (Option<String>, bool)>>,
}

impl Directory {
    fn refresh(&self, store: &Store) -> anyhow::Result<()> {
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
            if let Err(e) = self.directory.refresh(s) {
                tracing::warn!(error = %e, "cannot refresh the device directory");
            }
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

fn serve(ctx: &Context, listen: SocketAddr, headless: bool) -> anyhow::Result<()> {
    if !headless {
        eprintln!("The manager display comes in a later release (issue 10); running headless.");
    }
    let store = open_for_write(ctx)?;
    let identity = store.identity().clone();
    // The server signs master data with the hub's audit key: load our own copy of it.
    let (_, key) = DataDirLock::shared(&ctx.data_dir)
        .and_then(|lock| lock.load_identity())
        .context("cannot load the hub's signing key")?;
    let names = HubNames {
        dns: Vec::new(),
        ips: if listen.ip().is_unspecified() {
            Vec::new()
        } else {
            vec![listen.ip()]
        },
    };
    let pki = HubPki::load_or_create(&pos_sync_net::tls_dir(&ctx.data_dir), identity.id, &names)
        .context("cannot load or create the branch CA")?;
    let directory = Arc::new(Directory::default());
    directory
        .refresh(&store)
        .context("cannot read the device registry")?;
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
            device_validity_days: 825,
        }),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = HubServer::bind(listen, HubServerConfig::default(), services)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let handle = server.spawn().context("cannot start the hub server")?;
        let addr = handle.local_addr();
        tracing::info!(%addr, hub = %identity.id, name = %identity.name, "hub running");
        // Tests and scripts read the bound address (port 0) from this line.
        println!("hub listening on {addr}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        let mut refresh = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
                _ = refresh.tick() => {
                    let shared = shared.clone();
                    let directory = directory.clone();
                    let head = tokio::task::spawn_blocking(move || {
                        shared.with(|s| {
                            if let Err(e) = directory.refresh(s) {
                                tracing::warn!(error = %e, "cannot refresh the device directory");
                            }
                            s.head().0
                        })
                    })
                    .await;
                    if let Ok(seq) = head {
                        handle.own_head_changed(seq);
                    }
                }
            }
        }
        tracing::info!("stopping the hub");
        handle.shutdown().await;
        tracing::info!("hub stopped");
        anyhow::Ok(())
    })
}

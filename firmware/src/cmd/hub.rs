//! `pos hub ...`: run the branch hub's sync server, create enrollment codes, list and revoke
//! devices.
//!
//! The data dir is owned (flock) by the running hub, and a second process cannot write it:
//! while the hub runs, `pos hub enroll-code` and `pos hub devices revoke` ask it through its
//! control socket (see `hub_control`); with the hub stopped they open the store themselves.
//! `pos hub devices list` only reads, and works beside a running hub.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pos_core::{DeviceId, DeviceRole, Hlc};
use pos_store::{DataDirLock, DeviceSyncStatus, PeerStatus, Store, StoreError};
use pos_sync_net::{HubNames, HubPki, HubServerConfig};
use pos_sync_store::RunningHub;

use crate::backup_jobs;
#[path = "hub_display.rs"]
mod display;
use crate::cmd::hub_control::{self, Reply};
use crate::cmd::user::{authenticate, refused};
use crate::context::{CheckFailed, Context};
use crate::secrets::SecretInput;
use crate::timefmt;

const HUB_HELP: &str = "\
The hub listens on one TLS 1.3 port for enrolled terminals (mutual authentication) and for \
enrollments. Stop it with Ctrl-C or SIGTERM.

Without --headless the manager display shows (a window under X11/Wayland, full screen on the \
panel through KMS; --backend picks one): a manager, administrator or auditor logs in and sees \
the dashboard, terminals, alerts, users, devices, backups and reports. Closing the window \
stops the hub. With no display at all the hub runs headless.

Enrollment codes (`pos hub enroll-code`) and revocations (`pos hub devices revoke`) work \
whether the hub runs or not: a running hub takes them through its control socket \
(DATA_DIR/hub.sock) and closes a revoked device's connection at once. `pos hub devices list` \
shows each terminal's sync state and raises OFFLINE-ALERT for a terminal out of touch longer \
than [hub] offline_alert_min.

Examples:
  pos init --role hub --data-dir /var/lib/pos-hub --name hub
  echo 'admin-pass' | pos hub enroll-code --as admin --data-dir /var/lib/pos-hub
  pos hub --headless --listen 0.0.0.0:7443 --data-dir /var/lib/pos-hub
  pos hub devices list --data-dir /var/lib/pos-hub";

const ACTOR_HELP: &str = "\
Standard input: the actor's secret, then their TOTP code (an empty line if they have none).";

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, after_help = HUB_HELP)]
pub struct HubArgs {
    #[command(subcommand)]
    pub command: Option<HubCommand>,
    /// Address to listen on (port 0 picks a free one; the address is printed). Default: the
    /// config's [hub] listen (0.0.0.0:7443).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Run without the manager display. Without it the display shows in a window (DISPLAY
    /// or WAYLAND_DISPLAY set) or full screen on the panel (/dev/dri/card*); with neither the
    /// hub runs headless.
    #[arg(long, conflicts_with = "backend")]
    pub headless: bool,
    /// Where to show the manager display: winit (desktop window), kms (full screen) or
    /// headless (the display's event loop runs, nothing is drawn; tests). Default: winit when
    /// DISPLAY/WAYLAND_DISPLAY is set, else kms when a /dev/dri/card* exists, else none.
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<pos_ui::backend::Backend>,
    /// The display's layout: 1280x800 or 1024x768 (under kms the panel's own size).
    #[arg(long, value_name = "WxH", default_value = "1280x800")]
    pub size: pos_ui::backend::ScreenSize,
}

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Create a one-time enrollment code for a new terminal (actor's secret on stdin).
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
    /// Revoke a device (actor's secret on stdin): it may no longer sync.
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
        None => {
            let listen = match args.listen {
                Some(addr) => addr,
                // Validated when the config was loaded.
                None => ctx.config.hub.listen.parse().with_context(|| {
                    format!("[hub] listen {:?} is not an address", ctx.config.hub.listen)
                })?,
            };
            let display = match (args.headless, args.backend) {
                (true, _) => None,
                (false, Some(b)) => Some(
                    pos_ui::backend::choose(Some(b), &pos_ui::backend::Environment::default())
                        .map_err(|e| anyhow::anyhow!(e))?,
                ),
                (false, None) => display::choose_backend(),
            };
            serve(ctx, listen, display.map(|b| (b, args.size)))
        }
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

/// Where a small write to the hub's store goes.
enum Access {
    /// The hub is stopped: this process opened the store.
    Direct(Box<Store>),
    /// The hub runs and owns the data dir: ask it through its control socket.
    Running,
}

fn open_for_write(ctx: &Context) -> anyhow::Result<Access> {
    match Store::open(&ctx.data_dir, ctx.store_options()) {
        Ok(store) => Ok(Access::Direct(Box::new(store))),
        Err(StoreError::Locked { .. }) => Ok(Access::Running),
        Err(e) => {
            Err(e).with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))
        }
    }
}

fn ask_running_hub(ctx: &Context, request: &hub_control::Request) -> anyhow::Result<Reply> {
    match hub_control::call(&ctx.data_dir, request)? {
        Reply::Refused(why) => Err(CheckFailed(why).into()),
        Reply::Failed(why) => anyhow::bail!("the hub could not do it: {why}"),
        reply => Ok(reply),
    }
}

fn enroll_code(ctx: &Context, args: EnrollCodeArgs) -> anyhow::Result<()> {
    let access = open_for_write(ctx)?;
    let mut input = SecretInput::from_stdin()?;
    let (code, expires_ms) = match access {
        Access::Direct(mut store) => {
            let actor = authenticate(&mut store, &args.actor, &mut input, ctx)?;
            let code = store
                .create_enroll_code(&actor, Duration::from_secs(args.ttl_min.saturating_mul(60)))
                .map_err(refused)?;
            (code.code.clone(), code.expires_ms)
        }
        Access::Running => {
            let request = hub_control::Request::EnrollCode {
                actor: hub_control::Actor::from_input(&args.actor, &mut input)?,
                ttl_min: args.ttl_min,
            };
            match ask_running_hub(ctx, &request)? {
                Reply::EnrollCode { code, expires_ms } => (code, expires_ms),
                other => anyhow::bail!("unexpected answer from the hub: {other:?}"),
            }
        }
    };
    println!("Enrollment code: {code}");
    println!(
        "Expires: {} (single use)",
        timefmt::local(Hlc::from_parts(expires_ms, 0))
    );
    println!("On the terminal: pos enroll --hub HUB_ADDRESS:PORT --code {code}");
    Ok(())
}

fn revoke(ctx: &Context, id: DeviceId, actor: &str, reason: &str) -> anyhow::Result<()> {
    let access = open_for_write(ctx)?;
    let mut input = SecretInput::from_stdin()?;
    match access {
        Access::Direct(mut store) => {
            let actor = authenticate(&mut store, actor, &mut input, ctx)?;
            store.revoke_device(&actor, id, reason).map_err(refused)?;
            println!("Revoked device {id}: it can no longer sync with this hub.");
        }
        Access::Running => {
            let request = hub_control::Request::Revoke {
                actor: hub_control::Actor::from_input(actor, &mut input)?,
                device: id,
                reason: reason.to_owned(),
            };
            match ask_running_hub(ctx, &request)? {
                Reply::Revoked { disconnected } => {
                    println!("Revoked device {id}: it can no longer sync with this hub.");
                    if disconnected {
                        println!("Its sync connection was closed.");
                    }
                }
                other => anyhow::bail!("unexpected answer from the hub: {other:?}"),
            }
        }
    }
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
    let limit_ms = u64::from(ctx.config.hub.offline_alert_min) * 60_000;
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
                    "out_of_touch_ms": r.out_of_touch_ms,
                    "offline_alert": r.offline_alert(limit_ms),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("No devices enrolled yet (create a code with `pos hub enroll-code`).");
        println!("{}", backup_jobs::status_line(ctx));
        return Ok(());
    }
    println!(
        "{:<36}  {:<16}  {:<8}  {:<8}  {:<19}  {:>7}  {:>8}  ALERT",
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
        let mut alerts = Vec::new();
        if r.offline_alert(limit_ms) {
            let min = r.out_of_touch_ms.unwrap_or(0) / 60_000;
            alerts.push(format!("OFFLINE-ALERT ({min} min out of touch)"));
        }
        if r.clock_skew_ms.is_some() {
            alerts.push("CLOCK (set the terminal's time)".to_owned());
        }
        if r.status == PeerStatus::Held {
            alerts.push("HELD (broken or forged chain, see pos audit log --kind security)".into());
        }
        println!(
            "{:<36}  {:<16}  {:<8}  {:<8}  {:<19}  {:>7}  {:>8}  {}",
            r.device.to_string(),
            r.name,
            r.role.to_string(),
            status_str(r.status),
            seen,
            waiting,
            skew,
            alerts.join(", ")
        );
    }
    println!("\n{}", backup_jobs::status_line(ctx));
    Ok(())
}

// ----- the running hub -----

/// Run the hub; with `display` (backend, size) the manager display shows too.
fn serve(
    ctx: &Context,
    listen: SocketAddr,
    display: Option<(pos_ui::backend::Backend, pos_ui::backend::ScreenSize)>,
) -> anyhow::Result<()> {
    let store = match Store::open(&ctx.data_dir, ctx.store_options()) {
        Ok(store) => store,
        Err(StoreError::Locked { holder, .. }) => anyhow::bail!(
            "another process{holder} owns {}: is the hub already running? (stop it first)",
            ctx.data_dir.display()
        ),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))
        }
    };
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let start = HubStart {
        store,
        key,
        pki,
        listen,
    };
    let Some((backend, size)) = display else {
        return runtime.block_on(run_service(ctx, start, None));
    };
    // The display's event loop runs on this (the main) thread; the hub service runs its
    // tokio runtime on another. Closing the window stops the service; Ctrl-C or SIGTERM
    // stops the service, which closes the window.
    std::thread::scope(|scope| {
        let (hub_tx, hub_rx) = std::sync::mpsc::channel();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        let link = DisplayLink {
            hub: hub_tx,
            closed: closed_rx,
        };
        let service = scope.spawn(|| runtime.block_on(run_service(ctx, start, Some(link))));
        let shown = match hub_rx.recv() {
            Ok(hub) => display::show(ctx, backend, size, hub),
            // The service ended before it ran (its error is returned below).
            Err(_) => Ok(()),
        };
        // The display (and its handle on the hub) is gone: the service may shut down.
        let _ = closed_tx.send(());
        let served = service
            .join()
            .map_err(|_| anyhow::anyhow!("the hub service thread panicked"))?;
        served?;
        shown
    })
}

/// What the hub service starts from.
struct HubStart {
    store: Store,
    key: pos_audit::DeviceKey,
    pki: HubPki,
    listen: SocketAddr,
}

/// The service's side of the display: where to hand the running hub, and the display's
/// "closed" (sent, or dropped, once the display let go of the hub).
struct DisplayLink {
    hub: std::sync::mpsc::Sender<Arc<RunningHub>>,
    closed: tokio::sync::oneshot::Receiver<()>,
}

/// The hub service: sync server, control socket, backups and the offline check, until
/// Ctrl-C, SIGTERM or the display's window closes.
async fn run_service(
    ctx: &Context,
    start: HubStart,
    display: Option<DisplayLink>,
) -> anyhow::Result<()> {
    let offline_limit = Duration::from_secs(u64::from(ctx.config.hub.offline_alert_min) * 60);
    let HubStart {
        store,
        key,
        pki,
        listen,
    } = start;
    let hub = RunningHub::start(store, key, pki, listen, HubServerConfig::default()).await?;
    let hub = Arc::new(hub);
    let control = hub_control::listen(
        &ctx.data_dir,
        hub.clone(),
        ctx.account_policy(),
        ctx.engine_config().barcodes,
    )?;
    let addr = hub.local_addr();
    // Watch SIGTERM and SIGINT before saying we listen: whoever reads that line (systemd, a
    // test, a script) may stop us at once, and must get a clean shutdown, not the default
    // action that kills the process.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot watch SIGINT")?;
    // Tests and scripts read the bound address (port 0) from this line.
    println!("hub listening on {addr}");
    let backups = start_backups(ctx, &hub);
    let mut alerts = OfflineAlerts::new(offline_limit);
    let alert_rules = ctx.config.alert_rules();
    let mut check = tokio::time::interval(OFFLINE_CHECK);
    let has_display = display.is_some();
    let closed = match display {
        Some(link) => {
            if link.hub.send(hub.clone()).is_err() {
                tracing::warn!("the manager display is gone");
            }
            Some(link.closed)
        }
        None => None,
    };
    // Resolves when the display let go of the hub (never without a display).
    let closed = async move {
        match closed {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(closed);
    let mut window_closed = false;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = term.recv() => break,
            _ = &mut closed, if !window_closed => {
                tracing::info!("the manager display was closed");
                window_closed = true;
                break;
            }
            _ = check.tick() => {
                let h = hub.clone();
                match tokio::task::spawn_blocking(move || h.with_store(|s| s.sync_status())).await {
                    Ok(Ok(rows)) => alerts.check(&rows),
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the sync status"),
                    Err(e) => tracing::warn!(error = %e, "sync status check failed"),
                }
                let (h, rules) = (hub.clone(), alert_rules.clone());
                let published =
                    tokio::task::spawn_blocking(move || h.with_store(|s| publish_alerts(s, &rules)))
                        .await;
                if let Ok(Err(e)) = published {
                    tracing::warn!(error = %e, "cannot publish the alerts to the terminals");
                }
            }
        }
    }
    tracing::info!("stopping the hub");
    if has_display && !window_closed {
        // Close the window and wait until the display let go of the hub.
        if let Err(e) = pos_ui::backend::Remote::default().quit() {
            tracing::warn!("cannot close the manager display: {e}");
        }
        if tokio::time::timeout(Duration::from_secs(10), &mut closed)
            .await
            .is_err()
        {
            tracing::warn!("the manager display did not close within 10 s");
        }
    }
    if let Some(backups) = backups {
        backups.stop();
    }
    control.abort();
    let _ = control.await;
    let _ = std::fs::remove_file(hub_control::socket_path(&ctx.data_dir));
    match Arc::try_unwrap(hub) {
        Ok(hub) => hub.shutdown().await,
        // A control request still running holds a clone; the process ends anyway and
        // SQLite's last commit is durable.
        Err(_) => tracing::warn!("a control request was still running at shutdown"),
    }
    anyhow::Ok(())
}

/// The hub's scheduled backups (daily and hourly, `[backup]`); a failure is also appended to
/// its audit log as a `backup.failed` event. None when they are off.
///
/// A success is not: a record the hub writes after a backup is missing from it, and the
/// terminals hold the hub's chain, so a hub restored from its newest backup would always be
/// one record behind its terminals' copies (LostHistory, docs/disaster-recovery.md). Successes
/// are in the log and DATA_DIR/backup-status.json.
fn start_backups(ctx: &Context, hub: &Arc<RunningHub>) -> Option<backup_jobs::Jobs> {
    let settings = backup_jobs::settings(ctx, DeviceRole::Hub)?;
    // A weak handle: a backup still running at shutdown must not keep the hub alive.
    let weak = Arc::downgrade(hub);
    let on_outcome = Box::new(move |kind, outcome: &backup_jobs::Outcome| {
        if outcome.is_ok() {
            return;
        }
        let Some(hub) = weak.upgrade() else { return };
        let draft = pos_backup::job::event(kind, outcome);
        if let Err(e) = hub.with_store(|s| s.append(vec![draft])) {
            tracing::warn!(error = %e, "cannot record the backup in the audit log");
        }
    });
    match backup_jobs::start(settings, on_outcome) {
        Ok(jobs) => Some(jobs),
        Err(e) => {
            tracing::error!("ALERT: backup failed: {e:#}");
            None
        }
    }
}

/// Evaluate the alert rules now and publish the result when it differs from what the
/// terminals have: one audited `settings.changed` record per change, none while it stays.
fn publish_alerts(
    store: &mut Store,
    rules: &pos_store::reports::AlertRules,
) -> anyhow::Result<bool> {
    use pos_core::payloads::HUB_ALERTS_SETTING;
    let now = pos_store::now_ms();
    let offset_min = i32::try_from(pos_backup::job::local_offset_ms(now) / 60_000).unwrap_or(0);
    let today = pos_store::reports::Period::local_day(now, offset_min)?;
    let backup = store.backup_state()?;
    let texts: Vec<String> = store
        .alerts(rules, now, today, backup)?
        .into_iter()
        .map(|a| format!("{}: {}", a.subject, a.message))
        .collect();
    let after = serde_json::json!(texts);
    let before = store.setting(HUB_ALERTS_SETTING)?;
    if before.as_ref() == Some(&after) || (before.is_none() && texts.is_empty()) {
        return Ok(false);
    }
    store.append(vec![pos_audit::EventDraft::json(
        pos_core::payloads::SettingChanged::MODULE,
        pos_core::payloads::SettingChanged::KIND,
        &pos_core::payloads::SettingChanged {
            key: HUB_ALERTS_SETTING.into(),
            before,
            after,
        },
    )])?;
    tracing::info!(alerts = texts.len(), "alerts published to the terminals");
    Ok(true)
}

/// How often the running hub looks for terminals out of touch.
const OFFLINE_CHECK: Duration = Duration::from_secs(30);

/// Terminals out of touch longer than the limit, each warned about once until it is back.
struct OfflineAlerts {
    limit_ms: u64,
    raised: HashSet<DeviceId>,
}

impl OfflineAlerts {
    fn new(limit: Duration) -> Self {
        OfflineAlerts {
            limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
            raised: HashSet::new(),
        }
    }

    fn check(&mut self, rows: &[DeviceSyncStatus]) {
        for row in rows.iter().filter(|r| r.role == DeviceRole::Terminal) {
            if row.offline_alert(self.limit_ms) {
                if self.raised.insert(row.device) {
                    tracing::warn!(
                        device = %row.device,
                        name = %row.name,
                        out_of_touch_min = row.out_of_touch_ms.unwrap_or(0) / 60_000,
                        limit_min = self.limit_ms / 60_000,
                        "ALERT: terminal out of touch with the hub (check its network and power)"
                    );
                }
            } else if self.raised.remove(&row.device) {
                tracing::info!(device = %row.device, name = %row.name, "terminal back in touch");
            }
        }
    }
}

//! `pos hub ...`: run the branch hub's sync server, create enrollment codes, list and revoke
//! devices.
//!
//! The data dir is owned (flock) by the running hub, and a second process cannot write it:
//! `pos hub enroll-code` and `pos hub devices revoke` therefore work only while the hub is
//! stopped (they say so). `pos hub devices list` only reads, and works beside a running hub.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pos_core::{DeviceId, DeviceRole, Hlc};
use pos_store::{DataDirLock, PeerStatus, Store, StoreError};
use pos_sync_net::{HubNames, HubPki, HubServerConfig};
use pos_sync_store::RunningHub;

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let hub = RunningHub::start(store, key, pki, listen, HubServerConfig::default()).await?;
        let addr = hub.local_addr();
        // Tests and scripts read the bound address (port 0) from this line.
        println!("hub listening on {addr}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot watch SIGTERM")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping the hub");
        hub.shutdown().await;
        anyhow::Ok(())
    })
}

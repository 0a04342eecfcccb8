//! `pos demo`: a hub and two terminals syncing over real mutual TLS on loopback. The hub runs
//! the real sync service (`RunningHub`, as `pos hub` does) on 127.0.0.1 and a free port. It owns
//! the master data (DESIGN.md: users, roles, catalogue, settings are hub-authoritative): the
//! demo staff, tax rates, catalogue with quick keys and receipt footer are made on the hub
//! (`hub_setup`). The terminals enroll with one-time codes over the real enrollment exchange
//! (first run only), then receive that master data over their sync link before they trade
//! (`receive_master_data`); they create no user and no product of their own. Then
//! terminal-1 trades a scripted day through the real engine (logins, scans, discounts with
//! approvals, a void, a refund, a post-void, split payments, cash moves, shift close with Z
//! report) and terminal-2 a few sales, each syncing through `TerminalClient` once its sales
//! are committed. The demo waits until the hub has stored both logs, then every log is
//! verified. In window mode terminal-1 keeps syncing live through the terminal app's link.
//!
//! The demo users' secrets below are for this demo only and are printed so people can try
//! `pos login` on the result; a real shop's users get one-time secrets from `pos user add`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use pos_audit::EventDraft;
use pos_core::payloads::{DeviceRegistered, SettingChanged};
use pos_core::sale::barcode::check_digit;
use pos_core::sale::events::{TaxRateSaved, CATALOGUE as CATALOGUE_MODULE};
use pos_core::sale::{
    Discount, LineNo, Money, Product, Quantity, RefundRequest, TaxRate, Tender, Unit,
};
use pos_core::{DeviceId, DeviceRole, ProductId};
use pos_device_sim::SimPrinter;
use pos_drivers::escpos::Layout;
use pos_drivers::{EscPosPrinter, TcpTimeouts, TcpTransport};
use pos_engine::{Credentials, Engine, PrintProgress};
use pos_store::{DataDirLock, Store, StoreError};
use pos_sync_net::{
    Backoff, EnrollRequest, EnrollmentCode, HubNames, HubPki, HubServerConfig, SyncStatus,
    TerminalClient, TerminalClientConfig, TerminalIdentity, TerminalTls,
};
use pos_sync_store::{OwnedTerminalStore, RunningHub};
use pos_ui::backend::{self, Backend, Environment, Options, ScreenSize};

use crate::cmd::sync_link;
use crate::cmd::terminal::{self as term, Signals};
use crate::context::{open_at, Context};

#[derive(Debug, Args)]
#[command(
    after_help = "What runs: the demo hub is the real hub sync service (`pos hub`) on \
127.0.0.1 and a free port (printed). It owns the master data: the staff, the catalogue with \
its tax rates and quick keys, and the settings are made there. Two terminals, terminal-1 and \
terminal-2, enroll with it over TLS with one-time codes the demo's manager creates on the hub, \
and receive the hub's users and catalogue over their sync link before they trade (their \
cashiers log in with the hub's users). terminal-1 trades a scripted day (--sales N) and \
terminal-2 rings up a few sales; each then syncs its log to the hub over mutual TLS (selling \
never waits on the network). The demo waits until the hub has \
stored both logs, shows the hub's view (stored seq against each terminal's head), verifies \
every log and stops the hub.

Without --data-dir the demo works in a new folder under the system's temporary directory and \
prints where. Run it again with the same --data-dir to trade another day on the same devices: \
they are enrolled already and reconnect to the hub's new port.

Without --headless, and when a display exists (DISPLAY or WAYLAND_DISPLAY), terminal-1 then \
opens in a window on the demo's store, with a simulated network printer (receipts are printed \
here) and a simulated serial scanner: type a barcode here and press Enter to scan it. Log in \
with a cashier's name and PIN (printed below). The window keeps syncing with the running hub, \
so its sales reach the hub. Beside it the hub's manager display opens on the running demo hub \
(log in as the manager maria: dashboard, terminals, alerts, users, devices, backups, reports). \
Closing either window ends the demo and stops the hub."
)]
pub struct DemoArgs {
    /// Run without any window: only the scripted sales and the sync. Without it the demo then
    /// opens terminal-1 in a window (when a display exists) on the simulated printer and
    /// scanner, syncing live with the hub.
    #[arg(long)]
    pub headless: bool,
    /// How many sales the cashiers ring up during the day.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub sales: u32,
    /// Size of the terminal window: 1280x800, 1024x768 or 800x1280 (portrait).
    #[arg(long, value_name = "WxH", default_value = "1280x800")]
    pub size: ScreenSize,
    /// Close the terminal window by itself after this many milliseconds (unattended runs).
    #[arg(long, value_name = "MS")]
    pub exit_after_ms: Option<u64>,
}

const ADMIN_PASSWORD: &str = "Tangerine-Harbor-2026";
const MANAGER: (&str, &str) = ("maria", "Demo-Manager-Pass-2026");
const SUPERVISOR: (&str, &str) = ("sam", "917362");
const CASHIERS: [(&str, &str); 2] = [("alice", "481516"), ("bob", "230742")];

pub fn run(ctx: &Context, args: DemoArgs) -> anyhow::Result<()> {
    // Decided first: the window mode blocks SIGINT/SIGTERM before any thread starts.
    let window = if args.headless {
        None
    } else {
        window_or_fallback(args.size)
    };
    let root = if ctx.data_dir_given {
        ctx.data_dir.clone()
    } else {
        std::env::temp_dir().join(format!("3plugpos-demo-{}", pos_store::now_ms()))
    };
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create demo folder {}", root.display()))?;
    println!("Demo data in {}", root.display());

    let hub_dir = root.join("hub");
    let mut hub_store = open_or_init(ctx, &hub_dir, DeviceRole::Hub, "hub")?;
    hub_setup(&mut hub_store, ctx)?;
    let hub = DemoHub::start(hub_store, &hub_dir)?;
    println!(
        "Hub listening on {} (TLS 1.3, terminals authenticated by their certificates)",
        hub.addr
    );

    let mut cfg = ctx.engine_config();
    // The demo shop rounds cash to 0.05 and has its own name, unless the config says otherwise.
    if ctx.config.sale == pos_config::SaleSection::default() {
        cfg.rounding.step = Money(5);
        cfg.header = vec!["Corner Bakery & Grocer".into(), "1 Market Street".into()];
        cfg.footer = vec!["Thank you for shopping local!".into()];
    }
    // The terminals create no users and no catalogue: they enroll, then take the hub's.
    let mut enrolling = Vec::new();
    for n in 1..=2 {
        let label = format!("terminal-{n}");
        let dir = root.join(&label);
        let mut store = open_or_init(ctx, &dir, DeviceRole::Terminal, &format!("till-{n}"))?;
        let tls = enrolled(ctx, &mut store, &label, &hub)?;
        enrolling.push((label, store, tls));
    }
    let stores = receive_master_data(&hub, enrolling)?;
    let mut terminals = Vec::new();
    for (label, store, tls) in stores {
        let mut engine = Engine::new(store, cfg.clone());
        first_delivery(&mut engine).with_context(|| label.clone())?;
        terminals.push((label, engine, tls));
    }
    let (label2, mut engine2, tls2) = terminals.pop().context("two terminals were set up")?;
    let (label1, mut engine1, tls1) = terminals.pop().context("two terminals were set up")?;

    // Both terminals sell on their own, offline first: a terminal starts syncing when its
    // sales are committed, and terminal-2 (a few sales) syncs while terminal-1 still trades.
    let layout = crate::cmd::devices::receipt_layout(&ctx.config.devices)?;
    let sim = SimPrinter::start().context("cannot start the printer simulator")?;
    let handle = hub.runtime.handle().clone();
    let (synced2, synced1) = std::thread::scope(|scope| {
        let second = std::thread::Builder::new()
            .name("demo-terminal-2".into())
            .spawn_scoped(scope, || {
                let sales = u64::from(args.sales.div_ceil(4).max(1));
                let printer =
                    SimPrinter::start().context("cannot start terminal-2's printer simulator")?;
                let mut receipts = Vec::new();
                for i in 0..sales {
                    receipts.push(sim_sale(&mut engine2, i).with_context(|| label2.clone())?);
                }
                let printed =
                    print_queue(&mut engine2, &layout, &printer).with_context(|| label2.clone())?;
                println!(
                    "{label2}: {sales} sale(s) (receipts #{} to #{}), {printed} receipt(s) printed \
                     on tcp://{}; syncing with the hub",
                    receipts.first().copied().unwrap_or_default(),
                    receipts.last().copied().unwrap_or_default(),
                    printer.addr()
                );
                Syncing::start(&handle, &label2, engine2.into_store(), &tls2, hub.addr)
            })
            .context("cannot start terminal-2's thread");
        let first = trade_day(&mut engine1, args.sales)
            .and_then(|()| print_receipts(&mut engine1, &layout, &sim))
            .with_context(|| label1.clone());
        let second = second.and_then(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("terminal-2's thread panicked"))?
        });
        let first = first.and_then(|()| {
            println!("{label1}: the day is committed; syncing with the hub");
            Syncing::start(&handle, &label1, engine1.into_store(), &tls1, hub.addr)
        });
        (second, first)
    });
    let mut synced1 = synced1?;
    let synced2 = synced2?;
    println!("Waiting for the hub to store both terminals' logs (mutual TLS on loopback):");
    wait_synced(&[&synced1, &synced2], SYNC_DEADLINE)?;
    hub.show_view(&[&synced1, &synced2])?;

    if let Some(signals) = window {
        let store = synced1.stop(&handle)?;
        let dir = store.dir().to_path_buf();
        let engine = Engine::new(store, cfg.clone());
        let link = LiveLink {
            key: signing_key(&dir)?,
            tls: TerminalTls::load(&pos_sync_net::tls_dir(&dir))
                .context("cannot read terminal-1's enrollment")?
                .context("terminal-1's enrollment files are missing")?,
            addr: hub.addr.to_string(),
        };
        let display = HubDisplay {
            hub: Arc::clone(&hub.hub),
            dir: hub_dir.clone(),
        };
        window_session(ctx, engine, layout, &sim, &args, signals, link, display)?;
        // The window synced live; what its last moments sold is sent now.
        let store = open_at(&dir, ctx.store_options())?;
        synced1 = Syncing::start(&handle, &label1, store, &tls1, hub.addr)?;
        println!("Waiting for the hub to store what was sold in the window:");
        wait_synced(&[&synced1], SYNC_DEADLINE)?;
        hub.show_view(&[&synced1, &synced2])?;
    }

    hub.verify()?;
    let till1 = synced1.stop(&handle)?;
    let till2 = synced2.stop(&handle)?;
    hub.shutdown();
    for (label, store) in [(&label1, &till1), (&label2, &till2)] {
        let report = store
            .verify()
            .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        println!(
            "{label:<11} OK {} records, head {}",
            report.records(),
            store.head().1
        );
    }
    println!("Stock on terminal-1 (top 5):");
    let mut levels = till1.stock_levels()?;
    levels.sort_by_key(|(_, q)| *q);
    for (item, qty) in levels.iter().take(5) {
        println!("  {item:<12} {}", Quantity(*qty));
    }
    let till = root.join("terminal-1");
    println!(
        "Demo users, the hub's, synced to the terminals (demo secrets): {} / {}; supervisor {} \
         PIN {}; cashiers {} PIN {}, {} PIN {}",
        MANAGER.0,
        MANAGER.1,
        SUPERVISOR.0,
        SUPERVISOR.1,
        CASHIERS[0].0,
        CASHIERS[0].1,
        CASHIERS[1].0,
        CASHIERS[1].1
    );
    println!("Try:");
    println!("  pos audit log --data-dir {} --kind sale", till.display());
    println!("  pos audit verify --data-dir {} --verbose", till.display());
    println!(
        "  echo {} | pos login --user {} --data-dir {}",
        CASHIERS[0].1,
        CASHIERS[0].0,
        till.display()
    );
    println!(
        "  pos catalogue list --data-dir {}   (the hub's catalogue, received by sync)",
        till.display()
    );
    println!("  pos hub devices list --data-dir {}", hub_dir.display());
    println!(
        "  pos audit verify --data-dir {} --verbose",
        hub_dir.display()
    );
    Ok(())
}

// ----- the network: the demo hub and the terminals' sync -----

/// How long the demo waits for the hub to store the terminals' logs.
const SYNC_DEADLINE: Duration = Duration::from_secs(30);
/// How long an enrollment code made by the demo lives.
const CODE_TTL: Duration = Duration::from_secs(600);

/// The demo hub: the real sync service (`pos hub`) on 127.0.0.1 and a free port, on its own
/// runtime (which also runs the terminals' sync tasks).
struct DemoHub {
    runtime: tokio::runtime::Runtime,
    /// Shared with the manager display of the window mode while it is open.
    hub: Arc<RunningHub>,
    id: DeviceId,
    addr: SocketAddr,
}

impl DemoHub {
    fn start(store: Store, dir: &Path) -> anyhow::Result<DemoHub> {
        let id = store.identity().id;
        // The server signs master data with the hub's audit key: our own copy of it.
        let key = signing_key(dir)?;
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let names = HubNames {
            dns: Vec::new(),
            ips: vec![listen.ip()],
        };
        let pki = HubPki::load_or_create(&pos_sync_net::tls_dir(dir), id, &names)
            .context("cannot load or create the demo hub's branch CA")?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("demo-sync")
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let hub = runtime
            .block_on(RunningHub::start(
                store,
                key,
                pki,
                listen,
                HubServerConfig::default(),
            ))
            .context("cannot start the demo hub")?;
        let addr = hub.local_addr();
        Ok(DemoHub {
            runtime,
            hub: Arc::new(hub),
            id,
            addr,
        })
    }

    /// A one-time enrollment code, made by the demo's manager on the running hub.
    fn enroll_code(&self, ctx: &Context) -> anyhow::Result<EnrollmentCode> {
        let policy = ctx.account_policy();
        let code = self
            .hub
            .with_store(|s| -> anyhow::Result<_> {
                let manager = s.authenticate(MANAGER.0, MANAGER.1, None, &policy)?;
                Ok(s.create_enroll_code(&manager, CODE_TTL)?)
            })
            .context("cannot create an enrollment code on the hub")?;
        EnrollmentCode::parse(&code.code)
            .map_err(|_| anyhow::anyhow!("the hub made an enrollment code it cannot read"))
    }

    /// What the hub has stored of each terminal, beside the terminal's own head.
    fn show_view(&self, terminals: &[&Syncing]) -> anyhow::Result<()> {
        let (rows, not_applied) = self
            .hub
            .with_store(|s| -> pos_store::Result<_> { Ok((s.sync_status()?, s.not_applied()?)) })
            .context("cannot read the hub's sync status")?;
        println!("The hub's view (as `pos hub devices list` shows it):");
        for t in terminals {
            let row = rows
                .iter()
                .find(|r| r.device == t.device)
                .with_context(|| format!("the hub does not know {}", t.label))?;
            let waiting = row
                .waiting
                .map(|w| w.to_string())
                .unwrap_or_else(|| "-".into());
            println!(
                "  {:<11} ({}) stored seq {} of its head {}, waiting {waiting}",
                t.label, row.name, row.stored_seq, t.head
            );
        }
        // On the hub, a terminal's record of a hub-authoritative module is kept in the log
        // without being applied (the conflict policy). Every enrolled terminal writes two: its
        // own registration and its record of the hub it enrolled with (the hub's registry has
        // both already). Anything else left unapplied would be a terminal's own master data, or
        // a record a projection refused (a warning named it when it arrived).
        let (devices, other): (Vec<_>, Vec<_>) = not_applied
            .iter()
            .partition(|n| n.module == DeviceRegistered::MODULE);
        if other.is_empty() {
            println!(
                "  nothing left unapplied: the hub applied every record the terminals sent, \
                 except their {} records of their own device registry, which it keeps in its \
                 log as the policy says (the hub's registry is authoritative)",
                devices.len()
            );
        } else {
            let mut modules: Vec<&str> = other.iter().map(|n| n.module.as_str()).collect();
            modules.sort_unstable();
            modules.dedup();
            println!(
                "  {} records from the terminals (modules {}) are kept in the hub's log but not \
                 applied: the hub is authoritative for users, catalogue, settings and devices, or \
                 a projection refused them (a warning named each refusal as it arrived)",
                other.len(),
                modules.join(", ")
            );
        }
        Ok(())
    }

    /// Verify the hub's log: its own chain and every terminal's.
    fn verify(&self) -> anyhow::Result<()> {
        let (report, devices, head) = self.hub.with_store(|s| -> anyhow::Result<_> {
            let report = s.verify().map_err(|e| anyhow::anyhow!("hub: {e}"))?;
            Ok((report, s.devices()?, s.head().1))
        })?;
        let chains: Vec<String> = report
            .chains
            .iter()
            .map(|c| {
                let name = devices
                    .iter()
                    .find(|d| d.device == c.origin)
                    .map_or_else(|| c.origin.to_string(), |d| d.name.clone());
                format!("{name} {}", c.records)
            })
            .collect();
        println!(
            "hub         OK {} records in {} chains ({}), head {head}",
            report.records(),
            report.chains.len(),
            chains.join(", ")
        );
        Ok(())
    }

    /// Close every connection and stop listening.
    fn shutdown(self) {
        match Arc::try_unwrap(self.hub) {
            Ok(hub) => self.runtime.block_on(hub.shutdown()),
            // The display's handle outlived the window: the process ends anyway.
            Err(_) => eprintln!("the demo hub was still in use at shutdown"),
        }
        println!("Hub stopped.");
    }
}

/// A device's signing key, loaded beside the store that owns its data dir.
fn signing_key(dir: &Path) -> anyhow::Result<pos_audit::DeviceKey> {
    let (_, key) = DataDirLock::shared(dir)
        .and_then(|lock| lock.load_identity())
        .with_context(|| format!("cannot load the signing key of {}", dir.display()))?;
    Ok(key)
}

/// The terminal's enrollment with the demo hub: on the first run over the real enrollment
/// exchange with a one-time code, later from its TLS files.
fn enrolled(
    ctx: &Context,
    store: &mut Store,
    label: &str,
    hub: &DemoHub,
) -> anyhow::Result<TerminalTls> {
    let tls_dir = pos_sync_net::tls_dir(store.dir());
    if let Some(tls) =
        TerminalTls::load(&tls_dir).with_context(|| format!("cannot read {label}'s enrollment"))?
    {
        if tls.hub.hub != hub.id {
            anyhow::bail!(
                "{label} is enrolled with another hub, \"{}\" ({}), not the demo's: run the demo \
                 with a new --data-dir",
                tls.hub.name,
                tls.hub.hub
            );
        }
        println!(
            "  {label} is enrolled: it connects to the hub at {}",
            hub.addr
        );
        return Ok(tls);
    }
    let code = hub.enroll_code(ctx)?;
    let identity = store.identity().clone();
    let request = EnrollRequest {
        hub_addr: hub.addr.to_string(),
        code,
        device: identity.id,
        name: identity.name.clone(),
        audit_key: Arc::new(signing_key(store.dir())?),
        timeout: Duration::from_secs(20),
    };
    let enrollment = hub
        .runtime
        .block_on(pos_sync_net::enroll(&request))
        .map_err(crate::cmd::enroll::explain)
        .with_context(|| format!("{label} could not enroll with the hub"))?;
    crate::cmd::enroll::keep(store, &tls_dir, &enrollment)?;
    println!(
        "  {label} enrolled with a one-time code: device certificate {}",
        enrollment.hub.device_cert_fingerprint
    );
    TerminalTls::load(&tls_dir)
        .with_context(|| format!("cannot read {label}'s enrollment"))?
        .with_context(|| format!("{label}'s enrollment files are missing after enrolling"))
}

/// A terminal syncing with the demo hub: its store behind a mutex, shared with the sync task.
struct Syncing {
    label: String,
    device: DeviceId,
    /// The terminal's own head when syncing started.
    head: u64,
    store: Arc<Mutex<Store>>,
    client: TerminalClient,
}

impl Syncing {
    fn start(
        runtime: &tokio::runtime::Handle,
        label: &str,
        store: Store,
        tls: &TerminalTls,
        hub_addr: SocketAddr,
    ) -> anyhow::Result<Syncing> {
        let device = store.identity().id;
        let head = store.head().0;
        let identity = TerminalIdentity {
            device,
            key: Arc::new(signing_key(store.dir())?),
            tls: tls
                .client_config()
                .with_context(|| format!("cannot build {label}'s TLS configuration"))?,
        };
        let config = TerminalClientConfig {
            // This run's address: the hub's port changes between runs.
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
        let store = Arc::new(Mutex::new(store));
        let storage = OwnedTerminalStore::owned(Arc::clone(&store), tls.hub.hub);
        let client = {
            let _runtime = runtime.enter();
            TerminalClient::spawn(config, identity, Arc::new(storage))
        };
        client.appended(head);
        Ok(Syncing {
            label: label.to_owned(),
            device,
            head,
            store,
            client,
        })
    }

    /// How far this terminal holds the hub's chain (its master data, other modules redacted).
    fn hub_seq(&self, hub: DeviceId) -> anyhow::Result<u64> {
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        Ok(store.origin_state(hub)?.last_seq)
    }

    /// How many users and products this terminal holds.
    fn master_data(&self) -> anyhow::Result<(usize, usize)> {
        let store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        Ok((store.users()?.len(), store.products()?.len()))
    }

    /// Close the connection and take the store back.
    fn stop(self, runtime: &tokio::runtime::Handle) -> anyhow::Result<Store> {
        runtime.block_on(self.client.shutdown());
        let mut store = self.store;
        // The sync task has ended; a storage call on the blocking pool may still be returning.
        for _ in 0..100 {
            match Arc::try_unwrap(store) {
                Ok(mutex) => return Ok(mutex.into_inner().unwrap_or_else(|p| p.into_inner())),
                Err(shared) => store = shared,
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        anyhow::bail!("{}'s sync task did not let go of its store", self.label)
    }
}

/// Wait until the hub has stored each terminal's log up to its head, showing progress; fail
/// with what each late terminal last heard after `deadline`.
fn wait_synced(terminals: &[&Syncing], deadline: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut done = vec![false; terminals.len()];
    let mut shown = start;
    loop {
        let status: Vec<SyncStatus> = terminals
            .iter()
            .map(|t| t.client.status().borrow().clone())
            .collect();
        for (i, (t, s)) in terminals.iter().zip(&status).enumerate() {
            if let Some(why) = &s.refused {
                anyhow::bail!("{} could not sync: the hub refused its log: {why}", t.label);
            }
            if !done[i] && s.acked >= t.head {
                done[i] = true;
                println!(
                    "  {:<11} synced: the hub stored its log up to seq {}",
                    t.label, s.acked
                );
            }
        }
        if done.iter().all(|d| *d) {
            return Ok(());
        }
        let late = || {
            terminals
                .iter()
                .zip(&status)
                .zip(&done)
                .filter(|(_, d)| !**d)
                .map(|((t, s), _)| (t, s))
        };
        if start.elapsed() >= deadline {
            let why: Vec<String> = late()
                .map(|(t, s)| {
                    let reason = s.last_error.clone().unwrap_or_else(|| {
                        if s.online {
                            "still sending".into()
                        } else {
                            "no connection to the hub".into()
                        }
                    });
                    format!(
                        "{} could not sync within {} s: {reason} (the hub stored {} of {})",
                        t.label,
                        deadline.as_secs(),
                        s.acked,
                        t.head
                    )
                })
                .collect();
            anyhow::bail!("{}", why.join("; "));
        }
        if shown.elapsed() >= Duration::from_secs(1) {
            shown = Instant::now();
            let progress: Vec<String> = late()
                .map(|(t, s)| {
                    let link = if s.online { "online" } else { "connecting" };
                    format!("{} {}/{} ({link})", t.label, s.acked, t.head)
                })
                .collect();
            println!("  waiting: {}", progress.join(", "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long a terminal waits for the hub's master data before it trades.
const MASTER_DATA_DEADLINE: Duration = Duration::from_secs(30);

/// Before they trade, the enrolled terminals take the hub's master data over their sync link
/// (users with their credential verifiers, roles, catalogue with tax rates and quick keys,
/// settings: the modules of `pos_store::HUB_AUTHORITATIVE` they subscribe to). Both connect at
/// once; each is done when it holds the hub's chain up to the hub's head as it is now (records
/// of other modules arrive redacted). Fails after [`MASTER_DATA_DEADLINE`] with what the late
/// terminal last heard: a demo terminal has no cashier and no product of its own.
fn receive_master_data(
    hub: &DemoHub,
    terminals: Vec<(String, Store, TerminalTls)>,
) -> anyhow::Result<Vec<(String, Store, TerminalTls)>> {
    let handle = hub.runtime.handle();
    let target = hub.hub.with_store(|s| s.head().0);
    println!("Terminals take the hub's users, catalogue and settings (up to its seq {target}):");
    let mut syncing = Vec::new();
    for (label, store, tls) in terminals {
        let s = Syncing::start(handle, &label, store, &tls, hub.addr)?;
        syncing.push((s, tls));
    }
    let start = Instant::now();
    let mut shown = start;
    let mut done = vec![false; syncing.len()];
    loop {
        let mut late = Vec::new();
        for (i, (t, _)) in syncing.iter().enumerate() {
            let status = t.client.status().borrow().clone();
            if let Some(why) = &status.refused {
                anyhow::bail!("{} could not sync: the hub refused its log: {why}", t.label);
            }
            let have = t.hub_seq(hub.id)?;
            if have >= target {
                if !done[i] {
                    done[i] = true;
                    let (users, products) = t.master_data()?;
                    println!(
                        "  {:<11} received the hub's master data: {users} users, {products} \
                         products",
                        t.label
                    );
                }
            } else {
                late.push((t, status, have));
            }
        }
        if late.is_empty() {
            break;
        }
        if start.elapsed() >= MASTER_DATA_DEADLINE {
            let why: Vec<String> = late
                .iter()
                .map(|(t, s, have)| {
                    let reason = s.last_error.clone().unwrap_or_else(|| {
                        if s.online {
                            "still receiving".into()
                        } else {
                            "no connection to the hub".into()
                        }
                    });
                    format!(
                        "{} did not receive the hub's users and catalogue within {} s: {reason} \
                         (it holds the hub's log up to seq {have} of {target})",
                        t.label,
                        MASTER_DATA_DEADLINE.as_secs()
                    )
                })
                .collect();
            anyhow::bail!(
                "{}; a demo terminal trades only with the hub's cashiers and products",
                why.join("; ")
            );
        }
        if shown.elapsed() >= Duration::from_secs(1) {
            shown = Instant::now();
            let progress: Vec<String> = late
                .iter()
                .map(|(t, s, have)| {
                    let link = if s.online { "online" } else { "connecting" };
                    format!("{} {have}/{target} ({link})", t.label)
                })
                .collect();
            println!("  waiting: {}", progress.join(", "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stores = Vec::new();
    for (t, tls) in syncing {
        let label = t.label.clone();
        let store = t.stop(handle)?;
        let cashiers = store.users()?;
        for (name, _) in CASHIERS {
            if !cashiers.iter().any(|u| u.name == name) {
                anyhow::bail!(
                    "{label} received the hub's master data, but the hub has no cashier `{name}`"
                );
            }
        }
        stores.push((label, store, tls));
    }
    Ok(stores)
}

/// A terminal's first goods delivery (once, before its first sale): stock is counted per
/// device (commutative movements), not master data, so each till receives its own.
fn first_delivery(engine: &mut Engine) -> anyhow::Result<()> {
    if !engine.store().stock_levels()?.is_empty() {
        return Ok(());
    }
    engine.login(Credentials::new(MANAGER.0, MANAGER.1))?;
    for (sku, ..) in CATALOGUE {
        engine.receive_stock(sku, Quantity::units(200), "delivery-0001", None)?;
    }
    engine.logout()?;
    Ok(())
}

fn open_or_init(ctx: &Context, dir: &Path, role: DeviceRole, name: &str) -> anyhow::Result<Store> {
    match Store::open(dir, ctx.store_options()) {
        Ok(store) => Ok(store),
        Err(StoreError::NoDataDir(_) | StoreError::NotInitialized(_)) => {
            let (store, _) = Store::init(dir, role, "demo", name, false)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            println!("  created {role} \"{name}\" ({})", store.device_id());
            Ok(store)
        }
        Err(_) => open_at(dir, ctx.store_options()),
    }
}

/// The demo staff: (name, role, secret). The hub owns them; terminals receive them by sync.
const STAFF: [(&str, &str, &str); 4] = [
    (MANAGER.0, "manager", MANAGER.1),
    (SUPERVISOR.0, "supervisor", SUPERVISOR.1),
    (CASHIERS[0].0, "cashier", CASHIERS[0].1),
    (CASHIERS[1].0, "cashier", CASHIERS[1].1),
];

/// First run on a device without users: the first admin (one-time password changed, TOTP
/// enrolled) creates the demo staff. Does nothing once any user exists; returns whether it
/// created them.
fn create_staff(store: &mut Store, ctx: &Context) -> anyhow::Result<bool> {
    if store.has_users()? {
        return Ok(false);
    }
    let policy = ctx.account_policy();
    let (_, one_time) = store.bootstrap_admin("admin")?;
    let totp = store
        .change_secret("admin", &one_time, ADMIN_PASSWORD, None, &policy)?
        .context("the admin role enrols a second factor")?;
    let code = pos_auth::totp_code(&totp, pos_store::now_ms() / 1000);
    let admin = store.authenticate("admin", ADMIN_PASSWORD, Some(&code), &policy)?;
    for (name, role, secret) in STAFF {
        let (_, first) = store.add_user(&admin, name, &title(name), &[role.to_owned()])?;
        store.change_secret(name, &first, secret, None, &policy)?;
    }
    Ok(true)
}

fn title(name: &str) -> String {
    let mut c = name.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The demo shop's tax rates.
fn tax_rates() -> [TaxRate; 2] {
    [
        TaxRate {
            class: "reduced".into(),
            name: "Reduced".into(),
            rate_bp: 700,
        },
        TaxRate {
            class: "standard".into(),
            name: "Standard".into(),
            rate_bp: 1900,
        },
    ]
}

/// The demo catalogue as products (new ids: saving keeps the stored id of a known SKU), each
/// checked as the hub checks what it publishes; quick keys in catalogue order.
fn demo_products() -> anyhow::Result<Vec<Product>> {
    let rules = pos_core::sale::BarcodeRules::default();
    CATALOGUE
        .iter()
        .enumerate()
        .map(|(i, (sku, name, unit, price, tax, code))| {
            let barcode = if code.len() == 12 {
                ean13(code)
            } else {
                (*code).to_owned()
            };
            let product = Product {
                id: ProductId::new_v7(),
                sku: (*sku).into(),
                name: (*name).into(),
                unit: *unit,
                price: Money(*price),
                cost: Money(price * 55 / 100),
                tax_class: (*tax).into(),
                category: if *tax == "standard" {
                    "household"
                } else {
                    "food"
                }
                .into(),
                quick_key: u16::try_from(i + 1).ok(),
                active: true,
                barcodes: vec![barcode],
            };
            product
                .validate(&rules)
                .with_context(|| format!("demo product {sku}"))?;
            Ok(product)
        })
        .collect()
}

/// The hub's master data, which the terminals receive by sync: the staff (first run), the tax
/// rates, the catalogue with its quick keys and the receipt footer. Later runs change nothing
/// that is already as wanted (no duplicate users, products or rates).
fn hub_setup(hub: &mut Store, ctx: &Context) -> anyhow::Result<()> {
    let created = create_staff(hub, ctx)?;
    let users = hub.users()?;
    let missing: Vec<&str> = STAFF
        .iter()
        .map(|(name, ..)| *name)
        .filter(|name| !users.iter().any(|u| u.name == *name))
        .collect();
    if !missing.is_empty() {
        anyhow::bail!(
            "the demo hub has no user {}: its data dir was made by an older demo; run the demo \
             with a new --data-dir",
            missing.join(", ")
        );
    }
    let manager = hub.authenticate(MANAGER.0, MANAGER.1, None, &ctx.account_policy())?;
    let mut drafts = Vec::new();
    let stored = hub.tax_rates()?;
    for rate in tax_rates() {
        let before = stored.iter().find(|r| r.class == rate.class).cloned();
        if before.as_ref() != Some(&rate) {
            if drafts.is_empty() {
                hub.authorize(&manager, pos_auth::Permission::CatalogueEdit, None)?;
            }
            drafts.push(
                EventDraft::json(
                    CATALOGUE_MODULE,
                    TaxRateSaved::KIND,
                    &TaxRateSaved { rate, before },
                )
                .by(manager.user),
            );
        }
    }
    let footer = serde_json::json!("Thank you for shopping local!");
    let before = hub.setting("receipt.footer")?;
    if before.as_ref() != Some(&footer) {
        hub.authorize(&manager, pos_auth::Permission::Settings, None)?;
        drafts.push(
            EventDraft::json(
                SettingChanged::MODULE,
                SettingChanged::KIND,
                &SettingChanged {
                    key: "receipt.footer".into(),
                    before,
                    after: footer,
                },
            )
            .by(manager.user),
        );
    }
    if !drafts.is_empty() {
        hub.append(drafts)?;
    }
    let saved = hub.save_products(&manager, demo_products()?)?;
    if created {
        println!(
            "  hub: the staff ({}) and a catalogue of {saved} products with tax rates and quick \
             keys created",
            STAFF.map(|s| s.0).join(", ")
        );
    } else if saved > 0 {
        println!("  hub: {saved} demo products updated");
    }
    Ok(())
}
/// An EAN-13 code from its first 12 digits.
fn ean13(body: &str) -> String {
    format!("{body}{}", check_digit(body).unwrap_or(0))
}

/// The demo catalogue: (sku, name, unit, price in cents, tax class, barcode).
const CATALOGUE: [(&str, &str, Unit, i64, &str, &str); 10] = [
    (
        "espresso",
        "Espresso beans 250 g",
        Unit::Each,
        699,
        "reduced",
        "400638133393",
    ),
    (
        "croissant",
        "Butter croissant",
        Unit::Each,
        145,
        "reduced",
        "401234500012",
    ),
    (
        "baguette",
        "Baguette tradition",
        Unit::Each,
        129,
        "reduced",
        "401234500029",
    ),
    (
        "milk-1l",
        "Organic milk 1 l",
        Unit::Each,
        119,
        "reduced",
        "401234500036",
    ),
    (
        "tea",
        "Green tea 20 bags",
        Unit::Each,
        349,
        "reduced",
        "401234500043",
    ),
    (
        "jam",
        "Apricot jam 340 g",
        Unit::Each,
        289,
        "reduced",
        "401234500050",
    ),
    (
        "soap",
        "Olive oil soap",
        Unit::Each,
        450,
        "standard",
        "401234500067",
    ),
    (
        "candle",
        "Beeswax candle",
        Unit::Each,
        1290,
        "standard",
        "401234500074",
    ),
    (
        "apples",
        "Apples (per kg)",
        Unit::Kg,
        329,
        "reduced",
        "00042",
    ),
    (
        "cheese",
        "Comte (per kg)",
        Unit::Kg,
        2490,
        "reduced",
        "00043",
    ),
];

/// What `pos terminal --sim-sales` needs: the demo's first cashier and products to sell. A
/// terminal that has them (the hub's, received by sync, or its own from an earlier run) uses
/// them and creates nothing. Otherwise it creates what is missing, as a standalone shop's till
/// would (a terminal without a hub, or enrolled with a hub that publishes none yet; the hub
/// keeps such records of a terminal in its log without applying them): the demo staff when it
/// has no user at all, and the demo catalogue with a first delivery when it has no product.
pub(crate) fn terminal_setup(engine: &mut Engine, ctx: &Context) -> anyhow::Result<()> {
    let store = engine.store();
    let has_cashier = store.users()?.iter().any(|u| u.name == CASHIERS[0].0);
    let has_products = !sale_codes(store)?.is_empty();
    if has_cashier && has_products {
        return Ok(());
    }
    if create_staff(engine.store_mut(), ctx)? {
        println!("  the demo staff created on this terminal");
    }
    if has_products {
        return Ok(());
    }
    engine.login(Credentials::new(MANAGER.0, MANAGER.1))?;
    for rate in tax_rates() {
        engine.save_tax_rate(rate)?;
    }
    for product in demo_products()? {
        let sku = product.sku.clone();
        engine.save_product(product)?;
        engine.receive_stock(&sku, Quantity::units(200), "delivery-0001", None)?;
    }
    engine.logout()?;
    println!(
        "  catalogue of {} products created on this terminal",
        CATALOGUE.len()
    );
    Ok(())
}

/// The first barcode of each active product sold by the piece, by SKU: what `sim_sale` scans.
fn sale_codes(store: &Store) -> anyhow::Result<Vec<String>> {
    Ok(store
        .products()?
        .into_iter()
        .filter(|p| p.active && matches!(p.unit, Unit::Each))
        .filter_map(|p| p.barcodes.into_iter().next())
        .collect())
}

/// One scripted cash sale by the first cashier (`pos terminal --sim-sales`, terminal-2 of the
/// demo): log in, open the shift if none is open, scan one or two of the terminal's products,
/// pay cash, complete, log out. Returns the receipt number.
pub(crate) fn sim_sale(engine: &mut Engine, n: u64) -> anyhow::Result<u64> {
    let codes = sale_codes(engine.store())?;
    if codes.is_empty() {
        anyhow::bail!("this terminal has no active product sold by the piece to sell");
    }
    engine.login(Credentials::new(CASHIERS[0].0, CASHIERS[0].1))?;
    if engine.shift()?.is_none() {
        engine.open_shift(Money(15000))?;
    }
    if engine.ticket().is_some_and(|t| !t.lines().is_empty()) {
        // A ticket the last run left open (killed mid-sale, given back from the journal at
        // login): the customer is still at the till, so it is finished first, paid in cash.
        let due = engine.balance()?.remaining;
        if due.0 > 0 {
            engine.pay(Tender::Cash, due)?;
        }
        let recovered = engine.complete()?;
        tracing::info!(
            receipt = recovered.number,
            "finished the ticket a restart gave back"
        );
    }
    let pick = |i: u64| &codes[(i % codes.len() as u64) as usize];
    engine.scan(pick(n))?;
    if n.is_multiple_of(2) {
        engine.scan(pick(n / 2 + 1))?;
    }
    let due = engine.balance()?.remaining;
    engine.pay(Tender::Cash, Money((due.0 / 1000 + 1) * 1000))?;
    let receipt = engine.complete()?;
    engine.logout()?;
    Ok(receipt.number)
}

/// A scripted day: two cashiers, approvals by the supervisor, refunds, cash moves, Z report.
fn trade_day(engine: &mut Engine, sales: u32) -> anyhow::Result<()> {
    let sam = Credentials::new(SUPERVISOR.0, SUPERVISOR.1);
    let mut rng = pos_store::now_ms() | 1;
    let scan_codes: Vec<String> = CATALOGUE
        .iter()
        .filter(|c| c.5.len() == 12)
        .map(|c| ean13(c.5))
        .collect();

    engine.login(Credentials::new(CASHIERS[0].0, CASHIERS[0].1))?;
    if engine.shift()?.is_none() {
        engine.open_shift(Money(15000))?;
    }
    let mut first_receipt = None;
    for sale in 1..=sales {
        if sale == sales / 2 + 1 {
            // Shift change at the till: alice hands over to bob on the same drawer.
            engine.logout()?;
            engine.login(Credentials::new(CASHIERS[1].0, CASHIERS[1].1))?;
        }
        for _ in 0..1 + next(&mut rng) % 4 {
            let code = &scan_codes[(next(&mut rng) % scan_codes.len() as u64) as usize];
            let line = engine.scan(code)?;
            if next(&mut rng).is_multiple_of(5) {
                engine.set_quantity(line, Quantity::units(2))?;
            }
        }
        match sale % 7 {
            // Weighed apples with a scale label (weight-embedded: 1.250 kg).
            1 => {
                engine.scan(&ean13("210004201250"))?;
            }
            // A damaged candle: 20% off, above the cashier's limit, approved by the supervisor.
            2 => {
                let line = engine.scan(&ean13("401234500074"))?;
                engine.discount(Some(line), Discount::Percent(2000), Some((sam, "damaged")))?;
            }
            // A scan error voided with the supervisor's PIN.
            3 => {
                let line = engine.scan(&ean13("401234500067"))?;
                engine.void_line(line, sam, "scan-error")?;
            }
            // Cheese by weight keyed at the scale: 0.350 kg.
            4 => {
                engine.add("cheese", Quantity(350))?;
            }
            _ => {}
        }
        let due = engine.balance()?.remaining;
        let receipt = if sale.is_multiple_of(3) {
            // Split: part on card, the rest in cash with rounding and change.
            let card = Money(due.0 / 2);
            engine.pay(
                Tender::Card {
                    approval_code: format!("A{:05}", sale),
                    last4: "4242".into(),
                },
                card,
            )?;
            let rest = engine.balance()?.remaining;
            engine.pay(Tender::Cash, Money((rest.0 / 500 + 1) * 500))?;
            engine.complete()?
        } else {
            engine.pay(Tender::Cash, Money((due.0 / 1000 + 1) * 1000))?;
            engine.complete()?
        };
        first_receipt.get_or_insert(receipt.number);
    }
    // A customer brings back one item of the first receipt: refund with the supervisor.
    if let Some(first) = first_receipt {
        engine.refund(
            first,
            &[RefundRequest {
                line: LineNo(1),
                qty: Quantity::ONE,
            }],
            Tender::Cash,
            sam,
            "defective",
        )?;
    }
    // A sale rung up on the wrong tender is voided after the fact and rung again.
    engine.scan(&scan_codes[0])?;
    engine.pay(Tender::Cash, Money(1000))?;
    let wrong = engine.complete()?;
    engine.post_void(wrong.number, sam, "wrong-tender")?;
    engine.cash_move(false, Money(1250), Some(sam), "petty-cash")?;
    engine.no_sale(Some(sam), "give-change")?;
    let x = engine.x_report()?;
    println!(
        "X report: {} sales, net {}, expected in drawer {}",
        x.sales_count,
        x.net,
        x.drawer.expected()?
    );
    // Blind count at close: the cashier counts before seeing the expected amount.
    let counted = Money(x.drawer.expected()?.0 - 20);
    let z = engine.close_shift(counted, Some(sam))?;
    println!(
        "Z report #{}: {} sales, gross {}, refunds {}, voids {}, counted {}, expected {}, over/short {}",
        z.z_number, z.report.sales_count, z.report.gross, z.report.refunds.value, z.report.voids.count,
        z.counted, z.expected, z.over_short
    );
    engine.logout()?;
    Ok(())
}

/// Print every queued receipt on the simulated network printer (the real ESC/POS driver and
/// print queue), and show the first one as the printer rendered it.
fn print_receipts(engine: &mut Engine, layout: &Layout, sim: &SimPrinter) -> anyhow::Result<()> {
    let printed = print_queue(engine, layout, sim)?;
    let jobs = sim.jobs();
    println!(
        "Printed {printed} receipts on the simulated printer tcp://{}; the first:",
        sim.addr()
    );
    if let Some(first) = jobs.first() {
        println!("{first}");
    }
    Ok(())
}

/// Print every queued receipt on `sim`; returns how many were printed.
fn print_queue(engine: &mut Engine, layout: &Layout, sim: &SimPrinter) -> anyhow::Result<usize> {
    let mut printer = EscPosPrinter::new(TcpTransport::new(sim.addr(), TcpTimeouts::default()));
    let mut printed = 0;
    loop {
        match engine.print_next(&mut printer, layout)? {
            PrintProgress::Idle => break,
            PrintProgress::Printed { .. } => printed += 1,
            PrintProgress::Waiting { problem, .. } => anyhow::bail!("printer: {problem}"),
        }
    }
    // Give the simulator a moment to take in the last bytes.
    std::thread::sleep(std::time::Duration::from_millis(100));
    Ok(printed)
}

const FALLBACK_HINT: &str =
    "running the headless demo; use `pos demo --headless` to skip this check";

/// Whether the demo can open its terminal window: the winit platform is installed and the
/// signals are blocked (before any thread starts). Otherwise says why, and the demo runs
/// headless.
fn window_or_fallback(size: ScreenSize) -> Option<Signals> {
    if !Backend::Winit.is_built() {
        println!(
            "this pos was built without a window backend (feature `desktop`): {FALLBACK_HINT}"
        );
        return None;
    }
    if !Environment::detect().display_server {
        println!("no display found (DISPLAY/WAYLAND_DISPLAY unset): {FALLBACK_HINT}");
        return None;
    }
    let signals = match Signals::block() {
        Ok(s) => s,
        Err(e) => {
            println!("{e:#}: {FALLBACK_HINT}");
            return None;
        }
    };
    match backend::install(Backend::Winit, size) {
        Ok(()) => Some(signals),
        Err(e) => {
            println!("cannot open a window ({e}): {FALLBACK_HINT}");
            None
        }
    }
}

/// What the window needs to keep syncing with the running demo hub.
struct LiveLink {
    tls: TerminalTls,
    addr: String,
    key: pos_audit::DeviceKey,
}

/// The terminal in a window on the demo's store, behind the simulated printer (its receipts
/// are printed here) and a simulated serial scanner read by the real driver: each line typed
/// on stdin is scanned. It syncs live with the demo hub through the terminal app's own link
/// (`sync_link`, store calls through the UI thread). Returns when the window is closed.
/// The running demo hub for the manager display of the window mode.
struct HubDisplay {
    hub: Arc<RunningHub>,
    dir: std::path::PathBuf,
}

/// The display reaches the demo hub's store as `pos hub`'s does: `RunningHub::with_store`.
struct DemoHubAccess(Arc<RunningHub>);

impl pos_ui::hub::StoreAccess for DemoHubAccess {
    fn with_store(&self, f: &mut dyn FnMut(&mut Store)) {
        self.0.with_store(|s| f(s))
    }
}

// The window's parts, each from a different stage of the demo.
#[allow(clippy::too_many_arguments)]
fn window_session(
    ctx: &Context,
    mut engine: Engine,
    layout: Layout,
    sim: &SimPrinter,
    args: &DemoArgs,
    signals: Signals,
    link: LiveLink,
    display: HubDisplay,
) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    // The day ended with the Z report: a new shift on the same drawer for whoever logs in.
    engine.login(Credentials::new(CASHIERS[0].0, CASHIERS[0].1))?;
    if engine.shift()?.is_none() {
        engine.open_shift(Money(15000))?;
    }
    engine.logout()?;

    let scanner =
        pos_device_sim::SimScanner::start(b"\r").context("cannot start the scanner simulator")?;
    let scanner_path = scanner.path().display().to_string();
    // Kept here as well as by the keyboard thread: the end of stdin must not unplug it.
    let scanner = Arc::new(std::sync::Mutex::new(scanner));
    // Opened now: opening drops bytes already waiting, which would swallow a first scan.
    let port = pos_drivers::serial::SerialTransport::open(pos_drivers::serial::SerialConfig::new(
        scanner_path.clone(),
        9600,
    ))
    .with_context(|| format!("cannot open the simulated scanner {scanner_path}"))?;
    let reader = pos_drivers::scanner::ScannerReader::new(
        port,
        term::scanner_config(&ctx.config.devices),
        100,
    );
    let own = engine.store().identity().id;
    let head_watch = engine.store().head_watch();
    let printer = EscPosPrinter::new(TcpTransport::new(sim.addr(), TcpTimeouts::default()));
    let kick = crate::cmd::devices::drawer_kick(&ctx.config.devices);
    let till = pos_engine::Till::new(engine, Box::new(printer), layout, Some(kick), 60_000);

    println!();
    println!(
        "Terminal window open ({}): simulated printer tcp://{}, scanner {scanner_path}.",
        args.size,
        sim.addr()
    );
    println!(
        "Log in as {} (PIN {}) and scan: type a barcode here and press Enter, e.g.",
        CASHIERS[0].0, CASHIERS[0].1
    );
    for (_, name, _, _, _, code) in CATALOGUE.iter().take(4) {
        println!("  {:<14} {name}", ean13(code));
    }
    println!(
        "  {:<14} {}, scale label of 1.250 kg",
        ean13("210004201250"),
        CATALOGUE[8].1
    );
    println!(
        "The window syncs with the demo hub at {}: a sale made there reaches the hub (the \
         status bar shows the link).",
        link.addr
    );
    println!("Close the window (or Ctrl-C) to end the demo and stop the hub.");

    let stop = Arc::new(AtomicBool::new(false));
    // Each line on stdin is a scan; end of input just ends the typing.
    let typed = Arc::clone(&scanner);
    let keyboard = std::thread::Builder::new()
        .name("demo-keyboard".into())
        .spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                let code = line.trim();
                if code.is_empty() {
                    continue;
                }
                let sent = match typed.lock() {
                    Ok(mut s) => s.scan(code),
                    Err(_) => break,
                };
                if let Err(e) = sent {
                    eprintln!("scanner simulator: {e}");
                }
            }
        })
        .context("cannot start the keyboard thread")?;
    drop(keyboard);
    let mut threads = Vec::new();
    let mut link = Some(link);
    let mut syncing = None;
    let options = Options {
        backend: Some(Backend::Winit),
        size: args.size,
        exit_after: args.exit_after_ms.map(std::time::Duration::from_millis),
        ..Options::default()
    };
    let policy = term::session_policy(ctx);
    let locale = term::screen_locale(ctx)?;
    let mut hub_options = pos_ui::hub::HubOptions::new(display.dir.clone());
    hub_options.account_policy = ctx.account_policy();
    hub_options.alert_rules = ctx.config.alert_rules();
    hub_options.offline_alert_ms = u64::from(ctx.config.hub.offline_alert_min) * 60_000;
    hub_options.currency = ctx.engine_config().currency;
    hub_options.session_policy = policy;
    let mut hub_window = None;
    let mut hub_display = Some(display);
    println!(
        "The hub's manager display opens beside it: log in as the manager {} with {}.",
        MANAGER.0, MANAGER.1
    );
    let run = std::thread::scope(|scope| {
        // Receipts as the simulated printer renders them, while the window is open.
        let printed = std::thread::Builder::new()
            .name("demo-printer".into())
            .spawn_scoped(scope, || {
                let mut shown = sim.jobs().len();
                while !stop.load(Ordering::Relaxed) {
                    let jobs = sim.jobs();
                    for job in jobs.iter().skip(shown) {
                        println!("{job}\n---- cut ----");
                    }
                    shown = shown.max(jobs.len());
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            });
        if let Err(e) = printed {
            eprintln!("cannot start the printer output thread: {e}");
        }
        let run = backend::run_installed(Backend::Winit, till, &options, |terminal, remote| {
            signals.forward_to(remote);
            terminal.set_session_policy(policy);
            if let Err(e) = terminal.set_locale(&locale) {
                eprintln!("locale {locale}: {e}");
            }
            terminal.set_device_status("Drawer closed", "Scanner ready");
            if let Some(display) = hub_display.take() {
                let access: std::rc::Rc<dyn pos_ui::hub::StoreAccess> =
                    std::rc::Rc::new(DemoHubAccess(display.hub));
                match backend::HubBeside::open(
                    terminal,
                    access,
                    hub_options.clone(),
                    pos_ui::hub::HubActions::default(),
                    args.size,
                ) {
                    Ok(w) => {
                        if let Err(e) = w.hub().set_locale(&locale) {
                            eprintln!("locale {locale}: {e}");
                        }
                        hub_window = Some(w);
                    }
                    Err(e) => eprintln!("the hub's manager display cannot open: {e}"),
                }
            }
            if let Some(LiveLink { tls, addr, key }) = link.take() {
                terminal.set_link_status(false, 0);
                match sync_link::start(
                    tls,
                    addr,
                    own,
                    key,
                    remote,
                    head_watch.clone(),
                    Duration::from_secs(u64::from(ctx.config.sync.retry_max_s)),
                ) {
                    Ok(l) => syncing = Some(l),
                    Err(e) => eprintln!("terminal-1 cannot sync from the window: {e:#}"),
                }
            }
            match term::spawn_serial_scanner(
                reader,
                remote,
                Arc::clone(&stop),
                "Drawer closed".into(),
            ) {
                Ok(t) => threads.push(t),
                Err(e) => eprintln!("{e:#}"),
            }
        });
        stop.store(true, Ordering::Relaxed);
        // The display lets go of the hub before the demo stops it.
        drop(hub_window.take());
        run
    });
    if let Some(l) = syncing {
        l.stop();
    }
    for t in threads {
        let _ = t.join();
    }
    drop(scanner);
    run.map_err(|e| anyhow::anyhow!(e))?;
    let jobs = sim.jobs();
    println!(
        "Window closed; the simulated printer holds {} receipts in all.",
        jobs.len()
    );
    Ok(())
}

/// xorshift64: a few pseudo-random numbers for the script, no dependency needed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

//! `pos terminal`: the terminal service with its touchscreen UI over this device's store, its
//! receipt printer, cash drawer, customer display and scanner from the `[devices]` section.
//!
//! The UI runs on the main thread (Slint's event loop); the scanner is read on its own thread
//! and each code is handed to the UI thread (`Remote::scan` → `Terminal::scan` → engine →
//! store commit). SIGINT and SIGTERM end the event loop, so the store closes cleanly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use pos_config::DevicesSection;
use pos_core::DeviceRole;
use pos_drivers::display::LineDisplay;
use pos_drivers::escpos::CodePage;
use pos_drivers::scanner::{ScannerConfig, ScannerReader};
use pos_drivers::serial::{SerialConfig, SerialTransport};
use pos_drivers::{DeviceEvent, PrinterError, PrinterStatus, ReceiptPrinter, Transport};
use pos_engine::{Engine, Till};
use pos_store::Store;
use pos_sync_net::TerminalTls;
use pos_ui::backend::{self, Backend, Options, Remote, ScreenSize};
use pos_ui::Terminal;

use crate::cmd::{devices, sync_link};
use crate::context::Context;

const AFTER_HELP: &str = "\
Where the UI shows (--backend, else picked from the environment):
  winit     a window on the desktop (X11 or Wayland): DISPLAY or WAYLAND_DISPLAY is set
  kms       full screen on the appliance's panel, no desktop needed: /dev/dri/card* exists
            (needs root or the video and input groups; SLINT_KMS_ROTATION=90 turns the picture)
  headless  no display: the terminal runs, nothing is drawn (servers, tests)
Both graphical backends draw with the software renderer: no GPU driver needed.

Devices come from the [devices] section of the config (see `pos devices list`):
  printer = tcp://HOST:9100 | serial:///dev/ttyUSB0?baud=38400 | usb://VID:PID | none
  drawer  = printer (kicked through the printer) | none
  scanner = serial:///dev/ttyACM0 | evdev:///dev/input/by-id/...-kbd (keyboard wedge,
            grabbed so its keys never reach the UI) | none
  display = serial:///dev/ttyUSB1?baud=9600 | none

Stop it with Ctrl-C or SIGTERM (systemd), or close the window.

Examples:
  pos terminal --data-dir /var/lib/pos                       # the appliance (kms)
  pos terminal --data-dir ./till --backend winit --size 800x1280
  pos terminal --data-dir ./till --headless --exit-after-ms 2000";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct TerminalArgs {
    /// Run without any window: the terminal's state machine and devices run, nothing is
    /// drawn (same as --backend headless).
    #[arg(long, conflicts_with = "backend")]
    pub headless: bool,
    /// Where to show the UI: winit (desktop window), kms (full screen, no desktop) or
    /// headless. Default: winit when DISPLAY/WAYLAND_DISPLAY is set, else kms when a
    /// /dev/dri/card* exists.
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<Backend>,
    /// Screen layout: 1280x800 (landscape), 1024x768 (4:3) or 800x1280 (portrait). The
    /// window gets this size; under kms the panel's own resolution is used.
    #[arg(long, value_name = "WxH", default_value = "1280x800")]
    pub size: ScreenSize,
    /// Stop by itself after this many milliseconds (tests, unattended runs).
    #[arg(long, value_name = "MS")]
    pub exit_after_ms: Option<u64>,
    /// Sync with the hub at HOST:PORT (default: the address it enrolled at). A terminal
    /// enrolled with `pos enroll` syncs in the background; selling never waits for it.
    #[arg(long, value_name = "ADDR")]
    pub hub: Option<String>,
    /// Sell N scripted cash sales through the real engine while running (demo staff and
    /// catalogue are created first if missing; tests and load runs). Needs --headless.
    #[arg(long, value_name = "N", requires = "headless")]
    pub sim_sales: Option<u64>,
    /// Scripted sales per second for --sim-sales.
    #[arg(long, value_name = "R", default_value_t = 5.0, requires = "sim_sales")]
    pub sim_rate: f64,
}

pub fn run(ctx: &Context, args: TerminalArgs) -> anyhow::Result<()> {
    // Before any thread exists, so every thread inherits the blocked mask and only the
    // signal thread sees SIGINT/SIGTERM.
    let signals = Signals::block()?;
    let identity = Store::read_identity(&ctx.data_dir)
        .with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))?;
    if identity.role != DeviceRole::Terminal {
        bail!(
            "{} is the data dir of a {} (hint: `pos terminal` runs on a terminal's data dir: \
             pos init --role terminal --data-dir DIR)",
            ctx.data_dir.display(),
            identity.role
        );
    }
    let enrolled = TerminalTls::load(&pos_sync_net::tls_dir(&ctx.data_dir))
        .context("cannot read this terminal's enrollment (DATA_DIR/tls)")?;
    if args.hub.is_some() && enrolled.is_none() {
        bail!(
            "this terminal is not enrolled with a hub (hint: create a code on the hub with \
             `pos hub enroll-code`, then `pos enroll --hub ADDR --code CODE` here)"
        );
    }
    let key = match enrolled {
        Some(_) => Some(
            pos_store::DataDirLock::shared(&ctx.data_dir)
                .and_then(|lock| lock.load_identity())
                .context("cannot load this terminal's signing key")?
                .1,
        ),
        None => None,
    };
    let mut sync = enrolled.zip(key);
    let mut link = None;
    let store = ctx.open_store()?;
    let mut engine = Engine::new(store, ctx.engine_config());
    if args.sim_sales.is_some() {
        crate::cmd::demo::terminal_setup(&mut engine, ctx)
            .context("cannot create the demo staff and catalogue for --sim-sales")?;
    }
    let head_watch = engine.store().head_watch();
    let devices = &ctx.config.devices;
    let till = till_from_config(engine, devices)?;
    let options = Options {
        backend: if args.headless {
            Some(Backend::Headless)
        } else {
            args.backend
        },
        size: args.size,
        exit_after: args.exit_after_ms.map(Duration::from_millis),
        ..Options::default()
    };
    tracing::info!(
        data_dir = %ctx.data_dir.display(),
        terminal = %identity.name,
        printer = %devices.printer,
        scanner = %devices.scanner,
        "terminal starting"
    );
    // The daily local safety copy (hourly snapshots are the hub's), on its own thread and its
    // own read connection. No audit event: the store belongs to the UI thread; the outcome is
    // in the log and DATA_DIR/backup-status.json.
    let backups = crate::backup_jobs::settings(ctx, DeviceRole::Terminal).and_then(|s| {
        crate::backup_jobs::start(s, Box::new(|_, _| {}))
            .map_err(|e| tracing::error!("ALERT: backup failed: {e:#}"))
            .ok()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let policy = session_policy(ctx);
    let locale = screen_locale(ctx)?;
    let ran = backend::run_terminal(till, &options, |terminal, remote| {
        signals.forward_to(remote);
        terminal.set_session_policy(policy);
        if let Err(e) = terminal.set_locale(&locale) {
            tracing::warn!("locale {locale}: {e}");
        }
        show_device_status(terminal, devices);
        if let Some((tls, key)) = sync.take() {
            let addr = args.hub.clone().unwrap_or_else(|| tls.hub.address.clone());
            terminal.set_link_status(false, 0);
            match sync_link::start(
                tls,
                addr,
                identity.id,
                key,
                remote,
                head_watch.clone(),
                Duration::from_secs(u64::from(ctx.config.sync.retry_max_s)),
            ) {
                Ok(l) => link = Some(l),
                Err(e) => tracing::warn!("hub sync not started: {e:#}"),
            }
        }
        if let Some(n) = args.sim_sales {
            match spawn_sim_sales(n, args.sim_rate, remote, Arc::clone(&stop)) {
                Ok(t) => threads.push(t),
                Err(e) => tracing::warn!("simulated sales: {e:#}"),
            }
        }
        match spawn_scanner(devices, remote, Arc::clone(&stop)) {
            Ok(Some(t)) => threads.push(t),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("scanner: {e:#}");
                terminal.set_device_status(&drawer_text(devices), "Scanner not set up");
            }
        }
    });
    stop.store(true, Ordering::Relaxed);
    if let Some(link) = link {
        link.stop();
    }
    if let Some(backups) = backups {
        backups.stop();
    }
    let backend = ran.map_err(|e| anyhow::anyhow!(e))?;
    for t in threads {
        let _ = t.join();
    }
    tracing::info!(%backend, "terminal stopped");
    Ok(())
}

/// `--sim-sales`: `n` scripted sales, `rate` a second, each run on the UI thread's engine.
fn spawn_sim_sales(
    n: u64,
    rate: f64,
    remote: Remote,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<()>> {
    let pause = Duration::from_secs_f64(1.0 / rate.clamp(0.01, 1000.0));
    std::thread::Builder::new()
        .name("sim-sales".into())
        .spawn(move || {
            for i in 1..=n {
                std::thread::sleep(pause);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let sent = remote.with_terminal(move |t| {
                    match t.with_engine(|e| crate::cmd::demo::sim_sale(e, i)) {
                        Some(Ok(number)) => tracing::info!(receipt = number, "simulated sale"),
                        Some(Err(e)) => tracing::warn!("simulated sale {i}: {e:#}"),
                        None => tracing::warn!("simulated sale {i}: the terminal is busy"),
                    }
                });
                if sent.is_err() {
                    break;
                }
            }
            tracing::info!("simulated sales done");
        })
        .context("cannot start the simulated sales thread")
}

/// The `[device] locale`, checked before any window opens: a tag without number data is a
/// configuration error, not a terminal in the wrong format.
pub fn screen_locale(ctx: &Context) -> anyhow::Result<String> {
    let tag = ctx.config.device.locale.clone();
    pos_ui::locale::Locale::new(&tag).map_err(|e| {
        anyhow::anyhow!(
            "{e} (hint: set [device] locale in the config to e.g. \"en-GB\" or \"de-DE\")"
        )
    })?;
    Ok(tag)
}

/// The `[auth]` idle lock and session length.
pub fn session_policy(ctx: &Context) -> pos_auth::SessionPolicy {
    pos_auth::SessionPolicy {
        idle_lock_ms: u64::from(ctx.config.auth.idle_lock_s) * 1000,
        max_age_ms: u64::from(ctx.config.auth.session_max_h) * 3_600_000,
    }
}

/// The engine with the configured printer, drawer and customer display.
pub fn till_from_config(engine: Engine, devices: &DevicesSection) -> anyhow::Result<Till> {
    let printer: Box<dyn ReceiptPrinter> = match devices.printer.as_str() {
        "none" => Box::new(NoPrinter),
        connection => devices::open_printer(connection)?,
    };
    let kick = match devices.drawer.as_str() {
        "printer" => Some(devices::drawer_kick(devices)),
        "none" => None,
        other => {
            tracing::warn!(
                "devices.drawer = \"{other}\": only a drawer on the printer's port is driven by \
                 the till so far; the drawer will not open"
            );
            None
        }
    };
    let till = Till::new(
        engine,
        printer,
        devices::receipt_layout(devices)?,
        kick,
        u64::from(devices.drawer_left_open_s) * 1000,
    );
    Ok(match devices.display.as_str() {
        "none" => till,
        connection => {
            let Some(rest) = connection.strip_prefix("serial://") else {
                bail!(
                    "unknown display connection `{connection}` (hint: serial:///dev/ttyUSB1?baud=9600 or none)"
                );
            };
            let (path, baud) = devices::serial_target(rest)?;
            let display = LineDisplay {
                code_page: if devices.printer_code_page == "cp437" {
                    CodePage::Cp437
                } else {
                    CodePage::Cp858
                },
                ..LineDisplay::default()
            };
            let transport: Box<dyn Transport> =
                Box::new(SerialTransport::new(SerialConfig::new(path, baud)));
            till.with_display(transport, display)
        }
    })
}

fn drawer_text(devices: &DevicesSection) -> String {
    match devices.drawer.as_str() {
        "none" => "No drawer".into(),
        _ => "Drawer closed".into(),
    }
}

/// Printer, drawer and scanner as configured, before the first sale.
pub fn show_device_status(terminal: &Terminal, devices: &DevicesSection) {
    let scanner = if devices.scanner == "none" {
        "No scanner"
    } else {
        "Scanner ready"
    };
    terminal.set_device_status(&drawer_text(devices), scanner);
    if devices.printer == "none" {
        terminal.set_printer_status("No printer", false);
        return;
    }
    match terminal.with_till(|t| t.printer_status()) {
        Some(Ok(status)) => terminal.set_printer_status(
            &printer_text(&status),
            status.ready() && !status.paper_near_end,
        ),
        Some(Err(e)) => terminal.set_printer_status(&e.to_string(), false),
        None => {}
    }
}

fn printer_text(s: &PrinterStatus) -> String {
    if s.ready() && s.paper_near_end {
        "Paper low".into()
    } else if s.ready() {
        "Printer ready".into()
    } else {
        PrinterError::NotReady(*s).to_string()
    }
}

/// The receipt printer of a terminal configured without one: receipts stay queued.
#[derive(Debug)]
struct NoPrinter;

impl NoPrinter {
    fn error() -> PrinterError {
        PrinterError::Io(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "no printer configured (devices.printer = \"none\")",
        ))
    }
}

impl ReceiptPrinter for NoPrinter {
    fn status(&mut self) -> Result<PrinterStatus, PrinterError> {
        Err(Self::error())
    }
    fn print(&mut self, _job: &[u8]) -> Result<(), PrinterError> {
        Err(Self::error())
    }
    fn kick_drawer(&mut self, _kick: pos_drivers::DrawerKick) -> Result<(), PrinterError> {
        Err(Self::error())
    }
    fn describe(&self) -> String {
        "none".into()
    }
}

/// The framing the `[devices]` section asks for.
pub fn scanner_config(devices: &DevicesSection) -> ScannerConfig {
    ScannerConfig {
        prefix: devices.scanner_prefix.as_bytes().to_vec(),
        suffix: devices.scanner_suffix.as_bytes().to_vec(),
        debounce_ms: u64::from(devices.scanner_debounce_ms),
        ..ScannerConfig::default()
    }
}

/// How long a scanner read waits before looking at the stop flag again.
const POLL: Duration = Duration::from_millis(100);
/// How long to wait before reopening a scanner that failed (unplugged).
const REOPEN: Duration = Duration::from_secs(1);
/// A partial frame older than this is dropped (scanners send a code in one burst).
const INTER_CHAR_TIMEOUT_MS: u64 = 100;

/// Start the thread that reads the configured scanner and hands each code to the UI.
/// `Ok(None)`: no scanner is configured.
pub fn spawn_scanner(
    devices: &DevicesSection,
    remote: Remote,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let connection = devices.scanner.as_str();
    let config = scanner_config(devices);
    let drawer = drawer_text(devices);
    if connection == "none" {
        return Ok(None);
    }
    if let Some(rest) = connection.strip_prefix("serial://") {
        let (path, baud) = devices::serial_target(rest)?;
        let transport = SerialTransport::new(SerialConfig::new(path, baud));
        let reader = ScannerReader::new(transport, config, INTER_CHAR_TIMEOUT_MS);
        return Ok(Some(spawn_serial_scanner(reader, remote, stop, drawer)?));
    }
    if let Some(path) = connection.strip_prefix("evdev://") {
        return Ok(Some(spawn_wedge_scanner(
            path.to_owned(),
            config,
            remote,
            stop,
            drawer,
        )?));
    }
    bail!(
        "unknown scanner connection `{connection}` (hint: serial:///dev/ttyACM0, \
         evdev:///dev/input/by-id/...-event-kbd or none)"
    )
}

/// Tell the status bar about the scanner, once per change.
struct ScannerState {
    remote: Remote,
    drawer: String,
    ok: Option<bool>,
}

impl ScannerState {
    fn set(&mut self, ok: bool, text: &str) {
        if self.ok != Some(ok) {
            self.ok = Some(ok);
            let _ = self
                .remote
                .set_device_status(self.drawer.clone(), text.to_owned());
        }
    }

    fn deliver(&mut self, events: Vec<DeviceEvent>) {
        self.set(true, "Scanner ready");
        for event in events {
            if let DeviceEvent::Scanned(code) = event {
                tracing::debug!(%code, "scanned");
                if let Err(e) = self.remote.scan(code) {
                    tracing::warn!("scan not delivered: {e}");
                }
            }
        }
    }
}

/// A serial (or USB CDC-ACM) scanner, framed by the driver's `ScannerReader`; reopened after
/// an error (unplugged) every second.
pub fn spawn_serial_scanner<T: Transport + Send + 'static>(
    mut reader: ScannerReader<T>,
    remote: Remote,
    stop: Arc<AtomicBool>,
    drawer: String,
) -> anyhow::Result<JoinHandle<()>> {
    let describe = reader.transport().describe();
    std::thread::Builder::new()
        .name("scanner".into())
        .spawn(move || {
            let mut state = ScannerState {
                remote,
                drawer,
                ok: None,
            };
            tracing::info!("scanner on {describe}");
            while !stop.load(Ordering::Relaxed) {
                match reader.poll(POLL, pos_store::now_ms()) {
                    Ok(events) if events.is_empty() => {}
                    Ok(events) => state.deliver(events),
                    Err(e) => {
                        if state.ok != Some(false) {
                            tracing::warn!("scanner {describe}: {e}");
                        }
                        state.set(false, "Scanner unplugged");
                        std::thread::sleep(REOPEN);
                    }
                }
            }
        })
        .context("cannot start the scanner thread")
}

/// A keyboard-wedge scanner through evdev, grabbed so its keys never reach the UI.
fn spawn_wedge_scanner(
    path: String,
    config: ScannerConfig,
    remote: Remote,
    stop: Arc<AtomicBool>,
    drawer: String,
) -> anyhow::Result<JoinHandle<()>> {
    use pos_drivers::scanner::WedgeScanner;
    std::thread::Builder::new()
        .name("scanner".into())
        .spawn(move || {
            let mut state = ScannerState {
                remote,
                drawer,
                ok: None,
            };
            let mut scanner: Option<WedgeScanner> = None;
            while !stop.load(Ordering::Relaxed) {
                let Some(s) = scanner.as_mut() else {
                    match WedgeScanner::open(&path, config.clone()) {
                        Ok(s) => {
                            tracing::info!("scanner on evdev {path} (grabbed)");
                            scanner = Some(s);
                        }
                        Err(e) => {
                            if state.ok != Some(false) {
                                tracing::warn!("scanner evdev {path}: {e}");
                            }
                            state.set(false, "Scanner unplugged");
                            std::thread::sleep(REOPEN);
                        }
                    }
                    continue;
                };
                if let Err(e) = wait_readable(s.fd(), POLL) {
                    tracing::debug!("scanner poll: {e}");
                }
                match s.read(pos_store::now_ms()) {
                    Ok(events) if events.is_empty() => {}
                    Ok(events) => state.deliver(events),
                    Err(e) => {
                        tracing::warn!("scanner evdev {path}: {e}");
                        state.set(false, "Scanner unplugged");
                        scanner = None;
                    }
                }
            }
        })
        .context("cannot start the scanner thread")
}

fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, timeout: Duration) -> nix::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
    poll(
        &mut [PollFd::new(fd, PollFlags::POLLIN)],
        PollTimeout::from(ms),
    )
    .map(|_| ())
}

/// SIGINT and SIGTERM, blocked in every thread and awaited by one: it ends the UI's event
/// loop (a second signal ends the process at once).
#[derive(Debug)]
pub struct Signals {
    set: nix::sys::signal::SigSet,
}

impl Signals {
    /// Block SIGINT and SIGTERM in this thread (and the threads it starts from now on).
    pub fn block() -> anyhow::Result<Signals> {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.add(Signal::SIGTERM);
        set.thread_block()
            .context("cannot block SIGINT/SIGTERM for the UI")?;
        Ok(Signals { set })
    }

    /// Start the thread that waits for the signals and quits the event loop.
    pub fn forward_to(&self, remote: Remote) {
        let set = self.set;
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut asked = false;
                while let Ok(signal) = set.wait() {
                    if asked {
                        tracing::warn!("{signal:?} again: stopping at once");
                        std::process::exit(130);
                    }
                    asked = true;
                    tracing::info!("{signal:?}: closing the terminal");
                    if let Err(e) = remote.quit() {
                        tracing::warn!("cannot end the UI loop ({e}): stopping at once");
                        std::process::exit(130);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the signal thread: {e}");
        }
    }
}

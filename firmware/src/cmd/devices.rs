//! `pos devices ...`: what is connected, and how it answers.

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use pos_audit::EventDraft;
use pos_auth::Permission;
use pos_config::DevicesSection;
use pos_device_sim::SimPrinter;
use pos_drivers::escpos::{CodePage, DrawerKick, DrawerPin, Layout, PaperWidth};
use pos_drivers::serial::{SerialConfig, SerialTransport};
use pos_drivers::usb::{self, VidPid};
use pos_drivers::{EscPosPrinter, ReceiptPrinter, TcpTimeouts, TcpTransport};

use crate::context::{CheckFailed, Context};
use crate::secrets::SecretInput;

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// Show the configured devices, how the printer answers, and the USB printers found.
    List,
    /// Print a test page (code page, euro sign, width) on the printer.
    TestPrint(PrinterArgs),
    /// Open the cash drawer outside a sale: needs the no-sale permission and a reason, and is
    /// logged (secret of --as on stdin).
    OpenDrawer(OpenDrawerArgs),
    /// Run the network printer simulator: prints what it receives, answers status queries.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args)]
pub struct PrinterArgs {
    /// Use this printer instead of `devices.printer` (e.g. tcp://127.0.0.1:9100).
    #[arg(long, value_name = "CONNECTION")]
    pub printer: Option<String>,
}

#[derive(Debug, Args)]
pub struct OpenDrawerArgs {
    #[command(flatten)]
    pub printer: PrinterArgs,
    /// Who opens it (their secret, then TOTP code if any, on stdin).
    #[arg(long = "as", value_name = "USER")]
    pub actor: String,
    /// Reason code from `sale.reasons.no_sale`.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Address to listen on (raw printing port).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub listen: std::net::SocketAddr,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long, value_name = "S")]
    pub seconds: Option<u64>,
}

pub fn run(ctx: &Context, cmd: DevicesCommand) -> anyhow::Result<()> {
    let devices = &ctx.config.devices;
    match cmd {
        DevicesCommand::List => list(devices),
        DevicesCommand::TestPrint(args) => {
            let mut printer = open_printer(args.printer.as_deref().unwrap_or(&devices.printer))?;
            let page = test_page(devices, &printer.describe());
            printer
                .print(&page)
                .map_err(|e| CheckFailed(format!("test page not printed: {e}")))?;
            println!("Test page printed on {}", printer.describe());
            Ok(())
        }
        DevicesCommand::OpenDrawer(args) => open_drawer(ctx, args),
        DevicesCommand::Simulate(args) => simulate(args),
    }
}

/// A printer from a connection string (`tcp://`, `serial://`, `usb://`).
pub fn open_printer(connection: &str) -> anyhow::Result<Box<dyn ReceiptPrinter>> {
    if let Some(addr) = connection.strip_prefix("tcp://") {
        let transport = TcpTransport::new(addr.to_owned(), TcpTimeouts::default());
        return Ok(Box::new(EscPosPrinter::new(transport)));
    }
    if let Some(rest) = connection.strip_prefix("serial://") {
        let (path, baud) = serial_target(rest)?;
        let transport = SerialTransport::new(SerialConfig::new(path, baud));
        return Ok(Box::new(EscPosPrinter::new(transport)));
    }
    if let Some(id) = connection.strip_prefix("usb://") {
        let id = match id {
            "auto" | "" => None,
            id => Some(
                id.parse::<VidPid>()
                    .map_err(|e| anyhow::anyhow!("{connection}: {e}"))?,
            ),
        };
        let transport = usb::UsbTransport::new(id, Duration::from_secs(5));
        return Ok(Box::new(EscPosPrinter::new(transport)));
    }
    if connection == "none" {
        bail!("no printer is configured (hint: set devices.printer in the config, or pass --printer tcp://HOST:9100)");
    }
    bail!("unknown printer connection `{connection}` (hint: tcp://HOST:PORT, serial:///dev/ttyUSB0?baud=38400 or usb://VID:PID)")
}

/// `/dev/ttyUSB0?baud=38400` → path and baud (default 9600).
pub(crate) fn serial_target(rest: &str) -> anyhow::Result<(String, u32)> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut baud = 9600;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("baud", value)) => {
                baud = value
                    .parse()
                    .with_context(|| format!("baud `{value}` is not a number"))?;
            }
            _ => bail!("unknown serial option `{pair}` (hint: only baud=N is understood)"),
        }
    }
    Ok((path.to_owned(), baud))
}

/// The printer layout the config asks for, with the logo file loaded.
pub fn receipt_layout(devices: &DevicesSection) -> anyhow::Result<Layout> {
    let mut layout = layout(devices, false);
    layout.barcode = devices.receipt_barcode;
    if !devices.printer_logo.is_empty() {
        let bytes = std::fs::read(&devices.printer_logo)
            .with_context(|| format!("cannot read the logo {}", devices.printer_logo))?;
        let logo = pos_drivers::escpos::Logo::from_pbm(&bytes)
            .with_context(|| format!("logo {}", devices.printer_logo))?;
        layout.logo = Some(logo);
    }
    Ok(layout)
}

/// The printer layout the config asks for (no logo, no barcode).
pub fn layout(devices: &DevicesSection, kick: bool) -> Layout {
    Layout {
        width: if devices.printer_paper == "58mm" {
            PaperWidth::Mm58
        } else {
            PaperWidth::Mm80
        },
        code_page: if devices.printer_code_page == "cp437" {
            CodePage::Cp437
        } else {
            CodePage::Cp858
        },
        kick_drawer: kick.then(|| drawer_kick(devices)),
        cut: true,
        logo: None,
        barcode: false,
    }
}

pub(crate) fn drawer_kick(devices: &DevicesSection) -> DrawerKick {
    DrawerKick {
        pin: if devices.drawer_pin == 5 {
            DrawerPin::Pin5
        } else {
            DrawerPin::Pin2
        },
        pulse_ms: devices.drawer_pulse_ms,
    }
}

fn test_page(devices: &DevicesSection, printer: &str) -> Vec<u8> {
    let layout = layout(devices, false);
    let columns = layout.width.columns();
    let mut out = vec![0x1b, 0x40, 0x1b, 0x74, layout.code_page.escpos_table()];
    let lines = [
        "3PlugPOS test page".to_owned(),
        format!("printer: {printer}"),
        format!("paper {} ({columns} columns)", devices.printer_paper),
        format!("code page {}: äöü éè ñ € £", devices.printer_code_page),
        "-".repeat(columns),
        format!("{:<w$}{:>8}", "TOTAL", "12.34", w = columns - 8),
    ];
    for line in lines {
        out.extend(layout.code_page.encode(&line));
        out.push(b'\n');
    }
    out.extend([b'\n', b'\n', b'\n', 0x1d, 0x56, 66, 0]);
    out
}

fn list(devices: &DevicesSection) -> anyhow::Result<()> {
    println!("{:<9} {:<40} STATUS", "DEVICE", "CONNECTION");
    let printer_status = if devices.printer == "none" {
        "-".to_owned()
    } else {
        match open_printer(&devices.printer).and_then(|mut p| Ok(p.status()?)) {
            Ok(s) if s.ready() => "ready".to_owned(),
            Ok(s) => format!("not ready: {s:?}"),
            Err(e) => format!("{e:#}"),
        }
    };
    println!("{:<9} {:<40} {printer_status}", "printer", devices.printer);
    println!(
        "{:<9} {:<40} pin {}, pulse {} ms, alert after {} s",
        "drawer",
        devices.drawer,
        devices.drawer_pin,
        devices.drawer_pulse_ms,
        devices.drawer_left_open_s
    );
    println!(
        "{:<9} {:<40} debounce {} ms",
        "scanner", devices.scanner, devices.scanner_debounce_ms
    );
    println!("{:<9} {:<40}", "display", devices.display);
    let ids: Vec<VidPid> = devices
        .usb_printers
        .iter()
        .filter_map(|id| id.parse().ok())
        .collect();
    match usb::list_printers(&ids) {
        Ok(found) if found.is_empty() => println!("USB printers: none found"),
        Ok(found) => {
            for p in found {
                println!(
                    "USB printer {} on bus {} address {}",
                    p.id, p.bus, p.address
                );
            }
        }
        Err(e) => println!("USB printers: cannot list ({e})"),
    }
    Ok(())
}

fn open_drawer(ctx: &Context, args: OpenDrawerArgs) -> anyhow::Result<()> {
    let devices = &ctx.config.devices;
    if devices.drawer != "printer" {
        bail!(
            "this command opens a drawer connected to the printer (devices.drawer = \"printer\")"
        );
    }
    ctx.config
        .sale
        .reasons
        .require(pos_core::sale::ReasonKind::NoSale, &args.reason)?;
    let mut store = ctx.open_store()?;
    let policy = ctx.account_policy();
    let mut input = SecretInput::from_stdin()?;
    let secret = input.next(&format!("Secret of {}", args.actor))?;
    let code = input.next_optional("TOTP code (empty if none)")?;
    let actor = store
        .authenticate(&args.actor, &secret, code.as_deref(), &policy)
        .map_err(|e| CheckFailed(e.to_string()))?;
    store
        .authorize(&actor, Permission::NoSaleDrawerOpen, None)
        .map_err(|e| CheckFailed(e.to_string()))?;
    let mut printer = open_printer(args.printer.printer.as_deref().unwrap_or(&devices.printer))?;
    // Logged before the kick: an open the log does not know of cannot happen.
    let mut event = EventDraft::json(
        "security",
        "drawer_opened",
        &serde_json::json!({ "device": printer.describe(), "outside_sale": true }),
    )
    .by(actor.user);
    event.reason = Some(args.reason.clone());
    store.append(vec![event])?;
    printer
        .kick_drawer(drawer_kick(devices))
        .map_err(|e| CheckFailed(format!("drawer not opened: {e}")))?;
    println!("Drawer opened ({})", args.reason);
    Ok(())
}

fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let sim = SimPrinter::start_on(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    println!("Simulated printer on tcp://{} (Ctrl-C to stop)", sim.addr());
    let started = std::time::Instant::now();
    let mut shown = 0;
    loop {
        let jobs = sim.jobs();
        for job in jobs.iter().skip(shown) {
            println!("{job}\n---- cut ----");
        }
        shown = shown.max(jobs.len());
        if args
            .seconds
            .is_some_and(|s| started.elapsed() >= Duration::from_secs(s))
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

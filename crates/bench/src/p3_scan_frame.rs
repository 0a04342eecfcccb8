//! P3 scan to drawn frame: from the first byte of a barcode written to a serial scanner (the
//! pty simulator `SimScanner`) until the terminal's 1280x800 software-rendered frame shows the
//! new line. On the way: the real driver (`ScannerReader` on the serial port, its own thread),
//! `slint::invoke_from_event_loop` to the UI thread (the headless platform's event loop, as
//! `pos terminal --headless` runs it), `Terminal::scan` (engine: barcode parse, catalogue
//! lookup, the ticket line; the view-model refresh) and a full redraw (`headless::render_rgb`).
//! Baseline, interleaved on the same thread: one full redraw of the same window without any
//! change. Tickets are paid and completed every [`LINES_PER_TICKET`] lines (untimed), so the
//! frames stay those of a real basket.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use pos_core::sale::{Money, Tender};
use pos_core::DeviceRole;
use pos_device_sim::{SimPrinter, SimScanner};
use pos_drivers::printer::EscPosPrinter;
use pos_drivers::scanner::{ScannerConfig, ScannerReader};
use pos_drivers::serial::{SerialConfig, SerialTransport};
use pos_drivers::transport::{TcpTimeouts, TcpTransport};
use pos_drivers::DeviceEvent;
use pos_engine::{Engine, EngineConfig, Till};
use pos_store::Store;
use pos_ui::backend::{self, Backend, Options, Remote, ScreenSize};
use pos_ui::headless;
use slint::Model;

use crate::figure::{group, Better, Cond, Figure, Meta};
use crate::timing::Samples;
use crate::{fsinfo, workload, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P3",
        name: "scan to drawn frame (p99)",
        unit: "ms",
        baseline_name: "one full frame redraw (p99)",
        better: Better::Lower,
        goal: "p99 < 8 ms",
        conditions: &[Cond::ValueAtMost(8.0)],
    },
    run,
};

/// A ticket is completed after this many lines, and a new one starts.
const LINES_PER_TICKET: usize = 25;
/// The longest wait for one scan to reach the frame before the figure fails.
const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

/// One scan, timed on the UI thread.
#[derive(Debug, Clone, Copy)]
struct Drawn {
    /// When the frame showing the line was finished.
    at: Instant,
    /// When the driver thread handed the code to the event loop.
    delivered: Instant,
    /// `Terminal::scan` (engine and view-model).
    scan: Duration,
    /// The redraw after it.
    render: Duration,
    /// The baseline: a redraw of the unchanged window right after.
    baseline: Duration,
}

fn run(settings: &Settings) -> Result<Figure> {
    let (warmup, rounds) = if settings.quick {
        (20, 300)
    } else {
        (100, 3000)
    };
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p3-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, _) = fsinfo::describe(root.path());
    let (store, _) = Store::init(
        &root.path().join("terminal"),
        DeviceRole::Terminal,
        "bench",
        "till-1",
        false,
    )?;
    let mut engine = Engine::new(store, EngineConfig::default());
    let codes = workload::trading_terminal(&mut engine)?;
    let sim = SimPrinter::start().context("starting the printer simulator")?;
    let printer = EscPosPrinter::new(TcpTransport::new(sim.addr(), TcpTimeouts::default()));
    let layout = pos_testkit::sim_layout();
    let till = Till::new(engine, Box::new(printer), layout, None, 60_000);

    let mut scanner = SimScanner::start(b"\r").context("starting the scanner simulator")?;
    let port = scanner.path().display().to_string();
    let config = ScannerConfig {
        // Scans follow each other within milliseconds here; a real scanner's repeat guard
        // would drop the same code read twice in a row.
        debounce_ms: 0,
        ..ScannerConfig::default()
    };
    // Opened now: opening drops bytes already waiting, which would swallow the first scan.
    let transport = SerialTransport::open(SerialConfig::new(port.clone(), 9600))
        .with_context(|| format!("opening the scanner port {port}"))?;
    let mut reader = ScannerReader::new(transport, config, 100);

    backend::install(Backend::Headless, ScreenSize::LANDSCAPE)?;
    let total = warmup + rounds;
    let stop = Arc::new(AtomicBool::new(false));
    let (drawn_tx, drawn_rx) = mpsc::channel::<Result<Drawn, String>>();
    let options = Options {
        backend: Some(Backend::Headless),
        size: ScreenSize::LANDSCAPE,
        // A guard: the run ends itself if something hangs.
        exit_after: Some(Duration::from_secs(600)),
        ..Options::default()
    };
    let mut threads = Vec::new();
    let mut spawn_error = None;
    backend::run_installed(Backend::Headless, till, &options, |terminal, remote| {
        let window = match headless::last_window() {
            Some(w) => w,
            None => {
                spawn_error = Some("the headless platform made no window".to_owned());
                return;
            }
        };
        // The frame before the first scan.
        let _ = headless::render_rgb(&window);
        terminal.set_clock(Some("09:41"));
        let stop_reader = Arc::clone(&stop);
        let reader_thread = std::thread::Builder::new()
            .name("p3-scanner-driver".into())
            .spawn(move || {
                while !stop_reader.load(Ordering::Relaxed) {
                    let events = match reader.poll(Duration::from_millis(50), pos_store::now_ms()) {
                        Ok(e) => e,
                        Err(e) => {
                            let _ = drawn_tx.send(Err(format!("scanner driver: {e}")));
                            return;
                        }
                    };
                    for event in events {
                        if let DeviceEvent::Scanned(code) = event {
                            let delivered = Instant::now();
                            let tx = drawn_tx.clone();
                            let sent = remote.with_terminal(move |t| {
                                let _ = tx.send(scan_and_draw(t, &code, delivered));
                            });
                            if let Err(e) = sent {
                                let _ = drawn_tx.send(Err(e.to_string()));
                                return;
                            }
                        }
                    }
                }
            });
        // The scanner's side: one code at a time, timed from the write until its frame.
        let codes = codes.clone();
        let device_thread = std::thread::Builder::new()
            .name("p3-scanner-device".into())
            .spawn(move || -> Result<Vec<(Duration, Drawn)>> {
                let result = (|| {
                    let mut samples = Vec::with_capacity(total);
                    for i in 0..total {
                        let code = &codes[i % codes.len()];
                        let t0 = Instant::now();
                        scanner.scan(code)?;
                        let drawn = match drawn_rx.recv_timeout(SCAN_TIMEOUT) {
                            Ok(Ok(d)) => d,
                            Ok(Err(e)) => bail!("scan {i}: {e}"),
                            Err(_) => bail!("scan {i} ({code}) never reached the frame"),
                        };
                        samples.push((drawn.at.duration_since(t0), drawn));
                    }
                    Ok(samples)
                })();
                let _ = remote.quit();
                result
            });
        match (reader_thread, device_thread) {
            (Ok(r), Ok(d)) => threads.push((r, d)),
            (Err(e), _) | (_, Err(e)) => {
                spawn_error = Some(format!("cannot start the scanner threads: {e}"));
                let _ = Remote::default().quit();
            }
        }
    })?;
    stop.store(true, Ordering::Relaxed);
    if let Some(e) = spawn_error {
        bail!(e);
    }
    let (reader_thread, device_thread) = threads.pop().context("no scanner threads")?;
    let samples = device_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the scanner device thread panicked"))??;
    let _ = reader_thread.join();
    ensure!(samples.len() == total, "{} of {total} scans", samples.len());

    let measured = samples.get(warmup..).unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let side = |f: &dyn Fn(&(Duration, Drawn)) -> Duration| {
        Samples(measured.iter().map(|s| ms(f(s))).collect())
    };
    let value = side(&|s| s.0);
    let baseline = side(&|s| s.1.baseline);
    let driver = side(&|s| s.0.saturating_sub(s.1.at.duration_since(s.1.delivered)));
    let scan = side(&|s| s.1.scan);
    let render = side(&|s| s.1.render);
    let pct = |s: &Samples| {
        format!(
            "p50 {} / p99 {} ms",
            group(s.quantile(0.5)),
            group(s.quantile(0.99))
        )
    };
    let mut figure = Figure::new(&SPEC.meta, value.quantile(0.99), baseline.quantile(0.99));
    if let Some(warning) = crate::timing::noise_warning(&value, &baseline) {
        figure = figure.note(warning);
    }
    Ok(figure
        .note(format!(
            "{rounds} scans after {warmup} warm-up on a pty serial scanner ({port}), \
                 1280x800 software-rendered frames, tickets completed every \
                 {LINES_PER_TICKET} lines; store in {where_}"
        ))
        .note(format!(
            "scan to frame {}; redraw alone (baseline) {}",
            pct(&value),
            pct(&baseline)
        ))
        .note(format!(
            "parts: pty + driver + hand-over to the UI thread {}; Terminal::scan {}; \
                 redraw with the new line {}",
            pct(&driver),
            pct(&scan),
            pct(&render)
        ))
        .note(
            "each scanned line is journaled durably (the open-ticket journal: one fdatasync, \
                 ARCHITECTURE invariants) before the frame; the ticket's completion every few \
                 lines commits the sale, untimed",
        ))
}

thread_local! {
    /// The last frame drawn on the UI thread: each scan's frame must differ from it.
    static PREVIOUS: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// On the UI thread: the scan, the frame that shows it, the baseline frame; a full ticket is
/// then paid and completed (untimed) so the next ticket starts empty.
fn scan_and_draw(t: &pos_ui::Terminal, code: &str, delivered: Instant) -> Result<Drawn, String> {
    let window = headless::last_window().ok_or("no window")?;
    let lines_before = t.window().get_lines().row_count();
    let started = Instant::now();
    if !t.scan(code) {
        return Err(format!(
            "scan {code} refused: {}",
            t.window().get_error_text()
        ));
    }
    let scanned = Instant::now();
    let frame = headless::render_rgb(&window);
    let at = Instant::now();
    let lines = t.window().get_lines().row_count();
    let changed =
        PREVIOUS.with(|p| std::mem::replace(&mut *p.borrow_mut(), frame.clone()) != frame);
    if lines != lines_before + 1 || !changed {
        return Err(format!(
            "the frame does not show the new line ({lines_before} -> {lines} lines, \
             frame changed: {changed})"
        ));
    }
    let b0 = Instant::now();
    let again = headless::render_rgb(&window);
    let baseline = b0.elapsed();
    if again.len() != frame.len() {
        return Err("the baseline frame differs in size".into());
    }
    if lines >= LINES_PER_TICKET {
        let done = t.with_engine(|e| -> Result<(), pos_engine::EngineError> {
            e.pay(Tender::Cash, Money(10_000_000))?;
            e.complete()?;
            Ok(())
        });
        match done {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("completing the ticket: {e}")),
            None => return Err("the terminal is busy".into()),
        }
        let empty = headless::render_rgb(&window);
        PREVIOUS.with(|p| *p.borrow_mut() = empty);
    }
    Ok(Drawn {
        at,
        delivered,
        scan: scanned.duration_since(started),
        render: at.duration_since(scanned),
        baseline,
    })
}

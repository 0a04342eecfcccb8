//! P4 terminal memory: the peak resident set (VmHWM) of a terminal process that opens a store
//! with 100 000 products, builds the touchscreen UI on the headless platform, draws a
//! 1280x800 frame, scans items from the large catalogue and draws again. Baseline, in the
//! same run: the same process without the UI (store, engine, the same scans). Each side runs
//! in its own child process (`pos-bench --p4-child ui|engine --p4-dir DIR`, hidden), so
//! neither sees the other's heap; the catalogue is built once, before, by the parent.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use pos_audit::EventDraft;
use pos_core::sale::events::{ProductSaved, CATALOGUE};
use pos_core::sale::TaxRate;
use pos_core::{DeviceRole, ProductId};
use pos_drivers::escpos::DrawerKick;
use pos_drivers::{PrinterError, PrinterStatus, ReceiptPrinter};
use pos_engine::{Credentials, Engine, EngineConfig, Till};
use pos_store::{Store, StoreOptions};
use serde::{Deserialize, Serialize};

use crate::figure::{group, Better, Cond, Figure, Meta};
use crate::timing::median;
use crate::{fsinfo, p2_lookup, workload, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P4",
        name: "terminal RSS, UI + 100k products (peak)",
        unit: "MB",
        baseline_name: "same process without the UI (peak)",
        better: Better::Lower,
        goal: "peak RSS < 60 MB",
        conditions: &[Cond::ValueAtMost(60.0)],
    },
    run,
};

/// Products in the catalogue.
const PRODUCTS: u64 = 100_000;
/// Items scanned in each child (from the large catalogue).
const SCANS: u64 = 30;

/// What a child reports (kB, as /proc/self/status gives them).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Memory {
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

fn run(settings: &Settings) -> Result<Figure> {
    let rounds = if settings.quick { 1 } else { 3 };
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p4-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, _) = fsinfo::describe(root.path());
    let dir = root.path().join("terminal");
    let started = Instant::now();
    build_catalogue(&dir)?;
    let built = started.elapsed().as_secs_f64();
    eprintln!("P4: catalogue of {PRODUCTS} products built in {built:.1} s");

    let exe = std::env::current_exe().context("finding pos-bench's own executable")?;
    let (mut ui, mut engine) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            ["ui", "engine"]
        } else {
            ["engine", "ui"]
        };
        for mode in order {
            let m = child_process(&exe, mode, &dir)?;
            if mode == "ui" {
                ui.push(m);
            } else {
                engine.push(m);
            }
        }
    }
    let mb = |kb: u64| kb as f64 / 1024.0;
    let med = |v: &[Memory], f: fn(&Memory) -> u64| {
        median(&v.iter().map(|m| mb(f(m))).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    let (ui_hwm, ui_rss) = (med(&ui, |m| m.hwm_kb), med(&ui, |m| m.rss_kb));
    let (en_hwm, en_rss) = (med(&engine, |m| m.hwm_kb), med(&engine, |m| m.rss_kb));
    let figure = Figure::new(&SPEC.meta, ui_hwm, en_hwm);
    Ok(figure
        .note(format!(
            "{} products ({} barcodes) opened from {where_}, built in {built:.1} s; {SCANS} \
             scans; {rounds} child process(es) per side, medians",
            group(PRODUCTS as f64),
            group((PRODUCTS + PRODUCTS.div_ceil(4)) as f64),
        ))
        .note(format!(
            "with the UI (headless platform, 1280x800 frame drawn twice): peak {ui_hwm:.1} MB, \
             resident at the end {ui_rss:.1} MB; without: peak {en_hwm:.1} MB, resident \
             {en_rss:.1} MB; the UI adds {:.1} MB at peak",
            ui_hwm - en_hwm
        ))
        .note(
            "not counted: a KMS or winit backend's own frame buffers (2 x 4 MB at 1280x800 \
             with 32-bit pixels) and the shared libraries they map",
        ))
}

/// The store the children open: staff, a cashier with a shift open, and the catalogue.
fn build_catalogue(dir: &Path) -> Result<()> {
    let (store, _) = Store::init(dir, DeviceRole::Terminal, "bench", "till-1", false)
        .with_context(|| format!("initialising a terminal data dir in {}", dir.display()))?;
    let mut engine = Engine::new(store, EngineConfig::default());
    workload::trading_terminal(&mut engine)?;
    engine.logout()?;
    // The large catalogue's tax classes (see p2_lookup::product).
    engine.login(Credentials::new("maria", "Velvet-Orchard-2026"))?;
    for (class, rate_bp) in [("A", 1900), ("B", 700)] {
        engine.save_tax_rate(TaxRate {
            class: class.into(),
            name: format!("VAT {class}"),
            rate_bp,
        })?;
    }
    engine.logout()?;
    let store = engine.store_mut();
    for first in (0..PRODUCTS).step_by(p2_lookup::BATCH as usize) {
        let drafts = (first..(first + p2_lookup::BATCH).min(PRODUCTS))
            .map(|i| {
                EventDraft::json(
                    CATALOGUE,
                    ProductSaved::KIND,
                    &ProductSaved {
                        product: p2_lookup::product(i, ProductId::new_v7()),
                        before: None,
                    },
                )
            })
            .collect();
        store
            .append(drafts)
            .with_context(|| format!("saving products {first}.."))?;
    }
    Ok(())
}

fn child_process(exe: &Path, mode: &str, dir: &Path) -> Result<Memory> {
    let out = Command::new(exe)
        .arg("--p4-child")
        .arg(mode)
        .arg("--p4-dir")
        .arg(dir)
        .output()
        .with_context(|| format!("running {} --p4-child {mode}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "the P4 child ({mode}) failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("reading the P4 child's answer `{}`", stdout.trim()))
}

/// VmRSS and VmHWM of this process.
fn memory() -> Result<Memory> {
    let status = std::fs::read_to_string("/proc/self/status")
        .context("reading /proc/self/status (Linux only)")?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {name} in /proc/self/status"))
    };
    Ok(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// The hidden child: `mode` is `ui` or `engine`. Prints one JSON [`Memory`] line.
pub fn child(mode: &str, dir: &Path) -> Result<()> {
    let store = Store::open(dir, StoreOptions::default())
        .with_context(|| format!("opening {}", dir.display()))?;
    let mut engine = Engine::new(store, EngineConfig::default());
    engine.login(Credentials::new("alice", "481516"))?;
    // Spread over the catalogue; pieces only (weighed goods need a scale) and active ones.
    let codes: Vec<String> = (0..SCANS)
        .map(|i| {
            let mut n = i * (PRODUCTS / SCANS) + 1;
            while n % 20 == 7 || n % 97 == 13 {
                n += 1;
            }
            p2_lookup::barcode(n, false)
        })
        .collect();
    // Each child leaves its ticket parked, so the next one starts without an open ticket to
    // recover from the journal (the measured work is the same for every child).
    let mem = match mode {
        "engine" => {
            for code in &codes {
                engine.scan(code)?;
            }
            ensure!(
                engine.ticket().map(|t| t.lines().len()) == Some(codes.len()),
                "not every scan became a line"
            );
            let mem = memory()?;
            engine.logout()?;
            mem
        }
        "ui" => {
            pos_ui::headless::init()?;
            let layout = pos_testkit::sim_layout();
            let till = Till::new(engine, Box::new(NullPrinter), layout, None, 60_000);
            let terminal = pos_ui::Terminal::new(till)?;
            let window = pos_ui::headless::last_window().context("no window")?;
            let frame = pos_ui::headless::render_rgb(&window);
            ensure!(!frame.is_empty(), "no frame");
            for code in &codes {
                ensure!(
                    terminal.scan(code),
                    "scan {code}: {}",
                    terminal.window().get_error_text()
                );
            }
            let frame = pos_ui::headless::render_rgb(&window);
            ensure!(!frame.is_empty(), "no frame");
            let mem = memory()?;
            terminal
                .with_engine(|e| e.logout())
                .context("the terminal is busy")??;
            mem
        }
        other => bail!("unknown P4 child mode `{other}` (ui or engine)"),
    };
    println!("{}", serde_json::to_string(&mem)?);
    Ok(())
}

/// A printer that is always ready and prints nowhere: P4 measures the terminal, not a driver.
#[derive(Debug)]
struct NullPrinter;

impl ReceiptPrinter for NullPrinter {
    fn status(&mut self) -> Result<PrinterStatus, PrinterError> {
        Ok(PrinterStatus {
            online: true,
            ..PrinterStatus::default()
        })
    }
    fn print(&mut self, _job: &[u8]) -> Result<(), PrinterError> {
        Ok(())
    }
    fn kick_drawer(&mut self, _kick: DrawerKick) -> Result<(), PrinterError> {
        Ok(())
    }
    fn describe(&self) -> String {
        "null".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_memory() {
        let m = memory().unwrap();
        assert!(m.rss_kb > 0 && m.hwm_kb >= m.rss_kb, "{m:?}");
    }
}

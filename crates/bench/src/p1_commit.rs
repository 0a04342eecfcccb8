//! P1 durable sale commit: `Engine::complete` of a 10-line ticket paid in cash (10
//! `stock.moved` events and `sale.completed`, with their projections, the receipt number and
//! the receipt model) in a terminal data dir, against a single-row durable INSERT into a plain
//! SQLite table with the same pragmas in the same directory. fsync dominates both, so the ratio
//! shows how much the engine and the store add on top of the one unavoidable flush. Scanning
//! the lines and taking the payment happen in memory before the timed part.

use anyhow::{ensure, Context, Result};
use pos_core::sale::{Money, Tender};
use pos_core::DeviceRole;
use pos_engine::{Engine, EngineConfig};
use pos_store::Store;
use rusqlite::{Connection, TransactionBehavior};

use crate::figure::{Better, Cond, Figure, Meta};
use crate::timing::{self, interleaved, time};
use crate::{fsinfo, workload, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P1",
        name: "durable sale commit",
        unit: "us",
        baseline_name: "raw SQLite durable insert",
        better: Better::Lower,
        goal: "ratio <= 2",
        conditions: &[Cond::RatioAtMost(2.0)],
    },
    run,
};

/// Lines on the benchmark's ticket ("about 10 lines + payment").
const TICKET_LINES: usize = 10;

/// About the size of one event row (canonical record plus hashes).
const RAW_ROW_BYTES: usize = 200;

fn run(settings: &Settings) -> Result<Figure> {
    let (warmup, rounds) = if settings.quick {
        (10, 200)
    } else {
        (50, 2000)
    };
    // Declared first so it is removed last, after the store and connection are closed.
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p1-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, on_disk) = fsinfo::describe(root.path());
    eprintln!("P1: files in {where_}");

    let data_dir = root.path().join("terminal");
    let (store, _) = Store::init(&data_dir, DeviceRole::Terminal, "bench", "till-1", false)
        .with_context(|| format!("initialising a terminal data dir in {}", data_dir.display()))?;
    let mut engine = Engine::new(store, EngineConfig::default());
    let codes = workload::trading_terminal(&mut engine)?;

    let raw_path = root.path().join("raw.db");
    let mut raw =
        Connection::open(&raw_path).with_context(|| format!("opening {}", raw_path.display()))?;
    // The store's pragmas (pos_store::store::open_connection).
    let mode: String = raw.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "SQLite refused WAL (journal mode {mode})"
    );
    raw.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         CREATE TABLE sale_rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL) STRICT;",
    )?;
    let row = vec![0x5a_u8; RAW_ROW_BYTES];

    let mut sale = 0u64;
    let (value, baseline) = interleaved(
        warmup,
        rounds,
        || {
            for line in 0..TICKET_LINES {
                engine.scan(&codes[(sale as usize + line) % codes.len()])?;
            }
            engine.pay(Tender::Cash, Money(1_000_000))?;
            sale += 1;
            let (took, receipt) = time(|| Ok(engine.complete()?))?;
            ensure!(receipt.sale.lines.len() == TICKET_LINES);
            Ok(took)
        },
        || {
            let (took, ()) = time(|| {
                let tx = raw.transaction_with_behavior(TransactionBehavior::Immediate)?;
                tx.prepare_cached("INSERT INTO sale_rows (body) VALUES (?1)")?
                    .execute([&row])?;
                tx.commit()?;
                Ok(())
            })?;
            Ok(took)
        },
    )?;

    // The benchmark must have produced a sound log, or its number means nothing.
    let store = engine.into_store();
    store.verify().context("verifying the benchmark's log")?;
    let sold = store.next_receipt_number(store.device_id())? - 1;
    ensure!(sold == sale, "{sold} receipts on file, {sale} sales made");
    drop(store);
    drop(raw);

    let us = |s: f64| s * 1e6;
    let mut figure = Figure::new(&SPEC.meta, us(value.median()), us(baseline.median()))
        .note(format!("files: {where_}"))
        .note(format!(
            "{rounds} interleaved rounds after {warmup} warm-up; {TICKET_LINES}-line ticket paid in \
             cash, {} events per commit: {} us; single {RAW_ROW_BYTES}-byte row: {} us",
            TICKET_LINES + 1,
            value.spread(us),
            baseline.spread(us)
        ));
    if let Some(warning) = timing::noise_warning(&value, &baseline) {
        figure = figure.note(warning);
    }
    if !on_disk {
        figure = figure.note("WARNING: memory-backed filesystem, fsync is free: figure invalid");
    }
    Ok(figure)
}

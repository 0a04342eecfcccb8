//! P10 payment to first print byte: from the start of `Engine::complete` (the durable commit
//! of a paid 10-line ticket, which queues its receipt) through `Engine::print_next` (status
//! query, `print.started` commit, ESC/POS encoding) to the first byte of the receipt written to
//! a network printer (the TCP simulator on loopback). No natural baseline: the goal is the
//! baseline (p99 under 20 ms, so the receipt starts printing as the customer pays).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use pos_core::sale::{Money, Tender};
use pos_core::DeviceRole;
use pos_device_sim::SimPrinter;
use pos_drivers::printer::EscPosPrinter;
use pos_drivers::transport::{TcpTimeouts, TcpTransport, Transport};
use pos_engine::{Engine, EngineConfig, PrintProgress};
use pos_store::Store;

use crate::figure::{Better, Cond, Figure, Meta};
use crate::timing::Samples;
use crate::{fsinfo, workload, Settings, Spec};

const GOAL_MS: f64 = 20.0;

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P10",
        name: "payment to first print byte (p99)",
        unit: "ms",
        baseline_name: "goal: 20 ms",
        better: Better::Lower,
        goal: "p99 <= 20 ms",
        conditions: &[Cond::RatioAtMost(1.0)],
    },
    run,
};

/// A transport that notes when the first receipt byte (not a status query) leaves.
struct Stopwatch<T> {
    inner: T,
    first_job_byte: Arc<Mutex<Option<Instant>>>,
}

impl<T: Transport> Transport for Stopwatch<T> {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let status_query = bytes.len() == 3 && bytes[0] == 0x10 && bytes[1] == 0x04;
        self.inner.write_all(bytes)?;
        if !status_query {
            if let Ok(mut first) = self.first_job_byte.lock() {
                first.get_or_insert_with(Instant::now);
            }
        }
        Ok(())
    }
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        self.inner.read_some(buf, timeout)
    }
    fn reconnect(&mut self) -> std::io::Result<()> {
        self.inner.reconnect()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

fn run(settings: &Settings) -> Result<Figure> {
    let (warmup, rounds) = if settings.quick { (5, 100) } else { (20, 1000) };
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p10-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, on_disk) = fsinfo::describe(root.path());
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
    let first_job_byte = Arc::new(Mutex::new(None));
    let transport = Stopwatch {
        inner: TcpTransport::new(sim.addr(), TcpTimeouts::default()),
        first_job_byte: Arc::clone(&first_job_byte),
    };
    let mut printer = EscPosPrinter::new(transport);
    let layout = pos_testkit::sim_layout();
    let mut samples = Samples::default();
    for round in 0..warmup + rounds {
        for line in 0..10 {
            engine.scan(&codes[(round + line) % codes.len()])?;
        }
        engine.pay(Tender::Cash, Money(1_000_000))?;
        if let Ok(mut first) = first_job_byte.lock() {
            *first = None;
        }
        let start = Instant::now();
        engine.complete()?;
        let progress = engine.print_next(&mut printer, &layout)?;
        ensure!(
            matches!(progress, PrintProgress::Printed { copy: false, .. }),
            "not printed: {progress:?}"
        );
        let first = first_job_byte
            .lock()
            .ok()
            .and_then(|f| *f)
            .context("no receipt byte was written")?;
        if round >= warmup {
            samples
                .0
                .push(first.duration_since(start).as_secs_f64() * 1000.0);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let printed = sim.jobs().len();
    ensure!(
        printed >= warmup + rounds,
        "the simulator printed {printed} receipts"
    );

    let mut figure = Figure::new(&SPEC.meta, samples.quantile(0.99), GOAL_MS).note(format!(
        "{rounds} sales after {warmup} warm-up, 10 lines each, TCP printer simulator on loopback; \
         payment to first receipt byte: {} ms; files: {where_}",
        samples.spread(|x| x)
    ));
    if !on_disk {
        figure = figure.note("WARNING: memory-backed filesystem, fsync is free: figure invalid");
    }
    Ok(figure)
}

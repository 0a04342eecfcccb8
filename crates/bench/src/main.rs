//! pos-bench: the performance figures of DESIGN.md, each measured against a baseline on the
//! same machine, in the same run, so the ratio survives a noisy or slow machine.
//!
//! Adding a figure: write `pN_name.rs` with a `pub const SPEC: Spec` (id, name, unit, baseline,
//! goal) and a `run(&Settings) -> Result<Figure>` that measures with `timing::interleaved`, then
//! list it in [`FIGURES`].

mod figure;
mod fsinfo;
mod p10_print;
mod p1_commit;
mod p2_lookup;
mod p3_scan_frame;
mod p4_rss;
mod p5_catchup;
mod p6_live;
mod p7_verify;
mod p8_backup;
mod p9_dashboard;
mod report;
mod s1_credential;
mod sync_rig;
mod timing;
mod workload;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;

use crate::figure::{Figure, Meta};

/// How much work each figure does.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Fewer rounds and smaller data: a smoke run (well under a minute).
    pub quick: bool,
}

/// One figure of the suite: what it is and how to measure it.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub meta: Meta,
    pub run: fn(&Settings) -> Result<Figure>,
}

/// Every figure, in report order.
const FIGURES: &[Spec] = &[
    p1_commit::SPEC,
    p2_lookup::SPEC,
    p3_scan_frame::SPEC,
    p4_rss::SPEC,
    p5_catchup::SPEC,
    p6_live::SPEC,
    p7_verify::SPEC,
    p8_backup::SPEC,
    p9_dashboard::SPEC,
    p10_print::SPEC,
    s1_credential::SPEC,
];

const ABOUT: &str = "Measure 3PlugPOS performance figures against baselines on this machine";

const LONG_ABOUT: &str = "\
Measure 3PlugPOS performance figures, each against a baseline measured on the same machine in \
the same run.

Every figure reports a value, a baseline, their ratio (value / baseline, same unit) and a goal. \
Value and baseline run in interleaved rounds and each is summarised by its median, so load from \
other processes hits both alike. On a noisy or shared machine compare RATIOS, not absolute \
times: the absolute numbers move with the hardware and the load, the ratios much less.";

const FIGURES_HELP: &str = "\
Figures:
  P1  durable sale commit (us, lower is better; goal ratio <= 2)
      Engine::complete of a 10-line ticket paid in cash: 10 stock.moved events and
      sale.completed with their projections, durably committed (WAL, synchronous=FULL) in a
      terminal data dir under the temp dir (scanning and payment are not timed).
      Baseline: a single-row INSERT in its own transaction into a plain table, same pragmas,
      same directory. The temp dir must be on a real disk (not tmpfs) for fsync to count; the
      path and filesystem are printed. Set TMPDIR to choose it.
      Rounds: 200 with --quick, 2000 otherwise.
  P2  barcode lookup (us, lower is better; goal p99 < 20 us)
      p99 of Store::product_by_code (barcode key -> product row -> parsed product, the scan
      path) for random existing barcodes, in a terminal catalogue built under the temp dir
      (1 000 000 products, a quarter with a second barcode; 100 000 with --quick). Baseline:
      p99 of the raw point query on the barcode table alone, through a separate read-only
      connection to the same file. The ratio is informational. Lookups: 200 000 (20 000 with
      --quick), interleaved one by one; the catalogue's build time is printed.
  P3  scan to drawn frame (ms, lower is better; goal p99 < 8 ms)
      From the first byte of a barcode written to a pty serial scanner (the simulator) until
      the 1280x800 software-rendered frame shows the new line: the real scanner driver on
      its own thread, invoke_from_event_loop to the UI thread (headless platform's event
      loop), Terminal::scan (engine lookup and ticket line, view-model), a full redraw.
      Baseline: a redraw of the same, unchanged window right after each scan. Tickets are
      completed every 25 lines. Scans: 300 with --quick, 3000 otherwise.
  P4  terminal RSS (MB, lower is better; goal peak < 60 MB)
      Peak resident set (VmHWM) of a child process that opens a terminal store with
      100 000 products, builds the UI on the headless platform, draws a 1280x800 frame,
      scans 30 items and draws again. Baseline: the same child without the UI. 1 child per
      side with --quick, 3 (medians) otherwise.
  P5  catch-up sync throughput (events/s, higher is better; goal ratio >= 0.5 and >= 50k/s)
      A terminal whose log holds records the hub never saw (250 000 sale lines, appended as
      stock.moved records in big commits; 50 000 with --quick) connects and its sync link
      (TerminalClient) sends them over TLS 1.3 with client certificates on loopback to the
      real hub service (RunningHub, enrolled as `pos enroll` does) until the hub's store holds
      the last one. Baseline: the hub's raw work on the same records: the same 512-event
      batches (read beforehand) verified with ChainVerifier and committed with Store::ingest
      in one thread, no TLS, protocol or terminal reads. Each round uses a fresh copy of the
      same enrolled hub data dir. 3 interleaved rounds after 1 warm-up.
  P6  live sale visible on hub (ms, lower is better; goal p99 < 200 ms)
      p99 from Engine::complete of a paid 10-line ticket on the terminal until the hub's store
      holds the sale's last record, on the product's path: the sync link polls the store's
      head watch every 20 ms (as the firmware does), TerminalClient over mTLS on loopback,
      RunningHub verifies and commits. Baseline: p99 of the local durable commit of the same
      sales (Engine::complete). Sales: 150 with --quick, 600 otherwise, one at a time.
  P7  audit verify throughput (records/s, higher is better; goal ratio >= 0.5 and >= 1M/s)
      ChainVerifier push() over an in-memory chain plus finish(): hash links, a signed
      checkpoint every 1000 records and the head seal. Baseline: blake3::hash of each record's
      canonical bytes, one call per record. Chain: 200 000 records with --quick, 1 000 000
      otherwise; 5 rounds.
  S1  credential verify (ms, lower is better; goal ratio <= 1 and >= 5 ms)
      One argon2id verification with the production parameters, as at every login. The
      baseline is the goal (250 ms: a snappy login); the floor keeps offline guessing costly.
  P10 payment to first print byte (ms, lower is better; goal p99 <= 20 ms)
      From Engine::complete of a paid 10-line ticket (durable commit, receipt queued) through
      Engine::print_next (status query, print.started commit, ESC/POS encoding) to the first
      receipt byte written to the TCP printer simulator. The baseline is the goal.
  P8  backup of a hub database (s, lower is better; goal ratio <= 1.5)
      pos_backup::create (online snapshot with SQLite's backup API, tar, zstd level 3,
      XChaCha20-Poly1305 segments with a key file, manifest) followed by pos_backup::verify
      (decrypt, every hash, integrity_check, every audit chain against the manifest) of a
      1 GB hub database of realistic sales (stock.moved records; ~100 MB with --quick).
      Baseline: `sqlite3 DB \".backup COPY\"` then `zstd -3 COPY` on the same file (the CLIs
      when both are installed, else rusqlite's backup API and the zstd crate in-process;
      the output says which). Where restic is installed, `restic backup` of the same file
      into a new repository is timed once and its ratio noted. 3 interleaved rounds (after
      1 warm-up in the full run); create and verify times are noted apart.
  P9  today's dashboard over 10M sale lines (ms, lower is better; goal < 50 ms and
      ratio <= 0.01, i.e. 100x faster)
      Store::dashboard (KPI tiles with margin, sales per hour, top 10 products, tender split
      of today) read from the analytics tables, in a terminal store filled through
      Store::append with 10 000 000 sale lines (500 000 sales of 20 lines, 5 000 products;
      200 000 lines with --quick; POS_BENCH_P9_LINES overrides), all stamped today. Baseline:
      the same figures by GROUP BY queries over the day's sale.completed payloads (json_each
      over lines and payments), same file, read-only connection; both must agree before
      timing. 3 interleaved rounds after 1 warm-up, each the median of 15 dashboard reads vs
      one naive pass. The full run writes ~8.1 GB under the temp dir and took 9.5 min on
      the 2-core dev box (fill 126 s, each naive pass ~80 s; --quick: ~10 s).

Output: a table by default (with PASS/MISS per goal); --json prints exactly one JSON object
  {\"figures\": [{\"id\", \"name\", \"value\", \"unit\", \"baseline_name\", \"baseline\",
  \"ratio\", \"better\", \"goal\"}, ...]} on stdout. Progress goes to stderr. The table's
  notes give each side's spread and flag figures whose samples spread widely (p90 > 4 x p10):
  on a saturated machine the median can flip between modes, so re-run those.
Exit status: 0 when measured (even if a goal is missed), 1 on error.";

#[derive(Debug, Parser)]
#[command(name = "pos-bench", version, about = ABOUT, long_about = LONG_ABOUT, after_help = FIGURES_HELP)]
struct Cli {
    /// Fewer rounds and smaller data sets (a smoke run, well under a minute).
    #[arg(long)]
    quick: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Measure only these figures, e.g. `--only P1,P7`.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    only: Vec<String>,
    /// Internal: run as P4's measured child process (`ui` or `engine`).
    #[arg(long, hide = true, value_name = "MODE", requires = "p4_dir")]
    p4_child: Option<String>,
    /// Internal: the data dir P4's child opens.
    #[arg(long, hide = true, value_name = "DIR")]
    p4_dir: Option<std::path::PathBuf>,
}

/// The figures `only` names, in report order; all when empty.
fn select(only: &[String]) -> Result<Vec<&'static Spec>> {
    let wanted: Vec<String> = only
        .iter()
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| !s.is_empty())
        .collect();
    let known: Vec<&str> = FIGURES.iter().map(|f| f.meta.id).collect();
    if let Some(unknown) = wanted.iter().find(|w| !known.contains(&w.as_str())) {
        bail!(
            "no figure `{unknown}` is measured; choose from {}",
            known.join(", ")
        );
    }
    Ok(FIGURES
        .iter()
        .filter(|f| wanted.is_empty() || wanted.iter().any(|w| w == f.meta.id))
        .collect())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pos-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    if let (Some(mode), Some(dir)) = (&cli.p4_child, &cli.p4_dir) {
        return p4_rss::child(mode, dir);
    }
    let settings = Settings { quick: cli.quick };
    let started = Instant::now();
    let mut figures = Vec::new();
    for spec in select(&cli.only)? {
        let t = Instant::now();
        eprintln!("{} {}: measuring...", spec.meta.id, spec.meta.name);
        let figure = (spec.run)(&settings)?;
        eprintln!(
            "{} {}: done in {:.1} s",
            spec.meta.id,
            spec.meta.name,
            t.elapsed().as_secs_f64()
        );
        figures.push(figure);
    }
    if cli.json {
        println!("{}", report::json(&figures)?);
    } else {
        print!("{}", report::table(&figures));
    }
    eprintln!(
        "pos-bench{}: {} figure(s) in {:.1} s",
        if cli.quick { " --quick" } else { "" },
        figures.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_known_figures_in_order() {
        let ids = |v: Vec<&Spec>| v.iter().map(|s| s.meta.id).collect::<Vec<_>>();
        assert_eq!(
            ids(select(&[]).unwrap()),
            ["P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9", "P10", "S1"]
        );
        assert_eq!(
            ids(select(&["p7".into(), "P1".into()]).unwrap()),
            ["P1", "P7"]
        );
        assert!(select(&["P11".into()])
            .unwrap_err()
            .to_string()
            .contains("P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, S1"));
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli =
            Cli::try_parse_from(["pos-bench", "--quick", "--json", "--only", "P1,P7"]).unwrap();
        assert!(cli.quick && cli.json);
        assert_eq!(cli.only, ["P1", "P7"]);
    }
}

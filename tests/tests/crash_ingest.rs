//! Crash safety of sync ingest across processes: a child pushing a terminal's chain into a hub
//! database (`Store::ingest`, batches of 1..=40) is killed with SIGKILL at random moments; after
//! every kill each acknowledged ingest is there, nothing is half-ingested (the hub's stock levels
//! are exactly the terminal's movements up to the stored seq, receipts of whole commits only),
//! every chain verifies, projections equal a rebuild, and ingesting continues where it stopped.
//!
//! `POS_CRASH_SEED` replays the kill timings of an earlier run (printed at the start).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use pos_audit::EventDraft;
use pos_core::payloads::{DeviceRegistered, StockMoved};
use pos_core::DeviceRole;
use pos_store::{LogFilter, Store, StoreOptions};
use pos_system_tests::{parse_acks, zero_sum_batch, XorShift};

const KILLS: usize = 40;
const TERMINAL_RECORDS: u64 = 1500;

struct Ingester {
    child: Child,
    stdout: BufReader<ChildStdout>,
    text: String,
}

impl Ingester {
    fn spawn(hub: &Path, terminal: &Path) -> Ingester {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_ingester"))
            .arg(hub)
            .arg(terminal)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn crash_ingester: {e}"));
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ingester {
            child,
            stdout,
            text: String::new(),
        }
    }

    fn read_lines(&mut self, n: usize) {
        for _ in 0..n {
            if self.stdout.read_line(&mut self.text).expect("read stdout") == 0
                || self.text.ends_with("DONE\n")
            {
                return;
            }
        }
    }

    /// SIGKILL the child; its acks, and whether it had finished.
    fn kill(mut self) -> (Vec<(u64, String)>, bool) {
        self.child.kill().expect("SIGKILL crash_ingester");
        let status = self.child.wait().expect("wait for crash_ingester");
        self.stdout
            .read_to_string(&mut self.text)
            .expect("read child stdout");
        if status.signal() != Some(9) {
            let mut stderr = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("crash_ingester was not killed but ended with {status}: {stderr}");
        }
        (parse_acks(&self.text), self.text.contains("DONE\n"))
    }
}

/// A terminal with about `TERMINAL_RECORDS` records of zero-sum stock batches; and its stock
/// movements by seq.
fn terminal(rng: &mut XorShift) -> (tempfile::TempDir, BTreeMap<u64, (String, i64)>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (mut store, _) = Store::init(tmp.path(), DeviceRole::Terminal, "branch", "till", false)
        .unwrap_or_else(|e| panic!("init: {e}"));
    while store.head().0 < TERMINAL_RECORDS {
        store.append(zero_sum_batch(rng)).expect("append");
    }
    let moves = store
        .events(&LogFilter::default())
        .expect("events")
        .into_iter()
        .filter(|e| e.module == StockMoved::MODULE)
        .map(|e| {
            let p: StockMoved = serde_json::from_slice(&e.payload).expect("payload");
            (e.seq, (p.item, p.quantity))
        })
        .collect();
    (tmp, moves)
}

fn hub(terminal: &Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (mut store, _) = Store::init(tmp.path(), DeviceRole::Hub, "branch", "hub", false)
        .unwrap_or_else(|e| panic!("init: {e}"));
    let t = Store::open_read_only(terminal).expect("open terminal");
    store
        .append(vec![EventDraft::json(
            DeviceRegistered::MODULE,
            DeviceRegistered::KIND,
            &DeviceRegistered {
                device: t.device_id(),
                role: DeviceRole::Terminal,
                branch: "branch".into(),
                name: "till".into(),
                public_key: t.identity().public_key.clone(),
                cert_fingerprint: None,
            },
        )])
        .expect("register");
    tmp
}

/// After a kill: what was acknowledged is there, nothing is half-ingested, all verifies and
/// rebuilds. Returns the stored seq.
fn check(hub: &Path, terminal: &Store, moves: &BTreeMap<u64, (String, i64)>, acked: u64) -> u64 {
    let mut store = Store::open(hub, StoreOptions::default())
        .unwrap_or_else(|e| panic!("open after kill: {e}"));
    let state = store.origin_state(terminal.device_id()).expect("state");
    assert!(
        state.last_seq >= acked,
        "acknowledged seq {acked} lost: {}",
        state.last_seq
    );
    if state.last_seq > 0 {
        let (records, _) = terminal
            .events_for_sync(terminal.device_id(), state.last_seq, 1)
            .expect("terminal record");
        assert_eq!(
            state.head, records[0].hash,
            "head at seq {}",
            state.last_seq
        );
    }
    let mut expected = BTreeMap::<String, i64>::new();
    for (_, (item, q)) in moves.range(..=state.last_seq) {
        *expected.entry(item.clone()).or_default() += q;
    }
    let levels: BTreeMap<String, i64> = store.stock_levels().expect("levels").into_iter().collect();
    assert_eq!(
        levels, expected,
        "stock after ingest up to seq {}",
        state.last_seq
    );
    let report = store
        .verify()
        .unwrap_or_else(|e| panic!("verify after kill: {e}"));
    assert_eq!(report.records(), store.head().0 + state.last_seq);
    let live = store.projection_dump().expect("dump");
    store.rebuild().expect("rebuild");
    assert_eq!(
        store.projection_dump().expect("dump"),
        live,
        "rebuild differs from live"
    );
    state.last_seq
}

#[test]
fn sigkill_while_ingesting_loses_nothing_acknowledged() {
    let seed = std::env::var("POS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| XorShift::from_entropy().next_u64());
    println!("POS_CRASH_SEED={seed}");
    let mut rng = XorShift::new(seed);
    let (term_dir, moves) = terminal(&mut rng);
    let terminal = Store::open_read_only(term_dir.path()).expect("open terminal");
    let mut hub_dir = hub(term_dir.path());
    let (mut acked, mut mid_stream, mut rounds) = (0u64, 0usize, 1usize);
    for kill in 0..KILLS {
        let mut child = Ingester::spawn(hub_dir.path(), term_dir.path());
        match kill % 4 {
            0 => {}
            1 | 2 => child.read_lines(rng.range(1, 6) as usize),
            _ => std::thread::sleep(Duration::from_micros(rng.range(0, 30_000))),
        }
        let (acks, done) = child.kill();
        let mut prev = acked;
        for &(seq, _) in &acks {
            assert!(seq > prev, "ack of seq {seq} after seq {prev}: {acks:?}");
            prev = seq;
        }
        if !acks.is_empty() {
            mid_stream += 1;
        }
        acked = prev;
        let stored = check(hub_dir.path(), &terminal, &moves, acked);
        acked = stored;
        if done || stored == terminal.head().0 {
            hub_dir = hub(term_dir.path());
            acked = 0;
            rounds += 1;
        }
    }
    println!("{KILLS} kills, {mid_stream} after an ack, {rounds} hub databases");
    assert!(
        mid_stream >= KILLS / 4,
        "only {mid_stream} kills after an ack"
    );
}

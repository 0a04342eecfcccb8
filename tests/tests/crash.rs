//! Crash safety across processes: a child appending in a loop is killed with SIGKILL at random
//! moments; after every kill each acknowledged commit is there, nothing is half-applied, the
//! chain verifies, projections equal a rebuild, and appending continues.
//!
//! Also: a second process cannot open a data dir in use, and a torn write at the end of the WAL
//! loses nothing that was acknowledged.
//!
//! Set `POS_CRASH_SEED` to replay the kill timings of an earlier run (printed at the start), and
//! `POS_CRASH_KILLS` to kill more often than the 200 times of a normal run.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use pos_core::DeviceRole;
use pos_store::{LogFilter, Store, StoreError, StoreOptions, DB_FILE};
use pos_system_tests::{parse_acks, zero_sum_batch, XorShift};

/// The issue asks for at least this many kills.
const KILLS: usize = 200;
/// Safety net so a very slow machine cannot hang CI; normally 200 kills take far less.
const TIME_LIMIT: Duration = Duration::from_secs(75);
/// Checking after a kill reads, verifies and replays the whole log, so its cost grows with the
/// log: past this many records the test continues in a freshly initialised data dir, which keeps
/// 200 kills within about a minute on a loaded machine.
const RECORDS_PER_DIR: u64 = 5_000;

/// Every acknowledged (seq, head hash) so far, across all children and the parent.
type Acked = BTreeMap<u64, String>;

fn init_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (store, _) = Store::init(tmp.path(), DeviceRole::Terminal, "branch", "name", false)
        .unwrap_or_else(|e| panic!("init: {e}"));
    drop(store);
    tmp
}

struct Appender {
    child: Child,
    stdout: BufReader<ChildStdout>,
    /// Everything read from stdout so far.
    text: String,
}

impl Appender {
    fn spawn(dir: &Path) -> Appender {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash_appender"))
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn crash_appender: {e}"));
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Appender {
            child,
            stdout,
            text: String::new(),
        }
    }

    /// Wait for up to `n` more ACK lines; fewer only if the child ended (then the kill reports it).
    fn read_acks(&mut self, n: usize) {
        for _ in 0..n {
            if self
                .stdout
                .read_line(&mut self.text)
                .expect("read child stdout")
                == 0
            {
                return;
            }
        }
    }

    /// SIGKILL the child and return every ACK it printed. Panics if it died on its own.
    fn kill(mut self) -> Vec<(u64, String)> {
        // `Child::kill` sends SIGKILL on unix.
        self.child.kill().expect("SIGKILL crash_appender");
        let status = self.child.wait().expect("wait for crash_appender");
        self.stdout
            .read_to_string(&mut self.text)
            .expect("read child stdout");
        if status.signal() != Some(9) {
            let mut stderr = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("crash_appender was not killed but ended with {status}: {stderr}");
        }
        parse_acks(&self.text)
    }
}

/// Open the data dir after a crash and check everything the issue asks for; then append one
/// batch to prove appending continues. Returns the number of records.
fn check_after_crash(dir: &Path, acked: &mut Acked, rng: &mut XorShift) -> u64 {
    let mut store = Store::open(dir, StoreOptions::default())
        .unwrap_or_else(|e| panic!("open after kill: {e}"));
    let (head_seq, head) = store.head();
    let max_acked = acked.keys().next_back().copied().unwrap_or(0);
    assert!(
        head_seq >= max_acked,
        "acknowledged seq {max_acked} lost: head is {head_seq}"
    );

    // Every acknowledged commit is there, with the acknowledged hash.
    let me = store.device_id();
    let events = store.events(&LogFilter::default()).expect("read events");
    let on_disk: BTreeMap<u64, String> = events
        .iter()
        .filter(|e| e.origin == me)
        .map(|e| (e.seq, e.hash.to_hex()))
        .collect();
    assert_eq!(on_disk.len() as u64, head_seq, "seqs are not 1..=head");
    assert_eq!(on_disk.get(&head_seq), Some(&head.to_hex()));
    for (seq, hash) in acked.iter() {
        assert_eq!(
            on_disk.get(seq),
            Some(hash),
            "acknowledged commit seq {seq} is missing or changed"
        );
    }

    // The chain, checkpoints and head seal verify.
    let report = store
        .verify()
        .unwrap_or_else(|e| panic!("verify after kill: {e}"));
    assert_eq!(report.records(), head_seq);

    // Nothing half-applied: every batch nets to zero, so all stock sums to zero.
    let levels = store.stock_levels().expect("read stock levels");
    let total: i64 = levels.iter().map(|(_, q)| q).sum();
    assert_eq!(
        total, 0,
        "a batch was half-applied: stock levels {levels:?}"
    );

    // The live projections equal a replay of the log.
    let live = store.projection_dump().expect("dump projections");
    assert_eq!(store.rebuild().expect("rebuild"), events.len() as u64);
    assert_eq!(
        store.projection_dump().expect("dump projections"),
        live,
        "rebuild differs from live"
    );

    // Appending continues where the chain ends.
    let commit = store
        .append(zero_sum_batch(rng))
        .unwrap_or_else(|e| panic!("append after kill: {e}"));
    assert_eq!(commit.first_seq, head_seq + 1);
    acked.insert(commit.last_seq, commit.head.to_hex());
    commit.last_seq
}

#[test]
fn sigkill_while_appending_loses_nothing_acknowledged() {
    let seed = std::env::var("POS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| XorShift::from_entropy().next_u64());
    println!("POS_CRASH_SEED={seed}");
    let mut rng = XorShift::new(seed);
    // `POS_CRASH_KILLS=5000` for a longer soak, without the time limit.
    let (target, limit) = match std::env::var("POS_CRASH_KILLS").map(|k| k.parse::<usize>()) {
        Ok(Ok(kills)) => (kills, Duration::MAX),
        _ => (KILLS, TIME_LIMIT),
    };
    let started = Instant::now();

    let mut tmp = init_dir();
    let mut acked = Acked::new();
    let (mut kills, mut mid_stream, mut child_acks) = (0usize, 0usize, 0usize);
    // Records in the current data dir (`Store::init` writes the first) and in finished ones.
    let (mut records, mut total_records, mut dirs) = (1, 0, 1);
    while kills < target && started.elapsed() < limit {
        if records > RECORDS_PER_DIR {
            tmp = init_dir();
            acked.clear();
            total_records += records;
            records = 1;
            dirs += 1;
        }
        let dir = tmp.path();
        let mut child = Appender::spawn(dir);
        // Vary the moment of death; the mix is fixed so that many kills are mid-stream.
        match kills % 5 {
            // Right after spawn: often before the store is even open.
            0 => {}
            // After a few acknowledged commits: certainly while appending.
            1 | 2 => {
                let n = rng.range(1, 8) as usize;
                child.read_acks(n);
            }
            // At a random moment within 40 ms: anywhere in open, append, fsync or print.
            _ => std::thread::sleep(Duration::from_micros(rng.range(0, 40_000))),
        }
        let acks = child.kill();
        kills += 1;
        if !acks.is_empty() {
            mid_stream += 1;
        }
        child_acks += acks.len();
        // A child's acks continue the chain, one batch of 1..=20 events each.
        let mut prev = records;
        for &(seq, _) in &acks {
            assert!(
                (prev + 1..=prev + 20).contains(&seq),
                "ack of seq {seq} does not follow seq {prev}: {acks:?}"
            );
            prev = seq;
        }
        acked.extend(acks);
        records = check_after_crash(dir, &mut acked, &mut rng);
    }

    let elapsed = started.elapsed();
    total_records += records;
    println!(
        "{kills} kills ({mid_stream} after at least one ack), {child_acks} commits acknowledged \
         by children, {total_records} records in {dirs} data dirs, {elapsed:.1?}"
    );
    assert!(
        kills >= target,
        "only {kills} kills in {limit:?}: this machine is too slow for the crash test"
    );
    assert!(
        mid_stream > 50,
        "only {mid_stream} of {kills} kills happened after the child acknowledged a commit"
    );
}

#[test]
fn second_process_cannot_open_a_data_dir_in_use() {
    let tmp = init_dir();
    let dir = tmp.path();
    let mut child = Appender::spawn(dir);
    child.read_acks(1);
    assert!(
        !parse_acks(&child.text).is_empty(),
        "crash_appender acknowledged nothing"
    );

    let pid = child.child.id();
    match Store::open(dir, StoreOptions::default()) {
        Err(e @ StoreError::Locked { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("in use by another pos process"),
                "{message}"
            );
            assert!(message.contains(&format!("(pid {pid})")), "{message}");
        }
        Err(e) => panic!("expected Locked, got {e:?}"),
        Ok(_) => panic!("a second process opened a data dir in use"),
    }

    let mut acked: Acked = child.kill().into_iter().collect();
    // The kernel released the lock with the process: opening works, and nothing was lost.
    check_after_crash(dir, &mut acked, &mut XorShift::from_entropy());
}

#[test]
fn garbage_after_the_last_wal_frame_loses_nothing_acknowledged() {
    let tmp = init_dir();
    let dir = tmp.path();
    let mut child = Appender::spawn(dir);
    child.read_acks(25);
    let mut acked: Acked = child.kill().into_iter().collect();
    assert!(!acked.is_empty(), "crash_appender acknowledged nothing");

    // SQLite checkpoints the WAL into the database only on a clean close: after SIGKILL the
    // acknowledged commits live in the WAL. A torn last write leaves junk at its end.
    let wal = dir.join(format!("{DB_FILE}-wal"));
    let len = std::fs::metadata(&wal)
        .unwrap_or_else(|e| panic!("{} after kill: {e}", wal.display()))
        .len();
    assert!(len > 0, "{} is empty after kill", wal.display());
    let mut rng = XorShift::from_entropy();
    let garbage: Vec<u8> = (0..1000).map(|_| rng.next_u64() as u8).collect();
    let mut file = OpenOptions::new()
        .append(true)
        .open(&wal)
        .expect("open WAL");
    file.write_all(&garbage).expect("damage WAL");
    file.sync_all().expect("sync WAL");
    drop(file);

    check_after_crash(dir, &mut acked, &mut rng);
}

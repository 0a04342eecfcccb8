//! Shared by the sync tests in tests/pos (`sync_chaos`, `sync_kill`): a hub and terminals as
//! real `pos` processes, their output captured, killed when a test panics; the hub's and the
//! terminals' databases read beside the running processes; and the final check that the hub
//! holds exactly what each terminal wrote.
//!
//! The setup is the one of firmware/tests/hub_sync.rs (which also checks the error paths of
//! enrollment): a config with `[auth] mfa_roles = []`, so the admin acts with a password only.

#![allow(dead_code)] // each test target uses a part

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pos_core::DeviceId;
use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

pub const ADMIN_PASSWORD: &str = "Branch-Keeper-4471";
/// Who `pos terminal --sim-sales` logs in as: the demo's manager (creates the catalogue) and
/// first cashier (sells), with the demo's secrets (firmware/src/cmd/demo.rs).
const SIM_STAFF: [(&str, &str, &str); 2] = [
    ("maria", "manager", "Demo-Manager-Pass-2026"),
    ("alice", "cashier", "481516"),
];

/// A temp dir with the config and the hub's data dir; kept (and its path printed) when the
/// test fails, for a look at the databases.
pub struct Env {
    dir: Option<tempfile::TempDir>,
    pub config: PathBuf,
    pub hub: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("pos.toml");
        std::fs::write(&config, "[auth]\nmfa_roles = []\n").unwrap();
        let hub = dir.path().join("hub");
        Env {
            config,
            hub,
            dir: Some(dir),
        }
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().unwrap().path()
    }

    pub fn pos(&self, data: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pos"));
        c.env_remove("POS_DATA_DIR")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("POS_CONFIG", &self.config)
            .env("POS_LOG", "info")
            .arg("--data-dir")
            .arg(data);
        c
    }

    pub fn run(&self, data: &Path, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .pos(data)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, data: &Path, args: &[&str], stdin: &str) -> String {
        let out = self.run(data, args, stdin);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pos init --role hub` and the admin's real password.
    pub fn init_hub(&self) {
        let init = self.ok(&self.hub, &["init", "--role", "hub", "--name", "hub"], "");
        let one_time = after(&init, "One-time password (shown once):").to_owned();
        self.ok(
            &self.hub,
            &["user", "passwd", "admin"],
            &format!("{one_time}\n{ADMIN_PASSWORD}\n"),
        );
    }

    /// `n` enrollment codes (the hub must be stopped).
    pub fn enroll_codes(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                let out = self.ok(
                    &self.hub,
                    &["hub", "enroll-code", "--as", "admin", "--ttl-min", "30"],
                    &format!("{ADMIN_PASSWORD}\n\n"),
                );
                after(&out, "Enrollment code:").to_owned()
            })
            .collect()
    }

    /// A terminal's data dir `<label>` named `name`, with the users `pos terminal --sim-sales`
    /// logs in as (the demo's manager and first cashier, firmware/src/cmd/demo.rs): it then
    /// creates the demo catalogue itself on its first run.
    ///
    /// The users are made here because `pos init` creates the admin, and `--sim-sales` creates
    /// its staff only in an empty user table (so on a plain `pos init` terminal its first
    /// login fails). Not `pos demo`: what it sets up (and enrolls) changes with the demo.
    pub fn terminal(&self, label: &str, name: &str) -> PathBuf {
        let till = self.path().join(label);
        let init = self.ok(&till, &["init", "--role", "terminal", "--name", name], "");
        let one_time = after(&init, "One-time password (shown once):").to_owned();
        self.ok(
            &till,
            &["user", "passwd", "admin"],
            &format!("{one_time}\n{ADMIN_PASSWORD}\n"),
        );
        for (user, role, secret) in SIM_STAFF {
            let out = self.ok(
                &till,
                &["user", "add", user, "--role", role, "--as", "admin"],
                &format!("{ADMIN_PASSWORD}\n\n"),
            );
            let first = after(
                &out,
                "One-time secret (shown once, must be changed at first use):",
            );
            self.ok(
                &till,
                &["user", "passwd", user],
                &format!("{first}\n{secret}\n"),
            );
        }
        till
    }

    /// `pos hub` on a free port: the process and its address.
    pub fn start_hub(&self) -> (Proc, SocketAddr) {
        let hub = Proc::spawn(
            "hub",
            self.pos(&self.hub)
                .args(["hub", "--headless", "--listen", "127.0.0.1:0"]),
        );
        let line = hub.wait_for_stdout("hub listening on ", Duration::from_secs(60));
        let addr = line.parse().unwrap_or_else(|_| panic!("address {line:?}"));
        (hub, addr)
    }

    pub fn enroll(&self, till: &Path, hub: SocketAddr, code: &str) {
        let out = self.ok(
            till,
            &["enroll", "--hub", &hub.to_string(), "--code", code],
            "",
        );
        assert!(out.contains("Enrolled with hub"), "{out}");
    }

    /// `pos terminal --headless` syncing with `hub`, selling `sales` at `rate` a second; it
    /// runs until stopped (or after 10 minutes).
    pub fn start_terminal(
        &self,
        name: &str,
        till: &Path,
        hub: SocketAddr,
        sales: u64,
        rate: f64,
    ) -> Proc {
        Proc::spawn(
            name,
            self.pos(till).args([
                "terminal",
                "--headless",
                "--exit-after-ms",
                "600000",
                "--hub",
                &hub.to_string(),
                "--sim-sales",
                &sales.to_string(),
                "--sim-rate",
                &rate.to_string(),
            ]),
        )
    }

    /// `pos audit verify` on a stopped device passes.
    pub fn audit_verify(&self, data: &Path) -> String {
        let out = self.ok(data, &["audit", "verify"], "");
        assert!(out.starts_with("OK "), "{}: {out}", data.display());
        out
    }

    pub fn devices(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&self.hub, &["hub", "devices", "list", "--json"], "");
        serde_json::from_str(&out).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("test data kept in {}", dir.keep().display());
            }
        }
    }
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

pub fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn after<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {text}"))
        .trim()
}

/// A child process with its stdout and stderr collected by threads (a full pipe would stall
/// it); SIGKILLed and reaped when dropped, so a failing test leaves nothing running.
pub struct Proc {
    pub name: String,
    /// In a mutex so that `&self` can look whether it has exited.
    child: Mutex<Option<Child>>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
}

impl Proc {
    pub fn spawn(name: &str, command: &mut Command) -> Proc {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().unwrap(), stdout.clone()),
            collect(child.stderr.take().unwrap(), stderr.clone()),
        ];
        Proc {
            name: name.to_owned(),
            child: Mutex::new(Some(child)),
            stdout,
            stderr,
            readers,
            started: Instant::now(),
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The last `n` lines of stderr and how it ended, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let err = self.stderr();
        let lines: Vec<&str> = err.lines().collect();
        let from = lines.len().saturating_sub(n);
        let state = match self.try_wait() {
            Some(status) => format!("exited: {status}"),
            None => "running".to_owned(),
        };
        format!(
            "--- {} ({state}; last {n} lines of stderr) ---\n{}\n",
            self.name,
            lines[from..].join("\n")
        )
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        let child = self.child.lock().unwrap();
        nix::unistd::Pid::from_raw(i32::try_from(child.as_ref().unwrap().id()).unwrap())
    }

    /// How it ended, if it has.
    fn try_wait(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Still running (not exited)?
    pub fn running(&self) -> bool {
        self.child.lock().unwrap().is_some() && self.try_wait().is_none()
    }

    /// The rest of the first stdout line starting with `prefix`.
    pub fn wait_for_stdout(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(rest) = self
                .stdout()
                .lines()
                .find_map(|l| l.strip_prefix(prefix).map(|r| r.trim().to_owned()))
            {
                return rest;
            }
            assert!(
                self.running() && Instant::now() < deadline,
                "{} did not print {prefix:?} within {timeout:?}\nstdout: {}\n{}",
                self.name,
                self.stdout(),
                self.tail(40)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many stderr lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    /// SIGTERM, then wait (up to `timeout`) for the exit; its status.
    pub fn stop(mut self, timeout: Duration) -> (ExitStatus, String) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = self.wait(timeout);
        (status, self.stderr())
    }

    /// SIGKILL (a crash at an arbitrary point) and reap it; what it wrote to stderr.
    pub fn kill9(mut self) -> String {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGKILL).unwrap();
        self.wait(Duration::from_secs(30));
        self.stderr()
    }

    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.try_wait() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{} still runs {timeout:?} after the signal\n{}",
                self.name,
                self.tail(40)
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        *self.child.lock().unwrap() = None;
        // The pipes end with the process: the readers finish.
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }

    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let child = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
            if std::thread::panicking() {
                eprintln!("{}", self.tail(60));
            }
        }
    }
}

fn collect(
    mut from: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    })
}

/// Poll `done` every 100 ms until it holds; past `timeout`, fail with `why()`.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    why: impl Fn() -> String,
) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not reached within {timeout:?}\n{}",
            why()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{what}: after {:.1} s", started.elapsed().as_secs_f64());
}

/// The receipt numbers a terminal's output says it sold (`simulated sale receipt=N`).
pub fn sold_receipts(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter(|l| l.contains("simulated sale") && l.contains("receipt="))
        .filter_map(|l| {
            let rest = &l[l.find("receipt=")? + "receipt=".len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// How many scripted sales a terminal's run has finished, sold or failed (`simulated sale
/// receipt=N`, or `simulated sale I: why`).
pub fn sale_attempts(stderr: &str) -> usize {
    stderr
        .lines()
        .filter(|l| {
            l.split_once("simulated sale ").is_some_and(|(_, rest)| {
                rest.starts_with("receipt=")
                    || rest
                        .split_once(':')
                        .is_some_and(|(n, _)| n.parse::<u64>().is_ok())
            })
        })
        .count()
}

pub fn device_id(data: &Path) -> DeviceId {
    pos_store::Store::read_identity(data).unwrap().id
}

/// The data dir's database, read-only (works beside the running process).
pub fn db(data: &Path) -> Connection {
    let c = Connection::open_with_flags(
        data.join(pos_store::DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("{}: {e}", data.display()));
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// One stored event, every column but the rowid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq: u64,
    pub id: Vec<u8>,
    pub hlc: i64,
    pub module: String,
    pub kind: String,
    pub actor: Option<Vec<u8>>,
    pub approver: Option<Vec<u8>>,
    pub reason: Option<String>,
    pub schema_version: i64,
    pub payload: Vec<u8>,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The events of `origin` stored in `data`, by seq.
pub fn events_of(data: &Path, origin: DeviceId) -> Vec<EventRow> {
    let c = db(data);
    let mut s = c
        .prepare(
            "SELECT seq, id, hlc, module, kind, actor, approver, reason, schema_version, payload,
                    prev_hash, hash
             FROM events WHERE origin = ?1 ORDER BY seq, rowid",
        )
        .unwrap();
    s.query_map([origin.as_bytes().as_slice()], |r| {
        Ok(EventRow {
            seq: r.get::<_, i64>(0)? as u64,
            id: r.get(1)?,
            hlc: r.get(2)?,
            module: r.get(3)?,
            kind: r.get(4)?,
            actor: r.get(5)?,
            approver: r.get(6)?,
            reason: r.get(7)?,
            schema_version: r.get(8)?,
            payload: r.get(9)?,
            prev_hash: r.get(10)?,
            hash: r.get(11)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The highest seq of `origin` stored in `data` (0 when none): cheap enough to poll.
pub fn max_seq(data: &Path, origin: DeviceId) -> u64 {
    let c = db(data);
    c.query_row(
        "SELECT max(seq) FROM events WHERE origin = ?1",
        [origin.as_bytes().as_slice()],
        |r| r.get::<_, Option<i64>>(0),
    )
    .unwrap()
    .unwrap_or(0) as u64
}

/// One row of `sale_receipts`, the sale projection, every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRow {
    pub number: i64,
    pub ticket: Vec<u8>,
    pub shift: Vec<u8>,
    pub cashier: Option<Vec<u8>>,
    pub hlc: i64,
    pub total: i64,
    pub status: String,
    pub sale: String,
    pub event_hash: Vec<u8>,
    pub void_shift: Option<Vec<u8>>,
}

pub fn receipts_of(data: &Path, terminal: DeviceId) -> Vec<ReceiptRow> {
    let c = db(data);
    let mut s = c
        .prepare(
            "SELECT number, ticket, shift, cashier, hlc, total, status, sale, event_hash, void_shift
             FROM sale_receipts WHERE terminal = ?1 ORDER BY number",
        )
        .unwrap();
    s.query_map([terminal.as_bytes().as_slice()], |r| {
        Ok(ReceiptRow {
            number: r.get(0)?,
            ticket: r.get(1)?,
            shift: r.get(2)?,
            cashier: r.get(3)?,
            hlc: r.get(4)?,
            total: r.get(5)?,
            status: r.get(6)?,
            sale: r.get(7)?,
            event_hash: r.get(8)?,
            void_shift: r.get(9)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Received records the hub kept but did not apply to its projections: (module.kind, why).
pub fn not_applied(data: &Path, origin: DeviceId) -> Vec<(u64, String, String)> {
    let c = db(data);
    let Some(_) = c
        .query_row(
            "SELECT name FROM sqlite_master WHERE name = 'sync_not_applied'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .unwrap()
    else {
        return Vec::new();
    };
    let mut s = c
        .prepare("SELECT seq, module || '.' || kind, why FROM sync_not_applied WHERE origin = ?1 ORDER BY seq")
        .unwrap();
    s.query_map([origin.as_bytes().as_slice()], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The hub has stored `till`'s whole chain (as far as the terminal's db shows now).
pub fn hub_caught_up(hub: &Path, till: &Path) -> bool {
    let id = device_id(till);
    let own = max_seq(till, id);
    own > 0 && max_seq(hub, id) == own
}

/// Wait until `sales_done` and the hub has stored each terminal's whole chain, and that has
/// stayed so (same heads) for a second: a terminal may still append after its last sale is
/// logged, and it is stopped next.
pub fn wait_until_settled(
    hub: &Path,
    tills: &[PathBuf],
    timeout: Duration,
    sales_done: impl Fn() -> bool,
    why: impl Fn() -> String,
) {
    let mut stable: Option<(Vec<u64>, Instant)> = None;
    wait_until(
        "the hub stored everything",
        timeout,
        || {
            if !sales_done() || !tills.iter().all(|t| hub_caught_up(hub, t)) {
                stable = None;
                return false;
            }
            let heads: Vec<u64> = tills.iter().map(|t| max_seq(t, device_id(t))).collect();
            match &stable {
                Some((before, since)) if *before == heads => {
                    since.elapsed() >= Duration::from_secs(1)
                }
                _ => {
                    stable = Some((heads, Instant::now()));
                    false
                }
            }
        },
        || {
            let heads: Vec<String> = tills
                .iter()
                .map(|t| {
                    let id = device_id(t);
                    format!(
                        "{}: own head {}, stored at the hub {}",
                        t.display(),
                        max_seq(t, id),
                        max_seq(hub, id)
                    )
                })
                .collect();
            format!("{}\n{}", heads.join("\n"), why())
        },
    );
}

/// With every process stopped: the hub holds exactly each terminal's own chain (same rows, no
/// gap, no duplicate, same head), the hub's sale projection of each terminal equals the
/// terminal's own, and `pos audit verify` passes everywhere. Returns the number of sales
/// compared per terminal.
pub fn assert_hub_holds_the_terminals(env: &Env, tills: &[&Path]) -> Vec<usize> {
    let mut sales = Vec::new();
    let mut origins = BTreeSet::new();
    for till in tills {
        let id = device_id(till);
        assert!(origins.insert(id), "two terminals with one id");
        let own = events_of(till, id);
        let stored = events_of(&env.hub, id);
        // Gapless from 1 on both sides, no duplicate seq.
        for (what, rows) in [("terminal", &own), ("hub", &stored)] {
            let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
            let want: Vec<u64> = (1..=rows.len() as u64).collect();
            assert!(
                seqs == want,
                "{what}'s copy of {id}: seqs not 1..={}: {seqs:?}",
                rows.len()
            );
            let ids: BTreeSet<&[u8]> = rows.iter().map(|r| r.id.as_slice()).collect();
            assert_eq!(
                ids.len(),
                rows.len(),
                "{what}'s copy of {id}: a duplicate event id"
            );
        }
        assert_eq!(
            own.len(),
            stored.len(),
            "{id}: the terminal has {} records, the hub {}",
            own.len(),
            stored.len()
        );
        for (a, b) in own.iter().zip(&stored) {
            assert_eq!(a, b, "{id} seq {}: the hub's copy differs", a.seq);
        }
        assert_eq!(
            own.last().map(|r| &r.hash),
            stored.last().map(|r| &r.hash),
            "{id}: chain heads differ"
        );
        // The sale projection: the hub applies received sales like the terminal did.
        let mine = receipts_of(till, id);
        let hubs = receipts_of(&env.hub, id);
        let summary = |rows: &[ReceiptRow]| {
            let done: Vec<&ReceiptRow> = rows.iter().filter(|r| r.status == "completed").collect();
            (done.len(), done.iter().map(|r| r.total).sum::<i64>())
        };
        assert_eq!(
            summary(&mine),
            summary(&hubs),
            "{id}: completed sales (count, total)"
        );
        assert_eq!(mine, hubs, "{id}: sale_receipts rows differ");
        let skipped: Vec<_> = not_applied(&env.hub, id)
            .into_iter()
            .filter(|(_, what, _)| what.starts_with("sale.") || what.starts_with("shift."))
            .collect();
        assert!(
            skipped.is_empty(),
            "{id}: sales the hub did not apply: {skipped:?}"
        );
        sales.push(mine.len());
    }
    // Exactly the union: no origin at the hub but its own and the terminals'.
    let hub_id = device_id(&env.hub);
    let at_hub: BTreeSet<Vec<u8>> = {
        let c = db(&env.hub);
        let mut s = c.prepare("SELECT DISTINCT origin FROM events").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let want: BTreeSet<Vec<u8>> = origins
        .iter()
        .chain([&hub_id])
        .map(|id| id.as_bytes().to_vec())
        .collect();
    assert_eq!(at_hub, want, "origins stored at the hub");
    // The other way: what each terminal holds of the hub's chain (its subscribed modules in
    // full; the rest is kept as redacted runs, not rows) is the hub's own, row for row.
    let hub_rows = events_of(&env.hub, hub_id);
    for till in tills {
        for row in events_of(till, hub_id) {
            let theirs = usize::try_from(row.seq - 1)
                .ok()
                .and_then(|i| hub_rows.get(i));
            assert_eq!(
                Some(&row),
                theirs,
                "{}: hub record {} differs from the hub's",
                till.display(),
                row.seq
            );
        }
    }
    // `pos hub devices list` agrees.
    let devices = env.devices();
    for till in tills {
        let id = device_id(till).to_string();
        let row = devices
            .iter()
            .find(|d| d["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not in {devices:?}"));
        assert_eq!(
            row["stored_seq"].as_u64(),
            Some(max_seq(till, device_id(till))),
            "{row}"
        );
    }
    for data in tills.iter().copied().chain([env.hub.as_path()]) {
        env.audit_verify(data);
    }
    sales
}

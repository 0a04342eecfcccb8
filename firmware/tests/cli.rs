//! The `pos` command-line contract: outputs and exit codes (0 ok, 1 check failed, 2 usage,
//! config or environment error), run as a real process.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::path::Path;
use std::process::{Command, Output};

fn pos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pos"))
        .args(args)
        .env_remove("POS_DATA_DIR")
        .env_remove("POS_CONFIG")
        .output()
        .expect("run pos")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn init(dir: &Path) {
    let out = pos(&[
        "init",
        "--role",
        "terminal",
        "--data-dir",
        dir.to_str().unwrap(),
        "--name",
        "till-1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

#[test]
fn init_then_verify_says_ok_with_count_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pos");
    init(&data);
    let out = pos(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let line = stdout.lines().next().unwrap();
    let rest = line
        .strip_prefix("OK 3 records, head ")
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(rest.len(), 64);
    assert!(rest.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn tampering_exits_1_and_names_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pos");
    init(&data);
    let conn = rusqlite::Connection::open(data.join("pos.db")).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_are_never_updated;
         UPDATE events SET payload = X'7B7D' WHERE seq = 1;",
    )
    .unwrap();
    drop(conn);
    let out = pos(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TAMPERED origin"), "{stderr}");
    assert!(stderr.contains("seq 1: content changed"), "{stderr}");
}

#[test]
fn a_second_init_is_refused_with_exit_2_and_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pos");
    init(&data);
    let out = pos(&[
        "init",
        "--role",
        "hub",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn a_missing_data_dir_exits_2_and_says_what_to_do() {
    let out = pos(&["audit", "verify", "--data-dir", "/nonexistent/pos"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("pos init"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_bad_config_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("terminal.toml");
    std::fs::write(&config, "[store]\ncheckpoint_every = \"often\"\n").unwrap();
    let out = pos(&[
        "audit",
        "verify",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        "/x",
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(&format!("{}:2:", config.display())),
        "{stderr}"
    );
    assert!(stderr.contains("checkpoint_every"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let out = pos(&["init", "--role", "toaster", "--data-dir", "/tmp/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("terminal"));
}

#[test]
fn audit_log_shows_who_what_and_details_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let out = pos(&["demo", "--headless", "--data-dir", root, "--sales", "5"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("terminal-1  OK"), "{stdout}");
    let hub = dir.path().join("hub");
    let out = pos(&[
        "audit",
        "log",
        "--data-dir",
        hub.to_str().unwrap(),
        "--kind",
        "settings.changed",
    ]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout.contains("settings.changed"), "{stdout}");
    assert!(
        stdout.contains("null → \"Thank you"),
        "before → after: {stdout}"
    );
    let out = pos(&[
        "audit",
        "log",
        "--data-dir",
        hub.to_str().unwrap(),
        "--json",
        "--since",
        "1h",
    ]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 8);
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["device"], "hub");
    assert_eq!(lines[0]["module"], "device");
    // Running the demo again continues the same devices.
    let out = pos(&["demo", "--headless", "--data-dir", root, "--sales", "2"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

/// `pos hub devices list --json` on the demo's hub: (name, device id, stored seq, waiting).
fn hub_devices(hub: &Path) -> Vec<(String, String, u64, Option<u64>)> {
    let out = pos(&[
        "hub",
        "devices",
        "list",
        "--json",
        "--data-dir",
        hub.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
                r["stored_seq"].as_u64().unwrap(),
                r["waiting"].as_u64(),
            )
        })
        .collect()
}

/// The last seq of `origin`'s chain in `data` (`pos audit verify --verbose`), after checking
/// that the whole log verifies.
fn chain_head(data: &Path, origin: &str) -> u64 {
    let out = pos(&[
        "audit",
        "verify",
        "--verbose",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.starts_with("OK "), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.trim().starts_with(&format!("origin {origin} ")))
        .unwrap_or_else(|| panic!("no chain of {origin} in {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "seq").unwrap();
    words[at + 1].parse().unwrap()
}

/// The terminals' logs as the demo hub stored them: each terminal's stored seq is its own
/// head, nothing waits, and the hub's log (with their chains) verifies.
fn assert_hub_holds_both_terminals(root: &Path) -> Vec<u64> {
    let hub = root.join("hub");
    let devices = hub_devices(&hub);
    let mut heads = Vec::new();
    for n in 1..=2 {
        let name = format!("till-{n}");
        let (_, id, stored, waiting) = devices
            .iter()
            .find(|d| d.0 == name)
            .unwrap_or_else(|| panic!("{name} not on the hub: {devices:?}"));
        let head = chain_head(&root.join(format!("terminal-{n}")), id);
        assert_eq!(*stored, head, "{name}: {devices:?}");
        assert_eq!(*waiting, Some(0), "{name}: {devices:?}");
        assert_eq!(chain_head(&hub, id), head, "{name}'s chain on the hub");
        heads.push(head);
    }
    heads
}

/// `pos audit log --json` of `data`: every record as JSON.
fn audit_log(data: &Path) -> Vec<serde_json::Value> {
    let out = pos(&[
        "audit",
        "log",
        "--json",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `pos catalogue list --json` of `data`.
fn catalogue(data: &Path) -> serde_json::Value {
    let out = pos(&[
        "catalogue",
        "list",
        "--json",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How many records of the master-data modules (users, catalogue, settings) `data`'s log
/// holds, by the name of the device that wrote them.
fn master_data_authors(data: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut authors = std::collections::BTreeMap::new();
    for r in audit_log(data) {
        if ["user", "catalogue", "settings"].contains(&r["module"].as_str().unwrap()) {
            *authors
                .entry(r["device"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    authors
}

/// The demo's terminals hold the hub's master data and none of their own: each one's
/// catalogue is the hub's, and every user, catalogue and settings record in its log was
/// written by the hub (so the hub has nothing of theirs to refuse).
fn assert_master_data_came_from_the_hub(root: &Path) {
    let hub = root.join("hub");
    let products = catalogue(&hub);
    assert_eq!(products.as_array().unwrap().len(), 10, "{products}");
    let on_hub = master_data_authors(&hub);
    assert_eq!(on_hub.keys().collect::<Vec<_>>(), ["hub"], "{on_hub:?}");
    for n in 1..=2 {
        let till = root.join(format!("terminal-{n}"));
        assert_eq!(catalogue(&till), products, "terminal-{n}'s catalogue");
        assert_eq!(master_data_authors(&till), on_hub, "terminal-{n}'s log");
    }
}

#[test]
fn demo_terminals_enroll_and_sync_their_logs_to_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let out = pos(&["demo", "--headless", "--data-dir", root, "--sales", "3"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Hub listening on 127.0.0.1:"), "{stdout}");
    assert_eq!(
        stdout.matches("enrolled with a one-time code").count(),
        2,
        "{stdout}"
    );
    // The hub owns the staff and the catalogue; the terminals receive them before trading.
    assert_eq!(
        stdout.matches("received the hub's master data").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("nothing left unapplied"), "{stdout}");
    assert!(
        !stdout.contains("WARN") && !stderr.contains("WARN"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("terminal-2  synced"), "{stdout}");
    assert!(stdout.contains("hub         OK"), "{stdout}");
    let first = assert_hub_holds_both_terminals(dir.path());
    assert_master_data_came_from_the_hub(dir.path());
    let master = master_data_authors(&dir.path().join("hub"));

    // Again on the same devices: no new enrollment, both reconnect (to this run's port) and
    // the hub stores what they sold today.
    let out = pos(&["demo", "--headless", "--data-dir", root, "--sales", "2"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("one-time code"), "{stdout}");
    assert!(
        stdout.contains("terminal-2 is enrolled: it connects to the hub at 127.0.0.1:"),
        "{stdout}"
    );
    let second = assert_hub_holds_both_terminals(dir.path());
    assert!(
        second[0] > first[0] && second[1] > first[1],
        "{first:?} {second:?}"
    );
    // Nothing saved twice: the hub's master data is as the first run left it.
    assert!(stdout.contains("nothing left unapplied"), "{stdout}");
    assert_master_data_came_from_the_hub(dir.path());
    assert_eq!(master_data_authors(&dir.path().join("hub")), master);
}

#[test]
fn verify_runs_beside_the_owner_of_the_data_dir_but_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pos");
    init(&data);
    // Hold the data dir's lock the way a running service does.
    let lock_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(data.join("pos.lock"))
        .unwrap();
    let _owner =
        nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
    let out = pos(&["audit", "verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let out = pos(&[
        "init",
        "--force",
        "--role",
        "terminal",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("in use by another pos process"), "{stderr}");
}

#[test]
fn help_teaches() {
    let out = pos(&["--help"]);
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0));
    for word in ["init", "audit", "demo", "Exit codes", "--data-dir"] {
        assert!(stdout.contains(word), "{word} missing from --help");
    }
}

#[test]
fn test_print_reaches_the_simulated_printer() {
    use std::io::BufRead;
    let mut sim = Command::new(env!("CARGO_BIN_EXE_pos"))
        .args([
            "devices",
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--seconds",
            "3",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(sim.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split_whitespace()
        .find(|w| w.starts_with("tcp://"))
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let out = pos(&["devices", "test-print", "--printer", &addr]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    sim.wait().unwrap();
    let printed = rest.join("\n");
    assert!(printed.contains("3PlugPOS test page"), "{printed}");
    assert!(
        printed.contains("€"),
        "the euro sign survives CP858: {printed}"
    );

    let out = pos(&["devices", "test-print"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("devices.printer"), "{:?}", text(&out));
}

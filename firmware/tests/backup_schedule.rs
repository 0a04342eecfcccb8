//! Scheduled backups in a running `pos hub` (issue 9): a hub with a key configured and no
//! backup yet makes one at start-up, verifies it, records it (backup-status.json) and does not
//! make it again after a restart; a backup dir that cannot be written raises the ALERT line and
//! records the failure (backup-status.json and a `backup.failed` audit event).

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pos_backup::job::Status;
use pos_backup::{BackupKey, BackupKind};

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    hub: PathBuf,
}

impl Env {
    /// A hub data dir and a config whose `[backup]` section is `backup` (plus a key file).
    fn new(backup: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("backup.key");
        std::fs::write(&key, BackupKey::generate().unwrap().to_file_text()).unwrap();
        let config = dir.path().join("hub.toml");
        std::fs::write(
            &config,
            format!(
                "[auth]\nmfa_roles = []\n[backup]\nkey_file = {:?}\n{backup}\n",
                key.display().to_string()
            ),
        )
        .unwrap();
        let hub = dir.path().join("hub");
        let env = Env { dir, config, hub };
        let out = env.run(&["init", "--role", "hub", "--name", "hub"]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        env
    }

    fn pos(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pos"));
        c.env_remove("POS_DATA_DIR")
            .env("POS_CONFIG", &self.config)
            .env("POS_LOG", "info")
            .arg("--data-dir")
            .arg(&self.hub);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.pos().args(args).stdin(Stdio::null()).output().unwrap()
    }

    /// `pos hub --headless` on a free port, its log lines sent to the returned channel.
    fn start_hub(&self) -> (Hub, mpsc::Receiver<String>) {
        let mut child = self
            .pos()
            .args(["hub", "--headless", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (Hub(child), rx)
    }

    fn backup_events(&self) -> Vec<serde_json::Value> {
        let out = self.run(&["audit", "log", "--kind", "backup", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        if text.trim_start().starts_with('[') {
            serde_json::from_str(&text).unwrap()
        } else {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }
}

struct Hub(Child);

impl Hub {
    /// SIGTERM, and wait for a clean exit.
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "the hub ended with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the hub still runs after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Read log lines until one contains `needle`; all lines read so far are kept in `seen`.
fn wait_for(log: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if seen.iter().any(|l| l.contains(needle)) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no {needle:?} in the hub's log:\n{}", seen.join("\n")),
        }
    }
}

fn backups_in(dir: &Path) -> Vec<pos_backup::BackupFile> {
    pos_backup::list(dir).unwrap()
}

#[test]
fn a_hub_with_no_backup_makes_one_at_start_up_verified_and_not_again_after_a_restart() {
    // Hourly snapshots off, so a run across the top of an hour cannot add one.
    let env = Env::new("hourly = false");
    let backups = env.hub.join("backups");
    let (hub, log) = env.start_hub();
    let mut seen = Vec::new();
    wait_for(&log, "scheduled backup made and verified", &mut seen);
    hub.stop();

    let listed = backups_in(&backups);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let file = &listed[0];
    assert_eq!(file.header.kind, BackupKind::Daily);
    assert!(file.path.exists());
    let name = file
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let status = Status::read(&env.hub);
    assert!(status.verified.contains_key(&name), "{status:?}");
    let success = status.last_success.as_ref().unwrap();
    assert_eq!(success.file, file.path);
    assert!(success.records > 0);
    assert_eq!(status.failures_in_a_row, 0);
    let out = env.run(&["hub", "devices", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("Backups: last verified backup"), "{listed}");
    // `pos backup list --verify` (the key from the config) shows it and that it verifies.
    let out = env.run(&["backup", "list", "--verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    let row = listed
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{name} not in {listed}"));
    assert!(row.contains("verified"), "{row}");
    // Nothing left behind but the backup itself.
    let names: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![name.clone()]);
    // A success is not in the hub's audit log (it would be the one record every restore of
    // the newest backup lacks); the status file and the log hold it.
    assert!(env.backup_events().is_empty());

    // A restart finds today's daily backup and makes none.
    let (hub, log) = env.start_hub();
    let mut seen = Vec::new();
    wait_for(&log, "scheduled backups on", &mut seen);
    std::thread::sleep(Duration::from_secs(2));
    hub.stop();
    while let Ok(line) = log.try_recv() {
        seen.push(line);
    }
    assert!(
        !seen.iter().any(|l| l.contains("scheduled backup starting")),
        "{}",
        seen.join("\n")
    );
    assert_eq!(backups_in(&backups).len(), 1);
}

#[test]
fn a_backup_dir_that_cannot_be_written_raises_the_alert_and_is_recorded() {
    // A path below a plain file: not even root can create it.
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let target = blocker.join("backups");
    let env = Env::new(&format!("dir = {:?}", target.display().to_string()));
    let (hub, log) = env.start_hub();
    let mut seen = Vec::new();
    wait_for(&log, "ALERT: backup failed", &mut seen);
    hub.stop();
    let alert = seen
        .iter()
        .find(|l| l.contains("ALERT: backup failed"))
        .unwrap();
    assert!(alert.contains("ERROR"), "{alert}");
    assert!(alert.contains("writable"), "{alert}");
    let status = Status::read(&env.hub);
    assert!(status.last_success.is_none());
    assert_eq!(status.failures_in_a_row, 1, "{status:?}");
    let events = env.backup_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].to_string().contains("failed"), "{events:?}");
    // The manager sees it in the devices list.
    let out = env.run(&["hub", "devices", "list"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("BACKUP-ALERT"), "{listed}");
    drop(env.dir);
}

#[test]
fn without_a_key_the_hub_warns_once_that_scheduled_backups_are_off() {
    let env = Env::new("");
    std::fs::write(&env.config, "[auth]\nmfa_roles = []\n").unwrap();
    let (hub, log) = env.start_hub();
    let mut seen = Vec::new();
    wait_for(&log, "scheduled backups are off", &mut seen);
    hub.stop();
    while let Ok(line) = log.try_recv() {
        seen.push(line);
    }
    let warnings = seen
        .iter()
        .filter(|l| l.contains("scheduled backups are off"))
        .count();
    assert_eq!(warnings, 1, "{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l.contains("pos backup keygen")));
    assert!(backups_in(&env.hub.join("backups")).is_empty());
}

#[test]
fn a_terminal_makes_its_daily_safety_copy_and_no_hourly() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("backup.key");
    std::fs::write(&key, BackupKey::generate().unwrap().to_file_text()).unwrap();
    let config = dir.path().join("terminal.toml");
    // `hourly = true` is the hub's: a terminal ignores it.
    std::fs::write(
        &config,
        format!(
            "[backup]\nkey_file = {:?}\nhourly = true\n",
            key.display().to_string()
        ),
    )
    .unwrap();
    let till = dir.path().join("till");
    let pos = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pos"))
            .env_remove("POS_DATA_DIR")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env("POS_CONFIG", &config)
            .env("POS_LOG", "info")
            .arg("--data-dir")
            .arg(&till)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = pos(&["init", "--role", "terminal", "--name", "till-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let out = pos(&["terminal", "--headless", "--exit-after-ms", "4000"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("scheduled backup made and verified"),
        "{stderr}"
    );
    let listed = backups_in(&till.join("backups"));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].header.kind, BackupKind::Daily);
    assert!(stderr.contains("hourly=false"), "{stderr}");
    let status = Status::read(&till);
    assert!(status.last_success.is_some(), "{status:?}");
}

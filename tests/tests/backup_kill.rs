//! Backups killed with SIGKILL at random moments (issue 9): a child makes backups of a data dir
//! in a loop while it appends to it, and is killed 30 times. Afterwards every backup that
//! `pos_backup::list` shows verifies completely, a `.partial` leftover is never listed, every
//! backup the child reported is listed, and the data dir itself still verifies.
//!
//! Set `POS_BACKUP_KILL_SEED` to replay the kill timings of an earlier run (printed at the
//! start).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pos_backup::{BackupKey, Secret};
use pos_core::DeviceRole;
use pos_store::{Store, StoreOptions};
use pos_system_tests::XorShift;

const KILLS: usize = 30;

/// Start the looper, wait until it is ready, let it run `delay`, SIGKILL it; the backups it
/// reported as made.
fn run_and_kill(data: &Path, out: &Path, key: &Path, delay: Duration) -> Vec<PathBuf> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_backup_looper"))
        .arg(data)
        .arg(out)
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    if ready.trim() != "READY" {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("backup_looper did not start: {ready:?} {err}");
    }
    std::thread::sleep(delay);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let mut text = String::new();
    stdout.read_to_string(&mut text).unwrap();
    if status.signal() != Some(9) {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("backup_looper ended by itself with {status}: {err}");
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("MADE "))
        .map(PathBuf::from)
        .collect()
}

#[test]
fn backups_killed_at_random_moments_leave_only_complete_backups() {
    let seed = std::env::var("POS_BACKUP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| XorShift::from_entropy().next_u64());
    println!("POS_BACKUP_KILL_SEED={seed}");
    let mut rng = XorShift::new(seed);

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("till");
    let out = tmp.path().join("backups");
    let key = tmp.path().join("backup.key");
    let backup_key = BackupKey::generate().unwrap();
    std::fs::write(&key, backup_key.to_file_text()).unwrap();
    let secret = Secret::Key(backup_key);
    drop(Store::init(&data, DeviceRole::Terminal, "branch", "till", false).unwrap());

    let mut reported = BTreeSet::new();
    let mut verified = BTreeSet::new();
    let mut partial_seen = 0usize;
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    for kill in 0..KILLS {
        // Sometimes right away (in the snapshot), mostly within the first backups.
        let delay = Duration::from_millis(match kill % 3 {
            0 => rng.range(0, 30),
            _ => rng.range(20, 700),
        });
        reported.extend(run_and_kill(&data, &out, &key, delay));

        let listed = pos_backup::list(&out).unwrap();
        for b in &listed {
            let name = b.path.to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".partial"),
                "a partial file is listed: {name}"
            );
            if verified.insert(b.path.clone()) {
                let mut quiet = |_: &str, _: u64, _: u64| {};
                pos_backup::verify(&b.path, &secret, &scratch, &mut quiet)
                    .unwrap_or_else(|e| panic!("kill {kill}: {} does not verify: {e}", name));
            }
        }
        let listed: BTreeSet<PathBuf> = listed.into_iter().map(|b| b.path).collect();
        for r in &reported {
            assert!(
                listed.contains(r),
                "kill {kill}: reported {} is not listed",
                r.display()
            );
        }
        partial_seen += std::fs::read_dir(&out)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
                    .count()
            })
            .unwrap_or(0);
    }
    // The data dir itself: the chain and the projections are intact.
    let store = Store::open(&data, StoreOptions::default()).unwrap();
    let report = store.verify().unwrap();
    assert!(report.chains.iter().map(|c| c.records).sum::<u64>() > 1);
    println!(
        "{KILLS} kills: {} complete backups listed and verified, {} reported by the child, \
         {partial_seen} sightings of a .partial leftover (never listed)",
        verified.len(),
        reported.len()
    );
    assert!(
        !verified.is_empty(),
        "no backup was ever completed: kill later"
    );
}

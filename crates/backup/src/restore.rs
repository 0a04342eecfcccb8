//! Restoring a backup into a data dir without ever destroying what is there.
//!
//! 1. The data dir's lock is taken (the pos service must be stopped) and held to the end.
//! 2. The backup is unpacked into `DATA_DIR/.restore-<ms>/` (same file system) and verified
//!    completely there; any failure removes the staging dir and leaves the data dir untouched.
//! 3. The current database is checkpointed (its WAL folded in), so `pos.db` alone is complete.
//! 4. Each entry (`device.*`, `tls`, finally `pos.db`) is swapped in with one atomic
//!    `renameat2(RENAME_EXCHANGE)` (or a rename where the data dir has none), and the old one
//!    moved to `DATA_DIR/pre-restore-<ms>/`. A journal (`restore.journal`) records each step
//!    with an fsync, so an interrupted restore is finished by [`resume`] and never swaps an
//!    entry back. At every moment the data dir holds a complete database, old or new.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{renameat2, RenameFlags};
use pos_store::{DataDirLock, DB_FILE};
use serde::{Deserialize, Serialize};

use crate::archive::{sync_dir, verify_into, Progress, VerifyReport};
use crate::key::Secret;
use crate::BackupError;

const JOURNAL: &str = "restore.journal";
/// The order of the swap: the database last, so its identity files are in place when it is.
const ENTRIES: [&str; 5] = ["device.toml", "device.key", "device.pub", "tls", DB_FILE];

/// The result of a restore.
#[derive(Debug, Clone)]
pub struct Restored {
    pub report: VerifyReport,
    /// Where the data dir's previous contents are kept (None: it was empty).
    pub previous: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    staging: PathBuf,
    previous: PathBuf,
}

/// Restore `file` into `data_dir` (created if missing).
pub fn restore(
    file: &Path,
    secret: &Secret,
    data_dir: &Path,
    progress: &mut dyn Progress,
) -> Result<Restored, BackupError> {
    std::fs::create_dir_all(data_dir).map_err(|e| BackupError::writing(data_dir, e))?;
    let lock = DataDirLock::acquire(data_dir)?;
    if data_dir.join(JOURNAL).exists() {
        return Err(BackupError::Contents(format!(
            "an earlier restore into {} was interrupted: finish it first \
             (pos backup restore --resume)",
            data_dir.display()
        )));
    }
    let stamp = pos_store::now_ms();
    let staging = data_dir.join(format!(".restore-{stamp}"));
    std::fs::create_dir(&staging).map_err(|e| BackupError::writing(&staging, e))?;
    let report = match verify_into(file, secret, &staging, progress) {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // Verification opened the staged database read-only; fold anything it left.
    let prepared = settle(&staging.join(DB_FILE)).and_then(|()| settle(&data_dir.join(DB_FILE)));
    if let Err(e) = prepared {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let previous = data_dir.join(format!("pre-restore-{stamp}"));
    let plan = Plan {
        staging: staging.clone(),
        previous: previous.clone(),
    };
    let mut journal = Journal::create(data_dir, &plan)?;
    progress.update("swap", 0, ENTRIES.len() as u64);
    swap_all(data_dir, &plan, &mut journal, progress)?;
    drop(lock);
    let kept = previous.is_dir()
        && std::fs::read_dir(&previous)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
    if !kept {
        let _ = std::fs::remove_dir(&previous);
    }
    Ok(Restored {
        report,
        previous: kept.then_some(previous),
    })
}

/// Finish a restore that was interrupted during the swap (the staging dir was verified).
/// Returns false when there was nothing to finish.
pub fn resume(data_dir: &Path, progress: &mut dyn Progress) -> Result<bool, BackupError> {
    let lock = DataDirLock::acquire(data_dir)?;
    let path = data_dir.join(JOURNAL);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut lines = text.lines();
    let plan: Plan = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| BackupError::Contents(format!("{} is unreadable", path.display())))?;
    let mut journal = Journal::reopen(data_dir, lines.map(str::to_owned).collect())?;
    swap_all(data_dir, &plan, &mut journal, progress)?;
    drop(lock);
    Ok(true)
}

fn swap_all(
    data_dir: &Path,
    plan: &Plan,
    journal: &mut Journal,
    progress: &mut dyn Progress,
) -> Result<(), BackupError> {
    std::fs::create_dir_all(&plan.previous).map_err(|e| BackupError::writing(&plan.previous, e))?;
    for (i, name) in ENTRIES.iter().enumerate() {
        let staged = plan.staging.join(name);
        let live = data_dir.join(name);
        let kept = plan.previous.join(name);
        if !journal.has("swapped", name) {
            if staged.exists() {
                if live.exists() {
                    renameat2(None, &staged, None, &live, RenameFlags::RENAME_EXCHANGE).map_err(
                        |e| BackupError::Io(std::io::Error::from_raw_os_error(e as i32)),
                    )?;
                } else {
                    std::fs::rename(&staged, &live)?;
                }
            }
            sync_dir(data_dir)?;
            journal.note("swapped", name)?;
        }
        if !journal.has("kept", name) {
            // After an exchange the staging entry is the old one: keep it.
            if staged.exists() {
                std::fs::rename(&staged, &kept)?;
                sync_dir(&plan.previous)?;
            }
            journal.note("kept", name)?;
        }
        progress.update("swap", i as u64 + 1, ENTRIES.len() as u64);
    }
    let _ = std::fs::remove_dir_all(&plan.staging);
    std::fs::remove_file(data_dir.join(JOURNAL))?;
    sync_dir(data_dir)?;
    Ok(())
}

/// Fold `db`'s WAL into it and close it, so the file alone is the database (no-op if absent).
fn settle(db: &Path) -> Result<(), BackupError> {
    if !db.exists() {
        return Ok(());
    }
    let sqlite = |e: rusqlite::Error| BackupError::Sqlite(format!("{}: {e}", db.display()));
    let conn = rusqlite::Connection::open(db).map_err(sqlite)?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(sqlite)?;
    if busy != 0 {
        return Err(BackupError::Sqlite(format!(
            "{} is in use: stop the pos service first",
            db.display()
        )));
    }
    conn.close().map_err(|(_, e)| sqlite(e))?;
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::metadata(&side) {
            Ok(m) if suffix == "-wal" && m.len() > 0 => {
                return Err(BackupError::Sqlite(format!(
                    "{} still has a write-ahead log after a checkpoint",
                    db.display()
                )))
            }
            Ok(_) => std::fs::remove_file(&side)?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// The swap's steps, one line each, synced as they happen.
struct Journal {
    file: File,
    done: Vec<String>,
}

impl Journal {
    fn create(data_dir: &Path, plan: &Plan) -> Result<Journal, BackupError> {
        let path = data_dir.join(JOURNAL);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| BackupError::writing(&path, e))?;
        let line = serde_json::to_string(plan).map_err(|e| BackupError::Internal(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| BackupError::writing(&path, e))?;
        file.sync_all()?;
        sync_dir(data_dir)?;
        Ok(Journal {
            file,
            done: Vec::new(),
        })
    }

    fn reopen(data_dir: &Path, done: Vec<String>) -> Result<Journal, BackupError> {
        let file = OpenOptions::new()
            .append(true)
            .open(data_dir.join(JOURNAL))?;
        Ok(Journal { file, done })
    }

    fn has(&self, step: &str, name: &str) -> bool {
        let line = format!("{step} {name}");
        self.done.contains(&line)
    }

    fn note(&mut self, step: &str, name: &str) -> Result<(), BackupError> {
        let line = format!("{step} {name}");
        writeln!(self.file, "{line}")?;
        self.file.sync_all()?;
        self.done.push(line);
        Ok(())
    }
}

//! One scheduled backup as a job: make it, verify it, prune by the retention policy, and
//! record the outcome in `DATA_DIR/backup-status.json` (and, through the caller, the log).
//!
//! The status file lives in the data dir, not the backup dir: the backup dir may be the very
//! thing that failed (full, read-only, an unplugged disk), and the outcome must still be
//! recorded. It is written atomically (temp file, fsync, rename), so a reader sees the old or
//! the new status, never half of one.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pos_audit::EventDraft;
use serde::{Deserialize, Serialize};

use crate::archive::{self, sync_dir, BackupFile, CreateOptions, VerifyReport, EXTENSION};
use crate::format::BackupKind;
use crate::key::{BackupKey, Secret};
use crate::retention::{self, Entry, Policy};
use crate::schedule::{self, Plan, Schedule};
use crate::BackupError;

/// The status file, in the data dir.
pub const STATUS_FILE: &str = "backup-status.json";
/// The audit log module of backup outcomes (no projection: the events are the record).
pub const EVENT_MODULE: &str = "backup";
pub const EVENT_MADE: &str = "made";
pub const EVENT_FAILED: &str = "failed";

/// Leftovers of a job that was killed (`.partial` files, snapshot and verify scratch) older
/// than this are removed when a scheduler starts; younger ones may belong to a running
/// `pos backup create`.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// The unattended key: a key file or a passphrase file (first line), as the config names
/// them. `Ok(None)` when neither is set (scheduled backups are off).
pub fn unattended_secret(
    key_file: &Path,
    passphrase_file: &Path,
) -> Result<Option<Secret>, BackupError> {
    if !key_file.as_os_str().is_empty() {
        return Ok(Some(Secret::Key(BackupKey::read_file(key_file)?)));
    }
    if !passphrase_file.as_os_str().is_empty() {
        let text = std::fs::read_to_string(passphrase_file).map_err(|e| BackupError::KeyFile {
            path: passphrase_file.to_owned(),
            why: e.to_string(),
        })?;
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if line.is_empty() {
            return Err(BackupError::KeyFile {
                path: passphrase_file.to_owned(),
                why: "its first line is empty (write the passphrase there)".into(),
            });
        }
        return Ok(Some(Secret::Passphrase(line.to_owned())));
    }
    Ok(None)
}

/// The backup dir a config names: `dir`, or `DATA_DIR/backups` when empty.
pub fn backup_dir(data_dir: &Path, configured: &Path) -> PathBuf {
    if configured.as_os_str().is_empty() {
        data_dir.join("backups")
    } else {
        configured.to_owned()
    }
}

/// The local time's offset from UTC at `at_ms` (the system time zone; 0 if unknown).
pub fn local_offset_ms(at_ms: u64) -> i64 {
    jiff::Timestamp::from_millisecond(i64::try_from(at_ms).unwrap_or(0))
        .map(|t| i64::from(jiff::tz::TimeZone::system().to_offset(t).seconds()) * 1000)
        .unwrap_or(0)
}

/// Backups of `device` (its id) in `dir`, as retention and the schedule see them, with their
/// files; another device's backups (imported, or a shared stick) are left alone.
pub fn own_backups(dir: &Path, device: &str) -> Result<Vec<(BackupFile, Entry)>, BackupError> {
    Ok(archive::list(dir)?
        .into_iter()
        .filter(|b| b.header.device.id == device)
        .map(|b| {
            let e = Entry {
                created_ms: b.header.created_ms,
                kind: b.header.kind,
            };
            (b, e)
        })
        .collect())
}

/// What the schedule says for `device`'s backups in `dir` at `now_ms`.
pub fn plan_for(
    dir: &Path,
    device: &str,
    schedule: &Schedule,
    now_ms: u64,
    last_failure_ms: Option<u64>,
) -> Result<Plan, BackupError> {
    let made: Vec<Entry> = own_backups(dir, device)?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    Ok(schedule::plan(
        schedule,
        &made,
        now_ms,
        local_offset_ms(now_ms),
        last_failure_ms,
    ))
}

/// Delete `device`'s backups in `dir` that `policy` does not keep; returns the deleted files.
pub fn prune(
    dir: &Path,
    device: &str,
    policy: &Policy,
    utc_offset_ms: i64,
) -> Result<Vec<PathBuf>, BackupError> {
    let own = own_backups(dir, device)?;
    let entries: Vec<Entry> = own.iter().map(|(_, e)| *e).collect();
    let decided = retention::decide(&entries, policy, utc_offset_ms);
    let mut deleted = Vec::new();
    for ((file, _), keep) in own.iter().zip(decided) {
        if keep.is_none() {
            std::fs::remove_file(&file.path)?;
            deleted.push(file.path.clone());
        }
    }
    if !deleted.is_empty() {
        sync_dir(dir)?;
    }
    Ok(deleted)
}

/// What interrupted jobs left in `dir` (`.partial` files, `.snapshot-*` and `.verify-*`)
/// last written at least `older_than` ago (a running job writes all the time), sorted.
pub fn stale_leftovers(dir: &Path, older_than: Duration) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(&format!(".{EXTENSION}.partial"))
                || name.starts_with(".snapshot-")
                || name.starts_with(".verify-")
        })
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= older_than)
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Remove what killed jobs left in `dir` ([`stale_leftovers`] older than six hours). Returns
/// how many went. Never touches a listed backup.
pub fn remove_stale_leftovers(dir: &Path) -> usize {
    let mut removed = 0;
    for path in stale_leftovers(dir, STALE_AFTER) {
        let gone = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => removed += 1,
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove a leftover")
            }
        }
    }
    removed
}

/// What one job did.
#[derive(Debug, Clone)]
pub struct JobReport {
    pub file: BackupFile,
    pub verified: VerifyReport,
    pub pruned: Vec<PathBuf>,
}

/// Make a `kind` backup of `data_dir` into `dir`, verify it, then prune. A backup that fails
/// verification is renamed to `NAME.failed` (never listed, never counted by the schedule or
/// retention, kept for the technician) and nothing is pruned.
pub fn run(
    data_dir: &Path,
    dir: &Path,
    secret: &Secret,
    kind: BackupKind,
    policy: &Policy,
) -> Result<JobReport, BackupError> {
    let options = CreateOptions {
        kind,
        ..CreateOptions::default()
    };
    let mut quiet = |_: &str, _: u64, _: u64| {};
    let file = archive::create(data_dir, dir, secret, &options, &mut quiet)?;
    let verified = match archive::verify(&file.path, secret, dir, &mut quiet) {
        Ok(v) => v,
        Err(e) => {
            let mut failed = file.path.clone().into_os_string();
            failed.push(".failed");
            let failed = PathBuf::from(failed);
            let moved = std::fs::rename(&file.path, &failed).is_ok();
            return Err(BackupError::Contents(format!(
                "the new backup {} does not verify: {e}{}",
                file.path.display(),
                if moved {
                    format!(" (kept as {})", failed.display())
                } else {
                    String::new()
                }
            )));
        }
    };
    let offset = local_offset_ms(file.header.created_ms);
    let pruned = prune(dir, &file.header.device.id, policy, offset)?;
    Ok(JobReport {
        file,
        verified,
        pruned,
    })
}

/// The last outcomes of the scheduled backups, as `backup-status.json` holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub last_success: Option<Success>,
    pub last_failure: Option<Failure>,
    /// Failures since the last success.
    pub failures_in_a_row: u32,
    /// File name → when it was verified (Unix ms), for the backups still in the dir.
    pub verified: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Success {
    pub at_ms: u64,
    pub kind: BackupKind,
    pub file: PathBuf,
    pub bytes: u64,
    /// Records in the backup's chains.
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub at_ms: u64,
    pub kind: BackupKind,
    pub error: String,
}

impl Status {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(STATUS_FILE)
    }

    /// The status in `data_dir`; the default when there is none yet or it is unreadable.
    pub fn read(data_dir: &Path) -> Status {
        std::fs::read(Self::path(data_dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Record a successful job (and forget the verified marks of pruned files).
    pub fn succeeded(&mut self, report: &JobReport, at_ms: u64) {
        self.last_success = Some(Success {
            at_ms,
            kind: report.file.header.kind,
            file: report.file.path.clone(),
            bytes: report.file.bytes,
            records: report.verified.chains.iter().map(|c| c.records).sum(),
        });
        self.failures_in_a_row = 0;
        if let Some(name) = report.file.path.file_name() {
            self.verified
                .insert(name.to_string_lossy().into_owned(), at_ms);
        }
        for p in &report.pruned {
            if let Some(name) = p.file_name() {
                self.verified.remove(name.to_string_lossy().as_ref());
            }
        }
    }

    pub fn failed(&mut self, kind: BackupKind, error: &str, at_ms: u64) {
        self.last_failure = Some(Failure {
            at_ms,
            kind,
            error: error.to_owned(),
        });
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
    }

    /// Write atomically into `data_dir` (temp file, fsync, rename, fsync of the dir).
    pub fn write(&self, data_dir: &Path) -> Result<(), BackupError> {
        let path = Self::path(data_dir);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| BackupError::Internal(format!("status: {e}")))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".backup-status-")
            .tempfile_in(data_dir)
            .map_err(|e| BackupError::writing(data_dir, e))?;
        tmp.write_all(&json)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| BackupError::writing(&path, e))?;
        tmp.persist(&path)
            .map_err(|e| BackupError::writing(&path, e.error))?;
        sync_dir(data_dir)
    }
}

/// The payload of a `backup.made` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MadePayload {
    pub kind: BackupKind,
    pub file: String,
    pub bytes: u64,
    pub created_ms: u64,
    /// Every origin's verified head in the backup.
    pub chains: Vec<(String, u64)>,
    pub pruned: usize,
}

/// The payload of a `backup.failed` event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedPayload {
    pub kind: BackupKind,
    pub error: String,
}

/// The audit event recording a job's outcome.
pub fn event(kind: BackupKind, outcome: &Result<JobReport, BackupError>) -> EventDraft {
    match outcome {
        Ok(r) => EventDraft::json(
            EVENT_MODULE,
            EVENT_MADE,
            &MadePayload {
                kind,
                file: r
                    .file
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: r.file.bytes,
                created_ms: r.file.header.created_ms,
                chains: r
                    .verified
                    .chains
                    .iter()
                    .map(|c| (c.origin.clone(), c.seq))
                    .collect(),
                pruned: r.pruned.len(),
            },
        ),
        Err(e) => EventDraft::json(
            EVENT_MODULE,
            EVENT_FAILED,
            &FailedPayload {
                kind,
                error: e.to_string(),
            },
        ),
    }
}

//! Scheduled backups of a running hub (daily + hourly) or terminal (the daily local safety
//! copy), on a thread of their own: the backup reads its own SQLite connection, so selling and
//! syncing go on while it runs.
//!
//! What is due comes from `pos_backup::schedule` over the backups in the dir (a box with no
//! backup yet makes one at start-up; a restart never makes one twice). Each backup is verified
//! right after it is made, then the old ones are pruned by the retention policy. The outcome
//! goes to `DATA_DIR/backup-status.json`, to the log (a failure is an ERROR starting with
//! "ALERT: backup failed:" that says what to do) and to the caller's `on_outcome` (the hub
//! appends a `backup.failed` event to its audit log).

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use pos_backup::job::{self, JobReport, Status};
use pos_backup::offsite::SftpTarget;
use pos_backup::retention::Policy;
use pos_backup::schedule::{Schedule, RETRY_AFTER_MS};
use pos_backup::{BackupError, BackupKind, Secret};
use pos_core::DeviceRole;
use pos_store::Store;

use crate::context::Context;

/// The longest wait between two looks at the schedule, so a changed clock or time zone is
/// noticed within a minute.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How long stopping waits for a backup that is running before leaving it to the process exit.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// Everything a scheduled backup needs, resolved from the config once.
pub struct Settings {
    pub data_dir: PathBuf,
    pub dir: PathBuf,
    pub secret: Secret,
    pub schedule: Schedule,
    pub policy: Policy,
    pub device: String,
    /// Where each daily backup is also copied ([backup] offsite), if anywhere.
    pub offsite: Option<SftpTarget>,
}

/// What happened to one scheduled backup.
pub type Outcome = Result<JobReport, BackupError>;

/// Called on the backup thread after each scheduled backup.
pub type OnOutcome = Box<dyn Fn(BackupKind, &Outcome) + Send>;

/// The settings of this device's scheduled backups, or None when they are off (said once in
/// the log: a warning when no key is configured, an alert when the key cannot be read).
pub fn settings(ctx: &Context, role: DeviceRole) -> Option<Settings> {
    let b = &ctx.config.backup;
    if !b.scheduled {
        tracing::info!("scheduled backups are off ([backup] scheduled = false)");
        return None;
    }
    let secret = match job::unattended_secret(&b.key_file, &b.passphrase_file) {
        Ok(Some(s)) => s,
        Ok(None) => {
            tracing::warn!(
                "scheduled backups are off: set [backup] key_file (make one with `pos backup \
                 keygen`) or passphrase_file in the config, and keep a copy of the key away \
                 from this box"
            );
            return None;
        }
        Err(e) => {
            let error = format!("{e}");
            tracing::error!(
                "ALERT: backup failed: {error}; no scheduled backup runs until the key is \
                 readable (check [backup] key_file / passphrase_file, then restart)"
            );
            let mut status = Status::read(&ctx.data_dir);
            status.failed(BackupKind::Daily, &error, pos_store::now_ms());
            if let Err(e) = status.write(&ctx.data_dir) {
                tracing::warn!(error = %e, "cannot write the backup status");
            }
            return None;
        }
    };
    let device = match Store::read_identity(&ctx.data_dir) {
        Ok(identity) => identity.id.to_string(),
        Err(e) => {
            tracing::error!("ALERT: backup failed: cannot read this device's identity: {e}");
            return None;
        }
    };
    let offsite = match crate::cmd::backup::offsite_target(ctx) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("ALERT: off-site copies are off: {e:#} (fix [backup] offsite)");
            None
        }
    };
    Some(Settings {
        offsite,
        data_dir: ctx.data_dir.clone(),
        dir: job::backup_dir(&ctx.data_dir, &b.dir),
        secret,
        schedule: Schedule {
            // Validated when the config was loaded; the documented default otherwise.
            daily_at: b.daily_time().unwrap_or((2, 30)),
            // Terminals keep the daily local safety copy only.
            hourly: b.hourly && role == DeviceRole::Hub,
        },
        policy: Policy {
            hourly: b.keep_hourly,
            daily: b.keep_daily,
            monthly: b.keep_monthly,
        },
        device,
    })
}

/// The running scheduler.
pub struct Jobs {
    stop: Arc<(Mutex<bool>, Condvar)>,
    done: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

/// Start the scheduler thread; `on_outcome` is called on it after each backup.
pub fn start(settings: Settings, on_outcome: OnOutcome) -> anyhow::Result<Jobs> {
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let (done_tx, done) = mpsc::channel();
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("backups".into())
        .spawn(move || {
            run(&settings, &flag, on_outcome.as_ref());
            let _ = done_tx.send(());
        })
        .context("cannot start the backup thread")?;
    Ok(Jobs {
        stop,
        done,
        thread: Some(thread),
    })
}

impl Jobs {
    /// Stop the scheduler: at once between backups; a backup that is running is waited for a
    /// few seconds, then left to the process exit (its `.partial` file is never listed and is
    /// removed by a later start).
    pub fn stop(mut self) {
        {
            let (lock, cvar) = &*self.stop;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
            cvar.notify_all();
        }
        match self.done.recv_timeout(STOP_WAIT) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::warn!("a backup is still running; it ends with the process");
            }
        }
    }
}

/// Sleep until `ms` (Unix) or `MAX_WAIT`, whichever is sooner; true when asked to stop.
fn wait_until(stop: &(Mutex<bool>, Condvar), ms: u64) -> bool {
    let (lock, cvar) = stop;
    let wait = Duration::from_millis(ms.saturating_sub(pos_store::now_ms())).min(MAX_WAIT);
    let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
    if *guard {
        return true;
    }
    let (guard, _) = cvar
        .wait_timeout(guard, wait)
        .unwrap_or_else(|p| p.into_inner());
    *guard
}

fn stopped(stop: &(Mutex<bool>, Condvar)) -> bool {
    *stop.0.lock().unwrap_or_else(|p| p.into_inner())
}

fn run(s: &Settings, stop: &(Mutex<bool>, Condvar), on_outcome: &dyn Fn(BackupKind, &Outcome)) {
    let removed = job::remove_stale_leftovers(&s.dir);
    if removed > 0 {
        tracing::info!(removed, dir = %s.dir.display(), "removed leftovers of interrupted backups");
    }
    tracing::info!(
        dir = %s.dir.display(),
        daily_at = format!("{:02}:{:02}", s.schedule.daily_at.0, s.schedule.daily_at.1),
        hourly = s.schedule.hourly,
        "scheduled backups on"
    );
    let mut last_failure: Option<u64> = None;
    while !stopped(stop) {
        let now = pos_store::now_ms();
        let plan = match job::plan_for(&s.dir, &s.device, &s.schedule, now, last_failure) {
            Ok(p) => p,
            Err(e) => {
                // The dir cannot even be listed: a failed backup like any other.
                last_failure = Some(now);
                record(s, BackupKind::Daily, &Err(e), now, on_outcome);
                if wait_until(stop, now + RETRY_AFTER_MS) {
                    break;
                }
                continue;
            }
        };
        let Some(kind) = plan.due else {
            if wait_until(stop, plan.next_check_ms) {
                break;
            }
            continue;
        };
        tracing::info!(%kind, dir = %s.dir.display(), "scheduled backup starting");
        let outcome = job::run(&s.data_dir, &s.dir, &s.secret, kind, &s.policy);
        let at = pos_store::now_ms();
        last_failure = outcome.is_err().then_some(at);
        record(s, kind, &outcome, at, on_outcome);
        if let (Ok(report), Some(target), BackupKind::Daily) = (&outcome, &s.offsite, kind) {
            push_offsite(target, &report.file.path);
        }
    }
}

/// Log the outcome (a failure as the ALERT), write it to the status file, pass it on.
fn record(
    s: &Settings,
    kind: BackupKind,
    outcome: &Outcome,
    at: u64,
    on_outcome: &dyn Fn(BackupKind, &Outcome),
) {
    {
        let mut status = Status::read(&s.data_dir);
        match outcome {
            Ok(r) => {
                status.succeeded(r, at);
                tracing::info!(
                    %kind,
                    file = %r.file.path.display(),
                    bytes = r.file.bytes,
                    records = r.verified.chains.iter().map(|c| c.records).sum::<u64>(),
                    pruned = r.pruned.len(),
                    "scheduled backup made and verified"
                );
            }
            Err(e) => {
                status.failed(kind, &e.to_string(), at);
                alert(s, kind, e);
            }
        }
        if let Err(e) = status.write(&s.data_dir) {
            tracing::warn!(error = %e, "cannot write the backup status");
        }
    }
    on_outcome(kind, outcome);
}

/// Copy a new daily backup off site; a failure is an alert, the local backup stands.
fn push_offsite(target: &SftpTarget, file: &std::path::Path) {
    match target.upload(file) {
        Ok(remote) => tracing::info!(%remote, host = %target.host, "daily backup copied off site"),
        Err(e) => tracing::error!(
            host = %target.host,
            "ALERT: off-site copy failed: {e}. The local backup is fine; copy it later with \
             `pos backup offsite push`."
        ),
    }
}

/// The system log entry of a failed backup, with what to do.
fn alert(s: &Settings, kind: BackupKind, e: &BackupError) {
    tracing::error!(
        %kind,
        dir = %s.dir.display(),
        "ALERT: backup failed: {e}. Check that {} exists, is writable and has free space, and \
         that the backup key is readable; try it by hand with `pos backup create`. The schedule \
         tries again in {} minutes.",
        s.dir.display(),
        RETRY_AFTER_MS / 60_000
    );
}

/// One line on the scheduled backups for status listings (`pos hub devices list`): the last
/// verified backup, or BACKUP-ALERT with the last failure, from `DATA_DIR/backup-status.json`.
pub fn status_line(ctx: &Context) -> String {
    let status = Status::read(&ctx.data_dir);
    let when = |ms: u64| crate::timefmt::local(pos_core::Hlc::from_parts(ms, 0));
    let last = match &status.last_success {
        Some(s) => format!(
            "last verified backup {} ({}, {})",
            when(s.at_ms),
            s.kind,
            s.file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        None => "no verified scheduled backup yet".to_owned(),
    };
    match &status.last_failure {
        Some(f) if status.failures_in_a_row > 0 => format!(
            "Backups: BACKUP-ALERT: the last {} backup failed at {} ({} in a row): {}; {last}",
            f.kind,
            when(f.at_ms),
            status.failures_in_a_row,
            f.error
        ),
        _ if ctx.config.backup.key_file.as_os_str().is_empty()
            && ctx.config.backup.passphrase_file.as_os_str().is_empty() =>
        {
            format!(
                "Backups: scheduled backups are off (set [backup] key_file, see `pos backup \
                 keygen`); {last}"
            )
        }
        _ => format!("Backups: {last}"),
    }
}

//! Backups of a device's data dir: online, compressed, encrypted, verified.
//!
//! * [`create`]: an online snapshot of the SQLite database with SQLite's backup API (one read
//!   transaction on its own connection: sales go on), archived (tar) with the device's identity,
//!   keys and TLS files, compressed (zstd) and sealed in segments (XChaCha20-Poly1305 with a key
//!   from a passphrase through argon2id, or from a key file), with a manifest of hashes, the
//!   schema version and every origin's chain head. Written as `.partial`, synced, then renamed:
//!   a backup that is listed is complete.
//! * [`verify`]: decrypts, checks every hash, unpacks into a scratch dir, runs SQLite's
//!   integrity check and the audit chain verification, and compares the chain heads with the
//!   manifest; errors name the segment and offset, or the file, table or record.
//! * [`restore`]: into a staging dir on the same file system, verified, then swapped in with
//!   atomic renames; the current data is kept as `pre-restore-<time>`.
//! * [`retention`]: which backups a policy (hourly / daily / monthly) keeps; pure.
//! * [`usb`]: removable drives and their mount points.
//! * [`schedule`]: which scheduled backup (daily, hourly) is due and when; pure.
//! * [`job`]: one scheduled backup: make, verify, prune, record the outcome
//!   (`DATA_DIR/backup-status.json`; the audit events `backup.made` / `backup.failed`).
//! * [`offsite`]: copies on an SFTP server the shop owns (OpenSSH's client, pinned host key).

mod archive;
mod format;
pub mod job;
mod key;
pub mod offsite;
pub mod restore;
pub mod retention;
pub mod schedule;
mod seal;
pub mod usb;

use std::path::PathBuf;

pub use archive::{
    create, list, verify, BackupFile, Chain, CreateOptions, Progress, VerifyReport, EXTENSION,
};
pub use format::{BackupKind, ChainHead, DeviceInfo, FileEntry, Header, Manifest};
pub use key::{BackupKey, KdfParams, KeySpec, Secret};
pub use restore::restore;
pub use seal::{read_header, OpenReader, SealWriter};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("this is not a 3PlugPOS backup file")]
    NotABackup,
    #[error(
        "this backup has format version {0}, which this version of pos cannot read (update pos)"
    )]
    UnsupportedVersion(u16),
    #[error("the backup is damaged at byte {offset}: {what}")]
    Damaged { offset: u64, what: String },
    #[error("the backup is incomplete at byte {offset}: {what}")]
    Truncated { offset: u64, what: String },
    #[error("the passphrase or key file does not open this backup (check it and try again)")]
    WrongKey,
    #[error("{0}")]
    WrongSecretKind(&'static str),
    #[error("cannot use the key file {path}: {why}")]
    KeyFile { path: PathBuf, why: String },
    #[error("cannot derive the key: {0}")]
    Kdf(String),
    #[error("no randomness from the system: {0}")]
    Random(String),
    #[error("the disk holding {path} is full: nothing was written there (free space or choose another place)")]
    DiskFull { path: PathBuf },
    #[error("the backup's contents are wrong: {0}")]
    Contents(String),
    #[error("this backup holds database schema {found}, newer than this version of pos knows ({known}): update pos before restoring it")]
    SchemaTooNew { found: i64, known: i64 },
    #[error(transparent)]
    Store(#[from] pos_store::StoreError),
    #[error("SQLite: {0}")]
    Sqlite(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Internal(String),
}

impl BackupError {
    /// The error an `io::Error` from the sealed stream stands for.
    pub fn from_io(e: std::io::Error) -> BackupError {
        if e.get_ref().is_some_and(|inner| inner.is::<BackupError>()) {
            if let Some(inner) = e.into_inner() {
                if let Ok(b) = inner.downcast::<BackupError>() {
                    return *b;
                }
            }
            return BackupError::Internal("lost error".into());
        }
        BackupError::Io(e)
    }

    /// `e` while writing `path`: a full disk is named as such.
    pub(crate) fn writing(path: &std::path::Path, e: std::io::Error) -> BackupError {
        let e = BackupError::from_io(e);
        match &e {
            BackupError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                BackupError::DiskFull {
                    path: path.to_owned(),
                }
            }
            BackupError::Io(io) if io.raw_os_error() == Some(28) => BackupError::DiskFull {
                path: path.to_owned(),
            },
            _ => e,
        }
    }
}

use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

/// Everything that can go wrong in the store, each with what to do next.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("data dir {0} does not exist (hint: create it with `pos init --role terminal|hub --data-dir {0}`)")]
    NoDataDir(PathBuf),
    #[error("data dir {0} holds no device identity (hint: run `pos init --role terminal|hub --data-dir {0}` first)")]
    NotInitialized(PathBuf),
    #[error("data dir {path} already holds device {device} (hint: `pos init --force` moves it aside into a `replaced-*` folder; nothing is deleted)")]
    AlreadyInitialized { path: PathBuf, device: String },
    #[error("data dir {path} is in use by another pos process{holder} (hint: stop that process first, or use another --data-dir)")]
    Locked { path: PathBuf, holder: String },
    #[error("cannot write in {path}: {detail} (hint: check that the disk is mounted read-write and the directory belongs to the pos user)")]
    NotWritable { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    Io { path: PathBuf, detail: String },
    #[error("database {path} is damaged or not a 3PlugPOS database: {detail} (hint: restore the newest verified backup with `pos backup restore`)")]
    Corrupt { path: PathBuf, detail: String },
    #[error("disk full while writing {path}: the transaction was rolled back and nothing was lost (hint: free space on that disk, then retry)")]
    DiskFull { path: PathBuf },
    #[error("device identity file {path} is damaged: {detail} (hint: restore the data dir from a backup; do not edit identity files)")]
    BadIdentity { path: PathBuf, detail: String },
    #[error("database {path} was written by a newer pos (schema {found}, this build knows {known}) (hint: update the firmware, `pos update apply`)")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database {path} belongs to device {in_db}, but the identity file says {in_file} (hint: the data dir was mixed up; restore it from a backup)")]
    IdentityMismatch {
        path: PathBuf,
        in_db: String,
        in_file: String,
    },
    #[error("event refused: {0}")]
    InvalidEvent(#[from] pos_audit::InvalidDraft),
    #[error("{module}.{kind} event refused: {detail}")]
    Rejected {
        module: String,
        kind: String,
        detail: String,
    },
    #[error("records of origin {origin} from seq {seq} refused, nothing was stored: {detail}")]
    SyncRefused {
        origin: String,
        seq: u64,
        detail: String,
    },
    #[error("database error in {path}: {detail}")]
    Sqlite { path: PathBuf, detail: String },
}

impl StoreError {
    /// Translate a SQLite error into one a person can act on.
    pub(crate) fn sqlite(path: &Path, err: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        let detail = err.to_string();
        match err.sqlite_error_code() {
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
                StoreError::Corrupt { path, detail }
            }
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
                StoreError::NotWritable { path, detail }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked {
                path,
                holder: " (the database file is locked)".into(),
            },
            _ => StoreError::Sqlite { path, detail },
        }
    }

    pub(crate) fn io(path: &Path, err: std::io::Error) -> StoreError {
        let path = path.to_path_buf();
        match err.kind() {
            std::io::ErrorKind::NotFound => StoreError::Io {
                path,
                detail: "not found".into(),
            },
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                StoreError::NotWritable {
                    path,
                    detail: err.to_string(),
                }
            }
            std::io::ErrorKind::StorageFull => StoreError::DiskFull { path },
            _ => StoreError::Io {
                path,
                detail: err.to_string(),
            },
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

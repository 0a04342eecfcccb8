//! The data dir: one device's identity, key pair and database, owned by one process at a time.
//!
//! ```text
//! DATA_DIR/pos.lock      flock held while a process owns the dir; holds its pid
//! DATA_DIR/device.toml   identity: id, role, branch, name (written last by `pos init`)
//! DATA_DIR/device.key    ed25519 secret key, mode 0600
//! DATA_DIR/device.pub    ed25519 public key
//! DATA_DIR/pos.db        SQLite database (+ -wal, -shm)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use pos_audit::DeviceKey;
use pos_core::{DeviceId, DeviceRole};
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

pub const DB_FILE: &str = "pos.db";
const LOCK_FILE: &str = "pos.lock";
const IDENTITY_FILE: &str = "device.toml";
const KEY_FILE: &str = "device.key";
const PUBLIC_FILE: &str = "device.pub";
/// Everything `pos init --force` moves aside, in that order.
const OWNED_FILES: [&str; 6] = [
    IDENTITY_FILE,
    KEY_FILE,
    PUBLIC_FILE,
    DB_FILE,
    "pos.db-wal",
    "pos.db-shm",
];

/// Who this device is. Stored in `device.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub id: DeviceId,
    pub role: DeviceRole,
    pub branch: String,
    pub name: String,
    /// Unix milliseconds.
    pub created_ms: u64,
    pub public_key: String,
}

/// Exclusive ownership of a data dir for the life of this value (an OS file lock, released
/// by the kernel even when the process is killed).
#[derive(Debug)]
pub struct DataDirLock {
    dir: PathBuf,
    /// `None` for a read-only look (`pos audit verify` beside a running service).
    _lock: Option<Flock<File>>,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<DataDirLock> {
        if !dir.is_dir() {
            return Err(StoreError::NoDataDir(dir.to_path_buf()));
        }
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, _)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let holder = match pid.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(StoreError::Locked {
                    path: dir.to_path_buf(),
                    holder,
                });
            }
        };
        // The pid is only a hint for the error message above; failing to write it is harmless.
        let _ = lock.set_len(0);
        let _ = lock.rewind();
        let _ = write!(lock, "{}", std::process::id());
        let _ = lock.flush();
        Ok(DataDirLock {
            dir: dir.to_path_buf(),
            _lock: Some(lock),
        })
    }

    /// Look at a data dir without owning it: for read-only tools while the service runs.
    pub fn shared(dir: &Path) -> Result<DataDirLock> {
        if !dir.is_dir() {
            return Err(StoreError::NoDataDir(dir.to_path_buf()));
        }
        Ok(DataDirLock {
            dir: dir.to_path_buf(),
            _lock: None,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// The identity and signing key of this data dir.
    pub fn load_identity(&self) -> Result<(Identity, DeviceKey)> {
        let path = self.dir.join(IDENTITY_FILE);
        if !path.exists() {
            return Err(StoreError::NotInitialized(self.dir.clone()));
        }
        let text = fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))?;
        let identity: Identity = toml::from_str(&text).map_err(|e| StoreError::BadIdentity {
            path: path.clone(),
            detail: e.message().to_owned(),
        })?;
        let key_path = self.dir.join(KEY_FILE);
        let key_text = fs::read_to_string(&key_path).map_err(|e| StoreError::io(&key_path, e))?;
        let key = DeviceKey::from_file_text(&key_text).map_err(|e| StoreError::BadIdentity {
            path: key_path.clone(),
            detail: e.to_string(),
        })?;
        if key.public().to_string() != identity.public_key {
            return Err(StoreError::BadIdentity {
                path: key_path,
                detail: "the secret key does not match the public key in device.toml".into(),
            });
        }
        Ok((identity, key))
    }

    /// Create a new identity and key pair. Refuses when one exists unless `force`; then the old
    /// identity and database are moved into `replaced-<time>-<id>/`, never deleted.
    pub(crate) fn create_identity(
        &self,
        role: DeviceRole,
        branch: &str,
        name: &str,
        force: bool,
        now_ms: u64,
    ) -> Result<(Identity, DeviceKey, Option<PathBuf>)> {
        let identity_path = self.dir.join(IDENTITY_FILE);
        let mut moved_to = None;
        if identity_path.exists() {
            let device = self
                .load_identity()
                .map(|(i, _)| i.id.to_string())
                .unwrap_or_else(|_| "(unreadable identity)".into());
            if !force {
                return Err(StoreError::AlreadyInitialized {
                    path: self.dir.clone(),
                    device,
                });
            }
            moved_to = Some(self.move_aside(&format!("replaced-{now_ms}"))?);
        } else if OWNED_FILES.iter().any(|f| self.dir.join(f).exists()) {
            // A previous `pos init` died before writing device.toml: keep its leftovers aside.
            moved_to = Some(self.move_aside(&format!("incomplete-{now_ms}"))?);
        }

        let key = DeviceKey::generate().map_err(|e| StoreError::Io {
            path: self.dir.clone(),
            detail: e.to_string(),
        })?;
        let identity = Identity {
            id: DeviceId::new_v7(),
            role,
            branch: branch.to_owned(),
            name: name.to_owned(),
            created_ms: now_ms,
            public_key: key.public().to_string(),
        };
        write_durably(
            &self.dir.join(KEY_FILE),
            key.to_file_text().as_bytes(),
            0o600,
        )?;
        // Both key files are private; the public key is also in device.toml for anyone to read.
        write_durably(
            &self.dir.join(PUBLIC_FILE),
            key.public().to_file_text().as_bytes(),
            0o600,
        )?;
        Ok((identity, key, moved_to))
    }

    /// Write `device.toml`: the last step of `pos init`, which makes the identity exist.
    pub(crate) fn commit_identity(&self, identity: &Identity) -> Result<()> {
        let body = toml::to_string(identity).map_err(|e| StoreError::Io {
            path: self.dir.join(IDENTITY_FILE),
            detail: e.to_string(),
        })?;
        let text =
            format!("# 3PlugPOS device identity, written by `pos init`. Do not edit.\n{body}");
        write_durably(&self.dir.join(IDENTITY_FILE), text.as_bytes(), 0o644)
    }

    fn move_aside(&self, name: &str) -> Result<PathBuf> {
        let target = self.dir.join(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&target)
            .map_err(|e| StoreError::io(&target, e))?;
        for file in OWNED_FILES {
            let from = self.dir.join(file);
            if from.exists() {
                fs::rename(&from, target.join(file)).map_err(|e| StoreError::io(&from, e))?;
            }
        }
        sync_dir(&self.dir)?;
        Ok(target)
    }
}

/// Write a new file via a temporary name, fsync it, rename it into place and fsync the
/// directory: after a power cut the file is either complete or absent.
fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| StoreError::io(&tmp, e))?;
    f.sync_all().map_err(|e| StoreError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    let parent = path.parent().unwrap_or(Path::new("."));
    sync_dir(parent)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

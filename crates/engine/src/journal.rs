//! The open ticket's journal: a durable copy of the ticket being rung up, rewritten after every
//! change, so that a power cut or a killed process loses no scanned line.
//!
//! It is a scratch file, not the log: the log records business facts (a sale, a park, a
//! void), and an open ticket is not one yet. The file is replaced atomically (write a temporary
//! file, fsync it, rename it over the old one, fsync the directory), so after a crash it holds
//! either the ticket before or after the last change, never a torn mix.

use std::io::Write;
use std::path::{Path, PathBuf};

use pos_core::sale::Ticket;
use pos_core::UserId;
use serde::{Deserialize, Serialize};

const FILE: &str = "open-ticket.json";

/// The ticket and whose it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub cashier: UserId,
    pub ticket: Ticket,
}

#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
}

impl Journal {
    pub fn in_dir(dir: &Path) -> Journal {
        Journal {
            path: dir.join(FILE),
        }
    }

    /// Durably replace the journal with `entry`.
    pub fn save(&self, entry: &Entry) -> std::io::Result<()> {
        let body = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        self.sync_dir()
    }

    /// The ticket left by the last run, if any. A journal that cannot be read (a disk error,
    /// an edited file) is kept aside for a technician and reported, never silently dropped.
    pub fn load(&self) -> Option<Entry> {
        let body = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::error!("open ticket journal {}: {e}", self.path.display());
                return None;
            }
        };
        match serde_json::from_slice(&body) {
            Ok(entry) => Some(entry),
            Err(e) => {
                let aside = self.path.with_extension("json.unreadable");
                tracing::error!(
                    "open ticket journal {} unreadable ({e}): kept as {}",
                    self.path.display(),
                    aside.display()
                );
                let _ = std::fs::rename(&self.path, aside);
                None
            }
        }
    }

    /// No ticket is open any more (paid, parked or cleared).
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        match self.path.parent() {
            Some(dir) => std::fs::File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }
}

//! The open ticket's journal: a durable copy of the ticket being rung up, rewritten after every
//! change, so that a power cut or a killed process loses no scanned line.
//!
//! It is a scratch copy, not the log: the log records business facts (a sale, a park, a void),
//! and an open ticket is not one yet.
//!
//! Two slot files (`open-ticket.a`, `open-ticket.b`) are written alternately in place, each
//! write followed by one `fdatasync`: a record is `magic ‖ seq ‖ len ‖ blake3(body) ‖ body`
//! (big-endian). A write torn by a power cut fails its hash and the other slot, one change
//! older, is used. One sync per change and no rename or directory sync keeps a scan fast
//! (P3); an empty body means "no open ticket".

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use pos_core::sale::Ticket;
use pos_core::UserId;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"3PJ1";
const HEADER: usize = 4 + 8 + 4 + 32;
/// A journal record larger than this is not believed (a ticket is at most a few hundred lines).
const MAX_BODY: usize = 16 << 20;

/// The ticket and whose it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub cashier: UserId,
    pub ticket: Ticket,
}

#[derive(Debug)]
pub(crate) struct Journal {
    paths: [PathBuf; 2],
    /// Opened at the first write; `None` until then (or after an open error, retried).
    files: Option<[File; 2]>,
    /// Sequence of the last record written or read; the next goes to slot `(seq + 1) % 2`.
    seq: u64,
}

impl Journal {
    pub fn in_dir(dir: &Path) -> Journal {
        Journal {
            paths: [dir.join("open-ticket.a"), dir.join("open-ticket.b")],
            files: None,
            seq: 0,
        }
    }

    fn files(&mut self) -> std::io::Result<&mut [File; 2]> {
        if self.files.is_none() {
            let open = |p: &PathBuf| {
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(p)
            };
            let files = [open(&self.paths[0])?, open(&self.paths[1])?];
            // The slot files must survive a power cut themselves: sync the directory once.
            if let Some(dir) = self.paths[0].parent() {
                File::open(dir)?.sync_all()?;
            }
            self.files = Some(files);
        }
        // Just set above when it was `None`.
        self.files
            .as_mut()
            .ok_or_else(|| std::io::Error::other("journal files not open"))
    }

    /// Durably make `entry` (or, with `None`, "no open ticket") the journal's content.
    pub fn save(&mut self, entry: Option<&Entry>) -> std::io::Result<()> {
        let body = match entry {
            Some(e) => serde_json::to_vec(e).map_err(std::io::Error::other)?,
            None => Vec::new(),
        };
        let seq = self.seq + 1;
        let len = u32::try_from(body.len()).map_err(std::io::Error::other)?;
        let mut record = Vec::with_capacity(HEADER + body.len());
        record.extend_from_slice(MAGIC);
        record.extend_from_slice(&seq.to_be_bytes());
        record.extend_from_slice(&len.to_be_bytes());
        record.extend_from_slice(blake3::hash(&body).as_bytes());
        record.extend_from_slice(&body);
        let slot = usize::from(seq % 2 == 1);
        let file = &mut self.files()?[slot];
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&record)?;
        file.sync_data()?;
        self.seq = seq;
        Ok(())
    }

    /// The ticket left by the last run, if any: the newest slot whose record is whole.
    pub fn load(&mut self) -> Option<Entry> {
        let mut best: Option<(u64, Vec<u8>)> = None;
        for path in &self.paths {
            match read_record(path) {
                Ok(Some((seq, body))) if best.as_ref().is_none_or(|(s, _)| seq > *s) => {
                    best = Some((seq, body));
                }
                Ok(_) => {}
                Err(e) => tracing::error!("open ticket journal {}: {e}", path.display()),
            }
        }
        let (seq, body) = best?;
        self.seq = self.seq.max(seq);
        if body.is_empty() {
            return None;
        }
        match serde_json::from_slice(&body) {
            Ok(entry) => Some(entry),
            Err(e) => {
                // Whole and hashed, yet not a ticket: a newer format or an edited file. Say
                // so; the slot is overwritten by the next change.
                tracing::error!("open ticket journal holds no readable ticket: {e}");
                None
            }
        }
    }
}

/// A slot's record, or `None` when the slot is empty, torn or not a journal record.
fn read_record(path: &Path) -> std::io::Result<Option<(u64, Vec<u8>)>> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => f.read_to_end(&mut bytes)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Ok(None);
    }
    let field = |range: std::ops::Range<usize>| bytes.get(range).unwrap_or_default();
    let seq = u64::from_be_bytes(field(4..12).try_into().unwrap_or([0; 8]));
    let len = u32::from_be_bytes(field(12..16).try_into().unwrap_or([0; 4]));
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len > MAX_BODY || bytes.len() < HEADER + len {
        return Ok(None);
    }
    let body = &bytes[HEADER..HEADER + len];
    if blake3::hash(body).as_bytes() != field(16..48) {
        return Ok(None);
    }
    Ok(Some((seq, body.to_vec())))
}

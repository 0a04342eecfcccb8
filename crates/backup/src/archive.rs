//! Making, listing and verifying backup files.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use pos_core::DeviceId;
use pos_store::{Store, DB_FILE};
use rusqlite::{Connection, OpenFlags};

use crate::format::{
    BackupKind, ChainHead, DeviceInfo, FileEntry, Header, Manifest, MAX_CHUNK_BYTES,
};
use crate::key::{BackupKey, KdfParams, KeySpec, Secret};
use crate::seal::{read_header, OpenReader, SealWriter};
use crate::BackupError;

/// Backup files end in `.3pbak`; one being written ends in `.3pbak.partial` and is never
/// listed.
pub const EXTENSION: &str = "3pbak";
const PARTIAL: &str = "partial";

/// The files of a data dir that a backup holds besides the database (the device's identity,
/// its signing key and, on a hub, the branch CA: a new hub restored from the backup is the
/// same hub to its terminals).
const IDENTITY_FILES: [&str; 3] = ["device.toml", "device.key", "device.pub"];
const TLS_DIR: &str = "tls";

/// What a long job reports: `phase` names the step, `done` of `total` bytes.
pub trait Progress {
    fn update(&mut self, phase: &str, done: u64, total: u64);
}

impl<F: FnMut(&str, u64, u64)> Progress for F {
    fn update(&mut self, phase: &str, done: u64, total: u64) {
        self(phase, done, total)
    }
}

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub kind: BackupKind,
    /// Plaintext bytes per segment.
    pub chunk_bytes: u32,
    pub zstd_level: i32,
    /// argon2id costs for a passphrase (None: [`KdfParams::recommended`]).
    pub kdf: Option<KdfParams>,
    /// Wall clock of the backup (Unix ms); None: now.
    pub created_ms: Option<u64>,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            kind: BackupKind::Manual,
            chunk_bytes: 1 << 20,
            zstd_level: 3,
            kdf: None,
            created_ms: None,
        }
    }
}

/// A complete backup file and its public header.
#[derive(Debug, Clone)]
pub struct BackupFile {
    pub path: PathBuf,
    pub header: Header,
    pub bytes: u64,
}

/// Make a backup of `data_dir` into `out_dir` while the device keeps working.
pub fn create(
    data_dir: &Path,
    out_dir: &Path,
    secret: &Secret,
    options: &CreateOptions,
    progress: &mut dyn Progress,
) -> Result<BackupFile, BackupError> {
    if options.chunk_bytes == 0 || options.chunk_bytes > MAX_CHUNK_BYTES {
        return Err(BackupError::Internal("chunk size out of range".into()));
    }
    let identity = Store::read_identity(data_dir)?;
    std::fs::create_dir_all(out_dir).map_err(|e| BackupError::writing(out_dir, e))?;
    let (key, spec) = match secret {
        Secret::Passphrase(p) => {
            let params = match &options.kdf {
                Some(k) => k.clone(),
                None => KdfParams::recommended()?,
            };
            (
                BackupKey::from_passphrase(p, &params)?,
                KeySpec::Passphrase(params),
            )
        }
        Secret::Key(k) => (k.clone(), KeySpec::KeyFile),
    };
    let created_ms = options.created_ms.unwrap_or_else(pos_store::now_ms);

    // 1. The snapshot: one read transaction on our own connection (WAL: writers go on).
    progress.update("snapshot", 0, 0);
    let snapshot = tempfile::Builder::new()
        .prefix(".snapshot-")
        .suffix(".db")
        .tempfile_in(out_dir)
        .map_err(|e| BackupError::writing(out_dir, e))?;
    snapshot_db(&data_dir.join(DB_FILE), snapshot.path())?;
    let (schema_version, chains) = snapshot_facts(snapshot.path())?;

    // 2. The archive, compressed and sealed into `.partial`, then synced and renamed.
    let name = file_name(&identity.name, created_ms, options.kind);
    let final_path = out_dir.join(&name);
    let partial_path = out_dir.join(format!("{name}.{PARTIAL}"));
    let header = Header {
        created_ms,
        kind: options.kind,
        device: DeviceInfo {
            id: identity.id.to_string(),
            name: identity.name.clone(),
            role: identity.role.to_string(),
            branch: identity.branch.clone(),
        },
        key: spec,
        key_check: String::new(),
        nonce_prefix: String::new(),
        chunk_bytes: options.chunk_bytes,
    };
    let result = (|| {
        let file = File::create(&partial_path)?;
        let seal = SealWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            header.clone(),
            &key,
        )
        .map_err(io_of)?;
        let mut zstd = zstd::Encoder::new(seal, options.zstd_level)?;
        // Pledged content size is unknown; checksums are ours (blake3 per file and segment).
        zstd.include_checksum(false)?;
        // Compression is most of the work: one worker per core (the snapshot is already taken,
        // so the sales this competes with only need short bursts of CPU).
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        if workers > 1 {
            zstd.multithread(workers as u32)?;
        }
        let mut tar = tar::Builder::new(zstd);
        tar.mode(tar::HeaderMode::Deterministic);
        let mut files = Vec::new();
        let mut sources: Vec<(String, PathBuf)> = IDENTITY_FILES
            .iter()
            .map(|f| ((*f).to_owned(), data_dir.join(f)))
            .filter(|(_, p)| p.exists())
            .collect();
        let tls = data_dir.join(TLS_DIR);
        if tls.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&tls)?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let n = e.file_name().to_string_lossy().into_owned();
                sources.push((format!("{TLS_DIR}/{n}"), e.path()));
            }
        }
        sources.push((DB_FILE.to_owned(), snapshot.path().to_owned()));
        let total: u64 = sources
            .iter()
            .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum();
        let mut done = 0u64;
        for (name, path) in &sources {
            let f = File::open(path)?;
            let len = f.metadata()?.len();
            let mut hashing = HashingReader::new(f, |n| {
                done += n;
                progress.update("compress and encrypt", done, total);
            });
            let mut h = tar::Header::new_gnu();
            h.set_size(len);
            h.set_mode(0o600);
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, name, &mut hashing)?;
            let (bytes, hash) = hashing.finish();
            if bytes != len {
                return Err(std::io::Error::other(format!(
                    "{name} changed while it was read"
                )));
            }
            files.push(FileEntry {
                path: name.clone(),
                bytes,
                blake3: hash,
            });
        }
        let zstd = tar.into_inner()?;
        let seal = zstd.finish()?;
        let manifest = Manifest {
            schema_version,
            files,
            chains: chains.clone(),
            archive_bytes: 0,
            segments: Vec::new(),
            made_by: format!("pos {}", env!("CARGO_PKG_VERSION")),
        };
        let out = seal.finish(manifest).map_err(io_of)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(file.metadata()?.len())
    })();
    // The snapshot's connections leave SQLite's side files (WAL mode came with the copy);
    // the temp file goes on drop, these must go by hand.
    for side in ["-wal", "-shm"] {
        let mut p = snapshot.path().as_os_str().to_owned();
        p.push(side);
        let _ = std::fs::remove_file(p);
    }
    let bytes = match result {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_file(&partial_path);
            return Err(BackupError::writing(&partial_path, e));
        }
    };
    std::fs::rename(&partial_path, &final_path).map_err(|e| BackupError::writing(out_dir, e))?;
    sync_dir(out_dir)?;
    tracing::info!(path = %final_path.display(), bytes, "backup written");
    Ok(BackupFile {
        path: final_path,
        header,
        bytes,
    })
}

fn io_of(e: BackupError) -> std::io::Error {
    match e {
        BackupError::Io(io) => io,
        other => std::io::Error::other(other),
    }
}

/// `pos-<device>-<UTC time>-<kind>.3pbak`, sortable by time.
fn file_name(device: &str, created_ms: u64, kind: BackupKind) -> String {
    let safe: String = device
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ts = jiff::Timestamp::from_millisecond(i64::try_from(created_ms).unwrap_or(0))
        .map(|t| t.strftime("%Y%m%dT%H%M%S%.3fZ").to_string())
        .unwrap_or_else(|_| created_ms.to_string());
    format!("pos-{safe}-{ts}-{kind}.{EXTENSION}")
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::writing(dir, e))
}

/// SQLite's online backup of `db` into `to`, in one step (one read transaction: a stepped
/// backup would restart whenever the device commits a sale in between).
fn snapshot_db(db: &Path, to: &Path) -> Result<(), BackupError> {
    let sqlite = |e: rusqlite::Error| BackupError::Sqlite(format!("{}: {e}", db.display()));
    if !db.exists() {
        return Err(BackupError::Contents(format!(
            "{} does not exist (is this a data dir?)",
            db.display()
        )));
    }
    let src = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    src.busy_timeout(Duration::from_secs(10)).map_err(sqlite)?;
    let mut dst = Connection::open(to).map_err(sqlite)?;
    let backup = rusqlite::backup::Backup::new(&src, &mut dst).map_err(sqlite)?;
    let mut waits = 0;
    loop {
        match backup.step(-1).map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => BackupError::DiskFull {
                path: to.to_owned(),
            },
            _ => sqlite(e),
        })? {
            rusqlite::backup::StepResult::Done => break,
            rusqlite::backup::StepResult::More => {}
            _ => {
                waits += 1;
                if waits > 200 {
                    return Err(BackupError::Sqlite(format!(
                        "{} stayed locked for 10 s: is a migration running?",
                        db.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    Ok(())
}

/// The snapshot's schema version and every origin's sealed chain head.
fn snapshot_facts(db: &Path) -> Result<(i64, Vec<ChainHead>), BackupError> {
    let sqlite = |e: rusqlite::Error| BackupError::Sqlite(format!("{}: {e}", db.display()));
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    let mut stmt = conn
        .prepare("SELECT origin, seq, head FROM chain_seals ORDER BY origin")
        .map_err(sqlite)?;
    let chains = stmt
        .query_map([], |r| {
            let origin: Vec<u8> = r.get(0)?;
            let seq: i64 = r.get(1)?;
            let head: Vec<u8> = r.get(2)?;
            Ok((origin, seq, head))
        })
        .map_err(sqlite)?
        .map(|row| {
            let (origin, seq, head) = row.map_err(sqlite)?;
            let origin: [u8; 16] = origin
                .try_into()
                .map_err(|_| BackupError::Contents("a chain seal has a malformed origin".into()))?;
            Ok(ChainHead {
                origin: DeviceId::from_bytes(origin).to_string(),
                seq: u64::try_from(seq).unwrap_or(0),
                head: hex::encode(head),
            })
        })
        .collect::<Result<Vec<_>, BackupError>>()?;
    Ok((version, chains))
}

/// Counts and hashes what passes through.
struct HashingReader<R, F> {
    inner: R,
    hasher: blake3::Hasher,
    bytes: u64,
    on_read: F,
}

impl<R: Read, F: FnMut(u64)> HashingReader<R, F> {
    fn new(inner: R, on_read: F) -> Self {
        HashingReader {
            inner,
            hasher: blake3::Hasher::new(),
            bytes: 0,
            on_read,
        }
    }

    fn finish(self) -> (u64, String) {
        (self.bytes, self.hasher.finalize().to_hex().to_string())
    }
}

impl<R: Read, F: FnMut(u64)> Read for HashingReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

/// Complete backups in `dir` (newest first); files that are not backups are skipped,
/// `.partial` files never listed.
pub fn list(dir: &Path) -> Result<Vec<BackupFile>, BackupError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        let bytes = f.metadata().map(|m| m.len()).unwrap_or(0);
        match read_header(&mut BufReader::new(f)) {
            Ok((header, _)) => out.push(BackupFile {
                path,
                header,
                bytes,
            }),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "not a readable backup"),
        }
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.header.created_ms));
    Ok(out)
}

/// One chain as verification found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub origin: String,
    pub records: u64,
    pub seq: u64,
    pub head: String,
}

/// What [`verify`] checked.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub header: Header,
    pub manifest: Manifest,
    pub chains: Vec<Chain>,
    pub file_bytes: u64,
}

/// Check `file` completely; with `extract_to`, leave the unpacked data dir there (restore).
pub fn verify(
    file: &Path,
    secret: &Secret,
    scratch: &Path,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, BackupError> {
    let dir = tempfile::Builder::new()
        .prefix(".verify-")
        .tempdir_in(scratch)
        .map_err(|e| BackupError::writing(scratch, e))?;
    // The unpacked copy is thrown away: no need to make it durable.
    verify_unpacked(file, secret, dir.path(), false, progress)
}

/// Unpack `file` into the empty dir `into` and check everything (see [`verify`]).
pub(crate) fn verify_into(
    file: &Path,
    secret: &Secret,
    into: &Path,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, BackupError> {
    verify_unpacked(file, secret, into, true, progress)
}

/// [`verify_into`]; `durable`: sync each unpacked file (a restore keeps them).
fn verify_unpacked(
    file: &Path,
    secret: &Secret,
    into: &Path,
    durable: bool,
    progress: &mut dyn Progress,
) -> Result<VerifyReport, BackupError> {
    let f = File::open(file)?;
    let file_bytes = f.metadata()?.len();
    let mut counted = 0u64;
    let counting = HashingReader::new(BufReader::with_capacity(1 << 20, f), |n| {
        counted += n;
        progress.update("decrypt and check", counted, file_bytes);
    });
    let (header, mut reader) = OpenReader::open(counting, secret)?;
    let mut found = Vec::new();
    {
        let zstd = zstd::Decoder::new(&mut reader).map_err(BackupError::from_io)?;
        let mut archive = tar::Archive::new(zstd);
        for entry in archive.entries().map_err(unpack_error)? {
            let mut entry = entry.map_err(unpack_error)?;
            let name = entry
                .path()
                .map_err(unpack_error)?
                .to_string_lossy()
                .into_owned();
            let target = safe_target(into, &name)?;
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| BackupError::writing(parent, e))?;
            }
            let mut out = File::create(&target).map_err(|e| BackupError::writing(&target, e))?;
            let mut hashing = HashingReader::new(&mut entry, |_| {});
            std::io::copy(&mut hashing, &mut out).map_err(|e| BackupError::writing(&target, e))?;
            let (bytes, hash) = hashing.finish();
            if durable {
                out.sync_all()
                    .map_err(|e| BackupError::writing(&target, e))?;
            }
            found.push(FileEntry {
                path: name,
                bytes,
                blake3: hash,
            });
        }
    }
    // Read to the manifest (the segment hashes are checked there).
    let manifest = reader.finish()?;
    if found != manifest.files {
        return Err(BackupError::Contents(describe_file_mismatch(
            &manifest.files,
            &found,
        )));
    }
    progress.update("check database", 0, 0);
    let known = pos_store::schema_version();
    if manifest.schema_version > known {
        return Err(BackupError::SchemaTooNew {
            found: manifest.schema_version,
            known,
        });
    }
    // SQLite's integrity check and the audit chains are independent reads of the unpacked
    // copy: run them side by side (each on its own read-only connection).
    let db = into.join(DB_FILE);
    let (integrity, chains) = std::thread::scope(|scope| {
        let integrity = scope.spawn(|| integrity_check(&db));
        let chains = Store::open_read_only(into)
            .map_err(BackupError::from)
            .and_then(|store| {
                let report = store.verify().map_err(|e| {
                    BackupError::Contents(format!("the audit log does not verify: {e}"))
                })?;
                Ok((store, report))
            });
        let integrity = integrity
            .join()
            .unwrap_or_else(|_| Err(BackupError::Internal("the integrity check panicked".into())));
        (integrity, chains)
    });
    // A damaged file is named as such before what it breaks in the chains.
    integrity?;
    let (store, report) = chains?;
    let chains: Vec<Chain> = report
        .chains
        .iter()
        .map(|c| Chain {
            origin: c.origin.to_string(),
            records: c.records,
            seq: c.last_seq,
            head: c.head.to_hex(),
        })
        .collect();
    for expected in &manifest.chains {
        let ok = chains.iter().any(|c| {
            c.origin == expected.origin && c.seq == expected.seq && c.head == expected.head
        });
        if !ok {
            return Err(BackupError::Contents(format!(
                "the chain of {} does not end at seq {} as the manifest says",
                expected.origin, expected.seq
            )));
        }
    }
    if header.device.id != store.identity().id.to_string() {
        return Err(BackupError::Contents(
            "the database inside belongs to another device than the header names".into(),
        ));
    }
    Ok(VerifyReport {
        header,
        manifest,
        chains,
        file_bytes,
    })
}

fn unpack_error(e: std::io::Error) -> BackupError {
    match BackupError::from_io(e) {
        BackupError::Io(io) => BackupError::Contents(format!("the archive inside is broken: {io}")),
        other => other,
    }
}

/// `name` under `root`, refusing absolute paths and `..` (a crafted archive must not write
/// outside the scratch dir; only a holder of the key could craft one, but still).
fn safe_target(root: &Path, name: &str) -> Result<PathBuf, BackupError> {
    let rel = Path::new(name);
    let ok = !name.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !ok {
        return Err(BackupError::Contents(format!(
            "the archive names an unsafe path {name:?}"
        )));
    }
    Ok(root.join(rel))
}

fn describe_file_mismatch(expected: &[FileEntry], found: &[FileEntry]) -> String {
    for e in expected {
        match found.iter().find(|f| f.path == e.path) {
            None => return format!("{} is missing", e.path),
            Some(f) if f != e => return format!("{} differs from the manifest's hash", e.path),
            Some(_) => {}
        }
    }
    match found
        .iter()
        .find(|f| !expected.iter().any(|e| e.path == f.path))
    {
        Some(extra) => format!("{} is not in the manifest", extra.path),
        None => "the files are in another order than the manifest lists".into(),
    }
}

fn integrity_check(db: &Path) -> Result<(), BackupError> {
    let sqlite = |e: rusqlite::Error| BackupError::Sqlite(format!("{}: {e}", db.display()));
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite)?;
    let mut stmt = conn.prepare("PRAGMA integrity_check(20)").map_err(sqlite)?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(sqlite)?
        .collect::<Result<_, _>>()
        .map_err(sqlite)?;
    if problems != ["ok"] {
        return Err(BackupError::Contents(format!(
            "SQLite's integrity check of the database failed: {}",
            problems.join("; ")
        )));
    }
    Ok(())
}

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pos_audit::{
    ChainHash, ChainSummary, ChainVerifier, Checkpoint, DeviceKey, Event, EventDraft, Finding,
    Problem, PublicKey, CHECKPOINT_INTERVAL,
};
use pos_core::payloads::DeviceRegistered;
use pos_core::{DeviceId, DeviceRole, EventId, Hlc, HlcClock, UserId};
use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
};

use crate::datadir::{DataDirLock, Identity};
use crate::error::{Result, StoreError};
use crate::projection::{self, Projection, Refusal};
use crate::schema;

/// Tunables of an open store (from the config file).
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Events between signed checkpoints (1..=1000).
    pub checkpoint_every: u64,
    /// How long to wait for SQLite's lock (e.g. a backup reading the file).
    pub busy_timeout: Duration,
    /// Refuse to grow the database past this size (keeps the data partition from filling up);
    /// a commit that would cross it fails like a full disk, rolled back.
    pub max_size_bytes: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            checkpoint_every: CHECKPOINT_INTERVAL,
            busy_timeout: Duration::from_secs(5),
            max_size_bytes: None,
        }
    }
}

/// What `Store::init` did.
#[derive(Debug)]
pub struct InitReport {
    pub identity: Identity,
    /// Where an earlier identity and database were moved (never deleted).
    pub moved_aside: Option<PathBuf>,
}

/// The result of a durable commit: these seqs are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    pub first_seq: u64,
    pub last_seq: u64,
    pub head: ChainHash,
}

/// One row of the device registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub device: DeviceId,
    pub role: DeviceRole,
    pub branch: String,
    pub name: String,
    pub enrolled: Hlc,
    pub revoked: Option<Hlc>,
    /// The TLS client certificate fingerprint recorded at enrollment (hex), if any.
    pub cert_fingerprint: Option<String>,
}

/// Which records `pos audit log` shows.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// `module`, `kind` or `module.kind`.
    pub kind: Option<String>,
    pub since: Option<Hlc>,
    pub limit: Option<usize>,
}

/// Why `verify` did not say OK.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}")]
    Tampered(Finding),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A verified database: one summary per origin.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    pub chains: Vec<ChainSummary>,
}

impl VerifyReport {
    pub fn records(&self) -> u64 {
        self.chains.iter().map(|c| c.records).sum()
    }
}

/// One device's database: the event log and the projections, owned exclusively.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) lock: DataDirLock,
    pub(crate) identity: Identity,
    key: DeviceKey,
    pub(crate) clock: HlcClock,
    head_seq: u64,
    head: ChainHash,
    /// `head_seq`, readable from other threads without the store (see [`Store::head_watch`]).
    head_watch: Arc<AtomicU64>,
    pub(crate) projections: Vec<Box<dyn Projection>>,
    checkpoint_every: u64,
    scratch: Vec<u8>,
}

macro_rules! event_columns {
    () => {
        "origin, seq, id, hlc, module, kind, actor, approver, reason, schema_version, payload, prev_hash, hash"
    };
}
pub(crate) const EVENT_COLUMNS: &str = event_columns!();
const INSERT_EVENT: &str = concat!(
    "INSERT INTO events (",
    event_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
);
const INSERT_EVENT_IF_NEW: &str = concat!(
    "INSERT OR IGNORE INTO events (",
    event_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
);
macro_rules! signed_columns {
    () => {
        " (origin, seq, head, hlc, key, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    };
}
const INSERT_CHECKPOINT: &str = concat!("INSERT INTO checkpoints", signed_columns!());
pub(crate) const UPSERT_SEAL: &str =
    concat!("INSERT OR REPLACE INTO chain_seals", signed_columns!());
// On-demand checkpoints keep an existing one at the same seq.
pub(crate) const INSERT_CHECKPOINT_IF_NEW: &str =
    concat!("INSERT OR IGNORE INTO checkpoints", signed_columns!());

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Store {
    /// Create a device identity, key pair and database in `dir` (created if missing).
    pub fn init(
        dir: &Path,
        role: DeviceRole,
        branch: &str,
        name: &str,
        force: bool,
    ) -> Result<(Store, InitReport)> {
        // The data dir holds the device's secret key: only its owner may enter it.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::io(dir, e))?;
        let lock = DataDirLock::acquire(dir)?;
        let (identity, key, moved_aside) =
            lock.create_identity(role, branch, name, force, now_ms())?;
        let conn = open_connection(&lock.db_path(), true, &StoreOptions::default())?;
        let mut store =
            Store::from_parts(conn, lock, identity.clone(), key, StoreOptions::default())?;
        store.append(vec![EventDraft::json(
            DeviceRegistered::MODULE,
            DeviceRegistered::KIND,
            &DeviceRegistered {
                device: identity.id,
                role,
                branch: branch.to_owned(),
                name: name.to_owned(),
                public_key: identity.public_key.clone(),
                cert_fingerprint: None,
            },
        )])?;
        store.checkpoint()?;
        // device.toml last: until it exists, the dir counts as not initialised.
        store.lock.commit_identity(&identity)?;
        tracing::info!(device = %identity.id, role = %role, "initialised data dir {}", dir.display());
        if let Some(old) = &moved_aside {
            tracing::warn!("previous identity moved to {}", old.display());
        }
        Ok((
            store,
            InitReport {
                identity,
                moved_aside,
            },
        ))
    }

    /// Open an initialised data dir. Fails if another process owns it.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Store> {
        let lock = DataDirLock::acquire(dir)?;
        let (identity, key) = lock.load_identity()?;
        let db_path = lock.db_path();
        if !db_path.exists() {
            return Err(missing_db(db_path));
        }
        let conn = open_connection(&db_path, false, &options)?;
        Store::from_parts(conn, lock, identity, key, options)
    }

    /// Open for reading only, without taking ownership: safe beside a running service (WAL lets
    /// readers see the last committed state). Writing through it fails.
    pub fn open_read_only(dir: &Path) -> Result<Store> {
        let lock = DataDirLock::shared(dir)?;
        let (identity, key) = lock.load_identity()?;
        let db_path = lock.db_path();
        if !db_path.exists() {
            return Err(missing_db(db_path));
        }
        let conn = Connection::open_with_flags(
            &db_path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::sqlite(&db_path, e))?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| StoreError::sqlite(&db_path, e))?;
        if found < schema::latest_version() {
            return Err(StoreError::Sqlite {
                path: db_path,
                detail: format!(
                    "schema {found} is older than this build's; start the pos service once to migrate it"
                ),
            });
        }
        if found > schema::latest_version() {
            return Err(StoreError::SchemaTooNew {
                path: db_path,
                found,
                known: schema::latest_version(),
            });
        }
        Store::from_parts(conn, lock, identity, key, StoreOptions::default())
    }

    fn from_parts(
        mut conn: Connection,
        lock: DataDirLock,
        identity: Identity,
        key: DeviceKey,
        options: StoreOptions,
    ) -> Result<Store> {
        let path = lock.db_path();
        let db = |e| StoreError::sqlite(&path, e);
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        if found > schema::latest_version() {
            return Err(StoreError::SchemaTooNew {
                path,
                found,
                known: schema::latest_version(),
            });
        }
        if found < schema::latest_version() {
            schema::migrations()
                .to_latest(&mut conn)
                .map_err(|e| match e {
                    rusqlite_migration::Error::RusqliteError { err, .. } => {
                        StoreError::sqlite(&path, err)
                    }
                    other => StoreError::Sqlite {
                        path: path.clone(),
                        detail: other.to_string(),
                    },
                })?;
        }
        let in_db: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'device_id'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db)?;
        match in_db {
            None => {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('device_id', ?1)",
                    [identity.id.to_string()],
                )
                .map_err(db)?;
            }
            Some(in_db) if in_db != identity.id.to_string() => {
                return Err(StoreError::IdentityMismatch {
                    path,
                    in_db,
                    in_file: identity.id.to_string(),
                })
            }
            Some(_) => {}
        }
        let (head_seq, head) = conn
            .query_row(
                "SELECT seq, hash FROM events WHERE origin = ?1 ORDER BY seq DESC LIMIT 1",
                [identity.id.as_bytes()],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()
            .map_err(db)?
            .map(|(seq, hash)| {
                (
                    seq,
                    ChainHash::from_slice(&hash).unwrap_or(ChainHash::GENESIS),
                )
            })
            .unwrap_or((0, ChainHash::GENESIS));
        // Our own seal carries the newest HLC we used; `hlc_merged` the newest one received by
        // sync (other origins' seals are theirs: a peer's clock is merged only within limits).
        let last_hlc: Option<i64> = conn
            .query_row(
                "SELECT max(hlc) FROM (
                     SELECT hlc FROM chain_seals WHERE origin = ?1
                     UNION ALL SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'hlc_merged')",
                [identity.id.as_bytes()],
                |r| r.get(0),
            )
            .map_err(db)?;
        let clock = HlcClock::resume(Hlc::from_raw(last_hlc.unwrap_or(0) as u64));
        let mut store = Store {
            conn,
            lock,
            identity,
            key,
            clock,
            head_seq,
            head,
            head_watch: Arc::new(AtomicU64::new(head_seq)),
            projections: projection::builtin(),
            checkpoint_every: options.checkpoint_every.clamp(1, CHECKPOINT_INTERVAL),
            scratch: Vec::with_capacity(512),
        };
        // A database from before the analytics tables (V7) has a log but empty aggregates:
        // fill them once by replaying the log (rebuild == live, so nothing else changes).
        if (1..schema::ANALYTICS_VERSION).contains(&found) {
            let replayed = store.rebuild()?;
            tracing::info!(
                replayed,
                "analytics tables filled from the log after migrating schema {found}"
            );
        }
        Ok(store)
    }

    /// The identity of a data dir without opening it.
    pub fn read_identity(dir: &Path) -> Result<Identity> {
        Ok(DataDirLock::shared(dir)?.load_identity()?.0)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn device_id(&self) -> DeviceId {
        self.identity.id
    }

    pub fn dir(&self) -> &Path {
        self.lock.dir()
    }

    /// (seq, hash) of this device's newest record.
    pub fn head(&self) -> (u64, ChainHash) {
        (self.head_seq, self.head)
    }

    /// The seq of this device's own chain head, kept current after every commit and readable
    /// from any thread: the sync task sees a new sale within its poll interval without asking
    /// the thread that owns the store.
    pub fn head_watch(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.head_watch)
    }

    /// This device's signing key (from the key file): sync signs batch seals with it
    /// (`supply_events`).
    pub fn device_key(&self) -> &DeviceKey {
        &self.key
    }

    pub(crate) fn db_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::sqlite(&self.lock.db_path(), e)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The device's clock now, in milliseconds, for decisions such as lockouts: it follows
    /// wall time but never runs backwards, even when the wall clock is set back.
    pub(crate) fn tick_ms(&mut self) -> u64 {
        self.clock.tick(now_ms()).wall_ms()
    }

    /// Like `tick_ms` without advancing the clock (read-only views).
    pub(crate) fn clock_now_ms(&self) -> u64 {
        self.clock.last().wall_ms().max(now_ms())
    }

    /// Append events and apply their projections in one durable transaction: after `Ok`, all
    /// of them survive a power cut; after `Err`, none of them exist.
    pub fn append(&mut self, drafts: Vec<EventDraft>) -> Result<Commit> {
        self.commit_with(drafts, |_| Ok(()))
    }

    /// `append`, with `extra` writes to non-log tables in the same transaction, before the
    /// events (an error from it rolls everything back). Used where a local table must change
    /// together with the facts that explain it (an enrollment code used by a registration).
    pub(crate) fn commit_with(
        &mut self,
        drafts: Vec<EventDraft>,
        extra: impl FnOnce(&Transaction<'_>) -> Result<()>,
    ) -> Result<Commit> {
        for d in &drafts {
            d.validate()?;
        }
        let path = self.lock.db_path();
        let db = |e| StoreError::sqlite(&path, e);
        let origin = self.identity.id;
        let mut clock = self.clock;
        let (mut seq, mut head) = (self.head_seq, self.head);
        let first_seq = seq + 1;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        extra(&tx)?;
        for draft in drafts {
            seq += 1;
            let event = draft.seal(
                EventId::new_v7(),
                origin,
                seq,
                clock.tick(now_ms()),
                head,
                &mut self.scratch,
            );
            insert_event(&tx, &event).map_err(db)?;
            apply(&self.projections, &tx, &event)?;
            head = event.hash;
            if seq % self.checkpoint_every == 0 {
                let cp = Checkpoint::sign(&self.key, origin, seq, head, clock.last());
                insert_checkpoint(&tx, &cp).map_err(db)?;
            }
        }
        if seq >= first_seq {
            let seal = Checkpoint::sign(&self.key, origin, seq, head, clock.last());
            upsert_seal(&tx, &seal).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        self.clock = clock;
        self.head_seq = seq;
        self.head = head;
        self.head_watch.store(seq, Ordering::Release);
        Ok(Commit {
            first_seq,
            last_seq: seq,
            head,
        })
    }

    /// Sign a checkpoint at the current head now (e.g. at shift close). Idempotent.
    pub fn checkpoint(&mut self) -> Result<Option<Checkpoint>> {
        if self.head_seq == 0 {
            return Ok(None);
        }
        let hlc = self.clock.tick(now_ms());
        let cp = Checkpoint::sign(&self.key, self.identity.id, self.head_seq, self.head, hlc);
        // A checkpoint at this seq may exist already (interval or earlier call): keep that one.
        write_signed(&self.conn, INSERT_CHECKPOINT_IF_NEW, &cp).map_err(self.db_err())?;
        Ok(Some(cp))
    }

    /// Check every origin's chain, checkpoints and head seal, and SQLite's own integrity.
    pub fn verify(&self) -> Result<VerifyReport, VerifyError> {
        let db = self.db_err();
        let check: String = self
            .conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(&db)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: self.lock.db_path(),
                detail: check,
            }
            .into());
        }
        let mut origins: Vec<Vec<u8>> = self
            .conn
            .prepare(
                "SELECT origin FROM events GROUP BY origin
                 UNION SELECT origin FROM checkpoints UNION SELECT origin FROM chain_seals
                 UNION SELECT origin FROM chain_redactions",
            )
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(&db)?;
        origins.sort();
        let mut chains = Vec::new();
        for raw in origins {
            let Some(origin) = uuid_from(&raw).map(DeviceId::from_bytes) else {
                continue;
            };
            chains.push(self.verify_origin(origin)?);
        }
        Ok(VerifyReport { chains })
    }

    pub(crate) fn trusted_keys(&self, origin: DeviceId) -> Result<Vec<PublicKey>> {
        if origin == self.identity.id {
            // Our own key comes from the key file, never from the (tamperable) database.
            return Ok(vec![self.key.public()]);
        }
        self.conn
            .prepare_cached("SELECT public_key FROM device_registry WHERE device = ?1")
            .and_then(|mut s| {
                s.query_map([origin.as_bytes()], |r| r.get::<_, Vec<u8>>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| <[u8; 32]>::try_from(k.as_slice()).ok().map(PublicKey))
                    .collect()
            })
            .map_err(self.db_err())
    }

    fn verify_origin(&self, origin: DeviceId) -> Result<ChainSummary, VerifyError> {
        let db = self.db_err();
        let trusted = self.trusted_keys(origin)?;
        let checkpoints = self.checkpoints_of(origin, "checkpoints")?;
        let seal = self.checkpoints_of(origin, "chain_seals")?.pop();
        let redactions = crate::sync::redactions_of(&self.conn, origin).map_err(&db)?;
        if !redactions.is_empty() {
            return crate::sync::verify_partial(
                self,
                origin,
                &trusted,
                checkpoints,
                seal,
                redactions,
            );
        }
        // Every chain is sealed: our own at each commit, a received one at each ingest.
        let mut verifier = ChainVerifier::new(origin, &trusted)
            .with_checkpoints(checkpoints)
            .with_seal(seal, true);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE origin = ?1 ORDER BY seq"
            ))
            .map_err(&db)?;
        let mut rows = stmt.query([origin.as_bytes()]).map_err(&db)?;
        while let Some(row) = rows.next().map_err(&db)? {
            let pushed = match row_to_event(row).map_err(&db)? {
                Ok(event) => verifier.push(&event),
                Err(seq) => Err(Finding::new(origin, seq, Problem::ContentChanged)),
            };
            if let Err(finding) = pushed {
                return Err(VerifyError::Tampered(
                    finding.refine(|hash| self.seq_of_hash(origin, hash)),
                ));
            }
        }
        verifier.finish().map_err(VerifyError::Tampered)
    }

    pub(crate) fn seq_of_hash(&self, origin: DeviceId, hash: &ChainHash) -> Option<u64> {
        self.conn
            .query_row(
                "SELECT seq FROM events WHERE origin = ?1 AND hash = ?2",
                params![origin.as_bytes(), &hash.0[..]],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .map(|s| s as u64)
    }

    pub(crate) fn checkpoints_of(&self, origin: DeviceId, table: &str) -> Result<Vec<Checkpoint>> {
        self.checkpoints_in(origin, table, 0, u64::MAX >> 1)
    }

    /// The signatures of `origin` in `table` with seqs in `first..=last`.
    pub(crate) fn checkpoints_in(
        &self,
        origin: DeviceId,
        table: &str,
        first: u64,
        last: u64,
    ) -> Result<Vec<Checkpoint>> {
        let sql = format!(
            "SELECT seq, head, hlc, key, signature FROM {table}
             WHERE origin = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq"
        );
        type Row = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);
        let rows: Vec<Row> = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![origin.as_bytes(), first as i64, last as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .map(|(seq, head, hlc, key, sig)| Checkpoint {
                origin,
                seq: seq as u64,
                // A damaged column yields a value whose signature cannot verify: the verifier
                // then reports the checkpoint as bad instead of the store erroring out.
                head: ChainHash::from_slice(&head).unwrap_or(ChainHash::GENESIS),
                hlc: Hlc::from_raw(hlc as u64),
                key: PublicKey(<[u8; 32]>::try_from(key.as_slice()).unwrap_or([0; 32])),
                signature: <[u8; 64]>::try_from(sig.as_slice()).unwrap_or([0; 64]),
            })
            .collect())
    }

    /// Empty every projection table and replay the whole log into it, in arrival order.
    /// Returns the number of events replayed.
    pub fn rebuild(&mut self) -> Result<u64> {
        let path = self.lock.db_path();
        let db = |e| StoreError::sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        for p in &self.projections {
            for table in p.tables() {
                tx.execute(&format!("DELETE FROM {table}"), [])
                    .map_err(db)?;
            }
        }
        for table in DERIVED_TABLES {
            tx.execute(&format!("DELETE FROM {table}"), [])
                .map_err(db)?;
        }
        let mut replayed = 0;
        {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events ORDER BY rowid"
                ))
                .map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            while let Some(row) = rows.next().map_err(db)? {
                let event = row_to_event(row)
                    .map_err(db)?
                    .map_err(|seq| StoreError::Corrupt {
                        path: path.clone(),
                        detail: format!(
                            "event seq {seq} has a damaged column; run `pos audit verify`"
                        ),
                    })?;
                apply_event(&self.projections, &tx, &self.identity, &event, &path)?;
                replayed += 1;
            }
        }
        tx.commit().map_err(db)?;
        Ok(replayed)
    }

    /// The audit trail, oldest first.
    pub fn events(&self, filter: &LogFilter) -> Result<Vec<Event>> {
        let db = self.db_err();
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE hlc >= ?1");
        if filter.kind.is_some() {
            sql.push_str(" AND (kind = ?2 OR module = ?2 OR module || '.' || kind = ?2)");
        } else {
            sql.push_str(" AND ?2 IS NULL");
        }
        sql.push_str(" ORDER BY hlc, rowid LIMIT ?3");
        let since = filter.since.unwrap_or(Hlc::ZERO).raw() as i64;
        let limit = filter.limit.map(|l| l as i64).unwrap_or(-1);
        let mut stmt = self.conn.prepare(&sql).map_err(&db)?;
        let mut rows = stmt
            .query(params![since, filter.kind, limit])
            .map_err(&db)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(&db)? {
            // Damaged rows are skipped here; `pos audit verify` names them.
            if let Ok(event) = row_to_event(row).map_err(&db)? {
                out.push(event);
            }
        }
        Ok(out)
    }

    /// Devices this one knows (itself first registered at `pos init`) and their names.
    pub fn device_names(&self) -> Result<Vec<(DeviceId, String)>> {
        let rows: Vec<(Vec<u8>, String)> = self
            .conn
            .prepare("SELECT device, name FROM device_registry ORDER BY added_hlc")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, name)| uuid_from(&id).map(|b| (DeviceId::from_bytes(b), name)))
            .collect())
    }

    /// The device registry: every device this one knows, when it was enrolled, and whether
    /// (and when) it was revoked.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>> {
        self.devices_where("1", [])
    }

    /// One device of the registry.
    pub fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>> {
        Ok(self
            .devices_where("device = ?1", [id.as_bytes().to_vec()])?
            .pop())
    }

    fn devices_where(
        &self,
        condition: &str,
        param: impl rusqlite::Params,
    ) -> Result<Vec<DeviceRecord>> {
        type Row = (
            Vec<u8>,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = self
            .conn
            .prepare(&format!(
                "SELECT device, role, branch, name, added_hlc, revoked_hlc, cert_fingerprint
                 FROM device_registry WHERE {condition} ORDER BY added_hlc"
            ))
            .and_then(|mut s| {
                s.query_map(param, |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, role, branch, name, added, revoked, cert)| {
                Some(DeviceRecord {
                    device: DeviceId::from_bytes(uuid_from(&id)?),
                    role: role.parse().ok()?,
                    branch,
                    name,
                    enrolled: Hlc::from_raw(added as u64),
                    revoked: revoked.map(|r| Hlc::from_raw(r as u64)),
                    cert_fingerprint: cert,
                })
            })
            .collect())
    }

    /// On-hand quantity per item (thousandths of a unit).
    pub fn stock_levels(&self) -> Result<Vec<(String, i64)>> {
        self.conn
            .prepare("SELECT item, quantity FROM stock_levels ORDER BY item")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(self.db_err())
    }

    pub fn setting(&self, key: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM settings_values WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db_err())?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Every projection table as text, in a stable order: for comparing rebuild with live.
    pub fn projection_dump(&self) -> Result<String> {
        let mut out = String::new();
        let mut tables: Vec<&str> = self
            .projections
            .iter()
            .flat_map(|p| p.tables().iter().copied())
            .chain(DERIVED_TABLES.iter().copied())
            .collect();
        tables.sort_unstable();
        for table in tables {
            out.push_str(&format!("[{table}]\n"));
            let mut stmt = self
                .conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
                .map_err(self.db_err())?;
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).map_err(self.db_err())?;
            while let Some(row) = rows.next().map_err(self.db_err())? {
                for i in 0..columns {
                    let v: rusqlite::types::Value = row.get(i).map_err(self.db_err())?;
                    out.push_str(&format!("{v:?}\t"));
                }
                out.push('\n');
            }
        }
        Ok(out)
    }
}

fn missing_db(path: PathBuf) -> StoreError {
    StoreError::Corrupt {
        path,
        detail: "the database file is missing".into(),
    }
}

fn open_connection(path: &Path, create: bool, options: &StoreOptions) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let db = |e| StoreError::sqlite(path, e);
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    conn.busy_timeout(options.busy_timeout).map_err(db)?;
    // The first read of the file: a damaged header or a non-SQLite file fails here.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWritable {
            path: path.to_path_buf(),
            detail: format!("SQLite refused write-ahead logging (journal mode {mode})"),
        });
    }
    // Every commit is a business commit: fsync the WAL before reporting success.
    // Reads through a memory map (writes still go through the WAL) and a 16 MiB page cache keep
    // the scan path's tail latency low on a large catalogue (P2).
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
         PRAGMA mmap_size = 268435456; PRAGMA cache_size = -16384;",
    )
    .map_err(db)?;
    if let Some(bytes) = options.max_size_bytes {
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(db)?;
        let pages = (bytes as i64 / page_size.max(512)).max(1);
        conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .map_err(db)?;
    }
    Ok(conn)
}

fn apply(projections: &[Box<dyn Projection>], tx: &Transaction<'_>, event: &Event) -> Result<()> {
    for p in projections.iter().filter(|p| p.module() == event.module) {
        p.apply(tx, event)
            .map_err(|r| projection_error(tx, event, r))?;
    }
    Ok(())
}

/// A projection's error is a refusal of the event, unless SQLite failed under it: a full disk
/// (or the `max_db_size_mb` cap) is `DiskFull` as anywhere else, and an error that ended the
/// transaction is a database error. Neither is a conflict to list in `sync_not_applied`.
fn projection_error(tx: &Transaction<'_>, event: &Event, r: Refusal) -> StoreError {
    let path = PathBuf::from(tx.path().unwrap_or_default());
    if r.0.contains("database or disk is full") {
        return StoreError::DiskFull { path };
    }
    if tx.is_autocommit() {
        return StoreError::Sqlite {
            path,
            detail: format!("{}.{}: {}", event.module, event.kind, r.0),
        };
    }
    StoreError::Rejected {
        module: event.module.clone(),
        kind: event.kind.clone(),
        detail: r.0,
    }
}

/// Modules whose data only the hub writes (DESIGN.md, conflict policy). On the hub, records of
/// these modules received from other devices are kept in the log but change nothing.
pub const HUB_AUTHORITATIVE: [&str; 4] = ["catalogue", "settings", "user", "device"];

/// Whether this device keeps received records of `module` without applying them, by the
/// conflict policy: the hub, for the modules it is authoritative for.
pub(crate) fn kept_by_policy(own: &Identity, module: &str) -> bool {
    own.role == DeviceRole::Hub && HUB_AUTHORITATIVE.contains(&module)
}

/// Tables that are neither log nor a module's projection but derived from the log like one:
/// emptied and refilled by `rebuild`.
const DERIVED_TABLES: [&str; 1] = ["sync_not_applied"];

/// Apply one stored event to the projections, as this device's policy says: own records always
/// (a refusal fails the commit); received ones unless the hub is authoritative for their module
/// and this device is the hub; a received record a projection refuses is kept in the log, its
/// partial effects rolled back, and listed in `sync_not_applied` (the author already committed
/// it: refusing it would stop that device's sync for good). Returns why it was not applied.
pub(crate) fn apply_event(
    projections: &[Box<dyn Projection>],
    tx: &Transaction<'_>,
    own: &Identity,
    event: &Event,
    path: &Path,
) -> Result<Option<String>> {
    if event.origin == own.id {
        apply(projections, tx, event)?;
        return Ok(None);
    }
    let sqlite = |e| StoreError::sqlite(path, e);
    let by_policy = kept_by_policy(own, &event.module);
    let why = if by_policy {
        format!(
            "the hub is authoritative for module `{}`: a record written on another device is kept but not applied",
            event.module
        )
    } else {
        tx.execute_batch("SAVEPOINT received_event")
            .map_err(sqlite)?;
        match apply(projections, tx, event) {
            Ok(()) => {
                tx.execute_batch("RELEASE received_event").map_err(sqlite)?;
                return Ok(None);
            }
            Err(StoreError::Rejected { detail, .. }) => {
                tx.execute_batch("ROLLBACK TO received_event; RELEASE received_event")
                    .map_err(sqlite)?;
                detail
            }
            Err(other) => return Err(other),
        }
    };
    // Kept by policy is what the conflict policy expects (every enrolled terminal registers
    // itself and its hub in its own chain), so only a debug line; the ingest counts them per
    // batch. A projection's refusal is a real conflict: a warning.
    if by_policy {
        tracing::debug!(
            origin = %event.origin,
            seq = event.seq,
            "{}.{} received but not applied: {why}",
            event.module,
            event.kind
        );
    } else {
        tracing::warn!(
            origin = %event.origin,
            seq = event.seq,
            "{}.{} received but not applied: {why}",
            event.module,
            event.kind
        );
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO sync_not_applied (origin, seq, module, kind, why)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| {
        s.execute(params![
            event.origin.as_bytes(),
            event.seq as i64,
            event.module,
            event.kind,
            why
        ])
    })
    .map_err(sqlite)?;
    Ok(Some(why))
}

fn insert_event(tx: &Transaction<'_>, e: &Event) -> rusqlite::Result<()> {
    write_event(tx, INSERT_EVENT, e).map(drop)
}

/// Insert a received event unless a record is stored at its (origin, seq): whether it was new.
pub(crate) fn insert_event_if_new(tx: &Transaction<'_>, e: &Event) -> rusqlite::Result<bool> {
    write_event(tx, INSERT_EVENT_IF_NEW, e).map(|n| n == 1)
}

fn write_event(tx: &Transaction<'_>, sql: &str, e: &Event) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params![
        e.origin.as_bytes(),
        e.seq as i64,
        e.id.as_bytes(),
        e.hlc.raw() as i64,
        e.module,
        e.kind,
        e.actor.as_ref().map(|a| a.as_bytes()),
        e.approver.as_ref().map(|a| a.as_bytes()),
        e.reason,
        e.schema_version,
        e.payload,
        &e.prev_hash.0[..],
        &e.hash.0[..],
    ])
}

fn insert_checkpoint(tx: &Connection, cp: &Checkpoint) -> rusqlite::Result<()> {
    write_signed(tx, INSERT_CHECKPOINT, cp)
}

fn upsert_seal(tx: &Connection, cp: &Checkpoint) -> rusqlite::Result<()> {
    write_signed(tx, UPSERT_SEAL, cp)
}

pub(crate) fn write_signed(tx: &Connection, sql: &str, cp: &Checkpoint) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute(params![
        cp.origin.as_bytes(),
        cp.seq as i64,
        &cp.head.0[..],
        cp.hlc.raw() as i64,
        &cp.key.0[..],
        &cp.signature[..],
    ])?;
    Ok(())
}

pub(crate) fn uuid_from(bytes: &[u8]) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(bytes).ok()
}

/// Read an event row. The inner `Err(seq)` means a column has an impossible size (tampering or
/// damage): the caller reports that record rather than failing the whole read.
pub(crate) fn row_to_event(row: &Row<'_>) -> rusqlite::Result<std::result::Result<Event, u64>> {
    let seq = row.get::<_, i64>(1)? as u64;
    let origin: Vec<u8> = row.get(0)?;
    let id: Vec<u8> = row.get(2)?;
    let actor: Option<Vec<u8>> = row.get(6)?;
    let approver: Option<Vec<u8>> = row.get(7)?;
    let prev: Vec<u8> = row.get(11)?;
    let hash: Vec<u8> = row.get(12)?;
    let opt_user = |v: Option<Vec<u8>>| match v {
        None => Some(None),
        Some(b) => uuid_from(&b).map(|b| Some(UserId::from_bytes(b))),
    };
    let (Some(origin), Some(id), Some(actor), Some(approver), Some(prev_hash), Some(hash)) = (
        uuid_from(&origin),
        uuid_from(&id),
        opt_user(actor),
        opt_user(approver),
        ChainHash::from_slice(&prev),
        ChainHash::from_slice(&hash),
    ) else {
        return Ok(Err(seq));
    };
    Ok(Ok(Event {
        id: EventId::from_bytes(id),
        origin: DeviceId::from_bytes(origin),
        seq,
        hlc: Hlc::from_raw(row.get::<_, i64>(3)? as u64),
        module: row.get(4)?,
        kind: row.get(5)?,
        actor,
        approver,
        reason: row.get(8)?,
        schema_version: row.get(9)?,
        payload: row.get(10)?,
        prev_hash,
        hash,
    }))
}

//! What the sync protocol (`pos_sync`, sans-IO) needs from the database: received chains,
//! partial copies, each origin's state, holds, and the peers' liveness and cursors.
//!
//! * [`Store::ingest`] commits an `AppEvent::Store(VerifiedBatch)` in one transaction: the new
//!   records of the origin, their projections (by the conflict policy of
//!   `store::apply_event`), the batch's checkpoints, the origin's head seal, the runs of
//!   redacted records and the merged clock. Call `events_stored(origin, outcome.last_seq)` only
//!   after it returned `Ok`. A resend is harmless: records already held are skipped, so no
//!   projection sees an event twice.
//! * **Partial copies.** A terminal receives the hub's records of modules it did not subscribe
//!   to as (seq, hash) only. They are kept as runs in `chain_redactions` (first seq, last seq,
//!   the chain hash at the last seq). `Store::verify` checks such an origin run by run: each run
//!   of full records is re-hashed, linked and must end at a signature (sync signs the end of every
//!   full run and every batch; the batch seal is also kept as a checkpoint), redacted runs take
//!   the stored hash, and signatures inside them are checked. A changed full record is named; a
//!   record that is absent because it was redacted is not "missing".
//! * [`Store::origin_state`], [`Store::events_for_sync`], [`Store::now`], [`Store::merge_hlc`]
//!   build `HubSetup` / `TerminalSetup` and answer `NeedEvents`.
//! * Holds are facts: [`Store::hold_origin`] appends `security.sync_rejected`,
//!   [`Store::release_origin`] `security.sync_released` (permission `device_enroll`); the table
//!   `security_sync_holds` is their projection, so a rebuild keeps them.
//! * Liveness is not: [`Store::note_seen`] and friends write `sync_peers`, a plain table. A
//!   heartbeat every few seconds per terminal is not a business fact; as events it would grow
//!   every chain (and re-sign its seal) for nothing an auditor needs, and losing it in a crash
//!   costs nothing (the next Hello rewrites it).

use pos_audit::{
    ChainHash, ChainSummary, ChainVerifier, Checkpoint, Event, EventDraft, Finding, Problem,
    PublicKey,
};
use pos_auth::{Permission, Principal};
use pos_core::payloads::{SyncRejected, SyncReleased};
use pos_core::{DeviceId, DeviceRole, Hlc};
use pos_sync::{Now, OriginState, VerifiedBatch};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::accounts::AccountError;
use crate::error::{Result, StoreError};
use crate::projection::{payload, Projection, Refusal};
use crate::store::{
    apply_event, insert_event_if_new, kept_by_policy, now_ms, row_to_event, uuid_from,
    write_signed, Commit, DeviceRecord, Store, VerifyError, EVENT_COLUMNS,
    INSERT_CHECKPOINT_IF_NEW, UPSERT_SEAL,
};

/// A received clock more than this far ahead of our wall clock is not merged into ours: one
/// device with a wrong clock must not drag the branch's time (lockouts, code expiry) with it.
/// The protocol reports such a peer (`AppEvent::ClockSkew`; [`Store::note_clock_skew`]).
pub const MAX_MERGE_AHEAD_MS: u64 = 10 * 60 * 1000;

/// A peer seen this recently (and not disconnected since) is online: pos-sync's default idle
/// timeout, after which a silent connection is closed.
pub const ONLINE_WITHIN_MS: u64 = 45_000;

/// Longest `why` recorded in a `security.sync_rejected` event, in characters.
const MAX_WHY_CHARS: usize = 256;

/// What [`Store::ingest`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub origin: DeviceId,
    /// Records of the batch this device held already (a resend): skipped.
    pub already_held: u64,
    /// Records new to this device, full and redacted.
    pub new_records: u64,
    /// Full events inserted into the log (and offered to the projections).
    pub inserted: u64,
    /// The origin's stored head now: pass `last_seq` to `events_stored`.
    pub last_seq: u64,
    pub head: ChainHash,
    /// Inserted events kept in the log without changing the projections, and why.
    pub not_applied: Vec<NotApplied>,
}

/// A received event that is in the log but changed no projection (`sync_not_applied`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    pub origin: DeviceId,
    pub seq: u64,
    pub module: String,
    pub kind: String,
    pub why: String,
}

/// An origin this device refuses to sync until someone releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub origin: DeviceId,
    pub seq: u64,
    pub why: String,
    pub since: Hlc,
}

/// How a device looks to `pos hub devices list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerStatus {
    Online,
    Offline,
    /// Revoked: it may no longer sync (checked before anything else).
    Revoked,
    /// Its chain failed verification; nothing of it is accepted until released.
    Held,
}

impl PeerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerStatus::Online => "online",
            PeerStatus::Offline => "offline",
            PeerStatus::Revoked => "revoked",
            PeerStatus::Held => "held",
        }
    }
}

impl std::fmt::Display for PeerStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of `pos hub devices list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSyncStatus {
    pub device: DeviceId,
    pub name: String,
    pub role: DeviceRole,
    pub status: PeerStatus,
    /// Wall clock (Unix ms) of the last message from it.
    pub last_seen_ms: Option<u64>,
    /// Its records not yet stored here (its announced head − what this device holds), once it
    /// announced one.
    pub waiting: Option<u64>,
    /// The last seq of its chain stored here.
    pub stored_seq: u64,
    /// Its clock's difference from ours when last reported beyond the limit (positive: ahead).
    pub clock_skew_ms: Option<i64>,
    /// How far it has stored this device's chain (its acks).
    pub acked_seq: u64,
    pub cert_fingerprint: Option<String>,
    /// How long it has been out of touch (since its last message, or since its enrollment if
    /// it never connected); None while online, and for revoked devices (nothing to expect).
    pub out_of_touch_ms: Option<u64>,
}

impl DeviceSyncStatus {
    /// Out of touch for longer than `limit_ms`: the hub's offline alert.
    pub fn offline_alert(&self, limit_ms: u64) -> bool {
        self.out_of_touch_ms.is_some_and(|ms| ms > limit_ms)
    }
}

/// A run of another origin's records held only as hashes (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redaction {
    pub first_seq: u64,
    pub last_seq: u64,
    /// The chain hash at `last_seq`.
    pub head: ChainHash,
}

pub(crate) fn redactions_of(
    conn: &Connection,
    origin: DeviceId,
) -> rusqlite::Result<Vec<Redaction>> {
    conn.prepare_cached(
        "SELECT first_seq, last_seq, head FROM chain_redactions WHERE origin = ?1 ORDER BY first_seq",
    )?
    .query_map([origin.as_bytes()], |r| {
        Ok(Redaction {
            first_seq: r.get::<_, i64>(0)? as u64,
            last_seq: r.get::<_, i64>(1)? as u64,
            // A damaged column yields a hash that links to nothing: verify names the spot.
            head: ChainHash::from_slice(&r.get::<_, Vec<u8>>(2)?).unwrap_or(ChainHash::GENESIS),
        })
    })?
    .collect()
}

/// (last seq, chain hash there) of what this device holds of `origin`, full or redacted.
fn stored_head(conn: &Connection, origin: DeviceId) -> rusqlite::Result<(u64, ChainHash)> {
    let read = |sql: &str| {
        conn.prepare_cached(sql)?
            .query_row([origin.as_bytes()], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
    };
    let full = read("SELECT seq, hash FROM events WHERE origin = ?1 ORDER BY seq DESC LIMIT 1")?;
    let redacted = read(
        "SELECT last_seq, head FROM chain_redactions WHERE origin = ?1
         ORDER BY first_seq DESC LIMIT 1",
    )?;
    Ok(
        match full.into_iter().chain(redacted).max_by_key(|(seq, _)| *seq) {
            Some((seq, hash)) => (
                seq,
                ChainHash::from_slice(&hash).unwrap_or(ChainHash::GENESIS),
            ),
            None => (0, ChainHash::GENESIS),
        },
    )
}

/// The checks `ingest` makes before touching the database: the batch is one origin's gapless
/// continuation, internally consistent, and its own hashes hold. Returns the redacted runs.
fn check_batch(
    batch: &VerifiedBatch,
    new_events: &[Event],
    (stored_seq, stored_head): (u64, ChainHash),
) -> std::result::Result<Vec<Redaction>, (u64, String)> {
    let mut scratch = Vec::with_capacity(512);
    let (mut seq, mut head) = (stored_seq, stored_head);
    let mut runs = Vec::new();
    for e in new_events {
        if e.compute_hash(&mut scratch) != e.hash {
            return Err((e.seq, "the record's content does not match its hash".into()));
        }
        if e.seq == seq + 1 {
            if e.prev_hash != head {
                let what = if seq == stored_seq {
                    format!("it does not continue the stored head (seq {stored_seq})")
                } else {
                    "it does not link to the previous record".to_owned()
                };
                return Err((e.seq, what));
            }
        } else {
            runs.push(Redaction {
                first_seq: seq + 1,
                last_seq: e.seq - 1,
                head: e.prev_hash,
            });
        }
        seq = e.seq;
        head = e.hash;
    }
    if seq < batch.last_seq {
        runs.push(Redaction {
            first_seq: seq + 1,
            last_seq: batch.last_seq,
            head: batch.head,
        });
    } else if head != batch.head {
        return Err((seq, "the batch's head is not its last record's hash".into()));
    }
    // Every signature must sign the hash at its seq, as far as this batch shows it.
    for cp in batch.checkpoints.iter().chain([&batch.seal]) {
        if cp.seq <= stored_seq {
            continue;
        }
        let at = new_events
            .binary_search_by_key(&cp.seq, |e| e.seq)
            .ok()
            .map(|i| new_events[i].hash)
            .or_else(|| runs.iter().find(|r| r.last_seq == cp.seq).map(|r| r.head));
        if at.is_some_and(|h| h != cp.head) {
            return Err((
                cp.seq,
                "a signature signs another head than the record's".into(),
            ));
        }
    }
    Ok(runs)
}

/// The shape every batch must have, whatever is stored.
fn check_shape(own: DeviceId, batch: &VerifiedBatch) -> std::result::Result<(), (u64, String)> {
    let origin = batch.origin;
    if origin == own {
        return Err((
            batch.first_seq,
            "these are this device's own records: its chain is written only by itself".into(),
        ));
    }
    if batch.first_seq == 0 || batch.last_seq < batch.first_seq {
        return Err((
            batch.first_seq,
            format!(
                "empty or inverted range {}..={}",
                batch.first_seq, batch.last_seq
            ),
        ));
    }
    let mut previous = batch.first_seq - 1;
    for e in &batch.events {
        if e.origin != origin {
            return Err((
                e.seq,
                format!("a record of origin {} is in the batch", e.origin),
            ));
        }
        if e.seq <= previous || e.seq > batch.last_seq {
            return Err((
                e.seq,
                "records out of order or outside the batch's range".into(),
            ));
        }
        previous = e.seq;
    }
    let seal = &batch.seal;
    if seal.origin != origin || seal.seq != batch.last_seq || seal.head != batch.head {
        return Err((
            batch.last_seq,
            "the seal does not sign the batch's head".into(),
        ));
    }
    if let Some(cp) = batch
        .checkpoints
        .iter()
        .find(|c| c.origin != origin || c.seq < batch.first_seq || c.seq > batch.last_seq)
    {
        return Err((
            cp.seq,
            "a checkpoint of another origin or outside the batch's range".into(),
        ));
    }
    Ok(())
}

fn sanitize(text: &str) -> String {
    text.chars()
        .take(MAX_WHY_CHARS)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

impl Store {
    /// Commit a batch the protocol verified (`AppEvent::Store`), then call
    /// `events_stored(origin, outcome.last_seq)`. Everything is one transaction. A batch that
    /// does not continue what is stored of its origin (a gap, another prev hash, a different
    /// record at a seq already held), of a held origin, of this device's own chain, or whose seal
    /// is not signed by a key registered for the origin is refused with nothing written.
    pub fn ingest(&mut self, batch: &VerifiedBatch) -> Result<IngestOutcome> {
        let origin = batch.origin;
        let refuse = |(seq, detail): (u64, String)| StoreError::SyncRefused {
            origin: origin.to_string(),
            seq,
            detail,
        };
        check_shape(self.identity.id, batch).map_err(refuse)?;
        if self.is_held(origin)? {
            return Err(refuse((
                batch.first_seq,
                "the origin is held after a verification failure (release it first)".into(),
            )));
        }
        let keys = self.trusted_keys(origin)?;
        if !keys.contains(&batch.seal.key) || !batch.seal.signature_valid() {
            return Err(refuse((
                batch.last_seq,
                "the seal is not signed by a key registered for this origin".into(),
            )));
        }
        let stored = stored_head(&self.conn, origin).map_err(self.db_err())?;
        let (stored_seq, stored_hash) = stored;
        if batch.first_seq > stored_seq + 1 {
            return Err(refuse((
                batch.first_seq,
                format!("a gap: this device holds up to seq {stored_seq}"),
            )));
        }
        for e in batch.events.iter().take_while(|e| e.seq <= stored_seq) {
            if self
                .stored_hash(origin, e.seq)?
                .is_some_and(|h| h != e.hash)
            {
                return Err(refuse((
                    e.seq,
                    "it differs from the record stored at that seq (a fork)".into(),
                )));
            }
        }
        let already_held = (stored_seq + 1)
            .saturating_sub(batch.first_seq)
            .min(batch.last_seq - batch.first_seq + 1);
        if batch.last_seq <= stored_seq {
            if batch.last_seq == stored_seq && batch.head != stored_hash {
                return Err(refuse((
                    stored_seq,
                    "its head differs from the stored head (a fork)".into(),
                )));
            }
            return Ok(IngestOutcome {
                origin,
                already_held,
                new_records: 0,
                inserted: 0,
                last_seq: stored_seq,
                head: stored_hash,
                not_applied: Vec::new(),
            });
        }
        let new_events = &batch.events[batch.events.partition_point(|e| e.seq <= stored_seq)..];
        let runs = check_batch(batch, new_events, stored).map_err(refuse)?;

        let newest = new_events
            .iter()
            .map(|e| e.hlc)
            .chain([batch.seal.hlc])
            .max()
            .unwrap_or(Hlc::ZERO);
        let wall = now_ms();
        let merge = (newest.wall_ms() <= wall.saturating_add(MAX_MERGE_AHEAD_MS)).then_some(newest);
        if merge.is_none() {
            tracing::warn!(%origin, hlc = %newest, "the origin's clock is far ahead of ours: not merged");
        }

        let path = self.lock.db_path();
        let db = |e| StoreError::sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let mut inserted = 0;
        let mut not_applied = Vec::new();
        for e in new_events {
            if !insert_event_if_new(&tx, e).map_err(db)? {
                continue;
            }
            inserted += 1;
            if let Some(why) = apply_event(&self.projections, &tx, &self.identity, e, &path)? {
                not_applied.push(NotApplied {
                    origin,
                    seq: e.seq,
                    module: e.module.clone(),
                    kind: e.kind.clone(),
                    why,
                });
            }
        }
        for r in &runs {
            tx.prepare_cached(
                "INSERT INTO chain_redactions (origin, first_seq, last_seq, head)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    origin.as_bytes(),
                    r.first_seq as i64,
                    r.last_seq as i64,
                    &r.head.0[..]
                ])
            })
            .map_err(db)?;
        }
        // The seal is kept as a checkpoint too: in a partial copy it authenticates the full
        // records before it even after later batches replace the head seal.
        for cp in batch.checkpoints.iter().chain([&batch.seal]) {
            write_signed(&tx, INSERT_CHECKPOINT_IF_NEW, cp).map_err(db)?;
        }
        write_signed(&tx, UPSERT_SEAL, &batch.seal).map_err(db)?;
        if let Some(hlc) = merge {
            merge_persisted(&tx, hlc).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        if let Some(hlc) = merge {
            self.clock.observe(hlc, wall);
        }
        let kept = not_applied
            .iter()
            .filter(|n| kept_by_policy(&self.identity, &n.module))
            .count();
        if kept > 0 {
            tracing::info!(
                %origin,
                records = kept,
                "kept without applying {kept} record(s) of hub-authoritative modules written on \
                 the origin (conflict policy)"
            );
        }
        Ok(IngestOutcome {
            origin,
            already_held,
            new_records: batch.last_seq - stored_seq,
            inserted,
            last_seq: batch.last_seq,
            head: batch.head,
            not_applied,
        })
    }

    fn stored_hash(&self, origin: DeviceId, seq: u64) -> Result<Option<ChainHash>> {
        let hash: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT hash FROM events WHERE origin = ?1 AND seq = ?2")
            .and_then(|mut s| {
                s.query_row(params![origin.as_bytes(), seq as i64], |r| r.get(0))
                    .optional()
            })
            .map_err(self.db_err())?;
        Ok(hash.map(|h| ChainHash::from_slice(&h).unwrap_or(ChainHash::GENESIS)))
    }

    /// Received events kept in the log without changing the projections (a hub-authoritative
    /// module written elsewhere, or a record a projection refused), oldest first.
    pub fn not_applied(&self) -> Result<Vec<NotApplied>> {
        type Row = (Vec<u8>, i64, String, String, String);
        let rows: Vec<Row> = self
            .conn
            .prepare(
                "SELECT origin, seq, module, kind, why FROM sync_not_applied ORDER BY origin, seq",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .filter_map(|(origin, seq, module, kind, why)| {
                Some(NotApplied {
                    origin: DeviceId::from_bytes(uuid_from(&origin)?),
                    seq: seq as u64,
                    module,
                    kind,
                    why,
                })
            })
            .collect())
    }

    /// What this device holds of `origin`'s chain, for `HubSetup::terminal` or
    /// `TerminalSetup::hub`: the last stored seq and its hash, the keys trusted to sign it (ours
    /// from the key file, others from the device registry) and whether it is held.
    pub fn origin_state(&self, origin: DeviceId) -> Result<OriginState> {
        let (last_seq, head) = if origin == self.identity.id {
            self.head()
        } else {
            stored_head(&self.conn, origin).map_err(self.db_err())?
        };
        Ok(OriginState {
            origin,
            last_seq,
            head,
            keys: self.trusted_keys(origin)?,
            held: self.is_held(origin)?,
        })
    }

    /// Answer `AppEvent::NeedEvents`: up to `max` records of `origin` from `first_seq` in seq
    /// order (gapless: it stops before a record this device does not hold in full) and the
    /// stored checkpoints among them. Pass both to `supply_events` with [`Store::device_key`].
    pub fn events_for_sync(
        &self,
        origin: DeviceId,
        first_seq: u64,
        max: u32,
    ) -> Result<(Vec<Event>, Vec<Checkpoint>)> {
        let db = self.db_err();
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE origin = ?1 AND seq >= ?2
                 ORDER BY seq LIMIT ?3"
            ))
            .map_err(&db)?;
        let mut rows = stmt
            .query(params![origin.as_bytes(), first_seq as i64, i64::from(max)])
            .map_err(&db)?;
        let mut events: Vec<Event> = Vec::new();
        while let Some(row) = rows.next().map_err(&db)? {
            let event = row_to_event(row)
                .map_err(&db)?
                .map_err(|seq| StoreError::Corrupt {
                    path: self.lock.db_path(),
                    detail: format!(
                        "event seq {seq} of origin {origin} has a damaged column; run `pos audit verify`"
                    ),
                })?;
            let expected = events.last().map_or(first_seq, |e| e.seq + 1);
            if event.seq != expected {
                break;
            }
            events.push(event);
        }
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok((events, Vec::new()));
        };
        let checkpoints = self.checkpoints_in(origin, "checkpoints", first_seq, last)?;
        Ok((events, checkpoints))
    }

    /// This device's HLC now, without advancing it (for `Now::hlc`).
    pub fn hlc_now(&self) -> Hlc {
        self.clock.last().max(Hlc::from_parts(now_ms(), 0))
    }

    /// The time of a protocol input: `mono_ms` from the IO layer's monotonic clock, the wall
    /// clock and this device's HLC.
    pub fn now(&self, mono_ms: u64) -> Now {
        let wall_ms = now_ms();
        Now {
            mono_ms,
            wall_ms,
            hlc: self.clock.last().max(Hlc::from_parts(wall_ms, 0)),
        }
    }

    /// Merge a peer's HLC (Hello, HelloAck, Heartbeat) into this device's clock, so our next
    /// records sort after what the peer had done. Not merged (returns false) when it is more than
    /// [`MAX_MERGE_AHEAD_MS`] ahead of our wall clock. In memory; `ingest` persists what it
    /// merges.
    pub fn merge_hlc(&mut self, peer: Hlc) -> bool {
        let wall = now_ms();
        if peer.wall_ms() > wall.saturating_add(MAX_MERGE_AHEAD_MS) {
            return false;
        }
        self.clock.observe(peer, wall);
        true
    }

    fn is_held(&self, origin: DeviceId) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM security_sync_holds WHERE holder = ?1 AND origin = ?2)",
            )
            .and_then(|mut s| {
                s.query_row(
                    params![self.identity.id.as_bytes(), origin.as_bytes()],
                    |r| r.get(0),
                )
            })
            .map_err(self.db_err())
    }

    /// Record `AppEvent::SecurityViolation`: appends `security.sync_rejected` (origin, seq, why)
    /// and holds the origin (its projection), so nothing more of it is accepted, across restarts,
    /// until [`Store::release_origin`].
    pub fn hold_origin(&mut self, origin: DeviceId, seq: u64, why: &str) -> Result<Commit> {
        self.hold_origin_sent_by(origin, origin, seq, why)
    }

    /// [`Store::hold_origin`] for records of `origin` that `peer` sent (the hub's connection of
    /// terminal `peer`; usually `peer == origin`).
    pub fn hold_origin_sent_by(
        &mut self,
        peer: DeviceId,
        origin: DeviceId,
        seq: u64,
        why: &str,
    ) -> Result<Commit> {
        self.append(vec![EventDraft::json(
            SyncRejected::MODULE,
            SyncRejected::KIND,
            &SyncRejected {
                origin,
                seq,
                why: sanitize(why),
                sent_by: (peer != origin).then_some(peer),
            },
        )])
    }

    /// Lift the hold on `origin` (after someone looked into it): needs `device_enroll`; a
    /// denial is logged. Returns false, appending nothing, if the origin was not held.
    pub fn release_origin(
        &mut self,
        actor: &Principal,
        origin: DeviceId,
        reason: &str,
    ) -> Result<bool, AccountError> {
        self.authorize(actor, Permission::DeviceEnroll, None)?;
        if !self.is_held(origin)? {
            return Ok(false);
        }
        self.append(vec![EventDraft::json(
            SyncReleased::MODULE,
            SyncReleased::KIND,
            &SyncReleased {
                origin,
                reason: sanitize(reason),
            },
        )
        .by(actor.user)])?;
        Ok(true)
    }

    /// The origins this device holds.
    pub fn holds(&self) -> Result<Vec<Hold>> {
        type Row = (Vec<u8>, i64, String, i64);
        let rows: Vec<Row> = self
            .conn
            .prepare(
                "SELECT origin, seq, why, hlc FROM security_sync_holds WHERE holder = ?1
                 ORDER BY hlc",
            )
            .and_then(|mut s| {
                s.query_map([self.identity.id.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .filter_map(|(origin, seq, why, hlc)| {
                Some(Hold {
                    origin: DeviceId::from_bytes(uuid_from(&origin)?),
                    seq: seq as u64,
                    why,
                    since: Hlc::from_raw(hlc as u64),
                })
            })
            .collect())
    }

    fn peer_write(&self, sql: &str, params: impl rusqlite::Params) -> Result<()> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params))
            .map(drop)
            .map_err(self.db_err())
    }

    /// A message arrived from `device` at `wall_ms`: it is online. `their_head_seq` is its own
    /// last seq when it announced one (its Hello); None keeps the last one known. A plain
    /// table write, not an event (see the module docs).
    pub fn note_seen(
        &mut self,
        device: DeviceId,
        wall_ms: u64,
        their_head_seq: Option<u64>,
    ) -> Result<()> {
        self.peer_write(
            "INSERT INTO sync_peers (device, connected, last_seen_ms, their_head)
             VALUES (?1, 1, ?2, ?3)
             ON CONFLICT (device) DO UPDATE SET connected = 1,
                 last_seen_ms = max(coalesce(last_seen_ms, 0), ?2),
                 their_head = coalesce(?3, their_head)",
            params![
                device.as_bytes(),
                wall_ms as i64,
                their_head_seq.map(|s| s as i64)
            ],
        )
    }

    /// The connection to `device` ended (it is offline from now on).
    pub fn note_disconnected(&mut self, device: DeviceId, wall_ms: u64) -> Result<()> {
        self.peer_write(
            "INSERT INTO sync_peers (device, connected, last_seen_ms) VALUES (?1, 0, ?2)
             ON CONFLICT (device) DO UPDATE SET connected = 0,
                 last_seen_ms = max(coalesce(last_seen_ms, 0), ?2)",
            params![device.as_bytes(), wall_ms as i64],
        )
    }

    /// `AppEvent::ClockSkew` for `device` (Some), or its clock is back within limits (None).
    pub fn note_clock_skew(&mut self, device: DeviceId, skew_ms: Option<i64>) -> Result<()> {
        self.peer_write(
            "INSERT INTO sync_peers (device, skew_ms) VALUES (?1, ?2)
             ON CONFLICT (device) DO UPDATE SET skew_ms = ?2",
            params![device.as_bytes(), skew_ms],
        )
    }

    /// `AppEvent::Acked`: `peer` has stored this device's chain up to `seq` (persisted, never
    /// moves back).
    pub fn acked_by(&mut self, peer: DeviceId, seq: u64) -> Result<()> {
        self.peer_write(
            "INSERT INTO sync_peers (device, acked_seq) VALUES (?1, ?2)
             ON CONFLICT (device) DO UPDATE SET acked_seq = max(acked_seq, ?2)",
            params![peer.as_bytes(), seq as i64],
        )
    }

    /// How far `peer` has stored this device's chain (0: nothing known).
    pub fn peer_acked(&self, peer: DeviceId) -> Result<u64> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT acked_seq FROM sync_peers WHERE device = ?1")
            .and_then(|mut s| s.query_row([peer.as_bytes()], |r| r.get(0)).optional())
            .map_err(self.db_err())?;
        Ok(seq.unwrap_or(0) as u64)
    }

    /// This device's records `peer` has not acknowledged yet (the outbox): own head − acked.
    pub fn unacked_by(&self, peer: DeviceId) -> Result<u64> {
        Ok(self.head().0.saturating_sub(self.peer_acked(peer)?))
    }

    /// The hub this terminal is enrolled with: the newest registered, unrevoked hub.
    pub fn hub_device(&self) -> Result<Option<DeviceRecord>> {
        let own = self.identity.id;
        Ok(self
            .devices()?
            .into_iter()
            .rfind(|d| d.role == DeviceRole::Hub && d.revoked.is_none() && d.device != own))
    }

    /// Every other registered device with its sync state, now.
    pub fn sync_status(&self) -> Result<Vec<DeviceSyncStatus>> {
        self.sync_status_at(now_ms(), ONLINE_WITHIN_MS)
    }

    /// [`Store::sync_status`] at wall time `now_ms`, counting a device as online when it was
    /// seen within `online_within_ms` and has not disconnected since.
    pub fn sync_status_at(
        &self,
        now_ms: u64,
        online_within_ms: u64,
    ) -> Result<Vec<DeviceSyncStatus>> {
        let own = self.identity.id;
        let mut out = Vec::new();
        for d in self.devices()?.into_iter().filter(|d| d.device != own) {
            type Peer = (bool, Option<i64>, Option<i64>, Option<i64>, i64);
            let peer: Option<Peer> = self
                .conn
                .prepare_cached(
                    "SELECT connected, last_seen_ms, their_head, skew_ms, acked_seq
                     FROM sync_peers WHERE device = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([d.device.as_bytes()], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()
                })
                .map_err(self.db_err())?;
            let (connected, last_seen, their_head, skew, acked) =
                peer.unwrap_or((false, None, None, None, 0));
            let last_seen_ms = last_seen.map(|ms| ms as u64);
            let (stored_seq, _) = stored_head(&self.conn, d.device).map_err(self.db_err())?;
            let online = connected
                && last_seen_ms.is_some_and(|seen| now_ms.saturating_sub(seen) <= online_within_ms);
            let status = if d.revoked.is_some() {
                PeerStatus::Revoked
            } else if self.is_held(d.device)? {
                PeerStatus::Held
            } else if online {
                PeerStatus::Online
            } else {
                PeerStatus::Offline
            };
            let out_of_touch_ms = match status {
                PeerStatus::Online | PeerStatus::Revoked => None,
                PeerStatus::Offline | PeerStatus::Held => {
                    Some(now_ms.saturating_sub(last_seen_ms.unwrap_or(d.enrolled.wall_ms())))
                }
            };
            out.push(DeviceSyncStatus {
                device: d.device,
                name: d.name,
                role: d.role,
                status,
                last_seen_ms,
                waiting: their_head.map(|h| (h as u64).saturating_sub(stored_seq)),
                stored_seq,
                clock_skew_ms: skew,
                acked_seq: acked as u64,
                cert_fingerprint: d.cert_fingerprint,
                out_of_touch_ms,
            });
        }
        Ok(out)
    }
}

/// Keep the newest merged HLC in `meta`, so a restart resumes the clock after it.
fn merge_persisted(tx: &Transaction<'_>, hlc: Hlc) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('hlc_merged', ?1)
         ON CONFLICT (key) DO UPDATE SET
             value = CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)",
    )?
    .execute([(hlc.raw() as i64).to_string()])?;
    Ok(())
}

fn check_signature(
    origin: DeviceId,
    trusted: &[PublicKey],
    cp: &Checkpoint,
) -> Result<(), Finding> {
    if !trusted.contains(&cp.key) {
        return Err(Finding::new(
            origin,
            cp.seq,
            Problem::UnknownKey { key: cp.key },
        ));
    }
    if !cp.signature_valid() {
        return Err(Finding::new(origin, cp.seq, Problem::BadSignature));
    }
    Ok(())
}

/// Verify a partial copy of `origin` (see the module docs): runs of full records with the chain
/// verifier, each ending at a signature; redacted runs by their stored hash and the signatures
/// inside them; signatures beyond the last record mean a cut tail.
pub(crate) fn verify_partial(
    store: &Store,
    origin: DeviceId,
    trusted: &[PublicKey],
    checkpoints: Vec<Checkpoint>,
    seal: Option<Checkpoint>,
    redactions: Vec<Redaction>,
) -> Result<ChainSummary, VerifyError> {
    let db = store.db_err();
    let tampered =
        |f: Finding| VerifyError::Tampered(f.refine(|hash| store.seq_of_hash(origin, hash)));
    let sealed = seal.is_some();
    let mut signatures: Vec<Checkpoint> = checkpoints
        .into_iter()
        .chain(seal)
        .filter(|c| c.origin == origin)
        .collect();
    signatures.sort_by_key(|c| c.seq);
    let mut signatures = signatures.into_iter().peekable();
    let mut stmt = store
        .conn
        .prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE origin = ?1 ORDER BY seq"
        ))
        .map_err(&db)?;
    let mut rows = stmt.query([origin.as_bytes()]).map_err(&db)?;
    let mut next_event = || -> Result<Option<Event>, VerifyError> {
        let Some(row) = rows.next().map_err(&db)? else {
            return Ok(None);
        };
        match row_to_event(row).map_err(&db)? {
            Ok(event) => Ok(Some(event)),
            Err(seq) => Err(VerifyError::Tampered(Finding::new(
                origin,
                seq,
                Problem::ContentChanged,
            ))),
        }
    };
    let mut pending = next_event()?;
    let mut runs = redactions.into_iter().peekable();
    let (mut seq, mut head, mut records) = (0u64, ChainHash::GENESIS, 0u64);
    loop {
        if let Some(r) = runs.next_if(|r| r.first_seq <= seq + 1) {
            if r.first_seq != seq + 1 || r.last_seq < r.first_seq {
                // Overlaps what came before, or damaged: not what ingest writes.
                return Err(VerifyError::Tampered(Finding::new(
                    origin,
                    r.first_seq,
                    Problem::Inserted,
                )));
            }
            if let Some(e) = pending.as_ref().filter(|e| e.seq <= r.last_seq) {
                return Err(tampered(Finding::new(origin, e.seq, Problem::Inserted)));
            }
            while let Some(cp) = signatures.next_if(|c| c.seq <= r.last_seq) {
                check_signature(origin, trusted, &cp).map_err(VerifyError::Tampered)?;
                if cp.seq == r.last_seq && cp.head != r.head {
                    return Err(VerifyError::Tampered(Finding::new(
                        origin,
                        cp.seq,
                        Problem::HistoryRewritten,
                    )));
                }
            }
            seq = r.last_seq;
            head = r.head;
            continue;
        }
        // A run of full records from seq + 1 to just before the next redacted run (or the end).
        let end = runs.peek().map(|r| r.first_seq - 1);
        let missing = |at: u64, next: u64| {
            VerifyError::Tampered(Finding::new(
                origin,
                at,
                Problem::Missing {
                    next_present: Some(next),
                },
            ))
        };
        match (&pending, end) {
            (None, None) => break,
            (None, Some(end)) => return Err(missing(seq + 1, end + 1)),
            (Some(e), Some(end)) if e.seq > end => return Err(missing(seq + 1, end + 1)),
            _ => {}
        }
        let limit = end.unwrap_or(u64::MAX);
        let mut in_run = Vec::new();
        while let Some(cp) = signatures.next_if(|c| c.seq <= limit) {
            in_run.push(cp);
        }
        // The run's last record must be signed (sync signs the end of every full run).
        let run_seal = in_run.last().cloned();
        let mut verifier = ChainVerifier::resume(origin, trusted, seq, head)
            .with_checkpoints(in_run)
            .with_seal(run_seal, true);
        let mut run_last = seq;
        while let Some(e) = pending.take_if(|e| e.seq <= limit) {
            verifier.push(&e).map_err(tampered)?;
            run_last = e.seq;
            pending = next_event()?;
        }
        // The run stops short of the next redacted one: its tail was deleted.
        if let Some(end) = end.filter(|end| run_last < *end) {
            return Err(missing(run_last + 1, end + 1));
        }
        let summary = verifier.finish().map_err(tampered)?;
        seq = summary.last_seq;
        head = summary.head;
        records += summary.records;
        if end.is_none() {
            break;
        }
    }
    if let Some(cp) = signatures.next() {
        check_signature(origin, trusted, &cp).map_err(VerifyError::Tampered)?;
        return Err(VerifyError::Tampered(Finding::new(
            origin,
            seq + 1,
            Problem::Truncated {
                signed_up_to: cp.seq,
            },
        )));
    }
    if !sealed {
        return Err(VerifyError::Tampered(Finding::new(
            origin,
            seq,
            Problem::SealMissing,
        )));
    }
    Ok(ChainSummary {
        origin,
        records,
        last_seq: seq,
        head,
    })
}

/// Module `security`: the origins each device holds (`security.sync_rejected` until
/// `security.sync_released`), keyed by the device that wrote the event (`holder`), so a
/// terminal's holds received by the hub describe the terminal, not the hub.
#[derive(Debug)]
pub(crate) struct SyncHoldProjection;

impl Projection for SyncHoldProjection {
    fn module(&self) -> &'static str {
        SyncRejected::MODULE
    }
    fn tables(&self) -> &'static [&'static str] {
        &["security_sync_holds"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        match event.kind.as_str() {
            SyncRejected::KIND => {
                let p: SyncRejected = payload(event)?;
                // A second violation keeps the first (the original finding explains the hold).
                tx.prepare_cached(
                    "INSERT INTO security_sync_holds (holder, origin, seq, why, hlc)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (holder, origin) DO NOTHING",
                )?
                .execute(params![
                    event.origin.as_bytes(),
                    p.origin.as_bytes(),
                    p.seq as i64,
                    p.why,
                    event.hlc.raw() as i64
                ])?;
            }
            SyncReleased::KIND => {
                let p: SyncReleased = payload(event)?;
                tx.prepare_cached(
                    "DELETE FROM security_sync_holds WHERE holder = ?1 AND origin = ?2",
                )?
                .execute(params![event.origin.as_bytes(), p.origin.as_bytes()])?;
            }
            // The other security events are the login state's (`SecurityProjection`).
            _ => {}
        }
        Ok(())
    }
}

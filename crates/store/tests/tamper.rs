//! An attacker with write access to the SQLite file edits, deletes, inserts, reorders or
//! truncates records, or alters a signature. `verify` must name the exact record and why.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::path::Path;

use pos_audit::{ChainHash, EventDraft, Problem};
use pos_core::payloads::StockMoved;
use pos_core::{DeviceId, DeviceRole, EventId, Hlc, UserId};
use pos_store::{Store, StoreOptions, VerifyError, DB_FILE};
use proptest::prelude::*;
use rusqlite::{params, Connection};

const CHECKPOINT_EVERY: u64 = 5;

struct Log {
    dir: tempfile::TempDir,
    origin: DeviceId,
    /// Last seq of this device's chain (the seal covers it).
    last: u64,
}

fn tempdir() -> tempfile::TempDir {
    // fsync costs nothing on tmpfs; these tests are about detection, not durability.
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn build(batches: &[usize]) -> Log {
    let dir = tempdir();
    let (store, _) = Store::init(dir.path(), DeviceRole::Terminal, "b", "t", false).unwrap();
    let origin = store.device_id();
    drop(store);
    let options = StoreOptions {
        checkpoint_every: CHECKPOINT_EVERY,
        ..StoreOptions::default()
    };
    let mut store = Store::open(dir.path(), options).unwrap();
    let actor = UserId::new_v7();
    for (b, size) in batches.iter().enumerate() {
        let drafts = (0..*size)
            .map(|i| {
                EventDraft::json(
                    StockMoved::MODULE,
                    StockMoved::KIND,
                    &StockMoved {
                        item: format!("item-{}", (b + i) % 4),
                        quantity: -(i as i64) - 1,
                        cause: None,
                        reference: None,
                    },
                )
                .by(actor)
            })
            .collect();
        store.append(drafts).unwrap();
    }
    let last = store.head().0;
    assert!(store.verify().is_ok(), "an untouched log verifies");
    Log { dir, origin, last }
}

impl Log {
    fn attacker(&self) -> Connection {
        let conn = Connection::open(self.dir.path().join(DB_FILE)).unwrap();
        // A real attacker drops the immutability triggers first.
        conn.execute_batch(
            "DROP TRIGGER events_are_never_updated; DROP TRIGGER events_are_never_deleted;
             DROP TRIGGER checkpoints_are_never_updated; DROP TRIGGER checkpoints_are_never_deleted;",
        )
        .unwrap();
        conn
    }

    fn verdict(&self) -> (u64, Problem) {
        let store = Store::open_read_only(self.dir.path()).unwrap();
        match store.verify() {
            Err(VerifyError::Tampered(f)) => {
                assert_eq!(f.origin, self.origin);
                (f.seq, f.problem)
            }
            other => panic!("tampering not detected: {other:?}"),
        }
    }

    fn hash_at(conn: &Connection, seq: u64) -> ChainHash {
        let h: Vec<u8> = conn
            .query_row(
                "SELECT hash FROM events WHERE seq = ?1",
                [seq as i64],
                |r| r.get(0),
            )
            .unwrap();
        ChainHash::from_slice(&h).unwrap()
    }

    /// Renumber every record with seq >= from by `delta` without tripping UNIQUE(origin, seq).
    fn shift(conn: &Connection, from: u64, delta: i64) {
        conn.execute(
            "UPDATE events SET seq = -(seq + ?2) WHERE seq >= ?1",
            params![from as i64, delta],
        )
        .unwrap();
        conn.execute("UPDATE events SET seq = -seq WHERE seq < 0", [])
            .unwrap();
    }
}

fn batches() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1usize..8, 2..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn an_edited_payload_byte_is_named(b in batches(), pos in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let log = build(&b);
        let seq = 1 + pos.index(log.last as usize) as u64;
        let conn = log.attacker();
        let mut payload: Vec<u8> = conn.query_row("SELECT payload FROM events WHERE seq = ?1", [seq as i64], |r| r.get(0)).unwrap();
        let i = at.index(payload.len());
        payload[i] ^= flip;
        conn.execute("UPDATE events SET payload = ?1 WHERE seq = ?2", params![payload, seq as i64]).unwrap();
        drop(conn);
        prop_assert_eq!(log.verdict(), (seq, Problem::ContentChanged));
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_is_named(b in batches(), pos in any::<prop::sample::Index>()) {
        let log = build(&b);
        // Not the last record: there the signed head catches it (tested below).
        let seq = 1 + pos.index(log.last as usize - 1) as u64;
        let conn = log.attacker();
        conn.execute("UPDATE events SET reason = 'refund approved' WHERE seq = ?1", [seq as i64]).unwrap();
        rehash(&conn, log.origin, seq);
        drop(conn);
        prop_assert_eq!(log.verdict(), (seq, Problem::ContentChanged));
    }

    #[test]
    fn a_deleted_row_is_named(b in batches(), pos in any::<prop::sample::Index>(), renumber in any::<bool>()) {
        let log = build(&b);
        let seq = 1 + pos.index(log.last as usize) as u64;
        let conn = log.attacker();
        conn.execute("DELETE FROM events WHERE seq = ?1", [seq as i64]).unwrap();
        if renumber { Log::shift(&conn, seq + 1, -1); }
        drop(conn);
        let (at, problem) = log.verdict();
        prop_assert_eq!(at, seq);
        if seq == log.last {
            // The last record: the log now ends before what the device signed.
            let truncated = matches!(problem, Problem::Truncated { .. });
            prop_assert!(truncated, "{:?}", problem);
        } else if renumber {
            prop_assert_eq!(problem, Problem::Missing { next_present: None });
        } else {
            prop_assert_eq!(problem, Problem::Missing { next_present: Some(seq + 1) });
        }
    }

    #[test]
    fn an_inserted_forged_row_is_named(b in batches(), pos in any::<prop::sample::Index>()) {
        let log = build(&b);
        // Anywhere from before the first record to after the last one.
        let seq = 1 + pos.index(log.last as usize + 1) as u64;
        let conn = log.attacker();
        let prev = if seq == 1 { ChainHash::GENESIS } else { Log::hash_at(&conn, seq - 1) };
        Log::shift(&conn, seq, 1);
        forge(&conn, log.origin, seq, prev);
        drop(conn);
        if seq == log.last + 1 {
            prop_assert_eq!(log.verdict(), (seq, Problem::Unsigned { signed_up_to: log.last }));
        } else {
            prop_assert_eq!(log.verdict(), (seq, Problem::Inserted));
        }
    }

    #[test]
    fn swapped_rows_are_named(b in batches(), x in any::<prop::sample::Index>(), y in any::<prop::sample::Index>()) {
        let log = build(&b);
        let (i, j) = (1 + x.index(log.last as usize) as u64, 1 + y.index(log.last as usize) as u64);
        prop_assume!(i != j);
        let (i, j) = (i.min(j), i.max(j));
        let conn = log.attacker();
        // Move the rows' contents, keep the seq column: the rows trade places in seq order.
        conn.execute("UPDATE events SET seq = -1 WHERE seq = ?1", [i as i64]).unwrap();
        conn.execute("UPDATE events SET seq = ?1 WHERE seq = ?2", params![i as i64, j as i64]).unwrap();
        conn.execute("UPDATE events SET seq = ?1 WHERE seq = -1", [j as i64]).unwrap();
        drop(conn);
        let (at, problem) = log.verdict();
        prop_assert_eq!(at, i);
        let reordered = matches!(problem, Problem::Reordered { .. });
        prop_assert!(reordered, "{:?}", problem);
    }

    #[test]
    fn a_truncated_tail_is_named(b in batches(), pos in any::<prop::sample::Index>(), drop_seal in any::<bool>()) {
        let log = build(&b);
        let keep = pos.index(log.last as usize) as u64; // keep 0..last-1 records
        let conn = log.attacker();
        conn.execute("DELETE FROM events WHERE seq > ?1", [keep as i64]).unwrap();
        if drop_seal { conn.execute("DELETE FROM chain_seals", []).unwrap(); }
        let signed_beyond: Option<i64> = conn
            .query_row("SELECT min(seq) FROM checkpoints WHERE seq > ?1", [keep as i64], |r| r.get(0))
            .unwrap();
        drop(conn);
        let (at, problem) = log.verdict();
        match (drop_seal, signed_beyond) {
            (true, None) => prop_assert_eq!((at, problem), (keep, Problem::SealMissing)),
            (true, Some(cp)) => prop_assert_eq!((at, problem), (keep + 1, Problem::Truncated { signed_up_to: cp as u64 })),
            (false, _) => {
                prop_assert_eq!(at, keep + 1);
                let truncated = matches!(problem, Problem::Truncated { .. });
                prop_assert!(truncated, "{:?}", problem);
            }
        }
    }

    #[test]
    fn an_altered_signature_is_named(b in batches(), pick in any::<prop::sample::Index>(), byte in 0usize..64, seal in any::<bool>()) {
        let log = build(&b);
        let conn = log.attacker();
        let table = if seal { "chain_seals" } else { "checkpoints" };
        let seqs: Vec<i64> = conn
            .prepare(&format!("SELECT seq FROM {table} ORDER BY seq")).unwrap()
            .query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
        let seq = seqs[pick.index(seqs.len())];
        let mut sig: Vec<u8> = conn
            .query_row(&format!("SELECT signature FROM {table} WHERE seq = ?1"), [seq], |r| r.get(0)).unwrap();
        sig[byte] ^= 0x01;
        conn.execute(&format!("UPDATE {table} SET signature = ?1 WHERE seq = ?2"), params![sig, seq]).unwrap();
        drop(conn);
        prop_assert_eq!(log.verdict(), (seq as u64, Problem::BadSignature));
    }
}

#[test]
fn a_checkpoint_signed_by_a_foreign_key_is_named() {
    let log = build(&[3, 3]);
    let conn = log.attacker();
    let intruder = pos_audit::DeviceKey::from_seed([42; 32]);
    let head = Log::hash_at(&conn, 2);
    let forged = pos_audit::Checkpoint::sign(&intruder, log.origin, 2, head, Hlc::from_raw(1));
    conn.execute(
        "INSERT INTO checkpoints (origin, seq, head, hlc, key, signature) VALUES (?1, 2, ?2, 1, ?3, ?4)",
        params![log.origin.as_bytes(), &head.0[..], &forged.key.0[..], &forged.signature[..]],
    )
    .unwrap();
    drop(conn);
    assert_eq!(
        log.verdict(),
        (
            2,
            Problem::UnknownKey {
                key: intruder.public()
            }
        )
    );
}

#[test]
fn the_last_record_rehashed_is_caught_by_the_signed_head() {
    let log = build(&[4, 2]);
    let conn = log.attacker();
    conn.execute(
        "UPDATE events SET payload = X'7B7D' WHERE seq = ?1",
        [log.last as i64],
    )
    .unwrap();
    rehash(&conn, log.origin, log.last);
    drop(conn);
    assert_eq!(log.verdict(), (log.last, Problem::HistoryRewritten));
}

#[test]
fn the_log_refuses_updates_and_deletes_while_its_triggers_stand() {
    let log = build(&[2]);
    let conn = Connection::open(log.dir.path().join(DB_FILE)).unwrap();
    let update = conn.execute("UPDATE events SET payload = X'7B7D' WHERE seq = 1", []);
    assert!(update.unwrap_err().to_string().contains("immutable"));
    let delete = conn.execute("DELETE FROM events", []);
    assert!(delete.unwrap_err().to_string().contains("immutable"));
    assert!(conn.execute("DELETE FROM checkpoints", []).is_err());
}

/// Recompute the stored hash of the record at `seq` from its (edited) columns.
fn rehash(conn: &Connection, origin: DeviceId, seq: u64) {
    let e = read(conn, origin, seq);
    let hash = e.compute_hash(&mut Vec::new());
    conn.execute(
        "UPDATE events SET hash = ?1 WHERE seq = ?2",
        params![&hash.0[..], seq as i64],
    )
    .unwrap();
}

fn read(conn: &Connection, origin: DeviceId, seq: u64) -> pos_audit::Event {
    conn.query_row(
        "SELECT id, hlc, module, kind, actor, reason, schema_version, payload, prev_hash FROM events WHERE seq = ?1",
        [seq as i64],
        |r| {
            let id: Vec<u8> = r.get(0)?;
            let actor: Option<Vec<u8>> = r.get(4)?;
            let prev: Vec<u8> = r.get(8)?;
            Ok(EventDraft {
                module: r.get(2)?,
                kind: r.get(3)?,
                actor: actor.map(|a| UserId::from_bytes(a.try_into().unwrap())),
                approver: None,
                reason: r.get(5)?,
                schema_version: r.get(6)?,
                payload: r.get(7)?,
            }
            .seal(
                EventId::from_bytes(id.try_into().unwrap()),
                origin,
                seq,
                Hlc::from_raw(r.get::<_, i64>(1)? as u64),
                ChainHash::from_slice(&prev).unwrap(),
                &mut Vec::new(),
            ))
        },
    )
    .unwrap()
}

/// Insert a well-formed record at `seq` linked to `prev`, as an attacker who knows the format.
fn forge(conn: &Connection, origin: DeviceId, seq: u64, prev: ChainHash) {
    let e = EventDraft::json(
        StockMoved::MODULE,
        StockMoved::KIND,
        &StockMoved {
            item: "gold".into(),
            quantity: 1000,
            cause: None,
            reference: None,
        },
    )
    .seal(
        EventId::new_v7(),
        origin,
        seq,
        Hlc::from_raw(1),
        prev,
        &mut Vec::new(),
    );
    conn.execute(
        "INSERT INTO events (origin, seq, id, hlc, module, kind, actor, approver, reason, schema_version, payload, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, NULL, ?7, ?8, ?9, ?10)",
        params![
            origin.as_bytes(), seq as i64, e.id.as_bytes(), e.hlc.raw() as i64, e.module, e.kind,
            e.schema_version, e.payload, &e.prev_hash.0[..], &e.hash.0[..]
        ],
    )
    .unwrap();
}

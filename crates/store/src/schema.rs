//! Versioned schema migrations (rusqlite_migration; the version lives in `PRAGMA user_version`).
//!
//! Append only: never edit a migration that has shipped, add a new one. Tables are owned by
//! one module each and named after it (`stock_*`, `settings_*`, `device_*`); only that module's
//! projection writes them. The log tables (`events`, `checkpoints`, `chain_seals`) belong to the
//! audit core.

use rusqlite_migration::{Migrations, M};

const V1_LOG: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- The event log. Rows are appended, never updated or deleted (see the triggers below).
-- rowid is the arrival order on this device; replaying in rowid order rebuilds projections.
CREATE TABLE events (
    rowid          INTEGER PRIMARY KEY,
    origin         BLOB    NOT NULL,
    seq            INTEGER NOT NULL,
    id             BLOB    NOT NULL,
    hlc            INTEGER NOT NULL,
    module         TEXT    NOT NULL,
    kind           TEXT    NOT NULL,
    actor          BLOB,
    approver       BLOB,
    reason         TEXT,
    schema_version INTEGER NOT NULL,
    payload        BLOB    NOT NULL,
    prev_hash      BLOB    NOT NULL,
    hash           BLOB    NOT NULL,
    UNIQUE (origin, seq)
) STRICT;

CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: append a correcting event instead'); END;
CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable: append a correcting event instead'); END;

-- Signed checkpoints: every N events and on demand (shift close). Never updated.
CREATE TABLE checkpoints (
    origin    BLOB    NOT NULL,
    seq       INTEGER NOT NULL,
    head      BLOB    NOT NULL,
    hlc       INTEGER NOT NULL,
    key       BLOB    NOT NULL,
    signature BLOB    NOT NULL,
    PRIMARY KEY (origin, seq)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER checkpoints_are_never_updated BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END;
CREATE TRIGGER checkpoints_are_never_deleted BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END;

-- One rolling signed head per origin, re-signed in every commit: catches a cut or extended tail.
CREATE TABLE chain_seals (
    origin    BLOB PRIMARY KEY,
    seq       INTEGER NOT NULL,
    head      BLOB    NOT NULL,
    hlc       INTEGER NOT NULL,
    key       BLOB    NOT NULL,
    signature BLOB    NOT NULL
) STRICT, WITHOUT ROWID;

-- Module `device`: devices known to this one and their public keys.
CREATE TABLE device_registry (
    device     BLOB PRIMARY KEY,
    role       TEXT NOT NULL,
    branch     TEXT NOT NULL,
    name       TEXT NOT NULL,
    public_key BLOB NOT NULL,
    added_hlc  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Module `settings`: hub-authoritative key/value settings (JSON values).
CREATE TABLE settings_values (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_hlc INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Module `stock`: on-hand quantity per item = sum of movements (commutative).
CREATE TABLE stock_levels (
    item      TEXT PRIMARY KEY,
    quantity  INTEGER NOT NULL,
    movements INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#;

const MIGRATIONS: &[M<'static>] =
    &[M::up(V1_LOG).comment("event log, checkpoints, seals, core modules")];

pub(crate) fn migrations() -> Migrations<'static> {
    Migrations::from_slice(MIGRATIONS)
}

/// The schema version this build writes (`PRAGMA user_version` after migrating).
pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().unwrap();
    }
}

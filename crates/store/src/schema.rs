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

const V2_IDENTITY: &str = r#"
-- Module `device`: when a device was revoked (enrolled = added_hlc).
ALTER TABLE device_registry ADD COLUMN revoked_hlc INTEGER;

-- Module `user`: accounts, their credentials (verifiers only, never secrets) and custom roles.
CREATE TABLE user_accounts (
    user         BLOB PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    roles        TEXT NOT NULL,           -- JSON array of role names
    active       INTEGER NOT NULL,
    created_hlc  INTEGER NOT NULL,
    updated_hlc  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE user_credentials (
    user        BLOB NOT NULL,
    kind        TEXT NOT NULL,            -- pin | password | badge | totp
    verifier    TEXT NOT NULL,            -- argon2id PHC string, or the TOTP secret
    must_change INTEGER NOT NULL,
    set_ms      INTEGER NOT NULL,
    PRIMARY KEY (user, kind)
) STRICT, WITHOUT ROWID;

-- Every verifier a user ever had, newest last: the password policy refuses reuse of the last N.
CREATE TABLE user_secret_history (
    user     BLOB NOT NULL,
    kind     TEXT NOT NULL,
    verifier TEXT NOT NULL,
    set_hlc  INTEGER NOT NULL
) STRICT;
CREATE INDEX user_secret_history_by_user ON user_secret_history (user, kind, set_hlc);

CREATE TABLE user_roles (
    name        TEXT PRIMARY KEY,
    permissions TEXT NOT NULL             -- JSON array of permission names
) STRICT, WITHOUT ROWID;

-- Module `security`: lockout state derived from login events.
CREATE TABLE security_login_state (
    user            BLOB PRIMARY KEY,
    failures        INTEGER NOT NULL,
    locked_until_ms INTEGER NOT NULL,
    manual_lock     INTEGER NOT NULL,
    last_totp_step  INTEGER
) STRICT, WITHOUT ROWID;
"#;

const MIGRATIONS: &[M<'static>] = &[
    M::up(V1_LOG).comment("event log, checkpoints, seals, core modules"),
    M::up(V2_IDENTITY).comment("users, credentials, roles, login state, device revocation"),
];

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

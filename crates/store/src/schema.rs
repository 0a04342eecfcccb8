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

const V3_OPERATIONS: &str = r#"
-- Module `catalogue` (hub-authoritative): products, their barcodes and PLUs, name search, tax.
CREATE TABLE catalogue_products (
    id          BLOB PRIMARY KEY,
    sku         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    category    TEXT NOT NULL,
    quick_key   INTEGER,
    active      INTEGER NOT NULL,
    product     TEXT NOT NULL,            -- JSON of pos_core::sale::Product
    updated_hlc INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Lookup key (Scanned::lookup_key: normalised GTIN or PLU) -> product. The scan path (P2).
CREATE TABLE catalogue_barcodes (
    code    TEXT PRIMARY KEY,
    product BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX catalogue_barcodes_by_product ON catalogue_barcodes (product);

CREATE VIRTUAL TABLE catalogue_search USING fts5 (
    name, sku, category, product UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TABLE catalogue_tax_rates (
    class   TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    rate_bp INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Module `sale`: completed receipts (per terminal, gapless numbers), refunds, line voids,
-- parked tickets. `shift` ties each to the cash drawer session it belongs to.
CREATE TABLE sale_receipts (
    terminal   BLOB    NOT NULL,
    number     INTEGER NOT NULL,
    ticket     BLOB    NOT NULL,
    shift      BLOB    NOT NULL,
    cashier    BLOB,
    hlc        INTEGER NOT NULL,
    total      INTEGER NOT NULL,
    status     TEXT    NOT NULL,          -- completed | post_voided
    sale       TEXT    NOT NULL,          -- JSON of CompletedSale
    event_hash BLOB    NOT NULL,          -- chain hash of the sale.completed event (receipt QR)
    void_shift BLOB,                      -- shift in which it was post-voided
    PRIMARY KEY (terminal, number)
) STRICT, WITHOUT ROWID;

CREATE TABLE sale_refunds (
    terminal BLOB    NOT NULL,
    number   INTEGER NOT NULL,
    original INTEGER,                     -- receipt number refunded, NULL without receipt
    shift    BLOB    NOT NULL,
    hlc      INTEGER NOT NULL,
    total    INTEGER NOT NULL,
    refund   TEXT    NOT NULL,            -- JSON of the sale.refunded payload
    PRIMARY KEY (terminal, number)
) STRICT, WITHOUT ROWID;
CREATE INDEX sale_refunds_by_original ON sale_refunds (terminal, original);

CREATE TABLE sale_line_voids (
    terminal BLOB    NOT NULL,
    ticket   BLOB    NOT NULL,
    line     INTEGER NOT NULL,
    shift    BLOB    NOT NULL,
    amount   INTEGER NOT NULL,
    hlc      INTEGER NOT NULL,
    PRIMARY KEY (terminal, ticket, line)
) STRICT, WITHOUT ROWID;

CREATE TABLE sale_parked (
    ticket   BLOB PRIMARY KEY,
    terminal BLOB    NOT NULL,
    cashier  BLOB,
    hlc      INTEGER NOT NULL,
    body     TEXT    NOT NULL             -- JSON of the parked Ticket
) STRICT, WITHOUT ROWID;

-- Module `shift`: drawer sessions, cash moves and no-sale openings.
CREATE TABLE shift_shifts (
    id         BLOB PRIMARY KEY,
    terminal   BLOB    NOT NULL,
    cashier    BLOB,
    opened_hlc INTEGER NOT NULL,
    float      INTEGER NOT NULL,
    closed_hlc INTEGER,
    z_number   INTEGER,
    counted    INTEGER,
    expected   INTEGER,
    report     TEXT                       -- JSON of the Z report, at close
) STRICT, WITHOUT ROWID;
CREATE INDEX shift_shifts_open ON shift_shifts (terminal, closed_hlc);

CREATE TABLE shift_cash_moves (
    shift  BLOB    NOT NULL,
    seq    INTEGER NOT NULL,              -- event seq, for a stable order
    kind   TEXT    NOT NULL,              -- paid_in | paid_out | no_sale
    amount INTEGER NOT NULL,
    hlc    INTEGER NOT NULL,
    PRIMARY KEY (shift, seq)
) STRICT, WITHOUT ROWID;
"#;

const V4_PRINT: &str = r#"
-- Module `print`: the receipt print queue. A job is done only when the printer confirmed it;
-- a job that was started but not confirmed is printed again marked COPY, never unmarked.
CREATE TABLE print_jobs (
    job         BLOB PRIMARY KEY,
    terminal    BLOB    NOT NULL,
    receipt     INTEGER NOT NULL,
    copy        INTEGER NOT NULL,
    queued_hlc  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    printed_hlc INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX print_jobs_waiting ON print_jobs (terminal, printed_hlc, queued_hlc);
"#;

const V5_BADGES: &str = r#"
-- Module `user`: badge lookup keys (keyed hashes of badge codes) -> user, for badge login.
CREATE TABLE user_badges (
    lookup TEXT PRIMARY KEY,
    user   BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX user_badges_by_user ON user_badges (user);
"#;

const V6_SYNC: &str = r#"
-- Log (audit core): records of another origin held only as their hashes (a partial copy: a
-- terminal receives the hub's records of modules it did not subscribe to redacted). One row
-- per run of redacted seqs, with the chain hash at its last seq. Never updated or deleted.
CREATE TABLE chain_redactions (
    origin    BLOB    NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    head      BLOB    NOT NULL,
    PRIMARY KEY (origin, first_seq)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER chain_redactions_are_never_updated BEFORE UPDATE ON chain_redactions
BEGIN SELECT RAISE(ABORT, 'redaction records are immutable'); END;
CREATE TRIGGER chain_redactions_are_never_deleted BEFORE DELETE ON chain_redactions
BEGIN SELECT RAISE(ABORT, 'redaction records are immutable'); END;

-- Module `device`: the TLS client certificate fingerprint recorded at enrollment.
ALTER TABLE device_registry ADD COLUMN cert_fingerprint TEXT;

-- Module `security`: origins a device (`holder`) refuses after a verification failure, until
-- released (security.sync_rejected / security.sync_released).
CREATE TABLE security_sync_holds (
    holder BLOB    NOT NULL,
    origin BLOB    NOT NULL,
    seq    INTEGER NOT NULL,
    why    TEXT    NOT NULL,
    hlc    INTEGER NOT NULL,
    PRIMARY KEY (holder, origin)
) STRICT, WITHOUT ROWID;

-- Sync (derived, emptied and refilled by a rebuild): received events kept in the log but not
-- applied to the projections (a hub-authoritative module written elsewhere, or a refusal).
CREATE TABLE sync_not_applied (
    origin BLOB    NOT NULL,
    seq    INTEGER NOT NULL,
    module TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    why    TEXT    NOT NULL,
    PRIMARY KEY (origin, seq)
) STRICT, WITHOUT ROWID;

-- Sync (not in the log): liveness of each peer and how far it has stored this device's chain.
CREATE TABLE sync_peers (
    device       BLOB PRIMARY KEY,
    connected    INTEGER NOT NULL DEFAULT 0,
    last_seen_ms INTEGER,
    their_head   INTEGER,                  -- the peer's own last seq, as it announced it
    skew_ms      INTEGER,                  -- the last clock skew reported, NULL when within limits
    acked_seq    INTEGER NOT NULL DEFAULT 0 -- the peer has stored our chain up to here
) STRICT, WITHOUT ROWID;

-- Hub: one-time enrollment codes. The code is shown once and never stored: only the key the
-- enrollment protocol derives from it, sealed with a key derived from the device key.
CREATE TABLE sync_enroll_codes (
    id         TEXT PRIMARY KEY,
    sealed     BLOB    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    created_by BLOB,
    used_ms    INTEGER,
    used_by    BLOB,
    void_ms    INTEGER                     -- voided after too many failed attempts
) STRICT, WITHOUT ROWID;
"#;

const V7_ANALYTICS: &str = r#"
-- Analytics (Management plug), derived like a projection: the analytics projections of the
-- `sale`, `shift`, `security` and `backup` modules (store/src/analytics.rs) add each event's
-- pos_reports::delta in the event's own transaction. Every value is a sum keyed by the
-- event's hour (UTC hours since the epoch, from its HLC) and origin (`terminal`), so the order
-- events arrive in never matters and a rebuild gives the same tables. Names keep min(): also
-- order-independent. Money in minor units, quantities in thousandths.
CREATE TABLE analytics_hourly (
    hour                INTEGER NOT NULL,
    terminal            BLOB    NOT NULL,
    cashier             BLOB    NOT NULL,   -- the event's actor; x'' when none
    sales               INTEGER NOT NULL DEFAULT 0,
    gross               INTEGER NOT NULL DEFAULT 0,
    discounts           INTEGER NOT NULL DEFAULT 0,
    rounding            INTEGER NOT NULL DEFAULT 0,
    items               INTEGER NOT NULL DEFAULT 0,
    lines               INTEGER NOT NULL DEFAULT 0,
    refunds             INTEGER NOT NULL DEFAULT 0,
    refund_value        INTEGER NOT NULL DEFAULT 0,
    post_voids          INTEGER NOT NULL DEFAULT 0,
    post_void_value     INTEGER NOT NULL DEFAULT 0,
    post_void_discounts INTEGER NOT NULL DEFAULT 0,
    post_void_rounding  INTEGER NOT NULL DEFAULT 0,
    post_void_items     INTEGER NOT NULL DEFAULT 0,
    post_void_lines     INTEGER NOT NULL DEFAULT 0,
    line_voids          INTEGER NOT NULL DEFAULT 0,
    line_void_value     INTEGER NOT NULL DEFAULT 0,
    no_sales            INTEGER NOT NULL DEFAULT 0,
    paid_in             INTEGER NOT NULL DEFAULT 0,
    paid_in_value       INTEGER NOT NULL DEFAULT 0,
    paid_out            INTEGER NOT NULL DEFAULT 0,
    paid_out_value      INTEGER NOT NULL DEFAULT 0,
    closes              INTEGER NOT NULL DEFAULT 0,
    over_short          INTEGER NOT NULL DEFAULT 0,
    cash_over           INTEGER NOT NULL DEFAULT 0,
    cash_short          INTEGER NOT NULL DEFAULT 0,
    drawers_left_open   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, terminal, cashier)
) STRICT, WITHOUT ROWID;

CREATE TABLE analytics_products (
    hour         INTEGER NOT NULL,
    terminal     BLOB    NOT NULL,
    sku          TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    qty          INTEGER NOT NULL DEFAULT 0,
    lines        INTEGER NOT NULL DEFAULT 0,
    paid         INTEGER NOT NULL DEFAULT 0,
    tax          INTEGER NOT NULL DEFAULT 0,
    refund_qty   INTEGER NOT NULL DEFAULT 0,
    refund_value INTEGER NOT NULL DEFAULT 0,
    refund_tax   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, terminal, sku)
) STRICT, WITHOUT ROWID;

CREATE TABLE analytics_tenders (
    hour     INTEGER NOT NULL,
    terminal BLOB    NOT NULL,
    tender   TEXT    NOT NULL,
    count    INTEGER NOT NULL DEFAULT 0,
    amount   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, terminal, tender)
) STRICT, WITHOUT ROWID;

CREATE TABLE analytics_taxes (
    hour     INTEGER NOT NULL,
    terminal BLOB    NOT NULL,
    class    TEXT    NOT NULL,
    rate_bp  INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    net      INTEGER NOT NULL DEFAULT 0,
    tax      INTEGER NOT NULL DEFAULT 0,
    gross    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, terminal, class, rate_bp)
) STRICT, WITHOUT ROWID;

-- Module `backup` (analytics): each origin's backup outcomes (`backup.made`, `backup.failed`):
-- counts, the latest HLC of each (max()), and the failures since the last success (the
-- origin's own records always apply in chain order, so this is the same in any interleaving
-- of origins and after a rebuild).
CREATE TABLE analytics_backups (
    origin          BLOB PRIMARY KEY,
    made            INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    last_made_hlc   INTEGER,
    last_failed_hlc INTEGER,
    failed_in_a_row INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
"#;

const MIGRATIONS: &[M<'static>] = &[
    M::up(V1_LOG).comment("event log, checkpoints, seals, core modules"),
    M::up(V2_IDENTITY).comment("users, credentials, roles, login state, device revocation"),
    M::up(V3_OPERATIONS).comment("catalogue, sales, refunds, voids, parked tickets, shifts"),
    M::up(V4_PRINT).comment("receipt print queue"),
    M::up(V5_BADGES).comment("badge login lookup"),
    M::up(V6_SYNC).comment("sync: redacted records, holds, peers, enrollment codes"),
    M::up(V7_ANALYTICS)
        .comment("analytics: hourly sums by terminal, cashier, product, tender, tax"),
];

/// The schema version that added the analytics tables: older databases are replayed into them.
pub(crate) const ANALYTICS_VERSION: i64 = 7;

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

//! The SQLite store of one device: the event log, checkpoints and module projections.
//!
//! * One process owns a data dir ([`DataDirLock`]); a second gets [`StoreError::Locked`].
//! * [`Store::append`] appends events and applies their projections in one durable transaction
//!   (WAL, `synchronous = FULL`).
//! * [`Store::verify`] checks every chain; [`Store::rebuild`] replays the log into projections.
//! * [`Store::ingest`] stores another device's verified chain (sync); see `sync.rs` for
//!   partial copies, holds, the protocol's view of each origin and the peers' liveness, and
//!   `enroll.rs` for enrollment codes.

mod accounts;
mod analytics;
mod catalogue;
mod datadir;
mod enroll;
mod error;
mod print;
mod projection;
mod sales;
mod schema;

/// The database schema version this build writes (`PRAGMA user_version` after migrating):
/// a backup from a newer one cannot be restored by it.
pub fn schema_version() -> i64 {
    schema::latest_version()
}
mod store;
mod sync;

/// The analytics rules and row models the query API returns (`Store::kpis`, ...), so a consumer
/// of the store needs no second dependency.
pub use pos_reports as reports;

pub use accounts::{AccountError, AccountPolicy, Authorized, UserSummary};
pub use datadir::{DataDirLock, Identity, DB_FILE};
pub use enroll::{
    EnrollCode, EnrollCodeInfo, EnrollRefusal, EnrollRequest, MAX_ENROLL_FAILURES, MAX_ENROLL_TTL,
    MIN_ENROLL_TTL,
};
pub use error::{Result, StoreError};
pub use print::PrintJob;
pub use projection::{Projection, Refusal};
pub use sales::{ShiftInfo, StoredReceipt};
pub use store::{
    now_ms, Commit, DeviceRecord, InitReport, LogFilter, Store, StoreOptions, VerifyError,
    VerifyReport, HUB_AUTHORITATIVE,
};
pub use sync::{
    DeviceSyncStatus, Hold, IngestOutcome, NotApplied, PeerStatus, MAX_MERGE_AHEAD_MS,
    ONLINE_WITHIN_MS,
};

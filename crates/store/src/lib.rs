//! The SQLite store of one device: the event log, checkpoints and module projections.
//!
//! * One process owns a data dir ([`DataDirLock`]); a second gets [`StoreError::Locked`].
//! * [`Store::append`] appends events and applies their projections in one durable transaction
//!   (WAL, `synchronous = FULL`).
//! * [`Store::verify`] checks every chain; [`Store::rebuild`] replays the log into projections.

mod accounts;
mod catalogue;
mod datadir;
mod error;
mod print;
mod projection;
mod sales;
mod schema;
mod store;

pub use accounts::{AccountError, AccountPolicy, Authorized, UserSummary};
pub use datadir::{DataDirLock, Identity, DB_FILE};
pub use error::{Result, StoreError};
pub use print::PrintJob;
pub use projection::{Projection, Refusal};
pub use sales::{ShiftInfo, StoredReceipt};
pub use store::{
    now_ms, Commit, DeviceRecord, InitReport, LogFilter, Store, StoreOptions, VerifyError,
    VerifyReport,
};

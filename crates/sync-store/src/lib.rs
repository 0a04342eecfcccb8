//! The SQLite store behind the sync drivers of `pos-sync-net`.
//!
//! * [`RunningHub`]: the branch hub's sync service: its [`Store`] shared by the server's
//!   connections, the device directory (certificates, revocations) refreshed from the device
//!   registry, enrollments recorded in the store, and the hub's own head announced to the
//!   terminals. `pos hub` runs it; benchmarks and tests run the same code.
//! * [`OwnedTerminalStore`]: a terminal's storage when the sync task may lock the store itself
//!   (benchmarks, tests, headless tools). The terminal app routes the same calls through its UI
//!   thread instead, because the engine there owns the store.

mod hub;
mod terminal;

pub use hub::{HubError, RunningHub};
pub use terminal::OwnedTerminalStore;

use pos_sync_net::StorageError;

fn storage_err(e: impl std::fmt::Display) -> StorageError {
    StorageError(e.to_string())
}

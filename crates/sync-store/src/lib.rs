//! The SQLite store behind the sync drivers of `pos-sync-net`.
//!
//! * [`RunningHub`]: the branch hub's sync service: its [`Store`] shared by the server's
//!   connections, the device directory (certificates, revocations) refreshed from the device
//!   registry, enrollments recorded in the store, and the hub's own head announced to the
//!   terminals. `pos hub` runs it; benchmarks and tests run the same code.
//! * [`TerminalStore`]: a terminal's sync storage (its outbox, the hub's acks and master data)
//!   over any [`StoreAccess`]: [`OwnedTerminalStore`] when the sync task may lock the store
//!   itself (demo, tests, tools); the terminal app routes the same calls through its UI thread,
//!   where the engine owns the store; a benchmark through the engine that sells.

mod hub;
mod terminal;

pub use hub::{HubError, RunningHub};
pub use terminal::{OwnedTerminalStore, SharedStore, StoreAccess, TerminalStore};

use pos_sync_net::StorageError;

fn storage_err(e: impl std::fmt::Display) -> StorageError {
    StorageError(e.to_string())
}

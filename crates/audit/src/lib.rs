//! The tamper-evident event log, without IO.
//!
//! * [`Event`]: the envelope of DESIGN.md and its canonical byte encoding (see [`encoding`]).
//! * The chain: `hash = blake3(prev_hash ‖ canonical bytes)`, per origin device, seq gapless from 1.
//! * [`DeviceKey`] / [`PublicKey`]: ed25519 device keys; [`Checkpoint`]: a signed (origin, seq, head).
//! * [`ChainVerifier`]: streams one origin's records and names the first bad one and why.
//!
//! The store (SQLite) and sync (network) feed these types; nothing here touches a file or socket.

mod checkpoint;
pub mod encoding;
mod event;
mod keys;
mod verify;

pub use checkpoint::Checkpoint;
pub use event::{ChainHash, Event, EventDraft, InvalidDraft, MAX_PAYLOAD_BYTES};
pub use keys::{DeviceKey, KeyFileError, PublicKey};
pub use verify::{ChainSummary, ChainVerifier, Finding, Problem};

/// Checkpoints are signed at least this often (and on demand, e.g. at shift close).
pub const CHECKPOINT_INTERVAL: u64 = 1000;

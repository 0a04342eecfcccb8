//! The sync protocol between terminals and the hub, without IO (like quinn-proto or rustls).
//!
//! No sockets, no clocks, no database: the IO layer (tokio + rustls, SQLite) feeds received
//! bytes and the current time in, sends the bytes it is given, and does what the
//! [`AppEvent`]s ask (store a verified batch, read events to send), reporting back when that is
//! durable. One [`TerminalConnection`] or [`HubConnection`] is one connection; a bad frame closes
//! that connection only, so the hub keeps serving the others.
//!
//! # Layers
//! * [`frame`]: `"3P"` · version · message type · u32 length · body; a maximum frame size
//!   checked on the length field before the body is waited for. [`FrameDecoder`] takes bytes in
//!   any chunking.
//! * [`message`]: the eight messages and their hand-specified body layouts (events travel as
//!   their canonical `pos_audit::encoding` bytes, so the hub hashes exactly what the terminal did).
//! * [`TerminalConnection`], [`HubConnection`]: the state machines.
//!
//! # Flows
//! ```text
//! terminal                                              hub
//!   Hello(version, device, role, hlc, wall, max frame,
//!         window, cursors, subscriptions)        ──►   checks version, device = TLS identity,
//!                                                       role; clock skew → AppEvent::ClockSkew
//!                                                ◄──   HelloAck(version, device, ..., cursors)
//!   sends its own events from the hub's cursor + 1
//!   EventBatch(origin = terminal, entries, checkpoints, seal) ──►  verify with ChainVerifier
//!                                                       from the stored head → AppEvent::Store
//!                                                       IO layer commits → events_stored()
//!                                                ◄──   Ack(origin, highest contiguous stored)
//!   AppEvent::Acked → outbox cursor
//!                                                ◄──   EventBatch(origin = hub): master data,
//!   verify with the hub's keys → AppEvent::Store        unsubscribed modules redacted
//!   IO layer applies → events_stored()           ──►   Ack
//!   Heartbeat(hlc, wall) both ways when idle; Credit(window) to change a receive window;
//!   Reject(origin, seq, reason) refuses a batch; Close(reason, detail) ends the connection.
//! ```
//! Both directions use the same sender and receiver logic: a connection sends one origin's
//! chain (the terminal its own, the hub its own) and receives one (the other's).
//!
//! # Invariants
//! * **Cursors, not guesses.** Hello and HelloAck carry, per origin, the last contiguous seq the
//!   sender already has; each side sends from the other's cursor + 1. Acks carry the highest
//!   contiguous seq stored durably and are sent only after the IO layer reported the commit.
//! * **Exactly once in effect.** A batch (or the part of one) at or below what was already
//!   accepted is not handed over again; if it is all durable it is acknowledged again, so a lost
//!   Ack heals. A batch starting after the next expected seq is refused with `Reject(Gap)` and
//!   the sender rewinds (never below its acknowledged cursor).
//! * **Verified before stored.** Every batch is checked as the continuation of the stored chain
//!   head ([`OriginState`]): gapless seqs, content hashes, links, trusted keys, signatures, and a
//!   signature on its last record (the seal, signed by the author at send time). A failure is a
//!   `Reject(Verification)`, an [`AppEvent::SecurityViolation`], and the origin is held: nothing
//!   more of it is accepted until the IO layer clears the hold (a new connection with
//!   `held: false`). A re-sent record at the stored head with a different hash is a violation too.
//! * **Backpressure.** A sender has at most the receiver's window of unacknowledged events in
//!   flight; a peer exceeding the largest window granted is closed. Storage that lags simply
//!   delays acks, which holds the sender. A batch carries at most one checkpoint per record, so
//!   the signature checks a peer can cause are bounded by what it sends.
//! * **Time is an input.** [`Now`] carries a monotonic clock (timers), the wall clock (skew) and
//!   the device's HLC (sent in Hello and Heartbeat); nothing here reads a clock.
//! * **No panics, bounded memory** on any input: decode errors are typed and close the
//!   connection with the reason; no allocation follows an unchecked length from the wire.

pub mod frame;
pub mod message;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

mod connection;
mod hub;
mod terminal;
mod verify;
mod wire;

pub use frame::{encode_frame, FrameDecoder, FrameError};
pub use hub::{HubConnection, HubSetup};
pub use message::{CloseReason, Message, RejectReason};
pub use terminal::{TerminalConnection, TerminalSetup};
pub use wire::BodyError;

use pos_audit::{ChainHash, Checkpoint, Event, PublicKey};
use pos_core::{DeviceId, Hlc};

/// Limits and timers of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The largest frame this device accepts (announced in Hello/HelloAck; at least 2 MiB).
    pub max_frame_bytes: u32,
    /// Events the peer may send this device before an ack (announced; at least 1).
    pub receive_window: u32,
    /// Events asked for and sent in one batch.
    pub max_batch_events: u32,
    /// A Heartbeat goes out when nothing else was sent for this long.
    pub heartbeat_interval_ms: u64,
    /// The connection is closed when nothing was received for this long (handshake included).
    pub idle_timeout_ms: u64,
    /// Unacknowledged events are sent again when no ack progressed for this long.
    pub ack_timeout_ms: u64,
    /// A peer whose clock differs from ours by more than this is reported (hub side).
    pub max_clock_skew_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_bytes: frame::DEFAULT_MAX_FRAME_BYTES,
            receive_window: 4096,
            max_batch_events: 512,
            heartbeat_interval_ms: 10_000,
            idle_timeout_ms: 45_000,
            ack_timeout_ms: 30_000,
            max_clock_skew_ms: 120_000,
        }
    }
}

/// The time of an input, as the IO layer read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// A monotonic clock in milliseconds (e.g. since the process started): timers only.
    pub mono_ms: u64,
    /// The wall clock, Unix milliseconds: compared with the peer's for skew.
    pub wall_ms: u64,
    /// The device's hybrid logical clock, sent to the peer.
    pub hlc: Hlc,
}

/// What the receiving side holds durably of one origin's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginState {
    pub origin: DeviceId,
    /// The last contiguous seq stored (0: none).
    pub last_seq: u64,
    /// The hash of that record (`ChainHash::GENESIS` for none).
    pub head: ChainHash,
    /// Keys trusted to sign this origin's chain (from the device registry / enrollment).
    pub keys: Vec<PublicKey>,
    /// A verification failure is unresolved: nothing of this origin is accepted.
    pub held: bool,
}

/// A batch that passed verification, to be stored in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBatch {
    pub origin: DeviceId,
    /// The new records are `first_seq..=last_seq` (redacted ones have no event).
    pub first_seq: u64,
    pub last_seq: u64,
    /// The chain head at `last_seq`: the origin's new [`OriginState::head`].
    pub head: ChainHash,
    /// The full records, in seq order.
    pub events: Vec<Event>,
    /// Verified signatures inside the range: store as the origin's checkpoints.
    pub checkpoints: Vec<Checkpoint>,
    /// The verified signature on `last_seq`: store as the origin's head seal.
    pub seal: Checkpoint,
}

/// Events the IO layer should read from its log and pass to `supply_events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRequest {
    pub origin: DeviceId,
    pub first_seq: u64,
    /// At most this many (fewer is fine, e.g. to end at a stored checkpoint).
    pub max_events: u32,
}

/// What the IO layer must do or know. Drain with `poll_event` after every input.
// A handful are queued at a time; `Store` being larger than the rest costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// The handshake completed. On the hub, `subscriptions` are the terminal's modules.
    /// `peer_head` is the peer's own chain head as its Hello or HelloAck announced it (the
    /// hub learns how much a terminal still has to send).
    Connected {
        peer: DeviceId,
        subscriptions: Vec<String>,
        peer_head: Option<u64>,
    },
    /// Read these events (every record of the origin in seq order, unfiltered: redaction for
    /// subscriptions happens here) and the stored checkpoints in their range, and call
    /// `supply_events`.
    NeedEvents(BatchRequest),
    /// Commit this verified batch, then call `events_stored(origin, last_seq)`. On the hub these
    /// are a terminal's events; on a terminal, the hub's master data.
    Store(VerifiedBatch),
    /// The peer has stored our `origin` up to `seq` (a terminal's outbox cursor).
    Acked { origin: DeviceId, seq: u64 },
    /// The peer refused our stream; nothing more of `origin` is sent on this connection.
    Rejected {
        origin: DeviceId,
        seq: u64,
        reason: RejectReason,
        detail: String,
    },
    /// The peer sent a forged or broken chain, or another device's records. Record a security
    /// event; `origin` is held (persist it and pass `held: true` until someone resolves it).
    SecurityViolation {
        origin: DeviceId,
        seq: u64,
        why: String,
    },
    /// The peer's clock differs from ours by `skew_ms` (positive: the peer is ahead). Reported
    /// once per connection until it comes back within half the limit.
    ClockSkew { device: DeviceId, skew_ms: i64 },
    /// The author of `origin` has fewer of its own records than a copy: it lost history (restored
    /// from an old backup?). New records it writes would fork the chain.
    LostHistory {
        origin: DeviceId,
        author_has: u64,
        copy_has: u64,
    },
    /// The connection is over; log the reason. Send what `poll_transmit` still returns, then
    /// close the transport.
    Closed {
        reason: CloseReason,
        detail: String,
        by_peer: bool,
    },
}

/// A call the IO layer made that does not fit the connection's state (a bug in the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("events of origin {found} were supplied for origin {expected}")]
    WrongOrigin { expected: DeviceId, found: DeviceId },
    #[error("supplied events must be gapless: seq {found} follows seq {previous}")]
    NotContiguous { previous: u64, found: u64 },
    #[error("supplied events start at seq {found}, the request was for seq {expected}")]
    WrongStart { expected: u64, found: u64 },
    #[error("events_stored({up_to}) is beyond what was handed over for storing (seq {accepted})")]
    StoredBeyondAccepted { up_to: u64, accepted: u64 },
    #[error("origin {0} is not received on this connection")]
    UnknownOrigin(DeviceId),
    #[error("subscription `{0}` is not a module name (or there are more than 64)")]
    BadSubscription(String),
}

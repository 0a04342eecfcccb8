//! The messages of sync protocol version 1 and their body layouts.
//!
//! Bodies are a hand-specified binary layout rather than a serde format: events already have a
//! canonical, versioned byte encoding (`pos_audit::encoding`) that the chain hashes, and sending
//! exactly those bytes means the receiver hashes what the author hashed. A hand layout also lets
//! every length be checked against the bytes actually received before anything is allocated,
//! and it adds no dependency. Integers are big-endian; `[n]` is n raw bytes.
//!
//! ```text
//! id  message     body
//!  1  Hello       u16 protocol version (first field, frozen) · [16] device · u8 role (1 terminal,
//!                 2 hub) · u64 hlc · u64 wall ms · u32 max frame bytes · u32 receive window ·
//!                 u16 n, n × cursor · u8 n, n × module name
//!  2  HelloAck    u16 protocol version · [16] device · u64 hlc · u64 wall ms · u32 max frame
//!                 bytes · u32 receive window · u16 n, n × cursor
//!  3  EventBatch  [16] origin · u32 n (>= 1), n × entry · u32 n, n × checkpoint · checkpoint seal
//!  4  Ack         [16] origin · u64 seq
//!  5  Credit      u32 window
//!  6  Reject      [16] origin · u64 seq · u8 reason · str16 detail
//!  7  Heartbeat   u64 hlc · u64 wall ms
//!  8  Close       u8 reason · str16 detail (layout frozen: every version can read a Close)
//!
//! cursor      [16] origin · u64 seq (the last contiguous seq of that origin the sender HAS)
//! module name u8 length (1..=64) · a-z 0-9 _ - .
//! str16       u16 length (<= 1024) · UTF-8
//! entry       u8 1 · [32] prev hash · [32] hash · u32 length · canonical event bytes
//!             u8 2 · u64 seq · [32] hash                     (redacted: module not subscribed)
//! checkpoint  [16] origin · u64 seq · [32] head · u64 hlc · [32] public key · [64] signature
//! ```
//! A full entry's `hash` is the author's claim, not recomputed: the verifier compares it with
//! the hash of the bytes, so an edited record is named "content changed".

use pos_audit::encoding;
use pos_audit::{ChainHash, Checkpoint, Event, PublicKey, MAX_PAYLOAD_BYTES};
use pos_core::{DeviceId, DeviceRole, Hlc};

use crate::wire::{
    is_module_name, len_u32, put_module_name, put_str16, put_u16, put_u32, put_u64, BodyError,
    Reader,
};

/// The protocol spoken by this build. A Hello with another version is answered with a Close.
pub const PROTOCOL_VERSION: u16 = 1;
/// At most this many cursors in a Hello or HelloAck.
pub const MAX_CURSORS: usize = 64;
/// At most this many module subscriptions in a Hello.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// Reject and Close details are cut to this many bytes.
pub const MAX_DETAIL_BYTES: usize = 1024;
/// The largest canonical event: the payload limit plus room for the envelope fields.
pub const MAX_EVENT_BYTES: usize = MAX_PAYLOAD_BYTES + 1024;
/// Bytes of one checkpoint on the wire.
pub const CHECKPOINT_WIRE_BYTES: usize = 16 + 8 + 32 + 8 + 32 + 64;
/// Bytes of a batch without its entries and extra checkpoints.
pub(crate) const BATCH_FIXED_BYTES: usize = 16 + 4 + 4 + CHECKPOINT_WIRE_BYTES;
const REDACTED_WIRE_BYTES: usize = 1 + 8 + 32;
const FULL_ENTRY_OVERHEAD: usize = 1 + 32 + 32 + 4;
const CURSOR_WIRE_BYTES: usize = 16 + 8;

/// One message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    HelloAck(HelloAck),
    EventBatch(EventBatch),
    Ack(Ack),
    Credit(Credit),
    Reject(Reject),
    Heartbeat(Heartbeat),
    Close(Close),
}

/// "I have origin's records up to `seq`" (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub origin: DeviceId,
    pub seq: u64,
}

/// The terminal's opening message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub protocol_version: u16,
    pub device: DeviceId,
    pub role: DeviceRole,
    pub hlc: Hlc,
    /// The sender's wall clock, unmerged, so a clock that is far off shows even when its HLC
    /// has been pulled forward by what it received.
    pub wall_ms: u64,
    pub max_frame_bytes: u32,
    /// Events the receiver of this Hello may have unacknowledged towards the sender.
    pub receive_window: u32,
    pub cursors: Vec<Cursor>,
    /// Modules whose hub events the terminal wants in full; others arrive redacted.
    pub subscriptions: Vec<String>,
}

/// The hub's answer to a Hello it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloAck {
    pub protocol_version: u16,
    pub device: DeviceId,
    pub hlc: Hlc,
    pub wall_ms: u64,
    pub max_frame_bytes: u32,
    pub receive_window: u32,
    pub cursors: Vec<Cursor>,
}

/// One position of an origin's chain in a batch.
// Nearly every entry is `Full`: boxing it would cost an allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchEntry {
    Full(Event),
    /// A record the receiver did not subscribe to: only its place and hash in the chain.
    Redacted {
        seq: u64,
        hash: ChainHash,
    },
}

impl BatchEntry {
    pub fn seq(&self) -> u64 {
        match self {
            BatchEntry::Full(e) => e.seq,
            BatchEntry::Redacted { seq, .. } => *seq,
        }
    }

    /// The hash the sender claims for this position.
    pub fn hash(&self) -> ChainHash {
        match self {
            BatchEntry::Full(e) => e.hash,
            BatchEntry::Redacted { hash, .. } => *hash,
        }
    }

    pub(crate) fn wire_len(&self) -> usize {
        match self {
            BatchEntry::Full(e) => FULL_ENTRY_OVERHEAD + encoding::encode(e).len(),
            BatchEntry::Redacted { .. } => REDACTED_WIRE_BYTES,
        }
    }
}

/// Consecutive records of one origin's chain, with the signatures that cover them.
///
/// `seal` signs the last entry; `checkpoints` are the origin's periodic checkpoints inside the
/// range and, on a redacted stream, a signature at the end of every run of full entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    pub origin: DeviceId,
    pub entries: Vec<BatchEntry>,
    pub checkpoints: Vec<Checkpoint>,
    pub seal: Checkpoint,
}

impl EventBatch {
    pub fn first_seq(&self) -> u64 {
        self.entries.first().map_or(0, BatchEntry::seq)
    }

    pub fn last_seq(&self) -> u64 {
        self.entries.last().map_or(0, BatchEntry::seq)
    }
}

/// "I have durably stored `origin` up to `seq`."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub origin: DeviceId,
    pub seq: u64,
}

/// A new receive window: the peer may have this many events unacknowledged (0 pauses it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    pub window: u32,
}

/// A batch was refused; `seq` is where (for a gap: the seq expected next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub origin: DeviceId,
    pub seq: u64,
    pub reason: RejectReason,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The batch starts after the seq expected next: resend from `seq`.
    Gap,
    /// The origin's stream is held after a verification failure; nothing more is accepted.
    Held,
    /// The batch failed chain or signature verification; the origin is now held.
    Verification,
    /// The receiver does not take this origin from this peer.
    UnknownOrigin,
    /// A reason this version does not know (sent by a newer peer); treated like `Held`.
    Other(u8),
}

/// Keeps an idle connection alive and carries the sender's clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    pub hlc: Hlc,
    pub wall_ms: u64,
}

/// The last message of a connection, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub reason: CloseReason,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Orderly shutdown.
    Normal,
    /// A bad frame or a message that breaks the protocol.
    ProtocolViolation,
    /// The peers share no protocol version.
    VersionMismatch,
    /// Nothing was received for the idle timeout.
    IdleTimeout,
    /// The peer is not the device this connection was authenticated for, or has the wrong role.
    WrongPeer,
    /// The IO layer gave up (e.g. the database refused a commit).
    Internal,
    /// The transport ended without a Close (never sent; reported locally).
    ConnectionLost,
    /// A reason this version does not know.
    Other(u8),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Normal => f.write_str("closed normally"),
            CloseReason::ProtocolViolation => f.write_str("protocol violation"),
            CloseReason::VersionMismatch => f.write_str("protocol version mismatch"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::WrongPeer => f.write_str("wrong peer"),
            CloseReason::Internal => f.write_str("internal error"),
            CloseReason::ConnectionLost => f.write_str("connection lost"),
            CloseReason::Other(code) => write!(f, "close reason {code}"),
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectReason::Gap => f.write_str("gap"),
            RejectReason::Held => f.write_str("held"),
            RejectReason::Verification => f.write_str("verification failed"),
            RejectReason::UnknownOrigin => f.write_str("unknown origin"),
            RejectReason::Other(code) => write!(f, "reject reason {code}"),
        }
    }
}

impl CloseReason {
    fn code(self) -> u8 {
        match self {
            CloseReason::Normal => 0,
            CloseReason::ProtocolViolation => 1,
            CloseReason::VersionMismatch => 2,
            CloseReason::IdleTimeout => 3,
            CloseReason::WrongPeer => 4,
            CloseReason::Internal => 5,
            CloseReason::ConnectionLost => 6,
            CloseReason::Other(code) => code,
        }
    }

    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            0 => CloseReason::Normal,
            1 => CloseReason::ProtocolViolation,
            2 => CloseReason::VersionMismatch,
            3 => CloseReason::IdleTimeout,
            4 => CloseReason::WrongPeer,
            5 => CloseReason::Internal,
            6 => CloseReason::ConnectionLost,
            other => CloseReason::Other(other),
        }
    }
}

impl RejectReason {
    fn code(self) -> u8 {
        match self {
            RejectReason::Gap => 1,
            RejectReason::Held => 2,
            RejectReason::Verification => 3,
            RejectReason::UnknownOrigin => 4,
            RejectReason::Other(code) => code,
        }
    }

    pub(crate) fn from_code(code: u8) -> Self {
        match code {
            1 => RejectReason::Gap,
            2 => RejectReason::Held,
            3 => RejectReason::Verification,
            4 => RejectReason::UnknownOrigin,
            other => RejectReason::Other(other),
        }
    }
}

impl Message {
    /// The type byte of the frame header.
    pub fn type_code(&self) -> u8 {
        match self {
            Message::Hello(_) => 1,
            Message::HelloAck(_) => 2,
            Message::EventBatch(_) => 3,
            Message::Ack(_) => 4,
            Message::Credit(_) => 5,
            Message::Reject(_) => 6,
            Message::Heartbeat(_) => 7,
            Message::Close(_) => 8,
        }
    }

    pub fn name(&self) -> &'static str {
        type_name(self.type_code()).unwrap_or("unknown")
    }
}

pub(crate) fn type_name(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "Hello",
        2 => "HelloAck",
        3 => "EventBatch",
        4 => "Ack",
        5 => "Credit",
        6 => "Reject",
        7 => "Heartbeat",
        8 => "Close",
        _ => return None,
    })
}

pub(crate) fn encode_body(msg: &Message, out: &mut Vec<u8>) {
    match msg {
        Message::Hello(h) => {
            put_u16(out, h.protocol_version);
            out.extend_from_slice(h.device.as_bytes());
            out.push(match h.role {
                DeviceRole::Terminal => 1,
                DeviceRole::Hub => 2,
            });
            put_u64(out, h.hlc.raw());
            put_u64(out, h.wall_ms);
            put_u32(out, h.max_frame_bytes);
            put_u32(out, h.receive_window);
            put_cursors(out, &h.cursors);
            let subs = &h.subscriptions[..h.subscriptions.len().min(MAX_SUBSCRIPTIONS)];
            out.push(subs.len() as u8);
            for s in subs {
                put_module_name(out, s);
            }
        }
        Message::HelloAck(a) => {
            put_u16(out, a.protocol_version);
            out.extend_from_slice(a.device.as_bytes());
            put_u64(out, a.hlc.raw());
            put_u64(out, a.wall_ms);
            put_u32(out, a.max_frame_bytes);
            put_u32(out, a.receive_window);
            put_cursors(out, &a.cursors);
        }
        Message::EventBatch(b) => {
            out.extend_from_slice(b.origin.as_bytes());
            put_u32(out, len_u32(b.entries.len()));
            for entry in &b.entries {
                match entry {
                    BatchEntry::Full(e) => {
                        out.push(1);
                        out.extend_from_slice(&e.prev_hash.0);
                        out.extend_from_slice(&e.hash.0);
                        let canonical = encoding::encode(e);
                        put_u32(out, len_u32(canonical.len()));
                        out.extend_from_slice(&canonical);
                    }
                    BatchEntry::Redacted { seq, hash } => {
                        out.push(2);
                        put_u64(out, *seq);
                        out.extend_from_slice(&hash.0);
                    }
                }
            }
            put_u32(out, len_u32(b.checkpoints.len()));
            for cp in &b.checkpoints {
                put_checkpoint(out, cp);
            }
            put_checkpoint(out, &b.seal);
        }
        Message::Ack(a) => {
            out.extend_from_slice(a.origin.as_bytes());
            put_u64(out, a.seq);
        }
        Message::Credit(c) => put_u32(out, c.window),
        Message::Reject(r) => {
            out.extend_from_slice(r.origin.as_bytes());
            put_u64(out, r.seq);
            out.push(r.reason.code());
            put_str16(out, &r.detail, MAX_DETAIL_BYTES);
        }
        Message::Heartbeat(h) => {
            put_u64(out, h.hlc.raw());
            put_u64(out, h.wall_ms);
        }
        Message::Close(c) => {
            out.push(c.reason.code());
            put_str16(out, &c.detail, MAX_DETAIL_BYTES);
        }
    }
}

fn put_cursors(out: &mut Vec<u8>, cursors: &[Cursor]) {
    let cursors = &cursors[..cursors.len().min(MAX_CURSORS)];
    put_u16(out, cursors.len() as u16);
    for c in cursors {
        out.extend_from_slice(c.origin.as_bytes());
        put_u64(out, c.seq);
    }
}

fn put_checkpoint(out: &mut Vec<u8>, cp: &Checkpoint) {
    out.extend_from_slice(cp.origin.as_bytes());
    put_u64(out, cp.seq);
    out.extend_from_slice(&cp.head.0);
    put_u64(out, cp.hlc.raw());
    out.extend_from_slice(&cp.key.0);
    out.extend_from_slice(&cp.signature);
}

/// Decode the body of a message of type `code`. `None` for an unknown type.
pub(crate) fn decode_body(code: u8, body: &[u8]) -> Option<Result<Message, BodyError>> {
    let mut r = Reader::new(body);
    let msg = match code {
        1 => decode_hello(&mut r).map(Message::Hello),
        2 => decode_hello_ack(&mut r).map(Message::HelloAck),
        3 => decode_batch(&mut r).map(Message::EventBatch),
        4 => read_ack(&mut r).map(Message::Ack),
        5 => r
            .u32("window")
            .map(|window| Message::Credit(Credit { window })),
        6 => decode_reject(&mut r).map(Message::Reject),
        7 => read_heartbeat(&mut r).map(Message::Heartbeat),
        8 => decode_close(&mut r).map(Message::Close),
        _ => return None,
    };
    Some(msg.and_then(|m| r.finish().map(|()| m)))
}

fn device(r: &mut Reader<'_>, what: &'static str) -> Result<DeviceId, BodyError> {
    r.array(what).map(DeviceId::from_bytes)
}

fn decode_hello(r: &mut Reader<'_>) -> Result<Hello, BodyError> {
    let protocol_version = r.u16("protocol version")?;
    let device = device(r, "device")?;
    let role = match r.u8("role")? {
        1 => DeviceRole::Terminal,
        2 => DeviceRole::Hub,
        code => return Err(BodyError::UnknownCode { what: "role", code }),
    };
    let hlc = Hlc::from_raw(r.u64("hlc")?);
    let wall_ms = r.u64("wall clock")?;
    let max_frame_bytes = r.u32("max frame bytes")?;
    let receive_window = r.u32("receive window")?;
    let cursors = read_cursors(r)?;
    let raw = u64::from(r.u8("subscription count")?);
    let n = r.count(raw, 2, MAX_SUBSCRIPTIONS as u64, "subscriptions")?;
    let mut subscriptions = Vec::new();
    for _ in 0..n {
        subscriptions.push(r.module_name("subscription")?);
    }
    Ok(Hello {
        protocol_version,
        device,
        role,
        hlc,
        wall_ms,
        max_frame_bytes,
        receive_window,
        cursors,
        subscriptions,
    })
}

fn decode_hello_ack(r: &mut Reader<'_>) -> Result<HelloAck, BodyError> {
    Ok(HelloAck {
        protocol_version: r.u16("protocol version")?,
        device: device(r, "device")?,
        hlc: Hlc::from_raw(r.u64("hlc")?),
        wall_ms: r.u64("wall clock")?,
        max_frame_bytes: r.u32("max frame bytes")?,
        receive_window: r.u32("receive window")?,
        cursors: read_cursors(r)?,
    })
}

fn read_cursors(r: &mut Reader<'_>) -> Result<Vec<Cursor>, BodyError> {
    let raw = u64::from(r.u16("cursor count")?);
    let n = r.count(raw, CURSOR_WIRE_BYTES, MAX_CURSORS as u64, "cursors")?;
    let mut cursors = Vec::with_capacity(n);
    for _ in 0..n {
        cursors.push(Cursor {
            origin: device(r, "cursor origin")?,
            seq: r.u64("cursor seq")?,
        });
    }
    Ok(cursors)
}

fn decode_batch(r: &mut Reader<'_>) -> Result<EventBatch, BodyError> {
    let origin = device(r, "batch origin")?;
    let raw = u64::from(r.u32("entry count")?);
    let n = r.count(raw, REDACTED_WIRE_BYTES, u64::from(u32::MAX), "entries")?;
    if n == 0 {
        return Err(BodyError::EmptyBatch);
    }
    // Entries are pushed as they are decoded: the Vec grows with bytes actually received.
    let mut entries = Vec::new();
    for _ in 0..n {
        entries.push(read_entry(r)?);
    }
    let raw = u64::from(r.u32("checkpoint count")?);
    let n = r.count(
        raw,
        CHECKPOINT_WIRE_BYTES,
        u64::from(u32::MAX),
        "checkpoints",
    )?;
    let mut checkpoints = Vec::new();
    for _ in 0..n {
        checkpoints.push(read_checkpoint(r)?);
    }
    let seal = read_checkpoint(r)?;
    Ok(EventBatch {
        origin,
        entries,
        checkpoints,
        seal,
    })
}

fn read_entry(r: &mut Reader<'_>) -> Result<BatchEntry, BodyError> {
    match r.u8("entry tag")? {
        1 => {
            let prev_hash = ChainHash(r.array("prev hash")?);
            let claimed = ChainHash(r.array("hash")?);
            let len = r.u32("event length")? as usize;
            if len > MAX_EVENT_BYTES {
                return Err(BodyError::TooLong {
                    what: "event",
                    len: len as u64,
                    max: MAX_EVENT_BYTES as u64,
                });
            }
            let bytes = r.take(len, "event")?;
            let mut event = encoding::decode(bytes, prev_hash).map_err(BodyError::from)?;
            event.hash = claimed;
            Ok(BatchEntry::Full(event))
        }
        2 => Ok(BatchEntry::Redacted {
            seq: r.u64("redacted seq")?,
            hash: ChainHash(r.array("redacted hash")?),
        }),
        code => Err(BodyError::UnknownCode {
            what: "entry tag",
            code,
        }),
    }
}

fn read_checkpoint(r: &mut Reader<'_>) -> Result<Checkpoint, BodyError> {
    Ok(Checkpoint {
        origin: device(r, "checkpoint origin")?,
        seq: r.u64("checkpoint seq")?,
        head: ChainHash(r.array("checkpoint head")?),
        hlc: Hlc::from_raw(r.u64("checkpoint hlc")?),
        key: PublicKey(r.array("checkpoint key")?),
        signature: r.array("checkpoint signature")?,
    })
}

fn read_ack(r: &mut Reader<'_>) -> Result<Ack, BodyError> {
    Ok(Ack {
        origin: device(r, "ack origin")?,
        seq: r.u64("ack seq")?,
    })
}

fn decode_reject(r: &mut Reader<'_>) -> Result<Reject, BodyError> {
    Ok(Reject {
        origin: device(r, "reject origin")?,
        seq: r.u64("reject seq")?,
        reason: RejectReason::from_code(r.u8("reject reason")?),
        detail: r.str16(MAX_DETAIL_BYTES, "reject detail")?,
    })
}

fn read_heartbeat(r: &mut Reader<'_>) -> Result<Heartbeat, BodyError> {
    Ok(Heartbeat {
        hlc: Hlc::from_raw(r.u64("hlc")?),
        wall_ms: r.u64("wall clock")?,
    })
}

fn decode_close(r: &mut Reader<'_>) -> Result<Close, BodyError> {
    Ok(Close {
        reason: CloseReason::from_code(r.u8("close reason")?),
        detail: r.str16(MAX_DETAIL_BYTES, "close detail")?,
    })
}

/// Whether every subscription is a valid module name and there are not too many.
pub(crate) fn valid_subscriptions(subs: &[String]) -> bool {
    subs.len() <= MAX_SUBSCRIPTIONS && subs.iter().all(|s| is_module_name(s))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::frame::{encode_frame, FrameDecoder};
    use pos_audit::EventDraft;
    use pos_core::{EventId, UserId};
    use proptest::prelude::*;

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            (
                any::<[u8; 16]>(),
                any::<[u8; 16]>(),
                any::<u64>(),
                any::<u64>(),
            ),
            ("[a-z]{1,12}", "[a-z._]{1,20}"),
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of("[ -~]{0,40}"),
            proptest::collection::vec(any::<u8>(), 0..200),
            (any::<[u8; 32]>(), any::<[u8; 32]>()),
        )
            .prop_map(
                |((id, origin, seq, hlc), (module, kind), actor, reason, payload, (prev, hash))| {
                    let draft = EventDraft {
                        module,
                        kind,
                        actor: actor.map(UserId::from_bytes),
                        approver: None,
                        reason,
                        schema_version: 1,
                        payload,
                    };
                    let mut e = draft.seal(
                        EventId::from_bytes(id),
                        DeviceId::from_bytes(origin),
                        seq,
                        Hlc::from_raw(hlc),
                        ChainHash(prev),
                        &mut Vec::new(),
                    );
                    // The claimed hash travels as sent, right or wrong.
                    e.hash = ChainHash(hash);
                    e
                },
            )
    }

    fn arb_checkpoint() -> impl Strategy<Value = Checkpoint> {
        (
            any::<[u8; 16]>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(any::<u8>(), 64),
        )
            .prop_map(|(origin, seq, head, hlc, key, sig)| Checkpoint {
                origin: DeviceId::from_bytes(origin),
                seq,
                head: ChainHash(head),
                hlc: Hlc::from_raw(hlc),
                key: PublicKey(key),
                signature: sig.try_into().unwrap(),
            })
    }

    fn arb_cursors() -> impl Strategy<Value = Vec<Cursor>> {
        proptest::collection::vec(
            (any::<[u8; 16]>(), any::<u64>()).prop_map(|(o, seq)| Cursor {
                origin: DeviceId::from_bytes(o),
                seq,
            }),
            0..4,
        )
    }

    fn arb_entry() -> impl Strategy<Value = BatchEntry> {
        prop_oneof![
            arb_event().prop_map(BatchEntry::Full),
            (any::<u64>(), any::<[u8; 32]>()).prop_map(|(seq, h)| BatchEntry::Redacted {
                seq,
                hash: ChainHash(h)
            }),
        ]
    }

    pub(crate) fn arb_message() -> impl Strategy<Value = Message> {
        let id = || any::<[u8; 16]>().prop_map(DeviceId::from_bytes);
        prop_oneof![
            (
                (
                    any::<u16>(),
                    id(),
                    any::<bool>(),
                    any::<u64>(),
                    any::<u64>()
                ),
                (any::<u32>(), any::<u32>()),
                arb_cursors(),
                proptest::collection::vec("[a-z0-9_.-]{1,64}", 0..5),
            )
                .prop_map(
                    |((v, device, hub, hlc, wall), (max, window), cursors, subs)| {
                        Message::Hello(Hello {
                            protocol_version: v,
                            device,
                            role: if hub {
                                DeviceRole::Hub
                            } else {
                                DeviceRole::Terminal
                            },
                            hlc: Hlc::from_raw(hlc),
                            wall_ms: wall,
                            max_frame_bytes: max,
                            receive_window: window,
                            cursors,
                            subscriptions: subs,
                        })
                    }
                ),
            (
                (any::<u16>(), id(), any::<u64>(), any::<u64>()),
                (any::<u32>(), any::<u32>()),
                arb_cursors(),
            )
                .prop_map(|((v, device, hlc, wall), (max, window), cursors)| {
                    Message::HelloAck(HelloAck {
                        protocol_version: v,
                        device,
                        hlc: Hlc::from_raw(hlc),
                        wall_ms: wall,
                        max_frame_bytes: max,
                        receive_window: window,
                        cursors,
                    })
                }),
            (
                id(),
                proptest::collection::vec(arb_entry(), 1..4),
                proptest::collection::vec(arb_checkpoint(), 0..3),
                arb_checkpoint(),
            )
                .prop_map(|(origin, entries, checkpoints, seal)| {
                    Message::EventBatch(EventBatch {
                        origin,
                        entries,
                        checkpoints,
                        seal,
                    })
                }),
            (id(), any::<u64>()).prop_map(|(origin, seq)| Message::Ack(Ack { origin, seq })),
            any::<u32>().prop_map(|window| Message::Credit(Credit { window })),
            (id(), any::<u64>(), any::<u8>(), "[ -~]{0,60}").prop_map(
                |(origin, seq, code, detail)| Message::Reject(Reject {
                    origin,
                    seq,
                    reason: RejectReason::from_code(code),
                    detail,
                })
            ),
            (any::<u64>(), any::<u64>()).prop_map(|(hlc, wall_ms)| Message::Heartbeat(Heartbeat {
                hlc: Hlc::from_raw(hlc),
                wall_ms
            })),
            (any::<u8>(), "\\PC{0,60}").prop_map(|(code, detail)| Message::Close(Close {
                reason: CloseReason::from_code(code),
                detail,
            })),
        ]
    }

    fn round_trip(msg: &Message) -> Message {
        let bytes = encode_frame(msg, u32::MAX).unwrap();
        let mut d = FrameDecoder::new(u32::MAX);
        d.feed(&bytes);
        let back = d.next_frame().unwrap().unwrap();
        assert!(!d.is_mid_frame());
        back
    }

    proptest! {
        #[test]
        fn every_message_survives_encode_and_decode(msg in arb_message()) {
            prop_assert_eq!(round_trip(&msg), msg);
        }
    }

    #[test]
    fn a_huge_entry_count_is_refused_without_allocating_for_it() {
        let mut body = Vec::new();
        body.extend_from_slice(&[7; 16]);
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        body.extend_from_slice(&[2; 40]);
        let err = decode_body(3, &body).unwrap().unwrap_err();
        assert_eq!(err, BodyError::Truncated("entries"));
    }

    #[test]
    fn an_event_length_beyond_the_limit_is_refused_before_reading_it() {
        let mut body = Vec::new();
        body.extend_from_slice(&[7; 16]);
        body.extend_from_slice(&1u32.to_be_bytes());
        body.push(1);
        body.extend_from_slice(&[0; 64]);
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = decode_body(3, &body).unwrap().unwrap_err();
        assert!(
            matches!(err, BodyError::TooLong { what: "event", .. }),
            "{err}"
        );
    }

    #[test]
    fn bad_subscription_names_and_trailing_bytes_are_refused() {
        let hello = Message::Hello(Hello {
            protocol_version: 1,
            device: DeviceId::from_bytes([1; 16]),
            role: DeviceRole::Terminal,
            hlc: Hlc::ZERO,
            wall_ms: 0,
            max_frame_bytes: 1,
            receive_window: 1,
            cursors: vec![],
            subscriptions: vec!["Catalogue".into()],
        });
        let mut body = Vec::new();
        encode_body(&hello, &mut body);
        let err = decode_body(1, &body).unwrap().unwrap_err();
        assert_eq!(err, BodyError::BadModuleName("Catalogue".into()));

        let mut body = Vec::new();
        encode_body(&Message::Credit(Credit { window: 3 }), &mut body);
        body.push(0);
        assert_eq!(
            decode_body(5, &body).unwrap().unwrap_err(),
            BodyError::TrailingBytes(1)
        );
    }

    #[test]
    fn details_are_cut_at_a_character_boundary() {
        let close = Message::Close(Close {
            reason: CloseReason::Normal,
            detail: "ä".repeat(600),
        });
        let Message::Close(back) = round_trip(&close) else {
            panic!()
        };
        assert_eq!(back.detail, "ä".repeat(512));
    }
}

use pos_core::{DeviceId, EventId, Hlc, UserId};
use serde::{Deserialize, Serialize};

use crate::encoding;

/// Payloads above this size are refused: an event is a business fact, not a file.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
const MAX_NAME_BYTES: usize = 64;
const MAX_REASON_BYTES: usize = 256;

/// A blake3 chain hash (32 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The `prev_hash` of an origin's first record.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_slice(bytes: &[u8]) -> Option<ChainHash> {
        <[u8; 32]>::try_from(bytes).ok().map(ChainHash)
    }

    /// The link rule of the chain: `blake3(prev ‖ canonical)`.
    pub fn link(prev: &ChainHash, canonical: &[u8]) -> ChainHash {
        let mut h = blake3::Hasher::new();
        h.update(&prev.0);
        h.update(canonical);
        ChainHash(*h.finalize().as_bytes())
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainHash({})", &self.to_hex()[..16])
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// What a module asks to record; the log assigns id, origin, seq, clock and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    pub module: String,
    pub kind: String,
    pub actor: Option<UserId>,
    pub approver: Option<UserId>,
    pub reason: Option<String>,
    pub schema_version: u16,
    /// JSON by convention (readable in `pos audit log`); the chain hashes the bytes as given.
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDraft {
    #[error(
        "event {field} `{value}` is invalid: use 1 to 64 characters of a-z, 0-9, `_`, `-`, `.`"
    )]
    BadName { field: &'static str, value: String },
    #[error("event payload is {0} bytes, more than the 1 MiB limit")]
    PayloadTooLarge(usize),
    #[error("reason code is longer than 256 bytes")]
    ReasonTooLong,
    #[error("the approver cannot be the actor: a second person must approve")]
    SelfApproval,
}

impl EventDraft {
    /// A draft with a JSON payload from any serialisable value.
    pub fn json(module: &str, kind: &str, payload: &impl Serialize) -> Self {
        EventDraft {
            module: module.to_owned(),
            kind: kind.to_owned(),
            actor: None,
            approver: None,
            reason: None,
            schema_version: 1,
            // Serialising plain data structs to a Vec cannot fail (no maps with non-string keys
            // are used for payloads); fall back to `null` rather than panic if one ever is.
            payload: serde_json::to_vec(payload).unwrap_or_else(|_| b"null".to_vec()),
        }
    }

    pub fn by(mut self, actor: UserId) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn approved_by(mut self, approver: UserId, reason: &str) -> Self {
        self.approver = Some(approver);
        self.reason = Some(reason.to_owned());
        self
    }

    pub fn validate(&self) -> Result<(), InvalidDraft> {
        for (field, value) in [("module", &self.module), ("kind", &self.kind)] {
            let ok = !value.is_empty()
                && value.len() <= MAX_NAME_BYTES
                && value
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b));
            if !ok {
                return Err(InvalidDraft::BadName {
                    field,
                    value: value.clone(),
                });
            }
        }
        if self.payload.len() > MAX_PAYLOAD_BYTES {
            return Err(InvalidDraft::PayloadTooLarge(self.payload.len()));
        }
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.len() > MAX_REASON_BYTES)
        {
            return Err(InvalidDraft::ReasonTooLong);
        }
        if self.approver.is_some() && self.approver == self.actor {
            return Err(InvalidDraft::SelfApproval);
        }
        Ok(())
    }

    /// Seal the draft as record `seq` of `origin`, linked to `prev`.
    pub fn seal(
        self,
        id: EventId,
        origin: DeviceId,
        seq: u64,
        hlc: Hlc,
        prev_hash: ChainHash,
        scratch: &mut Vec<u8>,
    ) -> Event {
        let mut event = Event {
            id,
            origin,
            seq,
            hlc,
            module: self.module,
            kind: self.kind,
            actor: self.actor,
            approver: self.approver,
            reason: self.reason,
            schema_version: self.schema_version,
            payload: self.payload,
            prev_hash,
            hash: ChainHash::GENESIS,
        };
        event.hash = event.compute_hash(scratch);
        event
    }
}

/// One record of the log: the envelope of DESIGN.md. Events are never updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub origin: DeviceId,
    /// Gapless per origin, starting at 1.
    pub seq: u64,
    pub hlc: Hlc,
    pub module: String,
    pub kind: String,
    pub actor: Option<UserId>,
    pub approver: Option<UserId>,
    pub reason: Option<String>,
    pub schema_version: u16,
    pub payload: Vec<u8>,
    pub prev_hash: ChainHash,
    pub hash: ChainHash,
}

impl Event {
    /// The hash this record should have given its content and `prev_hash`.
    /// `scratch` is reused between calls to avoid an allocation per record.
    pub fn compute_hash(&self, scratch: &mut Vec<u8>) -> ChainHash {
        scratch.clear();
        encoding::encode_into(self, scratch);
        ChainHash::link(&self.prev_hash, scratch)
    }

    /// The payload as text, for people reading the trail.
    pub fn payload_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.payload)
    }
}

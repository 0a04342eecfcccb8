//! Canonical byte encoding of an event, format version 1.
//!
//! The chain hashes these bytes, so they must never change for a given version; a new layout
//! gets a new version byte and both stay decodable. Integers are big-endian.
//!
//! ```text
//! u8      format version (= 1)
//! [16]    event id (UUIDv7)
//! [16]    origin device id
//! u64     seq
//! u64     hybrid logical clock
//! str16   module            str16 = u16 length + UTF-8 bytes
//! str16   kind
//! opt     actor user id     opt = u8 0, or u8 1 followed by the value
//! opt     approver user id
//! opt     reason code (str16)
//! u16     payload schema version
//! u32     payload length, then the payload bytes
//! ```
//! `prev_hash` and `hash` are not part of the encoding: `hash = blake3(prev_hash ‖ encoding)`.

use pos_core::{DeviceId, EventId, Hlc, UserId};

use crate::event::{ChainHash, Event, MAX_PAYLOAD_BYTES};

pub const FORMAT_VERSION: u8 = 1;

pub(crate) fn encode_into(e: &Event, out: &mut Vec<u8>) {
    out.reserve(80 + e.module.len() + e.kind.len() + e.payload.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(e.id.as_bytes());
    out.extend_from_slice(e.origin.as_bytes());
    out.extend_from_slice(&e.seq.to_be_bytes());
    out.extend_from_slice(&e.hlc.raw().to_be_bytes());
    put_str(out, &e.module);
    put_str(out, &e.kind);
    put_opt_id(out, e.actor.as_ref().map(UserId::as_bytes));
    put_opt_id(out, e.approver.as_ref().map(UserId::as_bytes));
    match &e.reason {
        None => out.push(0),
        Some(r) => {
            out.push(1);
            put_str(out, r);
        }
    }
    out.extend_from_slice(&e.schema_version.to_be_bytes());
    // Payload size is bounded by MAX_PAYLOAD_BYTES (validated on append), well below u32::MAX.
    out.extend_from_slice(&(e.payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&e.payload);
}

/// The canonical bytes of `e`.
pub fn encode(e: &Event) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(e, &mut out);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Names and reasons are validated to at most 256 bytes; truncating the length here would
    // only ever affect a value that validation already refused.
    let len = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

fn put_opt_id(out: &mut Vec<u8>, id: Option<&[u8; 16]>) {
    match id {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(bytes);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record ends early while reading {0}")]
    Truncated(&'static str),
    #[error("unknown record format version {0}")]
    UnknownVersion(u8),
    #[error("{0} is not valid UTF-8")]
    BadUtf8(&'static str),
    #[error("bad option tag {0}")]
    BadTag(u8),
    #[error("payload length {0} exceeds the limit")]
    PayloadTooLarge(usize),
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
}

/// Decode canonical bytes back into an event linked to `prev_hash`; `hash` is recomputed.
/// Never panics on hostile input.
pub fn decode(bytes: &[u8], prev_hash: ChainHash) -> Result<Event, DecodeError> {
    let mut r = Reader { rest: bytes };
    let version = r.u8("version")?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let id = EventId::from_bytes(r.array("id")?);
    let origin = DeviceId::from_bytes(r.array("origin")?);
    let seq = u64::from_be_bytes(r.array("seq")?);
    let hlc = Hlc::from_raw(u64::from_be_bytes(r.array("hlc")?));
    let module = r.str16("module")?;
    let kind = r.str16("kind")?;
    let actor = r.opt("actor", |r| r.array("actor").map(UserId::from_bytes))?;
    let approver = r.opt("approver", |r| r.array("approver").map(UserId::from_bytes))?;
    let reason = r.opt("reason", |r| r.str16("reason"))?;
    let schema_version = u16::from_be_bytes(r.array("schema version")?);
    let len = u32::from_be_bytes(r.array("payload length")?) as usize;
    if len > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::PayloadTooLarge(len));
    }
    let payload = r.take(len, "payload")?.to_vec();
    if !r.rest.is_empty() {
        return Err(DecodeError::TrailingBytes(r.rest.len()));
    }
    let mut event = Event {
        id,
        origin,
        seq,
        hlc,
        module,
        kind,
        actor,
        approver,
        reason,
        schema_version,
        payload,
        prev_hash,
        hash: ChainHash::GENESIS,
    };
    event.hash = ChainHash::link(&prev_hash, bytes);
    Ok(event)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }
    fn str16(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let len = u16::from_be_bytes(self.array(what)?) as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadUtf8(what))
    }
    fn opt<T>(
        &mut self,
        what: &'static str,
        read: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => read(self).map(Some),
            tag => Err(DecodeError::BadTag(tag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventDraft;
    use proptest::prelude::*;

    fn arb_event() -> impl Strategy<Value = Event> {
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            any::<u64>(),
            any::<u64>(),
            "[a-z]{1,12}",
            "[a-z._]{1,20}",
            proptest::option::of(any::<[u8; 16]>()),
            proptest::option::of("[ -~]{0,40}"),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..300),
            any::<[u8; 32]>(),
        )
            .prop_map(
                |(id, origin, seq, hlc, module, kind, actor, reason, schema, payload, prev)| {
                    let draft = EventDraft {
                        module,
                        kind,
                        actor: actor.map(UserId::from_bytes),
                        approver: None,
                        reason,
                        schema_version: schema,
                        payload,
                    };
                    draft.seal(
                        EventId::from_bytes(id),
                        DeviceId::from_bytes(origin),
                        seq,
                        Hlc::from_raw(hlc),
                        ChainHash(prev),
                        &mut Vec::new(),
                    )
                },
            )
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(event in arb_event()) {
            let bytes = encode(&event);
            let back = decode(&bytes, event.prev_hash).unwrap();
            prop_assert_eq!(back, event);
        }

        #[test]
        fn decode_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes, ChainHash::GENESIS);
        }

        #[test]
        fn any_changed_byte_changes_the_hash(event in arb_event(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
            let mut bytes = encode(&event);
            let i = pos.index(bytes.len());
            bytes[i] ^= flip;
            prop_assert_ne!(ChainHash::link(&event.prev_hash, &bytes), event.hash);
        }
    }

    /// The hash of the fixed record below under format version 1. Never change it.
    const PINNED_V1_HASH: &str = "5d232d4a9aebea18fc431cea79b0969d1ac28a0165a8bfcbcdc5fe1d35bb97f1";

    #[test]
    fn layout_of_version_1_is_stable() {
        // A fixed record: if this hash changes, existing logs stop verifying. Bump the version.
        let draft = EventDraft {
            module: "stock".into(),
            kind: "moved".into(),
            actor: Some(UserId::from_bytes([7; 16])),
            approver: None,
            reason: Some("damaged".into()),
            schema_version: 1,
            payload: br#"{"qty":-1}"#.to_vec(),
        };
        let e = draft.seal(
            EventId::from_bytes([1; 16]),
            DeviceId::from_bytes([2; 16]),
            42,
            Hlc::from_parts(1_700_000_000_000, 3),
            ChainHash::GENESIS,
            &mut Vec::new(),
        );
        let bytes = encode(&e);
        assert_eq!(
            bytes.len(),
            1 + 16 + 16 + 8 + 8 + 7 + 7 + 17 + 1 + 10 + 2 + 4 + 10
        );
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(&bytes[33..41], &42u64.to_be_bytes());
        assert_eq!(
            e.hash.to_hex(),
            blake3::hash(&[&[0u8; 32][..], &bytes].concat())
                .to_hex()
                .as_str()
        );
        assert_eq!(e.hash.to_hex(), PINNED_V1_HASH);
    }
}

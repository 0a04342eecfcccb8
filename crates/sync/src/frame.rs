//! Frames: how messages are cut out of a byte stream.
//!
//! ```text
//! offset  size  field
//!      0     2  magic "3P" (0x33 0x50)
//!      2     1  frame format version (= 1)
//!      3     1  message type (1..=8, see `message`)
//!      4     4  body length, u32 big-endian
//!      8     n  body
//! ```
//! The header layout is frozen for every future version, so a peer can always read a Close that
//! says why it is being dropped. A frame (header included) is at most `max_frame_bytes`; a
//! header announcing more is refused as soon as its length field arrives, before any of the body
//! is waited for. After any error the stream has lost its framing: the decoder keeps returning
//! that error and the connection must be closed.

use crate::message::{decode_body, encode_body, type_name, Message};
use crate::wire::BodyError;

pub const MAGIC: [u8; 2] = *b"3P";
pub const FRAME_VERSION: u8 = 1;
pub const HEADER_BYTES: usize = 8;
/// The default limit for one frame: a batch of events, not a file transfer.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 4 << 20;
/// The smallest limit a device may announce: it must hold the largest single event.
pub const MIN_MAX_FRAME_BYTES: u32 = 2 << 20;

/// Why the byte stream could not be read. Every variant ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("not a 3PlugPOS sync frame (bad magic bytes)")]
    BadMagic,
    #[error(
        "frame format version {0} is not supported (this device reads version {FRAME_VERSION})"
    )]
    UnsupportedVersion(u8),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversized { len: u64, max: u32 },
    #[error("malformed {message} message: {error}")]
    Malformed {
        message: &'static str,
        error: BodyError,
    },
}

/// Encode `msg` as one frame, refusing to produce one larger than `max_frame_bytes`.
pub fn encode_frame(msg: &Message, max_frame_bytes: u32) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(FRAME_VERSION);
    out.push(msg.type_code());
    out.extend_from_slice(&[0; 4]);
    encode_body(msg, &mut out);
    let len = out.len() as u64;
    if len > u64::from(max_frame_bytes) {
        return Err(FrameError::Oversized {
            len,
            max: max_frame_bytes,
        });
    }
    // len <= max_frame_bytes, a u32, so the body length fits too.
    let body = (len - HEADER_BYTES as u64) as u32;
    out[4..8].copy_from_slice(&body.to_be_bytes());
    Ok(out)
}

/// Cuts messages out of a byte stream fed in arbitrary chunks.
///
/// Memory is bounded by what is fed and not yet taken: feed what one socket read returned,
/// then call [`FrameDecoder::next_frame`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    pos: usize,
    max_frame_bytes: u32,
    failed: Option<FrameError>,
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: u32) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            pos: 0,
            max_frame_bytes,
            failed: None,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Message>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.try_next() {
            Ok(msg) => Ok(msg),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = Vec::new();
                self.pos = 0;
                Err(e)
            }
        }
    }

    /// Whether part of a frame is buffered: at end of stream that frame was truncated.
    pub fn is_mid_frame(&self) -> bool {
        self.buf.len() > self.pos
    }

    fn try_next(&mut self) -> Result<Option<Message>, FrameError> {
        let avail = &self.buf[self.pos..];
        // Check each header field as soon as it arrives, so garbage is refused early.
        for (i, &byte) in avail.iter().take(MAGIC.len()).enumerate() {
            if byte != MAGIC[i] {
                return Err(FrameError::BadMagic);
            }
        }
        if let Some(&version) = avail.get(2) {
            if version != FRAME_VERSION {
                return Err(FrameError::UnsupportedVersion(version));
            }
        }
        let Some(&code) = avail.get(3) else {
            return Ok(None);
        };
        let Some(message) = type_name(code) else {
            return Err(FrameError::UnknownType(code));
        };
        let Some(len_bytes) = avail.get(4..HEADER_BYTES) else {
            return Ok(None);
        };
        let mut len = [0u8; 4];
        len.copy_from_slice(len_bytes);
        let total = HEADER_BYTES as u64 + u64::from(u32::from_be_bytes(len));
        if total > u64::from(self.max_frame_bytes) {
            return Err(FrameError::Oversized {
                len: total,
                max: self.max_frame_bytes,
            });
        }
        // total <= max_frame_bytes (a u32), so it fits a usize.
        let total = total as usize;
        let Some(body) = avail.get(HEADER_BYTES..total) else {
            return Ok(None);
        };
        let decoded = decode_body(code, body);
        self.pos += total;
        self.compact();
        match decoded {
            Some(Ok(msg)) => Ok(Some(msg)),
            Some(Err(error)) => Err(FrameError::Malformed { message, error }),
            None => Err(FrameError::UnknownType(code)),
        }
    }

    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            // Do not keep a large frame's buffer for the lifetime of the connection.
            if self.buf.capacity() > 256 * 1024 {
                self.buf.shrink_to(64 * 1024);
            }
        } else if self.pos >= 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::message::tests::arb_message;
    use crate::message::{Credit, Heartbeat};
    use pos_core::Hlc;
    use proptest::prelude::*;

    /// Feed `bytes` cut at `cuts` and collect frames until the first error.
    fn decode_chunked(
        d: &mut FrameDecoder,
        bytes: &[u8],
        cuts: &[usize],
    ) -> (Vec<Message>, Option<FrameError>) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();
        let mut frames = Vec::new();
        for pair in points.windows(2) {
            d.feed(&bytes[pair[0]..pair[1]]);
            loop {
                match d.next_frame() {
                    Ok(Some(m)) => frames.push(m),
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    /// A header with valid magic and version, so bodies get decoded, followed by random bytes.
    fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..10,
            proptest::collection::vec(any::<u8>(), 0..600),
            any::<bool>(),
        )
            .prop_map(|(kind, body, honest_length)| {
                let mut f = MAGIC.to_vec();
                f.push(FRAME_VERSION);
                f.push(kind);
                let len = if honest_length {
                    body.len() as u32
                } else {
                    body.len() as u32 / 2
                };
                f.extend_from_slice(&len.to_be_bytes());
                f.extend_from_slice(&body);
                f
            })
    }

    proptest! {
        #[test]
        fn random_bytes_in_any_chunking_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
            let _ = decode_chunked(&mut d, &bytes, &cuts);
        }

        #[test]
        fn random_bodies_behind_valid_headers_never_panic_nor_exceed_the_limit(
            frames in proptest::collection::vec(plausible_frame(), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
            max in 8u32..700,
        ) {
            let bytes = frames.concat();
            let mut d = FrameDecoder::new(max);
            let (decoded, _) = decode_chunked(&mut d, &bytes, &cuts);
            for m in decoded {
                prop_assert!(encode_frame(&m, u32::MAX).unwrap().len() <= max as usize);
            }
        }

        #[test]
        fn mutated_valid_frames_never_panic(
            msg in arb_message(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
            cut in any::<usize>(),
        ) {
            let mut bytes = encode_frame(&msg, u32::MAX).unwrap();
            for (at, x) in flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            bytes.truncate(cut % (bytes.len() + 1) + 1);
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
            let _ = decode_chunked(&mut d, &bytes, &[]);
        }

        #[test]
        fn messages_come_out_whole_and_in_order_however_the_stream_is_cut(
            msgs in proptest::collection::vec(arb_message(), 1..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..30),
        ) {
            let bytes: Vec<u8> = msgs
                .iter()
                .flat_map(|m| encode_frame(m, u32::MAX).unwrap())
                .collect();
            let mut d = FrameDecoder::new(u32::MAX);
            let (decoded, err) = decode_chunked(&mut d, &bytes, &cuts);
            prop_assert_eq!(err, None);
            prop_assert_eq!(decoded, msgs);
            prop_assert!(!d.is_mid_frame());
        }
    }

    fn heartbeat() -> Message {
        Message::Heartbeat(Heartbeat {
            hlc: Hlc::from_raw(5),
            wall_ms: 6,
        })
    }

    #[test]
    fn an_oversized_length_is_refused_as_soon_as_the_header_arrives() {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&[FRAME_VERSION, 3]);
        header.extend_from_slice(&u32::MAX.to_be_bytes());
        d.feed(&header);
        assert_eq!(
            d.next_frame(),
            Err(FrameError::Oversized {
                len: u64::from(u32::MAX) + 8,
                max: DEFAULT_MAX_FRAME_BYTES
            })
        );
        // The stream has lost its framing: the error stays, nothing more is buffered.
        d.feed(&encode_frame(&heartbeat(), 100).unwrap());
        assert!(d.next_frame().is_err());
        assert!(!d.is_mid_frame());
    }

    #[test]
    fn the_encoder_refuses_to_exceed_the_limit() {
        let credit = Message::Credit(Credit { window: 1 });
        assert_eq!(encode_frame(&credit, 12).unwrap().len(), 12);
        assert_eq!(
            encode_frame(&credit, 11),
            Err(FrameError::Oversized { len: 12, max: 11 })
        );
    }

    #[test]
    fn garbage_is_named_by_the_first_header_field_it_breaks() {
        let cases: [(&[u8], FrameError); 4] = [
            (b"G", FrameError::BadMagic),
            (b"3Q", FrameError::BadMagic),
            (b"3P\x02", FrameError::UnsupportedVersion(2)),
            (b"3P\x01\x09", FrameError::UnknownType(9)),
        ];
        for (bytes, expected) in cases {
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES);
            d.feed(bytes);
            assert_eq!(d.next_frame(), Err(expected));
        }
    }

    #[test]
    fn a_truncated_frame_waits_and_says_so() {
        let bytes = encode_frame(&heartbeat(), 100).unwrap();
        let mut d = FrameDecoder::new(100);
        d.feed(&bytes[..bytes.len() - 1]);
        assert_eq!(d.next_frame(), Ok(None));
        assert!(d.is_mid_frame());
        d.feed(&bytes[bytes.len() - 1..]);
        assert_eq!(d.next_frame(), Ok(Some(heartbeat())));
        assert!(!d.is_mid_frame());
    }

    #[test]
    fn a_frame_whose_length_cuts_its_body_short_is_malformed() {
        let mut bytes = encode_frame(&heartbeat(), 100).unwrap();
        bytes[7] -= 1;
        let mut d = FrameDecoder::new(100);
        d.feed(&bytes);
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::Malformed {
                message: "Heartbeat",
                error: BodyError::Truncated(_)
            })
        ));
    }
}

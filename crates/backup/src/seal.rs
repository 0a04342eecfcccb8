//! Encrypting and decrypting the segment stream (see [`crate::format`]).

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::format::{
    nonce, Header, Manifest, SegmentInfo, HEADER_HASH_BYTES, MAX_MANIFEST_BYTES,
    NONCE_PREFIX_BYTES, PREAMBLE_BYTES, TAG_BYTES,
};
use crate::key::{BackupKey, Secret};
use crate::BackupError;

/// Writes the header, then encrypts everything written into segments; [`SealWriter::finish`]
/// appends the manifest as the last segment.
pub struct SealWriter<W: Write> {
    out: W,
    cipher: XChaCha20Poly1305,
    prefix: [u8; NONCE_PREFIX_BYTES],
    header_hash: [u8; 32],
    chunk: usize,
    buf: Vec<u8>,
    index: u32,
    segments: Vec<SegmentInfo>,
    plaintext: u64,
}

impl<W: Write> SealWriter<W> {
    /// `header.key_check` and `header.nonce_prefix` are filled in here.
    pub fn new(mut out: W, mut header: Header, key: &BackupKey) -> Result<Self, BackupError> {
        let mut prefix = [0u8; NONCE_PREFIX_BYTES];
        getrandom::fill(&mut prefix).map_err(|e| BackupError::Random(e.to_string()))?;
        header.nonce_prefix = hex::encode(prefix);
        header.key_check = key.check_value(&prefix);
        let (bytes, header_hash) = header.encode()?;
        out.write_all(&bytes)?;
        Ok(SealWriter {
            out,
            cipher: XChaCha20Poly1305::new(key.bytes().into()),
            prefix,
            header_hash,
            chunk: header.chunk_bytes as usize,
            buf: Vec::with_capacity(header.chunk_bytes as usize),
            index: 0,
            segments: Vec::new(),
            plaintext: 0,
        })
    }

    fn seal(&mut self, plaintext: &[u8], last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.index, last);
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&n),
                Payload {
                    msg: plaintext,
                    aad: &self.header_hash,
                },
            )
            .map_err(|_| io::Error::other("encryption failed"))?;
        let len = u32::try_from(ct.len()).map_err(|_| io::Error::other("segment too large"))?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&ct)?;
        if !last {
            self.segments.push(SegmentInfo {
                bytes: len,
                blake3: blake3::hash(&ct).to_hex().to_string(),
            });
        }
        self.index = self
            .index
            .checked_add(1)
            .ok_or_else(|| io::Error::other("too many segments"))?;
        Ok(())
    }

    fn flush_chunk(&mut self) -> io::Result<()> {
        let chunk = std::mem::take(&mut self.buf);
        self.plaintext += chunk.len() as u64;
        self.seal(&chunk, false)?;
        self.buf = chunk;
        self.buf.clear();
        Ok(())
    }

    /// Seal what is buffered and the manifest (its `segments` and `archive_bytes` are filled
    /// in here); returns the writer, to be synced by the caller.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<W, BackupError> {
        if !self.buf.is_empty() {
            self.flush_chunk()?;
        }
        manifest.segments = std::mem::take(&mut self.segments);
        manifest.archive_bytes = self.plaintext;
        let json =
            serde_json::to_vec(&manifest).map_err(|e| BackupError::Internal(e.to_string()))?;
        self.seal(&json, true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> std::fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealWriter")
            .field("segments", &self.index)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Read a backup's header (no key needed): what a list shows.
pub fn read_header(r: &mut impl Read) -> Result<(Header, [u8; 32]), BackupError> {
    read_header_at(r).map(|(h, hash, _)| (h, hash))
}

/// The header, its hash, and where the first segment starts.
fn read_header_at(r: &mut impl Read) -> Result<(Header, [u8; 32], u64), BackupError> {
    let mut pre = [0u8; PREAMBLE_BYTES];
    read_exact_or(r, &mut pre, 0, "the file ends inside its header")?;
    let len = Header::preamble(&pre)?;
    let mut json = vec![0u8; len as usize];
    read_exact_or(
        r,
        &mut json,
        PREAMBLE_BYTES as u64,
        "the file ends inside its header",
    )?;
    let mut hash = [0u8; HEADER_HASH_BYTES];
    read_exact_or(
        r,
        &mut hash,
        (PREAMBLE_BYTES + json.len()) as u64,
        "the file ends inside its header",
    )?;
    let (header, hash) = Header::decode(&json, &hash)?;
    Ok((
        header,
        hash,
        (PREAMBLE_BYTES + json.len() + HEADER_HASH_BYTES) as u64,
    ))
}

fn read_exact_or(
    r: &mut impl Read,
    buf: &mut [u8],
    offset: u64,
    what: &str,
) -> Result<(), BackupError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => BackupError::Truncated {
            offset,
            what: what.to_owned(),
        },
        _ => BackupError::Io(e),
    })
}

/// Decrypts the data segments as a byte stream; at the manifest it checks every segment's
/// hash and ends. Errors come out of `read` as `io::Error`s wrapping a [`BackupError`]
/// (see [`BackupError::from_io`]).
pub struct OpenReader<R: Read> {
    inner: R,
    cipher: XChaCha20Poly1305,
    prefix: [u8; NONCE_PREFIX_BYTES],
    header_hash: [u8; 32],
    max_segment: usize,
    index: u32,
    offset: u64,
    plain: Vec<u8>,
    pos: usize,
    hashes: Vec<SegmentInfo>,
    manifest: Option<Manifest>,
}

impl<R: Read> OpenReader<R> {
    /// Read the header, derive the key from `secret` and check that it is this backup's.
    pub fn open(mut inner: R, secret: &Secret) -> Result<(Header, OpenReader<R>), BackupError> {
        let (header, header_hash, offset) = read_header_at(&mut inner)?;
        let key = secret.key_for(&header.key)?;
        let prefix = header.nonce_prefix()?;
        if key.check_value(&prefix) != header.key_check {
            return Err(BackupError::WrongKey);
        }
        Ok((
            header.clone(),
            OpenReader {
                inner,
                cipher: XChaCha20Poly1305::new(key.bytes().into()),
                prefix,
                header_hash,
                max_segment: header.chunk_bytes as usize + TAG_BYTES,
                index: 0,
                offset,
                plain: Vec::new(),
                pos: 0,
                hashes: Vec::new(),
                manifest: None,
            },
        ))
    }

    /// The manifest, once the stream has been read to its end.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    /// Read everything left (the caller did not need the data) and return the manifest.
    pub fn finish(mut self) -> Result<Manifest, BackupError> {
        io::copy(&mut self, &mut io::sink()).map_err(BackupError::from_io)?;
        self.manifest
            .ok_or_else(|| BackupError::Internal("no manifest after the last segment".into()))
    }

    /// The next segment: data (true) or the manifest (false).
    fn next_segment(&mut self) -> Result<bool, BackupError> {
        let at = self.offset;
        let mut len = [0u8; 4];
        match self.inner.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(BackupError::Truncated {
                    offset: at,
                    what: format!(
                        "the file ends after {} data segments, before its manifest \
                         (an interrupted copy?)",
                        self.index
                    ),
                })
            }
            Err(e) => return Err(BackupError::Io(e)),
        }
        let len = u32::from_be_bytes(len);
        let limit = self
            .max_segment
            .max(MAX_MANIFEST_BYTES as usize + TAG_BYTES);
        if (len as usize) < TAG_BYTES || len as usize > limit {
            return Err(BackupError::Damaged {
                offset: at,
                what: format!("segment {} has an impossible length {len}", self.index),
            });
        }
        let mut ct = vec![0u8; len as usize];
        read_exact_or(
            &mut self.inner,
            &mut ct,
            at + 4,
            &format!("the file ends inside segment {}", self.index),
        )?;
        self.offset = at + 4 + u64::from(len);
        let aad = self.header_hash;
        let attempt = |last: bool| {
            let n = nonce(&self.prefix, self.index, last);
            self.cipher.decrypt(
                XNonce::from_slice(&n),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
        };
        if len as usize <= self.max_segment {
            if let Ok(plain) = attempt(false) {
                self.hashes.push(SegmentInfo {
                    bytes: len,
                    blake3: blake3::hash(&ct).to_hex().to_string(),
                });
                self.plain = plain;
                self.pos = 0;
                self.index += 1;
                return Ok(true);
            }
        }
        let Ok(json) = attempt(true) else {
            return Err(BackupError::Damaged {
                offset: at,
                what: format!(
                    "segment {} (bytes {}..{}) does not decrypt: it was changed or damaged",
                    self.index, at, self.offset
                ),
            });
        };
        let manifest: Manifest =
            serde_json::from_slice(&json).map_err(|e| BackupError::Damaged {
                offset: at,
                what: format!("the manifest cannot be read: {e}"),
            })?;
        if manifest.segments != self.hashes {
            return Err(BackupError::Damaged {
                offset: at,
                what: "the manifest lists other segments than the file holds".into(),
            });
        }
        let mut extra = [0u8; 1];
        if self.inner.read(&mut extra)? != 0 {
            return Err(BackupError::Damaged {
                offset: self.offset,
                what: "bytes follow the manifest (something was appended)".into(),
            });
        }
        self.manifest = Some(manifest);
        Ok(false)
    }
}

impl<R: Read> std::fmt::Debug for OpenReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenReader")
            .field("segment", &self.index)
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.plain.len() {
                let n = out.len().min(self.plain.len() - self.pos);
                out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.manifest.is_some() || out.is_empty() {
                return Ok(0);
            }
            match self.next_segment() {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => return Err(io::Error::other(e)),
            }
        }
    }
}

//! The backup file format (version 1). No IO here: encoders and decoders over bytes.
//!
//! ```text
//! "3PLUGBAK"  u16 version  u32 header length  header (JSON)  blake3(header) (32 bytes)
//! segment*    u32 length  ciphertext          XChaCha20-Poly1305, one per chunk of the
//!                                             compressed archive; the last one is the manifest
//! ```
//! Segment `i`'s nonce is the header's 19-byte prefix, `i` as u32 big-endian and a last-segment
//! flag (the STREAM construction), and its associated data is the header's hash: segments
//! cannot be reordered, dropped, truncated or moved to another backup, and a changed header
//! fails every segment. The header is public (device, time, kind: what a list shows before
//! anyone types a passphrase); everything else is inside the encryption. The manifest holds
//! blake3 of every segment's ciphertext, so a damaged file is named by segment and offset.

use serde::{Deserialize, Serialize};

use crate::key::KeySpec;
use crate::BackupError;

pub const MAGIC: &[u8; 8] = b"3PLUGBAK";
pub const VERSION: u16 = 1;
/// magic + version + header length.
pub const PREAMBLE_BYTES: usize = 8 + 2 + 4;
pub const MAX_HEADER_BYTES: u32 = 64 * 1024;
pub const HEADER_HASH_BYTES: usize = 32;
pub const NONCE_PREFIX_BYTES: usize = 19;
pub const TAG_BYTES: usize = 16;
/// The largest plaintext chunk a header may declare.
pub const MAX_CHUNK_BYTES: u32 = 16 << 20;
/// The largest manifest accepted (it lists one hash per segment).
pub const MAX_MANIFEST_BYTES: u32 = 64 << 20;

/// What kind of backup: the schedule's, or made by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupKind {
    /// The daily backup.
    Daily,
    /// An hourly snapshot.
    Hourly,
    /// Made by `pos backup create` or before a restore.
    Manual,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Daily => "daily",
            BackupKind::Hourly => "hourly",
            BackupKind::Manual => "manual",
        }
    }
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BackupKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "daily" => Ok(BackupKind::Daily),
            "hourly" => Ok(BackupKind::Hourly),
            "manual" => Ok(BackupKind::Manual),
            other => Err(format!("{other:?} is not daily, hourly or manual")),
        }
    }
}

/// The device a backup was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    pub branch: String,
}

/// The public header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub created_ms: u64,
    pub kind: BackupKind,
    pub device: DeviceInfo,
    pub key: KeySpec,
    /// [`crate::BackupKey::check_value`] of the right key: a wrong passphrase is told apart
    /// from a damaged file.
    pub key_check: String,
    /// Hex of [`NONCE_PREFIX_BYTES`] random bytes.
    pub nonce_prefix: String,
    pub chunk_bytes: u32,
}

impl Header {
    pub fn nonce_prefix(&self) -> Result<[u8; NONCE_PREFIX_BYTES], BackupError> {
        hex::decode(&self.nonce_prefix)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(BackupError::Damaged {
                offset: 0,
                what: "the header's nonce is malformed".into(),
            })
    }

    /// The file's first bytes: preamble, header, header hash.
    pub fn encode(&self) -> Result<(Vec<u8>, [u8; 32]), BackupError> {
        let json = serde_json::to_vec(self).map_err(|e| BackupError::Internal(e.to_string()))?;
        let len = u32::try_from(json.len())
            .ok()
            .filter(|l| *l <= MAX_HEADER_BYTES)
            .ok_or_else(|| BackupError::Internal("header too large".into()))?;
        let hash = *blake3::hash(&json).as_bytes();
        let mut out = Vec::with_capacity(PREAMBLE_BYTES + json.len() + HEADER_HASH_BYTES);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&hash);
        Ok((out, hash))
    }

    /// The header's JSON length from the preamble (checked), so the caller reads that many
    /// bytes plus the hash.
    pub fn preamble(bytes: &[u8; PREAMBLE_BYTES]) -> Result<u32, BackupError> {
        if &bytes[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if version != VERSION {
            return Err(BackupError::UnsupportedVersion(version));
        }
        let len = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
        if len == 0 || len > MAX_HEADER_BYTES {
            return Err(BackupError::Damaged {
                offset: 10,
                what: format!("the header length {len} is impossible"),
            });
        }
        Ok(len)
    }

    /// The header from its JSON and stored hash.
    pub fn decode(json: &[u8], hash: &[u8; 32]) -> Result<(Header, [u8; 32]), BackupError> {
        let damaged = |what: String| BackupError::Damaged {
            offset: PREAMBLE_BYTES as u64,
            what,
        };
        if blake3::hash(json).as_bytes() != hash {
            return Err(damaged(
                "the header does not match its hash (the start of the file is damaged)".into(),
            ));
        }
        let header: Header = serde_json::from_slice(json)
            .map_err(|e| damaged(format!("the header cannot be read: {e}")))?;
        if header.chunk_bytes == 0 || header.chunk_bytes > MAX_CHUNK_BYTES {
            return Err(damaged(format!(
                "the chunk size {} is impossible",
                header.chunk_bytes
            )));
        }
        header.nonce_prefix()?;
        Ok((header, *hash))
    }
}

/// One file inside the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the data dir, `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub blake3: String,
}

/// One origin's chain as the snapshot holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub origin: String,
    pub seq: u64,
    pub head: String,
}

/// One segment of ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    pub bytes: u32,
    pub blake3: String,
}

/// The encrypted last segment: what the backup holds and how to check it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: i64,
    pub files: Vec<FileEntry>,
    pub chains: Vec<ChainHead>,
    /// Bytes of the compressed archive (the plaintext of the data segments).
    pub archive_bytes: u64,
    pub segments: Vec<SegmentInfo>,
    /// The version of `pos` that made it.
    pub made_by: String,
}

impl Manifest {
    pub fn db_bytes(&self) -> u64 {
        self.files
            .iter()
            .find(|f| f.path == pos_store::DB_FILE)
            .map_or(0, |f| f.bytes)
    }
}

/// Segment `index`'s nonce.
pub fn nonce(prefix: &[u8; NONCE_PREFIX_BYTES], index: u32, last: bool) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[..NONCE_PREFIX_BYTES].copy_from_slice(prefix);
    n[NONCE_PREFIX_BYTES..NONCE_PREFIX_BYTES + 4].copy_from_slice(&index.to_be_bytes());
    n[23] = u8::from(last);
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header() -> Header {
        Header {
            created_ms: 1_764_000_000_000,
            kind: BackupKind::Daily,
            device: DeviceInfo {
                id: "01".into(),
                name: "hub".into(),
                role: "hub".into(),
                branch: "main".into(),
            },
            key: KeySpec::KeyFile,
            key_check: "00".repeat(16),
            nonce_prefix: "ab".repeat(NONCE_PREFIX_BYTES),
            chunk_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_header_round_trips_and_any_change_is_caught() {
        let h = header();
        let (bytes, hash) = h.encode().unwrap();
        let pre: [u8; PREAMBLE_BYTES] = bytes[..PREAMBLE_BYTES].try_into().unwrap();
        let len = Header::preamble(&pre).unwrap() as usize;
        let json = &bytes[PREAMBLE_BYTES..PREAMBLE_BYTES + len];
        let stored: [u8; 32] = bytes[PREAMBLE_BYTES + len..].try_into().unwrap();
        assert_eq!(Header::decode(json, &stored).unwrap(), (h, hash));
        let mut bad = json.to_vec();
        bad[5] ^= 1;
        assert!(matches!(
            Header::decode(&bad, &stored),
            Err(BackupError::Damaged { .. })
        ));
    }

    #[test]
    fn other_files_and_versions_are_named() {
        let mut pre = *b"PK\x03\x04 zip files";
        assert!(matches!(
            Header::preamble(&pre),
            Err(BackupError::NotABackup)
        ));
        pre[..8].copy_from_slice(MAGIC);
        pre[8..10].copy_from_slice(&7u16.to_be_bytes());
        assert!(matches!(
            Header::preamble(&pre),
            Err(BackupError::UnsupportedVersion(7))
        ));
    }
}

//! Backup keys: from a passphrase through argon2id, or a key file of 32 random bytes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::BackupError;

/// A 256-bit key for XChaCha20-Poly1305.
#[derive(Clone, PartialEq, Eq)]
pub struct BackupKey([u8; 32]);

impl std::fmt::Debug for BackupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupKey([redacted])")
    }
}

impl BackupKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        BackupKey(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A new random key (for `pos backup keygen`).
    pub fn generate() -> Result<Self, BackupError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| BackupError::Random(e.to_string()))?;
        Ok(BackupKey(k))
    }

    /// The key file's text: 64 hex digits and a newline.
    pub fn to_file_text(&self) -> String {
        format!("{}\n", hex::encode(self.0))
    }

    /// Read a key file written by [`BackupKey::to_file_text`].
    pub fn read_file(path: &Path) -> Result<Self, BackupError> {
        let bad = |why: &str| BackupError::KeyFile {
            path: path.to_owned(),
            why: why.to_owned(),
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(&e.to_string()))?;
        if meta.len() > 1024 {
            return Err(bad("it is not a backup key file (too long)"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(&e.to_string()))?;
        let bytes = hex::decode(text.trim()).map_err(|_| bad("it does not hold 64 hex digits"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| bad("it does not hold 64 hex digits"))?;
        Ok(BackupKey(key))
    }

    /// Derive the key of a passphrase with `params` (argon2id).
    pub fn from_passphrase(passphrase: &str, params: &KdfParams) -> Result<Self, BackupError> {
        params.check()?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(params.m_kib, params.t, params.p, Some(32))
                .map_err(|e| BackupError::Kdf(e.to_string()))?,
        );
        let mut key = [0u8; 32];
        argon
            .hash_password_into(passphrase.as_bytes(), &params.salt()?, &mut key)
            .map_err(|e| BackupError::Kdf(e.to_string()))?;
        Ok(BackupKey(key))
    }

    /// The value stored in a header to recognise the right key (keyed by this key and the
    /// file's nonce, so two backups with the same key do not share it).
    pub(crate) fn check_value(&self, nonce_prefix: &[u8]) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(b"3PlugPOS backup key check v1");
        h.update(nonce_prefix);
        hex::encode(&h.finalize().as_bytes()[..16])
    }
}

/// argon2id parameters of a passphrase backup, stored in its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// 16 random bytes, hex.
    pub salt: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

/// Limits a header's parameters must respect: a damaged or hostile header must not make
/// opening a backup take gigabytes or hours.
const MAX_M_KIB: u32 = 1 << 20;
const MAX_T: u32 = 16;
const MAX_P: u32 = 8;

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane, a new salt: about half a second on a 2-core appliance,
    /// costly for anyone guessing passphrases on a stolen USB stick.
    pub fn recommended() -> Result<Self, BackupError> {
        Self::with_cost(64 * 1024, 3)
    }

    /// Explicit costs with a new salt (tests use small ones).
    pub fn with_cost(m_kib: u32, t: u32) -> Result<Self, BackupError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| BackupError::Random(e.to_string()))?;
        let params = KdfParams {
            salt: hex::encode(salt),
            m_kib,
            t,
            p: 1,
        };
        params.check()?;
        Ok(params)
    }

    fn salt(&self) -> Result<Vec<u8>, BackupError> {
        hex::decode(&self.salt)
            .ok()
            .filter(|s| (8..=64).contains(&s.len()))
            .ok_or_else(|| BackupError::Kdf("the salt in the header is not 8..64 hex bytes".into()))
    }

    fn check(&self) -> Result<(), BackupError> {
        if !(8..=MAX_M_KIB).contains(&self.m_kib)
            || !(1..=MAX_T).contains(&self.t)
            || !(1..=MAX_P).contains(&self.p)
        {
            return Err(BackupError::Kdf(format!(
                "argon2id parameters m={} KiB t={} p={} are outside the accepted range",
                self.m_kib, self.t, self.p
            )));
        }
        self.salt().map(drop)
    }
}

/// How a backup's key is made, as its header records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySpec {
    Passphrase(KdfParams),
    KeyFile,
}

/// What the user gives to open backups.
#[derive(Debug, Clone)]
pub enum Secret {
    Passphrase(String),
    Key(BackupKey),
}

impl Secret {
    /// The key for a backup whose header says `spec`.
    pub fn key_for(&self, spec: &KeySpec) -> Result<BackupKey, BackupError> {
        match (self, spec) {
            (Secret::Passphrase(p), KeySpec::Passphrase(params)) => {
                BackupKey::from_passphrase(p, params)
            }
            (Secret::Key(k), KeySpec::KeyFile) => Ok(k.clone()),
            (Secret::Passphrase(_), KeySpec::KeyFile) => Err(BackupError::WrongSecretKind(
                "this backup was made with a key file, not a passphrase (use --key-file)",
            )),
            (Secret::Key(_), KeySpec::Passphrase(_)) => Err(BackupError::WrongSecretKind(
                "this backup was made with a passphrase, not a key file",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_passphrase_gives_the_same_key_with_the_same_salt_only() {
        let params = KdfParams::with_cost(64, 1).unwrap();
        let a = BackupKey::from_passphrase("correct horse", &params).unwrap();
        assert_eq!(
            a,
            BackupKey::from_passphrase("correct horse", &params).unwrap()
        );
        assert_ne!(
            a,
            BackupKey::from_passphrase("correct horsE", &params).unwrap()
        );
        let other = KdfParams::with_cost(64, 1).unwrap();
        assert_ne!(
            a,
            BackupKey::from_passphrase("correct horse", &other).unwrap()
        );
    }

    #[test]
    fn hostile_parameters_are_refused_before_any_work() {
        let mut params = KdfParams::with_cost(64, 1).unwrap();
        params.m_kib = u32::MAX;
        assert!(matches!(
            BackupKey::from_passphrase("x", &params),
            Err(BackupError::Kdf(_))
        ));
        params.m_kib = 64;
        params.salt = "zz".into();
        assert!(BackupKey::from_passphrase("x", &params).is_err());
    }

    #[test]
    fn a_key_file_round_trips_and_junk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.key");
        let key = BackupKey::generate().unwrap();
        std::fs::write(&path, key.to_file_text()).unwrap();
        assert_eq!(BackupKey::read_file(&path).unwrap(), key);
        std::fs::write(&path, "not a key\n").unwrap();
        let err = BackupKey::read_file(&path).unwrap_err().to_string();
        assert!(err.contains("64 hex digits"), "{err}");
    }
}

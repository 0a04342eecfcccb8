//! ed25519 device keys and their text file format.
//!
//! Secret key file: one line `3plugpos-ed25519-secret-v1 <64 hex chars>`.
//! Public key file: one line `3plugpos-ed25519-public-v1 <64 hex chars>`.

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

const SECRET_TAG: &str = "3plugpos-ed25519-secret-v1";
const PUBLIC_TAG: &str = "3plugpos-ed25519-public-v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("not a 3PlugPOS {0} key file (expected a line starting with `{1}`)")]
    WrongFormat(&'static str, &'static str),
    #[error("the key is not 64 hex characters")]
    BadHex,
    #[error("the public key is not a valid ed25519 point")]
    BadPoint,
    #[error("the operating system's random number generator failed: {0}")]
    NoRandomness(String),
}

/// A device's signing key. Never leaves the device; the file is mode 0600.
pub struct DeviceKey(SigningKey);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey(public {})", self.public())
    }
}

impl DeviceKey {
    pub fn generate() -> Result<Self, KeyFileError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyFileError::NoRandomness(e.to_string()))?;
        Ok(DeviceKey(SigningKey::from_bytes(&seed)))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        DeviceKey(SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    pub fn to_file_text(&self) -> String {
        format!("{SECRET_TAG} {}\n", hex::encode(self.0.to_bytes()))
    }

    pub fn from_file_text(text: &str) -> Result<Self, KeyFileError> {
        let bytes = parse_tagged(text, SECRET_TAG, "secret")?;
        Ok(DeviceKey::from_seed(bytes))
    }
}

/// A device's public key, known to every verifier of its chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        key.verify(message, &ed25519_dalek::Signature::from_bytes(signature))
            .is_ok()
    }

    /// Short form for messages: the first 8 bytes in hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.0[..8])
    }

    pub fn to_file_text(&self) -> String {
        format!("{PUBLIC_TAG} {}\n", hex::encode(self.0))
    }

    pub fn from_file_text(text: &str) -> Result<Self, KeyFileError> {
        let bytes = parse_tagged(text, PUBLIC_TAG, "public")?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| KeyFileError::BadPoint)?;
        Ok(PublicKey(bytes))
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

fn parse_tagged(
    text: &str,
    tag: &'static str,
    what: &'static str,
) -> Result<[u8; 32], KeyFileError> {
    let rest = text
        .trim()
        .strip_prefix(tag)
        .ok_or(KeyFileError::WrongFormat(what, tag))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(rest.trim(), &mut out).map_err(|_| KeyFileError::BadHex)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_round_trip() {
        let key = DeviceKey::generate().unwrap();
        let again = DeviceKey::from_file_text(&key.to_file_text()).unwrap();
        assert_eq!(key.public(), again.public());
        let public = PublicKey::from_file_text(&key.public().to_file_text()).unwrap();
        assert_eq!(public, key.public());
    }

    #[test]
    fn signatures_verify_only_with_the_right_key_and_message() {
        let a = DeviceKey::from_seed([1; 32]);
        let b = DeviceKey::from_seed([2; 32]);
        let sig = a.sign(b"hello");
        assert!(a.public().verify(b"hello", &sig));
        assert!(!b.public().verify(b"hello", &sig));
        assert!(!a.public().verify(b"hellO", &sig));
    }

    #[test]
    fn wrong_key_files_are_named() {
        let key = DeviceKey::from_seed([1; 32]);
        assert_eq!(
            DeviceKey::from_file_text(&key.public().to_file_text()).unwrap_err(),
            KeyFileError::WrongFormat("secret", SECRET_TAG)
        );
        assert_eq!(
            DeviceKey::from_file_text("3plugpos-ed25519-secret-v1 zz").unwrap_err(),
            KeyFileError::BadHex
        );
    }
}

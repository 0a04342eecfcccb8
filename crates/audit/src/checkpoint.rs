use pos_core::{DeviceId, Hlc};
use serde::{Deserialize, Serialize};

use crate::event::ChainHash;
use crate::keys::{DeviceKey, PublicKey};

const DOMAIN: &[u8] = b"3PlugPOS checkpoint v1\0";

/// A device's signature over the head of its chain at `seq`: everything up to `seq` is fixed.
///
/// Written every [`crate::CHECKPOINT_INTERVAL`] events and on demand (shift close); the store
/// also keeps one rolling "head seal" per origin, re-signed at every commit, so a truncated or
/// extended tail is caught even between checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub origin: DeviceId,
    pub seq: u64,
    pub head: ChainHash,
    pub hlc: Hlc,
    pub key: PublicKey,
    #[serde(with = "signature_hex")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    pub fn sign(key: &DeviceKey, origin: DeviceId, seq: u64, head: ChainHash, hlc: Hlc) -> Self {
        let signature = key.sign(&message(origin, seq, &head, hlc));
        Checkpoint {
            origin,
            seq,
            head,
            hlc,
            key: key.public(),
            signature,
        }
    }

    /// Whether the signature is valid for the key it names (not whether that key is trusted).
    pub fn signature_valid(&self) -> bool {
        self.key.verify(
            &message(self.origin, self.seq, &self.head, self.hlc),
            &self.signature,
        )
    }
}

fn message(origin: DeviceId, seq: u64, head: &ChainHash, hlc: Hlc) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 16 + 8 + 32 + 8);
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(origin.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&head.0);
    m.extend_from_slice(&hlc.raw().to_be_bytes());
    m
}

mod signature_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_binds_origin_seq_head_and_time() {
        let key = DeviceKey::from_seed([9; 32]);
        let origin = DeviceId::from_bytes([1; 16]);
        let cp = Checkpoint::sign(&key, origin, 10, ChainHash([5; 32]), Hlc::from_raw(77));
        assert!(cp.signature_valid());
        for tampered in [
            Checkpoint {
                seq: 11,
                ..cp.clone()
            },
            Checkpoint {
                head: ChainHash([6; 32]),
                ..cp.clone()
            },
            Checkpoint {
                origin: DeviceId::from_bytes([2; 16]),
                ..cp.clone()
            },
            Checkpoint {
                hlc: Hlc::from_raw(78),
                ..cp.clone()
            },
            Checkpoint {
                key: DeviceKey::from_seed([8; 32]).public(),
                ..cp.clone()
            },
        ] {
            assert!(!tampered.signature_valid(), "{tampered:?}");
        }
    }
}

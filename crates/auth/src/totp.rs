//! TOTP second factor (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits — what every
//! authenticator app speaks. The HOTP arithmetic comes from `totp-rs`; the window, replay and
//! constant-time rules are ours.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// Step length in seconds.
pub const TOTP_STEP_S: u64 = 30;
/// Digits of a code.
pub const TOTP_DIGITS: usize = 6;
/// Secret length generated (160 bits, as RFC 4226 recommends).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Shortest secret accepted from elsewhere (RFC 4226: at least 128 bits).
const MIN_SECRET_BYTES: usize = 16;
const MAX_SECRET_BYTES: usize = 64;

/// A shared TOTP secret. `Debug` never shows it.
#[derive(Clone)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("that is not a valid code or secret: a code is 6 digits, a secret is base32 (A-Z, 2-7) of at least 128 bits")]
    Format,
    #[error("wrong authenticator code: check the phone's clock and try the current code")]
    Wrong,
    #[error("that authenticator code was already used: wait for the next one")]
    Replayed,
}

impl TotpSecret {
    /// 20 fresh random bytes from the OS.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; TOTP_SECRET_BYTES];
        crate::credential::fill_random(&mut bytes);
        TotpSecret(bytes)
    }

    /// A secret from raw bytes (16 to 64 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if (MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            Ok(TotpSecret(bytes.to_vec()))
        } else {
            Err(TotpError::Format)
        }
    }

    /// Parse base32 as stored in a `credential_set` event or typed from an app; spaces, dashes,
    /// padding and lowercase are tolerated.
    pub fn from_base32(s: &str) -> Result<Self, TotpError> {
        if s.len() > 4 * MAX_SECRET_BYTES {
            return Err(TotpError::Format);
        }
        let cleaned: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '='))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !cleaned
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(TotpError::Format);
        }
        let bytes = totp_rs::Secret::Encoded(cleaned)
            .to_bytes()
            .map_err(|_| TotpError::Format)?;
        Self::from_bytes(&bytes)
    }

    /// Unpadded RFC 4648 base32, as authenticator apps expect.
    pub fn to_base32(&self) -> String {
        match totp_rs::Secret::Raw(self.0.clone()).to_encoded() {
            totp_rs::Secret::Encoded(s) => s,
            totp_rs::Secret::Raw(_) => String::new(),
        }
    }

    /// The `otpauth://` URI to show as a QR code when enrolling a phone.
    pub fn otpauth_uri(&self, account: &str, issuer: &str) -> String {
        let issuer = percent_encode(issuer);
        format!(
            "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={TOTP_DIGITS}&period={TOTP_STEP_S}",
            percent_encode(account),
            self.to_base32(),
        )
    }

    fn engine(&self, digits: usize) -> TOTP {
        TOTP::new_unchecked(Algorithm::SHA1, digits, 0, TOTP_STEP_S, self.0.clone())
    }
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The code for `unix_s` with `digits` digits (6 in production; 8 for the RFC test vectors).
pub(crate) fn totp_code_digits(secret: &TotpSecret, unix_s: u64, digits: usize) -> String {
    secret.engine(digits.clamp(6, 9)).generate(unix_s)
}

/// The current 6-digit code, as the user's app shows it.
pub fn totp_code(secret: &TotpSecret, unix_s: u64) -> String {
    totp_code_digits(secret, unix_s, TOTP_DIGITS)
}

/// Check `code` at wall time `unix_s`, accepting the previous, current and next step (±30 s of
/// clock drift between phone and till). Returns the matched step, which the caller stores: a
/// step at or before `last_used_step` is `Replayed`, so a shoulder-surfed code cannot be used
/// again. All three candidates are compared in constant time.
pub fn verify_totp(
    secret: &TotpSecret,
    code: &str,
    unix_s: u64,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Format);
    }
    let now = unix_s / TOTP_STEP_S;
    let engine = secret.engine(TOTP_DIGITS);
    let mut fresh: Option<u64> = None;
    let mut replayed = false;
    for step in [now.checked_sub(1), Some(now), now.checked_add(1)]
        .into_iter()
        .flatten()
    {
        let candidate = engine.generate(step.saturating_mul(TOTP_STEP_S));
        let matched: bool = candidate.as_bytes().ct_eq(code.as_bytes()).into();
        if matched {
            if last_used_step.is_some_and(|last| step <= last) {
                replayed = true;
            } else if fresh.is_none() {
                fresh = Some(step);
            }
        }
    }
    match fresh {
        Some(step) => Ok(step),
        None if replayed => Err(TotpError::Replayed),
        None => Err(TotpError::Wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA1 column.
    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        for (t, expected) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp_code_digits(&secret, t, 8), expected, "t={t}");
            // The 6-digit code is the same truncation, modulo 10^6.
            assert_eq!(totp_code(&secret, t), expected[2..], "t={t}");
        }
    }

    #[test]
    fn base32_round_trip_and_tolerance() {
        let s = TotpSecret::generate();
        let b32 = s.to_base32();
        assert_eq!(b32.len(), 32);
        let back = TotpSecret::from_base32(&b32.to_lowercase()).unwrap();
        assert_eq!(back.0, s.0);
        let spaced: String = b32
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(TotpSecret::from_base32(&spaced).unwrap().0, s.0);
        assert!(matches!(
            TotpSecret::from_base32("AAAA"),
            Err(TotpError::Format)
        ));
        assert!(TotpSecret::from_base32("not base32!").is_err());
        assert!(TotpSecret::from_base32(&"A".repeat(10_000)).is_err());
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = TotpSecret::generate();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(&s.to_base32()));
        assert!(!dbg.contains(&format!("{:?}", s.0)));
    }

    #[test]
    fn uri_has_the_parameters() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let uri = s.otpauth_uri("anna smith", "3PlugPOS Main St");
        assert_eq!(
            uri,
            "otpauth://totp/3PlugPOS%20Main%20St:anna%20smith?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=3PlugPOS%20Main%20St&algorithm=SHA1&digits=6&period=30"
        );
    }
}

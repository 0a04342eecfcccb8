//! Secrets users log in with: policy checks, argon2id hashing and generation.
//!
//! No function here ever puts a secret into an error, a `Debug` or a `Display` output.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

/// How a user proves who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// 4 to 8 digits at the till.
    Pin,
    /// Back-office roles.
    Password,
    /// A barcode on a staff card, scanned at the till (hashed like a PIN).
    Badge,
    /// RFC 6238 second factor; its verifier is the base32 secret.
    Totp,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Pin => "pin",
            CredentialKind::Password => "password",
            CredentialKind::Badge => "badge",
            CredentialKind::Totp => "totp",
        }
    }

    /// Whether this kind answers the first factor (what `decide_login` checks the secret against).
    pub fn is_first_factor(self) -> bool {
        !matches!(self, CredentialKind::Totp)
    }
}

impl std::fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CredentialKind {
    type Err = crate::permission::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [CredentialKind; 4] = [
            CredentialKind::Pin,
            CredentialKind::Password,
            CredentialKind::Badge,
            CredentialKind::Totp,
        ];
        ALL.into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                crate::permission::UnknownName::new(
                    "credential kind",
                    s,
                    ALL.iter().map(|k| k.as_str()),
                )
            })
    }
}

/// Password rules for back-office roles.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Minimum length in characters (12: long beats complex, per NIST SP 800-63B).
    pub min_length: usize,
    /// How many previous passwords may not be reused; the store keeps this many verifiers
    /// (the current one included) and passes them to [`check_password`].
    pub history: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 12,
            history: 5,
        }
    }
}

/// Why a new secret was refused. Messages say what is required and never echo the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the secret is empty")]
    Empty,
    #[error("a PIN is 4 to 8 digits (0-9)")]
    PinFormat,
    #[error("that PIN is too easy to guess (one digit repeated, or digits counting up or down): choose another")]
    PinTooSimple,
    #[error("the password is too short: use at least {min} characters")]
    TooShort { min: usize },
    #[error("the secret is too long: use at most {max} characters")]
    TooLong { max: usize },
    #[error("that password is too common or too predictable: choose another (a few unrelated words work well)")]
    Common,
    #[error("the password must not contain the user name")]
    ContainsName,
    #[error("that password was used recently: choose one you have not used before")]
    Reused,
    #[error("a badge code is 6 to 64 printable ASCII characters without spaces")]
    BadgeFormat,
    #[error("could not hash the secret: {0}")]
    Hashing(String),
}

/// Longest password accepted, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest secret [`hash_secret`] and [`verify_secret`] accept, in bytes (128 four-byte
/// characters fit): bounds the work an attacker can make one login cost.
pub const MAX_SECRET_BYTES: usize = 512;

/// A PIN: 4 to 8 ASCII digits, not all the same digit, not a straight run up or down (wrapping
/// 9→0 counts too, so 7890 and 2109 are refused) — the first guesses of anyone at the till.
pub fn check_pin(pin: &str) -> Result<(), CredentialError> {
    if pin.is_empty() {
        return Err(CredentialError::Empty);
    }
    let digits = pin.as_bytes();
    if !(4..=8).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return Err(CredentialError::PinFormat);
    }
    let steps: Vec<u8> = digits.windows(2).map(|w| (10 + w[1] - w[0]) % 10).collect();
    let simple = [0, 1, 9].iter().any(|s| steps.iter().all(|x| x == s));
    if simple {
        return Err(CredentialError::PinTooSimple);
    }
    Ok(())
}

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

fn common_entries() -> impl Iterator<Item = &'static str> {
    COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Lowercase letters only: "P@ss-word 123!" → "psword"; what remains of a variant of a common
/// password once digits and punctuation are gone.
fn letters_only(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_common(password: &str) -> bool {
    let lower = password.to_lowercase();
    let letters = letters_only(password);
    let distinct: std::collections::BTreeSet<char> = lower.chars().collect();
    if distinct.len() < 4 {
        return true;
    }
    common_entries().any(|entry| {
        if lower == entry {
            return true;
        }
        let entry_letters = letters_only(entry);
        !entry_letters.is_empty() && entry_letters == letters
    })
}

/// A new password: `min_length..=128` characters, not a common password (in any case, with or
/// without added digits and punctuation), not fewer than 4 distinct characters, not containing
/// the user name (names of 3+ characters), and not matching any of `previous_verifiers` (PHC
/// strings; pass the current one too). Reuse is checked last because each costs an argon2 run.
pub fn check_password(
    password: &str,
    user_name: &str,
    policy: &PasswordPolicy,
    previous_verifiers: &[String],
) -> Result<(), CredentialError> {
    if password.is_empty() {
        return Err(CredentialError::Empty);
    }
    let len = password.chars().count();
    if len < policy.min_length {
        return Err(CredentialError::TooShort {
            min: policy.min_length,
        });
    }
    if len > MAX_PASSWORD_CHARS || password.len() > MAX_SECRET_BYTES {
        return Err(CredentialError::TooLong {
            max: MAX_PASSWORD_CHARS,
        });
    }
    if is_common(password) {
        return Err(CredentialError::Common);
    }
    let name = user_name.trim().to_lowercase();
    if name.chars().count() >= 3 && password.to_lowercase().contains(&name) {
        return Err(CredentialError::ContainsName);
    }
    if previous_verifiers
        .iter()
        .any(|v| verify_secret(password, v))
    {
        return Err(CredentialError::Reused);
    }
    Ok(())
}

/// A badge barcode: 6 to 64 printable ASCII characters, no spaces (scanners send exactly that).
pub fn check_badge(code: &str) -> Result<(), CredentialError> {
    if code.is_empty() {
        return Err(CredentialError::Empty);
    }
    let ok = (6..=64).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(CredentialError::BadgeFormat)
    }
}

/// argon2id memory in KiB. 19 MiB, 2 passes, 1 lane is the OWASP Password Storage Cheat Sheet
/// baseline: memory-hard enough that GPU guessing of a stolen database is costly, yet cheap
/// enough for a 2-core appliance to verify a PIN at the till in tens of milliseconds
/// and to run a few logins at once without running out of memory. One lane because the
/// appliance should keep its other core for the sale in progress.
pub const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_LANES: u32 = 1;
/// Hash output length in bytes.
pub const ARGON2_OUTPUT_LEN: usize = 32;

/// Upper bounds on the parameters of a stored hash that [`verify_secret`] will run, so that a
/// forged verifier (say, synced from a rogue device) cannot make one login allocate gigabytes.
const VERIFY_MAX_MEMORY_KIB: u32 = 256 * 1024;
const VERIFY_MAX_ITERATIONS: u32 = 16;
const VERIFY_MAX_LANES: u32 = 8;

fn production_argon2() -> Result<Argon2<'static>, CredentialError> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_LANES,
        Some(ARGON2_OUTPUT_LEN),
    )
    .map_err(|e| CredentialError::Hashing(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash a PIN, password or badge code for storage: argon2id with the production parameters and
/// a fresh random 16-byte salt, as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash_secret(secret: &str) -> Result<String, CredentialError> {
    if secret.len() > MAX_SECRET_BYTES {
        return Err(CredentialError::TooLong {
            max: MAX_SECRET_BYTES,
        });
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| CredentialError::Hashing(e.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| CredentialError::Hashing(e.to_string()))?;
    let hash = production_argon2()?
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| CredentialError::Hashing(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `secret` matches the PHC string `phc`. False for a malformed string, for any algorithm
/// other than argon2id v19, and for parameters beyond sane bounds. The hash comparison inside
/// argon2 is constant-time.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    if secret.len() > MAX_SECRET_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(0x13) {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > VERIFY_MAX_MEMORY_KIB
        || params.t_cost() > VERIFY_MAX_ITERATIONS
        || params.p_cost() > VERIFY_MAX_LANES
        || hash.hash.is_none_or(|h| h.len() < 16 || h.len() > 64)
    {
        return false;
    }
    Argon2::default()
        .verify_password(secret.as_bytes(), &hash)
        .is_ok()
}

/// An argon2id hash (production parameters) of a secret nobody knows, verified against when the
/// user does not exist so that a refusal takes as long for an unknown name as for a wrong secret.
pub(crate) const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$WDB3/lT+RRDihacZCnKBHA$lTWRt1rvgCn/7HjpnCSustQX+ZScB++5FjMWpE5Db7c";

/// The key under which the store indexes a badge, so a scan finds its user without an argon2 run
/// per row: blake3 keyed by a key derived from the branch's secret salt. Without the salt the
/// keys of short badge codes cannot be brute-forced from a stolen database.
pub fn badge_lookup_key(branch_salt: &[u8], code: &str) -> String {
    let key = blake3::derive_key("3PlugPOS 2025-01 badge lookup key v1", branch_salt);
    hex::encode(blake3::keyed_hash(&key, code.as_bytes()).as_bytes())
}

/// Fill `buf` from the operating system's random number generator.
///
/// # Panics
/// Only if the OS generator fails, which on Linux means the kernel cannot provide randomness at
/// all; continuing with predictable secrets would be worse than stopping.
pub(crate) fn fill_random(buf: &mut [u8]) {
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed ({e}); refusing to create predictable secrets");
    }
}

/// Uniform random picks from `alphabet` (rejection sampling: no modulo bias).
fn random_from(alphabet: &[u8], len: usize) -> String {
    let n = alphabet.len();
    if n == 0 || n > 256 {
        return String::new();
    }
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf);
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(char::from(alphabet[b as usize % n]));
            }
        }
    }
    out
}

/// Letters and digits that cannot be misread on a receipt or screen (no 0/O, 1/l/I).
const OTP_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A 16-character one-time password (about 93 bits) for first-run bootstrap and resets; shown
/// once, and the account is marked must-change. Always passes [`check_password`] under the
/// default policy for any user name it does not contain.
pub fn generate_one_time_password() -> String {
    loop {
        let candidate = random_from(OTP_ALPHABET, 16);
        if check_password(&candidate, "", &PasswordPolicy::default(), &[]).is_ok() {
            return candidate;
        }
    }
}

/// A random PIN of `len` digits (clamped to 4..=8) that passes [`check_pin`].
pub fn generate_pin(len: usize) -> String {
    let len = len.clamp(4, 8);
    loop {
        let candidate = random_from(b"0123456789", len);
        if check_pin(&candidate).is_ok() {
            return candidate;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_is_valid_and_uses_production_params() {
        let hash = PasswordHash::new(DUMMY_PHC).unwrap();
        let params = Params::try_from(&hash).unwrap();
        assert_eq!(params.m_cost(), ARGON2_MEMORY_KIB);
        assert_eq!(params.t_cost(), ARGON2_ITERATIONS);
        assert_eq!(params.p_cost(), ARGON2_LANES);
        assert!(!verify_secret("", DUMMY_PHC));
    }

    #[test]
    fn pins() {
        for ok in ["2580", "1357", "00112233", "9021", "4711"] {
            assert_eq!(check_pin(ok), Ok(()), "{ok}");
        }
        for simple in [
            "0000", "1234", "9876", "7890", "2109", "12345678", "88888888",
        ] {
            assert_eq!(
                check_pin(simple),
                Err(CredentialError::PinTooSimple),
                "{simple}"
            );
        }
        for bad in ["123", "123456789", "12a4", "١٢٣٤", " 2580", "25 80"] {
            assert_eq!(check_pin(bad), Err(CredentialError::PinFormat), "{bad}");
        }
        assert_eq!(check_pin(""), Err(CredentialError::Empty));
    }

    #[test]
    fn badges() {
        assert_eq!(check_badge("EMP-000123"), Ok(()));
        assert_eq!(check_badge("12345"), Err(CredentialError::BadgeFormat));
        assert_eq!(check_badge("EMP 000123"), Err(CredentialError::BadgeFormat));
        assert_eq!(
            check_badge(&"x".repeat(65)),
            Err(CredentialError::BadgeFormat)
        );
        assert_eq!(check_badge("émployé-1"), Err(CredentialError::BadgeFormat));
    }

    #[test]
    fn badge_keys_depend_on_salt_and_code() {
        let a = badge_lookup_key(b"branch-a", "EMP-1");
        assert_eq!(a, badge_lookup_key(b"branch-a", "EMP-1"));
        assert_ne!(a, badge_lookup_key(b"branch-b", "EMP-1"));
        assert_ne!(a, badge_lookup_key(b"branch-a", "EMP-2"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn malformed_or_hostile_verifiers_are_refused() {
        for phc in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            // argon2i / argon2d are not accepted even if otherwise valid
            "$argon2i$v=19$m=19456,t=2,p=1$n2Df5vzRb0N4qmbRGlG0Hg$4uBZ1ZcX2WBz3Ovo9V3tLg7J6zvNnGbjDIlB7bX7B3g",
            // 4 GiB of memory: refused before anything is allocated
            "$argon2id$v=19$m=4194304,t=2,p=1$n2Df5vzRb0N4qmbRGlG0Hg$4uBZ1ZcX2WBz3Ovo9V3tLg7J6zvNnGbjDIlB7bX7B3g",
            "$argon2id$v=19$m=19456,t=1000,p=1$n2Df5vzRb0N4qmbRGlG0Hg$4uBZ1ZcX2WBz3Ovo9V3tLg7J6zvNnGbjDIlB7bX7B3g",
        ] {
            assert!(!verify_secret("x", phc), "{phc}");
        }
    }
}

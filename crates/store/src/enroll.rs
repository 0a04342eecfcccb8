//! Enrollment: the hub's one-time codes and the registration of a new terminal, revocation, and
//! the terminal's record of its hub.
//!
//! A code is shown once and never stored. What is stored (`sync_enroll_codes`) is the 32-byte
//! key the enrollment protocol derives from it (`pos_sync_net`'s `CodeKey`, or
//! [`Store::enroll_code_key`] for codes made by [`Store::create_enroll_code`]), sealed with a
//! pad derived from the device key, which never leaves the key file: a copy of the database
//! alone neither reveals a code's key nor lets anyone test guesses. The protocol needs the key
//! itself (it checks an HMAC made with it), so a one-way hash would not do.
//!
//! Redeeming offers every stored key to the caller's `matches` (all of them, whichever matches,
//! so the time taken does not depend on which one did), is single use and expires on the
//! device's clock (never earlier than the wall clock, so setting the clock back cannot revive
//! a code). Every attempt is a `security` event; after [`MAX_ENROLL_FAILURES`] attempts without a
//! matching code every outstanding code is void. [`Store::enroll_device`] (and
//! [`Store::redeem_enroll_code`] for a typed code) commits the code's use,
//! `security.enroll_code_redeemed` and the terminal's `device.registered` (audit key, TLS
//! certificate fingerprint) in one transaction.

use std::time::Duration;

use pos_audit::{EventDraft, PublicKey};
use pos_auth::{Permission, Principal};
use pos_core::payloads::{
    DeviceRegistered, DeviceRevoked, EnrollCodeCreated, EnrollCodeRedeemed, EnrollFailed,
};
use pos_core::{DeviceId, DeviceRole};
use rusqlite::{params, OptionalExtension, Transaction};
use subtle::ConstantTimeEq;

use crate::accounts::AccountError;
use crate::error::{Result, StoreError};
use crate::store::{Commit, DeviceRecord, Store};

/// The shortest and longest life of an enrollment code (others are clamped to these).
pub const MIN_ENROLL_TTL: Duration = Duration::from_secs(60);
pub const MAX_ENROLL_TTL: Duration = Duration::from_secs(24 * 3600);
/// Attempts with no matching code after which every outstanding code is void.
pub const MAX_ENROLL_FAILURES: u32 = 5;
/// Used, void or expired codes are forgotten this long after they expired.
const FORGET_CODES_AFTER_MS: u64 = 30 * 24 * 3600 * 1000;

/// Crockford's base32: no I, L, O, U (typed codes are forgiving about those).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_CHARS: usize = 16;
const SEAL_CONTEXT: &[u8] = b"3PlugPOS enroll-code seal v1";
const CODE_KEY_CONTEXT: &str = "3PlugPOS enroll-code key v1";
const FAILURES_KEY: &str = "enroll_failures";

/// A code made by [`Store::create_enroll_code`]: show `code` once; `id` names it in the log.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollCode {
    pub id: String,
    pub code: String,
    /// Unix milliseconds (device clock).
    pub expires_ms: u64,
}

impl std::fmt::Debug for EnrollCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollCode")
            .field("id", &self.id)
            .field("code", &"[redacted]")
            .field("expires_ms", &self.expires_ms)
            .finish()
    }
}

/// A stored code, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollCodeInfo {
    pub id: String,
    pub expires_ms: u64,
}

/// What a terminal presents to enroll (the TLS layer supplies the certificate fingerprint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollRequest {
    pub device: DeviceId,
    pub name: String,
    /// Its audit (chain signing) key.
    pub public_key: PublicKey,
    /// Hex of a 32-byte hash (SHA-256 or blake3) of its TLS client certificate's DER.
    pub cert_fingerprint: String,
}

/// Why an enrollment was refused (the attempt is logged as `security.enroll_failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollRefusal {
    #[error("unknown enrollment code (hint: check the code, or create a new one on the hub with `pos hub enroll-code`)")]
    UnknownCode,
    #[error("the enrollment code has expired (hint: create a new one on the hub with `pos hub enroll-code`)")]
    Expired,
    #[error("the enrollment code was already used (hint: codes are single use; create a new one on the hub)")]
    AlreadyUsed,
    #[error("too many failed enrollment attempts: every outstanding code is void (hint: create a new one on the hub)")]
    TooManyAttempts,
    #[error("device {0} is revoked (hint: a re-installed terminal gets a new identity with `pos init --force`)")]
    Revoked(DeviceId),
    #[error("device id {0} is already enrolled with another audit key (hint: a re-installed terminal gets a new identity with `pos init --force`)")]
    DeviceExists(DeviceId),
    #[error("bad enrollment request: {0}")]
    BadRequest(String),
}

impl EnrollRefusal {
    /// The reason as recorded in `security.enroll_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            EnrollRefusal::UnknownCode => "unknown_code",
            EnrollRefusal::Expired => "expired",
            EnrollRefusal::AlreadyUsed => "already_used",
            EnrollRefusal::TooManyAttempts => "too_many_attempts",
            EnrollRefusal::Revoked(_) => "device_revoked",
            EnrollRefusal::DeviceExists(_) => "device_id_taken",
            EnrollRefusal::BadRequest(_) => "bad_request",
        }
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Io {
        path: "/dev/urandom".into(),
        detail: format!("no randomness for an enrollment code: {e}"),
    })?;
    Ok(buf)
}

/// The canonical form of a typed code: upper case, no separators, O read as 0 and I/L as 1.
fn normalize(code: &str) -> Option<String> {
    let canonical: String = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    (canonical.len() == CODE_CHARS && canonical.bytes().all(|b| ALPHABET.contains(&b)))
        .then_some(canonical)
}

fn check_request(own: DeviceId, req: &EnrollRequest) -> std::result::Result<String, EnrollRefusal> {
    let bad = |why: &str| Err(EnrollRefusal::BadRequest(why.to_owned()));
    if req.device == own {
        return bad("that is the hub's own device id");
    }
    let chars = req.name.chars().count();
    if chars == 0 || chars > 64 || req.name.chars().any(char::is_control) {
        return bad("the name must be 1 to 64 printable characters");
    }
    let fingerprint: String = req
        .cert_fingerprint
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if fingerprint.len() != 64 || !fingerprint.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("the certificate fingerprint must be 64 hex digits");
    }
    Ok(fingerprint)
}

/// One stored code, its key unsealed.
struct CodeRow {
    id: String,
    key: [u8; 32],
    expires_ms: u64,
    used: bool,
    void: bool,
}

fn xor(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn read_failures(tx: &rusqlite::Connection) -> rusqlite::Result<u32> {
    let text: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [FAILURES_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.and_then(|t| t.parse().ok()).unwrap_or(0))
}

fn write_failures(tx: &Transaction<'_>, n: u32) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![FAILURES_KEY, n.to_string()],
    )
    .map(drop)
}

impl Store {
    /// The pad sealing code `id`'s key: only the holder of the device key can compute it.
    fn code_pad(&self, id: &str) -> [u8; 32] {
        let seal_key = blake3::hash(&self.device_key().sign(SEAL_CONTEXT));
        *blake3::keyed_hash(seal_key.as_bytes(), id.as_bytes()).as_bytes()
    }

    /// The key a code made by [`Store::create_enroll_code`] stands for (None: not such a code).
    pub fn enroll_code_key(code: &str) -> Option<[u8; 32]> {
        normalize(code).map(|c| blake3::derive_key(CODE_KEY_CONTEXT, c.as_bytes()))
    }

    /// Store the key of a new enrollment code valid for `ttl` (clamped to 1 minute .. 24 hours);
    /// the caller shows the code. Needs `device_enroll` (a denial is logged); logged as
    /// `security.enroll_code_created` with the code's id and expiry.
    pub fn add_enroll_code(
        &mut self,
        actor: &Principal,
        ttl: Duration,
        key: &[u8; 32],
    ) -> Result<EnrollCodeInfo, AccountError> {
        self.authorize(actor, Permission::DeviceEnroll, None)?;
        let ttl_ms = ttl.clamp(MIN_ENROLL_TTL, MAX_ENROLL_TTL).as_millis() as u64;
        let now = self.tick_ms();
        let expires_ms = now + ttl_ms;
        let id = hex::encode(random_bytes::<8>()?);
        let sealed = xor(key, &self.code_pad(&id));
        let draft = EventDraft::json(
            EnrollCodeCreated::MODULE,
            EnrollCodeCreated::KIND,
            &EnrollCodeCreated {
                code_id: id.clone(),
                expires_ms,
            },
        )
        .by(actor.user);
        let path = self.lock.db_path();
        self.commit_with(vec![draft], |tx| {
            tx.execute(
                "DELETE FROM sync_enroll_codes WHERE expires_ms < ?1",
                [now.saturating_sub(FORGET_CODES_AFTER_MS) as i64],
            )
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO sync_enroll_codes (id, sealed, created_ms, expires_ms, created_by)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        id,
                        &sealed[..],
                        now as i64,
                        expires_ms as i64,
                        actor.user.as_bytes()
                    ],
                )
            })
            // A fresh code starts a fresh count of failed attempts.
            .and_then(|_| write_failures(tx, 0))
            .map_err(|e| StoreError::sqlite(&path, e))
        })?;
        Ok(EnrollCodeInfo { id, expires_ms })
    }

    /// Make a random enrollment code (80 bits, `XXXX-XXXX-XXXX-XXXX`) and store its key
    /// ([`Store::enroll_code_key`]), as [`Store::add_enroll_code`]. Returned once.
    pub fn create_enroll_code(
        &mut self,
        actor: &Principal,
        ttl: Duration,
    ) -> Result<EnrollCode, AccountError> {
        // Each byte's low 5 bits pick a character: 256 is a multiple of 32, so every character
        // is equally likely (16 x 5 = 80 bits).
        let code: String = random_bytes::<CODE_CHARS>()?
            .iter()
            .map(|b| ALPHABET[usize::from(b & 31)] as char)
            .collect();
        let key = Self::enroll_code_key(&code).ok_or_else(|| StoreError::Io {
            path: "/dev/urandom".into(),
            detail: "made an enrollment code outside the alphabet".into(),
        })?;
        let info = self.add_enroll_code(actor, ttl, &key)?;
        let grouped = code
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-");
        Ok(EnrollCode {
            id: info.id,
            code: grouped,
            expires_ms: info.expires_ms,
        })
    }

    /// Codes that can still be redeemed at `now_ms`.
    pub fn outstanding_enroll_codes(&self, now_ms: u64) -> Result<Vec<EnrollCodeInfo>> {
        let now = now_ms.max(self.clock.last().wall_ms());
        Ok(self
            .read_codes()?
            .into_iter()
            .filter(|c| !c.used && !c.void && c.expires_ms > now)
            .map(|c| EnrollCodeInfo {
                id: c.id,
                expires_ms: c.expires_ms,
            })
            .collect())
    }

    fn read_codes(&self) -> Result<Vec<CodeRow>> {
        type Row = (String, Vec<u8>, i64, bool, bool);
        let rows: Vec<Row> = self
            .conn()
            .prepare(
                "SELECT id, sealed, expires_ms, used_ms IS NOT NULL, void_ms IS NOT NULL
                 FROM sync_enroll_codes ORDER BY created_ms",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .map(|(id, sealed, expires, used, void)| {
                // A damaged row unseals to a key that matches nothing.
                let sealed = <[u8; 32]>::try_from(sealed.as_slice()).unwrap_or([0; 32]);
                let key = xor(&sealed, &self.code_pad(&id));
                CodeRow {
                    id,
                    key,
                    expires_ms: expires as u64,
                    used,
                    void,
                }
            })
            .collect())
    }

    /// The code whose key `matches`, if it can be redeemed at `now`.
    fn find_code(
        &self,
        now: u64,
        matches: &mut dyn FnMut(&[u8; 32]) -> bool,
    ) -> Result<(Option<String>, std::result::Result<(), EnrollRefusal>)> {
        let mut found = None;
        // Every key is offered, whichever matches: no early exit.
        for row in self.read_codes()? {
            if matches(&row.key) {
                found = Some(row);
            }
        }
        Ok(match found {
            None => (None, Err(EnrollRefusal::UnknownCode)),
            Some(c) => {
                let verdict = if c.void {
                    Err(EnrollRefusal::TooManyAttempts)
                } else if c.used {
                    Err(EnrollRefusal::AlreadyUsed)
                } else if c.expires_ms <= now {
                    Err(EnrollRefusal::Expired)
                } else {
                    Ok(())
                };
                (Some(c.id), verdict)
            }
        })
    }

    /// Log a refused attempt; an unknown code counts towards [`MAX_ENROLL_FAILURES`], after
    /// which every outstanding code is void (and the refusal says so).
    fn refuse_enrollment(
        &mut self,
        refusal: EnrollRefusal,
        code_id: Option<String>,
        device: Option<DeviceId>,
        now: u64,
    ) -> Result<EnrollRefusal> {
        let failures = if refusal == EnrollRefusal::UnknownCode {
            read_failures(self.conn()).map_err(self.db_err())? + 1
        } else {
            0
        };
        let refusal = if failures >= MAX_ENROLL_FAILURES {
            EnrollRefusal::TooManyAttempts
        } else {
            refusal
        };
        tracing::warn!(device = ?device, "enrollment refused: {refusal}");
        let draft = EventDraft::json(
            EnrollFailed::MODULE,
            EnrollFailed::KIND,
            &EnrollFailed {
                reason: refusal.code().to_owned(),
                code_id,
                device,
            },
        );
        let path = self.lock.db_path();
        self.commit_with(vec![draft], |tx| {
            let db = |e| StoreError::sqlite(&path, e);
            if failures >= MAX_ENROLL_FAILURES {
                tx.execute(
                    "UPDATE sync_enroll_codes SET void_ms = ?1
                     WHERE used_ms IS NULL AND void_ms IS NULL",
                    [now as i64],
                )
                .map_err(db)?;
                write_failures(tx, 0).map_err(db)
            } else if failures > 0 {
                write_failures(tx, failures).map_err(db)
            } else {
                Ok(())
            }
        })?;
        Ok(refusal)
    }

    /// Redeem the code whose key `matches` (the enrollment protocol's proof check), at wall time
    /// `now_ms`: marks it used and logs `security.enroll_code_redeemed`, returning its id. Then
    /// register the device with [`Store::register_enrolled_device`]. For a refusal the attempt
    /// is logged (`device`: who asked, if known).
    pub fn redeem_enroll_code_with(
        &mut self,
        now_ms: u64,
        device: Option<DeviceId>,
        matches: &mut dyn FnMut(&[u8; 32]) -> bool,
    ) -> Result<std::result::Result<String, EnrollRefusal>> {
        let now = now_ms.max(self.clock.last().wall_ms());
        let (code_id, verdict) = self.find_code(now, matches)?;
        let code_id = match (verdict, code_id) {
            (Ok(()), Some(id)) => id,
            (Err(refusal), id) => {
                return Ok(Err(self.refuse_enrollment(refusal, id, device, now)?));
            }
            (Ok(()), None) => return Ok(Err(EnrollRefusal::UnknownCode)),
        };
        self.use_code(&code_id, device, now, Vec::new())?;
        Ok(Ok(code_id))
    }

    /// Mark `code_id` used, logging its redemption, with `more` drafts, in one commit.
    fn use_code(
        &mut self,
        code_id: &str,
        device: Option<DeviceId>,
        now: u64,
        more: Vec<EventDraft>,
    ) -> Result<Commit> {
        let mut drafts = vec![EventDraft::json(
            EnrollCodeRedeemed::MODULE,
            EnrollCodeRedeemed::KIND,
            &EnrollCodeRedeemed {
                code_id: code_id.to_owned(),
                device,
            },
        )];
        drafts.extend(more);
        let path = self.lock.db_path();
        self.commit_with(drafts, |tx| {
            let used = tx
                .execute(
                    "UPDATE sync_enroll_codes SET used_ms = ?2, used_by = ?3
                     WHERE id = ?1 AND used_ms IS NULL AND void_ms IS NULL",
                    params![code_id, now as i64, device.map(|d| d.as_bytes().to_vec())],
                )
                .and_then(|n| write_failures(tx, 0).map(|()| n))
                .map_err(|e| StoreError::sqlite(&path, e))?;
            if used == 1 {
                Ok(())
            } else {
                Err(StoreError::Rejected {
                    module: EnrollCodeRedeemed::MODULE.into(),
                    kind: EnrollCodeRedeemed::KIND.into(),
                    detail: "the code was used meanwhile".into(),
                })
            }
        })
    }

    /// Whether `request` may be registered: new, or the same device with the same audit key
    /// (a renewed certificate); not revoked. Returns the normalised fingerprint.
    fn check_enrollment(
        &self,
        request: &EnrollRequest,
    ) -> Result<std::result::Result<String, EnrollRefusal>> {
        let fingerprint = match check_request(self.device_id(), request) {
            Ok(f) => f,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(match self.device(request.device)? {
            Some(d) if d.revoked.is_some() => Err(EnrollRefusal::Revoked(request.device)),
            Some(_)
                if !self
                    .trusted_keys(request.device)?
                    .contains(&request.public_key) =>
            {
                Err(EnrollRefusal::DeviceExists(request.device))
            }
            _ => Ok(fingerprint),
        })
    }

    fn registration(&self, request: &EnrollRequest, fingerprint: String) -> EventDraft {
        EventDraft::json(
            DeviceRegistered::MODULE,
            DeviceRegistered::KIND,
            &DeviceRegistered {
                device: request.device,
                role: DeviceRole::Terminal,
                branch: self.identity().branch.clone(),
                name: request.name.clone(),
                public_key: hex::encode(request.public_key.0),
                cert_fingerprint: Some(fingerprint),
            },
        )
    }

    fn registered(&self, device: DeviceId) -> Result<DeviceRecord> {
        self.device(device)?.ok_or_else(|| StoreError::Corrupt {
            path: self.lock.db_path(),
            detail: format!("device {device} was registered but is not in the registry"),
        })
    }

    /// Register a terminal whose code [`Store::redeem_enroll_code_with`] accepted: its audit key
    /// becomes trusted for its chain and its certificate fingerprint is recorded
    /// (`device.registered`). Refused (and logged) for a revoked device or an id enrolled with
    /// another audit key.
    pub fn register_enrolled_device(
        &mut self,
        request: &EnrollRequest,
    ) -> Result<std::result::Result<DeviceRecord, EnrollRefusal>> {
        let fingerprint = match self.check_enrollment(request)? {
            Ok(f) => f,
            Err(refusal) => {
                let now = self.clock_now_ms();
                let refusal = self.refuse_enrollment(refusal, None, Some(request.device), now)?;
                return Ok(Err(refusal));
            }
        };
        let draft = self.registration(request, fingerprint);
        self.append(vec![draft])?;
        tracing::info!(device = %request.device, name = %request.name, "terminal enrolled");
        Ok(Ok(self.registered(request.device)?))
    }

    /// Enroll a terminal if a stored code's key makes `matches` true (the enrollment protocol's
    /// proof check), at wall time `now_ms`, all in one transaction: the code's use,
    /// `security.enroll_code_redeemed` and the terminal's `device.registered` (audit key,
    /// certificate fingerprint). Refused for no matching code (counted towards
    /// [`MAX_ENROLL_FAILURES`]), a used, void or expired one, a revoked device, or an id enrolled
    /// with another audit key; a refusal is logged (`security.enroll_failed`) and leaves the code
    /// as it was. `request` is unauthenticated until a code matched: until then it is only for
    /// the record.
    pub fn enroll_device(
        &mut self,
        request: &EnrollRequest,
        now_ms: u64,
        matches: &mut dyn FnMut(&[u8; 32]) -> bool,
    ) -> Result<std::result::Result<DeviceRecord, EnrollRefusal>> {
        let now = now_ms.max(self.clock.last().wall_ms());
        let (code_id, verdict) = self.find_code(now, matches)?;
        let checked = match verdict {
            Ok(()) => self.check_enrollment(request)?,
            Err(refusal) => Err(refusal),
        };
        let (fingerprint, code_id) = match (checked, code_id) {
            (Ok(f), Some(id)) => (f, id),
            (Err(refusal), id) => {
                let refusal = self.refuse_enrollment(refusal, id, Some(request.device), now)?;
                return Ok(Err(refusal));
            }
            (Ok(_), None) => return Ok(Err(EnrollRefusal::UnknownCode)),
        };
        let registration = self.registration(request, fingerprint);
        self.use_code(&code_id, Some(request.device), now, vec![registration])?;
        tracing::info!(device = %request.device, name = %request.name, "terminal enrolled");
        Ok(Ok(self.registered(request.device)?))
    }

    /// [`Store::enroll_device`] with a typed code made by [`Store::create_enroll_code`] (or any
    /// code whose key is [`Store::enroll_code_key`]).
    pub fn redeem_enroll_code(
        &mut self,
        code: &str,
        now_ms: u64,
        request: &EnrollRequest,
    ) -> Result<std::result::Result<DeviceRecord, EnrollRefusal>> {
        let key = Self::enroll_code_key(code);
        self.enroll_device(request, now_ms, &mut |k: &[u8; 32]| {
            key.is_some_and(|key| bool::from(k[..].ct_eq(&key[..])))
        })
    }

    /// Revoke a device (`pos hub devices revoke`): it may no longer sync; its past records stay
    /// valid. Needs `device_enroll` (a denial is logged).
    pub fn revoke_device(
        &mut self,
        actor: &Principal,
        device: DeviceId,
        reason: &str,
    ) -> Result<(), AccountError> {
        self.authorize(actor, Permission::DeviceEnroll, None)?;
        let known = self.device(device)?;
        if device == self.device_id() || known.is_none_or(|d| d.revoked.is_some()) {
            return Err(AccountError::UnknownDevice(device.to_string()));
        }
        self.append(vec![EventDraft::json(
            DeviceRevoked::MODULE,
            DeviceRevoked::KIND,
            &DeviceRevoked {
                device,
                reason: reason.chars().take(256).collect(),
            },
        )
        .by(actor.user)])?;
        Ok(())
    }

    /// On a terminal after `pos enroll`: record the hub (its id, audit key and certificate
    /// fingerprint) in this device's own log, which makes its key trusted for the hub's chain
    /// ([`Store::origin_state`], [`Store::hub_device`]).
    pub fn register_hub(&mut self, hub: &DeviceRegistered) -> Result<Commit> {
        if hub.role != DeviceRole::Hub || hub.device == self.device_id() {
            return Err(StoreError::Rejected {
                module: DeviceRegistered::MODULE.into(),
                kind: DeviceRegistered::KIND.into(),
                detail: "not another device with the hub role".into(),
            });
        }
        self.append(vec![EventDraft::json(
            DeviceRegistered::MODULE,
            DeviceRegistered::KIND,
            hub,
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_codes_are_forgiving() {
        assert_eq!(
            normalize("abcd-efgh-jkmn-pq01").as_deref(),
            Some("ABCDEFGHJKMNPQ01")
        );
        assert_eq!(
            normalize(" ABCD EFGH JKMN PQOI ").as_deref(),
            Some("ABCDEFGHJKMNPQ01")
        );
        assert_eq!(normalize("ABCD-EFGH-JKMN-PQ0"), None);
        assert_eq!(normalize("ABCD-EFGH-JKMN-PQ0U"), None);
        assert_eq!(
            Store::enroll_code_key("abcd-efgh-jkmn-pq01"),
            Store::enroll_code_key("ABCDEFGHJKMNPQ01")
        );
    }
}

//! Enrollment: a terminal without a certificate obtains one from the hub's branch CA, over TLS
//! on the hub's one port (there is no plaintext port).
//!
//! # The one-time code
//! `pos hub enroll-code` shows a code of [`CODE_LEN`] characters from Crockford's base32
//! alphabet (no I, L, O, U; typing them is forgiven), grouped `XXXX-XXXX-XXXX-XXXX`: 80 random
//! bits. The hub stores only its [`CodeKey`] (`blake3::derive_key("3PlugPOS enroll-code key
//! v1", code)`, the same derivation as `pos_store::Store::enroll_code_key`), with an expiry; a
//! code works once, and after a few failed attempts every outstanding code is void
//! ([`EnrollmentBook`]).
//!
//! # The exchange (one TLS 1.3 connection, no client certificate)
//! ```text
//! terminal                                                 hub
//!   TLS handshake; the terminal records the hub's certificate (trust on first use) and
//!   its fingerprint F = sha256(DER). The hub sees an anonymous client: enrollment only.
//!   Request: proof ‖ JSON{device, role, name, audit public key, TLS public key (P-256),
//!            nonce, possession signatures by both keys over (label ‖ F ‖ device ‖ nonce)}
//!     proof = HMAC-SHA256(CodeKey, "…request v1" ‖ F ‖ JSON)            ──►
//!                                               finds the outstanding code whose key makes
//!                                               the proof with F = its own certificate's
//!                                               fingerprint (single use, expiry, attempts),
//!                                               checks both possession signatures, issues the
//!                                               device certificate, records the device
//!   ◄──  Accepted: mac ‖ JSON{device, nonce, device cert, CA cert, hub id, hub name,
//!                             hub audit key, server name}
//!     mac = HMAC-SHA256(CodeKey, "…response v1" ‖ F ‖ sha256(request JSON) ‖ JSON)
//!        or Refused: JSON{reason, message} (not authenticated: only ever shown, never trusted)
//!   checks the mac, its device and nonce, that the certificate is for its key, and that the
//!   recorded hub certificate chains to the CA under the server name; then writes its key
//!   (0600), certificate, the pinned CA and hub.json.
//! ```
//! A man in the middle without the code cannot enroll a device (no proof), cannot relay a
//! terminal's request to the real hub (the proof names the certificate the terminal saw, which
//! is the middle's own, so the hub refuses it and counts a failed attempt), and cannot pose as
//! the hub (the answer's mac needs the code): the terminal pins a CA only from a party that
//! holds the code. Guessing a code online is bounded by the attempts limit; an offline search
//! of a captured proof faces 2^80 codes within the code's lifetime.
//!
//! Frames: `"3E"` · version 1 · type (1 request, 2 accepted, 3 refused) · u32 length · body,
//! at most [`MAX_ENROLL_FRAME`] bytes of body.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pos_audit::{DeviceKey, PublicKey};
use pos_core::DeviceId;
use ring::hmac;
use ring::rand::SecureRandom;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::files::{self, FileError};
use crate::pki::{
    cert_from_pem, cert_info, cert_pem, Fingerprint, HubPki, PkiError, TlsKey, TlsPublicKey,
    Validity,
};

/// Characters in a code.
pub const CODE_LEN: usize = 16;
/// The largest enrollment frame body accepted.
pub const MAX_ENROLL_FRAME: usize = 16 * 1024;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const MAGIC: &[u8; 2] = b"3E";
const VERSION: u8 = 1;
const T_REQUEST: u8 = 1;
const T_ACCEPTED: u8 = 2;
const T_REFUSED: u8 = 3;
/// Shared with `pos_store` (`Store::enroll_code_key`): both derive the same key from a code.
const CODE_KEY_CONTEXT: &str = "3PlugPOS enroll-code key v1";
const REQUEST_LABEL: &[u8] = b"3PlugPOS enrollment request v1\0";
const RESPONSE_LABEL: &[u8] = b"3PlugPOS enrollment response v1\0";
const POSSESSION_LABEL: &[u8] = b"3PlugPOS enrollment possession v1\0";
/// The name the terminal sends as SNI while it does not know the hub's yet.
const ENROLL_SNI: &str = "enroll.3plugpos.invalid";

/// Terminal files in `<data dir>/tls/`.
pub const DEVICE_KEY_FILE: &str = "device-key.pem";
pub const DEVICE_CERT_FILE: &str = "device-cert.pem";
pub const HUB_CA_FILE: &str = "hub-ca.pem";
pub const HUB_RECORD_FILE: &str = "hub.json";

fn random<const N: usize>() -> Result<[u8; N], EnrollError> {
    let mut out = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| EnrollError::Internal("the system random generator failed".into()))?;
    Ok(out)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A one-time enrollment code. Its `Debug` hides it; `Display` shows it grouped.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentCode(String);

impl std::fmt::Debug for EnrollmentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollmentCode(..)")
    }
}

impl std::fmt::Display for EnrollmentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, group) in self.0.as_bytes().chunks(4).enumerate() {
            if i > 0 {
                f.write_str("-")?;
            }
            // The code is ASCII from the alphabet.
            f.write_str(std::str::from_utf8(group).unwrap_or_default())?;
        }
        Ok(())
    }
}

/// The text is not an enrollment code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an enrollment code is {CODE_LEN} letters and digits, like 7KQ2-MX9D-4T8R-B3ZF")]
pub struct BadCode;

impl EnrollmentCode {
    /// A fresh random code.
    pub fn generate() -> Result<Self, EnrollError> {
        let bytes = random::<CODE_LEN>()?;
        // 256 is a multiple of 32: taking 5 bits is unbiased.
        let code = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect();
        Ok(EnrollmentCode(code))
    }

    /// Read a code as typed: case, spaces and dashes do not matter; O reads as 0, I and L as 1.
    pub fn parse(text: &str) -> Result<Self, BadCode> {
        let mut code = String::with_capacity(CODE_LEN);
        for c in text.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(BadCode);
            }
            code.push(c);
        }
        if code.len() != CODE_LEN {
            return Err(BadCode);
        }
        Ok(EnrollmentCode(code))
    }

    /// What the hub stores instead of the code.
    pub fn key(&self) -> CodeKey {
        CodeKey(blake3::derive_key(CODE_KEY_CONTEXT, self.0.as_bytes()))
    }
}

/// The MAC key derived from a code. Equivalent to the code for enrollment: store it only
/// until the code is used or expires. `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct CodeKey(pub [u8; 32]);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

impl CodeKey {
    fn mac(&self, parts: &[&[u8]]) -> hmac::Tag {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign()
    }

    fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        hmac::verify(&key, &parts.concat(), tag).is_ok()
    }
}

/// Why the hub refused an enrollment (the hub logs it; the terminal hears only the
/// [`RefusalReason`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollRefused {
    #[error(
        "no outstanding enrollment code matches (mistyped, or relayed by a man in the middle)"
    )]
    NoMatch,
    #[error("the enrollment code has expired")]
    Expired,
    #[error("the enrollment code was already used")]
    Used,
    #[error("too many failed enrollment attempts: all outstanding codes are void")]
    TooManyAttempts,
    #[error("device {0} is revoked")]
    Revoked(DeviceId),
    #[error("device id {0} is already enrolled with another audit key")]
    IdTaken(DeviceId),
    #[error("enrollment storage: {0}")]
    Storage(String),
}

/// A device the hub enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolledDevice {
    pub device: DeviceId,
    pub name: String,
    /// Trusted from now on for the device's chain (checkpoints and seals).
    pub audit_key: PublicKey,
    pub cert_fingerprint: Fingerprint,
    pub cert_serial: String,
    pub cert_not_after: SystemTime,
    pub enrolled_at: SystemTime,
    pub peer_addr: Option<SocketAddr>,
}

/// The hub's enrollment records (the store implements it; [`crate::memory`] for tests).
pub trait EnrollmentBook: Send + Sync {
    /// Enroll `device` if a code allows it, all in one transaction:
    /// 1. find the outstanding code whose key makes `matches` true; none: count a failed
    ///    attempt ([`EnrollRefused::NoMatch`]; past the limit void every outstanding code,
    ///    [`EnrollRefused::TooManyAttempts`]); used, void or expired: refuse;
    /// 2. refuse a revoked device, or an id enrolled with a different audit key;
    /// 3. mark the code used and record the device: its certificate becomes the one
    ///    [`crate::tls::DeviceDirectory`] accepts for it (superseding an earlier one), its
    ///    audit key is trusted for its chain.
    ///
    /// `device` is unauthenticated until a code matched: until then it is only for the record.
    fn enroll(
        &self,
        device: &EnrolledDevice,
        matches: &mut dyn FnMut(&CodeKey) -> bool,
        now: SystemTime,
    ) -> Result<(), EnrollRefused>;
}

/// What the hub's server needs to enroll terminals (see [`crate::HubServices`]).
pub struct HubEnrollment {
    pub book: Arc<dyn EnrollmentBook>,
    /// The hub's name as terminals show it.
    pub hub_name: String,
    /// Validity of issued device certificates.
    pub device_validity_days: u32,
}

impl std::fmt::Debug for HubEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubEnrollment")
            .field("hub_name", &self.hub_name)
            .field("device_validity_days", &self.device_validity_days)
            .finish_non_exhaustive()
    }
}

/// The hub's side of an enrollment: its CA (the one its TLS server certificate comes from)
/// and its identity.
pub(crate) struct Issuer<'a> {
    pub pki: &'a HubPki,
    pub hub: DeviceId,
    pub audit_key: PublicKey,
    pub ctx: &'a HubEnrollment,
}

/// Why the hub refused (sent to the terminal; unauthenticated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Wrong, expired or already used code.
    CodeRefused,
    TooManyAttempts,
    DeviceRevoked,
    DeviceIdTaken,
    BadRequest,
    Internal,
}

/// Enrollment failed (terminal side).
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("could not reach the hub at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with the hub failed: {0}")]
    Tls(String),
    #[error("the hub did not answer within {0} s")]
    Timeout(u64),
    #[error("the hub refused the enrollment: {message}")]
    Refused {
        reason: RefusalReason,
        message: String,
    },
    #[error("the answer is not from the hub that made this code (its proof does not match): check the address, or a device on the network is intercepting")]
    NotAuthentic,
    #[error("the hub's answer is not valid: {0}")]
    Protocol(String),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{0}")]
    Internal(String),
}

// ----- wire -----

#[derive(Debug, Serialize, Deserialize)]
struct RequestBody {
    version: u32,
    device: DeviceId,
    role: String,
    name: String,
    /// `PublicKey::to_file_text` form.
    audit_key: String,
    /// Hex of the uncompressed P-256 point.
    tls_key: String,
    /// Hex, 32 bytes.
    nonce: String,
    /// Hex: ECDSA (ASN.1) by the TLS key over the possession transcript.
    tls_possession: String,
    /// Hex: ed25519 by the audit key over the possession transcript.
    audit_possession: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct AcceptedBody {
    version: u32,
    device: DeviceId,
    nonce: String,
    device_cert: String,
    ca_cert: String,
    hub: DeviceId,
    hub_name: String,
    hub_audit_key: String,
    server_name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct RefusedBody {
    reason: RefusalReason,
    message: String,
}

fn hex(bytes: &[u8]) -> String {
    crate::x509::hex_lower(bytes)
}

fn unhex(text: &str, what: &str) -> Result<Vec<u8>, String> {
    if text.len() % 2 == 1 || !text.is_ascii() {
        return Err(format!("{what} is not hex"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| format!("{what} is not hex")))
        .collect()
}

/// What both keys sign. It does not name the hub's certificate (the proof does): a relayed
/// request passes this check and is then refused, and counted, as a code that matches nothing.
fn possession_transcript(device: DeviceId, nonce: &[u8]) -> Vec<u8> {
    [POSSESSION_LABEL, device.as_bytes(), nonce].concat()
}

async fn write_frame<S: AsyncWrite + Unpin>(
    s: &mut S,
    kind: u8,
    parts: &[&[u8]],
) -> std::io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut out = Vec::with_capacity(8 + len as usize);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(kind);
    out.extend_from_slice(&len.to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
    s.write_all(&out).await?;
    s.flush().await
}

/// Read one frame; errors are text for the log.
async fn read_frame<S: AsyncRead + Unpin>(s: &mut S) -> Result<(u8, Vec<u8>), String> {
    let mut head = [0u8; 8];
    s.read_exact(&mut head)
        .await
        .map_err(|e| format!("reading a frame header: {e}"))?;
    if &head[..2] != MAGIC {
        return Err("not an enrollment frame".into());
    }
    if head[2] != VERSION {
        return Err(format!("enrollment version {} is not spoken here", head[2]));
    }
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if len > MAX_ENROLL_FRAME {
        return Err(format!(
            "an enrollment frame of {len} bytes is over the limit"
        ));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .await
        .map_err(|e| format!("reading a frame body: {e}"))?;
    Ok((head[3], body))
}

// ----- terminal side -----

/// What a terminal enrolls with.
#[derive(Debug, Clone)]
pub struct EnrollRequest {
    /// `host:port` of the hub.
    pub hub_addr: String,
    pub code: EnrollmentCode,
    pub device: DeviceId,
    pub name: String,
    pub audit_key: Arc<DeviceKey>,
    /// For the whole exchange, connection included.
    pub timeout: Duration,
}

/// The hub as a terminal knows it after enrollment (`tls/hub.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubRecord {
    pub hub: DeviceId,
    pub name: String,
    /// `PublicKey::to_file_text` form: trust it for the hub's chain (master data).
    pub audit_key: String,
    /// The name the hub's server certificate is verified against.
    pub server_name: String,
    /// Where the terminal enrolled (the default address to sync with).
    pub address: String,
    pub ca_fingerprint: String,
    pub device_cert_fingerprint: String,
    pub device_cert_serial: String,
    /// Unix seconds.
    pub device_cert_not_after: u64,
    /// Unix milliseconds.
    pub enrolled_at_ms: u64,
}

impl HubRecord {
    pub fn audit_key(&self) -> Result<PublicKey, String> {
        PublicKey::from_file_text(&self.audit_key).map_err(|e| e.to_string())
    }
}

/// A successful enrollment, not yet written.
#[derive(Debug)]
pub struct Enrollment {
    pub tls_key: TlsKey,
    pub device_cert: CertificateDer<'static>,
    pub hub_ca: CertificateDer<'static>,
    pub hub: HubRecord,
}

impl Enrollment {
    /// Write the key (0600), certificate, pinned CA and hub record to `tls_dir` (0700). The
    /// hub record goes last: its presence means the rest is complete.
    pub fn save(&self, tls_dir: &Path) -> Result<(), EnrollError> {
        files::ensure_private_dir(tls_dir)?;
        files::write_private(
            &tls_dir.join(DEVICE_KEY_FILE),
            self.tls_key.to_pem().as_bytes(),
        )?;
        files::write_public(
            &tls_dir.join(DEVICE_CERT_FILE),
            cert_pem(&self.device_cert).as_bytes(),
        )?;
        files::write_public(
            &tls_dir.join(HUB_CA_FILE),
            cert_pem(&self.hub_ca).as_bytes(),
        )?;
        let json = serde_json::to_string_pretty(&self.hub)
            .map_err(|e| EnrollError::Internal(e.to_string()))?;
        files::write_public(&tls_dir.join(HUB_RECORD_FILE), json.as_bytes())?;
        Ok(())
    }
}

/// A terminal's saved enrollment, loaded to connect.
#[derive(Debug)]
pub struct TerminalTls {
    pub tls_key: TlsKey,
    pub device_cert: CertificateDer<'static>,
    pub hub_ca: CertificateDer<'static>,
    pub hub: HubRecord,
}

impl TerminalTls {
    /// `Ok(None)` when the terminal is not enrolled (no `hub.json`).
    pub fn load(tls_dir: &Path) -> Result<Option<Self>, EnrollError> {
        let record = tls_dir.join(HUB_RECORD_FILE);
        if !record.exists() {
            return Ok(None);
        }
        let hub: HubRecord =
            serde_json::from_str(&files::read_text(&record)?).map_err(|e| PkiError::BadFile {
                file: record.display().to_string(),
                why: e.to_string(),
            })?;
        let path = |f: &str| tls_dir.join(f);
        let name = |f: &str| path(f).display().to_string();
        let tls_key = TlsKey::from_pem(
            &files::read_text(&path(DEVICE_KEY_FILE))?,
            &name(DEVICE_KEY_FILE),
        )?;
        let device_cert = cert_from_pem(
            &files::read_text(&path(DEVICE_CERT_FILE))?,
            &name(DEVICE_CERT_FILE),
        )?;
        let hub_ca = cert_from_pem(&files::read_text(&path(HUB_CA_FILE))?, &name(HUB_CA_FILE))?;
        Ok(Some(TerminalTls {
            tls_key,
            device_cert,
            hub_ca,
            hub,
        }))
    }

    /// The rustls client configuration for syncing with the enrolled hub.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, crate::tls::TlsError> {
        crate::tls::terminal_client_config(&self.hub_ca, self.device_cert.clone(), &self.tls_key)
    }
}

/// Enroll with the hub: connect, prove the code, check the answer. Nothing is written.
pub async fn enroll(req: &EnrollRequest) -> Result<Enrollment, EnrollError> {
    let secs = req.timeout.as_secs();
    tokio::time::timeout(req.timeout, enroll_inner(req))
        .await
        .map_err(|_| EnrollError::Timeout(secs))?
}

async fn enroll_inner(req: &EnrollRequest) -> Result<Enrollment, EnrollError> {
    let tcp = tokio::net::TcpStream::connect(&req.hub_addr)
        .await
        .map_err(|source| EnrollError::Connect {
            addr: req.hub_addr.clone(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let (config, first_use) =
        crate::tls::enrollment_client_config().map_err(|e| EnrollError::Tls(e.to_string()))?;
    let sni = ServerName::try_from(ENROLL_SNI).map_err(|e| EnrollError::Internal(e.to_string()))?;
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(sni, tcp)
        .await
        .map_err(|e| EnrollError::Tls(e.to_string()))?;
    let observed = first_use
        .observed()
        .ok_or_else(|| EnrollError::Tls("the hub showed no certificate".into()))?;
    let fp = Fingerprint::of(&observed);

    let tls_key = TlsKey::generate()?;
    let nonce = random::<32>()?;
    let pop = possession_transcript(req.device, &nonce);
    let body = RequestBody {
        version: 1,
        device: req.device,
        role: "terminal".into(),
        name: req.name.clone(),
        audit_key: req.audit_key.public().to_file_text().trim().to_owned(),
        tls_key: hex(&tls_key.public().0),
        nonce: hex(&nonce),
        tls_possession: hex(&tls_key.sign(&pop)?),
        audit_possession: hex(&req.audit_key.sign(&pop)),
    };
    let json = serde_json::to_vec(&body).map_err(|e| EnrollError::Internal(e.to_string()))?;
    let code_key = req.code.key();
    let proof = code_key.mac(&[REQUEST_LABEL, &fp.0, &json]);
    write_frame(&mut tls, T_REQUEST, &[proof.as_ref(), &json])
        .await
        .map_err(|e| EnrollError::Tls(e.to_string()))?;

    let (kind, answer) = read_frame(&mut tls).await.map_err(EnrollError::Protocol)?;
    let _ = tls.shutdown().await;
    match kind {
        T_REFUSED => {
            let r: RefusedBody = serde_json::from_slice(&answer)
                .map_err(|e| EnrollError::Protocol(format!("unreadable refusal: {e}")))?;
            Err(EnrollError::Refused {
                reason: r.reason,
                message: r.message,
            })
        }
        T_ACCEPTED => {
            if answer.len() < 32 {
                return Err(EnrollError::Protocol("short answer".into()));
            }
            let (mac, json_answer) = answer.split_at(32);
            let request_hash = ring::digest::digest(&ring::digest::SHA256, &json);
            if !code_key.verify(
                &[RESPONSE_LABEL, &fp.0, request_hash.as_ref(), json_answer],
                mac,
            ) {
                return Err(EnrollError::NotAuthentic);
            }
            let a: AcceptedBody = serde_json::from_slice(json_answer)
                .map_err(|e| EnrollError::Protocol(e.to_string()))?;
            accepted(req, a, &nonce, tls_key, &observed)
        }
        other => Err(EnrollError::Protocol(format!(
            "unexpected frame type {other}"
        ))),
    }
}

fn accepted(
    req: &EnrollRequest,
    a: AcceptedBody,
    nonce: &[u8],
    tls_key: TlsKey,
    observed: &CertificateDer<'static>,
) -> Result<Enrollment, EnrollError> {
    let p = EnrollError::Protocol;
    if a.version != 1 || a.device != req.device || unhex(&a.nonce, "nonce").map_err(p)? != nonce {
        return Err(EnrollError::Protocol(
            "the answer is for another request".into(),
        ));
    }
    let device_cert = CertificateDer::from(unhex(&a.device_cert, "device_cert").map_err(p)?);
    let hub_ca = CertificateDer::from(unhex(&a.ca_cert, "ca_cert").map_err(p)?);
    let info = cert_info(&device_cert).map_err(|e| EnrollError::Protocol(e.to_string()))?;
    if info.subject_cn.as_deref() != Some(req.device.to_string().as_str())
        || info.spki != tls_key.public().spki_der()
    {
        return Err(EnrollError::Protocol(
            "the certificate is not for this device's key".into(),
        ));
    }
    // The hub we talked to must hold a server certificate from the CA we are about to pin.
    let name = ServerName::try_from(a.server_name.clone())
        .map_err(|e| EnrollError::Protocol(format!("server name: {e}")))?;
    let verifier =
        crate::tls::server_verifier(&hub_ca).map_err(|e| EnrollError::Protocol(e.to_string()))?;
    use rustls::client::danger::ServerCertVerifier;
    verifier
        .verify_server_cert(observed, &[], &name, &[], UnixTime::now())
        .map_err(|e| {
            EnrollError::Protocol(format!("the hub's certificate does not match its CA: {e}"))
        })?;
    PublicKey::from_file_text(&a.hub_audit_key)
        .map_err(|e| EnrollError::Protocol(format!("hub audit key: {e}")))?;
    let hub = HubRecord {
        hub: a.hub,
        name: a.hub_name,
        audit_key: a.hub_audit_key,
        server_name: a.server_name,
        address: req.hub_addr.clone(),
        ca_fingerprint: Fingerprint::of(&hub_ca).to_hex(),
        device_cert_fingerprint: Fingerprint::of(&device_cert).to_hex(),
        device_cert_serial: info.serial_hex(),
        device_cert_not_after: info
            .not_after
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        enrolled_at_ms: unix_ms(SystemTime::now()),
    };
    Ok(Enrollment {
        tls_key,
        device_cert,
        hub_ca,
        hub,
    })
}

// ----- hub side -----

struct Refusal(RefusalReason, String);

/// Serve one anonymous connection: read a request, answer it. Returns the enrolled device or
/// the reason for the log.
pub(crate) async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    issuer: &Issuer<'_>,
    peer: SocketAddr,
) -> Result<DeviceId, String> {
    let (kind, body) = read_frame(stream).await?;
    if kind != T_REQUEST {
        return Err(format!("frame type {kind} from an anonymous client"));
    }
    match handle_request(&body, issuer, peer) {
        Ok((device, parts)) => {
            let parts: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            write_frame(stream, T_ACCEPTED, &parts)
                .await
                .map_err(|e| format!("sending the answer: {e}"))?;
            Ok(device)
        }
        Err(Refusal(reason, why)) => {
            let message = match reason {
                RefusalReason::CodeRefused => {
                    "the code is wrong, expired or already used: ask for a new code (pos hub enroll-code)"
                }
                RefusalReason::TooManyAttempts => {
                    "too many failed attempts: every open code is void, ask for a new one"
                }
                RefusalReason::DeviceRevoked => "this device was revoked at the hub",
                RefusalReason::DeviceIdTaken => {
                    "another device is enrolled with this device id (was it copied?)"
                }
                RefusalReason::BadRequest => "the request is malformed",
                RefusalReason::Internal => "the hub could not complete the enrollment, see its log",
            };
            let json = serde_json::to_vec(&RefusedBody {
                reason,
                message: message.to_owned(),
            })
            .map_err(|e| e.to_string())?;
            // Best effort: the refusal is for the terminal's operator, the log has the reason.
            let _ = write_frame(stream, T_REFUSED, &[&json]).await;
            Err(why)
        }
    }
}

fn handle_request(
    body: &[u8],
    issuer: &Issuer<'_>,
    peer: SocketAddr,
) -> Result<(DeviceId, Vec<Vec<u8>>), Refusal> {
    let bad = |why: String| Refusal(RefusalReason::BadRequest, why);
    if body.len() < 32 {
        return Err(bad("short request".into()));
    }
    let (proof, json) = body.split_at(32);
    let r: RequestBody =
        serde_json::from_slice(json).map_err(|e| bad(format!("unreadable request: {e}")))?;
    if r.version != 1 || r.role != "terminal" {
        return Err(bad(format!(
            "version {} role `{}`: only terminals enroll, version 1",
            r.version, r.role
        )));
    }
    let name = r.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(bad("a device name is 1 to 64 printable characters".into()));
    }
    let audit_key =
        PublicKey::from_file_text(&r.audit_key).map_err(|e| bad(format!("audit key: {e}")))?;
    let tls_key = TlsPublicKey(unhex(&r.tls_key, "tls_key").map_err(bad)?);
    let nonce = unhex(&r.nonce, "nonce").map_err(bad)?;
    if nonce.len() != 32 {
        return Err(bad("nonce is not 32 bytes".into()));
    }
    let pop = possession_transcript(r.device, &nonce);
    let tls_sig = unhex(&r.tls_possession, "tls_possession").map_err(bad)?;
    let audit_sig: [u8; 64] = unhex(&r.audit_possession, "audit_possession")
        .map_err(bad)?
        .try_into()
        .map_err(|_| bad("audit_possession is not 64 bytes".into()))?;
    if !tls_key.verify(&pop, &tls_sig) || !audit_key.verify(&pop, &audit_sig) {
        return Err(bad(format!(
            "device {} from {peer}: the possession signatures do not verify",
            r.device
        )));
    }
    if r.device == issuer.hub {
        return Err(Refusal(
            RefusalReason::DeviceIdTaken,
            format!("{peer} tried to enroll with the hub's own id"),
        ));
    }
    // Issued before the code is checked (the record needs its fingerprint); a certificate
    // whose enrollment is refused is in no record, so the hub never accepts it.
    let now = SystemTime::now();
    let validity = Validity::days_from(now, issuer.ctx.device_validity_days);
    let cert = issuer
        .pki
        .issue_device_cert(r.device, &tls_key, validity)
        .map_err(|e| match e {
            PkiError::BadPublicKey => bad(e.to_string()),
            e => Refusal(RefusalReason::Internal, e.to_string()),
        })?;
    let record = EnrolledDevice {
        device: r.device,
        name: name.to_owned(),
        audit_key,
        cert_fingerprint: cert.fingerprint,
        cert_serial: cert.serial.clone(),
        cert_not_after: cert.validity.not_after,
        enrolled_at: now,
        peer_addr: Some(peer),
    };
    // The proof names the certificate the terminal saw: a request relayed by a man in the
    // middle matches no code here (and counts as a failed attempt).
    let fp = issuer.pki.server_fingerprint();
    let mut matched = None;
    let enrolled = issuer.ctx.book.enroll(
        &record,
        &mut |key| {
            let ok = key.verify(&[REQUEST_LABEL, &fp.0, json], proof);
            if ok {
                matched = Some(key.clone());
            }
            ok
        },
        now,
    );
    if let Err(e) = enrolled {
        let reason = match e {
            EnrollRefused::NoMatch | EnrollRefused::Expired | EnrollRefused::Used => {
                RefusalReason::CodeRefused
            }
            EnrollRefused::TooManyAttempts => RefusalReason::TooManyAttempts,
            EnrollRefused::Revoked(_) => RefusalReason::DeviceRevoked,
            EnrollRefused::IdTaken(_) => RefusalReason::DeviceIdTaken,
            EnrollRefused::Storage(_) => RefusalReason::Internal,
        };
        return Err(Refusal(
            reason,
            format!("device {} from {peer}: {e}", r.device),
        ));
    }
    let Some(code_key) = matched else {
        return Err(Refusal(
            RefusalReason::Internal,
            "the enrollment book accepted a code that did not match".into(),
        ));
    };
    let answer = AcceptedBody {
        version: 1,
        device: r.device,
        nonce: r.nonce.clone(),
        device_cert: hex(&cert.der),
        ca_cert: hex(issuer.pki.ca_cert()),
        hub: issuer.hub,
        hub_name: issuer.ctx.hub_name.clone(),
        hub_audit_key: issuer.audit_key.to_file_text().trim().to_owned(),
        server_name: issuer.pki.server_name().to_owned(),
    };
    let answer =
        serde_json::to_vec(&answer).map_err(|e| Refusal(RefusalReason::Internal, e.to_string()))?;
    let request_hash = ring::digest::digest(&ring::digest::SHA256, json);
    let mac = code_key.mac(&[RESPONSE_LABEL, &fp.0, request_hash.as_ref(), &answer]);
    tracing::info!(
        device = %r.device, name, %peer, cert = %cert.fingerprint, serial = %cert.serial,
        "enrolled a terminal"
    );
    Ok((r.device, vec![mac.as_ref().to_vec(), answer]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_grouped_and_forgiving_to_type() {
        let code = EnrollmentCode::generate().unwrap();
        let shown = code.to_string();
        assert_eq!(shown.len(), CODE_LEN + 3);
        assert_eq!(shown.matches('-').count(), 3);
        assert_eq!(EnrollmentCode::parse(&shown).unwrap(), code);
        assert_eq!(
            EnrollmentCode::parse(&shown.to_lowercase().replace('-', " ")).unwrap(),
            code
        );
        assert_eq!(
            EnrollmentCode::parse("oil2-3456-789A-BCDE").unwrap(),
            EnrollmentCode::parse("0112-3456-789A-BCDE").unwrap()
        );
        assert!(EnrollmentCode::parse("1234-5678-9ABC-DEF").is_err());
        assert!(EnrollmentCode::parse("1234-5678-9ABC-DEFU").is_err());
        assert!(EnrollmentCode::parse("1234-5678-9ABC-DEFÄ").is_err());
        assert_eq!(format!("{code:?}"), "EnrollmentCode(..)");
        assert_ne!(code.key(), EnrollmentCode::generate().unwrap().key());
    }

    #[test]
    fn the_code_key_matches_the_stores_derivation() {
        // pos_store::Store::enroll_code_key derives the same key: a code made by either side
        // works with the other. Test vector: blake3 derive_key, context below, canonical code.
        let code = EnrollmentCode::parse("0123-4567-89ab-cdef").unwrap();
        let expected = blake3::derive_key("3PlugPOS enroll-code key v1", b"0123456789ABCDEF");
        assert_eq!(code.key().0, expected);
        assert_eq!(
            crate::x509::hex_lower(&expected),
            "e98aec1035d9c2825d11f583713b4ca53840e51be12a18fa807016f900624f1d"
        );
    }

    #[test]
    fn a_mac_verifies_only_with_its_key_and_parts() {
        let k = EnrollmentCode::parse("ABCD-E123-4567-89AB").unwrap().key();
        let other = EnrollmentCode::parse("ABCD-E123-4567-89AC").unwrap().key();
        let tag = k.mac(&[b"a", b"bc"]);
        assert!(k.verify(&[b"a", b"bc"], tag.as_ref()));
        assert!(!k.verify(&[b"a", b"bd"], tag.as_ref()));
        assert!(!other.verify(&[b"a", b"bc"], tag.as_ref()));
    }

    #[tokio::test]
    async fn frames_over_the_limit_or_foreign_are_refused_before_reading_them() {
        let mut big = Vec::new();
        big.extend_from_slice(b"3E\x01\x01");
        big.extend_from_slice(&u32::MAX.to_be_bytes());
        let err = read_frame(&mut big.as_slice()).await.unwrap_err();
        assert!(err.contains("over the limit"), "{err}");
        let err = read_frame(&mut &b"GET / HTTP/1.1\r\n"[..])
            .await
            .unwrap_err();
        assert!(err.contains("not an enrollment frame"), "{err}");
    }
}

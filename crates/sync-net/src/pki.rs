//! The branch PKI: the hub's CA, the hub's server certificate and device client certificates.
//!
//! * **Branch CA**: self-signed, ECDSA P-256, valid for [`CA_VALIDITY_DAYS`], may sign only end
//!   entities (path length 0). Its key lives in `<hub data dir>/tls/ca-key.pem` (0600) and never
//!   leaves the hub; its certificate (`ca-cert.pem`) is what terminals pin at enrollment.
//! * **Hub server certificate**: issued by the CA at every start with a fresh key held only in
//!   memory; SAN = the hub's stable name [`hub_server_name`] (what terminals verify, whatever
//!   address they dial), plus any extra DNS names and IP addresses given; EKU serverAuth.
//! * **Device certificates**: issued at enrollment for a device's TLS public key; subject
//!   CN = the device id (UUID), SAN `urn:uuid:<id>`; EKU clientAuth only; a random 127-bit
//!   serial; validity from a [`Validity`] (expiry is enforced by webpki at every handshake).
//!
//! All keys are ECDSA P-256 with SHA-256, which rustls with *ring* verifies in TLS 1.3. A
//! device's TLS key is separate from its ed25519 audit key (`pos_audit::DeviceKey`).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pos_core::DeviceId;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber, SignatureAlgorithm,
    PKCS_ECDSA_P256_SHA256,
};
use ring::rand::SecureRandom;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::files::{self, FileError};
use crate::x509::{self, CertInfo};

/// The CA key file in the hub's `tls/` directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The CA certificate file in the hub's `tls/` directory.
pub const CA_CERT_FILE: &str = "ca-cert.pem";
/// How long a new branch CA is valid.
pub const CA_VALIDITY_DAYS: u32 = 30 * 365;
/// How long a hub server certificate is valid (it is re-issued at every start).
pub const SERVER_VALIDITY_DAYS: u32 = 5 * 365;
/// How long a device certificate is valid unless configured otherwise.
pub const DEFAULT_DEVICE_VALIDITY_DAYS: u32 = 2 * 365;

const DAY: Duration = Duration::from_secs(86_400);

/// A PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("{file}: {why}")]
    BadFile { file: String, why: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("{0}")]
    Mismatch(String),
    #[error("the device public key is not an uncompressed P-256 point")]
    BadPublicKey,
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Generate(e.to_string())
    }
}

/// The SHA-256 of a certificate's DER bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn of(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }

    pub fn to_hex(&self) -> String {
        x509::hex_lower(&self.0)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// `text` is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a certificate fingerprint is 64 hex digits (sha256 of the DER)")]
pub struct ParseFingerprintError;

impl std::str::FromStr for Fingerprint {
    type Err = ParseFingerprintError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 64 || !s.is_ascii() {
            return Err(ParseFingerprintError);
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| ParseFingerprintError)?;
        }
        Ok(Fingerprint(out))
    }
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// From an hour before `now` (a little clock difference between hub and terminal) for `days`.
    pub fn days_from(now: SystemTime, days: u32) -> Self {
        Validity {
            not_before: now - Duration::from_secs(3600),
            not_after: now + DAY * days,
        }
    }
}

fn to_offset(t: SystemTime) -> Result<time::OffsetDateTime, PkiError> {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| PkiError::Generate(format!("time out of range: {e}")))
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Generate("no randomness".into()))?;
    // Positive and non-zero, 16 bytes on the wire (RFC 5280 allows up to 20).
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

/// The DNS name in the hub's server certificate that terminals verify (stable across address
/// changes; `.invalid` so it can never clash with a real name).
pub fn hub_server_name(hub: DeviceId) -> String {
    format!("{hub}.hub.3plugpos.invalid")
}

/// A device's TLS key pair (ECDSA P-256), separate from its audit key.
pub struct TlsKey(KeyPair);

impl std::fmt::Debug for TlsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsKey")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

impl TlsKey {
    pub fn generate() -> Result<Self, PkiError> {
        Ok(TlsKey(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?))
    }

    /// PKCS#8 PEM, for a 0600 file.
    pub fn to_pem(&self) -> String {
        self.0.serialize_pem()
    }

    pub fn from_pem(text: &str, file: &str) -> Result<Self, PkiError> {
        let kp = KeyPair::from_pem(text).map_err(|e| PkiError::BadFile {
            file: file.to_owned(),
            why: format!("not a PEM private key ({e})"),
        })?;
        if !kp.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err(PkiError::BadFile {
                file: file.to_owned(),
                why: "not an ECDSA P-256 key".to_owned(),
            });
        }
        Ok(TlsKey(kp))
    }

    pub fn public(&self) -> TlsPublicKey {
        TlsPublicKey(self.0.public_key_raw().to_vec())
    }

    /// The key as rustls takes it.
    pub fn private_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.0.serialize_der()))
    }

    /// An ECDSA P-256 SHA-256 signature (ASN.1 DER) over `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        use rcgen::SigningKey;
        Ok(self.0.sign(message)?)
    }
}

/// A device's TLS public key: an uncompressed P-256 point (65 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPublicKey(pub Vec<u8>);

impl std::fmt::Debug for TlsPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsPublicKey({})", x509::hex_lower(&self.0))
    }
}

impl TlsPublicKey {
    fn check_shape(&self) -> Result<(), PkiError> {
        if self.0.len() == 65 && self.0[0] == 4 {
            Ok(())
        } else {
            Err(PkiError::BadPublicKey)
        }
    }

    /// Check an ECDSA P-256 SHA-256 signature (ASN.1 DER) made with the private half.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &self.0)
            .verify(message, signature)
            .is_ok()
    }

    /// The SubjectPublicKeyInfo (DER) a certificate for this key carries.
    pub fn spki_der(&self) -> Vec<u8> {
        PublicKeyData::subject_public_key_info(self)
    }
}

impl PublicKeyData for TlsPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &PKCS_ECDSA_P256_SHA256
    }
}

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub der: CertificateDer<'static>,
    pub fingerprint: Fingerprint,
    /// Serial as lowercase hex.
    pub serial: String,
    pub validity: Validity,
}

impl IssuedCert {
    pub fn pem(&self) -> String {
        cert_pem(&self.der)
    }
}

/// A certificate as PEM text.
pub fn cert_pem(der: &CertificateDer<'_>) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Read the first certificate of a PEM text.
pub fn cert_from_pem(text: &str, file: &str) -> Result<CertificateDer<'static>, PkiError> {
    CertificateDer::from_pem_slice(text.as_bytes()).map_err(|e| PkiError::BadFile {
        file: file.to_owned(),
        why: format!("no PEM certificate ({e})"),
    })
}

/// Read what a certificate says about itself (serial, validity, subject CN, public key).
pub fn cert_info(der: &CertificateDer<'_>) -> Result<CertInfo, x509::CertParseError> {
    x509::parse_certificate(der.as_ref())
}

/// The names the hub's server certificate carries besides [`hub_server_name`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// The hub's CA and its current server certificate.
pub struct HubPki {
    hub: DeviceId,
    issuer: Issuer<'static, KeyPair>,
    ca_cert: CertificateDer<'static>,
    ca_info: CertInfo,
    server_name: String,
    server_cert: CertificateDer<'static>,
    server_key: TlsKey,
    server_fingerprint: Fingerprint,
}

impl std::fmt::Debug for HubPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubPki")
            .field("hub", &self.hub)
            .field("ca", &Fingerprint::of(&self.ca_cert))
            .field("server", &self.server_fingerprint)
            .finish_non_exhaustive()
    }
}

fn ca_params(hub: DeviceId) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "3PlugPOS");
    dn.push(DnType::CommonName, format!("3PlugPOS branch CA {hub}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl HubPki {
    /// Load the branch CA from `tls_dir` (creating it, and the directory, on first use) and
    /// issue this run's server certificate. Fails if the CA files do not belong together or
    /// were made for another hub.
    pub fn load_or_create(
        tls_dir: &Path,
        hub: DeviceId,
        names: &HubNames,
    ) -> Result<Self, PkiError> {
        files::ensure_private_dir(tls_dir)?;
        let key_path = tls_dir.join(CA_KEY_FILE);
        let cert_path = tls_dir.join(CA_CERT_FILE);
        let (key_exists, cert_exists) = (key_path.exists(), cert_path.exists());
        if key_exists != cert_exists {
            let (have, missing) = if key_exists {
                (CA_KEY_FILE, CA_CERT_FILE)
            } else {
                (CA_CERT_FILE, CA_KEY_FILE)
            };
            return Err(PkiError::Mismatch(format!(
                "{} has {have} but not {missing}: restore both from a backup (terminals pin this CA)",
                tls_dir.display()
            )));
        }
        if !key_exists {
            let (key, cert) = Self::new_ca(hub, SystemTime::now())?;
            files::write_private(&key_path, key.serialize_pem().as_bytes())?;
            files::write_public(&cert_path, cert_pem(&cert).as_bytes())?;
            tracing::info!(fingerprint = %Fingerprint::of(&cert), "created the branch CA");
        }
        let key_text = files::read_text(&key_path)?;
        let key = KeyPair::from_pem(&key_text).map_err(|e| PkiError::BadFile {
            file: key_path.display().to_string(),
            why: format!("not a PEM private key ({e})"),
        })?;
        let cert = cert_from_pem(
            &files::read_text(&cert_path)?,
            &cert_path.display().to_string(),
        )?;
        Self::assemble(hub, key, cert, names)
    }

    /// A CA that exists only in memory (tests, and the "another CA" of refusal tests).
    pub fn in_memory(hub: DeviceId, names: &HubNames) -> Result<Self, PkiError> {
        let (key, cert) = Self::new_ca(hub, SystemTime::now())?;
        Self::assemble(hub, key, cert, names)
    }

    fn new_ca(
        hub: DeviceId,
        now: SystemTime,
    ) -> Result<(KeyPair, CertificateDer<'static>), PkiError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = ca_params(hub);
        params.not_before = to_offset(now - DAY)?;
        params.not_after = to_offset(now + DAY * CA_VALIDITY_DAYS)?;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key)?;
        Ok((key, cert.der().clone()))
    }

    fn assemble(
        hub: DeviceId,
        key: KeyPair,
        ca_cert: CertificateDer<'static>,
        names: &HubNames,
    ) -> Result<Self, PkiError> {
        let ca_info = cert_info(&ca_cert).map_err(|e| PkiError::BadFile {
            file: CA_CERT_FILE.to_owned(),
            why: e.to_string(),
        })?;
        let issuer = Issuer::new(ca_params(hub), key);
        let server_name = hub_server_name(hub);
        let server_key = TlsKey::generate()?;
        let now = SystemTime::now();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "3PlugPOS");
        dn.push(DnType::CommonName, format!("3PlugPOS hub {hub}"));
        params.distinguished_name = dn;
        params.subject_alt_names = std::iter::once(server_name.clone())
            .chain(names.dns.iter().cloned())
            .map(|n| {
                n.try_into()
                    .map(SanType::DnsName)
                    .map_err(|e: rcgen::Error| PkiError::Generate(e.to_string()))
            })
            .chain(names.ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // As lenient as the CA itself towards terminals whose clock is behind.
        params.not_before = to_offset(ca_info.not_before.min(now - DAY))?;
        params.not_after = to_offset((now + DAY * SERVER_VALIDITY_DAYS).min(ca_info.not_after))?;
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let server_cert = params.signed_by(&server_key.0, &issuer)?.der().clone();
        let pki = HubPki {
            hub,
            issuer,
            server_fingerprint: Fingerprint::of(&server_cert),
            ca_cert,
            ca_info,
            server_name,
            server_cert,
            server_key,
        };
        pki.self_test()?;
        Ok(pki)
    }

    /// The fresh server certificate must verify against the stored CA certificate: this proves
    /// the CA key and certificate belong together and to this hub.
    fn self_test(&self) -> Result<(), PkiError> {
        let verifier = crate::tls::server_verifier(&self.ca_cert)
            .map_err(|e| PkiError::Mismatch(format!("the CA certificate is unusable: {e}")))?;
        let name = ServerName::try_from(self.server_name.clone())
            .map_err(|e| PkiError::Generate(e.to_string()))?;
        verifier
            .verify_server_cert(&self.server_cert, &[], &name, &[], UnixTime::now())
            .map_err(|e| {
                PkiError::Mismatch(format!(
                    "{CA_KEY_FILE} and {CA_CERT_FILE} do not belong together or were made for \
                     another hub ({e}); restore both from this hub's backup"
                ))
            })?;
        Ok(())
    }

    pub fn hub(&self) -> DeviceId {
        self.hub
    }

    pub fn ca_cert(&self) -> &CertificateDer<'static> {
        &self.ca_cert
    }

    pub fn ca_fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.ca_cert)
    }

    /// When the CA expires (devices must be re-enrolled under a new CA before then).
    pub fn ca_not_after(&self) -> SystemTime {
        self.ca_info.not_after
    }

    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    pub fn server_cert(&self) -> &CertificateDer<'static> {
        &self.server_cert
    }

    pub fn server_fingerprint(&self) -> Fingerprint {
        self.server_fingerprint
    }

    pub(crate) fn server_key_der(&self) -> PrivateKeyDer<'static> {
        self.server_key.private_key_der()
    }

    /// Issue a client certificate for `device`'s TLS public key. The validity is cut to the
    /// CA's own.
    pub fn issue_device_cert(
        &self,
        device: DeviceId,
        public_key: &TlsPublicKey,
        validity: Validity,
    ) -> Result<IssuedCert, PkiError> {
        public_key.check_shape()?;
        let validity = Validity {
            not_before: validity.not_before,
            not_after: validity.not_after.min(self.ca_info.not_after),
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "3PlugPOS");
        dn.push(DnType::CommonName, device.to_string());
        params.distinguished_name = dn;
        let uri = format!("urn:uuid:{device}")
            .try_into()
            .map_err(|e: rcgen::Error| PkiError::Generate(e.to_string()))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = to_offset(validity.not_before)?;
        params.not_after = to_offset(validity.not_after)?;
        let serial = random_serial()?;
        let serial_hex = x509::hex_lower(&serial.to_bytes());
        params.serial_number = Some(serial);
        params.use_authority_key_identifier_extension = true;
        let der = params.signed_by(public_key, &self.issuer)?.der().clone();
        Ok(IssuedCert {
            fingerprint: Fingerprint::of(&der),
            der,
            serial: serial_hex,
            validity,
        })
    }
}

/// The device id a device certificate names (its subject CN).
pub fn device_of_cert(der: &CertificateDer<'_>) -> Option<DeviceId> {
    cert_info(der).ok()?.subject_cn?.parse().ok()
}

/// Shared handle, for the server's enrollment path.
pub type SharedPki = Arc<HubPki>;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hub() -> DeviceId {
        DeviceId::from_bytes([7; 16])
    }

    #[test]
    fn the_ca_is_created_once_with_a_private_key_file_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tls");
        let a = HubPki::load_or_create(&dir, hub(), &HubNames::default()).unwrap();
        let mode = std::fs::metadata(dir.join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = HubPki::load_or_create(&dir, hub(), &HubNames::default()).unwrap();
        assert_eq!(a.ca_fingerprint(), b.ca_fingerprint());
        assert_ne!(
            a.server_fingerprint(),
            b.server_fingerprint(),
            "fresh per start"
        );
        let other = DeviceId::from_bytes([8; 16]);
        let err = HubPki::load_or_create(&dir, other, &HubNames::default()).unwrap_err();
        assert!(err.to_string().contains("another hub"), "{err}");
        std::fs::remove_file(dir.join(CA_CERT_FILE)).unwrap();
        let err = HubPki::load_or_create(&dir, hub(), &HubNames::default()).unwrap_err();
        assert!(err.to_string().contains("restore both"), "{err}");
    }

    #[test]
    fn a_device_certificate_names_the_device_and_its_key() {
        let pki = HubPki::in_memory(hub(), &HubNames::default()).unwrap();
        let key = TlsKey::generate().unwrap();
        let device = DeviceId::from_bytes([3; 16]);
        let now = SystemTime::now();
        let cert = pki
            .issue_device_cert(device, &key.public(), Validity::days_from(now, 30))
            .unwrap();
        let info = cert_info(&cert.der).unwrap();
        assert_eq!(device_of_cert(&cert.der), Some(device));
        assert_eq!(info.spki, key.public().spki_der());
        assert_eq!(info.serial_hex(), cert.serial);
        let days = info.not_after.duration_since(now).unwrap().as_secs() / 86_400;
        assert!((29..=30).contains(&days), "{days}");
        assert_eq!(cert.fingerprint, Fingerprint::of(&cert.der));
        let pem = cert.pem();
        assert_eq!(cert_from_pem(&pem, "x").unwrap(), cert.der);
    }

    #[test]
    fn keys_round_trip_through_pem_and_sign() {
        let key = TlsKey::generate().unwrap();
        let again = TlsKey::from_pem(&key.to_pem(), "k").unwrap();
        assert_eq!(key.public(), again.public());
        let sig = again.sign(b"hello").unwrap();
        assert!(key.public().verify(b"hello", &sig));
        assert!(!key.public().verify(b"hellO", &sig));
        assert!(TlsPublicKey(vec![4; 10]).check_shape().is_err());
    }

    #[test]
    fn fingerprints_parse_and_print() {
        let f = Fingerprint::of(b"x");
        assert_eq!(f.to_hex().parse::<Fingerprint>().unwrap(), f);
        assert!("zz".parse::<Fingerprint>().is_err());
    }
}

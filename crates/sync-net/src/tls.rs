//! rustls configurations (TLS 1.3 only, *ring*): the hub's server and the terminal's client.
//!
//! * The hub asks every client for a certificate. A certificate must chain to the branch CA
//!   (webpki: signature, validity, clientAuth EKU) **and** be active in the [`DeviceDirectory`]
//!   (issued to that device, not revoked), else the handshake fails with a TLS alert
//!   (`certificate_revoked`, `access_denied`, `certificate_expired`, `unknown_ca`) before a
//!   single frame is read. A client without a certificate completes the handshake but may only
//!   speak the enrollment exchange (see [`mod@crate::enroll`]).
//! * The terminal trusts only the CA it pinned at enrollment (never the system roots), checks
//!   the hub's stable name [`crate::pki::hub_server_name`] whatever address it dialled, and
//!   presents its device certificate.
//! * Session resumption is off on both ends: every connection runs the full handshake, so a
//!   revocation applies to the very next connection.

use std::fmt;
use std::sync::{Arc, Mutex};

use pos_core::DeviceId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};

use crate::pki::{device_of_cert, Fingerprint, HubPki, TlsKey};

/// The ALPN protocol id both ends offer.
pub const ALPN: &[u8] = b"3plugpos/1";

/// A TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("TLS setup: {0}")]
    Verifier(String),
}

/// *ring*, TLS 1.3 cipher suites only (this build has no TLS 1.2 code at all).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether a device certificate may connect, as the hub's records say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued to this device at enrollment and not revoked.
    Active,
    /// The device (or this certificate) was revoked.
    Revoked,
    /// Not a certificate the hub's records know for this device (superseded, or never issued).
    Unknown,
}

/// The hub's device records, consulted during every client handshake. Called on the
/// handshake path: keep it quick (an in-memory map refreshed on change), never blocking on IO.
pub trait DeviceDirectory: Send + Sync {
    fn certificate_status(&self, device: DeviceId, fingerprint: &Fingerprint) -> CertStatus;
}

/// webpki's chain check, then the device directory.
struct DeviceCertVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    directory: Arc<dyn DeviceDirectory>,
}

impl fmt::Debug for DeviceCertVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceCertVerifier")
    }
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // Anonymous sessions exist only for enrollment; the server enforces that.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let fingerprint = Fingerprint::of(end_entity);
        if let Err(e) = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)
        {
            tracing::warn!(cert = %fingerprint, "client certificate refused: {e}");
            return Err(e);
        }
        let Some(device) = device_of_cert(end_entity) else {
            tracing::warn!(cert = %fingerprint, "client certificate names no device");
            return Err(CertificateError::BadEncoding.into());
        };
        match self.directory.certificate_status(device, &fingerprint) {
            CertStatus::Active => Ok(ClientCertVerified::assertion()),
            CertStatus::Revoked => {
                tracing::warn!(%device, cert = %fingerprint, "refused a revoked device");
                Err(CertificateError::Revoked.into())
            }
            CertStatus::Unknown => {
                tracing::warn!(
                    %device, cert = %fingerprint,
                    "refused a certificate the hub has no record of (superseded or not issued here)"
                );
                Err(CertificateError::ApplicationVerificationFailure.into())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn roots(ca: &CertificateDer<'_>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone().into_owned())?;
    Ok(Arc::new(roots))
}

/// A verifier of hub server certificates that trusts only `ca`.
pub(crate) fn server_verifier(
    ca: &CertificateDer<'_>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    WebPkiServerVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))
}

/// The hub's server configuration: its current server certificate, client certificates from
/// the branch CA checked against `directory`, anonymous clients admitted for enrollment only.
pub fn hub_server_config(
    pki: &HubPki,
    directory: Arc<dyn DeviceDirectory>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let inner =
        WebPkiClientVerifier::builder_with_provider(roots(pki.ca_cert())?, provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let verifier = Arc::new(DeviceCertVerifier { inner, directory });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server_cert().clone()], pki.server_key_der())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    // No resumption: a resumed session would skip the client certificate check.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The terminal's client configuration: trusts only the pinned `hub_ca`, presents `cert`.
pub fn terminal_client_config(
    hub_ca: &CertificateDer<'_>,
    cert: CertificateDer<'static>,
    key: &TlsKey,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(hub_ca)?)
        .with_client_auth_cert(vec![cert], key.private_key_der())?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Trust on first use, for enrollment only: any server certificate is accepted and recorded
/// (the handshake signature is still checked, so the peer holds that certificate's key). The
/// enrollment proof binds the recorded certificate, see [`crate::enroll`].
#[derive(Debug)]
pub(crate) struct FirstUse {
    seen: Mutex<Option<CertificateDer<'static>>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl FirstUse {
    pub(crate) fn observed(&self) -> Option<CertificateDer<'static>> {
        self.seen.lock().ok()?.clone()
    }
}

impl ServerCertVerifier for FirstUse {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| rustls::Error::General("poisoned".into()))?;
        *seen = Some(end_entity.clone().into_owned());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client configuration for one enrollment connection (no client certificate) and the
/// recorder of the certificate the server shows.
pub(crate) fn enrollment_client_config() -> Result<(Arc<ClientConfig>, Arc<FirstUse>), TlsError> {
    let provider = provider();
    let first_use = Arc::new(FirstUse {
        seen: Mutex::new(None),
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(first_use.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.resumption = Resumption::disabled();
    Ok((Arc::new(config), first_use))
}

/// The device a server-side connection authenticated (from its verified client certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDevice {
    pub device: DeviceId,
    pub fingerprint: Fingerprint,
}

/// Who a server-side connection's client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// No client certificate: enrollment only.
    Anonymous,
    Device(PeerDevice),
    /// A certificate that names no device (the verifier refuses these; never trusted).
    Unnamed,
}

pub fn peer_of(conn: &rustls::ServerConnection) -> Peer {
    let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) else {
        return Peer::Anonymous;
    };
    match device_of_cert(cert) {
        Some(device) => Peer::Device(PeerDevice {
            device,
            fingerprint: Fingerprint::of(cert),
        }),
        None => Peer::Unnamed,
    }
}

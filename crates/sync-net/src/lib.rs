//! The sync transport of 3PlugPOS: the branch PKI, TLS 1.3 with mutual authentication,
//! enrollment of terminals, and the tokio drivers that run the `pos_sync` state machines over it.
//!
//! * [`pki`]: the hub's branch CA (rcgen, ECDSA P-256), its server certificate, device
//!   certificates, fingerprints.
//! * [`tls`]: rustls configurations (TLS 1.3 only, *ring*); the hub's client verifier checks
//!   the chain and then the [`DeviceDirectory`] (revoked or unknown certificates are refused
//!   during the handshake, before any frame).
//! * [`mod@enroll`]: one-time codes and the enrollment exchange on the same TLS port.
//! * [`HubServer`] and [`TerminalClient`]: tokio tasks driving `pos_sync::HubConnection` and
//!   `pos_sync::TerminalConnection`; storage is injected through [`HubStorage`] and
//!   [`TerminalStorage`] (no dependency on pos-store, so tests run in memory).
//! * [`memory`]: an in-memory enrollment book and device directory.
//!
//! There is no plaintext port: a client that does not speak TLS fails the handshake and is
//! dropped; the hub keeps serving everyone else.

mod driver;
pub mod enroll;
pub mod files;
pub mod hub_server;
pub mod memory;
pub mod pki;
pub mod terminal_client;
pub mod tls;
pub mod x509;

pub use driver::StorageError;
pub use enroll::{
    enroll, EnrollError, EnrollRequest, EnrolledDevice, Enrollment, EnrollmentBook, EnrollmentCode,
    HubEnrollment, HubRecord, TerminalTls,
};
pub use hub_server::{HubHandle, HubServer, HubServerConfig, HubServices, HubStorage, Notice};
pub use pki::{Fingerprint, HubNames, HubPki, TlsKey};
pub use terminal_client::{
    Backoff, SyncStatus, TerminalClient, TerminalClientConfig, TerminalIdentity, TerminalStorage,
};
pub use tls::{CertStatus, DeviceDirectory};

/// The tls/ directory inside a device's data dir.
pub fn tls_dir(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("tls")
}

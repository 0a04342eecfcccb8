//! The sync transport of 3PlugPOS: the branch PKI, TLS 1.3 with mutual authentication,
//! enrollment of terminals, and the tokio drivers that run the `pos_sync` state machines over it.

pub mod files;
pub mod pki;
pub mod tls;
pub mod x509;

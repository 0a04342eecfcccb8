//! Payloads of the core modules' events (JSON in the log). Each kind names its module and kind.

use serde::{Deserialize, Serialize};

use crate::{DeviceId, DeviceRole};

/// `device.registered`: a device (this one at `pos init`, or one enrolled at the hub) and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRegistered {
    pub device: DeviceId,
    pub role: DeviceRole,
    pub branch: String,
    pub name: String,
    /// ed25519 public key, hex.
    pub public_key: String,
    /// Fingerprint of the device's TLS client certificate (lowercase hex of a hash of the DER),
    /// recorded at enrollment by the hub; absent for a device's own registration at `pos init`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
}

/// `device.revoked`: the device may no longer sync; its past events stay valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRevoked {
    pub device: DeviceId,
    pub reason: String,
}

/// `print.queued`: a receipt waits for the printer (queued in the sale's own commit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintQueued {
    pub job: crate::EventId,
    pub receipt: u64,
    /// A reprint, marked COPY.
    pub copy: bool,
}

/// `print.started`: the job's bytes are about to go to the printer (attempt number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintStarted {
    pub job: crate::EventId,
    pub attempt: u32,
}

/// `print.done`: the printer confirmed the job (status fine after it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintDone {
    pub job: crate::EventId,
}

impl PrintQueued {
    pub const MODULE: &'static str = "print";
    pub const KIND: &'static str = "queued";
}
impl PrintStarted {
    pub const KIND: &'static str = "started";
}
impl PrintDone {
    pub const KIND: &'static str = "done";
}

/// The setting through which the hub publishes its active alerts to the terminals (settings are
/// hub-authoritative master data every terminal receives): a JSON array of alert texts.
pub const HUB_ALERTS_SETTING: &str = "hub.alerts";

/// `settings.changed`: a hub-authoritative setting, with the value before for the auditor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingChanged {
    pub key: String,
    pub before: Option<serde_json::Value>,
    pub after: serde_json::Value,
}

/// `stock.moved`: a change of on-hand quantity (sale, receipt, count, damage...).
/// Quantities are in thousandths of the item's unit (1 each = 1000, 1 kg = 1000 g).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockMoved {
    pub item: String,
    pub quantity: i64,
    /// Why the stock moved; absent in records written before causes were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<StockCause>,
    /// What it belongs to, e.g. the receipt number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// Why stock moved; meant for an optional `cause` on [`StockMoved`] (see the sale engine's
/// inventory rules). Stock level = sum of movements whatever their cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockCause {
    Sale,
    Refund,
    Receiving,
    Adjustment,
    Count,
    PostVoid,
}

/// `security.sync_rejected`: this device refused a peer's records of `origin` at `seq` (a forged
/// or broken chain) and holds that origin: nothing more of it is accepted until someone with
/// the `device_enroll` permission releases it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRejected {
    pub origin: DeviceId,
    pub seq: u64,
    /// The verifier's finding, as text (sanitised, at most 256 characters).
    pub why: String,
    /// The peer that sent the records, when it is not `origin` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_by: Option<DeviceId>,
}

/// `security.sync_released`: the hold on `origin` was lifted (the actor is the event's actor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncReleased {
    pub origin: DeviceId,
    pub reason: String,
}

/// `security.enroll_code_created`: a one-time enrollment code was issued (only its id and
/// expiry are recorded; the code itself is never stored or logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollCodeCreated {
    pub code_id: String,
    /// Unix milliseconds (device clock).
    pub expires_ms: u64,
}

/// `security.enroll_code_redeemed`: a code was used up by a device enrolling (its
/// `device.registered` follows, in the same commit when the device was known at redemption).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollCodeRedeemed {
    pub code_id: String,
    /// The device enrolling, when known at redemption (its `device.registered` follows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
}

/// `security.enroll_failed`: an enrollment attempt was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollFailed {
    /// `unknown_code`, `expired`, `already_used`, `too_many_attempts`, `device_revoked`,
    /// `device_id_taken` or `bad_request`.
    pub reason: String,
    /// The code's id when the code was recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_id: Option<String>,
    /// The device that asked, as it named itself (when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
}

/// The module of the sync and enrollment security events (the same as `pos_auth`'s).
pub const SECURITY_MODULE: &str = "security";

impl SyncRejected {
    pub const MODULE: &'static str = SECURITY_MODULE;
    pub const KIND: &'static str = "sync_rejected";
}
impl SyncReleased {
    pub const MODULE: &'static str = SECURITY_MODULE;
    pub const KIND: &'static str = "sync_released";
}
impl EnrollCodeCreated {
    pub const MODULE: &'static str = SECURITY_MODULE;
    pub const KIND: &'static str = "enroll_code_created";
}
impl EnrollCodeRedeemed {
    pub const MODULE: &'static str = SECURITY_MODULE;
    pub const KIND: &'static str = "enroll_code_redeemed";
}
impl EnrollFailed {
    pub const MODULE: &'static str = SECURITY_MODULE;
    pub const KIND: &'static str = "enroll_failed";
}

impl DeviceRegistered {
    pub const MODULE: &'static str = "device";
    pub const KIND: &'static str = "registered";
}
impl DeviceRevoked {
    pub const MODULE: &'static str = "device";
    pub const KIND: &'static str = "revoked";
}
impl SettingChanged {
    pub const MODULE: &'static str = "settings";
    pub const KIND: &'static str = "changed";
}
impl StockMoved {
    pub const MODULE: &'static str = "stock";
    pub const KIND: &'static str = "moved";
}

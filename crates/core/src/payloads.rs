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

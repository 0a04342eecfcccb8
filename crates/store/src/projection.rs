//! Projections: tables of current state derived from events, updated in the event's transaction.
//!
//! Each module owns its tables and is the only writer. A projection must give the same tables
//! when the log is replayed in arrival order (`rebuild`), so it may only read its own tables and
//! the event.

use pos_audit::Event;
use pos_core::payloads::{DeviceRegistered, DeviceRevoked, SettingChanged, StockMoved};
use rusqlite::{params, Transaction};
use serde::de::DeserializeOwned;

/// Why a projection refused an event; the whole commit is rolled back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal(e.to_string())
    }
}

pub trait Projection: Send + Sync + std::fmt::Debug {
    /// The module whose events this projection applies.
    fn module(&self) -> &'static str;
    /// The tables it owns: emptied before a rebuild.
    fn tables(&self) -> &'static [&'static str];
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal>;
}

pub(crate) fn payload<T: DeserializeOwned>(event: &Event) -> Result<T, Refusal> {
    serde_json::from_slice(&event.payload).map_err(|e| {
        Refusal(format!(
            "payload does not match {}.{}: {e}",
            event.module, event.kind
        ))
    })
}

fn unknown_kind(event: &Event) -> Refusal {
    Refusal(format!(
        "unknown kind `{}` for module `{}`",
        event.kind, event.module
    ))
}

/// The projections every device has.
pub(crate) fn builtin() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(DeviceProjection),
        Box::new(SettingsProjection),
        Box::new(StockProjection),
        Box::new(crate::accounts::UserProjection),
        Box::new(crate::accounts::SecurityProjection),
        Box::new(crate::catalogue::CatalogueProjection),
        Box::new(crate::sales::SaleProjection),
        Box::new(crate::sales::ShiftProjection),
        Box::new(crate::print::PrintProjection),
        Box::new(crate::sync::SyncHoldProjection),
        // After the module's own projections: they validate the event first (a refusal rolls
        // the whole event back), and a post-void reads the sale `SaleProjection` stored.
        Box::new(crate::analytics::SaleAnalytics),
        Box::new(crate::analytics::ShiftAnalytics),
        Box::new(crate::analytics::DrawerAnalytics),
        Box::new(crate::analytics::BackupAnalytics),
    ]
}

#[derive(Debug)]
struct DeviceProjection;

impl Projection for DeviceProjection {
    fn module(&self) -> &'static str {
        DeviceRegistered::MODULE
    }
    fn tables(&self) -> &'static [&'static str] {
        &["device_registry"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        if event.kind == DeviceRevoked::KIND {
            let p: DeviceRevoked = payload(event)?;
            let changed = tx
                .prepare_cached(
                    "UPDATE device_registry SET revoked_hlc = ?2
                     WHERE device = ?1 AND revoked_hlc IS NULL",
                )?
                .execute(params![p.device.as_bytes(), event.hlc.raw() as i64])?;
            if changed == 0 {
                return Err(Refusal(format!(
                    "device {} is unknown or already revoked",
                    p.device
                )));
            }
            return Ok(());
        }
        if event.kind != DeviceRegistered::KIND {
            return Err(unknown_kind(event));
        }
        let p: DeviceRegistered = payload(event)?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&p.public_key, &mut key)
            .map_err(|_| Refusal("public_key is not 64 hex characters".into()))?;
        tx.prepare_cached(
            "INSERT INTO device_registry (device, role, branch, name, public_key, added_hlc,
                 cert_fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (device) DO UPDATE SET role = ?2, branch = ?3, name = ?4,
                 public_key = ?5, added_hlc = ?6, revoked_hlc = NULL,
                 cert_fingerprint = ?7",
        )?
        .execute(params![
            p.device.as_bytes(),
            p.role.as_str(),
            p.branch,
            p.name,
            &key[..],
            event.hlc.raw() as i64,
            p.cert_fingerprint
        ])?;
        Ok(())
    }
}

#[derive(Debug)]
struct SettingsProjection;

impl Projection for SettingsProjection {
    fn module(&self) -> &'static str {
        SettingChanged::MODULE
    }
    fn tables(&self) -> &'static [&'static str] {
        &["settings_values"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        if event.kind != SettingChanged::KIND {
            return Err(unknown_kind(event));
        }
        let p: SettingChanged = payload(event)?;
        tx.prepare_cached(
            "INSERT INTO settings_values (key, value, updated_hlc) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = ?2, updated_hlc = ?3",
        )?
        .execute(params![p.key, p.after.to_string(), event.hlc.raw() as i64])?;
        Ok(())
    }
}

#[derive(Debug)]
struct StockProjection;

impl Projection for StockProjection {
    fn module(&self) -> &'static str {
        StockMoved::MODULE
    }
    fn tables(&self) -> &'static [&'static str] {
        &["stock_levels"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        if event.kind != StockMoved::KIND {
            return Err(unknown_kind(event));
        }
        let p: StockMoved = payload(event)?;
        if p.item.is_empty() {
            return Err(Refusal("item must not be empty".into()));
        }
        tx.prepare_cached(
            "INSERT INTO stock_levels (item, quantity, movements) VALUES (?1, ?2, 1)
             ON CONFLICT (item) DO UPDATE SET quantity = quantity + ?2, movements = movements + 1",
        )?
        .execute(params![p.item, p.quantity])?;
        Ok(())
    }
}

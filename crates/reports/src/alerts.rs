//! Alert rules: pure functions of the aggregates' rows and the device's status.
//!
//! The hub evaluates them (e.g. every 30 s and when its display asks) with the thresholds of
//! the config's `[alerts]` section (and `[hub] offline_alert_min`); the display lists them and
//! terminals show a banner. IO stays with the caller: it reads the sync status, the backup
//! status and the disk usage and passes them in.

use pos_core::DeviceId;
use serde::{Deserialize, Serialize};

use crate::rows::{CashierRow, StockCoverRow, TerminalRow};

/// Thresholds (the config's `[alerts]` section maps onto this; defaults match it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRules {
    /// Low stock when on hand (whole units) is at or below this.
    pub low_stock_units: u32,
    /// … or when it lasts fewer days than this at the recent rate of sale (0 = off).
    pub low_stock_cover_days: u32,
    /// Days of sales the rate of sale is averaged over for the cover.
    pub cover_window_days: u32,
    /// A cashier's (line voids + post-voids) / sales above this percentage…
    pub void_rate_pct: u32,
    /// … or refunds / sales above this one…
    pub refund_rate_pct: u32,
    /// … once they made at least this many sales in the period (fewer is not a pattern).
    pub anomaly_min_sales: u32,
    /// A terminal out of touch for longer than this many minutes (`[hub] offline_alert_min`).
    pub offline_after_min: u32,
    /// No successful backup for this many hours (0 = off).
    pub backup_max_age_h: u32,
    /// The data partition fuller than this percentage.
    pub disk_full_pct: u32,
}

impl Default for AlertRules {
    fn default() -> Self {
        AlertRules {
            low_stock_units: 5,
            low_stock_cover_days: 3,
            cover_window_days: 14,
            void_rate_pct: 5,
            refund_rate_pct: 5,
            anomaly_min_sales: 20,
            offline_after_min: 30,
            backup_max_age_h: 26,
            disk_full_pct: 90,
        }
    }
}

/// What kind of trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    LowStock,
    VoidAnomaly,
    RefundAnomaly,
    TerminalOffline,
    BackupFailed,
    BackupOverdue,
    DrawerLeftOpen,
    DiskNearlyFull,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LowStock => "low_stock",
            AlertKind::VoidAnomaly => "void_anomaly",
            AlertKind::RefundAnomaly => "refund_anomaly",
            AlertKind::TerminalOffline => "terminal_offline",
            AlertKind::BackupFailed => "backup_failed",
            AlertKind::BackupOverdue => "backup_overdue",
            AlertKind::DrawerLeftOpen => "drawer_left_open",
            AlertKind::DiskNearlyFull => "disk_nearly_full",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Critical,
}

/// One alert: what, how bad, about what (a SKU, cashier, device, path) and a sentence for
/// the manager that says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    pub subject: String,
    pub message: String,
}

/// A device out of touch (from `Store::sync_status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineDevice {
    pub device: DeviceId,
    pub name: String,
    pub out_of_touch_ms: u64,
}

/// The backups' state: from the log (`backup.made` / `backup.failed`, see
/// `Store::backup_state`) or from `backup-status.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BackupState {
    pub last_success_ms: Option<u64>,
    pub last_failure_ms: Option<u64>,
    /// Failures since the last success (`backup-status.json`'s `failures_in_a_row`).
    pub failures_in_a_row: u32,
}

/// Usage of the data partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// What the rules look at.
#[derive(Debug, Clone, Default)]
pub struct AlertInputs<'a> {
    pub now_ms: u64,
    /// Active catalogue products with their stock (see `Store::stock_cover`).
    pub stock: &'a [StockCoverRow],
    /// Today's cashier rows.
    pub cashiers: &'a [CashierRow],
    /// Devices with their out-of-touch time.
    pub offline: &'a [OfflineDevice],
    /// Today's terminal rows (drawers left open).
    pub terminals: &'a [TerminalRow],
    /// None when the device keeps no backups (a terminal): no backup alerts.
    pub backup: Option<BackupState>,
    pub disk: Option<DiskUsage>,
}

/// Every alert that holds, sorted (critical first, then by kind and subject).
pub fn evaluate(rules: &AlertRules, input: &AlertInputs<'_>) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut push = |kind, severity, subject: String, message: String| {
        out.push(Alert {
            kind,
            severity,
            subject,
            message,
        })
    };
    for s in input.stock {
        let units = s.on_hand_milli as f64 / 1000.0;
        let low_units = s.on_hand_milli <= i64::from(rules.low_stock_units) * 1000;
        let low_cover = rules.low_stock_cover_days > 0
            && s.days_of_cover
                .is_some_and(|d| d < f64::from(rules.low_stock_cover_days));
        if low_units || low_cover {
            let severity = if s.on_hand_milli <= 0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let cover = match s.days_of_cover {
                Some(d) => format!(", {d:.1} days of cover"),
                None => String::new(),
            };
            push(
                AlertKind::LowStock,
                severity,
                s.sku.clone(),
                format!("{} is low: {units} on hand{cover}; reorder", s.name),
            );
        }
    }
    for c in input.cashiers {
        if c.sales < i64::from(rules.anomaly_min_sales) {
            continue;
        }
        if c.void_rate_bp > i64::from(rules.void_rate_pct) * 100 {
            push(
                AlertKind::VoidAnomaly,
                Severity::Warning,
                c.name.clone(),
                format!(
                    "{} voided {} of {} sales ({:.1}%, limit {}%): review the voids and their approvers",
                    c.name,
                    c.line_voids + c.post_voids,
                    c.sales,
                    c.void_rate_bp as f64 / 100.0,
                    rules.void_rate_pct
                ),
            );
        }
        if c.refund_rate_bp > i64::from(rules.refund_rate_pct) * 100 {
            push(
                AlertKind::RefundAnomaly,
                Severity::Warning,
                c.name.clone(),
                format!(
                    "{} refunded {} times for {} sales ({:.1}%, limit {}%): review the refunds",
                    c.name,
                    c.refunds,
                    c.sales,
                    c.refund_rate_bp as f64 / 100.0,
                    rules.refund_rate_pct
                ),
            );
        }
    }
    let offline_ms = u64::from(rules.offline_after_min) * 60_000;
    for d in input.offline {
        if d.out_of_touch_ms > offline_ms {
            push(
                AlertKind::TerminalOffline,
                Severity::Critical,
                d.name.clone(),
                format!(
                    "{} has not synced for {} min: check its network cable and power; it keeps selling offline",
                    d.name,
                    d.out_of_touch_ms / 60_000
                ),
            );
        }
    }
    for t in input.terminals {
        if t.kpis.drawers_left_open > 0 {
            push(
                AlertKind::DrawerLeftOpen,
                Severity::Warning,
                t.name.clone(),
                format!(
                    "the cash drawer of {} was left open {} time(s) today",
                    t.name, t.kpis.drawers_left_open
                ),
            );
        }
    }
    if let Some(b) = input.backup {
        if b.failures_in_a_row > 0 {
            push(
                AlertKind::BackupFailed,
                Severity::Critical,
                "backup".into(),
                format!(
                    "the last {} backup(s) failed: see `pos audit log --kind backup.failed`, fix the cause and run `pos backup create`",
                    b.failures_in_a_row
                ),
            );
        }
        let max_age = u64::from(rules.backup_max_age_h) * 3_600_000;
        let overdue = rules.backup_max_age_h > 0
            && b.last_success_ms
                .is_none_or(|s| input.now_ms.saturating_sub(s) > max_age);
        if overdue {
            push(
                AlertKind::BackupOverdue,
                Severity::Critical,
                "backup".into(),
                format!(
                    "no successful backup in the last {} h: run `pos backup create`",
                    rules.backup_max_age_h
                ),
            );
        }
    }
    if let Some(d) = input.disk {
        if d.total_bytes > 0 {
            let used = d.total_bytes.saturating_sub(d.available_bytes);
            let pct = used as f64 * 100.0 / d.total_bytes as f64;
            if pct > f64::from(rules.disk_full_pct) {
                push(
                    AlertKind::DiskNearlyFull,
                    Severity::Critical,
                    "disk".into(),
                    format!("the data partition is {pct:.0}% full: export and prune old backups"),
                );
            }
        }
    }
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then(a.subject.cmp(&b.subject))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Counters;

    fn cashier(sales: i64, voids: i64, refunds: i64) -> CashierRow {
        CashierRow::from_counters(
            None,
            "alice".into(),
            &Counters {
                sales,
                line_voids: voids,
                refunds,
                ..Counters::default()
            },
        )
    }

    #[test]
    fn nothing_wrong_no_alerts() {
        let rules = AlertRules::default();
        let alerts = evaluate(
            &rules,
            &AlertInputs {
                now_ms: 10,
                backup: Some(BackupState {
                    last_success_ms: Some(5),
                    last_failure_ms: Some(1),
                    failures_in_a_row: 0,
                }),
                ..AlertInputs::default()
            },
        );
        assert!(alerts.is_empty(), "{alerts:?}");
    }

    #[test]
    fn each_rule_fires() {
        let rules = AlertRules::default();
        let stock = [StockCoverRow {
            sku: "cola".into(),
            name: "Cola".into(),
            on_hand_milli: 20_000,
            sold_per_day_milli: 10_000,
            days_of_cover: Some(2.0),
        }];
        let cashiers = [cashier(40, 3, 0), cashier(40, 0, 3), cashier(10, 9, 9)];
        let offline = [OfflineDevice {
            device: DeviceId::from_bytes([1; 16]),
            name: "till-2".into(),
            out_of_touch_ms: 31 * 60_000,
        }];
        let alerts = evaluate(
            &rules,
            &AlertInputs {
                now_ms: 100 * 3_600_000,
                stock: &stock,
                cashiers: &cashiers,
                offline: &offline,
                terminals: &[],
                backup: Some(BackupState {
                    last_success_ms: Some(1),
                    last_failure_ms: Some(2),
                    failures_in_a_row: 1,
                }),
                disk: Some(DiskUsage {
                    total_bytes: 100,
                    available_bytes: 5,
                }),
            },
        );
        let kinds: Vec<AlertKind> = alerts.iter().map(|a| a.kind).collect();
        assert_eq!(
            kinds,
            [
                AlertKind::TerminalOffline,
                AlertKind::BackupFailed,
                AlertKind::BackupOverdue,
                AlertKind::DiskNearlyFull,
                AlertKind::LowStock,
                AlertKind::VoidAnomaly,
                AlertKind::RefundAnomaly,
            ]
        );
    }
}

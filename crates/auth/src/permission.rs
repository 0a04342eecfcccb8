//! The permission catalogue: every action a role can allow. Roles are sets of these; the rules
//! about who may do what with them live in [`crate::policy`].

use serde::{Deserialize, Serialize};

/// One thing a user may be allowed to do. The serde and text form is the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Sell,
    DiscountAboveThreshold,
    PriceOverride,
    LineVoid,
    PostVoid,
    Refund,
    NoSaleDrawerOpen,
    CashInOut,
    ShiftClose,
    StockAdjust,
    CatalogueEdit,
    UserAdmin,
    ViewReports,
    ExportData,
    BackupRestore,
    DeviceEnroll,
    AuditRead,
    Settings,
}

impl Permission {
    /// The whole catalogue, in declaration order. Tests and `--help` iterate over this, so a new
    /// permission is automatically covered by the role matrix test.
    pub const ALL: [Permission; 18] = [
        Permission::Sell,
        Permission::DiscountAboveThreshold,
        Permission::PriceOverride,
        Permission::LineVoid,
        Permission::PostVoid,
        Permission::Refund,
        Permission::NoSaleDrawerOpen,
        Permission::CashInOut,
        Permission::ShiftClose,
        Permission::StockAdjust,
        Permission::CatalogueEdit,
        Permission::UserAdmin,
        Permission::ViewReports,
        Permission::ExportData,
        Permission::BackupRestore,
        Permission::DeviceEnroll,
        Permission::AuditRead,
        Permission::Settings,
    ];

    /// The snake_case name, identical to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Sell => "sell",
            Permission::DiscountAboveThreshold => "discount_above_threshold",
            Permission::PriceOverride => "price_override",
            Permission::LineVoid => "line_void",
            Permission::PostVoid => "post_void",
            Permission::Refund => "refund",
            Permission::NoSaleDrawerOpen => "no_sale_drawer_open",
            Permission::CashInOut => "cash_in_out",
            Permission::ShiftClose => "shift_close",
            Permission::StockAdjust => "stock_adjust",
            Permission::CatalogueEdit => "catalogue_edit",
            Permission::UserAdmin => "user_admin",
            Permission::ViewReports => "view_reports",
            Permission::ExportData => "export_data",
            Permission::BackupRestore => "backup_restore",
            Permission::DeviceEnroll => "device_enroll",
            Permission::AuditRead => "audit_read",
            Permission::Settings => "settings",
        }
    }

    /// One line for `--help` and the operator docs.
    pub fn description(self) -> &'static str {
        match self {
            Permission::Sell => "ring up sales and take payment",
            Permission::DiscountAboveThreshold => {
                "give a discount above the configured threshold (needs approval)"
            }
            Permission::PriceOverride => "change an item's price on a sale (needs approval)",
            Permission::LineVoid => "remove a line from an open sale (needs approval)",
            Permission::PostVoid => "void a completed sale (needs approval)",
            Permission::Refund => "refund a sale or item (needs approval)",
            Permission::NoSaleDrawerOpen => "open the cash drawer without a sale",
            Permission::CashInOut => "put cash into or take cash out of a drawer",
            Permission::ShiftClose => "close a shift and count the drawer",
            Permission::StockAdjust => "correct stock quantities (needs approval)",
            Permission::CatalogueEdit => "add and edit items, prices and taxes",
            Permission::UserAdmin => "add users, change roles, lock, unlock, reset secrets",
            Permission::ViewReports => "see dashboards and reports",
            Permission::ExportData => "export reports and data off the device",
            Permission::BackupRestore => "create, verify and restore backups",
            Permission::DeviceEnroll => "enroll and revoke terminals",
            Permission::AuditRead => "read and verify the audit log",
            Permission::Settings => "change branch and device settings",
        }
    }

    /// Whether using the permission changes anything. Only these three are pure reads; an
    /// auditor may hold nothing else (see [`crate::policy::authorize`]).
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            Permission::ViewReports | Permission::ExportData | Permission::AuditRead
        )
    }

    /// Whether the permission creates or changes sales, payments or the cash drawer — the records
    /// an administrator must never be able to touch.
    pub fn touches_sales(self) -> bool {
        matches!(
            self,
            Permission::Sell
                | Permission::DiscountAboveThreshold
                | Permission::PriceOverride
                | Permission::LineVoid
                | Permission::PostVoid
                | Permission::Refund
                | Permission::NoSaleDrawerOpen
                | Permission::CashInOut
                | Permission::ShiftClose
        )
    }

    /// Actions where money or stock can disappear: a second person must approve every time
    /// (four eyes), even when the requester holds the permission.
    pub fn needs_approval(self) -> bool {
        matches!(
            self,
            Permission::LineVoid
                | Permission::PostVoid
                | Permission::Refund
                | Permission::PriceOverride
                | Permission::DiscountAboveThreshold
                | Permission::StockAdjust
        )
    }

    /// Who may *request* an approval-needing action: any seller for the sale ones (the approver
    /// brings the real permission), a stock adjuster for stock adjustments; `self` otherwise.
    pub fn requester_permission(self) -> Permission {
        match self {
            Permission::LineVoid
            | Permission::PostVoid
            | Permission::Refund
            | Permission::PriceOverride
            | Permission::DiscountAboveThreshold => Permission::Sell,
            other => other,
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown permission or role name; the message lists the valid ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{input}`: use one of {valid}")]
pub struct UnknownName {
    pub what: &'static str,
    /// The input, sanitised (at most 64 characters, no control characters).
    pub input: String,
    pub valid: String,
}

impl UnknownName {
    pub(crate) fn new<'a>(
        what: &'static str,
        input: &str,
        valid: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        UnknownName {
            what,
            input: crate::events::sanitize_name(input),
            valid: valid.into_iter().collect::<Vec<_>>().join(", "),
        }
    }
}

impl std::str::FromStr for Permission {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                UnknownName::new("permission", s, Permission::ALL.iter().map(|p| p.as_str()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde_and_parse_back() {
        for p in Permission::ALL {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
            assert_eq!(p.as_str().parse::<Permission>().unwrap(), p);
            assert_eq!(p.to_string(), p.as_str());
        }
    }

    #[test]
    fn catalogue_has_no_duplicates() {
        let set: std::collections::BTreeSet<_> = Permission::ALL.into_iter().collect();
        assert_eq!(set.len(), Permission::ALL.len());
    }

    #[test]
    fn unknown_permission_lists_valid_names() {
        let err = "steal\u{7}".parse::<Permission>().unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sell") && msg.contains("audit_read"), "{msg}");
        assert!(!msg.contains('\u{7}'));
    }

    #[test]
    fn requester_of_approval_actions() {
        for p in Permission::ALL {
            if !p.needs_approval() {
                assert_eq!(p.requester_permission(), p);
            }
        }
        assert_eq!(Permission::Refund.requester_permission(), Permission::Sell);
        assert_eq!(
            Permission::StockAdjust.requester_permission(),
            Permission::StockAdjust
        );
    }
}

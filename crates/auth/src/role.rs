//! Roles: named sets of permissions. Seven are built in; a branch may define custom ones.
//!
//! Built-in matrix (least privilege: each role holds only what its job needs):
//!
//! | permission               | cashier | supervisor | manager | accountant | auditor | admin | technician |
//! |--------------------------|:-------:|:----------:|:-------:|:----------:|:-------:|:-----:|:----------:|
//! | sell                     |    X    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | discount_above_threshold |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | price_override           |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | line_void                |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | post_void                |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | refund                   |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | no_sale_drawer_open      |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | cash_in_out              |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | shift_close              |    .    |     X      |    X    |     .      |    .    |   .   |     .      |
//! | stock_adjust             |    .    |     .      |    X    |     .      |    .    |   .   |     .      |
//! | catalogue_edit           |    .    |     .      |    X    |     .      |    .    |   X   |     .      |
//! | user_admin               |    .    |     .      |    X    |     .      |    .    |   X   |     .      |
//! | view_reports             |    .    |     .      |    X    |     X      |    X    |   .   |     .      |
//! | export_data              |    .    |     .      |    X    |     X      |    X    |   .   |     .      |
//! | backup_restore           |    .    |     .      |    X    |     .      |    .    |   X   |     X      |
//! | device_enroll            |    .    |     .      |    X    |     .      |    .    |   X   |     X      |
//! | audit_read               |    .    |     .      |    X    |     X      |    X    |   X   |     .      |
//! | settings                 |    .    |     .      |    X    |     .      |    .    |   X   |     .      |
//!
//! Holding a permission is necessary, not sufficient: [`crate::policy::authorize`] adds the
//! separation-of-duties rules (approvals by a second person, auditors read-only, admins never
//! touch sales), which apply whatever a role grants.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::credential::CredentialKind;
use crate::permission::{Permission, UnknownName};

/// The roles every installation has. Their permission sets are fixed in code (the table above),
/// so an attacker with database access cannot widen them without changing the firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinRole {
    Cashier,
    Supervisor,
    Manager,
    Accountant,
    Auditor,
    Admin,
    Technician,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 7] = [
        BuiltinRole::Cashier,
        BuiltinRole::Supervisor,
        BuiltinRole::Manager,
        BuiltinRole::Accountant,
        BuiltinRole::Auditor,
        BuiltinRole::Admin,
        BuiltinRole::Technician,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinRole::Cashier => "cashier",
            BuiltinRole::Supervisor => "supervisor",
            BuiltinRole::Manager => "manager",
            BuiltinRole::Accountant => "accountant",
            BuiltinRole::Auditor => "auditor",
            BuiltinRole::Admin => "admin",
            BuiltinRole::Technician => "technician",
        }
    }

    /// The role's grant (see the module table).
    pub fn permissions(self) -> BTreeSet<Permission> {
        use Permission::*;
        const SUPERVISOR: &[Permission] = &[
            Sell,
            DiscountAboveThreshold,
            PriceOverride,
            LineVoid,
            PostVoid,
            Refund,
            NoSaleDrawerOpen,
            CashInOut,
            ShiftClose,
        ];
        const MANAGER_EXTRA: &[Permission] = &[
            StockAdjust,
            CatalogueEdit,
            UserAdmin,
            ViewReports,
            ExportData,
            AuditRead,
            Settings,
            DeviceEnroll,
            BackupRestore,
        ];
        let list: Vec<Permission> = match self {
            BuiltinRole::Cashier => vec![Sell],
            BuiltinRole::Supervisor => SUPERVISOR.to_vec(),
            BuiltinRole::Manager => [SUPERVISOR, MANAGER_EXTRA].concat(),
            BuiltinRole::Accountant => vec![ViewReports, ExportData, AuditRead],
            BuiltinRole::Auditor => vec![ViewReports, AuditRead, ExportData],
            BuiltinRole::Admin => vec![
                UserAdmin,
                Settings,
                BackupRestore,
                DeviceEnroll,
                AuditRead,
                CatalogueEdit,
            ],
            BuiltinRole::Technician => vec![DeviceEnroll, BackupRestore],
        };
        list.into_iter().collect()
    }

    /// How the role logs in by default: a PIN at the till (fast, with lockout), a password for
    /// back-office roles, whose sessions can do more damage.
    pub fn credential_kind(self) -> CredentialKind {
        match self {
            BuiltinRole::Cashier | BuiltinRole::Supervisor => CredentialKind::Pin,
            _ => CredentialKind::Password,
        }
    }

    /// Admins and technicians can change users, devices and backups: a stolen password alone
    /// must not be enough, so they need a TOTP code by default.
    pub fn mfa_required_by_default(self) -> bool {
        matches!(self, BuiltinRole::Admin | BuiltinRole::Technician)
    }
}

impl std::fmt::Display for BuiltinRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BuiltinRole {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        BuiltinRole::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownName::new("role", s, BuiltinRole::ALL.iter().map(|r| r.as_str())))
    }
}

/// A role as stored and granted: a name and its permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub permissions: BTreeSet<Permission>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleError {
    #[error("role name `{0}` is invalid: use 1 to 32 characters of a-z, 0-9, `_` and `-`")]
    InvalidName(String),
    #[error("`{0}` is a built-in role and cannot be redefined: choose another name")]
    ReservedName(String),
}

/// Longest custom role name, in characters.
pub const MAX_ROLE_NAME: usize = 32;

impl Role {
    pub fn builtin(r: BuiltinRole) -> Role {
        Role {
            name: r.as_str().to_owned(),
            permissions: r.permissions(),
        }
    }

    /// A custom role. Built-in names are reserved so that "auditor" always means read-only.
    pub fn custom(name: &str, permissions: BTreeSet<Permission>) -> Result<Role, RoleError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_ROLE_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid {
            return Err(RoleError::InvalidName(crate::events::sanitize_name(name)));
        }
        if BuiltinRole::ALL.iter().any(|r| r.as_str() == name) {
            return Err(RoleError::ReservedName(name.to_owned()));
        }
        Ok(Role {
            name: name.to_owned(),
            permissions,
        })
    }

    /// The built-in role of this name, if any. Policy rules (auditors read-only, admins off the
    /// sales) go by name, so they hold even for a tampered permission set.
    pub fn builtin_kind(&self) -> Option<BuiltinRole> {
        BuiltinRole::ALL
            .into_iter()
            .find(|r| r.as_str() == self.name)
    }

    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
}

/// Find a role by name (case-insensitive): built-ins first, so a stored custom role can never
/// shadow one.
pub fn resolve_role(name: &str, custom: &[Role]) -> Option<Role> {
    let wanted = name.trim();
    if let Ok(b) = wanted.parse::<BuiltinRole>() {
        return Some(Role::builtin(b));
    }
    custom
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(wanted) && r.builtin_kind().is_none())
        .cloned()
}

/// Role names as recorded in user events.
pub fn role_names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.name.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_role_names_are_checked() {
        assert!(Role::custom("night-shift_2", BTreeSet::new()).is_ok());
        for bad in ["", "Night", "a b", "x".repeat(33).as_str(), "ünï", "a\nb"] {
            assert!(
                matches!(
                    Role::custom(bad, BTreeSet::new()),
                    Err(RoleError::InvalidName(_))
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            Role::custom("auditor", BTreeSet::new()),
            Err(RoleError::ReservedName("auditor".into()))
        );
    }

    #[test]
    fn builtins_resolve_first() {
        let fake = Role {
            name: "cashier".into(),
            permissions: Permission::ALL.into_iter().collect(),
        };
        let night = Role::custom("night", [Permission::Sell].into()).unwrap();
        let custom = [fake, night.clone()];
        assert_eq!(
            resolve_role("cashier", &custom),
            Some(Role::builtin(BuiltinRole::Cashier))
        );
        assert_eq!(resolve_role(" Night ", &custom), Some(night));
        assert_eq!(resolve_role("nobody", &custom), None);
        assert_eq!(
            Role::builtin(BuiltinRole::Admin).builtin_kind(),
            Some(BuiltinRole::Admin)
        );
    }

    #[test]
    fn auditor_is_read_only_and_admin_off_the_sales() {
        assert!(BuiltinRole::Auditor
            .permissions()
            .iter()
            .all(|p| !p.is_write()));
        assert!(BuiltinRole::Admin
            .permissions()
            .iter()
            .all(|p| !p.touches_sales()));
    }
}

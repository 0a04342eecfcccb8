//! The built-in permission matrix, checked through `authorize` for every role x permission of
//! the catalogue against the table below, which a person can review.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{everything, with_roles};
use pos_auth::{authorize, BuiltinRole, Permission};

/// X = the role may do it (for approval-needing actions: may be the approving second person).
/// Rows and columns are parsed; the test fails if a catalogue entry or role is missing.
const MATRIX: &str = "
permission                cashier  supervisor  manager  accountant  auditor  admin  technician
sell                         X         X          X          .         .       .        .
discount_above_threshold     .         X          X          .         .       .        .
price_override               .         X          X          .         .       .        .
line_void                    .         X          X          .         .       .        .
post_void                    .         X          X          .         .       .        .
refund                       .         X          X          .         .       .        .
no_sale_drawer_open          .         X          X          .         .       .        .
cash_in_out                  .         X          X          .         .       .        .
shift_close                  .         X          X          .         .       .        .
stock_adjust                 .         .          X          .         .       .        .
catalogue_edit               .         .          X          .         .       X        .
user_admin                   .         .          X          .         .       X        .
view_reports                 .         .          X          X         X       .        .
export_data                  .         .          X          X         X       .        .
backup_restore               .         .          X          .         .       X        X
device_enroll                .         .          X          .         .       X        X
audit_read                   .         .          X          X         X       X        .
settings                     .         .          X          .         .       X        .
";

fn parse_matrix() -> BTreeMap<(BuiltinRole, Permission), bool> {
    let mut lines = MATRIX.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<BuiltinRole> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|r| r.parse().unwrap())
        .collect();
    let mut table = BTreeMap::new();
    for line in lines {
        let mut cells = line.split_whitespace();
        let permission: Permission = cells.next().unwrap().parse().unwrap();
        let marks: Vec<&str> = cells.collect();
        assert_eq!(marks.len(), header.len(), "row {permission}");
        for (role, mark) in header.iter().zip(marks) {
            let allowed = match mark {
                "X" => true,
                "." => false,
                other => panic!("bad mark {other:?} in row {permission}"),
            };
            assert!(table.insert((*role, permission), allowed).is_none());
        }
    }
    table
}

/// Whether `role` may do `p` according to `authorize`. For approval-needing actions the role is
/// checked both as requester (with a perfect approver) and as approver (for a perfect
/// requester); holding the permission means being able to do both.
fn allowed(role: BuiltinRole, p: Permission) -> bool {
    let actor = with_roles(1, &[role]);
    let other = everything(2);
    if p.needs_approval() {
        authorize(&actor, p, Some(&other)).is_ok() && authorize(&other, p, Some(&actor)).is_ok()
    } else {
        authorize(&actor, p, None).is_ok()
    }
}

#[test]
fn every_role_times_every_permission_matches_the_table() {
    let table = parse_matrix();
    let mut mismatches = Vec::new();
    for role in BuiltinRole::ALL {
        for p in Permission::ALL {
            let expected = *table
                .get(&(role, p))
                .unwrap_or_else(|| panic!("the table has no cell for {role} x {p}"));
            if allowed(role, p) != expected {
                mismatches.push(format!("{role} x {p}: table says {expected}"));
            }
            // The declared grant agrees too (the table is the role's permission set).
            assert_eq!(role.permissions().contains(&p), expected, "{role} x {p}");
        }
    }
    assert_eq!(table.len(), BuiltinRole::ALL.len() * Permission::ALL.len());
    assert!(mismatches.is_empty(), "{mismatches:#?}");
}

#[test]
fn who_may_request_an_approval_action() {
    // Anyone who sells may ask for a void or refund; the approver brings the permission.
    for role in BuiltinRole::ALL {
        let actor = with_roles(1, &[role]);
        for p in Permission::ALL.into_iter().filter(|p| p.needs_approval()) {
            let can_request = authorize(&actor, p, Some(&everything(2))).is_ok();
            assert_eq!(
                can_request,
                role.permissions().contains(&p.requester_permission()),
                "{role} requesting {p}"
            );
        }
    }
}

#[test]
fn credential_kinds_and_mfa_defaults() {
    use pos_auth::CredentialKind::{Password, Pin};
    let expected = [
        (BuiltinRole::Cashier, Pin, false),
        (BuiltinRole::Supervisor, Pin, false),
        (BuiltinRole::Manager, Password, false),
        (BuiltinRole::Accountant, Password, false),
        (BuiltinRole::Auditor, Password, false),
        (BuiltinRole::Admin, Password, true),
        (BuiltinRole::Technician, Password, true),
    ];
    assert_eq!(expected.len(), BuiltinRole::ALL.len());
    for (role, kind, mfa) in expected {
        assert_eq!(role.credential_kind(), kind, "{role}");
        assert_eq!(role.mfa_required_by_default(), mfa, "{role}");
    }
}

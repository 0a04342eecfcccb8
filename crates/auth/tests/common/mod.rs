//! Builders shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;

use pos_auth::{BuiltinRole, Permission, Principal, Role};
use pos_core::UserId;

/// A distinct, stable user id per number.
pub fn uid(n: u8) -> UserId {
    UserId::from_bytes([n; 16])
}

pub fn with_roles(n: u8, roles: &[BuiltinRole]) -> Principal {
    Principal {
        user: uid(n),
        roles: roles.iter().map(|r| Role::builtin(*r)).collect(),
        active: true,
    }
}

/// A custom role granting `perms` (no built-in name, so no built-in restriction applies).
pub fn custom(name: &str, perms: impl IntoIterator<Item = Permission>) -> Role {
    Role::custom(name, perms.into_iter().collect::<BTreeSet<_>>()).unwrap()
}

/// Someone who holds every permission through a custom role: a perfect approver or requester.
pub fn everything(n: u8) -> Principal {
    Principal {
        user: uid(n),
        roles: vec![custom("everything", Permission::ALL)],
        active: true,
    }
}

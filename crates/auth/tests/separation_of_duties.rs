//! Separation of duties: four eyes on approval actions, auditors read-only, admins off the sales,
//! no self-grant, no escalation.
#![allow(clippy::unwrap_used)]

mod common;

use common::{custom, everything, uid, with_roles};
use pos_auth::{
    authorize, authorize_role_change, authorize_role_definition, authorize_user_admin,
    authorize_user_admin_on, Approval, BuiltinRole, Denial, Permission, Principal, Role,
};
use proptest::prelude::*;

fn approval_actions() -> impl Iterator<Item = Permission> {
    Permission::ALL.into_iter().filter(|p| p.needs_approval())
}

#[test]
fn the_approval_actions_are_the_issue_list() {
    let list: Vec<_> = approval_actions().collect();
    assert_eq!(
        list,
        vec![
            Permission::DiscountAboveThreshold,
            Permission::PriceOverride,
            Permission::LineVoid,
            Permission::PostVoid,
            Permission::Refund,
            Permission::StockAdjust,
        ]
    );
}

#[test]
fn self_approval_is_refused_for_every_approval_action_even_for_a_manager() {
    let manager = with_roles(1, &[BuiltinRole::Manager]);
    // The same person presented as a second principal with other roles is still the same person.
    let same_person_again = Principal {
        roles: vec![Role::builtin(BuiltinRole::Supervisor)],
        ..everything(1)
    };
    for p in approval_actions() {
        assert!(manager.has(p), "{p}");
        assert_eq!(
            authorize(&manager, p, Some(&manager)),
            Err(Denial::SelfApproval),
            "{p}"
        );
        assert_eq!(
            authorize(&manager, p, Some(&same_person_again)),
            Err(Denial::SelfApproval),
            "{p}"
        );
        let everyone = everything(3);
        assert_eq!(
            authorize(&everyone, p, Some(&everyone)),
            Err(Denial::SelfApproval),
            "{p}"
        );
    }
}

#[test]
fn a_missing_approver_is_refused_even_for_a_holder() {
    let manager = with_roles(1, &[BuiltinRole::Manager]);
    for p in approval_actions() {
        assert_eq!(
            authorize(&manager, p, None),
            Err(Denial::ApprovalRequired(p)),
            "{p}"
        );
    }
}

#[test]
fn an_approver_must_hold_the_permission_be_active_and_pass_the_duty_rules() {
    let requester = with_roles(1, &[BuiltinRole::Manager]);
    let cashier = with_roles(2, &[BuiltinRole::Cashier]);
    let inactive_manager = Principal {
        active: false,
        ..with_roles(3, &[BuiltinRole::Manager])
    };
    let auditing_manager = with_roles(4, &[BuiltinRole::Manager, BuiltinRole::Auditor]);
    let admin_with_everything = Principal {
        roles: vec![
            Role::builtin(BuiltinRole::Admin),
            custom("all", Permission::ALL),
        ],
        ..everything(5)
    };
    let manager = with_roles(6, &[BuiltinRole::Manager]);
    for p in approval_actions() {
        assert_eq!(
            authorize(&requester, p, Some(&cashier)),
            Err(Denial::ApproverLacksPermission(p)),
            "{p}"
        );
        assert_eq!(
            authorize(&requester, p, Some(&inactive_manager)),
            Err(Denial::ApproverInactive),
            "{p}"
        );
        assert_eq!(
            authorize(&requester, p, Some(&auditing_manager)),
            Err(Denial::ApproverLacksPermission(p)),
            "auditor approving {p}"
        );
        if p.touches_sales() {
            assert_eq!(
                authorize(&requester, p, Some(&admin_with_everything)),
                Err(Denial::ApproverLacksPermission(p)),
                "admin approving {p}"
            );
        }
        assert_eq!(
            authorize(&requester, p, Some(&manager)),
            Ok(Approval::ApprovedBy(manager.user)),
            "{p}"
        );
    }
}

#[test]
fn a_cashier_requests_and_a_supervisor_approves() {
    let cashier = with_roles(1, &[BuiltinRole::Cashier]);
    let supervisor = with_roles(2, &[BuiltinRole::Supervisor]);
    assert_eq!(
        authorize(&cashier, Permission::Refund, Some(&supervisor)),
        Ok(Approval::ApprovedBy(supervisor.user))
    );
    // Stock adjustments are requested by a stock adjuster, not by any seller.
    assert_eq!(
        authorize(&cashier, Permission::StockAdjust, Some(&everything(3))),
        Err(Denial::MissingPermission(Permission::StockAdjust))
    );
    // An approver offered for an action that needs none is ignored.
    assert_eq!(
        authorize(&cashier, Permission::Sell, Some(&cashier)),
        Ok(Approval::Direct)
    );
    assert_eq!(
        authorize(&cashier, Permission::NoSaleDrawerOpen, Some(&supervisor)),
        Err(Denial::MissingPermission(Permission::NoSaleDrawerOpen))
    );
}

#[test]
fn an_inactive_actor_can_do_nothing() {
    let gone = Principal {
        active: false,
        ..everything(1)
    };
    for p in Permission::ALL {
        assert_eq!(
            authorize(&gone, p, Some(&everything(2))),
            Err(Denial::Inactive)
        );
    }
}

fn any_permission_set() -> impl Strategy<Value = Vec<Permission>> {
    proptest::sample::subsequence(Permission::ALL.to_vec(), 0..=Permission::ALL.len())
}

proptest! {
    /// Whatever other roles grant, an auditor never writes — and reads what they hold.
    #[test]
    fn an_auditor_can_never_write(extra in any_permission_set(), also_manager in any::<bool>()) {
        let mut roles = vec![Role::builtin(BuiltinRole::Auditor), custom("extra", extra)];
        if also_manager {
            roles.push(Role::builtin(BuiltinRole::Manager));
        }
        let auditor = Principal { user: uid(1), roles, active: true };
        for p in Permission::ALL {
            let result = authorize(&auditor, p, Some(&everything(2)));
            if p.is_write() {
                prop_assert_eq!(result, Err(Denial::AuditorsAreReadOnly), "{}", p);
            } else {
                prop_assert_eq!(result.is_ok(), auditor.has(p), "{}", p);
            }
        }
    }

    /// Whatever other roles grant, an admin never touches sales.
    #[test]
    fn an_admin_can_never_touch_sales(extra in any_permission_set()) {
        let admin = Principal {
            user: uid(1),
            roles: vec![Role::builtin(BuiltinRole::Admin), custom("extra", extra)],
            active: true,
        };
        for p in Permission::ALL.into_iter().filter(|p| p.touches_sales()) {
            prop_assert_eq!(
                authorize(&admin, p, Some(&everything(2))),
                Err(Denial::AdminsCannotTouchSales),
                "{}", p
            );
        }
    }
}

#[test]
fn nobody_grants_themselves_a_role() {
    for actor in [
        with_roles(1, &[BuiltinRole::Admin]),
        with_roles(1, &[BuiltinRole::Manager]),
        everything(1),
    ] {
        for role in BuiltinRole::ALL {
            assert_eq!(
                authorize_role_change(&actor, actor.user, &Role::builtin(role)),
                Err(Denial::SelfGrant),
                "{role}"
            );
        }
        assert_eq!(
            authorize_user_admin(&actor, actor.user),
            Err(Denial::SelfGrant)
        );
    }
    // Redefining a custom role one holds is granting oneself permissions.
    let night = custom("night", [Permission::Sell, Permission::UserAdmin]);
    let holder = Principal {
        user: uid(1),
        roles: vec![Role::builtin(BuiltinRole::Admin), night.clone()],
        active: true,
    };
    let wider = custom("night", Permission::ALL);
    assert_eq!(
        authorize_role_definition(&holder, &wider),
        Err(Denial::SelfGrant)
    );
}

#[test]
fn a_manager_cannot_make_anyone_admin_or_a_user_administrator() {
    let manager = with_roles(1, &[BuiltinRole::Manager]);
    let target = uid(2);
    for role in [
        BuiltinRole::Admin,
        BuiltinRole::Technician,
        BuiltinRole::Manager,
    ] {
        assert_eq!(
            authorize_role_change(&manager, target, &Role::builtin(role)),
            Err(Denial::EscalationForbidden),
            "{role}"
        );
    }
    let hr = custom("hr", [Permission::UserAdmin]);
    assert_eq!(
        authorize_role_change(&manager, target, &hr),
        Err(Denial::EscalationForbidden)
    );
    for role in [
        BuiltinRole::Cashier,
        BuiltinRole::Supervisor,
        BuiltinRole::Accountant,
        BuiltinRole::Auditor,
    ] {
        assert_eq!(
            authorize_role_change(&manager, target, &Role::builtin(role)),
            Ok(()),
            "{role}"
        );
    }
    // An admin may hand out any role, to someone else.
    let admin = with_roles(3, &[BuiltinRole::Admin]);
    for role in BuiltinRole::ALL {
        assert_eq!(
            authorize_role_change(&admin, target, &Role::builtin(role)),
            Ok(()),
            "{role}"
        );
    }
}

#[test]
fn a_non_admin_user_administrator_grants_only_what_they_hold() {
    let hr = Principal {
        user: uid(1),
        roles: vec![custom("hr", [Permission::UserAdmin, Permission::Sell])],
        active: true,
    };
    assert_eq!(
        authorize_role_change(&hr, uid(2), &Role::builtin(BuiltinRole::Cashier)),
        Ok(())
    );
    assert_eq!(
        authorize_role_change(&hr, uid(2), &Role::builtin(BuiltinRole::Supervisor)),
        Err(Denial::EscalationForbidden)
    );
    assert_eq!(
        authorize_role_definition(&hr, &custom("refunds", [Permission::Refund])),
        Err(Denial::EscalationForbidden)
    );
    assert_eq!(
        authorize_role_definition(&hr, &custom("tills", [Permission::Sell])),
        Ok(())
    );
}

#[test]
fn only_user_administrators_change_users_and_auditors_never_do() {
    for role in [
        BuiltinRole::Cashier,
        BuiltinRole::Supervisor,
        BuiltinRole::Accountant,
        BuiltinRole::Technician,
    ] {
        let actor = with_roles(1, &[role]);
        assert_eq!(
            authorize_role_change(&actor, uid(2), &Role::builtin(BuiltinRole::Cashier)),
            Err(Denial::MissingPermission(Permission::UserAdmin)),
            "{role}"
        );
        assert_eq!(
            authorize_user_admin(&actor, uid(2)),
            Err(Denial::MissingPermission(Permission::UserAdmin)),
            "{role}"
        );
    }
    let auditing_manager = with_roles(1, &[BuiltinRole::Manager, BuiltinRole::Auditor]);
    assert_eq!(
        authorize_user_admin(&auditing_manager, uid(2)),
        Err(Denial::AuditorsAreReadOnly)
    );
    assert_eq!(
        authorize_user_admin(&with_roles(1, &[BuiltinRole::Manager]), uid(2)),
        Ok(())
    );
}

#[test]
fn a_manager_cannot_take_over_an_admin_account() {
    let manager = with_roles(1, &[BuiltinRole::Manager]);
    let admin = with_roles(2, &[BuiltinRole::Admin]);
    let cashier = with_roles(3, &[BuiltinRole::Cashier]);
    assert_eq!(
        authorize_user_admin_on(&manager, &admin),
        Err(Denial::EscalationForbidden)
    );
    assert_eq!(authorize_user_admin_on(&manager, &cashier), Ok(()));
    assert_eq!(authorize_user_admin_on(&admin, &manager), Ok(()));
}

#[test]
fn every_denial_says_what_to_do_and_has_a_code() {
    let all = [
        Denial::Inactive,
        Denial::MissingPermission(Permission::Refund),
        Denial::AuditorsAreReadOnly,
        Denial::AdminsCannotTouchSales,
        Denial::ApprovalRequired(Permission::Refund),
        Denial::SelfApproval,
        Denial::ApproverLacksPermission(Permission::Refund),
        Denial::ApproverInactive,
        Denial::SelfGrant,
        Denial::EscalationForbidden,
    ];
    let codes: std::collections::BTreeSet<_> = all.iter().map(Denial::code).collect();
    assert_eq!(codes.len(), all.len());
    for d in all {
        let msg = d.to_string();
        assert!(msg.contains(':') || msg.contains("only"), "{msg}");
    }
}

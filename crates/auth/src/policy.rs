//! Authorization and separation of duties, in one place. Every engine command and admin action
//! asks one of these functions; nothing else decides who may do what.
//!
//! Rules, in the order they are checked by [`authorize`]:
//! 1. An inactive (deactivated) user can do nothing.
//! 2. Anyone holding the auditor role is read-only, whatever other roles they hold: an auditor who
//!    could also write could cover their own tracks.
//! 3. Anyone holding the admin role never touches sales, payments or the drawer: whoever manages
//!    users must not also be able to take money.
//! 4. Actions that can make money or stock disappear ([`Permission::needs_approval`]) need a second,
//!    active person who holds the permission and passes rules 2 and 3, every time, even when the
//!    requester holds the permission too (four eyes). The requester needs only
//!    [`Permission::requester_permission`].
//! 5. Otherwise the actor needs the permission.
//!
//! Role changes ([`authorize_role_change`], [`authorize_role_definition`]) and account actions
//! ([`authorize_user_admin`], [`authorize_user_admin_on`]) add: nobody changes their own roles or
//! account, and only an admin can hand out user administration or the admin/technician roles.

use pos_core::UserId;

use crate::permission::Permission;
use crate::role::{BuiltinRole, Role};

/// Who is acting: a user with their roles as currently stored.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserId,
    pub roles: Vec<Role>,
    pub active: bool,
}

impl Principal {
    /// Whether any of the roles grants `p` (before the separation-of-duties rules).
    pub fn has(&self, p: Permission) -> bool {
        self.roles.iter().any(|r| r.has(p))
    }

    pub fn has_role(&self, r: BuiltinRole) -> bool {
        self.roles.iter().any(|x| x.builtin_kind() == Some(r))
    }

    /// All permissions the roles grant.
    pub fn permissions(&self) -> std::collections::BTreeSet<Permission> {
        self.roles
            .iter()
            .flat_map(|r| r.permissions.iter().copied())
            .collect()
    }

    /// Rules 2 and 3 of the module doc, which no role can override.
    fn duty_conflict(&self, p: Permission) -> Option<Denial> {
        if self.has_role(BuiltinRole::Auditor) && p.is_write() {
            Some(Denial::AuditorsAreReadOnly)
        } else if self.has_role(BuiltinRole::Admin) && p.touches_sales() {
            Some(Denial::AdminsCannotTouchSales)
        } else {
            None
        }
    }
}

/// Why an action was refused. Each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("this user account is deactivated: ask a manager")]
    Inactive,
    #[error("you do not have the `{0}` permission: ask someone who has it, or a manager to change your role")]
    MissingPermission(Permission),
    #[error("auditors are read-only: ask a manager or supervisor to make the change")]
    AuditorsAreReadOnly,
    #[error("administrators cannot create or change sales, payments or the drawer: ask a supervisor or manager")]
    AdminsCannotTouchSales,
    #[error("`{0}` needs a second person's approval: ask a supervisor or manager to approve")]
    ApprovalRequired(Permission),
    #[error("you cannot approve your own request: a different person must approve")]
    SelfApproval,
    #[error("the approver does not have the `{0}` permission: ask someone who has it to approve")]
    ApproverLacksPermission(Permission),
    #[error("the approver's account is deactivated: ask another supervisor or manager to approve")]
    ApproverInactive,
    #[error("you cannot change your own roles or account: ask another user administrator")]
    SelfGrant,
    #[error("only an administrator can grant user administration or the admin and technician roles, or permissions you do not hold yourself")]
    EscalationForbidden,
}

impl Denial {
    /// A stable machine-readable code, e.g. for the `reason` of a `permission_denied` event.
    pub fn code(&self) -> &'static str {
        match self {
            Denial::Inactive => "inactive",
            Denial::MissingPermission(_) => "missing_permission",
            Denial::AuditorsAreReadOnly => "auditors_are_read_only",
            Denial::AdminsCannotTouchSales => "admins_cannot_touch_sales",
            Denial::ApprovalRequired(_) => "approval_required",
            Denial::SelfApproval => "self_approval",
            Denial::ApproverLacksPermission(_) => "approver_lacks_permission",
            Denial::ApproverInactive => "approver_inactive",
            Denial::SelfGrant => "self_grant",
            Denial::EscalationForbidden => "escalation_forbidden",
        }
    }
}

/// How an allowed action was allowed; `ApprovedBy` goes into the event's approver field and an
/// `approval_used` security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    Direct,
    ApprovedBy(UserId),
}

/// May `actor` use `permission`, with `approver` vouching if the action needs approval? An
/// approver given for an action that needs none is ignored.
pub fn authorize(
    actor: &Principal,
    permission: Permission,
    approver: Option<&Principal>,
) -> Result<Approval, Denial> {
    if !actor.active {
        return Err(Denial::Inactive);
    }
    if let Some(denial) = actor.duty_conflict(permission) {
        return Err(denial);
    }
    if !permission.needs_approval() {
        return if actor.has(permission) {
            Ok(Approval::Direct)
        } else {
            Err(Denial::MissingPermission(permission))
        };
    }
    let requester = permission.requester_permission();
    if !actor.has(requester) {
        return Err(Denial::MissingPermission(requester));
    }
    let approver = approver.ok_or(Denial::ApprovalRequired(permission))?;
    if approver.user == actor.user {
        return Err(Denial::SelfApproval);
    }
    if !approver.active {
        return Err(Denial::ApproverInactive);
    }
    if approver.duty_conflict(permission).is_some() || !approver.has(permission) {
        return Err(Denial::ApproverLacksPermission(permission));
    }
    Ok(Approval::ApprovedBy(approver.user))
}

/// The part shared by every user-administration check.
fn user_admin_basics(actor: &Principal, target: UserId) -> Result<(), Denial> {
    authorize(actor, Permission::UserAdmin, None)?;
    if actor.user == target {
        return Err(Denial::SelfGrant);
    }
    Ok(())
}

/// Whether granting `role` would hand out power only an admin may hand out: user administration
/// (which can create further accounts), the admin or technician role, or (for a non-admin)
/// permissions the actor does not hold, which would let them act through a puppet account.
fn is_escalation(actor: &Principal, role: &Role) -> bool {
    if actor.has_role(BuiltinRole::Admin) {
        return false;
    }
    let privileged = role.has(Permission::UserAdmin)
        || matches!(
            role.builtin_kind(),
            Some(BuiltinRole::Admin | BuiltinRole::Technician)
        );
    privileged || !role.permissions.is_subset(&actor.permissions())
}

/// May `actor` grant `role` to `target` (or take it away)? Needs user administration, never on
/// oneself; user administration and the admin/technician roles only from an admin; a non-admin
/// may only grant permissions they hold themselves.
pub fn authorize_role_change(actor: &Principal, target: UserId, role: &Role) -> Result<(), Denial> {
    user_admin_basics(actor, target)?;
    if is_escalation(actor, role) {
        return Err(Denial::EscalationForbidden);
    }
    Ok(())
}

/// May `actor` create or redefine the custom role `role`? Redefining a role one holds is granting
/// oneself permissions (`SelfGrant`); the escalation rules of [`authorize_role_change`] apply.
pub fn authorize_role_definition(actor: &Principal, role: &Role) -> Result<(), Denial> {
    authorize(actor, Permission::UserAdmin, None)?;
    if actor.roles.iter().any(|r| r.name == role.name) {
        return Err(Denial::SelfGrant);
    }
    if role.builtin_kind().is_some() || is_escalation(actor, role) {
        return Err(Denial::EscalationForbidden);
    }
    Ok(())
}

/// May `actor` lock, unlock, deactivate or reset the secret of `target`? Never on oneself (a
/// locked-out user must not unlock themselves). This form cannot see the target's roles; prefer
/// [`authorize_user_admin_on`] where the target is loaded.
pub fn authorize_user_admin(actor: &Principal, target: UserId) -> Result<(), Denial> {
    user_admin_basics(actor, target)
}

/// [`authorize_user_admin`] plus: resetting the secret of (or locking) someone who holds user
/// administration, admin or technician is reserved to admins, so a manager cannot take over an
/// admin account through a password reset.
pub fn authorize_user_admin_on(actor: &Principal, target: &Principal) -> Result<(), Denial> {
    user_admin_basics(actor, target.user)?;
    let privileged = target.has(Permission::UserAdmin)
        || target.has_role(BuiltinRole::Admin)
        || target.has_role(BuiltinRole::Technician);
    if privileged && !actor.has_role(BuiltinRole::Admin) {
        return Err(Denial::EscalationForbidden);
    }
    Ok(())
}

//! Accounts: the `user` and `security` modules' projections, and the flows that combine the
//! pure rules of `pos-auth` (policy, credentials, lockout, login decision) with the log.
//!
//! Secrets pass through these functions as `&str` and are only ever hashed: no secret is stored,
//! logged, put in an error or an event. Verifiers (argon2id PHC strings) are stored in
//! `credential_set` events so a terminal can log users in offline; `pos audit log` redacts them.

use pos_audit::{Event, EventDraft};
use pos_auth::{
    authorize_role_change, authorize_user_admin, authorize_user_admin_on, decide_login,
    events as ev, resolve_role, Account, Approval, BuiltinRole, CredentialError, CredentialKind,
    Denial, Locked, LoginAttempt, LoginOk, LoginPolicy, LoginRefusal, LoginState, PasswordPolicy,
    Permission, Principal, Role, StoredCredential, TotpSecret,
};
use pos_core::UserId;
use rusqlite::{params, OptionalExtension, Transaction};

use crate::error::StoreError;
use crate::projection::{payload, Projection, Refusal};
use crate::store::{now_ms, Store};

/// The account rules in force (from the `[auth]` config section).
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    pub login: LoginPolicy,
    pub password: PasswordPolicy,
    /// Roles whose users need a TOTP second factor.
    pub mfa_roles: Vec<BuiltinRole>,
}

impl Default for AccountPolicy {
    /// The defaults of the `[auth]` section: a TOTP second factor for the roles that need one by
    /// default (admin and technician), not for nobody.
    fn default() -> Self {
        AccountPolicy {
            login: LoginPolicy::default(),
            password: PasswordPolicy::default(),
            mfa_roles: BuiltinRole::ALL
                .into_iter()
                .filter(|r| r.mfa_required_by_default())
                .collect(),
        }
    }
}

/// One line of `pos user list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub user: UserId,
    pub name: String,
    pub display_name: String,
    pub roles: Vec<String>,
    pub active: bool,
    pub locked: Option<Locked>,
    pub credentials: Vec<CredentialKind>,
    pub must_change: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("refused: {0}")]
    Denied(Denial),
    #[error("{0}")]
    Credential(CredentialError),
    #[error("refused: {0}")]
    Login(LoginRefusal),
    #[error(
        "a user named `{0}` already exists (hint: choose another name; `pos user list` shows them)"
    )]
    UserExists(String),
    #[error("no user named `{0}` (hint: `pos user list` shows the users)")]
    UnknownUser(String),
    #[error("unknown role `{0}` (hint: built-in roles are cashier, supervisor, manager, accountant, auditor, admin, technician)")]
    UnknownRole(String),
    #[error("no device {0} in the registry, or it is already revoked (hint: `pos hub devices list` shows the devices)")]
    UnknownDevice(String),
    #[error("invalid user name: use 1 to 32 letters, digits, `.`, `_` or `-`")]
    BadName,
    #[error("users already exist: the first-admin bootstrap runs only once (hint: act as an admin with --as)")]
    AlreadyBootstrapped,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn user_draft(kind: &str, payload: &impl serde::Serialize) -> EventDraft {
    EventDraft::json(ev::USER_MODULE, kind, payload)
}

/// A `user.credential_set` event: a verifier (never the secret) for `user`.
fn credential_draft(
    user: UserId,
    kind: CredentialKind,
    verifier: String,
    must_change: bool,
) -> EventDraft {
    user_draft(
        ev::CredentialSet::KIND,
        &ev::CredentialSet {
            user,
            kind,
            verifier,
            must_change,
        },
    )
}

fn security_draft(event: &ev::SecurityEventPayload) -> EventDraft {
    EventDraft::json(ev::SECURITY_MODULE, event.kind, &event.body)
}

impl Store {
    /// Whether any user exists (before the first-admin bootstrap, none does).
    pub fn has_users(&self) -> crate::Result<bool> {
        self.conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM user_accounts)", [], |r| {
                r.get(0)
            })
            .map_err(self.db_err())
    }

    pub fn custom_roles(&self) -> crate::Result<Vec<Role>> {
        let rows: Vec<(String, String)> = self
            .conn()
            .prepare("SELECT name, permissions FROM user_roles ORDER BY name")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, perms)| {
                let permissions = serde_json::from_str(&perms).ok()?;
                Some(Role { name, permissions })
            })
            .collect())
    }

    fn resolve_roles(&self, names: &[String]) -> crate::Result<Vec<Role>> {
        let custom = self.custom_roles()?;
        Ok(names
            .iter()
            .filter_map(|n| resolve_role(n, &custom))
            .collect())
    }

    /// Everything the login decision needs about one user, by name (case-insensitive).
    pub fn account(&self, name: &str, policy: &AccountPolicy) -> crate::Result<Option<Account>> {
        let row: Option<(Vec<u8>, String, String, bool)> = self
            .conn()
            .query_row(
                "SELECT user, name, roles, active FROM user_accounts WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(self.db_err())?;
        let Some((id, name, roles, active)) = row else {
            return Ok(None);
        };
        let Some(user) = uuid(&id) else {
            return Ok(None);
        };
        let role_names: Vec<String> = serde_json::from_str(&roles).unwrap_or_default();
        let roles = self.resolve_roles(&role_names)?;
        let mfa_required = roles.iter().any(|r| {
            r.builtin_kind()
                .is_some_and(|b| policy.mfa_roles.contains(&b))
        });
        let credentials = self.credentials(user)?;
        let (login, last_totp_step) = self.login_state(user)?;
        Ok(Some(Account {
            user,
            name,
            roles,
            active,
            credentials,
            login,
            last_totp_step,
            mfa_required,
        }))
    }

    fn credentials(&self, user: UserId) -> crate::Result<Vec<StoredCredential>> {
        let rows: Vec<(String, String, bool, i64)> = self
            .conn()
            .prepare(
                "SELECT kind, verifier, must_change, set_ms FROM user_credentials WHERE user = ?1",
            )
            .and_then(|mut s| {
                s.query_map([user.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        Ok(rows
            .into_iter()
            .filter_map(|(kind, verifier, must_change, set_ms)| {
                let kind = serde_json::from_value(serde_json::Value::String(kind)).ok()?;
                Some(StoredCredential {
                    kind,
                    verifier,
                    must_change,
                    set_ms: set_ms as u64,
                })
            })
            .collect())
    }

    fn login_state(&self, user: UserId) -> crate::Result<(LoginState, Option<u64>)> {
        read_login_state(self.conn(), user).map_err(self.db_err())
    }

    /// The user as the authorization policy sees them.
    pub fn principal(&self, user: UserId) -> crate::Result<Option<Principal>> {
        let row: Option<(String, bool)> = self
            .conn()
            .query_row(
                "SELECT roles, active FROM user_accounts WHERE user = ?1",
                [user.as_bytes()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.db_err())?;
        let Some((roles, active)) = row else {
            return Ok(None);
        };
        let names: Vec<String> = serde_json::from_str(&roles).unwrap_or_default();
        Ok(Some(Principal {
            user,
            roles: self.resolve_roles(&names)?,
            active,
        }))
    }

    pub fn users(&self) -> crate::Result<Vec<UserSummary>> {
        let rows: Vec<(Vec<u8>, String, String, String, bool)> = self
            .conn()
            .prepare(
                "SELECT user, name, display_name, roles, active FROM user_accounts ORDER BY name",
            )
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        let now = self.clock_now_ms();
        let mut out = Vec::new();
        for (id, name, display_name, roles, active) in rows {
            let Some(user) = uuid(&id) else { continue };
            let credentials = self.credentials(user)?;
            let (state, _) = self.login_state(user)?;
            out.push(UserSummary {
                user,
                name,
                display_name,
                roles: serde_json::from_str(&roles).unwrap_or_default(),
                active,
                locked: state.check(now).err(),
                must_change: credentials.iter().any(|c| c.must_change),
                credentials: credentials.iter().map(|c| c.kind).collect(),
            })
        }
        Ok(out)
    }

    /// Try a login: appends the security events of the attempt (success, failure, lockout,
    /// anomaly) and returns the outcome. Time is the device's HLC, which never runs backwards.
    pub fn login(
        &mut self,
        name: &str,
        secret: &str,
        totp_code: Option<&str>,
        policy: &AccountPolicy,
    ) -> Result<Result<LoginOk, LoginRefusal>, AccountError> {
        let account = self.account(name, policy)?;
        let attempt = LoginAttempt {
            name,
            secret,
            totp_code,
            now_ms: self.tick_ms(),
            unix_s: now_ms() / 1000,
        };
        let decision = decide_login(account.as_ref(), &attempt, &policy.login);
        let drafts: Vec<EventDraft> = decision
            .events
            .iter()
            .map(|e| security_draft(&e.payload()))
            .collect();
        if !drafts.is_empty() {
            self.append(drafts)?;
        }
        Ok(decision.outcome)
    }

    /// Log in and return the principal, or the refusal as an error: for `--as ACTOR`.
    pub fn authenticate(
        &mut self,
        name: &str,
        secret: &str,
        totp_code: Option<&str>,
        policy: &AccountPolicy,
    ) -> Result<Principal, AccountError> {
        let ok = self
            .login(name, secret, totp_code, policy)?
            .map_err(AccountError::Login)?;
        self.principal(ok.user)?
            .ok_or_else(|| AccountError::UnknownUser(name.to_owned()))
    }

    /// First run: create the first admin with a one-time password (shown once, must be
    /// changed at first use). Refused as soon as any user exists.
    pub fn bootstrap_admin(&mut self, name: &str) -> Result<(UserId, String), AccountError> {
        if self.has_users()? {
            return Err(AccountError::AlreadyBootstrapped);
        }
        self.create_user(None, name, "Administrator", &["admin".to_owned()])
    }

    /// Create a user (by an actor with user admin rights) with a one-time secret to hand over.
    pub fn add_user(
        &mut self,
        actor: &Principal,
        name: &str,
        display_name: &str,
        roles: &[String],
    ) -> Result<(UserId, String), AccountError> {
        self.create_user(Some(actor), name, display_name, roles)
    }

    fn create_user(
        &mut self,
        actor: Option<&Principal>,
        name: &str,
        display_name: &str,
        role_names: &[String],
    ) -> Result<(UserId, String), AccountError> {
        if !valid_name(name) || display_name.chars().count() > 64 {
            return Err(AccountError::BadName);
        }
        if self.conn_has_user(name)? {
            return Err(AccountError::UserExists(name.to_owned()));
        }
        let user = UserId::new_v7();
        // Creating an account needs user administration even when no role is granted (the
        // per-role checks below would not run for an empty list).
        if let Some(actor) = actor {
            self.check(
                actor,
                authorize_user_admin(actor, user),
                Permission::UserAdmin,
            )?;
        }
        let custom = self.custom_roles()?;
        let mut roles = Vec::new();
        for r in role_names {
            let role =
                resolve_role(r, &custom).ok_or_else(|| AccountError::UnknownRole(r.clone()))?;
            if let Some(actor) = actor {
                self.check(
                    actor,
                    authorize_role_change(actor, user, &role),
                    Permission::UserAdmin,
                )?;
            }
            roles.push(role);
        }
        let kind = secret_kind(&roles);
        let secret = match kind {
            CredentialKind::Pin => pos_auth::generate_pin(6),
            _ => pos_auth::generate_one_time_password(),
        };
        let verifier = pos_auth::hash_secret(&secret).map_err(AccountError::Credential)?;
        let by = |d: EventDraft| match actor {
            Some(a) => d.by(a.user),
            None => d,
        };
        self.append(vec![
            by(user_draft(
                ev::UserCreated::KIND,
                &ev::UserCreated {
                    user,
                    name: name.to_owned(),
                    display_name: display_name.to_owned(),
                    roles: roles.iter().map(|r| r.name.clone()).collect(),
                },
            )),
            by(credential_draft(user, kind, verifier, true)),
        ])?;
        Ok((user, secret))
    }

    fn conn_has_user(&self, name: &str) -> crate::Result<bool> {
        self.conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM user_accounts WHERE name = ?1)",
                [name],
                |r| r.get(0),
            )
            .map_err(self.db_err())
    }

    /// A user changes their own secret, proving the current one. Returns a newly enrolled TOTP
    /// secret when their role needs a second factor and they had none (show it once).
    pub fn change_secret(
        &mut self,
        name: &str,
        current: &str,
        new: &str,
        totp_code: Option<&str>,
        policy: &AccountPolicy,
    ) -> Result<Option<TotpSecret>, AccountError> {
        // Prove the current secret like a login (counted, locked out, logged) before anything.
        let outcome = self.login(name, current, totp_code, policy)?;
        if let Err(refusal) = &outcome {
            if !matches!(
                refusal,
                LoginRefusal::MustChangeSecret | LoginRefusal::MfaRequired
            ) {
                return Err(AccountError::Login(refusal.clone()));
            }
        }
        let account = self.existing(name, policy)?;
        let has_totp = account
            .credentials
            .iter()
            .any(|c| c.kind == CredentialKind::Totp);
        // A second factor that is required but not enrolled yet is enrolled below.
        if outcome == Err(LoginRefusal::MfaRequired) && has_totp {
            return Err(AccountError::Login(LoginRefusal::MfaRequired));
        }
        let kind = account
            .credentials
            .iter()
            .map(|c| c.kind)
            .find(|k| matches!(k, CredentialKind::Pin | CredentialKind::Password))
            .unwrap_or_else(|| secret_kind(&account.roles));
        let history = self.secret_history(account.user, kind, policy.password.history)?;
        match kind {
            CredentialKind::Pin => {
                pos_auth::check_pin(new).map_err(AccountError::Credential)?;
                if history.iter().any(|v| pos_auth::verify_secret(new, v)) {
                    return Err(AccountError::Credential(CredentialError::Reused));
                }
            }
            _ => pos_auth::check_password(new, &account.name, &policy.password, &history)
                .map_err(AccountError::Credential)?,
        }
        let verifier = pos_auth::hash_secret(new).map_err(AccountError::Credential)?;
        let mut drafts =
            vec![credential_draft(account.user, kind, verifier, false).by(account.user)];
        let enrolled = if account.mfa_required && !has_totp {
            let totp = TotpSecret::generate();
            drafts.push(
                credential_draft(account.user, CredentialKind::Totp, totp.to_base32(), false)
                    .by(account.user),
            );
            Some(totp)
        } else {
            None
        };
        self.append(drafts)?;
        Ok(enrolled)
    }

    /// The last `n` verifiers of a user's PIN or password, newest first.
    fn secret_history(
        &self,
        user: UserId,
        kind: CredentialKind,
        n: usize,
    ) -> crate::Result<Vec<String>> {
        self.conn()
            .prepare(
                "SELECT verifier FROM user_secret_history WHERE user = ?1 AND kind = ?2
                 ORDER BY set_hlc DESC LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(params![user.as_bytes(), kind_str(kind), n as i64], |r| {
                    r.get(0)
                })?
                .collect()
            })
            .map_err(self.db_err())
    }

    /// An admin resets someone's secret: a new one-time secret, to be changed at first use.
    pub fn reset_secret(
        &mut self,
        actor: &Principal,
        name: &str,
        policy: &AccountPolicy,
    ) -> Result<String, AccountError> {
        let account = self.administered(actor, name, policy)?;
        let kind = secret_kind(&account.roles);
        let secret = match kind {
            CredentialKind::Pin => pos_auth::generate_pin(6),
            _ => pos_auth::generate_one_time_password(),
        };
        let verifier = pos_auth::hash_secret(&secret).map_err(AccountError::Credential)?;
        self.append(vec![
            credential_draft(account.user, kind, verifier, true).by(actor.user)
        ])?;
        Ok(secret)
    }

    /// Add and remove roles of a user; returns the roles before and after.
    pub fn change_roles(
        &mut self,
        actor: &Principal,
        name: &str,
        add: &[String],
        remove: &[String],
        policy: &AccountPolicy,
    ) -> Result<(Vec<String>, Vec<String>), AccountError> {
        let account = self.existing(name, policy)?;
        let custom = self.custom_roles()?;
        let before: Vec<String> = account.roles.iter().map(|r| r.name.clone()).collect();
        let mut after = before.clone();
        for r in add.iter().chain(remove) {
            let role =
                resolve_role(r, &custom).ok_or_else(|| AccountError::UnknownRole(r.clone()))?;
            self.check(
                actor,
                authorize_role_change(actor, account.user, &role),
                Permission::UserAdmin,
            )?;
        }
        after.retain(|r| !remove.contains(r));
        for r in add {
            if !after.contains(r) {
                after.push(r.clone());
            }
        }
        if after != before {
            self.append(vec![user_draft(
                ev::RolesChanged::KIND,
                &ev::RolesChanged {
                    user: account.user,
                    before: before.clone(),
                    after: after.clone(),
                },
            )
            .by(actor.user)])?;
        }
        Ok((before, after))
    }

    /// Give `name` a badge (scanned at the terminal to log in): only its verifier and a keyed
    /// lookup hash are stored. A badge that belonged to someone else moves to `name`.
    pub fn set_badge(
        &mut self,
        actor: &Principal,
        name: &str,
        badge: &str,
        policy: &AccountPolicy,
    ) -> Result<(), AccountError> {
        let account = self.administered(actor, name, policy)?;
        pos_auth::check_badge(badge).map_err(AccountError::Credential)?;
        let verifier = pos_auth::hash_secret(badge).map_err(AccountError::Credential)?;
        let lookup = self.badge_key(badge);
        self.append(vec![
            credential_draft(account.user, CredentialKind::Badge, verifier, false).by(actor.user),
            user_draft(
                ev::BadgeAssigned::KIND,
                &ev::BadgeAssigned {
                    user: account.user,
                    lookup,
                },
            )
            .by(actor.user),
        ])?;
        Ok(())
    }

    /// Log in by scanning a badge: finds the user from the badge, then decides like any login
    /// (lockout, MFA, deactivation). An unknown badge is a failed attempt in the log.
    pub fn login_badge(
        &mut self,
        badge: &str,
        policy: &AccountPolicy,
    ) -> Result<Result<LoginOk, LoginRefusal>, AccountError> {
        let lookup = self.badge_key(badge);
        let name: Option<String> = self
            .conn()
            .query_row(
                "SELECT a.name FROM user_badges b JOIN user_accounts a ON a.user = b.user
                 WHERE b.lookup = ?1",
                [lookup],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db_err())?;
        // An unknown badge goes through the same decision as an unknown user name.
        let name = name.unwrap_or_else(|| "(unknown badge)".to_owned());
        self.login(&name, badge, None, policy)
    }

    /// The badge lookup key: keyed by the branch, so the same badge in another shop differs.
    fn badge_key(&self, badge: &str) -> String {
        pos_auth::badge_lookup_key(self.identity().branch.as_bytes(), badge)
    }

    /// Lock (`lock = true`) or unlock an account by hand.
    pub fn set_locked(
        &mut self,
        actor: &Principal,
        name: &str,
        lock: bool,
        policy: &AccountPolicy,
    ) -> Result<(), AccountError> {
        let account = self.administered(actor, name, policy)?;
        let draft = if lock {
            security_draft(
                &ev::SecurityEvent::UserLocked(ev::UserLocked {
                    user: account.user,
                    until_ms: None,
                })
                .payload(),
            )
        } else {
            security_draft(
                &ev::SecurityEvent::UserUnlocked(ev::UserUnlocked { user: account.user }).payload(),
            )
        };
        self.append(vec![draft.by(actor.user)])?;
        Ok(())
    }

    /// The account `name`, if `actor` may administer it (a denial is logged).
    fn administered(
        &mut self,
        actor: &Principal,
        name: &str,
        policy: &AccountPolicy,
    ) -> Result<Account, AccountError> {
        let account = self.existing(name, policy)?;
        self.check(
            actor,
            authorize_user_admin_on(actor, &account.principal()),
            Permission::UserAdmin,
        )?;
        Ok(account)
    }

    fn existing(&self, name: &str, policy: &AccountPolicy) -> Result<Account, AccountError> {
        self.account(name, policy)?
            .ok_or_else(|| AccountError::UnknownUser(name.to_owned()))
    }

    /// The one gate for business commands: may `actor` do `permission` (with `approver` for the
    /// four-eyes actions)? A denial is logged as `security.permission_denied` and returned. An
    /// approval comes back with its `security.approval_used` draft, to be committed together
    /// with the action so the two can never be separated.
    pub fn authorize(
        &mut self,
        actor: &Principal,
        permission: Permission,
        approver: Option<&Principal>,
    ) -> Result<Authorized, AccountError> {
        let approval = match pos_auth::authorize(actor, permission, approver) {
            Ok(approval) => approval,
            Err(denial) => return Err(self.deny(actor, permission, denial)),
        };
        let audit = match approval {
            Approval::Direct => None,
            Approval::ApprovedBy(approver) => Some(
                security_draft(
                    &ev::SecurityEvent::ApprovalUsed(ev::ApprovalUsed {
                        requester: actor.user,
                        approver,
                        permission,
                    })
                    .payload(),
                )
                .by(actor.user),
            ),
        };
        Ok(Authorized { approval, audit })
    }

    /// Define or redefine a custom role (before/after in the log).
    pub fn define_role(
        &mut self,
        actor: &Principal,
        name: &str,
        permissions: std::collections::BTreeSet<Permission>,
    ) -> Result<Role, AccountError> {
        let role = Role::custom(name, permissions)
            .map_err(|e| AccountError::UnknownRole(format!("{name}: {e}")))?;
        self.check(
            actor,
            pos_auth::authorize_role_definition(actor, &role),
            Permission::UserAdmin,
        )?;
        let before = self
            .custom_roles()?
            .into_iter()
            .find(|r| r.name == role.name)
            .map(|r| r.permissions);
        self.append(vec![user_draft(
            ev::RoleDefined::KIND,
            &ev::RoleDefined {
                name: role.name.clone(),
                before,
                after: role.permissions.clone(),
            },
        )
        .by(actor.user)])?;
        Ok(role)
    }

    /// Apply a policy verdict; a denial is recorded in the security log before it is returned.
    fn check(
        &mut self,
        actor: &Principal,
        verdict: Result<(), Denial>,
        permission: Permission,
    ) -> Result<(), AccountError> {
        verdict.map_err(|denial| self.deny(actor, permission, denial))
    }

    /// Record a denial in the security log and turn it into the error to return.
    fn deny(&mut self, actor: &Principal, permission: Permission, denial: Denial) -> AccountError {
        let draft = security_draft(
            &ev::SecurityEvent::PermissionDenied(ev::PermissionDenied::new(
                actor.user, permission, &denial,
            ))
            .payload(),
        )
        .by(actor.user);
        match self.append(vec![draft]) {
            Ok(_) => AccountError::Denied(denial),
            // Failing to log must not turn a refusal into a success: report the store error.
            Err(e) => AccountError::Store(e),
        }
    }
}

/// What [`Store::authorize`] allowed, and the approval record to commit with the action.
#[derive(Debug)]
pub struct Authorized {
    pub approval: Approval,
    pub audit: Option<EventDraft>,
}

/// PIN for tills (cashier, supervisor), password for every other role.
fn secret_kind(roles: &[Role]) -> CredentialKind {
    let pin_only = !roles.is_empty()
        && roles
            .iter()
            .all(|r| r.builtin_kind().map(|b| b.credential_kind()) == Some(CredentialKind::Pin));
    if pin_only {
        CredentialKind::Pin
    } else {
        CredentialKind::Password
    }
}

fn kind_str(kind: CredentialKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn uuid(bytes: &[u8]) -> Option<UserId> {
    <[u8; 16]>::try_from(bytes).ok().map(UserId::from_bytes)
}

/// Module `user`: accounts, credentials, roles.
#[derive(Debug)]
pub(crate) struct UserProjection;

impl Projection for UserProjection {
    fn module(&self) -> &'static str {
        ev::USER_MODULE
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "user_accounts",
            "user_credentials",
            "user_secret_history",
            "user_roles",
            "user_badges",
        ]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        let hlc = event.hlc.raw() as i64;
        match event.kind.as_str() {
            ev::UserCreated::KIND => {
                let p: ev::UserCreated = payload(event)?;
                let roles = serde_json::to_string(&p.roles).map_err(|e| Refusal(e.to_string()))?;
                tx.prepare_cached(
                    "INSERT INTO user_accounts (user, name, display_name, roles, active, created_hlc, updated_hlc)
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5)",
                )?
                .execute(params![p.user.as_bytes(), p.name, p.display_name, roles, hlc])
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => {
                        Refusal(format!("a user named `{}` already exists", p.name))
                    }
                    _ => Refusal(e.to_string()),
                })?;
            }
            ev::CredentialSet::KIND => {
                let p: ev::CredentialSet = payload(event)?;
                let kind = kind_str(p.kind);
                require_user(tx, p.user)?;
                tx.prepare_cached(
                    "INSERT INTO user_credentials (user, kind, verifier, must_change, set_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (user, kind) DO UPDATE SET verifier = ?3, must_change = ?4, set_ms = ?5",
                )?
                .execute(params![p.user.as_bytes(), kind, p.verifier, p.must_change, event.hlc.wall_ms() as i64])?;
                if matches!(p.kind, CredentialKind::Pin | CredentialKind::Password) {
                    tx.prepare_cached(
                        "INSERT INTO user_secret_history (user, kind, verifier, set_hlc) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![p.user.as_bytes(), kind, p.verifier, hlc])?;
                }
            }
            ev::RolesChanged::KIND => {
                let p: ev::RolesChanged = payload(event)?;
                let roles = serde_json::to_string(&p.after).map_err(|e| Refusal(e.to_string()))?;
                let n = tx
                    .prepare_cached(
                        "UPDATE user_accounts SET roles = ?2, updated_hlc = ?3 WHERE user = ?1",
                    )?
                    .execute(params![p.user.as_bytes(), roles, hlc])?;
                if n == 0 {
                    return Err(Refusal(format!("unknown user {}", p.user)));
                }
            }
            ev::BadgeAssigned::KIND => {
                let p: ev::BadgeAssigned = payload(event)?;
                require_user(tx, p.user)?;
                tx.prepare_cached("DELETE FROM user_badges WHERE user = ?1 OR lookup = ?2")?
                    .execute(params![p.user.as_bytes(), p.lookup])?;
                tx.prepare_cached("INSERT INTO user_badges (lookup, user) VALUES (?1, ?2)")?
                    .execute(params![p.lookup, p.user.as_bytes()])?;
            }
            ev::UserDeactivated::KIND => {
                let p: ev::UserDeactivated = payload(event)?;
                tx.prepare_cached(
                    "UPDATE user_accounts SET active = 0, updated_hlc = ?2 WHERE user = ?1",
                )?
                .execute(params![p.user.as_bytes(), hlc])?;
            }
            ev::RoleDefined::KIND => {
                let p: ev::RoleDefined = payload(event)?;
                let perms = serde_json::to_string(&p.after).map_err(|e| Refusal(e.to_string()))?;
                tx.prepare_cached(
                    "INSERT INTO user_roles (name, permissions) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET permissions = ?2",
                )?
                .execute(params![p.name, perms])?;
            }
            _ => {
                return Err(Refusal(format!(
                    "unknown kind `{}` for module `user`",
                    event.kind
                )))
            }
        }
        Ok(())
    }
}

fn require_user(tx: &Transaction<'_>, user: UserId) -> Result<(), Refusal> {
    let exists: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM user_accounts WHERE user = ?1)")?
        .query_row([user.as_bytes()], |r| r.get(0))?;
    if exists {
        Ok(())
    } else {
        Err(Refusal(format!("unknown user {user}")))
    }
}

/// The lockout state of `user` and the last TOTP step they used (defaults when never seen).
fn read_login_state(
    conn: &rusqlite::Connection,
    user: UserId,
) -> rusqlite::Result<(LoginState, Option<u64>)> {
    let row: Option<(i64, i64, bool, Option<i64>)> = conn
        .prepare_cached(
            "SELECT failures, locked_until_ms, manual_lock, last_totp_step
             FROM security_login_state WHERE user = ?1",
        )?
        .query_row([user.as_bytes()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(match row {
        None => (LoginState::default(), None),
        Some((failures, until, manual, step)) => (
            LoginState {
                failures: failures as u32,
                locked_until_ms: until as u64,
                manual_lock: manual,
            },
            step.map(|s| s as u64),
        ),
    })
}

/// Module `security`: the login state of each user, derived from login events only, so that
/// replaying the log gives the lockouts that were in force.
#[derive(Debug)]
pub(crate) struct SecurityProjection;

impl Projection for SecurityProjection {
    fn module(&self) -> &'static str {
        ev::SECURITY_MODULE
    }
    fn tables(&self) -> &'static [&'static str] {
        &["security_login_state"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        let value: serde_json::Value = payload(event)?;
        let Some(user) = ev::subject_user(&event.kind, &value) else {
            // Events about no known account (unknown user name, exports) change no state.
            return Ok(());
        };
        let (state, step) = read_login_state(tx, user)?;
        let next = pos_auth::next_login_state(state, &event.kind, &value);
        let step = ev::totp_step(&event.kind, &value).or(step);
        tx.prepare_cached(
            "INSERT INTO security_login_state (user, failures, locked_until_ms, manual_lock, last_totp_step)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user) DO UPDATE SET failures = ?2, locked_until_ms = ?3, manual_lock = ?4,
                 last_totp_step = ?5",
        )?
        .execute(params![
            user.as_bytes(),
            next.failures as i64,
            next.locked_until_ms as i64,
            next.manual_lock,
            step.map(|s| s as i64)
        ])?;
        Ok(())
    }
}

//! 3PlugPOS identity and authorization: the pure domain (no IO).
//!
//! - [`permission`]: the catalogue of what can be allowed.
//! - [`role`]: built-in and custom roles (the built-in matrix is tabled there).
//! - [`policy`]: separation of duties, enforced here and only here.
//! - [`credential`], [`totp`]: secret policies, argon2id hashing, RFC 6238 second factor.
//! - [`lockout`], [`session`]: backoff after failures, idle lock, forced logout.
//! - [`login`]: the login decision and the projection rule of the login state.
//! - [`anomaly`], [`events`]: what goes into the `user` and `security` event modules.
//!
//! Time is always an argument (HLC wall milliseconds for anything that must not run backwards;
//! wall seconds only for TOTP). Randomness comes from the OS via `getrandom`; if the OS generator
//! fails, the functions that create secrets panic rather than create predictable ones.
//!
//! No PIN, password, badge code or TOTP code ever appears in an error message, `Debug` output or
//! event payload. The one stored secret is a TOTP shared secret, which travels only in
//! `CredentialSet::verifier` (hidden from `Debug`, and from `pos audit log` by [`redact`]).

pub mod anomaly;
pub mod credential;
pub mod events;
pub mod lockout;
pub mod login;
pub mod permission;
pub mod policy;
pub mod role;
pub mod session;
pub mod totp;

pub use anomaly::{AnomalyFlag, AnomalyRules};
pub use credential::{
    badge_lookup_key, check_badge, check_password, check_pin, generate_one_time_password,
    generate_pin, hash_secret, verify_secret, CredentialError, CredentialKind, PasswordPolicy,
    ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB,
};
pub use events::{
    redact, AnomalyFlagged, ApprovalUsed, CredentialSet, DataExported, ForcedLogout, LoginFailed,
    LoginFailure, LoginSucceeded, PermissionDenied, ReportExported, RoleDefined, RolesChanged,
    SecurityEvent, SecurityEventPayload, UserCreated, UserDeactivated, UserLocked, UserUnlocked,
    REDACTED_FIELDS, SECURITY_MODULE, USER_MODULE,
};
pub use lockout::{Locked, LockoutPolicy, LoginState};
pub use login::{
    apply_security_event, decide_login, next_login_state, Account, LoginAttempt, LoginDecision,
    LoginOk, LoginPolicy, LoginRefusal, StoredCredential,
};
pub use permission::{Permission, UnknownName};
pub use policy::{
    authorize, authorize_role_change, authorize_role_definition, authorize_user_admin,
    authorize_user_admin_on, Approval, Denial, Principal,
};
pub use role::{resolve_role, role_names, BuiltinRole, Role, RoleError};
pub use session::{SessionId, SessionPolicy, SessionState, Sessions};
pub use totp::{totp_code, verify_totp, TotpError, TotpSecret};

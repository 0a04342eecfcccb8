//! Payloads of the `user` and `security` modules' events (JSON in the audit chain).
//!
//! User and role changes carry before/after so the log alone answers "who could do what, when".
//! No payload carries a PIN, password or badge code; `CredentialSet::verifier` carries only what
//! the store needs to check one (a PHC hash, a badge lookup key, or a TOTP secret), and
//! [`redact`] hides even that from `pos audit log`.

use std::collections::BTreeSet;

use pos_core::UserId;
use serde::{Deserialize, Serialize};

use crate::anomaly::AnomalyFlag;
use crate::credential::CredentialKind;
use crate::permission::Permission;

pub const USER_MODULE: &str = "user";
pub const SECURITY_MODULE: &str = "security";

/// Longest user-supplied name recorded in an event, in characters.
pub const MAX_LOGGED_NAME_CHARS: usize = 64;

/// A name as typed at a login prompt, made safe to log: at most 64 characters, control
/// characters (newlines, escapes) replaced by U+FFFD so a crafted name cannot forge log lines or
/// drive a terminal.
pub fn sanitize_name(name: &str) -> String {
    name.chars()
        .take(MAX_LOGGED_NAME_CHARS)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// `user.created`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCreated {
    pub user: UserId,
    pub name: String,
    pub display_name: String,
    pub roles: Vec<String>,
}

/// `user.credential_set`: a new PIN, password, badge or TOTP secret. `verifier` is a PHC string
/// (PIN, password, badge), or the base32 TOTP secret. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialSet {
    pub user: UserId,
    pub kind: CredentialKind,
    pub verifier: String,
    /// Set for one-time passwords and resets: the next login must choose a new secret.
    pub must_change: bool,
}

impl std::fmt::Debug for CredentialSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSet")
            .field("user", &self.user)
            .field("kind", &self.kind)
            .field("verifier", &REDACTED)
            .field("must_change", &self.must_change)
            .finish()
    }
}

/// `user.roles_changed`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesChanged {
    pub user: UserId,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

/// `user.badge_assigned`: the lookup key of a badge (a keyed hash, not the badge itself), so a
/// terminal finds the user from a scan; the badge's verifier is a `credential_set` (kind badge)
/// in the same commit. A badge moved to another user leaves the previous one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadgeAssigned {
    pub user: UserId,
    pub lookup: String,
}

/// `user.deactivated`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDeactivated {
    pub user: UserId,
}

/// `user.role_defined`: a custom role created (`before` = None) or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDefined {
    pub name: String,
    pub before: Option<BTreeSet<Permission>>,
    pub after: BTreeSet<Permission>,
}

/// `security.login_succeeded`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSucceeded {
    pub user: UserId,
    pub method: CredentialKind,
    /// The TOTP step of the code used, if any: recorded so that replay protection survives a
    /// rebuild of the projections (see [`totp_step`]). Absent from the JSON when None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_step: Option<u64>,
}

/// Why a login was refused, as recorded (finer than what the user is told).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginFailure {
    UnknownUser,
    WrongSecret,
    Locked,
    MfaRequired,
    WrongMfaCode,
    ReplayedMfaCode,
    Inactive,
    MustChangeSecret,
    CredentialsTooOld,
}

impl LoginFailure {
    /// Whether this failure counts towards lockout: only guesses do (wrong secret or code), not
    /// refusals that involve no guess.
    pub fn counts_as_failure(self) -> bool {
        matches!(
            self,
            LoginFailure::WrongSecret | LoginFailure::WrongMfaCode | LoginFailure::ReplayedMfaCode
        )
    }
}

/// `security.login_failed`. `name` is what was typed, sanitised ([`LoginFailed::new`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginFailed {
    pub name: String,
    pub user: Option<UserId>,
    pub reason: LoginFailure,
}

impl LoginFailed {
    pub fn new(name: &str, user: Option<UserId>, reason: LoginFailure) -> Self {
        LoginFailed {
            name: sanitize_name(name),
            user,
            reason,
        }
    }
}

/// `security.permission_denied`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionDenied {
    pub user: UserId,
    pub permission: Permission,
    /// A [`crate::policy::Denial::code`].
    pub reason: String,
}

impl PermissionDenied {
    pub fn new(user: UserId, permission: Permission, denial: &crate::policy::Denial) -> Self {
        PermissionDenied {
            user,
            permission,
            reason: denial.code().to_owned(),
        }
    }
}

/// `security.approval_used`: a second person vouched for a sensitive action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalUsed {
    pub requester: UserId,
    pub approver: UserId,
    pub permission: Permission,
}

/// `security.user_locked`: `until_ms` (HLC ms) for an automatic lock, None for a manager's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLocked {
    pub user: UserId,
    pub until_ms: Option<u64>,
}

/// `security.user_unlocked`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserUnlocked {
    pub user: UserId,
}

/// `security.forced_logout`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcedLogout {
    pub user: UserId,
}

/// `security.anomaly`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyFlagged {
    pub user: Option<UserId>,
    pub flag: AnomalyFlag,
}

/// `security.export`: data left the device (report, backup export, CSV).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataExported {
    pub what: String,
    pub destination: String,
}

/// `security.report_exported`: a report written to a file (`pos report --format csv|pdf` or
/// `--out`), by the envelope's actor. `period` is the report's period as it reads (local time);
/// `file` the file's name as given (no directory contents, no data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportExported {
    pub report: String,
    pub format: String,
    pub period: String,
    pub file: String,
}

macro_rules! kinds {
    ($($ty:ident => $module:ident, $kind:literal;)*) => {
        $(impl $ty {
            pub const MODULE: &'static str = $module;
            pub const KIND: &'static str = $kind;
        })*
    };
}

kinds! {
    UserCreated => USER_MODULE, "created";
    CredentialSet => USER_MODULE, "credential_set";
    RolesChanged => USER_MODULE, "roles_changed";
    UserDeactivated => USER_MODULE, "deactivated";
    BadgeAssigned => USER_MODULE, "badge_assigned";
    RoleDefined => USER_MODULE, "role_defined";
    LoginSucceeded => SECURITY_MODULE, "login_succeeded";
    LoginFailed => SECURITY_MODULE, "login_failed";
    PermissionDenied => SECURITY_MODULE, "permission_denied";
    ApprovalUsed => SECURITY_MODULE, "approval_used";
    UserLocked => SECURITY_MODULE, "user_locked";
    UserUnlocked => SECURITY_MODULE, "user_unlocked";
    ForcedLogout => SECURITY_MODULE, "forced_logout";
    AnomalyFlagged => SECURITY_MODULE, "anomaly";
    DataExported => SECURITY_MODULE, "export";
    ReportExported => SECURITY_MODULE, "report_exported";
}

/// Any `security` event, as appended to the log.
#[derive(Debug, Clone, PartialEq)]
pub enum SecurityEvent {
    LoginSucceeded(LoginSucceeded),
    LoginFailed(LoginFailed),
    UserLocked(UserLocked),
    UserUnlocked(UserUnlocked),
    Anomaly(AnomalyFlagged),
    PermissionDenied(PermissionDenied),
    ApprovalUsed(ApprovalUsed),
    ForcedLogout(ForcedLogout),
    DataExported(DataExported),
    ReportExported(ReportExported),
}

/// A security event ready for an event draft: its kind and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEventPayload {
    pub kind: &'static str,
    pub body: serde_json::Value,
}

impl SecurityEvent {
    /// Always [`SECURITY_MODULE`].
    pub fn module(&self) -> &'static str {
        SECURITY_MODULE
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SecurityEvent::LoginSucceeded(_) => LoginSucceeded::KIND,
            SecurityEvent::LoginFailed(_) => LoginFailed::KIND,
            SecurityEvent::UserLocked(_) => UserLocked::KIND,
            SecurityEvent::UserUnlocked(_) => UserUnlocked::KIND,
            SecurityEvent::Anomaly(_) => AnomalyFlagged::KIND,
            SecurityEvent::PermissionDenied(_) => PermissionDenied::KIND,
            SecurityEvent::ApprovalUsed(_) => ApprovalUsed::KIND,
            SecurityEvent::ForcedLogout(_) => ForcedLogout::KIND,
            SecurityEvent::DataExported(_) => DataExported::KIND,
            SecurityEvent::ReportExported(_) => ReportExported::KIND,
        }
    }

    /// The JSON payload to record.
    pub fn to_payload(&self) -> serde_json::Value {
        let v = match self {
            SecurityEvent::LoginSucceeded(e) => serde_json::to_value(e),
            SecurityEvent::LoginFailed(e) => serde_json::to_value(e),
            SecurityEvent::UserLocked(e) => serde_json::to_value(e),
            SecurityEvent::UserUnlocked(e) => serde_json::to_value(e),
            SecurityEvent::Anomaly(e) => serde_json::to_value(e),
            SecurityEvent::PermissionDenied(e) => serde_json::to_value(e),
            SecurityEvent::ApprovalUsed(e) => serde_json::to_value(e),
            SecurityEvent::ForcedLogout(e) => serde_json::to_value(e),
            SecurityEvent::DataExported(e) => serde_json::to_value(e),
            SecurityEvent::ReportExported(e) => serde_json::to_value(e),
        };
        // Plain structs with string keys always serialise; never panic if that ever changes.
        v.unwrap_or(serde_json::Value::Null)
    }

    /// Kind and body together.
    pub fn payload(&self) -> SecurityEventPayload {
        SecurityEventPayload {
            kind: self.kind(),
            body: self.to_payload(),
        }
    }
}

/// The user a recorded `user` or `security` event is about (the requester for
/// `approval_used`), for projections keyed by user. None for events about no known account
/// (a login with an unknown name, an export) and for unreadable payloads.
pub fn subject_user(kind: &str, payload: &serde_json::Value) -> Option<UserId> {
    let field = if kind == ApprovalUsed::KIND {
        "requester"
    } else {
        "user"
    };
    serde_json::from_value(payload.get(field)?.clone()).ok()
}

/// The TOTP step recorded by a `login_succeeded` event, which the account's replay protection
/// must remember (`Account::last_totp_step`).
pub fn totp_step(kind: &str, payload: &serde_json::Value) -> Option<u64> {
    if kind == LoginSucceeded::KIND {
        payload.get("totp_step")?.as_u64()
    } else {
        None
    }
}

/// Payload fields whose values `pos audit log` never shows.
pub const REDACTED_FIELDS: &[&str] = &["verifier"];
/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Replace the values of [`REDACTED_FIELDS`] anywhere in `payload` (nested objects and arrays
/// included) with `"[redacted]"`.
pub fn redact(payload: &mut serde_json::Value) {
    // An explicit stack rather than recursion: a hostile, deeply nested payload cannot overflow it.
    let mut stack = vec![payload];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if REDACTED_FIELDS.contains(&k.as_str()) {
                        *child = serde_json::Value::String(REDACTED.to_owned());
                    } else {
                        stack.push(child);
                    }
                }
            }
            serde_json::Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_nested_verifiers() {
        let mut v = json!({
            "user": "x",
            "verifier": "$argon2id$secret",
            "list": [{"verifier": {"deep": 1}}, 3],
            "inner": {"a": {"verifier": "JBSWY3DP"}}
        });
        redact(&mut v);
        assert_eq!(
            v,
            json!({
                "user": "x",
                "verifier": "[redacted]",
                "list": [{"verifier": "[redacted]"}, 3],
                "inner": {"a": {"verifier": "[redacted]"}}
            })
        );
    }

    #[test]
    fn sanitises_names() {
        assert_eq!(sanitize_name("anna\n\u{1b}[2J"), "anna\u{FFFD}\u{FFFD}[2J");
        assert_eq!(sanitize_name(&"é".repeat(1000)).chars().count(), 64);
        assert_eq!(sanitize_name(""), "");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<UserUnlocked, _> = serde_json::from_value(json!({
            "user": "0190a1b2-0000-7000-8000-000000000000", "pin": "1234"
        }));
        assert!(r.is_err());
    }

    #[test]
    fn credential_set_debug_hides_the_verifier() {
        let c = CredentialSet {
            user: UserId::from_bytes([1; 16]),
            kind: CredentialKind::Totp,
            verifier: "JBSWY3DPEHPK3PXP".into(),
            must_change: false,
        };
        assert!(!format!("{c:?}").contains("JBSWY3DP"));
    }
}

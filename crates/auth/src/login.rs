//! The login decision, sans-IO: the caller loads the account, calls [`decide_login`], appends the
//! returned events and applies them to its projection with [`next_login_state`].
//!
//! The login state (failures, timed lock, manual lock) is never stored on its own: it is what
//! replaying the account's `security` events through [`next_login_state`] yields. `decide_login`
//! returns the state it reached in [`LoginDecision::login`], and replaying its events from the
//! state it was given yields exactly that (tested), so the decision and the store's projection
//! cannot disagree.

use pos_core::UserId;

use crate::anomaly::AnomalyRules;
use crate::credential::{verify_secret, CredentialKind, DUMMY_PHC};
pub use crate::events::SecurityEvent;
use crate::events::{
    AnomalyFlagged, LoginFailed, LoginFailure, LoginSucceeded, UserLocked, UserUnlocked, REDACTED,
};
use crate::lockout::{Locked, LockoutPolicy, LoginState};
use crate::policy::Principal;
use crate::role::Role;
use crate::totp::{verify_totp, TotpError, TotpSecret};

/// One credential of an account as the store holds it. `Debug` hides the verifier (for TOTP it
/// is the shared secret itself).
#[derive(Clone)]
pub struct StoredCredential {
    pub kind: CredentialKind,
    /// PHC string for PIN, password and badge; base32 secret for TOTP.
    pub verifier: String,
    pub must_change: bool,
    /// HLC ms when it was set (for [`LoginPolicy::credential_max_age_ms`]).
    pub set_ms: u64,
}

impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCredential")
            .field("kind", &self.kind)
            .field("verifier", &REDACTED)
            .field("must_change", &self.must_change)
            .field("set_ms", &self.set_ms)
            .finish()
    }
}

/// Everything the decision needs to know about a user, as loaded by the caller.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: UserId,
    pub name: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub credentials: Vec<StoredCredential>,
    pub login: LoginState,
    /// The TOTP step of the last accepted code (replay protection).
    pub last_totp_step: Option<u64>,
    /// Second factor required even without a TOTP credential (admins and technicians by
    /// default): such an account cannot log in until it enrolls one.
    pub mfa_required: bool,
}

impl Account {
    pub fn principal(&self) -> Principal {
        Principal {
            user: self.user,
            roles: self.roles.clone(),
            active: self.active,
        }
    }
}

/// One login attempt. `Debug` hides the secret and the code.
pub struct LoginAttempt<'a> {
    pub name: &'a str,
    pub secret: &'a str,
    pub totp_code: Option<&'a str>,
    /// HLC wall ms (never runs backwards): used for lockout and credential age.
    pub now_ms: u64,
    /// Wall clock in seconds: TOTP codes follow the phone's clock, not ours.
    pub unix_s: u64,
}

impl std::fmt::Debug for LoginAttempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginAttempt")
            .field("name", &self.name)
            .field("secret", &REDACTED)
            .field("totp_code", &self.totp_code.map(|_| REDACTED))
            .field("now_ms", &self.now_ms)
            .field("unix_s", &self.unix_s)
            .finish()
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoginPolicy {
    pub lockout: LockoutPolicy,
    pub anomaly: AnomalyRules,
    /// Refuse a credential set longer ago than this (HLC ms); None = no limit. On a terminal this
    /// bounds how long a cached verifier stays usable offline.
    pub credential_max_age_ms: Option<u64>,
}

/// What [`decide_login`] decided.
#[derive(Debug)]
pub struct LoginDecision {
    pub outcome: Result<LoginOk, LoginRefusal>,
    /// To append to the `security` module, in order.
    pub events: Vec<SecurityEvent>,
    /// The account's login state after this attempt: what replaying `events` through
    /// [`next_login_state`] from the account's state yields (default for an unknown user).
    pub login: LoginState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOk {
    pub user: UserId,
    /// Which first factor matched.
    pub method: CredentialKind,
    /// The TOTP step used, to store as the account's `last_totp_step`.
    pub totp_step: Option<u64>,
}

/// What the user is told. An unknown name and a wrong secret read the same, so the prompt does
/// not reveal who has an account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    #[error("wrong user name or secret{}", attempts_suffix(*.attempts_left))]
    UnknownOrWrong { attempts_left: Option<u32> },
    #[error("{}", locked_message(.0))]
    Locked(Locked),
    #[error("an authenticator code is required: enter the 6-digit code from your app (or ask an administrator to enroll one)")]
    MfaRequired,
    #[error("wrong authenticator code: enter the current code from your app")]
    WrongMfaCode,
    #[error("this account is deactivated: ask a manager")]
    Inactive,
    #[error("the secret must be changed before first use: choose a new one")]
    MustChangeSecret,
    #[error("these credentials are too old to use on this device: connect to the hub or ask a manager to reset them")]
    CredentialsTooOld,
}

impl LoginRefusal {
    /// Until when (HLC ms) a timed lock holds, for the caller to format.
    pub fn until_ms(&self) -> Option<u64> {
        match self {
            LoginRefusal::Locked(Locked::Until(ms)) => Some(*ms),
            _ => None,
        }
    }
}

fn attempts_suffix(attempts_left: Option<u32>) -> String {
    match attempts_left {
        None => String::new(),
        Some(0) => " (the account is now locked for a while; a manager can unlock it)".to_owned(),
        Some(1) => " (1 attempt left before lockout)".to_owned(),
        Some(n) => format!(" ({n} attempts left before lockout)"),
    }
}

fn locked_message(l: &Locked) -> String {
    match l {
        Locked::Manually => "the account is locked by a manager: ask a manager to unlock it".into(),
        Locked::Until(ms) => {
            format!("the account is locked until {ms}: wait, or ask a manager to unlock it")
        }
    }
}

/// The projection rule: the login state after one recorded `security` event of the account
/// (`kind` and JSON `payload` as stored). Kinds other than `login_succeeded`, `login_failed`,
/// `user_locked` and `user_unlocked`, and unreadable payloads, leave the state unchanged.
///
/// A counted failure only increments the count; the lock time comes from the `user_locked`
/// payload, written by [`decide_login`] with the time it decided at. So the result does not
/// depend on the envelope's timestamp (the store stamps events after deciding) nor on the
/// lockout policy in force at replay time: a rebuilt projection equals the live one.
pub fn next_login_state(state: LoginState, kind: &str, payload: &serde_json::Value) -> LoginState {
    match kind {
        k if k == LoginSucceeded::KIND => state.after_success(),
        k if k == LoginFailed::KIND => {
            let reason = payload
                .get("reason")
                .and_then(|r| serde_json::from_value::<LoginFailure>(r.clone()).ok());
            if reason.is_some_and(LoginFailure::counts_as_failure) {
                LoginState {
                    failures: state.failures.saturating_add(1),
                    ..state
                }
            } else {
                state
            }
        }
        k if k == UserLocked::KIND => {
            match payload.get("until_ms").map(|u| (u.is_null(), u.as_u64())) {
                Some((true, _)) => state.lock_manually(),
                Some((false, Some(until))) => LoginState {
                    locked_until_ms: state.locked_until_ms.max(until),
                    ..state
                },
                _ => state,
            }
        }
        k if k == UserUnlocked::KIND => state.unlock(),
        _ => state,
    }
}

/// [`next_login_state`] for an event still in memory.
pub fn apply_security_event(state: LoginState, ev: &SecurityEvent) -> LoginState {
    next_login_state(state, ev.kind(), &ev.to_payload())
}

struct Ctx<'a> {
    account: &'a Account,
    attempt: &'a LoginAttempt<'a>,
    policy: &'a LoginPolicy,
}

impl Ctx<'_> {
    fn failed(&self, reason: LoginFailure) -> SecurityEvent {
        SecurityEvent::LoginFailed(LoginFailed::new(
            self.attempt.name,
            Some(self.account.user),
            reason,
        ))
    }

    /// A refusal that changes nothing.
    fn refuse(&self, refusal: LoginRefusal, reason: LoginFailure) -> LoginDecision {
        LoginDecision {
            outcome: Err(refusal),
            events: vec![self.failed(reason)],
            login: self.account.login,
        }
    }

    /// A guess that failed: counts towards lockout, may lock and may raise an anomaly.
    fn guess_failed(&self, reason: LoginFailure, refusal: LoginRefusal) -> LoginDecision {
        let before = self.account.login;
        let after = before.after_failure(self.attempt.now_ms, &self.policy.lockout);
        let mut events = vec![self.failed(reason)];
        if after.locked_until_ms != before.locked_until_ms {
            events.push(SecurityEvent::UserLocked(UserLocked {
                user: self.account.user,
                until_ms: Some(after.locked_until_ms),
            }));
        }
        let pin_account = self
            .account
            .credentials
            .iter()
            .any(|c| c.kind == CredentialKind::Pin);
        if pin_account {
            if let Some(flag) = self.policy.anomaly.after_pin_failure(after.failures) {
                events.push(SecurityEvent::Anomaly(AnomalyFlagged {
                    user: Some(self.account.user),
                    flag,
                }));
            }
        }
        let refusal = match refusal {
            LoginRefusal::UnknownOrWrong { .. } => LoginRefusal::UnknownOrWrong {
                attempts_left: Some(after.attempts_left(&self.policy.lockout)),
            },
            other => other,
        };
        LoginDecision {
            outcome: Err(refusal),
            events,
            login: after,
        }
    }
}

/// Decide one login attempt. Order: unknown user; locked (no secret check, so a locked account
/// costs an attacker nothing to probe and us no CPU); deactivated; first factor (PIN, password or
/// badge); must-change; credential age; second factor; success.
///
/// Timing: an unknown user and an account without a first-factor credential still cost one
/// argon2 verification (against a fixed dummy hash), like a wrong secret for a real account.
pub fn decide_login(
    account: Option<&Account>,
    attempt: &LoginAttempt<'_>,
    policy: &LoginPolicy,
) -> LoginDecision {
    let Some(account) = account else {
        let _ = verify_secret(attempt.secret, DUMMY_PHC);
        // Told the same as a first wrong guess on a real account.
        let fresh = LoginState::default().after_failure(attempt.now_ms, &policy.lockout);
        return LoginDecision {
            outcome: Err(LoginRefusal::UnknownOrWrong {
                attempts_left: Some(fresh.attempts_left(&policy.lockout)),
            }),
            events: vec![SecurityEvent::LoginFailed(LoginFailed::new(
                attempt.name,
                None,
                LoginFailure::UnknownUser,
            ))],
            login: LoginState::default(),
        };
    };
    let ctx = Ctx {
        account,
        attempt,
        policy,
    };

    if let Err(locked) = account.login.check(attempt.now_ms) {
        return ctx.refuse(LoginRefusal::Locked(locked), LoginFailure::Locked);
    }
    if !account.active {
        let _ = verify_secret(attempt.secret, DUMMY_PHC);
        return ctx.refuse(LoginRefusal::Inactive, LoginFailure::Inactive);
    }

    let first_factors: Vec<&StoredCredential> = account
        .credentials
        .iter()
        .filter(|c| c.kind.is_first_factor())
        .collect();
    if first_factors.is_empty() {
        let _ = verify_secret(attempt.secret, DUMMY_PHC);
    }
    let Some(matched) = first_factors
        .into_iter()
        .find(|c| verify_secret(attempt.secret, &c.verifier))
    else {
        return ctx.guess_failed(
            LoginFailure::WrongSecret,
            LoginRefusal::UnknownOrWrong {
                attempts_left: None,
            },
        );
    };

    if matched.must_change {
        return ctx.refuse(
            LoginRefusal::MustChangeSecret,
            LoginFailure::MustChangeSecret,
        );
    }
    if policy
        .credential_max_age_ms
        .is_some_and(|max| attempt.now_ms.saturating_sub(matched.set_ms) > max)
    {
        return ctx.refuse(
            LoginRefusal::CredentialsTooOld,
            LoginFailure::CredentialsTooOld,
        );
    }

    let totp_secrets: Vec<TotpSecret> = account
        .credentials
        .iter()
        .filter(|c| c.kind == CredentialKind::Totp)
        .filter_map(|c| TotpSecret::from_base32(&c.verifier).ok())
        .collect();
    let has_totp_credential = account
        .credentials
        .iter()
        .any(|c| c.kind == CredentialKind::Totp);
    let mut totp_step = None;
    if account.mfa_required || has_totp_credential {
        let code = attempt.totp_code.filter(|c| !c.trim().is_empty());
        let Some(code) = code.filter(|_| !totp_secrets.is_empty()) else {
            return ctx.refuse(LoginRefusal::MfaRequired, LoginFailure::MfaRequired);
        };
        let results: Vec<Result<u64, TotpError>> = totp_secrets
            .iter()
            .map(|s| verify_totp(s, code, attempt.unix_s, account.last_totp_step))
            .collect();
        match results.iter().find_map(|r| r.as_ref().ok()) {
            Some(step) => totp_step = Some(*step),
            None => {
                let replayed = results.contains(&Err(TotpError::Replayed));
                let reason = if replayed {
                    LoginFailure::ReplayedMfaCode
                } else {
                    LoginFailure::WrongMfaCode
                };
                return ctx.guess_failed(reason, LoginRefusal::WrongMfaCode);
            }
        }
    }

    LoginDecision {
        outcome: Ok(LoginOk {
            user: account.user,
            method: matched.kind,
            totp_step,
        }),
        events: vec![SecurityEvent::LoginSucceeded(LoginSucceeded {
            user: account.user,
            method: matched.kind,
            totp_step,
        })],
        login: account.login.after_success(),
    }
}

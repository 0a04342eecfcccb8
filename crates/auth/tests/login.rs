//! The login decision: outcomes, events, lockout through events, and secrecy.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::uid;
use pos_auth::events;
use pos_auth::{
    apply_security_event, decide_login, hash_secret, next_login_state, totp_code, Account,
    AnomalyFlag, BuiltinRole, CredentialKind, Locked, LoginAttempt, LoginDecision, LoginFailure,
    LoginPolicy, LoginRefusal, LoginState, Role, SecurityEvent, StoredCredential, TotpSecret,
    UserLocked, UserUnlocked,
};
use proptest::prelude::*;

const PIN: &str = "2580";
const PASSWORD: &str = "violet-oak-7";
const NOW: u64 = 1_700_000_000_000;

/// Production-parameter hashes, made once per test binary.
fn pin_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_secret(PIN).unwrap())
}
fn password_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_secret(PASSWORD).unwrap())
}

fn totp_secret() -> TotpSecret {
    TotpSecret::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap()
}

fn cred(kind: CredentialKind, verifier: &str) -> StoredCredential {
    StoredCredential {
        kind,
        verifier: verifier.to_owned(),
        must_change: false,
        set_ms: NOW,
    }
}

fn cashier() -> Account {
    Account {
        user: uid(1),
        name: "anna".into(),
        roles: vec![Role::builtin(BuiltinRole::Cashier)],
        active: true,
        credentials: vec![cred(CredentialKind::Pin, pin_hash())],
        login: LoginState::default(),
        last_totp_step: None,
        mfa_required: false,
    }
}

fn admin_with_totp() -> Account {
    Account {
        user: uid(2),
        name: "root-anna".into(),
        roles: vec![Role::builtin(BuiltinRole::Admin)],
        credentials: vec![
            cred(CredentialKind::Password, password_hash()),
            cred(CredentialKind::Totp, &totp_secret().to_base32()),
        ],
        mfa_required: true,
        ..cashier()
    }
}

fn attempt<'a>(
    name: &'a str,
    secret: &'a str,
    code: Option<&'a str>,
    now_ms: u64,
) -> LoginAttempt<'a> {
    LoginAttempt {
        name,
        secret,
        totp_code: code,
        now_ms,
        unix_s: now_ms / 1000,
    }
}

fn login(account: Option<&Account>, a: &LoginAttempt<'_>) -> LoginDecision {
    decide_login(account, a, &LoginPolicy::default())
}

fn failure_reasons(d: &LoginDecision) -> Vec<LoginFailure> {
    d.events
        .iter()
        .filter_map(|e| match e {
            SecurityEvent::LoginFailed(f) => Some(f.reason),
            _ => None,
        })
        .collect()
}

/// Replay a decision's events from `from`, as the store's projection does (through JSON).
fn replay(from: LoginState, d: &LoginDecision) -> LoginState {
    d.events.iter().fold(from, |s, e| {
        let p = e.payload();
        let stored: serde_json::Value = serde_json::from_str(&p.body.to_string()).unwrap();
        next_login_state(s, p.kind, &stored)
    })
}

#[test]
fn the_right_pin_logs_in() {
    let acc = cashier();
    let d = login(Some(&acc), &attempt("anna", PIN, None, NOW));
    let ok = d.outcome.clone().unwrap();
    assert_eq!(ok.user, acc.user);
    assert_eq!(ok.method, CredentialKind::Pin);
    assert_eq!(ok.totp_step, None);
    assert_eq!(d.events.len(), 1);
    assert_eq!(d.events[0].kind(), "login_succeeded");
    assert_eq!(d.events[0].module(), "security");
    assert_eq!(d.login, LoginState::default());
}

#[test]
fn a_badge_is_hashed_and_checked_like_a_pin() {
    let badge = "EMP-000123";
    let acc = Account {
        credentials: vec![
            cred(CredentialKind::Pin, pin_hash()),
            cred(CredentialKind::Badge, &hash_secret(badge).unwrap()),
        ],
        ..cashier()
    };
    let d = login(Some(&acc), &attempt("anna", badge, None, NOW));
    assert_eq!(d.outcome.unwrap().method, CredentialKind::Badge);
}

#[test]
fn unknown_user_and_wrong_secret_read_the_same() {
    let acc = cashier();
    let unknown = login(None, &attempt("nobody", PIN, None, NOW));
    let wrong = login(Some(&acc), &attempt("anna", "9999", None, NOW));
    let (u, w) = (
        unknown.outcome.clone().unwrap_err(),
        wrong.outcome.clone().unwrap_err(),
    );
    assert_eq!(u, w);
    assert_eq!(u.to_string(), w.to_string());
    assert_eq!(
        u.to_string(),
        "wrong user name or secret (4 attempts left before lockout)"
    );
    // The log tells them apart for the auditor.
    assert_eq!(failure_reasons(&unknown), vec![LoginFailure::UnknownUser]);
    assert_eq!(failure_reasons(&wrong), vec![LoginFailure::WrongSecret]);
    assert_eq!(unknown.login, LoginState::default());
}

#[test]
fn repeated_failures_count_down_lock_and_flag() {
    let mut acc = cashier();
    let mut seen = Vec::new();
    let mut anomalies = Vec::new();
    let mut locks = Vec::new();
    for i in 0..5u64 {
        let d = login(Some(&acc), &attempt("anna", "1111", None, NOW + i));
        let LoginRefusal::UnknownOrWrong { attempts_left } = d.outcome.clone().unwrap_err() else {
            panic!("expected UnknownOrWrong")
        };
        seen.push(attempts_left.unwrap());
        for e in &d.events {
            match e {
                SecurityEvent::Anomaly(a) => anomalies.push((i, a.flag.clone())),
                SecurityEvent::UserLocked(l) => locks.push(l.until_ms),
                _ => {}
            }
        }
        acc.login = d.login;
    }
    assert_eq!(seen, vec![4, 3, 2, 1, 0]);
    assert_eq!(
        anomalies,
        vec![(2, AnomalyFlag::RepeatedPinFailures { count: 3 })]
    );
    assert_eq!(locks, vec![Some(NOW + 4 + 30_000)]);

    // Now locked: even the right PIN is refused, without counting, and the time is given.
    let d = login(Some(&acc), &attempt("anna", PIN, None, NOW + 10));
    assert_eq!(
        d.outcome.clone().unwrap_err(),
        LoginRefusal::Locked(Locked::Until(NOW + 4 + 30_000))
    );
    assert_eq!(
        d.outcome.clone().unwrap_err().until_ms(),
        Some(NOW + 4 + 30_000)
    );
    assert_eq!(
        failure_reasons(&login(Some(&acc), &attempt("anna", PIN, None, NOW + 10))),
        vec![LoginFailure::Locked]
    );
    assert_eq!(d.login, acc.login);

    // After the cool-down the right PIN works and resets the count.
    let d = login(Some(&acc), &attempt("anna", PIN, None, NOW + 4 + 30_000));
    assert!(d.outcome.is_ok());
    assert_eq!(d.login, LoginState::default());
}

#[test]
fn a_password_account_raises_no_pin_anomaly() {
    let mut acc = Account {
        credentials: vec![cred(CredentialKind::Password, password_hash())],
        ..cashier()
    };
    for i in 0..4 {
        let d = login(Some(&acc), &attempt("anna", "wrong-one-xx", None, NOW + i));
        assert!(!d
            .events
            .iter()
            .any(|e| matches!(e, SecurityEvent::Anomaly(_))));
        acc.login = d.login;
    }
}

#[test]
fn manual_lock_inactive_must_change_and_too_old() {
    let locked = Account {
        login: LoginState::default().lock_manually(),
        ..cashier()
    };
    let d = login(Some(&locked), &attempt("anna", PIN, None, NOW));
    assert_eq!(
        d.outcome.clone().unwrap_err(),
        LoginRefusal::Locked(Locked::Manually)
    );

    let inactive = Account {
        active: false,
        ..cashier()
    };
    let d = login(Some(&inactive), &attempt("anna", PIN, None, NOW));
    assert_eq!(d.outcome.clone().unwrap_err(), LoginRefusal::Inactive);
    assert_eq!(failure_reasons(&d), vec![LoginFailure::Inactive]);

    let mut must_change = cashier();
    must_change.credentials[0].must_change = true;
    let d = login(Some(&must_change), &attempt("anna", PIN, None, NOW));
    assert_eq!(
        d.outcome.clone().unwrap_err(),
        LoginRefusal::MustChangeSecret
    );
    assert_eq!(failure_reasons(&d), vec![LoginFailure::MustChangeSecret]);
    assert_eq!(d.login, LoginState::default(), "not a failure");
    // ...but a wrong secret on such an account is still just wrong.
    let d = login(Some(&must_change), &attempt("anna", "1111", None, NOW));
    assert!(matches!(
        d.outcome,
        Err(LoginRefusal::UnknownOrWrong { .. })
    ));

    let policy = LoginPolicy {
        credential_max_age_ms: Some(1000),
        ..LoginPolicy::default()
    };
    let d = decide_login(
        Some(&cashier()),
        &attempt("anna", PIN, None, NOW + 1000),
        &policy,
    );
    assert!(d.outcome.is_ok());
    let d = decide_login(
        Some(&cashier()),
        &attempt("anna", PIN, None, NOW + 1001),
        &policy,
    );
    assert_eq!(
        d.outcome.clone().unwrap_err(),
        LoginRefusal::CredentialsTooOld
    );
    assert_eq!(failure_reasons(&d), vec![LoginFailure::CredentialsTooOld]);
}

#[test]
fn the_second_factor() {
    let acc = admin_with_totp();
    let secret = totp_secret();
    let unix = NOW / 1000;
    let code = totp_code(&secret, unix);

    // No code: refused, but not a failure.
    let d = login(Some(&acc), &attempt("root-anna", PASSWORD, None, NOW));
    assert_eq!(d.outcome.clone().unwrap_err(), LoginRefusal::MfaRequired);
    assert_eq!(failure_reasons(&d), vec![LoginFailure::MfaRequired]);
    assert_eq!(d.login, LoginState::default());
    let d = login(Some(&acc), &attempt("root-anna", PASSWORD, Some("  "), NOW));
    assert_eq!(d.outcome.clone().unwrap_err(), LoginRefusal::MfaRequired);

    // Wrong code: a failure that counts.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let d = login(
        Some(&acc),
        &attempt("root-anna", PASSWORD, Some(wrong), NOW),
    );
    assert_eq!(d.outcome.clone().unwrap_err(), LoginRefusal::WrongMfaCode);
    assert_eq!(failure_reasons(&d), vec![LoginFailure::WrongMfaCode]);
    assert_eq!(d.login.failures, 1);

    // Right code: in, with the step to remember.
    let d = login(
        Some(&acc),
        &attempt("root-anna", PASSWORD, Some(&code), NOW),
    );
    let ok = d.outcome.unwrap();
    assert_eq!(ok.method, CredentialKind::Password);
    assert_eq!(ok.totp_step, Some(unix / 30));

    // The same code again: refused as wrong, logged as a replay, counted.
    let used = Account {
        last_totp_step: ok.totp_step,
        ..acc.clone()
    };
    let d = login(
        Some(&used),
        &attempt("root-anna", PASSWORD, Some(&code), NOW + 1000),
    );
    assert_eq!(d.outcome.clone().unwrap_err(), LoginRefusal::WrongMfaCode);
    assert_eq!(failure_reasons(&d), vec![LoginFailure::ReplayedMfaCode]);
    assert_eq!(d.login.failures, 1);

    // The right code with the wrong password gives nothing away about the code.
    let d = login(
        Some(&acc),
        &attempt("root-anna", "not-the-password", Some(&code), NOW),
    );
    assert!(matches!(
        d.outcome,
        Err(LoginRefusal::UnknownOrWrong { .. })
    ));
}

#[test]
fn mfa_required_without_an_enrolled_secret_refuses_every_code() {
    let acc = Account {
        credentials: vec![cred(CredentialKind::Password, password_hash())],
        ..admin_with_totp()
    };
    for code in [None, Some("123456")] {
        let d = login(Some(&acc), &attempt("root-anna", PASSWORD, code, NOW));
        assert_eq!(d.outcome.clone().unwrap_err(), LoginRefusal::MfaRequired);
    }
}

#[test]
fn store_facing_helpers() {
    let acc = cashier();
    // A PIN login records no step, and the field is absent from the JSON.
    let d = login(Some(&acc), &attempt("anna", PIN, None, NOW));
    let p = d.events[0].payload();
    assert_eq!(p.body.get("totp_step"), None);
    assert_eq!(events::totp_step(p.kind, &p.body), None);
    // Older payloads without the field still parse (it defaults to None).
    let old: pos_auth::LoginSucceeded = serde_json::from_value(serde_json::json!({
        "user": acc.user, "method": "pin"
    }))
    .unwrap();
    assert_eq!(old.totp_step, None);
    // Unknown-user failures are about nobody; approvals are about the requester.
    let d = login(None, &attempt("ghost", PIN, None, NOW));
    let p = d.events[0].payload();
    assert_eq!(events::subject_user(p.kind, &p.body), None);
    let approval = SecurityEvent::ApprovalUsed(pos_auth::ApprovalUsed {
        requester: uid(5),
        approver: uid(6),
        permission: pos_auth::Permission::Refund,
    })
    .payload();
    assert_eq!(approval.kind, "approval_used");
    assert_eq!(
        events::subject_user(approval.kind, &approval.body),
        Some(uid(5))
    );
    // Every variant names its kind and round-trips its payload.
    let all = [
        SecurityEvent::UserUnlocked(UserUnlocked { user: uid(1) }),
        SecurityEvent::ForcedLogout(pos_auth::ForcedLogout { user: uid(1) }),
        SecurityEvent::PermissionDenied(pos_auth::PermissionDenied::new(
            uid(1),
            pos_auth::Permission::Refund,
            &pos_auth::Denial::SelfApproval,
        )),
        SecurityEvent::DataExported(pos_auth::DataExported {
            what: "sales".into(),
            destination: "usb".into(),
        }),
    ];
    let kinds: Vec<_> = all.iter().map(SecurityEvent::kind).collect();
    assert_eq!(
        kinds,
        [
            "user_unlocked",
            "forced_logout",
            "permission_denied",
            "export"
        ]
    );
    for e in &all {
        assert_eq!(e.module(), "security");
        assert!(e.to_payload().is_object());
    }
}

#[test]
fn logged_names_are_sanitised() {
    let name = format!("evil\n{}", "x".repeat(500));
    let d = login(None, &attempt(&name, PIN, None, NOW));
    let SecurityEvent::LoginFailed(f) = &d.events[0] else {
        panic!()
    };
    assert!(!f.name.contains('\n'));
    assert_eq!(f.name.chars().count(), 64);
}

#[test]
fn manager_lock_and_unlock_events_replay() {
    let acc = cashier();
    let locked = next_login_state(
        acc.login,
        UserLocked::KIND,
        &serde_json::to_value(UserLocked {
            user: acc.user,
            until_ms: None,
        })
        .unwrap(),
    );
    assert_eq!(locked.check(u64::MAX), Err(Locked::Manually));
    let unlocked = next_login_state(
        locked,
        UserUnlocked::KIND,
        &serde_json::to_value(UserUnlocked { user: acc.user }).unwrap(),
    );
    assert_eq!(unlocked, LoginState::default());
    // Unrelated or unreadable events change nothing.
    for (kind, payload) in [
        ("forced_logout", serde_json::json!({})),
        ("login_failed", serde_json::json!({"reason": "bogus"})),
        ("login_failed", serde_json::json!(null)),
        ("user_locked", serde_json::json!({"until_ms": "soon"})),
    ] {
        assert_eq!(next_login_state(locked, kind, &payload), locked);
    }
}

#[derive(Debug, Clone)]
enum Code {
    Missing,
    Right,
    Wrong,
}

#[derive(Debug, Clone)]
enum Op {
    Attempt {
        right: bool,
        code: Code,
        advance_ms: u64,
    },
    ManagerLock,
    ManagerUnlock,
}

fn op() -> impl Strategy<Value = Op> {
    let advance = prop_oneof![
        Just(0u64),
        Just(1_000),
        Just(31_000),
        Just(200_000),
        Just(1_000_000)
    ];
    let code = prop_oneof![Just(Code::Missing), Just(Code::Right), Just(Code::Wrong)];
    prop_oneof![
        8 => (any::<bool>(), code, advance).prop_map(|(right, code, advance_ms)| Op::Attempt { right, code, advance_ms }),
        1 => Just(Op::ManagerLock),
        1 => Just(Op::ManagerUnlock),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The store rebuilds the login state by replaying events; whatever happened, that replay
    /// (of one decision, and of the whole history) equals the state decide_login reached.
    #[test]
    fn replaying_the_events_gives_the_decided_state(
        ops in proptest::collection::vec(op(), 1..14),
        mfa in any::<bool>(),
    ) {
        let policy = LoginPolicy::default();
        let mut acc = if mfa { admin_with_totp() } else { cashier() };
        let secret = totp_secret();
        let mut history: Vec<(String, serde_json::Value)> = Vec::new();
        let mut now = NOW;
        for op in ops {
            match op {
                Op::Attempt { right, code, advance_ms } => {
                    now += advance_ms;
                    let good = totp_code(&secret, now / 1000);
                    let code = match code {
                        Code::Missing => None,
                        Code::Right => Some(good.clone()),
                        Code::Wrong => Some(if good == "000000" { "111111".into() } else { "000000".to_string() }),
                    };
                    let pw = match (mfa, right) {
                        (true, true) => PASSWORD,
                        (false, true) => PIN,
                        (_, false) => "nope-nope",
                    };
                    let d = decide_login(Some(&acc), &attempt(&acc.name.clone(), pw, code.as_deref(), now), &policy);
                    prop_assert_eq!(replay(acc.login, &d), d.login);
                    let via_apply = d.events.iter().fold(acc.login, apply_security_event);
                    prop_assert_eq!(via_apply, d.login);
                    if let Ok(ok) = &d.outcome {
                        prop_assert!(acc.login.check(now).is_ok());
                        prop_assert_eq!(d.login, acc.login.after_success());
                        if ok.totp_step.is_some() { acc.last_totp_step = ok.totp_step; }
                    }
                    if acc.login.check(now).is_err() {
                        prop_assert!(matches!(d.outcome, Err(LoginRefusal::Locked(_))));
                        prop_assert_eq!(d.login, acc.login);
                    }
                    history.extend(d.events.iter().map(|e| (e.kind().to_owned(), e.to_payload())));
                    acc.login = d.login;
                }
                Op::ManagerLock => {
                    history.push((UserLocked::KIND.into(), serde_json::to_value(UserLocked { user: acc.user, until_ms: None }).unwrap()));
                    acc.login = acc.login.lock_manually();
                }
                Op::ManagerUnlock => {
                    history.push((UserUnlocked::KIND.into(), serde_json::to_value(UserUnlocked { user: acc.user }).unwrap()));
                    acc.login = acc.login.unlock();
                }
            }
            let rebuilt = history.iter().fold(LoginState::default(), |s, (k, p)| {
                next_login_state(s, k, p)
            });
            prop_assert_eq!(rebuilt, acc.login);
        }
    }

    /// No refusal text, Debug output or event payload ever contains the secret (or a near miss
    /// of it), whatever path the login takes.
    #[test]
    fn the_secret_never_leaks(secret in "[A-Za-z0-9!#%&*é€]{8,24}", mfa in any::<bool>()) {
        let hash = hash_secret(&secret).unwrap();
        let near_miss = format!("{secret}x");
        let base = Account {
            name: "anna".into(),
            credentials: vec![cred(CredentialKind::Password, &hash)],
            mfa_required: mfa,
            ..cashier()
        };
        let mut must_change = base.clone();
        must_change.credentials[0].must_change = true;
        let locked = Account { login: LoginState::default().lock_manually(), ..base.clone() };
        let nearly_locked = Account { login: LoginState { failures: 4, ..LoginState::default() }, ..base.clone() };
        let cases: Vec<(Option<&Account>, &str)> = vec![
            (None, &secret),
            (Some(&base), &secret),
            (Some(&base), &near_miss),
            (Some(&must_change), &secret),
            (Some(&locked), &secret),
            (Some(&nearly_locked), &near_miss),
        ];
        for (acc, typed) in cases {
            let a = attempt("anna", typed, Some("123456"), NOW);
            let d = decide_login(acc, &a, &LoginPolicy::default());
            let mut haystack = format!("{d:?} {a:?} {acc:?}");
            if let Err(r) = &d.outcome {
                haystack.push_str(&format!(" {r} {r:?}"));
            }
            for e in &d.events {
                haystack.push_str(&e.to_payload().to_string());
            }
            prop_assert!(!haystack.contains(&secret), "secret leaked: {}", haystack);
            prop_assert!(!haystack.contains("123456"), "code leaked: {}", haystack);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_input_is_handled_without_panic(
        name in any::<String>(),
        secret in prop_oneof![any::<String>(), Just("x".repeat(100_000))],
        code in any::<Option<String>>(),
        now in any::<u64>(),
        known in any::<bool>(),
    ) {
        let acc = admin_with_totp();
        let a = LoginAttempt { name: &name, secret: &secret, totp_code: code.as_deref(), now_ms: now, unix_s: now / 1000 };
        let d = decide_login(known.then_some(&acc), &a, &LoginPolicy::default());
        prop_assert!(d.outcome.is_err());
    }
}

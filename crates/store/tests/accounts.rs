//! Accounts through the store: first-admin bootstrap, forced change of the one-time secret, TOTP
//! enrolment and replay protection, PIN policy, lockout that survives a restart and a rebuild,
//! who may unlock whom, separation of duties on roles, rebuild == live, and no secret in any
//! log line, error, event or database byte.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use pos_auth::{
    check_pin, totp_code, BuiltinRole, CredentialError, CredentialKind, Denial, Locked,
    LoginRefusal, Permission, Principal, TotpSecret,
};
use pos_core::{DeviceRole, UserId};
use pos_store::{now_ms, AccountError, AccountPolicy, LogFilter, Store, StoreOptions, DB_FILE};

fn tempdir() -> tempfile::TempDir {
    match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

fn hub(dir: &Path) -> Store {
    Store::init(dir, DeviceRole::Hub, "main", "hub", false)
        .unwrap()
        .0
}

/// The default rules, with timed locks long enough that none expires while a test runs (the
/// number of failures that locks stays the default).
fn policy() -> AccountPolicy {
    let mut p = AccountPolicy::default();
    p.login.lockout.base_backoff_ms = 3_600_000;
    p.login.lockout.max_backoff_ms = 3_600_000;
    p
}

const ADMIN_PASSWORD: &str = "Tangerine-Velvet-Harbor-93";
const ALICE_PIN: &str = "48151623";
const BOB_PIN: &str = "26048173";

fn unix_s() -> u64 {
    now_ms() / 1000
}

fn principal(store: &Store, user: UserId) -> Principal {
    store.principal(user).unwrap().unwrap()
}

/// Bootstrap the first admin and replace the one-time password; returns the admin and the TOTP
/// secret enrolled on the way.
fn admin(store: &mut Store, p: &AccountPolicy) -> (UserId, TotpSecret) {
    let (admin, one_time) = store.bootstrap_admin("admin").unwrap();
    let totp = store
        .change_secret("admin", &one_time, ADMIN_PASSWORD, None, p)
        .unwrap()
        .expect("an admin enrols TOTP with the first password change");
    (admin, totp)
}

/// A user created by `actor`, whose one-time secret was then changed to `secret`.
fn user(
    store: &mut Store,
    actor: &Principal,
    name: &str,
    role: &str,
    secret: &str,
    p: &AccountPolicy,
) -> UserId {
    let (id, one_time) = store
        .add_user(actor, name, name, &[role.to_owned()])
        .unwrap();
    assert!(store
        .change_secret(name, &one_time, secret, None, p)
        .unwrap()
        .is_none());
    id
}

/// Payloads of the recorded events of `kind` (`module.kind`), oldest first.
fn payloads(store: &Store, kind: &str) -> Vec<serde_json::Value> {
    store
        .events(&LogFilter {
            kind: Some(kind.into()),
            ..LogFilter::default()
        })
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect()
}

fn login(
    store: &mut Store,
    name: &str,
    secret: &str,
    code: Option<&str>,
    p: &AccountPolicy,
) -> Result<pos_auth::LoginOk, LoginRefusal> {
    store.login(name, secret, code, p).unwrap()
}

#[test]
fn default_policy_requires_totp_for_admins_and_technicians() {
    let p = AccountPolicy::default();
    for role in BuiltinRole::ALL {
        assert_eq!(
            p.mfa_roles.contains(&role),
            role.mfa_required_by_default(),
            "{role}"
        );
    }
    assert_eq!(p.login.lockout.max_failures, 5);
}

#[test]
fn the_first_admin_is_bootstrapped_once() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    assert!(!store.has_users().unwrap());
    let (admin, one_time) = store.bootstrap_admin("admin").unwrap();
    assert_eq!(one_time.chars().count(), 16);

    let users = store.users().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].user, admin);
    assert_eq!(users[0].name, "admin");
    assert_eq!(users[0].roles, vec!["admin".to_owned()]);
    assert_eq!(users[0].credentials, vec![CredentialKind::Password]);
    assert!(users[0].must_change);
    assert!(principal(&store, admin).has_role(BuiltinRole::Admin));

    let err = store.bootstrap_admin("root").unwrap_err();
    assert!(matches!(err, AccountError::AlreadyBootstrapped), "{err:?}");
    // Not even after a restart, and not under the same name.
    drop(store);
    let mut store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let err = store.bootstrap_admin("admin").unwrap_err();
    assert!(matches!(err, AccountError::AlreadyBootstrapped), "{err:?}");
    assert_eq!(store.users().unwrap().len(), 1);
    assert_eq!(payloads(&store, "user.created").len(), 1);
}

#[test]
fn admin_changes_the_one_time_password_enrols_totp_and_codes_cannot_be_replayed() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let (admin, one_time) = store.bootstrap_admin("admin").unwrap();

    assert_eq!(
        login(&mut store, "admin", &one_time, None, &p),
        Err(LoginRefusal::MustChangeSecret)
    );
    // An --as command cannot use the one-time password either.
    let err = store
        .authenticate("admin", &one_time, None, &p)
        .unwrap_err();
    assert!(
        matches!(err, AccountError::Login(LoginRefusal::MustChangeSecret)),
        "{err:?}"
    );

    let totp = store
        .change_secret("admin", &one_time, ADMIN_PASSWORD, None, &p)
        .unwrap()
        .expect("admins need a second factor: one is enrolled");
    let users = store.users().unwrap();
    assert!(!users[0].must_change);
    assert_eq!(
        users[0]
            .credentials
            .iter()
            .filter(|k| **k == CredentialKind::Totp)
            .count(),
        1
    );

    // The one-time password is gone; the new one needs the code.
    assert!(matches!(
        login(&mut store, "admin", &one_time, None, &p),
        Err(LoginRefusal::UnknownOrWrong { .. })
    ));
    assert_eq!(
        login(&mut store, "admin", ADMIN_PASSWORD, None, &p),
        Err(LoginRefusal::MfaRequired)
    );

    let code = totp_code(&totp, unix_s());
    let ok = login(&mut store, "admin", ADMIN_PASSWORD, Some(&code), &p).unwrap();
    assert_eq!(ok.user, admin);
    assert_eq!(ok.method, CredentialKind::Password);
    let step = ok.totp_step.expect("the step used is recorded");
    assert!(step.abs_diff(unix_s() / 30) <= 1);

    // Replay of the same code: refused, and recorded as a replay.
    assert_eq!(
        login(&mut store, "admin", ADMIN_PASSWORD, Some(&code), &p),
        Err(LoginRefusal::WrongMfaCode)
    );
    let failed = payloads(&store, "security.login_failed");
    assert_eq!(failed.last().unwrap()["reason"], "replayed_mfa_code");
    // ... also after a rebuild and a restart: the used step lives in the log.
    store.rebuild().unwrap();
    drop(store);
    let mut store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(
        login(&mut store, "admin", ADMIN_PASSWORD, Some(&code), &p),
        Err(LoginRefusal::WrongMfaCode)
    );
    let succeeded = payloads(&store, "security.login_succeeded");
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0]["totp_step"], step);
}

#[test]
fn a_cashier_gets_a_one_time_pin_and_must_choose_a_good_new_one() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let (admin, totp) = admin(&mut store, &p);
    let code = totp_code(&totp, unix_s());
    let actor = store
        .authenticate("admin", ADMIN_PASSWORD, Some(&code), &p)
        .unwrap();
    assert_eq!(actor.user, admin);

    let (alice, pin) = store
        .add_user(&actor, "alice", "Alice A.", &["cashier".to_owned()])
        .unwrap();
    assert_eq!(pin.len(), 6, "a 6-digit one-time PIN");
    assert!(pin.bytes().all(|b| b.is_ascii_digit()), "{pin:?}");
    assert_eq!(check_pin(&pin), Ok(()));
    let summary = store
        .users()
        .unwrap()
        .into_iter()
        .find(|u| u.name == "alice")
        .unwrap();
    assert_eq!(summary.user, alice);
    assert_eq!(summary.display_name, "Alice A.");
    assert_eq!(summary.roles, vec!["cashier".to_owned()]);
    assert_eq!(summary.credentials, vec![CredentialKind::Pin]);
    assert!(summary.must_change);
    let created = payloads(&store, "user.created");
    assert_eq!(created.len(), 2);

    assert_eq!(
        login(&mut store, "alice", &pin, None, &p),
        Err(LoginRefusal::MustChangeSecret)
    );
    // Weak, malformed and reused PINs are refused and change nothing.
    for (new, expected) in [
        ("1234", CredentialError::PinTooSimple),
        ("0000", CredentialError::PinTooSimple),
        ("12a4", CredentialError::PinFormat),
        ("", CredentialError::Empty),
        (pin.as_str(), CredentialError::Reused),
    ] {
        let err = store
            .change_secret("alice", &pin, new, None, &p)
            .unwrap_err();
        match err {
            AccountError::Credential(e) => assert_eq!(e, expected, "{new:?}"),
            other => panic!("{new:?}: {other:?}"),
        }
    }
    assert_eq!(
        login(&mut store, "alice", &pin, None, &p),
        Err(LoginRefusal::MustChangeSecret)
    );

    // A cashier has no second factor to enrol.
    assert!(store
        .change_secret("alice", &pin, ALICE_PIN, None, &p)
        .unwrap()
        .is_none());
    let ok = login(&mut store, "alice", ALICE_PIN, None, &p).unwrap();
    assert_eq!(
        (ok.user, ok.method, ok.totp_step),
        (alice, CredentialKind::Pin, None)
    );
    assert!(matches!(
        login(&mut store, "alice", &pin, None, &p),
        Err(LoginRefusal::UnknownOrWrong { .. })
    ));
    // Neither the current PIN nor the one-time one may come back.
    for again in [ALICE_PIN, pin.as_str()] {
        let err = store
            .change_secret("alice", ALICE_PIN, again, None, &p)
            .unwrap_err();
        assert!(
            matches!(err, AccountError::Credential(CredentialError::Reused)),
            "{err:?}"
        );
    }
    assert!(!store.users().unwrap().iter().any(|u| u.must_change));
}

#[test]
fn lockout_holds_across_restart_and_rebuild_until_an_admin_unlocks() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let max = p.login.lockout.max_failures;
    let (admin, _) = admin(&mut store, &p);
    let admin_p = principal(&store, admin);
    let bob = user(&mut store, &admin_p, "bob", "cashier", BOB_PIN, &p);
    let mgr = user(
        &mut store,
        &admin_p,
        "mgr",
        "manager",
        "Copper-Kettle-Meadow-58",
        &p,
    );

    for i in 1..=max {
        assert_eq!(
            login(&mut store, "bob", "97531864", None, &p),
            Err(LoginRefusal::UnknownOrWrong {
                attempts_left: Some(max - i)
            }),
            "wrong guess {i}"
        );
    }
    let locked = |store: &mut Store| match login(store, "bob", BOB_PIN, None, &p) {
        Err(LoginRefusal::Locked(Locked::Until(until))) => until,
        other => panic!("bob should be locked: {other:?}"),
    };
    let until = locked(&mut store);
    assert!(until > now_ms());
    let locks = payloads(&store, "security.user_locked");
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0]["user"], bob.to_string());
    assert_eq!(locks[0]["until_ms"], until);
    // Guesses while locked are not even checked, and do not extend the lock.
    assert_eq!(
        login(&mut store, "bob", "97531864", None, &p),
        Err(LoginRefusal::Locked(Locked::Until(until)))
    );

    // Survives a restart and a rebuild.
    drop(store);
    let mut store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(locked(&mut store), until);
    store.rebuild().unwrap();
    assert_eq!(locked(&mut store), until);
    let summary = store
        .users()
        .unwrap()
        .into_iter()
        .find(|u| u.name == "bob")
        .unwrap();
    assert_eq!(summary.locked, Some(Locked::Until(until)));

    // Not by bob himself, not by a manager on himself, not by a manager on an admin.
    let bob_p = principal(&store, bob);
    let mgr_p = principal(&store, mgr);
    let denied_before = payloads(&store, "security.permission_denied").len();
    let err = store.set_locked(&bob_p, "bob", false, &p).unwrap_err();
    assert!(
        matches!(
            err,
            AccountError::Denied(Denial::MissingPermission(Permission::UserAdmin))
        ),
        "{err:?}"
    );
    assert_eq!(locked(&mut store), until);
    let err = store.set_locked(&mgr_p, "mgr", false, &p).unwrap_err();
    assert!(
        matches!(err, AccountError::Denied(Denial::SelfGrant)),
        "{err:?}"
    );
    for attempt in 0..3 {
        let err = match attempt {
            0 => store.set_locked(&mgr_p, "admin", false, &p).unwrap_err(),
            1 => store.set_locked(&mgr_p, "admin", true, &p).unwrap_err(),
            _ => store.reset_secret(&mgr_p, "admin", &p).unwrap_err(),
        };
        assert!(
            matches!(err, AccountError::Denied(Denial::EscalationForbidden)),
            "{attempt}: {err:?}"
        );
    }
    let denied = payloads(&store, "security.permission_denied");
    assert_eq!(denied.len(), denied_before + 5);
    let by_mgr: Vec<&serde_json::Value> = denied
        .iter()
        .filter(|d| d["user"] == mgr.to_string())
        .collect();
    assert_eq!(by_mgr.len(), 4);
    assert!(by_mgr.iter().all(|d| d["permission"] == "user_admin"));
    assert_eq!(
        by_mgr
            .iter()
            .map(|d| d["reason"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [
            "self_grant",
            "escalation_forbidden",
            "escalation_forbidden",
            "escalation_forbidden"
        ]
    );
    // The denied admin actions did nothing to the admin.
    let admin_summary = &store.users().unwrap()[0];
    assert_eq!(admin_summary.name, "admin");
    assert_eq!(admin_summary.locked, None);
    assert!(!admin_summary.must_change);

    // An admin unlocks bob: the right PIN works again, the failure count starts over.
    store.set_locked(&admin_p, "bob", false, &p).unwrap();
    assert_eq!(payloads(&store, "security.user_unlocked").len(), 1);
    assert_eq!(
        login(&mut store, "bob", BOB_PIN, None, &p).unwrap().user,
        bob
    );
    assert_eq!(
        login(&mut store, "bob", "97531864", None, &p),
        Err(LoginRefusal::UnknownOrWrong {
            attempts_left: Some(max - 1)
        })
    );

    // A manual lock holds whatever the secret, until someone unlocks it; a manager may do that
    // for a cashier.
    store.set_locked(&mgr_p, "bob", true, &p).unwrap();
    assert_eq!(
        login(&mut store, "bob", BOB_PIN, None, &p),
        Err(LoginRefusal::Locked(Locked::Manually))
    );
    store.rebuild().unwrap();
    assert_eq!(
        login(&mut store, "bob", BOB_PIN, None, &p),
        Err(LoginRefusal::Locked(Locked::Manually))
    );
    store.set_locked(&mgr_p, "bob", false, &p).unwrap();
    assert!(login(&mut store, "bob", BOB_PIN, None, &p).is_ok());
}

#[test]
fn roles_cannot_be_escalated_or_self_granted_through_the_store() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let (admin, _) = admin(&mut store, &p);
    let admin_p = principal(&store, admin);
    let mgr = user(
        &mut store,
        &admin_p,
        "mgr",
        "manager",
        "Copper-Kettle-Meadow-58",
        &p,
    );
    let mgr_p = principal(&store, mgr);
    let bob = user(&mut store, &mgr_p, "bob", "cashier", BOB_PIN, &p);
    let bob_p = principal(&store, bob);
    let roles = |store: &Store, name: &str| {
        store
            .users()
            .unwrap()
            .into_iter()
            .find(|u| u.name == name)
            .unwrap()
            .roles
    };
    let denied = |store: &Store| payloads(store, "security.permission_denied").len();

    type Attempt<'a> = Box<dyn Fn(&mut Store) -> AccountError + 'a>;
    let cases: Vec<(&str, Attempt<'_>, Denial)> = vec![
        (
            "manager grants admin",
            Box::new(|s| {
                s.change_roles(&mgr_p, "bob", &["admin".into()], &[], &p)
                    .unwrap_err()
            }),
            Denial::EscalationForbidden,
        ),
        (
            "manager grants technician",
            Box::new(|s| {
                s.change_roles(&mgr_p, "bob", &["technician".into()], &[], &p)
                    .unwrap_err()
            }),
            Denial::EscalationForbidden,
        ),
        (
            "manager creates an admin",
            Box::new(|s| {
                s.add_user(&mgr_p, "eve", "Eve", &["admin".into()])
                    .unwrap_err()
            }),
            Denial::EscalationForbidden,
        ),
        (
            "manager changes own roles",
            Box::new(|s| {
                s.change_roles(&mgr_p, "mgr", &["cashier".into()], &[], &p)
                    .unwrap_err()
            }),
            Denial::SelfGrant,
        ),
        (
            "admin changes own roles",
            Box::new(|s| {
                s.change_roles(&admin_p, "admin", &["manager".into()], &[], &p)
                    .unwrap_err()
            }),
            Denial::SelfGrant,
        ),
        (
            "admin drops own admin role",
            Box::new(|s| {
                s.change_roles(&admin_p, "admin", &[], &["admin".into()], &p)
                    .unwrap_err()
            }),
            Denial::SelfGrant,
        ),
        (
            "cashier grants manager",
            Box::new(|s| {
                s.change_roles(&bob_p, "bob", &["manager".into()], &[], &p)
                    .unwrap_err()
            }),
            Denial::MissingPermission(Permission::UserAdmin),
        ),
        (
            "cashier creates a user with a role",
            Box::new(|s| {
                s.add_user(&bob_p, "carol", "Carol", &["cashier".into()])
                    .unwrap_err()
            }),
            Denial::MissingPermission(Permission::UserAdmin),
        ),
        (
            "cashier creates a user without roles",
            Box::new(|s| s.add_user(&bob_p, "dave", "Dave", &[]).unwrap_err()),
            Denial::MissingPermission(Permission::UserAdmin),
        ),
    ];
    for (what, attempt, expected) in &cases {
        let before = denied(&store);
        match attempt(&mut store) {
            AccountError::Denied(d) => assert_eq!(&d, expected, "{what}"),
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(denied(&store), before + 1, "{what}: the denial is recorded");
    }
    assert_eq!(roles(&store, "bob"), ["cashier"]);
    assert_eq!(roles(&store, "mgr"), ["manager"]);
    assert_eq!(roles(&store, "admin"), ["admin"]);
    let names: Vec<String> = store.users().unwrap().into_iter().map(|u| u.name).collect();
    assert_eq!(names, ["admin", "bob", "mgr"]);
    assert!(payloads(&store, "user.roles_changed").is_empty());

    // What they may do goes through, with before/after in the log.
    let (before, after) = store
        .change_roles(&mgr_p, "bob", &["supervisor".into()], &[], &p)
        .unwrap();
    assert_eq!(
        (before, after),
        (
            vec!["cashier".into()],
            vec!["cashier".into(), "supervisor".into()]
        )
    );
    store
        .change_roles(&admin_p, "mgr", &["admin".into()], &["manager".into()], &p)
        .unwrap();
    assert_eq!(roles(&store, "mgr"), ["admin"]);
    let changed = payloads(&store, "user.roles_changed");
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[1]["before"], serde_json::json!(["manager"]));
    assert_eq!(changed[1]["after"], serde_json::json!(["admin"]));
}

#[test]
fn rebuild_gives_the_live_account_projections() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let (admin, totp) = admin(&mut store, &p);
    let code = totp_code(&totp, unix_s());
    let admin_p = store
        .authenticate("admin", ADMIN_PASSWORD, Some(&code), &p)
        .unwrap();
    assert_eq!(admin_p.user, admin);
    let _ = login(&mut store, "admin", ADMIN_PASSWORD, Some(&code), &p); // replayed
    let mgr = user(
        &mut store,
        &admin_p,
        "mgr",
        "manager",
        "Copper-Kettle-Meadow-58",
        &p,
    );
    let mgr_p = principal(&store, mgr);
    user(&mut store, &mgr_p, "bob", "cashier", BOB_PIN, &p);
    let (_, carol_pin) = store
        .add_user(&mgr_p, "carol", "Carol", &["supervisor".into()])
        .unwrap();
    for _ in 0..p.login.lockout.max_failures + 1 {
        let _ = login(&mut store, "bob", "97531864", None, &p);
    }
    let _ = login(&mut store, "nobody", "97531864", None, &p);
    let _ = login(&mut store, "carol", &carol_pin, None, &p);
    let _ = store.set_locked(&mgr_p, "admin", true, &p);
    store.set_locked(&mgr_p, "carol", true, &p).unwrap();
    store.set_locked(&admin_p, "bob", false, &p).unwrap();
    assert!(login(&mut store, "bob", BOB_PIN, None, &p).is_ok());
    store
        .change_roles(&mgr_p, "bob", &["supervisor".into()], &[], &p)
        .unwrap();
    let _ = store.change_roles(&mgr_p, "bob", &["admin".into()], &[], &p);
    let new_pin = store.reset_secret(&mgr_p, "bob", &p).unwrap();
    store
        .change_secret("bob", &new_pin, "73915026", None, &p)
        .unwrap();
    let _ = store.change_secret("mgr", "Copper-Kettle-Meadow-58", "password", None, &p);
    store
        .change_secret(
            "mgr",
            "Copper-Kettle-Meadow-58",
            "Saffron-Glacier-Tulip-27",
            None,
            &p,
        )
        .unwrap();

    let live = store.projection_dump().unwrap();
    let live_users = store.users().unwrap();
    for table in [
        "[user_accounts]",
        "[user_credentials]",
        "[user_secret_history]",
        "[security_login_state]",
    ] {
        assert!(live.contains(table), "{table}");
    }
    assert_eq!(live_users.len(), 4);
    assert_eq!(store.rebuild().unwrap(), store.head().0);
    assert_eq!(store.projection_dump().unwrap(), live);
    assert_eq!(store.users().unwrap(), live_users);
    assert!(store.verify().is_ok());
    drop(store);
    let mut store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.projection_dump().unwrap(), live);
    store.rebuild().unwrap();
    assert_eq!(store.projection_dump().unwrap(), live);
}

// ---------------------------------------------------------------------------------------------
// No secret anywhere.

/// Collects everything a tracing subscriber writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `secret` occurs in `haystack`. An all-digit secret counts only where it is not part of
/// a longer run of letters and digits: a PIN inside a timestamp or a hex hash is a coincidence,
/// a PIN standing alone (in quotes, after `=`, on its own) is a leak.
fn leaks(haystack: &[u8], secret: &str) -> bool {
    let needle = secret.as_bytes();
    assert!(!needle.is_empty());
    let numeric = needle.iter().all(u8::is_ascii_digit);
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .any(|(i, _)| {
            if !numeric {
                return true;
            }
            let before = i.checked_sub(1).map(|j| haystack[j]);
            let after = haystack.get(i + needle.len()).copied();
            !before.is_some_and(|b| b.is_ascii_alphanumeric())
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
        })
}

#[test]
fn leak_detector_finds_secrets_and_ignores_digit_runs() {
    assert!(leaks(b"x Tangerine-Velvet y", "Tangerine-Velvet"));
    assert!(leaks(br#"{"pin":"481516"}"#, "481516"));
    assert!(leaks(b"secret=481516\n", "481516"));
    assert!(leaks(b"481516", "481516"));
    assert!(!leaks(b"1735000481516123", "481516"));
    assert!(!leaks(b"ab481516cd", "481516"));
    assert!(!leaks(b"48151", "481516"));
}

#[test]
fn no_secret_in_logs_errors_events_or_database_bytes() {
    const WRONG_PASSWORD: &str = "Quokka-Lantern-Wrong-71";
    const COMMON_PASSWORD: &str = "Password123!";
    const WRONG_PIN: &str = "97531864";
    const CONTAINS_NAME: &str = "Admin-Tangerine-Velvet-93";

    let dir = tempdir();
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer({
            let capture = capture.clone();
            move || capture.clone()
        })
        .finish();

    // Every text the flow shows a person or a log: errors, refusals, Debug of what it returns.
    let mut texts: Vec<String> = Vec::new();
    let mut secrets: Vec<String> = vec![
        ADMIN_PASSWORD.into(),
        ALICE_PIN.into(),
        WRONG_PASSWORD.into(),
        COMMON_PASSWORD.into(),
        WRONG_PIN.into(),
        CONTAINS_NAME.into(),
    ];
    let (store_dump, events, open_wal) = tracing::subscriber::with_default(subscriber, || {
        let mut store = hub(dir.path());
        let p = policy();
        let (admin, one_time) = store.bootstrap_admin("admin").unwrap();
        secrets.push(one_time.clone());
        tracing::trace!("bootstrap done"); // the capture itself works at TRACE

        let note = |texts: &mut Vec<String>, r: &dyn std::fmt::Debug| texts.push(format!("{r:?}"));
        for (name, secret, code) in [
            ("admin", WRONG_PASSWORD, None),
            ("admin", one_time.as_str(), None),
            ("nobody", one_time.as_str(), None),
            ("admin", ADMIN_PASSWORD, None),
            ("admin", ADMIN_PASSWORD, Some(WRONG_PIN)),
        ] {
            let r = store.login(name, secret, code, &p).unwrap();
            let refusal = r.unwrap_err();
            texts.push(refusal.to_string());
            note(&mut texts, &refusal);
        }
        for (current, new) in [
            (one_time.as_str(), COMMON_PASSWORD),
            (WRONG_PASSWORD, ADMIN_PASSWORD),
            (one_time.as_str(), one_time.as_str()),
            (one_time.as_str(), CONTAINS_NAME),
        ] {
            let err = store
                .change_secret("admin", current, new, None, &p)
                .unwrap_err();
            texts.push(err.to_string());
            note(&mut texts, &err);
        }
        let totp = store
            .change_secret("admin", &one_time, ADMIN_PASSWORD, None, &p)
            .unwrap()
            .unwrap();
        note(&mut texts, &totp);
        let code = totp_code(&totp, unix_s());
        secrets.push(code.clone());
        let actor = store
            .authenticate("admin", ADMIN_PASSWORD, Some(&code), &p)
            .unwrap();
        note(&mut texts, &actor);
        let err = store
            .authenticate("admin", ADMIN_PASSWORD, Some(&code), &p)
            .unwrap_err();
        texts.push(err.to_string());
        note(&mut texts, &err);

        let (_, pin) = store
            .add_user(&actor, "alice", "Alice", &["cashier".into()])
            .unwrap();
        secrets.push(pin.clone());
        for new in ["1234", pin.as_str()] {
            let err = store
                .change_secret("alice", &pin, new, None, &p)
                .unwrap_err();
            texts.push(err.to_string());
            note(&mut texts, &err);
        }
        store
            .change_secret("alice", &pin, ALICE_PIN, None, &p)
            .unwrap();
        for _ in 0..p.login.lockout.max_failures + 1 {
            let refusal = store
                .login("alice", WRONG_PIN, None, &p)
                .unwrap()
                .unwrap_err();
            texts.push(refusal.to_string());
            note(&mut texts, &refusal);
        }
        let refusal = store
            .login("alice", ALICE_PIN, None, &p)
            .unwrap()
            .unwrap_err();
        assert!(matches!(refusal, LoginRefusal::Locked(_)), "{refusal:?}");
        texts.push(refusal.to_string());
        store.set_locked(&actor, "alice", false, &p).unwrap();
        let ok = store.login("alice", ALICE_PIN, None, &p).unwrap().unwrap();
        note(&mut texts, &ok);
        let reset = store.reset_secret(&actor, "alice", &p).unwrap();
        secrets.push(reset);
        note(&mut texts, &store.account("alice", &p).unwrap());
        note(&mut texts, &store.account("admin", &p).unwrap());
        note(&mut texts, &store.users().unwrap());
        note(&mut texts, &principal(&store, admin));
        store.checkpoint().unwrap();
        let dump = store.projection_dump().unwrap();
        let events = store.events(&LogFilter::default()).unwrap();
        // The WAL while the store is open (SQLite folds it into pos.db and deletes it on close).
        let wal = std::fs::read(dir.path().join(format!("{DB_FILE}-wal"))).unwrap_or_default();
        assert!(!wal.is_empty(), "the WAL holds the recent commits");
        drop(store);
        (dump, events, wal)
    });

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("bootstrap done"), "{log}");
    assert!(log.contains("initialised data dir"), "{log}");
    assert!(texts.len() > 20);
    assert!(events.len() > 30);
    assert!(
        store_dump.contains("$argon2id$"),
        "the store keeps verifiers"
    );

    let mut files = vec![("pos.db-wal while open".to_owned(), open_wal)];
    for name in [DB_FILE.to_owned(), format!("{DB_FILE}-wal")] {
        if let Ok(bytes) = std::fs::read(dir.path().join(&name)) {
            files.push((name, bytes));
        }
    }
    assert!(files.iter().any(|(n, b)| n == DB_FILE && b.len() > 4096));
    // The database really holds the account data that was searched.
    assert!(files.iter().any(|(_, b)| leaks(b, "$argon2id$v=19$")));

    for secret in &secrets {
        assert!(!leaks(log.as_bytes(), secret), "secret in the log:\n{log}");
        for t in &texts {
            assert!(!leaks(t.as_bytes(), secret), "secret in a message: {t}");
        }
        assert!(
            !leaks(store_dump.as_bytes(), secret),
            "secret in a projection"
        );
        for (name, bytes) in &files {
            assert!(!leaks(bytes, secret), "secret in the bytes of {name}");
        }
        for e in &events {
            let json: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
            let text = json.to_string();
            assert!(
                !leaks(text.as_bytes(), secret),
                "secret in {}.{}: {text}",
                e.module,
                e.kind
            );
            assert!(!leaks(&e.payload, secret));
            if let Some(reason) = &e.reason {
                assert!(!leaks(reason.as_bytes(), secret));
            }
        }
    }
}

#[test]
fn four_eyes_actions_pass_the_store_gate_only_with_a_second_person() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let (admin_id, _) = admin(&mut store, &p);
    let admin = principal(&store, admin_id);
    let alice = user(&mut store, &admin, "alice", "cashier", ALICE_PIN, &p);
    let bob = user(&mut store, &admin, "bob", "supervisor", BOB_PIN, &p);
    let (alice, bob) = (principal(&store, alice), principal(&store, bob));

    // A cashier sells directly; a refund needs the supervisor, and the approval is recorded.
    let sell = store.authorize(&alice, Permission::Sell, None).unwrap();
    assert_eq!(sell.approval, pos_auth::Approval::Direct);
    assert!(sell.audit.is_none());
    let refund = store
        .authorize(&alice, Permission::Refund, Some(&bob))
        .unwrap();
    assert_eq!(refund.approval, pos_auth::Approval::ApprovedBy(bob.user));
    store.append(vec![refund.audit.unwrap()]).unwrap();
    assert_eq!(payloads(&store, "security.approval_used").len(), 1);

    // The supervisor cannot approve his own refund, and an admin cannot sell.
    let denied_before = payloads(&store, "security.permission_denied").len();
    let err = store
        .authorize(&bob, Permission::Refund, Some(&bob))
        .unwrap_err();
    assert!(
        matches!(err, AccountError::Denied(Denial::SelfApproval)),
        "{err}"
    );
    let err = store.authorize(&admin, Permission::Sell, None).unwrap_err();
    assert!(
        matches!(err, AccountError::Denied(Denial::AdminsCannotTouchSales)),
        "{err}"
    );
    assert_eq!(
        payloads(&store, "security.permission_denied").len(),
        denied_before + 2
    );
}

#[test]
fn custom_roles_are_defined_by_user_admins_with_before_and_after() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let (admin_id, _) = admin(&mut store, &p);
    let admin = principal(&store, admin_id);
    let perms = [Permission::Sell, Permission::NoSaleDrawerOpen]
        .into_iter()
        .collect();
    let role = store.define_role(&admin, "senior-cashier", perms).unwrap();
    assert_eq!(store.custom_roles().unwrap(), vec![role.clone()]);
    let widened = [
        Permission::Sell,
        Permission::NoSaleDrawerOpen,
        Permission::CashInOut,
    ]
    .into_iter()
    .collect();
    store
        .define_role(&admin, "senior-cashier", widened)
        .unwrap();
    let defined = payloads(&store, "user.role_defined");
    assert_eq!(defined.len(), 2);
    assert_eq!(
        defined[1]["before"],
        serde_json::json!(["sell", "no_sale_drawer_open"])
    );
    // A cashier holding the custom role can use what it grants.
    let carol = user(
        &mut store,
        &admin,
        "carol",
        "senior-cashier",
        "Plum-Orchard-Lantern-57",
        &p,
    );
    let carol = principal(&store, carol);
    assert!(store.authorize(&carol, Permission::CashInOut, None).is_ok());
    let alice = user(&mut store, &admin, "alice", "cashier", ALICE_PIN, &p);
    let alice = principal(&store, alice);
    let err = store
        .define_role(
            &alice,
            "boss",
            [Permission::UserAdmin].into_iter().collect(),
        )
        .unwrap_err();
    assert!(matches!(err, AccountError::Denied(_)), "{err}");
}

#[test]
fn a_scanned_badge_logs_its_user_in_and_can_move_to_someone_else() {
    let dir = tempdir();
    let mut store = hub(dir.path());
    let p = policy();
    let (admin_id, _) = admin(&mut store, &p);
    let admin = principal(&store, admin_id);
    let alice = user(&mut store, &admin, "alice", "cashier", ALICE_PIN, &p);
    let bob = user(&mut store, &admin, "bob", "cashier", BOB_PIN, &p);
    const BADGE: &str = "EMP-0042-7781";

    store.set_badge(&admin, "alice", BADGE, &p).unwrap();
    let ok = store.login_badge(BADGE, &p).unwrap().unwrap();
    assert_eq!(ok.user, alice);
    assert_eq!(ok.method, CredentialKind::Badge);

    // An unknown badge is refused like a wrong secret, and logged as a failed attempt.
    let failures_before = payloads(&store, "security.login_failed").len();
    let refused = store.login_badge("EMP-9999-0000", &p).unwrap().unwrap_err();
    assert!(
        matches!(refused, LoginRefusal::UnknownOrWrong { .. }),
        "{refused:?}"
    );
    assert_eq!(
        payloads(&store, "security.login_failed").len(),
        failures_before + 1
    );

    // The badge moves to bob: it now logs bob in.
    store.set_badge(&admin, "bob", BADGE, &p).unwrap();
    assert_eq!(store.login_badge(BADGE, &p).unwrap().unwrap().user, bob);

    // Bad badges are refused; a cashier cannot hand out badges.
    assert!(matches!(
        store.set_badge(&admin, "alice", "ab", &p),
        Err(AccountError::Credential(_))
    ));
    let alice_p = principal(&store, alice);
    assert!(matches!(
        store.set_badge(&alice_p, "bob", "EMP-0001-0001", &p),
        Err(AccountError::Denied(_))
    ));
    // Neither the badge nor its plain hash-free form is in any payload.
    for kind in ["user.credential_set", "user.badge_assigned"] {
        for payload in payloads(&store, kind) {
            assert!(!payload.to_string().contains(BADGE), "{payload}");
        }
    }
    // Rebuild gives the same badge table.
    let live = store.projection_dump().unwrap();
    store.rebuild().unwrap();
    assert_eq!(store.projection_dump().unwrap(), live);
}

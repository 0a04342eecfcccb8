//! Idle lock, maximum age, forced logout.
#![allow(clippy::unwrap_used)]

mod common;

use common::uid;
use pos_auth::{SessionPolicy, SessionState, Sessions};

const T0: u64 = 1_700_000_000_000;

#[test]
fn idle_sessions_lock_and_activity_keeps_them_alive() {
    let policy = SessionPolicy::default();
    let mut s = Sessions::default();
    let id = s.open(uid(1), T0);
    assert_eq!(s.state(id, T0, &policy), SessionState::Active);
    // Activity every minute keeps it active well past the idle limit.
    for minute in 1..=10 {
        assert_eq!(s.touch(id, T0 + minute * 60_000), SessionState::Active);
    }
    let last = T0 + 10 * 60_000;
    assert_eq!(s.state(id, last + 119_999, &policy), SessionState::Active);
    assert_eq!(
        s.state(id, last + 120_000, &policy),
        SessionState::IdleLocked
    );
    // Touching a locked session does not revive it.
    assert_eq!(s.touch(id, last + 130_000), SessionState::IdleLocked);
    assert_eq!(
        s.state(id, last + 130_001, &policy),
        SessionState::IdleLocked
    );
    // Re-entering the secret (checked by the caller) resumes it.
    assert_eq!(s.resume(id, last + 140_000), SessionState::Active);
    assert_eq!(s.state(id, last + 140_001, &policy), SessionState::Active);
}

#[test]
fn sessions_expire_at_their_maximum_age_whatever_the_activity() {
    let policy = SessionPolicy::default();
    let mut s = Sessions::new(policy);
    let id = s.open(uid(1), T0);
    let mut now = T0;
    while now < T0 + policy.max_age_ms - 60_000 {
        now += 60_000;
        assert_eq!(s.touch(id, now), SessionState::Active);
    }
    assert_eq!(
        s.state(id, T0 + policy.max_age_ms, &policy),
        SessionState::Expired
    );
    assert_eq!(s.touch(id, T0 + policy.max_age_ms), SessionState::Expired);
    assert_eq!(s.resume(id, T0 + policy.max_age_ms), SessionState::Expired);
}

#[test]
fn force_logout_ends_every_session_of_the_user_only() {
    let policy = SessionPolicy::default();
    let mut s = Sessions::default();
    let a1 = s.open(uid(1), T0);
    let a2 = s.open(uid(1), T0 + 1);
    let b = s.open(uid(2), T0 + 2);
    assert_ne!(a1, a2);
    assert_eq!(s.force_logout(uid(1)), 2);
    assert_eq!(s.force_logout(uid(1)), 0, "already out");
    for id in [a1, a2] {
        assert_eq!(s.state(id, T0 + 10, &policy), SessionState::ForcedOut);
        assert_eq!(s.touch(id, T0 + 10), SessionState::ForcedOut);
        assert_eq!(s.resume(id, T0 + 10), SessionState::ForcedOut);
    }
    assert_eq!(s.state(b, T0 + 10, &policy), SessionState::Active);
    assert_eq!(s.user(b), Some(uid(2)));
    assert_eq!(s.prune(T0 + 10), 2);
    assert_eq!(s.len(), 1);
}

#[test]
fn closed_and_unknown_sessions_are_expired() {
    let policy = SessionPolicy::default();
    let mut s = Sessions::default();
    let id = s.open(uid(1), T0);
    s.close(id);
    assert_eq!(s.state(id, T0, &policy), SessionState::Expired);
    assert_eq!(s.touch(id, T0), SessionState::Expired);
    assert!(s.is_empty());
    // A clock that went backwards (HLC times never do, but be safe) does not panic or expire.
    let id = s.open(uid(1), T0);
    assert_eq!(s.state(id, 0, &policy), SessionState::Active);
}

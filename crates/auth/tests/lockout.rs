//! Lockout, backoff, unlock, and the clock set backwards.
#![allow(clippy::unwrap_used)]

use pos_auth::{Locked, LockoutPolicy, LoginState};
use pos_core::HlcClock;

const NOW: u64 = 1_700_000_000_000;

fn fail(mut s: LoginState, n: u32, now: u64, p: &LockoutPolicy) -> LoginState {
    for _ in 0..n {
        s = s.after_failure(now, p);
    }
    s
}

#[test]
fn max_failures_lock_for_the_base_backoff() {
    let p = LockoutPolicy::default();
    let s = fail(LoginState::default(), p.max_failures - 1, NOW, &p);
    assert_eq!(s.check(NOW), Ok(()));
    assert_eq!(s.attempts_left(&p), 1);
    let s = s.after_failure(NOW, &p);
    assert_eq!(s.check(NOW), Err(Locked::Until(NOW + 30_000)));
    assert_eq!(s.check(NOW + 29_999), Err(Locked::Until(NOW + 30_000)));
    assert_eq!(s.check(NOW + 30_000), Ok(()));
    assert_eq!(s.attempts_left(&p), 0);
}

#[test]
fn backoff_doubles_and_is_capped() {
    let p = LockoutPolicy::default();
    let mut s = fail(LoginState::default(), p.max_failures - 1, NOW, &p);
    let mut now = NOW;
    let mut lengths = Vec::new();
    for _ in 0..10 {
        s = s.after_failure(now, &p);
        let Err(Locked::Until(until)) = s.check(now) else {
            panic!("should be locked")
        };
        lengths.push(until - now);
        now = until; // the next failure comes right after the lock ends
    }
    assert_eq!(
        lengths,
        vec![
            30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 900_000, 900_000, 900_000, 900_000
        ]
    );
}

#[test]
fn extreme_values_do_not_panic() {
    let p = LockoutPolicy {
        max_failures: 0,
        base_backoff_ms: u64::MAX,
        max_backoff_ms: u64::MAX,
    };
    let s = LoginState {
        failures: u32::MAX,
        ..LoginState::default()
    };
    let s = s.after_failure(u64::MAX, &p);
    assert_eq!(s.failures, u32::MAX);
    assert_eq!(p.backoff_ms(u32::MAX), u64::MAX);
    assert_eq!(LockoutPolicy::default().backoff_ms(u32::MAX), 900_000);
}

#[test]
fn success_resets_failures() {
    let p = LockoutPolicy::default();
    let s = fail(LoginState::default(), 4, NOW, &p).after_success();
    assert_eq!(s, LoginState::default());
    // So four more failures do not lock.
    let s = fail(s, 4, NOW, &p);
    assert_eq!(s.check(NOW), Ok(()));
}

#[test]
fn a_manual_lock_holds_until_unlocked() {
    let p = LockoutPolicy::default();
    let s = LoginState::default().lock_manually();
    assert_eq!(s.check(NOW), Err(Locked::Manually));
    assert_eq!(s.check(u64::MAX), Err(Locked::Manually));
    // Waiting or failing more does not lift it.
    let s = fail(s, 20, NOW, &p);
    assert_eq!(s.check(u64::MAX), Err(Locked::Manually));
    let s = s.unlock();
    assert_eq!(s, LoginState::default());
    assert_eq!(s.check(NOW), Ok(()));
}

#[test]
fn unlock_lifts_a_timed_lock_and_the_count() {
    let p = LockoutPolicy::default();
    let s = fail(LoginState::default(), 5, NOW, &p);
    assert!(s.check(NOW).is_err());
    let s = s.unlock();
    assert_eq!(s.check(NOW), Ok(()));
    assert_eq!(s.failures, 0);
}

/// The lockout runs on HLC time: a wall clock set back an hour after a lockout leaves the HLC at
/// the highest time seen, so the lock still holds; it ends only once the wall clock really gets
/// past it again.
#[test]
fn setting_the_clock_back_does_not_shorten_a_lock() {
    let p = LockoutPolicy::default();
    let mut clock = HlcClock::default();
    let mut s = LoginState::default();
    for i in 0..p.max_failures {
        let now = clock.tick(NOW + u64::from(i)).wall_ms();
        s = s.after_failure(now, &p);
    }
    let until = NOW + u64::from(p.max_failures - 1) + p.base_backoff_ms;
    assert_eq!(s.check(clock.last().wall_ms()), Err(Locked::Until(until)));

    // Someone sets the wall clock back one hour, then waits well past the lock's length.
    let hour = 3_600_000;
    for wall in [NOW - hour, NOW - hour + 60_000, NOW - hour + 10 * 60_000] {
        let now = clock.tick(wall).wall_ms();
        assert!(now >= NOW, "the HLC never runs backwards");
        assert_eq!(s.check(now), Err(Locked::Until(until)), "wall {wall}");
    }
    // Once the wall clock is really past the lock, it ends.
    let now = clock.tick(until).wall_ms();
    assert_eq!(s.check(now), Ok(()));
}

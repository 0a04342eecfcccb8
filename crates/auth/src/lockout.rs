//! Lockout with exponential backoff after repeated login failures.
//!
//! All times (`now_ms`, `locked_until_ms`) are the device's hybrid-logical-clock wall
//! milliseconds ([`pos_core::Hlc::wall_ms`] of a fresh [`pos_core::HlcClock::tick`]), not the raw
//! wall clock. The HLC never runs backwards, so setting the wall clock back cannot shorten a
//! lockout: the HLC stays at the highest time it has seen until the wall clock catches up.

use serde::{Deserialize, Serialize};

/// When to lock and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account (5).
    pub max_failures: u32,
    /// First lock's length (30 s); each further failure doubles it.
    pub base_backoff_ms: u64,
    /// Longest automatic lock (15 min): long enough to make guessing a 6-digit PIN take years,
    /// short enough that a cashier who fat-fingers is back at the till without a manager.
    pub max_backoff_ms: u64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            base_backoff_ms: 30_000,
            max_backoff_ms: 900_000,
        }
    }
}

impl LockoutPolicy {
    /// Lock length after `failures` consecutive failures; 0 below the threshold.
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        let max = self.max_failures.max(1);
        if failures < max {
            return 0;
        }
        let doublings = failures - max;
        let factor = 1u64.checked_shl(doublings).unwrap_or(u64::MAX);
        self.base_backoff_ms
            .saturating_mul(factor)
            .min(self.max_backoff_ms)
    }
}

/// An account's login state, derived from its security events (see
/// [`crate::login::next_login_state`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// Consecutive failures since the last success or unlock.
    pub failures: u32,
    /// HLC ms until which logins are refused; 0 = not locked.
    pub locked_until_ms: u64,
    /// Locked by a manager: only an unlock lifts it.
    pub manual_lock: bool,
}

/// Why logins are refused right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locked {
    Manually,
    /// Until this HLC wall time in ms.
    Until(u64),
}

impl LoginState {
    pub fn check(&self, now_ms: u64) -> Result<(), Locked> {
        if self.manual_lock {
            Err(Locked::Manually)
        } else if self.locked_until_ms > now_ms {
            Err(Locked::Until(self.locked_until_ms))
        } else {
            Ok(())
        }
    }

    /// One more failure; from `max_failures` on, lock for `base * 2^(failures - max)`, capped.
    /// Failures are not forgotten when a lock expires, so the next failure locks again, longer.
    pub fn after_failure(self, now_ms: u64, p: &LockoutPolicy) -> LoginState {
        let failures = self.failures.saturating_add(1);
        let backoff = p.backoff_ms(failures);
        let locked_until_ms = if backoff > 0 {
            self.locked_until_ms.max(now_ms.saturating_add(backoff))
        } else {
            self.locked_until_ms
        };
        LoginState {
            failures,
            locked_until_ms,
            ..self
        }
    }

    pub fn after_success(self) -> LoginState {
        LoginState {
            failures: 0,
            locked_until_ms: 0,
            ..self
        }
    }

    pub fn lock_manually(self) -> Self {
        LoginState {
            manual_lock: true,
            ..self
        }
    }

    /// A manager's unlock: clears the manual lock, the timed lock and the failure count.
    pub fn unlock(self) -> Self {
        LoginState::default()
    }

    /// Failures left before the next lock (0 when the next failure locks or extends a lock).
    pub fn attempts_left(&self, p: &LockoutPolicy) -> u32 {
        p.max_failures.max(1).saturating_sub(self.failures)
    }
}

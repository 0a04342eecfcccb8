//! Login sessions on one terminal: idle auto-lock, maximum age and forced logout. In memory only:
//! a restart logs everyone out, which is the safe direction.
//!
//! Times are HLC wall milliseconds like everywhere in this crate, so setting the clock back
//! cannot extend a session.

use std::collections::BTreeMap;

use pos_core::UserId;

/// How long a session lives.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// No activity for this long locks the screen (2 min): a till left open is a till anyone
    /// can use.
    pub idle_lock_ms: u64,
    /// A session ends after this long whatever happens (12 h: longer than any shift).
    pub max_age_ms: u64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_lock_ms: 120_000,
            max_age_ms: 12 * 60 * 60 * 1000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Active,
    /// Idle too long: the user must re-enter their secret, then [`Sessions::resume`].
    IdleLocked,
    /// Past its maximum age, closed, or unknown: log in again.
    Expired,
    /// Ended by a manager or a lock/deactivation of the user.
    ForcedOut,
}

/// A session handle: 128 random bits, so that a handle passed between the UI and the service
/// cannot be guessed.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId([u8; 16]);

impl SessionId {
    fn random() -> Self {
        let mut b = [0u8; 16];
        crate::credential::fill_random(&mut b);
        SessionId(b)
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Enough to tell sessions apart in logs without printing the whole handle.
        write!(f, "SessionId({}..)", &hex::encode(self.0)[..8])
    }
}

#[derive(Debug, Clone, Copy)]
struct Session {
    user: UserId,
    opened_ms: u64,
    last_active_ms: u64,
    forced_out: bool,
}

/// The sessions open on a terminal. `touch` needs the policy too, so the registry keeps one
/// (the default unless built with [`Sessions::new`]).
#[derive(Debug, Default)]
pub struct Sessions {
    policy: SessionPolicy,
    open: BTreeMap<SessionId, Session>,
}

impl Sessions {
    pub fn new(policy: SessionPolicy) -> Self {
        Sessions {
            policy,
            open: BTreeMap::new(),
        }
    }

    /// Start a session for `user` (after a successful login).
    pub fn open(&mut self, user: UserId, now_ms: u64) -> SessionId {
        let mut id = SessionId::random();
        while self.open.contains_key(&id) {
            id = SessionId::random();
        }
        self.open.insert(
            id,
            Session {
                user,
                opened_ms: now_ms,
                last_active_ms: now_ms,
                forced_out: false,
            },
        );
        id
    }

    /// Record activity. Only an `Active` session is refreshed: activity cannot revive a locked,
    /// expired or forced-out one.
    pub fn touch(&mut self, id: SessionId, now_ms: u64) -> SessionState {
        let policy = self.policy;
        let state = self.state(id, now_ms, &policy);
        if state == SessionState::Active {
            if let Some(s) = self.open.get_mut(&id) {
                s.last_active_ms = s.last_active_ms.max(now_ms);
            }
        }
        state
    }

    /// Unlock an idle-locked session after the user re-entered their secret. Expired and
    /// forced-out sessions stay as they are.
    pub fn resume(&mut self, id: SessionId, now_ms: u64) -> SessionState {
        let policy = self.policy;
        let state = self.state(id, now_ms, &policy);
        if matches!(state, SessionState::Active | SessionState::IdleLocked) {
            if let Some(s) = self.open.get_mut(&id) {
                s.last_active_ms = s.last_active_ms.max(now_ms);
            }
            return SessionState::Active;
        }
        state
    }

    pub fn state(&self, id: SessionId, now_ms: u64, policy: &SessionPolicy) -> SessionState {
        let Some(s) = self.open.get(&id) else {
            return SessionState::Expired;
        };
        if s.forced_out {
            SessionState::ForcedOut
        } else if now_ms.saturating_sub(s.opened_ms) >= policy.max_age_ms {
            SessionState::Expired
        } else if now_ms.saturating_sub(s.last_active_ms) >= policy.idle_lock_ms {
            SessionState::IdleLocked
        } else {
            SessionState::Active
        }
    }

    /// The user of a session, whatever its state.
    pub fn user(&self, id: SessionId) -> Option<UserId> {
        self.open.get(&id).map(|s| s.user)
    }

    /// End every session of `user` (they stay listed as `ForcedOut` until closed, so the screen
    /// can say why). Returns how many were still live.
    pub fn force_logout(&mut self, user: UserId) -> usize {
        let mut n = 0;
        for s in self.open.values_mut().filter(|s| s.user == user) {
            if !s.forced_out {
                s.forced_out = true;
                n += 1;
            }
        }
        n
    }

    pub fn close(&mut self, id: SessionId) {
        self.open.remove(&id);
    }

    /// Drop expired and forced-out sessions; returns how many were dropped.
    pub fn prune(&mut self, now_ms: u64) -> usize {
        let policy = self.policy;
        let before = self.open.len();
        let dead: Vec<SessionId> = self
            .open
            .keys()
            .copied()
            .filter(|id| {
                matches!(
                    self.state(*id, now_ms, &policy),
                    SessionState::Expired | SessionState::ForcedOut
                )
            })
            .collect();
        for id in dead {
            self.open.remove(&id);
        }
        before - self.open.len()
    }

    /// Number of sessions held (any state).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

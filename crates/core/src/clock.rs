//! Hybrid logical clock (Kulkarni et al.): timestamps that follow wall time but never go
//! backwards on one device and always exceed any timestamp the device has seen from others.
//!
//! Packed in a `u64`: the high 48 bits are Unix milliseconds, the low 16 bits a logical counter.
//! The caller passes the wall time in, so the rules stay free of IO and testable.

use serde::{Deserialize, Serialize};

const LOGICAL_BITS: u32 = 16;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Hlc(u64);

impl Hlc {
    pub const ZERO: Hlc = Hlc(0);

    pub const fn from_raw(raw: u64) -> Self {
        Hlc(raw)
    }
    pub const fn raw(self) -> u64 {
        self.0
    }
    pub const fn from_parts(wall_ms: u64, logical: u16) -> Self {
        Hlc((wall_ms << LOGICAL_BITS) | logical as u64)
    }
    /// Unix time in milliseconds.
    pub const fn wall_ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }
    pub const fn logical(self) -> u16 {
        (self.0 & LOGICAL_MASK) as u16
    }
}

impl std::fmt::Display for Hlc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.wall_ms(), self.logical())
    }
}

/// The clock state of one device. Persist `last()` and restore with `resume` so time stays
/// monotonic across restarts even when the wall clock is set back.
#[derive(Debug, Clone, Copy, Default)]
pub struct HlcClock {
    last: Hlc,
}

impl HlcClock {
    pub fn resume(last: Hlc) -> Self {
        HlcClock { last }
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A timestamp for a local event, given the current wall time.
    pub fn tick(&mut self, wall_ms: u64) -> Hlc {
        self.advance(wall_ms, Hlc::ZERO)
    }

    /// Merge a timestamp received from another device (sync), so later local events sort after it.
    pub fn observe(&mut self, remote: Hlc, wall_ms: u64) -> Hlc {
        self.advance(wall_ms, remote)
    }

    fn advance(&mut self, wall_ms: u64, remote: Hlc) -> Hlc {
        let wall = Hlc::from_parts(wall_ms.min(u64::MAX >> LOGICAL_BITS), 0);
        let highest = self.last.max(remote);
        let next = if wall > highest {
            wall
        } else {
            // Wall clock behind (or equal): count logically. On counter overflow the next
            // millisecond absorbs it, which keeps the order total.
            Hlc(highest.0.saturating_add(1))
        };
        self.last = next;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn follows_wall_time_when_it_moves_forward() {
        let mut c = HlcClock::default();
        assert_eq!(c.tick(1000), Hlc::from_parts(1000, 0));
        assert_eq!(c.tick(1005), Hlc::from_parts(1005, 0));
    }

    #[test]
    fn counts_logically_when_wall_time_stalls_or_goes_back() {
        let mut c = HlcClock::default();
        c.tick(1000);
        assert_eq!(c.tick(1000), Hlc::from_parts(1000, 1));
        assert_eq!(c.tick(900), Hlc::from_parts(1000, 2));
    }

    #[test]
    fn observing_a_future_remote_moves_past_it() {
        let mut c = HlcClock::default();
        c.tick(1000);
        let remote = Hlc::from_parts(5000, 7);
        assert!(c.observe(remote, 1001) > remote);
        assert!(c.tick(1002) > remote);
    }

    proptest! {
        #[test]
        fn never_goes_backwards(steps in proptest::collection::vec((0u64..1u64 << 40, any::<bool>(), any::<u64>()), 1..200)) {
            let mut c = HlcClock::default();
            let mut prev = Hlc::ZERO;
            for (wall, remote_step, remote) in steps {
                let next = if remote_step { c.observe(Hlc::from_raw(remote >> 1), wall) } else { c.tick(wall) };
                prop_assert!(next > prev);
                if remote_step { prop_assert!(next > Hlc::from_raw(remote >> 1)); }
                prev = next;
            }
        }
    }
}

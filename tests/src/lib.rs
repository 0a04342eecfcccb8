//! Helpers shared by the cross-process system tests and their child programs.
//!
//! * `crash_appender` (a binary of this package) appends stock movements that net to zero in a
//!   loop and prints `ACK <last_seq> <head hex>` after every durable commit.
//! * The tests in `tests/` kill it with SIGKILL and check what survived.
//! * [`chaos::ChaosProxy`], a fault-injecting TCP proxy, sits between the `pos` terminals and
//!   the hub in the sync tests of `tests/pos/` (test targets of the `pos` package, which
//!   builds the binary they run).

pub mod chaos;

use pos_audit::EventDraft;
use pos_core::payloads::StockMoved;

/// Items the generated stock movements use.
pub const ITEMS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// A small xorshift64* generator: deterministic for a seed, no dependencies.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // splitmix64's finalizer spreads every bit of the seed (so seeds 42 and 43 give
        // different streams); zero, a fixed point of xorshift, is replaced.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        XorShift(if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z })
    }

    /// Seeded from the pid and the clock: different in every process and run.
    pub fn from_entropy() -> XorShift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        XorShift::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `lo..=hi` (small ranges only).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// One batch of 1..=20 stock movements over [`ITEMS`] whose quantities sum to exactly zero:
/// if a batch were ever half-applied, the stock levels would no longer sum to zero.
pub fn zero_sum_batch(rng: &mut XorShift) -> Vec<EventDraft> {
    let len = rng.range(1, 20) as usize;
    let mut drafts = Vec::with_capacity(len);
    let mut sum = 0i64;
    for i in 0..len {
        let quantity = if i + 1 == len {
            -sum
        } else {
            rng.range(0, 2000) as i64 - 1000
        };
        sum += quantity;
        let item = ITEMS[rng.range(0, ITEMS.len() as u64 - 1) as usize];
        drafts.push(EventDraft::json(
            StockMoved::MODULE,
            StockMoved::KIND,
            &StockMoved {
                item: item.to_owned(),
                quantity,
                cause: None,
                reference: None,
            },
        ));
    }
    drafts
}

/// Parse the `ACK <seq> <hex>` lines a child printed. A last line without its newline (the
/// child died while writing it) does not count as acknowledged.
pub fn parse_acks(output: &str) -> Vec<(u64, String)> {
    let complete = match output.rfind('\n') {
        Some(end) => &output[..end],
        None => "",
    };
    complete
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("ACK"), Some(seq), Some(hash), None) => {
                    Some((seq.parse().ok()?, hash.to_owned()))
                }
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod xorshift_tests {
    use super::XorShift;

    #[test]
    fn neighbouring_seeds_give_different_streams_and_zero_works() {
        let first = |seed| XorShift::new(seed).next_u64();
        assert_ne!(first(42), first(43));
        assert_eq!(first(42), first(42));
        let mut z = XorShift::new(0);
        assert_ne!((z.next_u64(), z.next_u64()), (0, 0));
    }
}

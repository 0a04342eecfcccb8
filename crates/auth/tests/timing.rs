//! How long one verification with the production argon2id parameters takes on this machine.
//! Ignored by default (meaningful only in release):
//! `cargo test -p pos-auth --release --test timing -- --ignored --nocapture`
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pos_auth::{hash_secret, verify_secret, ARGON2_ITERATIONS, ARGON2_LANES, ARGON2_MEMORY_KIB};

#[test]
#[ignore = "a measurement, not a check; run in release"]
fn measure_verify_secret() {
    let phc = hash_secret("violet-oak-7").unwrap();
    assert!(verify_secret("violet-oak-7", &phc)); // warm-up
    let mut runs: Vec<Duration> = (0..21)
        .map(|_| {
            let t = Instant::now();
            assert!(verify_secret("violet-oak-7", &phc));
            t.elapsed()
        })
        .collect();
    runs.sort();
    println!(
        "argon2id m={ARGON2_MEMORY_KIB} KiB t={ARGON2_ITERATIONS} p={ARGON2_LANES}: verify_secret median {:.1} ms (min {:.1}, max {:.1}, {} runs)",
        runs[runs.len() / 2].as_secs_f64() * 1e3,
        runs[0].as_secs_f64() * 1e3,
        runs[runs.len() - 1].as_secs_f64() * 1e3,
        runs.len()
    );
}

//! S1 credential verify: one argon2id verification with the production parameters, as done at
//! every login. There is no natural baseline, so the goal is the baseline: 250 ms keeps a login
//! snappy on the appliance. The goal also sets a floor (5 ms): cheaper than that, an offline
//! guess at a stolen verifier would be too cheap.

use std::time::Instant;

use anyhow::{ensure, Result};

use crate::figure::{Better, Cond, Figure, Meta};
use crate::timing::Samples;
use crate::{Settings, Spec};

const GOAL_MS: f64 = 250.0;

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "S1",
        name: "credential verify (argon2id)",
        unit: "ms",
        baseline_name: "goal: a login within 250 ms",
        better: Better::Lower,
        goal: "ratio <= 1 and >= 5 ms per guess",
        conditions: &[Cond::RatioAtMost(1.0), Cond::ValueAtLeast(5.0)],
    },
    run,
};

fn run(settings: &Settings) -> Result<Figure> {
    let rounds = if settings.quick { 7 } else { 31 };
    let secret = "Correct-Horse-Battery-42";
    let verifier = pos_auth::hash_secret(secret)?;
    let mut samples = Samples::default();
    for _ in 0..rounds {
        let start = Instant::now();
        let ok = pos_auth::verify_secret(secret, &verifier);
        samples.0.push(start.elapsed().as_secs_f64() * 1000.0);
        ensure!(ok, "the verifier did not accept its own secret");
    }
    ensure!(
        !pos_auth::verify_secret("wrong", &verifier),
        "the verifier accepted a wrong secret"
    );
    Ok(
        Figure::new(&SPEC.meta, samples.median(), GOAL_MS).note(format!(
            "argon2id m={} KiB t={} p={}; {rounds} verifications: {}",
            pos_auth::ARGON2_MEMORY_KIB,
            pos_auth::ARGON2_ITERATIONS,
            pos_auth::ARGON2_LANES,
            samples.spread(|x| x)
        )),
    )
}

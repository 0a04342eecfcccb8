//! P7 audit verify throughput: `ChainVerifier` over an in-memory chain (hash links, signed
//! checkpoints every 1000 records, the head seal), against hashing the same canonical bytes
//! with blake3, one call per record. The ratio is the verifier's overhead over the hashing it
//! cannot avoid.

use std::hint::black_box;

use anyhow::{ensure, Result};
use pos_audit::{
    encoding, ChainHash, ChainVerifier, Checkpoint, DeviceKey, Event, CHECKPOINT_INTERVAL,
};
use pos_core::{DeviceId, EventId, Hlc, UserId};

use crate::figure::{Better, Cond, Figure, Meta};
use crate::timing::{self, interleaved, time};
use crate::{workload, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P7",
        name: "audit verify throughput",
        unit: "records/s",
        baseline_name: "raw blake3 over the same bytes",
        better: Better::Higher,
        goal: "ratio >= 0.5 and >= 1M records/s",
        conditions: &[Cond::RatioAtLeast(0.5), Cond::ValueAtLeast(1_000_000.0)],
    },
    run,
};

/// One origin's sealed chain with its checkpoints and head seal.
struct Chain {
    origin: DeviceId,
    events: Vec<Event>,
    checkpoints: Vec<Checkpoint>,
    seal: Checkpoint,
}

/// `n` records of realistic sales, chained, with a checkpoint every CHECKPOINT_INTERVAL.
fn build_chain(n: u64, key: &DeviceKey) -> Chain {
    let origin = DeviceId::new_v7();
    let cashier = UserId::new_v7();
    let start_ms = 1_760_000_000_000u64;
    let mut events = Vec::with_capacity(n as usize);
    let mut checkpoints = Vec::new();
    let mut head = ChainHash::GENESIS;
    let mut scratch = Vec::with_capacity(512);
    let mut seq = 0u64;
    let mut hlc = Hlc::ZERO;
    'sales: for sale in 0.. {
        for (line, draft) in workload::sale(sale, cashier).into_iter().enumerate() {
            if seq == n {
                break 'sales;
            }
            seq += 1;
            // A sale every ~30 s; its lines within the same millisecond, counted logically.
            hlc = Hlc::from_parts(start_ms + sale * 30_000, line as u16);
            let event = draft.seal(EventId::new_v7(), origin, seq, hlc, head, &mut scratch);
            head = event.hash;
            events.push(event);
            if seq % CHECKPOINT_INTERVAL == 0 {
                checkpoints.push(Checkpoint::sign(key, origin, seq, head, hlc));
            }
        }
    }
    let seal = Checkpoint::sign(key, origin, seq, head, hlc);
    Chain {
        origin,
        events,
        checkpoints,
        seal,
    }
}

fn run(settings: &Settings) -> Result<Figure> {
    let n: u64 = if settings.quick { 200_000 } else { 1_000_000 };
    let (warmup, rounds) = (1, 5);
    let key = DeviceKey::from_seed([7; 32]);
    let trusted = [key.public()];
    let (built_in, chain) = time(|| Ok(build_chain(n, &key)))?;
    let canonical: Vec<Vec<u8>> = chain.events.iter().map(encoding::encode).collect();
    let bytes: usize = canonical.iter().map(Vec::len).sum();
    eprintln!(
        "P7: built a chain of {n} records ({} checkpoints) in {:.2} s",
        chain.checkpoints.len(),
        built_in.as_secs_f64()
    );

    let (value, baseline) = interleaved(
        warmup,
        rounds,
        || {
            let mut verifier = ChainVerifier::new(chain.origin, &trusted)
                .with_checkpoints(chain.checkpoints.clone())
                .with_seal(Some(chain.seal.clone()), true);
            let (took, summary) = time(|| {
                for e in &chain.events {
                    verifier.push(e)?;
                }
                Ok(verifier.finish()?)
            })?;
            ensure!(
                summary.records == n,
                "verified {} of {n} records",
                summary.records
            );
            Ok(took)
        },
        || {
            let (took, ()) = time(|| {
                for record in &canonical {
                    black_box(blake3::hash(black_box(record)));
                }
                Ok(())
            })?;
            Ok(took)
        },
    )?;

    let per_s = |secs: f64| n as f64 / secs;
    let figure =
        Figure::new(&SPEC.meta, per_s(value.median()), per_s(baseline.median())).note(format!(
            "{rounds} interleaved rounds after {warmup} warm-up over {n} records \
             (mean canonical size {} bytes, checkpoint every {CHECKPOINT_INTERVAL}); \
             round times in ms: verifier {}, blake3 {}",
            bytes / n as usize,
            value.spread(|s| s * 1e3),
            baseline.spread(|s| s * 1e3)
        ));
    Ok(match timing::noise_warning(&value, &baseline) {
        Some(warning) => figure.note(warning),
        None => figure,
    })
}

//! P5 catch-up after a long offline period: a terminal whose log holds N records the hub has
//! never seen connects, and its sync link sends them all over TLS 1.3 with mutual
//! authentication on loopback until the hub has stored the last one. Against the hub's raw
//! ingest of the same records: the same batches (the protocol's batch size, from seq 1, each
//! with its stored checkpoints and the seal the terminal signs), each verified as the
//! continuation of the stored chain (`ChainVerifier`: hashes, links, signatures) and committed
//! with `Store::ingest` into a hub data dir just like the one the protocol writes to, in one
//! thread, without TLS, framing, the protocol or the terminal's reads. The ratio is the share
//! of the hub's raw ingest speed that catch-up over the network keeps.
//!
//! Each round starts from a copy of the same hub data dir (the terminal enrolled, none of its
//! records stored), so both sides ingest into an equal hub every time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use pos_audit::{ChainVerifier, Checkpoint};
use pos_core::{DeviceId, DeviceRole, UserId};
use pos_store::{Store, StoreOptions};
use pos_sync::VerifiedBatch;
use pos_sync_store::OwnedTerminalStore;

use crate::figure::{Better, Cond, Figure, Meta};
use crate::sync_rig::{self, Link};
use crate::timing::{self, interleaved, time};
use crate::{fsinfo, workload, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P5",
        name: "catch-up sync throughput",
        unit: "events/s",
        baseline_name: "raw verify + SQLite ingest",
        better: Better::Higher,
        goal: "ratio >= 0.5 and >= 50k events/s",
        conditions: &[Cond::RatioAtLeast(0.5), Cond::ValueAtLeast(50_000.0)],
    },
    run,
};

/// Sales appended per `Store::append` while filling the terminal's log.
const SALES_PER_APPEND: u64 = 250;

/// How often the bench looks at the hub's store for the last record.
const POLL: Duration = Duration::from_millis(2);
/// Far beyond any plausible catch-up time: only a stalled sync hits it.
const PATIENCE: Duration = Duration::from_secs(300);

fn run(settings: &Settings) -> Result<Figure> {
    // The full run is the figure (at least 250 000 events); --quick uses fewer.
    let (sales, warmup, rounds) = if settings.quick {
        (2_500u64, 1, 3)
    } else {
        (12_500u64, 1, 3)
    };
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p5-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, on_disk) = fsinfo::describe(root.path());
    eprintln!("P5: files in {where_}");
    let hub_rt = sync_rig::hub_runtime()?;
    let term_rt = sync_rig::terminal_runtime()?;

    // The hub template: enrollment done, then closed; every round copies it.
    let template = root.path().join("hub-template");
    let (hub_store, code) = sync_rig::init_hub(&template)?;
    let hub_id = hub_store.identity().id;
    let hub = sync_rig::start_hub(&hub_rt, hub_store)?;
    let (mut terminal, _) = Store::init(
        &root.path().join("terminal"),
        DeviceRole::Terminal,
        "bench",
        "till-1",
        false,
    )?;
    let enrolled = sync_rig::enroll(&term_rt, &mut terminal, hub.local_addr(), code)?;
    hub_rt.block_on(hub.shutdown());
    ensure!(enrolled.hub == hub_id, "enrolled with another hub");
    let term_id = terminal.identity().id;

    // The offline period: realistic sale lines (stock.moved, ~160-byte records) appended in
    // big commits; selling through the engine would take far longer and add nothing here.
    let (filled_in, ()) = time(|| {
        let cashier = UserId::new_v7();
        let mut sale = 0;
        while sale < sales {
            let end = (sale + SALES_PER_APPEND).min(sales);
            let drafts = (sale..end)
                .flat_map(|s| workload::sale(s, cashier))
                .collect();
            terminal.append(drafts)?;
            sale = end;
        }
        Ok(())
    })?;
    let (n, head) = terminal.head();
    ensure!(
        n >= sales * workload::SALE_LINES as u64,
        "the terminal holds {n} records"
    );
    eprintln!(
        "P5: the terminal's log holds {n} records (filled in {:.1} s)",
        filled_in.as_secs_f64()
    );
    let batch_events = pos_sync::Config::default().max_batch_events;
    let batches = raw_batches(&terminal, batch_events)?;
    let head_watch = terminal.head_watch();
    let terminal = Arc::new(Mutex::new(terminal));
    let storage = Arc::new(OwnedTerminalStore::owned(terminal.clone(), hub_id));

    let (mut sync_round, mut raw_round) = (0u32, 0u32);
    let (value, baseline) = interleaved(
        warmup,
        rounds,
        || {
            sync_round += 1;
            let dir = root.path().join(format!("hub-sync-{sync_round}"));
            sync_rig::copy_data_dir(&template, &dir)?;
            let store = Store::open(&dir, StoreOptions::default())?;
            let hub = sync_rig::start_hub(&hub_rt, store)?;
            let read = Store::open_read_only(&dir)?;
            let start = Instant::now();
            let link = Link::start(
                &term_rt,
                &enrolled,
                hub.local_addr(),
                storage.clone(),
                head_watch.clone(),
            );
            let stored = sync_rig::wait_stored(&link, &read, term_id, n, POLL, PATIENCE);
            let took = start.elapsed();
            link.stop(&term_rt);
            hub_rt.block_on(hub.shutdown());
            let stored = stored?;
            ensure!(
                stored.last_seq == n && stored.head == head,
                "the hub's copy ends at seq {} with another head",
                stored.last_seq
            );
            drop(read);
            std::fs::remove_dir_all(&dir)?;
            Ok(took)
        },
        || {
            raw_round += 1;
            let dir = root.path().join(format!("hub-raw-{raw_round}"));
            sync_rig::copy_data_dir(&template, &dir)?;
            let mut store = Store::open(&dir, StoreOptions::default())?;
            let (took, ()) = time(|| raw_ingest(&mut store, term_id, &batches))?;
            let stored = store.origin_state(term_id)?;
            ensure!(
                stored.last_seq == n && stored.head == head,
                "the raw copy ends at seq {}",
                stored.last_seq
            );
            drop(store);
            std::fs::remove_dir_all(&dir)?;
            Ok(took)
        },
    )?;

    let per_s = |secs: f64| n as f64 / secs;
    let mut figure = Figure::new(&SPEC.meta, per_s(value.median()), per_s(baseline.median()))
        .note(format!(
            "{n} terminal records ({sales} sales x {} stock.moved lines, appended in commits of \
             {SALES_PER_APPEND} sales, plus the terminal's registration records){}; files: \
             {where_}",
            workload::SALE_LINES,
            if settings.quick {
                " -- QUICK: fewer than the 250 000 of the issue's figure (the full run uses 250 000)"
            } else {
                ""
            }
        ))
        .note(format!(
            "value: from TerminalClient start (TCP connect, TLS 1.3 handshake with client \
             certificates, Hello) until the hub's store holds the last record (read-only \
             connection polled every {} ms); the real hub service (RunningHub) and sync link \
             (TerminalClient, own runtime), default sync config ({batch_events}-event batches, \
             window {}), in this one process",
            POLL.as_millis(),
            pos_sync::Config::default().receive_window
        ))
        .note(format!(
            "baseline: the same {} batches of {batch_events}, read beforehand, each verified \
             with ChainVerifier (resume at the stored head, checkpoints + seal) and committed with \
             Store::ingest, in one thread; each round on a fresh copy of the same enrolled hub \
             data dir",
            batches.len()
        ))
        .note(format!(
            "{rounds} interleaved rounds after {warmup} warm-up; round times in ms: sync {}, raw {}",
            value.spread(|s| s * 1e3),
            baseline.spread(|s| s * 1e3)
        ));
    if let Some(warning) = timing::noise_warning(&value, &baseline) {
        figure = figure.note(warning);
    }
    if !on_disk {
        figure = figure.note("WARNING: memory-backed filesystem, fsync is free: figure invalid");
    }
    Ok(figure)
}

/// The batches the protocol sends for a fresh hub: `size` records each from seq 1, with the
/// stored checkpoints in their range and, as seal, the stored checkpoint at the last record or
/// one the terminal signs there (as `build_batch` does). Not verified yet.
fn raw_batches(terminal: &Store, size: u32) -> Result<Vec<VerifiedBatch>> {
    let origin = terminal.identity().id;
    let mut batches = Vec::new();
    let mut first = 1;
    loop {
        let (events, checkpoints) = terminal.events_for_sync(origin, first, size)?;
        let Some(last) = events.last() else {
            return Ok(batches);
        };
        let (last_seq, head, hlc) = (last.seq, last.hash, last.hlc);
        let seal = checkpoints
            .iter()
            .find(|c| c.seq == last_seq)
            .cloned()
            .unwrap_or_else(|| {
                Checkpoint::sign(terminal.device_key(), origin, last_seq, head, hlc)
            });
        batches.push(VerifiedBatch {
            origin,
            first_seq: first,
            last_seq,
            head,
            events,
            checkpoints,
            seal,
        });
        first = last_seq + 1;
    }
}

/// The hub's raw work for `batches`: verify each as the continuation of what is stored, then
/// commit it.
fn raw_ingest(hub: &mut Store, origin: DeviceId, batches: &[VerifiedBatch]) -> Result<()> {
    let stored = hub.origin_state(origin)?;
    let (mut seq, mut head) = (stored.last_seq, stored.head);
    for batch in batches {
        let mut verifier = ChainVerifier::resume(origin, &stored.keys, seq, head)
            .with_checkpoints(batch.checkpoints.iter().cloned())
            .with_seal(Some(batch.seal.clone()), true);
        for event in &batch.events {
            verifier
                .push(event)
                .map_err(|f| anyhow::anyhow!("raw verify: {f}"))?;
        }
        let summary = verifier
            .finish()
            .map_err(|f| anyhow::anyhow!("raw verify: {f}"))?;
        ensure!(summary.head == batch.head && summary.last_seq == batch.last_seq);
        hub.ingest(batch)?;
        (seq, head) = (summary.last_seq, summary.head);
    }
    Ok(())
}

//! `crash_ingester HUB_DIR TERMINAL_DIR`: push the terminal's chain into the hub's database as
//! sync would (batches of 1..=40 records, each committed with `Store::ingest`), printing
//! `ACK <last_seq> <head hex>` after each durable ingest, then `DONE` and wait to be killed.
//! Meant to be killed with SIGKILL. Any error: message on stderr, exit status 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use pos_audit::Checkpoint;
use pos_store::{Store, StoreOptions};
use pos_sync::VerifiedBatch;
use pos_system_tests::XorShift;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash_ingester: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(hub), Some(terminal), None) = (args.next(), args.next(), args.next()) else {
        return Err("usage: crash_ingester HUB_DIR TERMINAL_DIR".into());
    };
    let source = Store::open_read_only(&PathBuf::from(terminal))?;
    let mut hub = Store::open(&PathBuf::from(hub), StoreOptions::default())?;
    let origin = source.device_id();
    let mut rng = XorShift::from_entropy();
    let stdout = std::io::stdout();
    loop {
        let from = hub.origin_state(origin)?.last_seq + 1;
        let (events, checkpoints) =
            source.events_for_sync(origin, from, rng.range(1, 40) as u32)?;
        let Some(last) = events.last() else {
            break;
        };
        let seal = Checkpoint::sign(source.device_key(), origin, last.seq, last.hash, last.hlc);
        let batch = VerifiedBatch {
            origin,
            first_seq: from,
            last_seq: last.seq,
            head: last.hash,
            events,
            checkpoints,
            seal,
        };
        let outcome = hub.ingest(&batch)?;
        // One write per line, so a kill never leaves half a line that looks complete.
        let line = format!("ACK {} {}\n", outcome.last_seq, outcome.head.to_hex());
        let mut out = stdout.lock();
        out.write_all(line.as_bytes())?;
        out.flush()?;
    }
    stdout.lock().write_all(b"DONE\n")?;
    stdout.lock().flush()?;
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

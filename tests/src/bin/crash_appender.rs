//! `crash_appender DATA_DIR`: append zero-sum batches of stock movements forever, printing
//! `ACK <last_seq> <head hex>` after each durable commit. Meant to be killed with SIGKILL.
//! Any error: message on stderr, exit status 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use pos_store::{Store, StoreOptions};
use pos_system_tests::{zero_sum_batch, XorShift};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash_appender: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        return Err("usage: crash_appender DATA_DIR".into());
    };
    let dir = PathBuf::from(dir);
    let options = StoreOptions {
        // Cross checkpoints often, so kills land around checkpoint writes too.
        checkpoint_every: 7,
        ..StoreOptions::default()
    };
    let mut store = Store::open(&dir, options)?;
    let mut rng = XorShift::from_entropy();
    let stdout = std::io::stdout();
    loop {
        let commit = store.append(zero_sum_batch(&mut rng))?;
        // One write per line, so a kill never leaves half a line that looks complete.
        let line = format!("ACK {} {}\n", commit.last_seq, commit.head.to_hex());
        let mut out = stdout.lock();
        out.write_all(line.as_bytes())?;
        out.flush()?;
    }
}

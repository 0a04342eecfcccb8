//! `backup_looper DATA_DIR OUT_DIR KEY_FILE`: make backups of DATA_DIR into OUT_DIR in a loop
//! (`pos_backup::create`, small segments) while another thread appends stock movements to the
//! same data dir, printing `MADE <path>` after each complete backup. Meant to be killed with
//! SIGKILL. Any error: message on stderr, exit status 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use pos_backup::{BackupKey, BackupKind, CreateOptions, Secret};
use pos_store::{Store, StoreOptions};
use pos_system_tests::{zero_sum_batch, XorShift};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("backup_looper: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [data, out, key] = args.as_slice() else {
        return Err("usage: backup_looper DATA_DIR OUT_DIR KEY_FILE".into());
    };
    let secret = Secret::Key(BackupKey::read_file(key)?);
    let mut store = Store::open(data, StoreOptions::default())?;
    // The appender: the device keeps selling while it is backed up (a pause between commits
    // keeps the database small enough for 30 rounds).
    std::thread::spawn(move || {
        let mut rng = XorShift::from_entropy();
        loop {
            if let Err(e) = store.append(zero_sum_batch(&mut rng)) {
                eprintln!("backup_looper: append: {e}");
                std::process::exit(2);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let options = CreateOptions {
        kind: BackupKind::Hourly,
        // Many segments, so kills land between and inside them.
        chunk_bytes: 16 << 10,
        ..CreateOptions::default()
    };
    let stdout = std::io::stdout();
    {
        let mut o = stdout.lock();
        o.write_all(b"READY\n")?;
        o.flush()?;
    }
    loop {
        let mut quiet = |_: &str, _: u64, _: u64| {};
        let file = pos_backup::create(data, out, &secret, &options, &mut quiet)?;
        // One write per line, so a kill never leaves half a line that looks complete.
        let line = format!("MADE {}\n", file.path.display());
        let mut o = stdout.lock();
        o.write_all(line.as_bytes())?;
        o.flush()?;
    }
}

//! P8 backup: a complete backup of a hub-sized database (online snapshot, tar, zstd level 3,
//! XChaCha20-Poly1305 segments, manifest) and its verification (decrypt, every hash,
//! `integrity_check`, every audit chain against the manifest), against the plain way of
//! backing up the same file: `sqlite3 DB ".backup COPY"` then `zstd -3 COPY` (the CLIs when
//! both are installed, else the same work in-process: rusqlite's backup API and the zstd
//! crate at level 3). restic, where installed, is timed once on the same file for comparison.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use pos_backup::{BackupKey, BackupKind, CreateOptions, Secret};
use pos_core::{DeviceRole, UserId};
use pos_store::{Store, StoreOptions, DB_FILE};

use crate::figure::{Better, Cond, Figure, Meta};
use crate::timing::{self, interleaved, time};
use crate::{fsinfo, workload, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P8",
        name: "backup (online, compressed, encrypted, verified)",
        unit: "s",
        baseline_name: "sqlite3 .backup then zstd -3, same file",
        better: Better::Lower,
        goal: "ratio <= 1.5",
        conditions: &[Cond::RatioAtMost(1.5)],
    },
    run,
};

/// Sales appended per `Store::append` while filling the database.
const SALES_PER_APPEND: u64 = 500;

fn run(settings: &Settings) -> Result<Figure> {
    let (target_mb, warmup, rounds) = if settings.quick {
        (100u64, 0, 3)
    } else {
        (1024u64, 1, 3)
    };
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p8-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, _) = fsinfo::describe(root.path());
    eprintln!("P8: files in {where_}");
    let data = root.path().join("hub");
    let (filled_in, records) = time(|| fill(&data, target_mb << 20))?;
    let db = data.join(DB_FILE);
    let db_bytes = std::fs::metadata(&db)?.len();
    eprintln!(
        "P8: a hub database of {} MB ({records} records) built in {:.1} s",
        db_bytes >> 20,
        filled_in.as_secs_f64()
    );

    let secret = Secret::Key(BackupKey::generate()?);
    let out = root.path().join("out");
    std::fs::create_dir_all(&out)?;
    let baseline_kind = Baseline::detect();
    eprintln!("P8: baseline: {}", baseline_kind.describe());
    let mut backup_bytes = 0u64;
    let mut baseline_bytes = 0u64;
    let mut split = Vec::new();
    let (value, baseline) = interleaved(
        warmup,
        rounds,
        || {
            let (took, (file, create_s)) = time(|| {
                let mut quiet = |_: &str, _: u64, _: u64| {};
                let options = CreateOptions {
                    kind: BackupKind::Manual,
                    ..CreateOptions::default()
                };
                let (made_in, file) = time(|| {
                    Ok(pos_backup::create(
                        &data, &out, &secret, &options, &mut quiet,
                    )?)
                })?;
                let report = pos_backup::verify(&file.path, &secret, &out, &mut quiet)?;
                let verified: u64 = report.chains.iter().map(|c| c.records).sum();
                ensure!(
                    verified == records,
                    "verified {verified} of {records} records"
                );
                Ok((file, made_in.as_secs_f64()))
            })?;
            backup_bytes = file.bytes;
            split.push((create_s, took.as_secs_f64() - create_s));
            std::fs::remove_file(&file.path)?;
            Ok(took)
        },
        || {
            let (took, bytes) = baseline_kind.run(&db, &out)?;
            baseline_bytes = bytes;
            Ok(took)
        },
    )?;

    let restic = restic(&db, root.path());
    let create_med = timing::median(&split.iter().map(|s| s.0).collect::<Vec<_>>());
    let verify_med = timing::median(&split.iter().map(|s| s.1).collect::<Vec<_>>());
    let mut figure = Figure::new(&SPEC.meta, value.median(), baseline.median())
        .note(format!(
            "database {} MB{} ({records} stock.moved records of realistic sales, appended in \
             commits of {} sales), built in {:.1} s; {rounds} interleaved rounds after \
             {warmup} warm-up",
            db_bytes >> 20,
            if settings.quick {
                " (--quick: ~100 MB, the full run uses 1 GB)"
            } else {
                ""
            },
            SALES_PER_APPEND,
            filled_in.as_secs_f64()
        ))
        .note(format!(
            "value = pos_backup::create + verify: median create {:.1} s + verify {:.1} s; \
             backup file {} MB ({:.1}x smaller than the database)",
            create_med.unwrap_or(f64::NAN),
            verify_med.unwrap_or(f64::NAN),
            backup_bytes >> 20,
            db_bytes as f64 / backup_bytes.max(1) as f64
        ))
        .note(format!(
            "baseline = {}; compressed copy {} MB",
            baseline_kind.describe(),
            baseline_bytes >> 20
        ))
        .note(format!(
            "round times in s: pos backup {}, baseline {}",
            value.spread(|s| s),
            baseline.spread(|s| s)
        ));
    figure = match restic {
        Ok(Some(secs)) => figure.note(format!(
            "restic (Debian's package) backup of the same file into a new repository: {secs:.1} s, \
             pos backup + verify / restic = {:.2}",
            value.median() / secs
        )),
        Ok(None) => figure.note("restic not installed: no restic comparison"),
        Err(e) => figure.note(format!("restic failed: {e:#}")),
    };
    Ok(match timing::noise_warning(&value, &baseline) {
        Some(warning) => figure.note(warning),
        None => figure,
    })
}

/// A hub data dir whose database grows to about `target` bytes of realistic sales.
fn fill(data: &Path, target: u64) -> Result<u64> {
    let (mut store, _) = Store::init(data, DeviceRole::Hub, "bench", "hub", false)?;
    drop(store);
    store = Store::open(
        data,
        StoreOptions {
            checkpoint_every: 1000,
            ..StoreOptions::default()
        },
    )?;
    let db = data.join(DB_FILE);
    let wal = data.join(format!("{DB_FILE}-wal"));
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let cashier = UserId::new_v7();
    let mut sale = 0u64;
    while size(&db) + size(&wal) < target {
        let drafts = (sale..sale + SALES_PER_APPEND)
            .flat_map(|s| workload::sale(s, cashier))
            .collect();
        store.append(drafts)?;
        sale += SALES_PER_APPEND;
    }
    let (records, _) = store.head();
    drop(store);
    // Fold the WAL into the database file so both sides copy the same single file.
    let conn = rusqlite::Connection::open(&db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    Ok(records)
}

/// How the baseline is made.
enum Baseline {
    /// The `sqlite3` and `zstd` command-line tools.
    Cli,
    /// rusqlite's online backup API and the zstd crate, in this process.
    InProcess,
}

impl Baseline {
    fn detect() -> Baseline {
        if which("sqlite3").is_some() && which("zstd").is_some() {
            Baseline::Cli
        } else {
            Baseline::InProcess
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Baseline::Cli => "the sqlite3 CLI's .backup, then the zstd CLI at level 3",
            Baseline::InProcess => {
                "sqlite3 or zstd CLI not installed: rusqlite's backup API, then the zstd crate \
                 at level 3, in-process"
            }
        }
    }

    /// One baseline backup of `db` into `out`: its duration and compressed size.
    fn run(&self, db: &Path, out: &Path) -> Result<(Duration, u64)> {
        let copy = out.join("baseline.db");
        let zst = out.join("baseline.db.zst");
        let (took, ()) = time(|| {
            match self {
                Baseline::Cli => {
                    let status = Command::new("sqlite3")
                        .arg(db)
                        .arg(format!(".backup '{}'", copy.display()))
                        .status()
                        .context("running sqlite3")?;
                    ensure!(status.success(), "sqlite3 .backup failed: {status}");
                    let status = Command::new("zstd")
                        .args(["-3", "-q", "-f"])
                        .arg(&copy)
                        .arg("-o")
                        .arg(&zst)
                        .status()
                        .context("running zstd")?;
                    ensure!(status.success(), "zstd failed: {status}");
                }
                Baseline::InProcess => {
                    let src = rusqlite::Connection::open_with_flags(
                        db,
                        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
                    )?;
                    src.backup(rusqlite::MAIN_DB, &copy, None)?;
                    drop(src);
                    let mut input = std::fs::File::open(&copy)?;
                    let output = std::fs::File::create(&zst)?;
                    let mut enc = zstd::Encoder::new(output, 3)?;
                    std::io::copy(&mut input, &mut enc)?;
                    enc.finish()?.sync_all()?;
                }
            }
            Ok(())
        })?;
        let bytes = std::fs::metadata(&zst)?.len();
        for p in [&copy, &zst] {
            let _ = std::fs::remove_file(p);
        }
        for side in ["-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(out.join(format!("baseline.db{side}")));
        }
        Ok((took, bytes))
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// `restic init` + `restic backup` of `db` into a new repository under `root`: the backup's
/// seconds, None when restic is not installed.
fn restic(db: &Path, root: &Path) -> Result<Option<f64>> {
    if which("restic").is_none() {
        return Ok(None);
    }
    let repo = root.join("restic-repo");
    let restic = |args: &[&str]| -> Result<()> {
        let out = Command::new("restic")
            .args(["--repo"])
            .arg(&repo)
            .args(args)
            .env("RESTIC_PASSWORD", "pos-bench-p8")
            .env("RESTIC_CACHE_DIR", root.join("restic-cache"))
            .output()
            .context("running restic")?;
        if !out.status.success() {
            bail!(
                "restic {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    restic(&["init", "--quiet"])?;
    let db_arg = db.to_string_lossy().into_owned();
    let (took, ()) = time(|| restic(&["backup", "--quiet", &db_arg]))?;
    Ok(Some(took.as_secs_f64()))
}

//! `pos backup keygen|create|list|verify|prune|export|import|restore`: the command line of the
//! backups of issue 9 (the work itself is in `pos-backup`).
//!
//! Keys: `--key-file FILE`, else the config's `[backup] key_file`, else its `passphrase_file`,
//! else a passphrase asked on standard input (without echo on a terminal). Never in arguments.
//!
//! USB: backups go to `<mount>/pos-backups/` on a stick; every copy (export and import) is
//! written as `NAME.partial`, synced, renamed, the directory synced, then read back and compared
//! (blake3) with the source. A full or pulled stick leaves the source untouched and no listed
//! file behind.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, IsTerminal as _, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::{ArgGroup, Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pos_backup::job;
use pos_backup::offsite::SftpTarget;
use pos_backup::retention::{self, Entry, Policy, Reason};
use pos_backup::{
    usb, BackupError, BackupFile, BackupKey, BackupKind, CreateOptions, KeySpec, Secret,
    VerifyReport,
};
use pos_core::Hlc;
use pos_store::{DataDirLock, Store, StoreError};

use crate::context::{CheckFailed, Context};
use crate::secrets::SecretInput;
use crate::timefmt;

/// The folder on a USB drive that holds exported backups.
pub const STICK_DIR: &str = "pos-backups";
/// Unfinished files (`.partial`, snapshot temp files) older than this are removed by `prune`.
const STALE_AFTER: Duration = Duration::from_secs(3600);
const PARTIAL: &str = ".partial";

const AFTER_HELP: &str = "\
Keys: --key-file FILE (made by `pos backup keygen`), else [backup] key_file, else
[backup] passphrase_file, else the passphrase is read from standard input (asked without echo,
twice for a new backup, on a terminal). Keep a copy of the key away from the box: a backup
cannot be opened without it.

Examples:
  pos backup keygen --out /etc/pos/backup.key
  pos backup create --key-file /etc/pos/backup.key
  pos backup list --verify
  pos backup verify --latest
  pos backup export --latest            # to the USB stick that is plugged in
  pos backup restore                    # the guided restore (stop the pos service first)";

#[derive(Debug, Subcommand)]
#[command(after_help = AFTER_HELP)]
pub enum BackupCommand {
    /// Make a new random backup key file (0600); keep a copy away from the box.
    Keygen {
        /// Where to write it (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Back up this device's data dir now (while it works) and verify the result.
    Create(CreateArgs),
    /// The backups in the backup dir, newest first.
    List(ListArgs),
    /// Check a backup completely (exit 1 with the problem when it does not verify).
    Verify(VerifyArgs),
    /// Remove backups the retention of [backup] no longer keeps, and stale unfinished files.
    Prune(PruneArgs),
    /// Copy backups to a USB drive, read back and compared.
    Export(ExportArgs),
    /// Copy the backups on a USB drive into the backup dir, read back and compared.
    Import(ImportArgs),
    /// Guided restore: choose a backup, check it, confirm, swap it in (stop the service first).
    Restore(RestoreArgs),
    /// Off-site copies on the SFTP server of [backup] offsite: push, list, get.
    #[command(subcommand, after_help = OFFSITE_HELP)]
    Offsite(OffsiteCommand),
}

const OFFSITE_HELP: &str = "\
The server is one the shop owns, named in the config:
  [backup] offsite = \"sftp://USER@HOST[:PORT]/DIR\"
           offsite_identity = \"/etc/pos/offsite_ed25519\"      # this box's SSH key
           offsite_known_hosts = \"/etc/pos/offsite_known_hosts\" # the server's pinned key
Make the key with `ssh-keygen -t ed25519 -N '' -f /etc/pos/offsite_ed25519`, add its .pub to
the server's authorized_keys, and pin the server's key with
`ssh-keyscan -p PORT HOST > /etc/pos/offsite_known_hosts` (compare its fingerprint with the
server's own before trusting it). Backups are encrypted before they leave the box. With an
off-site address set, every scheduled daily backup is also pushed.";

#[derive(Debug, Subcommand)]
pub enum OffsiteCommand {
    /// Copy backups to the off-site server (default: the newest in the backup dir).
    Push {
        /// Backup files to copy.
        files: Vec<PathBuf>,
    },
    /// The backups on the off-site server.
    List,
    /// Fetch a backup from the off-site server into the backup dir (then `pos backup restore`).
    Get {
        /// Its file name, as `pos backup offsite list` shows it.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Backup key file (default: [backup] key_file, else passphrase_file, else the passphrase
    /// from standard input).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// manual (never pruned), daily or hourly.
    #[arg(long, default_value = "manual", value_name = "KIND")]
    pub kind: BackupKind,
    /// Write it here instead of the backup dir.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List this directory instead of the backup dir.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// JSON array.
    #[arg(long)]
    pub json: bool,
    /// Verify each backup with the key and show the result (exit 1 if one fails).
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["file", "latest"])))]
pub struct VerifyArgs {
    /// The backup file.
    pub file: Option<PathBuf>,
    /// The newest backup of the backup dir (or of --dir).
    #[arg(long)]
    pub latest: bool,
    /// With --latest: look in this directory instead of the backup dir.
    #[arg(long, value_name = "DIR", requires = "latest")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The drive's mount point (default: the one USB drive plugged in).
    #[arg(long, value_name = "MOUNT")]
    pub to: Option<PathBuf>,
    /// The newest backup (the default when no FILE is named).
    #[arg(long, conflicts_with = "files")]
    pub latest: bool,
    /// Backup files to export.
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The drive's mount point (default: the one USB drive plugged in).
    #[arg(long, value_name = "MOUNT")]
    pub from: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore (default: choose from the backup dir and USB drives).
    pub file: Option<PathBuf>,
    /// Finish a restore that was interrupted (power cut) during the swap.
    #[arg(long, conflicts_with_all = ["file", "yes"])]
    pub resume: bool,
    /// Do not ask for confirmation (scripts; needs FILE when standard input is not a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

pub fn run(ctx: &Context, cmd: BackupCommand) -> anyhow::Result<()> {
    match cmd {
        BackupCommand::Keygen { out } => keygen(&out),
        BackupCommand::Create(a) => create(ctx, a),
        BackupCommand::List(a) => list(ctx, a),
        BackupCommand::Verify(a) => verify(ctx, a),
        BackupCommand::Prune(a) => prune(ctx, a),
        BackupCommand::Export(a) => export(ctx, a),
        BackupCommand::Import(a) => import(ctx, a),
        BackupCommand::Restore(a) => restore(ctx, a),
        BackupCommand::Offsite(c) => offsite(ctx, c),
    }
}

/// The off-site server of `[backup] offsite`, or None when none is set.
pub fn offsite_target(ctx: &Context) -> anyhow::Result<Option<SftpTarget>> {
    let b = &ctx.config.backup;
    if b.offsite.is_empty() {
        return Ok(None);
    }
    Ok(Some(SftpTarget::parse(
        &b.offsite,
        &b.offsite_identity,
        &b.offsite_known_hosts,
    )?))
}

fn offsite(ctx: &Context, cmd: OffsiteCommand) -> anyhow::Result<()> {
    let target = offsite_target(ctx)?.ok_or_else(|| {
        anyhow!(
            "no off-site server is set: set [backup] offsite, offsite_identity and \
             offsite_known_hosts in the config (see `pos backup offsite --help`)"
        )
    })?;
    let where_ = format!("{}@{}:{}", target.user, target.host, target.dir);
    match cmd {
        OffsiteCommand::Push { files } => {
            let files = if files.is_empty() {
                let newest = pos_backup::list(&backup_dir(ctx))?
                    .into_iter()
                    .next()
                    .ok_or_else(|| anyhow!("no backup to copy yet (pos backup create)"))?;
                vec![newest.path]
            } else {
                files
            };
            for f in files {
                read_header(&f)?;
                let remote = target.upload(&f)?;
                println!("Copied {} to {where_} ({remote}).", file_name(&f));
            }
        }
        OffsiteCommand::List => {
            let found = target.list()?;
            if found.is_empty() {
                println!("No backups on {where_} yet.");
            }
            for (name, bytes) in found {
                println!("{name}  {}", size(bytes));
            }
        }
        OffsiteCommand::Get { name } => {
            let dir = backup_dir(ctx);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let path = target.download(&name, &dir)?;
            read_header(&path)?;
            println!(
                "Fetched {} into {}; check it with `pos backup verify {}`, restore it with \
                 `pos backup restore {}`.",
                name,
                dir.display(),
                path.display(),
                path.display()
            );
        }
    }
    Ok(())
}

/// The backup dir: `[backup] dir`, or `DATA_DIR/backups`.
pub fn backup_dir(ctx: &Context) -> PathBuf {
    job::backup_dir(&ctx.data_dir, &ctx.config.backup.dir)
}

/// The retention of `[backup]`.
pub fn policy(ctx: &Context) -> Policy {
    let b = &ctx.config.backup;
    Policy {
        hourly: b.keep_hourly,
        daily: b.keep_daily,
        monthly: b.keep_monthly,
    }
}

// ---------------------------------------------------------------------------------------------
// keygen

fn keygen(out: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let key = BackupKey::generate()?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow!(
                "{} exists: refusing to overwrite a key (backups made with it could not be \
                 opened any more); choose another name",
                out.display()
            ),
            _ => anyhow!("cannot create {}: {e}", out.display()),
        })?;
    let written = file
        .write_all(key.to_file_text().as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(out);
        bail!("cannot write {}: {e}", out.display());
    }
    println!("Wrote a new backup key to {} (mode 0600).", out.display());
    println!(
        "Keep a copy of it away from this box (a password manager, or printed in the safe): \
         without it no backup made with it can be opened."
    );
    println!(
        "For scheduled backups set in the config: [backup] key_file = \"{}\"",
        out.display()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// keys

/// Where the key comes from, asked for at most once per passphrase.
struct Keys<'a> {
    ctx: &'a Context,
    key_file: Option<PathBuf>,
    input: Option<SecretInput>,
    passphrase: Option<String>,
}

impl<'a> Keys<'a> {
    fn new(ctx: &'a Context, args: &KeyArgs) -> Self {
        Keys {
            ctx,
            key_file: args.key_file.clone(),
            input: None,
            passphrase: None,
        }
    }

    fn input(&mut self) -> anyhow::Result<&mut SecretInput> {
        if self.input.is_none() {
            self.input = Some(SecretInput::from_stdin()?);
        }
        self.input
            .as_mut()
            .ok_or_else(|| anyhow!("standard input is not available"))
    }

    fn read_key(path: &Path) -> anyhow::Result<Secret> {
        Ok(Secret::Key(BackupKey::read_file(path)?))
    }

    fn configured_key_file(&self) -> Option<PathBuf> {
        let k = &self.ctx.config.backup.key_file;
        (!k.as_os_str().is_empty()).then(|| k.clone())
    }

    fn configured_passphrase(&self) -> anyhow::Result<Option<String>> {
        let p = &self.ctx.config.backup.passphrase_file;
        match job::unattended_secret(Path::new(""), p)
            .with_context(|| "[backup] passphrase_file".to_owned())?
        {
            Some(Secret::Passphrase(line)) => Ok(Some(line)),
            _ => Ok(None),
        }
    }

    /// The secret of a new backup.
    fn for_create(&mut self) -> anyhow::Result<Secret> {
        if let Some(k) = self.key_file.clone().or_else(|| self.configured_key_file()) {
            return Self::read_key(&k);
        }
        if let Some(p) = self.configured_passphrase()? {
            return Ok(Secret::Passphrase(p));
        }
        let input = self.input()?;
        let p = input.next("backup passphrase")?;
        if input.is_interactive() {
            let again = input.next("the same passphrase again")?;
            if again != p {
                bail!("the two passphrases differ: nothing was made, try again");
            }
        }
        if p.chars().count() < 8 {
            bail!("a backup passphrase needs at least 8 characters (or use a key file: pos backup keygen)");
        }
        Ok(Secret::Passphrase(p))
    }

    /// The secret for a backup whose header says `spec`.
    fn for_backup(&mut self, spec: &KeySpec) -> anyhow::Result<Secret> {
        match spec {
            KeySpec::KeyFile => {
                match self.key_file.clone().or_else(|| self.configured_key_file()) {
                    Some(k) => Self::read_key(&k),
                    None => bail!(
                        "this backup was made with a key file: pass it with --key-file FILE \
                     (or set [backup] key_file)"
                    ),
                }
            }
            KeySpec::Passphrase(_) => {
                if let Some(p) = self.configured_passphrase()? {
                    return Ok(Secret::Passphrase(p));
                }
                if self.passphrase.is_none() {
                    let p = self.input()?.next("backup passphrase")?;
                    self.passphrase = Some(p);
                }
                Ok(Secret::Passphrase(
                    self.passphrase.clone().unwrap_or_default(),
                ))
            }
        }
    }

    /// After a wrong passphrase: ask again next time.
    fn forget_passphrase(&mut self) {
        self.passphrase = None;
    }
}

/// A backup error as the user should read it: a check that said no is exit 1 with what to do.
fn explain(e: BackupError, file: &Path) -> anyhow::Error {
    let name = file.display();
    match e {
        BackupError::Damaged { .. } | BackupError::Contents(_) => CheckFailed(format!(
            "{name}: {e}. This copy cannot be restored: use another backup or another copy of \
             it (pos backup list --verify)"
        ))
        .into(),
        BackupError::Truncated { .. } => CheckFailed(format!(
            "{name}: {e}. The file is cut short (an interrupted copy?): copy it again from where \
             it came from, or use another backup"
        ))
        .into(),
        BackupError::WrongKey
        | BackupError::WrongSecretKind(_)
        | BackupError::NotABackup
        | BackupError::UnsupportedVersion(_)
        | BackupError::SchemaTooNew { .. } => CheckFailed(format!("{name}: {e}")).into(),
        BackupError::Store(StoreError::Locked { .. }) => anyhow!(
            "{e}. Stop the pos service first (systemctl stop pos), then run this again: \
             nothing was changed"
        ),
        other => anyhow!("{name}: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// progress

/// A progress bar per phase on a terminal; one line per phase otherwise (logs, pipes, tests).
pub struct Bar {
    tty: bool,
    phase: String,
    bar: Option<ProgressBar>,
}

impl Bar {
    pub fn new() -> Self {
        Bar {
            tty: std::io::stderr().is_terminal(),
            phase: String::new(),
            bar: None,
        }
    }

    pub fn update(&mut self, phase: &str, done: u64, total: u64) {
        if phase != self.phase {
            self.finish();
            self.phase = phase.to_owned();
            if self.tty {
                let bar = if total > 0 {
                    let style = ProgressStyle::with_template(
                        "{msg:22} [{bar:32}] {bytes:>10}/{total_bytes:10} {eta}",
                    )
                    .map(|s| s.progress_chars("=> "))
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                    ProgressBar::new(total).with_style(style)
                } else {
                    let bar = ProgressBar::new_spinner();
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                };
                bar.set_message(phase.to_owned());
                self.bar = Some(bar);
            } else {
                eprintln!("  {phase}...");
            }
        }
        if let Some(bar) = &self.bar {
            if total > 0 {
                bar.set_length(total);
            }
            bar.set_position(done);
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

// ---------------------------------------------------------------------------------------------
// create, list, verify

fn create(ctx: &Context, args: CreateArgs) -> anyhow::Result<()> {
    let dir = args.to.clone().unwrap_or_else(|| backup_dir(ctx));
    let mut keys = Keys::new(ctx, &args.key);
    let secret = keys.for_create()?;
    let options = CreateOptions {
        kind: args.kind,
        ..CreateOptions::default()
    };
    eprintln!(
        "Backing up {} into {}",
        ctx.data_dir.display(),
        dir.display()
    );
    let mut bar = Bar::new();
    let made = pos_backup::create(
        &ctx.data_dir,
        &dir,
        &secret,
        &options,
        &mut |p: &str, d, t| bar.update(p, d, t),
    )
    .map_err(|e| {
        anyhow!(
            "cannot back up {} into {}: {e}",
            ctx.data_dir.display(),
            dir.display()
        )
    })?;
    bar.finish();
    println!(
        "Backup written: {} ({})",
        made.path.display(),
        size(made.bytes)
    );
    // Unpacked on the local disk even when --to is a USB stick.
    let scratch = scratch_dir(ctx)?;
    let checked = pos_backup::verify(&made.path, &secret, &scratch, &mut |p: &str, d, t| {
        bar.update(&format!("verify: {p}"), d, t)
    });
    bar.finish();
    match checked {
        Ok(report) => {
            println!(
                "Verified: it opens with this key, {} files match the manifest, {} audit \
                 chain(s) check out.",
                report.manifest.files.len(),
                report.chains.len()
            );
            Ok(())
        }
        Err(e) => {
            // Not listed any more: a backup that failed its own check must not be chosen.
            // `.failed`, as the scheduled job names them.
            let aside = PathBuf::from(format!("{}.failed", made.path.display()));
            let _ = std::fs::rename(&made.path, &aside);
            Err(CheckFailed(format!(
                "the new backup does not verify: {e}. It was moved aside to {} (not listed). \
                 Check the disk (dmesg) and run pos backup create again",
                aside.display()
            ))
            .into())
        }
    }
}

fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| backup_dir(ctx));
    let backups = pos_backup::list(&dir).map_err(|e| explain(e, &dir))?;
    let mut statuses: Vec<Option<Result<VerifyReport, String>>> = vec![None; backups.len()];
    let mut failed = 0;
    if args.verify && !backups.is_empty() {
        let mut keys = Keys::new(ctx, &args.key);
        let scratch = scratch_dir(ctx)?;
        for (b, status) in backups.iter().zip(statuses.iter_mut()) {
            let result = check(&mut keys, b, &scratch);
            if result.is_err() {
                failed += 1;
            }
            *status = Some(result);
        }
    }
    if args.json {
        let rows: Vec<serde_json::Value> = backups
            .iter()
            .zip(&statuses)
            .map(|(b, s)| {
                let mut v = backup_json(b);
                if let Some(s) = s {
                    v["verified"] = serde_json::Value::Bool(s.is_ok());
                    if let Err(e) = s {
                        v["problem"] = serde_json::Value::String(e.clone());
                    }
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if backups.is_empty() {
        println!("No backups in {}", dir.display());
    } else {
        println!("Backups in {}:", dir.display());
        for (b, s) in backups.iter().zip(&statuses) {
            println!("  {}", row(b, s.as_ref()));
            if let Some(Err(e)) = s {
                println!("      {e}");
            }
        }
    }
    if failed > 0 {
        return Err(CheckFailed(format!("{failed} backup(s) do not verify")).into());
    }
    Ok(())
}

fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<()> {
    let file = match (&args.file, args.latest) {
        (Some(f), _) => f.clone(),
        (None, _) => {
            let dir = args.dir.clone().unwrap_or_else(|| backup_dir(ctx));
            let all = pos_backup::list(&dir).map_err(|e| explain(e, &dir))?;
            match all.into_iter().next() {
                Some(b) => b.path,
                None => bail!(
                    "no backups in {} (make one: pos backup create)",
                    dir.display()
                ),
            }
        }
    };
    let header = read_header(&file)?;
    let mut keys = Keys::new(ctx, &args.key);
    let secret = keys.for_backup(&header.key)?;
    let scratch = scratch_dir(ctx)?;
    let mut bar = Bar::new();
    let report = pos_backup::verify(&file, &secret, &scratch, &mut |p: &str, d, t| {
        bar.update(p, d, t)
    })
    .map_err(|e| explain(e, &file))?;
    bar.finish();
    println!("OK {}", file.display());
    print!("{}", describe(&report));
    Ok(())
}

/// Verify one listed backup; the error as a line of text.
fn check(keys: &mut Keys<'_>, b: &BackupFile, scratch: &Path) -> Result<VerifyReport, String> {
    let secret = keys
        .for_backup(&b.header.key)
        .map_err(|e| format!("{e:#}"))?;
    let mut bar = Bar::new();
    let result = pos_backup::verify(&b.path, &secret, scratch, &mut |p: &str, d, t| {
        bar.update(p, d, t)
    });
    bar.finish();
    result.map_err(|e| {
        if matches!(e, BackupError::WrongKey) {
            keys.forget_passphrase();
        }
        e.to_string()
    })
}

/// Where verification unpacks (a local disk, not the USB stick): the backup dir.
fn scratch_dir(ctx: &Context) -> anyhow::Result<PathBuf> {
    let dir = backup_dir(ctx);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the backup dir {}", dir.display()))?;
    Ok(dir)
}

fn read_header(file: &Path) -> anyhow::Result<pos_backup::Header> {
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    pos_backup::read_header(&mut BufReader::new(f))
        .map(|(h, _)| h)
        .map_err(|e| explain(e, file))
}

fn local_time(ms: u64) -> String {
    timefmt::local(Hlc::from_parts(ms, 0))
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn row(b: &BackupFile, status: Option<&Result<VerifyReport, String>>) -> String {
    let status = match status {
        None => String::new(),
        Some(Ok(_)) => "  verified".into(),
        Some(Err(_)) => "  FAILED".into(),
    };
    format!(
        "{}  {:<14} {:<7} {:>9}  {}{status}",
        local_time(b.header.created_ms),
        b.header.device.name,
        b.header.kind,
        size(b.bytes),
        file_name(&b.path),
    )
}

fn backup_json(b: &BackupFile) -> serde_json::Value {
    let h = &b.header;
    serde_json::json!({
        "file": b.path.display().to_string(),
        "created_ms": h.created_ms,
        "created": timefmt::utc(Hlc::from_parts(h.created_ms, 0)),
        "kind": h.kind.as_str(),
        "device": h.device.name,
        "device_id": h.device.id,
        "role": h.device.role,
        "branch": h.device.branch,
        "bytes": b.bytes,
        "key": match h.key { KeySpec::KeyFile => "key_file", KeySpec::Passphrase(_) => "passphrase" },
    })
}

/// What a verified backup holds.
fn describe(r: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let h = &r.header;
    let m = &r.manifest;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  device   {} ({}, branch {}, id {})",
        h.device.name, h.device.role, h.device.branch, h.device.id
    );
    let _ = writeln!(out, "  made     {} ({})", local_time(h.created_ms), h.kind);
    let _ = writeln!(
        out,
        "  size     {} file, {} segment(s), database schema {}, by {}",
        size(r.file_bytes),
        m.segments.len(),
        m.schema_version,
        m.made_by
    );
    let files: Vec<String> = m
        .files
        .iter()
        .map(|f| format!("{} {}", f.path, size(f.bytes)))
        .collect();
    let _ = writeln!(out, "  files    {}", files.join(", "));
    for c in &r.chains {
        let _ = writeln!(
            out,
            "  chain    {}: {} records, last seq {}",
            c.origin, c.records, c.seq
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// prune

fn prune(ctx: &Context, args: PruneArgs) -> anyhow::Result<()> {
    let dir = backup_dir(ctx);
    let device = Store::read_identity(&ctx.data_dir)
        .with_context(|| "prune keeps this device's backups by its identity")?
        .id
        .to_string();
    let outcome = prune_dir(&dir, &device, &policy(ctx), args.dry_run)?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for (b, reason) in &outcome.kept {
        println!("keep    {}  ({})", row(b, None), reason_text(*reason));
    }
    for b in &outcome.removed {
        println!("{verb:<7} {}", row(b, None));
    }
    for p in &outcome.stale {
        println!("{verb:<7} {} (unfinished, older than an hour)", p.display());
    }
    for b in &outcome.others {
        println!("leave   {}  (another device's)", row(b, None));
    }
    println!(
        "{} kept, {} {verb}, {} stale unfinished file(s) {verb}, {} of other devices left \
         alone{}",
        outcome.kept.len(),
        outcome.removed.len(),
        outcome.stale.len(),
        outcome.others.len(),
        if args.dry_run {
            " (dry run: nothing removed)"
        } else {
            ""
        }
    );
    Ok(())
}

fn reason_text(r: Reason) -> &'static str {
    match r {
        Reason::Newest => "the newest",
        Reason::Manual => "manual",
        Reason::Hour => "hourly",
        Reason::Day => "daily",
        Reason::Month => "monthly",
    }
}

/// What [`prune_dir`] kept and removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub kept: Vec<(BackupFile, Reason)>,
    pub removed: Vec<BackupFile>,
    pub stale: Vec<PathBuf>,
    /// Backups of other devices (imported, a shared dir): never pruned here.
    pub others: Vec<BackupFile>,
}

/// Apply `policy` to `device`'s backups in `dir` (never the newest, never manual ones; other
/// devices' backups are left alone, as the scheduled job does) and remove unfinished files
/// older than an hour; with `dry_run`, only say so.
pub fn prune_dir(
    dir: &Path,
    device: &str,
    policy: &Policy,
    dry_run: bool,
) -> anyhow::Result<Pruned> {
    let others = pos_backup::list(dir)
        .map_err(|e| explain(e, dir))?
        .into_iter()
        .filter(|b| b.header.device.id != device)
        .collect();
    let (backups, entries): (Vec<BackupFile>, Vec<Entry>) = job::own_backups(dir, device)
        .map_err(|e| explain(e, dir))?
        .into_iter()
        .unzip();
    let offset_ms = job::local_offset_ms(pos_store::now_ms());
    let decisions = retention::decide(&entries, policy, offset_ms);
    let mut out = Pruned {
        others,
        ..Pruned::default()
    };
    for (b, d) in backups.into_iter().zip(decisions) {
        match d {
            Some(reason) => out.kept.push((b, reason)),
            None => {
                if !dry_run {
                    std::fs::remove_file(&b.path)
                        .with_context(|| format!("cannot remove {}", b.path.display()))?;
                }
                out.removed.push(b);
            }
        }
    }
    out.stale = job::stale_leftovers(dir, STALE_AFTER);
    if !dry_run {
        for p in &out.stale {
            std::fs::remove_file(p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
        if !out.removed.is_empty() || !out.stale.is_empty() {
            File::open(dir).and_then(|d| d.sync_all())?;
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// USB: export, import

/// The drive to use: `given`, else the only USB drive, else ask (on a terminal) or refuse.
fn choose_drive(given: Option<PathBuf>, flag: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        if !p.is_dir() {
            bail!("{} is not a directory (is the drive mounted?)", p.display());
        }
        return Ok(p);
    }
    let drives = usb::drives();
    match drives.len() {
        0 => bail!(
            "no USB drive found: plug in a stick (it is mounted by itself) and try again, or \
             name the directory with {flag} DIR"
        ),
        1 => {
            let d = &drives[0];
            eprintln!("Using the USB drive {} at {}", d.label, d.mount.display());
            Ok(d.mount.clone())
        }
        _ => {
            let mut text = String::from("several USB drives are plugged in:\n");
            for (i, d) in drives.iter().enumerate() {
                text.push_str(&format!(
                    "  {}. {} at {} ({} free)\n",
                    i + 1,
                    d.label,
                    d.mount.display(),
                    d.free_bytes.map(size).unwrap_or_else(|| "?".into())
                ));
            }
            if !std::io::stdin().is_terminal() {
                bail!("{text}choose one with {flag} MOUNT");
            }
            print!("{text}");
            let n = ask_number("Which drive? (number, q to cancel)", drives.len())?;
            match n {
                Some(i) => Ok(drives[i].mount.clone()),
                None => bail!("cancelled: nothing was copied"),
            }
        }
    }
}

fn export(ctx: &Context, args: ExportArgs) -> anyhow::Result<()> {
    let sources: Vec<PathBuf> = if args.files.is_empty() {
        let dir = backup_dir(ctx);
        match pos_backup::list(&dir)
            .map_err(|e| explain(e, &dir))?
            .into_iter()
            .next()
        {
            Some(b) => vec![b.path],
            None => bail!(
                "no backups in {} (make one: pos backup create)",
                dir.display()
            ),
        }
    } else {
        for f in &args.files {
            read_header(f)?;
        }
        args.files.clone()
    };
    let mount = choose_drive(args.to, "--to")?;
    let dest = mount.join(STICK_DIR);
    std::fs::create_dir_all(&dest).map_err(|e| write_error(e, &dest, "create"))?;
    let copied = copy_all(&sources, &dest)?;
    println!(
        "{} backup(s) on the drive in {}, each read back and compared with the original.",
        copied,
        dest.display()
    );
    println!("Unmount the drive before pulling it (the appliance's menu or `umount`).");
    Ok(())
}

fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let mount = choose_drive(args.from, "--from")?;
    let mut found = Vec::new();
    for dir in [mount.join(STICK_DIR), mount.clone()] {
        for b in pos_backup::list(&dir).map_err(|e| explain(e, &dir))? {
            found.push(b.path);
        }
    }
    if found.is_empty() {
        bail!(
            "no backups on the drive at {} (looked in {} and its top folder)",
            mount.display(),
            STICK_DIR
        );
    }
    let dest = backup_dir(ctx);
    std::fs::create_dir_all(&dest)
        .with_context(|| format!("cannot create the backup dir {}", dest.display()))?;
    let copied = copy_all(&found, &dest)?;
    println!(
        "{copied} backup(s) in {}, each read back and compared with the drive's copy. Check \
         that they open with the key: pos backup list --verify",
        dest.display()
    );
    Ok(())
}

/// Copy `sources` into `dest` carefully; files already there (same content) are skipped.
/// Returns how many are in `dest` afterwards.
fn copy_all(sources: &[PathBuf], dest: &Path) -> anyhow::Result<usize> {
    let mut todo = Vec::new();
    let mut present = 0;
    for src in sources {
        let target = dest.join(file_name(src));
        if target.exists() {
            if hash_file(&target)? == hash_file(src)? {
                println!("already there: {}", file_name(src));
                present += 1;
                continue;
            }
            bail!(
                "{} exists and differs from {}: remove or rename one of them first",
                target.display(),
                src.display()
            );
        }
        todo.push(src.clone());
    }
    let need: u64 = todo
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    if let Some(free) = usb::free_bytes(dest) {
        // A little room for the file system's own blocks.
        if free < need + (1 << 20) && !todo.is_empty() {
            bail!(
                "{} has {} free but the backup(s) need {}: free space there, use a bigger \
                 drive, or copy fewer (--latest). Nothing was copied",
                dest.display(),
                size(free),
                size(need)
            );
        }
    }
    let mut bar = Bar::new();
    for src in &todo {
        let to = copy_verified(src, dest, &mut |p: &str, d, t| bar.update(p, d, t))?;
        bar.finish();
        println!("copied: {}", to.display());
    }
    Ok(present + todo.len())
}

/// A destination a copy can be synced to disk.
trait Sink: Write {
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Sink for File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_all()
    }
}

/// Copy `src` into `dir`: `NAME.partial`, synced, renamed, `dir` synced, read back from the
/// disk and compared with what was read from `src`. On any failure the unfinished copy is
/// removed (if the drive is still there) and `src` is never touched.
pub fn copy_verified(
    src: &Path,
    dir: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> anyhow::Result<PathBuf> {
    copy_verified_with(
        src,
        dir,
        |p| OpenOptions::new().write(true).create_new(true).open(p),
        progress,
    )
}

fn copy_verified_with<S: Sink>(
    src: &Path,
    dir: &Path,
    open: impl FnOnce(&Path) -> std::io::Result<S>,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> anyhow::Result<PathBuf> {
    let name = file_name(src);
    let target = dir.join(&name);
    let partial = dir.join(format!("{name}{PARTIAL}"));
    let mut input = File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    // A `.partial` of an earlier attempt that died: never listed, replaced now.
    let _ = std::fs::remove_file(&partial);
    let phase = format!("copy {name}");
    let mut out = open(&partial).map_err(|e| write_error(e, dir, "create"))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    let written: anyhow::Result<()> = (|| {
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(anyhow!(
                        "cannot read {}: {e} (the source is unchanged)",
                        src.display()
                    ))
                }
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| write_error(e, dir, "write"))?;
            done += n as u64;
            progress(&phase, done, total);
        }
        out.flush().map_err(|e| write_error(e, dir, "write"))?;
        out.sync().map_err(|e| write_error(e, dir, "write"))?;
        Ok(())
    })();
    drop(out);
    if let Err(e) = written {
        return Err(e.context(cleanup(&partial)));
    }
    std::fs::rename(&partial, &target)
        .map_err(|e| write_error(e, dir, "rename").context(cleanup(&partial)))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| write_error(e, dir, "sync"))?;
    // Read back from the device, not the page cache.
    progress(&format!("read back {name}"), 0, total);
    let back = read_back(&target).map_err(|e| {
        let _ = std::fs::remove_file(&target);
        write_error(e, dir, "read back")
    })?;
    if back != hasher.finalize() {
        let _ = std::fs::remove_file(&target);
        bail!(
            "the copy on {} reads back different from {}: the drive may be failing; the copy \
             was removed (try another drive)",
            dir.display(),
            src.display()
        );
    }
    Ok(target)
}

/// Remove an unfinished copy; what happened, as context for the error.
fn cleanup(partial: &Path) -> String {
    match std::fs::remove_file(partial) {
        Ok(()) => "the unfinished copy was removed; the source is untouched".into(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "no unfinished copy is left; the source is untouched".into()
        }
        Err(_) => format!(
            "the unfinished copy {} could not be removed (it is never listed: remove it when \
             the drive is back); the source is untouched",
            partial.display()
        ),
    }
}

/// A failed write to `dir` in words: a full drive, a file too large for FAT, a pulled stick.
fn write_error(e: std::io::Error, dir: &Path, doing: &str) -> anyhow::Error {
    let d = dir.display();
    match e.raw_os_error() {
        Some(28) | Some(122) => anyhow!(
            "the drive holding {d} is full ({doing}: {e}): free space on it or use a bigger one"
        ),
        _ if e.kind() == std::io::ErrorKind::StorageFull => anyhow!(
            "the drive holding {d} is full ({doing}: {e}): free space on it or use a bigger one"
        ),
        Some(27) => anyhow!(
            "the file is too large for the file system at {d} ({e}): FAT32 holds at most 4 GB \
             per file, format the stick as exFAT or ext4"
        ),
        Some(5) | Some(6) | Some(19) | Some(2) | Some(108) => anyhow!(
            "the drive at {d} failed or went away during {doing} ({e}): was it pulled out? \
             Plug it in again and repeat"
        ),
        Some(30) => anyhow!("the drive at {d} is read-only ({e}): check its write-protect switch"),
        _ => anyhow!("cannot {doing} in {d}: {e}"),
    }
}

/// blake3 of `path` as read from the disk (the page cache dropped first, where it can be).
fn read_back(path: &Path) -> std::io::Result<blake3::Hash> {
    let f = File::open(path)?;
    let _ = nix::fcntl::posix_fadvise(
        std::os::fd::AsRawFd::as_raw_fd(&f),
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(f)?;
    Ok(hasher.finalize())
}

fn hash_file(path: &Path) -> anyhow::Result<blake3::Hash> {
    let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(f)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(hasher.finalize())
}

// ---------------------------------------------------------------------------------------------
// restore

/// A backup the wizard offers.
struct Candidate {
    file: BackupFile,
    place: String,
    status: Option<Result<VerifyReport, String>>,
}

fn restore(ctx: &Context, args: RestoreArgs) -> anyhow::Result<()> {
    let data_dir = ctx.data_dir.clone();
    let mut bar = Bar::new();
    if args.resume {
        let finished =
            pos_backup::restore::resume(&data_dir, &mut |p: &str, d, t| bar.update(p, d, t))
                .map_err(|e| explain(e, &data_dir))?;
        bar.finish();
        if finished {
            println!(
                "The interrupted restore into {} is finished. Start the pos service again.",
                data_dir.display()
            );
        } else {
            println!(
                "No interrupted restore in {}: nothing to do.",
                data_dir.display()
            );
        }
        return Ok(());
    }
    let interactive = std::io::stdin().is_terminal();
    if !interactive && (args.file.is_none() || !args.yes) {
        bail!(
            "pos backup restore asks its questions on a terminal; from a script pass the backup \
             FILE and --yes (the passphrase on standard input, or --key-file FILE)"
        );
    }
    ensure_not_running(&data_dir)?;
    let mut keys = Keys::new(ctx, &args.key);

    // 1. Which backup.
    let (chosen, report) = match &args.file {
        Some(f) => {
            let header = read_header(f)?;
            let bytes = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            let file = BackupFile {
                path: f.clone(),
                header,
                bytes,
            };
            if args.yes {
                (file, None)
            } else {
                let scratch = scratch_dir(ctx)?;
                match check(&mut keys, &file, &scratch) {
                    Ok(r) => (file, Some(r)),
                    Err(e) => {
                        return Err(CheckFailed(format!(
                            "{}: {e}. Nothing was changed",
                            f.display()
                        ))
                        .into())
                    }
                }
            }
        }
        None => match choose_backup(ctx, &mut keys)? {
            Some((file, report)) => (file, Some(report)),
            None => {
                println!("Cancelled: nothing was changed.");
                return Ok(());
            }
        },
    };

    // 2. What it holds and what will happen.
    if let Some(r) = &report {
        println!("\nBackup {} verified:", chosen.path.display());
        print!("{}", describe(r));
    }
    let h = &chosen.header;
    println!("\nWhat happens:");
    match Store::read_identity(&data_dir) {
        Ok(current) => {
            println!(
                "  the data in {} (device {}, {}) is replaced by the backup's;",
                data_dir.display(),
                current.name,
                current.role
            );
            println!(
                "  it is kept in {}/pre-restore-<time> (nothing is deleted).",
                data_dir.display()
            );
            if current.id.to_string() != h.device.id {
                println!(
                    "  NOTE: the backup is of another device ({} {}) than this data dir's ({} \
                     {}).",
                    h.device.name, h.device.id, current.name, current.id
                );
            }
        }
        Err(_) => println!(
            "  {} holds no device yet: the backup's device {} is restored there.",
            data_dir.display(),
            h.device.name
        ),
    }
    println!("  The backup is unpacked and checked again first; any failure changes nothing.");

    // 3. Confirm.
    if !args.yes {
        let typed = crate::prompt::ask(&format!(
            "Type the device name {:?} to restore it (anything else cancels)",
            h.device.name
        ))?;
        if typed.trim() != h.device.name {
            println!("Cancelled: nothing was changed.");
            return Ok(());
        }
    }

    // 4. Restore.
    let secret = keys.for_backup(&h.key)?;
    let done = pos_backup::restore(&chosen.path, &secret, &data_dir, &mut |p: &str, d, t| {
        bar.update(p, d, t)
    })
    .map_err(|e| explain(e, &chosen.path))?;
    bar.finish();
    println!(
        "\nRestored {} into {}: device {}, made {}.",
        file_name(&chosen.path),
        data_dir.display(),
        done.report.header.device.name,
        local_time(done.report.header.created_ms)
    );
    match &done.previous {
        Some(p) => println!(
            "The previous data is kept in {} (remove it once the device works again).",
            p.display()
        ),
        None => println!("The data dir was empty before: nothing was kept aside."),
    }
    println!("Next: start the pos service (systemctl start pos).");
    if done.report.header.device.role == "hub" {
        println!(
            "Terminals reconnect by themselves and resend what the hub lacks since the backup."
        );
    } else {
        println!("The terminal reconnects to the hub by itself; check pos hub devices list there.");
    }
    Ok(())
}

/// Refuse early when the service holds the data dir (and point at `--resume` after a cut).
fn ensure_not_running(data_dir: &Path) -> anyhow::Result<()> {
    if !data_dir.is_dir() {
        return Ok(());
    }
    match DataDirLock::acquire(data_dir) {
        Ok(lock) => drop(lock),
        Err(e @ StoreError::Locked { .. }) => bail!(
            "{e}. Stop the pos service first (systemctl stop pos), then run this again: \
             nothing was changed"
        ),
        Err(e) => return Err(e.into()),
    }
    if data_dir.join("restore.journal").exists() {
        bail!(
            "an earlier restore into {} was interrupted: finish it first with \
             pos backup restore --resume",
            data_dir.display()
        );
    }
    Ok(())
}

/// The backups in the backup dir and on USB drives, numbered; the chosen one verified.
fn choose_backup(
    ctx: &Context,
    keys: &mut Keys<'_>,
) -> anyhow::Result<Option<(BackupFile, VerifyReport)>> {
    let local = backup_dir(ctx);
    let mut found: Vec<Candidate> = Vec::new();
    let mut places = vec![(local.clone(), "backup dir".to_owned())];
    for d in usb::drives() {
        places.push((d.mount.join(STICK_DIR), format!("USB {}", d.label)));
        places.push((d.mount.clone(), format!("USB {}", d.label)));
    }
    for (dir, place) in places {
        for file in pos_backup::list(&dir).unwrap_or_default() {
            found.push(Candidate {
                file,
                place: place.clone(),
                status: None,
            });
        }
    }
    found.sort_by_key(|c| std::cmp::Reverse(c.file.header.created_ms));
    if found.is_empty() {
        bail!(
            "no backups in {} or on a USB drive: plug in the stick with the backups, or name \
             the file: pos backup restore FILE",
            local.display()
        );
    }
    let scratch = scratch_dir(ctx)?;
    loop {
        println!("\nBackups found (newest first):");
        for (i, c) in found.iter().enumerate() {
            let status = match &c.status {
                None => "not checked yet",
                Some(Ok(_)) => "verified",
                Some(Err(_)) => "FAILED",
            };
            let h = &c.file.header;
            println!(
                "  {:>2}. {}  {:<14} {:<7} {:>9}  {:<16} {status}",
                i + 1,
                local_time(h.created_ms),
                h.device.name,
                h.kind,
                size(c.file.bytes),
                c.place,
            );
        }
        let Some(i) = ask_number("Which backup? (number, q to cancel)", found.len())? else {
            return Ok(None);
        };
        let c = &mut found[i];
        println!("Checking {} ...", c.file.path.display());
        let result = check(keys, &c.file, &scratch);
        match &result {
            Ok(r) => {
                let r = r.clone();
                c.status = Some(result);
                return Ok(Some((c.file.clone(), r)));
            }
            Err(e) => {
                println!("It does not verify: {e}\nChoose another one (or the same again with another passphrase).");
                c.status = Some(result);
            }
        }
    }
}

/// A number 1..=max as an index, or None for `q`.
fn ask_number(prompt: &str, max: usize) -> anyhow::Result<Option<usize>> {
    loop {
        let a = crate::prompt::ask(prompt)?;
        if a.eq_ignore_ascii_case("q") {
            return Ok(None);
        }
        match a.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => return Ok(Some(n - 1)),
            _ => println!("Type a number from 1 to {max}, or q."),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Writes into a real file until `room` bytes, then fails like a full disk.
    struct FullAfter {
        file: File,
        room: usize,
        errno: i32,
    }

    impl Write for FullAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(self.errno));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.file.write(&buf[..n])
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    impl Sink for FullAfter {
        fn sync(&mut self) -> std::io::Result<()> {
            self.file.sync_all()
        }
    }

    fn source(dir: &Path) -> (PathBuf, Vec<u8>) {
        let src = dir.join("pos-till-20261125T100000.000Z-manual.3pbak");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &bytes).unwrap();
        (src, bytes)
    }

    fn copy_failing(errno: i32) -> (String, tempfile::TempDir, PathBuf, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let (src, bytes) = source(dir.path());
        let stick = dir.path().join("stick");
        std::fs::create_dir(&stick).unwrap();
        let err = copy_verified_with(
            &src,
            &stick,
            |p| {
                Ok(FullAfter {
                    file: File::create(p).unwrap(),
                    room: 1_500_000,
                    errno,
                })
            },
            &mut |_, _, _| {},
        )
        .unwrap_err();
        (format!("{err:#}"), dir, stick, bytes)
    }

    #[test]
    fn a_full_stick_is_named_the_partial_removed_the_source_untouched() {
        let (err, dir, stick, bytes) = copy_failing(28);
        assert!(err.contains("is full"), "{err}");
        assert!(err.contains("unfinished copy was removed"), "{err}");
        assert_eq!(std::fs::read_dir(&stick).unwrap().count(), 0, "{err}");
        let src = dir
            .path()
            .join("pos-till-20261125T100000.000Z-manual.3pbak");
        assert_eq!(std::fs::read(src).unwrap(), bytes);
    }

    #[test]
    fn a_pulled_stick_says_so() {
        let (err, _dir, stick, _) = copy_failing(5);
        assert!(err.contains("pulled out"), "{err}");
        assert_eq!(std::fs::read_dir(&stick).unwrap().count(), 0, "{err}");
        let (err, _dir, _, _) = copy_failing(27);
        assert!(err.contains("FAT32"), "{err}");
    }

    #[test]
    fn a_copy_is_renamed_and_equal() {
        let dir = tempfile::tempdir().unwrap();
        let (src, bytes) = source(dir.path());
        let stick = dir.path().join("stick");
        std::fs::create_dir(&stick).unwrap();
        // A stale partial of an earlier attempt is replaced.
        std::fs::write(stick.join(format!("{}{PARTIAL}", file_name(&src))), b"junk").unwrap();
        let mut phases = Vec::new();
        let to = copy_verified(&src, &stick, &mut |p, _, _| phases.push(p.to_owned())).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), bytes);
        assert_eq!(std::fs::read_dir(&stick).unwrap().count(), 1);
        assert!(phases.iter().any(|p| p.starts_with("read back")));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(999), "999 B");
        assert_eq!(size(1_500), "1.5 KB");
        assert_eq!(size(12_300_000), "12.3 MB");
    }
}

//! `pos update verify|apply|status|health|pre-install-check`: signed A/B system updates through
//! RAUC (issue 11). RAUC checks signatures, writes the other slot and drives GRUB's boot
//! counting; the rules about which bundle may go on (made for this box, strictly newer) and
//! whether a trial boot is healthy are in `pos-update`. This file runs the programs.
//!
//! The image provides /etc/rauc/system.conf (compatible `3plugpos-x86_64`, slots rootfs.0 = A
//! and rootfs.1 = B, bootloader grub), the keyring /etc/rauc/keyring.pem, `IMAGE_VERSION=` in
//! /etc/os-release, a pre-install handler script that runs `pos update pre-install-check`, and a
//! oneshot unit that runs `pos update health` after boot with its stdout on the console.

use std::io::{BufRead as _, BufReader, IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::{ArgGroup, Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use pos_backup::usb;
use pos_update::bundle::{self, RunningImage};
use pos_update::health::{self, HealthCheck, Problem, UnitFacts, Verdict};
use pos_update::rauc::{self, BundleInfo, InfoFailure, InstallLine, SystemStatus};
use pos_update::{Version, COMPATIBLE};

use crate::context::{CheckFailed, Context};

const KEYRING: &str = "/etc/rauc/keyring.pem";

/// The one message for a bundle whose signature RAUC refused, or that is damaged: the person
/// at the box needs to know not to install it, not which OpenSSL routine complained.
pub const BAD_SIGNATURE: &str = "the bundle's signature does not match this shop's update key: \
it was not made by your 3PlugPOS supplier, or it is damaged; do not install it";

const AFTER_HELP: &str = "\
An update is a signed RAUC bundle (*.raucb) from your 3PlugPOS supplier. It is written into the
other system slot (A or B) while this one keeps selling; the next restart boots it on trial.
After that boot, `pos update health` watches the till or hub service: when it runs steadily the
new system becomes permanent, otherwise the box marks it bad and restarts into the previous one
by itself. Only newer versions are accepted, also by a plain `rauc install`.

Exit codes: 0 ok · 1 refused (signature, wrong box, not newer) or unhealthy · 2 other errors.

Examples:
  pos update verify /media/usb/3plugpos-1.2.4.raucb
  pos update verify --usb                 # the bundle on the USB stick that is plugged in
  sudo pos update apply --usb --reboot    # check, install into the other slot, restart
  pos update status                       # which slot runs, which boots next, versions";

#[derive(Debug, Subcommand)]
#[command(after_help = AFTER_HELP)]
pub enum UpdateCommand {
    /// Check a bundle: signature, made for this box, newer than what runs; show what it holds.
    #[command(after_help = "Examples:\n  pos update verify 3plugpos-1.2.4.raucb\n  \
                            pos update verify --usb")]
    Verify(VerifyArgs),
    /// Check and install a bundle into the other slot; it boots on trial at the next restart.
    #[command(
        after_help = "Examples:\n  sudo pos update apply /media/usb/3plugpos-1.2.4.raucb\n  \
                            sudo pos update apply --usb --yes --reboot"
    )]
    Apply(ApplyArgs),
    /// Which slot runs, which boots next, each slot's version and boot status.
    Status(StatusArgs),
    /// The trial boot's health check (run by a systemd unit after boot): mark good or roll back.
    #[command(after_help = HEALTH_HELP)]
    Health(HealthArgs),
    /// For RAUC's `[handlers] pre-install=`: refuse a bundle that is not newer (exit 1).
    #[command(after_help = PRE_INSTALL_HELP)]
    PreInstallCheck(PreInstallArgs),
}

const HEALTH_HELP: &str = "\
Healthy: the role service (pos-terminal.service or pos-hub.service, whichever systemd did not
skip; pos-setup.service before first-boot setup is done) is active, was never restarted, and
stays so for --settle seconds. Then the booted slot is marked good and exactly one line is
printed: `pos ready (slot A, version 1.2.3)`. Otherwise, by --timeout: `pos health check
failed: REASON; marking slot A bad and rebooting into the previous system` (no rollback when the
other slot is not good either). Exit 0 healthy, 1 unhealthy.

Examples:
  pos update health
  pos update health --unit pos-hub.service --settle 20 --timeout 180 --no-reboot";

const PRE_INSTALL_HELP: &str = "\
RAUC runs its pre-install handler with the bundle mounted at $RAUC_BUNDLE_MOUNT_POINT (rauc
1.8 sets no RAUC_MF_* variables for system handlers; they are used when a newer rauc sets
them). The handler is a program path without arguments, so the image uses a two-line script:
  #!/bin/sh
  exec /usr/bin/pos update pre-install-check \"$@\"";

/// The programs and files the commands read; hidden flags so tests can use fakes.
#[derive(Debug, Args)]
pub struct Tools {
    /// The rauc program.
    #[arg(long, hide = true, default_value = "rauc", value_name = "PATH")]
    pub rauc: PathBuf,
    /// Where the running image's IMAGE_VERSION is.
    #[arg(
        long,
        hide = true,
        default_value = "/etc/os-release",
        value_name = "PATH"
    )]
    pub os_release: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["bundle", "usb"])))]
pub struct BundleSource {
    /// The bundle file (*.raucb).
    pub bundle: Option<PathBuf>,
    /// Use the bundle on the USB stick that is plugged in (asks which if there are several).
    #[arg(long)]
    pub usb: bool,
    /// Look in these directories instead of the mounted USB sticks.
    #[arg(long, hide = true, value_name = "DIR")]
    pub usb_mount: Vec<PathBuf>,
    /// The keyring RAUC checks the signature against.
    #[arg(long, hide = true, default_value = KEYRING, value_name = "PEM")]
    pub keyring: PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub source: BundleSource,
    #[command(flatten)]
    pub tools: Tools,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub source: BundleSource,
    /// Do not ask before installing.
    #[arg(long)]
    pub yes: bool,
    /// Restart into the new system right after installing it.
    #[arg(long)]
    pub reboot: bool,
    #[arg(long, hide = true, default_value = "systemctl", value_name = "PATH")]
    pub systemctl: PathBuf,
    #[command(flatten)]
    pub tools: Tools,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub tools: Tools,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// A unit to watch (repeat; default: pos-terminal.service, pos-hub.service,
    /// pos-setup.service; units systemd skipped or that are not installed are left out).
    #[arg(long, value_name = "NAME")]
    pub unit: Vec<String>,
    /// Seconds the service must run without a restart.
    #[arg(long, default_value_t = 30, value_name = "S")]
    pub settle: u64,
    /// Seconds to wait for a verdict before calling the boot unhealthy.
    #[arg(long, default_value_t = 300, value_name = "S")]
    pub timeout: u64,
    /// Mark the slot bad when unhealthy, but do not restart.
    #[arg(long)]
    pub no_reboot: bool,
    #[arg(long, hide = true, default_value = "systemctl", value_name = "PATH")]
    pub systemctl: PathBuf,
    /// Where `rauc.slot=` is looked up when rauc cannot say which slot runs.
    #[arg(
        long,
        hide = true,
        default_value = "/proc/cmdline",
        value_name = "PATH"
    )]
    pub cmdline: PathBuf,
    /// How often to look, in milliseconds.
    #[arg(long, hide = true, default_value_t = 1000, value_name = "MS")]
    pub poll_ms: u64,
    #[command(flatten)]
    pub tools: Tools,
}

#[derive(Debug, Args)]
pub struct PreInstallArgs {
    /// What RAUC passes the handler (the manifest's handler args, usually empty): ignored.
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub rauc_args: Vec<String>,
    #[command(flatten)]
    pub tools: Tools,
}

pub fn run(_ctx: &Context, command: UpdateCommand) -> anyhow::Result<()> {
    match command {
        UpdateCommand::Verify(a) => {
            let bundle = resolve_bundle(&a.source)?;
            let checked = verify(&a.tools, &a.source.keyring, &bundle)?;
            println!(
                "OK: {} can be installed over {} with `pos update apply {}`.",
                checked.version,
                checked.running.version,
                bundle.display()
            );
            Ok(())
        }
        UpdateCommand::Apply(a) => apply(&a),
        UpdateCommand::Status(a) => status(&a),
        UpdateCommand::Health(a) => health(&a),
        UpdateCommand::PreInstallCheck(a) => pre_install_check(&a),
    }
}

// ---------------------------------------------------------------------------------------------
// verify

#[derive(Debug)]
struct Checked {
    version: Version,
    running: RunningImage,
}

fn running_image(tools: &Tools) -> anyhow::Result<RunningImage> {
    let path = &tools.os_release;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the running image's version from {}",
            path.display()
        )
    })?;
    bundle::parse_os_release(&text).with_context(|| {
        format!(
            "cannot read the running image's version from {}",
            path.display()
        )
    })
}

/// `rauc info` (RAUC checks the signature against the keyring), then the rule of `pos-update`.
/// Prints what the bundle holds once its signature is known good.
fn verify(tools: &Tools, keyring: &Path, bundle: &Path) -> anyhow::Result<Checked> {
    if !bundle.is_file() {
        bail!("no such bundle: {}", bundle.display());
    }
    let running = running_image(tools)?;
    let mut keyring_arg = std::ffi::OsString::from("--keyring=");
    keyring_arg.push(keyring);
    let out = run_tool(
        &tools.rauc,
        Command::new(&tools.rauc)
            .arg("info")
            .arg(keyring_arg)
            .arg("--output-format=json")
            .arg(bundle),
    )?;
    if !out.status.success() {
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let last = rauc::last_error_line(&text)
            .unwrap_or("no message")
            .to_owned();
        tracing::debug!(output = %text, "rauc info failed");
        return Err(match rauc::classify_info_failure(&text) {
            InfoFailure::BadSignature | InfoFailure::Damaged => {
                anyhow!(CheckFailed(format!("{BAD_SIGNATURE} (rauc: {last})")))
            }
            InfoFailure::NoSuchFile => anyhow!("no such bundle: {}", bundle.display()),
            InfoFailure::NoKeyring => anyhow!(
                "this box's update key {} cannot be loaded ({last}); the system image is \
                 incomplete, ask your 3PlugPOS supplier",
                keyring.display()
            ),
            InfoFailure::Other => anyhow!("rauc could not read {}: {last}", bundle.display()),
        });
    }
    let info = rauc::parse_info(&String::from_utf8_lossy(&out.stdout))?;
    print_bundle(bundle, keyring, &info, &running);
    let version = bundle::check_update(
        &running.version,
        COMPATIBLE,
        &info.compatible,
        info.version.as_deref(),
    )
    .map_err(|refusal| CheckFailed(refusal.to_string()))?;
    Ok(Checked { version, running })
}

fn print_bundle(path: &Path, keyring: &Path, info: &BundleInfo, running: &RunningImage) {
    let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "Bundle:      {} ({})",
        path.display(),
        human_bytes(file_size)
    );
    println!("Signature:   good (checked with {})", keyring.display());
    println!("Compatible:  {}", info.compatible);
    println!(
        "Version:     {} (this box runs {})",
        info.version.as_deref().unwrap_or("(none)"),
        running.version
    );
    println!("Build:       {}", info.build.as_deref().unwrap_or("-"));
    if let Some(d) = &info.description {
        println!("Description: {d}");
    }
    println!(
        "Contents:    {} for the {} slot",
        human_bytes(info.image_bytes()),
        info.slot_classes().join(" + ")
    );
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// The bundle named, or the one on a USB stick.
fn resolve_bundle(source: &BundleSource) -> anyhow::Result<PathBuf> {
    if let Some(b) = &source.bundle {
        return Ok(b.clone());
    }
    let mounts: Vec<PathBuf> = if source.usb_mount.is_empty() {
        usb::drives().into_iter().map(|d| d.mount).collect()
    } else {
        source.usb_mount.clone()
    };
    if mounts.is_empty() {
        bail!(
            "no USB stick found: plug in the stick with the update (it is mounted by itself) and \
             try again, or name the bundle file"
        );
    }
    let found = find_bundles(&mounts);
    match found.len() {
        0 => bail!(
            "no update bundle (*.raucb) on the USB stick at {}",
            mounts
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        1 => {
            eprintln!("Using {}", found[0].display());
            Ok(found[0].clone())
        }
        n => {
            let mut list = String::new();
            for (i, f) in found.iter().enumerate() {
                list.push_str(&format!("\n  {}. {}", i + 1, f.display()));
            }
            if !std::io::stdin().is_terminal() {
                bail!(
                    "several update bundles are on the USB stick:{list}\nname the one to use, \
                     e.g. `pos update verify {}`",
                    found[n - 1].display()
                );
            }
            println!("Several update bundles are on the USB stick:{list}");
            loop {
                let answer = crate::prompt::ask(&format!("Which one (1-{n}, q to stop)"))?;
                if answer.eq_ignore_ascii_case("q") {
                    bail!("nothing chosen");
                }
                match answer.parse::<usize>() {
                    Ok(i) if (1..=n).contains(&i) => return Ok(found[i - 1].clone()),
                    _ => println!("Type a number from 1 to {n}, or q."),
                }
            }
        }
    }
}

/// `*.raucb` at the top of each stick and one folder down (where people put things).
fn find_bundles(mounts: &[PathBuf]) -> Vec<PathBuf> {
    fn raucb_in(dir: &Path, depth: u8, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.filter_map(Result::ok) {
            let path = e.path();
            let hidden = e.file_name().to_string_lossy().starts_with('.');
            if path.is_dir() && depth > 0 && !hidden {
                raucb_in(&path, depth - 1, out);
            } else if path.extension().is_some_and(|x| x == "raucb") && path.is_file() {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for m in mounts {
        raucb_in(m, 1, &mut out);
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// apply

fn apply(a: &ApplyArgs) -> anyhow::Result<()> {
    if effective_uid() != Some(0) {
        bail!(
            "installing a system update needs root: run it as `sudo pos update apply ...` (or \
             from the service menu)"
        );
    }
    let bundle = resolve_bundle(&a.source)?;
    let checked = verify(&a.tools, &a.source.keyring, &bundle)?;
    let before = rauc_status(&a.tools.rauc).ok();
    let target = before
        .as_ref()
        .and_then(SystemStatus::other_slot)
        .and_then(|s| s.bootname);
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            bail!("standard input is not a terminal: add --yes to install without asking");
        }
        let slot = target.as_deref().unwrap_or("the other slot");
        let answer = crate::prompt::ask(&format!(
            "Install {} into slot {slot} now? This system keeps running meanwhile [y/N]",
            checked.version
        ))?;
        if !matches!(answer.as_str(), "y" | "Y" | "yes") {
            bail!("not installed");
        }
    }
    install(&a.tools.rauc, &bundle)?;
    // Where it went: the slot the bootloader now starts first.
    let slot = rauc_status(&a.tools.rauc)
        .ok()
        .and_then(|s| s.primary_slot())
        .and_then(|s| s.bootname)
        .or(target)
        .unwrap_or_else(|| "(the other slot)".to_owned());
    println!(
        "Installed {} into slot {slot}. It boots on trial at the next restart and becomes \
         permanent after its health check; if that fails the box returns to {} by itself.",
        checked.version, checked.running.version
    );
    if a.reboot {
        println!("Restarting now.");
        let out = run_tool(&a.systemctl, Command::new(&a.systemctl).arg("reboot"))?;
        if !out.status.success() {
            bail!(
                "`systemctl reboot` failed ({}); restart the box by hand",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    } else {
        println!("Restart the box to start it: `systemctl reboot`.");
    }
    Ok(())
}

/// The effective user id, from /proc/self/status (`Uid: real effective saved fs`): nix's
/// `geteuid` needs a feature the workspace does not enable.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `rauc install BUNDLE`, its progress lines into a bar (or copied as lines when stderr is not
/// a terminal: logs and tests).
fn install(rauc_path: &Path, bundle: &Path) -> anyhow::Result<()> {
    let mut child = Command::new(rauc_path)
        .arg("install")
        .arg(bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {} (is rauc installed?)", rauc_path.display()))?;
    let mut stderr = child.stderr.take().context("no stderr pipe")?;
    // Read stderr beside stdout so neither pipe can fill up and stall rauc.
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let style = ProgressStyle::with_template("{bar:40} {pos:>3}% {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        Some(ProgressBar::new(100).with_style(style))
    } else {
        None
    };
    let mut last_error = None;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("cannot read rauc's output")?;
        match rauc::parse_install_line(&line) {
            InstallLine::Progress { percent, message } => match &bar {
                Some(b) => {
                    b.set_position(u64::from(percent));
                    b.set_message(message.to_owned());
                }
                None => eprintln!("  {percent:>3}% {message}"),
            },
            InstallLine::LastError(e) => last_error = Some(e.to_owned()),
            InstallLine::Other(o) => tracing::debug!(line = o, "rauc install"),
        }
    }
    let status = child.wait().context("rauc install")?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let err_text = stderr_reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let why = last_error
        .or_else(|| rauc::last_error_line(&err_text).map(str::to_owned))
        .unwrap_or_else(|| format!("rauc install ended with {status}"));
    let explained = rauc::explain_install_error(&why);
    if why.contains("Pre-install handler") {
        return Err(CheckFailed(format!("not installed: {explained}")).into());
    }
    bail!("not installed: {explained}")
}

// ---------------------------------------------------------------------------------------------
// status

fn rauc_status(rauc_path: &Path) -> anyhow::Result<SystemStatus> {
    let out = run_tool(
        rauc_path,
        Command::new(rauc_path)
            .arg("status")
            .arg("--detailed")
            .arg("--output-format=json"),
    )?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`rauc status` failed: {} (is the rauc service running?)",
            rauc::last_error_line(&err).unwrap_or("no message")
        );
    }
    Ok(rauc::parse_status(&String::from_utf8_lossy(&out.stdout))?)
}

fn status(a: &StatusArgs) -> anyhow::Result<()> {
    let st = rauc_status(&a.tools.rauc)?;
    let running = running_image(&a.tools).ok();
    let slots = st.slot_list();
    let letter = |s: &rauc::Slot| s.bootname.clone().unwrap_or_else(|| "-".to_owned());
    match st.booted_slot() {
        Some(b) => println!(
            "Running:    slot {} ({}), version {}",
            letter(&b),
            b.name,
            running
                .as_ref()
                .map(|r| r.version.to_string())
                .or(b.version.clone())
                .unwrap_or_else(|| "unknown".to_owned())
        ),
        None => println!("Running:    not from a RAUC slot"),
    }
    match st.primary_slot() {
        Some(p) => println!("Next boot:  slot {} ({})", letter(&p), p.name),
        None => println!("Next boot:  NO SLOT IS BOOTABLE: do not restart, call your supplier"),
    }
    println!();
    let rows: Vec<[String; 7]> = slots
        .iter()
        .map(|s| {
            let version = match (&s.version, s.booted, &running) {
                (Some(v), _, _) => v.clone(),
                // The slot flashed at the factory has no RAUC record; it runs what os-release says.
                (None, true, Some(r)) => r.version.to_string(),
                _ => "-".to_owned(),
            };
            [
                letter(s),
                s.name.clone(),
                if s.booted { "booted" } else { "inactive" }.to_owned(),
                match s.good {
                    Some(true) => "good",
                    Some(false) => "bad",
                    None => "-",
                }
                .to_owned(),
                version,
                s.build.clone().unwrap_or_else(|| "-".to_owned()),
                s.installed_at.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    let header = [
        "SLOT",
        "NAME",
        "STATE",
        "BOOT",
        "VERSION",
        "BUILD",
        "INSTALLED",
    ]
    .map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    if let Some(b) = st.booted_slot() {
        if b.good == Some(false) {
            println!(
                "\nThis boot is on trial: it becomes permanent when its health check passes \
                 (`pos update health`)."
            );
        }
    }
    if let (Some(p), Some(b)) = (st.primary_slot(), st.booted_slot()) {
        if p.name != b.name {
            println!(
                "\nSlot {} starts at the next restart, on trial{}.",
                letter(&p),
                p.version
                    .as_ref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// health

/// Which slot runs and how it and the other one stand, as far as rauc or the kernel command
/// line tell.
#[derive(Debug)]
struct Booted {
    letter: String,
    good: Option<bool>,
    /// The other slot is a good system to go back to (None: rauc could not say).
    other_good: Option<bool>,
    other_letter: Option<String>,
}

fn booted(a: &HealthArgs) -> Booted {
    let status = match rauc_status(&a.tools.rauc) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("warning: {e:#}");
            None
        }
    };
    let slot = status.as_ref().and_then(SystemStatus::booted_slot);
    let other = status.as_ref().and_then(SystemStatus::other_slot);
    let letter = slot
        .as_ref()
        .and_then(|s| s.bootname.clone())
        .or_else(|| status.as_ref().and_then(|s| s.booted.clone()))
        .or_else(|| {
            let cmdline = std::fs::read_to_string(&a.cmdline).unwrap_or_default();
            rauc::slot_from_cmdline(&cmdline).map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned());
    Booted {
        letter,
        good: slot.as_ref().and_then(|s| s.good),
        other_good: other.as_ref().and_then(|s| s.good),
        other_letter: other.and_then(|s| s.bootname),
    }
}

fn unit_facts(systemctl: &Path, unit: &str) -> anyhow::Result<UnitFacts> {
    let out = run_tool(
        systemctl,
        Command::new(systemctl)
            .arg("show")
            .arg("-p")
            .arg(health::SHOW_PROPERTIES)
            .arg(unit),
    )?;
    if !out.status.success() {
        bail!(
            "`systemctl show {unit}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(health::parse_show(
        unit,
        &String::from_utf8_lossy(&out.stdout),
    )?)
}

fn health(a: &HealthArgs) -> anyhow::Result<()> {
    let units: Vec<String> = if a.unit.is_empty() {
        health::DEFAULT_UNITS
            .iter()
            .map(|u| (*u).to_owned())
            .collect()
    } else {
        a.unit.clone()
    };
    let timeout = Duration::from_secs(a.timeout);
    let mut check = HealthCheck::new(Duration::from_secs(a.settle), timeout);
    let start = Instant::now();
    let poll = Duration::from_millis(a.poll_ms.max(10));
    let verdict: Result<Vec<String>, String> = loop {
        let facts: anyhow::Result<Vec<UnitFacts>> =
            units.iter().map(|u| unit_facts(&a.systemctl, u)).collect();
        let elapsed = start.elapsed();
        match facts {
            Ok(facts) => match check.observe(elapsed, &facts) {
                Verdict::Healthy { units } => break Ok(units),
                Verdict::Unhealthy(p) => break Err(p.to_string()),
                Verdict::Waiting(p) => {
                    if let Problem::Settling { .. } = p {
                        tracing::debug!("{p}");
                    } else {
                        tracing::info!("waiting: {p}");
                    }
                }
            },
            // systemd may be too busy to answer early in boot: keep asking until the timeout.
            Err(e) if elapsed < timeout => tracing::warn!("{e:#}"),
            Err(e) => break Err(format!("{e:#}")),
        }
        std::thread::sleep(poll);
    };
    let version = running_image(&a.tools)
        .map(|r| r.version.to_string())
        .unwrap_or_else(|e| {
            eprintln!("warning: {e:#}");
            "unknown".to_owned()
        });
    let slot = booted(a);
    match verdict {
        Ok(units) => {
            // Always mark good, also when rauc already reports the slot good: with RAUC's GRUB
            // scheme the bootloader sets X_TRY=1 on every boot and only mark-good clears it, so
            // a skipped mark-good would send the next boot back; on a good slot it rewrites the
            // same values and is harmless.
            tracing::info!(?units, was_good = ?slot.good, "healthy");
            rauc_mark(&a.tools.rauc, "mark-good").with_context(|| {
                format!(
                    "the system is healthy but slot {} could not be marked good; the next \
                     restart would return to the previous system",
                    slot.letter
                )
            })?;
            println!("pos ready (slot {}, version {version})", slot.letter);
            std::io::stdout().flush()?;
            Ok(())
        }
        Err(reason) => {
            // Marking the only working system bad would leave nothing to boot: roll back only
            // when rauc says the other slot is good, or cannot say (then GRUB's try counter
            // still decides).
            if slot.other_good == Some(false) {
                println!(
                    "pos health check failed: {reason}; slot {} is not a working system either, \
                     so slot {} stays (not marked bad, no reboot)",
                    slot.other_letter.as_deref().unwrap_or("?"),
                    slot.letter
                );
                std::io::stdout().flush()?;
                return Err(CheckFailed(reason).into());
            }
            if a.no_reboot {
                println!(
                    "pos health check failed: {reason}; marking slot {} bad (not rebooting: \
                     --no-reboot)",
                    slot.letter
                );
            } else {
                println!(
                    "pos health check failed: {reason}; marking slot {} bad and rebooting into \
                     the previous system",
                    slot.letter
                );
            }
            std::io::stdout().flush()?;
            if let Err(e) = rauc_mark(&a.tools.rauc, "mark-bad") {
                // Rebooting still rolls back a trial boot: GRUB does not start a slot whose try
                // flag is still set.
                eprintln!("warning: {e:#}");
            }
            if !a.no_reboot {
                let out = run_tool(&a.systemctl, Command::new(&a.systemctl).arg("reboot"))?;
                if !out.status.success() {
                    eprintln!(
                        "warning: `systemctl reboot` failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            Err(CheckFailed(reason).into())
        }
    }
}

fn rauc_mark(rauc_path: &Path, what: &str) -> anyhow::Result<()> {
    let out = run_tool(rauc_path, Command::new(rauc_path).arg("status").arg(what))?;
    if !out.status.success() {
        bail!(
            "`rauc status {what}` failed: {}",
            rauc::last_error_line(&String::from_utf8_lossy(&out.stderr)).unwrap_or("no message")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// pre-install-check

fn pre_install_check(a: &PreInstallArgs) -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut manifest = bundle::ManifestUpdate::default();
    if let Some(mount) = env("RAUC_BUNDLE_MOUNT_POINT").or_else(|| env("RAUC_UPDATE_SOURCE")) {
        let path = Path::new(&mount).join("manifest.raucm");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the bundle's manifest {}", path.display()))?;
        manifest = bundle::parse_manifest(&text);
    }
    // A rauc that passes the manifest's values directly is believed over the file.
    if let Some(v) = env("RAUC_MF_VERSION") {
        manifest.version = Some(v);
    }
    if let Some(c) = env("RAUC_MF_COMPATIBLE") {
        manifest.compatible = Some(c);
    }
    if manifest.version.is_none() && manifest.compatible.is_none() {
        bail!(
            "no bundle to check: this is RAUC's pre-install handler and needs \
             RAUC_BUNDLE_MOUNT_POINT (or RAUC_MF_VERSION and RAUC_MF_COMPATIBLE) from it"
        );
    }
    let running = running_image(&a.tools)?;
    match bundle::check_update(
        &running.version,
        COMPATIBLE,
        manifest.compatible.as_deref().unwrap_or(""),
        manifest.version.as_deref(),
    ) {
        Ok(v) => {
            eprintln!(
                "pos update pre-install-check: {v} over {} accepted",
                running.version
            );
            Ok(())
        }
        Err(refusal) => Err(CheckFailed(format!("update refused by pos: {refusal}")).into()),
    }
}

// ---------------------------------------------------------------------------------------------

/// Runs a program to the end and collects its output; a missing program is named.
fn run_tool(program: &Path, command: &mut Command) -> anyhow::Result<Output> {
    command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", program.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(10), "10 bytes");
        assert_eq!(human_bytes(65536), "64.0 KiB");
        assert_eq!(human_bytes(412 * 1024 * 1024), "412.0 MiB");
    }

    #[test]
    fn finds_bundles_one_folder_down() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("updates")).unwrap();
        std::fs::write(d.path().join("a.raucb"), "x").unwrap();
        std::fs::write(d.path().join("updates/b.raucb"), "x").unwrap();
        std::fs::write(d.path().join("notes.txt"), "x").unwrap();
        let found = find_bundles(&[d.path().to_path_buf()]);
        assert_eq!(found.len(), 2);
    }
}

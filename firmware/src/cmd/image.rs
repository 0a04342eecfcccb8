//! `pos image flash IMAGE DEVICE`: write an appliance image onto a disk or USB stick (the work
//! itself is in `pos-flash`).
//!
//! Order: refuse a script without `--yes` at once; check the device (so a wrong path is told
//! before a long image check); read the image to the end (a damaged download is found before
//! anything is erased); check the device again against the image's length; describe and
//! confirm; open it exclusively (the kernel refuses O_EXCL on a disk something has mounted or
//! claimed); write, sync, read back and compare.

use std::fs::{File, OpenOptions};
use std::io::IsTerminal as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use nix::errno::Errno;
use pos_flash::{human, BlockDevice, Disk, Env, Phase, Refusal, SYSTEM_MOUNTS};

use crate::context::{CheckFailed, Context};

const SYSFS: &str = "/sys";

const FLASH_HELP: &str = "\
What it does: checks DEVICE (a whole disk; not mounted, not in use, not the disk this machine
runs from, big enough), reads the image to the end (a damaged download is found before anything
is erased), shows what will be erased and asks you to type the device's name, writes the image
(a .img as it is, a .img.zst decompressed on the way), syncs, then reads everything back and
compares. Run it as root. Interrupting it leaves a half-written stick: flash it again.

Find the stick: `lsblk -d -o NAME,SIZE,MODEL,TRAN` before and after plugging it in; it is the
new line, usually with TRAN `usb`. Give the whole disk (/dev/sdb), never a partition (/dev/sdb1).

Examples:
  lsblk -d -o NAME,SIZE,MODEL,TRAN                         # which disk is the stick?
  sudo pos image flash 3plugpos-1.4.0.img.zst /dev/sdb
  sudo pos image flash 3plugpos-1.4.0.img /dev/disk/by-id/usb-SanDisk_Cruzer_Blade_4C53-0:0
  sudo pos image flash 3plugpos-1.4.0.img.zst /dev/sdb --yes   # a script: no question

Exit codes: 0 written and verified · 1 the stick read back different (faulty or fake: use
another) · 2 refused or failed (the message says why and what to do).";

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write an appliance image onto a disk or USB stick, then read it back to verify it.
    #[command(after_help = FLASH_HELP)]
    Flash(FlashArgs),
}

#[derive(Debug, Args)]
pub struct FlashArgs {
    /// The image: a .img file, or a zstd-compressed .img.zst.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// The whole disk to erase: /dev/sdb, /dev/mmcblk0, /dev/disk/by-id/usb-... (not a
    /// partition).
    #[arg(value_name = "DEVICE")]
    pub device: PathBuf,
    /// Erase without asking for the device's name (for scripts; the safety checks still run).
    #[arg(long)]
    pub yes: bool,
}

pub fn run(_ctx: &Context, command: ImageCommand) -> anyhow::Result<()> {
    match command {
        ImageCommand::Flash(args) => flash(args),
    }
}

fn flash(args: FlashArgs) -> anyhow::Result<()> {
    if !args.yes && !std::io::stdin().is_terminal() {
        bail!(
            "pos image flash asks you to type the device's name on a terminal; from a script add \
             --yes (after checking DEVICE with `lsblk -d -o NAME,SIZE,MODEL,TRAN`)"
        );
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .context("cannot read /proc/self/mountinfo (is /proc mounted?)")?;
    let env = |need| Env {
        sysfs: Path::new(SYSFS),
        mountinfo: &mountinfo,
        system_mounts: SYSTEM_MOUNTS,
        need,
    };
    check(&args, &env(0))?;

    let mut bar = Bar::new();
    let image = pos_flash::inspect(&args.image, &mut |d, t| bar.update("checking image", d, t))?;
    bar.finish();
    let disk = check(&args, &env(image.len))?;
    tracing::info!(device = %disk.path.display(), image = %image.path.display(), bytes = image.len, "flash");

    describe(&args, &disk, &image);
    if !args.yes && !confirm(&disk)? {
        println!("Cancelled: nothing was written.");
        return Ok(());
    }

    let file = open_exclusive(&disk)?;
    let mut target = BlockDevice::new(file, Path::new(SYSFS), &disk.name);
    let mut reader = image.open()?;
    let mut bar = Bar::new();
    let flashed = pos_flash::flash(&mut reader, image.len, &mut target, &mut |phase, d, t| {
        let label = match phase {
            Phase::Write => "writing",
            Phase::Verify => "verifying",
        };
        bar.update(label, d, t)
    });
    drop(target);
    if flashed.is_ok() {
        bar.finish();
    }
    drop(bar);
    let flashed = flashed.map_err(|e| {
        if e.is_verification() {
            anyhow::Error::new(CheckFailed(e.to_string()))
        } else {
            anyhow!(e)
        }
    })?;
    // The device was synced; this flushes anything else (and is what technicians expect).
    nix::unistd::sync();
    tracing::info!(bytes = flashed.len, blake3 = %flashed.hash, "flashed and verified");
    let next = if disk.removable {
        "remove the stick and boot the box from it"
    } else {
        "boot the box from it"
    };
    println!(
        "Done: written and verified {} MB on {}; {next}.",
        flashed.len / 1_000_000,
        disk.path.display()
    );
    Ok(())
}

/// The safety check, with a hint when IMAGE and DEVICE look swapped.
fn check(args: &FlashArgs, env: &Env<'_>) -> anyhow::Result<Disk> {
    pos_flash::check_path(&args.device, env).map_err(|r| {
        let swapped = matches!(r, Refusal::NotBlockDevice { .. })
            && std::fs::metadata(&args.image)
                .map(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
                .unwrap_or(false);
        if swapped {
            anyhow!("{r} (IMAGE comes first: pos image flash IMAGE DEVICE)")
        } else {
            anyhow!(r)
        }
    })
}

fn describe(args: &FlashArgs, disk: &Disk, image: &pos_flash::Image) {
    let given = if args.device != disk.path {
        format!(" (given as {})", args.device.display())
    } else {
        String::new()
    };
    let model = if disk.model.is_empty() {
        "(not reported)"
    } else {
        &disk.model
    };
    let kind = if disk.removable {
        "removable"
    } else {
        "NOT removable (an internal disk?)"
    };
    let packed = if image.compressed {
        format!(", zstd-compressed {}", human(image.file_len))
    } else {
        String::new()
    };
    println!("This erases everything on {}:", disk.path.display());
    println!("  device  {}{given}", disk.path.display());
    println!("  model   {model}");
    println!("  size    {}, {kind}", human(disk.size));
    println!(
        "  image   {} ({}{packed})",
        image.path.display(),
        human(image.len)
    );
    if !disk.removable {
        println!("  Check that this is the disk you mean: it is not a USB stick.");
    }
}

fn confirm(disk: &Disk) -> anyhow::Result<bool> {
    let answer = crate::prompt::ask(&format!(
        "Type the device name {:?} to erase it (anything else cancels)",
        disk.name
    ))?;
    Ok(answer == disk.name)
}

/// Open the disk for writing and reading back. O_EXCL on a block device fails with EBUSY when
/// something holds it (a mount, swap, LVM/LUKS, another flasher), closing the gap between the
/// check and the write; the device number is compared so a stick swapped in between is caught.
fn open_exclusive(disk: &Disk) -> anyhow::Result<File> {
    let path = disk.path.display();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(&disk.path)
        .map_err(|e| match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::EBUSY) => anyhow!(
                "{path} is in use (mounted, swap, an encrypted volume or another program such as \
                 a desktop automounter has it open): unmount or close it and try again"
            ),
            Some(Errno::EACCES | Errno::EPERM) => {
                anyhow!("no permission to write {path}: run it as root (sudo pos image flash ...)")
            }
            Some(Errno::ENOENT | Errno::ENODEV | Errno::ENXIO) => anyhow!(
                "{path} went away before anything was written: plug it back in and try again"
            ),
            Some(Errno::ENOMEDIUM) => {
                anyhow!("{path} has no medium: insert the card or stick and try again")
            }
            Some(Errno::EROFS) => anyhow!(
                "{path} is read-only: slide the stick's write-protect switch off, or use another"
            ),
            _ => anyhow!("cannot open {path}: {e}"),
        })?;
    let rdev = file.metadata().map(|m| m.rdev()).unwrap_or(0);
    let devno = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    if devno != disk.devno {
        bail!(
            "{path} changed while it was being checked (now device {devno}, checked {}): nothing \
             was written; run the command again",
            disk.devno
        );
    }
    Ok(file)
}

/// A bar with speed on a terminal; on a log or a pipe, one line at the start and end of each
/// phase.
struct Bar {
    tty: bool,
    phase: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    done: u64,
}

impl Bar {
    fn new() -> Self {
        Bar {
            tty: std::io::stderr().is_terminal(),
            phase: "",
            bar: None,
            started: Instant::now(),
            done: 0,
        }
    }

    fn update(&mut self, phase: &'static str, done: u64, total: u64) {
        if phase != self.phase {
            self.finish();
            self.phase = phase;
            self.started = Instant::now();
            if self.tty {
                let style = ProgressStyle::with_template(
                    "{msg:15} [{bar:32}] {decimal_bytes:>9}/{decimal_total_bytes:9} \
                     {decimal_bytes_per_sec:>11} {eta}",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                let bar = ProgressBar::new(total).with_style(style);
                bar.set_message(phase);
                self.bar = Some(bar);
            } else {
                eprintln!("  {phase} {}...", human(total));
            }
        }
        self.done = done;
        if let Some(bar) = &self.bar {
            bar.set_length(total.max(done));
            bar.set_position(done);
        }
    }

    fn finish(&mut self) {
        if self.phase.is_empty() {
            return;
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let secs = self
            .started
            .elapsed()
            .max(Duration::from_millis(1))
            .as_secs_f64();
        eprintln!(
            "  {} {}: done in {:.0} s ({:.1} MB/s)",
            self.phase,
            human(self.done),
            secs,
            self.done as f64 / secs / 1e6
        );
        self.phase = "";
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // A failed phase is not reported as done: the error says what happened.
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}

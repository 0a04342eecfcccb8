//! `pos`: the one binary of 3PlugPOS. Wiring only: parse the command line, load the config,
//! call the crates, print results, map failures to exit codes (0 ok, 1 check failed, 2 usage,
//! config or environment error).

mod backup_jobs;
mod cmd;
mod context;
mod prompt;
mod secrets;
mod timefmt;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::context::{CheckFailed, GlobalArgs};

const AFTER_HELP: &str = "\
Exit codes: 0 ok · 1 a check failed (verification, tamper, refused login) · 2 usage, config or \
environment error.

Examples:
  pos init --role terminal --data-dir /var/lib/pos --branch main --name till-1
  pos audit verify --data-dir /var/lib/pos
  pos audit log --kind sale --since 2h
  echo 'my-pass' | pos login --user alice
  pos terminal --data-dir /var/lib/pos
  pos demo --headless --sales 50";

#[derive(Debug, Parser)]
#[command(
    name = "pos",
    version,
    about = "3PlugPOS point-of-sale appliance firmware",
    long_about = "3PlugPOS point-of-sale appliance firmware: terminals sell offline on their own \
                  signed event log; the branch hub collects, verifies and reports.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a device identity, key pair and database in a data dir.
    Init(cmd::init::InitArgs),
    /// Check and read the tamper-evident audit log.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Manage the users of this device: add, list, lock, unlock, passwd, role.
    #[command(subcommand)]
    User(cmd::user::UserCommand),
    /// Check a user's secret (from stdin) the way a terminal login does; exit 1 when refused.
    Login(cmd::user::LoginArgs),
    /// Receipt printer, cash drawer, scanner and display: list, test-print, open-drawer, simulate.
    #[command(subcommand)]
    Devices(cmd::devices::DevicesCommand),
    /// Run the terminal: the touchscreen UI over this device's store and its devices.
    Terminal(cmd::terminal::TerminalArgs),
    /// Run a hub and a terminal trading a scripted day through the sale engine (the main job).
    Demo(cmd::demo::DemoArgs),
    /// Run the branch hub's sync server; enrollment codes and devices (`pos hub --help`).
    Hub(cmd::hub::HubArgs),
    /// Enroll this terminal with the branch hub using a one-time code.
    Enroll(cmd::enroll::EnrollArgs),
    /// The products the hub publishes: import from CSV, list.
    #[command(subcommand)]
    Catalogue(cmd::catalogue::CatalogueCommand),
    /// Backups: keygen, create, list, verify, prune, export/import (USB), guided restore.
    #[command(subcommand)]
    Backup(cmd::backup::BackupCommand),
    /// Reports (X/Z, journal, tenders, key figures, products, cashiers, tax, audit, security)
    /// as a table, CSV or PDF: `pos report list`.
    Report(cmd::report::ReportArgs),
    /// First boot of an appliance: choose its role (terminal or hub), enroll, then login.
    Setup(cmd::setup::SetupArgs),
    /// System updates (signed A/B bundles through RAUC): verify, apply, status, health (the trial
    /// boot's check), pre-install-check (RAUC's handler).
    #[command(subcommand)]
    Update(cmd::update::UpdateCommand),
    /// Appliance images: flash an image onto a disk or USB stick, service mode.
    #[command(subcommand)]
    Image(cmd::image::ImageCommand),
}

/// Rust ignores SIGPIPE, so `pos audit log | head` would fail with "broken pipe". A command-line
/// tool should end quietly instead, like every other Unix tool.
///
/// Not for the commands that talk over the network (the services, the demo, enrollment): with
/// SIGPIPE at its default, writing to a TCP connection the peer has reset kills the whole
/// process without a word (a terminal dropping off the network took the hub down with it).
/// They keep Rust's default and see the write fail with EPIPE instead.
#[allow(unsafe_code)]
fn restore_sigpipe(command: &Command) {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let networked = match command {
        Command::Terminal(_) | Command::Demo(_) | Command::Enroll(_) => true,
        Command::Hub(h) => h.command.is_none(),
        _ => false,
    };
    if networked {
        return;
    }
    // SAFETY: called in main before any thread exists (argument parsing starts none); SIG_DFL
    // installs no Rust handler, so no async-signal-safety rules are involved.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    restore_sigpipe(&cli.command);
    // Long-running services (`pos terminal`, later `pos hub`) log at the configured level;
    // the other commands print their result and only warn.
    let service = matches!(cli.command, Command::Terminal(_))
        || matches!(&cli.command, Command::Hub(h) if h.command.is_none());
    let result = context::Context::new(&cli.global, service).and_then(|ctx| match cli.command {
        Command::Init(args) => cmd::init::run(&ctx, args),
        Command::Audit(args) => cmd::audit::run(&ctx, args),
        Command::User(args) => cmd::user::run(&ctx, args),
        Command::Login(args) => cmd::user::login(&ctx, args),
        Command::Devices(args) => cmd::devices::run(&ctx, args),
        Command::Terminal(args) => cmd::terminal::run(&ctx, args),
        Command::Demo(args) => cmd::demo::run(&ctx, args),
        Command::Hub(args) => cmd::hub::run(&ctx, args),
        Command::Enroll(args) => cmd::enroll::run(&ctx, args),
        Command::Catalogue(c) => cmd::catalogue::run(&ctx, c),
        Command::Backup(c) => cmd::backup::run(&ctx, c),
        Command::Report(args) => cmd::report::run(&ctx, args),
        Command::Setup(args) => cmd::setup::run(&ctx, args),
        Command::Update(c) => cmd::update::run(&ctx, c),
        Command::Image(c) => cmd::image::run(&ctx, c),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let check_failed = err.downcast_ref::<CheckFailed>().is_some();
            eprintln!("error: {err:#}");
            if check_failed {
                ExitCode::from(1)
            } else {
                ExitCode::from(2)
            }
        }
    }
}

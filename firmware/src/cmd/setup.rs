//! `pos setup`: the appliance's first boot. Choose the role (till or branch hub), enroll a till
//! with its hub or create the hub and its first admin, then hand over to the role's service.
//!
//! The image runs `pos-setup.service` first; `pos-terminal.service` and `pos-hub.service`
//! follow with `ExecCondition=/usr/bin/pos setup is-role terminal|hub`, so only the chosen
//! role's service starts. Every boot after the first, `pos setup` sees the identity and ends
//! at once.
//!
//! A setup that did not finish (power cut, hub unreachable) must not count as done, or the box
//! would boot into an unenrolled till for good: `DATA_DIR/setup-pending` is written before
//! anything else and removed last. While it exists the data dir is "not set up": the next
//! `pos setup` starts again, reusing a till's identity when the branch and name are the same
//! and otherwise moving the unfinished one aside (`replaced-<time>/`, never deleted).

use std::io::Write as _;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pos_core::DeviceRole;
use pos_store::{Identity, Store, StoreError, StoreOptions};
use pos_sync_net::enroll::RefusalReason;
use pos_sync_net::{EnrollError, EnrollmentCode, TerminalTls};
use pos_ui::backend::{self, Backend, Environment, Options, ScreenSize};
use pos_ui::setup::rules::{self, FieldError, FieldId, Form, Problem, Request};
use pos_ui::setup::{Failure, Outcome};
use serde::Deserialize;

use crate::context::Context;

/// Written before setup touches anything, removed when it has finished.
const PENDING_FILE: &str = "setup-pending";
/// The first admin a new hub gets (as `pos init --role hub`).
const FIRST_ADMIN: &str = "admin";

const AFTER_HELP: &str = "\
Without --provision (or when the file does not exist), the first-boot screen shows: till or
branch hub, then branch and device name, and for a till the hub's address and a one-time code
(on the hub's display, Devices page, or from `pos hub enroll-code`). A hub shows its first
admin's one-time password; a till enrolls with its hub. Then the role's login screen starts.
Once set up, `pos setup` says so and ends at once (exit 0).

Unattended: a provision file (TOML) for a till
  role = \"terminal\"
  branch = \"main\"
  name = \"till-1\"
  hub = \"10.0.0.2:7443\"           # the hub's address; :7443 is added when no port is given
  code = \"7KQ2-MX9D-4T8R-B3ZF\"     # one-time code from the hub
and for the hub (prints the first admin's one-time password on stdout)
  role = \"hub\"
  branch = \"main\"
  name = \"hub\"
Names: 1 to 40 letters, digits, spaces and - _ . ; unknown keys are refused.

Exit codes: 0 set up (or already) · 2 a wrong provision file, an unreachable hub, a refused
code or the screen closed before setup was done (nothing counts as set up then).

Examples:
  pos setup --data-dir /var/lib/pos --provision /boot/efi/pos/provision.toml
  pos setup --data-dir ./box --backend winit --size 800x1280
  pos setup is-role terminal --data-dir /var/lib/pos   # systemd ExecCondition";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct SetupArgs {
    #[command(subcommand)]
    pub command: Option<SetupCommand>,
    /// Set up unattended from this TOML file (see below) if it exists; else show the screen.
    #[arg(long, value_name = "FILE")]
    pub provision: Option<PathBuf>,
    /// Run the screen without a window (same as --backend headless; tests).
    #[arg(long, conflicts_with = "backend")]
    pub headless: bool,
    /// Where to show the screen: winit (desktop window), kms (full screen, no desktop) or
    /// headless. Default: winit when DISPLAY/WAYLAND_DISPLAY is set, else kms.
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<Backend>,
    /// Screen layout: 1280x800, 1024x768 or 800x1280 (under kms the panel's own size is used).
    #[arg(long, value_name = "WxH", default_value = "1280x800")]
    pub size: ScreenSize,
    /// Close the screen by itself after this many milliseconds (tests).
    #[arg(long, value_name = "MS")]
    pub exit_after_ms: Option<u64>,
    /// Seconds to wait for the hub when enrolling a till.
    #[arg(long, value_name = "S", default_value_t = 20)]
    pub timeout_s: u64,
}

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Exit 0 when this data dir is set up as ROLE, else 1, silently (systemd ExecCondition).
    IsRole {
        #[arg(value_name = "terminal|hub")]
        role: DeviceRole,
    },
}

pub fn run(ctx: &Context, args: SetupArgs) -> anyhow::Result<()> {
    if let Some(SetupCommand::IsRole { role }) = args.command {
        is_role(&ctx.data_dir, role);
    }
    ignore_sigpipe();
    if let State::Done(identity) = state(&ctx.data_dir)? {
        println!("already set up as {} {}", identity.role, identity.name);
        return Ok(());
    }
    let work = Work {
        data_dir: ctx.data_dir.clone(),
        store: ctx.store_options(),
        timeout: Duration::from_secs(args.timeout_s),
    };
    match args.provision.as_deref().filter(|p| p.exists()) {
        Some(file) => provision(&work, file),
        None => screen(ctx, &args, work),
    }
}

/// `pos setup is-role ROLE`: the answer is the exit code; "no" is not an error and says
/// nothing (a data dir that cannot be read is worth a line on stderr, and is a "no" too).
fn is_role(dir: &Path, role: DeviceRole) -> ! {
    let yes = match state(dir) {
        Ok(State::Done(identity)) => identity.role == role,
        Ok(_) => false,
        Err(e) => {
            eprintln!("pos setup is-role: {e:#}");
            false
        }
    };
    std::process::exit(if yes { 0 } else { 1 })
}

/// Rust ignores SIGPIPE, but main restores the default for the commands it does not know to
/// be networked, and setup enrolls over TCP: a hub resetting the connection must be an error
/// on the screen, not a silent death.
#[allow(unsafe_code)]
fn ignore_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: called before this command starts any thread; SIG_IGN installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigIgn) };
}

/// How far setup has come in a data dir.
#[derive(Debug)]
enum State {
    /// No identity (or no data dir).
    Fresh,
    /// Setup started and did not finish; the identity it made, if any.
    Pending(Option<Identity>),
    /// Set up: the identity stays.
    Done(Identity),
}

fn state(dir: &Path) -> anyhow::Result<State> {
    let identity = match Store::read_identity(dir) {
        Ok(i) => Some(i),
        Err(StoreError::NoDataDir(_) | StoreError::NotInitialized(_)) => None,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the identity in {}", dir.display()))
        }
    };
    let pending = dir.join(PENDING_FILE).exists();
    Ok(match (identity, pending) {
        (None, false) => State::Fresh,
        (Some(i), false) => State::Done(i),
        // A till that saved its enrollment is done, even if the marker outlived it (power cut
        // between the two): the code is spent, enrolling again would fail.
        (Some(i), true)
            if i.role == DeviceRole::Terminal
                && TerminalTls::load(&pos_sync_net::tls_dir(dir))
                    .ok()
                    .flatten()
                    .is_some() =>
        {
            finish(dir)?;
            State::Done(i)
        }
        (identity, true) => State::Pending(identity),
    })
}

/// What carries out a request, on whichever thread asks.
#[derive(Debug, Clone)]
struct Work {
    data_dir: PathBuf,
    store: StoreOptions,
    timeout: Duration,
}

impl Work {
    /// Set this box up as `request` says. Local trouble (disk, keys) is the outer error; what
    /// the hub said (or did not) is the inner [`Failure`], which the screen words.
    fn perform(&self, request: &Request) -> anyhow::Result<Result<Outcome, Failure>> {
        let dir = &self.data_dir;
        // Checked before anything is written: a code the hub would not read is a field error.
        let code = match (request.role, request.code.as_deref()) {
            (DeviceRole::Terminal, Some(text)) => match EnrollmentCode::parse(text) {
                Ok(c) => Some(c),
                Err(_) => return Ok(Err(field(FieldId::Code, Problem::NotACode))),
            },
            (DeviceRole::Terminal, None) => return Ok(Err(field(FieldId::Code, Problem::Empty))),
            (DeviceRole::Hub, _) => None,
        };
        start(dir)?;
        let mut store = self.identity(request)?;
        let outcome = match (request.role, code) {
            (DeviceRole::Terminal, Some(code)) => {
                let hub_addr = request.hub.clone().unwrap_or_default();
                match crate::cmd::enroll::enroll_open(
                    &mut store,
                    dir,
                    &hub_addr,
                    code,
                    self.timeout,
                )? {
                    Ok(enrollment) => Outcome::Enrolled {
                        name: request.name.clone(),
                        hub_addr,
                        hub_name: enrollment.hub.name,
                    },
                    Err(e) => return Ok(Err(failure(&hub_addr, e))),
                }
            }
            _ => {
                let (_, one_time) = store
                    .bootstrap_admin(FIRST_ADMIN)
                    .context("cannot create the first admin")?;
                Outcome::Hub {
                    name: request.name.clone(),
                    branch: request.branch.clone(),
                    admin: FIRST_ADMIN.to_owned(),
                    one_time,
                }
            }
        };
        // The service that starts next opens the data dir: let go of it first.
        drop(store);
        finish(dir)?;
        tracing::info!(role = %request.role, name = %request.name, "setup finished");
        Ok(Ok(outcome))
    }

    /// The identity for `request`: a till's unfinished one when it has the same branch and
    /// name (its key is unknown to any hub until enrollment succeeds), else a new one; an
    /// unfinished identity that does not fit is moved aside, never deleted.
    fn identity(&self, request: &Request) -> anyhow::Result<Store> {
        let dir = &self.data_dir;
        let existing = match state(dir)? {
            State::Pending(i) => i,
            State::Fresh => None,
            State::Done(i) => anyhow::bail!("already set up as {} {}", i.role, i.name),
        };
        let reuse = existing.as_ref().is_some_and(|i| {
            i.role == DeviceRole::Terminal
                && request.role == DeviceRole::Terminal
                && i.branch == request.branch
                && i.name == request.name
        });
        if reuse {
            return crate::context::open_at(dir, self.store.clone());
        }
        let (store, report) = Store::init(
            dir,
            request.role,
            &request.branch,
            &request.name,
            existing.is_some(),
        )
        .with_context(|| format!("cannot initialise data dir {}", dir.display()))?;
        if let Some(old) = &report.moved_aside {
            tracing::warn!(
                "the unfinished setup's identity was moved to {}",
                old.display()
            );
        }
        Ok(store)
    }
}

fn field(field: FieldId, problem: Problem) -> Failure {
    Failure::Field(FieldError { field, problem })
}

/// What the hub's answer means for the person at the screen.
fn failure(addr: &str, e: EnrollError) -> Failure {
    match e {
        EnrollError::Connect { source, .. } => Failure::Unreachable {
            addr: addr.to_owned(),
            detail: source.to_string(),
        },
        EnrollError::Timeout(s) => Failure::Unreachable {
            addr: addr.to_owned(),
            detail: format!("nothing within {s} s"),
        },
        EnrollError::Refused {
            reason: RefusalReason::CodeRefused | RefusalReason::TooManyAttempts,
            message,
        } => Failure::CodeRefused(message),
        EnrollError::NotAuthentic | EnrollError::Tls(_) => Failure::WrongHub {
            addr: addr.to_owned(),
        },
        other => Failure::Other(crate::cmd::enroll::explain(other).to_string()),
    }
}

/// Mark the data dir as being set up (created if missing, private like `pos init` makes it).
fn start(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let path = dir.join(PENDING_FILE);
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(
        b"`pos setup` started here and has not finished: the next `pos setup` starts again.\n",
    )
    .and_then(|()| file.sync_all())
    .with_context(|| format!("cannot write {}", path.display()))?;
    sync_dir(dir)
}

/// Setup is done: remove the marker, durably.
fn finish(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(PENDING_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// A provision file: every key optional here, so a missing one is named by us, not by serde.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvisionFile {
    role: Option<String>,
    branch: Option<String>,
    name: Option<String>,
    hub: Option<String>,
    code: Option<String>,
}

/// Read and check a provision file: the request, or an error naming the field.
fn read_provision(path: &Path) -> anyhow::Result<Request> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read provision file {}", path.display()))?;
    let file: ProvisionFile = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "provision file {}: {} (hint: `pos setup --help` shows an example)",
            path.display(),
            e.to_string().trim()
        )
    })?;
    let bad = |key: &str, why: String| {
        anyhow::anyhow!(
            "provision file {}: field `{key}` {why} (hint: `pos setup --help` shows an example)",
            path.display()
        )
    };
    let role = match file.role.as_deref().map(str::trim) {
        None => {
            return Err(bad(
                "role",
                "is missing: role = \"terminal\" or \"hub\"".into(),
            ))
        }
        Some("terminal") => DeviceRole::Terminal,
        Some("hub") => DeviceRole::Hub,
        Some(other) => {
            return Err(bad(
                "role",
                format!("is {other:?}: use \"terminal\" or \"hub\""),
            ))
        }
    };
    let mut form = Form::default();
    for id in FieldId::for_role(role) {
        let value = match id {
            FieldId::Branch => &file.branch,
            FieldId::Name => &file.name,
            FieldId::Hub => &file.hub,
            FieldId::Code => &file.code,
        };
        match value {
            Some(v) => *form.get_mut(*id) = v.clone(),
            None => return Err(bad(id.key(), format!("is missing for a {role}"))),
        }
    }
    if role == DeviceRole::Hub {
        for (key, value) in [("hub", &file.hub), ("code", &file.code)] {
            if value.is_some() {
                return Err(bad(
                    key,
                    "is only for a terminal (role = \"terminal\")".into(),
                ));
            }
        }
    }
    rules::validate(role, &form).map_err(|errors| {
        let named: Vec<String> = errors
            .iter()
            .map(|e| format!("field `{}` {}", e.field, e.problem))
            .collect();
        anyhow::anyhow!(
            "provision file {}: {} (hint: `pos setup --help` shows an example)",
            path.display(),
            named.join("; ")
        )
    })
}

/// Unattended setup from a provision file; what it did goes to stdout (the journal).
fn provision(work: &Work, file: &Path) -> anyhow::Result<()> {
    // Nothing is written before the whole file is found good.
    let request = read_provision(file)?;
    let outcome = work.perform(&request)?.map_err(|f| {
        let hint = match &f {
            Failure::Unreachable { .. } => {
                "check the network and the hub's address (as `pos hub` logs it), and that the \
                 hub runs"
            }
            Failure::CodeRefused(_) => {
                "ask the manager for a new code (`pos hub enroll-code` or the hub's display, \
                 Devices) and put it in the provision file"
            }
            Failure::WrongHub { .. } => "check the hub's address, or ask for a new code",
            Failure::Field(_) | Failure::Other(_) => "fix the provision file or see the log",
        };
        anyhow::anyhow!(
            "setup from {} not done: {f} (hint: {hint}); nothing counts as set up, the next \
             `pos setup` tries again",
            file.display()
        )
    })?;
    match outcome {
        Outcome::Enrolled {
            name,
            hub_addr,
            hub_name,
        } => {
            println!(
                "Set up as terminal \"{name}\" of branch \"{}\" from {}",
                request.branch,
                file.display()
            );
            println!("Enrolled as {name} with hub {hub_addr} (\"{hub_name}\")");
        }
        Outcome::Hub {
            name,
            branch,
            admin,
            one_time,
        } => {
            println!(
                "Set up as hub \"{name}\" of branch \"{branch}\" from {}",
                file.display()
            );
            println!("First admin user: {admin}");
            println!("One-time password (shown once): {one_time}");
            println!(
                "WARNING: write it down; it is shown only once. Log in as {admin} with it on the \
                 hub display, which then asks for your own password (and sets up the \
                 authenticator app the admin role needs)."
            );
        }
    }
    Ok(())
}

/// The first-boot screen.
fn screen(ctx: &Context, args: &SetupArgs, work: Work) -> anyhow::Result<()> {
    let explicit = if args.headless {
        Some(Backend::Headless)
    } else {
        args.backend
    };
    let backend = backend::choose(explicit, &Environment::detect())?;
    let options = Options {
        backend: Some(backend),
        size: args.size,
        exit_after: args.exit_after_ms.map(Duration::from_millis),
        ..Options::default()
    };
    let locale = crate::cmd::terminal::screen_locale(ctx).unwrap_or_else(|e| {
        tracing::warn!("{e:#}");
        "en".to_owned()
    });
    tracing::info!(backend = %backend, data_dir = %work.data_dir.display(), "first-boot screen");
    let perform = Arc::new(move |request: Request| {
        work.perform(&request)
            .unwrap_or_else(|e| Err(Failure::Other(format!("{e:#}"))))
    });
    match pos_ui::setup::run(backend, &options, &locale, perform)? {
        Some(Outcome::Enrolled { name, hub_addr, .. }) => {
            println!("Enrolled as {name} with hub {hub_addr}");
            Ok(())
        }
        Some(Outcome::Hub { name, branch, .. }) => {
            // The password was on the screen; it is not repeated into the journal.
            println!("Set up as hub \"{name}\" of branch \"{branch}\"");
            Ok(())
        }
        None => anyhow::bail!(
            "the setup screen closed before setup was done: nothing is set up (hint: run `pos \
             setup` again, or give --provision FILE)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provision.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    fn error(text: &str) -> String {
        let (_dir, path) = file(text);
        format!("{:#}", read_provision(&path).unwrap_err())
    }

    #[test]
    fn a_good_provision_file_reads_into_a_request() {
        let (_d, path) = file(
            "role = \"terminal\"\nbranch = \"main\"\nname = \"till-2\"\nhub = \"10.0.0.2\"\n\
             code = \"7kq2-mx9d-4t8r-b3zf\"\n",
        );
        let r = read_provision(&path).unwrap();
        assert_eq!(r.role, DeviceRole::Terminal);
        assert_eq!(r.hub.as_deref(), Some("10.0.0.2:7443"));
        assert_eq!(r.code.as_deref(), Some("7KQ2-MX9D-4T8R-B3ZF"));
        let (_d, path) = file("role = \"hub\"\nbranch = \"main\"\nname = \"hub\"\n");
        assert_eq!(read_provision(&path).unwrap().role, DeviceRole::Hub);
    }

    #[test]
    fn every_bad_field_is_named() {
        assert!(error("branch = \"main\"").contains("field `role` is missing"));
        assert!(error("role = \"till\"").contains("field `role` is \"till\""));
        assert!(error("role = \"hub\"\nname = \"hub\"").contains("field `branch` is missing"));
        let e = error("role = \"hub\"\nbranch = \"main\"\nname = \"hub\"\ncode = \"X\"");
        assert!(e.contains("field `code` is only for a terminal"), "{e}");
        let e = error("role = \"hub\"\nbranch = \"main\"\nname = \"hub\"\nhubb = \"x\"");
        assert!(e.contains("unknown field `hubb`"), "{e}");
        let e =
            error("role = \"terminal\"\nbranch = \"\"\nname = \"t\"\nhub = \"h:0\"\ncode = \"1\"");
        assert!(e.contains("field `branch` must not be empty"), "{e}");
        assert!(e.contains("field `hub` has no valid port"), "{e}");
        assert!(e.contains("field `code` is not an enrollment code"), "{e}");
        assert!(error("role = ").contains("provision file"));
    }

    #[test]
    fn an_unfinished_setup_is_not_done() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        assert!(matches!(state(&data).unwrap(), State::Fresh));
        start(&data).unwrap();
        assert!(matches!(state(&data).unwrap(), State::Pending(None)));
        let (store, _) = Store::init(&data, DeviceRole::Terminal, "main", "till-1", false).unwrap();
        drop(store);
        assert!(matches!(state(&data).unwrap(), State::Pending(Some(_))));
        finish(&data).unwrap();
        assert!(matches!(state(&data).unwrap(), State::Done(i) if i.name == "till-1"));
        // Finishing twice is harmless.
        finish(&data).unwrap();
    }

    #[test]
    fn a_hub_is_set_up_and_an_unfinished_one_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let work = Work {
            data_dir: dir.path().join("data"),
            store: StoreOptions::default(),
            timeout: Duration::from_secs(1),
        };
        let request = Request {
            role: DeviceRole::Hub,
            branch: "main".into(),
            name: "hub".into(),
            hub: None,
            code: None,
        };
        // A setup that died after making its identity starts again with a new one.
        start(&work.data_dir).unwrap();
        drop(Store::init(&work.data_dir, DeviceRole::Hub, "main", "hub", false).unwrap());
        let first = Store::read_identity(&work.data_dir).unwrap();
        let outcome = work.perform(&request).unwrap().unwrap();
        assert!(matches!(&outcome, Outcome::Hub { admin, one_time, .. }
            if admin == "admin" && !one_time.is_empty()));
        let State::Done(now) = state(&work.data_dir).unwrap() else {
            panic!("not done")
        };
        assert_ne!(now.id, first.id);
        assert!(std::fs::read_dir(&work.data_dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("replaced-")));
    }

    #[test]
    fn an_unreachable_hub_leaves_a_till_unfinished_and_retry_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let work = Work {
            data_dir: dir.path().join("data"),
            store: StoreOptions::default(),
            timeout: Duration::from_secs(1),
        };
        // Port 1 on localhost: nothing listens there.
        let request = Request {
            role: DeviceRole::Terminal,
            branch: "main".into(),
            name: "till-1".into(),
            hub: Some("127.0.0.1:1".into()),
            code: Some("7KQ2-MX9D-4T8R-B3ZF".into()),
        };
        let failed = work.perform(&request).unwrap().unwrap_err();
        assert!(matches!(failed, Failure::Unreachable { .. }), "{failed:?}");
        let State::Pending(Some(first)) = state(&work.data_dir).unwrap() else {
            panic!("not pending")
        };
        work.perform(&request).unwrap().unwrap_err();
        let State::Pending(Some(again)) = state(&work.data_dir).unwrap() else {
            panic!("not pending")
        };
        assert_eq!(
            first.id, again.id,
            "the same branch and name reuse the identity"
        );
        // A code the hub would not read is marked on its field, before anything is written.
        let bad = Request {
            code: Some("nonsense".into()),
            ..request
        };
        assert!(matches!(
            work.perform(&bad).unwrap().unwrap_err(),
            Failure::Field(FieldError {
                field: FieldId::Code,
                ..
            })
        ));
    }
}

//! `pos enroll`: enroll this terminal with the branch hub (one-time code from
//! `pos hub enroll-code`), keep the TLS files in DATA_DIR/tls and record the hub in the log.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use pos_core::payloads::DeviceRegistered;
use pos_core::DeviceRole;
use pos_store::{DataDirLock, Store};
use pos_sync_net::enroll::RefusalReason;
use pos_sync_net::{enroll, EnrollError, EnrollRequest, Enrollment, EnrollmentCode, TerminalTls};

use crate::context::Context;

#[derive(Debug, Args)]
#[command(after_help = "\
The manager creates the code on the hub (with the hub stopped):
  pos hub enroll-code --as manager --data-dir /var/lib/pos-hub
then starts the hub, and on the terminal (with `pos terminal` stopped):
  pos enroll --hub 192.168.1.10:7443 --code ABCD-EFGH-JKMN-PQRS --data-dir /var/lib/pos
Codes are single use and expire; the terminal pins the hub's certificate authority on first use.")]
pub struct EnrollArgs {
    /// The hub's address, HOST:PORT (as `pos hub` logs it).
    #[arg(long, value_name = "ADDR")]
    pub hub: String,
    /// The one-time enrollment code (dashes and case do not matter).
    #[arg(long, value_name = "CODE")]
    pub code: String,
    /// Enroll again although this terminal is already enrolled (the new hub record replaces the
    /// TLS files; the log keeps the old one).
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for the hub.
    #[arg(long, value_name = "S", default_value_t = 20)]
    pub timeout_s: u64,
}

pub fn run(ctx: &Context, args: EnrollArgs) -> anyhow::Result<()> {
    let code = EnrollmentCode::parse(&args.code).map_err(|_| {
        anyhow::anyhow!(
            "{:?} is not an enrollment code (16 letters and digits, e.g. ABCD-EFGH-JKMN-PQRS): \
             check it, or ask the manager for a new one",
            args.code
        )
    })?;
    let mut store = crate::context::open_at(&ctx.data_dir, ctx.store_options())
        .context("stop `pos terminal` on this data dir first")?;
    let identity = store.identity().clone();
    if identity.role != DeviceRole::Terminal {
        anyhow::bail!(
            "{} is a {} data dir: only a terminal enrolls (with a hub)",
            ctx.data_dir.display(),
            identity.role
        );
    }
    let tls_dir = pos_sync_net::tls_dir(&ctx.data_dir);
    let existing = TerminalTls::load(&tls_dir).context("cannot read the saved enrollment")?;
    if !args.force {
        if let Some(tls) = existing {
            anyhow::bail!(
                "this terminal is already enrolled with hub \"{}\" ({}) at {}: use --force to \
                 enroll again",
                tls.hub.name,
                tls.hub.hub,
                tls.hub.address
            );
        }
        if let Some(hub) = store.hub_device()? {
            anyhow::bail!(
                "this terminal's log already records hub \"{}\" ({}): use --force to enroll again",
                hub.name,
                hub.device
            );
        }
    }
    let enrollment = enroll_open(
        &mut store,
        &ctx.data_dir,
        &args.hub,
        code,
        Duration::from_secs(args.timeout_s),
    )?
    .map_err(explain)?;
    let hub = &enrollment.hub;
    println!("Enrolled with hub \"{}\" ({})", hub.name, hub.hub);
    println!("  address          {}", hub.address);
    println!("  hub CA           {}", hub.ca_fingerprint);
    println!("  certificate      {}", hub.device_cert_fingerprint);
    println!("  TLS files        {}", tls_dir.display());
    println!(
        "Start syncing: pos terminal --hub {} --data-dir {}",
        hub.address,
        ctx.data_dir.display()
    );
    Ok(())
}

/// Enroll the terminal whose store is open (`store`, of `data_dir`) with the hub at `hub_addr`
/// and keep the result (TLS files in DATA_DIR/tls, the hub recorded in the log); `pos enroll`
/// and `pos setup`. Local trouble (the key, the runtime, saving) is the outer error; the hub's
/// refusal or silence is the inner one, so each caller can word it for its people.
pub(crate) fn enroll_open(
    store: &mut Store,
    data_dir: &Path,
    hub_addr: &str,
    code: EnrollmentCode,
    timeout: Duration,
) -> anyhow::Result<Result<Enrollment, EnrollError>> {
    let identity = store.identity().clone();
    let (_, key) = DataDirLock::shared(data_dir)
        .and_then(|lock| lock.load_identity())
        .context("cannot load this terminal's signing key")?;
    let request = EnrollRequest {
        hub_addr: hub_addr.to_owned(),
        code,
        device: identity.id,
        name: identity.name.clone(),
        audit_key: Arc::new(key),
        timeout: timeout.max(Duration::from_secs(1)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let enrollment = match runtime.block_on(enroll(&request)) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    keep(store, &pos_sync_net::tls_dir(data_dir), &enrollment)?;
    Ok(Ok(enrollment))
}

/// Keep an enrollment: its TLS files in `tls_dir` and the hub recorded in the terminal's log
/// (`pos enroll`, and `pos demo` for its terminals).
pub(crate) fn keep(
    store: &mut Store,
    tls_dir: &Path,
    enrollment: &Enrollment,
) -> anyhow::Result<()> {
    enrollment
        .save(tls_dir)
        .with_context(|| format!("cannot save the TLS files in {}", tls_dir.display()))?;
    let hub = &enrollment.hub;
    let audit_key = hub
        .audit_key()
        .map_err(|e| anyhow::anyhow!("the hub sent an unusable audit key: {e}"))?;
    let branch = store.identity().branch.clone();
    store
        .register_hub(&DeviceRegistered {
            device: hub.hub,
            role: DeviceRole::Hub,
            branch,
            name: hub.name.clone(),
            public_key: hex::encode(audit_key.0),
            cert_fingerprint: Some(hub.ca_fingerprint.clone()),
        })
        .context("cannot record the hub in this terminal's log")?;
    Ok(())
}

/// What to do about each failure.
pub(crate) fn explain(err: EnrollError) -> anyhow::Error {
    let hint = match &err {
        EnrollError::Connect { .. } | EnrollError::Timeout(_) => {
            "check the address and port (as `pos hub` logs them), that the hub is running and \
             the network between them"
        }
        EnrollError::Refused { reason, .. } => match reason {
            RefusalReason::CodeRefused | RefusalReason::TooManyAttempts => {
                "ask the manager for a new code (`pos hub enroll-code`)"
            }
            RefusalReason::DeviceRevoked | RefusalReason::DeviceIdTaken => {
                "give this terminal a new identity with `pos init --role terminal --force`, then \
                 enroll it with a new code"
            }
            _ => "ask the manager to look at the hub's log",
        },
        EnrollError::NotAuthentic => "ask the manager for a new code",
        EnrollError::Tls(_) => "check that the address is the hub's sync port",
        _ => "see the hub's log",
    };
    let text = err.to_string();
    if text.contains("pos hub enroll-code") {
        // The hub's refusal already says what to do.
        return anyhow::anyhow!("enrollment failed: {text}");
    }
    anyhow::anyhow!("enrollment failed: {text} (hint: {hint})")
}

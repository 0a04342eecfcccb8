//! The running hub's control socket: `pos hub enroll-code` and `pos hub devices revoke` while
//! the hub runs.
//!
//! The running hub owns the data dir (flock), so another process cannot write its store. It
//! listens instead on a Unix socket in the data dir (`hub.sock`, mode 0600: only the service
//! user reaches it) for one JSON request per connection. The actor still proves who they are
//! with their secret and TOTP code: the hub checks them against its store exactly as the
//! stopped-hub path does (lockout and security log included), so the socket grants nothing by
//! itself. A revocation also closes the device's sync connection at once.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pos_core::sale::{BarcodeRules, Product};
use pos_core::DeviceId;
use pos_store::{AccountPolicy, Store};
use pos_sync_store::RunningHub;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::cmd::user::refused;
use crate::context::CheckFailed;
use crate::secrets::SecretInput;

/// Largest request accepted: a catalogue import of some 10 000 products.
const MAX_REQUEST: u64 = 16 * 1024 * 1024;
/// A client that sends nothing within this is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("hub.sock")
}

/// The actor and their secrets, as the CLI read them from stdin.
#[derive(Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub secret: String,
    pub totp: Option<String>,
}

impl Actor {
    /// The actor `name` with their secret and TOTP code read from `input`.
    pub fn from_input(name: &str, input: &mut SecretInput) -> anyhow::Result<Actor> {
        Ok(Actor {
            name: name.to_owned(),
            secret: input.next(&format!("Secret of {name}"))?,
            totp: input.next_optional(&format!("TOTP code of {name} (empty if none)"))?,
        })
    }
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    EnrollCode {
        actor: Actor,
        ttl_min: u64,
    },
    Revoke {
        actor: Actor,
        device: DeviceId,
        reason: String,
    },
    /// `pos catalogue import`: checked rows, saved in one commit.
    SaveProducts {
        actor: Actor,
        products: Vec<Product>,
    },
    /// `pos report`: may the actor see this report (and export it)? An export is recorded as
    /// `security.report_exported`; the CLI then reads the report beside the hub (read-only).
    Report {
        actor: Actor,
        report: String,
        export: Option<ReportExport>,
    },
}

/// What `pos report` is about to write, for the security log.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReportExport {
    pub format: String,
    pub period: String,
    pub file: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    EnrollCode {
        code: String,
        expires_ms: u64,
    },
    Revoked {
        disconnected: bool,
    },
    Saved {
        saved: usize,
    },
    /// `pos report`: allowed (and the export recorded).
    Allowed,
    /// The actor was refused or denied (exit 1).
    Refused(String),
    /// Something failed (exit 2).
    Failed(String),
}

/// Listen on the data dir's control socket until the task is aborted.
pub fn listen(
    data_dir: &Path,
    hub: Arc<RunningHub>,
    policy: AccountPolicy,
    rules: BarcodeRules,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let path = socket_path(data_dir);
    // A socket file left by a killed hub: we hold the data dir's lock, so it is not in use.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
    let listener = UnixListener::bind(&path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    let policy = Arc::new((policy, rules));
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let (hub, policy) = (hub.clone(), policy.clone());
                    tokio::spawn(async move {
                        if let Err(e) = serve_one(stream, hub, policy).await {
                            tracing::warn!(error = %e, "control request failed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn serve_one(
    stream: UnixStream,
    hub: Arc<RunningHub>,
    policy: Arc<(AccountPolicy, BarcodeRules)>,
) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_REQUEST));
    tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line))
        .await
        .context("no request within the time limit")??;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => {
            tokio::task::spawn_blocking(move || handle(&hub, &policy.0, &policy.1, request))
                .await
                .unwrap_or_else(|e| Reply::Failed(format!("the request crashed: {e}")))
        }
        Err(e) => Reply::Failed(format!("not a control request: {e}")),
    };
    let mut out = serde_json::to_vec(&reply)?;
    out.push(b'\n');
    write.write_all(&out).await?;
    Ok(())
}

fn handle(
    hub: &RunningHub,
    policy: &AccountPolicy,
    rules: &BarcodeRules,
    request: Request,
) -> Reply {
    let outcome = match request {
        Request::EnrollCode { actor, ttl_min } => hub.with_store(|store| {
            let who = authenticate(store, &actor, policy)?;
            let code = store
                .create_enroll_code(&who, Duration::from_secs(ttl_min.saturating_mul(60)))
                .map_err(refused)?;
            tracing::info!(actor = %actor.name, expires_ms = code.expires_ms, "enrollment code created");
            Ok(Reply::EnrollCode {
                code: code.code,
                expires_ms: code.expires_ms,
            })
        }),
        Request::Revoke {
            actor,
            device,
            reason,
        } => hub
            .with_store(|store| {
                let who = authenticate(store, &actor, policy)?;
                store
                    .revoke_device(&who, device, &reason)
                    .map_err(refused)?;
                tracing::warn!(actor = %actor.name, %device, reason, "device revoked");
                anyhow::Ok(())
            })
            .map(|()| Reply::Revoked {
                disconnected: hub.disconnect(device, "this device was revoked"),
            }),
        Request::SaveProducts { actor, products } => {
            // Checked again here: the socket's client is trusted with nothing.
            match products
                .iter()
                .find_map(|p| p.validate(rules).err().map(|e| (p, e)))
            {
                Some((p, e)) => Err(CheckFailed(format!("product {}: {e}", p.sku)).into()),
                None => hub.with_store(|store| {
                    let who = authenticate(store, &actor, policy)?;
                    let saved = store.save_products(&who, products).map_err(refused)?;
                    tracing::info!(actor = %actor.name, saved, "catalogue imported");
                    Ok(Reply::Saved { saved })
                }),
            }
        }
        Request::Report {
            actor,
            report,
            export,
        } => match pos_report_export::ReportKind::parse(&report) {
            None => Err(anyhow::anyhow!("there is no report `{report}`")),
            Some(kind) => hub.with_store(|store| {
                let who = authenticate(store, &actor, policy)?;
                crate::cmd::report::allow(store, &who, kind, export.is_some())?;
                if let Some(export) = export {
                    let format = pos_report_export::Format::parse(&export.format)
                        .with_context(|| format!("no format `{}`", export.format))?;
                    store.append(vec![pos_report_export::export_event(
                        who.user,
                        kind,
                        format,
                        &export.period,
                        &export.file,
                    )])?;
                    tracing::info!(actor = %actor.name, report, file = export.file, "report exported");
                }
                Ok(Reply::Allowed)
            }),
        },
    };
    outcome.unwrap_or_else(|e| match e.downcast::<CheckFailed>() {
        Ok(refusal) => Reply::Refused(refusal.0),
        Err(e) => Reply::Failed(format!("{e:#}")),
    })
}

fn authenticate(
    store: &mut Store,
    actor: &Actor,
    policy: &AccountPolicy,
) -> anyhow::Result<pos_auth::Principal> {
    store
        .authenticate(&actor.name, &actor.secret, actor.totp.as_deref(), policy)
        .map_err(refused)
}

/// Send `request` to the hub running on `data_dir`: its reply, or an error saying what to do.
pub fn call(data_dir: &Path, request: &Request) -> anyhow::Result<Reply> {
    use std::io::{BufRead as _, Write as _};
    let path = socket_path(data_dir);
    let mut stream = std::os::unix::net::UnixStream::connect(&path).with_context(|| {
        format!(
            "the hub is running but its control socket {} does not answer (is it an older \
             version? stop it, run this command, then start it again)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = serde_json::to_vec(request)?;
    out.push(b'\n');
    stream
        .write_all(&out)
        .context("cannot send the request to the hub")?;
    let mut line = String::new();
    std::io::BufReader::new(std::io::Read::take(&stream, MAX_REQUEST))
        .read_line(&mut line)
        .context("no answer from the hub")?;
    serde_json::from_str(&line).context("the hub's answer is not understood")
}

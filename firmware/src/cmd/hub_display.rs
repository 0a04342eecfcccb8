//! `pos hub` with a display: the manager display (`pos_ui::hub`) on the main thread, reading
//! and writing the running hub's store through `RunningHub::with_store`, plus the jobs only
//! the firmware can do for it (verify the newest backup with the configured key, copy it to a
//! USB stick).

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use pos_store::Store;
use pos_sync_store::RunningHub;
use pos_ui::backend::{self, Backend, Environment, Options, ScreenSize};
use pos_ui::hub::{HubActions, HubOptions, StoreAccess};

use crate::cmd::backup::{backup_dir, copy_verified, STICK_DIR};
use crate::cmd::terminal::{screen_locale, session_policy};
use crate::context::Context;

/// The running hub's store, for the display (a short blocking call on the UI thread).
struct HubAccess(Arc<RunningHub>);

impl StoreAccess for HubAccess {
    fn with_store(&self, f: &mut dyn FnMut(&mut Store)) {
        self.0.with_store(|s| f(s))
    }
}

/// Where the display can show: a window, the panel, or None (no display: run headless).
pub fn choose_backend() -> Option<Backend> {
    match backend::choose(None, &Environment::detect()) {
        Ok(b) => Some(b),
        Err(e) => {
            eprintln!("No display for the manager display ({e}); running headless.");
            None
        }
    }
}

/// The display's settings from the config.
pub fn hub_options(ctx: &Context) -> HubOptions {
    let mut o = HubOptions::new(ctx.data_dir.clone());
    o.backup_dir = backup_dir(ctx);
    o.account_policy = ctx.account_policy();
    o.alert_rules = ctx.config.alert_rules();
    o.offline_alert_ms = u64::from(ctx.config.hub.offline_alert_min) * 60_000;
    o.currency = ctx.engine_config().currency;
    o.session_policy = session_policy(ctx);
    o
}

/// Verify and export for the backups page.
pub fn hub_actions(ctx: &Context) -> HubActions {
    let dir = backup_dir(ctx);
    // The key the scheduled backups use (read here without their side effects: the service
    // already warned or raised the alert about it).
    let b = &ctx.config.backup;
    let secret = pos_backup::job::unattended_secret(&b.key_file, &b.passphrase_file)
        .ok()
        .flatten();
    let verify_dir = dir.clone();
    HubActions {
        verify_backup: Some(Box::new(move || {
            let Some(secret) = &secret else {
                return Err(
                    "no backup key is configured ([backup] key_file): use pos backup \
                            verify --latest on the console"
                        .into(),
                );
            };
            let newest = newest_backup(&verify_dir)?;
            let report = pos_backup::verify(&newest, secret, &verify_dir, &mut |_: &str, _, _| {})
                .map_err(|e| e.to_string())?;
            let records = report.chains.iter().map(|c| c.records).sum();
            let name = newest
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((name, records))
        })),
        export_backup: Some(Box::new(move || {
            let newest = newest_backup(&dir)?;
            let drives = pos_backup::usb::drives();
            let mount = match drives.as_slice() {
                [d] => d.mount.clone(),
                [] => return Err("no USB stick found: plug one in and try again".into()),
                _ => {
                    return Err(
                        "several USB drives are plugged in: use pos backup export --to \
                                MOUNT on the console"
                            .into(),
                    )
                }
            };
            let dest = mount.join(STICK_DIR);
            std::fs::create_dir_all(&dest)
                .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
            let copied =
                copy_verified(&newest, &dest, &mut |_, _, _| {}).map_err(|e| format!("{e:#}"))?;
            Ok(copied.display().to_string())
        })),
        // The reports browser writes to the one USB stick (pos_ui::hub::usb_export_dir).
        export_dir: None,
    }
}

fn newest_backup(dir: &std::path::Path) -> Result<PathBuf, String> {
    pos_backup::list(dir)
        .map_err(|e| e.to_string())?
        .into_iter()
        .max_by_key(|b| b.header.created_ms)
        .map(|b| b.path)
        .ok_or_else(|| format!("no backups in {} yet", dir.display()))
}

/// Show the display over the running hub until its window closes or the service asks it to
/// quit (`slint::quit_event_loop` from the service's thread at Ctrl-C / SIGTERM).
pub fn show(
    ctx: &Context,
    backend: Backend,
    size: ScreenSize,
    hub: Arc<RunningHub>,
) -> anyhow::Result<()> {
    let locale = screen_locale(ctx)?;
    let access: Rc<dyn StoreAccess> = Rc::new(HubAccess(hub));
    let options = Options {
        backend: Some(backend),
        size,
        tick: Duration::from_secs(2),
        ..Options::default()
    };
    backend::run_hub(
        backend,
        access,
        hub_options(ctx),
        hub_actions(ctx),
        &options,
        |display| {
            if let Err(e) = display.set_locale(&locale) {
                tracing::warn!("locale {locale}: {e}");
            }
        },
    )
    .map_err(|e| anyhow::anyhow!(e))
}

use anyhow::Context as _;
use clap::Args;
use pos_core::DeviceRole;
use pos_store::Store;

use crate::context::Context;

#[derive(Debug, Args)]
#[command(
    after_help = "Refuses to touch an existing identity unless --force is given; even then \
nothing is deleted: the old identity and database move into DATA_DIR/replaced-<time>/."
)]
pub struct InitArgs {
    /// What this box is: `terminal` (a till) or `hub` (the branch server).
    #[arg(long, value_name = "terminal|hub")]
    pub role: DeviceRole,
    /// Branch (shop) this device belongs to.
    #[arg(long, value_name = "NAME", default_value = "main")]
    pub branch: String,
    /// Name shown to people, e.g. till-1 (default: the role and a short id).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace an existing identity; the old one is moved aside, never deleted.
    #[arg(long)]
    pub force: bool,
}

pub fn run(ctx: &Context, args: InitArgs) -> anyhow::Result<()> {
    let name = args.name.clone().unwrap_or_else(|| args.role.to_string());
    if name.trim().is_empty() || args.branch.trim().is_empty() {
        anyhow::bail!("--name and --branch must not be empty");
    }
    let (mut store, report) =
        Store::init(&ctx.data_dir, args.role, &args.branch, &name, args.force)
            .with_context(|| format!("cannot initialise data dir {}", ctx.data_dir.display()))?;
    let id = &report.identity;
    println!(
        "Initialised {} \"{}\" of branch \"{}\"",
        id.role, id.name, id.branch
    );
    println!("  device id   {}", id.id);
    println!("  public key  {}", id.public_key);
    println!("  data dir    {}", store.dir().display());
    let (_, one_time) = store
        .bootstrap_admin("admin")
        .context("cannot create the first admin")?;
    println!();
    println!("First admin user: admin");
    println!("One-time password (shown once): {one_time}");
    println!(
        "Change it now: pos user passwd admin --data-dir {}",
        store.dir().display()
    );
    println!("(an admin also enrolls an authenticator app for the TOTP second factor then)");
    if let Some(old) = &report.moved_aside {
        println!(
            "The previous identity and database were moved to {} (nothing was deleted).",
            old.display()
        );
    }
    Ok(())
}

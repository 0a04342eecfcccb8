//! `pos user ...` and `pos login`: accounts on this device.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pos_auth::{Locked, LoginRefusal};
use pos_store::{AccountError, Store};

use crate::context::{CheckFailed, Context};
use crate::secrets::SecretInput;
use crate::timefmt;

const SECRETS_HELP: &str = "Secrets are read from standard input, one per line (prompted \
without echo on a terminal); never pass them as arguments. Commands with --as ACTOR first read \
the actor's secret, then their TOTP code if their account uses one.";

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; prints a one-time PIN or password to hand over (changed at first use).
    #[command(after_help = SECRETS_HELP)]
    Add(AddArgs),
    /// List users with roles, status and credential kinds (never secrets).
    List(ListArgs),
    /// Lock an account now (until someone unlocks it).
    #[command(after_help = SECRETS_HELP)]
    Lock(TargetArgs),
    /// Unlock an account (after a lockout or a manual lock).
    #[command(after_help = SECRETS_HELP)]
    Unlock(TargetArgs),
    /// Change your own PIN/password (stdin: current, new, then TOTP code if you have one);
    /// with --as, an admin resets it to a new one-time secret instead.
    #[command(after_help = SECRETS_HELP)]
    Passwd(PasswdArgs),
    /// Add or remove roles of a user.
    #[command(after_help = SECRETS_HELP)]
    Role(RoleArgs),
    /// Give a user a badge to scan at the terminal (after the actor's lines, the badge code on
    /// stdin); a badge held by someone else moves to this user.
    #[command(after_help = SECRETS_HELP)]
    Badge(TargetArgs),
}

#[derive(Debug, Args)]
pub struct ActorArgs {
    /// The user doing this (needs the user-admin permission); their secret comes from stdin.
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Login name: 1 to 32 letters, digits, `.`, `_` or `-`.
    pub name: String,
    /// Role to grant (repeatable): cashier, supervisor, manager, accountant, auditor, admin,
    /// technician, or a custom role.
    #[arg(long = "role", value_name = "ROLE", required = true)]
    pub roles: Vec<String>,
    /// Name shown on receipts and screens (default: the login name).
    #[arg(long, value_name = "TEXT")]
    pub display_name: Option<String>,
    #[command(flatten)]
    pub actor: ActorArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    pub name: String,
    #[command(flatten)]
    pub actor: ActorArgs,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    pub name: String,
    /// Reset someone else's secret as this admin (prints a new one-time secret).
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct RoleArgs {
    pub name: String,
    #[arg(long = "add", value_name = "ROLE")]
    pub add: Vec<String>,
    #[arg(long = "remove", value_name = "ROLE")]
    pub remove: Vec<String>,
    #[command(flatten)]
    pub actor: ActorArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Reads the secret (PIN, password or badge) from standard input, then a \
TOTP code on the next line if the account uses one. Exit 0: logged in; 1: refused, with why \
(wrong user or secret, locked until T, MFA required, deactivated, must change secret)."
)]
pub struct LoginArgs {
    /// Login name.
    #[arg(long = "user", value_name = "NAME", required_unless_present = "badge")]
    pub user: Option<String>,
    /// Log in with a badge code (read from stdin) instead of a name and secret.
    #[arg(long, conflicts_with = "user")]
    pub badge: bool,
}

pub fn run(ctx: &Context, cmd: UserCommand) -> anyhow::Result<()> {
    if let UserCommand::List(args) = cmd {
        let store = Store::open_read_only(&ctx.data_dir)
            .with_context(|| format!("cannot read data dir {}", ctx.data_dir.display()))?;
        return list(&store, &args);
    }
    let mut store = ctx.open_store()?;
    let policy = ctx.account_policy();
    let mut input = SecretInput::from_stdin()?;
    match cmd {
        UserCommand::List(_) => Ok(()),
        UserCommand::Add(args) => {
            let actor = authenticate(&mut store, &args.actor.actor, &mut input, ctx)?;
            let display = args
                .display_name
                .clone()
                .unwrap_or_else(|| args.name.clone());
            let (id, secret) = store
                .add_user(&actor, &args.name, &display, &args.roles)
                .map_err(refused)?;
            println!(
                "Created user {} ({id}) with roles {}",
                args.name,
                args.roles.join(", ")
            );
            println!("One-time secret (shown once, must be changed at first use): {secret}");
            Ok(())
        }
        UserCommand::Lock(args) => {
            let actor = authenticate(&mut store, &args.actor.actor, &mut input, ctx)?;
            store
                .set_locked(&actor, &args.name, true, &policy)
                .map_err(refused)?;
            println!("Locked {}", args.name);
            Ok(())
        }
        UserCommand::Unlock(args) => {
            let actor = authenticate(&mut store, &args.actor.actor, &mut input, ctx)?;
            store
                .set_locked(&actor, &args.name, false, &policy)
                .map_err(refused)?;
            println!("Unlocked {}", args.name);
            Ok(())
        }
        UserCommand::Passwd(args) => match &args.actor {
            Some(actor) => {
                let actor = authenticate(&mut store, actor, &mut input, ctx)?;
                let secret = store
                    .reset_secret(&actor, &args.name, &policy)
                    .map_err(refused)?;
                println!("New one-time secret for {} (shown once, must be changed at first use): {secret}", args.name);
                Ok(())
            }
            None => {
                let current = input.next("Current secret")?;
                let new = input.next("New secret")?;
                if input.is_interactive() && input.next("New secret again")? != new {
                    anyhow::bail!("the two new secrets differ; nothing was changed");
                }
                let code = input.next_optional("TOTP code (empty if none)")?;
                let enrolled = store
                    .change_secret(&args.name, &current, &new, code.as_deref(), &policy)
                    .map_err(refused)?;
                println!("Secret changed for {}", args.name);
                if let Some(totp) = enrolled {
                    println!("Your role needs a second factor. Add this to an authenticator app now (shown once):");
                    println!("  {}", totp.otpauth_uri(&args.name, "3PlugPOS"));
                    println!("  secret: {}", totp.to_base32());
                    println!("From now on, log in with your password and then the 6-digit code.");
                }
                Ok(())
            }
        },
        UserCommand::Badge(args) => {
            let actor = authenticate(&mut store, &args.actor.actor, &mut input, ctx)?;
            let badge = input.next("Badge code")?;
            store
                .set_badge(&actor, &args.name, &badge, &policy)
                .map_err(refused)?;
            println!("Badge set for {}", args.name);
            Ok(())
        }
        UserCommand::Role(args) => {
            if args.add.is_empty() && args.remove.is_empty() {
                anyhow::bail!("nothing to do: give --add ROLE and/or --remove ROLE");
            }
            let actor = authenticate(&mut store, &args.actor.actor, &mut input, ctx)?;
            let (before, after) = store
                .change_roles(&actor, &args.name, &args.add, &args.remove, &policy)
                .map_err(refused)?;
            println!(
                "Roles of {}: {} → {}",
                args.name,
                before.join(", "),
                after.join(", ")
            );
            Ok(())
        }
    }
}

pub fn login(ctx: &Context, args: LoginArgs) -> anyhow::Result<()> {
    let mut store = ctx.open_store()?;
    let policy = ctx.account_policy();
    let mut input = SecretInput::from_stdin()?;
    let outcome = match &args.user {
        Some(user) if !args.badge => {
            let secret = input.next("Secret")?;
            let code = input.next_optional("TOTP code (empty if none)")?;
            store.login(user, &secret, code.as_deref(), &policy)
        }
        _ => {
            let badge = input.next("Badge")?;
            store.login_badge(&badge, &policy)
        }
    };
    let who = |store: &pos_store::Store, user| -> String {
        store
            .users()
            .ok()
            .and_then(|users| users.into_iter().find(|u| u.user == user))
            .map(|u| u.name)
            .unwrap_or_default()
    };
    match outcome.map_err(refused)? {
        Ok(ok) => {
            let roles = store
                .principal(ok.user)?
                .map(|p| {
                    p.roles
                        .iter()
                        .map(|r| r.name.clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            println!("OK logged in as {} ({roles})", who(&store, ok.user));
            Ok(())
        }
        Err(LoginRefusal::MustChangeSecret) => Err(CheckFailed(format!(
            "login refused: {} (pos user passwd {})",
            LoginRefusal::MustChangeSecret,
            args.user.as_deref().unwrap_or("NAME")
        ))
        .into()),
        Err(refusal) => Err(CheckFailed(format!("login refused: {}", describe(&refusal))).into()),
    }
}

/// Log the actor in for an administrative command.
pub(crate) fn authenticate(
    store: &mut Store,
    actor: &str,
    input: &mut SecretInput,
    ctx: &Context,
) -> anyhow::Result<pos_auth::Principal> {
    let secret = input.next(&format!("Secret of {actor}"))?;
    let code = input.next_optional(&format!("TOTP code of {actor} (empty if none)"))?;
    store
        .authenticate(actor, &secret, code.as_deref(), &ctx.account_policy())
        .map_err(refused)
}

/// Refusals and denials are failed checks (exit 1); everything else is an error (exit 2).
pub(crate) fn refused(err: AccountError) -> anyhow::Error {
    match err {
        AccountError::Login(refusal) => {
            CheckFailed(format!("refused: {}", describe(&refusal))).into()
        }
        AccountError::Denied(_) => CheckFailed(err.to_string()).into(),
        other => other.into(),
    }
}

fn describe(refusal: &LoginRefusal) -> String {
    match refusal {
        LoginRefusal::Locked(Locked::Until(ms)) => format!(
            "account locked until {} (wait, or ask a manager: pos user unlock)",
            timefmt::local(pos_core::Hlc::from_parts(*ms, 0))
        ),
        other => other.to_string(),
    }
}

fn list(store: &Store, args: &ListArgs) -> anyhow::Result<()> {
    let users = store.users()?;
    if args.json {
        let rows: Vec<serde_json::Value> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "id": u.user.to_string(),
                    "name": u.name,
                    "display_name": u.display_name,
                    "roles": u.roles,
                    "active": u.active,
                    "locked": u.locked.map(|l| lock_text(&l)),
                    "credentials": u.credentials,
                    "must_change": u.must_change,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if users.is_empty() {
        println!("No users yet (pos init creates the first admin).");
        return Ok(());
    }
    println!(
        "{:<16} {:<24} {:<28} {:<20} CREDENTIALS",
        "NAME", "DISPLAY NAME", "ROLES", "STATUS"
    );
    for u in users {
        let status = if !u.active {
            "deactivated".to_owned()
        } else if let Some(l) = u.locked {
            lock_text(&l)
        } else if u.must_change {
            "must change secret".to_owned()
        } else {
            "active".to_owned()
        };
        let creds: Vec<String> = u
            .credentials
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        println!(
            "{:<16} {:<24} {:<28} {:<20} {}",
            u.name,
            u.display_name,
            u.roles.join(","),
            status,
            creds.join(",")
        );
    }
    Ok(())
}

fn lock_text(l: &Locked) -> String {
    match l {
        Locked::Manually => "locked".to_owned(),
        Locked::Until(ms) => format!(
            "locked until {}",
            timefmt::local(pos_core::Hlc::from_parts(*ms, 0))
        ),
    }
}

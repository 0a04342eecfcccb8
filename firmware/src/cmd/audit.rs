use std::collections::HashMap;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use pos_audit::Event;
use pos_core::{DeviceId, UserId};
use pos_store::{LogFilter, Store, StoreError, VerifyError};

use crate::context::{CheckFailed, Context};
use crate::timefmt;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify every hash chain, checkpoint signature and the database's integrity.
    ///
    /// Prints `OK <n> records, head <hex>` and exits 0, or names the first bad record (origin,
    /// seq, why) and exits 1. Safe to run while the pos service is running.
    Verify(VerifyArgs),
    /// Show the trail as an auditor reads it: when, which device, who, what, approver, reason.
    Log(LogArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also print one line per origin device.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this module, kind or module.kind (e.g. `stock`, `stock.moved`).
    #[arg(long, value_name = "K")]
    pub kind: Option<String>,
    /// Only records since T: an age (2h, 7d), a date (2026-11-25) or a time (2026-11-25T08:00:00Z).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// At most N records (oldest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// One JSON object per line (JSON Lines) with the full envelope, for tools.
    #[arg(long)]
    pub json: bool,
}

pub fn run(ctx: &Context, cmd: AuditCommand) -> anyhow::Result<()> {
    let store = Store::open_read_only(&ctx.data_dir)
        .with_context(|| format!("cannot read data dir {}", ctx.data_dir.display()))?;
    match cmd {
        AuditCommand::Verify(args) => verify(&store, args),
        AuditCommand::Log(args) => log(&store, args),
    }
}

fn verify(store: &Store, args: VerifyArgs) -> anyhow::Result<()> {
    let report = match store.verify() {
        Ok(report) => report,
        Err(VerifyError::Tampered(finding)) => {
            return Err(CheckFailed(format!("TAMPERED {finding}")).into());
        }
        Err(VerifyError::Store(e @ StoreError::Corrupt { .. })) => {
            return Err(CheckFailed(format!("DAMAGED {e}")).into());
        }
        Err(VerifyError::Store(e)) => return Err(e.into()),
    };
    let own = store.device_id();
    let head = report
        .chains
        .iter()
        .find(|c| c.origin == own)
        .map(|c| c.head.to_hex())
        .unwrap_or_else(|| "none".into());
    println!("OK {} records, head {head}", report.records());
    if args.verbose {
        for chain in &report.chains {
            println!(
                "  origin {}  {} records  last seq {}  head {}",
                chain.origin, chain.records, chain.last_seq, chain.head
            );
        }
    }
    Ok(())
}

fn log(store: &Store, args: LogArgs) -> anyhow::Result<()> {
    let since = args
        .since
        .as_deref()
        .map(|s| timefmt::parse_since(s, jiff::Timestamp::now()))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let events = store.events(&LogFilter {
        kind: args.kind,
        since,
        limit: args.limit,
    })?;
    let names: HashMap<DeviceId, String> = store.device_names()?.into_iter().collect();
    let device = |id: &DeviceId| {
        names
            .get(id)
            .cloned()
            .unwrap_or_else(|| short(&id.to_string()))
    };
    let users: HashMap<UserId, String> = store
        .users()?
        .into_iter()
        .map(|u| (u.user, u.name))
        .collect();
    let who = |id: Option<UserId>, none: &str| match id {
        None => none.to_owned(),
        Some(id) => users
            .get(&id)
            .cloned()
            .unwrap_or_else(|| short(&id.to_string())),
    };
    if args.json {
        for e in &events {
            println!("{}", json_line(e, &device(&e.origin)));
        }
        return Ok(());
    }
    if events.is_empty() {
        println!("No records match.");
        return Ok(());
    }
    println!(
        "{:<26} {:<12} {:>6}  {:<9} {:<20} {:<9} {:<12} DETAILS",
        "TIME", "DEVICE", "SEQ", "WHO", "WHAT", "APPROVER", "REASON"
    );
    for e in &events {
        println!(
            "{:<26} {:<12} {:>6}  {:<9} {:<20} {:<9} {:<12} {}",
            timefmt::local(e.hlc),
            clip(&device(&e.origin), 12),
            e.seq,
            clip(&who(e.actor, "system"), 9),
            clip(&format!("{}.{}", e.module, e.kind), 20),
            clip(&who(e.approver, "-"), 9),
            clip(e.reason.as_deref().unwrap_or("-"), 12),
            details(e),
        );
    }
    Ok(())
}

/// The last 8 hex digits of a UUID: the random part of a UUIDv7 (its start is the time, shared
/// by ids made in the same moment).
fn short(id: &str) -> String {
    let hex: Vec<char> = id.chars().filter(|c| *c != '-').collect();
    hex[hex.len().saturating_sub(8)..].iter().collect()
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

/// The payload for people: `before → after` when the event records a change.
fn details(e: &Event) -> String {
    if e.module == "sale" && e.kind == "completed" {
        if let Ok(sale) =
            serde_json::from_slice::<pos_core::sale::events::SaleCompleted>(&e.payload)
        {
            let tenders: Vec<String> = sale
                .sale
                .payments
                .iter()
                .map(|p| p.tender.label())
                .collect();
            return format!(
                "receipt {}: {} lines, total {}, paid {}",
                sale.receipt,
                sale.sale.lines.len(),
                sale.sale.totals.due,
                tenders.join(" + ")
            );
        }
    }
    match readable_payload(e) {
        Ok(serde_json::Value::Object(mut map)) if map.contains_key("after") => {
            let before = map.remove("before").unwrap_or(serde_json::Value::Null);
            let after = map.remove("after").unwrap_or(serde_json::Value::Null);
            let rest = serde_json::Value::Object(map);
            format!("{rest} {before} → {after}")
        }
        Ok(value) => clip(&value.to_string(), 100),
        Err(_) => format!("({} bytes, not JSON)", e.payload.len()),
    }
}

/// The payload as JSON with credential verifiers blanked: they never leave the box in a report.
fn readable_payload(e: &Event) -> Result<serde_json::Value, serde_json::Error> {
    let mut value = serde_json::from_slice::<serde_json::Value>(&e.payload)?;
    pos_auth::events::redact(&mut value);
    Ok(value)
}

fn json_line(e: &Event, device_name: &str) -> serde_json::Value {
    let payload =
        readable_payload(e).unwrap_or_else(|_| serde_json::Value::String(hex::encode(&e.payload)));
    serde_json::json!({
        "id": e.id.to_string(),
        "origin": e.origin.to_string(),
        "device": device_name,
        "seq": e.seq,
        "time": timefmt::utc(e.hlc),
        "hlc": e.hlc.raw(),
        "module": e.module,
        "kind": e.kind,
        "actor": e.actor.map(|a| a.to_string()),
        "approver": e.approver.map(|a| a.to_string()),
        "reason": e.reason,
        "schema_version": e.schema_version,
        "payload": payload,
        "prev_hash": e.prev_hash.to_hex(),
        "hash": e.hash.to_hex(),
    })
}

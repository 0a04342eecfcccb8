//! `pos demo`: a hub and a terminal in one data dir, selling with simulated devices.
//!
//! Until the sale engine, devices and sync land, the demo exercises what exists: device
//! identities, the signed event log with projections, checkpoints and verification.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use pos_audit::EventDraft;
use pos_core::payloads::{SettingChanged, StockMoved};
use pos_core::{DeviceRole, UserId};
use pos_store::{Store, StoreError};

use crate::context::{open_at, Context};

#[derive(Debug, Args)]
#[command(
    after_help = "Without --data-dir the demo works in a new folder under the system's \
temporary directory and prints where. Run it again with the same --data-dir to continue."
)]
pub struct DemoArgs {
    /// Run without any window (the only mode until the touchscreen app lands).
    #[arg(long)]
    pub headless: bool,
    /// How many simulated sales the terminal records.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub sales: u32,
}

const ITEMS: [&str; 6] = [
    "espresso",
    "croissant",
    "baguette",
    "apples-kg",
    "milk-1l",
    "tea",
];

pub fn run(ctx: &Context, args: DemoArgs) -> anyhow::Result<()> {
    if !args.headless {
        println!("The touchscreen app is not part of this build yet; running headless.");
    }
    let root = if ctx.data_dir_given {
        ctx.data_dir.clone()
    } else {
        std::env::temp_dir().join(format!("3plugpos-demo-{}", pos_store::now_ms()))
    };
    std::fs::create_dir_all(&root)
        .with_context(|| format!("cannot create demo folder {}", root.display()))?;
    println!("Demo data in {}", root.display());

    let mut hub = open_or_init(ctx, &root.join("hub"), DeviceRole::Hub, "hub")?;
    let mut till = open_or_init(
        ctx,
        &root.join("terminal-1"),
        DeviceRole::Terminal,
        "till-1",
    )?;
    let manager = UserId::new_v7();
    let cashier = UserId::new_v7();

    // The hub owns settings and receives deliveries.
    let footer = serde_json::json!("Thank you for shopping local!");
    hub.append(vec![EventDraft::json(
        SettingChanged::MODULE,
        SettingChanged::KIND,
        &SettingChanged {
            key: "receipt.footer".into(),
            before: hub.setting("receipt.footer")?,
            after: footer,
        },
    )
    .by(manager)])?;
    let delivery: Vec<EventDraft> = ITEMS
        .iter()
        .map(|item| stock_move(item, 50_000).by(manager))
        .collect();
    hub.append(delivery.clone())?;
    till.append(delivery)?;

    // The terminal sells: each sale is one durable commit of its stock movements.
    let mut rng = pos_store::now_ms() | 1;
    for sale in 1..=args.sales {
        let lines = 1 + (next(&mut rng) % 5) as usize;
        let batch = (0..lines)
            .map(|_| {
                let item = ITEMS[(next(&mut rng) % ITEMS.len() as u64) as usize];
                stock_move(item, -1000 * (1 + (next(&mut rng) % 3) as i64)).by(cashier)
            })
            .collect();
        let commit = till.append(batch)?;
        if sale % 10 == 0 || sale == args.sales {
            println!(
                "  sale {sale:>4}/{}: log at seq {}",
                args.sales, commit.last_seq
            );
        }
    }
    till.checkpoint()?; // as at shift close

    for (label, store) in [("hub", &hub), ("terminal-1", &till)] {
        let report = store
            .verify()
            .map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        println!(
            "{label:<11} OK {} records, head {}",
            report.records(),
            store.head().1
        );
    }
    println!("Stock on terminal-1:");
    for (item, qty) in till.stock_levels()? {
        println!("  {item:<10} {:>8.3}", qty as f64 / 1000.0);
    }
    print_next_steps(&root);
    Ok(())
}

fn open_or_init(ctx: &Context, dir: &Path, role: DeviceRole, name: &str) -> anyhow::Result<Store> {
    match Store::open(dir, ctx.store_options()) {
        Ok(store) => Ok(store),
        Err(StoreError::NoDataDir(_) | StoreError::NotInitialized(_)) => {
            let (store, _) = Store::init(dir, role, "demo", name, false)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            println!("  created {role} \"{name}\" ({})", store.device_id());
            Ok(store)
        }
        Err(_) => open_at(dir, ctx.store_options()),
    }
}

fn stock_move(item: &str, quantity: i64) -> EventDraft {
    EventDraft::json(
        StockMoved::MODULE,
        StockMoved::KIND,
        &StockMoved {
            item: item.into(),
            quantity,
            cause: None,
            reference: None,
        },
    )
}

/// xorshift64: a few pseudo-random numbers for the simulation, no dependency needed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn print_next_steps(root: &Path) {
    let till: PathBuf = root.join("terminal-1");
    println!("Try:");
    println!("  pos audit log --data-dir {}", till.display());
    println!("  pos audit verify --data-dir {} --verbose", till.display());
}

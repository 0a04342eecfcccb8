//! `pos catalogue import|list`: the hub's products, the master data it publishes to terminals.
//!
//! A shop's product list usually comes as a spreadsheet; `import` reads it as CSV, checks every
//! row (naming the line and what is wrong), and saves all of it in one commit or nothing.
//! On a running hub the rows go through its control socket, as for enrollment codes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use pos_core::sale::{BarcodeRules, Currency, Money, Product, Unit};
use pos_core::{DeviceRole, ProductId};
use pos_store::{Store, StoreError};
use serde::Deserialize;

use crate::cmd::hub_control::{self, Reply};
use crate::cmd::user::{authenticate, refused};
use crate::context::{CheckFailed, Context};
use crate::secrets::SecretInput;

const IMPORT_HELP: &str = "\
The file is CSV with a header row. Columns (any order; the first four are required):
  sku        the shop's item code, unique (a product with a known SKU is updated)
  name       as printed on the receipt (at most 40 characters)
  price      per piece, or per kg for unit kg, e.g. 2.49 (tax included or not per [sale] pricing)
  tax_class  the tax class, e.g. A
  category   for the quick-key tabs and reports (default: empty)
  unit       each or kg (default each)
  barcodes   GTINs or PLUs separated by spaces (default none)
  cost       purchase price, for margins (default 0)
  quick_key  position on the quick-key screen (default none)
  active     true or false (default true)

Every row is checked first; one bad row imports nothing and names its line. Standard input:
the actor's secret, then their TOTP code (an empty line if none). Works on a hub whether it
runs or not; on an enrolled terminal it is refused (the hub owns the catalogue).

Example:
  printf 'sku,name,price,tax_class,category,barcodes\\nBRD1,Sourdough loaf,3.90,B,Bakery,4006381333931\\n' > products.csv
  pos catalogue import products.csv --as maria --data-dir /var/lib/pos-hub";

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// Create or update products from a CSV file (the actor's secret on stdin).
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// The products of this device's catalogue.
    List {
        /// One JSON object per product, as an array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file.
    pub file: PathBuf,
    /// The user doing this (needs the catalogue-edit permission).
    #[arg(long = "as", value_name = "ACTOR")]
    pub actor: String,
    /// Check the file and show what would change, save nothing (no secret needed).
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(ctx: &Context, cmd: CatalogueCommand) -> anyhow::Result<()> {
    match cmd {
        CatalogueCommand::Import(args) => import(ctx, args),
        CatalogueCommand::List { json } => list(ctx, json),
    }
}

/// One CSV row as written.
#[derive(Debug, Deserialize)]
struct Row {
    sku: String,
    name: String,
    price: String,
    tax_class: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    barcodes: String,
    #[serde(default)]
    cost: String,
    #[serde(default)]
    quick_key: String,
    #[serde(default)]
    active: String,
}

impl Row {
    fn product(self, rules: &BarcodeRules, currency: &Currency) -> anyhow::Result<Product> {
        let money = |what: &str, text: &str| {
            Money::parse(text.trim(), currency).map_err(|e| anyhow::anyhow!("{what}: {e}"))
        };
        let unit = match self.unit.trim().to_ascii_lowercase().as_str() {
            "" | "each" | "pc" | "piece" => Unit::Each,
            "kg" => Unit::Kg,
            other => bail!("unit: {other:?} is neither each nor kg"),
        };
        let quick_key = match self.quick_key.trim() {
            "" => None,
            n => Some(
                n.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("quick_key: {n:?} is not a number 0..=65535"))?,
            ),
        };
        let active = match self.active.trim().to_ascii_lowercase().as_str() {
            "" | "true" | "yes" | "1" => true,
            "false" | "no" | "0" => false,
            other => bail!("active: {other:?} is neither true nor false"),
        };
        let product = Product {
            // A new product's id; an existing SKU keeps its own (Store::save_products).
            id: ProductId::new_v7(),
            sku: self.sku.trim().to_owned(),
            name: self.name.trim().to_owned(),
            unit,
            price: money("price", &self.price)?,
            cost: if self.cost.trim().is_empty() {
                Money(0)
            } else {
                money("cost", &self.cost)?
            },
            tax_class: self.tax_class.trim().to_owned(),
            category: self.category.trim().to_owned(),
            quick_key,
            active,
            barcodes: self
                .barcodes
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        };
        product.validate(rules)?;
        Ok(product)
    }
}

/// Every row of `path` as a product, or the first bad rows with their line numbers.
fn read_csv(
    path: &Path,
    rules: &BarcodeRules,
    currency: &Currency,
) -> anyhow::Result<Vec<Product>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .from_reader(file);
    let mut products = Vec::new();
    let mut problems = Vec::new();
    let mut skus = std::collections::HashMap::new();
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        // Line 1 is the header.
        let line = i + 2;
        let product = row
            .map_err(|e| anyhow::anyhow!("{}", csv_problem(&e)))
            .and_then(|r| r.product(rules, currency));
        match product {
            Ok(p) => {
                if let Some(first) = skus.insert(p.sku.clone(), line) {
                    problems.push(format!(
                        "line {line}: SKU {} is also on line {first}",
                        p.sku
                    ));
                }
                products.push(p);
            }
            Err(e) => problems.push(format!("line {line}: {e:#}")),
        }
        if problems.len() >= 20 {
            problems.push("(stopped after 20 problems)".into());
            break;
        }
    }
    if !problems.is_empty() {
        return Err(CheckFailed(format!(
            "{} was not imported (nothing was saved):\n  {}",
            path.display(),
            problems.join("\n  ")
        ))
        .into());
    }
    if products.is_empty() {
        bail!("{} holds no products (only a header?)", path.display());
    }
    Ok(products)
}

fn csv_problem(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(_) => err.to_string(),
            None => format!("{err} (the header needs sku, name, price and tax_class)"),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text (save the file as UTF-8 CSV)".into(),
        _ => e.to_string(),
    }
}

fn import(ctx: &Context, args: ImportArgs) -> anyhow::Result<()> {
    let identity = Store::read_identity(&ctx.data_dir)
        .with_context(|| format!("cannot read the data dir {}", ctx.data_dir.display()))?;
    if identity.role == DeviceRole::Terminal
        && pos_sync_net::TerminalTls::load(&pos_sync_net::tls_dir(&ctx.data_dir))?.is_some()
    {
        bail!(
            "this terminal is enrolled with a hub, which owns the catalogue: import the file \
             on the hub (pos catalogue import FILE --as ACTOR --data-dir HUB_DATA_DIR)"
        );
    }
    let cfg = ctx.engine_config();
    let products = read_csv(&args.file, &cfg.barcodes, &cfg.currency)?;
    if args.dry_run {
        let store = Store::open_read_only(&ctx.data_dir)
            .with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))?;
        let (mut new, mut changed, mut same) = (0, 0, 0);
        for p in &products {
            match store.product_by_sku(&p.sku)? {
                None => new += 1,
                Some(mut stored) => {
                    stored.id = p.id;
                    if stored == *p {
                        same += 1;
                    } else {
                        changed += 1;
                    }
                }
            }
        }
        println!(
            "{} rows OK: {new} new, {changed} changed, {same} unchanged (dry run: nothing saved)",
            products.len()
        );
        return Ok(());
    }
    let total = products.len();
    let mut input = SecretInput::from_stdin()?;
    let saved = match Store::open(&ctx.data_dir, ctx.store_options()) {
        Ok(mut store) => {
            let actor = authenticate(&mut store, &args.actor, &mut input, ctx)?;
            store.save_products(&actor, products).map_err(refused)?
        }
        Err(StoreError::Locked { .. }) if identity.role == DeviceRole::Hub => {
            let request = hub_control::Request::SaveProducts {
                actor: hub_control::Actor::from_input(&args.actor, &mut input)?,
                products,
            };
            match hub_control::call(&ctx.data_dir, &request)? {
                Reply::Saved { saved } => saved,
                Reply::Refused(why) => return Err(CheckFailed(why).into()),
                Reply::Failed(why) => bail!("the hub could not save the products: {why}"),
                other => bail!("unexpected answer from the hub: {other:?}"),
            }
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))
        }
    };
    println!(
        "Saved {saved} of {total} products ({} unchanged).",
        total - saved
    );
    if identity.role == DeviceRole::Hub && saved > 0 {
        println!("Terminals receive them at their next sync.");
    }
    Ok(())
}

fn list(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let store = Store::open_read_only(&ctx.data_dir)
        .with_context(|| format!("cannot open data dir {}", ctx.data_dir.display()))?;
    let products = store.products()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&products)?);
        return Ok(());
    }
    if products.is_empty() {
        println!("No products yet (add them with `pos catalogue import FILE --as ACTOR`).");
        return Ok(());
    }
    let currency = ctx.engine_config().currency;
    println!(
        "{:<14}  {:<32}  {:>10}  {:<4}  {:<14}  {:<6}  BARCODES",
        "SKU", "NAME", "PRICE", "TAX", "CATEGORY", "ACTIVE"
    );
    for p in products {
        println!(
            "{:<14}  {:<32}  {:>10}  {:<4}  {:<14}  {:<6}  {}",
            p.sku,
            p.name,
            format!(
                "{}{}",
                p.price.format(&currency),
                if p.unit == Unit::Kg { "/kg" } else { "" }
            ),
            p.tax_class,
            p.category,
            if p.active { "yes" } else { "no" },
            p.barcodes.join(" ")
        );
    }
    Ok(())
}

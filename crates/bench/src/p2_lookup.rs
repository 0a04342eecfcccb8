//! P2 barcode lookup: `Store::product_by_code` (the scan path: barcode key -> product row ->
//! parsed `Product`) in a terminal's catalogue of 1M products, against the raw SQLite point
//! query on the barcode table alone, through a separate read-only connection to the same file.
//! The goal is absolute (p99 under 20 us, so a scan never waits on the catalogue); the ratio
//! shows what the product row and its JSON add on top of the unavoidable index lookup.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use pos_audit::EventDraft;
use pos_core::sale::barcode::check_digit;
use pos_core::sale::events::{ProductSaved, CATALOGUE};
use pos_core::sale::{Money, Product, Unit};
use pos_core::{DeviceRole, ProductId};
use pos_store::{Store, DB_FILE};
use rusqlite::{Connection, OpenFlags};

use crate::figure::{group, Better, Cond, Figure, Meta};
use crate::timing::{interleaved, Samples};
use crate::{fsinfo, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P2",
        name: "barcode lookup",
        unit: "us",
        baseline_name: "raw SQLite point query (p99)",
        better: Better::Lower,
        goal: "p99 < 20 us",
        conditions: &[Cond::ValueAtMost(20.0)],
    },
    run,
};

/// Products saved per commit while building the catalogue.
pub(crate) const BATCH: u64 = 5_000;
/// Every this many products has a second barcode (a multipack or an older label).
const SECOND_BARCODE_EVERY: u64 = 4;

const RAW_LOOKUP: &str = "SELECT product FROM catalogue_barcodes WHERE code = ?1";

const WORDS: [&str; 24] = [
    "apple", "banana", "cherry", "cocoa", "coffee", "cola", "cream", "dark", "fresh", "ginger",
    "honey", "lemon", "milk", "orange", "sugar", "vanilla", "butter", "cheese", "bread", "rice",
    "pasta", "tomato", "water", "juice",
];
const CATEGORIES: [&str; 8] = [
    "grocery",
    "drinks",
    "dairy",
    "bakery",
    "produce",
    "frozen",
    "household",
    "snacks",
];

/// The EAN-13 of product `n` (`second` for its second barcode): a "4" GS1 prefix, never a
/// scale-label prefix.
pub(crate) fn barcode(n: u64, second: bool) -> String {
    let body = format!("4{}{n:010}", if second { 9 } else { 0 });
    let check = check_digit(&body).unwrap_or(0);
    format!("{body}{check}")
}

pub(crate) fn product(n: u64, id: ProductId) -> Product {
    let word = |k: u64| WORDS[(k % WORDS.len() as u64) as usize];
    let mut barcodes = vec![barcode(n, false)];
    if n % SECOND_BARCODE_EVERY == 0 {
        barcodes.push(barcode(n, true));
    }
    Product {
        id,
        sku: format!("SKU{n:07}"),
        name: format!(
            "{} {} {} {}g",
            word(n),
            word(n / 24),
            word(n / 576),
            50 + n % 950
        ),
        unit: if n % 20 == 7 { Unit::Kg } else { Unit::Each },
        price: Money(49 + (n % 5000) as i64),
        cost: Money(30 + (n % 3000) as i64),
        tax_class: if n % 5 == 0 { "B" } else { "A" }.into(),
        category: CATEGORIES[(n % CATEGORIES.len() as u64) as usize].into(),
        quick_key: (n < 40).then_some(n as u16),
        active: n % 97 != 13,
        barcodes,
    }
}

/// A small, fast, reproducible generator (splitmix64) for picking products.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }

    /// A random existing key and the product it belongs to.
    fn key(&mut self, n: u64) -> (String, u64) {
        let p = self.below(n);
        let second = p % SECOND_BARCODE_EVERY == 0 && self.below(2) == 1;
        (barcode(p, second), p)
    }
}

fn run(settings: &Settings) -> Result<Figure> {
    let (n, warmup, rounds) = if settings.quick {
        (100_000u64, 2_000, 20_000)
    } else {
        (1_000_000u64, 20_000, 200_000)
    };
    // Declared first so it is removed last, after the store and connection are closed.
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p2-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, _) = fsinfo::describe(root.path());
    eprintln!("P2: files in {where_}");
    let data_dir = root.path().join("terminal");
    let (mut store, _) = Store::init(&data_dir, DeviceRole::Terminal, "bench", "till-1", false)
        .with_context(|| format!("initialising a terminal data dir in {}", data_dir.display()))?;

    let started = Instant::now();
    let ids: Vec<ProductId> = (0..n).map(|_| ProductId::new_v7()).collect();
    for first in (0..n).step_by(BATCH as usize) {
        let drafts = (first..(first + BATCH).min(n))
            .map(|i| {
                EventDraft::json(
                    CATALOGUE,
                    ProductSaved::KIND,
                    &ProductSaved {
                        product: product(i, ids[i as usize]),
                        before: None,
                    },
                )
            })
            .collect();
        store
            .append(drafts)
            .with_context(|| format!("saving products {first}.."))?;
    }
    let built = started.elapsed().as_secs_f64();
    let barcodes = n + n.div_ceil(SECOND_BARCODE_EVERY);
    let db_path = data_dir.join(DB_FILE);
    let db_mb = [DB_FILE.to_owned(), format!("{DB_FILE}-wal")]
        .iter()
        .filter_map(|f| std::fs::metadata(data_dir.join(f)).ok())
        .map(|m| m.len())
        .sum::<u64>() as f64
        / 1e6;
    eprintln!(
        "P2: built a catalogue of {} products ({} barcodes) in {built:.1} s \
         ({} products/s); database {db_mb:.0} MB",
        group(n as f64),
        group(barcodes as f64),
        group(n as f64 / built),
    );

    let raw = Connection::open_with_flags(
        &db_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} read-only", db_path.display()))?;

    // Each side draws its own keys, so neither reads pages the other just brought in.
    let (mut keys_a, mut keys_b) = (Rng(1), Rng(2));
    let (value, baseline) = interleaved(
        warmup,
        rounds,
        || {
            let (key, p) = keys_a.key(n);
            let t = Instant::now();
            let found = store.product_by_code(&key)?;
            let took = t.elapsed();
            ensure!(
                found.is_some_and(|f| f.id == ids[p as usize]),
                "barcode {key} did not find product {p}"
            );
            Ok(took)
        },
        || {
            let (key, p) = keys_b.key(n);
            let t = Instant::now();
            let found: Vec<u8> = raw
                .prepare_cached(RAW_LOOKUP)?
                .query_row([&key], |r| r.get(0))?;
            let took = t.elapsed();
            ensure!(
                found == ids[p as usize].as_bytes(),
                "raw lookup of {key} did not find product {p}"
            );
            Ok(took)
        },
    )?;
    drop(raw);
    drop(store);

    let us = |s: f64| s * 1e6;
    let p99 = |s: &Samples| us(s.quantile(0.99));
    let percentiles = |s: &Samples| {
        format!(
            "p50 {} / p90 {} / p99 {} / max {} us",
            group(us(s.quantile(0.5))),
            group(us(s.quantile(0.9))),
            group(us(s.quantile(0.99))),
            group(us(s.quantile(1.0))),
        )
    };
    let figure = Figure::new(&SPEC.meta, p99(&value), p99(&baseline));
    let ratio = figure.ratio;
    Ok(figure
        .note(format!("files: {where_}"))
        .note(format!(
            "catalogue of {} products, {} barcodes, built in {built:.1} s (batches of {BATCH}); \
             database {db_mb:.0} MB",
            group(n as f64),
            group(barcodes as f64),
        ))
        .note(format!(
            "{rounds} interleaved lookups of random existing barcodes after {warmup} warm-up; \
             Store::product_by_code: {}; raw point query: {}",
            percentiles(&value),
            percentiles(&baseline)
        ))
        .note(format!(
            "the goal is the absolute p99; the ratio {ratio} (store / raw, p99) is informational"
        )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pos_core::sale::{parse_barcode, BarcodeRules, Scanned};

    #[test]
    fn generated_products_are_valid_and_scan_to_their_keys() {
        let rules = BarcodeRules::default();
        for n in [0, 1, 4, 7, 13, 99_999, 999_999] {
            let p = product(n, ProductId::new_v7());
            p.validate(&rules).unwrap();
            for code in &p.barcodes {
                assert_eq!(
                    parse_barcode(code, &rules).unwrap(),
                    Scanned::Gtin(code.clone())
                );
            }
        }
        let mut rng = Rng(7);
        for _ in 0..1000 {
            let (key, p) = rng.key(10);
            assert!(p < 10 && (key == barcode(p, false) || key == barcode(p, true)));
        }
    }
}

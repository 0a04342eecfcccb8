//! P9 today's dashboard: `Store::dashboard` (the KPI tiles, sales per hour, the top 10
//! products and the tender split of today) read from the analytics tables, against the naive
//! GROUP BY queries computing the same from the `sale.completed` events' JSON (`json_each`
//! over their lines and payments) over the same data, in the same run.
//!
//! The data: a terminal store with a 5 000-product catalogue and sales of 20 lines each
//! (5 distinct items, realistic tax and cash/card payments), appended through `Store::append`
//! in big commits so the projections (receipts and the analytics) fill as in production. The
//! store stamps every event with the current time, so every line is today's: the worst case
//! for the dashboard, whose work grows with the day's aggregates, not with the history.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _, Result};
use pos_audit::EventDraft;
use pos_core::sale::events::{ProductSaved, SaleCompleted, ShiftOpened, SALE, SHIFT};
use pos_core::sale::{
    CashRounding, Money, PricingMode, Product, Quantity, TaxRate, Tender, Ticket, Unit,
};
use pos_core::{DeviceRole, Hlc, ProductId, ShiftId, TicketId, UserId};
use pos_store::reports::{Dashboard, Period};
use pos_store::{Store, DB_FILE};
use rusqlite::{params, Connection, OpenFlags};

use crate::figure::{Better, Cond, Figure, Meta};
use crate::timing::{self, interleaved, time};
use crate::{fsinfo, workload, Settings, Spec};

pub const SPEC: Spec = Spec {
    meta: Meta {
        id: "P9",
        name: "today's dashboard over 10M sale lines",
        unit: "ms",
        baseline_name: "naive GROUP BY over the sale events' JSON, same data",
        better: Better::Lower,
        goal: "< 50 ms and ratio <= 0.01 (100x faster)",
        conditions: &[Cond::ValueAtMost(50.0), Cond::RatioAtMost(0.01)],
    },
    run,
};

/// Products in the catalogue.
const PRODUCTS: usize = 5_000;
/// Distinct sale templates (each a real ticket: 20 lines of 5 items).
const TEMPLATES: usize = 1_024;
/// Sales per `Store::append`.
const SALES_PER_APPEND: usize = 2_000;
/// Top products on the dashboard.
const TOP: usize = 10;
/// Dashboard reads per round (the round's value is their median).
const READS_PER_ROUND: usize = 15;

/// Overrides the number of sale lines (e.g. to try a size between quick and full).
const LINES_ENV: &str = "POS_BENCH_P9_LINES";

fn product(i: usize) -> Product {
    let price = 50 + (i as i64 * 37) % 2_000;
    Product {
        id: ProductId::new_v7(),
        sku: format!("sku-{i:05}"),
        name: format!("Product {i}"),
        unit: Unit::Each,
        price: Money(price),
        cost: Money(price * 3 / 5),
        tax_class: if i % 3 == 0 { "std" } else { "food" }.into(),
        category: format!("cat-{}", i % 40),
        quick_key: None,
        active: true,
        barcodes: vec![],
    }
}

fn rates() -> Vec<TaxRate> {
    vec![
        TaxRate {
            class: "std".into(),
            name: "VAT".into(),
            rate_bp: 2000,
        },
        TaxRate {
            class: "food".into(),
            name: "VAT reduced".into(),
            rate_bp: 700,
        },
    ]
}

/// The JSON of `TEMPLATES` completed sales of `workload::SALE_LINES` lines each.
fn templates(catalogue: &[Product]) -> Result<Vec<String>> {
    (0..TEMPLATES)
        .map(|t| {
            let mut ticket = Ticket::new(TicketId::new_v7(), PricingMode::Inclusive, rates());
            for line in 0..workload::SALE_LINES {
                let item = (t * 7919 + (line % 5) * 613) % catalogue.len();
                let qty = Quantity::units(1 + (line % 3) as i64);
                ticket.add_item(&catalogue[item], qty, None)?;
            }
            let due = ticket.totals()?.due;
            if t % 3 == 0 {
                let card = Tender::Card {
                    approval_code: "A1".into(),
                    last4: "4242".into(),
                };
                ticket.add_payment(card, due)?;
            } else {
                ticket.add_payment(Tender::Cash, Money((due.0 / 1000 + 1) * 1000))?;
            }
            Ok(serde_json::to_string(
                &ticket.complete(&CashRounding::default())?,
            )?)
        })
        .collect()
}

/// A terminal store with the catalogue and `lines` sale lines of today.
fn fill(dir: &std::path::Path, lines: u64) -> Result<Store> {
    let mut store = Store::init(dir, DeviceRole::Terminal, "main", "bench", false)?.0;
    let catalogue: Vec<Product> = (0..PRODUCTS).map(product).collect();
    let drafts: Vec<EventDraft> = catalogue
        .iter()
        .map(|p| {
            EventDraft::json(
                Product::MODULE,
                Product::KIND,
                &ProductSaved {
                    product: p.clone(),
                    before: None,
                },
            )
        })
        .collect();
    store.append(drafts)?;
    let templates = templates(&catalogue)?;
    let shift = ShiftId::new_v7();
    let cashiers = [UserId::new_v7(), UserId::new_v7(), UserId::new_v7()];
    store.append(vec![EventDraft::json(
        SHIFT,
        ShiftOpened::KIND,
        &ShiftOpened {
            shift,
            float: Money(10_000),
        },
    )
    .by(cashiers[0])])?;
    let shift_json = serde_json::to_string(&shift)?;
    let sales = lines.div_ceil(workload::SALE_LINES as u64);
    let mut receipt = 0u64;
    let started = Instant::now();
    while receipt < sales {
        let n = (sales - receipt).min(SALES_PER_APPEND as u64);
        let drafts: Vec<EventDraft> = (0..n)
            .map(|_| {
                receipt += 1;
                let sale = &templates[(receipt as usize * 31) % templates.len()];
                let mut d = EventDraft::json(SALE, SaleCompleted::KIND, &());
                d.payload =
                    format!(r#"{{"receipt":{receipt},"shift":{shift_json},"sale":{sale}}}"#)
                        .into_bytes();
                d.by(cashiers[receipt as usize % cashiers.len()])
            })
            .collect();
        store.append(drafts)?;
        if receipt % 100_000 < SALES_PER_APPEND as u64 {
            eprintln!(
                "P9: {} of {} sale lines appended ({:.0} s)",
                receipt * workload::SALE_LINES as u64,
                sales * workload::SALE_LINES as u64,
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(store)
}

/// What the dashboard shows, in comparable form: net sales, transactions, items, per-hour net
/// sales, the top products (sku, net sales) and the tenders (key, count, amount).
#[derive(Debug, PartialEq, Eq)]
struct Shown {
    net: i64,
    transactions: i64,
    items: i64,
    net_ex_tax: i64,
    cost: i64,
    hours: BTreeMap<u64, i64>,
    top: Vec<(String, i64)>,
    tenders: Vec<(String, i64, i64)>,
}

fn shown(d: &Dashboard) -> Shown {
    Shown {
        net: d.kpis.net_sales.0,
        transactions: d.kpis.transactions,
        items: d.kpis.items_per_basket_milli,
        net_ex_tax: d.kpis.net_ex_tax.0,
        cost: d.kpis.cost_of_goods.0,
        hours: d
            .hours
            .iter()
            .filter(|h| h.transactions != 0)
            .map(|h| (h.hour_start_ms, h.net_sales.0))
            .collect(),
        top: d
            .top_products
            .iter()
            .map(|p| (p.sku.clone(), p.net_sales.0))
            .collect(),
        tenders: d
            .tenders
            .iter()
            .map(|t| (t.tender.clone(), t.count, t.amount.0))
            .collect(),
    }
}

/// The naive way: the same figures straight from the day's `sale.completed` payloads.
fn naive(conn: &Connection, period: Period) -> Result<Shown> {
    let from = Hlc::from_parts(period.from_ms, 0).raw() as i64;
    let to = Hlc::from_parts(period.to_ms, 0).raw() as i64;
    const DAY: &str = "e.module = 'sale' AND e.kind = 'completed' AND e.hlc >= ?1 AND e.hlc < ?2";
    // KPI tiles and the hours, one pass over the sales.
    let mut hours = BTreeMap::new();
    let (mut net, mut transactions, mut items) = (0i64, 0i64, 0i64);
    let mut stmt = conn.prepare(&format!(
        "SELECT (e.hlc >> 16) / 3600000 AS hour, count(*),
                sum(json_extract(CAST(e.payload AS TEXT), '$.sale.totals.due')),
                sum(json_extract(CAST(e.payload AS TEXT), '$.sale.totals.items'))
         FROM events e WHERE {DAY} GROUP BY hour"
    ))?;
    let mut rows = stmt.query(params![from, to])?;
    while let Some(r) = rows.next()? {
        let (hour, count, due, its): (i64, i64, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        hours.insert(hour as u64 * 3_600_000, due);
        net += due;
        transactions += count;
        items += its;
    }
    // Products: the top ones, and the margin (net without tax − quantity x catalogue cost).
    let mut stmt = conn.prepare(&format!(
        "SELECT s.sku, s.paid, s.ex_tax, s.qty, json_extract(c.product, '$.cost')
         FROM (SELECT json_extract(l.value, '$.sku') AS sku,
                      sum(json_extract(l.value, '$.paid')) AS paid,
                      sum(json_extract(l.value, '$.paid') - json_extract(l.value, '$.tax')) AS ex_tax,
                      sum(json_extract(l.value, '$.qty')) AS qty
               FROM events e, json_each(CAST(e.payload AS TEXT), '$.sale.lines') l
               WHERE {DAY} AND json_extract(l.value, '$.voided') = 0
               GROUP BY 1) s
         LEFT JOIN catalogue_products c ON c.sku = s.sku
         ORDER BY s.paid DESC, s.sku"
    ))?;
    let mut rows = stmt.query(params![from, to])?;
    let (mut top, mut net_ex_tax, mut cost) = (Vec::new(), 0i64, 0i64);
    while let Some(r) = rows.next()? {
        let (sku, paid, ex_tax, qty, unit_cost): (String, i64, i64, i64, Option<i64>) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        if top.len() < TOP {
            top.push((sku, paid));
        }
        if let Some(c) = unit_cost {
            net_ex_tax += ex_tax;
            cost += pos_store::reports::cost_of(c, qty);
        }
    }
    // Tenders: payments by type, change off cash.
    let mut tenders: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut stmt = conn.prepare(&format!(
        "SELECT json_extract(p.value, '$.tender.type'), count(*), sum(json_extract(p.value, '$.amount'))
         FROM events e, json_each(CAST(e.payload AS TEXT), '$.sale.payments') p
         WHERE {DAY} GROUP BY 1"
    ))?;
    let mut rows = stmt.query(params![from, to])?;
    while let Some(r) = rows.next()? {
        tenders.insert(r.get(0)?, (r.get(1)?, r.get(2)?));
    }
    let change: i64 = conn.query_row(
        &format!(
            "SELECT coalesce(sum(json_extract(CAST(e.payload AS TEXT), '$.sale.change')), 0)
             FROM events e WHERE {DAY}"
        ),
        params![from, to],
        |r| r.get(0),
    )?;
    if change != 0 {
        tenders.entry("cash".into()).or_default().1 -= change;
    }
    let basket = |v: i64| {
        if transactions > 0 {
            (2 * v + transactions) / (2 * transactions)
        } else {
            0
        }
    };
    Ok(Shown {
        net,
        transactions,
        items: basket(items),
        net_ex_tax,
        cost,
        hours,
        top,
        tenders: tenders
            .into_iter()
            .map(|(k, (count, amount))| (k, count, amount))
            .collect(),
    })
}

fn run(settings: &Settings) -> Result<Figure> {
    let default_lines: u64 = if settings.quick { 200_000 } else { 10_000_000 };
    let lines = match std::env::var(LINES_ENV) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{LINES_ENV}={v:?} is not a number of lines"))?,
        Err(_) => default_lines,
    };
    let (warmup, rounds) = (1, 3);
    let root = tempfile::Builder::new()
        .prefix("pos-bench-p9-")
        .tempdir_in(std::env::temp_dir())
        .context("creating a temporary directory (set TMPDIR to choose where)")?;
    let (where_, _) = fsinfo::describe(root.path());
    eprintln!("P9: {lines} sale lines in {where_}");
    let (filled_in, store) = time(|| fill(root.path(), lines))?;
    let db_bytes = std::fs::metadata(root.path().join(DB_FILE))?.len();
    eprintln!(
        "P9: filled in {:.1} s ({} MB)",
        filled_in.as_secs_f64(),
        db_bytes >> 20
    );
    let now = pos_store::now_ms();
    let today = Period::local_day(now, 0)?;
    let conn = Connection::open_with_flags(
        root.path().join(DB_FILE),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The naive GROUP BYs sort millions of rows: in memory, not in temp files on the disk the
    // 8 GB database already fills.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Both sides show the same numbers (else the comparison would be meaningless).
    let dashboard = store.dashboard(today, TOP)?;
    let expected = naive(&conn, today)?;
    ensure!(
        shown(&dashboard) == expected,
        "the dashboard and the naive queries disagree:\n{:?}\n{expected:?}",
        shown(&dashboard)
    );
    ensure!(
        dashboard.kpis.sales_count as u64 == lines.div_ceil(workload::SALE_LINES as u64),
        "the dashboard counts {} sales",
        dashboard.kpis.sales_count
    );

    let (value, baseline) = interleaved(
        warmup,
        rounds,
        || {
            let mut reads = Vec::with_capacity(READS_PER_ROUND);
            for _ in 0..READS_PER_ROUND {
                let (took, d) = time(|| Ok(store.dashboard(today, TOP)?))?;
                std::hint::black_box(d);
                reads.push(took.as_secs_f64());
            }
            Ok(Duration::from_secs_f64(
                timing::median(&reads).unwrap_or(f64::NAN),
            ))
        },
        || {
            let (took, shown) = time(|| naive(&conn, today))?;
            std::hint::black_box(shown);
            Ok(took)
        },
    )?;
    let ms = |s: f64| s * 1e3;
    let figure = Figure::new(&SPEC.meta, ms(value.median()), ms(baseline.median())).note(format!(
        "{lines} sale lines ({} sales of {} lines, {PRODUCTS} products), all today{}; \
         database {} MB, filled through Store::append in {:.0} s; {rounds} interleaved rounds \
         after {warmup} warm-up, each the median of {READS_PER_ROUND} dashboard reads vs one \
         naive pass; round times in ms: dashboard {}, naive {}",
        lines.div_ceil(workload::SALE_LINES as u64),
        workload::SALE_LINES,
        if lines < 10_000_000 {
            format!(" (fewer than the goal's 10M: --quick or {LINES_ENV})")
        } else {
            String::new()
        },
        db_bytes >> 20,
        filled_in.as_secs_f64(),
        value.spread(ms),
        baseline.spread(ms)
    ));
    drop(store);
    Ok(match timing::noise_warning(&value, &baseline) {
        Some(warning) => figure.note(warning),
        None => figure,
    })
}

//! Analytics (issue 10): the `analytics_*` tables and the query API the dashboards, alerts and
//! report exports read.
//!
//! The tables are projections like the others, maintained in the events' own transaction by
//! four extra projections (several projections may serve one module): [`SaleAnalytics`]
//! (`sale`), [`ShiftAnalytics`] (`shift`), [`DrawerAnalytics`] (`security`) and
//! [`BackupAnalytics`] (`backup`). What an event adds is decided by the pure
//! `pos_reports::delta`; this module only stores the sums. Every cell is keyed by the event's
//! hour and origin, values are sums (names `min()`, backup times `max()`), so arrival order
//! never matters and `Store::rebuild` gives the same tables.
//!
//! `SaleAnalytics` runs after `SaleProjection` (order of `projection::builtin`), so an event
//! the sale projection refuses adds nothing (the refusal rolls back the whole event), and a
//! post-void finds the cancelled sale in `sale_receipts` (written by the same origin's chain
//! before the void, and replayed before it by a rebuild).
//!
//! Reads never touch the event log: a period reads the hour buckets it covers, so a year
//! costs what its aggregates cost, not what its events cost.

use std::collections::HashMap;
use std::sync::OnceLock;

use pos_audit::Event;
use pos_core::sale::events::{self as ev, Refunded, SaleCompleted};
use pos_core::sale::{CompletedSale, Money};
use pos_core::{DeviceId, Hlc, UserId};
use pos_reports::{
    delta, evaluate, hour_of, Alert, AlertInputs, AlertRules, BackupState, CashierRow, CategoryRow,
    CostedSales, Counters, Dashboard, DayRow, Delta, DiskUsage, Fact, Heatmap, HourRow, Kpis,
    OfflineDevice, Period, ProductCounters, ProductRow, StockCoverRow, TaxRow, TenderRow,
    TerminalRow, DAY_MS,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

use crate::projection::{payload, Projection, Refusal};
use crate::store::Store;

/// Every analytics table (emptied by a rebuild through [`SaleAnalytics`]).
const TABLES: &[&str] = &[
    "analytics_hourly",
    "analytics_products",
    "analytics_tenders",
    "analytics_taxes",
];

fn counters_upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols = Counters::COLUMNS;
        let marks: Vec<String> = (0..cols.len()).map(|i| format!("?{}", i + 4)).collect();
        let sets: Vec<String> = cols
            .iter()
            .map(|c| format!("{c} = {c} + excluded.{c}"))
            .collect();
        format!(
            "INSERT INTO analytics_hourly (hour, terminal, cashier, {}) VALUES (?1, ?2, ?3, {})
             ON CONFLICT (hour, terminal, cashier) DO UPDATE SET {}",
            cols.join(", "),
            marks.join(", "),
            sets.join(", ")
        )
    })
}

fn product_upsert_sql() -> &'static str {
    static SQL: OnceLock<String> = OnceLock::new();
    SQL.get_or_init(|| {
        let cols = ProductCounters::COLUMNS;
        let marks: Vec<String> = (0..cols.len()).map(|i| format!("?{}", i + 5)).collect();
        let sets: Vec<String> = cols.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect();
        format!(
            "INSERT INTO analytics_products (hour, terminal, sku, name, {}) VALUES (?1, ?2, ?3, ?4, {})
             ON CONFLICT (hour, terminal, sku) DO UPDATE SET name = min(name, excluded.name), {}",
            cols.join(", "),
            marks.join(", "),
            sets.join(", ")
        )
    })
}

fn refusal(e: impl std::fmt::Display) -> Refusal {
    Refusal(e.to_string())
}

/// Adds `d` under the event's hour, origin and actor.
fn write(tx: &Transaction<'_>, event: &Event, d: &Delta) -> Result<(), Refusal> {
    let hour = hour_of(event.hlc.wall_ms());
    let terminal = &event.origin.as_bytes()[..];
    let cashier: &[u8] = event.actor.as_ref().map_or(&[], |a| &a.as_bytes()[..]);
    if !d.counters.is_zero() {
        let mut values: Vec<Value> = vec![
            hour.into(),
            terminal.to_vec().into(),
            cashier.to_vec().into(),
        ];
        values.extend(d.counters.values().into_iter().map(Value::from));
        tx.prepare_cached(counters_upsert_sql())?
            .execute(params_from_iter(values))?;
    }
    if !d.products.is_empty() {
        let mut stmt = tx.prepare_cached(product_upsert_sql())?;
        for p in &d.products {
            let mut values: Vec<Value> = vec![
                hour.into(),
                terminal.to_vec().into(),
                p.sku.clone().into(),
                p.name.clone().into(),
            ];
            values.extend(p.add.values().into_iter().map(Value::from));
            stmt.execute(params_from_iter(values))?;
        }
    }
    for t in &d.tenders {
        tx.prepare_cached(
            "INSERT INTO analytics_tenders (hour, terminal, tender, count, amount)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hour, terminal, tender) DO UPDATE SET count = count + excluded.count,
                 amount = amount + excluded.amount",
        )?
        .execute(params![hour, terminal, t.tender, t.count, t.amount])?;
    }
    for t in &d.taxes {
        tx.prepare_cached(
            "INSERT INTO analytics_taxes (hour, terminal, class, rate_bp, name, net, tax, gross)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (hour, terminal, class, rate_bp) DO UPDATE SET
                 name = min(name, excluded.name), net = net + excluded.net,
                 tax = tax + excluded.tax, gross = gross + excluded.gross",
        )?
        .execute(params![
            hour, terminal, t.class, t.rate_bp, t.name, t.net, t.tax, t.gross
        ])?;
    }
    Ok(())
}

fn add(tx: &Transaction<'_>, event: &Event, fact: &Fact<'_>) -> Result<(), Refusal> {
    let d = delta(fact).map_err(refusal)?;
    write(tx, event, &d)
}

/// Analytics of module `sale` (runs after `SaleProjection`, which validates the events).
#[derive(Debug)]
pub(crate) struct SaleAnalytics;

impl Projection for SaleAnalytics {
    fn module(&self) -> &'static str {
        ev::SALE
    }
    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        match event.kind.as_str() {
            SaleCompleted::KIND => {
                let p: SaleCompleted = payload(event)?;
                add(tx, event, &Fact::Completed(&p.sale))
            }
            ev::PostVoided::KIND => {
                let p: ev::PostVoided = payload(event)?;
                let sale: Option<String> = tx
                    .prepare_cached(
                        "SELECT sale FROM sale_receipts WHERE terminal = ?1 AND number = ?2",
                    )?
                    .query_row(
                        params![&event.origin.as_bytes()[..], p.receipt as i64],
                        |r| r.get(0),
                    )
                    .optional()?;
                let sale: CompletedSale = sale
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .ok_or_else(|| Refusal(format!("receipt {} is not stored", p.receipt)))?;
                add(tx, event, &Fact::PostVoided(&sale))
            }
            Refunded::KIND => {
                let p: Refunded = payload(event)?;
                add(tx, event, &Fact::Refunded(&p))
            }
            ev::LineVoided::KIND => {
                let p: ev::LineVoided = payload(event)?;
                add(tx, event, &Fact::LineVoided { amount: p.amount })
            }
            // Parking, resuming, approved discounts and overrides change no figure.
            _ => Ok(()),
        }
    }
}

/// Analytics of module `shift`: no-sales, cash moves, closes (over/short).
#[derive(Debug)]
pub(crate) struct ShiftAnalytics;

impl Projection for ShiftAnalytics {
    fn module(&self) -> &'static str {
        ev::SHIFT
    }
    fn tables(&self) -> &'static [&'static str] {
        // Its rows are in `analytics_hourly`, emptied through `SaleAnalytics`.
        &[]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        match event.kind.as_str() {
            ev::NoSale::KIND => add(tx, event, &Fact::NoSale),
            ev::CashMoved::KIND => {
                let p: ev::CashMoved = payload(event)?;
                add(
                    tx,
                    event,
                    &Fact::CashMoved {
                        paid_in: p.paid_in,
                        amount: p.amount,
                    },
                )
            }
            ev::ShiftClosed::KIND => {
                let p: ev::ShiftClosed = payload(event)?;
                add(
                    tx,
                    event,
                    &Fact::ShiftClosed {
                        over_short: p.over_short,
                    },
                )
            }
            _ => Ok(()),
        }
    }
}

/// Analytics of module `security`: drawers left open (`Till` logs them).
#[derive(Debug)]
pub(crate) struct DrawerAnalytics;

impl Projection for DrawerAnalytics {
    fn module(&self) -> &'static str {
        "security"
    }
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        if event.kind == "drawer_left_open" {
            add(tx, event, &Fact::DrawerLeftOpen)?;
        }
        Ok(())
    }
}

/// Module `backup` (`backup.made`, `backup.failed`, written by pos-backup's scheduled jobs):
/// the latest outcome per origin, for the backup alerts.
#[derive(Debug)]
pub(crate) struct BackupAnalytics;

impl Projection for BackupAnalytics {
    fn module(&self) -> &'static str {
        "backup"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["analytics_backups"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        let (made, failed) = match event.kind.as_str() {
            "made" => (1i64, 0i64),
            "failed" => (0, 1),
            _ => return Ok(()),
        };
        let at = event.hlc.raw() as i64;
        tx.prepare_cached(
            "INSERT INTO analytics_backups (origin, made, failed, last_made_hlc, last_failed_hlc,
                 failed_in_a_row)
             VALUES (?1, ?2, ?3, CASE WHEN ?2 = 1 THEN ?4 END, CASE WHEN ?3 = 1 THEN ?4 END, ?3)
             ON CONFLICT (origin) DO UPDATE SET made = made + excluded.made,
                 failed = failed + excluded.failed,
                 last_made_hlc = max(coalesce(last_made_hlc, excluded.last_made_hlc),
                                     coalesce(excluded.last_made_hlc, last_made_hlc)),
                 last_failed_hlc = max(coalesce(last_failed_hlc, excluded.last_failed_hlc),
                                       coalesce(excluded.last_failed_hlc, last_failed_hlc)),
                 failed_in_a_row = CASE WHEN excluded.made = 1 THEN 0
                                        ELSE failed_in_a_row + 1 END",
        )?
        .execute(params![&event.origin.as_bytes()[..], made, failed, at])?;
        Ok(())
    }
}

/// A product's sums over a period, with what the catalogue says about it today.
struct ProductSums {
    sku: String,
    name: String,
    sums: ProductCounters,
    catalogue: Option<(String, String, Option<i64>)>,
}

impl ProductSums {
    fn row(&self) -> ProductRow {
        let (name, category, cost) = match &self.catalogue {
            Some((name, category, cost)) => (name.clone(), Some(category.clone()), *cost),
            None => (self.name.clone(), None, None),
        };
        ProductRow::new(
            self.sku.clone(),
            name,
            category,
            cost.map(Money),
            &self.sums,
        )
    }
}

fn id16(bytes: &[u8]) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(bytes).ok()
}

/// The query API of the analytics (issue 10). Every read takes a [`Period`] (see
/// `pos_reports::Period` for the hour resolution and the local-day helpers); an empty period
/// or one without data gives zeros and empty lists, never an error.
impl Store {
    /// Counters summed over `period`, grouped by the SQL expression `key` (a column of
    /// `analytics_hourly`, or a constant for one total).
    fn counters_by(&self, period: Period, key: &str) -> crate::Result<Vec<(Value, Counters)>> {
        let (from, to) = period.hours();
        let sums: Vec<String> = Counters::COLUMNS
            .iter()
            .map(|c| format!("sum({c})"))
            .collect();
        let sql = format!(
            "SELECT {key}, {} FROM analytics_hourly WHERE hour >= ?1 AND hour < ?2
             GROUP BY 1 ORDER BY 1",
            sums.join(", ")
        );
        let n = Counters::COLUMNS.len();
        self.conn()
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![from, to], |r| {
                    let mut values = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(r.get::<_, Option<i64>>(i + 1)?.unwrap_or(0));
                    }
                    Ok((r.get::<_, Value>(0)?, Counters::from_values(&values)))
                })?
                .collect()
            })
            .map_err(self.db_err())
    }

    /// Every product sold or refunded in `period`, with its catalogue entry (name, category,
    /// cost) when the catalogue has the SKU.
    fn product_sums(&self, period: Period) -> crate::Result<Vec<ProductSums>> {
        let (from, to) = period.hours();
        let sums: Vec<String> = ProductCounters::COLUMNS
            .iter()
            .map(|c| format!("sum(a.{c})"))
            .collect();
        let sql = format!(
            "SELECT a.sku, min(a.name), {}, c.name, c.category,
                    json_extract(c.product, '$.cost'), c.sku IS NOT NULL
             FROM analytics_products a LEFT JOIN catalogue_products c ON c.sku = a.sku
             WHERE a.hour >= ?1 AND a.hour < ?2 GROUP BY a.sku",
            sums.join(", ")
        );
        let n = ProductCounters::COLUMNS.len();
        self.conn()
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![from, to], |r| {
                    let mut values = Vec::with_capacity(n);
                    for i in 0..n {
                        values.push(r.get::<_, i64>(i + 2)?);
                    }
                    let known: bool = r.get(n + 5)?;
                    let catalogue = if known {
                        Some((
                            r.get::<_, String>(n + 2)?,
                            r.get::<_, String>(n + 3)?,
                            r.get::<_, Option<i64>>(n + 4)?,
                        ))
                    } else {
                        None
                    };
                    Ok(ProductSums {
                        sku: r.get(0)?,
                        name: r.get(1)?,
                        sums: ProductCounters::from_values(&values),
                        catalogue,
                    })
                })?
                .collect()
            })
            .map_err(self.db_err())
    }

    fn costed(products: &[ProductSums]) -> CostedSales {
        let mut costed = CostedSales::default();
        for p in products {
            let s = &p.sums;
            costed.add(
                (s.paid - s.tax) - (s.refund_value - s.refund_tax),
                s.qty - s.refund_qty,
                p.catalogue.as_ref().and_then(|c| c.2),
            );
        }
        costed
    }

    fn total(&self, period: Period) -> crate::Result<Counters> {
        Ok(self
            .counters_by(period, "0")?
            .into_iter()
            .next()
            .map(|(_, c)| c)
            .unwrap_or_default())
    }

    /// The KPI tiles of `period` (see `pos_reports::kpi` for every formula).
    pub fn kpis(&self, period: Period) -> crate::Result<Kpis> {
        let totals = self.total(period)?;
        let products = self.product_sums(period)?;
        Ok(Kpis::compute(&totals, &Self::costed(&products)))
    }

    /// Net sales and transactions per hour of `period` (hours with activity only; fill the
    /// quiet ones with `HourRow::fill` for a chart).
    pub fn sales_by_hour(&self, period: Period) -> crate::Result<Vec<HourRow>> {
        Ok(self
            .counters_by(period, "hour")?
            .into_iter()
            .filter_map(|(hour, c)| match hour {
                Value::Integer(h) => Some(HourRow::from_counters(h, &c)),
                _ => None,
            })
            .collect())
    }

    /// KPIs per local day of `period` (days with activity only), for a zone `utc_offset_min`
    /// east of UTC. Margins are left out (zero) per day: use [`Store::kpis`] on one day for them.
    pub fn sales_by_day(&self, period: Period, utc_offset_min: i32) -> crate::Result<Vec<DayRow>> {
        let mut days: std::collections::BTreeMap<u64, Counters> = Default::default();
        for (hour, c) in self.counters_by(period, "hour")? {
            if let Value::Integer(h) = hour {
                let day = pos_reports::local_day_start_of_hour(h, utc_offset_min);
                days.entry(day).or_default().add(&c);
            }
        }
        Ok(days
            .into_iter()
            .map(|(day_start_ms, c)| DayRow {
                day_start_ms,
                kpis: Kpis::compute(&c, &CostedSales::default()),
            })
            .collect())
    }

    /// Net sales and transactions by local weekday and hour of day.
    pub fn heatmap(&self, period: Period, utc_offset_min: i32) -> crate::Result<Heatmap> {
        let mut map = Heatmap::default();
        for (hour, c) in self.counters_by(period, "hour")? {
            if let Value::Integer(h) = hour {
                map.add(h, &c, utc_offset_min);
            }
        }
        Ok(map)
    }

    /// Every product sold or refunded in `period`, by net sales descending (then SKU).
    pub fn product_performance(&self, period: Period) -> crate::Result<Vec<ProductRow>> {
        let mut rows: Vec<ProductRow> =
            self.product_sums(period)?.iter().map(|p| p.row()).collect();
        rows.sort_by(|a, b| b.net_sales.cmp(&a.net_sales).then(a.sku.cmp(&b.sku)));
        Ok(rows)
    }

    /// The `n` best sellers of `period` by net sales.
    pub fn top_products(&self, period: Period, n: usize) -> crate::Result<Vec<ProductRow>> {
        let (from, to) = period.hours();
        // The ranking in SQL (one pass over the period's product cells), the catalogue only for
        // the n rows shown.
        let sums: Vec<String> = ProductCounters::COLUMNS
            .iter()
            .map(|c| format!("sum({c})"))
            .collect();
        let sql = format!(
            "SELECT sku, min(name), {} FROM analytics_products WHERE hour >= ?1 AND hour < ?2
             GROUP BY sku ORDER BY sum(paid) - sum(refund_value) DESC, sku LIMIT ?3",
            sums.join(", ")
        );
        let cols = ProductCounters::COLUMNS.len();
        let top: Vec<(String, String, ProductCounters)> = self
            .conn()
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![from, to, n as i64], |r| {
                    let mut values = Vec::with_capacity(cols);
                    for i in 0..cols {
                        values.push(r.get::<_, i64>(i + 2)?);
                    }
                    Ok((r.get(0)?, r.get(1)?, ProductCounters::from_values(&values)))
                })?
                .collect()
            })
            .map_err(self.db_err())?;
        top.into_iter()
            .map(|(sku, name, sums)| {
                let catalogue = self.catalogue_entry(&sku)?;
                Ok(ProductSums {
                    sku,
                    name,
                    sums,
                    catalogue,
                }
                .row())
            })
            .collect()
    }

    /// The `n` worst sellers of `period` among the active catalogue products (those that sold
    /// nothing first, with zeros), then by net sales ascending.
    pub fn bottom_products(&self, period: Period, n: usize) -> crate::Result<Vec<ProductRow>> {
        let sold: HashMap<String, ProductRow> = self
            .product_performance(period)?
            .into_iter()
            .map(|r| (r.sku.clone(), r))
            .collect();
        let active: Vec<(String, String, String, Option<i64>)> = self
            .conn()
            .prepare_cached(
                "SELECT sku, name, category, json_extract(product, '$.cost')
                 FROM catalogue_products WHERE active = 1",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .map_err(self.db_err())?;
        let mut rows: Vec<ProductRow> = active
            .into_iter()
            .map(|(sku, name, category, cost)| match sold.get(&sku) {
                Some(row) => row.clone(),
                None => ProductRow::new(
                    sku,
                    name,
                    Some(category),
                    cost.map(Money),
                    &ProductCounters::default(),
                ),
            })
            .collect();
        rows.sort_by(|a, b| a.net_sales.cmp(&b.net_sales).then(a.sku.cmp(&b.sku)));
        rows.truncate(n);
        Ok(rows)
    }

    /// Sales per catalogue category (products it does not know under `None`).
    pub fn category_sales(&self, period: Period) -> crate::Result<Vec<CategoryRow>> {
        Ok(CategoryRow::from_products(
            &self.product_performance(period)?,
        ))
    }

    fn catalogue_entry(&self, sku: &str) -> crate::Result<Option<(String, String, Option<i64>)>> {
        self.conn()
            .prepare_cached(
                "SELECT name, category, json_extract(product, '$.cost')
                 FROM catalogue_products WHERE sku = ?1",
            )
            .and_then(|mut s| {
                s.query_row([sku], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(self.db_err())
    }

    fn user_names(&self) -> crate::Result<HashMap<Vec<u8>, String>> {
        self.conn()
            .prepare_cached("SELECT user, display_name FROM user_accounts")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .map_err(self.db_err())
    }

    /// Per cashier (the events' actor): sales, voids, refunds and their rates, discounts and
    /// the over/short of the shifts they closed. By net sales descending.
    pub fn cashier_performance(&self, period: Period) -> crate::Result<Vec<CashierRow>> {
        let names = self.user_names()?;
        let mut rows: Vec<CashierRow> = self
            .counters_by(period, "cashier")?
            .into_iter()
            .map(|(key, c)| {
                let bytes = match key {
                    Value::Blob(b) => b,
                    _ => Vec::new(),
                };
                let cashier = id16(&bytes).map(UserId::from_bytes);
                let name = names
                    .get(&bytes)
                    .cloned()
                    .unwrap_or_else(|| cashier.map_or("-".to_owned(), |c| c.to_string()));
                CashierRow::from_counters(cashier, name, &c)
            })
            .collect();
        rows.sort_by(|a, b| b.net_sales.cmp(&a.net_sales).then(a.name.cmp(&b.name)));
        Ok(rows)
    }

    /// Per terminal (the events' origin): its KPIs (margins left out).
    pub fn terminal_performance(&self, period: Period) -> crate::Result<Vec<TerminalRow>> {
        let names: HashMap<DeviceId, String> = self.device_names()?.into_iter().collect();
        Ok(self
            .counters_by(period, "terminal")?
            .into_iter()
            .filter_map(|(key, c)| {
                let Value::Blob(b) = key else { return None };
                let terminal = DeviceId::from_bytes(id16(&b)?);
                Some(TerminalRow {
                    terminal,
                    name: names
                        .get(&terminal)
                        .cloned()
                        .unwrap_or_else(|| terminal.to_string()),
                    kpis: Kpis::compute(&c, &CostedSales::default()),
                })
            })
            .collect())
    }

    /// Per tender key ("cash", "card", "voucher", other names): payments and the amount net
    /// of change, refunds and post-voids (as the Z report).
    pub fn tender_totals(&self, period: Period) -> crate::Result<Vec<TenderRow>> {
        let (from, to) = period.hours();
        self.conn()
            .prepare_cached(
                "SELECT tender, sum(count), sum(amount) FROM analytics_tenders
                 WHERE hour >= ?1 AND hour < ?2 GROUP BY tender ORDER BY tender",
            )
            .and_then(|mut s| {
                s.query_map(params![from, to], |r| {
                    Ok(TenderRow {
                        tender: r.get(0)?,
                        count: r.get(1)?,
                        amount: Money(r.get(2)?),
                    })
                })?
                .collect()
            })
            .map_err(self.db_err())
    }

    /// Per tax class and rate: net, tax and gross, refunds and post-voids taken off.
    pub fn tax_by_rate(&self, period: Period) -> crate::Result<Vec<TaxRow>> {
        let (from, to) = period.hours();
        self.conn()
            .prepare_cached(
                "SELECT class, min(name), rate_bp, sum(net), sum(tax), sum(gross)
                 FROM analytics_taxes WHERE hour >= ?1 AND hour < ?2
                 GROUP BY class, rate_bp ORDER BY class, rate_bp",
            )
            .and_then(|mut s| {
                s.query_map(params![from, to], |r| {
                    Ok(TaxRow {
                        class: r.get(0)?,
                        name: r.get(1)?,
                        rate_bp: r.get(2)?,
                        net: Money(r.get(3)?),
                        tax: Money(r.get(4)?),
                        gross: Money(r.get(5)?),
                    })
                })?
                .collect()
            })
            .map_err(self.db_err())
    }

    /// Stock on hand of every active catalogue product and every stocked item, with the
    /// average sold per day over the `window_days` days before `as_of_ms` and the days of
    /// cover that gives. Sorted by cover, shortest first (unbounded last), then SKU.
    pub fn stock_cover(
        &self,
        as_of_ms: u64,
        window_days: u32,
    ) -> crate::Result<Vec<StockCoverRow>> {
        let days = window_days.max(1);
        let window = Period {
            from_ms: as_of_ms.saturating_sub(u64::from(days) * DAY_MS),
            to_ms: as_of_ms,
        };
        let sold: HashMap<String, i64> = self
            .product_sums(window)?
            .into_iter()
            .map(|p| (p.sku, p.sums.qty - p.sums.refund_qty))
            .collect();
        let items: Vec<(String, Option<String>, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT c.sku, c.name, coalesce(s.quantity, 0) FROM catalogue_products c
                     LEFT JOIN stock_levels s ON s.item = c.sku WHERE c.active = 1
                 UNION ALL
                 SELECT s.item, NULL, s.quantity FROM stock_levels s
                     WHERE NOT EXISTS (SELECT 1 FROM catalogue_products c WHERE c.sku = s.item)",
            )
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(self.db_err())?;
        let mut rows: Vec<StockCoverRow> = items
            .into_iter()
            .map(|(sku, name, on_hand)| {
                let sold = sold.get(&sku).copied().unwrap_or(0);
                StockCoverRow {
                    name: name.unwrap_or_else(|| sku.clone()),
                    on_hand_milli: on_hand,
                    sold_per_day_milli: sold / i64::from(days),
                    days_of_cover: pos_reports::days_of_cover(on_hand, sold, f64::from(days)),
                    sku,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            let cover = |r: &StockCoverRow| r.days_of_cover.unwrap_or(f64::INFINITY);
            cover(a).total_cmp(&cover(b)).then(a.sku.cmp(&b.sku))
        });
        Ok(rows)
    }

    /// "Today's dashboard" in one read transaction: the KPI tiles, sales per hour (quiet
    /// hours filled), the `top` best sellers and the tender split of `period` (P9 measures it).
    pub fn dashboard(&self, period: Period, top: usize) -> crate::Result<Dashboard> {
        let tx = self.conn().unchecked_transaction().map_err(self.db_err())?;
        let hours = self.sales_by_hour(period)?;
        let dashboard = Dashboard {
            kpis: self.kpis(period)?,
            hours: if period.to_ms.saturating_sub(period.from_ms) <= 31 * DAY_MS {
                HourRow::fill(&hours, period.from_ms, period.to_ms)
            } else {
                hours
            },
            top_products: self.top_products(period, top)?,
            tenders: self.tender_totals(period)?,
        };
        tx.finish().map_err(self.db_err())?;
        Ok(dashboard)
    }

    /// The latest backup outcomes recorded in the log (`backup.made` / `backup.failed` of this
    /// device); None when none was ever recorded.
    pub fn backup_state(&self) -> crate::Result<Option<BackupState>> {
        self.conn()
            .prepare_cached(
                "SELECT last_made_hlc, last_failed_hlc, failed_in_a_row FROM analytics_backups
                 WHERE origin = ?1",
            )
            .and_then(|mut s| {
                s.query_row([&self.device_id().as_bytes()[..]], |r| {
                    let ms = |v: Option<i64>| v.map(|h| Hlc::from_raw(h as u64).wall_ms());
                    Ok(BackupState {
                        last_success_ms: ms(r.get(0)?),
                        last_failure_ms: ms(r.get(1)?),
                        failures_in_a_row: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(u32::MAX),
                    })
                })
                .optional()
            })
            .map_err(self.db_err())
    }

    /// Size and free space of the file system holding the data dir (None if it cannot be read).
    pub fn disk_usage(&self) -> Option<DiskUsage> {
        let st = nix::sys::statvfs::statvfs(self.dir()).ok()?;
        let block = st.fragment_size() as u64;
        Some(DiskUsage {
            total_bytes: (st.blocks() as u64).saturating_mul(block),
            available_bytes: (st.blocks_available() as u64).saturating_mul(block),
        })
    }

    /// The alerts that hold now: low stock (cover over `rules.cover_window_days`), today's
    /// void/refund anomalies per cashier and drawers left open per terminal (`today`: the
    /// caller's local day, see `Period::local_day`), devices out of touch (sync status), the
    /// backups (`backup`: pass [`Store::backup_state`], or the state read from
    /// `backup-status.json`; None on a device that keeps no backups) and the disk.
    pub fn alerts(
        &self,
        rules: &AlertRules,
        now_ms: u64,
        today: Period,
        backup: Option<BackupState>,
    ) -> crate::Result<Vec<Alert>> {
        let stock = self.stock_cover(now_ms, rules.cover_window_days)?;
        let cashiers = self.cashier_performance(today)?;
        let terminals = self.terminal_performance(today)?;
        let offline: Vec<OfflineDevice> = self
            .sync_status_at(now_ms, crate::ONLINE_WITHIN_MS)?
            .into_iter()
            .filter_map(|d| {
                Some(OfflineDevice {
                    device: d.device,
                    name: d.name,
                    out_of_touch_ms: d.out_of_touch_ms?,
                })
            })
            .collect();
        Ok(evaluate(
            rules,
            &AlertInputs {
                now_ms,
                stock: &stock,
                cashiers: &cashiers,
                offline: &offline,
                terminals: &terminals,
                backup,
                disk: self.disk_usage(),
            },
        ))
    }
}

//! The rows consumers render: dashboard tiles and charts, report tables, CSV and PDF exports.
//! The store fills them from the aggregates; names are resolved there (user and device
//! registries, the catalogue), ids are kept for drill-down.

use pos_core::sale::Money;
use pos_core::{DeviceId, UserId};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Counters, ProductCounters, HOUR_MS};
use crate::kpi::{rate_bp, Kpis};
use crate::period::local_weekday_hour;

/// Sales of one hour (only hours with activity are listed; see [`HourRow::fill`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourRow {
    /// Start of the hour, Unix ms.
    pub hour_start_ms: u64,
    /// Sales that stand (completed − post-voided).
    pub transactions: i64,
    pub net_sales: Money,
    pub items_milli: i64,
}

impl HourRow {
    pub fn from_counters(hour: i64, c: &Counters) -> HourRow {
        HourRow {
            hour_start_ms: u64::try_from(hour.max(0)).unwrap_or(0) * HOUR_MS,
            transactions: c.sales - c.post_voids,
            net_sales: Money(c.gross - c.refund_value - c.post_void_value),
            items_milli: c.items - c.post_void_items,
        }
    }

    /// `rows` (sorted) with a zero row for every quiet hour of `[from_ms, to_ms)`: what a
    /// chart of a day wants. Meant for short periods (a day, a week).
    pub fn fill(rows: &[HourRow], from_ms: u64, to_ms: u64) -> Vec<HourRow> {
        let mut out = Vec::new();
        let mut at = from_ms.div_ceil(HOUR_MS) * HOUR_MS;
        let mut it = rows.iter().peekable();
        while at < to_ms {
            while it.peek().is_some_and(|r| r.hour_start_ms < at) {
                it.next();
            }
            match it.peek() {
                Some(r) if r.hour_start_ms == at => out.push((*r).clone()),
                _ => out.push(HourRow {
                    hour_start_ms: at,
                    transactions: 0,
                    net_sales: Money::ZERO,
                    items_milli: 0,
                }),
            }
            at += HOUR_MS;
        }
        out
    }
}

/// Sales of one local day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRow {
    pub day_start_ms: u64,
    pub kpis: Kpis,
}

/// One product over a period. `category`, `cost` and `margin` come from the current
/// catalogue (None for a product it does not know).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductRow {
    pub sku: String,
    pub name: String,
    pub category: Option<String>,
    /// Sold (post-voids taken off), thousandths.
    pub qty_milli: i64,
    pub refund_qty_milli: i64,
    pub lines: i64,
    /// Paid − refunded, tax included.
    pub net_sales: Money,
    /// The same without tax.
    pub net_ex_tax: Money,
    pub cost: Option<Money>,
    pub margin: Option<Money>,
}

impl ProductRow {
    /// `unit_cost` per piece or kg, from the catalogue.
    pub fn new(
        sku: String,
        name: String,
        category: Option<String>,
        unit_cost: Option<Money>,
        p: &ProductCounters,
    ) -> ProductRow {
        let net_ex_tax = (p.paid - p.tax) - (p.refund_value - p.refund_tax);
        let cost = unit_cost.map(|c| Money(cost_of(c.0, p.qty - p.refund_qty)));
        ProductRow {
            sku,
            name,
            category,
            qty_milli: p.qty,
            refund_qty_milli: p.refund_qty,
            lines: p.lines,
            net_sales: Money(p.paid - p.refund_value),
            net_ex_tax: Money(net_ex_tax),
            cost,
            margin: cost.map(|c| Money(net_ex_tax - c.0)),
        }
    }
}

/// `unit_cost × qty_milli / 1000`, half away from zero.
pub fn cost_of(unit_cost: i64, qty_milli: i64) -> i64 {
    let v = i128::from(unit_cost) * i128::from(qty_milli);
    let q = (v.abs() + 500) / 1000;
    i64::try_from(if v < 0 { -q } else { q }).unwrap_or(i64::MAX)
}

/// One catalogue category over a period (products the catalogue does not know: `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRow {
    pub category: Option<String>,
    pub qty_milli: i64,
    pub net_sales: Money,
    pub net_ex_tax: Money,
    pub cost: Money,
    pub margin: Money,
}

impl CategoryRow {
    /// Rows per category of `products`, by net sales descending.
    pub fn from_products(products: &[ProductRow]) -> Vec<CategoryRow> {
        let mut by: std::collections::BTreeMap<Option<String>, CategoryRow> =
            std::collections::BTreeMap::new();
        for p in products {
            let row = by.entry(p.category.clone()).or_insert_with(|| CategoryRow {
                category: p.category.clone(),
                qty_milli: 0,
                net_sales: Money::ZERO,
                net_ex_tax: Money::ZERO,
                cost: Money::ZERO,
                margin: Money::ZERO,
            });
            row.qty_milli += p.qty_milli - p.refund_qty_milli;
            row.net_sales.0 += p.net_sales.0;
            row.net_ex_tax.0 += p.net_ex_tax.0;
            row.cost.0 += p.cost.map_or(0, |c| c.0);
            row.margin.0 += p.margin.map_or(0, |m| m.0);
        }
        let mut rows: Vec<CategoryRow> = by.into_values().collect();
        rows.sort_by(|a, b| {
            b.net_sales
                .cmp(&a.net_sales)
                .then(a.category.cmp(&b.category))
        });
        rows
    }
}

/// A cashier's performance: sales, and the voids and refunds a manager watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashierRow {
    /// None for facts with no actor.
    pub cashier: Option<UserId>,
    /// Display name (the user's name, or "-").
    pub name: String,
    pub sales: i64,
    pub transactions: i64,
    pub net_sales: Money,
    pub average_basket: Money,
    pub line_voids: i64,
    pub line_void_value: Money,
    pub post_voids: i64,
    pub post_void_value: Money,
    pub refunds: i64,
    pub refund_value: Money,
    /// (line voids + post-voids) / sales.
    pub void_rate_bp: i64,
    pub refund_rate_bp: i64,
    pub discounts: Money,
    /// Over/short of the shifts this cashier closed.
    pub cash_over_short: Money,
}

impl CashierRow {
    pub fn from_counters(cashier: Option<UserId>, name: String, c: &Counters) -> CashierRow {
        let k = Kpis::compute(c, &Default::default());
        CashierRow {
            cashier,
            name,
            sales: c.sales,
            transactions: k.transactions,
            net_sales: k.net_sales,
            average_basket: k.average_basket,
            line_voids: c.line_voids,
            line_void_value: Money(c.line_void_value),
            post_voids: c.post_voids,
            post_void_value: Money(c.post_void_value),
            refunds: c.refunds,
            refund_value: Money(c.refund_value),
            void_rate_bp: rate_bp(c.line_voids + c.post_voids, c.sales),
            refund_rate_bp: rate_bp(c.refunds, c.sales),
            discounts: k.discounts,
            cash_over_short: Money(c.over_short),
        }
    }
}

/// A terminal's figures over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalRow {
    pub terminal: DeviceId,
    pub name: String,
    pub kpis: Kpis,
}

/// A tender's total: payments counted, amount net of change, refunds and post-voids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenderRow {
    pub tender: String,
    pub count: i64,
    pub amount: Money,
}

/// A tax rate's totals, net of refunds and post-voids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRow {
    pub class: String,
    pub name: String,
    pub rate_bp: u32,
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}

/// Stock on hand and how many days it lasts at the recent rate of sale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockCoverRow {
    pub sku: String,
    pub name: String,
    pub on_hand_milli: i64,
    /// Average quantity sold per day over the window (net of refunds), thousandths.
    pub sold_per_day_milli: i64,
    /// None when nothing sold in the window (cover is unbounded).
    pub days_of_cover: Option<f64>,
}

/// `on_hand / (sold / days)`; None when nothing sold; 0 when nothing is on hand.
pub fn days_of_cover(on_hand_milli: i64, sold_milli: i64, window_days: f64) -> Option<f64> {
    if sold_milli <= 0 || window_days <= 0.0 {
        return None;
    }
    let per_day = sold_milli as f64 / window_days;
    Some((on_hand_milli.max(0) as f64 / per_day * 10.0).round() / 10.0)
}

/// Net sales (and transactions) by local weekday (0 = Monday) and hour of day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Heatmap {
    pub net_sales: [[i64; 24]; 7],
    pub transactions: [[i64; 24]; 7],
}

impl Heatmap {
    /// Adds hour bucket `hour`'s counters, placed by the zone's offset.
    pub fn add(&mut self, hour: i64, c: &Counters, utc_offset_min: i32) {
        let (d, h) = local_weekday_hour(hour, utc_offset_min);
        self.net_sales[d][h] += c.gross - c.refund_value - c.post_void_value;
        self.transactions[d][h] += c.sales - c.post_voids;
    }

    /// The busiest cell's net sales (the colour scale's top).
    pub fn max(&self) -> i64 {
        self.net_sales.iter().flatten().copied().max().unwrap_or(0)
    }
}

/// "Today's dashboard": the KPI tiles, the hourly sales, the top products and the tender split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    pub kpis: Kpis,
    pub hours: Vec<HourRow>,
    pub top_products: Vec<ProductRow>,
    pub tenders: Vec<TenderRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_are_filled_with_zeros() {
        let rows = vec![HourRow {
            hour_start_ms: 2 * HOUR_MS,
            transactions: 3,
            net_sales: Money(10),
            items_milli: 0,
        }];
        let filled = HourRow::fill(&rows, HOUR_MS, 4 * HOUR_MS);
        assert_eq!(filled.len(), 3);
        assert_eq!(filled[1], rows[0]);
        assert_eq!(filled[2].transactions, 0);
    }

    #[test]
    fn cover_and_cost() {
        assert_eq!(days_of_cover(10_000, 14_000, 7.0), Some(5.0));
        assert_eq!(days_of_cover(10_000, 0, 7.0), None);
        assert_eq!(days_of_cover(-5, 1000, 1.0), Some(0.0));
        assert_eq!(cost_of(299, 1500), 449);
        assert_eq!(cost_of(299, -1500), -449);
    }
}

//! KPI formulas over summed aggregates.
//!
//! * Net sales = gross − refunds − post-voids (tax included), as the Z report's `net`.
//! * Transactions = completed sales − post-voided ones; average basket = (gross −
//!   post-voids) / transactions; items per basket likewise (pieces; weighed goods not counted).
//! * Gross margin = net sales without tax − cost of goods, where cost of goods = Σ quantity
//!   sold (net of refunds) × the product's cost **in the current catalogue** (`Product.cost`):
//!   the sale event does not carry the cost, and reading it at report time keeps the
//!   aggregates independent of when a cost change and a sale reach the hub. Products with no
//!   catalogue entry (sold offline before the hub published them) are left out of the margin
//!   and their net is reported as `uncosted_net` so the tile can say so.
//! * Refund rate = refunds / sales; void rate = (line voids + post-voids) / sales, in basis
//!   points (0 when there were no sales).

use pos_core::sale::Money;
use serde::{Deserialize, Serialize};

use crate::aggregate::Counters;

/// `part / whole` in basis points (0 when `whole` is 0), rounded half up.
pub fn rate_bp(part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let (p, w) = (i128::from(part), i128::from(whole));
    i64::try_from((p * 20_000 + w) / (2 * w)).unwrap_or(i64::MAX)
}

/// Sales split for the margin: what costed products brought in and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CostedSales {
    /// Net of refunds, without tax, of the products whose cost the catalogue knows.
    pub net_ex_tax: i64,
    /// Their cost of goods: Σ (qty − refunded qty) × cost / 1000.
    pub cost: i64,
    /// Net without tax of products the catalogue does not know.
    pub uncosted_net_ex_tax: i64,
}

impl CostedSales {
    /// Adds one product's period: its net without tax, the quantity that stayed sold (sold −
    /// refunded, thousandths) and its unit cost in the catalogue (None: not in the catalogue).
    pub fn add(&mut self, net_ex_tax: i64, kept_qty_milli: i64, unit_cost: Option<i64>) {
        match unit_cost {
            Some(cost) => {
                self.net_ex_tax = self.net_ex_tax.saturating_add(net_ex_tax);
                self.cost = self
                    .cost
                    .saturating_add(crate::rows::cost_of(cost, kept_qty_milli));
            }
            None => {
                self.uncosted_net_ex_tax = self.uncosted_net_ex_tax.saturating_add(net_ex_tax);
            }
        }
    }
}

/// The KPI tiles of a period. Money in minor units; rates in basis points.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Kpis {
    /// Completed sales (as on the Z report, post-voided ones included).
    pub sales_count: i64,
    /// Sales that stand: completed − post-voided.
    pub transactions: i64,
    pub gross_sales: Money,
    pub net_sales: Money,
    pub average_basket: Money,
    /// Pieces per basket in thousandths (1500 = 1.5 items).
    pub items_per_basket_milli: i64,
    /// Discounts on sales that stand.
    pub discounts: Money,
    pub rounding: Money,
    pub refunds: i64,
    pub refund_value: Money,
    pub post_voids: i64,
    pub post_void_value: Money,
    pub line_voids: i64,
    pub line_void_value: Money,
    pub refund_rate_bp: i64,
    pub void_rate_bp: i64,
    /// Net sales without tax of costed products, their cost and the difference.
    pub net_ex_tax: Money,
    pub cost_of_goods: Money,
    pub gross_margin: Money,
    /// Gross margin / net without tax (costed products), basis points.
    pub margin_bp: i64,
    pub uncosted_net: Money,
    pub no_sales: i64,
    pub closes: i64,
    /// Σ counted − expected over the shifts closed in the period (positive: cash over).
    pub cash_over_short: Money,
    pub cash_over: Money,
    pub cash_short: Money,
    pub drawers_left_open: i64,
}

impl Kpis {
    /// The KPIs of summed counters `c` and the period's costed sales.
    pub fn compute(c: &Counters, costed: &CostedSales) -> Kpis {
        let transactions = c.sales - c.post_voids;
        let kept_gross = c.gross - c.post_void_value;
        let kept_items = c.items - c.post_void_items;
        let per_basket = |v: i64| {
            if transactions > 0 {
                let (v, t) = (i128::from(v), i128::from(transactions));
                // Half away from zero.
                let q = (2 * v.abs() + t) / (2 * t);
                i64::try_from(if v < 0 { -q } else { q }).unwrap_or(0)
            } else {
                0
            }
        };
        let margin = costed.net_ex_tax - costed.cost;
        Kpis {
            sales_count: c.sales,
            transactions,
            gross_sales: Money(c.gross),
            net_sales: Money(c.gross - c.refund_value - c.post_void_value),
            average_basket: Money(per_basket(kept_gross)),
            items_per_basket_milli: per_basket(kept_items),
            discounts: Money(c.discounts - c.post_void_discounts),
            rounding: Money(c.rounding - c.post_void_rounding),
            refunds: c.refunds,
            refund_value: Money(c.refund_value),
            post_voids: c.post_voids,
            post_void_value: Money(c.post_void_value),
            line_voids: c.line_voids,
            line_void_value: Money(c.line_void_value),
            refund_rate_bp: rate_bp(c.refunds, c.sales),
            void_rate_bp: rate_bp(c.line_voids + c.post_voids, c.sales),
            net_ex_tax: Money(costed.net_ex_tax),
            cost_of_goods: Money(costed.cost),
            gross_margin: Money(margin),
            margin_bp: rate_bp(margin, costed.net_ex_tax),
            uncosted_net: Money(costed.uncosted_net_ex_tax),
            no_sales: c.no_sales,
            closes: c.closes,
            cash_over_short: Money(c.over_short),
            cash_over: Money(c.cash_over),
            cash_short: Money(c.cash_short),
            drawers_left_open: c.drawers_left_open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_period_gives_zeros() {
        let k = Kpis::compute(&Counters::default(), &CostedSales::default());
        assert_eq!(k, Kpis::default());
    }

    #[test]
    fn basket_and_rates() {
        let c = Counters {
            sales: 4,
            gross: 1000,
            items: 9000,
            post_voids: 1,
            post_void_value: 100,
            post_void_items: 1000,
            refunds: 1,
            refund_value: 50,
            line_voids: 1,
            ..Counters::default()
        };
        let k = Kpis::compute(
            &c,
            &CostedSales {
                net_ex_tax: 800,
                cost: 600,
                uncosted_net_ex_tax: 0,
            },
        );
        assert_eq!(k.transactions, 3);
        assert_eq!(k.net_sales, Money(850));
        assert_eq!(k.average_basket, Money(300));
        assert_eq!(k.items_per_basket_milli, 2667);
        assert_eq!(k.refund_rate_bp, 2500);
        assert_eq!(k.void_rate_bp, 5000);
        assert_eq!((k.gross_margin, k.margin_bp), (Money(200), 2500));
        assert_eq!(rate_bp(1, 3), 3333);
        assert_eq!(rate_bp(5, 0), 0);
    }
}

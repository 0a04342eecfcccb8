//! What one event adds to the aggregates.
//!
//! Every aggregate cell is keyed by the hour of the event (its HLC wall time, UTC hours since
//! the epoch), the terminal that wrote it (the event's origin) and, for the counters, the
//! cashier (the event's actor). A cell's value is the plain sum of the [`Delta`]s of its
//! events, so it does not depend on the order the events arrive in (sync delivers them from
//! many origins in any interleaving) and `Store::rebuild` gives the same tables.
//!
//! The figures follow the Z report's definitions (`pos_core::sale::ShiftReport`), so a
//! period covering whole shifts reconciles with their Z reports to the cent:
//!
//! * `gross` is what customers owed on completed sales (tax included, before cash rounding);
//!   net sales = `gross − refund_value − post_void_value`.
//! * Tender amounts are net of change, refunds and post-voids; tax rates net of refunds and
//!   post-voids. A post-void or a refund counts in the hour (and by the cashier) it happened,
//!   not in the hour of the original sale, as on the Z report of the shift it happened in.
//! * Products are keyed by SKU (the stock key); their `paid` is what customers paid for the
//!   lines after discounts, tax included; cost and category are not in the sale event and are
//!   taken from the catalogue when a report is read (see [`crate::kpi`]).

use pos_core::sale::events::Refunded;
use pos_core::sale::{CompletedSale, Money, SaleError};
use serde::{Deserialize, Serialize};

/// One hour in milliseconds: the resolution of every aggregate.
pub const HOUR_MS: u64 = 3_600_000;

/// The aggregate bucket of a wall time: whole UTC hours since the Unix epoch.
pub fn hour_of(wall_ms: u64) -> i64 {
    i64::try_from(wall_ms / HOUR_MS).unwrap_or(i64::MAX)
}

macro_rules! counters {
    ($(#[$meta:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: i64,)*
        }

        impl $name {
            /// The column names, in the order of [`Self::values`] (the store's table columns).
            pub const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            pub fn values(&self) -> Vec<i64> {
                vec![$(self.$field),*]
            }

            /// From values in the order of [`Self::COLUMNS`]; missing ones are zero.
            pub fn from_values(values: &[i64]) -> Self {
                let mut it = values.iter().copied();
                $name { $($field: it.next().unwrap_or(0),)* }
            }

            /// Cell-wise sum (saturating: no real shop reaches i64 minor units).
            pub fn add(&mut self, other: &Self) {
                $(self.$field = self.$field.saturating_add(other.$field);)*
            }

            /// Every cell negated: what taking the same facts away adds.
            pub fn negated(&self) -> Self {
                $name { $($field: self.$field.saturating_neg(),)* }
            }

            pub fn is_zero(&self) -> bool {
                true $(&& self.$field == 0)*
            }
        }
    };
}

counters!(
    /// The counters of one (hour, terminal, cashier) cell. Money in minor units, items in
    /// thousandths of a piece (`Totals::items`).
    Counters {
        /// Completed sales (post-voided ones included, as on the Z report).
        sales,
        /// What customers owed on them, tax included, before cash rounding.
        gross,
        discounts,
        rounding,
        items,
        /// Sold lines (voided lines of a completed ticket are not counted).
        lines,
        refunds,
        refund_value,
        post_voids,
        post_void_value,
        post_void_discounts,
        post_void_rounding,
        post_void_items,
        post_void_lines,
        /// Lines taken off open tickets (`sale.line_voided`).
        line_voids,
        line_void_value,
        no_sales,
        paid_in,
        paid_in_value,
        paid_out,
        paid_out_value,
        /// Shifts closed, with the sum of their counted − expected cash.
        closes,
        over_short,
        /// The positive and the negative differences apart, so they do not cancel out.
        cash_over,
        cash_short,
        drawers_left_open,
    }
);

counters!(
    /// The sums of one (hour, terminal, sku) cell.
    ProductCounters {
        /// Quantity sold (thousandths), post-voids taken off.
        qty,
        lines,
        /// Paid for the lines, after discounts, tax included.
        paid,
        tax,
        refund_qty,
        refund_value,
        refund_tax,
    }
);

/// A product's part of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductDelta {
    pub sku: String,
    /// The name on the line; the aggregate keeps the smallest name seen (an order-independent
    /// choice), and reports prefer the catalogue's current name.
    pub name: String,
    pub add: ProductCounters,
}

/// A tender's part: payments counted and the amount (net of change, refunds, post-voids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenderDelta {
    pub tender: String,
    pub count: i64,
    pub amount: i64,
}

/// A tax rate's part (refunds and post-voids negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxDelta {
    pub class: String,
    pub name: String,
    pub rate_bp: u32,
    pub net: i64,
    pub tax: i64,
    pub gross: i64,
}

/// Everything one event adds, under its (hour, terminal, cashier).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delta {
    pub counters: Counters,
    pub products: Vec<ProductDelta>,
    pub tenders: Vec<TenderDelta>,
    pub taxes: Vec<TaxDelta>,
}

/// The facts the analytics count, decoded from their events by the caller.
#[derive(Debug, Clone, Copy)]
pub enum Fact<'a> {
    /// `sale.completed`.
    Completed(&'a CompletedSale),
    /// `sale.post_voided`, with the sale it cancels.
    PostVoided(&'a CompletedSale),
    /// `sale.refunded`.
    Refunded(&'a Refunded),
    /// `sale.line_voided`.
    LineVoided { amount: Money },
    /// `shift.no_sale`.
    NoSale,
    /// `shift.cash_moved`.
    CashMoved { paid_in: bool, amount: Money },
    /// `shift.closed`: counted − expected.
    ShiftClosed { over_short: Money },
    /// `security.drawer_left_open`.
    DrawerLeftOpen,
}

/// What `fact` adds to the aggregates. An overflow (impossible with real amounts) is an error
/// so a projection refuses the event rather than store a wrong sum.
pub fn delta(fact: &Fact<'_>) -> Result<Delta, SaleError> {
    let mut d = Delta::default();
    let c = &mut d.counters;
    match *fact {
        Fact::Completed(sale) => {
            c.sales = 1;
            c.gross = sale.totals.due.0;
            c.discounts = sale.totals.discounts.0;
            c.rounding = sale.rounding.0;
            c.items = sale.totals.items;
            c.lines = sold_lines(sale);
            d.products = products(sale, 1);
            d.tenders = tenders(sale, 1)?;
            d.taxes = taxes(&sale.totals.taxes, 1);
        }
        Fact::PostVoided(sale) => {
            c.post_voids = 1;
            c.post_void_value = sale.totals.due.0;
            c.post_void_discounts = sale.totals.discounts.0;
            c.post_void_rounding = sale.rounding.0;
            c.post_void_items = sale.totals.items;
            c.post_void_lines = sold_lines(sale);
            d.products = products(sale, -1);
            d.tenders = tenders(sale, -1)?;
            d.taxes = taxes(&sale.totals.taxes, -1);
        }
        Fact::Refunded(r) => {
            c.refunds = 1;
            c.refund_value = r.plan.total.0;
            d.products = r
                .plan
                .lines
                .iter()
                .map(|l| ProductDelta {
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    add: ProductCounters {
                        refund_qty: l.qty.0,
                        refund_value: l.amount.0,
                        refund_tax: l.tax.0,
                        ..ProductCounters::default()
                    },
                })
                .collect();
            d.tenders = vec![TenderDelta {
                tender: r.tender.key().to_owned(),
                count: 0,
                amount: r.plan.total.checked_neg()?.0,
            }];
            d.taxes = taxes(&r.plan.taxes, -1);
        }
        Fact::LineVoided { amount } => {
            c.line_voids = 1;
            c.line_void_value = amount.0;
        }
        Fact::NoSale => c.no_sales = 1,
        Fact::CashMoved { paid_in, amount } => {
            if paid_in {
                c.paid_in = 1;
                c.paid_in_value = amount.0;
            } else {
                c.paid_out = 1;
                c.paid_out_value = amount.0;
            }
        }
        Fact::ShiftClosed { over_short } => {
            c.closes = 1;
            c.over_short = over_short.0;
            c.cash_over = over_short.0.max(0);
            c.cash_short = over_short.0.min(0).saturating_neg();
        }
        Fact::DrawerLeftOpen => c.drawers_left_open = 1,
    }
    Ok(d)
}

/// `value`, negated when `sign` is negative (saturating).
fn signed(sign: i64, value: i64) -> i64 {
    if sign < 0 {
        value.saturating_neg()
    } else {
        value
    }
}

fn sold_lines(sale: &CompletedSale) -> i64 {
    sale.lines.iter().filter(|l| !l.voided).count() as i64
}

fn products(sale: &CompletedSale, sign: i64) -> Vec<ProductDelta> {
    sale.lines
        .iter()
        .filter(|l| !l.voided)
        .map(|l| ProductDelta {
            sku: l.sku.clone(),
            name: l.name.clone(),
            add: ProductCounters {
                qty: signed(sign, l.qty.0),
                lines: sign,
                paid: signed(sign, l.paid.0),
                tax: signed(sign, l.tax.0),
                ..ProductCounters::default()
            },
        })
        .collect()
}

/// As `ShiftReport`: each payment counted under its tender; change comes off cash.
fn tenders(sale: &CompletedSale, sign: i64) -> Result<Vec<TenderDelta>, SaleError> {
    let mut out: Vec<TenderDelta> = sale
        .payments
        .iter()
        .map(|p| TenderDelta {
            tender: p.tender.key().to_owned(),
            count: if sign > 0 { 1 } else { 0 },
            amount: signed(sign, p.amount.0),
        })
        .collect();
    if sale.change.0 != 0 {
        out.push(TenderDelta {
            tender: "cash".to_owned(),
            count: 0,
            amount: signed(sign, sale.change.checked_neg()?.0),
        });
    }
    Ok(out)
}

fn taxes(taxes: &[pos_core::sale::TaxSummary], sign: i64) -> Vec<TaxDelta> {
    taxes
        .iter()
        .map(|t| TaxDelta {
            class: t.class.clone(),
            name: t.name.clone(),
            rate_bp: t.rate_bp,
            net: signed(sign, t.net.0),
            tax: signed(sign, t.tax.0),
            gross: signed(sign, t.gross.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip_through_their_columns() {
        let c = Counters {
            sales: 3,
            drawers_left_open: 7,
            ..Counters::default()
        };
        assert_eq!(Counters::COLUMNS.len(), c.values().len());
        assert_eq!(Counters::from_values(&c.values()), c);
        let mut sum = c;
        sum.add(&c.negated());
        assert!(sum.is_zero());
    }

    #[test]
    fn a_shift_close_splits_over_and_short() {
        let d = delta(&Fact::ShiftClosed {
            over_short: Money(-250),
        })
        .unwrap();
        assert_eq!(
            (
                d.counters.closes,
                d.counters.over_short,
                d.counters.cash_short
            ),
            (1, -250, 250)
        );
        assert_eq!(d.counters.cash_over, 0);
    }
}

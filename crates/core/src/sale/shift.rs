//! Shifts and cash: the drawer's expected cash, the close with over/short, and the X/Z report.
//!
//! The report is a pure fold over [`SaleFact`]s, so the store can build it from its projections
//! and a test can rebuild it from the raw events and compare. The result does not depend on the
//! order of the facts (tenders and rates are kept sorted).
//!
//! Figures: `gross` is what customers owed on completed sales (tax included, before cash
//! rounding); `net = gross − refunds − post-voids`. Tender amounts are net of change, refunds
//! and post-voids (so card matches the card terminal's batch); tax rates are net of refunds and
//! post-voids. Line voids are counted from their own facts, not from the completed sales.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::money::Money;
use super::refund::RefundPlan;
use super::tax::{LineTax, TaxSummary};
use super::ticket::{CompletedSale, Tender};
use super::SaleError;

/// The cash a drawer should hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CashDrawer {
    pub float: Money,
    /// Cash kept from sales (tendered minus change; post-voided sales taken out).
    pub cash_sales: Money,
    pub cash_refunds: Money,
    pub paid_in: Money,
    pub paid_out: Money,
}

impl CashDrawer {
    /// `float + cash_sales − cash_refunds + paid_in − paid_out`.
    pub fn expected(&self) -> Result<Money, SaleError> {
        self.float
            .checked_add(self.cash_sales)?
            .checked_sub(self.cash_refunds)?
            .checked_add(self.paid_in)?
            .checked_sub(self.paid_out)
    }

    /// The close after a blind count.
    pub fn close(&self, counted: Money) -> Result<CloseResult, SaleError> {
        let expected = self.expected()?;
        Ok(CloseResult {
            expected,
            counted,
            over_short: counted.checked_sub(expected)?,
        })
    }
}

/// A drawer count against what was expected; `over_short` is positive when cash is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseResult {
    pub expected: Money,
    pub counted: Money,
    pub over_short: Money,
}

/// How many, and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CountValue {
    pub count: u64,
    pub value: Money,
}

impl CountValue {
    fn add(&mut self, value: Money) -> Result<(), SaleError> {
        self.count = self.count.checked_add(1).ok_or(SaleError::Overflow)?;
        self.value = self.value.checked_add(value)?;
        Ok(())
    }
}

/// What happened in a shift, as far as the report is concerned.
#[derive(Debug, Clone, Copy)]
pub enum SaleFact<'a> {
    ShiftOpened {
        float: Money,
    },
    Completed(&'a CompletedSale),
    Refunded {
        plan: &'a RefundPlan,
        tender: &'a Tender,
    },
    PostVoided(&'a CompletedSale),
    LineVoided {
        amount: Money,
    },
    NoSale,
    PaidIn(Money),
    PaidOut(Money),
}

/// An X report (any time) or Z report (at close) of one shift.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShiftReport {
    pub drawer: CashDrawer,
    pub sales_count: u64,
    pub gross: Money,
    pub net: Money,
    pub discounts: Money,
    pub rounding: Money,
    /// By [`Tender::key`]: payments counted, amount net of change, refunds and post-voids.
    pub tenders: BTreeMap<String, CountValue>,
    /// By tax class and rate, sorted.
    pub taxes: Vec<TaxSummary>,
    pub voids: CountValue,
    pub refunds: CountValue,
    pub post_voids: CountValue,
    pub no_sales: u64,
    pub paid_in: CountValue,
    pub paid_out: CountValue,
}

impl ShiftReport {
    /// The report with one more fact; fold a shift with `try_fold`. The only error is an
    /// overflow, which no real shift reaches.
    pub fn apply(mut self, fact: &SaleFact<'_>) -> Result<ShiftReport, SaleError> {
        match *fact {
            SaleFact::ShiftOpened { float } => {
                self.drawer.float = self.drawer.float.checked_add(float)?;
            }
            SaleFact::Completed(sale) => {
                self.sales_count = self.sales_count.checked_add(1).ok_or(SaleError::Overflow)?;
                self.gross = self.gross.checked_add(sale.totals.due)?;
                self.net = self.net.checked_add(sale.totals.due)?;
                self.discounts = self.discounts.checked_add(sale.totals.discounts)?;
                self.rounding = self.rounding.checked_add(sale.rounding)?;
                for p in &sale.payments {
                    self.tender(p.tender.key()).add(p.amount)?;
                }
                self.sale_cash(sale, false)?;
                self.taxes(&sale.totals.taxes, false)?;
            }
            SaleFact::Refunded { plan, tender } => {
                self.refunds.add(plan.total)?;
                self.net = self.net.checked_sub(plan.total)?;
                let entry = self.tender(tender.key());
                entry.value = entry.value.checked_sub(plan.total)?;
                if tender.is_cash() {
                    self.drawer.cash_refunds = self.drawer.cash_refunds.checked_add(plan.total)?;
                }
                self.taxes(&plan.taxes, true)?;
            }
            SaleFact::PostVoided(sale) => {
                self.post_voids.add(sale.totals.due)?;
                self.net = self.net.checked_sub(sale.totals.due)?;
                self.discounts = self.discounts.checked_sub(sale.totals.discounts)?;
                self.rounding = self.rounding.checked_sub(sale.rounding)?;
                for p in &sale.payments {
                    let entry = self.tender(p.tender.key());
                    entry.value = entry.value.checked_sub(p.amount)?;
                }
                self.sale_cash(sale, true)?;
                self.taxes(&sale.totals.taxes, true)?;
            }
            SaleFact::LineVoided { amount } => self.voids.add(amount)?,
            SaleFact::NoSale => {
                self.no_sales = self.no_sales.checked_add(1).ok_or(SaleError::Overflow)?;
            }
            SaleFact::PaidIn(amount) => {
                self.paid_in.add(amount)?;
                self.drawer.paid_in = self.drawer.paid_in.checked_add(amount)?;
            }
            SaleFact::PaidOut(amount) => {
                self.paid_out.add(amount)?;
                self.drawer.paid_out = self.drawer.paid_out.checked_add(amount)?;
            }
        }
        Ok(self)
    }

    fn tender(&mut self, key: &str) -> &mut CountValue {
        self.tenders.entry(key.to_owned()).or_default()
    }

    /// Change leaves the drawer: it comes off cash (sales) and off the cash tender.
    fn sale_cash(&mut self, sale: &CompletedSale, reverse: bool) -> Result<(), SaleError> {
        let kept = sale.cash_in_drawer()?;
        if reverse {
            self.drawer.cash_sales = self.drawer.cash_sales.checked_sub(kept)?;
        } else {
            self.drawer.cash_sales = self.drawer.cash_sales.checked_add(kept)?;
        }
        if sale.change.0 != 0 {
            let change = if reverse {
                sale.change
            } else {
                sale.change.checked_neg()?
            };
            let cash = self.tender("cash");
            cash.value = cash.value.checked_add(change)?;
        }
        Ok(())
    }

    fn taxes(&mut self, taxes: &[TaxSummary], negate: bool) -> Result<(), SaleError> {
        for t in taxes {
            let split: LineTax = t.totals();
            let key = |s: &TaxSummary| (s.class.clone(), s.rate_bp);
            match self.taxes.binary_search_by_key(&key(t), key) {
                Ok(i) => self.taxes[i].add(split, negate)?,
                Err(i) => {
                    let mut summary = TaxSummary {
                        net: Money::ZERO,
                        tax: Money::ZERO,
                        gross: Money::ZERO,
                        ..t.clone()
                    };
                    summary.add(split, negate)?;
                    self.taxes.insert(i, summary);
                }
            }
        }
        Ok(())
    }
}

//! Refunds and returns: never more than was sold, to the cent.
//!
//! A refund against a receipt is pro rata of what the customer paid for the line (after line
//! and ticket discounts, tax included), counted cumulatively: after refunding `q` of the `Q`
//! sold, `round(paid × q / Q)` has been refunded in total (half away from zero), so the last
//! unit refunds exactly the remainder and all refunds of a line sum to its paid amount. The
//! refunded tax follows the same rule on the line's tax.

use serde::{Deserialize, Serialize};

use super::catalogue::{check_price, Product};
use super::money::{div_round, line_amount, to_money, Money, Quantity, Unit};
use super::tax::{find_rate, line_tax, LineTax, PricingMode, TaxRate, TaxSummary};
use super::ticket::{CompletedSale, LineNo, MAX_LINE_QTY};
use super::SaleError;
use crate::ProductId;

/// A refund already made against a sale's line: the record the engine keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLine {
    pub line: LineNo,
    pub qty: Quantity,
    pub amount: Money,
}

/// What the cashier asks to refund from a receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    pub line: LineNo,
    pub qty: Quantity,
}

/// One line of a checked refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRefund {
    /// The sale's line; `None` for a refund without receipt.
    pub line: Option<LineNo>,
    pub product: ProductId,
    pub sku: String,
    pub name: String,
    pub unit: Unit,
    pub tax_class: String,
    pub qty: Quantity,
    /// Paid back, tax included.
    pub amount: Money,
    pub tax: Money,
}

/// A checked refund: what to pay back, per line and per tax rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPlan {
    pub lines: Vec<PlannedRefund>,
    pub total: Money,
    pub taxes: Vec<TaxSummary>,
}

impl RefundPlan {
    /// A return without the receipt, at `price` (per piece or per kg, as the store prices).
    pub fn without_receipt(
        product: &Product,
        qty: Quantity,
        price: Money,
        rates: &[TaxRate],
        mode: PricingMode,
    ) -> Result<RefundPlan, SaleError> {
        check_price(price)?;
        check_refund_qty(product.unit, &product.name, qty)?;
        if qty > MAX_LINE_QTY {
            return Err(SaleError::QuantityTooLarge {
                qty,
                max: MAX_LINE_QTY,
            });
        }
        let rate = find_rate(rates, &product.tax_class)?;
        let split = line_tax(line_amount(price, qty)?, rate.rate_bp, mode)?;
        let line = PlannedRefund {
            line: None,
            product: product.id,
            sku: product.sku.clone(),
            name: product.name.clone(),
            unit: product.unit,
            tax_class: product.tax_class.clone(),
            qty,
            amount: split.gross,
            tax: split.tax,
        };
        let mut summary = TaxSummary::empty(rate);
        summary.add(split, false)?;
        Ok(RefundPlan {
            lines: vec![line],
            total: split.gross,
            taxes: vec![summary],
        })
    }

    /// The records to keep against the sale (lines refunded with a receipt).
    pub fn records(&self) -> Vec<RefundLine> {
        self.lines
            .iter()
            .filter_map(|l| {
                l.line.map(|line| RefundLine {
                    line,
                    qty: l.qty,
                    amount: l.amount,
                })
            })
            .collect()
    }
}

/// What is left to refund on a sale, given the refunds already made against it.
#[derive(Debug, Clone)]
pub struct Refundable<'a> {
    sale: &'a CompletedSale,
    /// Per sale line (same index): quantity and amount refunded so far.
    done: Vec<(Quantity, Money)>,
}

impl<'a> Refundable<'a> {
    /// Refuses records that name unknown lines or exceed what was sold (a corrupt history).
    pub fn new(sale: &'a CompletedSale, previous: &[RefundLine]) -> Result<Self, SaleError> {
        let mut done = vec![(Quantity::ZERO, Money::ZERO); sale.lines.len()];
        for record in previous {
            let i = position(sale, record.line)?;
            let (qty, amount) = done[i];
            let qty = Quantity(record.qty.0.checked_add(qty.0).ok_or(SaleError::Overflow)?);
            let amount = record.amount.checked_add(amount)?;
            let sold = &sale.lines[i];
            if qty > sold.qty || amount > sold.paid || record.qty.0 < 0 || record.amount.0 < 0 {
                return Err(SaleError::RefundRecordsExceedSale(record.line));
            }
            done[i] = (qty, amount);
        }
        Ok(Refundable { sale, done })
    }

    /// Quantity and money still refundable on a line.
    pub fn left(&self, line: LineNo) -> Result<(Quantity, Money), SaleError> {
        let i = position(self.sale, line)?;
        let sold = &self.sale.lines[i];
        let (qty, amount) = self.done[i];
        if sold.voided {
            return Ok((Quantity::ZERO, Money::ZERO));
        }
        Ok((
            Quantity(sold.qty.0.saturating_sub(qty.0)),
            sold.paid.checked_sub(amount)?,
        ))
    }

    /// Checks a refund and works out its amounts (see the module doc).
    pub fn check_refund(&self, requested: &[RefundRequest]) -> Result<RefundPlan, SaleError> {
        if requested.is_empty() {
            return Err(SaleError::NothingToRefund);
        }
        let mut done = self.done.clone();
        let mut lines = Vec::with_capacity(requested.len());
        let mut taxes: Vec<TaxSummary> = Vec::new();
        for req in requested {
            let i = position(self.sale, req.line)?;
            let sold = &self.sale.lines[i];
            if sold.voided {
                return Err(SaleError::LineVoided(req.line));
            }
            check_refund_qty(sold.unit, &sold.name, req.qty)?;
            let (done_qty, done_amount) = done[i];
            let left = Quantity(sold.qty.0.saturating_sub(done_qty.0));
            if req.qty > left {
                return Err(SaleError::RefundExceedsSale {
                    line: req.line,
                    requested: req.qty,
                    left,
                });
            }
            let new_qty = Quantity(done_qty.0 + req.qty.0);
            let amount_left = sold.paid.checked_sub(done_amount)?;
            let amount = pro_rata(sold.paid, new_qty, sold.qty)?
                .checked_sub(done_amount)?
                .clamp(Money::ZERO, amount_left.max(Money::ZERO));
            let tax = pro_rata(sold.tax, new_qty, sold.qty)?
                .checked_sub(pro_rata(sold.tax, done_qty, sold.qty)?)?;
            done[i] = (new_qty, done_amount.checked_add(amount)?);

            let split = LineTax {
                net: amount.checked_sub(tax)?,
                tax,
                gross: amount,
            };
            match taxes.iter_mut().find(|t| t.class == sold.tax_class) {
                Some(summary) => summary.add(split, false)?,
                None => {
                    let rate = self
                        .sale
                        .totals
                        .taxes
                        .iter()
                        .find(|t| t.class == sold.tax_class)
                        .ok_or_else(|| SaleError::UnknownTaxClass(sold.tax_class.clone()))?;
                    let mut summary = TaxSummary {
                        net: Money::ZERO,
                        tax: Money::ZERO,
                        gross: Money::ZERO,
                        ..rate.clone()
                    };
                    summary.add(split, false)?;
                    taxes.push(summary);
                }
            }
            lines.push(PlannedRefund {
                line: Some(sold.line),
                product: sold.product,
                sku: sold.sku.clone(),
                name: sold.name.clone(),
                unit: sold.unit,
                tax_class: sold.tax_class.clone(),
                qty: req.qty,
                amount,
                tax,
            });
        }
        let total = Money::sum(lines.iter().map(|l| l.amount))?;
        Ok(RefundPlan {
            lines,
            total,
            taxes,
        })
    }
}

fn position(sale: &CompletedSale, line: LineNo) -> Result<usize, SaleError> {
    sale.lines
        .iter()
        .position(|l| l.line == line)
        .ok_or(SaleError::UnknownLine(line))
}

fn check_refund_qty(unit: Unit, name: &str, qty: Quantity) -> Result<(), SaleError> {
    if qty.0 <= 0 {
        return Err(SaleError::QuantityNotPositive);
    }
    if unit == Unit::Each && !qty.is_whole() {
        return Err(SaleError::WholeUnitsOnly(name.to_owned()));
    }
    Ok(())
}

/// `value × part / whole`, half away from zero; all of `value` when `part ≥ whole`.
fn pro_rata(value: Money, part: Quantity, whole: Quantity) -> Result<Money, SaleError> {
    if part >= whole || whole.0 <= 0 {
        return Ok(value);
    }
    to_money(div_round(
        i128::from(value.0) * i128::from(part.0),
        i128::from(whole.0),
    ))
}

//! Tax: several rates, tax-inclusive or tax-exclusive prices, rounding per line then summed.
//!
//! # Rounding rule
//!
//! Tax is computed on each line's amount *after* its line discount and its share of the ticket
//! discount, rounded to the minor unit, and the rounded line taxes are summed per rate. Rounding
//! is half away from zero. With `bp` the rate in basis points (2000 = 20%):
//!
//! - **Inclusive** (shelf prices include tax; the line amount is the gross):
//!   `tax = round(gross × bp / (10000 + bp))`, `net = gross − tax`.
//! - **Exclusive** (shelf prices exclude tax; the line amount is the net):
//!   `tax = round(net × bp / 10000)`, `gross = net + tax`.
//!
//! A rate's [`TaxSummary`] is the sum of its lines' net, tax and gross, so the summary always
//! adds up to the line amounts printed on the receipt (rounding per rate total instead could
//! differ by a cent from the sum of lines, which auditors then have to explain).

use serde::{Deserialize, Serialize};

use super::money::{div_round, to_money, Money};
use super::SaleError;

/// A tax rate that products refer to by `class` (e.g. "A" → "VAT 20%").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    pub class: String,
    pub name: String,
    /// Basis points: 2000 = 20%, 550 = 5.5%.
    pub rate_bp: u32,
}

/// Whether shelf prices include tax (usual for consumers) or exclude it (business-to-business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PricingMode {
    Inclusive,
    Exclusive,
}

/// The tax split of one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LineTax {
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}

/// The tax split of one line amount (after discounts), per the module's rounding rule.
pub fn line_tax(amount: Money, rate_bp: u32, mode: PricingMode) -> Result<LineTax, SaleError> {
    let bp = i128::from(rate_bp);
    let value = i128::from(amount.0);
    match mode {
        PricingMode::Inclusive => {
            let tax = to_money(div_round(value * bp, 10_000 + bp))?;
            Ok(LineTax {
                net: amount.checked_sub(tax)?,
                tax,
                gross: amount,
            })
        }
        PricingMode::Exclusive => {
            let tax = to_money(div_round(value * bp, 10_000))?;
            Ok(LineTax {
                net: amount,
                tax,
                gross: amount.checked_add(tax)?,
            })
        }
    }
}

/// The rate of a tax class.
pub fn find_rate<'a>(rates: &'a [TaxRate], class: &str) -> Result<&'a TaxRate, SaleError> {
    rates
        .iter()
        .find(|r| r.class == class)
        .ok_or_else(|| SaleError::UnknownTaxClass(class.to_owned()))
}

/// Totals of one rate over a ticket, a refund or a shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSummary {
    pub class: String,
    pub name: String,
    pub rate_bp: u32,
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}

impl TaxSummary {
    pub fn empty(rate: &TaxRate) -> TaxSummary {
        TaxSummary {
            class: rate.class.clone(),
            name: rate.name.clone(),
            rate_bp: rate.rate_bp,
            net: Money::ZERO,
            tax: Money::ZERO,
            gross: Money::ZERO,
        }
    }

    /// Adds a line (or, with `negate`, takes it away: refunds and post-voids).
    pub fn add(&mut self, line: LineTax, negate: bool) -> Result<(), SaleError> {
        let signed = |m: Money| if negate { m.checked_neg() } else { Ok(m) };
        self.net = self.net.checked_add(signed(line.net)?)?;
        self.tax = self.tax.checked_add(signed(line.tax)?)?;
        self.gross = self.gross.checked_add(signed(line.gross)?)?;
        Ok(())
    }

    pub fn totals(&self) -> LineTax {
        LineTax {
            net: self.net,
            tax: self.tax,
            gross: self.gross,
        }
    }
}

/// Sums line taxes per rate; the summaries follow the order of `rates` and only rates that
/// have lines appear.
pub fn summarise<'a>(
    lines: impl IntoIterator<Item = (&'a str, LineTax)>,
    rates: &[TaxRate],
) -> Result<Vec<TaxSummary>, SaleError> {
    let mut sums: Vec<Option<TaxSummary>> = vec![None; rates.len()];
    for (class, line) in lines {
        let index = rates
            .iter()
            .position(|r| r.class == class)
            .ok_or_else(|| SaleError::UnknownTaxClass(class.to_owned()))?;
        let rate = &rates[index];
        sums[index]
            .get_or_insert_with(|| TaxSummary::empty(rate))
            .add(line, false)?;
    }
    Ok(sums.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inclusive_and_exclusive_rounding() {
        // 12.00 incl. 20%: 12.00 * 2000 / 12000 = 2.00
        let t = line_tax(Money(1200), 2000, PricingMode::Inclusive).unwrap();
        assert_eq!(
            (t.net, t.tax, t.gross),
            (Money(1000), Money(200), Money(1200))
        );
        // 0.99 incl. 5.5%: 99 * 550 / 10550 = 5.16 → 5
        let t = line_tax(Money(99), 550, PricingMode::Inclusive).unwrap();
        assert_eq!((t.net, t.tax), (Money(94), Money(5)));
        // 0.25 excl. 10%: 2.5 → 3 (half away from zero)
        let t = line_tax(Money(25), 1000, PricingMode::Exclusive).unwrap();
        assert_eq!((t.tax, t.gross), (Money(3), Money(28)));
        let t = line_tax(Money(-25), 1000, PricingMode::Exclusive).unwrap();
        assert_eq!(t.tax, Money(-3));
        assert_eq!(
            line_tax(Money(i64::MAX), 2000, PricingMode::Exclusive),
            Err(SaleError::Overflow)
        );
    }
}

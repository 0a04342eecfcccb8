//! The open ticket: lines, discounts and payments, in memory on the terminal until it is paid.
//!
//! Every method either applies completely or refuses with an error and leaves the ticket as it
//! was (changes are made on a copy whose totals are checked before it replaces the ticket).
//!
//! # Amounts
//!
//! - A line's amount is `line_amount(unit_price, qty)` (half away from zero), or the price
//!   printed on its scale label.
//! - A line discount is taken off its line: a percent is rounded half away from zero; an
//!   amount may not exceed the line (if the line later shrinks, the discount is capped at it).
//! - The ticket discount applies to the subtotal (lines after their discounts) and is spread
//!   over the lines pro rata to those amounts by largest remainder (floor shares, then one
//!   minor unit each to the lines with the largest remainders, earlier lines first on ties), so
//!   the shares sum exactly to the discount and no line goes below zero. It is spread *before*
//!   tax so every rate is taxed on what was actually charged.
//! - Tax is then computed per line and summed per rate (see [`super::tax`]).
//! - `total = lines_gross − discounts`; the customer owes `due = total` with inclusive prices
//!   and `due = total + tax` with exclusive prices.
//!
//! # Payments
//!
//! Lines and discounts are frozen once a payment is taken (remove the payments to change them).
//! Only cash may pay more than is left (change); a card, voucher or other tender may pay at most
//! what is left. When cash pays, the part cash has to cover (`due − non-cash payments`) is
//! rounded half up to the [`CashRounding`] step, and the difference is the `rounding` line.

use serde::{Deserialize, Serialize};

use super::barcode::Scanned;
use super::catalogue::{check_price, Product};
use super::money::{div_round, line_amount, to_money, Money, Quantity, Unit};
use super::tax::{find_rate, line_tax, summarise, PricingMode, TaxRate, TaxSummary};
use super::SaleError;
use crate::{ProductId, TicketId};

/// Most a line may hold: 10 000 pieces or kg.
pub const MAX_LINE_QTY: Quantity = Quantity::units(10_000);
/// Most lines on a ticket (voided ones included): beyond this it is a runaway scanner.
pub const MAX_LINES: usize = 500;

/// A line's number on the ticket, from 1; stays with the line when it is voided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LineNo(pub u32);

impl std::fmt::Display for LineNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A discount on a line or on the whole ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discount {
    /// Basis points of the amount: 1000 = 10%, at most 10000.
    Percent(u32),
    Amount(Money),
}

impl Discount {
    fn validate(self) -> Result<(), SaleError> {
        match self {
            Discount::Percent(bp) if bp > 10_000 => Err(SaleError::PercentTooLarge),
            Discount::Amount(a) if a.is_negative() => Err(SaleError::NegativeDiscount),
            _ => Ok(()),
        }
    }

    fn is_zero(self) -> bool {
        matches!(self, Discount::Percent(0) | Discount::Amount(Money(0)))
    }

    /// The money this takes off `base`: a percent rounded half away from zero, never more than
    /// `base` and never below zero.
    pub fn amount_on(self, base: Money) -> Result<Money, SaleError> {
        let value = match self {
            Discount::Percent(bp) => {
                to_money(div_round(i128::from(base.0) * i128::from(bp), 10_000))?
            }
            Discount::Amount(a) => a,
        };
        Ok(value.min(base).max(Money::ZERO))
    }
}

impl std::fmt::Display for Discount {
    /// "10%", "12.5%" or "5.00".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Discount::Percent(bp) => write!(f, "{}%", percent_text(*bp)),
            Discount::Amount(a) => a.fmt(f),
        }
    }
}

/// "20", "5.5", "12.34" for basis points 2000, 550, 1234.
pub(crate) fn percent_text(bp: u32) -> String {
    let text = format!("{}.{:02}", bp / 100, bp % 100);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Up to which discount a cashier may go alone; above it a second user approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountPolicy {
    pub max_percent_bp: u32,
    pub max_amount: Money,
}

impl Default for DiscountPolicy {
    fn default() -> Self {
        DiscountPolicy {
            max_percent_bp: 1000,
            max_amount: Money(500),
        }
    }
}

impl DiscountPolicy {
    /// A discount needs approval when it exceeds either limit on `base` (the line or subtotal it
    /// applies to): as a share of it above `max_percent_bp`, or in money above `max_amount`.
    /// Both forms are held to both limits, so neither "100% off a 3.00 item" nor "10% off a
    /// 900.00 ticket" slips through.
    pub fn needs_approval(&self, discount: &Discount, base: Money) -> bool {
        let base_value = i128::from(base.0.max(0));
        match *discount {
            Discount::Percent(bp) => {
                let value = div_round(base_value * i128::from(bp), 10_000);
                bp > self.max_percent_bp || value > i128::from(self.max_amount.0)
            }
            Discount::Amount(a) => {
                a > self.max_amount
                    || i128::from(a.0) * 10_000 > i128::from(self.max_percent_bp) * base_value
            }
        }
    }
}

/// How a payment was made. Card payments come from an external card terminal: only its
/// approval code and the last four digits are kept, never card data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tender {
    Cash,
    Card {
        approval_code: String,
        last4: String,
    },
    Voucher {
        code: String,
    },
    Other {
        name: String,
    },
}

impl Tender {
    pub fn is_cash(&self) -> bool {
        matches!(self, Tender::Cash)
    }

    /// The key reports group by: "cash", "card", "voucher", or the other tender's name.
    pub fn key(&self) -> &str {
        match self {
            Tender::Cash => "cash",
            Tender::Card { .. } => "card",
            Tender::Voucher { .. } => "voucher",
            Tender::Other { name } => name,
        }
    }

    /// As printed: "Cash", "Card ****1234", "Voucher GIFT-1", or the other tender's name.
    pub fn label(&self) -> String {
        match self {
            Tender::Cash => "Cash".into(),
            Tender::Card { last4, .. } => format!("Card ****{last4}"),
            Tender::Voucher { code } => format!("Voucher {code}"),
            Tender::Other { name } => name.clone(),
        }
    }

    fn validate(&self) -> Result<(), SaleError> {
        let bad = |why: &str| Err(SaleError::InvalidTender(why.into()));
        let short = |s: &str, max: usize| !s.trim().is_empty() && s.chars().count() <= max;
        match self {
            Tender::Cash => Ok(()),
            Tender::Card {
                approval_code,
                last4,
            } => {
                if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
                    bad("the card's last digits must be exactly 4 digits")
                } else if !short(approval_code, 32)
                    || !approval_code.bytes().all(|b| b.is_ascii_alphanumeric())
                {
                    bad("the approval code must be 1 to 32 letters or digits")
                } else {
                    Ok(())
                }
            }
            Tender::Voucher { code } if !short(code, 64) => {
                bad("the voucher code must be 1 to 64 characters")
            }
            Tender::Other { name } if !short(name, 32) => {
                bad("the tender name must be 1 to 32 characters")
            }
            Tender::Other { name }
                if ["cash", "card", "voucher"].contains(&name.to_lowercase().as_str()) =>
            {
                bad("cash, card and voucher are tenders of their own, not other tenders")
            }
            _ => Ok(()),
        }
    }
}

/// One payment on a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub tender: Tender,
    pub amount: Money,
}

/// Cash rounding (e.g. to 0.05 where small coins are gone). A step of 1 (or less) is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CashRounding {
    pub step: Money,
}

impl Default for CashRounding {
    fn default() -> Self {
        CashRounding { step: Money(1) }
    }
}

impl CashRounding {
    /// `amount` (≥ 0) rounded half up to the step.
    fn round(self, amount: Money) -> Result<Money, SaleError> {
        let step = i128::from(self.step.0);
        if step <= 1 {
            return Ok(amount);
        }
        let value = i128::from(amount.0);
        to_money((2 * value + step).div_euclid(2 * step) * step)
    }
}

/// One line of an open ticket: a snapshot of the product at the time it was added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub product: ProductId,
    pub sku: String,
    pub name: String,
    pub unit: Unit,
    pub tax_class: String,
    pub qty: Quantity,
    pub unit_price: Money,
    /// The catalogue price, kept to show what an override changed.
    pub catalogue_price: Money,
    pub price_overridden: bool,
    /// Amount printed on a scale label; it is the line amount as is.
    pub label_amount: Option<Money>,
    pub discount: Option<Discount>,
    pub voided: bool,
}

impl Line {
    /// Before discounts.
    pub fn amount(&self) -> Result<Money, SaleError> {
        match self.label_amount {
            Some(amount) => Ok(amount),
            None => line_amount(self.unit_price, self.qty),
        }
    }
}

/// What the customer display shows at all times.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of the (non-voided) line amounts before discounts, priced as the store prices.
    pub lines_gross: Money,
    /// `lines_gross` minus line discounts: what a ticket discount applies to.
    pub subtotal: Money,
    pub ticket_discount: Money,
    /// Line discounts plus the ticket discount.
    pub discounts: Money,
    /// `lines_gross − discounts`.
    pub total: Money,
    /// Tax on top of `total` with exclusive prices; zero with inclusive prices.
    pub tax_added: Money,
    /// What the customer owes before cash rounding: `total + tax_added`.
    pub due: Money,
    pub taxes: Vec<TaxSummary>,
    /// Pieces sold, in thousandths (weighed lines are not counted).
    pub items: i64,
}

/// Where payment stands. `due + rounding + change = paid + remaining`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Balance {
    pub due: Money,
    pub paid: Money,
    pub remaining: Money,
    pub change: Money,
    pub rounding: Money,
}

/// A line as sold: everything the receipt, refunds and reports need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoldLine {
    pub line: LineNo,
    pub product: ProductId,
    pub sku: String,
    pub name: String,
    pub unit: Unit,
    pub tax_class: String,
    pub qty: Quantity,
    pub unit_price: Money,
    pub catalogue_price: Money,
    pub price_overridden: bool,
    pub label_priced: bool,
    /// Before discounts.
    pub amount: Money,
    pub discount: Option<Discount>,
    pub line_discount: Money,
    /// This line's share of the ticket discount.
    pub ticket_discount: Money,
    pub tax: Money,
    /// What the customer paid for the line: after discounts, tax included. Refunds are pro rata
    /// of it. Zero for voided lines.
    pub paid: Money,
    pub voided: bool,
}

/// A paid ticket: the payload of `sale.completed` and the content of its receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedSale {
    pub ticket: TicketId,
    pub mode: PricingMode,
    pub lines: Vec<SoldLine>,
    pub ticket_discount: Option<Discount>,
    pub totals: Totals,
    pub payments: Vec<Payment>,
    pub rounding: Money,
    pub change: Money,
}

impl CompletedSale {
    pub const MODULE: &'static str = "sale";
    pub const KIND: &'static str = "completed";

    /// Cash the sale left in the drawer: cash tendered minus change.
    pub fn cash_in_drawer(&self) -> Result<Money, SaleError> {
        let cash = self.payments.iter().filter(|p| p.tender.is_cash());
        Money::sum(cash.map(|p| p.amount))?.checked_sub(self.change)
    }
}

/// An open ticket. Serde so the engine can persist it (`sale.ticket_parked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    id: TicketId,
    mode: PricingMode,
    rates: Vec<TaxRate>,
    lines: Vec<Line>,
    discount: Option<Discount>,
    payments: Vec<Payment>,
}

impl Ticket {
    pub fn new(id: TicketId, mode: PricingMode, rates: Vec<TaxRate>) -> Ticket {
        Ticket {
            id,
            mode,
            rates,
            lines: Vec::new(),
            discount: None,
            payments: Vec::new(),
        }
    }

    pub fn id(&self) -> TicketId {
        self.id
    }

    pub fn mode(&self) -> PricingMode {
        self.mode
    }

    pub fn rates(&self) -> &[TaxRate] {
        &self.rates
    }

    /// All lines, voided ones included, in order (line n is at index n − 1).
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    pub fn line(&self, no: LineNo) -> Result<&Line, SaleError> {
        let index = line_index(no);
        index
            .and_then(|i| self.lines.get(i))
            .ok_or(SaleError::UnknownLine(no))
    }

    pub fn discount(&self) -> Option<Discount> {
        self.discount
    }

    pub fn payments(&self) -> &[Payment] {
        &self.payments
    }

    /// No line left that is not voided.
    pub fn is_empty(&self) -> bool {
        self.lines.iter().all(|l| l.voided)
    }

    /// Adds `qty` of `product` at its price or at `price_override`. Refuses disabled products,
    /// quantities ≤ 0 or above 10 000 units, fractions of pieces and prices out of range.
    pub fn add_item(
        &mut self,
        product: &Product,
        qty: Quantity,
        price_override: Option<Money>,
    ) -> Result<LineNo, SaleError> {
        let price = price_override.unwrap_or(product.price);
        check_price(price)?;
        self.push_line(product, qty, price, None)
    }

    /// Adds what a scan found: one piece for a GTIN or PLU (a weighed product must be weighed),
    /// the weight of a weight label, or the price of a price label (for a weighed product the
    /// weight is worked out from its price per kg, for stock; the label price is the amount).
    pub fn add_scanned(
        &mut self,
        product: &Product,
        scanned: &Scanned,
    ) -> Result<LineNo, SaleError> {
        match (scanned, product.unit) {
            (Scanned::Gtin(_) | Scanned::Plu(_), Unit::Kg) => {
                Err(SaleError::NeedsWeight(product.name.clone()))
            }
            (Scanned::Gtin(_) | Scanned::Plu(_), Unit::Each) => {
                self.add_item(product, Quantity::ONE, None)
            }
            (Scanned::WeightEmbedded { quantity, .. }, Unit::Kg) => {
                self.add_item(product, *quantity, None)
            }
            (Scanned::WeightEmbedded { .. }, Unit::Each) => {
                Err(SaleError::NotSoldByWeight(product.name.clone()))
            }
            (Scanned::PriceEmbedded { price, .. }, unit) => {
                check_price(*price)?;
                let (qty, unit_price) = match unit {
                    Unit::Each => (Quantity::ONE, *price),
                    Unit::Kg if product.price.is_positive() => {
                        let grams =
                            div_round(i128::from(price.0) * 1000, i128::from(product.price.0));
                        let grams = i64::try_from(grams).map_err(|_| SaleError::Overflow)?;
                        (Quantity(grams.max(1)), product.price)
                    }
                    Unit::Kg => return Err(SaleError::CannotDeriveWeight(product.name.clone())),
                };
                self.push_line(product, qty, unit_price, Some(*price))
            }
        }
    }

    pub fn set_quantity(&mut self, no: LineNo, qty: Quantity) -> Result<(), SaleError> {
        self.edit_line(no, |line| {
            if line.label_amount.is_some() {
                return Err(SaleError::LabelPriced(no));
            }
            check_qty(line.unit, &line.name, qty)?;
            line.qty = qty;
            Ok(())
        })
    }

    /// Marks the line voided; it stays on the ticket (and the receipt) for the audit.
    pub fn void_line(&mut self, no: LineNo) -> Result<(), SaleError> {
        self.edit_line(no, |line| {
            line.voided = true;
            Ok(())
        })
    }

    /// Sets (or, with a zero discount, removes) the line's discount. An amount above the line
    /// amount is refused.
    pub fn line_discount(&mut self, no: LineNo, discount: Discount) -> Result<(), SaleError> {
        discount.validate()?;
        self.edit_line(no, |line| {
            check_fits(discount, line.amount()?)?;
            line.discount = (!discount.is_zero()).then_some(discount);
            Ok(())
        })
    }

    /// Sets (or, with a zero discount, removes) the ticket discount. An amount above the
    /// subtotal is refused.
    pub fn ticket_discount(&mut self, discount: Discount) -> Result<(), SaleError> {
        discount.validate()?;
        self.ensure_no_payments()?;
        if self.is_empty() {
            return Err(SaleError::TicketEmpty);
        }
        check_fits(discount, self.totals()?.subtotal)?;
        self.edit(|t| {
            t.discount = (!discount.is_zero()).then_some(discount);
            Ok(())
        })
    }

    /// Changes the line's unit price (the reason and approval are the engine's business).
    pub fn override_price(&mut self, no: LineNo, price: Money) -> Result<(), SaleError> {
        check_price(price)?;
        self.edit_line(no, |line| {
            if line.label_amount.is_some() {
                return Err(SaleError::LabelPriced(no));
            }
            line.unit_price = price;
            line.price_overridden = price != line.catalogue_price;
            Ok(())
        })
    }

    /// Takes a payment; returns its index. Only cash may pay more than is left.
    pub fn add_payment(&mut self, tender: Tender, amount: Money) -> Result<usize, SaleError> {
        tender.validate()?;
        if !amount.is_positive() {
            return Err(SaleError::PaymentNotPositive);
        }
        if self.is_empty() {
            return Err(SaleError::TicketEmpty);
        }
        let remaining = self.totals()?.due.checked_sub(self.paid()?)?;
        if !remaining.is_positive() {
            return Err(SaleError::NothingDue);
        }
        if !tender.is_cash() && amount > remaining {
            return Err(SaleError::Overpayment {
                tender: tender.label(),
                remaining,
            });
        }
        self.edit(|t| {
            t.payments.push(Payment { tender, amount });
            t.paid()?;
            Ok(t.payments.len() - 1)
        })
    }

    pub fn remove_payment(&mut self, index: usize) -> Result<Payment, SaleError> {
        if index >= self.payments.len() {
            return Err(SaleError::UnknownPayment(index));
        }
        Ok(self.payments.remove(index))
    }

    pub fn totals(&self) -> Result<Totals, SaleError> {
        Ok(self.figures()?.1)
    }

    /// Where payment stands, with cash rounding applied to the part cash covers.
    pub fn balance(&self, rounding: &CashRounding) -> Result<Balance, SaleError> {
        let due = self.totals()?.due;
        let (mut cash, mut other) = (Money::ZERO, Money::ZERO);
        for p in &self.payments {
            let sum = if p.tender.is_cash() {
                &mut cash
            } else {
                &mut other
            };
            *sum = sum.checked_add(p.amount)?;
        }
        let cash_part = due.checked_sub(other)?.max(Money::ZERO);
        let cash_needed = if cash.is_positive() {
            rounding.round(cash_part)?
        } else {
            cash_part
        };
        let short = cash_needed.checked_sub(cash)?;
        Ok(Balance {
            due,
            paid: cash.checked_add(other)?,
            remaining: short.max(Money::ZERO),
            change: short.checked_neg()?.max(Money::ZERO),
            rounding: cash_needed.checked_sub(cash_part)?,
        })
    }

    /// The completed sale, if the ticket has items and is fully paid.
    pub fn complete(&self, rounding: &CashRounding) -> Result<CompletedSale, SaleError> {
        if self.is_empty() {
            return Err(SaleError::TicketEmpty);
        }
        let balance = self.balance(rounding)?;
        if balance.remaining.is_positive() {
            return Err(SaleError::Underpaid {
                remaining: balance.remaining,
            });
        }
        let (lines, totals) = self.figures()?;
        Ok(CompletedSale {
            ticket: self.id,
            mode: self.mode,
            lines,
            ticket_discount: self.discount,
            totals,
            payments: self.payments.clone(),
            rounding: balance.rounding,
            change: balance.change,
        })
    }

    fn paid(&self) -> Result<Money, SaleError> {
        Money::sum(self.payments.iter().map(|p| p.amount))
    }

    fn ensure_no_payments(&self) -> Result<(), SaleError> {
        if self.payments.is_empty() {
            Ok(())
        } else {
            Err(SaleError::PaymentsStarted)
        }
    }

    /// Applies `change` to a copy and keeps it only if it succeeds and its totals compute.
    fn edit<T>(
        &mut self,
        change: impl FnOnce(&mut Ticket) -> Result<T, SaleError>,
    ) -> Result<T, SaleError> {
        let mut next = self.clone();
        let out = change(&mut next)?;
        next.figures()?;
        *self = next;
        Ok(out)
    }

    fn edit_line(
        &mut self,
        no: LineNo,
        change: impl FnOnce(&mut Line) -> Result<(), SaleError>,
    ) -> Result<(), SaleError> {
        self.ensure_no_payments()?;
        if self.line(no)?.voided {
            return Err(SaleError::LineVoided(no));
        }
        self.edit(|t| {
            let line = line_index(no)
                .and_then(|i| t.lines.get_mut(i))
                .ok_or(SaleError::UnknownLine(no))?;
            change(line)
        })
    }

    fn push_line(
        &mut self,
        product: &Product,
        qty: Quantity,
        unit_price: Money,
        label_amount: Option<Money>,
    ) -> Result<LineNo, SaleError> {
        self.ensure_no_payments()?;
        if !product.active {
            return Err(SaleError::ProductInactive(product.name.clone()));
        }
        check_price(product.price)?;
        check_qty(product.unit, &product.name, qty)?;
        find_rate(&self.rates, &product.tax_class)?;
        if self.lines.len() >= MAX_LINES {
            return Err(SaleError::TooManyLines(MAX_LINES));
        }
        let no = u32::try_from(self.lines.len() + 1).map_err(|_| SaleError::Overflow)?;
        self.edit(|t| {
            t.lines.push(Line {
                product: product.id,
                sku: product.sku.clone(),
                name: product.name.clone(),
                unit: product.unit,
                tax_class: product.tax_class.clone(),
                qty,
                unit_price,
                catalogue_price: product.price,
                price_overridden: label_amount.is_none() && unit_price != product.price,
                label_amount,
                discount: None,
                voided: false,
            });
            Ok(LineNo(no))
        })
    }

    /// The per-line figures and the totals, per the module's rules.
    fn figures(&self) -> Result<(Vec<SoldLine>, Totals), SaleError> {
        let mut amounts = Vec::with_capacity(self.lines.len());
        let mut line_discounts = Vec::with_capacity(self.lines.len());
        let mut bases = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let amount = line.amount()?;
            let discount = match (line.voided, line.discount) {
                (false, Some(d)) => d.amount_on(amount)?,
                _ => Money::ZERO,
            };
            amounts.push(amount);
            line_discounts.push(discount);
            bases.push(if line.voided {
                Money::ZERO
            } else {
                amount.checked_sub(discount)?
            });
        }
        let subtotal = Money::sum(bases.iter().copied())?;
        let ticket_discount = match self.discount {
            Some(d) => d.amount_on(subtotal)?,
            None => Money::ZERO,
        };
        let shares = spread(ticket_discount, &bases)?;

        let mut sold = Vec::with_capacity(self.lines.len());
        let mut taxed = Vec::new();
        let (mut lines_gross, mut items) = (Money::ZERO, 0i64);
        for (i, line) in self.lines.iter().enumerate() {
            let no = u32::try_from(i + 1).map_err(|_| SaleError::Overflow)?;
            let (mut tax, mut paid) = (Money::ZERO, Money::ZERO);
            if !line.voided {
                let rate = find_rate(&self.rates, &line.tax_class)?;
                let split = line_tax(bases[i].checked_sub(shares[i])?, rate.rate_bp, self.mode)?;
                (tax, paid) = (split.tax, split.gross);
                taxed.push((line.tax_class.as_str(), split));
                lines_gross = lines_gross.checked_add(amounts[i])?;
                if line.unit == Unit::Each {
                    items = items.checked_add(line.qty.0).ok_or(SaleError::Overflow)?;
                }
            }
            sold.push(SoldLine {
                line: LineNo(no),
                product: line.product,
                sku: line.sku.clone(),
                name: line.name.clone(),
                unit: line.unit,
                tax_class: line.tax_class.clone(),
                qty: line.qty,
                unit_price: line.unit_price,
                catalogue_price: line.catalogue_price,
                price_overridden: line.price_overridden,
                label_priced: line.label_amount.is_some(),
                amount: amounts[i],
                discount: line.discount,
                line_discount: line_discounts[i],
                ticket_discount: shares[i],
                tax,
                paid,
                voided: line.voided,
            });
        }
        let taxes = summarise(taxed, &self.rates)?;
        let tax_added = match self.mode {
            PricingMode::Inclusive => Money::ZERO,
            PricingMode::Exclusive => Money::sum(taxes.iter().map(|t| t.tax))?,
        };
        let discounts = lines_gross
            .checked_sub(subtotal)?
            .checked_add(ticket_discount)?;
        let total = lines_gross.checked_sub(discounts)?;
        let totals = Totals {
            lines_gross,
            subtotal,
            ticket_discount,
            discounts,
            total,
            tax_added,
            due: total.checked_add(tax_added)?,
            taxes,
            items,
        };
        Ok((sold, totals))
    }
}

fn line_index(no: LineNo) -> Option<usize> {
    usize::try_from(no.0).ok()?.checked_sub(1)
}

fn check_qty(unit: Unit, name: &str, qty: Quantity) -> Result<(), SaleError> {
    if qty.0 <= 0 {
        return Err(SaleError::QuantityNotPositive);
    }
    if qty > MAX_LINE_QTY {
        return Err(SaleError::QuantityTooLarge {
            qty,
            max: MAX_LINE_QTY,
        });
    }
    if unit == Unit::Each && !qty.is_whole() {
        return Err(SaleError::WholeUnitsOnly(name.to_owned()));
    }
    Ok(())
}

fn check_fits(discount: Discount, base: Money) -> Result<(), SaleError> {
    match discount {
        Discount::Amount(a) if a > base => Err(SaleError::DiscountTooLarge { discount: a, base }),
        _ => Ok(()),
    }
}

/// Splits `total` over `weights` (≥ 0) pro rata by largest remainder: the parts sum exactly to
/// `total` (when `total ≤ Σ weights`) and no part exceeds its weight.
pub(crate) fn spread(total: Money, weights: &[Money]) -> Result<Vec<Money>, SaleError> {
    let sum: i128 = weights.iter().map(|w| i128::from(w.0.max(0))).sum();
    if sum == 0 || total.0 <= 0 {
        return Ok(vec![Money::ZERO; weights.len()]);
    }
    let total = i128::from(total.0).min(sum);
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let scaled = total * i128::from(w.0.max(0));
        parts.push(scaled / sum);
        remainders.push((scaled % sum, i));
    }
    let mut left = total - parts.iter().sum::<i128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders {
        if left <= 0 {
            break;
        }
        parts[i] += 1;
        left -= 1;
    }
    parts.into_iter().map(to_money).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_sums_exactly_and_favours_largest_remainders() {
        let parts = spread(Money(100), &[Money(500), Money(500), Money(500)]).unwrap();
        assert_eq!(parts, vec![Money(34), Money(33), Money(33)]);
        let parts = spread(Money(10), &[Money(0), Money(30), Money(70)]).unwrap();
        assert_eq!(parts, vec![Money(0), Money(3), Money(7)]);
    }

    #[test]
    fn cash_rounds_half_up_to_the_step() {
        let r = CashRounding { step: Money(5) };
        assert_eq!(r.round(Money(1237)), Ok(Money(1235)));
        assert_eq!(r.round(Money(1238)), Ok(Money(1240)));
        let r = CashRounding { step: Money(10) };
        assert_eq!(r.round(Money(15)), Ok(Money(20)));
        assert_eq!(r.round(Money(14)), Ok(Money(10)));
    }

    #[test]
    fn approval_above_either_limit() {
        let p = DiscountPolicy::default();
        assert!(!p.needs_approval(&Discount::Percent(1000), Money(5000)));
        assert!(p.needs_approval(&Discount::Percent(1001), Money(100)));
        assert!(p.needs_approval(&Discount::Percent(1000), Money(90000)));
        assert!(!p.needs_approval(&Discount::Amount(Money(100)), Money(1000)));
        assert!(p.needs_approval(&Discount::Amount(Money(300)), Money(300)));
        assert!(p.needs_approval(&Discount::Amount(Money(501)), Money(100_000)));
    }
}

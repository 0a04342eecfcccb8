//! Payloads of the operations modules' events (`catalogue`, `sale`, `shift`), JSON in the log.
//!
//! Each names what happened with the numbers an auditor needs; the requester, approver and
//! reason code of sensitive actions ride on the event envelope itself.

use serde::{Deserialize, Serialize};

use super::{
    CompletedSale, Discount, Money, Product, Quantity, RefundPlan, ShiftReport, TaxRate, Tender,
    Ticket,
};
use crate::{ShiftId, TicketId};

pub const CATALOGUE: &str = "catalogue";
pub const SALE: &str = "sale";
pub const SHIFT: &str = "shift";

/// `catalogue.product_saved`: a product created or changed (before/after for the audit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSaved {
    pub product: Product,
    pub before: Option<Product>,
}

/// `catalogue.tax_rate_saved`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxRateSaved {
    pub rate: TaxRate,
    pub before: Option<TaxRate>,
}

/// `sale.completed`: a paid ticket with its gapless receipt number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleCompleted {
    pub receipt: u64,
    pub shift: ShiftId,
    pub sale: CompletedSale,
}

/// `sale.line_voided`: a line taken off an open ticket (approver and reason on the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineVoided {
    pub ticket: TicketId,
    pub shift: ShiftId,
    pub line: u32,
    pub sku: String,
    pub name: String,
    pub quantity: Quantity,
    pub amount: Money,
}

/// `sale.price_overridden`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceOverridden {
    pub ticket: TicketId,
    pub line: u32,
    pub sku: String,
    pub before: Money,
    pub after: Money,
}

/// `sale.discount_given`: a discount above the cashier's threshold (approved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscountGiven {
    pub ticket: TicketId,
    /// `None` for a discount on the whole ticket.
    pub line: Option<u32>,
    pub discount: Discount,
    pub amount: Money,
}

/// `sale.post_voided`: a completed receipt cancelled afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostVoided {
    pub receipt: u64,
    pub shift: ShiftId,
    pub total: Money,
}

/// `sale.refunded`: goods returned, with or without the original receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refunded {
    pub refund: u64,
    pub original: Option<u64>,
    pub shift: ShiftId,
    pub plan: RefundPlan,
    pub tender: Tender,
}

/// `sale.ticket_parked` / `sale.ticket_resumed`: a ticket put aside and taken up again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketParked {
    pub ticket: Ticket,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketResumed {
    pub ticket: TicketId,
}

/// `shift.opened`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftOpened {
    pub shift: ShiftId,
    pub float: Money,
}

/// `shift.cash_moved`: paid-in or paid-out (reason and approver on the envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashMoved {
    pub shift: ShiftId,
    pub paid_in: bool,
    pub amount: Money,
}

/// `shift.no_sale`: the drawer opened without a sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSale {
    pub shift: ShiftId,
}

/// `shift.closed`: blind count, over/short and the Z report with its sequential number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftClosed {
    pub shift: ShiftId,
    pub z_number: u64,
    pub counted: Money,
    pub expected: Money,
    pub over_short: Money,
    pub report: ShiftReport,
}

impl ProductSaved {
    pub const KIND: &'static str = "product_saved";
}
impl TaxRateSaved {
    pub const KIND: &'static str = "tax_rate_saved";
}
impl SaleCompleted {
    pub const KIND: &'static str = "completed";
}
impl LineVoided {
    pub const KIND: &'static str = "line_voided";
}
impl PriceOverridden {
    pub const KIND: &'static str = "price_overridden";
}
impl DiscountGiven {
    pub const KIND: &'static str = "discount_given";
}
impl PostVoided {
    pub const KIND: &'static str = "post_voided";
}
impl Refunded {
    pub const KIND: &'static str = "refunded";
}
impl TicketParked {
    pub const KIND: &'static str = "ticket_parked";
}
impl TicketResumed {
    pub const KIND: &'static str = "ticket_resumed";
}
impl ShiftOpened {
    pub const KIND: &'static str = "opened";
}
impl CashMoved {
    pub const KIND: &'static str = "cash_moved";
}
impl NoSale {
    pub const KIND: &'static str = "no_sale";
}
impl ShiftClosed {
    pub const KIND: &'static str = "closed";
}

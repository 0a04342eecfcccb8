//! The sale engine's pure rules: money, tax, barcodes, catalogue, tickets, refunds, shifts,
//! receipts and reason codes.
//!
//! No IO and no clock: the engine (crates/store) feeds in products, settings and pre-formatted
//! times, persists the events these types describe, and shows the errors to the cashier as they
//! are. Every refused action leaves the value it was called on unchanged.

pub mod barcode;
pub mod catalogue;
mod error;
pub mod events;
pub mod money;
pub mod reasons;
pub mod receipt;
pub mod refund;
pub mod shift;
pub mod tax;
pub mod ticket;

pub use barcode::{parse_barcode, BarcodeError, BarcodeRules, Scanned};
pub use catalogue::Product;
pub use error::SaleError;
pub use money::{line_amount, Currency, Money, Quantity, Unit};
pub use reasons::{ReasonCodes, ReasonKind};
pub use receipt::{qr_payload, Receipt};
pub use refund::{PlannedRefund, RefundLine, RefundPlan, RefundRequest, Refundable};
pub use shift::{CashDrawer, CloseResult, CountValue, SaleFact, ShiftReport};
pub use tax::{LineTax, PricingMode, TaxRate, TaxSummary};
pub use ticket::{
    Balance, CashRounding, CompletedSale, Discount, DiscountPolicy, Line, LineNo, Payment,
    SoldLine, Tender, Ticket, Totals,
};

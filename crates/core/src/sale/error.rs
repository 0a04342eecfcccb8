use super::barcode::BarcodeError;
use super::money::{Money, Quantity};
use super::reasons::ReasonKind;
use super::ticket::LineNo;

/// Why a sale action was refused. The messages are written for the cashier's screen: they say
/// what is wrong and, where it helps, what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaleError {
    #[error(transparent)]
    Barcode(#[from] BarcodeError),
    #[error("unknown barcode {0}")]
    UnknownBarcode(String),
    #[error("amount too large: the total would overflow")]
    Overflow,
    #[error("`{0}` is not an amount: write it like 12.34")]
    InvalidAmount(String),
    #[error("`{0}` is not a quantity: write it like 2 or 0.750")]
    InvalidQuantity(String),
    #[error("quantity must be more than zero")]
    QuantityNotPositive,
    #[error("quantity {qty} is too large: at most {max} per line")]
    QuantityTooLarge { qty: Quantity, max: Quantity },
    #[error("{0} is sold by the piece: the quantity must be whole")]
    WholeUnitsOnly(String),
    #[error("{0} is sold by weight: weigh it or scan its scale label")]
    NeedsWeight(String),
    #[error("{0} is not sold by weight: a weight label cannot be used for it")]
    NotSoldByWeight(String),
    #[error("{0} has no price per kg: its weight cannot be worked out from the label")]
    CannotDeriveWeight(String),
    #[error("price {price} is out of range: 0.00 to {max}")]
    PriceOutOfRange { price: Money, max: Money },
    #[error("{0} is not on sale (product disabled)")]
    ProductInactive(String),
    #[error("invalid product: {0}")]
    InvalidProduct(String),
    #[error("no tax rate for tax class `{0}`")]
    UnknownTaxClass(String),
    #[error("no line {0} on this ticket")]
    UnknownLine(LineNo),
    #[error("line {0} is voided")]
    LineVoided(LineNo),
    #[error("line {0} is priced by its scale label: void it and scan again")]
    LabelPriced(LineNo),
    #[error("the ticket is full: at most {0} lines")]
    TooManyLines(usize),
    #[error("the ticket has no items")]
    TicketEmpty,
    #[error("payments were taken: remove them before changing the items")]
    PaymentsStarted,
    #[error("a discount cannot be more than 100%")]
    PercentTooLarge,
    #[error("a discount cannot be negative")]
    NegativeDiscount,
    #[error("discount {discount} is more than the amount {base}")]
    DiscountTooLarge { discount: Money, base: Money },
    #[error("payment amount must be more than zero")]
    PaymentNotPositive,
    #[error("the amount must be more than zero")]
    AmountNotPositive,
    #[error("the float cannot be negative")]
    NegativeFloat,
    #[error("a counted amount cannot be negative")]
    NegativeCount,
    #[error("{tender} cannot pay more than the {remaining} left: only cash gives change")]
    Overpayment { tender: String, remaining: Money },
    #[error("nothing left to pay")]
    NothingDue,
    #[error("invalid tender: {0}")]
    InvalidTender(String),
    #[error("no payment {0} on this ticket")]
    UnknownPayment(usize),
    #[error("{remaining} still to pay")]
    Underpaid { remaining: Money },
    #[error("line {line}: cannot refund {requested}, only {left} left to refund")]
    RefundExceedsSale {
        line: LineNo,
        requested: Quantity,
        left: Quantity,
    },
    #[error("line {0}: the refunds recorded exceed what was sold")]
    RefundRecordsExceedSale(LineNo),
    #[error("nothing to refund")]
    NothingToRefund,
    #[error("a {kind} reason is required: use one of {valid}")]
    MissingReason { kind: ReasonKind, valid: String },
    #[error("unknown {kind} reason `{code}`: use one of {valid}")]
    UnknownReason {
        kind: ReasonKind,
        code: String,
        valid: String,
    },
    #[error("receipt width {0} is not supported: use 24 to 200 characters")]
    ReceiptWidth(usize),
}

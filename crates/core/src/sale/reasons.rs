//! Reason codes for sensitive actions: every one needs a code from a list the hub configures,
//! so the audit trail says why, in words a report can group by.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::SaleError;

/// The sensitive actions that need a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    Void,
    PostVoid,
    Refund,
    PriceOverride,
    Discount,
    NoSale,
    PaidInOut,
    StockAdjust,
}

impl ReasonKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonKind::Void => "void",
            ReasonKind::PostVoid => "post-void",
            ReasonKind::Refund => "refund",
            ReasonKind::PriceOverride => "price override",
            ReasonKind::Discount => "discount",
            ReasonKind::NoSale => "no-sale",
            ReasonKind::PaidInOut => "paid-in/out",
            ReasonKind::StockAdjust => "stock adjustment",
        }
    }
}

impl fmt::Display for ReasonKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The valid codes per action (a hub setting; missing lists take the defaults).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReasonCodes {
    pub void: Vec<String>,
    pub post_void: Vec<String>,
    pub refund: Vec<String>,
    pub price_override: Vec<String>,
    pub discount: Vec<String>,
    pub no_sale: Vec<String>,
    pub paid_in_out: Vec<String>,
    pub stock_adjust: Vec<String>,
}

impl Default for ReasonCodes {
    fn default() -> Self {
        let list = |codes: &[&str]| codes.iter().map(|c| (*c).to_owned()).collect();
        ReasonCodes {
            void: list(&["scan-error", "customer-changed-mind", "damaged"]),
            post_void: list(&["wrong-tender", "cashier-error", "customer-changed-mind"]),
            refund: list(&[
                "defective",
                "wrong-item",
                "customer-changed-mind",
                "not-as-described",
            ]),
            price_override: list(&[
                "price-match",
                "damaged",
                "shelf-price-wrong",
                "manager-special",
            ]),
            discount: list(&[
                "loyalty",
                "staff",
                "damaged",
                "promotion",
                "service-recovery",
            ]),
            no_sale: list(&["give-change", "check-drawer", "other"]),
            paid_in_out: list(&[
                "float-top-up",
                "petty-cash",
                "supplier-payment",
                "bank-deposit",
            ]),
            stock_adjust: list(&[
                "damaged",
                "expired",
                "theft",
                "found",
                "internal-use",
                "correction",
            ]),
        }
    }
}

impl ReasonCodes {
    pub fn codes(&self, kind: ReasonKind) -> &[String] {
        match kind {
            ReasonKind::Void => &self.void,
            ReasonKind::PostVoid => &self.post_void,
            ReasonKind::Refund => &self.refund,
            ReasonKind::PriceOverride => &self.price_override,
            ReasonKind::Discount => &self.discount,
            ReasonKind::NoSale => &self.no_sale,
            ReasonKind::PaidInOut => &self.paid_in_out,
            ReasonKind::StockAdjust => &self.stock_adjust,
        }
    }

    /// Accepts only a code from the action's list; the error lists the valid ones.
    pub fn require(&self, kind: ReasonKind, code: &str) -> Result<(), SaleError> {
        let codes = self.codes(kind);
        if codes.iter().any(|c| c == code) {
            return Ok(());
        }
        let valid = codes.join(", ");
        if code.trim().is_empty() {
            Err(SaleError::MissingReason { kind, valid })
        } else {
            Err(SaleError::UnknownReason {
                kind,
                code: code.chars().take(40).collect(),
                valid,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_code_lists_the_valid_ones() {
        let codes = ReasonCodes::default();
        assert_eq!(codes.require(ReasonKind::Void, "damaged"), Ok(()));
        assert_eq!(
            codes
                .require(ReasonKind::Void, "bored")
                .unwrap_err()
                .to_string(),
            "unknown void reason `bored`: use one of scan-error, customer-changed-mind, damaged"
        );
        assert!(matches!(
            codes.require(ReasonKind::NoSale, " "),
            Err(SaleError::MissingReason { .. })
        ));
    }
}

//! What the view-model says, as a key and its values. The sentences themselves live in
//! `ui/ui/messages.slint` (global `Tr`) so that Slint's translation mechanism translates
//! them; this module picks the key, including for the engine's refusals.

use pos_auth::{Denial, LoginRefusal};
use pos_core::sale::SaleError;
use pos_engine::{EngineError, PrinterTrouble};
use pos_store::AccountError;
use slint::{ComponentHandle, SharedString};

use crate::{AppWindow, Tr};

/// A sentence of `messages.slint` with up to two text values and a count (plurals).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Msg {
    key: &'static str,
    a: String,
    b: String,
    n: i32,
    /// A sentence put in place of `b` (a printer problem inside "receipt waiting").
    inner: Option<Box<Msg>>,
}

impl Msg {
    pub(crate) const fn new(key: &'static str) -> Msg {
        Msg {
            key,
            a: String::new(),
            b: String::new(),
            n: 0,
            inner: None,
        }
    }

    pub(crate) fn with(key: &'static str, a: impl ToString) -> Msg {
        Msg {
            a: a.to_string(),
            ..Msg::new(key)
        }
    }

    pub(crate) fn with2(key: &'static str, a: impl ToString, b: impl ToString) -> Msg {
        Msg {
            a: a.to_string(),
            b: b.to_string(),
            ..Msg::new(key)
        }
    }

    pub(crate) fn count(key: &'static str, n: usize) -> Msg {
        Msg {
            n: i32::try_from(n).unwrap_or(i32::MAX),
            ..Msg::new(key)
        }
    }

    /// Text shown as it is (a name, a number): no sentence around it.
    pub(crate) fn plain(text: impl ToString) -> Msg {
        Msg::with("", text)
    }

    /// This sentence with `inner` (translated too) as its second value.
    pub(crate) fn and(mut self, inner: Msg) -> Msg {
        self.inner = Some(Box::new(inner));
        self
    }

    /// The sentence in the window's current language.
    pub(crate) fn text(&self, w: &AppWindow) -> SharedString {
        let b = match &self.inner {
            Some(inner) => inner.text(w),
            None => self.b.as_str().into(),
        };
        w.global::<Tr<'_>>()
            .invoke_text(self.key.into(), self.a.as_str().into(), b, self.n)
    }
}

/// Every key the Rust side uses; a test checks that each has a sentence in both languages.
#[cfg(test)]
pub(crate) const KEYS: &[&str] = &[
    "scan-item",
    "no-shift",
    "shift-since",
    "shift-none",
    "ticket-parked",
    "scan-ignored-dialog",
    "scan-ignored-payment",
    "receipt-done",
    "locked-idle",
    "weigh-first",
    "added",
    "key-number-first",
    "no-line",
    "key-price",
    "percent-too-large",
    "found",
    "lines",
    "no-ticket",
    "locked",
    "parked-done",
    "resumed",
    "refund-done",
    "receipt-voided",
    "approve-void-line",
    "approve-line-discount",
    "approve-ticket-discount",
    "approve-price",
    "approve-post-void",
    "approve-refund",
    "approve-no-sale",
    "approve-cash-in",
    "approve-cash-out",
    "approve-close-shift",
    "printer-ready",
    "drawer-closed",
    "drawer-open",
    "scanner-ready",
    "scanner-missing",
    "hub-not-enrolled",
    "hub-online",
    "hub-sending",
    "hub-offline",
    "hub-alert",
    "hub-alerts",
    "paper-out",
    "cover-open",
    "printer-offline",
    "printer-error",
    "printer-unconfirmed",
    "receipt-waiting",
    "drawer-problem",
    "err-not-logged-in",
    "err-bad-barcode",
    "err-no-shift",
    "err-no-ticket",
    "err-ticket-open",
    "err-unknown-barcode",
    "err-unknown-receipt",
    "err-receipt-voided",
    "err-approval-needed",
    "err-wrong-login",
    "err-locked",
    "err-inactive",
    "err-must-change",
    "err-must-change-hub",
    "err-mfa",
    "err-permission",
    "err-self-approval",
    "err-approver-lacks",
    "err-admin-sales",
    "err-quantity-too-large",
    "err-quantity-zero",
    "err-whole-pieces",
    "err-weigh-it",
    "err-price-range",
    "err-not-on-sale",
    "err-line-voided",
    "err-ticket-full",
    "err-empty-ticket",
    "err-payments-taken",
    "err-discount-too-large",
    "err-overpay",
    "err-nothing-to-pay",
    "err-still-to-pay",
    "err-refund-too-much",
    "err-amount-zero",
    "err-too-large",
    "err-printer",
    "err-storage",
    "err-other",
];

/// How the cashier fixes the printer.
pub(crate) fn printer_trouble(t: PrinterTrouble) -> Msg {
    Msg::new(match t {
        PrinterTrouble::PaperOut => "paper-out",
        PrinterTrouble::CoverOpen => "cover-open",
        PrinterTrouble::Offline => "printer-offline",
        PrinterTrouble::Error => "printer-error",
        PrinterTrouble::Unconfirmed => "printer-unconfirmed",
    })
}

/// The engine's refusal in the cashier's words. Rare, technical refusals keep the engine's
/// own (English) text inside a translated frame.
pub(crate) fn refusal(e: &EngineError) -> Msg {
    let other = || Msg::with("err-other", e);
    match e {
        EngineError::NotLoggedIn => Msg::new("err-not-logged-in"),
        EngineError::NoShift => Msg::new("err-no-shift"),
        EngineError::NoTicket => Msg::new("err-no-ticket"),
        EngineError::TicketOpen => Msg::new("err-ticket-open"),
        EngineError::UnknownBarcode(code) => Msg::with("err-unknown-barcode", code),
        EngineError::UnknownReceipt(n) => Msg::with("err-unknown-receipt", n),
        EngineError::ReceiptVoided(n) => Msg::with("err-receipt-voided", n),
        EngineError::ApprovalNeeded(_) => Msg::new("err-approval-needed"),
        EngineError::Device(text) => Msg::with("err-printer", text),
        EngineError::Sale(s) => sale_refusal(s).unwrap_or_else(other),
        EngineError::Account(a) => account_refusal(a).unwrap_or_else(other),
        EngineError::Store(s) => Msg::with("err-storage", s),
        EngineError::UnknownProduct(_) | EngineError::UnknownParked(_) => other(),
    }
}

fn sale_refusal(e: &SaleError) -> Option<Msg> {
    Some(match e {
        SaleError::UnknownBarcode(code) => Msg::with("err-unknown-barcode", code),
        SaleError::Barcode(_) => Msg::new("err-bad-barcode"),
        SaleError::QuantityTooLarge { .. } => Msg::new("err-quantity-too-large"),
        SaleError::QuantityNotPositive => Msg::new("err-quantity-zero"),
        SaleError::WholeUnitsOnly(name) => Msg::with("err-whole-pieces", name),
        SaleError::NeedsWeight(name) => Msg::with("err-weigh-it", name),
        SaleError::PriceOutOfRange { .. } => Msg::new("err-price-range"),
        SaleError::ProductInactive(name) => Msg::with("err-not-on-sale", name),
        SaleError::LineVoided(_) => Msg::new("err-line-voided"),
        SaleError::TooManyLines(_) => Msg::new("err-ticket-full"),
        SaleError::TicketEmpty => Msg::new("err-empty-ticket"),
        SaleError::PaymentsStarted => Msg::new("err-payments-taken"),
        SaleError::DiscountTooLarge { .. } | SaleError::PercentTooLarge => {
            Msg::new("err-discount-too-large")
        }
        SaleError::Overpayment { .. } => Msg::new("err-overpay"),
        SaleError::NothingDue => Msg::new("err-nothing-to-pay"),
        SaleError::Underpaid { remaining } => Msg::with("err-still-to-pay", remaining),
        SaleError::RefundExceedsSale { .. } | SaleError::NothingToRefund => {
            Msg::new("err-refund-too-much")
        }
        SaleError::PaymentNotPositive | SaleError::AmountNotPositive => Msg::new("err-amount-zero"),
        SaleError::Overflow => Msg::new("err-too-large"),
        _ => return None,
    })
}

fn account_refusal(e: &AccountError) -> Option<Msg> {
    Some(match e {
        AccountError::Login(LoginRefusal::UnknownOrWrong { .. }) | AccountError::UnknownUser(_) => {
            Msg::new("err-wrong-login")
        }
        AccountError::Login(LoginRefusal::Locked(_)) => Msg::new("err-locked"),
        AccountError::Login(LoginRefusal::Inactive) | AccountError::Denied(Denial::Inactive) => {
            Msg::new("err-inactive")
        }
        AccountError::Login(LoginRefusal::MustChangeSecret) => Msg::new("err-must-change"),
        AccountError::Login(LoginRefusal::MfaRequired | LoginRefusal::WrongMfaCode) => {
            Msg::new("err-mfa")
        }
        AccountError::Denied(Denial::ApprovalRequired(_)) => Msg::new("err-approval-needed"),
        AccountError::Denied(Denial::SelfApproval) => Msg::new("err-self-approval"),
        AccountError::Denied(Denial::ApproverLacksPermission(_) | Denial::ApproverInactive) => {
            Msg::new("err-approver-lacks")
        }
        AccountError::Denied(Denial::AdminsCannotTouchSales) => Msg::new("err-admin-sales"),
        AccountError::Denied(_) => Msg::new("err-permission"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Keys the Rust side passes to `Msg` constructors, read from the source.
    fn keys_in_source() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/terminal");
        let mut keys = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for ctor in [
                "Msg::new(\"",
                "Msg::with(\"",
                "Msg::with2(\"",
                "Msg::count(\"",
            ] {
                for part in source.split(ctor).skip(1) {
                    keys.push(part.split('"').next().unwrap().to_owned());
                }
            }
            // Keys picked in a `match` to one constructor: `=> "paper-out",`
            for part in source.split("=> \"").skip(1) {
                let key = part.split('"').next().unwrap();
                if key.contains('-') && !key.contains(' ') && part[key.len()..].starts_with("\",") {
                    keys.push(key.to_owned());
                }
            }
        }
        keys.retain(|k| !k.is_empty());
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn every_key_in_use_is_listed_and_has_an_english_sentence() {
        for key in keys_in_source() {
            assert!(KEYS.contains(&key.as_str()), "{key} is not in KEYS");
        }
        crate::headless::init().unwrap();
        let w = AppWindow::new().unwrap();
        for key in KEYS {
            let text = Msg::with2(key, "A", "B").text(&w);
            assert!(
                !text.is_empty() && text != "A",
                "messages.slint has no sentence for {key}"
            );
        }
    }
}

//! The refund screen: an earlier receipt found by its scanned code or its keyed number, the
//! lines the customer brings back (with what is still refundable), the tender, then a
//! supervisor's approval; or the whole receipt voided; or a copy reprinted. What may be
//! refunded, and for how much, is the core's rule (`Refundable`) over the engine's records.

use super::msg::Msg;
use pos_core::sale::events::Refunded;
use pos_core::sale::{
    Money, Quantity, Receipt, RefundLine, RefundRequest, Refundable, Tender, Unit,
};
use pos_engine::EngineError;
use slint::{ComponentHandle, ModelRc, VecModel};

use super::{push_digit, Pending, Screen, State, Terminal};
use crate::{AppWindow, RefundLineRow, RefundPage};

/// Receipt numbers are at most this many digits when keyed.
const NUMBER_MAX: usize = 12;

/// A receipt found for a refund, with what is left to refund on each of its lines.
#[derive(Debug)]
struct Found {
    receipt: Receipt,
    voided: bool,
    /// The refunds already made against it, as the engine keeps them.
    previous: Vec<RefundLine>,
    /// Per sale line (same index): quantity and money still refundable.
    left: Vec<(Quantity, Money)>,
    /// Per sale line: the quantity picked for this refund (zero: not picked).
    picks: Vec<Quantity>,
}

impl Found {
    /// The original card payment, if any: a refund may go back to it.
    fn card(&self) -> Option<&Tender> {
        self.receipt
            .sale
            .payments
            .iter()
            .map(|p| &p.tender)
            .find(|t| matches!(t, Tender::Card { .. }))
    }

    fn requests(&self) -> Vec<RefundRequest> {
        self.receipt
            .sale
            .lines
            .iter()
            .zip(&self.picks)
            .filter(|(_, qty)| qty.0 > 0)
            .map(|(l, qty)| RefundRequest {
                line: l.line,
                qty: *qty,
            })
            .collect()
    }

    /// One piece for lines sold by the piece; weighed lines are refunded whole.
    fn step(&self, i: usize) -> Option<Quantity> {
        let line = self.receipt.sale.lines.get(i)?;
        (line.unit == Unit::Each).then_some(Quantity(1000))
    }
}

/// The refund screen's own state.
#[derive(Debug, Default)]
pub(crate) struct RefundUi {
    /// Receipt number keyed on the pad.
    digits: String,
    found: Option<Found>,
    to_card: bool,
    /// A post-void was sent for approval.
    voiding: Option<u64>,
    /// A copy of the found receipt was sent to the printer.
    reprinted: bool,
    /// The last refund done on this terminal (this session), for the find page.
    last: Option<Refunded>,
}

impl State {
    /// A scan on the refund screen: the receipt's QR payload (or its number).
    pub(super) fn refund_scan(&mut self, code: &str) -> bool {
        self.refund_find(code)
    }

    fn refund_find(&mut self, text: &str) -> bool {
        match self.load_receipt(text) {
            Ok(found) => {
                let last = self.refund.last.take();
                self.refund = RefundUi {
                    found: Some(found),
                    last,
                    ..RefundUi::default()
                };
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    fn load_receipt(&self, text: &str) -> Result<Found, EngineError> {
        let receipt = self.engine().find_receipt(text)?;
        let store = self.engine().store();
        let terminal = store.device_id();
        let stored = store
            .receipt(terminal, receipt.number)?
            .ok_or(EngineError::UnknownReceipt(receipt.number))?;
        let previous: Vec<RefundLine> = store
            .refunds_of(terminal, receipt.number)?
            .iter()
            .flat_map(|r| r.plan.records())
            .collect();
        let refundable = Refundable::new(&receipt.sale, &previous)?;
        let left = receipt
            .sale
            .lines
            .iter()
            .map(|l| refundable.left(l.line))
            .collect::<Result<Vec<_>, _>>()?;
        let picks = vec![Quantity::ZERO; left.len()];
        Ok(Found {
            voided: stored.post_voided,
            receipt,
            previous,
            left,
            picks,
        })
    }

    fn refund_toggle(&mut self, i: usize) {
        let Some(f) = &mut self.refund.found else {
            return;
        };
        if f.voided {
            return;
        }
        if let (Some(pick), Some((left, _))) = (f.picks.get_mut(i), f.left.get(i)) {
            *pick = if pick.0 > 0 { Quantity::ZERO } else { *left };
        }
    }

    /// One piece more (`more`) or fewer on a picked line, within what is left, never below one.
    fn refund_step(&mut self, i: usize, more: bool) {
        let Some(f) = &mut self.refund.found else {
            return;
        };
        let Some(step) = f.step(i) else {
            return;
        };
        if let (Some(pick), Some((left, _))) = (f.picks.get_mut(i), f.left.get(i)) {
            if pick.0 == 0 {
                return;
            }
            let next = if more {
                pick.0.saturating_add(step.0).min(left.0)
            } else {
                pick.0.saturating_sub(step.0).max(step.0)
            };
            *pick = Quantity(next);
        }
    }

    fn refund_ask(&mut self) {
        let Some(f) = &self.refund.found else {
            return;
        };
        let tender = match f.card() {
            Some(card) if self.refund.to_card => card.clone(),
            _ => Tender::Cash,
        };
        let action = Pending::Refund {
            original: f.receipt.number,
            lines: f.requests(),
            tender,
        };
        self.ask_approval(action);
    }

    fn refund_void(&mut self) {
        if let Some(f) = &self.refund.found {
            let number = f.receipt.number;
            self.refund.voiding = Some(number);
            self.ask_approval(Pending::PostVoid(number));
        }
    }

    fn refund_reprint(&mut self) {
        let Some(number) = self.refund.found.as_ref().map(|f| f.receipt.number) else {
            return;
        };
        match self.engine_mut().reprint(number) {
            Ok(()) => {
                self.refund.reprinted = true;
                self.retry_print();
            }
            Err(e) => self.fail(e),
        }
    }

    /// The approved refund is recorded: back to the sale, saying what was paid back.
    pub(super) fn refunded(&mut self, r: Refunded) {
        self.hint = Msg::with2("refund-done", r.refund, self.big_money(r.plan.total));
        self.refund = RefundUi {
            last: Some(r),
            ..RefundUi::default()
        };
        self.screen = Screen::Sale;
    }

    /// An approved action on this screen that is not a refund: the post-void.
    pub(super) fn refund_voided(&mut self) {
        let Some(number) = self.refund.voiding.take() else {
            return;
        };
        let total = self
            .refund
            .found
            .as_ref()
            .map(|f| self.big_money(f.receipt.sale.totals.due))
            .unwrap_or_default();
        self.hint = Msg::with2("receipt-voided", number, total);
        let last = self.refund.last.take();
        self.refund = RefundUi {
            last,
            ..RefundUi::default()
        };
        self.screen = Screen::Sale;
    }

    fn refund_back(&mut self) {
        let last = self.refund.last.take();
        self.refund = RefundUi {
            last,
            ..RefundUi::default()
        };
        self.screen = Screen::Sale;
    }
}

pub(super) fn bind_refund(t: &Terminal) {
    let g = t.window.global::<RefundPage<'_>>();
    g.on_digit(t.on_text(|s, d| push_digit(&mut s.refund.digits, d, NUMBER_MAX)));
    g.on_clear(t.on(|s| s.refund.digits.clear()));
    g.on_back(t.on(|s| {
        s.refund.digits.pop();
    }));
    g.on_find(t.on(|s| {
        let number = s.refund.digits.clone();
        if !number.is_empty() {
            s.refund_find(&number);
        }
    }));
    g.on_toggle_line(t.on_index(State::refund_toggle));
    g.on_more(t.on_index(|s, i| s.refund_step(i, true)));
    g.on_less(t.on_index(|s, i| s.refund_step(i, false)));
    g.on_tender_cash(t.on(|s| s.refund.to_card = false));
    g.on_tender_card(t.on(|s| {
        s.refund.to_card = s.refund.found.as_ref().is_some_and(|f| f.card().is_some());
    }));
    g.on_refund(t.on(State::refund_ask));
    g.on_void_receipt(t.on(State::refund_void));
    g.on_reprint(t.on(State::refund_reprint));
    g.on_other_receipt(t.on(|s| {
        s.refund.found = None;
        s.refund.digits.clear();
        s.refund.reprinted = false;
    }));
    g.on_back_to_sale(t.on(State::refund_back));
}

pub(super) fn show_refund(s: &State, w: &AppWindow) {
    if s.screen != Screen::Refund {
        return;
    }
    let g = w.global::<RefundPage<'_>>();
    let ui = &s.refund;
    g.set_number_text(ui.digits.as_str().into());
    g.set_reprinted(ui.reprinted);
    match &ui.last {
        Some(r) => {
            g.set_last_refund(i32::try_from(r.refund).unwrap_or(i32::MAX));
            g.set_last_refund_total(s.big_money(r.plan.total).into());
        }
        None => {
            g.set_last_refund(0);
            g.set_last_refund_total("".into());
        }
    }
    g.set_found(ui.found.is_some());
    let Some(f) = &ui.found else {
        g.set_lines(ModelRc::new(VecModel::from(Vec::new())));
        return;
    };
    let r = &f.receipt;
    g.set_receipt_number(i32::try_from(r.number).unwrap_or(i32::MAX));
    g.set_receipt_time(r.time.as_str().into());
    g.set_receipt_cashier(r.cashier.as_str().into());
    g.set_receipt_total(s.big_money(r.sale.totals.due).into());
    let paid: Vec<String> = r.sale.payments.iter().map(|p| p.tender.label()).collect();
    g.set_paid_with(paid.join(", ").into());
    g.set_voided(f.voided);
    let rows: Vec<RefundLineRow> = r
        .sale
        .lines
        .iter()
        .zip(f.left.iter().zip(&f.picks))
        .enumerate()
        .map(|(i, (l, ((left, left_amount), pick)))| {
            let step = f.step(i);
            let picked = pick.0 > 0;
            RefundLineRow {
                name: l.name.as_str().into(),
                sold: l.qty.format(l.unit).into(),
                left: left.format(l.unit).into(),
                left_amount: s.money(*left_amount).into(),
                done: left.0 <= 0,
                voided: l.voided,
                picked,
                qty: pick.format(l.unit).into(),
                can_more: picked && step.is_some() && pick < left,
                can_less: picked && step.is_some_and(|st| pick.0 > st.0),
            }
        })
        .collect();
    g.set_lines(ModelRc::new(VecModel::from(rows)));
    g.set_card_allowed(f.card().is_some());
    g.set_to_card(ui.to_card && f.card().is_some());
    let requests = f.requests();
    g.set_any_picked(!requests.is_empty());
    let preview = if requests.is_empty() {
        Ok(None)
    } else {
        Refundable::new(&r.sale, &f.previous)
            .and_then(|refundable| refundable.check_refund(&requests))
            .map(|plan| Some(plan.total))
    };
    match preview {
        Ok(total) => {
            g.set_refund_total(total.map_or_else(String::new, |m| s.big_money(m)).into());
            g.set_refund_problem("".into());
        }
        Err(e) => {
            g.set_refund_total("".into());
            g.set_refund_problem(e.to_string().into());
        }
    }
}

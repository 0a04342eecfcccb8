//! Card payments on a standalone card terminal: the cashier keys what the terminal's slip
//! says (last four digits, approval code); the engine checks them and records the tender.

use pos_core::sale::{Money, Tender};
use slint::ComponentHandle;

use super::{keyed_money, push_digit, State, Terminal};
use crate::{AppWindow, CardEntry};

/// Approval codes of card terminals are short; 12 digits is plenty.
const CODE_MAX: usize = 12;

#[derive(Debug, Default)]
pub(super) struct Card {
    amount: Money,
    last4: String,
    code: String,
    on_code: bool,
}

impl State {
    /// "Card": the keyed amount (or what remains) goes to the card terminal.
    pub(super) fn start_card(&mut self) {
        if self.screen != super::Screen::Payment || self.paid_in_full() {
            return;
        }
        let amount = match keyed_money(&self.amount) {
            Some(m) => m,
            None => match self.engine().balance() {
                Ok(b) => b.remaining,
                Err(e) => return self.fail(e),
            },
        };
        self.card = Some(Card {
            amount,
            ..Card::default()
        });
    }

    fn card_digit(&mut self, d: &str) {
        if let Some(c) = &mut self.card {
            match c.on_code {
                false => push_digit(&mut c.last4, d, 4),
                true => push_digit(&mut c.code, d, CODE_MAX),
            }
            if c.last4.len() == 4 && !c.on_code && c.code.is_empty() {
                c.on_code = true;
            }
        }
    }

    fn card_confirm(&mut self) {
        let Some(c) = self.card.take() else {
            return;
        };
        let tender = Tender::Card {
            approval_code: c.code.clone(),
            last4: c.last4.clone(),
        };
        match self.engine_mut().pay(tender, c.amount) {
            Ok(b) => {
                self.balance = Some(b);
                self.amount.clear();
            }
            Err(e) => {
                self.card = Some(c);
                self.fail(e);
            }
        }
    }
}

fn with_card(s: &mut State, f: impl FnOnce(&mut Card)) {
    if let Some(c) = &mut s.card {
        f(c);
    }
}

pub(super) fn bind(t: &Terminal) {
    let w = t.window();
    let card = w.global::<CardEntry<'_>>();
    card.on_digit(t.on_text(State::card_digit));
    card.on_clear(t.on(|s| {
        with_card(s, |c| match c.on_code {
            false => c.last4.clear(),
            true => c.code.clear(),
        })
    }));
    card.on_back(t.on(|s| {
        with_card(s, |c| {
            match c.on_code {
                false => c.last4.pop(),
                true => c.code.pop(),
            };
        })
    }));
    card.on_focus_field(t.on_text(|s, field| with_card(s, |c| c.on_code = field == "code")));
    card.on_confirm(t.on(State::card_confirm));
    card.on_cancel(t.on(|s| s.card = None));
}

pub(super) fn show(s: &State, w: &AppWindow) {
    let page = w.global::<CardEntry<'_>>();
    page.set_visible(s.card.is_some());
    if let Some(c) = &s.card {
        page.set_amount_text(s.big_money(c.amount).into());
        page.set_last4(c.last4.as_str().into());
        page.set_code(c.code.as_str().into());
        page.set_focus(if c.on_code { "code" } else { "last4" }.into());
    }
}

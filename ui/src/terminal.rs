//! The view-model: turns taps and scans into engine commands and the engine's answers into the
//! properties the `.slint` screens show. Nothing here prices, taxes or decides: a refused
//! command is shown as the engine's own message.

use std::cell::RefCell;
use std::rc::Rc;

use pos_core::sale::{Balance, LineNo, Money, Receipt, Tender};
use pos_engine::{Credentials, Engine, EngineError};
use slint::{ComponentHandle, ModelRc, PlatformError, SharedString, VecModel};

use crate::{AppWindow, LineRow, Theme};

/// Which screen the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    Sale,
    Payment,
}

impl Screen {
    fn name(self) -> &'static str {
        match self {
            Screen::Login => "login",
            Screen::Sale => "sale",
            Screen::Payment => "payment",
        }
    }
}

/// An approval-requiring action waiting for a second person.
#[derive(Debug, Clone, Copy)]
enum Pending {
    VoidLine(LineNo),
}

#[derive(Debug)]
struct Approval {
    action: Pending,
    reasons: Vec<String>,
    name: String,
    pin: String,
    reason: Option<usize>,
    name_focused: bool,
}

#[derive(Debug)]
struct State {
    engine: Engine,
    screen: Screen,
    user: String,
    login_name: String,
    login_pin: String,
    login_name_focused: bool,
    /// Digits keyed on the payment pad, in minor units ("250" = 2.50).
    amount: String,
    /// The last answer of `pay`, kept so the change stays on screen after completion.
    balance: Option<Balance>,
    approval: Option<Approval>,
    error: Option<String>,
    hint: String,
    clock: Option<String>,
    printer: String,
    printer_ok: bool,
    last_receipt: Option<Receipt>,
}

/// The terminal UI bound to an engine.
pub struct Terminal {
    window: AppWindow,
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Terminal").finish_non_exhaustive()
    }
}

const PIN_MAX: usize = 32;
const NAME_MAX: usize = 64;
const AMOUNT_MAX: usize = 9;

fn mask(pin: &str) -> String {
    "●".repeat(pin.chars().count())
}

fn push_digit(field: &mut String, digit: &str, max: usize) {
    if field.chars().count() < max && digit.chars().all(|c| c.is_ascii_digit()) {
        field.push_str(digit);
    }
}

impl State {
    fn money(&self, m: Money) -> String {
        m.format(&self.engine.config().currency)
    }

    fn big_money(&self, m: Money) -> String {
        let currency = &self.engine.config().currency;
        format!("{} {}", currency.code, m.format(currency))
    }

    fn fail(&mut self, e: EngineError) {
        self.error = Some(e.to_string());
    }

    fn dialog_open(&self) -> bool {
        self.error.is_some() || self.approval.is_some()
    }

    fn login(&mut self) {
        let name = self.login_name.trim().to_owned();
        let pin = std::mem::take(&mut self.login_pin);
        match self.engine.login(Credentials::new(&name, &pin)) {
            Ok(_) => {
                self.user = name;
                self.login_name.clear();
                self.login_name_focused = true;
                self.screen = if self.engine.ticket().is_some() && self.balance.is_some() {
                    Screen::Payment
                } else {
                    Screen::Sale
                };
                self.hint = "Scan an item".into();
            }
            Err(e) => self.fail(e),
        }
    }

    fn lock(&mut self) {
        match self.engine.logout() {
            Ok(parked) => {
                self.screen = Screen::Login;
                self.user.clear();
                self.balance = None;
                self.amount.clear();
                if let Some(id) = parked {
                    self.hint = format!("Ticket {id} parked");
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn scan(&mut self, code: &str) -> bool {
        if self.dialog_open() {
            self.hint = "Scan ignored: finish the dialog first".into();
            return false;
        }
        match self.engine.scan(code) {
            Ok(_) => {
                self.screen = Screen::Sale;
                self.balance = None;
                self.hint = "Scan an item".into();
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    fn start_payment(&mut self) {
        match self.engine.balance() {
            Ok(b) => {
                self.balance = Some(b);
                self.amount.clear();
                self.screen = Screen::Payment;
            }
            Err(e) => self.fail(e),
        }
    }

    fn pay(&mut self, tender: Tender) {
        let amount = if self.amount.is_empty() {
            match self.engine.balance() {
                Ok(b) => b.remaining,
                Err(e) => return self.fail(e),
            }
        } else {
            match self.amount.parse::<i64>() {
                Ok(minor) => Money(minor),
                Err(_) => {
                    self.amount.clear();
                    return;
                }
            }
        };
        match self.engine.pay(tender, amount) {
            Ok(b) => {
                self.balance = Some(b);
                self.amount.clear();
            }
            Err(e) => self.fail(e),
        }
    }

    fn complete(&mut self) {
        match self.engine.complete() {
            Ok(receipt) => {
                self.hint = format!(
                    "Receipt {} done. Change {}",
                    receipt.number,
                    self.big_money(receipt.sale.change)
                );
                self.last_receipt = Some(receipt);
                self.screen = Screen::Sale;
            }
            Err(e) => self.fail(e),
        }
    }

    fn ask_void(&mut self, selected: i32) {
        let Ok(index) = u32::try_from(selected) else {
            return;
        };
        let line = LineNo(index + 1);
        self.approval = Some(Approval {
            action: Pending::VoidLine(line),
            reasons: self.engine.config().reasons.void.clone(),
            name: String::new(),
            pin: String::new(),
            reason: None,
            name_focused: true,
        });
    }

    fn approve(&mut self) {
        let Some(a) = self.approval.take() else {
            return;
        };
        let reason = a.reason.and_then(|i| a.reasons.get(i)).cloned();
        let Some(reason) = reason else {
            self.approval = Some(a);
            return;
        };
        let who = Credentials::new(a.name.trim(), &a.pin);
        let done = match a.action {
            Pending::VoidLine(line) => self.engine.void_line(line, who, &reason),
        };
        if let Err(e) = done {
            self.fail(e);
        }
    }

    fn key_text(&mut self, text: &str) {
        let field = match &mut self.approval {
            Some(a) if a.name_focused => &mut a.name,
            Some(_) => return,
            None if self.screen == Screen::Login && self.login_name_focused => &mut self.login_name,
            None => return,
        };
        for ch in text.chars() {
            match ch {
                '\u{8}' | '\u{7f}' => {
                    field.pop();
                }
                c if !c.is_control() && field.chars().count() < NAME_MAX => field.push(c),
                _ => {}
            }
        }
    }
}

impl Terminal {
    /// The UI over `engine`, showing the lock screen (or the sale if someone is logged in).
    /// A Slint platform must be set first (e.g. [`crate::headless::init`]).
    pub fn new(engine: Engine) -> Result<Terminal, PlatformError> {
        let window = AppWindow::new()?;
        let screen = match engine.cashier() {
            Some(_) => Screen::Sale,
            None => Screen::Login,
        };
        let state = Rc::new(RefCell::new(State {
            engine,
            screen,
            user: String::new(),
            login_name: String::new(),
            login_pin: String::new(),
            login_name_focused: true,
            amount: String::new(),
            balance: None,
            approval: None,
            error: None,
            hint: "Scan an item".into(),
            clock: None,
            printer: "Printer ready".into(),
            printer_ok: true,
            last_receipt: None,
        }));
        let t = Terminal { window, state };
        t.bind();
        t.refresh();
        Ok(t)
    }

    /// Wire each Slint callback to `action` on the state, then redraw the properties.
    fn on<F>(&self, action: F) -> impl Fn() + 'static
    where
        F: Fn(&mut State) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move || {
            if let Ok(mut s) = state.try_borrow_mut() {
                action(&mut s);
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        }
    }

    fn on_text<F>(&self, action: F) -> impl Fn(SharedString) + 'static
    where
        F: Fn(&mut State, &str) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move |text: SharedString| {
            if let Ok(mut s) = state.try_borrow_mut() {
                action(&mut s, text.as_str());
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        }
    }

    fn bind(&self) {
        let w = &self.window;
        // login
        w.on_login_name_tapped(self.on(|s| s.login_name_focused = true));
        w.on_login_pin_tapped(self.on(|s| s.login_name_focused = false));
        w.on_login_digit(self.on_text(|s, d| {
            s.login_name_focused = false;
            push_digit(&mut s.login_pin, d, PIN_MAX);
        }));
        w.on_login_clear(self.on(|s| s.login_pin.clear()));
        w.on_login_back(self.on(|s| {
            s.login_pin.pop();
        }));
        w.on_login_submit(self.on(State::login));
        w.on_key_text(self.on_text(State::key_text));
        // sale
        w.on_pay_clicked(self.on(State::start_payment));
        w.on_lock_clicked(self.on(State::lock));
        let weak = w.as_weak();
        w.on_void_clicked(self.on(move |s| {
            let selected = weak.upgrade().map_or(-1, |w| w.get_selected_line());
            s.ask_void(selected);
        }));
        // payment
        w.on_amount_digit(self.on_text(|s, d| push_digit(&mut s.amount, d, AMOUNT_MAX)));
        w.on_amount_clear(self.on(|s| s.amount.clear()));
        w.on_amount_back(self.on(|s| {
            s.amount.pop();
        }));
        w.on_tender_cash(self.on(|s| s.pay(Tender::Cash)));
        w.on_tender_card(self.on(|s| {
            s.hint = "Card: follow the card terminal".into();
        }));
        w.on_complete_sale(self.on(State::complete));
        w.on_back_to_sale(self.on(|s| s.screen = Screen::Sale));
        // approval
        w.on_approver_name_tapped(self.on(|s| {
            if let Some(a) = &mut s.approval {
                a.name_focused = true;
            }
        }));
        w.on_approver_pin_tapped(self.on(|s| {
            if let Some(a) = &mut s.approval {
                a.name_focused = false;
            }
        }));
        w.on_approval_digit(self.on_text(|s, d| {
            if let Some(a) = &mut s.approval {
                a.name_focused = false;
                push_digit(&mut a.pin, d, PIN_MAX);
            }
        }));
        w.on_approval_clear(self.on(|s| {
            if let Some(a) = &mut s.approval {
                a.pin.clear();
            }
        }));
        w.on_approval_back(self.on(|s| {
            if let Some(a) = &mut s.approval {
                a.pin.pop();
            }
        }));
        w.on_approval_reason_picked({
            let state = Rc::clone(&self.state);
            let weak = w.as_weak();
            move |i| {
                if let Ok(mut s) = state.try_borrow_mut() {
                    if let Some(a) = &mut s.approval {
                        a.reason = usize::try_from(i).ok().filter(|&i| i < a.reasons.len());
                    }
                    if let Some(w) = weak.upgrade() {
                        show(&s, &w);
                    }
                }
            }
        });
        w.on_approve(self.on(State::approve));
        w.on_cancel_approval(self.on(|s| s.approval = None));
        w.on_dismiss_error(self.on(|s| s.error = None));
    }

    /// Copy the engine's state into the window's properties.
    pub fn refresh(&self) {
        if let Ok(s) = self.state.try_borrow() {
            show(&s, &self.window);
        }
    }

    /// A barcode from the scanner. Returns whether it became a line; a refusal is shown in the
    /// error dialog, and a scan while a dialog is open is ignored (never a hidden line).
    pub fn scan(&self, code: &str) -> bool {
        let Ok(mut s) = self.state.try_borrow_mut() else {
            return false;
        };
        let added = s.scan(code);
        show(&s, &self.window);
        added
    }

    /// A card payment approved by the external card terminal.
    pub fn card_approved(&self, approval_code: &str, last4: &str) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.pay(Tender::Card {
                approval_code: approval_code.to_owned(),
                last4: last4.to_owned(),
            });
            show(&s, &self.window);
        }
    }

    /// Show a fixed clock text (screenshots); `None` shows the local time.
    pub fn set_clock(&self, text: Option<&str>) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.clock = text.map(str::to_owned);
            show(&s, &self.window);
        }
    }

    /// What the printer driver reports, e.g. "Printer ready" or "Paper out".
    pub fn set_printer_status(&self, text: &str, ok: bool) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.printer = text.to_owned();
            s.printer_ok = ok;
            show(&s, &self.window);
        }
    }

    /// Switch the high-contrast palette.
    pub fn set_high_contrast(&self, on: bool) {
        self.window.global::<Theme<'_>>().set_high_contrast(on);
    }

    pub fn window(&self) -> &AppWindow {
        &self.window
    }

    pub fn screen(&self) -> Option<Screen> {
        self.state.try_borrow().ok().map(|s| s.screen)
    }

    /// The receipt of the last completed sale.
    pub fn last_receipt(&self) -> Option<Receipt> {
        self.state.try_borrow().ok()?.last_receipt.clone()
    }

    /// Run `f` with the engine (tests, device wiring).
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> Option<R> {
        let mut s = self.state.try_borrow_mut().ok()?;
        let r = f(&mut s.engine);
        show(&s, &self.window);
        Some(r)
    }
}

fn clock_now() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

fn show(s: &State, w: &AppWindow) {
    w.set_screen(s.screen.name().into());
    let logged_in = s.engine.cashier().is_some();
    w.set_user_text(
        if logged_in {
            s.user.clone()
        } else {
            "Locked".into()
        }
        .into(),
    );
    w.set_clock_text(s.clock.clone().unwrap_or_else(clock_now).into());
    w.set_printer_text(s.printer.as_str().into());
    w.set_printer_ok(s.printer_ok);

    w.set_login_name(s.login_name.as_str().into());
    w.set_login_pin_mask(mask(&s.login_pin).into());
    w.set_login_name_focused(s.login_name_focused);

    let ticket = s.engine.ticket();
    let rows: Vec<LineRow> = ticket
        .map(|t| t.lines())
        .unwrap_or_default()
        .iter()
        .map(|l| LineRow {
            name: l.name.as_str().into(),
            qty: l.qty.format(l.unit).into(),
            price: s.money(l.unit_price).into(),
            amount: l
                .amount()
                .map_or_else(|e| e.to_string(), |m| s.money(m))
                .into(),
            voided: l.voided,
        })
        .collect();
    let count = rows.iter().filter(|r| !r.voided).count();
    if rows.is_empty() {
        w.set_selected_line(-1);
    }
    w.set_lines(ModelRc::new(VecModel::from(rows)));
    let (total, items) = match ticket.map(|t| t.totals()) {
        Some(Ok(t)) => (
            s.big_money(t.due),
            format!("{count} line{}", if count == 1 { "" } else { "s" }),
        ),
        Some(Err(e)) => (e.to_string(), String::new()),
        None => (s.big_money(Money(0)), "No open ticket".into()),
    };
    w.set_total_text(total.into());
    w.set_items_text(items.into());
    w.set_hint_text(s.hint.as_str().into());

    let b = s.balance.unwrap_or_default();
    w.set_due_text(s.big_money(b.due).into());
    w.set_paid_text(s.big_money(b.paid).into());
    w.set_remaining_text(s.big_money(b.remaining).into());
    w.set_change_text(s.big_money(b.change).into());
    w.set_paid_in_full(s.balance.is_some() && b.remaining == Money(0));
    let amount = s
        .amount
        .parse::<i64>()
        .map_or_else(|_| String::new(), |m| s.money(Money(m)));
    w.set_amount_text(amount.into());

    w.set_approval_visible(s.approval.is_some());
    if let Some(a) = &s.approval {
        let Pending::VoidLine(line) = a.action;
        let name = ticket
            .and_then(|t| t.line(line).ok())
            .map_or_else(String::new, |l| l.name.clone());
        w.set_approval_title(format!("Manager approval: void line {} {name}", line.0).into());
        w.set_approver_name(a.name.as_str().into());
        w.set_approver_pin_mask(mask(&a.pin).into());
        let reasons: Vec<SharedString> = a.reasons.iter().map(|r| r.as_str().into()).collect();
        w.set_approval_reasons(ModelRc::new(VecModel::from(reasons)));
        w.set_approval_reason(a.reason.and_then(|i| i32::try_from(i).ok()).unwrap_or(-1));
        w.set_approver_name_focused(a.name_focused);
    }

    w.set_error_visible(s.error.is_some());
    w.set_error_text(s.error.clone().unwrap_or_default().into());
}

//! The view-model: turns taps and scans into engine commands and the engine's answers into the
//! properties the `.slint` screens show. Nothing here prices, taxes or decides: a refused
//! command is shown as the engine's own message.

use std::cell::RefCell;
use std::rc::Rc;

use pos_auth::LoginRefusal;
use pos_core::sale::{Balance, Discount, LineNo, Money, Receipt, RefundRequest, Tender};
use pos_engine::{Credentials, Engine, EngineError, PrintProgress, Till};
use pos_store::AccountError;
use slint::{ComponentHandle, ModelRc, PlatformError, SharedString, VecModel};

use crate::locale::{Locale, LocaleError};
use crate::{AppWindow, LineRow, Theme};
use msg::Msg;

mod msg;
mod parked;
mod payment;
mod refund;
mod sale;
mod shift;

/// Which screen the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Login,
    Sale,
    Payment,
    /// Shift open, cash in/out, X report, blind count and close with the Z report.
    Shift,
    /// A refund or post-void of an earlier receipt, found by scanning its code.
    Refund,
    /// The tickets parked on this terminal.
    Parked,
}

impl Screen {
    fn name(self) -> &'static str {
        match self {
            Screen::Login => "login",
            Screen::Sale => "sale",
            Screen::Payment => "payment",
            Screen::Shift => "shift",
            Screen::Refund => "refund",
            Screen::Parked => "parked",
        }
    }
}

/// An action waiting for a second person's credentials (and, for most, a reason code).
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    VoidLine(LineNo),
    Discount {
        line: Option<LineNo>,
        discount: Discount,
    },
    OverridePrice {
        line: LineNo,
        price: Money,
    },
    PostVoid(u64),
    Refund {
        original: u64,
        lines: Vec<RefundRequest>,
        tender: Tender,
    },
    NoSale,
    CashMove {
        paid_in: bool,
        amount: Money,
    },
    CloseShift {
        counted: Money,
    },
}

/// What an approved action produced, for the screen that asked for it.
#[derive(Debug)]
pub(crate) enum Approved {
    Done,
    Refunded(pos_core::sale::events::Refunded),
    Closed(Box<pos_engine::ZReport>),
    /// The drawer was asked to open; `Some` says why it did not.
    Drawer(Option<String>),
}

impl Pending {
    /// The reason codes the cashier picks from (empty: no reason asked).
    fn reasons(&self, r: &pos_core::sale::ReasonCodes) -> Vec<String> {
        match self {
            Pending::VoidLine(_) => r.void.clone(),
            Pending::Discount { .. } => r.discount.clone(),
            Pending::OverridePrice { .. } => r.price_override.clone(),
            Pending::PostVoid(_) => r.post_void.clone(),
            Pending::Refund { .. } => r.refund.clone(),
            Pending::NoSale => r.no_sale.clone(),
            Pending::CashMove { .. } => r.paid_in_out.clone(),
            Pending::CloseShift { .. } => Vec::new(),
        }
    }

    /// Run the action through the till; `who` is the approver (None: try without one).
    fn run<'a>(
        &self,
        till: &mut Till,
        who: Option<Credentials<'a>>,
        reason: &str,
        now_ms: u64,
    ) -> Result<Approved, EngineError> {
        let need = |what: &'static str| who.ok_or(EngineError::ApprovalNeeded(what));
        let e = till.engine_mut();
        match self {
            Pending::VoidLine(line) => e.void_line(*line, need("a line void")?, reason)?,
            Pending::Discount { line, discount } => {
                e.discount(*line, *discount, who.map(|w| (w, reason)))?
            }
            Pending::OverridePrice { line, price } => {
                e.override_price(*line, *price, need("a price override")?, reason)?
            }
            Pending::PostVoid(number) => e.post_void(*number, need("a post-void")?, reason)?,
            Pending::Refund {
                original,
                lines,
                tender,
            } => {
                let who = need("a refund")?;
                return Ok(Approved::Refunded(e.refund(
                    *original,
                    lines,
                    tender.clone(),
                    who,
                    reason,
                )?));
            }
            Pending::NoSale => return Ok(Approved::Drawer(till.no_sale(who, reason, now_ms)?)),
            Pending::CashMove { paid_in, amount } => e.cash_move(*paid_in, *amount, who, reason)?,
            Pending::CloseShift { counted } => {
                return Ok(Approved::Closed(Box::new(e.close_shift(*counted, who)?)))
            }
        }
        Ok(Approved::Done)
    }
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
pub(crate) struct State {
    till: Till,
    sessions: pos_auth::Sessions,
    session_policy: pos_auth::SessionPolicy,
    session: Option<pos_auth::SessionId>,
    /// Time source in HLC wall milliseconds; tests move it to check the idle lock.
    now: fn() -> u64,
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
    error: Option<Msg>,
    /// A device needs the cashier (paper out, cover open, printer offline): the receipt waits
    /// in the queue and the dialog offers a retry.
    device_problem: Option<Msg>,
    hint: Msg,
    clock: Option<String>,
    printer: Msg,
    printer_ok: bool,
    drawer: Msg,
    scanner: Msg,
    link: Msg,
    /// How numbers and money are written; its language picks the translation.
    locale: Locale,
    link_ok: bool,
    /// The hub's active alerts, as it published them (the `hub.alerts` setting).
    hub_alerts: Vec<String>,
    last_receipt: Option<Receipt>,
    sale: sale::SaleUi,
    /// The card terminal's slip being keyed, if a card payment is under way.
    card: Option<payment::Card>,
    shift: shift::ShiftUi,
    refund: refund::RefundUi,
}

/// The terminal UI bound to a till (the engine with its printer and drawer).
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
pub(crate) const AMOUNT_MAX: usize = 9;

fn mask(pin: &str) -> String {
    "●".repeat(pin.chars().count())
}

pub(crate) fn push_digit(field: &mut String, digit: &str, max: usize) {
    if field.chars().count() < max && digit.chars().all(|c| c.is_ascii_digit()) {
        field.push_str(digit);
    }
}

/// Keyed digits in minor units as money; empty or unparsable is `None`.
pub(crate) fn keyed_money(digits: &str) -> Option<Money> {
    digits.parse::<i64>().ok().map(Money)
}

impl State {
    pub(crate) fn engine(&self) -> &Engine {
        self.till.engine()
    }

    pub(crate) fn engine_mut(&mut self) -> &mut Engine {
        self.till.engine_mut()
    }

    pub(crate) fn money(&self, m: Money) -> String {
        self.locale.number(m, &self.engine().config().currency)
    }

    pub(crate) fn big_money(&self, m: Money) -> String {
        self.locale.money(m, &self.engine().config().currency)
    }

    pub(crate) fn fail(&mut self, e: EngineError) {
        self.error = Some(msg::refusal(&e));
    }

    fn dialog_open(&self) -> bool {
        self.error.is_some() || self.approval.is_some() || self.device_problem.is_some()
    }

    /// Any tap or scan: keeps the session from locking.
    fn touch(&mut self) {
        if let Some(id) = self.session {
            let now = (self.now)();
            self.sessions.touch(id, now);
        }
    }

    fn login(&mut self) {
        let name = self.login_name.trim().to_owned();
        let pin = std::mem::take(&mut self.login_pin);
        let done = self
            .engine_mut()
            .login(Credentials::new(&name, &pin))
            .map(|p| p.user);
        self.logged_in(done);
    }

    /// A badge scanned on the lock screen.
    fn login_badge(&mut self, badge: &str) -> bool {
        self.login_pin.clear();
        let done = self.engine_mut().login_badge(badge).map(|p| p.user);
        let ok = done.is_ok();
        self.logged_in(done);
        ok
    }

    fn logged_in(&mut self, done: Result<pos_core::UserId, EngineError>) {
        match done {
            Ok(user) => {
                let now = (self.now)();
                self.session = Some(self.sessions.open(user, now));
                self.user = self.engine().cashier_name().to_owned();
                self.login_name.clear();
                self.login_name_focused = true;
                self.load_quick_keys();
                let open_ticket = self.engine().ticket().is_some();
                self.screen = if open_ticket && self.balance.is_some() {
                    Screen::Payment
                } else {
                    Screen::Sale
                };
                self.hint = match self.engine().shift() {
                    Ok(Some(_)) => Msg::new("scan-item"),
                    _ => Msg::new("no-shift"),
                };
            }
            Err(EngineError::Account(AccountError::Login(LoginRefusal::MustChangeSecret)))
                if self.hub_owns_users() =>
            {
                self.error = Some(Msg::new("err-must-change-hub"));
            }
            Err(e) => self.fail(e),
        }
    }

    /// Whether this till is enrolled with a hub, which then owns the user accounts: the hub
    /// applies only its own records of the `user` module (conflict policy, hub-authoritative),
    /// so a secret changed here would hold on this till alone while the hub and every other
    /// till kept the one-time one. The change is made on the hub display instead.
    fn hub_owns_users(&self) -> bool {
        match self.engine().store().hub_device() {
            Ok(hub) => hub.is_some(),
            Err(e) => {
                tracing::warn!("cannot read the device registry: {e}");
                false
            }
        }
    }

    fn lock(&mut self) {
        self.card = None;
        // The next person starts from a clean screen: no found receipt, no keyed count.
        self.refund = refund::RefundUi::default();
        self.shift = shift::ShiftUi::default();
        self.sale = sale::SaleUi::default();
        match self.engine_mut().logout() {
            Ok(parked) => {
                if let Some(id) = self.session.take() {
                    self.sessions.close(id);
                }
                self.screen = Screen::Login;
                self.user.clear();
                self.balance = None;
                self.amount.clear();
                self.approval = None;
                if let Some(id) = parked {
                    self.hint = Msg::with("ticket-parked", id);
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// Lock the screen if the session went idle too long (called by the UI timer).
    fn check_idle(&mut self) -> bool {
        let Some(id) = self.session else {
            return false;
        };
        let now = (self.now)();
        if self.sessions.state(id, now, &self.session_policy) == pos_auth::SessionState::Active {
            return false;
        }
        self.error = None;
        self.device_problem = None;
        self.lock();
        true
    }

    fn scan(&mut self, code: &str) -> bool {
        if self.dialog_open() {
            self.hint = Msg::new("scan-ignored-dialog");
            return false;
        }
        self.touch();
        match self.screen {
            Screen::Login => return self.login_badge(code.trim()),
            Screen::Refund => return self.refund_scan(code),
            Screen::Payment => {
                self.hint = Msg::new("scan-ignored-payment");
                return false;
            }
            _ => {}
        }
        match self.till.scan(code) {
            Ok(_) => {
                self.screen = Screen::Sale;
                self.balance = None;
                self.hint = Msg::new("scan-item");
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    fn start_payment(&mut self) {
        match self.engine().balance() {
            Ok(b) => {
                self.balance = Some(b);
                self.amount.clear();
                self.screen = Screen::Payment;
                if let Err(e) = self.till.show_total() {
                    tracing::warn!("customer display: {e}");
                }
            }
            Err(e) => self.fail(e),
        }
    }

    fn pay(&mut self, tender: Tender) {
        if self.screen != Screen::Payment || self.paid_in_full() {
            return;
        }
        let amount = if self.amount.is_empty() {
            match self.engine().balance() {
                Ok(b) => b.remaining,
                Err(e) => return self.fail(e),
            }
        } else {
            match keyed_money(&self.amount) {
                Some(m) => m,
                None => {
                    self.amount.clear();
                    return;
                }
            }
        };
        match self.engine_mut().pay(tender, amount) {
            Ok(b) => {
                self.balance = Some(b);
                self.amount.clear();
            }
            Err(e) => self.fail(e),
        }
    }

    /// Whether the shown payment covers the ticket: a second tap on a tender or on Complete
    /// (a double tap, a tap while the receipt prints) then does nothing.
    fn paid_in_full(&self) -> bool {
        self.balance.is_some_and(|b| b.remaining == Money(0))
    }

    fn complete(&mut self) {
        if self.screen != Screen::Payment || !self.paid_in_full() {
            return;
        }
        let now = (self.now)();
        match self.till.complete(now) {
            Ok(sale) => {
                self.hint = Msg::with2(
                    "receipt-done",
                    sale.receipt.number,
                    self.big_money(sale.receipt.sale.change),
                );
                if let Some(problem) = sale.drawer_problem {
                    self.device_problem = Some(Msg::with("drawer-problem", problem));
                }
                self.after_print(sale.print);
                self.last_receipt = Some(sale.receipt);
                self.screen = Screen::Sale;
            }
            Err(e) => self.fail(e),
        }
    }

    /// Show what printing did: a waiting receipt opens the device dialog.
    pub(crate) fn after_print(&mut self, progress: PrintProgress) {
        match progress {
            PrintProgress::Idle | PrintProgress::Printed { .. } => {
                self.printer = Msg::new("printer-ready");
                self.printer_ok = true;
            }
            PrintProgress::Waiting {
                receipt, trouble, ..
            } => {
                let what = msg::printer_trouble(trouble);
                self.printer = what.clone();
                self.printer_ok = false;
                self.device_problem = Some(Msg::with("receipt-waiting", receipt).and(what));
            }
        }
    }

    /// Print what waits in the queue (the device dialog's Retry).
    fn retry_print(&mut self) {
        self.device_problem = None;
        loop {
            match self.till.print_pending() {
                Ok(PrintProgress::Printed { .. }) => continue,
                Ok(p) => return self.after_print(p),
                Err(e) => return self.fail(e),
            }
        }
    }

    /// Ask for a second person's approval of `action`.
    pub(crate) fn ask_approval(&mut self, action: Pending) {
        let reasons = action.reasons(&self.engine().config().reasons);
        self.approval = Some(Approval {
            action,
            reasons,
            name: String::new(),
            pin: String::new(),
            reason: None,
            name_focused: true,
        });
    }

    /// Try `action` without an approver; if the engine says it needs one, ask for it.
    pub(crate) fn attempt(&mut self, action: Pending) -> Option<Approved> {
        let now = (self.now)();
        match action.run(&mut self.till, None, "", now) {
            Ok(done) => Some(done),
            Err(EngineError::ApprovalNeeded(_)) => {
                self.ask_approval(action);
                None
            }
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    fn ask_void(&mut self, selected: i32) {
        let Ok(index) = u32::try_from(selected) else {
            return;
        };
        self.ask_approval(Pending::VoidLine(LineNo(index + 1)));
    }

    fn approve(&mut self) {
        let Some(a) = self.approval.take() else {
            return;
        };
        let reason = match a.reason.and_then(|i| a.reasons.get(i)) {
            Some(r) => r.clone(),
            None if a.reasons.is_empty() => String::new(),
            None => {
                self.approval = Some(a);
                return;
            }
        };
        let now = (self.now)();
        let who = Credentials::new(a.name.trim(), &a.pin);
        match a.action.run(&mut self.till, Some(who), &reason, now) {
            Ok(Approved::Drawer(Some(problem))) => {
                self.device_problem = Some(Msg::with("drawer-problem", problem))
            }
            Ok(done) => self.on_approved(done),
            Err(e) => self.fail(e),
        }
    }

    fn approval_title(&self, a: &Approval) -> Msg {
        let ticket = self.engine().ticket();
        let line_name = |line: LineNo| {
            ticket
                .and_then(|t| t.line(line).ok())
                .map_or_else(String::new, |l| l.name.clone())
        };
        match &a.action {
            Pending::VoidLine(l) => Msg::with2("approve-void-line", l.0, line_name(*l)),
            Pending::Discount { line: Some(l), .. } => {
                Msg::with2("approve-line-discount", l.0, line_name(*l))
            }
            Pending::Discount { line: None, .. } => Msg::new("approve-ticket-discount"),
            Pending::OverridePrice { line, price } => Msg::with2(
                "approve-price",
                format!("{} {}", line.0, line_name(*line)),
                self.big_money(*price),
            ),
            Pending::PostVoid(n) => Msg::with("approve-post-void", n),
            Pending::Refund { original, .. } => Msg::with("approve-refund", original),
            Pending::NoSale => Msg::new("approve-no-sale"),
            Pending::CashMove {
                paid_in: true,
                amount,
            } => Msg::with("approve-cash-in", self.big_money(*amount)),
            Pending::CashMove {
                paid_in: false,
                amount,
            } => Msg::with("approve-cash-out", self.big_money(*amount)),
            Pending::CloseShift { .. } => Msg::new("approve-close-shift"),
        }
    }

    fn key_text(&mut self, text: &str) {
        self.touch();
        if self.approval.is_none() && self.screen == Screen::Sale && self.searching() {
            return self.type_search(text);
        }
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

    /// An approved action is done: the screen that asked shows its result.
    fn on_approved(&mut self, done: Approved) {
        match done {
            Approved::Done | Approved::Drawer(None) => match self.screen {
                Screen::Shift => self.shift_done(),
                Screen::Refund => self.refund_voided(),
                _ => {}
            },
            Approved::Drawer(Some(problem)) => {
                self.device_problem = Some(Msg::with("drawer-problem", problem))
            }
            Approved::Refunded(r) => self.refunded(r),
            Approved::Closed(z) => self.shift_closed(*z),
        }
    }

    /// The sale screen's navigation: "shift", "refund", "parked", "park" or "reprint".
    fn open_screen(&mut self, name: &str) {
        if self.engine().cashier().is_none() {
            self.screen = Screen::Login;
            return;
        }
        match name {
            "sale" => self.screen = Screen::Sale,
            "shift" => self.screen = Screen::Shift,
            "refund" => self.screen = Screen::Refund,
            "parked" => self.screen = Screen::Parked,
            _ => {}
        }
    }
}

impl Terminal {
    /// The UI over `till`, showing the lock screen (or the sale if someone is logged in).
    /// A Slint platform must be set first (e.g. [`crate::headless::init`]).
    pub fn new(till: Till) -> Result<Terminal, PlatformError> {
        let window = AppWindow::new()?;
        let screen = match till.engine().cashier() {
            Some(_) => Screen::Sale,
            None => Screen::Login,
        };
        let session_policy = pos_auth::SessionPolicy::default();
        let state = Rc::new(RefCell::new(State {
            till,
            sessions: pos_auth::Sessions::new(session_policy),
            session_policy,
            session: None,
            now: pos_store::now_ms,
            screen,
            user: String::new(),
            login_name: String::new(),
            login_pin: String::new(),
            login_name_focused: true,
            amount: String::new(),
            balance: None,
            approval: None,
            error: None,
            device_problem: None,
            hint: Msg::new("scan-item"),
            clock: None,
            printer: Msg::new("printer-ready"),
            printer_ok: true,
            drawer: Msg::new("drawer-closed"),
            scanner: Msg::new("scanner-ready"),
            link: Msg::new("hub-not-enrolled"),
            locale: Locale::english(),
            link_ok: false,
            hub_alerts: Vec::new(),
            last_receipt: None,
            sale: sale::SaleUi::default(),
            card: None,
            shift: shift::ShiftUi::default(),
            refund: refund::RefundUi::default(),
        }));
        let t = Terminal { window, state };
        t.bind();
        t.refresh();
        Ok(t)
    }

    /// Wire each Slint callback to `action` on the state, then redraw the properties.
    pub(super) fn on<F>(&self, action: F) -> impl Fn() + 'static
    where
        F: Fn(&mut State) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move || {
            if let Ok(mut s) = state.try_borrow_mut() {
                s.touch();
                action(&mut s);
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        }
    }

    /// A callback with a row or list index: `action` gets it as `usize` (a negative index
    /// from the UI is ignored), then the window is redrawn.
    pub(super) fn on_index<F>(&self, action: F) -> impl Fn(i32) + 'static
    where
        F: Fn(&mut State, usize) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move |i: i32| {
            let Ok(i) = usize::try_from(i) else {
                return;
            };
            if let Ok(mut s) = state.try_borrow_mut() {
                s.touch();
                action(&mut s, i);
                if let Some(w) = weak.upgrade() {
                    show(&s, &w);
                }
            }
        }
    }

    pub(super) fn on_text<F>(&self, action: F) -> impl Fn(SharedString) + 'static
    where
        F: Fn(&mut State, &str) + 'static,
    {
        let state = Rc::clone(&self.state);
        let weak = self.window.as_weak();
        move |text: SharedString| {
            if let Ok(mut s) = state.try_borrow_mut() {
                s.touch();
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
        w.on_open_screen(self.on_text(State::open_screen));
        sale::bind(self);
        payment::bind(self);
        shift::bind_shift(self);
        refund::bind_refund(self);
        parked::bind_parked(self);
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
        w.on_tender_card(self.on(State::start_card));
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
        w.on_retry_print(self.on(State::retry_print));
        w.on_dismiss_device(self.on(|s| s.device_problem = None));
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
            s.printer = Msg::plain(text);
            s.printer_ok = ok;
            show(&s, &self.window);
        }
    }

    /// Write numbers and money for `tag` (e.g. "de-DE") and show the screens in its
    /// language (English where no translation is bundled).
    pub fn set_locale(&self, tag: &str) -> Result<(), LocaleError> {
        let locale = Locale::new(tag)?;
        locale.select_translation();
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.locale = locale;
            show(&s, &self.window);
        }
        Ok(())
    }

    /// How the screen words an engine refusal (in the current language).
    pub fn refusal_text(&self, e: &EngineError) -> String {
        msg::refusal(e).text(&self.window).into()
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
        let r = f(s.engine_mut());
        show(&s, &self.window);
        Some(r)
    }

    /// Run `f` with the till (tests, device wiring).
    pub fn with_till<R>(&self, f: impl FnOnce(&mut Till) -> R) -> Option<R> {
        let mut s = self.state.try_borrow_mut().ok()?;
        let r = f(&mut s.till);
        show(&s, &self.window);
        Some(r)
    }

    /// How long an idle session stays unlocked (default: 2 minutes).
    pub fn set_session_policy(&self, policy: pos_auth::SessionPolicy) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.session_policy = policy;
            s.sessions = pos_auth::Sessions::new(policy);
            s.session = None;
        }
    }

    /// The clock the idle lock reads, in milliseconds (tests move it forward).
    pub fn set_time_source(&self, now: fn() -> u64) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.now = now;
        }
    }

    /// Housekeeping a UI timer calls about once a second: the idle lock and the clock.
    /// Returns whether the screen was locked for idleness.
    pub fn tick(&self) -> bool {
        let Ok(mut s) = self.state.try_borrow_mut() else {
            return false;
        };
        let locked = s.check_idle();
        if locked {
            s.hint = Msg::new("locked-idle");
        }
        s.hub_alerts = hub_alerts(s.engine().store());
        show(&s, &self.window);
        locked
    }

    /// What the hub link reports: connected or not, and how many events wait to be sent.
    pub fn set_link_status(&self, online: bool, waiting: u64) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            let waiting = usize::try_from(waiting).unwrap_or(usize::MAX);
            s.link = match (online, waiting) {
                (true, 0) => Msg::new("hub-online"),
                (true, n) => Msg::count("hub-sending", n),
                (false, n) => Msg::count("hub-offline", n),
            };
            s.link_ok = online;
            show(&s, &self.window);
        }
    }

    /// What the drawer and scanner drivers report, e.g. "Drawer open", "Scanner unplugged".
    pub fn set_device_status(&self, drawer: &str, scanner: &str) {
        if let Ok(mut s) = self.state.try_borrow_mut() {
            s.drawer = Msg::plain(drawer);
            s.scanner = Msg::plain(scanner);
            show(&s, &self.window);
        }
    }
}

fn clock_now() -> String {
    hour_minute(jiff::Timestamp::now())
}

fn hour_minute(t: jiff::Timestamp) -> String {
    t.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

/// The status bar's shift: open since when, or none (selling needs one).
fn shift_status(s: &State) -> (Msg, bool) {
    match s.engine().shift() {
        Ok(Some(info)) => {
            let ms = i64::try_from(info.opened.wall_ms()).unwrap_or(i64::MAX);
            let since =
                jiff::Timestamp::from_millisecond(ms).map_or_else(|_| String::new(), hour_minute);
            (Msg::with("shift-since", since), true)
        }
        Ok(None) | Err(_) => (Msg::new("shift-none"), false),
    }
}

fn show(s: &State, w: &AppWindow) {
    w.set_screen(s.screen.name().into());
    sale::show(s, w);
    payment::show(s, w);
    shift::show_shift(s, w);
    refund::show_refund(s, w);
    parked::show_parked(s, w);
    let logged_in = s.engine().cashier().is_some();
    w.set_user_text(match logged_in {
        true => s.user.as_str().into(),
        false => Msg::new("locked").text(w),
    });
    w.set_clock_text(s.clock.clone().unwrap_or_else(clock_now).into());
    let (shift, shift_ok) = shift_status(s);
    w.set_shift_text(shift.text(w));
    w.set_shift_ok(shift_ok);
    w.set_printer_text(s.printer.text(w));
    w.set_printer_ok(s.printer_ok);
    w.set_drawer_text(s.drawer.text(w));
    w.set_scanner_text(s.scanner.text(w));
    match s.hub_alerts.as_slice() {
        [] => {
            w.set_link_text(s.link.text(w));
            w.set_link_ok(s.link_ok);
        }
        [one] => {
            w.set_link_text(Msg::with("hub-alert", one).text(w));
            w.set_link_ok(false);
        }
        [first, ..] => {
            w.set_link_text(Msg::with2("hub-alerts", s.hub_alerts.len(), first).text(w));
            w.set_link_ok(false);
        }
    }

    w.set_login_name(s.login_name.as_str().into());
    w.set_login_pin_mask(mask(&s.login_pin).into());
    w.set_login_name_focused(s.login_name_focused);

    let ticket = s.engine().ticket();
    let rows: Vec<LineRow> = ticket
        .map(|t| t.lines())
        .unwrap_or_default()
        .iter()
        .map(|l| LineRow {
            name: l.name.as_str().into(),
            qty: s.locale.quantity(l.qty, l.unit).into(),
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
        Some(Ok(t)) => (s.big_money(t.due), Msg::count("lines", count)),
        Some(Err(e)) => (e.to_string(), Msg::default()),
        None => (s.big_money(Money(0)), Msg::new("no-ticket")),
    };
    w.set_total_text(total.into());
    w.set_items_text(items.text(w));
    w.set_hint_text(s.hint.text(w));

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
        w.set_approval_title(s.approval_title(a).text(w));
        w.set_approver_name(a.name.as_str().into());
        w.set_approver_pin_mask(mask(&a.pin).into());
        let reasons: Vec<SharedString> = a.reasons.iter().map(|r| r.as_str().into()).collect();
        w.set_approval_reasons(ModelRc::new(VecModel::from(reasons)));
        w.set_approval_reason(a.reason.and_then(|i| i32::try_from(i).ok()).unwrap_or(-1));
        w.set_approver_name_focused(a.name_focused);
    }

    w.set_device_visible(s.device_problem.is_some());
    w.set_device_text(
        s.device_problem
            .as_ref()
            .map(|m| m.text(w))
            .unwrap_or_default(),
    );
    w.set_error_visible(s.error.is_some());
    w.set_error_text(s.error.as_ref().map(|m| m.text(w)).unwrap_or_default());
}

/// The hub's published alerts in `store` (none when unset or unreadable).
fn hub_alerts(store: &pos_store::Store) -> Vec<String> {
    store
        .setting(pos_core::payloads::HUB_ALERTS_SETTING)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

//! The shift screen: open a shift with a float, cash in and out, a no-sale drawer open, the X
//! report, and the blind count that closes the shift with its Z report. The engine decides
//! what needs a second person; its refusal is shown as it is.

use super::msg::Msg;

use pos_core::sale::{Money, ShiftReport};
use pos_engine::{EngineError, ZReport};
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};

use super::{keyed_money, push_digit, Pending, Screen, State, Terminal, AMOUNT_MAX};
use crate::{AppWindow, ShiftFigures, ShiftPage, TaxRow, TenderRow};

/// What the right-hand side of the shift screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Panel {
    /// The shift's state and the last action done.
    #[default]
    Status,
    /// Key a float and open a shift.
    Open,
    Cash,
    NoSale,
    X,
    /// The blind count: the expected cash is not shown.
    Count,
    /// The Z report of the shift just closed.
    Z,
}

impl Panel {
    fn name(self) -> &'static str {
        match self {
            Panel::Status => "",
            Panel::Open => "open",
            Panel::Cash => "cash",
            Panel::NoSale => "nosale",
            Panel::X => "x",
            Panel::Count => "count",
            Panel::Z => "z",
        }
    }
}

/// An action of this screen that went through, for the confirmation line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Opened(Money),
    CashIn(Money),
    CashOut(Money),
    NoSale,
}

/// The shift screen's own state: what is keyed and shown, never a figure of the shift.
#[derive(Debug, Default)]
pub(crate) struct ShiftUi {
    panel: Panel,
    /// Digits keyed on the pad, in minor units.
    digits: String,
    reason: Option<usize>,
    x: Option<ShiftReport>,
    z: Option<ZReport>,
    done: Option<Done>,
    /// The action sent to the engine (or to the approver), to confirm it once done.
    asked: Option<Pending>,
}

impl ShiftUi {
    /// The panel to show: a shift's actions only while one is open, the float pad otherwise.
    fn panel(&self, has_shift: bool) -> Panel {
        match (has_shift, self.panel) {
            (true, Panel::Open | Panel::Z) => Panel::Status,
            (false, Panel::Z) if self.z.is_some() => Panel::Z,
            (false, _) => Panel::Open,
            (true, panel) => panel,
        }
    }
}

/// The engine refused because someone else must approve (or act for the cashier, who lacks
/// the permission): ask a second person instead of showing the refusal.
pub(super) fn needs_approver(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::ApprovalNeeded(_)
            | EngineError::Account(pos_store::AccountError::Denied(
                pos_auth::Denial::MissingPermission(_)
            ))
    )
}

impl State {
    fn shift_panel(&mut self, name: &str) {
        let panel = match name {
            "open" => Panel::Open,
            "cash" => Panel::Cash,
            "nosale" => Panel::NoSale,
            "count" => Panel::Count,
            "x" => return self.shift_x_report(),
            _ => Panel::Status,
        };
        let ui = &mut self.shift;
        ui.panel = panel;
        ui.digits.clear();
        ui.reason = None;
        ui.done = None;
    }

    fn shift_x_report(&mut self) {
        match self.engine().x_report() {
            Ok(report) => {
                let ui = &mut self.shift;
                ui.x = Some(report);
                ui.panel = Panel::X;
                ui.done = None;
            }
            Err(e) => self.fail(e),
        }
    }

    fn shift_open(&mut self) {
        let Some(float) = keyed_money(&self.shift.digits) else {
            return;
        };
        match self.engine_mut().open_shift(float) {
            Ok(_) => {
                self.shift = ShiftUi {
                    done: Some(Done::Opened(float)),
                    ..ShiftUi::default()
                };
                self.hint = Msg::new("scan-item");
            }
            Err(e) => self.fail(e),
        }
    }

    fn shift_cash_move(&mut self, paid_in: bool) {
        if let Some(amount) = keyed_money(&self.shift.digits) {
            self.shift_attempt(Pending::CashMove { paid_in, amount });
        }
    }

    fn shift_close(&mut self) {
        if let Some(counted) = keyed_money(&self.shift.digits) {
            self.shift_attempt(Pending::CloseShift { counted });
        }
    }

    /// Try `action` as the cashier with the reason picked on the screen; if the engine wants a
    /// second person, ask for one with that reason already picked.
    fn shift_attempt(&mut self, action: Pending) {
        let reasons = action.reasons(&self.engine().config().reasons);
        let picked = self.shift.reason.filter(|&i| i < reasons.len());
        let code = picked
            .and_then(|i| reasons.get(i))
            .cloned()
            .unwrap_or_default();
        self.shift.asked = Some(action.clone());
        let now = (self.now)();
        match action.run(&mut self.till, None, &code, now) {
            Ok(done) => self.on_approved(done),
            Err(e) if needs_approver(&e) => {
                self.ask_approval(action);
                if let Some(a) = &mut self.approval {
                    a.reason = picked;
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// A cash move or no-sale of this screen went through (approved or not).
    pub(super) fn shift_done(&mut self) {
        let done = match self.shift.asked.take() {
            Some(Pending::CashMove {
                paid_in: true,
                amount,
            }) => Done::CashIn(amount),
            Some(Pending::CashMove {
                paid_in: false,
                amount,
            }) => Done::CashOut(amount),
            Some(Pending::NoSale) => Done::NoSale,
            _ => return,
        };
        let ui = &mut self.shift;
        ui.done = Some(done);
        ui.panel = Panel::Status;
        ui.digits.clear();
        ui.reason = None;
        ui.x = None;
    }

    /// The shift is closed: show its Z report until a new shift is opened.
    pub(super) fn shift_closed(&mut self, z: ZReport) {
        self.shift = ShiftUi {
            panel: Panel::Z,
            z: Some(z),
            ..ShiftUi::default()
        };
        self.hint = Msg::new("no-shift");
    }

    fn shift_back(&mut self) {
        let ui = &mut self.shift;
        if ui.panel != Panel::Z {
            ui.panel = Panel::Status;
        }
        ui.digits.clear();
        ui.reason = None;
        ui.x = None;
        ui.done = None;
        self.screen = Screen::Sale;
    }

    fn figures(&self, r: &ShiftReport) -> ShiftFigures {
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        let tenders: Vec<TenderRow> = r
            .tenders
            .iter()
            .map(|(key, cv)| TenderRow {
                key: key.as_str().into(),
                count: count(cv.count),
                value: self.money(cv.value).into(),
            })
            .collect();
        let taxes: Vec<TaxRow> = r
            .taxes
            .iter()
            .map(|t| TaxRow {
                name: t.name.as_str().into(),
                rate: percent(t.rate_bp).into(),
                net: self.money(t.net).into(),
                tax: self.money(t.tax).into(),
                gross: self.money(t.gross).into(),
            })
            .collect();
        let expected = r
            .drawer
            .expected()
            .map_or_else(|e| e.to_string(), |m| self.money(m));
        ShiftFigures {
            sales_count: count(r.sales_count),
            gross: self.money(r.gross).into(),
            net: self.money(r.net).into(),
            discounts: self.money(r.discounts).into(),
            rounding: self.money(r.rounding).into(),
            voids_count: count(r.voids.count),
            voids: self.money(r.voids.value).into(),
            refunds_count: count(r.refunds.count),
            refunds: self.money(r.refunds.value).into(),
            post_voids_count: count(r.post_voids.count),
            post_voids: self.money(r.post_voids.value).into(),
            no_sales: count(r.no_sales),
            paid_in_count: count(r.paid_in.count),
            paid_in: self.money(r.paid_in.value).into(),
            paid_out_count: count(r.paid_out.count),
            paid_out: self.money(r.paid_out.value).into(),
            float: self.money(r.drawer.float).into(),
            cash_sales: self.money(r.drawer.cash_sales).into(),
            cash_refunds: self.money(r.drawer.cash_refunds).into(),
            expected: expected.into(),
            tenders: ModelRc::new(VecModel::from(tenders)),
            taxes: ModelRc::new(VecModel::from(taxes)),
        }
    }
}

/// A rate in basis points as percent: 2000 → "20", 750 → "7.5", 1234 → "12.34".
fn percent(bp: u32) -> String {
    let (whole, cents) = (bp / 100, bp % 100);
    match cents {
        0 => whole.to_string(),
        c if c % 10 == 0 => format!("{whole}.{}", c / 10),
        c => format!("{whole}.{c:02}"),
    }
}

pub(super) fn bind_shift(t: &Terminal) {
    let g = t.window.global::<ShiftPage<'_>>();
    g.on_show_panel(t.on_text(State::shift_panel));
    g.on_digit(t.on_text(|s, d| push_digit(&mut s.shift.digits, d, AMOUNT_MAX)));
    g.on_clear(t.on(|s| s.shift.digits.clear()));
    g.on_back(t.on(|s| {
        s.shift.digits.pop();
    }));
    g.on_reason_picked(t.on_index(|s, i| s.shift.reason = Some(i)));
    g.on_open_shift(t.on(State::shift_open));
    g.on_cash_in(t.on(|s| s.shift_cash_move(true)));
    g.on_cash_out(t.on(|s| s.shift_cash_move(false)));
    g.on_no_sale(t.on(|s| s.shift_attempt(Pending::NoSale)));
    g.on_x_report_clicked(t.on(State::shift_x_report));
    g.on_close_shift(t.on(State::shift_close));
    g.on_back_to_sale(t.on(State::shift_back));
}

pub(super) fn show_shift(s: &State, w: &AppWindow) {
    if s.screen != Screen::Shift {
        return;
    }
    let g = w.global::<ShiftPage<'_>>();
    let ui = &s.shift;
    let open = s.engine().shift().ok().flatten();
    g.set_has_shift(open.is_some());
    if let Some(info) = &open {
        let cfg = s.engine().config();
        g.set_opened_text((cfg.time_format)(info.opened).into());
        let by = info
            .cashier
            .and_then(|c| {
                let users = s.engine().store().users().ok()?;
                users.into_iter().find(|u| u.user == c)
            })
            .map(|u| u.display_name)
            .unwrap_or_default();
        g.set_opened_by(by.into());
        g.set_float_text(s.money(info.float).into());
    }
    let panel = ui.panel(open.is_some());
    g.set_panel(panel.name().into());
    let amount = keyed_money(&ui.digits).map_or_else(String::new, |m| s.money(m));
    g.set_amount_text(amount.into());

    let codes = &s.engine().config().reasons;
    let reasons: Vec<SharedString> = match panel {
        Panel::Cash => Pending::CashMove {
            paid_in: false,
            amount: Money::ZERO,
        }
        .reasons(codes),
        Panel::NoSale => Pending::NoSale.reasons(codes),
        _ => Vec::new(),
    }
    .iter()
    .map(|r| r.as_str().into())
    .collect();
    let picked = ui.reason.filter(|&i| i < reasons.len());
    g.set_reasons(ModelRc::new(VecModel::from(reasons)));
    g.set_reason(picked.and_then(|i| i32::try_from(i).ok()).unwrap_or(-1));

    // Figures leave the page with their panel: the blind count must not find the expected
    // cash of an X report looked at before.
    match (panel, &ui.x) {
        (Panel::X, Some(x)) => g.set_x_report(s.figures(x)),
        _ => g.set_x_report(ShiftFigures::default()),
    }
    if let (Panel::Z, Some(z)) = (panel, &ui.z) {
        g.set_z_number(i32::try_from(z.z_number).unwrap_or(i32::MAX));
        g.set_z_counted(s.money(z.counted).into());
        g.set_z_expected(s.money(z.expected).into());
        g.set_z_over_short(s.money(z.over_short).into());
        g.set_z_over_short_sign(match z.over_short.0.signum() {
            1 => 1,
            -1 => -1,
            _ => 0,
        });
        g.set_z_report(s.figures(&z.report));
    }
    let (kind, amount) = match ui.done {
        None => ("", None),
        Some(Done::Opened(m)) => ("opened", Some(m)),
        Some(Done::CashIn(m)) => ("cash-in", Some(m)),
        Some(Done::CashOut(m)) => ("cash-out", Some(m)),
        Some(Done::NoSale) => ("no-sale", None),
    };
    g.set_done_kind(kind.into());
    g.set_done_amount(amount.map_or_else(String::new, |m| s.money(m)).into());
}

//! The shift screen through the real engine: cash out with a supervisor's approval, the X
//! report's figures, the blind count and close with the Z report, and selling refused until
//! a new shift is opened from the screen.

#![allow(clippy::unwrap_used)]

mod support;

use pos_core::sale::events::{CashMoved, ShiftClosed};
use pos_core::sale::{Money, ShiftReport};
use pos_engine::EngineError;
use pos_ui::{Screen, ShiftFigures, ShiftPage, Terminal};
use slint::{ComponentHandle, Model};
use support::*;

fn key(g: &ShiftPage<'_>, digits: &str) {
    g.invoke_clear();
    for d in digits.chars() {
        g.invoke_digit(d.to_string().into());
    }
}

fn open_shift_screen(t: &Terminal) {
    t.window().invoke_open_screen("shift".into());
    assert_eq!(t.screen(), Some(Screen::Shift));
    assert_eq!(t.window().get_screen(), "shift");
}

/// The figures shown are the engine's report, formatted.
fn assert_figures(shown: &ShiftFigures, r: &ShiftReport) {
    assert_eq!(shown.sales_count, i32::try_from(r.sales_count).unwrap());
    assert_eq!(shown.gross, money(r.gross));
    assert_eq!(shown.net, money(r.net));
    assert_eq!(shown.discounts, money(r.discounts));
    assert_eq!(shown.refunds_count, i32::try_from(r.refunds.count).unwrap());
    assert_eq!(shown.paid_in, money(r.paid_in.value));
    assert_eq!(
        shown.paid_out_count,
        i32::try_from(r.paid_out.count).unwrap()
    );
    assert_eq!(shown.paid_out, money(r.paid_out.value));
    assert_eq!(shown.float, money(r.drawer.float));
    assert_eq!(shown.cash_sales, money(r.drawer.cash_sales));
    assert_eq!(shown.expected, money(r.drawer.expected().unwrap()));
    let tenders: Vec<(String, i32, String)> = shown
        .tenders
        .iter()
        .map(|t| (t.key.to_string(), t.count, t.value.to_string()))
        .collect();
    let want: Vec<(String, i32, String)> = r
        .tenders
        .iter()
        .map(|(k, cv)| (k.clone(), i32::try_from(cv.count).unwrap(), money(cv.value)))
        .collect();
    assert_eq!(tenders, want);
    let taxes: Vec<(String, String)> = shown
        .taxes
        .iter()
        .map(|t| (t.name.to_string(), t.tax.to_string()))
        .collect();
    let want: Vec<(String, String)> = r
        .taxes
        .iter()
        .map(|t| (t.name.clone(), money(t.tax)))
        .collect();
    assert_eq!(taxes, want);
}

#[test]
fn cash_out_needs_a_supervisor_with_the_reason_picked_on_the_screen() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ShiftPage<'_>>();
    log_in(t, CASHIER);
    open_shift_screen(t);
    assert!(g.get_has_shift());
    assert_eq!(g.get_float_text(), money(FLOAT));
    let alice = t.with_engine(|e| e.cashier_name().to_owned()).unwrap();
    assert_eq!(g.get_opened_by(), alice.as_str());

    g.invoke_show_panel("cash".into());
    assert_eq!(g.get_panel(), "cash");
    let codes = t
        .with_engine(|e| e.config().reasons.paid_in_out.clone())
        .unwrap();
    let shown: Vec<String> = g.get_reasons().iter().map(|r| r.to_string()).collect();
    assert_eq!(shown, codes);
    key(&g, "1250");
    assert_eq!(g.get_amount_text(), money(Money(1250)));
    g.invoke_reason_picked(1);
    assert_eq!(g.get_reason(), 1);
    g.invoke_cash_out();

    // The cashier may not move cash alone: the engine refused, a supervisor steps in; the
    // reason picked on the screen is already picked in the overlay.
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(w.get_approval_visible());
    assert_eq!(w.get_approval_reason(), 1);
    assert!(t
        .with_engine(|e| events(e.store(), "shift.cash_moved").is_empty())
        .unwrap());
    pos_ui::headless::type_text(w.window(), SUPERVISOR.0);
    for d in SUPERVISOR.1.chars() {
        w.invoke_approval_digit(d.to_string().into());
    }
    w.invoke_approve();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(!w.get_approval_visible());

    let moved = t
        .with_engine(|e| events(e.store(), "shift.cash_moved"))
        .unwrap();
    assert_eq!(moved.len(), 1);
    let m: CashMoved = payload(&moved[0]);
    assert!(!m.paid_in);
    assert_eq!(m.amount, Money(1250));
    assert_eq!(moved[0].reason.as_deref(), Some(codes[1].as_str()));
    assert!(moved[0].approver.is_some());
    assert_eq!(g.get_done_kind(), "cash-out");
    assert_eq!(g.get_done_amount(), money(Money(1250)));
    assert_eq!(g.get_panel(), "");
    assert_eq!(g.get_amount_text(), "", "the pad is cleared");

    // The X report has it.
    g.invoke_x_report_clicked();
    let x = t.with_engine(|e| e.x_report().unwrap()).unwrap();
    assert_eq!(x.paid_out.value, Money(1250));
    assert_figures(&g.get_x_report(), &x);
}

#[test]
fn x_report_then_blind_count_and_close_with_the_z_report() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ShiftPage<'_>>();
    log_in(t, CASHIER);
    sell(t, &[COLA_EAN, WATER_EAN8]);
    sell(t, &[CAKE_PLU]);

    open_shift_screen(t);
    g.invoke_x_report_clicked();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert_eq!(g.get_panel(), "x");
    let x = t.with_engine(|e| e.x_report().unwrap()).unwrap();
    assert_eq!(x.sales_count, 2);
    assert_figures(&g.get_x_report(), &x);

    // The blind count: nothing on the page says what the drawer should hold.
    g.invoke_show_panel("count".into());
    assert_eq!(g.get_panel(), "count");
    let expected = x.drawer.expected().unwrap();
    assert_eq!(g.get_x_report().expected, "");
    assert_ne!(g.get_amount_text(), money(expected));
    let counted = Money(expected.0 - 35);
    key(&g, &counted.0.to_string());
    assert_eq!(g.get_amount_text(), money(counted));
    g.invoke_close_shift();
    assert!(w.get_approval_visible(), "closing needs a supervisor");
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());

    let closed: ShiftClosed = t
        .with_engine(|e| payload(&events(e.store(), "shift.closed")[0]))
        .unwrap();
    assert_eq!(closed.counted, counted);
    assert_eq!(g.get_panel(), "z");
    assert_eq!(g.get_z_number(), i32::try_from(closed.z_number).unwrap());
    assert_eq!(g.get_z_counted(), money(closed.counted));
    assert_eq!(g.get_z_expected(), money(closed.expected));
    assert_eq!(g.get_z_over_short(), money(closed.over_short));
    assert_eq!(closed.over_short, Money(-35));
    assert_eq!(g.get_z_over_short_sign(), -1);
    assert_figures(&g.get_z_report(), &closed.report);
    assert!(!g.get_has_shift());
    assert!(t.with_engine(|e| e.shift().unwrap().is_none()).unwrap());
}

#[test]
fn after_the_close_selling_is_refused_until_a_shift_is_opened_from_the_screen() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ShiftPage<'_>>();
    log_in(t, CASHIER);
    open_shift_screen(t);
    g.invoke_show_panel("count".into());
    key(&g, &FLOAT.0.to_string());
    g.invoke_close_shift();
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert_eq!(g.get_panel(), "z");
    g.invoke_back_to_sale();
    assert_eq!(t.screen(), Some(Screen::Sale));

    // No shift: the engine refuses the scan, in its own words.
    assert!(!t.scan(COLA_EAN));
    assert!(w.get_error_visible());
    assert_eq!(w.get_error_text(), t.refusal_text(&EngineError::NoShift));
    w.invoke_dismiss_error();
    assert!(t.with_engine(|e| e.ticket().is_none()).unwrap());

    // The Z report is still there, and the screen offers to open a shift.
    open_shift_screen(t);
    assert_eq!(g.get_panel(), "z");
    g.invoke_show_panel("open".into());
    assert_eq!(g.get_panel(), "open");
    key(&g, "15000");
    g.invoke_open_shift();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let shift = t.with_engine(|e| e.shift().unwrap()).unwrap().unwrap();
    assert_eq!(shift.float, Money(15000));
    assert!(g.get_has_shift());
    assert_eq!(g.get_float_text(), money(Money(15000)));
    assert_eq!(g.get_done_kind(), "opened");

    g.invoke_back_to_sale();
    assert!(t.scan(COLA_EAN), "{}", w.get_error_text());
}

#[test]
fn no_sale_opens_the_drawer_with_a_supervisor_and_a_reason() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ShiftPage<'_>>();
    log_in(t, CASHIER);
    open_shift_screen(t);
    g.invoke_show_panel("nosale".into());
    let codes = t
        .with_engine(|e| e.config().reasons.no_sale.clone())
        .unwrap();
    assert_eq!(g.get_reasons().row_count(), codes.len());
    g.invoke_reason_picked(0);
    g.invoke_no_sale();
    assert!(w.get_approval_visible());
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let recorded = t
        .with_engine(|e| events(e.store(), "shift.no_sale"))
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].reason.as_deref(), Some(codes[0].as_str()));
    assert_eq!(g.get_done_kind(), "no-sale");
    let x = t.with_engine(|e| e.x_report().unwrap()).unwrap();
    assert_eq!(x.no_sales, 1);
}

#[test]
fn a_supervisor_at_the_till_moves_cash_without_a_second_person() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<ShiftPage<'_>>();
    log_in(t, SUPERVISOR);
    open_shift_screen(t);
    g.invoke_show_panel("cash".into());
    key(&g, "500");
    g.invoke_reason_picked(0);
    g.invoke_cash_in();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(
        !w.get_approval_visible(),
        "the supervisor holds the permission"
    );
    let moved = t
        .with_engine(|e| events(e.store(), "shift.cash_moved"))
        .unwrap();
    assert_eq!(moved.len(), 1);
    let m: CashMoved = payload(&moved[0]);
    assert!(m.paid_in);
    assert_eq!(m.amount, Money(500));
    assert_eq!(g.get_done_kind(), "cash-in");
}

#[test]
fn every_panel_draws_at_every_screen_size() {
    for size in pos_ui::backend::ScreenSize::SUPPORTED {
        let rig = sized_rig(size);
        let t = &rig.terminal;
        let w = t.window();
        let g = w.global::<ShiftPage<'_>>();
        t.set_clock(Some("09:41"));
        log_in(t, CASHIER);
        sell(t, &[COLA_EAN, WATER_EAN8]);
        open_shift_screen(t);
        let mut frames = vec![draw("shift", size)];
        g.invoke_show_panel("cash".into());
        key(&g, "2000");
        g.invoke_reason_picked(1);
        frames.push(draw("shift-cash", size));
        g.invoke_x_report_clicked();
        frames.push(draw("shift-x", size));
        g.invoke_show_panel("count".into());
        key(&g, "10350");
        frames.push(draw("shift-count", size));
        g.invoke_close_shift();
        approve_as(t, SUPERVISOR);
        assert_eq!(g.get_panel(), "z");
        frames.push(draw("shift-z", size));
        g.invoke_show_panel("open".into());
        frames.push(draw("shift-open", size));
        for (i, frame) in frames.iter().enumerate() {
            assert!(
                frame.chunks(3).any(|p| p != &frame[..3]),
                "frame {i} at {size} is flat"
            );
        }
        // Each panel looks different from the one before.
        assert!(frames.windows(2).all(|p| p[0] != p[1]), "at {size}");
    }
}

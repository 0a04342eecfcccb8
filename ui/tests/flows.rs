//! Headless UI flows through the real engine: the view-model driven by dispatched pointer and
//! key events and by the Slint callbacks the buttons are bound to.

#![allow(clippy::unwrap_used)]

mod support;

use pos_core::sale::{LineNo, Money};
use pos_ui::{headless, Screen};
use slint::{ComponentHandle, Model};
use support::*;

#[test]
fn login_scan_three_pay_cash_complete() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    assert_eq!(t.screen(), Some(Screen::Login));
    assert_eq!(w.get_screen(), "login");

    log_in(t, CASHIER);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert_eq!(w.get_user_text(), "Alice", "the cashier's display name");

    for code in [COLA_EAN, WATER_EAN8, CAKE_PLU] {
        assert!(t.scan(code), "{}", w.get_error_text());
    }
    assert_eq!(w.get_lines().row_count(), 3);
    let names: Vec<String> = w.get_lines().iter().map(|l| l.name.to_string()).collect();
    assert_eq!(names, ["Cola 0.5l", "Water 1l", "Cake slice"]);
    let balance = t.with_engine(|e| e.balance().unwrap()).unwrap();
    assert_eq!(w.get_total_text(), eur(balance.due));

    // A finger on the big "Pay" button (bottom right of the sale screen).
    headless::tap(w.window(), 1190.0, 640.0);
    assert_eq!(t.screen(), Some(Screen::Payment));
    assert_eq!(w.get_due_text(), eur(balance.due));

    // 10.00 keyed on the pad, then Cash.
    for d in ["1", "0", "0", "0"] {
        w.invoke_amount_digit(d.into());
    }
    assert_eq!(w.get_amount_text(), "10.00");
    w.invoke_tender_cash();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let paid = t.with_engine(|e| e.balance().unwrap()).unwrap();
    assert_eq!(paid.paid, Money(1000));
    assert_eq!(w.get_change_text(), eur(paid.change));
    assert_eq!(w.get_remaining_text(), eur(Money(0)));
    assert!(w.get_paid_in_full());

    w.invoke_complete_sale();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let receipt = t.last_receipt().expect("a receipt");
    let stored = t
        .with_engine(|e| e.receipt(receipt.number, false).unwrap())
        .unwrap();
    assert_eq!(stored.sale, receipt.sale);
    assert_eq!(receipt.sale.lines.len(), 3);
    assert_eq!(receipt.sale.totals.due, balance.due);
    assert_eq!(receipt.sale.change, paid.change);
    assert_eq!(w.get_change_text(), eur(receipt.sale.change));
    assert!(t.with_engine(|e| e.ticket().is_none()).unwrap());
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert_eq!(w.get_lines().row_count(), 0);

    // And it draws: the frame is not one flat colour.
    let frame = headless::render_rgb(&headless::last_window().unwrap());
    assert!(frame.chunks(3).any(|p| p != &frame[..3]));
}

#[test]
fn wrong_pin_shows_the_engines_message_and_scans_wait_for_the_dialog() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    headless::type_text(w.window(), CASHIER.0);
    for d in "0000".chars() {
        w.invoke_login_digit(d.to_string().into());
    }
    w.invoke_login_submit();
    assert!(w.get_error_visible());
    let refusal = t
        .with_engine(|e| e.login(c(("alice", "1111"))).err().unwrap())
        .unwrap();
    assert!(
        matches!(
            refusal,
            pos_engine::EngineError::Account(pos_store::AccountError::Login(
                pos_auth::LoginRefusal::UnknownOrWrong { .. }
            ))
        ),
        "{refusal}"
    );
    // The engine's refusal in the cashier's words.
    assert_eq!(w.get_error_text(), "Wrong user name or PIN.");
    assert_eq!(t.screen(), Some(Screen::Login));
    assert_eq!(w.get_login_pin_mask(), "", "a refused PIN is cleared");

    // A scan while the dialog is open is ignored, never a hidden line.
    assert!(!t.scan(COLA_EAN));
    assert!(t.with_engine(|e| e.ticket().is_none()).unwrap());
    w.invoke_dismiss_error();
    assert!(!w.get_error_visible());

    // A scan on the lock screen is a badge: an item's barcode logs nobody in and sells nothing.
    assert!(!t.scan(COLA_EAN));
    assert!(w.get_error_visible());
    assert_eq!(t.screen(), Some(Screen::Login));
    assert!(t.with_engine(|e| e.ticket().is_none()).unwrap());
}

#[test]
fn void_line_needs_the_approvers_pin_and_a_reason() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    log_in(t, CASHIER);
    assert!(t.scan(COLA_EAN));
    assert!(t.scan(BANANA_PLU));

    w.set_selected_line(0);
    w.invoke_void_clicked();
    assert!(w.get_approval_visible());
    assert!(w.get_approval_reasons().row_count() > 0);
    // A scan under the overlay is ignored.
    assert!(!t.scan(WATER_EAN8));

    headless::type_text(w.window(), SUPERVISOR.0);
    assert_eq!(w.get_approver_name(), SUPERVISOR.0);
    for d in SUPERVISOR.1.chars() {
        w.invoke_approval_digit(d.to_string().into());
    }
    w.invoke_approval_reason_picked(0);
    assert_eq!(w.get_approval_reason(), 0);
    w.invoke_approve();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(!w.get_approval_visible());

    let voided = t
        .with_engine(|e| e.ticket().unwrap().line(LineNo(1)).unwrap().voided)
        .unwrap();
    assert!(voided);
    assert!(w.get_lines().row_data(0).unwrap().voided);
    let due = t.with_engine(|e| e.balance().unwrap().due).unwrap();
    assert_eq!(w.get_total_text(), eur(due));
    assert_eq!(
        t.with_engine(|e| e.ticket().unwrap().lines().len()),
        Some(2)
    );
}

/// The hub publishes its active alerts as the `hub.alerts` setting (master data every
/// terminal receives); the status bar shows them in place of the link status, in the warning
/// colour, and returns to the link status once the hub clears them.
#[test]
fn the_hubs_alerts_show_in_the_status_bar() {
    let rig = rig();
    let t = &rig.terminal;
    let publish = |texts: &[&str]| {
        t.with_engine(|e| {
            let before = e
                .store()
                .setting(pos_core::payloads::HUB_ALERTS_SETTING)
                .unwrap();
            e.store_mut()
                .append(vec![pos_audit::EventDraft::json(
                    pos_core::payloads::SettingChanged::MODULE,
                    pos_core::payloads::SettingChanged::KIND,
                    &pos_core::payloads::SettingChanged {
                        key: pos_core::payloads::HUB_ALERTS_SETTING.into(),
                        before,
                        after: serde_json::json!(texts),
                    },
                )])
                .unwrap();
        })
        .unwrap();
        t.tick();
    };
    t.tick();
    let idle = t.window().get_link_text().to_string();
    assert!(!idle.contains("alert"), "{idle}");

    publish(&["Low stock: Cola 0.5l (2 left)"]);
    assert_eq!(
        t.window().get_link_text(),
        "Hub alert: Low stock: Cola 0.5l (2 left)"
    );
    assert!(!t.window().get_link_ok());
    publish(&["Low stock: Cola 0.5l (2 left)", "Backup failed: disk full"]);
    assert_eq!(
        t.window().get_link_text(),
        "2 hub alerts: Low stock: Cola 0.5l (2 left)"
    );
    publish(&[]);
    assert_eq!(t.window().get_link_text().to_string(), idle);
}

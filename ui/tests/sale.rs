//! The sale screen's flows through the real engine and the simulated printer: quick keys,
//! weighed goods, search, keyed quantity/price/discount with approvals, split tenders, the
//! paper-out dialog, badge login and the idle lock.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};

use pos_core::sale::{Discount, LineNo, Money, Quantity};
use pos_ui::{headless, CardEntry, SalePage, Screen, Terminal};
use slint::{ComponentHandle, Model};
use support::*;

fn key(t: &Terminal, digits: &str) {
    let page = t.window().global::<SalePage<'_>>();
    for d in digits.chars() {
        page.invoke_entry_digit(d.to_string().into());
    }
}

/// The grid's button labelled `name` (first line of its text).
fn product_index(t: &Terminal, name: &str) -> i32 {
    let page = t.window().global::<SalePage<'_>>();
    let keys = page.get_products();
    let i = keys
        .iter()
        .position(|k| k.label == name)
        .unwrap_or_else(|| panic!("{name} is not on the grid"));
    i32::try_from(i).unwrap()
}

fn line(t: &Terminal, n: u32) -> pos_core::sale::Line {
    t.with_engine(|e| e.ticket().unwrap().line(LineNo(n)).unwrap().clone())
        .unwrap()
}

#[test]
fn scan_three_discount_with_approval_cash_and_the_receipt_prints() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    log_in(t, CASHIER);
    for code in [COLA_EAN, WATER_EAN8, CAKE_PLU] {
        assert!(t.scan(code), "{}", w.get_error_text());
    }

    // 5% on the cake (selected line): within the cashier's limit, no approval.
    w.set_selected_line(2);
    key(t, "5");
    w.global::<SalePage<'_>>()
        .invoke_entry_action("line-discount".into());
    assert!(!w.get_approval_visible());
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert_eq!(line(t, 3).discount, Some(Discount::Percent(500)));

    // 50% off the whole ticket needs a supervisor.
    w.set_selected_line(-1);
    key(t, "50");
    w.global::<SalePage<'_>>()
        .invoke_entry_action("ticket-discount".into());
    assert!(w.get_approval_visible(), "{}", w.get_error_text());
    assert!(w.get_approval_title().contains("ticket"));
    // The cashier cannot approve her own discount.
    approve_as(t, CASHIER);
    assert!(w.get_error_visible());
    w.invoke_dismiss_error();
    let before = t.with_engine(|e| e.balance().unwrap().due).unwrap();

    w.global::<SalePage<'_>>()
        .invoke_entry_action("ticket-discount".into());
    assert!(!w.get_approval_visible(), "no number keyed: nothing asked");
    key(t, "50");
    w.global::<SalePage<'_>>()
        .invoke_entry_action("ticket-discount".into());
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let due = t.with_engine(|e| e.balance().unwrap().due).unwrap();
    assert!(due < before, "{due:?} after 50% off {before:?}");
    w.invoke_pay_clicked();
    assert_eq!(t.screen(), Some(Screen::Payment));
    for d in "2000".chars() {
        w.invoke_amount_digit(d.to_string().into());
    }
    w.invoke_tender_cash();
    w.invoke_complete_sale();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(!w.get_device_visible(), "{}", w.get_device_text());
    let receipt = t.last_receipt().unwrap();
    assert_eq!(receipt.sale.totals.due, due);

    // The receipt came out of the (simulated) printer with the discount on it.
    let jobs = wait_for_jobs(&rig.printer, 1);
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let paper = &jobs[0];
    for name in ["Cola 0.5l", "Water 1l", "Cake slice"] {
        assert!(paper.contains(name), "{name} missing:\n{paper}");
    }
    assert!(paper.contains("You saved"), "{paper}");
    assert!(
        paper.contains(&due.format(&Default::default())),
        "{due:?}:\n{paper}"
    );
    assert_eq!(rig.printer.drawer_kicks(), 1, "cash opens the drawer");
}

#[test]
fn quick_keys_weighed_goods_search_and_keyed_quantities() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    log_in(t, CASHIER);
    let page = w.global::<SalePage<'_>>();
    let categories: Vec<String> = page.get_categories().iter().map(|c| c.into()).collect();
    assert_eq!(categories, ["All", "drinks", "food"]);

    // A category shows only its products.
    page.invoke_category_picked(1);
    let labels: Vec<String> = page.get_products().iter().map(|k| k.label.into()).collect();
    assert_eq!(labels, ["Cola 0.5l"]);
    page.invoke_product_tapped(0);
    assert_eq!(line(t, 1).sku, "cola");
    page.invoke_category_picked(0);

    // Three of them: key 3, tap the key.
    key(t, "3");
    page.invoke_product_tapped(product_index(t, "Banana"));
    assert_eq!(line(t, 2).qty, Quantity::units(3));

    // Weighed goods need a weight first; 450 g of apples is 450 thousandths of a kg.
    let apples = product_index(t, "Apples");
    assert!(
        page.get_products()
            .row_data(apples as usize)
            .unwrap()
            .weighed
    );
    page.invoke_product_tapped(apples);
    assert_eq!(
        t.with_engine(|e| e.ticket().unwrap().lines().len()),
        Some(2)
    );
    assert!(
        w.get_hint_text().contains("weight"),
        "{}",
        w.get_hint_text()
    );
    key(t, "450");
    page.invoke_product_tapped(apples);
    let weighed = line(t, 3);
    assert_eq!(
        (weighed.sku.as_str(), weighed.qty),
        ("apples", Quantity(450))
    );

    // Qty on the selected line; a huge quantity is refused and changes nothing.
    w.set_selected_line(0);
    key(t, "2");
    page.invoke_entry_action("qty".into());
    assert_eq!(line(t, 1).qty, Quantity::units(2));
    key(t, "9999999999999");
    page.invoke_entry_action("qty".into());
    assert!(w.get_error_visible(), "a huge quantity is refused");
    w.invoke_dismiss_error();
    assert_eq!(line(t, 1).qty, Quantity::units(2));
    assert_eq!(page.get_entry_text(), "", "the entry is used up either way");

    // Search by name on the on-screen keyboard; the result goes on the ticket.
    page.invoke_search_open();
    assert!(page.get_searching());
    for k in ["C", "H", "E", "E"] {
        page.invoke_search_key(k.into());
    }
    page.invoke_search_key("\u{8}".into());
    assert_eq!(page.get_search_text(), "CHE");
    let found: Vec<String> = page.get_products().iter().map(|k| k.label.into()).collect();
    assert_eq!(found, ["Cheese"]);
    key(t, "200");
    assert_eq!(page.get_entry_text(), "200");
    page.invoke_product_tapped(0);
    assert_eq!(line(t, 4).sku, "cheese");
    assert!(!page.get_searching(), "a pick closes the search");

    // A PLU keyed on the pad works like a scan.
    key(t, BANANA_PLU);
    page.invoke_entry_action("plu".into());
    assert_eq!(line(t, 5).sku, "banana");
    assert_eq!(w.get_lines().row_count(), 5);
}

#[test]
fn price_override_needs_approval_and_split_tender_cash_then_card() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    log_in(t, CASHIER);
    assert!(t.scan(CAKE_PLU));
    key(t, "299");
    w.global::<SalePage<'_>>()
        .invoke_entry_action("price".into());
    assert!(w.get_approval_visible());
    w.invoke_cancel_approval();
    assert_eq!(line(t, 1).unit_price, Money(350), "cancelled: unchanged");
    key(t, "299");
    w.global::<SalePage<'_>>()
        .invoke_entry_action("price".into());
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert_eq!(line(t, 1).unit_price, Money(299));

    w.invoke_pay_clicked();
    for d in "100".chars() {
        w.invoke_amount_digit(d.to_string().into());
    }
    w.invoke_tender_cash();
    assert!(!w.get_paid_in_full());
    let remaining = t.with_engine(|e| e.balance().unwrap().remaining).unwrap();
    assert_eq!(remaining, Money(199));

    // The rest by card: the slip's last four digits and approval code.
    w.invoke_tender_card();
    let card = w.global::<CardEntry<'_>>();
    assert!(card.get_visible());
    assert!(
        card.get_amount_text().contains("1.99"),
        "{}",
        card.get_amount_text()
    );
    for d in "424212345".chars() {
        card.invoke_digit(d.to_string().into());
    }
    assert_eq!(card.get_last4(), "4242");
    assert_eq!(card.get_code(), "12345");
    card.invoke_confirm();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(!card.get_visible());
    assert!(w.get_paid_in_full());
    w.invoke_complete_sale();
    let receipt = t.last_receipt().unwrap();
    assert_eq!(receipt.sale.payments.len(), 2);
    assert!(receipt.sale.payments[0].tender.is_cash());
    assert!(!receipt.sale.payments[1].tender.is_cash());
}

#[test]
fn paper_out_opens_the_device_dialog_and_retry_prints_the_waiting_receipt() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    log_in(t, CASHIER);
    assert!(t.scan(COLA_EAN));
    rig.printer.set_paper_out(true);
    w.invoke_pay_clicked();
    w.invoke_tender_cash();
    w.invoke_complete_sale();
    // The sale is committed; the receipt waits; the cashier is told what to do.
    let receipt = t.last_receipt().expect("the sale completed");
    assert!(w.get_device_visible());
    assert!(w.get_device_text().contains(&receipt.number.to_string()));
    assert!(!w.get_printer_ok());
    assert!(t.with_engine(|e| e.ticket().is_none()).unwrap());
    // A scan under the dialog is ignored.
    assert!(!t.scan(WATER_EAN8));

    // Retry while still out of paper: the dialog stays.
    w.invoke_retry_print();
    assert!(w.get_device_visible());
    assert!(rig.printer.jobs().is_empty());

    rig.printer.set_paper_out(false);
    w.invoke_retry_print();
    assert!(!w.get_device_visible(), "{}", w.get_device_text());
    assert!(w.get_printer_ok());
    let jobs = wait_for_jobs(&rig.printer, 1);
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].contains("Cola 0.5l"));
    // Printed once, never twice.
    w.invoke_retry_print();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(rig.printer.jobs().len(), 1);
}

static NOW: AtomicU64 = AtomicU64::new(0);

fn test_clock() -> u64 {
    NOW.load(Ordering::SeqCst)
}

#[test]
fn a_badge_logs_in_and_an_idle_terminal_locks_parking_the_ticket() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    t.with_engine(|e| {
        let manager = e
            .store_mut()
            .authenticate(MANAGER.0, MANAGER.1, None, &policy())
            .unwrap();
        e.store_mut()
            .set_badge(&manager, CASHIER.0, "BADGE-00042", &policy())
            .unwrap();
    })
    .unwrap();
    NOW.store(pos_store::now_ms(), Ordering::SeqCst);
    t.set_time_source(test_clock);
    t.set_session_policy(pos_auth::SessionPolicy {
        idle_lock_ms: 60_000,
        max_age_ms: 3_600_000,
    });

    assert!(t.scan("BADGE-00042"), "{}", w.get_error_text());
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert_eq!(w.get_user_text(), "Alice");
    assert!(t.scan(COLA_EAN));

    // Activity keeps it open.
    NOW.fetch_add(50_000, Ordering::SeqCst);
    w.global::<SalePage<'_>>().invoke_entry_digit("1".into());
    NOW.fetch_add(50_000, Ordering::SeqCst);
    assert!(!t.tick());
    assert_eq!(t.screen(), Some(Screen::Sale));

    // A minute without a touch locks the screen; the ticket is parked, not lost.
    NOW.fetch_add(61_000, Ordering::SeqCst);
    assert!(t.tick());
    assert_eq!(t.screen(), Some(Screen::Login));
    assert_eq!(w.get_user_text(), "Locked");
    let parked = t.with_engine(|e| e.parked().unwrap()).unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].lines().len(), 1);

    // The wrong badge is refused and leaves the terminal locked.
    assert!(!t.scan("BADGE-99999"));
    assert!(w.get_error_visible());
    assert_eq!(t.screen(), Some(Screen::Login));
    let _ = headless::last_window();
}

#[test]
fn double_taps_never_double_a_payment_a_sale_or_a_line() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    log_in(t, CASHIER);
    assert!(t.scan(COLA_EAN));
    // Pay tapped twice: one payment screen, nothing else.
    w.invoke_pay_clicked();
    w.invoke_pay_clicked();
    assert_eq!(t.screen(), Some(Screen::Payment));
    // Cash tapped twice: one payment of the exact amount, no "nothing left to pay" dialog.
    w.invoke_tender_cash();
    w.invoke_tender_cash();
    w.invoke_tender_card();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(!w.global::<CardEntry<'_>>().get_visible());
    let paid = t
        .with_engine(|e| e.ticket().unwrap().payments().len())
        .unwrap();
    assert_eq!(paid, 1);
    // Complete tapped twice: one sale, one receipt, no error for the second tap.
    w.invoke_complete_sale();
    w.invoke_complete_sale();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let sales = t
        .with_engine(|e| events(e.store(), "sale.completed").len())
        .unwrap();
    assert_eq!(sales, 1);
    assert_eq!(wait_for_jobs(&rig.printer, 1).len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(rig.printer.jobs().len(), 1, "one receipt printed");
    // A product key tapped twice is two pieces on purpose: two lines, both shown.
    let page = w.global::<SalePage<'_>>();
    page.invoke_product_tapped(product_index(t, "Banana"));
    page.invoke_product_tapped(product_index(t, "Banana"));
    assert_eq!(w.get_lines().row_count(), 2);
    // Digits beyond the entry's length are dropped, not wrapped.
    key(t, "123456789012345678");
    assert_eq!(page.get_entry_text().len(), 13);
}

//! The refund screen through the real engine: a receipt sold through the UI found again by
//! scanning its code (or keying its number), lines refunded with a supervisor's approval,
//! the whole receipt post-voided, a copy reprinted; refusals are the engine's own words.

#![allow(clippy::unwrap_used)]

mod support;

use pos_core::sale::events::{PostVoided, Refunded};
use pos_core::sale::{LineNo, Quantity, RefundRequest, Tender};
use pos_ui::{RefundPage, Screen, Terminal};
use slint::{ComponentHandle, Model};
use support::*;

fn refunds(t: &Terminal) -> Vec<Refunded> {
    t.with_engine(|e| {
        events(e.store(), "sale.refunded")
            .iter()
            .map(payload::<Refunded>)
            .collect()
    })
    .unwrap()
}

fn user_id(t: &Terminal, name: &str) -> pos_core::UserId {
    t.with_engine(|e| {
        e.store()
            .users()
            .unwrap()
            .into_iter()
            .find(|u| u.name == name)
            .unwrap()
            .user
    })
    .unwrap()
}

fn open_refund(t: &Terminal) {
    t.window().invoke_open_screen("refund".into());
    assert_eq!(t.screen(), Some(Screen::Refund));
    assert_eq!(t.window().get_screen(), "refund");
}

#[test]
fn scan_a_receipt_and_refund_one_line_with_a_supervisor() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<RefundPage<'_>>();
    log_in(t, CASHIER);
    let receipt = sell(t, &[COLA_EAN, WATER_EAN8, BANANA_PLU]);
    let cola_stock = t.with_engine(|e| stock(e, "cola")).unwrap();

    open_refund(t);
    assert!(!g.get_found());
    assert!(t.scan(&receipt.qr), "{}", w.get_error_text());
    assert!(!w.get_error_visible());
    assert!(g.get_found());
    assert_eq!(
        g.get_receipt_number(),
        i32::try_from(receipt.number).unwrap()
    );
    assert_eq!(g.get_receipt_total(), eur(receipt.sale.totals.due));
    assert_eq!(g.get_paid_with(), "Cash");
    assert!(
        !g.get_card_allowed(),
        "paid in cash: the refund goes back in cash"
    );
    let rows: Vec<_> = g.get_lines().iter().collect();
    assert_eq!(rows.len(), receipt.sale.lines.len());
    for (row, sold) in rows.iter().zip(&receipt.sale.lines) {
        assert_eq!(row.name, sold.name.as_str());
        assert_eq!(row.sold, sold.qty.format(sold.unit).as_str());
        assert_eq!(row.left, sold.qty.format(sold.unit).as_str());
        assert_eq!(row.left_amount, money(sold.paid).as_str());
        assert!(!row.picked && !row.done);
    }
    assert!(!g.get_any_picked());

    // The cola line, whole (one piece).
    g.invoke_toggle_line(0);
    let row = g.get_lines().row_data(0).unwrap();
    assert!(row.picked);
    assert_eq!(row.qty, row.sold);
    assert!(g.get_any_picked());
    let cola = &receipt.sale.lines[0];
    assert_eq!(g.get_refund_total(), eur(cola.paid));

    g.invoke_refund();
    assert!(w.get_approval_visible());
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(!w.get_approval_visible());

    // The engine recorded it: one refund of the cola line, in cash, approved by the supervisor.
    let done = refunds(t);
    assert_eq!(done.len(), 1);
    let r = &done[0];
    assert_eq!(r.original, Some(receipt.number));
    assert_eq!(r.tender, Tender::Cash);
    assert_eq!(r.plan.lines.len(), 1);
    assert_eq!(r.plan.lines[0].line, Some(LineNo(1)));
    assert_eq!(r.plan.total, cola.paid);
    let event = t
        .with_engine(|e| events(e.store(), "sale.refunded").pop().unwrap())
        .unwrap();
    assert_eq!(event.approver, Some(user_id(t, SUPERVISOR.0)));
    assert!(event.reason.is_some());
    assert_eq!(
        t.with_engine(|e| stock(e, "cola")).unwrap(),
        cola_stock + 1000,
        "the bottle is back in stock"
    );

    // Back on the sale screen, saying what was paid back.
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert!(
        w.get_hint_text().contains(&eur(r.plan.total)),
        "{}",
        w.get_hint_text()
    );

    // Found again: the cola line has nothing left, the others are untouched.
    open_refund(t);
    assert_eq!(g.get_last_refund(), i32::try_from(r.refund).unwrap());
    assert_eq!(g.get_last_refund_total(), eur(r.plan.total));
    assert!(t.scan(&receipt.qr));
    let rows: Vec<_> = g.get_lines().iter().collect();
    assert!(rows[0].done);
    assert_eq!(rows[0].left, Quantity::ZERO.format(cola.unit).as_str());
    assert!(!rows[1].done);
    // A line with nothing left cannot be picked.
    g.invoke_toggle_line(0);
    assert!(!g.get_lines().row_data(0).unwrap().picked);
    assert!(!g.get_any_picked());
}

#[test]
fn fewer_pieces_than_sold_with_minus_and_plus() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<RefundPage<'_>>();
    log_in(t, CASHIER);
    // Three bananas on one line.
    assert!(t.scan(BANANA_PLU));
    t.with_engine(|e| e.set_quantity(LineNo(1), Quantity(3000)).unwrap())
        .unwrap();
    let receipt = sell(t, &[]);
    let i = 0;
    let sold = &receipt.sale.lines[i];
    assert_eq!(sold.qty, Quantity(3000));
    let index = 0;

    open_refund(t);
    assert!(t.scan(&receipt.qr));
    g.invoke_toggle_line(index);
    assert_eq!(
        g.get_lines().row_data(i).unwrap().qty,
        sold.qty.format(sold.unit)
    );
    assert!(!g.get_lines().row_data(i).unwrap().can_more);
    g.invoke_less(index);
    let one_less = Quantity(sold.qty.0 - 1000);
    assert_eq!(
        g.get_lines().row_data(i).unwrap().qty,
        one_less.format(sold.unit)
    );
    assert!(g.get_lines().row_data(i).unwrap().can_more);
    g.invoke_refund();
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let done = refunds(t);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].plan.lines[0].qty, one_less);
}

#[test]
fn refund_without_approval_or_approved_by_the_cashier_herself_is_refused() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<RefundPage<'_>>();
    log_in(t, CASHIER);
    let receipt = sell(t, &[COLA_EAN]);
    open_refund(t);
    assert!(t.scan(&receipt.qr));
    g.invoke_toggle_line(0);

    // Cancelled: nothing recorded.
    g.invoke_refund();
    assert!(w.get_approval_visible());
    w.invoke_cancel_approval();
    assert!(refunds(t).is_empty());

    // The cashier approving her own refund: the engine's refusal, word for word.
    let expected = t
        .with_engine(|e| {
            let req = RefundRequest {
                line: LineNo(1),
                qty: Quantity(1000),
            };
            e.refund(
                receipt.number,
                &[req],
                Tender::Cash,
                c(CASHIER),
                "defective",
            )
            .unwrap_err()
        })
        .map(|e| t.refusal_text(&e))
        .unwrap();
    g.invoke_refund();
    approve_as(t, CASHIER);
    assert!(w.get_error_visible());
    assert_eq!(w.get_error_text(), expected);
    assert!(refunds(t).is_empty());
    w.invoke_dismiss_error();

    // Nobody typed in: refused too, nothing recorded.
    g.invoke_refund();
    w.invoke_approval_reason_picked(0);
    w.invoke_approve();
    assert!(w.get_error_visible());
    assert!(!w.get_error_text().is_empty());
    assert!(refunds(t).is_empty());
    assert_eq!(
        t.screen(),
        Some(Screen::Refund),
        "still on the refund screen"
    );
}

#[test]
fn garbage_or_forged_codes_show_the_engines_error() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<RefundPage<'_>>();
    log_in(t, CASHIER);
    let receipt = sell(t, &[COLA_EAN]);
    open_refund(t);

    let forged = format!("{}0", receipt.qr.trim_end_matches(|c: char| c != ':'));
    for code in [
        "garbage",
        "3PPOS1:::",
        "3PPOS1:x:99999999999999999999:y",
        &forged,
        "",
        "\u{0}\u{7f}",
    ] {
        let expected = t
            .with_engine(|e| e.find_receipt(code).unwrap_err())
            .map(|e| t.refusal_text(&e))
            .unwrap();
        assert!(!t.scan(code), "{code:?} was taken for a receipt");
        assert!(w.get_error_visible(), "{code:?}");
        assert_eq!(w.get_error_text(), expected);
        assert!(!g.get_found());
        w.invoke_dismiss_error();
    }
    assert_eq!(t.screen(), Some(Screen::Refund));
    // And the real code still works.
    assert!(t.scan(&receipt.qr));
    assert!(g.get_found());
}

#[test]
fn key_the_number_then_void_the_whole_receipt() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<RefundPage<'_>>();
    log_in(t, CASHIER);
    let receipt = sell(t, &[COLA_EAN, WATER_EAN8]);
    let (cola, water) = t
        .with_engine(|e| (stock(e, "cola"), stock(e, "water")))
        .unwrap();

    open_refund(t);
    for d in receipt.number.to_string().chars() {
        g.invoke_digit(d.to_string().into());
    }
    assert_eq!(g.get_number_text(), receipt.number.to_string());
    g.invoke_find();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(g.get_found());
    assert!(!g.get_voided());

    g.invoke_void_receipt();
    assert!(w.get_approval_visible());
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());

    let voids: Vec<PostVoided> = t
        .with_engine(|e| {
            events(e.store(), "sale.post_voided")
                .iter()
                .map(payload::<PostVoided>)
                .collect()
        })
        .unwrap();
    assert_eq!(voids.len(), 1);
    assert_eq!(voids[0].receipt, receipt.number);
    assert_eq!(voids[0].total, receipt.sale.totals.due);
    assert_eq!(
        t.with_engine(|e| (stock(e, "cola"), stock(e, "water")))
            .unwrap(),
        (cola + 1000, water + 1000)
    );
    assert_eq!(t.screen(), Some(Screen::Sale));
    assert!(w.get_hint_text().contains(&receipt.number.to_string()));

    // Found again, it shows as voided, and no line can be picked for a refund.
    open_refund(t);
    assert!(t.scan(&receipt.qr));
    assert!(g.get_voided());
    g.invoke_toggle_line(0);
    assert!(!g.get_lines().row_data(0).unwrap().picked);
    assert!(!g.get_any_picked());
}

#[test]
fn reprint_sends_a_copy_to_the_printer() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<RefundPage<'_>>();
    log_in(t, CASHIER);
    let receipt = sell(t, &[COLA_EAN]);
    let jobs = wait_for_jobs(&rig.printer, 1);
    assert_eq!(jobs.len(), 1);
    assert!(!jobs[0].contains("COPY"));

    open_refund(t);
    assert!(t.scan(&receipt.qr));
    assert!(!g.get_reprinted());
    g.invoke_reprint();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    assert!(!w.get_device_visible(), "{}", w.get_device_text());
    assert!(g.get_reprinted());
    let jobs = wait_for_jobs(&rig.printer, 2);
    assert_eq!(jobs.len(), 2);
    assert!(jobs[1].contains("COPY"), "{}", jobs[1]);
    assert!(jobs[1].contains(&receipt.number.to_string()));
}

#[test]
fn the_refund_screen_draws_at_every_screen_size() {
    for size in pos_ui::backend::ScreenSize::SUPPORTED {
        let rig = sized_rig(size);
        let t = &rig.terminal;
        let w = t.window();
        let g = w.global::<RefundPage<'_>>();
        t.set_clock(Some("09:41"));
        log_in(t, CASHIER);
        assert!(t.scan(BANANA_PLU));
        t.with_engine(|e| e.set_quantity(LineNo(1), Quantity(3000)).unwrap())
            .unwrap();
        let receipt = sell(t, &[COLA_EAN, WATER_EAN8, CAKE_PLU]);
        open_refund(t);
        for d in receipt.number.to_string().chars() {
            g.invoke_digit(d.to_string().into());
        }
        let mut frames = vec![draw("refund", size)];
        g.invoke_find();
        assert!(g.get_found());
        frames.push(draw("refund-found", size));
        g.invoke_toggle_line(0);
        g.invoke_less(0);
        g.invoke_toggle_line(2);
        assert_eq!(g.get_lines().row_data(0).unwrap().qty, "2");
        frames.push(draw("refund-picked", size));
        for (i, frame) in frames.iter().enumerate() {
            assert!(
                frame.chunks(3).any(|p| p != &frame[..3]),
                "frame {i} at {size} is flat"
            );
        }
        assert!(frames.windows(2).all(|p| p[0] != p[1]), "at {size}");
    }
}

#[test]
fn a_card_sale_can_be_refunded_to_the_card() {
    let rig = rig();
    let t = &rig.terminal;
    let w = t.window();
    let g = w.global::<RefundPage<'_>>();
    log_in(t, CASHIER);
    assert!(t.scan(COLA_EAN));
    w.invoke_pay_clicked();
    t.card_approved("A1B2C3", "4242");
    w.invoke_complete_sale();
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let receipt = t.last_receipt().unwrap();
    let card = receipt.sale.payments[0].tender.clone();
    assert!(matches!(card, Tender::Card { .. }));

    open_refund(t);
    assert!(t.scan(&receipt.qr));
    assert!(g.get_card_allowed());
    assert_eq!(g.get_paid_with(), card.label().as_str());
    assert!(!g.get_to_card(), "cash unless the cashier picks the card");
    g.invoke_tender_card();
    assert!(g.get_to_card());
    g.invoke_toggle_line(0);
    g.invoke_refund();
    approve_as(t, SUPERVISOR);
    assert!(!w.get_error_visible(), "{}", w.get_error_text());
    let done = refunds(t);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].tender, card);
    assert_eq!(done[0].plan.total, receipt.sale.lines[0].paid);
}

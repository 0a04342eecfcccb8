#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

//! The sale engine end to end, on a real store: scans of every code form, payments, gapless
//! receipts and their QR codes, voids/discounts/overrides with approvals and reasons in the audit
//! trail, parked tickets across a restart, refunds that never exceed the sale, the drawer's
//! expected cash, Z reports (sequential, signed, equal to a fold of the raw events) and bad input
//! that is refused without changing anything.

mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;

use pos_auth::{Denial, Permission};
use pos_core::payloads::{StockCause, StockMoved};
use pos_core::sale::barcode::BarcodeError;
use pos_core::sale::catalogue::MAX_PRICE;
use pos_core::sale::events::{self as ev};
use pos_core::sale::{
    CashRounding, CompletedSale, Discount, LineNo, Money, Quantity, RefundRequest, SaleError,
    SaleFact, ShiftReport, Tender, Unit,
};
use pos_core::DeviceId;
use pos_engine::{Credentials, Engine, EngineConfig, EngineError};
use pos_store::{AccountError, LogFilter, Store, StoreOptions, DB_FILE};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use support::*;

fn card(code: &str) -> Tender {
    Tender::Card {
        approval_code: code.into(),
        last4: "4242".into(),
    }
}

fn refund_line(line: u32, units: i64) -> RefundRequest {
    RefundRequest {
        line: LineNo(line),
        qty: Quantity::units(units),
    }
}

fn denied(err: &EngineError) -> Option<&Denial> {
    match err {
        EngineError::Account(AccountError::Denied(d)) => Some(d),
        _ => None,
    }
}

/// Pays what is left in cash and completes; returns the receipt number.
fn pay_cash_and_complete(engine: &mut Engine) -> u64 {
    let due = engine.balance().unwrap().remaining;
    engine.pay(Tender::Cash, due).unwrap();
    engine.complete().unwrap().number
}

/// One cola paid in cash: receipt number.
fn quick_sale(engine: &mut Engine) -> u64 {
    engine.scan(COLA_EAN).unwrap();
    pay_cash_and_complete(engine)
}

#[test]
fn a_sale_by_scan_of_every_code_form_is_paid_numbered_and_takes_stock() {
    let mut t = till();
    let e = &mut t.engine;

    let cola = e.scan(COLA_EAN).unwrap();
    let cake = e.scan(&label("22", CAKE_PLU, 399)).unwrap();
    let apples = e.scan(&label("21", APPLES_PLU, 1250)).unwrap();
    let banana = e.scan(BANANA_PLU).unwrap();
    assert_eq!(
        [cola, cake, apples, banana],
        [LineNo(1), LineNo(2), LineNo(3), LineNo(4)]
    );
    let lines = e.ticket().unwrap().lines().to_vec();
    assert_eq!(lines[0].sku, "cola");
    assert_eq!(lines[0].amount().unwrap(), Money(199));
    // The price label's price is the line amount, whatever the catalogue says (3.50).
    assert_eq!(lines[1].sku, "cake");
    assert_eq!(lines[1].amount().unwrap(), Money(399));
    // 1.250 kg at 2.99/kg = 3.7375 → 3.74.
    assert_eq!(lines[2].sku, "apples");
    assert_eq!(lines[2].qty, Quantity(1250));
    assert_eq!(lines[2].amount().unwrap(), Money(374));
    assert_eq!(lines[3].sku, "banana");
    assert_eq!(lines[3].amount().unwrap(), Money(25));

    let due = Money(199 + 399 + 374 + 25);
    assert_eq!(e.balance().unwrap().due, due);
    let balance = e.pay(Tender::Cash, Money(2000)).unwrap();
    assert_eq!(balance.remaining, Money::ZERO);
    assert_eq!(balance.change, Money(2000 - 997));

    let receipt = e.complete().unwrap();
    assert_eq!(receipt.number, 1);
    assert!(e.ticket().is_none());
    assert_eq!(receipt.sale.totals.due, due);
    assert_eq!(receipt.sale.change, Money(1003));
    assert!(!receipt.copy);
    let text = receipt.render_text(32).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("TOTAL") && l.ends_with(" 9.97")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("Change") && l.ends_with(" 10.03")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.chars().count() <= 32), "{text}");

    assert_eq!(quick_sale(e), 2);
    assert_eq!(quick_sale(e), 3);
    let numbers: Vec<u64> = events(e.store(), "sale.completed")
        .iter()
        .map(|ev| payload::<ev::SaleCompleted>(ev).receipt)
        .collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let device = e.store().device_id();
    assert_eq!(e.store().next_receipt_number(device).unwrap(), 4);
    for n in 1..=3 {
        assert_eq!(e.receipt(n, false).unwrap().number, n);
    }
    assert!(matches!(
        e.receipt(4, false),
        Err(EngineError::UnknownReceipt(4))
    ));

    let start = STOCK_UNITS * 1000;
    assert_eq!(stock(e, "cola"), start - 3000);
    assert_eq!(stock(e, "cake"), start - 1000);
    assert_eq!(stock(e, "apples"), start - 1250);
    assert_eq!(stock(e, "banana"), start - 1000);
    assert_eq!(stock(e, "water"), start);
    e.store().verify().unwrap();
}

#[test]
fn the_receipt_qr_finds_its_receipt_and_forgeries_are_refused() {
    let mut t = till();
    let e = &mut t.engine;
    quick_sale(e);
    e.scan(BANANA_PLU).unwrap();
    let n = pay_cash_and_complete(e);
    let receipt = e.receipt(n, false).unwrap();
    let device = e.store().device_id().to_string();
    let (prefix, hash) = receipt.qr.rsplit_once(':').unwrap();
    assert_eq!(prefix, format!("3PPOS1:{device}:{n}"));
    assert_eq!(hash.len(), 64);

    assert_eq!(e.find_receipt(&receipt.qr).unwrap(), receipt);
    assert_eq!(
        e.find_receipt(&format!(" {}\n", receipt.qr)).unwrap(),
        receipt
    );
    assert_eq!(e.find_receipt(&n.to_string()).unwrap(), receipt);

    let other_char = if hash.ends_with('0') { '1' } else { '0' };
    let wrong_hash = format!("{}{other_char}", &hash[..63]);
    let other_device = DeviceId::new_v7().to_string();
    let first_hash = e.receipt(1, false).unwrap().qr;
    let first_hash = first_hash.rsplit_once(':').unwrap().1.to_owned();
    let forgeries = [
        format!("3PPOS1:{device}:{n}:{wrong_hash}"),
        format!("3PPOS1:{device}:{n}:"),
        format!("3PPOS1:{device}:{n}:{}", &hash[56..]),
        format!("3PPOS1:{other_device}:{n}:{hash}"),
        // Receipt 1's hash does not vouch for receipt 2.
        format!("3PPOS1:{device}:{n}:{first_hash}"),
        format!("3PPOS1:{device}:99:{hash}"),
        format!("3PPOS1:{device}:{n}"),
        format!("3PPOS1:{device}:x:{hash}"),
        "3PPOS1:".to_owned(),
        "receipt".to_owned(),
    ];
    for forged in &forgeries {
        let err = e.find_receipt(forged).unwrap_err();
        assert!(
            matches!(err, EngineError::UnknownReceipt(_)),
            "{forged}: {err:?}"
        );
    }

    let copy = e.receipt(n, true).unwrap();
    assert!(copy.copy);
    assert_eq!(
        (copy.number, &copy.sale, &copy.qr),
        (n, &receipt.sale, &receipt.qr)
    );
    let printed = copy.render_text(32).unwrap();
    assert_eq!(printed.matches("*** COPY ***").count(), 2, "{printed}");
    assert!(!receipt.render_text(32).unwrap().contains("COPY"));
}

#[test]
fn a_line_void_needs_a_second_person_with_the_permission_and_a_listed_reason() {
    let mut t = till();
    let users = t.users;
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.scan(BANANA_PLU).unwrap();
    let before = t.engine.ticket().cloned().unwrap();
    let events_before = business_events(t.engine.store());

    // Another cashier holds no line_void.
    let err = t
        .engine
        .void_line(LineNo(1), c(CASHIER2), "scan-error")
        .unwrap_err();
    assert_eq!(
        denied(&err),
        Some(&Denial::ApproverLacksPermission(Permission::LineVoid)),
        "{err:?}"
    );
    // The cashier cannot approve herself.
    let err = t
        .engine
        .void_line(LineNo(1), c(CASHIER), "scan-error")
        .unwrap_err();
    assert_eq!(denied(&err), Some(&Denial::SelfApproval), "{err:?}");
    // An unknown reason is refused with the list of valid ones; so is a missing one.
    let err = t
        .engine
        .void_line(LineNo(1), c(SUPERVISOR), "bored")
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::UnknownReason { .. })),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("scan-error, customer-changed-mind, damaged"),
        "{err}"
    );
    let err = t
        .engine
        .void_line(LineNo(1), c(SUPERVISOR), " ")
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::MissingReason { .. })),
        "{err:?}"
    );
    // A wrong PIN is a failed login of the approver.
    let err = t
        .engine
        .void_line(
            LineNo(1),
            Credentials::new(SUPERVISOR.0, "11223344"),
            "damaged",
        )
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Account(AccountError::Login(_))),
        "{err:?}"
    );
    assert_eq!(t.engine.ticket(), Some(&before));

    // A supervisor at the till cannot approve his own void either.
    t.switch_to(SUPERVISOR);
    let parked = t.engine.parked().unwrap();
    assert_eq!(parked.len(), 1);
    t.engine.resume(parked[0].id()).unwrap();
    assert_eq!(t.engine.ticket(), Some(&before));
    let err = t
        .engine
        .void_line(LineNo(1), c(SUPERVISOR), "scan-error")
        .unwrap_err();
    assert_eq!(denied(&err), Some(&Denial::SelfApproval), "{err:?}");
    assert_eq!(t.engine.ticket(), Some(&before));
    assert!(events(t.engine.store(), "sale.line_voided").is_empty());

    // Back to the cashier; the supervisor approves with a listed reason.
    t.switch_to(CASHIER);
    let id = t.engine.parked().unwrap()[0].id();
    t.engine.resume(id).unwrap();
    let events_mid = business_events(t.engine.store());
    // Park + resume twice: the refusals themselves added no business event.
    assert_eq!(events_mid, events_before + 4);
    t.engine
        .void_line(LineNo(1), c(SUPERVISOR), "scan-error")
        .unwrap();
    let ticket = t.engine.ticket().unwrap();
    assert!(ticket.lines()[0].voided);
    assert!(!ticket.lines()[1].voided);
    assert_eq!(ticket.totals().unwrap().due, Money(25));
    let err = t
        .engine
        .void_line(LineNo(1), c(SUPERVISOR), "scan-error")
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::LineVoided(LineNo(1)))),
        "{err:?}"
    );

    let voids = events(t.engine.store(), "sale.line_voided");
    assert_eq!(voids.len(), 1);
    let void = &voids[0];
    assert_eq!(void.actor, Some(users.cashier));
    assert_eq!(void.approver, Some(users.supervisor));
    assert_eq!(void.reason.as_deref(), Some("scan-error"));
    let p: ev::LineVoided = payload(void);
    assert_eq!((p.line, p.sku.as_str(), p.amount), (1, "cola", Money(199)));
    // The approval is on the security log, in the same commit.
    let approvals = events(t.engine.store(), "security.approval_used");
    let last = approvals.last().unwrap();
    assert_eq!(last.seq + 1, void.seq);

    let n = pay_cash_and_complete(&mut t.engine);
    let receipt = t.engine.receipt(n, false).unwrap();
    assert_eq!(receipt.sale.totals.due, Money(25));
    assert!(receipt.render_text(32).unwrap().contains("VOID"));
    let x = t.engine.x_report().unwrap();
    assert_eq!((x.voids.count, x.voids.value), (1, Money(199)));
    // The voided cola never left the shelf.
    assert_eq!(stock(&t.engine, "cola"), STOCK_UNITS * 1000);
    t.engine.store().verify().unwrap();
}

#[test]
fn discounts_above_the_threshold_and_price_overrides_are_approved_and_logged() {
    let mut t = till();
    let users = t.users;
    let e = &mut t.engine;
    e.add("cola", Quantity::units(5)).unwrap(); // 9.95
    e.scan(BANANA_PLU).unwrap(); // 0.25

    // 5% of 9.95 is under both limits (10%, 5.00): no approval, nothing logged.
    e.discount(Some(LineNo(1)), Discount::Percent(500), None)
        .unwrap();
    assert_eq!(
        e.ticket().unwrap().lines()[0].discount,
        Some(Discount::Percent(500))
    );
    assert!(events(e.store(), "sale.discount_given").is_empty());

    // 20% off the ticket is above it.
    let before = e.ticket().cloned().unwrap();
    let twenty = Discount::Percent(2000);
    let err = e.discount(None, twenty, None).unwrap_err();
    assert!(matches!(err, EngineError::ApprovalNeeded(_)), "{err:?}");
    let err = e
        .discount(None, twenty, Some((c(CASHIER), "loyalty")))
        .unwrap_err();
    assert_eq!(denied(&err), Some(&Denial::SelfApproval), "{err:?}");
    let err = e
        .discount(None, twenty, Some((c(CASHIER2), "loyalty")))
        .unwrap_err();
    assert_eq!(
        denied(&err),
        Some(&Denial::ApproverLacksPermission(
            Permission::DiscountAboveThreshold
        )),
        "{err:?}"
    );
    let err = e
        .discount(None, twenty, Some((c(SUPERVISOR), "because")))
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::UnknownReason { .. })),
        "{err:?}"
    );
    // A fixed amount above the line is refused whatever the approval.
    let err = e
        .discount(
            Some(LineNo(2)),
            Discount::Amount(Money(26)),
            Some((c(SUPERVISOR), "damaged")),
        )
        .unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::DiscountTooLarge { .. })),
        "{err:?}"
    );
    assert_eq!(e.ticket(), Some(&before));
    assert!(events(e.store(), "sale.discount_given").is_empty());

    e.discount(None, twenty, Some((c(SUPERVISOR), "loyalty")))
        .unwrap();
    let given = events(e.store(), "sale.discount_given");
    assert_eq!(given.len(), 1);
    assert_eq!(given[0].actor, Some(users.cashier));
    assert_eq!(given[0].approver, Some(users.supervisor));
    assert_eq!(given[0].reason.as_deref(), Some("loyalty"));
    let p: ev::DiscountGiven = payload(&given[0]);
    // Subtotal 9.95 − 0.50 + 0.25 = 9.70; 20% = 1.94.
    assert_eq!((p.line, p.discount, p.amount), (None, twenty, Money(194)));

    // Price override: second person and a reason; before/after on the log.
    let before = e.ticket().cloned().unwrap();
    for (price, reason) in [
        (Money(-1), "price-match"),
        (Money(MAX_PRICE.0 + 1), "price-match"),
        (Money(10), "cheaper-elsewhere"),
    ] {
        let err = e
            .override_price(LineNo(2), price, c(SUPERVISOR), reason)
            .unwrap_err();
        assert!(matches!(err, EngineError::Sale(_)), "{price}: {err:?}");
    }
    let err = e
        .override_price(LineNo(2), Money(10), c(CASHIER), "price-match")
        .unwrap_err();
    assert_eq!(denied(&err), Some(&Denial::SelfApproval), "{err:?}");
    assert_eq!(e.ticket(), Some(&before));
    e.override_price(LineNo(2), Money(10), c(SUPERVISOR), "price-match")
        .unwrap();
    let overrides = events(e.store(), "sale.price_overridden");
    assert_eq!(overrides.len(), 1);
    assert_eq!(overrides[0].approver, Some(users.supervisor));
    assert_eq!(overrides[0].reason.as_deref(), Some("price-match"));
    let p: ev::PriceOverridden = payload(&overrides[0]);
    assert_eq!(
        (p.line, p.sku.as_str(), p.before, p.after),
        (2, "banana", Money(25), Money(10))
    );

    let totals = e.ticket().unwrap().totals().unwrap();
    assert_eq!(totals.lines_gross, Money(995 + 10));
    // Line: 50; ticket: 20% of (945 + 10) = 191.
    assert_eq!(totals.discounts, Money(50 + 191));
    assert_eq!(
        totals.total,
        totals.lines_gross.checked_sub(totals.discounts).unwrap()
    );
    let n = pay_cash_and_complete(e);
    let text = e.receipt(n, false).unwrap().render_text(48).unwrap();
    assert!(text.contains("Price changed from 0.25"), "{text}");
    assert!(text.contains("You saved"), "{text}");
}

#[test]
fn a_parked_ticket_survives_a_restart_and_resumes_with_the_same_lines() {
    let mut t = till();
    t.engine.scan(COLA_EAN).unwrap();
    t.engine.add("cheese", Quantity(350)).unwrap();
    let water = t.engine.scan(WATER_EAN8).unwrap();
    t.engine.set_quantity(water, Quantity::units(3)).unwrap();
    let lines = t.engine.ticket().unwrap().lines().to_vec();
    let id = t.engine.park().unwrap();
    assert!(t.engine.ticket().is_none());
    assert_eq!(t.engine.parked().unwrap().len(), 1);

    // Power cut: the engine and its store go away; the data dir stays.
    let Till { engine, dir, .. } = t;
    drop(engine);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut e = Engine::new(store, config());
    assert!(e.shift().unwrap().is_some(), "the shift is still open");
    e.login(c(CASHIER2)).unwrap();
    let parked = e.parked().unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].id(), id);
    let err = e.resume(pos_core::TicketId::new_v7()).unwrap_err();
    assert!(matches!(err, EngineError::UnknownParked(_)), "{err:?}");
    e.resume(id).unwrap();
    assert_eq!(e.ticket().unwrap().lines(), &lines[..]);
    assert!(e.parked().unwrap().is_empty());
    let n = pay_cash_and_complete(&mut e);
    assert_eq!(n, 1);
    assert_eq!(e.receipt(n, false).unwrap().sale.lines.len(), 3);
    assert_eq!(stock(&e, "water"), STOCK_UNITS * 1000 - 3000);
    assert_eq!(stock(&e, "cheese"), STOCK_UNITS * 1000 - 350);
    e.store().verify().unwrap();
    drop(e);
    drop(dir);
}

/// Rings up the refund test's sale: 3 colas, 0.750 kg apples (label), 5 bananas, 10% off the
/// ticket (under the threshold), paid in cash. Returns the receipt.
fn refundable_sale(engine: &mut Engine) -> CompletedSale {
    engine.add("cola", Quantity::units(3)).unwrap();
    engine.scan(&label("21", APPLES_PLU, 750)).unwrap();
    engine.add("banana", Quantity::units(5)).unwrap();
    engine
        .discount(None, Discount::Percent(1000), None)
        .unwrap();
    let n = pay_cash_and_complete(engine);
    engine.receipt(n, false).unwrap().sale
}

#[test]
fn refunds_against_a_receipt_never_exceed_what_was_sold() {
    let t = RefCell::new(till());
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    // Requests of one or two lines each; line 4 does not exist; raw % 17 == 0 asks for 0.
    let requests = proptest::collection::vec(
        proptest::collection::vec((1u32..=4, any::<u16>()), 1..=2),
        1..=6,
    );
    runner
        .run(&requests, |requests| {
            let mut t = t.borrow_mut();
            let e = &mut t.engine;
            let device = e.store().device_id();
            let sale = refundable_sale(e);
            let number = e.store().next_receipt_number(device).unwrap() - 1;
            let mut left: BTreeMap<u32, i64> =
                sale.lines.iter().map(|l| (l.line.0, l.qty.0)).collect();
            let mut refunded = Money::ZERO;

            for request in requests {
                let lines: Vec<RefundRequest> = request
                    .iter()
                    .map(|&(line, raw)| {
                        let qty = match sale.lines.iter().find(|l| l.line.0 == line) {
                            _ if raw % 17 == 0 => 0,
                            Some(l) if l.unit == Unit::Kg => i64::from(raw % 800) + 1,
                            _ => (i64::from(raw % 4) + 1) * 1000,
                        };
                        RefundRequest {
                            line: LineNo(line),
                            qty: Quantity(qty),
                        }
                    })
                    .collect();
                let mut model = left.clone();
                let fits = lines.iter().all(|r| match model.get_mut(&r.line.0) {
                    Some(q) if r.qty.0 > 0 && r.qty.0 <= *q => {
                        *q -= r.qty.0;
                        true
                    }
                    _ => false,
                });
                let next = e.store().next_refund_number(device).unwrap();
                let stock_before = stock(e, "cola");
                let outcome = e.refund(number, &lines, Tender::Cash, c(SUPERVISOR), "defective");
                match outcome {
                    Ok(r) => {
                        prop_assert!(fits, "{lines:?} was refunded beyond {left:?}");
                        prop_assert_eq!(r.refund, next);
                        prop_assert_eq!(r.original, Some(number));
                        refunded = refunded.checked_add(r.plan.total).unwrap();
                        left = model;
                    }
                    Err(err) => {
                        prop_assert!(!fits, "{lines:?} within {left:?} refused: {err}");
                        prop_assert!(matches!(err, EngineError::Sale(_)), "{err:?}");
                        prop_assert_eq!(e.store().next_refund_number(device).unwrap(), next);
                        prop_assert_eq!(stock(e, "cola"), stock_before);
                    }
                }
                prop_assert!(refunded <= sale.totals.due);
            }
            let recorded = e.store().refunds_of(device, number).unwrap();
            let total = Money::sum(recorded.iter().map(|r| r.plan.total)).unwrap();
            prop_assert_eq!(total, refunded);

            // Refunding everything left gives back exactly what was paid, to the cent.
            let rest: Vec<RefundRequest> = left
                .iter()
                .filter(|(_, q)| **q > 0)
                .map(|(line, q)| RefundRequest {
                    line: LineNo(*line),
                    qty: Quantity(*q),
                })
                .collect();
            if !rest.is_empty() {
                let r = e
                    .refund(number, &rest, Tender::Cash, c(SUPERVISOR), "defective")
                    .unwrap();
                refunded = refunded.checked_add(r.plan.total).unwrap();
            }
            prop_assert_eq!(refunded, sale.totals.due);
            let err = e
                .refund(
                    number,
                    &[refund_line(1, 1)],
                    Tender::Cash,
                    c(SUPERVISOR),
                    "defective",
                )
                .unwrap_err();
            prop_assert!(
                matches!(err, EngineError::Sale(SaleError::RefundExceedsSale { .. })),
                "{err:?}"
            );
            Ok(())
        })
        .unwrap();
    let t = t.into_inner();
    // Every sale went out of stock and came back.
    assert_eq!(stock(&t.engine, "cola"), STOCK_UNITS * 1000);
    assert_eq!(stock(&t.engine, "banana"), STOCK_UNITS * 1000);
    assert_eq!(stock(&t.engine, "apples"), STOCK_UNITS * 1000);
    t.engine.store().verify().unwrap();
}

#[test]
fn refunds_without_receipt_and_after_post_voids() {
    let mut t = till();
    let users = t.users;
    let e = &mut t.engine;

    // Without receipt: at a price, with a reason and an approver; stock comes back.
    let r = e
        .refund_without_receipt(
            "water",
            Quantity::units(2),
            Money(89),
            Tender::Cash,
            c(SUPERVISOR),
            "wrong-item",
        )
        .unwrap();
    assert_eq!((r.refund, r.original, r.plan.total), (1, None, Money(178)));
    assert_eq!(stock(e, "water"), STOCK_UNITS * 1000 + 2000);
    let logged = events(e.store(), "sale.refunded");
    assert_eq!(logged[0].approver, Some(users.supervisor));
    assert_eq!(logged[0].reason.as_deref(), Some("wrong-item"));
    let events_before = business_events(e.store());
    for (sku, qty, price) in [
        ("nope", Quantity::ONE, Money(89)),
        ("water", Quantity::ZERO, Money(89)),
        ("water", Quantity(-1000), Money(89)),
        ("water", Quantity(1500), Money(89)),
        ("water", Quantity::units(1_000_000), Money(89)),
        ("water", Quantity::ONE, Money(-5)),
        ("water", Quantity::ONE, Money(MAX_PRICE.0 + 1)),
    ] {
        let err = e
            .refund_without_receipt(sku, qty, price, Tender::Cash, c(SUPERVISOR), "wrong-item")
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Sale(_) | EngineError::UnknownProduct(_)),
            "{sku} {qty} {price}: {err:?}"
        );
    }
    let err = e
        .refund_without_receipt(
            "water",
            Quantity::ONE,
            Money(89),
            Tender::Cash,
            c(CASHIER),
            "wrong-item",
        )
        .unwrap_err();
    assert_eq!(denied(&err), Some(&Denial::SelfApproval), "{err:?}");
    assert_eq!(business_events(e.store()), events_before);

    // Post-void, then a refund of the voided receipt: refused.
    e.add("cola", Quantity::units(2)).unwrap();
    let voided = pay_cash_and_complete(e);
    let err = e
        .post_void(voided, c(CASHIER2), "cashier-error")
        .unwrap_err();
    assert!(denied(&err).is_some(), "{err:?}");
    let err = e.post_void(voided, c(SUPERVISOR), "oops").unwrap_err();
    assert!(matches!(err, EngineError::Sale(_)), "{err:?}");
    e.post_void(voided, c(SUPERVISOR), "cashier-error").unwrap();
    assert!(
        e.store()
            .receipt(e.store().device_id(), voided)
            .unwrap()
            .unwrap()
            .post_voided
    );
    assert_eq!(stock(e, "cola"), STOCK_UNITS * 1000);
    let next_refund = e.store().next_refund_number(e.store().device_id()).unwrap();
    let err = e
        .refund(
            voided,
            &[refund_line(1, 1)],
            Tender::Cash,
            c(SUPERVISOR),
            "defective",
        )
        .unwrap_err();
    assert!(matches!(err, EngineError::ReceiptVoided(_)), "{err:?}");
    assert!(e.post_void(voided, c(SUPERVISOR), "cashier-error").is_err());
    assert_eq!(
        e.store().next_refund_number(e.store().device_id()).unwrap(),
        next_refund
    );

    // A partly refunded receipt cannot be post-voided: refund the rest instead.
    e.add("cola", Quantity::units(2)).unwrap();
    let partly = pay_cash_and_complete(e);
    e.refund(
        partly,
        &[refund_line(1, 1)],
        Tender::Cash,
        c(SUPERVISOR),
        "defective",
    )
    .unwrap();
    let events_before = business_events(e.store());
    let stock_before = stock(e, "cola");
    let err = e
        .post_void(partly, c(SUPERVISOR), "cashier-error")
        .unwrap_err();
    assert!(matches!(err, EngineError::Store(_)), "{err:?}");
    assert_eq!(business_events(e.store()), events_before);
    assert_eq!(stock(e, "cola"), stock_before);
    assert!(
        !e.store()
            .receipt(e.store().device_id(), partly)
            .unwrap()
            .unwrap()
            .post_voided
    );
    e.refund(
        partly,
        &[refund_line(1, 1)],
        Tender::Cash,
        c(SUPERVISOR),
        "defective",
    )
    .unwrap();
    assert_eq!(stock(e, "cola"), STOCK_UNITS * 1000);

    let x = e.x_report().unwrap();
    assert_eq!(x.refunds.count, 3);
    assert_eq!(x.refunds.value, Money(178 + 199 + 199));
    assert_eq!((x.post_voids.count, x.post_voids.value), (1, Money(398)));
    e.store().verify().unwrap();
}

#[derive(Debug, Clone)]
enum CashOp {
    Sale { colas: i64, extra: i64, card: bool },
    Refund { price: i64 },
    PaidIn(i64),
    PaidOut(i64),
    NoSale,
}

fn cash_op() -> impl Strategy<Value = CashOp> {
    prop_oneof![
        3 => (1i64..=4, 0i64..=1000, any::<bool>())
            .prop_map(|(colas, extra, card)| CashOp::Sale { colas, extra, card }),
        1 => (1i64..=500).prop_map(|price| CashOp::Refund { price }),
        1 => (1i64..=5000).prop_map(CashOp::PaidIn),
        1 => (1i64..=5000).prop_map(CashOp::PaidOut),
        1 => Just(CashOp::NoSale),
    ]
}

#[test]
fn the_drawer_expects_float_plus_cash_sales_minus_refunds_plus_paid_in_minus_paid_out() {
    let t = RefCell::new(till_without_shift());
    let z_count = RefCell::new(0u64);
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let case = (
        0i64..=20_000,
        proptest::collection::vec(cash_op(), 1..=6),
        -500i64..=500,
    );
    runner
        .run(&case, |(float, ops, over)| {
            let mut t = t.borrow_mut();
            let e = &mut t.engine;
            e.open_shift(Money(float)).unwrap();
            let mut expected = float;
            for op in ops {
                match op {
                    CashOp::Sale { colas, extra, card } => {
                        e.add("cola", Quantity::units(colas)).unwrap();
                        let due = e.balance().unwrap().remaining;
                        prop_assert_eq!(due, Money(199 * colas));
                        if card {
                            e.pay(card_tender(), due).unwrap();
                        } else {
                            let b = e.pay(Tender::Cash, Money(due.0 + extra)).unwrap();
                            prop_assert_eq!(b.change, Money(extra));
                            expected += due.0;
                        }
                        e.complete().unwrap();
                    }
                    CashOp::Refund { price } => {
                        let r = e
                            .refund_without_receipt(
                                "water",
                                Quantity::ONE,
                                Money(price),
                                Tender::Cash,
                                c(SUPERVISOR),
                                "defective",
                            )
                            .unwrap();
                        prop_assert_eq!(r.plan.total, Money(price));
                        expected -= price;
                    }
                    CashOp::PaidIn(amount) => {
                        e.cash_move(true, Money(amount), Some(c(SUPERVISOR)), "float-top-up")
                            .unwrap();
                        expected += amount;
                    }
                    CashOp::PaidOut(amount) => {
                        e.cash_move(false, Money(amount), Some(c(SUPERVISOR)), "petty-cash")
                            .unwrap();
                        expected -= amount;
                    }
                    CashOp::NoSale => e.no_sale(Some(c(SUPERVISOR)), "give-change").unwrap(),
                }
                let x = e.x_report().unwrap();
                prop_assert_eq!(x.drawer.expected().unwrap(), Money(expected));
            }
            // A drawer holds no negative cash: a count is at least zero (the expected amount
            // can be negative when more was paid out than came in).
            let counted = Money((expected + over).max(0));
            let z = e.close_shift(counted, Some(c(SUPERVISOR))).unwrap();
            let mut zs = z_count.borrow_mut();
            *zs += 1;
            prop_assert_eq!(z.z_number, *zs);
            prop_assert_eq!(z.expected, Money(expected));
            prop_assert_eq!(z.counted, counted);
            prop_assert_eq!(z.over_short, Money(counted.0 - expected));
            prop_assert_eq!(z.report.drawer.expected().unwrap(), Money(expected));
            Ok(())
        })
        .unwrap();
    t.borrow().engine.store().verify().unwrap();
}

fn card_tender() -> Tender {
    card("A12345")
}

/// The seq of every `shift.closed` event and whether a signed checkpoint sits at it, read
/// straight from the database file.
fn checkpoints_at_closes(store: &Store) -> Vec<(u64, bool)> {
    let db = rusqlite::Connection::open_with_flags(
        store.dir().join(DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let device = store.device_id();
    events(store, "shift.closed")
        .iter()
        .map(|e| {
            let found: bool = db
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM checkpoints WHERE origin = ?1 AND seq = ?2
                         AND length(signature) = 64)",
                    rusqlite::params![device.as_bytes(), e.seq as i64],
                    |r| r.get(0),
                )
                .unwrap();
            (e.seq, found)
        })
        .collect()
}

#[test]
fn shifts_close_with_a_blind_count_sequential_z_numbers_and_a_signed_checkpoint() {
    let mut t = till();
    let e = &mut t.engine;
    quick_sale(e);
    e.add("water", Quantity::units(2)).unwrap();
    e.pay(Tender::Cash, Money(500)).unwrap();
    e.complete().unwrap();

    // Not with a ticket open, not by a cashier alone.
    e.scan(COLA_EAN).unwrap();
    let err = e.close_shift(FLOAT, Some(c(SUPERVISOR))).unwrap_err();
    assert!(matches!(err, EngineError::TicketOpen), "{err:?}");
    pay_cash_and_complete(e);
    let err = e.close_shift(FLOAT, None).unwrap_err();
    assert_eq!(
        denied(&err),
        Some(&Denial::MissingPermission(Permission::ShiftClose)),
        "{err:?}"
    );
    let expected = Money(FLOAT.0 + 199 + 178 + 199);
    assert_eq!(e.x_report().unwrap().drawer.expected().unwrap(), expected);

    let z1 = e
        .close_shift(Money(expected.0 - 20), Some(c(SUPERVISOR)))
        .unwrap();
    assert_eq!(z1.z_number, 1);
    assert_eq!(z1.expected, expected);
    assert_eq!(z1.over_short, Money(-20));
    assert_eq!(z1.report.sales_count, 3);
    assert!(e.shift().unwrap().is_none());
    assert!(matches!(e.x_report(), Err(EngineError::NoShift)));
    assert!(matches!(e.scan(COLA_EAN), Err(EngineError::NoShift)));
    let closed = e.store().shift(z1.shift).unwrap().unwrap();
    assert_eq!(closed.z_number, Some(1));
    assert!(closed.closed.is_some());

    e.open_shift(Money(5000)).unwrap();
    quick_sale(e);
    let z2 = e.close_shift(Money(5199 + 7), Some(c(SUPERVISOR))).unwrap();
    assert_eq!(z2.z_number, 2);
    assert_eq!(z2.over_short, Money(7));
    assert_ne!(z1.shift, z2.shift);

    let closes = checkpoints_at_closes(e.store());
    assert_eq!(closes.len(), 2);
    assert!(closes.iter().all(|(_, signed)| *signed), "{closes:?}");
    // The closes' payloads carry their Z numbers and counts.
    let payloads: Vec<ev::ShiftClosed> = events(e.store(), "shift.closed")
        .iter()
        .map(payload)
        .collect();
    assert_eq!(
        payloads
            .iter()
            .map(|p| (p.z_number, p.over_short))
            .collect::<Vec<_>>(),
        vec![(1, Money(-20)), (2, Money(7))]
    );
    e.store().verify().unwrap();
}

/// The shift's report rebuilt from nothing but the raw event log.
fn report_from_raw_events(store: &Store, shift: pos_core::ShiftId) -> ShiftReport {
    let log = store.events(&LogFilter::default()).unwrap();
    let mut sales: BTreeMap<u64, CompletedSale> = BTreeMap::new();
    let mut float = None;
    let mut completed = Vec::new();
    let mut refunds = Vec::new();
    let mut post_voided = Vec::new();
    let mut line_voids = Vec::new();
    let mut moves = Vec::new();
    let mut no_sales = 0;
    for e in &log {
        match (e.module.as_str(), e.kind.as_str()) {
            (ev::SHIFT, ev::ShiftOpened::KIND) => {
                let p: ev::ShiftOpened = payload(e);
                if p.shift == shift {
                    assert!(float.replace(p.float).is_none());
                }
            }
            (ev::SALE, ev::SaleCompleted::KIND) => {
                let p: ev::SaleCompleted = payload(e);
                if p.shift == shift {
                    completed.push(p.receipt);
                }
                sales.insert(p.receipt, p.sale);
            }
            (ev::SALE, ev::Refunded::KIND) => {
                let p: ev::Refunded = payload(e);
                if p.shift == shift {
                    refunds.push(p);
                }
            }
            (ev::SALE, ev::PostVoided::KIND) => {
                let p: ev::PostVoided = payload(e);
                if p.shift == shift {
                    post_voided.push(p.receipt);
                }
            }
            (ev::SALE, ev::LineVoided::KIND) => {
                let p: ev::LineVoided = payload(e);
                if p.shift == shift {
                    line_voids.push(p.amount);
                }
            }
            (ev::SHIFT, ev::CashMoved::KIND) => {
                let p: ev::CashMoved = payload(e);
                if p.shift == shift {
                    moves.push((p.paid_in, p.amount));
                }
            }
            (ev::SHIFT, ev::NoSale::KIND) => {
                let p: ev::NoSale = payload(e);
                if p.shift == shift {
                    no_sales += 1;
                }
            }
            _ => {}
        }
    }
    let mut facts = vec![SaleFact::ShiftOpened {
        float: float.unwrap(),
    }];
    facts.extend(completed.iter().map(|n| SaleFact::Completed(&sales[n])));
    facts.extend(post_voided.iter().map(|n| SaleFact::PostVoided(&sales[n])));
    facts.extend(refunds.iter().map(|r| SaleFact::Refunded {
        plan: &r.plan,
        tender: &r.tender,
    }));
    facts.extend(
        line_voids
            .iter()
            .map(|&amount| SaleFact::LineVoided { amount }),
    );
    facts.extend(moves.iter().map(|&(paid_in, amount)| match paid_in {
        true => SaleFact::PaidIn(amount),
        false => SaleFact::PaidOut(amount),
    }));
    facts.extend((0..no_sales).map(|_| SaleFact::NoSale));
    facts
        .iter()
        .try_fold(ShiftReport::default(), |r, f| r.apply(f))
        .unwrap()
}

#[test]
fn the_z_report_equals_a_recomputation_from_the_raw_events() {
    // Cash rounded to 0.05, to have rounding in the figures.
    let t = till_without_shift();
    let Till { engine, dir, .. } = t;
    let mut e = Engine::new(
        engine.into_store(),
        EngineConfig {
            rounding: CashRounding { step: Money(5) },
            ..config()
        },
    );
    e.login(c(CASHIER)).unwrap();
    e.open_shift(FLOAT).unwrap();

    // A: cash with change (and rounding: 4.23 → 4.25).
    e.add("cola", Quantity::units(2)).unwrap();
    e.scan(BANANA_PLU).unwrap();
    let a = {
        e.pay(Tender::Cash, Money(1000)).unwrap();
        e.complete().unwrap()
    };
    assert_eq!(a.sale.rounding, Money(2));
    // B: a line void, 5% off, paid by card.
    e.scan(COLA_EAN).unwrap();
    e.scan(BANANA_PLU).unwrap();
    e.void_line(LineNo(2), c(SUPERVISOR), "scan-error").unwrap();
    e.discount(None, Discount::Percent(500), None).unwrap();
    let due = e.balance().unwrap().remaining;
    e.pay(card("B00001"), due).unwrap();
    e.complete().unwrap();
    // C: split card + cash, weighed apples.
    e.add("water", Quantity::units(3)).unwrap();
    e.scan(&label("21", APPLES_PLU, 640)).unwrap();
    e.pay(card("C00001"), Money(100)).unwrap();
    e.pay(Tender::Cash, Money(500)).unwrap();
    e.complete().unwrap();
    // D: voided after the fact (1.99 in cash rounds to 2.00).
    e.scan(COLA_EAN).unwrap();
    e.pay(Tender::Cash, Money(200)).unwrap();
    let d = e.complete().unwrap().number;
    e.post_void(d, c(SUPERVISOR), "wrong-tender").unwrap();
    // Refunds with and without receipt, on cash and card.
    e.refund(
        a.number,
        &[refund_line(1, 1)],
        Tender::Cash,
        c(SUPERVISOR),
        "defective",
    )
    .unwrap();
    e.refund_without_receipt(
        "water",
        Quantity::ONE,
        Money(89),
        card("R00001"),
        c(SUPERVISOR),
        "wrong-item",
    )
    .unwrap();
    e.no_sale(Some(c(SUPERVISOR)), "give-change").unwrap();
    e.cash_move(true, Money(500), Some(c(SUPERVISOR)), "float-top-up")
        .unwrap();
    e.cash_move(false, Money(1250), Some(c(SUPERVISOR)), "petty-cash")
        .unwrap();
    // E: a price label, cash.
    e.scan(&label("22", CAKE_PLU, 412)).unwrap();
    e.pay(Tender::Cash, Money(500)).unwrap();
    e.complete().unwrap();

    let expected = e.x_report().unwrap().drawer.expected().unwrap();
    let z = e
        .close_shift(Money(expected.0 + 35), Some(c(SUPERVISOR)))
        .unwrap();
    let recomputed = report_from_raw_events(e.store(), z.shift);
    assert_eq!(z.report, recomputed);
    let closed: ev::ShiftClosed = payload(events(e.store(), "shift.closed").last().unwrap());
    assert_eq!(closed.report, recomputed);
    assert_eq!(closed.z_number, z.z_number);
    assert_eq!((closed.expected, closed.over_short), (expected, Money(35)));

    // And the figures make sense on their own.
    let r = &z.report;
    assert_eq!(r.sales_count, 5);
    assert_eq!((r.voids.count, r.voids.value), (1, Money(25)));
    assert_eq!(r.post_voids.count, 1);
    assert_eq!(r.refunds.count, 2);
    assert_eq!(r.no_sales, 1);
    assert_eq!(
        (r.paid_in.value, r.paid_out.value),
        (Money(500), Money(1250))
    );
    assert_eq!(
        r.net,
        Money(r.gross.0 - r.refunds.value.0 - r.post_voids.value.0)
    );
    let tendered: i64 = r.tenders.values().map(|t| t.value.0).sum();
    // Tenders are net of change, refunds and post-voids; cash also carries the rounding.
    assert_eq!(tendered, r.net.0 + r.rounding.0);
    e.store().verify().unwrap();
    drop(e);
    drop(dir);
}

#[test]
fn bad_scans_and_quantities_are_refused_without_changing_anything() {
    let mut t = till();
    let e = &mut t.engine;
    let events_before = business_events(e.store());

    let err = e.scan(&unknown_ean()).unwrap_err();
    assert!(matches!(err, EngineError::UnknownBarcode(_)), "{err:?}");
    let err = e.scan("4006381333932").unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Sale(SaleError::Barcode(BarcodeError::CheckDigit { .. }))
        ),
        "{err:?}"
    );
    for code in ["", "40063813339x1", "1234567", "12345678901234567890"] {
        assert!(
            matches!(e.scan(code), Err(EngineError::Sale(SaleError::Barcode(_)))),
            "{code}"
        );
    }
    // A weighed product must be weighed: its PLU alone is not 1 kg.
    let err = e.scan(CHEESE_PLU).unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::NeedsWeight(_))),
        "{err:?}"
    );
    // A weight label on a product sold by the piece.
    let err = e.scan(&label("21", CAKE_PLU, 500)).unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::NotSoldByWeight(_))),
        "{err:?}"
    );
    let err = e.scan(&old_ean()).unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::ProductInactive(_))),
        "{err:?}"
    );
    let err = e.add("old", Quantity::ONE).unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::ProductInactive(_))),
        "{err:?}"
    );
    let err = e.add("nope", Quantity::ONE).unwrap_err();
    assert!(matches!(err, EngineError::UnknownProduct(_)), "{err:?}");
    for qty in [0, -1000, 1500, i64::MAX, i64::MIN, 10_001_000] {
        let err = e.add("cola", Quantity(qty)).unwrap_err();
        assert!(matches!(err, EngineError::Sale(_)), "{qty}: {err:?}");
    }
    assert!(
        e.ticket().is_none_or(|t| t.lines().is_empty()),
        "{:?}",
        e.ticket()
    );

    e.scan(COLA_EAN).unwrap();
    let weighed = e.add("cheese", Quantity(250)).unwrap();
    let before = e.ticket().cloned().unwrap();
    for qty in [0, -1000, i64::MAX, 10_001_000, 1500] {
        let err = e.set_quantity(LineNo(1), Quantity(qty)).unwrap_err();
        assert!(matches!(err, EngineError::Sale(_)), "{qty}: {err:?}");
    }
    assert!(e.set_quantity(weighed, Quantity(-1)).is_err());
    assert!(e.set_quantity(LineNo(9), Quantity::ONE).is_err());
    assert_eq!(e.ticket(), Some(&before));
    assert_eq!(business_events(e.store()), events_before);
    assert_eq!(stock(e, "cola"), STOCK_UNITS * 1000);
}

#[test]
fn bad_payments_are_refused_without_changing_anything() {
    let mut t = till();
    let e = &mut t.engine;
    e.scan(COLA_EAN).unwrap();
    let device = e.store().device_id();
    let before = e.ticket().cloned().unwrap();

    // Only cash gives change.
    let err = e.pay(card("A1"), Money(300)).unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::Overpayment { .. })),
        "{err:?}"
    );
    for amount in [0, -100, i64::MIN] {
        let err = e.pay(Tender::Cash, Money(amount)).unwrap_err();
        assert!(
            matches!(err, EngineError::Sale(SaleError::PaymentNotPositive)),
            "{err:?}"
        );
    }
    let bad_card = Tender::Card {
        approval_code: "A1".into(),
        last4: "12345".into(),
    };
    assert!(e.pay(bad_card, Money(100)).is_err());
    assert_eq!(e.ticket(), Some(&before));

    // Underpaid: complete refused, nothing numbered.
    let balance = e.pay(Tender::Cash, Money(100)).unwrap();
    assert_eq!(balance.remaining, Money(99));
    let events_before = business_events(e.store());
    let err = e.complete().unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Sale(SaleError::Underpaid {
                remaining: Money(99)
            })
        ),
        "{err:?}"
    );
    assert_eq!(e.store().next_receipt_number(device).unwrap(), 1);
    assert_eq!(business_events(e.store()), events_before);
    // Items are frozen once a payment is taken.
    let paid = e.ticket().cloned().unwrap();
    assert!(e.scan(BANANA_PLU).is_err());
    assert!(e.set_quantity(LineNo(1), Quantity::units(2)).is_err());
    assert_eq!(e.ticket(), Some(&paid));
    e.pay(Tender::Cash, Money(99)).unwrap();
    assert_eq!(e.complete().unwrap().number, 1);
    let err = e.pay(Tender::Cash, Money(100)).unwrap_err();
    assert!(matches!(err, EngineError::NoTicket), "{err:?}");

    // Payment in a closed shift: a ticket parked before the close cannot be paid after it.
    e.scan(COLA_EAN).unwrap();
    let id = e.park().unwrap();
    quick_sale(e);
    e.close_shift(Money(FLOAT.0 + 398), Some(c(SUPERVISOR)))
        .unwrap();
    let _ = e.resume(id); // taking it up again may or may not be allowed: paying is not
    let ticket = e.ticket().cloned();
    let err = e.pay(Tender::Cash, Money(199)).unwrap_err();
    assert!(matches!(err, EngineError::NoShift), "{err:?}");
    assert_eq!(e.ticket().cloned(), ticket);
    assert!(matches!(e.complete(), Err(EngineError::NoShift)));
    assert_eq!(e.store().next_receipt_number(device).unwrap(), 3);
}

#[test]
fn huge_amounts_are_refused_and_the_shift_still_closes() {
    let mut t = till_without_shift();
    let e = &mut t.engine;
    let overflow =
        |r: &Result<(), EngineError>| matches!(r, Err(EngineError::Sale(SaleError::Overflow)));
    assert!(e.open_shift(Money(-1)).is_err());
    assert!(overflow(&e.open_shift(Money(i64::MAX)).map(drop)));
    assert!(e.shift().unwrap().is_none());
    e.open_shift(FLOAT).unwrap();
    quick_sale(e);
    let before = e.x_report().unwrap();

    // Each absurd amount, had it been accepted, would make the shift's totals overflow: no X
    // report, and no Z report ever. It must be refused, and the report must still add up.
    let moves = [
        (true, i64::MAX, "float-top-up"),
        (false, i64::MAX, "petty-cash"),
        (true, i64::MAX / 2, "float-top-up"),
        (true, MAX_PRICE.0 + 1, "float-top-up"),
    ];
    for (paid_in, amount, reason) in moves {
        let r = e.cash_move(paid_in, Money(amount), Some(c(SUPERVISOR)), reason);
        let x = e.x_report();
        assert!(
            x.is_ok_and(|x| x.drawer.expected().is_ok()),
            "{amount}: the report broke"
        );
        assert!(overflow(&r), "{amount}: {r:?}");
    }
    for (paid_in, amount) in [(true, 0), (false, -5), (true, i64::MIN)] {
        let r = e.cash_move(paid_in, Money(amount), Some(c(SUPERVISOR)), "petty-cash");
        assert!(
            matches!(r, Err(EngineError::Sale(SaleError::AmountNotPositive))),
            "{amount}: {r:?}"
        );
    }
    // A mistyped cash amount (a barcode scanned into the amount field, say).
    e.scan(COLA_EAN).unwrap();
    let ticket = e.ticket().cloned();
    let paid = e.pay(Tender::Cash, Money(i64::MAX)).map(drop);
    if paid.is_ok() {
        e.complete().unwrap();
    }
    assert!(e.x_report().is_ok(), "a huge cash payment broke the report");
    assert!(overflow(&paid), "{paid:?}");
    assert_eq!(e.ticket().cloned(), ticket);
    // Generous change is fine.
    let b = e.pay(Tender::Cash, Money(199 + MAX_PRICE.0)).unwrap();
    assert_eq!(b.change, MAX_PRICE);
    e.complete().unwrap();

    let x = e.x_report().unwrap();
    assert_eq!(x.drawer.expected().unwrap(), Money(FLOAT.0 + 398));
    assert_eq!(x.paid_in, before.paid_in);
    assert_eq!(x.paid_out, before.paid_out);
    let z = e
        .close_shift(Money(FLOAT.0 + 398), Some(c(SUPERVISOR)))
        .unwrap();
    assert_eq!(z.over_short, Money::ZERO);
    e.store().verify().unwrap();
}

#[test]
fn logged_out_the_engine_refuses_every_command() {
    let mut t = till();
    let e = &mut t.engine;
    let receipt = quick_sale(e);
    e.scan(COLA_EAN).unwrap();
    let parked = e.park().unwrap();
    assert_eq!(e.logout().unwrap(), None);
    assert!(e.cashier().is_none());
    let events_before = business_events(e.store());
    let cola = stock(e, "cola");
    let mut product = support::catalogue().remove(0);
    product.sku = "cola2".into();
    product.barcodes.clear();

    let sam = c(SUPERVISOR);
    let maria = c(MANAGER);
    let line = LineNo(1);
    let results: Vec<(&str, Result<(), EngineError>)> = vec![
        ("open_shift", e.open_shift(FLOAT).map(drop)),
        ("scan", e.scan(COLA_EAN).map(drop)),
        ("add", e.add("cola", Quantity::ONE).map(drop)),
        ("resume", e.resume(parked)),
        ("set_quantity", e.set_quantity(line, Quantity::ONE)),
        ("void_line", e.void_line(line, sam, "scan-error")),
        ("discount", e.discount(None, Discount::Percent(100), None)),
        (
            "override_price",
            e.override_price(line, Money(1), sam, "price-match"),
        ),
        ("park", e.park().map(drop)),
        ("pay", e.pay(Tender::Cash, Money(100)).map(drop)),
        ("complete", e.complete().map(drop)),
        (
            "cash_move",
            e.cash_move(true, Money(100), Some(sam), "float-top-up"),
        ),
        ("no_sale", e.no_sale(Some(sam), "give-change")),
        ("x_report", e.x_report().map(drop)),
        ("close_shift", e.close_shift(FLOAT, Some(sam)).map(drop)),
        ("post_void", e.post_void(receipt, sam, "cashier-error")),
        (
            "refund",
            e.refund(
                receipt,
                &[refund_line(1, 1)],
                Tender::Cash,
                sam,
                "defective",
            )
            .map(drop),
        ),
        (
            "refund_without_receipt",
            e.refund_without_receipt(
                "cola",
                Quantity::ONE,
                Money(199),
                Tender::Cash,
                sam,
                "defective",
            )
            .map(drop),
        ),
        (
            "receive_stock",
            e.receive_stock("cola", Quantity::ONE, "DN-9", Some(maria)),
        ),
        (
            "adjust_stock",
            e.adjust_stock("cola", Quantity(-1000), maria, "damaged"),
        ),
        (
            "count_stock",
            e.count_stock("cola", Quantity(cola), maria).map(drop),
        ),
        (
            "count_stock (differs)",
            e.count_stock("cola", Quantity(cola - 1000), maria)
                .map(drop),
        ),
        ("save_product", e.save_product(product)),
        (
            "save_tax_rate",
            e.save_tax_rate(pos_core::sale::TaxRate {
                class: "zero".into(),
                name: "Zero".into(),
                rate_bp: 0,
            }),
        ),
    ];
    for (what, result) in results {
        assert!(
            matches!(result, Err(EngineError::NotLoggedIn)),
            "{what}: {result:?}"
        );
    }
    assert!(e.ticket().is_none());
    assert_eq!(e.parked().unwrap().len(), 1);
    assert_eq!(business_events(e.store()), events_before);
    assert_eq!(stock(e, "cola"), cola);
    // Reading a receipt back needs no login (the customer asks for a copy at the door).
    assert!(e.receipt(receipt, true).unwrap().copy);
}

#[test]
fn only_sellers_take_over_a_ticket_or_sell() {
    let mut t = till();
    t.engine.scan(COLA_EAN).unwrap();
    let id = t.engine.park().unwrap();
    t.engine.logout().unwrap();
    let events_before = business_events(t.engine.store());

    // An accountant (no `sell`) and a user who is both admin and cashier (admins never touch
    // sales): neither may pick up the parked ticket or start one.
    let manager = t.manager();
    add_user(
        t.engine.store_mut(),
        &manager,
        ("anna", "Quartz-Meadow-Pelican-58"),
        "accountant",
    );
    let admin = t.admin();
    let p = policy();
    let (_, one_time) = t
        .engine
        .store_mut()
        .add_user(&admin, "carl", "Carl", &["admin".into(), "cashier".into()])
        .unwrap();
    let carl_totp = t
        .engine
        .store_mut()
        .change_secret("carl", &one_time, "Juniper-Cobalt-Ember-44", None, &p)
        .unwrap()
        .unwrap();

    t.engine
        .login(Credentials::new("anna", "Quartz-Meadow-Pelican-58"))
        .unwrap();
    let err = t.engine.resume(id).unwrap_err();
    assert_eq!(
        denied(&err),
        Some(&Denial::MissingPermission(Permission::Sell)),
        "{err:?}"
    );
    assert!(t.engine.scan(COLA_EAN).is_err());
    assert!(t.engine.ticket().is_none());
    t.engine.logout().unwrap();

    let code = pos_auth::totp_code(&carl_totp, unix_s());
    t.engine
        .login(Credentials {
            name: "carl",
            secret: "Juniper-Cobalt-Ember-44",
            totp: Some(&code),
        })
        .unwrap();
    let err = t.engine.scan(COLA_EAN).unwrap_err();
    assert_eq!(
        denied(&err),
        Some(&Denial::AdminsCannotTouchSales),
        "{err:?}"
    );
    let err = t.engine.resume(id).unwrap_err();
    assert_eq!(
        denied(&err),
        Some(&Denial::AdminsCannotTouchSales),
        "{err:?}"
    );
    assert!(t.engine.ticket().is_none());
    assert_eq!(t.engine.parked().unwrap().len(), 1);
    assert_eq!(business_events(t.engine.store()), events_before);
}

#[test]
fn stock_is_the_sum_of_receipts_sales_adjustments_and_counts() {
    let mut t = till();
    let users = t.users;
    let admin = t.admin();
    let mike = add_user(
        t.engine.store_mut(),
        &admin,
        ("mike", "Walnut-Glacier-Sonnet-27"),
        "manager",
    );
    let mike_c = Credentials::new("mike", "Walnut-Glacier-Sonnet-27");
    let start = STOCK_UNITS * 1000;
    quick_sale(&mut t.engine);
    // A cashier cannot receive goods.
    assert!(t
        .engine
        .receive_stock("cola", Quantity::units(10), "DN-2", None)
        .is_err());

    t.switch_to(MANAGER);
    let e = &mut t.engine;
    e.receive_stock("cola", Quantity::units(10), "DN-2", None)
        .unwrap();
    assert_eq!(stock(e, "cola"), start - 1000 + 10_000);
    for qty in [0, -1000] {
        assert!(e
            .receive_stock("cola", Quantity(qty), "DN-3", None)
            .is_err());
    }
    assert!(e
        .receive_stock("nope", Quantity::ONE, "DN-3", None)
        .is_err());

    // Adjustments: a second manager and a listed reason.
    let err = e
        .adjust_stock("cola", Quantity(-2000), c(MANAGER), "damaged")
        .unwrap_err();
    assert_eq!(denied(&err), Some(&Denial::SelfApproval), "{err:?}");
    let err = e
        .adjust_stock("cola", Quantity(-2000), c(SUPERVISOR), "damaged")
        .unwrap_err();
    assert!(denied(&err).is_some(), "{err:?}");
    assert!(e
        .adjust_stock("cola", Quantity(-2000), mike_c, "oops")
        .is_err());
    assert!(e
        .adjust_stock("cola", Quantity(0), mike_c, "damaged")
        .is_err());
    e.adjust_stock("cola", Quantity(-2000), mike_c, "damaged")
        .unwrap();
    assert_eq!(stock(e, "cola"), start - 1000 + 10_000 - 2000);

    // A count records the difference to what was counted.
    let delta = e.count_stock("cola", Quantity::units(50), mike_c).unwrap();
    assert_eq!(delta, Quantity(50_000 - (start + 7000)));
    assert_eq!(stock(e, "cola"), 50_000);
    assert_eq!(
        e.count_stock("cola", Quantity::units(50), mike_c).unwrap(),
        Quantity::ZERO
    );

    let moves: Vec<(pos_audit::Event, StockMoved)> = events(e.store(), "stock.moved")
        .into_iter()
        .map(|ev| {
            let p: StockMoved = payload(&ev);
            (ev, p)
        })
        .filter(|(_, p)| p.item == "cola")
        .collect();
    let sum: i64 = moves.iter().map(|(_, p)| p.quantity).sum();
    assert_eq!(sum, 50_000);
    let (count_event, _) = moves
        .iter()
        .find(|(_, p)| p.cause == Some(StockCause::Count))
        .unwrap();
    assert_eq!(count_event.actor, Some(users.manager));
    assert_eq!(count_event.approver, Some(mike));
    let (adjust_event, _) = moves
        .iter()
        .find(|(_, p)| p.cause == Some(StockCause::Adjustment))
        .unwrap();
    assert_eq!(adjust_event.reason.as_deref(), Some("damaged"));
    e.store().verify().unwrap();
}

#[test]
fn a_negative_blind_count_is_refused_and_the_shift_stays_open() {
    let mut t = till();
    let e = &mut t.engine;
    let err = e.close_shift(Money(-1), Some(c(SUPERVISOR))).unwrap_err();
    assert!(
        matches!(err, EngineError::Sale(SaleError::NegativeCount)),
        "{err:?}"
    );
    assert!(e.shift().unwrap().is_some());
}

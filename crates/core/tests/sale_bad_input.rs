//! Bad input on the sale engine's rules: clear errors, the ticket unchanged, no panic.
#![allow(clippy::unwrap_used)]

mod common;

use common::{product, ticket};
use pos_core::sale::catalogue::MAX_PRICE;
use pos_core::sale::ticket::MAX_LINE_QTY;
use pos_core::sale::{
    line_amount, parse_barcode, BarcodeError, BarcodeRules, CashDrawer, CashRounding, Discount,
    LineNo, Money, PricingMode, Quantity, ReasonCodes, ReasonKind, RefundLine, RefundPlan,
    RefundRequest, Refundable, SaleError, SaleFact, Scanned, ShiftReport, Tender, Ticket, Unit,
};

fn pay_exact(t: &mut Ticket) {
    let due = t.totals().unwrap().due;
    t.add_payment(Tender::Cash, due).unwrap();
}

/// Runs `action` and checks it failed with `expected` and left the ticket as it was.
fn refused<T: std::fmt::Debug>(
    t: &mut Ticket,
    expected: SaleError,
    action: impl FnOnce(&mut Ticket) -> Result<T, SaleError>,
) {
    let before = t.clone();
    let result = action(t);
    assert_eq!(result.unwrap_err(), expected);
    assert_eq!(*t, before, "a refused action changed the ticket");
}

#[test]
fn cashier_messages() {
    let rules = BarcodeRules::default();
    assert_eq!(
        SaleError::UnknownBarcode("4006381333931".into()).to_string(),
        "unknown barcode 4006381333931"
    );
    let err = SaleError::from(parse_barcode("4006381333938", &rules).unwrap_err());
    assert_eq!(err.to_string(), "check digit wrong: expected 1, found 8");
    assert_eq!(parse_barcode("", &rules), Err(BarcodeError::Empty));
    assert_eq!(
        parse_barcode("12ab5678", &rules),
        Err(BarcodeError::NotDigits)
    );
    assert_eq!(
        parse_barcode("123456789", &rules),
        Err(BarcodeError::BadLength(9))
    );
    assert_eq!(
        SaleError::Underpaid {
            remaining: Money(250)
        }
        .to_string(),
        "2.50 still to pay"
    );
}

#[test]
fn quantities_out_of_range_are_refused() {
    let mut t = ticket(PricingMode::Inclusive);
    let tea = product(1, "Tea", Unit::Each, 250, "A");
    let cheese = product(2, "Cheese", Unit::Kg, 1990, "B");
    refused(&mut t, SaleError::QuantityNotPositive, |t| {
        t.add_item(&tea, Quantity(0), None)
    });
    refused(&mut t, SaleError::QuantityNotPositive, |t| {
        t.add_item(&tea, Quantity(-1000), None)
    });
    refused(
        &mut t,
        SaleError::QuantityTooLarge {
            qty: Quantity(i64::MAX),
            max: MAX_LINE_QTY,
        },
        |t| t.add_item(&tea, Quantity(i64::MAX), None),
    );
    refused(&mut t, SaleError::WholeUnitsOnly("Tea".into()), |t| {
        t.add_item(&tea, Quantity(1500), None)
    });
    assert!(t.add_item(&cheese, Quantity(1), None).is_ok());
    let line = t.add_item(&tea, MAX_LINE_QTY, None).unwrap();
    refused(&mut t, SaleError::QuantityNotPositive, |t| {
        t.set_quantity(line, Quantity(-5))
    });
    assert_eq!(
        SaleError::QuantityTooLarge {
            qty: Quantity(10_000_001),
            max: MAX_LINE_QTY
        }
        .to_string(),
        "quantity 10000.001 is too large: at most 10000 per line"
    );
}

#[test]
fn prices_out_of_range_are_refused() {
    let mut t = ticket(PricingMode::Inclusive);
    let tea = product(1, "Tea", Unit::Each, 250, "A");
    let out = |price| SaleError::PriceOutOfRange {
        price: Money(price),
        max: MAX_PRICE,
    };
    refused(&mut t, out(-1), |t| {
        t.add_item(&tea, Quantity::ONE, Some(Money(-1)))
    });
    refused(&mut t, out(i64::MAX), |t| {
        t.add_item(&tea, Quantity::ONE, Some(Money(i64::MAX)))
    });
    let line = t.add_item(&tea, Quantity::ONE, None).unwrap();
    refused(&mut t, out(MAX_PRICE.0 + 1), |t| {
        t.override_price(line, Money(MAX_PRICE.0 + 1))
    });
    let broken = product(2, "Broken", Unit::Each, -5, "A");
    refused(&mut t, out(-5), |t| {
        t.add_item(&broken, Quantity::ONE, None)
    });
}

#[test]
fn products_the_ticket_cannot_take() {
    let mut t = ticket(PricingMode::Inclusive);
    let mut old = product(1, "Old tea", Unit::Each, 250, "A");
    old.active = false;
    refused(&mut t, SaleError::ProductInactive("Old tea".into()), |t| {
        t.add_item(&old, Quantity::ONE, None)
    });
    let odd = product(2, "Odd", Unit::Each, 250, "Q");
    refused(&mut t, SaleError::UnknownTaxClass("Q".into()), |t| {
        t.add_item(&odd, Quantity::ONE, None)
    });
    let cheese = product(3, "Cheese", Unit::Kg, 1990, "B");
    let tea = product(4, "Tea", Unit::Each, 250, "A");
    refused(&mut t, SaleError::NeedsWeight("Cheese".into()), |t| {
        t.add_scanned(&cheese, &Scanned::Gtin("4006381333931".into()))
    });
    let weight = Scanned::WeightEmbedded {
        item: "00004".into(),
        quantity: Quantity(500),
    };
    refused(&mut t, SaleError::NotSoldByWeight("Tea".into()), |t| {
        t.add_scanned(&tea, &weight)
    });
    let zero = Scanned::WeightEmbedded {
        item: "00003".into(),
        quantity: Quantity(0),
    };
    refused(&mut t, SaleError::QuantityNotPositive, |t| {
        t.add_scanned(&cheese, &zero)
    });
    let free_cheese = product(5, "Free cheese", Unit::Kg, 0, "B");
    let label = Scanned::PriceEmbedded {
        item: "00005".into(),
        price: Money(300),
    };
    refused(
        &mut t,
        SaleError::CannotDeriveWeight("Free cheese".into()),
        |t| t.add_scanned(&free_cheese, &label),
    );
    let line = t.add_scanned(&cheese, &label).unwrap();
    refused(&mut t, SaleError::LabelPriced(line), |t| {
        t.set_quantity(line, Quantity(100))
    });
    refused(&mut t, SaleError::UnknownLine(LineNo(9)), |t| {
        t.void_line(LineNo(9))
    });
    refused(&mut t, SaleError::UnknownLine(LineNo(0)), |t| {
        t.void_line(LineNo(0))
    });
    t.void_line(line).unwrap();
    refused(&mut t, SaleError::LineVoided(line), |t| t.void_line(line));
}

#[test]
fn discounts_never_go_below_zero() {
    let mut t = ticket(PricingMode::Inclusive);
    let tea = product(1, "Tea", Unit::Each, 250, "A");
    let line = t.add_item(&tea, Quantity::ONE, None).unwrap();
    refused(&mut t, SaleError::PercentTooLarge, |t| {
        t.line_discount(line, Discount::Percent(10_001))
    });
    refused(&mut t, SaleError::NegativeDiscount, |t| {
        t.line_discount(line, Discount::Amount(Money(-1)))
    });
    refused(
        &mut t,
        SaleError::DiscountTooLarge {
            discount: Money(251),
            base: Money(250),
        },
        |t| t.line_discount(line, Discount::Amount(Money(251))),
    );
    t.line_discount(line, Discount::Amount(Money(200))).unwrap();
    refused(
        &mut t,
        SaleError::DiscountTooLarge {
            discount: Money(51),
            base: Money(50),
        },
        |t| t.ticket_discount(Discount::Amount(Money(51))),
    );
    t.ticket_discount(Discount::Amount(Money(50))).unwrap();
    assert_eq!(t.totals().unwrap().total, Money::ZERO);
    // Lowering the price later caps the discounts at what is left: never negative.
    t.override_price(line, Money(100)).unwrap();
    let totals = t.totals().unwrap();
    assert_eq!(totals.total, Money::ZERO);
    assert_eq!(totals.discounts, Money(100));
    // A zero-total ticket completes without payment.
    let sale = t.complete(&CashRounding::default()).unwrap();
    assert_eq!(sale.totals.due, Money::ZERO);
}

#[test]
fn payments_are_checked() {
    let mut t = ticket(PricingMode::Inclusive);
    refused(&mut t, SaleError::TicketEmpty, |t| {
        t.add_payment(Tender::Cash, Money(100))
    });
    refused(&mut t, SaleError::TicketEmpty, |t| {
        t.complete(&CashRounding::default())
    });
    let tea = product(1, "Tea", Unit::Each, 250, "A");
    t.add_item(&tea, Quantity::ONE, None).unwrap();
    let card = |last4: &str| Tender::Card {
        approval_code: "OK42".into(),
        last4: last4.into(),
    };
    refused(&mut t, SaleError::PaymentNotPositive, |t| {
        t.add_payment(Tender::Cash, Money(0))
    });
    refused(
        &mut t,
        SaleError::InvalidTender("the card's last digits must be exactly 4 digits".into()),
        |t| t.add_payment(card("12a4"), Money(100)),
    );
    refused(
        &mut t,
        SaleError::Overpayment {
            tender: "Card ****1234".into(),
            remaining: Money(250),
        },
        |t| t.add_payment(card("1234"), Money(251)),
    );
    t.add_payment(card("1234"), Money(100)).unwrap();
    refused(
        &mut t,
        SaleError::Underpaid {
            remaining: Money(150),
        },
        |t| t.complete(&CashRounding::default()),
    );
    refused(&mut t, SaleError::PaymentsStarted, |t| {
        t.add_item(&tea, Quantity::ONE, None)
    });
    refused(&mut t, SaleError::PaymentsStarted, |t| {
        t.void_line(LineNo(1))
    });
    refused(&mut t, SaleError::UnknownPayment(3), |t| {
        t.remove_payment(3)
    });
    t.add_payment(Tender::Cash, Money(1000)).unwrap();
    refused(&mut t, SaleError::NothingDue, |t| {
        t.add_payment(Tender::Cash, Money(1))
    });
    let sale = t.complete(&CashRounding::default()).unwrap();
    assert_eq!(sale.change, Money(850));
    assert_eq!(sale.cash_in_drawer(), Ok(Money(150)));
}

#[test]
fn overflow_is_an_error_not_a_wrap() {
    assert_eq!(
        line_amount(Money(i64::MAX), Quantity(2000)),
        Err(SaleError::Overflow)
    );
    assert_eq!(
        Money::sum([Money(i64::MAX), Money(1)]),
        Err(SaleError::Overflow)
    );
    assert_eq!(Money(i64::MIN).checked_neg(), Err(SaleError::Overflow));
    let drawer = CashDrawer {
        float: Money(i64::MAX),
        paid_in: Money(1),
        ..CashDrawer::default()
    };
    assert_eq!(drawer.expected(), Err(SaleError::Overflow));
    let report = ShiftReport::default()
        .apply(&SaleFact::PaidIn(Money(i64::MAX)))
        .unwrap();
    assert_eq!(
        report.apply(&SaleFact::PaidIn(Money(1))),
        Err(SaleError::Overflow)
    );

    // A parked ticket tampered with on disk: errors, no panic.
    let mut t = ticket(PricingMode::Exclusive);
    t.add_item(
        &product(1, "Tea", Unit::Each, 250, "A"),
        Quantity::ONE,
        None,
    )
    .unwrap();
    let mut json = serde_json::to_value(&t).unwrap();
    json["lines"][0]["unit_price"] = serde_json::json!(i64::MAX);
    json["lines"][0]["qty"] = serde_json::json!(3000);
    let mut bad: Ticket = serde_json::from_value(json).unwrap();
    assert_eq!(bad.totals(), Err(SaleError::Overflow));
    assert_eq!(
        bad.add_payment(Tender::Cash, Money(1)),
        Err(SaleError::Overflow)
    );
    assert_eq!(
        bad.complete(&CashRounding::default()),
        Err(SaleError::Overflow)
    );
    let tea = product(2, "Tea", Unit::Each, 250, "A");
    assert_eq!(
        bad.add_item(&tea, Quantity::ONE, None),
        Err(SaleError::Overflow)
    );
}

#[test]
fn a_ticket_at_its_limits_still_adds_up() {
    let mut t = ticket(PricingMode::Exclusive);
    let gold = product(1, "Gold", Unit::Each, MAX_PRICE.0, "A");
    for _ in 0..pos_core::sale::ticket::MAX_LINES {
        t.add_item(&gold, MAX_LINE_QTY, None).unwrap();
    }
    assert_eq!(
        t.add_item(&gold, Quantity::ONE, None),
        Err(SaleError::TooManyLines(500))
    );
    let totals = t.totals().unwrap();
    assert_eq!(totals.total, Money(MAX_PRICE.0 * 10_000 * 500));
    assert_eq!(totals.due, Money(MAX_PRICE.0 * 10_000 * 500 / 10 * 12));
}

#[test]
fn refunds_of_more_than_was_sold_are_refused() {
    let mut t = ticket(PricingMode::Inclusive);
    let tea = product(1, "Tea", Unit::Each, 333, "A");
    let cap = product(2, "Cap", Unit::Each, 500, "A");
    let line = t.add_item(&tea, Quantity::units(3), None).unwrap();
    let voided = t.add_item(&cap, Quantity::ONE, None).unwrap();
    t.void_line(voided).unwrap();
    t.ticket_discount(Discount::Amount(Money(100))).unwrap();
    pay_exact(&mut t);
    let sale = t.complete(&CashRounding::default()).unwrap();
    assert_eq!(sale.totals.due, Money(899));

    let none = Refundable::new(&sale, &[]).unwrap();
    let ask = |qty: i64| RefundRequest {
        line,
        qty: Quantity::units(qty),
    };
    let err = none.check_refund(&[ask(4)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 1: cannot refund 4, only 3 left to refund"
    );
    assert_eq!(none.check_refund(&[]), Err(SaleError::NothingToRefund));
    assert_eq!(
        none.check_refund(&[RefundRequest {
            line: voided,
            qty: Quantity::ONE
        }]),
        Err(SaleError::LineVoided(voided))
    );
    assert_eq!(
        none.check_refund(&[ask(2), ask(2)]).unwrap_err(),
        SaleError::RefundExceedsSale {
            line,
            requested: Quantity::units(2),
            left: Quantity::units(1)
        }
    );
    // One at a time, cumulatively rounded: round(8.99 × 1/3) = 3.00, round(8.99 × 2/3) = 5.99,
    // then the remainder: 3.00, 2.99, 3.00.
    let mut records: Vec<RefundLine> = Vec::new();
    for expected in [300, 299, 300] {
        let plan = Refundable::new(&sale, &records)
            .unwrap()
            .check_refund(&[ask(1)])
            .unwrap();
        assert_eq!(plan.total, Money(expected));
        records.extend(plan.records());
    }
    let done = Refundable::new(&sale, &records).unwrap();
    assert_eq!(done.left(line), Ok((Quantity::ZERO, Money::ZERO)));
    assert!(done.check_refund(&[ask(1)]).is_err());
    let forged = [RefundLine {
        line,
        qty: Quantity::ONE,
        amount: Money(10_000),
    }];
    assert_eq!(
        Refundable::new(&sale, &forged).unwrap_err(),
        SaleError::RefundRecordsExceedSale(line)
    );

    let rates = common::rates();
    let plan = RefundPlan::without_receipt(
        &tea,
        Quantity::ONE,
        Money(333),
        &rates,
        PricingMode::Inclusive,
    )
    .unwrap();
    assert_eq!((plan.total, plan.lines[0].tax), (Money(333), Money(56)));
    assert!(plan.records().is_empty());
    assert_eq!(
        RefundPlan::without_receipt(
            &tea,
            Quantity(0),
            Money(333),
            &rates,
            PricingMode::Inclusive
        ),
        Err(SaleError::QuantityNotPositive)
    );
}

#[test]
fn reasons_must_come_from_the_list() {
    let codes = ReasonCodes::default();
    assert!(codes.require(ReasonKind::Refund, "defective").is_ok());
    assert_eq!(
        codes.require(ReasonKind::Void, "").unwrap_err().to_string(),
        "a void reason is required: use one of scan-error, customer-changed-mind, damaged"
    );
    let partial: ReasonCodes = serde_json::from_str(r#"{"void": ["oops"]}"#).unwrap();
    assert!(partial.require(ReasonKind::Void, "oops").is_ok());
    assert!(partial.require(ReasonKind::Refund, "defective").is_ok());
}

#[test]
fn product_validation() {
    let rules = BarcodeRules::default();
    let mut p = product(1, "Tea", Unit::Each, 250, "A");
    p.barcodes = vec!["4006381333931".into(), "4011".into()];
    assert_eq!(p.validate(&rules), Ok(()));
    assert_eq!(
        p.barcode_keys(&rules).unwrap(),
        vec!["4006381333931".to_owned(), "4011".to_owned()]
    );
    let invalid = |p: &pos_core::sale::Product| match p.validate(&rules) {
        Err(SaleError::InvalidProduct(why)) => why,
        other => panic!("{other:?}"),
    };
    let mut bad = p.clone();
    bad.name = " ".into();
    assert_eq!(invalid(&bad), "the name is empty");
    bad.name = "x".repeat(81);
    assert_eq!(invalid(&bad), "the name is longer than 80 characters");
    bad.name = "é".repeat(80);
    assert_eq!(bad.validate(&rules), Ok(()));
    let mut bad = p.clone();
    bad.barcodes.push("4006381333932".into());
    assert_eq!(
        invalid(&bad),
        "barcode 4006381333932: check digit wrong: expected 1, found 2"
    );
    let mut bad = p.clone();
    bad.barcodes = vec!["036000291452".into(), "0036000291452".into()];
    assert_eq!(invalid(&bad), "barcode 0036000291452 is listed twice");
    let mut bad = p.clone();
    let body = "220004200399";
    let label = format!(
        "{body}{}",
        pos_core::sale::barcode::check_digit(body).unwrap()
    );
    bad.barcodes = vec![label.clone()];
    assert_eq!(
        invalid(&bad),
        format!("barcode {label} is a scale-label code, not a product barcode")
    );
    let mut bad = p.clone();
    bad.price = Money(MAX_PRICE.0 + 1);
    assert!(matches!(
        bad.validate(&rules),
        Err(SaleError::PriceOutOfRange { .. })
    ));
    // The catalogue payload reads back what it wrote and refuses unknown fields.
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(
        serde_json::from_str::<pos_core::sale::Product>(&json).unwrap(),
        p
    );
    let extra = json.replace("\"active\"", "\"colour\":\"red\",\"active\"");
    assert!(serde_json::from_str::<pos_core::sale::Product>(&extra).is_err());
}

#[test]
fn price_label_on_a_piece_is_its_price() {
    let mut t = ticket(PricingMode::Inclusive);
    let cake = product(1, "Cake", Unit::Each, 400, "A");
    let label = Scanned::PriceEmbedded {
        item: "00001".into(),
        price: Money(379),
    };
    let line = t.add_scanned(&cake, &label).unwrap();
    let l = t.line(line).unwrap();
    assert_eq!(
        (l.qty, l.unit_price, l.amount()),
        (Quantity::ONE, Money(379), Ok(Money(379)))
    );
    assert!(!l.price_overridden);
    refused(&mut t, SaleError::LabelPriced(line), |t| {
        t.override_price(line, Money(100))
    });
    refused(
        &mut t,
        SaleError::InvalidTender(
            "cash, card and voucher are tenders of their own, not other tenders".into(),
        ),
        |t| {
            t.add_payment(
                Tender::Other {
                    name: "Cash".into(),
                },
                Money(100),
            )
        },
    );
}

#[test]
fn parked_ticket_resumes_identically() {
    let mut t = ticket(PricingMode::Inclusive);
    let tea = product(1, "Tea", Unit::Each, 250, "A");
    let line = t.add_item(&tea, Quantity::units(2), None).unwrap();
    t.line_discount(line, Discount::Percent(1500)).unwrap();
    let parked = serde_json::to_string(&t).unwrap();
    let resumed: Ticket = serde_json::from_str(&parked).unwrap();
    assert_eq!(resumed, t);
    assert_eq!(resumed.totals(), t.totals());
}

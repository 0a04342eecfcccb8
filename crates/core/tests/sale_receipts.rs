//! Golden tests of receipts rendered as plain text. The expected files in `tests/golden` were
//! checked by eye; rerun with `UPDATE_GOLDEN=1` only after a deliberate layout change, and
//! review the diff.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::{product, ticket};
use pos_core::sale::barcode::check_digit;
use pos_core::sale::{
    parse_barcode, qr_payload, BarcodeRules, CashRounding, CompletedSale, Currency, Discount,
    Money, PricingMode, Quantity, Receipt, SaleError, Tender, Unit,
};

const DEVICE: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const HASH: &str = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a1c3e5b7d9f0a2c4e6b8d0f";

fn receipt(number: u64, sale: CompletedSale, copy: bool) -> Receipt {
    Receipt {
        header: vec![
            "Corner Shop".into(),
            "1 Market Street, Springfield".into(),
            "VAT no. GB123456789".into(),
        ],
        terminal: "T1".into(),
        cashier: "Ann".into(),
        number,
        time: "2026-05-01 14:03".into(),
        sale,
        footer: vec![
            "Thank you!".into(),
            "Returns within 30 days with this receipt".into(),
        ],
        qr: qr_payload(DEVICE, number, HASH),
        copy,
        currency: Currency::default(),
    }
}

fn label(body: &str) -> String {
    format!("{body}{}", check_digit(body).unwrap())
}

fn check(name: &str, receipt: &Receipt, width: usize) {
    let text = receipt.render_text(width).unwrap();
    for row in text.lines() {
        assert!(row.chars().count() <= width, "row too wide: {row:?}");
        assert_eq!(row, row.trim_end(), "trailing spaces: {row:?}");
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}\nrendered:\n{text}", path.display()));
    assert_eq!(text, expected, "{name} differs from its golden file");
}

/// 58 mm paper: pieces, a weight label, cash with change.
#[test]
fn weight_item_and_cash_change() {
    let rules = BarcodeRules::default();
    let mut t = ticket(PricingMode::Inclusive);
    let milk = product(1, "Milk 1L", Unit::Each, 119, "B");
    let bananas = product(2, "Bananas", Unit::Kg, 199, "B");
    let batteries = product(3, "Batteries AA 4-pack", Unit::Each, 549, "A");
    let line = t
        .add_scanned(&milk, &parse_barcode("4006381333931", &rules).unwrap())
        .unwrap();
    t.set_quantity(line, Quantity::units(2)).unwrap();
    let scan = parse_barcode(&label("210004201234"), &rules).unwrap();
    t.add_scanned(&bananas, &scan).unwrap();
    t.add_item(&batteries, Quantity::ONE, None).unwrap();
    t.add_payment(Tender::Cash, Money(2000)).unwrap();
    let sale = t.complete(&CashRounding::default()).unwrap();
    assert_eq!(sale.totals.due, Money(238 + 246 + 549));
    check("weight_item_and_cash_change", &receipt(41, sale, false), 32);
}

/// 80 mm paper: line discounts (percent and amount), a price override, a ticket discount spread
/// over the lines, a long name, a card payment.
#[test]
fn discounts_override_and_card() {
    let mut t = ticket(PricingMode::Inclusive);
    let coffee = product(1, "Coffee beans 1 kg", Unit::Each, 1599, "B");
    let cheese = product(2, "Comte 18 months", Unit::Each, 689, "B");
    let oil = product(
        3,
        "Extra virgin olive oil, cold pressed, first harvest, 750 ml bottle",
        Unit::Each,
        1249,
        "B",
    );
    let wine = product(4, "Cotes du Rhone 2022", Unit::Each, 999, "A");
    let a = t.add_item(&coffee, Quantity::ONE, None).unwrap();
    let b = t.add_item(&cheese, Quantity::ONE, None).unwrap();
    t.add_item(&oil, Quantity::units(2), None).unwrap();
    let d = t.add_item(&wine, Quantity::ONE, None).unwrap();
    t.line_discount(a, Discount::Percent(1000)).unwrap();
    t.line_discount(b, Discount::Amount(Money(50))).unwrap();
    t.override_price(d, Money(899)).unwrap();
    t.ticket_discount(Discount::Percent(500)).unwrap();
    let due = t.totals().unwrap().due;
    t.add_payment(
        Tender::Card {
            approval_code: "A1B2C3".into(),
            last4: "4242".into(),
        },
        due,
    )
    .unwrap();
    let sale = t.complete(&CashRounding::default()).unwrap();
    check("discounts_override_and_card", &receipt(42, sale, false), 48);
}

/// A reprint (COPY) of a ticket with a voided line, paid by voucher, card and cash with cash
/// rounding to 0.05 and change.
#[test]
fn void_split_payment_rounding_copy() {
    let mut t = ticket(PricingMode::Inclusive);
    let shirt = product(1, "T-shirt navy M", Unit::Each, 1499, "A");
    let socks = product(2, "Socks 3 pairs", Unit::Each, 899, "A");
    let cap = product(3, "Cap", Unit::Each, 1240, "A");
    t.add_item(&shirt, Quantity::ONE, None).unwrap();
    let v = t.add_item(&cap, Quantity::ONE, None).unwrap();
    t.add_item(&socks, Quantity::units(2), None).unwrap();
    t.void_line(v).unwrap();
    t.add_payment(
        Tender::Voucher {
            code: "GIFT-2026-0042".into(),
        },
        Money(500),
    )
    .unwrap();
    t.add_payment(
        Tender::Card {
            approval_code: "774411".into(),
            last4: "0005".into(),
        },
        Money(1000),
    )
    .unwrap();
    t.add_payment(Tender::Cash, Money(2000)).unwrap();
    let rounding = CashRounding { step: Money(5) };
    let balance = t.balance(&rounding).unwrap();
    assert_eq!(balance.rounding, Money(-2));
    let sale = t.complete(&rounding).unwrap();
    check(
        "void_split_payment_rounding_copy",
        &receipt(43, sale, true),
        32,
    );
}

/// The narrowest paper, tax-exclusive prices, a price label on a weighed product, a name with
/// one very long word, a free item (100% off), and another tender.
#[test]
fn exclusive_narrow_label_and_other_tender() {
    let rules = BarcodeRules::default();
    let mut t = ticket(PricingMode::Exclusive);
    let ham = product(1, "Ham", Unit::Kg, 2490, "B");
    let cable = product(
        2,
        "USB-C cable SuperLongProductNameWithoutSpaces 2m",
        Unit::Each,
        1290,
        "A",
    );
    let bag = product(3, "Bag", Unit::Each, 10, "Z");
    let scan = parse_barcode(&label("220004200749"), &rules).unwrap();
    assert!(matches!(
        scan,
        pos_core::sale::Scanned::PriceEmbedded { .. }
    ));
    t.add_scanned(&ham, &scan).unwrap();
    t.add_item(&cable, Quantity::units(3), None).unwrap();
    let free = t.add_item(&bag, Quantity::ONE, None).unwrap();
    t.line_discount(free, Discount::Percent(10_000)).unwrap();
    let due = t.totals().unwrap().due;
    t.add_payment(
        Tender::Other {
            name: "Account".into(),
        },
        due,
    )
    .unwrap();
    let sale = t.complete(&CashRounding::default()).unwrap();
    check(
        "exclusive_narrow_label_and_other_tender",
        &receipt(44, sale, false),
        24,
    );
}

#[test]
fn width_outside_24_to_200_is_refused() {
    let mut t = ticket(PricingMode::Inclusive);
    t.add_item(
        &product(1, "Tea", Unit::Each, 100, "A"),
        Quantity::ONE,
        None,
    )
    .unwrap();
    t.add_payment(Tender::Cash, Money(100)).unwrap();
    let r = receipt(1, t.complete(&CashRounding::default()).unwrap(), false);
    assert_eq!(r.render_text(23), Err(SaleError::ReceiptWidth(23)));
    assert_eq!(r.render_text(201), Err(SaleError::ReceiptWidth(201)));
    assert!(r.render_text(24).is_ok());
    assert!(r.render_text(200).is_ok());
}

#[test]
fn control_characters_cannot_reach_the_printer() {
    let mut t = ticket(PricingMode::Inclusive);
    let evil = product(1, "Tea\x1b@\x1dV\x00cut", Unit::Each, 100, "A");
    t.add_item(&evil, Quantity::ONE, None).unwrap();
    t.add_payment(Tender::Cash, Money(100)).unwrap();
    let text = receipt(1, t.complete(&CashRounding::default()).unwrap(), false)
        .render_text(32)
        .unwrap();
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'));
}

#[test]
fn qr_payload_format() {
    assert_eq!(qr_payload("dev", 7, "abcd"), "3PPOS1:dev:7:abcd");
}

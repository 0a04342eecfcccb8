//! Property tests of the sale engine's rules, as the issue lists them: ticket total = lines −
//! discounts; tax per rate = the documented per-line rounding (recomputed here independently);
//! refunds never exceed sales and refunding everything gives the sale total; the drawer's
//! expected cash; barcodes round-trip, single-digit errors are caught, parsing never panics.
#![allow(clippy::unwrap_used)]

mod common;

use common::{product, rates, round_div, ticket};
use pos_core::sale::barcode::check_digit;
use pos_core::sale::{
    parse_barcode, BarcodeError, BarcodeRules, CashDrawer, CashRounding, CompletedSale, Discount,
    Money, PricingMode, Quantity, RefundLine, RefundRequest, Refundable, SaleError, SaleFact,
    Scanned, ShiftReport, Tender, Unit,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct LineSpec {
    unit: Unit,
    price: i64,
    class: usize,
    qty: i64,
    discount: Option<(bool, u32)>,
    void: bool,
}

fn line_spec() -> impl Strategy<Value = LineSpec> {
    (
        any::<bool>(),
        0i64..200_000,
        0usize..3,
        1i64..5_000,
        proptest::option::of((any::<bool>(), 0u32..=10_000)),
        proptest::bool::weighted(0.15),
    )
        .prop_map(|(kg, price, class, qty, discount, void)| LineSpec {
            unit: if kg { Unit::Kg } else { Unit::Each },
            price,
            class,
            // Pieces: 1 to 20; weight: 1 g to 5 kg.
            qty: if kg { qty } else { (qty % 20 + 1) * 1000 },
            discount,
            void,
        })
}

#[derive(Debug, Clone)]
struct TicketSpec {
    mode: PricingMode,
    lines: Vec<LineSpec>,
    ticket_discount: Option<(bool, u32)>,
}

fn ticket_spec() -> impl Strategy<Value = TicketSpec> {
    (
        any::<bool>(),
        proptest::collection::vec(line_spec(), 1..12),
        proptest::option::of((any::<bool>(), 0u32..=10_000)),
    )
        .prop_map(|(exclusive, lines, ticket_discount)| TicketSpec {
            mode: if exclusive {
                PricingMode::Exclusive
            } else {
                PricingMode::Inclusive
            },
            lines,
            ticket_discount,
        })
}

/// A discount spec as a percent, or as an amount of at most `base` (scaled from the bp).
fn discount(spec: (bool, u32), base: Money) -> Discount {
    match spec {
        (true, bp) => Discount::Percent(bp),
        (false, bp) => Discount::Amount(Money(base.0 * i64::from(bp) / 10_000)),
    }
}

fn build(spec: &TicketSpec) -> pos_core::sale::Ticket {
    let classes = ["A", "B", "Z"];
    let mut t = ticket(spec.mode);
    for (i, l) in spec.lines.iter().enumerate() {
        let p = product(i as u8, "Item", l.unit, l.price, classes[l.class]);
        let no = t.add_item(&p, Quantity(l.qty), None).unwrap();
        if let Some(d) = l.discount {
            let base = t.line(no).unwrap().amount().unwrap();
            t.line_discount(no, discount(d, base)).unwrap();
        }
        if l.void {
            t.void_line(no).unwrap();
        }
    }
    if let Some(d) = spec.ticket_discount {
        if !t.is_empty() {
            let base = t.totals().unwrap().subtotal;
            t.ticket_discount(discount(d, base)).unwrap();
        }
    }
    t
}

fn sell(spec: &TicketSpec) -> Option<CompletedSale> {
    let mut t = build(spec);
    if t.is_empty() {
        return None;
    }
    let due = t.totals().unwrap().due;
    if due.is_positive() {
        t.add_payment(Tender::Cash, due).unwrap();
    }
    Some(t.complete(&CashRounding::default()).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn total_is_lines_minus_discounts(spec in ticket_spec()) {
        let t = build(&spec);
        let totals = t.totals().unwrap();
        let mut lines = 0i64;
        for line in t.lines().iter().filter(|l| !l.voided) {
            lines += round_div(i128::from(line.unit_price.0) * i128::from(line.qty.0), 1000) as i64;
        }
        prop_assert_eq!(totals.lines_gross, Money(lines));
        prop_assert_eq!(totals.total, Money(lines - totals.discounts.0));
        prop_assert!(!totals.total.is_negative());
        prop_assert!(totals.ticket_discount <= totals.subtotal);
        let tax: i64 = totals.taxes.iter().map(|t| t.tax.0).sum();
        let expected_due = match spec.mode {
            PricingMode::Inclusive => totals.total,
            PricingMode::Exclusive => Money(totals.total.0 + tax),
        };
        prop_assert_eq!(totals.due, expected_due);

        if let Some(sale) = sell(&spec) {
            let sold: Vec<_> = sale.lines.iter().filter(|l| !l.voided).collect();
            let shares: i64 = sold.iter().map(|l| l.ticket_discount.0).sum();
            prop_assert_eq!(shares, sale.totals.ticket_discount.0);
            let line_discounts: i64 = sold.iter().map(|l| l.line_discount.0).sum();
            prop_assert_eq!(line_discounts + shares, sale.totals.discounts.0);
            let subtotal = sale.totals.subtotal.0;
            for l in &sold {
                let base = l.amount.0 - l.line_discount.0;
                prop_assert!(l.ticket_discount.0 >= 0 && l.ticket_discount.0 <= base);
                // Largest remainder: each share is within one minor unit of its exact value.
                if subtotal > 0 {
                    let exact = i128::from(sale.totals.ticket_discount.0) * i128::from(base);
                    let share = i128::from(l.ticket_discount.0) * i128::from(subtotal);
                    prop_assert!((share - exact).abs() < i128::from(subtotal));
                }
            }
            let paid: i64 = sale.lines.iter().map(|l| l.paid.0).sum();
            prop_assert_eq!(paid, sale.totals.due.0);
        }
    }

    #[test]
    fn tax_per_rate_follows_the_documented_rounding(spec in ticket_spec()) {
        let Some(sale) = sell(&spec) else { return Ok(()) };
        for rate in rates() {
            let bp = i128::from(rate.rate_bp);
            let (mut net, mut tax, mut gross, mut any) = (0i128, 0i128, 0i128, false);
            for l in sale.lines.iter().filter(|l| !l.voided && l.tax_class == rate.class) {
                any = true;
                let charged = i128::from(l.amount.0 - l.line_discount.0 - l.ticket_discount.0);
                let line_tax = match spec.mode {
                    PricingMode::Inclusive => round_div(charged * bp, 10_000 + bp),
                    PricingMode::Exclusive => round_div(charged * bp, 10_000),
                };
                let (line_net, line_gross) = match spec.mode {
                    PricingMode::Inclusive => (charged - line_tax, charged),
                    PricingMode::Exclusive => (charged, charged + line_tax),
                };
                net += line_net;
                tax += line_tax;
                gross += line_gross;
            }
            let summary = sale.totals.taxes.iter().find(|t| t.class == rate.class);
            prop_assert_eq!(summary.is_some(), any);
            if let Some(s) = summary {
                prop_assert_eq!(i128::from(s.net.0), net);
                prop_assert_eq!(i128::from(s.tax.0), tax);
                prop_assert_eq!(i128::from(s.gross.0), gross);
                prop_assert_eq!(s.gross.0, s.net.0 + s.tax.0);
            }
        }
    }

    #[test]
    fn refunds_never_exceed_sales(
        spec in ticket_spec(),
        requests in proptest::collection::vec((0usize..12, 1i64..30_000), 0..20),
    ) {
        let Some(sale) = sell(&spec) else { return Ok(()) };
        let mut records: Vec<RefundLine> = Vec::new();
        for (index, qty) in requests {
            let line = &sale.lines[index % sale.lines.len()];
            let qty = match line.unit {
                Unit::Each => Quantity((qty % 25 + 1) * 1000),
                Unit::Kg => Quantity(qty % 6000 + 1),
            };
            let request = RefundRequest { line: line.line, qty };
            let refundable = Refundable::new(&sale, &records).unwrap();
            match refundable.check_refund(&[request]) {
                Ok(plan) => records.extend(plan.records()),
                Err(SaleError::RefundExceedsSale { .. } | SaleError::LineVoided(_)) => {}
                Err(e) => prop_assert!(false, "unexpected error {e}"),
            }
            let mut total = 0;
            for l in &sale.lines {
                let (q, a) = records.iter().filter(|r| r.line == l.line).fold((0, 0), |(q, a), r| (q + r.qty.0, a + r.amount.0));
                prop_assert!(q <= l.qty.0 && a <= l.paid.0 && a >= 0);
                total += a;
            }
            prop_assert!(total <= sale.totals.due.0);
        }
        // Refund all that is left: the refunds then add up to the sale exactly.
        let refundable = Refundable::new(&sale, &records).unwrap();
        let rest: Vec<RefundRequest> = sale
            .lines
            .iter()
            .filter_map(|l| {
                let (qty, _) = refundable.left(l.line).unwrap();
                (qty.0 > 0).then_some(RefundRequest { line: l.line, qty })
            })
            .collect();
        if !rest.is_empty() {
            let plan = refundable.check_refund(&rest).unwrap();
            records.extend(plan.records());
        }
        let refunded: i64 = records.iter().map(|r| r.amount.0).sum();
        prop_assert_eq!(refunded, sale.totals.due.0);
        for l in &sale.lines {
            let a: i64 = records.iter().filter(|r| r.line == l.line).map(|r| r.amount.0).sum();
            prop_assert_eq!(a, l.paid.0);
        }
    }

    #[test]
    fn balance_adds_up(
        spec in ticket_spec(),
        payments in proptest::collection::vec((0u8..3, 1i64..50_000), 0..5),
        step in prop_oneof![Just(1i64), Just(5), Just(10), Just(50)],
    ) {
        let mut t = build(&spec);
        for (kind, amount) in payments {
            let tender = match kind {
                0 => Tender::Cash,
                1 => Tender::Card { approval_code: "OK1".into(), last4: "1234".into() },
                _ => Tender::Voucher { code: "V".into() },
            };
            let _ = t.add_payment(tender, Money(amount));
        }
        let rounding = CashRounding { step: Money(step) };
        let b = t.balance(&rounding).unwrap();
        prop_assert_eq!(b.due.0 + b.rounding.0 + b.change.0, b.paid.0 + b.remaining.0);
        prop_assert!(b.rounding.0.abs() * 2 <= step);
        let non_cash: i64 = t.payments().iter().filter(|p| !p.tender.is_cash()).map(|p| p.amount.0).sum();
        prop_assert!(non_cash <= b.due.0);
        match t.complete(&rounding) {
            Ok(_) => prop_assert_eq!(b.remaining, Money::ZERO),
            Err(SaleError::Underpaid { remaining }) => prop_assert_eq!(remaining, b.remaining),
            Err(SaleError::TicketEmpty) => prop_assert!(t.is_empty()),
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn drawer_expects_float_plus_cash_sales_minus_refunds_plus_in_minus_out(
        float in 0i64..100_000,
        sales in proptest::collection::vec((ticket_spec(), 0i64..5_000, any::<bool>(), proptest::option::of(any::<bool>())), 0..6),
        moves in proptest::collection::vec((0u8..4, 0i64..10_000), 0..10),
    ) {
        let mut cash_sales = 0i64;
        let mut cash_refunds = 0i64;
        let (mut paid_in, mut paid_out) = (0i64, 0i64);
        let mut completed = Vec::new();
        let mut refunds = Vec::new();
        for (spec, extra, by_card, refund) in &sales {
            let mut t = build(spec);
            if t.is_empty() { continue; }
            let due = t.totals().unwrap().due;
            if *by_card && due.is_positive() {
                t.add_payment(Tender::Card { approval_code: "X1".into(), last4: "9876".into() }, due).unwrap();
            } else if due.is_positive() {
                // Cash rounding to 0.05 can round the due amount up by up to 0.02: pay at
                // least that much more so the sale always completes.
                t.add_payment(Tender::Cash, Money(due.0 + extra + 5)).unwrap();
            }
            let sale = t.complete(&CashRounding { step: Money(5) }).unwrap();
            let cash: i64 = sale.payments.iter().filter(|p| p.tender.is_cash()).map(|p| p.amount.0).sum();
            cash_sales += cash - sale.change.0;
            if let Some(to_cash) = refund {
                let lines: Vec<RefundRequest> = sale.lines.iter().filter(|l| !l.voided)
                    .map(|l| RefundRequest { line: l.line, qty: l.qty }).collect();
                let plan = Refundable::new(&sale, &[]).unwrap().check_refund(&lines).unwrap();
                let tender = if *to_cash { Tender::Cash } else { Tender::Voucher { code: "R".into() } };
                if *to_cash { cash_refunds += plan.total.0; }
                refunds.push((plan, tender));
            }
            completed.push(sale);
        }
        let mut facts = vec![SaleFact::ShiftOpened { float: Money(float) }];
        facts.extend(completed.iter().map(SaleFact::Completed));
        facts.extend(refunds.iter().map(|(plan, tender)| SaleFact::Refunded { plan, tender }));
        for (kind, amount) in &moves {
            facts.push(match kind {
                0 => { paid_in += amount; SaleFact::PaidIn(Money(*amount)) }
                1 => { paid_out += amount; SaleFact::PaidOut(Money(*amount)) }
                2 => SaleFact::NoSale,
                _ => SaleFact::LineVoided { amount: Money(*amount) },
            });
        }
        let report = facts.iter().try_fold(ShiftReport::default(), |r, f| r.apply(f)).unwrap();
        let expected = float + cash_sales - cash_refunds + paid_in - paid_out;
        prop_assert_eq!(report.drawer.expected().unwrap(), Money(expected));
        prop_assert_eq!(report.drawer, CashDrawer {
            float: Money(float),
            cash_sales: Money(cash_sales),
            cash_refunds: Money(cash_refunds),
            paid_in: Money(paid_in),
            paid_out: Money(paid_out),
        });
        // The cash tender agrees with the drawer's sales minus refunds.
        let cash = report.tenders.get("cash").map_or(0, |c| c.value.0);
        prop_assert_eq!(cash, cash_sales - cash_refunds);
        prop_assert_eq!(report.sales_count, completed.len() as u64);
        // Order does not matter: a Z from projections equals a Z from the raw events.
        let reversed = facts.iter().rev().try_fold(ShiftReport::default(), |r, f| r.apply(f)).unwrap();
        prop_assert_eq!(&reversed, &report);
        let close = report.drawer.close(Money(expected + 7)).unwrap();
        prop_assert_eq!(close.over_short, Money(7));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn receipts_fit_any_supported_width(
        spec in ticket_spec(),
        names in proptest::collection::vec(".{0,120}", 12),
        width in 24usize..=80,
        copy in any::<bool>(),
    ) {
        let mut t = ticket(spec.mode);
        for (i, (l, name)) in spec.lines.iter().zip(&names).enumerate() {
            let p = product(i as u8, name, l.unit, l.price, ["A", "B", "Z"][l.class]);
            let no = t.add_item(&p, Quantity(l.qty), None).unwrap();
            if l.void { t.void_line(no).unwrap(); }
        }
        if t.is_empty() { return Ok(()) }
        let due = t.totals().unwrap().due;
        t.add_payment(Tender::Voucher { code: names[0].chars().take(60).collect::<String>() + "V" }, Money(due.0 / 2 + 1)).ok();
        t.add_payment(Tender::Cash, Money(due.0 + 1)).ok();
        let Ok(sale) = t.complete(&CashRounding { step: Money(5) }) else { return Ok(()) };
        let receipt = pos_core::sale::Receipt {
            header: vec![names[1].clone()],
            terminal: names[2].chars().take(20).collect(),
            cashier: names[3].clone(),
            number: 1,
            time: "2026-05-01 14:03".into(),
            sale,
            footer: vec![names[4].clone()],
            qr: pos_core::sale::qr_payload("dev", 1, "ab"),
            copy,
            currency: pos_core::sale::Currency::default(),
        };
        let text = receipt.render_text(width).unwrap();
        for row in text.lines() {
            prop_assert!(row.chars().count() <= width, "{row:?}");
        }
        prop_assert!(text.trim_end().ends_with("ab"));
    }
}

fn digits(n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(0u8..10, n)
        .prop_map(|d| d.iter().map(|x| char::from(b'0' + x)).collect())
}

fn with_check(body: String) -> String {
    let c = check_digit(&body).unwrap();
    format!("{body}{c}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn valid_ean13_round_trips(body in digits(12)) {
        let code = with_check(body);
        let scanned = parse_barcode(&code, &BarcodeRules::default()).unwrap();
        if ["21", "22", "23"].iter().any(|p| code.starts_with(p)) {
            let embedded = matches!(scanned, Scanned::PriceEmbedded { .. } | Scanned::WeightEmbedded { .. });
            prop_assert!(embedded);
        } else {
            prop_assert_eq!(scanned, Scanned::Gtin(code));
        }
    }

    #[test]
    fn valid_upca_reads_as_ean13(body in digits(11)) {
        let code = with_check(body);
        let scanned = parse_barcode(&code, &BarcodeRules::default()).unwrap();
        prop_assert_eq!(scanned, Scanned::Gtin(format!("0{code}")));
    }

    #[test]
    fn valid_ean8_round_trips(first in 1u8..10, body in digits(6)) {
        // EAN-8 codes starting with 0 read as UPC-E unless the store turns `upc_e` off.
        let code = with_check(format!("{first}{body}"));
        let scanned = parse_barcode(&code, &BarcodeRules::default()).unwrap();
        prop_assert_eq!(scanned, Scanned::Gtin(code.clone()));
        let rules = BarcodeRules { upc_e: false, ..BarcodeRules::default() };
        let zero = with_check(format!("0{body}"));
        prop_assert_eq!(parse_barcode(&zero, &rules).unwrap(), Scanned::Gtin(zero.clone()));
    }

    #[test]
    fn upc_e_reads_as_its_upc_a(body in digits(6)) {
        let upc_a_body = pos_core::sale::barcode::expand_upc_e(&format!("0{body}0")).unwrap();
        let check = check_digit(&upc_a_body[..11]).unwrap();
        let code = format!("0{body}{check}");
        let scanned = parse_barcode(&code, &BarcodeRules::default()).unwrap();
        prop_assert_eq!(scanned, Scanned::Gtin(format!("0{}{check}", &upc_a_body[..11])));
    }

    #[test]
    fn any_single_digit_change_is_caught(
        len in prop_oneof![Just(8usize), Just(12), Just(13)],
        body in digits(12),
        position in 0usize..13,
        delta in 1u8..10,
    ) {
        // EAN-8 here starts with 1-9 and stays so (a leading 0 would switch to UPC-E rules).
        let mut body: Vec<u8> = body[..len - 1].bytes().collect();
        if len == 8 && body[0] == b'0' { body[0] = b'5'; }
        let code = with_check(String::from_utf8(body).unwrap());
        let mut bytes = code.clone().into_bytes();
        let i = position % len;
        bytes[i] = b'0' + (bytes[i] - b'0' + delta) % 10;
        if len == 8 && i == 0 && bytes[0] == b'0' { bytes[0] = b'0' + (code.as_bytes()[0] - b'0') % 9 + 1; }
        let changed = String::from_utf8(bytes).unwrap();
        prop_assume!(changed != code);
        let result = parse_barcode(&changed, &BarcodeRules::default());
        prop_assert!(matches!(result, Err(BarcodeError::CheckDigit { .. })), "{changed}: {result:?}");
    }

    #[test]
    fn parse_never_panics(
        text in ".{0,40}",
        numeric in "[0-9 ]{0,20}",
        prefixes in proptest::collection::vec(".{0,9}", 0..3),
        plu in any::<u8>(),
        upc_e in any::<bool>(),
    ) {
        let rules = BarcodeRules {
            price_prefixes: prefixes.clone(),
            weight_prefixes: prefixes,
            plu_max_digits: plu,
            upc_e,
        };
        let _ = parse_barcode(&text, &rules);
        let _ = parse_barcode(&numeric, &rules);
        let _ = parse_barcode(&numeric, &BarcodeRules::default());
    }

    #[test]
    fn money_text_round_trips(value in any::<i64>()) {
        let m = Money(value);
        if value != i64::MIN {
            prop_assert_eq!(m.to_string().parse::<Money>().unwrap(), m);
        }
        let _ = "".parse::<Money>();
    }

    #[test]
    fn money_parse_never_panics(text in ".{0,30}") {
        let _ = text.parse::<Money>();
        let _ = text.parse::<Quantity>();
    }
}

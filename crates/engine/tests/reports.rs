//! Issue 10: the analytics of a day sold through the engine equal its Z report, to the cent.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use pos_core::sale::Money;
use pos_store::reports::Period;
use pos_testkit::till;

#[test]
fn report_totals_equal_the_z_report_totals() {
    let mut t = till();
    // The reference day: every kind of record the Z report folds.
    let z = t.trade_a_day();
    let e = &mut t.engine;
    let r = &z.report;
    let store = e.store();
    let day = Period::all();

    let k = store.kpis(day).unwrap();
    assert_eq!(k.sales_count, r.sales_count as i64);
    assert_eq!(k.gross_sales, r.gross);
    assert_eq!(k.net_sales, r.net);
    assert_eq!(k.discounts, r.discounts);
    assert_eq!(k.rounding, r.rounding);
    assert_eq!(
        (k.refunds, k.refund_value),
        (r.refunds.count as i64, r.refunds.value)
    );
    assert_eq!(
        (k.post_voids, k.post_void_value),
        (r.post_voids.count as i64, r.post_voids.value)
    );
    assert_eq!(
        (k.line_voids, k.line_void_value),
        (r.voids.count as i64, r.voids.value)
    );
    assert_eq!(k.no_sales, r.no_sales as i64);
    assert_eq!((k.closes, k.cash_over_short), (1, z.over_short));
    assert_eq!(z.over_short, Money(-130));
    assert_eq!(k.cash_short, Money(130));
    assert!(k.refunds == 3 && k.post_voids == 1 && k.line_voids == 3);

    let tenders: Vec<(String, i64, Money)> = store
        .tender_totals(day)
        .unwrap()
        .into_iter()
        .map(|t| (t.tender, t.count, t.amount))
        .collect();
    let z_tenders: Vec<(String, i64, Money)> = r
        .tenders
        .iter()
        .map(|(k, v)| (k.clone(), v.count as i64, v.value))
        .collect();
    assert_eq!(tenders, z_tenders);

    let taxes: Vec<(String, u32, Money, Money, Money)> = store
        .tax_by_rate(day)
        .unwrap()
        .into_iter()
        .map(|t| (t.class, t.rate_bp, t.net, t.tax, t.gross))
        .collect();
    let z_taxes: Vec<(String, u32, Money, Money, Money)> = r
        .taxes
        .iter()
        .map(|t| (t.class.clone(), t.rate_bp, t.net, t.tax, t.gross))
        .collect();
    assert_eq!(taxes, z_taxes);

    // The cashiers' rows add up to the same day; the terminal's row is the day.
    let cashiers = store.cashier_performance(day).unwrap();
    assert_eq!(cashiers.iter().map(|c| c.net_sales.0).sum::<i64>(), r.net.0);
    assert!(cashiers.iter().any(|c| c.name == "Alice"), "{cashiers:?}");
    let terminals = store.terminal_performance(day).unwrap();
    assert_eq!(terminals.len(), 1);
    assert_eq!(terminals[0].kpis.net_sales, r.net);
    // Margin: the testkit's products cost half their price.
    assert!(k.gross_margin.is_positive() && k.uncosted_net == Money::ZERO);
    // Stock on hand follows the sales; nothing is low after one day of this.
    let cover = store.stock_cover(pos_store::now_ms() + 1, 7).unwrap();
    let cola = cover.iter().find(|s| s.sku == "cola").unwrap();
    assert!(cola.on_hand_milli < 100_000 && cola.days_of_cover.is_some());
}

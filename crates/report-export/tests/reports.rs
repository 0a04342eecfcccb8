#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

//! Reports of a day sold through the engine: their totals equal the Z report's, CSV parses
//! back with the same sums, the PDF renders (pdftoppm) and holds its text (pdftotext).

use std::path::Path;
use std::process::Command;

use pos_core::sale::{Money, Tender};
use pos_report_export::{build, currency, render, Cell, Document, Format, ReportKind, Scope};
use pos_store::reports::Period;
use pos_store::{now_ms, Store};
use pos_testkit::{card, pay_and_complete, till, Till, COLA_EAN};

/// The reference trading day ([`Till::trade_a_day`]), closed 1.30 short: the Z report as the
/// log holds it.
fn sell_a_day(t: &mut Till) -> pos_core::sale::events::ShiftClosed {
    let z = t.trade_a_day();
    let e = &mut t.engine;
    let closed = pos_testkit::events(e.store(), "shift.closed");
    assert_eq!(closed.len(), 1);
    let stored: pos_core::sale::events::ShiftClosed = pos_testkit::payload(&closed[0]);
    assert_eq!(stored.over_short, z.over_short);
    stored
}

fn scope(period: Period) -> Scope {
    Scope {
        period,
        tz: jiff::tz::TimeZone::UTC,
        currency: currency("EUR"),
        now_ms: now_ms(),
    }
}

fn doc(store: &Store, kind: ReportKind, period: Period) -> Document {
    build(store, kind, &scope(period)).unwrap()
}

fn money(cell: Option<&Cell>) -> i64 {
    match cell {
        Some(Cell::Money(m)) => *m,
        other => panic!("not money: {other:?}"),
    }
}

fn int(cell: Option<&Cell>) -> i64 {
    match cell {
        Some(Cell::Int(n)) => *n,
        other => panic!("not a count: {other:?}"),
    }
}

fn today() -> Period {
    Period::local_day(now_ms(), 0).unwrap()
}

#[test]
fn every_report_agrees_with_the_z_report() {
    let mut t = till();
    let z = sell_a_day(&mut t);
    let r = &z.report;
    let store = t.engine.store();
    let day = today();

    // The Z report's own report lists it with its totals.
    let zd = doc(store, ReportKind::Z, day);
    let shifts = zd.section("Shifts closed").unwrap().table.as_ref().unwrap();
    assert_eq!(shifts.rows.len(), 1);
    assert_eq!(int(shifts.total_of("Sales")), r.sales_count as i64);
    assert_eq!(money(shifts.total_of("Net")), r.net.0);
    assert_eq!(money(shifts.total_of("Over/short")), -130);

    // Key figures.
    let k = doc(store, ReportKind::Kpis, day);
    let figures = k.section("Key figures").unwrap().table.as_ref().unwrap();
    let figure = |name: &str| {
        figures
            .rows
            .iter()
            .find(|row| row[0] == Cell::text(name))
            .map(|row| row[1].clone())
            .unwrap()
    };
    assert_eq!(figure("Net sales"), Cell::Money(r.net.0));
    assert_eq!(figure("Gross sales"), Cell::Money(r.gross.0));
    assert_eq!(figure("Discounts"), Cell::Money(r.discounts.0));
    assert_eq!(figure("Refunds (value)"), Cell::Money(r.refunds.value.0));
    assert_eq!(
        figure("Post-voids (value)"),
        Cell::Money(r.post_voids.value.0)
    );
    assert_eq!(
        figure("Line voids (count)"),
        Cell::Int(r.voids.count as i64)
    );
    assert_eq!(figure("No-sales"), Cell::Int(r.no_sales as i64));
    assert_eq!(figure("Cash over (+) / short (-)"), Cell::Money(-130));
    let hours = k.section("Net sales per hour").unwrap();
    assert_eq!(hours.chart.as_ref().unwrap().bars.len(), 24);
    assert_eq!(
        money(hours.table.as_ref().unwrap().total_of("Net sales")),
        r.net.0
    );
    let terminals = k.section("By terminal").unwrap().table.as_ref().unwrap();
    assert_eq!(money(terminals.total_of("Net sales")), r.net.0);

    // Tenders and taxes: row by row.
    let tenders = doc(store, ReportKind::Tenders, day);
    let tt = tenders.sections[0].table.as_ref().unwrap();
    let rows: Vec<(Cell, Cell, Cell)> = tt
        .rows
        .iter()
        .map(|row| (row[0].clone(), row[1].clone(), row[2].clone()))
        .collect();
    let z_rows: Vec<(Cell, Cell, Cell)> = r
        .tenders
        .iter()
        .map(|(k, v)| {
            (
                Cell::text(k),
                Cell::Int(v.count as i64),
                Cell::Money(v.value.0),
            )
        })
        .collect();
    assert_eq!(rows, z_rows);
    let ztenders = zd
        .section("Tenders of these shifts")
        .unwrap()
        .table
        .as_ref()
        .unwrap();
    assert_eq!(ztenders.total, tt.total);

    let tax = doc(store, ReportKind::Tax, day);
    let tx = tax.sections[0].table.as_ref().unwrap();
    assert_eq!(tx.rows.len(), r.taxes.len());
    for (row, zt) in tx.rows.iter().zip(&r.taxes) {
        assert_eq!(row[0], Cell::text(&zt.class));
        assert_eq!(row[2], Cell::Percent(i64::from(zt.rate_bp)));
        assert_eq!(
            row[3..6],
            [
                Cell::Money(zt.net.0),
                Cell::Money(zt.tax.0),
                Cell::Money(zt.gross.0)
            ]
        );
    }
    let ztax = zd
        .section("Taxes of these shifts")
        .unwrap()
        .table
        .as_ref()
        .unwrap();
    assert_eq!(ztax.total, tx.total);

    // Cashiers and products add up to the day.
    let cashiers = doc(store, ReportKind::Cashiers, day);
    let ct = cashiers.sections[0].table.as_ref().unwrap();
    assert_eq!(money(ct.total_of("Net sales")), r.net.0);
    assert_eq!(int(ct.total_of("Refunds")), r.refunds.count as i64);
    assert!(
        ct.rows.iter().any(|row| row[0] == Cell::text("Alice")),
        "{ct:?}"
    );
    let products = doc(store, ReportKind::Products, day);
    let pt = products.sections[0].table.as_ref().unwrap();
    assert_eq!(money(pt.total_of("Net sales")), r.net.0);

    // The journal: every receipt, refund and post-void; its total is the net.
    let journal = doc(store, ReportKind::Journal, day);
    let jt = journal.sections[0].table.as_ref().unwrap();
    assert_eq!(jt.rows.len(), 12 + 3 + 1);
    assert_eq!(money(jt.total_of("Amount")), r.net.0);

    // The audit report: every void, refund, no-sale and cash move with who approved and why.
    let audit = doc(store, ReportKind::Audit, day);
    let at = audit
        .section("Sensitive actions")
        .unwrap()
        .table
        .as_ref()
        .unwrap();
    let action = |name: &str| {
        at.rows
            .iter()
            .filter(|row| row[2] == Cell::text(name))
            .collect::<Vec<_>>()
    };
    let voids = action("line void");
    assert_eq!(voids.len(), r.voids.count as usize);
    assert!(voids
        .iter()
        .all(|row| row[5] == Cell::text("sam") && row[6] == Cell::text("scan-error")));
    assert_eq!(action("refund").len(), 3);
    assert_eq!(action("post-void").len(), 1);
    assert_eq!(action("no-sale")[0][6], Cell::text("give-change"));
    assert_eq!(action("paid in").len(), 1);
    assert_eq!(action("paid out")[0][7], Cell::Money(500));

    // The X report: no shift is open any more.
    let x = doc(store, ReportKind::X, day);
    assert!(x.sections[0].notes.iter().any(|n| n == "No shift is open."));
}

/// The rows of a CSV section: header, then rows up to the next `section` record.
fn csv_section(bytes: &[u8], title: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let records: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let start = records
        .iter()
        .position(|r| r.len() == 2 && r[0] == "section" && r[1] == title)
        .unwrap_or_else(|| panic!("no section {title}"));
    let mut rest = records[start + 1..]
        .iter()
        .take_while(|r| r[0] != "section")
        .filter(|r| r[0] != "note");
    let header = rest.next().unwrap().clone();
    (header, rest.cloned().collect())
}

fn cents(text: &str) -> i64 {
    Money::parse(text, &currency("EUR")).unwrap().0
}

#[test]
fn csv_parses_back_with_the_same_sums_and_pdf_renders_with_its_text() {
    let mut t = till();
    let z = sell_a_day(&mut t);
    let r = &z.report;
    let store = t.engine.store();
    let day = today();

    let csv = render(&doc(store, ReportKind::Tenders, day), Format::Csv).unwrap();
    let text = String::from_utf8(csv.clone()).unwrap();
    assert!(text.starts_with("report,Tender report\n"), "{text}");
    assert!(text.contains("\nbranch,main\n"), "{text}");
    let (header, rows) = csv_section(&csv, "Payments by tender");
    assert_eq!(header, ["Tender", "Count", "Amount"]);
    let (total, rows) = rows.split_last().unwrap();
    assert_eq!(total[0], "Total");
    let sum: i64 = rows.iter().map(|row| cents(&row[2])).sum();
    let z_sum: i64 = r.tenders.values().map(|v| v.value.0).sum();
    assert_eq!((sum, cents(&total[2])), (z_sum, z_sum));

    let csv = render(&doc(store, ReportKind::Tax, day), Format::Csv).unwrap();
    let (header, rows) = csv_section(&csv, "Tax per rate");
    assert_eq!(header, ["Class", "Name", "Rate", "Net", "Tax", "Gross"]);
    let rows = &rows[..rows.len() - 1];
    let taxed: i64 = rows.iter().map(|row| cents(&row[4])).sum();
    assert_eq!(taxed, r.taxes.iter().map(|t| t.tax.0).sum::<i64>());
    assert_eq!(rows[0][2], "7.00");

    let csv = render(&doc(store, ReportKind::Journal, day), Format::Csv).unwrap();
    let (_, rows) = csv_section(&csv, "Sales, refunds and post-voids");
    let (total, rows) = rows.split_last().unwrap();
    let net: i64 = rows.iter().map(|row| cents(&row[9])).sum();
    assert_eq!((net, cents(&total[9])), (r.net.0, r.net.0));

    // The PDF of the key figures: renders, and its text holds the figures.
    let pdf = render(&doc(store, ReportKind::Kpis, day), Format::Pdf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kpis.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let out = Command::new("pdftoppm")
        .args(["-png", "-r", "60"])
        .arg(&file)
        .arg(dir.path().join("page"))
        .output()
        .expect("pdftoppm (Debian package poppler-utils) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pages = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert!(pages >= 1);
    let out = Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) must be installed");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "Key figures",
        "Net sales per hour (EUR)",
        "branch: main",
        "till-1",
        "By terminal",
        &Money(r.net.0).format(&currency("EUR")),
        "-1.30",
        "page 1 of",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    // POS_REPORT_DUMP=DIR keeps every report of this day in every format, to look at.
    if let Ok(out) = std::env::var("POS_REPORT_DUMP") {
        for kind in ReportKind::ALL {
            let d = doc(store, kind, day);
            for (format, ext) in [
                (Format::Table, "txt"),
                (Format::Csv, "csv"),
                (Format::Pdf, "pdf"),
            ] {
                let path = Path::new(&out).join(format!("{}.{ext}", kind.name()));
                std::fs::write(path, render(&d, format).unwrap()).unwrap();
            }
        }
    }
}

#[test]
fn an_empty_period_reads_as_zeros_and_says_so() {
    let mut t = till();
    sell_a_day(&mut t);
    let store = t.engine.store();
    let empty = Period::new(1_000 * 86_400_000, 1_001 * 86_400_000).unwrap();
    for kind in ReportKind::ALL {
        let d = doc(store, kind, empty);
        let text = String::from_utf8(render(&d, Format::Table).unwrap()).unwrap();
        assert!(text.contains("period"), "{text}");
        render(&d, Format::Csv).unwrap();
        assert!(render(&d, Format::Pdf).unwrap().starts_with(b"%PDF"));
        if matches!(
            kind,
            ReportKind::Kpis
                | ReportKind::Tenders
                | ReportKind::Tax
                | ReportKind::Products
                | ReportKind::Cashiers
                | ReportKind::Journal
        ) {
            assert!(
                text.contains("No sales in this period."),
                "{kind:?}: {text}"
            );
        }
    }
    let k = doc(store, ReportKind::Kpis, empty);
    let text = String::from_utf8(render(&k, Format::Table).unwrap()).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Net sales ") && l.ends_with(" 0.00")),
        "{text}"
    );
    // A huge range reads the aggregates by day, not 24 bars per day.
    let all = doc(store, ReportKind::Kpis, Period::all());
    let days = all.section("Net sales per day").unwrap();
    assert_eq!(days.chart.as_ref().unwrap().bars.len(), 1);
    assert_eq!(all.period(), "everything recorded");
}

#[test]
fn money_follows_the_currency_minor_digits() {
    assert_eq!(Cell::Money(12345).display(&currency("EUR")), "123.45");
    assert_eq!(Cell::Money(12345).display(&currency("JPY")), "12345");
    assert_eq!(Cell::Money(-12345).display(&currency("KWD")), "-12.345");
    assert_eq!(Cell::Money(-5).display(&currency("EUR")), "-0.05");
    assert_eq!(Cell::Qty(1500).display(&currency("EUR")), "1.5");
    assert_eq!(Cell::Percent(700).display(&currency("EUR")), "7.00%");
}

#[test]
fn the_x_report_is_the_open_shift_so_far() {
    let mut t = till();
    let e = &mut t.engine;
    e.scan(COLA_EAN).unwrap();
    pay_and_complete(e, Tender::Cash, 50);
    e.scan(COLA_EAN).unwrap();
    pay_and_complete(e, card(), 0);
    let x = e.x_report().unwrap();
    let d = doc(e.store(), ReportKind::X, today());
    let open = d.section("Open shifts").unwrap().table.as_ref().unwrap();
    assert_eq!(open.rows.len(), 1);
    assert_eq!(open.rows[0][0], Cell::text("till-1"));
    assert_eq!(open.rows[0][2], Cell::Int(2));
    assert_eq!(open.rows[0][3], Cell::Money(x.net.0));
    assert_eq!(open.rows[0][9], Cell::Money(x.drawer.expected().unwrap().0));
    assert!(d.period().starts_with("open shifts at "));
    let tenders = d
        .section("Tenders of the open shifts")
        .unwrap()
        .table
        .as_ref()
        .unwrap();
    assert_eq!(money(tenders.total_of("Amount")), x.net.0);
}

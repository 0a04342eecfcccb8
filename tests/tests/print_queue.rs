//! The print queue under SIGKILL: a worker process printing the waiting receipts to a
//! simulated network printer is killed at random moments and restarted. In the end every
//! receipt is on paper at least once, and never twice unless the extra copy is marked COPY.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pos_audit::EventDraft;
use pos_core::payloads::PrintQueued;
use pos_core::sale::events::{self as ev, SaleCompleted};
use pos_core::sale::{
    CashRounding, Money, PricingMode, Product, Quantity, TaxRate, Tender, Ticket, Unit,
};
use pos_core::{DeviceRole, EventId, ProductId, ShiftId, TicketId};
use pos_device_sim::SimPrinter;
use pos_store::{Store, StoreOptions};
use pos_system_tests::XorShift;

const RECEIPTS: u64 = 60;

/// A terminal with an open shift and `RECEIPTS` completed sales, each queued for printing.
fn terminal_with_sales(dir: &std::path::Path) {
    let (mut store, _) = Store::init(dir, DeviceRole::Terminal, "main", "till-1", false).unwrap();
    let shift = ShiftId::new_v7();
    store
        .append(vec![EventDraft::json(
            ev::SHIFT,
            ev::ShiftOpened::KIND,
            &ev::ShiftOpened {
                shift,
                float: Money(10_000),
            },
        )])
        .unwrap();
    let rates = vec![TaxRate {
        class: "std".into(),
        name: "VAT".into(),
        rate_bp: 2000,
    }];
    let product = Product {
        id: ProductId::new_v7(),
        sku: "tea".into(),
        name: "Green tea".into(),
        unit: Unit::Each,
        price: Money(349),
        cost: Money(100),
        tax_class: "std".into(),
        category: "food".into(),
        quick_key: None,
        active: true,
        barcodes: vec![],
    };
    for receipt in 1..=RECEIPTS {
        let mut ticket = Ticket::new(TicketId::new_v7(), PricingMode::Inclusive, rates.clone());
        ticket
            .add_item(&product, Quantity::units(1 + receipt as i64 % 3), None)
            .unwrap();
        let due = ticket.balance(&CashRounding::default()).unwrap().remaining;
        ticket.add_payment(Tender::Cash, due).unwrap();
        let sale = ticket.complete(&CashRounding::default()).unwrap();
        store
            .append(vec![
                EventDraft::json(
                    PrintQueued::MODULE,
                    PrintQueued::KIND,
                    &PrintQueued {
                        job: EventId::new_v7(),
                        receipt,
                        copy: false,
                    },
                ),
                EventDraft::json(
                    ev::SALE,
                    SaleCompleted::KIND,
                    &SaleCompleted {
                        receipt,
                        shift,
                        sale,
                    },
                ),
            ])
            .unwrap();
    }
}

/// Receipt numbers on paper, each with whether that print was marked COPY.
fn printed_receipts(text: &str) -> Vec<(u64, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("Receipt ") else {
            continue;
        };
        let Some(number) = rest.split_whitespace().next().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let copy = i >= 2 && lines[i - 2].contains("*** COPY ***");
        out.push((number, copy));
    }
    out
}

#[test]
fn killed_print_workers_lose_no_receipt_and_print_no_unmarked_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    terminal_with_sales(dir.path());
    let printer = SimPrinter::start().unwrap();
    let addr = printer.addr().to_string();
    let mut rng = XorShift::from_entropy();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut kills, mut finished) = (0, false);
    while !finished && Instant::now() < deadline {
        let mut child = Command::new(env!("CARGO_BIN_EXE_print_worker"))
            .args([dir.path().to_str().unwrap(), &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Kill every run part-way until the queue is drained (a run that ends on its own
        // before the kill found nothing left to print); after 200 kills, let one finish.
        if kills < 200 {
            std::thread::sleep(Duration::from_millis(rng.range(0, 12)));
            if child.try_wait().unwrap().is_some() {
                let out = child.wait_with_output().unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                finished = true;
                continue;
            }
            let _ = child.kill();
            child.wait().unwrap();
            kills += 1;
        } else {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            finished = true;
        }
    }
    assert!(
        finished,
        "the queue did not drain within a minute ({kills} kills)"
    );
    assert!(
        kills >= 5,
        "only {kills} kills: the test did not interrupt printing"
    );
    // Let the simulator take in the last bytes, then read what is on paper.
    std::thread::sleep(Duration::from_millis(200));
    let paper = printed_receipts(&printer.printed());
    for receipt in 1..=RECEIPTS {
        let originals = paper
            .iter()
            .filter(|(n, copy)| *n == receipt && !copy)
            .count();
        let copies = paper
            .iter()
            .filter(|(n, copy)| *n == receipt && *copy)
            .count();
        assert!(
            originals <= 1,
            "receipt {receipt} printed {originals} times unmarked"
        );
        assert!(originals + copies >= 1, "receipt {receipt} never printed");
    }
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(store.print_backlog(store.device_id()).unwrap(), 0);
    store.verify().unwrap();
    println!(
        "{kills} kills; {} prints for {RECEIPTS} receipts",
        paper.len()
    );
}

#[test]
fn paper_out_holds_the_job_and_paper_in_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    terminal_with_sales(dir.path());
    let printer = SimPrinter::start().unwrap();
    printer.set_paper_out(true);
    let out = Command::new(env!("CARGO_BIN_EXE_print_worker"))
        .args([dir.path().to_str().unwrap(), &printer.addr().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.to_lowercase().contains("paper"), "{err}");
    assert_eq!(
        printer.dropped_bytes(),
        0,
        "nothing is sent to a printer without paper"
    );
    printer.set_paper_out(false);
    let out = Command::new(env!("CARGO_BIN_EXE_print_worker"))
        .args([dir.path().to_str().unwrap(), &printer.addr().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(200));
    let paper = printed_receipts(&printer.printed());
    let numbers: Vec<u64> = paper.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=RECEIPTS).collect::<Vec<_>>());
    assert!(
        paper.iter().all(|(_, copy)| !copy),
        "nothing had started: no copies"
    );
}

//! The till with a (simulated) network printer and a drawer on the printer's port: every
//! opening follows a committed sale with cash or a no-sale; paper trouble never loses a
//! receipt; a drawer left open is logged once.

#![allow(clippy::unwrap_used)] // a panic in a test is a failed test

mod support;

use pos_core::sale::{Money, Tender};
use pos_device_sim::SimPrinter;
use pos_drivers::DrawerStatus;
use pos_engine::{PrintProgress, Till as DeviceTill};
use support::*;

fn device_till(sim: &SimPrinter) -> DeviceTill {
    sim_till(till().engine, sim)
}

fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(150));
}

#[test]
fn cash_opens_the_drawer_card_does_not_and_receipts_print() {
    let sim = SimPrinter::start().unwrap();
    let mut till = device_till(&sim);
    till.engine_mut().scan(COLA_EAN).unwrap();
    till.engine_mut().pay(Tender::Cash, Money(500)).unwrap();
    let sale = till.complete(1_000).unwrap();
    assert!(sale.drawer_opened);
    assert!(
        matches!(sale.print, PrintProgress::Printed { copy: false, .. }),
        "{:?}",
        sale.print
    );

    till.engine_mut().scan(COLA_EAN).unwrap();
    let due = till.engine_mut().balance().unwrap().remaining;
    till.engine_mut()
        .pay(
            Tender::Card {
                approval_code: "A1".into(),
                last4: "4242".into(),
            },
            due,
        )
        .unwrap();
    let sale = till.complete(2_000).unwrap();
    assert!(!sale.drawer_opened);
    settle();
    assert_eq!(sim.drawer_kicks(), 1);
    assert_eq!(sim.jobs().len(), 2);

    // A no-sale opens it too, after its reason is in the log.
    till.no_sale(Some(c(SUPERVISOR)), "give-change", 3_000)
        .unwrap();
    settle();
    assert_eq!(sim.drawer_kicks(), 2);
    assert_eq!(events(till.engine_mut().store(), "shift.no_sale").len(), 1);
}

#[test]
fn paper_out_keeps_the_receipt_queued_until_the_roll_is_replaced() {
    let sim = SimPrinter::start().unwrap();
    let mut till = device_till(&sim);
    sim.set_paper_out(true);
    till.engine_mut().scan(COLA_EAN).unwrap();
    till.engine_mut().pay(Tender::Cash, Money(500)).unwrap();
    let sale = till.complete(1_000).unwrap();
    match &sale.print {
        PrintProgress::Waiting { problem, .. } => assert!(problem.contains("paper"), "{problem}"),
        other => panic!("printed without paper: {other:?}"),
    }
    let store = till.engine_mut().store();
    assert_eq!(store.print_backlog(store.device_id()).unwrap(), 1);
    sim.set_paper_out(false);
    let progress = till.print_pending().unwrap();
    assert!(
        matches!(progress, PrintProgress::Printed { copy: false, .. }),
        "{progress:?}"
    );
    settle();
    assert_eq!(sim.jobs().len(), 1);
    assert!(sim.jobs()[0].contains("Receipt 1"));
}

#[test]
fn a_drawer_left_open_is_logged_once() {
    let sim = SimPrinter::start().unwrap();
    let mut till = device_till(&sim);
    till.engine_mut().scan(COLA_EAN).unwrap();
    till.engine_mut().pay(Tender::Cash, Money(500)).unwrap();
    till.complete(1_000).unwrap();
    use pos_drivers::drawer::DrawerWatchEvent;
    let first = till.tick(30_000, Some(DrawerStatus::Open)).unwrap();
    assert_eq!(first, Some(DrawerWatchEvent::Opened));
    let late = till.tick(62_000, Some(DrawerStatus::Open)).unwrap();
    assert!(
        matches!(late, Some(DrawerWatchEvent::LeftOpen { .. })),
        "{late:?}"
    );
    assert_eq!(till.tick(90_000, Some(DrawerStatus::Open)).unwrap(), None);
    assert_eq!(
        events(till.engine_mut().store(), "security.drawer_left_open").len(),
        1
    );
    till.tick(95_000, Some(DrawerStatus::Closed)).unwrap();
}

/// A display transport whose bytes the test can read after the till took it.
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl pos_drivers::Transport for Shared {
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(())
    }
    fn read_some(&mut self, _: &mut [u8], _: std::time::Duration) -> std::io::Result<usize> {
        Ok(0)
    }
    fn reconnect(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn describe(&self) -> String {
        "test display".into()
    }
}

#[test]
fn the_customer_display_shows_item_total_and_welcome() {
    use pos_drivers::display::LineDisplay;
    let sim = SimPrinter::start().unwrap();
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut till =
        device_till(&sim).with_display(Box::new(Shared(screen.clone())), LineDisplay::default());
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert!(text(&screen.lock().unwrap()).contains("Welcome!"));
    screen.lock().unwrap().clear();
    till.scan(COLA_EAN).unwrap();
    let shown = text(&screen.lock().unwrap());
    assert!(
        shown.contains("Cola 0.5l") && shown.contains("1.99"),
        "{shown:?}"
    );
    till.show_total().unwrap();
    assert!(text(&screen.lock().unwrap()).contains("TOTAL"));
    till.engine_mut().pay(Tender::Cash, Money(500)).unwrap();
    screen.lock().unwrap().clear();
    till.complete(1_000).unwrap();
    assert!(text(&screen.lock().unwrap()).contains("Welcome!"));
}

//! The ESC/POS printer driver against the TCP printer simulator: a real receipt goes over raw
//! TCP, status is checked before and after, paper-out / cover-open / offline are reported and
//! nothing is lost or printed twice.
#![allow(clippy::unwrap_used)]

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pos_core::sale::{
    qr_payload, CashRounding, Currency, Money, PricingMode, Product, Quantity, Receipt, TaxRate,
    Tender, Ticket, Unit,
};
use pos_core::{ProductId, TicketId};
use pos_device_sim::SimPrinter;
use pos_drivers::{
    encode_receipt, CodePage, DrawerKick, DrawerPin, EscPosPrinter, Layout, PaperWidth,
    PrinterError, ReceiptPrinter, TcpTimeouts, TcpTransport, Transport,
};

const QUERY_TIMEOUT: Duration = Duration::from_millis(300);

fn receipt(number: u64) -> Receipt {
    let rate = |class: &str, rate_bp| TaxRate {
        class: class.into(),
        name: "VAT".into(),
        rate_bp,
    };
    let mut t = Ticket::new(
        TicketId::from_bytes([7; 16]),
        PricingMode::Inclusive,
        vec![rate("A", 2000), rate("B", 550)],
    );
    for (i, (name, price, qty)) in [("Milk 1L", 119, 2u32), ("Batteries AA 4-pack", 549, 1)]
        .into_iter()
        .enumerate()
    {
        let n = i as u8 + 1;
        let p = Product {
            id: ProductId::from_bytes([n; 16]),
            sku: format!("SKU-{n:03}"),
            name: name.into(),
            unit: Unit::Each,
            price: Money(price),
            cost: Money(price / 2),
            tax_class: if i % 2 == 0 { "B" } else { "A" }.into(),
            category: "Grocery".into(),
            quick_key: None,
            active: true,
            barcodes: Vec::new(),
        };
        t.add_item(&p, Quantity::units(qty.into()), None).unwrap();
    }
    t.add_payment(Tender::Cash, Money(5000)).unwrap();
    let sale = t.complete(&CashRounding::default()).unwrap();
    Receipt {
        header: vec!["Corner Shop".into()],
        terminal: "T1".into(),
        cashier: "Ann".into(),
        number,
        time: "2026-05-01 14:03".into(),
        sale,
        footer: vec!["Thank you!".into()],
        qr: qr_payload("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", number, "9f2c4e6a"),
        copy: false,
        currency: Currency::default(),
    }
}

fn layout() -> Layout {
    Layout {
        width: PaperWidth::Mm58,
        code_page: CodePage::Cp437,
        kick_drawer: None,
        cut: true,
        logo: None,
        barcode: false,
    }
}

fn job(number: u64) -> (Receipt, Vec<u8>) {
    let r = receipt(number);
    let bytes = encode_receipt(&r, &layout()).unwrap();
    (r, bytes)
}

fn connect(sim: &SimPrinter) -> EscPosPrinter<TcpTransport> {
    let timeouts = TcpTimeouts {
        connect: Duration::from_secs(1),
        write: Duration::from_secs(1),
    };
    EscPosPrinter::new(TcpTransport::new(sim.addr(), timeouts)).with_query_timeout(QUERY_TIMEOUT)
}

/// The rendered receipt shows the total line and the QR payload.
fn assert_receipt(rendered: &str, r: &Receipt) {
    let total = r.sale.totals.due.format(&r.currency);
    assert!(
        rendered
            .lines()
            .any(|l| l.contains("TOTAL") && l.contains(total.as_str())),
        "no total {total} in:\n{rendered}"
    );
    assert!(
        rendered.contains(&format!("[QR {}]", r.qr)),
        "no QR in:\n{rendered}"
    );
}

#[test]
fn prints_a_receipt_and_confirms_it() {
    let sim = SimPrinter::start().unwrap();
    let mut p = connect(&sim);
    assert!(p.status().unwrap().ready());
    let (r, bytes) = job(41);
    p.print(&bytes).unwrap();
    let jobs = sim.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_receipt(&jobs[0], &r);
    assert_eq!(sim.dropped_bytes(), 0);
    assert!(p.describe().contains(&sim.addr().to_string()));
}

#[test]
fn paper_out_waits_then_resumes() {
    let sim = SimPrinter::start().unwrap();
    let mut p = connect(&sim);
    let (r, bytes) = job(42);

    sim.set_paper_out(true);
    let err = p.print(&bytes).unwrap_err();
    assert!(
        matches!(err, PrinterError::NotReady(s) if s.paper_out),
        "{err:?}"
    );
    assert!(!err.may_have_printed());
    assert_eq!(
        err.to_string(),
        "Printer out of paper: replace the roll, then press Retry"
    );
    // Only the status queries went out: no print data sent, none dropped.
    assert_eq!(sim.received_bytes(), 12);
    assert_eq!(sim.dropped_bytes(), 0);
    assert!(sim.printed().is_empty());

    // The cashier replaces the roll; the waiting job prints once.
    sim.set_paper_out(false);
    p.print(&bytes).unwrap();
    let jobs = sim.jobs();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_receipt(&jobs[0], &r);
}

#[test]
fn near_end_still_prints() {
    let sim = SimPrinter::start().unwrap();
    sim.set_near_end(true);
    let mut p = connect(&sim);
    let s = p.status().unwrap();
    assert!(s.paper_near_end && s.ready());
    p.print(&job(43).1).unwrap();
    assert_eq!(sim.jobs().len(), 1);
}

#[test]
fn cover_open_is_not_ready() {
    let sim = SimPrinter::start().unwrap();
    sim.set_cover_open(true);
    let mut p = connect(&sim);
    let err = p.print(&job(44).1).unwrap_err();
    assert!(
        matches!(err, PrinterError::NotReady(s) if s.cover_open && !s.paper_out),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("Printer cover open: close it"));
    assert_eq!(sim.received_bytes(), 12);
    sim.set_cover_open(false);
    p.print(&job(44).1).unwrap();
    assert_eq!(sim.jobs().len(), 1);
}

/// Sets the simulator's paper out when print data (not a status query) is written: the roll
/// runs out during the job.
struct PaperRunsOut {
    inner: TcpTransport,
    sim: Arc<SimPrinter>,
}

impl Transport for PaperRunsOut {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !bytes.starts_with(&[0x10, 0x04]) {
            self.sim.set_paper_out(true);
        }
        self.inner.write_all(bytes)
    }
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.inner.read_some(buf, timeout)
    }
    fn reconnect(&mut self) -> io::Result<()> {
        self.inner.reconnect()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[test]
fn paper_running_out_during_a_job_is_not_confirmed() {
    let sim = Arc::new(SimPrinter::start().unwrap());
    let inner = TcpTransport::new(sim.addr(), TcpTimeouts::default());
    let mut p = EscPosPrinter::new(PaperRunsOut {
        inner,
        sim: Arc::clone(&sim),
    })
    .with_query_timeout(QUERY_TIMEOUT);
    let (r, bytes) = job(45);
    let err = p.print(&bytes).unwrap_err();
    assert!(
        matches!(err, PrinterError::NotConfirmed(s) if s.paper_out),
        "{err:?}"
    );
    assert!(err.may_have_printed(), "the queue reprints it as COPY");
    assert!(sim.dropped_bytes() > 0);

    // New roll: the reprint (the caller marks it COPY) goes through on the same connection.
    let mut p = EscPosPrinter::new(p.into_transport().inner).with_query_timeout(QUERY_TIMEOUT);
    sim.set_paper_out(false);
    p.print(&bytes).unwrap();
    assert_receipt(&sim.printed(), &r);
}

#[test]
fn offline_printer_fails_within_the_timeout() {
    let sim = SimPrinter::start().unwrap();
    sim.set_offline(true);
    let mut p = connect(&sim);
    let start = Instant::now();
    let err = p.print(&job(46).1).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, PrinterError::Offline), "{err:?}");
    assert!(!err.may_have_printed());
    assert_eq!(
        err.to_string(),
        "Printer not answering (offline?): check power and cable"
    );
    // Only the first status query was sent.
    assert_eq!(sim.received_bytes(), 3);

    // Back online: the late state is not confused with stale bytes, the job prints.
    sim.set_offline(false);
    p.print(&job(46).1).unwrap();
    assert_eq!(sim.jobs().len(), 1);
}

#[test]
fn printer_gone_mid_session_is_an_error_not_a_hang() {
    let mut sim = SimPrinter::start().unwrap();
    let mut p = connect(&sim);
    p.print(&job(47).1).unwrap();
    sim.stop();
    let start = Instant::now();
    let err = p.print(&job(48).1).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, PrinterError::Io(_)), "{err:?}");
    assert!(!err.may_have_printed());
    assert!(err.to_string().contains("check power"), "{err}");
    assert_eq!(sim.jobs().len(), 1);
}

#[test]
fn nothing_listening_is_an_error_not_a_hang() {
    let addr = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap()
    };
    let mut p = EscPosPrinter::new(TcpTransport::new(addr, TcpTimeouts::default()));
    let start = Instant::now();
    assert!(matches!(p.status(), Err(PrinterError::Io(_))));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn drawer_kick_reaches_the_printer() {
    let sim = SimPrinter::start().unwrap();
    let mut p = connect(&sim);
    p.kick_drawer(DrawerKick {
        pin: DrawerPin::Pin2,
        pulse_ms: 100,
    })
    .unwrap();
    // A status round trip: the simulator has handled everything sent before it.
    p.status().unwrap();
    assert_eq!(sim.drawer_kicks(), 1);
    assert!(sim.printed().contains("[DRAWER pin"), "{}", sim.printed());
}

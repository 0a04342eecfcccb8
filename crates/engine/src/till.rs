//! The till: the engine together with its receipt printer and cash drawer.
//!
//! Every drawer opening comes from a committed fact: a sale with cash (its `sale.completed`)
//! or a no-sale with a reason (`shift.no_sale`); the kick is sent only after that commit, so
//! the log knows of every opening. A drawer that stays open past the configured time is
//! logged as `security.drawer_left_open`. Device trouble never blocks the sale: the receipt
//! stays queued and the cashier is told what to do. The customer display (if any) shows each
//! scanned item, then the total, then a welcome message.

use pos_audit::EventDraft;
use pos_core::sale::LineNo;
use pos_core::sale::Receipt;
use pos_drivers::display::LineDisplay;
use pos_drivers::drawer::{DrawerWatch, DrawerWatchEvent};
use pos_drivers::escpos::{DrawerKick, Layout};
use pos_drivers::{DrawerStatus, ReceiptPrinter, Transport};

/// What the customer display shows between sales.
const IDLE_MESSAGE: &str = "Welcome!";

use crate::{Credentials, Engine, PrintProgress, Result};

/// What happened at the till when a sale was completed.
#[derive(Debug)]
pub struct TillSale {
    pub receipt: Receipt,
    /// The drawer was kicked (cash was tendered).
    pub drawer_opened: bool,
    /// Why the drawer did not open although it should have, for the cashier's screen.
    pub drawer_problem: Option<String>,
    pub print: PrintProgress,
}

pub struct Till {
    engine: Engine,
    /// The customer-facing line display, if any: it shows each item, the total, then an
    /// idle message. A display fault never stops a sale.
    display: Option<(Box<dyn Transport>, LineDisplay)>,
    printer: Box<dyn ReceiptPrinter>,
    layout: Layout,
    /// How the drawer is kicked through the printer; `None` when there is no drawer.
    drawer: Option<DrawerKick>,
    watch: DrawerWatch,
}

impl std::fmt::Debug for Till {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Till")
            .field("printer", &self.printer.describe())
            .field("drawer", &self.drawer)
            .finish_non_exhaustive()
    }
}

impl Till {
    pub fn new(
        engine: Engine,
        printer: Box<dyn ReceiptPrinter>,
        layout: Layout,
        drawer: Option<DrawerKick>,
        left_open_after_ms: u64,
    ) -> Till {
        Till {
            engine,
            display: None,
            printer,
            layout,
            drawer,
            watch: DrawerWatch::new(left_open_after_ms),
        }
    }

    /// Attach a customer line display and show the idle message on it.
    pub fn with_display(mut self, transport: Box<dyn Transport>, display: LineDisplay) -> Till {
        let mut hello = display.init();
        hello.extend(display.idle(IDLE_MESSAGE));
        self.display = Some((transport, display));
        self.show(hello);
        self
    }

    /// Scan at the till: the item and its price appear on the customer display.
    pub fn scan(&mut self, code: &str) -> Result<LineNo> {
        let line = self.engine.scan(code)?;
        let shown = self
            .engine
            .ticket()
            .and_then(|t| t.line(line).ok())
            .map(|l| {
                let price = l.amount().map(|a| a.to_string()).unwrap_or_default();
                (l.name.clone(), price)
            });
        if let (Some((name, price)), Some((_, display))) = (shown, &self.display) {
            let bytes = display.item_line(&name, &price);
            self.show(bytes);
        }
        Ok(line)
    }

    /// Show the amount due on the customer display (at the start of payment).
    pub fn show_total(&mut self) -> Result<()> {
        let due = self.engine.balance()?.remaining;
        if let Some((_, display)) = &self.display {
            let bytes = display.total(&due.to_string());
            self.show(bytes);
        }
        Ok(())
    }

    fn show(&mut self, bytes: Vec<u8>) {
        if let Some((transport, _)) = &mut self.display {
            if let Err(e) = transport.write_all(&bytes) {
                tracing::warn!("customer display: {e}");
            }
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// What the printer reports now (paper, cover, online), for the status bar.
    pub fn printer_status(
        &mut self,
    ) -> std::result::Result<pos_drivers::PrinterStatus, pos_drivers::PrinterError> {
        self.printer.status()
    }

    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Complete the paid ticket, open the drawer when cash changed hands, print the receipt.
    pub fn complete(&mut self, now_ms: u64) -> Result<TillSale> {
        let receipt = self.engine.complete()?;
        let cash = receipt.sale.payments.iter().any(|p| p.tender.is_cash());
        let (drawer_opened, drawer_problem) = if cash {
            self.kick(now_ms)
        } else {
            (false, None)
        };
        let print = self
            .engine
            .print_next(self.printer.as_mut(), &self.layout)?;
        if let Some((_, display)) = &self.display {
            let bytes = display.idle(IDLE_MESSAGE);
            self.show(bytes);
        }
        Ok(TillSale {
            receipt,
            drawer_opened,
            drawer_problem,
            print,
        })
    }

    /// Open the drawer without a sale: logged as a no-sale with its reason first.
    pub fn no_sale(
        &mut self,
        approver: Option<Credentials<'_>>,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<String>> {
        self.engine.no_sale(approver, reason)?;
        Ok(self.kick(now_ms).1)
    }

    /// Print whatever waits in the queue (e.g. after the cashier replaced the paper roll).
    pub fn print_pending(&mut self) -> Result<PrintProgress> {
        self.engine.print_next(self.printer.as_mut(), &self.layout)
    }

    /// Call regularly with the drawer's reported state (`None` where the hardware does not
    /// report it): a drawer left open too long is logged once per opening.
    pub fn tick(
        &mut self,
        now_ms: u64,
        drawer: Option<DrawerStatus>,
    ) -> Result<Option<DrawerWatchEvent>> {
        let event = self.watch.tick(now_ms, drawer);
        if let Some(DrawerWatchEvent::LeftOpen { open_ms }) = event {
            let mut draft = EventDraft::json(
                "security",
                "drawer_left_open",
                &serde_json::json!({ "open_ms": open_ms }),
            );
            draft.actor = self.engine.cashier().map(|c| c.user);
            self.engine.store_mut().append(vec![draft])?;
        }
        Ok(event)
    }

    fn kick(&mut self, now_ms: u64) -> (bool, Option<String>) {
        let Some(kick) = self.drawer else {
            return (false, None);
        };
        match self.printer.kick_drawer(kick) {
            Ok(()) => {
                self.watch.opened(now_ms);
                (true, None)
            }
            Err(e) => (false, Some(format!("drawer did not open: {e}"))),
        }
    }
}

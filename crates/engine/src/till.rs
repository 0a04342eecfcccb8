//! The till: the engine together with its receipt printer and cash drawer.
//!
//! Every drawer opening comes from a committed fact: a sale with cash (its `sale.completed`)
//! or a no-sale with a reason (`shift.no_sale`); the kick is sent only after that commit, so
//! the log knows of every opening. A drawer that stays open past the configured time is
//! logged as `security.drawer_left_open`. Device trouble never blocks the sale: the receipt
//! stays queued and the cashier is told what to do.

use pos_audit::EventDraft;
use pos_core::sale::Receipt;
use pos_drivers::drawer::{DrawerWatch, DrawerWatchEvent};
use pos_drivers::escpos::{DrawerKick, Layout};
use pos_drivers::{DrawerStatus, ReceiptPrinter};

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
            printer,
            layout,
            drawer,
            watch: DrawerWatch::new(left_open_after_ms),
        }
    }

    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
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

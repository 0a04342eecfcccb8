//! The sale engine of a terminal: what the cashier's screen calls.
//!
//! It holds the logged-in cashier and the open ticket (in memory until it is paid or parked),
//! asks `pos-auth` through [`Store::authorize`] before every sensitive action, and commits each
//! business fact as events with their projections in one transaction through `pos-store`.
//! The rules (money, tax, discounts, refunds, shift cash) are `pos_core::sale`; nothing here
//! computes a price. Every refused command leaves the engine as it was.

mod config;
mod journal;
mod till;

pub use config::EngineConfig;
pub use till::{Till, TillSale};

use pos_audit::EventDraft;
use pos_auth::{Permission, Principal};
use pos_core::payloads::{PrintDone, PrintQueued, PrintStarted, StockCause, StockMoved};
use pos_core::sale::events::{self as ev, Refunded};
use pos_core::sale::{
    parse_barcode, Balance, Discount, LineNo, Money, Product, Quantity, ReasonKind, Receipt,
    RefundLine, RefundPlan, RefundRequest, Refundable, SaleError, ShiftReport, Tender, Ticket,
};
use pos_core::{EventId, Hlc, ShiftId, TicketId, UserId};
use pos_drivers::escpos::{encode_receipt, Layout};
use pos_drivers::printer::{PrinterError, ReceiptPrinter};
use pos_store::{AccountError, ShiftInfo, Store, StoreError};

/// Who approves (or acts): a second person's name and secret, typed on the terminal.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    pub name: &'a str,
    pub secret: &'a str,
    pub totp: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        write!(f, "Credentials({})", self.name)
    }
}

impl<'a> Credentials<'a> {
    pub fn new(name: &'a str, secret: &'a str) -> Self {
        Credentials {
            name,
            secret,
            totp: None,
        }
    }
}

/// Why a command was refused; the message is what the cashier's screen shows.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Sale(#[from] SaleError),
    #[error("{0}")]
    Account(#[from] AccountError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("nobody is logged in: log in first")]
    NotLoggedIn,
    #[error("no open shift: open one with a float first")]
    NoShift,
    #[error("no open ticket: scan an item first")]
    NoTicket,
    #[error("a ticket is open: pay, park or clear it first")]
    TicketOpen,
    #[error("unknown barcode {0}: check the code or key the item's PLU")]
    UnknownBarcode(String),
    #[error("unknown product {0}")]
    UnknownProduct(String),
    #[error("receipt {0} not found on this terminal")]
    UnknownReceipt(u64),
    #[error("{0} needs a supervisor's approval: enter their PIN and a reason")]
    ApprovalNeeded(&'static str),
    #[error("receipt {0} was voided: there is nothing left to refund")]
    ReceiptVoided(u64),
    #[error("printer: {0}")]
    Device(String),
    #[error("parked ticket {0} not found")]
    UnknownParked(TicketId),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The most a float, a paid-in or paid-out, or the change of a cash payment may be (10 million):
/// far above any real drawer. A single absurd amount (a barcode scanned into the amount field)
/// would otherwise overflow the shift's totals, and the shift could never be reported or closed.
const MAX_CASH: Money = pos_core::sale::catalogue::MAX_PRICE;

/// What [`Engine::print_next`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrintProgress {
    /// Nothing waits for the printer.
    Idle,
    Printed {
        receipt: u64,
        copy: bool,
    },
    /// The job waits; `problem` says what the cashier must do (paper, cover, power) and
    /// `trouble` classifies it for screens that word it themselves (translations).
    Waiting {
        receipt: u64,
        problem: String,
        trouble: PrinterTrouble,
    },
}

/// What keeps a receipt from printing, as the cashier fixes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrinterTrouble {
    PaperOut,
    CoverOpen,
    /// Switched off, unplugged or not answering.
    Offline,
    /// A cutter or mechanical error.
    Error,
    /// Sent, but not confirmed: it will be reprinted as COPY.
    Unconfirmed,
}

impl PrinterTrouble {
    fn of(e: &PrinterError) -> PrinterTrouble {
        match e {
            PrinterError::NotReady(s) | PrinterError::NotConfirmed(s) if s.paper_out => {
                PrinterTrouble::PaperOut
            }
            PrinterError::NotReady(s) | PrinterError::NotConfirmed(s) if s.cover_open => {
                PrinterTrouble::CoverOpen
            }
            PrinterError::NotReady(s) if !s.online => PrinterTrouble::Offline,
            PrinterError::NotReady(_) | PrinterError::Encode(_) => PrinterTrouble::Error,
            PrinterError::NotConfirmed(_) | PrinterError::Unconfirmed(_) => {
                PrinterTrouble::Unconfirmed
            }
            PrinterError::Offline | PrinterError::BadStatus(_) | PrinterError::Io(_) => {
                PrinterTrouble::Offline
            }
        }
    }
}

/// A closed shift: the Z report and the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZReport {
    pub shift: ShiftId,
    pub z_number: u64,
    pub counted: Money,
    pub expected: Money,
    pub over_short: Money,
    pub report: ShiftReport,
}

/// An approval as it goes on the event envelope.
struct Approved {
    approver: Option<UserId>,
    reason: Option<String>,
    audit: Option<EventDraft>,
}

#[derive(Debug)]
pub struct Engine {
    store: Store,
    cfg: EngineConfig,
    cashier: Option<Principal>,
    cashier_name: String,
    ticket: Option<Ticket>,
    /// Durable copy of the open ticket (survives a power cut) and what it last held.
    journal: journal::Journal,
    journaled: Option<Ticket>,
}

impl Engine {
    /// The engine over `store`. A ticket left open by a power cut or a crash (in the journal)
    /// comes back when its cashier logs in again; see [`Engine::login`].
    pub fn new(store: Store, cfg: EngineConfig) -> Engine {
        let journal = journal::Journal::in_dir(store.dir());
        Engine {
            store,
            cfg,
            cashier: None,
            cashier_name: String::new(),
            ticket: None,
            journal,
            journaled: None,
        }
    }

    /// Make the journal hold the open ticket (or nothing). A failed write is logged, not
    /// refused: the line is on the screen and the sale's own commit will report a full disk.
    fn journal_sync(&mut self) {
        let open = self.ticket.as_ref().filter(|t| !t.is_empty());
        if open == self.journaled.as_ref() {
            return;
        }
        let entry = match (open, &self.cashier) {
            (Some(ticket), Some(c)) => Some(journal::Entry {
                cashier: c.user,
                ticket: ticket.clone(),
            }),
            _ => None,
        };
        match self.journal.save(entry.as_ref()) {
            Ok(()) => self.journaled = entry.map(|e| e.ticket),
            Err(e) => tracing::error!("open ticket journal not written: {e}"),
        }
    }

    /// After a login: the ticket a crash left open. Its own cashier gets it back on screen;
    /// anyone else finds it parked under that cashier's name (never handed over).
    fn recover_journal(&mut self) -> Result<()> {
        // A ticket open in this process is what the journal holds: nothing to recover.
        if self.ticket.is_some() || self.journaled.is_some() {
            return Ok(());
        }
        let Some(entry) = self.journal.load() else {
            return Ok(());
        };
        let Some(me) = self.cashier.as_ref().map(|c| c.user) else {
            return Ok(());
        };
        if entry.cashier == me {
            self.journaled = Some(entry.ticket.clone());
            self.ticket = Some(entry.ticket);
            tracing::warn!("open ticket recovered after a restart");
            return Ok(());
        }
        let d = EventDraft::json(
            ev::SALE,
            ev::TicketParked::KIND,
            &ev::TicketParked {
                ticket: entry.ticket,
            },
        )
        .by(entry.cashier);
        self.store.append(vec![d])?;
        // Nothing of ours is open: the journal still holds the old ticket; empty it now.
        if let Err(e) = self.journal.save(None) {
            tracing::error!("open ticket journal not cleared: {e}");
        }
        tracing::warn!("a ticket left open before a restart was parked");
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    pub fn into_store(self) -> Store {
        self.store
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    // ---- session -------------------------------------------------------------------------

    /// Log a user in on this terminal (their attempt is in the security log either way).
    pub fn login(&mut self, who: Credentials<'_>) -> Result<&Principal> {
        let principal =
            self.store
                .authenticate(who.name, who.secret, who.totp, &self.cfg.accounts)?;
        self.start_session(principal, who.name)
    }

    /// Log in by scanning a staff badge (same lockout and logging as a PIN).
    pub fn login_badge(&mut self, badge: &str) -> Result<&Principal> {
        let ok = self
            .store
            .login_badge(badge, &self.cfg.accounts)?
            .map_err(AccountError::Login)?;
        let principal = self
            .store
            .principal(ok.user)?
            .ok_or(AccountError::UnknownUser(String::new()))?;
        self.start_session(principal, "")
    }

    fn start_session(&mut self, principal: Principal, name: &str) -> Result<&Principal> {
        // Someone else's open ticket is parked under their name, never handed over.
        if self
            .cashier
            .as_ref()
            .is_some_and(|c| c.user != principal.user)
        {
            self.logout()?;
        }
        self.cashier_name = self
            .store
            .users()?
            .into_iter()
            .find(|u| u.user == principal.user)
            .map(|u| u.display_name)
            .unwrap_or_else(|| name.to_owned());
        self.cashier = Some(principal);
        self.recover_journal()?;
        self.cashier.as_ref().ok_or(EngineError::NotLoggedIn)
    }

    /// Log out; an open ticket is parked so nothing is lost.
    pub fn logout(&mut self) -> Result<Option<TicketId>> {
        let parked = match &self.ticket {
            Some(t) if !t.is_empty() => Some(self.park()?),
            _ => None,
        };
        self.ticket = None;
        self.cashier = None;
        self.journal_sync();
        Ok(parked)
    }

    pub fn cashier(&self) -> Option<&Principal> {
        self.cashier.as_ref()
    }

    fn actor(&self) -> Result<Principal> {
        self.cashier.clone().ok_or(EngineError::NotLoggedIn)
    }

    /// The cashier must be allowed to sell: asks the policy every time, so an admin or a
    /// read-only role is refused even if another of their roles grants `sell`.
    fn seller(&mut self) -> Result<()> {
        self.approve(Permission::Sell, None, None).map(drop)
    }

    /// Check `permission` for the cashier, with a second person where the policy needs one
    /// (or where the cashier lacks the permission and a holder of it steps in), and the reason
    /// code where the action needs one. Denials are logged by the store.
    fn approve(
        &mut self,
        permission: Permission,
        approver: Option<Credentials<'_>>,
        reason: Option<(ReasonKind, &str)>,
    ) -> Result<Approved> {
        let actor = self.actor()?;
        if let Some((kind, code)) = reason {
            self.cfg.reasons.require(kind, code)?;
        }
        let approver = match approver {
            Some(c) => {
                Some(
                    self.store
                        .authenticate(c.name, c.secret, c.totp, &self.cfg.accounts)?,
                )
            }
            None => None,
        };
        let reason = reason.map(|(_, code)| code.to_owned());
        let stepping_in = !permission.needs_approval() && !actor.has(permission);
        let authorized = match (&approver, stepping_in) {
            // A holder of the permission acts for the cashier (e.g. a no-sale by a supervisor).
            (Some(a), true) => self.store.authorize(a, permission, None)?,
            (None, _) if permission.needs_approval() => {
                // Let the store log the refusal, then say what is needed.
                self.store.authorize(&actor, permission, None)?;
                return Err(EngineError::ApprovalNeeded(permission.as_str()));
            }
            _ => self
                .store
                .authorize(&actor, permission, approver.as_ref())?,
        };
        Ok(Approved {
            approver: approver.map(|a| a.user),
            reason,
            audit: authorized.audit,
        })
    }

    fn draft(
        &self,
        module: &str,
        kind: &str,
        payload: &impl serde::Serialize,
        ok: &Approved,
    ) -> Result<EventDraft> {
        let actor = self.actor()?;
        let mut d = EventDraft::json(module, kind, payload).by(actor.user);
        d.approver = ok.approver;
        d.reason = ok.reason.clone();
        Ok(d)
    }

    fn plain(&self) -> Approved {
        Approved {
            approver: None,
            reason: None,
            audit: None,
        }
    }

    // ---- shift ---------------------------------------------------------------------------

    pub fn shift(&self) -> Result<Option<ShiftInfo>> {
        Ok(self.store.open_shift(self.store.device_id())?)
    }

    fn shift_id(&self) -> Result<ShiftId> {
        self.shift()?.map(|s| s.id).ok_or(EngineError::NoShift)
    }

    /// Open the drawer session with a float.
    pub fn open_shift(&mut self, float: Money) -> Result<ShiftId> {
        let ok = self.approve(Permission::Sell, None, None)?;
        if float.is_negative() {
            return Err(SaleError::NegativeFloat.into());
        }
        if float > MAX_CASH {
            return Err(SaleError::Overflow.into());
        }
        let shift = ShiftId::new_v7();
        let d = self.draft(
            ev::SHIFT,
            ev::ShiftOpened::KIND,
            &ev::ShiftOpened { shift, float },
            &ok,
        )?;
        self.store.append(vec![d])?;
        Ok(shift)
    }

    /// Paid-in (`paid_in = true`) or paid-out, with a reason and a holder of cash in/out.
    pub fn cash_move(
        &mut self,
        paid_in: bool,
        amount: Money,
        approver: Option<Credentials<'_>>,
        reason: &str,
    ) -> Result<()> {
        let shift = self.shift_id()?;
        if !amount.is_positive() {
            return Err(SaleError::AmountNotPositive.into());
        }
        if amount > MAX_CASH {
            return Err(SaleError::Overflow.into());
        }
        let ok = self.approve(
            Permission::CashInOut,
            approver,
            Some((ReasonKind::PaidInOut, reason)),
        )?;
        let d = self.draft(
            ev::SHIFT,
            ev::CashMoved::KIND,
            &ev::CashMoved {
                shift,
                paid_in,
                amount,
            },
            &ok,
        )?;
        self.commit(d, ok.audit)
    }

    /// Open the drawer without a sale (reason required).
    pub fn no_sale(&mut self, approver: Option<Credentials<'_>>, reason: &str) -> Result<()> {
        let shift = self.shift_id()?;
        let ok = self.approve(
            Permission::NoSaleDrawerOpen,
            approver,
            Some((ReasonKind::NoSale, reason)),
        )?;
        let d = self.draft(ev::SHIFT, ev::NoSale::KIND, &ev::NoSale { shift }, &ok)?;
        self.commit(d, ok.audit)
    }

    /// The X report: the open shift so far.
    pub fn x_report(&self) -> Result<ShiftReport> {
        self.actor()?;
        let shift = self.shift_id()?;
        Ok(self.store.shift_report(shift)?)
    }

    /// Close the shift with a blind count: Z report with the next Z number, and a signed
    /// checkpoint of the log.
    pub fn close_shift(
        &mut self,
        counted: Money,
        approver: Option<Credentials<'_>>,
    ) -> Result<ZReport> {
        if self.ticket.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(EngineError::TicketOpen);
        }
        if counted.is_negative() {
            return Err(SaleError::NegativeCount.into());
        }
        let shift = self.shift_id()?;
        let ok = self.approve(Permission::ShiftClose, approver, None)?;
        let report = self.store.shift_report(shift)?;
        let close = report.drawer.close(counted)?;
        let z_number = self.store.next_z_number(self.store.device_id())?;
        let closed = ev::ShiftClosed {
            shift,
            z_number,
            counted,
            expected: close.expected,
            over_short: close.over_short,
            report: report.clone(),
        };
        let d = self.draft(ev::SHIFT, ev::ShiftClosed::KIND, &closed, &ok)?;
        self.commit(d, ok.audit)?;
        self.store.checkpoint()?;
        Ok(ZReport {
            shift,
            z_number,
            counted,
            expected: close.expected,
            over_short: close.over_short,
            report,
        })
    }

    // ---- ticket --------------------------------------------------------------------------

    pub fn ticket(&self) -> Option<&Ticket> {
        self.ticket.as_ref()
    }

    fn ticket_mut(&mut self) -> Result<&mut Ticket> {
        self.actor()?;
        self.ticket.as_mut().ok_or(EngineError::NoTicket)
    }

    fn open_ticket(&mut self) -> Result<&mut Ticket> {
        self.seller()?;
        self.shift_id()?;
        if self.ticket.is_none() {
            let rates = self.store.tax_rates()?;
            self.ticket = Some(Ticket::new(TicketId::new_v7(), self.cfg.mode, rates));
        }
        self.ticket_mut()
    }

    /// A scanned barcode (EAN/UPC, PLU, price- or weight-embedded label).
    pub fn scan(&mut self, code: &str) -> Result<LineNo> {
        let scanned = parse_barcode(code, &self.cfg.barcodes).map_err(SaleError::from)?;
        let product = self
            .store
            .product_by_code(scanned.lookup_key())?
            .ok_or_else(|| EngineError::UnknownBarcode(code.trim().to_owned()))?;
        // A GTIN or PLU is one piece; a product sold by weight must be weighed (or labelled).
        let line = self.open_ticket()?.add_scanned(&product, &scanned)?;
        self.journal_sync();
        Ok(line)
    }

    /// An item keyed by SKU/PLU with a quantity (thousandths: 1000 = one piece or 1 kg).
    pub fn add(&mut self, sku: &str, qty: Quantity) -> Result<LineNo> {
        let product = self
            .store
            .product_by_sku(sku)?
            .ok_or_else(|| EngineError::UnknownProduct(sku.to_owned()))?;
        let line = self.open_ticket()?.add_item(&product, qty, None)?;
        self.journal_sync();
        Ok(line)
    }

    /// The products on quick keys, in key order (the sale screen's product grid).
    pub fn quick_keys(&self) -> Result<Vec<Product>> {
        Ok(self.store.quick_keys()?)
    }

    /// The logged-in cashier's display name (empty when nobody is logged in).
    pub fn cashier_name(&self) -> &str {
        match self.cashier {
            Some(_) => &self.cashier_name,
            None => "",
        }
    }

    pub fn search(&self, query: &str) -> Result<Vec<Product>> {
        Ok(self.store.search_products(query, 50)?)
    }

    pub fn set_quantity(&mut self, line: LineNo, qty: Quantity) -> Result<()> {
        self.ticket_mut()?.set_quantity(line, qty)?;
        self.journal_sync();
        Ok(())
    }

    /// Take a line off the ticket: always needs a second person and a reason, and is logged
    /// at once, even if the ticket is never paid.
    pub fn void_line(
        &mut self,
        line: LineNo,
        approver: Credentials<'_>,
        reason: &str,
    ) -> Result<()> {
        self.actor()?;
        let shift = self.shift_id()?;
        let (ticket_id, l) = {
            let t = self.ticket.as_ref().ok_or(EngineError::NoTicket)?;
            (t.id(), t.line(line)?.clone())
        };
        let mut trial = self.ticket.clone().ok_or(EngineError::NoTicket)?;
        trial.void_line(line)?;
        let ok = self.approve(
            Permission::LineVoid,
            Some(approver),
            Some((ReasonKind::Void, reason)),
        )?;
        let voided = ev::LineVoided {
            ticket: ticket_id,
            shift,
            line: line.0,
            sku: l.sku.clone(),
            name: l.name.clone(),
            quantity: l.qty,
            amount: l.amount()?,
        };
        let d = self.draft(ev::SALE, ev::LineVoided::KIND, &voided, &ok)?;
        self.commit(d, ok.audit)?;
        self.ticket = Some(trial);
        self.journal_sync();
        Ok(())
    }

    /// A discount on a line (`Some(line)`) or the whole ticket. Above the policy's threshold it
    /// needs a second person and a reason.
    pub fn discount(
        &mut self,
        line: Option<LineNo>,
        discount: Discount,
        approval: Option<(Credentials<'_>, &str)>,
    ) -> Result<()> {
        self.actor()?;
        let mut trial = self.ticket.clone().ok_or(EngineError::NoTicket)?;
        let base = match line {
            Some(l) => trial.line(l)?.amount()?,
            None => trial.totals()?.subtotal,
        };
        match line {
            Some(l) => trial.line_discount(l, discount)?,
            None => trial.ticket_discount(discount)?,
        }
        if self.cfg.discounts.needs_approval(&discount, base) {
            let (approver, reason) =
                approval.ok_or(EngineError::ApprovalNeeded("discount_above_threshold"))?;
            let ok = self.approve(
                Permission::DiscountAboveThreshold,
                Some(approver),
                Some((ReasonKind::Discount, reason)),
            )?;
            let given = ev::DiscountGiven {
                ticket: trial.id(),
                line: line.map(|l| l.0),
                discount,
                amount: discount.amount_on(base)?,
            };
            let d = self.draft(ev::SALE, ev::DiscountGiven::KIND, &given, &ok)?;
            self.commit(d, ok.audit)?;
        } else {
            self.approve(Permission::Sell, None, None)?;
        }
        self.ticket = Some(trial);
        self.journal_sync();
        Ok(())
    }

    /// Change a line's price: needs a second person and a reason; before/after are logged.
    pub fn override_price(
        &mut self,
        line: LineNo,
        price: Money,
        approver: Credentials<'_>,
        reason: &str,
    ) -> Result<()> {
        self.actor()?;
        let mut trial = self.ticket.clone().ok_or(EngineError::NoTicket)?;
        let before = trial.line(line)?.unit_price;
        let sku = trial.line(line)?.sku.clone();
        trial.override_price(line, price)?;
        let ok = self.approve(
            Permission::PriceOverride,
            Some(approver),
            Some((ReasonKind::PriceOverride, reason)),
        )?;
        let p = ev::PriceOverridden {
            ticket: trial.id(),
            line: line.0,
            sku,
            before,
            after: price,
        };
        let d = self.draft(ev::SALE, ev::PriceOverridden::KIND, &p, &ok)?;
        self.commit(d, ok.audit)?;
        self.ticket = Some(trial);
        self.journal_sync();
        Ok(())
    }

    /// Put the ticket aside (persisted: survives a restart) to serve someone else.
    pub fn park(&mut self) -> Result<TicketId> {
        self.actor()?;
        let ticket = self.ticket.clone().ok_or(EngineError::NoTicket)?;
        let ok = self.plain();
        let id = ticket.id();
        let d = self.draft(
            ev::SALE,
            ev::TicketParked::KIND,
            &ev::TicketParked { ticket },
            &ok,
        )?;
        self.store.append(vec![d])?;
        self.ticket = None;
        self.journal_sync();
        Ok(id)
    }

    pub fn parked(&self) -> Result<Vec<Ticket>> {
        Ok(self.store.parked_tickets(self.store.device_id())?)
    }

    pub fn resume(&mut self, id: TicketId) -> Result<()> {
        self.seller()?;
        if self.ticket.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(EngineError::TicketOpen);
        }
        let ticket = self
            .parked()?
            .into_iter()
            .find(|t| t.id() == id)
            .ok_or(EngineError::UnknownParked(id))?;
        let ok = self.plain();
        let d = self.draft(
            ev::SALE,
            ev::TicketResumed::KIND,
            &ev::TicketResumed { ticket: id },
            &ok,
        )?;
        self.store.append(vec![d])?;
        self.ticket = Some(ticket);
        self.journal_sync();
        Ok(())
    }

    /// Drop an unpaid ticket whose lines were all voided (or that is empty).
    pub fn clear(&mut self) -> Result<()> {
        if let Some(t) = &self.ticket {
            if t.lines().iter().any(|l| !l.voided) {
                return Err(EngineError::TicketOpen);
            }
        }
        self.ticket = None;
        self.journal_sync();
        Ok(())
    }

    pub fn balance(&self) -> Result<Balance> {
        let t = self.ticket.as_ref().ok_or(EngineError::NoTicket)?;
        Ok(t.balance(&self.cfg.rounding)?)
    }

    /// Take a payment; returns what is left to pay (or the change).
    pub fn pay(&mut self, tender: Tender, amount: Money) -> Result<Balance> {
        self.seller()?;
        self.shift_id()?;
        let rounding = self.cfg.rounding;
        let mut trial = self.ticket.clone().ok_or(EngineError::NoTicket)?;
        if tender.is_cash() {
            let remaining = trial.balance(&rounding)?.remaining;
            if amount.0 > remaining.0.saturating_add(MAX_CASH.0) {
                return Err(SaleError::Overflow.into());
            }
        }
        trial.add_payment(tender, amount)?;
        let balance = trial.balance(&rounding)?;
        self.ticket = Some(trial);
        self.journal_sync();
        Ok(balance)
    }

    /// Complete the paid ticket: one durable commit of the sale with its gapless receipt number
    /// and its stock movements. Returns the receipt to print.
    pub fn complete(&mut self) -> Result<Receipt> {
        self.seller()?;
        let shift = self.shift_id()?;
        let ticket = self.ticket.as_ref().ok_or(EngineError::NoTicket)?;
        let sale = ticket.complete(&self.cfg.rounding)?;
        let terminal = self.store.device_id();
        let number = self.store.next_receipt_number(terminal)?;
        let ok = self.plain();
        let mut drafts = Vec::with_capacity(sale.lines.len() + 1);
        for l in sale.lines.iter().filter(|l| !l.voided) {
            drafts.push(self.stock(&l.sku, -l.qty.0, StockCause::Sale, number)?);
        }
        // The receipt is queued for the printer in the sale's own commit: a committed sale
        // always gets printed, even after a power cut.
        let queued = PrintQueued {
            job: EventId::new_v7(),
            receipt: number,
            copy: false,
        };
        drafts.push(self.draft(PrintQueued::MODULE, PrintQueued::KIND, &queued, &ok)?);
        let completed = ev::SaleCompleted {
            receipt: number,
            shift,
            sale,
        };
        // Last in the commit: its hash is the commit's head, printed in the receipt's QR code.
        drafts.push(self.draft(ev::SALE, ev::SaleCompleted::KIND, &completed, &ok)?);
        self.store.append(drafts)?;
        self.ticket = None;
        self.journal_sync();
        self.receipt(number, false)
    }

    fn stock(
        &self,
        sku: &str,
        quantity: i64,
        cause: StockCause,
        reference: u64,
    ) -> Result<EventDraft> {
        let moved = StockMoved {
            item: sku.to_owned(),
            quantity,
            cause: Some(cause),
            reference: Some(reference.to_string()),
        };
        let ok = self.plain();
        self.draft(StockMoved::MODULE, StockMoved::KIND, &moved, &ok)
    }

    fn commit(&mut self, draft: EventDraft, audit: Option<EventDraft>) -> Result<()> {
        let mut drafts: Vec<EventDraft> = audit.into_iter().collect();
        drafts.push(draft);
        self.store.append(drafts)?;
        Ok(())
    }

    // ---- printing --------------------------------------------------------------------------

    /// Queue a reprint of receipt `number`, marked COPY (logged like any action).
    pub fn reprint(&mut self, number: u64) -> Result<()> {
        self.seller()?;
        self.receipt(number, true)?;
        let ok = self.plain();
        let queued = PrintQueued {
            job: EventId::new_v7(),
            receipt: number,
            copy: true,
        };
        let d = self.draft(PrintQueued::MODULE, PrintQueued::KIND, &queued, &ok)?;
        self.store.append(vec![d])?;
        Ok(())
    }

    /// Print the oldest waiting receipt, if the printer is ready. A job is marked done only
    /// after the printer confirmed it; one that was started but not confirmed comes back as
    /// COPY. Never blocks on a missing printer: it reports what the cashier must do.
    pub fn print_next(
        &mut self,
        printer: &mut dyn ReceiptPrinter,
        layout: &Layout,
    ) -> Result<PrintProgress> {
        let terminal = self.store.device_id();
        let Some(job) = self.store.next_print_job(terminal)? else {
            return Ok(PrintProgress::Idle);
        };
        let receipt = self.receipt(job.receipt, job.copy)?;
        let bytes =
            encode_receipt(&receipt, layout).map_err(|e| EngineError::Device(e.to_string()))?;
        let waiting = |e: PrinterError| PrintProgress::Waiting {
            receipt: job.receipt,
            problem: e.to_string(),
            trouble: PrinterTrouble::of(&e),
        };
        match printer.status() {
            Ok(status) if status.ready() => {}
            Ok(status) => return Ok(waiting(PrinterError::NotReady(status))),
            Err(e) => return Ok(waiting(e)),
        }
        let started = PrintStarted {
            job: job.job,
            attempt: job.attempts + 1,
        };
        self.store.append(vec![self.system_draft(
            PrintQueued::MODULE,
            PrintStarted::KIND,
            &started,
        )])?;
        match printer.print(&bytes) {
            Ok(()) => {
                let done = PrintDone { job: job.job };
                self.store.append(vec![self.system_draft(
                    PrintQueued::MODULE,
                    PrintDone::KIND,
                    &done,
                )])?;
                Ok(PrintProgress::Printed {
                    receipt: job.receipt,
                    copy: job.copy,
                })
            }
            Err(e) => Ok(waiting(e)),
        }
    }

    /// An event by the cashier if one is logged in, else by the device itself.
    fn system_draft(
        &self,
        module: &str,
        kind: &str,
        payload: &impl serde::Serialize,
    ) -> EventDraft {
        let d = EventDraft::json(module, kind, payload);
        match &self.cashier {
            Some(c) => d.by(c.user),
            None => d,
        }
    }

    // ---- receipts, voids, refunds ---------------------------------------------------------

    /// The receipt model of a completed sale; `copy` marks a reprint.
    pub fn receipt(&self, number: u64, copy: bool) -> Result<Receipt> {
        let terminal = self.store.device_id();
        let stored = self
            .store
            .receipt(terminal, number)?
            .ok_or(EngineError::UnknownReceipt(number))?;
        let cashier = match stored.cashier {
            Some(c) => self
                .store
                .users()?
                .into_iter()
                .find(|u| u.user == c)
                .map(|u| u.display_name)
                .unwrap_or_default(),
            None => String::new(),
        };
        Ok(Receipt {
            header: self.cfg.header.clone(),
            terminal: self.store.identity().name.clone(),
            cashier,
            number,
            time: self.cfg.format_time(stored.time),
            sale: stored.sale,
            footer: self.cfg.footer.clone(),
            qr: pos_core::sale::qr_payload(
                &terminal.to_string(),
                number,
                &hex::encode(stored.event_hash),
            ),
            copy,
            currency: self.cfg.currency.clone(),
        })
    }

    /// A receipt from its number or its scanned QR payload (`3PPOS1:<device>:<no>:<hash>`),
    /// checked against the log: a forged or foreign paper receipt is refused.
    pub fn find_receipt(&self, text: &str) -> Result<Receipt> {
        let text = text.trim();
        let number = match text.strip_prefix("3PPOS1:") {
            Some(rest) => {
                let parts: Vec<&str> = rest.split(':').collect();
                let [device, no, hash] = parts.as_slice() else {
                    return Err(EngineError::UnknownReceipt(0));
                };
                let no: u64 = no.parse().map_err(|_| EngineError::UnknownReceipt(0))?;
                let r = self.receipt(no, false)?;
                // The whole chain hash must match: a suffix (or nothing) proves nothing.
                let printed = r.qr.rsplit_once(':').map(|(_, h)| h);
                if *device != self.store.device_id().to_string() || printed != Some(*hash) {
                    return Err(EngineError::UnknownReceipt(no));
                }
                no
            }
            None => text.parse().map_err(|_| EngineError::UnknownReceipt(0))?,
        };
        self.receipt(number, false)
    }

    /// Cancel a completed receipt (second person, reason): stock goes back.
    pub fn post_void(
        &mut self,
        number: u64,
        approver: Credentials<'_>,
        reason: &str,
    ) -> Result<()> {
        let shift = self.shift_id()?;
        let terminal = self.store.device_id();
        let stored = self
            .store
            .receipt(terminal, number)?
            .ok_or(EngineError::UnknownReceipt(number))?;
        let ok = self.approve(
            Permission::PostVoid,
            Some(approver),
            Some((ReasonKind::PostVoid, reason)),
        )?;
        let mut drafts: Vec<EventDraft> = ok.audit.clone().into_iter().collect();
        for l in stored.sale.lines.iter().filter(|l| !l.voided) {
            drafts.push(self.stock(&l.sku, l.qty.0, StockCause::PostVoid, number)?);
        }
        let p = ev::PostVoided {
            receipt: number,
            shift,
            total: stored.sale.totals.due,
        };
        drafts.push(self.draft(ev::SALE, ev::PostVoided::KIND, &p, &ok)?);
        self.store.append(drafts)?;
        Ok(())
    }

    /// Return goods of receipt `original` (partial allowed, never more than was sold).
    pub fn refund(
        &mut self,
        original: u64,
        lines: &[RefundRequest],
        tender: Tender,
        approver: Credentials<'_>,
        reason: &str,
    ) -> Result<Refunded> {
        let terminal = self.store.device_id();
        let stored = self
            .store
            .receipt(terminal, original)?
            .ok_or(EngineError::UnknownReceipt(original))?;
        if stored.post_voided {
            return Err(EngineError::ReceiptVoided(original));
        }
        let previous: Vec<RefundLine> = self
            .store
            .refunds_of(terminal, original)?
            .iter()
            .flat_map(|r| r.plan.records())
            .collect();
        let plan = Refundable::new(&stored.sale, &previous)?.check_refund(lines)?;
        self.commit_refund(Some(original), plan, tender, approver, reason)
    }

    /// Return goods without a receipt, at `price` per unit.
    pub fn refund_without_receipt(
        &mut self,
        sku: &str,
        qty: Quantity,
        price: Money,
        tender: Tender,
        approver: Credentials<'_>,
        reason: &str,
    ) -> Result<Refunded> {
        let product = self
            .store
            .product_by_sku(sku)?
            .ok_or_else(|| EngineError::UnknownProduct(sku.to_owned()))?;
        let rates = self.store.tax_rates()?;
        let plan = RefundPlan::without_receipt(&product, qty, price, &rates, self.cfg.mode)?;
        self.commit_refund(None, plan, tender, approver, reason)
    }

    fn commit_refund(
        &mut self,
        original: Option<u64>,
        plan: RefundPlan,
        tender: Tender,
        approver: Credentials<'_>,
        reason: &str,
    ) -> Result<Refunded> {
        let shift = self.shift_id()?;
        let ok = self.approve(
            Permission::Refund,
            Some(approver),
            Some((ReasonKind::Refund, reason)),
        )?;
        let number = self.store.next_refund_number(self.store.device_id())?;
        let mut drafts: Vec<EventDraft> = ok.audit.clone().into_iter().collect();
        for l in &plan.lines {
            drafts.push(self.stock(&l.sku, l.qty.0, StockCause::Refund, number)?);
        }
        let refunded = Refunded {
            refund: number,
            original,
            shift,
            plan,
            tender,
        };
        drafts.push(self.draft(ev::SALE, Refunded::KIND, &refunded, &ok)?);
        self.store.append(drafts)?;
        Ok(refunded)
    }

    // ---- inventory and catalogue ------------------------------------------------------------

    /// Goods received (delivery note as reference).
    pub fn receive_stock(
        &mut self,
        sku: &str,
        qty: Quantity,
        reference: &str,
        approver: Option<Credentials<'_>>,
    ) -> Result<()> {
        self.require_product(sku)?;
        if qty.0 <= 0 {
            return Err(SaleError::QuantityNotPositive.into());
        }
        let ok = self.approve(Permission::CatalogueEdit, approver, None)?;
        let moved = StockMoved {
            item: sku.to_owned(),
            quantity: qty.0,
            cause: Some(StockCause::Receiving),
            reference: Some(reference.to_owned()),
        };
        let d = self.draft(StockMoved::MODULE, StockMoved::KIND, &moved, &ok)?;
        self.commit(d, ok.audit)
    }

    /// A correction (damage, theft...): requester and a second person, with a reason.
    pub fn adjust_stock(
        &mut self,
        sku: &str,
        delta: Quantity,
        approver: Credentials<'_>,
        reason: &str,
    ) -> Result<()> {
        self.require_product(sku)?;
        if delta.0 == 0 {
            return Err(SaleError::QuantityNotPositive.into());
        }
        let ok = self.approve(
            Permission::StockAdjust,
            Some(approver),
            Some((ReasonKind::StockAdjust, reason)),
        )?;
        let moved = StockMoved {
            item: sku.to_owned(),
            quantity: delta.0,
            cause: Some(StockCause::Adjustment),
            reference: None,
        };
        let d = self.draft(StockMoved::MODULE, StockMoved::KIND, &moved, &ok)?;
        self.commit(d, ok.audit)
    }

    /// A stock count: records the difference to the counted quantity as a movement.
    pub fn count_stock(
        &mut self,
        sku: &str,
        counted: Quantity,
        approver: Credentials<'_>,
    ) -> Result<Quantity> {
        self.actor()?;
        self.require_product(sku)?;
        let current = self.stock_level(sku)?;
        let delta = Quantity(
            counted
                .0
                .checked_sub(current.0)
                .ok_or(SaleError::Overflow)?,
        );
        if delta.0 == 0 {
            return Ok(delta);
        }
        // A count needs no reason code: the count itself is the reason.
        let mut ok = self.approve(Permission::StockAdjust, Some(approver), None)?;
        ok.reason = Some("stock-count".to_owned());
        let moved = StockMoved {
            item: sku.to_owned(),
            quantity: delta.0,
            cause: Some(StockCause::Count),
            reference: None,
        };
        let d = self.draft(StockMoved::MODULE, StockMoved::KIND, &moved, &ok)?;
        self.commit(d, ok.audit)?;
        Ok(delta)
    }

    pub fn stock_level(&self, sku: &str) -> Result<Quantity> {
        Ok(Quantity(
            self.store
                .stock_levels()?
                .into_iter()
                .find(|(item, _)| item == sku)
                .map(|(_, q)| q)
                .unwrap_or(0),
        ))
    }

    fn require_product(&self, sku: &str) -> Result<Product> {
        self.store
            .product_by_sku(sku)?
            .ok_or_else(|| EngineError::UnknownProduct(sku.to_owned()))
    }

    /// Create or change a product (catalogue edit; on a branch this is the hub's job).
    pub fn save_product(&mut self, product: Product) -> Result<()> {
        product.validate(&self.cfg.barcodes)?;
        let ok = self.approve(Permission::CatalogueEdit, None, None)?;
        let before = self.store.product(product.id)?;
        let d = self.draft(
            ev::CATALOGUE,
            ev::ProductSaved::KIND,
            &ev::ProductSaved { product, before },
            &ok,
        )?;
        self.commit(d, None)
    }

    pub fn save_tax_rate(&mut self, rate: pos_core::sale::TaxRate) -> Result<()> {
        let ok = self.approve(Permission::CatalogueEdit, None, None)?;
        let before = self
            .store
            .tax_rates()?
            .into_iter()
            .find(|r| r.class == rate.class);
        let d = self.draft(
            ev::CATALOGUE,
            ev::TaxRateSaved::KIND,
            &ev::TaxRateSaved { rate, before },
            &ok,
        )?;
        self.commit(d, None)
    }
}

/// Time for receipts, in the terminal's time zone.
pub fn local_time(hlc: Hlc) -> String {
    let ms = i64::try_from(hlc.wall_ms()).unwrap_or(i64::MAX);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
        Err(_) => String::new(),
    }
}

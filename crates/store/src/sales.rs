//! The `sale` and `shift` modules: receipts, refunds, voids, parked tickets, drawer sessions.
//!
//! Projections keep what the engine must look up quickly (the next receipt number, what a
//! receipt sold and what was already refunded, the open shift); the X/Z report of a shift is a
//! fold of the facts these tables hold (`ShiftReport::apply`), so it always matches the log.

use pos_audit::Event;
use pos_core::sale::events::{self as ev, Refunded, SaleCompleted};
use pos_core::sale::{CompletedSale, Money, SaleFact, ShiftReport, Ticket};
use pos_core::{DeviceId, Hlc, ShiftId, TicketId, UserId};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::projection::{payload, Projection, Refusal};
use crate::store::Store;

/// A shift as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftInfo {
    pub id: ShiftId,
    pub cashier: Option<UserId>,
    pub opened: Hlc,
    pub float: Money,
    pub closed: Option<Hlc>,
    pub z_number: Option<u64>,
}

/// A completed receipt as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    pub terminal: DeviceId,
    pub number: u64,
    pub shift: ShiftId,
    pub cashier: Option<UserId>,
    pub time: Hlc,
    pub post_voided: bool,
    pub sale: CompletedSale,
    /// Chain hash of its `sale.completed` event: printed in the receipt's QR code.
    pub event_hash: [u8; 32],
}

fn id16(bytes: &[u8]) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(bytes).ok()
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, Refusal> {
    serde_json::to_string(value).map_err(|e| Refusal(e.to_string()))
}

impl Store {
    /// The open shift of `terminal`, if any.
    pub fn open_shift(&self, terminal: DeviceId) -> crate::Result<Option<ShiftInfo>> {
        self.shift_where("terminal = ?1 AND closed_hlc IS NULL", terminal.as_bytes())
    }

    pub fn shift(&self, id: ShiftId) -> crate::Result<Option<ShiftInfo>> {
        self.shift_where("id = ?1", id.as_bytes())
    }

    fn shift_where(&self, condition: &str, key: &[u8]) -> crate::Result<Option<ShiftInfo>> {
        type Row = (Vec<u8>, Option<Vec<u8>>, i64, i64, Option<i64>, Option<i64>);
        let row: Option<Row> = self
            .conn()
            .query_row(
                &format!(
                    "SELECT id, cashier, opened_hlc, float, closed_hlc, z_number FROM shift_shifts
                     WHERE {condition} ORDER BY opened_hlc DESC LIMIT 1"
                ),
                [key],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .map_err(self.db_err())?;
        Ok(row.and_then(|(id, cashier, opened, float, closed, z)| {
            Some(ShiftInfo {
                id: ShiftId::from_bytes(id16(&id)?),
                cashier: cashier.as_deref().and_then(id16).map(UserId::from_bytes),
                opened: Hlc::from_raw(opened as u64),
                float: Money(float),
                closed: closed.map(|c| Hlc::from_raw(c as u64)),
                z_number: z.map(|z| z as u64),
            })
        }))
    }

    fn next_number(&self, sql: &str, terminal: DeviceId) -> crate::Result<u64> {
        let max: Option<i64> = self
            .conn()
            .query_row(sql, [terminal.as_bytes()], |r| r.get(0))
            .map_err(self.db_err())?;
        Ok(max.unwrap_or(0) as u64 + 1)
    }

    /// Receipt numbers are gapless per terminal: the next one is the highest committed + 1.
    pub fn next_receipt_number(&self, terminal: DeviceId) -> crate::Result<u64> {
        self.next_number(
            "SELECT max(number) FROM sale_receipts WHERE terminal = ?1",
            terminal,
        )
    }

    pub fn next_refund_number(&self, terminal: DeviceId) -> crate::Result<u64> {
        self.next_number(
            "SELECT max(number) FROM sale_refunds WHERE terminal = ?1",
            terminal,
        )
    }

    pub fn next_z_number(&self, terminal: DeviceId) -> crate::Result<u64> {
        self.next_number(
            "SELECT max(z_number) FROM shift_shifts WHERE terminal = ?1",
            terminal,
        )
    }

    pub fn receipt(&self, terminal: DeviceId, number: u64) -> crate::Result<Option<StoredReceipt>> {
        type Row = (Vec<u8>, Option<Vec<u8>>, i64, String, String, Vec<u8>);
        let row: Option<Row> = self
            .conn()
            .query_row(
                "SELECT shift, cashier, hlc, status, sale, event_hash FROM sale_receipts
                 WHERE terminal = ?1 AND number = ?2",
                params![terminal.as_bytes(), number as i64],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
            .map_err(self.db_err())?;
        Ok(row.and_then(|(shift, cashier, hlc, status, sale, hash)| {
            Some(StoredReceipt {
                terminal,
                number,
                shift: ShiftId::from_bytes(id16(&shift)?),
                cashier: cashier.as_deref().and_then(id16).map(UserId::from_bytes),
                time: Hlc::from_raw(hlc as u64),
                post_voided: status == "post_voided",
                sale: serde_json::from_str(&sale).ok()?,
                event_hash: <[u8; 32]>::try_from(hash.as_slice()).ok()?,
            })
        }))
    }

    /// The refunds already made against receipt `number`.
    pub fn refunds_of(&self, terminal: DeviceId, number: u64) -> crate::Result<Vec<Refunded>> {
        let rows: Vec<String> = self
            .conn()
            .prepare(
                "SELECT refund FROM sale_refunds WHERE terminal = ?1 AND original = ?2 ORDER BY number",
            )
            .and_then(|mut s| {
                s.query_map(params![terminal.as_bytes(), number as i64], |r| r.get(0))?
                    .collect()
            })
            .map_err(self.db_err())?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    /// Tickets parked on `terminal`, oldest first.
    pub fn parked_tickets(&self, terminal: DeviceId) -> crate::Result<Vec<Ticket>> {
        let rows: Vec<String> = self
            .conn()
            .prepare("SELECT body FROM sale_parked WHERE terminal = ?1 ORDER BY hlc")
            .and_then(|mut s| s.query_map([terminal.as_bytes()], |r| r.get(0))?.collect())
            .map_err(self.db_err())?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }

    /// The X report of a shift (its Z report once closed): a fold of the shift's facts.
    pub fn shift_report(&self, shift: ShiftId) -> crate::Result<ShiftReport> {
        let key = shift.as_bytes();
        let db = self.db_err();
        let strings = |sql: &str| -> crate::Result<Vec<String>> {
            self.conn()
                .prepare(sql)
                .and_then(|mut s| s.query_map([key], |r| r.get(0))?.collect())
                .map_err(&db)
        };
        let sold: Vec<CompletedSale> = strings("SELECT sale FROM sale_receipts WHERE shift = ?1")?
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect();
        let voided: Vec<CompletedSale> =
            strings("SELECT sale FROM sale_receipts WHERE void_shift = ?1")?
                .iter()
                .filter_map(|s| serde_json::from_str(s).ok())
                .collect();
        let refunds: Vec<Refunded> = strings("SELECT refund FROM sale_refunds WHERE shift = ?1")?
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect();
        let line_voids: Vec<i64> = self
            .conn()
            .prepare("SELECT amount FROM sale_line_voids WHERE shift = ?1")
            .and_then(|mut s| s.query_map([key], |r| r.get(0))?.collect())
            .map_err(&db)?;
        let moves: Vec<(String, i64)> = self
            .conn()
            .prepare("SELECT kind, amount FROM shift_cash_moves WHERE shift = ?1 ORDER BY seq")
            .and_then(|mut s| {
                s.query_map([key], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .map_err(&db)?;
        let float = self.shift(shift)?.map(|s| s.float).unwrap_or(Money::ZERO);

        let mut facts = vec![SaleFact::ShiftOpened { float }];
        facts.extend(sold.iter().map(SaleFact::Completed));
        facts.extend(voided.iter().map(SaleFact::PostVoided));
        facts.extend(refunds.iter().map(|r| SaleFact::Refunded {
            plan: &r.plan,
            tender: &r.tender,
        }));
        facts.extend(
            line_voids
                .iter()
                .map(|a| SaleFact::LineVoided { amount: Money(*a) }),
        );
        for (kind, amount) in &moves {
            facts.push(match kind.as_str() {
                "paid_in" => SaleFact::PaidIn(Money(*amount)),
                "paid_out" => SaleFact::PaidOut(Money(*amount)),
                _ => SaleFact::NoSale,
            });
        }
        facts
            .iter()
            .try_fold(ShiftReport::default(), |report, fact| report.apply(fact))
            .map_err(|e| crate::StoreError::Corrupt {
                path: self.dir().join(crate::DB_FILE),
                detail: format!("shift report does not add up: {e}"),
            })
    }
}

/// Module `sale`.
#[derive(Debug)]
pub(crate) struct SaleProjection;

impl Projection for SaleProjection {
    fn module(&self) -> &'static str {
        ev::SALE
    }
    fn tables(&self) -> &'static [&'static str] {
        &[
            "sale_receipts",
            "sale_refunds",
            "sale_line_voids",
            "sale_parked",
        ]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        let terminal = event.origin.as_bytes();
        let hlc = event.hlc.raw() as i64;
        match event.kind.as_str() {
            SaleCompleted::KIND => {
                let p: SaleCompleted = payload(event)?;
                expect_next(
                    tx,
                    "SELECT max(number) FROM sale_receipts WHERE terminal = ?1",
                    terminal,
                    p.receipt,
                    "receipt",
                )?;
                require_open_shift(tx, p.shift)?;
                tx.prepare_cached(
                    "INSERT INTO sale_receipts (terminal, number, ticket, shift, cashier, hlc, total,
                         status, sale, event_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'completed', ?8, ?9)",
                )?
                .execute(params![
                    terminal,
                    p.receipt as i64,
                    p.sale.ticket.as_bytes(),
                    p.shift.as_bytes(),
                    event.actor.as_ref().map(|a| a.as_bytes()),
                    hlc,
                    p.sale.totals.due.0,
                    json(&p.sale)?,
                    &event.hash.0[..],
                ])?;
                tx.prepare_cached("DELETE FROM sale_parked WHERE ticket = ?1")?
                    .execute([p.sale.ticket.as_bytes()])?;
            }
            ev::LineVoided::KIND => {
                let p: ev::LineVoided = payload(event)?;
                tx.prepare_cached(
                    "INSERT INTO sale_line_voids (terminal, ticket, line, shift, amount, hlc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    terminal,
                    p.ticket.as_bytes(),
                    p.line,
                    p.shift.as_bytes(),
                    p.amount.0,
                    hlc
                ])?;
            }
            // Recorded for the audit trail (before/after, approver, reason); no state to keep.
            ev::PriceOverridden::KIND | ev::DiscountGiven::KIND => {
                let _: serde_json::Value = payload(event)?;
            }
            ev::PostVoided::KIND => {
                let p: ev::PostVoided = payload(event)?;
                require_open_shift(tx, p.shift)?;
                let changed = tx
                    .prepare_cached(
                        "UPDATE sale_receipts SET status = 'post_voided', void_shift = ?3
                         WHERE terminal = ?1 AND number = ?2 AND status = 'completed'",
                    )?
                    .execute(params![terminal, p.receipt as i64, p.shift.as_bytes()])?;
                if changed == 0 {
                    return Err(Refusal(format!(
                        "receipt {} does not exist or is already void",
                        p.receipt
                    )));
                }
                let refunded: i64 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM sale_refunds WHERE terminal = ?1 AND original = ?2",
                    )?
                    .query_row(params![terminal, p.receipt as i64], |r| r.get(0))?;
                if refunded > 0 {
                    return Err(Refusal(format!(
                        "receipt {} was partly refunded: refund the rest instead of voiding it",
                        p.receipt
                    )));
                }
            }
            ev::Refunded::KIND => {
                let p: Refunded = payload(event)?;
                expect_next(
                    tx,
                    "SELECT max(number) FROM sale_refunds WHERE terminal = ?1",
                    terminal,
                    p.refund,
                    "refund",
                )?;
                require_open_shift(tx, p.shift)?;
                if let Some(original) = p.original {
                    let row: Option<(String, i64)> = tx
                        .prepare_cached(
                            "SELECT status, total FROM sale_receipts WHERE terminal = ?1 AND number = ?2",
                        )?
                        .query_row(params![terminal, original as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    let Some((status, total)) = row else {
                        return Err(Refusal(format!("receipt {original} does not exist")));
                    };
                    if status != "completed" {
                        return Err(Refusal(format!(
                            "receipt {original} was voided: nothing to refund"
                        )));
                    }
                    let before: i64 = tx
                        .prepare_cached(
                            "SELECT coalesce(sum(total), 0) FROM sale_refunds
                             WHERE terminal = ?1 AND original = ?2",
                        )?
                        .query_row(params![terminal, original as i64], |r| r.get(0))?;
                    if before.saturating_add(p.plan.total.0) > total {
                        return Err(Refusal(format!(
                            "refunds of receipt {original} would exceed what it sold"
                        )));
                    }
                }
                tx.prepare_cached(
                    "INSERT INTO sale_refunds (terminal, number, original, shift, hlc, total, refund)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    terminal,
                    p.refund as i64,
                    p.original.map(|o| o as i64),
                    p.shift.as_bytes(),
                    hlc,
                    p.plan.total.0,
                    json(&p)?
                ])?;
            }
            ev::TicketParked::KIND => {
                let p: ev::TicketParked = payload(event)?;
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO sale_parked (ticket, terminal, cashier, hlc, body)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    p.ticket.id().as_bytes(),
                    terminal,
                    event.actor.as_ref().map(|a| a.as_bytes()),
                    hlc,
                    json(&p.ticket)?
                ])?;
            }
            ev::TicketResumed::KIND => {
                let p: ev::TicketResumed = payload(event)?;
                remove_parked(tx, p.ticket)?;
            }
            other => return Err(Refusal(format!("unknown kind `{other}` for module `sale`"))),
        }
        Ok(())
    }
}

fn remove_parked(tx: &Transaction<'_>, ticket: TicketId) -> Result<(), Refusal> {
    let n = tx
        .prepare_cached("DELETE FROM sale_parked WHERE ticket = ?1")?
        .execute([ticket.as_bytes()])?;
    if n == 0 {
        return Err(Refusal(format!("ticket {ticket} is not parked")));
    }
    Ok(())
}

/// Numbers (receipts, refunds, Z reports) are gapless per terminal.
fn expect_next(
    tx: &Transaction<'_>,
    sql: &str,
    terminal: &[u8],
    number: u64,
    what: &str,
) -> Result<(), Refusal> {
    let max: Option<i64> = tx
        .prepare_cached(sql)?
        .query_row([terminal], |r| r.get(0))?;
    let expected = max.unwrap_or(0) as u64 + 1;
    if number != expected {
        return Err(Refusal(format!(
            "{what} number {number} is out of sequence: expected {expected}"
        )));
    }
    Ok(())
}

fn require_open_shift(tx: &Transaction<'_>, shift: ShiftId) -> Result<(), Refusal> {
    let open: Option<bool> = tx
        .prepare_cached("SELECT closed_hlc IS NULL FROM shift_shifts WHERE id = ?1")?
        .query_row([shift.as_bytes()], |r| r.get(0))
        .optional()?;
    match open {
        Some(true) => Ok(()),
        Some(false) => Err(Refusal(
            "the shift is closed: open a new shift first".into(),
        )),
        None => Err(Refusal("no such shift: open a shift first".into())),
    }
}

/// Module `shift`.
#[derive(Debug)]
pub(crate) struct ShiftProjection;

impl Projection for ShiftProjection {
    fn module(&self) -> &'static str {
        ev::SHIFT
    }
    fn tables(&self) -> &'static [&'static str] {
        &["shift_shifts", "shift_cash_moves"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        let terminal = event.origin.as_bytes();
        let hlc = event.hlc.raw() as i64;
        match event.kind.as_str() {
            ev::ShiftOpened::KIND => {
                let p: ev::ShiftOpened = payload(event)?;
                if p.float.is_negative() {
                    return Err(Refusal("the float cannot be negative".into()));
                }
                let open: bool = tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM shift_shifts WHERE terminal = ?1 AND closed_hlc IS NULL)",
                    )?
                    .query_row([terminal], |r| r.get(0))?;
                if open {
                    return Err(Refusal(
                        "a shift is already open on this terminal: close it first".into(),
                    ));
                }
                tx.prepare_cached(
                    "INSERT INTO shift_shifts (id, terminal, cashier, opened_hlc, float) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    p.shift.as_bytes(),
                    terminal,
                    event.actor.as_ref().map(|a| a.as_bytes()),
                    hlc,
                    p.float.0
                ])?;
            }
            ev::CashMoved::KIND | ev::NoSale::KIND => {
                let (shift, kind, amount) = if event.kind == ev::NoSale::KIND {
                    let p: ev::NoSale = payload(event)?;
                    (p.shift, "no_sale", 0)
                } else {
                    let p: ev::CashMoved = payload(event)?;
                    if !p.amount.is_positive() {
                        return Err(Refusal("the amount must be positive".into()));
                    }
                    (
                        p.shift,
                        if p.paid_in { "paid_in" } else { "paid_out" },
                        p.amount.0,
                    )
                };
                require_open_shift(tx, shift)?;
                tx.prepare_cached(
                    "INSERT INTO shift_cash_moves (shift, seq, kind, amount, hlc) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![shift.as_bytes(), event.seq as i64, kind, amount, hlc])?;
            }
            ev::ShiftClosed::KIND => {
                let p: ev::ShiftClosed = payload(event)?;
                require_open_shift(tx, p.shift)?;
                expect_next(
                    tx,
                    "SELECT max(z_number) FROM shift_shifts WHERE terminal = ?1",
                    terminal,
                    p.z_number,
                    "Z report",
                )?;
                tx.prepare_cached(
                    "UPDATE shift_shifts SET closed_hlc = ?2, z_number = ?3, counted = ?4, expected = ?5,
                         report = ?6 WHERE id = ?1",
                )?
                .execute(params![
                    p.shift.as_bytes(),
                    hlc,
                    p.z_number as i64,
                    p.counted.0,
                    p.expected.0,
                    json(&p.report)?
                ])?;
            }
            other => {
                return Err(Refusal(format!(
                    "unknown kind `{other}` for module `shift`"
                )))
            }
        }
        Ok(())
    }
}

//! The `print` module: a durable queue of receipts waiting for the printer.
//!
//! The job is queued in the same commit as the sale, so a committed sale always gets its
//! receipt, even after a power cut. `print.started` is committed before the bytes leave, and
//! `print.done` only after the printer confirmed: a job that was started but never confirmed
//! may or may not be on paper, so it is printed again marked COPY, never as a second original.

use pos_audit::Event;
use pos_core::payloads::{PrintDone, PrintQueued, PrintStarted};
use pos_core::{DeviceId, EventId};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::projection::{payload, Projection, Refusal};
use crate::store::Store;

/// A receipt waiting for the printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrintJob {
    pub job: EventId,
    pub receipt: u64,
    /// Print it marked COPY: a reprint, or an earlier attempt that may have printed.
    pub copy: bool,
    pub attempts: u32,
}

impl Store {
    /// The oldest job of `terminal` not yet confirmed by the printer.
    pub fn next_print_job(&self, terminal: DeviceId) -> crate::Result<Option<PrintJob>> {
        let row: Option<(Vec<u8>, i64, bool, i64)> = self
            .conn()
            .prepare_cached(
                "SELECT job, receipt, copy, attempts FROM print_jobs
                 WHERE terminal = ?1 AND printed_hlc IS NULL ORDER BY queued_hlc LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([terminal.as_bytes()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
            })
            .map_err(self.db_err())?;
        Ok(row.and_then(|(job, receipt, copy, attempts)| {
            Some(PrintJob {
                job: EventId::from_bytes(<[u8; 16]>::try_from(job.as_slice()).ok()?),
                receipt: receipt as u64,
                copy: copy || attempts > 0,
                attempts: attempts as u32,
            })
        }))
    }

    /// How many jobs of `terminal` wait for the printer.
    pub fn print_backlog(&self, terminal: DeviceId) -> crate::Result<u64> {
        self.conn()
            .query_row(
                "SELECT count(*) FROM print_jobs WHERE terminal = ?1 AND printed_hlc IS NULL",
                [terminal.as_bytes()],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.db_err())
    }
}

/// Module `print`.
#[derive(Debug)]
pub(crate) struct PrintProjection;

impl Projection for PrintProjection {
    fn module(&self) -> &'static str {
        PrintQueued::MODULE
    }
    fn tables(&self) -> &'static [&'static str] {
        &["print_jobs"]
    }
    fn apply(&self, tx: &Transaction<'_>, event: &Event) -> Result<(), Refusal> {
        let hlc = event.hlc.raw() as i64;
        match event.kind.as_str() {
            PrintQueued::KIND => {
                let p: PrintQueued = payload(event)?;
                tx.prepare_cached(
                    "INSERT INTO print_jobs (job, terminal, receipt, copy, queued_hlc, attempts)
                     VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                )?
                .execute(params![
                    p.job.as_bytes(),
                    event.origin.as_bytes(),
                    p.receipt as i64,
                    p.copy,
                    hlc
                ])?;
            }
            PrintStarted::KIND => {
                let p: PrintStarted = payload(event)?;
                let n = tx
                    .prepare_cached(
                        "UPDATE print_jobs SET attempts = max(attempts, ?2)
                         WHERE job = ?1 AND printed_hlc IS NULL",
                    )?
                    .execute(params![p.job.as_bytes(), p.attempt])?;
                if n == 0 {
                    return Err(Refusal(format!(
                        "print job {} is unknown or already printed",
                        p.job
                    )));
                }
            }
            PrintDone::KIND => {
                let p: PrintDone = payload(event)?;
                let n = tx
                    .prepare_cached(
                        "UPDATE print_jobs SET printed_hlc = ?2 WHERE job = ?1 AND printed_hlc IS NULL",
                    )?
                    .execute(params![p.job.as_bytes(), hlc])?;
                if n == 0 {
                    return Err(Refusal(format!(
                        "print job {} is unknown or already printed",
                        p.job
                    )));
                }
            }
            other => {
                return Err(Refusal(format!(
                    "unknown kind `{other}` for module `print`"
                )))
            }
        }
        Ok(())
    }
}

//! Receipt printers: the [`ReceiptPrinter`] trait and [`EscPosPrinter`], an ESC/POS printer on
//! any [`Transport`].
//!
//! A job is only sent to a printer that says it is ready, and only counts as printed when the
//! printer still says so after the job (DLE EOT before and after):
//!
//! * not ready before the job (paper out, cover open, offline, error) → [`PrinterError::NotReady`],
//!   nothing is sent, the job waits and is sent again when the cashier has fixed the printer;
//! * not ready after the job (the roll ran out while printing) →
//!   [`PrinterError::NotConfirmed`]: part of it may be on paper, so it is reprinted as COPY;
//! * the job was (maybe partly) sent but the printer then stopped answering →
//!   [`PrinterError::Unconfirmed`], likewise;
//! * no answer to a status query within the timeout → [`PrinterError::Offline`].
//!
//! [`PrinterError::may_have_printed`] tells the print queue which case it is in.

use std::io;
use std::time::{Duration, Instant};

use crate::device::PrinterStatus;
use crate::escpos::{drawer_kick, DrawerKick, EncodeError};
use crate::status::{StatusError, StatusParser};
use crate::transport::Transport;

/// How long to wait for the answer to one `DLE EOT n` by default.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_millis(800);

/// Why a printer operation failed. The `Display` text is written for the cashier.
#[derive(Debug, thiserror::Error)]
pub enum PrinterError {
    /// The printer is not ready; nothing was sent.
    #[error("{}", not_ready_message(.0))]
    NotReady(PrinterStatus),
    /// A status query got no answer in time.
    #[error("Printer not answering (offline?): check power and cable")]
    Offline,
    /// The printer answered something that is not a status reply.
    #[error("Printer sent an unreadable status ({0}): check the cable and the printer model")]
    BadStatus(StatusError),
    /// The job was sent but the printer reported a problem afterwards (paper ran out while
    /// printing, say): it may be partly printed. Reprint it marked COPY.
    #[error("Receipt not confirmed: {}; it will be reprinted as COPY", not_ready_message(.0))]
    NotConfirmed(PrinterStatus),
    /// The job was (maybe partly) sent, then the printer could not be reached or did not
    /// answer. Reprint it marked COPY.
    #[error("Receipt not confirmed: {0}; it will be reprinted as COPY")]
    Unconfirmed(Box<PrinterError>),
    /// The connection failed (refused, reset, timed out).
    #[error("Printer not reachable ({0}): check power, cable and network")]
    Io(#[from] io::Error),
    /// A command could not be encoded (bad configuration, e.g. drawer pulse length).
    #[error("Printer command not valid: {0}")]
    Encode(#[from] EncodeError),
}

impl PrinterError {
    /// Whether the job may be (partly) on paper: reprint as COPY, never as an original.
    pub fn may_have_printed(&self) -> bool {
        matches!(
            self,
            PrinterError::NotConfirmed(_) | PrinterError::Unconfirmed(_)
        )
    }

    /// The printer status that caused the error, when one was read.
    pub fn status(&self) -> Option<PrinterStatus> {
        match self {
            PrinterError::NotReady(s) | PrinterError::NotConfirmed(s) => Some(*s),
            PrinterError::Unconfirmed(e) => e.status(),
            _ => None,
        }
    }
}

/// The cashier's message for a printer that is not ready.
fn not_ready_message(s: &PrinterStatus) -> &'static str {
    if s.paper_out {
        "Printer out of paper: replace the roll, then press Retry"
    } else if s.cover_open {
        "Printer cover open: close it, then press Retry"
    } else if s.error {
        "Printer error (paper jam or cutter?): check the printer, then press Retry"
    } else if !s.online {
        "Printer offline: check it, then press Retry"
    } else {
        "Printer ready"
    }
}

/// A receipt printer, whatever its command set and transport.
pub trait ReceiptPrinter {
    /// Ask the printer for its real-time status.
    fn status(&mut self) -> Result<PrinterStatus, PrinterError>;
    /// Print `job` (complete printer commands) and confirm it: `Ok` only when the printer was
    /// ready before and still is after the job.
    fn print(&mut self, job: &[u8]) -> Result<(), PrinterError>;
    /// Pulse the cash drawer connected to the printer.
    fn kick_drawer(&mut self, kick: DrawerKick) -> Result<(), PrinterError>;
    fn describe(&self) -> String;
}

/// An ESC/POS printer (Epson TM and compatibles) on a [`Transport`].
#[derive(Debug)]
pub struct EscPosPrinter<T: Transport> {
    transport: T,
    query_timeout: Duration,
    last_status: Option<PrinterStatus>,
}

impl<T: Transport> EscPosPrinter<T> {
    /// With [`DEFAULT_QUERY_TIMEOUT`] per status query.
    pub fn new(transport: T) -> Self {
        EscPosPrinter {
            transport,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            last_status: None,
        }
    }

    /// Wait at most `timeout` for each of the four status answers. A status check of a
    /// printer that does not answer fails after one `timeout` (plus connecting).
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// The status read by the last successful check.
    pub fn last_status(&self) -> Option<PrinterStatus> {
        self.last_status
    }

    pub fn transport(&self) -> &T {
        &self.transport
    }

    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    pub fn into_transport(self) -> T {
        self.transport
    }

    /// Throw away whatever the printer sent unasked (late answers to timed-out queries,
    /// automatic status messages), so the next answer is read against the right query.
    fn drain(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 64];
        // Bounded: a printer streaming garbage cannot keep us here.
        for _ in 0..64 {
            if self.transport.read_some(&mut buf, Duration::ZERO)? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// One byte within the query timeout, `None` if none came.
    fn read_byte(&mut self) -> io::Result<Option<u8>> {
        let deadline = Instant::now() + self.query_timeout;
        let mut b = [0u8; 1];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.transport.read_some(&mut b, left)? == 1 {
                return Ok(Some(b[0]));
            }
            if left.is_zero() || Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    fn query_status(&mut self) -> Result<PrinterStatus, PrinterError> {
        self.drain()?;
        let mut parser = StatusParser::new();
        loop {
            self.transport.write_all(&parser.next_request())?;
            let Some(byte) = self.read_byte()? else {
                return Err(PrinterError::Offline);
            };
            match parser.push(byte) {
                Ok(Some(status)) => return Ok(status),
                Ok(None) => {}
                Err(e) => {
                    // Best effort: the error to report is the bad reply.
                    let _ = self.drain();
                    return Err(PrinterError::BadStatus(e));
                }
            }
        }
    }
}

impl<T: Transport> ReceiptPrinter for EscPosPrinter<T> {
    fn status(&mut self) -> Result<PrinterStatus, PrinterError> {
        let status = match self.query_status() {
            // The connection broke (printer restarted, cable replugged): a status query is
            // harmless to repeat, so reconnect and ask once more.
            Err(PrinterError::Io(_)) => {
                self.transport.reconnect()?;
                self.query_status()
            }
            other => other,
        };
        self.last_status = status.as_ref().ok().copied();
        status
    }

    fn print(&mut self, job: &[u8]) -> Result<(), PrinterError> {
        let before = self.status()?;
        if !before.ready() {
            return Err(PrinterError::NotReady(before));
        }
        if let Err(e) = self.transport.write_all(job) {
            return Err(PrinterError::Unconfirmed(Box::new(PrinterError::Io(e))));
        }
        match self.status() {
            Ok(after) if after.ready() => Ok(()),
            Ok(after) => Err(PrinterError::NotConfirmed(after)),
            Err(e) => Err(PrinterError::Unconfirmed(Box::new(e))),
        }
    }

    fn kick_drawer(&mut self, kick: DrawerKick) -> Result<(), PrinterError> {
        let bytes = drawer_kick(kick)?;
        self.transport.write_all(&bytes)?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("ESC/POS printer on {}", self.transport.describe())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::escpos::DrawerPin;
    use crate::status::status_request;
    use crate::transport::MemoryTransport;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;

    const OK: [u8; 4] = [0x16, 0x12, 0x12, 0x12];
    const PAPER_OUT: [u8; 4] = [0x1E, 0x32, 0x12, 0x72];
    const COVER_OPEN: [u8; 4] = [0x1E, 0x16, 0x12, 0x12];

    /// A printer answering `DLE EOT n` with `replies[n - 1]`, and nothing to other writes.
    fn printer(replies: [u8; 4]) -> EscPosPrinter<MemoryTransport> {
        EscPosPrinter::new(MemoryTransport::with_responder(move |b| match b {
            [0x10, 0x04, n @ 1..=4] => vec![replies[usize::from(*n) - 1]],
            _ => Vec::new(),
        }))
    }

    fn queries() -> Vec<Vec<u8>> {
        (1..=4).map(|n| status_request(n).to_vec()).collect()
    }

    #[test]
    fn status_sends_four_queries_and_decodes() {
        let mut p = printer(OK);
        let s = p.status().unwrap();
        assert!(s.ready());
        assert_eq!(p.transport().writes(), &queries()[..]);
        assert_eq!(p.last_status(), Some(s));
        let s = printer(PAPER_OUT).status().unwrap();
        assert!(s.paper_out && !s.ready());
        let s = printer(COVER_OPEN).status().unwrap();
        assert!(s.cover_open && !s.ready());
    }

    #[test]
    fn print_checks_before_and_after() {
        let mut p = printer(OK);
        p.print(b"hello\n").unwrap();
        let mut expected = queries();
        expected.push(b"hello\n".to_vec());
        expected.extend(queries());
        assert_eq!(p.transport().writes(), &expected[..]);
    }

    #[test]
    fn not_ready_sends_nothing() {
        for (replies, message) in [(PAPER_OUT, "out of paper"), (COVER_OPEN, "cover open")] {
            let mut p = printer(replies);
            let err = p.print(b"job").unwrap_err();
            assert!(matches!(err, PrinterError::NotReady(_)), "{err:?}");
            assert!(!err.may_have_printed());
            assert!(err.to_string().contains(message), "{err}");
            assert_eq!(p.transport().writes(), &queries()[..]);
        }
    }

    #[test]
    fn paper_running_out_during_the_job_is_not_confirmed() {
        // Paper is fine until the job is received.
        let out = Arc::new(AtomicU8::new(0));
        let o = Arc::clone(&out);
        let mut p = EscPosPrinter::new(MemoryTransport::with_responder(move |b| match b {
            [0x10, 0x04, n @ 1..=4] => {
                let table = if o.load(Ordering::SeqCst) == 1 {
                    PAPER_OUT
                } else {
                    OK
                };
                vec![table[usize::from(*n) - 1]]
            }
            _ => {
                o.store(1, Ordering::SeqCst);
                Vec::new()
            }
        }));
        let err = p.print(b"job").unwrap_err();
        assert!(matches!(err, PrinterError::NotConfirmed(s) if s.paper_out));
        assert!(err.may_have_printed());
        assert!(err.to_string().contains("COPY"), "{err}");
        assert!(err.to_string().contains("replace the roll"), "{err}");
    }

    #[test]
    fn silent_printer_is_offline() {
        let mut p = EscPosPrinter::new(MemoryTransport::new())
            .with_query_timeout(Duration::from_millis(20));
        let err = p.status().unwrap_err();
        assert!(matches!(err, PrinterError::Offline));
        assert_eq!(
            err.to_string(),
            "Printer not answering (offline?): check power and cable"
        );
        // Only the first query was sent; print sends no job either.
        assert_eq!(p.transport().writes().len(), 1);
        assert!(matches!(p.print(b"job"), Err(PrinterError::Offline)));
        assert!(!p.transport().written().ends_with(b"job"));
    }

    #[test]
    fn garbage_reply_is_bad_status_and_drained() {
        let mut p = EscPosPrinter::new(MemoryTransport::with_responder(|b| match b {
            [0x10, 0x04, _] => vec![0xFF, 0x00, 0xAA],
            _ => Vec::new(),
        }));
        let err = p.status().unwrap_err();
        assert!(matches!(err, PrinterError::BadStatus(_)), "{err:?}");
        assert_eq!(p.transport().pending(), 0);
    }

    #[test]
    fn stale_bytes_are_drained_before_a_check() {
        let mut p = printer(OK);
        p.transport_mut().push_reply(&[0x3E, 0x3E]);
        assert!(p.status().unwrap().ready());
    }

    #[test]
    fn broken_connection_reconnects_once_for_status() {
        let mut p = printer(OK);
        p.transport_mut()
            .fail_next_write(io::ErrorKind::ConnectionReset);
        assert!(p.status().unwrap().ready());
        assert_eq!(p.transport().reconnects(), 1);

        p.transport_mut()
            .fail_next_write(io::ErrorKind::ConnectionReset);
        p.transport_mut().set_fail_reconnect(true);
        let err = p.status().unwrap_err();
        assert!(matches!(err, PrinterError::Io(_)), "{err:?}");
        assert!(err.to_string().contains("check power"), "{err}");
    }

    /// A transport whose print-data writes fail (status queries work).
    struct JobWritesFail(EscPosPrinter<MemoryTransport>);

    impl Transport for JobWritesFail {
        fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
            if bytes.starts_with(&[0x10, 0x04]) {
                self.0.transport.write_all(bytes)
            } else {
                Err(io::Error::new(io::ErrorKind::BrokenPipe, "gone"))
            }
        }
        fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
            self.0.transport.read_some(buf, timeout)
        }
        fn reconnect(&mut self) -> io::Result<()> {
            self.0.transport.reconnect()
        }
        fn describe(&self) -> String {
            "failing".into()
        }
    }

    #[test]
    fn failed_job_write_is_unconfirmed() {
        let mut p = EscPosPrinter::new(JobWritesFail(printer(OK)));
        let err = p.print(b"job").unwrap_err();
        assert!(
            matches!(&err, PrinterError::Unconfirmed(e) if matches!(**e, PrinterError::Io(_))),
            "{err:?}"
        );
        assert!(err.may_have_printed());
        assert!(err.to_string().contains("COPY"), "{err}");
    }

    #[test]
    fn drawer_kick_sends_esc_p() {
        let mut p = printer(OK);
        p.kick_drawer(DrawerKick {
            pin: DrawerPin::Pin5,
            pulse_ms: 100,
        })
        .unwrap();
        assert_eq!(p.transport().written(), [0x1B, b'p', 1, 50, 250]);
        let err = p
            .kick_drawer(DrawerKick {
                pin: DrawerPin::Pin2,
                pulse_ms: 0,
            })
            .unwrap_err();
        assert!(matches!(err, PrinterError::Encode(_)));
        assert_eq!(p.describe(), "ESC/POS printer on memory");
    }

    proptest! {
        #[test]
        fn random_status_replies_never_panic(
            replies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4), 0..12),
            stale in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut script = replies.clone().into_iter();
            let mut p = EscPosPrinter::new(MemoryTransport::with_responder(move |_| {
                script.next().unwrap_or_default()
            }))
            .with_query_timeout(Duration::ZERO);
            p.transport_mut().push_reply(&stale);
            for _ in 0..3 {
                match p.status() {
                    Ok(_) | Err(PrinterError::Offline) | Err(PrinterError::BadStatus(_)) => {}
                    Err(e) => prop_assert!(false, "unexpected {e:?}"),
                }
            }
            let _ = p.print(b"job");
        }
    }
}

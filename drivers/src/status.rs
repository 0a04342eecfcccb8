//! DLE EOT real-time status, sans-IO.
//!
//! A status check sends `DLE EOT n` for n = 1 (printer), 2 (offline cause), 3 (error cause)
//! and 4 (paper roll sensor), one at a time, each answered by one byte. [`StatusParser`] says
//! which query to send next ([`StatusParser::next_request`]) and takes the replies
//! ([`StatusParser::push`]); after the fourth it yields a [`PrinterStatus`].
//!
//! Every reply has fixed bits (Epson: bit 0 = 0, bit 1 = 1, bit 4 = 1, bit 7 = 0). A byte that
//! breaks them is not a status reply (line noise, a stray byte from an earlier command, a
//! different protocol) and is refused with an error rather than read as a wrong status; the
//! parser then starts over at query 1.

use crate::device::PrinterStatus;

const DLE: u8 = 0x10;
const EOT: u8 = 0x04;
const FIXED_MASK: u8 = 0b1001_0011;
const FIXED_VALUE: u8 = 0b0001_0010;

/// `DLE EOT n`.
pub fn status_request(n: u8) -> [u8; 3] {
    [DLE, EOT, n]
}

/// A reply that is not a valid status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("status reply {byte:#04x} to DLE EOT {query} breaks the fixed bits")]
pub struct StatusError {
    pub query: u8,
    pub byte: u8,
}

/// Collects the four replies of one status check.
#[derive(Debug, Clone, Default)]
pub struct StatusParser {
    /// Replies received so far in this check (0..=3 entries).
    replies: Vec<u8>,
}

impl StatusParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `n` of the query whose reply is expected next (1..=4).
    pub fn next_query(&self) -> u8 {
        // At most 3 replies are kept, so this is 1..=4.
        u8::try_from(self.replies.len() + 1).unwrap_or(1)
    }

    /// The bytes to send for the next query.
    pub fn next_request(&self) -> [u8; 3] {
        status_request(self.next_query())
    }

    /// Start over at query 1 (after a timeout, say).
    pub fn reset(&mut self) {
        self.replies.clear();
    }

    /// Take the reply to the current query. `Ok(Some(_))` after the fourth reply (the parser
    /// is then ready for the next check); `Err` on a byte with wrong fixed bits (the parser
    /// starts over).
    pub fn push(&mut self, byte: u8) -> Result<Option<PrinterStatus>, StatusError> {
        if byte & FIXED_MASK != FIXED_VALUE {
            let query = self.next_query();
            self.reset();
            return Err(StatusError { query, byte });
        }
        self.replies.push(byte);
        match self.replies[..] {
            [printer, offline, error, paper] => {
                self.reset();
                Ok(Some(decode(printer, offline, error, paper)))
            }
            _ => Ok(None),
        }
    }
}

fn bit(byte: u8, n: u8) -> bool {
    byte & (1 << n) != 0
}

/// The four replies (already checked) as a status.
fn decode(printer: u8, offline: u8, error: u8, paper: u8) -> PrinterStatus {
    PrinterStatus {
        // n=1 bit 3: offline.
        online: !bit(printer, 3),
        // n=2 bit 2: cover open.
        cover_open: bit(offline, 2),
        // n=4 bits 2,3: roll near end.
        paper_near_end: bit(paper, 2) || bit(paper, 3),
        // n=4 bits 5,6: roll end; n=2 bit 5: printing stopped by paper end.
        paper_out: bit(paper, 5) || bit(paper, 6) || bit(offline, 5),
        // n=2 bit 6: error; n=3 bits 2,3,5,6: recoverable, autocutter, unrecoverable,
        // auto-recoverable error.
        error: bit(offline, 6) || error & 0b0110_1100 != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: [u8; 4]) -> Result<Option<PrinterStatus>, StatusError> {
        let mut p = StatusParser::new();
        let mut last = Ok(None);
        for (i, b) in bytes.into_iter().enumerate() {
            assert_eq!(p.next_request(), [DLE, EOT, i as u8 + 1]);
            last = p.push(b);
            last?;
        }
        last
    }

    #[test]
    fn all_clear_then_paper_out() {
        let ok = run([0x12; 4]).unwrap().unwrap();
        assert!(ok.ready() && !ok.paper_near_end);
        let out = run([0x1A, 0x32, 0x12, 0x7E]).unwrap().unwrap();
        assert_eq!(
            out,
            PrinterStatus {
                online: false,
                cover_open: false,
                paper_near_end: true,
                paper_out: true,
                error: false,
            }
        );
    }

    #[test]
    fn wrong_fixed_bits_are_refused_and_restart() {
        let mut p = StatusParser::new();
        assert_eq!(p.push(0x12), Ok(None));
        assert_eq!(p.push(0x00), Err(StatusError { query: 2, byte: 0 }));
        assert_eq!(p.next_query(), 1);
        for b in [0x13, 0x10, 0x02, 0x92] {
            assert!(p.push(b).is_err(), "{b:#x}");
        }
    }
}

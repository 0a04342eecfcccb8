//! Serial cash drawers and the "drawer left open" watch.
//!
//! A serial drawer opens when it receives a configured byte sequence ([`SerialDrawer::kick`]).
//! Where the drawer wires its open/closed switch to a modem-status line (CTS or DCD, sometimes
//! DSR), [`SerialDrawer::status`] reads it; otherwise the status is `None` (unknown).
//!
//! [`DrawerWatch`] is a pure state machine fed with the drawer status on a timer: it reports the
//! drawer opening and closing and emits [`DrawerWatchEvent::LeftOpen`] exactly once per opening
//! when the drawer has been open longer than the configured time.

use std::io;

use crate::device::DrawerStatus;
use crate::serial::{ModemLine, SerialConfig, SerialTransport};
use crate::transport::Transport;

/// Where a serial drawer reports its switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrawerSense {
    /// The modem-status line the switch is wired to.
    pub line: ModemLine,
    /// Whether an asserted line means "open" (drawers differ).
    pub open_when_asserted: bool,
}

/// A cash drawer on its own serial port.
#[derive(Debug)]
pub struct SerialDrawer {
    port: SerialTransport,
    kick: Vec<u8>,
    sense: Option<DrawerSense>,
}

impl SerialDrawer {
    /// A drawer on `config`'s port, opened by writing `kick` (often a single byte such as
    /// `0x07`, or the ESC/POS `ESC p` pulse for printer-compatible drawer interfaces), with its
    /// switch read from `sense` where the hardware reports it.
    pub fn new(config: SerialConfig, kick: Vec<u8>, sense: Option<DrawerSense>) -> Self {
        Self {
            port: SerialTransport::new(config),
            kick,
            sense,
        }
    }

    /// Open the drawer.
    pub fn kick(&mut self) -> io::Result<()> {
        if self.kick.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "drawer kick sequence is empty",
            ));
        }
        self.port.write_all(&self.kick)
    }

    /// The drawer's switch, or `Ok(None)` when this drawer cannot tell.
    pub fn status(&mut self) -> io::Result<Option<DrawerStatus>> {
        let Some(sense) = self.sense else {
            return Ok(None);
        };
        let asserted = self.port.modem_line(sense.line)?;
        Ok(Some(if asserted == sense.open_when_asserted {
            DrawerStatus::Open
        } else {
            DrawerStatus::Closed
        }))
    }

    /// The serial port (e.g. to describe it in the device list).
    pub fn transport(&self) -> &SerialTransport {
        &self.port
    }
}

/// Something [`DrawerWatch::tick`] noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawerWatchEvent {
    /// The hardware reports the drawer open (once per opening).
    Opened,
    /// The hardware reports the drawer closed again.
    Closed,
    /// The drawer has been open for `open_ms` milliseconds, longer than the limit. Once per
    /// opening.
    LeftOpen { open_ms: u64 },
}

/// Tracks one drawer's openings and raises "left open" once after a configurable time.
///
/// * [`opened`](Self::opened) is called when the till kicks the drawer; the open time counts
///   from then (the hardware may take a moment to report the drawer open).
/// * [`tick`](Self::tick) is called periodically with the hardware status. `Closed` ends the
///   opening (and re-arms the alarm); `Open` starts one if none is running (a drawer opened
///   with its key). `None` / `Unknown` change nothing and never raise the alarm: without a
///   switch the time since a kick says nothing about the drawer being open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawerWatch {
    left_open_after_ms: u64,
    open_since: Option<u64>,
    seen_open: bool,
    alarmed: bool,
}

impl DrawerWatch {
    /// A watch raising [`DrawerWatchEvent::LeftOpen`] after `left_open_after_ms`.
    pub fn new(left_open_after_ms: u64) -> Self {
        Self {
            left_open_after_ms,
            open_since: None,
            seen_open: false,
            alarmed: false,
        }
    }

    /// The till kicked the drawer at `now_ms`.
    pub fn opened(&mut self, now_ms: u64) {
        if self.open_since.is_none() {
            self.open_since = Some(now_ms);
            self.seen_open = false;
            self.alarmed = false;
        }
    }

    /// Whether an opening is being timed.
    pub fn is_open(&self) -> bool {
        self.open_since.is_some()
    }

    /// The hardware status at `now_ms`; returns what changed.
    pub fn tick(&mut self, now_ms: u64, status: Option<DrawerStatus>) -> Option<DrawerWatchEvent> {
        match status {
            Some(DrawerStatus::Closed) => {
                let was_open = self.open_since.take().is_some() && self.seen_open;
                self.seen_open = false;
                self.alarmed = false;
                was_open.then_some(DrawerWatchEvent::Closed)
            }
            Some(DrawerStatus::Open) => {
                let since = *self.open_since.get_or_insert(now_ms);
                if !self.seen_open {
                    self.seen_open = true;
                    return Some(DrawerWatchEvent::Opened);
                }
                let open_ms = now_ms.saturating_sub(since);
                if !self.alarmed && open_ms >= self.left_open_after_ms {
                    self.alarmed = true;
                    return Some(DrawerWatchEvent::LeftOpen { open_ms });
                }
                None
            }
            Some(DrawerStatus::Unknown) | None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DrawerStatus::{Closed, Open, Unknown};

    #[test]
    fn left_open_once_then_reset_on_close() {
        let mut w = DrawerWatch::new(30_000);
        w.opened(1_000);
        assert_eq!(w.tick(1_050, Some(Closed)), None); // solenoid not yet released
        assert!(!w.is_open());
        assert_eq!(w.tick(1_200, Some(Open)), Some(DrawerWatchEvent::Opened));
        assert_eq!(w.tick(20_000, Some(Open)), None);
        assert_eq!(
            w.tick(31_200, Some(Open)),
            Some(DrawerWatchEvent::LeftOpen { open_ms: 30_000 })
        );
        assert_eq!(w.tick(40_000, Some(Open)), None);
        assert_eq!(w.tick(90_000, Some(Open)), None);
        assert_eq!(w.tick(91_000, Some(Closed)), Some(DrawerWatchEvent::Closed));
        assert_eq!(w.tick(92_000, Some(Closed)), None);
        // Next opening re-arms the alarm.
        w.opened(100_000);
        assert_eq!(w.tick(100_100, Some(Open)), Some(DrawerWatchEvent::Opened));
        assert_eq!(
            w.tick(130_000, Some(Open)),
            Some(DrawerWatchEvent::LeftOpen { open_ms: 30_000 })
        );
    }

    #[test]
    fn kick_time_counts_when_hardware_reports_open() {
        let mut w = DrawerWatch::new(10);
        w.opened(0);
        w.opened(5); // a second kick does not restart the clock
        assert_eq!(w.tick(8, Some(Open)), Some(DrawerWatchEvent::Opened));
        assert_eq!(
            w.tick(12, Some(Open)),
            Some(DrawerWatchEvent::LeftOpen { open_ms: 12 })
        );
    }

    #[test]
    fn opened_by_key_without_kick() {
        let mut w = DrawerWatch::new(100);
        assert_eq!(w.tick(50, Some(Open)), Some(DrawerWatchEvent::Opened));
        assert_eq!(w.tick(149, Some(Open)), None);
        assert_eq!(
            w.tick(150, Some(Open)),
            Some(DrawerWatchEvent::LeftOpen { open_ms: 100 })
        );
    }

    #[test]
    fn unknown_status_never_alarms() {
        let mut w = DrawerWatch::new(100);
        w.opened(0);
        for t in [10, 1_000, 1_000_000] {
            assert_eq!(w.tick(t, None), None);
            assert_eq!(w.tick(t, Some(Unknown)), None);
        }
        assert!(w.is_open());
        // A clock going backwards does not underflow.
        assert_eq!(w.tick(5, Some(Open)), Some(DrawerWatchEvent::Opened));
        assert_eq!(w.tick(0, Some(Open)), None);
    }

    #[test]
    fn closed_without_opening_is_silent() {
        let mut w = DrawerWatch::new(100);
        assert_eq!(w.tick(0, Some(Closed)), None);
        assert!(!w.is_open());
    }
}

//! The device model, after UnifiedPOS (Scanner, POSPrinter, CashDrawer, LineDisplay), kept
//! small: a device is offline, online or busy; printers report paper and cover state; drawers
//! report open or closed where the hardware can tell; everything a subscriber (the UI, the sale
//! engine) needs to hear about is a [`DeviceEvent`].

/// UnifiedPOS `State`, reduced to what the till acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceState {
    /// Not claimed, unplugged or not answering.
    #[default]
    Offline,
    /// Claimed, enabled and idle.
    Online,
    /// Working on a job (printing, kicking the drawer).
    Busy,
}

/// A receipt printer's condition, as decoded from its real-time status replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PrinterStatus {
    /// The printer says it is online (it prints what it receives).
    pub online: bool,
    pub cover_open: bool,
    /// The roll is nearly used up: printing still works, the cashier should be told.
    pub paper_near_end: bool,
    /// No paper: printing stops until the roll is replaced.
    pub paper_out: bool,
    /// A cutter, mechanical or other error (recoverable or not).
    pub error: bool,
}

impl PrinterStatus {
    /// Whether a job can be sent now. A near-end roll still prints.
    pub fn ready(&self) -> bool {
        self.online && !self.cover_open && !self.paper_out && !self.error
    }
}

/// What a cash drawer reports; many drawers cannot tell, hence `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DrawerStatus {
    Open,
    Closed,
    #[default]
    Unknown,
}

/// Something subscribers (UI, engine) are told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A device changed state; printers also carry their decoded status.
    StatusChanged {
        state: DeviceState,
        printer: Option<PrinterStatus>,
    },
    /// A barcode was read (prefix/suffix already stripped).
    Scanned(String),
    DrawerOpened,
    DrawerClosed,
}

/// What every device exposes, whatever its kind or transport.
pub trait Device {
    /// A stable name from the configuration, e.g. `"receipt"` or `"scanner-1"`.
    fn name(&self) -> &str;
    fn state(&self) -> DeviceState;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_ignores_near_end_only() {
        let ok = PrinterStatus {
            online: true,
            ..PrinterStatus::default()
        };
        assert!(ok.ready());
        assert!(PrinterStatus {
            paper_near_end: true,
            ..ok
        }
        .ready());
        for bad in [
            PrinterStatus {
                online: false,
                ..ok
            },
            PrinterStatus {
                cover_open: true,
                ..ok
            },
            PrinterStatus {
                paper_out: true,
                ..ok
            },
            PrinterStatus { error: true, ..ok },
        ] {
            assert!(!bad.ready(), "{bad:?}");
        }
    }
}

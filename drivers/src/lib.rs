//! 3PlugPOS device drivers.
//!
//! This first slice is sans-IO: it turns the sale engine's [`Receipt`](pos_core::sale::Receipt)
//! into the exact ESC/POS byte stream a receipt printer expects ([`escpos`]), builds and parses
//! the DLE EOT real-time status exchange ([`status`]), and defines the small UnifiedPOS-style
//! device model the transports, the UI and the engine share ([`device`]). Nothing here opens a
//! device; transports (USB, serial, TCP 9100) and the print queue build on these pure pieces.

pub mod bus;
pub mod device;
pub mod display;
pub mod drawer;
pub mod escpos;
pub mod printer;
pub mod scanner;
pub mod serial;
pub mod status;
pub mod transport;
pub mod usb;

pub use device::{Device, DeviceEvent, DeviceState, DrawerStatus, PrinterStatus};
pub use escpos::{
    encode_receipt, CodePage, DrawerKick, DrawerPin, EncodeError, Layout, PaperWidth,
};
pub use printer::{EscPosPrinter, PrinterError, ReceiptPrinter};
pub use status::{status_request, StatusError, StatusParser};
pub use transport::{MemoryTransport, TcpTimeouts, TcpTransport, Transport};

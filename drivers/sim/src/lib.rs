//! 3PlugPOS device simulators and sans-IO device stream parsers.
//!
//! * [`escpos_decode`]: an incremental ESC/POS stream decoder and a human-readable receipt
//!   renderer.
//! * [`printer`]: [`SimPrinter`], a network ESC/POS printer (raw TCP, like port 9100) on
//!   127.0.0.1 that renders what it receives and answers `DLE EOT` status queries.
//! * [`serial`]: pty-backed serial devices: [`SimScanner`] (a scanner the real serial driver
//!   reads) and [`SimDrawer`] (counts kicks). Framing scanner input is the real driver's job
//!   (`pos_drivers::scanner`), not the simulator's.
//!
//! No async runtime: the simulator uses `std::net` and `std::thread`.

pub mod escpos_decode;
pub mod printer;
#[cfg(unix)]
pub mod serial;

pub use escpos_decode::{render, Align, Decoder, Item, Renderer};
pub use printer::SimPrinter;
#[cfg(unix)]
pub use serial::{KickCounter, KickMatch, SimDrawer, SimScanner};

//! Pseudo-terminal backed serial device simulators: a barcode scanner ([`SimScanner`]) and a
//! cash drawer ([`SimDrawer`]).
//!
//! Each simulator opens a pty pair and keeps both ends. The *master* side is the device; the
//! *slave* path ([`SimScanner::path`], e.g. `/dev/pts/7`) is what the real driver opens as its
//! serial port (`pos_drivers::serial::SerialTransport`). The simulator keeps its own slave file
//! descriptor open, so the driver may close and reopen the port (hot-plug handling) without the
//! pty hanging up. The slave is put in raw mode at start, so bytes pass unchanged even before
//! the driver opens and configures the port.
//!
//! # Limits
//!
//! A pty has no modem-status lines (CTS, DCD, DSR, RI): a drawer's open/closed switch, which real
//! drawers wire to one of those lines, cannot be simulated here. [`SimDrawer::set_open`] /
//! [`SimDrawer::is_open`] keep a simulated state for tests and the demo only; the real
//! `SerialDrawer::status` path (modem line read) is tested elsewhere (in `pos-drivers`, where a
//! pty modem-line read is shown to fail cleanly). Baud rate, parity and flow control have no
//! effect on a pty.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};

/// How long [`SimScanner::send_raw`] waits for the driver to drain a full pty buffer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the drawer thread looks for bytes and for shutdown.
const POLL: Duration = Duration::from_millis(2);

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

/// A pty pair: master (the device side, non-blocking), slave fd kept open, slave path.
#[derive(Debug)]
struct Pty {
    master: File,
    slave: OwnedFd,
    path: PathBuf,
}

fn open_pty() -> io::Result<Pty> {
    let p = nix::pty::openpty(None, None).map_err(nix_err)?;
    let mut t = tcgetattr(p.slave.as_fd()).map_err(nix_err)?;
    cfmakeraw(&mut t);
    tcsetattr(p.slave.as_fd(), SetArg::TCSANOW, &t).map_err(nix_err)?;
    let path = nix::unistd::ttyname(p.slave.as_fd()).map_err(nix_err)?;
    let flags = fcntl(p.master.as_raw_fd(), FcntlArg::F_GETFL).map_err(nix_err)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(p.master.as_raw_fd(), FcntlArg::F_SETFL(flags)).map_err(nix_err)?;
    Ok(Pty {
        master: File::from(p.master),
        slave: p.slave,
        path,
    })
}

/// A serial (RS-232 / USB CDC-ACM) barcode scanner on a pty. See the module documentation.
///
/// [`scan`](Self::scan) sends `code` followed by the configured suffix, as a scanner does;
/// [`send_raw`](Self::send_raw) sends arbitrary bytes (garbage, truncated frames, floods).
#[derive(Debug)]
pub struct SimScanner {
    pty: Pty,
    suffix: Vec<u8>,
    sent: u64,
}

impl SimScanner {
    /// A scanner that ends every code with `suffix` (e.g. `b"\r"`; may be empty).
    pub fn start(suffix: &[u8]) -> io::Result<SimScanner> {
        Ok(SimScanner {
            pty: open_pty()?,
            suffix: suffix.to_vec(),
            sent: 0,
        })
    }

    /// The serial device path the driver opens, e.g. `/dev/pts/7`.
    pub fn path(&self) -> &Path {
        &self.pty.path
    }

    /// The suffix sent after each code.
    pub fn suffix(&self) -> &[u8] {
        &self.suffix
    }

    /// Bytes sent so far.
    pub fn bytes_sent(&self) -> u64 {
        self.sent
    }

    /// Send one scan: `code` then the suffix, in a single write.
    pub fn scan(&mut self, code: &str) -> io::Result<()> {
        let mut frame = Vec::with_capacity(code.len() + self.suffix.len());
        frame.extend_from_slice(code.as_bytes());
        frame.extend_from_slice(&self.suffix);
        self.send_raw(&frame)
    }

    /// Send `bytes` as they are. When the pty buffer is full (the driver is not reading) this
    /// waits for it to drain, up to [`WRITE_TIMEOUT`], then fails with `TimedOut`; so a flood
    /// larger than a few KiB needs a driver reading concurrently.
    pub fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.pty.master.write(rest) {
                Ok(0) => {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "pty write"));
                }
                Ok(n) => {
                    self.sent += n as u64;
                    rest = rest.get(n..).unwrap_or_default();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "scanner pty full: nobody is reading",
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What the simulated drawer treats as a kick (the command that fires its solenoid).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KickMatch {
    /// ESC/POS "generate pulse": `ESC p m t1 t2` (`1B 70 m t1 t2`) with `m` one of
    /// `0, 1, '0', '1'` (pin 2 or 5) and any pulse times `t1`, `t2`. The default, for drawer
    /// interfaces that speak the printer's kick command.
    #[default]
    EscPosPulse,
    /// An exact byte sequence, e.g. `vec![0x07]` for drawers that open on a single BEL byte.
    /// An empty sequence never matches.
    Exact(Vec<u8>),
}

impl KickMatch {
    fn len(&self) -> usize {
        match self {
            KickMatch::EscPosPulse => 5,
            KickMatch::Exact(b) => b.len(),
        }
    }

    fn matches(&self, window: &[u8]) -> bool {
        match self {
            KickMatch::EscPosPulse => {
                matches!(window, [0x1b, 0x70, m, _, _] if matches!(m, 0 | 1 | b'0' | b'1'))
            }
            KickMatch::Exact(b) => !b.is_empty() && window == b.as_slice(),
        }
    }
}

/// Counts kicks in a byte stream: non-overlapping matches of a [`KickMatch`]. Sans-IO.
#[derive(Debug, Clone)]
pub struct KickCounter {
    kick: KickMatch,
    window: Vec<u8>,
    kicks: u64,
}

impl KickCounter {
    /// A counter for `kick`.
    pub fn new(kick: KickMatch) -> Self {
        Self {
            kick,
            window: Vec::new(),
            kicks: 0,
        }
    }

    /// Feed bytes; returns how many kicks they completed.
    pub fn feed(&mut self, bytes: &[u8]) -> u64 {
        let len = self.kick.len();
        if len == 0 {
            return 0;
        }
        let before = self.kicks;
        for &b in bytes {
            self.window.push(b);
            if self.window.len() > len {
                self.window.remove(0);
            }
            if self.window.len() == len && self.kick.matches(&self.window) {
                self.kicks += 1;
                self.window.clear();
            }
        }
        self.kicks - before
    }

    /// Kicks counted so far.
    pub fn kicks(&self) -> u64 {
        self.kicks
    }
}

#[derive(Debug, Default)]
struct DrawerShared {
    stop: AtomicBool,
    kicks: AtomicU64,
    bytes: AtomicU64,
    open: AtomicBool,
}

/// A serial cash drawer on a pty. See the module documentation.
///
/// A thread reads everything the driver writes and counts kicks ([`KickMatch`], default
/// `ESC p`). A kick opens the simulated drawer ([`is_open`](Self::is_open) becomes `true`);
/// [`set_open`](Self::set_open) simulates the cashier closing it (or opening it with the key).
/// This state is not visible to the driver: a pty has no modem lines.
#[derive(Debug)]
pub struct SimDrawer {
    path: PathBuf,
    _slave: OwnedFd,
    shared: Arc<DrawerShared>,
    thread: Option<JoinHandle<()>>,
}

impl SimDrawer {
    /// A drawer that opens on the ESC/POS pulse command (`ESC p m t1 t2`).
    pub fn start() -> io::Result<SimDrawer> {
        Self::start_with(KickMatch::default())
    }

    /// A drawer that opens on `kick`.
    pub fn start_with(kick: KickMatch) -> io::Result<SimDrawer> {
        let Pty {
            mut master,
            slave,
            path,
        } = open_pty()?;
        let shared = Arc::new(DrawerShared::default());
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sim-drawer".into())
            .spawn(move || {
                let mut counter = KickCounter::new(kick);
                let mut buf = [0u8; 256];
                while !thread_shared.stop.load(Ordering::Relaxed) {
                    match master.read(&mut buf) {
                        Ok(0) => std::thread::sleep(POLL),
                        Ok(n) => {
                            let bytes = buf.get(..n).unwrap_or_default();
                            thread_shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
                            let k = counter.feed(bytes);
                            if k > 0 {
                                thread_shared.open.store(true, Ordering::Relaxed);
                                thread_shared.kicks.fetch_add(k, Ordering::Relaxed);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            if e.kind() != io::ErrorKind::WouldBlock {
                                tracing::debug!("sim drawer read: {e}");
                            }
                            std::thread::sleep(POLL);
                        }
                    }
                }
            })?;
        Ok(SimDrawer {
            path,
            _slave: slave,
            shared,
            thread: Some(thread),
        })
    }

    /// The serial device path the driver opens, e.g. `/dev/pts/7`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Kicks received so far.
    pub fn kicks(&self) -> u64 {
        self.shared.kicks.load(Ordering::Relaxed)
    }

    /// Bytes received so far (kicks and anything else).
    pub fn bytes_received(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Wait up to `timeout` until at least `n` kicks were received; whether they were.
    pub fn wait_kicks(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.kicks() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// The simulated drawer state (not readable by the driver; see the module documentation).
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Set the simulated state, e.g. `false` when the cashier pushes the drawer shut.
    pub fn set_open(&self, open: bool) {
        self.shared.open.store(open, Ordering::Relaxed);
    }

    /// Stop the reader thread (also done on drop).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimDrawer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kick_counter_escpos_pulse() {
        let mut c = KickCounter::new(KickMatch::EscPosPulse);
        assert_eq!(c.feed(b"\x1bp\x00\x32\xfa"), 1);
        // Split across reads, pin 5 in ASCII form, garbage around it.
        assert_eq!(c.feed(b"xx\x1b\x1bp"), 0);
        assert_eq!(c.feed(b"11\x19"), 1);
        // Bad pin: not a kick.
        assert_eq!(c.feed(b"\x1bp\x07\x32\xfa"), 0);
        assert_eq!(c.kicks(), 2);
    }

    #[test]
    fn kick_counter_exact_and_empty() {
        let mut c = KickCounter::new(KickMatch::Exact(vec![0x07]));
        assert_eq!(c.feed(&[0x07, 0x00, 0x07, 0x07]), 3);
        let mut e = KickCounter::new(KickMatch::Exact(Vec::new()));
        assert_eq!(e.feed(&[0, 1, 2]), 0);
    }
}

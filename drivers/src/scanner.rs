//! Barcode scanners: the framing of scanner byte streams ([`ScanFramer`], sans-IO), a reader
//! that pulls bytes from a serial / USB CDC-ACM [`Transport`] and yields
//! [`DeviceEvent::Scanned`] ([`ScannerReader`]), and the keyboard-wedge (USB HID) side:
//! a pure key-event decoder ([`keycode_to_char`], [`WedgeDecoder`]) and, on Linux, an evdev
//! reader that grabs the device exclusively so scans never leak into the UI as keystrokes
//! ([`WedgeScanner`]).
//!
//! A scan is `prefix code suffix`. Framing rules:
//!
//! * **Suffix.** If the configured suffix is a line ending (`"\r"`, `"\n"` or `"\r\n"`, or empty),
//!   any CR or LF ends a frame and empty frames are ignored, so a scanner sending CR, LF or CRLF
//!   works with any of those settings. Any other suffix must match exactly.
//! * **Prefix.** A non-empty prefix must start the frame and is stripped; otherwise the frame is
//!   rejected with [`RejectReason::MissingPrefix`].
//! * **Length.** A code longer than `max_len` is rejected with [`RejectReason::Overlong`]; the
//!   framer stops buffering as soon as the frame cannot fit and discards bytes up to the next
//!   suffix, so the buffer never exceeds [`ScanFramer::buffer_limit`] bytes.
//! * **Content.** A code must be non-empty printable ASCII (`0x20..=0x7E`), else
//!   [`RejectReason::NonPrintable`] / [`RejectReason::Empty`].
//! * **Debounce.** The same code again less than `debounce_ms` after it was last *accepted* is
//!   dropped silently.
//!
//! Every event is caused by at least one input byte, so `feed` never returns more events than
//! bytes it was given.

use std::io;
use std::time::Duration;

use crate::device::DeviceEvent;
use crate::transport::Transport;

/// Framer configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerConfig {
    /// Bytes the scanner sends before each code (may be empty).
    pub prefix: Vec<u8>,
    /// Bytes the scanner sends after each code; line endings are treated leniently (see module).
    pub suffix: Vec<u8>,
    /// Longest accepted code, in bytes.
    pub max_len: usize,
    /// Identical reads within this many milliseconds of the last accepted one are dropped.
    pub debounce_ms: u64,
}

impl Default for ScannerConfig {
    fn default() -> Self {
        Self {
            prefix: Vec::new(),
            suffix: b"\r".to_vec(),
            max_len: 128,
            debounce_ms: 300,
        }
    }
}

/// Why a frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// The code is longer than `max_len`.
    #[error("scan longer than the configured maximum")]
    Overlong,
    /// The code contains a byte outside printable ASCII.
    #[error("scan contains non-printable bytes")]
    NonPrintable,
    /// The frame does not start with the configured prefix.
    #[error("scan does not start with the configured prefix")]
    MissingPrefix,
    /// The frame holds the prefix only.
    #[error("empty scan")]
    Empty,
}

/// Output of [`ScanFramer::feed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEvent {
    /// A complete, valid code (prefix and suffix stripped).
    Code(String),
    /// A frame that was discarded.
    Rejected(RejectReason),
}

/// Incremental scanner framer. See the module documentation.
#[derive(Debug, Clone)]
pub struct ScanFramer {
    config: ScannerConfig,
    line_mode: bool,
    buf: Vec<u8>,
    discarding: bool,
    last: Option<(String, u64)>,
}

impl ScanFramer {
    /// A framer with the given configuration.
    pub fn new(config: ScannerConfig) -> Self {
        let line_mode = matches!(config.suffix.as_slice(), b"" | b"\r" | b"\n" | b"\r\n");
        Self {
            config,
            line_mode,
            buf: Vec::new(),
            discarding: false,
            last: None,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ScannerConfig {
        &self.config
    }

    /// Bytes currently buffered for an incomplete frame.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// Whether a partial frame (or the tail of a discarded one) is pending.
    pub fn in_frame(&self) -> bool {
        !self.buf.is_empty() || self.discarding
    }

    /// Largest number of bytes ever buffered.
    pub fn buffer_limit(&self) -> usize {
        self.config.max_len + self.config.prefix.len() + self.config.suffix.len()
    }

    /// Drop a partial frame (e.g. after an inter-character timeout or a reconnect).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.discarding = false;
    }

    /// Feed bytes received at `now_ms` (any monotonic millisecond clock).
    pub fn feed(&mut self, bytes: &[u8], now_ms: u64) -> Vec<ScanEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.line_mode {
                if b == b'\r' || b == b'\n' {
                    let frame = std::mem::take(&mut self.buf);
                    self.frame(&frame, now_ms, &mut out);
                    continue;
                }
                self.buf.push(b);
            } else {
                self.buf.push(b);
                if self.buf.ends_with(&self.config.suffix) {
                    let mut frame = std::mem::take(&mut self.buf);
                    frame.truncate(frame.len() - self.config.suffix.len());
                    self.frame(&frame, now_ms, &mut out);
                    continue;
                }
            }
            self.check_overflow(&mut out);
        }
        out
    }

    fn check_overflow(&mut self, out: &mut Vec<ScanEvent>) {
        // Longest frame content that can still become a valid code once the suffix arrives;
        // in exact-suffix mode keep room for a partially received suffix.
        let keep = if self.line_mode {
            0
        } else {
            self.config.suffix.len().saturating_sub(1)
        };
        let content_max = self.config.max_len + self.config.prefix.len();
        if self.discarding {
            if self.buf.len() > keep {
                let cut = self.buf.len() - keep;
                self.buf.drain(..cut);
            }
        } else if self.buf.len() > content_max + keep {
            out.push(ScanEvent::Rejected(RejectReason::Overlong));
            self.discarding = true;
            let cut = self.buf.len() - keep;
            self.buf.drain(..cut);
        }
    }

    fn frame(&mut self, frame: &[u8], now_ms: u64, out: &mut Vec<ScanEvent>) {
        if self.discarding {
            self.discarding = false;
            return;
        }
        if frame.is_empty() && self.line_mode {
            return;
        }
        let prefix = self.config.prefix.as_slice();
        let Some(code) = frame.strip_prefix(prefix) else {
            out.push(ScanEvent::Rejected(RejectReason::MissingPrefix));
            return;
        };
        if code.is_empty() {
            out.push(ScanEvent::Rejected(RejectReason::Empty));
            return;
        }
        if code.len() > self.config.max_len {
            out.push(ScanEvent::Rejected(RejectReason::Overlong));
            return;
        }
        if !code.iter().all(|b| (0x20..=0x7E).contains(b)) {
            out.push(ScanEvent::Rejected(RejectReason::NonPrintable));
            return;
        }
        let code: String = code.iter().map(|&b| char::from(b)).collect();
        if let Some((last, at)) = &self.last {
            if *last == code && now_ms.saturating_sub(*at) < self.config.debounce_ms {
                return;
            }
        }
        self.last = Some((code.clone(), now_ms));
        out.push(ScanEvent::Code(code));
    }
}

/// Reads a serial or USB CDC-ACM scanner through any [`Transport`].
///
/// Each [`poll`](Self::poll) waits at most `timeout` for bytes, frames them and returns the
/// codes read as [`DeviceEvent::Scanned`]. Rejected frames are counted
/// ([`rejected`](Self::rejected)) and the last reason kept, so the UI can show "bad scan"
/// without the sale screen ever seeing garbage. A partial frame older than the inter-character
/// timeout is dropped, so a truncated scan cannot glue itself to the next one. On a transport
/// error the partial frame is dropped and the error returned; the next `poll` asks the
/// transport to reconnect first (hot-plug).
#[derive(Debug)]
pub struct ScannerReader<T> {
    transport: T,
    framer: ScanFramer,
    inter_char_timeout_ms: u64,
    last_byte_ms: u64,
    needs_reconnect: bool,
    rejected: u64,
    last_rejection: Option<RejectReason>,
}

/// Largest read per [`ScannerReader::poll`]; a flooding scanner is drained over several polls.
const READ_CHUNK: usize = 256;

impl<T: Transport> ScannerReader<T> {
    /// A reader over `transport`; a partial frame is dropped after `inter_char_timeout_ms`
    /// without bytes (100 ms suits scanners, which send a whole code in one burst).
    pub fn new(transport: T, config: ScannerConfig, inter_char_timeout_ms: u64) -> Self {
        Self {
            transport,
            framer: ScanFramer::new(config),
            inter_char_timeout_ms,
            last_byte_ms: 0,
            needs_reconnect: false,
            rejected: 0,
            last_rejection: None,
        }
    }

    /// Wait up to `timeout` for bytes received at `now_ms` and return the codes they complete.
    pub fn poll(&mut self, timeout: Duration, now_ms: u64) -> io::Result<Vec<DeviceEvent>> {
        if self.needs_reconnect {
            self.transport.reconnect()?;
            self.needs_reconnect = false;
        }
        let mut buf = [0u8; READ_CHUNK];
        let n = match self.transport.read_some(&mut buf, timeout) {
            Ok(n) => n,
            Err(e) => {
                self.framer.reset();
                self.needs_reconnect = true;
                return Err(e);
            }
        };
        Ok(self.accept(buf.get(..n).unwrap_or_default(), now_ms))
    }

    /// Frame `bytes` received at `now_ms` (what `poll` does after reading).
    fn accept(&mut self, bytes: &[u8], now_ms: u64) -> Vec<DeviceEvent> {
        if self.framer.in_frame()
            && now_ms.saturating_sub(self.last_byte_ms) >= self.inter_char_timeout_ms
        {
            self.framer.reset();
        }
        if bytes.is_empty() {
            return Vec::new();
        }
        self.last_byte_ms = now_ms;
        let mut out = Vec::new();
        for event in self.framer.feed(bytes, now_ms) {
            match event {
                ScanEvent::Code(code) => out.push(DeviceEvent::Scanned(code)),
                ScanEvent::Rejected(reason) => {
                    self.rejected += 1;
                    self.last_rejection = Some(reason);
                }
            }
        }
        out
    }

    /// Frames rejected so far.
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Why the last rejected frame was rejected.
    pub fn last_rejection(&self) -> Option<RejectReason> {
        self.last_rejection
    }

    /// The underlying transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The underlying transport, mutably.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }
}

/// Linux input key codes the wedge decoder cares about (from `linux/input-event-codes.h`).
pub mod keys {
    pub const KEY_ENTER: u16 = 28;
    pub const KEY_KPENTER: u16 = 96;
    pub const KEY_LEFTSHIFT: u16 = 42;
    pub const KEY_RIGHTSHIFT: u16 = 54;
    pub const KEY_CAPSLOCK: u16 = 58;
}

/// The character a US-layout keyboard produces for Linux key `code`, with or without shift.
/// Keys that produce no printable ASCII character (modifiers, function keys, Enter) give `None`.
pub fn keycode_to_char(code: u16, shift: bool) -> Option<char> {
    let (plain, shifted) = match code {
        2 => ('1', '!'),
        3 => ('2', '@'),
        4 => ('3', '#'),
        5 => ('4', '$'),
        6 => ('5', '%'),
        7 => ('6', '^'),
        8 => ('7', '&'),
        9 => ('8', '*'),
        10 => ('9', '('),
        11 => ('0', ')'),
        12 => ('-', '_'),
        13 => ('=', '+'),
        15 => ('\t', '\t'),
        16 => ('q', 'Q'),
        17 => ('w', 'W'),
        18 => ('e', 'E'),
        19 => ('r', 'R'),
        20 => ('t', 'T'),
        21 => ('y', 'Y'),
        22 => ('u', 'U'),
        23 => ('i', 'I'),
        24 => ('o', 'O'),
        25 => ('p', 'P'),
        26 => ('[', '{'),
        27 => (']', '}'),
        30 => ('a', 'A'),
        31 => ('s', 'S'),
        32 => ('d', 'D'),
        33 => ('f', 'F'),
        34 => ('g', 'G'),
        35 => ('h', 'H'),
        36 => ('j', 'J'),
        37 => ('k', 'K'),
        38 => ('l', 'L'),
        39 => (';', ':'),
        40 => ('\'', '"'),
        41 => ('`', '~'),
        43 => ('\\', '|'),
        44 => ('z', 'Z'),
        45 => ('x', 'X'),
        46 => ('c', 'C'),
        47 => ('v', 'V'),
        48 => ('b', 'B'),
        49 => ('n', 'N'),
        50 => ('m', 'M'),
        51 => (',', '<'),
        52 => ('.', '>'),
        53 => ('/', '?'),
        55 => ('*', '*'),
        57 => (' ', ' '),
        71 => ('7', '7'),
        72 => ('8', '8'),
        73 => ('9', '9'),
        74 => ('-', '-'),
        75 => ('4', '4'),
        76 => ('5', '5'),
        77 => ('6', '6'),
        78 => ('+', '+'),
        79 => ('1', '1'),
        80 => ('2', '2'),
        81 => ('3', '3'),
        82 => ('0', '0'),
        83 => ('.', '.'),
        98 => ('/', '/'),
        _ => return None,
    };
    Some(if shift { shifted } else { plain })
}

/// Turns key events from a keyboard-wedge scanner into framer bytes: printable keys become
/// their US-layout character (shift and caps lock honoured), Enter becomes `\r`, which ends
/// the code in the default line-ending framing. Sans-IO; the evdev reader feeds it.
#[derive(Debug, Clone, Default)]
pub struct WedgeDecoder {
    left_shift: bool,
    right_shift: bool,
    caps_lock: bool,
}

impl WedgeDecoder {
    /// A decoder with no modifier held.
    pub fn new() -> Self {
        Self::default()
    }

    /// One key event (`value`: 0 release, 1 press, 2 autorepeat); the byte it types, if any.
    pub fn key(&mut self, code: u16, value: i32) -> Option<u8> {
        let pressed = value != 0;
        match code {
            keys::KEY_LEFTSHIFT => {
                self.left_shift = pressed;
                None
            }
            keys::KEY_RIGHTSHIFT => {
                self.right_shift = pressed;
                None
            }
            keys::KEY_CAPSLOCK => {
                if value == 1 {
                    self.caps_lock = !self.caps_lock;
                }
                None
            }
            _ if value != 1 => None,
            keys::KEY_ENTER | keys::KEY_KPENTER => Some(b'\r'),
            _ => {
                let shift = self.left_shift || self.right_shift;
                let c = keycode_to_char(code, shift)?;
                let c = if self.caps_lock && c.is_ascii_alphabetic() {
                    if c.is_ascii_uppercase() {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                } else {
                    c
                };
                u8::try_from(c).ok()
            }
        }
    }
}

#[cfg(target_os = "linux")]
pub use wedge::WedgeScanner;

#[cfg(target_os = "linux")]
mod wedge {
    use std::io;
    use std::path::{Path, PathBuf};

    use super::{ScanEvent, ScanFramer, ScannerConfig, WedgeDecoder};
    use crate::device::DeviceEvent;

    /// A keyboard-wedge (USB HID) scanner read through `/dev/input/eventN`, grabbed
    /// exclusively (`EVIOCGRAB`) so its key presses do not reach the UI or the console.
    pub struct WedgeScanner {
        path: PathBuf,
        device: evdev::Device,
        decoder: WedgeDecoder,
        framer: ScanFramer,
    }

    impl std::fmt::Debug for WedgeScanner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("WedgeScanner")
                .field("path", &self.path)
                .field("framer", &self.framer)
                .finish_non_exhaustive()
        }
    }

    impl WedgeScanner {
        /// Open and exclusively grab the input device at `path`. The device is switched to
        /// non-blocking reads; wait for readiness on [`fd`](Self::fd) or poll periodically.
        pub fn open(path: impl AsRef<Path>, config: ScannerConfig) -> io::Result<Self> {
            let path = path.as_ref().to_path_buf();
            let mut device = evdev::Device::open(&path)?;
            device.grab()?;
            device.set_nonblocking(true)?;
            Ok(Self {
                path,
                device,
                decoder: WedgeDecoder::new(),
                framer: ScanFramer::new(config),
            })
        }

        /// The device path given to [`open`](Self::open).
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// The device's file descriptor, for `poll(2)`.
        pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
            use std::os::fd::AsFd;
            self.device.as_fd()
        }

        /// Read the pending key events (none pending is not an error) and return the codes they
        /// complete. An error (e.g. `ENODEV` after unplugging) means the scanner must be
        /// reopened.
        pub fn read(&mut self, now_ms: u64) -> io::Result<Vec<DeviceEvent>> {
            let mut bytes = Vec::new();
            match self.device.fetch_events() {
                Ok(events) => {
                    for ev in events {
                        if ev.event_type() == evdev::EventType::KEY {
                            if let Some(b) = self.decoder.key(ev.code(), ev.value()) {
                                bytes.push(b);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.framer.reset();
                    return Err(e);
                }
            }
            Ok(self
                .framer
                .feed(&bytes, now_ms)
                .into_iter()
                .filter_map(|e| match e {
                    ScanEvent::Code(code) => Some(DeviceEvent::Scanned(code)),
                    ScanEvent::Rejected(_) => None,
                })
                .collect())
        }
    }

    impl Drop for WedgeScanner {
        fn drop(&mut self) {
            // Closing the fd releases the grab too; this just makes it explicit.
            let _ = self.device.ungrab();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> ScanFramer {
        ScanFramer::new(ScannerConfig::default())
    }

    #[test]
    fn line_endings_and_debounce() {
        let mut f = framer();
        assert_eq!(
            f.feed(b"123\r\n456\n", 0),
            vec![ScanEvent::Code("123".into()), ScanEvent::Code("456".into())]
        );
        assert_eq!(f.feed(b"456\r", 100), vec![]);
        assert_eq!(f.feed(b"456\r", 400), vec![ScanEvent::Code("456".into())]);
    }

    #[test]
    fn prefix_and_exact_suffix() {
        let mut f = ScanFramer::new(ScannerConfig {
            prefix: b"\x02".to_vec(),
            suffix: b"\x03".to_vec(),
            max_len: 4,
            debounce_ms: 0,
        });
        assert_eq!(f.feed(b"\x02ab\x03", 0), vec![ScanEvent::Code("ab".into())]);
        assert_eq!(
            f.feed(b"ab\x03", 0),
            vec![ScanEvent::Rejected(RejectReason::MissingPrefix)]
        );
        assert_eq!(
            f.feed(b"\x02abcdefgh\x03\x02ok\x03", 0),
            vec![
                ScanEvent::Rejected(RejectReason::Overlong),
                ScanEvent::Code("ok".into())
            ]
        );
    }

    #[test]
    fn keycodes_us_layout() {
        assert_eq!(keycode_to_char(2, false), Some('1'));
        assert_eq!(keycode_to_char(11, false), Some('0'));
        assert_eq!(keycode_to_char(11, true), Some(')'));
        assert_eq!(keycode_to_char(30, false), Some('a'));
        assert_eq!(keycode_to_char(30, true), Some('A'));
        assert_eq!(keycode_to_char(12, true), Some('_'));
        assert_eq!(keycode_to_char(53, false), Some('/'));
        assert_eq!(keycode_to_char(57, false), Some(' '));
        assert_eq!(keycode_to_char(82, true), Some('0'));
        assert_eq!(keycode_to_char(keys::KEY_ENTER, false), None);
        assert_eq!(keycode_to_char(keys::KEY_LEFTSHIFT, false), None);
        assert_eq!(keycode_to_char(0, false), None);
        assert_eq!(keycode_to_char(u16::MAX, true), None);
        for code in 0..=u16::MAX {
            for shift in [false, true] {
                if let Some(c) = keycode_to_char(code, shift) {
                    assert!(c.is_ascii(), "{code} {c:?}");
                }
            }
        }
    }

    #[test]
    fn wedge_decoder_shift_enter_and_repeat() {
        let mut d = WedgeDecoder::new();
        let mut f = framer();
        let mut bytes = Vec::new();
        // "Ab-1" Enter: shift down, a, shift up, b, minus, 1 (with autorepeat noise), Enter.
        for (code, value) in [
            (keys::KEY_LEFTSHIFT, 1),
            (30, 1),
            (30, 0),
            (keys::KEY_LEFTSHIFT, 0),
            (48, 1),
            (48, 2),
            (48, 0),
            (12, 1),
            (12, 0),
            (2, 1),
            (2, 0),
            (keys::KEY_ENTER, 1),
            (keys::KEY_ENTER, 0),
        ] {
            bytes.extend(d.key(code, value));
        }
        assert_eq!(bytes, b"Ab-1\r");
        assert_eq!(f.feed(&bytes, 0), vec![ScanEvent::Code("Ab-1".into())]);

        d.key(keys::KEY_CAPSLOCK, 1);
        d.key(keys::KEY_CAPSLOCK, 0);
        assert_eq!(d.key(30, 1), Some(b'A'));
        d.key(keys::KEY_RIGHTSHIFT, 1);
        assert_eq!(d.key(30, 1), Some(b'a'));
        assert_eq!(d.key(2, 1), Some(b'!'));
        assert_eq!(d.key(keys::KEY_KPENTER, 1), Some(b'\r'));
    }
}

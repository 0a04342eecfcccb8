//! Sans-IO barcode scanner input framing for serial / USB CDC-ACM and keyboard-wedge streams
//! (the keyboard-wedge reader translates key events to bytes before feeding them here).
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
//!   suffix, so the buffer never exceeds `max_len + prefix.len() + suffix.len()` bytes.
//! * **Content.** A code must be non-empty printable ASCII (`0x20..=0x7E`), else
//!   [`RejectReason::NonPrintable`] / [`RejectReason::Empty`].
//! * **Debounce.** The same code again less than `debounce_ms` after it was last *accepted* is
//!   dropped silently.
//!
//! Every event is caused by at least one input byte, so `feed` never returns more events than
//! bytes it was given.

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
            // Beyond this point the frame's content (excluding a possible suffix tail) is too
            // long: reject once, then discard up to the next suffix.
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

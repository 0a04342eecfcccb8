//! Sans-IO ESC/POS stream decoder.
//!
//! [`Decoder::feed`] accepts bytes in any chunking and returns the [`Item`]s that are complete.
//! The decoder never blocks and never panics:
//!
//! * a command cut short at the end of a chunk is buffered until more bytes arrive;
//! * a known-length command whose total length exceeds [`MAX_COMMAND`] (64 KiB) is reported as
//!   [`Item::Unknown`] with its header only, and its body is skipped without buffering;
//! * unknown commands are reported as [`Item::Unknown`] with the bytes that were skipped;
//! * [`Decoder::finish`] flushes pending text and reports a truncated command as `Unknown`.
//!
//! The result does not depend on how the stream was chunked: feeding a stream in pieces and then
//! calling `finish` gives exactly the items of feeding it at once and calling `finish`. A text run
//! is therefore only emitted when a non-text byte ends it, when it reaches [`MAX_TEXT`] input
//! bytes, or on `finish`.
//!
//! Printable bytes `0x20..=0x7E` are ASCII; bytes `0x80..=0xFF` are mapped through the code page
//! selected by `ESC t n`: 0 = CP437 (the power-on default), 2 = CP850, 19 = CP858 (CP850 with `€`
//! at 0xD5). High bytes under any other code page decode to U+FFFD.

use pos_drivers::escpos::CodePage;
use std::fmt::Write as _;

/// Largest command (in bytes) that is buffered whole; larger known-length commands are skipped.
pub const MAX_COMMAND: usize = 64 * 1024;
/// A text run is emitted after this many input bytes even without a terminating control byte.
pub const MAX_TEXT: usize = 4096;
/// Longest NUL-terminated barcode payload (`GS k m d1..dk NUL`, m = 0..=6) that is searched for.
pub const MAX_BARCODE_NUL: usize = 255;

const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const DLE: u8 = 0x10;
const FS: u8 = 0x1C;

/// Justification selected by `ESC a n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// n = 0 or 48.
    Left,
    /// n = 1 or 49.
    Center,
    /// n = 2 or 50.
    Right,
}

/// One decoded element of an ESC/POS stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A run of printable characters, decoded through the current code page.
    Text(String),
    /// LF; also `ESC d n` (print and feed n lines) is reported as one `Newline`.
    Newline,
    /// `ESC @`: initialize printer (resets code page to CP437, bold off, size 1x1, left).
    Init,
    /// `ESC E n`: emphasized on/off (bit 0 of n).
    Bold(bool),
    /// `GS ! n`: character size as (width, height) multipliers, each 1..=8.
    Size(u8, u8),
    /// `ESC a n`: justification.
    Align(Align),
    /// `ESC t n`: select character code table.
    CodePage(u8),
    /// `GS V m` / `GS V m n`: cut paper.
    Cut,
    /// `ESC p m t1 t2`: drawer kick pulse; pin is 2 (m = 0/48) or 5 (m = 1/49).
    DrawerKick {
        /// Drawer kick-out connector pin, 2 or 5.
        pin: u8,
        /// On time, in units of 2 ms.
        t1: u8,
        /// Off time, in units of 2 ms.
        t2: u8,
    },
    /// `GS ( k ... fn 81`: print the QR code symbol stored with `fn 80`; holds the payload.
    Qr(String),
    /// `GS k m ...`: a 1-D barcode; `system` is m, `data` the payload (lossy ASCII).
    Barcode {
        /// Barcode system byte m as sent.
        system: u8,
        /// Barcode payload.
        data: String,
    },
    /// `DLE EOT n`: real-time status transmission request.
    StatusQuery(u8),
    /// A command or byte the decoder does not model; holds the bytes skipped.
    Unknown(Vec<u8>),
}

/// Result of parsing at one position of the buffer.
enum Step {
    /// The bytes at the position are an incomplete command.
    NeedMore,
    /// A command of `len` bytes, producing `item` (if any).
    Done(usize, Option<Item>),
    /// A known-length command of `total` bytes that is too long to buffer: report its first
    /// `header` bytes as `Unknown` and skip the rest.
    Skip { header: usize, total: usize },
}

/// Incremental ESC/POS decoder. See the module documentation.
#[derive(Debug, Clone)]
pub struct Decoder {
    pending: Vec<u8>,
    text: String,
    text_bytes: usize,
    skip: usize,
    code_page: u8,
    qr_store: Option<String>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder in power-on state (code page CP437).
    pub fn new() -> Self {
        Self {
            pending: Vec::new(),
            text: String::new(),
            text_bytes: 0,
            skip: 0,
            code_page: 0,
            qr_store: None,
        }
    }

    /// Number of bytes buffered for an incomplete command (never above [`MAX_COMMAND`]).
    pub fn buffered_len(&self) -> usize {
        self.pending.len()
    }

    /// The code page currently selected (`ESC t n`).
    pub fn code_page(&self) -> u8 {
        self.code_page
    }

    /// Feed bytes; returns every item completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Item> {
        let mut out = Vec::new();
        self.pending.extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.pending);
        let mut pos = 0;
        while pos < buf.len() {
            if self.skip > 0 {
                let n = self.skip.min(buf.len() - pos);
                self.skip -= n;
                pos += n;
                continue;
            }
            let b = buf[pos];
            if b == b'\t' || (0x20..=0x7E).contains(&b) || b >= 0x80 {
                self.push_text_byte(b, &mut out);
                pos += 1;
                continue;
            }
            // Any non-text byte ends the text run, even if its command is still incomplete.
            self.flush_text(&mut out);
            match self.parse_command(&buf[pos..]) {
                Step::NeedMore => break,
                Step::Done(len, item) => {
                    if let Some(item) = item {
                        self.apply(&item);
                        out.push(item);
                    }
                    pos += len.max(1);
                }
                Step::Skip { header, total } => {
                    let header = header.min(buf.len() - pos);
                    out.push(Item::Unknown(buf[pos..pos + header].to_vec()));
                    pos += header;
                    self.skip = total.saturating_sub(header);
                }
            }
        }
        let mut buf = buf;
        buf.drain(..pos.min(buf.len()));
        self.pending = buf;
        out
    }

    /// End of stream: flush pending text and report an incomplete command as `Unknown`.
    /// The decoder can be reused afterwards (its code page is kept).
    pub fn finish(&mut self) -> Vec<Item> {
        let mut out = Vec::new();
        self.flush_text(&mut out);
        if !self.pending.is_empty() {
            out.push(Item::Unknown(std::mem::take(&mut self.pending)));
        }
        self.skip = 0;
        out
    }

    fn push_text_byte(&mut self, b: u8, out: &mut Vec<Item>) {
        self.text.push(decode_byte(self.code_page, b));
        self.text_bytes += 1;
        if self.text_bytes >= MAX_TEXT {
            self.flush_text(out);
        }
    }

    fn flush_text(&mut self, out: &mut Vec<Item>) {
        if !self.text.is_empty() {
            out.push(Item::Text(std::mem::take(&mut self.text)));
        }
        self.text_bytes = 0;
    }

    fn apply(&mut self, item: &Item) {
        match item {
            Item::Init => {
                self.code_page = 0;
                self.qr_store = None;
            }
            Item::CodePage(n) => self.code_page = *n,
            _ => {}
        }
    }

    fn parse_command(&mut self, b: &[u8]) -> Step {
        match b[0] {
            b'\n' => Step::Done(1, Some(Item::Newline)),
            // CR is ignored by most printers in their default configuration.
            b'\r' => Step::Done(1, None),
            ESC => self.parse_esc(b),
            GS => self.parse_gs(b),
            DLE => parse_dle(b),
            FS => parse_fs(b),
            other => Step::Done(1, Some(Item::Unknown(vec![other]))),
        }
    }

    fn parse_esc(&mut self, b: &[u8]) -> Step {
        let Some(&c) = b.get(1) else {
            return Step::NeedMore;
        };
        // Commands with one argument byte that we model.
        let arg = b.get(2).copied();
        match c {
            b'@' => Step::Done(2, Some(Item::Init)),
            b'E' => arg.map_or(Step::NeedMore, |n| {
                Step::Done(3, Some(Item::Bold(n & 1 == 1)))
            }),
            b'a' => arg.map_or(Step::NeedMore, |n| {
                let item = match n {
                    0 | 48 => Item::Align(Align::Left),
                    1 | 49 => Item::Align(Align::Center),
                    2 | 50 => Item::Align(Align::Right),
                    _ => Item::Unknown(b[..3].to_vec()),
                };
                Step::Done(3, Some(item))
            }),
            b't' => arg.map_or(Step::NeedMore, |n| Step::Done(3, Some(Item::CodePage(n)))),
            // Print and feed n lines: reported as one Newline.
            b'd' => arg.map_or(Step::NeedMore, |_| Step::Done(3, Some(Item::Newline))),
            b'p' => {
                if b.len() < 5 {
                    return Step::NeedMore;
                }
                let pin = if b[2] & 1 == 0 { 2 } else { 5 };
                Step::Done(
                    5,
                    Some(Item::DrawerKick {
                        pin,
                        t1: b[3],
                        t2: b[4],
                    }),
                )
            }
            // Known one-argument commands, skipped.
            b'!' | b'-' | b'3' | b'J' | b'G' | b'M' | b'R' | b'V' | b'{' | b' ' | b'=' | b'r'
            | b'U' | b'K' | b'e' | b'L' | b'S' | b'T' => unknown_fixed(b, 3),
            b'2' | b'<' => unknown_fixed(b, 2),
            b'$' | b'\\' => unknown_fixed(b, 4),
            // ESC c 3 n / ESC c 4 n / ESC c 5 n.
            b'c' => unknown_fixed(b, 4),
            // ESC * m nL nH d1...dk: bit image.
            b'*' => {
                if b.len() < 5 {
                    return Step::NeedMore;
                }
                let n = usize::from(b[3]) + 256 * usize::from(b[4]);
                let k = if b[2] == 32 || b[2] == 33 { 3 * n } else { n };
                sized(b, 5, 5 + k)
            }
            _ => Step::Done(2, Some(Item::Unknown(b[..2].to_vec()))),
        }
    }

    fn parse_gs(&mut self, b: &[u8]) -> Step {
        let Some(&c) = b.get(1) else {
            return Step::NeedMore;
        };
        let arg = b.get(2).copied();
        match c {
            b'!' => arg.map_or(Step::NeedMore, |n| {
                Step::Done(3, Some(Item::Size(((n >> 4) & 7) + 1, (n & 7) + 1)))
            }),
            b'V' => match arg {
                None => Step::NeedMore,
                Some(0 | 1 | 48 | 49) => Step::Done(3, Some(Item::Cut)),
                Some(65 | 66 | 97 | 98 | 103 | 104) => {
                    if b.len() < 4 {
                        Step::NeedMore
                    } else {
                        Step::Done(4, Some(Item::Cut))
                    }
                }
                Some(_) => Step::Done(3, Some(Item::Unknown(b[..3].to_vec()))),
            },
            b'(' => {
                if b.len() < 5 {
                    return Step::NeedMore;
                }
                let total = 5 + usize::from(b[3]) + 256 * usize::from(b[4]);
                if total > MAX_COMMAND {
                    return Step::Skip { header: 5, total };
                }
                if b.len() < total {
                    return Step::NeedMore;
                }
                let cmd = &b[..total];
                let item = if cmd[2] == b'k' && total >= 7 && cmd[5] == 49 {
                    self.qr_function(cmd)
                } else {
                    Some(Item::Unknown(cmd.to_vec()))
                };
                Step::Done(total, item)
            }
            b'k' => {
                let Some(m) = arg else {
                    return Step::NeedMore;
                };
                if m <= 6 {
                    let data = &b[3..];
                    let window = &data[..data.len().min(MAX_BARCODE_NUL + 1)];
                    match window.iter().position(|&x| x == 0) {
                        Some(i) => Step::Done(
                            3 + i + 1,
                            Some(Item::Barcode {
                                system: m,
                                data: lossy_ascii(&data[..i]),
                            }),
                        ),
                        None if window.len() > MAX_BARCODE_NUL => {
                            Step::Done(3, Some(Item::Unknown(b[..3].to_vec())))
                        }
                        None => Step::NeedMore,
                    }
                } else {
                    let Some(&n) = b.get(3) else {
                        return Step::NeedMore;
                    };
                    let total = 4 + usize::from(n);
                    if b.len() < total {
                        return Step::NeedMore;
                    }
                    Step::Done(
                        total,
                        Some(Item::Barcode {
                            system: m,
                            data: lossy_ascii(&b[4..total]),
                        }),
                    )
                }
            }
            // GS v 0 m xL xH yL yH d1...dk: raster bit image.
            b'v' => {
                if b.len() < 8 {
                    return Step::NeedMore;
                }
                let x = usize::from(b[4]) + 256 * usize::from(b[5]);
                let y = usize::from(b[6]) + 256 * usize::from(b[7]);
                sized(b, 8, 8 + x * y)
            }
            b'B' | b'H' | b'f' | b'h' | b'w' | b'b' | b'a' | b'r' | b'I' => unknown_fixed(b, 3),
            b'L' | b'W' => unknown_fixed(b, 4),
            _ => Step::Done(2, Some(Item::Unknown(b[..2].to_vec()))),
        }
    }

    /// `GS ( k pL pH cn=49 fn ...` (QR code). `cmd` is the whole command.
    fn qr_function(&mut self, cmd: &[u8]) -> Option<Item> {
        match cmd[6] {
            // fn 80: store data, `cmd[7]` is m = 48.
            80 => {
                let data = cmd.get(8..).unwrap_or_default();
                self.qr_store = Some(String::from_utf8_lossy(data).into_owned());
                None
            }
            // fn 81: print the stored symbol.
            81 => self.qr_store.clone().map(Item::Qr),
            // fn 65 model, 67 module size, 69 error correction, 82 transmit size: no item.
            65 | 67 | 69 | 82 => None,
            _ => Some(Item::Unknown(cmd.to_vec())),
        }
    }
}

fn parse_dle(b: &[u8]) -> Step {
    let Some(&c) = b.get(1) else {
        return Step::NeedMore;
    };
    match c {
        0x04 => b.get(2).map_or(Step::NeedMore, |&n| {
            Step::Done(3, Some(Item::StatusQuery(n)))
        }),
        0x05 => unknown_fixed(b, 3),
        0x14 => unknown_fixed(b, 5),
        _ => Step::Done(2, Some(Item::Unknown(b[..2].to_vec()))),
    }
}

fn parse_fs(b: &[u8]) -> Step {
    let Some(&c) = b.get(1) else {
        return Step::NeedMore;
    };
    match c {
        b'p' => unknown_fixed(b, 4),
        b'!' | b'-' | b'C' => unknown_fixed(b, 3),
        _ => Step::Done(2, Some(Item::Unknown(b[..2].to_vec()))),
    }
}

/// A known command of fixed length that is not modelled.
fn unknown_fixed(b: &[u8], len: usize) -> Step {
    if b.len() < len {
        Step::NeedMore
    } else {
        Step::Done(len, Some(Item::Unknown(b[..len].to_vec())))
    }
}

/// A known variable-length command of `total` bytes (header `header`), not modelled.
fn sized(b: &[u8], header: usize, total: usize) -> Step {
    if total > MAX_COMMAND {
        Step::Skip { header, total }
    } else {
        unknown_fixed(b, total)
    }
}

fn lossy_ascii(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..=0x7E).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Decode one printable byte under code page `page` (`ESC t n` numbering).
pub fn decode_byte(page: u8, b: u8) -> char {
    // The tables are the driver's own (`pos_drivers::escpos::CodePage`): what it encodes, the
    // simulator decodes. CP850 is CP858 with `ı` where CP858 has `€`.
    match page {
        _ if b < 0x80 => char::from(b),
        0 => CodePage::Cp437.decode_byte(b),
        2 if b == 0xD5 => 'ı',
        2 | 19 => CodePage::Cp858.decode_byte(b),
        _ => char::REPLACEMENT_CHARACTER,
    }
}

/// Incremental receipt renderer (stateful version of [`render`]).
///
/// Rendering rules:
/// * text is printed as received; text printed while bold is on is wrapped in `**...**`;
/// * [`Item::Newline`] ends the current line;
/// * [`Item::Cut`] ends a non-empty partial line and writes a line `[CUT]`;
/// * [`Item::DrawerKick`] writes `[DRAWER pin N]`, [`Item::Qr`] writes `[QR payload]`,
///   [`Item::Barcode`] writes `[BARCODE data]`, each on its own line;
/// * alignment, size, code page, init, status queries and unknown commands produce no output
///   (the renderer does not know the paper width, so centred text is not padded).
#[derive(Debug, Clone, Default)]
pub struct Renderer {
    line: String,
    bold: bool,
}

impl Renderer {
    /// A renderer with an empty line and bold off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Render one item, appending complete lines to `out`.
    pub fn push(&mut self, item: &Item, out: &mut String) {
        match item {
            Item::Text(t) => {
                if self.bold {
                    let _ = write!(self.line, "**{t}**");
                } else {
                    self.line.push_str(t);
                }
            }
            Item::Newline => {
                out.push_str(&self.line);
                out.push('\n');
                self.line.clear();
            }
            Item::Init => self.bold = false,
            Item::Bold(on) => self.bold = *on,
            Item::Cut => self.marker(out, "[CUT]"),
            Item::DrawerKick { pin, .. } => self.marker(out, &format!("[DRAWER pin {pin}]")),
            Item::Qr(payload) => self.marker(out, &format!("[QR {payload}]")),
            Item::Barcode { data, .. } => self.marker(out, &format!("[BARCODE {data}]")),
            Item::Size(..)
            | Item::Align(_)
            | Item::CodePage(_)
            | Item::StatusQuery(_)
            | Item::Unknown(_) => {}
        }
    }

    /// Flush a non-empty partial line (end of stream).
    pub fn finish(&mut self, out: &mut String) {
        if !self.line.is_empty() {
            out.push_str(&self.line);
            out.push('\n');
            self.line.clear();
        }
    }

    fn marker(&mut self, out: &mut String, marker: &str) {
        self.finish(out);
        out.push_str(marker);
        out.push('\n');
    }
}

/// Render a complete item list as human-readable text; see [`Renderer`] for the rules.
pub fn render(items: &[Item]) -> String {
    let mut r = Renderer::new();
    let mut out = String::new();
    for item in items {
        r.push(item, &mut out);
    }
    r.finish(&mut out);
    out
}

//! ESC/POS encoding of a [`Receipt`]: a pure function from the receipt model to the exact bytes
//! sent to the printer, so the output can be golden-tested byte for byte.
//!
//! The text comes from [`Receipt::render_text`] (32 columns on 58 mm paper, 48 on 80 mm), so
//! what the printer shows is what the text golden tests of the sale engine pin. Around it this
//! module adds: `ESC @` (initialise), `ESC t n` (code page), the total row emphasised and
//! double-height (`ESC E`, `GS !`: double height keeps the column count), the receipt's QR code
//! (`GS ( k`: model 2, module size, error level M, store, print), an optional drawer kick
//! (`ESC p m t1 t2`) and a cut (`GS V 66 0`: feed to the cutter, then cut).
//!
//! Text is encoded into the selected code page (CP437 or CP858); characters the page lacks are
//! transliterated (`€` → `EUR` on CP437, `ł` → `l`, typographic quotes → ASCII quotes, accented
//! letters → their base letter) and anything else becomes `?`. Control characters never reach
//! the printer as commands: the renderer already turns them into spaces.
//!
//! # Why not the `escpos` crate
//!
//! The product design names the [`escpos`](https://crates.io/crates/escpos) crate (MIT). It was
//! checked (0.17.1 and 0.20.1) and not used, because:
//! - its cash-drawer command is `ESC p m` without `t1 t2`: a real printer then swallows the
//!   next two bytes of the job as pulse times, and the pulse cannot be configured;
//! - its cut is `GS V 65 0` / `GS V 65 1` only (no `GS V 66`);
//! - characters missing from the selected code page are silently written as UTF-8 (the default
//!   encoder), and its code-page tables are crate-private, so transliteration against them is
//!   impossible from outside;
//! - 0.20 needs Rust 1.88 (the workspace targets 1.85), and every version pulls `encoding_rs`
//!   and `log` unconditionally; a `Vec<u8>` target needs a custom `Driver` with interior
//!   mutability because `Driver::write` takes `&self`.
//!
//! What it would have given (init, `ESC t`, emphasis, QR) is a handful of fixed byte strings,
//! written here with the Epson reference; the code-page tables are the standard IBM ones.

use pos_core::sale::{Receipt, SaleError};

const ESC: u8 = 0x1B;
const GS: u8 = 0x1D;
const LF: u8 = 0x0A;

/// Largest QR payload `GS ( k` can store (model 2, byte mode, level L).
pub const QR_MAX_BYTES: usize = 7089;

/// Paper roll width; decides the column count and the QR module size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaperWidth {
    /// 58 mm: 32 columns of font A.
    Mm58,
    /// 80 mm: 48 columns of font A.
    Mm80,
}

impl PaperWidth {
    /// Printable width in dots at 203 dpi.
    pub fn dots(self) -> u16 {
        match self {
            PaperWidth::Mm58 => 384,
            PaperWidth::Mm80 => 576,
        }
    }
}

impl PaperWidth {
    pub fn columns(self) -> usize {
        match self {
            PaperWidth::Mm58 => 32,
            PaperWidth::Mm80 => 48,
        }
    }

    /// QR module size in dots (`GS ( k` function 167): about a third of the printable width
    /// for a typical receipt payload.
    fn qr_module(self) -> u8 {
        match self {
            PaperWidth::Mm58 => 4,
            PaperWidth::Mm80 => 6,
        }
    }
}

/// Character code table selected with `ESC t n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePage {
    /// PC437 (USA, standard Europe): `ESC t 0`. No euro sign.
    Cp437,
    /// PC858 (PC850 with `€` at 0xD5): `ESC t 19`.
    Cp858,
}

impl CodePage {
    /// The `n` of `ESC t n` (Epson numbering).
    pub fn escpos_table(self) -> u8 {
        match self {
            CodePage::Cp437 => 0,
            CodePage::Cp858 => 19,
        }
    }

    /// The character byte `b` stands for in this page (what a printer prints for it).
    pub fn decode_byte(self, b: u8) -> char {
        match b.checked_sub(0x80) {
            None => char::from(b),
            Some(i) => self.high_half()[usize::from(i)],
        }
    }

    fn high_half(self) -> &'static [char; 128] {
        match self {
            CodePage::Cp437 => &CP437_HIGH,
            CodePage::Cp858 => &CP858_HIGH,
        }
    }

    /// The byte for `c` in this page, if the page has it.
    pub fn encode_char(self, c: char) -> Option<u8> {
        if (' '..='~').contains(&c) {
            return u8::try_from(u32::from(c)).ok();
        }
        let index = self.high_half().iter().position(|&h| h == c)?;
        u8::try_from(index + 0x80).ok()
    }

    /// `text` in this page, transliterating what the page lacks; control characters become
    /// spaces. Every output byte is printable (0x20..=0x7E or 0x80..=0xFF).
    pub fn encode(self, text: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            if c.is_control() {
                out.push(b' ');
            } else if let Some(b) = self.encode_char(c) {
                out.push(b);
            } else {
                for r in transliterate(c).chars() {
                    out.push(self.encode_char(r).unwrap_or(b'?'));
                }
            }
        }
        out
    }
}

/// Which drawer connector pin the kick pulse goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrawerPin {
    /// Connector pin 2 (`ESC p 0`): the usual first drawer.
    Pin2,
    /// Connector pin 5 (`ESC p 1`): a second drawer.
    Pin5,
}

/// Open the drawer through the printer's drawer port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DrawerKick {
    pub pin: DrawerPin,
    /// Pulse length, 2..=510 ms (sent as `t1` = ms / 2).
    pub pulse_ms: u16,
}

/// How to print a receipt on a given printer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    pub width: PaperWidth,
    pub code_page: CodePage,
    /// Kick the drawer at the start of the job (so it opens while the receipt prints).
    pub kick_drawer: Option<DrawerKick>,
    /// Feed to the cutter and cut at the end.
    pub cut: bool,
    /// The shop's logo, printed centred above the header.
    pub logo: Option<Logo>,
    /// A CODE128 barcode of the receipt number under the QR code, for a scanner at the till
    /// (returns, reprints).
    pub barcode: bool,
}

impl Layout {
    /// A layout for `width` and `code_page` with a cut and no extras.
    pub fn new(width: PaperWidth, code_page: CodePage) -> Layout {
        Layout {
            width,
            code_page,
            kick_drawer: None,
            cut: true,
            logo: None,
            barcode: false,
        }
    }
}

/// A one-bit logo: `height` rows of `width` dots, each row packed into bytes MSB first
/// (1 = black), as in a binary PBM (P4) file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Logo {
    width: u16,
    height: u16,
    rows: Vec<u8>,
}

impl Logo {
    /// Widest logo: the printable width of 80 mm paper at 203 dpi.
    pub const MAX_WIDTH: u16 = 576;
    pub const MAX_HEIGHT: u16 = 512;

    pub fn new(width: u16, height: u16, rows: Vec<u8>) -> Result<Logo, EncodeError> {
        let expected = usize::from(width.div_ceil(8)) * usize::from(height);
        if width == 0 || height == 0 || width > Self::MAX_WIDTH || height > Self::MAX_HEIGHT {
            return Err(EncodeError::Logo(format!(
                "{width}x{height} dots: use 1..={} wide and 1..={} high",
                Self::MAX_WIDTH,
                Self::MAX_HEIGHT
            )));
        }
        if rows.len() != expected {
            return Err(EncodeError::Logo(format!(
                "{} bytes of image data, {expected} expected for {width}x{height} dots",
                rows.len()
            )));
        }
        Ok(Logo {
            width,
            height,
            rows,
        })
    }

    /// Read a binary PBM (P4) image, the simplest one-bit format image tools write.
    pub fn from_pbm(bytes: &[u8]) -> Result<Logo, EncodeError> {
        let bad = |why: &str| EncodeError::Logo(format!("not a binary PBM (P4) image: {why}"));
        let mut fields = Vec::new();
        let mut i = 0;
        while fields.len() < 3 {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'#') {
                if bytes[i] == b'#' {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
            }
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if start == i {
                return Err(bad("header ends early"));
            }
            fields.push(&bytes[start..i]);
        }
        if fields[0] != b"P4" {
            return Err(bad("it does not start with P4"));
        }
        let number = |f: &[u8]| {
            std::str::from_utf8(f)
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| bad("width or height is not a number"))
        };
        let (width, height) = (number(fields[1])?, number(fields[2])?);
        // Exactly one whitespace byte separates the header from the data.
        let data = bytes.get(i + 1..).ok_or_else(|| bad("no image data"))?;
        Logo::new(width, height, data.to_vec())
    }
}

/// Why a receipt could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("receipt: {0}")]
    Receipt(#[from] SaleError),
    #[error("QR payload of {0} bytes is longer than {QR_MAX_BYTES}")]
    QrTooLong(usize),
    #[error("drawer pulse of {0} ms is outside 2..=510 ms")]
    DrawerPulse(u16),
    #[error("logo: {0}")]
    Logo(String),
    #[error("the logo is {0} dots wide, wider than the paper")]
    LogoTooWide(u16),
}

/// The whole ESC/POS job for `receipt`.
pub fn encode_receipt(receipt: &Receipt, layout: &Layout) -> Result<Vec<u8>, EncodeError> {
    let text = receipt.render_text(layout.width.columns())?;
    let page = layout.code_page;
    let mut out = Vec::with_capacity(text.len() + 256);

    out.extend_from_slice(&[ESC, b'@']);
    out.extend_from_slice(&[ESC, b't', page.escpos_table()]);
    if let Some(kick) = layout.kick_drawer {
        out.extend_from_slice(&drawer_kick(kick)?);
    }
    if let Some(logo) = &layout.logo {
        if logo.width > layout.width.dots() {
            return Err(EncodeError::LogoTooWide(logo.width));
        }
        out.extend_from_slice(&[ESC, b'a', 1]);
        out.extend_from_slice(&raster(logo));
        out.extend_from_slice(&[ESC, b'a', 0]);
    }

    let total_label = format!("TOTAL {}", receipt.currency.code);
    let total_label = total_label.trim_end();
    let total_amount = receipt.sale.totals.due.format(&receipt.currency);
    let mut total_done = false;
    for row in text.lines() {
        let is_total =
            !total_done && row.starts_with(total_label) && row.ends_with(total_amount.as_str());
        if is_total {
            total_done = true;
            out.extend_from_slice(&[ESC, b'E', 1, GS, b'!', 0x01]);
        }
        out.extend_from_slice(&page.encode(row));
        if is_total {
            out.extend_from_slice(&[ESC, b'E', 0, GS, b'!', 0x00]);
        }
        out.push(LF);
    }

    if !receipt.qr.is_empty() {
        out.extend_from_slice(&[ESC, b'a', 1]);
        out.extend_from_slice(&qr_code(receipt.qr.as_bytes(), layout.width.qr_module())?);
        out.push(LF);
        out.extend_from_slice(&[ESC, b'a', 0]);
    }

    if layout.barcode {
        out.extend_from_slice(&[ESC, b'a', 1]);
        out.extend_from_slice(&code128(&receipt.number.to_string()));
        out.extend_from_slice(&[ESC, b'a', 0]);
    }

    if layout.cut {
        out.extend_from_slice(&[GS, b'V', 66, 0]);
    }
    Ok(out)
}

/// `GS v 0`: the logo as a raster image, normal density.
fn raster(logo: &Logo) -> Vec<u8> {
    let bytes_per_row = logo.width.div_ceil(8).to_le_bytes();
    let rows = logo.height.to_le_bytes();
    let mut out = vec![
        GS,
        b'v',
        b'0',
        0,
        bytes_per_row[0],
        bytes_per_row[1],
        rows[0],
        rows[1],
    ];
    out.extend_from_slice(&logo.rows);
    out.push(LF);
    out
}

/// A CODE128 (code set B) barcode of `digits` with the number printed below it: height 60
/// dots, module width 2. `digits` is a receipt number, far below the 255-byte limit.
fn code128(digits: &str) -> Vec<u8> {
    let data: Vec<u8> = b"{B"
        .iter()
        .chain(digits.as_bytes())
        .copied()
        .take(255)
        .collect();
    let mut out = vec![GS, b'h', 60, GS, b'w', 2, GS, b'H', 2, GS, b'k', 73];
    out.push(u8::try_from(data.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&data);
    out.push(LF);
    out
}

/// `ESC p m t1 t2`: on for `pulse_ms`, off for at least 500 ms (the printer uses `t1` when
/// `t2 < t1`).
pub fn drawer_kick(kick: DrawerKick) -> Result<[u8; 5], EncodeError> {
    let t1 = u8::try_from(kick.pulse_ms / 2)
        .ok()
        .filter(|&t| t >= 1)
        .ok_or(EncodeError::DrawerPulse(kick.pulse_ms))?;
    let m = match kick.pin {
        DrawerPin::Pin2 => 0,
        DrawerPin::Pin5 => 1,
    };
    Ok([ESC, b'p', m, t1, 250])
}

/// `GS ( k` QR code, model 2, `module` dots per module, error level M, stored then printed.
pub fn qr_code(data: &[u8], module: u8) -> Result<Vec<u8>, EncodeError> {
    let too_long = EncodeError::QrTooLong(data.len());
    if data.len() > QR_MAX_BYTES {
        return Err(too_long);
    }
    let stored = u16::try_from(data.len() + 3).map_err(|_| too_long)?;
    let [pl, ph] = stored.to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 40);
    // Function 165: model 2.
    out.extend_from_slice(&[GS, b'(', b'k', 4, 0, 49, 65, 50, 0]);
    // Function 167: module size.
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 67, module.clamp(1, 16)]);
    // Function 169: error correction level M.
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 69, 49]);
    // Function 180: store the data.
    out.extend_from_slice(&[GS, b'(', b'k', pl, ph, 49, 80, 48]);
    out.extend_from_slice(data);
    // Function 181: print the stored symbol.
    out.extend_from_slice(&[GS, b'(', b'k', 3, 0, 49, 81, 48]);
    Ok(out)
}

/// An ASCII stand-in for a character the code page lacks; `?` when there is none.
fn transliterate(c: char) -> &'static str {
    match c {
        '€' => "EUR",
        '£' => "GBP",
        '¥' => "JPY",
        '¢' => "c",
        '‘' | '’' | '‚' | '‛' | '′' | '´' | '`' => "'",
        '“' | '”' | '„' | '‟' | '″' | '«' | '»' => "\"",
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' => "-",
        '…' => "...",
        '•' | '·' | '∙' => "*",
        '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' => " ",
        '×' => "x",
        '÷' => "/",
        '©' => "(C)",
        '®' => "(R)",
        '™' => "TM",
        '°' => "o",
        'ß' => "ss",
        'Æ' => "AE",
        'æ' => "ae",
        'Œ' => "OE",
        'œ' => "oe",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'Þ' => "Th",
        'þ' => "th",
        _ => base_letter(c),
    }
}

/// Latin letters with diacritics (Latin-1 Supplement and Latin Extended-A) → base letter.
fn base_letter(c: char) -> &'static str {
    const GROUPS: &[(&str, &str)] = &[
        ("ÀÁÂÃÄÅĀĂĄ", "A"),
        ("àáâãäåāăą", "a"),
        ("ÇĆĈĊČ", "C"),
        ("çćĉċč", "c"),
        ("ÐĎĐ", "D"),
        ("ðďđ", "d"),
        ("ÈÉÊËĒĔĖĘĚ", "E"),
        ("èéêëēĕėęě", "e"),
        ("ĜĞĠĢ", "G"),
        ("ĝğġģ", "g"),
        ("ĤĦ", "H"),
        ("ĥħ", "h"),
        ("ÌÍÎÏĨĪĬĮİ", "I"),
        ("ìíîïĩīĭįı", "i"),
        ("Ĵ", "J"),
        ("ĵ", "j"),
        ("Ķ", "K"),
        ("ķĸ", "k"),
        ("ĹĻĽĿŁ", "L"),
        ("ĺļľŀł", "l"),
        ("ÑŃŅŇŊ", "N"),
        ("ñńņňŉŋ", "n"),
        ("ÒÓÔÕÖØŌŎŐ", "O"),
        ("òóôõöøōŏő", "o"),
        ("ŔŖŘ", "R"),
        ("ŕŗř", "r"),
        ("ŚŜŞŠ", "S"),
        ("śŝşšſ", "s"),
        ("ŢŤŦ", "T"),
        ("ţťŧ", "t"),
        ("ÙÚÛÜŨŪŬŮŰŲ", "U"),
        ("ùúûüũūŭůűų", "u"),
        ("Ŵ", "W"),
        ("ŵ", "w"),
        ("ÝŶŸ", "Y"),
        ("ýÿŷ", "y"),
        ("ŹŻŽ", "Z"),
        ("źżž", "z"),
    ];
    GROUPS
        .iter()
        .find(|(set, _)| set.contains(c))
        .map_or("?", |&(_, base)| base)
}

/// IBM code page 437, bytes 0x80..=0xFF.
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

/// IBM code page 858 (850 with `€` at 0xD5), bytes 0x80..=0xFF.
const CP858_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', 'ø', '£', 'Ø', '×', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '®', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', 'Á', 'Â', 'À', '©', '╣', '║', '╗', '╝', '¢', '¥', '┐', //
    '└', '┴', '┬', '├', '─', '┼', 'ã', 'Ã', '╚', '╔', '╩', '╦', '╠', '═', '╬', '¤', //
    'ð', 'Ð', 'Ê', 'Ë', 'È', '€', 'Í', 'Î', 'Ï', '┘', '┌', '█', '▄', '¦', 'Ì', '▀', //
    'Ó', 'ß', 'Ô', 'Ò', 'õ', 'Õ', 'µ', 'þ', 'Þ', 'Ú', 'Û', 'Ù', 'ý', 'Ý', '¯', '´', //
    '\u{ad}', '±', '‗', '¾', '¶', '§', '÷', '¸', '°', '¨', '·', '¹', '³', '²', '■', '\u{a0}',
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn euro_and_transliteration() {
        assert_eq!(CodePage::Cp858.encode("5,00 €"), b"5,00 \xD5");
        assert_eq!(CodePage::Cp437.encode("5,00 €"), b"5,00 EUR");
        assert_eq!(CodePage::Cp437.encode("Łódź"), b"L\xA2dz");
        assert_eq!(
            CodePage::Cp858.encode("“a” ‘b’ – ok…"),
            b"\"a\" 'b' - ok..."
        );
        assert_eq!(CodePage::Cp437.encode("Müller"), b"M\x81ller");
        assert_eq!(CodePage::Cp437.encode("Ø"), b"O");
        assert_eq!(CodePage::Cp858.encode("Ø"), b"\x9D");
        assert_eq!(CodePage::Cp437.encode("日本\u{1b}x"), b"?? x");
    }

    #[test]
    fn tables_have_no_duplicates_or_ascii() {
        for page in [CodePage::Cp437, CodePage::Cp858] {
            let high = page.high_half();
            for (i, c) in high.iter().enumerate() {
                assert!(!c.is_ascii(), "{page:?} {i:#x}");
                assert_eq!(high.iter().position(|h| h == c), Some(i), "{page:?} {c}");
            }
        }
        assert_eq!(CodePage::Cp858.encode_char('€'), Some(0xD5));
        assert_eq!(CodePage::Cp437.encode_char('€'), None);
    }

    #[test]
    fn drawer_kick_bytes_and_limits() {
        let kick = |pin, pulse_ms| drawer_kick(DrawerKick { pin, pulse_ms });
        assert_eq!(kick(DrawerPin::Pin2, 100), Ok([ESC, b'p', 0, 50, 250]));
        assert_eq!(kick(DrawerPin::Pin5, 510), Ok([ESC, b'p', 1, 255, 250]));
        assert_eq!(kick(DrawerPin::Pin2, 1), Err(EncodeError::DrawerPulse(1)));
        assert_eq!(
            kick(DrawerPin::Pin2, 512),
            Err(EncodeError::DrawerPulse(512))
        );
    }

    #[test]
    fn qr_store_length() {
        let bytes = qr_code(b"abc", 4).unwrap();
        let store = [GS, b'(', b'k', 6, 0, 49, 80, 48, b'a', b'b', b'c'];
        assert!(bytes.windows(store.len()).any(|w| w == store));
        assert!(qr_code(&vec![b'x'; QR_MAX_BYTES + 1], 4).is_err());
    }
}

//! Customer line display, 2 lines x 20 columns, ESC/POS-compatible command set (Epson DM-D
//! and the many displays that copy it). A pure encoder: each call returns the bytes of one whole
//! screen, which the caller writes to the display's transport (usually serial).
//!
//! Commands used: `ESC @` (initialise), `ESC t n` (character table, the same numbers as the
//! printers: see [`CodePage::escpos_table`]), `US MD1` (`1F 01`, overwrite mode: no scrolling),
//! `CLR` (`0C`, clear), `HOM` (`0B`, cursor home) and `US $ x y` (`1F 24 x y`, cursor to column
//! `x`, line `y`, 1-based). Text is transliterated into the code page first and then padded or
//! truncated to exactly the display width, so one byte is one column and nothing wraps.

use crate::escpos::CodePage;

const ESC: u8 = 0x1B;
const US: u8 = 0x1F;
const CLR: u8 = 0x0C;
const HOM: u8 = 0x0B;

/// A 2-line customer display and how to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDisplay {
    /// Columns per line (20 on the common 2x20 displays).
    pub columns: usize,
    /// Character table the display is switched to.
    pub code_page: CodePage,
    /// Upper-line label of the total screen, e.g. `"TOTAL"` or `"SUMME"`.
    pub total_label: String,
}

impl Default for LineDisplay {
    fn default() -> Self {
        Self {
            columns: 20,
            code_page: CodePage::Cp858,
            total_label: "TOTAL".to_owned(),
        }
    }
}

/// Horizontal placement of a line's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    Center,
}

impl LineDisplay {
    /// Reset the display and select the code page and overwrite mode. Send once after opening
    /// the port (and after a reconnect).
    pub fn init(&self) -> Vec<u8> {
        vec![
            ESC,
            b'@',
            ESC,
            b't',
            self.code_page.escpos_table(),
            US,
            0x01,
        ]
    }

    /// The screen for an item just scanned: its name on the upper line, its price
    /// right-aligned on the lower line.
    pub fn item_line(&self, name: &str, price: &str) -> Vec<u8> {
        self.screen((name, Align::Left), (price, Align::Right))
    }

    /// The sale total: the total label on the upper line, `amount` right-aligned below.
    pub fn total(&self, amount: &str) -> Vec<u8> {
        self.screen((&self.total_label, Align::Left), (amount, Align::Right))
    }

    /// An idle message (shop name, "Welcome"), word-wrapped over the two lines and centered.
    pub fn idle(&self, message: &str) -> Vec<u8> {
        let (upper, lower) = wrap_two(message, self.columns);
        self.screen((&upper, Align::Center), (&lower, Align::Center))
    }

    /// Any two lines, left-aligned.
    pub fn lines(&self, upper: &str, lower: &str) -> Vec<u8> {
        self.screen((upper, Align::Left), (lower, Align::Left))
    }

    fn screen(&self, upper: (&str, Align), lower: (&str, Align)) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 * self.columns + 8);
        out.extend_from_slice(&[CLR, HOM]);
        out.extend(self.fit(upper.0, upper.1));
        out.extend_from_slice(&[US, b'$', 1, 2]);
        out.extend(self.fit(lower.0, lower.1));
        out
    }

    /// `text` encoded, then padded or truncated to exactly `columns` bytes.
    fn fit(&self, text: &str, align: Align) -> Vec<u8> {
        let width = self.columns;
        let mut bytes = self.code_page.encode(text.trim());
        if bytes.len() > width {
            // Amounts keep their right end (the digits), everything else its start.
            if align == Align::Right {
                bytes.drain(..bytes.len() - width);
            } else {
                bytes.truncate(width);
            }
        }
        let pad = width - bytes.len();
        let (left, right) = match align {
            Align::Left => (0, pad),
            Align::Right => (pad, 0),
            Align::Center => (pad / 2, pad - pad / 2),
        };
        let mut out = Vec::with_capacity(width);
        out.resize(left, b' ');
        out.extend_from_slice(&bytes);
        out.resize(left + bytes.len() + right, b' ');
        out
    }
}

/// Split `message` at word boundaries into at most two lines of `width` characters (by `char`;
/// the encoder truncates again after transliteration).
fn wrap_two(message: &str, width: usize) -> (String, String) {
    let mut upper = String::new();
    let mut words = message.split_whitespace().peekable();
    while let Some(word) = words.peek() {
        let needed = upper.chars().count() + usize::from(!upper.is_empty()) + word.chars().count();
        if needed > width && !upper.is_empty() {
            break;
        }
        if !upper.is_empty() {
            upper.push(' ');
        }
        upper.push_str(word);
        words.next();
    }
    let lower = words.collect::<Vec<_>>().join(" ");
    (upper, lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(upper: &[u8; 20], lower: &[u8; 20]) -> Vec<u8> {
        let mut v = vec![0x0C, 0x0B];
        v.extend_from_slice(upper);
        v.extend_from_slice(&[0x1F, 0x24, 1, 2]);
        v.extend_from_slice(lower);
        v
    }

    #[test]
    fn init_bytes() {
        let d = LineDisplay::default();
        assert_eq!(d.init(), b"\x1b@\x1bt\x13\x1f\x01");
        let d437 = LineDisplay {
            code_page: CodePage::Cp437,
            ..LineDisplay::default()
        };
        assert_eq!(d437.init(), b"\x1b@\x1bt\x00\x1f\x01");
    }

    #[test]
    fn item_line_golden() {
        let d = LineDisplay::default();
        assert_eq!(
            d.item_line("Café crème", "3,50 €"),
            screen(b"Caf\x82 cr\x8Ame          ", b"              3,50 \xD5")
        );
        // Too long: the name keeps its start, the price its end.
        assert_eq!(
            d.item_line(
                "Organic whole milk 1 litre bottle",
                "EUR 1234567890123456,99"
            ),
            screen(b"Organic whole milk 1", b" 1234567890123456,99")
        );
    }

    #[test]
    fn total_and_cp437_transliteration() {
        let d = LineDisplay {
            code_page: CodePage::Cp437,
            ..LineDisplay::default()
        };
        assert_eq!(
            d.total("12,00 €"),
            screen(b"TOTAL               ", b"           12,00 EUR")
        );
    }

    #[test]
    fn idle_wraps_and_centers() {
        let d = LineDisplay::default();
        assert_eq!(
            d.idle("Welcome to Bäckerei Müller"),
            screen(b"Welcome to B\x84ckerei ", b"       M\x81ller       ")
        );
        assert_eq!(d.idle(""), screen(&[b' '; 20], &[b' '; 20]));
        // One overlong word is cut, control characters never reach the display.
        let out = d.idle("ABCDEFGHIJKLMNOPQRSTUVWXYZ\u{1b}");
        assert_eq!(out, screen(b"ABCDEFGHIJKLMNOPQRST", &[b' '; 20]));
        let out = d.lines("a\u{1b}b", "\u{7}");
        assert_eq!(out, screen(b"a b                 ", &[b' '; 20]));
    }

    #[test]
    fn every_screen_has_fixed_length() {
        let d = LineDisplay::default();
        for s in [
            "",
            "x",
            "日本語のテキストがとても長い場合",
            "€€€€€€€€€€€€€€€€€€€€€€€€",
        ] {
            assert_eq!(d.item_line(s, s).len(), 46);
            assert_eq!(d.total(s).len(), 46);
            assert_eq!(d.idle(s).len(), 46);
        }
    }
}

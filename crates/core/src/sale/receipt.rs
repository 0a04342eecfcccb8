//! The receipt model and its plain-text rendering (what the ESC/POS driver prints and the
//! golden tests pin).
//!
//! Layout rules: every row fits the width (counted in characters); amounts are right-aligned
//! on the last column; text that does not fit is wrapped, never cut, and when a label and its
//! amount do not fit on one row the amount moves to the next row, right-aligned. Control
//! characters in any text are printed as spaces so a product name cannot send printer commands.

use serde::{Deserialize, Serialize};

use super::money::{Currency, Money, Unit};
use super::tax::PricingMode;
use super::ticket::{percent_text, CompletedSale, Discount, Tender};
use super::SaleError;

/// Narrowest supported paper: 24 characters.
pub const MIN_WIDTH: usize = 24;
/// Widest supported paper: 200 characters.
pub const MAX_WIDTH: usize = 200;

/// Everything printed on a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Shop name, address, tax number...: centred at the top.
    pub header: Vec<String>,
    pub terminal: String,
    pub cashier: String,
    /// Gapless per terminal.
    pub number: u64,
    /// Formatted by the caller in the shop's time zone.
    pub time: String,
    pub sale: CompletedSale,
    pub footer: Vec<String>,
    /// See [`qr_payload`].
    pub qr: String,
    /// A reprint: marked "*** COPY ***" at the top and the bottom.
    pub copy: bool,
    pub currency: Currency,
}

/// What the receipt's QR code carries, so anyone can check the paper against the device's log:
/// `3PPOS1:<device>:<receipt no>:<chain hash hex>`.
pub fn qr_payload(device: &str, receipt_no: u64, chain_hash_hex: &str) -> String {
    format!("3PPOS1:{device}:{receipt_no}:{chain_hash_hex}")
}

impl Receipt {
    /// The receipt as text, `width` characters wide (32 for 58 mm paper, 48 for 80 mm), each
    /// row ending in a newline. Widths outside 24..=200 are refused.
    pub fn render_text(&self, width: usize) -> Result<String, SaleError> {
        if !(MIN_WIDTH..=MAX_WIDTH).contains(&width) {
            return Err(SaleError::ReceiptWidth(width));
        }
        let sale = &self.sale;
        let totals = &sale.totals;
        let money = |m: Money| m.format(&self.currency);
        let minus = |m: Money| format!("-{}", m.format(&self.currency));
        let mut out = Text {
            width,
            rows: Vec::new(),
        };

        for line in &self.header {
            out.centred(line);
        }
        if self.copy {
            out.centred("*** COPY ***");
        }
        out.rule();
        out.lr(&format!("Receipt {}", self.number), &self.time);
        out.lr(
            &format!("Till {}", self.terminal),
            &format!("Cashier {}", self.cashier),
        );
        out.rule();

        for line in &sale.lines {
            out.wrapped(&line.name, 0);
            let detail = match (line.unit, line.label_priced) {
                (Unit::Kg, true) => format!("  {} (label)", line.qty.format(Unit::Kg)),
                (Unit::Kg, false) => format!(
                    "  {} x {}/kg",
                    line.qty.format(Unit::Kg),
                    money(line.unit_price)
                ),
                (Unit::Each, _) => format!("  {} x {}", line.qty, money(line.unit_price)),
            };
            if line.voided {
                out.lr(&detail, "VOID");
                continue;
            }
            out.lr(&detail, &money(line.amount));
            if line.price_overridden {
                out.wrapped(
                    &format!("Price changed from {}", money(line.catalogue_price)),
                    2,
                );
            }
            if line.line_discount.is_positive() {
                out.lr(
                    &format!("  {}", discount_label(line.discount)),
                    &minus(line.line_discount),
                );
            }
        }
        out.rule();

        if totals.ticket_discount.is_positive() {
            out.lr("Subtotal", &money(totals.subtotal));
            out.lr(
                &discount_label(sale.ticket_discount),
                &minus(totals.ticket_discount),
            );
        }
        if sale.mode == PricingMode::Exclusive {
            out.lr("Net total", &money(totals.total));
            out.lr("Tax", &money(totals.tax_added));
        }
        out.lr(
            format!("TOTAL {}", self.currency.code).trim_end(),
            &money(totals.due),
        );
        if sale.rounding.0 != 0 {
            out.lr("Rounding", &money(sale.rounding));
            out.lr("To pay", &money(totals.due.checked_add(sale.rounding)?));
        }
        if totals.discounts.is_positive() {
            out.lr("You saved", &money(totals.discounts));
        }
        out.rule();

        for payment in &sale.payments {
            out.lr(&payment.tender.label(), &money(payment.amount));
            if let Tender::Card { approval_code, .. } = &payment.tender {
                out.wrapped(&format!("Auth {approval_code}"), 2);
            }
        }
        if sale.payments.iter().any(|p| p.tender.is_cash()) {
            out.lr("Change", &money(sale.change));
        }
        out.rule();

        let rates: Vec<(String, [String; 3])> = totals
            .taxes
            .iter()
            .map(|t| {
                let label = format!("{} {}%", t.name, percent_text(t.rate_bp));
                (label, [money(t.net), money(t.tax), money(t.gross)])
            })
            .collect();
        out.tax_table(&rates);
        out.rule();

        for line in &self.footer {
            out.centred(line);
        }
        if self.copy {
            out.centred("*** COPY ***");
        }
        out.hard_wrapped(&self.qr);

        let mut text = out.rows.join("\n");
        text.push('\n');
        Ok(text)
    }
}

fn discount_label(discount: Option<Discount>) -> String {
    match discount {
        Some(d @ Discount::Percent(_)) => format!("Discount {d}"),
        _ => "Discount".into(),
    }
}

/// Rows of at most `width` characters.
struct Text {
    width: usize,
    rows: Vec<String>,
}

impl Text {
    fn rule(&mut self) {
        self.rows.push("-".repeat(self.width));
    }

    fn centred(&mut self, text: &str) {
        for row in wrap(&clean(text), self.width) {
            let pad = (self.width - row.chars().count()) / 2;
            self.rows.push(format!("{}{row}", " ".repeat(pad)));
        }
    }

    /// Word-wrapped, every row indented by `indent` spaces.
    fn wrapped(&mut self, text: &str, indent: usize) {
        let indent = indent.min(self.width / 2);
        for row in wrap(&clean(text), self.width - indent) {
            self.rows.push(format!("{}{row}", " ".repeat(indent)));
        }
    }

    /// Cut into rows of exactly `width` (for codes, where every character matters).
    fn hard_wrapped(&mut self, text: &str) {
        let chars: Vec<char> = clean(text).chars().collect();
        for chunk in chars.chunks(self.width) {
            self.rows.push(chunk.iter().collect());
        }
    }

    /// `left` and `right` on one row, `right` ending on the last column; if they do not fit,
    /// `left` is wrapped (keeping its indentation) and `right` gets a row of its own.
    fn lr(&mut self, left: &str, right: &str) {
        let (left, right) = (clean(left), clean(right));
        let (l, r) = (left.chars().count(), right.chars().count());
        if l + 1 + r <= self.width {
            let pad = self.width - l - r;
            self.rows.push(format!("{left}{}{right}", " ".repeat(pad)));
            return;
        }
        let indent = l - left.trim_start().chars().count();
        self.wrapped(&left, indent);
        if r > 0 {
            for row in wrap(&right, self.width) {
                self.rows.push(format!("{row:>width$}", width = self.width));
            }
        }
    }

    /// One row per rate if it fits, else the rate's name on its own row above its figures, and
    /// on very narrow paper one figure per row.
    fn tax_table(&mut self, rates: &[(String, [String; 3])]) {
        let heads = ["Net", "Tax", "Gross"];
        let number = rates
            .iter()
            .flat_map(|(_, figures)| figures.iter())
            .map(|s| s.chars().count())
            .fold("Gross".len(), usize::max);
        let column = number + 1;
        if 3 * column + 1 > self.width {
            for (label, figures) in rates {
                self.wrapped(label, 0);
                for (head, figure) in heads.iter().zip(figures) {
                    self.lr(&format!("  {head}"), figure);
                }
            }
            return;
        }
        let label_width = self.width - 3 * column;
        let one_row = rates
            .iter()
            .all(|(label, _)| clean(label).chars().count() <= label_width);
        let row = |label: &str, f: [&str; 3]| {
            format!(
                "{label:<label_width$}{:>column$}{:>column$}{:>column$}",
                f[0], f[1], f[2]
            )
        };
        let head = if label_width >= 4 { "Rate" } else { "" };
        self.rows.push(row(head, heads).trim_end().to_owned());
        for (label, figures) in rates {
            let figures = [
                figures[0].as_str(),
                figures[1].as_str(),
                figures[2].as_str(),
            ];
            if one_row {
                self.rows.push(row(&clean(label), figures));
            } else {
                self.wrapped(label, 0);
                self.rows.push(row("", figures));
            }
        }
    }
}

/// Control characters (ESC/POS commands among them) become spaces.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Word wrap to `width` (≥ 1); words longer than a row are cut. Always at least one row.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut len = 0;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while word.len() > width {
            if len > 0 {
                rows.push(std::mem::take(&mut row));
                len = 0;
            }
            let rest = word.split_off(width);
            rows.push(word.into_iter().collect());
            word = rest;
        }
        if word.is_empty() {
            continue;
        }
        if len > 0 && len + 1 + word.len() > width {
            rows.push(std::mem::take(&mut row));
            len = 0;
        }
        if len > 0 {
            row.push(' ');
            len += 1;
        }
        len += word.len();
        row.extend(word);
    }
    if len > 0 || rows.is_empty() {
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_words_and_long_words() {
        assert_eq!(wrap("a bb ccc", 4), vec!["a bb", "ccc"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
    }

    #[test]
    fn lr_moves_the_amount_when_it_does_not_fit() {
        let mut t = Text {
            width: 10,
            rows: Vec::new(),
        };
        t.lr("  abc def ghi", "12.00");
        assert_eq!(t.rows, vec!["  abc def", "  ghi", "     12.00"]);
    }
}

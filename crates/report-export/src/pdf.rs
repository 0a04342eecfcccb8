//! A report as a PDF (A4 portrait) through `pdf-writer`: the base-14 Helvetica fonts (every
//! PDF reader has them, so nothing is embedded and no font file ships), tables laid out with
//! Helvetica's own glyph widths, and charts drawn as filled rectangles with the PDF's path
//! operators. Text is WinAnsi-encoded; a character outside it prints as "?".
//!
//! A4 portrait, or landscape when a table would not fit portrait at the body size (narrower
//! still, the type shrinks to 6 pt and text columns are cut with "…").
//! Layout: title, the report's meta lines, then each section (title, notes, chart, table);
//! a table that does not fit continues on the next page under its repeated header. Every page
//! has a footer with the report, the period and "page n of N".

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::document::{Cell, Chart, Document, Table};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 42.0;
const BOTTOM: f32 = MARGIN + 24.0;
const BODY: f32 = 8.5;
const CELL_PAD: f32 = 4.0;
const CHART_H: f32 = 150.0;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Helvetica's advance widths (1/1000 em) for WinAnsi 32..=126, from Adobe's AFM.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
/// Helvetica-Bold's, likewise.
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// `text` in WinAnsiEncoding (Latin-1 plus the euro sign and typographic marks).
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '€' => 0x80,
            '…' => 0x85,
            '–' => 0x96,
            '—' => 0x97,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

/// Width of `text` in points at `size`.
fn width(text: &str, size: f32, bold: bool) -> f32 {
    let table = if bold { &HELVETICA_BOLD } else { &HELVETICA };
    let units: u32 = win_ansi(text)
        .iter()
        .map(|&b| match b {
            32..=126 => u32::from(table[usize::from(b - 32)]),
            0x85 => 1000,
            0x96 => 556,
            0x97 => 1000,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `text` cut with "…" to fit `max` points.
fn fit(text: &str, size: f32, bold: bool, max: f32) -> String {
    // A little slack: column widths are sums of the same floats.
    if width(text, size, bold) <= max + 0.01 {
        return text.to_owned();
    }
    let mut out: String = text.to_owned();
    while !out.is_empty() && width(&format!("{out}…"), size, bold) > max {
        out.pop();
    }
    format!("{out}…")
}

struct Writer<'a> {
    doc: &'a Document,
    pages: Vec<Content>,
    y: f32,
    /// Page width and height: A4 portrait, or landscape for reports with wide tables.
    pw: f32,
    ph: f32,
}

/// The width `table` wants at `size`, each column as wide as its widest cell.
fn natural_width(table: &Table, doc: &Document, size: f32) -> f32 {
    let cols = table.columns.len();
    (0..cols)
        .map(|i| {
            let head = width(&table.columns[i], size, true);
            table
                .rows
                .iter()
                .map(|r| (r, false))
                .chain(table.total.iter().map(|r| (r, true)))
                .map(|(r, bold)| {
                    r.get(i)
                        .map_or(0.0, |c| width(&c.display(&doc.currency), size, bold))
                })
                .fold(head, f32::max)
                + 2.0 * CELL_PAD
        })
        .sum()
}

impl Writer<'_> {
    fn page(&mut self) -> &mut Content {
        if self.pages.is_empty() {
            self.pages.push(Content::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = self.ph - MARGIN;
    }

    /// Start a new page unless `height` more points fit on this one.
    fn need(&mut self, height: f32) {
        if self.y - height < BOTTOM {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let bytes = win_ansi(text);
        let c = self.page();
        c.set_fill_rgb(0.0, 0.0, 0.0);
        c.begin_text();
        c.set_font(if bold { BOLD } else { REGULAR }, size);
        c.next_line(x, y);
        c.show(Str(&bytes));
        c.end_text();
    }

    fn line(&mut self, size: f32, bold: bool, text: &str) {
        self.need(size * 1.5);
        self.y -= size * 1.4;
        let text = fit(text, size, bold, self.pw - 2.0 * MARGIN);
        self.text(MARGIN, self.y, size, bold, &text);
    }

    fn rule(&mut self, y: f32, weight: f32, width: f32) {
        let c = self.page();
        c.set_line_width(weight);
        c.set_stroke_rgb(0.45, 0.45, 0.45);
        c.move_to(MARGIN, y);
        c.line_to(MARGIN + width, y);
        c.stroke();
    }

    fn chart(&mut self, chart: &Chart) {
        self.need(CHART_H + 40.0);
        self.y -= 14.0;
        self.text(MARGIN, self.y, 9.0, true, &chart.title);
        let axis_w = 52.0;
        let (left, right) = (MARGIN + axis_w, self.pw - MARGIN);
        let top = self.y - 8.0;
        let base = top - CHART_H;
        let max = chart.bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
        let label = |v: i64| {
            if chart.money {
                Cell::Money(v).display(&self.doc.currency)
            } else {
                v.to_string()
            }
        };
        // Grid: four lines with their values.
        for i in 0..=4 {
            let v = max * i / 4;
            let y = base + CHART_H * i as f32 / 4.0;
            let c = self.page();
            c.set_line_width(0.3);
            c.set_stroke_rgb(0.8, 0.8, 0.8);
            c.move_to(left, y);
            c.line_to(right, y);
            c.stroke();
            let text = label(v);
            let w = width(&text, 6.5, false);
            self.text(left - 4.0 - w, y - 2.0, 6.5, false, &text);
        }
        let n = chart.bars.len().max(1) as f32;
        let slot = (right - left) / n;
        let bar = (slot * 0.7).max(0.5);
        // Label every k-th bar so the labels never overlap.
        let widest = chart
            .bars
            .iter()
            .map(|b| width(&b.0, 6.0, false))
            .fold(0.0f32, f32::max);
        let every = ((widest + 3.0) / slot).ceil().max(1.0) as usize;
        for (i, (name, value)) in chart.bars.iter().enumerate() {
            let x = left + slot * i as f32 + (slot - bar) / 2.0;
            let h = CHART_H * (*value).max(0) as f32 / max as f32;
            if h > 0.0 {
                let c = self.page();
                c.set_fill_rgb(0.16, 0.42, 0.69);
                c.rect(x, base, bar, h);
                c.fill_nonzero();
            }
            if i % every == 0 {
                let w = width(name, 6.0, false);
                self.text(x + bar / 2.0 - w / 2.0, base - 9.0, 6.0, false, name);
            }
        }
        let c = self.page();
        c.set_line_width(0.8);
        c.set_stroke_rgb(0.2, 0.2, 0.2);
        c.move_to(left, base);
        c.line_to(right, base);
        c.stroke();
        self.y = base - 16.0;
    }

    fn table(&mut self, table: &Table) {
        let currency = &self.doc.currency;
        let rows: Vec<Vec<String>> = table
            .rows
            .iter()
            .map(|r| r.iter().map(|c| c.display(currency)).collect())
            .collect();
        let total: Option<Vec<String>> = table
            .total
            .as_ref()
            .map(|r| r.iter().map(|c| c.display(currency)).collect());
        let cols = table.columns.len().max(1);
        let numeric: Vec<bool> = (0..cols).map(|i| table.numeric(i)).collect();
        let avail = self.pw - 2.0 * MARGIN;
        // The natural width of each column at `size`, then the size that fits the page.
        let natural = |size: f32| -> Vec<f32> {
            (0..cols)
                .map(|i| {
                    let head = table.columns.get(i).map_or(0.0, |h| width(h, size, true));
                    rows.iter()
                        .map(|r| r.get(i).map_or(0.0, |c| width(c, size, false)))
                        .chain(
                            total
                                .iter()
                                .map(|r| r.get(i).map_or(0.0, |c| width(c, size, true))),
                        )
                        .fold(head, f32::max)
                        + 2.0 * CELL_PAD
                })
                .collect()
        };
        let mut size = BODY;
        let mut widths = natural(size);
        while widths.iter().sum::<f32>() > avail && size > 6.0 {
            size -= 0.5;
            widths = natural(size);
        }
        let sum: f32 = widths.iter().sum();
        if sum > avail {
            // Still too wide: text columns give up their width first (cut with "…").
            let text_w: f32 = (0..cols).filter(|&i| !numeric[i]).map(|i| widths[i]).sum();
            let excess = sum - avail;
            if text_w > excess {
                for (i, w) in widths.iter_mut().enumerate() {
                    if !numeric[i] {
                        *w -= excess * *w / text_w;
                    }
                }
            } else {
                for w in widths.iter_mut() {
                    *w *= avail / sum;
                }
            }
        } else if sum > avail * 0.6 && !numeric.iter().all(|n| *n) {
            // Spare room goes to the first text column, so wide tables span the page; narrow
            // ones (a figure and its value) keep their natural width.
            if let Some(first) = numeric.iter().position(|n| !n) {
                widths[first] += avail - sum;
            }
        }
        let table_w: f32 = widths.iter().sum();
        let row_h = size * 1.55;
        let header = |w: &mut Writer<'_>| {
            w.need(row_h * 2.0);
            w.y -= row_h;
            let y = w.y - size * 0.45;
            let c = w.page();
            c.set_fill_rgb(0.9, 0.92, 0.95);
            c.rect(MARGIN, y, table_w, row_h);
            c.fill_nonzero();
            c.set_fill_rgb(0.0, 0.0, 0.0);
            w.cells(&table.columns, &widths, &numeric, size, true);
        };
        header(self);
        for row in &rows {
            if self.y - row_h < BOTTOM {
                self.new_page();
                header(self);
            }
            self.y -= row_h;
            self.cells(row, &widths, &numeric, size, false);
        }
        if let Some(total) = &total {
            if self.y - row_h < BOTTOM {
                self.new_page();
                header(self);
            }
            let y = self.y - size * 0.45;
            self.rule(y, 0.8, table_w);
            self.y -= row_h;
            self.cells(total, &widths, &numeric, size, true);
        }
        self.y -= 6.0;
    }

    fn cells(&mut self, cells: &[String], widths: &[f32], numeric: &[bool], size: f32, bold: bool) {
        let mut x = MARGIN;
        for (i, w) in widths.iter().enumerate() {
            let text = cells.get(i).map(String::as_str).unwrap_or("");
            let text = fit(text, size, bold, w - 2.0 * CELL_PAD);
            let tw = width(&text, size, bold);
            let tx = if numeric[i] {
                x + w - CELL_PAD - tw
            } else {
                x + CELL_PAD
            };
            if !text.is_empty() {
                self.text(tx, self.y, size, bold, &text);
            }
            x += w;
        }
    }
}

/// The report as PDF bytes.
pub fn render(doc: &Document) -> Vec<u8> {
    let landscape = doc
        .sections
        .iter()
        .filter_map(|s| s.table.as_ref())
        .any(|t| natural_width(t, doc, BODY) > PAGE_W - 2.0 * MARGIN);
    let (pw, ph) = if landscape {
        (PAGE_H, PAGE_W)
    } else {
        (PAGE_W, PAGE_H)
    };
    let mut w = Writer {
        doc,
        pages: Vec::new(),
        y: ph - MARGIN,
        pw,
        ph,
    };
    w.new_page();
    w.y -= 6.0;
    w.text(MARGIN, w.y - 12.0, 17.0, true, &doc.title);
    w.y -= 22.0;
    for (k, v) in &doc.meta {
        w.line(8.5, false, &format!("{k}: {v}"));
    }
    w.y -= 4.0;
    let y = w.y;
    w.rule(y, 1.0, pw - 2.0 * MARGIN);
    for section in &doc.sections {
        w.need(60.0);
        w.y -= 18.0;
        let y = w.y;
        w.text(MARGIN, y, 12.0, true, &section.title);
        w.y -= 2.0;
        for note in &section.notes {
            w.line(8.5, false, note);
        }
        if let Some(chart) = &section.chart {
            w.chart(chart);
        }
        if let Some(table) = &section.table {
            w.table(table);
        }
    }

    let period = doc.period();
    let n = w.pages.len();
    let footer_left = format!("3PlugPOS · {} · {period}", doc.title);
    let mut pages = std::mem::take(&mut w.pages);
    for (i, content) in pages.iter_mut().enumerate() {
        let right = format!("page {} of {n}", i + 1);
        for (x, text) in [
            (MARGIN, fit(&footer_left, 7.0, false, 400.0)),
            (pw - MARGIN - width(&right, 7.0, false), right),
        ] {
            let bytes = win_ansi(&text);
            content.set_fill_rgb(0.35, 0.35, 0.35);
            content.begin_text();
            content.set_font(REGULAR, 7.0);
            content.next_line(x, MARGIN - 14.0);
            content.show(Str(&bytes));
            content.end_text();
        }
    }

    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let mut next = 6;
    let mut alloc = || {
        let r = Ref::new(next);
        next += 1;
        r
    };
    let ids: Vec<(Ref, Ref)> = (0..n).map(|_| (alloc(), alloc())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(ids.iter().map(|(page, _)| *page))
        .count(n as i32);
    for ((page_id, content_id), content) in ids.iter().zip(pages) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, pw, ph));
        page.parent(tree);
        page.contents(*content_id);
        page.resources()
            .fonts()
            .pair(REGULAR, regular)
            .pair(BOLD, bold);
        page.finish();
        pdf.stream(*content_id, &content.finish());
    }
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info)
        .title(TextStr(&doc.title))
        .producer(TextStr("3PlugPOS pos-report-export"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_metrics() {
        assert_eq!(width("0", 1000.0, false), 556.0);
        assert_eq!(width("W", 1000.0, true), 944.0);
        assert!(fit("a long long name", 8.0, false, 30.0).ends_with('…'));
        assert_eq!(win_ansi("€é"), vec![0x80, 0xe9]);
    }
}

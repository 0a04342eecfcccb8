//! A report as a plain-text table for the terminal.

use std::fmt::Write as _;

use crate::document::{Cell, Document, Table};

/// Columns wider than this are cut with "…" (names, reasons).
const MAX_COLUMN: usize = 40;
/// Width of the longest bar of a chart, in characters.
const BAR_WIDTH: usize = 40;

pub fn render(doc: &Document) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", doc.title);
    let _ = writeln!(out, "{}", "=".repeat(doc.title.chars().count()));
    let key_width = doc
        .meta
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in &doc.meta {
        let _ = writeln!(out, "{k:<key_width$}  {v}");
    }
    for section in &doc.sections {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", section.title);
        let _ = writeln!(out, "{}", "-".repeat(section.title.chars().count()));
        for note in &section.notes {
            let _ = writeln!(out, "{note}");
        }
        if let Some(chart) = &section.chart {
            let max = chart.bars.iter().map(|b| b.1).max().unwrap_or(0).max(1);
            let label_width = chart
                .bars
                .iter()
                .map(|b| b.0.chars().count())
                .max()
                .unwrap_or(0);
            let _ = writeln!(out, "{}", chart.title);
            for (label, value) in &chart.bars {
                let len = (value.max(&0).saturating_mul(BAR_WIDTH as i64) / max) as usize;
                let shown = if chart.money {
                    Cell::Money(*value).display(&doc.currency)
                } else {
                    value.to_string()
                };
                let _ = writeln!(out, "{label:>label_width$} |{} {shown}", "#".repeat(len));
            }
        }
        if let Some(table) = &section.table {
            table_text(&mut out, table, doc);
        }
    }
    out
}

fn cut(s: String) -> String {
    if s.chars().count() <= MAX_COLUMN {
        s
    } else {
        let mut t: String = s.chars().take(MAX_COLUMN - 1).collect();
        t.push('…');
        t
    }
}

fn table_text(out: &mut String, table: &Table, doc: &Document) {
    let shown = |row: &[Cell]| -> Vec<String> {
        row.iter().map(|c| cut(c.display(&doc.currency))).collect()
    };
    let rows: Vec<Vec<String>> = table.rows.iter().map(|r| shown(r)).collect();
    let total = table.total.as_deref().map(shown);
    let mut widths: Vec<usize> = table.columns.iter().map(|c| c.chars().count()).collect();
    for row in rows.iter().chain(total.iter()) {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let numeric: Vec<bool> = (0..widths.len()).map(|i| table.numeric(i)).collect();
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, width) in widths.iter().enumerate() {
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            if i > 0 {
                text.push_str("  ");
            }
            let pad = width.saturating_sub(cell.chars().count());
            if numeric[i] {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &table.columns);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule);
    for row in &rows {
        line(out, row);
    }
    if let Some(total) = &total {
        line(out, &rule);
        line(out, total);
    }
}

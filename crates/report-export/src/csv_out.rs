//! A report as CSV (RFC 4180 through the csv crate), for the accountant's spreadsheet.
//!
//! Layout: a head of `key,value` rows (`report`, `period`, `device`, `branch`, `currency`,
//! `generated`), then per section a row `section,TITLE`, its notes as `note,TEXT`, its table's
//! header row, its rows and a totals row whose first cell is `Total`; a chart's bars come as
//! a small `label,value` table of their own. Numbers are plain: money as `1234.50` with the
//! currency's minor digits, percentages without the sign, no thousands separators.

use crate::document::{Cell, Document};
use crate::ExportError;

pub fn render(doc: &Document) -> Result<Vec<u8>, ExportError> {
    let mut w = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    w.write_record(["report", doc.title.as_str()])?;
    for (k, v) in &doc.meta {
        w.write_record([k.as_str(), v.as_str()])?;
    }
    for section in &doc.sections {
        w.write_record(["section", section.title.as_str()])?;
        for note in &section.notes {
            w.write_record(["note", note.as_str()])?;
        }
        if let Some(chart) = &section.chart {
            w.write_record(["chart", chart.title.as_str()])?;
            for (label, value) in &chart.bars {
                let v = if chart.money {
                    Cell::Money(*value).plain(&doc.currency)
                } else {
                    value.to_string()
                };
                w.write_record([label.as_str(), v.as_str()])?;
            }
        }
        if let Some(table) = &section.table {
            w.write_record(&table.columns)?;
            for row in table.rows.iter().chain(table.total.iter()) {
                w.write_record(row.iter().map(|c| c.plain(&doc.currency)))?;
            }
        }
    }
    w.flush()?;
    w.into_inner()
        .map_err(|e| ExportError::Io(std::io::Error::other(e.to_string())))
}

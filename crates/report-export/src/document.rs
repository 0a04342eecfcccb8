//! The renderer-neutral shape of a report: a title, what it covers (period, device, branch,
//! currency, when it was made), then sections of a note, a bar chart and a table. The three
//! renderers (`text`, `csv`, `pdf`) only lay these out; every number is decided before.

use pos_core::sale::Currency;

/// One value of a table. Typed, so CSV writes plain machine-readable numbers while the text
/// and the PDF format them for people.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// Minor units of the report's currency.
    Money(i64),
    Int(i64),
    /// Thousandths (quantities: 1.5 kg = 1500).
    Qty(i64),
    /// Basis points, shown as a percentage.
    Percent(i64),
    Empty,
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    /// Numbers are right-aligned.
    pub fn is_numeric(&self) -> bool {
        matches!(
            self,
            Cell::Money(_) | Cell::Int(_) | Cell::Qty(_) | Cell::Percent(_)
        )
    }

    /// For people: money with the currency's minor digits, quantities without trailing zeros.
    pub fn display(&self, currency: &Currency) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Money(m) => fixed(*m, u32::from(currency.minor_digits)),
            Cell::Int(n) => n.to_string(),
            Cell::Qty(q) => qty(*q),
            Cell::Percent(bp) => format!("{}%", fixed(*bp, 2)),
            Cell::Empty => String::new(),
        }
    }

    /// For machines (CSV): the same digits, no unit, no grouping.
    pub fn plain(&self, currency: &Currency) -> String {
        match self {
            Cell::Percent(bp) => fixed(*bp, 2),
            other => other.display(currency),
        }
    }
}

/// `value` with `digits` decimals: fixed(-5, 2) = "-0.05".
pub fn fixed(value: i64, digits: u32) -> String {
    if digits == 0 {
        return value.to_string();
    }
    let scale = 10u64.pow(digits.min(18));
    let abs = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = digits as usize
    )
}

/// A quantity in thousandths: "3", "1.25".
pub fn qty(milli: i64) -> String {
    let s = fixed(milli, 3);
    let s = s.trim_end_matches('0');
    s.trim_end_matches('.').to_owned()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// A last row of totals, set apart by every renderer.
    pub total: Option<Vec<Cell>>,
}

impl Table {
    pub fn new(columns: &[&str]) -> Table {
        Table {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
            total: None,
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Whether column `i` holds numbers (right-aligned): its first non-empty cell says.
    pub fn numeric(&self, i: usize) -> bool {
        self.rows
            .iter()
            .chain(self.total.iter())
            .filter_map(|r| r.get(i))
            .find(|c| !matches!(c, Cell::Empty))
            .is_some_and(Cell::is_numeric)
    }
}

/// Bars, one per label (an hour, a day), heights in `unit` (money in minor units).
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub bars: Vec<(String, i64)>,
    pub money: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Section {
    pub title: String,
    /// Lines shown before the chart and table (e.g. "No sales in this period.").
    pub notes: Vec<String>,
    pub chart: Option<Chart>,
    pub table: Option<Table>,
}

impl Section {
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            ..Section::default()
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Section {
        self.notes.push(note.into());
        self
    }

    pub fn table(mut self, table: Table) -> Section {
        self.table = Some(table);
        self
    }
}

/// A whole report, ready for any renderer.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The report's command-line name (`z`, `tax`, ...).
    pub name: String,
    pub title: String,
    /// What it covers, in this order: period, device, branch, currency, generated.
    pub meta: Vec<(String, String)>,
    pub currency: Currency,
    pub sections: Vec<Section>,
}

impl Document {
    /// The period line of the meta ("2026-11-25 00:00 to ...", "everything recorded").
    pub fn period(&self) -> &str {
        self.meta
            .iter()
            .find(|(k, _)| k == "period")
            .map_or("", |(_, v)| v.as_str())
    }

    /// The first section titled `title`.
    pub fn section(&self, title: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.title == title)
    }
}

impl Table {
    /// The totals row's cell under `column`.
    pub fn total_of(&self, column: &str) -> Option<&Cell> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.total.as_ref()?.get(i)
    }
}

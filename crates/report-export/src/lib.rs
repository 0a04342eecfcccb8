//! `pos-report-export`: the reports of issue 10 over the store's analytics and event log,
//! rendered as a plain-text table, CSV (csv crate) or PDF (pdf-writer, base-14 Helvetica, a
//! bar chart drawn with the PDF's own path operators).
//!
//! [`build`] reads a [`ReportKind`] for a [`Scope`] (period, time zone, currency) from a
//! [`Store`] into a [`Document`]; [`render`] turns it into bytes. Who may ask for which report
//! ([`ReportKind::permission`]) and the security event of an export are the caller's: the
//! `pos report` command authorizes through `Store::authorize` and appends
//! `security.report_exported`.

mod build;
mod csv_out;
pub mod document;
mod pdf;
mod text;

use pos_auth::Permission;

pub use build::{build, currency, Scope};
pub use document::{Cell, Chart, Document, Section, Table};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] pos_store::StoreError),
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Period(#[from] pos_store::reports::ReportError),
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Pdf,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Pdf => "pdf",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        [Format::Table, Format::Csv, Format::Pdf]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// The document in `format`.
pub fn render(doc: &Document, format: Format) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        Format::Table => text::render(doc).into_bytes(),
        Format::Csv => csv_out::render(doc)?,
        Format::Pdf => pdf::render(doc),
    })
}

/// The reports `pos report` knows, in the order `pos report list` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    X,
    Z,
    Journal,
    Tenders,
    Kpis,
    Products,
    Cashiers,
    Tax,
    Audit,
    Security,
}

impl ReportKind {
    pub const ALL: [ReportKind; 10] = [
        ReportKind::X,
        ReportKind::Z,
        ReportKind::Journal,
        ReportKind::Tenders,
        ReportKind::Kpis,
        ReportKind::Products,
        ReportKind::Cashiers,
        ReportKind::Tax,
        ReportKind::Audit,
        ReportKind::Security,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReportKind::X => "x",
            ReportKind::Z => "z",
            ReportKind::Journal => "journal",
            ReportKind::Tenders => "tenders",
            ReportKind::Kpis => "kpis",
            ReportKind::Products => "products",
            ReportKind::Cashiers => "cashiers",
            ReportKind::Tax => "tax",
            ReportKind::Audit => "audit",
            ReportKind::Security => "security",
        }
    }

    pub fn parse(name: &str) -> Option<ReportKind> {
        ReportKind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn title(self) -> &'static str {
        match self {
            ReportKind::X => "X report (open shifts)",
            ReportKind::Z => "Z reports (closed shifts)",
            ReportKind::Journal => "Sales journal",
            ReportKind::Tenders => "Tender report",
            ReportKind::Kpis => "Key figures",
            ReportKind::Products => "Product performance",
            ReportKind::Cashiers => "Cashier performance",
            ReportKind::Tax => "Tax per rate",
            ReportKind::Audit => "Audit report: sensitive actions",
            ReportKind::Security => "Security report",
        }
    }

    /// Which plug it belongs to and what it holds, for `pos report list`.
    pub fn describe(self) -> &'static str {
        match self {
            ReportKind::X => "operational: each terminal's open shift so far (no period)",
            ReportKind::Z => "operational: the shifts closed in the period, their totals, tenders and taxes",
            ReportKind::Journal => "operational: every sale, refund and post-void of the period",
            ReportKind::Tenders => "operational: payments by tender, net of change, refunds and post-voids",
            ReportKind::Kpis => "management: net sales, baskets, discounts, refunds, voids, margin, over/short; sales per hour or day (chart); terminals",
            ReportKind::Products => "management: quantities, net sales and margin per product and category",
            ReportKind::Cashiers => "management: sales, voids, refunds and discounts per cashier",
            ReportKind::Tax => "administrative: net, tax and gross per tax class and rate",
            ReportKind::Audit => "administrative: voids, refunds, discounts, price overrides, no-sales and cash moves with requester, approver and reason",
            ReportKind::Security => "administrative: failed logins, lockouts, denials, anomalies, exports",
        }
    }

    /// The permission needed to see it (an export also needs `export_data`).
    pub fn permission(self) -> Permission {
        match self {
            ReportKind::Audit | ReportKind::Security => Permission::AuditRead,
            _ => Permission::ViewReports,
        }
    }
}

/// The `security.report_exported` record of an export by `actor`, to append with
/// `Store::append` (or through the running hub's control socket).
pub fn export_event(
    actor: pos_core::UserId,
    report: ReportKind,
    format: Format,
    period: &str,
    file: &str,
) -> pos_audit::EventDraft {
    let event = pos_auth::SecurityEvent::ReportExported(pos_auth::ReportExported {
        report: report.name().to_owned(),
        format: format.as_str().to_owned(),
        period: period.to_owned(),
        file: file.to_owned(),
    })
    .payload();
    pos_audit::EventDraft::json(pos_auth::SECURITY_MODULE, event.kind, &event.body).by(actor)
}

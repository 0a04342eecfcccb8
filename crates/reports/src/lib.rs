//! The analytics core of the Management plug, without IO.
//!
//! * [`aggregate`]: what one event adds to which aggregate ([`delta`] of a [`Fact`]). Every
//!   aggregate is a sum of such deltas keyed by (hour, terminal, ...), so the order in which
//!   events arrive never changes the result and a rebuild gives the same numbers. pos-store
//!   keeps them in its `analytics_*` tables, updated in the events' own transaction.
//! * [`period`]: the [`Period`] type (a half-open span of Unix milliseconds, read at hour resolution)
//!   and local-day helpers (the UTC offset is passed in: no clock, no time zone database).
//! * [`kpi`]: the KPI formulas over summed aggregates ([`Kpis`]).
//! * [`rows`]: the row models consumers render (dashboard tiles, report tables, CSV/PDF).
//! * [`alerts`]: the alert rules ([`AlertRules`], [`evaluate`]) over those rows and the
//!   device's status.

pub mod aggregate;
pub mod alerts;
pub mod kpi;
pub mod period;
pub mod rows;

pub use aggregate::{
    delta, hour_of, Counters, Delta, Fact, ProductCounters, ProductDelta, TaxDelta, TenderDelta,
    HOUR_MS,
};
pub use alerts::{
    evaluate, Alert, AlertInputs, AlertKind, AlertRules, BackupState, DiskUsage, OfflineDevice,
    Severity,
};
pub use kpi::{rate_bp, CostedSales, Kpis};
pub use period::{local_day_start_of_hour, local_weekday_hour, Period, DAY_MS};
pub use rows::{
    cost_of, days_of_cover, CashierRow, CategoryRow, Dashboard, DayRow, Heatmap, HourRow,
    ProductRow, StockCoverRow, TaxRow, TenderRow, TerminalRow,
};

/// A request the analytics cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the period ends ({to_ms}) before it starts ({from_ms}): give --from before --to")]
    PeriodReversed { from_ms: u64, to_ms: u64 },
    #[error("the UTC offset {0} min is out of range (-1080..=1080)")]
    BadOffset(i32),
}

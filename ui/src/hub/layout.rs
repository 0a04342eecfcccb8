//! The dashboard builder's result: which widgets and KPI tiles the hub's dashboard shows and
//! which period it opens with, saved as JSON in the hub's data dir (`hub-dashboard.json`) and
//! loaded when the display starts. Data only: the display draws whatever it says.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file in the data dir that holds the saved layout.
pub const LAYOUT_FILE: &str = "hub-dashboard.json";

/// A chart or group of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Widget {
    Kpis,
    SalesPerHour,
    TenderSplit,
    TopProducts,
}

impl Widget {
    pub const ALL: [Widget; 4] = [
        Widget::Kpis,
        Widget::SalesPerHour,
        Widget::TenderSplit,
        Widget::TopProducts,
    ];

    /// Its label's key in `HubTr`.
    pub fn key(self) -> &'static str {
        match self {
            Widget::Kpis => "widget-kpis",
            Widget::SalesPerHour => "widget-hours",
            Widget::TenderSplit => "widget-tenders",
            Widget::TopProducts => "widget-top",
        }
    }
}

/// A KPI tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kpi {
    NetSales,
    Transactions,
    AverageBasket,
    ItemsPerBasket,
    Margin,
    Discounts,
    Refunds,
    Voids,
    CashOverShort,
}

impl Kpi {
    /// In the builder's order (the tiles keep the order of the layout).
    pub const ALL: [Kpi; 9] = [
        Kpi::NetSales,
        Kpi::Transactions,
        Kpi::AverageBasket,
        Kpi::ItemsPerBasket,
        Kpi::Margin,
        Kpi::Discounts,
        Kpi::Refunds,
        Kpi::Voids,
        Kpi::CashOverShort,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Kpi::NetSales => "kpi-net-sales",
            Kpi::Transactions => "kpi-transactions",
            Kpi::AverageBasket => "kpi-average-basket",
            Kpi::ItemsPerBasket => "kpi-items-per-basket",
            Kpi::Margin => "kpi-margin",
            Kpi::Discounts => "kpi-discounts",
            Kpi::Refunds => "kpi-refunds",
            Kpi::Voids => "kpi-voids",
            Kpi::CashOverShort => "kpi-cash-over-short",
        }
    }
}

/// The periods the dashboard shows: today, the last 7 and the last 30 local days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodChoice {
    #[default]
    Today,
    Week,
    Month,
}

impl PeriodChoice {
    pub const ALL: [PeriodChoice; 3] =
        [PeriodChoice::Today, PeriodChoice::Week, PeriodChoice::Month];

    pub fn key(self) -> &'static str {
        match self {
            PeriodChoice::Today => "period-today",
            PeriodChoice::Week => "period-week",
            PeriodChoice::Month => "period-month",
        }
    }

    /// How many local days, ending today.
    pub fn days(self) -> u32 {
        match self {
            PeriodChoice::Today => 1,
            PeriodChoice::Week => 7,
            PeriodChoice::Month => 30,
        }
    }
}

/// What the dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardLayout {
    pub widgets: Vec<Widget>,
    pub kpis: Vec<Kpi>,
    pub period: PeriodChoice,
}

impl Default for DashboardLayout {
    fn default() -> Self {
        DashboardLayout {
            widgets: Widget::ALL.to_vec(),
            kpis: Kpi::ALL[..8].to_vec(),
            period: PeriodChoice::Today,
        }
    }
}

/// Why a layout could not be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a dashboard layout: {source} (delete it to start from the default)")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DashboardLayout {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(LAYOUT_FILE)
    }

    /// Whether `w` is shown.
    pub fn shows(&self, w: Widget) -> bool {
        self.widgets.contains(&w)
    }

    /// Switch `w` on or off.
    pub fn toggle_widget(&mut self, w: Widget) {
        match self.widgets.iter().position(|x| *x == w) {
            Some(i) => {
                self.widgets.remove(i);
            }
            None => self.widgets.push(w),
        }
    }

    /// Switch tile `k` on (at the end) or off.
    pub fn toggle_kpi(&mut self, k: Kpi) {
        match self.kpis.iter().position(|x| *x == k) {
            Some(i) => {
                self.kpis.remove(i);
            }
            None => self.kpis.push(k),
        }
    }

    /// The saved layout of `data_dir`; `Ok(None)` when none was saved yet.
    pub fn load(data_dir: &Path) -> Result<Option<DashboardLayout>, LayoutError> {
        let path = Self::path(data_dir);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LayoutError::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| LayoutError::Parse { path, source })
    }

    /// Save into `data_dir` (a temporary file renamed over the old one: a power cut leaves
    /// the old layout or the new one, never half a file).
    pub fn save(&self, data_dir: &Path) -> Result<(), LayoutError> {
        let path = Self::path(data_dir);
        let tmp = data_dir.join(format!(".{LAYOUT_FILE}.tmp"));
        let write = |p: &Path| -> std::io::Result<()> {
            // A layout of enums serialises without fail; an error here is still reported.
            let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
            std::fs::write(p, text)?;
            std::fs::File::open(p)?.sync_all()?;
            std::fs::rename(p, &path)
        };
        write(&tmp).map_err(|source| LayoutError::Write {
            path: path.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DashboardLayout::load(dir.path()).unwrap().is_none());
        let mut l = DashboardLayout::default();
        l.toggle_widget(Widget::TenderSplit);
        l.toggle_kpi(Kpi::Voids);
        l.toggle_kpi(Kpi::CashOverShort);
        l.period = PeriodChoice::Week;
        l.save(dir.path()).unwrap();
        assert_eq!(DashboardLayout::load(dir.path()).unwrap(), Some(l));
        std::fs::write(DashboardLayout::path(dir.path()), "{\"widgets\": 3}").unwrap();
        let err = DashboardLayout::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a dashboard layout"), "{err}");
    }
}

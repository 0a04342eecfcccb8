//! One measured figure: a value, the baseline it is compared with, and the goal on their ratio.

use serde::Serialize;

/// Which direction is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Lower,
    Higher,
}

/// One machine-checkable condition of a goal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cond {
    RatioAtMost(f64),
    RatioAtLeast(f64),
    ValueAtMost(f64),
    ValueAtLeast(f64),
}

/// The outcome of one condition, with the numbers that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub what: String,
    pub pass: bool,
}

/// A figure as reported (the JSON fields are exactly those of DESIGN.md "pos-bench output").
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub id: &'static str,
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
    pub baseline_name: &'static str,
    pub baseline: f64,
    /// value / baseline (same unit).
    pub ratio: f64,
    pub better: Better,
    pub goal: &'static str,
    /// The goal as conditions; all must hold.
    #[serde(skip)]
    pub conditions: Vec<Cond>,
    /// How the figure was measured (rounds, spread, paths): for people, not for the JSON.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// `value / baseline`, or NaN (JSON `null`) when there is no usable baseline.
pub fn ratio(value: f64, baseline: f64) -> f64 {
    if baseline > 0.0 && baseline.is_finite() && value.is_finite() {
        value / baseline
    } else {
        f64::NAN
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// The static part of a figure: what it is, what it is compared with, and its goal.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub id: &'static str,
    pub name: &'static str,
    pub unit: &'static str,
    pub baseline_name: &'static str,
    pub better: Better,
    pub goal: &'static str,
    pub conditions: &'static [Cond],
}

impl Figure {
    /// A figure from its measured value and baseline; the ratio is computed here.
    pub fn new(meta: &Meta, value: f64, baseline: f64) -> Figure {
        Figure {
            id: meta.id,
            name: meta.name,
            value: round_to(value, 1),
            unit: meta.unit,
            baseline_name: meta.baseline_name,
            baseline: round_to(baseline, 1),
            ratio: round_to(ratio(value, baseline), 3),
            better: meta.better,
            goal: meta.goal,
            conditions: meta.conditions.to_vec(),
            notes: Vec::new(),
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.notes.push(note.into());
        self
    }

    /// Each goal condition, evaluated.
    pub fn checks(&self) -> Vec<Check> {
        self.conditions
            .iter()
            .map(|c| {
                let (what, pass) = match *c {
                    Cond::RatioAtMost(l) => {
                        (format!("ratio {} <= {l}", self.ratio), self.ratio <= l)
                    }
                    Cond::RatioAtLeast(l) => {
                        (format!("ratio {} >= {l}", self.ratio), self.ratio >= l)
                    }
                    Cond::ValueAtMost(l) => (
                        format!("{} <= {} {}", group(self.value), group(l), self.unit),
                        self.value <= l,
                    ),
                    Cond::ValueAtLeast(l) => (
                        format!("{} >= {} {}", group(self.value), group(l), self.unit),
                        self.value >= l,
                    ),
                };
                // NaN compares false: a figure without a usable baseline never passes silently.
                Check { what, pass }
            })
            .collect()
    }

    /// Whether every goal condition holds.
    pub fn passed(&self) -> bool {
        self.checks().iter().all(|c| c.pass)
    }
}

/// A number for people: thousands grouped above 10 000, one decimal below.
pub fn group(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    if x.abs() < 10_000.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if x < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOWER: Meta = Meta {
        id: "P1",
        name: "durable sale commit",
        unit: "us",
        baseline_name: "raw SQLite durable insert",
        better: Better::Lower,
        goal: "ratio <= 2",
        conditions: &[Cond::RatioAtMost(2.0)],
    };

    #[test]
    fn ratio_is_value_over_baseline() {
        assert_eq!(ratio(412.0, 206.0), 2.0);
        assert_eq!(ratio(1.0, 4.0), 0.25);
        assert!(ratio(1.0, 0.0).is_nan());
        assert!(ratio(f64::NAN, 1.0).is_nan());
        let f = Figure::new(&LOWER, 412.0, 260.0);
        assert_eq!(f.ratio, 1.585);
        assert!(f.passed());
        assert!(!Figure::new(&LOWER, 521.0, 260.0).passed());
    }

    #[test]
    fn every_condition_must_hold() {
        const BOTH: Meta = Meta {
            id: "P7",
            name: "audit verify throughput",
            unit: "records/s",
            baseline_name: "raw blake3 over the same bytes",
            better: Better::Higher,
            goal: "ratio >= 0.5 and >= 1M records/s",
            conditions: &[Cond::RatioAtLeast(0.5), Cond::ValueAtLeast(1e6)],
        };
        let ok = Figure::new(&BOTH, 3e6, 5e6);
        assert_eq!(ok.checks().iter().filter(|c| c.pass).count(), 2);
        let slow = Figure::new(&BOTH, 0.9e6, 1.2e6);
        let checks = slow.checks();
        assert!(checks[0].pass && !checks[1].pass, "{checks:?}");
        assert_eq!(checks[1].what, "900,000 >= 1,000,000 records/s");
        assert!(!slow.passed());
        assert!(!Figure::new(&BOTH, 3e6, 0.0).passed());
    }

    #[test]
    fn numbers_are_grouped_for_people() {
        assert_eq!(group(412.04), "412.0");
        assert_eq!(group(1_234_567.4), "1,234,567");
        assert_eq!(group(100_000.0), "100,000");
        assert_eq!(group(f64::NAN), "n/a");
    }
}

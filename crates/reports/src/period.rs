//! Periods: half-open spans of Unix milliseconds, read at the aggregates' hour resolution.

use serde::{Deserialize, Serialize};

use crate::aggregate::HOUR_MS;
use crate::ReportError;

/// One day in milliseconds.
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// `[from_ms, to_ms)` in Unix milliseconds (the events' HLC wall time).
///
/// The aggregates are hourly, so a period selects the hours that *start* inside it: a
/// boundary in the middle of an hour takes that hour whole into the period that contains its
/// start. Local days of zones with a whole-hour UTC offset are exact; for a :30 or :45 offset
/// a day's boundary hour is attributed by its start (documented limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Period {
    pub from_ms: u64,
    pub to_ms: u64,
}

fn check_offset(utc_offset_min: i32) -> Result<i64, ReportError> {
    if (-1080..=1080).contains(&utc_offset_min) {
        Ok(i64::from(utc_offset_min) * 60_000)
    } else {
        Err(ReportError::BadOffset(utc_offset_min))
    }
}

impl Period {
    /// A period; an empty one (`from == to`) is fine and reads as zeros.
    pub fn new(from_ms: u64, to_ms: u64) -> Result<Period, ReportError> {
        if to_ms < from_ms {
            return Err(ReportError::PeriodReversed { from_ms, to_ms });
        }
        Ok(Period { from_ms, to_ms })
    }

    /// Everything ever recorded.
    pub fn all() -> Period {
        Period {
            from_ms: 0,
            to_ms: u64::MAX,
        }
    }

    /// The local calendar day containing `at_ms`, for a zone `utc_offset_min` minutes east of
    /// UTC at that time (the caller reads it from the system's time zone, e.g. with jiff:
    /// `Zoned::now().offset().seconds() / 60`). On a daylight-saving change day the day is
    /// cut with the offset at `at_ms`, so one of its edges is an hour off.
    pub fn local_day(at_ms: u64, utc_offset_min: i32) -> Result<Period, ReportError> {
        Period::local_days(at_ms, 1, utc_offset_min)
    }

    /// The `days` local days ending with the one containing `at_ms` (e.g. 7 = this week so
    /// far and the six days before).
    pub fn local_days(at_ms: u64, days: u32, utc_offset_min: i32) -> Result<Period, ReportError> {
        let offset = check_offset(utc_offset_min)?;
        let local = i128::from(at_ms) + i128::from(offset);
        let day = i128::from(DAY_MS);
        let start_local = local.div_euclid(day) * day - (i128::from(days.max(1)) - 1) * day;
        let clamp = |v: i128| u64::try_from(v.max(0)).unwrap_or(u64::MAX);
        let from = clamp(start_local - i128::from(offset));
        let to = clamp(start_local + i128::from(days.max(1)) * day - i128::from(offset));
        Ok(Period {
            from_ms: from,
            to_ms: to,
        })
    }

    /// The hour buckets the period reads: `[first, end)` in [`crate::hour_of`] units.
    pub fn hours(&self) -> (i64, i64) {
        let ceil = |ms: u64| i64::try_from(ms.div_ceil(HOUR_MS)).unwrap_or(i64::MAX);
        (ceil(self.from_ms), ceil(self.to_ms))
    }

    /// Length in days (at least 1 for a non-empty period), for per-day rates.
    pub fn days(&self) -> f64 {
        let (a, b) = self.hours();
        ((b - a) as f64 / 24.0).max(if b > a { 1.0 / 24.0 } else { 0.0 })
    }

    pub fn is_empty(&self) -> bool {
        let (a, b) = self.hours();
        b <= a
    }
}

/// The local weekday (0 = Monday … 6 = Sunday) and hour of day (0..24) of hour bucket `hour`.
pub fn local_weekday_hour(hour: i64, utc_offset_min: i32) -> (usize, usize) {
    let local_min = hour.saturating_mul(60) + i64::from(utc_offset_min);
    let local_hour = local_min.div_euclid(60);
    let day = local_hour.div_euclid(24);
    // 1970-01-01 was a Thursday (3 when Monday is 0).
    let weekday = (day + 3).rem_euclid(7) as usize;
    (weekday, local_hour.rem_euclid(24) as usize)
}

/// The start (Unix ms) of the local day containing hour bucket `hour`.
pub fn local_day_start_of_hour(hour: i64, utc_offset_min: i32) -> u64 {
    let ms = u64::try_from(hour.max(0))
        .unwrap_or(0)
        .saturating_mul(HOUR_MS);
    Period::local_day(ms, utc_offset_min.clamp(-1080, 1080))
        .map(|p| p.from_ms)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25 15:56 UTC.
    const NOW: u64 = 1_795_622_160_000;

    #[test]
    fn a_local_day_starts_at_local_midnight() {
        let utc = Period::local_day(NOW, 0).unwrap();
        assert_eq!(utc.from_ms % DAY_MS, 0);
        assert_eq!(utc.to_ms - utc.from_ms, DAY_MS);
        assert!(utc.from_ms <= NOW && NOW < utc.to_ms);
        let paris = Period::local_day(NOW, 60).unwrap();
        assert_eq!(paris.from_ms, utc.from_ms - HOUR_MS);
        // 23:30 UTC is already tomorrow at UTC+1.
        let late = utc.from_ms + 23 * HOUR_MS + 1_800_000;
        assert_eq!(
            Period::local_day(late, 60).unwrap().from_ms,
            utc.to_ms - HOUR_MS
        );
        assert_eq!(
            Period::local_days(NOW, 7, 0).unwrap().from_ms,
            utc.from_ms - 6 * DAY_MS
        );
        assert!(Period::local_day(NOW, 2000).is_err());
    }

    #[test]
    fn periods_read_whole_hours_and_may_be_empty() {
        let p = Period::new(HOUR_MS + 1, 3 * HOUR_MS).unwrap();
        assert_eq!(p.hours(), (2, 3));
        assert!(Period::new(5, 5).unwrap().is_empty());
        assert!(Period::new(6, 5).is_err());
        assert!(!Period::all().is_empty());
    }

    #[test]
    fn weekday_and_hour_follow_the_offset() {
        // Hour 0 = Thursday 1970-01-01 00:00 UTC.
        assert_eq!(local_weekday_hour(0, 0), (3, 0));
        assert_eq!(local_weekday_hour(0, -60), (2, 23));
        assert_eq!(local_weekday_hour(24 * 4 + 5, 120), (0, 7));
    }
}

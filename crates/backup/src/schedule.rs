//! When the next scheduled backup is due; pure (the caller lists the backups and runs them).
//!
//! The schedule is stateless: what is due follows from the time now and the backups that
//! exist (`list`), so a restart, a crash or a box that was switched off never makes a backup
//! twice nor skips one for long:
//!
//! * **daily**: due when no daily backup was made since the last `daily_at` (local time) that
//!   has passed. A box that was off at 02:30 makes it when it starts, and a box that has no
//!   backup yet makes one at start-up.
//! * **hourly** (when on): due when no scheduled backup was made since the start of the
//!   current clock hour. A daily backup counts as its hour's snapshot (at start-up the daily
//!   is made and the hourly of that hour is not), so a day of a running hub makes one daily
//!   and 24 hourly backups, one hourly per clock hour.
//! * after a **failure** nothing is retried for [`RETRY_AFTER_MS`], so a full or missing disk
//!   raises one alert per retry, not one a minute.
//!
//! Backups made by hand (`manual`) do not count: the schedule's copies are the ones retention
//! thins out. A backup that seems to come from the future (the wall clock was set back) does
//! not count either, so a clock jump cannot stop the schedule.

use crate::format::BackupKind;
use crate::retention::Entry;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How long after a failed scheduled backup it is tried again.
pub const RETRY_AFTER_MS: u64 = 15 * 60_000;

/// Backups up to this far ahead of the clock still count (two clocks a little apart, a
/// backup file written a moment ago); further ahead, the clock was set back.
const FUTURE_SLACK_MS: i64 = 5 * MINUTE_MS;

/// What the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Local time of the daily backup, hours and minutes.
    pub daily_at: (u8, u8),
    /// Hourly snapshots besides the daily backup.
    pub hourly: bool,
}

/// The schedule's answer at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The backup to make now, if any (daily wins when both are due: it covers the hour).
    pub due: Option<BackupKind>,
    /// When to look again (Unix ms): the next slot, or the end of the retry pause. Always
    /// after `now`.
    pub next_check_ms: u64,
}

/// The start (Unix ms) of the daily slot at or before `now_ms`.
fn daily_slot(now_ms: i64, offset_ms: i64, daily_at: (u8, u8)) -> i64 {
    let at = i64::from(daily_at.0) * HOUR_MS + i64::from(daily_at.1) * MINUTE_MS;
    let local = now_ms + offset_ms;
    let day_start = local.div_euclid(DAY_MS) * DAY_MS;
    let slot_local = if local >= day_start + at {
        day_start + at
    } else {
        day_start - DAY_MS + at
    };
    slot_local - offset_ms
}

/// The start (Unix ms) of the clock hour holding `now_ms` (local hours: offsets of half an
/// hour exist).
fn hour_slot(now_ms: i64, offset_ms: i64) -> i64 {
    (now_ms + offset_ms).div_euclid(HOUR_MS) * HOUR_MS - offset_ms
}

/// What is due at `now_ms`, given the backups this device has (`made`, any order, any kind),
/// the local time's offset from UTC and the time of the last failed scheduled backup.
pub fn plan(
    schedule: &Schedule,
    made: &[Entry],
    now_ms: u64,
    utc_offset_ms: i64,
    last_failure_ms: Option<u64>,
) -> Plan {
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX / 2);
    let daily_from = daily_slot(now, utc_offset_ms, schedule.daily_at);
    let hour_from = hour_slot(now, utc_offset_ms);
    let counts = |e: &Entry, since: i64| {
        let t = i64::try_from(e.created_ms).unwrap_or(i64::MAX);
        t >= since && t <= now + FUTURE_SLACK_MS
    };
    let daily_done = made
        .iter()
        .any(|e| e.kind == BackupKind::Daily && counts(e, daily_from));
    let hour_done = made
        .iter()
        .any(|e| e.kind != BackupKind::Manual && counts(e, hour_from));
    let due = if !daily_done {
        Some(BackupKind::Daily)
    } else if schedule.hourly && !hour_done {
        Some(BackupKind::Hourly)
    } else {
        None
    };
    let next_daily = daily_from + DAY_MS;
    let next_hour = hour_from + HOUR_MS;
    let next_slot = if schedule.hourly {
        next_daily.min(next_hour)
    } else {
        next_daily
    };
    let to_ms = |t: i64| u64::try_from(t).unwrap_or(0).max(now_ms + 1);
    if let (Some(_), Some(failed)) = (due, last_failure_ms) {
        let retry = failed.saturating_add(RETRY_AFTER_MS);
        if retry > now_ms && failed <= now_ms {
            return Plan {
                due: None,
                next_check_ms: retry,
            };
        }
    }
    Plan {
        due,
        next_check_ms: if due.is_some() {
            now_ms + 1
        } else {
            to_ms(next_slot)
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// 2026-03-02 00:00 UTC.
    const MONDAY: u64 = 1_772_409_600_000;
    const H: u64 = 3_600_000;
    const M: u64 = 60_000;

    const HUB: Schedule = Schedule {
        daily_at: (2, 30),
        hourly: true,
    };

    fn entry(created_ms: u64, kind: BackupKind) -> Entry {
        Entry { created_ms, kind }
    }

    /// Tick every `step` from `from` for `span`, making whatever is due at once (as the hub
    /// does, the backup taking `takes`); returns what was made.
    fn run_ticks(
        schedule: &Schedule,
        mut made: Vec<Entry>,
        from: u64,
        span: u64,
        step: u64,
        offset: i64,
        takes: u64,
    ) -> Vec<Entry> {
        let mut now = from;
        while now < from + span {
            let p = plan(schedule, &made, now, offset, None);
            assert!(p.next_check_ms > now);
            if let Some(kind) = p.due {
                made.push(entry(now, kind));
                now += takes;
            } else {
                now += step;
            }
        }
        made
    }

    #[test]
    fn a_day_of_ticks_makes_one_daily_and_24_hourly() {
        // The box already made yesterday's daily and the last hourly before midnight.
        let before = vec![
            entry(MONDAY - 21 * H, BackupKind::Daily),
            entry(MONDAY - 30 * M, BackupKind::Hourly),
        ];
        let made = run_ticks(&HUB, before, MONDAY, 24 * H, M, 0, 2 * M);
        let today: Vec<&Entry> = made.iter().filter(|e| e.created_ms >= MONDAY).collect();
        let daily: Vec<_> = today
            .iter()
            .filter(|e| e.kind == BackupKind::Daily)
            .collect();
        assert_eq!(daily.len(), 1, "{today:?}");
        assert_eq!(daily[0].created_ms, MONDAY + 2 * H + 30 * M);
        for hour in 0..24 {
            let in_hour = today
                .iter()
                .filter(|e| e.kind == BackupKind::Hourly && e.created_ms / H == MONDAY / H + hour)
                .count();
            assert_eq!(in_hour, 1, "hour {hour}: {today:?}");
        }
        assert_eq!(today.len(), 25);
    }

    #[test]
    fn a_terminal_makes_the_daily_only() {
        let terminal = Schedule {
            hourly: false,
            ..HUB
        };
        let before = vec![entry(MONDAY - 21 * H, BackupKind::Daily)];
        let made = run_ticks(&terminal, before, MONDAY, 3 * 24 * H, M, 0, M);
        assert_eq!(made.len(), 4);
        assert!(made.iter().all(|e| e.kind == BackupKind::Daily));
    }

    #[test]
    fn a_box_with_no_backup_makes_one_at_start_up() {
        let p = plan(&HUB, &[], MONDAY + 10 * H, 0, None);
        assert_eq!(p.due, Some(BackupKind::Daily));
        // Manual backups do not count.
        let manual = [entry(MONDAY + 9 * H, BackupKind::Manual)];
        assert_eq!(
            plan(&HUB, &manual, MONDAY + 10 * H, 0, None).due,
            Some(BackupKind::Daily)
        );
    }

    #[test]
    fn a_box_that_was_off_at_the_daily_time_makes_it_at_start_up() {
        // Yesterday's daily exists; the box was off from 01:00 to 09:00 today.
        let made = [
            entry(MONDAY - 22 * H + 30 * M, BackupKind::Daily),
            entry(MONDAY + H, BackupKind::Hourly),
        ];
        let p = plan(&HUB, &made, MONDAY + 9 * H, 0, None);
        assert_eq!(p.due, Some(BackupKind::Daily));
        // Started before today's daily time: yesterday's slot is covered, the hour is due.
        let p = plan(&HUB, &made, MONDAY + 2 * H, 0, None);
        assert_eq!(p.due, Some(BackupKind::Hourly));
    }

    #[test]
    fn a_restart_does_not_make_a_backup_twice() {
        let made = run_ticks(&HUB, Vec::new(), MONDAY + 5 * H, 10 * M, M, 0, M);
        assert_eq!(made.len(), 1, "{made:?}");
        // The process restarts: the plan comes from the files alone.
        for t in [MONDAY + 5 * H + 11 * M, MONDAY + 5 * H + 59 * M] {
            let p = plan(&HUB, &made, t, 0, None);
            assert_eq!(p.due, None);
            assert_eq!(p.next_check_ms, MONDAY + 6 * H);
        }
    }

    #[test]
    fn the_daily_time_is_local() {
        // UTC+2: 02:30 local is 00:30 UTC.
        let offset = 2 * H as i64;
        let made = [entry(MONDAY - 20 * H, BackupKind::Daily)];
        let p = plan(&HUB, &made, MONDAY + 29 * M, offset, None);
        assert_eq!(p.due, Some(BackupKind::Hourly));
        let p = plan(&HUB, &made, MONDAY + 30 * M, offset, None);
        assert_eq!(p.due, Some(BackupKind::Daily));
    }

    #[test]
    fn a_failure_pauses_the_retries() {
        let now = MONDAY + 10 * H;
        let p = plan(&HUB, &[], now, 0, Some(now - M));
        assert_eq!(p.due, None);
        assert_eq!(p.next_check_ms, now - M + RETRY_AFTER_MS);
        let later = now - M + RETRY_AFTER_MS;
        assert_eq!(
            plan(&HUB, &[], later, 0, Some(now - M)).due,
            Some(BackupKind::Daily)
        );
    }

    #[test]
    fn a_clock_set_back_does_not_stop_the_schedule() {
        // A backup stamped two days ahead (the clock was wrong then).
        let made = [entry(MONDAY + 48 * H, BackupKind::Daily)];
        assert_eq!(
            plan(&HUB, &made, MONDAY + 10 * H, 0, None).due,
            Some(BackupKind::Daily)
        );
    }

    proptest! {
        /// Whatever the tick rate, backup duration, offset and start: at most one daily per
        /// daily slot and at most one hourly per clock hour, none missed for long,
        /// and a restart (re-planning from the list alone) never finds one due that was just
        /// made.
        #[test]
        fn ticks_never_double_and_never_skip(
            start in 0u64..(400 * 24),
            step_min in 1u64..30,
            takes_min in 0u64..20,
            offset_q in -48i64..56,
            at_h in 0u8..24, at_m in 0u8..60,
            hourly in any::<bool>(),
        ) {
            let schedule = Schedule { daily_at: (at_h, at_m), hourly };
            let offset = offset_q * 15 * M as i64;
            let from = MONDAY + start * H;
            let span = 3 * 24 * H;
            let made = run_ticks(&schedule, Vec::new(), from, span, step_min * M, offset, takes_min * M);
            let local_day = |t: u64, at: i64| (t as i64 + offset - at).div_euclid(DAY_MS);
            let at = i64::from(at_h) * HOUR_MS + i64::from(at_m) * MINUTE_MS;
            let mut days: Vec<i64> = made.iter().filter(|e| e.kind == BackupKind::Daily)
                .map(|e| local_day(e.created_ms, at)).collect();
            let n = days.len();
            days.dedup();
            prop_assert_eq!(days.len(), n, "two dailies in one slot: {:?}", made);
            // One daily at start-up, then one per day: 3 or 4 in three days.
            prop_assert!((3..=4).contains(&n), "{:?}", made);
            let mut hours: Vec<i64> = made.iter().filter(|e| e.kind == BackupKind::Hourly).map(|e| (e.created_ms as i64 + offset).div_euclid(HOUR_MS)).collect();
            let n = hours.len();
            hours.dedup();
            prop_assert_eq!(hours.len(), n, "two hourly backups in one hour: {:?}", made);
            if hourly {
                // Nearly every hour has one (a start-up daily covers its hour).
                prop_assert!(n >= 72 - 5, "{} hourly in 72 h", n);
            } else {
                prop_assert_eq!(n, 0);
            }
            if let Some(last) = made.last() {
                let p = plan(&schedule, &made, last.created_ms + 1, offset, None);
                prop_assert_eq!(p.due, None);
            }
        }
    }
}

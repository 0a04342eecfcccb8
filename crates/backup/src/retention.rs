//! Which backups to keep: the newest of each of the last N hours, days and months that have
//! one (grandfather-father-son). Pure: the caller lists and deletes.

use crate::format::BackupKind;

/// How many of each to keep (e.g. 24 hourly, 14 daily, 12 monthly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub hourly: u32,
    pub daily: u32,
    pub monthly: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            hourly: 24,
            daily: 14,
            monthly: 12,
        }
    }
}

/// One backup as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub created_ms: u64,
    pub kind: BackupKind,
}

/// Why a backup is kept (None: it may go).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Newest,
    Manual,
    Hour,
    Day,
    Month,
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// For each entry (any order), why it is kept, or None. `utc_offset_ms` puts day and month
/// boundaries at local midnight. Manual backups (made by hand or before a restore) are always
/// kept; so is the newest backup, whatever the policy says.
pub fn decide(entries: &[Entry], policy: &Policy, utc_offset_ms: i64) -> Vec<Option<Reason>> {
    let mut out = vec![None; entries.len()];
    let mut order: Vec<usize> = (0..entries.len()).collect();
    // Newest first; ties broken by position so the result does not depend on sort stability.
    order.sort_by(|&a, &b| {
        entries[b]
            .created_ms
            .cmp(&entries[a].created_ms)
            .then(a.cmp(&b))
    });
    if let Some(&newest) = order.first() {
        out[newest] = Some(Reason::Newest);
    }
    for &i in &order {
        if entries[i].kind == BackupKind::Manual && out[i].is_none() {
            out[i] = Some(Reason::Manual);
        }
    }
    let local = |i: usize| (entries[i].created_ms as i64).saturating_add(utc_offset_ms);
    type BucketOf<'a> = &'a dyn Fn(i64) -> i64;
    let buckets: [(u32, Reason, BucketOf<'_>); 3] = [
        (policy.hourly, Reason::Hour, &|t| t.div_euclid(HOUR_MS)),
        (policy.daily, Reason::Day, &|t| t.div_euclid(DAY_MS)),
        (policy.monthly, Reason::Month, &month_of),
    ];
    for (count, reason, bucket_of) in buckets {
        let mut seen = Vec::new();
        for &i in &order {
            if entries[i].kind == BackupKind::Manual {
                continue;
            }
            let b = bucket_of(local(i));
            if seen.contains(&b) {
                continue;
            }
            if seen.len() as u32 == count {
                break;
            }
            seen.push(b);
            if out[i].is_none() {
                out[i] = Some(reason);
            }
        }
    }
    out
}

/// Months since 1970-01 of a local time in ms (proleptic Gregorian, days → civil date).
fn month_of(ms: i64) -> i64 {
    let days = ms.div_euclid(DAY_MS);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    year * 12 + (month - 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn hourly(ms: u64) -> Entry {
        Entry {
            created_ms: ms,
            kind: BackupKind::Hourly,
        }
    }

    #[test]
    fn months_follow_the_calendar() {
        // 2026-01-31 23:59 and 2026-02-01 00:00 UTC.
        let jan = 1_769_903_940_000i64;
        assert_eq!(month_of(jan) + 1, month_of(jan + 60_000));
        assert_eq!(month_of(0), 1970 * 12);
    }

    #[test]
    fn a_month_of_hourly_backups_keeps_24_hours_14_days_and_the_months() {
        let start = 1_767_225_600_000u64; // 2026-01-01 00:00 UTC
        let entries: Vec<Entry> = (0..24 * 62)
            .map(|h| hourly(start + h * 3_600_000))
            .collect();
        let decided = decide(&entries, &Policy::default(), 0);
        let kept = decided.iter().filter(|r| r.is_some()).count();
        // 24 hours (the newest among them), 13 more days, 2 months (Jan's newest; Feb's and
        // March's are already kept as days).
        assert_eq!(kept, 24 + 13 + 1, "{decided:?}");
        assert_eq!(decided[entries.len() - 1], Some(Reason::Newest));
    }

    proptest! {
        #[test]
        fn the_policy_keeps_what_it_promises(
            times in proptest::collection::vec(0u64..(400 * 86_400_000), 1..120),
            manual in proptest::collection::vec(any::<bool>(), 120),
            h in 0u32..30, d in 0u32..20, m in 0u32..14,
            offset_h in -12i64..14,
        ) {
            let entries: Vec<Entry> = times.iter().zip(&manual).map(|(t, man)| Entry {
                created_ms: *t,
                kind: if *man { BackupKind::Manual } else { BackupKind::Daily },
            }).collect();
            let policy = Policy { hourly: h, daily: d, monthly: m };
            let offset = offset_h * HOUR_MS;
            let decided = decide(&entries, &policy, offset);
            // The newest and every manual backup stay.
            let newest = entries.iter().map(|e| e.created_ms).max().unwrap();
            prop_assert!(entries.iter().zip(&decided).any(|(e, r)| e.created_ms == newest && r.is_some()));
            for (e, r) in entries.iter().zip(&decided) {
                if e.kind == BackupKind::Manual { prop_assert!(r.is_some()); }
            }
            // Never more than the policy allows (plus the newest and the manual ones).
            let scheduled_kept = entries.iter().zip(&decided)
                .filter(|(e, r)| e.kind != BackupKind::Manual && r.is_some()).count();
            prop_assert!(scheduled_kept as u32 <= h + d + m + 1);
            // Each of the last `d` days that has a scheduled backup keeps one.
            let mut days: Vec<i64> = entries.iter().filter(|e| e.kind != BackupKind::Manual)
                .map(|e| (e.created_ms as i64 + offset).div_euclid(DAY_MS)).collect();
            days.sort_unstable_by(|a, b| b.cmp(a));
            days.dedup();
            for day in days.iter().take(d as usize) {
                prop_assert!(entries.iter().zip(&decided).any(|(e, r)| e.kind != BackupKind::Manual
                    && (e.created_ms as i64 + offset).div_euclid(DAY_MS) == *day && r.is_some()));
            }
            // Pruning what it let go and deciding again keeps everything left.
            let left: Vec<Entry> = entries.iter().zip(&decided).filter(|(_, r)| r.is_some()).map(|(e, _)| *e).collect();
            prop_assert!(decide(&left, &policy, offset).iter().all(|r| r.is_some()));
        }
    }
}

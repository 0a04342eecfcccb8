//! Times as people read and type them.

use jiff::{tz::TimeZone, Timestamp};
use pos_core::Hlc;

/// Local time of an event, e.g. `2026-11-25 10:42:07 +01:00`.
pub fn local(hlc: Hlc) -> String {
    let ms = i64::try_from(hlc.wall_ms()).unwrap_or(i64::MAX);
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts
            .to_zoned_datetime(TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %:z")
            .to_string(),
        Err(_) => format!("@{}ms", hlc.wall_ms()),
    }
}

/// RFC 3339 UTC time for machine-readable output.
pub fn utc(hlc: Hlc) -> String {
    let ms = i64::try_from(hlc.wall_ms()).unwrap_or(i64::MAX);
    Timestamp::from_millisecond(ms)
        .map(|ts| ts.to_string())
        .unwrap_or_default()
}

/// Parse `--since`: a relative age (`90s`, `15m`, `2h`, `7d`), a date (`2026-11-25`, local
/// midnight) or a timestamp (`2026-11-25T08:00:00Z`, `2026-11-25 08:00`).
pub fn parse_since(text: &str, now: Timestamp) -> Result<Hlc, String> {
    let text = text.trim();
    let hint =
        "use an age like 2h or 7d, a date like 2026-11-25, or a time like 2026-11-25T08:00:00Z";
    let ts = if let Some(age) = parse_age(text) {
        now.checked_sub(jiff::SignedDuration::from_secs(age))
            .map_err(|e| format!("`{text}` is too far back: {e}"))?
    } else if let Ok(ts) = text.parse::<Timestamp>() {
        ts
    } else if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        dt.to_zoned_datetime(TimeZone::system())
            .map_err(|e| format!("`{text}`: {e}"))?
            .timestamp()
    } else if let Ok(date) = text.parse::<jiff::civil::Date>() {
        date.to_zoned_datetime(TimeZone::system())
            .map_err(|e| format!("`{text}`: {e}"))?
            .timestamp()
    } else {
        return Err(format!("cannot read `{text}` as a time: {hint}"));
    };
    let ms = u64::try_from(ts.as_millisecond()).map_err(|_| format!("`{text}` is before 1970"))?;
    Ok(Hlc::from_parts(ms, 0))
}

fn parse_age(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(secs).filter(|s| *s >= 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_count_back_from_now() {
        let now: Timestamp = "2026-11-25T12:00:00Z".parse().unwrap();
        let two_hours = parse_since("2h", now).unwrap();
        assert_eq!(two_hours.wall_ms(), now.as_millisecond() as u64 - 7_200_000);
        assert_eq!(
            parse_since("7d", now).unwrap().wall_ms(),
            now.as_millisecond() as u64 - 7 * 86_400_000
        );
    }

    #[test]
    fn timestamps_parse() {
        let now = Timestamp::UNIX_EPOCH;
        let t = parse_since("2026-11-25T08:00:00Z", now).unwrap();
        assert_eq!(utc(t), "2026-11-25T08:00:00Z");
    }

    #[test]
    fn nonsense_explains_the_accepted_forms() {
        let err = parse_since("yesterday-ish", Timestamp::UNIX_EPOCH).unwrap_err();
        assert!(err.contains("2h or 7d"), "{err}");
        assert!(parse_since("-5h", Timestamp::UNIX_EPOCH).is_err());
    }
}

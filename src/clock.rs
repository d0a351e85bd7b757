//! The times rectify writes and reads: now as RFC 3339 in UTC with milliseconds (every stored
//! time), today as `YYYY-MM-DD` (what exemptions' last days are compared with), and the one parser
//! of the times, days and durations operators type (RFC 3339, or relative: `30m`, `24h`, `7d`).

use chrono::{DateTime, SecondsFormat, Utc};

/// Now, as RFC 3339 with milliseconds.
pub fn now_text() -> String {
    text(Utc::now())
}

/// A time as every stored time is written: RFC 3339 with milliseconds, in UTC.
pub fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Today in UTC, as `YYYY-MM-DD`.
pub fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

/// A length of time as an operator writes it: seconds (`900`), or numbers each with a unit,
/// `s`, `m`, `h`, `d` or `w` (`30m`, `24h`, `7d`, `1h30m`). The one parser of every duration
/// flag.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty: give seconds (900) or a number with a unit (30m, 24h, 7d)".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(n));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "{text:?}: {c:?} is not a unit; use s, m, h, d or w (30m, 24h, 7d)"
                ));
            }
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before each unit (30m, 24h, 7d)"))?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{text:?}: too long"))?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "{text:?}: the last number has no unit; use s, m, h, d or w (30m, 24h, 7d)"
        ));
    }
    Ok(std::time::Duration::from_secs(total))
}

/// [`parse_duration`] as whole seconds, for clap.
pub fn seconds_arg(text: &str) -> Result<u64, String> {
    parse_duration(text).map(|d| d.as_secs())
}

/// A duration flag's value in whole seconds, from `lo` to `hi` seconds: seconds (`120`) or
/// numbers with units (`2m`, `1h`). The error names the range in the flag's own terms.
pub fn seconds_within(text: &str, lo: u64, hi: u64) -> Result<u64, String> {
    let secs = parse_duration(text)?.as_secs();
    if (lo..=hi).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{text:?} is {secs} s; give {lo} to {hi} seconds"))
    }
}

/// A count of days as an operator writes it: days (`90`), or a duration in whole days (`90d`,
/// `12w`), from 1 to `max`.
pub fn days_within(text: &str, max: u32) -> Result<u32, String> {
    let s = text.trim();
    let days = match s.parse::<u64>() {
        Ok(n) => n,
        Err(_) => {
            let secs = parse_duration(s)
                .map_err(|e| format!("{e}; or give a number of days (90)"))?
                .as_secs();
            if secs % 86_400 != 0 {
                return Err(format!(
                    "{text:?} is not a whole number of days (90, 90d, 12w)"
                ));
            }
            secs / 86_400
        }
    };
    match u32::try_from(days) {
        Ok(d) if (1..=max).contains(&d) => Ok(d),
        _ => Err(format!("{text:?} is {days} days; give 1 to {max} days")),
    }
}

/// A point in time as an operator writes it: RFC 3339 with a zone (`2026-12-01T10:00:00+02:00`),
/// or a duration before `now` (`30m`, `24h`, `7d`). Compared as a time, whatever the zone.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{text:?}: give an RFC 3339 time (2026-12-01T10:00:00Z) or a duration with a unit (30m, 24h, 7d)"
        ));
    }
    let back = parse_duration(s)
        .map_err(|e| format!("{e}; or give an RFC 3339 time with a zone (2026-12-01T10:00:00Z)"))?;
    let back = chrono::Duration::from_std(back).map_err(|_| format!("{text:?}: too long"))?;
    now.checked_sub_signed(back)
        .ok_or_else(|| format!("{text:?}: too long"))
}

/// [`parse_since`] against the clock, as RFC 3339 in UTC, for clap.
pub fn since_arg(text: &str) -> Result<DateTime<Utc>, String> {
    parse_since(text, Utc::now())
}

/// A last day as an operator writes it: `YYYY-MM-DD`, an RFC 3339 time (its day in UTC), or a
/// duration from `now` (`30d`, `2w`: the day it ends on). Returns `YYYY-MM-DD`.
pub fn parse_day(text: &str, now: DateTime<Utc>) -> Result<String, String> {
    let s = text.trim();
    if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10 {
        return Ok(s.to_string());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc).format("%Y-%m-%d").to_string());
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{text:?}: give a day YYYY-MM-DD, an RFC 3339 time or a duration with a unit (30d, 2w)"
        ));
    }
    let ahead = parse_duration(s)
        .map_err(|e| format!("{e}; or give a day YYYY-MM-DD or an RFC 3339 time"))?;
    let ahead = chrono::Duration::from_std(ahead).map_err(|_| format!("{text:?}: too long"))?;
    now.checked_add_signed(ahead)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .ok_or_else(|| format!("{text:?}: too long"))
}

/// [`parse_day`] against the clock, for clap.
pub fn day_arg(text: &str) -> Result<String, String> {
    parse_day(text, Utc::now())
}

/// How long ago `then` (RFC 3339) was, in the largest whole unit: `45s`, `5m`, `3h`, `2d`;
/// `-` when it does not parse. A time ahead of `now` (clock skew) reads `0s`.
pub fn age(then: &str, now: DateTime<Utc>) -> String {
    let Ok(t) = DateTime::parse_from_rfc3339(then) else {
        return "-".into();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A stored time (RFC 3339) as a time, for comparing; `None` when it does not parse.
pub fn parse_stored(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn durations_take_seconds_or_units() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("900"), Ok(900));
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("30m"), Ok(1800));
        assert_eq!(secs("24h"), Ok(86_400));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs("2w"), Ok(1_209_600));
        assert_eq!(secs("1h30m"), Ok(5400));
        for bad in ["", "h", "5x", "10m5", "-5m", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
        assert!(
            parse_duration("5x")
                .unwrap_err()
                .contains("use s, m, h, d or w")
        );
    }

    #[test]
    fn bounded_durations_and_days() {
        assert_eq!(seconds_within("120", 1, 43_200), Ok(120));
        assert_eq!(seconds_within("2m", 1, 43_200), Ok(120));
        assert_eq!(seconds_within("12h", 1, 43_200), Ok(43_200));
        let err = seconds_within("13h", 1, 43_200).unwrap_err();
        assert!(
            err.contains("46800 s") && err.contains("1 to 43200 seconds"),
            "{err}"
        );
        assert!(seconds_within("0", 1, 20).is_err());
        assert_eq!(seconds_within("0", 0, 20), Ok(0));
        assert_eq!(days_within("90", 365), Ok(90));
        assert_eq!(days_within("90d", 365), Ok(90));
        assert_eq!(days_within("2w", 365), Ok(14));
        assert!(
            days_within("36h", 365)
                .unwrap_err()
                .contains("whole number of days")
        );
        assert!(days_within("0", 365).unwrap_err().contains("1 to 365 days"));
        assert!(days_within("366d", 365).is_err());
        assert!(days_within("soon", 365).is_err());
    }

    #[test]
    fn since_compares_as_a_time_whatever_the_zone() {
        let now = at("2026-12-01T12:00:00Z");
        // 10:00 at +02:00 is 08:00 UTC: a string comparison would put it two hours later.
        assert_eq!(
            parse_since("2026-12-01T10:00:00+02:00", now),
            Ok(at("2026-12-01T08:00:00Z"))
        );
        assert_eq!(parse_since("24h", now), Ok(at("2026-11-30T12:00:00Z")));
        assert_eq!(parse_since("30m", now), Ok(at("2026-12-01T11:30:00Z")));
        assert!(parse_since("2026-12-01T10:00:00", now).is_err(), "no zone");
        assert!(parse_since("3600", now).is_err(), "no unit");
        assert!(parse_since("yesterday", now).is_err());
    }

    #[test]
    fn days_take_a_date_a_time_or_a_duration_ahead() {
        let now = at("2026-12-01T23:30:00Z");
        assert_eq!(parse_day("2027-01-31", now), Ok("2027-01-31".into()));
        assert_eq!(
            parse_day("2027-01-01T01:00:00+02:00", now),
            Ok("2026-12-31".into())
        );
        assert_eq!(parse_day("30d", now), Ok("2026-12-31".into()));
        assert_eq!(parse_day("1h", now), Ok("2026-12-02".into()));
        assert!(parse_day("2027-13-01", now).is_err());
        assert!(parse_day("30", now).is_err());
    }

    #[test]
    fn ages_are_in_the_largest_whole_unit() {
        let now = at("2026-12-01T12:00:00Z");
        assert_eq!(age("2026-12-01T11:59:15Z", now), "45s");
        assert_eq!(age("2026-12-01T11:55:00Z", now), "5m");
        assert_eq!(age("2026-12-01T11:00:00+02:00", now), "3h");
        assert_eq!(age("2026-11-29T11:00:00Z", now), "2d");
        assert_eq!(age("2026-12-01T12:05:00Z", now), "0s");
        assert_eq!(age("not a time", now), "-");
    }
}

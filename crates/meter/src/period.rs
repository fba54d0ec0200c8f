//! Budget periods: calendar days, ISO weeks (Monday) and months in a time zone, or the whole
//! lifetime. Daylight-saving days are as long as they are (23 or 25 hours).

use jiff::{Span, Timestamp, tz::TimeZone};

/// A budget period kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// A calendar day.
    Day,
    /// A week starting on Monday.
    Week,
    /// A calendar month.
    Month,
    /// Forever.
    Lifetime,
}

impl Period {
    /// Parses `day`, `week`, `month`, `lifetime`.
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            "lifetime" => Some(Period::Lifetime),
            _ => None,
        }
    }
}

/// Checks a time-zone name (`UTC`, `Europe/Paris`).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!(
            "unknown time zone {:?} (use an IANA name like Europe/Paris, or UTC)",
            tollgate_types::text::clip(name, tollgate_types::text::ECHO_CHARS)
        )
    })
}

/// The period containing `now_ms`, as `[start, end)` in Unix ms (`end` = `i64::MAX` for lifetime).
pub fn bounds(period: Period, tz_name: &str, now_ms: i64) -> Result<(i64, i64), String> {
    if period == Period::Lifetime {
        return Ok((0, i64::MAX));
    }
    let tz = time_zone(tz_name)?;
    let now = Timestamp::from_millisecond(now_ms)
        .map_err(|e| e.to_string())?
        .to_zoned_datetime(tz);
    let day = now.start_of_day().map_err(|e| e.to_string())?;
    let (start, step) = match period {
        Period::Day => (day, Span::new().days(1)),
        Period::Week => {
            let back = i64::from(now.weekday().to_monday_zero_offset());
            let monday = day
                .checked_sub(Span::new().days(back))
                .map_err(|e| e.to_string())?;
            (
                monday.start_of_day().map_err(|e| e.to_string())?,
                Span::new().weeks(1),
            )
        }
        Period::Month => (
            now.first_of_month()
                .map_err(|e| e.to_string())?
                .start_of_day()
                .map_err(|e| e.to_string())?,
            Span::new().months(1),
        ),
        Period::Lifetime => return Ok((0, i64::MAX)),
    };
    let end = start.checked_add(step).map_err(|e| e.to_string())?;
    Ok((
        start.timestamp().as_millisecond(),
        end.timestamp().as_millisecond(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn calendar_periods_in_a_time_zone() {
        // 2026-11-29 is a Sunday. 23:30 UTC is already Monday 00:30 in Paris (UTC+1).
        let now = ms("2026-11-29T23:30:00Z");
        assert_eq!(
            bounds(Period::Day, "UTC", now).unwrap(),
            (ms("2026-11-29T00:00:00Z"), ms("2026-11-30T00:00:00Z"))
        );
        assert_eq!(
            bounds(Period::Day, "Europe/Paris", now).unwrap(),
            (ms("2026-11-29T23:00:00Z"), ms("2026-11-30T23:00:00Z"))
        );
        assert_eq!(
            bounds(Period::Week, "UTC", now).unwrap(),
            (ms("2026-11-23T00:00:00Z"), ms("2026-11-30T00:00:00Z"))
        );
        assert_eq!(
            bounds(Period::Week, "Europe/Paris", now).unwrap(),
            (ms("2026-11-29T23:00:00Z"), ms("2026-12-06T23:00:00Z"))
        );
        assert_eq!(
            bounds(Period::Month, "UTC", now).unwrap(),
            (ms("2026-11-01T00:00:00Z"), ms("2026-12-01T00:00:00Z"))
        );
        // Monday 00:30 in Paris is still 30 November there.
        assert_eq!(
            bounds(Period::Month, "Europe/Paris", now).unwrap(),
            (ms("2026-10-31T23:00:00Z"), ms("2026-11-30T23:00:00Z"))
        );
        assert_eq!(bounds(Period::Lifetime, "UTC", now).unwrap(), (0, i64::MAX));
        // A daylight-saving day in New York is 23 hours long.
        let (a, b) = bounds(Period::Day, "America/New_York", ms("2026-03-08T12:00:00Z")).unwrap();
        assert_eq!(b - a, 23 * 3_600_000);
        assert!(bounds(Period::Day, "Mars/Olympus_Mons", now).is_err());
    }
}

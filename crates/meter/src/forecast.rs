//! The month-end spend forecast: one method for the forecast report and for the KPI that checks
//! it (forecast accuracy), so the accuracy measured is the accuracy of what the report shows.
//!
//! As of a moment: spend so far this month (UTC) plus the rate of the trailing window — the
//! last 7 days, or the month so far if it began less than 7 days ago — times the time left.
//! Spend is read from the ledger's hourly rollups, up to and including the current hour (which
//! holds what was spent in it so far); the rate is per minute, over the window up to the end of
//! the current minute, so a forecast made ten minutes into a month reads ten minutes of spend
//! as ten minutes, not as an hour.

use crate::period::{Period, bounds};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// The hours (since 1970, UTC) a month-end forecast reads, as of one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthEnd {
    /// The month's first hour.
    pub month_start_h: i64,
    /// The hour after the last one read (the hour the forecast is made in, included).
    pub until_h: i64,
    /// The trailing window's first hour.
    pub window_start_h: i64,
    /// The hour the month ends at (the next month's first).
    pub month_end_h: i64,
    /// The end of the minute the forecast is made in, Unix ms: where the window ends and the
    /// time left begins.
    pub minute_end_ms: i64,
}

impl MonthEnd {
    /// The forecast made at `at_ms`: it reads the month up to and including the hour `at_ms`
    /// is in.
    pub fn as_of(at_ms: i64) -> Result<MonthEnd, String> {
        let (start, end) = bounds(Period::Month, "UTC", at_ms)?;
        let until_h = at_ms.div_euclid(HOUR_MS) + 1;
        let month_start_h = start.div_euclid(HOUR_MS);
        Ok(MonthEnd {
            month_start_h,
            until_h,
            window_start_h: (until_h - 7 * 24).max(month_start_h),
            month_end_h: end.div_euclid(HOUR_MS),
            minute_end_ms: (at_ms.div_euclid(MINUTE_MS) + 1) * MINUTE_MS,
        })
    }

    /// Minutes in the trailing window, up to the end of the current minute (at least 1).
    pub fn window_minutes(&self) -> i64 {
        ((self.minute_end_ms - self.window_start_h * HOUR_MS) / MINUTE_MS).max(1)
    }

    /// Minutes of the month after the current one.
    pub fn minutes_left(&self) -> i64 {
        ((self.month_end_h * HOUR_MS - self.minute_end_ms) / MINUTE_MS).max(0)
    }

    /// The month-end spend: `spent` (the month so far) plus `window_spent` (the trailing
    /// window's) per minute times the minutes left, in nano-USD, rounded down.
    pub fn project(&self, spent: u64, window_spent: u64) -> u64 {
        let extra =
            u128::from(window_spent) * self.minutes_left() as u128 / self.window_minutes() as u128;
        spent.saturating_add(u64::try_from(extra).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn early_in_a_month_the_window_is_the_month_so_far() {
        // 2026-02-03 10:30:20: the hours up to 11:00 read; the window is Feb 1 00:00 to the end
        // of this minute, 10:31 (3,511 minutes), and 40,320 − 3,511 minutes are left.
        let f = MonthEnd::as_of(at("2026-02-03T10:30:20Z")).unwrap();
        assert_eq!(f.month_start_h, at("2026-02-01T00:00:00Z") / HOUR_MS);
        assert_eq!(f.until_h, at("2026-02-03T11:00:00Z") / HOUR_MS);
        assert_eq!(f.window_start_h, f.month_start_h);
        assert_eq!(f.window_minutes(), 58 * 60 + 31);
        assert_eq!(f.minutes_left(), 28 * 24 * 60 - 3_511);
        // $35.11 over 3,511 minutes: a cent a minute for the rest of the month.
        assert_eq!(f.project(35_110_000_000, 35_110_000_000), 403_200_000_000);
    }

    #[test]
    fn minutes_into_a_month_the_rate_is_per_minute_not_per_hour() {
        // 00:09:59.999 on December 1: $1 spent in ten minutes is $0.10 a minute for the
        // 44,630 minutes left — $4,464 by the month's end, not the $744 an hourly rate of $1
        // would give.
        let f = MonthEnd::as_of(at("2026-12-01T00:10:00Z") - 1).unwrap();
        assert_eq!((f.window_minutes(), f.minutes_left()), (10, 44_630));
        assert_eq!(f.project(1_000_000_000, 1_000_000_000), 4_464_000_000_000);
    }

    #[test]
    fn later_the_window_is_the_last_seven_days() {
        // As of the last hour of the 14th (what the forecast accuracy KPI reconstructs).
        let f = MonthEnd::as_of(at("2026-11-15T00:00:00Z") - 1).unwrap();
        assert_eq!(f.until_h, at("2026-11-15T00:00:00Z") / HOUR_MS);
        assert_eq!(f.window_start_h, at("2026-11-08T00:00:00Z") / HOUR_MS);
        assert_eq!(f.window_minutes(), 168 * 60);
        assert_eq!(f.minutes_left(), 16 * 24 * 60);
        // $100 so far, $42 in the last week: $0.25 an hour for 384 hours.
        assert_eq!(f.project(100_000_000_000, 42_000_000_000), 196_000_000_000);
        // Rounded down, never through floats.
        assert_eq!(f.project(0, 1), 2);
    }

    #[test]
    fn the_last_hour_of_a_month_has_none_left() {
        let f = MonthEnd::as_of(at("2026-12-01T00:00:00Z") - 1).unwrap();
        assert_eq!(f.minutes_left(), 0);
        assert_eq!(f.project(7, 1_000), 7);
    }
}

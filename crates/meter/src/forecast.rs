//! The month-end spend forecast: one method for the forecast report and for the KPI that checks
//! it (forecast accuracy), so the accuracy measured is the accuracy of what the report shows.
//!
//! As of an hour: spend so far this month (UTC) plus the hourly rate of the trailing window —
//! the last 7 days, or the month so far if it began less than 7 days ago — times the hours
//! left. Everything is in whole hours, as the ledger's hourly rollups keep spend.

use crate::period::{Period, bounds};

const HOUR_MS: i64 = 3_600_000;

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
        })
    }

    /// Hours in the trailing window (at least 1).
    pub fn window_hours(&self) -> i64 {
        (self.until_h - self.window_start_h).max(1)
    }

    /// Hours of the month after the ones read.
    pub fn hours_left(&self) -> i64 {
        (self.month_end_h - self.until_h).max(0)
    }

    /// The month-end spend: `spent` (the month so far) plus `window_spent` (the trailing
    /// window's) per hour times the hours left, in nano-USD, rounded down.
    pub fn project(&self, spent: u64, window_spent: u64) -> u64 {
        let extra =
            u128::from(window_spent) * self.hours_left() as u128 / self.window_hours() as u128;
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
        // 2026-02-03 10:30: 59 hours read (Feb 1 00:00 – Feb 3 11:00), 613 hours left.
        let f = MonthEnd::as_of(at("2026-02-03T10:30:00Z")).unwrap();
        assert_eq!(f.month_start_h, at("2026-02-01T00:00:00Z") / HOUR_MS);
        assert_eq!(f.until_h, at("2026-02-03T11:00:00Z") / HOUR_MS);
        assert_eq!(f.window_start_h, f.month_start_h);
        assert_eq!(f.window_hours(), 59);
        assert_eq!(f.hours_left(), 28 * 24 - 59);
        // $59 over 59 hours: $1 an hour for the 613 hours left.
        assert_eq!(f.project(59_000_000_000, 59_000_000_000), 672_000_000_000);
    }

    #[test]
    fn later_the_window_is_the_last_seven_days() {
        // As of the last hour of the 14th (what the forecast accuracy KPI reconstructs).
        let f = MonthEnd::as_of(at("2026-11-15T00:00:00Z") - 1).unwrap();
        assert_eq!(f.until_h, at("2026-11-15T00:00:00Z") / HOUR_MS);
        assert_eq!(f.window_start_h, at("2026-11-08T00:00:00Z") / HOUR_MS);
        assert_eq!(f.window_hours(), 168);
        assert_eq!(f.hours_left(), 16 * 24);
        // $100 so far, $42 in the last week: $0.25 an hour for 384 hours.
        assert_eq!(f.project(100_000_000_000, 42_000_000_000), 196_000_000_000);
        // Rounded down, never through floats.
        assert_eq!(f.project(0, 1), 2);
    }

    #[test]
    fn the_last_hour_of_a_month_has_none_left() {
        let f = MonthEnd::as_of(at("2026-12-01T00:00:00Z") - 1).unwrap();
        assert_eq!(f.hours_left(), 0);
        assert_eq!(f.project(7, 1_000), 7);
    }
}

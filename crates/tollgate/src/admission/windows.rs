//! The time windows limits and budgets are counted in (SPEC §6): a sliding 60-second
//! window of one-second buckets, and UTC calendar hours, days and months.

use chrono::{DateTime, Datelike, TimeZone, Utc};

/// Buckets in the sliding minute. A call admitted `s` seconds ago is counted while
/// its bucket is one of the last 61 seconds, so any 60 seconds hold at most the limit.
pub const MINUTE_BUCKETS: i64 = 61;

/// Which window a call falls into, by period number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Unix second.
    pub second: i64,
    /// Hours since the epoch.
    pub hour: i64,
    /// Days since the epoch (UTC).
    pub day: i64,
    /// `year * 12 + month0` (UTC).
    pub month: i64,
}

impl Periods {
    /// The periods of `now_ms` (Unix milliseconds).
    pub fn at(now_ms: i64) -> Periods {
        let second = now_ms.div_euclid(1000);
        let date = utc(second);
        Periods {
            second,
            hour: second.div_euclid(3600),
            day: second.div_euclid(86_400),
            month: date.year() as i64 * 12 + date.month0() as i64,
        }
    }

    /// Whole seconds until the hour ends (at least 1).
    pub fn hour_reset_s(&self) -> u64 {
        ((self.hour + 1) * 3600 - self.second).max(1) as u64
    }

    /// Whole seconds until the UTC day ends (at least 1).
    pub fn day_reset_s(&self) -> u64 {
        ((self.day + 1) * 86_400 - self.second).max(1) as u64
    }

    /// Whole seconds until the UTC month ends (at least 1).
    pub fn month_reset_s(&self) -> u64 {
        let next = self.month + 1;
        let (year, month0) = (next.div_euclid(12), next.rem_euclid(12));
        let start = Utc
            .with_ymd_and_hms(year as i32, month0 as u32 + 1, 1, 0, 0, 0)
            .single()
            .map(|t| t.timestamp())
            .unwrap_or(self.second + 1);
        (start - self.second).max(1) as u64
    }
}

impl Periods {
    /// Unix milliseconds at the start of the UTC day.
    pub fn day_start_ms(&self) -> i64 {
        self.day * 86_400_000
    }

    /// Unix milliseconds at the start of the UTC month.
    pub fn month_start_ms(&self) -> i64 {
        let (year, month0) = (self.month.div_euclid(12), self.month.rem_euclid(12));
        Utc.with_ymd_and_hms(year as i32, month0 as u32 + 1, 1, 0, 0, 0)
            .single()
            .map(|t| t.timestamp() * 1000)
            .unwrap_or(self.day_start_ms())
    }
}

fn utc(second: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(second, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods_and_resets() {
        // 2026-11-21T23:59:30Z
        let t = Utc
            .with_ymd_and_hms(2026, 11, 21, 23, 59, 30)
            .single()
            .expect("time")
            .timestamp();
        let p = Periods::at(t * 1000 + 999);
        assert_eq!(p.second, t);
        assert_eq!(p.hour_reset_s(), 30);
        assert_eq!(p.day_reset_s(), 30);
        assert_eq!(p.month_reset_s(), 30 + 9 * 86_400);
        assert_eq!(p.month, 2026 * 12 + 10);
        let next_day = Periods::at((t + 31) * 1000);
        assert_eq!(next_day.day, p.day + 1);
        assert_eq!(next_day.month, p.month);
        // December rolls into January of the next year.
        let dec = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 0, 0)
            .single()
            .expect("time")
            .timestamp();
        assert_eq!(Periods::at(dec * 1000).month_reset_s(), 3600);
        let nov1 = Utc
            .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
            .single()
            .expect("time")
            .timestamp();
        assert_eq!(p.month_start_ms(), nov1 * 1000);
        let nov21 = Utc
            .with_ymd_and_hms(2026, 11, 21, 0, 0, 0)
            .single()
            .expect("time")
            .timestamp();
        assert_eq!(p.day_start_ms(), nov21 * 1000);
    }
}

//! Date ranges and time buckets, in the project's time zone.
//!
//! A range is a span of whole local days, `[from_ms, to_ms)` in epoch ms. SQL buckets events by
//! their local time, `server_ts + offset`, where the offset is constant between the zone's
//! transitions inside the range ([`Period::segments`]); hour, day and week buckets are then
//! integer divisions of local ms, and months a short `CASE` over month starts. Buckets are
//! numbered absolutely (local hours, days, Monday-weeks since 1970-01-01; `year * 12 + month - 1`)
//! so the same number always means the same label.

use std::time::Instant;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use super::{Interval, MAX_BUCKETS, QueryError, Scope, sql};
use crate::store::Cell;

const DAY_MS: i64 = 86_400_000;
/// Longest range, in days (about ten years).
pub const MAX_DAYS: i64 = 3700;

/// Which days a query covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateRange {
    /// The current local day.
    Today,
    /// The local day before.
    Yesterday,
    /// The last `n` days, today included.
    LastDays(i64),
    /// This month so far.
    Month,
    /// This year so far.
    Year,
    /// From the first stored event's day to today.
    All,
    /// These days, both included.
    Custom(Date, Date),
}

impl DateRange {
    /// Parses a preset name (`today`, `yesterday`, `7d`, `30d`, `month`, `year`, `all`, `Nd`).
    pub fn preset(name: &str) -> Option<DateRange> {
        Some(match name {
            "today" => DateRange::Today,
            "yesterday" => DateRange::Yesterday,
            "month" => DateRange::Month,
            "year" => DateRange::Year,
            "all" => DateRange::All,
            other => {
                let n: i64 = other.strip_suffix('d')?.parse().ok()?;
                if !(1..=MAX_DAYS).contains(&n) {
                    return None;
                }
                DateRange::LastDays(n)
            }
        })
    }
}

/// A resolved range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First day.
    pub from: Date,
    /// Last day (included).
    pub to: Date,
    /// Start of `from`, epoch ms.
    pub from_ms: i64,
    /// Start of the day after `to`, epoch ms.
    pub to_ms: i64,
    /// `(until_ms, offset_ms)`: the zone's offset before each transition in the range; the last
    /// one's `until_ms` is `to_ms`.
    pub segments: Vec<(i64, i64)>,
}

fn day_start(date: Date, tz: &TimeZone) -> Result<i64, QueryError> {
    date.to_zoned(tz.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| QueryError::invalid("date_range", format!("a day the time zone can represent ({e})")))
}

fn add_days(date: Date, n: i64) -> Result<Date, QueryError> {
    date.checked_add(Span::new().days(n))
        .map_err(|_| QueryError::invalid("date_range", "dates between 1970 and 9999"))
}

/// The local day of an instant.
pub fn local_date(ms: i64, tz: &TimeZone) -> Date {
    Timestamp::from_millisecond(ms).map_or(epoch(), |t| t.to_zoned(tz.clone()).date())
}

fn epoch() -> Date {
    Date::constant(1970, 1, 1)
}

/// Days since 1970-01-01.
pub fn day_number(date: Date) -> i64 {
    date.to_zoned(TimeZone::UTC).map_or(0, |z| z.timestamp().as_millisecond().div_euclid(DAY_MS))
}

fn date_of_day(n: i64) -> Date {
    epoch().checked_add(Span::new().days(n)).unwrap_or(epoch())
}

impl Period {
    /// The days `from..=to` in `tz`.
    pub fn new(from: Date, to: Date, tz: &TimeZone) -> Result<Period, QueryError> {
        if from > to {
            return Err(QueryError::invalid("date_range", "[from, to] with from on or before to"));
        }
        if day_number(to) - day_number(from) + 1 > MAX_DAYS {
            return Err(QueryError::invalid("date_range", format!("at most {MAX_DAYS} days")));
        }
        if from < epoch() {
            return Err(QueryError::invalid("date_range", "dates from 1970-01-01 on"));
        }
        let from_ms = day_start(from, tz)?;
        let to_ms = day_start(add_days(to, 1)?, tz)?;
        let mut segments = Vec::new();
        let start = Timestamp::from_millisecond(from_ms)
            .map_err(|_| QueryError::invalid("date_range", "a valid day"))?;
        let mut offset = i64::from(tz.to_offset(start).seconds()) * 1000;
        for t in tz.following(start) {
            let at = t.timestamp().as_millisecond();
            if at >= to_ms {
                break;
            }
            segments.push((at, offset));
            offset = i64::from(t.offset().seconds()) * 1000;
        }
        segments.push((to_ms, offset));
        Ok(Period { from, to, from_ms, to_ms, segments })
    }

    /// `[from, to]` as `YYYY-MM-DD`.
    pub fn labels(&self) -> [String; 2] {
        [self.from.to_string(), self.to.to_string()]
    }

    /// The same number of days just before.
    pub fn previous(&self, tz: &TimeZone) -> Result<Period, QueryError> {
        let days = day_number(self.to) - day_number(self.from) + 1;
        let from = add_days(self.from, -days)?;
        if from < epoch() {
            return Err(QueryError::invalid(
                "include.comparison",
                "a range whose previous period starts after 1970",
            ));
        }
        Period::new(from, add_days(self.from, -1)?, tz)
    }

    /// Every bucket of the range, ascending.
    pub fn buckets(&self, interval: Interval) -> Result<Vec<i64>, QueryError> {
        let (first, last) = (day_number(self.from), day_number(self.to));
        let days = last - first + 1;
        let count = match interval {
            Interval::Hour => days * 24,
            Interval::Day => days,
            Interval::Week => days / 7 + 2,
            Interval::Month => days / 28 + 2,
        };
        if count > MAX_BUCKETS as i64 {
            return Err(QueryError::TooLarge(format!(
                "{count} time buckets (at most {MAX_BUCKETS}); choose a coarser interval or a shorter date range"
            )));
        }
        let mut out: Vec<i64> = match interval {
            Interval::Hour => (first * 24..(last + 1) * 24).collect(),
            Interval::Day => (first..=last).collect(),
            Interval::Week => (first..=last).map(week_of_day).collect(),
            Interval::Month => (first..=last).map(|d| month_id(date_of_day(d))).collect(),
        };
        out.dedup();
        Ok(out)
    }

    /// Month starts in local ms from the range's first month to the one after its last, with
    /// their bucket numbers: the `CASE` that numbers months in SQL.
    pub fn month_starts(&self) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut m = self.from.first_of_month();
        while m <= self.to {
            let next = m.checked_add(Span::new().months(1)).unwrap_or(m);
            out.push((day_number(next) * DAY_MS, month_id(m)));
            if next == m {
                break;
            }
            m = next;
        }
        out
    }
}

fn week_of_day(day: i64) -> i64 {
    // 1970-01-01 was a Thursday: +3 makes weeks start on Monday.
    (day + 3).div_euclid(7)
}

fn month_id(d: Date) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month()) - 1
}

/// The bucket number of a whole local day (hours: its first hour).
pub fn bucket_of_date(date: Date, interval: Interval) -> i64 {
    let day = day_number(date);
    match interval {
        Interval::Hour => day * 24,
        Interval::Day => day,
        Interval::Week => week_of_day(day),
        Interval::Month => month_id(date),
    }
}

/// The label of a bucket number.
pub fn bucket_label(interval: Interval, bucket: i64) -> String {
    match interval {
        Interval::Hour => {
            format!("{}T{:02}:00", date_of_day(bucket.div_euclid(24)), bucket.rem_euclid(24))
        }
        Interval::Day => date_of_day(bucket).to_string(),
        Interval::Week => date_of_day(bucket * 7 - 3).to_string(),
        Interval::Month => format!("{:04}-{:02}", bucket.div_euclid(12), bucket.rem_euclid(12) + 1),
    }
}

/// Resolves a range at `now_ms`; `all` asks the store for the first event's time.
pub fn resolve(
    range: &DateRange,
    scope: Scope<'_>,
    now_ms: i64,
    deadline: Instant,
) -> Result<Period, QueryError> {
    let tz = scope.tz;
    let today = local_date(now_ms, tz);
    let (from, to) = match range {
        DateRange::Today => (today, today),
        DateRange::Yesterday => {
            let y = add_days(today, -1)?;
            (y, y)
        }
        DateRange::LastDays(n) => (add_days(today, 1 - n)?, today),
        DateRange::Month => (today.first_of_month(), today),
        DateRange::Year => (today.first_of_year(), today),
        DateRange::Custom(from, to) => (*from, *to),
        DateRange::All => {
            let stmt = sql::first_event(scope.store.dialect(), scope.project);
            let rows = scope.store.aggregate(&stmt.sql, &stmt.params, deadline)?;
            let first = match rows.first().and_then(|r| r.first()) {
                Some(Cell::Int(ms)) => local_date(*ms, tz).min(today),
                _ => today,
            };
            let earliest = add_days(today, 1 - MAX_DAYS)?;
            (first.max(earliest), today)
        }
    };
    Period::new(from, to, tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_bucket_numbers() {
        let d = Date::constant(2026, 6, 20);
        let day = day_number(d);
        assert_eq!(bucket_label(Interval::Day, day), "2026-06-20");
        assert_eq!(bucket_label(Interval::Hour, day * 24 + 13), "2026-06-20T13:00");
        // 2026-06-20 is a Saturday; its week starts on Monday 2026-06-15.
        assert_eq!(bucket_label(Interval::Week, week_of_day(day)), "2026-06-15");
        assert_eq!(bucket_label(Interval::Month, month_id(d)), "2026-06");
    }

    #[test]
    fn a_dst_range_has_a_segment_per_offset() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let p = Period::new(Date::constant(2026, 3, 28), Date::constant(2026, 3, 30), &tz).unwrap();
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[0].1, 3_600_000);
        assert_eq!(p.segments[1].1, 7_200_000);
        assert_eq!(p.to_ms - p.from_ms, 3 * DAY_MS - 3_600_000);
    }

    #[test]
    fn buckets_cover_the_range_in_order() {
        let tz = TimeZone::get("Asia/Kolkata").unwrap();
        let p = Period::new(Date::constant(2026, 1, 30), Date::constant(2026, 3, 2), &tz).unwrap();
        let months: Vec<String> = p
            .buckets(Interval::Month)
            .unwrap()
            .into_iter()
            .map(|b| bucket_label(Interval::Month, b))
            .collect();
        assert_eq!(months, ["2026-01", "2026-02", "2026-03"]);
        assert_eq!(p.buckets(Interval::Day).unwrap().len(), 32);
        assert_eq!(p.buckets(Interval::Hour).unwrap().len(), 32 * 24);
        let weeks = p.buckets(Interval::Week).unwrap();
        assert_eq!(bucket_label(Interval::Week, weeks[0]), "2026-01-26");
        assert_eq!(
            p.month_starts().iter().map(|m| m.1).collect::<Vec<_>>(),
            p.buckets(Interval::Month).unwrap()
        );
    }

    #[test]
    fn previous_period_has_the_same_length() {
        let p = Period::new(Date::constant(2026, 6, 1), Date::constant(2026, 6, 30), &TimeZone::UTC).unwrap();
        assert_eq!(p.previous(&TimeZone::UTC).unwrap().labels(), ["2026-05-02", "2026-05-31"]);
    }

    #[test]
    fn bad_ranges_name_the_field() {
        let e =
            Period::new(Date::constant(2026, 6, 2), Date::constant(2026, 6, 1), &TimeZone::UTC).unwrap_err();
        assert!(e.to_string().starts_with("date_range"), "{e}");
        assert!(DateRange::preset("0d").is_none());
        assert_eq!(DateRange::preset("7d"), Some(DateRange::LastDays(7)));
    }
}

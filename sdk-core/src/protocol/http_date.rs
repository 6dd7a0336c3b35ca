//! `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date, read against the caller's
//! clock.

use core::time::Duration;

use crate::config::MAX_RETRY_AFTER;
use crate::time::Timestamp;

/// The delay a `Retry-After` header value asks for at `now`: delay-seconds, or an HTTP date
/// (IMF-fixdate, or the obsolete RFC 850 and asctime forms) with a date in the past meaning no
/// delay. Capped at [`MAX_RETRY_AFTER`]; `None` for a value that is neither.
pub fn retry_after(header: &str, now: Timestamp) -> Option<Duration> {
    // Byte-wise, in milliseconds and without `str` searching, parsing or 128-bit arithmetic:
    // this is in the browser's engine, where every construct costs bytes.
    let value = header.trim_ascii().as_bytes();
    let ms = match num(value, 1, usize::MAX) {
        Some(secs) => secs * 1000,
        None => (http_date_secs(value)? * 1000).saturating_sub(now.as_unix_millis()),
    };
    Some(Duration::from_millis(ms.min(MAX_RETRY_AFTER.as_millis() as u64)))
}

const MONTHS: &[u8] = b"JanFebMarAprMayJunJulAugSepOctNovDec";

/// Most a number read here reaches (2^40, some 34,000 years of seconds), so that nothing after
/// it can overflow; anything larger is capped later anyway.
const NUM_CAP: u64 = 1 << 40;

/// `text` as a number of `min_len` to `max_len` ASCII digits (capped at [`NUM_CAP`]).
fn num(text: &[u8], min_len: usize, max_len: usize) -> Option<u64> {
    if text.len() < min_len || text.len() > max_len {
        return None;
    }
    text.iter()
        .try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| (n * 10 + u64::from(b - b'0')).min(NUM_CAP)))
}

/// Unix seconds of an HTTP date (dates before 1970 are 0).
fn http_date_secs(value: &[u8]) -> Option<u64> {
    // The fields between spaces, commas, dashes and colons: 8 in IMF-fixdate
    // (`Sun, 06 Nov 1994 08:49:37 GMT`) and RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`), 7 in
    // asctime (`Sun Nov  6 08:49:37 1994`).
    let mut f: [&[u8]; 8] = [&[]; 8];
    let mut n = 0;
    for field in value.split(|b| matches!(b, b' ' | b',' | b'-' | b':')) {
        if !field.is_empty() {
            *f.get_mut(n)? = field;
            n += 1;
        }
    }
    if !f[0].iter().all(u8::is_ascii_alphabetic) {
        return None; // the day name
    }
    let (day, month, year, time) = match (n, f[7]) {
        (8, b"GMT") => (f[1], f[2], f[3], 4),
        (7, _) => (f[2], f[1], f[6], 3),
        _ => return None,
    };
    let month = MONTHS.chunks(3).position(|m| m == month)? as i64 + 1;
    let day = num(day, 1, 2).filter(|d| (1..=31).contains(d))? as i64;
    let year = match (year.len(), num(year, 2, 4)? as i64) {
        (2, y) if y < 70 => 2000 + y, // RFC 850's two-digit years
        (2, y) => 1900 + y,
        (4, y) => y,
        _ => return None,
    };
    let two = |i: usize, max: u64| num(f[i], 2, 2).filter(|v| *v <= max).map(|v| v as i64);
    let (h, m, s) = (two(time, 23)?, two(time + 1, 59)?, two(time + 2, 60)?);
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`);
    // years here are 0..=9999, so plain division is exact after shifting by 400 years.
    let y = if month <= 2 { year - 1 } else { year } + 400;
    let (era, yoe) = (y / 400, y % 400);
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let days = (era - 1) * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(u64::try_from(days * 86_400 + h * 3600 + m * 60 + s).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:37Z, the RFC's example date.
    const RFC_DATE: u64 = 784_111_777;

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    #[test]
    fn delay_seconds() {
        let now = at(RFC_DATE);
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(retry_after("7200", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("99999999999999999999999", now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let now = at(RFC_DATE - 10);
        for form in
            ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
        {
            assert_eq!(retry_after(form, now), Some(Duration::from_secs(10)), "{form}");
        }
        // Sub-second clock: the remainder counts.
        let now = Timestamp::from_unix_millis(RFC_DATE * 1000 - 1500);
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_millis(1500)));
        // In the past: no delay. Far ahead: capped.
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:27 GMT", at(RFC_DATE)), Some(Duration::ZERO));
        assert_eq!(retry_after("Thu, 01 Jan 1970 00:00:00 GMT", at(RFC_DATE)), Some(Duration::ZERO));
        assert_eq!(retry_after("Fri, 31 Dec 9999 23:59:59 GMT", at(RFC_DATE)), Some(MAX_RETRY_AFTER));
        // Leap years and month starts.
        let feb29 = 951_782_400; // 2000-02-29T00:00:00Z
        assert_eq!(
            retry_after("Tue, 29 Feb 2000 00:00:00 GMT", at(feb29 - 60)),
            Some(Duration::from_secs(60))
        );
        let mar1 = 1_709_251_200; // 2024-03-01T00:00:00Z
        assert_eq!(retry_after("Fri, 01 Mar 2024 00:00:00 GMT", at(mar1 - 1)), Some(Duration::from_secs(1)));
    }

    #[test]
    fn garbage_is_none() {
        let now = at(RFC_DATE);
        for bad in [
            "",
            "soon",
            "-1",
            "+5",
            "1.5",
            "12 s",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 ovD 1994 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sun, 06 Nov 199 08:49:37 GMT",
            "1, 06 Nov 1994 08:49:37 GMT",
            "Sun Nov 6 08:49:37",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }
}

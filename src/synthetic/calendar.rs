//! UTC days without a date crate: the lake partitions by `eventDay=YYYYMMDD`, and the generator
//! needs nothing more than that, day starts in epoch milliseconds, and today's date.

use std::time::{SystemTime, UNIX_EPOCH};

pub const DAY_MS: i64 = 86_400_000;

/// A UTC calendar day, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i64);

impl Day {
    pub fn today() -> Day {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Day(secs as i64 / 86_400)
    }

    /// The day holding `ms` (epoch milliseconds).
    pub fn of_ms(ms: i64) -> Day {
        Day(ms.div_euclid(DAY_MS))
    }

    /// `YYYYMMDD`, as in `eventDay=` and the version 1 tables' `eventDay` column.
    pub fn parse(text: &str) -> Option<Day> {
        if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (y, m, d) = (text[..4].parse().ok()?, text[4..6].parse().ok()?, text[6..].parse().ok()?);
        let day = Day(days_from_civil(y, m, d));
        (day.civil() == (y, m, d)).then_some(day)
    }

    pub fn start_ms(self) -> i64 {
        self.0 * DAY_MS
    }

    pub fn plus(self, days: i64) -> Day {
        Day(self.0 + days)
    }

    /// Monday is 0, Sunday 6.
    pub fn weekday(self) -> i64 {
        (self.0 + 3).rem_euclid(7)
    }

    pub fn civil(self) -> (i64, u32, u32) {
        civil_from_days(self.0)
    }
}

impl std::fmt::Display for Day {
    /// `YYYYMMDD`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.civil();
        write!(f, "{y:04}{m:02}{d:02}")
    }
}

/// `2026-11-26T10:00:00.000Z` for epoch milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let (y, m, d) = Day::of_ms(ms).civil();
    let in_day = ms.rem_euclid(DAY_MS);
    let (h, min, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

// Howard Hinnant's civil calendar algorithms (public domain).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_through_event_day_text() {
        assert_eq!(Day(0).to_string(), "19700101");
        let day = Day::parse("20261126").expect("a date");
        assert_eq!(day.to_string(), "20261126");
        assert_eq!(day.start_ms(), 1_795_651_200_000);
        assert_eq!(Day::parse("20240229").map(|d| d.to_string()).as_deref(), Some("20240229"));
        assert_eq!(Day::parse("20230229"), None);
        assert_eq!(Day::parse("2026-11-26"), None);
        assert_eq!(day.weekday(), 3, "a Thursday");
        assert_eq!(rfc3339_ms(1_795_687_200_123), "2026-11-26T10:00:00.123Z");
    }
}

//! Instagram's timestamps: `2017-08-31T18:10:00+0000`.
//!
//! The offset has no colon, so a strict RFC 3339 parser rejects it. [`Timestamp`] accepts
//! that form and the RFC 3339 ones (`+00:00`, `Z`, fractional seconds), stores the instant as
//! Unix seconds, and writes it back in Instagram's own UTC form.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The earliest instant a [`Timestamp`] holds: 0000-01-01T00:00:00Z.
pub const MIN_UNIX: i64 = -62_167_219_200;
/// The latest instant a [`Timestamp`] holds: 9999-12-31T23:59:59Z. Every timestamp is written
/// with a four-digit year and parses back.
pub const MAX_UNIX: i64 = 253_402_300_799;

/// `unix` kept between [`MIN_UNIX`] and [`MAX_UNIX`].
const fn clamped(unix: i64) -> i64 {
    if unix < MIN_UNIX {
        MIN_UNIX
    } else if unix > MAX_UNIX {
        MAX_UNIX
    } else {
        unix
    }
}

/// An instant with one-second precision, as Instagram reports it, between the years 0 and
/// 9999 (anything outside is clamped to the nearest end: a value from the network or a file
/// never makes time arithmetic overflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix: i64,
}

/// Why a timestamp string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimestampError {
    reason: &'static str,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid timestamp ({}): expected the form 2017-08-31T18:10:00+0000",
            self.reason
        )
    }
}

impl std::error::Error for TimestampError {}

fn fail(reason: &'static str) -> TimestampError {
    TimestampError { reason }
}

impl Timestamp {
    /// The instant `unix` seconds after 1970-01-01T00:00:00Z (clamped to the years 0-9999).
    pub const fn from_unix(unix: i64) -> Self {
        Self { unix: clamped(unix) }
    }

    /// Seconds since the Unix epoch (negative before 1970).
    pub const fn unix(self) -> i64 {
        self.unix
    }

    /// This instant `duration` later, in whole seconds, held at the end of the year 9999
    /// rather than overflowing.
    ///
    /// ```
    /// use igdisplay_model::{MAX_UNIX, Timestamp};
    /// use std::time::Duration;
    ///
    /// let t = Timestamp::from_unix(1_768_478_400);
    /// assert_eq!(t.saturating_add(Duration::from_millis(90_500)).unix(), 1_768_478_490);
    /// assert_eq!(t.saturating_add(Duration::MAX).unix(), MAX_UNIX);
    /// ```
    pub fn saturating_add(self, duration: Duration) -> Self {
        Self::from_unix(self.unix.saturating_add(whole_seconds(duration)))
    }

    /// The instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_secs(self.unix.unsigned_abs());
        // In range on every common platform; a platform whose clock cannot hold the year 0
        // or 9999 gets the nearest instant it can.
        let moved = if self.unix >= 0 {
            UNIX_EPOCH.checked_add(magnitude)
        } else {
            UNIX_EPOCH.checked_sub(magnitude)
        };
        moved.unwrap_or(UNIX_EPOCH)
    }

    /// The instant of a [`SystemTime`], truncated to the second.
    pub fn from_system_time(time: SystemTime) -> Self {
        let unix = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => whole_seconds(after),
            Err(before) => -whole_seconds(before.duration()),
        };
        Self::from_unix(unix)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HHMM|±HH:MM)`.
    ///
    /// # Errors
    ///
    /// [`TimestampError`] when the text is not of that form or names an impossible date.
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let b = text.as_bytes();
        if b.len() < 20 {
            return Err(fail("too short"));
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return Err(fail("bad date separators"));
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(fail("bad time separators"));
        }
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(fail("no such date"));
        }
        // 60 is a leap second; Unix time folds it into the next minute.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(fail("no such time"));
        }
        let mut rest = &b[19..];
        if let [b'.', tail @ ..] = rest {
            let fraction = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if fraction == 0 {
                return Err(fail("empty fraction"));
            }
            rest = &tail[fraction..];
        }
        let offset = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, m1, m2] | [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let hours = digits(&[*h1, *h2])?;
                let minutes = digits(&[*m1, *m2])?;
                if hours > 23 || minutes > 59 {
                    return Err(fail("offset out of range"));
                }
                let seconds = i64::from(hours * 3600 + minutes * 60);
                if *sign == b'-' { -seconds } else { seconds }
            }
            _ => return Err(fail("missing or malformed offset")),
        };
        let days = days_from_civil(i64::from(year), month, day);
        let local = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        Ok(Self::from_unix(local - offset))
    }

    /// The RFC 3339 form in UTC, `2017-08-31T18:10:00Z`.
    pub fn to_rfc3339(self) -> String {
        let (date, time) = self.civil();
        format!("{date}T{time}Z")
    }

    fn civil(self) -> (String, String) {
        let days = self.unix.div_euclid(86_400);
        let secs = self.unix.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (
            format!("{y:04}-{m:02}-{d:02}"),
            format!("{:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60),
        )
    }
}

impl fmt::Display for Timestamp {
    /// Instagram's own form, in UTC: `2017-08-31T18:10:00+0000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (date, time) = self.civil();
        write!(f, "{date}T{time}+0000")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn digits(bytes: &[u8]) -> Result<u32, TimestampError> {
    bytes.iter().try_fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + u32::from(c - b'0'))
        } else {
            Err(fail("expected a digit"))
        }
    })
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The whole seconds of `duration` as an `i64`, saturating at `i64::MAX`: the one way a
/// duration meets Unix seconds (leases, expiries, waits) anywhere in the workspace.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(igdisplay_model::whole_seconds(Duration::from_millis(90_500)), 90);
/// assert_eq!(igdisplay_model::whole_seconds(Duration::MAX), i64::MAX);
/// ```
pub fn whole_seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instagram_form_parses_to_the_right_instant() {
        let t = Timestamp::parse("2017-08-31T18:10:00+0000").unwrap();
        assert_eq!(t.unix(), 1_504_203_000);
        assert_eq!(t.to_string(), "2017-08-31T18:10:00+0000");
        assert_eq!(t.to_rfc3339(), "2017-08-31T18:10:00Z");
    }

    #[test]
    fn offsets_and_rfc3339_forms_agree() {
        let utc = Timestamp::parse("2019-10-05T18:29:33+0000").unwrap();
        for same in [
            "2019-10-05T18:29:33Z",
            "2019-10-05T18:29:33+00:00",
            "2019-10-05T20:29:33+0200",
            "2019-10-05T13:29:33-05:00",
            "2019-10-05T18:29:33.123Z",
        ] {
            assert_eq!(Timestamp::parse(same).unwrap(), utc, "{same}");
        }
    }

    #[test]
    fn leap_days_and_negative_years_round_trip() {
        for text in [
            "2024-02-29T00:00:00+0000",
            "1969-12-31T23:59:59+0000",
            "2000-03-01T12:00:00+0000",
        ] {
            assert_eq!(Timestamp::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Timestamp::from_unix(-1).to_string(), "1969-12-31T23:59:59+0000");
    }

    #[test]
    fn impossible_or_malformed_text_is_a_typed_error() {
        for bad in [
            "",
            "2017-08-31",
            "2017-08-31T18:10:00",
            "2017-02-29T00:00:00+0000",
            "2017-13-01T00:00:00+0000",
            "2017-08-31T24:00:00+0000",
            "2017-08-31T18:10:00+000",
            "2017-08-31T18:10:00.+0000",
            "2017/08/31T18:10:00+0000",
            "２０17-08-31T18:10:00+0000",
        ] {
            let err = Timestamp::parse(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid timestamp"), "{bad}: {err}");
        }
        let err = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(err.to_string().contains("invalid timestamp"));
    }

    #[test]
    fn system_time_conversion_round_trips() {
        let t = Timestamp::from_unix(1_700_000_000);
        assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
        let before = Timestamp::from_unix(-86_400);
        assert_eq!(Timestamp::from_system_time(before.to_system_time()), before);
    }

    #[test]
    fn civil_conversion_is_exact_over_four_centuries() {
        for days in (-146_097..146_097).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            let back = days_from_civil(y, u32::try_from(m).unwrap(), u32::try_from(d).unwrap());
            assert_eq!(back, days);
        }
    }
}

#[cfg(test)]
mod bounds_tests {
    use super::*;

    #[test]
    fn instants_past_the_year_9999_are_clamped_and_parse_back() {
        let far = Timestamp::from_unix(i64::MAX);
        assert_eq!(far.unix(), MAX_UNIX);
        assert_eq!(Timestamp::parse(&far.to_string()).unwrap(), far);
        let early = Timestamp::from_unix(i64::MIN);
        assert_eq!(Timestamp::parse(&early.to_string()).unwrap(), early);
    }

    #[test]
    fn a_local_time_that_crosses_into_the_year_10000_stays_writable() {
        let edge = Timestamp::parse("9999-12-31T23:00:00-1400").unwrap();
        assert_eq!(edge.unix(), MAX_UNIX);
        assert_eq!(Timestamp::parse(&edge.to_string()).unwrap(), edge);
    }

    #[test]
    fn a_clamped_instant_converts_to_system_time_without_panicking() {
        let far = Timestamp::from_unix(i64::MAX).to_system_time();
        assert!(far > SystemTime::UNIX_EPOCH);
        let back = Timestamp::from_system_time(far);
        assert_eq!(back.unix(), MAX_UNIX);
    }
}

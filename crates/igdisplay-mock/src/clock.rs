//! The mock's clock: frozen (the default for tests) or following the system clock, and in both
//! cases movable. Every expiry, window and date in a message reads it.
//!
//! Time is whole Unix seconds between the epoch and [`LATEST`] (the end of year 9999), so
//! every date the mock writes has four digits and no addition to it overflows. Three forms
//! are written: Instagram's timestamps (`2017-08-31T18:10:00+0000`), RFC 3339 in control
//! answers and options (`2026-01-15T12:00:00Z`), and the dates of Graph's expiry messages
//! (`Tuesday, 28-Sep-21 03:00:00 PDT` in Instagram's words; in UTC here). The civil-date
//! arithmetic is written out (days from the epoch, Howard Hinnant's algorithm) rather than
//! taken from a date crate: the mock shares no code with the client, whose model crate has its
//! own copy, so the two check each other.

use std::time::{SystemTime, UNIX_EPOCH};

/// The default frozen instant: 2026-01-15T12:00:00Z.
pub const DEFAULT_START: i64 = 1_768_478_400;

/// The latest instant the clock reaches, 9999-12-31T23:59:59Z: whatever a test or a control
/// request asks, the clock stays where every date can be written and every expiry added.
pub const LATEST: i64 = 253_402_300_799;

/// `unix` kept between the epoch and [`LATEST`].
fn clamp(unix: i64) -> i64 {
    unix.clamp(0, LATEST)
}

/// A clock in whole Unix seconds: frozen (the default, for tests) or the system clock plus an
/// offset (for a mock a person uses). Both move with `advance` and `set`.
///
/// ```
/// use igdisplay_mock::{DEFAULT_START, MockClock};
///
/// let mut frozen = MockClock::default();
/// assert_eq!(frozen.now(), DEFAULT_START);
/// frozen.set(0);
/// assert_eq!(frozen.now(), 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MockClock {
    /// Stands still at this instant until moved.
    Frozen(i64),
    /// The system clock plus an offset in seconds (moved by advancing the offset).
    System {
        /// Seconds added to the system time.
        offset: i64,
    },
}

impl Default for MockClock {
    fn default() -> Self {
        MockClock::Frozen(DEFAULT_START)
    }
}

impl MockClock {
    /// The current instant, in Unix seconds.
    pub fn now(&self) -> i64 {
        match self {
            MockClock::Frozen(at) => clamp(*at),
            MockClock::System { offset } => clamp(system_now().saturating_add(*offset)),
        }
    }

    /// Moves the clock forward (or back, with a negative value), staying between the epoch
    /// and [`LATEST`].
    ///
    /// ```
    /// use igdisplay_mock::{DEFAULT_START, LATEST, MockClock};
    ///
    /// let mut clock = MockClock::default();
    /// clock.advance(3600);
    /// assert_eq!(clock.now(), DEFAULT_START + 3600);
    /// clock.advance(i64::MAX);
    /// assert_eq!(clock.now(), LATEST);
    /// ```
    pub fn advance(&mut self, seconds: i64) {
        let target = clamp(self.now().saturating_add(seconds));
        self.set(target);
    }

    /// Sets the clock to `unix` seconds (kept between the epoch and [`LATEST`]).
    pub fn set(&mut self, unix: i64) {
        let unix = clamp(unix);
        match self {
            MockClock::Frozen(at) => *at = unix,
            MockClock::System { offset } => *offset = unix.saturating_sub(system_now()),
        }
    }

    /// Parses `system`, `frozen` (at the default instant) or `frozen:<RFC 3339 UTC>`.
    ///
    /// ```
    /// use igdisplay_mock::{DEFAULT_START, MockClock};
    ///
    /// assert_eq!(MockClock::parse("frozen"), Some(MockClock::Frozen(DEFAULT_START)));
    /// assert_eq!(MockClock::parse("frozen:2026-01-15T12:00:00Z"), Some(MockClock::Frozen(DEFAULT_START)));
    /// assert_eq!(MockClock::parse("tomorrow"), None);
    /// ```
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "system" => Some(MockClock::System { offset: 0 }),
            "frozen" => Some(MockClock::default()),
            other => other
                .strip_prefix("frozen:")
                .and_then(parse_rfc3339)
                .map(MockClock::Frozen),
        }
    }
}

// The mock's own clock in system mode: the one place the mock reads the real time.
#[allow(clippy::disallowed_methods)]
fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS` followed by `Z` or `+00:00`/`+0000` (UTC only) → Unix seconds.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { std::str::from_utf8(&b[r]).ok()?.parse().ok() };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let tail = std::str::from_utf8(&b[19..]).ok()?;
    if !matches!(tail, "" | "Z" | "z" | "+00:00" | "+0000")
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Unix seconds → (year, month, day, hour, minute, second, weekday 0=Sunday), UTC.
///
/// Howard Hinnant's civil-date algorithm, written again here on purpose: igdisplay-model's
/// `Timestamp` has the same one, and the mock (the oracle) shares no code with the client it
/// tests, so a mistake in one is caught by the other.
pub(crate) fn civil(unix: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let weekday = (days + 4).rem_euclid(7);
    (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60, weekday)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Instagram's timestamp form, `2017-08-31T18:10:00+0000`.
pub(crate) fn instagram_timestamp(unix: i64) -> String {
    let (y, m, d, hh, mm, ss, _) = civil(unix);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}+0000")
}

/// The date style of Graph's expiry messages, `Tuesday, 28-Sep-21 03:00:00 PDT`, in UTC.
pub(crate) fn facebook_date(unix: i64) -> String {
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d, hh, mm, ss, wd) = civil(unix);
    let day = DAYS[usize::try_from(wd).unwrap_or_default() % 7];
    let month = MONTHS[usize::try_from(m - 1).unwrap_or_default() % 12];
    format!("{day}, {d:02}-{month}-{:02} {hh:02}:{mm:02}:{ss:02} UTC", y % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_like_instagram() {
        assert_eq!(instagram_timestamp(1_504_203_000), "2017-08-31T18:10:00+0000");
        assert_eq!(facebook_date(1_632_823_200), "Tuesday, 28-Sep-21 10:00:00 UTC");
        assert_eq!(parse_rfc3339("2026-01-15T12:00:00Z"), Some(DEFAULT_START));
        assert_eq!(parse_rfc3339("2026-01-15T12:00:00+02:00"), None);
        assert_eq!(
            MockClock::parse("frozen:2017-08-31T18:10:00Z"),
            Some(MockClock::Frozen(1_504_203_000))
        );
        assert_eq!(MockClock::parse("frozen"), Some(MockClock::Frozen(DEFAULT_START)));
        assert!(matches!(
            MockClock::parse("system"),
            Some(MockClock::System { offset: 0 })
        ));
        assert_eq!(MockClock::parse("later"), None);
    }

    #[test]
    fn the_clock_moves_only_when_told() {
        let mut clock = MockClock::default();
        clock.advance(86_400);
        assert_eq!(clock.now(), DEFAULT_START + 86_400);
        clock.set(5);
        assert_eq!(clock.now(), 5);
        let mut system = MockClock::System { offset: 0 };
        system.set(system_now() + 3600);
        assert!((system.now() - system_now() - 3600).abs() <= 1);
    }
}

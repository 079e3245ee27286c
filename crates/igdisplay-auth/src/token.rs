//! Tokens with absolute lifetimes, and the rules for refreshing them.

use crate::{Platform, TokenError};
use igdisplay_http::{Jitter, RetryPolicy};
use igdisplay_model::whole_seconds as seconds;
use igdisplay_model::{AccessToken, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// One hour: the life of a short-lived token (and of an authorization code).
pub const SHORT_LIVED: Duration = Duration::from_secs(60 * 60);
/// Sixty days: the life of a long-lived token, from issue or from its last refresh.
pub const LONG_LIVED: Duration = Duration::from_secs(60 * 24 * 60 * 60);
/// The longest life igdisplay believes a token answer gives (a year): a larger `expires_in`
/// is taken as this, so a broken or hostile server cannot stop a token from being refreshed.
pub const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A long-lived token must be this old before Instagram refreshes it.
pub const MIN_AGE_BEFORE_REFRESH: Duration = Duration::from_secs(24 * 60 * 60);

/// Short-lived (from the code exchange) or long-lived (exchanged or refreshed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenKind {
    /// Valid one hour; exchange it for a long-lived one.
    ShortLived,
    /// Valid sixty days; refreshable once 24 hours old.
    LongLived,
}

/// A token with everything needed to use, refresh and store it. Times are absolute.
///
/// `Debug` shows the token as `[redacted]`; serialization writes it in full (for stores).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenRecord {
    /// Whose token it is.
    pub user_id: UserId,
    /// The token.
    pub access_token: AccessToken,
    /// Short- or long-lived.
    pub kind: TokenKind,
    /// The platform it was issued for.
    pub platform: Platform,
    /// When it was issued: the moment its request was sent, so the expiry is never late.
    pub issued_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// The scopes Instagram reported, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Where the token comes from when it is not Instagram: the origin
    /// (`scheme://host:port`) of the server that issued it, a mock or a stand-in. `None` for
    /// Instagram's own hosts (and for records stored before this was kept). A
    /// [`TokenManager`](crate::TokenManager) never hands such a token to a client configured
    /// for another origin, so a mock's token never travels to Instagram, nor Instagram's to
    /// a mock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<String>,
}

impl TokenRecord {
    /// A record for a token obtained some other way, such as a long-lived token generated in
    /// the App Dashboard.
    pub fn new(
        user_id: UserId,
        access_token: AccessToken,
        kind: TokenKind,
        platform: Platform,
        issued_at: SystemTime,
        lifetime: Duration,
    ) -> Self {
        Self {
            user_id,
            access_token,
            kind,
            platform,
            issued_at: Timestamp::from_system_time(issued_at),
            // A lifetime past what the clock can hold is the latest instant a timestamp holds.
            expires_at: issued_at
                .checked_add(lifetime)
                .map_or(Timestamp::from_unix(i64::MAX), Timestamp::from_system_time),
            permissions: None,
            issued_by: None,
        }
    }

    /// A record for a long-lived token issued at `issued_at` (one generated in the App
    /// Dashboard, or kept by another program): it expires [`LONG_LIVED`] later, as Instagram's
    /// do.
    ///
    /// ```
    /// use igdisplay_auth::{LONG_LIVED, Platform, TokenKind, TokenRecord};
    /// use igdisplay_model::{AccessToken, Timestamp, UserId};
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let issued = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let record = TokenRecord::long_lived(
    ///     UserId::new("17841400000000000"),
    ///     AccessToken::new("IGAA-dashboard-token"),
    ///     Platform::InstagramLogin,
    ///     issued,
    /// );
    /// assert_eq!(record.kind, TokenKind::LongLived);
    /// assert_eq!(record.expires_at, Timestamp::from_system_time(issued + LONG_LIVED));
    /// ```
    pub fn long_lived(
        user_id: UserId,
        access_token: AccessToken,
        platform: Platform,
        issued_at: SystemTime,
    ) -> Self {
        Self::new(
            user_id,
            access_token,
            TokenKind::LongLived,
            platform,
            issued_at,
            LONG_LIVED,
        )
    }

    /// The record with [`issued_by`](Self::issued_by) set: for a token imported from a mock or
    /// another stand-in, its origin.
    #[must_use]
    pub fn issued_by(mut self, origin: Option<String>) -> Self {
        self.issued_by = origin;
        self
    }

    /// Whether `other` holds the same token, issued at the same time: the compare of a
    /// compare-and-swap (a refresh writes only over the token it refreshed).
    pub fn same_token(&self, other: &TokenRecord) -> bool {
        self.user_id == other.user_id
            && self.issued_at == other.issued_at
            && self.access_token.expose_secret() == other.access_token.expose_secret()
    }

    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires_at.to_system_time()
    }

    /// How old the token is at `now` (zero if issued in the future, e.g. after clock skew).
    pub fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.issued_at.to_system_time())
            .unwrap_or_default()
    }

    /// The time left at `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.expires_at
            .to_system_time()
            .duration_since(now)
            .unwrap_or_default()
    }

    /// Whether Instagram would accept a refresh of this token at `now`; the local refusal
    /// otherwise: not long-lived, expired, or younger than 24 hours.
    ///
    /// # Errors
    ///
    /// [`TokenError::NotLongLived`], [`TokenError::Expired`] or [`TokenError::TooEarly`].
    pub fn check_refreshable(&self, now: SystemTime) -> Result<(), TokenError> {
        if self.kind != TokenKind::LongLived {
            return Err(TokenError::NotLongLived);
        }
        if self.is_expired(now) {
            return Err(TokenError::Expired {
                expired_at: self.expires_at,
            });
        }
        let issued = self.issued_at.to_system_time();
        let ready_at = issued.checked_add(MIN_AGE_BEFORE_REFRESH).unwrap_or(issued);
        if now < ready_at {
            return Err(TokenError::TooEarly {
                ready_at: Timestamp::from_system_time(ready_at),
            });
        }
        Ok(())
    }
}

/// When a long-lived token is refreshed: the one rule of igdisplay, asked by the
/// [`TokenManager`](crate::TokenManager) for one user and by the fleet's keeper for a million.
///
/// - **Day 20 of 60.** A token is due `refresh_after` its issue (default 20 days), so a
///   60-day token has 40 days of retries left if Instagram is down or the refresh keeps
///   failing; never before Instagram allows it (24 hours old).
/// - **Failure backoff.** A refresh that failed for a passing reason is tried again after a
///   capped exponential backoff with jitter, counted in failures in a row (default: from 5
///   minutes up to 6 hours), never less than a tenth of its ceiling, so a burst of failures
///   spreads out.
/// - **Last chance.** Neither the schedule nor a backoff ever puts a refresh later than
///   `last_chance` before the expiry (default one hour), and a token within `expiry_margin` of
///   its expiry (default 60 seconds, for clock skew and the request's own time) counts as
///   expired: it is never sent.
///
/// ```
/// use igdisplay_auth::{LONG_LIVED, Platform, RefreshSchedule, TokenKind, TokenRecord};
/// use igdisplay_model::{AccessToken, UserId};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// const DAY: Duration = Duration::from_secs(86_400);
/// let issued = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let token = TokenRecord::long_lived(UserId::new("1784"), AccessToken::new("IGAA…"),
///     Platform::InstagramLogin, issued);
/// let schedule = RefreshSchedule::default();
/// assert!(!schedule.is_due(&token, issued + 19 * DAY));
/// assert!(schedule.is_due(&token, issued + 20 * DAY));
/// assert_eq!(schedule.next_refresh(&token).map(|t| t.unix()), Some(1_800_000_000 + 20 * 86_400));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshSchedule {
    /// How long after its issue a token is refreshed. Default 20 days.
    pub refresh_after: Duration,
    /// The backoff of failed refreshes, counted in failures in a row. Default: from 5 minutes
    /// up to 6 hours.
    pub failure_backoff: RetryPolicy,
    /// The latest a refresh is ever put, before the expiry. Default one hour.
    pub last_chance: Duration,
    /// A token this close to its expiry counts as expired. Default 60 seconds.
    pub expiry_margin: Duration,
}

impl Default for RefreshSchedule {
    fn default() -> Self {
        Self {
            refresh_after: Duration::from_secs(20 * 24 * 60 * 60),
            failure_backoff: RetryPolicy::default()
                .base_delay(Duration::from_secs(5 * 60))
                .max_delay(Duration::from_secs(6 * 60 * 60)),
            last_chance: Duration::from_secs(60 * 60),
            expiry_margin: Duration::from_secs(60),
        }
    }
}

impl RefreshSchedule {
    /// Sets how long after its issue a token is refreshed.
    #[must_use]
    pub fn refresh_after(mut self, after: Duration) -> Self {
        self.refresh_after = after;
        self
    }

    /// Sets the backoff of failed refreshes.
    #[must_use]
    pub fn failure_backoff(mut self, backoff: RetryPolicy) -> Self {
        self.failure_backoff = backoff;
        self
    }

    /// Sets the clock-skew margin.
    #[must_use]
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// When `token` is due for a refresh; `None` for a token that cannot be refreshed (a
    /// short-lived one). Between a day after its issue and `last_chance` before its expiry.
    pub fn next_refresh(&self, token: &TokenRecord) -> Option<Timestamp> {
        if token.kind != TokenKind::LongLived {
            return None;
        }
        let issued = token.issued_at.unix();
        let earliest = issued.saturating_add(seconds(MIN_AGE_BEFORE_REFRESH));
        let latest = token
            .expires_at
            .unix()
            .saturating_sub(seconds(self.last_chance))
            .max(earliest);
        Some(Timestamp::from_unix(
            issued
                .saturating_add(seconds(self.refresh_after))
                .clamp(earliest, latest),
        ))
    }

    /// Whether `token` counts as expired at `now`, margin included.
    pub fn is_expired(&self, token: &TokenRecord, now: SystemTime) -> bool {
        token.is_expired(now.checked_add(self.expiry_margin).unwrap_or(now))
    }

    /// Whether `token` should be refreshed at `now`: refreshable, unexpired and past its
    /// [`next_refresh`](Self::next_refresh).
    pub fn is_due(&self, token: &TokenRecord, now: SystemTime) -> bool {
        !self.is_expired(token, now)
            && self
                .next_refresh(token)
                .is_some_and(|due| Timestamp::from_system_time(now).unix() >= due.unix())
    }

    /// When to try again after the `failures`-th refresh in a row failed at `now` (Unix
    /// seconds) for a token expiring at `expires_at`: the backoff with jitter, never later
    /// than the last chance and never sooner than a minute.
    pub fn retry_after_failure(&self, failures: u32, expires_at: i64, now: i64, jitter: &Jitter) -> i64 {
        let backoff = &self.failure_backoff;
        let wait = (backoff.ceiling(failures) / 10).saturating_add(backoff.backoff(failures, jitter));
        let last_chance = expires_at
            .saturating_sub(seconds(self.last_chance))
            .max(now.saturating_add(60));
        now.saturating_add(seconds(wait)).min(last_chance)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const DAY: Duration = Duration::from_secs(86_400);

    fn long_lived(issued: SystemTime) -> TokenRecord {
        TokenRecord::long_lived(
            UserId::new("1"),
            AccessToken::new("t"),
            Platform::InstagramLogin,
            issued,
        )
    }

    #[test]
    fn refresh_is_refused_locally_when_too_young_expired_or_short_lived() {
        let issued = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = long_lived(issued);
        let too_early = token
            .check_refreshable(issued + Duration::from_secs(23 * 3600))
            .unwrap_err();
        assert!(
            matches!(too_early, TokenError::TooEarly { ready_at } if ready_at.to_system_time() == issued + DAY)
        );
        assert!(token.check_refreshable(issued + DAY).is_ok());
        let expired = token.check_refreshable(issued + LONG_LIVED).unwrap_err();
        assert!(matches!(expired, TokenError::Expired { .. }));
        assert!(expired.requires_reauthorization());
        let mut short = token.clone();
        short.kind = TokenKind::ShortLived;
        assert!(matches!(
            short.check_refreshable(issued + DAY),
            Err(TokenError::NotLongLived)
        ));
    }

    #[test]
    fn a_sixty_day_token_is_due_on_day_twenty_and_never_after_its_expiry() {
        let issued = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = long_lived(issued);
        let schedule = RefreshSchedule::default();
        assert!(!schedule.is_due(&token, issued + 20 * DAY - Duration::from_secs(1)));
        assert!(schedule.is_due(&token, issued + 20 * DAY));
        assert!(schedule.is_due(&token, issued + LONG_LIVED - Duration::from_secs(61)));
        assert!(!schedule.is_due(&token, issued + LONG_LIVED - Duration::from_secs(59)));
        assert!(schedule.is_expired(&token, issued + LONG_LIVED - Duration::from_secs(59)));
    }

    #[test]
    fn the_schedule_stays_between_a_day_after_issue_and_the_last_chance() {
        let issued = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = long_lived(issued);
        let late = RefreshSchedule::default().refresh_after(90 * DAY);
        let early = RefreshSchedule::default().refresh_after(Duration::ZERO);
        assert_eq!(
            late.next_refresh(&token).map(Timestamp::unix),
            Some(1_000_000 + 60 * 86_400 - 3600)
        );
        assert_eq!(
            early.next_refresh(&token).map(Timestamp::unix),
            Some(1_000_000 + 86_400)
        );
        assert!(
            !early.is_due(&token, issued + Duration::from_secs(3600)),
            "never under a day old"
        );
    }

    #[test]
    fn a_short_lived_token_is_never_scheduled() {
        let mut token = long_lived(UNIX_EPOCH + Duration::from_secs(1_000_000));
        token.kind = TokenKind::ShortLived;
        assert_eq!(RefreshSchedule::default().next_refresh(&token), None);
        assert!(!RefreshSchedule::default().is_due(&token, UNIX_EPOCH + Duration::from_secs(9_000_000)));
    }

    #[test]
    fn a_failure_is_retried_with_growing_backoff_but_never_past_the_last_chance() {
        let schedule = RefreshSchedule::default();
        let jitter = Jitter::seeded(3);
        let now = 1_000_000;
        let far = now + 50 * 86_400;
        let first = schedule.retry_after_failure(1, far, now, &jitter) - now;
        assert!((30..=330).contains(&first), "{first}");
        let tenth = schedule.retry_after_failure(10, far, now, &jitter) - now;
        assert!((2160..=6 * 3600 + 2160).contains(&tenth), "{tenth}");
        // Two hours left: the retry is at the last chance, an hour before the expiry.
        assert_eq!(
            schedule.retry_after_failure(10, now + 7200, now, &jitter),
            now + 3600
        );
        // Less than the last chance left: a minute from now, not in the past.
        assert_eq!(
            schedule.retry_after_failure(10, now + 600, now, &jitter),
            now + 60
        );
    }

    #[test]
    fn age_and_remaining_saturate() {
        let issued = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = long_lived(issued);
        assert_eq!(token.age(issued - DAY), Duration::ZERO);
        assert_eq!(token.remaining(issued + LONG_LIVED + DAY), Duration::ZERO);
        assert!(!format!("{token:?}").contains("\"t\""));
    }
}

//! Tokens with absolute lifetimes, and the rules for refreshing them.

use crate::{Platform, TokenError};
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

    /// The record with [`issued_by`](Self::issued_by) set: for a token imported from a mock or
    /// another stand-in, its origin.
    #[must_use]
    pub fn issued_by(mut self, origin: Option<String>) -> Self {
        self.issued_by = origin;
        self
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

/// When the token manager refreshes a long-lived token on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshPolicy {
    /// Refresh once the token has less than this left. Default 10 days.
    pub refresh_within: Duration,
    /// Never refresh a younger token (Instagram refuses under 24 hours). Default 24 hours.
    pub min_age: Duration,
    /// Treat a token as expired this long before its expiry, to absorb clock skew and the
    /// time a request takes. Default 60 seconds.
    pub expiry_margin: Duration,
    /// After a failed refresh, wait this long before trying again (the old token is still
    /// handed out meanwhile). Default 5 minutes.
    pub retry_after_failure: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            refresh_within: Duration::from_secs(10 * 24 * 60 * 60),
            min_age: MIN_AGE_BEFORE_REFRESH,
            expiry_margin: Duration::from_secs(60),
            retry_after_failure: Duration::from_secs(5 * 60),
        }
    }
}

impl RefreshPolicy {
    /// Sets how long before expiry a refresh happens.
    #[must_use]
    pub fn refresh_within(mut self, window: Duration) -> Self {
        self.refresh_within = window;
        self
    }

    /// Sets the clock-skew margin.
    #[must_use]
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// Whether `token` counts as expired at `now`, margin included.
    pub fn is_expired(&self, token: &TokenRecord, now: SystemTime) -> bool {
        token.is_expired(now.checked_add(self.expiry_margin).unwrap_or(now))
    }

    /// Whether `token` should be refreshed at `now`: long-lived, old enough, not expired,
    /// and within the refresh window.
    pub fn is_due(&self, token: &TokenRecord, now: SystemTime) -> bool {
        token.kind == TokenKind::LongLived
            && !self.is_expired(token, now)
            && token.age(now) >= self.min_age.max(MIN_AGE_BEFORE_REFRESH)
            && token.remaining(now) <= self.refresh_within
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const DAY: Duration = Duration::from_secs(86_400);

    fn long_lived(issued: SystemTime) -> TokenRecord {
        TokenRecord::new(
            UserId::new("1"),
            AccessToken::new("t"),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            issued,
            LONG_LIVED,
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
    fn the_default_policy_refreshes_in_the_last_ten_days_only() {
        let issued = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = long_lived(issued);
        let policy = RefreshPolicy::default();
        assert!(!policy.is_due(&token, issued + 49 * DAY));
        assert!(policy.is_due(&token, issued + 50 * DAY));
        assert!(policy.is_due(&token, issued + LONG_LIVED - Duration::from_secs(61)));
        assert!(!policy.is_due(&token, issued + LONG_LIVED - Duration::from_secs(59)));
        assert!(policy.is_expired(&token, issued + LONG_LIVED - Duration::from_secs(59)));
        // Even a window of 60 days never refreshes a token younger than a day.
        let eager = policy.refresh_within(LONG_LIVED);
        assert!(!eager.is_due(&token, issued + Duration::from_secs(3600)));
        assert!(eager.is_due(&token, issued + DAY));
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

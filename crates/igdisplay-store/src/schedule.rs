//! When a stored token is refreshed, and the states an account goes through.

use igdisplay_auth::{MIN_AGE_BEFORE_REFRESH, TokenKind, TokenRecord};
use std::time::Duration;

/// When the keeper refreshes a long-lived token: `refresh_after` its issue (default 20 days,
/// so a 60-day token has 40 days of retries left if Instagram is down or the refresh keeps
/// failing), never before Instagram allows (24 hours) and never after the hour before expiry.
///
/// ```
/// use igdisplay_store::RefreshSchedule;
/// use std::time::Duration;
///
/// let every_ten_days = RefreshSchedule::default().refresh_after(Duration::from_secs(10 * 86_400));
/// assert_eq!(every_ten_days.refresh_after, Duration::from_secs(10 * 86_400));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshSchedule {
    /// How long after its issue a token is refreshed. Default 20 days.
    pub refresh_after: Duration,
}

impl Default for RefreshSchedule {
    fn default() -> Self {
        Self {
            refresh_after: Duration::from_secs(20 * 86_400),
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

    /// When `record` is due for a refresh, in Unix seconds; `None` for a token that cannot be
    /// refreshed (a short-lived one).
    pub fn next_refresh(&self, record: &TokenRecord) -> Option<i64> {
        if record.kind != TokenKind::LongLived {
            return None;
        }
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let issued = record.issued_at.unix();
        let earliest = issued.saturating_add(seconds(MIN_AGE_BEFORE_REFRESH));
        let latest = record.expires_at.unix().saturating_sub(3600).max(earliest);
        Some(
            issued
                .saturating_add(seconds(self.refresh_after))
                .clamp(earliest, latest),
        )
    }
}

/// Where an account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccountState {
    /// The token works and its refresh is scheduled.
    Active,
    /// The last refresh failed for a passing reason (network, Instagram down); it is retried
    /// with backoff while the token is still valid.
    Failing,
    /// Instagram refused the token (error 190: password changed, app removed, account
    /// checkpointed): never retried; the user must log in again.
    Revoked,
    /// The token expired before it could be refreshed; the user must log in again.
    Expired,
    /// The user removed the app (the deauthorize callback): the token is erased.
    Deauthorized,
}

impl AccountState {
    /// Every state, in order.
    pub const ALL: [AccountState; 5] = [
        AccountState::Active,
        AccountState::Failing,
        AccountState::Revoked,
        AccountState::Expired,
        AccountState::Deauthorized,
    ];

    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Active => "active",
            AccountState::Failing => "failing",
            AccountState::Revoked => "revoked",
            AccountState::Expired => "expired",
            AccountState::Deauthorized => "deauthorized",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the user must log in again for this account to work.
    pub fn needs_login(self) -> bool {
        matches!(
            self,
            AccountState::Revoked | AccountState::Expired | AccountState::Deauthorized
        )
    }
}

impl std::fmt::Display for AccountState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use igdisplay_auth::{LONG_LIVED, Platform, SHORT_LIVED};
    use igdisplay_model::{AccessToken, UserId};
    use std::time::UNIX_EPOCH;

    fn record(kind: TokenKind, lifetime: Duration) -> TokenRecord {
        TokenRecord::new(
            UserId::new("1"),
            AccessToken::new("t"),
            kind,
            Platform::InstagramLogin,
            UNIX_EPOCH + Duration::from_secs(1_000_000),
            lifetime,
        )
    }

    #[test]
    fn a_sixty_day_token_is_refreshed_on_day_twenty() {
        let next = RefreshSchedule::default().next_refresh(&record(TokenKind::LongLived, LONG_LIVED));
        assert_eq!(next, Some(1_000_000 + 20 * 86_400));
    }

    #[test]
    fn the_schedule_stays_between_a_day_after_issue_and_an_hour_before_expiry() {
        let late = RefreshSchedule::default().refresh_after(Duration::from_secs(90 * 86_400));
        let early = RefreshSchedule::default().refresh_after(Duration::ZERO);
        let token = record(TokenKind::LongLived, LONG_LIVED);
        assert_eq!(late.next_refresh(&token), Some(1_000_000 + 60 * 86_400 - 3600));
        assert_eq!(early.next_refresh(&token), Some(1_000_000 + 86_400));
    }

    #[test]
    fn a_short_lived_token_is_never_scheduled() {
        let token = record(TokenKind::ShortLived, SHORT_LIVED);
        assert_eq!(RefreshSchedule::default().next_refresh(&token), None);
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for state in AccountState::ALL {
            assert_eq!(AccountState::parse(state.as_str()), Some(state));
        }
        assert_eq!(AccountState::parse("asleep"), None);
    }
}

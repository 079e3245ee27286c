//! [`Event`]: what happened to an account, for the application to act on.

use crate::schedule::AccountState;
use igdisplay_model::{Timestamp, UserId};

/// What happened to an account. Serialized (for a webhook or a log) as JSON with a `type`
/// field: `{"type":"revoked","user_id":"1784…","at":"2026-12-02T08:00:00+0000"}`. Never holds a
/// token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The token was refreshed; the new one expires at `expires_at`.
    Refreshed {
        /// Whose token.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
        /// When the new token expires.
        expires_at: Timestamp,
    },
    /// The token was refreshed after `failures` failed attempts.
    Recovered {
        /// Whose token.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
        /// When the new token expires.
        expires_at: Timestamp,
        /// How many refreshes had failed in a row.
        failures: u32,
    },
    /// A refresh failed and the token expires soon: ask the user to log in again before the
    /// feed stops. Sent at each failure inside the warning window.
    ExpiringSoon {
        /// Whose token.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
        /// When the token expires.
        expires_at: Timestamp,
        /// Refreshes failed in a row.
        failures: u32,
    },
    /// Instagram refused the token (error 190: the password changed, the app was removed):
    /// the user must log in again. Never retried.
    Revoked {
        /// Whose token.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
    },
    /// The token expired before a refresh succeeded: the user must log in again.
    Expired {
        /// Whose token.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
        /// When it expired.
        expired_at: Timestamp,
    },
    /// The user removed the app (the deauthorize callback); the token was erased.
    Deauthorized {
        /// Whose account.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
    },
    /// The user asked for their data to be deleted (the data-deletion callback); the account
    /// was deleted from the store. Delete the rest of their data, then mark
    /// `confirmation_code` done on the status page.
    DeletionRequested {
        /// Whose account.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
        /// The code given to Meta for the status page.
        confirmation_code: String,
    },
}

impl Event {
    /// Whose account the event is about.
    pub fn user_id(&self) -> &UserId {
        match self {
            Event::Refreshed { user_id, .. }
            | Event::Recovered { user_id, .. }
            | Event::ExpiringSoon { user_id, .. }
            | Event::Revoked { user_id, .. }
            | Event::Expired { user_id, .. }
            | Event::Deauthorized { user_id, .. }
            | Event::DeletionRequested { user_id, .. } => user_id,
        }
    }

    /// The event's `type` as serialized (`refreshed`, `revoked`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Refreshed { .. } => "refreshed",
            Event::Recovered { .. } => "recovered",
            Event::ExpiringSoon { .. } => "expiring_soon",
            Event::Revoked { .. } => "revoked",
            Event::Expired { .. } => "expired",
            Event::Deauthorized { .. } => "deauthorized",
            Event::DeletionRequested { .. } => "deletion_requested",
        }
    }

    /// The state the account is in after this event (`None`: deleted).
    pub fn state(&self) -> Option<AccountState> {
        match self {
            Event::Refreshed { .. } | Event::Recovered { .. } => Some(AccountState::Active),
            Event::ExpiringSoon { .. } => Some(AccountState::Failing),
            Event::Revoked { .. } => Some(AccountState::Revoked),
            Event::Expired { .. } => Some(AccountState::Expired),
            Event::Deauthorized { .. } => Some(AccountState::Deauthorized),
            Event::DeletionRequested { .. } => None,
        }
    }
}

/// Where events go: a broadcast channel any number of receivers subscribe to. A receiver
/// that falls more than `capacity` events behind skips the oldest (and is told how many, by
/// `RecvError::Lagged`); events are never buffered without bound.
#[derive(Clone, Debug)]
pub struct Events {
    sender: tokio::sync::broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Self::with_capacity(4096)
    }
}

impl Events {
    /// A channel keeping up to `capacity` (at least 1) events per slow receiver.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            sender: tokio::sync::broadcast::channel(capacity.max(1)).0,
        }
    }

    /// A new receiver of every event sent from now on.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// Sends `event` to every receiver (nobody listening is fine).
    pub fn send(&self, event: Event) {
        tracing::debug!(user = %event.user_id(), kind = event.kind(), "account event");
        let _ = self.sender.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_their_type_and_no_token() {
        let event = Event::Revoked {
            user_id: UserId::new("1784"),
            at: Timestamp::from_unix(1_800_000_000),
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"type":"revoked","user_id":"1784","at":"2027-01-15T08:00:00+0000"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
        assert_eq!(event.kind(), "revoked");
    }
}

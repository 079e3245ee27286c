//! [`Event`]: what happened to an account, for the application to act on, and the outbox
//! they are kept in until delivered ([`Events`], [`OutboxEvent`]).

use crate::error::Error;
use crate::repo::{Accounts, EventRow};
use crate::schedule::AccountState;
use igdisplay_http::SharedClock;
use igdisplay_model::{Timestamp, UserId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

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
    /// A feed's sync found the account's token refused (igdisplay-feeds): the account is
    /// marked revoked and its feeds keep their last good posts, saying `needs_login`, until
    /// its owner connects it again. The feed service's form of [`Event::Revoked`].
    NeedsLogin {
        /// Whose account.
        user_id: UserId,
        /// When it happened.
        at: Timestamp,
        /// The feeds that show the account.
        feeds: Vec<String>,
        /// What Instagram answered.
        reason: String,
    },
    /// Meta delivered a webhook notification for the account (a comment, a mention, a
    /// message, ...): kept in the outbox before Meta's delivery was acknowledged, in the order
    /// received, and delivered to the application like every event. The account's state is
    /// unchanged.
    InstagramNotification {
        /// Whose account (the professional id Meta names).
        user_id: UserId,
        /// When it was received.
        at: Timestamp,
        /// What Meta sent for the account.
        entry: Box<igdisplay_model::WebhookEntry>,
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
            | Event::DeletionRequested { user_id, .. }
            | Event::NeedsLogin { user_id, .. }
            | Event::InstagramNotification { user_id, .. } => user_id,
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
            Event::NeedsLogin { .. } => "needs_login",
            Event::InstagramNotification { .. } => "instagram_notification",
        }
    }

    /// The state the account is in after this event (`None`: deleted, or a notification,
    /// which changes no state: see [`changes_state`](Self::changes_state)).
    pub fn state(&self) -> Option<AccountState> {
        match self {
            Event::Refreshed { .. } | Event::Recovered { .. } => Some(AccountState::Active),
            Event::ExpiringSoon { .. } => Some(AccountState::Failing),
            Event::Revoked { .. } | Event::NeedsLogin { .. } => Some(AccountState::Revoked),
            Event::Expired { .. } => Some(AccountState::Expired),
            Event::Deauthorized { .. } => Some(AccountState::Deauthorized),
            Event::DeletionRequested { .. } | Event::InstagramNotification { .. } => None,
        }
    }

    /// Whether the event is about the account's state (every one but a notification).
    pub fn changes_state(&self) -> bool {
        !matches!(self, Event::InstagramNotification { .. })
    }
}

/// Where an outbox event stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventState {
    /// Not delivered to the webhook yet (or no webhook is configured).
    Pending,
    /// Delivered to the webhook.
    Delivered,
    /// Delivery was given up after its window (default 3 days); kept, and sent again by
    /// [`SqlStore::resend_event`](crate::SqlStore::resend_event) (`igdisplay events resend ID`).
    Dead,
}

impl EventState {
    /// The name stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivered => "delivered",
            EventState::Dead => "dead",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [EventState::Pending, EventState::Delivered, EventState::Dead]
            .into_iter()
            .find(|state| state.as_str() == name)
    }
}

impl std::fmt::Display for EventState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as the outbox keeps it: its id (unique in the store, growing with each event:
/// what a webhook receiver deduplicates on), the event, and its delivery.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct OutboxEvent {
    /// The event's id in the outbox.
    pub id: i64,
    /// What happened.
    pub event: Event,
    /// Where its delivery stands.
    pub state: EventState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was written (the database's time).
    pub created_at: Timestamp,
    /// Why the last delivery failed, if it did.
    pub last_error: Option<String>,
}

impl OutboxEvent {
    /// An outbox row; a row this version cannot read is [`Error::Corrupt`].
    pub(crate) fn from_row(row: EventRow) -> Result<Self, Error> {
        let corrupt = |source| Error::Corrupt {
            user_id: row.user_id.clone(),
            source,
        };
        let event: Event = serde_json::from_str(&row.body).map_err(corrupt)?;
        let state = EventState::parse(&row.state)
            .ok_or_else(|| corrupt(serde::de::Error::custom("unknown event state")))?;
        Ok(Self {
            id: row.id,
            event,
            state,
            attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
            created_at: Timestamp::from_unix(row.created_at),
            last_error: row.last_error,
        })
    }
}

/// The events of a store, read from its outbox: every state change is written there in its
/// own transaction, by whichever instance made it. Cheap to clone; from
/// [`SqlStore::events`](crate::SqlStore::events).
#[derive(Clone, Debug)]
pub struct Events {
    accounts: Accounts,
    clock: SharedClock,
    written: Arc<Notify>,
    poll: Duration,
}

impl Events {
    pub(crate) fn new(accounts: Accounts, clock: SharedClock, written: Arc<Notify>) -> Self {
        Self {
            accounts,
            clock,
            written,
            poll: Duration::from_secs(1),
        }
    }

    /// Looks for other instances' events this often while waiting (default every second);
    /// this process's own are seen at once.
    #[must_use]
    pub fn poll_every(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(10));
        self
    }

    /// A subscription to every event written after this call, from any instance. It reads
    /// the outbox from its last id, so a subscriber that falls behind loses nothing (as long
    /// as it comes back within the outbox's retention, default 7 days).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn subscribe(&self) -> Result<Subscription, Error> {
        let (last, _) = self.accounts.last_event().await?;
        Ok(self.subscribe_after(last))
    }

    /// A subscription to every event after `id` (a subscriber that stored the last id it
    /// handled resumes from it).
    pub fn subscribe_after(&self, id: i64) -> Subscription {
        Subscription {
            events: self.clone(),
            last: id,
            gaps: BTreeMap::new(),
            buffered: std::collections::VecDeque::new(),
        }
    }
}

/// How long a gap in the outbox's ids is watched for an event committed late.
const GAP_WATCH: i64 = 60;
/// How many gaps are watched at once.
const MAX_GAPS: usize = 10_000;

/// A reader of the outbox from its last id ([`Events::subscribe`]).
///
/// PostgreSQL hands out ids when a transaction inserts, not when it commits, so a transaction
/// that commits late can show an id lower than one already read: the subscription remembers
/// such gaps for a minute and reads them again, so that event is not skipped.
#[derive(Debug)]
pub struct Subscription {
    events: Events,
    last: i64,
    /// Ids skipped over, with the (instance's) time they were first seen missing.
    gaps: BTreeMap<i64, i64>,
    buffered: std::collections::VecDeque<OutboxEvent>,
}

impl Subscription {
    /// The next event, waiting for one.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::Corrupt`]; the subscription stays usable.
    pub async fn next(&mut self) -> Result<OutboxEvent, Error> {
        let written_by_us = self.events.written.clone();
        loop {
            let written = written_by_us.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if let Some(event) = self.try_next().await? {
                return Ok(event);
            }
            let (clock, poll) = (self.events.clock.clone(), self.events.poll);
            tokio::select! {
                () = written => {}
                () = clock.sleep(poll) => {}
            }
        }
    }

    /// The next event if one is there, without waiting.
    ///
    /// # Errors
    ///
    /// As [`next`](Self::next).
    pub async fn try_next(&mut self) -> Result<Option<OutboxEvent>, Error> {
        if self.buffered.is_empty() {
            self.fill().await?;
        }
        Ok(self.buffered.pop_front())
    }

    /// The id of the last event read.
    pub fn last_id(&self) -> i64 {
        self.last
    }

    async fn fill(&mut self) -> Result<(), Error> {
        let accounts = &self.events.accounts;
        let now = Timestamp::from_system_time(self.events.clock.now()).unix();
        if !self.gaps.is_empty() {
            let watched: Vec<i64> = self.gaps.keys().copied().collect();
            for row in accounts.events_by_id(&watched).await? {
                self.gaps.remove(&row.id);
                self.buffered.push_back(OutboxEvent::from_row(row)?);
            }
            self.gaps.retain(|_, seen| now.saturating_sub(*seen) < GAP_WATCH);
        }
        let rows = accounts.events(None, self.last, 500).await?;
        for row in rows {
            let mut missing = self.last.saturating_add(1);
            while missing < row.id && self.gaps.len() < MAX_GAPS {
                self.gaps.insert(missing, now);
                missing = missing.saturating_add(1);
            }
            self.last = row.id;
            self.buffered.push_back(OutboxEvent::from_row(row)?);
        }
        Ok(())
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

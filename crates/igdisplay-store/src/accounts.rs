//! What a fleet needs beyond [`TokenStore`](igdisplay_auth::TokenStore): the accounts with
//! their state, the callbacks' state changes, re-sealing under a new key, the outbox's
//! events, and the figures an operator watches. No SQL here: the statements are the
//! repository's ([`crate::repo`]).

use crate::error::Error;
use crate::events::{Event, EventState, OutboxEvent};
use crate::repo::SummaryRow;
use crate::schedule::AccountState;
use crate::store::SqlStore;
use igdisplay_auth::SignedRequest;
use igdisplay_model::{Timestamp, UserId};
use std::collections::BTreeMap;

/// An account as listed: its state and schedule, never its token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AccountSummary {
    /// Whose account.
    pub user_id: UserId,
    /// Where it stands.
    pub state: AccountState,
    /// When its token was issued.
    pub issued_at: Timestamp,
    /// When its token expires.
    pub expires_at: Timestamp,
    /// When the keeper refreshes it next (`None`: never, the user must log in again).
    pub next_refresh_at: Option<Timestamp>,
    /// Refreshes failed in a row.
    pub failures: u32,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<String>,
    /// The id of the key its token is sealed with.
    pub key_id: String,
    /// The keeper instance holding its lease, while one does.
    pub leased_by: Option<String>,
}

/// Which of Meta's callbacks a verified `signed_request` came with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetaCallback {
    /// The user removed the app: the token is erased, the account kept as deauthorized.
    Deauthorize,
    /// The user asked for their data to be deleted: the account is deleted.
    DataDeletion {
        /// The confirmation code answered to Meta (for the status page).
        confirmation_code: String,
    },
}

/// What one pass of [`SqlStore::rotate_keys`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Rotation {
    /// Tokens sealed again under the current key.
    pub resealed: u64,
    /// Tokens still sealed under an older key (rows written meanwhile are sealed under the
    /// current key anyway); zero when the rotation is complete.
    pub remaining: u64,
}

impl SqlStore {
    /// One page of accounts in user id order, after `after` (the last id of the previous
    /// page; `None` for the first), at most `limit`: a fleet of a million is listed page by
    /// page in constant memory.
    ///
    /// # Errors
    ///
    /// [`Error::Database`], or [`Error::Corrupt`] for a row this version cannot read.
    pub async fn list(&self, after: Option<&UserId>, limit: u32) -> Result<Vec<AccountSummary>, Error> {
        let rows = self
            .accounts
            .list(after.map_or("", UserId::as_str), limit)
            .await?;
        rows.into_iter().map(summary).collect()
    }

    /// The accounts whose data was deleted at their request (the tombstones kept for the
    /// retention): what a mirror or a cache of them must purge.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn deleted_users(&self) -> Result<Vec<UserId>, Error> {
        Ok(self
            .accounts
            .deleted_users()
            .await?
            .into_iter()
            .map(UserId::new)
            .collect())
    }

    /// How many accounts are in each state (every state is listed, zeros included).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn counts(&self) -> Result<BTreeMap<AccountState, u64>, Error> {
        Ok(counts(self.accounts.counts().await?))
    }

    /// The user removed the app (a verified deauthorize `signed_request`): the token is
    /// erased, the account is [`AccountState::Deauthorized`] and is never refreshed again
    /// (only a new login makes it active), and [`Event::Deauthorized`] is written to the
    /// outbox in the same transaction. Returns the event, or `None` for an account that was
    /// unknown or deauthorized already (nothing is written).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn deauthorize(&self, user: &UserId) -> Result<Option<Event>, Error> {
        let event = self.accounts.deauthorize(user).await?;
        if event.is_some() {
            self.wrote_event();
        }
        Ok(event)
    }

    /// The user asked for their data to be deleted (a verified data-deletion
    /// `signed_request`): the account's row is deleted, a tombstone (its id and the time,
    /// nothing else) keeps any write racing the deletion (a refresh, a login begun before it)
    /// from bringing it back, and [`Event::DeletionRequested`] is written to the outbox, all in
    /// one transaction. Returns the event.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn delete_account(&self, user: &UserId, confirmation_code: &str) -> Result<Event, Error> {
        let event = self.accounts.delete(user, confirmation_code).await?;
        self.wrote_event();
        Ok(event)
    }

    /// Applies Meta's deauthorize or data-deletion callback, whose `signed_request` the
    /// caller verified ([`verify_fresh_signed_request`](igdisplay_auth::verify_fresh_signed_request)),
    /// and writes its event to the outbox in the same transaction. Applying the same
    /// callback twice is harmless. Returns the event written (`None`: a deauthorize for an
    /// account unknown or deauthorized already).
    ///
    /// ```
    /// use igdisplay_auth::{Platform, SignedRequest, TokenKind, TokenRecord, TokenStore, sign_signed_request,
    ///     verify_signed_request};
    /// use igdisplay_model::{AccessToken, AppSecret, UserId};
    /// use igdisplay_store::{AccountState, Event, Key, KeyRing, MetaCallback, SqlStore};
    /// use std::time::{Duration, SystemTime};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let store = SqlStore::sqlite(&dir.path().join("accounts.db"), KeyRing::new(Key::generate("k1")?)).await?;
    /// store.save(&TokenRecord::long_lived(UserId::new("1784"), AccessToken::new("IGAAsecret"),
    ///     Platform::InstagramLogin, SystemTime::now())).await?;
    ///
    /// // What Meta posts to the deauthorize callback, verified with the app secret.
    /// let secret = AppSecret::new("app-secret");
    /// let posted = sign_signed_request(&secret, r#"{"user_id":"1784","algorithm":"HMAC-SHA256"}"#);
    /// let request = verify_signed_request(&secret, &posted)?;
    /// let event = store.apply_callback(&request, MetaCallback::Deauthorize).await?;
    /// assert!(matches!(event, Some(Event::Deauthorized { .. })));
    /// assert!(store.load(&UserId::new("1784")).await.is_err(), "its user must log in again");
    /// assert_eq!(store.counts().await?[&AccountState::Deauthorized], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn apply_callback(
        &self,
        request: &SignedRequest,
        callback: MetaCallback,
    ) -> Result<Option<Event>, Error> {
        match callback {
            MetaCallback::Deauthorize => self.deauthorize(&request.user_id).await,
            MetaCallback::DataDeletion { confirmation_code } => self
                .delete_account(&request.user_id, &confirmation_code)
                .await
                .map(Some),
        }
    }

    /// Marks `user`'s account revoked because Instagram refused its token outside a refresh
    /// (a Graph call or a media sync answered error 190): it is never refreshed again until a
    /// new login, and [`Event::Revoked`] is written to the outbox. Returns the event, or
    /// `None` when the account was not active or failing (unknown, or already marked).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn mark_revoked(&self, user: &UserId, reason: &str) -> Result<Option<Event>, Error> {
        let event = self.accounts.mark_revoked(user, reason).await?;
        if event.is_some() {
            self.wrote_event();
        }
        Ok(event)
    }

    /// Records the fleet's figures now as gauges of the `metrics` facade (what a Prometheus
    /// scrape shows): accounts by state, refreshes due, the outbox, the app's budget (the share
    /// Instagram last reported, and how long calls are held ahead), and the feed service's
    /// feeds by state and its syncs.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn record_metrics(&self) -> Result<(), Error> {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a gauge is an f64; counts stay far below 2^53"
        )]
        let gauge = |value: u64| value as f64;
        let stats = self.stats().await?;
        for (state, count) in &stats.states {
            metrics::gauge!("igdisplay_accounts", "state" => state.as_str()).set(gauge(*count));
        }
        metrics::gauge!("igdisplay_accounts_due").set(gauge(stats.due));
        metrics::gauge!("igdisplay_outbox_pending").set(gauge(stats.pending_events));
        metrics::gauge!("igdisplay_outbox_oldest_pending_seconds")
            .set(stats.oldest_pending_age.map_or(0.0, |age| age.as_secs_f64()));
        metrics::gauge!("igdisplay_outbox_dead").set(gauge(stats.dead_events));
        metrics::gauge!("igdisplay_app_budget_used_ratio")
            .set(stats.budget_used_percent.map_or(0.0, |p| f64::from(p) / 100.0));
        // How far ahead the app's calls are held for every instance: a pause Instagram
        // announced, or the quota booked ahead (refreshes and syncs together).
        let budget = self.accounts.budget().await?;
        let ahead = crate::budget::after(budget.blocked_until, budget.now)
            .max(crate::budget::after(budget.quota_tat, budget.now));
        metrics::gauge!("igdisplay_app_budget_held_seconds").set(ahead.as_secs_f64());
        let feeds = self.feed_stats().await?;
        for (state, count) in [
            ("pending", feeds.pending),
            ("fresh", feeds.fresh),
            ("stale", feeds.stale),
            ("needs_login", feeds.needs_login),
        ] {
            metrics::gauge!("igdisplay_feeds", "state" => state).set(gauge(count));
        }
        metrics::gauge!("igdisplay_feed_syncs_scheduled").set(gauge(feeds.scheduled));
        metrics::gauge!("igdisplay_feed_syncs_due").set(gauge(feeds.due));
        metrics::gauge!("igdisplay_feed_sync_oldest_due_seconds").set(gauge(feeds.oldest_due_seconds));
        Ok(())
    }

    /// Seals again, under the ring's current key, up to `batch` tokens sealed under an older
    /// one. Safe while keepers and logins write: a row is re-sealed only if its token is
    /// still the one read (a row written meanwhile is sealed under the current key anyway),
    /// and its version does not move, so no keeper loses a write to a rotation. Resumable:
    /// call it until [`Rotation::remaining`] is zero, from any instance, after any crash.
    ///
    /// ```
    /// use igdisplay_auth::{Platform, TokenKind, TokenRecord, TokenStore};
    /// use igdisplay_model::{AccessToken, UserId};
    /// use igdisplay_store::{Key, KeyRing, SqlStore};
    /// use std::time::{Duration, SystemTime};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("accounts.db");
    /// let (old, new) = (Key::generate("2026-06")?, Key::generate("2026-12")?);
    /// let store = SqlStore::sqlite(&path, KeyRing::new(old.clone())).await?;
    /// let record = TokenRecord::new(UserId::new("1784"), AccessToken::new("IGAAsecret"),
    ///     TokenKind::LongLived, Platform::InstagramLogin, SystemTime::now(), Duration::from_secs(60 * 86_400));
    /// store.save(&record).await?;
    ///
    /// // The new key seals; the old one still opens until the rotation is done.
    /// let store = SqlStore::sqlite(&path, KeyRing::new(new).with_previous(old)).await?;
    /// let pass = store.rotate_keys(1000).await?;
    /// assert_eq!((pass.resealed, pass.remaining), (1, 0));
    /// assert_eq!(store.account(&record.user_id).await?.unwrap().key_id, "2026-12");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when a token's key is not in the ring ([`KeyError::MissingKey`](crate::KeyError::MissingKey))
    /// or it does not open; [`Error::Database`].
    pub async fn rotate_keys(&self, batch: u32) -> Result<Rotation, Error> {
        let current = self.keys.current_id().to_owned();
        let rows = self.accounts.sealed_under_other_keys(&current, batch).await?;
        let mut pass = Rotation::default();
        for (user_id, sealed) in &rows {
            let token = self.keys.open(user_id, sealed)?;
            let resealed = self.keys.seal(user_id, &token)?;
            let done = self.accounts.reseal(user_id, sealed, resealed, &current).await?;
            pass.resealed = pass.resealed.saturating_add(done);
        }
        let remaining = self.accounts.count_under_other_keys(&current).await?;
        pass.remaining = u64::try_from(remaining).unwrap_or_default();
        Ok(pass)
    }

    /// Up to `limit` events of the outbox after `after` (an event id; 0 for the first), of
    /// `state` if given, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] or [`Error::Corrupt`].
    pub async fn list_events(
        &self,
        state: Option<EventState>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>, Error> {
        let rows = self
            .accounts
            .events(state.map(EventState::as_str), after, limit)
            .await?;
        rows.into_iter().map(OutboxEvent::from_row).collect()
    }

    /// Makes event `id` pending again, due now, its attempts forgotten: a dead event is sent
    /// again by the next delivery pass of any instance. Returns whether the event exists.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn resend_event(&self, id: i64) -> Result<bool, Error> {
        self.accounts.resend(id).await
    }

    /// The figures an operator watches, read from the database now: accounts by state, those
    /// due, the outbox's backlog, the age of its oldest pending event, dead events, and the
    /// share of the app's budget Instagram last reported.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn stats(&self) -> Result<FleetStats, Error> {
        let row = self.accounts.stats().await?;
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(FleetStats {
            states: counts(row.states),
            due: count(row.due),
            pending_events: count(row.pending),
            oldest_pending_age: row
                .oldest_pending
                .map(|created| std::time::Duration::from_secs(count(row.now.saturating_sub(created)))),
            dead_events: count(row.dead),
            budget_used_percent: row
                .usage_percent
                .map(|p| u8::try_from(p.clamp(0, 100)).unwrap_or(100)),
        })
    }

    /// Whether the database answers and its schema is the one this build knows: what a
    /// readiness check asks. `Ok(false)` for a schema older than this build's (another
    /// instance has not migrated it yet).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when the database does not answer; [`Error::SchemaTooNew`] when a
    /// newer igdisplay migrated it.
    pub async fn is_ready(&self) -> Result<bool, Error> {
        let found = self.accounts.schema_version().await?;
        let known = crate::schema::known(self.accounts.dialect());
        if found > known {
            return Err(Error::SchemaTooNew { found, known });
        }
        Ok(found == known)
    }
}

/// Counts by state name as counts by state: every state listed, zeros included; a state this
/// version does not know is left out.
fn counts(rows: Vec<(String, i64)>) -> BTreeMap<AccountState, u64> {
    let mut counts: BTreeMap<AccountState, u64> = AccountState::ALL.into_iter().map(|s| (s, 0)).collect();
    for (state, n) in rows {
        if let Some(state) = AccountState::parse(&state) {
            counts.insert(state, u64::try_from(n).unwrap_or_default());
        }
    }
    counts
}

/// What [`SqlStore::stats`] read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct FleetStats {
    /// Accounts in each state.
    pub states: BTreeMap<AccountState, u64>,
    /// Accounts due for a refresh now, leased or not.
    pub due: u64,
    /// Events not delivered yet.
    pub pending_events: u64,
    /// How long the oldest of them has waited.
    pub oldest_pending_age: Option<std::time::Duration>,
    /// Events whose delivery was given up.
    pub dead_events: u64,
    /// The share of the app's budget Instagram last reported, if it did.
    pub budget_used_percent: Option<u8>,
}

/// A listed row. Unknown states (a newer igdisplay's) and out-of-range numbers are
/// [`Error::Corrupt`], not a panic.
fn summary(row: SummaryRow) -> Result<AccountSummary, Error> {
    let corrupt = |what: &str| Error::Corrupt {
        user_id: row.user_id.clone(),
        source: serde::de::Error::custom(what),
    };
    let state = AccountState::parse(&row.state).ok_or_else(|| corrupt("unknown state"))?;
    let failures = u32::try_from(row.failures).map_err(|_| corrupt("failure count out of range"))?;
    Ok(AccountSummary {
        state,
        issued_at: Timestamp::from_unix(row.issued_at),
        expires_at: Timestamp::from_unix(row.expires_at),
        next_refresh_at: row.next_refresh_at.map(Timestamp::from_unix),
        failures,
        last_error: row.last_error,
        key_id: row.key_id,
        leased_by: row.leased_by,
        user_id: UserId::new(row.user_id),
    })
}

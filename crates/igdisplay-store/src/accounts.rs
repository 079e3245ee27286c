//! What a fleet needs beyond [`TokenStore`](igdisplay_auth::TokenStore): the accounts with
//! their state, the callbacks' state changes, and re-sealing under a new key.

use crate::events::Event;
use crate::schedule::AccountState;
use crate::sql::{Error, SqlStore};
use igdisplay_auth::SignedRequest;
use igdisplay_model::{Timestamp, UserId};
use sqlx::Row as _;
use sqlx::any::AnyRow;
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
        let rows = sqlx::query(
            "SELECT user_id, state, issued_at, expires_at, next_refresh_at, failures, last_error, key_id,
                    lease_owner, lease_until
             FROM accounts WHERE user_id > $1 ORDER BY user_id LIMIT $2",
        )
        .bind(after.map_or("", UserId::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let now = self.now_unix();
        rows.iter().map(|row| summary(row, now)).collect()
    }

    /// How many accounts are in each state (every state is listed, zeros included).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn counts(&self) -> Result<BTreeMap<AccountState, u64>, Error> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM accounts GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        let mut counts: BTreeMap<AccountState, u64> = AccountState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in &rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            if let Some(state) = AccountState::parse(&state) {
                counts.insert(state, u64::try_from(n).unwrap_or_default());
            }
        }
        Ok(counts)
    }

    /// The user removed the app (a verified deauthorize `signed_request`): the token is
    /// erased, the account is [`AccountState::Deauthorized`] and is never refreshed again; a
    /// new login makes it active. Returns whether the account was known.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn deauthorize(&self, user: &UserId) -> Result<bool, Error> {
        let done = sqlx::query(
            "UPDATE accounts SET state = 'deauthorized', token = $1, next_refresh_at = NULL, lease_owner = NULL,
                 lease_until = NULL, version = version + 1, updated_at = $2
             WHERE user_id = $3",
        )
        .bind(Vec::<u8>::new())
        .bind(self.now_unix())
        .bind(user.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The user asked for their data to be deleted (a verified data-deletion
    /// `signed_request`): the account's row is deleted. Returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn delete_account(&self, user: &UserId) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM accounts WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Applies Meta's deauthorize or data-deletion callback, whose `signed_request` the
    /// caller verified ([`verify_fresh_signed_request`](igdisplay_auth::verify_fresh_signed_request)),
    /// and returns the event to send ([`Events::send`](crate::Events::send)). Applying the
    /// same callback twice is harmless.
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
    /// store.save(&TokenRecord::new(UserId::new("1784"), AccessToken::new("IGAAsecret"), TokenKind::LongLived,
    ///     Platform::InstagramLogin, SystemTime::now(), Duration::from_secs(60 * 86_400))).await?;
    ///
    /// // What Meta posts to the deauthorize callback, verified with the app secret.
    /// let secret = AppSecret::new("app-secret");
    /// let posted = sign_signed_request(&secret, r#"{"user_id":"1784","algorithm":"HMAC-SHA256"}"#);
    /// let request = verify_signed_request(&secret, &posted)?;
    /// let event = store.apply_callback(&request, MetaCallback::Deauthorize).await?;
    /// assert!(matches!(event, Event::Deauthorized { .. }));
    /// assert!(store.load(&UserId::new("1784")).await?.is_none(), "the token is erased");
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
    ) -> Result<Event, Error> {
        let user_id = request.user_id.clone();
        let at = Timestamp::from_unix(self.now_unix());
        Ok(match callback {
            MetaCallback::Deauthorize => {
                self.deauthorize(&user_id).await?;
                Event::Deauthorized { user_id, at }
            }
            MetaCallback::DataDeletion { confirmation_code } => {
                self.delete_account(&user_id).await?;
                Event::DeletionRequested {
                    user_id,
                    at,
                    confirmation_code,
                }
            }
        })
    }

    /// Marks `user`'s account revoked because Instagram refused its token outside a refresh
    /// (a Graph call or a media sync answered error 190): it is never refreshed again until a
    /// new login. Returns the event to send, or `None` when the account was not active or
    /// failing (unknown, or already marked).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn mark_revoked(&self, user: &UserId, reason: &str) -> Result<Option<Event>, Error> {
        let now = self.now_unix();
        let done = sqlx::query(
            "UPDATE accounts SET state = 'revoked', next_refresh_at = NULL, last_error = $1, updated_at = $2
             WHERE user_id = $3 AND state IN ('active', 'failing')",
        )
        .bind(reason.chars().take(500).collect::<String>())
        .bind(now)
        .bind(user.as_str())
        .execute(&self.pool)
        .await?;
        Ok((done.rows_affected() > 0).then(|| Event::Revoked {
            user_id: user.clone(),
            at: Timestamp::from_unix(now),
        }))
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
        let current = self.keys.current_id();
        // `key_id <> $1` written as two ranges, so the key index finds the few rows under an
        // old key without scanning a million under the current one.
        let rows = sqlx::query(
            "SELECT user_id, token, key_id FROM accounts
             WHERE (key_id < $1 OR key_id > $1) AND state <> 'deauthorized' LIMIT $2",
        )
        .bind(current)
        .bind(i64::from(batch))
        .fetch_all(&self.pool)
        .await?;
        let mut pass = Rotation::default();
        for row in &rows {
            let user_id: String = row.try_get("user_id")?;
            let sealed: Vec<u8> = row.try_get("token")?;
            let token = self.keys.open(&user_id, &sealed)?;
            let resealed = self.keys.seal(&user_id, &token)?;
            let done =
                sqlx::query("UPDATE accounts SET token = $1, key_id = $2 WHERE user_id = $3 AND token = $4")
                    .bind(resealed)
                    .bind(current)
                    .bind(&user_id)
                    .bind(&sealed)
                    .execute(&self.pool)
                    .await?;
            pass.resealed = pass.resealed.saturating_add(done.rows_affected());
        }
        let remaining: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE key_id <> $1 AND state <> 'deauthorized'")
                .bind(current)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
        pass.remaining = u64::try_from(remaining).unwrap_or_default();
        Ok(pass)
    }
}

/// A listed row. Unknown states (a newer igdisplay's) and out-of-range numbers are
/// [`Error::Corrupt`], not a panic.
fn summary(row: &AnyRow, now: i64) -> Result<AccountSummary, Error> {
    let user_id: String = row.try_get("user_id")?;
    let state: String = row.try_get("state")?;
    let corrupt = |what: &str| Error::Corrupt {
        user_id: user_id.clone(),
        source: serde::de::Error::custom(what),
    };
    let state = AccountState::parse(&state).ok_or_else(|| corrupt("unknown state"))?;
    let failures: i64 = row.try_get("failures")?;
    let lease_until: Option<i64> = row.try_get("lease_until")?;
    let lease_owner: Option<String> = row.try_get("lease_owner")?;
    Ok(AccountSummary {
        state,
        issued_at: Timestamp::from_unix(row.try_get("issued_at")?),
        expires_at: Timestamp::from_unix(row.try_get("expires_at")?),
        next_refresh_at: row
            .try_get::<Option<i64>, _>("next_refresh_at")?
            .map(Timestamp::from_unix),
        failures: u32::try_from(failures).map_err(|_| corrupt("failure count out of range"))?,
        last_error: row.try_get("last_error")?,
        key_id: row.try_get("key_id")?,
        leased_by: lease_owner.filter(|_| lease_until.is_some_and(|until| until > now)),
        user_id: UserId::new(user_id),
    })
}

//! The feed service's rows (igdisplay-feeds): feeds and the account each shows, the one-time
//! links that bind an account to a feed, the admin API's tokens, and each account's sync
//! schedule shared by every instance. Secrets are kept only as their SHA-256 (links, admin
//! tokens) or sealed with the key ring (a login parked between a link and its callback).
//! Times are the database's, like every lease of the store.

use crate::dialect::Sql;
use crate::error::Error;
use crate::events::Event;
use crate::repo::{Accounts, Tx, truncate};
use crate::store::SqlStore;
use igdisplay_auth::TokenRecord;
use igdisplay_model::{Timestamp, UserId};
use sqlx::Row as _;
use std::time::Duration;

/// A feed as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedRow {
    /// Its public, unguessable id (32 hexadecimal characters, 128 random bits).
    pub id: String,
    /// The account it shows, once a connect link bound one.
    pub user_id: Option<UserId>,
    /// The operator's name for it (a customer, a site).
    pub name: String,
    /// The feed service's settings, as JSON (the store does not read them).
    pub settings: String,
    /// Raised by every change: a reader that cached the feed knows it changed.
    pub version: i64,
    /// When it was created (database time).
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What a connect link is now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkState {
    /// Usable: it binds an account to this feed.
    Valid {
        /// The feed it binds.
        feed_id: String,
    },
    /// Already used: a link works once.
    Used,
    /// Past its time.
    Expired,
    /// No such link (never made, or its feed was deleted).
    Unknown,
}

/// What deleting a feed left to clean up.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeletedFeed {
    /// The account the feed showed, if one was bound.
    pub user_id: Option<UserId>,
    /// Whether that account's token went with it (no other feed shows it): its schedule is now
    /// a purge of its mirrored files, due at once ([`ClaimedSync::purge`]); delete them now
    /// and call [`SqlStore::finish_purge`], or leave them to the scheduler.
    pub account_released: bool,
}

/// One account's sync schedule (or, for an account no feed shows any more, its purge).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncSchedule {
    /// Whose.
    pub user_id: UserId,
    /// When it is next due.
    pub next_sync_at: Timestamp,
    /// When the last one finished, if one did.
    pub last_sync_at: Option<Timestamp>,
    /// Why the last one failed, if it did.
    pub last_error: Option<String>,
    /// Syncs finished so far.
    pub syncs: i64,
    /// Whether an instance holds it now.
    pub leased: bool,
    /// No feed shows the account: what is due is the deletion of its mirrored files.
    pub purge: bool,
}

/// The feed service's figures, read in one pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedStats {
    /// Feeds in all.
    pub feeds: u64,
    /// Feeds an account is bound to.
    pub bound: u64,
    /// Feeds with no account yet, or whose account has never been synced.
    pub pending: u64,
    /// Feeds whose account's last sync listed everything.
    pub fresh: u64,
    /// Feeds whose account's last sync failed (the last good posts shown).
    pub stale: u64,
    /// Feeds whose account must log in again (its token refused, expired or removed).
    pub needs_login: u64,
    /// Accounts with a sync schedule.
    pub scheduled: u64,
    /// Accounts whose sync is due now.
    pub due: u64,
    /// How long the most overdue sync has waited, in seconds.
    pub oldest_due_seconds: u64,
}

/// Where a feed stands, as its page and the metrics show it: read from the database alone
/// ([`SqlStore::feed_state`], [`SqlStore::feed_stats`]), by one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedState {
    /// No account is connected yet, or no sync of it has succeeded yet.
    Pending,
    /// The last sync listed everything.
    Fresh,
    /// Syncs have failed since `since`; the posts are the last good ones.
    Stale {
        /// The first failed sync.
        since: Timestamp,
    },
    /// The account's token was refused, expired or removed: its owner must connect it
    /// again. The posts are the last good ones.
    NeedsLogin {
        /// The first failed sync, when one failed.
        since: Option<Timestamp>,
    },
}

impl FeedState {
    /// Its name in the public API and the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            FeedState::Pending => "pending",
            FeedState::Fresh => "fresh",
            FeedState::Stale { .. } => "stale",
            FeedState::NeedsLogin { .. } => "needs_login",
        }
    }
}

/// The rule of [`FeedState`], in SQL over a feed `f` (its `user_id`), its account `a` and its
/// schedule `s` (both left-joined): the one place it is written.
macro_rules! feed_state_case {
    () => {
        "CASE WHEN f.user_id IS NULL THEN 'pending'
              WHEN a.user_id IS NULL OR a.state IN ('revoked', 'expired', 'deauthorized') THEN 'needs_login'
              WHEN s.last_ok_at IS NULL THEN 'pending'
              WHEN s.failing_since IS NOT NULL THEN 'stale'
              ELSE 'fresh' END"
    };
}

/// An account claimed for a sync, and how late its sync is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimedSync {
    /// Whose.
    pub user_id: UserId,
    /// How long after it was due it was claimed.
    pub lag: Duration,
    /// No feed shows the account any more: its mirrored files are to be deleted
    /// ([`SqlStore::finish_purge`] once they are), not synced.
    pub purge: bool,
}

/// The SHA-256 of a secret, in hex: what the rows keep instead of it.
fn digest(secret: &str) -> String {
    use sha2::Digest as _;
    igdisplay_auth::hex(&sha2::Sha256::digest(secret.as_bytes()))
}

/// What a parked login is sealed to: the link it belongs to, so a sealed blob moved to
/// another link does not open.
fn parked_for(hash: &str) -> String {
    format!("connect:{hash}")
}

const FEED_COLUMNS: &str = "id, user_id, name, settings, version, created_at, updated_at";

fn feed_row(row: &sqlx::any::AnyRow) -> Result<FeedRow, sqlx::Error> {
    Ok(FeedRow {
        id: row.try_get("id")?,
        user_id: row.try_get::<Option<String>, _>("user_id")?.map(UserId::new),
        name: row.try_get("name")?,
        settings: row.try_get("settings")?,
        version: row.try_get("version")?,
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
        updated_at: Timestamp::from_unix(row.try_get("updated_at")?),
    })
}

impl SqlStore {
    /// Creates a feed named `name` with `settings` (JSON), bound to no account yet.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// use igdisplay_store::{Key, KeyRing, SqlStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqlStore::sqlite(&dir.path().join("feeds.db"), KeyRing::new(Key::generate("k1")?)).await?;
    /// let feed = store.create_feed("Café Nova", "{}").await?;
    /// assert_eq!(feed.id.len(), 32);
    /// assert_eq!(store.feed(&feed.id).await?, Some(feed));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Random`] when no id can be drawn; [`Error::Database`].
    pub async fn create_feed(&self, name: &str, settings: &str) -> Result<FeedRow, Error> {
        static CREATE: Sql = Sql::new(
            "INSERT INTO feeds (id, name, settings, version, created_at, updated_at)
             VALUES ($2, $3, $4, 1, {now}, {now})
             RETURNING id, user_id, name, settings, version, created_at, updated_at",
        );
        let id = igdisplay_auth::random_hex(16).map_err(|_| Error::Random)?;
        let row = self
            .accounts
            .at(&CREATE)
            .bind(id)
            .bind(name.to_owned())
            .bind(settings.to_owned())
            .fetch_one(self.accounts.pool())
            .await
            .map_err(Error::statement("create a feed"))?;
        feed_row(&row).map_err(Error::statement("create a feed"))
    }

    /// The feed `id`, if there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn feed(&self, id: &str) -> Result<Option<FeedRow>, Error> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM feeds WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_owned())
            .fetch_optional(self.accounts.pool())
            .await
            .map_err(Error::statement("read a feed"))?;
        row.as_ref()
            .map(feed_row)
            .transpose()
            .map_err(Error::statement("read a feed"))
    }

    /// Up to `limit` feeds after the id `after`, by id: page through all of them.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn list_feeds(&self, after: Option<&str>, limit: u32) -> Result<Vec<FeedRow>, Error> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM feeds WHERE id > $1 ORDER BY id LIMIT $2");
        self.feeds_where(sql, after.unwrap_or("").to_owned(), i64::from(limit))
            .await
    }

    /// Every feed that shows `user`.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn feeds_of(&self, user: &UserId) -> Result<Vec<FeedRow>, Error> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM feeds WHERE user_id = $1 ORDER BY id LIMIT $2");
        self.feeds_where(sql, user.as_str().to_owned(), i64::MAX).await
    }

    async fn feeds_where(&self, sql: String, key: String, limit: i64) -> Result<Vec<FeedRow>, Error> {
        const ACTION: &str = "list feeds";
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(limit)
            .fetch_all(self.accounts.pool())
            .await
            .map_err(Error::statement(ACTION))?
            .iter()
            .map(feed_row)
            .collect::<Result<_, _>>()
            .map_err(Error::statement(ACTION))
    }

    /// Renames the feed `id` and replaces its settings; `None` when there is no such feed.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn update_feed(&self, id: &str, name: &str, settings: &str) -> Result<Option<FeedRow>, Error> {
        static UPDATE: Sql = Sql::new(
            "UPDATE feeds SET name = $2, settings = $3, version = version + 1, updated_at = {now}
             WHERE id = $4
             RETURNING id, user_id, name, settings, version, created_at, updated_at",
        );
        let row = self
            .accounts
            .at(&UPDATE)
            .bind(name.to_owned())
            .bind(settings.to_owned())
            .bind(id.to_owned())
            .fetch_optional(self.accounts.pool())
            .await
            .map_err(Error::statement("update a feed"))?;
        row.as_ref()
            .map(feed_row)
            .transpose()
            .map_err(Error::statement("update a feed"))
    }

    /// Deletes the feed `id` and its connect links; when no other feed shows its account,
    /// the account's token and sync schedule go too, in the same transaction. `None` when
    /// there was no such feed.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn delete_feed(&self, id: &str) -> Result<Option<DeletedFeed>, Error> {
        static DELETE: Sql = Sql::new("DELETE FROM feeds WHERE id = $2 RETURNING user_id, {now} AS now");
        const ACTION: &str = "delete a feed";
        let mut tx = self.accounts.begin(ACTION).await?;
        let deleted = self
            .accounts
            .at(&DELETE)
            .bind(id.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::statement(ACTION))?;
        let Some(deleted) = deleted else {
            return Ok(None);
        };
        let user: Option<String> = deleted.try_get("user_id").map_err(Error::statement(ACTION))?;
        let now: i64 = deleted.try_get("now").map_err(Error::statement(ACTION))?;
        sqlx::query("DELETE FROM connect_links WHERE feed_id = $1")
            .bind(id.to_owned())
            .execute(&mut *tx)
            .await
            .map_err(Error::statement(ACTION))?;
        let released = match &user {
            Some(user) => release_if_unused(&mut tx, user, now).await?,
            None => false,
        };
        Accounts::commit(tx, ACTION).await?;
        Ok(Some(DeletedFeed {
            user_id: user.map(UserId::new),
            account_released: released,
        }))
    }

    /// A new one-time link that binds an account to the feed `feed_id`, valid for `ttl`: its
    /// secret (only its SHA-256 is kept). `None` when there is no such feed.
    ///
    /// # Errors
    ///
    /// [`Error::Random`]; [`Error::Database`].
    pub async fn add_connect_link(&self, feed_id: &str, ttl: Duration) -> Result<Option<String>, Error> {
        static ADD: Sql = Sql::new(
            "INSERT INTO connect_links (hash, feed_id, expires_at)
             SELECT $2, id, {now} + $3 FROM feeds WHERE id = $4
             RETURNING feed_id",
        );
        let secret = igdisplay_auth::random_hex(32).map_err(|_| Error::Random)?;
        let added = self
            .accounts
            .at(&ADD)
            .bind(digest(&secret))
            .bind(igdisplay_model::whole_seconds(ttl))
            .bind(feed_id.to_owned())
            .fetch_optional(self.accounts.pool())
            .await
            .map_err(Error::statement("add a connect link"))?;
        Ok(added.map(|_| secret))
    }

    /// What the connect link `secret` is now.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn connect_link(&self, secret: &str) -> Result<LinkState, Error> {
        static STATE: Sql = Sql::new(
            "SELECT feed_id, used_at, CAST(CASE WHEN expires_at <= {now} THEN 1 ELSE 0 END AS BIGINT) AS expired
             FROM connect_links WHERE hash = $2",
        );
        const ACTION: &str = "read a connect link";
        let row = self
            .accounts
            .at(&STATE)
            .bind(digest(secret))
            .fetch_optional(self.accounts.pool())
            .await
            .map_err(Error::statement(ACTION))?;
        let Some(row) = row else {
            return Ok(LinkState::Unknown);
        };
        let used: Option<i64> = row.try_get("used_at").map_err(Error::statement(ACTION))?;
        let expired = row
            .try_get::<i64, _>("expired")
            .map_err(Error::statement(ACTION))?
            != 0;
        Ok(match (used, expired) {
            (Some(_), _) => LinkState::Used,
            (None, true) => LinkState::Expired,
            (None, false) => LinkState::Valid {
                feed_id: row.try_get("feed_id").map_err(Error::statement(ACTION))?,
            },
        })
    }

    /// Parks `pending` (a serialized pending authorization) on the usable link `secret`,
    /// sealed with the key ring to that link, until the login's callback reaches any
    /// instance; a login begun again from the link replaces it. Whether the link was usable.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when it cannot be sealed; [`Error::Database`].
    pub async fn park_connect_login(&self, secret: &str, pending: &[u8]) -> Result<bool, Error> {
        static PARK: Sql = Sql::new(
            "UPDATE connect_links SET pending = $2, key_id = $3
             WHERE hash = $4 AND used_at IS NULL AND expires_at > {now}
             RETURNING feed_id",
        );
        let hash = digest(secret);
        let sealed = self.keys.seal(&parked_for(&hash), pending)?;
        let parked = self
            .accounts
            .at(&PARK)
            .bind(sealed)
            .bind(self.keys.current_id().to_owned())
            .bind(hash)
            .fetch_optional(self.accounts.pool())
            .await
            .map_err(Error::statement("park a login on a connect link"))?;
        Ok(parked.is_some())
    }

    /// The login parked on the usable link `secret`: its feed and the pending authorization,
    /// opened. `None` when the link is not usable or holds no login.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when it does not open (a key gone from the ring, an altered row);
    /// [`Error::Database`].
    pub async fn parked_login(&self, secret: &str) -> Result<Option<(String, Vec<u8>)>, Error> {
        static PARKED: Sql = Sql::new(
            "SELECT feed_id, pending FROM connect_links
             WHERE hash = $2 AND used_at IS NULL AND expires_at > {now} AND pending IS NOT NULL",
        );
        const ACTION: &str = "read a parked login";
        let hash = digest(secret);
        let row = self
            .accounts
            .at(&PARKED)
            .bind(hash.clone())
            .fetch_optional(self.accounts.pool())
            .await
            .map_err(Error::statement(ACTION))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let feed: String = row.try_get("feed_id").map_err(Error::statement(ACTION))?;
        let sealed: Vec<u8> = row.try_get("pending").map_err(Error::statement(ACTION))?;
        Ok(Some((feed, self.keys.open(&parked_for(&hash), &sealed)?)))
    }

    /// Uses the link `secret` for the account of `record` (the login it began), once: in one
    /// transaction the link is marked used (its parked login erased), its feed bound to the
    /// account, the account's sync scheduled at once, and `record` kept as the account's
    /// token (as [`save`](igdisplay_auth::TokenStore::save) would; a token of the account
    /// issued later stays). A crash leaves either all of it or none: never a used link whose
    /// account has no token. The account the feed showed before, if another and shown by no
    /// other feed, is released (its token and schedule deleted; returned, so its mirror can be
    /// purged). Anything but [`LinkState::Valid`] changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Database`]; [`Error::Deleted`] when the account was deleted after `record`
    /// was issued (nothing changes).
    pub async fn redeem_connect_link(
        &self,
        secret: &str,
        record: &TokenRecord,
    ) -> Result<(LinkState, Option<UserId>), Error> {
        static REDEEM: Sql = Sql::new(
            "UPDATE connect_links SET used_at = {now}, used_by = $2, pending = NULL, key_id = NULL
             WHERE hash = $3 AND used_at IS NULL AND expires_at > {now}
             RETURNING feed_id, {now} AS now",
        );
        const ACTION: &str = "use a connect link";
        let user = &record.user_id;
        let row = self.row_of(record)?;
        let mut tx = self.accounts.begin(ACTION).await?;
        let redeemed = self
            .accounts
            .at(&REDEEM)
            .bind(user.as_str().to_owned())
            .bind(digest(secret))
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::statement(ACTION))?;
        let Some(redeemed) = redeemed else {
            drop(tx);
            return Ok((self.connect_link(secret).await?, None));
        };
        let feed_id: String = redeemed.try_get("feed_id").map_err(Error::statement(ACTION))?;
        let now: i64 = redeemed.try_get("now").map_err(Error::statement(ACTION))?;
        let before: Option<String> = sqlx::query("SELECT user_id FROM feeds WHERE id = $1")
            .bind(feed_id.clone())
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get("user_id"))
            .map_err(Error::statement(ACTION))?;
        sqlx::query("UPDATE feeds SET user_id = $1, version = version + 1, updated_at = $2 WHERE id = $3")
            .bind(user.as_str().to_owned())
            .bind(now)
            .bind(feed_id.clone())
            .execute(&mut *tx)
            .await
            .map_err(Error::statement(ACTION))?;
        schedule_now(&mut tx, user.as_str(), now).await?;
        match self.accounts.save_grant_in(&mut tx, &row).await? {
            // The account holds a token issued later: it stays, and serves the feed.
            Ok(_) | Err(Error::Conflict { .. }) => {}
            Err(error) => return Err(error),
        }
        let mut released = None;
        if let Some(before) = before.filter(|b| b != user.as_str())
            && release_if_unused(&mut tx, &before, now).await?
        {
            released = Some(UserId::new(before));
        }
        Accounts::commit(tx, ACTION).await?;
        Ok((LinkState::Valid { feed_id }, released))
    }

    /// Makes `user`'s sync due now (an operator's "sync now"); the next pass of any instance
    /// claims it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn sync_now(&self, user: &UserId) -> Result<(), Error> {
        static NOW: Sql = Sql::new("SELECT {now} AS now");
        const ACTION: &str = "schedule a sync now";
        let mut tx = self.accounts.begin(ACTION).await?;
        let now: i64 = self
            .accounts
            .at(&NOW)
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get("now"))
            .map_err(Error::statement(ACTION))?;
        schedule_now(&mut tx, user.as_str(), now).await?;
        Accounts::commit(tx, ACTION).await
    }

    /// Unbinds `user` from every feed that shows it and drops its sync schedule (a data
    /// deletion: no row keeps the account's id); the feeds show no account until connected
    /// again. The feeds' ids.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn unbind_account(&self, user: &UserId) -> Result<Vec<String>, Error> {
        static UNBIND: Sql = Sql::new(
            "UPDATE feeds SET user_id = NULL, version = version + 1, updated_at = {now}
             WHERE user_id = $2 RETURNING id",
        );
        const ACTION: &str = "unbind an account from its feeds";
        let mut tx = self.accounts.begin(ACTION).await?;
        let feeds: Vec<String> = self
            .accounts
            .at(&UNBIND)
            .bind(user.as_str().to_owned())
            .fetch_all(&mut *tx)
            .await
            .and_then(|rows| rows.iter().map(|row| row.try_get("id")).collect())
            .map_err(Error::statement(ACTION))?;
        for sql in [
            "DELETE FROM account_syncs WHERE user_id = $1",
            "UPDATE connect_links SET used_by = NULL WHERE used_by = $1",
        ] {
            sqlx::query(sql)
                .bind(user.as_str().to_owned())
                .execute(&mut *tx)
                .await
                .map_err(Error::statement(ACTION))?;
        }
        Accounts::commit(tx, ACTION).await?;
        Ok(feeds)
    }

    /// A new admin API token labelled `label`: its secret (only its SHA-256 is kept).
    ///
    /// # Errors
    ///
    /// [`Error::Random`]; [`Error::Database`].
    pub async fn add_admin_token(&self, label: &str) -> Result<String, Error> {
        static ADD: Sql =
            Sql::new("INSERT INTO admin_tokens (hash, label, created_at) VALUES ($2, $3, {now})");
        let secret = format!(
            "igfa_{}",
            igdisplay_auth::random_hex(32).map_err(|_| Error::Random)?
        );
        self.accounts
            .at(&ADD)
            .bind(digest(&secret))
            .bind(truncate(label, 200).to_owned())
            .execute(self.accounts.pool())
            .await
            .map_err(Error::statement("add an admin token"))?;
        Ok(secret)
    }

    /// Whether `secret` is an admin token: compared by its SHA-256, so the comparison's time
    /// says nothing of the stored ones.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn is_admin_token(&self, secret: &str) -> Result<bool, Error> {
        sqlx::query("SELECT 1 AS one FROM admin_tokens WHERE hash = $1")
            .bind(digest(secret))
            .fetch_optional(self.accounts.pool())
            .await
            .map(|row| row.is_some())
            .map_err(Error::statement("check an admin token"))
    }

    /// Takes up to `batch` accounts whose sync is due and that no live lease holds, for
    /// `lease`, as `owner`: each instance syncs what it claimed, and an instance that dies
    /// loses its claims when they run out. The longest overdue come first.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn claim_syncs(
        &self,
        owner: &str,
        lease: Duration,
        batch: u32,
    ) -> Result<Vec<ClaimedSync>, Error> {
        static CLAIM: Sql = Sql::new(
            "UPDATE account_syncs SET lease_owner = $2, lease_until = {now} + $3
             WHERE user_id IN (
                 SELECT user_id FROM account_syncs
                 WHERE next_sync_at <= {now} AND (lease_until IS NULL OR lease_until <= {now})
                 ORDER BY next_sync_at LIMIT $4{skip_locked})
             RETURNING user_id, {now} - next_sync_at AS lag, purge",
        );
        self.accounts
            .at(&CLAIM)
            .bind(owner.to_owned())
            .bind(igdisplay_model::whole_seconds(lease).max(1))
            .bind(i64::from(batch))
            .fetch_all(self.accounts.pool())
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        Ok(ClaimedSync {
                            user_id: UserId::new(row.try_get::<String, _>("user_id")?),
                            lag: Duration::from_secs(
                                u64::try_from(row.try_get::<i64, _>("lag")?).unwrap_or(0),
                            ),
                            purge: row.try_get::<i64, _>("purge")? != 0,
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
            .map(|mut claimed| {
                // The longest overdue first (RETURNING keeps no order).
                claimed.sort_by_key(|claim| std::cmp::Reverse(claim.lag));
                claimed
            })
            .map_err(Error::statement("claim due syncs"))
    }

    /// The feed service's figures now ([`FeedStats`]).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn feed_stats(&self) -> Result<FeedStats, Error> {
        static STATS: Sql = Sql::new(
            "SELECT (SELECT COUNT(*) FROM feeds WHERE user_id IS NOT NULL) AS bound,
                    (SELECT COUNT(*) FROM account_syncs WHERE purge = 0) AS scheduled,
                    (SELECT COUNT(*) FROM account_syncs WHERE next_sync_at <= {now}) AS due,
                    (SELECT COALESCE(MAX({now} - next_sync_at), 0) FROM account_syncs
                     WHERE next_sync_at <= {now}) AS oldest",
        );
        const BY_STATE: &str = concat!(
            "SELECT state, COUNT(*) AS n FROM (SELECT ",
            feed_state_case!(),
            " AS state FROM feeds f LEFT JOIN accounts a ON a.user_id = f.user_id
              LEFT JOIN account_syncs s ON s.user_id = f.user_id) AS by_feed GROUP BY state"
        );
        const ACTION: &str = "read the feeds' figures";
        let row = self
            .accounts
            .at(&STATS)
            .fetch_one(self.accounts.pool())
            .await
            .map_err(Error::statement(ACTION))?;
        let count = |value: i64| u64::try_from(value).unwrap_or(0);
        let get = |name: &str| -> Result<u64, Error> {
            row.try_get(name).map(count).map_err(Error::statement(ACTION))
        };
        let mut stats = FeedStats {
            bound: get("bound")?,
            scheduled: get("scheduled")?,
            due: get("due")?,
            oldest_due_seconds: get("oldest")?,
            ..FeedStats::default()
        };
        let states = sqlx::query(BY_STATE)
            .fetch_all(self.accounts.pool())
            .await
            .map_err(Error::statement(ACTION))?;
        for state in states {
            let name: String = state.try_get("state").map_err(Error::statement(ACTION))?;
            let n = count(state.try_get("n").map_err(Error::statement(ACTION))?);
            let slot = match name.as_str() {
                "fresh" => &mut stats.fresh,
                "stale" => &mut stats.stale,
                "needs_login" => &mut stats.needs_login,
                _ => &mut stats.pending,
            };
            *slot = slot.saturating_add(n);
            stats.feeds = stats.feeds.saturating_add(n);
        }
        Ok(stats)
    }

    /// Where the feeds that show `user` stand ([`FeedState`]), from the database alone: the
    /// account's state and the results of its syncs; with the syncs finished so far, whose
    /// change tells a cache that the account's posts may have changed.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn feed_state(&self, user: &UserId) -> Result<(FeedState, i64), Error> {
        const STATE: &str = concat!(
            "SELECT ",
            feed_state_case!(),
            " AS state, s.failing_since, COALESCE(s.syncs, 0) AS syncs
              FROM (SELECT CAST($1 AS TEXT) AS user_id) AS f
              LEFT JOIN accounts a ON a.user_id = f.user_id
              LEFT JOIN account_syncs s ON s.user_id = f.user_id"
        );
        const ACTION: &str = "read a feed's state";
        let row = sqlx::query(STATE)
            .bind(user.as_str().to_owned())
            .fetch_one(self.accounts.pool())
            .await
            .map_err(Error::statement(ACTION))?;
        let name: String = row.try_get("state").map_err(Error::statement(ACTION))?;
        let since: Option<i64> = row.try_get("failing_since").map_err(Error::statement(ACTION))?;
        let syncs: i64 = row.try_get("syncs").map_err(Error::statement(ACTION))?;
        let since = since.map(Timestamp::from_unix);
        let state = match (name.as_str(), since) {
            ("fresh", _) => FeedState::Fresh,
            ("stale", Some(since)) => FeedState::Stale { since },
            ("needs_login", since) => FeedState::NeedsLogin { since },
            _ => FeedState::Pending,
        };
        Ok((state, syncs))
    }

    /// Records the end of `owner`'s sync of `user`: next due `after` from now (the database's
    /// now, so instances whose clocks differ agree), the error if it failed, the lease
    /// released. Also when the claim ran out during a long sync and nobody holds the account
    /// now (another instance claimed it, found the sync under way and let go): the sync is
    /// recorded rather than run again. `false` when another instance holds it: nothing is
    /// written.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn finish_sync(
        &self,
        user: &UserId,
        owner: &str,
        after: Duration,
        error: Option<&str>,
    ) -> Result<bool, Error> {
        static FINISH: Sql = Sql::new(
            "UPDATE account_syncs SET
                 next_sync_at = CASE WHEN purge = 1 THEN next_sync_at ELSE {now} + $2 END,
                 last_sync_at = {now}, last_error = $3,
                 last_ok_at = CASE WHEN $3 IS NULL THEN {now} ELSE last_ok_at END,
                 failing_since = CASE WHEN $3 IS NULL THEN NULL
                     WHEN failing_since IS NULL THEN {now} ELSE failing_since END,
                 syncs = syncs + 1, lease_owner = NULL, lease_until = NULL
             WHERE user_id = $4 AND (lease_owner = $5 OR lease_owner IS NULL)
             RETURNING user_id",
        );
        self.accounts
            .at(&FINISH)
            .bind(igdisplay_model::whole_seconds(after))
            .bind(error.map(|e| truncate(e, 500).to_owned()))
            .bind(user.as_str().to_owned())
            .bind(owner.to_owned())
            .fetch_optional(self.accounts.pool())
            .await
            .map(|row| row.is_some())
            .map_err(Error::statement("finish a sync"))
    }

    /// Lets go of `owner`'s claim on `user` without a sync (another process held the work),
    /// leaving it due.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn release_sync(&self, user: &UserId, owner: &str) -> Result<(), Error> {
        sqlx::query(
            "UPDATE account_syncs SET lease_owner = NULL, lease_until = NULL WHERE user_id = $1 AND lease_owner = $2",
        )
        .bind(user.as_str().to_owned())
        .bind(owner.to_owned())
        .execute(self.accounts.pool())
        .await
        .map_err(Error::statement("release a sync"))?;
        Ok(())
    }

    /// Ends `user`'s purge: with `retry` `None` (its mirrored files are deleted) the row goes;
    /// with `Some((after, why))` (they could not be) it is due again `after` from now, `why`
    /// kept as its error. Nothing happens when another process holds it (`owner` is the
    /// claim's, and any matches when nobody holds it) or the account was connected again
    /// meanwhile (a sync is due instead). Whether it happened.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn finish_purge(
        &self,
        user: &UserId,
        owner: &str,
        retry: Option<(Duration, &str)>,
    ) -> Result<bool, Error> {
        static RETRY: Sql = Sql::new(
            "UPDATE account_syncs SET next_sync_at = {now} + $2, last_error = $3,
                 lease_owner = NULL, lease_until = NULL
             WHERE user_id = $4 AND purge = 1 AND (lease_owner = $5 OR lease_owner IS NULL)",
        );
        let done = match retry {
            None => {
                sqlx::query(
                    "DELETE FROM account_syncs
                 WHERE user_id = $1 AND purge = 1 AND (lease_owner = $2 OR lease_owner IS NULL)",
                )
                .bind(user.as_str().to_owned())
                .bind(owner.to_owned())
                .execute(self.accounts.pool())
                .await
            }
            Some((after, why)) => {
                self.accounts
                    .at(&RETRY)
                    .bind(igdisplay_model::whole_seconds(after))
                    .bind(truncate(why, 500).to_owned())
                    .bind(user.as_str().to_owned())
                    .bind(owner.to_owned())
                    .execute(self.accounts.pool())
                    .await
            }
        };
        done.map(|done| done.rows_affected() > 0)
            .map_err(Error::statement("finish a purge"))
    }

    /// Up to `limit` sync schedules after the user `after`, by user id.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn sync_schedules(
        &self,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<SyncSchedule>, Error> {
        static LIST: Sql = Sql::new(
            "SELECT user_id, next_sync_at, last_sync_at, last_error, syncs, purge,
                 CAST(CASE WHEN lease_until > {now} THEN 1 ELSE 0 END AS BIGINT) AS leased
             FROM account_syncs WHERE user_id > $2 ORDER BY user_id LIMIT $3",
        );
        const ACTION: &str = "list sync schedules";
        let rows = self
            .accounts
            .at(&LIST)
            .bind(after.map_or("", UserId::as_str).to_owned())
            .bind(i64::from(limit))
            .fetch_all(self.accounts.pool())
            .await
            .map_err(Error::statement(ACTION))?;
        rows.iter()
            .map(|row| -> Result<SyncSchedule, sqlx::Error> {
                Ok(SyncSchedule {
                    user_id: UserId::new(row.try_get::<String, _>("user_id")?),
                    next_sync_at: Timestamp::from_unix(row.try_get("next_sync_at")?),
                    last_sync_at: row
                        .try_get::<Option<i64>, _>("last_sync_at")?
                        .map(Timestamp::from_unix),
                    last_error: row.try_get("last_error")?,
                    syncs: row.try_get("syncs")?,
                    leased: row.try_get::<i64, _>("leased")? != 0,
                    purge: row.try_get::<i64, _>("purge")? != 0,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(Error::statement(ACTION))
    }

    /// Marks `user` revoked because a sync found its token refused (as
    /// [`mark_revoked`](Self::mark_revoked)) and writes [`Event::NeedsLogin`], naming the feeds
    /// that show the account, in the same transaction. `None` when the account was not active
    /// or failing (already marked: the event was written then).
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    pub async fn mark_needs_login(&self, user: &UserId, reason: &str) -> Result<Option<Event>, Error> {
        static REVOKE: Sql = Sql::new(
            "UPDATE accounts SET state = 'revoked', next_refresh_at = NULL, last_error = $2, updated_at = {now},
                 version = version + 1, lease_owner = NULL, lease_until = NULL
             WHERE user_id = $3 AND state IN ('active', 'failing')
             RETURNING {now} AS now",
        );
        const ACTION: &str = "mark an account's feeds as needing a login";
        let mut tx = self.accounts.begin(ACTION).await?;
        let changed = self
            .accounts
            .at(&REVOKE)
            .bind(truncate(reason, 500).to_owned())
            .bind(user.as_str().to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::statement(ACTION))?;
        let Some(changed) = changed else {
            return Ok(None);
        };
        let now: i64 = changed.try_get("now").map_err(Error::statement(ACTION))?;
        let feeds: Vec<String> = sqlx::query("SELECT id FROM feeds WHERE user_id = $1 ORDER BY id")
            .bind(user.as_str().to_owned())
            .fetch_all(&mut *tx)
            .await
            .and_then(|rows| rows.iter().map(|row| row.try_get("id")).collect())
            .map_err(Error::statement(ACTION))?;
        let event = Event::NeedsLogin {
            user_id: user.clone(),
            at: Timestamp::from_unix(now),
            feeds,
            reason: truncate(reason, 500).to_owned(),
        };
        Accounts::append(&mut tx, &event, now).await?;
        Accounts::commit(tx, ACTION).await?;
        self.wrote_event();
        Ok(Some(event))
    }
}

/// Schedules `user`'s sync at `now` (inside `tx`), keeping its count and last result.
async fn schedule_now(tx: &mut Tx, user: &str, now: i64) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO account_syncs (user_id, next_sync_at, syncs) VALUES ($1, $2, 0)
         ON CONFLICT (user_id) DO UPDATE SET next_sync_at = excluded.next_sync_at, purge = 0",
    )
    .bind(user.to_owned())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(Error::statement("schedule a sync"))?;
    Ok(())
}

/// Deletes `user`'s token (inside `tx`) when no feed shows the account any more, and turns
/// its sync schedule into a purge due at `now` (its mirrored files are deleted by whichever
/// instance claims it, then the row): whether it did.
async fn release_if_unused(tx: &mut Tx, user: &str, now: i64) -> Result<bool, Error> {
    const ACTION: &str = "release an account no feed shows";
    let shown = sqlx::query("SELECT 1 AS one FROM feeds WHERE user_id = $1 LIMIT 1")
        .bind(user.to_owned())
        .fetch_optional(&mut **tx)
        .await
        .map_err(Error::statement(ACTION))?;
    if shown.is_some() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM accounts WHERE user_id = $1")
        .bind(user.to_owned())
        .execute(&mut **tx)
        .await
        .map_err(Error::statement(ACTION))?;
    sqlx::query(
        "INSERT INTO account_syncs (user_id, next_sync_at, syncs, purge) VALUES ($1, $2, 0, 1)
         ON CONFLICT (user_id) DO UPDATE SET purge = 1, next_sync_at = excluded.next_sync_at,
             last_error = NULL",
    )
    .bind(user.to_owned())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(Error::statement(ACTION))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_feed_state_rule_names_every_account_state_that_needs_a_login_and_no_other() {
        let rule = feed_state_case!();
        let line = rule
            .lines()
            .find(|line| line.contains("THEN 'needs_login'"))
            .unwrap_or_default();
        for state in crate::AccountState::ALL {
            assert_eq!(
                line.contains(&format!("'{}'", state.as_str())),
                state.needs_login(),
                "{state}"
            );
        }
    }
}

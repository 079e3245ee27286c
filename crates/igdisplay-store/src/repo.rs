//! [`Accounts`]: every statement on the accounts, their tombstones, the outbox and the app's
//! shared budget, in one place. One text serves both databases ([`Sql`]); every time in them
//! is the database's ([`DbTime`]). Each state change and the event reporting it are written
//! in one transaction, so an event is never lost and never reports what did not happen.

use crate::dialect::{DbTime, Dialect, Sql};
use crate::error::Error;
use crate::events::Event;
use igdisplay_model::{Timestamp, UserId};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row as _};
use std::time::Duration;

/// A token row to write: the token sealed, the rest of the record as JSON.
pub(crate) struct NewRow {
    pub(crate) user_id: String,
    pub(crate) record: String,
    pub(crate) token: Vec<u8>,
    pub(crate) key_id: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) next_refresh_at: Option<i64>,
}

/// A stored account as read.
pub(crate) struct StoredRow {
    pub(crate) record: String,
    pub(crate) token: Vec<u8>,
    pub(crate) key_id: String,
    pub(crate) version: i64,
    pub(crate) state: String,
}

/// An account claimed by a keeper.
pub(crate) struct ClaimedRow {
    pub(crate) user_id: String,
    pub(crate) record: String,
    pub(crate) token: Vec<u8>,
    pub(crate) version: i64,
    pub(crate) failures: i64,
    pub(crate) expires_at: i64,
    /// Whose lease ran out on it (a taken-over lease), if anyone's.
    pub(crate) previous_owner: Option<String>,
}

/// An account's row as listed.
pub(crate) struct SummaryRow {
    pub(crate) user_id: String,
    pub(crate) state: String,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) next_refresh_at: Option<i64>,
    pub(crate) failures: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) key_id: String,
    pub(crate) leased_by: Option<String>,
}

/// What happened to an on-demand attempt at an account's lease.
pub(crate) enum LeaseTry {
    /// Taken.
    Taken,
    /// Another holds it until this time (database seconds); `now` is the database's.
    Held { until: i64, now: i64 },
    /// The account is not there, or not in a state that is refreshed.
    Unusable,
}

/// An outbox row.
pub(crate) struct EventRow {
    pub(crate) id: i64,
    pub(crate) user_id: String,
    pub(crate) body: String,
    pub(crate) state: String,
    pub(crate) attempts: i64,
    pub(crate) created_at: i64,
    pub(crate) last_error: Option<String>,
}

/// The figures an operator watches, read in one pass.
pub(crate) struct StatsRow {
    pub(crate) states: Vec<(String, i64)>,
    pub(crate) due: i64,
    pub(crate) pending: i64,
    pub(crate) oldest_pending: Option<i64>,
    pub(crate) dead: i64,
    pub(crate) usage_percent: Option<i64>,
    pub(crate) now: i64,
}

/// The app's budget as one reservation found it (milliseconds).
pub(crate) struct BudgetRow {
    pub(crate) quota_tat: Option<i64>,
    pub(crate) blocked_until: Option<i64>,
    pub(crate) usage_percent: Option<i64>,
    pub(crate) now: i64,
}

/// The repository. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Accounts {
    pool: AnyPool,
    dialect: Dialect,
    time: DbTime,
}

/// A query of `sql` for `dialect`.
fn query(
    sql: &'static Sql,
    dialect: Dialect,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    sqlx::query(sql.text(dialect))
}

pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;
type Query = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// `query` with `row`'s values bound in their one order: user, record, token, key id, issued,
/// expires, next refresh (`$2`–`$8` after the statement's time).
fn bind_row(query: Query, row: &NewRow) -> Query {
    query
        .bind(row.user_id.clone())
        .bind(row.record.clone())
        .bind(row.token.clone())
        .bind(row.key_id.clone())
        .bind(row.issued_at)
        .bind(row.expires_at)
        .bind(row.next_refresh_at)
}

impl Accounts {
    pub(crate) fn new(pool: AnyPool, dialect: Dialect, time: DbTime) -> Self {
        Self { pool, dialect, time }
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub(crate) fn set_time(&mut self, time: DbTime) {
        self.time = time;
    }

    /// A statement whose time is `{now}`: `$1` bound.
    pub(crate) fn at(&self, sql: &'static Sql) -> Query {
        query(sql, self.dialect).bind(self.time.seconds())
    }

    /// A statement whose time is `{now_ms}`: `$1` bound.
    fn at_ms(&self, sql: &'static Sql) -> Query {
        query(sql, self.dialect).bind(self.time.millis())
    }

    pub(crate) async fn begin(&self, action: &'static str) -> Result<Tx, Error> {
        self.pool
            .begin_with(self.dialect.begin_write())
            .await
            .map_err(Error::statement(action))
    }

    pub(crate) async fn commit(tx: Tx, action: &'static str) -> Result<(), Error> {
        tx.commit().await.map_err(Error::statement(action))
    }

    /// Appends `event` to the outbox inside `tx`, created at `now`.
    pub(crate) async fn append(tx: &mut Tx, event: &Event, now: i64) -> Result<(), Error> {
        let body = serde_json::to_string(event).map_err(|source| Error::Corrupt {
            user_id: event.user_id().as_str().to_owned(),
            source,
        })?;
        sqlx::query(
            "INSERT INTO events (user_id, kind, body, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(event.user_id().as_str())
        .bind(event.kind())
        .bind(body)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(Error::statement("write an event to the outbox"))?;
        Ok(())
    }

    /// Runs `query` (a state change whose statement returns `{now} AS now` for each row it
    /// changed) in a transaction with the event `event` makes of that time, if it makes one:
    /// both are written, or neither. `None` when the statement changed nothing (and nothing
    /// is written); otherwise the event written, if any.
    async fn change_with_event(
        &self,
        action: &'static str,
        query: Query,
        event: impl FnOnce(i64) -> Option<Event>,
    ) -> Result<Option<Option<Event>>, Error> {
        let mut tx = self.begin(action).await?;
        let changed = query
            .fetch_optional(&mut *tx)
            .await
            .map_err(Error::statement(action))?;
        let Some(changed) = changed else {
            // Nothing to commit; the transaction rolls back when dropped.
            return Ok(None);
        };
        let now: i64 = changed.try_get("now").map_err(Error::statement(action))?;
        let event = event(now);
        if let Some(event) = &event {
            Self::append(&mut tx, event, now).await?;
        }
        Self::commit(tx, action).await?;
        Ok(Some(event))
    }

    // ---- tokens ---------------------------------------------------------------------------

    pub(crate) async fn load(&self, user: &str) -> Result<Option<StoredRow>, Error> {
        let row =
            sqlx::query("SELECT record, token, key_id, version, state FROM accounts WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(Error::statement("read an account"))?;
        row.map(|row| -> Result<StoredRow, sqlx::Error> {
            Ok(StoredRow {
                record: row.try_get("record")?,
                token: row.try_get("token")?,
                key_id: row.try_get("key_id")?,
                version: row.try_get("version")?,
                state: row.try_get("state")?,
            })
        })
        .transpose()
        .map_err(Error::statement("read an account"))
    }

    /// A new row, unless there is one or a deletion came after the token's issue. The new
    /// version, or `None`.
    pub(crate) async fn insert_new(&self, row: &NewRow) -> Result<Option<i64>, Error> {
        static INSERT_NEW: Sql = Sql::new(
            "INSERT INTO accounts (user_id, record, token, key_id, issued_at, expires_at, updated_at, next_refresh_at)
             SELECT $2, $3, $4, $5, $6, $7, {now}, $8
             WHERE NOT EXISTS (SELECT 1 FROM deleted_accounts WHERE user_id = $2 AND deleted_at >= $6)
             ON CONFLICT (user_id) DO NOTHING RETURNING version",
        );
        self.write_row(&INSERT_NEW, row, None, "write a new account")
            .await
    }

    /// A new token over the row at `version` (compare-and-swap): the account is active
    /// again, its failures forgotten, its lease released.
    pub(crate) async fn update_if_version(&self, row: &NewRow, version: i64) -> Result<Option<i64>, Error> {
        static UPDATE_IF_VERSION: Sql = Sql::new(
            "UPDATE accounts SET record = $3, token = $4, key_id = $5, issued_at = $6, expires_at = $7,
                 version = version + 1, state = 'active', failures = 0, last_error = NULL, updated_at = {now},
                 next_refresh_at = $8, lease_owner = NULL, lease_until = NULL
             WHERE user_id = $2 AND version = $9 RETURNING version",
        );
        self.write_row(
            &UPDATE_IF_VERSION,
            row,
            Some(version),
            "write an account over a version",
        )
        .await
    }

    /// Runs a row-writing statement: `$2`–`$8` are the row's values (user, record, token, key
    /// id, issued, expires, next refresh), `$9` the expected version if any.
    async fn write_row(
        &self,
        sql: &'static Sql,
        row: &NewRow,
        version: Option<i64>,
        action: &'static str,
    ) -> Result<Option<i64>, Error> {
        let mut query = bind_row(self.at(sql), row);
        if let Some(version) = version {
            query = query.bind(version);
        }
        let written = query
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::statement(action))?;
        written
            .map(|row| row.try_get("version"))
            .transpose()
            .map_err(Error::statement(action))
    }

    /// A new grant (a login, an import): a new row, or the token over an older one, the
    /// account active again whatever it was; never over a token issued later, and never for
    /// an account deleted after the token's issue.
    pub(crate) async fn save_grant(&self, row: &NewRow) -> Result<Result<i64, Error>, Error> {
        const ACTION: &str = "write a login's token";
        let mut tx = self.begin(ACTION).await?;
        let outcome = self.save_grant_in(&mut tx, row).await?;
        Self::commit(tx, ACTION).await?;
        Ok(outcome)
    }

    /// [`save_grant`](Self::save_grant) inside `tx` (a connect link's use keeps the token in
    /// the transaction that binds the account).
    pub(crate) async fn save_grant_in(&self, tx: &mut Tx, row: &NewRow) -> Result<Result<i64, Error>, Error> {
        static UPSERT_NEWER: Sql = Sql::new(
            "INSERT INTO accounts (user_id, record, token, key_id, issued_at, expires_at, updated_at, next_refresh_at)
             SELECT $2, $3, $4, $5, $6, $7, {now}, $8
             WHERE NOT EXISTS (SELECT 1 FROM deleted_accounts WHERE user_id = $2 AND deleted_at >= $6)
             ON CONFLICT (user_id) DO UPDATE SET record = excluded.record, token = excluded.token,
                 key_id = excluded.key_id, issued_at = excluded.issued_at, expires_at = excluded.expires_at,
                 version = accounts.version + 1, state = 'active', failures = 0, last_error = NULL,
                 next_refresh_at = excluded.next_refresh_at, updated_at = excluded.updated_at,
                 lease_owner = NULL, lease_until = NULL
             WHERE excluded.issued_at >= accounts.issued_at
             RETURNING version",
        );
        const ACTION: &str = "write a login's token";
        let written = bind_row(self.at(&UPSERT_NEWER), row)
            .fetch_optional(&mut **tx)
            .await
            .map_err(Error::statement(ACTION))?;
        Ok(match written {
            Some(written) => {
                sqlx::query("DELETE FROM deleted_accounts WHERE user_id = $1")
                    .bind(row.user_id.clone())
                    .execute(&mut **tx)
                    .await
                    .map_err(Error::statement(ACTION))?;
                Ok(written.try_get("version").map_err(Error::statement(ACTION))?)
            }
            None => {
                let deleted = sqlx::query(
                    "SELECT 1 AS one FROM deleted_accounts WHERE user_id = $1 AND deleted_at >= $2",
                )
                .bind(row.user_id.clone())
                .bind(row.issued_at)
                .fetch_optional(&mut **tx)
                .await
                .map_err(Error::statement(ACTION))?
                .is_some();
                let user_id = row.user_id.clone();
                Err(if deleted {
                    Error::Deleted { user_id }
                } else {
                    Error::Conflict { user_id }
                })
            }
        })
    }

    /// An on-demand refresh's token over the token it refreshed (issued at
    /// `previous_issued_at`), while the account is active or failing, with its event. Whether
    /// it was written.
    pub(crate) async fn save_refreshed(
        &self,
        row: &NewRow,
        previous_issued_at: i64,
        event: impl FnOnce(i64) -> Event,
    ) -> Result<bool, Error> {
        static REFRESHED: Sql = Sql::new(
            "UPDATE accounts SET record = $3, token = $4, key_id = $5, issued_at = $6, expires_at = $7,
                 version = version + 1, state = 'active', failures = 0, last_error = NULL, updated_at = {now},
                 next_refresh_at = $8
             WHERE user_id = $2 AND issued_at = $9 AND state IN ('active', 'failing')
             RETURNING {now} AS now",
        );
        let query = bind_row(self.at(&REFRESHED), row).bind(previous_issued_at);
        let written = self
            .change_with_event("write a refreshed token", query, |now| Some(event(now)))
            .await?;
        Ok(written.is_some())
    }

    pub(crate) async fn remove(&self, user: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM accounts WHERE user_id = $1")
            .bind(user.to_owned())
            .execute(&self.pool)
            .await
            .map_err(Error::statement("remove an account"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The accounts that can be used (active or failing), in id order.
    pub(crate) async fn usable_users(&self) -> Result<Vec<String>, Error> {
        let action = Error::statement("list the accounts");
        sqlx::query("SELECT user_id FROM accounts WHERE state IN ('active', 'failing') ORDER BY user_id")
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| rows.iter().map(|row| row.try_get("user_id")).collect())
            .map_err(action)
    }

    /// Every account with a deletion tombstone (a data-deletion request within the retention).
    pub(crate) async fn deleted_users(&self) -> Result<Vec<String>, Error> {
        sqlx::query("SELECT user_id FROM deleted_accounts ORDER BY user_id")
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| rows.iter().map(|row| row.try_get("user_id")).collect())
            .map_err(Error::statement("list the deleted accounts"))
    }

    // ---- listing --------------------------------------------------------------------------

    pub(crate) async fn list(&self, after: &str, limit: u32) -> Result<Vec<SummaryRow>, Error> {
        static LIST: Sql = Sql::new(
            "SELECT user_id, state, issued_at, expires_at, next_refresh_at, failures, last_error, key_id,
                    CASE WHEN lease_until > {now} THEN lease_owner END AS leased_by
             FROM accounts WHERE user_id > $2 ORDER BY user_id LIMIT $3",
        );
        let rows = self
            .at(&LIST)
            .bind(after.to_owned())
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::statement("list the accounts"))?;
        rows.iter()
            .map(|row| -> Result<SummaryRow, sqlx::Error> {
                Ok(SummaryRow {
                    user_id: row.try_get("user_id")?,
                    state: row.try_get("state")?,
                    issued_at: row.try_get("issued_at")?,
                    expires_at: row.try_get("expires_at")?,
                    next_refresh_at: row.try_get("next_refresh_at")?,
                    failures: row.try_get("failures")?,
                    last_error: row.try_get("last_error")?,
                    key_id: row.try_get("key_id")?,
                    leased_by: row.try_get("leased_by")?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(Error::statement("list the accounts"))
    }

    pub(crate) async fn counts(&self) -> Result<Vec<(String, i64)>, Error> {
        let action = Error::statement("count the accounts");
        sqlx::query("SELECT state, COUNT(*) AS n FROM accounts GROUP BY state")
            .fetch_all(&self.pool)
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|row| Ok((row.try_get("state")?, row.try_get("n")?)))
                    .collect()
            })
            .map_err(action)
    }

    // ---- callbacks and revocation ---------------------------------------------------------

    /// The user removed the app: the token erased, the account deauthorized, with its event.
    /// The event, or `None` for an unknown account.
    pub(crate) async fn deauthorize(&self, user: &UserId) -> Result<Option<Event>, Error> {
        static DEAUTHORIZE: Sql = Sql::new(
            "UPDATE accounts SET state = 'deauthorized', token = $2, next_refresh_at = NULL, lease_owner = NULL,
                 lease_until = NULL, version = version + 1, updated_at = {now}
             WHERE user_id = $3 AND state <> 'deauthorized'
             RETURNING {now} AS now",
        );
        let query = self
            .at(&DEAUTHORIZE)
            .bind(Vec::<u8>::new())
            .bind(user.as_str().to_owned());
        let event = |now| {
            Some(Event::Deauthorized {
                user_id: user.clone(),
                at: Timestamp::from_unix(now),
            })
        };
        let changed = self
            .change_with_event("deauthorize an account", query, event)
            .await?;
        Ok(changed.flatten())
    }

    /// The user asked for their data to be deleted: a tombstone (kept even for an account
    /// not stored yet, so a login finishing after the request cannot store it), the row
    /// deleted, and the event.
    pub(crate) async fn delete(&self, user: &UserId, confirmation_code: &str) -> Result<Event, Error> {
        static TOMBSTONE: Sql = Sql::new(
            "INSERT INTO deleted_accounts (user_id, deleted_at) VALUES ($2, {now})
             ON CONFLICT (user_id) DO UPDATE SET deleted_at = excluded.deleted_at
             RETURNING deleted_at",
        );
        const ACTION: &str = "delete an account";
        let mut tx = self.begin(ACTION).await?;
        let now: i64 = self
            .at(&TOMBSTONE)
            .bind(user.as_str().to_owned())
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get("deleted_at"))
            .map_err(Error::statement(ACTION))?;
        sqlx::query("DELETE FROM accounts WHERE user_id = $1")
            .bind(user.as_str().to_owned())
            .execute(&mut *tx)
            .await
            .map_err(Error::statement(ACTION))?;
        let event = Event::DeletionRequested {
            user_id: user.clone(),
            at: Timestamp::from_unix(now),
            confirmation_code: confirmation_code.to_owned(),
        };
        Self::append(&mut tx, &event, now).await?;
        Self::commit(tx, ACTION).await?;
        Ok(event)
    }

    /// Keeps a webhook delivery of Meta's, once: its hash recorded and an event per entry
    /// written to the outbox, in one transaction. `false` (and nothing written) when a
    /// delivery of the same hash was kept already.
    pub(crate) async fn keep_inbound(
        &self,
        hash: &str,
        entries: &[igdisplay_model::WebhookEntry],
    ) -> Result<bool, Error> {
        static KEEP: Sql = Sql::new(
            "INSERT INTO inbound_webhooks (hash, received_at) VALUES ($2, {now})
             ON CONFLICT (hash) DO NOTHING
             RETURNING received_at",
        );
        const ACTION: &str = "keep a webhook delivery";
        let mut tx = self.begin(ACTION).await?;
        let kept: Option<i64> = self
            .at(&KEEP)
            .bind(hash.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .and_then(|row| row.map(|row| row.try_get("received_at")).transpose())
            .map_err(Error::statement(ACTION))?;
        let Some(now) = kept else {
            return Ok(false);
        };
        for entry in entries {
            let event = Event::InstagramNotification {
                user_id: entry.id.clone(),
                at: Timestamp::from_unix(now),
                entry: Box::new(entry.clone()),
            };
            Self::append(&mut tx, &event, now).await?;
        }
        Self::commit(tx, ACTION).await?;
        Ok(true)
    }

    /// Marks an active or failing account revoked (Instagram refused its token outside the
    /// keeper), with its event; `None` when it was neither.
    pub(crate) async fn mark_revoked(&self, user: &UserId, reason: &str) -> Result<Option<Event>, Error> {
        static REVOKE: Sql = Sql::new(
            "UPDATE accounts SET state = 'revoked', next_refresh_at = NULL, last_error = $2, updated_at = {now},
                 version = version + 1, lease_owner = NULL, lease_until = NULL
             WHERE user_id = $3 AND state IN ('active', 'failing')
             RETURNING {now} AS now",
        );
        let query = self
            .at(&REVOKE)
            .bind(truncate(reason, 500).to_owned())
            .bind(user.as_str().to_owned());
        let event = |now| {
            Some(Event::Revoked {
                user_id: user.clone(),
                at: Timestamp::from_unix(now),
            })
        };
        let changed = self
            .change_with_event("mark an account revoked", query, event)
            .await?;
        Ok(changed.flatten())
    }

    // ---- key rotation ---------------------------------------------------------------------

    /// Up to `batch` rows sealed under another key than `current`: user, token.
    pub(crate) async fn sealed_under_other_keys(
        &self,
        current: &str,
        batch: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let action = Error::statement("find tokens under older keys");
        // `key_id <> $1` written as two ranges, so the key index finds the few rows under an
        // old key without scanning a million under the current one.
        sqlx::query(
            "SELECT user_id, token FROM accounts
             WHERE (key_id < $1 OR key_id > $1) AND state <> 'deauthorized' LIMIT $2",
        )
        .bind(current.to_owned())
        .bind(i64::from(batch))
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| {
            rows.iter()
                .map(|row| Ok((row.try_get("user_id")?, row.try_get("token")?)))
                .collect()
        })
        .map_err(action)
    }

    /// Replaces a sealed token by its re-sealing, if it is still the one read. The version
    /// does not move: no keeper loses a write to a rotation.
    pub(crate) async fn reseal(
        &self,
        user: &str,
        old: &[u8],
        new: Vec<u8>,
        key_id: &str,
    ) -> Result<u64, Error> {
        let done =
            sqlx::query("UPDATE accounts SET token = $1, key_id = $2 WHERE user_id = $3 AND token = $4")
                .bind(new)
                .bind(key_id.to_owned())
                .bind(user.to_owned())
                .bind(old.to_vec())
                .execute(&self.pool)
                .await
                .map_err(Error::statement("re-seal a token"))?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn count_under_other_keys(&self, current: &str) -> Result<i64, Error> {
        sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE key_id <> $1 AND state <> 'deauthorized'")
            .bind(current.to_owned())
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get("n"))
            .map_err(Error::statement("count tokens under older keys"))
    }

    // ---- leases ---------------------------------------------------------------------------

    /// Takes `user`'s lease for `lease` seconds under `owner` if it is free or ran out.
    pub(crate) async fn take_lease(&self, user: &str, owner: &str, lease: i64) -> Result<LeaseTry, Error> {
        static TAKE: Sql = Sql::new(
            "UPDATE accounts SET lease_owner = $2, lease_until = {now} + $3
             WHERE user_id = $4 AND state IN ('active', 'failing')
               AND (lease_until IS NULL OR lease_until <= {now})
             RETURNING version",
        );
        static HELD: Sql =
            Sql::new("SELECT state, lease_until, {now} AS now FROM accounts WHERE user_id = $2");
        const ACTION: &str = "lease an account for a refresh";
        let taken = self
            .at(&TAKE)
            .bind(owner.to_owned())
            .bind(lease)
            .bind(user.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::statement(ACTION))?;
        if taken.is_some() {
            return Ok(LeaseTry::Taken);
        }
        let Some(row) = self
            .at(&HELD)
            .bind(user.to_owned())
            .fetch_optional(&self.pool)
            .await
            .map_err(Error::statement(ACTION))?
        else {
            return Ok(LeaseTry::Unusable);
        };
        let read = |row: &AnyRow| -> Result<(String, Option<i64>, i64), sqlx::Error> {
            Ok((
                row.try_get("state")?,
                row.try_get("lease_until")?,
                row.try_get("now")?,
            ))
        };
        let (state, until, now) = read(&row).map_err(Error::statement(ACTION))?;
        Ok(match (state.as_str(), until) {
            ("active" | "failing", Some(until)) => LeaseTry::Held { until, now },
            // Released between the two statements: try again at once.
            ("active" | "failing", None) => LeaseTry::Held { until: now, now },
            _ => LeaseTry::Unusable,
        })
    }

    /// Releases `user`'s lease if `owner` still holds it.
    pub(crate) async fn release(&self, user: &str, owner: &str) -> Result<(), Error> {
        sqlx::query("UPDATE accounts SET lease_owner = NULL, lease_until = NULL WHERE user_id = $1 AND lease_owner = $2")
            .bind(user.to_owned())
            .bind(owner.to_owned())
            .execute(&self.pool)
            .await
            .map_err(Error::statement("release a lease"))?;
        Ok(())
    }

    // ---- the keeper -----------------------------------------------------------------------

    /// Marks up to `limit` accounts whose token expired before a refresh succeeded, with
    /// their events.
    pub(crate) async fn expire(&self, limit: u32) -> Result<Vec<Event>, Error> {
        static EXPIRE: Sql = Sql::new(
            "UPDATE accounts SET state = 'expired', next_refresh_at = NULL, lease_owner = NULL,
                 lease_until = NULL, updated_at = {now}, version = version + 1
             WHERE user_id IN (
                 SELECT user_id FROM accounts
                 WHERE state IN ('active', 'failing') AND expires_at <= {now}
                   AND (lease_until IS NULL OR lease_until <= {now})
                 LIMIT $2{skip_locked})
             RETURNING user_id, expires_at, {now} AS now",
        );
        const ACTION: &str = "mark expired accounts";
        let mut tx = self.begin(ACTION).await?;
        let rows = self
            .at(&EXPIRE)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(Error::statement(ACTION))?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let read = || -> Result<(String, i64, i64), sqlx::Error> {
                Ok((
                    row.try_get("user_id")?,
                    row.try_get("expires_at")?,
                    row.try_get("now")?,
                ))
            };
            let (user_id, expired_at, now) = read().map_err(Error::statement(ACTION))?;
            let event = Event::Expired {
                user_id: UserId::new(user_id),
                at: Timestamp::from_unix(now),
                expired_at: Timestamp::from_unix(expired_at),
            };
            Self::append(&mut tx, &event, now).await?;
            events.push(event);
        }
        Self::commit(tx, ACTION).await?;
        Ok(events)
    }

    /// Claims up to `batch` due, unexpired accounts whose lease is free or ran out, oldest due
    /// first, under `owner` for `lease` seconds.
    pub(crate) async fn claim(&self, owner: &str, lease: i64, batch: u32) -> Result<Vec<ClaimedRow>, Error> {
        static CLAIM: Sql = Sql::new(
            "UPDATE accounts SET last_owner = lease_owner, lease_owner = $2, lease_until = {now} + $3
             WHERE user_id IN (
                 SELECT user_id FROM accounts
                 WHERE state IN ('active', 'failing') AND next_refresh_at <= {now} AND expires_at > {now}
                   AND (lease_until IS NULL OR lease_until <= {now})
                 ORDER BY next_refresh_at LIMIT $4{skip_locked})
             RETURNING user_id, record, token, version, failures, expires_at, last_owner",
        );
        let rows = self
            .at(&CLAIM)
            .bind(owner.to_owned())
            .bind(lease)
            .bind(i64::from(batch))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::statement("claim due accounts"))?;
        rows.iter()
            .map(|row| -> Result<ClaimedRow, sqlx::Error> {
                Ok(ClaimedRow {
                    user_id: row.try_get("user_id")?,
                    record: row.try_get("record")?,
                    token: row.try_get("token")?,
                    version: row.try_get("version")?,
                    failures: row.try_get("failures")?,
                    expires_at: row.try_get("expires_at")?,
                    previous_owner: row.try_get("last_owner")?,
                })
            })
            .collect::<Result<_, _>>()
            .map_err(Error::statement("claim due accounts"))
    }

    /// Re-takes a claimed account's lease for `lease` seconds from now, right before its
    /// refresh is sent: a compare-and-swap on the owner and the version, so a lease that ran
    /// out and was taken over, or a row written meanwhile, sends nothing. The database's time,
    /// or `None` when the lease is no longer this owner's.
    pub(crate) async fn renew(
        &self,
        user: &str,
        owner: &str,
        version: i64,
        lease: i64,
    ) -> Result<Option<i64>, Error> {
        static RENEW: Sql = Sql::new(
            "UPDATE accounts SET lease_until = {now} + $2
             WHERE user_id = $3 AND lease_owner = $4 AND version = $5
               AND state IN ('active', 'failing') AND expires_at > {now}
             RETURNING {now} AS now",
        );
        let action = Error::statement("renew a lease");
        self.at(&RENEW)
            .bind(lease)
            .bind(user.to_owned())
            .bind(owner.to_owned())
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .and_then(|row| row.map(|row| row.try_get("now")).transpose())
            .map_err(action)
    }

    /// Takes (or, for its holder, extends) the task lease `name` for `lease` seconds from
    /// now, unless another holder's has not run out. Whether `holder` holds it now.
    pub(crate) async fn take_task(&self, name: &str, holder: &str, lease: i64) -> Result<bool, Error> {
        static TAKE: Sql = Sql::new(
            "INSERT INTO task_leases (name, holder, until_at) VALUES ($2, $3, {now} + $4)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
             WHERE task_leases.until_at <= {now} OR task_leases.holder = excluded.holder
             RETURNING holder",
        );
        self.on_task(&TAKE, "take a task lease", name, holder, lease)
            .await
    }

    /// Extends the task lease `name` for `lease` seconds from now, only while `holder` still
    /// holds it (never takes it anew: a renewal racing a release does not bring it back).
    pub(crate) async fn renew_task(&self, name: &str, holder: &str, lease: i64) -> Result<bool, Error> {
        static RENEW: Sql = Sql::new(
            "UPDATE task_leases SET until_at = {now} + $4
             WHERE name = $2 AND holder = $3 AND until_at > {now}
             RETURNING holder",
        );
        self.on_task(&RENEW, "renew a task lease", name, holder, lease)
            .await
    }

    /// Runs a statement on the task lease `name` (`$2`) for `holder` (`$3`) and `lease`
    /// seconds (`$4`): whether it returned a row.
    async fn on_task(
        &self,
        sql: &'static Sql,
        action: &'static str,
        name: &str,
        holder: &str,
        lease: i64,
    ) -> Result<bool, Error> {
        self.at(sql)
            .bind(name.to_owned())
            .bind(holder.to_owned())
            .bind(lease)
            .fetch_optional(&self.pool)
            .await
            .map(|row| row.is_some())
            .map_err(Error::statement(action))
    }

    /// Lets go of the task lease `name`, if `holder` still holds it.
    pub(crate) async fn release_task(&self, name: &str, holder: &str) -> Result<(), Error> {
        sqlx::query("DELETE FROM task_leases WHERE name = $1 AND holder = $2")
            .bind(name.to_owned())
            .bind(holder.to_owned())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(Error::statement("release a task lease"))
    }

    /// A keeper's refreshed token over the claimed version, its lease released and its event
    /// written, in one transaction. The event, or `None` when the row moved on (a login, a
    /// deletion, a lease taken over).
    pub(crate) async fn write_refreshed(
        &self,
        owner: &str,
        version: i64,
        row: &NewRow,
        event: impl FnOnce(i64) -> Event,
    ) -> Result<Option<Event>, Error> {
        static WRITE: Sql = Sql::new(
            "UPDATE accounts SET record = $3, token = $4, key_id = $5, issued_at = $6, expires_at = $7,
                 version = version + 1, state = 'active', failures = 0, last_error = NULL, updated_at = {now},
                 next_refresh_at = $8, lease_owner = NULL, lease_until = NULL
             WHERE user_id = $2 AND version = $9 AND lease_owner = $10 AND state IN ('active', 'failing')
             RETURNING {now} AS now",
        );
        let query = bind_row(self.at(&WRITE), row)
            .bind(version)
            .bind(owner.to_owned());
        let written = self
            .change_with_event("write a refreshed token", query, |now| Some(event(now)))
            .await?;
        Ok(written.flatten())
    }

    /// A keeper's outcome that keeps the token, over the claimed version and lease only, the
    /// lease released, with the event `event` makes of the database's time (if any), in one
    /// transaction. Whether it was written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn settle(
        &self,
        user: &str,
        owner: &str,
        version: i64,
        state: &str,
        failures: u32,
        next_refresh_at: Option<i64>,
        reason: Option<&str>,
        event: impl FnOnce(i64) -> Option<Event>,
    ) -> Result<bool, Error> {
        static SETTLE: Sql = Sql::new(
            "UPDATE accounts SET state = $2, failures = $3, next_refresh_at = $4, last_error = $5,
                 lease_owner = NULL, lease_until = NULL, updated_at = {now}
             WHERE user_id = $6 AND version = $7 AND lease_owner = $8 AND state IN ('active', 'failing')
             RETURNING {now} AS now",
        );
        let query = self
            .at(&SETTLE)
            .bind(state.to_owned())
            .bind(i64::from(failures))
            .bind(next_refresh_at)
            .bind(reason.map(|r| truncate(r, 500).to_owned()))
            .bind(user.to_owned())
            .bind(version)
            .bind(owner.to_owned());
        let written = self
            .change_with_event("write a refresh's outcome", query, event)
            .await?;
        Ok(written.is_some())
    }

    /// How many accounts are due now, leased or not.
    pub(crate) async fn due(&self) -> Result<i64, Error> {
        static DUE: Sql = Sql::new(
            "SELECT COUNT(*) AS n FROM accounts
             WHERE state IN ('active', 'failing') AND next_refresh_at <= {now} AND expires_at > {now}",
        );
        self.at(&DUE)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get("n"))
            .map_err(Error::statement("count the due accounts"))
    }

    /// In one statement: how many seconds until the next thing a keeper has to do (an
    /// unleased account due, an expiry, with `events` a deliverable event, an app-wide pause
    /// ending), `None` when there is nothing ahead; zero or less when something is due now.
    /// What an idle keeper asks each time it wakes, and nothing else.
    pub(crate) async fn next_work(&self, events: bool) -> Result<Option<i64>, Error> {
        static NEXT_WORK: Sql = Sql::new(
            "SELECT (SELECT MIN(next_refresh_at) FROM accounts
                     WHERE state IN ('active', 'failing') AND (lease_until IS NULL OR lease_until <= {now})) AS due,
                    (SELECT MIN(expires_at) FROM accounts
                     WHERE state IN ('active', 'failing') AND (lease_until IS NULL OR lease_until <= {now})) AS expiry,
                    CASE WHEN $2 = 1 THEN (SELECT MIN(e.next_attempt_at) FROM events e
                     WHERE e.state = 'pending' AND (e.lease_until IS NULL OR e.lease_until <= {now})
                       AND NOT EXISTS (SELECT 1 FROM events p
                                       WHERE p.user_id = e.user_id AND p.state = 'pending' AND p.id < e.id))
                    END AS event,
                    {now} AS now",
        );
        let action = "find the next thing to do";
        let row = self
            .at(&NEXT_WORK)
            .bind(i64::from(events))
            .fetch_one(&self.pool)
            .await
            .map_err(Error::statement(action))?;
        let read = |name: &str| row.try_get::<Option<i64>, _>(name);
        let (due, expiry, event) = (read("due"), read("expiry"), read("event"));
        let now: i64 = row.try_get("now").map_err(Error::statement(action))?;
        let mut next = None;
        for at in [due, expiry, event] {
            if let Some(at) = at.map_err(Error::statement(action))? {
                next = Some(next.map_or(at, |next: i64| next.min(at)));
            }
        }
        Ok(next.map(|at| at.saturating_sub(now)))
    }

    // ---- the outbox -----------------------------------------------------------------------

    /// Claims up to `batch` deliverable events under `owner` for `lease` seconds: pending,
    /// due, unleased, and each the oldest pending event of its account (in order per
    /// account). Their attempt is counted now, so a crash mid-delivery still counts.
    pub(crate) async fn claim_events(
        &self,
        owner: &str,
        lease: i64,
        batch: u32,
    ) -> Result<Vec<EventRow>, Error> {
        static CLAIM_EVENTS: Sql = Sql::new(
            "UPDATE events SET lease_owner = $2, lease_until = {now} + $3, attempts = attempts + 1
             WHERE id IN (
                 SELECT e.id FROM events e
                 WHERE e.state = 'pending' AND e.next_attempt_at <= {now}
                   AND (e.lease_until IS NULL OR e.lease_until <= {now})
                   AND NOT EXISTS (SELECT 1 FROM events p
                                   WHERE p.user_id = e.user_id AND p.state = 'pending' AND p.id < e.id)
                 ORDER BY e.id LIMIT $4{skip_locked})
             RETURNING id, user_id, body, state, attempts, created_at, last_error",
        );
        let rows = self
            .at(&CLAIM_EVENTS)
            .bind(owner.to_owned())
            .bind(lease)
            .bind(i64::from(batch))
            .fetch_all(&self.pool)
            .await
            .map_err(Error::statement("claim events to deliver"))?;
        let mut events = rows
            .iter()
            .map(event_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::statement("claim events to deliver"))?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    /// A claimed event was delivered.
    pub(crate) async fn event_delivered(&self, id: i64, owner: &str) -> Result<(), Error> {
        static DELIVERED: Sql = Sql::new(
            "UPDATE events SET state = 'delivered', finished_at = {now}, lease_owner = NULL, lease_until = NULL,
                 last_error = NULL
             WHERE id = $2 AND lease_owner = $3",
        );
        self.at(&DELIVERED)
            .bind(id)
            .bind(owner.to_owned())
            .execute(&self.pool)
            .await
            .map_err(Error::statement("mark an event delivered"))?;
        Ok(())
    }

    /// A claimed event's delivery failed: tried again `backoff` seconds from now, or `dead`
    /// once it was created `give_up_after` seconds ago or more. Whether it is dead now.
    pub(crate) async fn event_failed(
        &self,
        id: i64,
        owner: &str,
        backoff: i64,
        give_up_after: i64,
        error: &str,
    ) -> Result<bool, Error> {
        static FAILED: Sql = Sql::new(
            "UPDATE events SET lease_owner = NULL, lease_until = NULL, last_error = $2, next_attempt_at = {now} + $3,
                 state = CASE WHEN created_at <= {now} - $4 THEN 'dead' ELSE 'pending' END,
                 finished_at = CASE WHEN created_at <= {now} - $4 THEN {now} END
             WHERE id = $5 AND lease_owner = $6
             RETURNING state",
        );
        let state: Option<String> = self
            .at(&FAILED)
            .bind(truncate(error, 500).to_owned())
            .bind(backoff)
            .bind(give_up_after)
            .bind(id)
            .bind(owner.to_owned())
            .fetch_optional(&self.pool)
            .await
            .and_then(|row| row.map(|row| row.try_get("state")).transpose())
            .map_err(Error::statement("record a failed delivery"))?;
        Ok(state.as_deref() == Some("dead"))
    }

    /// Makes event `id` pending again, due now, its attempts forgotten. Whether it exists.
    pub(crate) async fn resend(&self, id: i64) -> Result<bool, Error> {
        static RESEND: Sql = Sql::new(
            "UPDATE events SET state = 'pending', next_attempt_at = {now}, attempts = 0, finished_at = NULL,
                 lease_owner = NULL, lease_until = NULL
             WHERE id = $2",
        );
        let done = self
            .at(&RESEND)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(Error::statement("send an event again"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Up to `limit` events after `after` (by id), of `state` if given.
    pub(crate) async fn events(
        &self,
        state: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<EventRow>, Error> {
        let action = Error::statement("list the events");
        sqlx::query(
            "SELECT id, user_id, body, state, attempts, created_at, last_error FROM events
             WHERE id > $1 AND ($2 = '' OR state = $2) ORDER BY id LIMIT $3",
        )
        .bind(after)
        .bind(state.unwrap_or_default().to_owned())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(event_row).collect())
        .map_err(action)
    }

    /// The events among `ids`, for a subscriber re-reading the gaps it saw.
    pub(crate) async fn events_by_id(&self, ids: &[i64]) -> Result<Vec<EventRow>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let (low, high) = (
            ids.iter().copied().min().unwrap_or_default(),
            ids.iter().copied().max().unwrap_or_default(),
        );
        let action = Error::statement("read the events of a gap");
        let rows: Vec<EventRow> = sqlx::query(
            "SELECT id, user_id, body, state, attempts, created_at, last_error FROM events
             WHERE id >= $1 AND id <= $2 ORDER BY id",
        )
        .bind(low)
        .bind(high)
        .fetch_all(&self.pool)
        .await
        .and_then(|rows| rows.iter().map(event_row).collect())
        .map_err(action)?;
        Ok(rows.into_iter().filter(|row| ids.contains(&row.id)).collect())
    }

    /// The highest event id (0 when there is none) and the database's time.
    pub(crate) async fn last_event(&self) -> Result<(i64, i64), Error> {
        static LAST: Sql = Sql::new("SELECT COALESCE(MAX(id), 0) AS id, {now} AS now FROM events");
        let action = Error::statement("read the last event");
        self.at(&LAST)
            .fetch_one(&self.pool)
            .await
            .and_then(|row| Ok((row.try_get("id")?, row.try_get("now")?)))
            .map_err(action)
    }

    /// Deletes up to `limit` rows past their time: events delivered more than `retention`
    /// seconds ago, pending ones nobody delivered within it (no webhook is configured), dead
    /// ones after four times it, and tombstones after it. How many went.
    pub(crate) async fn prune(&self, retention: i64, limit: u32) -> Result<u64, Error> {
        static PRUNE_EVENTS: Sql = Sql::new(
            "DELETE FROM events WHERE id IN (
                 SELECT id FROM events
                 WHERE (state = 'delivered' AND finished_at <= {now} - $2)
                    OR (state = 'pending' AND created_at <= {now} - $2)
                    OR (state = 'dead' AND finished_at <= {now} - 4 * $2)
                 LIMIT $3)",
        );
        static PRUNE_TOMBSTONES: Sql = Sql::new(
            "DELETE FROM deleted_accounts WHERE user_id IN (
                 SELECT user_id FROM deleted_accounts WHERE deleted_at <= {now} - $2 LIMIT $3)",
        );
        // The hashes of Meta's deliveries deduplicate its retries, which come within hours:
        // kept as long as events, then gone, so a receiver's table does not grow for ever.
        static PRUNE_INBOUND: Sql = Sql::new(
            "DELETE FROM inbound_webhooks WHERE hash IN (
                 SELECT hash FROM inbound_webhooks WHERE received_at <= {now} - $2 LIMIT $3)",
        );
        // A connect link used, or expired unused, a retention ago (a feed's link is shown to
        // nobody once used; its row only said which account it bound).
        static PRUNE_LINKS: Sql = Sql::new(
            "DELETE FROM connect_links WHERE hash IN (
                 SELECT hash FROM connect_links
                 WHERE (used_at IS NOT NULL AND used_at <= {now} - $2)
                    OR (used_at IS NULL AND expires_at <= {now} - $2)
                 LIMIT $3)",
        );
        let mut gone = 0u64;
        for sql in [&PRUNE_EVENTS, &PRUNE_TOMBSTONES, &PRUNE_INBOUND, &PRUNE_LINKS] {
            let done = self
                .at(sql)
                .bind(retention)
                .bind(i64::from(limit))
                .execute(&self.pool)
                .await
                .map_err(Error::statement(
                    "prune old events, tombstones and webhook hashes",
                ))?;
            gone = gone.saturating_add(done.rows_affected());
        }
        Ok(gone)
    }

    // ---- the app's budget -----------------------------------------------------------------

    /// Books one request of a quota of one per `interval_ms` (the generic cell rate algorithm
    /// on the database's clock, shared by every instance).
    pub(crate) async fn reserve(&self, interval_ms: i64) -> Result<BudgetRow, Error> {
        static RESERVE: Sql = Sql::new(
            "UPDATE app_budget SET quota_tat =
                 (CASE WHEN quota_tat IS NULL OR quota_tat < {now_ms} THEN {now_ms} ELSE quota_tat END) + $2
             WHERE scope = 'app'
             RETURNING quota_tat, blocked_until, usage_percent, {now_ms} AS now",
        );
        let row = self
            .at_ms(&RESERVE)
            .bind(interval_ms)
            .fetch_one(&self.pool)
            .await
            .map_err(Error::statement("book a request of the app's quota"))?;
        budget_row(&row).map_err(Error::statement("book a request of the app's quota"))
    }

    /// The app's budget without booking anything.
    pub(crate) async fn budget(&self) -> Result<BudgetRow, Error> {
        static BUDGET: Sql = Sql::new(
            "SELECT quota_tat, blocked_until, usage_percent, {now_ms} AS now FROM app_budget WHERE scope = 'app'",
        );
        let row = self
            .at_ms(&BUDGET)
            .fetch_one(&self.pool)
            .await
            .map_err(Error::statement("read the app's budget"))?;
        budget_row(&row).map_err(Error::statement("read the app's budget"))
    }

    /// Every instance waits `pause` from the database's now (a rate-limit answer announced
    /// it); a longer pause already written stays.
    pub(crate) async fn block_for(&self, pause: Duration) -> Result<(), Error> {
        static BLOCK: Sql = Sql::new(
            "UPDATE app_budget SET blocked_until = CASE WHEN blocked_until IS NULL OR blocked_until < {now_ms} + $2
                 THEN {now_ms} + $2 ELSE blocked_until END
             WHERE scope = 'app'",
        );
        self.at_ms(&BLOCK)
            .bind(i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 2))
            .execute(&self.pool)
            .await
            .map_err(Error::statement("share a rate-limit pause"))?;
        Ok(())
    }

    /// Records the share of the app's budget Instagram last reported.
    pub(crate) async fn observe_usage(&self, percent: i64) -> Result<(), Error> {
        static OBSERVE: Sql =
            Sql::new("UPDATE app_budget SET usage_percent = $2, observed_at = {now_ms} WHERE scope = 'app'");
        self.at_ms(&OBSERVE)
            .bind(percent)
            .execute(&self.pool)
            .await
            .map_err(Error::statement("record the app's usage"))?;
        Ok(())
    }

    // ---- what an operator watches ---------------------------------------------------------

    pub(crate) async fn stats(&self) -> Result<StatsRow, Error> {
        static OUTBOX: Sql = Sql::new(
            "SELECT (SELECT COUNT(*) FROM events WHERE state = 'pending') AS pending,
                    (SELECT MIN(created_at) FROM events WHERE state = 'pending') AS oldest,
                    (SELECT COUNT(*) FROM events WHERE state = 'dead') AS dead,
                    (SELECT usage_percent FROM app_budget WHERE scope = 'app') AS usage_percent,
                    {now} AS now",
        );
        const ACTION: &str = "read the fleet's figures";
        let states = self.counts().await?;
        let due = self.due().await?;
        let row = self
            .at(&OUTBOX)
            .fetch_one(&self.pool)
            .await
            .map_err(Error::statement(ACTION))?;
        let read = || -> Result<StatsRow, sqlx::Error> {
            Ok(StatsRow {
                states,
                due,
                pending: row.try_get("pending")?,
                oldest_pending: row.try_get("oldest")?,
                dead: row.try_get("dead")?,
                usage_percent: row.try_get("usage_percent")?,
                now: row.try_get("now")?,
            })
        };
        read().map_err(Error::statement(ACTION))
    }

    /// Whether the database answers, and its schema's version.
    pub(crate) async fn schema_version(&self) -> Result<i64, Error> {
        sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM igdisplay_schema")
            .fetch_one(&self.pool)
            .await
            .and_then(|row| row.try_get("version"))
            .map_err(Error::statement("read the schema version"))
    }
}

fn event_row(row: &AnyRow) -> Result<EventRow, sqlx::Error> {
    Ok(EventRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        body: row.try_get("body")?,
        state: row.try_get("state")?,
        attempts: row.try_get("attempts")?,
        created_at: row.try_get("created_at")?,
        last_error: row.try_get("last_error")?,
    })
}

fn budget_row(row: &AnyRow) -> Result<BudgetRow, sqlx::Error> {
    Ok(BudgetRow {
        quota_tat: row.try_get("quota_tat")?,
        blocked_until: row.try_get("blocked_until")?,
        usage_percent: row.try_get("usage_percent")?,
        now: row.try_get("now")?,
    })
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_never_splits_a_character() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("short", 500), "short");
    }
}

//! [`SqlStore`]: accounts in SQLite (one file, WAL) or PostgreSQL (many instances), tokens
//! sealed by a [`KeyRing`]. One implementation over sqlx's `Any` driver: the statements use
//! `$N` placeholders and `ON CONFLICT … RETURNING`, which both databases speak; only the
//! migrations are per database.

use crate::keys::{KeyError, KeyRing};
use crate::schedule::RefreshSchedule;
use crate::schema::{self, Dialect};
use igdisplay_auth::{RefreshLock, StoreError, TokenRecord, TokenStore};
use igdisplay_http::{SharedClock, SystemClock};
use igdisplay_model::{Timestamp, UserId};
use sqlx::any::AnyPoolOptions;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What a store operation can fail with. Never holds a token or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed (it could not be opened, a statement failed, the disk is full).
    #[error("the database failed")]
    Database(#[source] sqlx::Error),
    /// A token could not be sealed or opened: a wrong or missing key, an altered row.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A stored row is not a token record this version reads.
    #[error("the stored record of account {user_id} is not valid")]
    Corrupt {
        /// Whose row.
        user_id: String,
        /// What was wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A write lost a race: the row changed since it was read (compare-and-swap), or it holds
    /// a token issued later than the one being written (a refresh that raced a new login).
    /// The newer row is kept.
    #[error("account {user_id} was written by someone else first; the newer token is kept")]
    Conflict {
        /// Whose row.
        user_id: String,
    },
    /// The URL names no database this store speaks (`sqlite:` or `postgres:`).
    #[error("`{scheme}` is not a database this store speaks: use sqlite:PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL's scheme.
        scheme: String,
    },
    /// The database has a newer schema than this version knows.
    #[error("the database schema is at version {found}, newer than the {known} this igdisplay knows")]
    SchemaTooNew {
        /// The schema version found.
        found: i64,
        /// The newest this version knows.
        known: i64,
    },
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::Database(error)
    }
}

impl Error {
    /// This error as the [`TokenStore`] trait reports it: a [`StoreError::Backend`] whose
    /// source is this error (downcast it to tell the cases apart).
    pub fn into_store_error(self, action: &'static str) -> StoreError {
        StoreError::Backend {
            action,
            source: Box::new(self),
        }
    }
}

/// A stored account: its token record and the row's bookkeeping.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Account {
    /// The token record, token opened.
    pub record: TokenRecord,
    /// Grows by one with every write; [`SqlStore::save_if_version`] writes only over the
    /// version it read.
    pub version: i64,
    /// The id of the key the token is sealed with.
    pub key_id: String,
}

/// Token records of many accounts in SQL: SQLite (one file in WAL mode, so readers never wait
/// for the writer: the embedded default for a server) or PostgreSQL (one database for many
/// instances). The schema is created and migrated on connect. Tokens are sealed with the
/// ring's current key and the account id as associated data: neither the database nor a
/// backup of it holds a token in the clear.
///
/// Every write is guarded: a token is never replaced by one issued earlier (a refresh that
/// raced a new login loses, with [`Error::Conflict`]), and
/// [`save_if_version`](Self::save_if_version) is a compare-and-swap on the row's version.
///
/// ```
/// use igdisplay_auth::{Platform, TokenKind, TokenRecord, TokenStore};
/// use igdisplay_model::{AccessToken, UserId};
/// use igdisplay_store::{Key, KeyRing, SqlStore};
/// use std::time::{Duration, SystemTime};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let keys = KeyRing::new(Key::generate("2026-12")?); // keep the key in a secret manager
/// let store = SqlStore::sqlite(&dir.path().join("accounts.db"), keys).await?;
/// let record = TokenRecord::new(UserId::new("17841405793187218"), AccessToken::new("IGAAsecret"),
///     TokenKind::LongLived, Platform::InstagramLogin, SystemTime::now(), Duration::from_secs(60 * 86_400));
/// store.save(&record).await?;
/// let loaded = store.load(&record.user_id).await?.expect("stored");
/// assert_eq!(loaded.access_token.expose_secret(), "IGAAsecret");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) schedule: RefreshSchedule,
    pub(crate) clock: SharedClock,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect)
            .field("keys", &self.keys.ids())
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens (creating it if needed) the SQLite database at `path`, in WAL mode, and brings
    /// its schema up to date.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn sqlite(path: &Path, keys: KeyRing) -> Result<Self, Error> {
        Self::connect(&sqlite_url(path), keys).await
    }

    /// Connects to `url` (`sqlite:PATH` for a file, made if missing; `sqlite://PATH?mode=rwc`;
    /// `postgres://user@host:port/db`) and brings the schema up to date.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedUrl`]; [`Error::Database`] when the database cannot be reached or
    /// migrated; [`Error::SchemaTooNew`] when a newer igdisplay wrote it.
    pub async fn connect(url: &str, keys: KeyRing) -> Result<Self, Error> {
        // `sqlite:PATH` (no `//`): a file path, as the CLI and the example take it.
        let file_url;
        let url = match url.strip_prefix("sqlite:") {
            Some(path) if !path.starts_with("//") => {
                file_url = sqlite_url(Path::new(path));
                file_url.as_str()
            }
            _ => url,
        };
        let scheme = url.split(':').next().unwrap_or_default();
        let dialect = match scheme {
            "sqlite" => Dialect::Sqlite,
            "postgres" | "postgresql" => Dialect::Postgres,
            _ => {
                return Err(Error::UnsupportedUrl {
                    scheme: scheme.to_owned(),
                });
            }
        };
        sqlx::any::install_default_drivers();
        // SQLite serializes writers anyway; a few connections serve the readers.
        let connections = match dialect {
            Dialect::Sqlite => 4,
            Dialect::Postgres => 8,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .connect(url)
            .await?;
        schema::migrate(&pool, dialect).await?;
        Ok(Self {
            pool,
            dialect,
            keys: Arc::new(keys),
            schedule: RefreshSchedule::default(),
            clock: Arc::new(SystemClock),
        })
    }

    /// Reads the time from `clock` (default: the system's): schedules, leases and the
    /// keeper's decisions follow it. Inject a manual clock in tests.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The store's time in Unix seconds.
    pub(crate) fn now_unix(&self) -> i64 {
        Timestamp::from_system_time(self.clock.now()).unix()
    }

    /// Schedules the refresh of every token written from now on by `schedule` (default: day
    /// 20 of a 60-day token).
    #[must_use]
    pub fn with_schedule(mut self, schedule: RefreshSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The refresh schedule.
    pub fn schedule(&self) -> RefreshSchedule {
        self.schedule
    }

    /// The connection pool, for an application's own tables in the same database (the
    /// `accounts` table and `igdisplay_schema` are the store's).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The key ring the tokens are sealed with.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The stored account of `user`, token opened, with its row version.
    ///
    /// # Errors
    ///
    /// [`Error::Database`], [`Error::Key`] (a wrong or missing key) or [`Error::Corrupt`].
    pub async fn account(&self, user: &UserId) -> Result<Option<Account>, Error> {
        let row = sqlx::query(
            "SELECT record, token, key_id, version FROM accounts WHERE user_id = $1 AND state <> 'deauthorized'",
        )
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Account {
            record: self.open_row(user.as_str(), &row)?,
            version: row.try_get("version")?,
            key_id: row.try_get("key_id")?,
        }))
    }

    /// The token record of a row with `record` and `token` columns, token opened.
    pub(crate) fn open_row(&self, user_id: &str, row: &AnyRow) -> Result<TokenRecord, Error> {
        let record: String = row.try_get("record")?;
        let sealed: Vec<u8> = row.try_get("token")?;
        let token = self.keys.open(user_id, &sealed)?;
        let corrupt = |source| Error::Corrupt {
            user_id: user_id.to_owned(),
            source,
        };
        let mut fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&record).map_err(corrupt)?;
        let token = String::from_utf8(token).map_err(|_| Error::Key(KeyError::Malformed))?;
        fields.insert("access_token".to_owned(), serde_json::Value::String(token));
        serde_json::from_value(serde_json::Value::Object(fields)).map_err(corrupt)
    }

    /// Writes `record` only if the row is still at `expected` (the version an earlier
    /// [`account`](Self::account) read; `None`: only if there is no row yet). Returns the new
    /// version.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when someone wrote the row in between (nothing is written);
    /// [`Error::Database`] or [`Error::Key`].
    pub async fn save_if_version(&self, record: &TokenRecord, expected: Option<i64>) -> Result<i64, Error> {
        let row = self.row_of(record)?;
        let written = match expected {
            None => self.insert(INSERT_NEW, &row).await?,
            Some(version) => self.update_if_version(&row, version).await?,
        };
        written.ok_or_else(|| conflict(record))
    }

    /// Writes `record` unless the row holds a token issued later (then [`Error::Conflict`]
    /// and the newer row stays). Returns the new version.
    async fn save_newer(&self, record: &TokenRecord) -> Result<i64, Error> {
        let row = self.row_of(record)?;
        self.insert(UPSERT_NEWER, &row)
            .await?
            .ok_or_else(|| conflict(record))
    }

    /// Runs one of the `INSERT … RETURNING version` statements with `row`'s eight values: the
    /// new version, or `None` when its conflict clause wrote nothing.
    async fn insert(&self, sql: &'static str, row: &NewRow) -> Result<Option<i64>, Error> {
        self.write(sql, row, None).await
    }

    /// Writes `row` over the row at `version` (a new token: the account is active again, its
    /// failures forgotten, its lease released). The new version, or `None` when the row moved
    /// on.
    pub(crate) async fn update_if_version(&self, row: &NewRow, version: i64) -> Result<Option<i64>, Error> {
        self.write(UPDATE_IF_VERSION, row, Some(version)).await
    }

    /// Runs a row-writing statement: `$1`–`$8` are the row's values in one order (user, record,
    /// token, key id, issued, expires, now, next refresh), `$9` the expected version if any.
    async fn write(
        &self,
        sql: &'static str,
        row: &NewRow,
        version: Option<i64>,
    ) -> Result<Option<i64>, Error> {
        let mut query = sqlx::query(sql)
            .bind(&row.user_id)
            .bind(&row.record)
            .bind(&row.token)
            .bind(self.keys.current_id())
            .bind(row.issued_at)
            .bind(row.expires_at)
            .bind(self.now_unix())
            .bind(row.next_refresh_at);
        if let Some(version) = version {
            query = query.bind(version);
        }
        let written = query.fetch_optional(&self.pool).await?;
        Ok(written.map(|written| written.try_get("version")).transpose()?)
    }

    /// The columns of `record`: the token sealed, the rest as JSON without it.
    pub(crate) fn row_of(&self, record: &TokenRecord) -> Result<NewRow, Error> {
        let user_id = record.user_id.as_str().to_owned();
        let corrupt = |source| Error::Corrupt {
            user_id: user_id.clone(),
            source,
        };
        let mut value = serde_json::to_value(record).map_err(corrupt)?;
        if let Some(fields) = value.as_object_mut() {
            fields.remove("access_token");
        }
        let record_json = serde_json::to_string(&value).map_err(corrupt)?;
        let token = self
            .keys
            .seal(&user_id, record.access_token.expose_secret().as_bytes())?;
        Ok(NewRow {
            record: record_json,
            token,
            issued_at: record.issued_at.unix(),
            expires_at: record.expires_at.unix(),
            next_refresh_at: self.schedule.next_refresh(record),
            user_id,
        })
    }
}

/// The URL of the SQLite file at `path`, created if missing: `%`, `?` and `#` are
/// percent-encoded (sqlx decodes them), so any file name works.
fn sqlite_url(path: &Path) -> String {
    let path = path.to_string_lossy();
    let mut url = String::with_capacity(path.len() + 20);
    url.push_str("sqlite://");
    for c in path.chars() {
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url.push_str("?mode=rwc");
    url
}

/// A new row, or nothing when there is one already.
const INSERT_NEW: &str = "INSERT INTO accounts
         (user_id, record, token, key_id, issued_at, expires_at, updated_at, next_refresh_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id) DO NOTHING RETURNING version";

/// A new row, or a new token over an older one; nothing over a token issued later. A new
/// token makes the account active again and forgets its failures.
const UPSERT_NEWER: &str = "INSERT INTO accounts
         (user_id, record, token, key_id, issued_at, expires_at, updated_at, next_refresh_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (user_id) DO UPDATE SET record = excluded.record, token = excluded.token,
         key_id = excluded.key_id, issued_at = excluded.issued_at, expires_at = excluded.expires_at,
         version = accounts.version + 1, state = 'active', failures = 0, last_error = NULL,
         next_refresh_at = excluded.next_refresh_at, updated_at = excluded.updated_at
     WHERE excluded.issued_at >= accounts.issued_at
     RETURNING version";

/// A new token over the row at a known version (compare-and-swap); its lease is released.
const UPDATE_IF_VERSION: &str = "UPDATE accounts SET record = $2, token = $3, key_id = $4,
         issued_at = $5, expires_at = $6, version = version + 1, state = 'active', failures = 0,
         last_error = NULL, updated_at = $7, next_refresh_at = $8, lease_owner = NULL, lease_until = NULL
     WHERE user_id = $1 AND version = $9 RETURNING version";

fn conflict(record: &TokenRecord) -> Error {
    Error::Conflict {
        user_id: record.user_id.as_str().to_owned(),
    }
}

/// A row to write.
pub(crate) struct NewRow {
    pub(crate) user_id: String,
    record: String,
    token: Vec<u8>,
    issued_at: i64,
    expires_at: i64,
    next_refresh_at: Option<i64>,
}

/// How long an on-demand refresh holds an account's lease, at most.
const ON_DEMAND_LEASE: Duration = Duration::from_secs(60);
/// How long an on-demand refresh waits for a keeper's lease before going on without it.
pub const ON_DEMAND_WAIT: Duration = Duration::from_secs(10);
/// How often it looks again meanwhile.
const ON_DEMAND_POLL: Duration = Duration::from_millis(100);

impl SqlStore {
    /// Takes `user`'s lease under a one-off owner name, waiting for a holder to let go.
    async fn lease_for_refresh(&self, user: &UserId) -> Result<RefreshLock, Error> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|_| Error::Key(KeyError::Random))?;
        let owner = format!("on-demand-{:016x}", u64::from_le_bytes(random));
        let mut waited = Duration::ZERO;
        loop {
            let now = self.now_unix();
            let until = now.saturating_add(i64::try_from(ON_DEMAND_LEASE.as_secs()).unwrap_or(i64::MAX));
            let taken = sqlx::query(
                "UPDATE accounts SET lease_owner = $1, lease_until = $2
                 WHERE user_id = $3 AND (lease_until IS NULL OR lease_until <= $4)",
            )
            .bind(&owner)
            .bind(until)
            .bind(user.as_str())
            .bind(now)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() > 0 {
                return Ok(RefreshLock::holding(Lease {
                    pool: self.pool.clone(),
                    user_id: user.as_str().to_owned(),
                    owner,
                }));
            }
            let exists = sqlx::query("SELECT 1 AS one FROM accounts WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await?
                .is_some();
            if !exists || waited >= ON_DEMAND_WAIT {
                tracing::debug!(%user, "refreshing without the account's lease");
                return Ok(RefreshLock::none());
            }
            self.clock.sleep(ON_DEMAND_POLL).await;
            waited = waited.saturating_add(ON_DEMAND_POLL);
        }
    }
}

/// A held on-demand lease; released when dropped (or when it runs out, if the release cannot
/// be sent: no runtime, the database gone).
struct Lease {
    pool: AnyPool,
    user_id: String,
    owner: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (pool, user_id, owner) = (
            self.pool.clone(),
            std::mem::take(&mut self.user_id),
            std::mem::take(&mut self.owner),
        );
        runtime.spawn(async move {
            let _ = sqlx::query(
                "UPDATE accounts SET lease_owner = NULL, lease_until = NULL WHERE user_id = $1 AND lease_owner = $2",
            )
            .bind(user_id)
            .bind(owner)
            .execute(&pool)
            .await;
        });
    }
}

#[async_trait::async_trait]
impl TokenStore for SqlStore {
    async fn load(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        self.account(user)
            .await
            .map(|account| account.map(|a| a.record))
            .map_err(|e| e.into_store_error("read an account"))
    }

    async fn save(&self, record: &TokenRecord) -> Result<(), StoreError> {
        self.save_newer(record)
            .await
            .map(drop)
            .map_err(|e| e.into_store_error("write an account"))
    }

    async fn remove(&self, user: &UserId) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM accounts WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| Error::from(e).into_store_error("remove an account"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes the account's lease for an on-demand refresh ([`TokenManager`](igdisplay_auth::TokenManager)),
    /// the same lease a keeper claims: one refresh at a time per account across every
    /// instance. While a keeper holds it, this waits (on the store's clock) for up to
    /// [`ON_DEMAND_WAIT`], then goes on without it; the write that follows is still guarded
    /// (a token never replaces a newer one).
    async fn refresh_lock(&self, user: &UserId) -> Result<RefreshLock, StoreError> {
        self.lease_for_refresh(user)
            .await
            .map_err(|e| e.into_store_error("lease an account for a refresh"))
    }

    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        let rows = sqlx::query("SELECT user_id FROM accounts ORDER BY user_id")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| Error::from(e).into_store_error("list the accounts"))?;
        rows.iter()
            .map(|row| row.try_get::<String, _>("user_id").map(UserId::new))
            .collect::<Result<_, _>>()
            .map_err(|e| Error::from(e).into_store_error("list the accounts"))
    }
}

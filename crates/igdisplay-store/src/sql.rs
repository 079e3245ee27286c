//! [`SqlStore`]: accounts in SQLite (one file, WAL) or PostgreSQL (many instances), tokens
//! sealed by a [`KeyRing`]. One implementation over sqlx's `Any` driver: the statements use
//! `$N` placeholders and `ON CONFLICT … RETURNING`, which both databases speak; only the
//! migrations are per database.

use crate::keys::{KeyError, KeyRing};
use crate::schema::{self, Dialect};
use igdisplay_auth::{StoreError, TokenRecord, TokenStore};
use igdisplay_model::UserId;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row as _};
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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
    pool: AnyPool,
    dialect: Dialect,
    keys: Arc<KeyRing>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.dialect)
            .field("keys", &self.keys.ids())
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
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display()), keys).await
    }

    /// Connects to `url` (`sqlite://PATH?mode=rwc`, `postgres://user@host:port/db`) and brings
    /// the schema up to date.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedUrl`]; [`Error::Database`] when the database cannot be reached or
    /// migrated; [`Error::SchemaTooNew`] when a newer igdisplay wrote it.
    pub async fn connect(url: &str, keys: KeyRing) -> Result<Self, Error> {
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
        })
    }

    /// The stored account of `user`, token opened, with its row version.
    ///
    /// # Errors
    ///
    /// [`Error::Database`], [`Error::Key`] (a wrong or missing key) or [`Error::Corrupt`].
    pub async fn account(&self, user: &UserId) -> Result<Option<Account>, Error> {
        let row = sqlx::query("SELECT record, token, key_id, version FROM accounts WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record: String = row.try_get("record")?;
        let sealed: Vec<u8> = row.try_get("token")?;
        let token = self.keys.open(user.as_str(), &sealed)?;
        let corrupt = |source| Error::Corrupt {
            user_id: user.as_str().to_owned(),
            source,
        };
        let mut fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&record).map_err(corrupt)?;
        let token = String::from_utf8(token).map_err(|_| Error::Key(KeyError::Malformed))?;
        fields.insert("access_token".to_owned(), serde_json::Value::String(token));
        let record: TokenRecord =
            serde_json::from_value(serde_json::Value::Object(fields)).map_err(corrupt)?;
        Ok(Some(Account {
            record,
            version: row.try_get("version")?,
            key_id: row.try_get("key_id")?,
        }))
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
            Some(version) => sqlx::query(
                "UPDATE accounts SET record = $1, token = $2, key_id = $3, issued_at = $4, expires_at = $5,
                     version = version + 1, updated_at = $6
                 WHERE user_id = $7 AND version = $8 RETURNING version",
            )
            .bind(&row.record)
            .bind(&row.token)
            .bind(self.keys.current_id())
            .bind(row.issued_at)
            .bind(row.expires_at)
            .bind(now_unix())
            .bind(&row.user_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?
            .map(|written| written.try_get("version"))
            .transpose()?,
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

    /// Runs one of the `INSERT … RETURNING version` statements with `row`'s seven values: the
    /// new version, or `None` when its conflict clause wrote nothing.
    async fn insert(&self, sql: &'static str, row: &NewRow) -> Result<Option<i64>, Error> {
        let written = sqlx::query(sql)
            .bind(&row.user_id)
            .bind(&row.record)
            .bind(&row.token)
            .bind(self.keys.current_id())
            .bind(row.issued_at)
            .bind(row.expires_at)
            .bind(now_unix())
            .fetch_optional(&self.pool)
            .await?;
        Ok(written.map(|written| written.try_get("version")).transpose()?)
    }

    /// The columns of `record`: the token sealed, the rest as JSON without it.
    fn row_of(&self, record: &TokenRecord) -> Result<NewRow, Error> {
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
            user_id,
        })
    }
}

/// A new row, or nothing when there is one already.
const INSERT_NEW: &str =
    "INSERT INTO accounts (user_id, record, token, key_id, issued_at, expires_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id) DO NOTHING RETURNING version";

/// A new row, or a new token over an older one; nothing over a token issued later.
const UPSERT_NEWER: &str =
    "INSERT INTO accounts (user_id, record, token, key_id, issued_at, expires_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (user_id) DO UPDATE SET record = excluded.record, token = excluded.token,
         key_id = excluded.key_id, issued_at = excluded.issued_at, expires_at = excluded.expires_at,
         version = accounts.version + 1, state = 'active', failures = 0, updated_at = excluded.updated_at
     WHERE excluded.issued_at >= accounts.issued_at
     RETURNING version";

fn conflict(record: &TokenRecord) -> Error {
    Error::Conflict {
        user_id: record.user_id.as_str().to_owned(),
    }
}

/// A row to write.
struct NewRow {
    user_id: String,
    record: String,
    token: Vec<u8>,
    issued_at: i64,
    expires_at: i64,
}

/// The system time as Unix seconds, for `updated_at` (bookkeeping only: no decision of the
/// store depends on it).
#[allow(clippy::disallowed_methods)]
fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
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

//! What the site must remember across restarts, apart from the token store: whose account the
//! site shows (owner mode), the owner's one-time setup codes (their hashes; any instance
//! accepts one, once), and each data-deletion request it answered (the status page Meta
//! links to, and the answer a retried request gets again). In the accounts database when
//! there is one, so every instance agrees; else in one private file (`0600`, replaced
//! atomically); in memory only for tests.

use igdisplay::model::UserId;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// A data-deletion request the site answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// The confirmation code given to Meta.
    pub code: String,
    /// Whose data (the app-scoped user id).
    pub user: String,
    /// When, RFC 3339.
    pub at: String,
    /// What was deleted, in a sentence.
    pub deleted: String,
    /// The JSON answer given (a retried request gets it again).
    pub answer: String,
    /// The signature of the request answered.
    pub signature: String,
}

/// The records failed (the database is down, the disk is full): the request is answered with
/// a 503 and Meta retries.
#[derive(Debug, thiserror::Error)]
#[error("the site's records could not be read or written: {0}")]
pub struct RecordsError(String);

impl RecordsError {
    pub(crate) fn new(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl From<sqlx::Error> for RecordsError {
    fn from(error: sqlx::Error) -> Self {
        Self(error.to_string())
    }
}

impl From<std::io::Error> for RecordsError {
    fn from(error: std::io::Error) -> Self {
        Self(error.to_string())
    }
}

/// The file's content.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Content {
    owner: Option<String>,
    #[serde(default)]
    deletions: HashMap<String, Deletion>,
    /// Setup codes by their SHA-256, with when each expires (Unix seconds).
    #[serde(default)]
    setup: HashMap<String, i64>,
}

/// The site's records (see the module's documentation).
#[derive(Debug)]
pub struct Records(Backend);

/// Where the records live.
#[derive(Debug)]
enum Backend {
    /// In memory: forgotten at exit (tests).
    Memory(Mutex<Content>),
    /// In one private file, written whole through a temporary file and a rename.
    File {
        /// The file.
        path: PathBuf,
        /// Its content, read at start; one writer at a time.
        content: Mutex<Content>,
    },
    /// In the accounts database.
    Database(sqlx::AnyPool),
}

impl Records {
    /// Records in memory.
    pub fn memory() -> Self {
        Self(Backend::Memory(Mutex::default()))
    }

    /// Records in the file at `path`, read now (a missing file is empty).
    ///
    /// # Errors
    ///
    /// The file exists and cannot be read, or does not read as records (it is left as it is).
    pub fn file(path: PathBuf) -> Result<Self, RecordsError> {
        let content = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| RecordsError(format!("{} does not read: {e}", path.display())))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Content::default(),
            Err(error) => return Err(error.into()),
        };
        Ok(Self(Backend::File {
            path,
            content: Mutex::new(content),
        }))
    }

    /// Records in the database behind `pool`, their tables made if missing.
    ///
    /// # Errors
    ///
    /// The tables cannot be made.
    pub async fn database(pool: sqlx::AnyPool) -> Result<Self, sqlx::Error> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS web_site_owner (
                 id INTEGER PRIMARY KEY NOT NULL,
                 user_id TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS web_deletions (
                 code TEXT PRIMARY KEY NOT NULL,
                 signature TEXT NOT NULL,
                 data TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS web_deletions_signature ON web_deletions (signature);
             CREATE TABLE IF NOT EXISTS web_setup_codes (
                 code_hash TEXT PRIMARY KEY NOT NULL,
                 expires_at BIGINT NOT NULL
             );",
        )
        .execute(&pool)
        .await?;
        Ok(Self(Backend::Database(pool)))
    }

    /// Changes the content in memory or in the file (written whole before the change counts).
    fn change<T>(&self, change: impl FnOnce(&mut Content) -> T) -> Result<T, RecordsError> {
        let (cell, path) = match &self.0 {
            Backend::Memory(cell) => (cell, None),
            Backend::File { path, content } => (content, Some(path)),
            Backend::Database(_) => return Err(RecordsError("not a file".to_owned())),
        };
        let mut content = cell.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = content.clone();
        let out = change(&mut changed);
        if let Some(path) = path {
            let json = serde_json::to_vec_pretty(&changed).map_err(|e| RecordsError(e.to_string()))?;
            igdisplay::auth::write_private(path, &json)?;
        }
        *content = changed;
        Ok(out)
    }

    fn read<T>(&self, read: impl FnOnce(&Content) -> T) -> Option<T> {
        match &self.0 {
            Backend::Memory(cell) | Backend::File { content: cell, .. } => {
                Some(read(&cell.lock().unwrap_or_else(PoisonError::into_inner)))
            }
            Backend::Database(_) => None,
        }
    }

    /// The account the site shows, once bound.
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn owner(&self) -> Result<Option<UserId>, RecordsError> {
        if let Some(owner) = self.read(|c| c.owner.clone()) {
            return Ok(owner.map(UserId::new));
        }
        let Backend::Database(pool) = &self.0 else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT user_id FROM web_site_owner WHERE id = 1")
            .fetch_optional(pool)
            .await?;
        Ok(match row {
            Some(row) => Some(UserId::new(row.try_get::<String, _>("user_id")?)),
            None => None,
        })
    }

    /// Binds the site to `user` when it is bound to no one, and returns whom it is bound to:
    /// `user`, or the account bound first (instances racing agree on one).
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn bind(&self, user: &UserId) -> Result<UserId, RecordsError> {
        if let Backend::Database(pool) = &self.0 {
            sqlx::query(
                "INSERT INTO web_site_owner (id, user_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
            )
            .bind(user.as_str())
            .execute(pool)
            .await?;
            return self
                .owner()
                .await?
                .ok_or_else(|| RecordsError("no owner row".to_owned()));
        }
        self.change(|c| UserId::new(c.owner.get_or_insert_with(|| user.as_str().to_owned()).clone()))
    }

    /// Binds the site to `user`, whoever it was bound to (the operator's `--owner-id`).
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn configure(&self, user: &UserId) -> Result<(), RecordsError> {
        if let Backend::Database(pool) = &self.0 {
            sqlx::query(
                "INSERT INTO web_site_owner (id, user_id) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id",
            )
            .bind(user.as_str())
            .execute(pool)
            .await?;
            return Ok(());
        }
        self.change(|c| c.owner = Some(user.as_str().to_owned()))
    }

    /// Keeps a setup code (its SHA-256) valid until `expires_at` (Unix seconds).
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn add_setup(&self, code_hash: &str, expires_at: i64) -> Result<(), RecordsError> {
        if let Backend::Database(pool) = &self.0 {
            sqlx::query("INSERT INTO web_setup_codes (code_hash, expires_at) VALUES ($1, $2)")
                .bind(code_hash)
                .bind(expires_at)
                .execute(pool)
                .await?;
            return Ok(());
        }
        self.change(|c| {
            c.setup.insert(code_hash.to_owned(), expires_at);
        })
    }

    /// Takes the setup code whose SHA-256 is `code_hash` when it has not expired at `now`:
    /// whether it was valid. A code is taken once, whichever instance is asked; expired ones
    /// go meanwhile.
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn take_setup(&self, code_hash: &str, now: i64) -> Result<bool, RecordsError> {
        if let Backend::Database(pool) = &self.0 {
            let taken = sqlx::query(
                "DELETE FROM web_setup_codes WHERE code_hash = $1 AND expires_at > $2 RETURNING code_hash",
            )
            .bind(code_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .is_some();
            sqlx::query("DELETE FROM web_setup_codes WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            return Ok(taken);
        }
        self.change(|c| {
            let taken = c.setup.remove(code_hash).is_some_and(|expires| now < expires);
            c.setup.retain(|_, expires| now < *expires);
            taken
        })
    }

    /// Keeps `deletion`.
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn add_deletion(&self, deletion: &Deletion) -> Result<(), RecordsError> {
        if let Backend::Database(pool) = &self.0 {
            let data = serde_json::to_string(deletion).map_err(|e| RecordsError(e.to_string()))?;
            sqlx::query("INSERT INTO web_deletions (code, signature, data) VALUES ($1, $2, $3) ON CONFLICT (code) DO NOTHING")
                .bind(&deletion.code)
                .bind(&deletion.signature)
                .bind(data)
                .execute(pool)
                .await?;
            return Ok(());
        }
        self.change(|c| {
            c.deletions.insert(deletion.code.clone(), deletion.clone());
        })
    }

    /// The deletion answered with confirmation `code`.
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn deletion(&self, code: &str) -> Result<Option<Deletion>, RecordsError> {
        let query = "SELECT data FROM web_deletions WHERE code = $1";
        self.find_deletion(query, code, |d| d.code == code).await
    }

    /// The deletion answered to the request signed `signature` (a retry, or a replay).
    ///
    /// # Errors
    ///
    /// [`RecordsError`].
    pub async fn answered(&self, signature: &str) -> Result<Option<Deletion>, RecordsError> {
        let query = "SELECT data FROM web_deletions WHERE signature = $1";
        self.find_deletion(query, signature, |d| d.signature == signature)
            .await
    }

    /// The deletion `matches` picks from memory or the file, or `query` (by `value`) finds in
    /// the database.
    async fn find_deletion(
        &self,
        query: &'static str,
        value: &str,
        matches: impl Fn(&Deletion) -> bool,
    ) -> Result<Option<Deletion>, RecordsError> {
        if let Some(found) = self.read(|c| c.deletions.values().find(|d| matches(d)).cloned()) {
            return Ok(found);
        }
        let Backend::Database(pool) = &self.0 else {
            return Ok(None);
        };
        let row = sqlx::query(query).bind(value).fetch_optional(pool).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let data: String = row.try_get("data")?;
        serde_json::from_str(&data).map_err(|e| RecordsError(e.to_string()))
    }
}

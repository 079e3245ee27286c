//! [`SqlStore`]: accounts in SQLite (one file, WAL) or PostgreSQL (many instances), tokens
//! sealed by a [`KeyRing`]. One implementation over sqlx's `Any` driver; the statements live
//! in one repository ([`crate::repo`]), written once for both databases; only the migrations
//! are per database.

use crate::dialect::{DbTime, Dialect};
use crate::error::Error;
use crate::events::{Event, Events};
use crate::keys::{KeyError, KeyRing};
use crate::repo::{Accounts, LeaseTry, NewRow};
use crate::schedule::AccountState;
use crate::schema;
use igdisplay_auth::{RefreshLock, RefreshSchedule, StoreError, TokenRecord, TokenStore};
use igdisplay_http::{SharedClock, SystemClock};
use igdisplay_model::{Timestamp, UserId};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

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
    /// Where the account stands.
    pub state: AccountState,
}

/// Token records of many accounts in SQL: SQLite (one file in WAL mode, so readers never wait
/// for the writer: the embedded default for a server) or PostgreSQL (one database for many
/// instances). The schema is created and migrated on connect. Tokens are sealed with the
/// ring's current key and the account id as associated data: neither the database nor a
/// backup of it holds a token in the clear.
///
/// Every write is guarded: a token is never replaced by one issued earlier (a refresh that
/// raced a new login loses, with [`Error::Conflict`]), a refresh never brings back an account
/// deleted, deauthorized, revoked or expired meanwhile (only a new login does), and
/// [`save_if_version`](Self::save_if_version) is a compare-and-swap on the row's version.
/// Every time in a statement (leases, due times, expiry) is the database's clock, never the
/// instance's.
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
    pub(crate) accounts: Accounts,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) schedule: RefreshSchedule,
    pub(crate) clock: SharedClock,
    /// Woken whenever this process writes an event, so its subscribers see it at once.
    pub(crate) written: Arc<Notify>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("dialect", &self.accounts.dialect())
            .field("keys", &self.keys.ids())
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// Opens (creating it if needed, readable by its owner only) the SQLite database at
    /// `path`, in WAL mode, and brings its schema up to date.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn sqlite(path: &Path, keys: KeyRing) -> Result<Self, Error> {
        Self::connect(&sqlite_url(path), keys).await
    }

    /// Connects to `url` (`sqlite:PATH` for a file, made if missing; `sqlite://PATH?mode=rwc`;
    /// `postgres://user@host:port/db`) and brings the schema up to date. Instances starting
    /// together on an empty database take turns migrating it. A SQLite file and its `-wal` and
    /// `-shm` files are made readable by their owner only (0600).
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedUrl`]; [`Error::Connect`] or [`Error::Authentication`] when the
    /// database cannot be reached or refuses the credentials; [`Error::Migration`];
    /// [`Error::SchemaTooNew`] when a newer igdisplay wrote it; [`Error::Permissions`].
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
        let file = (dialect == Dialect::Sqlite).then(|| sqlite_file(url)).flatten();
        if let Some(file) = &file {
            private_file(file, true)?;
        }
        sqlx::any::install_default_drivers();
        // SQLite serializes writers anyway; a few connections serve the readers.
        let connections = match dialect {
            Dialect::Sqlite => 4,
            Dialect::Postgres => 8,
        };
        // A database that does not answer within 5 s is reported (a command fails, a keeper
        // logs it and tries again after its idle wait) rather than waited for half a minute.
        let pool = AnyPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(Error::connecting)?;
        schema::migrate(&pool, dialect).await?;
        if let Some(file) = &file {
            for suffix in ["-wal", "-shm"] {
                private_file(&format!("{file}{suffix}"), false)?;
            }
        }
        Ok(Self {
            accounts: Accounts::new(pool, dialect, DbTime::Database),
            keys: Arc::new(keys),
            schedule: RefreshSchedule::default(),
            clock: Arc::new(SystemClock),
            written: Arc::new(Notify::new()),
        })
    }

    /// The clock this instance waits on (polls while a lease is held elsewhere, a
    /// subscription's polls; default: the system's). It decides nothing: every lease, due time
    /// and expiry is the database's time.
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Takes every statement's time from `clock` instead of the database's clock, and waits
    /// on it: for tests and simulations against the mock, which move time by days. A
    /// production store never calls this: there the database's clock is the one clock every
    /// instance agrees on, whatever their own clocks say.
    #[must_use]
    pub fn with_pinned_time(mut self, clock: SharedClock) -> Self {
        self.accounts.set_time(DbTime::Pinned(clock.clone()));
        self.clock = clock;
        self
    }

    /// The clock this instance waits on.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
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
    /// `accounts`, `deleted_accounts`, `events`, `app_budget`, `task_leases` and `igdisplay_schema` tables
    /// are the store's).
    pub fn pool(&self) -> &AnyPool {
        self.accounts.pool()
    }

    /// The key ring the tokens are sealed with.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The events of every instance, read from the outbox.
    pub fn events(&self) -> Events {
        Events::new(self.accounts.clone(), self.clock.clone(), self.written.clone())
    }

    /// Tells this process's subscribers that an event was written.
    pub(crate) fn wrote_event(&self) {
        self.written.notify_waiters();
    }

    /// The stored account of `user`, token opened, with its row version and state (`None`
    /// for an unknown account, and for a deauthorized one, whose token is erased).
    ///
    /// # Errors
    ///
    /// [`Error::Database`], [`Error::Key`] (a wrong or missing key) or [`Error::Corrupt`].
    pub async fn account(&self, user: &UserId) -> Result<Option<Account>, Error> {
        let Some(row) = self.accounts.load(user.as_str()).await? else {
            return Ok(None);
        };
        let state = AccountState::parse(&row.state).ok_or_else(|| Error::Corrupt {
            user_id: user.as_str().to_owned(),
            source: serde::de::Error::custom("unknown state"),
        })?;
        if state == AccountState::Deauthorized {
            return Ok(None);
        }
        Ok(Some(Account {
            record: self.open(user.as_str(), &row.record, &row.token)?,
            version: row.version,
            key_id: row.key_id,
            state,
        }))
    }

    /// Where `user`'s account stands, without opening its token (`None`: no such account).
    ///
    /// # Errors
    ///
    /// [`Error::Database`]; [`Error::Corrupt`] for a state this version does not know.
    pub async fn account_state(&self, user: &UserId) -> Result<Option<AccountState>, Error> {
        let state: Option<String> = sqlx::query("SELECT state FROM accounts WHERE user_id = $1")
            .bind(user.as_str().to_owned())
            .fetch_optional(self.accounts.pool())
            .await
            .and_then(|row| row.map(|row| sqlx::Row::try_get(&row, "state")).transpose())
            .map_err(Error::statement("read an account's state"))?;
        state
            .map(|state| {
                AccountState::parse(&state).ok_or_else(|| Error::Corrupt {
                    user_id: user.as_str().to_owned(),
                    source: serde::de::Error::custom("unknown state"),
                })
            })
            .transpose()
    }

    /// A token record from its stored `record` JSON and sealed `token`.
    pub(crate) fn open(&self, user_id: &str, record: &str, sealed: &[u8]) -> Result<TokenRecord, Error> {
        let token = self.keys.open(user_id, sealed)?;
        let corrupt = |source| Error::Corrupt {
            user_id: user_id.to_owned(),
            source,
        };
        let mut fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(record).map_err(corrupt)?;
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
            None => self.accounts.insert_new(&row).await?,
            Some(version) => self.accounts.update_if_version(&row, version).await?,
        };
        written.ok_or_else(|| Error::Conflict { user_id: row.user_id })
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
            key_id: self.keys.current_id().to_owned(),
            issued_at: record.issued_at.unix(),
            expires_at: record.expires_at.unix(),
            next_refresh_at: self.schedule.next_refresh(record).map(Timestamp::unix),
            user_id,
        })
    }
}

/// The URL of the SQLite file at `path`, created if missing: `%`, `?` and `#` are
/// percent-encoded (sqlx decodes them), so any file name works.
fn sqlite_url(path: &Path) -> String {
    let path = path.to_string_lossy();
    let mut url = String::with_capacity(path.len().saturating_add(20));
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

/// The file a `sqlite://PATH?…` URL names (`None` in memory).
fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(percent_decode(path).unwrap_or_else(|| path.to_owned()))
}

/// `%XX` escapes decoded; `None` when they do not make UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Makes `path` readable and writable by its owner only; creates it (empty, 0600) first when
/// `create` and it is missing, so SQLite never makes it with the umask's mode.
fn private_file(path: &str, create: bool) -> Result<(), Error> {
    let failed = |source| Error::Permissions {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        if create {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => return Ok(()),
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(error) => return Err(failed(error)),
            }
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)
            }
            Ok(_) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(failed(error)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (create, failed);
        Ok(())
    }
}

/// How long an on-demand refresh holds an account's lease, at most.
const ON_DEMAND_LEASE: Duration = Duration::from_secs(60);
/// How long an on-demand refresh waits for another holder of the lease (a keeper refreshing
/// the same account) to write its token; after that the current, still valid, token is used
/// and the holder's refresh is left to finish.
pub const ON_DEMAND_WAIT: Duration = Duration::from_secs(10);
/// How often it looks again meanwhile.
const ON_DEMAND_POLL: Duration = Duration::from_millis(100);

impl SqlStore {
    /// Takes `user`'s lease under a one-off owner name, waiting for a holder to let go.
    async fn lease_for_refresh(&self, user: &UserId) -> Result<RefreshLock, Error> {
        let owner = format!("on-demand-{:016x}", random_u64()?);
        let lease = igdisplay_model::whole_seconds(ON_DEMAND_LEASE);
        let mut waited = Duration::ZERO;
        loop {
            match self.accounts.take_lease(user.as_str(), &owner, lease).await? {
                LeaseTry::Taken => {
                    return Ok(RefreshLock::holding(Lease {
                        accounts: self.accounts.clone(),
                        user_id: user.as_str().to_owned(),
                        owner,
                    }));
                }
                // Unknown, or not refreshed any more: the manager's reload answers.
                LeaseTry::Unusable => return Ok(RefreshLock::none()),
                LeaseTry::Held { until, now } => {
                    let left = Duration::from_secs(u64::try_from(until.saturating_sub(now)).unwrap_or(0));
                    if waited >= ON_DEMAND_WAIT {
                        tracing::debug!(%user, "another instance holds the account's refresh; using the current token");
                        return Ok(RefreshLock::elsewhere());
                    }
                    let pause = ON_DEMAND_POLL.min(left.max(Duration::from_millis(10)));
                    self.clock.sleep(pause).await;
                    waited = waited.saturating_add(pause);
                }
            }
        }
    }
}

/// Eight random bytes, for a lease owner's name.
pub(crate) fn random_u64() -> Result<u64, Error> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(|_| Error::Random)?;
    Ok(u64::from_le_bytes(random))
}

/// A held on-demand lease; released when dropped (or when it runs out, if the release cannot
/// be sent: no runtime, the database gone).
struct Lease {
    accounts: Accounts,
    user_id: String,
    owner: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (accounts, user_id, owner) = (
            self.accounts.clone(),
            std::mem::take(&mut self.user_id),
            std::mem::take(&mut self.owner),
        );
        runtime.spawn(async move {
            let _ = accounts.release(&user_id, &owner).await;
        });
    }
}

#[async_trait::async_trait]
impl TokenStore for SqlStore {
    /// The account's token; [`StoreError::LoginRequired`] for a revoked, expired or
    /// deauthorized account, so nothing is ever sent with it.
    async fn load(&self, user: &UserId) -> Result<Option<TokenRecord>, StoreError> {
        let row = self
            .accounts
            .load(user.as_str())
            .await
            .map_err(|e| e.into_store_error("read an account"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        match AccountState::parse(&row.state) {
            Some(AccountState::Active | AccountState::Failing) => self
                .open(user.as_str(), &row.record, &row.token)
                .map(Some)
                .map_err(|e| e.into_store_error("read an account")),
            Some(state) => Err(StoreError::LoginRequired {
                state: state.as_str(),
            }),
            None => Err(Error::Corrupt {
                user_id: user.as_str().to_owned(),
                source: serde::de::Error::custom("unknown state"),
            }
            .into_store_error("read an account")),
        }
    }

    /// A new grant (a login, an import): the account is active again, whatever it was,
    /// unless it holds a token issued later ([`Error::Conflict`]) or was deleted after this
    /// token's issue ([`StoreError::Superseded`]).
    async fn save(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let write = async {
            let row = self.row_of(record)?;
            self.accounts.save_grant(&row).await?.map(drop)
        };
        write.await.map_err(|e| e.into_store_error("write an account"))
    }

    /// Written only over the token refreshed, while the account is active or failing, with
    /// its `refreshed` event in the same transaction.
    async fn save_refreshed(&self, previous: &TokenRecord, fresh: &TokenRecord) -> Result<(), StoreError> {
        let write = async {
            let row = self.row_of(fresh)?;
            let event = |now| Event::Refreshed {
                user_id: fresh.user_id.clone(),
                at: Timestamp::from_unix(now),
                expires_at: fresh.expires_at,
            };
            self.accounts
                .save_refreshed(&row, previous.issued_at.unix(), event)
                .await
        };
        match write.await {
            Ok(true) => {
                self.wrote_event();
                Ok(())
            }
            Ok(false) => Err(StoreError::Superseded),
            Err(error) => Err(error.into_store_error("write a refreshed token")),
        }
    }

    /// Marks the account revoked, with its event: every later use fails at once.
    async fn revoked(&self, record: &TokenRecord, reason: &str) -> Result<(), StoreError> {
        let marked = self
            .accounts
            .mark_revoked(&record.user_id, reason)
            .await
            .map_err(|e| e.into_store_error("mark an account revoked"))?;
        if marked.is_some() {
            self.wrote_event();
        }
        Ok(())
    }

    async fn remove(&self, user: &UserId) -> Result<bool, StoreError> {
        self.accounts
            .remove(user.as_str())
            .await
            .map_err(|e| e.into_store_error("remove an account"))
    }

    /// Takes the account's lease for an on-demand refresh ([`TokenManager`](igdisplay_auth::TokenManager)),
    /// the same lease a keeper claims: one refresh at a time per account across every
    /// instance. While another holds it, this waits (on the store's clock) for up to
    /// [`ON_DEMAND_WAIT`] for its write, then leaves the refresh to it
    /// ([`RefreshLock::elsewhere`]): it never goes around a held lease.
    async fn refresh_lock(&self, user: &UserId) -> Result<RefreshLock, StoreError> {
        self.lease_for_refresh(user)
            .await
            .map_err(|e| e.into_store_error("lease an account for a refresh"))
    }

    /// The accounts that can be used: active or failing.
    async fn users(&self) -> Result<Vec<UserId>, StoreError> {
        let users = self
            .accounts
            .usable_users()
            .await
            .map_err(|e| e.into_store_error("list the accounts"))?;
        Ok(users.into_iter().map(UserId::new).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_names_its_file_decoded() {
        assert_eq!(
            sqlite_file("sqlite:///tmp/a%3Fb.db?mode=rwc").as_deref(),
            Some("/tmp/a?b.db")
        );
        assert_eq!(
            sqlite_file("sqlite://relative.db").as_deref(),
            Some("relative.db")
        );
        assert_eq!(sqlite_file("sqlite://:memory:"), None);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(
            sqlite_file(&sqlite_url(Path::new("/x/f?#%.db"))).as_deref(),
            Some("/x/f?#%.db")
        );
    }
}

//! Server-side sessions: in memory (one instance), or in the accounts database, so any
//! instance serves any visitor (a login on one is served by the others). A database keeps
//! only the SHA-256 of each session id: a copy of the table opens no session.

use igdisplay::auth::PendingAuthorization;
use igdisplay::model::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A session unused this long is gone.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(24 * 3600);
/// The most sessions kept in memory; past it the least recently used go first.
const MAX_SESSIONS: usize = 100_000;

/// One visitor's session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) pending: Option<PendingAuthorization>,
    pub(crate) next: String,
    pub(crate) user: Option<UserId>,
    pub(crate) notice: Option<String>,
    /// What the logout form must send back.
    pub(crate) csrf: String,
    /// When the session was last used, Unix seconds on the app's clock.
    pub(crate) seen: i64,
}

impl Session {
    pub(crate) fn new(csrf: String, now: i64) -> Self {
        Self {
            pending: None,
            next: String::new(),
            user: None,
            notice: None,
            csrf,
            seen: now,
        }
    }

    fn is_live(&self, now: i64) -> bool {
        now.saturating_sub(self.seen) < idle_seconds()
    }
}

fn idle_seconds() -> i64 {
    i64::try_from(SESSION_IDLE.as_secs()).unwrap_or(i64::MAX)
}

/// Where sessions live.
#[derive(Debug)]
pub(crate) enum Sessions {
    Memory(Mutex<HashMap<String, Session>>),
    Database(sqlx::AnyPool),
}

/// The session store failed (the database is down): the visitor gets an error page.
#[derive(Debug)]
pub(crate) struct Unavailable;

impl From<sqlx::Error> for Unavailable {
    fn from(_: sqlx::Error) -> Self {
        Unavailable
    }
}

impl Sessions {
    /// Sessions in the database behind `pool`, its table made if missing.
    pub(crate) async fn database(pool: sqlx::AnyPool) -> Result<Self, sqlx::Error> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS web_sessions (
                 id_hash TEXT PRIMARY KEY NOT NULL,
                 user_id TEXT,
                 data TEXT NOT NULL,
                 seen BIGINT NOT NULL
             )",
        )
        .execute(&pool)
        .await?;
        Ok(Sessions::Database(pool))
    }

    fn memory(&self) -> Option<std::sync::MutexGuard<'_, HashMap<String, Session>>> {
        match self {
            Sessions::Memory(map) => Some(map.lock().unwrap_or_else(PoisonError::into_inner)),
            Sessions::Database(_) => None,
        }
    }

    /// The live session `id`, marked as used at `now`.
    pub(crate) async fn load(&self, id: &str, now: i64) -> Result<Option<Session>, Unavailable> {
        if let Some(mut map) = self.memory() {
            return Ok(map.get_mut(id).filter(|s| s.is_live(now)).map(|session| {
                session.seen = now;
                session.clone()
            }));
        }
        let Sessions::Database(pool) = self else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT data FROM web_sessions WHERE id_hash = $1 AND seen > $2")
            .bind(hash(id))
            .bind(now.saturating_sub(idle_seconds()))
            .fetch_optional(pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let data: String = row.try_get("data")?;
        // A row this version cannot read is no session: the visitor starts a new one.
        let Ok(mut session) = serde_json::from_str::<Session>(&data) else {
            return Ok(None);
        };
        session.seen = now;
        self.save(id, &session).await?;
        Ok(Some(session))
    }

    /// Writes `session` under `id` (new or not). A new one first drops the expired (and, in
    /// memory, past [`MAX_SESSIONS`], the least recently used).
    pub(crate) async fn save(&self, id: &str, session: &Session) -> Result<(), Unavailable> {
        if let Some(mut map) = self.memory() {
            if !map.contains_key(id) {
                map.retain(|_, s| s.is_live(session.seen));
                while map.len() >= MAX_SESSIONS {
                    let Some(oldest) = map.iter().min_by_key(|(_, s)| s.seen).map(|(id, _)| id.clone())
                    else {
                        break;
                    };
                    map.remove(&oldest);
                }
            }
            map.insert(id.to_owned(), session.clone());
            return Ok(());
        }
        let Sessions::Database(pool) = self else {
            return Ok(());
        };
        let data = serde_json::to_string(session).map_err(|_| Unavailable)?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, data, seen) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id_hash) DO UPDATE SET user_id = excluded.user_id, data = excluded.data,
                 seen = excluded.seen",
        )
        .bind(hash(id))
        .bind(session.user.as_ref().map(|u| u.as_str().to_owned()))
        .bind(data)
        .bind(session.seen)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// Creates the session `id`, dropping expired ones first.
    pub(crate) async fn create(&self, id: &str, session: &Session) -> Result<(), Unavailable> {
        if let Sessions::Database(pool) = self {
            sqlx::query("DELETE FROM web_sessions WHERE seen <= $1")
                .bind(session.seen.saturating_sub(idle_seconds()))
                .execute(pool)
                .await?;
        }
        self.save(id, session).await
    }

    /// Removes the session `id`, returning it.
    pub(crate) async fn remove(&self, id: &str, now: i64) -> Result<Option<Session>, Unavailable> {
        let session = self.load(id, now).await?;
        if let Some(mut map) = self.memory() {
            map.remove(id);
        } else if let Sessions::Database(pool) = self {
            sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                .bind(hash(id))
                .execute(pool)
                .await?;
        }
        Ok(session)
    }

    /// Logs `user` out of every session (their token is gone).
    pub(crate) async fn forget_user(&self, user: &UserId) -> Result<(), Unavailable> {
        if let Some(mut map) = self.memory() {
            for session in map.values_mut() {
                if session.user.as_ref() == Some(user) {
                    session.user = None;
                }
            }
            return Ok(());
        }
        if let Sessions::Database(pool) = self {
            sqlx::query("DELETE FROM web_sessions WHERE user_id = $1")
                .bind(user.as_str())
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

/// The SHA-256 of a session id, in hex: what the database keeps.
fn hash(id: &str) -> String {
    Sha256::digest(id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

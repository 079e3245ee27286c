//! Server-side sessions: in memory (one instance), or in the accounts database, so any
//! instance serves any visitor (a login on one is served by the others). A database keeps
//! only the SHA-256 of each session id: a copy of the table opens no session.
//!
//! Nobody can flood them away: anonymous sessions (a login started, not completed) are kept
//! apart from logged-in ones, each in least-recently-used order with O(1) eviction of the
//! oldest past its cap, so a stream of anonymous `/login` requests evicts only anonymous
//! sessions, never the owner's. The database's table has the same cap on anonymous rows and
//! drops expired ones.

use hashlink::LinkedHashMap;
use igdisplay::auth::PendingAuthorization;
use igdisplay::model::UserId;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A session unused this long is gone.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(24 * 3600);
/// The most anonymous sessions kept; past it the least recently used go first.
pub const MAX_ANONYMOUS: usize = 100_000;
/// The most logged-in sessions kept (anonymous ones never count against it).
const MAX_LOGGED_IN: usize = 100_000;
/// The database's cap is enforced on one session creation in this many (a count of the
/// table on every visit would cost more than the overshoot).
const CAP_EVERY: u64 = 64;

/// One visitor's session.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Session {
    pub(crate) pending: Option<PendingAuthorization>,
    pub(crate) next: String,
    pub(crate) user: Option<UserId>,
    /// The session came through the owner's one-time setup link: its login may bind the site.
    #[serde(default)]
    pub(crate) setup: bool,
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
            setup: false,
            csrf,
            seen: now,
        }
    }

    fn is_live(&self, now: i64) -> bool {
        now.saturating_sub(self.seen) < idle_seconds()
    }
}

fn idle_seconds() -> i64 {
    igdisplay::model::whole_seconds(SESSION_IDLE)
}

/// Sessions in memory: two least-recently-used maps (front = least recently used).
#[derive(Debug, Default)]
pub(crate) struct Memory {
    anonymous: LinkedHashMap<String, Session>,
    logged_in: LinkedHashMap<String, Session>,
}

impl Memory {
    /// The live session `id`, now the most recently used; an expired one is dropped.
    fn load(&mut self, id: &str, now: i64) -> Option<Session> {
        let map = if self.logged_in.contains_key(id) {
            &mut self.logged_in
        } else {
            &mut self.anonymous
        };
        let live = map.get(id)?.is_live(now);
        if !live {
            map.remove(id);
            return None;
        }
        map.to_back(id);
        let session = map.get_mut(id)?;
        session.seen = now;
        Some(session.clone())
    }

    /// Puts `session` under `id` as the most recently used, in the map its login says;
    /// evicts the least recently used of that map past its cap (O(1)).
    fn save(&mut self, id: &str, session: &Session) {
        self.anonymous.remove(id);
        self.logged_in.remove(id);
        let (map, cap) = if session.user.is_some() {
            (&mut self.logged_in, MAX_LOGGED_IN)
        } else {
            (&mut self.anonymous, MAX_ANONYMOUS)
        };
        // The least recently used are at the front: the expired ones go first.
        while map.front().is_some_and(|(_, s)| !s.is_live(session.seen)) || map.len() >= cap {
            if map.pop_front().is_none() {
                break;
            }
        }
        map.insert(id.to_owned(), session.clone());
    }

    fn remove(&mut self, id: &str) {
        self.anonymous.remove(id);
        self.logged_in.remove(id);
    }

    /// How many sessions of each kind are kept: (anonymous, logged in).
    fn len(&self) -> (usize, usize) {
        (self.anonymous.len(), self.logged_in.len())
    }
}

/// Where sessions live.
#[derive(Debug)]
pub(crate) enum Sessions {
    Memory(Mutex<Memory>),
    Database {
        pool: sqlx::AnyPool,
        /// Sessions created by this instance: every [`CAP_EVERY`]th enforces the cap.
        created: AtomicU64,
        /// The most anonymous rows kept ([`MAX_ANONYMOUS`]).
        cap: usize,
    },
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
        Self::database_capped(pool, MAX_ANONYMOUS).await
    }

    /// Sessions in the database behind `pool`, at most `cap` anonymous rows.
    async fn database_capped(pool: sqlx::AnyPool, cap: usize) -> Result<Self, sqlx::Error> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS web_sessions (
                 id_hash TEXT PRIMARY KEY NOT NULL,
                 user_id TEXT,
                 data TEXT NOT NULL,
                 seen BIGINT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS web_sessions_seen ON web_sessions (seen);",
        )
        .execute(&pool)
        .await?;
        Ok(Sessions::Database {
            pool,
            created: AtomicU64::new(0),
            cap,
        })
    }

    fn memory(&self) -> Option<std::sync::MutexGuard<'_, Memory>> {
        match self {
            Sessions::Memory(map) => Some(map.lock().unwrap_or_else(PoisonError::into_inner)),
            Sessions::Database { .. } => None,
        }
    }

    /// How many sessions are kept in memory: (anonymous, logged in); `None` in a database.
    pub(crate) fn kept(&self) -> Option<(usize, usize)> {
        self.memory().map(|memory| memory.len())
    }

    /// The live session `id`, marked as used at `now`.
    pub(crate) async fn load(&self, id: &str, now: i64) -> Result<Option<Session>, Unavailable> {
        if let Some(mut memory) = self.memory() {
            return Ok(memory.load(id, now));
        }
        let Sessions::Database { pool, .. } = self else {
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

    /// Writes `session` under `id` (new or not), as the most recently used. In memory, past
    /// a cap, the least recently used of its kind goes.
    pub(crate) async fn save(&self, id: &str, session: &Session) -> Result<(), Unavailable> {
        if let Some(mut memory) = self.memory() {
            memory.save(id, session);
            return Ok(());
        }
        let Sessions::Database { pool, .. } = self else {
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

    /// Creates the session `id`. In a database, expired rows go first and, on one creation
    /// in [`CAP_EVERY`], the least recently used anonymous rows past [`MAX_ANONYMOUS`].
    pub(crate) async fn create(&self, id: &str, session: &Session) -> Result<(), Unavailable> {
        if let Sessions::Database { pool, created, cap } = self {
            sqlx::query("DELETE FROM web_sessions WHERE seen <= $1")
                .bind(session.seen.saturating_sub(idle_seconds()))
                .execute(pool)
                .await?;
            if created.fetch_add(1, Ordering::Relaxed) % CAP_EVERY == 0 {
                let keep = i64::try_from(*cap).unwrap_or(i64::MAX);
                sqlx::query(
                    "DELETE FROM web_sessions WHERE user_id IS NULL AND id_hash NOT IN (
                         SELECT id_hash FROM web_sessions WHERE user_id IS NULL
                         ORDER BY seen DESC LIMIT $1)",
                )
                .bind(keep)
                .execute(pool)
                .await?;
            }
        }
        self.save(id, session).await
    }

    /// Removes the session `id`, returning it.
    pub(crate) async fn remove(&self, id: &str, now: i64) -> Result<Option<Session>, Unavailable> {
        let session = self.load(id, now).await?;
        if let Some(mut memory) = self.memory() {
            memory.remove(id);
        } else if let Sessions::Database { pool, .. } = self {
            sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                .bind(hash(id))
                .execute(pool)
                .await?;
        }
        Ok(session)
    }

    /// Logs `user` out of every session (their token is gone).
    pub(crate) async fn forget_user(&self, user: &UserId) -> Result<(), Unavailable> {
        if let Some(mut memory) = self.memory() {
            let theirs: Vec<(String, Session)> = memory
                .logged_in
                .iter()
                .filter(|(_, s)| s.user.as_ref() == Some(user))
                .map(|(id, s)| (id.clone(), s.clone()))
                .collect();
            for (id, mut session) in theirs {
                session.user = None;
                memory.save(&id, &session);
            }
            return Ok(());
        }
        if let Sessions::Database { pool, .. } = self {
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
    igdisplay::auth::hex(&Sha256::digest(id.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_database_keeps_a_capped_number_of_anonymous_sessions_and_every_logged_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let keys = igdisplay::store::KeyRing::new(igdisplay::store::Key::new("k1", &[3; 32]).unwrap());
        let store = igdisplay::store::SqlStore::sqlite(&dir.path().join("site.db"), keys)
            .await
            .unwrap();
        let sessions = Sessions::database_capped(store.pool().clone(), 100)
            .await
            .unwrap();
        let mut owner = Session::new("csrf".to_owned(), 1_000);
        owner.user = Some(UserId::new("17841400000000001"));
        sessions.create("owner", &owner).await.unwrap();
        for n in 0..1_000i64 {
            let visitor = Session::new("csrf".to_owned(), 1_000 + n);
            sessions.create(&format!("visitor-{n}"), &visitor).await.unwrap();
        }
        let Sessions::Database { pool, .. } = &sessions else {
            unreachable!("a database")
        };
        let anonymous: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions WHERE user_id IS NULL")
            .fetch_one(pool)
            .await
            .unwrap();
        let cap_every = i64::try_from(CAP_EVERY).unwrap();
        assert!(anonymous <= 100 + cap_every, "{anonymous} anonymous rows");
        assert!(
            sessions.load("owner", 2_000).await.unwrap().is_some(),
            "the owner's stays"
        );
        assert!(
            sessions.load("visitor-999", 2_000).await.unwrap().is_some(),
            "the newest stay"
        );
        assert!(
            sessions.load("visitor-0", 2_000).await.unwrap().is_none(),
            "the oldest went"
        );
        // A day unused: gone at the next creation.
        let later = 2_000 + idle_seconds();
        sessions
            .create("late", &Session::new("csrf".to_owned(), later))
            .await
            .unwrap();
        assert!(sessions.load("visitor-999", later).await.unwrap().is_none());
    }
}

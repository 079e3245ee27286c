//! The embedded migrations: each a SQL file compiled into the binary, per database, applied
//! in order, once, in a transaction with the version it brings, so a crash mid-migration
//! leaves the previous schema whole and the next start applies it again.
//!
//! Instances that start together take turns: on PostgreSQL every migration runs under a
//! session advisory lock (the first instance migrates, the others wait, then find the schema
//! current); on SQLite each one runs in a `BEGIN IMMEDIATE` transaction that reads the version
//! again once it holds the write lock.

use crate::dialect::Dialect;
use crate::error::Error;
use sqlx::{AnyPool, Row as _};
use std::time::Duration;

/// The migrations of each database, by version.
const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_accounts.sql")),
    (2, include_str!("../migrations/sqlite/0002_keeper.sql")),
    (3, include_str!("../migrations/sqlite/0003_fleet.sql")),
    (4, include_str!("../migrations/sqlite/0004_tasks.sql")),
    (5, include_str!("../migrations/sqlite/0005_inbound.sql")),
    (6, include_str!("../migrations/sqlite/0006_feeds.sql")),
    (7, include_str!("../migrations/sqlite/0007_purges.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_accounts.sql")),
    (2, include_str!("../migrations/postgres/0002_keeper.sql")),
    (3, include_str!("../migrations/postgres/0003_fleet.sql")),
    (4, include_str!("../migrations/postgres/0004_tasks.sql")),
    (5, include_str!("../migrations/postgres/0005_inbound.sql")),
    (6, include_str!("../migrations/postgres/0006_feeds.sql")),
    (7, include_str!("../migrations/postgres/0007_purges.sql")),
];

/// The key of the advisory lock migrations take on PostgreSQL (any constant of ours).
const MIGRATION_LOCK: i64 = 0x1964_7d15_0a7e;

/// The newest schema version this build knows.
pub(crate) fn known(dialect: Dialect) -> i64 {
    migrations(dialect).last().map_or(0, |(version, _)| *version)
}

fn migrations(dialect: Dialect) -> &'static [(i64, &'static str)] {
    match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    }
}

/// Brings `pool`'s database to the newest schema.
pub(crate) async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<(), Error> {
    match dialect {
        Dialect::Sqlite => migrate_sqlite(pool).await,
        Dialect::Postgres => migrate_postgres(pool).await,
    }
}

async fn migrate_sqlite(pool: &AnyPool) -> Result<(), Error> {
    wal(pool).await?;
    let setup = Error::statement("create the schema table");
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS igdisplay_schema (version BIGINT PRIMARY KEY NOT NULL)")
        .execute(pool)
        .await
        .map_err(setup)?;
    loop {
        // The write lock first, then the version: another process that migrated meanwhile is
        // seen, and nobody applies a migration twice.
        let mut transaction = pool
            .begin_with(Dialect::Sqlite.begin_write())
            .await
            .map_err(Error::statement("lock the database for a migration"))?;
        let found = version(&mut *transaction).await?;
        let Some((next, sql)) = pending(Dialect::Sqlite, found)? else {
            return Ok(());
        };
        apply(&mut transaction, next, sql).await?;
        transaction.commit().await.map_err(|source| Error::Migration {
            version: next,
            source,
        })?;
    }
}

async fn migrate_postgres(pool: &AnyPool) -> Result<(), Error> {
    // One connection holds the session lock for the whole run; a crash releases it with the
    // connection.
    let mut connection = pool.acquire().await.map_err(Error::connecting)?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await
        .map_err(Error::statement("take the migration lock"))?;
    let migrated = async {
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS igdisplay_schema (version BIGINT PRIMARY KEY NOT NULL)")
            .execute(&mut *connection)
            .await
            .map_err(Error::statement("create the schema table"))?;
        loop {
            let found = version(&mut *connection).await?;
            let Some((next, sql)) = pending(Dialect::Postgres, found)? else {
                return Ok(());
            };
            let mut transaction = sqlx::Connection::begin(&mut *connection)
                .await
                .map_err(|source| Error::Migration {
                    version: next,
                    source,
                })?;
            apply(&mut transaction, next, sql).await?;
            transaction.commit().await.map_err(|source| Error::Migration {
                version: next,
                source,
            })?;
        }
    }
    .await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *connection)
        .await;
    if unlocked.is_err() {
        // The lock goes with the connection: close it rather than return it to the pool.
        connection.detach();
    }
    migrated
}

/// The schema's version.
async fn version(executor: impl sqlx::Executor<'_, Database = sqlx::Any>) -> Result<i64, Error> {
    sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM igdisplay_schema")
        .fetch_one(executor)
        .await
        .and_then(|row| row.try_get("version"))
        .map_err(Error::statement("read the schema version"))
}

/// The next migration after `found`, or `None` when the schema is current; a schema newer
/// than this build is refused.
fn pending(dialect: Dialect, found: i64) -> Result<Option<(i64, &'static str)>, Error> {
    let known = known(dialect);
    if found > known {
        return Err(Error::SchemaTooNew { found, known });
    }
    Ok(migrations(dialect)
        .iter()
        .find(|(version, _)| *version > found)
        .copied())
}

async fn apply(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    version: i64,
    sql: &'static str,
) -> Result<(), Error> {
    let failed = |source| Error::Migration { version, source };
    sqlx::raw_sql(sql)
        .execute(&mut **transaction)
        .await
        .map_err(failed)?;
    sqlx::query("INSERT INTO igdisplay_schema (version) VALUES ($1)")
        .bind(version)
        .execute(&mut **transaction)
        .await
        .map_err(failed)?;
    Ok(())
}

/// Puts the file in WAL mode (kept in the file), so readers never wait for the writer.
/// Changing the mode needs a moment of exclusive access that SQLite's busy timeout does not
/// wait for: instances opening a new file together try again for a few seconds.
async fn wal(pool: &AnyPool) -> Result<(), Error> {
    let mut attempt = 0u32;
    loop {
        let mode = sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await
            .and_then(|row| row.try_get::<String, _>(0));
        match mode {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(error)) if is_busy(&*error) && attempt < 100 => {
                attempt += 1;
                igdisplay_http::Clock::sleep(&igdisplay_http::SystemClock, Duration::from_millis(50)).await;
            }
            Err(error) => return Err(Error::connecting(error)),
        }
    }
}

/// SQLite's "database is locked" or "busy".
fn is_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().is_some_and(|code| code == "5" || code == "6")
        || error.message().contains("locked")
        || error.message().contains("busy")
}

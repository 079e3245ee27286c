//! The embedded migrations: each a SQL file compiled into the binary, per database, applied
//! in order, once, in a transaction with the version it brings, so a crash mid-migration
//! leaves the previous schema whole and the next start applies it again.

use crate::sql::Error;
use sqlx::{AnyPool, Row as _};

/// Which database a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// One file, WAL.
    Sqlite,
    /// A server shared by many instances.
    Postgres,
}

/// The migrations of each database, by version.
const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_accounts.sql")),
    (2, include_str!("../migrations/sqlite/0002_keeper.sql")),
];
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_accounts.sql")),
    (2, include_str!("../migrations/postgres/0002_keeper.sql")),
];

/// Brings `pool`'s database to the newest schema.
pub(crate) async fn migrate(pool: &AnyPool, dialect: Dialect) -> Result<(), Error> {
    let migrations = match dialect {
        Dialect::Sqlite => {
            // Readers never wait for the writer; the mode is kept in the file.
            sqlx::raw_sql("PRAGMA journal_mode = WAL").execute(pool).await?;
            SQLITE
        }
        Dialect::Postgres => POSTGRES,
    };
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS igdisplay_schema (version BIGINT PRIMARY KEY NOT NULL)")
        .execute(pool)
        .await?;
    let found: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM igdisplay_schema")
        .fetch_one(pool)
        .await?
        .try_get("version")?;
    let known = migrations.last().map_or(0, |(version, _)| *version);
    if found > known {
        return Err(Error::SchemaTooNew { found, known });
    }
    for (version, sql) in migrations.iter().filter(|(version, _)| *version > found) {
        let mut transaction = pool.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *transaction).await?;
        sqlx::query("INSERT INTO igdisplay_schema (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    }
    Ok(())
}

/// The claim statement of each database, from one text: `$1` owner, `$2` lease end, `$3` now,
/// `$4` batch size. Due, unexpired accounts whose lease is free or ran out get this
/// instance's lease, oldest due first. PostgreSQL locks the rows it picks and skips those
/// another instance is claiming (`FOR UPDATE SKIP LOCKED`): instances never wait for each
/// other nor claim the same row. SQLite has one writer at a time, which makes the same
/// statement atomic.
macro_rules! claim {
    ($lock:literal) => {
        concat!(
            "UPDATE accounts SET lease_owner = $1, lease_until = $2
             WHERE user_id IN (
                 SELECT user_id FROM accounts
                 WHERE state IN ('active', 'failing') AND next_refresh_at <= $3 AND expires_at > $3
                   AND (lease_until IS NULL OR lease_until <= $3)
                 ORDER BY next_refresh_at LIMIT $4",
            $lock,
            ")
             RETURNING user_id, record, token, version, failures, expires_at"
        )
    };
}

/// The claim statement for `dialect`.
pub(crate) fn claim_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => claim!(""),
        Dialect::Postgres => claim!(" FOR UPDATE SKIP LOCKED"),
    }
}

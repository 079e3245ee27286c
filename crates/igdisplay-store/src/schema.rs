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
const SQLITE: &[(i64, &str)] = &[(1, include_str!("../migrations/sqlite/0001_accounts.sql"))];
const POSTGRES: &[(i64, &str)] = &[(1, include_str!("../migrations/postgres/0001_accounts.sql"))];

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

//! The embedded migrations: each a SQL file compiled into the binary, applied in order, once,
//! in a transaction with the version it brings, so a crash mid-migration leaves the previous
//! schema whole and the next start applies it again.

use crate::sqlite::Error;
use sqlx::{Row as _, SqlitePool};

/// The SQLite migrations, by version.
const SQLITE: &[(i64, &str)] = &[(1, include_str!("../migrations/sqlite/0001_accounts.sql"))];

/// Brings `pool`'s database to the newest schema.
pub(crate) async fn migrate(pool: &SqlitePool) -> Result<(), Error> {
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS igdisplay_schema (version INTEGER PRIMARY KEY NOT NULL)")
        .execute(pool)
        .await?;
    let found: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS version FROM igdisplay_schema")
        .fetch_one(pool)
        .await?
        .try_get("version")?;
    let known = SQLITE.last().map_or(0, |(version, _)| *version);
    if found > known {
        return Err(Error::SchemaTooNew { found, known });
    }
    for (version, sql) in SQLITE.iter().filter(|(version, _)| *version > found) {
        let mut transaction = pool.begin().await?;
        sqlx::raw_sql(*sql).execute(&mut *transaction).await?;
        sqlx::query("INSERT INTO igdisplay_schema (version) VALUES (?)")
            .bind(version)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
    }
    Ok(())
}

//! Test helpers (feature `test-util`): a fresh database on the PostgreSQL cluster a test run
//! starts (`cargo xtask ci` starts one and names it in `IGDISPLAY_TEST_POSTGRES`), for this
//! crate's tests and for those of the crates above it.

/// The test cluster's admin URL (`IGDISPLAY_TEST_POSTGRES`), or `None` when the run has no
/// cluster: the caller skips its PostgreSQL scenario, unless `IGDISPLAY_REQUIRE_POSTGRES` is
/// set, which makes a missing cluster a failure.
///
/// # Panics
///
/// When `IGDISPLAY_REQUIRE_POSTGRES` is set and `IGDISPLAY_TEST_POSTGRES` is not: a CI run
/// that was meant to test PostgreSQL must not pass by skipping it.
pub fn test_cluster() -> Option<String> {
    let admin = std::env::var("IGDISPLAY_TEST_POSTGRES").ok();
    assert!(
        admin.is_some() || std::env::var_os("IGDISPLAY_REQUIRE_POSTGRES").is_none(),
        "IGDISPLAY_REQUIRE_POSTGRES is set but IGDISPLAY_TEST_POSTGRES is not"
    );
    admin
}

/// A fresh, empty database `name` on the cluster at `admin` (the URL of its `postgres`
/// database), dropped first if a run before left it: its URL.
///
/// # Errors
///
/// The cluster cannot be reached, `name` is not a plain identifier (letters, digits and `_`,
/// as it goes into the statement unquoted), or a statement fails.
pub async fn fresh_database(admin: &str, name: &str) -> Result<String, String> {
    use sqlx::Connection as _;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("{name:?} is not a plain database name"));
    }
    let base = admin
        .rsplit_once('/')
        .ok_or("the cluster's URL names no database")?
        .0;
    let mut connection = sqlx::PgConnection::connect(admin)
        .await
        .map_err(|e| e.to_string())?;
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut connection)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(format!("{base}/{name}"))
}

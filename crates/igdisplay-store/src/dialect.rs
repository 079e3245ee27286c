//! One statement text for both databases, and where the time of every statement comes from:
//! the database's own clock (PostgreSQL's `now()`, SQLite's `'now'`), never the instance's,
//! so instances whose clocks differ agree on every lease, due time and expiry.

use igdisplay_http::SharedClock;
use igdisplay_model::Timestamp;
use std::sync::OnceLock;

/// Which database a store speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// One file, WAL.
    Sqlite,
    /// A server shared by many instances.
    Postgres,
}

impl Dialect {
    /// The database's clock in Unix seconds.
    fn now(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST(strftime('%s', 'now') AS INTEGER)",
            Dialect::Postgres => "CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS BIGINT)",
        }
    }

    /// The database's clock in Unix milliseconds.
    fn now_ms(self) -> &'static str {
        match self {
            Dialect::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            Dialect::Postgres => "CAST(FLOOR(EXTRACT(EPOCH FROM now()) * 1000) AS BIGINT)",
        }
    }

    /// What a claim's inner `SELECT` ends with: PostgreSQL locks the rows it picks and skips
    /// those another instance is claiming, so instances never wait for each other nor claim
    /// the same row; SQLite's single writer makes the same statement atomic.
    fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// The transaction a write begins: SQLite takes the write lock at once (a deferred
    /// transaction that reads first can fail to upgrade under a concurrent writer).
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

/// A statement written once for both databases. In its text, `{now}` is the statement's time
/// in Unix seconds and `{now_ms}` in milliseconds: the database's clock, unless the store's
/// time is pinned ([`DbTime`]), through the parameter `$1` that every such statement
/// reserves; `{skip_locked}` is PostgreSQL's `FOR UPDATE SKIP LOCKED`. Rendered once per
/// database and process.
pub(crate) struct Sql {
    template: &'static str,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl Sql {
    /// A statement from its template.
    pub(crate) const fn new(template: &'static str) -> Self {
        Self {
            template,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The text for `dialect`.
    pub(crate) fn text(&'static self, dialect: Dialect) -> &'static str {
        let slot = match dialect {
            Dialect::Sqlite => &self.sqlite,
            Dialect::Postgres => &self.postgres,
        };
        slot.get_or_init(|| {
            self.template
                .replace(
                    "{now}",
                    &format!("COALESCE(CAST($1 AS BIGINT), {})", dialect.now()),
                )
                .replace(
                    "{now_ms}",
                    &format!("COALESCE(CAST($1 AS BIGINT), {})", dialect.now_ms()),
                )
                .replace("{skip_locked}", dialect.skip_locked())
        })
    }
}

/// Where a store's statements take their time from.
#[derive(Clone, Debug, Default)]
pub(crate) enum DbTime {
    /// The database's clock: every instance agrees, whatever its own clock says.
    #[default]
    Database,
    /// A clock standing in for the database's (a simulation over the mock, a test that moves
    /// time by days): bound as `$1`.
    Pinned(SharedClock),
}

impl DbTime {
    /// `$1` of a statement whose time is `{now}`: `None` (the database's clock) or the pinned
    /// time in Unix seconds.
    pub(crate) fn seconds(&self) -> Option<i64> {
        match self {
            DbTime::Database => None,
            DbTime::Pinned(clock) => Some(Timestamp::from_system_time(clock.now()).unix()),
        }
    }

    /// `$1` of a statement whose time is `{now_ms}`, in Unix milliseconds.
    pub(crate) fn millis(&self) -> Option<i64> {
        match self {
            DbTime::Database => None,
            DbTime::Pinned(clock) => Some(
                clock
                    .now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static STATEMENT: Sql = Sql::new("SELECT {now} AS now FROM t WHERE a <= {now}{skip_locked}");

    #[test]
    fn a_statement_renders_per_database_with_its_clock_behind_the_first_parameter() {
        assert_eq!(
            STATEMENT.text(Dialect::Sqlite),
            "SELECT COALESCE(CAST($1 AS BIGINT), CAST(strftime('%s', 'now') AS INTEGER)) AS now FROM t \
             WHERE a <= COALESCE(CAST($1 AS BIGINT), CAST(strftime('%s', 'now') AS INTEGER))"
        );
        let postgres = STATEMENT.text(Dialect::Postgres);
        assert!(postgres.contains("EXTRACT(EPOCH FROM now())"), "{postgres}");
        assert!(postgres.ends_with(" FOR UPDATE SKIP LOCKED"), "{postgres}");
    }
}

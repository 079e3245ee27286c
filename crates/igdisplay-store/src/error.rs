//! [`Error`]: what a store operation fails with, and what failed: the connection, the
//! credentials, a migration or a statement, so a message and its hint name the real cause.

use crate::keys::KeyError;
use igdisplay_auth::StoreError;

/// What a store operation can fail with. Never holds a token, key material or a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database could not be reached: refused, no such host, timed out, TLS failed, the
    /// file could not be opened, or the pool gave up waiting for a connection.
    #[error("the database could not be reached")]
    Connect(#[source] sqlx::Error),
    /// The database refused the user or password, or the role may not use the database.
    #[error("the database refused the user or password")]
    Authentication(#[source] sqlx::Error),
    /// A schema migration failed; the schema is left at the version before it.
    #[error("the database's schema could not be brought to version {version}")]
    Migration {
        /// The version it was bringing.
        version: i64,
        /// The database's answer.
        #[source]
        source: sqlx::Error,
    },
    /// A statement failed (a constraint, the disk full, the connection lost meanwhile).
    #[error("a database statement failed while trying to {action}")]
    Database {
        /// What the statement was for.
        action: &'static str,
        /// The database's answer.
        #[source]
        source: sqlx::Error,
    },
    /// A token could not be sealed or opened: a wrong or missing key, an altered row.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A stored row is not a token record this version reads.
    #[error("the stored record of account {user_id} is not valid")]
    Corrupt {
        /// Whose row.
        user_id: String,
        /// What was wrong.
        #[source]
        source: serde_json::Error,
    },
    /// A write lost a race: the row changed since it was read (compare-and-swap), or it holds
    /// a token issued later than the one being written (a refresh that raced a new login).
    /// The newer row is kept.
    #[error("account {user_id} was written by someone else first; the newer token is kept")]
    Conflict {
        /// Whose row.
        user_id: String,
    },
    /// The account was deleted (a data-deletion request) after the token being saved was
    /// issued: the write is refused, and only a login made after the deletion brings the
    /// account back.
    #[error("account {user_id} was deleted after this token was issued; its user must log in again")]
    Deleted {
        /// Whose account.
        user_id: String,
    },
    /// The URL names no database this store speaks (`sqlite:` or `postgres:`).
    #[error("`{scheme}` is not a database this store speaks: use sqlite:PATH or postgres://…")]
    UnsupportedUrl {
        /// The URL's scheme.
        scheme: String,
    },
    /// The database has a newer schema than this version knows.
    #[error("the database schema is at version {found}, newer than the {known} this igdisplay knows")]
    SchemaTooNew {
        /// The schema version found.
        found: i64,
        /// The newest this version knows.
        known: i64,
    },
    /// A file of the SQLite store could not be made private (mode 0600).
    #[error("the store's file {path} could not be made private")]
    Permissions {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No random bytes could be drawn (a lease owner's name, an event id).
    #[error("no random bytes could be drawn")]
    Random,
}

impl Error {
    /// This error as the [`TokenStore`](igdisplay_auth::TokenStore) trait reports it: a
    /// [`StoreError::Backend`] whose source is this error (downcast it to tell the cases
    /// apart), or the trait's own [`StoreError::Superseded`] for a write that lost to a
    /// deletion.
    pub fn into_store_error(self, action: &'static str) -> StoreError {
        match self {
            Error::Deleted { .. } => StoreError::Superseded,
            error => StoreError::Backend {
                action,
                source: Box::new(error),
            },
        }
    }

    /// Whether the database could not be reached at all (the connection or the credentials),
    /// as opposed to a statement failing on a reachable database: a keeper waits and tries
    /// again; a readiness check answers "not ready".
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Connect(_) | Error::Authentication(_))
            || matches!(self, Error::Database { source, .. } if is_connection_error(source))
    }

    /// A statement's failure, `action` naming what it was for.
    pub(crate) fn statement(action: &'static str) -> impl FnOnce(sqlx::Error) -> Error {
        move |source| Error::Database { action, source }
    }

    /// An error of opening the pool: the credentials refused, or the database unreachable.
    pub(crate) fn connecting(source: sqlx::Error) -> Error {
        let refused_credentials = source
            .as_database_error()
            .and_then(|e| e.code())
            // PostgreSQL's class 28: invalid authorization specification, invalid password.
            .is_some_and(|code| code.starts_with("28"));
        if refused_credentials {
            Error::Authentication(source)
        } else {
            Error::Connect(source)
        }
    }
}

/// Whether `error` is about the connection rather than the statement.
fn is_connection_error(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed
    )
}

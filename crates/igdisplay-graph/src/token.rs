//! Where the Graph client gets its token: a fixed token, or anything that implements
//! [`TokenSource`] (the facade plugs in the auth crate's token manager, which refreshes).

use igdisplay_http::BoxError;
use igdisplay_model::{AccessToken, Timestamp};

/// Supplies a valid access token for each request.
#[async_trait::async_trait]
pub trait TokenSource: std::fmt::Debug + Send + Sync + 'static {
    /// A token to use now. Called before every request, so it may refresh on its own.
    ///
    /// # Errors
    ///
    /// [`TokenUnavailable::LoginRequired`] when only a new login can help (the query fails
    /// with [`Error::LoginRequired`](crate::Error::LoginRequired) and is not retried), or
    /// [`TokenUnavailable::Failed`] when the token could not be read now (a store failure:
    /// the query is retried like a connect failure).
    async fn access_token(&self) -> Result<AccessToken, TokenUnavailable>;

    /// The token, when it never changes ([`StaticToken`]): the client then takes it without
    /// calling (and boxing) [`access_token`](Self::access_token) for every request. `None`, the
    /// default, for a source that may refresh.
    fn fixed(&self) -> Option<&AccessToken> {
        None
    }
}

/// Why a [`TokenSource`] has no token to give.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenUnavailable {
    /// The user must log in again.
    #[error(transparent)]
    LoginRequired(#[from] LoginRequired),
    /// The token could not be read at the moment (its store failed); trying later may work.
    #[error("the access token could not be read")]
    Failed(#[source] BoxError),
}

/// Why the user must go through the authorization window again.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginRequired {
    /// The token's 60 days (or 1 hour, for a short-lived one) ran out.
    #[error("the stored token expired at {expired_at}: the user must log in again")]
    Expired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// Instagram invalidated the token (password change, app removed, a refresh refused).
    #[error("the token was revoked or invalidated: the user must log in again")]
    Revoked,
    /// No token is stored for the user.
    #[error("no token is stored for this user: log in first")]
    NoToken,
    /// The stored token comes from another server (a mock's token, and a client configured
    /// for Instagram, or the other way round); it was not sent.
    #[error("the stored token was issued by {issued_by}; it is not sent to {target}: log in again here")]
    IssuedElsewhere {
        /// Who issued it (an origin).
        issued_by: String,
        /// Where it would have gone (a base URL).
        target: String,
    },
}

/// A fixed token.
#[derive(Clone, Debug)]
pub struct StaticToken(AccessToken);

impl StaticToken {
    /// Uses `token` for every request.
    pub fn new(token: AccessToken) -> Self {
        Self(token)
    }
}

#[async_trait::async_trait]
impl TokenSource for StaticToken {
    async fn access_token(&self) -> Result<AccessToken, TokenUnavailable> {
        Ok(self.0.clone())
    }

    fn fixed(&self) -> Option<&AccessToken> {
        Some(&self.0)
    }
}

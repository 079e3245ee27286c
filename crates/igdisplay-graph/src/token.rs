//! Where the Graph client gets its token: a fixed token, or anything that implements
//! [`TokenSource`] (the facade plugs in the auth crate's token manager, which refreshes).

use igdisplay_http::BoxError;
use igdisplay_model::AccessToken;

/// Supplies a valid access token for each request.
#[async_trait::async_trait]
pub trait TokenSource: std::fmt::Debug + Send + Sync + 'static {
    /// A token to use now. Called before every request, so it may refresh on its own.
    ///
    /// # Errors
    ///
    /// Any failure to produce a token (expired, revoked, store failure); it becomes
    /// [`Error::Token`](crate::Error::Token).
    async fn access_token(&self) -> Result<AccessToken, BoxError>;
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
    async fn access_token(&self) -> Result<AccessToken, BoxError> {
        Ok(self.0.clone())
    }
}

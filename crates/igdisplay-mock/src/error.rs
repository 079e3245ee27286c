//! [`MockError`]: every way the mock refuses or fails, typed.

use crate::CallbackKind;
use std::net::SocketAddr;

/// What went wrong with the mock: starting it, loading a seed, a login it refused, or a
/// callback it could not deliver. Each variant is typed, so a test can assert the refusal it
/// expects.
///
/// ```
/// use igdisplay_mock::{MockError, MockServer};
///
/// let mock = MockServer::start()?;
/// let url = format!(
///     "{}?client_id=1&redirect_uri=https%3A%2F%2Fapp.example%2Fauth%2F&scope=instagram_business_basic&response_type=code",
///     mock.authorize_url(),
/// );
/// match mock.approve(&url, "jayposiris") {
///     Err(MockError::Refused { message }) => assert_eq!(message, "Invalid platform app"),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), MockError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The mock's runtime could not start.
    #[error("could not start the mock's runtime")]
    Runtime(#[source] std::io::Error),
    /// A seed file could not be read.
    #[error("could not read the seed file {path}")]
    SeedRead {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A seed file is not seed JSON.
    #[error("the seed file {path} is not valid seed JSON")]
    SeedParse {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// [`MockServer::approve`](crate::MockServer::approve) or [`MockServer::deny`](crate::MockServer::deny) was given a URL with no query.
    #[error("not an authorize URL: it has no query string")]
    NotAnAuthorizeUrl,
    /// The authorize window refused the request, as it would show a browser: a wrong client
    /// id or redirect URI, a missing scope, an unknown user or one who is not a tester.
    #[error("the authorize window refused: {message}")]
    Refused {
        /// The window's message, as Instagram words it.
        message: String,
    },
    /// No user of that name is seeded.
    #[error("no user named {0} is seeded")]
    UnknownUser(String),
    /// No post has this id (album items are not posts of their own).
    #[error("no post has the id {0}")]
    UnknownMedia(String),
    /// No callback URL of that kind is registered (see [`MockServer::set_callbacks`](crate::MockServer::set_callbacks)).
    #[error("no {0} callback URL is registered")]
    NoCallbackUrl(CallbackKind),
    /// The binary could not write the HTTPS root's PEM file.
    #[error("could not write the root certificate to {path}")]
    WriteRoot {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The HTTPS certificates could not be made.
    #[error("could not set up the mock's HTTPS: {reason}")]
    Tls {
        /// What failed.
        reason: String,
    },
    /// The callback was registered but could not be delivered.
    #[error("the callback could not be delivered: {reason}")]
    Delivery {
        /// Why (a bad URL, a timeout, a refused connection).
        reason: String,
    },
}

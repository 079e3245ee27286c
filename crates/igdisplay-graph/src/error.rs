//! [`Error`]: every way a Graph query can fail, typed. No token or URL appears in any message.

use igdisplay_http::{BoxError, TransportError};
use igdisplay_model::{ErrorClass, GraphError, Usage};
use std::time::Duration;

/// A failed Graph query.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No response, after `attempts` tries.
    #[error("the request failed after {attempts} attempt(s)")]
    Transport {
        /// The last transport failure.
        #[source]
        source: TransportError,
        /// How many requests were sent.
        attempts: u32,
    },
    /// Instagram answered with a Graph error.
    #[error("instagram error {} ({:?}): {}", .error.code, .class, .error.message)]
    Api {
        /// The HTTP status.
        status: u16,
        /// What to do about it.
        class: ErrorClass,
        /// The error as sent.
        error: Box<GraphError>,
        /// How many requests were sent.
        attempts: u32,
    },
    /// A rate limit: reported by Instagram (codes 4, 17, 32, 341, 613, HTTP 429) or reached
    /// locally from the usage headers while configured not to wait.
    #[error("rate limited{}", .retry_after.map(|d| format!("; try again in {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The last usage Instagram reported.
        usage: Option<Box<Usage>>,
        /// How long until calls are likely accepted again, when known.
        retry_after: Option<Duration>,
        /// Instagram's error, when it sent one.
        error: Option<Box<GraphError>>,
    },
    /// A success response whose body does not decode as expected.
    #[error("the response could not be decoded at `{path}`: {reason}")]
    Decode {
        /// Where in the JSON it failed.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// An error status whose body is not a Graph error.
    #[error("unexpected response with status {status}: {snippet}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The start of the body, without the token.
        snippet: String,
    },
    /// The token source could not give a token (for example: expired, the user must log in).
    #[error("no access token is available")]
    Token(#[source] BoxError),
    /// Paging returned a cursor it had already returned: following it would loop forever.
    #[error("the media paging repeated a cursor; stopping to avoid a loop")]
    PaginationLoop,
    /// Paging returned too many empty pages in a row.
    #[error("the media paging returned {0} empty pages in a row; stopping")]
    TooManyEmptyPages(u32),
    /// The request cannot be built (e.g. an invalid base URL or id).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
}

impl Error {
    /// The Graph error, when Instagram sent one.
    pub fn graph_error(&self) -> Option<&GraphError> {
        match self {
            Error::Api { error, .. } => Some(error),
            Error::RateLimited { error, .. } => error.as_deref(),
            _ => None,
        }
    }

    /// The class of the failure, when it has one.
    pub fn class(&self) -> Option<ErrorClass> {
        match self {
            Error::Api { class, .. } => Some(*class),
            Error::RateLimited { .. } => Some(ErrorClass::RateLimited),
            _ => None,
        }
    }

    /// Whether the token is invalid, expired or revoked: log in again (or refresh).
    pub fn is_invalid_token(&self) -> bool {
        self.class() == Some(ErrorClass::InvalidToken)
    }

    /// Whether a rate limit stopped the call.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::RateLimited { .. })
    }

    /// Whether the same call may succeed later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::RateLimited { .. } => true,
            Error::Api { class, .. } => class.is_retryable(),
            Error::UnexpectedResponse { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// The Graph error code.
    pub fn code(&self) -> Option<i64> {
        self.graph_error().map(|e| e.code)
    }

    /// The Graph error subcode.
    pub fn subcode(&self) -> Option<i64> {
        self.graph_error().and_then(|e| e.error_subcode)
    }

    /// Meta's support id of the failure.
    pub fn fbtrace_id(&self) -> Option<&str> {
        self.graph_error().and_then(|e| e.fbtrace_id.as_deref())
    }
}

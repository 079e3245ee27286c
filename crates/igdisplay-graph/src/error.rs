//! [`Error`]: every way a Graph query can fail, typed. No token or URL appears in any message.

use crate::{LoginRequired, TokenUnavailable};
use igdisplay_http::{
    BoxError, Failure, Outcome, RequestKind, Retry, ServerVerdict, TransportError, classify,
};
use igdisplay_model::{DecodeError, ErrorClass, GraphError, Usage};
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
    /// An error status whose body is not a Graph error (a proxy's or load balancer's page),
    /// after `attempts` tries.
    #[error("unexpected response with status {status} after {attempts} attempt(s): {snippet}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The start of the body, without the token.
        snippet: String,
        /// How many requests were sent.
        attempts: u32,
    },
    /// The user must log in again before any query can succeed; no request was sent.
    #[error(transparent)]
    LoginRequired(LoginRequired),
    /// The token could not be read (its store failed); no request was sent. Retryable.
    #[error("the access token could not be read; try again")]
    TokenUnavailable(#[source] BoxError),
    /// Paging returned a cursor it had already returned: following it would loop forever.
    #[error("the media paging repeated a cursor; stopping to avoid a loop")]
    PaginationLoop,
    /// Paging returned too many empty pages in a row.
    #[error("the media paging returned {0} empty pages in a row; stopping")]
    TooManyEmptyPages(u32),
    /// The request cannot be built (e.g. an invalid base URL or id).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// A reply Instagram would refuse, refused before it was sent: the comment is hidden, or
    /// is itself a reply.
    #[error("cannot reply: {0}")]
    CannotReply(#[from] crate::ReplyRefused),
}

impl From<TokenUnavailable> for Error {
    fn from(error: TokenUnavailable) -> Self {
        match error {
            TokenUnavailable::LoginRequired(reason) => Error::LoginRequired(reason),
            TokenUnavailable::Failed(source) => Error::TokenUnavailable(source),
        }
    }
}

impl From<DecodeError> for Error {
    fn from(error: DecodeError) -> Self {
        Error::Decode {
            path: error.path,
            reason: error.reason,
        }
    }
}

impl Failure for Error {
    fn transport(source: TransportError, _kind: RequestKind) -> Self {
        Error::Transport { source, attempts: 1 }
    }

    fn retry(&self) -> Retry {
        Error::retry(self)
    }

    fn pause(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn after_attempts(mut self, sent: u32) -> Self {
        if let Error::Transport { attempts, .. }
        | Error::Api { attempts, .. }
        | Error::UnexpectedResponse { attempts, .. } = &mut self
        {
            *attempts = sent;
        }
        self
    }
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
            Error::LoginRequired(_) => Some(ErrorClass::InvalidToken),
            _ => None,
        }
    }

    /// Whether the user must log in again: the token expired, was revoked, is missing, or
    /// Instagram rejected it (190) — whichever side noticed first.
    ///
    /// ```
    /// use igdisplay_graph::{Error, LoginRequired};
    ///
    /// let error = Error::LoginRequired(LoginRequired::Revoked);
    /// if error.requires_login() {
    ///     // forget the session and send the user to the authorize URL
    /// }
    /// # assert!(error.requires_login());
    /// ```
    pub fn requires_login(&self) -> bool {
        self.class() == Some(ErrorClass::InvalidToken)
    }

    /// Whether a rate limit stopped the call.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::RateLimited { .. })
    }

    /// What the pipeline does with this failure: the one classifier's answer for a Graph
    /// read ([`igdisplay_http::classify`]).
    pub fn retry(&self) -> Retry {
        let outcome = match self {
            Error::Transport { source, .. } => Outcome::Transport(source.kind()),
            Error::TokenUnavailable(_) => Outcome::Unsent,
            Error::Api { class, .. } => Outcome::Refused(ServerVerdict::from(*class)),
            Error::RateLimited { .. } => Outcome::Refused(ServerVerdict::RateLimited),
            Error::UnexpectedResponse { status, .. } => Outcome::Refused(ServerVerdict::from(
                igdisplay_model::classify(0, None, false, *status),
            )),
            _ => return Retry::Stop,
        };
        classify(RequestKind::Idempotent, outcome)
    }

    /// Whether the same call may succeed later: exactly when the send loop tries it again
    /// ([`Failure::loop_retries`]): after a backoff, or after a rate limit's known pause.
    pub fn is_retryable(&self) -> bool {
        self.loop_retries()
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

#[cfg(test)]
mod tests {
    use super::*;
    use igdisplay_http::test_util::send_loop_retries;

    fn api(class: ErrorClass) -> Error {
        Error::Api {
            status: 400,
            class,
            error: Box::new(serde_json::from_str(r#"{"message":"m","code":1}"#).unwrap()),
            attempts: 1,
        }
    }

    fn rate_limited(retry_after: Option<Duration>) -> Error {
        Error::RateLimited {
            usage: None,
            retry_after,
            error: None,
        }
    }

    /// Every kind of error, what the one send loop does with it, and `is_retryable()`
    /// agreeing: the loop is run for each row.
    #[tokio::test]
    async fn is_retryable_is_what_the_send_loop_does_for_every_error_kind() {
        let unexpected = |status| Error::UnexpectedResponse {
            status,
            snippet: String::new(),
            attempts: 1,
        };
        // Transport failures: what the classifier's own table says for a read.
        let mut table: Vec<(Error, bool)> = igdisplay_http::TransportErrorKind::ALL
            .iter()
            .map(|&kind| {
                let retried = classify(RequestKind::Idempotent, Outcome::Transport(kind)) == Retry::Backoff;
                let error = Error::transport(TransportError::new(kind), RequestKind::Idempotent);
                (error, retried)
            })
            .collect();
        table.extend([
            (api(ErrorClass::Transient), true),
            (api(ErrorClass::RateLimited), false),
            (api(ErrorClass::InvalidToken), false),
            (api(ErrorClass::PermissionDenied), false),
            (api(ErrorClass::InvalidParameter), false),
            (api(ErrorClass::Other), false),
            (rate_limited(Some(Duration::from_secs(30))), true),
            (rate_limited(None), false),
            (unexpected(503), true),
            (unexpected(404), false),
            (unexpected(429), false),
            (
                Error::Decode {
                    path: "id".into(),
                    reason: "missing".into(),
                },
                false,
            ),
            (Error::LoginRequired(LoginRequired::Revoked), false),
            (Error::TokenUnavailable("the store is down".into()), true),
            (Error::PaginationLoop, false),
            (Error::TooManyEmptyPages(5), false),
            (Error::InvalidRequest("bad id"), false),
            (Error::CannotReply(crate::ReplyRefused::Hidden), false),
        ]);
        for (error, retried) in table {
            let shown = format!("{error:?}");
            assert_eq!(error.is_retryable(), retried, "{shown}");
            assert_eq!(send_loop_retries(error).await, retried, "{shown}");
        }
    }
}

//! The errors of the flow. None of them ever holds a token, code, state, secret or URL.

use igdisplay_http::{Failure, Outcome, RequestKind, Retry, ServerVerdict, TransportError, classify};
use igdisplay_model::{ErrorClass, GraphError, Timestamp, UserId};

/// Why a redirect back from the authorize window was rejected. No request was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallbackError {
    /// The callback is longer than the parser accepts.
    #[error("the callback is {len} bytes long, more than the {limit}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The callback is not a query string igdisplay can read.
    #[error("the callback is malformed: {0}")]
    Malformed(&'static str),
    /// A parameter appears twice; igdisplay never picks one.
    #[error("the callback repeats the `{0}` parameter")]
    DuplicateParameter(&'static str),
    /// Both `code` and `error` are present.
    #[error("the callback carries both a code and an error")]
    BothCodeAndError,
    /// `code` is present but empty.
    #[error("the callback's code is empty")]
    EmptyCode,
    /// Neither `code` nor `error` is present.
    #[error("the callback has neither a code nor an error: was the URL copied completely?")]
    MissingCode,
    /// `state` is missing.
    #[error("the callback has no state: it did not come from an authorization this app started")]
    MissingState,
    /// `state` does not match a pending authorization.
    #[error("the callback's state does not match: start the login again")]
    StateMismatch,
    /// `state` belongs to an authorization that was already completed.
    #[error("this login was already completed: the callback was replayed")]
    StateAlreadyUsed,
    /// The pending authorization is older than its time to live.
    #[error("the login took too long and expired: start it again")]
    AuthorizationExpired,
    /// The user pressed Cancel (`error=access_denied`) or Instagram refused.
    #[error("the authorization was denied ({error}: {reason})")]
    Denied {
        /// `error`, usually `access_denied`.
        error: String,
        /// `error_reason`, usually `user_denied`.
        reason: String,
        /// `error_description`, as sent. Escape it before putting it in HTML.
        description: String,
    },
}

/// A failed token request: code exchange, long-lived exchange or refresh.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// No response: see the source for the kind.
    #[error("the token request failed")]
    Transport {
        /// What went wrong.
        #[source]
        source: TransportError,
        /// Whether the request was a single-use exchange or a repeatable read.
        request: RequestKind,
    },
    /// Instagram does not recognize the code (`Invalid authorization code`).
    #[error("instagram rejected the authorization code: {message}")]
    InvalidCode {
        /// Instagram's message.
        message: String,
    },
    /// The code was already exchanged (it is single use; a callback hit twice does this).
    #[error("the authorization code was already used: {message}")]
    CodeAlreadyUsed {
        /// Instagram's message.
        message: String,
    },
    /// The redirect URI differs from the one of the authorize URL.
    #[error("the redirect URI does not match the one used to authorize: {message}")]
    RedirectUriMismatch {
        /// Instagram's message.
        message: String,
    },
    /// The app id or secret is wrong (`Invalid platform app`, a bad client secret).
    #[error("instagram rejected the app credentials: {message}; use the Instagram App ID and Secret")]
    InvalidClient {
        /// Instagram's message.
        message: String,
    },
    /// The account is not an accepted Instagram Tester of this app in development mode.
    #[error(
        "the account is not an accepted Instagram tester of this app ({message}): invite it under \
         App Dashboard > Roles > Instagram Testers and accept under Settings > Apps and Websites > Tester Invites"
    )]
    NotATester {
        /// Instagram's message.
        message: String,
    },
    /// Another flat OAuth error.
    #[error("instagram rejected the request (OAuth error {code}): {message}")]
    OAuth {
        /// The `code` field (mirrors the HTTP status).
        code: i64,
        /// Instagram's message.
        message: String,
    },
    /// A Graph-shaped error (token endpoints on graph.instagram.com).
    #[error("instagram error {} ({:?}): {}", .error.code, .class, .error.message)]
    Api {
        /// The HTTP status.
        status: u16,
        /// What to do about it.
        class: ErrorClass,
        /// The error as sent.
        error: Box<GraphError>,
        /// Whether the request was a single-use exchange or a repeatable read.
        request: RequestKind,
    },
    /// A success status with a body that does not decode.
    #[error("the token response could not be decoded at `{path}`: {reason}")]
    Decode {
        /// Where in the JSON it failed.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// An error status whose body is neither error shape.
    #[error("unexpected response with status {status}: {snippet}")]
    UnexpectedResponse {
        /// The HTTP status.
        status: u16,
        /// The start of the body, secrets masked.
        snippet: String,
        /// Whether the request was a single-use exchange or a repeatable read.
        request: RequestKind,
    },
    /// The configured endpoint does not form a request URI; nothing was sent.
    #[error("the configured endpoint does not form a valid request URI")]
    InvalidEndpoint,
    /// The client was built without app credentials (read-only, for stored or dashboard
    /// tokens): logins and token exchanges need the app id, secret and redirect URI.
    #[error(
        "this client has no app credentials: logging in and exchanging tokens need the app id, \
         app secret and redirect URI"
    )]
    NoAppCredentials,
    /// The authorization grant was made for another app, redirect URI or token endpoint.
    #[error("the authorization was started with another configuration (app, redirect URI or endpoint)")]
    ConfigMismatch,
    /// Only a long-lived token can be refreshed; exchange a short-lived one instead.
    #[error("only a long-lived token can be refreshed")]
    NotLongLived,
    /// A long-lived token can be refreshed only once it is 24 hours old.
    #[error("the token is less than 24 hours old; it can be refreshed from {ready_at}")]
    TooEarly {
        /// When it becomes refreshable.
        ready_at: Timestamp,
    },
    /// The token expired: the user must authorize again.
    #[error("the token expired at {expired_at}: the user must log in again")]
    Expired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// Instagram says the token is no longer valid: the user must authorize again.
    #[error("the token was revoked or invalidated: the user must log in again")]
    Revoked(#[source] Box<TokenError>),
    /// No token is stored for this user.
    #[error("no token is stored for user {0}: log in first")]
    NoToken(UserId),
    /// The store keeps the account as unusable (Instagram refused its token, it expired, or
    /// the user removed the app): nothing is sent with it until its user logs in again.
    #[error("the account is {state}: its user must log in again")]
    LoginRequired {
        /// Where the account stands (`revoked`, `expired`, `deauthorized`).
        state: &'static str,
    },
    /// The stored token was issued by another server than the one this client sends to (a
    /// mock's token, and a client configured for Instagram, or the other way round): it is
    /// not sent. Log in again against these endpoints, or point the client back.
    #[error("the stored token was issued by {issued_by}; it is not sent to {target}")]
    IssuedElsewhere {
        /// Who issued it: an origin, or `Instagram`.
        issued_by: String,
        /// Where this client would have sent it: an origin, or `Instagram`.
        target: String,
    },
    /// The token store failed.
    #[error("the token store failed")]
    Store(#[from] StoreError),
}

impl TokenError {
    /// Whether the user must go through the authorize window again.
    pub fn requires_reauthorization(&self) -> bool {
        match self {
            TokenError::Expired { .. }
            | TokenError::Revoked(_)
            | TokenError::NoToken(_)
            | TokenError::LoginRequired { .. } => true,
            TokenError::Api { class, .. } => *class == ErrorClass::InvalidToken,
            _ => false,
        }
    }

    /// What the client's send loop does with this failure: the one classifier's answer
    /// ([`igdisplay_http::classify`]) for the request that failed. A code exchange is single
    /// use, so only a failure to connect is retried; a read is also retried after a timeout,
    /// a broken connection or a server error. A store failure never reached the network and
    /// may succeed later.
    pub fn retry(&self) -> Retry {
        let (request, outcome) = match self {
            TokenError::Transport { source, request } => (*request, Outcome::Transport(source.kind())),
            TokenError::Api { class, request, .. } => {
                (*request, Outcome::Refused(ServerVerdict::from(*class)))
            }
            TokenError::UnexpectedResponse { status, request, .. } => (
                *request,
                Outcome::Refused(ServerVerdict::from(igdisplay_model::classify(
                    0, None, false, *status,
                ))),
            ),
            TokenError::Store(_) => (RequestKind::Idempotent, Outcome::Unsent),
            _ => return Retry::Stop,
        };
        classify(request, outcome)
    }

    /// Whether the send loop tries this failure again ([`Failure::loop_retries`]): exactly
    /// when [`retry`](Self::retry) says [`Retry::Backoff`]. A rate limit
    /// ([`Retry::AfterPause`]) carries no pause the token client knows (it has no pacing of
    /// its own), so it is returned: try again after the pause.
    pub fn is_retryable(&self) -> bool {
        self.loop_retries()
    }
}

impl Failure for TokenError {
    fn transport(source: TransportError, request: RequestKind) -> Self {
        TokenError::Transport { source, request }
    }

    fn retry(&self) -> Retry {
        TokenError::retry(self)
    }
}

/// A token store failure. Never holds a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading, writing, locking or renaming failed.
    #[error("token store I/O failed while trying to {action}")]
    Io {
        /// What it was doing.
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The stored file is not valid token JSON; it was left untouched.
    #[error("the token file is corrupt and was left untouched")]
    Corrupt(#[source] serde_json::Error),
    /// The store's file has a newer format than this version understands.
    #[error("the token file has format version {0}, newer than this igdisplay understands")]
    UnsupportedVersion(u64),
    /// A refreshed token was not stored: the account was removed (a logout, a
    /// deauthorization, a data deletion) or its token replaced (a new login, another
    /// process's refresh) while the refresh was in flight.
    #[error(
        "the account was removed or its token replaced during the refresh; the refreshed token was not stored"
    )]
    Superseded,
    /// The account cannot be used until its user logs in again: Instagram refused its token,
    /// the token expired, or the user removed the app. Nothing is sent with it.
    #[error("the account is {state}: its user must log in again")]
    LoginRequired {
        /// Where the account stands (`revoked`, `expired`, `deauthorized`).
        state: &'static str,
    },
    /// A store of another kind (a database, a key ring) failed; its own typed error is the
    /// source, for callers that want to tell its cases apart by downcasting.
    #[error("the token store failed while trying to {action}")]
    Backend {
        /// What it was doing.
        action: &'static str,
        /// The store's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestKind::{Idempotent, SingleUse};
    use igdisplay_http::test_util::send_loop_retries;

    fn api(class: ErrorClass, request: RequestKind) -> TokenError {
        TokenError::Api {
            status: 400,
            class,
            error: Box::new(serde_json::from_str(r#"{"message":"m","code":1}"#).unwrap()),
            request,
        }
    }

    fn unexpected(status: u16, request: RequestKind) -> TokenError {
        TokenError::UnexpectedResponse {
            status,
            snippet: String::new(),
            request,
        }
    }

    /// Every kind of token error, for both request kinds where it has one, what the one send
    /// loop does with it, and `is_retryable()` agreeing: the loop is run for each row.
    #[tokio::test]
    async fn is_retryable_is_what_the_send_loop_does_for_every_error_kind() {
        let message = || String::from("m");
        let at = Timestamp::from_unix(1_700_000_000);
        let mut table: Vec<(TokenError, bool)> = Vec::new();
        // Transport failures: what the classifier's own table says for each request kind.
        for &kind in igdisplay_http::TransportErrorKind::ALL {
            for request in [Idempotent, SingleUse] {
                let retried = classify(request, Outcome::Transport(kind)) == Retry::Backoff;
                table.push((TokenError::transport(TransportError::new(kind), request), retried));
            }
        }
        for request in [Idempotent, SingleUse] {
            let read = request == Idempotent;
            table.extend([
                (api(ErrorClass::Transient, request), read),
                (api(ErrorClass::RateLimited, request), false),
                (api(ErrorClass::InvalidToken, request), false),
                (api(ErrorClass::PermissionDenied, request), false),
                (api(ErrorClass::InvalidParameter, request), false),
                (api(ErrorClass::Other, request), false),
                (unexpected(502, request), read),
                (unexpected(429, request), false),
                (unexpected(400, request), false),
            ]);
        }
        table.extend([
            (TokenError::InvalidCode { message: message() }, false),
            (TokenError::CodeAlreadyUsed { message: message() }, false),
            (TokenError::RedirectUriMismatch { message: message() }, false),
            (TokenError::InvalidClient { message: message() }, false),
            (TokenError::NotATester { message: message() }, false),
            (
                TokenError::OAuth {
                    code: 400,
                    message: message(),
                },
                false,
            ),
            (
                TokenError::Decode {
                    path: "access_token".into(),
                    reason: "missing".into(),
                },
                false,
            ),
            (TokenError::InvalidEndpoint, false),
            (TokenError::NoAppCredentials, false),
            (TokenError::ConfigMismatch, false),
            (TokenError::NotLongLived, false),
            (TokenError::TooEarly { ready_at: at }, false),
            (TokenError::Expired { expired_at: at }, false),
            (TokenError::Revoked(Box::new(TokenError::NotLongLived)), false),
            (TokenError::NoToken(UserId::new("1")), false),
            (TokenError::LoginRequired { state: "revoked" }, false),
            (
                TokenError::IssuedElsewhere {
                    issued_by: "Instagram".into(),
                    target: "http://127.0.0.1:1".into(),
                },
                false,
            ),
            (TokenError::Store(StoreError::Superseded), true),
        ]);
        for (error, retried) in table {
            let shown = format!("{error:?}");
            assert_eq!(error.is_retryable(), retried, "{shown}");
            assert_eq!(send_loop_retries(error).await, retried, "{shown}");
        }
    }
}

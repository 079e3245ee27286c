//! [`TransportError`]: what went wrong below HTTP, as a kind plus a source, never a URL.

use std::error::Error as StdError;
use std::fmt;

/// The boxed cause of a [`TransportError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What kind of transport failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The request did not complete within the backend's request timeout.
    Timeout,
    /// No connection could be made (refused, unreachable, DNS, TLS handshake, connect timeout).
    /// The request was not sent, so retrying it is always safe.
    Connect,
    /// The connection failed after it was made (reset, closed early): the request may have
    /// reached the server.
    Io,
    /// The response body could not be read completely.
    Body,
    /// The response body is larger than the backend's size cap.
    BodyTooLarge,
    /// The request itself is invalid (bad URI, unsupported scheme, bad header).
    InvalidRequest,
    /// Anything else.
    Other,
}

impl TransportErrorKind {
    /// Every kind, for tests that enumerate them.
    pub const ALL: &'static [TransportErrorKind] = &[
        TransportErrorKind::Timeout,
        TransportErrorKind::Connect,
        TransportErrorKind::Io,
        TransportErrorKind::Body,
        TransportErrorKind::BodyTooLarge,
        TransportErrorKind::InvalidRequest,
        TransportErrorKind::Other,
    ];

    fn describe(self) -> &'static str {
        match self {
            TransportErrorKind::Timeout => "the request timed out",
            TransportErrorKind::Connect => "could not connect to the server",
            TransportErrorKind::Io => "the connection failed during the request",
            TransportErrorKind::Body => "the response body could not be read",
            TransportErrorKind::BodyTooLarge => "the response body is larger than the configured limit",
            TransportErrorKind::InvalidRequest => "the request is invalid",
            TransportErrorKind::Other => "the HTTP transport failed",
        }
    }
}

/// A failure to get an HTTP response at all. Any response, whatever its status, is not one.
///
/// It never holds the request URL (which may carry an access token or the app secret): the
/// backends strip it, and [`Display`](fmt::Display) prints only the kind.
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    source: Option<BoxError>,
}

impl TransportError {
    /// An error of `kind` with no further cause.
    pub fn new(kind: TransportErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// An error of `kind` caused by `source`. The source must not print a URL.
    pub fn with_source(kind: TransportErrorKind, source: impl Into<BoxError>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// The body-size refusal for a `limit` in bytes.
    pub fn body_too_large(limit: usize) -> Self {
        Self::with_source(TransportErrorKind::BodyTooLarge, BodyTooLarge { limit })
    }

    /// The kind of failure.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }

    /// Whether no connection could be made, so nothing was sent.
    pub fn is_connect(&self) -> bool {
        self.kind == TransportErrorKind::Connect
    }

    /// Whether the body exceeded the size cap.
    pub fn is_body_too_large(&self) -> bool {
        self.kind == TransportErrorKind::BodyTooLarge
    }

    /// Whether the request certainly never reached the server (only [`Connect`](TransportErrorKind::Connect)
    /// and [`InvalidRequest`](TransportErrorKind::InvalidRequest) failures). A single-use request such
    /// as a code exchange may be retried only then.
    pub fn is_unsent(&self) -> bool {
        matches!(
            self.kind,
            TransportErrorKind::Connect | TransportErrorKind::InvalidRequest
        )
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.describe())
    }
}

impl StdError for TransportError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn StdError + 'static))
    }
}

/// The cause of a [`TransportErrorKind::BodyTooLarge`] error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the response body exceeds the {limit}-byte limit")]
pub struct BodyTooLarge {
    /// The limit in bytes.
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_kind_and_source_is_chained() {
        let err = TransportError::body_too_large(16);
        assert_eq!(
            err.to_string(),
            "the response body is larger than the configured limit"
        );
        assert_eq!(
            err.source().unwrap().to_string(),
            "the response body exceeds the 16-byte limit"
        );
        assert!(err.is_body_too_large() && !err.is_unsent());
        assert!(TransportError::new(TransportErrorKind::Connect).is_unsent());
        assert!(TransportError::new(TransportErrorKind::Timeout).is_timeout());
    }
}

//! The two error bodies Instagram sends, and the one classifier every layer uses.
//!
//! - The flat **OAuth** shape, from `api.instagram.com/oauth/*`:
//!   `{"error_type":"OAuthException","code":400,"error_message":"..."}`.
//! - The **Graph** shape, from every `graph.instagram.com` endpoint (token endpoints included):
//!   `{"error":{"message":"...","type":"OAuthException","code":190,"error_subcode":463,...}}`.
//!
//! Unknown keys are kept in `extra` so nothing Instagram says is lost.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The flat error of the OAuth endpoints (code exchange, and errors inside the authorize window).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OAuthErrorBody {
    /// Usually `OAuthException`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Mirrors the HTTP status (400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// What went wrong, e.g. `This authorization code has been used`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Keys this version does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The Graph error envelope, `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphErrorBody {
    /// The error itself.
    pub error: GraphError,
}

/// The inside of a Graph error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GraphError {
    /// Developer-facing text.
    #[serde(default)]
    pub message: String,
    /// `OAuthException`, `IGApiException`, `GraphMethodException`, ...
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The Graph error code (190 invalid token, 4/17 rate limits, 100 invalid parameter, ...).
    #[serde(default)]
    pub code: i64,
    /// Refines `code`, e.g. 463 for an expired token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    /// A localized title meant for end users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    /// A localized message meant for end users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    /// Whether Meta says retrying may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    /// Meta's support id for this failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// Extra structured data some errors carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<Value>,
    /// Keys this version does not model.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl GraphError {
    /// The class of this error, given the HTTP status it came with.
    pub fn class(&self, http_status: u16) -> ErrorClass {
        classify(
            self.code,
            self.error_subcode,
            self.is_transient.unwrap_or(false),
            http_status,
        )
    }
}

/// Either error shape, as found in a response body.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ErrorBody {
    /// The flat OAuth shape.
    OAuth(OAuthErrorBody),
    /// The Graph `{"error":{...}}` shape.
    Graph(GraphErrorBody),
}

impl ErrorBody {
    /// Recognizes an error body; `None` when the bytes are neither shape (HTML, empty, other JSON).
    pub fn parse(body: &[u8]) -> Option<Self> {
        let Value::Object(map) = serde_json::from_slice::<Value>(body).ok()? else {
            return None;
        };
        if matches!(map.get("error"), Some(Value::Object(_))) {
            return serde_json::from_value(Value::Object(map))
                .ok()
                .map(ErrorBody::Graph);
        }
        if map.contains_key("error_message") || map.contains_key("error_type") {
            return serde_json::from_value(Value::Object(map))
                .ok()
                .map(ErrorBody::OAuth);
        }
        None
    }

    /// The human message of either shape.
    pub fn message(&self) -> &str {
        match self {
            ErrorBody::OAuth(body) => body.error_message.as_deref().unwrap_or_default(),
            ErrorBody::Graph(body) => &body.error.message,
        }
    }
}

/// What a caller should do about a Graph error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The token is invalid, expired or revoked (190, 102, or an OAuth subcode): re-authorize,
    /// or refresh if it is still valid.
    InvalidToken,
    /// A rate limit (4, 17, 32, 341, 613, the 80000-range business-use-case codes, or HTTP 429):
    /// stop and back off; do not retry at once.
    RateLimited,
    /// The app or user lacks a permission (10, 200-299): needs consent or app review.
    PermissionDenied,
    /// The request is wrong (100, 2500): fix it; retrying will not help.
    InvalidParameter,
    /// A temporary failure (1, 2, `is_transient`, HTTP 5xx): retry with backoff.
    Transient,
    /// Anything else, 368 (temporarily blocked for policy reasons) included: not retryable.
    Other,
}

/// The OAuth subcodes that mean the token can no longer be used: app not installed (458),
/// user checkpointed (459), password changed (460), expired (463), unconfirmed user (464),
/// invalid token (467).
pub const INVALID_TOKEN_SUBCODES: [i64; 6] = [458, 459, 460, 463, 464, 467];

/// Classifies a Graph error from its code, subcode, `is_transient` flag and HTTP status.
///
/// Explicit codes win over the flags: a token or rate-limit error is never retried as
/// transient, and the permanent codes (10, 100, 190, 200-299, 368, 2500) stay permanent
/// whatever `is_transient` says. An unknown code is transient on a 5xx status, else `Other`.
pub fn classify(code: i64, subcode: Option<i64>, is_transient: bool, http_status: u16) -> ErrorClass {
    if matches!(code, 102 | 190) || subcode.is_some_and(|s| INVALID_TOKEN_SUBCODES.contains(&s)) {
        return ErrorClass::InvalidToken;
    }
    if matches!(code, 4 | 17 | 32 | 341 | 613 | 80_000..=80_014) || http_status == 429 {
        return ErrorClass::RateLimited;
    }
    match code {
        10 | 200..=299 => ErrorClass::PermissionDenied,
        100 | 2500 => ErrorClass::InvalidParameter,
        368 => ErrorClass::Other,
        1 | 2 => ErrorClass::Transient,
        _ if is_transient || http_status >= 500 => ErrorClass::Transient,
        _ => ErrorClass::Other,
    }
}

/// An error with its sources in one line, `a: b: c`, a source whose text the line already
/// holds left out: how every igdisplay program writes an error for a person or a log.
///
/// ```
/// let io = std::io::Error::other("disk full");
/// assert_eq!(igdisplay_model::error_chain(&io), "disk full");
/// ```
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::ErrorClass::*;
    use super::*;

    /// Every code of the reference's error table (A.13), plus the flags and statuses.
    #[test]
    fn classifier_table() {
        #[rustfmt::skip]
        let table: &[(i64, Option<i64>, bool, u16, ErrorClass)] = &[
            (1, None, false, 500, Transient),
            (1, None, false, 400, Transient),
            (2, None, true, 503, Transient),
            (4, None, false, 400, RateLimited),
            (4, None, false, 403, RateLimited),
            (10, None, false, 400, PermissionDenied),
            (17, None, false, 400, RateLimited),
            (17, None, true, 403, RateLimited),
            (32, None, false, 400, RateLimited),
            (100, None, false, 400, InvalidParameter),
            (100, Some(33), true, 400, InvalidParameter),
            (102, None, false, 400, InvalidToken),
            (190, None, false, 400, InvalidToken),
            (190, Some(458), false, 400, InvalidToken),
            (190, Some(459), false, 400, InvalidToken),
            (190, Some(460), false, 400, InvalidToken),
            (190, Some(463), false, 400, InvalidToken),
            (190, Some(464), false, 400, InvalidToken),
            (190, Some(467), false, 400, InvalidToken),
            (190, None, true, 500, InvalidToken),
            (200, None, false, 400, PermissionDenied),
            (250, None, false, 403, PermissionDenied),
            (299, None, false, 400, PermissionDenied),
            (341, None, false, 400, RateLimited),
            (368, None, false, 400, Other),
            (368, None, true, 500, Other),
            (613, None, false, 400, RateLimited),
            (2500, None, false, 400, InvalidParameter),
            (80_002, None, false, 400, RateLimited),
            (12345, None, false, 400, Other),
            (12345, None, true, 400, Transient),
            (12345, None, false, 502, Transient),
            (12345, None, false, 429, RateLimited),
            (300, None, false, 400, Other),
            (999, Some(463), false, 400, InvalidToken),
        ];
        for &(code, subcode, transient, status, expected) in table {
            assert_eq!(
                classify(code, subcode, transient, status),
                expected,
                "code {code} subcode {subcode:?} transient {transient} status {status}"
            );
        }
    }

    #[test]
    fn error_body_recognizes_both_shapes_and_nothing_else() {
        let oauth =
            br#"{"error_type":"OAuthException","code":400,"error_message":"Invalid authorization code"}"#;
        assert!(matches!(ErrorBody::parse(oauth), Some(ErrorBody::OAuth(_))));
        let graph =
            br#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}"#;
        let parsed = ErrorBody::parse(graph).unwrap();
        assert_eq!(parsed.message(), "Invalid OAuth access token.");
        for other in [
            &b"<html>nope</html>"[..],
            b"",
            b"[]",
            b"{\"error\":\"x\"}",
            b"{\"data\":[]}",
        ] {
            assert_eq!(
                ErrorBody::parse(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn graph_error_class_uses_its_own_fields() {
        let body: GraphErrorBody =
            serde_json::from_str(r#"{"error":{"message":"m","code":2,"is_transient":true}}"#).unwrap();
        assert_eq!(body.error.class(500), Transient);
    }
}

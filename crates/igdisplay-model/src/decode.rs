//! Decoding a response body, and showing a bit of one in an error, without ever printing a
//! secret the request carried. The token and auth clients both decode through here.

use serde::de::DeserializeOwned;
use std::fmt;

/// What replaces a secret in any text igdisplay shows.
pub const MASK: &str = "[redacted]";

/// How many characters of a body an error shows.
pub const SNIPPET_CHARS: usize = 160;

/// A body that does not decode as expected: where and why, secrets masked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Where in the JSON it failed, e.g. `data[3].timestamp` (`.` for the top level).
    pub path: String,
    /// What was wrong, with the request's secrets masked.
    pub reason: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at `{}`: {}", self.path, self.reason)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `body` as `T`. On failure the error names the JSON path, and any of `secrets`
/// (the token, code or app secret the request carried) that the reason quotes is masked.
///
/// ```
/// use igdisplay_model::{User, decode};
///
/// let user: User = decode(br#"{"id": "1", "username": "jayposiris"}"#, &[]).unwrap();
/// assert_eq!(user.username.as_deref(), Some("jayposiris"));
/// let error = decode::<User>(br#"{"id": "1", "media_count": "SECRET"}"#, &["SECRET"]).unwrap_err();
/// assert_eq!(error.path, "media_count");
/// assert!(!error.reason.contains("SECRET"));
/// ```
///
/// # Errors
///
/// [`DecodeError`] when `body` is not JSON of `T`'s shape.
pub fn decode<T: DeserializeOwned>(body: &[u8], secrets: &[&str]) -> Result<T, DecodeError> {
    // The fast path; only a failure is decoded again to find where it failed.
    if let Ok(value) = serde_json::from_slice(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        // What the fast path refused and this one read whole must be what follows the value:
        // trailing bytes are an error here too, never ignored.
        Ok(_) => Err(DecodeError {
            path: String::new(),
            reason: deserializer.end().err().map_or_else(
                || String::from("the body is not one JSON value"),
                |e| mask(&e.to_string(), secrets),
            ),
        }),
        Err(e) => Err(DecodeError {
            path: e.path().to_string(),
            reason: mask(&e.inner().to_string(), secrets),
        }),
    }
}

/// The first [`SNIPPET_CHARS`] characters of `body` as text, with `secrets` masked: what an
/// error shows of a body it could not understand.
///
/// ```
/// let shown = igdisplay_model::snippet(b"<html>code ABCDEF rejected</html>", &["ABCDEF"]);
/// assert_eq!(shown, "<html>code [redacted] rejected</html>");
/// ```
pub fn snippet(body: &[u8], secrets: &[&str]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .take(SNIPPET_CHARS)
        .collect();
    mask(&text, secrets)
}

/// `text` with every occurrence of each of `secrets` replaced by [`MASK`], as written and
/// percent-encoded (upper- or lower-case hex): a body that echoes a request's query shows the
/// encoded form. Secrets shorter than four characters are left alone: masking them would mask
/// ordinary words.
pub fn mask(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |text, secret| {
            let upper = percent_encoded(secret, false);
            let lower = percent_encoded(secret, true);
            text.replace(*secret, MASK)
                .replace(&upper, MASK)
                .replace(&lower, MASK)
        })
}

/// `value` with everything but the RFC 3986 unreserved characters percent-encoded.
fn percent_encoded(value: &str, lower_hex: bool) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else if lower_hex {
            out.push_str(&format!("%{byte:02x}"));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the webhook_receiver fuzz target: the second, slower reading (which only
    /// runs to say where a body failed) ignored what followed the value.
    #[test]
    fn a_body_with_bytes_after_its_value_is_refused() {
        let error = decode::<serde_json::Value>(br#"{"id":"1"}trailing"#, &[]).unwrap_err();
        assert!(error.reason.contains("trailing"), "{}", error.reason);
        assert!(
            decode::<serde_json::Value>(b"{\"id\":\"1\"} \n", &[]).is_ok(),
            "whitespace is fine"
        );
    }

    #[test]
    fn snippets_are_cut_and_masked() {
        assert_eq!(snippet(&[b'a'; 500], &[]).len(), SNIPPET_CHARS);
        assert_eq!(snippet(b"key XYZW1 ab", &["XYZW1", "ab"]), "key [redacted] ab");
    }

    #[test]
    fn a_decode_failure_names_the_path() {
        let error = decode::<crate::ListResponse<crate::Media>>(
            br#"{"data": [{"id": "1"}, {"id": "2", "timestamp": 5}]}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(error.path, "data[1].timestamp");
    }
}

#[cfg(test)]
mod encoded_secret_tests {
    use super::*;

    #[test]
    fn a_percent_encoded_secret_is_masked_too() {
        let secret = "AQD+code/with#_";
        let body = "error for code=AQD%2Bcode%2Fwith%23_ and code=aqd? AQD%2bcode%2fwith%23_";
        let shown = snippet(body.as_bytes(), &[secret]);
        assert_eq!(shown, "error for code=[redacted] and code=aqd? [redacted]");
    }
}

//! `signed_request`: the payload Meta posts to the deauthorize and data-deletion callbacks,
//! and the response the data-deletion callback must give.
//!
//! The value is `base64url(HMAC-SHA256(app secret, payload segment)) "." base64url(JSON)`.
//! Verification is strict about structure and lenient only where Meta is known to vary:
//! padding `=` is accepted and `algorithm` is compared case-insensitively.

use crate::flow::random_token;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use igdisplay_model::{AppSecret, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest `signed_request` accepted, in bytes.
pub const MAX_SIGNED_REQUEST_LEN: usize = 8 * 1024;

/// Why a `signed_request` was refused. Tampering and a wrong secret give the same error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedRequestError {
    /// Longer than [`MAX_SIGNED_REQUEST_LEN`].
    #[error("the signed request is longer than {MAX_SIGNED_REQUEST_LEN} bytes")]
    TooLarge,
    /// Not two non-empty base64url segments, or the signature is not 32 bytes.
    #[error("the signed request is malformed: {0}")]
    Malformed(&'static str),
    /// The signature does not match the payload under this app's secret.
    #[error("the signed request's signature is invalid")]
    InvalidSignature,
    /// The payload is not the expected JSON object.
    #[error("the signed request's payload is not valid: {0}")]
    InvalidPayload(String),
    /// `algorithm` is missing, not a string, or not HMAC-SHA256.
    #[error("the signed request does not use HMAC-SHA256")]
    UnsupportedAlgorithm,
    /// `issued_at` is older than the allowed age (or too far in the future).
    #[error("the signed request is stale")]
    Stale,
}

/// The verified payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SignedRequest {
    /// The app-scoped id of the user who removed the app or asked for deletion.
    pub user_id: UserId,
    /// Always `HMAC-SHA256` (in some case).
    pub algorithm: String,
    /// When Meta issued it, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    /// Facebook's data-deletion variant: when it expires, in Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// Any other keys.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Verifies `value` (the `signed_request` form field) with the app secret.
///
/// # Errors
///
/// [`SignedRequestError`]; never panics, whatever the input.
pub fn verify_signed_request(secret: &AppSecret, value: &str) -> Result<SignedRequest, SignedRequestError> {
    let value = value.trim();
    if value.len() > MAX_SIGNED_REQUEST_LEN {
        return Err(SignedRequestError::TooLarge);
    }
    let mut segments = value.split('.');
    let (Some(signature), Some(payload), None) = (segments.next(), segments.next(), segments.next()) else {
        return Err(SignedRequestError::Malformed("expected exactly two segments"));
    };
    if payload.trim_end_matches('=').is_empty() {
        return Err(SignedRequestError::Malformed("a segment is empty"));
    }
    let signature = decode_segment(signature)?;
    if signature.len() != 32 {
        return Err(SignedRequestError::Malformed("the signature is not 32 bytes"));
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| SignedRequestError::InvalidSignature)?;
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| SignedRequestError::InvalidSignature)?;
    let json = decode_segment(payload)?;
    let raw: Value =
        serde_json::from_slice(&json).map_err(|e| SignedRequestError::InvalidPayload(e.to_string()))?;
    match raw.get("algorithm").and_then(Value::as_str) {
        Some(algorithm) if algorithm.eq_ignore_ascii_case("HMAC-SHA256") => {}
        _ => return Err(SignedRequestError::UnsupportedAlgorithm),
    }
    serde_json::from_value(raw).map_err(|e| SignedRequestError::InvalidPayload(e.to_string()))
}

/// As [`verify_signed_request`], and also refuses a payload issued more than `max_age`
/// before `now` (or more than `max_age` after it). A payload without `issued_at` is stale.
///
/// # Errors
///
/// [`SignedRequestError`], including [`SignedRequestError::Stale`].
pub fn verify_fresh_signed_request(
    secret: &AppSecret,
    value: &str,
    now: SystemTime,
    max_age: Duration,
) -> Result<SignedRequest, SignedRequestError> {
    let request = verify_signed_request(secret, value)?;
    let issued = request
        .issued_at
        .and_then(|at| u64::try_from(at).ok())
        .map(|at| UNIX_EPOCH + Duration::from_secs(at))
        .ok_or(SignedRequestError::Stale)?;
    let skew = match now.duration_since(issued) {
        Ok(age) => age,
        Err(ahead) => ahead.duration(),
    };
    if skew > max_age {
        return Err(SignedRequestError::Stale);
    }
    Ok(request)
}

/// Signs the JSON text `payload` with `secret` the way Meta does: for tests of your own
/// callback handlers.
pub fn sign_signed_request(secret: &AppSecret, payload: &str) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = engine.encode(payload);
    let signature = match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mut mac) => {
            mac.update(payload.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    format!("{}.{payload}", engine.encode(signature))
}

fn decode_segment(segment: &str) -> Result<Vec<u8>, SignedRequestError> {
    let trimmed = segment.trim_end_matches('=');
    if trimmed.is_empty() {
        return Err(SignedRequestError::Malformed("a segment is empty"));
    }
    if segment.len() - trimmed.len() > 2 {
        return Err(SignedRequestError::Malformed("too much padding"));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|_| SignedRequestError::Malformed("a segment is not base64url"))
}

/// The JSON a data-deletion callback answers with: where the user can check the status, and
/// a code to quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DataDeletionResponse {
    /// An https page showing the deletion's status to a person.
    pub url: String,
    /// An alphanumeric code identifying the request.
    pub confirmation_code: String,
}

impl DataDeletionResponse {
    /// A response with a fresh random confirmation code, whose status page is
    /// `{status_base}?code={confirmation_code}` (or `&code=` when the base has a query).
    ///
    /// # Errors
    ///
    /// [`RandomnessError`](crate::RandomnessError) when the OS random generator fails.
    pub fn new(status_base: &str) -> Result<Self, crate::RandomnessError> {
        let code: String = random_token(12)?
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        Ok(Self::with_code(status_base, code))
    }

    /// A response with a code of your own (alphanumeric characters are kept, others dropped).
    pub fn with_code(status_base: &str, confirmation_code: impl Into<String>) -> Self {
        let code: String = confirmation_code
            .into()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let separator = if status_base.contains('?') { '&' } else { '?' };
        Self {
            url: format!("{status_base}{separator}code={code}"),
            confirmation_code: code,
        }
    }

    /// The JSON body, `{"url":"...","confirmation_code":"..."}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "url": self.url, "confirmation_code": self.confirmation_code }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's vector (A.16): secret `key`.
    const VECTOR: &str = "Mf_s6nTb38UYqioBmPqu0Ewm9souPZB9I2fIGwV729U.\
                          eyJ1c2VyX2lkIjoiMCIsImFsZ29yaXRobSI6IkhNQUMtU0hBMjU2IiwiaXNzdWVkX2F0IjoxNjI0MjQ0MTU2fQ";

    fn key() -> AppSecret {
        AppSecret::new("key")
    }

    #[test]
    fn the_reference_vector_verifies() {
        let request = verify_signed_request(&key(), VECTOR).unwrap();
        assert_eq!(request.user_id.as_str(), "0");
        assert_eq!(request.algorithm, "HMAC-SHA256");
        assert_eq!(request.issued_at, Some(1_624_244_156));
        // Stray padding on the signature is tolerated; the payload is signed as sent.
        let padded = VECTOR.replacen('.', "=.", 1);
        assert!(verify_signed_request(&key(), &padded).is_ok());
        assert_eq!(
            sign_signed_request(
                &key(),
                r#"{"user_id":"0","algorithm":"HMAC-SHA256","issued_at":1624244156}"#
            ),
            VECTOR
        );
    }

    #[test]
    fn any_single_bit_flip_or_a_wrong_secret_is_an_invalid_signature() {
        let bytes = VECTOR.as_bytes();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut flipped = bytes.to_vec();
                flipped[i] ^= 1 << bit;
                let Ok(text) = std::str::from_utf8(&flipped) else {
                    continue;
                };
                // Some flips only change unused low bits of the last base64 character.
                if let Ok(request) = verify_signed_request(&key(), text) {
                    assert_eq!(
                        request.user_id.as_str(),
                        "0",
                        "flip at {i}:{bit} changed the payload"
                    );
                }
            }
        }
        assert_eq!(
            verify_signed_request(&AppSecret::new("other"), VECTOR).unwrap_err(),
            SignedRequestError::InvalidSignature
        );
        let tampered = VECTOR.replace("eyJ1c2VyX2lkIjoiMCIs", "eyJ1c2VyX2lkIjoiMSIs");
        assert_eq!(
            verify_signed_request(&key(), &tampered).unwrap_err(),
            SignedRequestError::InvalidSignature
        );
    }

    #[test]
    fn algorithm_must_be_hmac_sha256_in_any_case() {
        let sign = |payload: Value| sign_signed_request(&key(), &payload.to_string());
        for bad in [
            serde_json::json!({"user_id":"1","algorithm":"HS256"}),
            serde_json::json!({"user_id":"1","algorithm":"none"}),
            serde_json::json!({"user_id":"1"}),
            serde_json::json!({"user_id":"1","algorithm":256}),
        ] {
            assert_eq!(
                verify_signed_request(&key(), &sign(bad)).unwrap_err(),
                SignedRequestError::UnsupportedAlgorithm
            );
        }
        let lower = sign(serde_json::json!({"user_id":"1","algorithm":"hmac-sha256","extra":true}));
        let request = verify_signed_request(&key(), &lower).unwrap();
        assert_eq!(request.extra["extra"], true);
        let not_object = sign(serde_json::json!(["user_id"]));
        assert_eq!(
            verify_signed_request(&key(), &not_object).unwrap_err(),
            SignedRequestError::UnsupportedAlgorithm
        );
        let no_user = sign(serde_json::json!({"algorithm":"HMAC-SHA256"}));
        assert!(matches!(
            verify_signed_request(&key(), &no_user),
            Err(SignedRequestError::InvalidPayload(_))
        ));
    }

    #[test]
    fn broken_structure_is_refused_without_panicking() {
        let (sig, payload) = VECTOR.split_once('.').unwrap();
        let cases = [
            String::new(),
            sig.to_owned(),
            format!("{VECTOR}.extra"),
            format!(".{payload}"),
            format!("{sig}."),
            format!("{sig}!.{payload}"),
            format!("{sig}===.{payload}"),
            format!("{}.{payload}", &sig[..20]),
            "é.é".to_owned(),
            "...".to_owned(),
        ];
        for case in &cases {
            assert!(
                matches!(
                    verify_signed_request(&key(), case),
                    Err(SignedRequestError::Malformed(_))
                ),
                "{case:?}"
            );
        }
        let huge = format!("{sig}.{}", "A".repeat(MAX_SIGNED_REQUEST_LEN));
        assert_eq!(
            verify_signed_request(&key(), &huge).unwrap_err(),
            SignedRequestError::TooLarge
        );
        let not_json = format!(
            "{sig}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("nope")
        );
        assert!(verify_signed_request(&key(), &not_json).is_err());
    }

    #[test]
    fn freshness_uses_the_injected_time() {
        let issued = UNIX_EPOCH + Duration::from_secs(1_624_244_156);
        let hour = Duration::from_secs(3600);
        assert!(verify_fresh_signed_request(&key(), VECTOR, issued + hour, hour).is_ok());
        assert_eq!(
            verify_fresh_signed_request(&key(), VECTOR, issued + hour * 2, hour).unwrap_err(),
            SignedRequestError::Stale
        );
        assert_eq!(
            verify_fresh_signed_request(&key(), VECTOR, issued - hour * 2, hour).unwrap_err(),
            SignedRequestError::Stale
        );
    }

    #[test]
    fn data_deletion_response_is_the_documented_json() {
        let response = DataDeletionResponse::with_code("https://app.example/deletion", "abc-123");
        assert_eq!(
            response.to_json(),
            r#"{"confirmation_code":"abc123","url":"https://app.example/deletion?code=abc123"}"#
        );
        let fresh = DataDeletionResponse::new("https://app.example/status?lang=en").unwrap();
        assert!(fresh.confirmation_code.len() >= 10);
        assert!(fresh.confirmation_code.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(fresh.url.starts_with("https://app.example/status?lang=en&code="));
    }
}

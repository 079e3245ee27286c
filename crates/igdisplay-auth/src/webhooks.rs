//! Receiving Meta's webhooks (reference C.5), safely: the verification handshake, the
//! signature over the raw body, and storage before acknowledgement.
//!
//! [`WebhookReceiver::inspect`] reads one request with no I/O and no web framework (method,
//! query, headers, raw body in; what to answer, or a verified delivery, out), so any framework
//! can call it. [`WebhookReceiver::receive`] adds the one rule that keeps events: a delivery
//! is handed to a [`WebhookSink`] (a database, a queue, a callback) and acknowledged with 200
//! only once the sink has kept it; otherwise Meta gets a 500 and delivers it again, since it
//! keeps no copy. [`WebhookReceiver::handle`] is the same for an `http::Request<Bytes>`, as
//! hyper and axum hand them over.
//!
//! - The handshake (`GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...`) is
//!   answered with the challenge, as `text/plain`, only when the verify token matches
//!   (compared in constant time) and the challenge is digits, as Meta sends it: an echoed
//!   challenge has been a cross-site-scripting hole elsewhere. Anything else is 403.
//! - A delivery must carry `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw
//!   body under the app secret (or, during a rotation, the previous one); the body is read
//!   only after it matches.

use crate::flow::hex;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use igdisplay_model::{AppSecret, WebhookNotification};
use sha2::{Digest, Sha256};
use std::future::Future;
use subtle::ConstantTimeEq;

/// The largest delivery read, in bytes (Meta batches at most 1,000 changes; 4 MiB is ample).
pub const MAX_WEBHOOK_BODY: usize = 4 << 20;

/// The signature header.
pub const HUB_SIGNATURE_HEADER: &str = "x-hub-signature-256";

/// The longest challenge answered (Meta's are a few digits).
const MAX_CHALLENGE: usize = 64;

/// What to answer now: a handshake, or a refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookAnswer {
    /// The status.
    pub status: u16,
    /// The body, `text/plain`: the challenge, or a short reason.
    pub body: String,
}

impl WebhookAnswer {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }

    /// The answer as an HTTP response: `text/plain`, never cached.
    pub fn to_http(&self) -> http::Response<Bytes> {
        let mut response = http::Response::new(Bytes::from(self.body.clone()));
        *response.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        headers.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            http::HeaderValue::from_static("nosniff"),
        );
        response
    }
}

/// A delivery whose signature matched: its notification, typed, the raw body as received, and
/// the SHA-256 of that body (the same delivery sent twice has the same hash: a sink
/// deduplicates on it).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct VerifiedDelivery {
    /// The notification.
    pub notification: WebhookNotification,
    /// The body as Meta sent it.
    pub body: Bytes,
    /// SHA-256 of the body, lower-case hex.
    pub hash: String,
}

/// What [`WebhookReceiver::inspect`] found.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Inbound {
    /// Answer this, now: a handshake, or a refusal.
    Answer(WebhookAnswer),
    /// Keep this, then answer 200.
    Deliver(VerifiedDelivery),
}

/// Where verified deliveries are kept before they are acknowledged: a database, a queue, a
/// callback ([`FnSink`]).
#[async_trait::async_trait]
pub trait WebhookSink: Send + Sync {
    /// Keeps `delivery` (a second call with the same hash should keep nothing new).
    ///
    /// # Errors
    ///
    /// When it could not be kept: the receiver answers 500 and Meta delivers it again.
    async fn keep(&self, delivery: &VerifiedDelivery) -> Result<(), igdisplay_http::BoxError>;
}

/// A sink that hands each delivery to a closure: for an application without a store. The
/// delivery is acknowledged only when the closure's future succeeds.
pub struct FnSink<F>(pub F);

impl<F> std::fmt::Debug for FnSink<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnSink")
    }
}

#[async_trait::async_trait]
impl<F, Fut> WebhookSink for FnSink<F>
where
    F: Fn(VerifiedDelivery) -> Fut + Send + Sync,
    Fut: Future<Output = Result<(), igdisplay_http::BoxError>> + Send,
{
    async fn keep(&self, delivery: &VerifiedDelivery) -> Result<(), igdisplay_http::BoxError> {
        (self.0)(delivery.clone()).await
    }
}

/// Why a receiver could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookSetupError {
    /// The verify token is empty.
    #[error("the webhook verify token is empty")]
    EmptyVerifyToken,
    /// An app secret is empty.
    #[error("an app secret is empty")]
    EmptySecret,
}

/// Verifies and reads Meta's webhook requests. Never shows its verify token or secrets.
#[derive(Clone)]
pub struct WebhookReceiver {
    verify_token: String,
    secrets: Vec<AppSecret>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// A receiver for the app whose secret is `app_secret`, answering the handshake for
    /// `verify_token` (the one set in the App Dashboard).
    ///
    /// ```
    /// use igdisplay_auth::webhooks::{Inbound, WebhookReceiver, sign_webhook};
    /// use igdisplay_model::AppSecret;
    ///
    /// let receiver = WebhookReceiver::new("verify-me", AppSecret::new("app-secret"))?;
    /// let get = http::Method::GET;
    /// let handshake = receiver.inspect(&get, Some("hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"), &http::HeaderMap::new(), b"");
    /// assert!(matches!(handshake, Inbound::Answer(a) if a.status == 200 && a.body == "1158201444"));
    ///
    /// let body = br#"{"object":"instagram","entry":[{"id":"1784","time":1,"changes":[{"field":"mentions","value":{"media_id":"1"}}]}]}"#;
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-hub-signature-256", sign_webhook(&AppSecret::new("app-secret"), body).parse()?);
    /// let delivery = receiver.inspect(&http::Method::POST, None, &headers, body);
    /// assert!(matches!(delivery, Inbound::Deliver(d) if d.notification.entry.len() == 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`WebhookSetupError`] for an empty verify token or secret.
    pub fn new(verify_token: impl Into<String>, app_secret: AppSecret) -> Result<Self, WebhookSetupError> {
        let verify_token = verify_token.into();
        if verify_token.is_empty() {
            return Err(WebhookSetupError::EmptyVerifyToken);
        }
        if app_secret.expose_secret().is_empty() {
            return Err(WebhookSetupError::EmptySecret);
        }
        Ok(Self {
            verify_token,
            secrets: vec![app_secret],
        })
    }

    /// Also accepts deliveries signed with `previous`, while the app secret is rotated.
    ///
    /// # Errors
    ///
    /// [`WebhookSetupError::EmptySecret`].
    pub fn with_previous_secret(mut self, previous: AppSecret) -> Result<Self, WebhookSetupError> {
        if previous.expose_secret().is_empty() {
            return Err(WebhookSetupError::EmptySecret);
        }
        self.secrets.push(previous);
        Ok(self)
    }

    /// Reads one request, without I/O: the handshake's answer, a refusal, or a verified
    /// delivery to keep.
    pub fn inspect(
        &self,
        method: &http::Method,
        query: Option<&str>,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Inbound {
        match *method {
            http::Method::GET => Inbound::Answer(self.handshake(query.unwrap_or_default())),
            http::Method::POST => match self.verify(headers, body) {
                Ok(delivery) => Inbound::Deliver(delivery),
                Err(answer) => Inbound::Answer(answer),
            },
            _ => Inbound::Answer(WebhookAnswer::new(405, "use GET or POST")),
        }
    }

    /// [`inspect`](Self::inspect), then a delivery kept by `sink` before it is acknowledged:
    /// 200 once kept, 500 (Meta delivers again) when the sink failed.
    pub async fn receive(
        &self,
        method: &http::Method,
        query: Option<&str>,
        headers: &http::HeaderMap,
        body: &[u8],
        sink: &dyn WebhookSink,
    ) -> WebhookAnswer {
        match self.inspect(method, query, headers, body) {
            Inbound::Answer(answer) => answer,
            Inbound::Deliver(delivery) => match sink.keep(&delivery).await {
                Ok(()) => WebhookAnswer::new(200, "ok"),
                Err(error) => {
                    tracing::warn!(%error, hash = %delivery.hash, "a webhook delivery could not be kept; Meta will deliver it again");
                    WebhookAnswer::new(500, "not kept; deliver again")
                }
            },
        }
    }

    /// [`receive`](Self::receive) for an `http::Request<Bytes>` (collect the body first; at
    /// most [`MAX_WEBHOOK_BODY`] bytes are read).
    pub async fn handle(
        &self,
        request: &http::Request<Bytes>,
        sink: &dyn WebhookSink,
    ) -> http::Response<Bytes> {
        self.receive(
            request.method(),
            request.uri().query(),
            request.headers(),
            request.body(),
            sink,
        )
        .await
        .to_http()
    }

    /// The handshake: the challenge back, only for the right verify token and a challenge
    /// of digits.
    fn handshake(&self, query: &str) -> WebhookAnswer {
        let (mut mode, mut token, mut challenge) = (None, None, None);
        for (name, value) in url_pairs(query) {
            match name.as_str() {
                "hub.mode" => mode = Some(value),
                "hub.verify_token" => token = Some(value),
                "hub.challenge" => challenge = Some(value),
                _ => {}
            }
        }
        let token_matches =
            token.is_some_and(|t| bool::from(t.as_bytes().ct_eq(self.verify_token.as_bytes())));
        let digits = challenge
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= MAX_CHALLENGE && c.bytes().all(|b| b.is_ascii_digit()));
        match (mode.as_deref(), token_matches, digits) {
            (Some("subscribe"), true, Some(challenge)) => WebhookAnswer::new(200, challenge),
            _ => WebhookAnswer::new(403, "forbidden"),
        }
    }

    /// The delivery, when its signature matches one of the secrets.
    fn verify(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<VerifiedDelivery, WebhookAnswer> {
        if body.len() > MAX_WEBHOOK_BODY {
            return Err(WebhookAnswer::new(413, "too large"));
        }
        let signature = headers
            .get(HUB_SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("sha256="))
            .and_then(unhex)
            .ok_or_else(|| WebhookAnswer::new(401, "missing or malformed signature"))?;
        let signed = self.secrets.iter().any(|secret| {
            HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
                .map(|mac| mac.chain_update(body).verify_slice(&signature).is_ok())
                .unwrap_or(false)
        });
        if !signed {
            return Err(WebhookAnswer::new(401, "signature mismatch"));
        }
        let notification: WebhookNotification = igdisplay_model::decode(body, &[])
            .map_err(|_| WebhookAnswer::new(400, "not a webhook notification"))?;
        Ok(VerifiedDelivery {
            notification,
            body: Bytes::copy_from_slice(body),
            hash: hex(&Sha256::digest(body)),
        })
    }
}

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex>` of `body` under `secret`: the `X-Hub-Signature-256` Meta sends (for tests,
/// and for a mock that plays Meta).
pub fn sign_webhook(secret: &AppSecret, body: &[u8]) -> String {
    let mac = HmacSha256::new_from_slice(secret.expose_secret().as_bytes())
        .map(|mac| mac.chain_update(body).finalize().into_bytes());
    match mac {
        Ok(bytes) => format!("sha256={}", hex(&bytes)),
        // HMAC takes keys of any length: this does not happen.
        Err(_) => String::from("sha256="),
    }
}

/// Hex to bytes; `None` unless every pair is hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

/// The decoded value of the field `name` of a URL-encoded form or query (the first, if it is
/// there twice): how a callback's `signed_request` is read from Meta's form body.
///
/// ```
/// let form = "signed_request=c2ln.eyJ1c2VyX2lkIjoiMSJ9%3D&other=1";
/// let value = igdisplay_auth::webhooks::form_field(form, "signed_request");
/// assert_eq!(value.as_deref(), Some("c2ln.eyJ1c2VyX2lkIjoiMSJ9="));
/// assert_eq!(igdisplay_auth::webhooks::form_field(form, "missing"), None);
/// ```
pub fn form_field(form: &str, name: &str) -> Option<String> {
    url_pairs(form)
        .find(|(field, _)| field == name)
        .map(|(_, value)| value)
}

/// The decoded name-value pairs of a query.
fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |text: &str| {
            let spaced = text.replace('+', " ");
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(name), decode(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const BODY: &[u8] = br#"{"object":"instagram","entry":[{"id":"17841400000000001","time":1768478400,"changes":[{"field":"comments","value":{"id":"18000000000000001","text":"hi"}},{"field":"brand_new","value":{"x":1}}]}]}"#;

    fn receiver() -> WebhookReceiver {
        WebhookReceiver::new("the-verify-token", AppSecret::new("current-secret")).unwrap()
    }

    fn signed(secret: &str, body: &[u8]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            HUB_SIGNATURE_HEADER,
            sign_webhook(&AppSecret::new(secret), body).parse().unwrap(),
        );
        headers
    }

    fn answer(inbound: Inbound) -> WebhookAnswer {
        match inbound {
            Inbound::Answer(answer) => answer,
            Inbound::Deliver(delivery) => panic!("delivered: {delivery:?}"),
        }
    }

    #[test]
    fn the_handshake_answers_digits_for_the_right_token_and_403_otherwise() {
        let get = http::Method::GET;
        let none = http::HeaderMap::new();
        let ask = |query: &str| answer(receiver().inspect(&get, Some(query), &none, b""));
        let ok = ask("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=the-verify-token");
        assert_eq!((ok.status, ok.body.as_str()), (200, "1158201444"));
        assert_eq!(
            ok.to_http().headers()["content-type"],
            "text/plain; charset=utf-8"
        );
        for refused in [
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=wrong",
            "hub.mode=subscribe&hub.challenge=1158201444",
            "hub.mode=subscribe&hub.challenge=%3Cscript%3Ealert(1)%3C%2Fscript%3E&hub.verify_token=the-verify-token",
            "hub.mode=subscribe&hub.challenge=&hub.verify_token=the-verify-token",
            "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=the-verify-token",
            "",
        ] {
            let refused = ask(refused);
            assert_eq!(refused.status, 403);
            assert!(!refused.body.contains("script"), "nothing echoed");
        }
    }

    #[test]
    fn a_delivery_is_read_only_under_a_matching_signature_of_its_exact_body() {
        let post = http::Method::POST;
        let delivered = receiver().inspect(&post, None, &signed("current-secret", BODY), BODY);
        let Inbound::Deliver(delivery) = delivered else {
            panic!("{delivered:?}")
        };
        assert_eq!(
            delivery.notification.entry[0].changes.len(),
            2,
            "an unknown field kept"
        );
        assert_eq!(delivery.hash.len(), 64);
        let mut altered = BODY.to_vec();
        altered[40] ^= 1;
        let tampered = answer(receiver().inspect(&post, None, &signed("current-secret", BODY), &altered));
        assert_eq!(tampered.status, 401, "one byte changed");
        assert_eq!(
            answer(receiver().inspect(&post, None, &signed("other", BODY), BODY)).status,
            401
        );
        assert_eq!(
            answer(receiver().inspect(&post, None, &http::HeaderMap::new(), BODY)).status,
            401
        );
        let mut garbage = http::HeaderMap::new();
        garbage.insert(HUB_SIGNATURE_HEADER, "sha256=zz".parse().unwrap());
        assert_eq!(
            answer(receiver().inspect(&post, None, &garbage, BODY)).status,
            401
        );
        // During a rotation, the previous secret is accepted too.
        let rotating = receiver()
            .with_previous_secret(AppSecret::new("old-secret"))
            .unwrap();
        assert!(matches!(
            rotating.inspect(&post, None, &signed("old-secret", BODY), BODY),
            Inbound::Deliver(_)
        ));
        let not_json = b"not json";
        assert_eq!(
            answer(receiver().inspect(&post, None, &signed("current-secret", not_json), not_json)).status,
            400
        );
        assert_eq!(
            answer(receiver().inspect(&http::Method::PUT, None, &http::HeaderMap::new(), b"")).status,
            405
        );
        let shown = format!("{:?}", receiver());
        assert!(
            !shown.contains("current-secret") && !shown.contains("the-verify-token"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_delivery_is_acknowledged_only_once_its_sink_kept_it() {
        let kept = std::sync::Arc::new(Mutex::new(Vec::new()));
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sink = FnSink({
            let (kept, up) = (kept.clone(), up.clone());
            move |delivery: VerifiedDelivery| {
                let (kept, up) = (kept.clone(), up.clone());
                async move {
                    if !up.load(std::sync::atomic::Ordering::SeqCst) {
                        return Err("the database is down".into());
                    }
                    kept.lock().unwrap().push(delivery.hash);
                    Ok(())
                }
            }
        });
        let post = http::Method::POST;
        let headers = signed("current-secret", BODY);
        let down = receiver().receive(&post, None, &headers, BODY, &sink).await;
        assert_eq!(down.status, 500, "not kept: Meta must deliver it again");
        up.store(true, std::sync::atomic::Ordering::SeqCst);
        let request = {
            let mut request = http::Request::new(Bytes::from_static(BODY));
            *request.method_mut() = post;
            *request.headers_mut() = headers;
            request
        };
        assert_eq!(receiver().handle(&request, &sink).await.status(), 200);
        assert_eq!(kept.lock().unwrap().len(), 1, "kept once it could be");
    }
}

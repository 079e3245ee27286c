//! [`WebhookSender`]: posts each [`Event`] to the application's endpoint, signed with
//! HMAC-SHA256, retried with backoff; [`verify_webhook`] checks one on the receiving side.
//!
//! A delivery is a `POST` of the event's JSON with three headers:
//! - `igdisplay-signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`: the HMAC-SHA256 of
//!   `<t>.<body>` under each secret the sender holds (two during a rotation, so a receiver that
//!   knows either accepts it); the timestamp lets a receiver refuse replays;
//! - `igdisplay-event: <type>`;
//! - `igdisplay-delivery: <random id>`: the same on every retry of one event, for deduplication.

use crate::events::{Event, Events};
use hmac::{KeyInit as _, Mac as _};
use igdisplay_http::http::{self, Method, StatusCode};
use igdisplay_http::{
    Jitter, Outcome, RequestKind, Retry, RetryPolicy, ServerVerdict, SharedBackend, SharedClock, classify,
};
use std::time::{Duration, SystemTime};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "igdisplay-signature";
/// The event type header.
pub const EVENT_HEADER: &str = "igdisplay-event";
/// The delivery id header (the same on every retry of one event).
pub const DELIVERY_HEADER: &str = "igdisplay-delivery";

/// Why a webhook was not delivered, or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The sender holds no secret, or one is empty.
    #[error("a webhook needs at least one non-empty secret")]
    NoSecret,
    /// The endpoint is not a valid absolute URL.
    #[error("the webhook endpoint is not a valid URL")]
    InvalidEndpoint,
    /// The endpoint refused the delivery (a final status), or kept failing until the retries
    /// ran out.
    #[error("the webhook endpoint did not accept the event after {attempts} attempts (last: {last})")]
    NotDelivered {
        /// Attempts made.
        attempts: u32,
        /// The last status, or the transport failure.
        last: String,
    },
    /// No random bytes for the delivery id.
    #[error("no random bytes could be drawn for the delivery id")]
    Random,
    /// (Receiving) the signature header is missing or malformed.
    #[error("the webhook signature header is missing or malformed")]
    Malformed,
    /// (Receiving) the timestamp is outside the tolerance: a replay, or a clock far off.
    #[error("the webhook timestamp is outside the tolerance")]
    Stale,
    /// (Receiving) no signature matches any secret.
    #[error("the webhook signature does not match")]
    BadSignature,
}

/// Posts events to one endpoint. Cheap to clone.
///
/// ```
/// use igdisplay_http::{Clock as _, ManualClock};
/// use igdisplay_http::test_util::{ReplayBackend, json_response};
/// use igdisplay_model::{Timestamp, UserId};
/// use igdisplay_store::{Event, WebhookSender, verify_webhook};
/// use std::{sync::Arc, time::Duration};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let backend = ReplayBackend::new([Ok(json_response(200, "{}"))]);
/// let clock = ManualClock::at_unix(1_800_000_000);
/// let webhook = WebhookSender::new("https://app.example/hooks/igdisplay", ["whsec-new", "whsec-old"],
///     Arc::new(backend.clone()))?.with_clock(Arc::new(clock.clone()));
/// let event = Event::Revoked { user_id: UserId::new("1784"), at: Timestamp::from_unix(1_800_000_000) };
/// webhook.deliver(&event).await?;
///
/// // The receiving side, which knows either secret:
/// let sent = &backend.requests()[0];
/// let signature = sent.headers()["igdisplay-signature"].to_str()?;
/// verify_webhook(&["whsec-old"], signature, sent.body(), clock.now(), Duration::from_secs(300))?;
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WebhookSender {
    endpoint: http::Uri,
    secrets: Vec<Vec<u8>>,
    backend: SharedBackend,
    clock: SharedClock,
    retry: RetryPolicy,
    jitter: std::sync::Arc<Jitter>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("endpoint", &igdisplay_http::redact_http_uri(&self.endpoint))
            .field("secrets", &self.secrets.len())
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// A sender to `endpoint`, signing with each of `secrets` (the current one, and the
    /// previous one while receivers move over; at least one), through `backend`. Retries up to
    /// 6 attempts over about a minute by default.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidEndpoint`] or [`WebhookError::NoSecret`].
    pub fn new<S: AsRef<[u8]>>(
        endpoint: &str,
        secrets: impl IntoIterator<Item = S>,
        backend: SharedBackend,
    ) -> Result<Self, WebhookError> {
        let endpoint: http::Uri = endpoint.parse().map_err(|_| WebhookError::InvalidEndpoint)?;
        if endpoint.scheme().is_none() || endpoint.authority().is_none() {
            return Err(WebhookError::InvalidEndpoint);
        }
        let secrets: Vec<Vec<u8>> = secrets.into_iter().map(|s| s.as_ref().to_vec()).collect();
        if secrets.is_empty() || secrets.iter().any(Vec::is_empty) {
            return Err(WebhookError::NoSecret);
        }
        Ok(Self {
            endpoint,
            secrets,
            backend,
            clock: std::sync::Arc::new(igdisplay_http::SystemClock),
            retry: RetryPolicy::default()
                .max_attempts(6)
                .base_delay(Duration::from_secs(1))
                .max_delay(Duration::from_secs(30))
                .max_elapsed(Duration::from_secs(120)),
            jitter: std::sync::Arc::new(Jitter::random()),
        })
    }

    /// Reads the time from `clock` (the signature's timestamp, the backoff's waits).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Posts `event`, retrying what [`igdisplay_http::classify`] allows (a connection
    /// failure, a timeout, a 5xx, a 429) with backoff and jitter.
    ///
    /// # Errors
    ///
    /// [`WebhookError::NotDelivered`] or [`WebhookError::Random`].
    pub async fn deliver(&self, event: &Event) -> Result<(), WebhookError> {
        let body = serde_json::to_vec(event).map_err(|_| WebhookError::Malformed)?;
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|_| WebhookError::Random)?;
        let delivery: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let started = self.clock.now();
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            let timestamp = igdisplay_model::Timestamp::from_system_time(self.clock.now()).unix();
            let request = http::Request::builder()
                .method(Method::POST)
                .uri(self.endpoint.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, self.signature(timestamp, &body))
                .header(EVENT_HEADER, event.kind())
                .header(DELIVERY_HEADER, &delivery)
                .body(igdisplay_http::bytes::Bytes::from(body.clone()))
                .map_err(|_| WebhookError::InvalidEndpoint)?;
            let (outcome, last) = match self.backend.send(request).await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => (
                    Outcome::Refused(verdict(response.status())),
                    response.status().to_string(),
                ),
                Err(error) => (Outcome::Transport(error.kind()), error.to_string()),
            };
            let delay = self.retry.backoff(attempt, &self.jitter);
            let elapsed = self.clock.now().duration_since(started).unwrap_or_default();
            let retry = classify(RequestKind::Idempotent, outcome) != Retry::Stop;
            if !retry || !self.retry.allows(attempt, elapsed, delay) {
                return Err(WebhookError::NotDelivered {
                    attempts: attempt,
                    last,
                });
            }
            self.clock.sleep(delay).await;
        }
    }

    /// Delivers every event sent to `events` from now on, one after another, until the
    /// channel closes; a failed delivery is logged (the event is not lost to the receivers of
    /// the channel, only to the endpoint). Returns the task.
    pub fn spawn(self, events: &Events) -> tokio::task::JoinHandle<()> {
        let mut receiver = events.subscribe();
        tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        if let Err(error) = self.deliver(&event).await {
                            tracing::warn!(%error, kind = event.kind(), "a webhook was not delivered");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "the webhook sender fell behind; events were skipped");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }

    /// `t=<timestamp>,v1=<hex>` with one `v1` per secret.
    fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        let mut header = format!("t={timestamp}");
        for secret in &self.secrets {
            header.push_str(",v1=");
            if let Some(mac) = mac(secret, timestamp, body) {
                header.push_str(&hex(&mac.finalize().into_bytes()));
            }
        }
        header
    }
}

/// What a status means for retrying.
fn verdict(status: StatusCode) -> ServerVerdict {
    if status == StatusCode::TOO_MANY_REQUESTS {
        ServerVerdict::RateLimited
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        ServerVerdict::Transient
    } else {
        ServerVerdict::Final
    }
}

/// The HMAC of `<timestamp>.<body>` under `secret`, ready to finalize or verify; `None` only
/// if the MAC refused the key (HMAC takes keys of any length).
fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 64 hex digits as 32 bytes.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a received webhook: `header` is the `igdisplay-signature` value, `body` the raw
/// body, `secrets` the ones the receiver accepts. The timestamp must be within `tolerance`
/// of `now`. Comparisons take the same time whatever matches.
///
/// # Errors
///
/// [`WebhookError::Malformed`], [`WebhookError::Stale`] or [`WebhookError::BadSignature`].
pub fn verify_webhook<S: AsRef<[u8]>>(
    secrets: &[S],
    header: &str,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), WebhookError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(unhex(value)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::Malformed)?;
    if signatures.is_empty() {
        return Err(WebhookError::Malformed);
    }
    let now = igdisplay_model::Timestamp::from_system_time(now).unix();
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(WebhookError::Stale);
    }
    // `verify_slice` compares in constant time.
    let matched = secrets.iter().any(|secret| {
        signatures.iter().any(|signature| {
            mac(secret.as_ref(), timestamp, body).is_some_and(|mac| mac.verify_slice(signature).is_ok())
        })
    });
    if matched {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

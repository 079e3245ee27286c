//! [`WebhookSender`]: delivers the outbox's events to the application's endpoint, signed with
//! HMAC-SHA256; [`verify_webhook`] checks one on the receiving side, [`SeenEvents`] drops the
//! repeats.
//!
//! A delivery is a `POST` of the event's JSON with four headers:
//! - `igdisplay-signature: t=<unix seconds>,v1=<hex>[,v1=<hex>]`: the HMAC-SHA256 of
//!   `<t>.<delivery id>.<event id>.<body>` under each secret the sender holds (two during a
//!   rotation, so a receiver that knows either accepts it). The timestamp lets a receiver
//!   refuse old deliveries; the ids are signed too, so a captured delivery cannot be replayed
//!   under another id;
//! - `igdisplay-event: <type>`;
//! - `igdisplay-event-id: <id>`: the event's id in the outbox, the same on every delivery of
//!   one event: what a receiver deduplicates on;
//! - `igdisplay-delivery: <random id>`: new for every attempt, for the logs of both sides.
//!
//! Delivery is **at least once**, in order per account: any instance delivers under a
//! delivery lease; a failed delivery is tried again with backoff for 3 days, then the event is
//! `dead` (kept, listed by `igdisplay events --state dead`, sent again by `igdisplay events
//! resend ID`). An instance that dies mid-delivery leaves its lease to run out, and the event
//! is delivered again by another: a receiver may see an event twice, and keeps the ids it
//! handled ([`SeenEvents`]) to act once.

use crate::error::Error;
use crate::events::OutboxEvent;
use crate::repo::{Accounts, EventRow};
use crate::store::SqlStore;
use futures_util::StreamExt as _;
use hmac::{KeyInit as _, Mac as _};
use igdisplay_http::http::{self, HeaderMap, Method};
use igdisplay_http::{
    Clock as _, Exchange, Failure, HttpRequest, HttpResponse, Jitter, NoGate, RequestKind, Retry,
    RetryBudget, RetryPolicy, SendLoop, SharedBackend, SystemClock,
};
use std::collections::{HashSet, VecDeque};
use std::time::{Duration, SystemTime};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "igdisplay-signature";
/// The event type header.
pub const EVENT_HEADER: &str = "igdisplay-event";
/// The event id header: the same on every delivery of one event.
pub const EVENT_ID_HEADER: &str = "igdisplay-event-id";
/// The delivery id header: new for every attempt.
pub const DELIVERY_HEADER: &str = "igdisplay-delivery";

/// Why a webhook was not accepted, or could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The sender holds no secret, or one is empty.
    #[error("a webhook needs at least one non-empty secret")]
    NoSecret,
    /// The endpoint is not a valid absolute URL.
    #[error("the webhook endpoint is not a valid URL")]
    InvalidEndpoint,
    /// (Receiving) a header is missing or malformed.
    #[error("the webhook's signature, event id or delivery header is missing or malformed")]
    Malformed,
    /// (Receiving) the timestamp is outside the tolerance: a replay, or a clock far off.
    #[error("the webhook timestamp is outside the tolerance")]
    Stale,
    /// (Receiving) no signature matches any secret.
    #[error("the webhook signature does not match")]
    BadSignature,
}

/// What one delivery pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryTally {
    /// Events delivered.
    pub delivered: u64,
    /// Deliveries that failed and will be tried again.
    pub failed: u64,
    /// Events given up (dead).
    pub dead: u64,
}

/// Delivers the outbox's events to one endpoint. Cheap to clone.
///
/// ```
/// use igdisplay_auth::{Platform, TokenKind, TokenRecord, TokenStore};
/// use igdisplay_http::{Clock as _, ManualClock};
/// use igdisplay_http::test_util::{ReplayBackend, json_response};
/// use igdisplay_model::{AccessToken, UserId};
/// use igdisplay_store::{Key, KeyRing, SeenEvents, SqlStore, WebhookSender, verify_webhook};
/// use std::{sync::Arc, time::Duration};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = SqlStore::sqlite(&dir.path().join("accounts.db"), KeyRing::new(Key::generate("k1")?)).await?;
/// // A deletion request writes its event to the outbox.
/// store.delete_account(&UserId::new("1784"), "DEL-1").await?;
///
/// let backend = ReplayBackend::new([Ok(json_response(200, "{}"))]);
/// let webhook = WebhookSender::new("https://app.example/hooks/igdisplay", ["whsec-new", "whsec-old"],
///     Arc::new(backend.clone()))?;
/// let pass = webhook.deliver_pending(&store, "instance-1").await?;
/// assert_eq!(pass.delivered, 1);
///
/// // The receiving side, which knows either secret, acts once per event id:
/// let sent = &backend.requests()[0];
/// let verified = verify_webhook(&["whsec-old"], sent.headers(), sent.body(), std::time::SystemTime::now(),
///     Duration::from_secs(300))?;
/// let mut seen = SeenEvents::new(100_000);
/// assert!(seen.first_time(verified.event_id));
/// assert!(!seen.first_time(verified.event_id), "a repeat is dropped");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct WebhookSender {
    endpoint: http::Uri,
    secrets: Vec<Vec<u8>>,
    backend: SharedBackend,
    retry: RetryPolicy,
    give_up_after: Duration,
    lease: Duration,
    batch: u32,
    concurrency: usize,
    jitter: std::sync::Arc<Jitter>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("endpoint", &igdisplay_http::redact_http_uri(&self.endpoint))
            .field("secrets", &self.secrets.len())
            .field("retry", &self.retry)
            .field("give_up_after", &self.give_up_after)
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    /// A sender to `endpoint`, signing with each of `secrets` (the current one, and the
    /// previous one while receivers move over; at least one), through `backend`. A failed
    /// delivery is tried again after 10 seconds, doubling up to an hour, for 3 days.
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
            retry: RetryPolicy::default()
                .base_delay(Duration::from_secs(10))
                .max_delay(Duration::from_secs(3600)),
            give_up_after: Duration::from_secs(3 * 86_400),
            lease: Duration::from_secs(60),
            batch: 100,
            concurrency: 16,
            jitter: std::sync::Arc::new(Jitter::random()),
        })
    }

    /// Replaces the backoff between attempts of one event (its `max_attempts` and
    /// `max_elapsed` are not used: an event is tried until [`give_up_after`](Self::give_up_after)).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long after it was written an event is given up (default 3 days).
    #[must_use]
    pub fn give_up_after(mut self, after: Duration) -> Self {
        self.give_up_after = after;
        self
    }

    /// Deliveries in flight at once, and events claimed per statement (defaults 16 and 100).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize, batch: u32) -> Self {
        self.concurrency = concurrency.max(1);
        self.batch = batch.max(1);
        self
    }

    /// Seeds the backoff's jitter, for reproducible tests.
    #[must_use]
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = std::sync::Arc::new(Jitter::seeded(seed));
        self
    }

    /// Delivers what is due in `store`'s outbox, under leases held as `owner` (unique per
    /// instance), until nothing deliverable is left: for an application that delivers without
    /// running a [`Keeper`](crate::Keeper) (which does this every cycle).
    ///
    /// # Errors
    ///
    /// [`Error::Database`]. A failed delivery is not an error: it is recorded on the event
    /// and tried again later.
    pub async fn deliver_pending(&self, store: &SqlStore, owner: &str) -> Result<DeliveryTally, Error> {
        self.deliver_from(&store.accounts, owner).await
    }

    /// One pass over the outbox: claims batches of deliverable events (each the oldest
    /// pending one of its account) and posts them, `concurrency` at a time.
    pub(crate) async fn deliver_from(
        &self,
        accounts: &Accounts,
        owner: &str,
    ) -> Result<DeliveryTally, Error> {
        let mut tally = DeliveryTally::default();
        let lease = igdisplay_model::whole_seconds(self.lease);
        // Bounded per pass, so a long backlog never starves the keeper's refreshes.
        for _ in 0..20 {
            let batch = accounts.claim_events(owner, lease, self.batch).await?;
            if batch.is_empty() {
                break;
            }
            let mut outcomes = futures_util::stream::iter(batch)
                .map(|row| self.deliver_one(accounts, owner, row))
                .buffer_unordered(self.concurrency);
            while let Some(outcome) = outcomes.next().await {
                let (counter, name) = match outcome? {
                    Delivery::Delivered => (&mut tally.delivered, "delivered"),
                    Delivery::Failed => (&mut tally.failed, "failed"),
                    Delivery::Dead => (&mut tally.dead, "dead"),
                };
                *counter += 1;
                metrics::counter!("igdisplay_webhook_deliveries_total", "outcome" => name).increment(1);
            }
        }
        Ok(tally)
    }

    async fn deliver_one(&self, accounts: &Accounts, owner: &str, row: EventRow) -> Result<Delivery, Error> {
        let (id, attempts) = (row.id, u32::try_from(row.attempts).unwrap_or(u32::MAX));
        let failure = match OutboxEvent::from_row(row) {
            Ok(event) => match self.post(&event).await {
                Ok(()) => {
                    accounts.event_delivered(id, owner).await?;
                    return Ok(Delivery::Delivered);
                }
                Err(failure) => failure,
            },
            Err(error) => error.to_string(),
        };
        let backoff = self.retry.backoff(attempts.max(1), &self.jitter);
        let dead = accounts
            .event_failed(
                id,
                owner,
                igdisplay_model::whole_seconds(backoff).max(1),
                igdisplay_model::whole_seconds(self.give_up_after),
                &failure,
            )
            .await?;
        if dead {
            tracing::warn!(event = id, %failure, "an event was given up after its delivery window");
            Ok(Delivery::Dead)
        } else {
            tracing::debug!(event = id, %failure, "a delivery failed; it will be tried again");
            Ok(Delivery::Failed)
        }
    }

    /// Posts one event through the one send loop, once: the outbox is its retry, durable
    /// across restarts. The reason it was not accepted otherwise (a status, a transport
    /// failure; never the endpoint's URL).
    async fn post(&self, event: &OutboxEvent) -> Result<(), String> {
        let post = Post {
            sender: self,
            event,
            body: serde_json::to_vec(&event.event)
                .map_err(|e| e.to_string())?
                .into(),
        };
        let (once, no_budget) = (RetryPolicy::none(), RetryBudget::new(0));
        SendLoop::new(&*self.backend, &SystemClock, &once, &self.jitter, &no_budget)
            .send(&NoGate, &post)
            .await
            .map(|_| ())
            .map_err(|Refused(reason)| reason)
    }

    /// `t=<timestamp>,v1=<hex>` with one `v1` per secret.
    fn signature(&self, timestamp: i64, delivery: &str, event_id: i64, body: &[u8]) -> String {
        let mut header = format!("t={timestamp}");
        for secret in &self.secrets {
            header.push_str(",v1=");
            if let Some(mac) = mac(secret, timestamp, delivery, event_id, body) {
                header.push_str(&igdisplay_auth::hex(&mac.finalize().into_bytes()));
            }
        }
        header
    }
}

/// One delivery as the send loop sees it: a new delivery id, timestamp and signature for each
/// attempt; any 2xx accepts it.
struct Post<'a> {
    sender: &'a WebhookSender,
    event: &'a OutboxEvent,
    body: igdisplay_http::bytes::Bytes,
}

/// Why a delivery was not accepted: recorded on the event, which the outbox tries again.
struct Refused(String);

impl Failure for Refused {
    fn transport(source: igdisplay_http::TransportError, _: RequestKind) -> Self {
        Refused(source.to_string())
    }

    /// The loop never retries a delivery: the outbox does, with its own backoff.
    fn retry(&self) -> Retry {
        Retry::Stop
    }
}

impl Exchange<()> for Post<'_> {
    type Output = ();
    type Error = Refused;

    /// A receiver deduplicates on the event id: a delivery may arrive twice.
    fn kind(&self) -> RequestKind {
        RequestKind::Idempotent
    }

    fn render(&self, _: &()) -> Result<HttpRequest, Refused> {
        let delivery = igdisplay_auth::random_hex(16)
            .map_err(|_| Refused("no random bytes for the delivery id".to_owned()))?;
        let timestamp = igdisplay_model::Timestamp::from_system_time(SystemClock.now()).unix();
        let (sender, event) = (self.sender, self.event);
        http::Request::builder()
            .method(Method::POST)
            .uri(sender.endpoint.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                sender.signature(timestamp, &delivery, event.id, &self.body),
            )
            .header(EVENT_HEADER, event.event.kind())
            .header(EVENT_ID_HEADER, event.id.to_string())
            .header(DELIVERY_HEADER, &delivery)
            .body(self.body.clone())
            .map(HttpRequest::from)
            .map_err(|_| Refused("the endpoint does not form a request".to_owned()))
    }

    fn parse(&self, response: &HttpResponse, _: &()) -> Result<(), Refused> {
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Refused(format!("the endpoint answered {}", response.status())))
        }
    }
}

/// How one delivery ended.
enum Delivery {
    Delivered,
    Failed,
    Dead,
}

/// The HMAC of `<timestamp>.<delivery>.<event id>.<body>` under `secret`, ready to finalize
/// or verify; `None` only if the MAC refused the key (HMAC takes keys of any length).
fn mac(secret: &[u8], timestamp: i64, delivery: &str, event_id: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(format!("{timestamp}.{delivery}.{event_id}.").as_bytes());
    mac.update(body);
    Some(mac)
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

/// What a verified webhook says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedWebhook {
    /// The event's id: the same on every delivery of one event; deduplicate on it.
    pub event_id: i64,
    /// This delivery's id.
    pub delivery: String,
}

/// Checks a received webhook: `headers` are the request's, `body` the raw body, `secrets` the
/// ones the receiver accepts. The timestamp must be within `tolerance` of `now`. The
/// signature covers the timestamp, the delivery id, the event id and the body: none can be
/// changed, and a delivery cannot be replayed under another id. Comparisons take the same
/// time whatever matches.
///
/// # Errors
///
/// [`WebhookError::Malformed`], [`WebhookError::Stale`] or [`WebhookError::BadSignature`].
pub fn verify_webhook<S: AsRef<[u8]>>(
    secrets: &[S],
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    tolerance: Duration,
) -> Result<VerifiedWebhook, WebhookError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .ok_or(WebhookError::Malformed)
    };
    let signature = header(SIGNATURE_HEADER)?;
    let event_id: i64 = header(EVENT_ID_HEADER)?
        .trim()
        .parse()
        .map_err(|_| WebhookError::Malformed)?;
    let delivery = header(DELIVERY_HEADER)?.trim();
    if delivery.is_empty() || delivery.len() > 64 || !delivery.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(WebhookError::Malformed);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in signature.split(',') {
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
    let tolerance = igdisplay_model::whole_seconds(tolerance);
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(WebhookError::Stale);
    }
    // `verify_slice` compares in constant time.
    let matched = secrets.iter().any(|secret| {
        signatures.iter().any(|signature| {
            mac(secret.as_ref(), timestamp, delivery, event_id, body)
                .is_some_and(|mac| mac.verify_slice(signature).is_ok())
        })
    });
    if !matched {
        return Err(WebhookError::BadSignature);
    }
    Ok(VerifiedWebhook {
        event_id,
        delivery: delivery.to_owned(),
    })
}

/// The event ids a receiver handled lately, at most `capacity` of them (the oldest forgotten
/// first): delivery is at least once, so a receiver acts on an event only the first time its
/// id is seen. Keep it across requests (behind a mutex), or keep the ids in the receiver's
/// own database for a guarantee that survives its restarts.
#[derive(Clone, Debug)]
pub struct SeenEvents {
    capacity: usize,
    order: VecDeque<i64>,
    seen: HashSet<i64>,
}

impl SeenEvents {
    /// Remembers up to `capacity` ids (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            seen: HashSet::new(),
        }
    }

    /// Whether `event_id` is seen for the first time (and remembers it).
    pub fn first_time(&mut self, event_id: i64) -> bool {
        if !self.seen.insert(event_id) {
            return false;
        }
        self.order.push_back(event_id);
        if self.order.len() > self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn signed(secret: &str, timestamp: i64, delivery: &str, event_id: i64, body: &[u8]) -> HeaderMap {
        let mac = mac(secret.as_bytes(), timestamp, delivery, event_id, body).unwrap();
        let mut headers = HeaderMap::new();
        let signature = format!(
            "t={timestamp},v1={}",
            igdisplay_auth::hex(&mac.finalize().into_bytes())
        );
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
        headers.insert(EVENT_ID_HEADER, event_id.to_string().parse().unwrap());
        headers.insert(DELIVERY_HEADER, delivery.parse().unwrap());
        headers
    }

    const NOW: u64 = 1_800_000_000;

    fn verify(headers: &HeaderMap, body: &[u8]) -> Result<VerifiedWebhook, WebhookError> {
        verify_webhook(
            &["whsec"],
            headers,
            body,
            UNIX_EPOCH + Duration::from_secs(NOW),
            Duration::from_secs(300),
        )
    }

    #[test]
    fn a_signed_delivery_verifies_and_names_its_event() {
        let headers = signed("whsec", 1_800_000_000, "d1", 42, b"{}");
        let verified = verify(&headers, b"{}").unwrap();
        assert_eq!((verified.event_id, verified.delivery.as_str()), (42, "d1"));
    }

    #[test]
    fn a_delivery_replayed_under_another_event_or_delivery_id_is_refused() {
        let mut headers = signed("whsec", 1_800_000_000, "d1", 42, b"{}");
        headers.insert(EVENT_ID_HEADER, "43".parse().unwrap());
        assert_eq!(verify(&headers, b"{}"), Err(WebhookError::BadSignature));
        let mut headers = signed("whsec", 1_800_000_000, "d1", 42, b"{}");
        headers.insert(DELIVERY_HEADER, "d2".parse().unwrap());
        assert_eq!(verify(&headers, b"{}"), Err(WebhookError::BadSignature));
        let headers = signed("whsec", 1_800_000_000, "d1", 42, b"{}");
        assert_eq!(verify(&headers, b"{\"x\":1}"), Err(WebhookError::BadSignature));
    }

    #[test]
    fn an_old_or_incomplete_delivery_is_refused() {
        let headers = signed("whsec", 1_800_000_000 - 301, "d1", 42, b"{}");
        assert_eq!(verify(&headers, b"{}"), Err(WebhookError::Stale));
        let mut headers = signed("whsec", 1_800_000_000, "d1", 42, b"{}");
        headers.remove(EVENT_ID_HEADER);
        assert_eq!(verify(&headers, b"{}"), Err(WebhookError::Malformed));
    }

    #[test]
    fn seen_events_drop_repeats_and_forget_the_oldest_past_their_capacity() {
        let mut seen = SeenEvents::new(2);
        assert!(seen.first_time(1));
        assert!(!seen.first_time(1));
        assert!(seen.first_time(2));
        assert!(seen.first_time(3));
        assert_eq!(seen.len(), 2);
        assert!(seen.first_time(1), "forgotten past the capacity");
        assert!(!seen.first_time(3));
    }
}

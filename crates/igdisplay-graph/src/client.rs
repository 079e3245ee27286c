//! [`GraphClient`] and its request pipeline: one place for timeouts, retries with jitter,
//! rate-limit pacing, error mapping, decoding and tracing.

use crate::{Error, GraphConfig, StaticToken, TokenSource};
use bytes::Bytes;
use igdisplay_http::{HttpBackend, HttpResponse, SharedBackend, SharedClock, SystemClock, TransportError};
use igdisplay_http::{TransportErrorKind, redact_uri};
use igdisplay_model::{
    APP_USAGE_HEADER, AccessToken, BUSINESS_USE_CASE_USAGE_HEADER, ErrorBody, ErrorClass, Usage,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Everything but the RFC 3986 unreserved characters is percent-encoded in query values.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Queries the Graph API for one user's token. Cheap to clone: clones share the rate-limit
/// state, so every query of one user is paced together.
#[derive(Clone, Debug)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: SharedBackend,
    token: Arc<dyn TokenSource>,
    clock: SharedClock,
    config: GraphConfig,
    limiter: Mutex<Limiter>,
    jitter: Mutex<SplitMix64>,
}

/// What the usage headers said last, and until when calls are known to be refused.
#[derive(Debug, Default)]
struct Limiter {
    usage: Option<Usage>,
    blocked_until: Option<SystemTime>,
    /// The quota's theoretical arrival time of the next request.
    quota_tat: Option<SystemTime>,
}

impl GraphClient {
    /// A client sending through `backend` with the token from `token`, on the system clock.
    pub fn new(backend: SharedBackend, token: Arc<dyn TokenSource>, config: GraphConfig) -> Self {
        Self::with_clock(backend, token, config, Arc::new(SystemClock))
    }

    /// A client with a fixed access token.
    pub fn with_token(backend: SharedBackend, token: AccessToken, config: GraphConfig) -> Self {
        Self::new(backend, Arc::new(StaticToken::new(token)), config)
    }

    /// A client on an injected clock (a `ManualClock` in tests: backoff and pacing then
    /// take no real time).
    pub fn with_clock(
        backend: SharedBackend,
        token: Arc<dyn TokenSource>,
        config: GraphConfig,
        clock: SharedClock,
    ) -> Self {
        let seed = config.jitter_seed.unwrap_or_else(random_seed);
        Self {
            inner: Arc::new(Inner {
                backend,
                token,
                clock,
                config,
                limiter: Mutex::default(),
                jitter: Mutex::new(SplitMix64(seed)),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &GraphConfig {
        &self.inner.config
    }

    /// The usage Instagram reported on the last response that carried it.
    pub fn usage(&self) -> Option<Usage> {
        self.limiter().usage.clone()
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Limiter> {
        self.inner.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `GET {base}[/{version}]/{path}?{query}&access_token=...`, decoded as `T`, through the
    /// whole pipeline.
    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Error> {
        let retry = self.inner.config.retry;
        let started = self.inner.clock.now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.pace().await?;
            let token = self.inner.token.access_token().await.map_err(Error::Token)?;
            let uri = self.uri(path, query, &token);
            let request = http::Request::get(&uri)
                .header(http::header::ACCEPT, "application/json")
                .body(Bytes::new())
                .map_err(|_| Error::InvalidRequest("the base URL and path do not form a valid URI"))?;
            let span = tracing::info_span!(
                "igdisplay.graph.request",
                url = %redact_uri(&uri),
                attempt,
                status = tracing::field::Empty,
                duration_ms = tracing::field::Empty,
            );
            let timer = std::time::Instant::now();
            let send = self.inner.backend.send(request);
            let outcome = match self.inner.config.request_timeout {
                Some(limit) => tokio::time::timeout(limit, send)
                    .await
                    .unwrap_or_else(|_| Err(TransportError::new(TransportErrorKind::Timeout))),
                None => send.await,
            };
            span.record("duration_ms", timer.elapsed().as_millis() as u64);
            let failure = match outcome {
                Ok(response) => {
                    span.record("status", response.status().as_u16());
                    self.observe(&response);
                    if response.status().is_success() {
                        return decode(&response, &token);
                    }
                    self.failure(response, &token, attempt)
                }
                Err(source) => {
                    tracing::debug!(parent: &span, kind = ?source.kind(), "transport failure");
                    Error::Transport {
                        source,
                        attempts: attempt,
                    }
                }
            };
            let elapsed = self.inner.clock.now().duration_since(started).unwrap_or_default();
            let Some(delay) = self.retry_delay(&failure, attempt) else {
                return Err(failure);
            };
            tracing::debug!(parent: &span, delay_ms = delay.as_millis() as u64, "retrying");
            if attempt >= retry.max_attempts || elapsed + delay > retry.max_elapsed {
                return Err(failure);
            }
            self.inner.clock.sleep(delay).await;
        }
    }

    fn uri(&self, path: &str, query: &[(&str, String)], token: &AccessToken) -> String {
        let config = &self.inner.config;
        let mut uri = config.base_url.clone();
        if let Some(version) = &config.version {
            uri.push('/');
            uri.push_str(version);
        }
        uri.push('/');
        uri.push_str(path);
        let pairs = query
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .chain(std::iter::once(("access_token", token.expose_secret())));
        for (i, (name, value)) in pairs.enumerate() {
            uri.push(if i == 0 { '?' } else { '&' });
            uri.push_str(name);
            uri.push('=');
            uri.extend(utf8_percent_encode(value, COMPONENT));
        }
        uri
    }

    /// Records the usage headers, ignoring anything unparsable.
    fn observe(&self, response: &HttpResponse) {
        let header = |name: &str| response.headers().get(name).map(|v| v.as_bytes());
        let usage = Usage::from_headers(header(APP_USAGE_HEADER), header(BUSINESS_USE_CASE_USAGE_HEADER));
        if !usage.is_empty() {
            self.limiter().usage = Some(usage);
        }
    }

    /// Maps an error response; a rate limit also blocks the next calls until access is back.
    fn failure(&self, response: HttpResponse, token: &AccessToken, attempts: u32) -> Error {
        let status = response.status().as_u16();
        let body = ErrorBody::parse(response.body());
        let graph = match body {
            Some(ErrorBody::Graph(body)) => Some(body.error),
            _ => None,
        };
        let class = graph
            .as_ref()
            .map(|e| e.class(status))
            .unwrap_or_else(|| igdisplay_model::classify(0, None, false, status));
        if class == ErrorClass::RateLimited {
            let retry_after = retry_after(&response)
                .or_else(|| self.limiter().usage.as_ref().and_then(Usage::regain_access_after))
                .unwrap_or(self.inner.config.rate_limit.default_wait);
            let mut limiter = self.limiter();
            limiter.blocked_until = Some(self.inner.clock.now() + retry_after);
            return Error::RateLimited {
                usage: limiter.usage.clone().map(Box::new),
                retry_after: Some(retry_after),
                error: graph.map(Box::new),
            };
        }
        match graph {
            Some(error) => Error::Api {
                status,
                class,
                error: Box::new(error),
                attempts,
            },
            None => Error::UnexpectedResponse {
                status,
                snippet: snippet(response.body(), token),
            },
        }
    }

    /// How long to wait before retrying `failure`, or `None` if it is not retried.
    fn retry_delay(&self, failure: &Error, attempt: u32) -> Option<Duration> {
        let policy = &self.inner.config.rate_limit;
        match failure {
            // Never at once: after the announced pause, if the policy waits and it is short enough.
            Error::RateLimited {
                retry_after: Some(pause),
                ..
            } if policy.wait_when_exhausted && *pause <= policy.max_wait => Some(*pause),
            Error::Transport { source, .. } => matches!(
                source.kind(),
                TransportErrorKind::Connect
                    | TransportErrorKind::Timeout
                    | TransportErrorKind::Io
                    | TransportErrorKind::Body
            )
            .then(|| self.backoff(attempt)),
            Error::Api { class, .. } if class.is_retryable() => Some(self.backoff(attempt)),
            Error::UnexpectedResponse { status, .. } if *status >= 500 => Some(self.backoff(attempt)),
            _ => None,
        }
    }

    /// Full jitter: uniform in `[0, min(max_delay, base_delay * 2^(attempt-1)))`.
    fn backoff(&self, attempt: u32) -> Duration {
        let retry = &self.inner.config.retry;
        let ceiling = retry
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(retry.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let mut jitter = self.inner.jitter.lock().unwrap_or_else(PoisonError::into_inner);
        Duration::from_nanos(jitter.below(nanos))
    }

    /// Before each request: wait out a known block, slow down above the threshold, and at
    /// 100 % wait (or fail fast) until access is likely back.
    async fn pace(&self) -> Result<(), Error> {
        let policy = self.inner.config.rate_limit;
        let now = self.inner.clock.now();
        let (pause, exhausted, usage) = {
            let mut limiter = self.limiter();
            let blocked = limiter
                .blocked_until
                .and_then(|until| until.duration_since(now).ok())
                .filter(|d| !d.is_zero());
            let percent = limiter.usage.as_ref().and_then(Usage::max_percent).unwrap_or(0);
            if let Some(pause) = blocked {
                (pause, true, limiter.usage.clone())
            } else if percent >= 100 {
                let pause = limiter
                    .usage
                    .as_ref()
                    .and_then(Usage::regain_access_after)
                    .filter(|d| !d.is_zero())
                    .unwrap_or(policy.default_wait);
                limiter.blocked_until = Some(now + pause);
                // The figure is spent: the next response says what the usage is then.
                let usage = limiter.usage.take();
                (pause, true, usage)
            } else if percent > policy.slow_down_above {
                let over = u32::from(percent - policy.slow_down_above);
                let range = u32::from(100 - policy.slow_down_above).max(1);
                (policy.max_spacing * over / range, false, None)
            } else {
                (Duration::ZERO, false, None)
            }
        };
        let pause = pause.max(self.quota_delay(now + pause));
        if pause.is_zero() {
            return Ok(());
        }
        if exhausted && (!policy.wait_when_exhausted || pause > policy.max_wait) {
            return Err(Error::RateLimited {
                usage: usage.map(Box::new),
                retry_after: Some(pause),
                error: None,
            });
        }
        tracing::debug!(
            pause_ms = pause.as_millis() as u64,
            exhausted,
            "pacing for the rate limit"
        );
        self.inner.clock.sleep(pause).await;
        Ok(())
    }
}

impl GraphClient {
    /// The wait the client-side quota imposes on a request sent at `at`, which it books.
    fn quota_delay(&self, at: SystemTime) -> Duration {
        let Some(quota) = self.inner.config.rate_limit.quota else {
            return Duration::ZERO;
        };
        let interval = Duration::from_secs(1) / quota.per_second;
        let tolerance = interval * (quota.burst - 1);
        let mut limiter = self.limiter();
        let tat = limiter.quota_tat.map_or(at, |tat| tat.max(at));
        let wait = tat
            .duration_since(at)
            .unwrap_or_default()
            .saturating_sub(tolerance);
        limiter.quota_tat = Some(tat + interval);
        wait
    }
}

/// `Retry-After` in seconds or as an HTTP date, if present.
fn retry_after(response: &HttpResponse) -> Option<Duration> {
    let value = response
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(SystemTime::now()).unwrap_or_default())
}

fn decode<T: DeserializeOwned>(response: &HttpResponse, token: &AccessToken) -> Result<T, Error> {
    // The fast path; only a failure is decoded again to find where it failed.
    if let Ok(value) = serde_json::from_slice(response.body()) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(response.body());
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => Ok(value),
        Err(e) => Err(Error::Decode {
            path: e.path().to_string(),
            reason: mask(&e.inner().to_string(), token),
        }),
    }
}

fn snippet(body: &[u8], token: &AccessToken) -> String {
    let text: String = String::from_utf8_lossy(body).chars().take(160).collect();
    mask(&text, token)
}

fn mask(text: &str, token: &AccessToken) -> String {
    let secret = token.expose_secret();
    if secret.len() < 4 {
        return text.to_owned();
    }
    text.replace(secret, igdisplay_http::MASK)
}

/// A seed from the OS, or a fixed one if the OS cannot give randomness (jitter is not a secret).
fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => 0x9E37_79B9_7F4A_7C15,
    }
}

/// SplitMix64: a tiny, well-distributed generator for backoff jitter.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, bound)` (0 when `bound` is 0).
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_its_bound_and_spreads() {
        let mut rng = SplitMix64(7);
        let draws: Vec<u64> = (0..10_000).map(|_| rng.below(1000)).collect();
        assert!(draws.iter().all(|d| *d < 1000));
        let low = draws.iter().filter(|d| **d < 500).count();
        assert!((4_500..5_500).contains(&low), "{low}");
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn retry_after_reads_seconds() {
        let response = http::Response::builder()
            .header("retry-after", "2")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(retry_after(&response), Some(Duration::from_secs(2)));
        let past = http::Response::builder()
            .header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(retry_after(&past), Some(Duration::ZERO));
    }
}

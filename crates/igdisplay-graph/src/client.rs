//! [`GraphClient`] and its request pipeline: the one place where pacing, the token, retries,
//! the usage headers and tracing meet. Timeouts are the backend's
//! ([`igdisplay_http::Timeout`] around a backend that has none).

use crate::pacer::scope_of;
use crate::{Error, GraphEndpoint, GraphPolicy, Pacer, StaticToken, TokenSource};
use igdisplay_http::{
    Exchange, Gate, HttpRequest, HttpResponse, Jitter, RetryBudget, SendLoop, SharedBackend, SharedClock,
    SystemClock, announce_rate_limit_wait, redact_http_uri,
};
use igdisplay_model::{AccessToken, Usage, UserId};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Queries the Graph API with one user's token. Cheap to clone.
///
/// Build one with [`GraphClient::builder`] (or [`GraphClient::with_token`] for a fixed token);
/// the facade's `Instagram::graph(&user)` builds them for you, all sharing one [`Pacer`].
#[derive(Clone, Debug)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: SharedBackend,
    token: Arc<dyn TokenSource>,
    clock: SharedClock,
    endpoint: GraphEndpoint,
    policy: GraphPolicy,
    pacer: Arc<Pacer>,
    jitter: Arc<Jitter>,
    retry_budget: Arc<RetryBudget>,
    user: Option<UserId>,
}

/// Configures a [`GraphClient`]; from [`GraphClient::builder`].
#[derive(Debug)]
#[must_use = "call .build() to get the client"]
pub struct GraphClientBuilder {
    backend: SharedBackend,
    endpoint: GraphEndpoint,
    token: Arc<dyn TokenSource>,
    clock: Option<SharedClock>,
    policy: GraphPolicy,
    pacer: Option<Arc<Pacer>>,
    jitter: Option<Arc<Jitter>>,
    retry_budget: Option<Arc<RetryBudget>>,
    user: Option<UserId>,
}

impl GraphClientBuilder {
    /// The clock for backoff, pacing and `Retry-After` dates (the system clock by default;
    /// a `ManualClock` in tests, so that waiting takes no time).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Retries, pacing and jitter.
    pub fn policy(mut self, policy: GraphPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Shares rate-limit state with other clients of the same app (by default the client has
    /// a pacer of its own, following the policy's rate limits).
    pub fn pacer(mut self, pacer: Arc<Pacer>) -> Self {
        self.pacer = Some(pacer);
        self
    }

    /// Shares one jitter source with other clients.
    pub fn jitter(mut self, jitter: Arc<Jitter>) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Shares one retry budget with other clients of the same app (by default the client has
    /// a [`RetryBudget::default`] of its own).
    pub fn retry_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.retry_budget = Some(budget);
        self
    }

    /// Whose budget the queries spend: a user-level throttle pauses only this user's
    /// queries. Without it, every throttle counts as the app's.
    pub fn user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Builds the client.
    pub fn build(self) -> GraphClient {
        let policy = self.policy;
        GraphClient {
            inner: Arc::new(Inner {
                backend: self.backend,
                token: self.token,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                endpoint: self.endpoint,
                pacer: self
                    .pacer
                    .unwrap_or_else(|| Arc::new(Pacer::new(policy.rate_limit))),
                jitter: self.jitter.unwrap_or_else(|| {
                    Arc::new(policy.jitter_seed.map_or_else(Jitter::random, Jitter::seeded))
                }),
                retry_budget: self.retry_budget.unwrap_or_default(),
                policy,
                user: self.user,
            }),
        }
    }
}

impl GraphClient {
    /// A builder for a client sending through `backend` to `endpoint`, with tokens from `token`.
    pub fn builder(
        backend: SharedBackend,
        endpoint: GraphEndpoint,
        token: Arc<dyn TokenSource>,
    ) -> GraphClientBuilder {
        GraphClientBuilder {
            backend,
            endpoint,
            token,
            clock: None,
            policy: GraphPolicy::default(),
            pacer: None,
            jitter: None,
            retry_budget: None,
            user: None,
        }
    }

    /// A client with a fixed access token and the default policy.
    pub fn with_token(backend: SharedBackend, endpoint: GraphEndpoint, token: AccessToken) -> Self {
        Self::builder(backend, endpoint, Arc::new(StaticToken::new(token))).build()
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &GraphEndpoint {
        &self.inner.endpoint
    }

    /// The clock the client waits and dates on (Instagram's time: a mock's, under test).
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Retries, pacing and jitter.
    pub fn policy(&self) -> &GraphPolicy {
        &self.inner.policy
    }

    /// The rate-limit state this client shares.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.inner.pacer
    }

    /// The usage Instagram last reported for the app and this client's user.
    pub fn usage(&self) -> Option<Usage> {
        self.inner.pacer.usage(self.inner.user.as_ref())
    }

    /// Sends `request` through the one send loop ([`SendLoop`]) with this client's gate:
    /// pace, take a token, render, send, read the usage headers, parse, and retry what
    /// [`Error::retry`] allows within the retry policy.
    pub(crate) async fn execute<'s, X, T>(&'s self, request: &X) -> Result<T, Error>
    where
        X: Exchange<Cow<'s, AccessToken>, Output = T, Error = Error> + Sync,
    {
        let inner = &*self.inner;
        let sender = SendLoop::new(
            &*inner.backend,
            &*inner.clock,
            &inner.policy.retry,
            &inner.jitter,
            &inner.retry_budget,
        );
        Ok(sender.send(&Pipeline(self), request).await?.output)
    }

    /// Records the usage headers, ignoring anything unparsable.
    fn observe(&self, response: &HttpResponse) {
        let usage = crate::reported_usage(response.headers());
        if !usage.is_empty() {
            self.inner.pacer.observe(self.inner.user.as_ref(), usage);
        }
    }

    /// Before each request (about to go at `now`): wait out a known block, slow down above the
    /// threshold, and at 100 % wait (or fail fast) until access is likely back. Returns when the
    /// request goes: `now`, or the clock's time after a wait.
    async fn pace(&self, now: SystemTime) -> Result<SystemTime, Error> {
        let inner = &*self.inner;
        let pause = inner.pacer.before_request(inner.user.as_ref(), now);
        if pause.wait.is_zero() {
            return Ok(now);
        }
        if pause.exhausted && !inner.pacer.policy().waits_for(pause.wait) {
            return Err(Error::RateLimited {
                usage: pause.usage.map(Box::new),
                retry_after: Some(pause.wait),
                error: None,
            });
        }
        if pause.exhausted {
            announce_rate_limit_wait(pause.wait);
        } else {
            tracing::debug!(
                pause_ms = pause.wait.as_millis() as u64,
                "pacing for the rate limit"
            );
        }
        inner.clock.sleep(pause.wait).await;
        Ok(inner.clock.now())
    }
}

/// The Graph client's side of each attempt of the send loop: pacing and a token before,
/// usage headers and the rate limit's pause after.
struct Pipeline<'a>(&'a GraphClient);

impl<'a> Gate<Error> for Pipeline<'a> {
    /// The token, borrowed when it is fixed, fetched for each attempt otherwise.
    type Context = Cow<'a, AccessToken>;

    async fn open(&self, at: SystemTime) -> Result<(Cow<'a, AccessToken>, SystemTime), Error> {
        let client = self.0;
        let sent_at = client.pace(at).await?;
        // A fixed token is borrowed, not cloned, for every request.
        let token = match client.inner.token.fixed() {
            Some(token) => Cow::Borrowed(token),
            None => Cow::Owned(client.inner.token.access_token().await?),
        };
        Ok((token, sent_at))
    }

    fn span(&self, request: &HttpRequest, attempt: u32) -> tracing::Span {
        tracing::info_span!(
            "igdisplay.graph.request",
            url = %redact_http_uri(request.uri()),
            attempt,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    fn observe(&self, response: &HttpResponse) {
        self.0.observe(response);
    }

    /// A rate limit blocks its scope in the pacer for the pause it announced (or the pacer's
    /// own estimate) and carries that pause and the latest usage.
    fn refused(&self, failure: Error, response: &HttpResponse, now: SystemTime) -> Error {
        let Error::RateLimited { error, .. } = failure else {
            return failure;
        };
        let inner = &*self.0.inner;
        let user = inner.user.as_ref();
        let pause = inner.pacer.announced_pause(user, retry_after(response, now));
        inner.pacer.block(scope_of(error.as_deref(), user), now, pause);
        Error::RateLimited {
            usage: self.0.usage().map(Box::new),
            retry_after: Some(pause),
            error,
        }
    }

    fn waits_for(&self, pause: Duration) -> bool {
        self.0.inner.pacer.policy().waits_for(pause)
    }
}

/// `Retry-After` in seconds or as an HTTP date measured from `now` on the injected clock,
/// if present and readable.
fn retry_after(response: &HttpResponse, now: SystemTime) -> Option<Duration> {
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
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::UNIX_EPOCH;

    fn with_retry_after(value: &str) -> HttpResponse {
        http::Response::builder()
            .header("retry-after", value)
            .body(Bytes::new())
            .unwrap()
    }

    #[test]
    fn retry_after_reads_seconds() {
        let now = UNIX_EPOCH;
        assert_eq!(
            retry_after(&with_retry_after("2"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&with_retry_after("18446744073709551615"), now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
    }

    #[test]
    fn retry_after_dates_are_measured_on_the_injected_clock() {
        let date = with_retry_after("Wed, 21 Oct 2015 07:28:00 GMT");
        let at = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            retry_after(&date, at - Duration::from_secs(90)),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            retry_after(&date, at + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
    }
}

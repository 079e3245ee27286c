//! How the Graph client behaves: where it sends requests, how it retries, and how it treats
//! rate limits.

use igdisplay_model::Platform;
use std::time::Duration;

/// Retries of transient failures, with capped exponential backoff and full jitter.
///
/// Only GETs are sent by this crate, and only transient failures are retried: HTTP 5xx,
/// Graph codes 1 and 2, `is_transient: true`, connect failures, timeouts and broken
/// connections. Attempt `n` waits a random time in `[0, min(max_delay, base_delay * 2^(n-1)))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Requests sent at most for one call, the first included. Default 3.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry. Default 500 ms.
    pub base_delay: Duration,
    /// The largest backoff ceiling. Default 30 s.
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt. Default 2 min.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the number of attempts (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }
}

/// What the client does as Instagram's usage headers approach 100 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitPolicy {
    /// Above this percentage the client spaces its requests. Default 80.
    pub slow_down_above: u8,
    /// The pause before each request at 99 %; it grows linearly from zero at
    /// `slow_down_above`. Default 2 s.
    pub max_spacing: Duration,
    /// At 100 %, or after a rate-limit error, wait until access is likely back (`true`,
    /// default) or fail at once with [`Error::RateLimited`](crate::Error::RateLimited).
    pub wait_when_exhausted: bool,
    /// How long to wait when Instagram gives no estimate. Default 60 s.
    pub default_wait: Duration,
    /// Never wait longer than this for one call; fail instead. Default 5 min.
    pub max_wait: Duration,
    /// A client-side quota, on top of what Instagram reports: none by default.
    pub quota: Option<Quota>,
}

/// A client-side request quota: `per_second` requests a second on average, up to `burst` at
/// once (the generic cell rate algorithm, on the injected clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quota {
    /// Sustained requests per second (at least 1).
    pub per_second: u32,
    /// Requests that may go at once (at least 1).
    pub burst: u32,
}

impl Quota {
    /// `per_second` requests a second with bursts of `burst`.
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            per_second: per_second.max(1),
            burst: burst.max(1),
        }
    }
}

impl Default for RateLimitPolicy {
    fn default() -> Self {
        Self {
            slow_down_above: 80,
            max_spacing: Duration::from_secs(2),
            wait_when_exhausted: true,
            default_wait: Duration::from_secs(60),
            max_wait: Duration::from_secs(300),
            quota: None,
        }
    }
}

impl RateLimitPolicy {
    /// Adds a client-side quota.
    #[must_use]
    pub fn quota(mut self, quota: Quota) -> Self {
        self.quota = Some(quota);
        self
    }

    /// Fails fast instead of waiting at 100 %.
    #[must_use]
    pub fn fail_fast(mut self) -> Self {
        self.wait_when_exhausted = false;
        self
    }
}

/// The Graph client's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphConfig {
    /// Which API, for the default field sets.
    pub platform: Platform,
    /// The Graph base URL. Default `https://graph.instagram.com`.
    pub base_url: String,
    /// An API version segment such as `v21.0`; none by default (the app's dashboard version).
    pub version: Option<String>,
    /// The timeout of each request, enforced by the pipeline around the backend. Default 30 s.
    /// `None` leaves timing out to the backend (igdisplay's own backends always time out, after
    /// `BackendConfig::request_timeout`), which saves a timer per request.
    pub request_timeout: Option<Duration>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Rate-limit behaviour.
    pub rate_limit: RateLimitPolicy,
    /// A seed for the backoff jitter, for reproducible tests; random by default.
    pub jitter_seed: Option<u64>,
}

impl GraphConfig {
    /// The defaults for `platform`, on Instagram's production host.
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            base_url: "https://graph.instagram.com".to_owned(),
            version: None,
            request_timeout: Some(Duration::from_secs(30)),
            retry: RetryPolicy::default(),
            rate_limit: RateLimitPolicy::default(),
            jitter_seed: None,
        }
    }

    /// Sets the base URL (a mock's, say); a trailing `/` is ignored.
    #[must_use]
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.base_url = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Sets the version segment, with or without its `v` (`"21.0"` or `"v21.0"`).
    #[must_use]
    pub fn version(mut self, version: impl Into<String>) -> Self {
        let version = version.into();
        let version = version.trim().trim_matches('/');
        self.version = (!version.is_empty()).then(|| {
            if version.starts_with('v') {
                version.to_owned()
            } else {
                format!("v{version}")
            }
        });
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// Leaves timing out to the backend (use only with a backend that has its own timeout).
    #[must_use]
    pub fn backend_timeout_only(mut self) -> Self {
        self.request_timeout = None;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the rate-limit policy.
    #[must_use]
    pub fn rate_limit(mut self, rate_limit: RateLimitPolicy) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Seeds the backoff jitter.
    #[must_use]
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }
}

//! How the Graph client behaves. Two halves: where requests go ([`GraphEndpoint`], which the
//! facade sets from the platform and the endpoints) and how they are retried and paced
//! ([`GraphPolicy`], what users tune).

pub use igdisplay_http::RetryPolicy;
use igdisplay_model::Platform;
use std::time::Duration;

/// Where Graph requests go: the platform (for its field sets), the base URL and an optional
/// version segment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphEndpoint {
    /// Which API, for the default field sets.
    pub platform: Platform,
    /// The Graph base URL, without a trailing `/`. Default `https://graph.instagram.com`.
    pub base_url: String,
    /// An API version segment such as `v21.0`; none by default (the app's dashboard version).
    pub version: Option<String>,
}

impl GraphEndpoint {
    /// Instagram's production Graph host for `platform`.
    pub fn new(platform: Platform) -> Self {
        Self {
            platform,
            base_url: "https://graph.instagram.com".to_owned(),
            version: None,
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
    pub fn version(mut self, version: impl AsRef<str>) -> Self {
        let version = version.as_ref().trim().trim_matches('/');
        self.version = (!version.is_empty()).then(|| {
            if version.starts_with('v') {
                version.to_owned()
            } else {
                format!("v{version}")
            }
        });
        self
    }

    /// `{base}[/{version}]/{path}`, the path given in parts (an id and its suffix).
    pub(crate) fn url(&self, path: &[&str], room: usize) -> String {
        let version = self.version.as_deref().map_or(0, |v| v.len() + 1);
        let path_len = path.iter().map(|p| p.len()).fold(0usize, usize::saturating_add);
        let mut url = String::with_capacity(
            (self.base_url.len() + version + 1)
                .saturating_add(path_len)
                .saturating_add(room),
        );
        url.push_str(&self.base_url);
        if let Some(version) = &self.version {
            url.push('/');
            url.push_str(version);
        }
        url.push('/');
        for part in path {
            url.push_str(part);
        }
        url
    }
}

/// How queries are retried and paced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GraphPolicy {
    /// Retries of transient failures (the decision itself is
    /// [`igdisplay_http::classify`]'s).
    pub retry: RetryPolicy,
    /// Rate-limit behaviour.
    pub rate_limit: RateLimitPolicy,
    /// A seed for the backoff jitter, for reproducible tests; random by default.
    pub jitter_seed: Option<u64>,
}

impl GraphPolicy {
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

/// What the client does as Instagram's usage headers approach 100 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimitPolicy {
    /// Above this percentage the client spaces its requests. Default 80.
    pub slow_down_above: u8,
    /// The pause before each request at 99 %; it grows linearly from zero at
    /// `slow_down_above`. Default 2 s.
    pub max_spacing: Duration,
    /// At 100 %, or after a rate-limit error, wait until access is likely back (the default)
    /// or fail at once with [`Error::RateLimited`](crate::Error::RateLimited).
    pub when_exhausted: WhenExhausted,
    /// How long to wait when Instagram gives no estimate. Default 60 s.
    pub default_wait: Duration,
    /// Never wait longer than this for one call; fail instead. Default 5 min.
    pub max_wait: Duration,
    /// A client-side quota for the whole app, on top of what Instagram reports: none by
    /// default.
    pub quota: Option<Quota>,
}

/// What a query does when the budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WhenExhausted {
    /// Wait until access is likely back (up to [`RateLimitPolicy::max_wait`]), then go on.
    Wait,
    /// Fail at once with [`Error::RateLimited`](crate::Error::RateLimited).
    FailFast,
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
            when_exhausted: WhenExhausted::Wait,
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
        self.when_exhausted = WhenExhausted::FailFast;
        self
    }

    /// Whether a pause of `pause` is one this policy waits out.
    pub fn waits_for(&self, pause: Duration) -> bool {
        self.when_exhausted == WhenExhausted::Wait && pause <= self.max_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_gets_its_v_once() {
        let endpoint = GraphEndpoint::new(Platform::InstagramLogin);
        assert_eq!(endpoint.clone().version("21.0").version.as_deref(), Some("v21.0"));
        assert_eq!(
            endpoint.clone().version("/v21.0/").version.as_deref(),
            Some("v21.0")
        );
        assert_eq!(endpoint.version(" ").version, None);
    }

    #[test]
    fn urls_join_base_version_and_path() {
        let endpoint = GraphEndpoint::new(Platform::InstagramLogin)
            .base_url("http://127.0.0.1:9/")
            .version("21.0");
        assert_eq!(
            endpoint.url(&["me", "/media"], 0),
            "http://127.0.0.1:9/v21.0/me/media"
        );
    }
}

//! Settings shared by the real backends.

use crate::AddressPolicy;
use std::time::Duration;

/// The default response body cap: 16 MiB, far above any Graph response.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Timeouts, body cap and user agent of a real backend.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendConfig {
    /// How long establishing a connection (TCP and TLS) may take. Default 10 s.
    pub connect_timeout: Duration,
    /// How long a whole request may take, from sending it to the last byte of the body.
    /// Default 30 s.
    pub request_timeout: Duration,
    /// The largest response body accepted, in bytes. Default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// The `User-Agent` header sent when the request has none.
    pub user_agent: String,
    /// Root certificates trusted besides the operating system's, in PEM: a test server's own
    /// root (`igdisplay_mock::MockServer::root_certificate_pem`), or a corporate proxy's.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// Which addresses the backend may connect to. Default: any.
    pub address_policy: AddressPolicy,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            user_agent: concat!("igdisplay/", env!("CARGO_PKG_VERSION")).to_owned(),
            extra_roots_pem: Vec::new(),
            address_policy: AddressPolicy::Any,
        }
    }
}

impl BackendConfig {
    /// Sets the connect timeout.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the whole-request timeout.
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the response body cap in bytes.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Trusts the root certificates in `pem` (one or more `BEGIN CERTIFICATE` blocks) besides
    /// the operating system's. A backend built with a PEM holding no certificate fails with
    /// [`TransportErrorKind::InvalidRequest`](crate::TransportErrorKind::InvalidRequest).
    ///
    /// ```
    /// let config = igdisplay_http::BackendConfig::default().trust_root_pem("-----BEGIN CERTIFICATE-----...");
    /// assert_eq!(config.extra_roots_pem.len(), 1);
    /// ```
    #[must_use]
    pub fn trust_root_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }

    /// Restricts the addresses the backend connects to: for a backend that fetches what a
    /// response names (a media download), [`AddressPolicy::public_only`].
    #[must_use]
    pub fn address_policy(mut self, policy: AddressPolicy) -> Self {
        self.address_policy = policy;
        self
    }

    /// Sets the default `User-Agent`.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }
}

//! [`ReqwestBackend`]: the default backend, on reqwest with rustls.

use crate::body::{CappedBody, declared_length};
use crate::timeout::within;
use crate::tls::{client_config, io_kind_in_chain};
use crate::{
    BackendConfig, HttpBackend, HttpRequest, HttpResponse, SystemClock, TransportError, TransportErrorKind,
};
use async_trait::async_trait;
use std::pin::pin;

/// An [`HttpBackend`] on a [`reqwest::Client`]: rustls (ring, OS trust store), HTTP/1.1 and
/// HTTP/2, redirects off (a redirect is returned as a response, never followed with the
/// token), a connect timeout, a whole-request timeout and a response body cap.
#[derive(Clone, Debug)]
pub struct ReqwestBackend {
    client: reqwest::Client,
    config: BackendConfig,
}

impl ReqwestBackend {
    /// A backend with the default [`BackendConfig`].
    ///
    /// # Errors
    ///
    /// When the TLS configuration or the client cannot be built.
    pub fn new() -> Result<Self, TransportError> {
        Self::with_config(BackendConfig::default())
    }

    /// A backend with `config`.
    ///
    /// # Errors
    ///
    /// When the TLS configuration or the client cannot be built.
    pub fn with_config(config: BackendConfig) -> Result<Self, TransportError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(&config.extra_roots_pem)?)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(map_error)?;
        Ok(Self { client, config })
    }

    /// A backend on a client you built. Turn redirects off on it: a followed redirect would
    /// carry the access token to wherever it points. `config`'s request timeout and body cap
    /// still apply; its connect timeout and user agent are the client's business.
    pub fn from_client(client: reqwest::Client, config: BackendConfig) -> Self {
        Self { client, config }
    }

    /// The settings in use.
    pub fn config(&self) -> &BackendConfig {
        &self.config
    }
}

#[async_trait]
impl HttpBackend for ReqwestBackend {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let request = reqwest::Request::try_from(request).map_err(map_error)?;
        // The request goes into the client's own future here, so the exchange below does not
        // hold a copy of it: this whole future is boxed on every request.
        let responding = self.client.execute(request);
        let exchange = pin!(async {
            let mut response = responding.await.map_err(map_error)?;
            let mut body = CappedBody::new(self.config.max_body_bytes, declared_length(response.headers()))?;
            let mut out = http::Response::new(bytes::Bytes::new());
            *out.status_mut() = response.status();
            *out.version_mut() = response.version();
            *out.headers_mut() = std::mem::take(response.headers_mut());
            while let Some(chunk) = response.chunk().await.map_err(map_error)? {
                body.push(chunk)?;
            }
            *out.body_mut() = body.finish();
            Ok(out)
        });
        within(pin!(SystemClock::deadline(self.config.request_timeout)), exchange).await
    }
}

/// Classifies a reqwest error after stripping its URL.
fn map_error(error: reqwest::Error) -> TransportError {
    let error = error.without_url();
    let kind = if error.is_connect() {
        TransportErrorKind::Connect
    } else if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_builder() {
        TransportErrorKind::InvalidRequest
    } else if error.is_body() || error.is_decode() {
        TransportErrorKind::Body
    } else if error.is_request() || io_kind_in_chain(&error).is_some() {
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    };
    TransportError::with_source(kind, error)
}

#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod address;
#[cfg(any(feature = "reqwest", feature = "hyper"))]
mod body;
mod clock;
mod config;
mod error;
mod query;
mod redact;
mod request;
mod retry;
mod send;
mod timeout;

#[cfg(feature = "hyper")]
mod hyper_backend;
#[cfg(feature = "reqwest")]
mod reqwest_backend;
#[cfg(any(feature = "reqwest", feature = "hyper"))]
mod resolve;
#[cfg(feature = "test-util")]
mod sim_clock;
#[cfg(feature = "test-util")]
pub mod test_util;
#[cfg(any(feature = "reqwest", feature = "hyper"))]
mod tls;

use std::sync::Arc;

pub use address::{AddressPolicy, is_public};
pub use clock::{Clock, ManualClock, SharedClock, ShiftedClock, SystemClock};
pub use config::{BackendConfig, DEFAULT_MAX_BODY_BYTES};
pub use error::{BodyTooLarge, BoxError, TransportError, TransportErrorKind};
#[cfg(feature = "hyper")]
pub use hyper_backend::HyperBackend;
pub use query::{QueryValue, QueryWriter, append_query, encode_query};
pub use redact::{MASK, Redacted, RedactedHttpUri, SENSITIVE_QUERY_PARAMS, redact_http_uri, redact_uri};
pub use request::HttpRequest;
#[cfg(feature = "reqwest")]
pub use reqwest_backend::ReqwestBackend;
pub use retry::{Jitter, Outcome, RequestKind, Retry, RetryBudget, RetryPolicy, ServerVerdict, classify};
pub use send::{Exchange, Failure, Gate, NoGate, RATE_LIMIT_WAIT, SendLoop, Sent, announce_rate_limit_wait};
pub use timeout::Timeout;
#[cfg(any(feature = "reqwest", feature = "hyper"))]
pub use tls::rustls_client_config;

/// Re-exported so callers build requests with the same `bytes` version.
pub use bytes;
/// Re-exported so callers build requests with the same `http` version.
pub use http;
/// Re-exported so callers configure TLS with the same `rustls` version
/// ([`rustls_client_config`]).
#[cfg(any(feature = "reqwest", feature = "hyper"))]
pub use rustls;

/// A response of any status, with its body read up to the backend's cap.
pub type HttpResponse = http::Response<bytes::Bytes>;
/// How clients hold a backend, so that they need no type parameter.
pub type SharedBackend = Arc<dyn HttpBackend>;

/// The future [`HttpBackend::send`] returns, for the crate's backends that write the method
/// out instead of using `async fn`.
type SendFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, TransportError>> + Send + 'a>>;

/// The future [`HttpBackend::send_streaming`] returns, written out the same way.
type StreamingFuture<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<StreamingResponse, TransportError>> + Send + 'a>,
>;

/// A copy of a request: method, URI, version, headers and body (extensions are not cloned),
/// for sending the same request again.
pub fn clone_request(request: &HttpRequest) -> HttpRequest {
    let mut copy = HttpRequest::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Sends one HTTP request and returns the response.
///
/// The one seam between igdisplay and the network: implement it to bring your own HTTP
/// stack, middleware (retries, tracing, recording) or test double. Implementations must not
/// follow redirects (a redirect is an ordinary response) and must never put the request URL
/// into an error, since it may carry an access token.
#[async_trait::async_trait]
pub trait HttpBackend: std::fmt::Debug + Send + Sync + 'static {
    /// Sends `request`.
    ///
    /// Any status, 4xx and 5xx included, is `Ok`: interpreting statuses is the caller's job.
    ///
    /// # Errors
    ///
    /// A [`TransportError`] when no complete response was received.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;

    /// Sends `request` and answers as soon as the response's head is in, its body to be read
    /// as it arrives ([`BodyChunks`]): for a file too large to hold (a video, written to disk
    /// as it comes). igdisplay's backends give each chunk the request timeout of its own and
    /// stop past the body cap. The default reads the whole body with
    /// [`send`](Self::send) and hands it over as one chunk, which is right for a backend
    /// whose bodies are small (a test double).
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send), for the head; a chunk's failure comes from
    /// [`BodyChunks::next_chunk`].
    async fn send_streaming(&self, request: HttpRequest) -> Result<StreamingResponse, TransportError> {
        let response = self.send(request).await?;
        Ok(response.map(|body| Box::new(Whole(Some(body))) as BodyStream))
    }
}

#[async_trait::async_trait]
impl<B: HttpBackend + ?Sized> HttpBackend for Arc<B> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        (**self).send(request).await
    }

    async fn send_streaming(&self, request: HttpRequest) -> Result<StreamingResponse, TransportError> {
        (**self).send_streaming(request).await
    }
}

/// A response body read as it arrives ([`HttpBackend::send_streaming`]).
#[async_trait::async_trait]
pub trait BodyChunks: Send {
    /// The next chunk of the body; `None` at its end.
    ///
    /// # Errors
    ///
    /// A [`TransportError`]: the connection failed, a chunk did not come within the
    /// backend's timeout, or the body grew past its cap.
    async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, TransportError>>;
}

impl std::fmt::Debug for dyn BodyChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyChunks")
    }
}

/// How a streamed body is held.
pub type BodyStream = Box<dyn BodyChunks>;

/// A response whose body is read as it arrives.
pub type StreamingResponse = http::Response<BodyStream>;

/// A body already read whole, handed over as one chunk.
struct Whole(Option<bytes::Bytes>);

#[async_trait::async_trait]
impl BodyChunks for Whole {
    async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, TransportError>> {
        self.0.take().filter(|chunk| !chunk.is_empty()).map(Ok)
    }
}

/// The default real backend as a [`SharedBackend`]: reqwest when its feature is on, else hyper.
///
/// # Errors
///
/// When the backend cannot be built (TLS configuration).
#[cfg(any(feature = "reqwest", feature = "hyper"))]
pub fn default_backend(config: BackendConfig) -> Result<SharedBackend, TransportError> {
    #[cfg(feature = "reqwest")]
    let backend = ReqwestBackend::with_config(config)?;
    #[cfg(not(feature = "reqwest"))]
    let backend = HyperBackend::with_config(config)?;
    Ok(Arc::new(backend))
}

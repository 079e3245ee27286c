//! [`HyperBackend`]: hyper-util's pooled client with hyper-rustls.

use crate::body::{BodyLimit, CappedBody};
use crate::timeout::Within;
use crate::tls::{io_kind_in_chain, rustls_client_config};
use crate::{BackendConfig, HttpRequest, SystemClock, TransportError, TransportErrorKind};
use bytes::Bytes;
use http::header::{HeaderValue, USER_AGENT};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;

type Connector = hyper_rustls::HttpsConnector<HttpConnector<crate::resolve::PolicyResolver>>;

/// An [`HttpBackend`](crate::HttpBackend) on hyper-util's legacy pooled client with rustls
/// (ring, OS trust store): HTTP/1.1 and HTTP/2, redirects never followed, a connect timeout,
/// a whole-request timeout and a response body cap.
#[derive(Clone, Debug)]
pub struct HyperBackend {
    client: Client<Connector, Full<Bytes>>,
    config: BackendConfig,
    user_agent: Option<HeaderValue>,
}

impl HyperBackend {
    /// A backend with the default [`BackendConfig`].
    ///
    /// # Errors
    ///
    /// When the TLS configuration cannot be built.
    pub fn new() -> Result<Self, TransportError> {
        Self::with_config(BackendConfig::default())
    }

    /// A backend with `config`.
    ///
    /// # Errors
    ///
    /// When the TLS configuration cannot be built.
    pub fn with_config(config: BackendConfig) -> Result<Self, TransportError> {
        let mut http =
            HttpConnector::new_with_resolver(crate::resolve::PolicyResolver(config.address_policy.clone()));
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(rustls_client_config(&config.extra_roots_pem)?)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        let user_agent = HeaderValue::from_str(&config.user_agent).ok();
        Ok(Self {
            client,
            config,
            user_agent,
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &BackendConfig {
        &self.config
    }

    /// The checks every request passes (an http(s) URL with a host, a permitted address),
    /// the User-Agent added, and the request handed to hyper.
    fn dispatch(&self, request: HttpRequest) -> Result<ResponseFuture, TransportError> {
        let uri = request.uri();
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(TransportError::new(TransportErrorKind::InvalidRequest));
        }
        crate::resolve::check_host(&request, &self.config.address_policy)?;
        let mut request = request.into_inner().map(Full::new);
        if let Some(agent) = &self.user_agent {
            request
                .headers_mut()
                .entry(USER_AGENT)
                .or_insert_with(|| agent.clone());
        }
        Ok(self.client.request(request))
    }
}

crate::timeout::real_backend!(HyperBackend);

/// The whole body, up to `limit` bytes.
async fn read_whole(
    responding: ResponseFuture,
    limit: usize,
    _: std::time::Duration,
) -> Result<http::Response<Bytes>, TransportError> {
    let response = responding.await.map_err(map_client_error)?;
    let (parts, mut incoming) = response.into_parts();
    // hyper knows the declared `Content-Length` as the body's exact size.
    let mut body = CappedBody::new(limit, incoming.size_hint().exact())?;
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|e| TransportError::with_source(TransportErrorKind::Body, e))?;
        if let Ok(data) = frame.into_data() {
            body.push(data)?;
        }
    }
    Ok(http::Response::from_parts(parts, body.finish()))
}

/// The head now, the body as [`Chunks`].
async fn read_streaming(
    responding: ResponseFuture,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<http::Response<crate::BodyStream>, TransportError> {
    let response = responding.await.map_err(map_client_error)?;
    let (parts, incoming) = response.into_parts();
    let limit = BodyLimit::new(limit, incoming.size_hint().exact())?;
    let chunks = Chunks {
        incoming,
        timeout,
        limit,
    };
    Ok(http::Response::from_parts(
        parts,
        Box::new(chunks) as crate::BodyStream,
    ))
}

/// A hyper response's body, a data frame at a time, each within the request timeout.
struct Chunks {
    incoming: hyper::body::Incoming,
    timeout: std::time::Duration,
    limit: BodyLimit,
}

#[async_trait::async_trait]
impl crate::BodyChunks for Chunks {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        loop {
            let frame = Within::new(SystemClock::deadline(self.timeout), async {
                Ok::<_, TransportError>(self.incoming.frame().await)
            })
            .await;
            let frame = match frame {
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(error))) => {
                    return Some(Err(TransportError::with_source(TransportErrorKind::Body, error)));
                }
                Ok(None) => return None,
                Err(error) => return Some(Err(error)),
            };
            // Trailers and other frames carry no data: read on.
            if let Ok(data) = frame.into_data() {
                return Some(self.limit.count(&data).map(|()| data));
            }
        }
    }
}

fn map_client_error(error: hyper_util::client::legacy::Error) -> TransportError {
    let kind = if error.is_connect() {
        TransportErrorKind::Connect
    } else if io_kind_in_chain(&error).is_some() || is_connection_failure(&error) {
        TransportErrorKind::Io
    } else {
        TransportErrorKind::Other
    };
    TransportError::with_source(kind, error)
}

/// Whether hyper reports the connection closed or broken mid-exchange.
fn is_connection_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(hyper) = e.downcast_ref::<hyper::Error>() {
            return hyper.is_closed() || hyper.is_incomplete_message() || hyper.is_canceled();
        }
        current = e.source();
    }
    false
}

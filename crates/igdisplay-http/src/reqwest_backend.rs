//! [`ReqwestBackend`]: the default backend, on reqwest with rustls.

use crate::body::{BodyLimit, CappedBody};
use crate::timeout::Within;
use crate::tls::{io_kind_in_chain, rustls_client_config};
use crate::{BackendConfig, HttpRequest, SystemClock, TransportError, TransportErrorKind};

/// An [`HttpBackend`](crate::HttpBackend) on a [`reqwest::Client`]: rustls (ring, OS trust
/// store), HTTP/1.1 and HTTP/2, redirects off (a redirect is returned as a response, never
/// followed with the token), a connect timeout, a whole-request timeout and a response body
/// cap.
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
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(rustls_client_config(&config.extra_roots_pem)?)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone());
        if config.address_policy.is_restricted() {
            builder = builder.dns_resolver(std::sync::Arc::new(crate::resolve::PolicyResolver(
                config.address_policy.clone(),
            )));
        }
        let client = builder.build().map_err(map_error)?;
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

    /// The address check every request passes, and the request handed to reqwest.
    fn dispatch(
        &self,
        request: HttpRequest,
    ) -> Result<
        impl std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
        TransportError,
    > {
        crate::resolve::check_host(&request, &self.config.address_policy)?;
        Ok(self.client.execute(to_reqwest(request)?))
    }
}

crate::timeout::real_backend!(ReqwestBackend);

/// The whole body, up to `limit` bytes.
async fn read_whole(
    responding: impl Future<Output = reqwest::Result<reqwest::Response>>,
    limit: usize,
    _: std::time::Duration,
) -> Result<http::Response<bytes::Bytes>, TransportError> {
    let mut response = responding.await.map_err(map_error)?;
    // reqwest reads the declared `Content-Length` as the body's exact size.
    let mut body = CappedBody::new(limit, response.content_length())?;
    let out = head_of(&mut response);
    while let Some(chunk) = response.chunk().await.map_err(map_error)? {
        body.push(chunk)?;
    }
    Ok(out.map(|()| body.finish()))
}

/// The head now, the body as [`Chunks`].
async fn read_streaming(
    responding: impl Future<Output = reqwest::Result<reqwest::Response>>,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<http::Response<crate::BodyStream>, TransportError> {
    let mut response = responding.await.map_err(map_error)?;
    let limit = BodyLimit::new(limit, response.content_length())?;
    let out = head_of(&mut response);
    let chunks = Chunks {
        response,
        timeout,
        limit,
    };
    Ok(out.map(|()| Box::new(chunks) as crate::BodyStream))
}

/// The response's status, version and headers (taken out of it), for an `http` response.
fn head_of(response: &mut reqwest::Response) -> http::Response<()> {
    let mut head = http::Response::new(());
    *head.status_mut() = response.status();
    *head.version_mut() = response.version();
    *head.headers_mut() = std::mem::take(response.headers_mut());
    head
}

/// A reqwest response's body, a chunk at a time, each within the request timeout.
struct Chunks {
    response: reqwest::Response,
    timeout: std::time::Duration,
    limit: BodyLimit,
}

#[async_trait::async_trait]
impl crate::BodyChunks for Chunks {
    async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, TransportError>> {
        let next = Within::new(SystemClock::deadline(self.timeout), async {
            self.response.chunk().await.map_err(map_error)
        })
        .await;
        match next {
            Ok(Some(chunk)) => Some(self.limit.count(&chunk).map(|()| chunk)),
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

/// `request` for reqwest, as `reqwest::Request::try_from` makes it (extensions aside: igdisplay
/// sets none) but with the URL written into a string sized once: `Uri`'s `to_string` grows its
/// string a piece at a time, four reallocations per request.
fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, TransportError> {
    let (parts, body) = request.into_parts();
    let (Some(scheme), Some(authority)) = (parts.uri.scheme_str(), parts.uri.authority()) else {
        return Err(TransportError::new(TransportErrorKind::InvalidRequest));
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut url = String::with_capacity(scheme.len() + 3 + authority.as_str().len() + path.len());
    for piece in [scheme, "://", authority.as_str(), path] {
        url.push_str(piece);
    }
    let url =
        reqwest::Url::parse(&url).map_err(|_| TransportError::new(TransportErrorKind::InvalidRequest))?;
    let mut out = reqwest::Request::new(parts.method, url);
    *out.headers_mut() = parts.headers;
    *out.version_mut() = parts.version;
    *out.body_mut() = Some(body.into());
    Ok(out)
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

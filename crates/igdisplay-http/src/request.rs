//! [`HttpRequest`]: what a backend sends, and never shows a secret when printed.

use bytes::Bytes;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// A request: method, URI, headers and a fully buffered body. It is an [`http::Request`]
/// (read and change it through `Deref`, take it apart with [`into_parts`](Self::into_parts)),
/// except when printed: its `Debug` shows the method, the URI with its secrets masked
/// ([`redact_http_uri`](crate::redact_http_uri)), the header names and the body's length, so
/// a `{:?}` anywhere (a log line, a panic message, a test's failure) never shows an access
/// token, an authorization code or the app secret a form body carries.
///
/// ```
/// use igdisplay_http::{HttpRequest, bytes::Bytes, http};
///
/// let inner = http::Request::post("https://api.instagram.com/oauth/access_token?access_token=IGQVJsecret")
///     .header("content-type", "application/x-www-form-urlencoded")
///     .body(Bytes::from_static(b"client_secret=s3cr3t&code=AQBcode"))?;
/// let request = HttpRequest::from(inner);
/// assert_eq!(request.method(), http::Method::POST);
/// let shown = format!("{request:?}");
/// assert!(!shown.contains("IGQVJsecret") && !shown.contains("s3cr3t") && !shown.contains("AQBcode"));
/// assert!(shown.contains("access_token=[redacted]") && shown.contains("33 bytes"));
/// # Ok::<(), http::Error>(())
/// ```
#[derive(Default)]
pub struct HttpRequest(http::Request<Bytes>);

impl HttpRequest {
    /// A `GET` of `/` with `body`, as [`http::Request::new`]: set the rest through `Deref`.
    pub fn new(body: Bytes) -> Self {
        Self(http::Request::new(body))
    }

    /// The [`http::Request`] inside.
    pub fn into_inner(self) -> http::Request<Bytes> {
        self.0
    }

    /// The body, as [`http::Request::into_body`].
    pub fn into_body(self) -> Bytes {
        self.0.into_body()
    }

    /// The head and the body, as [`http::Request::into_parts`].
    pub fn into_parts(self) -> (http::request::Parts, Bytes) {
        self.0.into_parts()
    }

    /// A request from a head and a body, as [`http::Request::from_parts`].
    pub fn from_parts(parts: http::request::Parts, body: Bytes) -> Self {
        Self(http::Request::from_parts(parts, body))
    }
}

impl From<http::Request<Bytes>> for HttpRequest {
    fn from(request: http::Request<Bytes>) -> Self {
        Self(request)
    }
}

impl From<HttpRequest> for http::Request<Bytes> {
    fn from(request: HttpRequest) -> Self {
        request.0
    }
}

impl Deref for HttpRequest {
    type Target = http::Request<Bytes>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for HttpRequest {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// The header names, without their values (an `Authorization` carries a token).
        struct Names<'a>(&'a http::HeaderMap);
        impl fmt::Debug for Names<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.keys()).finish()
            }
        }
        /// The body's length, never its bytes (a form carries the app secret and the code).
        struct Length(usize);
        impl fmt::Debug for Length {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} bytes", self.0)
            }
        }
        f.debug_struct("HttpRequest")
            .field("method", self.0.method())
            .field("uri", &crate::redact_http_uri(self.0.uri()))
            .field("version", &self.0.version())
            .field("headers", &Names(self.0.headers()))
            .field("body", &Length(self.0.body().len()))
            .finish()
    }
}

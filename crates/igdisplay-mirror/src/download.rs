//! [`Downloader`]: the one way media enter igdisplay. Links come from Instagram's answers,
//! so a hostile or broken answer may name anything; the downloader goes only to Instagram's CDN
//! (or an origin configured besides it, such as a mock), over https, follows redirects itself
//! under the same rule, and takes only images and videos of bounded size. Its backend connects
//! to public addresses only ([`DownloadPolicy::backend_config`]).

use bytes::Bytes;
use igdisplay_http::http::{self, Method, StatusCode, Uri};
use igdisplay_http::{AddressPolicy, BackendConfig, BodyStream, SharedBackend, TransportError};

/// The host suffixes of Instagram's CDN.
pub const INSTAGRAM_CDN: &[&str] = &["cdninstagram.com", "fbcdn.net"];

/// Where media may come from, and what is taken.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadPolicy {
    /// Host suffixes allowed over https: Instagram's CDN ([`INSTAGRAM_CDN`]).
    pub cdn_suffixes: Vec<String>,
    /// Origins allowed besides (`scheme://host[:port]`), over http too and on any address:
    /// a mock's, a test server's.
    pub extra_origins: Vec<String>,
    /// Redirects followed at most. Default 5.
    pub max_redirects: u8,
    /// The largest file taken, in bytes, streamed to its file (a video). Default 256 MiB.
    pub max_bytes: usize,
    /// The largest file read into memory ([`Downloader::get`], an image to resize). Default
    /// 64 MiB.
    pub max_memory_bytes: usize,
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        Self {
            cdn_suffixes: INSTAGRAM_CDN.iter().map(|s| (*s).to_owned()).collect(),
            extra_origins: Vec::new(),
            max_redirects: 5,
            max_bytes: 256 * 1024 * 1024,
            max_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

impl DownloadPolicy {
    /// Instagram's CDN only.
    pub fn instagram() -> Self {
        Self::default()
    }

    /// Allows `origin` (`scheme://host[:port]`, a trailing path ignored) besides the CDN:
    /// the mock's base URL, for a site or a test running against it.
    #[must_use]
    pub fn allow_origin(mut self, origin: &str) -> Self {
        if let Some(origin) = origin.parse().ok().and_then(|uri| origin_of(&uri)) {
            self.extra_origins.push(origin);
        }
        self
    }

    /// Sets the largest file taken (and read into memory, when that is lower).
    #[must_use]
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self.max_memory_bytes = self.max_memory_bytes.min(bytes);
        self
    }

    /// The addresses a downloading backend may connect to: public ones, and the hosts of
    /// the extra origins.
    pub fn address_policy(&self) -> AddressPolicy {
        AddressPolicy::public_only(
            self.extra_origins
                .iter()
                .filter_map(|origin| origin.parse::<Uri>().ok())
                .filter_map(|uri| uri.host().map(str::to_owned)),
        )
    }

    /// The configuration of a backend for this policy: public addresses only (but the extra
    /// origins'), and a body cap of [`max_bytes`](Self::max_bytes).
    pub fn backend_config(&self) -> BackendConfig {
        BackendConfig::default()
            .address_policy(self.address_policy())
            .max_body_bytes(self.max_bytes)
    }

    /// Whether `url` may be fetched: the CDN over https, or an extra origin.
    ///
    /// ```
    /// use igdisplay_mirror::{DownloadError, DownloadPolicy};
    ///
    /// let policy = DownloadPolicy::instagram().allow_origin("http://127.0.0.1:8787");
    /// assert!(policy.check("https://scontent-iad3-1.cdninstagram.com/v/t51.jpg?oe=1").is_ok());
    /// assert!(policy.check("http://127.0.0.1:8787/cdn/photo.jpg").is_ok());
    /// assert!(matches!(policy.check("http://scontent.cdninstagram.com/a.jpg"), Err(DownloadError::Scheme)));
    /// assert!(matches!(policy.check("https://169.254.169.254/latest"), Err(DownloadError::Host)));
    /// assert!(matches!(policy.check("https://cdninstagram.com.evil.example/a.jpg"), Err(DownloadError::Host)));
    /// assert!(matches!(policy.check("file:///etc/passwd"), Err(DownloadError::Scheme)));
    /// ```
    ///
    /// # Errors
    ///
    /// [`DownloadError::InvalidUrl`], [`DownloadError::Scheme`] or [`DownloadError::Host`].
    pub fn check(&self, url: &str) -> Result<Uri, DownloadError> {
        // A scheme other than http(s) is refused as such, parsed or not (`file:///…` has no
        // authority for `Uri`).
        if let Some((scheme, _)) = url.split_once(':')
            && !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !scheme.eq_ignore_ascii_case("http")
            && !scheme.eq_ignore_ascii_case("https")
        {
            return Err(DownloadError::Scheme);
        }
        let uri: Uri = url.parse().map_err(|_| DownloadError::InvalidUrl)?;
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return match uri.scheme_str() {
                Some("http" | "https") | None => Err(DownloadError::InvalidUrl),
                Some(_) => Err(DownloadError::Scheme),
            };
        };
        if let Some(origin) = origin_of(&uri)
            && self.extra_origins.contains(&origin)
        {
            return Ok(uri);
        }
        if scheme != "https" {
            return Err(DownloadError::Scheme);
        }
        let host = host.to_ascii_lowercase();
        let on_cdn = self.cdn_suffixes.iter().any(|suffix| {
            host.strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
        });
        if !on_cdn || uri.port_u16().is_some_and(|port| port != 443) {
            return Err(DownloadError::Host);
        }
        Ok(uri)
    }
}

/// `scheme://host[:port]` of a URL, lowercased, the default port left out; `None` for a URL
/// without both.
fn origin_of(uri: &Uri) -> Option<String> {
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = match (scheme.as_str(), uri.port_u16()) {
        ("http", Some(80)) | ("https", Some(443)) | (_, None) => String::new(),
        (_, Some(port)) => format!(":{port}"),
    };
    Some(format!("{scheme}://{host}{port}"))
}

/// Why a download did not happen or was not taken. Never holds the URL (a signed CDN link).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DownloadError {
    /// Not a URL.
    #[error("the link is not a valid URL")]
    InvalidUrl,
    /// Not https (nor an allowed origin): `http:` to the CDN, `file:`, `javascript:`, …
    #[error("the link's scheme is not allowed (https to Instagram's CDN only)")]
    Scheme,
    /// A host that is not Instagram's CDN (nor an allowed origin).
    #[error("the link's host is not Instagram's CDN")]
    Host,
    /// More redirects than the policy follows, or a redirect without a location.
    #[error("the download was redirected too often, or without a location")]
    Redirects,
    /// The CDN refused the link: it expired (Instagram's signed links do after a while).
    #[error("the link has expired")]
    Expired,
    /// Another status than success.
    #[error("the server answered {0}")]
    Status(u16),
    /// Not an image or a video.
    #[error("the file is not an image or a video (`{0}`)")]
    ContentType(String),
    /// The file grew past the cap taken (the policy's, or a download's [`Download::limit`]).
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
    /// The transport failed (connection, timeout, a body over the cap, an address refused).
    #[error("the download failed")]
    Transport(#[source] TransportError),
}

/// A downloaded file.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Downloaded {
    /// Its bytes.
    pub bytes: Bytes,
    /// Its content type (`image/jpeg`, `video/mp4`), lowercased, parameters dropped.
    pub content_type: String,
}

/// Downloads media under a [`DownloadPolicy`], through an `HttpBackend`. Cheap to clone.
///
/// ```
/// use igdisplay_http::http;
/// use igdisplay_http::test_util::{CapturingBackend, FnBackend};
/// use igdisplay_mirror::{DownloadError, DownloadPolicy, Downloader};
/// use std::sync::Arc;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// // The backend would be `default_backend(policy.backend_config())`; here one that answers
/// // every request with a redirect to the cloud's metadata address.
/// let redirecting = FnBackend::new(|_| {
///     let mut response = http::Response::new(igdisplay_http::bytes::Bytes::new());
///     *response.status_mut() = http::StatusCode::FOUND;
///     response.headers_mut().insert("location", http::HeaderValue::from_static("http://169.254.169.254/latest/"));
///     Ok(response)
/// });
/// let backend = CapturingBackend::new(redirecting);
/// let downloader = Downloader::new(Arc::new(backend.clone()), DownloadPolicy::instagram());
/// let refused = downloader.get("https://scontent.cdninstagram.com/v/a.jpg").await.unwrap_err();
/// assert!(matches!(refused, DownloadError::Scheme));
/// assert_eq!(backend.count(), 1, "the redirect was not followed");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct Downloader {
    backend: SharedBackend,
    policy: DownloadPolicy,
}

impl Downloader {
    /// A downloader sending through `backend`: build it with
    /// [`DownloadPolicy::backend_config`], so no name resolving to a private address is
    /// reached either.
    pub fn new(backend: SharedBackend, policy: DownloadPolicy) -> Self {
        Self { backend, policy }
    }

    /// The policy.
    pub fn policy(&self) -> &DownloadPolicy {
        &self.policy
    }

    /// Downloads `url` into memory: [`open`](Self::open), then the body read whole, up to
    /// [`DownloadPolicy::max_memory_bytes`] (for an image to resize; a video goes to its file
    /// with `open`).
    ///
    /// # Errors
    ///
    /// Every [`DownloadError`]; nothing is sent for a link the policy refuses.
    pub async fn get(&self, url: &str) -> Result<Downloaded, DownloadError> {
        let mut download = self.open(url).await?.limit(self.policy.max_memory_bytes);
        let mut bytes = bytes::BytesMut::new();
        while let Some(chunk) = download.next_chunk().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(Downloaded {
            bytes: bytes.freeze(),
            content_type: download.content_type,
        })
    }

    /// Starts downloading `url`: checked first, redirects followed under the same check, the
    /// answer an image or a video; its body then read a chunk at a time
    /// ([`Download::next_chunk`]), within the size cap, to be written to a file as it comes.
    ///
    /// # Errors
    ///
    /// Every [`DownloadError`]; nothing is sent for a link the policy refuses.
    pub async fn open(&self, url: &str) -> Result<Download, DownloadError> {
        let mut uri = self.policy.check(url)?;
        let mut redirects = 0u8;
        loop {
            let request = http::Request::builder()
                .method(Method::GET)
                .uri(uri.clone())
                .body(Bytes::new())
                .map_err(|_| DownloadError::InvalidUrl)?;
            let response = self
                .backend
                .send_streaming(request.into())
                .await
                .map_err(DownloadError::Transport)?;
            let status = response.status();
            if status.is_redirection() {
                redirects = redirects.saturating_add(1);
                let location = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|value| value.to_str().ok());
                let (Some(location), true) = (location, redirects <= self.policy.max_redirects) else {
                    return Err(DownloadError::Redirects);
                };
                uri = self.policy.check(&resolve(&uri, location))?;
                continue;
            }
            if status == StatusCode::FORBIDDEN || status == StatusCode::GONE {
                return Err(DownloadError::Expired);
            }
            if !status.is_success() {
                return Err(DownloadError::Status(status.as_u16()));
            }
            let content_type = content_type(response.headers());
            if !(content_type.starts_with("image/") || content_type.starts_with("video/")) {
                return Err(DownloadError::ContentType(content_type));
            }
            return Ok(Download {
                content_type,
                body: response.into_body(),
                read: 0,
                max_bytes: self.policy.max_bytes,
            });
        }
    }
}

/// A download under way ([`Downloader::open`]): its content type known, its body read a chunk
/// at a time.
#[derive(Debug)]
pub struct Download {
    /// Its content type (`image/jpeg`, `video/mp4`), lowercased, parameters dropped.
    pub content_type: String,
    body: BodyStream,
    read: usize,
    max_bytes: usize,
}

impl Download {
    /// Takes at most `bytes` of this file (at most the policy's cap already).
    #[must_use]
    pub fn limit(mut self, bytes: usize) -> Self {
        self.max_bytes = self.max_bytes.min(bytes);
        self
    }

    /// The next chunk of the file; `None` at its end.
    ///
    /// # Errors
    ///
    /// [`DownloadError::Transport`]: the connection failed or a chunk was late;
    /// [`DownloadError::TooLarge`]: the file grew past this download's cap (counted here,
    /// whatever the backend does).
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, DownloadError>> {
        let chunk = match self.body.next_chunk().await? {
            Ok(chunk) => chunk,
            Err(error) => return Some(Err(DownloadError::Transport(error))),
        };
        self.read = self.read.saturating_add(chunk.len());
        if self.read > self.max_bytes {
            return Some(Err(DownloadError::TooLarge(self.max_bytes)));
        }
        Some(Ok(chunk))
    }
}

/// The response's content type, lowercased, without parameters (`image/jpg` as `image/jpeg`).
fn content_type(headers: &http::HeaderMap) -> String {
    let value = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if value == "image/jpg" {
        "image/jpeg".to_owned()
    } else {
        value
    }
}

/// `location` against `base`: absolute as it is, `//host/...` on the base's scheme, `/path`
/// on the base's origin (a relative path without `/` on the base's folder).
fn resolve(base: &Uri, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let scheme = base.scheme_str().unwrap_or("https");
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let authority = base.authority().map_or("", |a| a.as_str());
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let folder = base.path().rsplit_once('/').map_or("", |(folder, _)| folder);
    format!("{scheme}://{authority}{folder}/{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_links_are_refused_before_anything_is_sent() {
        let policy = DownloadPolicy::instagram().allow_origin("http://127.0.0.1:8787/");
        for (url, refused) in [
            ("file:///etc/passwd", "scheme"),
            ("javascript:alert(1)", "scheme"),
            ("ftp://scontent.cdninstagram.com/a.jpg", "scheme"),
            ("http://scontent.cdninstagram.com/a.jpg", "scheme"),
            ("https://127.0.0.1/a.jpg", "host"),
            ("https://127.0.0.1:9999/a.jpg", "host"),
            ("http://127.0.0.1:9999/a.jpg", "scheme"),
            ("https://169.254.169.254/latest/meta-data", "host"),
            ("https://10.0.0.1/a.jpg", "host"),
            ("https://evil.example/a.jpg", "host"),
            ("https://cdninstagram.com.evil.example/a.jpg", "host"),
            ("https://evilcdninstagram.com/a.jpg", "host"),
            ("https://scontent.cdninstagram.com:8443/a.jpg", "host"),
            ("not a url", "url"),
        ] {
            let error = policy.check(url).unwrap_err();
            let kind = match error {
                DownloadError::Scheme => "scheme",
                DownloadError::Host => "host",
                DownloadError::InvalidUrl => "url",
                _ => "other",
            };
            assert_eq!(kind, refused, "{url}");
        }
        for url in [
            "https://scontent-iad3-1.cdninstagram.com/v/t51/a.jpg?oe=1",
            "https://video.xx.fbcdn.net/v/a.mp4",
            "https://SCONTENT.CDNINSTAGRAM.COM/a.jpg",
            "http://127.0.0.1:8787/cdn/a.jpg",
        ] {
            assert!(policy.check(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn the_extra_origins_hosts_are_the_only_private_ones_allowed() {
        let policy = DownloadPolicy::instagram().allow_origin("http://127.0.0.1:8787");
        assert_eq!(policy.address_policy(), AddressPolicy::public_only(["127.0.0.1"]));
        assert_eq!(
            DownloadPolicy::instagram().address_policy(),
            AddressPolicy::public_only(Vec::<String>::new())
        );
    }

    #[test]
    fn a_location_is_resolved_against_the_link() {
        let base: Uri = "https://a.cdninstagram.com/v/t51/a.jpg?oe=1".parse().unwrap();
        assert_eq!(resolve(&base, "https://b.fbcdn.net/x"), "https://b.fbcdn.net/x");
        assert_eq!(resolve(&base, "//b.fbcdn.net/x"), "https://b.fbcdn.net/x");
        assert_eq!(resolve(&base, "/x?y=1"), "https://a.cdninstagram.com/x?y=1");
        assert_eq!(resolve(&base, "b.jpg"), "https://a.cdninstagram.com/v/t51/b.jpg");
    }
}

//! [`FeedService`]: one instance of the feed service. Every instance on the same database
//! and bucket serves every feed: the state is in the database (feeds, links, tokens, the
//! sync schedule) and the bucket (the mirrored posts); an instance keeps only a cache of
//! rendered pages, checked against the database at most [`FeedsConfig::cache_ttl`] late.

use crate::settings::FeedSettings;
use crate::view::FeedState;
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use igdisplay::Instagram;
use igdisplay::model::UserId;
use igdisplay::store::{AppBudget, FeedRow, SqlStore};
use igdisplay_mirror::{FileBody, FileServer, Mirror};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How an instance of the service runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FeedsConfig {
    /// The service's public address (`https://feeds.example.com`): connect links and the
    /// login's redirect URI (`{public_url}/v1/connect/callback`) are made from it.
    pub public_url: String,
    /// Where pages point for media: the bucket's public URL or a CDN in front of it, each
    /// blob key appended (`{media_base}/{key}`). `None`: the service serves them itself at
    /// `{public_url}/v1/media/{key}` (from a folder only).
    pub media_base: Option<String>,
    /// How long a connect link works. Default 7 days.
    pub connect_ttl: Duration,
    /// How late an instance may see a change made on another: a feed it serves is checked
    /// against the database this often (two indexed reads, by one request at a time), and its
    /// posts read again from the bucket only when the feed or its account's syncs changed.
    /// Default 1 s.
    pub cache_ttl: Duration,
    /// The most feeds an instance keeps cached at once: its memory stays bounded however
    /// many feeds it serves. Default 10,000.
    pub cache_feeds: usize,
    /// This instance's name in the sync schedule's leases.
    pub owner: String,
    /// Accounts one pass of the scheduler claims. Default 8.
    pub sync_batch: u32,
    /// Syncs an instance runs at once (each waits on Instagram and the bucket more than it
    /// computes). Default 4.
    pub sync_concurrency: usize,
    /// How long a claimed sync is this instance's before another may take it over. Default
    /// [`igdisplay_mirror::SYNC_LEASE`].
    pub sync_lease: Duration,
    /// How long the scheduler waits when nothing is due. Default 5 s.
    pub idle: Duration,
    /// The mirror's folder, when media are served from one at `/v1/media/{key}` (with ranges
    /// and validators) rather than from [`media_base`](Self::media_base).
    pub media_folder: Option<std::path::PathBuf>,
}

impl FeedsConfig {
    /// The defaults for a service at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            media_base: None,
            connect_ttl: Duration::from_secs(7 * 86_400),
            cache_ttl: Duration::from_secs(1),
            cache_feeds: 10_000,
            owner: format!("feeds-{}", std::process::id()),
            sync_batch: 8,
            sync_concurrency: 4,
            sync_lease: igdisplay_mirror::SYNC_LEASE,
            idle: Duration::from_secs(5),
            media_folder: None,
        }
    }

    /// The redirect URI to register in the Meta app (and to build the client with).
    pub fn callback_url(&self) -> String {
        format!("{}/v1/connect/callback", self.public_url)
    }

    /// The URL of the feed `id`.
    pub fn feed_url(&self, id: &str) -> String {
        format!("{}/v1/feeds/{id}", self.public_url)
    }

    /// Where media are served from.
    pub fn media_base(&self) -> String {
        self.media_base
            .clone()
            .unwrap_or_else(|| format!("{}/v1/media", self.public_url))
    }
}

/// One instance of the feed service. Cheap to clone.
#[derive(Clone)]
pub struct FeedService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: SqlStore,
    pub(crate) mirror: Mirror,
    pub(crate) instagram: Instagram,
    pub(crate) config: FeedsConfig,
    /// The app's budget the syncs book their calls in.
    pub(crate) budget: AppBudget,
    /// The mirror's folder, when media are served from one.
    pub(crate) files: Option<FileServer>,
    pub(crate) cache: Mutex<HashMap<String, Arc<Cached>>>,
    /// Renders what the `metrics` facade recorded, for `/metrics`.
    pub(crate) metrics: Option<Renderer>,
    /// Requests answered, for their ids.
    pub(crate) requests: std::sync::atomic::AtomicU64,
    /// This instance's part of every request id it makes (random).
    pub(crate) id_prefix: String,
    /// Set once the scheduler's shutdown came: no sync starts, no budget wait goes on.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// Wakes the budget waits when [`stopping`](Self::stopping) is set.
    pub(crate) stop: tokio::sync::Notify,
}

/// Renders the recorded metrics in Prometheus' text format (the exporter's `render`).
pub type Renderer = Arc<dyn Fn() -> String + Send + Sync>;

/// A feed as an instance last read it: its row, where it stands and the posts it shows,
/// with the pages rendered so far (by offset and size).
pub(crate) struct Cached {
    pub(crate) row: FeedRow,
    pub(crate) settings: FeedSettings,
    pub(crate) state: FeedState,
    /// The account's syncs when it was read: another count means its posts may have changed.
    pub(crate) syncs: i64,
    pub(crate) synced_at: Option<igdisplay::model::Timestamp>,
    pub(crate) items: Vec<igdisplay_mirror::FeedItem>,
    pub(crate) pages: Mutex<HashMap<(usize, usize), (Bytes, HeaderValue)>>,
    /// Where its pages point for media.
    pub(crate) media_base: String,
    /// Until when it is served without asking the database (Unix milliseconds, the
    /// instance's clock).
    pub(crate) until: std::sync::atomic::AtomicU64,
    /// Whether a request is checking it against the database now (the others serve it).
    pub(crate) checking: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for FeedService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedService")
            .field("public_url", &self.inner.config.public_url)
            .field("owner", &self.inner.config.owner)
            .finish_non_exhaustive()
    }
}

/// A response of the service.
pub type Answer = Response<FileBody>;

impl FeedService {
    /// An instance over `store` (feeds, tokens, schedule), `mirror` (the posts) and
    /// `instagram` (a client whose redirect URI is [`FeedsConfig::callback_url`] and whose
    /// token store is `store`).
    ///
    /// # Errors
    ///
    /// When [`FeedsConfig::media_folder`] names a folder that cannot be opened.
    pub fn new(
        store: SqlStore,
        mirror: Mirror,
        instagram: Instagram,
        config: FeedsConfig,
    ) -> std::io::Result<Self> {
        let files = config.media_folder.as_deref().map(FileServer::new).transpose()?;
        let budget = AppBudget::new(&store, Some(instagram.pacer().clone()), None);
        Ok(Self {
            inner: Arc::new(Inner {
                budget,
                store,
                mirror,
                instagram,
                config,
                files,
                cache: Mutex::new(HashMap::new()),
                metrics: None,
                requests: std::sync::atomic::AtomicU64::new(0),
                id_prefix: igdisplay::auth::random_hex(4).unwrap_or_else(|_| "feeds".to_owned()),
                stopping: std::sync::atomic::AtomicBool::new(false),
                stop: tokio::sync::Notify::new(),
            }),
        })
    }

    /// Serves `/metrics` with `render` (a Prometheus exporter's), the fleet's and the feeds'
    /// gauges read from the database at each scrape. Call before the service is cloned.
    #[must_use]
    pub fn with_metrics(mut self, render: Renderer) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.metrics = Some(render);
        }
        self
    }

    /// Books the syncs' Graph calls in `budget`, the keeper's ([`Keeper::budget`](igdisplay::store::Keeper::budget)),
    /// so that refreshes and syncs share one quota; by default the syncs share the app's
    /// pauses and usage with every instance but book in no quota. Call before the service is
    /// cloned.
    #[must_use]
    pub fn with_budget(mut self, budget: AppBudget) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.budget = budget;
        }
        self
    }

    /// The store.
    pub fn store(&self) -> &SqlStore {
        &self.inner.store
    }

    /// Feeds this instance holds in its cache now (at most [`FeedsConfig::cache_feeds`]).
    pub fn cached_feeds(&self) -> usize {
        self.inner.cache.lock().map_or(0, |cache| cache.len())
    }

    /// The configuration.
    pub fn config(&self) -> &FeedsConfig {
        &self.inner.config
    }

    /// Answers one request, recording it (its route, status and time).
    pub async fn handle<B>(&self, request: Request<B>) -> Answer
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use tracing::Instrument as _;
        let clock = self.inner.instagram.clock().clone();
        let started = clock.now();
        // The path split once: for the route's label and for the router.
        let path = request.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let route = route_of(&segments);
        let id = self.request_id(request.headers().get("x-request-id"));
        // Reads (a feed, media, the widget, health) are the service's bulk: logged at DEBUG
        // unless they fail, so a busy instance does not format a line per page view.
        let reads = matches!(route, "feed" | "media" | "widget" | "operations");
        let span = if reads {
            tracing::debug_span!("request", request_id = %id, route)
        } else {
            tracing::info_span!("request", request_id = %id, method = %request.method(), route)
        };
        let mut answer = self.route(&segments, request).instrument(span).await;
        let took = clock.now().duration_since(started).unwrap_or_default();
        let status = answer.status();
        let ms = took.as_millis();
        if status.is_server_error() {
            tracing::warn!(request_id = %id, route, status = status.as_u16(), ms, "answered");
        } else if reads {
            tracing::debug!(request_id = %id, route, status = status.as_u16(), ms, "answered");
        } else {
            tracing::info!(request_id = %id, route, status = status.as_u16(), ms, "answered");
        }
        if let Ok(id) = HeaderValue::from_str(&id) {
            answer.headers_mut().insert("x-request-id", id);
        }
        metrics::counter!("igdisplay_feeds_requests_total", "route" => route, "status" => status_label(status))
            .increment(1);
        metrics::histogram!("igdisplay_feeds_request_seconds", "route" => route).record(took.as_secs_f64());
        answer
    }

    /// A request's id: the proxy's `X-Request-Id` when it is a plain token (letters, digits,
    /// `-`, at most 64), else this instance's prefix and a number; answered in the same header
    /// and named in the request's log lines.
    fn request_id(&self, sent: Option<&HeaderValue>) -> String {
        let sane = |id: &&str| {
            !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        match sent.and_then(|v| v.to_str().ok()).filter(sane) {
            Some(id) => id.to_owned(),
            None => {
                let n = self
                    .inner
                    .requests
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                format!("{}-{n:x}", self.inner.id_prefix)
            }
        }
    }

    async fn route<B>(&self, segments: &[&str], request: Request<B>) -> Answer
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = request.method().clone();
        match (&method, segments) {
            (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
            (&Method::GET, ["readyz"]) => self.ready().await,
            (&Method::GET, ["metrics"]) => self.metrics().await,
            (&Method::GET | &Method::HEAD, ["v1", "widget.js"]) => widget(&request),
            (_, ["v1", "feeds", id]) => self.public_feed(&method, id, &request).await,
            (&Method::GET | &Method::HEAD, ["v1", "media", ..]) => self.media(&request).await,
            (_, ["v1", "admin", rest @ ..]) => self.admin(rest, request).await,
            (&Method::GET, ["v1", "connect", "callback"]) => self.callback(&request).await,
            (&Method::GET, ["v1", "connect", secret]) => self.connect(secret).await,
            (&Method::POST, ["v1", "meta", "deauthorize"]) => self.meta(false, request).await,
            (&Method::POST, ["v1", "meta", "data-deletion"]) => self.meta(true, request).await,
            (&Method::GET, ["v1", "meta", "deletion"]) => self.deletion_status(),
            _ => problem(StatusCode::NOT_FOUND, "not_found", "no such resource"),
        }
    }

    /// `/metrics`: what was recorded, with the database's figures read now.
    async fn metrics(&self) -> Answer {
        let Some(render) = &self.inner.metrics else {
            return problem(StatusCode::NOT_FOUND, "not_found", "metrics are not served here");
        };
        if let Err(error) = self.inner.store.record_metrics().await {
            return crate::admin::unavailable(&error);
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "a gauge is an f64; the cache is bounded"
        )]
        metrics::gauge!("igdisplay_feeds_cached").set(self.cached_feeds() as f64);
        let mut response = Response::new(FileBody::bytes(Bytes::from(render())));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        response
    }

    /// `/readyz`: the database answers and the bucket can be read.
    async fn ready(&self) -> Answer {
        let database = self.inner.store.is_ready().await.unwrap_or(false);
        let probe = UserId::new("readyz");
        let bucket = self.inner.mirror.index(&probe).await.is_ok();
        if database && bucket {
            text(StatusCode::OK, "ready")
        } else {
            let why = match (database, bucket) {
                (false, false) => "the database and the bucket are unreachable",
                (false, true) => "the database is unreachable",
                _ => "the bucket is unreachable",
            };
            text(StatusCode::SERVICE_UNAVAILABLE, why)
        }
    }

    /// `/v1/media/{key}` from the mirror's folder.
    async fn media<B>(&self, request: &Request<B>) -> Answer {
        let Some(files) = &self.inner.files else {
            return problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "media are served from the bucket's public URL",
            );
        };
        let key = request.uri().path().trim_start_matches("/v1/media/").to_owned();
        if !key.starts_with("media/") {
            return problem(StatusCode::NOT_FOUND, "not_found", "no such file");
        }
        let mut response = files.respond(request.method(), &key, request.headers()).await;
        if Mirror::is_immutable(&key) {
            set(
                &mut response,
                &[(header::CACHE_CONTROL, "public, max-age=31536000, immutable")],
            );
        }
        set(&mut response, &cross_origin());
        response
    }

    /// Drops this instance's cache of the feed `id` (after a change made here).
    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.remove(id);
        }
    }
}

/// The widget's script ([`WIDGET_JS`]), with a validator and a day of caching.
fn widget<B>(request: &Request<B>) -> Answer {
    static ETAG: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    let etag = ETAG.get_or_init(|| {
        HeaderValue::from_str(&crate::view::etag_of(WIDGET_JS.as_bytes()))
            .unwrap_or(HeaderValue::from_static("\"w\""))
    });
    let held = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag == etag);
    let mut response = match (held, request.method() == Method::HEAD) {
        (true, _) => answer(StatusCode::NOT_MODIFIED, FileBody::empty(), &[]),
        (false, true) => answer(StatusCode::OK, FileBody::empty(), &[]),
        (false, false) => answer(
            StatusCode::OK,
            FileBody::bytes(Bytes::from_static(WIDGET_JS.as_bytes())),
            &[],
        ),
    };
    set(
        &mut response,
        &[
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (
                header::CACHE_CONTROL,
                "public, max-age=300, stale-while-revalidate=86400",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
    );
    set(&mut response, &cross_origin());
    response.headers_mut().insert(header::ETAG, etag.clone());
    response
}

/// The embeddable widget, `GET /v1/widget.js`: the custom element `<ig-feed feed="ID"
/// layout="grid|carousel" columns="3">`, in a shadow root, with a lightbox.
pub const WIDGET_JS: &str = include_str!("../widget/widget.js");

/// The status as a metric label (the statuses the service answers, each a static string).
fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        206 => "206",
        303 => "303",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        410 => "410",
        413 => "413",
        416 => "416",
        422 => "422",
        503 => "503",
        _ => "other",
    }
}

/// The route a path (its segments) is counted under (never the path itself: ids and secrets
/// stay out of the metrics).
fn route_of(segments: &[&str]) -> &'static str {
    match segments {
        ["v1", "feeds", _] => "feed",
        ["v1", "widget.js"] => "widget",
        ["v1", "media", ..] => "media",
        ["v1", "admin", ..] => "admin",
        ["v1", "connect", ..] => "connect",
        ["v1", "meta", ..] => "meta",
        ["healthz" | "readyz" | "metrics"] => "operations",
        _ => "other",
    }
}

/// The headers that let any page use an answer (the widget, media).
fn cross_origin() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "cross-origin",
        ),
    ]
}

/// An answer of `status` with `body` and `headers`.
pub(crate) fn answer(
    status: StatusCode,
    body: FileBody,
    headers: &[(header::HeaderName, &'static str)],
) -> Answer {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    set(&mut response, headers);
    response
}

/// Sets `headers` (static values) on `response`.
pub(crate) fn set(response: &mut Answer, headers: &[(header::HeaderName, &'static str)]) {
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name.clone(), HeaderValue::from_static(value));
    }
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: &'static str) -> Answer {
    let body = FileBody::bytes(Bytes::from_static(body.as_bytes()));
    answer(
        status,
        body,
        &[(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
    )
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Answer {
    let body = FileBody::bytes(Bytes::from(serde_json::to_vec(value).unwrap_or_default()));
    answer(
        status,
        body,
        &[
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
}

/// An error as JSON: `{"error": {"code": …, "message": …}}`.
pub(crate) fn problem(status: StatusCode, code: &str, message: &str) -> Answer {
    json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}

/// An HTML page (the connect flow's end), with a policy that runs no script.
pub(crate) fn page(status: StatusCode, title: &str, message: &str) -> Answer {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{0}</title>\
         <main><h1>{0}</h1><p>{1}</p></main></html>",
        escape(title),
        escape(message)
    );
    answer(
        status,
        FileBody::bytes(Bytes::from(body)),
        &[
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
}

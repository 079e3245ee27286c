//! `GET /v1/feeds/{id}`: a feed's posts as JSON, a page at a time, to the pages of the
//! origins the feed allows, with validators and cache headers.

use crate::service::{Answer, Cached, FeedService, answer, problem};
use crate::settings::FeedSettings;
use crate::view::{DEFAULT_PAGE, FeedState, MAX_PAGE, Snapshot, offset_of, render_page, select};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use igdisplay_mirror::FileBody;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What a page is cached for by browsers and CDNs: briefly, then served stale while it is
/// fetched again.
const CACHE_CONTROL: &str = "public, max-age=5, stale-while-revalidate=60";

impl FeedService {
    /// `GET`, `HEAD` or `OPTIONS` (a preflight) of `/v1/feeds/{id}`.
    pub(crate) async fn public_feed<B>(&self, method: &Method, id: &str, request: &Request<B>) -> Answer {
        if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "read a feed with GET",
            );
        }
        let feed = match self.cached(id).await {
            Ok(Some(feed)) => feed,
            Ok(None) => return problem(StatusCode::NOT_FOUND, "not_found", "no such feed"),
            Err(error) => {
                tracing::warn!(feed = id, error = %error, "a feed could not be read");
                return problem(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the feed cannot be read right now",
                );
            }
        };
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok());
        // A page of another origin gets no feed (not only a response the browser hides).
        if let Some(origin) = origin
            && !feed.settings.allows_origin(origin)
        {
            return problem(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "this feed is not shown on this site",
            );
        }
        let mut response = if *method == Method::OPTIONS {
            preflight()
        } else {
            match paging(request.uri().query().unwrap_or("")) {
                Ok((offset, limit)) => page_of(&feed, request, offset, limit),
                Err((code, message)) => problem(StatusCode::BAD_REQUEST, code, message),
            }
        };
        if *method == Method::HEAD {
            *response.body_mut() = FileBody::empty();
        }
        cors(response.headers_mut(), &feed.settings, origin);
        response
    }

    /// The feed `id` as this instance knows it: from the cache while it is young; then checked
    /// against the database (its row and its account's state and syncs), by one request at a
    /// time while the others are served what the instance has; read again from the bucket
    /// only when something changed. A database that does not answer leaves the feed served
    /// as it was.
    pub(crate) async fn cached(&self, id: &str) -> Result<Option<Arc<Cached>>, ReadError> {
        let now = self.inner.instagram.clock().now();
        let known = self
            .inner
            .cache
            .lock()
            .ok()
            .and_then(|cache| cache.get(id).cloned());
        let Some(known) = known else {
            return self.read_feed(id, None, now).await;
        };
        if known.fresh_at(now) || known.checking.swap(true, Ordering::AcqRel) {
            return Ok(Some(known));
        }
        // Cleared however the check ends, a request dropped mid-way (its client gone) too.
        let checking = Checking(&known.checking);
        let read = self.read_feed(id, Some(&known), now).await;
        drop(checking);
        match read {
            Err(error) => {
                tracing::warn!(feed = id, %error, "a feed could not be checked; it is served as it was");
                Ok(Some(known))
            }
            read => read,
        }
    }

    /// Reads the feed `id`: its row and its account's standing from the database, and, unless
    /// they are what `known` was read with, its posts from the bucket.
    async fn read_feed(
        &self,
        id: &str,
        known: Option<&Arc<Cached>>,
        now: SystemTime,
    ) -> Result<Option<Arc<Cached>>, ReadError> {
        let Some(row) = self.inner.store.feed(id).await? else {
            self.forget(id);
            return Ok(None);
        };
        // From the database alone (a read of a feed never opens a token), by the rule the
        // metrics count with.
        let (state, syncs) = match &row.user_id {
            None => (FeedState::Pending, 0),
            Some(user) => self.inner.store.feed_state(user).await?,
        };
        let until = millis(now + self.inner.config.cache_ttl);
        if let Some(known) = known
            && (known.row.version, &known.row.user_id, &known.state, known.syncs)
                == (row.version, &row.user_id, &state, syncs)
        {
            // Nothing changed: the posts and pages read before are still the feed.
            known.until.store(until, Ordering::Release);
            return Ok(Some(known.clone()));
        }
        let settings: FeedSettings = serde_json::from_str(&row.settings)?;
        let (synced_at, items) = match &row.user_id {
            None => (None, Vec::new()),
            Some(user) => {
                let index = self.inner.mirror.index(user).await?;
                let items = match &index {
                    Some(index) => select(&self.inner.mirror, index, &settings).await?,
                    None => Vec::new(),
                };
                (index.as_ref().and_then(|i| i.synced_at), items)
            }
        };
        let entry = Arc::new(Cached {
            row,
            settings,
            state,
            syncs,
            synced_at,
            items,
            pages: Mutex::new(HashMap::new()),
            media_base: self.inner.config.media_base(),
            until: AtomicU64::new(until),
            checking: AtomicBool::new(false),
        });
        if let Ok(mut cache) = self.inner.cache.lock() {
            if cache.len() >= self.inner.config.cache_feeds {
                // Bounded: the expired go first; if all are young, the cache starts over.
                cache.retain(|_, cached| cached.fresh_at(now));
                if cache.len() >= self.inner.config.cache_feeds {
                    cache.clear();
                }
            }
            cache.insert(id.to_owned(), entry.clone());
        }
        Ok(Some(entry))
    }
}

/// The mark of a check under way, cleared when dropped.
struct Checking<'a>(&'a AtomicBool);

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Why a feed could not be read.
pub(crate) type ReadError = Box<dyn std::error::Error + Send + Sync>;

/// `time` in Unix milliseconds (0 before the epoch).
fn millis(time: SystemTime) -> u64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Cached {
    /// Whether it may be served at `now` without asking the database.
    pub(crate) fn fresh_at(&self, now: SystemTime) -> bool {
        self.until.load(Ordering::Acquire) > millis(now)
    }
}

/// The page of `limit` posts from `offset`, rendered once per cached feed, or 304 when the
/// client holds it.
fn page_of<B>(feed: &Cached, request: &Request<B>, offset: usize, limit: usize) -> Answer {
    let rendered = feed
        .pages
        .lock()
        .ok()
        .and_then(|pages| pages.get(&(offset, limit)).cloned());
    let (body, etag) = match rendered {
        Some(done) => done,
        None => {
            let snapshot = Snapshot {
                feed_id: &feed.row.id,
                state: &feed.state,
                synced_at: feed.synced_at,
                items: &feed.items,
                pinned: &feed.settings.pinned,
                media_base: &feed.media_base,
            };
            let (body, etag) = render_page(&snapshot, offset, limit);
            let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
            let done = (Bytes::from(body), etag);
            if let Ok(mut pages) = feed.pages.lock() {
                pages.insert((offset, limit), done.clone());
            }
            done
        }
    };
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag.to_str().unwrap_or("")));
    let mut response = if unchanged {
        metrics::counter!("igdisplay_feeds_not_modified_total").increment(1);
        let mut response = Response::new(FileBody::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(FileBody::bytes(body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    response
}

/// `cursor` and `limit` of a query (anything else in it is ignored), or the error's code and
/// message.
fn paging(query: &str) -> Result<(usize, usize), (&'static str, &'static str)> {
    let mut offset = 0;
    let mut limit = DEFAULT_PAGE;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "cursor" => {
                offset = offset_of(value).ok_or(("bad_cursor", "the cursor is not one this feed gave"))?;
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_PAGE).contains(l))
                    .ok_or(("bad_limit", "limit is a number from 1 to 100"))?;
            }
            _ => {}
        }
    }
    Ok((offset, limit))
}

/// The answer to a preflight of an allowed origin.
fn preflight() -> Answer {
    answer(
        StatusCode::NO_CONTENT,
        FileBody::empty(),
        &[
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "if-none-match"),
            (header::ACCESS_CONTROL_MAX_AGE, "600"),
        ],
    )
}

/// The CORS headers of a feed's answer to `origin`: any page when the feed allows every
/// origin, else that origin alone (already checked).
fn cors(headers: &mut hyper::HeaderMap, settings: &FeedSettings, origin: Option<&str>) {
    let allowed = if settings.allowed_origins.is_empty() {
        Some(HeaderValue::from_static("*"))
    } else {
        origin.and_then(|o| HeaderValue::from_str(o).ok())
    };
    if let Some(allowed) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("etag"),
    );
}

#[cfg(test)]
mod tests {
    use super::Checking;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A request dropped in the middle of a check (its client gone) clears the mark: the
    /// feed is checked again by the next request, not served unchecked for ever.
    #[test]
    fn a_check_dropped_mid_way_clears_its_mark() {
        let mark = AtomicBool::new(true);
        let mut check = Box::pin(async {
            let _checking = Checking(&mark);
            std::future::pending::<()>().await;
        });
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(check.as_mut().poll(&mut context).is_pending());
        assert!(mark.load(Ordering::Acquire), "held while the check runs");
        drop(check);
        assert!(!mark.load(Ordering::Acquire));
    }
}

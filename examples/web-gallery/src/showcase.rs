//! Owner mode: the site's own account, logged in once, shown to every visitor from the
//! mirror. Images come from the site's origin (never from Instagram's CDN), the feed survives
//! expired links, Instagram outages and a revoked token (the last good one is shown), and a
//! background task keeps it in sync at the pace the account posts. Files leave through the
//! mirror's one file server, and only those the owner's current feed names.

use crate::{App, page};
use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use igdisplay::http::{Clock as _, SharedClock, SystemClock};
use igdisplay::model::Timestamp;
use igdisplay::model::UserId;
use igdisplay_mirror::{
    DownloadPolicy, Downloader, Feed, FeedIndex, FeedItem, FeedStatus, FileServer, FsBlobStore, Mirror,
    PurgeReport, SyncError, SyncReport,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

/// Tiles per page.
const PAGE: usize = 12;
/// The variant width a tile asks for.
const TILE_WIDTH: u32 = 640;

/// The mirror of the site owner's account.
#[derive(Debug)]
pub struct Showcase {
    mirror: Mirror,
    blobs: Arc<FsBlobStore>,
    files: FileServer,
    owner: RwLock<Option<UserId>>,
    /// The files the owner's current feed names, and the pages and live stories it was read
    /// from: only these are served (never a previous owner's, an expired story's, or a file no
    /// feed names).
    served: RwLock<(Vec<String>, Arc<HashSet<String>>)>,
    wake: tokio::sync::Notify,
    clock: SharedClock,
}

impl Showcase {
    /// A showcase mirroring into `dir` (made if missing), downloading through `downloader`,
    /// on `clock` (the client's: schedules are in Instagram's time).
    ///
    /// # Errors
    ///
    /// The folder cannot be made or read.
    pub fn new(dir: std::path::PathBuf, downloader: Downloader, clock: SharedClock) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let files = FileServer::new(&dir)?;
        let blobs = Arc::new(FsBlobStore::new(dir));
        Ok(Self {
            mirror: Mirror::new(blobs.clone(), downloader).with_clock(clock.clone()),
            clock,
            blobs,
            files,
            owner: RwLock::new(None),
            served: RwLock::default(),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Removes what a crash left in the folder (temporary files of writes cut short). Run at
    /// start.
    ///
    /// # Errors
    ///
    /// The folder cannot be read.
    pub async fn remove_leftovers(&self) -> Result<usize, igdisplay_mirror::BlobError> {
        self.blobs.remove_leftovers().await
    }

    /// Deletes `user`'s mirror (files, pages, index), waiting for a running sync of it.
    ///
    /// # Errors
    ///
    /// [`SyncError`]: what was deleted stays deleted; Meta's retry finishes the job.
    pub async fn purge(&self, user: &UserId) -> Result<PurgeReport, SyncError> {
        let report = self.mirror.purge(user).await?;
        *self.served.write().unwrap_or_else(PoisonError::into_inner) = Default::default();
        Ok(report)
    }

    /// The files the owner's current feed names: its posts' and its live stories' (read again
    /// when its pages changed or a story expired).
    async fn served(&self) -> Arc<HashSet<String>> {
        let Some(index) = self.index().await else {
            return Arc::default();
        };
        let live: Vec<&FeedItem> = index.live_stories(self.now()).collect();
        // What the set was built from: the pages, then the live stories.
        let sources: Vec<String> = index
            .pages
            .iter()
            .map(|p| p.key.clone())
            .chain(live.iter().map(|story| story.id.clone()))
            .collect();
        {
            let cached = self.served.read().unwrap_or_else(PoisonError::into_inner);
            if cached.0 == sources {
                return cached.1.clone();
            }
        }
        let mut keys = HashSet::new();
        // Every file but the images' records, which are the mirror's own.
        let mut add = |item: &FeedItem| keys.extend(item.keys().filter(|key| !key.ends_with("/image.json")));
        live.iter().for_each(|story| add(story));
        for page in &index.pages {
            let Ok(items) = self.mirror.page(page).await else {
                continue;
            };
            items.iter().for_each(&mut add);
        }
        let keys = Arc::new(keys);
        *self.served.write().unwrap_or_else(PoisonError::into_inner) = (sources, keys.clone());
        keys
    }

    /// The site's clock: the one its Instagram client runs on (the mock's, under test).
    fn now(&self) -> Timestamp {
        Timestamp::from_system_time(self.clock.now())
    }

    /// The account shown.
    pub fn owner(&self) -> Option<UserId> {
        self.owner.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Shows `user`'s account from now on.
    pub fn set_owner(&self, user: UserId) {
        *self.owner.write().unwrap_or_else(PoisonError::into_inner) = Some(user);
        self.wake.notify_one();
    }

    /// The owner's feed index, if one was ever written.
    pub async fn index(&self) -> Option<FeedIndex> {
        let owner = self.owner()?;
        self.mirror.index(&owner).await.ok().flatten()
    }

    /// The owner's whole feed, if one was ever written.
    pub async fn feed(&self) -> Option<Feed> {
        let owner = self.owner()?;
        self.mirror.feed(&owner).await.ok().flatten()
    }
}

/// The downloader of a site whose media come from `media_origin`: Instagram's CDN (`https:`),
/// or a mock's origin besides it; through a backend that connects to public addresses only
/// (and the mock's host).
///
/// # Errors
///
/// When the backend cannot be built.
pub fn downloader(media_origin: &str) -> Result<Downloader, igdisplay::http::TransportError> {
    let mut policy = DownloadPolicy::instagram();
    if media_origin != "https:" {
        policy = policy.allow_origin(media_origin);
    }
    let backend = igdisplay::http::default_backend(policy.backend_config())?;
    Ok(Downloader::new(backend, policy))
}

/// Syncs the owner's account now.
///
/// # Errors
///
/// [`SyncError`]: the last good feed is kept.
pub async fn sync_owner(app: &App) -> Result<Option<SyncReport>, SyncError> {
    let Some(showcase) = &app.showcase else {
        return Ok(None);
    };
    let Some(owner) = showcase.owner() else {
        return Ok(None);
    };
    // No token (logged out, deauthorized, deleted): nothing to sync; the feed stays as the
    // callback left it (purged).
    if !matches!(app.instagram.tokens().store().load(&owner).await, Ok(Some(_))) {
        return Ok(None);
    }
    let graph = app.instagram.graph(&owner);
    let sync = showcase.mirror.sync(&owner, &graph);
    let synced = match &app.fleet {
        // Instances on one database (sharing the mirror's folder) take turns: one syncs.
        Some(fleet) => {
            let task = Mirror::sync_task(&owner);
            match fleet
                .store
                .exclusive(&task, igdisplay_mirror::SYNC_LEASE, sync)
                .await
            {
                Ok(Some(synced)) => synced,
                Ok(None) => return Ok(None),
                Err(error) => {
                    tracing::warn!(%error, "the sync lease could not be taken; the sync waits for its next turn");
                    return Ok(None);
                }
            }
        }
        None => sync.await,
    };
    // Instagram refused the token: the fleet's store marks the account, its event written to
    // the outbox.
    if let (Err(SyncError::Listing { source, .. }), Some(fleet)) = (&synced, &app.fleet)
        && source.requires_login()
        && let Err(error) = fleet.store.mark_revoked(&owner, &source.to_string()).await
    {
        tracing::warn!(%error, "could not mark the owner's account revoked");
    }
    match synced {
        // Another trigger's sync (the loop, a login, "Sync now") ran meanwhile: its feed is
        // the current one.
        Err(SyncError::AlreadyRunning) => Ok(None),
        synced => synced.map(Some),
    }
}

/// Keeps the owner's feed in sync: after each sync, waits until the feed's next poll (at
/// least 10 seconds, at most an hour) or a new owner login, in real time.
pub fn spawn_sync_loop(app: Arc<App>) {
    let _task = tokio::spawn(async move {
        loop {
            if let Err(error) = sync_owner(&app).await {
                tracing::warn!(%error, "the feed was not synced; the last good one is shown");
            }
            let Some(showcase) = &app.showcase else {
                return;
            };
            let wait = match showcase.index().await {
                Some(feed) => {
                    let now = igdisplay::model::Timestamp::from_system_time(app.instagram.clock().now());
                    Duration::from_secs(
                        feed.next_poll_at
                            .unix()
                            .saturating_sub(now.unix())
                            .max(0)
                            .unsigned_abs(),
                    )
                }
                None => Duration::from_secs(60),
            }
            .clamp(Duration::from_secs(10), Duration::from_secs(3600));
            tokio::select! {
                () = SystemClock.sleep(wait) => {}
                () = showcase.wake.notified() => {}
            }
        }
    });
}

/// One tile of the public grid (and of an album's page).
struct Tile {
    id: String,
    kind: &'static str,
    /// The picture: an image's, a video's poster, an album's first item's.
    src: String,
    width: u32,
    height: u32,
    color: String,
    alt: String,
    caption: Option<String>,
    children: usize,
    permalink: Option<String>,
    /// A video's mirrored file, played inline from the site's origin.
    video: Option<String>,
}

impl Tile {
    /// The tile of `item`, or `None` when nothing of it was mirrored (it is left out). The
    /// picture is [`FeedItem::cover`] and the clip [`FeedItem::video`]: the mirror's answers
    /// to "which picture shows this post" and "can it be played here", for a post and for an
    /// album's item alike. A video without its file (licensed audio, over the size cap) shows
    /// its poster and links to Instagram.
    fn of(item: &FeedItem) -> Option<Self> {
        let image = item.cover()?;
        let (key, width, height) = image.best_for(TILE_WIDTH);
        let kind = match item.media_type.as_str() {
            "CAROUSEL_ALBUM" => "album",
            "VIDEO" => "video",
            _ => "image",
        };
        Some(Self {
            id: item.id.clone(),
            kind,
            src: format!("/{key}"),
            width,
            height,
            color: image.color.clone(),
            alt: item.alt.clone().unwrap_or_default(),
            caption: item.caption.clone(),
            children: item.children.iter().filter(|c| c.image.is_some()).count(),
            permalink: item.permalink.clone(),
            video: item.video.as_ref().map(|video| format!("/{}", video.key)),
        })
    }
}

#[derive(Template)]
#[template(path = "showcase.html")]
struct ShowcasePage {
    /// The owner's live stories, newest first.
    stories: Vec<Tile>,
    tiles: Vec<Tile>,
    next: Option<usize>,
    stale: Option<String>,
    /// Whether the site has a feed to show.
    connected: bool,
    /// Why the last login failed (`?login=`), in a fixed sentence.
    notice: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "tiles.html")]
struct Tiles {
    tiles: Vec<Tile>,
}

#[derive(Template)]
#[template(path = "showcase_album.html")]
struct AlbumPage {
    id: String,
    caption: Option<String>,
    permalink: Option<String>,
    tiles: Vec<Tile>,
}

#[derive(Template)]
#[template(path = "owner.html")]
struct OwnerPage {
    owner: Option<String>,
    status: String,
    /// The owner's session CSRF token, when the owner is the one looking: "Sync now".
    csrf: Option<String>,
}

/// Page `page` (from 1) of the available items: the tiles and the next page, if any (only
/// the stored pages they are on are read).
async fn page_of(showcase: &Showcase, index: Option<&FeedIndex>, page: usize) -> (Vec<Tile>, Option<usize>) {
    let Some(index) = index else {
        return (Vec::new(), None);
    };
    let start = page.saturating_sub(1).saturating_mul(PAGE);
    let items = showcase
        .mirror
        .available(index, start, PAGE)
        .await
        .unwrap_or_default();
    let next = (index.available > start.saturating_add(PAGE)).then_some(page.saturating_add(1));
    (items.iter().filter_map(Tile::of).collect(), next)
}

fn page_number(query: &HashMap<String, String>) -> usize {
    query
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| (1..=100_000).contains(p))
        .unwrap_or(1)
}

/// The owner's feed index and the asked page of its tiles; `None` outside owner mode.
async fn asked_page(
    app: &App,
    query: &HashMap<String, String>,
) -> Option<(Option<FeedIndex>, Vec<Tile>, Option<usize>)> {
    let showcase = app.showcase.as_ref()?;
    let index = showcase.index().await;
    let (tiles, next) = page_of(showcase, index.as_ref(), page_number(query)).await;
    Some((index, tiles, next))
}

/// `GET /`: the public gallery.
pub(crate) async fn home(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some((feed, tiles, next)) = asked_page(&app, &query).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let now = Timestamp::from_system_time(app.instagram.clock().now());
    let stale = feed
        .as_ref()
        .filter(|feed| !matches!(feed.status, FeedStatus::Fresh))
        .map(|feed| format!("{}.", public_state(&feed.status, feed.synced_at, now)));
    // No feed: never connected, or purged after a deletion or a deauthorization.
    let connected = feed.is_some();
    let stories = feed
        .as_ref()
        .map(|index| index.live_stories(now).filter_map(Tile::of).collect())
        .unwrap_or_default();
    page(
        &ShowcasePage {
            stories,
            tiles,
            next,
            stale,
            connected,
            notice: crate::login::notice(&query),
        },
        StatusCode::OK,
    )
}

/// `GET /tiles?page=N`: the next page's tiles, for "Load more".
pub(crate) async fn tiles(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some((_, tiles, next)) = asked_page(&app, &query).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match (Tiles { tiles }).render() {
        Ok(html) => json(&serde_json::json!({"html": html, "next": next})),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /album/{id}`: an album's items, with its caption and link.
pub(crate) async fn album(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(showcase) = &app.showcase else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let found = match showcase.index().await {
        Some(index) => showcase.mirror.find(&index, &id).await.ok().flatten(),
        None => None,
    };
    let Some(item) = found else {
        return Redirect::to("/").into_response();
    };
    let tiles = item.children.iter().filter_map(Tile::of).collect();
    page(
        &AlbumPage {
            id: item.id.clone(),
            caption: item.caption.clone(),
            permalink: item.permalink.clone(),
            tiles,
        },
        StatusCode::OK,
    )
}

/// `GET /media/{id}/{file}`: a mirrored file of the owner's current feed, from the site's own
/// origin, through the mirror's file server (streamed; `HEAD`, `Range`, `ETag`, 304).
pub(crate) async fn media(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let Some(showcase) = &app.showcase else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let key = format!("media/{id}/{file}");
    if !showcase.served().await.contains(&key) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut response = showcase
        .files
        .respond(&method, &key, &headers)
        .await
        .map(axum::body::Body::new);
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        // A file never changes under its key.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}

/// A feed's state in a few words for the public, never Instagram's error text: "updated 3
/// days ago; Instagram is unreachable".
fn public_state(status: &FeedStatus, synced_at: Option<Timestamp>, now: Timestamp) -> String {
    let age = synced_at.map(|at| {
        let seconds = now.unix().saturating_sub(at.unix()).max(0);
        match seconds {
            s if s < 120 => "updated just now".to_owned(),
            s if s < 7200 => format!("updated {} minutes ago", s / 60),
            s if s < 2 * 86_400 => format!("updated {} hours ago", s / 3600),
            s => format!("updated {} days ago", s / 86_400),
        }
    });
    let age = age.unwrap_or_else(|| "not loaded yet".to_owned());
    match status {
        FeedStatus::Fresh => age,
        FeedStatus::Stale {
            needs_login: true, ..
        } => format!("{age}; the account must be connected again"),
        _ => format!("{age}; Instagram is unreachable"),
    }
}

/// `GET /feed.json`: the feed for a headless site (file keys are paths under this origin),
/// its status in a few words (`state` and `summary`, never Instagram's error text).
pub(crate) async fn feed_json(State(app): State<Arc<App>>) -> Response {
    let Some(showcase) = &app.showcase else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(feed) = showcase.feed().await else {
        return json(&serde_json::json!({"state": "not_connected", "summary": "not connected", "items": []}));
    };
    let now = Timestamp::from_system_time(app.instagram.clock().now());
    let state = match feed.status {
        FeedStatus::Fresh => "fresh",
        _ => "stale",
    };
    json(&serde_json::json!({
        "user_id": feed.user_id,
        "synced_at": feed.synced_at,
        "state": state,
        "summary": public_state(&feed.status, feed.synced_at, now),
        "next_poll_at": feed.next_poll_at,
        "items": feed.items,
    }))
}

/// The owner's session CSRF token, when the request comes from the owner's session.
async fn owner_csrf(app: &App, showcase: &Showcase, headers: &HeaderMap) -> Option<String> {
    let (_, session) = crate::existing_session(app, headers).await.ok()??;
    (session.user.is_some() && session.user == showcase.owner()).then_some(session.csrf)
}

/// `POST /owner/sync`: the owner asks for a sync now (their session and its CSRF token).
pub(crate) async fn sync_now(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(showcase) = &app.showcase else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    match owner_csrf(&app, showcase, &headers).await {
        Some(csrf) if bool::from(subtle::ConstantTimeEq::ct_eq(sent.as_bytes(), csrf.as_bytes())) => {
            // A failure is on the owner page (the feed's status); the last good feed stays.
            let _ = sync_owner(&app).await;
            Redirect::to("/owner").into_response()
        }
        _ => StatusCode::FORBIDDEN.into_response(),
    }
}

/// `GET /owner`: who is shown, and the login that connects (or changes) the account.
pub(crate) async fn owner(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let Some(showcase) = &app.showcase else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let csrf = owner_csrf(&app, showcase, &headers).await;
    let index = showcase.index().await;
    let now = Timestamp::from_system_time(app.instagram.clock().now());
    let status = match index.as_ref().map(|f| &f.status) {
        // Only the owner reads what failed; a visitor reads the state in a few words.
        Some(status @ FeedStatus::Stale { .. }) if csrf.is_none() => {
            format!(
                "{}.",
                public_state(status, index.as_ref().and_then(|f| f.synced_at), now)
            )
        }
        Some(FeedStatus::Fresh) => format!("{} posts mirrored.", index.as_ref().map_or(0, |f| f.items)),
        Some(FeedStatus::Stale {
            reason, needs_login, ..
        }) if *needs_login => {
            format!("Instagram refused the token ({reason}): log in again.")
        }
        Some(FeedStatus::Stale { reason, .. }) => {
            format!("The last sync failed ({reason}); the last good feed is shown.")
        }
        Some(_) | None => "Not synced yet.".to_owned(),
    };
    page(
        &OwnerPage {
            owner: showcase.owner().map(|u| u.to_string()),
            status,
            csrf,
        },
        StatusCode::OK,
    )
}

fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/json")], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The "Load more" script: a static file, so the CSP stays `script-src 'self'`.
pub(crate) async fn script() -> Response {
    crate::static_file(
        "text/javascript; charset=utf-8",
        include_str!("../static/more.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_numbers_are_clamped() {
        let query = |v: &str| HashMap::from([("page".to_owned(), v.to_owned())]);
        assert_eq!(page_number(&query("3")), 3);
        for hostile in ["0", "-1", "x", "99999999999999999999", "100001"] {
            assert_eq!(page_number(&query(hostile)), 1, "{hostile}");
        }
    }
}

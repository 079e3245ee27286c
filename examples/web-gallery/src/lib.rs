//! The web gallery's routes: home, login, the OAuth callback, the gallery and albums, logout,
//! and Meta's deauthorize and data-deletion callbacks with their status page.
//!
//! In owner mode the site shows one account, bound by configuration (`--owner-id`) or through
//! a one-time setup link printed at start, never by whoever logs in first; the binding lives
//! in [`Records`] (the database, or a private file), apart from the token store. A deletion
//! or deauthorize callback purges the account's mirror before it answers.
//!
//! Sessions live on the server, keyed by a random id in an `HttpOnly; SameSite=Lax` cookie (Lax,
//! because the callback is a cross-site top-level GET). A session is made only when a login
//! starts, expires after a day without use, gets a new id when the login completes (no
//! fixation), and carries a CSRF token its logout form must send back. The OAuth state and the
//! user's token never reach the browser. Every page carries a CSP without inline script, and templates
//! escape every value (askama).

use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use igdisplay::Instagram;
use igdisplay::model::{Media, MediaId, MediaType, User, UserId};
use igdisplay::store::SqlStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq as _;

mod headers;
mod login;
mod meta;
mod records;
mod sessions;
mod showcase;

pub use records::{Deletion, Records, RecordsError};
pub use sessions::MAX_ANONYMOUS;
use sessions::{Session, Sessions};
pub use showcase::{Showcase, downloader, spawn_sync_loop, sync_owner};

const COOKIE: &str = "igd_session";
const PAGE_SIZE: u32 = 12;
/// How long an owner's login waits for the first sync of the feed.
const FIRST_SYNC_WAIT: Duration = Duration::from_secs(5);
/// How old a data-deletion or deauthorize `signed_request` may be.
const SIGNED_REQUEST_MAX_AGE: Duration = Duration::from_secs(3600);
/// How long the owner's setup link is valid.
pub const SETUP_LINK_TTL: Duration = Duration::from_secs(3600);

/// The application state.
#[derive(Debug)]
pub struct App {
    instagram: Instagram,
    public: String,
    csp: String,
    sessions: Sessions,
    fleet: Option<Fleet>,
    /// Owner mode: the site's own account, shown to every visitor from the mirror.
    showcase: Option<Showcase>,
    /// The owner binding, the setup codes and the deletions answered (a replayed
    /// data-deletion request gets the same confirmation code rather than a new one).
    records: Records,
}

/// The accounts database of a site run as several instances: the tokens (and the
/// sessions) live there, and Meta's callbacks update it.
#[derive(Clone, Debug)]
pub struct Fleet {
    /// The accounts; the callbacks' events go to its outbox.
    pub store: SqlStore,
}

impl App {
    /// An app answering at `public` (its own origin), showing media from `media_origin`,
    /// with its sessions in memory: one instance.
    pub fn new(instagram: Instagram, public: String, media_origin: String) -> Self {
        Self::with_sessions(
            instagram,
            public,
            media_origin,
            Sessions::Memory(Mutex::default()),
            None,
            Records::memory(),
        )
    }

    /// An app whose tokens (in `fleet.store`, which `instagram` must use as its token store)
    /// and sessions live in one database: run as many instances as needed behind a load
    /// balancer; any of them serves any visitor.
    ///
    /// # Errors
    ///
    /// When the sessions table cannot be made.
    pub async fn with_fleet(
        instagram: Instagram,
        public: String,
        media_origin: String,
        fleet: Fleet,
    ) -> Result<Self, sqlx::Error> {
        let sessions = Sessions::database(fleet.store.pool().clone()).await?;
        let records = Records::database(fleet.store.pool().clone()).await?;
        Ok(Self::with_sessions(
            instagram,
            public,
            media_origin,
            sessions,
            Some(fleet),
            records,
        ))
    }

    fn with_sessions(
        instagram: Instagram,
        public: String,
        media_origin: String,
        sessions: Sessions,
        fleet: Option<Fleet>,
        records: Records,
    ) -> Self {
        let media = if media_origin == "https:" {
            "https://*.cdninstagram.com https://*.fbcdn.net".to_owned()
        } else {
            media_origin
        };
        let csp = format!(
            "default-src 'none'; img-src 'self' {media}; media-src 'self' {media}; style-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        );
        Self {
            instagram,
            public,
            csp,
            sessions,
            fleet,
            showcase: None,
            records,
        }
    }

    /// Keeps the owner binding and the deletions in `records` (a private file, so they
    /// survive a restart without a database). An app with a fleet keeps them in its database.
    #[must_use]
    pub fn with_records(mut self, records: Records) -> Self {
        if self.fleet.is_none() {
            self.records = records;
        }
        self
    }

    /// The site's records.
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// A new one-time link that lets the first login through it connect the site's account
    /// (valid for [`SETUP_LINK_TTL`], once, on any instance sharing the records).
    ///
    /// # Errors
    ///
    /// The OS gives no randomness, or the records fail.
    pub async fn setup_link(&self) -> Result<String, RecordsError> {
        let code = random_hex().ok_or_else(|| RecordsError::new("no randomness for the setup link"))?;
        let expires = self
            .now()
            .saturating_add(igdisplay::model::whole_seconds(SETUP_LINK_TTL));
        self.records.add_setup(&sha256_hex(&code), expires).await?;
        Ok(format!("{}/owner/setup?code={code}", self.public))
    }

    /// How many sessions are kept in memory: (anonymous, logged in); `None` in a database.
    pub fn sessions_kept(&self) -> Option<(usize, usize)> {
        self.sessions.kept()
    }

    /// Owner mode: the site shows `showcase`'s account to every visitor, from its mirror, and
    /// every image and video from the site's own origin (the CSP allows no other).
    #[must_use]
    pub fn with_showcase(mut self, showcase: Showcase) -> Self {
        self.csp =
            "default-src 'none'; img-src 'self'; media-src 'self'; script-src 'self'; connect-src 'self'; \
                    style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
                .to_owned();
        self.showcase = Some(showcase);
        self
    }

    /// The client.
    pub fn instagram(&self) -> &Instagram {
        &self.instagram
    }

    /// The owner mode's mirror, if the site runs in owner mode.
    pub fn showcase(&self) -> Option<&Showcase> {
        self.showcase.as_ref()
    }

    fn now(&self) -> i64 {
        igdisplay::model::Timestamp::from_system_time(self.instagram.clock().now()).unix()
    }
}

/// The routes, with the security headers on every response.
pub fn router(app: Arc<App>) -> Router {
    let routes = if app.showcase.is_some() {
        Router::new()
            .route("/", get(showcase::home))
            .route("/tiles", get(showcase::tiles))
            .route("/album/{id}", get(showcase::album))
            .route("/media/{id}/{file}", get(showcase::media))
            .route("/feed.json", get(showcase::feed_json))
            .route("/owner", get(showcase::owner))
            .route("/owner/sync", post(showcase::sync_now))
            .route("/owner/setup", get(login::setup))
            .route("/static/more.js", get(showcase::script))
            .route("/gallery", get(|| async { Redirect::to("/") }))
    } else {
        Router::new()
            .route("/", get(home))
            .route("/gallery", get(gallery))
            .route("/album/{id}", get(album))
    };
    routes
        .route("/login", get(login::login))
        .route("/auth/callback", get(login::callback))
        .route("/logout", post(logout))
        .route("/deauthorize", post(meta::deauthorize))
        .route("/data-deletion", post(meta::data_deletion))
        .route("/deletion", get(meta::deletion_status))
        .route("/static/app.css", get(stylesheet))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            headers::security_headers,
        ))
        .with_state(app)
}

/// The SHA-256 of `text`, in hex.
fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    igdisplay::auth::hex(&sha2::Sha256::digest(text.as_bytes()))
}

/// 32 random bytes as hex, or `None` when the OS cannot give randomness (then no session or
/// token is made: a predictable id would be worse than an error page).
fn random_hex() -> Option<String> {
    igdisplay::auth::random_hex(32).ok()
}

/// The page for a session store that failed (the database is down), or a failed random draw.
fn unavailable() -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "Something went wrong",
        "Please try again in a moment.",
    )
}

/// The request's live session and its id, if it has one; using it counts as activity.
async fn existing_session(
    app: &App,
    headers: &HeaderMap,
) -> Result<Option<(String, Session)>, Box<Response>> {
    let now = app.now();
    let candidates = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix(&format!("{COOKIE}=")))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    for id in candidates {
        let loaded = app
            .sessions
            .load(&id, now)
            .await
            .map_err(|_| Box::new(unavailable()))?;
        if let Some(session) = loaded {
            return Ok(Some((id, session)));
        }
    }
    Ok(None)
}

/// Writes a session back.
async fn save(app: &App, id: &str, session: &Session) -> Result<(), Box<Response>> {
    app.sessions
        .save(id, session)
        .await
        .map_err(|_| Box::new(unavailable()))
}

/// A new session and the cookie that sets it.
async fn new_session(app: &App) -> Result<(String, Session, HeaderValue), Box<Response>> {
    let (id, csrf) = match (random_hex(), random_hex()) {
        (Some(id), Some(csrf)) => (id, csrf),
        _ => return Err(Box::new(unavailable())),
    };
    let session = Session::new(csrf, app.now());
    app.sessions
        .create(&id, &session)
        .await
        .map_err(|_| Box::new(unavailable()))?;
    let secure = if app.public.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax{secure}"))
        .map_err(|_| Box::new(unavailable()))?;
    Ok((id, session, cookie))
}

/// The request's session, or a new one (with the cookie that sets it).
async fn session(
    app: &App,
    headers: &HeaderMap,
) -> Result<(String, Session, Option<HeaderValue>), Box<Response>> {
    if let Some((id, session)) = existing_session(app, headers).await? {
        return Ok((id, session, None));
    }
    let (id, session, cookie) = new_session(app).await?;
    Ok((id, session, Some(cookie)))
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

pub(crate) fn page(template: &impl Template, status: StatusCode) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the page could not be rendered",
        )
            .into_response(),
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    notice: Option<&'static str>,
}

/// `GET /`: the invitation to log in (with why the last login failed, from `?login=`); a
/// logged-in visitor goes to the gallery. A visitor who has not started a login gets no
/// session.
async fn home(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match existing_session(&app, &headers).await {
        Ok(Some((_, session))) if session.user.is_some() => Redirect::to("/gallery").into_response(),
        Ok(_) => page(
            &Home {
                notice: login::notice(&query),
            },
            StatusCode::OK,
        ),
        Err(response) => *response,
    }
}

/// One tile of the grid.
struct Tile {
    id: String,
    kind: &'static str,
    src: Option<String>,
    caption: Option<String>,
    children: usize,
    permalink: Option<String>,
}

impl Tile {
    fn of(media: &Media) -> Self {
        let kind = match media.media_type {
            Some(MediaType::CarouselAlbum) => "album",
            Some(MediaType::Video) => "video",
            _ => "image",
        };
        let src = media.picture_url().map(str::to_owned);
        Self {
            id: media.id.to_string(),
            kind,
            src,
            caption: media.caption.clone(),
            children: media.children().len(),
            // Only Instagram's own links are rendered as links (never `javascript:`).
            permalink: media.instagram_permalink().map(str::to_owned),
        }
    }
}

#[derive(Template)]
#[template(path = "gallery.html")]
struct Gallery {
    user: User,
    tiles: Vec<Tile>,
    after: Option<String>,
    csrf: String,
}

#[derive(Template)]
#[template(path = "album.html")]
struct Album {
    id: String,
    tiles: Vec<Tile>,
}

#[derive(Template)]
#[template(path = "message.html")]
struct Message<'a> {
    title: &'a str,
    text: &'a str,
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(&Message { title, text }, status)
}

/// The logged-in visitor, as a handler's argument: their user id and their session's CSRF
/// token. A visitor without one is sent to log in, and comes back to the page they asked for
/// (its path and query) once logged in.
struct CurrentUser {
    user: UserId,
    csrf: String,
}

impl axum::extract::FromRequestParts<Arc<App>> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Arc<App>,
    ) -> Result<Self, Response> {
        let found = existing_session(app, &parts.headers)
            .await
            .map_err(|response| *response)?
            .and_then(|(_, session)| Some((session.user?, session.csrf)));
        found.map(|(user, csrf)| Self { user, csrf }).ok_or_else(|| {
            let here = parts
                .uri
                .path_and_query()
                .map_or("/gallery", |here| here.as_str());
            let login = format!("/login?{}", igdisplay::http::encode_query([("next", here)]));
            Redirect::to(&login).into_response()
        })
    }
}

/// Maps a Graph failure to a page; an expired or revoked token logs the session out.
async fn graph_failure(app: &App, headers: &HeaderMap, error: &igdisplay::graph::Error) -> Response {
    if error.requires_login() {
        if let Ok(Some((id, mut session))) = existing_session(app, headers).await {
            session.user = None;
            let _ = save(app, &id, &session).await;
        }
        return message(
            StatusCode::UNAUTHORIZED,
            "Your Instagram login has expired",
            "Please log in again to see your gallery.",
        );
    }
    message(
        StatusCode::BAD_GATEWAY,
        "Instagram did not answer",
        "Please try again in a moment.",
    )
}

async fn gallery(
    State(app): State<Arc<App>>,
    CurrentUser { user, csrf }: CurrentUser,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let graph = app.instagram.graph(&user);
    let profile = match graph.me().send().await {
        Ok(profile) => profile,
        Err(error) => return graph_failure(&app, &headers, &error).await,
    };
    let mut request = graph.my_media().with_children().limit(PAGE_SIZE);
    if let Some(after) = query.get("after").filter(|a| !a.is_empty()) {
        request = request.after(after.clone());
    }
    match request.send().await {
        Ok(page_of_media) => page(
            &Gallery {
                user: profile,
                tiles: page_of_media.items.iter().map(Tile::of).collect(),
                after: page_of_media.after,
                csrf,
            },
            StatusCode::OK,
        ),
        Err(error) => graph_failure(&app, &headers, &error).await,
    }
}

async fn album(
    State(app): State<Arc<App>>,
    CurrentUser { user, .. }: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match app
        .instagram
        .graph(&user)
        .children(&MediaId::new(id.clone()))
        .send()
        .await
    {
        Ok(children) => page(
            &Album {
                id,
                tiles: children.items.iter().map(Tile::of).collect(),
            },
            StatusCode::OK,
        ),
        Err(error) => graph_failure(&app, &headers, &error).await,
    }
}

/// Logs out, when the form carries the session's CSRF token: another site cannot log a
/// visitor out by posting here.
async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (id, session) = match existing_session(&app, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Redirect::to("/").into_response(),
        Err(response) => return *response,
    };
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !bool::from(sent.as_bytes().ct_eq(session.csrf.as_bytes())) {
        return message(
            StatusCode::FORBIDDEN,
            "This logout did not come from this site",
            "Use the Log out button on your gallery.",
        );
    }
    if app.sessions.remove(&id, app.now()).await.is_err() {
        return unavailable();
    }
    if let Some(user) = session.user {
        let _ = app.instagram.tokens().logout(&user).await;
    }
    Redirect::to("/").into_response()
}

async fn stylesheet() -> Response {
    static_file("text/css; charset=utf-8", include_str!("../static/app.css"))
}

/// A file of the site's own, cacheable for an hour.
pub(crate) fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

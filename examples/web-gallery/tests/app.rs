//! The web gallery's rules over HTTP: cookie flags, the state bound to the session (a callback
//! from another cookie jar is refused), no open redirect, clean redirects, escaped captions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay::Instagram;
use igdisplay::auth::TokenStore as _;
use igdisplay::mock::MockServer;
use igdisplay::model::{AppSecret, Platform};
use igdisplay::store::{AccountState, Key, KeyRing, SqlStore};
use std::sync::Arc;

struct Site {
    mock: MockServer,
    base: String,
}

/// A listener for a site, its base URL, and a client builder for it against `mock` (its
/// redirect URI registered there).
async fn listen(mock: &MockServer) -> (tokio::net::TcpListener, String, igdisplay::InstagramBuilder) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    mock.add_redirect_uri(&format!("{base}/auth/callback"));
    let app = mock.app();
    let builder = Instagram::builder(
        Platform::InstagramLogin,
        app.id,
        AppSecret::new(app.secret),
        format!("{base}/auth/callback"),
    )
    .mock(mock.base_url())
    .clock(igdisplay::follow_mock_clock(mock));
    (listener, base, builder)
}

async fn site() -> Site {
    let mock = MockServer::start().unwrap();
    let (listener, base, builder) = listen(&mock).await;
    let instagram = builder.build().unwrap();
    let state = Arc::new(web_gallery::App::new(
        instagram,
        base.clone(),
        mock.base_url().to_owned(),
    ));
    tokio::spawn(async move { axum::serve(listener, web_gallery::router(state)).await });
    Site { mock, base }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `GET url` with the session `cookie`, redirects not followed.
async fn get_with(url: impl reqwest::IntoUrl, cookie: &str) -> reqwest::Response {
    client().get(url).header("cookie", cookie).send().await.unwrap()
}

fn cookie_of(response: &reqwest::Response) -> String {
    let set = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    set.split(';').next().unwrap().to_owned()
}

/// Starts a login (which makes the session) and returns its cookie and where the mock sends the
/// browser back.
async fn start_login(site: &Site, next: &str) -> (String, String) {
    let login = client()
        .get(format!("{}/login?next={next}", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = cookie_of(&login);
    let callback = approve(site, &login, "jayposiris");
    (cookie, callback)
}

/// The callback URL the mock's window sends `username` back to, approving the authorize URL
/// `login` (the site's answer to `/login`) redirects to.
fn approve(site: &Site, login: &reqwest::Response, username: &str) -> String {
    let authorize = login.headers()["location"].to_str().unwrap();
    assert!(authorize.starts_with(&site.mock.authorize_url()), "{authorize}");
    site.mock
        .approve(authorize, username)
        .unwrap()
        .trim_end_matches("#_")
        .to_owned()
}

/// A complete login as @jayposiris; returns the session cookie the site set when it completed.
async fn logged_in(site: &Site) -> String {
    let start = format!("{}/login?next=/gallery", site.base);
    let (landed, cookie) = login_with_session(site, &start, "jayposiris").await;
    assert_eq!(landed, "/gallery");
    cookie
}

/// The gallery page as `cookie`'s session sees it.
async fn gallery_html(site: &Site, cookie: &str) -> String {
    get_with(format!("{}/gallery", site.base), cookie)
        .await
        .text()
        .await
        .unwrap()
}

async fn gallery_status(site: &Site, cookie: &str) -> u16 {
    let gallery = get_with(format!("{}/gallery", site.base), cookie).await;
    gallery.status().as_u16()
}

#[tokio::test]
async fn the_state_is_bound_to_the_session_and_redirects_stay_local() {
    let site = site().await;
    let home = client().get(&site.base).send().await.unwrap();
    let csp = home.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));

    // The same callback from another browser (without the session) is refused.
    let (cookie, callback) = start_login(&site, "https://evil.example").await;
    let stranger = client().get(&callback).send().await.unwrap();
    assert_sent_home(&stranger, "expired");
    site.mock
        .expect_requests("POST", "/oauth/access_token", 0)
        .unwrap();

    // The right session completes, to a local clean URL whatever `next` said.
    let done = get_with(&callback, &cookie).await;
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/gallery");
    assert_eq!(done.headers()["cache-control"], "no-store");
    assert_eq!(done.headers()["referrer-policy"], "no-referrer");
    let session = cookie_of(&done);
    let gallery = get_with(format!("{}/gallery", site.base), &session).await;
    assert_eq!(gallery.status(), 200);
    let html = gallery.text().await.unwrap();
    assert!(
        html.contains("&#60;script&#62;alert(&#39;caption&#39;)&#60;/script&#62; is just text"),
        "escaped"
    );
    assert!(!html.contains("<script"));
    assert!(!html.contains("IGAA"), "no token in the page");

    // A second use of the same callback is refused: the state was single use.
    let replay = get_with(&callback, &session).await;
    assert_sent_home(&replay, "expired");
}

#[tokio::test]
async fn a_visitor_who_starts_no_login_gets_no_session() {
    let site = site().await;
    for _ in 0..3 {
        let home = client().get(&site.base).send().await.unwrap();
        assert_eq!(home.status(), 200);
        assert!(home.headers().get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn the_session_id_changes_when_the_login_completes() {
    let site = site().await;
    let (before, callback) = start_login(&site, "/gallery").await;
    let done = get_with(&callback, &before).await;
    let after = cookie_of(&done);
    assert_ne!(before, after);
    assert_eq!(gallery_status(&site, &after).await, 200);
    assert_eq!(
        gallery_status(&site, &before).await,
        303,
        "the id fixed before login is worthless"
    );
}

#[tokio::test]
async fn a_logout_without_the_sessions_csrf_token_is_refused() {
    let site = site().await;
    let session = logged_in(&site).await;
    let forged = client()
        .post(format!("{}/logout", site.base))
        .header("cookie", &session)
        .form(&[("csrf", "guessed")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(gallery_status(&site, &session).await, 200, "still logged in");

    let html = gallery_html(&site, &session).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let logout = client()
        .post(format!("{}/logout", site.base))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 303);
    assert_eq!(gallery_status(&site, &session).await, 303, "logged out");
}

#[tokio::test]
async fn a_replayed_data_deletion_request_gets_the_same_code_and_a_stale_one_none() {
    let site = site().await;
    let signed = site.mock.signed_request("jayposiris").unwrap();
    let post = |value: String| {
        let url = format!("{}/data-deletion", site.base);
        async move {
            client()
                .post(url)
                .form(&[("signed_request", value)])
                .send()
                .await
                .unwrap()
        }
    };
    let first: serde_json::Value = post(signed.clone()).await.json().await.unwrap();
    let again: serde_json::Value = post(signed.clone()).await.json().await.unwrap();
    assert_eq!(first["confirmation_code"], again["confirmation_code"]);
    site.mock.advance(std::time::Duration::from_secs(2 * 3600));
    assert_eq!(post(signed).await.status(), 400, "two hours old: refused");
}

#[tokio::test]
async fn a_revoked_token_shows_a_friendly_page() {
    let site = site().await;
    let (cookie, callback) = start_login(&site, "/gallery").await;
    let done = get_with(&callback, &cookie).await;
    let session = cookie_of(&done);
    // Replaying the authorization code makes Instagram revoke what it gave (the mock does too).
    let code = igdisplay::auth::Callback::parse(&callback)
        .unwrap()
        .outcome
        .into_code()
        .unwrap();
    let code = code.expose_secret();
    let app = site.mock.app();
    let replay = client()
        .post(format!("{}/oauth/access_token", site.mock.base_url()))
        .form(&[
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", &format!("{}/auth/callback", site.base)),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    let gallery = get_with(format!("{}/gallery", site.base), &session).await;
    assert_eq!(gallery.status(), 401);
    assert!(
        gallery
            .text()
            .await
            .unwrap()
            .contains("Your Instagram login has expired")
    );
}

/// Reliability case 70: the tile of a media whose caption is a `<script>` renders it as text;
/// the whole tile is a snapshot (the mock's port replaced by `MOCK`).
#[tokio::test]
async fn a_script_caption_renders_as_text() {
    let site = site().await;
    let session = logged_in(&site).await;
    let html = gallery_html(&site, &session).await;
    let at = html.find("is just text").unwrap();
    let start = html[..at].rfind("<li").unwrap();
    let end = at + html[at..].find("</li>").unwrap() + "</li>".len();
    let tile = html[start..end].replace(site.mock.base_url(), "MOCK");
    insta::assert_snapshot!(tile);
}

/// A listing whose permalink is `javascript:` (or any other host than Instagram's): the tile
/// carries no link, the one of Instagram's is kept.
#[tokio::test]
async fn only_instagrams_permalinks_are_rendered_as_links() {
    let site = site().await;
    let session = logged_in(&site).await;
    let item = |id: &str, permalink: &str| {
        serde_json::json!({"id": id, "media_type": "IMAGE", "caption": id,
            "media_url": format!("{}/cdn/{id}.jpg", site.mock.base_url()), "permalink": permalink})
    };
    site.mock.stub(igdisplay::mock::Stub::json(
        "GET",
        "/me/media",
        200,
        serde_json::json!({"data": [
            item("1790000000000000001", "javascript:alert(1)"),
            item("1790000000000000002", "https://evil.example/p/x/"),
            item("1790000000000000003", "https://www.instagram.com/p/Cgood/"),
        ]}),
    ));
    let html = gallery_html(&site, &session).await;
    assert!(html.contains("1790000000000000001"), "the items are shown");
    assert!(
        !html.contains("javascript:") && !html.contains("evil.example"),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://www.instagram.com/p/Cgood/\""),
        "{html}"
    );
}

/// Reliability case 8: a denial whose `error_description` carries markup ends the pending
/// login, sends the visitor home with the site's own notice, and no page echoes the markup.
#[tokio::test]
async fn a_denial_with_markup_in_its_description_is_never_echoed() {
    let site = site().await;
    let login = client().get(format!("{}/login", site.base)).send().await.unwrap();
    let cookie = cookie_of(&login);
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let denied = site.mock.deny(&authorize).unwrap();
    let (path, query) = denied.trim_end_matches("#_").split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("error_description", _)) => {
                "error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_owned()
            }
            _ => pair.to_owned(),
        })
        .collect();
    let hostile = format!("{path}?{}", query.join("&"));
    assert!(hostile.contains("error_description=%3Cscript"), "{hostile}");
    let answer = get_with(&hostile, &cookie).await;
    assert_sent_home(&answer, "cancelled");
    let home = get_with(format!("{}/?login=cancelled", site.base), &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("You cancelled the login. Nothing was shared."),
        "{home}"
    );
    assert!(!home.contains("alert(1)") && !home.contains("<script"), "{home}");
    // The state was consumed: the same redirect again is a stale link.
    let again = get_with(&hostile, &cookie).await;
    assert_sent_home(&again, "expired");
}

/// A failed callback: a 303 to the home page naming `reason` (the callback's URL holds the
/// code and the state, so it answers no page of its own), kept out of caches and referrers.
fn assert_sent_home(response: &reqwest::Response, reason: &str) {
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("/?login={reason}").as_str()
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
}

/// Every way a callback fails ends at a clean URL whose page says why in a fixed sentence:
/// a state that is not the session's, a code Instagram refuses to exchange.
#[tokio::test]
async fn a_callback_that_fails_sends_the_browser_to_a_clean_url_that_says_why() {
    let site = site().await;
    let (cookie, callback) = start_login(&site, "/gallery").await;
    let forged = callback.replace("state=", "state=0");
    assert_ne!(forged, callback);
    let answer = get_with(&forged, &cookie).await;
    assert_sent_home(&answer, "unverified");

    let (cookie, callback) = start_login(&site, "/gallery").await;
    site.mock.add_fault(igdisplay::mock::Fault::new(
        "/oauth/access_token",
        igdisplay::mock::FaultKind::Status { status: 400 },
    ));
    let answer = get_with(&callback, &cookie).await;
    assert_sent_home(&answer, "upstream");
    assert!(
        answer.headers().get("set-cookie").is_none(),
        "no session for a failed login"
    );
    let (_, home) = text(&site, "/?login=upstream").await;
    assert!(home.contains("Instagram did not complete the login."), "{home}");
    let (_, unknown) = text(&site, "/?login=%3Cb%3Ehi").await;
    assert!(
        !unknown.contains("id=\"notice\"") && !unknown.contains("<b>hi"),
        "{unknown}"
    );
}

/// An instance of the site whose tokens and sessions live in the SQLite file `db`, against
/// `mock`, with its callbacks registered when `callbacks` says so. Its base URL and store.
async fn fleet_site(mock: &MockServer, db: &std::path::Path, callbacks: bool) -> (String, SqlStore) {
    let (listener, base, builder) = listen(mock).await;
    if callbacks {
        mock.set_callbacks(
            Some(&format!("{base}/deauthorize")),
            Some(&format!("{base}/data-deletion")),
        );
    }
    let keys = KeyRing::new(Key::new("k1", &[9; 32]).unwrap());
    let store = SqlStore::sqlite(db, keys).await.unwrap();
    let instagram = builder.store(Arc::new(store.clone())).build().unwrap();
    let fleet = web_gallery::Fleet { store: store.clone() };
    let state = Arc::new(
        web_gallery::App::with_fleet(instagram, base.clone(), mock.base_url().to_owned(), fleet)
            .await
            .unwrap(),
    );
    tokio::spawn(async move { axum::serve(listener, web_gallery::router(state)).await });
    (base, store)
}

#[tokio::test]
async fn two_instances_on_one_database_serve_each_others_logins_and_callbacks_update_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db");
    let mock = MockServer::start().unwrap();
    let (first, store) = fleet_site(&mock, &db, true).await;
    let (second, _) = fleet_site(&mock, &db, false).await;

    let site = Site {
        mock,
        base: first.clone(),
    };
    let cookie = logged_in(&site).await;
    let other = Site {
        mock: MockServer::start().unwrap(),
        base: second.clone(),
    };
    assert!(
        gallery_html(&other, &cookie).await.contains("@jayposiris"),
        "served by the other"
    );
    let sessions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 1, "the login's session, and not the one it replaced");
    let raw_id = cookie.split('=').nth(1).unwrap();
    let file = std::fs::read(&db).unwrap();
    assert!(
        !file.windows(raw_id.len()).any(|w| w == raw_id.as_bytes()),
        "the database keeps only the hash of a session id"
    );

    // Meta's deauthorize callback: the token is erased, the account marked, the session ends.
    let (status, _) = site
        .mock
        .send_callback("jayposiris", igdisplay::mock::CallbackKind::Deauthorize)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(store.counts().await.unwrap()[&AccountState::Deauthorized], 1);
    assert_eq!(
        gallery_status(&other, &cookie).await,
        303,
        "logged out everywhere"
    );
}

/// The site in owner mode against `mock`, its mirror in `dir/mirror`, its records in
/// `records` (a new `App`, as after a restart, when called again with the same ones).
async fn owner_site_with(
    mock: MockServer,
    dir: &std::path::Path,
    records: web_gallery::Records,
) -> (Site, Arc<web_gallery::App>) {
    let (listener, base, builder) = listen(&mock).await;
    let instagram = builder.build().unwrap();
    let showcase = web_gallery::Showcase::new(
        dir.join("mirror"),
        web_gallery::downloader(mock.base_url()).unwrap(),
        instagram.clock().clone(),
    )
    .unwrap();
    let app =
        web_gallery::App::new(instagram, base.clone(), mock.base_url().to_owned()).with_records(records);
    if let Some(owner) = app.records().owner().await.unwrap() {
        showcase.set_owner(owner);
    }
    let app = Arc::new(app.with_showcase(showcase));
    let router = web_gallery::router(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (Site { mock, base }, app)
}

/// The site in owner mode against a new mock, nobody connected yet.
async fn owner_site() -> (Site, Arc<web_gallery::App>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (site, app) = owner_site_with(
        MockServer::start().unwrap(),
        dir.path(),
        web_gallery::Records::memory(),
    )
    .await;
    (site, app, dir)
}

/// A login by `username` from a new browser, starting at `start` (`/login?next=/owner`, or a
/// setup link): where the callback's answer sends the browser (always a 303).
async fn login_as(site: &Site, start: &str, username: &str) -> String {
    login_with_session(site, start, username).await.0
}

/// [`login_as`], with the session cookie the site set when the login completed (empty when
/// it set none).
async fn login_with_session(site: &Site, start: &str, username: &str) -> (String, String) {
    let mut response = client().get(start).send().await.unwrap();
    let mut cookie = String::new();
    // Through the setup link's redirect to /login, in the same session.
    while response.status() == 303
        && !response.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("http")
    {
        if response.headers().contains_key("set-cookie") {
            cookie = cookie_of(&response);
        }
        let next = response.headers()["location"].to_str().unwrap().to_owned();
        response = get_with(format!("{}{next}", site.base), &cookie).await;
    }
    if response.headers().contains_key("set-cookie") {
        cookie = cookie_of(&response);
    }
    let callback = approve(site, &response, username);
    let done = get_with(&callback, &cookie).await;
    let session = if done.headers().contains_key("set-cookie") {
        cookie_of(&done)
    } else {
        String::new()
    };
    assert_eq!(done.status(), 303, "the callback answers no page of its own");
    let landed = done.headers()["location"].to_str().unwrap().to_owned();
    (landed, session)
}

/// The owner connects the site through its one-time setup link.
async fn connect_owner(site: &Site, app: &web_gallery::App) {
    let link = app.setup_link().await.unwrap();
    assert_eq!(
        login_as(site, &link, "jayposiris").await,
        "/owner",
        "the owner is admitted"
    );
}

/// The app-scoped id the site sees for `username`.
fn user_id(mock: &MockServer, username: &str) -> igdisplay::model::UserId {
    let user = mock.users().into_iter().find(|u| u.username == username).unwrap();
    igdisplay::model::UserId::new(user.id)
}

async fn text(site: &Site, path: &str) -> (u16, String) {
    let response = client().get(format!("{}{path}", site.base)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The picture of every tile of a page: an image's `src`, a video's `poster`, in order.
fn sources(html: &str) -> Vec<String> {
    html.split("<li class=\"item")
        .skip(1)
        .filter_map(|tile| attribute(tile, "<img src=\"").or_else(|| attribute(tile, " poster=\"")))
        .collect()
}

/// The picture of every story of a page.
fn story_pictures(html: &str) -> Vec<String> {
    html.split("<li class=\"story\"")
        .skip(1)
        .filter_map(|tile| attribute(tile, "<img src=\"").or_else(|| attribute(tile, " poster=\"")))
        .collect()
}

/// The `src` of every video tile of a page.
fn videos(html: &str) -> Vec<String> {
    html.split("<li class=\"item")
        .skip(1)
        .filter_map(|tile| attribute(tile, "<video src=\""))
        .collect()
}

/// The value that follows `start` in `tile` (up to its `</li>`), up to its closing quote.
fn attribute(tile: &str, start: &str) -> Option<String> {
    let tile = tile.split("</li>").next()?;
    let (_, rest) = tile.split_once(start)?;
    Some(rest.split('"').next()?.to_owned())
}

#[tokio::test]
async fn owner_mode_shows_the_owners_feed_to_anonymous_visitors_from_the_sites_own_files() {
    let (site, app, _dir) = owner_site().await;
    let (_, before) = text(&site, "/").await;
    assert!(before.contains("id=\"empty\""), "no owner yet: says so");

    connect_owner(&site, &app).await; // the owner connects the site once
    let (status, html) = text(&site, "/").await;
    assert_eq!(status, 200);
    let images = sources(&html);
    assert_eq!(images.len(), 12);
    assert!(images.iter().all(|src| src.starts_with("/media/")), "{images:?}");
    assert!(
        !html.contains(site.mock.base_url()),
        "nothing from Instagram's hosts"
    );
    let image = client()
        .get(format!("{}{}", site.base, images[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/jpeg");
    assert!(html.contains("alt=\""));
    // The videos play from the site: their files, in ranges as a player asks.
    let clips = videos(&html);
    assert!(
        clips.len() >= 2 && clips.iter().all(|src| src.ends_with("/video.mp4")),
        "{clips:?}"
    );
    let part = client()
        .get(format!("{}{}", site.base, clips[0]))
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-type"], "video/mp4");
    assert_eq!(part.bytes().await.unwrap().len(), 100);
    assert!(
        html.contains("watch on Instagram"),
        "the video Meta sent without its file links to Instagram"
    );
    let stories = story_pictures(&html);
    assert_eq!(stories.len(), 2, "the live stories");

    // "Load more": the next tiles as JSON, and the same page without JavaScript.
    let (_, more) = text(&site, "/tiles?page=2").await;
    let more: serde_json::Value = serde_json::from_str(&more).unwrap();
    assert_eq!(sources(more["html"].as_str().unwrap()).len(), 12);
    let (_, page_two) = text(&site, "/?page=2").await;
    assert_eq!(sources(&page_two), sources(more["html"].as_str().unwrap()));

    // An album opens to its items, with its caption and link.
    let feed = app.showcase().unwrap().feed().await.unwrap();
    let album = feed
        .items
        .iter()
        .find(|i| i.media_type == "CAROUSEL_ALBUM")
        .unwrap();
    let (_, album_page) = text(&site, &format!("/album/{}", album.id)).await;
    assert_eq!(sources(&album_page).len(), album.children.len());
    assert!(album_page.contains("album-link"));

    // Thirty days on, every Instagram link has expired: the site still shows every image.
    site.mock.advance(std::time::Duration::from_secs(30 * 86_400));
    web_gallery::sync_owner(&app).await.unwrap();
    let (_, later) = text(&site, "/").await;
    assert_eq!(sources(&later), images);
    assert_eq!(videos(&later), clips);
    assert!(story_pictures(&later).is_empty(), "the stories expired");
    for src in &stories {
        let file = client().get(format!("{}{src}", site.base)).send().await.unwrap();
        assert_eq!(file.status(), 404, "an expired story's file is not served: {src}");
    }
    for src in images.iter().chain(&clips) {
        let file = client().get(format!("{}{src}", site.base)).send().await.unwrap();
        assert_eq!(file.status(), 200, "{src}");
    }

    // The token revoked: the last good feed stays, and says how old it is.
    site.mock.revoke_tokens("jayposiris").unwrap();
    assert!(web_gallery::sync_owner(&app).await.is_err());
    let (_, revoked) = text(&site, "/").await;
    assert_eq!(sources(&revoked), images);
    assert!(revoked.contains("id=\"stale\""));
    let (_, owner) = text(&site, "/owner").await;
    assert!(
        owner.contains("must be connected again"),
        "a visitor reads the state: {owner}"
    );
}

#[tokio::test]
async fn a_stranger_logging_in_first_does_not_become_the_owner() {
    let (site, app, _dir) = owner_site().await;
    let owner_login = format!("{}/login?next=/owner", site.base);
    assert_eq!(
        login_as(&site, &owner_login, "cafe_nova").await,
        "/?login=not-connected",
        "no setup link: refused"
    );
    assert_eq!(app.records().owner().await.unwrap(), None, "nothing bound");
    assert!(app.showcase().unwrap().owner().is_none());
    assert!(
        app.instagram().tokens().store().users().await.unwrap().is_empty(),
        "no token of the stranger is kept"
    );
    // The owner, through the setup link; the link works once.
    let link = app.setup_link().await.unwrap();
    assert_eq!(login_as(&site, &link, "jayposiris").await, "/owner");
    let owner = user_id(&site.mock, "jayposiris");
    assert_eq!(app.records().owner().await.unwrap(), Some(owner.clone()));
    assert_eq!(client().get(&link).send().await.unwrap().status(), 404, "used");
    // A stranger now: refused, nothing changes.
    assert_eq!(
        login_as(&site, &owner_login, "cafe_nova").await,
        "/?login=other-account"
    );
    assert_eq!(app.showcase().unwrap().owner(), Some(owner.clone()));
    assert_eq!(app.instagram().tokens().store().users().await.unwrap(), [owner]);
}

#[tokio::test]
async fn the_owner_binding_survives_a_restart_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let records = || web_gallery::Records::file(dir.path().join("records.json")).unwrap();
    let mock = MockServer::start().unwrap();
    let (site, app) = owner_site_with(mock, dir.path(), records()).await;
    connect_owner(&site, &app).await;
    let owner = user_id(&site.mock, "jayposiris");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("records.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the records are private");
    }

    // Restarted (a new app on the same files; the token store was in memory, so it is empty):
    // a stranger is refused, the owner is shown and logs in again without a setup link.
    let (site, app) = owner_site_with(site.mock, dir.path(), records()).await;
    assert_eq!(app.showcase().unwrap().owner(), Some(owner.clone()));
    let owner_login = format!("{}/login?next=/owner", site.base);
    assert_eq!(
        login_as(&site, &owner_login, "cafe_nova").await,
        "/?login=other-account"
    );
    assert_eq!(app.records().owner().await.unwrap(), Some(owner.clone()));
    assert_eq!(login_as(&site, &owner_login, "jayposiris").await, "/owner");
}

#[tokio::test]
async fn a_configured_owner_id_admits_only_that_account() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockServer::start().unwrap();
    let owner = user_id(&mock, "jayposiris");
    let records = web_gallery::Records::memory();
    records.configure(&owner).await.unwrap();
    let (site, app) = owner_site_with(mock, dir.path(), records).await;
    let owner_login = format!("{}/login?next=/owner", site.base);
    assert_eq!(
        login_as(&site, &owner_login, "cafe_nova").await,
        "/?login=other-account"
    );
    assert_eq!(
        login_as(&site, &owner_login, "jayposiris").await,
        "/owner",
        "no setup link needed"
    );
    assert_eq!(app.instagram().tokens().store().users().await.unwrap(), [owner]);
}

#[tokio::test]
async fn with_a_database_a_stranger_first_is_refused_before_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db");
    let mock = MockServer::start().unwrap();
    let start = |mock: MockServer| {
        let (dir, db) = (dir.path().to_owned(), db.clone());
        async move {
            let (listener, base, builder) = listen(&mock).await;
            let keys = KeyRing::new(Key::new("k1", &[9; 32]).unwrap());
            let store = SqlStore::sqlite(&db, keys).await.unwrap();
            let instagram = builder.store(Arc::new(store.clone())).build().unwrap();
            let showcase = web_gallery::Showcase::new(
                dir.join("mirror"),
                web_gallery::downloader(mock.base_url()).unwrap(),
                instagram.clock().clone(),
            )
            .unwrap();
            let fleet = web_gallery::Fleet { store: store.clone() };
            let app =
                web_gallery::App::with_fleet(instagram, base.clone(), mock.base_url().to_owned(), fleet)
                    .await
                    .unwrap();
            if let Some(owner) = app.records().owner().await.unwrap() {
                showcase.set_owner(owner);
            }
            let app = Arc::new(app.with_showcase(showcase));
            let router = web_gallery::router(app.clone());
            tokio::spawn(async move { axum::serve(listener, router).await });
            (Site { mock, base }, app, store)
        }
    };
    let (site, app, store) = start(mock).await;
    let owner_login = format!("{}/login?next=/owner", site.base);
    assert_eq!(
        login_as(&site, &owner_login, "cafe_nova").await,
        "/?login=not-connected"
    );
    assert!(store.users().await.unwrap().is_empty(), "no row for the stranger");
    // The setup link printed by this instance works on another one on the same database.
    let link = app.setup_link().await.unwrap();
    let first = site.base.clone();
    let (other, other_app, _) = start(site.mock).await;
    let link = link.replace(&first, &other.base);
    assert_eq!(login_as(&other, &link, "jayposiris").await, "/owner");
    let owner = user_id(&other.mock, "jayposiris");
    assert_eq!(other_app.records().owner().await.unwrap(), Some(owner.clone()));

    // Restarted: the binding is read from the database, not from the first row of the store.
    let (site, app, store) = start(other.mock).await;
    assert_eq!(app.showcase().unwrap().owner(), Some(owner.clone()));
    let owner_login = format!("{}/login?next=/owner", site.base);
    assert_eq!(
        login_as(&site, &owner_login, "cafe_nova").await,
        "/?login=other-account"
    );
    assert_eq!(store.users().await.unwrap(), [owner]);
}

#[tokio::test]
async fn a_deletion_callback_purges_the_mirror_before_it_answers_and_its_status_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let records = || web_gallery::Records::file(dir.path().join("records.json")).unwrap();
    let (site, app) = owner_site_with(MockServer::start().unwrap(), dir.path(), records()).await;
    site.mock
        .set_callbacks(None, Some(&format!("{}/data-deletion", site.base)));
    connect_owner(&site, &app).await;
    let (_, html) = text(&site, "/").await;
    let images = sources(&html);
    assert_eq!(images.len(), 12);
    let head = client()
        .head(format!("{}{}", site.base, images[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200, "HEAD through the file server");
    assert!(head.headers().contains_key("etag"));

    let (status, answer) = site
        .mock
        .send_callback("jayposiris", igdisplay::mock::CallbackKind::DataDeletion)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let mirror = dir.path().join("mirror");
    let left: Vec<_> = walk(&mirror.join("media"));
    assert!(left.is_empty(), "no file of the account is left: {left:?}");
    for src in &images {
        let file = client().get(format!("{}{src}", site.base)).send().await.unwrap();
        assert_eq!(file.status(), 404, "{src}");
    }
    let (_, feed) = text(&site, "/feed.json").await;
    let feed: serde_json::Value = serde_json::from_str(&feed).unwrap();
    assert_eq!(feed["state"], "not_connected");
    let (_, home) = text(&site, "/").await;
    assert!(sources(&home).is_empty());
    assert!(home.contains("not connected"), "{home}");

    // The status URL given to Meta answers, after a restart too, and says what went.
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let url = answer["url"].as_str().unwrap().to_owned();
    let (site, _app) = owner_site_with(site.mock, dir.path(), records()).await;
    let path = url.split_once("/deletion").unwrap().1;
    let (status, page) = text(&site, &format!("/deletion{path}")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("mirrored files"), "{page}");
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|entry| entry.unwrap().path())
        .flat_map(|path| if path.is_dir() { walk(&path) } else { vec![path] })
        .collect()
}

#[tokio::test]
async fn only_the_files_of_the_owners_current_feed_are_served() {
    let (site, app, dir) = owner_site().await;
    connect_owner(&site, &app).await;
    let planted = dir.path().join("mirror/media/999/640.jpg");
    std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
    std::fs::write(&planted, b"\xFF\xD8 a previous owner's photo").unwrap();
    for path in [
        "/media/999/640.jpg",
        "/media/..%2F..%2Frecords.json",
        "/media/999/.hidden",
    ] {
        let response = client().get(format!("{}{path}", site.base)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_public_feed_says_its_state_in_a_few_words_never_instagrams_error() {
    let (site, app, _dir) = owner_site().await;
    connect_owner(&site, &app).await;
    site.mock.revoke_tokens("jayposiris").unwrap();
    assert!(web_gallery::sync_owner(&app).await.is_err());
    let (_, feed) = text(&site, "/feed.json").await;
    let json: serde_json::Value = serde_json::from_str(&feed).unwrap();
    assert_eq!(json["state"], "stale");
    assert!(
        json["summary"].as_str().unwrap().contains("connected again"),
        "{json}"
    );
    assert!(json.get("status").is_none() && !feed.contains("reason"), "{feed}");
    let (_, owner_page) = text(&site, "/owner").await;
    assert!(
        !owner_page.contains("OAuth") && !owner_page.contains("190"),
        "{owner_page}"
    );
}

#[tokio::test]
async fn two_hundred_thousand_anonymous_logins_leave_the_owners_session_alive() {
    use tower::ServiceExt as _;
    let (site, app, _dir) = owner_site().await;
    let link = app.setup_link().await.unwrap();
    let (landed, owner_cookie) = login_with_session(&site, &link, "jayposiris").await;
    assert_eq!(landed, "/owner");

    let router = web_gallery::router(app.clone());
    for _ in 0..200_000 {
        let request = axum::http::Request::get("/login")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 303);
    }
    let (anonymous, logged_in) = app.sessions_kept().unwrap();
    assert_eq!(anonymous, web_gallery::MAX_ANONYMOUS, "bounded");
    assert!(logged_in >= 1);
    let (_, owner_page) = {
        let response = get_with(format!("{}/owner", site.base), &owner_cookie).await;
        (response.status(), response.text().await.unwrap())
    };
    assert!(owner_page.contains("sync-now"), "the owner is still logged in");
}

#[tokio::test]
async fn owner_mode_marks_a_revoked_owner_in_the_store_and_sends_the_event() {
    let mock = MockServer::start().unwrap();
    let (listener, base, builder) = listen(&mock).await;
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::sqlite(
        &dir.path().join("site.db"),
        KeyRing::new(Key::new("k1", &[7; 32]).unwrap()),
    )
    .await
    .unwrap();
    let instagram = builder.store(Arc::new(store.clone())).build().unwrap();
    let showcase = web_gallery::Showcase::new(
        dir.path().join("mirror"),
        web_gallery::downloader(mock.base_url()).unwrap(),
        instagram.clock().clone(),
    )
    .unwrap();
    let mut received = store.events().subscribe().await.unwrap();
    let fleet = web_gallery::Fleet { store: store.clone() };
    let app = Arc::new(
        web_gallery::App::with_fleet(instagram, base.clone(), mock.base_url().to_owned(), fleet)
            .await
            .unwrap()
            .with_showcase(showcase),
    );
    let router = web_gallery::router(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let site = Site { mock, base };
    connect_owner(&site, &app).await;

    site.mock.revoke_tokens("jayposiris").unwrap();
    assert!(web_gallery::sync_owner(&app).await.is_err());
    assert_eq!(store.counts().await.unwrap()[&AccountState::Revoked], 1);
    assert!(matches!(
        received.try_next().await.unwrap().unwrap().event,
        igdisplay::store::Event::Revoked { .. }
    ));
}

#[test]
fn the_help_page_shows_no_database_password_from_the_environment() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_web-gallery"))
        .arg("--help")
        .env_clear()
        .env(
            "DATABASE_URL",
            "postgres://app:CANARY-db-password@db.internal/site",
        )
        .output()
        .unwrap();
    assert!(output.status.success());
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(shown.contains("DATABASE_URL"), "{shown}");
    assert!(!shown.contains("CANARY-db-password"), "{shown}");
}

#[tokio::test]
async fn a_logged_out_visitor_of_an_album_comes_back_to_it_after_the_login() {
    let site = site().await;
    let album = client()
        .get(format!("{}/album/17900000000000123", site.base))
        .send()
        .await
        .unwrap();
    assert_eq!(album.status(), 303);
    assert_eq!(
        album.headers()["location"],
        "/login?next=%2Falbum%2F17900000000000123"
    );
    let hostile = client()
        .get(format!("{}/album/x%3F%2F%2Fevil.example", site.base))
        .send()
        .await
        .unwrap();
    // The page asked for, as the browser sent it: its escapes stay escapes, so the way back
    // is a path on this site, never `//evil.example`.
    assert_eq!(
        hostile.headers()["location"],
        "/login?next=%2Falbum%2Fx%253F%252F%252Fevil.example"
    );
}

//! The web gallery's rules over HTTP: cookie flags, the state bound to the session (a callback
//! from another cookie jar is refused), no open redirect, clean redirects, escaped captions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay::Instagram;
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
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&site.mock.authorize_url()));
    let callback = site
        .mock
        .approve(&authorize, "jayposiris")
        .unwrap()
        .trim_end_matches("#_")
        .to_owned();
    (cookie, callback)
}

/// A complete login; returns the session cookie the site set when it completed.
async fn logged_in(site: &Site) -> String {
    let (cookie, callback) = start_login(site, "/gallery").await;
    let done = client()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    cookie_of(&done)
}

/// The gallery page as `cookie`'s session sees it.
async fn gallery_html(site: &Site, cookie: &str) -> String {
    client()
        .get(format!("{}/gallery", site.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn gallery_status(site: &Site, cookie: &str) -> u16 {
    let gallery = client()
        .get(format!("{}/gallery", site.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
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
    assert_eq!(stranger.status(), 400);
    site.mock
        .expect_requests("POST", "/oauth/access_token", 0)
        .unwrap();

    // The right session completes, to a local clean URL whatever `next` said.
    let done = client()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(done.headers()["location"], "/gallery");
    assert_eq!(done.headers()["cache-control"], "no-store");
    assert_eq!(done.headers()["referrer-policy"], "no-referrer");
    let session = cookie_of(&done);
    let gallery = client()
        .get(format!("{}/gallery", site.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(gallery.status(), 200);
    let html = gallery.text().await.unwrap();
    assert!(
        html.contains("&#60;script&#62;alert(&#39;caption&#39;)&#60;/script&#62; is just text"),
        "escaped"
    );
    assert!(!html.contains("<script"));
    assert!(!html.contains("IGAA"), "no token in the page");

    // A second use of the same callback is refused: the state was single use.
    let replay = client()
        .get(&callback)
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
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
    let done = client()
        .get(&callback)
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
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
    let done = client()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let session = cookie_of(&done);
    // Replaying the authorization code makes Instagram revoke what it gave (the mock does too).
    let code = callback
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let app = site.mock.app();
    let replay = client()
        .post(format!("{}/oauth/access_token", site.mock.base_url()))
        .form(&[
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", &format!("{}/auth/callback", site.base)),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    let gallery = client()
        .get(format!("{}/gallery", site.base))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
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
    let answer = client()
        .get(&hostile)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    assert_eq!(answer.headers()["location"], "/");
    let home = client()
        .get(&site.base)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("You cancelled the login. Nothing was shared."),
        "{home}"
    );
    assert!(!home.contains("alert(1)") && !home.contains("<script"), "{home}");
    // The state was consumed: the same redirect again is a stale link.
    let again = client()
        .get(&hostile)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
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

/// The site in owner mode against a mock, its mirror in a temporary folder.
async fn owner_site() -> (Site, Arc<web_gallery::App>, tempfile::TempDir) {
    let mock = MockServer::start().unwrap();
    let (listener, base, builder) = listen(&mock).await;
    let instagram = builder.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let showcase = web_gallery::Showcase::new(
        dir.path().to_owned(),
        web_gallery::downloader(mock.base_url()).unwrap(),
        instagram.clock().clone(),
    );
    let app = Arc::new(
        web_gallery::App::new(instagram, base.clone(), mock.base_url().to_owned()).with_showcase(showcase),
    );
    let router = web_gallery::router(app.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (Site { mock, base }, app, dir)
}

async fn text(site: &Site, path: &str) -> (u16, String) {
    let response = client().get(format!("{}{path}", site.base)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The `src` of every image of a page.
fn sources(html: &str) -> Vec<String> {
    html.split("<img src=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn owner_mode_shows_the_owners_feed_to_anonymous_visitors_from_the_sites_own_files() {
    let (site, app, _dir) = owner_site().await;
    let (_, before) = text(&site, "/").await;
    assert!(before.contains("id=\"empty\""), "no owner yet: says so");

    logged_in(&site).await; // the owner connects the site once
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
    for src in &images {
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
    assert!(owner.contains("log in again"), "{owner}");
}

#[tokio::test]
async fn owner_mode_refuses_another_account_and_keeps_no_token_of_it() {
    let (site, app, _dir) = owner_site().await;
    logged_in(&site).await;
    let owner = app.showcase().unwrap().owner().unwrap();
    let login = client()
        .get(format!("{}/login?next=/owner", site.base))
        .send()
        .await
        .unwrap();
    let cookie = cookie_of(&login);
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    let callback = site
        .mock
        .approve(&authorize, "cafe_nova")
        .unwrap()
        .trim_end_matches("#_")
        .to_owned();
    let refused = client()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(app.showcase().unwrap().owner(), Some(owner.clone()));
    assert_eq!(app.instagram().tokens().store().users().await.unwrap(), [owner]);
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
    );
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
    logged_in(&site).await;

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

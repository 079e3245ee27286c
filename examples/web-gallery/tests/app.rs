//! The web gallery's rules over HTTP: cookie flags, the state bound to the session (a callback
//! from another cookie jar is refused), no open redirect, clean redirects, escaped captions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay::Instagram;
use igdisplay::mock::MockServer;
use igdisplay::model::{AppSecret, Platform};
use std::sync::Arc;

struct Site {
    mock: MockServer,
    base: String,
}

async fn site() -> Site {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mock = MockServer::start().unwrap();
    mock.add_redirect_uri(&format!("{base}/auth/callback"));
    let app = mock.app();
    let instagram = Instagram::builder(
        Platform::InstagramLogin,
        app.id,
        AppSecret::new(app.secret),
        format!("{base}/auth/callback"),
    )
    .mock(mock.base_url())
    .clock(igdisplay::follow_mock_clock(&mock))
    .build()
    .unwrap();
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

/// Starts a login in the session of `cookie` and returns where the mock sends the browser back.
async fn approved_callback(site: &Site, cookie: &str, next: &str) -> String {
    let login = client()
        .get(format!("{}/login?next={next}", site.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&site.mock.authorize_url()));
    site.mock
        .approve(&authorize, "jayposiris")
        .unwrap()
        .trim_end_matches("#_")
        .to_owned()
}

#[tokio::test]
async fn the_state_is_bound_to_the_session_and_redirects_stay_local() {
    let site = site().await;
    let home = client().get(&site.base).send().await.unwrap();
    let cookie = cookie_of(&home);
    let csp = home.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));

    // The same callback from another browser (another cookie jar) is refused.
    let callback = approved_callback(&site, &cookie, "https://evil.example").await;
    let stranger = client().get(&callback).send().await.unwrap();
    let stranger_cookie = cookie_of(&stranger);
    assert_eq!(stranger.status(), 400);
    let stranger_gallery = client()
        .get(format!("{}/gallery", site.base))
        .header("cookie", &stranger_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(stranger_gallery.status(), 303, "still logged out");
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
    let gallery = client()
        .get(format!("{}/gallery", site.base))
        .header("cookie", &cookie)
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
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
}

#[tokio::test]
async fn an_expired_token_shows_a_friendly_page() {
    let site = site().await;
    let cookie = cookie_of(&client().get(&site.base).send().await.unwrap());
    let callback = approved_callback(&site, &cookie, "/gallery").await;
    client()
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    site.mock.advance(std::time::Duration::from_secs(61 * 86_400));
    let gallery = client()
        .get(format!("{}/gallery", site.base))
        .header("cookie", &cookie)
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

//! Black-box HTTP tests of every rule of the mock, written from the reference with plain
//! reqwest and JSON values: no igdisplay client crate is involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_mock::{
    CallbackKind, Fault, FaultKind, MockPlatform, MockServer, Seed, Stub, TokenLifetime, TokenShape,
};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

#[path = "it/recorded.rs"]
mod recorded;

const REDIRECT: &str = "https://app.example/auth/";

fn http() -> reqwest::Client {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn mock(platform: MockPlatform) -> MockServer {
    MockServer::builder().platform(platform).start().unwrap()
}

fn enc(value: &str) -> String {
    url_encode(value)
}

fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn scope(platform: MockPlatform) -> &'static str {
    match platform {
        MockPlatform::BasicDisplay => "user_profile,user_media",
        MockPlatform::InstagramLogin => "instagram_business_basic",
    }
}

fn authorize_url(mock: &MockServer, redirect: &str, scope: &str, extra: &str) -> String {
    format!(
        "{}?client_id={}&redirect_uri={}&scope={}&response_type=code&state=S1{extra}",
        mock.authorize_url(),
        mock.app().id,
        enc(redirect),
        enc(scope)
    )
}

/// The `code` of a redirect location, checking the `#_` and the state.
fn code_of(location: &str) -> String {
    assert!(location.starts_with(REDIRECT), "{location}");
    assert!(location.ends_with("#_"), "{location}");
    assert!(location.contains("&state=S1#_"), "{location}");
    location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned()
}

async fn approve(mock: &MockServer, user: &str) -> String {
    let platform = mock.platform();
    let url = authorize_url(
        mock,
        REDIRECT,
        scope(platform),
        &format!("&mock_approve_as={user}"),
    );
    let response = http().get(url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    code_of(response.headers()["location"].to_str().unwrap())
}

async fn exchange(mock: &MockServer, code: &str) -> (u16, String) {
    let app = mock.app();
    let response = http()
        .post(format!("{}/oauth/access_token", mock.base_url()))
        .form(&[
            ("client_id", app.id.as_str()),
            ("client_secret", app.secret.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
            ("code", code),
        ])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = http().get(url).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn short_token(mock: &MockServer, user: &str) -> String {
    let code = approve(mock, user).await;
    let (status, body) = exchange(mock, &code).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A Basic Display token of `jayposiris` granted `user_profile` only, approved through the window.
async fn profile_only_token(mock: &MockServer) -> String {
    granted_token(mock, "jayposiris", "user_profile").await
}

/// A token of `user` granted `scopes` (comma-separated), approved through the window.
async fn granted_token(mock: &MockServer, user: &str, scopes: &str) -> String {
    let url = authorize_url(mock, REDIRECT, scopes, &format!("&mock_approve_as={user}"));
    let location = http().get(url).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let (_, body) = exchange(mock, &code_of(&location)).await;
    serde_json::from_str::<Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn long_token(mock: &MockServer, user: &str) -> String {
    let short = short_token(mock, user).await;
    let url = format!(
        "{}/access_token?grant_type=ig_exchange_token&client_secret={}&access_token={short}",
        mock.base_url(),
        mock.app().secret
    );
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 5_184_000);
    body["access_token"].as_str().unwrap().to_owned()
}

fn graph(mock: &MockServer, path_and_query: &str, token: &str) -> String {
    let separator = if path_and_query.contains('?') { '&' } else { '?' };
    format!(
        "{}{path_and_query}{separator}access_token={token}",
        mock.base_url()
    )
}

#[tokio::test]
async fn the_cli_prints_where_it_listens_first() {
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: igdisplay_mock::cli::ServeArgs,
    }
    let args = Args::parse_from(["igdisplay-mock", "--addr", "127.0.0.1:0", "--clock", "frozen"]);
    let mut out = Vec::new();
    let server = igdisplay_mock::cli::start(&args.serve, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let first = text.lines().next().unwrap();
    assert_eq!(first, format!("listening on {}", server.base_url()));
    assert!(text.contains("app secret:    mock-app-secret-"), "{text}");
    assert!(text.contains("@not_a_tester") && text.contains("NOT a tester"));
    let (status, _, body) = get(&format!("{}/_mock/health", server.base_url())).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn the_control_api_lists_its_endpoints() {
    let mock = mock(MockPlatform::InstagramLogin);
    let (status, _, body) = get(&format!("{}/_mock/", mock.base_url())).await;
    assert_eq!(status, 200);
    let listed: Vec<String> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap(),
                e["path"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        listed.contains(&"POST /_mock/clock/advance".to_owned()),
        "{listed:?}"
    );
    assert_eq!(listed.len(), 28);
}

#[tokio::test]
async fn a_hostile_clock_request_is_clamped_and_the_mock_keeps_issuing_tokens() {
    let mock = mock(MockPlatform::InstagramLogin);
    let advance = format!(
        "{}/_mock/clock/advance?seconds=9223372036854775807",
        mock.base_url()
    );
    let answer = http().post(advance).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(mock.now(), igdisplay_mock::LATEST);
    let token = mock.issue_token("jayposiris", TokenLifetime::LongLived).unwrap();
    assert!(token.expires_in > 0);
}

#[tokio::test]
async fn the_authorize_window_validates_every_parameter() {
    let mock = mock(MockPlatform::BasicDisplay);
    let cases = [
        (
            authorize_url(&mock, REDIRECT, "user_profile", "").replace(&mock.app().id, "1"),
            "Invalid platform app",
        ),
        (
            authorize_url(&mock, "https://app.example/auth", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, "https://APP.example/auth/", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, "https://app.example/auth/?x=1", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, "http://app.example/auth/", "user_profile", ""),
            "Invalid redirect_uri",
        ),
        (
            authorize_url(&mock, REDIRECT, "user_media", ""),
            "Invalid scope: [user_media]",
        ),
        (authorize_url(&mock, REDIRECT, "", ""), "Invalid scope: []"),
        (
            authorize_url(&mock, REDIRECT, "instagram_business_basic", ""),
            "Invalid scope: instagram_business_basic",
        ),
        (
            authorize_url(&mock, REDIRECT, "user_profile", "")
                .replace("response_type=code", "response_type=token"),
            "Invalid response type: token",
        ),
    ];
    for (url, message) in cases {
        let (status, _, body) = get(&url).await;
        assert_eq!(status, 400, "{url}");
        assert_eq!(body["error_type"], "OAuthException");
        assert_eq!(body["code"], 400);
        assert!(
            body["error_message"].as_str().unwrap().contains(message),
            "{url}: {body}"
        );
    }
    let login = self::mock(MockPlatform::InstagramLogin);
    let (_, _, body) = get(&authorize_url(&login, REDIRECT, "user_profile", "")).await;
    assert!(
        body["error_message"]
            .as_str()
            .unwrap()
            .contains("Invalid scope: user_profile")
    );
}

#[tokio::test]
async fn the_window_is_a_real_page_whose_buttons_approve_or_cancel() {
    let mock = mock(MockPlatform::InstagramLogin);
    let url = authorize_url(
        &mock,
        REDIRECT,
        "instagram_business_basic,instagram_business_manage_comments",
        "",
    );
    let response = http().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("igdisplay demo would like to access your Instagram account"));
    assert!(page.contains("<li>instagram_business_manage_comments</li>"));
    for user in ["jayposiris", "cafe_nova", "not_a_tester"] {
        assert!(page.contains(&format!("Continue as @{user}")), "{user}");
    }
    assert!(page.contains(r#"id="cancel""#) && !page.contains("<script"));
    let form = |extra: (&'static str, &'static str)| {
        let app = mock.app();
        vec![
            ("client_id", app.id),
            ("redirect_uri", REDIRECT.to_owned()),
            ("response_type", "code".to_owned()),
            ("scope", "instagram_business_basic".to_owned()),
            ("state", "S1".to_owned()),
            (extra.0, extra.1.to_owned()),
        ]
    };
    let post = |fields: Vec<(&'static str, String)>| http().post(mock.authorize_url()).form(&fields).send();
    let approved = post(form(("user", "jayposiris"))).await.unwrap();
    assert_eq!(approved.status(), 302);
    code_of(approved.headers()["location"].to_str().unwrap());
    let cancelled = post(form(("cancel", "1"))).await.unwrap();
    assert_eq!(
        cancelled.headers()["location"],
        "https://app.example/auth/?error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request&state=S1"
    );
    let outsider = post(form(("user", "not_a_tester"))).await.unwrap();
    assert_eq!(outsider.status(), 400);
    assert_eq!(
        outsider.json::<Value>().await.unwrap()["error_message"],
        "Insufficient developer role"
    );
    let personal = post(form(("user", "sam_personal"))).await.unwrap();
    assert!(personal.text().await.unwrap().contains("professional account"));
}

#[tokio::test]
async fn codes_exchange_once_in_each_platform_shape() {
    let basic = mock(MockPlatform::BasicDisplay);
    let code = approve(&basic, "jayposiris").await;
    let (status, body) = exchange(&basic, &code).await;
    assert_eq!(status, 200);
    // A bare JSON number above 2^53, as Basic Display sends it, naming the id that paging
    // links carry, not the app-scoped id of `/me` (as recorded).
    let id = basic.users()[0].user_id.clone();
    assert_ne!(id, basic.users()[0].id);
    assert!(body.contains(&format!("\"user_id\":{id}")), "{body}");
    assert!(id.parse::<u64>().unwrap() > (1u64 << 53));

    let login = mock(MockPlatform::InstagramLogin);
    let code = approve(&login, "cafe_nova").await;
    let body: Value = serde_json::from_str(&exchange(&login, &code).await.1).unwrap();
    assert_eq!(
        body["permissions"],
        serde_json::json!(["instagram_business_basic"])
    );
    assert!(body["user_id"].is_u64());

    let wrapped = MockServer::builder()
        .token_shape(TokenShape::Wrapped)
        .start()
        .unwrap();
    let code = approve(&wrapped, "cafe_nova").await;
    let body: Value = serde_json::from_str(&exchange(&wrapped, &code).await.1).unwrap();
    assert!(body["data"][0]["user_id"].is_string());
    assert_eq!(body["data"][0]["permissions"], "instagram_business_basic");
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_it_gave() {
    for (platform, message) in [
        (
            MockPlatform::BasicDisplay,
            "This authorization code has been used",
        ),
        (
            MockPlatform::InstagramLogin,
            "Matching code was not found or was already used",
        ),
    ] {
        let mock = mock(platform);
        let code = approve(&mock, "jayposiris").await;
        let (_, first) = exchange(&mock, &code).await;
        let token = serde_json::from_str::<Value>(&first).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 200);
        let (status, second) = exchange(&mock, &code).await;
        assert_eq!(status, 400);
        assert_eq!(
            serde_json::from_str::<Value>(&second).unwrap()["error_message"],
            message
        );
        let (status, headers, body) = get(&graph(&mock, "/me", &token)).await;
        assert_eq!(
            (
                status,
                body["error"]["code"].as_i64(),
                body["error"]["error_subcode"].as_i64()
            ),
            (400, Some(190), Some(460))
        );
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
    }
}

#[tokio::test]
async fn codes_are_bound_to_their_redirect_uri_client_and_hour() {
    let mock = mock(MockPlatform::BasicDisplay);
    let app = mock.app();
    let code = approve(&mock, "jayposiris").await;
    let send = |fields: Vec<(&'static str, String)>| {
        http()
            .post(format!("{}/oauth/access_token", mock.base_url()))
            .form(&fields)
            .send()
    };
    let base = |redirect: &str, secret: &str, code: &str| {
        vec![
            ("client_id", app.id.clone()),
            ("client_secret", secret.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
            ("redirect_uri", redirect.to_owned()),
            ("code", code.to_owned()),
        ]
    };
    let message = |r: reqwest::Response| async move {
        r.json::<Value>().await.unwrap()["error_message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let wrong_uri = send(base("https://app.example/auth", &app.secret, &code))
        .await
        .unwrap();
    assert!(message(wrong_uri).await.contains("redirect_uri is identical"));
    let wrong_secret = send(base(REDIRECT, "nope", &code)).await.unwrap();
    assert_eq!(message(wrong_secret).await, "Error validating client secret.");
    let unknown = send(base(REDIRECT, &app.secret, "AQnope")).await.unwrap();
    assert_eq!(message(unknown).await, "Invalid authorization code");
    mock.advance(Duration::from_secs(3600));
    let late = send(base(REDIRECT, &app.secret, &code)).await.unwrap();
    assert_eq!(message(late).await, "This authorization code has expired");

    // curl -F sends multipart; that works too.
    let code = approve(&mock, "jayposiris").await;
    let form = reqwest::multipart::Form::new()
        .text("client_id", app.id.clone())
        .text("client_secret", app.secret.clone())
        .text("grant_type", "authorization_code")
        .text("redirect_uri", REDIRECT)
        .text("code", code);
    let response = http()
        .post(format!("{}/oauth/access_token", mock.base_url()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn token_lifetimes_follow_the_reference() {
    let mock = mock(MockPlatform::InstagramLogin);
    let secret = mock.app().secret;
    let short = short_token(&mock, "jayposiris").await;
    let exchange_url = |token: &str, secret: &str| {
        format!(
            "{}/access_token?grant_type=ig_exchange_token&client_secret={secret}&access_token={token}",
            mock.base_url()
        )
    };
    assert_eq!(
        get(&exchange_url(&short, "wrong")).await.2["error"]["message"],
        "Error validating client secret."
    );
    let long = long_token(&mock, "jayposiris").await;
    assert_eq!(
        get(&exchange_url(&long, &secret)).await.0,
        400,
        "a long-lived token is not exchanged again"
    );
    let refresh = |token: &str| {
        format!(
            "{}/refresh_access_token?grant_type=ig_refresh_token&access_token={token}",
            mock.base_url()
        )
    };
    let (status, _, body) = get(&refresh(&long)).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("24 hours"));
    assert_eq!(
        get(&refresh(&short)).await.0,
        400,
        "short-lived tokens are not refreshed"
    );
    let post = http().post(refresh(&long)).send().await.unwrap();
    assert!(
        post.text()
            .await
            .unwrap()
            .contains("Unsupported request - method type: post")
    );
    mock.advance(Duration::from_secs(24 * 3600));
    // The short-lived token expired after an hour: 190 with the mock's dates and, as
    // graph.instagram.com sends it, no subcode.
    let (status, headers, body) = get(&exchange_url(&short, &secret)).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_i64(),
            body["error"]["error_subcode"].as_i64()
        ),
        (400, Some(190), None)
    );
    assert_eq!(
        body["error"]["message"],
        "Error validating access token: Session has expired on Thursday, 15-Jan-26 13:00:00 UTC. The current time is Friday, 16-Jan-26 12:00:00 UTC."
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("OAuth \"Facebook Platform\" \"invalid_token\"")
    );
    let (status, _, body) = get(&refresh(&long)).await;
    assert_eq!(status, 200);
    let refreshed = body["access_token"].as_str().unwrap();
    assert_ne!(refreshed, long);
    mock.advance(Duration::from_secs(60 * 24 * 3600));
    let expired = get(&refresh(refreshed)).await.2;
    assert_eq!(expired["error"]["code"], 190);
    assert!(expired["error"].get("error_subcode").is_none(), "{expired}");
}

#[tokio::test]
async fn the_documented_expiry_subcode_is_available_on_request() {
    let options = igdisplay_mock::MockOptions {
        expired_token: igdisplay_mock::ExpiredTokenForm::Facebook,
        ..Default::default()
    };
    let mock = MockServer::builder().options(options).start().unwrap();
    let token = long_token(&mock, "jayposiris").await;
    mock.advance(Duration::from_secs(61 * 24 * 3600));
    let (status, _, body) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!(
        (status, body["error"]["error_subcode"].as_i64()),
        (400, Some(463))
    );
}

#[tokio::test]
async fn graph_fields_defaults_and_errors() {
    let mock = mock(MockPlatform::BasicDisplay);
    let token = short_token(&mock, "jayposiris").await;
    let me = mock.users()[0].clone();
    let (_, headers, body) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!(
        body,
        serde_json::json!({"id": me.id}),
        "without fields, only the id"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let (_, _, body) = get(&graph(
        &mock,
        "/v21.0/me?fields=id,username,account_type,media_count",
        &token,
    ))
    .await;
    assert_eq!(body["username"], "jayposiris");
    assert_eq!(body["media_count"], 40);
    let (_, _, body) = get(&graph(&mock, &format!("/{}?fields=username", me.id), &token)).await;
    assert_eq!(body["username"], "jayposiris");
    let (status, _, body) = get(&graph(&mock, "/me?fields=id,followers_count", &token)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "(#100) Tried accessing nonexisting field (followers_count) on node type (User)"
    );
    let other = mock.users()[1].id.clone();
    let (_, _, body) = get(&graph(&mock, &format!("/{other}"), &token)).await;
    assert_eq!(
        (
            body["error"]["code"].as_i64(),
            body["error"]["error_subcode"].as_i64()
        ),
        (Some(100), Some(33))
    );
    let (_, _, body) = get(&graph(&mock, "/me/stories", &token)).await;
    assert_eq!(body["error"]["code"], 2500);
    let (_, _, body) = get(&format!("{}/me", mock.base_url())).await;
    assert_eq!(body["error"]["code"], 104);
    // Without user_media, media is refused.
    let profile_only = profile_only_token(&mock).await;
    assert_eq!(
        get(&graph(&mock, "/me/media", &profile_only)).await.2["error"]["code"],
        10
    );
    assert_eq!(
        get(&graph(&mock, "/me?fields=media_count", &profile_only))
            .await
            .2["error"]["code"],
        10
    );

    let login = self::mock(MockPlatform::InstagramLogin);
    let token = short_token(&login, "cafe_nova").await;
    let all =
        "id,user_id,username,name,account_type,profile_picture_url,followers_count,follows_count,media_count";
    let (_, _, body) = get(&graph(&login, &format!("/me?fields={all}"), &token)).await;
    assert_eq!(body["account_type"], "BUSINESS");
    assert_eq!(body["name"], "Café Nova");
    assert!(body["user_id"].as_str().unwrap().parse::<u64>().unwrap() > (1u64 << 53));
    assert!(body["profile_picture_url"].as_str().unwrap().contains("/cdn/v/"));
}

/// Reference C.1b: Instagram Login serves `biography` and `website` (the defaults of two
/// clients written by others); a profile without one leaves it out; Basic Display refuses both.
#[tokio::test]
async fn biography_and_website_are_served_on_instagram_login_and_left_out_when_empty() {
    let login = mock(MockPlatform::InstagramLogin);
    let token = short_token(&login, "cafe_nova").await;
    let (status, _, body) = get(&graph(&login, "/me?fields=id,biography,website", &token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["biography"], "Bakery & café · open 7–19");
    assert_eq!(body["website"], "https://cafe-nova.example/");
    let jay = short_token(&login, "jayposiris").await;
    let (_, _, body) = get(&graph(&login, "/me?fields=id,biography,website", &jay)).await;
    assert!(body["biography"].is_string());
    assert!(
        body.get("website").is_none(),
        "no website: left out, not null: {body}"
    );

    let basic = mock(MockPlatform::BasicDisplay);
    let token = short_token(&basic, "jayposiris").await;
    let (status, _, body) = get(&graph(&basic, "/me?fields=id,biography", &token)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "(#100) Tried accessing nonexisting field (biography) on node type (User)"
    );
}

/// A request in `/v24.0/` or `/v26.0/` is answered in that version: its
/// `Instagram-Api-Version` header and its paging links name it, not the default `v21.0`.
#[tokio::test]
async fn a_graph_call_is_answered_in_the_version_it_was_asked_in() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    for version in ["v24.0", "v26.0"] {
        let (status, headers, body) =
            get(&graph(&mock, &format!("/{version}/me/media?fields=id"), &token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["instagram-api-version"], version);
        let next = body["paging"]["next"].as_str().unwrap();
        assert!(
            next.starts_with(&format!("{}/{version}/", mock.base_url())),
            "{next}"
        );
        let (_, headers, body) = get(&graph(
            &mock,
            &format!("/{version}/me?fields=id,media{{id}}"),
            &token,
        ))
        .await;
        assert_eq!(headers["instagram-api-version"], version);
        let next = body["media"]["paging"]["next"].as_str().unwrap();
        assert!(
            next.contains(&format!("/{version}/")),
            "an expanded page too: {next}"
        );
    }
    let (_, headers, _) = get(&graph(&mock, "/me?fields=id", &token)).await;
    assert_eq!(
        headers["instagram-api-version"], "v21.0",
        "no version asked: the default"
    );
}

/// One clock for every answer: the Graph API, the token endpoints, the code exchange, a
/// preflight and the window are all dated on the mock's clock, never the machine's.
#[tokio::test]
async fn every_answer_is_dated_on_the_mocks_clock() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let expected =
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(u64::try_from(mock.now()).unwrap()));
    let date = |headers: &reqwest::header::HeaderMap| headers["date"].to_str().unwrap().to_owned();
    let (_, graph_headers, _) = get(&graph(&mock, "/me", &token)).await;
    let (_, token_headers, _) = get(&format!(
        "{}/access_token?grant_type=ig_exchange_token&client_secret={}&access_token={token}",
        mock.base_url(),
        mock.app().secret
    ))
    .await;
    let exchange = http()
        .post(format!("{}/oauth/access_token", mock.base_url()))
        .form(&[("code", "not-a-code")])
        .send()
        .await
        .unwrap();
    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{}/me", mock.base_url()))
        .send()
        .await
        .unwrap();
    let window = http()
        .get(authorize_url(&mock, REDIRECT, "instagram_business_basic", ""))
        .send()
        .await
        .unwrap();
    for (what, headers) in [
        ("graph", &graph_headers),
        ("token endpoint", &token_headers),
        ("code exchange", exchange.headers()),
        ("preflight", preflight.headers()),
        ("window", window.headers()),
    ] {
        assert_eq!(date(headers), expected, "{what}");
        assert_eq!(headers.get_all("date").iter().count(), 1, "{what}: one Date");
    }
}

#[tokio::test]
async fn media_pages_by_cursor_with_absolute_links_newest_first() {
    let mock = mock(MockPlatform::BasicDisplay);
    let token = short_token(&mock, "jayposiris").await;
    let (_, _, first) = get(&graph(&mock, "/me/media?fields=id,timestamp", &token)).await;
    let items = first["data"].as_array().unwrap();
    assert_eq!(items.len(), 25, "the default page size");
    assert!(first["paging"]["previous"].is_null());
    let next = first["paging"]["next"].as_str().unwrap();
    let user_id = mock.users()[0].user_id.clone();
    assert!(
        next.starts_with(&format!(
            "{}/v21.0/{user_id}/media?access_token={token}&fields=id%2Ctimestamp&limit=25&after=",
            mock.base_url()
        )),
        "{next}"
    );
    let stamps: Vec<&str> = items.iter().map(|m| m["timestamp"].as_str().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(stamps[0].ends_with("+0000"));
    let (_, _, second) = get(next).await;
    assert_eq!(second["data"].as_array().unwrap().len(), 15);
    assert!(second["paging"]["next"].is_null(), "absent on the last page");
    assert!(second["paging"]["previous"].is_string());
    let before = second["paging"]["cursors"]["before"].as_str().unwrap();
    let (_, _, back) = get(&graph(
        &mock,
        &format!("/me/media?limit=5&before={before}"),
        &token,
    ))
    .await;
    assert_eq!(back["data"][4]["id"], items[24]["id"]);
    let (_, _, capped) = get(&graph(&mock, "/me/media?limit=1000", &token)).await;
    assert_eq!(capped["data"].as_array().unwrap().len(), 40);
    let newest = items[0]["timestamp"].as_str().unwrap().to_owned();
    let (_, _, since) = get(&graph(
        &mock,
        &format!("/me/media?since={}", mock.now() - 3600 - 7 * 3600),
        &token,
    ))
    .await;
    assert_eq!(since["data"].as_array().unwrap().len(), 2, "{newest}");
    let (_, _, bad) = get(&graph(&mock, "/me/media?after=garbage", &token)).await;
    assert_eq!(bad["error"]["code"], 100);
    for item in items {
        let id = item["id"].as_str().unwrap();
        assert!(id.parse::<u64>().unwrap() > (1u64 << 53));
    }
}

#[tokio::test]
async fn albums_expand_their_children_and_only_albums_have_them() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let fields = "id,caption,media_type,media_url,thumbnail_url,permalink,like_count,children{id,media_type,media_url,caption}";
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/me/media?limit=100&fields={}", enc(fields)),
        &token,
    ))
    .await;
    let media = page["data"].as_array().unwrap();
    let albums: Vec<&Value> = media
        .iter()
        .filter(|m| m["media_type"] == "CAROUSEL_ALBUM")
        .collect();
    assert!(!albums.is_empty());
    for album in &albums {
        let children = album["children"]["data"].as_array().unwrap();
        assert!((2..=10).contains(&children.len()));
        assert!(
            children.iter().all(|c| c.get("caption").is_none()),
            "no caption on children"
        );
    }
    assert!(
        media
            .iter()
            .filter(|m| m["media_type"] != "CAROUSEL_ALBUM")
            .all(|m| m.get("children").is_none())
    );
    let video = media.iter().find(|m| m["media_type"] == "VIDEO").unwrap();
    assert!(video["thumbnail_url"].is_string());
    assert!(
        media.iter().any(|m| m.get("caption").is_none()),
        "some posts have no caption"
    );
    assert!(
        media
            .iter()
            .any(|m| m["caption"].as_str().is_some_and(|c| c.contains('🌅')))
    );
    assert!(
        media.iter().any(|m| m.get("media_url").is_none()),
        "the copyright-flagged item"
    );
    let album_id = albums[0]["id"].as_str().unwrap();
    let (_, _, children) = get(&graph(
        &mock,
        &format!("/{album_id}/children?fields=id,media_type,timestamp"),
        &token,
    ))
    .await;
    assert_eq!(
        children["data"].as_array().unwrap().len(),
        albums[0]["children"]["data"].as_array().unwrap().len()
    );
    let child_id = children["data"][0]["id"].as_str().unwrap();
    assert_eq!(
        get(&graph(
            &mock,
            &format!("/{child_id}?fields=id,media_type"),
            &token
        ))
        .await
        .2["id"],
        child_id
    );
    let image = media.iter().find(|m| m["media_type"] == "IMAGE").unwrap()["id"]
        .as_str()
        .unwrap();
    assert_eq!(
        get(&graph(&mock, &format!("/{image}/children"), &token)).await.0,
        400
    );
}

#[tokio::test]
async fn cdn_links_serve_real_bytes_until_they_expire() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let (_, _, page) = get(&graph(
        &mock,
        "/me/media?limit=10&fields=media_type,media_url,thumbnail_url",
        &token,
    ))
    .await;
    let media = page["data"].as_array().unwrap();
    let image = media.iter().find(|m| m["media_type"] == "IMAGE").unwrap()["media_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let video = media.iter().find(|m| m["media_type"] == "VIDEO").unwrap();
    let bytes = http().get(&image).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..2], [0xFF, 0xD8], "a JPEG");
    let clip = http()
        .get(video["media_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(clip.headers()["content-type"], "video/mp4");
    assert_eq!(&clip.bytes().await.unwrap()[4..8], b"ftyp");
    let tampered = image.replace("_nc_sig=", "_nc_sig=0");
    assert_eq!(
        http().get(&tampered).send().await.unwrap().text().await.unwrap(),
        "Bad URL hash"
    );
    mock.advance(Duration::from_secs(3 * 24 * 3600));
    let expired = http().get(&image).send().await.unwrap();
    assert_eq!(expired.status(), 403);
    assert_eq!(expired.text().await.unwrap(), "URL signature expired");
}

#[tokio::test]
async fn the_cdn_answers_a_byte_range_as_a_player_asks() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let (_, _, page) = get(&graph(
        &mock,
        "/me/media?limit=5&fields=media_type,media_url",
        &token,
    ))
    .await;
    let video = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["media_type"] == "VIDEO")
        .unwrap()["media_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let whole = http().get(&video).send().await.unwrap();
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    let part = http()
        .get(&video)
        .header("range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"].to_str().unwrap(),
        format!("bytes 100-199/{}", whole.len())
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(100..200));
    let tail = http()
        .get(&video)
        .header("range", "bytes=-8")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(tail.bytes().await.unwrap(), whole.slice(whole.len() - 8..));
    let past = http()
        .get(&video)
        .header("range", format!("bytes={}-", whole.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{}", whole.len())
    );
}

#[tokio::test]
async fn the_demo_library_holds_every_case_a_feed_must_show() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let fields = "media_type,media_product_type,is_shared_to_feed,media_url,thumbnail_url,permalink,\
                  children{media_type,media_url,thumbnail_url}";
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/me/media?limit=25&fields={fields}"),
        &token,
    ))
    .await;
    let media = page["data"].as_array().unwrap();
    let first_twelve = &media[..12];
    let licensed = first_twelve
        .iter()
        .find(|m| m["media_type"] == "VIDEO" && m.get("media_url").is_none())
        .expect("a video with licensed audio");
    assert!(licensed["thumbnail_url"].is_string() && licensed["permalink"].is_string());
    let album = first_twelve
        .iter()
        .find(|m| m["children"]["data"][0]["media_type"] == "VIDEO")
        .expect("an album that opens with a video");
    let cover = album["media_url"].as_str().unwrap();
    assert!(
        cover.contains("_thumb"),
        "its cover is the video's thumbnail: {cover}"
    );
    let reel = first_twelve
        .iter()
        .find(|m| m["media_product_type"] == "REELS" && m["is_shared_to_feed"] == false)
        .expect("a reel kept to the Reels tab");
    assert!(reel["permalink"].as_str().unwrap().contains("/reel/"));
    for shape in ["tall", "wide"] {
        let photo = first_twelve
            .iter()
            .find(|m| {
                m["media_url"]
                    .as_str()
                    .is_some_and(|u| u.contains(&format!(".{shape}.jpg")))
            })
            .unwrap_or_else(|| panic!("a {shape} photo"));
        let bytes = http()
            .get(photo["media_url"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..2], [0xFF, 0xD8], "a JPEG");
    }
    let flagged_video = media
        .iter()
        .find(|m| m["media_type"] == "VIDEO" && m.get("media_url").is_none() && m.get("permalink").is_none())
        .expect("a copyright-flagged video");
    assert!(flagged_video["thumbnail_url"].is_string(), "its thumbnail stays");
}

#[tokio::test]
async fn stories_are_listed_for_twenty_four_hours_then_gone() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    let stories = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["media_type"].as_str().unwrap().to_owned())
            .collect()
    };
    let fields = "fields=id,media_type,media_product_type,media_url,thumbnail_url,timestamp";
    let (status, _, body) = get(&graph(&mock, &format!("/me/stories?{fields}"), &token)).await;
    assert_eq!(status, 200);
    assert_eq!(stories(&body), ["IMAGE", "VIDEO"], "newest first");
    assert!(
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["media_product_type"] == "STORY")
    );
    assert!(
        body["data"][1]["thumbnail_url"].is_string(),
        "a video story has its poster"
    );
    let (_, _, media) = get(&graph(&mock, "/me/media?limit=100&fields=id", &token)).await;
    let story = body["data"][0]["id"].as_str().unwrap();
    assert!(
        media["data"].as_array().unwrap().iter().all(|m| m["id"] != story),
        "the media edge excludes stories"
    );
    // Posted one and two hours before the start: the older is gone 22 hours on.
    mock.advance(Duration::from_secs(22 * 3600 + 1));
    let (_, _, body) = get(&graph(&mock, &format!("/me/stories?{fields}"), &token)).await;
    assert_eq!(stories(&body), ["IMAGE"]);
    mock.advance(Duration::from_secs(3600));
    let (_, _, body) = get(&graph(&mock, &format!("/me/stories?{fields}"), &token)).await;
    assert!(stories(&body).is_empty());
}

#[tokio::test]
async fn rate_limits_count_per_user_per_rolling_hour() {
    let mock = MockServer::builder()
        .platform(MockPlatform::BasicDisplay)
        .calls_per_hour(Some(4))
        .start()
        .unwrap();
    // Long-lived: a short-lived token would expire within the hour this test waits.
    let token = long_token(&mock, "jayposiris").await;
    let mut usage = Vec::new();
    for _ in 0..4 {
        let (status, headers, _) = get(&graph(&mock, "/me", &token)).await;
        assert_eq!(status, 200);
        usage.push(headers.get("x-app-usage").map(|v| v.to_str().unwrap().to_owned()));
    }
    let first: Value = serde_json::from_str(usage[0].as_deref().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({"call_volume": 25, "cpu_time": 6}),
        "the recorded keys, from 0 %"
    );
    let last: Value = serde_json::from_str(usage[3].as_deref().unwrap()).unwrap();
    assert_eq!(last["call_volume"], 100);
    let (status, headers, body) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(17)));
    assert!(headers.contains_key("x-app-usage"));
    mock.advance(Duration::from_secs(3600));
    assert_eq!(
        get(&graph(&mock, "/me", &token)).await.0,
        200,
        "recovered after the hour"
    );

    let login = MockServer::builder().calls_per_hour(Some(2)).start().unwrap();
    let token = short_token(&login, "jayposiris").await;
    get(&graph(&login, "/me", &token)).await;
    get(&graph(&login, "/me", &token)).await;
    let (_, headers, _) = get(&graph(&login, "/me", &token)).await;
    let buc: Value = serde_json::from_str(headers["x-business-use-case-usage"].to_str().unwrap()).unwrap();
    let entry = &buc[login.app().id][0];
    assert_eq!(entry["call_count"], 100);
    assert_eq!(entry["estimated_time_to_regain_access"], 60);
}

#[tokio::test]
async fn faults_misbehave_on_purpose() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    let me = graph(&mock, "/me", &token);
    mock.add_fault(Fault::new("/me", FaultKind::Status { status: 503 }).times(1));
    assert_eq!(get(&me).await.0, 503);
    assert_eq!(get(&me).await.0, 200, "the fault was spent");
    mock.add_fault(Fault::new("/me", FaultKind::GraphTransient).times(1));
    let (status, _, body) = get(&me).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_i64(),
            body["error"]["is_transient"].as_bool()
        ),
        (500, Some(2), Some(true))
    );
    mock.add_fault(Fault::new("/me", FaultKind::DropConnection).times(1));
    assert!(http().get(&me).send().await.is_err());
    mock.add_fault(Fault::new("/me/media", FaultKind::ResetMidBody).times(1));
    let media = graph(&mock, "/me/media?fields=id,caption", &token);
    let response = http().get(&media).send().await.unwrap();
    assert!(response.bytes().await.is_err(), "the body was cut");
    mock.add_fault(Fault::new("/me/media", FaultKind::TruncatedJson).times(1));
    let text = http().get(&media).send().await.unwrap().text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err() && text.starts_with("{\"data\""));
    mock.add_fault(Fault::new("/me", FaultKind::MalformedJson).times(1));
    assert!(
        http()
            .get(&me)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .is_err()
    );
    mock.add_fault(Fault::new("/me", FaultKind::WrongContentType).times(1));
    let response = http().get(&me).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    mock.add_fault(
        Fault::new(
            "/me",
            FaultKind::SlowDrip {
                chunk: 3,
                delay_ms: 1,
            },
        )
        .times(1),
    );
    assert_eq!(get(&me).await.2["id"], mock.users()[0].id);
    mock.add_fault(Fault::new("/me", FaultKind::Latency { ms: 5 }).times(1));
    assert_eq!(get(&me).await.0, 200);
    // A seeded probability hits the same requests for the same seed.
    let hits = |mock: MockServer| async move {
        let token = short_token(&mock, "jayposiris").await;
        mock.add_fault(Fault::new("/me", FaultKind::Status { status: 502 }).probability(0.5));
        let mut pattern = Vec::new();
        for _ in 0..20 {
            pattern.push(get(&graph(&mock, "/me", &token)).await.0 == 502);
        }
        pattern
    };
    let a = hits(self::mock(MockPlatform::InstagramLogin)).await;
    let b = hits(self::mock(MockPlatform::InstagramLogin)).await;
    assert_eq!(a, b);
    assert!(a.iter().any(|h| *h) && a.iter().any(|h| !*h));
}

#[tokio::test]
async fn stubs_answer_first_then_the_fake_takes_over() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "jayposiris").await;
    mock.stub(
        Stub::json(
            "GET",
            "/me",
            429,
            serde_json::json!({"error": {"message": "slow down", "code": 4}}),
        )
        .times(2)
        .header("retry-after", "7"),
    );
    let (status, headers, _) = get(&graph(&mock, "/me", &token)).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (429, "7"));
    assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 429);
    assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 200);
}

#[tokio::test]
async fn the_journal_is_bounded_masked_and_explains_misses() {
    let mock = MockServer::builder()
        .journal_capacity(10)
        .calls_per_hour(None)
        .start()
        .unwrap();
    let token = short_token(&mock, "jayposiris").await;
    for _ in 0..50 {
        get(&graph(&mock, "/me?fields=id", &token)).await;
    }
    let journal = mock.journal();
    assert_eq!(journal.len(), 10);
    assert_eq!(mock.requests_total(), 52);
    assert_eq!(journal[9].query, "fields=id&access_token=[redacted]");
    mock.expect_requests("GET", "/me", 10).unwrap();
    let miss = mock.expect_requests("GET", "/me/media", 1).unwrap_err();
    assert!(miss.to_string().contains("closest: `GET /me`"), "{miss}");
    let all = format!("{:?}", mock.journal());
    assert!(!all.contains(&token));
}

#[tokio::test]
async fn the_same_seed_and_calls_give_the_same_bytes() {
    let run = || async {
        let mock = mock(MockPlatform::InstagramLogin);
        let code = approve(&mock, "jayposiris").await;
        let (_, body) = exchange(&mock, &code).await;
        let token = serde_json::from_str::<Value>(&body).unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, _, media) = get(&graph(&mock, "/me/media?fields=id,media_url&limit=3", &token)).await;
        (code, body, media.to_string().replace(mock.base_url(), ""))
    };
    assert_eq!(run().await, run().await);
    let other = MockServer::builder()
        .seed(Seed {
            seed: 2,
            ..Seed::demo()
        })
        .start()
        .unwrap();
    assert_ne!(
        other.users()[0].id,
        mock(MockPlatform::InstagramLogin).users()[0].id
    );
}

#[tokio::test]
async fn the_control_api_drives_the_same_state() {
    let mock = mock(MockPlatform::BasicDisplay);
    let base = mock.base_url().to_owned();
    let (_, _, state) = get(&format!("{base}/_mock/state")).await;
    assert_eq!(state["platform"], "basic-display");
    assert_eq!(
        state["testers"],
        serde_json::json!(["jayposiris", "cafe_nova", "sam_personal"])
    );
    let start = mock.now();
    let advanced: Value = http()
        .post(format!("{base}/_mock/clock/advance?seconds=90"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(advanced["unix"], start + 90);
    let fault =
        serde_json::json!({"path_prefix": "/me", "kind": {"type": "status", "status": 418}, "times": 1});
    http()
        .post(format!("{base}/_mock/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    let token = short_token(&mock, "jayposiris").await;
    assert_eq!(get(&graph(&mock, "/me", &token)).await.0, 418);
    http()
        .post(format!("{base}/_mock/redirect_uris"))
        .json(&serde_json::json!({"uri": "http://127.0.0.1:9/cb"}))
        .send()
        .await
        .unwrap();
    assert!(
        mock.app()
            .redirect_uris
            .contains(&"http://127.0.0.1:9/cb".to_owned())
    );
    let issued: Value = http()
        .post(format!("{base}/_mock/tokens"))
        .json(&serde_json::json!({"username": "cafe_nova"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issued["expires_in"], 5_184_000);
    let (_, _, journal) = get(&format!("{base}/_mock/journal")).await;
    assert!(journal["total"].as_u64().unwrap() >= 3);
    http().post(format!("{base}/_mock/reset")).send().await.unwrap();
    assert_eq!(mock.now(), start);
    assert_eq!(get(&graph(&mock, "/me", &token)).await.2["error"]["code"], 190);
}

#[tokio::test]
async fn callbacks_are_posted_correctly_signed() {
    use base64::Engine as _;
    use hmac::{Hmac, KeyInit, Mac};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/deletion", listener.local_addr().unwrap());
    let received = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut text = String::new();
        while !text.contains("signed_request=")
            || !text.ends_with(|c: char| c.is_ascii_alphanumeric() || c == 'D')
        {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.contains("\r\n\r\nsigned_request=")
                && text.split("\r\n\r\n").nth(1).is_some_and(|b| b.len() > 50)
            {
                break;
            }
        }
        let reply = r#"{"url":"https://app.example/deletion?code=abc","confirmation_code":"abc"}"#;
        let _ = stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: application/json\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            )
            .await;
        text
    });
    let mock = mock(MockPlatform::InstagramLogin);
    mock.set_callbacks(None, Some(&url));
    let (status, body) = mock
        .send_callback("jayposiris", CallbackKind::DataDeletion)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("confirmation_code"));
    let request = received.await.unwrap();
    let value = request.split("signed_request=").nth(1).unwrap().trim();
    let value = value.replace("%2E", ".").replace("%2D", "-").replace("%5F", "_");
    let (signature, payload) = value.split_once('.').unwrap();
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(mock.app().secret.as_bytes()).unwrap();
    mac.update(payload.as_bytes());
    mac.verify_slice(&engine.decode(signature).unwrap()).unwrap();
    let payload: Value = serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
    assert_eq!(payload["user_id"], mock.users()[0].id);
    assert_eq!(payload["algorithm"], "HMAC-SHA256");
    assert_eq!(payload["issued_at"], mock.now());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flows_get_unique_tokens_and_a_code_is_accepted_once() {
    let mock = std::sync::Arc::new(mock(MockPlatform::InstagramLogin));
    let flows = (0..200).map(|_| {
        let mock = mock.clone();
        tokio::spawn(async move { short_token(&mock, "jayposiris").await })
    });
    let mut tokens = std::collections::HashSet::new();
    for flow in flows.collect::<Vec<_>>() {
        assert!(tokens.insert(flow.await.unwrap()));
    }
    assert_eq!(tokens.len(), 200);
    let code = approve(&mock, "cafe_nova").await;
    let races = (0..20).map(|_| {
        let (mock, code) = (mock.clone(), code.clone());
        tokio::spawn(async move { exchange(&mock, &code).await.0 })
    });
    let mut accepted = 0;
    for race in races.collect::<Vec<_>>() {
        accepted += usize::from(race.await.unwrap() == 200);
    }
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn seed_files_and_generated_libraries_drive_the_data() {
    use igdisplay_mock::{SeedKind, SeedMedia};
    let mut seed = Seed::demo();
    seed.seed = 99;
    seed.app.name = "From a file".to_owned();
    seed.users.truncate(1);
    seed.users[0].media = vec![SeedMedia::album(
        Some("only one"),
        &[SeedKind::Image, SeedKind::Video],
    )];
    let dir = std::env::temp_dir().join(format!("igdisplay-mock-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("seed.json");
    std::fs::write(&file, serde_json::to_string_pretty(&seed).unwrap()).unwrap();
    use clap::Parser;
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        serve: igdisplay_mock::cli::ServeArgs,
    }
    let args = Args::parse_from([
        "m",
        "--addr",
        "127.0.0.1:0",
        "--seed",
        file.to_str().unwrap(),
        "--generate",
        "10000",
    ]);
    let server = igdisplay_mock::cli::start(&args.serve, &mut Vec::new()).unwrap();
    assert_eq!(server.app().name, "From a file");
    let users = server.users();
    assert_eq!(
        (users.len(), users[0].media_count, users[1].media_count),
        (2, 1, 10_000)
    );
    let token = server
        .issue_token("bulk", TokenLifetime::LongLived)
        .unwrap()
        .access_token;
    let mut next = Some(graph(
        &server,
        "/me/media?limit=100&fields=id,media_type,children{id}",
        &token,
    ));
    let (mut items, mut albums, mut pages) = (0, 0, 0);
    while let Some(url) = next.take() {
        let (status, _, page) = get(&url).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        items += data.len();
        albums += data
            .iter()
            .filter(|m| m["media_type"] == "CAROUSEL_ALBUM")
            .count();
        pages += 1;
        next = page["paging"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!((items, albums, pages), (10_000, 1_000, 100));
    let broken = igdisplay_mock::cli::start(
        &Args::parse_from(["m", "--addr", "127.0.0.1:0", "--seed", "/nonexistent.json"]).serve,
        &mut Vec::new(),
    );
    assert!(matches!(broken, Err(igdisplay_mock::MockError::SeedRead { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn published_deleted_and_edited_posts_show_in_the_next_listing() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = long_token(&mock, "jayposiris").await;
    let first_id = |listing: &Value| listing["data"][0]["id"].as_str().unwrap().to_owned();
    let listing = |mock: &MockServer, token: &str| {
        let url = graph(mock, "/me/media?fields=id,caption&limit=5", token);
        async move { get(&url).await.2 }
    };
    let before = first_id(&listing(&mock, &token).await);

    let created = http()
        .post(format!("{}/_mock/media", mock.base_url()))
        .body(r#"{"username": "jayposiris", "kind": "IMAGE", "caption": "Brand new"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let after = listing(&mock, &token).await;
    assert_eq!(first_id(&after), id, "the new post comes first");
    assert_eq!(after["data"][0]["caption"], "Brand new");

    mock.edit_caption(&id, Some("Edited")).unwrap();
    assert_eq!(listing(&mock, &token).await["data"][0]["caption"], "Edited");

    let deleted = http()
        .delete(format!("{}/_mock/media/{id}", mock.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(first_id(&listing(&mock, &token).await), before, "gone again");
    let (status, _, _) = get(&graph(&mock, &format!("/{id}?fields=id"), &token)).await;
    assert_eq!(status, 400, "its node is gone too");
    assert!(matches!(
        mock.delete_media(&id),
        Err(igdisplay_mock::MockError::UnknownMedia(_))
    ));
}

#[tokio::test]
async fn the_user_node_is_one_object_keys_sorted_and_each_once() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = mock.issue_token("jayposiris", TokenLifetime::LongLived).unwrap();
    let url = graph(
        &mock,
        "/me?fields=username,id,media_count,id,followers_count",
        &token.access_token,
    );
    let body = http().get(url).send().await.unwrap().text().await.unwrap();
    let value: Value = serde_json::from_str(&body).unwrap();
    let expected = format!(
        r#"{{"followers_count":{},"id":"{}","media_count":{},"username":"jayposiris"}}"#,
        value["followers_count"], token.user_id, value["media_count"]
    );
    assert_eq!(body, expected, "the bytes a serde_json::Map renders");
    assert!(value["media_count"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_refused_user_field_is_the_first_refused_in_the_order_asked() {
    let mock = mock(MockPlatform::BasicDisplay);
    let token = mock.issue_token("jayposiris", TokenLifetime::LongLived).unwrap();
    // Sorted, `followers_count` would come first; asked, `zodiac` does.
    let url = graph(
        &mock,
        "/me?fields=username,zodiac,followers_count",
        &token.access_token,
    );
    let (status, _, body) = get(&url).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "(#100) Tried accessing nonexisting field (zodiac) on node type (User)"
    );
}

/// A seed file missing a required field is refused by the binary with the field, the line and
/// the column, not only "not valid seed JSON".
#[test]
fn a_seed_missing_a_field_is_refused_naming_the_field_and_the_line() {
    let seed = std::env::temp_dir().join(format!("igdisplay-mock-bad-seed-{}.json", std::process::id()));
    let mut text = serde_json::to_string_pretty(&igdisplay_mock::Seed::demo()).unwrap();
    let field = "\"account_type\": \"MEDIA_CREATOR\",";
    let at = text.find(field).unwrap();
    let line = text[..at].lines().count();
    text.replace_range(at..at + field.len(), "");
    std::fs::write(&seed, text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_igdisplay-mock"))
        .args(["--addr", "127.0.0.1:0", "--quiet", "--seed"])
        .arg(&seed)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not valid seed JSON: missing field `account_type` at line"),
        "{stderr}"
    );
    // serde reports where the object that lacks the field closes: after the field's place.
    let reported: usize = stderr
        .split(" at line ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let lines = std::fs::read_to_string(&seed).map_or(0, |text| text.lines().count());
    std::fs::remove_file(&seed).unwrap();
    assert!(
        reported > line && reported <= lines,
        "{reported} for a field on line {line} of {lines}: {stderr}"
    );
}

/// An Instagram Login token of `user` granted the comments scope.
async fn comments_token(mock: &MockServer, user: &str) -> String {
    granted_token(
        mock,
        user,
        "instagram_business_basic,instagram_business_manage_comments",
    )
    .await
}

/// `POST` or `DELETE` `path_and_query` with `token`: status and body.
async fn write(
    method: reqwest::Method,
    mock: &MockServer,
    path_and_query: &str,
    token: &str,
) -> (u16, Value) {
    let response = http()
        .request(method, graph(mock, path_and_query, token))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Replies `message` to `comment` and asserts the mock refuses it with code 100, saying `why`.
async fn assert_reply_refused(mock: &MockServer, token: &str, comment: &str, why: &str) {
    let path = format!("/{comment}/replies?message=hi");
    let (status, refused) = write(reqwest::Method::POST, mock, &path, token).await;
    assert_eq!(
        (status, refused["error"]["code"].as_i64()),
        (400, Some(100)),
        "{refused}"
    );
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains(why), "{message}");
}

/// The id of a media item of `user` with at least `min` comments, and its count.
async fn commented_media(mock: &MockServer, token: &str, min: u64) -> (String, u64) {
    let (_, _, page) = get(&graph(
        mock,
        "/me/media?fields=id,comments_count&limit=100",
        token,
    ))
    .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap().to_owned(),
                m["comments_count"].as_u64().unwrap(),
            )
        })
        .find(|(_, count)| *count >= min)
        .unwrap()
}

/// Reference C.2: a media item's top-level comments, newest first and paged by cursor, each
/// with its first replies by expansion; `comments_count` counts replies too.
#[tokio::test]
async fn a_media_items_comments_page_newest_first_with_their_replies() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = comments_token(&mock, "jayposiris").await;
    let (media, count) = commented_media(&mock, &token, 30).await;
    let fields = "id,text,timestamp,username,hidden,parent_id,replies{id,text,parent_id}";
    let (status, _, first) = get(&graph(
        &mock,
        &format!("/v24.0/{media}/comments?fields={fields}&limit=10"),
        &token,
    ))
    .await;
    assert_eq!(status, 200, "{first}");
    let items = first["data"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    let stamps: Vec<&str> = items.iter().map(|c| c["timestamp"].as_str().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(
        items.iter().all(|c| c.get("parent_id").is_none()),
        "top-level only"
    );
    let mut seen = items.len();
    let mut replies = items
        .iter()
        .map(|c| c["replies"]["data"].as_array().unwrap().len())
        .sum::<usize>();
    assert!(replies > 0, "some came with replies");
    let mut next = first["paging"]["next"].as_str().map(str::to_owned);
    while let Some(url) = next {
        assert!(url.contains("/v24.0/"), "{url}");
        let (_, _, page) = get(&url).await;
        let data = page["data"].as_array().unwrap();
        seen += data.len();
        replies += data
            .iter()
            .map(|c| c["replies"]["data"].as_array().unwrap().len())
            .sum::<usize>();
        next = page["paging"]["next"].as_str().map(str::to_owned);
    }
    assert_eq!((seen + replies) as u64, count, "comments_count counts replies");
}

/// Reference C.2: hide and unhide, reply (only to a top-level comment that is not hidden,
/// only while comments are on), delete (with its replies), comments off and on.
#[tokio::test]
async fn comments_are_hidden_replied_to_deleted_and_turned_off() {
    use reqwest::Method;
    let mock = mock(MockPlatform::InstagramLogin);
    let token = comments_token(&mock, "jayposiris").await;
    let (media, count) = commented_media(&mock, &token, 8).await;
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/{media}/comments?fields=id,hidden"),
        &token,
    ))
    .await;
    let top = page["data"][0]["id"].as_str().unwrap().to_owned();

    assert_eq!(
        write(Method::POST, &mock, &format!("/{top}?hide=true"), &token).await,
        (200, serde_json::json!({"success": true}))
    );
    let (_, _, node) = get(&graph(&mock, &format!("/{top}?fields=id,hidden"), &token)).await;
    assert_eq!(node["hidden"], true);
    assert_reply_refused(&mock, &token, &top, "hidden").await;
    write(Method::POST, &mock, &format!("/{top}?hide=false"), &token).await;

    let (status, created) = write(
        Method::POST,
        &mock,
        &format!("/{top}/replies?message=Thank%20you%21"),
        &token,
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let reply = created["id"].as_str().unwrap().to_owned();
    let (_, _, replies) = get(&graph(
        &mock,
        &format!("/{top}/replies?fields=id,text,username,parent_id"),
        &token,
    ))
    .await;
    let ours = &replies["data"][0];
    assert_eq!(
        (ours["id"].as_str(), ours["text"].as_str()),
        (Some(reply.as_str()), Some("Thank you!"))
    );
    assert_eq!(ours["username"], "jayposiris");
    assert_eq!(ours["parent_id"], top.as_str());
    assert_reply_refused(&mock, &token, &reply, "top-level").await;
    let (_, _, media_node) = get(&graph(&mock, &format!("/{media}?fields=comments_count"), &token)).await;
    assert_eq!(media_node["comments_count"].as_u64(), Some(count + 1));

    assert_eq!(
        write(Method::DELETE, &mock, &format!("/{top}"), &token).await.0,
        200
    );
    let (status, _, gone) = get(&graph(&mock, &format!("/{reply}"), &token)).await;
    assert_eq!(
        (status, gone["error"]["code"].as_i64()),
        (400, Some(100)),
        "its replies went with it"
    );

    assert_eq!(
        write(
            Method::POST,
            &mock,
            &format!("/{media}?comment_enabled=false"),
            &token
        )
        .await
        .0,
        200
    );
    let (_, _, media_node) = get(&graph(
        &mock,
        &format!("/{media}?fields=is_comment_enabled"),
        &token,
    ))
    .await;
    assert_eq!(media_node["is_comment_enabled"], false);
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/{media}/comments?fields=id,hidden"),
        &token,
    ))
    .await;
    let open = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["hidden"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_reply_refused(&mock, &token, &open, "turned off").await;
}

/// Without the comments scope the comment calls are code 10; Basic Display has no comments
/// (2500, an unknown path) and serves no writes.
#[tokio::test]
async fn comments_need_their_scope_and_instagram_login() {
    let login = mock(MockPlatform::InstagramLogin);
    let basic_scope = short_token(&login, "jayposiris").await;
    let full = comments_token(&login, "jayposiris").await;
    let (media, _) = commented_media(&login, &full, 1).await;
    let (status, _, body) = get(&graph(&login, &format!("/{media}/comments"), &basic_scope)).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (403, Some(10)),
        "{body}"
    );

    let basic = mock(MockPlatform::BasicDisplay);
    let token = short_token(&basic, "jayposiris").await;
    let (_, _, page) = get(&graph(&basic, "/me/media?fields=id", &token)).await;
    let media = page["data"][0]["id"].as_str().unwrap().to_owned();
    let (_, _, body) = get(&graph(&basic, &format!("/{media}/comments"), &token)).await;
    assert_eq!(body["error"]["code"], 2500, "{body}");
    let (status, body) = write(
        reqwest::Method::POST,
        &basic,
        &format!("/{media}?comment_enabled=false"),
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(100)),
        "{body}"
    );
}

/// Reference C.3: the media the account is tagged in, others' posts newest first, paged like
/// media; code 10 without the comments scope.
#[tokio::test]
async fn the_media_an_account_is_tagged_in_are_listed_newest_first() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = comments_token(&mock, "cafe_nova").await;
    let (status, _, first) = get(&graph(
        &mock,
        "/me/tags?fields=id,username,timestamp&limit=4",
        &token,
    ))
    .await;
    assert_eq!(status, 200, "{first}");
    let items = first["data"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert!(
        items.iter().all(|m| m["username"] != "cafe_nova"),
        "others' posts only"
    );
    let stamps: Vec<&str> = items.iter().map(|m| m["timestamp"].as_str().unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let next = first["paging"]["next"].as_str().unwrap();
    assert!(next.contains("/tags?"), "{next}");
    let (_, _, second) = get(next).await;
    assert_ne!(second["data"][0]["id"], items[0]["id"]);
    let basic_scope = short_token(&mock, "cafe_nova").await;
    let (status, _, body) = get(&graph(&mock, "/me/tags", &basic_scope)).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (403, Some(10)),
        "{body}"
    );
}

/// An Instagram Login token of `user` granted the insights scope.
async fn insights_token(mock: &MockServer, user: &str) -> String {
    granted_token(
        mock,
        user,
        "instagram_business_basic,instagram_business_manage_insights",
    )
    .await
}

/// Reference C.4: a media item's insights; one metric Instagram does not serve for it
/// (removed, or not for its product type) fails the whole request naming it; too few viewers
/// is #10; album items have none.
#[tokio::test]
async fn media_insights_follow_the_metric_rules_whole_request_or_nothing() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = insights_token(&mock, "jayposiris").await;
    let fields = "id,like_count,media_product_type,media_type,children{id}";
    let (_, _, page) = get(&graph(
        &mock,
        &format!("/me/media?fields={fields}&limit=100"),
        &token,
    ))
    .await;
    let items = page["data"].as_array().unwrap();
    let feed = items
        .iter()
        .find(|m| m["media_product_type"] == "FEED" && m["like_count"].as_u64() > Some(0))
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let (status, _, body) = get(&graph(
        &mock,
        &format!("/{feed}/insights?metric=views,reach,likes"),
        &token,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert!(
        data.iter()
            .all(|m| m["values"][0]["value"].as_u64().is_some() && m["period"] == "lifetime")
    );
    for (metric, says) in [
        ("impressions", "no longer supported"),
        ("navigation", "does not support the navigation"),
    ] {
        let (status, _, body) = get(&graph(
            &mock,
            &format!("/{feed}/insights?metric=views,{metric}"),
            &token,
        ))
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_i64()),
            (400, Some(100)),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(metric) && message.contains(says), "{message}");
    }
    let unseen = items
        .iter()
        .find(|m| m["like_count"].as_u64() == Some(0))
        .unwrap()["id"]
        .as_str()
        .unwrap();
    let (_, _, body) = get(&graph(&mock, &format!("/{unseen}/insights?metric=views"), &token)).await;
    assert_eq!(body["error"]["code"], 10, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Not enough viewers")
    );
    let child = items
        .iter()
        .find_map(|m| m["children"]["data"][0]["id"].as_str())
        .unwrap();
    let (_, _, body) = get(&graph(&mock, &format!("/{child}/insights?metric=views"), &token)).await;
    assert_eq!(body["error"]["code"], 100, "{body}");
    let plain = short_token(&mock, "jayposiris").await;
    let (_, _, body) = get(&graph(&mock, &format!("/{feed}/insights?metric=views"), &plain)).await;
    assert_eq!(body["error"]["code"], 10, "without the scope: {body}");
}

/// Reference C.4: the account's totals over a period, broken down when asked; the period is
/// required and a removed metric fails the request.
#[tokio::test]
async fn account_insights_are_totals_over_a_period_with_breakdowns() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = insights_token(&mock, "jayposiris").await;
    let path =
        "/me/insights?metric=views,reach&period=day&metric_type=total_value&breakdown=media_product_type";
    let (status, _, body) = get(&graph(&mock, path, &token)).await;
    assert_eq!(status, 200, "{body}");
    let views = &body["data"][0];
    assert_eq!(views["name"], "views");
    assert!(views["total_value"]["value"].as_u64().unwrap() > 0);
    assert_eq!(
        views["total_value"]["breakdowns"][0]["dimension_keys"][0],
        "media_product_type"
    );
    let (_, _, body) = get(&graph(&mock, "/me/insights?metric=views", &token)).await;
    assert_eq!(body["error"]["code"], 100, "no period: {body}");
    let (_, _, body) = get(&graph(
        &mock,
        "/me/insights?metric=impressions&period=day",
        &token,
    ))
    .await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("impressions"),
        "{body}"
    );
}

/// Reference C.5: a subscription names Instagram Login's webhook fields; another is refused.
#[tokio::test]
async fn a_subscription_to_an_unknown_webhook_field_is_refused() {
    let mock = mock(MockPlatform::InstagramLogin);
    let token = short_token(&mock, "cafe_nova").await;
    let (status, body) = write(
        reqwest::Method::POST,
        &mock,
        "/me/subscribed_apps?subscribed_fields=comments,feed",
        &token,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(100)),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("[feed]"));
    let (_, _, listed) = get(&graph(&mock, "/me/subscribed_apps", &token)).await;
    assert_eq!(listed["data"], serde_json::json!([]), "nothing half-subscribed");
}

/// Counts from a seed file are bounded where they become work: a post seeded with
/// `u64::MAX` comments gets a thread of at most 10,000, and `u64::MAX` likes are summed into
/// the account's insights without overflowing.
#[tokio::test]
async fn seeded_counts_at_their_limits_neither_overflow_nor_exhaust_memory() {
    let mut seed = igdisplay_mock::Seed::demo();
    for media in &mut seed.users[1].media {
        media.comments = u64::MAX;
        media.likes = u64::MAX;
    }
    let mock = MockServer::builder()
        .platform(MockPlatform::InstagramLogin)
        .seed(seed)
        .start()
        .unwrap();
    let token = granted_token(
        &mock,
        "cafe_nova",
        "instagram_business_basic,instagram_business_manage_comments,instagram_business_manage_insights",
    )
    .await;
    let (_, _, page) = get(&graph(&mock, "/me/media?fields=id", &token)).await;
    let media = page["data"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, comments) = get(&graph(&mock, &format!("/{media}/comments?limit=100000"), &token)).await;
    assert_eq!(status, 200, "{comments}");
    assert_eq!(
        comments["data"].as_array().unwrap().len(),
        100,
        "a page holds at most 100"
    );
    let (_, _, node) = get(&graph(&mock, &format!("/{media}?fields=comments_count"), &token)).await;
    assert_eq!(
        node["comments_count"], 10_000,
        "the thread made, not the seed's count"
    );
    let path = "/me/insights?metric=views,reach&period=day&breakdown=media_product_type";
    let (status, _, insights) = get(&graph(&mock, path, &token)).await;
    assert_eq!(status, 200, "{insights}");
    assert_eq!(insights["data"][0]["total_value"]["value"], u64::MAX);
    let (status, _, refused) = get(&graph(&mock, &format!("/{media}/comments?limit=many"), &token)).await;
    assert_eq!(
        (status, refused["error"]["code"].as_i64()),
        (400, Some(100)),
        "as the media edge refuses it"
    );
}

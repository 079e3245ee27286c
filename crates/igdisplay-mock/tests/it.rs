//! Black-box HTTP tests of every rule of the mock, written from the reference with plain
//! reqwest and JSON values: no igdisplay client crate is involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_mock::{
    CallbackKind, Fault, FaultKind, MockPlatform, MockServer, Seed, Stub, TokenLifetime, TokenShape,
};
use serde_json::Value;
use std::time::{Duration, UNIX_EPOCH};

#[path = "it/control.rs"]
mod control;
#[path = "it/fleet.rs"]
mod fleet;
#[path = "it/graph.rs"]
mod graph;
#[path = "it/media.rs"]
mod media;
#[path = "it/oauth.rs"]
mod oauth;
#[path = "it/recorded.rs"]
mod recorded;
#[path = "it/social.rs"]
mod social;

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

/// POSTs `body` (JSON, when given) to `url`: the status and the JSON answer (`Null` when the
/// answer is not JSON).
async fn post(url: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = http().post(url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.unwrap_or(Value::Null))
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

/// Asserts a Graph error answer: its HTTP status and its `error.code`.
#[track_caller]
fn assert_refused(status: u16, body: &Value, http_status: u16, code: i64) {
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (http_status, Some(code)),
        "{body}"
    );
}

fn graph(mock: &MockServer, path_and_query: &str, token: &str) -> String {
    let separator = if path_and_query.contains('?') { '&' } else { '?' };
    format!(
        "{}{path_and_query}{separator}access_token={token}",
        mock.base_url()
    )
}

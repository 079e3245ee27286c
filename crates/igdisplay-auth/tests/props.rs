//! Property tests: the callback parser on any input, and redaction of every secret the auth
//! types hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay_auth::{AppConfig, AuthClient, Callback, Platform, TokenKind, TokenRecord};
use igdisplay_http::test_util::ReplayBackend;
use igdisplay_model::{AccessToken, AppSecret, UserId};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{8,48}"
}

fn client(app_secret: &str) -> AuthClient {
    let config = AppConfig::new(
        Platform::InstagramLogin,
        "684477648739411",
        AppSecret::new(app_secret),
        "https://app.example/auth/",
    )
    .unwrap();
    AuthClient::new(config, Arc::new(ReplayBackend::default()))
}

proptest! {
    #[test]
    fn the_callback_parser_never_panics(query in "\\PC{0,200}") {
        let _ = Callback::parse(&query);
    }

    #[test]
    fn a_parsed_callback_never_shows_its_code_or_state(code in secret(), state in secret()) {
        let callback = Callback::parse(&format!("code={code}%23_&state={state}")).unwrap();
        let shown = format!("{callback:?}");
        prop_assert!(!shown.contains(&code) && !shown.contains(&state), "{}", shown);
    }

    #[test]
    fn token_records_and_requests_never_show_secrets(token in secret(), app_secret in secret()) {
        let record = TokenRecord::new(
            UserId::new("17841405793187218"),
            AccessToken::new(token.clone()),
            TokenKind::LongLived,
            Platform::InstagramLogin,
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            Duration::from_secs(5_184_000),
        );
        let client = client(&app_secret);
        let request = client.refresh_request(&record.access_token).unwrap();
        // The code exchange's form carries the app secret and the code.
        let started = client.authorize().build().unwrap();
        let state = started.url.split("state=").nth(1).unwrap().split('&').next().unwrap();
        let callback = Callback::parse(&format!("code={token}&state={state}")).unwrap();
        let grant = started.pending.verify(callback, igdisplay_http::Clock::now(&igdisplay_http::SystemClock)).unwrap();
        let exchange = client.code_exchange_request(&grant).unwrap();
        let authorization = client.authorize().build().unwrap();
        let shown = [
            format!("{record:?}"),
            format!("{request:?}"),
            format!("{exchange:?}"),
            format!("{client:?}"),
            format!("{authorization:?}"),
            format!("{:?}", authorization.pending),
        ];
        for text in shown {
            prop_assert!(!text.contains(&token) && !text.contains(&app_secret), "{}", text);
        }
    }
}

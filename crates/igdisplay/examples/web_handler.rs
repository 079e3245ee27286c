//! Authorize and callback as two web handlers: the state lives server-side in the user's
//! session, the callback verifies it, and the token never reaches the browser.
//!
//! The handlers are plain functions so that any framework can call them; here a browser is
//! played by following the mock's window.
//!
//! `cargo run -p igdisplay --example web_handler --features mock`

#![allow(clippy::print_stdout)]

#[path = "common/mod.rs"]
mod common;

use igdisplay::Instagram;
use igdisplay::auth::{CallbackError, LoginError, PendingAuthorization};
use igdisplay::mock::MockServer;
use igdisplay::model::{Platform, UserId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Server-side sessions, keyed by the session cookie's (random) id.
#[derive(Default)]
struct Sessions(Mutex<HashMap<String, Session>>);

#[derive(Default)]
struct Session {
    pending: Option<PendingAuthorization>,
    user: Option<UserId>,
}

/// `GET /login`: remember the pending authorization in the session, redirect to Instagram.
fn login(
    instagram: &Instagram,
    sessions: &Sessions,
    session_id: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let authorization = instagram.authorize().build()?;
    let mut sessions = sessions.0.lock().map_err(|_| "poisoned")?;
    sessions.entry(session_id.to_owned()).or_default().pending = Some(authorization.pending);
    Ok(authorization.url) // answer 303 See Other with this Location
}

/// `GET /auth/?code=...&state=...`: verify against the session's state, exchange, store.
async fn callback(
    instagram: &Instagram,
    sessions: &Sessions,
    session_id: &str,
    url: &str,
) -> Result<String, String> {
    // Take it out: a state is good for one callback only.
    let pending = sessions
        .0
        .lock()
        .map_err(|_| "poisoned")?
        .get_mut(session_id)
        .and_then(|s| s.pending.take());
    let Some(pending) = pending else {
        return Err("no login in progress in this session: start again".to_owned());
    };
    match instagram.complete_login(pending, url).await {
        Ok(token) => {
            let mut sessions = sessions.0.lock().map_err(|_| "poisoned")?;
            sessions.entry(session_id.to_owned()).or_default().user = Some(token.user_id);
            Ok("/gallery".to_owned()) // 303 to a clean URL, without code or state
        }
        Err(LoginError::Callback(CallbackError::Denied { .. })) => Err("you cancelled the login".to_owned()),
        Err(error) => Err(format!("the login failed: {error}")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = MockServer::start()?;
    let instagram = common::client_for(&mock, Platform::InstagramLogin).build()?;
    let sessions = Sessions::default();

    let to_instagram = login(&instagram, &sessions, "session-a")?;
    let back = mock.approve(&to_instagram, "cafe_nova")?;
    let next = callback(&instagram, &sessions, "session-a", &back).await?;
    println!("logged in, redirecting to {next}");

    // Another browser replaying the same callback has no pending login: refused, nothing sent.
    let replay = callback(&instagram, &sessions, "session-b", &back).await;
    println!(
        "replay from another session: {}",
        replay.as_ref().err().map_or("accepted?!", |e| e)
    );
    assert!(replay.is_err());

    let user = sessions
        .0
        .lock()
        .map_err(|_| "poisoned")?
        .get("session-a")
        .and_then(|s| s.user.clone());
    let me = instagram.graph(&user.ok_or("no user")?).me().send().await?;
    println!("hello @{}", me.username.unwrap_or_default());
    Ok(())
}

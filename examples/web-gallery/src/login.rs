//! The login: its start, Meta's redirect back (the callback), the owner's setup link, and
//! what a visitor reads when a login fails.
//!
//! The callback's URL carries the authorization code and the state, so it never answers a
//! page of its own: a completed login and every failed one end in a 303 to a clean URL (the
//! page asked for, or the home page with `?login=<reason>`, which it turns into a fixed
//! sentence), so neither the address bar, the history nor a `Referer` keeps the code.

use crate::{
    App, FIRST_SYNC_WAIT, Showcase, message, new_session, save, session, sha256_hex, sync_owner, unavailable,
    with_cookie,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use igdisplay::auth::{CallbackError, LoginError, TokenRecord};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a login did not complete, as the home page's `?login=` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The visitor cancelled in Instagram's window.
    Cancelled,
    /// No login under way in this browser (another browser, a used link, an ended session).
    Expired,
    /// The answer did not match the login (a wrong state, a malformed redirect).
    Unverified,
    /// Instagram did not exchange the code.
    Upstream,
    /// Owner mode: no owner yet, and the login did not come through the setup link.
    NotConnected,
    /// Owner mode: another account than the owner's.
    OtherAccount,
    /// The site's own storage failed, or the system gave no randomness.
    Unavailable,
}

impl Failure {
    const ALL: [Self; 7] = [
        Self::Cancelled,
        Self::Expired,
        Self::Unverified,
        Self::Upstream,
        Self::NotConnected,
        Self::OtherAccount,
        Self::Unavailable,
    ];

    /// Its name in `?login=`.
    fn reason(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::Unverified => "unverified",
            Self::Upstream => "upstream",
            Self::NotConnected => "not-connected",
            Self::OtherAccount => "other-account",
            Self::Unavailable => "unavailable",
        }
    }

    /// What the visitor reads.
    fn sentence(self) -> &'static str {
        match self {
            Self::Cancelled => "You cancelled the login. Nothing was shared.",
            Self::Expired => "This login link has expired. Please log in again.",
            Self::Unverified => {
                "This login could not be verified. It may have been opened in another browser or \
                 taken too long. Please log in again."
            }
            Self::Upstream => "Instagram did not complete the login. Please try again in a moment.",
            Self::NotConnected => {
                "This site is not connected yet. Its owner connects it with the setup link printed \
                 when the site started."
            }
            Self::OtherAccount => {
                "This site shows another Instagram account. Only the account the site was \
                 connected with can log in here."
            }
            Self::Unavailable => "Something went wrong. Please try again in a moment.",
        }
    }

    /// The 303 to the home page that says so.
    fn redirect(self) -> Response {
        Redirect::to(&format!("/?login={}", self.reason())).into_response()
    }
}

/// The sentence a home page shows for its `?login=` (nothing for an unknown reason: the
/// page never echoes what the URL says).
pub(crate) fn notice(query: &HashMap<String, String>) -> Option<&'static str> {
    let reason = query.get("login")?;
    Failure::ALL
        .into_iter()
        .find(|failure| failure.reason() == reason)
        .map(Failure::sentence)
}

/// `GET /login?next=…`: starts a login; `next` is where a completed one lands (a local
/// path only).
pub(crate) async fn login(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (id, mut session, cookie) = match session(&app, &headers).await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let authorization = match app.instagram.authorize().build() {
        Ok(authorization) => authorization,
        Err(_) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
            );
        }
    };
    session.pending = Some(authorization.pending);
    session.next = safe_next(query.get("next").map(String::as_str));
    if let Err(response) = save(&app, &id, &session).await {
        return *response;
    }
    with_cookie(Redirect::to(&authorization.url).into_response(), cookie)
}

/// `GET /auth/callback`: Meta's redirect back. Always a 303: to the page the login was for,
/// or, when it failed, to the home page saying why ([`Failure`]).
pub(crate) async fn callback(State(app): State<Arc<App>>, headers: HeaderMap, uri: Uri) -> Response {
    complete(&app, &headers, &uri)
        .await
        .unwrap_or_else(Failure::redirect)
}

/// The callback's work: the pending login (used once, whatever the outcome), the exchange,
/// the owner's check, and a new session for the logged-in visitor.
async fn complete(app: &Arc<App>, headers: &HeaderMap, uri: &Uri) -> Result<Response, Failure> {
    let (id, mut session) = crate::existing_session(app, headers)
        .await
        .map_err(|_| Failure::Unavailable)?
        .ok_or(Failure::Expired)?;
    let (pending, next) = (session.pending.take(), std::mem::take(&mut session.next));
    save(app, &id, &session).await.map_err(|_| Failure::Unavailable)?;
    let pending = pending.ok_or(Failure::Expired)?;
    let url = format!("{}{uri}", app.public);
    let outcome = match &app.showcase {
        // Owner mode: whose token it is decides whether it is kept at all.
        Some(_) => app.instagram.exchange_login(pending, &url).await,
        None => app.instagram.complete_login(pending, &url).await,
    };
    let token = outcome.map_err(|error| match error {
        LoginError::Callback(CallbackError::Denied { .. }) => Failure::Cancelled,
        LoginError::Callback(_) => Failure::Unverified,
        _ => Failure::Upstream,
    })?;
    if let Some(showcase) = &app.showcase {
        admit_owner(app, showcase, &token, session.setup).await?;
        first_sync(app).await;
    }
    // A new session id at login: one fixed before the login (fixation) is worthless.
    let (fresh, mut logged_in, cookie) = new_session(app).await.map_err(|_| Failure::Unavailable)?;
    app.sessions
        .remove(&id, app.now())
        .await
        .map_err(|_| Failure::Unavailable)?;
    logged_in.user = Some(token.user_id);
    save(app, &fresh, &logged_in)
        .await
        .map_err(|_| Failure::Unavailable)?;
    let target = if next.is_empty() { "/gallery" } else { &next };
    Ok(with_cookie(Redirect::to(target).into_response(), Some(cookie)))
}

/// Owner mode: the first sync starts now; the answer waits for it up to [`FIRST_SYNC_WAIT`]
/// (a small library is there when the owner comes back; a large one goes on meanwhile). A
/// sync already running (the loop, woken) is waited for, not doubled.
async fn first_sync(app: &Arc<App>) {
    let syncing = tokio::spawn({
        let app = app.clone();
        async move {
            if let Err(error) = sync_owner(&app).await {
                tracing::warn!(%error, "the first sync of the owner's feed failed");
            }
        }
    });
    tokio::select! {
        _ = syncing => {}
        () = igdisplay::http::Clock::timer(&igdisplay::http::SystemClock, FIRST_SYNC_WAIT) => {}
    }
}

/// Owner mode: keeps `token` only when it is the owner's, or when the site has no owner yet
/// and the login came through the setup link (then its account becomes the owner, once:
/// instances racing agree on one). Anyone else is refused, and nothing of theirs is kept.
async fn admit_owner(
    app: &App,
    showcase: &Showcase,
    token: &TokenRecord,
    through_setup: bool,
) -> Result<(), Failure> {
    let owner = match app.records.owner().await {
        Ok(Some(owner)) => owner,
        Ok(None) if through_setup => app
            .records
            .bind(&token.user_id)
            .await
            .map_err(|_| Failure::Unavailable)?,
        Ok(None) => return Err(Failure::NotConnected),
        Err(_) => return Err(Failure::Unavailable),
    };
    if owner != token.user_id {
        return Err(Failure::OtherAccount);
    }
    app.instagram
        .tokens()
        .import(token.clone())
        .await
        .map_err(|_| Failure::Unavailable)?;
    showcase.set_owner(owner);
    Ok(())
}

/// `GET /owner/setup?code=…`: the one-time setup link. A valid code starts a login whose
/// account connects the site; the link then works no more.
pub(crate) async fn setup(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let code = query.get("code").map(String::as_str).unwrap_or_default();
    let taken = match app.records.take_setup(&sha256_hex(code), app.now()).await {
        Ok(taken) => taken,
        Err(_) => return unavailable(),
    };
    if code.is_empty() || !taken {
        return message(
            StatusCode::NOT_FOUND,
            "This setup link is not valid",
            "It was used already or has expired. Restart the site for a new one, or set --owner-id.",
        );
    }
    let (id, mut session, cookie) = match new_session(&app).await {
        Ok(fresh) => fresh,
        Err(response) => return *response,
    };
    session.setup = true;
    if let Err(response) = save(&app, &id, &session).await {
        return *response;
    }
    with_cookie(Redirect::to("/login?next=/owner").into_response(), Some(cookie))
}

/// Accepts only local paths: `/x`, never `//host`, `/\host`, `https:` or `javascript:`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.contains('\\')
                && !next.chars().any(char::is_control)
                && !next.contains("://") =>
        {
            next.to_owned()
        }
        _ => "/gallery".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_accepted_as_next() {
        assert_eq!(safe_next(Some("/album/1?x=2")), "/album/1?x=2");
        for hostile in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "/x\r\nSet-Cookie: a=b",
            "/x\u{1}y",
            "/x\u{7f}",
            "evil",
            "",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/gallery", "{hostile:?}");
        }
        assert_eq!(safe_next(None), "/gallery");
    }

    /// Every failure's reason reads back as its own sentence; anything else shows nothing.
    #[test]
    fn a_failure_s_reason_reads_back_as_its_sentence_and_nothing_else_does() {
        for failure in Failure::ALL {
            let query = HashMap::from([("login".to_owned(), failure.reason().to_owned())]);
            assert_eq!(notice(&query), Some(failure.sentence()), "{failure:?}");
        }
        for other in ["", "<script>", "Cancelled", "expired "] {
            let query = HashMap::from([("login".to_owned(), other.to_owned())]);
            assert_eq!(notice(&query), None, "{other:?}");
        }
    }
}

//! The connect flow: an account's owner opens a feed's one-time link, logs in with Instagram,
//! and the account is bound to that feed and nothing else. The login's pending state is
//! parked on the link (sealed, in the database), so the callback may reach any instance; the
//! link's secret rides in a cookie of the browser that opened it, so a callback URL replayed
//! by anyone else finds nothing.

use crate::admin::unavailable;
use crate::service::{Answer, FeedService, page};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use igdisplay::auth::PendingAuthorization;
use igdisplay::store::LinkState;
use igdisplay_mirror::FileBody;

/// The cookie that carries a connect link's secret from the link to the callback.
const COOKIE: &str = "igfeeds_connect";

impl FeedService {
    /// `GET /v1/connect/{secret}`: a usable link starts Instagram's login.
    pub(crate) async fn connect(&self, secret: &str) -> Answer {
        if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            return refused(&LinkState::Unknown);
        }
        let authorization = match self.inner.instagram.authorize().build() {
            Ok(authorization) => authorization,
            Err(error) => return unavailable(&error),
        };
        let pending = match serde_json::to_vec(&authorization.pending) {
            Ok(pending) => pending,
            Err(error) => return unavailable(&error),
        };
        match self.inner.store.park_connect_login(secret, &pending).await {
            Ok(true) => {}
            Ok(false) => {
                return match self.inner.store.connect_link(secret).await {
                    Ok(state) => refused(&state),
                    Err(error) => unavailable(&error),
                };
            }
            Err(error) => return unavailable(&error),
        }
        let mut response = Response::new(FileBody::empty());
        *response.status_mut() = StatusCode::SEE_OTHER;
        let headers = response.headers_mut();
        if let Ok(location) = HeaderValue::from_str(&authorization.url) {
            headers.insert(header::LOCATION, location);
        }
        let secure = if self.inner.config.public_url.starts_with("https://") {
            "; Secure"
        } else {
            ""
        };
        let cookie =
            format!("{COOKIE}={secret}; Path=/v1/connect; HttpOnly; SameSite=Lax; Max-Age=3600{secure}");
        if let Ok(cookie) = HeaderValue::from_str(&cookie) {
            headers.insert(header::SET_COOKIE, cookie);
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }

    /// `GET /v1/connect/callback`: Instagram's redirect. The code is exchanged, then the link
    /// is used (once) to bind the account to its feed and keep its token, in one transaction.
    pub(crate) async fn callback<B>(&self, request: &Request<B>) -> Answer {
        let secret = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|pair| pair.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_owned));
        let Some(secret) = secret else {
            return page(
                StatusCode::BAD_REQUEST,
                "Open your connect link first",
                "This page finishes a login begun from a feed's connect link, in the same browser.",
            );
        };
        let (feed_id, parked) = match self.inner.store.parked_login(&secret).await {
            Ok(Some(parked)) => parked,
            Ok(None) => {
                return match self.inner.store.connect_link(&secret).await {
                    Ok(state) => finished(refused(&state)),
                    Err(error) => unavailable(&error),
                };
            }
            Err(error) => return unavailable(&error),
        };
        let Ok(pending) = serde_json::from_slice::<PendingAuthorization>(&parked) else {
            return finished(refused(&LinkState::Unknown));
        };
        let redirect = format!(
            "{}{}",
            self.inner.config.callback_url(),
            request.uri().query().map(|q| format!("?{q}")).unwrap_or_default()
        );
        let record = match self.inner.instagram.exchange_login(pending, &redirect).await {
            Ok(record) => record,
            Err(error) => {
                tracing::info!(%error, "a connect login did not complete");
                return finished(page(
                    StatusCode::BAD_REQUEST,
                    "Not connected",
                    "Instagram did not confirm the login. Open your connect link again to retry.",
                ));
            }
        };
        match self.may_connect(&feed_id, &record).await {
            Ok(true) => self.bind(&secret, record).await,
            Ok(false) => {
                tracing::info!(feed = %feed_id, "a login as another account than the feed names was refused");
                finished(page(
                    StatusCode::FORBIDDEN,
                    "Not connected",
                    "This link is for another Instagram account. Log out of Instagram, open the \
                     link again and log in with the account it was made for.",
                ))
            }
            Err(error) => {
                tracing::warn!(%error, feed = %feed_id, "the account that logged in could not be checked");
                finished(page(
                    StatusCode::BAD_GATEWAY,
                    "Not connected",
                    "The account that logged in could not be checked. Open your connect link again to retry.",
                ))
            }
        }
    }

    /// Whether the account that logged in may connect the feed `feed_id`: any, unless the
    /// feed's settings name one (its username asked of Instagram with the new token, which
    /// is kept nowhere when it is refused).
    async fn may_connect(
        &self,
        feed_id: &str,
        record: &igdisplay::auth::TokenRecord,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let Some(feed) = self.inner.store.feed(feed_id).await? else {
            // Deleted meanwhile: the link is unknown now, and `bind` says so.
            return Ok(true);
        };
        let settings: crate::FeedSettings = serde_json::from_str(&feed.settings)?;
        if settings.connect_username.is_none() {
            return Ok(true);
        }
        let me = self
            .inner
            .instagram
            .graph_with_token(record.access_token.clone())
            .me()
            .fields(&[igdisplay::graph::UserField::Username])
            .send()
            .await?;
        Ok(settings.may_connect(me.username.as_deref()))
    }

    /// Uses the link for the account that logged in, keeping its token in the same write.
    async fn bind(&self, secret: &str, record: igdisplay::auth::TokenRecord) -> Answer {
        let (state, released) = match self.inner.store.redeem_connect_link(secret, &record).await {
            Ok(done) => done,
            Err(error) => return unavailable(&error),
        };
        let LinkState::Valid { feed_id } = state else {
            return finished(refused(&state));
        };
        if let Some(previous) = released
            && let Err(error) = self.purge_account(&previous, "").await
        {
            tracing::warn!(%error, "the mirror of the account a feed showed before could not be purged; the scheduler will");
        }
        self.forget(&feed_id);
        tracing::info!(feed = %feed_id, "an account was connected to a feed");
        finished(page(
            StatusCode::OK,
            "Connected",
            "Your Instagram account now feeds this site. Your posts appear within a few minutes.",
        ))
    }
}

/// The page for a link that cannot be used.
fn refused(state: &LinkState) -> Answer {
    let (status, why) = match state {
        LinkState::Used => (
            StatusCode::CONFLICT,
            "This connect link was already used: a link works once.",
        ),
        LinkState::Expired => (StatusCode::GONE, "This connect link has expired."),
        _ => (StatusCode::NOT_FOUND, "This connect link is not known."),
    };
    let mut answer = page(status, "This link cannot be used", why);
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// `answer` with the link's cookie cleared: the flow is over either way.
fn finished(mut answer: Answer) -> Answer {
    answer.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("igfeeds_connect=; Path=/v1/connect; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    answer
}

//! Meta's callbacks for the feeds' accounts, verified with the app's secret: a deauthorize
//! erases the account's token and purges its mirror (its feeds say `needs_login`); a
//! data-deletion request deletes the account, purges its mirror and unbinds it from its
//! feeds (no row keeps its id), and answers Meta a status URL and a confirmation code.

use crate::admin::unavailable;
use crate::service::{Answer, FeedService, json, page, problem};
use http_body_util::BodyExt as _;
use hyper::{Request, StatusCode};
use igdisplay::auth::{DataDeletionResponse, SignedRequest, verify_fresh_signed_request};
use igdisplay::store::MetaCallback;
use std::time::Duration;

/// How old a `signed_request` may be (Meta's clock against ours).
const MAX_AGE: Duration = Duration::from_secs(3600);
/// The largest callback body read (a form with one `signed_request`).
const MAX_BODY: usize = 16 * 1024;

impl FeedService {
    /// `POST /v1/meta/deauthorize` and `POST /v1/meta/data-deletion`.
    pub(crate) async fn meta<B>(&self, deletion: bool, request: Request<B>) -> Answer
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let signed = match self.verified(request).await {
            Ok(signed) => signed,
            Err(answer) => return answer,
        };
        let user = &signed.user_id;
        let (callback, answer) = if deletion {
            let status = format!("{}/v1/meta/deletion", self.inner.config.public_url);
            let Ok(response) = DataDeletionResponse::new(&status) else {
                return problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no randomness");
            };
            let code = response.confirmation_code.clone();
            let body = serde_json::json!({"url": response.url, "confirmation_code": code});
            (
                MetaCallback::DataDeletion {
                    confirmation_code: code,
                },
                body,
            )
        } else {
            (MetaCallback::Deauthorize, serde_json::json!({"ok": true}))
        };
        let store = &self.inner.store;
        let feeds = match store.feeds_of(user).await {
            Ok(feeds) => feeds,
            Err(error) => return unavailable(&error),
        };
        if let Err(error) = store.apply_callback(&signed, callback).await {
            return unavailable(&error);
        }
        if deletion && let Err(error) = store.unbind_account(user).await {
            return unavailable(&error);
        }
        if let Err(error) = self.inner.mirror.purge(user).await {
            tracing::warn!(%error, "a callback's mirror purge failed; Meta will send it again");
            return problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again");
        }
        for feed in feeds {
            self.forget(&feed.id);
        }
        json(StatusCode::OK, &answer)
    }

    /// `GET /v1/meta/deletion?code=…`: the status page Meta links a deletion to.
    pub(crate) fn deletion_status(&self) -> Answer {
        page(
            StatusCode::OK,
            "Data deletion",
            "A deletion request is carried out when Meta delivers it: the account's token, its \
             mirrored posts and its tie to any feed are deleted at once.",
        )
    }

    /// The callback's `signed_request`, verified and fresh.
    async fn verified<B>(&self, request: Request<B>) -> Result<SignedRequest, Answer>
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let refused = || {
            problem(
                StatusCode::BAD_REQUEST,
                "bad_signed_request",
                "invalid or stale signed_request",
            )
        };
        let credentials = self
            .inner
            .instagram
            .auth()
            .config()
            .credentials()
            .map_err(|_| problem(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no app secret"))?;
        let body = http_body_util::Limited::new(request.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|_| refused())?
            .to_bytes();
        let form = std::str::from_utf8(&body).map_err(|_| refused())?;
        let value = igdisplay::auth::webhooks::form_field(form, "signed_request").ok_or_else(refused)?;
        let now = self.inner.instagram.clock().now();
        verify_fresh_signed_request(&credentials.app_secret, &value, now, MAX_AGE).map_err(|_| refused())
    }
}

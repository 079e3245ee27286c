//! `/v1/admin/…`: the operator's API, behind a bearer token kept only as its hash. Create a
//! feed (its id and a one-time connect link), read, list, update, delete, and make a new
//! connect link.

use crate::service::{Answer, FeedService, json, problem};
use crate::settings::FeedSettings;
use http_body_util::BodyExt as _;
use hyper::header;
use hyper::{Method, Request, StatusCode};
use igdisplay::store::FeedRow;
use serde_json::{Value, json};

/// The largest request body the admin API reads.
const MAX_BODY: usize = 64 * 1024;

/// What a create or an update sends.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedChange {
    name: Option<String>,
    settings: Option<FeedSettings>,
}

impl FeedService {
    /// Routes `/v1/admin/{rest}` for a caller holding an admin token.
    pub(crate) async fn admin<B>(&self, rest: &[&str], request: Request<B>) -> Answer
    where
        B: hyper::body::Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match self.is_admin(&request).await {
            Ok(true) => {}
            Ok(false) => {
                let mut refused = problem(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send an admin token: Authorization: Bearer igfa_…",
                );
                refused.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                return refused;
            }
            Err(answer) => return answer,
        }
        let method = request.method().clone();
        match (&method, rest) {
            (&Method::GET, ["feeds"]) => self.list(request.uri().query().unwrap_or("")).await,
            (&Method::POST, ["feeds"]) => match read_change(request).await {
                Ok(change) => self.create(change).await,
                Err(answer) => answer,
            },
            (&Method::GET, ["feeds", id]) => self.show(id).await,
            (&Method::PUT | &Method::PATCH, ["feeds", id]) => {
                let id = (*id).to_owned();
                match read_change(request).await {
                    Ok(change) => self.update(&id, change).await,
                    Err(answer) => answer,
                }
            }
            (&Method::DELETE, ["feeds", id]) => self.delete(id).await,
            (&Method::POST, ["feeds", id, "connect"]) => self.new_link(id).await,
            (&Method::POST, ["feeds", id, "sync"]) => self.sync_now(id).await,
            _ => problem(StatusCode::NOT_FOUND, "not_found", "no such admin resource"),
        }
    }

    /// Whether the request carries an admin token (compared by hash in the database).
    async fn is_admin<B>(&self, request: &Request<B>) -> Result<bool, Answer> {
        let Some(token) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return Ok(false);
        };
        self.inner
            .store
            .is_admin_token(token.trim())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn create(&self, change: FeedChange) -> Answer {
        let settings = change.settings.unwrap_or_default();
        if let Err(error) = settings.validate() {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_settings",
                &error.to_string(),
            );
        }
        let name = change.name.unwrap_or_default();
        if let Some(answer) = bad_name(&name) {
            return answer;
        }
        let settings_json = serde_json::to_string(&settings).unwrap_or_default();
        let created = self.inner.store.create_feed(&name, &settings_json).await;
        let feed = match created {
            Ok(feed) => feed,
            Err(error) => return unavailable(&error),
        };
        let link = self
            .inner
            .store
            .add_connect_link(&feed.id, self.inner.config.connect_ttl)
            .await;
        match link {
            Ok(Some(secret)) => json(
                StatusCode::CREATED,
                &json!({"feed": self.feed_json(&feed), "connect_url": self.connect_url(&secret)}),
            ),
            Ok(None) => problem(StatusCode::CONFLICT, "gone", "the feed was deleted meanwhile"),
            Err(error) => unavailable(&error),
        }
    }

    async fn list(&self, query: &str) -> Answer {
        let after = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("after="))
            .filter(|a| a.bytes().all(|b| b.is_ascii_hexdigit()));
        match self.inner.store.list_feeds(after, 100).await {
            Ok(feeds) => {
                let next = (feeds.len() == 100).then(|| feeds.last().map(|f| f.id.clone()));
                let feeds: Vec<Value> = feeds.iter().map(|f| self.feed_json(f)).collect();
                json(
                    StatusCode::OK,
                    &json!({"feeds": feeds, "next_after": next.flatten()}),
                )
            }
            Err(error) => unavailable(&error),
        }
    }

    async fn show(&self, id: &str) -> Answer {
        match self.inner.store.feed(id).await {
            Ok(Some(feed)) => json(StatusCode::OK, &self.feed_json(&feed)),
            Ok(None) => problem(StatusCode::NOT_FOUND, "not_found", "no such feed"),
            Err(error) => unavailable(&error),
        }
    }

    async fn update(&self, id: &str, change: FeedChange) -> Answer {
        let current = match self.inner.store.feed(id).await {
            Ok(Some(feed)) => feed,
            Ok(None) => return problem(StatusCode::NOT_FOUND, "not_found", "no such feed"),
            Err(error) => return unavailable(&error),
        };
        let name = change.name.unwrap_or(current.name);
        if let Some(answer) = bad_name(&name) {
            return answer;
        }
        let settings = match change.settings {
            Some(settings) => settings,
            None => serde_json::from_str(&current.settings).unwrap_or_default(),
        };
        if let Err(error) = settings.validate() {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_settings",
                &error.to_string(),
            );
        }
        let settings_json = serde_json::to_string(&settings).unwrap_or_default();
        let updated = self.inner.store.update_feed(id, &name, &settings_json).await;
        self.forget(id);
        match updated {
            Ok(Some(feed)) => json(StatusCode::OK, &self.feed_json(&feed)),
            Ok(None) => problem(StatusCode::NOT_FOUND, "not_found", "no such feed"),
            Err(error) => unavailable(&error),
        }
    }

    async fn delete(&self, id: &str) -> Answer {
        let deleted = self.inner.store.delete_feed(id).await;
        self.forget(id);
        match deleted {
            Ok(Some(deleted)) => {
                let mut purged = None;
                if let (true, Some(user)) = (deleted.account_released, &deleted.user_id) {
                    match self.purge_account(user, "").await {
                        Ok(Some(report)) => purged = Some(report.files),
                        Ok(None) => tracing::info!(
                            "a deleted feed's account is being synced; the scheduler purges it after"
                        ),
                        Err(error) => {
                            tracing::warn!(%error, "a deleted feed's mirror could not be purged; the scheduler will")
                        }
                    }
                }
                json(
                    StatusCode::OK,
                    &json!({"deleted": id, "account_released": deleted.account_released, "files_purged": purged}),
                )
            }
            Ok(None) => problem(StatusCode::NOT_FOUND, "not_found", "no such feed"),
            Err(error) => unavailable(&error),
        }
    }

    async fn new_link(&self, id: &str) -> Answer {
        match self
            .inner
            .store
            .add_connect_link(id, self.inner.config.connect_ttl)
            .await
        {
            Ok(Some(secret)) => json(
                StatusCode::CREATED,
                &json!({"connect_url": self.connect_url(&secret)}),
            ),
            Ok(None) => problem(StatusCode::NOT_FOUND, "not_found", "no such feed"),
            Err(error) => unavailable(&error),
        }
    }

    /// `POST /v1/admin/feeds/{id}/sync`: the feed's account is synced on the next pass.
    async fn sync_now(&self, id: &str) -> Answer {
        let user = match self.inner.store.feed(id).await {
            Ok(Some(FeedRow {
                user_id: Some(user), ..
            })) => user,
            Ok(Some(_)) => {
                return problem(
                    StatusCode::CONFLICT,
                    "not_connected",
                    "no account is connected to this feed",
                );
            }
            Ok(None) => return problem(StatusCode::NOT_FOUND, "not_found", "no such feed"),
            Err(error) => return unavailable(&error),
        };
        match self.inner.store.sync_now(&user).await {
            Ok(()) => json(StatusCode::ACCEPTED, &json!({"scheduled": id})),
            Err(error) => unavailable(&error),
        }
    }

    fn connect_url(&self, secret: &str) -> String {
        format!("{}/v1/connect/{secret}", self.inner.config.public_url)
    }

    /// A feed as the admin API shows it.
    fn feed_json(&self, feed: &FeedRow) -> Value {
        json!({
            "id": feed.id,
            "name": feed.name,
            "user_id": feed.user_id,
            "settings": serde_json::from_str::<Value>(&feed.settings).unwrap_or(Value::Null),
            "version": feed.version,
            "created_at": feed.created_at.to_string(),
            "updated_at": feed.updated_at.to_string(),
            "url": self.inner.config.feed_url(&feed.id),
        })
    }
}

/// A name the admin API refuses.
fn bad_name(name: &str) -> Option<Answer> {
    let count = name.chars().count();
    (count == 0 || count > 200 || name.chars().any(char::is_control)).then(|| {
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            "name is 1 to 200 characters, no control characters",
        )
    })
}

/// The JSON body of a create or an update, at most [`MAX_BODY`] bytes.
async fn read_change<B>(request: Request<B>) -> Result<FeedChange, Answer>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(request.into_body(), MAX_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|_| {
            problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is over 64 KiB or broken",
            )
        })?
        .to_bytes();
    if bytes.is_empty() {
        return Ok(FeedChange::default());
    }
    serde_json::from_slice(&bytes).map_err(|error| {
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json",
            &error.to_string(),
        )
    })
}

/// The answer when the database (or the bucket) failed.
pub(crate) fn unavailable(error: &dyn std::error::Error) -> Answer {
    tracing::warn!(%error, "the store failed");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the database is unavailable; try again",
    )
}

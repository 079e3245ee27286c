//! The feed service against the mock Instagram, over HTTP on loopback: the admin API, the
//! connect flow (a link used twice is refused), syncs, the public feed (settings applied on
//! the next read, ETag and 304, origins refused), two instances on one database and folder,
//! and a revoked account whose feed stays served saying `needs_login`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use igdisplay::Instagram;
use igdisplay::mock::{MockPlatform, MockServer, Stub};
use igdisplay::model::{AppSecret, Platform};
use igdisplay::store::{AppBudget, AppQuota, Key, KeyRing, SqlStore};
use igdisplay_feeds::{FeedService, FeedsConfig};
use igdisplay_mirror::{DownloadPolicy, Downloader, FsBlobStore, Mirror, ServeLimits};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// One running instance of the service, on a shared database file and media folder.
struct Instance {
    service: FeedService,
    base: String,
    clock: igdisplay::http::SharedClock,
}

/// What instances of one deployment share: the mock, the database and the folder.
struct Deployment {
    mock: MockServer,
    dir: tempfile::TempDir,
    keys: KeyRing,
    /// The app's quota every instance's syncs book in, if any.
    quota: Option<AppQuota>,
    /// Told when an instance's clock is asked to wait long (a wait for the quota); that wait
    /// then never ends by itself. `None`: waits pass on the mock's clock at once.
    long_waits: Option<tokio::sync::mpsc::UnboundedSender<Duration>>,
}

/// A clock whose long waits (100 s or more) never end by themselves and are announced: the
/// test sees an instance inside such a wait, and whether something else ends it.
#[derive(Debug)]
struct HeldWaits {
    inner: igdisplay::http::SharedClock,
    announce: tokio::sync::mpsc::UnboundedSender<Duration>,
}

#[async_trait::async_trait]
impl igdisplay::http::Clock for HeldWaits {
    fn now(&self) -> std::time::SystemTime {
        self.inner.now()
    }

    async fn sleep(&self, duration: Duration) {
        if duration < Duration::from_secs(100) {
            return self.inner.sleep(duration).await;
        }
        let _ = self.announce.send(duration);
        std::future::pending::<()>().await;
    }

    async fn timer(&self, duration: Duration) {
        self.inner.timer(duration).await;
    }
}

impl Deployment {
    fn new() -> Self {
        Self::seeded(igdisplay::mock::Seed::demo())
    }

    /// A deployment whose mock holds `seed`'s world.
    fn seeded(seed: igdisplay::mock::Seed) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mock = MockServer::builder()
            .platform(MockPlatform::InstagramLogin)
            .calls_per_hour(None)
            .seed(seed)
            .start()
            .unwrap();
        Self {
            mock,
            dir: tempfile::tempdir().unwrap(),
            keys: KeyRing::new(Key::new("k1", &[7; 32]).unwrap()),
            quota: None,
            long_waits: None,
        }
    }

    /// Starts an instance named `owner` on a port of its own.
    async fn instance(&self, owner: &str) -> Instance {
        self.instance_with(owner, |_| {}).await
    }

    /// [`instance`](Self::instance), its configuration changed by `change`.
    async fn instance_with(&self, owner: &str, change: impl FnOnce(&mut FeedsConfig)) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // The database's time follows the mock's clock, which the tests move by hours.
        let store = SqlStore::sqlite(&self.dir.path().join("feeds.db"), self.keys.clone())
            .await
            .unwrap()
            .with_pinned_time(igdisplay::follow_mock_clock(&self.mock));
        let mut config = FeedsConfig::new(&base);
        config.owner = owner.to_owned();
        config.cache_ttl = Duration::ZERO;
        let folder = self.dir.path().join("mirror");
        config.media_folder = Some(folder.clone());
        change(&mut config);
        std::fs::create_dir_all(&folder).unwrap();
        // Each instance has its own address; the mock accepts every instance's callback.
        self.mock.add_redirect_uri(&config.callback_url());
        let app = self.mock.app();
        let mut clock = igdisplay::follow_mock_clock(&self.mock);
        if let Some(announce) = &self.long_waits {
            clock = Arc::new(HeldWaits {
                inner: clock,
                announce: announce.clone(),
            });
        }
        let instagram = Instagram::builder(
            Platform::InstagramLogin,
            app.id,
            AppSecret::new(app.secret),
            config.callback_url(),
        )
        .mock(self.mock.base_url())
        .clock(clock)
        .store(Arc::new(store.clone()))
        .build()
        .unwrap();
        let downloader = Downloader::new(
            instagram.backend().clone(),
            DownloadPolicy::instagram().allow_origin(self.mock.base_url()),
        );
        let mirror = Mirror::new(Arc::new(FsBlobStore::new(&folder)), downloader)
            .with_clock(instagram.clock().clone());
        let clock = instagram.clock().clone();
        let budget = AppBudget::new(&store, Some(instagram.pacer().clone()), self.quota);
        let service = FeedService::new(store, mirror, instagram, config)
            .unwrap()
            .with_budget(budget);
        let serving = service.clone();
        tokio::spawn(igdisplay_mirror::serve(
            listener,
            ServeLimits::default(),
            hyper::service::service_fn(move |request| {
                let service = serving.clone();
                async move { Ok::<_, std::convert::Infallible>(service.handle(request).await) }
            }),
            std::future::pending(),
        ));
        Instance { service, base, clock }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Instance {
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = http()
            .request(method, format!("{}/v1/admin{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /v1/feeds/{id}` with `headers`: status, headers, JSON.
    async fn feed(&self, id: &str, headers: &[(&str, &str)]) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = http().get(format!("{}/v1/feeds/{id}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let (status, head) = (response.status().as_u16(), response.headers().clone());
        (status, head, response.json().await.unwrap_or(Value::Null))
    }
}

/// Opens the connect link as `username`'s browser would, through the mock's window: the
/// final page's status and text.
async fn connect(deployment: &Deployment, link: &str, username: &str) -> (u16, String) {
    let opened = http().get(link).send().await.unwrap();
    if opened.status() != 303 {
        let status = opened.status().as_u16();
        return (status, opened.text().await.unwrap());
    }
    let cookie = opened.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let authorize = opened.headers()["location"].to_str().unwrap().to_owned();
    let callback = deployment.mock.approve(&authorize, username).unwrap();
    let done = http()
        .get(&callback)
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (done.status().as_u16(), done.text().await.unwrap())
}

/// Creates a feed named `name` through the admin API: its id and connect link.
async fn create_feed(instance: &Instance, token: &str, name: &str) -> (String, String) {
    let (status, created) = instance
        .admin(
            reqwest::Method::POST,
            "/feeds",
            token,
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["feed"]["id"].as_str().unwrap().to_owned();
    (id, created["connect_url"].as_str().unwrap().to_owned())
}

/// A deployment with one instance, an admin token and a feed of `cafe_nova` synced once.
async fn connected_feed() -> (Deployment, Instance, String, String) {
    let deployment = Deployment::new();
    let instance = deployment.instance("one").await;
    let token = instance.service.store().add_admin_token("test").await.unwrap();
    let (id, link) = create_feed(&instance, &token, "Café Nova").await;
    let (status, text) = connect(&deployment, &link, "cafe_nova").await;
    assert_eq!(status, 200, "{text}");
    let pass = instance.service.sync_due().await.unwrap();
    assert_eq!((pass.claimed, pass.synced), (1, 1), "{pass:?}");
    (deployment, instance, token, id)
}

#[tokio::test]
async fn a_feed_is_created_connected_synced_and_served_with_its_media() {
    let (_deployment, instance, _, id) = connected_feed().await;
    let (status, head, page) = instance.feed(&id, &[]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["state"], "fresh");
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty() && items.len() <= 24, "{}", items.len());
    let first = &items[0];
    for field in ["id", "type", "permalink", "timestamp", "playable"] {
        assert!(!first[field].is_null(), "{field} in {first}");
    }
    let image = &first["image"];
    assert!(image["color"].as_str().unwrap().starts_with('#'));
    assert!(image["width"].as_u64().unwrap() > 0);
    let url = image["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v1/media/media/", instance.base)),
        "{url}"
    );
    let file = http().get(url).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(&file.bytes().await.unwrap()[..2], [0xFF, 0xD8], "a JPEG");
    assert!(
        head["cache-control"]
            .to_str()
            .unwrap()
            .contains("stale-while-revalidate")
    );
    assert_eq!(head["access-control-allow-origin"], "*");
    // The client holds it: 304, no body.
    let etag = head["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = instance.feed(&id, &[("if-none-match", &etag)]).await;
    assert_eq!(status, 304);
}

#[tokio::test]
async fn a_connect_link_used_twice_is_refused_and_binds_nothing_more() {
    let deployment = Deployment::new();
    let instance = deployment.instance("one").await;
    let token = instance.service.store().add_admin_token("test").await.unwrap();
    let (id, link) = create_feed(&instance, &token, "x").await;
    assert_eq!(connect(&deployment, &link, "cafe_nova").await.0, 200);
    let (status, text) = connect(&deployment, &link, "jayposiris").await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("already used"), "{text}");
    let (_, shown) = instance
        .admin(reqwest::Method::GET, &format!("/feeds/{id}"), &token, None)
        .await;
    let cafe = deployment
        .mock
        .users()
        .into_iter()
        .find(|u| u.username == "cafe_nova")
        .unwrap();
    assert_eq!(shown["user_id"], cafe.id, "still the first account");
    // A callback without the browser's cookie (a replayed URL) finds nothing.
    let stranger = http()
        .get(format!("{}/v1/connect/callback?code=AQx&state=S", instance.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 400);
}

/// A feed that names its account: a stranger who opens its connect link first and logs in
/// as someone else is refused, binds nothing and keeps no token, and the link still works for
/// the account it was made for.
#[tokio::test]
async fn a_stranger_who_uses_a_named_feeds_link_first_binds_nothing() {
    let deployment = Deployment::new();
    let one = deployment.instance("one").await;
    let token = one.service.store().add_admin_token("test").await.unwrap();
    let (status, created) = one
        .admin(
            reqwest::Method::POST,
            "/feeds",
            &token,
            Some(json!({ "name": "Café Nova", "settings": {"connect_username": "Cafe_Nova"} })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["feed"]["id"].as_str().unwrap();
    let link = created["connect_url"].as_str().unwrap();
    let (status, page) = connect(&deployment, link, "jayposiris").await;
    assert_eq!(status, 403, "{page}");
    let store = one.service.store();
    assert_eq!(store.feed(id).await.unwrap().unwrap().user_id, None);
    use igdisplay::auth::TokenStore as _;
    assert!(
        store.users().await.unwrap().is_empty(),
        "the stranger's token is kept nowhere"
    );
    let (status, page) = connect(&deployment, link, "cafe_nova").await;
    assert_eq!(status, 200, "{page}");
    assert!(store.feed(id).await.unwrap().unwrap().user_id.is_some());
}

#[tokio::test]
async fn the_admin_api_needs_a_token_and_checks_what_it_keeps() {
    let deployment = Deployment::new();
    let instance = deployment.instance("one").await;
    let token = instance.service.store().add_admin_token("test").await.unwrap();
    let (status, _) = instance
        .admin(reqwest::Method::GET, "/feeds", "igfa_wrong", None)
        .await;
    assert_eq!(status, 401);
    let unauthenticated = http()
        .get(format!("{}/v1/admin/feeds", instance.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let bad = json!({"name": "x", "settings": {"max_posts": 0}});
    let (status, answer) = instance
        .admin(reqwest::Method::POST, "/feeds", &token, Some(bad))
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (422, Some("invalid_settings"))
    );
    let unknown = json!({"name": "x", "settings": {"colour": "red"}});
    assert_eq!(
        instance
            .admin(reqwest::Method::POST, "/feeds", &token, Some(unknown))
            .await
            .0,
        422
    );
    let (_, created) = instance
        .admin(
            reqwest::Method::POST,
            "/feeds",
            &token,
            Some(json!({"name": "x"})),
        )
        .await;
    let id = created["feed"]["id"].as_str().unwrap();
    let (status, listed) = instance.admin(reqwest::Method::GET, "/feeds", &token, None).await;
    assert_eq!((status, listed["feeds"].as_array().unwrap().len()), (200, 1));
    let (status, _) = instance
        .admin(reqwest::Method::DELETE, &format!("/feeds/{id}"), &token, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(instance.feed(id, &[]).await.0, 404);
}

#[tokio::test]
async fn a_settings_change_shows_on_the_next_read_without_a_sync() {
    let (_deployment, instance, token, id) = connected_feed().await;
    let (_, before, page) = instance.feed(&id, &[]).await;
    let all = page["items"].as_array().unwrap().clone();
    assert!(all.len() >= 3, "{page:#}");
    let pinned = all.last().unwrap()["id"].as_str().unwrap().to_owned();
    let hidden = all[0]["id"].as_str().unwrap().to_owned();
    let settings = json!({"settings": {
        "max_posts": 3, "pinned": [pinned], "hidden": [hidden],
        "allowed_origins": ["https://cafe-nova.example"],
    }});
    let (status, _) = instance
        .admin(
            reqwest::Method::PATCH,
            &format!("/feeds/{id}"),
            &token,
            Some(settings),
        )
        .await;
    assert_eq!(status, 200);
    let origin = [("origin", "https://cafe-nova.example")];
    let (status, after, page) = instance.feed(&id, &origin).await;
    assert_eq!(status, 200);
    let items = page["items"].as_array().unwrap();
    // At most three: the pinned one, then the newest but the hidden one.
    assert_eq!(items.len(), 3.min(all.len() - 1), "{page:#}");
    assert_eq!(items[0]["id"].as_str(), Some(pinned.as_str()));
    assert_eq!(items[0]["pinned"], true);
    assert!(items.iter().all(|i| i["id"].as_str() != Some(hidden.as_str())));
    assert_ne!(before["etag"], after["etag"]);
    assert_eq!(after["access-control-allow-origin"], "https://cafe-nova.example");
    // A page of another site gets no feed.
    let (status, _, refused) = instance
        .feed(&id, &[("origin", "https://elsewhere.example")])
        .await;
    assert_eq!(status, 403);
    assert!(refused.get("items").is_none());
}

/// An instance checks a feed it serves against the database, not the bucket: while the feed
/// and its account's syncs are unchanged, its posts are served without reading the bucket
/// again (here the bucket's folder is gone); a change made on another instance is read from
/// the bucket on the next read.
#[tokio::test]
async fn an_unchanged_feed_is_served_without_the_bucket_and_a_change_elsewhere_is_read() {
    let (deployment, one, token, id) = connected_feed().await;
    let two = deployment.instance("two").await;
    let (_, _, page) = one.feed(&id, &[]).await;
    let items = page["items"].as_array().unwrap().len();
    assert!(items >= 3, "{page:#}");
    let mirror = deployment.dir.path().join("mirror");
    let away = deployment.dir.path().join("mirror-away");
    std::fs::rename(&mirror, &away).unwrap();
    let (status, _, again) = one.feed(&id, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["items"], page["items"],
        "served as read, the bucket untouched"
    );
    std::fs::rename(&away, &mirror).unwrap();
    let patch = json!({"settings": {"max_posts": 1}});
    let path = format!("/feeds/{id}");
    let (status, _) = two
        .admin(reqwest::Method::PATCH, &path, &token, Some(patch))
        .await;
    assert_eq!(status, 200);
    let (_, _, changed) = one.feed(&id, &[]).await;
    assert_eq!(changed["items"].as_array().unwrap().len(), 1, "{changed:#}");
}

#[tokio::test]
async fn a_feed_created_on_one_instance_is_served_by_another() {
    let (deployment, one, token, id) = connected_feed().await;
    let two = deployment.instance("two").await;
    let (status, _, page) = two.feed(&id, &[]).await;
    assert_eq!((status, page["state"].as_str()), (200, Some("fresh")));
    // The same posts (each instance names its own address in media URLs; behind one proxy
    // they share it).
    let ids = |page: &Value| -> Vec<Value> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect()
    };
    assert_eq!(ids(&page), ids(&one.feed(&id, &[]).await.2));
    assert!(!ids(&page).is_empty());
    let (status, shown) = two
        .admin(reqwest::Method::GET, &format!("/feeds/{id}"), &token, None)
        .await;
    assert_eq!((status, shown["id"].as_str()), (200, Some(id.as_str())));
    // Nothing is due again yet: neither instance claims the account.
    assert_eq!(two.service.sync_due().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn a_revoked_accounts_feed_stays_served_and_says_needs_login() {
    let (deployment, instance, _, id) = connected_feed().await;
    let (_, _, before) = instance.feed(&id, &[]).await;
    deployment.mock.revoke_tokens("cafe_nova").unwrap();
    deployment.mock.advance(Duration::from_secs(7 * 3600));
    let pass = instance.service.sync_due().await.unwrap();
    assert_eq!(pass.needs_login, 1, "{pass:?}");
    let (status, _, after) = instance.feed(&id, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(after["state"], "needs_login");
    assert_eq!(after["items"], before["items"], "the last good posts are kept");
    let outbox = instance.service.store().list_events(None, 0, 100).await.unwrap();
    let needs: Vec<_> = outbox
        .iter()
        .filter(|e| e.event.kind() == "needs_login")
        .collect();
    assert_eq!(needs.len(), 1);
    let body = serde_json::to_value(&needs[0].event).unwrap();
    assert_eq!(body["feeds"], json!([id]));
}

/// Instagram refuses one instance's sync for the app's own rate (code 4): the pause is shared,
/// so the other instance claims nothing until it ends, and then syncs the account.
#[tokio::test]
async fn a_sync_refused_for_the_apps_rate_pauses_every_instance() {
    let (deployment, one, _, id) = connected_feed().await;
    let two = deployment.instance("two").await;
    deployment.mock.advance(Duration::from_secs(7 * 3600));
    let limit = json!({"error": {"message": "(#4) Application request limit reached",
        "type": "OAuthException", "code": 4}});
    deployment
        .mock
        .stub(Stub::json("GET", "/me/media", 400, limit).header("retry-after", "600"));
    let pass = one.service.sync_due().await.unwrap();
    assert_eq!((pass.claimed, pass.failed, pass.synced), (1, 1, 0), "{pass:?}");
    let held = two.service.sync_due().await.unwrap();
    assert_eq!(held.claimed, 0, "{held:?}");
    let pause = held.held.expect("the app's pause holds the other instance");
    assert!(pause > Duration::from_secs(60), "{pause:?}");
    deployment.mock.clear_stubs();
    deployment.mock.advance(pause + Duration::from_secs(1));
    let pass = two.service.sync_due().await.unwrap();
    assert_eq!((pass.claimed, pass.synced), (1, 1), "{pass:?}");
    let (status, _, feed) = two.feed(&id, &[]).await;
    assert_eq!((status, feed["state"].as_str()), (200, Some("fresh")), "{feed}");
}

/// Syncs book their Graph calls in the app's quota, shared by every instance: a sync whose
/// slot is past half a lease is given back (still due), the next pass of any instance is held
/// while the quota is booked that far ahead, and every account is synced once it comes back.
#[tokio::test]
async fn syncs_book_their_calls_in_the_apps_quota_shared_by_every_instance() {
    let mut deployment = Deployment::new();
    deployment.quota = Some(AppQuota::new(1, Duration::from_secs(3600)));
    let one = two_accounts_connected(&deployment).await;
    let two = deployment.instance("two").await;
    // The first sync's two calls take the next two hours of the quota: the second account's
    // slot is past half a lease, so it is given back.
    let pass = one.service.sync_due().await.unwrap();
    assert_eq!((pass.claimed, pass.synced, pass.deferred), (2, 1, 1), "{pass:?}");
    let held = two.service.sync_due().await.unwrap();
    assert_eq!(held.claimed, 0, "{held:?}");
    let wait = held
        .held
        .expect("the quota, booked ahead, holds the other instance");
    assert!(wait > Duration::from_secs(3600), "{wait:?}");
    // Once the quota is back, the account given back is synced.
    deployment.mock.advance(wait + igdisplay_mirror::SYNC_LEASE);
    let pass = two.service.sync_due().await.unwrap();
    assert!(pass.synced >= 1, "{pass:?}");
    let schedules = two.service.store().sync_schedules(None, 10).await.unwrap();
    assert_eq!(schedules.len(), 2);
    assert!(schedules.iter().all(|s| s.syncs == 1), "{schedules:?}");
}

/// A pass stops booking once one sync's slot is too far ahead: the claims after it are given
/// back without a booking (each would hold its share of the quota for nothing).
#[tokio::test]
async fn a_pass_books_nothing_past_the_first_sync_it_gives_back() {
    use igdisplay::auth::{Platform as AuthPlatform, TokenRecord};
    let mut deployment = Deployment::seeded(igdisplay::mock::Seed::demo().with_fleet("shop", 3, 2));
    // A sync books two calls: two hours of this quota.
    deployment.quota = Some(AppQuota::new(1, Duration::from_secs(3600)));
    let one = deployment.instance("one").await;
    let store = one.service.store();
    let minted = deployment
        .mock
        .issue_tokens("shop", igdisplay::mock::TokenLifetime::LongLived)
        .unwrap();
    assert_eq!(minted.len(), 3);
    for token in &minted {
        let record = TokenRecord::long_lived(
            igdisplay::model::UserId::new(&token.user_id),
            igdisplay::model::AccessToken::new(&token.access_token),
            AuthPlatform::InstagramLogin,
            one.clock.now(),
        );
        let feed = store.create_feed(&token.user_id, "{}").await.unwrap();
        let link = store
            .add_connect_link(&feed.id, Duration::from_secs(3600))
            .await
            .unwrap()
            .unwrap();
        store.redeem_connect_link(&link, &record).await.unwrap();
    }
    let pass = one.service.sync_due().await.unwrap();
    assert_eq!((pass.claimed, pass.synced, pass.deferred), (3, 1, 2), "{pass:?}");
    // Booked: the sync's two hours, and the two of the first given back; not the third's.
    let held = one.service.sync_due().await.unwrap().held.unwrap();
    let lease = igdisplay_mirror::SYNC_LEASE / 2;
    let booked = held + lease;
    assert!(
        booked > Duration::from_secs(3 * 3600) && booked <= Duration::from_secs(4 * 3600),
        "{booked:?} booked ahead"
    );
}

/// An instance "one" with the mock's two professional accounts each connected to a feed.
async fn two_accounts_connected(deployment: &Deployment) -> Instance {
    let one = deployment.instance("one").await;
    let token = one.service.store().add_admin_token("test").await.unwrap();
    for (name, username) in [("Café Nova", "cafe_nova"), ("Jay", "jayposiris")] {
        let (_, link) = create_feed(&one, &token, name).await;
        assert_eq!(connect(deployment, &link, username).await.0, 200);
    }
    one
}

/// `instance`'s scheduler, running: the sender that stops it, and the task.
fn scheduler_of(instance: &Instance) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = instance.service.clone();
    let task = tokio::spawn(async move {
        service
            .run_scheduler(async {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, task)
}

/// `work`'s output; a bound on the test, not a wait: it ends as soon as `work` does, and
/// fails with `why` if that takes a minute.
async fn within_a_minute<T>(work: impl std::future::Future<Output = T>, why: &str) -> T {
    tokio::select! {
        done = work => done,
        () = igdisplay::http::Clock::timer(&igdisplay::http::SystemClock, Duration::from_secs(60)) => panic!("{why}"),
    }
}

/// The scheduler is stopped while a sync waits for its slot in the app's quota: the wait ends
/// at once (not after the slot), and the account is given back still due, for another
/// instance; the sync finished before the stop stays recorded.
#[tokio::test]
async fn a_stop_ends_a_wait_for_the_apps_quota_and_gives_the_account_back() {
    let mut deployment = Deployment::new();
    // A sync books two calls: 200 s of this quota, less than half a lease, so it is waited.
    deployment.quota = Some(AppQuota::new(1, Duration::from_secs(100)));
    assert!(igdisplay_mirror::SYNC_LEASE / 2 > Duration::from_secs(200));
    let (waits, mut waiting) = tokio::sync::mpsc::unbounded_channel();
    deployment.long_waits = Some(waits);
    let one = two_accounts_connected(&deployment).await;
    let (stop, scheduler) = scheduler_of(&one);
    // The first account is synced; the second waits for its slot.
    waiting.recv().await.unwrap();
    stop.send(()).unwrap();
    within_a_minute(scheduler, "the stop did not end the wait for the quota")
        .await
        .unwrap();
    let schedules = one.service.store().sync_schedules(None, 10).await.unwrap();
    let synced: Vec<_> = schedules.iter().map(|s| (s.syncs, s.leased)).collect();
    assert!(
        synced.contains(&(1, false)) && synced.contains(&(0, false)),
        "one synced, one given back: {schedules:?}"
    );
}

/// An instance runs its claimed syncs at once, not one after another: both accounts' syncs
/// are waiting for their slots in the quota together (one behind the other, each would wait
/// for the one before it to end).
#[tokio::test]
async fn an_instance_runs_its_claimed_syncs_at_once() {
    let mut deployment = Deployment::new();
    // A sync books two calls: 100 s of this quota.
    let quota = AppQuota::new(1, Duration::from_secs(50));
    deployment.quota = Some(quota);
    let (waits, mut waiting) = tokio::sync::mpsc::unbounded_channel();
    deployment.long_waits = Some(waits);
    let one = two_accounts_connected(&deployment).await;
    // The next 100 s of the quota are taken: the two syncs' slots are 100 and 200 s ahead.
    let budget = AppBudget::new(one.service.store(), None, Some(quota));
    assert_eq!(budget.book(2).await.unwrap(), Duration::ZERO);
    let (stop, scheduler) = scheduler_of(&one);
    let mut waits = Vec::new();
    for _ in 0..2 {
        let wait = within_a_minute(waiting.recv(), "the syncs did not wait at once").await;
        waits.push(wait.unwrap());
    }
    waits.sort();
    assert_eq!(waits, [Duration::from_secs(100), Duration::from_secs(200)]);
    stop.send(()).unwrap();
    scheduler.await.unwrap();
}

/// Posts Meta's callback `path` for `username`, signed with the mock app's secret.
async fn meta_callback(
    deployment: &Deployment,
    instance: &Instance,
    path: &str,
    username: &str,
) -> (u16, Value) {
    let user = deployment
        .mock
        .users()
        .into_iter()
        .find(|u| u.username == username)
        .unwrap();
    let issued = igdisplay::model::Timestamp::from_system_time(instance.service_clock()).unix();
    let payload = json!({"user_id": user.id, "algorithm": "HMAC-SHA256", "issued_at": issued}).to_string();
    let secret = AppSecret::new(deployment.mock.app().secret);
    let signed = igdisplay::auth::sign_signed_request(&secret, &payload);
    let response = http()
        .post(format!("{}/v1/meta/{path}", instance.base))
        .form(&[("signed_request", signed)])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl Instance {
    fn service_clock(&self) -> std::time::SystemTime {
        self.clock.now()
    }
}

#[tokio::test]
async fn a_deauthorize_purges_the_accounts_posts_and_the_feed_says_needs_login() {
    let (deployment, instance, _, id) = connected_feed().await;
    let files = |dir: &std::path::Path| walk(&dir.join("mirror/media"));
    assert!(files(deployment.dir.path()) > 0);
    let forged = http()
        .post(format!("{}/v1/meta/deauthorize", instance.base))
        .form(&[("signed_request", "c2ln.eyJ1c2VyX2lkIjoiMSJ9")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let (status, _) = meta_callback(&deployment, &instance, "deauthorize", "cafe_nova").await;
    assert_eq!(status, 200);
    let (_, _, page) = instance.feed(&id, &[]).await;
    assert_eq!(page["state"], "needs_login");
    assert_eq!(page["items"], json!([]));
    assert_eq!(files(deployment.dir.path()), 0, "every mirrored file is gone");
}

#[tokio::test]
async fn a_data_deletion_deletes_the_account_and_unbinds_its_feeds() {
    let (deployment, instance, token, id) = connected_feed().await;
    let (status, answer) = meta_callback(&deployment, &instance, "data-deletion", "cafe_nova").await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["confirmation_code"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
    assert!(
        answer["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/v1/meta/deletion", instance.base))
    );
    let (_, shown) = instance
        .admin(reqwest::Method::GET, &format!("/feeds/{id}"), &token, None)
        .await;
    assert_eq!(shown["user_id"], Value::Null, "no row keeps the account's id");
    let (_, _, page) = instance.feed(&id, &[]).await;
    assert_eq!(
        (page["state"].as_str(), page["items"].clone()),
        (Some("pending"), json!([]))
    );
    assert!(
        instance.service.sync_due().await.unwrap().claimed == 0,
        "nothing left to sync"
    );
}

/// The process dies after a feed's deletion was written and before its account's files were
/// deleted: the purge is left in the database, and the next pass of any instance does it.
#[tokio::test]
async fn a_purge_left_by_a_crash_is_done_by_the_next_pass() {
    let (deployment, one, _, id) = connected_feed().await;
    let media = deployment.dir.path().join("mirror/media");
    assert!(walk(&media) > 0);
    // The deletion's write alone, as a crash right after it leaves it.
    let deleted = one.service.store().delete_feed(&id).await.unwrap().unwrap();
    assert!(deleted.account_released);
    assert!(walk(&media) > 0, "the files outlived the crash");
    let two = deployment.instance("two").await;
    let pass = two.service.sync_due().await.unwrap();
    assert_eq!((pass.claimed, pass.purged, pass.synced), (1, 1, 0), "{pass:?}");
    assert_eq!(walk(&media), 0, "every file of the account is gone");
    assert!(
        two.service
            .store()
            .sync_schedules(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| if e.path().is_dir() { walk(&e.path()) } else { 1 })
            .sum()
    })
}

#[tokio::test]
async fn every_answer_names_its_request_id_the_proxys_when_it_is_plain() {
    let deployment = Deployment::new();
    let instance = deployment.instance("one").await;
    let healthz = |id: &'static str| {
        http()
            .get(format!("{}/healthz", instance.base))
            .header("x-request-id", id)
            .send()
    };
    let kept = healthz("edge-7f3a-01").await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "edge-7f3a-01");
    let replaced = healthz("<script>").await.unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap().to_owned();
    let (prefix, n) = id.split_once('-').unwrap();
    assert!(
        prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert!(u64::from_str_radix(n, 16).is_ok(), "{id}");
    let next = healthz("<script>").await.unwrap();
    assert_ne!(
        next.headers()["x-request-id"],
        id.as_str(),
        "each request its own id"
    );
}

#[tokio::test]
async fn an_instance_keeps_no_more_feeds_cached_than_its_bound() {
    let deployment = Deployment::new();
    let instance = deployment
        .instance_with("one", |config| {
            config.cache_ttl = Duration::from_secs(3600);
            config.cache_feeds = 2;
        })
        .await;
    let token = instance.service.store().add_admin_token("test").await.unwrap();
    for n in 0..5 {
        let (id, _) = create_feed(&instance, &token, &format!("feed {n}")).await;
        assert_eq!(instance.feed(&id, &[]).await.0, 200);
        assert!(
            instance.service.cached_feeds() <= 2,
            "{} cached",
            instance.service.cached_feeds()
        );
    }
}

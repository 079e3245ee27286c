//! [`MockServer`]: the running mock as a test holds it (its app, users, clock, journal,
//! faults, stubs and the decisions of its authorize window), and the facts it hands out.

use crate::server::Shared;
use crate::{
    Fault, JournalEntry, JournalMismatch, MockBuilder, MockError, MockPlatform, SeedMedia, Stub, journal,
    routes, wire,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Which of Meta's callbacks to post with [`MockServer::send_callback`]: both carry a
/// `signed_request` for the user; the data-deletion one expects `{url, confirmation_code}`
/// back.
///
/// ```
/// use igdisplay_mock::CallbackKind;
///
/// assert_eq!(CallbackKind::DataDeletion.to_string(), "data-deletion");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallbackKind {
    /// The user removed the app: the deauthorize callback.
    Deauthorize,
    /// The user asked for their data to be deleted: the data-deletion callback.
    DataDeletion,
}

impl std::fmt::Display for CallbackKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CallbackKind::Deauthorize => "deauthorize",
            CallbackKind::DataDeletion => "data-deletion",
        })
    }
}

/// How long a token from [`MockServer::issue_token`] lives.
///
/// ```
/// use igdisplay_mock::{MockServer, TokenLifetime};
///
/// let mock = MockServer::start()?;
/// let short = mock.issue_token("cafe_nova", TokenLifetime::ShortLived)?;
/// assert_eq!(short.expires_in, 3600);
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenLifetime {
    /// One hour, as the code exchange gives.
    ShortLived,
    /// Sixty days, as the App Dashboard's "Generate token" gives.
    LongLived,
}

/// The seeded app, as a client needs it: pass `id`, `secret` and one of `redirect_uris` to
/// the client's configuration.
///
/// ```
/// let app = igdisplay_mock::MockServer::start()?.app();
/// assert!(app.secret.starts_with("mock-app-secret-"));
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockApp {
    /// The Instagram App ID: the `client_id` of the authorize URL and the exchange.
    pub id: String,
    /// The Instagram App Secret: the `client_secret` of the exchanges, and the key of every
    /// `signed_request` the mock posts.
    pub secret: String,
    /// The name shown in the authorize window.
    pub name: String,
    /// The registered redirect URIs; a client's must equal one of them byte for byte. Add one
    /// with [`MockServer::add_redirect_uri`].
    pub redirect_uris: Vec<String>,
}

/// A seeded user, with both of Instagram's ids: `id` (app-scoped, what `/me` and the code
/// exchange give) and `user_id` (the professional account id of Instagram Login).
///
/// ```
/// let mock = igdisplay_mock::MockServer::start()?;
/// let cafe = mock.users().into_iter().find(|u| u.username == "cafe_nova").unwrap();
/// assert_eq!(cafe.account_type, "BUSINESS");
/// assert_ne!(cafe.id, cafe.user_id);
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockUser {
    /// The handle.
    pub username: String,
    /// The app-scoped id (`id` of `/me`, `user_id` of the code exchange).
    pub id: String,
    /// The professional account id (`user_id` of `/me` on Instagram Login).
    pub user_id: String,
    /// `BUSINESS`, `MEDIA_CREATOR` or `PERSONAL`.
    pub account_type: String,
    /// Whether the user is an accepted tester.
    pub tester: bool,
    /// How many media items the user has.
    pub media_count: usize,
}

/// A token issued as the App Dashboard's "Generate token" would: a client imports it rather
/// than logging in.
///
/// ```
/// use igdisplay_mock::{MockServer, TokenLifetime};
///
/// let mock = MockServer::start()?;
/// let token = mock.issue_token("cafe_nova", TokenLifetime::LongLived)?;
/// assert!(!token.access_token.is_empty());
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The token, in the platform's style (`IGAA...` or `IGQVJ...`).
    pub access_token: String,
    /// The user's app-scoped id, as a string (the id `/me` answers).
    pub user_id: String,
    /// Seconds of validity from now on the mock's clock: 3,600 or 5,184,000.
    pub expires_in: i64,
}

/// A handle on a mock's clock that outlives borrows of the server: for clients that should
/// follow the mock's time (see `igdisplay::follow_mock_clock`). Clones share the clock.
///
/// ```
/// use std::time::Duration;
///
/// let mock = igdisplay_mock::MockServer::start()?;
/// let time = mock.time();
/// let start = time.now();
/// time.advance(Duration::from_millis(1_500)); // whole seconds: the fraction is dropped
/// assert_eq!(mock.now(), start + 1);
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MockTime(Arc<Shared>);

impl MockTime {
    /// The mock's current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.0.world().now()
    }

    /// Moves the mock's clock forward by whole seconds (a fraction is dropped).
    pub fn advance(&self, by: Duration) {
        let seconds = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.0.world().clock.advance(seconds);
    }
}

/// A running fake Instagram. Stops when dropped.
///
/// ```
/// let mock = igdisplay_mock::MockServer::start()?;
/// let url = mock.base_url().to_owned();
/// drop(mock); // the server stops and its thread is joined
/// # let _ = url;
/// # Ok::<(), igdisplay_mock::MockError>(())
/// ```
///
/// One origin serves the authorize window (`/oauth/authorize`), the `api.instagram.com` paths
/// (`/oauth/access_token`), the `graph.instagram.com` paths (`/access_token`,
/// `/refresh_access_token`, `/me`, `/{id}`, `/{id}/media`, `/{id}/children`, with an optional
/// `/vNN.N` prefix), a CDN (`/cdn/v/...`) and the control API (`/_mock/...`).
#[derive(Debug)]
pub struct MockServer {
    /// `http(s)://127.0.0.1:PORT`.
    pub(crate) base: String,
    pub(crate) addr: SocketAddr,
    /// The test root's PEM, under `https`.
    pub(crate) root_pem: Option<String>,
    pub(crate) shared: Arc<Shared>,
    /// Tells the server's thread to stop.
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The thread the server's runtime runs on, joined when the mock is dropped.
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// A builder with the defaults: Instagram Login, the demo seed, a frozen clock, a free
    /// loopback port.
    ///
    /// ```
    /// use igdisplay_mock::{MockPlatform, MockServer};
    ///
    /// let mock = MockServer::builder().platform(MockPlatform::BasicDisplay).calls_per_hour(None).start()?;
    /// assert!(mock.base_url().starts_with("http://127.0.0.1:"));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn builder() -> MockBuilder {
        MockBuilder::default()
    }

    /// Starts a mock with the defaults. It stops when dropped.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert_eq!(mock.users().len(), 4);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`MockBuilder::start`].
    pub fn start() -> Result<Self, MockError> {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT`: every base URL of a client points here (the authorize
    /// window, the api and graph hosts, the CDN and `/_mock/`).
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert_eq!(mock.base_url(), format!("http://{}", mock.addr()));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The test root of an HTTPS mock ([`MockBuilder::https`]), PEM: trust it in the client
    /// under test (`BackendConfig::trust_root_pem` for igdisplay, `REQUESTS_CA_BUNDLE` for
    /// Python's requests, `NODE_EXTRA_CA_CERTS` for Node). `None` for an http mock.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert!(mock.root_certificate_pem().is_none());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn root_certificate_pem(&self) -> Option<&str> {
        self.root_pem.as_deref()
    }

    /// The bound address.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert!(mock.addr().ip().is_loopback());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{base}/oauth/authorize`: where a client sends the user.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert_eq!(mock.authorize_url(), format!("{}/oauth/authorize", mock.base_url()));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base)
    }

    /// The platform played.
    ///
    /// ```
    /// use igdisplay_mock::{MockPlatform, MockServer};
    ///
    /// assert_eq!(MockServer::start()?.platform(), MockPlatform::InstagramLogin);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn platform(&self) -> MockPlatform {
        self.shared.world().options.platform
    }

    /// The seeded app: what a client needs to log users in.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let app = mock.app();
    /// assert!(app.id.bytes().all(|b| b.is_ascii_digit()));
    /// assert!(app.redirect_uris.contains(&"https://app.example/auth/".to_owned()));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn app(&self) -> MockApp {
        let world = self.shared.world();
        MockApp {
            id: world.app.id.clone(),
            secret: world.app.secret.clone(),
            name: world.app.name.clone(),
            redirect_uris: world.app.redirect_uris.clone(),
        }
    }

    /// The seeded users.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let jay = mock.users().into_iter().find(|u| u.username == "jayposiris").unwrap();
    /// assert!(jay.tester);
    /// assert_eq!(jay.media_count, 40);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn users(&self) -> Vec<MockUser> {
        self.shared
            .world()
            .users
            .iter()
            .map(|u| MockUser {
                username: u.username.clone(),
                id: u.id.clone(),
                user_id: u.ig_id.clone(),
                account_type: u.account_type.clone(),
                tester: u.tester,
                media_count: u.media.len(),
            })
            .collect()
    }

    /// The mock's current time, Unix seconds: where every code, token and link is measured.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert_eq!(mock.now(), igdisplay_mock::DEFAULT_START); // frozen until moved
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn now(&self) -> i64 {
        self.shared.world().now()
    }

    /// Moves the clock forward: codes, tokens, CDN links and rate windows age at once.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let before = mock.now();
    /// mock.advance(Duration::from_secs(61 * 24 * 3600)); // every long-lived token has expired
    /// assert_eq!(mock.now(), before + 61 * 86_400);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn advance(&self, by: Duration) {
        self.time().advance(by);
    }

    /// A handle on the clock, for clients that should follow the mock's time; it outlives
    /// borrows of the server (see `igdisplay::follow_mock_clock`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let time = mock.time();
    /// time.advance(Duration::from_secs(10));
    /// assert_eq!(time.now(), mock.now());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn time(&self) -> MockTime {
        MockTime(self.shared.clone())
    }

    /// Sets the clock to `unix` seconds (kept between the epoch and [`LATEST`](crate::LATEST)).
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// mock.set_time(1_800_000_000);
    /// assert_eq!(mock.now(), 1_800_000_000);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn set_time(&self, unix: i64) {
        self.shared.world().clock.set(unix);
    }

    /// Back to the seeded state: codes, tokens, faults, stubs and the journal are cleared and
    /// the clock returns to its start.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let start = mock.now();
    /// mock.advance(Duration::from_secs(3600));
    /// mock.reset();
    /// assert_eq!((mock.now(), mock.requests_total()), (start, 0));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn reset(&self) {
        let initial = self.shared.initial_clock;
        self.shared.world().reset(initial);
    }

    /// Adds a fault: the next matching requests misbehave as it says.
    ///
    /// ```
    /// use igdisplay_mock::{Fault, FaultKind, MockServer};
    ///
    /// let mock = MockServer::start()?;
    /// // The next two media pages fail with a transient Graph error (code 2): a client that
    /// // retries sees the third attempt succeed.
    /// mock.add_fault(Fault::new("/me/media", FaultKind::GraphTransient).times(2));
    /// mock.clear_faults();
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn add_fault(&self, fault: Fault) {
        self.shared.world().faults.push(fault);
    }

    /// Removes every fault, spent or not: the mock answers normally from the next request on.
    ///
    /// ```
    /// use igdisplay_mock::{Fault, FaultKind, MockServer};
    ///
    /// let mock = MockServer::start()?;
    /// mock.add_fault(Fault::new("/", FaultKind::DropConnection));
    /// mock.clear_faults();
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn clear_faults(&self) {
        self.shared.world().faults.clear();
    }

    /// Answers a route with a canned response, before the fake's own logic.
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, Stub};
    ///
    /// let mock = MockServer::start()?;
    /// let maintenance = serde_json::json!({"error": {"message": "down", "code": 2, "is_transient": true}});
    /// mock.stub(Stub::json("GET", "/me", 503, maintenance).times(1));
    /// mock.clear_stubs();
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn stub(&self, stub: Stub) {
        self.shared.world().stubs.push(stub);
    }

    /// Removes every stub: the fake answers every route again.
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, Stub};
    ///
    /// let mock = MockServer::start()?;
    /// mock.stub(Stub::json("GET", "/me", 500, serde_json::json!({})));
    /// mock.clear_stubs();
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn clear_stubs(&self) {
        self.shared.world().stubs.clear();
    }

    /// The requests the journal holds (the most recent ones, up to its capacity), with
    /// tokens, secrets, codes and states masked.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert!(mock.journal().is_empty());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.world().journal.entries()
    }

    /// Requests answered since the start or the last reset, beyond the journal's capacity too:
    /// a cheap way to assert that a step sent nothing.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let before = mock.requests_total();
    /// // ... something that must not touch the network ...
    /// assert_eq!(mock.requests_total(), before);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn requests_total(&self) -> u64 {
        self.shared.world().journal.total()
    }

    /// How many connections the mock has accepted since it started (a reset keeps counting):
    /// a client that reuses its connections opens no more than it sends requests at once.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// assert_eq!(mock.connections_total(), 0);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn connections_total(&self) -> u64 {
        self.shared.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Empties the journal (the total count goes on): a test can ignore its arrangement's
    /// requests and assert on what its act sent.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// // ... log in, which sends the exchanges ...
    /// mock.clear_journal();
    /// // ... act ...
    /// mock.expect_requests("POST", "/oauth/access_token", 0)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear_journal(&self) {
        self.shared.world().journal.clear();
    }

    /// Checks that the journal holds exactly `times` requests `method path`.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// mock.expect_requests("GET", "/me", 0)?;
    /// let miss = mock.expect_requests("GET", "/me", 1).unwrap_err();
    /// assert!(miss.to_string().contains("GET /me"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`JournalMismatch`] whose message names the closest request seen.
    pub fn expect_requests(
        &self,
        method: &str,
        path: &str,
        times: usize,
    ) -> Result<(), Box<JournalMismatch>> {
        journal::expect(&self.journal(), method, path, times)
    }

    /// Registers another valid redirect URI (matched byte for byte, as Instagram does).
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// mock.add_redirect_uri("http://127.0.0.1:9000/callback");
    /// assert!(mock.app().redirect_uris.contains(&"http://127.0.0.1:9000/callback".to_owned()));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn add_redirect_uri(&self, uri: &str) {
        self.shared.world().add_redirect_uri(uri);
    }

    /// Sets the app's deauthorize and data-deletion callback URLs, where
    /// [`send_callback`](Self::send_callback) posts.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// mock.set_callbacks(Some("http://127.0.0.1:9000/deauthorize"), None);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn set_callbacks(&self, deauthorize: Option<&str>, data_deletion: Option<&str>) {
        let mut world = self.shared.world();
        world.app.deauthorize_callback = deauthorize.map(str::to_owned);
        world.app.data_deletion_callback = data_deletion.map(str::to_owned);
    }

    /// Sets where Meta's webhook notifications go (the App Dashboard's callback URL), or
    /// stops them (`None`). A comment added with `POST /_mock/comments` is notified there,
    /// signed, when its post's owner subscribed the app to `comments`.
    pub fn set_webhook_callback(&self, url: Option<&str>) {
        self.shared.world().webhook_callback = url.map(str::to_owned);
    }

    /// A token for `username` as the App Dashboard generates it.
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, TokenLifetime};
    ///
    /// let mock = MockServer::start()?;
    /// let token = mock.issue_token("jayposiris", TokenLifetime::LongLived)?;
    /// assert_eq!(token.expires_in, 60 * 24 * 3600);
    /// assert!(mock.issue_token("nobody", TokenLifetime::ShortLived).is_err());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownUser`] when no such user is seeded.
    pub fn issue_token(&self, username: &str, lifetime: TokenLifetime) -> Result<IssuedToken, MockError> {
        let long_lived = lifetime == TokenLifetime::LongLived;
        let unknown = || MockError::UnknownUser(username.to_owned());
        let value = self
            .shared
            .world()
            .dashboard_token(username, long_lived)
            .ok_or_else(unknown)?;
        let field = |name: &str| value[name].as_str().map(str::to_owned).ok_or_else(unknown);
        Ok(IssuedToken {
            access_token: field("access_token")?,
            user_id: field("user_id")?,
            expires_in: value["expires_in"].as_i64().ok_or_else(unknown)?,
        })
    }

    /// A dashboard token for every user whose name starts with `prefix` (a fleet from
    /// [`Seed::with_fleet`](crate::Seed::with_fleet)), in seed order, minted in one pass; `POST /_mock/tokens/bulk`
    /// `{"prefix": …, "kind": "long_lived"}` does the same over HTTP.
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, Seed, TokenLifetime};
    ///
    /// let mock = MockServer::builder().seed(Seed::demo().with_fleet("fleet-", 500, 1)).start()?;
    /// let tokens = mock.issue_tokens("fleet-", TokenLifetime::LongLived)?;
    /// assert_eq!(tokens.len(), 500);
    /// assert!(mock.refresh_counts().is_empty(), "nothing refreshed yet");
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownUser`] when no user's name starts with `prefix`.
    pub fn issue_tokens(&self, prefix: &str, lifetime: TokenLifetime) -> Result<Vec<IssuedToken>, MockError> {
        let values = self
            .shared
            .world()
            .dashboard_tokens(prefix, lifetime == TokenLifetime::LongLived);
        if values.is_empty() {
            return Err(MockError::UnknownUser(format!("{prefix}*")));
        }
        Ok(values
            .into_iter()
            .map(|value| IssuedToken {
                access_token: value["access_token"].as_str().unwrap_or_default().to_owned(),
                user_id: value["user_id"].as_str().unwrap_or_default().to_owned(),
                expires_in: value["expires_in"].as_i64().unwrap_or_default(),
            })
            .collect())
    }

    /// Publishes `post` as `username`'s newest item, dated now (mock time), as posting in the
    /// app does: the next listing shows it first. Returns its id. `POST /_mock/media` does the
    /// same.
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, SeedKind, SeedMedia};
    ///
    /// let mock = MockServer::start()?;
    /// let id = mock.publish("jayposiris", &SeedMedia::new(SeedKind::Image, Some("Fresh")))?;
    /// mock.edit_caption(&id, Some("Fresher"))?;
    /// mock.delete_media(&id)?;
    /// assert!(mock.delete_media(&id).is_err(), "gone");
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownUser`].
    pub fn publish(&self, username: &str, post: &SeedMedia) -> Result<String, MockError> {
        self.shared
            .world()
            .publish(username, post)
            .ok_or_else(|| MockError::UnknownUser(username.to_owned()))
    }

    /// Deletes the post `id` (an album with its items): listings no longer show it and its
    /// node answers as an unknown object. `DELETE /_mock/media/{id}` does the same.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownMedia`] when no post has that id.
    pub fn delete_media(&self, id: &str) -> Result<(), MockError> {
        if self.shared.world().delete_media(id) {
            Ok(())
        } else {
            Err(MockError::UnknownMedia(id.to_owned()))
        }
    }

    /// Edits the caption of the post `id` (`None` removes it). `POST /_mock/media/{id}/caption`
    /// does the same.
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownMedia`] when no post has that id.
    pub fn edit_caption(&self, id: &str, caption: Option<&str>) -> Result<(), MockError> {
        if self.shared.world().set_caption(id, caption.map(str::to_owned)) {
            Ok(())
        } else {
            Err(MockError::UnknownMedia(id.to_owned()))
        }
    }

    /// How many times each user's token was refreshed (successfully), by the user's
    /// app-scoped id, since the start or the last reset: a keeper's tests check every due
    /// account was refreshed exactly once. `GET /_mock/refreshes` gives the same.
    pub fn refresh_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.shared.world().refresh_counts()
    }

    /// Revokes every token of `username`, as a password change or removing the app in
    /// Instagram does: the next use of any of them is error 190, subcode 460. Returns how many
    /// were still valid.
    ///
    /// ```
    /// use igdisplay_mock::{MockServer, TokenLifetime};
    ///
    /// let mock = MockServer::start()?;
    /// mock.issue_token("jayposiris", TokenLifetime::LongLived)?;
    /// assert_eq!(mock.revoke_tokens("jayposiris")?, 1);
    /// assert_eq!(mock.revoke_tokens("jayposiris")?, 0);
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`MockError::UnknownUser`] when no such user is seeded.
    pub fn revoke_tokens(&self, username: &str) -> Result<usize, MockError> {
        self.shared
            .world()
            .revoke_tokens(username)
            .ok_or_else(|| MockError::UnknownUser(username.to_owned()))
    }

    /// Answers the authorize window of `authorize_url` as if `username` pressed "Continue":
    /// the redirect URL the browser would be sent to (with the code, the state and Instagram's
    /// trailing `#_`), or the window's refusal. No browser and no HTTP request is involved, so
    /// it works from `#[test]` and `#[tokio::test]` alike and leaves the journal untouched.
    ///
    /// ```
    /// use igdisplay_mock::{MockError, MockServer};
    ///
    /// let mock = MockServer::start()?;
    /// let app = mock.app();
    /// let url = format!(
    ///     "{}?client_id={}&redirect_uri={}&scope=instagram_business_basic&response_type=code&state=S",
    ///     mock.authorize_url(), app.id, "https%3A%2F%2Fapp.example%2Fauth%2F",
    /// );
    /// let redirect = mock.approve(&url, "jayposiris")?;
    /// assert!(redirect.starts_with("https://app.example/auth/?code="));
    /// assert!(redirect.ends_with("&state=S#_"));
    /// // A personal account cannot use Instagram Login: the window says so.
    /// assert!(matches!(mock.approve(&url, "sam_personal"), Err(MockError::Refused { .. })));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`MockError::NotAnAuthorizeUrl`] for a URL without a query; [`MockError::Refused`] with
    /// the window's message for a request Instagram would refuse.
    pub fn approve(&self, authorize_url: &str, username: &str) -> Result<String, MockError> {
        self.decide(authorize_url, routes::Choice::Approve(username))
    }

    /// Answers the authorize window of `authorize_url` as if the user pressed "Cancel": the
    /// redirect URL with `error=access_denied`, or the window's refusal.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let url = format!(
    ///     "{}?client_id={}&redirect_uri=https%3A%2F%2Fapp.example%2Fauth%2F&scope=instagram_business_basic&response_type=code&state=S",
    ///     mock.authorize_url(), mock.app().id,
    /// );
    /// let redirect = mock.deny(&url)?;
    /// assert!(redirect.starts_with("https://app.example/auth/?error=access_denied&"));
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`approve`](Self::approve).
    pub fn deny(&self, authorize_url: &str) -> Result<String, MockError> {
        self.decide(authorize_url, routes::Choice::Deny)
    }

    fn decide(&self, authorize_url: &str, choice: routes::Choice<'_>) -> Result<String, MockError> {
        let (_, query) = authorize_url
            .split_once('?')
            .ok_or(MockError::NotAnAuthorizeUrl)?;
        let query = query.split_once('#').map_or(query, |(query, _)| query);
        let pairs = wire::parse_query(query);
        self.shared
            .world()
            .decide_window(&pairs, choice)
            .map_err(|message| MockError::Refused { message })
    }

    /// A correctly signed `signed_request` for `username`, as Meta posts to callbacks: the
    /// base64url signature, a dot, the base64url payload.
    ///
    /// ```
    /// let mock = igdisplay_mock::MockServer::start()?;
    /// let signed = mock.signed_request("jayposiris").unwrap();
    /// assert_eq!(signed.split('.').count(), 2);
    /// assert!(mock.signed_request("nobody").is_none());
    /// # Ok::<(), igdisplay_mock::MockError>(())
    /// ```
    pub fn signed_request(&self, username: &str) -> Option<String> {
        self.shared.world().signed_request(username)
    }

    /// Posts a signed `kind` request for `username` to the registered callback, as Meta
    /// does, and returns the callback's status and body.
    ///
    /// ```
    /// use igdisplay_mock::{CallbackKind, MockError, MockServer};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), MockError> {
    /// let mock = MockServer::start()?;
    /// // No callback URL is registered yet: set one with `set_callbacks` first.
    /// let error = mock.send_callback("jayposiris", CallbackKind::DataDeletion).await.unwrap_err();
    /// assert!(matches!(error, MockError::NoCallbackUrl(CallbackKind::DataDeletion)));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`MockError::NoCallbackUrl`], [`MockError::UnknownUser`], or [`MockError::Delivery`]
    /// when the request fails.
    pub async fn send_callback(
        &self,
        username: &str,
        kind: CallbackKind,
    ) -> Result<(u16, String), MockError> {
        let (url, value) = {
            let world = self.shared.world();
            let url = match kind {
                CallbackKind::DataDeletion => world.app.data_deletion_callback.clone(),
                CallbackKind::Deauthorize => world.app.deauthorize_callback.clone(),
            };
            (url, world.signed_request(username))
        };
        let url = url.ok_or(MockError::NoCallbackUrl(kind))?;
        let value = value.ok_or_else(|| MockError::UnknownUser(username.to_owned()))?;
        let form = format!("signed_request={}", wire::encode(&value));
        self.shared
            .deliver(&url, form)
            .await
            .map_err(|reason| MockError::Delivery { reason })
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

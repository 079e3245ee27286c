#![doc = include_str!("../README.md")]

mod clock;
mod faults;
mod journal;
mod rng;
mod routes;
mod seed;
mod server;
mod state;
mod wire;

pub mod cli;

pub use clock::{DEFAULT_START, MockClock};
pub use faults::{Fault, FaultKind, Stub};
pub use journal::{JournalEntry, JournalMismatch};
pub use seed::{Generated, MockPlatform, Seed, SeedApp, SeedKind, SeedMedia, SeedUser};
pub use state::{MockOptions, TokenShape};

use server::Shared;
use state::World;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Starting the mock failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// The address could not be bound.
    #[error("could not listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The mock's runtime could not start.
    #[error("could not start the mock's runtime")]
    Runtime(#[source] std::io::Error),
    /// A seed file could not be read or parsed.
    #[error("could not load the seed file: {0}")]
    Seed(String),
    /// Delivering a callback failed.
    #[error("the callback could not be delivered: {0}")]
    Callback(String),
}

/// Configures a mock before it starts; see [`MockServer::builder`].
#[derive(Clone, Debug)]
#[must_use = "call .start() to run the mock"]
pub struct MockBuilder {
    seed: Seed,
    options: MockOptions,
    clock: MockClock,
    addr: SocketAddr,
    workers: usize,
}

impl MockBuilder {
    /// The platform to play (Instagram Login by default).
    pub fn platform(mut self, platform: MockPlatform) -> Self {
        self.options.platform = platform;
        self
    }

    /// The seed data ([`Seed::demo`] by default).
    pub fn seed(mut self, seed: Seed) -> Self {
        self.seed = seed;
        self
    }

    /// The clock (frozen at [`DEFAULT_START`] by default).
    pub fn clock(mut self, clock: MockClock) -> Self {
        self.clock = clock;
        self
    }

    /// The address (`127.0.0.1:0` by default: a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Graph calls per user per rolling hour (`None`: unlimited). Default 200.
    pub fn calls_per_hour(mut self, limit: Option<u32>) -> Self {
        self.options.calls_per_hour = limit;
        self
    }

    /// The Instagram Login code-exchange response shape.
    pub fn token_shape(mut self, shape: TokenShape) -> Self {
        self.options.token_shape = shape;
        self
    }

    /// How many requests the journal keeps (default 1,000).
    pub fn journal_capacity(mut self, capacity: usize) -> Self {
        self.options.journal_capacity = capacity;
        self
    }

    /// Worker threads of the mock's runtime (default 2).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Every option at once.
    pub fn options(mut self, options: MockOptions) -> Self {
        self.options = options;
        self
    }

    /// Binds, starts the mock on its own runtime thread, and returns once it accepts
    /// connections. Works from plain `#[test]`s and from inside any async runtime.
    ///
    /// # Errors
    ///
    /// [`MockError::Bind`] or [`MockError::Runtime`].
    pub fn start(self) -> Result<MockServer, MockError> {
        let listener = std::net::TcpListener::bind(self.addr).map_err(|source| MockError::Bind {
            addr: self.addr,
            source,
        })?;
        let addr = listener.local_addr().map_err(MockError::Runtime)?;
        listener.set_nonblocking(true).map_err(MockError::Runtime)?;
        let base = format!("http://{addr}");
        let world = World::new(self.seed, self.options, self.clock, base.clone());
        let shared = Arc::new(Shared::new(world, self.clock));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(self.workers)
            .thread_name("igdisplay-mock")
            .enable_all()
            .build()
            .map_err(MockError::Runtime)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(MockError::Runtime)?
        };
        let thread = std::thread::Builder::new()
            .name("igdisplay-mock".to_owned())
            .spawn(move || {
                runtime.block_on(server::serve(listener, serving, stopped));
                runtime.shutdown_timeout(Duration::from_millis(200));
            })
            .map_err(MockError::Runtime)?;
        Ok(MockServer {
            base,
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The seeded app, as a client needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MockApp {
    /// The Instagram App ID.
    pub id: String,
    /// The Instagram App Secret.
    pub secret: String,
    /// The name shown in the authorize window.
    pub name: String,
    /// The registered redirect URIs.
    pub redirect_uris: Vec<String>,
}

/// A seeded user.
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

/// A token issued as the App Dashboard's "Generate token" would.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The token.
    pub access_token: String,
    /// The user's app-scoped id.
    pub user_id: String,
    /// Seconds of validity.
    pub expires_in: i64,
}

/// A handle on a mock's clock that outlives borrows of the server: for clients that should
/// follow the mock's time (see `igdisplay::follow_mock_clock`).
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
/// One origin serves the authorize window (`/oauth/authorize`), the `api.instagram.com` paths
/// (`/oauth/access_token`), the `graph.instagram.com` paths (`/access_token`,
/// `/refresh_access_token`, `/me`, `/{id}`, `/{id}/media`, `/{id}/children`, with an optional
/// `/vNN.N` prefix), a CDN (`/cdn/v/...`) and the control API (`/_mock/...`).
#[derive(Debug)]
pub struct MockServer {
    base: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockServer {
    /// A builder with the defaults: Instagram Login, the demo seed, a frozen clock, a free
    /// loopback port.
    pub fn builder() -> MockBuilder {
        MockBuilder {
            seed: Seed::demo(),
            options: MockOptions::default(),
            clock: MockClock::default(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            workers: 2,
        }
    }

    /// Starts a mock with the defaults.
    ///
    /// # Errors
    ///
    /// As [`MockBuilder::start`].
    pub fn start() -> Result<Self, MockError> {
        Self::builder().start()
    }

    /// `http://127.0.0.1:PORT`: every base URL of a client points here.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `{base}/oauth/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.base)
    }

    /// The platform played.
    pub fn platform(&self) -> MockPlatform {
        self.shared.world().options.platform
    }

    /// The seeded app.
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

    /// The mock's current time, Unix seconds.
    pub fn now(&self) -> i64 {
        self.shared.world().now()
    }

    /// Moves the clock forward: codes, tokens, CDN links and rate windows age at once.
    pub fn advance(&self, by: Duration) {
        self.time().advance(by);
    }

    /// A handle on the clock, for clients that should follow the mock's time.
    pub fn time(&self) -> MockTime {
        MockTime(self.shared.clone())
    }

    /// Sets the clock to `unix` seconds.
    pub fn set_time(&self, unix: i64) {
        self.shared.world().clock.set(unix);
    }

    /// Back to the seeded state: codes, tokens, faults, stubs and the journal are cleared and
    /// the clock returns to its start.
    pub fn reset(&self) {
        let initial = self.shared.initial_clock;
        self.shared.world().reset(initial);
    }

    /// Adds a fault.
    pub fn add_fault(&self, fault: Fault) {
        self.shared.world().faults.push(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.world().faults.clear();
    }

    /// Answers a route with a canned response, before the fake's own logic.
    pub fn stub(&self, stub: Stub) {
        self.shared.world().stubs.push(stub);
    }

    /// Removes every stub.
    pub fn clear_stubs(&self) {
        self.shared.world().stubs.clear();
    }

    /// The requests the journal holds (the most recent ones, up to its capacity).
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.shared.world().journal.entries()
    }

    /// Requests answered since the start or the last reset, beyond the journal's capacity too.
    pub fn requests_total(&self) -> u64 {
        self.shared.world().journal.total()
    }

    /// Empties the journal.
    pub fn clear_journal(&self) {
        self.shared.world().journal.clear();
    }

    /// Checks that the journal holds exactly `times` requests `method path`.
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

    /// Registers another valid redirect URI (matched byte for byte).
    pub fn add_redirect_uri(&self, uri: &str) {
        self.shared.world().add_redirect_uri(uri);
    }

    /// Sets the app's deauthorize and data-deletion callback URLs.
    pub fn set_callbacks(&self, deauthorize: Option<&str>, data_deletion: Option<&str>) {
        let mut world = self.shared.world();
        world.app.deauthorize_callback = deauthorize.map(str::to_owned);
        world.app.data_deletion_callback = data_deletion.map(str::to_owned);
    }

    /// A token for `username` as the App Dashboard generates it: long-lived, or short-lived.
    pub fn issue_token(&self, username: &str, long_lived: bool) -> Option<IssuedToken> {
        let value = self.shared.world().dashboard_token(username, long_lived)?;
        Some(IssuedToken {
            access_token: value["access_token"].as_str()?.to_owned(),
            user_id: value["user_id"].as_str()?.to_owned(),
            expires_in: value["expires_in"].as_i64()?,
        })
    }

    /// A correctly signed `signed_request` for `username`, as Meta posts to callbacks.
    pub fn signed_request(&self, username: &str) -> Option<String> {
        self.shared.world().signed_request(username)
    }

    /// Posts a signed deauthorize (or, with `data_deletion`, data-deletion) request for
    /// `username` to the registered callback, and returns its status and body.
    ///
    /// # Errors
    ///
    /// [`MockError::Callback`] when no URL is registered, the user is unknown or the request fails.
    pub async fn send_callback(
        &self,
        username: &str,
        data_deletion: bool,
    ) -> Result<(u16, String), MockError> {
        let (url, value) = {
            let world = self.shared.world();
            let url = if data_deletion {
                world.app.data_deletion_callback.clone()
            } else {
                world.app.deauthorize_callback.clone()
            };
            (url, world.signed_request(username))
        };
        let url = url.ok_or_else(|| MockError::Callback("no callback URL is registered".to_owned()))?;
        let value = value.ok_or_else(|| MockError::Callback(format!("no user named {username}")))?;
        let form = format!("signed_request={}", wire::encode(&value));
        self.shared.deliver(&url, form).await.map_err(MockError::Callback)
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

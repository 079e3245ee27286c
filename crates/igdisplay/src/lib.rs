#![doc = include_str!("../README.md")]

use igdisplay_auth::{
    AppConfig, AuthClient, AuthorizeBuilder, ConfigError, Endpoints, LoginError, MemoryStore,
    PendingAuthorization, RefreshSchedule, ResponseObserver, TokenError, TokenManager, TokenRecord,
    TokenStore,
};
use igdisplay_graph::{
    GraphClient, GraphEndpoint, GraphPolicy, LoginRequired, Pacer, TokenSource, TokenUnavailable,
};
use igdisplay_http::{
    BackendConfig, Jitter, RetryBudget, SharedBackend, SharedClock, SystemClock, Timeout, TransportError,
};
use igdisplay_model::{AccessToken, AppSecret, Platform, UserId};
use std::sync::Arc;

pub mod model {
    //! Wire models: users, media, paging, ids, enums, error bodies, usage headers and the
    //! secret newtypes. The crate [`igdisplay-model`](https://docs.rs/igdisplay-model),
    //! re-exported whole.
    #[doc(inline)]
    pub use igdisplay_model::*;
}

pub mod http {
    //! The transport seam: the [`HttpBackend`] trait, the reqwest and hyper backends, the
    //! [`Clock`], the one retry classifier and policy, timeouts and redaction. The crate
    //! [`igdisplay-http`](https://docs.rs/igdisplay-http), re-exported whole.
    #[doc(inline)]
    pub use igdisplay_http::*;
}

pub mod auth {
    //! The login: authorize URL and state, the callback, the code and token exchanges, the
    //! [`TokenManager`] and its stores, `signed_request`. The crate
    //! [`igdisplay-auth`](https://docs.rs/igdisplay-auth), re-exported whole.
    #[doc(inline)]
    pub use igdisplay_auth::*;
}

pub mod graph {
    //! The Graph queries: the user, media, album children, paging streams, retries and rate
    //! limits, and their typed [`Error`]. The crate
    //! [`igdisplay-graph`](https://docs.rs/igdisplay-graph), re-exported whole.
    #[doc(inline)]
    pub use igdisplay_graph::*;
}

pub mod mock {
    //! The bundled, stateful fake Instagram for tests and demos: `MockServer`, its seeds,
    //! faults and stubs. The crate [`igdisplay-mock`](https://docs.rs/igdisplay-mock),
    //! re-exported whole when the `mock` feature is on (this module is empty without it).
    #[cfg(feature = "mock")]
    #[doc(inline)]
    pub use igdisplay_mock::*;
}

pub mod store {
    //! Tokens that stay alive for a fleet: the SQL stores (SQLite, PostgreSQL) with tokens
    //! sealed at rest, the [`Keeper`] shared by many instances, account states and lifecycle
    //! events. The crate [`igdisplay-store`](https://docs.rs/igdisplay-store), re-exported
    //! whole when the `store` feature is on (this module is empty without it).
    #[cfg(feature = "store")]
    #[doc(inline)]
    pub use igdisplay_store::*;
}

/// Building an [`Instagram`] client failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The app configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP backend could not be built.
    #[error("the HTTP backend could not be built")]
    Backend(#[source] TransportError),
    /// No backend feature is enabled and no backend was given.
    #[error("no HTTP backend: enable the `reqwest` or `hyper` feature, or pass one with .backend()")]
    NoBackend,
}

/// A backend the user brought, and whether it times out by itself.
#[derive(Debug)]
enum OwnBackend {
    NeedsTimeout(SharedBackend),
    TimesOut(SharedBackend),
}

/// Configures an [`Instagram`] client; from [`Instagram::builder`].
#[derive(Debug)]
#[must_use = "call .build() to get the client"]
pub struct InstagramBuilder {
    platform: Platform,
    app: Option<(String, AppSecret, String)>,
    backend: Option<OwnBackend>,
    backend_config: BackendConfig,
    endpoints: Option<Endpoints>,
    graph_version: Option<String>,
    store: Option<Arc<dyn TokenStore>>,
    clock: SharedClock,
    schedule: RefreshSchedule,
    graph: GraphPolicy,
}

impl InstagramBuilder {
    /// Uses your own HTTP backend instead of the feature's default. It is wrapped in an
    /// [`igdisplay_http::Timeout`] on the builder's clock, after
    /// [`BackendConfig::request_timeout`] (set it with [`backend_config`](Self::backend_config));
    /// igdisplay's own backends time out by themselves.
    pub fn backend(mut self, backend: SharedBackend) -> Self {
        self.backend = Some(OwnBackend::NeedsTimeout(backend));
        self
    }

    /// Uses your own HTTP backend as it is, with no timeout wrapper: for a backend that times
    /// out by itself, as igdisplay's `ReqwestBackend` and `HyperBackend` do.
    pub fn backend_with_own_timeout(mut self, backend: SharedBackend) -> Self {
        self.backend = Some(OwnBackend::TimesOut(backend));
        self
    }

    /// Timeouts and body cap of the default backend; for a backend of your own, its
    /// `request_timeout` is the limit of the wrapper.
    pub fn backend_config(mut self, config: BackendConfig) -> Self {
        self.backend_config = config;
        self
    }

    /// Replaces the endpoints (authorize window, api and graph bases).
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    /// Points every base URL at a mock (e.g. `igdisplay_mock::MockServer::base_url()`).
    pub fn mock(self, base_url: &str) -> Self {
        self.endpoints(Endpoints::single_origin(base_url))
    }

    /// A Graph API version segment, e.g. `v21.0`.
    pub fn graph_version(mut self, version: impl Into<String>) -> Self {
        self.graph_version = Some(version.into());
        self
    }

    /// Where tokens are kept (in memory by default; see `igdisplay::auth::FileStore`).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock for every expiry and backoff (the system clock by default).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// When tokens are refreshed (default: day 20 of 60, the failure backoff, the last
    /// chance an hour before expiry): the one rule of the token manager and, through
    /// [`Instagram::fleet`], of the keeper.
    pub fn refresh_schedule(mut self, schedule: RefreshSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// How Graph queries are retried and paced. Where they go follows from the platform,
    /// the endpoints and [`graph_version`](Self::graph_version).
    pub fn graph_policy(mut self, policy: GraphPolicy) -> Self {
        self.graph = policy;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an invalid configuration or an unbuildable backend.
    pub fn build(self) -> Result<Instagram, BuildError> {
        let endpoints = self
            .endpoints
            .unwrap_or_else(|| Endpoints::production(self.platform));
        let config = match self.app {
            Some((id, secret, redirect)) => AppConfig::new(self.platform, id, secret, redirect)?,
            None => AppConfig::read_only(self.platform),
        }
        .with_endpoints(endpoints)?;
        // igdisplay's own backends time out by themselves; one of yours gets the wrapper.
        let backend: SharedBackend = match self.backend {
            Some(OwnBackend::NeedsTimeout(backend)) => Arc::new(Timeout::new(
                backend,
                self.backend_config.request_timeout,
                self.clock.clone(),
            )),
            Some(OwnBackend::TimesOut(backend)) => backend,
            None => default_backend(self.backend_config)?,
        };
        let mut endpoint = GraphEndpoint::new(self.platform).base_url(config.endpoints.graph_base.clone());
        if let Some(version) = self.graph_version {
            endpoint = endpoint.version(version);
        }
        let jitter = Arc::new(self.graph.jitter_seed.map_or_else(Jitter::random, Jitter::seeded));
        // One retry budget and one pacer for the app: its token requests (the keeper's
        // included) and every user's queries. The token requests' usage headers reach the
        // pacer too.
        let retry_budget = Arc::new(RetryBudget::default());
        let pacer = Arc::new(Pacer::new(self.graph.rate_limit));
        let observed = pacer.clone();
        let mut auth = AuthClient::new(config, backend.clone())
            .with_clock(self.clock.clone())
            .with_retry_budget(retry_budget.clone())
            .with_response_observer(ResponseObserver::new(move |headers| {
                let usage = igdisplay_graph::reported_usage(headers);
                if !usage.is_empty() {
                    observed.observe(None, usage);
                }
            }));
        if let Some(seed) = self.graph.jitter_seed {
            // One seed makes every backoff of the client reproducible, token requests included.
            auth = auth.with_jitter_seed(seed);
        }
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let tokens = TokenManager::with_schedule(auth.clone(), store, self.schedule);
        Ok(Instagram {
            auth,
            tokens,
            endpoint,
            pacer,
            jitter,
            retry_budget,
            policy: self.graph,
            backend,
            clock: self.clock,
        })
    }
}

#[cfg(any(feature = "reqwest", feature = "hyper"))]
fn default_backend(config: BackendConfig) -> Result<SharedBackend, BuildError> {
    igdisplay_http::default_backend(config).map_err(BuildError::Backend)
}

#[cfg(not(any(feature = "reqwest", feature = "hyper")))]
fn default_backend(_config: BackendConfig) -> Result<SharedBackend, BuildError> {
    Err(BuildError::NoBackend)
}

/// One client for the whole job: the authorization flow, self-refreshing tokens, and Graph
/// queries. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Instagram {
    auth: AuthClient,
    tokens: TokenManager,
    endpoint: GraphEndpoint,
    policy: GraphPolicy,
    pacer: Arc<Pacer>,
    jitter: Arc<Jitter>,
    retry_budget: Arc<RetryBudget>,
    backend: SharedBackend,
    clock: SharedClock,
}

impl Instagram {
    /// A builder for an app of `platform` with its Instagram App ID and Secret and the exact
    /// redirect URI registered for it: everything, logins included.
    ///
    /// ```
    /// use igdisplay::{Instagram, model::{AppSecret, Platform}};
    ///
    /// // The secret from the environment or a secret store, never from source code.
    /// let secret = std::env::var("IGDISPLAY_APP_SECRET").unwrap_or_else(|_| "example-secret".into());
    /// let instagram = Instagram::builder(
    ///     Platform::InstagramLogin,
    ///     "684477648739411",
    ///     AppSecret::new(secret),
    ///     "https://app.example/auth/",
    /// )
    /// .build()?;
    /// let authorization = instagram.authorize().build()?;
    /// assert!(authorization.url.starts_with("https://www.instagram.com/oauth/authorize?"));
    /// // Keep `authorization.pending` in the user's session; send them to `authorization.url`.
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(
        platform: Platform,
        app_id: impl Into<String>,
        app_secret: AppSecret,
        redirect_uri: impl Into<String>,
    ) -> InstagramBuilder {
        Self::builder_for(platform, Some((app_id.into(), app_secret, redirect_uri.into())))
    }

    /// A builder for stored or dashboard tokens only: no app id, secret or redirect URI.
    /// Queries and token refresh work; [`authorize`](Self::authorize) and
    /// [`complete_login`](Self::complete_login) fail with a typed error
    /// (`AuthorizeError::NoAppCredentials`, `TokenError::NoAppCredentials`).
    ///
    /// ```
    /// use igdisplay::{Instagram, model::Platform};
    ///
    /// let instagram = Instagram::read_only(Platform::InstagramLogin).build()?;
    /// assert!(instagram.authorize().build().is_err());
    /// # Ok::<(), igdisplay::BuildError>(())
    /// ```
    pub fn read_only(platform: Platform) -> InstagramBuilder {
        Self::builder_for(platform, None)
    }

    fn builder_for(platform: Platform, app: Option<(String, AppSecret, String)>) -> InstagramBuilder {
        InstagramBuilder {
            platform,
            app,
            backend: None,
            backend_config: BackendConfig::default(),
            endpoints: None,
            graph_version: None,
            store: None,
            clock: Arc::new(SystemClock),
            schedule: RefreshSchedule::default(),
            graph: GraphPolicy::default(),
        }
    }

    /// The platform.
    pub fn platform(&self) -> Platform {
        self.auth.config().platform
    }

    /// The token-request client (authorize URLs, exchanges, refresh).
    pub fn auth(&self) -> &AuthClient {
        &self.auth
    }

    /// The token manager (stored tokens, refreshed when due).
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// The HTTP backend in use.
    pub fn backend(&self) -> &SharedBackend {
        &self.backend
    }

    /// The clock in use.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Starts an authorization: `.build()` gives the URL and the pending state to keep.
    pub fn authorize(&self) -> AuthorizeBuilder {
        self.auth.authorize()
    }

    /// Verifies the redirect against `pending`, exchanges the code, upgrades the token to
    /// long-lived and stores it. `redirect` is the full URL Instagram sent the browser to (its
    /// trailing `#_` and surrounding whitespace are fine). The crate's front page shows it in a
    /// server, with the mock standing in for Instagram.
    ///
    /// # Errors
    ///
    /// [`LoginError`]: the callback was refused (nothing sent) or a token request failed.
    pub async fn complete_login(
        &self,
        pending: PendingAuthorization,
        redirect: &str,
    ) -> Result<TokenRecord, LoginError> {
        self.tokens.complete_login(pending, redirect).await
    }

    /// [`complete_login`](Self::complete_login) without storing the token, for an app that
    /// decides whose token it keeps before anything is written
    /// ([`TokenManager::exchange_login`]); keep it with [`TokenManager::import`].
    ///
    /// # Errors
    ///
    /// As [`complete_login`](Self::complete_login).
    pub async fn exchange_login(
        &self,
        pending: PendingAuthorization,
        redirect: &str,
    ) -> Result<TokenRecord, LoginError> {
        self.tokens.exchange_login(pending, redirect).await
    }

    /// The rate-limit state every Graph client of this app shares: an app-level throttle
    /// pauses every user's queries, a user-level one that user's.
    pub fn pacer(&self) -> &Arc<Pacer> {
        &self.pacer
    }

    /// Graph queries as `user`, whose stored token is refreshed when due before each request.
    /// Cheap: call it per request. Every client shares this app's [`pacer`](Self::pacer).
    ///
    /// ```
    /// # #[cfg(feature = "mock")] {
    /// # use igdisplay::{Instagram, mock::{MockServer, TokenLifetime}, auth::TokenKind, model::{AccessToken, Platform, UserId}};
    /// # use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let mock = MockServer::start()?;
    /// # let issued = mock.issue_token("jayposiris", TokenLifetime::LongLived)?;
    /// let instagram = Instagram::read_only(Platform::InstagramLogin)
    /// #   .mock(mock.base_url()).clock(igdisplay::follow_mock_clock(&mock))
    ///     .build()?;
    /// # let record = igdisplay::auth::TokenRecord::new(UserId::new(issued.user_id.clone()), AccessToken::new(issued.access_token),
    /// #     TokenKind::LongLived, Platform::InstagramLogin, instagram.clock().now(), Duration::from_secs(60 * 86_400));
    /// # instagram.tokens().import(record).await?;
    /// let user = UserId::new(issued.user_id); // whoever logged in
    /// let me = instagram.graph(&user).me().send().await?;
    /// assert_eq!(me.username.as_deref(), Some("jayposiris"));
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn graph(&self, user: &UserId) -> GraphClient {
        let source = ManagedToken {
            tokens: self.tokens.clone(),
            user: user.clone(),
        };
        self.graph_client(Arc::new(source)).user(user.clone()).build()
    }

    /// The keeper of a fleet of accounts in `store`, built on this client's token requests,
    /// rate-limit state, retry budget, clock and HTTP backend (one budget for the app, however
    /// its work is split), refreshing by this client's schedule. The one way to build a fleet:
    /// pass the same store to [`InstagramBuilder::store`], so logins land where the keeper
    /// keeps them. The keeper waits on this client's clock; a client following a mock
    /// (a clock like `follow_mock_clock`'s, whose sleeps move the mock) gives the keeper a clock
    /// of real time with `.clock(..)` when it runs beside anything else, or its idle waits
    /// race the mock's time forward.
    ///
    /// ```
    /// # #[cfg(feature = "mock")] {
    /// use igdisplay::{Instagram, model::Platform, store::{Key, KeyRing, SqlStore}};
    /// use std::sync::Arc;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let mock = igdisplay::mock::MockServer::start()?;
    /// let dir = tempfile::tempdir()?;
    /// let store = SqlStore::sqlite(&dir.path().join("accounts.db"), KeyRing::new(Key::generate("k1")?)).await?;
    /// let instagram = Instagram::read_only(Platform::InstagramLogin)
    /// #   .mock(mock.base_url())
    ///     .store(Arc::new(store.clone()))
    ///     .build()?;
    /// let keeper = instagram.fleet(store).build();
    /// let cycle = keeper.run_once().await?;   // in a service: keeper.run(shutdown_signal).await
    /// assert_eq!(cycle.refreshed, 0, "no account yet");
    /// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "store")]
    pub fn fleet(&self, store: igdisplay_store::SqlStore) -> igdisplay_store::KeeperBuilder {
        let store = store.with_schedule(*self.tokens.schedule());
        igdisplay_store::Keeper::builder(store, self.auth.clone())
            .pacer(self.pacer.clone())
            .clock(self.clock.clone())
    }

    /// Graph queries with a token you hold yourself. Its throttles count as the app's.
    pub fn graph_with_token(&self, token: AccessToken) -> GraphClient {
        self.graph_client(Arc::new(igdisplay_graph::StaticToken::new(token)))
            .build()
    }

    fn graph_client(&self, token: Arc<dyn TokenSource>) -> igdisplay_graph::GraphClientBuilder {
        GraphClient::builder(self.backend.clone(), self.endpoint.clone(), token)
            .clock(self.clock.clone())
            .policy(self.policy)
            .pacer(self.pacer.clone())
            .jitter(self.jitter.clone())
            .retry_budget(self.retry_budget.clone())
    }
}

/// The mock's name for `platform`, for `MockServer::builder().platform(..)`.
///
/// The mock shares no code with the client (it is the oracle of the tests), so it cannot
/// implement `From<Platform>` itself; this is that conversion, in the one crate that knows both.
///
/// ```
/// use igdisplay::{mock::MockPlatform, mock_platform, model::Platform};
///
/// assert_eq!(mock_platform(Platform::BasicDisplay), MockPlatform::BasicDisplay);
/// assert_eq!(mock_platform(Platform::InstagramLogin), MockPlatform::InstagramLogin);
/// ```
#[cfg(feature = "mock")]
pub fn mock_platform(platform: Platform) -> igdisplay_mock::MockPlatform {
    match platform {
        Platform::BasicDisplay => igdisplay_mock::MockPlatform::BasicDisplay,
        _ => igdisplay_mock::MockPlatform::InstagramLogin,
    }
}

/// A clock that follows `mock`'s time: `now()` is the mock's, and `sleep` advances the mock
/// instead of waiting (backoff and rate-limit pauses take no real time, and the mock ages with
/// them). Pass it to [`InstagramBuilder::clock`] so the client's expiry logic and the mock agree.
#[cfg(feature = "mock")]
pub fn follow_mock_clock(mock: &igdisplay_mock::MockServer) -> SharedClock {
    Arc::new(FollowMock(mock.time()))
}

#[cfg(feature = "mock")]
#[derive(Debug)]
struct FollowMock(igdisplay_mock::MockTime);

#[cfg(feature = "mock")]
#[async_trait::async_trait]
impl igdisplay_http::Clock for FollowMock {
    fn now(&self) -> std::time::SystemTime {
        let seconds = u64::try_from(self.0.now()).unwrap_or_default();
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds)
    }

    async fn sleep(&self, duration: std::time::Duration) {
        self.0.advance(duration);
    }

    /// A stalled mock is stalled in real time: its own clock is frozen between steps.
    async fn timer(&self, duration: std::time::Duration) {
        igdisplay_http::SystemClock.timer(duration).await;
    }
}

/// The token manager as the Graph client's token source.
#[derive(Debug)]
struct ManagedToken {
    tokens: TokenManager,
    user: UserId,
}

#[async_trait::async_trait]
impl TokenSource for ManagedToken {
    async fn access_token(&self) -> Result<AccessToken, TokenUnavailable> {
        self.tokens
            .access_token(&self.user)
            .await
            .map_err(|error| match error {
                TokenError::Expired { expired_at } => LoginRequired::Expired { expired_at }.into(),
                TokenError::NoToken(_) => LoginRequired::NoToken.into(),
                TokenError::IssuedElsewhere { issued_by, target } => {
                    LoginRequired::IssuedElsewhere { issued_by, target }.into()
                }
                error if error.requires_reauthorization() => LoginRequired::Revoked.into(),
                error => TokenUnavailable::Failed(Box::new(error)),
            })
    }
}

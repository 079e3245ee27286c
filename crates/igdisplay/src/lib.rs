#![doc = include_str!("../README.md")]

use igdisplay_auth::{
    AppConfig, AuthClient, AuthorizeBuilder, ConfigError, Endpoints, LoginError, MemoryStore,
    PendingAuthorization, RefreshPolicy, TokenManager, TokenRecord, TokenStore,
};
use igdisplay_graph::{GraphClient, GraphConfig, TokenSource};
use igdisplay_http::{BackendConfig, BoxError, SharedBackend, SharedClock, SystemClock, TransportError};
use igdisplay_model::{AccessToken, AppSecret, Platform, UserId};
use std::sync::Arc;

pub use igdisplay_auth as auth;
pub use igdisplay_graph as graph;
pub use igdisplay_http as http;
#[cfg(feature = "mock")]
pub use igdisplay_mock as mock;
pub use igdisplay_model as model;

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

/// Configures an [`Instagram`] client; from [`Instagram::builder`].
#[derive(Debug)]
#[must_use = "call .build() to get the client"]
pub struct InstagramBuilder {
    platform: Platform,
    app_id: String,
    app_secret: AppSecret,
    redirect_uri: String,
    backend: Option<SharedBackend>,
    backend_config: BackendConfig,
    endpoints: Option<Endpoints>,
    graph_version: Option<String>,
    store: Option<Arc<dyn TokenStore>>,
    clock: SharedClock,
    policy: RefreshPolicy,
    graph: Option<GraphConfig>,
}

impl InstagramBuilder {
    /// Uses your own HTTP backend instead of the feature's default. The Graph pipeline then
    /// times requests out itself; when the backend already does (igdisplay's `ReqwestBackend`
    /// and `HyperBackend` always do), pass `GraphConfig::backend_timeout_only()` through
    /// [`graph_config`](Self::graph_config) to save a timer per request.
    pub fn backend(mut self, backend: SharedBackend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Timeouts and body cap of the default backend.
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

    /// When tokens are refreshed.
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Graph settings (retries, rate limits, timeouts). Its base URL and version are set from
    /// the endpoints and [`graph_version`](Self::graph_version).
    pub fn graph_config(mut self, config: GraphConfig) -> Self {
        self.graph = Some(config);
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
        let config = AppConfig::new(self.platform, self.app_id, self.app_secret, self.redirect_uri)?
            .with_endpoints(endpoints)?;
        // igdisplay's own backends time out by themselves; a custom one gets the pipeline's timer.
        let (backend, timer) = match self.backend {
            Some(backend) => (backend, true),
            None => (default_backend(self.backend_config)?, false),
        };
        let mut graph = match self.graph {
            Some(graph) => graph,
            None if timer => GraphConfig::new(self.platform),
            None => GraphConfig::new(self.platform).backend_timeout_only(),
        }
        .base_url(config.endpoints.graph_base.clone());
        if let Some(version) = self.graph_version {
            graph = graph.version(version);
        }
        let auth = AuthClient::new(config, backend.clone()).with_clock(self.clock.clone());
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let tokens = TokenManager::with_policy(auth.clone(), store, self.policy);
        Ok(Instagram {
            auth,
            tokens,
            graph,
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
    graph: GraphConfig,
    backend: SharedBackend,
    clock: SharedClock,
}

impl Instagram {
    /// A builder for an app of `platform` with its Instagram App ID and Secret and the exact
    /// redirect URI registered for it.
    pub fn builder(
        platform: Platform,
        app_id: impl Into<String>,
        app_secret: AppSecret,
        redirect_uri: impl Into<String>,
    ) -> InstagramBuilder {
        InstagramBuilder {
            platform,
            app_id: app_id.into(),
            app_secret,
            redirect_uri: redirect_uri.into(),
            backend: None,
            backend_config: BackendConfig::default(),
            endpoints: None,
            graph_version: None,
            store: None,
            clock: Arc::new(SystemClock),
            policy: RefreshPolicy::default(),
            graph: None,
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
    /// long-lived and stores it.
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

    /// Graph queries as `user`, whose stored token is refreshed when due before each request.
    pub fn graph(&self, user: &UserId) -> GraphClient {
        let source = ManagedToken {
            tokens: self.tokens.clone(),
            user: user.clone(),
        };
        GraphClient::with_clock(
            self.backend.clone(),
            Arc::new(source),
            self.graph.clone(),
            self.clock.clone(),
        )
    }

    /// Graph queries with a token you hold yourself.
    pub fn graph_with_token(&self, token: AccessToken) -> GraphClient {
        GraphClient::with_clock(
            self.backend.clone(),
            Arc::new(igdisplay_graph::StaticToken::new(token)),
            self.graph.clone(),
            self.clock.clone(),
        )
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
}

/// The token manager as the Graph client's token source.
#[derive(Debug)]
struct ManagedToken {
    tokens: TokenManager,
    user: UserId,
}

#[async_trait::async_trait]
impl TokenSource for ManagedToken {
    async fn access_token(&self) -> Result<AccessToken, BoxError> {
        Ok(self.tokens.access_token(&self.user).await?)
    }
}

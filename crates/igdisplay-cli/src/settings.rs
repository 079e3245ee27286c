//! Turning flags and environment into a configured client: platform, app credentials,
//! endpoints (real, a mock, or finer overrides), the token file and the clock.

use crate::cli::{Global, TokenStoreKind};
use crate::fail::Failure;
use igdisplay::Instagram;
use igdisplay::auth::{Endpoints, FileStore, TokenStore};
use igdisplay::http::{Clock, HttpBackend, SharedClock, ShiftedClock, SystemClock, http};
use igdisplay::model::{AppSecret, Platform, UserId};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The resolved settings of one invocation.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) platform: Platform,
    pub(crate) json: bool,
    token_file: Option<PathBuf>,
    token_store: TokenStoreKind,
    user: Option<String>,
    app_id: Option<String>,
    app_secret: Option<AppSecret>,
    redirect_uri: Option<String>,
    endpoints: Endpoints,
    mock: Option<String>,
    store: Option<String>,
    store_keys_file: Option<PathBuf>,
    /// The clock, made once (with `--mock`, following the mock's).
    clock: tokio::sync::OnceCell<SharedClock>,
    /// Scopes asked for at login besides the defaults (`--scope`).
    pub(crate) scopes: Vec<String>,
}

impl Settings {
    /// Reads flags and environment. With `--mock` and `need_app`, what is not configured of
    /// the app (its id, secret and redirect URI) is taken from the running mock, which knows
    /// all three.
    pub(crate) async fn resolve(global: &Global, need_app: bool) -> Result<Self, Failure> {
        let mut settings = Self::from_flags(global)?;
        if need_app {
            settings.fill_from_mock().await;
        }
        Ok(settings)
    }

    fn from_flags(global: &Global) -> Result<Self, Failure> {
        let platform = Platform::parse(&global.platform).ok_or_else(|| {
            Failure::usage(
                format!("unknown platform `{}`", global.platform),
                "use --platform instagram-login or --platform basic-display",
            )
        })?;
        let app_secret = match &global.app_secret_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Failure::usage(
                        format!("cannot read the app secret file {}: {e}", path.display()),
                        "pass a readable file to --app-secret-file",
                    )
                })?;
                Some(AppSecret::new(text.trim()))
            }
            None => std::env::var("IGDISPLAY_APP_SECRET")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .map(|s| AppSecret::new(s.trim())),
        };
        let mut endpoints = match &global.mock {
            Some(base) => Endpoints::single_origin(base),
            None => Endpoints::production(platform),
        };
        if let Some(url) = &global.authorize_url {
            endpoints.authorize_url.clone_from(url);
        }
        if let Some(url) = &global.api_base {
            endpoints.api_base.clone_from(url);
        }
        if let Some(url) = &global.graph_base {
            endpoints.graph_base.clone_from(url);
        }
        let token_file = global.token_file.clone().or_else(|| {
            let default = default_token_file()?;
            if let Some(dir) = default.parent() {
                crate::files::tighten_own_dir(dir);
            }
            Some(default)
        });
        Ok(Self {
            platform,
            json: global.json,
            token_file,
            token_store: global.token_store,
            user: global.user.clone(),
            app_id: global.app_id.clone(),
            app_secret,
            redirect_uri: global.redirect_uri.clone(),
            endpoints,
            mock: global.mock.clone(),
            store: global.store.clone().filter(|url| !url.trim().is_empty()),
            store_keys_file: global.store_keys_file.clone(),
            clock: tokio::sync::OnceCell::new(),
            scopes: global.scopes.clone(),
        })
    }

    /// Takes the app's id, secret and redirect URI from the mock's state where none is
    /// configured, and says so on stderr. A mock that cannot be asked changes nothing.
    async fn fill_from_mock(&mut self) {
        let Some(base) = &self.mock else {
            return;
        };
        if self.app_id.is_some() && self.app_secret.is_some() && self.redirect_uri.is_some() {
            return;
        }
        let Ok(backend) = igdisplay::http::default_backend(Default::default()) else {
            return;
        };
        let Some(state) = mock_get(base, "/_mock/state", &*backend).await else {
            return;
        };
        let app = &state["app"];
        let mut taken = Vec::new();
        if self.app_id.is_none()
            && let Some(id) = app["id"].as_str()
        {
            self.app_id = Some(id.to_owned());
            taken.push("app id");
        }
        if self.app_secret.is_none()
            && let Some(secret) = app["secret"].as_str()
        {
            self.app_secret = Some(AppSecret::new(secret));
            taken.push("app secret");
        }
        if self.redirect_uri.is_none()
            && let Some(uri) = app["redirect_uris"][0].as_str()
        {
            self.redirect_uri = Some(uri.to_owned());
            taken.push("redirect URI");
        }
        if !taken.is_empty() {
            eprintln!("note: using the mock's {} ({base})", taken.join(", "));
        }
    }

    /// The host (and port) requests of `side` go to: the mock's, or Instagram's.
    pub(crate) fn host(&self, side: crate::fail::Side) -> String {
        let base = match side {
            crate::fail::Side::Graph => &self.endpoints.graph_base,
            crate::fail::Side::Api => &self.endpoints.api_base,
        };
        base.parse::<http::Uri>()
            .ok()
            .and_then(|uri| uri.authority().map(ToString::to_string))
            .unwrap_or_else(|| base.clone())
    }

    /// The running mock's base URL, with `--mock`.
    pub(crate) fn mock(&self) -> Option<&str> {
        self.mock.as_deref()
    }

    /// The app id, if configured.
    pub(crate) fn app_id(&self) -> Option<&str> {
        self.app_id.as_deref()
    }

    /// The redirect URI, if configured.
    pub(crate) fn configured_redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.as_deref()
    }

    /// The app secret, when configured.
    pub(crate) fn app_secret(&self) -> Option<AppSecret> {
        self.app_secret.clone()
    }

    /// The token file: `--token-file`, or `igdisplay/tokens.json` in the OS config directory.
    pub(crate) fn token_file(&self) -> Result<PathBuf, Failure> {
        self.token_file.clone().ok_or_else(|| {
            Failure::usage(
                "cannot find a configuration directory for the token file",
                "pass --token-file",
            )
        })
    }

    /// Where `auth url` keeps the pending authorization for `auth callback`.
    pub(crate) fn pending_file(&self) -> Result<PathBuf, Failure> {
        Ok(self.token_file()?.with_file_name("pending-authorization.json"))
    }

    /// The redirect URI (required for logins).
    pub(crate) fn redirect_uri(&self) -> Result<&str, Failure> {
        self.redirect_uri.as_deref().ok_or_else(|| {
            Failure::usage(
                "no redirect URI is configured",
                "pass --redirect-uri or set IGDISPLAY_REDIRECT_URI to the one registered for the app",
            )
        })
    }

    /// A client. With `need_app`, the app id, secret and redirect URI must be configured;
    /// otherwise (reading with a stored token) they may be absent.
    pub(crate) async fn instagram(&self, need_app: bool) -> Result<Instagram, Failure> {
        let app = if need_app {
            let missing: Vec<&str> = [
                (self.app_id.is_none(), "the app id (--app-id or IGDISPLAY_APP_ID)"),
                (
                    self.app_secret.is_none(),
                    "the app secret (IGDISPLAY_APP_SECRET or --app-secret-file; never on the command line)",
                ),
                (
                    self.redirect_uri.is_none(),
                    "the redirect URI (--redirect-uri or IGDISPLAY_REDIRECT_URI, exactly as registered)",
                ),
            ]
            .into_iter()
            .filter_map(|(absent, what)| absent.then_some(what))
            .collect();
            match (&self.app_id, &self.app_secret, &self.redirect_uri) {
                (Some(id), Some(secret), Some(redirect)) => {
                    Some((id.clone(), secret.clone(), redirect.clone()))
                }
                _ => {
                    return Err(Failure::usage(
                        format!("a login needs settings that are missing: {}", missing.join("; ")),
                        "set them (the App Dashboard > Instagram > API setup shows all three), or pass --mock URL \
                         of a running `igdisplay mock serve` to take them from the mock",
                    ));
                }
            }
        } else {
            // Reading and refreshing need only the stored token.
            None
        };
        if self.platform == Platform::BasicDisplay && self.endpoints.is_production() {
            eprintln!(
                "note: Meta switched off the Instagram Basic Display API on 2024-12-04; its hosts answer every \
                 request with an error. Use --platform instagram-login (or --mock to try the flow)."
            );
        }
        let store = self.token_store().await?;
        let builder = match app {
            Some((id, secret, redirect)) => Instagram::builder(self.platform, id, secret, redirect),
            None => Instagram::read_only(self.platform),
        };
        self.build(builder, store).await
    }

    /// A client of the app over `store` whose redirect URI is `redirect` (the feed service's
    /// callback), whatever --redirect-uri says: the feed service logs accounts in.
    pub(crate) async fn instagram_for_feeds(
        &self,
        store: igdisplay::store::SqlStore,
        redirect: String,
    ) -> Result<Instagram, Failure> {
        let (Some(id), Some(secret)) = (&self.app_id, &self.app_secret) else {
            return Err(Failure::usage(
                "the feed service needs the app id (--app-id or IGDISPLAY_APP_ID) and secret (IGDISPLAY_APP_SECRET \
                 or --app-secret-file)",
                "set both (the App Dashboard > Instagram > API setup shows them), or pass --mock URL",
            ));
        };
        let builder = Instagram::builder(self.platform, id.clone(), secret.clone(), redirect);
        self.build(builder, Arc::new(store)).await
    }

    /// A read-only client over `store` (the keeper's: it needs no app id, secret or redirect
    /// URI, only the store and its keys).
    pub(crate) async fn instagram_for_store(
        &self,
        store: igdisplay::store::SqlStore,
    ) -> Result<Instagram, Failure> {
        self.build(Instagram::read_only(self.platform), Arc::new(store))
            .await
    }

    async fn build(
        &self,
        builder: igdisplay::InstagramBuilder,
        store: Arc<dyn TokenStore>,
    ) -> Result<Instagram, Failure> {
        // One backend (one TLS setup) for everything this invocation sends.
        let backend = igdisplay::http::default_backend(Default::default())
            .map_err(|e| Failure::runtime(crate::fail::chain(&e)))?;
        let mut builder = builder
            .endpoints(self.endpoints.clone())
            .backend_with_own_timeout(backend.clone())
            .store(store);
        if self.mock.is_some() {
            builder = builder.clock(self.clock().await);
        }
        builder.build().map_err(|e| {
            Failure::usage(
                crate::fail::chain(&e),
                "check --app-id (digits only), --redirect-uri (absolute http(s)) and the base URLs",
            )
        })
    }

    /// The store `--store` or `--token-store` names; the token file where the keyring was
    /// asked for and this machine has none (a server, a container, a session without D-Bus),
    /// with a warning.
    async fn token_store(&self) -> Result<Arc<dyn TokenStore>, Failure> {
        if self.store.is_some() {
            return Ok(Arc::new(self.sql_store().await?));
        }
        if self.token_store == TokenStoreKind::Keyring {
            match crate::keyring::KeyringStore::system() {
                Ok(store) => return Ok(Arc::new(store)),
                Err(why) => eprintln!(
                    "warning: there is no system keyring here ({why}); tokens are kept in {} instead",
                    self.token_file()?.display()
                ),
            }
        }
        Ok(Arc::new(FileStore::new(self.token_file()?)))
    }

    /// Whether `--store` names a database of accounts.
    pub(crate) fn has_store(&self) -> bool {
        self.store.is_some()
    }

    /// The database `--store` names, with its keys. With `--mock` its statements follow the
    /// mock's clock (a simulation that moves time by days); otherwise every time is the
    /// database's.
    pub(crate) async fn sql_store(&self) -> Result<igdisplay::store::SqlStore, Failure> {
        let Some(url) = &self.store else {
            return Err(Failure::usage(
                "this command needs a database of accounts",
                "pass --store sqlite:PATH or --store postgres://USER@HOST/DB (or set IGDISPLAY_STORE)",
            ));
        };
        let pinned = match &self.mock {
            Some(_) => Some(self.clock().await),
            None => None,
        };
        crate::fleet::open(url, &self.store_keys()?, pinned).await
    }

    /// The store's key list: `--store-keys-file` (readable by its owner only), or
    /// IGDISPLAY_STORE_KEYS.
    fn store_keys(&self) -> Result<igdisplay::store::KeyRing, Failure> {
        let hint = "make a key with `igdisplay store generate-key` and put it in IGDISPLAY_STORE_KEYS \
                    (or a file given to --store-keys-file)";
        let spec = match &self.store_keys_file {
            Some(path) => {
                crate::files::refuse_shared(path, "key file")?;
                std::fs::read_to_string(path).map_err(|e| {
                    Failure::usage(format!("cannot read the key file {}: {e}", path.display()), hint)
                })?
            }
            None => std::env::var("IGDISPLAY_STORE_KEYS")
                .map_err(|_| Failure::usage("the store's keys are not configured", hint))?,
        };
        igdisplay::store::KeyRing::parse(&spec).map_err(|e| Failure::usage(e.to_string(), hint))
    }

    /// The clock: the mock's with `--mock`, the system's otherwise.
    pub(crate) async fn clock(&self) -> SharedClock {
        self.clock
            .get_or_init(|| async {
                match &self.mock {
                    Some(mock) => match igdisplay::http::default_backend(Default::default()) {
                        Ok(backend) => mock_clock(mock, &*backend).await,
                        Err(_) => Arc::new(SystemClock),
                    },
                    None => Arc::new(SystemClock) as SharedClock,
                }
            })
            .await
            .clone()
    }

    /// The one downloader of media: Instagram's CDN only (and, with `--mock`, the mock's
    /// origin), through a backend that connects to public addresses only (and the mock's host);
    /// files up to `max_bytes` (the policy's default when `None`).
    pub(crate) fn downloader(
        &self,
        max_bytes: Option<usize>,
    ) -> Result<igdisplay_mirror::Downloader, Failure> {
        downloader(self.mock.as_deref(), max_bytes)
    }

    /// The `--store` URL, if any.
    pub(crate) fn store_url(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The user to act as: `--user`, or the only one stored.
    pub(crate) async fn user(&self, instagram: &Instagram) -> Result<UserId, Failure> {
        if let Some(user) = &self.user {
            return Ok(UserId::new(user.clone()));
        }
        let users = instagram.tokens().store().users().await?;
        match users.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(Failure::runtime("no one is logged in")
                .hint("run `igdisplay login` or `igdisplay token import`")),
            _ => Err(Failure::usage(
                format!("{} users are logged in", users.len()),
                format!(
                    "choose one with --user ({})",
                    users.iter().map(UserId::as_str).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
}

/// `igdisplay/tokens.json` in the OS configuration directory, if there is one.
fn default_token_file() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = var("XDG_CONFIG_HOME")
        .or_else(|| var("APPDATA"))
        .or_else(|| var("HOME").map(|home| home.join(".config")))?;
    Some(base.join("igdisplay").join("tokens.json"))
}

impl Settings {
    /// With --mock, registers `uri` as one of the mock app's redirect URIs (the feed
    /// service's callback), as the App Dashboard's setting would be: whether the mock took it.
    pub(crate) async fn register_redirect_with_mock(&self, uri: &str) -> bool {
        let (Some(base), Ok(backend)) = (&self.mock, igdisplay::http::default_backend(Default::default()))
        else {
            return false;
        };
        let body = serde_json::json!({ "uri": uri }).to_string();
        let Ok(request) = http::Request::post(format!("{}/_mock/redirect_uris", base.trim_end_matches('/')))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(bytes::Bytes::from(body))
        else {
            return false;
        };
        backend
            .send(request.into())
            .await
            .is_ok_and(|response| response.status().is_success())
    }
}

/// A JSON document of a running mock's control API, if it answers one.
async fn mock_get(base: &str, path: &str, backend: &dyn HttpBackend) -> Option<serde_json::Value> {
    let request = http::Request::get(format!("{}{path}", base.trim_end_matches('/')))
        .body(Default::default())
        .ok()?;
    let response = backend.send(request.into()).await.ok()?;
    serde_json::from_slice(response.body()).ok()
}

/// Against a running mock, follow its clock (it may be frozen or moved), so token ages agree:
/// its time is read now and again every 200 ms for as long as the
/// program runs, so a test that moves the mock's time moves this program's too.
async fn mock_clock(base: &str, backend: &dyn HttpBackend) -> SharedClock {
    let clock = ShiftedClock::at_unix(mock_now(base, backend).await.unwrap_or_else(unix_now));
    if let Ok(backend) = igdisplay::http::default_backend(Default::default()) {
        let (following, base) = (clock.clone(), base.to_owned());
        tokio::spawn(async move {
            loop {
                SystemClock.sleep(Duration::from_millis(200)).await;
                if let Some(now) = mock_now(&base, &*backend).await {
                    following.set_unix(now);
                }
            }
        });
    }
    Arc::new(clock)
}

/// The mock's time, in seconds.
async fn mock_now(base: &str, backend: &dyn HttpBackend) -> Option<i64> {
    mock_get(base, "/_mock/clock", backend).await?["unix"].as_i64()
}

fn unix_now() -> i64 {
    SystemClock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(igdisplay::model::whole_seconds)
        .unwrap_or_default()
}

/// The one downloader of media ([`Settings::downloader`]): Instagram's CDN, and `mock`'s
/// origin when given; files up to `max_bytes` (the policy's default when `None`).
pub(crate) fn downloader(
    mock: Option<&str>,
    max_bytes: Option<usize>,
) -> Result<igdisplay_mirror::Downloader, Failure> {
    let mut policy = igdisplay_mirror::DownloadPolicy::instagram();
    if let Some(mock) = mock {
        policy = policy.allow_origin(mock);
    }
    if let Some(max_bytes) = max_bytes {
        policy = policy.max_bytes(max_bytes);
    }
    let backend = igdisplay::http::default_backend(policy.backend_config())
        .map_err(|e| Failure::runtime(crate::fail::chain(&e)))?;
    Ok(igdisplay_mirror::Downloader::new(backend, policy))
}

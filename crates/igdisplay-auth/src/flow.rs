//! The authorize step: the URL, the pending authorization it creates, and the checks that
//! turn a callback into an [`AuthorizationGrant`].
//!
//! One type per state: [`PendingAuthorization`] (URL handed out, waiting for the user) →
//! [`AuthorizationGrant`] (callback verified, a code to spend) → [`TokenRecord`](crate::TokenRecord)
//! (short-lived, then long-lived). Verifying consumes the pending value, so a state can be used
//! once; [`PendingAuthorizations`] keeps many of them for a server and remembers used ones to
//! report replays.

use crate::callback::{Callback, CallbackOutcome};
use crate::{AppConfig, CallbackError, Platform};
use base64::Engine as _;
use igdisplay_model::{AuthorizationCode, CsrfState, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher as _;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

/// How long a pending authorization waits for its callback by default.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// Bytes of OS randomness in a state (256 bits; encoded as 43 base64url characters).
pub const STATE_BYTES: usize = 32;

/// The OS random generator failed; no state could be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomnessError(#[source] getrandom::Error);

/// Why no authorize URL could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The client has no app credentials (it was built read-only).
    #[error("this client has no app credentials: an authorize URL needs the app id and redirect URI")]
    NoAppCredentials,
    /// The OS random generator failed; no state could be made.
    #[error(transparent)]
    Randomness(#[from] RandomnessError),
    /// A scope the platform's window would refuse: a name Instagram renamed, or one of the
    /// other platform.
    #[error(transparent)]
    Scope(#[from] crate::scopes::ScopeError),
}

/// `n` bytes from the OS CSPRNG: the one draw both encodings below make.
fn random_bytes(n: usize) -> Result<Vec<u8>, RandomnessError> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(RandomnessError)?;
    Ok(buf)
}

/// `n` bytes from the OS CSPRNG, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> Result<String, RandomnessError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes(bytes)?))
}

/// `bytes` random bytes from the operating system, in lower-case hex (two characters a
/// byte): a name nobody can guess or collide with (a temporary file, a webhook delivery, a
/// mirror's sync, a session). The one way the workspace draws one.
///
/// ```
/// let name = igdisplay_auth::random_hex(8)?;
/// assert_eq!(name.len(), 16);
/// assert!(name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
/// assert_ne!(name, igdisplay_auth::random_hex(8)?);
/// # Ok::<(), igdisplay_auth::RandomnessError>(())
/// ```
///
/// # Errors
///
/// The operating system gave no randomness: no name is made (a predictable one would be
/// worse).
pub fn random_hex(bytes: usize) -> Result<String, RandomnessError> {
    Ok(hex(&random_bytes(bytes)?))
}

/// `bytes` in lower-case hex, two characters a byte (a digest, a random name).
///
/// ```
/// assert_eq!(igdisplay_auth::hex(&[0x00, 0xab, 0x7f]), "00ab7f");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len().saturating_mul(2));
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Builds an authorize URL; from [`AuthClient::authorize`](crate::AuthClient::authorize).
#[derive(Clone, Debug)]
#[must_use = "call .build() to get the URL and the pending authorization"]
pub struct AuthorizeBuilder {
    config: std::sync::Arc<AppConfig>,
    now: SystemTime,
    scopes: Vec<String>,
    ttl: Duration,
    enable_fb_login: Option<bool>,
    force_reauth: Option<bool>,
    fixed_state: Option<String>,
}

/// The URL to send the user to, and what to keep until they come back. Its `Debug` masks
/// the state inside the URL.
#[non_exhaustive]
pub struct Authorization {
    /// The authorize window URL. It holds the state: do not log it.
    pub url: String,
    /// Keep this (in a server-side session, or a file for a CLI) until the callback.
    pub pending: PendingAuthorization,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("url", &igdisplay_http::redact_uri(&self.url))
            .field("pending", &self.pending)
            .finish()
    }
}

impl AuthorizeBuilder {
    pub(crate) fn new(config: std::sync::Arc<AppConfig>, now: SystemTime) -> Self {
        let scopes = crate::scopes::defaults(config.platform)
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        Self {
            config,
            now,
            scopes,
            ttl: DEFAULT_STATE_TTL,
            enable_fb_login: None,
            force_reauth: None,
            fixed_state: None,
        }
    }

    /// Uses `state` instead of a fresh 256-bit random one, so that a test can compare whole
    /// authorize URLs and write the callback it expects. Only with the `test-util` feature:
    /// in production the state is the login's CSRF protection and must be unguessable.
    ///
    /// ```
    /// use igdisplay_auth::{AppConfig, AuthClient, Platform};
    /// use igdisplay_model::AppSecret;
    /// # use std::sync::Arc;
    /// # let backend = Arc::new(igdisplay_http::test_util::FnBackend::new(|_| unreachable!()));
    /// let config = AppConfig::new(Platform::InstagramLogin, "1", AppSecret::new("s"), "https://app.example/cb")?;
    /// let client = AuthClient::new(config, backend);
    /// let authorization = client.authorize().fixed_state("S").build()?;
    /// assert_eq!(
    ///     authorization.url,
    ///     "https://www.instagram.com/oauth/authorize?client_id=1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
    ///      &response_type=code&scope=instagram_business_basic&state=S"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(any(test, feature = "test-util"))]
    pub fn fixed_state(mut self, state: &str) -> Self {
        self.fixed_state = Some(state.to_owned());
        self
    }

    /// Replaces the scopes: names or [`Scope`](crate::scopes::Scope)s. The platform's required
    /// scope is added if missing; [`build`](Self::build) refuses a renamed or foreign one.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one scope: a name or a [`Scope`](crate::scopes::Scope).
    ///
    /// ```
    /// use igdisplay_auth::scopes::Scope;
    /// use igdisplay_auth::{AppConfig, AuthClient, AuthorizeError, Platform};
    /// use igdisplay_model::AppSecret;
    /// # use std::sync::Arc;
    /// # let backend = Arc::new(igdisplay_http::test_util::FnBackend::new(|_| unreachable!()));
    /// let config = AppConfig::new(Platform::InstagramLogin, "1", AppSecret::new("s"), "https://app.example/cb")?;
    /// let client = AuthClient::new(config, backend);
    /// let login = client.authorize().scope(Scope::InstagramBusinessManageComments).build()?;
    /// assert!(login.url.contains("scope=instagram_business_basic%2Cinstagram_business_manage_comments&"));
    /// // A name of before 2025-01-27 is refused, with the one to use.
    /// let old = client.authorize().scope("business_manage_insights").build().unwrap_err();
    /// assert!(matches!(old, AuthorizeError::Scope(_)));
    /// assert!(old.to_string().contains("ask for `instagram_business_manage_insights`"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// How long the pending authorization waits for its callback (default 10 minutes).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Instagram Login: whether the login page offers "Log in with Facebook" (`enable_fb_login`).
    pub fn enable_fb_login(mut self, enable: bool) -> Self {
        self.enable_fb_login = Some(enable);
        self
    }

    /// Instagram Login: make the user enter their credentials even if logged in (`force_reauth`).
    pub fn force_reauth(mut self, force: bool) -> Self {
        self.force_reauth = Some(force);
        self
    }

    /// The URL and the pending authorization, with a fresh 256-bit state.
    ///
    /// # Errors
    ///
    /// [`AuthorizeError::NoAppCredentials`] for a read-only client,
    /// [`AuthorizeError::Scope`] for a scope the platform's window would refuse, and
    /// [`AuthorizeError::Randomness`] when the OS random generator fails.
    pub fn build(self) -> Result<Authorization, AuthorizeError> {
        let credentials = self.config.app.as_ref().ok_or(AuthorizeError::NoAppCredentials)?;
        let state = match self.fixed_state {
            Some(state) => state,
            None => random_token(STATE_BYTES)?,
        };
        let mut scopes: Vec<String> = Vec::with_capacity(self.scopes.len() + 1);
        let required = crate::scopes::required(self.config.platform);
        for scope in std::iter::once(required.to_owned()).chain(self.scopes) {
            let scope = scope.trim().to_owned();
            crate::scopes::Scope::check(&scope, self.config.platform)?;
            if !scope.is_empty() && !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        let scope = scopes.join(",");
        let config = &self.config;
        let mut pairs = vec![
            ("client_id", credentials.app_id.as_str()),
            ("redirect_uri", credentials.redirect_uri.as_str()),
            ("response_type", "code"),
            ("scope", scope.as_str()),
            ("state", state.as_str()),
        ];
        if config.platform == Platform::InstagramLogin {
            let flag = |on: bool| if on { "true" } else { "false" };
            if let Some(on) = self.enable_fb_login {
                pairs.push(("enable_fb_login", flag(on)));
            }
            if let Some(on) = self.force_reauth {
                pairs.push(("force_reauth", flag(on)));
            }
        }
        let separator = if config.endpoints.authorize_url.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!(
            "{}{separator}{}",
            config.endpoints.authorize_url,
            igdisplay_http::encode_query(pairs.iter().copied())
        );
        let pending = PendingAuthorization {
            state: CsrfState::new(state),
            created_at: Timestamp::from_system_time(self.now),
            expires_at: self
                .now
                .checked_add(self.ttl)
                .map_or(Timestamp::from_unix(i64::MAX), Timestamp::from_system_time),
            binding: Binding::of(config.platform, credentials, &config.endpoints),
            scopes,
        };
        Ok(Authorization { url, pending })
    }
}

/// What an authorization is bound to: a code is only ever sent where it was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Binding {
    pub(crate) platform: Platform,
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) token_endpoint: String,
}

impl Binding {
    pub(crate) fn of(platform: Platform, app: &crate::AppCredentials, endpoints: &crate::Endpoints) -> Self {
        Self {
            platform,
            client_id: app.app_id.clone(),
            redirect_uri: app.redirect_uri.clone(),
            token_endpoint: endpoints.api_base.clone(),
        }
    }
}

/// An authorization waiting for its callback. Serializable, so a web server can keep it in a
/// session and a CLI in a file between two processes. `Debug` hides the state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingAuthorization {
    state: CsrfState,
    created_at: Timestamp,
    expires_at: Timestamp,
    binding: Binding,
    scopes: Vec<String>,
}

impl PendingAuthorization {
    /// When it stops accepting a callback.
    pub fn expires_at(&self) -> Timestamp {
        self.expires_at
    }

    /// When the authorize URL was made.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The platform it was made for.
    pub fn platform(&self) -> Platform {
        self.binding.platform
    }

    /// Checks `callback` against this authorization at `now`, consuming it.
    ///
    /// The state is compared in constant time. A denial with a matching (or absent) state is
    /// [`CallbackError::Denied`].
    ///
    /// # Errors
    ///
    /// [`CallbackError::MissingState`], [`StateMismatch`](CallbackError::StateMismatch),
    /// [`AuthorizationExpired`](CallbackError::AuthorizationExpired) or
    /// [`Denied`](CallbackError::Denied).
    pub fn verify(self, callback: Callback, now: SystemTime) -> Result<AuthorizationGrant, CallbackError> {
        match &callback.state {
            Some(state) if states_equal(state, &self.state) => {}
            Some(_) => return Err(CallbackError::StateMismatch),
            None if matches!(callback.outcome, CallbackOutcome::Denied { .. }) => {}
            None => return Err(CallbackError::MissingState),
        }
        self.accept(callback.outcome, now)
    }

    /// Whether `callback` carries this authorization's state (compared in constant time),
    /// without consuming anything: a listener answering many requests uses it to ignore
    /// callbacks that are not for this login, a stateless denial included, and keep waiting
    /// for the one that is.
    pub fn is_for(&self, callback: &Callback) -> bool {
        callback
            .state
            .as_ref()
            .is_some_and(|state| states_equal(state, &self.state))
    }

    /// Expiry and outcome, once the state is known to match.
    fn accept(self, outcome: CallbackOutcome, now: SystemTime) -> Result<AuthorizationGrant, CallbackError> {
        let code = outcome.into_code()?;
        if now >= self.expires_at.to_system_time() {
            return Err(CallbackError::AuthorizationExpired);
        }
        Ok(AuthorizationGrant {
            code,
            binding: self.binding,
            scopes: self.scopes,
        })
    }

    fn key(&self) -> StateKey {
        StateKey::of(&self.state)
    }
}

fn states_equal(a: &CsrfState, b: &CsrfState) -> bool {
    a.expose_secret()
        .as_bytes()
        .ct_eq(b.expose_secret().as_bytes())
        .into()
}

/// A verified callback: a code to exchange, bound to the app and endpoint that asked for it.
/// `Debug` hides the code.
#[derive(Debug)]
pub struct AuthorizationGrant {
    pub(crate) code: AuthorizationCode,
    pub(crate) binding: Binding,
    scopes: Vec<String>,
}

impl AuthorizationGrant {
    /// The scopes that were asked for (Instagram may report the granted ones at exchange).
    pub fn requested_scopes(&self) -> &[String] {
        &self.scopes
    }
}

/// The SHA-256 of a state: the table's key, so lookups leak no timing about the state itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct StateKey([u8; 32]);

impl StateKey {
    fn of(state: &CsrfState) -> Self {
        Self(Sha256::digest(state.expose_secret().as_bytes()).into())
    }
}

/// Many pending authorizations at once, for a server: callbacks are matched by state, each
/// state works once, and a second use is reported as a replay rather than a mismatch.
///
/// Bounded, and fair under a flood: expired entries are dropped as new ones arrive, each
/// client (an address, a session: whatever [`insert_for`](Self::insert_for) is given) keeps at
/// most [`PER_CLIENT`](Self::PER_CLIENT) waiting (its own oldest go first), and when
/// [`CAPACITY`](Self::CAPACITY) are waiting, the client with the most gives one up. A flood of
/// logins from one client therefore never evicts another client's login. Every operation
/// takes logarithmic time.
#[derive(Debug, Default)]
pub struct PendingAuthorizations {
    table: Mutex<Table>,
}

/// Whose authorization it is: a keyed hash of what the caller named, so the table holds no
/// addresses and a client cannot choose collisions.
type ClientKey = u64;

/// A place in the expiry order: when, then the insertion number (unique).
type Slot = (Timestamp, u64);

struct Waiting {
    pending: PendingAuthorization,
    client: ClientKey,
    slot: Slot,
}

#[derive(Default)]
struct Table {
    pending: HashMap<StateKey, Waiting>,
    /// Every waiting authorization by expiry.
    by_expiry: BTreeMap<Slot, StateKey>,
    /// Each client's waiting authorizations by expiry.
    by_client: HashMap<ClientKey, BTreeMap<Slot, StateKey>>,
    /// Clients by how many they have waiting, for eviction from the largest.
    load: BTreeSet<(usize, ClientKey)>,
    /// Used states, until the time their authorization would have expired.
    used: HashMap<StateKey, SystemTime>,
    used_by_expiry: BTreeMap<(SystemTime, u64), StateKey>,
    inserted: u64,
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("pending", &self.pending.len())
            .field("clients", &self.by_client.len())
            .field("used", &self.used.len())
            .finish()
    }
}

impl Table {
    fn client_load(&self, client: ClientKey) -> usize {
        self.by_client.get(&client).map_or(0, BTreeMap::len)
    }

    fn add(&mut self, key: StateKey, pending: PendingAuthorization, client: ClientKey) {
        self.inserted = self.inserted.wrapping_add(1);
        let slot = (pending.expires_at, self.inserted);
        let before = self.client_load(client);
        self.load.remove(&(before, client));
        self.load.insert((before + 1, client));
        self.by_client.entry(client).or_default().insert(slot, key);
        self.by_expiry.insert(slot, key);
        self.pending.insert(
            key,
            Waiting {
                pending,
                client,
                slot,
            },
        );
    }

    fn take(&mut self, key: &StateKey) -> Option<PendingAuthorization> {
        let waiting = self.pending.remove(key)?;
        self.by_expiry.remove(&waiting.slot);
        let before = self.client_load(waiting.client);
        self.load.remove(&(before, waiting.client));
        if let Some(slots) = self.by_client.get_mut(&waiting.client) {
            slots.remove(&waiting.slot);
            if slots.is_empty() {
                self.by_client.remove(&waiting.client);
            } else {
                self.load.insert((slots.len(), waiting.client));
            }
        }
        Some(waiting.pending)
    }

    /// Drops the client's authorization that expires first.
    fn evict_oldest_of(&mut self, client: ClientKey) {
        let first = self
            .by_client
            .get(&client)
            .and_then(|slots| slots.first_key_value())
            .map(|(_, key)| *key);
        if let Some(key) = first {
            self.take(&key);
        }
    }

    fn expire(&mut self, now: SystemTime) {
        while let Some((&(expires_at, _), &key)) = self.by_expiry.first_key_value() {
            if expires_at.to_system_time() > now {
                break;
            }
            self.take(&key);
        }
        while let Some((&(until, _), &key)) = self.used_by_expiry.first_key_value() {
            if until > now {
                break;
            }
            self.used_by_expiry.pop_first();
            self.used.remove(&key);
        }
    }

    fn mark_used(&mut self, key: StateKey, until: SystemTime) {
        self.inserted = self.inserted.wrapping_add(1);
        if self.used.insert(key, until).is_none() {
            self.used_by_expiry.insert((until, self.inserted), key);
        }
    }
}

impl PendingAuthorizations {
    /// The most authorizations that wait at once.
    pub const CAPACITY: usize = 10_000;

    /// The most authorizations one client keeps waiting (a user who opened the login in a few
    /// tabs needs a handful).
    pub const PER_CLIENT: usize = 32;

    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `pending` until its callback, for a caller that does not tell clients apart: all
    /// its authorizations share one client's quota of [`CAPACITY`](Self::CAPACITY). A server
    /// should prefer [`insert_for`](Self::insert_for).
    pub fn insert(&self, pending: PendingAuthorization, now: SystemTime) {
        self.insert_keyed(None, pending, now);
    }

    /// Keeps `pending` until its callback, on behalf of `client` (the peer address, or a
    /// session id): expired entries go first; then, if `client` already has
    /// [`PER_CLIENT`](Self::PER_CLIENT) waiting, its oldest goes; if the table is full, the
    /// oldest of the client with the most goes.
    ///
    /// ```
    /// # use igdisplay_auth::{AppConfig, AuthClient, PendingAuthorizations, Platform};
    /// # use igdisplay_model::AppSecret;
    /// # use std::{sync::Arc, time::SystemTime};
    /// # let config = AppConfig::new(Platform::InstagramLogin, "684477648739411",
    /// #     AppSecret::new("app-secret"), "https://app.example/auth/").unwrap();
    /// # let client = AuthClient::new(config, Arc::new(igdisplay_http::ReqwestBackend::new().unwrap()));
    /// let table = PendingAuthorizations::new();
    /// let now = SystemTime::now();
    /// let login = client.authorize().build()?;
    /// table.insert_for("203.0.113.7", login.pending, now);
    /// // A flood from another address cannot push it out.
    /// for _ in 0..20_000 {
    ///     table.insert_for("198.51.100.9", client.authorize().build()?.pending, now);
    /// }
    /// assert!(table.len() <= PendingAuthorizations::PER_CLIENT + 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_for(&self, client: &str, pending: PendingAuthorization, now: SystemTime) {
        self.insert_keyed(Some(client), pending, now);
    }

    fn insert_keyed(&self, client: Option<&str>, pending: PendingAuthorization, now: SystemTime) {
        let mut table = self.table();
        table.expire(now);
        let (client, quota) = match client {
            // Named clients get odd keys, so none shares the anonymous quota.
            None => (0, Self::CAPACITY),
            Some(name) => (table.hasher.hash_one(name) | 1, Self::PER_CLIENT),
        };
        let key = pending.key();
        // The same state inserted twice replaces itself.
        table.take(&key);
        while table.client_load(client) >= quota {
            table.evict_oldest_of(client);
        }
        while table.pending.len() >= Self::CAPACITY {
            match table.load.last().map(|&(_, heaviest)| heaviest) {
                Some(heaviest) => table.evict_oldest_of(heaviest),
                None => break,
            }
        }
        table.add(key, pending, client);
    }

    /// How many authorizations are waiting.
    pub fn len(&self) -> usize {
        self.table().pending.len()
    }

    /// Whether none are waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Matches `callback` to its pending authorization and consumes it. A mismatched state
    /// leaves the table unchanged, so the legitimate callback still completes.
    ///
    /// # Errors
    ///
    /// As [`PendingAuthorization::verify`], plus [`CallbackError::StateAlreadyUsed`] for a
    /// replay. A denial without a state cannot be matched and is reported as
    /// [`CallbackError::Denied`] without consuming anything.
    pub fn complete(&self, callback: Callback, now: SystemTime) -> Result<AuthorizationGrant, CallbackError> {
        let Some(state) = &callback.state else {
            callback.outcome.into_code()?;
            return Err(CallbackError::MissingState);
        };
        let key = StateKey::of(state);
        let mut table = self.table();
        let Some(pending) = table.take(&key) else {
            return Err(if table.used.contains_key(&key) {
                CallbackError::StateAlreadyUsed
            } else {
                CallbackError::StateMismatch
            });
        };
        table.mark_used(key, pending.expires_at.to_system_time().max(now));
        drop(table);
        pending.accept(callback.outcome, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppConfig, Platform};
    use igdisplay_model::AppSecret;
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::UNIX_EPOCH;

    fn config(platform: Platform) -> Arc<AppConfig> {
        Arc::new(
            AppConfig::new(
                platform,
                "684477648739411",
                AppSecret::new("x"),
                "https://app.example/auth/?a=1&b=2",
            )
            .unwrap(),
        )
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn the_url_has_exactly_the_documented_parameters_each_encoded_once() {
        let auth = AuthorizeBuilder::new(config(Platform::BasicDisplay), now())
            .fixed_state("S")
            .build()
            .unwrap();
        insta::assert_snapshot!(auth.url, @"https://api.instagram.com/oauth/authorize?client_id=684477648739411&redirect_uri=https%3A%2F%2Fapp.example%2Fauth%2F%3Fa%3D1%26b%3D2&response_type=code&scope=user_profile%2Cuser_media&state=S");
    }

    #[test]
    fn instagram_login_options_follow_the_documented_parameters() {
        let auth = AuthorizeBuilder::new(config(Platform::InstagramLogin), now())
            .scope("instagram_business_manage_comments")
            .scope("instagram_business_basic")
            .enable_fb_login(false)
            .force_reauth(true)
            .fixed_state("S")
            .build()
            .unwrap();
        insta::assert_snapshot!(auth.url, @"https://www.instagram.com/oauth/authorize?client_id=684477648739411&redirect_uri=https%3A%2F%2Fapp.example%2Fauth%2F%3Fa%3D1%26b%3D2&response_type=code&scope=instagram_business_basic%2Cinstagram_business_manage_comments&state=S&enable_fb_login=false&force_reauth=true");
    }

    #[test]
    fn states_carry_256_bits_and_never_repeat() {
        let config = config(Platform::InstagramLogin);
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            let auth = AuthorizeBuilder::new(config.clone(), now()).build().unwrap();
            let state = auth.pending.state.expose_secret().to_owned();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&state)
                .unwrap();
            assert_eq!(bytes.len(), STATE_BYTES);
            assert!(seen.insert(state), "a state repeated");
        }
    }

    fn callback(query: &str) -> Callback {
        Callback::parse(query).unwrap()
    }

    /// A pending authorization whose state is `S`.
    fn pending() -> PendingAuthorization {
        AuthorizeBuilder::new(config(Platform::InstagramLogin), now())
            .fixed_state("S")
            .build()
            .unwrap()
            .pending
    }

    #[test]
    fn the_matching_state_yields_the_code_without_its_fragment() {
        let grant = pending().verify(callback("code=C1&state=S#_"), now()).unwrap();
        assert_eq!(grant.code.expose_secret(), "C1");
    }

    #[test]
    fn a_forged_state_is_a_mismatch() {
        let error = pending()
            .verify(callback("code=C1&state=forged"), now())
            .unwrap_err();
        assert_eq!(error, CallbackError::StateMismatch);
    }

    #[test]
    fn a_missing_state_is_refused() {
        let error = pending().verify(callback("code=C1"), now()).unwrap_err();
        assert_eq!(error, CallbackError::MissingState);
    }

    #[test]
    fn a_callback_after_the_ttl_has_expired() {
        let late = now() + DEFAULT_STATE_TTL;
        let error = pending().verify(callback("code=C1&state=S"), late).unwrap_err();
        assert_eq!(error, CallbackError::AuthorizationExpired);
    }

    #[test]
    fn a_denial_is_typed_with_its_reason() {
        let denial = callback("error=access_denied&error_reason=user_denied&error_description=No");
        let error = pending().verify(denial, now()).unwrap_err();
        assert!(matches!(error, CallbackError::Denied { ref reason, .. } if reason == "user_denied"));
    }

    #[test]
    fn the_table_reports_replays_and_keeps_legitimate_flows_alive() {
        let table = PendingAuthorizations::new();
        let config = config(Platform::BasicDisplay);
        let auth = AuthorizeBuilder::new(config.clone(), now()).build().unwrap();
        let state = auth.pending.state.expose_secret().to_owned();
        table.insert(auth.pending, now());
        // A forged state changes nothing.
        assert_eq!(
            table
                .complete(callback("code=X&state=forged"), now())
                .unwrap_err(),
            CallbackError::StateMismatch
        );
        assert_eq!(table.len(), 1);
        let good = format!("code=C&state={state}");
        assert!(table.complete(callback(&good), now()).is_ok());
        assert_eq!(
            table.complete(callback(&good), now()).unwrap_err(),
            CallbackError::StateAlreadyUsed
        );
        assert!(table.is_empty());

        // A denial with a valid state consumes it.
        let auth = AuthorizeBuilder::new(config.clone(), now()).build().unwrap();
        let state = auth.pending.state.expose_secret().to_owned();
        table.insert(auth.pending, now());
        let denial = format!("error=access_denied&error_reason=user_denied&state={state}");
        assert!(matches!(
            table.complete(callback(&denial), now()),
            Err(CallbackError::Denied { .. })
        ));
        assert_eq!(
            table.complete(callback(&denial), now()).unwrap_err(),
            CallbackError::StateAlreadyUsed
        );

        // Expired entries are dropped when new ones arrive.
        let auth = AuthorizeBuilder::new(config.clone(), now()).build().unwrap();
        table.insert(auth.pending, now());
        let later = AuthorizeBuilder::new(config, now()).build().unwrap();
        table.insert(later.pending, now() + DEFAULT_STATE_TTL);
        assert_eq!(table.len(), 1);
    }

    /// An authorization for `table`, and the callback that completes it.
    fn login(config: &Arc<AppConfig>) -> (PendingAuthorization, Callback) {
        let auth = AuthorizeBuilder::new(config.clone(), now()).build().unwrap();
        let done = callback(&format!("code=C&state={}", auth.pending.state.expose_secret()));
        (auth.pending, done)
    }

    #[test]
    fn a_flood_from_one_client_never_evicts_another_clients_login() {
        let table = PendingAuthorizations::new();
        let config = config(Platform::InstagramLogin);
        let (pending, done) = login(&config);
        table.insert_for("203.0.113.7", pending, now());
        for _ in 0..2 * PendingAuthorizations::CAPACITY {
            table.insert_for("198.51.100.9", login(&config).0, now());
        }
        assert_eq!(table.len(), PendingAuthorizations::PER_CLIENT + 1);
        assert!(table.complete(done, now()).is_ok());
    }

    #[test]
    fn a_client_over_its_quota_loses_its_own_oldest_login() {
        let table = PendingAuthorizations::new();
        let config = config(Platform::InstagramLogin);
        let logins: Vec<_> = (0..=PendingAuthorizations::PER_CLIENT)
            .map(|_| login(&config))
            .collect();
        let mut callbacks = Vec::new();
        for (pending, done) in logins {
            table.insert_for("tabs", pending, now());
            callbacks.push(done);
        }
        let newest = callbacks.pop().unwrap();
        let oldest = callbacks.remove(0);
        assert_eq!(
            table.complete(oldest, now()).unwrap_err(),
            CallbackError::StateMismatch
        );
        assert!(table.complete(newest, now()).is_ok());
        assert!(table.complete(callbacks.remove(0), now()).is_ok());
    }

    #[test]
    fn a_full_table_takes_room_from_the_client_with_the_most() {
        let table = PendingAuthorizations::new();
        let config = config(Platform::InstagramLogin);
        let (pending, done) = login(&config);
        table.insert_for("victim", pending, now());
        // Many addresses, each at its quota: more than the table holds.
        let clients = PendingAuthorizations::CAPACITY / PendingAuthorizations::PER_CLIENT + 10;
        for client in 0..clients {
            for _ in 0..PendingAuthorizations::PER_CLIENT {
                table.insert_for(&format!("10.0.{client}"), login(&config).0, now());
            }
        }
        assert_eq!(table.len(), PendingAuthorizations::CAPACITY);
        assert!(table.complete(done, now()).is_ok());
    }

    #[test]
    fn used_states_are_forgotten_once_their_authorization_would_have_expired() {
        let table = PendingAuthorizations::new();
        let config = config(Platform::InstagramLogin);
        let (pending, done) = login(&config);
        let replay = done.clone();
        table.insert(pending, now());
        table.complete(done, now()).unwrap();
        assert_eq!(
            table.complete(replay.clone(), now()).unwrap_err(),
            CallbackError::StateAlreadyUsed
        );
        // Any later insertion sweeps what has expired, the record of used states included.
        table.insert(login(&config).0, now() + DEFAULT_STATE_TTL);
        assert_eq!(
            table.complete(replay, now() + DEFAULT_STATE_TTL).unwrap_err(),
            CallbackError::StateMismatch
        );
        assert_eq!(format!("{table:?}").matches("used: 0").count(), 1, "{table:?}");
    }

    #[test]
    fn pending_authorizations_survive_serialization_without_showing_the_state() {
        let auth = AuthorizeBuilder::new(config(Platform::InstagramLogin), now())
            .build()
            .unwrap();
        let state = auth.pending.state.expose_secret().to_owned();
        assert!(!format!("{:?}", auth.pending).contains(&state));
        let json = serde_json::to_string(&auth.pending).unwrap();
        let back: PendingAuthorization = serde_json::from_str(&json).unwrap();
        assert!(
            back.verify(callback(&format!("code=C&state={state}")), now())
                .is_ok()
        );
    }
}

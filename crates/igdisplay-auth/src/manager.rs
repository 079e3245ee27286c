//! [`TokenManager`]: hands out a valid token per user and keeps it alive.

use crate::{
    AuthClient, AuthorizationGrant, Callback, CallbackError, PendingAuthorization, RefreshSchedule,
    StoreError, TokenError, TokenRecord, TokenStore,
};
use igdisplay_http::Jitter;
use igdisplay_model::{AccessToken, Timestamp, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A failed login: the callback was refused, or a token request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The callback was refused; nothing was sent.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// The code exchange, the long-lived exchange or storing the token failed.
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// Hands out a valid token for a user, refreshing it when due and storing it before use.
///
/// - A long-lived token is refreshed when the [`RefreshSchedule`] says so (default: on day 20
///   of its 60), the same rule the fleet's keeper follows. The new token is saved before it is
///   handed out, and only over the token it replaces
///   ([`TokenStore::save_refreshed`]): a refresh never brings back an account deleted or
///   logged out meanwhile.
/// - However many callers ask at once, at most one refresh per user is in flight; the others
///   wait for it and get its result. A store shared by processes (the SQL stores) extends this
///   across them ([`TokenStore::refresh_lock`]).
/// - An expired token is [`TokenError::Expired`] and a revoked one [`TokenError::Revoked`]:
///   no request is made with it, and the user must log in again. A store that keeps account
///   states remembers the revocation, so the next use fails at once too.
/// - When a refresh fails for another reason (network, Instagram down), the current token is
///   still valid and is handed out; the refresh is tried again after the schedule's failure
///   backoff.
///
/// Cheap to clone; clones share the single-flight state.
///
/// ```
/// use igdisplay_auth::{AppConfig, AuthClient, MemoryStore, Platform, TokenKind, TokenManager, TokenRecord, TokenStore};
/// use igdisplay_http::{Clock, ManualClock};
/// use igdisplay_http::test_util::{ReplayBackend, json_response};
/// use igdisplay_model::{AccessToken, UserId};
/// use std::{sync::Arc, time::Duration};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// // Instagram's answer to the refresh, canned here; use a real backend or the mock.
/// let backend = ReplayBackend::new([Ok(json_response(200,
///     r#"{"access_token":"IGAAnew","token_type":"bearer","expires_in":5184000}"#))]);
/// let clock = ManualClock::at_unix(1_700_000_000);
/// let client = AuthClient::new(AppConfig::read_only(Platform::InstagramLogin), Arc::new(backend.clone()))
///     .with_clock(Arc::new(clock.clone()));
/// let store = Arc::new(MemoryStore::new());
/// let tokens = TokenManager::new(client, store.clone());
///
/// // A 60-day token generated 55 days ago in the App Dashboard: past day 20, due.
/// let user = UserId::new("17841405793187218");
/// let issued = clock.now() - Duration::from_secs(55 * 24 * 3600);
/// tokens.import(TokenRecord::long_lived(user.clone(), AccessToken::new("IGAAold"),
///     Platform::InstagramLogin, issued)).await?;
///
/// // Asking for it refreshes it first (one request), stores the new one, and hands it out.
/// assert_eq!(tokens.access_token(&user).await?.expose_secret(), "IGAAnew");
/// assert_eq!(backend.count(), 1);
/// assert_eq!(store.load(&user).await?.unwrap().access_token.expose_secret(), "IGAAnew");
/// # Ok::<(), Box<dyn std::error::Error>>(()) })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: AuthClient,
    store: Arc<dyn TokenStore>,
    schedule: RefreshSchedule,
    jitter: Jitter,
    flights: Mutex<HashMap<UserId, Arc<tokio::sync::Mutex<()>>>>,
    /// Refreshes failed in a row per user, and when to try again (Unix seconds).
    failures: Mutex<HashMap<UserId, (u32, i64)>>,
}

impl TokenManager {
    /// A manager with the default schedule.
    pub fn new(client: AuthClient, store: Arc<dyn TokenStore>) -> Self {
        Self::with_schedule(client, store, RefreshSchedule::default())
    }

    /// A manager refreshing by `schedule`.
    pub fn with_schedule(client: AuthClient, store: Arc<dyn TokenStore>, schedule: RefreshSchedule) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                store,
                schedule,
                jitter: Jitter::random(),
                flights: Mutex::default(),
                failures: Mutex::default(),
            }),
        }
    }

    /// The client that makes the token requests.
    pub fn client(&self) -> &AuthClient {
        &self.inner.client
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The refresh schedule.
    pub fn schedule(&self) -> &RefreshSchedule {
        &self.inner.schedule
    }

    /// Completes a login from the redirect URL: verifies it against `pending`, exchanges the
    /// code, upgrades the token to long-lived and stores it.
    ///
    /// # Errors
    ///
    /// [`LoginError::Callback`] (nothing sent) or [`LoginError::Token`].
    pub async fn complete_login(
        &self,
        pending: PendingAuthorization,
        redirect: &str,
    ) -> Result<TokenRecord, LoginError> {
        let token = self.exchange_login(pending, redirect).await?;
        self.inner.store.save(&token).await.map_err(TokenError::from)?;
        Ok(token)
    }

    /// [`complete_login`](Self::complete_login) without storing the token: for an app that
    /// decides whose token it keeps (a site that admits one account) before anything is
    /// written. Keep it with [`import`](Self::import).
    ///
    /// # Errors
    ///
    /// [`LoginError::Callback`] (nothing sent) or [`LoginError::Token`].
    pub async fn exchange_login(
        &self,
        pending: PendingAuthorization,
        redirect: &str,
    ) -> Result<TokenRecord, LoginError> {
        let callback = Callback::parse(redirect)?;
        let grant = pending.verify(callback, self.inner.client.clock().now())?;
        Ok(self.exchange_grant(grant).await?)
    }

    /// Exchanges a verified grant for a long-lived token, storing nothing.
    async fn exchange_grant(&self, grant: AuthorizationGrant) -> Result<TokenRecord, TokenError> {
        let short = self.inner.client.exchange_code(grant).await?;
        self.inner.client.exchange_long_lived(&short).await
    }

    /// Exchanges a verified grant, upgrades the token to long-lived and stores it.
    ///
    /// # Errors
    ///
    /// Any [`TokenError`] of the two exchanges, or [`TokenError::Store`].
    pub async fn login_with_grant(&self, grant: AuthorizationGrant) -> Result<TokenRecord, TokenError> {
        let long = self.exchange_grant(grant).await?;
        self.inner.store.save(&long).await?;
        Ok(long)
    }

    /// Stores a token obtained elsewhere (e.g. generated in the App Dashboard).
    ///
    /// # Errors
    ///
    /// [`TokenError::Expired`] for an expired token, or [`TokenError::Store`].
    pub async fn import(&self, mut record: TokenRecord) -> Result<(), TokenError> {
        if record.is_expired(self.inner.client.clock().now()) {
            return Err(TokenError::Expired {
                expired_at: record.expires_at,
            });
        }
        // A token imported here was issued for these endpoints, unless the record says whose.
        if record.issued_by.is_none() {
            record.issued_by = Some(self.inner.client.config().endpoints.issuer());
        }
        Ok(self.inner.store.save(&record).await?)
    }

    /// Forgets the user's token. Returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`TokenError::Store`].
    pub async fn logout(&self, user: &UserId) -> Result<bool, TokenError> {
        Ok(self.inner.store.remove(user).await?)
    }

    /// A valid access token for `user`, refreshed first when due.
    ///
    /// # Errors
    ///
    /// [`TokenError::NoToken`], [`Expired`](TokenError::Expired), [`Revoked`](TokenError::Revoked)
    /// or [`Store`](TokenError::Store).
    pub async fn access_token(&self, user: &UserId) -> Result<AccessToken, TokenError> {
        Ok(self.record(user).await?.access_token)
    }

    /// The user's valid token record, refreshed first when due.
    ///
    /// # Errors
    ///
    /// As [`access_token`](Self::access_token).
    pub async fn record(&self, user: &UserId) -> Result<TokenRecord, TokenError> {
        let record = self.usable(user).await?;
        if !self.wants_refresh(&record) {
            return Ok(record);
        }
        let flight = self.flight(user);
        let _turn = flight.lock().await;
        let across_processes = self.inner.store.refresh_lock(user).await?;
        // Whoever held the turn before, here or in another process, may have refreshed already.
        let record = self.usable(user).await?;
        if !self.wants_refresh(&record) || across_processes.is_held_elsewhere() {
            return Ok(record);
        }
        self.refresh_locked(record, false).await
    }

    /// Refreshes the user's token now, whatever the policy says (single flight as well).
    ///
    /// # Errors
    ///
    /// [`TokenError::TooEarly`] or [`NotLongLived`](TokenError::NotLongLived) without a request,
    /// and every error of [`record`](Self::record) and of [`AuthClient::refresh`]; here a failed
    /// refresh is an error.
    ///
    /// When another caller (here, or another process sharing the store) replaced the token
    /// while this one waited for its turn, that token is returned instead of refreshing twice.
    pub async fn refresh_now(&self, user: &UserId) -> Result<TokenRecord, TokenError> {
        let before = self.usable(user).await?;
        let flight = self.flight(user);
        let _turn = flight.lock().await;
        let across_processes = self.inner.store.refresh_lock(user).await?;
        let record = self.usable(user).await?;
        if !record.same_token(&before) || across_processes.is_held_elsewhere() {
            return Ok(record);
        }
        self.refresh_locked(record, true).await
    }

    /// Loads the record and refuses an expired one.
    async fn usable(&self, user: &UserId) -> Result<TokenRecord, TokenError> {
        let record = match self.inner.store.load(user).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(TokenError::NoToken(user.clone())),
            Err(StoreError::LoginRequired { state }) => return Err(TokenError::LoginRequired { state }),
            Err(error) => return Err(error.into()),
        };
        let endpoints = &self.inner.client.config().endpoints;
        if let Some(issued_by) = &record.issued_by
            && !endpoints.accepts_tokens_of(Some(issued_by))
        {
            return Err(TokenError::IssuedElsewhere {
                issued_by: issued_by.clone(),
                target: endpoints.graph_base.clone(),
            });
        }
        if self
            .inner
            .schedule
            .is_expired(&record, self.inner.client.clock().now())
        {
            return Err(TokenError::Expired {
                expired_at: record.expires_at,
            });
        }
        Ok(record)
    }

    fn wants_refresh(&self, record: &TokenRecord) -> bool {
        let now = self.inner.client.clock().now();
        if !self.inner.schedule.is_due(record, now) {
            return false;
        }
        let failures = self.inner.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures
            .get(&record.user_id)
            .is_none_or(|(_, again)| Timestamp::from_system_time(now).unix() >= *again)
    }

    async fn refresh_locked(&self, record: TokenRecord, strict: bool) -> Result<TokenRecord, TokenError> {
        let store = &self.inner.store;
        match self.inner.client.refresh(&record).await {
            Ok(fresh) => {
                self.failures().remove(&record.user_id);
                match store.save_refreshed(&record, &fresh).await {
                    Ok(()) => Ok(fresh),
                    // Deleted, logged out or logged in again meanwhile: what is stored now
                    // stands (a new login's token), or there is nothing to hand out.
                    Err(StoreError::Superseded) => self.usable(&record.user_id).await,
                    Err(error) => Err(error.into()),
                }
            }
            Err(error) if error.requires_reauthorization() => {
                store.revoked(&record, &error.to_string()).await?;
                Err(TokenError::Revoked(Box::new(error)))
            }
            Err(error) if strict => Err(error),
            Err(error) => {
                tracing::warn!(user = %record.user_id, %error, "token refresh failed; the current token is still valid");
                let now = Timestamp::from_system_time(self.inner.client.clock().now()).unix();
                let mut failures = self.failures();
                let entry = failures.entry(record.user_id.clone()).or_insert((0, now));
                entry.0 = entry.0.saturating_add(1);
                entry.1 = self.inner.schedule.retry_after_failure(
                    entry.0,
                    record.expires_at.unix(),
                    now,
                    &self.inner.jitter,
                );
                Ok(record)
            }
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, (u32, i64)>> {
        self.inner.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn flight(&self, user: &UserId) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user.clone())
            .or_default()
            .clone()
    }
}

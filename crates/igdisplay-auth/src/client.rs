//! [`AuthClient`]: the token requests, built as values and sent over any [`HttpBackend`].

use crate::flow::{AuthorizeBuilder, Binding};
use crate::token::{LONG_LIVED, MAX_LIFETIME, SHORT_LIVED};
use crate::{AppConfig, AuthorizationGrant, TokenError, TokenKind, TokenRecord};
use bytes::Bytes;
use igdisplay_http::{
    Exchange, Gate, HttpRequest, HttpResponse, Jitter, RequestKind, RetryBudget, RetryPolicy, SendLoop,
    SharedBackend, SharedClock, SystemClock, encode_query,
};
use igdisplay_model::{AccessToken, CodeExchangeResponse, ErrorBody, LongLivedTokenResponse, OAuthErrorBody};
use serde::de::DeserializeOwned;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Runs the token side of the flow for one app: authorize URLs, the code exchange, the
/// long-lived exchange and refresh. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthClient {
    config: Arc<AppConfig>,
    backend: SharedBackend,
    clock: SharedClock,
    retry: RetryPolicy,
    jitter: Arc<Jitter>,
    retry_budget: Arc<RetryBudget>,
    observer: Option<ResponseObserver>,
}

/// Sees the headers of every response a client receives: how the app's rate-limit state
/// (the usage headers) reaches the pacer that the app's Graph clients share.
#[derive(Clone)]
pub struct ResponseObserver(Arc<dyn Fn(&http::HeaderMap) + Send + Sync>);

impl ResponseObserver {
    /// An observer calling `observe` with each response's headers.
    pub fn new(observe: impl Fn(&http::HeaderMap) + Send + Sync + 'static) -> Self {
        Self(Arc::new(observe))
    }
}

impl std::fmt::Debug for ResponseObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseObserver")
    }
}

impl AuthClient {
    /// A client for `config` that sends requests through `backend`, on the system clock.
    pub fn new(config: AppConfig, backend: SharedBackend) -> Self {
        Self {
            config: Arc::new(config),
            backend,
            clock: Arc::new(SystemClock),
            retry: RetryPolicy::default(),
            jitter: Arc::new(Jitter::random()),
            retry_budget: Arc::default(),
            observer: None,
        }
    }

    /// Replaces the clock (a `ManualClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the retry policy (what may be retried is decided by
    /// [`igdisplay_http::classify`]; this says how often and how long).
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Shares a retry budget with the app's other clients (by default the client has a
    /// [`RetryBudget::default`] of its own).
    #[must_use]
    pub fn with_retry_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Shows the headers of every response to `observer` (the facade hands the usage headers
    /// of token requests to the app's pacer this way).
    #[must_use]
    pub fn with_response_observer(mut self, observer: ResponseObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Seeds the backoff jitter, for reproducible tests.
    #[must_use]
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = Arc::new(Jitter::seeded(seed));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The app secret to mask in anything shown, or nothing for a read-only client.
    fn app_secret(&self) -> &str {
        self.config
            .app
            .as_ref()
            .map_or("", |app| app.app_secret.expose_secret())
    }

    /// Starts an authorization: configure scopes and options, then `.build()` for the URL
    /// and the pending authorization to keep.
    pub fn authorize(&self) -> AuthorizeBuilder {
        AuthorizeBuilder::new(self.config.clone(), self.clock.now())
    }

    /// `POST {api}/oauth/access_token` for `grant`, as a value (nothing is sent).
    ///
    /// # Errors
    ///
    /// [`TokenError::ConfigMismatch`] when the grant was made for another app, redirect URI
    /// or token endpoint: the code is never sent anywhere else.
    /// [`TokenError::NoAppCredentials`] for a read-only client.
    pub fn code_exchange_request(&self, grant: &AuthorizationGrant) -> Result<HttpRequest, TokenError> {
        let app = self.config.credentials()?;
        if grant.binding != Binding::of(self.config.platform, app, &self.config.endpoints) {
            return Err(TokenError::ConfigMismatch);
        }
        let body = encode_query([
            ("client_id", app.app_id.as_str()),
            ("client_secret", app.app_secret.expose_secret()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", app.redirect_uri.as_str()),
            ("code", grant.code.expose_secret()),
        ]);
        build(
            http::Method::POST,
            format!("{}/oauth/access_token", self.config.endpoints.api_base),
            Some(body),
        )
    }

    /// `GET {graph}/access_token?grant_type=ig_exchange_token&...` for a short-lived token.
    ///
    /// # Errors
    ///
    /// [`TokenError::NoAppCredentials`] for a read-only client (the exchange needs the app
    /// secret), or when the configured base URL cannot form a request.
    pub fn long_lived_request(&self, short_lived: &AccessToken) -> Result<HttpRequest, TokenError> {
        let query = encode_query([
            ("grant_type", "ig_exchange_token"),
            (
                "client_secret",
                self.config.credentials()?.app_secret.expose_secret(),
            ),
            ("access_token", short_lived.expose_secret()),
        ]);
        build(
            http::Method::GET,
            format!("{}/access_token?{query}", self.config.endpoints.graph_base),
            None,
        )
    }

    /// `GET {graph}/refresh_access_token?grant_type=ig_refresh_token&...` for a long-lived token.
    ///
    /// # Errors
    ///
    /// Only when the configured base URL cannot form a request.
    pub fn refresh_request(&self, long_lived: &AccessToken) -> Result<HttpRequest, TokenError> {
        let query = encode_query([
            ("grant_type", "ig_refresh_token"),
            ("access_token", long_lived.expose_secret()),
        ]);
        build(
            http::Method::GET,
            format!(
                "{}/refresh_access_token?{query}",
                self.config.endpoints.graph_base
            ),
            None,
        )
    }

    /// Exchanges the code of a verified callback for a short-lived token (1 hour).
    ///
    /// The request is sent once: the code is single use, so a timeout or a dropped
    /// connection is returned, never retried. Only a failure to connect (nothing sent) is
    /// retried, twice at most. The long-lived exchange and refresh, which are GETs, are also
    /// retried on server errors and broken connections.
    ///
    /// # Errors
    ///
    /// [`TokenError::ConfigMismatch`]; the typed OAuth errors (`InvalidCode`,
    /// `CodeAlreadyUsed`, `RedirectUriMismatch`, `InvalidClient`, `NotATester`, `OAuth`);
    /// `Transport`, `Decode` or `UnexpectedResponse`.
    #[tracing::instrument(name = "igdisplay.exchange_code", skip_all, fields(platform = %self.config.platform))]
    pub async fn exchange_code(&self, grant: AuthorizationGrant) -> Result<TokenRecord, TokenError> {
        let request = self.code_exchange_request(&grant)?;
        let secrets = [grant.code.expose_secret(), self.app_secret()];
        let (body, sent_at): (CodeExchangeResponse, _) =
            self.call(request, RequestKind::SingleUse, &secrets).await?;
        let mut record = TokenRecord::new(
            body.user_id,
            body.access_token,
            TokenKind::ShortLived,
            self.config.platform,
            sent_at,
            SHORT_LIVED,
        );
        record.permissions = body
            .permissions
            .or_else(|| Some(grant.requested_scopes().to_vec()));
        record.issued_by = Some(self.config.endpoints.issuer());
        Ok(record)
    }

    /// Exchanges a short-lived token for a long-lived one (60 days). The expiry counts from
    /// the moment the request was sent.
    ///
    /// # Errors
    ///
    /// [`TokenError::Expired`] without a request when the token already expired;
    /// `Api` for Graph errors (an invalid token is 190); `Transport`, `Decode`, `UnexpectedResponse`.
    #[tracing::instrument(name = "igdisplay.exchange_long_lived", skip_all, fields(user = %short_lived.user_id))]
    pub async fn exchange_long_lived(&self, short_lived: &TokenRecord) -> Result<TokenRecord, TokenError> {
        if short_lived.is_expired(self.clock.now()) {
            return Err(TokenError::Expired {
                expired_at: short_lived.expires_at,
            });
        }
        let request = self.long_lived_request(&short_lived.access_token)?;
        self.long_lived_call(request, short_lived).await
    }

    /// Refreshes a long-lived token for another 60 days from now.
    ///
    /// Refused locally, with no request, when the token is short-lived, younger than 24
    /// hours or expired (see [`TokenRecord::check_refreshable`]).
    ///
    /// # Errors
    ///
    /// `NotLongLived`, `TooEarly`, `Expired` (no request); `Api`, `Transport`, `Decode`,
    /// `UnexpectedResponse`.
    #[tracing::instrument(name = "igdisplay.refresh", skip_all, fields(user = %token.user_id))]
    pub async fn refresh(&self, token: &TokenRecord) -> Result<TokenRecord, TokenError> {
        token.check_refreshable(self.clock.now())?;
        let request = self.refresh_request(&token.access_token)?;
        self.long_lived_call(request, token).await
    }

    async fn long_lived_call(
        &self,
        request: HttpRequest,
        from: &TokenRecord,
    ) -> Result<TokenRecord, TokenError> {
        let secrets = [from.access_token.expose_secret(), self.app_secret()];
        let (body, sent_at): (LongLivedTokenResponse, _) =
            self.call(request, RequestKind::Idempotent, &secrets).await?;
        // `expires_in` comes from the network: zero means the documented 60 days, and no
        // answer buys more than MAX_LIFETIME, so a hostile or broken server can neither make
        // the arithmetic overflow nor stop the token from ever being refreshed.
        let lifetime = if body.expires_in == 0 {
            LONG_LIVED
        } else {
            Duration::from_secs(body.expires_in).min(MAX_LIFETIME)
        };
        let mut record = TokenRecord::new(
            from.user_id.clone(),
            body.access_token,
            TokenKind::LongLived,
            from.platform,
            sent_at,
            lifetime,
        );
        record.permissions.clone_from(&from.permissions);
        record.issued_by = Some(self.config.endpoints.issuer());
        Ok(record)
    }

    /// Sends `request` through the one send loop ([`SendLoop`]) and reads the answer,
    /// retrying what [`TokenError::retry`] allows within the retry policy: for a single-use
    /// request only a connect failure, for a read also timeouts, broken connections and
    /// server errors. Returns the decoded body and the time the successful request was sent.
    async fn call<T: DeserializeOwned>(
        &self,
        request: HttpRequest,
        kind: RequestKind,
        secrets: &[&str],
    ) -> Result<(T, SystemTime), TokenError> {
        let call = TokenCall {
            request,
            kind,
            secrets,
            output: PhantomData,
        };
        let sender = SendLoop::new(
            &*self.backend,
            &*self.clock,
            &self.retry,
            &self.jitter,
            &self.retry_budget,
        );
        let sent = sender.send(self, &call).await?;
        Ok((sent.output, sent.sent_at))
    }
}

/// A token request as the send loop sees it: rendered as a copy of the built request, read
/// with the request's secrets masked in anything shown.
struct TokenCall<'a, T> {
    request: HttpRequest,
    kind: RequestKind,
    secrets: &'a [&'a str],
    output: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Exchange<()> for TokenCall<'_, T> {
    type Output = T;
    type Error = TokenError;

    fn kind(&self) -> RequestKind {
        self.kind
    }

    fn render(&self, _: &()) -> Result<HttpRequest, TokenError> {
        Ok(igdisplay_http::clone_request(&self.request))
    }

    fn parse(&self, response: &HttpResponse, _: &()) -> Result<T, TokenError> {
        parse(response, self.secrets, self.kind)
    }
}

/// The token client's side of each attempt: no pacing of its own (a rate limit is returned,
/// never waited for), a span per attempt, and every response's headers to the observer.
impl Gate<TokenError> for AuthClient {
    type Context = ();

    fn open(&self, at: SystemTime) -> impl Future<Output = Result<((), SystemTime), TokenError>> + Send {
        std::future::ready(Ok(((), at)))
    }

    fn span(&self, request: &HttpRequest, attempt: u32) -> tracing::Span {
        tracing::info_span!(
            "igdisplay.token.request",
            url = %igdisplay_http::redact_http_uri(request.uri()),
            attempt,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        )
    }

    fn observe(&self, response: &HttpResponse) {
        if let Some(observer) = &self.observer {
            (observer.0)(response.headers());
        }
    }
}

fn build(method: http::Method, uri: String, form: Option<String>) -> Result<HttpRequest, TokenError> {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::ACCEPT, "application/json");
    if form.is_some() {
        builder = builder.header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    builder
        .body(form.map(Bytes::from).unwrap_or_default())
        .map(HttpRequest::from)
        .map_err(|_| TokenError::InvalidEndpoint)
}

/// Decodes a success body, or maps an error body to its typed error.
fn parse<T: DeserializeOwned>(
    response: &HttpResponse,
    secrets: &[&str],
    request: RequestKind,
) -> Result<T, TokenError> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return igdisplay_model::decode(response.body(), secrets).map_err(|e| TokenError::Decode {
            path: e.path,
            reason: e.reason,
        });
    }
    Err(match ErrorBody::parse(response.body()) {
        Some(ErrorBody::OAuth(body)) => oauth_error(body),
        Some(ErrorBody::Graph(body)) => TokenError::Api {
            status,
            class: body.error.class(status),
            error: Box::new(body.error),
            request,
        },
        _ => TokenError::UnexpectedResponse {
            status,
            snippet: igdisplay_model::snippet(response.body(), secrets),
            request,
        },
    })
}

/// Maps the flat OAuth errors by their message, the only thing that tells them apart.
fn oauth_error(body: OAuthErrorBody) -> TokenError {
    let message = body.error_message.unwrap_or_default();
    let lower = message.to_ascii_lowercase();
    if lower.contains("has been used") || lower.contains("already used") || lower.contains("not found") {
        TokenError::CodeAlreadyUsed { message }
    } else if lower.contains("redirect_uri") || lower.contains("redirect uri") {
        TokenError::RedirectUriMismatch { message }
    } else if lower.contains("authorization code") || lower.contains("verification code") {
        TokenError::InvalidCode { message }
    } else if lower.contains("developer role") {
        TokenError::NotATester { message }
    } else if lower.contains("platform app")
        || lower.contains("client_secret")
        || lower.contains("client secret")
    {
        TokenError::InvalidClient { message }
    } else {
        TokenError::OAuth {
            code: body.code.unwrap_or_default(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_messages_map_to_their_typed_errors() {
        let cases = [
            ("Invalid authorization code", "InvalidCode"),
            ("This authorization code has been used", "CodeAlreadyUsed"),
            (
                "Matching code was not found or was already used",
                "CodeAlreadyUsed",
            ),
            (
                "Matching code was not found or was already used.",
                "CodeAlreadyUsed",
            ),
            (
                "Error validating verification code. Please make sure your redirect_uri is identical",
                "RedirectUriMismatch",
            ),
            ("Insufficient developer role", "NotATester"),
            ("Invalid platform app", "InvalidClient"),
            ("Error validating client secret.", "InvalidClient"),
            ("Something new", "OAuth"),
        ];
        for (message, expected) in cases {
            let body: OAuthErrorBody = serde_json::from_value(serde_json::json!({
                "error_type": "OAuthException", "code": 400, "error_message": message
            }))
            .unwrap();
            let error = oauth_error(body);
            assert!(format!("{error:?}").starts_with(expected), "{message}: {error:?}");
            assert!(!error.is_retryable() && !error.requires_reauthorization());
        }
    }
}

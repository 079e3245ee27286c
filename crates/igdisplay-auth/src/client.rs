//! [`AuthClient`]: the token requests, built as values and sent over any [`HttpBackend`].

use crate::flow::{AuthorizeBuilder, Binding, encode_pairs};
use crate::token::{LONG_LIVED, SHORT_LIVED};
use crate::{AppConfig, AuthorizationGrant, TokenError, TokenKind, TokenRecord};
use bytes::Bytes;
use igdisplay_http::{
    HttpBackend, HttpRequest, HttpResponse, SharedBackend, SharedClock, SystemClock, TransportErrorKind,
};
use igdisplay_model::{AccessToken, CodeExchangeResponse, ErrorBody, LongLivedTokenResponse, OAuthErrorBody};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How many times a request that never left (connect failure) is tried in all.
const MAX_ATTEMPTS: u32 = 3;
/// The first pause before a retry; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Runs the token side of the flow for one app: authorize URLs, the code exchange, the
/// long-lived exchange and refresh. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthClient {
    config: Arc<AppConfig>,
    backend: SharedBackend,
    clock: SharedClock,
}

impl AuthClient {
    /// A client for `config` that sends requests through `backend`, on the system clock.
    pub fn new(config: AppConfig, backend: SharedBackend) -> Self {
        Self {
            config: Arc::new(config),
            backend,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the clock (a `ManualClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
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
    pub fn code_exchange_request(&self, grant: &AuthorizationGrant) -> Result<HttpRequest, TokenError> {
        if grant.binding != Binding::of(&self.config) {
            return Err(TokenError::ConfigMismatch);
        }
        let body = encode_pairs(&[
            ("client_id", &self.config.app_id),
            ("client_secret", self.config.app_secret.expose_secret()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", &self.config.redirect_uri),
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
    /// Only when the configured base URL cannot form a request.
    pub fn long_lived_request(&self, short_lived: &AccessToken) -> Result<HttpRequest, TokenError> {
        let query = encode_pairs(&[
            ("grant_type", "ig_exchange_token"),
            ("client_secret", self.config.app_secret.expose_secret()),
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
        let query = encode_pairs(&[
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
        let (response, sent_at) = self.send(request, false).await?;
        let secrets = [grant.code.expose_secret(), self.config.app_secret.expose_secret()];
        let body: CodeExchangeResponse = parse(&response, &secrets)?;
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
        let (response, sent_at) = self.send(request, true).await?;
        let secrets = [
            from.access_token.expose_secret(),
            self.config.app_secret.expose_secret(),
        ];
        let body: LongLivedTokenResponse = parse(&response, &secrets)?;
        let lifetime = if body.expires_in == 0 {
            LONG_LIVED
        } else {
            Duration::from_secs(body.expires_in)
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
        Ok(record)
    }

    /// Sends `request`, retrying connect failures always and, when `idempotent`, server
    /// errors and broken connections too. Returns the response and the time it was sent.
    async fn send(
        &self,
        request: HttpRequest,
        idempotent: bool,
    ) -> Result<(HttpResponse, SystemTime), TokenError> {
        let mut attempt = 1;
        loop {
            let sent_at = self.clock.now();
            let outcome = self.backend.send(igdisplay_http::clone_request(&request)).await;
            let retry = match &outcome {
                Ok(response) => idempotent && response.status().is_server_error(),
                Err(error) => match error.kind() {
                    TransportErrorKind::Connect => true,
                    TransportErrorKind::Timeout | TransportErrorKind::Io | TransportErrorKind::Body => {
                        idempotent
                    }
                    _ => false,
                },
            };
            if !retry || attempt >= MAX_ATTEMPTS {
                return outcome.map(|r| (r, sent_at)).map_err(TokenError::Transport);
            }
            tracing::debug!(attempt, "retrying token request");
            self.clock.sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
            attempt += 1;
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
        .map_err(|_| TokenError::UnexpectedResponse {
            status: 0,
            snippet: "the configured endpoint does not form a valid request URI".to_owned(),
        })
}

/// Decodes a success body, or maps an error body to its typed error.
fn parse<T: DeserializeOwned>(response: &HttpResponse, secrets: &[&str]) -> Result<T, TokenError> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        if let Ok(value) = serde_json::from_slice(response.body()) {
            return Ok(value);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(response.body());
        return serde_path_to_error::deserialize(&mut deserializer).map_err(|e| TokenError::Decode {
            path: e.path().to_string(),
            reason: mask(&e.inner().to_string(), secrets),
        });
    }
    Err(match ErrorBody::parse(response.body()) {
        Some(ErrorBody::OAuth(body)) => oauth_error(body),
        Some(ErrorBody::Graph(body)) => TokenError::Api {
            status,
            class: body.error.class(status),
            error: Box::new(body.error),
        },
        _ => TokenError::UnexpectedResponse {
            status,
            snippet: snippet(response.body(), secrets),
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

/// The first 160 characters of a body, as text, with the request's secrets masked.
fn snippet(body: &[u8], secrets: &[&str]) -> String {
    let text: String = String::from_utf8_lossy(body).chars().take(160).collect();
    mask(&text, secrets)
}

fn mask(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret, igdisplay_http::MASK)
        })
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

    #[test]
    fn snippets_mask_the_secrets_of_the_request() {
        let shown = snippet(
            b"<html>code ABCDEF rejected for secret XYZW1</html>",
            &["ABCDEF", "XYZW1", "ab"],
        );
        assert_eq!(
            shown,
            "<html>code [redacted] rejected for secret [redacted]</html>"
        );
        assert_eq!(snippet(&[b'a'; 500], &[]).len(), 160);
    }
}

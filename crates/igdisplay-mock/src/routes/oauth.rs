//! The authorize window and the token endpoints, with every rule of the reference: exact
//! redirect URIs, required scopes, testers in development mode, single-use codes bound to
//! client and redirect URI, and the token lifetimes.
//!
//! What the mock answers, and where the reference says Instagram does the same:
//!
//! | situation | answer | reference |
//! | --- | --- | --- |
//! | wrong `client_id` in the window | flat OAuth error `Invalid platform app` | A.3, B.3 |
//! | redirect URI not registered byte for byte | `Invalid redirect_uri ...` | A.3 |
//! | unknown scope, or the required one missing | `Invalid scope: [...]` / `Invalid request: ... Invalid scope` | A.2, B.2 |
//! | not a tester, app in development mode | `Insufficient developer role` | A.3 |
//! | personal account on Instagram Login | a refusal naming professional accounts | B.1 |
//! | Cancel | redirect with `error=access_denied&error_reason=user_denied` | A.4 |
//! | Continue | redirect with `code=...&state=...#_` | A.4 |
//! | code exchange, wrong secret | `Error validating client secret.` | A.5 |
//! | code reused | Basic Display: `This authorization code has been used`; Instagram Login: `Matching code was not found or was already used`; the first use's tokens revoked | A.5, B.4 |
//! | code older than an hour | `This authorization code has expired` | A.5 |
//! | redirect URI differs at exchange | `Error validating verification code. ... redirect_uri is identical ...` | A.5 |
//! | long-lived exchange with a long-lived token | code 100 | A.6 |
//! | refresh of a token younger than 24 h, or short-lived | code 100 | A.7 |
//! | expired token anywhere | 190 with both dates in the message; no subcode (recorded), or 463 on request | A.13 |
//! | revoked token | 190, subcode 460 | A.13 |
//!
//! Flat OAuth errors are `{"error_type": "OAuthException", "code": 400, "error_message": ...}`
//! (the window and `api.instagram.com`); Graph errors are `{"error": {...}}` (`graph.instagram.com`).

use crate::clock::facebook_date;
use crate::seed::MockPlatform;
use crate::state::{Code, HOUR, LONG_LIVED_SECONDS, Token, TokenKind, TokenShape, World};
use crate::wire::{GraphFailure, Reply, Req, encode, escape_html};
use serde_json::{Value, json};

/// The parameters of an authorize request, from the query (GET) or the form (POST). Missing
/// values read as empty and fail the checks below with Instagram's messages; `app_id` is
/// accepted for `client_id`, as the older documentation spelled it.
struct Authorize {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    response_type: String,
    state: Option<String>,
}

impl Authorize {
    fn from(pairs: &[(String, String)]) -> Self {
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Self {
            client_id: get("client_id").or_else(|| get("app_id")).unwrap_or_default(),
            redirect_uri: get("redirect_uri").unwrap_or_default(),
            scopes: get("scope")
                .unwrap_or_default()
                .split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            response_type: get("response_type").unwrap_or_default(),
            state: get("state"),
        }
    }
}

/// The scopes Basic Display knows (reference A.2); `user_profile` is required.
const BASIC_DISPLAY_SCOPES: [&str; 2] = ["user_profile", "user_media"];
/// The scopes Instagram Login knows (reference B.2); `instagram_business_basic` is required.
const INSTAGRAM_LOGIN_SCOPES: [&str; 5] = [
    "instagram_business_basic",
    "instagram_business_content_publish",
    "instagram_business_manage_comments",
    "instagram_business_manage_messages",
    "instagram_business_manage_insights",
];

impl World {
    /// Every scope of the platform, as the window knows them: what a token generated in the
    /// App Dashboard carries (an app that has them all, as a test wants).
    pub(crate) fn all_scopes(&self) -> Vec<String> {
        let scopes: &[&str] = match self.options.platform {
            MockPlatform::BasicDisplay => &BASIC_DISPLAY_SCOPES,
            MockPlatform::InstagramLogin => &INSTAGRAM_LOGIN_SCOPES,
        };
        scopes.iter().map(|s| (*s).to_owned()).collect()
    }
}

/// What the user does in the window.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Choice<'a> {
    /// "Continue as @username".
    Approve(&'a str),
    /// "Cancel".
    Deny,
}

impl World {
    /// The window's answer to `choice` on the authorize request `pairs`: where the browser is
    /// sent, or the error message the window shows instead.
    pub(crate) fn decide_window(
        &mut self,
        pairs: &[(String, String)],
        choice: Choice<'_>,
    ) -> Result<String, String> {
        let request = Authorize::from(pairs);
        self.check_authorize(&request)?;
        match choice {
            Choice::Approve(username) => self.approve(&request, username),
            Choice::Deny => Ok(denied(&request)),
        }
    }

    /// Validates an authorize request; the error is what the window shows.
    ///
    /// In Instagram's order: the client id must be the app's ("Invalid platform app"); the
    /// redirect URI must equal a registered one byte for byte (a trailing slash, case, an extra
    /// query or http for https all fail); every scope must be the platform's and the required
    /// one present; `response_type` must be `code`.
    fn check_authorize(&self, request: &Authorize) -> Result<(), String> {
        if request.client_id != self.app.id {
            return Err("Invalid platform app".to_owned());
        }
        if !self.app.redirect_uris.contains(&request.redirect_uri) {
            return Err(
                "Invalid redirect_uri: it must match one of the app's Valid OAuth Redirect URIs exactly"
                    .to_owned(),
            );
        }
        let (known, required): (&[&str], &str) = match self.options.platform {
            MockPlatform::BasicDisplay => (&BASIC_DISPLAY_SCOPES, "user_profile"),
            MockPlatform::InstagramLogin => (&INSTAGRAM_LOGIN_SCOPES, "instagram_business_basic"),
        };
        let unknown: Vec<&str> = request
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !known.contains(s))
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "Invalid request: Request parameters are invalid: Invalid scope: {}",
                unknown.join(",")
            ));
        }
        if !request.scopes.iter().any(|s| s == required) {
            return Err(format!("Invalid scope: [{}]", request.scopes.join(",")));
        }
        if request.response_type != "code" {
            return Err(format!("Invalid response type: {}", request.response_type));
        }
        Ok(())
    }

    /// `GET /oauth/authorize`: the window, or (with `mock_approve_as` / `mock_deny`) its
    /// answer straight away.
    pub(crate) fn authorize_page(&mut self, req: &Req) -> Reply {
        let choice = match (req.param("mock_deny"), req.param("mock_approve_as")) {
            (Some(_), _) => Choice::Deny,
            (None, Some(username)) => Choice::Approve(username),
            (None, None) => {
                let request = Authorize::from(&req.query.to_pairs());
                return match self.check_authorize(&request) {
                    Ok(()) => Reply::html(200, self.window(&request)),
                    Err(message) => Reply::oauth_error(&message),
                };
            }
        };
        window_reply(self.decide_window(&req.query.to_pairs(), choice))
    }

    /// `POST /oauth/authorize`: the user's click in the window.
    pub(crate) fn authorize_decision(&mut self, req: &Req) -> Reply {
        let form = req.form();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let choice = match (field("cancel"), field("user")) {
            (Some(_), _) => Choice::Deny,
            (None, Some(username)) => Choice::Approve(username),
            (None, None) => return Reply::oauth_error("Missing user"),
        };
        window_reply(self.decide_window(&form, choice))
    }

    /// The user pressed "Continue as @username": the redirect with a fresh code, or the
    /// window's refusal. In development mode only accepted testers may log in, and Instagram
    /// Login refuses personal accounts. The code is single use, valid for an hour, and bound to
    /// the redirect URI and scopes of this request; the redirect carries the state back and
    /// ends in `#_`, as Instagram's does (reference A.4).
    fn approve(&mut self, request: &Authorize, username: &str) -> Result<String, String> {
        let Some(user) = self.user_by_name(username) else {
            return Err("Invalid user".to_owned());
        };
        if !self.app.live_mode && !self.users[user].tester {
            return Err("Insufficient developer role".to_owned());
        }
        if self.options.platform == MockPlatform::InstagramLogin
            && self.users[user].account_type == "PERSONAL"
        {
            return Err(
                "Instagram Login needs a professional account (Business or Creator); switch the account type in the Instagram app"
                    .to_owned(),
            );
        }
        let code = format!("AQ{}", self.rng.token(190));
        self.codes.insert(
            code.clone(),
            Code {
                user,
                redirect_uri: request.redirect_uri.clone(),
                scopes: request.scopes.clone(),
                issued_at: self.now(),
                used: false,
            },
        );
        let mut location = with_query(&request.redirect_uri, &format!("code={}", encode(&code)));
        if let Some(state) = &request.state {
            location.push_str(&format!("&state={}", encode(state)));
        }
        location.push_str("#_");
        Ok(location)
    }

    /// The window's HTML: the app's name, the scopes asked, one "Continue as @user" button per
    /// seeded user and Cancel, in one form that posts back to `/oauth/authorize`. No script,
    /// so any browser (or a test with a plain HTTP client) can drive it.
    fn window(&self, request: &Authorize) -> String {
        let hidden = [
            ("client_id", request.client_id.as_str()),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("response_type", request.response_type.as_str()),
            ("scope", &request.scopes.join(",")),
            ("state", request.state.as_deref().unwrap_or_default()),
        ]
        .iter()
        .filter(|(name, value)| *name != "state" || !value.is_empty())
        .map(|(name, value)| {
            format!(
                r#"<input type="hidden" name="{name}" value="{}">"#,
                escape_html(value)
            )
        })
        .collect::<String>();
        let scopes = request
            .scopes
            .iter()
            .map(|s| format!("<li>{}</li>", escape_html(s)))
            .collect::<String>();
        let users = self
            .users
            .iter()
            .map(|u| {
                format!(
                    r#"<button type="submit" name="user" value="{0}" class="continue">Continue as @{0}</button>"#,
                    escape_html(&u.username)
                )
            })
            .collect::<String>();
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {app} · Instagram (mock)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#262626}}
h1{{font-size:1.25rem}}button{{display:block;width:100%;margin:.5rem 0;padding:.7rem;font-size:1rem;border-radius:8px;border:1px solid #dbdbdb;background:#fff;cursor:pointer}}
.continue{{background:#0095f6;color:#fff;border:0}}small{{color:#8e8e8e}}</style></head>
<body><h1>{app} would like to access your Instagram account</h1>
<p>It asks for these permissions:</p><ul id="permissions">{scopes}</ul>
<form method="post" action="/oauth/authorize">{hidden}{users}
<button type="submit" name="cancel" value="1" id="cancel">Cancel</button></form>
<p><small>This is igdisplay-mock, a fake Instagram for tests ({platform}).</small></p></body></html>"#,
            app = escape_html(&self.app.name),
            platform = self.options.platform.as_str(),
        )
    }

    /// `POST /oauth/access_token`: code → short-lived token (reference A.5, B.4).
    ///
    /// Every parameter is required; the client id and secret must be the app's; the code must
    /// exist, be unused, younger than an hour, and come back with the same redirect URI. A
    /// second use of a code is refused with the platform's message and revokes every token the
    /// first use gave (the OAuth 2.0 rule for a replayed code). The answer's shape is the
    /// platform's: Basic Display's `user_id` is a bare JSON number above 2^53; Instagram Login
    /// answers flat with a permissions array, or (with [`TokenShape::Wrapped`]) in `data[]`
    /// with a string id and comma-separated permissions, as its documentation shows.
    pub(crate) fn exchange_code(&mut self, req: &Req) -> Reply {
        let form = req.form();
        let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        for name in ["client_id", "client_secret", "grant_type", "redirect_uri", "code"] {
            if field(name).is_none_or(str::is_empty) {
                return Reply::oauth_error(&format!("Missing required parameter: {name}"));
            }
        }
        if field("client_id") != Some(self.app.id.as_str()) {
            return Reply::oauth_error("Invalid platform app");
        }
        if field("client_secret") != Some(self.app.secret.as_str()) {
            return Reply::oauth_error("Error validating client secret.");
        }
        if field("grant_type") != Some("authorization_code") {
            return Reply::oauth_error("Unsupported grant_type: use authorization_code");
        }
        let code_text = field("code").unwrap_or_default().to_owned();
        let redirect_uri = field("redirect_uri").unwrap_or_default().to_owned();
        let now = self.now();
        let reused = match self.options.platform {
            MockPlatform::BasicDisplay => "This authorization code has been used",
            MockPlatform::InstagramLogin => "Matching code was not found or was already used",
        };
        let Some(code) = self.codes.get_mut(&code_text) else {
            return Reply::oauth_error(match self.options.platform {
                MockPlatform::BasicDisplay => "Invalid authorization code",
                MockPlatform::InstagramLogin => reused,
            });
        };
        if code.used {
            // A second use is an attack or a double callback: revoke what the first one gave.
            for token in self.tokens.values_mut() {
                if token.code.as_deref() == Some(code_text.as_str()) {
                    token.revoked = true;
                }
            }
            return Reply::oauth_error(reused);
        }
        if now >= code.issued_at + HOUR {
            return Reply::oauth_error("This authorization code has expired");
        }
        if code.redirect_uri != redirect_uri {
            return Reply::oauth_error(
                "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            );
        }
        code.used = true;
        let (user, scopes) = (code.user, code.scopes.clone());
        let token = self.issue_token(user, TokenKind::ShortLived, scopes.clone(), Some(code_text));
        // As recorded on Basic Display: the exchange names the id `paging.next` links carry,
        // while `/me` answers the app-scoped one (reference A.15).
        let user_id: u64 = match self.options.platform {
            MockPlatform::BasicDisplay => self.users[user].ig_id.parse().unwrap_or_default(),
            MockPlatform::InstagramLogin => self.users[user].id.parse().unwrap_or_default(),
        };
        let body = match (self.options.platform, self.options.token_shape) {
            (MockPlatform::BasicDisplay, _) => json!({"access_token": token, "user_id": user_id}),
            (MockPlatform::InstagramLogin, TokenShape::Flat) => {
                json!({"access_token": token, "user_id": user_id, "permissions": scopes})
            }
            (MockPlatform::InstagramLogin, TokenShape::Wrapped) => json!({"data": [{
                "access_token": token, "user_id": user_id.to_string(), "permissions": scopes.join(","),
            }]}),
        };
        Reply::json(200, &body)
    }

    /// Looks up a token for a Graph call: unknown, revoked and expired tokens are 190s.
    ///
    /// Unknown is plain 190; revoked (a replayed code, or a test's doing) is subcode 460 with
    /// the password-change message; expired is 190 with both dates in Facebook's wording, read
    /// from the mock's clock, and no subcode (graph.instagram.com's recorded form) or subcode
    /// 463 (graph.facebook.com's, with [`ExpiredTokenForm::Facebook`](crate::ExpiredTokenForm)).
    pub(crate) fn check_token(&self, token: &str) -> Result<(&Token, usize), GraphFailure> {
        let Some(record) = self.tokens.get(token) else {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                190,
                "Invalid OAuth access token.",
            ));
        };
        if record.revoked {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                190,
                "Error validating access token: The session has been invalidated because the user changed their \
                 password or Facebook has changed the session for security reasons.",
            )
            .subcode(460));
        }
        let now = self.now();
        if now >= record.expires_at {
            let expired = GraphFailure::new(
                400,
                "OAuthException",
                190,
                format!(
                    "Error validating access token: Session has expired on {}. The current time is {}.",
                    facebook_date(record.expires_at),
                    facebook_date(now)
                ),
            );
            return Err(match self.options.expired_token {
                crate::ExpiredTokenForm::Instagram => expired,
                crate::ExpiredTokenForm::Facebook => expired.subcode(463),
            });
        }
        Ok((record, record.user))
    }

    /// `GET /access_token?grant_type=ig_exchange_token`: short-lived → long-lived (reference
    /// A.6, B.5). GET only; the app secret must match (code 101 otherwise) and the token must be
    /// a live short-lived one. The long-lived token descends from the same code, so a replay of
    /// that code revokes it too.
    pub(crate) fn exchange_long_lived(&mut self, req: &Req) -> Result<Reply, GraphFailure> {
        if req.method != http::Method::GET {
            return Err(unsupported_method(&req.method));
        }
        if req.param("grant_type") != Some("ig_exchange_token") {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                100,
                "Unsupported grant_type: use ig_exchange_token",
            ));
        }
        if req.param("client_secret") != Some(self.app.secret.as_str()) {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                101,
                "Error validating client secret.",
            ));
        }
        let token = req.param("access_token").unwrap_or_default();
        let (record, user) = self.check_token(token)?;
        if record.kind != TokenKind::ShortLived {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                100,
                "The access token is already long-lived: refresh it instead",
            ));
        }
        let (scopes, code) = (record.scopes.clone(), record.code.clone());
        let long = self.issue_token(user, TokenKind::LongLived, scopes, code);
        Ok(long_lived(&long))
    }

    /// `GET /refresh_access_token?grant_type=ig_refresh_token`: another 60 days (reference
    /// A.7, B.5). Only a live long-lived token at least 24 hours old is refreshed; on Instagram
    /// Login it also needs `instagram_business_basic`. The old token stays valid until it
    /// expires, as on Instagram.
    pub(crate) fn refresh(&mut self, req: &Req) -> Result<Reply, GraphFailure> {
        if req.method != http::Method::GET {
            return Err(unsupported_method(&req.method));
        }
        if req.param("grant_type") != Some("ig_refresh_token") {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                100,
                "Unsupported grant_type: use ig_refresh_token",
            ));
        }
        let token = req.param("access_token").unwrap_or_default();
        let (record, user) = self.check_token(token)?;
        if record.kind != TokenKind::LongLived {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                100,
                "Only long-lived access tokens can be refreshed: exchange this one first",
            ));
        }
        if self.now() < record.issued_at + 24 * HOUR {
            return Err(GraphFailure::new(
                400,
                "OAuthException",
                100,
                "The access token must be at least 24 hours old to be refreshed",
            ));
        }
        if self.options.platform == MockPlatform::InstagramLogin
            && !record.scopes.iter().any(|s| s == "instagram_business_basic")
        {
            return Err(GraphFailure::new(
                400,
                "IGApiException",
                10,
                "Application does not have permission for this action",
            ));
        }
        let (scopes, code) = (record.scopes.clone(), record.code.clone());
        let fresh = self.issue_token(user, TokenKind::LongLived, scopes, code);
        *self.refreshes.entry(user).or_default() += 1;
        Ok(long_lived(&fresh))
    }
}

/// The long-lived answer: the token, `token_type: bearer` and `expires_in` of 60 days.
fn long_lived(token: &str) -> Reply {
    let body: Value =
        json!({"access_token": token, "token_type": "bearer", "expires_in": LONG_LIVED_SECONDS});
    Reply::json(200, &body)
}

/// Code 100 for a method the endpoint does not serve, worded as Instagram words it.
pub(crate) fn unsupported_method(method: &http::Method) -> GraphFailure {
    GraphFailure::new(
        400,
        "IGApiException",
        100,
        format!(
            "Unsupported request - method type: {}",
            method.as_str().to_ascii_lowercase()
        ),
    )
}

/// The window's decision as an HTTP answer: a 302 redirect, or the flat OAuth error body that
/// Instagram shows inside the window instead of redirecting.
fn window_reply(decision: Result<String, String>) -> Reply {
    match decision {
        Ok(location) => Reply::redirect(location),
        Err(message) => Reply::oauth_error(&message),
    }
}

/// The redirect of a cancelled login: `error=access_denied&error_reason=user_denied` and the
/// description Instagram sends, with the state (reference A.4).
fn denied(request: &Authorize) -> String {
    let mut query =
        "error=access_denied&error_reason=user_denied&error_description=The+user+denied+your+request"
            .to_owned();
    if let Some(state) = &request.state {
        query.push_str(&format!("&state={}", encode(state)));
    }
    with_query(&request.redirect_uri, &query)
}

/// `uri` with `query` appended after `?`, or after `&` when it already has a query.
fn with_query(uri: &str, query: &str) -> String {
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}

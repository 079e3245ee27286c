//! `/_mock/*`: the test-control API. Health, state, reset, clock, journal, faults, stubs,
//! redirect URIs, callback URLs, dashboard-style tokens and signed callbacks.
//!
//! [`ENDPOINTS`] is the one list of them: `GET /_mock/` serves it, `World::control` has one
//! arm per entry in the same order, and a unit test checks that the crate README's table
//! documents exactly these endpoints. Add an endpoint in all three places.
//!
//! The control API trusts its caller (it is a test double on loopback): it returns the app
//! secret in `/_mock/state` and mints tokens on request. Every number it reads is checked
//! (a clock moved past the year 9999 stops there), and a bad request is a 400 that says what
//! to send.

use crate::clock::{MockClock, instagram_timestamp, parse_rfc3339};
use crate::faults::{Fault, Stub};
use crate::seed::{SeedKind, SeedMedia};
use crate::state::{TokenKind, World};
use crate::wire::{Reply, Req};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

/// One endpoint of the control API: what `GET /_mock/` lists and the README documents.
pub(crate) struct Endpoint {
    pub(crate) method: &'static str,
    pub(crate) path: &'static str,
    pub(crate) input: &'static str,
    pub(crate) answer: &'static str,
}

/// Every control endpoint, in the order the README documents them.
pub(crate) const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "GET",
        path: "/_mock/",
        input: "",
        answer: "this list: [{method, path, input, answer}]",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/health",
        input: "",
        answer: "{status: \"ok\", platform, requests}",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/state",
        input: "",
        answer: "{platform, base_url, clock, app: {id, secret, name, redirect_uris, live_mode, deauthorize_callback, data_deletion_callback}, users: [{username, id, user_id, account_type, tester, media_count}], testers, codes, tokens}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/reset",
        input: "",
        answer: "{reset: true}",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/ca.pem",
        input: "",
        answer: "the test root of an HTTPS mock, PEM (404 over http)",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/clock",
        input: "",
        answer: "{unix, timestamp}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/clock/advance",
        input: "?seconds=N (may be negative)",
        answer: "{unix, timestamp}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/clock/set",
        input: "?unix=N or ?iso=2026-01-15T12:00:00Z",
        answer: "{unix, timestamp}",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/journal",
        input: "",
        answer: "{total, entries: [{method, path, query, status, at}]} (secrets masked)",
    },
    Endpoint {
        method: "DELETE",
        path: "/_mock/journal",
        input: "",
        answer: "{cleared: true}",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/faults",
        input: "",
        answer: "[fault]",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/faults",
        input: "{path_prefix, kind: {type, ...}, times?, probability?}",
        answer: "{faults: count}",
    },
    Endpoint {
        method: "DELETE",
        path: "/_mock/faults",
        input: "",
        answer: "{faults: 0}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/stubs",
        input: "{method, path, status, body, content_type?, headers?, times?}",
        answer: "{stubs: count}",
    },
    Endpoint {
        method: "DELETE",
        path: "/_mock/stubs",
        input: "",
        answer: "{stubs: 0}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/redirect_uris",
        input: "{uri}",
        answer: "{redirect_uris: [...]}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/callbacks",
        input: "{deauthorize?, data_deletion?, webhook?}",
        answer: "{deauthorize, data_deletion, webhook}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/tokens",
        input: "{username, kind?: \"long_lived\" | \"short_lived\"}",
        answer: "{access_token, user_id, expires_in}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/tokens/bulk",
        input: "{prefix, kind?: \"long_lived\" | \"short_lived\"}",
        answer: "{tokens: [{access_token, user_id, expires_in}, ...]}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/tokens/revoke",
        input: "{username}",
        answer: "{revoked: n}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/media",
        input: "{username, kind?: \"IMAGE\" | \"VIDEO\" | \"CAROUSEL_ALBUM\", caption?}",
        answer: "{id}",
    },
    Endpoint {
        method: "DELETE",
        path: "/_mock/media/{id}",
        input: "",
        answer: "{deleted: id}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/media/{id}/caption",
        input: "{caption?}",
        answer: "{id, caption}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/comments",
        input: "{media_id, text, username?}",
        answer: "{id, delivered?, attempts?, status?}",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/refreshes",
        input: "",
        answer: "{user_id: successful refreshes, ...}",
    },
    Endpoint {
        method: "GET",
        path: "/_mock/signed_request",
        input: "?username=",
        answer: "{signed_request}",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/deauthorize",
        input: "?username=",
        answer: "{status, body} of the app's callback",
    },
    Endpoint {
        method: "POST",
        path: "/_mock/data_deletion",
        input: "?username=",
        answer: "{status, body} of the app's callback",
    },
];

/// What a control request asks the server to do.
pub(crate) enum Control {
    /// Answer now.
    Reply(Reply),
    /// POST `form` to `url` (a callback of the app), then answer with what it said.
    Deliver { url: String, form: String },
    /// POST a signed webhook notification to the app's webhook callback, retrying a failed
    /// delivery, then answer with how it went.
    Webhook(WebhookDelivery),
}

/// A webhook notification to deliver, as Meta does.
pub(crate) struct WebhookDelivery {
    /// The app's webhook callback.
    pub(crate) url: String,
    /// The notification's JSON.
    pub(crate) body: String,
    /// Its `X-Hub-Signature-256`.
    pub(crate) signature: String,
    /// The control call's answer, to which the delivery's outcome is added.
    pub(crate) answer: Value,
}

/// `400 {"error": message}`: the message says what to send instead.
pub(super) fn bad_request(message: &str) -> Control {
    Control::Reply(Reply::json(400, &json!({"error": message})))
}

/// `200` with `value`.
pub(super) fn ok(value: &Value) -> Control {
    Control::Reply(Reply::json(200, value))
}

impl World {
    /// Answers `/_mock/{rest}`: one arm per entry of [`ENDPOINTS`], in the same order.
    /// `initial_clock` is where a reset puts the clock back.
    pub(crate) fn control(&mut self, req: &Req, rest: &[&str], initial_clock: MockClock) -> Control {
        match rest.first().copied() {
            Some("clock") => self.clock_control(req, rest),
            Some("journal" | "faults" | "stubs") => self.recording_control(req, rest),
            Some("tokens" | "media") => self.library_control(req, rest),
            Some("comments") => self.add_comment(req),
            Some("redirect_uris" | "callbacks" | "signed_request" | "deauthorize" | "data_deletion") => {
                self.app_control(req, rest)
            }
            _ => self.server_control(req, rest, initial_clock),
        }
    }

    /// The endpoint list, health, state, reset, the test root and the refresh counts.
    fn server_control(&mut self, req: &Req, rest: &[&str], initial_clock: MockClock) -> Control {
        match (req.method.as_str(), rest) {
            ("GET", []) => ok(&Value::Array(
                ENDPOINTS
                    .iter()
                    .map(
                        |e| json!({"method": e.method, "path": e.path, "input": e.input, "answer": e.answer}),
                    )
                    .collect(),
            )),
            ("GET", ["health"]) => ok(
                &json!({"status": "ok", "platform": self.options.platform.as_str(),
                "requests": self.journal.total()}),
            ),
            ("GET", ["state"]) => ok(&self.state_json()),
            ("POST", ["reset"]) => {
                self.reset(initial_clock);
                ok(&json!({"reset": true}))
            }
            ("GET", ["ca.pem"]) => match &self.root_pem {
                Some(pem) => Control::Reply(Reply::new(200, "application/x-pem-file", pem.clone())),
                None => Control::Reply(Reply::json(
                    404,
                    &json!({"error": "this mock serves http: start it with https"}),
                )),
            },
            ("GET", ["refreshes"]) => ok(&json!(self.refresh_counts())),
            _ => not_found(),
        }
    }

    /// The clock: read, advanced, set.
    fn clock_control(&mut self, req: &Req, rest: &[&str]) -> Control {
        match (req.method.as_str(), rest) {
            ("GET", ["clock"]) => ok(&self.clock_json()),
            ("POST", ["clock", "advance"]) => {
                match req.param("seconds").and_then(|s| s.parse::<i64>().ok()) {
                    Some(seconds) => {
                        self.clock.advance(seconds);
                        ok(&self.clock_json())
                    }
                    None => bad_request("give ?seconds=N"),
                }
            }
            ("POST", ["clock", "set"]) => {
                let unix = req
                    .param("unix")
                    .and_then(|s| s.parse::<i64>().ok())
                    .or_else(|| req.param("iso").and_then(parse_rfc3339));
                match unix {
                    Some(unix) => {
                        self.clock.set(unix);
                        ok(&self.clock_json())
                    }
                    None => bad_request("give ?unix=N or ?iso=2026-01-15T12:00:00Z"),
                }
            }
            _ => not_found(),
        }
    }

    /// The journal, the faults and the stubs.
    fn recording_control(&mut self, req: &Req, rest: &[&str]) -> Control {
        match (req.method.as_str(), rest) {
            ("GET", ["journal"]) => {
                ok(&json!({"total": self.journal.total(), "entries": self.journal.entries()}))
            }
            ("DELETE", ["journal"]) => {
                self.journal.clear();
                ok(&json!({"cleared": true}))
            }
            ("GET", ["faults"]) => ok(&json!(self.faults)),
            ("POST", ["faults"]) => match serde_json::from_slice::<Fault>(&req.body) {
                Ok(fault) => {
                    self.faults.push(fault);
                    ok(&json!({"faults": self.faults.len()}))
                }
                Err(e) => bad_request(&format!("not a fault: {e}")),
            },
            ("DELETE", ["faults"]) => {
                self.faults.clear();
                ok(&json!({"faults": 0}))
            }
            ("POST", ["stubs"]) => match serde_json::from_slice::<Stub>(&req.body) {
                Ok(stub) => {
                    self.stubs.push(stub);
                    ok(&json!({"stubs": self.stubs.len()}))
                }
                Err(e) => bad_request(&format!("not a stub: {e}")),
            },
            ("DELETE", ["stubs"]) => {
                self.stubs.clear();
                ok(&json!({"stubs": 0}))
            }
            _ => not_found(),
        }
    }

    /// Tokens minted and revoked as the App Dashboard would; posts published, deleted, edited.
    fn library_control(&mut self, req: &Req, rest: &[&str]) -> Control {
        match (req.method.as_str(), rest) {
            ("POST", ["tokens"]) => {
                let username = body_field(&req.body, "username").unwrap_or_default();
                let long = body_field(&req.body, "kind").is_none_or(|k| k != "short_lived");
                match self.dashboard_token(&username, long) {
                    Some(issued) => ok(&issued),
                    None => bad_request("no such user"),
                }
            }
            ("POST", ["tokens", "revoke"]) => {
                let username = body_field(&req.body, "username").unwrap_or_default();
                match self.revoke_tokens(&username) {
                    Some(revoked) => ok(&json!({"revoked": revoked})),
                    None => bad_request("no such user"),
                }
            }
            ("POST", ["media"]) => {
                let username = body_field(&req.body, "username").unwrap_or_default();
                let kind = match body_field(&req.body, "kind").as_deref() {
                    None | Some("IMAGE") => SeedKind::Image,
                    Some("VIDEO") => SeedKind::Video,
                    Some("CAROUSEL_ALBUM") => SeedKind::Album,
                    Some(_) => return bad_request("kind is IMAGE, VIDEO or CAROUSEL_ALBUM"),
                };
                let caption = body_field(&req.body, "caption");
                let mut post = SeedMedia::new(kind, caption.as_deref());
                if kind == SeedKind::Album {
                    post.children = vec![SeedKind::Image, SeedKind::Image];
                }
                match self.publish(&username, &post) {
                    Some(id) => ok(&json!({"id": id})),
                    None => bad_request("no such user"),
                }
            }
            ("DELETE", ["media", id]) => {
                if self.delete_media(id) {
                    ok(&json!({"deleted": id}))
                } else {
                    bad_request("no post has this id")
                }
            }
            ("POST", ["media", id, "caption"]) => {
                let caption = body_field(&req.body, "caption");
                if self.set_caption(id, caption.clone()) {
                    ok(&json!({"id": id, "caption": caption}))
                } else {
                    bad_request("no post has this id")
                }
            }
            ("POST", ["tokens", "bulk"]) => {
                let prefix = body_field(&req.body, "prefix").unwrap_or_default();
                let long = body_field(&req.body, "kind").is_none_or(|k| k != "short_lived");
                ok(&json!({"tokens": self.dashboard_tokens(&prefix, long)}))
            }
            _ => not_found(),
        }
    }

    /// The app's redirect URIs and callbacks, and Meta's callbacks sent to it.
    fn app_control(&mut self, req: &Req, rest: &[&str]) -> Control {
        match (req.method.as_str(), rest) {
            ("POST", ["redirect_uris"]) => match body_field(&req.body, "uri") {
                Some(uri) => {
                    self.add_redirect_uri(&uri);
                    ok(&json!({"redirect_uris": self.app.redirect_uris}))
                }
                None => bad_request("give {\"uri\": \"...\"}"),
            },
            ("POST", ["callbacks"]) => {
                self.app.deauthorize_callback = body_field(&req.body, "deauthorize");
                self.app.data_deletion_callback = body_field(&req.body, "data_deletion");
                self.webhook_callback = body_field(&req.body, "webhook");
                ok(&json!({
                    "deauthorize": self.app.deauthorize_callback,
                    "data_deletion": self.app.data_deletion_callback,
                    "webhook": self.webhook_callback,
                }))
            }
            ("GET", ["signed_request"]) => match req.param("username").and_then(|u| self.signed_request(u)) {
                Some(value) => ok(&json!({"signed_request": value})),
                None => bad_request("give ?username= of a seeded user"),
            },
            ("POST", ["deauthorize" | "data_deletion"]) => {
                let url = match rest {
                    ["deauthorize"] => self.app.deauthorize_callback.clone(),
                    _ => self.app.data_deletion_callback.clone(),
                };
                let Some(url) = url else {
                    return bad_request("no callback URL registered: POST /_mock/callbacks first");
                };
                match req.param("username").and_then(|u| self.signed_request(u)) {
                    Some(value) => Control::Deliver {
                        url,
                        form: format!("signed_request={}", crate::wire::encode(&value)),
                    },
                    None => bad_request("give ?username= of a seeded user"),
                }
            }
            _ => not_found(),
        }
    }

    /// `GET /_mock/state`: the app (its secret included: this is a test double), the users
    /// with both ids, the testers, and how many codes and tokens are live.
    pub(crate) fn state_json(&self) -> Value {
        json!({
            "platform": self.options.platform.as_str(),
            "base_url": self.base,
            "clock": self.clock_json(),
            "app": {
                "id": self.app.id, "secret": self.app.secret, "name": self.app.name,
                "redirect_uris": self.app.redirect_uris, "live_mode": self.app.live_mode,
                "deauthorize_callback": self.app.deauthorize_callback,
                "data_deletion_callback": self.app.data_deletion_callback,
            },
            "users": self.users.iter().map(|u| json!({
                "username": u.username, "id": u.id, "user_id": u.ig_id, "account_type": u.account_type,
                "tester": u.tester, "media_count": u.media.len(),
            })).collect::<Vec<_>>(),
            "testers": self.users.iter().filter(|u| u.tester).map(|u| u.username.clone()).collect::<Vec<_>>(),
            "codes": self.codes.len(),
            "tokens": self.tokens.len(),
        })
    }

    /// The clock as `{unix, timestamp}`, the timestamp in Instagram's `+0000` form.
    fn clock_json(&self) -> Value {
        let now = self.now();
        json!({"unix": now, "timestamp": instagram_timestamp(now)})
    }

    /// Registers `uri` as a valid redirect URI, once.
    pub(crate) fn add_redirect_uri(&mut self, uri: &str) {
        if !self.app.redirect_uris.iter().any(|u| u == uri) {
            self.app.redirect_uris.push(uri.to_owned());
        }
    }

    /// A token as the App Dashboard's "Generate token" gives it (long-lived by default).
    /// Revokes every token of `username` (a password change, or the user removing the app in
    /// Instagram): their next use is a 190 with subcode 460. How many were live.
    pub(crate) fn revoke_tokens(&mut self, username: &str) -> Option<usize> {
        let user = self.user_by_name(username)?;
        let mut revoked = 0;
        for token in self.tokens.values_mut().filter(|t| t.user == user && !t.revoked) {
            token.revoked = true;
            revoked += 1;
        }
        Some(revoked)
    }

    pub(crate) fn dashboard_token(&mut self, username: &str, long_lived: bool) -> Option<Value> {
        let user = self.user_by_name(username)?;
        Some(self.dashboard_token_of(user, long_lived))
    }

    /// A dashboard token for every user whose name starts with `prefix` (a fleet), in seed
    /// order, in one pass.
    pub(crate) fn dashboard_tokens(&mut self, prefix: &str, long_lived: bool) -> Vec<Value> {
        let users: Vec<usize> = (0..self.users.len())
            .filter(|&u| self.users[u].username.starts_with(prefix))
            .collect();
        users
            .into_iter()
            .map(|user| self.dashboard_token_of(user, long_lived))
            .collect()
    }

    fn dashboard_token_of(&mut self, user: usize, long_lived: bool) -> Value {
        let kind = if long_lived {
            TokenKind::LongLived
        } else {
            TokenKind::ShortLived
        };
        let scopes = self.all_scopes();
        let token = self.issue_token(user, kind, scopes, None);
        let expires_in = self.tokens.get(&token).map_or(0, |t| t.expires_at - t.issued_at);
        json!({"access_token": token, "user_id": self.users[user].id, "expires_in": expires_in})
    }

    /// Successful refreshes by user id (the app-scoped id), since the start or the last reset.
    pub(crate) fn refresh_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.refreshes
            .iter()
            .map(|(&user, &count)| (self.users[user].id.clone(), count))
            .collect()
    }

    /// A `signed_request` for `username`, signed with the app secret as Meta does.
    pub(crate) fn signed_request(&self, username: &str) -> Option<String> {
        let user = self.user_by_name(username)?;
        let payload =
            json!({"user_id": self.users[user].id, "algorithm": "HMAC-SHA256", "issued_at": self.now()});
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = engine.encode(payload.to_string());
        let mut mac = Hmac::<Sha256>::new_from_slice(self.app.secret.as_bytes()).ok()?;
        mac.update(payload.as_bytes());
        Some(format!(
            "{}.{payload}",
            engine.encode(mac.finalize().into_bytes())
        ))
    }
}

#[derive(Deserialize)]
struct Body(serde_json::Map<String, Value>);

/// A string field of a JSON body, if the body is JSON and the field a string.
pub(super) fn body_field(body: &[u8], name: &str) -> Option<String> {
    let Body(map) = serde_json::from_slice(body).ok()?;
    map.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// The answer to a control path no endpoint has.
fn not_found() -> Control {
    Control::Reply(Reply::json(404, &json!({"error": "unknown control endpoint"})))
}

#[cfg(test)]
mod endpoint_tests {
    use super::ENDPOINTS;

    #[test]
    fn the_readme_documents_every_endpoint_and_no_other() {
        let readme = include_str!("../../README.md");
        let documented: Vec<&str> = readme
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|line| line.split_once('`').map(|(endpoint, _)| endpoint))
            .filter(|endpoint| endpoint.contains(" /_mock/"))
            .collect();
        let listed: Vec<String> = ENDPOINTS
            .iter()
            .map(|e| format!("{} {}", e.method, e.path))
            .collect();
        assert_eq!(documented, listed);
    }
}

//! Routing: which part of the fake answers which path.
//!
//! One origin plays every Instagram host, so a client points all its base URLs here:
//!
//! | path | host it plays | module |
//! | --- | --- | --- |
//! | `GET`/`POST /oauth/authorize` | `api.instagram.com` / `www.instagram.com` (the window) | `oauth` |
//! | `POST /oauth/access_token` | `api.instagram.com` (code exchange) | `oauth` |
//! | `GET /access_token`, `GET /refresh_access_token` | `graph.instagram.com` (token lifetimes) | `oauth` |
//! | `GET /me`, `/{id}`, `/{id}/media`, `/{id}/children` | `graph.instagram.com` | `graph` |
//! | `GET /cdn/v/{file}` | the CDN (`scontent.cdninstagram.com`) | `cdn` |
//! | `/_mock/...` | none: the control API | `control` |
//!
//! Graph paths may start with a version (`/v21.0/me`), which is accepted, as Instagram serves
//! every live version alike for these endpoints, and answered in: its `Instagram-Api-Version`
//! header and its paging links name the version asked for (the options' `link_version` when
//! none is). A failed Graph call is
//! answered with Instagram's error shape and a fresh `fbtrace_id` from the seeded generator.

pub(crate) mod cdn;
pub(crate) mod comments;
pub(crate) mod control;
pub(crate) mod graph;
pub(crate) mod insights;
pub(crate) mod oauth;
pub(crate) mod subscriptions;
pub(crate) use oauth::Choice;

use crate::state::World;
use crate::wire::{GraphFailure, Reply, Req, is_version};

impl World {
    /// Answers one request to the fake Instagram (everything but `/_mock`), by the table in
    /// the module docs. The root answers 404 with a pointer to `/_mock/state`, and a GET of
    /// the code-exchange path is refused as Instagram refuses it (the exchange is POST only).
    pub(crate) fn route(&mut self, req: &Req) -> Reply {
        // The segments, without an allocation for the paths the fake serves (a few segments).
        let mut parts = req.path().split('/').filter(|s| !s.is_empty());
        let mut few = [""; 8];
        let mut count = 0;
        for (slot, segment) in few.iter_mut().zip(parts.by_ref()) {
            *slot = segment;
            count += 1;
        }
        let many: Vec<&str>;
        let segments: &[&str] = match parts.next() {
            None => few.get(..count).unwrap_or_default(),
            Some(ninth) => {
                many = few.iter().copied().chain([ninth]).chain(parts).collect();
                &many
            }
        };
        let graph = match segments {
            ["oauth", "authorize"] if req.method == http::Method::GET => return self.authorize_page(req),
            ["oauth", "authorize"] if req.method == http::Method::POST => {
                return self.authorize_decision(req);
            }
            ["oauth", "access_token"] if req.method == http::Method::POST => return self.exchange_code(req),
            ["oauth", "access_token"] => return Reply::oauth_error("Unsupported method: use POST"),
            ["cdn", "v", file] => return self.cdn(req, file),
            [] if req.param("ids").is_none() => {
                return Reply::new(
                    404,
                    "text/plain; charset=utf-8",
                    "igdisplay-mock: see /_mock/state",
                );
            }
            _ if req.method == http::Method::OPTIONS => return preflight(),
            [version, rest @ ..] if is_version(version) => rest,
            all => all,
        };
        let outcome: Result<Reply, GraphFailure> = match graph {
            ["access_token"] => self.exchange_long_lived(req),
            ["refresh_access_token"] => self.refresh(req),
            segments => self.graph(req, segments),
        };
        let failed = outcome.is_err();
        let mut reply = outcome.unwrap_or_else(|failure| {
            let trace = self.fbtrace_id();
            failure.reply(trace)
        });
        self.graph_host_headers(&mut reply, failed, req.api_version());
        reply
    }

    /// What every answer of graph.instagram.com carries: `Access-Control-Allow-Origin: *`,
    /// `X-Fb-Request-Id` (the error's `fbtrace_id` on an error) and `X-Fb-Trace-Id`, and
    /// `Instagram-Api-Version` on successes, on the token endpoints, and on Instagram Login's
    /// errors: `version`, the one asked in, else the options' `link_version`.
    fn graph_host_headers(&mut self, reply: &mut Reply, failed: bool, version: Option<&str>) {
        use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, HeaderName, HeaderValue};
        const TRACE_ID: HeaderName = HeaderName::from_static("x-fb-trace-id");
        const API_VERSION: HeaderName = HeaderName::from_static("instagram-api-version");
        let headers = &mut reply.headers;
        headers.append(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        // Both ids in one buffer, each header a slice of it.
        let mut ids = Vec::with_capacity(11 + 23);
        self.rng.push_token(&mut ids, 11);
        let trace_end = ids.len();
        // A failure's reply carries the id of its error already.
        let request_id = !failed || !headers.contains_key(&crate::wire::REQUEST_ID);
        if request_id {
            self.push_fbtrace_id(&mut ids);
        }
        let ids = bytes::Bytes::from(ids);
        if let Ok(trace) = HeaderValue::from_maybe_shared(ids.slice(..trace_end)) {
            reply.headers.append(TRACE_ID, trace);
        }
        if request_id && let Ok(id) = HeaderValue::from_maybe_shared(ids.slice(trace_end..)) {
            reply.headers.append(crate::wire::REQUEST_ID, id);
        }
        self.stamp_date(reply);
        if (!failed || self.options.platform == crate::MockPlatform::InstagramLogin)
            && let Some(version) = self
                .headers
                .api_version(version.unwrap_or(&self.options.link_version))
        {
            reply.headers.append(API_VERSION, version);
        }
    }

    /// Dates `reply` on the mock's clock, not the machine's, unless it is dated already:
    /// every answer (Graph, token endpoints, the window, preflights, the CDN, the control API)
    /// follows one clock, so a client comparing clocks sees the mock's.
    pub(crate) fn stamp_date(&mut self, reply: &mut Reply) {
        if !reply.headers.contains_key(http::header::DATE) {
            let date = self.headers.date(self.now());
            reply.headers.insert(http::header::DATE, date);
        }
    }
}

/// The answer to a browser's CORS preflight: any origin may read with GET and POST, sending
/// an `Authorization` header, as graph.instagram.com allows. A browser caches the answer for a
/// day. Without it a browser client (a site's JavaScript reading a user's media with the
/// token) could not be tested against the mock at all.
fn preflight() -> Reply {
    Reply::new(204, "text/plain; charset=utf-8", "")
        .header("access-control-allow-origin", "*")
        .header("access-control-allow-methods", "GET, POST, OPTIONS")
        .header("access-control-allow-headers", "authorization, content-type")
        .header("access-control-max-age", "86400")
}

#[cfg(test)]
mod tests {
    use super::is_version;

    #[test]
    fn versions_are_recognized() {
        for ok in ["v21.0", "v1.0", "v25"] {
            assert!(is_version(ok), "{ok}");
        }
        for not in ["v", "v1.", "va.0", "me", "v1.0.1"] {
            assert!(!is_version(not), "{not}");
        }
    }
}

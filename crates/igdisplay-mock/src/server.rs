//! The HTTP server: a hyper accept loop on the mock's own runtime thread. Each request is
//! answered under the world lock (never held across an await); delays, drops and slow bodies
//! of faults happen after the lock is released.
//!
//! A request's life:
//!
//! 1. `serve` accepts a connection (HTTP/1.1, keep-alive) and hands each request to `handle`.
//! 2. `handle` reads the body up to `MAX_REQUEST_BODY` (a larger one is refused, never
//!    buffered) and builds a `Req`.
//! 3. `decide` takes the world lock once: the control API (`/_mock/...`) answers at once; else
//!    a stub that matches method and path answers; else the route of the fake
//!    (`World::route`, in `routes/mod.rs`). A fault whose prefix matches may then be rolled, and the request is
//!    journaled. The lock is released with the decision in hand.
//! 4. The decision is delivered: a plain reply; a reply through a fault (`apply`: latency,
//!    drops, resets, truncation, drips, all in real time on the real socket); or a callback the
//!    control API asked for, posted to the app's URL and answered with what the app said.
//!
//! The runtime is the mock's own (`MockBuilder::workers` threads), on its own OS thread, so
//! the mock works under any test harness and never competes with the test's runtime. Dropping
//! the `MockServer` sends the shutdown signal and joins the thread.

use crate::JournalEntry;
use crate::clock::MockClock;
use crate::faults::{self, FaultKind};
use crate::routes::control::Control;
use crate::state::World;
use crate::wire::{Reply, Req};
use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Either, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The largest request body the mock reads.
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// A reply's body: whole (no box for the usual answer), or a stream a fault shapes.
type Body = Either<Full<Bytes>, BoxBody<Bytes, std::io::Error>>;

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) world: Mutex<World>,
    pub(crate) initial_clock: MockClock,
    pub(crate) client: Client<HttpConnector, Full<Bytes>>,
    /// Called with every request's masked journal entry, outside the lock.
    pub(crate) on_request: Option<crate::RequestLog>,
    /// Connections accepted since the start (a reset keeps counting).
    pub(crate) connections: std::sync::atomic::AtomicU64,
}

impl Shared {
    /// The shared state of a server over `world`; `initial_clock` is where a reset returns.
    pub(crate) fn new(world: World, initial_clock: MockClock, on_request: Option<crate::RequestLog>) -> Self {
        Self {
            world: Mutex::new(world),
            initial_clock,
            client: Client::builder(TokioExecutor::new()).build_http(),
            on_request,
            connections: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The world, locked. A panic while it was held does not make it unusable: the state is
    /// plain data and every request leaves it consistent.
    pub(crate) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// POSTs a form to an app callback; returns its status and body. A real delivery to a
    /// real server gives up after 10 s of real time.
    pub(crate) async fn deliver(&self, url: &str, form: String) -> Result<(u16, String), String> {
        self.post(url, "application/x-www-form-urlencoded", None, form)
            .await
    }

    /// Delivers a webhook notification as Meta does: `body` as JSON with its
    /// `X-Hub-Signature-256`, tried again after a failure (a transport error or a status other
    /// than 2xx), 3 attempts in all. The attempts made and the last answer's status, or why
    /// it failed.
    pub(crate) async fn deliver_webhook(
        &self,
        url: &str,
        body: &str,
        signature: &str,
    ) -> (u32, Result<u16, String>) {
        let mut last = Err(String::from("not sent"));
        for attempt in 1..=3 {
            last = self
                .post(
                    url,
                    "application/json",
                    Some(("x-hub-signature-256", signature)),
                    body.to_owned(),
                )
                .await
                .map(|(status, _)| status);
            if matches!(last, Ok(status) if (200..300).contains(&status)) {
                return (attempt, last);
            }
        }
        (3, last)
    }

    /// POSTs `body` to `url` with `content_type` (and `header`); the status and body answered.
    #[allow(clippy::disallowed_methods)]
    async fn post(
        &self,
        url: &str,
        content_type: &str,
        header: Option<(&str, &str)>,
        body: String,
    ) -> Result<(u16, String), String> {
        let mut request = http::Request::post(url).header(http::header::CONTENT_TYPE, content_type);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("bad callback URL: {e}"))?;
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(request))
            .await
            .map_err(|_| "the callback timed out".to_owned())?
            .map_err(|e| format!("the callback failed: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_REQUEST_BODY)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        Ok((status, body))
    }
}

/// Serves connections from `listener` until `shutdown` fires. Each connection gets its own
/// task and keeps alive; a failed accept (the process ran out of file descriptors, say) is
/// skipped rather than ending the server, and Nagle is off so small answers leave at once.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                shared.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let (shared, tls) = (shared.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        // A failed handshake (a client that does not trust the root) ends the
                        // connection, as any TLS server does.
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(stream).await {
                                connection(stream, shared).await;
                            }
                        }
                        None => connection(stream, shared).await,
                    }
                });
            }
        }
    }
}

/// Serves the requests of one connection, plain or TLS, until it closes.
async fn connection<S>(stream: S, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| handle(shared.clone(), request));
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The answer decided under the lock, and how to deliver it.
enum Outcome {
    /// Send this reply, through this fault if one was rolled.
    Send(Reply, Option<FaultKind>),
    /// POST this form to this URL (an app callback) and answer with what it said.
    Deliver(String, String),
    /// POST this signed webhook notification, retrying, and answer with how it went.
    Webhook(crate::routes::control::WebhookDelivery),
}

/// One request: read it (bodies capped), decide under the lock, then deliver: a reply, a
/// fault applied to it, or a callback posted to the app.
async fn handle(
    shared: Arc<Shared>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Body>, std::io::Error> {
    let (parts, body) = request.into_parts();
    // A GET has no body: nothing to collect.
    let body = if hyper::body::Body::is_end_stream(&body) {
        Bytes::new()
    } else {
        match Limited::new(body, MAX_REQUEST_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(_) => return Ok(response(Reply::new(413, "text/plain", "request body too large"))),
        }
    };
    let req = Req::new(parts.method, parts.uri, parts.headers, body);
    let (outcome, logged) = decide(&shared, &req);
    if let (Some(log), Some(entry)) = (&shared.on_request, logged) {
        log.log(&entry);
    }
    match outcome {
        Outcome::Webhook(crate::routes::control::WebhookDelivery {
            url,
            body,
            signature,
            mut answer,
        }) => {
            let (attempts, last) = shared.deliver_webhook(&url, &body, &signature).await;
            answer["attempts"] = serde_json::json!(attempts);
            answer["delivered"] =
                serde_json::json!(matches!(last, Ok(status) if (200..300).contains(&status)));
            answer["status"] = match last {
                Ok(status) => serde_json::json!(status),
                Err(error) => serde_json::json!(error),
            };
            Ok(response(Reply::json(200, &answer)))
        }
        Outcome::Deliver(url, form) => {
            let reply = match shared.deliver(&url, form).await {
                Ok((status, body)) => Reply::json(200, &serde_json::json!({"status": status, "body": body})),
                Err(error) => Reply::json(502, &serde_json::json!({"error": error})),
            };
            Ok(response(reply))
        }
        Outcome::Send(reply, None) => Ok(response(reply)),
        Outcome::Send(reply, Some(fault)) => apply(reply, fault).await,
    }
}

/// A stub's canned answer, its headers that cannot be headers left out.
fn stub_reply(stub: crate::Stub) -> Reply {
    let mut reply = Reply::new(stub.status, &stub.content_type, stub.body);
    for (name, value) in stub.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        ) {
            reply.headers.append(name, value);
        }
    }
    reply
}

/// Decides the answer to `req` under the lock: the control API, else a matching stub, else
/// the fake's own route; then a matching fault, rolled on the seeded generator; then the
/// journal entry (the raw query, masked when the journal is read).
fn decide(shared: &Shared, req: &Req) -> (Outcome, Option<JournalEntry>) {
    let mut world = shared.world();
    if let Some(rest) = req.path().strip_prefix("/_mock/") {
        let rest: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        let outcome = match world.control(req, &rest, shared.initial_clock) {
            Control::Reply(mut reply) => {
                world.stamp_date(&mut reply);
                Outcome::Send(reply, None)
            }
            Control::Deliver { url, form } => Outcome::Deliver(url, form),
            Control::Webhook(delivery) => Outcome::Webhook(delivery),
        };
        return (outcome, None);
    }
    let method = req.method.as_str();
    let stub = faults::take(
        &mut world.stubs,
        |s| s.method.eq_ignore_ascii_case(method) && s.path == req.path(),
        |s| &mut s.times,
        |_| true,
    );
    let mut reply = match stub {
        Some(stub) => stub_reply(stub),
        None => world.route(req),
    };
    world.stamp_date(&mut reply);
    let World { faults, rng, .. } = &mut *world;
    let fault = faults::take(
        faults,
        |f| req.path().starts_with(&f.path_prefix),
        |f| &mut f.times,
        |f| f.probability.is_none_or(|p| rng.unit() < p),
    )
    .map(|f| f.kind);
    let status = match &fault {
        Some(FaultKind::DropConnection) => 0,
        Some(FaultKind::Status { status }) => *status,
        Some(FaultKind::GraphTransient) => 500,
        _ => reply.status,
    };
    let now = world.now();
    let raw_query = req.uri.query().unwrap_or_default();
    let logged = shared.on_request.as_ref().map(|_| JournalEntry {
        seq: world.journal.total() + 1,
        at: now,
        method: method.to_owned(),
        path: req.path().to_owned(),
        query: crate::wire::masked_query(raw_query),
        status,
    });
    world
        .journal
        .record(now, &req.method, req.path(), raw_query, status);
    let fault = match fault {
        Some(FaultKind::GraphTransient) => {
            let trace = world.fbtrace_id();
            let failure = crate::wire::GraphFailure::new(
                500,
                "OAuthException",
                2,
                "An unexpected error has occurred. Please retry your request later.",
            )
            .transient();
            let mut reply = failure.reply(trace);
            world.stamp_date(&mut reply);
            return (Outcome::Send(reply, None), logged);
        }
        other => other,
    };
    (Outcome::Send(reply, fault), logged)
}

/// A reply as a complete HTTP response.
fn response(reply: Reply) -> http::Response<Body> {
    build(reply.status, reply.headers, Either::Left(Full::new(reply.body)))
}

/// A response of `status` with `headers` and `body`.
fn build(status: u16, headers: http::HeaderMap, body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    *response.headers_mut() = headers;
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
}

// Faults delay real bytes on a real socket: latency and drips are real time, not mock time.
#[allow(clippy::disallowed_methods)]
async fn apply(mut reply: Reply, fault: FaultKind) -> Result<http::Response<Body>, std::io::Error> {
    match fault {
        FaultKind::Latency { ms } => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(response(reply))
        }
        FaultKind::Status { status } => Ok(response(Reply::new(
            status,
            "text/plain; charset=utf-8",
            "Service Unavailable",
        ))),
        FaultKind::DropConnection => Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "dropped on purpose",
        )),
        FaultKind::TruncatedJson => {
            reply.body = reply.body.slice(..reply.body.len() / 2);
            Ok(response(reply))
        }
        FaultKind::MalformedJson => {
            reply.status = 200;
            reply.body = Bytes::from_static(b"{\"data\": [{\"id\": \"1\",, ]");
            Ok(response(reply))
        }
        FaultKind::WrongContentType => {
            reply.headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Ok(response(reply))
        }
        FaultKind::ResetMidBody => {
            // The headers announce the whole body; half of it goes out, then the connection
            // breaks. The pauses let hyper flush what it has before the break.
            let half = reply.body.slice(..reply.body.len() / 2);
            let mut headers = reply.headers;
            headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(reply.body.len()),
            );
            let frames = stream::unfold(Some(half), |half| async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                match half {
                    Some(half) => Some((Ok(Frame::data(half)), None)),
                    None => {
                        let reset =
                            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset on purpose");
                        Some((Err(reset), None))
                    }
                }
            });
            Ok(build(
                reply.status,
                headers,
                Either::Right(BodyExt::boxed(StreamBody::new(frames))),
            ))
        }
        FaultKind::SlowDrip { chunk, delay_ms } => {
            let chunk = chunk.max(1);
            let chunks: Vec<Bytes> = (0..reply.body.len())
                .step_by(chunk)
                .map(|start| reply.body.slice(start..(start + chunk).min(reply.body.len())))
                .collect();
            let frames = stream::unfold(chunks.into_iter(), move |mut rest| async move {
                let next = rest.next()?;
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                Some((Ok::<_, std::io::Error>(Frame::data(next)), rest))
            });
            Ok(build(
                reply.status,
                reply.headers,
                Either::Right(BodyExt::boxed(StreamBody::new(frames))),
            ))
        }
        FaultKind::GraphTransient => Ok(response(reply)),
    }
}

//! Test doubles for code that takes an [`HttpBackend`]: no server, no network.
//!
//! - [`FnBackend`] answers with a closure.
//! - [`CapturingBackend`] records every request and forwards it to another backend.
//! - [`ReplayBackend`] answers with canned responses in order and records the requests.
//! - [`SimClock`] is simulated time for tests where several actors wait at once.

pub use crate::clone_request;
pub use crate::sim_clock::SimClock;
use crate::{HttpBackend, HttpRequest, HttpResponse, SharedBackend, TransportError, TransportErrorKind};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

/// A response with `status`, a JSON content type and `body`.
pub fn json_response(status: u16, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = http::Response::new(body.into());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// The requests a double has seen, in order.
#[derive(Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<HttpRequest>>>);

impl RequestLog {
    fn record(&self, request: &HttpRequest) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(clone_request(request));
    }

    fn all(&self) -> Vec<HttpRequest> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(clone_request)
            .collect()
    }

    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

/// Answers every request with a closure.
///
/// ```
/// use igdisplay_http::{HttpBackend, test_util::{FnBackend, json_response}};
///
/// # tokio_test(async {
/// let backend = FnBackend::new(|request| {
///     assert_eq!(request.uri().path(), "/me");
///     Ok(json_response(200, r#"{"id":"1"}"#))
/// });
/// let response = backend.send(http::Request::get("https://graph.instagram.com/me").body(igdisplay_http::bytes::Bytes::new())?.into()).await?;
/// assert_eq!(response.body().as_ref(), br#"{"id":"1"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(()) });
/// # fn tokio_test<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct FnBackend<F> {
    answer: F,
}

impl<F> FnBackend<F>
where
    F: Fn(HttpRequest) -> Result<HttpResponse, TransportError> + Send + Sync + 'static,
{
    /// A backend answering with `answer`.
    pub fn new(answer: F) -> Self {
        Self { answer }
    }
}

impl<F> fmt::Debug for FnBackend<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnBackend")
    }
}

#[async_trait]
impl<F> HttpBackend for FnBackend<F>
where
    F: Fn(HttpRequest) -> Result<HttpResponse, TransportError> + Send + Sync + 'static,
{
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        (self.answer)(request)
    }
}

/// One canned answer, to be given as often as asked: a transport failure of a kind, or a
/// response with a status and a JSON (or any) body. With [`FnBackend`] and
/// [`CapturingBackend`] it makes a backend that always answers the same and counts requests.
///
/// ```
/// use igdisplay_http::test_util::{Answer, CapturingBackend, FnBackend};
/// use igdisplay_http::{HttpBackend, TransportErrorKind};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let answer = Answer::Status(503, "<html>busy</html>");
/// let backend = CapturingBackend::new(FnBackend::new(move |_| answer.respond()));
/// let response = backend.send(igdisplay_http::HttpRequest::default()).await.unwrap();
/// assert_eq!((response.status().as_u16(), backend.count()), (503, 1));
/// let failing = Answer::Transport(TransportErrorKind::Io).respond().unwrap_err();
/// assert_eq!(failing.kind(), TransportErrorKind::Io);
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// No response: a transport failure of this kind.
    Transport(TransportErrorKind),
    /// A response with this status and body.
    Status(u16, &'static str),
}

impl Answer {
    /// The answer, freshly built.
    ///
    /// # Errors
    ///
    /// The transport failure, for [`Answer::Transport`].
    pub fn respond(self) -> Result<HttpResponse, TransportError> {
        match self {
            Answer::Transport(kind) => Err(TransportError::new(kind)),
            Answer::Status(status, body) => Ok(json_response(status, body)),
        }
    }
}

/// Records every request, then forwards it to an inner backend.
#[derive(Clone)]
pub struct CapturingBackend {
    inner: SharedBackend,
    log: RequestLog,
}

impl CapturingBackend {
    /// Wraps `inner`.
    pub fn new(inner: impl HttpBackend) -> Self {
        Self::from_shared(Arc::new(inner))
    }

    /// Wraps an already shared backend.
    pub fn from_shared(inner: SharedBackend) -> Self {
        Self {
            inner,
            log: RequestLog::default(),
        }
    }

    /// Copies of the requests seen so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.log.all()
    }

    /// How many requests were seen.
    pub fn count(&self) -> usize {
        self.log.len()
    }
}

impl fmt::Debug for CapturingBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturingBackend")
            .field("inner", &self.inner)
            .field("requests", &self.count())
            .finish()
    }
}

#[async_trait]
impl HttpBackend for CapturingBackend {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.log.record(&request);
        self.inner.send(request).await
    }
}

/// Plays canned responses (or errors) back in order and records the requests. Once the script
/// is used up, every further request fails with a [`TransportErrorKind::Other`] error saying so.
#[derive(Clone, Default)]
pub struct ReplayBackend {
    script: Arc<Mutex<VecDeque<Result<HttpResponse, TransportError>>>>,
    log: RequestLog,
}

impl ReplayBackend {
    /// A backend that answers with `script`, one item per request.
    pub fn new(script: impl IntoIterator<Item = Result<HttpResponse, TransportError>>) -> Self {
        Self {
            script: Arc::new(Mutex::new(script.into_iter().collect())),
            log: RequestLog::default(),
        }
    }

    /// Appends one more answer.
    pub fn push(&self, answer: Result<HttpResponse, TransportError>) {
        self.script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(answer);
    }

    /// Copies of the requests seen so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.log.all()
    }

    /// How many requests were seen.
    pub fn count(&self) -> usize {
        self.log.len()
    }

    /// How many canned answers are left.
    pub fn remaining(&self) -> usize {
        self.script.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl fmt::Debug for ReplayBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayBackend")
            .field("remaining", &self.remaining())
            .field("requests", &self.count())
            .finish()
    }
}

/// The error a [`ReplayBackend`] returns once its script is used up.
#[derive(Debug, thiserror::Error)]
#[error("the replay backend has no answer left for request number {0}")]
pub struct ReplayExhausted(pub usize);

#[async_trait]
impl HttpBackend for ReplayBackend {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.log.record(&request);
        let next = self
            .script
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        next.unwrap_or_else(|| {
            Err(TransportError::with_source(
                TransportErrorKind::Other,
                ReplayExhausted(self.log.len()),
            ))
        })
    }
}

/// Whether the [`SendLoop`](crate::SendLoop) tries a request again after `failure`: runs the
/// real loop, on a [`ManualClock`](crate::ManualClock) and with the default retry policy, under
/// a gate that waits for any announced pause, for a request whose first answer reads as
/// `failure` and whose second succeeds. What each crate's `is_retryable()` must agree with.
///
/// ```
/// use igdisplay_http::{Failure, RequestKind, Retry, TransportError, TransportErrorKind};
///
/// #[derive(Debug)]
/// struct Timeout;
/// impl Failure for Timeout {
///     fn transport(_: TransportError, _: RequestKind) -> Self { Timeout }
///     fn retry(&self) -> Retry { Retry::Backoff }
/// }
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// assert!(igdisplay_http::test_util::send_loop_retries(Timeout).await);
/// # });
/// ```
pub async fn send_loop_retries<E: crate::Failure + Send>(failure: E) -> bool {
    let clock = crate::ManualClock::at_unix(1_700_000_000);
    let backend = FnBackend::new(|_| Ok(json_response(200, "{}")));
    let (policy, jitter, budget) = (
        crate::RetryPolicy::default(),
        crate::Jitter::seeded(1),
        crate::RetryBudget::default(),
    );
    let once = FailsOnce(Mutex::new(Some(failure)));
    crate::SendLoop::new(&backend, &clock, &policy, &jitter, &budget)
        .send(&WaitsForAnyPause, &once)
        .await
        .is_ok()
}

/// A request whose first answer reads as the failure it holds, and every later one as `()`.
struct FailsOnce<E>(Mutex<Option<E>>);

impl<E: crate::Failure + Send> crate::Exchange<()> for FailsOnce<E> {
    type Output = ();
    type Error = E;

    fn kind(&self) -> crate::RequestKind {
        crate::RequestKind::Idempotent
    }

    fn render(&self, _: &()) -> Result<HttpRequest, E> {
        Ok(HttpRequest::new(Bytes::new()))
    }

    fn parse(&self, _: &HttpResponse, _: &()) -> Result<(), E> {
        match self.0.lock().unwrap_or_else(PoisonError::into_inner).take() {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}

/// A gate that waits out any pause a rate limit announces.
struct WaitsForAnyPause;

impl<E: Send> crate::Gate<E> for WaitsForAnyPause {
    type Context = ();

    fn open(
        &self,
        at: std::time::SystemTime,
    ) -> impl std::future::Future<Output = Result<((), std::time::SystemTime), E>> + Send {
        std::future::ready(Ok(((), at)))
    }

    fn waits_for(&self, _pause: std::time::Duration) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> HttpRequest {
        http::Request::get(format!("https://graph.instagram.com{path}"))
            .header("x-test", "1")
            .body(Bytes::from_static(b"body"))
            .unwrap()
            .into()
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn replay_answers_in_order_then_says_it_is_exhausted() {
        let backend = ReplayBackend::new([Ok(json_response(200, "a")), Ok(json_response(404, "b"))]);
        block_on(async {
            assert_eq!(backend.send(get("/1")).await.unwrap().body(), "a");
            assert_eq!(backend.send(get("/2")).await.unwrap().status(), 404);
            let err = backend.send(get("/3")).await.unwrap_err();
            assert_eq!(err.kind(), TransportErrorKind::Other);
            assert!(
                std::error::Error::source(&err)
                    .unwrap()
                    .to_string()
                    .contains("number 3")
            );
        });
        let paths: Vec<_> = backend
            .requests()
            .iter()
            .map(|r| r.uri().path().to_owned())
            .collect();
        assert_eq!(paths, ["/1", "/2", "/3"]);
        assert_eq!(backend.remaining(), 0);
    }

    #[test]
    fn capturing_records_full_requests_and_forwards() {
        let capture = CapturingBackend::new(FnBackend::new(|r| Ok(json_response(201, r.into_body()))));
        let response = block_on(capture.send(get("/me"))).unwrap();
        assert_eq!(
            (response.status().as_u16(), response.body().as_ref()),
            (201, &b"body"[..])
        );
        let seen = capture.requests();
        assert_eq!(seen[0].headers()["x-test"], "1");
        assert_eq!(seen[0].body().as_ref(), b"body");
        assert_eq!(
            format!("{capture:?}"),
            "CapturingBackend { inner: FnBackend, requests: 1 }"
        );
    }
}

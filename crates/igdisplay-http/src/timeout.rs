//! [`Timeout`]: the one timeout mechanism, a backend around a backend that gives up after a
//! limit measured on the injected [`Clock`].

use crate::{
    BodyChunks, BodyStream, HttpBackend, HttpRequest, SendFuture, SharedClock, StreamingFuture,
    TransportError, TransportErrorKind,
};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Wraps a backend so that every request fails with [`TransportErrorKind::Timeout`] once
/// `limit` has passed on `clock` without a complete response.
///
/// igdisplay's own backends time out by themselves
/// ([`BackendConfig::request_timeout`](crate::BackendConfig)); the facade wraps only a backend
/// you bring. On a [`ManualClock`](crate::ManualClock) the limit passes only when the test
/// moves the clock, so a timeout is tested without waiting.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use igdisplay_http::{HttpBackend, HttpRequest, HttpResponse, ManualClock, Timeout, TransportError};
/// use std::{sync::Arc, time::Duration};
///
/// #[derive(Debug)]
/// struct Answers;
///
/// #[async_trait::async_trait]
/// impl HttpBackend for Answers {
///     async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
///         Ok(HttpResponse::new("{}".into()))
///     }
/// }
///
/// let timed = Timeout::new(Answers, Duration::from_secs(30), Arc::new(ManualClock::at_unix(0)));
/// let response = timed.send(HttpRequest::new(Default::default())).await.unwrap();
/// assert_eq!(response.body().as_ref(), b"{}");
/// # }
/// ```
#[derive(Debug)]
pub struct Timeout<B> {
    inner: B,
    limit: Duration,
    clock: SharedClock,
}

impl<B: HttpBackend> Timeout<B> {
    /// `inner`, giving up after `limit` on `clock`.
    pub fn new(inner: B, limit: Duration, clock: SharedClock) -> Self {
        Self { inner, limit, clock }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// The limit.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

// Written out instead of `async fn`: the request goes to the inner backend before the future
// is made, so the future does not hold it.
impl<B: HttpBackend> HttpBackend for Timeout<B> {
    fn send<'s, 'f>(&'s self, request: HttpRequest) -> SendFuture<'f>
    where
        's: 'f,
        Self: 'f,
    {
        Box::pin(Within::new(
            self.clock.timer(self.limit),
            self.inner.send(request),
        ))
    }

    /// The head within the limit, then each chunk of the body within it again.
    fn send_streaming<'s, 'f>(&'s self, request: HttpRequest) -> StreamingFuture<'f>
    where
        's: 'f,
        Self: 'f,
    {
        let head = Within::new(self.clock.timer(self.limit), self.inner.send_streaming(request));
        let (clock, limit) = (self.clock.clone(), self.limit);
        Box::pin(async move {
            let response = head.await?;
            Ok(response.map(|chunks| Box::new(TimedChunks { chunks, clock, limit }) as BodyStream))
        })
    }
}

/// A streamed body whose every chunk comes within the limit.
struct TimedChunks {
    chunks: BodyStream,
    clock: SharedClock,
    limit: Duration,
}

#[async_trait::async_trait]
impl BodyChunks for TimedChunks {
    async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, TransportError>> {
        let timer = self.clock.timer(self.limit);
        match Within::new(timer, async { self.chunks.next_chunk().await.transpose() }).await {
            Ok(chunk) => chunk.map(Ok),
            Err(error) => Some(Err(error)),
        }
    }
}

pin_project_lite::pin_project! {
    /// The one timeout mechanism: `future` until it completes or `timer` fires, whichever
    /// is first; a response that is ready wins over a timer that fires in the same poll.
    ///
    /// It owns both and is boxed once by the backend that makes it: no `async` wrapper
    /// around it holds a second copy of either.
    pub(crate) struct Within<T, F> {
        #[pin]
        timer: T,
        #[pin]
        future: F,
    }
}

impl<T, F> Within<T, F> {
    /// `future`, given up on when `timer` fires.
    pub(crate) fn new(timer: T, future: F) -> Self {
        Self { timer, future }
    }
}

/// The [`HttpBackend`](crate::HttpBackend) impl of a real backend, the same for each: the
/// module beside it has `Self::dispatch` (the checks and the hand-over to the client) and
/// `read_whole` and `read_streaming` (the exchange after it), which [`answer`] runs.
///
/// Written out instead of `async fn`: the checks and the hand-over run before the future is
/// made, so the future (boxed on every request) holds only what lives across its awaits: not
/// the 256-byte request, which an `async fn` would keep three times.
#[cfg(any(feature = "reqwest", feature = "hyper"))]
macro_rules! real_backend {
    ($backend:ty) => {
        impl $crate::HttpBackend for $backend {
            fn send<'s, 'f>(&'s self, request: $crate::HttpRequest) -> $crate::SendFuture<'f>
            where
                's: 'f,
                Self: 'f,
            {
                $crate::timeout::answer(&self.config, self.dispatch(request), read_whole)
            }

            fn send_streaming<'s, 'f>(&'s self, request: $crate::HttpRequest) -> $crate::StreamingFuture<'f>
            where
                's: 'f,
                Self: 'f,
            {
                $crate::timeout::answer(&self.config, self.dispatch(request), read_streaming)
            }
        }
    };
}
#[cfg(any(feature = "reqwest", feature = "hyper"))]
pub(crate) use real_backend;

/// A real backend's answer to one request: what `dispatch` refused fails at once; else
/// `exchange`, handed what `dispatch` made, the body cap and the request timeout of `config`,
/// runs within that timeout on the real clock, boxed once.
#[cfg(any(feature = "reqwest", feature = "hyper"))]
pub(crate) fn answer<'f, D, T, F>(
    config: &crate::BackendConfig,
    dispatched: Result<D, TransportError>,
    exchange: impl FnOnce(D, usize, Duration) -> F,
) -> Pin<Box<dyn Future<Output = Result<T, TransportError>> + Send + 'f>>
where
    F: Future<Output = Result<T, TransportError>> + Send + 'f,
    T: Send + 'f,
{
    let dispatched = match dispatched {
        Ok(dispatched) => dispatched,
        Err(error) => return Box::pin(std::future::ready(Err(error))),
    };
    let (limit, timeout) = (config.max_body_bytes, config.request_timeout);
    Box::pin(Within::new(
        crate::SystemClock::deadline(timeout),
        exchange(dispatched, limit, timeout),
    ))
}

impl<T, F, R> Future for Within<T, F>
where
    T: Future<Output = ()>,
    F: Future<Output = Result<R, TransportError>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(outcome) = this.future.poll(cx) {
            return Poll::Ready(outcome);
        }
        match this.timer.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(TransportError::new(TransportErrorKind::Timeout))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HttpResponse, ManualClock};
    use std::sync::Arc;

    #[derive(Debug)]
    struct Stalls;

    #[async_trait::async_trait]
    impl HttpBackend for Stalls {
        async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
            std::future::pending().await
        }
    }

    /// Hands over the head and one chunk, then never another.
    #[derive(Debug)]
    struct StallsMidBody;

    struct OneChunkThenNothing(bool);

    #[async_trait::async_trait]
    impl BodyChunks for OneChunkThenNothing {
        async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, TransportError>> {
            if std::mem::replace(&mut self.0, true) {
                std::future::pending().await
            }
            Some(Ok(bytes::Bytes::from_static(b"first")))
        }
    }

    #[async_trait::async_trait]
    impl HttpBackend for StallsMidBody {
        async fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
            std::future::pending().await
        }

        async fn send_streaming(&self, _: HttpRequest) -> Result<crate::StreamingResponse, TransportError> {
            Ok(http::Response::new(
                Box::new(OneChunkThenNothing(false)) as BodyStream
            ))
        }
    }

    #[tokio::test]
    async fn a_streamed_body_whose_next_chunk_stalls_times_out_on_the_clock() {
        let clock = ManualClock::at_unix(0);
        let timed = Timeout::new(StallsMidBody, Duration::from_secs(30), Arc::new(clock.clone()));
        let response = timed
            .send_streaming(HttpRequest::new(bytes::Bytes::new()))
            .await
            .unwrap();
        let mut body = response.into_body();
        assert_eq!(body.next_chunk().await.unwrap().unwrap().as_ref(), b"first");
        let pending = tokio::spawn(async move { body.next_chunk().await });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(29));
        tokio::task::yield_now().await;
        assert!(!pending.is_finished(), "timed out before the limit");
        clock.advance(Duration::from_secs(1));
        let error = pending.await.unwrap().unwrap().unwrap_err();
        assert!(error.is_timeout());
    }

    #[tokio::test]
    async fn a_ready_response_wins_over_a_timer_that_fires_in_the_same_poll() {
        let outcome = Within::new(
            std::future::ready(()),
            std::future::ready(Ok::<_, TransportError>(7)),
        )
        .await;
        assert_eq!(outcome.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_fired_timer_ends_a_pending_exchange_with_a_timeout() {
        let pending = std::future::pending::<Result<(), TransportError>>();
        let error = Within::new(std::future::ready(()), pending).await.unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Timeout);
    }

    #[tokio::test]
    async fn a_stalled_request_times_out_when_the_clock_passes_the_limit() {
        let clock = ManualClock::at_unix(0);
        let timed = Arc::new(Timeout::new(
            Stalls,
            Duration::from_secs(30),
            Arc::new(clock.clone()),
        ));
        let pending = {
            let timed = timed.clone();
            tokio::spawn(async move { timed.send(HttpRequest::new(bytes::Bytes::new())).await })
        };
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(29));
        tokio::task::yield_now().await;
        assert!(!pending.is_finished(), "timed out before the limit");
        clock.advance(Duration::from_secs(1));
        let error = pending.await.unwrap().unwrap_err();
        assert!(error.is_timeout());
    }
}
